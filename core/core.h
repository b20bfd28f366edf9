/* core/core.h: the confidential core's one public API, the only door from app/ into core/
 * (app/ may also read the public weights with core/gguf.h).
 *
 * Raw user text, its token ids, the sanitizer's randomness and the embedding table live
 * only behind this interface, in a guarded region (core/enclave) with an encrypted swap
 * (core/swap) for what does not fit. What comes out: float vectors (embeddings of
 * sanitized tokens, or of tokens the model generated), detokenized text, a per-token
 * privacy report for the user's own screen, and facts (a budget refusal, progress lines)
 * that the caller words for its own interface: no message of the core names a CLI flag.
 * Besides the confidential path: core_vocab_* (the tokenizer for public text, no guarded
 * memory) and core_eval_* (the sanitizer on public data sets, for measurements). */
#ifndef CMIF_CORE_CORE_H
#define CMIF_CORE_CORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/gguf.h"   /* core_gguf: the public weights and metadata */

enum core_mech {
    CORE_MECH_RNM = 0,      /* Report-Noisy-Max, Laplace noise (default) */
    CORE_MECH_RNM_EXP,      /* RNM with exponential noise (= permute-and-flip) */
    CORE_MECH_SANTEXT,      /* SanText+ baseline */
    CORE_MECH_CUSTEXT,      /* CusText+ baseline */
    CORE_MECH_NONE,         /* no sanitization: engine use and the core-off benchmark */
};

/* What one application of the mechanism covers (--unit). */
enum core_unit {
    CORE_UNIT_WORD = 0,     /* a word of the text costs ε once and is replaced by a whole word */
    CORE_UNIT_TOKEN,        /* every sub-word piece is sanitized on its own (the paper's way) */
};
/* Which words are sanitized (--sanitize; a fixed public rule, see core/words.h). */
enum core_scope {
    CORE_SCOPE_AUTO = 0,    /* common words in clear; names, numbers, rare words sanitized */
    CORE_SCOPE_ALL,         /* every word */
    CORE_SCOPE_MARKED,      /* only what the user marks with {{ }} */
};

struct core_options {
    size_t mem_limit;       /* bytes of guarded region; 0 = fit under RLIMIT_MEMLOCK */
    int require_locked;     /* refuse to open when the region cannot be locked */
    const char *swap_dir;   /* NULL: $XDG_RUNTIME_DIR, else $TMPDIR, else /tmp */
    int mechanism;          /* enum core_mech */
    double eps;             /* ε per sanitized word (or token, with CORE_UNIT_TOKEN) */
    double budget;          /* ε a day (with a ledger) or for the session (without) */
    int unit;               /* enum core_unit */
    int scope;              /* enum core_scope (word unit) */
    /* The per-user ledger file ($XDG_STATE_HOME/cmif/ledger, chosen by the caller): every
     * charge is recorded there and the budget is a rolling 24-hour limit across processes
     * and restarts. NULL: no ledger, the budget is this session's alone. */
    const char *ledger_path;
    int cluster_size;       /* K, default 20 */
    int seeded;             /* tests only: deterministic noise from seed (not private) */
    uint64_t seed;
    const char *cache_dir;  /* cluster cache; NULL: $XDG_CACHE_HOME/cmif */
    int quiet;              /* no progress output */
    /* Progress and warnings, one line each (no "cmif: " prefix, no newline). NULL: on
     * stderr, as the command-line subcommands show them. */
    void (*log)(void *ctx, const char *msg);
    void *log_ctx;
    /* An embedding table this big or bigger is sealed into the encrypted swap at the first
     * lookup that follows the user's words (core/embed), a smaller one at open. 0: 64 MiB
     * (tests set it low). */
    size_t table_lazy_min;
};

void core_defaults(struct core_options *o);
/* Makes o a core that holds the table and its region only: no sanitizer (CORE_MECH_NONE, so
 * no clusters are built) and no progress lines. What `cmif generate` and `cmif info --core`
 * open, and the benchmarks' reference. */
void core_options_plain(struct core_options *o);

