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
 * the threat model. */
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

/* Reads every cluster's rows through src and seals them into a new file in dir (see
 * util_pick_dir; NULL: the default). cl must outlive the store. */
int clrows_open(struct clrows **out, const struct cluster *cl, const struct clrows_source *src,
                const char *dir, char *err, size_t errlen);
void clrows_close(struct clrows *r);

/* Cluster cid's member rows, in member order, dequantized into rows (n x dim floats), and
 * their norms sqrt(sum of (double)x*x in element order) into norms (n; NULL: not wanted);
 * n is cid's size.
 * -1 with err (no cluster id in it) on failure, rows and norms zeroed. */
int clrows_get(struct clrows *r, int32_t cid, float *rows, double *norms, char *err,
               size_t errlen);

/* Adds the store's scratch region to w. */
void clrows_where(const struct clrows *r, struct enclave_where *w);

/* Tests: the backing file (cluster c's blob is at c * clrows_blob_bytes) and its blob size. */
int clrows_fd(const struct clrows *r);
size_t clrows_blob_bytes(const struct clrows *r);

#endif
