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


/* A batch kernel that is FN with its last argument (the variant) fixed. */
#define MM_OF(NAME, FN, ARG)                                                                         \
    static void NAME(const uint8_t *W, size_t rb, size_t n, const uint8_t *act, size_t as, size_t na, \
                     float *Y, size_t ldy, size_t nr)                                                 \
    {                                                                                                 \
        FN(W, rb, n, act, as, na, Y, ldy, nr, ARG);                                                   \
    }

/* ---- Q4_1, Q5_0, Q5_1, IQ4_NL (q5_row) and Q2_K, Q3_K, IQ4_XS (q23_k_row, iq4_xs_row):
 * one 256-bit kernel each, the same at every SIMD level ---- */

/* One block of q5_row for four activations: the weight bytes unpacked once. */
static inline __attribute__((always_inline)) void q5_blk4(const uint8_t *W, const struct qa8 *const a[4], size_t i,
                                                          int type, __m256 acc[4], __m256 accm[4])
{
    const int hasm = type == QT_Q4_1 || type == QT_Q5_1, five = type == QT_Q5_0 || type == QT_Q5_1;
    uint16_t dh, mh;
    memcpy(&dh, W, 2);
    memcpy(&mh, W + 2, 2);
    const uint8_t *qh = W + (hasm ? 4 : 2), *qs = qh + (five ? 4 : 0);
    __m256i w = kern_nib32(qs);
    if (type == QT_IQ4_NL)
        w = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qt_iq4nl_values)), w);
    else if (five)
        w = _mm256_or_si256(w, kern_bit4_32(qh));
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) {
        const struct qa8 *ak = a[k] + i;
        __m256i x = _mm256_loadu_si256((const __m256i *)ak->q), dot;
        if (type == QT_IQ4_NL) {
            dot = kern_dot_s8(w, x);
        } else {
            dot = kern_dot_u8(w, x);
            if (type == QT_Q5_0) dot = _mm256_add_epi32(dot, _mm256_zextsi128_si256(_mm_cvtsi32_si128(-16 * ak->s)));
        }
        float d = kern_h2f(dh) * ak->d;
        acc[k] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(d), acc[k]);
        if (hasm)
            accm[k] = _mm256_add_ps(accm[k], _mm256_castps128_ps256(_mm_set_ss(kern_h2f(mh) * ak->d * (float)ak->s)));
    }
}

static inline __attribute__((always_inline)) void q5_rows4(const uint8_t *W, size_t n, const uint8_t *act,
                                                           size_t as, float out[4], int type)
{
    const size_t bs = type == QT_Q4_1 ? sizeof(struct blk_q4_1)
                      : type == QT_Q5_0 ? sizeof(struct blk_q5_0)
                      : type == QT_Q5_1 ? sizeof(struct blk_q5_1) : sizeof(struct blk_iq4_nl);
    const struct qa8 *a[4];
    __m256 acc0[4], acc1[4], accm[4];
    for (int k = 0; k < 4; k++) {
        a[k] = (const struct qa8 *)(act + k * as);
        acc0[k] = acc1[k] = accm[k] = _mm256_setzero_ps();
    }
    size_t nb = n / 32, i = 0;
    for (; i + 2 <= nb; i += 2) {   /* even blocks in acc0, odd in acc1, as q5_row */
        q5_blk4(W + i * bs, a, i, type, acc0, accm);
        q5_blk4(W + (i + 1) * bs, a, i + 1, type, acc1, accm);
    }
    if (i < nb) q5_blk4(W + i * bs, a, i, type, acc0, accm);
    for (int k = 0; k < 4; k++) out[k] = kern_hsum(_mm256_add_ps(_mm256_add_ps(acc0[k], acc1[k]), accm[k]));
}

/* q23_k_row for four activations. */
static inline __attribute__((always_inline)) void q23_k_rows4(const uint8_t *W, size_t n, const uint8_t *act,
                                                              size_t as, float out[4], int three)
{
    const struct qa8k *a[4];
    __m256 acc[4], accm[4];
    for (int k = 0; k < 4; k++) {
        a[k] = (const struct qa8k *)(act + k * as);
        acc[k] = accm[k] = _mm256_setzero_ps();
    }
    for (size_t i = 0; i < n / 256; i++) {
        struct k23_head hd = k23_head(W, i, three);
        __m256i sumi[4];
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++) {
            __m256i bsums = _mm256_loadu_si256((const __m256i *)a[k][i].bsums);
            if (three) {
                sumi[k] = _mm256_sub_epi32(_mm256_setzero_si256(),
                                           _mm256_slli_epi32(_mm256_madd_epi16(bsums, _mm256_cvtepi8_epi16(hd.sc8)), 2));
            } else {
                accm[k] = _mm256_fmadd_ps(_mm256_set1_ps(hd.dmin * a[k][i].d),
                                          _mm256_cvtepi32_ps(_mm256_madd_epi16(bsums, hd.mn16)), accm[k]);
                sumi[k] = _mm256_setzero_si256();
            }
        }
        _Pragma("GCC unroll 2")
        for (int h = 0; h < 2; h++) {
            _Pragma("GCC unroll 4")
            for (int j = 0; j < 4; j++) {
                __m256i v = k23_quants(&hd, h, j, three), sv = k23_scales(&hd, h, j, three);
                _Pragma("GCC unroll 4")
                for (int k = 0; k < 4; k++) {
                    __m256i p = _mm256_maddubs_epi16(v, _mm256_loadu_si256((const __m256i *)(a[k][i].q + 128 * h + 32 * j)));
                    sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(p, sv));
                }
            }
        }
        float dw = hd.d;
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a[k][i].d), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
    }
    for (int k = 0; k < 4; k++) out[k] = kern_hsum(_mm256_sub_ps(acc[k], accm[k]));
}

