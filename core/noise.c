/* core/noise: exact integer-arithmetic noise from libsodium randomness (see noise.h). */
#include "core/noise.h"

#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "core/enclave.h"

#define NOISE_BUF 4096

struct noise {
    unsigned char buf[NOISE_BUF];
    size_t pos;                 /* next unread byte of buf */
    int seeded;
    uint64_t block;             /* seeded mode: nonce of the next keystream chunk */
    unsigned char key[crypto_stream_chacha20_KEYBYTES];
};

static void refill(struct noise *n)
{
    if (n->seeded) {
        unsigned char nonce[crypto_stream_chacha20_NONCEBYTES];
        for (size_t i = 0; i < sizeof nonce; i++) nonce[i] = (unsigned char)(n->block >> (8 * i));
        n->block++;
        crypto_stream_chacha20(n->buf, NOISE_BUF, nonce, n->key);
    } else {
        randombytes_buf(n->buf, NOISE_BUF);
    }
    n->pos = 0;
}

int noise_open(struct noise **out, int seeded, uint64_t seed, char *err, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "noise: libsodium failed to initialise");
        return -1;
    }
    /* The whole state (key, counter, unread randomness) in a guarded region: memfd_secret
     * where the kernel has it, so not even root can read the next draws. */
    char e[160];
    struct noise *n = enclave_scratch_alloc(sizeof *n, e, sizeof e);
    if (!n) {
        snprintf(err, errlen, "noise: cannot allocate guarded memory for the noise state: %s", e);
        return -1;
    }
    n->seeded = seeded ? 1 : 0;
    if (n->seeded) {
        unsigned char s[8 + 16];
        memcpy(s, "cmif-test-seed\0\0", 16);
        for (int i = 0; i < 8; i++) s[16 + i] = (unsigned char)(seed >> (8 * i));
        crypto_generichash(n->key, sizeof n->key, s, sizeof s, NULL, 0);
    }
    refill(n);
    *out = n;
    return 0;
}

void noise_close(struct noise *n)
{
    enclave_scratch_free(n);
}

void noise_where(const struct noise *n, struct enclave_where *w)
{
    enclave_scratch_where(n, w);
}

int noise_seeded(const struct noise *n) { return n->seeded; }

uint64_t noise_u64(struct noise *n)
{
    if (n->pos + 8 > NOISE_BUF) refill(n);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)n->buf[n->pos + i] << (8 * i);
    sodium_memzero(n->buf + n->pos, 8);   /* a used draw is not left lying in memory */
    n->pos += 8;
    return v;
}

uint64_t noise_uniform(struct noise *n, uint64_t bound)
{
    if (bound <= 1) return 0;
    /* Reject the lowest (2^64 mod bound) values so that r % bound is uniform. */
    uint64_t threshold = (0 - bound) % bound;
    for (;;) {
        uint64_t r = noise_u64(n);
        if (r >= threshold) return r % bound;
    }
}

int noise_bernoulli(struct noise *n, uint64_t num, uint64_t den)
{
    if (num >= den) return 1;
    return noise_uniform(n, den) < num;
}

/* Bernoulli(exp(-g)) for g = num/den in [0, 1]: with A_k ~ Bernoulli(g/k), K = first k with
 * A_k = 0; P(K odd) = exp(-g) (CKS 2020, Algorithm 1). g/k is drawn as Bernoulli(g) times
 * Bernoulli(1/k), which avoids forming den*k. */
static int bern_exp_unit(struct noise *n, uint64_t num, uint64_t den)
{
    uint64_t k = 1;
    for (;;) {
        int a = noise_bernoulli(n, num, den) && noise_bernoulli(n, 1, k);
        if (!a) break;
        k++;
    }
    return (int)(k & 1);
}

int noise_bernoulli_exp(struct noise *n, uint64_t num, uint64_t den)
{
    if (den == 0) return 0;
    uint64_t whole = num / den;
    for (uint64_t i = 0; i < whole; i++)
        if (!bern_exp_unit(n, 1, 1)) return 0;
    return bern_exp_unit(n, num % den, den);
}

int64_t noise_geometric(struct noise *n, uint64_t num, uint64_t den)
{
    if (num == 0 || den == 0) return 0;
    for (;;) {
        /* X = U + num*V is geometric with P(X = x) ~ exp(-x/num); floor(X/den) then has
         * P(Y = y) ~ exp(-y*den/num). */
        uint64_t u = noise_uniform(n, num);
        if (!noise_bernoulli_exp(n, u, num)) continue;
        uint64_t v = 0;
        while (noise_bernoulli_exp(n, 1, 1)) v++;
        unsigned __int128 x = (unsigned __int128)u + (unsigned __int128)num * v;
        unsigned __int128 y = x / den;
        if (y > (unsigned __int128)INT64_MAX) continue;   /* astronomically unlikely */
        return (int64_t)y;
    }
}

int64_t noise_dlaplace(struct noise *n, uint64_t num, uint64_t den)
{
    for (;;) {
        int64_t y = noise_geometric(n, num, den);
        int neg = noise_bernoulli(n, 1, 2);
        if (neg && y == 0) continue;      /* 0 must not be counted twice */
        return neg ? -y : y;
    }
}

double noise_unit(struct noise *n)
{
    return (double)(noise_u64(n) >> 11) * (1.0 / 9007199254740992.0);
}
