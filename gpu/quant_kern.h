/* gpu/quant_kern.h: the SIMD matrix-vector kernels, activation quantizers and row
 * dequantizers, written once and compiled into quant_avx2.c (AVX2+FMA+F16C) and
 * quant_avx512.c (the same code with AVX-512 registers and encodings, plus 512-bit forms of
 * Q8_0, Q4_0 and IQ4_NL (with VNNI), Q4_K and Q5_K). Include only from those files, after
 * defining KERN_VNNI and KERN(name) (the suffix for this build's function names).
 *
 * Decode is memory-bound: every kernel streams each weight byte once, one row at a time
 * (several concurrent row streams per thread measured at half the bandwidth), keeps the
 * per-block work small by preparing the activation once per vector in the layout the
 * kernel wants, and prefetches a little ahead. */
#ifndef CMIF_GPU_QUANT_KERN_COMMON
#define CMIF_GPU_QUANT_KERN_COMMON
#include <immintrin.h>

#include "gpu/quant.h"
#include "gpu/quant_impl.h"

#ifndef PF_HINT
#define PF_HINT _MM_HINT_T0
#endif
/* Software prefetch distance in bytes. Measured on the 2-core AMD EPYC (AVX-512) development VM
 * against a plain read loop over 0.5 GB: for Q8_0, 256 bytes gave 0.85-0.99 of read
 * bandwidth, 512-768 only 0.6-0.75, none 0.8-0.9; K-quants were within noise, 768 kept. */
#ifndef PF_AHEAD
#define PF_AHEAD 768
#endif
#ifndef PF_AHEAD_Q8
#define PF_AHEAD_Q8 256
#endif
/* The 512-bit K-quant matrix-vector rows (Q4_K, Q5_K, Q6_K) touch one line per KiB or so
 * (every eighth Q4_K/Q5_K super-block, every fourth Q6_K one) 16 KiB ahead: a sparse touch
 * well ahead keeps the hardware prefetcher streaming across page boundaries without
 * spending issue slots on every line. Measured on one large matrix against a plain
 * streaming read, one and two threads (AMD EPYC, AVX-512): Q5_K read 0.73-0.79 of it with
 * every line prefetched 4 KiB ahead, 0.95-1.08 this way; Q6_K 0.75-0.83 and 0.86-0.91. */
#ifndef PF_AHEAD_KZ
#define PF_AHEAD_KZ 16384
#endif

static inline float kern_hsum(__m256 v)
{
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static inline float kern_h2f(uint16_t h) { return _cvtsh_ss(h); }

/* Prefetch for the Q8_0/Q4_0 row loops: a step of four blocks, PF_AHEAD_Q8 ahead (pf3: a
 * third cache line, for Q8_0's 136 bytes a step). */
static inline __attribute__((always_inline)) void row32_prefetch(const void *blk, int pf3)
{
    const char *p = (const char *)blk + PF_AHEAD_Q8;
    _mm_prefetch(p, PF_HINT);
    _mm_prefetch(p + 64, PF_HINT);
    if (pf3) _mm_prefetch(p + 128, PF_HINT);
}

/* ---- Q4_K / Q5_K ------------------------------------------------------------------------- */

/* The 8 six-bit scales and mins of a Q4_K/Q5_K super-block, as two 8-byte vectors. */
static inline void k4_unpack(const uint8_t *p, __m128i *sc, __m128i *mn)
{
    uint32_t w[3];
    memcpy(w, p, 12);
    uint32_t sc_lo = w[0] & 0x3f3f3f3fu, mn_lo = w[1] & 0x3f3f3f3fu;
    uint32_t sc_hi = (w[2] & 0x0f0f0f0fu) | (((w[0] >> 6) & 0x03030303u) << 4);
    uint32_t mn_hi = ((w[2] >> 4) & 0x0f0f0f0fu) | (((w[1] >> 6) & 0x03030303u) << 4);
    *sc = _mm_set_epi32(0, 0, (int)sc_hi, (int)sc_lo);
    *mn = _mm_set_epi32(0, 0, (int)mn_hi, (int)mn_lo);
}

/* int16 broadcast masks: lane j of an 8 x int16 vector to all 16 lanes */
static inline __m256i bcast16(__m256i v16x2, int j)
{
    return _mm256_shuffle_epi8(v16x2, _mm256_set1_epi16((short)((2 * j) | ((2 * j + 1) << 8))));
}

/* Super-block i of a Q4_K (five 0) or Q5_K (five 1) row: its address, the packed nibbles,
 * d and dmin (fp16) as floats, the 6-bit scales as bytes and the mins widened to int16
 * (each twice, one per 32-element half of a sub-block pair). prefetch: start loading the
 * super-block PF_AHEAD bytes on (the matrix-vector kernels; the batch kernel reuses each
 * block for four activations and does not). */
struct k45_head {
    const uint8_t *blk, *qs;
    float d, dmin;
    __m128i sc8;
    __m256i mn16;
};

static inline __attribute__((always_inline)) struct k45_head k45_head(const uint8_t *W, size_t i,
                                                                      int five, int prefetch)
{
    struct k45_head h;
    h.blk = W + i * (five ? sizeof(struct blk_q5_k) : sizeof(struct blk_q4_k));
    if (prefetch) {
        _mm_prefetch((const char *)h.blk + PF_AHEAD, PF_HINT);
        _mm_prefetch((const char *)h.blk + PF_AHEAD + 64, PF_HINT);
        if (five) _mm_prefetch((const char *)h.blk + PF_AHEAD + 128, PF_HINT);
    }
    uint16_t dh, dmh;
    memcpy(&dh, h.blk, 2);
    memcpy(&dmh, h.blk + 2, 2);
    __m128i mn8;
    k4_unpack(h.blk + 4, &h.sc8, &mn8);
    h.mn16 = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(mn8, mn8));
    h.d = kern_h2f(dh);
    h.dmin = kern_h2f(dmh);
    h.qs = h.blk + (five ? 48 : 16);
    return h;
}

static inline __attribute__((always_inline)) float q45_k_row(const uint8_t *W, size_t nsb,
                                                              const struct qa8k *a, int five)
{
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m16 = _mm256_set1_epi8(0x10);
    for (size_t i = 0; i < nsb; i++, a++) {
        struct k45_head hd = k45_head(W, i, five, 1);
        const uint8_t *blk = hd.blk, *qs = hd.qs;
        /* mins: Σ_j m_j·(bsum[2j] + bsum[2j+1]) */
        __m256i prodm = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a->bsums), hd.mn16);
        __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepu8_epi16(hd.sc8));
        __m256i sumi = _mm256_setzero_si256();
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(blk + 16)) : _mm256_setzero_si256();
        _Pragma("GCC unroll 4")
        for (int c = 0; c < 4; c++) {
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4);
            __m256i hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (five) {   /* bit 2c of qh -> 16 for the low half, bit 2c+1 for the high */
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(qh, 4), m16));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(qh, 3), m16));
                qh = _mm256_srli_epi16(qh, 2);
            }
            __m256i p0 = _mm256_maddubs_epi16(lo, _mm256_loadu_si256((const __m256i *)(a->q + 64 * c)));
            __m256i p1 = _mm256_maddubs_epi16(hi, _mm256_loadu_si256((const __m256i *)(a->q + 64 * c + 32)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p0, bcast16(sc16, 2 * c)));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p1, bcast16(sc16, 2 * c + 1)));
        }
        float d = hd.d * a->d, dmin = hd.dmin * a->d;
        acc = _mm256_fmadd_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(sumi), acc);
        accm = _mm256_fmadd_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(prodm), accm);
    }
    return kern_hsum(_mm256_sub_ps(acc, accm));
}

