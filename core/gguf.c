/* core/gguf: a GGUF v2/v3 reader over mmap.
 *
 * The whole header (metadata and tensor infos) is parsed and validated at open, so that
 * callers can trust every field afterwards. The rules:
 *   - every read is bounds-checked against the end of the buffer, and names the field it
 *     was reading when the file is too short;
 *   - every count is compared with the bytes left before anything is allocated for it
 *     (each key/value needs at least 13 bytes, each tensor info at least 32, each string
 *     array element 8), so allocations never exceed a small multiple of the file size;
 *   - sizes are computed with overflow checks (__builtin_*_overflow);
 *   - keys and tensor names must be unique, printable and bounded; nested arrays are
 *     rejected (llama.cpp does not produce them, and they would allow unbounded recursion);
 *   - tensor data must be aligned, inside the file and not overlap other tensors.
 * Lookups use hash tables built at open, so gguf_find/gguf_tensor are O(1) even for
 * hostile files with millions of keys. */
#include "core/util.h"
#include "core/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_KEY_LEN 65535     /* the spec's limit */
#define GGUF_MAX_NAME_LEN 1024     /* ggml itself uses 64; be lenient but bounded */
#define GGUF_MAX_ALIGNMENT (1u << 30)

/* Minimum encoded sizes, used to bound counts by the bytes that remain. */
#define MIN_KV_BYTES 13      /* key len (8) + type (4) + smallest value (1) */
#define MIN_TENSOR_BYTES 32  /* name len (8) + n_dims (4) + one dim (8) + type (4) + offset (8) */

/* Private state behind the public struct (which must stay first). */
struct gguf_impl {
    struct gguf pub;
    size_t kv_hcap, t_hcap;       /* power-of-two capacities; slots hold index + 1 */
    size_t *kv_hash, *t_hash;
};

/* ---- type geometry -------------------------------------------------------------------- */

struct type_info {
    const char *name;
    uint32_t blk_elems, blk_bytes;
};

static const struct type_info type_tab[GGUF_T_COUNT] = {
    [0] = {"F32", 1, 4},       [1] = {"F16", 1, 2},        [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},    [6] = {"Q5_0", 32, 22},     [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},    [9] = {"Q8_1", 32, 36},     [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110}, [12] = {"Q4_K", 256, 144},  [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210}, [15] = {"Q8_K", 256, 292},  [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74}, [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18}, [21] = {"IQ3_S", 256, 110}, [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},      [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},      [27] = {"I64", 1, 8},       [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56}, [30] = {"BF16", 1, 2},      [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},
};

const char *gguf_type_name(uint32_t type)
{
    if (type >= GGUF_T_COUNT || !type_tab[type].name) return "unknown";
    return type_tab[type].name;
}

uint64_t gguf_type_block_elems(uint32_t type)
{
    return type < GGUF_T_COUNT ? type_tab[type].blk_elems : 0;
}

uint64_t gguf_type_block_bytes(uint32_t type)
{
    return type < GGUF_T_COUNT ? type_tab[type].blk_bytes : 0;
}

int gguf_row_bytes(uint32_t type, uint64_t n, uint64_t *out)
{
    uint64_t be = gguf_type_block_elems(type), bb = gguf_type_block_bytes(type);
    if (!be || n % be) return -1;
    uint64_t r;
    if (__builtin_mul_overflow(n / be, bb, &r)) return -1;
    *out = r;
    return 0;
}

/* Size of one scalar metadata value (see gguf.h). */
uint64_t gguf_vtype_size(uint32_t t)
{
    switch (t) {
    case GGUF_VT_UINT8: case GGUF_VT_INT8: case GGUF_VT_BOOL: return 1;
    case GGUF_VT_UINT16: case GGUF_VT_INT16: return 2;
    case GGUF_VT_UINT32: case GGUF_VT_INT32: case GGUF_VT_FLOAT32: return 4;
    case GGUF_VT_UINT64: case GGUF_VT_INT64: case GGUF_VT_FLOAT64: return 8;
    default: return 0;
    }
}

static const char *vtype_name(uint32_t t)
{
    static const char *const n[] = {"u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool",
                                    "string", "array", "u64", "i64", "f64"};
    return t < sizeof n / sizeof n[0] ? n[t] : "unknown";
}

/* ---- little-endian loads (files are little-endian; never rely on alignment) ---------- */

static uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t ld64(const uint8_t *p) { return ld32(p) | (uint64_t)ld32(p + 4) << 32; }

/* ---- errors ----------------------------------------------------------------------------- */

