/* core/clrows: every cluster's embedding rows kept together, so that a whole cluster is read
 * in one go.
 *
 * The word sanitizer's candidates for a word outside its lexicon are a whole cluster, whose
 * members' rows lie all over the embedding table: read through the core's swap (core/swap)
 * that is one cache slot per member, and every slot change is an mprotect with a TLB flush,
 * which made such a word cost hundreds of microseconds. This store copies each cluster's rows
 * (in the table's own block format, so they dequantize to the very same floats) and their L2
 * norms into one sealed blob per cluster when it opens, and reads a cluster with one pread
 * and one XChaCha20-Poly1305 open, without a single mprotect.
 *
 * The rows are public embeddings, but which cluster is read follows the user's word, so:
 * the blobs are sealed (random per-store key, cluster index bound in as associated data, so a
 * flipped bit or a blob moved to another cluster's place is refused, never used) in a file
 * with no name; every blob is written when the store opens (a blob written on first use would
 * show which cluster was used first) and has the same size; the key and the one opened blob
 * live in a guarded scratch region (core/enclave, memfd_secret or mlocked, left read-write like
 * the noise state and the mechanism's scratch: an mprotect per word would cost what this
 * store saves), and the opened blob is wiped after each read. A failed open or read is fatal
 * for the store: every later read is refused. Which blob is read is visible to the OS (the
 * file offset), as which swap page is read is: DESIGN.md leaves such access patterns out of
 * the threat model.
 *
 * Building the store reads the whole table (most of a start's time), so with a cache folder
 * it is kept there across runs, beside the cluster cache: sealed under a key derived from the
 * per-user cache secret, its file named by a keyed hash of the store's identity (the caller's
 * table fingerprint, the row format, the partition), which every blob binds in as associated
 * data with its cluster index. A warm start opens it without reading a row of the table; the
 * blobs are still checked one by one as they are read. A kept store that is truncated, of
 * another table or partition, or under another secret is refused when it opens, one whose
 * blob fails a check is refused when it is read; either way it is rebuilt (once per process)
 * with a one-line note. When it cannot be written (full disk), the store is per-process, as
 * without a cache folder. */
#ifndef CMIF_CORE_CLROWS_H
#define CMIF_CORE_CLROWS_H

#include <stddef.h>
#include <stdint.h>

struct cluster;
struct clrows;
struct enclave_where;

/* Where the rows come from: raw(ctx, ids, n, out) writes the rows of cluster members
 * ids[0..n) as stored (n x row_bytes, GGUF type `type`, dim elements each; core/qrow decodes
 * them), 0 or -1. */
struct clrows_source {
    uint32_t type;
    size_t row_bytes;
    int dim;
    int (*raw)(void *ctx, const int32_t *ids, size_t n, uint8_t *out);
    void *ctx;
};

/* Guarded bytes a store for clusters of at most max_members rows of row_bytes takes (the
 * key and one blob), so a caller can set them aside from a locked-memory budget. */
size_t clrows_scratch_bytes(int max_members, size_t row_bytes);

struct clrows_params {
    const char *swap_dir;           /* a per-process store's folder (util_pick_dir; NULL: the
                                       default) */
    const char *cache_dir;          /* where to keep the store across runs; NULL or "": not kept */
    const unsigned char *fingerprint;  /* 32 bytes naming the table and vocabulary; NULL: not
                                          kept */
    int quiet;                      /* no notes */
    /* Notes (a kept store refused and rebuilt, or not writable); NULL: on stderr. */
    void (*log)(void *ctx, const char *msg);
    void *log_ctx;
};

/* Opens the kept store for cl and src, or reads every cluster's rows through src and seals
 * them into a new file (kept in p->cache_dir when it can be, else with no name in
 * p->swap_dir). p NULL: per-process, default folder. cl and src->ctx must outlive the store
 * (a damaged kept store is rebuilt from src). */
int clrows_open(struct clrows **out, const struct cluster *cl, const struct clrows_source *src,
                const struct clrows_params *p, char *err, size_t errlen);
void clrows_close(struct clrows *r);

/* Cluster cid's member rows, in member order, dequantized into rows (n x dim floats), and
 * their norms sqrt(sum of (double)x*x in element order) into norms (n; NULL: not wanted);
 * n is cid's size.
 * -1 with err (no cluster id in it) on failure, rows and norms zeroed. */
int clrows_get(struct clrows *r, int32_t cid, float *rows, double *norms, char *err,
               size_t errlen);

/* Adds the store's scratch region to w. */
void clrows_where(const struct clrows *r, struct enclave_where *w);

/* Tests: the backing file (cluster c's blob is at c * clrows_blob_bytes) and its blob size;
 * whether the store was opened from the cache folder rather than built; why the kept store
 * was refused or not written ("" when it was not). */
int clrows_fd(const struct clrows *r);
size_t clrows_blob_bytes(const struct clrows *r);
int clrows_from_cache(const struct clrows *r);
const char *clrows_note(const struct clrows *r);

#endif