#if defined(__AVX512BW__)
/* vpshufb patterns: word j of the scales in the low 256 bits, word k in the high, for
 * (j, k) = (0,2) (1,3) (4,6) (5,7); static so no per-row setup */
#define W2(j) 2 * (j), 2 * (j) + 1
#define W16(j) W2(j), W2(j), W2(j), W2(j), W2(j), W2(j), W2(j), W2(j)
static const int8_t k45_sel[4][64] = {
    {W16(0), W16(0), W16(2), W16(2)}, {W16(1), W16(1), W16(3), W16(3)},
    {W16(4), W16(4), W16(6), W16(6)}, {W16(5), W16(5), W16(7), W16(7)},
};
#undef W16
#undef W2

/* Q5_K's high bits for the two 64-element halves of a super-block (bits 0-3 for the first,
 * 4-7 for the second), one per 256-bit lane; zero for Q4_K. */
static inline __attribute__((always_inline)) __m512i k45_qh_zmm(const uint8_t *blk, int five)
{
    if (!five) return _mm512_setzero_si512();
    __m256i q = _mm256_loadu_si256((const __m256i *)(blk + 16));
    return _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 2), 1);
}

/* The 8 scales and 8 mins of a Q4_K/Q5_K super-block whose first 16 bytes are raw (d, dmin,
 * then the 12 packed bytes), unpacked in a vector register as k4_unpack unpacks them in
 * integer words: bytes 0-7 the scales, 8-15 the mins. */
static inline __attribute__((always_inline)) __m128i k45_scmn(__m128i raw)
{
    /* dwords [w0 w2 w1 w2>>4] & [3f 0f 3f 0f] | [0 w0>>2 0 w1>>2] & [0 30 0 30] */
    __m128i a = _mm_srlv_epi32(_mm_shuffle_epi32(raw, _MM_SHUFFLE(3, 2, 3, 1)), _mm_set_epi32(4, 0, 0, 0));
    a = _mm_and_si128(a, _mm_set_epi32(0x0f0f0f0f, 0x3f3f3f3f, 0x0f0f0f0f, 0x3f3f3f3f));
    __m128i b = _mm_srli_epi32(_mm_shuffle_epi32(raw, _MM_SHUFFLE(2, 2, 1, 1)), 2);
    return _mm_ternarylogic_epi32(a, b, _mm_set_epi32(0x30303030, 0, 0x30303030, 0), 0xF8);   /* a | (b & c) */
}

/* vpshufb patterns over k45_scmn's bytes in every 128-bit lane: scale j (zero-extended to
 * int16) in the low 256 bits and scale k in the high ones, for the (j, k) of k45_sel; and
 * the mins widened as k45_head's mn16 (int16 lane i = min i / 2). */
#define Z2(j) (j), -128
#define Z16(j) Z2(j), Z2(j), Z2(j), Z2(j), Z2(j), Z2(j), Z2(j), Z2(j)
static const int8_t k45_zsel[4][64] = {
    {Z16(0), Z16(0), Z16(2), Z16(2)}, {Z16(1), Z16(1), Z16(3), Z16(3)},
    {Z16(4), Z16(4), Z16(6), Z16(6)}, {Z16(5), Z16(5), Z16(7), Z16(7)},
};
static const int8_t k45_zmn[32] = {Z2(8),  Z2(8),  Z2(9),  Z2(9),  Z2(10), Z2(10), Z2(11), Z2(11),
                                   Z2(12), Z2(12), Z2(13), Z2(13), Z2(14), Z2(14), Z2(15), Z2(15)};
#undef Z16
#undef Z2

/* 512-bit form: 64 bytes of packed nibbles (two 64-element chunks) per instruction, against
 * the activation reordered to match (qa8k_perm_offset); each 256-bit half of a product
 * belongs to one sub-block, so a scale vector holds two sub-blocks' scales. The scales,
 * mins, d and dmin are unpacked in vector registers (k45_scmn): the same integers and
 * products as k45_head's, in fewer instructions, which decode needs to keep up with memory. */
static inline __attribute__((always_inline)) float q45_k_row_zmm(const uint8_t *W, size_t nsb,
                                                                  const struct qa8k *a, const int8_t *xz,
                                                                  int five, int vnni)
{
    __m512 acc = _mm512_setzero_ps();
    __m256 accm = _mm256_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F), m16 = _mm512_set1_epi8(0x10);
    const __m512i zs0 = _mm512_loadu_si512(k45_zsel[0]), zs1 = _mm512_loadu_si512(k45_zsel[1]);
    const __m512i zs2 = _mm512_loadu_si512(k45_zsel[2]), zs3 = _mm512_loadu_si512(k45_zsel[3]);
    const __m256i zmn = _mm256_loadu_si256((const __m256i *)k45_zmn), one = _mm256_set1_epi32(1);
    const size_t bs = five ? sizeof(struct blk_q5_k) : sizeof(struct blk_q4_k);
    for (size_t i = 0; i < nsb; i++, a++, xz += 256) {
        const uint8_t *blk = W + i * bs, *qs = blk + (five ? 48 : 16);
        if (!(i & 7)) _mm_prefetch((const char *)blk + PF_AHEAD_KZ, PF_HINT);
        __m128i raw = _mm_loadu_si128((const __m128i *)blk);
        /* [d dmin] · d_x, each the product k45_head's caller forms */
        __m128 dd = _mm_mul_ps(_mm_cvtph_ps(raw), _mm_set1_ps(a->d));
        __m512i scz = _mm512_broadcast_i32x4(k45_scmn(raw));
        __m256i mn16 = _mm256_shuffle_epi8(_mm512_castsi512_si256(scz), zmn);
        __m256i prodm = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a->bsums), mn16);
        __m512i qh = k45_qh_zmm(blk, five);
        __m512i sumi = _mm512_setzero_si512();
        _Pragma("GCC unroll 2")
        for (int h = 0; h < 2; h++) {
            __m512i q = _mm512_loadu_si512(qs + 64 * h);
            __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            if (five) {
                lo = _mm512_or_si512(lo, _mm512_and_si512(_mm512_slli_epi16(qh, 4), m16));
                hi = _mm512_or_si512(hi, _mm512_and_si512(_mm512_slli_epi16(qh, 3), m16));
                qh = _mm512_srli_epi16(qh, 4);
            }
            __m512i p0 = _mm512_maddubs_epi16(lo, _mm512_loadu_si512(xz + 128 * h));
            __m512i p1 = _mm512_maddubs_epi16(hi, _mm512_loadu_si512(xz + 128 * h + 64));
            __m512i s0 = _mm512_shuffle_epi8(scz, h ? zs2 : zs0), s1 = _mm512_shuffle_epi8(scz, h ? zs3 : zs1);
            if (vnni) {   /* vpdpwssd: the same exact integer sums, one instruction fewer each */
                sumi = _mm512_dpwssd_epi32(sumi, p0, s0);
                sumi = _mm512_dpwssd_epi32(sumi, p1, s1);
            } else {
                sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p0, s0));
                sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p1, s1));
            }
        }
        acc = _mm512_fmadd_ps(_mm512_broadcastss_ps(dd), _mm512_cvtepi32_ps(sumi), acc);
        accm = _mm256_fmadd_ps(_mm256_permutevar8x32_ps(_mm256_castps128_ps256(dd), one),
                               _mm256_cvtepi32_ps(prodm), accm);
    }
    return _mm512_reduce_add_ps(acc) - kern_hsum(accm);
}
#define Q45_ROW(W, nsb, a, n, five) q45_k_row_zmm(W, nsb, a, (const int8_t *)(a) + qa8k_perm_offset(n), five, 0)
#else
#define Q45_ROW(W, nsb, a, n, five) q45_k_row(W, nsb, a, five)
#endif

