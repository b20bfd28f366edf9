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
    uint8_t fingerprint[32];
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

    /* Stream the table in page by page; pages that do not fit are sealed out to the swap
     * file by the cache's own eviction. */
    crypto_generichash_state h;
    crypto_generichash_init(&h, NULL, 0, sizeof e->fingerprint);
    uint64_t shape[3] = {t->type, t->ne[0], t->ne[1]};
    crypto_generichash_update(&h, (const uint8_t *)shape, sizeof shape);
    const uint8_t *src = t->data;
    if (swap_begin(e->swap, err, errlen) != 0) {
        embed_close(e);
        return -1;
    }
    for (uint64_t p = 0; p < n_pages; p++) {
        uint8_t *dst;
        size_t first = (size_t)p * e->rows_per_page;
        size_t rows = e->rows_per_page;
        if (first + rows > (size_t)e->n_vocab) rows = (size_t)e->n_vocab - first;
        if (swap_get(e->swap, p, 1, &dst, err, errlen) != 0) {
            char e2[160];
            swap_end(e->swap, e2, sizeof e2);   /* the first error is the one to report */
            embed_close(e);
            return -1;
        }
        memcpy(dst, src + first * rb, rows * rb);
        crypto_generichash_update(&h, src + first * rb, rows * rb);
    }
    if (swap_end(e->swap, err, errlen) != 0) {
        embed_close(e);
        return -1;
    }
    crypto_generichash_final(&h, e->fingerprint, sizeof e->fingerprint);
    unmap_table(g, t, o->keep_mapping);
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
int32_t embed_n_vocab(const struct embed *e) { return e->n_vocab; }
struct swap *embed_swap(const struct embed *e) { return e->swap; }
const uint8_t *embed_fingerprint(const struct embed *e) { return e->fingerprint; }

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
    if (swap_begin(e->swap, err, errlen) != 0) {
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
    return fetch_rows(e, ids, n, NULL, out, err, errlen);
}

uint32_t embed_type(const struct embed *e) { return e->type; }
size_t embed_row_bytes(const struct embed *e) { return e->row_bytes; }

int embed_row(struct embed *e, int32_t id, float *out, char *err, size_t errlen)
{
    return embed_rows(e, &id, 1, out, err, errlen);
}
