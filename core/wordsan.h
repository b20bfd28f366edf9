/* core/wordsan: the word-level sanitizer. A sanitized word is replaced by a whole word of the
 * vocabulary's word domain (core/lexicon), chosen by the mechanism (core/mech: Report-Noisy-
 * Max by default) among the members of the word's cluster.
 *
 * The clusters partition the domain (K words each, never crossing the public-list/other
 * split, so in auto mode an uncommon word is replaced by another uncommon word). A typed word
 * in the domain uses its own cluster; any other word (several pieces, non-ASCII letters) is
 * embedded as the normalised mean of its pieces' rows and takes the nearest cluster centroid
 * of its group: both are fixed public functions of the word, so for any two words that land
 * in one cluster the output distributions differ by at most e^ε, domain members or not. The
 * substitute takes the typed word's case pattern (Paris → London, PARIS → LONDON).
 *
 * Internal to core/: the core builds it on the first sanitized word (clustering can take a
 * while; the partition is cached like the token partition) and calls it from core_encode. */
#ifndef CMIF_CORE_WORDSAN_H
#define CMIF_CORE_WORDSAN_H

#include <stddef.h>
#include <stdint.h>

struct tokenizer;
struct words_list;
struct noise;
struct lexicon;
struct cluster;
struct clrows;
struct mech;
struct enclave_where;

struct wordsan_params {
    const struct tokenizer *tok;
    const struct words_list *pl;    /* the public list (groups of the domain) */
    int dim;
    /* Rows of token ids (the core's guarded table). */
    int (*rows)(void *ctx, const int32_t *ids, size_t n, float *out);
    /* The same for the clustering and centroids, fixed public sets whose lookups may be seen
     * (core/embed: embed_rows_public); NULL: rows. */
    int (*pub_rows)(void *ctx, const int32_t *ids, size_t n, float *out);
    void *ctx;
    /* Optional: the same rows as stored (GGUF type row_type, row_bytes each; same ctx), to
     * keep each cluster's rows together (core/clrows): kept in cache_dir across runs (with
     * a fingerprint), else in a file with no name in swap_dir (NULL: the default). NULL: a
     * cluster's rows are read by id. */
    int (*raw_rows)(void *ctx, const int32_t *ids, size_t n, uint8_t *out);
    uint32_t row_type;
    size_t row_bytes;
    const char *swap_dir;
    int k;                          /* cluster size */
    int quiet;
    const char *cache_dir;          /* partition cache; NULL or "": none */
    const unsigned char *fingerprint;  /* 32 bytes naming table + vocabulary, or NULL */
    void (*log)(void *ctx, const char *msg);
    void *log_ctx;
    struct noise *noise;            /* shared with the token sanitizer; must outlive this */
    int mech;                       /* enum mech_kind */
    double eps;
};

struct wordsan {
    struct lexicon *lex;
    struct cluster *cl;
    struct clrows *crows;           /* the clusters' rows together, or NULL */
    struct mech *mc;
    const struct tokenizer *tok;
    const struct words_list *pl;
    int dim;
    int (*rows)(void *ctx, const int32_t *ids, size_t n, float *out);
    int (*raw_rows)(void *ctx, const int32_t *ids, size_t n, uint8_t *out);
    void *ctx;
    /* Per-word values, in guarded regions (core/enclave scratch): the word's vector, its
     * pieces' rows, and the word folded to lower case after one space. */
    float *x, *prow;
    size_t prow_cap;
    char *wbuf;
    size_t wcap;
};

/* Fills w (all or nothing). */
int wordsan_open(struct wordsan *w, const struct wordsan_params *p, char *err, size_t errlen);
void wordsan_close(struct wordsan *w);
/* Adds the per-word scratch regions and the cluster-row store's (not the mechanism's:
 * mech_where) to w. */
void wordsan_where(const struct wordsan *w, struct enclave_where *ew);

/* Whether the word (lower-case ASCII-folded, no leading space) is charged under the current
 * mechanism (CusText+ leaves its stopwords as they are). */
int wordsan_charges(const struct wordsan *w, const char *low, size_t n);

/* Replaces the word word[0..n) (no leading space; user text) by a domain word written to out
 * (cap bytes; NUL-terminated) with the typed word's case. ids: scratch for the word's pieces
 * (n + 3 entries, in guarded memory). *kind: 0 kept (the same word came out), 1 replaced;
 * *cluster_size: candidates. 0 or -1 with err (no user text in it). */
int wordsan_word(struct wordsan *w, const char *word, size_t n, int32_t *ids, char *out,
                 size_t cap, int *kind, int *cluster_size, char *err, size_t errlen);

#endif