static void mv_q4_k(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    for (size_t r = 0; r < nr; r++) y[r] = Q45_ROW(W + r * rb, n / 256, act, n, 0);
}

static void mv_q5_k(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    for (size_t r = 0; r < nr; r++) y[r] = Q45_ROW(W + r * rb, n / 256, act, n, 1);
}

/* ---- Q6_K ---------------------------------------------------------------------------------- */

/* The 6-bit quants of half h of a Q6_K super-block, unsigned (0..63, stored +32), as four
 * 32-byte chunks in element order (chunk k holds elements 128h + 32k ..). */
static inline __attribute__((always_inline)) void q6_unpack(const struct blk_q6_k *b, int h, __m256i m4,
                                                            __m256i m30, __m256i q[4])
{
    __m256i ql0 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h));
    __m256i ql1 = _mm256_loadu_si256((const __m256i *)(b->ql + 64 * h + 32));
    __m256i qhv = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qhv, 4), m30));
    q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(_mm256_slli_epi16(qhv, 2), m30));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qhv, m30));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                           _mm256_and_si256(_mm256_srli_epi16(qhv, 2), m30));
}

static inline float q6_k_row(const uint8_t *W, size_t nsb, const struct qa8k *a)
{
    __m256 acc = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30);
    /* chunk k of a half: int16 lane 2k to the low 128 bits, 2k+1 to the high ones */
    static const int8_t shuf[4][32] = {
        {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3},
        {4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7},
        {8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11},
        {12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15},
    };
    __m256i sh[4];
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) sh[k] = _mm256_loadu_si256((const __m256i *)shuf[k]);
    for (size_t i = 0; i < nsb; i++, a++) {
        const struct blk_q6_k *b = (const struct blk_q6_k *)W + i;
        _Pragma("GCC unroll 4")
        for (int k = 0; k < 4; k++) _mm_prefetch((const char *)b + PF_AHEAD + 64 * k, PF_HINT);
        __m128i sc8 = _mm_loadu_si128((const __m128i *)b->scales);
        /* the -32 offset: Σ_g sc_g·32·bsum_g */
        __m256i sc16all = _mm256_cvtepi8_epi16(sc8);
        __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a->bsums), sc16all);
        __m256i sumi = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_slli_epi32(off, 5));
        _Pragma("GCC unroll 2")
        for (int h = 0; h < 2; h++) {
            __m256i sc16 = _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(h ? _mm_srli_si128(sc8, 8) : sc8));
            __m256i q[4];
            q6_unpack(b, h, m4, m30, q);
            _Pragma("GCC unroll 4")
            for (int k = 0; k < 4; k++) {
                __m256i p = _mm256_maddubs_epi16(q[k], _mm256_loadu_si256((const __m256i *)(a->q + 128 * h + 32 * k)));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sc16, sh[k])));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(kern_h2f(b->d) * a->d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return kern_hsum(acc);
}

#if defined(__AVX512BW__)
/* The 6-bit quants (stored +32) of half h of a Q6_K super-block: elements 0..63 of the half
 * in lo, 64..127 in hi (shared by the row and batch kernels). */
static inline __attribute__((always_inline)) void q6_half_zmm(const struct blk_q6_k *b, int h, __m512i m4, __m512i m30,
                                                              __m512i *lo, __m512i *hi)
{
    __m512i ql = _mm512_loadu_si512(b->ql + 64 * h);
    __m256i qh = _mm256_loadu_si256((const __m256i *)(b->qh + 32 * h));
    __m512i qlo = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
    __m512i qhi = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(qh, 4)), _mm256_srli_epi16(qh, 6), 1);
    *lo = _mm512_or_si512(_mm512_and_si512(ql, m4), _mm512_and_si512(_mm512_slli_epi16(qlo, 4), m30));
    *hi = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4), _mm512_and_si512(_mm512_slli_epi16(qhi, 4), m30));
}

/* 512-bit form: the 64 bytes of ql of a half super-block hold, in their low nibbles,
 * elements 0..63 and in their high nibbles 64..127 in natural order, so the activation is
 * used as is; each 128-bit lane of a product covers one 16-element scale group. Decode runs
 * it against memory, so the weight side is unpacked in few instructions: a half's 32 bytes
 * of high bits are loaded into both 256-bit lanes and shifted per lane into bits 4-5, the
 * scale vectors are picked from the 16 widened scales with vpermw, and the -32 offset
 * (-32·Σ sc·bsum) is subtracted from the low 8 lanes at the end: the same integer per lane
 * as q6_half_zmm's unpacking and the same float operations. */
static inline __attribute__((always_inline)) float q6_k_row_zmm(const uint8_t *W, size_t nsb, const struct qa8k *a)
{
    __m512 acc = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F), m30 = _mm512_set1_epi8(0x30);
    /* per 256-bit lane: high bits of elements 0..31 (bits 0-1) and 32..63 (bits 2-3) moved
     * left to bits 4-5, of 64..95 (bits 4-5) and 96..127 (bits 6-7) moved right */
    const __m512i shl = _mm512_inserti64x4(_mm512_set1_epi16(4), _mm256_set1_epi16(2), 1);
    const __m512i shr = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(2), 1);
    /* vpermw indices: scale group of each int16 lane for the four 64-element chunks (static
     * so no per-row setup) */
#define G8(g) g, g, g, g, g, g, g, g
    static const int16_t sel[4][32] = {{G8(0), G8(1), G8(2), G8(3)}, {G8(4), G8(5), G8(6), G8(7)},
                                       {G8(8), G8(9), G8(10), G8(11)}, {G8(12), G8(13), G8(14), G8(15)}};
#undef G8
    __m512i sl[4];
    _Pragma("GCC unroll 4")
    for (int k = 0; k < 4; k++) sl[k] = _mm512_loadu_si512(sel[k]);
    for (size_t i = 0; i < nsb; i++, a++) {
        const struct blk_q6_k *b = (const struct blk_q6_k *)W + i;
        if (!(i & 3)) _mm_prefetch((const char *)b + PF_AHEAD_KZ, PF_HINT);
        __m256i sc16 = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)b->scales));
        __m512i scz = _mm512_castsi256_si512(sc16);
        __m256i off = _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)a->bsums), sc16);
        __m512i sumi = _mm512_setzero_si512();
        _Pragma("GCC unroll 2")
        for (int h = 0; h < 2; h++) {
            __m512i ql = _mm512_loadu_si512(b->ql + 64 * h);
            __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)(b->qh + 32 * h)));
            __m512i lo = _mm512_ternarylogic_epi32(_mm512_and_si512(ql, m4), _mm512_sllv_epi16(qh, shl), m30, 0xF8);
            __m512i hi = _mm512_ternarylogic_epi32(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                                   _mm512_srlv_epi16(qh, shr), m30, 0xF8);   /* a | (b & c) */
            __m512i p0 = _mm512_maddubs_epi16(lo, _mm512_loadu_si512(a->q + 128 * h));
            __m512i p1 = _mm512_maddubs_epi16(hi, _mm512_loadu_si512(a->q + 128 * h + 64));
            sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p0, _mm512_permutexvar_epi16(sl[2 * h], scz)));
            sumi = _mm512_add_epi32(sumi, _mm512_madd_epi16(p1, _mm512_permutexvar_epi16(sl[2 * h + 1], scz)));
        }
        sumi = _mm512_mask_sub_epi32(sumi, 0x00FF, sumi, _mm512_castsi256_si512(_mm256_slli_epi32(off, 5)));
        __m512 d = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_set1_epi16((short)b->d)), _mm512_set1_ps(a->d));
        acc = _mm512_fmadd_ps(d, _mm512_cvtepi32_ps(sumi), acc);
    }
    return _mm512_reduce_add_ps(acc);
}
#define Q6_ROW q6_k_row_zmm
#else
#define Q6_ROW q6_k_row
#endif