/* How a unit (word or token) of user input was, or will be, treated. */
enum core_tok_kind {
    CORE_TOK_KEPT = 0,      /* sanitized, and the mechanism chose the typed word itself */
    CORE_TOK_REPLACED,      /* sanitized into another word */
    CORE_TOK_PUBLIC,        /* common word sent as typed, ε 0 */
    CORE_TOK_CONTROL,       /* punctuation, template text: sent as is, ε 0 */
    CORE_TOK_RANDOM,        /* number / address: every letter and digit uniformly random,
                               the shape kept; ε 0 against the value */
    CORE_TOK_PLANNED,       /* preview only: will be sanitized when sent */
};
/* "kept", "replaced", "public", "control", "random", "sanitize"; "?" otherwise. */
const char *core_kind_name(int kind);

struct core_tok_report {
    char orig[48];          /* word or piece as typed (UTF-8, truncated, control chars
                               escaped; a word keeps its leading space) */
    char sent[48];          /* as sent */
    int kind;               /* enum core_tok_kind */
    double eps;             /* ε charged for this token */
    int cluster_size;
};

/* Why a message was refused for the budget (core_encode returned CORE_EBUDGET): the facts
 * the caller words for the user, with its own advice (a flag, a /command). */
struct core_refusal {
    double eps_cost;        /* what the message would cost */
    double eps_left;        /* what is left of the budget (today's, with a ledger) */
    double eps_total, eps_spent;
    size_t n_sanitized;     /* units of the message that would be charged */
    int64_t next_free;      /* with a ledger: when (unix time) enough of today's charges
                               expire for this message to fit; 0 when unknown, -1 never */
};

/* Result of encoding: vectors to hand to the decoder and the report. Owned by the caller
 * through core_batch_free; vecs is n x dim floats. */
struct core_batch {
    float *vecs;
    size_t n, cap;
    struct core_tok_report *rep;   /* nrep rows: one per token, or per word of user text
                                      (spaces left out) with the word unit */
    size_t nrep, rep_cap;
    double msg_eps;                /* ε this batch costs */
    /* Set by the caller before the first core_encode: charge nothing until core_commit, so
     * that a message refused afterwards (too long for the context, a failure on the way)
     * costs nothing. The vectors must not leave the process before core_commit succeeds. */
    int defer_charge;
    double pending;                /* ε encoded but not yet charged (defer_charge) */
    int32_t *ids;                  /* n ids actually sent (sanitized): what the untrusted side
                                      may know anyway (e.g. for the sampler's penalties) */
    struct core_refusal refusal;   /* set when core_encode returns CORE_EBUDGET */
};

enum core_seg {
    CORE_SEG_USER = 0,      /* user content: tokenized without special tokens, sanitized */
    CORE_SEG_TEMPLATE,      /* chat-template text: special tokens parsed, never sanitized */
};

#define CORE_EBUDGET (-3)   /* return code: the message would exceed the remaining budget */
#define CORE_ELOCKED (-4)   /* core_open: require_locked, but the region could not be locked */

struct core_status {
    int secretmem;          /* region is memfd_secret */
    int locked;             /* region is mlock'd (or secretmem, which is unswappable) */
    size_t region_bytes, bytes_locked, memlock_limit;
    int dumpable;           /* prctl(PR_GET_DUMPABLE) */
    uint64_t swap_pages_out, swap_pages_in, tamper_checks;
    size_t swap_file_bytes;
    int table_sealed;       /* the table is in the swap (else still read from the model file) */
    int table_in_swap;      /* it does not fit in the guarded cache: sealed, it is partly in
                               the encrypted swap file */
    char summary[160];      /* one line for status bars */
};

struct core;

/* 0, -1 with err, or CORE_ELOCKED (err says what could not be locked; the caller adds how
 * to give the core less memory or not require locking). */
int core_open(struct core **out, const char *model_path, const struct core_options *o,
              char *err, size_t errlen);
void core_close(struct core *c);

/* The model file (trusted reader) for the decoder's weights and public metadata (the chat
 * template). The decoder must not take token_embd from it except as the output matrix of
 * a tied-embedding model: the table is the core's (app/engine builds the decoder so). */
