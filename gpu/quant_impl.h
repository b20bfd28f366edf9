/* gpu/quant_impl.h: internals shared by gpu/quant.c and its ISA-specific kernel files
 * (quant_avx2.c, quant_avx512.c). Not part of the public interface. */
#ifndef CMIF_GPU_QUANT_IMPL_H
#define CMIF_GPU_QUANT_IMPL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define QK4_0 32
#define QK8_0 32
#define QK_K 256

/* Weight blocks, byte-for-byte the ggml/GGUF layouts (fp16 fields kept as raw bits). */
struct blk_q4_0 { uint16_t d; uint8_t qs[16]; };                       /* 18 bytes */
struct blk_q8_0 { uint16_t d; int8_t qs[32]; };                        /* 34 bytes */
struct blk_q4_k { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[128]; };            /* 144 */
struct blk_q5_k { uint16_t d, dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; }; /* 176 */
struct blk_q6_k { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };  /* 210 */
/* Legacy 32-element formats: x = d·q + m (Q4_1, Q5_1) or d·(q - 16) (Q5_0); the fifth bit
 * of element j is bit j of qh (little-endian 32 bits). Low nibbles hold elements 0..15. */
struct blk_q4_1 { uint16_t d, m; uint8_t qs[16]; };                    /* 20 bytes */
struct blk_q5_0 { uint16_t d; uint8_t qh[4]; uint8_t qs[16]; };        /* 22 bytes */
struct blk_q5_1 { uint16_t d, m; uint8_t qh[4]; uint8_t qs[16]; };     /* 24 bytes */
/* Q2_K: 16 groups of 16, scale (low nibble) and min (high nibble) per group, 2-bit quants:
 * element 128h + 32j + l is bits 2j of qs[32h + l]. x = d·sc·q - dmin·m. */
struct blk_q2_k { uint8_t scales[16]; uint8_t qs[64]; uint16_t d, dmin; };             /* 84 */
/* Q3_K: as Q2_K's quants plus a third bit (bit 4h + j of hmask[l]; clear means -4), and 16
 * six-bit signed scales (stored +32) packed in 12 bytes (qt_q3k_scales). x = d·sc·q. */
struct blk_q3_k { uint8_t hmask[32]; uint8_t qs[64]; uint8_t scales[12]; uint16_t d; }; /* 110 */
/* IQ4_NL / IQ4_XS: 4-bit indices into a fixed non-uniform table (qt_iq4nl_values); IQ4_XS
 * has 8 sub-blocks of 32 with 6-bit scales (stored +32) split in scales_l/scales_h. */
struct blk_iq4_nl { uint16_t d; uint8_t qs[16]; };                       /* 18 bytes */
struct blk_iq4_xs { uint16_t d, scales_h; uint8_t scales_l[4]; uint8_t qs[128]; };     /* 136 */

static const int8_t qt_iq4nl_values[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                           1,    13,   25,  38,  53,  69,  89,  113};

/* The 16 scales of a Q3_K super-block, minus their +32 offset. */
static inline void qt_q3k_scales(const uint8_t *p, int8_t sc[16])
{
    for (int k = 0; k < 16; k++)
        sc[k] = (int8_t)((((p[k % 8] >> (4 * (k / 8))) & 0xF) | (((p[8 + k % 4] >> (2 * (k / 4))) & 3) << 4)) - 32);
}

/* The scale of sub-block ib of an IQ4_XS super-block, minus its +32 offset. */
static inline int qt_iq4xs_scale(const struct blk_iq4_xs *b, int ib)
{
    return (((b->scales_l[ib / 2] >> (4 * (ib % 2))) & 0xF) | (((b->scales_h >> (2 * ib)) & 3) << 4)) - 32;
}

/* Prepared activations (our own layout, never stored in files).
 * qa8: for the 32-element formats (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL), x quantized per
 *      32 with a float scale; s = sum of q, which pays for the offsets (Q4_0's -8, Q5_0's
 *      -16), the Q4_1/Q5_1 mins and the unsigned-operand trick of vpdpbusd.
 * qa8k: for the 256-element formats (K-quants, IQ4_XS), x quantized per 256 (like ggml's
 *      block_q8_K) with the sums of each group of 16 quants, which pay for the K-quant
 *      mins and the Q6_K / Q3_K offsets. */