/* iq4_xs_row for four activations. */
static void iq4_xs_rows4(const uint8_t *W, size_t n, const uint8_t *act, size_t as, float out[4])
{
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qt_iq4nl_values));
    const struct qa8k *a[4];
    __m256 acc[4];
    for (int k = 0; k < 4; k++) {
        a[k] = (const struct qa8k *)(act + k * as);
        acc[k] = _mm256_setzero_ps();
    }
    for (size_t i = 0; i < n / 256; i++) {
        const struct blk_iq4_xs *b = (const struct blk_iq4_xs *)W + i;
        __m256i sumi[4];
        for (int k = 0; k < 4; k++) sumi[k] = _mm256_setzero_si256();
        _Pragma("GCC unroll 8")
        for (int ib = 0; ib < 8; ib++) {
            __m256i w = _mm256_shuffle_epi8(kv, kern_nib32(b->qs + 16 * ib)), sw = _mm256_sign_epi8(w, w);
            __m256i sc = _mm256_set1_epi16((short)qt_iq4xs_scale(b, ib));
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) {
                __m256i x = _mm256_loadu_si256((const __m256i *)(a[k][i].q + 32 * ib));
                __m256i p = _mm256_maddubs_epi16(sw, _mm256_sign_epi8(x, w));
                sumi[k] = _mm256_add_epi32(sumi[k], _mm256_madd_epi16(p, sc));
            }
        }
        float dw = kern_h2f(b->d);
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++)
            acc[k] = _mm256_fmadd_ps(_mm256_set1_ps(dw * a[k][i].d), _mm256_cvtepi32_ps(sumi[k]), acc[k]);
    }
    for (int k = 0; k < 4; k++) out[k] = kern_hsum(acc[k]);
}

#define ROWS4_OF(NAME, ROWS4, ARG)                                                                 \
    static void NAME(const uint8_t *W, size_t n, const uint8_t *act, size_t as, float out[4])        \
    {                                                                                               \
        ROWS4(W, n, act, as, out, ARG);                                                             \
    }
ROWS4_OF(q4_1_rows4, q5_rows4, QT_Q4_1)
ROWS4_OF(q5_0_rows4, q5_rows4, QT_Q5_0)
ROWS4_OF(q5_1_rows4, q5_rows4, QT_Q5_1)
ROWS4_OF(iq4_nl_rows4, q5_rows4, QT_IQ4_NL)
ROWS4_OF(q2_k_rows4, q23_k_rows4, 0)
ROWS4_OF(q3_k_rows4, q23_k_rows4, 1)
#undef ROWS4_OF

#define MM_BY4(NAME, ROWS4, MV)                                                                      \
    static void NAME(const uint8_t *W, size_t rb, size_t n, const uint8_t *act, size_t as, size_t na, \
                     float *Y, size_t ldy, size_t nr)                                                 \
    {                                                                                                 \
        mm_by4(W, rb, n, act, as, na, Y, ldy, nr, ROWS4, MV);                                         \
    }
MM_BY4(mm_q4_1, q4_1_rows4, mv_q4_1)
MM_BY4(mm_q5_0, q5_0_rows4, mv_q5_0)
MM_BY4(mm_q5_1, q5_1_rows4, mv_q5_1)
MM_BY4(mm_iq4_nl, iq4_nl_rows4, mv_iq4_nl)
MM_BY4(mm_q2_k, q2_k_rows4, mv_q2_k)
MM_BY4(mm_q3_k, q3_k_rows4, mv_q3_k)
MM_BY4(mm_iq4_xs, iq4_xs_rows4, mv_iq4_xs)

/* The batch kernels shared by every SIMD level. */
static void fill_mm_common(qt_mm_fn mm[QK_NSLOTS])
{
    mm[QK_Q4_1] = mm_q4_1;
    mm[QK_Q5_0] = mm_q5_0;
    mm[QK_Q5_1] = mm_q5_1;
    mm[QK_IQ4_NL] = mm_iq4_nl;
    mm[QK_Q2_K] = mm_q2_k;
    mm[QK_Q3_K] = mm_q3_k;
    mm[QK_IQ4_XS] = mm_iq4_xs;
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

MM_BY4(mm_q4_k, q4_k_rows4, mv_q4_k)
MM_BY4(mm_q5_k, q5_k_rows4, mv_q5_k)
MM_BY4(mm_q6_k, q6_k_rows4, mv_q6_k)

/* The AVX2 level's K-quant batch kernels. */
static void fill_mm_k256(qt_mm_fn mm[QK_NSLOTS])
{
    mm[QK_Q4_K] = mm_q4_k;
    mm[QK_Q5_K] = mm_q5_k;
    mm[QK_Q6_K] = mm_q6_k;
}
#endif
#undef MM_BY4

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
