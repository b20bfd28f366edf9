/* app/train/gguf_out: the GGUF v3 writer (see gguf_out.h).
 *
 * Each key/value is serialised when it is added (so gguf_out_copy can copy raw bytes).
 * Tensors from gguf_out_tensor_fn are produced in chunks of whole rows (at most about
 * OUT_CHUNK bytes, at least one row), so fill callbacks may quantize row by row. The file
 * and the memory image are written by the same stream writer. */
#include "app/train/gguf_out.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/savefile.h"
#include "core/gguf.h"

#define OUT_ALIGN 32
#define OUT_CHUNK (4u << 20)

struct out_kv {
    char *key;
    uint8_t *val;          /* type (u32) + value, serialised */
    size_t val_n;
};

struct out_tensor {
    char *name;
    uint32_t type;
    int n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint64_t nbytes, row_bytes, offset;
    void *data;            /* the bytes, or NULL when fill is set */
    int borrowed;          /* data belongs to the caller */
    gguf_out_fill_fn fill;
    void *ctx;
};

struct gguf_out {
    struct out_kv *kv;
    size_t n_kv, cap_kv;
    struct out_tensor *t;
    size_t n_t, cap_t;
    char err[256];         /* first error of a key/value or tensor call */
};

static void out_fail(struct gguf_out *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_fail(struct gguf_out *w, const char *fmt, ...)
{
    if (w->err[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->err, sizeof w->err, fmt, ap);
    va_end(ap);
}

struct gguf_out *gguf_out_new(void) { return calloc(1, sizeof(struct gguf_out)); }

void gguf_out_free(struct gguf_out *w)
{
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        free(w->kv[i].val);
    }
    for (size_t i = 0; i < w->n_t; i++) {
        free(w->t[i].name);
        if (!w->t[i].borrowed) free(w->t[i].data);
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
static void add_kv(struct gguf_out *w, const char *key, struct buf *b)
{
    if (!w) {
        free(b->p);
        return;
    }
    if (b->oom || !key || !*key) {
        out_fail(w, b->oom ? "gguf_out: out of memory for key '%s'" : "gguf_out: empty key%s",
                 key ? key : "");
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
        struct out_kv *kv = realloc(w->kv, cap * sizeof *kv);
        if (!kv) {
            out_fail(w, "gguf_out: out of memory for key '%s'", key);
            free(b->p);
            return;
        }
        w->kv = kv;
        w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (!k) {
        out_fail(w, "gguf_out: out of memory for key '%s'", key);
        free(b->p);
        return;
    }
    w->kv[w->n_kv++] = (struct out_kv){k, b->p, b->n};
}

static void kv_scalar(struct gguf_out *w, const char *key, uint32_t type, const void *v, size_t n)
{
    struct buf b = {0};
    b_u32(&b, type);
    b_put(&b, v, n);   /* host order: cmif runs on little-endian machines only */
    add_kv(w, key, &b);
}

void gguf_out_u32(struct gguf_out *w, const char *key, uint32_t v)
{
    kv_scalar(w, key, GGUF_VT_UINT32, &v, 4);
}

void gguf_out_i32(struct gguf_out *w, const char *key, int32_t v)
{
    kv_scalar(w, key, GGUF_VT_INT32, &v, 4);
}

void gguf_out_u64(struct gguf_out *w, const char *key, uint64_t v)
{
    kv_scalar(w, key, GGUF_VT_UINT64, &v, 8);
}

void gguf_out_f32(struct gguf_out *w, const char *key, float v)
{
    kv_scalar(w, key, GGUF_VT_FLOAT32, &v, 4);
}

void gguf_out_bool(struct gguf_out *w, const char *key, int v)
{
    uint8_t x = v != 0;
    kv_scalar(w, key, GGUF_VT_BOOL, &x, 1);
}

void gguf_out_str(struct gguf_out *w, const char *key, const char *v)
{
    struct buf b = {0};
    b_u32(&b, GGUF_VT_STRING);
    b_str(&b, v ? v : "", v ? strlen(v) : 0);
    add_kv(w, key, &b);
}

void gguf_out_arr_str(struct gguf_out *w, const char *key, const char *const *v, size_t n)
{
    struct buf b = {0};
    b_u32(&b, GGUF_VT_ARRAY);
    b_u32(&b, GGUF_VT_STRING);
    b_u64(&b, n);
    for (size_t i = 0; i < n; i++) b_str(&b, v[i] ? v[i] : "", v[i] ? strlen(v[i]) : 0);
    add_kv(w, key, &b);
}

static void kv_arr(struct gguf_out *w, const char *key, uint32_t type, const void *v, size_t n,
                   size_t esz)
{
    struct buf b = {0};
    b_u32(&b, GGUF_VT_ARRAY);
    b_u32(&b, type);
    b_u64(&b, n);
    if (n) b_put(&b, v, n * esz);
    add_kv(w, key, &b);
}

void gguf_out_arr_f32(struct gguf_out *w, const char *key, const float *v, size_t n)
{
    kv_arr(w, key, GGUF_VT_FLOAT32, v, n, 4);
}

void gguf_out_arr_i32(struct gguf_out *w, const char *key, const int32_t *v, size_t n)
{
    kv_arr(w, key, GGUF_VT_INT32, v, n, 4);
}

static uint64_t ld64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

void gguf_out_copy(struct gguf_out *w, const struct gguf *src, const char *prefix)
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
                end = kv->val + kv->arr_n * gguf_vtype_size(kv->arr_type);
        } else {
            end = kv->val + gguf_vtype_size(kv->type);
        }
        char *key = strndup(kv->key.ptr, kv->key.len);
        struct buf b = {0};
        if (!key) {
            out_fail(w, "gguf_out: out of memory copying metadata");
            return;
        }
        b_u32(&b, kv->type);
        b_put(&b, start, (size_t)(end - start));
        add_kv(w, key, &b);
        free(key);
    }
}

static struct out_tensor *add_tensor(struct gguf_out *w, const char *name, uint32_t type,
                                     int n_dims, const uint64_t *ne)
{
    if (!w) return NULL;
    if (!name || !*name) {
        out_fail(w, "gguf_out: tensor with an empty name");
        return NULL;
    }
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS) {
        out_fail(w, "gguf_out: tensor '%s': n_dims %d not in 1..%d", name, n_dims, GGUF_MAX_DIMS);
        return NULL;
    }
    for (size_t i = 0; i < w->n_t; i++)
        if (!strcmp(w->t[i].name, name)) {
            out_fail(w, "gguf_out: duplicate tensor '%s'", name);
            return NULL;
        }
    struct out_tensor t = {0};
    t.type = type;
    t.n_dims = n_dims;
    uint64_t rows = 1;
    for (int d = 0; d < GGUF_MAX_DIMS; d++) {
        t.ne[d] = d < n_dims ? ne[d] : 1;
        if (t.ne[d] == 0 || (d > 0 && __builtin_mul_overflow(rows, t.ne[d], &rows))) {
            out_fail(w, "gguf_out: tensor '%s': bad dimension ne[%d]", name, d);
            return NULL;
        }
    }
    if (gguf_row_bytes(type, t.ne[0], &t.row_bytes) ||
        __builtin_mul_overflow(t.row_bytes, rows, &t.nbytes)) {
        out_fail(w, "gguf_out: tensor '%s': type %s (%u) cannot hold rows of %llu elements", name,
                gguf_type_name(type), type, (unsigned long long)t.ne[0]);
        return NULL;
    }
    if (w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? w->cap_t * 2 : 64;
        struct out_tensor *nt = realloc(w->t, cap * sizeof *nt);
        if (!nt) {
            out_fail(w, "gguf_out: out of memory for tensor '%s'", name);
            return NULL;
        }
        w->t = nt;
        w->cap_t = cap;
    }
    t.name = strdup(name);
    if (!t.name) {
        out_fail(w, "gguf_out: out of memory for tensor '%s'", name);
        return NULL;
    }
    w->t[w->n_t] = t;
    return &w->t[w->n_t++];
}

