/* tests/tools/gguf_writer: GGUF v3 files with 32-byte aligned tensors.
 *
 * Each key/value is serialised when it is added (so gw_kv_copy can copy raw bytes); setting
 * a key again replaces the earlier value. The gw_kv_* and gw_tensor* calls return nothing:
 * a bad argument or a failed allocation is remembered and reported by gw_write.
 *
 * Tensors from gw_tensor_fn are produced at write time in chunks of whole rows (at most
 * about GW_CHUNK bytes, at least one row), so fill callbacks may quantize row by row and a
 * multi-gigabyte model never sits in memory. The file is written to PATH.tmp and renamed. */
#include "tests/tools/gguf_writer.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"

#define GW_ALIGN 32
#define GW_CHUNK (4u << 20)

struct gw_kv {
    char *key;
    uint8_t *val;          /* type (u32) + value, serialised */
    size_t val_n;
};

struct gw_tensor {
    char *name;
    uint32_t type;
    int n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes, row_bytes, offset;
    void *data;            /* copied bytes, or NULL when fill is set */
    gw_fill_fn fill;
    void *ctx;
};

struct gw {
    struct gw_kv *kv;
    size_t n_kv, cap_kv;
    struct gw_tensor *t;
    size_t n_t, cap_t;
    char err[256];         /* first error of a gw_kv_* / gw_tensor* call */
};

