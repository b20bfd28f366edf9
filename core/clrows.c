/* core/clrows: each cluster's rows sealed together (see clrows.h). */
#include "core/clrows.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "core/cluster.h"
#include "core/enclave.h"
#include "core/qrow.h"
#include "core/util.h"

#define KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_BYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
/* Scratch layout: the key, then one blob (nonce | page | tag) opened in place; the page
 * (norms, then rows) starts 8-byte aligned. */
#define BLOB_AT 64

struct clrows {
    const struct cluster *cl;
    uint32_t type;
    size_t row_bytes;
    int dim;
    int32_t n_clusters;
    int maxm;                   /* largest cluster */
    size_t page_len;            /* maxm norms (double), then maxm rows as stored */
    size_t blob_len;            /* NONCE_BYTES + page_len + TAG_BYTES */
    int fd;
    uint8_t *scratch;           /* guarded: key, one blob */
    size_t scratch_len;
    int failed;
};

static size_t page_bytes(int maxm, size_t row_bytes)
{
    return (size_t)maxm * (sizeof(double) + row_bytes);
}

size_t clrows_scratch_bytes(int max_members, size_t row_bytes)
{
    return BLOB_AT + NONCE_BYTES + page_bytes(max_members, row_bytes) + TAG_BYTES;
}

static void make_ad(uint8_t ad[8], int32_t cid)
{
    for (int i = 0; i < 8; i++) ad[i] = (uint8_t)((uint64_t)cid >> (8 * i));
}

/* sqrt of the sum of squares in element order, in double: the norm core/mech computes. */
static double norm_of(const float *x, int dim)
{
    double s = 0;
    for (int d = 0; d < dim; d++) s += (double)x[d] * x[d];
    return sqrt(s);
}

#define OUT_BLOBS 64   /* blobs written per pwrite */

/* Seals clusters [c0, c1), whose members' rows are raw (in member order), and writes them
 * OUT_BLOBS at a time from out. row: one dequantized row of scratch. */
static int seal_run(struct clrows *r, int32_t c0, int32_t c1, const uint8_t *raw, uint8_t *out,
                    uint8_t *page, float *row, char *err, size_t errlen)
{
    const uint8_t *key = r->scratch;
    for (int32_t c = c0; c < c1; c++) {
        uint8_t *blob = out + (size_t)((c - c0) % OUT_BLOBS) * r->blob_len;
        const int32_t *mem;
        int m = cluster_members(r->cl, c, &mem);
        memset(page, 0, r->page_len);
        double *nrm = (double *)(void *)page;
        uint8_t *rows = page + (size_t)r->maxm * sizeof(double);
        for (int i = 0; i < m; i++, raw += r->row_bytes) {
            if (qrow_dequant(r->type, raw, row, (size_t)r->dim) != 0)
                return util_seterr(err, errlen, "clrows: cannot decode a row of type %u",
                                   (unsigned)r->type);
            nrm[i] = norm_of(row, r->dim);
            memcpy(rows + (size_t)i * r->row_bytes, raw, r->row_bytes);
        }
        uint8_t ad[8];
        make_ad(ad, c);
        randombytes_buf(blob, NONCE_BYTES);
        crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
            blob + NONCE_BYTES, blob + NONCE_BYTES + r->page_len, NULL, page, r->page_len, ad,
            sizeof ad, NULL, blob, key);
        if ((c - c0) % OUT_BLOBS == OUT_BLOBS - 1 || c == c1 - 1) {
            int32_t b0 = c - (c - c0) % OUT_BLOBS;
            size_t len = (size_t)(c + 1 - b0) * r->blob_len;
            ssize_t w = pwrite(r->fd, out, len, (off_t)((size_t)b0 * r->blob_len));
            if (w != (ssize_t)len)
                return util_seterr(err, errlen, "clrows: cannot write the sealed rows (%s)",
                                   w < 0 ? "write error" : "short write; disk full?");
        }
    }
    return 0;
}

/* Writes every cluster's blob, a run of consecutive clusters at a time (members are
 * contiguous in cluster order, so a run is one batch of the source: each table page is
 * brought in once per run). Nothing here depends on the user: the rows and the partition
 * are public, and so is the order. */
static int build(struct clrows *r, const struct clrows_source *src, char *err, size_t errlen)
{
    /* Few runs: each one walks the table's swap once (most of the time this takes). */
    const size_t run_bytes = (size_t)64 << 20;
    size_t cap = run_bytes / r->row_bytes;
    if (cap < (size_t)r->maxm) cap = (size_t)r->maxm;
    uint8_t *raw = malloc(cap * r->row_bytes);
    uint8_t *out = malloc(OUT_BLOBS * r->blob_len);
    uint8_t *page = malloc(r->page_len);
    float *row = malloc((size_t)r->dim * sizeof *row);
    int rc = raw && out && page && row ? 0 : util_seterr(err, errlen, "clrows: out of memory");
    for (int32_t c0 = 0; c0 < r->n_clusters && rc == 0;) {
        const int32_t *first;
        cluster_members(r->cl, c0, &first);
        int32_t c1 = c0;
        size_t span = 0;
        while (c1 < r->n_clusters) {
            const int32_t *mem;
            int m = cluster_members(r->cl, c1, &mem);
            if (c1 > c0 && (span + (size_t)m > cap || mem != first + span)) break;
            span += (size_t)m;
            c1++;
        }
        if (span > 0 && src->raw(src->ctx, first, span, raw) != 0) {
            rc = util_seterr(err, errlen, "clrows: cannot read the rows of clusters %d..%d",
                             (int)c0, (int)c1 - 1);
        } else {
            rc = seal_run(r, c0, c1, raw, out, page, row, err, errlen);
        }
        c0 = c1;
    }
    UTIL_FREE(raw, out, page, row);
    return rc;
}

