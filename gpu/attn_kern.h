/* gpu/attn_kern.h: the group attention kernel and its vector exp, written once and compiled
 * into attn_avx2.c (8 floats a vector) and attn_avx512.c (16). Include only from those
 * files, after they define vf, W, QREG (how many vectors of a query may stay in registers
 * beside W accumulators), KERN(name) and the v_* primitives used below (v_reduce turns W
 * vectors into one vector of their W sums, in order).
 *
 * Scores: per block of W positions the K rows are read once from memory and then from L1
 * for every head of the group; each row's dot is one vector of partial sums, and the W
 * vectors of a block are reduced together (one transposing tree instead of W horizontal
 * sums). Weights: per block of VB positions and per head, up to 8 output vectors stay in
 * registers while the block's V rows (in L1 after the first head) are accumulated. */
#ifndef CMIF_GPU_ATTN_KERN_H
#define CMIF_GPU_ATTN_KERN_H

#include <math.h>

#define VB 32   /* positions per V block: 32 rows of 128 floats = 16 KiB, well inside L1 */

/* e^x, relative error about 1e-7, for x <= 88: x = n ln2 + r with ln2 split in two
 * (Cody-Waite) so r is exact to float precision, |r| <= ln2/2, e^r by Cephes' expf
 * polynomial, times 2^n built in the exponent bits. Below ln(FLT_MIN) (denormal results,
 * -INFINITY included) the result is 0: softmax weights that small are nothing next to the
 * largest one (1). */
static inline vf kern_exp(vf x)
{
    const vf lo = v_set1(-87.33654475f), hi = v_set1(88.0f);
    vf xc = v_min(v_max(x, lo), hi);
    vf n = v_round(v_mul(xc, v_set1(1.44269504088896341f)));
    vf r = v_fnma(n, v_set1(0.693359375f), xc);
    r = v_fnma(n, v_set1(-2.12194440e-4f), r);
    vf y = v_set1(1.9875691500e-4f);
    y = v_fma(y, r, v_set1(1.3981999507e-3f));
    y = v_fma(y, r, v_set1(8.3334519073e-3f));
    y = v_fma(y, r, v_set1(4.1665795894e-2f));
    y = v_fma(y, r, v_set1(1.6666665459e-1f));
    y = v_fma(y, r, v_set1(5.0000001201e-1f));
    y = v_fma(y, v_mul(r, r), r);
    y = v_add(y, v_set1(1.0f));
    return v_keep_ge(x, lo, v_mul(y, v_pow2i(n)));
}

void KERN(attn_exp)(const float *x, float *y, size_t n)
{
    size_t i = 0;
    for (; i + W <= n; i += W) v_storeu(y + i, kern_exp(v_loadu(x + i)));
    if (i < n) v_store_n(y + i, kern_exp(v_load_n(x + i, (int)(n - i))), (int)(n - i));
}

/* The dots of q with the K rows p0 .. p0+n-1 (n <= W; lanes past n repeat the last row),
 * as one vector. With qreg the hd/W vectors of q stay in registers (hd a constant after
 * inlining, at most QREG vectors). */
static inline __attribute__((always_inline)) vf kern_dots(const float *q, const float *k,
                                                          size_t stride, int p0, int n, int hd,
                                                          int qreg)
{
    vf a[W], qv[QREG];
    if (qreg) {
#pragma GCC unroll 8
        for (int j = 0; j < hd / W; j++) qv[j] = v_loadu(q + j * W);
    }
#pragma GCC unroll 16
    for (int i = 0; i < W; i++) {
        const float *r = k + (size_t)(p0 + (i < n ? i : n - 1)) * stride;
        vf acc = v_zero();
        if (qreg) {
#pragma GCC unroll 8
            for (int j = 0; j < hd / W; j++) acc = v_fma(qv[j], v_loadu(r + j * W), acc);
        } else {
            for (int j = 0; j < hd; j += W) acc = v_fma(v_loadu(q + j), v_loadu(r + j), acc);
        }
        a[i] = acc;
    }
    return v_reduce(a);
}

