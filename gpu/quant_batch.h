/* gpu/quant_batch.h: batch (prompt) kernels for the SIMD levels, written once and compiled
 * into quant_avx2.c and quant_avx512.c after gpu/quant_kern.h (include only from there,
 * with the same KERN_VNNI and KERN(name) settings).
 *
 * A batch kernel multiplies each weight row by four prepared activations at once: the
 * weight side of a block (loads, unpacking, scales) is done once for all four, and each
 * activation's sums are formed in exactly its matrix-vector kernel's order (integer sums
 * are exact, the float operations are the same ones in the same sequence), so every result
 * equals qt_matvec's bit for bit. */
#ifndef CMIF_GPU_QUANT_BATCH_COMMON
#define CMIF_GPU_QUANT_BATCH_COMMON

/* Four dot products of one weight row (n columns) with activations `as` bytes apart. */
typedef void (*qt_rows4_fn)(const uint8_t *W, size_t n, const uint8_t *act, size_t as, float out[4]);

/* A batch kernel from a four-activation row kernel: groups of four activations, each
 * group meeting every row; the last na % 4 activations go through the matrix-vector
 * kernel. Inlined, so rows4 and mv are direct calls. */
static inline __attribute__((always_inline)) void mm_by4(const uint8_t *W, size_t rb, size_t n, const uint8_t *act,
                                                         size_t as, size_t na, float *Y, size_t ldy, size_t nr,
                                                         qt_rows4_fn rows4, qt_mv_fn mv)
{
    size_t j = 0;
    for (; j + 4 <= na; j += 4)
        for (size_t r = 0; r < nr; r++) {
            float o[4];
            rows4(W + r * rb, n, act + j * as, as, o);
            for (int k = 0; k < 4; k++) Y[(j + k) * ldy + r] = o[k];
        }
    for (; j < na; j++) mv(W, rb, n, act + j * as, Y + j * ldy, nr);
}

#if !defined(__AVX512BW__)
/* The 256-bit K-quant row kernels (the AVX2 level; AVX-512 has 512-bit ones in
 * quant_avx512.c) for four activations. */

/* q45_k_row: Q4_K (five 0) or Q5_K (five 1). */
static inline __attribute__((always_inline)) void q45_k_rows4_ymm(const uint8_t *W, size_t n, const uint8_t *act,
                                                                  size_t as, float out[4], int five)
{
    const struct qa8k *a[4];
    __m256 acc[4], accm[4];
    for (int k = 0; k < 4; k++) {
        a[k] = (const struct qa8k *)(act + k * as);
        acc[k] = accm[k] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F), m16 = _mm256_set1_epi8(0x10);
    for (size_t i = 0; i < n / 256; i++) {
        struct k45_head hd = k45_head(W, i, five, 0);
        __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(hd.sc8)), sumi[4];
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(hd.blk + 16)) : _mm256_setzero_si256();
        for (int k = 0; k < 4; k++) sumi[k] = _mm256_setzero_si256();
        _Pragma("GCC unroll 4")
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(hd.qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(qh, 4), m16));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(qh, 3), m16));
                qh = _mm256_srli_epi16(qh, 2);
            }
            __m256i s0 = bcast16(sc16, 2 * c), s1 = bcast16(sc16, 2 * c + 1);
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) {
                const int8_t *x = a[k][i].q + 64 * c;
                __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)x));
                __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(x + 32)));
                sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(p0, s0));
                sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(p1, s1));
            }
        }
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++) {
            const struct qa8k *ak = a[k] + i;
            __m256i prodm = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)ak->bsums), hd.mn16);
            float d = hd.d * ak->d, dmin = hd.dmin * ak->d;
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
            accm[k] = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prodm), accm[k]);
        }
    }
    for (int k = 0; k < 4; k++) out[k] = kern_hsum(_mm256_sub_ps(acc[k], accm[k]));
}

static void q4_k_rows4(const uint8_t *W, size_t n, const uint8_t *act, size_t as, float out[4])
{
    q45_k_rows4_ymm(W, n, act, as, out, 0);
}

static void q5_k_rows4(const uint8_t *W, size_t n, const uint8_t *act, size_t as, float out[4])
{
    q45_k_rows4_ymm(W, n, act, as, out, 1);
}