const struct gguf *core_gguf(const struct core *c);
int core_dim(const struct core *c);

/* The vocabulary, for generation loops. */
int32_t core_n_vocab(const struct core *c);
int32_t core_bos(const struct core *c);              /* -1 when none */
int32_t core_eos(const struct core *c);              /* -1 when none */
int core_add_bos(const struct core *c);              /* the model asks for BOS */
/* End of generation: EOS, EOT or a control token such as <|eot_id|> / <|im_end|>. */
int core_is_eog(const struct core *c, int32_t id);
/* Id of the token whose vocabulary text is exactly s (special tokens); -1 when none. */
int32_t core_find_token(const struct core *c, const char *s, size_t len);

/* Streaming detokenization state: the previous token, for llama.cpp's rule that the space
 * SentencePiece puts before the first word is dropped after BOS. */
struct core_detok {
    int32_t prev;           /* last token shown (or the last one of the prompt); -1: none */
};
void core_detok_init(struct core_detok *d, int32_t prev);
/* The bytes token id (one the model generated) stands for; control tokens are "" unless
 * show_special. d: streaming state, updated (NULL: the piece alone, no BOS rule). Returns
 * the byte count, which may exceed cap (output truncated); NUL-terminated when room remains. */
size_t core_piece(const struct core *c, struct core_detok *d, int32_t id, int show_special,
                  char *buf, size_t cap);

/* Encode a segment and append its vectors to b. The text is copied into the region first;
 * the caller may wipe its copy afterwards (core_wipe). add_bos prepends BOS. For
 * CORE_SEG_USER, budget is checked for the whole segment before anything is appended:
 * CORE_EBUDGET with b->refusal filled and err saying what is left and what the message
 * would cost (no advice: the caller adds its own). */
int core_encode(struct core *c, const char *text, size_t len, int seg, int add_bos,
                struct core_batch *b, char *err, size_t errlen);
/* Charges what a defer_charge batch encoded (b->pending) to the session and the ledger. 0,
 * CORE_EBUDGET (another process spent the budget meanwhile: b->refusal filled; send
 * nothing), or -1 (the ledger could not be written: send nothing). */
int core_commit(struct core *c, struct core_batch *b, char *err, size_t errlen);
/* What sending text as user content would do, without drawing any noise: one row per word
 * (orig, kind CORE_TOK_PUBLIC / _CONTROL / _RANDOM / _PLANNED, eps it would cost), at most
 * max rows; *eps_cost the message's ε. For the preview the user sees before Enter. 0 or -1. */
int core_preview(struct core *c, const char *text, size_t len, struct core_tok_report *rows,
                 size_t max, size_t *n, double *eps_cost, char *err, size_t errlen);
void core_batch_free(struct core_batch *b);

/* Embedding of a token the model generated (not user input) into out[dim]. */
int core_embed_token(struct core *c, int32_t id, float *out, char *err, size_t errlen);
/* Seals the whole embedding table into the encrypted swap now. The core does it itself
 * before the first lookup that follows the user's words (a word outside the lexicon), so
 * a start pays nothing for it; idle time (while the user types) is a good moment to call
 * this. 0, or -1 with err set. */
int core_seal_table(struct core *c, char *err, size_t errlen);
/* Builds now what the first sanitized message would otherwise build on its way: the
 * sanitizer of the core's unit (the word clusters and their row store, or the token
 * clusters) and the noise state, all from the public table and nothing from any text;
 * nothing is charged. A chat that will answer at once calls it while its other start-up
 * work runs (the decoder's device search), so the first message finds it done. Nothing to do
 * for CORE_MECH_NONE. 0, or -1 with err (the error the first message would have met; the
 * message tries again). */
int core_prepare(struct core *c, char *err, size_t errlen);

int core_set_eps(struct core *c, double eps, char *err, size_t errlen);
int core_set_mechanism(struct core *c, int mech, char *err, size_t errlen);
double core_eps(const struct core *c);
int core_mechanism(const struct core *c);
/* The budget: the daily limit and what the last 24 hours spent (with a ledger; refreshed
 * from the file by core_budget_refresh), or the session's. */