/* A file string made safe for a message: control and non-ASCII bytes escaped, truncated. */
static const char *safe_str(const uint8_t *p, uint64_t len, char *buf, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (uint64_t i = 0; i < len; i++) {
        if (o + 8 >= n) {
            memcpy(buf + o, "...", 4);
            return buf;
        }
        uint8_t c = p[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            buf[o++] = (char)c;
        } else {
            buf[o++] = '\\';
            buf[o++] = 'x';
            buf[o++] = hex[c >> 4];
            buf[o++] = hex[c & 15];
        }
    }
    buf[o] = 0;
    return buf;
}

/* ---- cursor ----------------------------------------------------------------------------- */

struct cur {
    const uint8_t *base;
    size_t size, pos;
    char *err;
    size_t errlen;
};

static uint64_t cur_left(const struct cur *c) { return c->size - c->pos; }

/* Makes sure n bytes are readable; `what` names the field for the error. */
static int need(struct cur *c, uint64_t n, const char *what)
{
    if (n > cur_left(c)) {
        util_seterr(c->err, c->errlen,
               "gguf: file truncated reading %s at offset %zu (needs %llu bytes, file size %zu)",
               what, c->pos, (unsigned long long)n, c->size);
        return -1;
    }
    return 0;
}

static int rd_u32(struct cur *c, uint32_t *v, const char *what)
{
    if (need(c, 4, what)) return -1;
    *v = ld32(c->base + c->pos);
    c->pos += 4;
    return 0;
}

static int rd_u64(struct cur *c, uint64_t *v, const char *what)
{
    if (need(c, 8, what)) return -1;
    *v = ld64(c->base + c->pos);
    c->pos += 8;
    return 0;
}

/* A length-prefixed string; its bytes stay in the buffer. */
static int rd_str(struct cur *c, struct gguf_str *s, uint64_t maxlen, const char *what)
{
    uint64_t len;
    char lbl[160];
    snprintf(lbl, sizeof lbl, "%s length", what);
    if (rd_u64(c, &len, lbl)) return -1;
    if (len > cur_left(c)) {
        util_seterr(c->err, c->errlen,
               "gguf: %s length %llu at offset %zu exceeds the %llu bytes left in the file",
               what, (unsigned long long)len, c->pos - 8, (unsigned long long)cur_left(c));
        return -1;
    }
    if (len > maxlen) {
        util_seterr(c->err, c->errlen, "gguf: %s length %llu exceeds the limit of %llu", what,
               (unsigned long long)len, (unsigned long long)maxlen);
        return -1;
    }
    s->ptr = (const char *)c->base + c->pos;
    s->len = len;
    c->pos += len;
    return 0;
}

/* Keys and tensor names: non-empty printable ASCII (keeps error messages and lookups sane). */
static int check_name(struct cur *c, const struct gguf_str *s, const char *what)
{
    if (s->len == 0) {
        util_seterr(c->err, c->errlen, "gguf: %s is empty", what);
        return -1;
    }
    for (uint64_t i = 0; i < s->len; i++) {
        uint8_t ch = (uint8_t)s->ptr[i];
        if (ch < 0x20 || ch >= 0x7f) {
            char b[96];
            util_seterr(c->err, c->errlen,
                   "gguf: %s '%s' has byte 0x%02x at position %llu (only printable ASCII allowed)",
                   what, safe_str((const uint8_t *)s->ptr, s->len, b, sizeof b), ch,
                   (unsigned long long)i);
            return -1;
        }
    }
    return 0;
}

/* ---- hashing ---------------------------------------------------------------------------- */

static uint64_t hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static int str_eq(const struct gguf_str *s, const char *p, size_t n)
{
    return s->len == n && memcmp(s->ptr, p, n) == 0;
}

static size_t hash_cap(uint64_t n)
{
    size_t cap = 16;
    while (cap < n * 2) cap <<= 1;
    return cap;
}

/* Key i's string, whichever table it is. */
typedef const struct gguf_str *(*name_of_fn)(const struct gguf *g, size_t i);
static const struct gguf_str *kv_name(const struct gguf *g, size_t i) { return &g->kv[i].key; }
static const struct gguf_str *t_name(const struct gguf *g, size_t i) { return &g->tensors[i].name; }

/* Index of the entry named (p, n), or -1. */
static long long hash_find(const struct gguf *g, const size_t *tab, size_t cap, name_of_fn nm,
                           const char *p, size_t n)
{
    if (!tab) return -1;
    size_t m = cap - 1, h = (size_t)hash_bytes(p, n) & m;
    while (tab[h]) {
        if (str_eq(nm(g, tab[h] - 1), p, n)) return (long long)(tab[h] - 1);
        h = (h + 1) & m;
    }
    return -1;
}

