/* core/mech: the token sanitizer mechanisms, one struct for all four.
 *
 *  rnm       Report-Noisy-Max (default). Candidates: the input token's cluster (core/cluster).
 *            Utility: cosine similarity to the input token (kept with the clusters, so no
 *            embedding row is read per token), min-max normalised within the
 *            cluster to [0, 1] and quantised onto the grid 2^-20 (integers 0..2^20), so the
 *            sensitivity is exactly 2^20 grid units. Each candidate gets discrete Laplace noise
 *            of scale 2/ε (in utility units; 2^21/ε grid units, rounded up, so the guarantee is
 *            never weaker than asked) from core/noise; the argmax is sent, ties to the lower
 *            id. Fixing the other candidates' noise, candidate i wins iff its noise exceeds a
 *            threshold that moves by at most 2 sensitivities between two inputs of one cluster,
 *            and the discrete Laplace tail ratio over that shift is at most e^ε: ε-DP.
 *  rnm-exp   The same with one-sided geometric (discrete exponential) noise of scale 2/ε:
 *            report-noisy-max with exponential noise, i.e. permute-and-flip (McKenna and
 *            Sheldon 2020; Ding et al. 2021). Same argument, same ε.
 *  santext+  Baseline, SanText+ (Yue et al. 2021). Tokens are split by frequency: the rarest
 *            fraction w are "sensitive" (token id rank is the frequency proxy: SentencePiece
 *            and BPE vocabularies are ordered roughly by frequency). A sensitive token is always
 *            replaced, a non-sensitive one with probability p (else kept), by a token drawn from
 *            the sensitive set with P(y|x) ~ exp(-ε/2 · ||e_x - e_y||) (raw embedding rows,
 *            Euclidean, as the paper). Defaults w = 0.9, p = 0.3. Sampled in floating point like
 *            the reference code: a baseline for comparison, not the private path.
 *  custext+  Baseline, CusText+ (Chen et al. 2023). Candidates: the token's cluster (the same
 *            fixed greedy mapping CusText builds), utility -(d - d_min)/(d_max - d_min) over
 *            Euclidean distances, exponential mechanism P ~ exp(ε·u/2). Stopwords (English,
 *            built-in list) are not sanitized: they are reported "public" and cost 0. Floating-
 *            point sampling, as a baseline.
 *
 * Tokens that are not clustered pass through at ε = 0 as "public" or "control" per their role.
 * A token alone in a cluster (only possible for a group of one token) is kept, charged ε, and
 * gets no protection: cluster.c avoids creating such clusters. */
#ifndef CMIF_CORE_MECH_H
#define CMIF_CORE_MECH_H

#include <stddef.h>
#include <stdint.h>

#include "core/cluster.h"

struct noise;
struct enclave_where;
struct clrows;

/* Same numbering as enum core_mech and enum core_tok_kind in core/core.h (asserted at
 * compile time in tests/test_dp.c). */
enum mech_kind { MECH_RNM = 0, MECH_RNM_EXP, MECH_SANTEXT, MECH_CUSTEXT, MECH_NONE };
enum mech_result { MECH_KEPT = 0, MECH_REPLACED, MECH_PUBLIC, MECH_CONTROL };
enum mech_role { MECH_ROLE_SANITIZE = 0, MECH_ROLE_PUBLIC, MECH_ROLE_CONTROL };

#define MECH_GRID_BITS 20

struct mech_config {
    int32_t n_vocab;
    int dim;
    cluster_row_fn row;             /* embedding rows */
    /* Optional: n rows at once into out (n x dim), e.g. one unseal of the core's swap for a
     * whole cluster; NULL = row by row. Same ctx. */
    int (*rows)(void *ctx, const int32_t *ids, size_t n, float *out);
    void *ctx;
    const struct cluster *clusters; /* the partition (must outlive the mech) */
    /* Optional: the clusters' rows stored together (core/clrows), read in one go with their
     * norms when the candidates for a vector are a whole cluster; NULL = rows by id. Same
     * numbers either way. Must outlive the mech. */
    struct clrows *crows;
    const uint8_t *role;            /* n_vocab entries of enum mech_role (copied) */
    const uint8_t *stopword;        /* n_vocab flags for custext+, or NULL (copied) */
    struct noise *noise;            /* randomness (must outlive the mech) */
};

struct mech_out {
    int32_t sent;       /* token id sent on */
    int kind;           /* enum mech_result */
    double eps;         /* ε charged */
    int cluster_size;   /* candidates considered (0 for pass-through) */
};

struct mech;

int mech_open(struct mech **out, const struct mech_config *cfg, int kind, double eps,
              char *err, size_t errlen);
void mech_close(struct mech *m);
/* Adds the scratch regions (input rows, candidates' values and scores) to w. */
void mech_where(const struct mech *m, struct enclave_where *w);

int mech_set_eps(struct mech *m, double eps, char *err, size_t errlen);
int mech_set_kind(struct mech *m, int kind, char *err, size_t errlen);
int mech_kind(const struct mech *m);
double mech_eps(const struct mech *m);
/* SanText+ parameters: p in [0,1], w in (0,1]. */
int mech_set_santext(struct mech *m, double p, double w, char *err, size_t errlen);
/* SanText+: 1 when id is in the sensitive set (built on the first switch to santext+; 0
 * before). */
int mech_is_sensitive(const struct mech *m, int32_t id);

/* Would this token be charged ε (i.e. is it sanitized) under the current mechanism? */
int mech_charges(const struct mech *m, int32_t id);
int mech_sanitize(struct mech *m, int32_t id, struct mech_out *o, char *err, size_t errlen);
/* The same for an input outside the vocabulary (a word of several pieces): its vector x[dim]
 * and the cluster cid a fixed public rule gave it. The candidates are cid's members (all of
 * the sensitive set for santext+), utilities computed from x exactly as for a member, so any
 * two inputs of one cluster, members or not, get the same ε guarantee. o->kind is always
 * MECH_REPLACED (the input is no candidate). */
int mech_sanitize_vec(struct mech *m, int32_t cid, const float *x, struct mech_out *o,
                      char *err, size_t errlen);

/* TEST ONLY: multiply the RNM noise scale (0.5 = the half-noise mutation the DP test must
 * catch). Never called outside tests; 1.0 by default. */
void mech_test_noise_mult(struct mech *m, double mult);

/* 1 when a decoded piece (leading spaces ignored, ASCII case-insensitive) is an English
 * stopword of the built-in list (CusText+). */
int mech_is_stopword(const char *piece, size_t len);

/* The public set: a token is public (sent as-is at ε 0, reported "public") when its decoded
 * piece is non-empty and made only of these characters: ASCII punctuation and whitespace.
 * assets/public-tokens.txt documents the same set (a test keeps the two equal). */
const char *mech_public_chars(void);
struct tokenizer;
/* Per-token role, cluster group and stopword flag for a vocabulary (arrays of n_vocab).
 * Control, unknown and unused tokens, and tokens that decode to nothing: control (group 0).
 * Pieces of the public set: public (group 0). Everything else is user content: group 1, or
 * group 2 for byte-fallback tokens <0xXX> (raw bytes of what was typed: sanitized, but only
 * into other bytes; a lone byte token joins group 1, as a cluster of one protects nothing). */
void mech_token_roles(const struct tokenizer *t, uint8_t *role, uint8_t *group, uint8_t *stop);
int mech_is_public_piece(const char *piece, size_t len);

#endif
