/* core/embed: token_embd behind the boundary (see embed.h). */
#include "core/embed.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sodium.h>

#include "core/gguf.h"
#include "core/qrow.h"
#include "core/swap.h"

struct embed {
    struct swap *swap;
    pthread_mutex_t lock;       /* lookups may come from several threads (chat UI, decoder) */
    uint32_t type;
    int dim;
    int32_t n_vocab;
    size_t row_bytes, rows_per_page;
    uint64_t n_pages;
    uint8_t fingerprint[32];
    /* The table in the GGUF mapping: read by public lookups while it stays readable, and
     * sealed into the swap, whole, before the first secret lookup. */
    const struct gguf *g;
    const struct gguf_tensor *t;
    int keep_mapping;
    int sealed;                 /* every page is in the swap file */
};

/* Makes the whole pages of token_embd in the GGUF mapping inaccessible, except where the
 * table must or cannot stay: kept on request (tests), tied embeddings (the decoder keeps
 * token_embd as its output projection), a model in a caller's buffer, or a table smaller
 * than a page. */
static void unmap_table(const struct gguf *g, const struct gguf_tensor *t, int keep)
{
    if (keep || gguf_tensor(g, "output.weight") == NULL || !g->owns_map) return;
    long psl = sysconf(_SC_PAGESIZE);
    uintptr_t ps = psl > 0 ? (uintptr_t)psl : 4096;
    uintptr_t a = ((uintptr_t)t->data + ps - 1) & ~(ps - 1);
    uintptr_t b = ((uintptr_t)t->data + t->nbytes) & ~(ps - 1);
    if (b <= a) return;
    /* The mapping is read-only and private; PROT_NONE makes any later lookup there fault
     * and MADV_DONTNEED drops the pages from this process (the file itself is public).
     * Should mprotect fail, the table simply stays mapped. */
    if (mprotect((void *)a, b - a, PROT_NONE) != 0) return;
    if (madvise((void *)a, b - a, MADV_DONTNEED) != 0) { /* best effort: already PROT_NONE */ }
}

static int seal_table(struct embed *e, char *err, size_t errlen);

int embed_open(struct embed **out, const struct gguf *g, const struct embed_options *o,
               char *err, size_t errlen)
{
    *out = NULL;
    const struct gguf_tensor *t = gguf_tensor(g, "token_embd.weight");
    if (!t) {
        snprintf(err, errlen, "embed: model has no token_embd.weight tensor");
        return -1;
    }
    if (t->n_dims != 2 || t->ne[0] == 0 || t->ne[1] == 0 || t->ne[0] > (1 << 20) ||
        t->ne[1] > (1u << 30)) {
        snprintf(err, errlen, "embed: token_embd.weight has an unusable shape");
        return -1;
    }
    size_t rb = qrow_bytes(t->type, (size_t)t->ne[0]);
    if (rb == 0) {
        snprintf(err, errlen, "embed: token_embd.weight type %s is not supported",
                 gguf_type_name(t->type));
        return -1;
    }
    if ((uint64_t)rb * t->ne[1] != t->nbytes) {
        snprintf(err, errlen, "embed: token_embd.weight size %llu does not match its shape",
                 (unsigned long long)t->nbytes);
        return -1;
    }
    struct embed *e = calloc(1, sizeof *e);
    if (!e) {
        snprintf(err, errlen, "embed: out of memory");
        return -1;
    }
    if (pthread_mutex_init(&e->lock, NULL) != 0) {
        free(e);
        snprintf(err, errlen, "embed: cannot create a mutex");
        return -1;
    }
    e->type = t->type;
    e->dim = (int)t->ne[0];
    e->n_vocab = (int32_t)t->ne[1];
    e->row_bytes = rb;

    /* Page geometry: a whole number of rows per page; pages small enough that the cache
     * holds at least four of them when the budget is small. */
    size_t cache = o->cache_bytes ? o->cache_bytes : t->nbytes;
    size_t target = o->page_bytes ? o->page_bytes : 64 * 1024;
    if (cache / 4 < target) target = cache / 4;
    e->rows_per_page = target / rb ? target / rb : 1;
    if (e->rows_per_page > (size_t)e->n_vocab) e->rows_per_page = (size_t)e->n_vocab;
    size_t page = e->rows_per_page * rb;
    uint64_t n_pages = ((uint64_t)e->n_vocab + e->rows_per_page - 1) / e->rows_per_page;
    size_t slots = cache / page;
    if (slots < 2) slots = 2;
    if (swap_open(&e->swap, page, n_pages, slots, o->swap_dir, o->enclave_flags, err,
                  errlen) != 0) {
        pthread_mutex_destroy(&e->lock);
        free(e);
        return -1;
    }

    e->n_pages = n_pages;
    e->g = g;
    e->t = t;
    e->keep_mapping = o->keep_mapping;

    /* The cache key: what names this table in this file, not a hash of its 215 MB. */
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof e->fingerprint);
    uint64_t shape[4] = {t->type, t->ne[0], t->ne[1], t->offset};
    if (g->owns_map && g->file_ino) {
        uint64_t id[5] = {g->file_dev, g->file_ino, g->file_size, (uint64_t)g->file_mtime_ns,
                          (uint64_t)g->file_ctime_ns};
        crypto_generichash_update(&h, (const uint8_t *)"cmif-table-file-v1", 18);
        crypto_generichash_update(&h, (const uint8_t *)shape, sizeof shape);
        crypto_generichash_update(&h, (const uint8_t *)id, sizeof id);
    } else {
        crypto_generichash_update(&h, (const uint8_t *)shape, sizeof shape);
        crypto_generichash_update(&h, t->data, (size_t)t->nbytes);
    }
    crypto_generichash_final(&h, e->fingerprint, sizeof e->fingerprint);
    /* A small table is sealed at once, as it always was: it costs about a millisecond per
     * MB (encryption and the write), so only a large one waits for a secret lookup. */
    size_t lazy_min = o->lazy_min_bytes ? o->lazy_min_bytes : EMBED_LAZY_MIN;
    if (t->nbytes < lazy_min && seal_table(e, err, errlen) != 0) {
        embed_close(e);
        return -1;
    }
    *out = e;
    return 0;
}

