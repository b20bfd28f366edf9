/* gpu/quant: ggml block formats, reference (de)quantizers, the scalar kernels and the run-time
 * choice between scalar, AVX2 and AVX-512 kernels (quant_avx2.c, quant_avx512.c). */
#include "gpu/quant.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include "gpu/quant_impl.h"

_Static_assert(sizeof(struct blk_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(struct blk_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(struct blk_q4_k) == 144, "q4_K layout");
_Static_assert(sizeof(struct blk_q5_k) == 176, "q5_K layout");
_Static_assert(sizeof(struct blk_q6_k) == 210, "q6_K layout");
_Static_assert(sizeof(struct blk_q4_1) == 20, "q4_1 layout");
_Static_assert(sizeof(struct blk_q5_0) == 22, "q5_0 layout");
_Static_assert(sizeof(struct blk_q5_1) == 24, "q5_1 layout");
_Static_assert(sizeof(struct blk_q2_k) == 84, "q2_K layout");
_Static_assert(sizeof(struct blk_q3_k) == 110, "q3_K layout");
_Static_assert(sizeof(struct blk_iq4_nl) == 18, "iq4_nl layout");
_Static_assert(sizeof(struct blk_iq4_xs) == 136, "iq4_xs layout");
_Static_assert(sizeof(struct qa8) == 40, "qa8 layout");
_Static_assert(sizeof(struct qa8k) == 292, "qa8k layout");

/* ---- type table ----------------------------------------------------------------------- */

struct qt_info { int type; const char *name; size_t elems, bytes; int slot; };

static const struct qt_info infos[] = {
    {QT_F32, "F32", 1, 4, QK_F32},
    {QT_F16, "F16", 1, 2, QK_F16},
    {QT_BF16, "BF16", 1, 2, QK_BF16},
    {QT_Q8_0, "Q8_0", QK8_0, sizeof(struct blk_q8_0), QK_Q8_0},
    {QT_Q4_0, "Q4_0", QK4_0, sizeof(struct blk_q4_0), QK_Q4_0},
    {QT_Q4_K, "Q4_K", QK_K, sizeof(struct blk_q4_k), QK_Q4_K},
    {QT_Q5_K, "Q5_K", QK_K, sizeof(struct blk_q5_k), QK_Q5_K},
    {QT_Q6_K, "Q6_K", QK_K, sizeof(struct blk_q6_k), QK_Q6_K},
    {QT_Q4_1, "Q4_1", 32, sizeof(struct blk_q4_1), QK_Q4_1},
    {QT_Q5_0, "Q5_0", 32, sizeof(struct blk_q5_0), QK_Q5_0},
    {QT_Q5_1, "Q5_1", 32, sizeof(struct blk_q5_1), QK_Q5_1},
    {QT_Q2_K, "Q2_K", QK_K, sizeof(struct blk_q2_k), QK_Q2_K},
    {QT_Q3_K, "Q3_K", QK_K, sizeof(struct blk_q3_k), QK_Q3_K},
    {QT_IQ4_NL, "IQ4_NL", 32, sizeof(struct blk_iq4_nl), QK_IQ4_NL},
    {QT_IQ4_XS, "IQ4_XS", QK_K, sizeof(struct blk_iq4_xs), QK_IQ4_XS},
    {QT_Q4_0 | QT_PACKED, "Q4_0x16", QK4_0, sizeof(struct blk_q4_0), QK_Q4_0_X16},
    {QT_IQ4_NL | QT_PACKED, "IQ4_NLx16", 32, sizeof(struct blk_iq4_nl), QK_IQ4_NL_X16},
    {QT_IQ4_XS | QT_PACKED, "IQ4_XSx16", QK_K, sizeof(struct blk_iq4_xs), QK_IQ4_XS_X16},
    {QT_Q4_K | QT_PACKED, "Q4_Kx16", QK_K, sizeof(struct blk_q4_k), QK_Q4_K_X16},
    {QT_Q8_0 | QT_PACKED, "Q8_0x16", QK8_0, sizeof(struct blk_q8_0), QK_Q8_0_X16},
};

static const struct qt_info *info(int type)
{
    for (size_t i = 0; i < sizeof infos / sizeof infos[0]; i++)
        if (infos[i].type == type) return &infos[i];
    return NULL;
}

int qt_supported(int type) { return info(type) != NULL; }

const char *qt_name(int type)
{
    const struct qt_info *t = info(type);
    return t ? t->name : "unknown";
}

size_t qt_block_elems(int type)
{
    const struct qt_info *t = info(type);
    return t ? t->elems : 0;
}

size_t qt_block_bytes(int type)
{
    const struct qt_info *t = info(type);
    return t ? t->bytes : 0;
}

size_t qt_row_bytes(int type, size_t n)
{
    const struct qt_info *t = info(type);
    return t ? n / t->elems * t->bytes : 0;
}

/* ---- reference dequantization ---------------------------------------------------------- */

static void dq_q4_0(const struct blk_q4_0 *b, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, b++, y += 32) {
        float d = qt_h2f(b->d);
        for (int j = 0; j < 16; j++) {
            y[j] = (float)((b->qs[j] & 0xF) - 8) * d;
            y[j + 16] = (float)((b->qs[j] >> 4) - 8) * d;
        }
    }
}

static void dq_q8_0(const struct blk_q8_0 *b, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, b++, y += 32) {
        float d = qt_h2f(b->d);
        for (int j = 0; j < 32; j++) y[j] = (float)b->qs[j] * d;
    }
}

/* The fields of super-block i of a Q4_K (five 0) or Q5_K (five 1) row; qh is NULL for Q4_K. */
struct k45 { const uint8_t *scales, *qs, *qh; uint16_t d, dmin; };

static inline struct k45 k45_block(const uint8_t *W, size_t i, int five)
{
    struct k45 k;
    if (five) {
        const struct blk_q5_k *b = (const struct blk_q5_k *)W + i;
        k = (struct k45){b->scales, b->qs, b->qh, b->d, b->dmin};
    } else {
        const struct blk_q4_k *b = (const struct blk_q4_k *)W + i;
        k = (struct k45){b->scales, b->qs, NULL, b->d, b->dmin};
    }
    return k;
}

static void dq_q45_k(const uint8_t *W, float *y, size_t nb, int five)
{
    for (size_t i = 0; i < nb; i++) {
        struct k45 b = k45_block(W, i, five);
        float d = qt_h2f(b.d), dmin = qt_h2f(b.dmin);
        const uint8_t *q = b.qs;
        for (int c = 0; c < 4; c++, q += 32, y += 64) {
            uint8_t s0, m0, s1, m1;
            qt_scale_min_k4(2 * c, b.scales, &s0, &m0);
            qt_scale_min_k4(2 * c + 1, b.scales, &s1, &m1);
            float d0 = d * s0, o0 = dmin * m0, d1 = d * s1, o1 = dmin * m1;
            for (int l = 0; l < 32; l++) {
                int v0 = q[l] & 0xF, v1 = q[l] >> 4;
                if (five) {
                    v0 |= ((b.qh[l] >> (2 * c)) & 1) << 4;
                    v1 |= ((b.qh[l] >> (2 * c + 1)) & 1) << 4;
                }
                y[l] = d0 * (float)v0 - o0;
                y[l + 32] = d1 * (float)v1 - o1;
            }
        }
    }
}

static void dq_q6_k(const struct blk_q6_k *b, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, b++) {
        float d = qt_h2f(b->d);
        for (int h = 0; h < 2; h++, y += 128) {
            const uint8_t *ql = b->ql + 64 * h, *qh = b->qh + 32 * h;
            const int8_t *sc = b->scales + 8 * h;
            for (int l = 0; l < 32; l++) {
                int g = l / 16;
                int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l] = d * (float)(sc[g] * q1);
                y[l + 32] = d * (float)(sc[g + 2] * q2);
                y[l + 64] = d * (float)(sc[g + 4] * q3);
                y[l + 96] = d * (float)(sc[g + 6] * q4);
            }
        }
    }
}

/* Q4_1 (five 0) and Q5_1 (five 1): d·q + m; Q5_0 (five 1, no min): d·(q - 16). */
static void dq_q5(const uint8_t *W, float *y, size_t nb, int type)
{
    const size_t bs = qt_block_bytes(type);
    for (size_t i = 0; i < nb; i++, W += bs, y += 32) {
        int hasm = type != QT_Q5_0, five = type != QT_Q4_1;
        float d = qt_h2f((uint16_t)(W[0] | W[1] << 8)), m = hasm ? qt_h2f((uint16_t)(W[2] | W[3] << 8)) : 0;
        const uint8_t *qh = W + (hasm ? 4 : 2), *qs = qh + (five ? 4 : 0);
        uint32_t h = five ? (uint32_t)qh[0] | (uint32_t)qh[1] << 8 | (uint32_t)qh[2] << 16 | (uint32_t)qh[3] << 24 : 0;
        for (int j = 0; j < 16; j++) {
            int v0 = (qs[j] & 0xF) | (int)(((h >> j) & 1) << 4), v1 = (qs[j] >> 4) | (int)(((h >> (j + 16)) & 1) << 4);
            if (hasm) {
                y[j] = (float)v0 * d + m;
                y[j + 16] = (float)v1 * d + m;
            } else {
                y[j] = (float)(v0 - 16) * d;
                y[j + 16] = (float)(v1 - 16) * d;
            }
        }
    }
}

static void dq_q2_k(const struct blk_q2_k *b, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, b++, y += 256) {
        float d = qt_h2f(b->d), dmin = qt_h2f(b->dmin);
        for (int e = 0; e < 256; e++) {
            int q = (b->qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3;
            uint8_t sc = b->scales[e / 16];
            y[e] = d * (float)(sc & 0xF) * (float)q - dmin * (float)(sc >> 4);
        }
    }
}

static void dq_q3_k(const struct blk_q3_k *b, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, b++, y += 256) {
        float d = qt_h2f(b->d);
        int8_t sc[16];
        qt_q3k_scales(b->scales, sc);
        for (int e = 0; e < 256; e++) {
            int h = e / 128, j = (e % 128) / 32, l = e % 32;
            int q = ((b->qs[32 * h + l] >> (2 * j)) & 3) - ((b->hmask[l] >> (4 * h + j)) & 1 ? 0 : 4);
            y[e] = d * (float)sc[e / 16] * (float)q;
        }
    }
}

