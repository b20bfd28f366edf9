/* Tests of gpu/sampler: greedy ties, repetition penalty and its window, top-k, top-p,
 * min-p, temperature (frequencies against the softmax), seeds and reset, bad options. */
#include "tests/testutil.h"

#include <math.h>

#include "gpu/sampler.h"

static struct sampler *open_s(float temp, int top_k, float top_p, float min_p, float pen,
                              int last_n, uint64_t seed, int vocab)
{
    struct sampler_params p;
    sampler_defaults(&p);
    p.temp = temp;
    p.top_k = top_k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.repeat_penalty = pen;
    p.repeat_last_n = last_n;
    p.seed = seed;
    struct sampler *s = NULL;
    assert_int_equal(sampler_open(&s, &p, vocab), 0);
    return s;
}

static void test_defaults(void **state)
{
    (void)state;
    struct sampler_params p;
    sampler_defaults(&p);
    assert_true(p.temp > 0.79f && p.temp < 0.81f);
    assert_int_equal(p.top_k, 40);
    assert_true(p.top_p > 0.94f && p.top_p < 0.96f);
    assert_true(p.min_p > 0.049f && p.min_p < 0.051f);
    assert_true(p.repeat_penalty == 1.0f);
    assert_int_equal(p.repeat_last_n, 64);
}

static void test_greedy(void **state)
{
    (void)state;
    struct sampler *s = open_s(0, 0, 1, 0, 1, 64, 1, 6);
    float l[6] = {0.5f, 3.0f, -1.0f, 3.0f, 2.9f, -INFINITY};
    assert_int_equal(sampler_sample(s, l), 1);   /* tie between 1 and 3: lowest id */
    float m[6] = {-5, -4, -3, -2, -1.5f, -1.6f};
    assert_int_equal(sampler_sample(s, m), 4);
    sampler_close(s);
}

static void test_repeat_penalty(void **state)
{
    (void)state;
    struct sampler *s = open_s(0, 0, 1, 0, 1.5f, 3, 1, 5);
    sampler_accept(s, 0);
    sampler_accept(s, 0);   /* counted once */
    float l[5] = {2.0f, 1.9f, -1.0f, 0, 0};
    assert_int_equal(sampler_sample(s, l), 1);
    assert_true(fabsf(l[0] - 2.0f / 1.5f) < 1e-6f);   /* positive: divided */
    sampler_accept(s, 2);
    float m[5] = {-1.0f, -1.2f, -1.0f, -2, -2};
    /* token 2 was seen: -1.0 * 1.5 = -1.5; token 0 too: -1.5; so 1 wins */
    assert_int_equal(sampler_sample(s, m), 1);
    assert_true(fabsf(m[2] + 1.5f) < 1e-6f);          /* negative: multiplied */
    /* window of 3: after three more tokens, 0 and 2 have left it */
    sampler_accept(s, 4);
    sampler_accept(s, 4);
    sampler_accept(s, 3);
    float n[5] = {2.0f, 1.9f, 0, 0, 0};
    assert_int_equal(sampler_sample(s, n), 0);
    assert_true(n[0] == 2.0f);
    sampler_close(s);
}

/* Draws `draws` tokens over logits from a fresh sampler (temp, top_k, top_p, min_p, seed;
 * no repetition penalty) and counts each id. */
static void counts(float temp, int top_k, float top_p, float min_p, uint64_t seed,
                   const float *logits, int vocab, int draws, int *cnt)
{
    struct sampler *s = open_s(temp, top_k, top_p, min_p, 1, 0, seed, vocab);
    float *l = malloc(sizeof(float) * (size_t)vocab);
    assert_non_null(l);
    memset(cnt, 0, sizeof(int) * (size_t)vocab);
    for (int i = 0; i < draws; i++) {
        memcpy(l, logits, sizeof(float) * (size_t)vocab);
        int32_t id = sampler_sample(s, l);
        assert_true(id >= 0 && id < vocab);
        cnt[id]++;
    }
    free(l);
    sampler_close(s);
}

static void test_top_k(void **state)
{
    (void)state;
    float l[8] = {1, 5, 2, 4, 3, 0, 4.5f, -1};
    int cnt[8];
    counts(1.0f, 1, 1, 0, 7, l, 8, 200, cnt);
    assert_int_equal(cnt[1], 200);
    counts(5.0f, 3, 1, 0, 7, l, 8, 3000, cnt);   /* hot: all three survivors appear */
    assert_true(cnt[1] > 0 && cnt[6] > 0 && cnt[3] > 0);
    assert_int_equal(cnt[1] + cnt[6] + cnt[3], 3000);
}