void embed_close(struct embed *e)
{
    if (!e) return;
    swap_close(e->swap);
    pthread_mutex_destroy(&e->lock);
    free(e);
}

int embed_dim(const struct embed *e) { return e->dim; }
int embed_sealed(const struct embed *e) { return e->sealed; }
int32_t embed_n_vocab(const struct embed *e) { return e->n_vocab; }
struct swap *embed_swap(const struct embed *e) { return e->swap; }
const uint8_t *embed_fingerprint(const struct embed *e) { return e->fingerprint; }

/* Seals the whole table into the swap, in page order (the same work whatever the lookup
 * that asked for it), then hides it in the mapping unless the decoder needs it there. */
static int seal_table(struct embed *e, char *err, size_t errlen)
{
    if (e->sealed) return 0;
    struct swap_stats st;
    swap_stats(e->swap, &st);
    if (e->n_pages <= st.n_slots) {
        /* It fits in the guarded cache: load it there, nothing goes to the file. */
        const uint8_t *src = e->t->data;
        if (swap_begin(e->swap, err, errlen) != 0) return -1;
        for (uint64_t p = 0; p < e->n_pages; p++) {
            uint8_t *dst;
            size_t first = (size_t)p * e->rows_per_page, rows = e->rows_per_page;
            if (first + rows > (size_t)e->n_vocab) rows = (size_t)e->n_vocab - first;
            if (swap_get(e->swap, p, 1, &dst, err, errlen) != 0) {
                char e2[160];
                swap_end(e->swap, e2, sizeof e2);   /* the first error is the one to report */
                return -1;
            }
            memcpy(dst, src + first * e->row_bytes, rows * e->row_bytes);
        }
        if (swap_end(e->swap, err, errlen) != 0) return -1;
    } else if (swap_put(e->swap, 0, e->n_pages, e->t->data, (size_t)e->t->nbytes, err,
                        errlen) != 0) {
        return -1;
    }
    e->sealed = 1;
    unmap_table(e->g, e->t, e->keep_mapping);
    return 0;
}

int embed_seal(struct embed *e, char *err, size_t errlen)
{
    pthread_mutex_lock(&e->lock);
    int rc = seal_table(e, err, errlen);
    pthread_mutex_unlock(&e->lock);
    return rc;
}

static int check_ids(const struct embed *e, const int32_t *ids, size_t n, float *out,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= e->n_vocab) {
            memset(out, 0, n * (size_t)e->dim * sizeof *out);
            snprintf(err, errlen, "embed: token id %ld out of range (vocabulary %ld)",
                     (long)ids[i], (long)e->n_vocab);
            return -1;
        }
    }
    return 0;
}

