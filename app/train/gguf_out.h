/* app/train/gguf_out: writes GGUF v3 files (metadata of every type, 32-byte aligned tensors
 * of any type). The one GGUF writer: `cmif train` writes its tokenizer and model with it,
 * and the test tools (random models, tests, benchmarks) theirs; the reader is core/gguf.
 *
 * The key/value and tensor calls return nothing: a bad argument or a failed allocation
 * (including gguf_out_new's, which returns NULL) is remembered and reported by the write.
 * Setting a key again replaces the earlier value. Tensors from gguf_out_tensor_fn are
 * produced at write time in chunks of whole rows, so a multi-gigabyte model is streamed,
 * never held in memory. */
#ifndef CMIF_APP_TRAIN_GGUF_OUT_H
#define CMIF_APP_TRAIN_GGUF_OUT_H

#include <stddef.h>
#include <stdint.h>

struct gguf;
struct gguf_out;

/* Writes tensor bytes [off, off+n) into dst; returns 0, or -1 to abort the write. */
typedef int (*gguf_out_fill_fn)(void *ctx, void *dst, uint64_t off, uint64_t n);

struct gguf_out *gguf_out_new(void);
void gguf_out_free(struct gguf_out *w);

void gguf_out_u32(struct gguf_out *w, const char *key, uint32_t v);
void gguf_out_i32(struct gguf_out *w, const char *key, int32_t v);
void gguf_out_u64(struct gguf_out *w, const char *key, uint64_t v);
void gguf_out_f32(struct gguf_out *w, const char *key, float v);
void gguf_out_bool(struct gguf_out *w, const char *key, int v);
void gguf_out_str(struct gguf_out *w, const char *key, const char *v);
void gguf_out_arr_str(struct gguf_out *w, const char *key, const char *const *v, size_t n);
void gguf_out_arr_f32(struct gguf_out *w, const char *key, const float *v, size_t n);
void gguf_out_arr_i32(struct gguf_out *w, const char *key, const int32_t *v, size_t n);
/* Copies every key of src that starts with prefix (e.g. "tokenizer."). */
void gguf_out_copy(struct gguf_out *w, const struct gguf *src, const char *prefix);

/* A tensor of type (enum gguf_ttype) and n_dims dims, ne[0] fastest (ggml order), whose
 * bytes are copied now (small tensors). */
void gguf_out_tensor(struct gguf_out *w, const char *name, uint32_t type, int n_dims,
                     const uint64_t *ne, const void *data);
/* The same with data borrowed until the write (a trained model's parameters). */
void gguf_out_tensor_ref(struct gguf_out *w, const char *name, uint32_t type, int n_dims,
                         const uint64_t *ne, const void *data);
/* A tensor whose bytes are produced at write time by fill(ctx, ...). */
void gguf_out_tensor_fn(struct gguf_out *w, const char *name, uint32_t type, int n_dims,
                        const uint64_t *ne, gguf_out_fill_fn fill, void *ctx);

/* Writes the file (to path.tmp, then renamed, so a crash never leaves half a model). */
int gguf_out_write(struct gguf_out *w, const char *path, char *err, size_t errlen);
/* The whole file in a malloc'ed buffer (the caller frees it). */
int gguf_out_mem(struct gguf_out *w, void **buf, size_t *size, char *err, size_t errlen);

#endif