static void dq_iq4_nl(const struct blk_iq4_nl *b, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, b++, y += 32) {
        float d = qt_h2f(b->d);
        for (int j = 0; j < 16; j++) {
            y[j] = d * (float)qt_iq4nl_values[b->qs[j] & 0xF];
            y[j + 16] = d * (float)qt_iq4nl_values[b->qs[j] >> 4];
        }
    }
}

static void dq_iq4_xs(const struct blk_iq4_xs *b, float *y, size_t nb)
{
    for (size_t i = 0; i < nb; i++, b++) {
        float d = qt_h2f(b->d);
        for (int ib = 0; ib < 8; ib++, y += 32) {
            float dl = d * (float)qt_iq4xs_scale(b, ib);
            const uint8_t *qs = b->qs + 16 * ib;
            for (int j = 0; j < 16; j++) {
                y[j] = dl * (float)qt_iq4nl_values[qs[j] & 0xF];
                y[j + 16] = dl * (float)qt_iq4nl_values[qs[j] >> 4];
            }
        }
    }
}

void qt_dequant_row(int type, const void *src, float *dst, size_t n)
{
    const uint16_t *h = src;
    switch (type) {
    case QT_F32: memcpy(dst, src, n * sizeof(float)); break;
    case QT_F16: for (size_t i = 0; i < n; i++) dst[i] = qt_h2f(h[i]); break;
    case QT_BF16: for (size_t i = 0; i < n; i++) dst[i] = qt_bf2f(h[i]); break;
    case QT_Q4_0: dq_q4_0(src, dst, n / QK4_0); break;
    case QT_Q8_0: dq_q8_0(src, dst, n / QK8_0); break;
    case QT_Q4_K: dq_q45_k(src, dst, n / QK_K, 0); break;
    case QT_Q5_K: dq_q45_k(src, dst, n / QK_K, 1); break;
    case QT_Q6_K: dq_q6_k(src, dst, n / QK_K); break;
    case QT_Q4_1: case QT_Q5_0: case QT_Q5_1: dq_q5(src, dst, n / 32, type); break;
    case QT_Q2_K: dq_q2_k(src, dst, n / QK_K); break;
    case QT_Q3_K: dq_q3_k(src, dst, n / QK_K); break;
    case QT_IQ4_NL: dq_iq4_nl(src, dst, n / 32); break;
    case QT_IQ4_XS: dq_iq4_xs(src, dst, n / QK_K); break;
    default: memset(dst, 0, n * sizeof(float)); break;
    }
}

/* ---- reference quantization -------------------------------------------------------------- */

static inline int nearest(float x) { return qt_round(x); }

static inline int clampi(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* max/min without fmaxf's NaN rules, which keep GCC from inlining it (a libm call per
 * element made quantization ~20x slower). */
static inline float maxf(float a, float b) { return a > b ? a : b; }
static inline float minf(float a, float b) { return a < b ? a : b; }

static void q_q8_0(const float *x, struct blk_q8_0 *b, size_t nb)
{
    for (size_t i = 0; i < nb; i++, b++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = maxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = d > 0 ? 1.0f / d : 0;
        b->d = qt_f2h(d);
        for (int j = 0; j < 32; j++) b->qs[j] = (int8_t)clampi(nearest(x[j] * id), -127, 127);
    }
}

static void q_q4_0(const float *x, struct blk_q4_0 *b, size_t nb)
{
    for (size_t i = 0; i < nb; i++, b++, x += 32) {
        float amax = 0, vmax = 0;   /* the value of largest magnitude, with its sign */
        for (int j = 0; j < 32; j++)
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); vmax = x[j]; }
        float d = vmax / -8.0f, id = d != 0 ? 1.0f / d : 0;
        b->d = qt_f2h(d);
        for (int j = 0; j < 16; j++) {
            int a = clampi((int)(x[j] * id + 8.5f), 0, 15);
            int c = clampi((int)(x[j + 16] * id + 8.5f), 0, 15);
            b->qs[j] = (uint8_t)(a | (c << 4));
        }
    }
}

/* Fit x[0..n) ≈ a*L - m with L in [0, nmax], a >= 0, m >= 0 (the K-quant sub-block model):
 * tries a few grid steps around (max-min)/nmax, refits each assignment by least squares
 * and keeps the one with the lowest squared error. Returns a; *mout = m. (n <= 32) */
static float fit_affine(const float *x, int n, int nmax, float *mout)
{
    float lo = x[0], hi = x[0], sx = 0, sxx = 0;
    for (int i = 0; i < n; i++) {
        lo = minf(lo, x[i]);
        hi = maxf(hi, x[i]);
        sx += x[i];
        sxx += x[i] * x[i];
    }
    if (lo > 0) lo = 0;
    if (hi <= lo) { *mout = -lo; return 0; }
    float best_a = (hi - lo) / nmax, best_b = lo, best_err = INFINITY;
    for (int it = -2; it <= 2; it++) {
        float is = ((float)nmax + 0.25f * it) / (hi - lo);
        /* integer sums and four partial float sums keep the dependency chains short */
        int isl = 0, isll = 0;
        float p[4] = {0, 0, 0, 0};
        for (int i = 0; i < n; i++) {
            int l = clampi(nearest(is * (x[i] - lo)), 0, nmax);
            isl += l; isll += l * l; p[i & 3] += x[i] * (float)l;
        }
        float sl = (float)isl, sll = (float)isll, sxl = (p[0] + p[1]) + (p[2] + p[3]);
        float D = n * sll - sl * sl;
        if (D <= 0) continue;
        float a = (n * sxl - sl * sx) / D, b = (sll * sx - sl * sxl) / D;
        if (b > 0) { b = 0; a = sxl / sll; }   /* the format can only subtract */
        if (!(a > 0)) continue;
        /* squared error of this (a, b) on its own assignment, in closed form */
        float err = a * a * sll + 2 * a * b * sl + n * b * b - 2 * a * sxl - 2 * b * sx + sxx;
        if (err < best_err) { best_err = err; best_a = a; best_b = b; }
    }
    *mout = -best_b;
    return best_a;
}

/* Super-block of 8 sub-blocks of 32 (Q4_K, Q5_K): 6-bit scales and mins, fp16 d and dmin.
 * L receives the final quants in [0, nmax]. */