static void test_top_p(void **state)
{
    (void)state;
    /* probabilities 0.5, 0.3, 0.15, 0.05 */
    float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    int cnt[4];
    counts(1.0f, 0, 0.7f, 0, 11, l, 4, 4000, cnt);
    assert_int_equal(cnt[2] + cnt[3], 0);
    /* renormalised: 0.5/0.8 and 0.3/0.8 */
    assert_true(fabs(cnt[0] / 4000.0 - 0.625) < 0.04);
    counts(1.0f, 0, 0.9f, 0, 11, l, 4, 4000, cnt);
    assert_true(cnt[2] > 0);
    assert_int_equal(cnt[3], 0);
}

static void test_min_p(void **state)
{
    (void)state;
    float l[4] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    int cnt[4];
    /* min_p 0.25: keep p >= 0.125 → tokens 0, 1, 2 */
    counts(1.0f, 0, 1, 0.25f, 5, l, 4, 4000, cnt);
    assert_int_equal(cnt[3], 0);
    assert_true(cnt[2] > 0);
}

static void test_temperature(void **state)
{
    (void)state;
    float l[5] = {1.0f, 0.5f, 0.0f, -0.5f, 2.0f};
    int cnt[5];
    for (int k = 0; k < 2; k++) {
        float T = k ? 2.0f : 0.5f;
        int N = 20000;
        counts(T, 0, 1, 0, 99, l, 5, N, cnt);
        double z = 0, p[5];
        for (int i = 0; i < 5; i++) z += (p[i] = exp(l[i] / T));
        for (int i = 0; i < 5; i++) {
            double f = cnt[i] / (double)N, e = p[i] / z;
            /* 5 standard deviations of a binomial proportion */
            double sd = sqrt(e * (1 - e) / N);
            if (fabs(f - e) > 5 * sd + 1e-3)
                fail_msg("T=%.1f token %d: frequency %.4f, softmax %.4f", (double)T, i, f, e);
        }
    }
}

static void seq(struct sampler *s, int32_t *out, int n, int vocab)
{
    float *l = malloc(sizeof(float) * (size_t)vocab);
    assert_non_null(l);
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < vocab; j++) l[j] = (float)((j * 7919 + i * 31) % 17) * 0.1f;
        out[i] = sampler_sample(s, l);
        sampler_accept(s, out[i]);
    }
    free(l);
}

static void test_seeds(void **state)
{
    (void)state;
    int32_t a[100], b[100], c[100], d[100], e[100];
    struct sampler *s1 = open_s(1.0f, 40, 0.95f, 0.05f, 1.1f, 64, 42, 200);
    struct sampler *s2 = open_s(1.0f, 40, 0.95f, 0.05f, 1.1f, 64, 42, 200);
    struct sampler *s3 = open_s(1.0f, 40, 0.95f, 0.05f, 1.1f, 64, 43, 200);
    seq(s1, a, 100, 200);
    seq(s2, b, 100, 200);
    seq(s3, c, 100, 200);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    sampler_reset(s1);
    seq(s1, d, 100, 200);
    assert_memory_equal(a, d, sizeof a);
    sampler_close(s1);
    sampler_close(s2);
    sampler_close(s3);
    /* a random seed from the OS: two samplers practically never agree on 100 draws */
    struct sampler *r1 = open_s(1.0f, 0, 1, 0, 1, 0, SAMPLER_SEED_RANDOM, 200);
    struct sampler *r2 = open_s(1.0f, 0, 1, 0, 1, 0, SAMPLER_SEED_RANDOM, 200);
    seq(r1, d, 100, 200);
    seq(r2, e, 100, 200);
    assert_memory_not_equal(d, e, sizeof d);
    sampler_close(r1);
    sampler_close(r2);
}

static void test_bad_options(void **state)
{
    (void)state;
    struct sampler_params p;
    struct sampler *s = (struct sampler *)&p;
    sampler_defaults(&p);
    assert_int_equal(sampler_open(&s, &p, 0), -1);
    assert_null(s);
    p.temp = -1;
    assert_int_equal(sampler_open(&s, &p, 10), -1);
    sampler_defaults(&p);
    p.top_p = 1.5f;
    assert_int_equal(sampler_open(&s, &p, 10), -1);
    sampler_defaults(&p);
    p.repeat_penalty = 0;
    assert_int_equal(sampler_open(&s, &p, 10), -1);
    sampler_defaults(&p);
    p.repeat_last_n = -2;
    assert_int_equal(sampler_open(&s, &p, 10), -1);
    /* out-of-range ids are ignored by accept */
    sampler_defaults(&p);
    assert_int_equal(sampler_open(&s, &p, 10), 0);
    sampler_accept(s, -1);
    sampler_accept(s, 10);
    sampler_close(s);
}

TU_MAIN(
    cmocka_unit_test(test_defaults),   cmocka_unit_test(test_greedy),
    cmocka_unit_test(test_repeat_penalty), cmocka_unit_test(test_top_k),
    cmocka_unit_test(test_top_p),      cmocka_unit_test(test_min_p),
    cmocka_unit_test(test_temperature), cmocka_unit_test(test_seeds),
    cmocka_unit_test(test_bad_options))