static void mv_q6_k(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    for (size_t r = 0; r < nr; r++) y[r] = Q6_ROW(W + r * rb, n / 256, act);
}

/* ---- Q4_1, Q5_0, Q5_1, IQ4_NL (32-element blocks against struct qa8) ------------------------ */

/* 16 bytes of packed nibbles as 32 bytes in element order (low nibbles first). */
static inline __m256i kern_nib32(const uint8_t *qs)
{
    __m128i q = _mm_loadu_si128((const __m128i *)qs);
    return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
}

/* Bit j of the 32 bits at p as 0x10 in byte j: each byte of a broadcast word picks its own
 * source byte, then tests its own bit. */
static inline __m256i kern_bit4_32(const uint8_t *p)
{
    uint32_t h;
    memcpy(&h, p, 4);
    const __m256i pick = _mm256_set_epi64x(0x0303030303030303ll, 0x0202020202020202ll, 0x0101010101010101ll, 0);
    const __m256i bit = _mm256_set1_epi64x(0x8040201008040201ll);
    __m256i v = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32((int)h), pick), bit);
    return _mm256_and_si256(_mm256_cmpeq_epi8(v, bit), _mm256_set1_epi8(0x10));
}

/* Σ over pairs of u8(u)·s8(x) as 8 int32 lanes; with s8 weights, the sign moves onto x. */
static inline __m256i kern_dot_u8(__m256i u, __m256i x)
{
    return _mm256_madd_epi16(_mm256_maddubs_epi16(u, x), _mm256_set1_epi16(1));
}

static inline __m256i kern_dot_s8(__m256i w, __m256i x)
{
    return kern_dot_u8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
}

/* One row of a 32-element type: integer dot per block (with Q5_0's -16·Σx in lane 0), times
 * d·d_x, plus m·d_x·Σx for Q4_1/Q5_1 in a separate accumulator; two accumulators hide the
 * FMA latency. */
static inline __attribute__((always_inline)) float q5_row(const uint8_t *W, size_t nb, const struct qa8 *a,
                                                           int type)
{
    const size_t bs = type == QT_Q4_1 ? sizeof(struct blk_q4_1)
                      : type == QT_Q5_0 ? sizeof(struct blk_q5_0)
                      : type == QT_Q5_1 ? sizeof(struct blk_q5_1) : sizeof(struct blk_iq4_nl);
    const int hasm = type == QT_Q4_1 || type == QT_Q5_1, five = type == QT_Q5_0 || type == QT_Q5_1;
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qt_iq4nl_values));
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()}, accm = _mm256_setzero_ps();
    for (size_t i = 0; i < nb; i++, a++, W += bs) {
        _mm_prefetch((const char *)W + PF_AHEAD_Q8, PF_HINT);
        uint16_t dh, mh;
        memcpy(&dh, W, 2);
        memcpy(&mh, W + 2, 2);
        const uint8_t *qh = W + (hasm ? 4 : 2), *qs = qh + (five ? 4 : 0);
        __m256i x = _mm256_loadu_si256((const __m256i *)a->q), w = kern_nib32(qs), dot;
        if (type == QT_IQ4_NL) {
            dot = kern_dot_s8(_mm256_shuffle_epi8(kv, w), x);
        } else {
            if (five) w = _mm256_or_si256(w, kern_bit4_32(qh));
            dot = kern_dot_u8(w, x);
            if (type == QT_Q5_0) dot = _mm256_add_epi32(dot, _mm256_zextsi128_si256(_mm_cvtsi32_si128(-16 * a->s)));
        }
        float d = kern_h2f(dh) * a->d;
        acc[i & 1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), _mm256_set1_ps(d), acc[i & 1]);
        if (hasm)   /* lane 0 only: one product per block */
            accm = _mm256_add_ps(accm, _mm256_castps128_ps256(_mm_set_ss(kern_h2f(mh) * a->d * (float)a->s)));
    }
    return kern_hsum(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), accm));
}

#define MV_ROW(NAME, ROW, ARG, PER)                                                              \
    static void NAME(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr) \
    {                                                                                             \
        for (size_t r = 0; r < nr; r++) y[r] = ROW(W + r * rb, n / PER, act, ARG);               \
    }
MV_ROW(mv_q4_1, q5_row, QT_Q4_1, 32)
MV_ROW(mv_q5_0, q5_row, QT_Q5_0, 32)
MV_ROW(mv_q5_1, q5_row, QT_Q5_1, 32)
MV_ROW(mv_iq4_nl, q5_row, QT_IQ4_NL, 32)

/* ---- Q2_K, Q3_K, IQ4_XS (256-element blocks against struct qa8k) ----------------------------- */

/* vpshufb patterns: int16 lane 2j of a 128-bit lane to the low 128 bits, 2j+1 to the high
 * ones (the scales of the two 16-element groups a 32-byte product covers). */
static const int8_t kern_grp_sel[4][32] = {
    {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3},
    {4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7},
    {8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 8, 9, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11, 10, 11},
    {12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 12, 13, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15, 14, 15},
};

/* The 16 six-bit scales of a Q3_K super-block minus their +32 offset, as 16 signed bytes in
 * group order: qt_q3k_scales's values, unpacked with a few word operations (low nibbles
 * from the first 8 bytes, two high bits per group from the last 4) instead of per element. */
static inline __m128i k23_q3_scales(const uint8_t *p)
{
    uint64_t lo;
    uint32_t hb;
    memcpy(&lo, p, 8);
    memcpy(&hb, p + 8, 4);
    uint64_t h01 = (uint64_t)(hb & 0x03030303u) | (uint64_t)((hb >> 2) & 0x03030303u) << 32;
    uint64_t h23 = (uint64_t)((hb >> 4) & 0x03030303u) | (uint64_t)((hb >> 6) & 0x03030303u) << 32;
    uint64_t s0 = (lo & 0x0f0f0f0f0f0f0f0full) | h01 << 4, s1 = ((lo >> 4) & 0x0f0f0f0f0f0f0f0full) | h23 << 4;
    return _mm_sub_epi8(_mm_set_epi64x((long long)s1, (long long)s0), _mm_set1_epi8(32));
}

/* The weight side of super-block i of a Q2_K (three 0) or Q3_K (three 1) row: the quants,
 * the group scales as bytes (signed for Q3_K), Q3_K's high bits, Q2_K's mins widened to
 * int16, d and dmin as floats (shared by the row and batch kernels). */
struct k23_head {
    const uint8_t *blk, *qs;
    __m128i sc8;
    __m256i hm, mn16;
    float d, dmin;
};

