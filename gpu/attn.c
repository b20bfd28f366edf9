/* gpu/attn: the scalar reference and the run-time choice of kernel (see attn.h). */
#include "gpu/attn.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "gpu/attn_impl.h"
#include "gpu/quant.h"

static float dot(const float *a, const float *b, int n)
{
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

/* Per head, exactly the arithmetic of one head attended alone (the same dot, max, expf, sum
 * and weighted sum in position order): only the loop order differs, so each K and V row is
 * touched once for the whole group. */
void attn_group_ref(const float *q, const float *k, const float *v, size_t stride, int span,
                    int hd, int grp, float scale, float *s, float *out)
{
    for (int p = 0; p < span; p++) {
        const float *kr = k + (size_t)p * stride;
        for (int h = 0; h < grp; h++) s[(size_t)h * span + p] = dot(q + (size_t)h * hd, kr, hd) * scale;
    }
    for (int h = 0; h < grp; h++) {
        float *sh = s + (size_t)h * span;
        float mx = -INFINITY;
        for (int p = 0; p < span; p++)
            if (sh[p] > mx) mx = sh[p];
        float sum = 0;
        for (int p = 0; p < span; p++) {
            sh[p] = expf(sh[p] - mx);
            sum += sh[p];
        }
        float inv = 1.0f / sum;
        for (int p = 0; p < span; p++) sh[p] *= inv;
    }
    memset(out, 0, (size_t)grp * (size_t)hd * sizeof *out);
    for (int p = 0; p < span; p++) {
        const float *vr = v + (size_t)p * stride;
        for (int h = 0; h < grp; h++) {
            float a = s[(size_t)h * span + p], *o = out + (size_t)h * hd;
            for (int e = 0; e < hd; e++) o[e] += a * vr[e];
        }
    }
}

/* Levels in quant's order ("scalar" < "avx2" < "avx512novnni" < "avx512"); both AVX-512
 * levels run the same kernel (it needs no VNNI). */
enum { AL_SCALAR, AL_AVX2, AL_AVX512, AL_AUTO };

static int level_of(const char *s)
{
    if (!s) return AL_AUTO;
    if (strcmp(s, "scalar") == 0) return AL_SCALAR;
    if (strcmp(s, "avx2") == 0) return AL_AVX2;
    if (strcmp(s, "avx512") == 0 || strcmp(s, "avx512novnni") == 0) return AL_AVX512;
    return AL_AUTO;
}

static _Atomic int forced = AL_AUTO;

/* Read on every call rather than cached: tests and benchmarks change quant's level. */
static int cur_level(void)
{
    int q = level_of(qt_simd_level()), f = atomic_load_explicit(&forced, memory_order_relaxed);
    return f < q ? f : q;   /* never above quant's, which is capped at the CPU's */
}

const char *attn_simd_level(void)
{
    static const char *const names[] = {"scalar", "avx2", "avx512"};
    return names[cur_level()];
}

void attn_force_simd(const char *level)
{
    atomic_store_explicit(&forced, level_of(level), memory_order_relaxed);
}

void attn_group(const float *q, const float *k, const float *v, size_t stride, int span,
                int hd, int grp, float scale, float *s, float *out)
{
    int lv = hd % 16 == 0 ? cur_level() : AL_SCALAR;
    if (lv == AL_AVX512) attn_group_avx512(q, k, v, stride, span, hd, grp, scale, s, out);
    else if (lv == AL_AVX2) attn_group_avx2(q, k, v, stride, span, hd, grp, scale, s, out);
    else attn_group_ref(q, k, v, stride, span, hd, grp, scale, s, out);
}

void attn_exp(const float *x, float *y, size_t n)
{
    int lv = cur_level();
    if (lv == AL_AVX512) attn_exp_avx512(x, y, n);
    else if (lv == AL_AVX2) attn_exp_avx2(x, y, n);
    else
        for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
}
