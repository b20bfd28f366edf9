/* Tests of gpu/quant: block formats, (de)quantization, matrix-vector kernels at every SIMD
 * level this CPU has, the batched product, fp16/bf16 conversions, and core/qrow's
 * independent dequantizer. */
#include "tests/testutil.h"

#include <immintrin.h>
#include <math.h>

#include "core/gguf.h"
#include "core/qrow.h"
#include "gpu/quant.h"
#include "gpu/quant_impl.h"
#include "gpu/rng.h"

/* gpu/ uses GGUF's type numbering without including core/: the two enums must agree. */
#define SAME_TYPE(t) ((int)QT_##t == (int)GGUF_T_##t)
_Static_assert(SAME_TYPE(F32) && SAME_TYPE(F16) && SAME_TYPE(BF16), "float type numbers");
_Static_assert(SAME_TYPE(Q4_0) && SAME_TYPE(Q8_0), "Q4_0/Q8_0 type numbers");
_Static_assert(SAME_TYPE(Q4_K) && SAME_TYPE(Q5_K) && SAME_TYPE(Q6_K), "K-quant type numbers");
_Static_assert(SAME_TYPE(Q4_1) && SAME_TYPE(Q5_0) && SAME_TYPE(Q5_1), "legacy type numbers");
_Static_assert(SAME_TYPE(Q2_K) && SAME_TYPE(Q3_K) && SAME_TYPE(IQ4_NL) && SAME_TYPE(IQ4_XS),
               "Q2_K/Q3_K/IQ4 type numbers");
#undef SAME_TYPE

static const int all_types[] = {QT_F32,  QT_F16,  QT_BF16, QT_Q8_0, QT_Q4_0,   QT_Q4_K,  QT_Q5_K, QT_Q6_K,
                                QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q2_K, QT_Q3_K, QT_IQ4_NL, QT_IQ4_XS};
/* Which prepared activation a type's kernels multiply: 32-element (struct qa8), 256-element
 * (struct qa8k) or the float vector itself. */
static int act_qa8(int t)
{
    return t == QT_Q8_0 || t == QT_Q4_0 || t == QT_Q4_1 || t == QT_Q5_0 || t == QT_Q5_1 || t == QT_IQ4_NL;
}
static int act_qa8k(int t)
{
    return t == QT_Q4_K || t == QT_Q5_K || t == QT_Q6_K || t == QT_Q2_K || t == QT_Q3_K || t == QT_IQ4_XS;
}
#define N_TYPES (sizeof all_types / sizeof all_types[0])
static const char *const levels[] = {"scalar", "avx2", "avx512novnni", "avx512"};
#define N_LEVELS (sizeof levels / sizeof levels[0])

/* Deterministic generator (gpu/rng's splitmix64) so failures reproduce. */
static uint64_t rng_state;
static uint64_t draw(void) { return rng_splitmix64(&rng_state); }
static double unit(void) { return (double)(draw() >> 11) * (1.0 / 9007199254740992.0); }
static float rng_gauss(void)
{
    double u = unit() + 1e-300, v = unit();
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}
/* Gaussian values with an occasional outlier and per-row scale, like real weights. */
static int outliers = 1;
static void fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++) {
        float g = rng_gauss() * scale;
        if (outliers && draw() % 97 == 0) g *= 6;
        x[i] = g;
    }
}

static void *xmalloc(size_t n) { return tu_xmalloc(n); }
static int force_level(const char *lv) { return tu_force_simd(lv); }

/* ---- type table ---------------------------------------------------------------------- */

static void test_type_table(void **state)
{
    (void)state;
    struct { int t; size_t be, bb; const char *name; } want[] = {
        {QT_F32, 1, 4, "F32"}, {QT_F16, 1, 2, "F16"}, {QT_BF16, 1, 2, "BF16"},
        {QT_Q8_0, 32, 34, "Q8_0"}, {QT_Q4_0, 32, 18, "Q4_0"}, {QT_Q4_K, 256, 144, "Q4_K"},
        {QT_Q5_K, 256, 176, "Q5_K"}, {QT_Q6_K, 256, 210, "Q6_K"}, {QT_Q4_1, 32, 20, "Q4_1"},
        {QT_Q5_0, 32, 22, "Q5_0"}, {QT_Q5_1, 32, 24, "Q5_1"}, {QT_Q2_K, 256, 84, "Q2_K"},
        {QT_Q3_K, 256, 110, "Q3_K"}, {QT_IQ4_NL, 32, 18, "IQ4_NL"}, {QT_IQ4_XS, 256, 136, "IQ4_XS"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_true(qt_supported(want[i].t));
        assert_int_equal(qt_block_elems(want[i].t), want[i].be);
        assert_int_equal(qt_block_bytes(want[i].t), want[i].bb);
        assert_string_equal(qt_name(want[i].t), want[i].name);
        assert_int_equal(qt_row_bytes(want[i].t, 4096), 4096 / want[i].be * want[i].bb);
        assert_int_equal(qrow_bytes((uint32_t)want[i].t, 4096), qt_row_bytes(want[i].t, 4096));
        /* gpu/'s table and core/gguf's agree on every type the kernels take */
        assert_int_equal(gguf_type_block_elems((uint32_t)want[i].t), want[i].be);
        assert_int_equal(gguf_type_block_bytes((uint32_t)want[i].t), want[i].bb);
        assert_string_equal(gguf_type_name((uint32_t)want[i].t), want[i].name);
    }
    int unsupported[] = {9, 15, 16, 21, 29, 31, 99, -1};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
        assert_false(qt_supported(unsupported[i]));
        assert_int_equal(qt_block_bytes(unsupported[i]), 0);
    }
}