static inline __attribute__((always_inline)) struct k23_head k23_head(const uint8_t *W, size_t i, int three)
{
    struct k23_head h;
    h.blk = W + i * (three ? sizeof(struct blk_q3_k) : sizeof(struct blk_q2_k));
    h.hm = h.mn16 = _mm256_setzero_si256();
    h.dmin = 0;
    if (three) {
        const struct blk_q3_k *b = (const struct blk_q3_k *)h.blk;
        h.sc8 = k23_q3_scales(b->scales);
        h.hm = _mm256_loadu_si256((const __m256i *)b->hmask);
        h.qs = b->qs;
        h.d = kern_h2f(b->d);
    } else {
        const struct blk_q2_k *b = (const struct blk_q2_k *)h.blk;
        __m128i raw = _mm_loadu_si128((const __m128i *)b->scales), m4 = _mm_set1_epi8(0x0F);
        h.sc8 = _mm_and_si128(raw, m4);
        h.mn16 = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16(raw, 4), m4));
        h.qs = b->qs;
        h.d = kern_h2f(b->d);
        h.dmin = kern_h2f(b->dmin);
    }
    return h;
}

/* The 32 quants of step j of half h (Q3_K's third bit as 4), and the scales of the two
 * 16-element groups they fall in, widened to int16 lanes that match the products. */
static inline __attribute__((always_inline)) __m256i k23_quants(const struct k23_head *hd, int h, int j, int three)
{
    __m256i q = _mm256_loadu_si256((const __m256i *)(hd->qs + 32 * h));
    __m256i v = _mm256_and_si256(_mm256_srl_epi16(q, _mm_cvtsi32_si128(2 * j)), _mm256_set1_epi8(3));
    if (three) {
        __m256i hb = _mm256_and_si256(_mm256_srl_epi16(hd->hm, _mm_cvtsi32_si128(4 * h + j)), _mm256_set1_epi8(1));
        v = _mm256_or_si256(v, _mm256_slli_epi16(hb, 2));
    }
    return v;
}

static inline __attribute__((always_inline)) __m256i k23_scales(const struct k23_head *hd, int h, int j, int three)
{
    __m128i s8 = h ? _mm_srli_si128(hd->sc8, 8) : hd->sc8;
    __m256i sc16 = _mm256_broadcastsi128_si256(three ? _mm_cvtepi8_epi16(s8) : _mm_cvtepu8_epi16(s8));
    return _mm256_shuffle_epi8(sc16, _mm256_loadu_si256((const __m256i *)kern_grp_sel[j]));
}

/* Q2_K (three 0) and Q3_K (three 1): 2-bit quants (plus the hmask bit as 4 for Q3_K) times
 * x per 16-element group, weighted by the group scales; Q2_K's mins and Q3_K's -4 offset
 * come from the group sums of x. */
static inline __attribute__((always_inline)) float q23_k_row(const uint8_t *W, size_t nsb, const struct qa8k *a,
                                                              int three)
{
    __m256 acc = _mm256_setzero_ps(), accm = _mm256_setzero_ps();
    for (size_t i = 0; i < nsb; i++, a++) {
        struct k23_head hd = k23_head(W, i, three);
        _Pragma("GCC unroll 2")
        for (int k = 0; k < 2; k++) _mm_prefetch((const char *)hd.blk + PF_AHEAD + 64 * k, PF_HINT);
        __m256i bsums = _mm256_loadu_si256((const __m256i *)a->bsums), sumi;
        if (three) {   /* -4·Σ_g sc_g·Σx_g */
            sumi = _mm256_sub_epi32(_mm256_setzero_si256(),
                                    _mm256_slli_epi32(_mm256_madd_epi16(bsums, _mm256_cvtepi8_epi16(hd.sc8)), 2));
        } else {
            accm = _mm256_fmadd_ps(_mm256_set1_ps(hd.dmin * a->d), _mm256_cvtepi32_ps(_mm256_madd_epi16(bsums, hd.mn16)),
                                   accm);
            sumi = _mm256_setzero_si256();
        }
        _Pragma("GCC unroll 2")
        for (int h = 0; h < 2; h++) {
            _Pragma("GCC unroll 4")
            for (int j = 0; j < 4; j++) {
                __m256i p = _mm256_maddubs_epi16(k23_quants(&hd, h, j, three),
                                                 _mm256_loadu_si256((const __m256i *)(a->q + 128 * h + 32 * j)));
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, k23_scales(&hd, h, j, three)));
            }
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(hd.d * a->d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return kern_hsum(_mm256_sub_ps(acc, accm));
}

static inline __attribute__((always_inline)) float iq4_xs_row(const uint8_t *W, size_t nsb, const struct qa8k *a,
                                                               int unused)
{
    (void)unused;
    const __m256i kv = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)qt_iq4nl_values));
    __m256 acc = _mm256_setzero_ps();
    for (size_t i = 0; i < nsb; i++, a++) {
        const struct blk_iq4_xs *b = (const struct blk_iq4_xs *)W + i;
        _Pragma("GCC unroll 3")
        for (int k = 0; k < 3; k++) _mm_prefetch((const char *)b + PF_AHEAD + 64 * k, PF_HINT);
        __m256i sumi = _mm256_setzero_si256();
        _Pragma("GCC unroll 8")
        for (int ib = 0; ib < 8; ib++) {
            __m256i w = _mm256_shuffle_epi8(kv, kern_nib32(b->qs + 16 * ib));
            __m256i x = _mm256_loadu_si256((const __m256i *)(a->q + 32 * ib));
            __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
            sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(p, _mm256_set1_epi16((short)qt_iq4xs_scale(b, ib))));
        }
        acc = _mm256_fmadd_ps(_mm256_set1_ps(kern_h2f(b->d) * a->d), _mm256_cvtepi32_ps(sumi), acc);
    }
    return kern_hsum(acc);
}

MV_ROW(mv_q2_k, q23_k_row, 0, 256)
MV_ROW(mv_q3_k, q23_k_row, 1, 256)
MV_ROW(mv_iq4_xs, iq4_xs_row, 0, 256)
#undef MV_ROW

/* ---- float formats ------------------------------------------------------------------------ */

enum { FK_F32, FK_F16, FK_BF16 };

