/* core/sanitizer: assembles the token sanitizer for a vocabulary and an embedding table:
 * per-token roles (core/mech), the cluster partition (core/cluster), the noise source
 * (core/noise) and the mechanism (core/mech).
 *
 * One builder for every sanitizer the program runs: the core's own (built on the first user
 * message, rows read from the guarded table, clusters cached) and the evaluation one behind
 * core_eval_* in core/core.h (`cmif eval-privacy`). Internal to core/. */
#ifndef CMIF_CORE_SANITIZER_H
#define CMIF_CORE_SANITIZER_H

#include <stddef.h>
#include <stdint.h>

#include "core/cluster.h"

struct tokenizer;
struct noise;
struct mech;

struct sanitizer_params {
    const struct tokenizer *tok;
    int dim;
    cluster_row_fn row;             /* embedding rows of the table */
    int (*rows)(void *ctx, const int32_t *ids, size_t n, float *out);   /* or NULL */
    /* Rows for the clustering, which reads a fixed public set, so its lookups may be seen
     * (core/embed: embed_rows_public); NULL: rows. */
    int (*pub_rows)(void *ctx, const int32_t *ids, size_t n, float *out);
    void *ctx;
    int k;                          /* cluster size */
    int quiet;
    const char *cache_dir;          /* cluster cache; NULL or "": none */
    const unsigned char *fingerprint;  /* 32 bytes naming the table and vocabulary, or NULL */
    void (*log)(void *ctx, const char *msg);   /* progress; NULL: stderr */
    void *log_ctx;
    int seeded;                     /* deterministic noise (tests, tables): NOT private */
    uint64_t seed;
    int mech;                       /* enum mech_kind to start with */
    double eps;
};

struct sanitizer {
    int32_t n_vocab;
    uint8_t *role;                  /* n_vocab entries of enum mech_role */
    struct cluster *cl;
    struct noise *nz;
    struct mech *mc;
};

/* Fills s (all or nothing: on failure s is left empty). */
int sanitizer_open(struct sanitizer *s, const struct sanitizer_params *p, char *err,
                   size_t errlen);
void sanitizer_close(struct sanitizer *s);

#endif