/* Hand-made blocks decode to the values the ggml layout defines. */
static void test_known_blocks(void **state)
{
    (void)state;
    float y[256];
    /* Q4_0: d = 0.5; byte j holds element j (low nibble) and j+16 (high nibble). */
    struct blk_q4_0 b4 = {.d = 0x3800};
    for (int j = 0; j < 16; j++) b4.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    qt_dequant_row(QT_Q4_0, &b4, y, 32);
    for (int j = 0; j < 16; j++) {
        assert_true(y[j] == 0.5f * (j - 8));
        assert_true(y[j + 16] == 0.5f * (7 - j));
    }
    /* Q8_0: d = 2. */
    struct blk_q8_0 b8 = {.d = 0x4000};
    for (int j = 0; j < 32; j++) b8.qs[j] = (int8_t)(j * 8 - 128);
    qt_dequant_row(QT_Q8_0, &b8, y, 32);
    for (int j = 0; j < 32; j++) assert_true(y[j] == 2.0f * (j * 8 - 128));
    /* Q4_K: d = 1, dmin = 1; sub-block j has scale j+1 and min 2j (high bits exercised by
     * j >= 4), all quants 3 in the first half of each 64 and 12 in the second. */
    struct blk_q4_k bk;
    memset(&bk, 0, sizeof bk);
    bk.d = 0x3c00;
    bk.dmin = 0x3c00;
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; j++) { sc[j] = (uint8_t)(j + 1 + (j >= 4 ? 40 : 0)); mn[j] = (uint8_t)(2 * j + (j >= 4 ? 30 : 0)); }
    for (int j = 0; j < 4; j++) {
        bk.scales[j] = (uint8_t)((sc[j] & 63) | ((sc[j + 4] >> 4) << 6));
        bk.scales[j + 4] = (uint8_t)((mn[j] & 63) | ((mn[j + 4] >> 4) << 6));
        bk.scales[j + 8] = (uint8_t)((sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4));
    }
    memset(bk.qs, 3 | (12 << 4), sizeof bk.qs);
    qt_dequant_row(QT_Q4_K, &bk, y, 256);
    for (int e = 0; e < 256; e++) {
        int j = e / 32, q = (j & 1) ? 12 : 3;
        assert_true(y[e] == (float)(sc[j] * q - mn[j]));
    }
    /* Q6_K: d = 1, scale of group g = g - 8, element e has quant (e % 64) - 32. */
    struct blk_q6_k b6;
    memset(&b6, 0, sizeof b6);
    b6.d = 0x3c00;
    for (int g = 0; g < 16; g++) b6.scales[g] = (int8_t)(g - 8);
    for (int e = 0; e < 256; e++) {
        int q = e % 64, h = e / 128, c = (e % 128) / 32, l = e % 32;
        b6.ql[64 * h + 32 * (c & 1) + l] |= (uint8_t)((q & 15) << (4 * (c >> 1)));
        b6.qh[32 * h + l] |= (uint8_t)((q >> 4) << (2 * c));
    }
    qt_dequant_row(QT_Q6_K, &b6, y, 256);
    for (int e = 0; e < 256; e++) assert_true(y[e] == (float)((e / 16 - 8) * (e % 64 - 32)));
    /* Q4_1: d = 0.5, m = -2; Q5_1 the same with the fifth bit set on odd elements; Q5_0
     * (d = 0.5, stored +16) too. */
    struct blk_q4_1 b41 = {.d = 0x3800, .m = 0xc000};
    struct blk_q5_1 b51 = {.d = 0x3800, .m = 0xc000, .qh = {0xaa, 0xaa, 0xaa, 0xaa}};
    struct blk_q5_0 b50 = {.d = 0x3800, .qh = {0xaa, 0xaa, 0xaa, 0xaa}};
    for (int j = 0; j < 16; j++) b41.qs[j] = b51.qs[j] = b50.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    float y1[32], y0[32];
    qt_dequant_row(QT_Q4_1, &b41, y, 32);
    qt_dequant_row(QT_Q5_1, &b51, y1, 32);
    qt_dequant_row(QT_Q5_0, &b50, y0, 32);
    for (int e = 0; e < 32; e++) {
        int q = e < 16 ? e : 31 - e, q5 = q + (e & 1) * 16;
        assert_true(y[e] == 0.5f * q - 2);
        assert_true(y1[e] == 0.5f * q5 - 2);
        assert_true(y0[e] == 0.5f * (q5 - 16));
    }
    /* IQ4_NL: d = 2, element j indexes the grid at j % 16. */
    struct blk_iq4_nl bn = {.d = 0x4000};
    static const int grid[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
    for (int j = 0; j < 16; j++) bn.qs[j] = (uint8_t)(j | ((15 - j) << 4));
    qt_dequant_row(QT_IQ4_NL, &bn, y, 32);
    for (int e = 0; e < 32; e++) assert_true(y[e] == 2.0f * grid[e < 16 ? e : 31 - e]);
    /* IQ4_XS: d = 1, sub-block ib has scale 2·ib - 20 (6-bit, stored +32). */
    struct blk_iq4_xs bx;
    memset(&bx, 0, sizeof bx);
    bx.d = 0x3c00;
    for (int ib = 0; ib < 8; ib++) {
        int u = 2 * ib - 20 + 32;
        bx.scales_l[ib / 2] |= (uint8_t)((u & 15) << (4 * (ib % 2)));
        bx.scales_h |= (uint16_t)((u >> 4) << (2 * ib));
        for (int j = 0; j < 16; j++) bx.qs[16 * ib + j] = (uint8_t)(j | ((15 - j) << 4));
    }
    qt_dequant_row(QT_IQ4_XS, &bx, y, 256);
    for (int e = 0; e < 256; e++) {
        int l = e % 32;
        assert_true(y[e] == (float)((2 * (e / 32) - 20) * grid[l < 16 ? l : 31 - l]));
    }
    /* Q2_K: d = 1, dmin = 0.5; group g has scale g % 16 and min 15 - g; element e's quant
     * is e % 4 (bits 2j of qs[32h + l] for e = 128h + 32j + l). */
    struct blk_q2_k b2;
    memset(&b2, 0, sizeof b2);
    b2.d = 0x3c00;
    b2.dmin = 0x3800;
    for (int g = 0; g < 16; g++) b2.scales[g] = (uint8_t)(g | ((15 - g) << 4));
    for (int e = 0; e < 256; e++) b2.qs[32 * (e / 128) + e % 32] |= (uint8_t)((e % 4) << (2 * ((e % 128) / 32)));
    qt_dequant_row(QT_Q2_K, &b2, y, 256);
    for (int e = 0; e < 256; e++) assert_true(y[e] == (float)((e / 16) * (e % 4)) - 0.5f * (15 - e / 16));
    /* Q3_K: d = 1, group g's scale g - 8 (6-bit low nibbles in bytes 0-7, high pairs in
     * 8-11, +32); element e's quant (e % 8) - 4: low two bits in qs, bit 2 in hmask. */
    struct blk_q3_k b3;
    memset(&b3, 0, sizeof b3);
    b3.d = 0x3c00;
    for (int g = 0; g < 16; g++) {
        int u = g - 8 + 32;
        b3.scales[g % 8] |= (uint8_t)((u & 15) << (4 * (g / 8)));
        b3.scales[8 + g % 4] |= (uint8_t)((u >> 4) << (2 * (g / 4)));
    }
    for (int e = 0; e < 256; e++) {
        int q = e % 8;   /* stored q, value q - 4 */
        b3.qs[32 * (e / 128) + e % 32] |= (uint8_t)((q & 3) << (2 * ((e % 128) / 32)));
        if (q & 4) b3.hmask[e % 32] |= (uint8_t)(1 << (e / 32));
    }
    qt_dequant_row(QT_Q3_K, &b3, y, 256);
    for (int e = 0; e < 256; e++) assert_true(y[e] == (float)((e / 16 - 8) * (e % 8 - 4)));
}

/* ---- fp16 / bf16 ------------------------------------------------------------------------- */

static float bits_f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

__attribute__((target("f16c"))) static uint16_t hw_f2h(float f)
{
    return (uint16_t)_cvtss_sh(f, 0);
}
__attribute__((target("f16c"))) static float hw_h2f(uint16_t h) { return _cvtsh_ss(h); }