void gguf_out_tensor(struct gguf_out *w, const char *name, uint32_t type, int n_dims,
                     const uint64_t *ne, const void *data)
{
    struct out_tensor *t = add_tensor(w, name, type, n_dims, ne);
    if (!t) return;
    t->data = malloc(t->nbytes ? t->nbytes : 1);
    if (!t->data) {
        out_fail(w, "gguf_out: out of memory for the data of tensor '%s'", name);
        free(t->name);
        w->n_t--;
        return;
    }
    memcpy(t->data, data, t->nbytes);
}

void gguf_out_tensor_ref(struct gguf_out *w, const char *name, uint32_t type, int n_dims,
                         const uint64_t *ne, const void *data)
{
    struct out_tensor *t = add_tensor(w, name, type, n_dims, ne);
    if (!t) return;
    t->data = (void *)data;
    t->borrowed = 1;
}

void gguf_out_tensor_fn(struct gguf_out *w, const char *name, uint32_t type, int n_dims,
                        const uint64_t *ne, gguf_out_fill_fn fill, void *ctx)
{
    struct out_tensor *t = add_tensor(w, name, type, n_dims, ne);
    if (!t) return;
    t->fill = fill;
    t->ctx = ctx;
}

/* ---- writing ---- */

static int put(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n ? 0 : -1; }