/* Inserts entry i; returns the index of an earlier entry with the same name, or -1. */
static long long hash_insert(const struct gguf *g, size_t *tab, size_t cap, name_of_fn nm,
                             size_t i)
{
    const struct gguf_str *s = nm(g, i);
    size_t m = cap - 1, h = (size_t)hash_bytes(s->ptr, s->len) & m;
    while (tab[h]) {
        if (str_eq(nm(g, tab[h] - 1), s->ptr, s->len)) return (long long)(tab[h] - 1);
        h = (h + 1) & m;
    }
    tab[h] = i + 1;
    return -1;
}

/* ---- metadata --------------------------------------------------------------------------- */

/* Parses key/value i; string arrays get their element offsets indexed (kv->str_off). */
static int parse_kv(struct cur *c, struct gguf_impl *im, uint64_t i)
{
    struct gguf_kv *kv = &im->pub.kv[i];
    char what[64], kb[96];
    snprintf(what, sizeof what, "key %llu", (unsigned long long)i);
    if (rd_str(c, &kv->key, GGUF_MAX_KEY_LEN, what)) return -1;
    if (check_name(c, &kv->key, what)) return -1;
    safe_str((const uint8_t *)kv->key.ptr, kv->key.len, kb, sizeof kb);

    char lbl[160];
    snprintf(lbl, sizeof lbl, "the value type of key %llu '%s'", (unsigned long long)i, kb);
    if (rd_u32(c, &kv->type, lbl)) return -1;
    if (kv->type > GGUF_VT_FLOAT64) {
        util_seterr(c->err, c->errlen, "gguf: key %llu '%s': unknown value type %u",
               (unsigned long long)i, kb, kv->type);
        return -1;
    }
    snprintf(lbl, sizeof lbl, "the value of key %llu '%s'", (unsigned long long)i, kb);

    if (kv->type == GGUF_VT_STRING) {
        struct gguf_str s;
        if (rd_str(c, &s, UINT64_MAX, lbl)) return -1;
        kv->val = (const uint8_t *)s.ptr - 8;     /* the value starts at its length field */
        return 0;
    }
    if (kv->type != GGUF_VT_ARRAY) {
        uint64_t sz = gguf_vtype_size(kv->type);
        if (need(c, sz, lbl)) return -1;
        kv->val = c->base + c->pos;
        if (kv->type == GGUF_VT_BOOL && kv->val[0] > 1) {
            util_seterr(c->err, c->errlen, "gguf: key %llu '%s': bool value %u is not 0 or 1",
                   (unsigned long long)i, kb, kv->val[0]);
            return -1;
        }
        c->pos += sz;
        return 0;
    }

    snprintf(lbl, sizeof lbl, "the array element type of key %llu '%s'", (unsigned long long)i, kb);
    if (rd_u32(c, &kv->arr_type, lbl)) return -1;
    if (kv->arr_type == GGUF_VT_ARRAY) {
        util_seterr(c->err, c->errlen, "gguf: key %llu '%s': nested arrays are not supported",
               (unsigned long long)i, kb);
        return -1;
    }
    if (kv->arr_type > GGUF_VT_FLOAT64) {
        util_seterr(c->err, c->errlen, "gguf: key %llu '%s': unknown array element type %u",
               (unsigned long long)i, kb, kv->arr_type);
        return -1;
    }
    snprintf(lbl, sizeof lbl, "the array length of key %llu '%s'", (unsigned long long)i, kb);
    if (rd_u64(c, &kv->arr_n, lbl)) return -1;
    kv->val = c->base + c->pos;

    if (kv->arr_type != GGUF_VT_STRING) {
        uint64_t esz = gguf_vtype_size(kv->arr_type), total;
        if (__builtin_mul_overflow(kv->arr_n, esz, &total) || total > cur_left(c)) {
            util_seterr(c->err, c->errlen,
                   "gguf: key %llu '%s': array of %llu %s elements exceeds the %llu bytes left "
                   "in the file",
                   (unsigned long long)i, kb, (unsigned long long)kv->arr_n,
                   vtype_name(kv->arr_type), (unsigned long long)cur_left(c));
            return -1;
        }
        if (kv->arr_type == GGUF_VT_BOOL)
            for (uint64_t j = 0; j < kv->arr_n; j++)
                if (kv->val[j] > 1) {
                    util_seterr(c->err, c->errlen,
                           "gguf: key %llu '%s': bool element %llu is %u, not 0 or 1",
                           (unsigned long long)i, kb, (unsigned long long)j, kv->val[j]);
                    return -1;
                }
        c->pos += total;
        return 0;
    }

    /* Each string element takes at least its 8-byte length. */
    if (kv->arr_n > cur_left(c) / 8) {
        util_seterr(c->err, c->errlen,
               "gguf: key %llu '%s': array of %llu strings exceeds the %llu bytes left in the "
               "file",
               (unsigned long long)i, kb, (unsigned long long)kv->arr_n,
               (unsigned long long)cur_left(c));
        return -1;
    }
    uint64_t *offs = malloc(kv->arr_n ? kv->arr_n * sizeof *offs : 1);
    if (!offs) {
        util_seterr(c->err, c->errlen, "gguf: key '%s': out of memory for %llu string offsets", kb,
               (unsigned long long)kv->arr_n);
        return -1;
    }
    /* The hot loop of a big vocabulary: the label is only formatted when an element fails. */
    for (uint64_t j = 0; j < kv->arr_n; j++) {
        offs[j] = (uint64_t)(c->base + c->pos - kv->val);
        if (cur_left(c) >= 8) {
            uint64_t len = ld64(c->base + c->pos);
            if (len <= cur_left(c) - 8) {
                c->pos += 8 + len;
                continue;
            }
        }
        struct gguf_str s;
        snprintf(lbl, sizeof lbl, "element %llu of key %llu '%s'", (unsigned long long)j,
                 (unsigned long long)i, kb);
        (void)rd_str(c, &s, UINT64_MAX, lbl);   /* fails as above, and formats the message */
        free(offs);
        return -1;
    }
    kv->str_off = offs;
    return 0;
}