static void q_kquant_sb(const float *x, int nmax, uint16_t *dh, uint16_t *dminh,
                        uint8_t scales[12], uint8_t L[256])
{
    float sc[8], mn[8], msc = 0, mmn = 0;
    for (int j = 0; j < 8; j++) {
        sc[j] = fit_affine(x + 32 * j, 32, nmax, &mn[j]);
        msc = maxf(msc, sc[j]);
        mmn = maxf(mmn, mn[j]);
    }
    float isc = msc > 0 ? 63.0f / msc : 0, imn = mmn > 0 ? 63.0f / mmn : 0;
    uint8_t ls[8], lm[8];
    for (int j = 0; j < 8; j++) {
        ls[j] = (uint8_t)clampi(nearest(isc * sc[j]), 0, 63);
        lm[j] = (uint8_t)clampi(nearest(imn * mn[j]), 0, 63);
    }
    *dh = qt_f2h(msc / 63.0f);
    *dminh = qt_f2h(mmn / 63.0f);
    memset(scales, 0, 12);
    for (int j = 0; j < 8; j++) {
        if (j < 4) {
            scales[j] |= ls[j];
            scales[j + 4] |= lm[j];
        } else {
            scales[j + 4] = (uint8_t)((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
            scales[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
            scales[j] |= (uint8_t)((lm[j] >> 4) << 6);
        }
    }
    /* Requantize against the scales as they will be decoded. */
    float d = qt_h2f(*dh), dmin = qt_h2f(*dminh);
    for (int j = 0; j < 8; j++) {
        uint8_t s, m;
        qt_scale_min_k4(j, scales, &s, &m);
        float dl = d * s, ml = dmin * m;
        for (int i = 0; i < 32; i++)
            L[32 * j + i] = (uint8_t)(dl > 0 ? clampi(nearest((x[32 * j + i] + ml) / dl), 0, nmax) : 0);
    }
}

static void q_q4_k(const float *x, struct blk_q4_k *b, size_t nb)
{
    uint8_t L[256];
    for (size_t i = 0; i < nb; i++, b++, x += 256) {
        q_kquant_sb(x, 15, &b->d, &b->dmin, b->scales, L);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++)
                b->qs[32 * c + l] = (uint8_t)(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
}

static void q_q5_k(const float *x, struct blk_q5_k *b, size_t nb)
{
    uint8_t L[256];
    for (size_t i = 0; i < nb; i++, b++, x += 256) {
        q_kquant_sb(x, 31, &b->d, &b->dmin, b->scales, L);
        memset(b->qh, 0, sizeof b->qh);
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) {
                int a = L[64 * c + l], e = L[64 * c + 32 + l];
                b->qs[32 * c + l] = (uint8_t)((a & 0xF) | ((e & 0xF) << 4));
                b->qh[l] |= (uint8_t)(((a >> 4) << (2 * c)) | ((e >> 4) << (2 * c + 1)));
            }
    }
}

/* Symmetric fit of 16 values to a*q, q in [-32, 31]; returns a (signed). */
static float fit_sym16(const float *x)
{
    float amax = 0, vmax = 0, sxx = 0;
    for (int i = 0; i < 16; i++) {
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); vmax = x[i]; }
        sxx += x[i] * x[i];
    }
    if (amax == 0) return 0;
    float best_a = vmax / -32.0f, best_err = INFINITY;
    for (int it = -2; it <= 2; it++) {
        float is = (-32.0f + 0.4f * it) / vmax;
        int isqq = 0;
        float p[4] = {0, 0, 0, 0};
        for (int i = 0; i < 16; i++) {
            int q = clampi(nearest(is * x[i]), -32, 31);
            isqq += q * q; p[i & 3] += x[i] * (float)q;
        }
        float sqq = (float)isqq, sxq = (p[0] + p[1]) + (p[2] + p[3]);
        if (sqq == 0) continue;
        float a = sxq / sqq, err = sxx - a * sxq;   /* residual of the least-squares a */
        if (err < best_err) { best_err = err; best_a = a; }
    }
    return best_a;
}

static void q_q6_k(const float *x, struct blk_q6_k *b, size_t nb)
{
    uint8_t L[256];
    for (size_t i = 0; i < nb; i++, b++, x += 256) {
        float sc[16], amax = 0, vmax = 0;
        for (int g = 0; g < 16; g++) {
            sc[g] = fit_sym16(x + 16 * g);
            if (fabsf(sc[g]) > amax) { amax = fabsf(sc[g]); vmax = sc[g]; }
        }
        float isc = vmax != 0 ? -128.0f / vmax : 0;
        b->d = qt_f2h(vmax != 0 ? 1.0f / isc : 0);
        float d = qt_h2f(b->d);
        for (int g = 0; g < 16; g++) {
            b->scales[g] = (int8_t)clampi(nearest(isc * sc[g]), -128, 127);
            float dl = d * b->scales[g];
            for (int k = 0; k < 16; k++)
                L[16 * g + k] = (uint8_t)(32 + (dl != 0 ? clampi(nearest(x[16 * g + k] / dl), -32, 31) : 0));
        }
        for (int h = 0; h < 2; h++) {
            const uint8_t *Lh = L + 128 * h;
            for (int l = 0; l < 32; l++) {
                int q1 = Lh[l], q2 = Lh[l + 32], q3 = Lh[l + 64], q4 = Lh[l + 96];
                b->ql[64 * h + l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                b->ql[64 * h + l + 32] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                b->qh[32 * h + l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        }
    }
}

/* Q4_1, Q5_0, Q5_1 (ggml's reference rounding): min/max for the affine ones, the value of
 * largest magnitude mapped to -16 for Q5_0. */
static void q_q5(const float *x, uint8_t *W, size_t nb, int type)
{
    const size_t bs = qt_block_bytes(type);
    int hasm = type != QT_Q5_0, five = type != QT_Q4_1, nmax = five ? 31 : 15;
    for (size_t i = 0; i < nb; i++, W += bs, x += 32) {
        float lo = x[0], hi = x[0], amax = 0, vmax = 0;
        for (int j = 0; j < 32; j++) {
            lo = minf(lo, x[j]);
            hi = maxf(hi, x[j]);
            if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); vmax = x[j]; }
        }
        float d = hasm ? (hi - lo) / (float)nmax : vmax / -16.0f, id = d != 0 ? 1.0f / d : 0;
        float base = hasm ? lo : 0, add = hasm ? 0.5f : 16.5f;
        uint16_t dh = qt_f2h(d), mh = qt_f2h(lo);
        memcpy(W, &dh, 2);
        if (hasm) memcpy(W + 2, &mh, 2);
        uint8_t *qh = W + (hasm ? 4 : 2), *qs = qh + (five ? 4 : 0);
        uint32_t h = 0;
        for (int j = 0; j < 16; j++) {
            int a = clampi((int)((x[j] - base) * id + add), 0, nmax);
            int c = clampi((int)((x[j + 16] - base) * id + add), 0, nmax);
            qs[j] = (uint8_t)((a & 0xF) | ((c & 0xF) << 4));
            h |= (uint32_t)(a >> 4) << j | (uint32_t)(c >> 4) << (j + 16);
        }
        if (five)
            for (int k = 0; k < 4; k++) qh[k] = (uint8_t)(h >> (8 * k));
    }
}

/* Index of the IQ4_NL table value nearest to v. */
static int iq4_index(float v)
{
    int best = 0;
    float be = fabsf(v - qt_iq4nl_values[0]);
    for (int k = 1; k < 16; k++) {
        float e = fabsf(v - qt_iq4nl_values[k]);
        if (e < be) { be = e; best = k; }
    }
    return best;
}

/* Scale of 32 values on the IQ4_NL grid: tries inverse scales around table[0]/vmax (the
 * largest value at the table's end), refits each assignment by least squares and keeps the
 * best; idx receives the indices for the returned scale. */
static float fit_iq4(const float *x, uint8_t idx[32])
{
    float amax = 0, vmax = 0;
    for (int j = 0; j < 32; j++)
        if (fabsf(x[j]) > amax) { amax = fabsf(x[j]); vmax = x[j]; }
    memset(idx, 8, 32);   /* table value 1 times a zero scale */
    if (amax == 0) return 0;
    float best_d = 0, best_score = -1;
    for (int it = -7; it <= 7; it++) {
        float id = ((float)qt_iq4nl_values[0] + (float)it) / vmax, sqx = 0, sqq = 0;
        uint8_t L[32];
        for (int j = 0; j < 32; j++) {
            L[j] = (uint8_t)iq4_index(id * x[j]);
            float q = qt_iq4nl_values[L[j]];
            sqx += q * x[j];
            sqq += q * q;
        }
        /* the least-squares scale sqx/sqq leaves sxx - sqx²/sqq: maximise sqx²/sqq */
        if (sqq > 0 && sqx * sqx / sqq > best_score) {
            best_score = sqx * sqx / sqq;
            best_d = sqx / sqq;
            memcpy(idx, L, 32);
        }
    }
    return best_d;
}

static void q_iq4_nl(const float *x, struct blk_iq4_nl *b, size_t nb)
{
    uint8_t L[32];
    for (size_t i = 0; i < nb; i++, b++, x += 32) {
        b->d = qt_f2h(fit_iq4(x, L));
        for (int j = 0; j < 16; j++) b->qs[j] = (uint8_t)(L[j] | (L[j + 16] << 4));
    }
}

static void q_iq4_xs(const float *x, struct blk_iq4_xs *b, size_t nb)
{
    uint8_t L[32];
    for (size_t i = 0; i < nb; i++, b++, x += 256) {
        float sc[8], amax = 0, vmax = 0;
        for (int ib = 0; ib < 8; ib++) {
            sc[ib] = fit_iq4(x + 32 * ib, L);
            if (fabsf(sc[ib]) > amax) { amax = fabsf(sc[ib]); vmax = sc[ib]; }
        }
        float d = -vmax / 32.0f, id = d != 0 ? 1.0f / d : 0;
        b->d = qt_f2h(d);
        b->scales_h = 0;
        memset(b->scales_l, 0, sizeof b->scales_l);
        float dd = qt_h2f(b->d);
        for (int ib = 0; ib < 8; ib++) {
            int l = clampi(nearest(id * sc[ib]), -32, 31);
            b->scales_l[ib / 2] |= (uint8_t)(((l + 32) & 0xF) << (4 * (ib % 2)));
            b->scales_h |= (uint16_t)(((l + 32) >> 4) << (2 * ib));
            float dl = dd * (float)l;
            for (int j = 0; j < 32; j++) L[j] = (uint8_t)(dl != 0 ? iq4_index(x[32 * ib + j] / dl) : 8);
            for (int j = 0; j < 16; j++) b->qs[16 * ib + j] = (uint8_t)(L[j] | (L[j + 16] << 4));
        }
    }
}

/* 2-bit quants of a 256-element block in the Q2_K/Q3_K order: element 128h + 32j + l in
 * bits 2j of byte 32h + l. */
static void pack2(const uint8_t L[256], uint8_t qs[64])
{
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            const uint8_t *p = L + 128 * h + l;
            qs[32 * h + l] = (uint8_t)((p[0] & 3) | (p[32] & 3) << 2 | (p[64] & 3) << 4 | (p[96] & 3) << 6);
        }
}

static void q_q2_k(const float *x, struct blk_q2_k *b, size_t nb)
{
    uint8_t L[256];
    for (size_t i = 0; i < nb; i++, b++, x += 256) {
        float sc[16], mn[16], msc = 0, mmn = 0;
        for (int g = 0; g < 16; g++) {
            sc[g] = fit_affine(x + 16 * g, 16, 3, &mn[g]);
            msc = maxf(msc, sc[g]);
            mmn = maxf(mmn, mn[g]);
        }
        b->d = qt_f2h(msc / 15.0f);
        b->dmin = qt_f2h(mmn / 15.0f);
        float isc = msc > 0 ? 15.0f / msc : 0, imn = mmn > 0 ? 15.0f / mmn : 0;
        float d = qt_h2f(b->d), dmin = qt_h2f(b->dmin);
        for (int g = 0; g < 16; g++) {
            int ls = clampi(nearest(isc * sc[g]), 0, 15), lm = clampi(nearest(imn * mn[g]), 0, 15);
            b->scales[g] = (uint8_t)(ls | (lm << 4));
            float dl = d * (float)ls, ml = dmin * (float)lm;
            for (int k = 0; k < 16; k++)
                L[16 * g + k] = (uint8_t)(dl > 0 ? clampi(nearest((x[16 * g + k] + ml) / dl), 0, 3) : 0);
        }
        pack2(L, b->qs);
    }
}

/* Symmetric fit of 16 values to a*q, q in [-4, 3]; returns a (signed). */
static float fit_sym3(const float *x)
{
    float amax = 0, vmax = 0, sxx = 0;
    for (int i = 0; i < 16; i++) {
        if (fabsf(x[i]) > amax) { amax = fabsf(x[i]); vmax = x[i]; }
        sxx += x[i] * x[i];
    }
    if (amax == 0) return 0;
    float best_a = vmax / -4.0f, best_err = INFINITY;
    for (int it = -3; it <= 3; it++) {
        float is = (-4.0f + 0.1f * it) / vmax, sxq = 0;
        int isqq = 0;
        for (int i = 0; i < 16; i++) {
            int q = clampi(nearest(is * x[i]), -4, 3);
            isqq += q * q;
            sxq += x[i] * (float)q;
        }
        if (isqq == 0) continue;
        float a = sxq / (float)isqq, err = sxx - a * sxq;
        if (err < best_err) { best_err = err; best_a = a; }
    }
    return best_a;
}

static void q_q3_k(const float *x, struct blk_q3_k *b, size_t nb)
{
    uint8_t L[256];
    for (size_t i = 0; i < nb; i++, b++, x += 256) {
        float sc[16], amax = 0, vmax = 0;
        for (int g = 0; g < 16; g++) {
            sc[g] = fit_sym3(x + 16 * g);
            if (fabsf(sc[g]) > amax) { amax = fabsf(sc[g]); vmax = sc[g]; }
        }
        float isc = vmax != 0 ? -32.0f / vmax : 0;
        b->d = qt_f2h(vmax != 0 ? 1.0f / isc : 0);
        memset(b->scales, 0, sizeof b->scales);
        memset(b->hmask, 0, sizeof b->hmask);
        float d = qt_h2f(b->d);
        for (int g = 0; g < 16; g++) {
            int l = clampi(nearest(isc * sc[g]), -32, 31), u = l + 32;
            b->scales[g % 8] |= (uint8_t)((u & 0xF) << (4 * (g / 8)));
            b->scales[8 + g % 4] |= (uint8_t)((u >> 4) << (2 * (g / 4)));
            float dl = d * (float)l;
            for (int k = 0; k < 16; k++) {
                int e = 16 * g + k, q = 4 + (dl != 0 ? clampi(nearest(x[e] / dl), -4, 3) : 0);
                if (q > 3) b->hmask[e % 32] |= (uint8_t)(1 << (e / 32));
                L[e] = (uint8_t)(q & 3);
            }
        }
        pack2(L, b->qs);
    }
}

void qt_quant_row(int type, const float *src, void *dst, size_t n)
{
    uint16_t *h = dst;
    switch (type) {
    case QT_F32: memcpy(dst, src, n * sizeof(float)); break;
    case QT_F16: for (size_t i = 0; i < n; i++) h[i] = qt_f2h(src[i]); break;
    case QT_BF16: for (size_t i = 0; i < n; i++) h[i] = qt_f2bf(src[i]); break;
    case QT_Q4_0: q_q4_0(src, dst, n / QK4_0); break;
    case QT_Q8_0: q_q8_0(src, dst, n / QK8_0); break;
    case QT_Q4_K: q_q4_k(src, dst, n / QK_K); break;
    case QT_Q5_K: q_q5_k(src, dst, n / QK_K); break;
    case QT_Q6_K: q_q6_k(src, dst, n / QK_K); break;
    case QT_Q4_1: case QT_Q5_0: case QT_Q5_1: q_q5(src, dst, n / 32, type); break;
    case QT_Q2_K: q_q2_k(src, dst, n / QK_K); break;
    case QT_Q3_K: q_q3_k(src, dst, n / QK_K); break;
    case QT_IQ4_NL: q_iq4_nl(src, dst, n / 32); break;
    case QT_IQ4_XS: q_iq4_xs(src, dst, n / QK_K); break;
    default: break;
    }
}

/* ---- activations ---------------------------------------------------------------------------- */

size_t qt_act_bytes(int type, size_t n)
{
    switch (type) {
    case QT_Q8_0: case QT_Q4_0: return qa8x2_offset(n) + n / 64 * sizeof(struct qa8x2);
    case QT_IQ4_NL: return qa8x2_offset(n) + (n / 32 + 1) / 2 * sizeof(struct qa8x2);
    case QT_Q4_K: case QT_Q5_K: return qa8k_perm_offset(n) + n;
    case QT_Q6_K: case QT_Q2_K: case QT_Q3_K: case QT_IQ4_XS: return n / 256 * sizeof(struct qa8k);
    case QT_Q4_1: case QT_Q5_0: case QT_Q5_1: return qa8x2_offset(n) + n / 128 * sizeof(struct qa8x4);
    case QT_Q4_0 | QT_PACKED: case QT_IQ4_NL | QT_PACKED: case QT_Q8_0 | QT_PACKED:
        return x16_bias_offset(type == (QT_IQ4_NL | QT_PACKED), n) + n / 32 * sizeof(int32_t);
    case QT_IQ4_XS | QT_PACKED: return xs16_bias_offset(n) + n / 32 * sizeof(int32_t);
    case QT_Q4_K | QT_PACKED: return x16k_bsum_offset(n) + n / 32 * sizeof(int16_t);
    default: return n * sizeof(float);
    }
}

static void act_q8_scalar(const float *x, size_t n, void *act)
{
    struct qa8 *a = act;
    for (size_t i = 0; i < n / 32; i++, a++, x += 32) {
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = maxf(amax, fabsf(x[j]));
        float id = amax > 0 ? 127.0f / amax : 0;
        int s = 0;
        for (int j = 0; j < 32; j++) { a->q[j] = (int8_t)nearest(x[j] * id); s += a->q[j]; }
        a->d = amax / 127.0f;
        a->s = s;
    }
}

static void act_q8k_scalar(const float *x, size_t n, void *act)
{
    struct qa8k *a = act;
    for (size_t i = 0; i < n / 256; i++, a++, x += 256) {
        float amax = 0;
        for (int j = 0; j < 256; j++) amax = maxf(amax, fabsf(x[j]));
        float id = amax > 0 ? 127.0f / amax : 0;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 16 * g; j < 16 * g + 16; j++) {
                a->q[j] = (int8_t)nearest(x[j] * id);
                s += a->q[j];
            }
            a->bsums[g] = (int16_t)s;
        }
        a->d = amax / 127.0f;
    }
}