static void test_half_conversions(void **state)
{
    (void)state;
    assert_int_equal(qt_f2h(0.0f), 0x0000);
    assert_int_equal(qt_f2h(-0.0f), 0x8000);
    assert_int_equal(qt_f2h(1.0f), 0x3c00);
    assert_int_equal(qt_f2h(-2.0f), 0xc000);
    assert_int_equal(qt_f2h(65504.0f), 0x7bff);
    assert_int_equal(qt_f2h(65519.0f), 0x7bff);           /* below the rounding midpoint */
    assert_int_equal(qt_f2h(65520.0f), 0x7c00);           /* midpoint rounds to even = inf */
    assert_int_equal(qt_f2h(1e10f), 0x7c00);
    assert_int_equal(qt_f2h(INFINITY), 0x7c00);
    assert_int_equal(qt_f2h(-INFINITY), 0xfc00);
    assert_true(isnan(qt_h2f(qt_f2h(NAN))));
    assert_int_equal(qt_f2h(ldexpf(1, -24)), 0x0001);    /* smallest subnormal */
    assert_int_equal(qt_f2h(ldexpf(1, -25)), 0x0000);    /* tie to even: 0 */
    assert_int_equal(qt_f2h(ldexpf(1.5f, -25)), 0x0001);
    assert_int_equal(qt_f2h(ldexpf(3, -25)), 0x0002);    /* 1.5 ulp: tie to even 2 */
    assert_int_equal(qt_f2h(ldexpf(1023, -24)), 0x03ff); /* largest subnormal */
    assert_int_equal(qt_f2h(ldexpf(1, -14)), 0x0400);    /* smallest normal */
    assert_int_equal(qt_f2h(1.0f + ldexpf(1, -11)), 0x3c00);           /* tie, even */
    assert_int_equal(qt_f2h(1.0f + ldexpf(3, -11)), 0x3c02);           /* tie, up to even */
    assert_true(qt_h2f(0x0001) == ldexpf(1, -24));
    assert_true(qt_h2f(0x03ff) == ldexpf(1023, -24));
    assert_true(qt_h2f(0x7bff) == 65504.0f);
    assert_true(isinf(qt_h2f(0x7c00)) && qt_h2f(0x7c00) > 0);
    assert_true(isinf(qt_h2f(0xfc00)) && qt_h2f(0xfc00) < 0);
    assert_true(isnan(qt_h2f(0x7e00)) && isnan(qt_h2f(0x7c01)) && isnan(qt_h2f(0xfe00)));
    assert_true(signbit(qt_h2f(0x8000)));
    /* Every finite half survives half -> float -> half. */
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue;
        assert_int_equal(qt_f2h(qt_h2f((uint16_t)h)), h);
    }
    /* Against the F16C instructions, when present: all halves and a sweep of floats. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("f16c")) {
        for (uint32_t h = 0; h < 65536; h++) {
            float a = qt_h2f((uint16_t)h), b = hw_h2f((uint16_t)h);
            assert_int_equal(memcmp(&a, &b, 4), 0);
        }
        for (uint64_t u = 0; u < 0x100000000ull; u += 0x1234567 / 64 + 1) {
            float f = bits_f((uint32_t)u);
            assert_int_equal(qt_f2h(f), hw_f2h(f));
        }
    } else {
        print_message("note: no F16C, hardware comparison skipped\n");
    }
    /* bf16 */
    assert_int_equal(qt_f2bf(1.0f), 0x3f80);
    assert_int_equal(qt_f2bf(bits_f(0x3f808000)), 0x3f80);   /* tie to even (down) */
    assert_int_equal(qt_f2bf(bits_f(0x3f818000)), 0x3f82);   /* tie to even (up) */
    assert_int_equal(qt_f2bf(bits_f(0x3f808001)), 0x3f81);
    assert_int_equal(qt_f2bf(INFINITY), 0x7f80);
    assert_int_equal(qt_f2bf(-INFINITY), 0xff80);
    assert_int_equal(qt_f2bf(bits_f(0x7f7fffff)), 0x7f80);   /* FLT_MAX rounds to inf */
    assert_true(isnan(qt_bf2f(qt_f2bf(NAN))));
    assert_true(isnan(qt_bf2f(qt_f2bf(bits_f(0x7f800001)))));  /* low-payload NaN stays NaN */
    assert_int_equal(qt_f2bf(bits_f(0x00000001)), 0x0000);   /* subnormal rounds to 0 */
    assert_int_equal(qt_f2bf(bits_f(0x00010000)), 0x0001);   /* bf16 subnormal kept */
    assert_true(qt_bf2f(0x0001) == bits_f(0x00010000));
}

/* ---- quantize -> dequantize ------------------------------------------------------------ */

static void test_roundtrip(void **state)
{
    (void)state;
    /* Relative RMS error bounds on Gaussian data (σ = 1, no outliers), from the step
     * size Δ of each format (uniform rounding error is Δ/√12; amax of 32 Gaussians ≈ 2.5σ,
     * of 16 ≈ 2σ) plus ~25% margin (measured values in brackets):
     *   F32 exact; F16 2^-11 relative per value (2.1e-4); BF16 2^-8 (1.6e-3);
     *   Q8_0 Δ = amax/127 over 32: 0.0057σ (0.0056) -> bound 0.007;
     *   Q6_K Δ ≈ amax16/32 with 8-bit scales: ≈ 0.018σ (0.017) -> 0.022;
     *   Q5_K Δ = (max-min)/31 over 32, 6-bit scales/mins: ≤ 0.047σ, searched (0.035) -> 0.045;
     *   Q4_K Δ = (max-min)/15: ≤ 0.096σ, searched (0.072) -> 0.09;
     *   Q4_0 Δ = amax/8, symmetric: ≈ 0.09σ (0.087) -> 0.10;
 *   Q4_1 Δ = (max-min)/15 over 32, fp16 min: (0.078) -> 0.095; Q5_0 Δ = amax/16 (0.043)
 *   -> 0.052; Q5_1 Δ = (max-min)/31 (0.038) -> 0.047;
 *   Q2_K Δ = (max-min)/3 over 16, 4-bit scales/mins, searched (0.274) -> 0.33;
 *   Q3_K Δ ≈ amax16/4, 6-bit scales, searched (0.147) -> 0.18;
 *   IQ4_NL / IQ4_XS: a 16-value grid denser near 0, searched scale (0.076, 0.074) -> 0.092. */
    struct { int t; double rms; } b[] = {
        {QT_F32, 0}, {QT_F16, 3e-4}, {QT_BF16, 2.5e-3}, {QT_Q8_0, 0.007}, {QT_Q6_K, 0.022},
        {QT_Q5_K, 0.045}, {QT_Q4_K, 0.09}, {QT_Q4_0, 0.10},
        {QT_Q4_1, 0.095}, {QT_Q5_0, 0.052}, {QT_Q5_1, 0.047}, {QT_Q2_K, 0.33}, {QT_Q3_K, 0.18},
        {QT_IQ4_NL, 0.092}, {QT_IQ4_XS, 0.092},
    };
    const size_t n = 4096;
    float *x = xmalloc(n * 4), *y = xmalloc(n * 4);
    uint8_t *q = xmalloc(qt_row_bytes(QT_F32, n));
    rng_state = 11;
    outliers = 0;
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++) {
        fill(x, n, 1.0f);
        qt_quant_row(b[i].t, x, q, n);
        qt_dequant_row(b[i].t, q, y, n);
        double se = 0, sx = 0, maxrel = 0;
        for (size_t k = 0; k < n; k++) {
            double e = (double)y[k] - x[k];
            se += e * e;
            sx += (double)x[k] * x[k];
            if (x[k] != 0) maxrel = fmax(maxrel, fabs(e / x[k]));
        }
        double rms = sqrt(se / sx);
        print_message("roundtrip %-5s relative rms error %.5f (bound %.5f)\n", qt_name(b[i].t), rms, b[i].rms);
        assert_true(rms <= b[i].rms);
        if (b[i].t == QT_F16) assert_true(maxrel <= ldexp(1, -11));
        if (b[i].t == QT_BF16) assert_true(maxrel <= ldexp(1, -8));
        /* Zero rows decode to zeros, and scaled rows keep their error relative. */
        memset(x, 0, n * 4);
        qt_quant_row(b[i].t, x, q, n);
        qt_dequant_row(b[i].t, q, y, n);
        for (size_t k = 0; k < n; k++) assert_true(y[k] == 0.0f);
        fill(x, n, 1e-3f);
        qt_quant_row(b[i].t, x, q, n);
        qt_dequant_row(b[i].t, q, y, n);
        se = sx = 0;
        for (size_t k = 0; k < n; k++) { double e = (double)y[k] - x[k]; se += e * e; sx += (double)x[k] * x[k]; }
        assert_true(sqrt(se / sx) <= b[i].rms * 1.05 + 1e-6);
    }
    /* Q8_0 per element: |error| <= d/2 up to the fp16 rounding of d (2^-11 relative of
     * d * 127). */
    fill(x, n, 1.0f);
    qt_quant_row(QT_Q8_0, x, q, n);
    qt_dequant_row(QT_Q8_0, q, y, n);
    for (size_t blk = 0; blk < n / 32; blk++) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(x[32 * blk + j]));
        for (int j = 0; j < 32; j++)
            assert_true(fabsf(y[32 * blk + j] - x[32 * blk + j]) <= amax / 254 + amax * 0x1p-11f);
    }
    outliers = 1;
    free(x); free(y); free(q);
}

