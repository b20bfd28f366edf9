/* gpu/attn: decode attention of one KV head's query group over the F32 KV cache.
 *
 * Decode steps (and short batches) attend one query vector per head. The grp query heads
 * that share a KV head are done together so each K and V row is read from memory once for
 * all of them, instead of once per head. Kernels for AVX2/FMA and AVX-512 are picked at run
 * time at quant's SIMD level (qt_simd_level, so a forced level applies to both); the scalar
 * reference is the arithmetic the per-head attention always used. */
#ifndef CMIF_GPU_ATTN_H
#define CMIF_GPU_ATTN_H

#include <stddef.h>

/* Softmax attention of grp query heads over positions 0 .. span-1 (span >= 1):
 *   q     grp query vectors of hd floats, head h at q + h*hd
 *   k, v  the KV head's rows: position p at k + p*stride (v likewise)
 *   out   grp outputs of hd floats, head h at out + h*hd
 *   s     scratch of at least grp*span floats
 * Scores are scale * (q . k); positions scored -INFINITY get weight 0. Any hd works; the
 * SIMD kernels run when hd is a multiple of 16, the scalar reference otherwise. */
void attn_group(const float *q, const float *k, const float *v, size_t stride, int span,
                int hd, int grp, float scale, float *s, float *out);

/* The scalar reference, whatever the SIMD level. */
void attn_group_ref(const float *q, const float *k, const float *v, size_t stride, int span,
                    int hd, int grp, float scale, float *s, float *out);

/* The level attn_group runs at: quant's (qt_simd_level) unless attn_force_simd set one
 * for attention alone (benchmarks compare kernels with the matrix kernels unchanged).
 * NULL goes back to following quant; a level the CPU lacks is capped like quant's. */
const char *attn_simd_level(void);
void attn_force_simd(const char *level);

/* Vector exp used by the kernels, for tests: e^x[i] into y[i] at the current level. */
void attn_exp(const float *x, float *y, size_t n);

#endif