static qt_act_fn level_acts(int kq);

/* The qa8x4 entries of Q4_1, Q5_0 and Q5_1 (see quant_impl.h) from the qa8 blocks. */
static void act_quads(int type, void *act, size_t n)
{
    const struct qa8 *a = act;
    struct qa8x4 *p = (struct qa8x4 *)((uint8_t *)act + qa8x2_offset(n));
    for (size_t i = 0; i + 4 <= n / 32; i += 4, p++) {
        memset(&p->c, 0, sizeof p->c);
        for (int k = 0; k < 4; k++) {
            const struct qa8 *b = a + i + k;
            int8_t *q = p->q + 64 * (k / 2) + 16 * (k % 2);
            memcpy(q, b->q, 16);
            memcpy(q + 32, b->q + 16, 16);
            float *d = p->d + 16 * (k / 2) + 4 * (k % 2);
            for (int l = 0; l < 4; l++) d[l] = d[8 + l] = b->d;
            if (type == QT_Q5_0) p->c.bias[4 * k] = -16 * b->s;
            else p->c.ms[2 * k + 1] = b->d * (float)b->s;
        }
    }
}

void qt_act_prepare(int type, const float *x, size_t n, void *act)
{
    switch (type) {
    case QT_Q8_0: case QT_Q4_0: case QT_IQ4_NL: {
        /* pair layout for the 512-bit kernels: two blocks' quants, a bias per block
         * (-128·Σq for Q8_0 in int32 lanes 0 and 8, -8·Σq for Q4_0 in lanes 0 and 4) and the
         * scales in the lanes each block's products land in. Q4_0's quants follow the nibble
         * order of two blocks: [x0 0..15, x1 0..15, x0 16..31, x1 16..31]. IQ4_NL uses
         * Q4_0's order with the bias of every lane (-128 times the sum of its four quants:
         * its table is stored +128), and a last odd block gets a pair of its own whose
         * second half is zero. */
        level_acts(0)(x, n, act);
        const struct qa8 *a = act;
        struct qa8x2 *p = (struct qa8x2 *)((uint8_t *)act + qa8x2_offset(n));
        size_t nb = n / 32;
        for (size_t i = 0; i + (type == QT_IQ4_NL ? 1 : 2) <= nb; i += 2, p++) {
            memset(p, 0, sizeof *p);
            for (int h = 0; h < 2 && i + h < nb; h++) {
                if (type == QT_Q8_0) {
                    memcpy(p->q + 32 * h, a[i + h].q, 32);
                    p->bias[8 * h] = -128 * a[i + h].s;
                    for (int k = 0; k < 8; k++) p->d[8 * h + k] = a[i + h].d;
                } else {
                    memcpy(p->q + 16 * h, a[i + h].q, 16);
                    memcpy(p->q + 32 + 16 * h, a[i + h].q + 16, 16);
                    if (type == QT_Q4_0) p->bias[4 * h] = -8 * a[i + h].s;
                    else
                        for (int l = 0; l < 8; l++) {   /* lane 4h + l%4 + 8(l/4) */
                            const int8_t *q = a[i + h].q + 4 * l;
                            p->bias[4 * h + l % 4 + 8 * (l / 4)] = -128 * (q[0] + q[1] + q[2] + q[3]);
                        }
                    for (int k = 0; k < 4; k++) p->d[4 * h + k] = p->d[8 + 4 * h + k] = a[i + h].d;
                }
            }
        }
        break;
    }
    case QT_Q4_K: case QT_Q5_K: {
        level_acts(1)(x, n, act);
        const struct qa8k *a = act;
        int8_t *p = (int8_t *)act + qa8k_perm_offset(n);
        static const int src[4] = {0, 64, 32, 96};   /* 32-element runs in nibble order */
        for (size_t i = 0; i < n / 256; i++, p += 256)
            for (int h = 0; h < 2; h++)
                for (int k = 0; k < 4; k++) memcpy(p + 128 * h + 32 * k, a[i].q + 128 * h + src[k], 32);
        break;
    }
    case QT_Q6_K: case QT_Q2_K: case QT_Q3_K: case QT_IQ4_XS: level_acts(1)(x, n, act); break;
    case QT_Q4_1: case QT_Q5_0: case QT_Q5_1: level_acts(0)(x, n, act); act_quads(type, act, n); break;
    case QT_Q4_0 | QT_PACKED: case QT_IQ4_NL | QT_PACKED: case QT_Q8_0 | QT_PACKED: {
        int iq4 = type == (QT_IQ4_NL | QT_PACKED);
        qt_act_prepare(type & ~QT_PACKED, x, n, act);
        const struct qa8 *a = act;
        int32_t *bias = (int32_t *)((uint8_t *)act + x16_bias_offset(iq4, n));
        for (size_t i = 0; i < n / 32; i++) bias[i] = (type == (QT_Q4_0 | QT_PACKED) ? -8 : -128) * a[i].s;
        break;
    }
    case QT_IQ4_XS | QT_PACKED: {
        level_acts(1)(x, n, act);
        const struct qa8k *a = act;
        int32_t *bias = (int32_t *)((uint8_t *)act + xs16_bias_offset(n));
        for (size_t i = 0; i < n / 32; i++) bias[i] = -128 * (a[i / 8].bsums[2 * (i % 8)] + a[i / 8].bsums[2 * (i % 8) + 1]);
        break;
    }
    case QT_Q4_K | QT_PACKED: {
        qt_act_prepare(QT_Q4_K, x, n, act);
        const struct qa8k *a = act;
        int16_t *bs = (int16_t *)((uint8_t *)act + x16k_bsum_offset(n));
        for (size_t j = 0; j < n / 32; j++)   /* |sum| <= 32 * 127: fits */
            bs[j] = (int16_t)(a[j / 8].bsums[2 * (j % 8)] + a[j / 8].bsums[2 * (j % 8) + 1]);
        break;
    }
    default: memcpy(act, x, n * sizeof(float)); break;
    }
}