/* ---- matrix-vector products ---------------------------------------------------------- */

/* The quantized activation as floats, read from the internal layout, so the kernels can be
 * checked to float-rounding accuracy against exactly what they multiply. */
static void act_values(int type, const void *act, size_t n, float *xq, float *dhalf)
{
    if (act_qa8(type)) {
        const struct qa8 *a = act;
        for (size_t i = 0; i < n; i++) { xq[i] = a[i / 32].d * a[i / 32].q[i % 32]; dhalf[i] = a[i / 32].d / 2; }
    } else if (act_qa8k(type)) {
        const struct qa8k *a = act;
        for (size_t i = 0; i < n; i++) { xq[i] = a[i / 256].d * a[i / 256].q[i % 256]; dhalf[i] = a[i / 256].d / 2; }
        for (size_t b = 0; b < n / 256; b++)
            for (int g = 0; g < 16; g++) {
                int s = 0;
                for (int k = 0; k < 16; k++) s += a[b].q[16 * g + k];
                assert_int_equal(s, a[b].bsums[g]);
            }
    } else {
        memcpy(xq, act, n * 4);
        for (size_t i = 0; i < n; i++) dhalf[i] = 0;
    }
}

static void check_matvec(int type, size_t rows, size_t cols, const char *lv)
{
    size_t rb = qt_row_bytes(type, cols);
    float *w = xmalloc(cols * 4), *wd = xmalloc(rows * cols * 4), *x = xmalloc(cols * 4);
    float *xq = xmalloc(cols * 4), *dh = xmalloc(cols * 4), *y = xmalloc((rows + 2) * 4);
    uint8_t *W = xmalloc(rows * rb), *act = xmalloc(qt_act_bytes(type, cols));
    for (size_t r = 0; r < rows; r++) {
        fill(w, cols, 0.02f * (1 + (float)(r % 5)));
        qt_quant_row(type, w, W + r * rb, cols);
        qt_dequant_row(type, W + r * rb, wd + r * cols, cols);
    }
    fill(x, cols, 1.0f);
    qt_act_prepare(type, x, cols, act);
    act_values(type, act, cols, xq, dh);
    /* Tolerances, per type, relative to Σ|w||x|:
     *  - F32, F16, BF16: the activation is x itself, so only float rounding:
     *    rel = 4·(cols/16 + 8)·2^-24 (e.g. 5.6e-5 for cols = 5632).
     *  - Q8_0, Q4_0, Q4_K, Q5_K, Q6_K: x is rounded to 8 bits per block (32 or 256 values)
     *    first, each x_i moving by at most d/2 = amax_block/254; so against the plain
     *    dequantize-then-dot reference the bound is Σ|w_i|·d_i/2 (about 1% of Σ|w||x| for
     *    Gaussian data) plus the rounding term. That bound alone is loose, so each kernel
     *    is also held to the rounding term against the exact product with x̂ (the 8-bit
     *    activation it really multiplies), which no misplaced block or scale can pass.
     * Rounding bound for the kernels' float arithmetic: per block one rounding of the
     * scale product and one of the accumulation, so (blocks + 8)·2^-24 relative to
     * Σ|w||x̂|; ×4 covers K-quants' d·Σ − dmin·Σ, whose two terms can each be up to about
     * twice |w|. F32/F16/BF16 accumulate in float over up to 16 lanes: n/16 + 8 roundings. */
    size_t nblk = qt_block_elems(type) > 1 ? cols / 32 : cols / 16;
    double rel = 4.0 * (double)(nblk + 8) * 0x1p-24;
    /* Split the rows in two ranges so r0 > 0 is covered; y has guards past the end. */
    size_t mid = rows / 3;
    y[rows] = y[rows + 1] = 12345.0f;
    qt_matvec(type, W, cols, act, y, 0, mid);
    qt_matvec(type, W, cols, act, y + mid, mid, rows);
    assert_true(y[rows] == 12345.0f && y[rows + 1] == 12345.0f);
    for (size_t r = 0; r < rows; r++) {
        const float *wr = wd + r * cols;
        double ref_q = 0, ref_x = 0, mag = 0, actbound = 0;
        for (size_t i = 0; i < cols; i++) {
            ref_q += (double)wr[i] * xq[i];
            ref_x += (double)wr[i] * x[i];
            mag += fabs((double)wr[i] * xq[i]);
            actbound += fabs((double)wr[i]) * dh[i];
        }
        double e = fabs((double)y[r] - ref_q);
        if (!(e <= rel * mag + 1e-30)) {
            fail_msg("%s %s %zux%zu row %zu: y=%.9g ref=%.9g err=%.3g > %.3g", lv, qt_name(type), rows,
                     cols, r, (double)y[r], ref_q, e, rel * mag);
        }
        /* Against the unquantized x: activation rounding moves each x_i by at most d/2. */
        assert_true(fabs((double)y[r] - ref_x) <= actbound * 1.0001 + rel * mag + 1e-30);
    }
    free(w); free(wd); free(x); free(xq); free(dh); free(y); free(W); free(act);
}