static void gw_fail(struct gw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void gw_fail(struct gw *w, const char *fmt, ...)
{
    if (w->err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
}

struct gw *gw_new(void) { return calloc(1, sizeof(struct gw)); }

void gw_free(struct gw *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        free(w->t[i].data);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

/* ---- a growable byte buffer for serialising values ---- */

struct buf {
    uint8_t *p;
    size_t n, cap;
    int oom;
};

static void b_put(struct buf *b, const void *src, size_t n)
{
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void b_u32(struct buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    b_put(b, x, 4);
}

static void b_u64(struct buf *b, uint64_t v)
{
    b_u32(b, (uint32_t)v);
    b_u32(b, (uint32_t)(v >> 32));
}

static void b_str(struct buf *b, const char *s, size_t n)
{
    b_u64(b, n);
    b_put(b, s, n);
}

/* Takes ownership of b's bytes as the value of key (replacing an earlier one). */
static void add_kv(struct gw *w, const char *key, struct buf *b)
{
    if (!w) {
        free(b->p);
        return;
    }
    if (b->oom || !key || !*key) {
        gw_fail(w, b->oom ? "gw: out of memory for key '%s'" : "gw: empty key%s", key ? key : "");
        free(b->p);
        return;
    }
    for (size_t i = 0; i < w->n_kv; i++)
        if (!strcmp(w->kv[i].key, key)) {
            free(w->kv[i].val);
            w->kv[i].val = b->p;
            w->kv[i].val_n = b->n;
            return;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? w->cap_kv * 2 : 32;
        struct gw_kv *kv = realloc(w->kv, cap * sizeof *kv);
        if (!kv) {
            gw_fail(w, "gw: out of memory for key '%s'", key);
            free(b->p);
            return;
        }
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        gw_fail(w, "gw: out of memory for key '%s'", key);
        free(b->p);
        return;
    }
    w->kv[w->n_kv++] = (struct gw_kv){k, b->p, b->n};
}

static void kv_scalar(struct gw *w, const char *key, uint32_t type, const void *v, size_t n)
{
    struct buf b = {0};
    b_u32(&b, type);
    b_put(&b, v, n);   /* host order: this tool runs on little-endian machines only */
    add_kv(w, key, &b);
}

void gw_kv_u32(struct gw *w, const char *key, uint32_t v) { kv_scalar(w, key, GGUF_VT_UINT32, &v, 4); }
void gw_kv_i32(struct gw *w, const char *key, int32_t v) { kv_scalar(w, key, GGUF_VT_INT32, &v, 4); }
void gw_kv_u64(struct gw *w, const char *key, uint64_t v) { kv_scalar(w, key, GGUF_VT_UINT64, &v, 8); }
void gw_kv_f32(struct gw *w, const char *key, float v) { kv_scalar(w, key, GGUF_VT_FLOAT32, &v, 4); }

void gw_kv_bool(struct gw *w, const char *key, int v)
{
    uint8_t x = v != 0;
    kv_scalar(w, key, GGUF_VT_BOOL, &x, 1);
}

void gw_kv_str(struct gw *w, const char *key, const char *v)
{
    struct buf b = {0};
    b_u32(&b, GGUF_VT_STRING);
    b_str(&b, v ? v : "", v ? strlen(v) : 0);
    add_kv(w, key, &b);
}

void gw_kv_arr_str(struct gw *w, const char *key, const char *const *v, size_t n)
{
    struct buf b = {0};
    b_u32(&b, GGUF_VT_ARRAY);
    b_u32(&b, GGUF_VT_STRING);
    b_u64(&b, n);
    for (size_t i = 0; i < n; i++) b_str(&b, v[i] ? v[i] : "", v[i] ? strlen(v[i]) : 0);
    add_kv(w, key, &b);
}

static void kv_arr(struct gw *w, const char *key, uint32_t type, const void *v, size_t n, size_t esz)
{
    struct buf b = {0};
    b_u32(&b, GGUF_VT_ARRAY);
    b_u32(&b, type);
    b_u64(&b, n);
    if (n) b_put(&b, v, n * esz);
    add_kv(w, key, &b);
}

void gw_kv_arr_f32(struct gw *w, const char *key, const float *v, size_t n)
{
    kv_arr(w, key, GGUF_VT_FLOAT32, v, n, 4);
}

void gw_kv_arr_i32(struct gw *w, const char *key, const int32_t *v, size_t n)
{
    kv_arr(w, key, GGUF_VT_INT32, v, n, 4);
}

/* Encoded size of a value of scalar type t (0 for strings/arrays). */
static size_t scalar_size(uint32_t t)
{
    switch (t) {
    case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_BOOL: return 1;
    case GGUF_VT_UINT16: case GGUF_VT_INT16: return 2;
    case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_FLOAT32: return 4;
    case GGUF_VT_UINT64: case GGUF_VT_INT64: case GGUF_VT_FLOAT64: return 8;
    default: return 0;
    }
}

static uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

void gw_kv_copy(struct gw *w, const struct gguf *src, const char *prefix)
{
    if (!w || !src) return;
    size_t pl = prefix ? strlen(prefix) : 0;
    for (uint64_t i = 0; i < src->n_kv; i++) {
        const struct gguf_kv *kv = &src->kv[i];
        if (kv->key.len < pl || memcmp(kv->key.ptr, prefix, pl)) continue;
        /* The reader validated the value, so its raw extent can be computed from it. */
        const uint8_t *start = kv->val, *end;
        if (kv->type == GGUF_VT_STRING) {
            end = kv->val + 8 + ld64(kv->val);
        } else if (kv->type == GGUF_VT_ARRAY) {
            start = kv->val - 12;   /* element type (4) and count (8) precede the elements */
            if (kv->arr_type == GGUF_VT_STRING)
                end = kv->arr_n ? kv->val + kv->str_off[kv->arr_n - 1] + 8 +
                                      ld64(kv->val + kv->str_off[kv->arr_n - 1])
                                : kv->val;
            else
                end = kv->val + kv->arr_n * scalar_size(kv->arr_type);
        } else {
            end = kv->val + scalar_size(kv->type);
        }
        char *key = strndup(kv->key.ptr, kv->key.len);
        struct buf b = {0};
        if (!key) {
            gw_fail(w, "gw: out of memory copying metadata");
            return;
        }
        b_u32(&b, kv->type);
        b_put(&b, start, (size_t)(end - start));
        add_kv(w, key, &b);
        free(key);
    }
}

static struct gw_tensor *add_tensor(struct gw *w, const char *name, uint32_t type, int n_dims,
                                    const uint64_t *ne)
{
    if (!w) return NULL;
    if (!name || !*name) {
        gw_fail(w, "gw: tensor with an empty name");
        return NULL;
    }
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
        gw_fail(w, "gw: tensor '%s': n_dims %d not in 1..%d", name, n_dims, GGUF_MAX_DIMS);
        return NULL;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) {
            gw_fail(w, "gw: duplicate tensor '%s'", name);
            return NULL;
        }
    struct gw_tensor t = {0};
    t.type = type;
    t.n_dims = n_dims;
    uint64_t rows = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] == 0 || (d > 0 && __builtin_mul_overflow(rows, t.ne[d], &rows))) {
            gw_fail(w, "gw: tensor '%s': bad dimension ne[%d]", name, d);
            return NULL;
        }
    }
    if (gguf_row_bytes(type, t.ne[0], &t.row_bytes) ||
        __builtin_mul_overflow(t.row_bytes, rows, &t.nbytes)) {
        gw_fail(w, "gw: tensor '%s': type %s (%u) cannot hold rows of %llu elements", name,
                gguf_type_name(type), type, (unsigned long long)t.ne[0]);
        return NULL;
    }
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        struct gw_tensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) {
            gw_fail(w, "gw: out of memory for tensor '%s'", name);
            return NULL;
        }
        w->t = nt;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name) {
        gw_fail(w, "gw: out of memory for tensor '%s'", name);
        return NULL;
    }
    w->t[w->n_t] = t;
    return &w->t[w->n_t++];
}

void gw_tensor(struct gw *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
               const void *data)
{
    struct gw_tensor *t = add_tensor(w, name, type, n_dims, ne);
    if (!t) return;
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    if (!t->data) {
        gw_fail(w, "gw: out of memory for the data of tensor '%s'", name);
        free(t->name);
        w->n_t--;
        return;
    }
    memcpy(t->data, data, t->nbytes);
}