/* general.alignment: u32, nonzero, a power of two. */
static int read_alignment(struct gguf_impl *im, char *err, size_t errlen)
{
    struct gguf *g = &im->pub;
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    const struct gguf_kv *kv = gguf_find(g, "general.alignment");
    if (!kv) return 0;
    if (kv->type != GGUF_VT_UINT32) {
        util_seterr(err, errlen, "gguf: general.alignment has type %s, expected u32",
               vtype_name(kv->type));
        return -1;
    }
    uint32_t a = ld32(kv->val);
    if (a == 0 || (a & (a - 1)) || a > GGUF_MAX_ALIGNMENT) {
        util_seterr(err, errlen, "gguf: general.alignment %u is not a nonzero power of two <= %u", a,
               GGUF_MAX_ALIGNMENT);
        return -1;
    }
    g->alignment = a;
    return 0;
}

/* ---- tensors ---------------------------------------------------------------------------- */

static int parse_tensor(struct cur *c, struct gguf *g, uint64_t i)
{
    struct gguf_tensor *t = &g->tensors[i];
    char what[64], nb[96], lbl[160];
    snprintf(what, sizeof what, "tensor %llu name", (unsigned long long)i);
    if (rd_str(c, &t->name, GGUF_MAX_NAME_LEN, what)) return -1;
    if (check_name(c, &t->name, what)) return -1;
    safe_str((const uint8_t *)t->name.ptr, t->name.len, nb, sizeof nb);
    unsigned long long ti = (unsigned long long)i;

    snprintf(lbl, sizeof lbl, "n_dims of tensor %llu '%s'", ti, nb);
    if (rd_u32(c, &t->n_dims, lbl)) return -1;
    if (t->n_dims < 1 || t->n_dims > GGUF_MAX_DIMS) {
        util_seterr(c->err, c->errlen, "gguf: tensor %llu '%s': n_dims %u is not in 1..%d", ti, nb,
               t->n_dims, GGUF_MAX_DIMS);
        return -1;
    }
    uint64_t nelem = 1;
    for (uint32_t d = 0; d < GGUF_MAX_DIMS; d++) {
        t->ne[d] = 1;
        if (d >= t->n_dims) continue;
        snprintf(lbl, sizeof lbl, "ne[%u] of tensor %llu '%s'", d, ti, nb);
        if (rd_u64(c, &t->ne[d], lbl)) return -1;
        if (t->ne[d] == 0) {
            util_seterr(c->err, c->errlen, "gguf: tensor %llu '%s': ne[%u] is 0", ti, nb, d);
            return -1;
        }
        if (__builtin_mul_overflow(nelem, t->ne[d], &nelem) || nelem > (uint64_t)INT64_MAX) {
            util_seterr(c->err, c->errlen,
                   "gguf: tensor %llu '%s': element count overflows at ne[%u] = %llu", ti, nb, d,
                   (unsigned long long)t->ne[d]);
            return -1;
        }
    }
    snprintf(lbl, sizeof lbl, "the type of tensor %llu '%s'", ti, nb);
    if (rd_u32(c, &t->type, lbl)) return -1;
    uint64_t be = gguf_type_block_elems(t->type);
    if (!be) {
        util_seterr(c->err, c->errlen, "gguf: tensor %llu '%s': unknown tensor type %u", ti, nb,
               t->type);
        return -1;
    }
    if (t->ne[0] % be) {
        util_seterr(c->err, c->errlen,
               "gguf: tensor %llu '%s': ne[0] = %llu is not a multiple of the %s block size %llu",
               ti, nb, (unsigned long long)t->ne[0], gguf_type_name(t->type),
               (unsigned long long)be);
        return -1;
    }
    uint64_t rb, nbytes;
    if (gguf_row_bytes(t->type, t->ne[0], &rb) || __builtin_mul_overflow(rb, nelem / t->ne[0], &nbytes)) {
        util_seterr(c->err, c->errlen, "gguf: tensor %llu '%s': byte size overflows", ti, nb);
        return -1;
    }
    t->nbytes = nbytes;
    snprintf(lbl, sizeof lbl, "the data offset of tensor %llu '%s'", ti, nb);
    if (rd_u64(c, &t->offset, lbl)) return -1;
    if (t->offset % g->alignment) {
        util_seterr(c->err, c->errlen,
               "gguf: tensor %llu '%s': data offset %llu is not a multiple of the alignment %llu",
               ti, nb, (unsigned long long)t->offset, (unsigned long long)g->alignment);
        return -1;
    }
    return 0;
}

