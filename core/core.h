/* core/core.h: the confidential core's one public API.
 *
 * Raw user text, its token ids, the sanitizer's randomness and the embedding table live
 * only behind this interface, in a guarded region (core/enclave) with an encrypted swap
 * (core/swap) for what does not fit. What comes out: float vectors (embeddings of
 * sanitized tokens, or of tokens the model generated), detokenized text, and a per-token
 * privacy report for the user's own screen. */
#ifndef CMIF_CORE_CORE_H
#define CMIF_CORE_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/gguf.h"
#include "core/tokenizer.h"

enum core_mech {
    CORE_MECH_RNM = 0,      /* Report-Noisy-Max, Laplace noise (default) */
    CORE_MECH_RNM_EXP,      /* RNM with exponential noise (= permute-and-flip) */
    CORE_MECH_SANTEXT,      /* SanText+ baseline */
    CORE_MECH_CUSTEXT,      /* CusText+ baseline */
    CORE_MECH_NONE,         /* no sanitization: engine use and the core-off benchmark */
};

struct core_options {
    size_t mem_limit;       /* bytes of guarded region; 0 = fit under RLIMIT_MEMLOCK */
    int require_locked;     /* refuse to open when the region cannot be locked */
    const char *swap_dir;   /* NULL: $XDG_RUNTIME_DIR, else $TMPDIR, else /tmp */
    int mechanism;          /* enum core_mech */
    double eps;             /* ε per sanitized token */
    double budget;          /* session budget */
    int cluster_size;       /* K, default 20 */
    int seeded;             /* tests only: deterministic noise from seed (not private) */
    uint64_t seed;
    const char *cache_dir;  /* cluster cache; NULL: $XDG_CACHE_HOME/cmif */
    int quiet;              /* no progress output */
};

void core_defaults(struct core_options *o);

/* How a token of user input was treated. */
enum core_tok_kind { CORE_TOK_KEPT = 0, CORE_TOK_REPLACED, CORE_TOK_PUBLIC, CORE_TOK_CONTROL };

struct core_tok_report {
    char orig[48];          /* piece as typed (UTF-8, truncated, control chars escaped) */
    char sent[48];          /* piece as sent */
    int kind;               /* enum core_tok_kind */
    double eps;             /* ε charged for this token */
    int cluster_size;
};

/* Result of encoding: vectors to hand to the decoder and the report. Owned by the caller
 * through core_batch_free; vecs is n x dim floats. */
struct core_batch {
    float *vecs;
    size_t n, cap;
    struct core_tok_report *rep;   /* n entries */
    double msg_eps;                /* ε this batch cost */
    int32_t *ids;                  /* n ids actually sent (sanitized): what the untrusted side
                                      may know anyway (e.g. for the sampler's penalties) */
};

enum core_seg {
    CORE_SEG_USER = 0,      /* user content: tokenized without special tokens, sanitized */
    CORE_SEG_TEMPLATE,      /* chat-template text: special tokens parsed, never sanitized */
};

#define CORE_EBUDGET (-3)   /* return code: the message would exceed the remaining budget */

struct core_status {
    int secretmem;          /* region is memfd_secret */
    int locked;             /* region is mlock'd (or secretmem, which is unswappable) */
    size_t region_bytes, bytes_locked, memlock_limit;
    int dumpable;           /* prctl(PR_GET_DUMPABLE) */
    uint64_t swap_pages_out, swap_pages_in, tamper_checks;
    size_t swap_file_bytes;
    char summary[160];      /* one line for status bars */
};

struct core;

int core_open(struct core **out, const char *model_path, const struct core_options *o,
              char *err, size_t errlen);
void core_close(struct core *c);

/* The model file (trusted reader) for building the decoder's weights. The decoder must not
 * take token_embd from it except as the output matrix of a tied-embedding model. */
const struct gguf *core_gguf(const struct core *c);
const struct tokenizer *core_tokenizer(const struct core *c);
int core_dim(const struct core *c);

/* Encode a segment and append its vectors to b. The text is copied into the region first;
 * the caller may wipe its copy afterwards (core_wipe). add_bos prepends BOS. For
 * CORE_SEG_USER, budget is checked for the whole segment before anything is appended:
 * CORE_EBUDGET with err saying what is left and what the message would cost. */
int core_encode(struct core *c, const char *text, size_t len, int seg, int add_bos,
                struct core_batch *b, char *err, size_t errlen);
void core_batch_free(struct core_batch *b);

/* Embedding of a token the model generated (not user input) into out[dim]. */
int core_embed_token(struct core *c, int32_t id, float *out, char *err, size_t errlen);

int core_set_eps(struct core *c, double eps, char *err, size_t errlen);
int core_set_mechanism(struct core *c, int mech, char *err, size_t errlen);
double core_eps(const struct core *c);
int core_mechanism(const struct core *c);
double core_budget_total(const struct core *c);
double core_budget_spent(const struct core *c);
const char *core_mech_name(int mech);
int core_mech_parse(const char *name);        /* -1 when unknown */

void core_status(const struct core *c, struct core_status *st);
/* Parses a --core-mem value: bytes, or with a K/M/G (KiB/MiB/GiB) suffix. 0 or -1. */
int core_parse_size(const char *s, size_t *out);
void core_wipe(void *p, size_t n);            /* sodium_memzero */

#endif
