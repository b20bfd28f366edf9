/* gpu/quant: weight block formats (ggml-compatible layouts) and the kernels over them.
 *
 * Types use ggml's numbering so a GGUF tensor type maps 1:1 (gpu/ does not include core/:
 * tests/test_quant.c asserts QT_* == GGUF_T_* at compile time). Matrix-vector products run on
 * the quantized blocks directly: the activation vector is prepared once (for integer
 * formats quantized to 8-bit blocks), then any row range can be multiplied against it, so
 * threads split rows. SIMD paths (AVX2/FMA, AVX-512) are picked at run time. */
#ifndef CMIF_GPU_QUANT_H
#define CMIF_GPU_QUANT_H

#include <stddef.h>
#include <stdint.h>

enum qtype {
    QT_F32 = 0, QT_F16 = 1, QT_Q4_0 = 2, QT_Q4_1 = 3, QT_Q5_0 = 6, QT_Q5_1 = 7, QT_Q8_0 = 8,
    QT_Q2_K = 10, QT_Q3_K = 11, QT_Q4_K = 12, QT_Q5_K = 13, QT_Q6_K = 14, QT_IQ4_NL = 20,
    QT_IQ4_XS = 23, QT_BF16 = 30,
};

int qt_supported(int type);
const char *qt_name(int type);
size_t qt_block_elems(int type);
size_t qt_block_bytes(int type);
size_t qt_row_bytes(int type, size_t n);   /* n must be a multiple of qt_block_elems */

/* Reference conversions of one row of n elements. */
void qt_dequant_row(int type, const void *src, float *dst, size_t n);
void qt_quant_row(int type, const float *src, void *dst, size_t n);

/* Prepared activation for products with weights of `type`. */
size_t qt_act_bytes(int type, size_t n);
void qt_act_prepare(int type, const float *x, size_t n, void *act);

/* y[r - r0] = dot(row r of W, x) for rows r in [r0, r1); W rows are qt_row_bytes apart. */
void qt_matvec(int type, const void *W, size_t ncols, const void *act, float *y, size_t r0,
               size_t r1);

/* Batch product for prompts: Y[n x rows] = X[n x cols] · Wᵀ. Integer-quantized W: the n
 * rows of X are prepared like qt_act_prepare (8-bit activations, exactly as decode sees
 * them) into scratch and the matrix-vector kernels run over L2-sized tiles of W against all
 * of them. F16/BF16: W is dequantized in tiles into scratch for OpenBLAS SGEMM; F32 uses
 * SGEMM directly. scratch holds qt_matmul_scratch_bytes(type, rows, cols, n) bytes (the
 * n argument was added for the prepared activations; 0 bytes for F32 means NULL is fine). */
size_t qt_matmul_scratch_bytes(int type, size_t rows, size_t cols, size_t n);
void qt_matmul(int type, const void *W, size_t rows, size_t cols, const float *X, size_t n,
               float *Y, void *scratch);

/* The integer path of qt_matmul in two steps, so threads that split W's rows share one
 * prepared copy of X instead of each preparing all of it: qt_matmul_act_bytes(type, cols, n)
 * bytes at a 64-byte aligned act (0: this type takes the float path at this n, use
 * qt_matmul), filled for rows [j0, j1) of X by qt_matmul_prepare (disjoint ranges may run
 * in parallel), then qt_matmul_prepared on any rows of W. Y equals qt_matmul's bit for bit. */
size_t qt_matmul_act_bytes(int type, size_t cols, size_t n);
void qt_matmul_prepare(int type, const float *X, size_t cols, size_t j0, size_t j1, void *act);
void qt_matmul_prepared(int type, const void *W, size_t rows, size_t cols, const void *act, size_t n,
                        float *Y);

/* Repacked weights (our own layouts, never in files): where the current SIMD level has one
 * for `type` (Q4_0, IQ4_NL, IQ4_XS, Q4_K and Q8_0 at AVX-512 VNNI), qt_packed_type names it, else it
 * returns type itself. A packed tensor has the original's size and row stride: each full
 * group of 16 rows is interleaved so one 512-bit register holds the 16 rows' words side by
 * side (per block: the 16 fp16 scales (Q4_K: d, dmin, then the 12 scale bytes as three
 * words), then for each 4-byte word of the quants the 16 rows' words), rows past the last
 * full group keep the original layout. qt_pack writes rows
 * [r0, r1) of the packed form of W into dst (r0 a multiple of 16, r1 one too or = rows), so
 * threads can share the work. A packed type goes to qt_act_bytes, qt_act_prepare,
 * qt_matvec and qt_matmul like any type, with row ranges that start on a multiple of 16
 * and end on one or at the last row; its rows cannot be dequantized one by one
 * (qt_dequant_row gives zeros). Its decode and batch kernels give the same floats. */
#define QT_PACKED 0x100   /* type | QT_PACKED: the 16-row interleaved form of type */
int qt_packed_type(int type);
void qt_pack(int type, const void *W, size_t rows, size_t cols, void *dst, size_t r0, size_t r1);

/* Which SIMD level the kernels run at: "avx512", "avx512novnni" (AVX-512 without VNNI),
 * "avx2" or "scalar". Tests may force one; a level above what the CPU supports is capped
 * at the CPU's best, and NULL or an unknown name goes back to automatic ($CMIF_SIMD, then
 * the CPU's best). */
const char *qt_simd_level(void);
void qt_force_simd(const char *level);     /* NULL = automatic */

#endif