static void test_matvec(void **state)
{
    (void)state;
    struct { size_t rows, cols; } shapes[] = {
        {1, 256}, {7, 256}, {13, 512}, {33, 4096}, {6, 5632}, {19, 2048}, {3, 11008},
    };
    for (size_t l = 0; l < N_LEVELS; l++) {
        if (!force_level(levels[l])) continue;
        rng_state = 1000 + l;
        for (size_t t = 0; t < N_TYPES; t++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
                check_matvec(all_types[t], shapes[s].rows, shapes[s].cols, levels[l]);
        /* Formats with 32-element blocks also take rows that are not a multiple of 256. */
        check_matvec(QT_Q8_0, 5, 96, levels[l]);
        check_matvec(QT_Q8_0, 3, 160, levels[l]);   /* 5 blocks: 4-block steps plus a tail */
        check_matvec(QT_Q8_0, 2, 224, levels[l]);   /* 7 blocks */
        check_matvec(QT_Q4_0, 3, 224, levels[l]);
        check_matvec(QT_Q4_0, 9, 32, levels[l]);
        for (int t = QT_Q4_1; t <= QT_Q5_1; t++)
            if (qt_supported(t)) {
                check_matvec(t, 3, 224, levels[l]);
                check_matvec(t, 9, 32, levels[l]);
            }
        check_matvec(QT_IQ4_NL, 3, 160, levels[l]);
        check_matvec(QT_F16, 4, 40, levels[l]);
        check_matvec(QT_BF16, 3, 24, levels[l]);
        check_matvec(QT_F32, 5, 8, levels[l]);
        check_matvec(QT_F32, 3, 7, levels[l]);      /* float rows of any length */
        check_matvec(QT_F16, 2, 21, levels[l]);
        check_matvec(QT_BF16, 2, 3, levels[l]);
    }
    qt_force_simd(NULL);
}

/* Every level computes the same products up to float rounding on extreme inputs too:
 * saturated int8 quants (-128 in Q8_0 weights, full-scale activations). */
static void test_matvec_extremes(void **state)
{
    (void)state;
    const size_t rows = 5, cols = 512;
    struct blk_q8_0 W[5][16];
    float x[512], y[N_LEVELS][5];
    for (size_t r = 0; r < rows; r++)
        for (int b = 0; b < 16; b++) {
            W[r][b].d = 0x3c00;
            for (int j = 0; j < 32; j++) W[r][b].qs[j] = (int8_t)((r + j + b) % 2 ? -128 : 127);
        }
    for (size_t i = 0; i < cols; i++) x[i] = (i % 3) ? 1.0f : -1.0f;
    void *act = xmalloc(qt_act_bytes(QT_Q8_0, cols));
    qt_act_prepare(QT_Q8_0, x, cols, act);
    int nlv = 0;
    for (size_t l = 0; l < N_LEVELS; l++) {
        if (!force_level(levels[l])) continue;
        qt_matvec(QT_Q8_0, W, cols, act, y[nlv++], 0, rows);
    }
    qt_force_simd(NULL);
    for (size_t r = 0; r < rows; r++) {
        double ref = 0;
        for (int b = 0; b < 16; b++)
            for (int j = 0; j < 32; j++) ref += (double)W[r][b].qs[j] * x[32 * b + j];
        for (int k = 0; k < nlv; k++) assert_true(fabs(y[k][r] - ref) <= 1e-3 * fabs(ref) + 1e-3);
    }
    free(act);
}

/* IQ4_NL's 512-bit VNNI matrix-vector kernel forms the 256-bit kernel's sums in the same
 * lanes and order, so every SIMD level above scalar gives the same bits (decode results do
 * not depend on the level); random and arbitrary bytes (every index, extreme scales), odd
 * block counts included. */
static void test_iq4_nl_levels_same(void **state)
{
    (void)state;
    const size_t cols_list[] = {32, 96, 160, 2048, 5632}, rows = 7;
    rng_state = 4242;
    for (size_t c = 0; c < sizeof cols_list / sizeof cols_list[0]; c++)
        for (int rep = 0; rep < 2; rep++) {
            size_t cols = cols_list[c], rb = qt_row_bytes(QT_IQ4_NL, cols);
            float *w = xmalloc(cols * 4), *x = xmalloc(cols * 4), y[N_LEVELS][7];
            uint8_t *W = xmalloc(rows * rb), *act = xmalloc(qt_act_bytes(QT_IQ4_NL, cols));
            for (size_t r = 0; r < rows; r++) {
                fill(w, cols, 0.05f);
                qt_quant_row(QT_IQ4_NL, w, W + r * rb, cols);
            }
            if (rep == 1)
                for (size_t i = 0; i < rows * rb; i++) W[i] = (uint8_t)(i % 18 < 2 ? (draw() & 0x3bff) >> (8 * (i % 2)) : draw());
            fill(x, cols, rep ? 100.0f : 1.0f);
            qt_act_prepare(QT_IQ4_NL, x, cols, act);
            int nlv = 0;
            for (size_t l = 1; l < N_LEVELS; l++) {
                if (!force_level(levels[l])) continue;
                qt_matvec(QT_IQ4_NL, W, cols, act, y[nlv++], 0, rows);
            }
            for (int k = 1; k < nlv; k++)
                if (memcmp(y[0], y[k], rows * sizeof(float)) != 0) fail_msg("IQ4_NL %zu cols: level %d differs", cols, k);
            free(w); free(x); free(W); free(act);
        }
    qt_force_simd(NULL);
}

/* Activation quantization is the same arithmetic at every level, so the prepared bytes are
 * identical; ties (x·id exactly k + 0.5) round to even everywhere. */
static void test_act_identical(void **state)
{
    (void)state;
    const size_t n = 1024;
    float *x = xmalloc(n * 4);
    rng_state = 99;
    fill(x, n, 3.0f);
    /* block 0: amax 127 so id = 1 and the values below are exact ties */
    x[0] = 127.0f;
    for (int j = 1; j < 32; j++) x[j] = (float)(j - 16) + 0.5f;
    x[256] = -127.0f;   /* same for the first K block */
    for (int j = 1; j < 64; j++) x[256 + j] = (float)(j % 40 - 20) + 0.5f;
    for (int j = 512; j < 544; j++) x[j] = 0;   /* an all-zero block */
    int kinds[2] = {QT_Q8_0, QT_Q4_K};
    for (int k = 0; k < 2; k++) {
        size_t nb = qt_act_bytes(kinds[k], n);
        uint8_t *ref = xmalloc(nb), *got = xmalloc(nb);
        memset(ref, 0, nb);
        qt_force_simd("scalar");
        qt_act_prepare(kinds[k], x, n, ref);
        if (kinds[k] == QT_Q8_0) {
            const struct qa8 *a = (const void *)ref;
            assert_true(a[0].d == 1.0f);
            for (int j = 1; j < 32; j++) {
                int t = (j - 16), want = (t % 2 == 0) ? t : t + 1;   /* t + 0.5 to even */
                assert_int_equal(a[0].q[j], want);
            }
        }
        for (size_t l = 1; l < N_LEVELS; l++) {
            if (!force_level(levels[l])) continue;
            memset(got, 0, nb);
            qt_act_prepare(kinds[k], x, n, got);
            assert_memory_equal(ref, got, nb);
        }
        free(ref);
        free(got);
    }
    qt_force_simd(NULL);
    free(x);
}

/* Two dequantizers' floats are the same bits (any NaN matching any NaN). */
static void expect_same_bits(const float *a, const float *b, size_t n, const char *who, int type,
                             int rep)
{
    for (size_t i = 0; i < n; i++)
        if (!(isnan(a[i]) && isnan(b[i])) && memcmp(&a[i], &b[i], 4) != 0)
            fail_msg("%s %s rep %d elem %zu: %a vs %a", who, qt_name(type), rep, i, (double)a[i],
                     (double)b[i]);
}

/* The SIMD row dequantizers behind qt_matmul give exactly the reference's floats. */
static void test_dequant_fast_identical(void **state)
{
    (void)state;
    const size_t n = 1024;
    float *x = xmalloc(n * 4), *a = xmalloc(n * 4), *b = xmalloc(n * 4);
    uint8_t *q = xmalloc(n * 4);
    rng_state = 31;
    for (size_t l = 0; l < N_LEVELS; l++) {
        if (!force_level(levels[l])) continue;
        for (size_t t = 0; t < N_TYPES; t++)
            for (int rep = 0; rep < 3; rep++) {
                size_t m = (qt_block_elems(all_types[t]) == 1 && rep == 1) ? n - 3 : n;   /* odd tail */
                fill(x, m, 1.0f);
                qt_quant_row(all_types[t], x, q, m);
                if (rep == 2)   /* arbitrary bytes, NaN/inf scales included */
                    for (size_t i = 0; i < qt_row_bytes(all_types[t], m); i++) q[i] = (uint8_t)draw();
                qt_dequant_row(all_types[t], q, a, m);
                qt_dequant_row_fast(all_types[t], q, b, m);
                expect_same_bits(a, b, m, levels[l], all_types[t], rep);
            }
    }
    qt_force_simd(NULL);
    free(x); free(a); free(b); free(q);
}

/* ---- batched product ----------------------------------------------------------------- */

static void test_matmul(void **state)
{
    (void)state;
    struct { size_t rows, cols, n; } shapes[] = {{300, 256, 3}, {100, 2048, 17}, {7, 512, 1}, {70, 5632, 2},
                                                {600, 2048, 5},    /* several L2 tiles */
                                                {37, 160, 6},      /* odd block tail (32-blocks) */
                                                {50, 512, 40},     /* SGEMM where no batch kernel */
                                                /* groups of 8 and 4 activations and one left over,
                                                 * column spans and row blocks of the K-quant
                                                 * batch kernels */
                                                {70, 5632, 13}};
    rng_state = 77;
    for (size_t l = 0; l < N_LEVELS; l++) {
        if (!force_level(levels[l])) continue;
        for (size_t t = 0; t < N_TYPES; t++)
            for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
                int type = all_types[t];
                size_t rows = shapes[s].rows, cols = shapes[s].cols, n = shapes[s].n;
                if (cols % qt_block_elems(type)) continue;
                size_t rb = qt_row_bytes(type, cols);
                float *w = xmalloc(cols * 4), *wd = xmalloc(rows * cols * 4), *X = xmalloc(n * cols * 4);
                float *Y = xmalloc(n * rows * 4);
                uint8_t *W = xmalloc(rows * rb);
                float *scratch = xmalloc(qt_matmul_scratch_bytes(type, rows, cols, n));
                for (size_t r = 0; r < rows; r++) {
                    fill(w, cols, 0.05f);
                    qt_quant_row(type, w, W + r * rb, cols);
                    qt_dequant_row(type, W + r * rb, wd + r * cols, cols);
                }
                fill(X, n * cols, 1.0f);
                qt_matmul(type, W, rows, cols, X, n, Y, scratch);
                int q8 = qt_matmul_int8(type, n);   /* int8 kernels (else dequantize + SGEMM) */
                uint8_t *act = xmalloc(qt_act_bytes(type, cols));
                float *xq = xmalloc(cols * 4), *dh = xmalloc(cols * 4), *yv = xmalloc(rows * 4);
                for (size_t i = 0; i < n; i++) {
                    /* Integer types multiply the activation decode would: qt_act_prepare of
                     * row i, so each result equals qt_matvec's bit for bit (the prompt path
                     * then matches token-by-token decoding), and is checked against the exact
                     * product with that 8-bit x̂ to check_matvec's rounding bound:
                     * 4·(cols/32 + 8)·2^-24 relative to Σ|w||x̂|. */
                    qt_act_prepare(type, X + i * cols, cols, act);
                    if (q8) act_values(type, act, cols, xq, dh);
                    else memcpy(xq, X + i * cols, cols * 4);   /* SGEMM multiplies x itself */
                    if (q8) qt_matvec(type, W, cols, act, yv, 0, rows);
                    for (size_t r = 0; r < rows; r++) {
                        double ref = 0, mag = 0;
                        for (size_t k = 0; k < cols; k++) {
                            ref += (double)xq[k] * wd[r * cols + k];
                            mag += fabs((double)xq[k] * wd[r * cols + k]);
                        }
                        /* F16/BF16 (and integer formats at batch sizes where a SIMD level has
                         * no batch kernel) go through SGEMM, which accumulates in float: at most
                         * cols·2^-24 relative to Σ|x||w|, in practice far less; 2·10^-5
                         * (~cols/4·u for cols = 5632) is tight enough to catch any misplaced
                         * row or tile. */
                        double rel = q8 ? 4.0 * (double)(cols / 32 + 8) * 0x1p-24 : 2e-5;
                        double e = fabs(Y[i * rows + r] - ref);
                        if (!(e <= rel * mag + 1e-30))
                            fail_msg("matmul %s %zux%zu n=%zu [%zu,%zu]: %g vs %g", qt_name(type), rows, cols,
                                     n, i, r, (double)Y[i * rows + r], ref);
                        if (q8 && memcmp(&Y[i * rows + r], &yv[r], 4) != 0)
                            fail_msg("matmul %s %zux%zu n=%zu [%zu,%zu]: %a, matvec %a", qt_name(type), rows,
                                     cols, n, i, r, (double)Y[i * rows + r], (double)yv[r]);
                    }
                }
                /* The two-step form (X prepared in two ranges, a later slice of W's rows)
                 * gives the same floats; types on the float path at this n have no act bytes. */
                size_t ab = qt_matmul_act_bytes(type, cols, n), r0 = rows / 3, m = rows - r0;
                if ((ab != 0) != q8) fail_msg("matmul %s n=%zu: act bytes %zu", qt_name(type), n, ab);
                if (ab) {
                    void *pa = aligned_alloc(64, (ab + 63) & ~(size_t)63);
                    float *Y2 = xmalloc(n * m * 4);
                    assert_non_null(pa);
                    qt_matmul_prepare(type, X, cols, n / 2, n, pa);
                    qt_matmul_prepare(type, X, cols, 0, n / 2, pa);
                    qt_matmul_prepared(type, W + r0 * rb, m, cols, pa, n, Y2);
                    for (size_t i = 0; i < n; i++)
                        if (memcmp(Y2 + i * m, Y + i * rows + r0, m * 4) != 0)
                            fail_msg("matmul_prepared %s %zux%zu n=%zu: row %zu differs", qt_name(type), rows,
                                     cols, n, i);
                    free(pa); free(Y2);
                }
                free(act); free(xq); free(dh); free(yv);
                free(w); free(wd); free(X); free(Y); free(W); free(scratch);
            }
    }
    qt_force_simd(NULL);
    /* Degenerate shapes: no columns gives zeros; no rows or no inputs touch nothing. */
    float Y[6] = {1, 2, 3, 4, 5, 6}, X[2] = {1, 1};
    uint8_t Wz[4] = {0};
    qt_matmul(QT_Q8_0, Wz, 3, 0, X, 2, Y, NULL);
    for (int i = 0; i < 6; i++) assert_true(Y[i] == 0.0f);
    Y[0] = 7;
    qt_matmul(QT_F32, Wz, 0, 32, X, 2, Y, NULL);
    qt_matmul(QT_F32, Wz, 3, 32, X, 0, Y, NULL);
    assert_true(Y[0] == 7.0f);
}

