/* core/clrows: each cluster's rows sealed together (see clrows.h). */
#include "core/clrows.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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
/* A kept store ends with a trailer: magic | nonce | sealed (cluster count, blob size) | tag,
 * sealed with the blobs' key under the store's identity, so a file of another table or
 * partition, or under another user secret, is refused when it opens. */
#define TRAILER_MAGIC "CMIFCRS1"
#define TRAILER_PLAIN 16
#define TRAILER_BYTES (8 + NONCE_BYTES + TRAILER_PLAIN + TAG_BYTES)
#define AD_BYTES (8 + 32)

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
    struct clrows_source src;   /* to rebuild a kept store found damaged on a read */
    unsigned char id[32];       /* the caller's fingerprint, the row format and the partition */
    int kept;                   /* fd is the file at path, kept across runs */
    int from_cache;             /* it was opened, not built */
    int rebuilt;                /* a kept store already rebuilt once in this process */
    char dir[PATH_MAX];         /* a per-process store's folder */
    char path[PATH_MAX];        /* the kept store's file; "" when none */
    char note[PATH_MAX + 256];
    void (*log)(void *ctx, const char *msg);
    void *log_ctx;
    int quiet;
};

static size_t page_bytes(int maxm, size_t row_bytes)
{
    return (size_t)maxm * (sizeof(double) + row_bytes);
}

size_t clrows_scratch_bytes(int max_members, size_t row_bytes)
{
    return BLOB_AT + NONCE_BYTES + page_bytes(max_members, row_bytes) + TAG_BYTES;
}

/* A blob's associated data: its cluster index and the store's identity (the trailer's: index
 * -1), so a blob moved to another cluster's place or taken from another table's store is
 * refused. */
static void make_ad(uint8_t ad[AD_BYTES], const struct clrows *r, int32_t cid)
{
    for (int i = 0; i < 8; i++) ad[i] = (uint8_t)((uint64_t)(int64_t)cid >> (8 * i));
    memcpy(ad + 8, r->id, 32);
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
        uint8_t ad[AD_BYTES];
        make_ad(ad, r, c);
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
                                   w < 0 ? strerror(errno) : "short write; disk full?");
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

static void note(struct clrows *r, const char *fmt, const char *why)
{
    snprintf(r->note, sizeof r->note, fmt, r->path, why);
    if (r->quiet) return;
    if (r->log) r->log(r->log_ctx, r->note);
    else fprintf(stderr, "cmif: %s\n", r->note);
}

/* The store's identity: the caller's fingerprint (table and vocabulary), the row format and
 * the partition itself, so the rows of one table and partition are never read as another's. */
static void store_id(struct clrows *r, const unsigned char *fingerprint)
{
    static const unsigned char none[32];
    uint64_t hdr[5] = {1 /* layout version */, r->type, r->row_bytes, (uint64_t)r->dim,
                       (uint64_t)r->maxm};
    crypto_generichash_state hs;
    crypto_generichash_init(&hs, NULL, 0, sizeof r->id);
    crypto_generichash_update(&hs, (const unsigned char *)"cmif-clrows", 11);
    crypto_generichash_update(&hs, fingerprint ? fingerprint : none, 32);
    crypto_generichash_update(&hs, (const unsigned char *)hdr, sizeof hdr);
    for (int32_t c = 0; c < r->n_clusters; c++) {
        const int32_t *mem;
        uint32_t m = (uint32_t)cluster_members(r->cl, c, &mem);
        crypto_generichash_update(&hs, (const unsigned char *)&m, sizeof m);
        crypto_generichash_update(&hs, (const unsigned char *)mem, m * sizeof *mem);
    }
    crypto_generichash_final(&hs, r->id, sizeof r->id);
}

/* The kept store's key (into the guarded scratch) and file name, both derived from the
 * per-user cache secret (the cluster cache's, core/cluster.c says what that protects): a
 * store written by someone who cannot read the secret is refused, and the name, a keyed
 * hash, does not say which model it belongs to. 0, or -1 with r->note. */
static int kept_prepare(struct clrows *r, const char *cache_dir)
{
    unsigned char master[32], namekey[32], name[16];
    if (util_mkdirs(cache_dir) != 0) {
        snprintf(r->note, sizeof r->note, "cannot create cache directory %s: %s", cache_dir,
                 strerror(errno));
        return -1;
    }
    if (util_user_secret(cache_dir, master, r->note, sizeof r->note) != 0) return -1;
    crypto_kdf_derive_from_key(r->scratch, KEY_BYTES, 1, "cmifrows", master);
    crypto_kdf_derive_from_key(namekey, sizeof namekey, 2, "cmifrows", master);
    sodium_memzero(master, sizeof master);
    crypto_generichash(name, sizeof name, r->id, sizeof r->id, namekey, sizeof namekey);
    sodium_memzero(namekey, sizeof namekey);
    char hex[2 * sizeof name + 1];
    sodium_bin2hex(hex, sizeof hex, name, sizeof name);
    if (snprintf(r->path, sizeof r->path, "%s/clrows-%s.bin", cache_dir, hex) >=
        (int)sizeof r->path) {
        snprintf(r->note, sizeof r->note, "cache path too long");
        r->path[0] = 0;
        return -1;
    }
    return 0;
}