int clrows_open(struct clrows **out, const struct cluster *cl, const struct clrows_source *src,
                const char *dir, char *err, size_t errlen)
{
    *out = NULL;
    if (src->dim <= 0 || src->row_bytes == 0 || qrow_bytes(src->type, (size_t)src->dim) !=
                                                     src->row_bytes)
        return util_seterr(err, errlen, "clrows: rows of type %u and %zu bytes do not fit dim %d",
                           (unsigned)src->type, src->row_bytes, src->dim);
    struct clrows *r = calloc(1, sizeof *r);
    if (!r) return util_seterr(err, errlen, "clrows: out of memory");
    r->fd = -1;
    r->cl = cl;
    r->type = src->type;
    r->row_bytes = src->row_bytes;
    r->dim = src->dim;
    r->n_clusters = cluster_count(cl);
    r->maxm = 1;
    for (int32_t c = 0; c < r->n_clusters; c++) {
        const int32_t *mem;
        int m = cluster_members(cl, c, &mem);
        if (m > r->maxm) r->maxm = m;
    }
    r->page_len = page_bytes(r->maxm, r->row_bytes);
    r->blob_len = NONCE_BYTES + r->page_len + TAG_BYTES;
    r->scratch_len = clrows_scratch_bytes(r->maxm, r->row_bytes);
    char e[160], path[PATH_MAX];
    r->scratch = enclave_scratch_alloc(r->scratch_len, e, sizeof e);
    if (!r->scratch) {
        util_seterr(err, errlen, "clrows: cannot allocate guarded scratch: %s", e);
        clrows_close(r);
        return -1;
    }
    crypto_aead_xchacha20poly1305_ietf_keygen(r->scratch);
    util_pick_dir(dir, path, sizeof path);
    if ((r->fd = util_tmpfile(path, "clrows", err, errlen)) < 0 ||
        build(r, src, err, errlen) != 0) {
        clrows_close(r);
        return -1;
    }
    *out = r;
    return 0;
}

void clrows_close(struct clrows *r)
{
    if (!r) return;
    enclave_scratch_free(r->scratch);
    if (r->fd >= 0) {
        /* Drop the ciphertext (the file has no name; this frees its blocks now). */
        if (ftruncate(r->fd, 0) != 0) { /* close releases it */ }
        close(r->fd);
    }
    free(r);
}

int clrows_get(struct clrows *r, int32_t cid, float *rows, double *norms, char *err,
               size_t errlen)
{
    if (cid < 0 || cid >= r->n_clusters) return util_seterr(err, errlen, "clrows: no such cluster");
    const int32_t *mem;
    size_t m = (size_t)cluster_members(r->cl, cid, &mem);
    uint8_t *blob = r->scratch + BLOB_AT, *page = blob + NONCE_BYTES;
    int rc = -1;
    if (r->failed) {
        util_seterr(err, errlen, "clrows: the sealed rows failed a check earlier; refusing");
    } else if (pread(r->fd, blob, r->blob_len, (off_t)((size_t)cid * r->blob_len)) !=
               (ssize_t)r->blob_len) {
        r->failed = 1;
        util_seterr(err, errlen, "clrows: sealed rows missing (file truncated or unreadable); "
                                 "refusing to continue");
    } else {
        uint8_t ad[8];
        make_ad(ad, cid);
        /* Opened in place: the page replaces its ciphertext in the guarded scratch. */
        if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                page, NULL, page, r->page_len, page + r->page_len, ad, sizeof ad, blob,
                r->scratch) != 0) {
            r->failed = 1;
            util_seterr(err, errlen, "clrows: sealed rows failed authentication (file tampered "
                                     "with or corrupted); refusing to continue");
        } else {
            rc = 0;
            if (norms) memcpy(norms, page, m * sizeof *norms);
            const uint8_t *src = page + (size_t)r->maxm * sizeof(double);
            for (size_t i = 0; i < m && rc == 0; i++)
                rc = qrow_dequant(r->type, src + i * r->row_bytes, rows + i * (size_t)r->dim,
                                  (size_t)r->dim);
            if (rc != 0) util_seterr(err, errlen, "clrows: cannot decode a stored row");
        }
    }
    sodium_memzero(blob, r->blob_len);
    if (rc != 0) {
        if (norms) sodium_memzero(norms, m * sizeof *norms);
        sodium_memzero(rows, m * (size_t)r->dim * sizeof *rows);
    }
    return rc;
}

void clrows_where(const struct clrows *r, struct enclave_where *w)
{
    if (r) enclave_scratch_where(r->scratch, w);
}

int clrows_fd(const struct clrows *r) { return r->fd; }
size_t clrows_blob_bytes(const struct clrows *r) { return r->blob_len; }