static inline __attribute__((always_inline)) __m256 fload(const uint8_t *p, int kind)
{
    if (kind == FK_F32) return _mm256_loadu_ps((const float *)p);
    __m128i h = _mm_loadu_si128((const __m128i *)p);
    if (kind == FK_F16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline __attribute__((always_inline)) float fscalar(const uint8_t *p, size_t i, int kind)
{
    if (kind == FK_F32) { float f; memcpy(&f, p + 4 * i, 4); return f; }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    return kind == FK_F16 ? kern_h2f(h) : qt_bf2f(h);
}

/* Two accumulators (16 columns per step); nr is 1 (see Q8_0 on streaming one row). */
static inline __attribute__((always_inline)) void f_rows(const uint8_t *W, size_t rb, size_t n, const float *x,
                                                          float *y, int nr, int kind)
{
    const size_t es = kind == FK_F32 ? 4 : 2;
    __m256 acc[2][2] = {{_mm256_setzero_ps(), _mm256_setzero_ps()}, {_mm256_setzero_ps(), _mm256_setzero_ps()}};
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
        _Pragma("GCC unroll 4")
        for (int r = 0; r < nr; r++) {
            const uint8_t *p = W + (size_t)r * rb + i * es;
            _mm_prefetch((const char *)p + PF_AHEAD_Q8, PF_HINT);
            acc[r][0] = _mm256_fmadd_ps(fload(p, kind), x0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(fload(p + 8 * es, kind), x1, acc[r][1]);
        }
    }
    for (; i + 8 <= n; i += 8) {
        __m256 x0 = _mm256_loadu_ps(x + i);
        _Pragma("GCC unroll 4")
        for (int r = 0; r < nr; r++) acc[r][0] = _mm256_fmadd_ps(fload(W + (size_t)r * rb + i * es, kind), x0, acc[r][0]);
    }
    _Pragma("GCC unroll 4")
    for (int r = 0; r < nr; r++) {
        float s = kern_hsum(_mm256_add_ps(acc[r][0], acc[r][1]));
        for (size_t k = i; k < n; k++) s += fscalar(W + (size_t)r * rb, k, kind) * x[k];
        y[r] = s;
    }
}

#define KERN_FLOAT(name, kind)                                                                      \
    static void name(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr) \
    {                                                                                               \
        size_t r = 0;                                                                               \
        for (; r < nr; r++) f_rows(W + r * rb, rb, n, act, y + r, 1, kind);                         \
    }
KERN_FLOAT(mv_f32, FK_F32)
KERN_FLOAT(mv_f16, FK_F16)
KERN_FLOAT(mv_bf16, FK_BF16)

/* ---- activation quantization -------------------------------------------------------------- */

/* Same arithmetic as the scalar qt_act_prepare (max |x|, id = 127/amax, x·id rounded to
 * nearest even by cvtps2dq), so every level produces identical activations. */
static inline float kern_amax(const float *x, int n)
{
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < n; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    h = _mm_max_ss(h, _mm_movehdup_ps(h));
    return _mm_cvtss_f32(h);
}

/* 32 floats times id to 32 int8 at q; returns their sum. */
static inline int kern_q32(const float *x, float id, int8_t *q)
{
    const __m256 vid = _mm256_set1_ps(id);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), vid));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), vid));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), vid));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), vid));
    __m256i s = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
    __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)q, p);
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4e));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xb1));
    return _mm_cvtsi128_si32(t);
}

static void act_q8(const float *x, size_t n, void *act)
{
    struct qa8 *a = act;
    for (size_t i = 0; i < n / 32; i++, a++, x += 32) {
        float amax = kern_amax(x, 32), id = amax > 0 ? 127.0f / amax : 0;
        a->s = kern_q32(x, id, a->q);
        a->d = amax / 127.0f;
    }
}

static void act_q8k(const float *x, size_t n, void *act)
{
    struct qa8k *a = act;
    for (size_t i = 0; i < n / 256; i++, a++, x += 256) {
        float amax = kern_amax(x, 256), id = amax > 0 ? 127.0f / amax : 0;
        for (int c = 0; c < 8; c++) {
            int8_t *q = a->q + 32 * c;
            kern_q32(x + 32 * c, id, q);
            for (int g = 0; g < 2; g++) {   /* group sums: sad of (q + 128) against 0 */
                __m128i u = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(q + 16 * g)), _mm_set1_epi8(-128));
                __m128i sad = _mm_sad_epu8(u, _mm_setzero_si128());
                a->bsums[2 * c + g] = (int16_t)(_mm_cvtsi128_si32(sad) + _mm_extract_epi16(sad, 4) - 16 * 128);
            }
        }
        a->d = amax / 127.0f;
    }
}

/* ---- row dequantization (for the SGEMM tiles of qt_matmul) ---------------------------------- */

/* Bit-identical to the reference qt_dequant_row: the same float operations in the same
 * order, separate multiply and subtract (never fused). */
static inline void dq_store16(float *y, __m128i q8, __m256 d)
{
    _mm256_storeu_ps(y, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), d));
    _mm256_storeu_ps(y + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(q8, 8))), d));
}

static void dq_q8_0(const uint8_t *src, float *y, size_t n)
{
    const struct blk_q8_0 *b = (const struct blk_q8_0 *)src;
    for (size_t i = 0; i < n / 32; i++, b++, y += 32) {
        __m256 d = _mm256_set1_ps(kern_h2f(b->d));
        dq_store16(y, _mm_loadu_si128((const __m128i *)b->qs), d);
        dq_store16(y + 16, _mm_loadu_si128((const __m128i *)(b->qs + 16)), d);
    }
}

static void dq_q4_0(const uint8_t *src, float *y, size_t n)
{
    const struct blk_q4_0 *b = (const struct blk_q4_0 *)src;
    const __m128i m4 = _mm_set1_epi8(0x0F), e8 = _mm_set1_epi8(8);
    for (size_t i = 0; i < n / 32; i++, b++, y += 32) {
        __m256 d = _mm256_set1_ps(kern_h2f(b->d));
        __m128i q = _mm_loadu_si128((const __m128i *)b->qs);
        dq_store16(y, _mm_sub_epi8(_mm_and_si128(q, m4), e8), d);
        dq_store16(y + 16, _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(q, 4), m4), e8), d);
    }
}

/* 32 unsigned quants (bytes) times d minus o, as d*(float)q - o */
static inline void dq_affine32(float *y, __m256i q, float d, float o)
{
    __m256 vd = _mm256_set1_ps(d), vo = _mm256_set1_ps(o);
    __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
    __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
    for (int k = 0; k < 4; k++) {
        __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[k]));
        _mm256_storeu_ps(y + 8 * k, _mm256_sub_ps(_mm256_mul_ps(vd, f), vo));
    }
}

static inline void dq_q45_k(const uint8_t *src, float *y, size_t n, int five)
{
    const size_t bsz = five ? sizeof(struct blk_q5_k) : sizeof(struct blk_q4_k);
    const __m256i m4 = _mm256_set1_epi8(0x0F), m16 = _mm256_set1_epi8(0x10);
    for (size_t i = 0; i < n / 256; i++, src += bsz, y += 256) {
        uint16_t dh, dmh;
        memcpy(&dh, src, 2);
        memcpy(&dmh, src + 2, 2);
        float d = kern_h2f(dh), dmin = kern_h2f(dmh);
        const uint8_t *qs = src + (five ? 48 : 16);
        __m256i qh = five ? _mm256_loadu_si256((const __m256i *)(src + 16)) : _mm256_setzero_si256();
        for (int c = 0; c < 4; c++) {
            uint8_t s0, m0, s1, m1;
            qt_scale_min_k4(2 * c, src + 4, &s0, &m0);
            qt_scale_min_k4(2 * c + 1, src + 4, &s1, &m1);
            __m256i q = _mm256_loadu_si256((const __m256i *)(qs + 32 * c));
            __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
            if (five) {
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16(qh, 4), m16));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16(qh, 3), m16));
                qh = _mm256_srli_epi16(qh, 2);
            }
            dq_affine32(y + 64 * c, lo, d * s0, dmin * m0);
            dq_affine32(y + 64 * c + 32, hi, d * s1, dmin * m1);
        }
    }
}

static void dq_q4_k(const uint8_t *src, float *y, size_t n) { dq_q45_k(src, y, n, 0); }
static void dq_q5_k(const uint8_t *src, float *y, size_t n) { dq_q45_k(src, y, n, 1); }