/* q6_k_row */
static void q6_k_rows4(const uint8_t *W, size_t n, const uint8_t *act, size_t as, float out[4])
{
    const struct qa8k *a[4];
    __m256 acc[4];
    for (int k = 0; k < 4; k++) {
        a[k] = (const struct qa8k *)(act + k * as);
        acc[k] = _mm256_setzero_ps();
    }
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    for (size_t i = 0; i < n / 256; i++) {
        const struct blk_q6_k *b = (const struct blk_q6_k *)W + i;
        __m128i sc8 = _mm_loadu_si128((const __m128i *)b->scales);
        __m256i sc16all = _mm256_cvtepi8_epi16(sc8), sumi[4];
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++) {
            __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a[k][i].bsums), sc16all);
            sumi[k] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
        }
        _Pragma("GCC unroll 2")
        for (int h = 0; h < 2; h++) {
            __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
            __m256i q[4];
            q6_unpack(b, h, m4, m30, q);
            _Pragma("GCC unroll 4")
            for (int c = 0; c < 4; c++) {
                __m256i sv = _mm256_shuffle_epi8(sc16, _mm256_loadu_si256((const __m256i *)kern_grp_sel[c]));
                _Pragma("GCC unroll 4")
                for (int k = 0; k < 4; k++) {
                    __m256i p = _mm256_maddubs_epi16(q[c], _mm256_loadu_si256((const __m256i *)(a[k][i].q + 128 * h + 32 * c)));
                    sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(p, sv));
                }
            }
        }
        float dw = kern_h2f(b->d);
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a[k][i].d), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
    }
    for (int k = 0; k < 4; k++) out[k] = kern_hsum(acc[k]);
}

#define MM_BY4(NAME, ROWS4, MV)                                                                      \
    static void NAME(const uint8_t *W, size_t rb, size_t n, const uint8_t *act, size_t as, size_t na, \
                     float *Y, size_t ldy, size_t nr)                                                 \
    {                                                                                                 \
        mm_by4(W, rb, n, act, as, na, Y, ldy, nr, ROWS4, MV);                                         \
    }
MM_BY4(mm_q4_k, q4_k_rows4, mv_q4_k)
MM_BY4(mm_q5_k, q5_k_rows4, mv_q5_k)
MM_BY4(mm_q6_k, q6_k_rows4, mv_q6_k)
#undef MM_BY4

/* The AVX2 level's K-quant batch kernels. */
static void fill_mm_k256(qt_mm_fn mm[QK_NSLOTS])
{
    mm[QK_Q4_K] = mm_q4_k;
    mm[QK_Q5_K] = mm_q5_k;
    mm[QK_Q6_K] = mm_q6_k;
}
#endif

#endif /* common part */

/* ---- per-variant part: the 256-bit Q8_0/Q4_0 row kernels (without VNNI; with it, the
 * 512-bit batch kernel of quant_avx512.c runs) ---- */
#if !KERN_VNNI
/* KERN(T_row) for four activations: the same blocks, the same two accumulators each. */
#define ROWS4_32(T)                                                                                 \
static void KERN(T##_rows4)(const uint8_t *W, size_t n, const uint8_t *act, size_t as, float out[4]) \
{                                                                                                   \
    const struct blk_##T *b = (const struct blk_##T *)W;                                            \
    const struct qa8 *a[4];                                                                         \
    __m256 c0[4], c1[4];                                                                            \
    size_t nb = n / 32, i = 0;                                                                      \
    for (int k = 0; k < 4; k++) {                                                                   \
        a[k] = (const struct qa8 *)(act + k * as);                                                  \
        c0[k] = c1[k] = _mm256_setzero_ps();                                                        \
    }                                                                                               \
    for (; i + 4 <= nb; i += 4) {                                                                   \
        _Pragma("GCC unroll 4")                                                                     \
        for (int k = 0; k < 4; k++) {                                                               \
            c0[k] = KERN(T##_blk)(b + i, a[k] + i, c0[k]);                                          \
            c1[k] = KERN(T##_blk)(b + i + 1, a[k] + i + 1, c1[k]);                                  \
            c0[k] = KERN(T##_blk)(b + i + 2, a[k] + i + 2, c0[k]);                                  \
            c1[k] = KERN(T##_blk)(b + i + 3, a[k] + i + 3, c1[k]);                                  \
        }                                                                                           \
    }                                                                                               \
    for (; i < nb; i++)                                                                             \
        for (int k = 0; k < 4; k++) c0[k] = KERN(T##_blk)(b + i, a[k] + i, c0[k]);                  \
    for (int k = 0; k < 4; k++) {                                                                   \
        float s = 0;                                                                                \
        out[k] = s + kern_hsum(_mm256_add_ps(c0[k], c1[k]));                                        \
    }                                                                                               \
}                                                                                                   \
                                                                                                    \
static void KERN(mm_##T)(const uint8_t *W, size_t rb, size_t n, const uint8_t *act, size_t as,      \
                         size_t na, float *Y, size_t ldy, size_t nr)                                \
{                                                                                                   \
    mm_by4(W, rb, n, act, as, na, Y, ldy, nr, KERN(T##_rows4), KERN(mv_##T));                      \
}

ROWS4_32(q8_0)
ROWS4_32(q4_0)
#undef ROWS4_32

static void KERN(fill_mm)(qt_mm_fn mm[QK_NSLOTS])
{
    mm[QK_Q8_0] = KERN(mm_q8_0);
    mm[QK_Q4_0] = KERN(mm_q4_0);
}
#endif