/* ---- scalar kernels ------------------------------------------------------------------------ */

static void mv_f32(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    const float *x = act;
    for (size_t r = 0; r < nr; r++, W += rb) {
        const float *w = (const float *)W;
        float s[4] = {0, 0, 0, 0};
        size_t i = 0;
        for (; i + 4 <= n; i += 4)
            for (int k = 0; k < 4; k++) s[k] += w[i + k] * x[i + k];
        for (; i < n; i++) s[0] += w[i] * x[i];
        y[r] = (s[0] + s[1]) + (s[2] + s[3]);
    }
}

/* F16 and BF16 (bf16 set): 16-bit weights against F32 activations. */
static inline void mv_16(const uint8_t *W, size_t rb, size_t n, const void *act, float *y,
                         size_t nr, int bf16)
{
    const float *x = act;
    for (size_t r = 0; r < nr; r++, W += rb) {
        const uint16_t *w = (const uint16_t *)W;
        float s = 0;
        for (size_t i = 0; i < n; i++) s += (bf16 ? qt_bf2f(w[i]) : qt_h2f(w[i])) * x[i];
        y[r] = s;
    }
}

/* A kernel-table entry: a shared implementation with its last argument fixed. */
#define MV_VARIANT(NAME, IMPL, ARG)                                                        \
    static void NAME(const uint8_t *W, size_t rb, size_t n, const void *act, float *y,     \
                     size_t nr)                                                            \
    {                                                                                      \
        IMPL(W, rb, n, act, y, nr, ARG);                                                   \
    }

MV_VARIANT(mv_f16, mv_16, 0)
MV_VARIANT(mv_bf16, mv_16, 1)

static void mv_q8_0(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    for (size_t r = 0; r < nr; r++, W += rb) {
        const struct blk_q8_0 *b = (const void *)W;
        const struct qa8 *a = act;
        float s = 0;
        for (size_t i = 0; i < n / 32; i++) {
            int si = 0;
            for (int j = 0; j < 32; j++) si += b[i].qs[j] * a[i].q[j];
            s += qt_h2f(b[i].d) * a[i].d * (float)si;
        }
        y[r] = s;
    }
}

static void mv_q4_0(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    for (size_t r = 0; r < nr; r++, W += rb) {
        const struct blk_q4_0 *b = (const void *)W;
        const struct qa8 *a = act;
        float s = 0;
        for (size_t i = 0; i < n / 32; i++) {
            int si = 0;
            for (int j = 0; j < 16; j++)
                si += (b[i].qs[j] & 0xF) * a[i].q[j] + (b[i].qs[j] >> 4) * a[i].q[j + 16];
            s += qt_h2f(b[i].d) * a[i].d * (float)(si - 8 * a[i].s);
        }
        y[r] = s;
    }
}

/* Q4_K and Q5_K: sum_j d*sc_j*dot(q_j, x_j) - dmin*m_j*sum(x_j), in integers per super-block. */
static void mv_q45_k(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr,
                     int five)
{
    for (size_t r = 0; r < nr; r++, W += rb) {
        const struct qa8k *a = act;
        float s = 0;
        for (size_t i = 0; i < n / 256; i++, a++) {
            struct k45 b = k45_block(W, i, five);
            const uint8_t *sc = b.scales, *qs = b.qs, *qh = b.qh;
            int sumi = 0, summ = 0;
            for (int j = 0; j < 8; j++) {
                uint8_t ls, lm;
                qt_scale_min_k4(j, sc, &ls, &lm);
                const uint8_t *q = qs + 32 * (j / 2);
                const int8_t *x = a->q + 32 * j;
                int shift = 4 * (j & 1), dot = 0;
                for (int l = 0; l < 32; l++) {
                    int v = (q[l] >> shift) & 0xF;
                    if (five) v |= ((qh[l] >> j) & 1) << 4;
                    dot += v * x[l];
                }
                sumi += ls * dot;
                summ += lm * (a->bsums[2 * j] + a->bsums[2 * j + 1]);
            }
            s += a->d * (qt_h2f(b.d) * (float)sumi - qt_h2f(b.dmin) * (float)summ);
        }
        y[r] = s;
    }
}

MV_VARIANT(mv_q4_k, mv_q45_k, 0)
MV_VARIANT(mv_q5_k, mv_q45_k, 1)
#undef MV_VARIANT

static void mv_q6_k(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    for (size_t r = 0; r < nr; r++, W += rb) {
        const struct blk_q6_k *b = (const void *)W;
        const struct qa8k *a = act;
        float s = 0;
        for (size_t i = 0; i < n / 256; i++, b++, a++) {
            int sumi = 0;
            for (int g = 0; g < 16; g++) {
                /* element e = 16g + k lives in half h, quarter c, lane l */
                int dot = 0;
                for (int k = 0; k < 16; k++) {
                    int e = 16 * g + k, h = e / 128, c = (e % 128) / 32, l = e % 32;
                    int lo = b->ql[64 * h + l + 32 * (c & 1)] >> (4 * (c >> 1)) & 0xF;
                    int hi = (b->qh[32 * h + l] >> (2 * c)) & 3;
                    dot += (lo | (hi << 4)) * a->q[e];
                }
                sumi += b->scales[g] * (dot - 32 * a->bsums[g]);
            }
            s += qt_h2f(b->d) * a->d * (float)sumi;
        }
        y[r] = s;
    }
}

/* Q4_1 / Q5_0 / Q5_1: Σ d·q·x (+ m·Σx for the affine ones, - 16·d·Σx for Q5_0), in integers
 * per block; the quants are decoded as in dq_q5. */
static void mv_q5(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr, int type)
{
    const size_t bs = qt_block_bytes(type);
    const int hasm = type != QT_Q5_0, five = type != QT_Q4_1;
    for (size_t r = 0; r < nr; r++, W += rb) {
        const struct qa8 *a = act;
        const uint8_t *b = W;
        float s = 0;
        for (size_t i = 0; i < n / 32; i++, a++, b += bs) {
            const uint8_t *qh = b + (hasm ? 4 : 2), *qs = qh + (five ? 4 : 0);
            uint32_t h = 0;
            if (five) memcpy(&h, qh, 4);
            int si = 0;
            for (int j = 0; j < 16; j++)
                si += ((qs[j] & 0xF) | (int)(((h >> j) & 1) << 4)) * a->q[j] +
                      ((qs[j] >> 4) | (int)(((h >> (j + 16)) & 1) << 4)) * a->q[j + 16];
            uint16_t dh, mh;
            memcpy(&dh, b, 2);
            memcpy(&mh, b + 2, 2);
            if (hasm) s += qt_h2f(dh) * a->d * (float)si + qt_h2f(mh) * a->d * (float)a->s;
            else s += qt_h2f(dh) * a->d * (float)(si - 16 * a->s);
        }
        y[r] = s;
    }
}

static void mv_q4_1(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    mv_q5(W, rb, n, act, y, nr, QT_Q4_1);
}

static void mv_q5_0(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    mv_q5(W, rb, n, act, y, nr, QT_Q5_0);
}

static void mv_q5_1(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    mv_q5(W, rb, n, act, y, nr, QT_Q5_1);
}

static void mv_iq4_nl(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    for (size_t r = 0; r < nr; r++, W += rb) {
        const struct blk_iq4_nl *b = (const void *)W;
        const struct qa8 *a = act;
        float s = 0;
        for (size_t i = 0; i < n / 32; i++) {
            int si = 0;
            for (int j = 0; j < 16; j++)
                si += qt_iq4nl_values[b[i].qs[j] & 0xF] * a[i].q[j] + qt_iq4nl_values[b[i].qs[j] >> 4] * a[i].q[j + 16];
            s += qt_h2f(b[i].d) * a[i].d * (float)si;
        }
        y[r] = s;
    }
}

static void mv_tail(int slot, const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr);

/* Packed Q4_0 / IQ4_NL / Q8_0 (quant_impl.h; kind 0, 1, 3 as the 512-bit kernels number
 * them): per row and block the integer sum with the bias, converted, times the rounded
 * product of the two scales, added by one fused multiply-add; the order the 512-bit kernels
 * keep in each lane, so every level gives their floats. */
static void mv_x16(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr, int kind)
{
    const int iq4 = kind == 1, q8 = kind == 3;
    size_t nb = n / 32, full = nr & ~(size_t)15;
    const struct qa8 *a = act;
    const int32_t *bias = (const int32_t *)((const uint8_t *)act + x16_bias_offset(iq4, n));
    for (size_t g = 0; g < full; g += 16, W += 16 * rb)
        for (int r = 0; r < 16; r++) {
            float s = 0;
            for (size_t i = 0; i < nb; i++) {
                const uint8_t *q = W + (q8 ? x16q8_quants_off(i, nb) : x16_quants_off(i, nb));
                uint16_t d;
                memcpy(&d, W + (q8 ? x16q8_scales_off(i) : x16_scales_off(i)) + 2 * r, 2);
                int si = bias[i];
                for (int e = 0; e < 32; e++) {   /* element e: chunk e/4 % 4, nibble e/16 (Q8_0: chunk e/4) */
                    int v = q8 ? q[64 * (e / 4) + 4 * r + e % 4]
                               : (q[64 * (e / 4 % 4) + 4 * r + e % 4] >> (4 * (e / 16))) & 0xF;
                    si += (iq4 ? qt_iq4nl_values[v] + 128 : v) * a[i].q[e];
                }
                s = fmaf((float)si, qt_h2f(d) * a[i].d, s);
            }
            y[g + (size_t)r] = s;
        }
    if (nr > full) mv_tail(q8 ? QK_Q8_0 : iq4 ? QK_IQ4_NL : QK_Q4_0, W, rb, n, act, y + full, nr - full);
}