struct qa8 { float d; int32_t s; int8_t q[32]; };                       /* 40 bytes */
struct qa8k { float d; int16_t bsums[16]; int8_t q[256]; };             /* 292 bytes */
/* For Q8_0, Q4_0 and IQ4_NL the qa8 blocks are followed (at a 64-byte offset from the
 * start) by the same activation regrouped for the 512-bit VNNI kernels, one entry per pair
 * of blocks: both blocks' quants in the order the weights unpack to, the offset correction
 * (-128·Σq for Q8_0, -8·Σq for Q4_0, each in one int32 lane per block; for IQ4_NL, whose
 * table is stored +128, -128 times each lane's own four quants) and the scales in the lanes
 * each block's products land in (qt_act_prepare; IQ4_NL also pairs an odd last block with
 * zeros). Precomputing it once per vector removes that work from every row of the matrix. */
struct qa8x2 { int8_t q[64]; int32_t bias[16]; float d[16]; };        /* 192 bytes */

static inline size_t qa8x2_offset(size_t n) { return (n / 32 * sizeof(struct qa8) + 63) & ~(size_t)63; }

/* For Q4_1, Q5_0 and Q5_1 the qa8 blocks are followed (at the same offset) by the
 * activation regrouped for their 512-bit kernels, one entry per four blocks, as two pairs:
 * each pair's quants in Q4_0's nibble order ([x0 0..15, x1 0..15, x0 16..31, x1 16..31]),
 * its scales in the int32 lanes each block's products land in (lanes 0-3 and 8-11 for the
 * first block, 4-7 and 12-15 for the second), and the term that pays for the offsets:
 * Q5_0's -16·Σq in lanes 0 and 4 of each pair, or for Q4_1/Q5_1 d_x·Σq of block k in
 * float lane 2k + 1 (against the weights' [d m] fp16 pairs converted side by side). */
struct qa8x4 {
    int8_t q[128];
    float d[32];
    union { int32_t bias[16]; float ms[16]; } c;
};                                                                      /* 320 bytes */

/* For Q4_K/Q5_K the qa8k blocks are followed (64-byte aligned offset) by each super-block's
 * quants reordered to match 64 bytes of packed nibbles: per half of 128 elements,
 * [0..31, 64..95] (the low nibbles) then [32..63, 96..127] (the high ones). */
static inline size_t qa8k_perm_offset(size_t n) { return (n / 256 * sizeof(struct qa8k) + 63) & ~(size_t)63; }


/* The 16-row packed Q4_0 / IQ4_NL layout (qt_pack). A group of 16 rows takes the bytes of
 * the 16 original rows; blocks go in pairs of 576 bytes: the 16 rows' fp16 scales of the
 * first block, then of the second (32 bytes each), then each block's quants as four 64-byte
 * chunks, chunk c holding bytes 4c..4c+3 of every row's qs in int32 lane r (so chunk c's low
 * nibbles are elements 4c..4c+3 and its high nibbles elements 16+4c..16+4c+3 of row r). An
 * odd last block takes 288 bytes: its scales, then its chunks. Pairs keep the chunks 64-byte
 * aligned when the group starts so. */
#define X16_PAIR 576
static inline size_t x16_scales_off(size_t b) { return b / 2 * X16_PAIR + b % 2 * 32; }
static inline size_t x16_quants_off(size_t b, size_t nb)
{
    return b / 2 * X16_PAIR + ((b | 1) < nb ? 64 + b % 2 * 256 : 32);
}

/* The 16-row packed Q8_0 layout (qt_pack): Q4_0x16's with 32 quant bytes a row, so blocks
 * go in pairs of 1088 bytes: the 16 rows' fp16 scales of the first block, then of the second,
 * then each block's quants as eight 64-byte chunks, chunk c holding bytes 4c..4c+3 of every
 * row's qs in int32 lane r, stored +128 (xor 0x80: unsigned, for vpdpbusd). An odd last block
 * takes 544 bytes: its scales, then its chunks. */
#define X16Q8_PAIR 1088
static inline size_t x16q8_scales_off(size_t b) { return b / 2 * X16Q8_PAIR + b % 2 * 32; }
static inline size_t x16q8_quants_off(size_t b, size_t nb)
{
    return b / 2 * X16Q8_PAIR + ((b | 1) < nb ? 64 + b % 2 * 512 : 32);
}

/* Packed types' prepared activation: the base type's (the tail rows run its kernels), then
 * at a 64-byte offset one int32 per block: the bias that pays for the weights' offset
 * (-8·Σq for Q4_0; -128·Σq for IQ4_NL, whose table the kernels read +128, and for Q8_0,
 * whose quants are stored +128; Q8_0 has Q4_0's count of pairs, so iq4 = 0). */
