/* core/qrow: scalar dequantization of one tensor row, for the confidential core (the
 * embedding table), independent of gpu/. Types are core/gguf.h's GGUF_T_* (ggml's
 * numbering): F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,
 * IQ4_NL, IQ4_XS. */
#ifndef CMIF_CORE_QROW_H
#define CMIF_CORE_QROW_H

#include <stddef.h>
#include <stdint.h>

/* Bytes of a row of n elements (n a multiple of the type's block size); 0 if unsupported. */
size_t qrow_bytes(uint32_t type, size_t n);

/* Decodes n elements of src into dst. Returns 0, or -1 for an unsupported type or an n
 * that is not a multiple of the block size. */
int qrow_dequant(uint32_t type, const void *src, float *dst, size_t n);

#endif
