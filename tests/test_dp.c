/* tests/test_dp: statistical differential-privacy audit of the sanitizer.
 *
 * In the spirit of Google's DP stochastic tester and DP-Auditorium's histogram tester: for a
 * pair of inputs x, x' of one cluster, run the mechanism N times on each with the seeded test
 * RNG, and for every output o test whether P[M(x) = o] > e^ε · P[M(x') = o] is *proven* by the
 * samples: the Wilson lower bound of P[M(x) = o] exceeds e^ε times the Wilson upper bound of
 * P[M(x') = o]. z = 5 per bound (one-sided 2.9e-7); with 2 bounds x 2 directions x 12
 * outputs x 4 audits x 3 ε x 2 mechanisms = 1152 comparisons, the Bonferroni bound on a false
 * alarm for a correct mechanism is below 1e-3 (and the seeds are fixed, so the run is
 * reproducible). N = 20000 samples per input.
 *
 * The embeddings are built to be close to the mechanism's worst case, so that the audit has
 * power: token 0 points one way, tokens 1..n-1 nearly all the same other way. For input 0 the
 * utilities are (1, 0, .., 0); for input 1 they are (0, ~1, .., ~1): every gap moves by the
 * full 2 sensitivities the proof allows, and the true privacy loss of output 0 comes close to
 * ε. The same audit of a mutation with half the noise scale (mech_test_noise_mult(0.5)) must
 * detect a violation: both outcomes are asserted, so a sampler bug that adds too little noise
 * and an audit that cannot see it both fail the suite. The tokens of a real model's cluster
 * (stories260K, when present) are audited too. */
#include "tests/testutil.h"

#include <math.h>

#include "core/cluster.h"
#include "core/lexicon.h"
#include "core/core.h"
#include "core/tokenizer.h"
#include "core/mech.h"
#include "core/noise.h"

/* core/mech numbers its mechanisms and outcomes like core/core.h's public enums. */
_Static_assert((int)MECH_RNM == (int)CORE_MECH_RNM && (int)MECH_RNM_EXP == (int)CORE_MECH_RNM_EXP &&
                   (int)MECH_SANTEXT == (int)CORE_MECH_SANTEXT &&
                   (int)MECH_CUSTEXT == (int)CORE_MECH_CUSTEXT && (int)MECH_NONE == (int)CORE_MECH_NONE,
               "enum mech_kind and enum core_mech");
_Static_assert((int)MECH_KEPT == (int)CORE_TOK_KEPT && (int)MECH_REPLACED == (int)CORE_TOK_REPLACED &&
                   (int)MECH_PUBLIC == (int)CORE_TOK_PUBLIC && (int)MECH_CONTROL == (int)CORE_TOK_CONTROL,
               "enum mech_result and enum core_tok_kind");

#define Z 5.0

static void wilson(long k, long n, double *lo, double *hi)
{
    double z2 = Z * Z, c = (k + z2 / 2) / (n + z2);
    double h = Z / (n + z2) * sqrt((double)k * (n - k) / n + z2 / 4);
    *lo = c - h < 0 ? 0 : c - h;
    *hi = c + h > 1 ? 1 : c + h;
}

struct fixture {
    struct tu_mat m;
    struct cluster *cl;
    struct noise *nz;
    struct mech *mech;
    uint8_t *role;
};

static void fixture_open(struct fixture *f, int n, uint64_t seed)
{
    char err[256];
    f->m.n = n;
    f->m.dim = 3;
    f->m.v = calloc((size_t)n * 3, sizeof(float));
    assert_non_null(f->m.v);
    f->m.v[0] = 1.0f;
    for (int i = 1; i < n; i++) {
        f->m.v[i * 3 + 1] = 1.0f;
        f->m.v[i * 3 + 2] = 0.002f * (float)i;
    }
    f->role = calloc((size_t)n, 1);
    uint8_t *group = malloc((size_t)n);
    memset(group, 1, (size_t)n);
    struct cluster_params p = {.k = n, .quiet = 1};
    assert_int_equal(cluster_build(&f->cl, n, 3, group, tu_mat_row, &f->m, &p, err, sizeof err), 0);
    free(group);
    assert_int_equal(cluster_count(f->cl), 1);
    assert_int_equal(noise_open(&f->nz, 1, seed, err, sizeof err), 0);
    struct mech_config cfg = {.n_vocab = n, .dim = 3, .row = tu_mat_row, .ctx = &f->m,
                              .clusters = f->cl, .role = f->role, .noise = f->nz};
    assert_int_equal(mech_open(&f->mech, &cfg, MECH_RNM, 1.0, err, sizeof err), 0);
}