static inline size_t x16_bias_offset(int iq4, size_t n)
{
    size_t b = qa8x2_offset(n) + (iq4 ? (n / 32 + 1) / 2 : n / 64) * sizeof(struct qa8x2);
    return (b + 63) & ~(size_t)63;
}

/* The 16-row packed IQ4_XS layout (qt_pack). A group of 16 rows takes the bytes of the 16
 * original rows, one super-block after another (2176 bytes each, = 16·136): the 16 rows'
 * fp16 d, then their scales_h (16 bits each), then their scales_l (32 bits each, in int32
 * lane r), then each 32-element sub-block's 16 quant bytes of the 16 rows as four 64-byte
 * chunks, chunk 4·ib + c holding bytes 16·ib + 4c..+3 of row r's qs in int32 lane r (its low
 * nibbles are elements 32·ib + 4c..+3, its high ones 32·ib + 16 + 4c..+3). */
#define XS16_SB 2176
#define XS16_QUANTS 128   /* the chunks' offset in a super-block */

/* IQ4_XSx16's prepared activation: IQ4_XS's (struct qa8k; the tail rows run its kernels),
 * then at a 64-byte offset one int32 per 32 elements: -128·Σq, which pays for the table
 * the kernels read +128. */
static inline size_t xs16_bias_offset(size_t n) { return (n / 256 * sizeof(struct qa8k) + 63) & ~(size_t)63; }

/* The 16-row packed Q4_K layout (qt_pack). A group of 16 rows takes the bytes of the 16
 * original rows, 2304 per super-block: the 16 rows' fp16 d (32 bytes), then their dmin (32),
 * then the 12 scale bytes as three 64-byte chunks (chunk k: bytes 4k..4k+3 of row r's
 * scales in int32 lane r), then the quants as 32 chunks (chunk 8c + u: bytes 32c + 4u ..
 * 32c + 4u + 3 of row r's qs in lane r, whose low nibbles are elements 4u..4u+3 of sub-block
 * 2c and high nibbles the same of sub-block 2c + 1). Super-blocks keep the chunks 64-byte
 * aligned when the group starts so. */
#define X16K_SB 2304
#define X16K_QS 256   /* the quant chunks' offset in a super-block */

/* Packed Q4_K's prepared activation: Q4_K's (the tail rows run its kernels), then at a
 * 64-byte offset the sum of each sub-block of 32 quants as int16, which the kernels pair
 * with two sub-blocks' mins per vpdpwssd. */
static inline size_t x16k_bsum_offset(size_t n) { return (qa8k_perm_offset(n) + n + 63) & ~(size_t)63; }

/* One kernel: y[i] = dot(row i, x) for nrows rows starting at W, rows rb bytes apart. */
typedef void (*qt_mv_fn)(const uint8_t *W, size_t rb, size_t ncols, const void *act, float *y,
                         size_t nrows);

/* Kernel slots, in this order, for every SIMD level. */
enum {
    QK_F32, QK_F16, QK_BF16, QK_Q8_0, QK_Q4_0, QK_Q4_K, QK_Q5_K, QK_Q6_K,
    QK_Q4_1, QK_Q5_0, QK_Q5_1, QK_Q2_K, QK_Q3_K, QK_IQ4_NL, QK_IQ4_XS, QK_Q4_0_X16,
    QK_IQ4_NL_X16, QK_IQ4_XS_X16, QK_Q4_K_X16, QK_Q8_0_X16, QK_NSLOTS
};

/* Activation quantizers: [0] for the 32-element formats (struct qa8), [1] for the 256-element
 * ones (struct qa8k). */
typedef void (*qt_act_fn)(const float *x, size_t n, void *act);

/* Row dequantizer, bit-identical to qt_dequant_row. */
typedef void (*qt_dq_fn)(const uint8_t *src, float *dst, size_t n);

/* Optional batch kernel for prompts: Y[j·ldy + r] = dot(row r, activation j) for nrows rows
 * and na activations prepared `as` bytes apart. It must give exactly the mv kernel's
 * floats (qt_matmul falls back to looping mv where a slot is NULL); it gains by reusing each
 * weight load for several activations. */
typedef void (*qt_mm_fn)(const uint8_t *W, size_t rb, size_t ncols, const uint8_t *act, size_t as,
                         size_t na, float *Y, size_t ldy, size_t nrows);