int embed_rows_public(struct embed *e, const int32_t *ids, size_t n, float *out, char *err,
                      size_t errlen)
{
    if (check_ids(e, ids, n, out, err, errlen) != 0) return -1;
    pthread_mutex_lock(&e->lock);
    if (e->sealed) {
        /* As every lookup went before: through the swap, whose page-ins only the OS sees,
         * as it sees those of the secret lookups themselves. */
        pthread_mutex_unlock(&e->lock);
        return embed_rows(e, ids, n, out, err, errlen);
    }
    /* Straight from the mapping, never through the swap's cache; under the lock, so a
     * secret lookup cannot seal and hide the mapping meanwhile. */
    const uint8_t *tab = e->t->data;
    size_t dim = (size_t)e->dim;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        if (qrow_dequant(e->type, tab + (size_t)ids[i] * e->row_bytes, out + i * dim, e->dim) !=
            0) {
            snprintf(err, errlen, "embed: cannot dequantize a %s row", gguf_type_name(e->type));
            rc = -1;
        }
    pthread_mutex_unlock(&e->lock);
    if (rc != 0) memset(out, 0, n * dim * sizeof *out);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Rows of ids into out (n x dim floats) or, when out is NULL, as stored into raw (n x
 * row_bytes bytes); on failure the whole destination is zeroed. */
static int fetch_rows(struct embed *e, const int32_t *ids, size_t n, float *out, uint8_t *raw,
                      char *err, size_t errlen)
{
    size_t dim = (size_t)e->dim;
    size_t dst_bytes = out ? n * dim * sizeof *out : n * e->row_bytes;
    void *dst = out ? (void *)out : (void *)raw;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= e->n_vocab) {
            memset(dst, 0, dst_bytes);
            snprintf(err, errlen, "embed: token id %ld out of range (vocabulary %ld)",
                     (long)ids[i], (long)e->n_vocab);
            return -1;
        }
    }
    pthread_mutex_lock(&e->lock);
    if (seal_table(e, err, errlen) != 0 || swap_begin(e->swap, err, errlen) != 0) {
        pthread_mutex_unlock(&e->lock);
        memset(dst, 0, dst_bytes);
        return -1;
    }
    /* Rows are fetched page by page (each page brought in once per call, however the ids
     * are spread), then written to their places in out: with most of the table in the
     * swap, a batch in the caller's order would bring a page in for nearly every row. */
    uint64_t *order = n > 1 && n <= UINT32_MAX ? malloc(n * sizeof *order) : NULL;
    if (order) {
        for (size_t i = 0; i < n; i++) order[i] = (uint64_t)ids[i] << 32 | (uint64_t)i;
        qsort(order, n, sizeof *order, cmp_u64);
    }
    int rc = 0;
    for (size_t k = 0; k < n && rc == 0; k++) {
        size_t i = order ? (size_t)(order[k] & 0xffffffffu) : k;
        size_t id = (size_t)ids[i];
        uint8_t *pg;
        rc = swap_get(e->swap, id / e->rows_per_page, 0, &pg, err, errlen);
        const uint8_t *src = rc == 0 ? pg + (id % e->rows_per_page) * e->row_bytes : NULL;
        if (src && !out) memcpy(raw + i * e->row_bytes, src, e->row_bytes);
        else if (src && qrow_dequant(e->type, src, out + i * dim, dim) != 0) {
            snprintf(err, errlen, "embed: cannot dequantize a %s row", gguf_type_name(e->type));
            rc = -1;
        }
    }
    free(order);
    char err2[160];
    if (swap_end(e->swap, err2, sizeof err2) != 0 && rc == 0) {
        snprintf(err, errlen, "%s", err2);
        rc = -1;
    }
    pthread_mutex_unlock(&e->lock);
    if (rc != 0) memset(dst, 0, dst_bytes);
    return rc;
}

int embed_rows(struct embed *e, const int32_t *ids, size_t n, float *out, char *err,
               size_t errlen)
{
    return fetch_rows(e, ids, n, out, NULL, err, errlen);
}

int embed_rows_raw(struct embed *e, const int32_t *ids, size_t n, uint8_t *out, char *err,
                   size_t errlen)
{
    /* The stores that copy rows read a fixed set at open (every cluster's members, in
     * cluster order): public, so from the mapping until the table is sealed, as
     * embed_rows_public. */
    pthread_mutex_lock(&e->lock);
    if (!e->sealed) {
        for (size_t i = 0; i < n; i++) {
            if (ids[i] < 0 || ids[i] >= e->n_vocab) {
                pthread_mutex_unlock(&e->lock);
                memset(out, 0, n * e->row_bytes);
                snprintf(err, errlen, "embed: token id %ld out of range (vocabulary %ld)",
                         (long)ids[i], (long)e->n_vocab);
                return -1;
            }
            memcpy(out + i * e->row_bytes, (const uint8_t *)e->t->data + (size_t)ids[i] * e->row_bytes,
                   e->row_bytes);
        }
        pthread_mutex_unlock(&e->lock);
        return 0;
    }
    pthread_mutex_unlock(&e->lock);
    return fetch_rows(e, ids, n, NULL, out, err, errlen);
}

uint32_t embed_type(const struct embed *e) { return e->type; }
size_t embed_row_bytes(const struct embed *e) { return e->row_bytes; }

int embed_row(struct embed *e, int32_t id, float *out, char *err, size_t errlen)
{
    return embed_rows(e, &id, 1, out, err, errlen);
}