static void mv_q4_0_x16(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    mv_x16(W, rb, n, act, y, nr, 0);
}

static void mv_iq4_nl_x16(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    mv_x16(W, rb, n, act, y, nr, 1);
}

static void mv_q8_0_x16(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    mv_x16(W, rb, n, act, y, nr, 3);
}

/* Packed Q4_K (quant_impl.h): per row and super-block the exact integer sums Σ sc·dot and
 * Σ m·Σx, the mins' term added first, then the scales' (scaled by 16 both ways: the 512-bit
 * kernels take the high nibbles in place, as 16·q), each by one fused multiply-add; the
 * order the 512-bit kernels keep in each lane, so every level gives their floats. */
static void mv_q4_k_x16(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    size_t nsb = n / 256, full = nr & ~(size_t)15;
    const struct qa8k *a = act;
    const int16_t *bs = (const int16_t *)((const uint8_t *)act + x16k_bsum_offset(n));
    for (size_t g = 0; g < full; g += 16, W += 16 * rb)
        for (int r = 0; r < 16; r++) {
            float s = 0;
            for (size_t i = 0; i < nsb; i++) {
                const uint8_t *S = W + i * X16K_SB;
                uint8_t sc12[12], qs[128];
                uint16_t d, dmin;
                memcpy(&d, S + 2 * r, 2);
                memcpy(&dmin, S + 32 + 2 * r, 2);
                for (int k = 0; k < 3; k++) memcpy(sc12 + 4 * k, S + 64 + 64 * k + 4 * r, 4);
                for (int c = 0; c < 32; c++) memcpy(qs + 4 * c, S + X16K_QS + 64 * c + 4 * r, 4);
                int sumi = 0, summ = 0;
                for (int j = 0; j < 8; j++) {
                    uint8_t ls, lm;
                    qt_scale_min_k4(j, sc12, &ls, &lm);
                    int dot = 0;
                    for (int l = 0; l < 32; l++)
                        dot += ((qs[32 * (j / 2) + l] >> (4 * (j & 1))) & 0xF) * a[i].q[32 * j + l];
                    sumi += ls * dot;
                    summ += lm * bs[8 * i + (size_t)j];
                }
                s = fmaf(-(float)summ, qt_h2f(dmin) * a[i].d, s);
                s = fmaf((float)(16 * sumi), qt_h2f(d) * 0.0625f * a[i].d, s);
            }
            y[g + (size_t)r] = s;
        }
    if (nr > full) mv_tail(QK_Q4_K, W, rb, n, act, y + full, nr - full);
}

/* Quant of element e of a Q2_K/Q3_K block's 2-bit part. */
static inline int q2_at(const uint8_t *qs, int e) { return (qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32))) & 3; }

/* Q2_K: d·Σ_g sc_g·dot(q_g, x_g) - dmin·Σ_g m_g·Σx_g, per super-block in integers. */
static void mv_q2_k(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    for (size_t r = 0; r < nr; r++, W += rb) {
        const struct blk_q2_k *b = (const void *)W;
        const struct qa8k *a = act;
        float s = 0;
        for (size_t i = 0; i < n / 256; i++, b++, a++) {
            int sumi = 0, summ = 0;
            for (int g = 0; g < 16; g++) {
                int dot = 0;
                for (int k = 0; k < 16; k++) dot += q2_at(b->qs, 16 * g + k) * a->q[16 * g + k];
                sumi += (b->scales[g] & 0xF) * dot;
                summ += (b->scales[g] >> 4) * a->bsums[g];
            }
            s += a->d * (qt_h2f(b->d) * (float)sumi - qt_h2f(b->dmin) * (float)summ);
        }
        y[r] = s;
    }
}

/* Q3_K: quants taken +4 (0..7, the high bit as 4), the offset paid by -4·Σx per group. */
static void mv_q3_k(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    for (size_t r = 0; r < nr; r++, W += rb) {
        const struct blk_q3_k *b = (const void *)W;
        const struct qa8k *a = act;
        float s = 0;
        for (size_t i = 0; i < n / 256; i++, b++, a++) {
            int8_t sc[16];
            qt_q3k_scales(b->scales, sc);
            int sumi = 0;
            for (int g = 0; g < 16; g++) {
                int dot = 0;
                for (int k = 0; k < 16; k++) {
                    int e = 16 * g + k, hb = (b->hmask[e % 32] >> (e / 32)) & 1;
                    dot += (q2_at(b->qs, e) | hb << 2) * a->q[e];
                }
                sumi += sc[g] * (dot - 4 * a->bsums[g]);
            }
            s += qt_h2f(b->d) * a->d * (float)sumi;
        }
        y[r] = s;
    }
}

static void mv_iq4_xs(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    for (size_t r = 0; r < nr; r++, W += rb) {
        const struct blk_iq4_xs *b = (const void *)W;
        const struct qa8k *a = act;
        float s = 0;
        for (size_t i = 0; i < n / 256; i++, b++, a++) {
            int sumi = 0;
            for (int ib = 0; ib < 8; ib++) {
                const uint8_t *qs = b->qs + 16 * ib;
                const int8_t *x = a->q + 32 * ib;
                int dot = 0;
                for (int j = 0; j < 16; j++)
                    dot += qt_iq4nl_values[qs[j] & 0xF] * x[j] + qt_iq4nl_values[qs[j] >> 4] * x[j + 16];
                sumi += qt_iq4xs_scale(b, ib) * dot;
            }
            s += qt_h2f(b->d) * a->d * (float)sumi;
        }
        y[r] = s;
    }
}

/* Packed IQ4_XS (quant_impl.h): per row and super-block the sub-blocks' integer sums (from
 * the bias, the table read +128) times their scales, summed, converted and added by one
 * fused multiply-add with the rounded product of the two scales: the order the 512-bit
 * kernel keeps in each lane, so every level gives its floats. */
static void mv_iq4_xs_x16(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    size_t nsb = n / 256, full = nr & ~(size_t)15;
    const struct qa8k *a = act;
    const int32_t *bias = (const int32_t *)((const uint8_t *)act + xs16_bias_offset(n));
    for (size_t g = 0; g < full; g += 16, W += 16 * rb)
        for (int r = 0; r < 16; r++) {
            float s = 0;
            for (size_t i = 0; i < nsb; i++) {
                const uint8_t *S = W + i * XS16_SB, *q = S + XS16_QUANTS;
                struct blk_iq4_xs b;   /* row r's d and scales, as the original block */
                memcpy(&b.d, S + 2 * r, 2);
                memcpy(&b.scales_h, S + 32 + 2 * r, 2);
                memcpy(b.scales_l, S + 64 + 4 * r, 4);
                int sumi = 0;
                for (int ib = 0; ib < 8; ib++) {
                    int si = bias[8 * i + (size_t)ib];
                    for (int e = 0; e < 32; e++) {   /* element e: chunk e/4 % 4, nibble e/16 */
                        int v = (q[64 * (4 * ib + e / 4 % 4) + 4 * r + e % 4] >> (4 * (e / 16))) & 0xF;
                        si += (qt_iq4nl_values[v] + 128) * a[i].q[32 * ib + e];
                    }
                    sumi += qt_iq4xs_scale(&b, ib) * si;
                }
                s = fmaf((float)sumi, qt_h2f(b.d) * a[i].d, s);
            }
            y[g + (size_t)r] = s;
        }
    if (nr > full) mv_tail(QK_IQ4_XS, W, rb, n, act, y + full, nr - full);
}

/* ---- dispatch -------------------------------------------------------------------------------- */

/* Levels in order of capability; "avx512novnni" is AVX-512 without VNNI (forced by tests
 * to cover that variant on CPUs that have VNNI). */
enum { LV_UNSET = -1, LV_SCALAR = 0, LV_AVX2, LV_AVX512N, LV_AVX512, LV_N };
static const char *const level_names[LV_N] = {"scalar", "avx2", "avx512novnni", "avx512"};
static _Atomic int level = LV_UNSET;
static struct qt_level_fns fns[LV_N];
static _Atomic int kernels_ready;

static int cpu_best(void)
{
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c"))
        return __builtin_cpu_supports("avx512vnni") ? LV_AVX512 : LV_AVX512N;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("f16c"))
        return LV_AVX2;
    return LV_SCALAR;
}

static void dq_ref(const uint8_t *src, float *dst, size_t n, int type) { qt_dequant_row(type, src, dst, n); }
#define DQ_REF(name, T) \
    static void name(const uint8_t *src, float *dst, size_t n) { dq_ref(src, dst, n, T); }
DQ_REF(dq_ref_f32, QT_F32)
DQ_REF(dq_ref_f16, QT_F16)
DQ_REF(dq_ref_bf16, QT_BF16)
DQ_REF(dq_ref_q8_0, QT_Q8_0)
DQ_REF(dq_ref_q4_0, QT_Q4_0)
DQ_REF(dq_ref_q4_k, QT_Q4_K)
DQ_REF(dq_ref_q5_k, QT_Q5_K)
DQ_REF(dq_ref_q6_k, QT_Q6_K)
DQ_REF(dq_ref_q4_1, QT_Q4_1)
DQ_REF(dq_ref_q5_0, QT_Q5_0)
DQ_REF(dq_ref_q5_1, QT_Q5_1)
DQ_REF(dq_ref_q2_k, QT_Q2_K)
DQ_REF(dq_ref_q3_k, QT_Q3_K)
DQ_REF(dq_ref_iq4_nl, QT_IQ4_NL)
DQ_REF(dq_ref_iq4_xs, QT_IQ4_XS)
DQ_REF(dq_ref_x16, QT_PACKED)   /* rows of a packed group are not independent: zeros */