/* ---- core/qrow ------------------------------------------------------------------------ */

static void test_qrow_matches(void **state)
{
    (void)state;
    const size_t n = 1024;
    float *x = xmalloc(n * 4), *a = xmalloc(n * 4), *b = xmalloc(n * 4);
    uint8_t *q = xmalloc(n * 4);
    rng_state = 5;
    for (size_t t = 0; t < N_TYPES; t++)
        for (int rep = 0; rep < 4; rep++) {
            fill(x, n, rep == 3 ? 1e-6f : 1.0f);
            qt_quant_row(all_types[t], x, q, n);
            if (rep == 2) {   /* arbitrary bytes, as a file may hold: all bit patterns */
                for (size_t i = 0; i < qt_row_bytes(all_types[t], n); i++) q[i] = (uint8_t)draw();
                if (all_types[t] == QT_F32) memset(q, 0x3f, 4);
            }
            qt_dequant_row(all_types[t], q, a, n);
            assert_int_equal(qrow_dequant((uint32_t)all_types[t], q, b, n), 0);
            expect_same_bits(a, b, n, "core/qrow", all_types[t], rep);
        }
    assert_int_equal(qrow_dequant(9, q, b, 32), -1);   /* Q8_1: activations only, never weights */
    assert_int_equal(qrow_dequant(99, q, b, 32), -1);
    assert_int_equal(qrow_dequant(QT_Q4_K, q, b, 100), -1);
    assert_int_equal(qrow_bytes(QT_Q8_0, 33), 0);
    free(x); free(a); free(b); free(q);
}