static void fixture_close(struct fixture *f)
{
    mech_close(f->mech);
    noise_close(f->nz);
    cluster_close(f->cl);
    free(f->role);
    free(f->m.v);
}

/* An input outside the domain (a word of several pieces): its vector and cluster, as
 * core/wordsan gives them (mech_sanitize_vec); used by histogram when x == WORD_INPUT. */
#define WORD_INPUT (-2)
static float g_word_vec[3];

static void histogram(struct mech *m, int32_t x, long n, long *hist, int vocab)
{
    char err[256];
    memset(hist, 0, (size_t)vocab * sizeof *hist);
    for (long i = 0; i < n; i++) {
        struct mech_out o;
        int rc = x == WORD_INPUT ? mech_sanitize_vec(m, 0, g_word_vec, &o, err, sizeof err)
                                 : mech_sanitize(m, x, &o, err, sizeof err);
        if (rc != 0) fail_msg("%s", err);
        assert_true(o.sent >= 0 && o.sent < vocab);
        hist[o.sent]++;
    }
}

/* Largest proven ratio lower-bound(P[x]=o) / upper-bound(P[x']=o) over outputs and both
 * directions, divided by e^ε: > 1 means a violation is demonstrated. */
static double audit(struct mech *m, int32_t x, int32_t y, double eps, long n, int vocab)
{
    long *hx = calloc((size_t)vocab, sizeof *hx), *hy = calloc((size_t)vocab, sizeof *hy);
    histogram(m, x, n, hx, vocab);
    histogram(m, y, n, hy, vocab);
    double worst = 0;
    for (int o = 0; o < vocab; o++) {
        double lx, ux, ly, uy;
        wilson(hx[o], n, &lx, &ux);
        wilson(hy[o], n, &ly, &uy);
        double r1 = lx / uy, r2 = ly / ux;
        if (r1 > worst) worst = r1;
        if (r2 > worst) worst = r2;
    }
    free(hx);
    free(hy);
    return worst / exp(eps);
}

static void run_audit(int kind)
{
    const double eps_list[] = {0.5, 1.0, 4.0};
    const long N = 20000;
    const int n = 12;
    char err[256];
    for (int e = 0; e < 3; e++) {
        struct fixture f;
        fixture_open(&f, n, 1000 + (uint64_t)e + 10 * (uint64_t)kind);
        assert_int_equal(mech_set_kind(f.mech, kind, err, sizeof err), 0);
        assert_int_equal(mech_set_eps(f.mech, eps_list[e], err, sizeof err), 0);
        const int32_t pairs[][2] = {{0, 1}, {1, 2}, {0, n - 1}};
        for (int p = 0; p < 3; p++) {
            double s = audit(f.mech, pairs[p][0], pairs[p][1], eps_list[e], N, n);
            print_message("%s eps %.1f pair (%d,%d): proven ratio / e^eps = %.3f\n",
                          kind == MECH_RNM ? "rnm" : "rnm-exp", eps_list[e], pairs[p][0],
                          pairs[p][1], s);
            if (s > 1) fail_msg("ε-DP violation demonstrated at ε = %g", eps_list[e]);
        }
        /* The half-noise mutation must be caught on the worst-case pair. */
        mech_test_noise_mult(f.mech, 0.5);
        double s = audit(f.mech, 0, 1, eps_list[e], N, n);
        print_message("  half-noise mutation, pair (0,1): proven ratio / e^eps = %.3f\n", s);
        if (!(s > 1)) fail_msg("the audit missed the half-noise mutation at ε = %g", eps_list[e]);
        fixture_close(&f);
    }
}

static void test_rnm_audit(void **state)
{
    (void)state;
    run_audit(MECH_RNM);
}

static void test_rnm_exp_audit(void **state)
{
    (void)state;
    run_audit(MECH_RNM_EXP);
}

/* Word level: a sanitized word of several tokens is embedded as the normalised mean of its
 * pieces' rows (lexicon_mean) and sanitized over the cluster a public rule gave it
 * (mech_sanitize_vec); its cluster-mate is a whole-word member. The pieces point the way of
 * tokens 1..n-1, the member (token 0) the other way: the worst case again, between a domain
 * word and a word outside the domain. */
