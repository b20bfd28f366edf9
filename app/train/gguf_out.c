/* app/train/gguf_out: GGUF v3 writer for trained models (see gguf_out.h). */
#include "app/train/gguf_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/savefile.h"

enum { GT_U32 = 4, GT_I32 = 5, GT_F32 = 6, GT_BOOL = 7, GT_STR = 8, GT_ARR = 9 };
#define ALIGN 32u

struct gout_tensor {
    char *name;
    int n_dims;
    uint64_t ne[2];
    const float *data;
};

struct gguf_out {
    unsigned char *kv;          /* serialized key/value pairs */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    struct gout_tensor *t;
    size_t n_t, cap_t;
    int oom;
};

int gguf_out_open(struct gguf_out **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -1;
}

void gguf_out_close(struct gguf_out *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_t; i++) free(w->t[i].name);
    free(w->t);
    free(w->kv);
    free(w);
}

static void put(struct gguf_out *w, const void *p, size_t n)
{
    if (w->oom) return;
    if (w->kv_len + n > w->kv_cap) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap < w->kv_len + n) cap *= 2;
        unsigned char *nb = realloc(w->kv, cap);
        if (!nb) { w->oom = 1; return; }
        w->kv = nb;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
}

static void put_u32(struct gguf_out *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(struct gguf_out *w, uint64_t v) { put(w, &v, 8); }
static void put_str(struct gguf_out *w, const char *s)
{
    size_t n = strlen(s);
    put_u64(w, n);
    put(w, s, n);
}
static void key(struct gguf_out *w, const char *k, uint32_t type)
{
    put_str(w, k);
    put_u32(w, type);
    w->n_kv++;
}

void gguf_out_u32(struct gguf_out *w, const char *k, uint32_t v) { key(w, k, GT_U32); put_u32(w, v); }
void gguf_out_f32(struct gguf_out *w, const char *k, float v) { key(w, k, GT_F32); put(w, &v, 4); }
void gguf_out_bool(struct gguf_out *w, const char *k, int v)
{
    unsigned char b = v != 0;
    key(w, k, GT_BOOL);
    put(w, &b, 1);
}
void gguf_out_str(struct gguf_out *w, const char *k, const char *v) { key(w, k, GT_STR); put_str(w, v); }

void gguf_out_arr_str(struct gguf_out *w, const char *k, const char *const *v, size_t n)
{
    key(w, k, GT_ARR);
    put_u32(w, GT_STR);
    put_u64(w, n);
    for (size_t i = 0; i < n; i++) put_str(w, v[i]);
}

void gguf_out_arr_f32(struct gguf_out *w, const char *k, const float *v, size_t n)
{
    key(w, k, GT_ARR);
    put_u32(w, GT_F32);
    put_u64(w, n);
    put(w, v, n * 4);
}

void gguf_out_arr_i32(struct gguf_out *w, const char *k, const int32_t *v, size_t n)
{
    key(w, k, GT_ARR);
    put_u32(w, GT_I32);
    put_u64(w, n);
    put(w, v, n * 4);
}

void gguf_out_tensor_f32(struct gguf_out *w, const char *name, int n_dims, const uint64_t *ne,
                         const float *data)
{
    if (w->oom) return;
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 16;
        struct gout_tensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) { w->oom = 1; return; }
        w->t = nt;
        w->cap_t = cap;
    }
    struct gout_tensor *t = &w->t[w->n_t];
    t->name = strdup(name);
    if (!t->name || n_dims < 1 || n_dims > 2) { free(t->name); w->oom = 1; return; }
    t->n_dims = n_dims;
    t->ne[0] = ne[0];
    t->ne[1] = n_dims > 1 ? ne[1] : 1;
    t->data = data;
    w->n_t++;
}

static uint64_t tensor_bytes(const struct gout_tensor *t) { return t->ne[0] * t->ne[1] * 4; }
static uint64_t pad(uint64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

/* Serializes the header (magic .. tensor infos) into a fresh buffer. */
static int header(struct gguf_out *w, unsigned char **hb, size_t *hl, char *err, size_t errlen)
{
    struct gguf_out h = {0};
    put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, w->n_t);
    put_u64(&h, w->n_kv);
    put(&h, w->kv, w->kv_len);
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        put_str(&h, w->t[i].name);
        put_u32(&h, (uint32_t)w->t[i].n_dims);
        for (int d = 0; d < w->t[i].n_dims; d++) put_u64(&h, w->t[i].ne[d]);
        put_u32(&h, 0);   /* GGML_TYPE_F32 */
        put_u64(&h, off);
        off = pad(off + tensor_bytes(&w->t[i]));
    }
    static const unsigned char zero[ALIGN];
    put(&h, zero, pad(h.kv_len) - h.kv_len);
    if (h.oom || w->oom) {
        free(h.kv);
        snprintf(err, errlen, "gguf: out of memory");
        return -1;
    }
    *hb = h.kv;
    *hl = h.kv_len;
    return 0;
}

int gguf_out_mem(struct gguf_out *w, void **buf, size_t *size, char *err, size_t errlen)
{
    unsigned char *hb;
    size_t hl;
    if (header(w, &hb, &hl, err, errlen)) return -1;
    size_t total = hl;
    for (size_t i = 0; i < w->n_t; i++) total += pad(tensor_bytes(&w->t[i]));
    unsigned char *b = calloc(1, total ? total : 1);
    if (!b) {
        free(hb);
        snprintf(err, errlen, "gguf: out of memory (%zu bytes)", total);
        return -1;
    }
    memcpy(b, hb, hl);
    free(hb);
    size_t off = hl;
    for (size_t i = 0; i < w->n_t; i++) {
        memcpy(b + off, w->t[i].data, tensor_bytes(&w->t[i]));
        off += pad(tensor_bytes(&w->t[i]));
    }
    *buf = b;
    *size = total;
    return 0;
}

struct gout_file {
    const struct gguf_out *w;
    const unsigned char *hb;
    size_t hl;
};

static int write_file(FILE *f, void *ctx)
{
    const struct gout_file *o = ctx;
    static const unsigned char zero[ALIGN];
    int ok = fwrite(o->hb, 1, o->hl, f) == o->hl;
    for (size_t i = 0; ok && i < o->w->n_t; i++) {
        uint64_t n = tensor_bytes(&o->w->t[i]);
        ok = fwrite(o->w->t[i].data, 1, n, f) == n && fwrite(zero, 1, pad(n) - n, f) == pad(n) - n;
    }
    return ok ? 0 : -1;
}

int gguf_out_write(struct gguf_out *w, const char *path, char *err, size_t errlen)
{
    unsigned char *hb;
    size_t hl;
    if (header(w, &hb, &hl, err, errlen)) return -1;
    struct gout_file o = {w, hb, hl};
    int rc = savefile_write(path, write_file, &o, err, errlen);
    free(hb);
    return rc;
}