/* ---- packed 16-row layouts (Q4_0, IQ4_NL, IQ4_XS, Q4_K, Q8_0 at AVX-512 VNNI) ------------------- */

/* One packed shape: decode (in two row ranges) against the dequantized rows times the 8-bit
 * activation, to check_matvec's rounding bound; batch equal to decode bit for bit; the
 * full groups' results equal at every SIMD level (each lane's operations are the same). */
static void check_packed(int type, size_t rows, size_t cols, size_t n)
{
    int pt = qt_packed_type(type);
    assert_int_equal(pt, type | QT_PACKED);
    size_t rb = qt_row_bytes(type, cols), full = rows & ~(size_t)15;
    assert_int_equal(qt_row_bytes(pt, cols), rb);
    float *w = xmalloc(cols * 4), *wd = xmalloc(rows * cols * 4), *X = xmalloc(n * cols * 4);
    float *Y = xmalloc(n * rows * 4), *yv = xmalloc((rows + 2) * 4), *ys = xmalloc(rows * 4);
    float *xq = xmalloc(cols * 4), *dh = xmalloc(cols * 4);
    uint8_t *W = xmalloc(rows * rb), *P = xmalloc(rows * rb), *act = xmalloc(qt_act_bytes(pt, cols));
    float *scratch = xmalloc(qt_matmul_scratch_bytes(pt, rows, cols, n));
    for (size_t r = 0; r < rows; r++) {
        fill(w, cols, 0.02f * (1 + (float)(r % 5)));
        qt_quant_row(type, w, W + r * rb, cols);
        qt_dequant_row(type, W + r * rb, wd + r * cols, cols);
    }
    size_t cut = rows > 16 ? 16 : rows;   /* packed by two callers, as threads do */
    memset(P, 0xA5, rows * rb);
    qt_pack(type, W, rows, cols, P, 0, cut);
    qt_pack(type, W, rows, cols, P, cut, rows);
    if (rows > full) assert_memory_equal(P + full * rb, W + full * rb, (rows - full) * rb);
    fill(X, n * cols, 1.0f);
    qt_matmul(pt, P, rows, cols, X, n, Y, scratch);
    double rel = 4.0 * (double)(cols / 32 + 8) * 0x1p-24;
    for (size_t i = 0; i < n; i++) {
        qt_act_prepare(pt, X + i * cols, cols, act);
        act_values(type, act, cols, xq, dh);
        yv[rows] = yv[rows + 1] = 12345.0f;
        qt_matvec(pt, P, cols, act, yv, 0, cut);
        qt_matvec(pt, P, cols, act, yv + cut, cut, rows);
        assert_true(yv[rows] == 12345.0f && yv[rows + 1] == 12345.0f);
        for (size_t r = 0; r < rows; r++) {
            double ref = 0, mag = 0;
            for (size_t k = 0; k < cols; k++) {
                ref += (double)xq[k] * wd[r * cols + k];
                mag += fabs((double)xq[k] * wd[r * cols + k]);
            }
            if (!(fabs(yv[r] - ref) <= rel * mag + 1e-30))
                fail_msg("packed %s %zux%zu [%zu,%zu]: %g vs %g", qt_name(type), rows, cols, i, r, (double)yv[r], ref);
            if (memcmp(&Y[i * rows + r], &yv[r], 4) != 0)
                fail_msg("packed %s %zux%zu n=%zu [%zu,%zu]: batch %a, matvec %a", qt_name(type), rows, cols, n, i,
                         r, (double)Y[i * rows + r], (double)yv[r]);
        }
        const char *lv = qt_simd_level();
        for (size_t l = 0; l < N_LEVELS; l++) {   /* the same floats at every level */
            if (!force_level(levels[l])) continue;
            qt_matvec(pt, P, cols, act, ys, 0, rows);
            if (full && memcmp(ys, yv, full * 4) != 0)
                fail_msg("packed %s %zux%zu: level %s differs", qt_name(type), rows, cols, levels[l]);
        }
        qt_force_simd(lv);
    }
    free(w); free(wd); free(X); free(Y); free(yv); free(ys); free(xq); free(dh);
    free(W); free(P); free(act); free(scratch);
}