static int cmp_u64_pair(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    return x[0] < y[0] ? -1 : x[0] > y[0];
}

/* Every tensor's data inside the file, and no two overlapping. */
static int check_tensor_data(struct gguf *g, char *err, size_t errlen)
{
    char nb[96];
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        struct gguf_tensor *t = &g->tensors[i];
        uint64_t start, end;
        if (__builtin_add_overflow(g->data_offset, t->offset, &start) ||
            __builtin_add_overflow(start, t->nbytes, &end) || end > g->size) {
            util_seterr(err, errlen,
                   "gguf: tensor %llu '%s': data [%llu, %llu) past end of file (size %zu)",
                   (unsigned long long)i,
                   safe_str((const uint8_t *)t->name.ptr, t->name.len, nb, sizeof nb),
                   (unsigned long long)t->offset, (unsigned long long)t->offset + t->nbytes,
                   g->size);
            return -1;
        }
        t->data = g->map + start;
    }
    if (g->n_tensors < 2) return 0;
    /* Sort (offset, index) pairs and compare neighbours. */
    uint64_t *pairs = malloc(g->n_tensors * 2 * sizeof *pairs);
    if (!pairs) {
        util_seterr(err, errlen, "gguf: out of memory checking tensor overlap");
        return -1;
    }
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        pairs[2 * i] = g->tensors[i].offset;
        pairs[2 * i + 1] = i;
    }
    qsort(pairs, g->n_tensors, 2 * sizeof *pairs, cmp_u64_pair);
    for (uint64_t k = 1; k < g->n_tensors; k++) {
        const struct gguf_tensor *a = &g->tensors[pairs[2 * k - 2 + 1]];
        const struct gguf_tensor *b = &g->tensors[pairs[2 * k + 1]];
        if (a->offset + a->nbytes > b->offset) {
            char nb2[96];
            util_seterr(err, errlen,
                   "gguf: tensor %llu '%s' data [%llu, %llu) overlaps tensor %llu '%s' at %llu",
                   (unsigned long long)pairs[2 * k + 1],
                   safe_str((const uint8_t *)b->name.ptr, b->name.len, nb, sizeof nb),
                   (unsigned long long)b->offset, (unsigned long long)(b->offset + b->nbytes),
                   (unsigned long long)pairs[2 * k - 1],
                   safe_str((const uint8_t *)a->name.ptr, a->name.len, nb2, sizeof nb2),
                   (unsigned long long)a->offset);
            free(pairs);
            return -1;
        }
    }
    free(pairs);
    return 0;
}

/* ---- open/close ------------------------------------------------------------------------- */