static void dq_q6_k(const uint8_t *src, float *y, size_t n)
{
    const struct blk_q6_k *b = (const struct blk_q6_k *)src;
    const __m256i m4 = _mm256_set1_epi8(0x0F), m30 = _mm256_set1_epi8(0x30), o32 = _mm256_set1_epi8(32);
    for (size_t i = 0; i < n / 256; i++, b++) {
        __m256 d = _mm256_set1_ps(kern_h2f(b->d));
        for (int h = 0; h < 2; h++, y += 128) {
            __m256i q[4];
            q6_unpack(b, h, m4, m30, q);
            for (int k = 0; k < 4; k++) {
                __m256i v = _mm256_sub_epi8(q[k], o32);   /* -32..31 */
                for (int g = 0; g < 2; g++) {   /* 16 elements share scale sc[8h + 2k + g] */
                    __m256i sc = _mm256_set1_epi32(b->scales[8 * h + 2 * k + g]);
                    __m128i vv = g ? _mm256_extracti128_si256(v, 1) : _mm256_castsi256_si128(v);
                    for (int e = 0; e < 2; e++) {
                        __m256i i32 = _mm256_mullo_epi32(_mm256_cvtepi8_epi32(e ? _mm_srli_si128(vv, 8) : vv), sc);
                        _mm256_storeu_ps(y + 32 * k + 16 * g + 8 * e, _mm256_mul_ps(d, _mm256_cvtepi32_ps(i32)));
                    }
                }
            }
        }
    }
}

static void dq_f16(const uint8_t *src, float *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i))));
    for (; i < n; i++) y[i] = fscalar(src, i, FK_F16);
}

static void dq_bf16(const uint8_t *src, float *y, size_t n)
{
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, fload(src + 2 * i, FK_BF16));
    for (; i < n; i++) y[i] = fscalar(src, i, FK_BF16);
}

static void dq_f32(const uint8_t *src, float *y, size_t n) { memcpy(y, src, n * sizeof(float)); }

static void fill_dq(qt_dq_fn dq[QK_NSLOTS])
{
    dq[QK_F32] = dq_f32;
    dq[QK_F16] = dq_f16;
    dq[QK_BF16] = dq_bf16;
    dq[QK_Q8_0] = dq_q8_0;
    dq[QK_Q4_0] = dq_q4_0;
    dq[QK_Q4_K] = dq_q4_k;
    dq[QK_Q5_K] = dq_q5_k;
    dq[QK_Q6_K] = dq_q6_k;
}

#endif /* common part */

/* ---- per-variant part (included once per KERN_VNNI setting) ---- */

/* Σ over pairs of u8(a)·s8(b), added to acc as 8 int32 lanes (|products| stay below 2^15
 * for the operand ranges used here, so maddubs cannot saturate). */
static inline __m256i KERN(dot_us)(__m256i acc, __m256i a, __m256i b)
{
#if KERN_VNNI
    return _mm256_dpbusd_epi32(acc, a, b);
#else
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, b), _mm256_set1_epi16(1)));
#endif
}

/* ---- Q8_0 ------------------------------------------------------------------------------ */

/* One row at a time: on the machines measured, streaming several rows at once from DRAM
 * (to share activation loads) ran at half the bandwidth of one stream per thread, and the
 * activation is in L1 anyway. Two accumulators hide the FMA latency. */
static inline __attribute__((always_inline)) __m256 KERN(q8_0_blk)(const struct blk_q8_0 *b, const struct qa8 *a,
                                                                   __m256 acc)
{
    __m256i x = _mm256_loadu_si256((const __m256i *)a->q), w = _mm256_loadu_si256((const __m256i *)b->qs);
#if KERN_VNNI
    /* (w + 128)·x = w·x + 128·Σx: the accumulator starts at -128·Σx. */
    __m256i bias = _mm256_zextsi128_si256(_mm_cvtsi32_si128(-128 * a->s));
    __m256i d = _mm256_dpbusd_epi32(bias, _mm256_xor_si256(w, _mm256_set1_epi8(-128)), x);
#else
    __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w)),
                                  _mm256_set1_epi16(1));
#endif
    __m256 sc = _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16((short)b->d)), _mm256_set1_ps(a->d));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), sc, acc);
}

#if KERN_VNNI && defined(__AVX512F__)
/* 512-bit form: two blocks per instruction (their quants are 34 bytes apart, so the upper
 * half is inserted), fewer instructions per weight byte than the 256-bit form. */
static inline __attribute__((always_inline)) __m512 KERN(q8_0_blk2)(const struct blk_q8_0 *b, const struct qa8x2 *x,
                                                                    __m512 acc)
{
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)b[0].qs)),
                                   _mm256_loadu_si256((const __m256i *)b[1].qs), 1);
    __m512i d = _mm512_dpbusd_epi32(_mm512_loadu_si512(x->bias), _mm512_xor_si512(w, _mm512_set1_epi8(-128)),
                                    _mm512_loadu_si512(x->q));
    __m256i h = _mm256_set_m128i(_mm_set1_epi16((short)b[1].d), _mm_set1_epi16((short)b[0].d));
    __m512 sc = _mm512_mul_ps(_mm512_cvtph_ps(h), _mm512_loadu_ps(x->d));
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sc, acc);
}
#endif

/* The row kernel and matrix-vector product of a 32-element block type T (Q8_0, Q4_0): four
 * blocks a step (row32_prefetch), as two 512-bit pairs (T_blk2) when VNNI is there, then
 * as four 256-bit blocks in two accumulators (T_blk), then the rest one block at a time. */