static void test_packed(void **state)
{
    (void)state;
    if (!force_level("avx512") || qt_packed_type(QT_Q4_0) == QT_Q4_0) {
        print_message("note: no packed layout at this SIMD level, not tested\n");
        qt_force_simd(NULL);
        return;
    }
    /* rows: one group, tails of 1..15 rows, fewer than 16 (all tail), several L2 tiles;
     * cols: odd block counts (a lone last block), not a multiple of 64, long rows; n: the
     * batch kernel's groups of 8 and 4 activations and ones left over. */
    struct { size_t rows, cols, n; } shapes[] = {
        {16, 32, 3}, {37, 160, 6}, {7, 96, 2}, {100, 2048, 17}, {33, 4096, 1}, {49, 5632, 13},
        {600, 2048, 5}, {31, 224, 9},
    };
    rng_state = 4242;
    static const int types32[] = {QT_Q4_0, QT_IQ4_NL, QT_Q8_0};
    for (int t = 0; t < 3; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            force_level("avx512");
            check_packed(types32[t], shapes[s].rows, shapes[s].cols, shapes[s].n);
        }
    /* IQ4_XS and Q4_K: the same row and batch cases over whole super-blocks, 1 to 22 of them */
    struct { size_t rows, cols, n; } ks[] = {
        {16, 256, 3}, {37, 512, 6}, {7, 256, 2}, {100, 2048, 17}, {33, 4096, 1}, {49, 5632, 13},
        {600, 2048, 5}, {31, 768, 9},
    };
    for (int t = 0; t < 2; t++)
        for (size_t s = 0; s < sizeof ks / sizeof ks[0]; s++) {
            force_level("avx512");
            check_packed(t ? QT_Q4_K : QT_IQ4_XS, ks[s].rows, ks[s].cols, ks[s].n);
        }
    qt_force_simd("avx2");   /* other levels keep the row layout */
    assert_int_equal(qt_packed_type(QT_Q4_0), QT_Q4_0);
    assert_int_equal(qt_packed_type(QT_IQ4_XS), QT_IQ4_XS);
    assert_int_equal(qt_packed_type(QT_Q4_K), QT_Q4_K);
    assert_int_equal(qt_packed_type(QT_Q8_0), QT_Q8_0);
    if (force_level("avx512novnni")) {
        assert_int_equal(qt_packed_type(QT_Q4_K), QT_Q4_K);
        assert_int_equal(qt_packed_type(QT_Q8_0), QT_Q8_0);
    }
    if (force_level("avx512")) {   /* the other K-quants keep the row layout */
        assert_int_equal(qt_packed_type(QT_Q5_K), QT_Q5_K);
        assert_int_equal(qt_packed_type(QT_Q6_K), QT_Q6_K);
    }
    qt_force_simd(NULL);
}

/* Packing's transpose: the level's (vector at AVX-512) equals the reference byte for byte,
 * contiguous or scattered source words, with and without the +128 flip, at odd strides. */
static void test_tr16(void **state)
{
    (void)state;
    const size_t rb = 1000;   /* rows not a multiple of 64 bytes apart */
    uint8_t *src = xmalloc(16 * rb), a[1024], *bb = aligned_alloc(64, 1024 + 64);
    assert_non_null(bb);
    for (size_t i = 0; i < 16 * rb; i++) src[i] = (uint8_t)(i * 131 + (i >> 7));
    const size_t offs[][4] = {{0, 16, 32, 48}, {3, 19, 35, 51}, {2, 20, 38, 56}, {2, 18, 36, 52}, {900, 40, 7, 600}};
    const char *lv = qt_simd_level();
    for (size_t l = 0; l < N_LEVELS; l++) {
        if (!force_level(levels[l])) continue;
        qt_tr16_fn tr = qt_tr16_level();
        for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++)
            for (int flip = 0; flip < 4; flip++) {
                /* chunks 64-byte aligned (the vector one streams them) or not */
                uint8_t *b = bb + (flip & 2 ? 4 : 0);
                memset(a, 0x11, sizeof a);
                memset(b, 0x22, sizeof a);
                uint8_t *da[4] = {a + 768, a, a + 256, a + 512}, *db[4] = {b + 768, b, b + 256, b + 512};
                qt_tr16_ref(src, rb, offs[k], da, flip & 1);
                tr(src, rb, offs[k], db, flip & 1);
                if (memcmp(a, b, sizeof a) != 0) fail_msg("tr16 at %s, offsets %zu, case %d differs", levels[l], k, flip);
                /* and it is the transpose: word c of row r in lane r of chunk c */
                for (int r = 0; r < 16; r++)
                    for (int c = 0; c < 16; c++)
                        for (int e = 0; e < 4; e++)
                            assert_int_equal(da[c / 4][64 * (c % 4) + 4 * r + e],
                                             (uint8_t)(src[(size_t)r * rb + offs[k][c / 4] + 4 * (c % 4) + (size_t)e] ^ (flip & 1 ? 0x80 : 0)));
            }
    }
    qt_force_simd(lv);
    free(src);
    free(bb);
}

static void test_simd_selection(void **state)
{
    (void)state;
    qt_force_simd("scalar");
    assert_string_equal(qt_simd_level(), "scalar");
    /* automatic selection honours CMIF_SIMD (never above what the CPU has) */
    setenv("CMIF_SIMD", "scalar", 1);
    qt_force_simd(NULL);
    assert_string_equal(qt_simd_level(), "scalar");
    unsetenv("CMIF_SIMD");
    qt_force_simd("no-such-level");   /* unknown: back to automatic */
    const char *lv = qt_simd_level();
    assert_true(strcmp(lv, "scalar") == 0 || strcmp(lv, "avx2") == 0 || strcmp(lv, "avx512") == 0 ||
                strcmp(lv, "avx512novnni") == 0);
    qt_force_simd(NULL);
}

TU_MAIN(
    cmocka_unit_test(test_type_table),      cmocka_unit_test(test_known_blocks),
    cmocka_unit_test(test_half_conversions), cmocka_unit_test(test_roundtrip),
    cmocka_unit_test(test_matvec),          cmocka_unit_test(test_matvec_extremes), cmocka_unit_test(test_act_identical),
    cmocka_unit_test(test_iq4_nl_levels_same),
    cmocka_unit_test(test_dequant_fast_identical),
    cmocka_unit_test(test_matmul),          cmocka_unit_test(test_qrow_matches),
    cmocka_unit_test(test_packed),          cmocka_unit_test(test_tr16),
    cmocka_unit_test(test_simd_selection))