static void run_word_audit(int kind)
{
    const double eps_list[] = {0.5, 1.0, 4.0};
    const long N = 20000;
    const int n = 12;
    char err[256];
    const float pieces[3 * 3] = {0, 1, 0.004f, 0, 1, 0.010f, 0, 0.9f, 0.016f};
    lexicon_mean(pieces, 3, 3, g_word_vec);
    for (int e = 0; e < 3; e++) {
        struct fixture f;
        fixture_open(&f, n, 2000 + (uint64_t)e + 10 * (uint64_t)kind);
        assert_int_equal(mech_set_kind(f.mech, kind, err, sizeof err), 0);
        assert_int_equal(mech_set_eps(f.mech, eps_list[e], err, sizeof err), 0);
        const int32_t pairs[][2] = {{0, WORD_INPUT}, {n - 1, WORD_INPUT}};
        for (int p = 0; p < 2; p++) {
            double s = audit(f.mech, pairs[p][0], pairs[p][1], eps_list[e], N, n);
            print_message("word %s eps %.1f pair (%d, multi-token word): proven ratio / e^eps = %.3f\n",
                          kind == MECH_RNM ? "rnm" : "rnm-exp", eps_list[e], pairs[p][0], s);
            if (s > 1) fail_msg("word-level ε-DP violation demonstrated at ε = %g", eps_list[e]);
        }
        mech_test_noise_mult(f.mech, 0.5);
        double s = audit(f.mech, 0, WORD_INPUT, eps_list[e], N, n);
        print_message("  half-noise mutation, word pair: proven ratio / e^eps = %.3f\n", s);
        if (!(s > 1)) fail_msg("the word audit missed the half-noise mutation at ε = %g", eps_list[e]);
        fixture_close(&f);
    }
}

static void test_word_rnm_audit(void **state)
{
    (void)state;
    run_word_audit(MECH_RNM);
}

/* A real model's clusters: stories260K's own embeddings, through the core. */
static void test_real_model_audit(void **state)
{
    (void)state;
    const char *path = tu_shared("models/stories260K.gguf");
    struct core_options o;
    core_defaults(&o);
    core_options_plain(&o);
    struct core *c;
    char err[256];
    if (core_open(&c, path, &o, err, sizeof err)) fail_msg("%s", err);
    struct tokenizer *t;
    if (tok_open(&t, core_gguf(c), err, sizeof err)) fail_msg("%s", err);
    int32_t nv = tok_n_vocab(t);
    struct tu_mat m = {nv, core_dim(c), malloc((size_t)nv * core_dim(c) * sizeof(float))};
    assert_non_null(m.v);
    for (int32_t i = 0; i < nv; i++)
        assert_int_equal(core_embed_token(c, i, m.v + (size_t)i * m.dim, err, sizeof err), 0);
    uint8_t *role = malloc((size_t)nv), *group = malloc((size_t)nv), *stop = malloc((size_t)nv);
    mech_token_roles(t, role, group, stop);
    struct cluster *cl;
    struct cluster_params p = {.k = 20, .quiet = 1};
    assert_int_equal(cluster_build(&cl, nv, m.dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    struct noise *nz;
    assert_int_equal(noise_open(&nz, 1, 77, err, sizeof err), 0);
    struct mech_config cfg = {.n_vocab = nv, .dim = m.dim, .row = tu_mat_row, .ctx = &m,
                              .clusters = cl, .role = role, .stopword = stop, .noise = nz};
    struct mech *mc;
    assert_int_equal(mech_open(&mc, &cfg, MECH_RNM, 1.0, err, sizeof err), 0);
    /* The cluster of the word " dog" (a common token of the model's stories). */
    int32_t dog = -1;
    for (int32_t i = 0; i < nv && dog < 0; i++) {
        size_t len;
        const char *s = tok_text(t, i, &len);
        if (s && len == 6 && memcmp(s, "\xe2\x96\x81" "dog", 6) == 0) dog = i;
    }
    if (dog < 0) dog = 300;
    const int32_t *mem;
    int n = cluster_members(cl, cluster_of(cl, dog), &mem);
    assert_true(n >= 2);
    const double eps_list[] = {1.0, 4.0};
    for (int e = 0; e < 2; e++) {
        assert_int_equal(mech_set_eps(mc, eps_list[e], err, sizeof err), 0);
        double s = audit(mc, mem[0], mem[n - 1], eps_list[e], 10000, nv);
        print_message("stories260K rnm eps %.1f pair (%d,%d) of %d: proven ratio / e^eps = %.3f\n",
                      eps_list[e], (int)mem[0], (int)mem[n - 1], n, s);
        if (s > 1) fail_msg("ε-DP violation demonstrated on the real model at ε = %g", eps_list[e]);
    }
    mech_close(mc);
    noise_close(nz);
    cluster_close(cl);
    free(role);
    free(group);
    free(stop);
    free(m.v);
    tok_close(t);
    core_close(c);
}

TU_MAIN(
    cmocka_unit_test(test_rnm_audit),
    cmocka_unit_test(test_rnm_exp_audit),
    cmocka_unit_test(test_word_rnm_audit),
    cmocka_unit_test(test_real_model_audit))