#if KERN_VNNI && defined(__AVX512F__)
#define ROW32_PAIRS(T, PF3)                                                                \
    __m512 z0 = _mm512_setzero_ps(), z1 = _mm512_setzero_ps();                             \
    for (; i + 4 <= nb; i += 4) {                                                          \
        row32_prefetch(b + i, PF3);                                                        \
        z0 = KERN(T##_blk2)(b + i, a2 + i / 2, z0);                                        \
        z1 = KERN(T##_blk2)(b + i + 2, a2 + i / 2 + 1, z1);                                \
    }                                                                                      \
    s = _mm512_reduce_add_ps(_mm512_add_ps(z0, z1));
#else
#define ROW32_PAIRS(T, PF3)
#endif

#define ROW32(T, PF3)                                                                      \
static float KERN(T##_row)(const uint8_t *W, size_t nb, const struct qa8 *a,               \
                           const struct qa8x2 *a2)                                         \
{                                                                                          \
    const struct blk_##T *b = (const struct blk_##T *)W;                                   \
    size_t i = 0;                                                                          \
    float s = 0;                                                                           \
    (void)a2;   /* used by the 512-bit form only */                                        \
    ROW32_PAIRS(T, PF3)                                                                    \
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();                         \
    for (; i + 4 <= nb; i += 4) {                                                          \
        row32_prefetch(b + i, PF3);                                                        \
        acc0 = KERN(T##_blk)(b + i, a + i, acc0);                                          \
        acc1 = KERN(T##_blk)(b + i + 1, a + i + 1, acc1);                                  \
        acc0 = KERN(T##_blk)(b + i + 2, a + i + 2, acc0);                                  \
        acc1 = KERN(T##_blk)(b + i + 3, a + i + 3, acc1);                                  \
    }                                                                                      \
    for (; i < nb; i++) acc0 = KERN(T##_blk)(b + i, a + i, acc0);                          \
    return s + kern_hsum(_mm256_add_ps(acc0, acc1));                                       \
}                                                                                          \
                                                                                           \
static void KERN(mv_##T)(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, \
                         size_t nr)                                                        \
{                                                                                          \
    const struct qa8x2 *a2 = (const struct qa8x2 *)((const uint8_t *)act + qa8x2_offset(n)); \
    for (size_t r = 0; r < nr; r++) y[r] = KERN(T##_row)(W + r * rb, n / 32, act, a2);     \
}

ROW32(q8_0, 1)

/* ---- Q4_0 ------------------------------------------------------------------------------ */

static inline __attribute__((always_inline)) __m256 KERN(q4_0_blk)(const struct blk_q4_0 *b, const struct qa8 *a,
                                                                   __m256 acc)
{
    __m128i q = _mm_loadu_si128((const __m128i *)b->qs);
    __m256i w = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(q, 4), q), _mm256_set1_epi8(0x0F));
    /* quants are stored +8: the sum starts at -8·Σx */
    __m256i bias = _mm256_zextsi128_si256(_mm_cvtsi32_si128(-8 * a->s));
    __m256i d = KERN(dot_us)(bias, w, _mm256_loadu_si256((const __m256i *)a->q));
    __m256 sc = _mm256_mul_ps(_mm256_cvtph_ps(_mm_set1_epi16((short)b->d)), _mm256_set1_ps(a->d));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), sc, acc);
}

#if KERN_VNNI && defined(__AVX512F__)
/* 512-bit form over two blocks: their 32 packed bytes give [b0 low, b1 low, b0 high,
 * b1 high] nibbles, matched by the Q4_0 pair layout of the activation (see qt_act_prepare):
 * int32 lanes 0-3 and 8-11 belong to the first block, 4-7 and 12-15 to the second.
 * IQ4_NL blocks have the same layout; with iq4 each nibble is looked up in the table
 * stored +128 (unsigned for vpdpbusd), and the activation's per-lane bias pays that back.
 * b1 may equal b0 (an odd last block, whose second half the caller masks off). */
static const uint8_t kern_iq4nl_u8[16] = {1, 24, 45, 63, 79, 93, 106, 118, 129, 141, 153, 166, 181, 197, 217, 241};

static inline __attribute__((always_inline)) __m512 KERN(nib_blk2)(const struct blk_q4_0 *b0, const struct blk_q4_0 *b1,
                                                                   const struct qa8x2 *x, __m512 acc, int iq4,
                                                                   __mmask16 keep)
{
    __m256i t = _mm256_set_m128i(_mm_loadu_si128((const __m128i *)b1->qs), _mm_loadu_si128((const __m128i *)b0->qs));
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    __m512i w = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(t, m4)),
                                   _mm256_and_si256(_mm256_srli_epi16(t, 4), m4), 1);
    if (iq4) w = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)kern_iq4nl_u8)), w);
    __m512i d = _mm512_dpbusd_epi32(_mm512_loadu_si512(x->bias), w, _mm512_loadu_si512(x->q));
    __m128i h = _mm_unpacklo_epi64(_mm_set1_epi16((short)b0->d), _mm_set1_epi16((short)b1->d));
    __m512 sc = _mm512_mul_ps(_mm512_cvtph_ps(_mm256_set_m128i(h, h)), _mm512_loadu_ps(x->d));
    if (keep == 0xFFFF) return _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), sc, acc);
    return _mm512_mask3_fmadd_ps(_mm512_cvtepi32_ps(d), sc, acc, keep);
}

static inline __attribute__((always_inline)) __m512 KERN(q4_0_blk2)(const struct blk_q4_0 *b, const struct qa8x2 *x,
                                                                    __m512 acc)
{
    return KERN(nib_blk2)(b, b + 1, x, acc, 0, 0xFFFF);
}

/* IQ4_NL's row (q5_row's sums, the same float operations in the same order): block 2m's
 * lanes accumulate where q5_row's acc[0] does, block 2m+1's where acc[1] does, in one
 * chain; blocks i.. of the row are added to z, then the lanes are summed as q5_row does. */
static inline __attribute__((always_inline)) __m512 KERN(iq4_nl_from)(const uint8_t *W, const struct qa8x2 *x,
                                                                      size_t i, size_t nb, __m512 z, int pf)
{
    const struct blk_q4_0 *b = (const struct blk_q4_0 *)W;
    for (; i + 4 <= nb; i += 4) {
        if (pf) row32_prefetch(b + i, 0);
        z = KERN(nib_blk2)(b + i, b + i + 1, x + i / 2, z, 1, 0xFFFF);
        z = KERN(nib_blk2)(b + i + 2, b + i + 3, x + i / 2 + 1, z, 1, 0xFFFF);
    }
    for (; i + 2 <= nb; i += 2) z = KERN(nib_blk2)(b + i, b + i + 1, x + i / 2, z, 1, 0xFFFF);
    if (i < nb) z = KERN(nib_blk2)(b + i, b + i, x + i / 2, z, 1, 0x0F0F);
    return z;
}

static inline float KERN(iq4_nl_sum)(__m512 z)
{
    __m256 lo = _mm512_castps512_ps256(z), hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(z), 1));
    __m256 s = _mm256_add_ps(_mm256_permute2f128_ps(lo, hi, 0x20), _mm256_permute2f128_ps(lo, hi, 0x31));
    return kern_hsum(_mm256_add_ps(s, _mm256_setzero_ps()));   /* q5_row adds its zero accm */
}

static void KERN(mv_iq4_nl_zmm)(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    const struct qa8x2 *a2 = (const struct qa8x2 *)((const uint8_t *)act + qa8x2_offset(n));
    for (size_t r = 0; r < nr; r++)
        y[r] = KERN(iq4_nl_sum)(KERN(iq4_nl_from)(W + r * rb, a2, 0, n / 32, _mm512_setzero_ps(), 1));
}
#endif

ROW32(q4_0, 0)
#undef ROW32
#undef ROW32_PAIRS

#if KERN_VNNI && defined(__AVX512F__)
/* Q4_K/Q5_K rows with vpdpwssd (the common mv_q4_k/mv_q5_k serve AVX-512 without VNNI). */
static void KERN(mv_q4_k_dp)(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    const int8_t *xz = (const int8_t *)act + qa8k_perm_offset(n);
    for (size_t r = 0; r < nr; r++) y[r] = q45_k_row_zmm(W + r * rb, n / 256, act, xz, 0, 1);
}

static void KERN(mv_q5_k_dp)(const uint8_t *W, size_t rb, size_t n, const void *act, float *y, size_t nr)
{
    const int8_t *xz = (const int8_t *)act + qa8k_perm_offset(n);
    for (size_t r = 0; r < nr; r++) y[r] = q45_k_row_zmm(W + r * rb, n / 256, act, xz, 1, 1);
}
#endif

static void KERN(fill)(qt_mv_fn k[QK_NSLOTS])
{
    k[QK_F32] = mv_f32;
    k[QK_F16] = mv_f16;
    k[QK_BF16] = mv_bf16;
    k[QK_Q8_0] = KERN(mv_q8_0);
    k[QK_Q4_0] = KERN(mv_q4_0);
    k[QK_Q4_K] = mv_q4_k;
    k[QK_Q5_K] = mv_q5_k;
    k[QK_Q6_K] = mv_q6_k;
    k[QK_Q4_1] = mv_q4_1;
    k[QK_Q5_0] = mv_q5_0;
    k[QK_Q5_1] = mv_q5_1;
    k[QK_Q2_K] = mv_q2_k;
    k[QK_Q3_K] = mv_q3_k;
    k[QK_IQ4_NL] = mv_iq4_nl;
    k[QK_IQ4_XS] = mv_iq4_xs;
#if KERN_VNNI && defined(__AVX512F__)
    k[QK_IQ4_NL] = KERN(mv_iq4_nl_zmm);
#endif
#if KERN_VNNI && defined(__AVX512F__)
    k[QK_Q4_K] = KERN(mv_q4_k_dp);
    k[QK_Q5_K] = KERN(mv_q5_k_dp);
#endif
}