static off_t trailer_at(const struct clrows *r)
{
    return (off_t)((size_t)r->n_clusters * r->blob_len);
}

/* Opens the kept store at r->path: 0 when its trailer is this store's (the blobs themselves
 * are checked on each read), 1 when there is none, -1 with r->note when one is there but
 * refused (truncated, of another table or partition, or sealed under another secret). */
static int kept_open(struct clrows *r)
{
    int fd = open(r->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return 1;
    const char *why = NULL;
    struct stat st;
    uint8_t t[TRAILER_BYTES], plain[TRAILER_PLAIN], ad[AD_BYTES];
    if (fd < 0) why = strerror(errno);
    else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() ||
             (st.st_mode & 077) != 0)
        why = "not a private file of this user";
    else if (st.st_size != trailer_at(r) + TRAILER_BYTES)
        why = "truncated or of another size";
    else if (pread(fd, t, sizeof t, trailer_at(r)) != (ssize_t)sizeof t ||
             memcmp(t, TRAILER_MAGIC, 8) != 0)
        why = "no trailer";
    if (!why) {
        make_ad(ad, r, -1);
        uint64_t want[2] = {(uint64_t)r->n_clusters, r->blob_len};
        if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                plain, NULL, t + 8 + NONCE_BYTES, TRAILER_PLAIN, t + 8 + NONCE_BYTES + TRAILER_PLAIN,
                ad, sizeof ad, t + 8, r->scratch) != 0 ||
            memcmp(plain, want, sizeof want) != 0)
            why = "failed authentication: another table, partition or user secret, or tampered";
    }
    if (why) {
        if (fd >= 0) close(fd);
        snprintf(r->note, sizeof r->note, "%s", why);
        return -1;
    }
    /* Every blob into the page cache now, in file order: which of them are resident later
     * then does not follow the clusters the user's words read. */
    (void)posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
    r->fd = fd;
    return 0;
}

/* Builds the kept store: every blob and the trailer into a new file beside it, renamed into
 * place once complete (a crash leaves no half store under the name; no fsync: a torn file
 * fails its checks and is rebuilt). 0, or -1 with err. */
static int kept_build(struct clrows *r, char *err, size_t errlen)
{
    char tmp[PATH_MAX + 16];
    snprintf(tmp, sizeof tmp, "%s.XXXXXX", r->path);
    r->fd = mkostemp(tmp, O_CLOEXEC);
    if (r->fd < 0)
        return util_seterr(err, errlen, "clrows: cannot create %s: %s", tmp, strerror(errno));
    uint8_t t[TRAILER_BYTES], ad[AD_BYTES];
    uint64_t plain[2] = {(uint64_t)r->n_clusters, r->blob_len};
    memcpy(t, TRAILER_MAGIC, 8);
    randombytes_buf(t + 8, NONCE_BYTES);
    make_ad(ad, r, -1);
    crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
        t + 8 + NONCE_BYTES, t + 8 + NONCE_BYTES + TRAILER_PLAIN, NULL,
        (const unsigned char *)plain, TRAILER_PLAIN, ad, sizeof ad, NULL, t + 8, r->scratch);
    int rc = build(r, &r->src, err, errlen);
    if (rc == 0 && pwrite(r->fd, t, sizeof t, trailer_at(r)) != (ssize_t)sizeof t)
        rc = util_seterr(err, errlen, "clrows: cannot write the sealed rows (%s)",
                         strerror(errno));
    if (rc == 0 && (fchmod(r->fd, 0600) != 0 || rename(tmp, r->path) != 0))
        rc = util_seterr(err, errlen, "clrows: cannot rename %s: %s", tmp, strerror(errno));
    if (rc != 0) {
        unlink(tmp);
        close(r->fd);
        r->fd = -1;
    }
    return rc;
}

/* A store for this process only: a random key, a file with no name (as the swap's). */
static int private_build(struct clrows *r, char *err, size_t errlen)
{
    r->kept = 0;
    r->path[0] = 0;
    crypto_aead_xchacha20poly1305_ietf_keygen(r->scratch);
    if ((r->fd = util_tmpfile(r->dir, "clrows", err, errlen)) < 0) return -1;
    return build(r, &r->src, err, errlen);
}

/* The kept store when it can be written, else (full disk, read-only cache) a per-process one,
 * with a note: nothing is lost but the next start's time. */
static int kept_or_private(struct clrows *r, char *err, size_t errlen)
{
    char e[PATH_MAX + 128];
    if (kept_build(r, e, sizeof e) == 0) {
        util_cache_used(r->path, "clrows-");
        r->kept = 1;
        return 0;
    }
    note(r, "cannot keep the cluster rows in %s (%s); using a per-process store", e);
    return private_build(r, err, errlen);
}