void gw_tensor_fn(struct gw *w, const char *name, uint32_t type, int n_dims, const uint64_t *ne,
                  gw_fill_fn fill, void *ctx)
{
    struct gw_tensor *t = add_tensor(w, name, type, n_dims, ne);
    if (!t) return;
    t->fill = fill;
    t->ctx = ctx;
}

/* ---- writing ---- */

static int put(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

static int pad(FILE *f, uint64_t pos)
{
    static const uint8_t zero[GW_ALIGN];
    size_t n = (size_t)((GW_ALIGN - pos % GW_ALIGN) % GW_ALIGN);
    return put(f, zero, n);
}

/* Header, metadata and tensor infos; returns the bytes written in *pos. */
static int write_header(struct gw *w, FILE *f, uint64_t *pos)
{
    struct buf b = {0};
    b_put(&b, "GGUF", 4);
    b_u32(&b, 3);
    b_u64(&b, w->n_t);
    b_u64(&b, w->n_kv);
    for (size_t i = 0; i < w->n_kv; i++) {
        b_str(&b, w->kv[i].key, strlen(w->kv[i].key));
        b_put(&b, w->kv[i].val, w->kv[i].val_n);
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        struct gw_tensor *t = &w->t[i];
        b_str(&b, t->name, strlen(t->name));
        b_u32(&b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) b_u64(&b, t->ne[d]);
        b_u32(&b, t->type);
        t->offset = off;
        b_u64(&b, off);
        off += (t->nbytes + GW_ALIGN - 1) / GW_ALIGN * GW_ALIGN;
    }
    if (b.oom) {
        free(b.p);
        return -3;
    }
    int rc = put(f, b.p, b.n) ? -2 : 0;
    *pos = b.n;
    free(b.p);
    return rc;
}

static int write_tensor(struct gw_tensor *t, FILE *f, uint8_t *chunk, char *err, size_t errlen)
{
    if (!t->fill) {
        if (put(f, t->data, t->nbytes)) return -2;
        return pad(f, t->nbytes) ? -2 : 0;
    }
    uint64_t rows_per = GW_CHUNK / t->row_bytes;
    if (rows_per == 0) rows_per = 1;
    uint64_t step = rows_per * t->row_bytes;
    for (uint64_t off = 0; off < t->nbytes; off += step) {
        uint64_t n = t->nbytes - off < step ? t->nbytes - off : step;
        if (t->fill(t->ctx, chunk, off, n)) {
            snprintf(err, errlen, "gw: filling tensor '%s' failed at byte %llu", t->name,
                     (unsigned long long)off);
            return -1;
        }
        if (put(f, chunk, n)) return -2;
    }
    return pad(f, t->nbytes) ? -2 : 0;
}

int gw_write(struct gw *w, const char *path, char *err, size_t errlen)
{
    if (!w) {
        snprintf(err, errlen, "gw: no writer (gw_new failed)");
        return -1;
    }
    if (w->err[0]) {
        snprintf(err, errlen, "%s", w->err);
        return -1;
    }
    /* One chunk buffer sized for the largest row range any fill tensor will get. */
    uint64_t chunk_n = 1;
    for (size_t i = 0; i < w->n_t; i++)
        if (w->t[i].fill) {
            uint64_t rb = w->t[i].row_bytes, n = GW_CHUNK / rb ? GW_CHUNK / rb * rb : rb;
            if (n > w->t[i].nbytes) n = w->t[i].nbytes;
            if (n > chunk_n) chunk_n = n;
        }
    uint8_t *chunk = malloc(chunk_n);
    if (!chunk) {
        snprintf(err, errlen, "gw: out of memory for a %llu-byte chunk",
                 (unsigned long long)chunk_n);
        return -1;
    }
    size_t pl = strlen(path);
    char *tmp = malloc(pl + 5);
    if (!tmp) {
        free(chunk);
        snprintf(err, errlen, "gw: out of memory");
        return -1;
    }
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "gw: cannot create %s: %s", tmp, strerror(errno));
        free(chunk);
        free(tmp);
        return -1;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    uint64_t pos = 0;
    int rc = write_header(w, f, &pos);
    if (rc == 0) rc = pad(f, pos) ? -2 : 0;
    for (size_t i = 0; rc == 0 && i < w->n_t; i++) rc = write_tensor(&w->t[i], f, chunk, err, errlen);
    int e = errno;
    if (fclose(f) != 0 && rc == 0) {
        rc = -2;
        e = errno;
    }
    if (rc == -2) snprintf(err, errlen, "gw: writing %s: %s", tmp, strerror(e));
    if (rc == -3) snprintf(err, errlen, "gw: out of memory serialising the header");
    if (rc == 0 && rename(tmp, path) != 0) {
        snprintf(err, errlen, "gw: cannot rename %s to %s: %s", tmp, path, strerror(errno));
        rc = -1;
    }
    if (rc != 0) remove(tmp);
    free(chunk);
    free(tmp);
    return rc == 0 ? 0 : -1;
}
