/* gpu/attn_impl.h: the per-ISA kernels of gpu/attn (attn_avx2.c, attn_avx512.c), for
 * attn.c's dispatch only. Same contracts as attn_group and attn_exp in gpu/attn.h, with hd
 * a multiple of 16. */
#ifndef CMIF_GPU_ATTN_IMPL_H
#define CMIF_GPU_ATTN_IMPL_H

#include <stddef.h>

void attn_group_avx2(const float *q, const float *k, const float *v, size_t stride, int span,
                     int hd, int grp, float scale, float *s, float *out);
void attn_group_avx512(const float *q, const float *k, const float *v, size_t stride, int span,
                       int hd, int grp, float scale, float *s, float *out);
void attn_exp_avx2(const float *x, float *y, size_t n);
void attn_exp_avx512(const float *x, float *y, size_t n);

#endif