int clrows_open(struct clrows **out, const struct cluster *cl, const struct clrows_source *src,
                const struct clrows_params *p, char *err, size_t errlen)
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
    r->src = *src;
    r->type = src->type;
    r->row_bytes = src->row_bytes;
    r->dim = src->dim;
    r->n_clusters = cluster_count(cl);
    r->log = p ? p->log : NULL;
    r->log_ctx = p ? p->log_ctx : NULL;
    r->quiet = p ? p->quiet : 0;
    r->maxm = 1;
    for (int32_t c = 0; c < r->n_clusters; c++) {
        const int32_t *mem;
        int m = cluster_members(cl, c, &mem);
        if (m > r->maxm) r->maxm = m;
    }
    r->page_len = page_bytes(r->maxm, r->row_bytes);
    r->blob_len = NONCE_BYTES + r->page_len + TAG_BYTES;
    r->scratch_len = clrows_scratch_bytes(r->maxm, r->row_bytes);
    char e[160];
    r->scratch = enclave_scratch_alloc(r->scratch_len, e, sizeof e);
    if (!r->scratch) {
        util_seterr(err, errlen, "clrows: cannot allocate guarded scratch: %s", e);
        clrows_close(r);
        return -1;
    }
    util_pick_dir(p ? p->swap_dir : NULL, r->dir, sizeof r->dir);
    store_id(r, p ? p->fingerprint : NULL);
    int rc;
    if (p && p->cache_dir && *p->cache_dir && p->fingerprint && kept_prepare(r, p->cache_dir) == 0) {
        int k = kept_open(r);
        if (k == 0) {
            util_cache_used(r->path, "clrows-");
            r->kept = r->from_cache = 1;
            *out = r;
            return 0;
        }
        if (k < 0) {
            /* Refused, never used: gone, and built again. */
            unlink(r->path);
            char why[sizeof r->note];
            snprintf(why, sizeof why, "%s", r->note);
            note(r, "cached cluster rows %s refused (%s); rebuilt", why);
        }
        rc = kept_or_private(r, err, errlen);
    } else {
        rc = private_build(r, err, errlen);
    }
    if (rc != 0) {
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
        /* Drop the ciphertext of a per-process store (the file has no name; this frees its
         * blocks now). A kept one stays for the next start. */
        if (!r->kept && ftruncate(r->fd, 0) != 0) { /* close releases it */ }
        close(r->fd);
    }
    free(r);
}

/* One blob into the scratch and opened there: 0, or -1 with err ("missing" / "failed
 * authentication"). */
static int blob_open(struct clrows *r, int32_t cid, char *err, size_t errlen)
{
    uint8_t *blob = r->scratch + BLOB_AT, *page = blob + NONCE_BYTES;
    if (pread(r->fd, blob, r->blob_len, (off_t)((size_t)cid * r->blob_len)) !=
        (ssize_t)r->blob_len)
        return util_seterr(err, errlen, "clrows: sealed rows missing (file truncated or "
                                        "unreadable); refusing to continue");
    uint8_t ad[AD_BYTES];
    make_ad(ad, r, cid);
    /* Opened in place: the page replaces its ciphertext in the guarded scratch. */
    if (crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
            page, NULL, page, r->page_len, page + r->page_len, ad, sizeof ad, blob,
            r->scratch) != 0)
        return util_seterr(err, errlen, "clrows: sealed rows failed authentication (file "
                                        "tampered with or corrupted); refusing to continue");
    return 0;
}

/* A kept store whose blob failed its check is rebuilt once (its file was damaged between
 * runs); the rebuild reads every cluster, whatever the user typed. A per-process store's
 * file is this process's alone: a failure there is fatal. */
static int blob_open_or_rebuild(struct clrows *r, int32_t cid, char *err, size_t errlen)
{
    if (blob_open(r, cid, err, errlen) == 0) return 0;
    if (!r->kept || r->rebuilt) return -1;
    r->rebuilt = 1;
    sodium_memzero(r->scratch + BLOB_AT, r->blob_len);
    close(r->fd);
    r->fd = -1;
    r->kept = 0;
    unlink(r->path);
    note(r, "cached cluster rows %s failed a check (%s); rebuilt",
         strstr(err, "missing") ? "truncated" : "tampered with or corrupted");
    if (kept_or_private(r, err, errlen) != 0) return -1;
    return blob_open(r, cid, err, errlen);
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
    } else if (blob_open_or_rebuild(r, cid, err, errlen) != 0) {
        r->failed = 1;
    } else {
        rc = 0;
        if (norms) memcpy(norms, page, m * sizeof *norms);
        const uint8_t *src = page + (size_t)r->maxm * sizeof(double);
        for (size_t i = 0; i < m && rc == 0; i++)
            rc = qrow_dequant(r->type, src + i * r->row_bytes, rows + i * (size_t)r->dim,
                              (size_t)r->dim);
        if (rc != 0) util_seterr(err, errlen, "clrows: cannot decode a stored row");
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
int clrows_from_cache(const struct clrows *r) { return r->from_cache; }
const char *clrows_note(const struct clrows *r) { return r->note; }
size_t clrows_blob_bytes(const struct clrows *r) { return r->blob_len; }