double core_budget_total(const struct core *c);
double core_budget_spent(const struct core *c);
double core_budget_session(const struct core *c);    /* spent by this process */
double core_budget_lifetime(const struct core *c);   /* ledger's all-time total (or session) */
int core_has_ledger(const struct core *c);
int core_budget_refresh(struct core *c, char *err, size_t errlen);
int core_unit(const struct core *c);
int core_scope(const struct core *c);
int core_set_scope(struct core *c, int scope, char *err, size_t errlen);
const char *core_scope_name(int scope);       /* "auto", "all", "marked" */
int core_scope_parse(const char *name);       /* -1 when unknown */
const char *core_unit_name(int unit);         /* "word", "token" */
int core_unit_parse(const char *name);        /* -1 when unknown */
/* Size and source of the public word list (for --help and /budget). */
size_t core_public_word_count(void);
/* Forgets every charge of the ledger at path (explicit user action; new key). 0 or -1. */
int core_ledger_reset(const char *path, char *err, size_t errlen);
/* The same for this core's own ledger, which it then reopens (charges go on into the reset
 * ledger). 0, or -1 with err (no ledger; the ledger could not be reset or reopened: the core
 * then refuses to send until restarted). */
int core_budget_reset(struct core *c, char *err, size_t errlen);
/* Sets the budget's limit (ε a day with a ledger, else the session's). 0 or -1. */
int core_set_budget(struct core *c, double limit, char *err, size_t errlen);
const char *core_mech_name(int mech);
int core_mech_parse(const char *name);        /* -1 when unknown */
/* Checks that x is a usable ε or budget (finite, > 0); what names it in err. 0 or -1. */
int core_check_eps(double x, const char *what, char *err, size_t errlen);
/* The characters public tokens are made of (sent as-is at ε 0, reported "public"). */
const char *core_public_chars(void);

void core_status(const struct core *c, struct core_status *st);

/* Where the core keeps one kind of secret (`cmif info --core`). */
struct core_place {
    char what[40];          /* "token table", "noise state", "mechanism scratch", ... */
    char where[120];        /* "memfd_secret, locked", "guarded mmap+mlock", "guarded mmap,
                               NOT LOCKED", or when it is not allocated yet, when it will be */
    size_t bytes;           /* page-rounded, 0 when not allocated yet */
};
/* Fills at most max rows and returns how many there are. Opens the noise state if no
 * message has yet (it is cheap; the sanitizers are built on the first message). -1 with
 * err when the noise state cannot be allocated. */
int core_places(struct core *c, struct core_place *rows, size_t max, char *err,
                size_t errlen);
/* Parses a --core-mem value: bytes, or with a K/M/G (KiB/MiB/GiB) suffix. 0 or -1. */
int core_parse_size(const char *s, size_t *out);
void core_wipe(void *p, size_t n);            /* sodium_memzero */

/* ---- Public text: the tokenizer without the core -------------------------------------
 * For public text only (`cmif tokenize`, data sets, training corpora): nothing here is held
 * in guarded memory or wiped. Same tokenizer as the core's. */
struct core_vocab;
int core_vocab_open(struct core_vocab **out, const struct gguf *g, char *err, size_t errlen);
void core_vocab_close(struct core_vocab *v);
/* add_bos: prepend BOS (and EOS where the model asks); parse_special: map special token
 * texts to their ids. len + 3 ids suffice (3 per byte for an SPM vocabulary without ▁). */
int core_vocab_encode(const struct core_vocab *v, const char *text, size_t len, int add_bos,
                      int parse_special, int32_t *ids, size_t max_ids, size_t *n_out,
                      char *err, size_t errlen);
/* As core_piece. */
size_t core_vocab_piece(const struct core_vocab *v, struct core_detok *d, int32_t id,
                        int show_special, char *buf, size_t cap);
