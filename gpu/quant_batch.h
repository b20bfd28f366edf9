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