static inline __attribute__((always_inline)) void kern_scores(const float *q, const float *k,
                                                              size_t stride, int span, int hd,
                                                              int grp, float scale, float *s,
                                                              int qreg)
{
    const vf vs = v_set1(scale);
    for (int p0 = 0; p0 < span; p0 += W) {
        int n = span - p0 < W ? span - p0 : W;
        for (int h = 0; h < grp; h++) {
            vf d = v_mul(kern_dots(q + (size_t)h * hd, k, stride, p0, n, hd, qreg), vs);
            if (n == W) v_storeu(s + (size_t)h * span + p0, d);
            else v_store_n(s + (size_t)h * span + p0, d, n);
        }
    }
}

/* Softmax of one head's scores in place. */
static void kern_softmax(float *s, int span)
{
    vf m = v_set1(-INFINITY);
    int p = 0;
    for (; p + W <= span; p += W) m = v_max(m, v_loadu(s + p));
    float mx = v_hmax(m);
    for (; p < span; p++)
        if (s[p] > mx) mx = s[p];
    vf vm = v_set1(mx), sum = v_zero();
    for (p = 0; p + W <= span; p += W) {
        vf e = kern_exp(v_sub(v_loadu(s + p), vm));
        v_storeu(s + p, e);
        sum = v_add(sum, e);
    }
    if (p < span) {   /* the lanes past span load as 0 and must not count */
        v_store_n(s + p, kern_exp(v_sub(v_load_n(s + p, span - p), vm)), span - p);
        sum = v_add(sum, v_load_n(s + p, span - p));
    }
    vf inv = v_set1(1.0f / v_hsum(sum));
    for (p = 0; p + W <= span; p += W) v_storeu(s + p, v_mul(v_loadu(s + p), inv));
    if (p < span) v_store_n(s + p, v_mul(v_load_n(s + p, span - p), inv), span - p);
}

/* o[0 .. NV*W) (+)= sum over p in [p0, p1) of a[p] * v row p (offset already in v). */
#define KERN_AXPY(NV)                                                                      \
    static inline void kern_axpy##NV(float *o, const float *a, const float *v,             \
                                     size_t stride, int p0, int p1)                        \
    {                                                                                      \
        vf acc[NV];                                                                        \
        _Pragma("GCC unroll 8") for (int i = 0; i < NV; i++) acc[i] =                      \
            p0 ? v_loadu(o + i * W) : v_zero();                                            \
        for (int p = p0; p < p1; p++) {                                                    \
            vf av = v_set1(a[p]);                                                          \
            const float *vr = v + (size_t)p * stride;                                      \
            _Pragma("GCC unroll 8") for (int i = 0; i < NV; i++) acc[i] =                  \
                v_fma(av, v_loadu(vr + i * W), acc[i]);                                    \
        }                                                                                  \
        _Pragma("GCC unroll 8") for (int i = 0; i < NV; i++) v_storeu(o + i * W, acc[i]);  \
    }
KERN_AXPY(8)
KERN_AXPY(4)
KERN_AXPY(1)

void KERN(attn_group)(const float *q, const float *k, const float *v, size_t stride, int span,
                      int hd, int grp, float scale, float *s, float *out)
{
    /* the common head sizes get a body with the query in registers where they fit */
    if (hd == 64 && 64 <= QREG * W) kern_scores(q, k, stride, span, 64, grp, scale, s, 1);
    else if (hd == 128 && 128 <= QREG * W) kern_scores(q, k, stride, span, 128, grp, scale, s, 1);
    else kern_scores(q, k, stride, span, hd, grp, scale, s, 0);
    for (int h = 0; h < grp; h++) kern_softmax(s + (size_t)h * span, span);
    for (int p0 = 0; p0 < span; p0 += VB) {
        int p1 = span - p0 < VB ? span : p0 + VB;
        for (int h = 0; h < grp; h++) {
            const float *a = s + (size_t)h * span;
            float *o = out + (size_t)h * hd;
            int d = 0;
            for (; d + 8 * W <= hd; d += 8 * W) kern_axpy8(o + d, a, v + d, stride, p0, p1);
            for (; d + 4 * W <= hd; d += 4 * W) kern_axpy4(o + d, a, v + d, stride, p0, p1);
            for (; d < hd; d += W) kern_axpy1(o + d, a, v + d, stride, p0, p1);
        }
    }
}

#endif
