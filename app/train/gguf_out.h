/* app/train/gguf_out: a small GGUF v3 writer for what `cmif train` produces (metadata and F32
 * tensors). app/ code cannot link the test-tools writer, and a trained model needs only
 * these few value types. Tensor data is borrowed until gguf_out_write. Allocation
 * failures are remembered and reported by the write. */
#ifndef CMIF_APP_TRAIN_GGUF_OUT_H
#define CMIF_APP_TRAIN_GGUF_OUT_H

#include <stddef.h>
#include <stdint.h>

struct gguf_out;

int gguf_out_open(struct gguf_out **out);
void gguf_out_close(struct gguf_out *w);

void gguf_out_u32(struct gguf_out *w, const char *key, uint32_t v);
void gguf_out_f32(struct gguf_out *w, const char *key, float v);
void gguf_out_bool(struct gguf_out *w, const char *key, int v);
void gguf_out_str(struct gguf_out *w, const char *key, const char *v);
void gguf_out_arr_str(struct gguf_out *w, const char *key, const char *const *v, size_t n);
void gguf_out_arr_f32(struct gguf_out *w, const char *key, const float *v, size_t n);
void gguf_out_arr_i32(struct gguf_out *w, const char *key, const int32_t *v, size_t n);
/* An F32 tensor of n_dims (1 or 2) dims, ne[0] fastest (ggml order); data borrowed. */
void gguf_out_tensor_f32(struct gguf_out *w, const char *name, int n_dims, const uint64_t *ne,
                         const float *data);

/* Writes the file (to path.tmp, then renamed, so a crash never leaves half a model). */
int gguf_out_write(struct gguf_out *w, const char *path, char *err, size_t errlen);
/* The whole file in a malloc'ed buffer (the caller frees it). */
int gguf_out_mem(struct gguf_out *w, void **buf, size_t *size, char *err, size_t errlen);

#endif