static const struct qt_level_fns scalar_fns = {
    .mv = {[QK_F32] = mv_f32, [QK_F16] = mv_f16, [QK_BF16] = mv_bf16, [QK_Q8_0] = mv_q8_0,
           [QK_Q4_0] = mv_q4_0, [QK_Q4_K] = mv_q4_k, [QK_Q5_K] = mv_q5_k, [QK_Q6_K] = mv_q6_k,
           [QK_Q4_1] = mv_q4_1, [QK_Q5_0] = mv_q5_0, [QK_Q5_1] = mv_q5_1, [QK_Q2_K] = mv_q2_k,
           [QK_Q3_K] = mv_q3_k, [QK_IQ4_NL] = mv_iq4_nl, [QK_IQ4_XS] = mv_iq4_xs,
           [QK_Q4_0_X16] = mv_q4_0_x16, [QK_IQ4_NL_X16] = mv_iq4_nl_x16, [QK_IQ4_XS_X16] = mv_iq4_xs_x16,
           [QK_Q4_K_X16] = mv_q4_k_x16, [QK_Q8_0_X16] = mv_q8_0_x16},
    .act = {act_q8_scalar, act_q8k_scalar},
    .dq = {[QK_F32] = dq_ref_f32, [QK_F16] = dq_ref_f16, [QK_BF16] = dq_ref_bf16,
           [QK_Q8_0] = dq_ref_q8_0, [QK_Q4_0] = dq_ref_q4_0, [QK_Q4_K] = dq_ref_q4_k,
           [QK_Q5_K] = dq_ref_q5_k, [QK_Q6_K] = dq_ref_q6_k, [QK_Q4_1] = dq_ref_q4_1,
           [QK_Q5_0] = dq_ref_q5_0, [QK_Q5_1] = dq_ref_q5_1, [QK_Q2_K] = dq_ref_q2_k,
           [QK_Q3_K] = dq_ref_q3_k, [QK_IQ4_NL] = dq_ref_iq4_nl, [QK_IQ4_XS] = dq_ref_iq4_xs,
           [QK_Q4_0_X16] = dq_ref_x16, [QK_IQ4_NL_X16] = dq_ref_x16, [QK_IQ4_XS_X16] = dq_ref_x16,
           [QK_Q4_K_X16] = dq_ref_x16, [QK_Q8_0_X16] = dq_ref_x16},
};

/* Function tables are filled once; a spin flag keeps concurrent first calls from racing. */
static void init_kernels(void)
{
    if (atomic_load_explicit(&kernels_ready, memory_order_acquire)) return;
    int best = cpu_best();
    struct qt_level_fns f[LV_N];
    for (int l = 0; l < LV_N; l++) f[l] = scalar_fns;
    if (best >= LV_AVX2) qt_kernels_avx2(&f[LV_AVX2]);
    if (best >= LV_AVX512N) qt_kernels_avx512(&f[LV_AVX512N], 0);
    if (best >= LV_AVX512) qt_kernels_avx512(&f[LV_AVX512], 1);
    static atomic_flag lock = ATOMIC_FLAG_INIT;
    while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire)) {
    }
    if (!atomic_load_explicit(&kernels_ready, memory_order_relaxed)) {
        memcpy(fns, f, sizeof f);
        atomic_store_explicit(&kernels_ready, 1, memory_order_release);
    }
    atomic_flag_clear_explicit(&lock, memory_order_release);
}

