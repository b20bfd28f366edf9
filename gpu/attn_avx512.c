/* gpu/attn_avx512: gpu/attn_kern.h's group attention with 512-bit vectors (AVX-512F). */
#include <immintrin.h>

#include "gpu/attn_impl.h"

typedef __m512 vf;
#define W 16
#define QREG 8   /* 8 query + 16 accumulator registers of the 32 */
#define KERN(name) name##_avx512

static inline vf v_set1(float x) { return _mm512_set1_ps(x); }
static inline vf v_zero(void) { return _mm512_setzero_ps(); }
static inline vf v_loadu(const float *p) { return _mm512_loadu_ps(p); }
static inline void v_storeu(float *p, vf x) { _mm512_storeu_ps(p, x); }
static inline __mmask16 lanes(int n) { return (__mmask16)((1u << n) - 1); }
/* n < W lanes: a masked access touches no memory past them (no fault, nothing overwritten). */
static inline vf v_load_n(const float *p, int n) { return _mm512_maskz_loadu_ps(lanes(n), p); }
static inline void v_store_n(float *p, vf x, int n) { _mm512_mask_storeu_ps(p, lanes(n), x); }
static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vf v_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vf v_min(vf a, vf b) { return _mm512_min_ps(a, b); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vf v_fnma(vf a, vf b, vf c) { return _mm512_fnmadd_ps(a, b, c); }
static inline vf v_round(vf x) { return _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/* 2^n for integral n in [-126, 127], straight into the exponent bits. */
static inline vf v_pow2i(vf n)
{
    __m512i e = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
    return _mm512_castsi512_ps(_mm512_slli_epi32(e, 23));
}
/* y where x >= lo, else 0 (NaN x included). */
static inline vf v_keep_ge(vf x, vf lo, vf y) { return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ), y); }
static inline float v_hsum(vf x) { return _mm512_reduce_add_ps(x); }
static inline float v_hmax(vf x) { return _mm512_reduce_max_ps(x); }

/* Four levels of pairwise shuffles and adds. Traced by hand, the tree leaves the sum of its
 * input 4e+k in lane 4k+e (a 4x4 transpose of the order), so the inputs go in transposed
 * to come out in order. */
static inline vf v_reduce(const vf *a)
{
    static const int ord[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    vf b[8], c[4], d[2];
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {   /* each 256-bit half: one input's two lane sums */
        vf x = a[ord[2 * j]], y = a[ord[2 * j + 1]];
        b[j] = _mm512_add_ps(_mm512_shuffle_f32x4(x, y, 0x44), _mm512_shuffle_f32x4(x, y, 0xEE));
    }
#pragma GCC unroll 4
    for (int j = 0; j < 4; j++)     /* each 128-bit lane: one input's four partial sums */
        c[j] = _mm512_add_ps(_mm512_shuffle_f32x4(b[2 * j], b[2 * j + 1], 0x88),
                             _mm512_shuffle_f32x4(b[2 * j], b[2 * j + 1], 0xDD));
#pragma GCC unroll 2
    for (int j = 0; j < 2; j++)
        d[j] = _mm512_add_ps(_mm512_unpacklo_ps(c[2 * j], c[2 * j + 1]),
                             _mm512_unpackhi_ps(c[2 * j], c[2 * j + 1]));
    return _mm512_add_ps(_mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(d[0], d[1], _MM_SHUFFLE(3, 2, 3, 2)));
}

#include "gpu/attn_kern.h"