/* The raw vocabulary string of a token (not NUL-terminated). */
const char *core_vocab_text(const struct core_vocab *v, int32_t id, size_t *len);
int32_t core_vocab_n(const struct core_vocab *v);
int32_t core_vocab_bos(const struct core_vocab *v);
int32_t core_vocab_eos(const struct core_vocab *v);
int core_vocab_add_bos(const struct core_vocab *v);

/* ---- Evaluation: the sanitizer on public data (`cmif eval-privacy`) -------------------
 * The same sanitizer the core runs (one builder), fed token ids of public text directly so
 * its privacy/utility trade-off can be measured. No cluster cache, no budget. */
struct core_eval;
struct core_eval_params {
    int cluster_size;       /* K */
    int quiet;
    int seeded;             /* reproducible noise: NOT private */
    uint64_t seed;
    double santext_p, santext_w;   /* SanText+ parameters */
    /* The table as n_vocab x dim rows already read with core_embed_token, to build from
     * without reading the guarded table again; NULL: read through the core. */
    const float *table;
};
int core_eval_open(struct core_eval **out, struct core *c, const struct core_eval_params *p,
                   char *err, size_t errlen);
void core_eval_close(struct core_eval *ev);
int core_eval_set(struct core_eval *ev, int mech, double eps, char *err, size_t errlen);
/* Sanitizes one token: *sent and *kind (enum core_tok_kind). */
int core_eval_sanitize(struct core_eval *ev, int32_t id, int32_t *sent, int *kind, char *err,
                       size_t errlen);
int core_eval_sanitizable(const struct core_eval *ev, int32_t id);   /* role: sanitized */
int32_t core_eval_clusters(const struct core_eval *ev);

/* ---- Word-level evaluation: the chat's word path on public text ---------------------------
 * The same split (core/words, with the shipped public list), the same word domain, clusters
 * (shared with the chat through the partition cache) and word sanitizer (core/wordsan) as
 * core_encode with the word unit, fed public sentences; no budget, no ledger. Everything it
 * exposes (domain, clusters) is public. */
struct core_eval_word;
/* One word unit of a sanitized sentence. */
struct core_eval_unit {
    int kind;           /* enum core_tok_kind: PUBLIC, RANDOM, KEPT, REPLACED */
    int32_t orig;       /* domain entry of the typed word (case-folded), -1 outside the domain */
    int32_t sent;       /* domain entry sent (KEPT/REPLACED), else -1 */
};
/* p->table must be set (n_vocab x dim rows read with core_embed_token). */
int core_eval_word_open(struct core_eval_word **out, struct core *c,
                        const struct core_eval_params *p, char *err, size_t errlen);
void core_eval_word_close(struct core_eval_word *ev);
/* Mechanism, ε and mode (enum core_scope). */
int core_eval_word_set(struct core_eval_word *ev, int mech, double eps, int scope, char *err,
                       size_t errlen);
/* Sanitizes text[0..len): the text that would be sent into out (cap >= core_eval_word_cap(len)
 * bytes, NUL-terminated) and one record per word unit (letters or digits) into units
 * (max_units >= len + 1 suffices). */
int core_eval_word_sanitize(struct core_eval_word *ev, const char *text, size_t len, char *out,
                            size_t cap, size_t *out_len, struct core_eval_unit *units,
                            size_t max_units, size_t *n_units, char *err, size_t errlen);
/* Room core_eval_word_sanitize needs for the output of len bytes of text. */
size_t core_eval_word_cap(size_t len);
int32_t core_eval_word_domain(const struct core_eval_word *ev);     /* entries */
int32_t core_eval_word_clusters(const struct core_eval_word *ev);
int32_t core_eval_word_cluster_of(const struct core_eval_word *ev, int32_t entry);  /* or -1 */
int core_eval_word_members(const struct core_eval_word *ev, int32_t cid, const int32_t **mem);
int32_t core_eval_word_token(const struct core_eval_word *ev, int32_t entry);  /* its row */
/* Is entry in SanText+'s sensitive set (the rarest fraction w by frequency rank)? */
int core_eval_word_sensitive(const struct core_eval_word *ev, int32_t entry);

#endif