static int parse(struct gguf_impl *im, char *err, size_t errlen)
{
    struct gguf *g = &im->pub;
    struct cur c = {g->map, g->size, 0, err, errlen};

    if (need(&c, 4, "the magic")) return -1;
    if (memcmp(g->map, GGUF_MAGIC, 4) != 0) {
        char b[32];
        util_seterr(err, errlen, "gguf: bad magic '%s' (not a GGUF file)",
               safe_str(g->map, 4, b, sizeof b));
        return -1;
    }
    c.pos = 4;
    if (rd_u32(&c, &g->version, "the version")) return -1;
    if (g->version == 1) {
        util_seterr(err, errlen,
               "gguf: version 1 (32-bit counts) is not supported; re-convert the model to GGUF v3");
        return -1;
    }
    if (g->version != 2 && g->version != 3) {
        if ((g->version & 0xffff) == 0 && g->version >> 16)
            util_seterr(err, errlen, "gguf: version %u unsupported (big-endian file?)", g->version);
        else
            util_seterr(err, errlen, "gguf: version %u unsupported (expected 2 or 3)", g->version);
        return -1;
    }
    if (rd_u64(&c, &g->n_tensors, "n_tensors")) return -1;
    if (rd_u64(&c, &g->n_kv, "n_kv")) return -1;
    uint64_t left = cur_left(&c);
    if (g->n_tensors > left / MIN_TENSOR_BYTES) {
        util_seterr(err, errlen,
               "gguf: n_tensors %llu is impossible: %llu bytes left hold at most %llu tensor infos",
               (unsigned long long)g->n_tensors, (unsigned long long)left,
               (unsigned long long)(left / MIN_TENSOR_BYTES));
        return -1;
    }
    if (g->n_kv > left / MIN_KV_BYTES ||
        g->n_kv * MIN_KV_BYTES + g->n_tensors * MIN_TENSOR_BYTES > left) {
        util_seterr(err, errlen,
               "gguf: n_kv %llu is impossible: %llu bytes left cannot hold %llu key/values and "
               "%llu tensor infos",
               (unsigned long long)g->n_kv, (unsigned long long)left,
               (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);
        return -1;
    }

    /* Counts are now bounded by the file size, so these allocations are too. */
    g->kv = calloc(g->n_kv ? g->n_kv : 1, sizeof *g->kv);
    g->tensors = calloc(g->n_tensors ? g->n_tensors : 1, sizeof *g->tensors);
    im->kv_hcap = hash_cap(g->n_kv);
    im->t_hcap = hash_cap(g->n_tensors);
    im->kv_hash = calloc(im->kv_hcap, sizeof *im->kv_hash);
    im->t_hash = calloc(im->t_hcap, sizeof *im->t_hash);
    if (!g->kv || !g->tensors || !im->kv_hash || !im->t_hash) {
        util_seterr(err, errlen, "gguf: out of memory for %llu keys and %llu tensors",
               (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors);
        return -1;
    }

    for (uint64_t i = 0; i < g->n_kv; i++) {
        if (parse_kv(&c, im, i)) return -1;
        long long dup = hash_insert(g, im->kv_hash, im->kv_hcap, kv_name, i);
        if (dup >= 0) {
            char kb[96];
            util_seterr(err, errlen, "gguf: duplicate key '%s' (entries %lld and %llu)",
                   safe_str((const uint8_t *)g->kv[i].key.ptr, g->kv[i].key.len, kb, sizeof kb),
                   dup, (unsigned long long)i);
            return -1;
        }
    }
    if (read_alignment(im, err, errlen)) return -1;

    for (uint64_t i = 0; i < g->n_tensors; i++) {
        if (parse_tensor(&c, g, i)) return -1;
        long long dup = hash_insert(g, im->t_hash, im->t_hcap, t_name, i);
        if (dup >= 0) {
            char nb[96];
            const struct gguf_tensor *t = &g->tensors[i];
            util_seterr(err, errlen, "gguf: duplicate tensor name '%s' (tensors %lld and %llu)",
                   safe_str((const uint8_t *)t->name.ptr, t->name.len, nb, sizeof nb), dup,
                   (unsigned long long)i);
            return -1;
        }
    }

    /* The data section starts at the next multiple of the alignment. */
    uint64_t pad = (g->alignment - c.pos % g->alignment) % g->alignment;
    g->data_offset = c.pos + pad;
    if (g->n_tensors > 0 && g->data_offset > g->size) {
        util_seterr(err, errlen, "gguf: data section at offset %llu is past end of file (size %zu)",
               (unsigned long long)g->data_offset, g->size);
        return -1;
    }
    return check_tensor_data(g, err, errlen);
}

void gguf_close(struct gguf *g)
{
    if (!g) return;
    struct gguf_impl *im = (struct gguf_impl *)g;
    if (g->kv)
        for (uint64_t i = 0; i < g->n_kv; i++) free((void *)g->kv[i].str_off);
    free(g->kv);
    free(g->tensors);
    free(im->kv_hash);
    free(im->t_hash);
    if (g->owns_map && g->map) munmap((void *)g->map, g->size);
    free(im);
}

static int open_common(struct gguf **out, const void *buf, size_t size, int owns, char *err,
                       size_t errlen)
{
    struct gguf_impl *im = calloc(1, sizeof *im);
    if (!im) {
        util_seterr(err, errlen, "gguf: out of memory");
        if (owns) munmap((void *)buf, size);
        return -1;
    }
    im->pub.map = buf;
    im->pub.size = size;
    im->pub.owns_map = owns;
    if (parse(im, err, errlen)) {
        gguf_close(&im->pub);
        return -1;
    }
    *out = &im->pub;
    return 0;
}

int gguf_open_mem(struct gguf **out, const void *buf, size_t size, char *err, size_t errlen)
{
    *out = NULL;
    if (!buf && size) {
        util_seterr(err, errlen, "gguf: NULL buffer");
        return -1;
    }
    if (!buf) buf = "";   /* an empty buffer: parse reports "truncated reading the magic" */
    return open_common(out, buf, size, 0, err, errlen);
}

int gguf_open(struct gguf **out, const char *path, char *err, size_t errlen)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        util_seterr(err, errlen, "gguf: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        util_seterr(err, errlen, "gguf: cannot stat %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        util_seterr(err, errlen, "gguf: %s is not a regular file", path);
        close(fd);
        return -1;
    }
    if (st.st_size == 0) {
        util_seterr(err, errlen, "gguf: %s is empty", path);
        close(fd);
        return -1;
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) {
        util_seterr(err, errlen, "gguf: cannot mmap %s: %s", path, strerror(e));
        return -1;
    }
    if (open_common(out, map, size, 1, err, errlen)) {
        /* Prefix the path so the user knows which file is bad. */
        if (err && errlen) {
            char tmp[1024];
            snprintf(tmp, sizeof tmp, "%s", err);
            const char *rest = strncmp(tmp, "gguf: ", 6) == 0 ? tmp + 6 : tmp;
            util_seterr(err, errlen, "gguf: %s: %s", path, rest);
        }
        return -1;
    }
    (*out)->file_dev = (uint64_t)st.st_dev;
    (*out)->file_ino = (uint64_t)st.st_ino;
    (*out)->file_size = (uint64_t)st.st_size;
    (*out)->file_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    (*out)->file_ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    return 0;
}

/* ---- lookups ---------------------------------------------------------------------------- */

const struct gguf_kv *gguf_find(const struct gguf *g, const char *key)
{
    const struct gguf_impl *im = (const struct gguf_impl *)g;
    long long i = hash_find(g, im->kv_hash, im->kv_hcap, kv_name, key, strlen(key));
    return i < 0 ? NULL : &g->kv[i];
}

const struct gguf_tensor *gguf_tensor(const struct gguf *g, const char *name)
{
    const struct gguf_impl *im = (const struct gguf_impl *)g;
    long long i = hash_find(g, im->t_hash, im->t_hcap, t_name, name, strlen(name));
    return i < 0 ? NULL : &g->tensors[i];
}

/* An integer value of type t at p, widened; 0 when t is not an integer type. */
static int load_int(uint32_t t, const uint8_t *p, int64_t *s, uint64_t *u, int *is_signed)
{
    *is_signed = 0;
    switch (t) {
    case GGUF_VT_UINT8: *u = p[0]; return 1;
    case GGUF_VT_UINT16: *u = ld16(p); return 1;
    case GGUF_VT_UINT32: *u = ld32(p); return 1;
    case GGUF_VT_UINT64: *u = ld64(p); return 1;
    case GGUF_VT_INT8: *s = (int8_t)p[0]; break;
    case GGUF_VT_INT16: *s = (int16_t)ld16(p); break;
    case GGUF_VT_INT32: *s = (int32_t)ld32(p); break;
    case GGUF_VT_INT64: *s = (int64_t)ld64(p); break;
    default: return 0;
    }
    *is_signed = 1;
    return 1;
}

/* Integer value converted to [lo, hi]; 0 ok, -2 wrong type or out of range. */
static int int_in_range(uint32_t t, const uint8_t *p, int64_t lo, uint64_t hi, int64_t *sv,
                        uint64_t *uv)
{
    int64_t s = 0;
    uint64_t u = 0;
    int sg;
    if (!load_int(t, p, &s, &u, &sg)) return -2;
    if (sg) {
        if (s < lo) return -2;
        if (s >= 0 && (uint64_t)s > hi) return -2;
        *sv = s;
        *uv = (uint64_t)s;
    } else {
        if (u > hi) return -2;
        *uv = u;
        *sv = (int64_t)u;   /* only used when hi <= INT64_MAX */
    }
    return 0;
}

/* The integer value of key within [lo, hi]: 0, -1 when the key is missing, -2 when it is
 * not an integer or out of range. */
static int get_int(const struct gguf *g, const char *key, int64_t lo, uint64_t hi, int64_t *sv,
                   uint64_t *uv)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv) return -1;
    return int_in_range(kv->type, kv->val, lo, hi, sv, uv) ? -2 : 0;
}

