/* gpu/rng: the one seeded, non-cryptographic PRNG of the engine and its tools.
 *
 * xoshiro256** with its state seeded through splitmix64, so a 64-bit seed fixes the whole
 * sequence. The sampler, the trainer (app/train) and the random test models
 * (tests/tools/randmodel) all draw from it; randomness that must be secret comes from
 * libsodium instead. Header-only: every function is small and on hot paths. */
#ifndef CMIF_GPU_RNG_H
#define CMIF_GPU_RNG_H

#include <stdint.h>

/* One splitmix64 step: advances *x and returns a well-mixed 64-bit value (also usable on
 * its own as a fast hash of a counter). */
static inline uint64_t rng_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t rng_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* The xoshiro256** state s[4] from a seed (four splitmix64 draws: never all zero). */
static inline void rng_seed(uint64_t s[4], uint64_t seed)
{
    for (int i = 0; i < 4; i++) s[i] = rng_splitmix64(&seed);
}

/* The next xoshiro256** value. */
static inline uint64_t rng_next(uint64_t s[4])
{
    uint64_t r = rng_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rng_rotl(s[3], 45);
    return r;
}

/* A double uniform in [0, 1) with 53 random bits. */
static inline double rng_unit(uint64_t s[4])
{
    return (double)(rng_next(s) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
