/* Tests of gpu/attn: the SIMD group attention against the scalar reference at every SIMD
 * level this CPU has (shapes of real models, odd head sizes, -INFINITY and extreme scores),
 * and the vector exp against libm. */
#include "tests/testutil.h"

#include <math.h>

#include "gpu/attn.h"
#include "gpu/quant.h"
#include "gpu/rng.h"

static const char *const levels[] = {"scalar", "avx2", "avx512novnni", "avx512"};
#define N_LEVELS (sizeof levels / sizeof levels[0])

/* Outputs are weighted means of V rows (entries ~1): the SIMD kernels sum dots, maxima and
 * weights in other orders than the reference, so each output element may differ from it by
 * this much relative to the largest magnitude of its head's reference output. */
#define REL_TOL 1e-5

static uint64_t rng_state;
static float rng_gauss(void)
{
    double u = (double)(rng_splitmix64(&rng_state) >> 11) * (1.0 / 9007199254740992.0) + 1e-300;
    double v = (double)(rng_splitmix64(&rng_state) >> 11) * (1.0 / 9007199254740992.0);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* A cache of span positions of 3 KV heads (the middle one attended, so rows have
 * neighbours on both sides), queries spread so the softmax is neither flat nor one-hot. */
struct setup {
    int span, hd, grp;
    size_t stride;
    float *kc, *vc, *q, *s, *ref, *out;
};

static void setup_make(struct setup *t, int span, int hd, int grp, float qscale)
{
    t->span = span, t->hd = hd, t->grp = grp;
    t->stride = (size_t)3 * hd;
    size_t kv = (size_t)span * t->stride, qn = (size_t)grp * hd;
    t->kc = tu_xmalloc(kv * sizeof(float));
    t->vc = tu_xmalloc(kv * sizeof(float));
    t->q = tu_xmalloc(qn * sizeof(float));
    t->s = tu_xmalloc((size_t)grp * span * sizeof(float));
    t->ref = tu_xmalloc(qn * sizeof(float));
    t->out = tu_xmalloc(qn * sizeof(float));
    for (size_t i = 0; i < kv; i++) t->kc[i] = rng_gauss(), t->vc[i] = rng_gauss();
    for (size_t i = 0; i < qn; i++) t->q[i] = rng_gauss() * qscale;
}

static void setup_free(struct setup *t)
{
    free(t->kc), free(t->vc), free(t->q), free(t->s), free(t->ref), free(t->out);
}

static void run(struct setup *t, float *out, int ref)
{
    float scale = 1.0f / sqrtf((float)t->hd);
    const float *k = t->kc + t->hd, *v = t->vc + t->hd;   /* KV head 1 of 3 */
    (ref ? attn_group_ref : attn_group)(t->q, k, v, t->stride, t->span, t->hd, t->grp, scale,
                                        t->s, out);
}

/* Largest error of out against ref over the heads, each relative to its largest reference
 * magnitude (a NaN in out fails). */
static double rel_err(const struct setup *t)
{
    double worst = 0;
    for (int h = 0; h < t->grp; h++) {
        double e = tu_rel_err(t->out + (size_t)h * t->hd, t->ref + (size_t)h * t->hd, (size_t)t->hd);
        if (e > worst) worst = e;
    }
    return worst;
}

static void check(struct setup *t, const char *lv, const char *what)
{
    run(t, t->ref, 1);
    memset(t->out, 0xff, (size_t)t->grp * t->hd * sizeof(float));   /* NaN: all must be written */
    run(t, t->out, 0);
    double e = rel_err(t);
    if (!(e <= REL_TOL))
        fail_msg("%s at %s: grp %d hd %d span %d: relative error %g (limit %g)", what, lv, t->grp,
                 t->hd, t->span, e, REL_TOL);
}

static void test_group_matches_ref(void **state)
{
    (void)state;
    static const int grps[] = {1, 4, 8}, hds[] = {64, 128}, spans[] = {1, 7, 100, 1000};
    for (size_t l = 0; l < N_LEVELS; l++) {
        if (!tu_force_simd(levels[l])) continue;
        rng_state = 42;
        for (size_t g = 0; g < 3; g++)
            for (size_t d = 0; d < 2; d++)
                for (size_t s = 0; s < 4; s++) {
                    struct setup t;
                    setup_make(&t, spans[s], hds[d], grps[g], 2.0f);
                    check(&t, levels[l], "shapes");
                    setup_free(&t);
                }
    }
    qt_force_simd(NULL);
}

/* Head sizes other than 64/128: other multiples of 16 take the kernels' general body, the
 * rest the scalar reference. Odd group sizes and spans around the vector widths. */
static void test_odd_shapes(void **state)
{
    (void)state;
    static const int hds[] = {16, 32, 48, 80, 96, 256, 20, 72};
    static const int spans[] = {2, 8, 9, 15, 16, 17, 31, 33, 65};
    for (size_t l = 0; l < N_LEVELS; l++) {
        if (!tu_force_simd(levels[l])) continue;
        rng_state = 7;
        for (size_t d = 0; d < sizeof hds / sizeof hds[0]; d++)
            for (size_t s = 0; s < sizeof spans / sizeof spans[0]; s++) {
                struct setup t;
                setup_make(&t, spans[s], hds[d], 1 + (int)(s % 3) * 2, 1.0f);
                check(&t, levels[l], "odd shapes");
                setup_free(&t);
            }
    }
    qt_force_simd(NULL);
}

/* Masked positions (-INFINITY scores) get weight 0; scores thousands apart underflow to 0
 * without NaN; a huge query makes the softmax one-hot. */
static void test_extreme_scores(void **state)
{
    (void)state;
    for (size_t l = 0; l < N_LEVELS; l++) {
        if (!tu_force_simd(levels[l])) continue;
        rng_state = 99;
        for (int span = 1; span <= 300; span += 37) {
            struct setup t;
            setup_make(&t, span, 64, 4, 1.0f);
            for (int h = 0; h < 4; h++) t.q[(size_t)h * 64] = 1.0f;   /* -inf in k[0] gives -inf */
            for (int p = 1; p < span; p += 3) t.kc[(size_t)p * t.stride + 64] = -INFINITY;
            check(&t, levels[l], "-INFINITY scores");
            for (int p = 0; p < span; p++) {
                float *kr = t.kc + (size_t)p * t.stride + 64;
                for (int i = 0; i < 64; i++)
                    if (isfinite(kr[i])) kr[i] *= (p % 5 == 0) ? 3000.0f : 1.0f;
            }
            check(&t, levels[l], "scores far apart");
            for (size_t i = 0; i < (size_t)4 * 64; i++) t.q[i] *= 1e4f;
            check(&t, levels[l], "one-hot softmax");
            setup_free(&t);
        }
    }
    qt_force_simd(NULL);
}

/* The vector exp against double-precision exp: relative error within 2 float ulps (about
 * 2.4e-7) over the range softmax uses, and 0 below ln(FLT_MIN), -INFINITY included. */
static void test_exp(void **state)
{
    (void)state;
    enum { N = 4099 };
    float *x = tu_xmalloc(N * sizeof(float)), *y = tu_xmalloc(N * sizeof(float));
    for (size_t l = 0; l < N_LEVELS; l++) {
        if (!tu_force_simd(levels[l])) continue;
        rng_state = 3;
        for (int i = 0; i < N; i++)
            x[i] = -87.0f * (float)((double)(rng_splitmix64(&rng_state) >> 11) *
                                    (1.0 / 9007199254740992.0)) + (i % 2 ? 0.0f : 87.5f);
        x[0] = 0.0f, x[1] = -0.0f, x[2] = -1e-30f, x[3] = 87.0f, x[4] = -87.3f;
        attn_exp(x, y, N);
        double worst = 0;
        for (int i = 0; i < N; i++) {
            double want = exp((double)x[i]), rel = fabs(y[i] - want) / want;
            if (!(rel <= worst)) worst = rel;
        }
        if (!(worst <= 2.4e-7)) fail_msg("exp at %s: relative error %g", levels[l], worst);
        static const float under[] = {-INFINITY, -1e30f, -1000.0f, -103.0f, -88.0f, -87.34f};
        float u[6];
        attn_exp(under, u, 6);
        for (int i = 0; i < 6; i++) assert_true(u[i] >= 0.0f && u[i] < 1.2e-38f);
    }
    qt_force_simd(NULL);
    free(x), free(y);
}

/* attn_force_simd only ever lowers attention's level below quant's. */
static void test_level_override(void **state)
{
    (void)state;
    qt_force_simd(NULL);
    const char *q = qt_simd_level();
    attn_force_simd("scalar");
    assert_string_equal(attn_simd_level(), "scalar");
    attn_force_simd("avx512");
    assert_string_equal(attn_simd_level(), strcmp(q, "avx512novnni") == 0 ? "avx512" : q);
    attn_force_simd(NULL);
    if (tu_force_simd("scalar")) assert_string_equal(attn_simd_level(), "scalar");
    qt_force_simd(NULL);
}

TU_MAIN(cmocka_unit_test(test_group_matches_ref), cmocka_unit_test(test_odd_shapes),
        cmocka_unit_test(test_extreme_scores), cmocka_unit_test(test_exp),
        cmocka_unit_test(test_level_override))