static int parse_level(const char *s)
{
    if (!s) return LV_UNSET;
    for (int i = 0; i < LV_N; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    return LV_UNSET;
}

static int cur_level(void)
{
    int lv = atomic_load_explicit(&level, memory_order_acquire);
    if (lv != LV_UNSET) return lv;
    init_kernels();
    int best = cpu_best();
    lv = parse_level(getenv("CMIF_SIMD"));
    if (lv == LV_UNSET || lv > best) lv = best;   /* never run code the CPU lacks */
    atomic_store_explicit(&level, lv, memory_order_release);
    return lv;
}

static qt_act_fn level_acts(int kq) { return fns[cur_level()].act[kq]; }

/* The rows after a packed tensor's last full group, by the current level's kernel. */
static void mv_tail(int slot, const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    fns[cur_level()].mv[slot](W, rb, n, act, y, nr);
}

int qt_packed_type(int type)
{
    if ((type == QT_Q4_0 || type == QT_IQ4_NL || type == QT_IQ4_XS || type == QT_Q4_K || type == QT_Q8_0) &&
        cur_level() == LV_AVX512)
        return type | QT_PACKED;
    return type;
}

/* Packing is a transpose of 4-byte words, 16 rows at a time (qt_tr16_fn). With the vector
 * one a thread packs Q8_0 at about 7.5 GB/s instead of 1.6 (a copy per word, a byte-wise
 * +128); the other types were already near memory speed and gained 5-30%. */
void qt_tr16_ref(const uint8_t *src, size_t rb, const size_t o[4], uint8_t *const d[4], int flip)
{
    for (int r = 0; r < 16; r++)
        for (int c = 0; c < 16; c++) {
            uint8_t *out = d[c / 4] + 64 * (c % 4) + 4 * r;
            memcpy(out, src + (size_t)r * rb + o[c / 4] + 4 * (c % 4), 4);
            if (flip)
                for (int k = 0; k < 4; k++) out[k] ^= 0x80;
        }
}

qt_tr16_fn qt_tr16_level(void)
{
    qt_tr16_fn f = fns[cur_level()].tr16;
    return f ? f : qt_tr16_ref;
}

/* The 128 quant bytes at byte offset q of each row into 32 chunks at Q: two transposes. */
static void tr_sb_quants(qt_tr16_fn tr, const uint8_t *src, size_t rb, size_t q, uint8_t *Q)
{
    for (int h = 0; h < 2; h++) {
        size_t o[4] = {q + 64 * (size_t)h, q + 64 * (size_t)h + 16, q + 64 * (size_t)h + 32, q + 64 * (size_t)h + 48};
        uint8_t *d[4] = {Q + 1024 * h, Q + 1024 * h + 256, Q + 1024 * h + 512, Q + 1024 * h + 768};
        tr(src, rb, o, d, 0);
    }
}

/* IQ4_XS's groups (quant_impl.h): each super-block's fields of the 16 rows side by side. */
static void pack_xs16(qt_tr16_fn tr, const uint8_t *src, size_t rb, size_t nsb, uint8_t *G)
{
    for (size_t i = 0; i < nsb; i++) {
        uint8_t *S = G + i * XS16_SB;
        for (int r = 0; r < 16; r++) {
            const struct blk_iq4_xs *b = (const struct blk_iq4_xs *)(src + (size_t)r * rb) + i;
            memcpy(S + 2 * r, &b->d, 2);
            memcpy(S + 32 + 2 * r, &b->scales_h, 2);
            memcpy(S + 64 + 4 * r, b->scales_l, 4);
        }
        tr_sb_quants(tr, src, rb, i * sizeof(struct blk_iq4_xs) + offsetof(struct blk_iq4_xs, qs), S + XS16_QUANTS);
    }
}

/* Q4_K's groups (quant_impl.h): each super-block's fields of the 16 rows side by side. */
static void pack_q4_k(qt_tr16_fn tr, const uint8_t *src, size_t rb, size_t nsb, uint8_t *G)
{
    for (size_t i = 0; i < nsb; i++) {
        uint8_t *S = G + i * X16K_SB;
        for (int r = 0; r < 16; r++) {
            const struct blk_q4_k *b = (const struct blk_q4_k *)(src + (size_t)r * rb) + i;
            memcpy(S + 2 * r, &b->d, 2);
            memcpy(S + 32 + 2 * r, &b->dmin, 2);
            for (int k = 0; k < 3; k++) memcpy(S + 64 + 64 * k + 4 * r, b->scales + 4 * k, 4);
        }
        tr_sb_quants(tr, src, rb, i * sizeof(struct blk_q4_k) + offsetof(struct blk_q4_k, qs), S + X16K_QS);
    }
}

/* Q8_0's groups (quant_impl.h): pairs of blocks, the quants stored +128; one transpose per
 * pair, the word copies for an odd last block. */
static void pack_q8_0(qt_tr16_fn tr, const uint8_t *src, size_t rb, size_t nb, uint8_t *G)
{
    const size_t bs = sizeof(struct blk_q8_0), qo = offsetof(struct blk_q8_0, qs);
    for (size_t i = 0; i < nb; i++)
        for (int r = 0; r < 16; r++)
            memcpy(G + x16q8_scales_off(i) + 2 * r, &((const struct blk_q8_0 *)(src + (size_t)r * rb) + i)->d, 2);
    for (size_t i = 0; i + 1 < nb; i += 2) {
        uint8_t *Q = G + x16q8_quants_off(i, nb);
        size_t o[4] = {i * bs + qo, i * bs + qo + 16, (i + 1) * bs + qo, (i + 1) * bs + qo + 16};
        uint8_t *d[4] = {Q, Q + 256, Q + 512, Q + 768};
        tr(src, rb, o, d, 1);
    }
    if (nb % 2) {
        size_t i = nb - 1;
        for (int r = 0; r < 16; r++) {
            const struct blk_q8_0 *b = (const struct blk_q8_0 *)(src + (size_t)r * rb) + i;
            uint8_t *q = G + x16q8_quants_off(i, nb) + 4 * r;
            for (int e = 0; e < 32; e++) q[64 * (e / 4) + e % 4] = (uint8_t)b->qs[e] ^ 0x80;
        }
    }
}

/* Q4_0 / IQ4_NL's groups (quant_impl.h): one transpose per four blocks (two pairs), the word
 * copies for the blocks after the last four. */
static void pack_q4_0(qt_tr16_fn tr, const uint8_t *src, size_t rb, size_t nb, uint8_t *G)
{
    const size_t bs = sizeof(struct blk_q4_0), qo = offsetof(struct blk_q4_0, qs);
    for (size_t i = 0; i < nb; i++)
        for (int r = 0; r < 16; r++)
            memcpy(G + x16_scales_off(i) + 2 * r, &((const struct blk_q4_0 *)(src + (size_t)r * rb) + i)->d, 2);
    size_t i = 0;
    for (; i + 3 < nb; i += 4) {
        size_t o[4];
        uint8_t *d[4];
        for (int k = 0; k < 4; k++) {
            o[k] = (i + (size_t)k) * bs + qo;
            d[k] = G + x16_quants_off(i + (size_t)k, nb);
        }
        tr(src, rb, o, d, 0);
    }
    for (; i < nb; i++)
        for (int r = 0; r < 16; r++) {
            const struct blk_q4_0 *b = (const struct blk_q4_0 *)(src + (size_t)r * rb) + i;   /* = IQ4_NL's */
            for (int c = 0; c < 4; c++) memcpy(G + x16_quants_off(i, nb) + 64 * c + 4 * r, b->qs + 4 * c, 4);
        }
}

void qt_pack(int type, const void *W, size_t rows, size_t cols, void *dst, size_t r0, size_t r1)
{
    const size_t rb = qt_row_bytes(type, cols), nb = cols / 32, full = rows & ~(size_t)15;
    const uint8_t *src = W;
    uint8_t *out = dst;
    qt_tr16_fn tr = qt_tr16_level();
    for (size_t g = r0; g < r1 && g < full; g += 16) {
        uint8_t *G = out + g * rb;
        /* The transposes read 16 rows side by side, which the hardware prefetcher follows
         * badly; the next group's rows are asked for in order while this one is packed. */
        if (g + 16 < r1 && g + 16 < full)
            for (size_t k = 0; k < 16 * rb; k += 64) __builtin_prefetch(src + (g + 16) * rb + k);
        if (type == QT_Q4_K) pack_q4_k(tr, src + g * rb, rb, cols / QK_K, G);
        else if (type == QT_IQ4_XS) pack_xs16(tr, src + g * rb, rb, cols / QK_K, G);
        else if (type == QT_Q8_0) pack_q8_0(tr, src + g * rb, rb, nb, G);
        else pack_q4_0(tr, src + g * rb, rb, nb, G);
    }
    if (r1 > full) {
        size_t t = r0 > full ? r0 : full;
        memcpy(out + t * rb, src + t * rb, (r1 - t) * rb);
    }
    /* The vector transpose writes with non-temporal stores, which are weakly ordered: fence
     * them before another thread may read the packed rows. */
    if (tr != qt_tr16_ref) __builtin_ia32_sfence();
}

const char *qt_simd_level(void) { return level_names[cur_level()]; }

void qt_force_simd(const char *s)
{
    init_kernels();
    int best = cpu_best(), lv = parse_level(s);
    if (lv == LV_UNSET) {   /* NULL or unknown: back to automatic (env, then CPU) */
        atomic_store_explicit(&level, LV_UNSET, memory_order_release);
        cur_level();
        return;
    }
    atomic_store_explicit(&level, lv > best ? best : lv, memory_order_release);
}

void qt_matvec(int type, const void *W, size_t ncols, const void *act, float *y, size_t r0,
               size_t r1)
{
    const struct qt_info *t = info(type);
    if (!t || r1 <= r0) return;
    int lv = cur_level();
    size_t rb = qt_row_bytes(type, ncols);
    fns[lv].mv[t->slot]((const uint8_t *)W + r0 * rb, rb, ncols, act, y, r1 - r0);
}

void qt_dequant_row_fast(int type, const void *src, float *dst, size_t n)
{
    const struct qt_info *t = info(type);
    if (!t) { memset(dst, 0, n * sizeof(float)); return; }
    fns[cur_level()].dq[t->slot](src, dst, n);
}

/* ---- batched products ------------------------------------------------------------------------ */

/* Rows dequantized per SGEMM call: ~512 KiB of floats, so a tile stays in L2 while SGEMM
 * streams X against it, but at least 16 rows so each call has work. */
static size_t tile_rows(size_t rows, size_t cols)
{
    size_t t = cols ? (512u * 1024u) / (cols * sizeof(float)) : rows;
    if (t < 16) t = 16;
    if (t > 256) t = 256;
    return t < rows ? t : rows;
}

/* Prompt batches with integer-quantized weights use the matrix-vector kernels: the n
 * activation rows are prepared once, then W is walked in tiles of rows small enough to
 * stay in L2 and each tile meets every activation, so each weight byte comes from memory
 * once and is reused n times from cache (the same 8-bit activation rounding as decode).
 * Float weights (F16/BF16) keep dequantize + SGEMM, which is faster for them. */
static int int8_path(int type, size_t n)
{
    const struct qt_info *t = info(type);
    if (!t || type == QT_F32 || type == QT_F16 || type == QT_BF16) return 0;
    if (type & QT_PACKED) return 1;   /* no row dequantizer */
    /* With a batch kernel the integer path won at every n measured (8..256, BENCHMARKS.md);
     * looping the matrix-vector kernel wins up to n = 32 and loses 10-20% to SGEMM from
     * n = 64 on (AVX2, AVX-512 without VNNI). */
    return fns[cur_level()].mm[t->slot] != NULL || n <= 32;
}

int qt_matmul_int8(int type, size_t n) { return int8_path(type, n); }

/* Prepared activations are 64-byte aligned, each row's start too. */
static size_t act_stride(int type, size_t cols) { return (qt_act_bytes(type, cols) + 63) & ~(size_t)63; }

/* ~256 KiB of weight bytes per tile: with the prepared activations (n rows of about cols
 * bytes each) it stays within the 1-2 MiB L2 of current cores. */
static size_t int8_tile_rows(int type, size_t rows, size_t cols)
{
    size_t rb = qt_row_bytes(type, cols), t = rb ? (256u * 1024u) / rb : rows;
    if (t < 4) t = 4;
    if (type & QT_PACKED) t = (t + 15) & ~(size_t)15;   /* whole groups */
    return t < rows ? t : rows;
}

size_t qt_matmul_scratch_bytes(int type, size_t rows, size_t cols, size_t n)
{
    if (type == QT_F32 || !qt_supported(type)) return 0;
    /* room for either path: which one runs depends on the SIMD level, which tests change */
    size_t a = n * act_stride(type, cols) + 64, f = tile_rows(rows, cols) * cols * sizeof(float);
    int intfmt = int8_path(type, 0);
    return intfmt && a > f ? a : f;
}

size_t qt_matmul_act_bytes(int type, size_t cols, size_t n)
{
    if (!qt_supported(type) || cols == 0 || !int8_path(type, n)) return 0;
    return n * act_stride(type, cols);
}

void qt_matmul_prepare(int type, const float *X, size_t cols, size_t j0, size_t j1, void *act)
{
    size_t as = act_stride(type, cols);
    for (size_t j = j0; j < j1; j++) qt_act_prepare(type, X + j * cols, cols, (uint8_t *)act + j * as);
}

static void matmul_int8(int type, const uint8_t *W, size_t rows, size_t cols, const float *X,
                        size_t n, float *Y, void *scratch)
{
    uint8_t *act = (uint8_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    qt_matmul_prepare(type, X, cols, 0, n, act);
    qt_matmul_prepared(type, W, rows, cols, act, n, Y);
}

void qt_matmul_prepared(int type, const void *Wv, size_t rows, size_t cols, const void *actv, size_t n,
                        float *Y)
{
    const uint8_t *W = Wv, *act = actv;
    size_t as = act_stride(type, cols), rb = qt_row_bytes(type, cols);
    const struct qt_level_fns *f = &fns[cur_level()];
    qt_mv_fn mv = f->mv[info(type)->slot];
    qt_mm_fn mm = f->mm[info(type)->slot];
    size_t T = int8_tile_rows(type, rows, cols);
    /* Activations in chunks of ~512 KiB (a multiple of 4 rows, the batch kernels' group) so
     * a chunk and a weight tile share L2; each chunk then walks all of W (re-read from L3
     * or memory per chunk, sequentially, which the prefetchers handle well). */
    size_t nc = (512u * 1024u) / as / 4 * 4;
    /* packed Q4_K's kernel takes eight at a time: a chunk rounded up to eight (long rows:
     * 28 -> 32) leaves no group of four, 6% faster at 8192 columns */
    if (type == (QT_Q4_K | QT_PACKED)) nc = ((512u * 1024u) / as + 7) / 8 * 8;
    if (nc < 4) nc = 4;
    for (size_t j0 = 0; j0 < n; j0 += nc) {
        size_t nj = n - j0 < nc ? n - j0 : nc;
        const uint8_t *aj = act + j0 * as;
        float *Yj = Y + j0 * rows;
        for (size_t r0 = 0; r0 < rows; r0 += T) {
            size_t nt = rows - r0 < T ? rows - r0 : T;
            if (mm) mm(W + r0 * rb, rb, cols, aj, as, nj, Yj + r0, rows, nt);
            else
                for (size_t j = 0; j < nj; j++) mv(W + r0 * rb, rb, cols, aj + j * as, Yj + j * rows + r0, nt);
        }
    }
}

void qt_matmul(int type, const void *W, size_t rows, size_t cols, const float *X, size_t n,
               float *Y, void *scratch)
{
    if (!qt_supported(type) || rows == 0 || n == 0) return;
    if (cols == 0) {   /* empty dot products; SGEMM would reject lda = 0 */
        memset(Y, 0, n * rows * sizeof(float));
        return;
    }
    if (type == QT_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)rows, (int)cols, 1.0f, X,
                    (int)cols, W, (int)cols, 0.0f, Y, (int)rows);
        return;
    }
    if (int8_path(type, n)) {
        matmul_int8(type, W, rows, cols, X, n, Y, scratch);
        return;
    }
    float *tile = scratch;
    size_t rb = qt_row_bytes(type, cols), T = tile_rows(rows, cols);
    qt_dq_fn dq = fns[cur_level()].dq[info(type)->slot];
    for (size_t r0 = 0; r0 < rows; r0 += T) {
        size_t nt = rows - r0 < T ? rows - r0 : T;
        for (size_t r = 0; r < nt; r++) dq((const uint8_t *)W + (r0 + r) * rb, tile + r * cols, cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, (int)nt, (int)cols, 1.0f, X,
                    (int)cols, tile, (int)cols, 0.0f, Y + r0, (int)rows);
    }
}