/* qt_pack's inner step, a 16 x 16 transpose of 4-byte words: row r (16 rows, rb bytes
 * apart from src) contributes the 16 words at its byte offsets o[0..3] (four words from
 * each); chunk c of the output, at d[c / 4] + 64 * (c % 4), holds word c of every row in
 * lane r, each byte XOR 0x80 when flip (Q8_0's quants are stored +128). A level's own may
 * write with non-temporal stores: its caller fences them (sfence) before the data is shared. */
typedef void (*qt_tr16_fn)(const uint8_t *src, size_t rb, const size_t o[4], uint8_t *const d[4], int flip);
void qt_tr16_ref(const uint8_t *src, size_t rb, const size_t o[4], uint8_t *const d[4], int flip);

struct qt_level_fns {
    qt_mv_fn mv[QK_NSLOTS];
    qt_act_fn act[2];
    qt_dq_fn dq[QK_NSLOTS];
    qt_mm_fn mm[QK_NSLOTS];
    qt_tr16_fn tr16;   /* NULL: qt_tr16_ref */
};

/* The current level's qt_tr16_fn (for tests: it must equal qt_tr16_ref byte for byte). */
qt_tr16_fn qt_tr16_level(void);

void qt_kernels_avx2(struct qt_level_fns *f);
void qt_kernels_avx512(struct qt_level_fns *f, int vnni);

/* Whether qt_matmul runs n activations of `type` on the int8 kernels (else dequantize +
 * SGEMM) at the current SIMD level; for tests. */
int qt_matmul_int8(int type, size_t n);

/* Dequantizes one row with the current SIMD level's code (identical results). */
void qt_dequant_row_fast(int type, const void *src, float *dst, size_t n);

/* The bits of a float and back (memcpy: no aliasing questions, compiles to a move). */
static inline float qt_bits2f(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint32_t qt_f2bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* Exact IEEE half <-> single conversions (round to nearest even, subnormals, inf, NaN
 * quieted), matching what F16C's vcvtph2ps/vcvtps2ph produce. */
static inline float qt_h2f(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0) {
        if (m == 0) {
            u = sign;
        } else {            /* subnormal: normalise */
            int sh = 0;
            while (!(m & 0x400)) { m <<= 1; sh++; }
            m &= 0x3ff;
            u = sign | ((uint32_t)(113 - sh) << 23) | (m << 13);
        }
    } else if (e == 31) {
        u = sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0);
    } else {
        u = sign | ((e + 112) << 23) | (m << 13);
    }
    return qt_bits2f(u);
}

static inline uint16_t qt_f2h(float f)
{
    uint32_t u = qt_f2bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t e = (u >> 23) & 0xff, m = u & 0x7fffff;
    if (e == 0xff) return (uint16_t)(sign | 0x7c00 | (m ? 0x200 | (m >> 13) : 0));
    int32_t he = (int32_t)e - 112;          /* rebias 127 -> 15 */
    if (he >= 31) return (uint16_t)(sign | 0x7c00);
    if (he <= 0) {                          /* subnormal half or zero */
        if (he < -10) return sign;
        m |= 0x800000;
        uint32_t shift = (uint32_t)(14 - he), r = m >> shift, rem = m & ((1u << shift) - 1),
                 half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)he << 10) | (m >> 13), rem = m & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;   /* may carry into inf: correct */
    return (uint16_t)(sign | r);
}

static inline float qt_bf2f(uint16_t h) { return qt_bits2f((uint32_t)h << 16); }

static inline uint16_t qt_f2bf(float f)
{
    uint32_t u = qt_f2bits(f);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 0x40);  /* quiet NaN */
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

/* Round to nearest, ties to even, like cvtps2dq in the default rounding mode (so scalar and
 * SIMD activation quantization agree bit for bit). cvtss2si gives INT_MIN for NaN and out
 * of range values, never undefined behaviour; callers clamp. */
#if defined(__SSE__)
#include <xmmintrin.h>
static inline int qt_round(float v) { return _mm_cvtss_si32(_mm_set_ss(v)); }
#else
static inline int qt_round(float v)
{
    /* adding 1.5·2^23 pushes the fraction bits out; exact for |v| < 2^22 */
    v = v > -4e6f ? v : -4e6f;
    v = v < 4e6f ? v : 4e6f;
    return (int)((v + 12582912.0f) - 12582912.0f);
}
#endif

/* Scale (6 bits) and min (6 bits) of sub-block j of a Q4_K/Q5_K super-block. */
static inline void qt_scale_min_k4(int j, const uint8_t *q, uint8_t *sc, uint8_t *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
}

#endif