int gguf_get_u32(const struct gguf *g, const char *key, uint32_t *out)
{
    int64_t s;
    uint64_t u;
    int rc = get_int(g, key, 0, UINT32_MAX, &s, &u);
    if (rc == 0) *out = (uint32_t)u;
    return rc;
}

int gguf_get_u64(const struct gguf *g, const char *key, uint64_t *out)
{
    int64_t s;
    uint64_t u;
    int rc = get_int(g, key, 0, UINT64_MAX, &s, &u);
    if (rc == 0) *out = u;
    return rc;
}

int gguf_get_i32(const struct gguf *g, const char *key, int32_t *out)
{
    int64_t s;
    uint64_t u;
    int rc = get_int(g, key, INT32_MIN, INT32_MAX, &s, &u);
    if (rc == 0) *out = (int32_t)s;
    return rc;
}

static float ldf32(const uint8_t *p)
{
    uint32_t b = ld32(p);
    float f;
    memcpy(&f, &b, 4);
    return f;
}

static double ldf64(const uint8_t *p)
{
    uint64_t b = ld64(p);
    double d;
    memcpy(&d, &b, 8);
    return d;
}

int gguf_get_f32(const struct gguf *g, const char *key, float *out)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv) return -1;
    if (kv->type == GGUF_VT_FLOAT32) *out = ldf32(kv->val);
    else if (kv->type == GGUF_VT_FLOAT64) *out = (float)ldf64(kv->val);
    else return -2;
    return 0;
}