static int pad(FILE *f, uint64_t pos)
{
    static const uint8_t zero[OUT_ALIGN];
    size_t n = (size_t)((OUT_ALIGN - pos % OUT_ALIGN) % OUT_ALIGN);
    return put(f, zero, n);
}

/* Header, metadata and tensor infos; returns the bytes written in *pos. */
static int write_header(struct gguf_out *w, FILE *f, uint64_t *pos)
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
        struct out_tensor *t = &w->t[i];
        b_str(&b, t->name, strlen(t->name));
        b_u32(&b, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims; d++) b_u64(&b, t->ne[d]);
        b_u32(&b, t->type);
        t->offset = off;
        b_u64(&b, off);
        off += (t->nbytes + OUT_ALIGN - 1) / OUT_ALIGN * OUT_ALIGN;
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

static int write_tensor(struct out_tensor *t, FILE *f, uint8_t *chunk, char *err, size_t errlen)
{
    if (!t->fill) {
        if (put(f, t->data, t->nbytes)) return -2;
        return pad(f, t->nbytes) ? -2 : 0;
    }
    uint64_t rows_per = OUT_CHUNK / t->row_bytes;
    if (rows_per == 0) rows_per = 1;
    uint64_t step = rows_per * t->row_bytes;
    for (uint64_t off = 0; off < t->nbytes; off += step) {
        uint64_t n = t->nbytes - off < step ? t->nbytes - off : step;
        if (t->fill(t->ctx, chunk, off, n)) {
            snprintf(err, errlen, "gguf_out: filling tensor '%s' failed at byte %llu", t->name,
                     (unsigned long long)off);
            return -1;
        }
        if (put(f, chunk, n)) return -2;
    }
    return pad(f, t->nbytes) ? -2 : 0;
}

/* Header, padding, then every tensor padded, to f; err says why on failure. */
static int write_stream(struct gguf_out *w, FILE *f, char *err, size_t errlen)
{
    if (!w) {
        snprintf(err, errlen, "gguf_out: no writer (gguf_out_new failed)");
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
            uint64_t rb = w->t[i].row_bytes, n = OUT_CHUNK / rb ? OUT_CHUNK / rb * rb : rb;
            if (n > w->t[i].nbytes) n = w->t[i].nbytes;
            if (n > chunk_n) chunk_n = n;
        }
    uint8_t *chunk = malloc(chunk_n);
    if (!chunk) {
        snprintf(err, errlen, "gguf_out: out of memory for a %llu-byte chunk",
                 (unsigned long long)chunk_n);
        return -1;
    }
    uint64_t pos = 0;
    int rc = write_header(w, f, &pos);
    if (rc == 0) rc = pad(f, pos) ? -2 : 0;
    for (size_t i = 0; rc == 0 && i < w->n_t; i++)
        rc = write_tensor(&w->t[i], f, chunk, err, errlen);
    if (rc == -2) snprintf(err, errlen, "gguf_out: write failed: %s", strerror(errno));
    if (rc == -3) snprintf(err, errlen, "gguf_out: out of memory serialising the header");
    free(chunk);
    return rc == 0 ? 0 : -1;
}

struct out_file {
    struct gguf_out *w;
    char err[256];
};

static int write_file(FILE *f, void *ctx)
{
    struct out_file *o = ctx;
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    return write_stream(o->w, f, o->err, sizeof o->err);
}

int gguf_out_write(struct gguf_out *w, const char *path, char *err, size_t errlen)
{
    struct out_file o = {w, ""};
    if (savefile_write(path, write_file, &o, err, errlen) == 0) return 0;
    if (o.err[0]) snprintf(err, errlen, "%s: %s", path, o.err);   /* the writer's reason */
    return -1;
}

int gguf_out_mem(struct gguf_out *w, void **buf, size_t *size, char *err, size_t errlen)
{
    char *b = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&b, &n);
    if (!f) {
        snprintf(err, errlen, "gguf_out: out of memory");
        return -1;
    }
    int rc = write_stream(w, f, err, errlen);
    if (fclose(f) != 0 && rc == 0) {
        snprintf(err, errlen, "gguf_out: out of memory (%zu bytes)", n);
        rc = -1;
    }
    if (rc) {
        free(b);
        return -1;
    }
    *buf = b;
    *size = n;
    return 0;
}
