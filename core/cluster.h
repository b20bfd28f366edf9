/* core/cluster: a fixed partition of the vocabulary into disjoint clusters of K tokens.
 *
 * A token's candidate set for the sanitizer is its cluster, which does not depend on the
 * input, so ε-DP holds between any two tokens of one cluster. Construction (greedy, as in
 * CusText): within each group of tokens, take the lowest-id unassigned token and give it and
 * its K-1 nearest unassigned tokens (cosine similarity of embedding rows; ties to the lower
 * id) one cluster. Groups are set by the caller: ordinary tokens form one group, byte-fallback
 * tokens another (they carry user content, so they are sanitized, but only into other bytes);
 * group 0 tokens (control, unused, public set) are in no cluster and pass through.
 * The last cluster of a group holds the remainder (size 2..K-1); when exactly K+1 tokens are
 * left the seed takes them all (size K+1), because a cluster of one gives no privacy.
 *
 * Similarities come from cblas_sgemm over blocks of normalised rows: the lowest-id unassigned
 * tokens, a block at a time, against every unassigned token (the exact greedy, about
 * V^2·dim/(2K) multiply-adds: 29 s for a 122k x 2048 group on one core). A group of 32768
 * tokens or more with rows of 256 dimensions or more (a 128k vocabulary with a large model's
 * table) is clustered by the projected greedy instead: the same seeds, each one's K-1
 * neighbours chosen by exact cosine among its 256 nearest unassigned tokens in a
 * 64-dimensional sparse random sign projection drawn from a fixed seed (see cluster.c). That
 * partition is still a fixed function of the embedding table, the same at any thread count,
 * so a token's candidate set still does not depend on the input; clusters are slightly less
 * tight (mean cosine to the seed 0.801 against 0.805 on a Llama-3.2-1B-shape table, see
 * BENCHMARKS.md). Memory while clustering a group of n rows: 4·n·dim bytes for the rows (as
 * for the exact greedy), 128·n for their projection, 64 MiB of similarities.
 * Progress is reported for groups of 8192 tokens or more (through the caller's log callback,
 * or on stderr without one). The partition can be cached on disk, sealed with
 * crypto_secretbox (see cluster.c for what that protects); the cache is named by the search
 * that built it, so one built by the other search is never taken for this one. */
#ifndef CMIF_CORE_CLUSTER_H
#define CMIF_CORE_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

/* Writes the embedding row of token id (dim floats). 0 ok, -1 error. */
typedef int (*cluster_row_fn)(void *ctx, int32_t id, float *out);

struct cluster_params {
    int k;                          /* cluster size K >= 2 (default 20) */
    int quiet;                      /* no progress at all */
    /* Progress lines ("clustering N tokens (K = k):  42%"), one call per percent; NULL: on
     * stderr, rewriting one line. */
    void (*log)(void *ctx, const char *msg);
    void *log_ctx;
    const char *cache_dir;          /* NULL or "": no cache */
    const unsigned char *fingerprint;  /* 32 bytes naming the model (token_embd + tokenizer);
                                          NULL: no cache */
    /* Optional batched reader (n rows into out, same ctx as row): fewer round trips into
     * the core's swap while loading the rows. NULL: row by row. */
    int (*rows)(void *ctx, const int32_t *ids, size_t n, float *out);
    /* Also keep each cluster's centroid (cluster_centroid), cached with the partition, so a
     * start from the cache reads no rows for them. */
    int centroids;
    /* CLUSTER_SEARCH_AUTO (0): projected for large groups as above, exact otherwise;
     * CLUSTER_SEARCH_EXACT / _PROJECTED: that one for every group (tests, benchmarks). */
    int search;
    int proj_dim;                   /* projected search: dimensions (0: 64) */
    int proj_cand;                  /* projected search: candidates per seed (0: 256) */
};

enum { CLUSTER_SEARCH_AUTO = 0, CLUSTER_SEARCH_EXACT = 1, CLUSTER_SEARCH_PROJECTED = 2 };

struct cluster;

/* group[id]: 0 = not clustered (passes through), 1..255 = group (clusters never cross). */
int cluster_build(struct cluster **out, int32_t n_vocab, int dim, const uint8_t *group,
                  cluster_row_fn row, void *ctx, const struct cluster_params *p, char *err,
                  size_t errlen);
void cluster_close(struct cluster *c);

int32_t cluster_count(const struct cluster *c);
int32_t cluster_n_vocab(const struct cluster *c);
/* Cluster id of a token, -1 when it is not clustered. */
int32_t cluster_of(const struct cluster *c, int32_t id);
/* Members of cluster cid (ascending ids); returns their number. */
int cluster_members(const struct cluster *c, int32_t cid, const int32_t **members);
/* Cosine similarities of token id to each member of its cluster (the order of
 * cluster_members), computed from the normalised rows while clustering and kept in the
 * cache, so the sanitizer need not read K rows per token. NULL (and *n = 0) when the token is
 * not clustered. */
const float *cluster_sims(const struct cluster *c, int32_t id, int *n);
/* The centroid of cluster cid (dim floats): the normalised sum of its members' normalised
 * rows, summed in member order, which is bit for bit lexicon_mean of their rows. NULL when
 * the partition was built without cluster_params.centroids. */
const float *cluster_centroid(const struct cluster *c, int32_t cid);
/* 1 when the partition was read from the cache, 0 when computed. */
int cluster_from_cache(const struct cluster *c);
/* Non-zero when the cache could not be used or written (reason in the string, for -v). */
const char *cluster_cache_note(const struct cluster *c);

#endif
