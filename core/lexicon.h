/* core/lexicon: the whole-word domain of a vocabulary, the candidates of word-level
 * sanitization.
 *
 * A word-level mechanism replaces a typed word by a whole word, so its candidates are the
 * vocabulary's whole-word tokens ("▁word" in SentencePiece, "Ġword" in byte-level BPE: a
 * leading space and ASCII letters only) folded to lower case. " Paris", " paris" and
 * " PARIS" are one entry "paris" (the typed word's case is applied to the substitute
 * afterwards), so no word is ever "protected" by its own case variants. Entries are ordered
 * by their lowest token id: BPE ids follow merge order and SentencePiece ids roughly follow
 * frequency, so the order is a frequency rank (SanText+ uses it). An entry's embedding is the
 * row of its lower-case token where the vocabulary has one, else of its lowest-id variant.
 *
 * The caller's public rule splits the entries into group 1 (common words: sent as typed in
 * auto mode) and group 2 (the rest); clusters never cross groups, so in auto mode a name is
 * replaced by another uncommon word, never by "the". A word outside the domain (several
 * tokens, or letters outside ASCII) is embedded by a fixed public function of its pieces'
 * rows (their normalised mean, lexicon_mean) and takes the cluster of its group whose
 * centroid is nearest (lexicon_nearest). Everything stored here is public: the vocabulary,
 * the partition and the centroids. */
#ifndef CMIF_CORE_LEXICON_H
#define CMIF_CORE_LEXICON_H

#include <stddef.h>
#include <stdint.h>

struct tokenizer;
struct cluster;
struct lexicon;

/* 1 when the lower-case word w[0..n) is on the caller's public list. */
typedef int (*lexicon_public_fn)(void *ctx, const char *w, size_t n);
/* Rows of tokens ids[0..n) into out (n x dim floats); 0 or -1. */
typedef int (*lexicon_rows_fn)(void *ctx, const int32_t *ids, size_t n, float *out);

#define LEXICON_MAX_WORD 64   /* longest entry in bytes; longer tokens are not entries */

int lexicon_build(struct lexicon **out, const struct tokenizer *t, lexicon_public_fn pub,
                  void *pctx, char *err, size_t errlen);
void lexicon_close(struct lexicon *l);

int32_t lexicon_size(const struct lexicon *l);
/* n entries: 1 (public-list word) or 2 (any other word). */
const uint8_t *lexicon_groups(const struct lexicon *l);
/* The token whose embedding row stands for entry i. */
int32_t lexicon_token(const struct lexicon *l, int32_t i);
/* Entry i's word, lower case, without the leading space (not NUL-terminated). */
const char *lexicon_word(const struct lexicon *l, int32_t i, size_t *len);
/* Entry of the lower-case word w[0..n), or -1. */
int32_t lexicon_find(const struct lexicon *l, const char *w, size_t n);
/* A row provider over entries (for cluster_build and the mechanism): entry i -> its token's
 * row through rows(ctx). Set once, before clustering. */
void lexicon_set_rows(struct lexicon *l, lexicon_rows_fn rows, void *ctx, int dim);
int lexicon_row(void *lexicon, int32_t i, float *out);
int lexicon_rows(void *lexicon, const int32_t *ids, size_t n, float *out);
/* A second provider (same ctx) for reads of fixed public sets, the clustering and the
 * centroids, whose lookups may be seen; NULL (the default): the same as rows. */
void lexicon_set_public_rows(struct lexicon *l, lexicon_rows_fn pub);
int lexicon_rows_public(void *lexicon, const int32_t *ids, size_t n, float *out);

/* Cluster centroids (normalised mean of the members' rows): the partition's own when it kept
 * them (cluster_params.centroids; then cl must outlive l's use of them), else read once
 * after clustering. */
int lexicon_centroids(struct lexicon *l, const struct cluster *cl, char *err, size_t errlen);
/* The same centroids from rows read a cluster at a time: crows(ctx, cid, out) writes cluster
 * cid's member rows in member order (n x dim floats), 0 or -1. For a store that keeps each
 * cluster's rows together (core/clrows), so the table is not walked a second time. */
typedef int (*lexicon_cluster_rows_fn)(void *ctx, int32_t cid, float *out);
int lexicon_centroids_from(struct lexicon *l, const struct cluster *cl,
                           lexicon_cluster_rows_fn crows, void *ctx, char *err, size_t errlen);
/* The cluster of group g whose centroid is nearest (cosine) to x[dim]; -1 when g has none. */
int32_t lexicon_nearest(const struct lexicon *l, const float *x, int group);
/* out[dim] = the normalised mean of rows[0..n) (n x dim): the embedding of a word of several
 * pieces. All zero rows give a zero vector. */
void lexicon_mean(const float *rows, size_t n, int dim, float *out);

#endif
