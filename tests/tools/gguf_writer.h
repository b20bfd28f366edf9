/* tests/tools/gguf_writer: writes GGUF v3 files (metadata of every type, aligned tensors).
 * Used by tests, benchmarks and `cmif train`-style tools; tensors can be produced by a
 * callback so multi-gigabyte models are streamed, never held in memory. */
#ifndef CMIF_TESTS_GGUF_WRITER_H
#define CMIF_TESTS_GGUF_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct gguf;
struct gw;

/* Writes tensor bytes [off, off+n) into dst; returns 0, or -1 to abort the write. */
typedef int (*gw_fill_fn)(void *ctx, void *dst, uint64_t off, uint64_t n);

struct gw *gw_new(void);
void gw_free(struct gw *w);

void gw_kv_u32(struct gw *w, const char *key, uint32_t v);
void gw_kv_i32(struct gw *w, const char *key, int32_t v);
void gw_kv_u64(struct gw *w, const char *key, uint64_t v);
void gw_kv_f32(struct gw *w, const char *key, float v);
void gw_kv_bool(struct gw *w, const char *key, int v);
void gw_kv_str(struct gw *w, const char *key, const char *v);
void gw_kv_arr_str(struct gw *w, const char *key, const char *const *v, size_t n);
void gw_kv_arr_f32(struct gw *w, const char *key, const float *v, size_t n);
void gw_kv_arr_i32(struct gw *w, const char *key, const int32_t *v, size_t n);
/* Copy every key of src that starts with prefix (e.g. "tokenizer."). */
void gw_kv_copy(struct gw *w, const struct gguf *src, const char *prefix);

/* A tensor whose bytes are copied now (small tensors). */
void gw_tensor(struct gw *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
               const void *data);
/* A tensor whose bytes are produced at write time by fill(ctx, ...). */
void gw_tensor_fn(struct gw *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
                  gw_fill_fn fill, void *ctx);

int gw_write(struct gw *w, const char *path, char *err, size_t errlen);

#endif