int gguf_get_bool(const struct gguf *g, const char *key, int *out)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv) return -1;
    if (kv->type != GGUF_VT_BOOL) return -2;
    *out = kv->val[0] != 0;
    return 0;
}

int gguf_get_str(const struct gguf *g, const char *key, struct gguf_str *out)
{
    const struct gguf_kv *kv = gguf_find(g, key);
    if (!kv) return -1;
    if (kv->type != GGUF_VT_STRING) return -2;
    out->len = ld64(kv->val);
    out->ptr = (const char *)kv->val + 8;
    return 0;
}

int gguf_arr_str(const struct gguf_kv *kv, uint64_t i, struct gguf_str *out)
{
    if (!kv) return -1;
    if (kv->type != GGUF_VT_ARRAY || kv->arr_type != GGUF_VT_STRING || i >= kv->arr_n) return -2;
    const uint8_t *p = kv->val + kv->str_off[i];
    out->len = ld64(p);
    out->ptr = (const char *)p + 8;
    return 0;
}

int gguf_arr_f32(const struct gguf_kv *kv, uint64_t i, float *out)
{
    if (!kv) return -1;
    if (kv->type != GGUF_VT_ARRAY || i >= kv->arr_n) return -2;
    if (kv->arr_type == GGUF_VT_FLOAT32) *out = ldf32(kv->val + 4 * i);
    else if (kv->arr_type == GGUF_VT_FLOAT64) *out = (float)ldf64(kv->val + 8 * i);
    else return -2;
    return 0;
}

int gguf_arr_i32(const struct gguf_kv *kv, uint64_t i, int32_t *out)
{
    if (!kv) return -1;
    if (kv->type != GGUF_VT_ARRAY || i >= kv->arr_n) return -2;
    uint64_t esz = gguf_vtype_size(kv->arr_type);
    if (!esz || kv->arr_type == GGUF_VT_BOOL || kv->arr_type == GGUF_VT_FLOAT32 ||
        kv->arr_type == GGUF_VT_FLOAT64)
        return -2;
    int64_t s;
    uint64_t u;
    if (int_in_range(kv->arr_type, kv->val + esz * i, INT32_MIN, INT32_MAX, &s, &u)) return -2;
    *out = (int32_t)s;
    return 0;
}

const char *gguf_arch_key(const struct gguf *g, const char *suffix, char *buf, size_t n)
{
    struct gguf_str a;
    if (gguf_get_str(g, "general.architecture", &a) != 0 || a.len == 0 || a.len > 64) return NULL;
    int w = snprintf(buf, n, "%.*s.%s", (int)a.len, a.ptr, suffix);
    if (w < 0 || (size_t)w >= n) return NULL;
    return buf;
}
