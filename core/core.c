/* core/core: the confidential core's public API (core/core.h).
 *
 * Raw text and token ids are only ever held in short-lived guarded regions (one per
 * core_encode call, wiped on free); the embedding table is in core/embed's swap pages. */
#include "core/core.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "core/budget.h"
#include "core/clrows.h"
#include "core/cluster.h"
#include "core/embed.h"
#include "core/enclave.h"
#include "core/gguf.h"
#include "core/mech.h"
#include "core/noise.h"
#include "core/qrow.h"
#include "core/sanitizer.h"
#include "core/swap.h"
#include "core/tokenizer.h"
#include "core/ledger.h"
#include "core/lexicon.h"
#include "core/util.h"
#include "core/words.h"
#include "core/wordsan.h"

#define KIB ((size_t)1024)
/* Smallest default region: below this a cache holds too few rows to be useful, so under a
 * tiny RLIMIT_MEMLOCK the core takes this much and reports that it is not locked. */
#define MIN_DEFAULT_MEM (256 * KIB)
/* Left under RLIMIT_MEMLOCK for the per-message regions (text + ids: about 9 bytes per
 * byte of text, so ~28 KiB of text) and the swap's key page. */
#define MEMLOCK_HEADROOM (256 * KIB)

struct core {
    struct gguf *g;
    struct tokenizer *tok;
    struct embed *emb;
    int dim;
    size_t mem_limit;           /* effective region target */
    int require_locked;
    int quiet;
    void (*log)(void *ctx, const char *msg);
    void *log_ctx;
    uint64_t msg_unlocked;      /* messages whose guarded region could not be locked */
    char *cache_dir;            /* copy of the option (the sanitizer's cluster cache) */
    char *swap_dir;             /* copy of the option (the word sanitizer's cluster rows) */
    unsigned char fp[32];       /* table_fingerprint, once have_fp */
    int have_fp;
    /* Sanitizer settings and accounting. */
    int mech;
    double eps;
    double budget_total, budget_spent;
    int cluster_size;
    int seeded;
    uint64_t seed;
    struct budget *bud;
    /* The sanitizer, built on the first user message (clustering can take a while). */
    struct sanitizer san;
    /* The word unit: the public list (at open: the preview needs it), the word sanitizer
     * (built on the first sanitized word) and its noise. */
    int unit, scope;
    struct words_list *pl;
    struct wordsan ws;
    struct noise *nz;
    struct ledger *led;         /* NULL: the budget is the session's */
    char *ledger_path;
    double session_spent;
};

static void core_log(const struct core *c, const char *msg)
{
    if (c->log) c->log(c->log_ctx, msg);
    else fprintf(stderr, "cmif: %s\n", msg);
}

void core_defaults(struct core_options *o)
{
    memset(o, 0, sizeof *o);
    o->mechanism = CORE_MECH_RNM;
    o->eps = 1.0;
    /* A day of chatting: 40 messages with a few sanitized words each, at ε 1 a word. */
    o->budget = 200.0;
    o->cluster_size = 20;
    o->unit = CORE_UNIT_WORD;
    o->scope = CORE_SCOPE_AUTO;
}

void core_options_plain(struct core_options *o)
{
    o->mechanism = CORE_MECH_NONE;
    o->quiet = 1;
}

void core_wipe(void *p, size_t n)
{
    if (p && n) sodium_memzero(p, n);
}

static const char *const mech_names[] = {"rnm", "rnm-exp", "santext", "custext", "none"};

const char *core_mech_name(int mech)
{
    if (mech < 0 || mech > CORE_MECH_NONE) return "unknown";
    return mech_names[mech];
}

int core_mech_parse(const char *name)
{
    if (!name) return -1;
    for (int i = 0; i <= CORE_MECH_NONE; i++)
        if (strcasecmp(name, mech_names[i]) == 0) return i;
    if (strcasecmp(name, "santext+") == 0) return CORE_MECH_SANTEXT;
    if (strcasecmp(name, "custext+") == 0) return CORE_MECH_CUSTEXT;
    if (strcasecmp(name, "pf") == 0 || strcasecmp(name, "permute-and-flip") == 0)
        return CORE_MECH_RNM_EXP;
    if (strcasecmp(name, "off") == 0) return CORE_MECH_NONE;
    return -1;
}

static size_t default_mem_limit(size_t table_bytes)
{
    struct enclave_stats st;
    enclave_stats(&st);
    size_t need = table_bytes + 2 * MEMLOCK_HEADROOM;
    if (need < table_bytes) need = table_bytes;     /* overflow: keep the table size */
    size_t avail = st.memlock_limit > 2 * MEMLOCK_HEADROOM
                       ? st.memlock_limit - MEMLOCK_HEADROOM : 0;
    size_t m = need < avail ? need : avail;
    if (m < MIN_DEFAULT_MEM) m = need < MIN_DEFAULT_MEM ? need : MIN_DEFAULT_MEM;
    return m;
}

static void fmt_bytes(char *buf, size_t n, size_t v)
{
    if (v == SIZE_MAX) snprintf(buf, n, "unlimited");
    else if (v >= 1024 * 1024) snprintf(buf, n, "%.1f MiB", (double)v / (1024.0 * 1024.0));
    else if (v >= 1024) snprintf(buf, n, "%zu KiB", v / 1024);
    else snprintf(buf, n, "%zu B", v);
}

/* Guarded bytes (whole pages) of the word sanitizer's cluster-row store for clusters of
 * K + 1 rows at most (the largest cluster_build makes). */
static size_t cluster_rows_reserve(const struct gguf_tensor *t, int k)
{
    size_t rb = qrow_bytes(t->type, (size_t)t->ne[0]);
    return (clrows_scratch_bytes(k + 1, rb) + 4095) & ~(size_t)4095;
}

int core_open(struct core **out, const char *model_path, const struct core_options *o,
              char *err, size_t errlen)
{
    *out = NULL;
    struct core_options def;
    if (!o) {
        core_defaults(&def);
        o = &def;
    }
    if (o->mechanism < 0 || o->mechanism > CORE_MECH_NONE) {
        snprintf(err, errlen, "core: unknown mechanism %d", o->mechanism);
        return -1;
    }
    if (!(o->eps > 0) || !isfinite(o->eps) || !(o->budget > 0) || !isfinite(o->budget)) {
        snprintf(err, errlen, "core: ε and the budget must be finite and > 0 (got %g, %g)",
                 o->eps, o->budget);
        return -1;
    }
    if (o->unit < CORE_UNIT_WORD || o->unit > CORE_UNIT_TOKEN || o->scope < CORE_SCOPE_AUTO ||
        o->scope > CORE_SCOPE_MARKED) {
        snprintf(err, errlen, "core: unknown unit %d or scope %d", o->unit, o->scope);
        return -1;
    }
    if (o->cluster_size < 2) {
        snprintf(err, errlen, "core: cluster size must be at least 2 (got %d)",
                 o->cluster_size);
        return -1;
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "core: libsodium failed to initialise");
        return -1;
    }
    /* Harden first: nothing secret exists yet, and a crash from here on leaves no core. */
    if (enclave_harden(err, errlen) != 0) return -1;

    struct core *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "core: out of memory");
        return -1;
    }
    c->mech = o->mechanism;
    c->eps = o->eps;
    c->budget_total = o->budget;
    c->cluster_size = o->cluster_size;
    c->seeded = o->seeded;
    c->seed = o->seed;
    c->require_locked = o->require_locked;
    c->quiet = o->quiet;
    c->log = o->log;
    c->log_ctx = o->log_ctx;
    c->unit = o->unit;
    c->scope = o->scope;
    if (words_list_open(&c->pl, NULL, 0, err, errlen) != 0) {
        core_close(c);
        return -1;
    }
    if (o->ledger_path && (!(c->ledger_path = strdup(o->ledger_path)) ||
                           ledger_open(&c->led, o->ledger_path, NULL, err, errlen) != 0)) {
        if (!c->ledger_path) snprintf(err, errlen, "core: out of memory");
        core_close(c);
        return -1;
    }
    if (budget_open(&c->bud, o->budget, err, errlen) != 0) {
        core_close(c);
        return -1;
    }
    if ((o->cache_dir && !(c->cache_dir = strdup(o->cache_dir))) ||
        (o->swap_dir && !(c->swap_dir = strdup(o->swap_dir)))) {
        snprintf(err, errlen, "core: out of memory");
        core_close(c);
        return -1;
    }
    if (gguf_open(&c->g, model_path, err, errlen) != 0 ||
        tok_open(&c->tok, c->g, err, errlen) != 0) {
        core_close(c);
        return -1;
    }
    const struct gguf_tensor *t = gguf_tensor(c->g, "token_embd.weight");
    if (!t) {
        snprintf(err, errlen, "core: %s has no token_embd.weight tensor", model_path);
        core_close(c);
        return -1;
    }
    c->mem_limit = o->mem_limit ? o->mem_limit : default_mem_limit((size_t)t->nbytes);
    /* The swap's key and version table take a page or two, and the word sanitizer's
     * cluster rows (core/clrows, built with the first sanitized word) a scratch region of
     * one cluster; the rest caches rows. */
    size_t ctl = 2 * 4096 + cluster_rows_reserve(t, o->cluster_size);
    struct embed_options eo = {
        .cache_bytes = c->mem_limit > 2 * ctl ? c->mem_limit - ctl : c->mem_limit / 2,
        .swap_dir = o->swap_dir,
        .lazy_min_bytes = o->table_lazy_min,
    };
    if (embed_open(&c->emb, c->g, &eo, err, errlen) != 0) {
        core_close(c);
        return -1;
    }
    c->dim = embed_dim(c->emb);
    if (embed_n_vocab(c->emb) < tok_n_vocab(c->tok)) {
        snprintf(err, errlen, "core: token_embd has %ld rows but the vocabulary has %ld tokens",
                 (long)embed_n_vocab(c->emb), (long)tok_n_vocab(c->tok));
        core_close(c);
        return -1;
    }
    struct core_status st;
    core_status(c, &st);
    if (c->require_locked && !st.locked) {
        char lim[32], need[32];
        fmt_bytes(lim, sizeof lim, st.memlock_limit);
        fmt_bytes(need, sizeof need, st.region_bytes);
        snprintf(err, errlen,
                 "core: refusing to run (require-locked): the guarded region (%s) could not "
                 "be locked in memory under RLIMIT_MEMLOCK %s", need, lim);
        core_close(c);
        return CORE_ELOCKED;
    }
    *out = c;
    return 0;
}

void core_close(struct core *c)
{
    if (!c) return;
    sanitizer_close(&c->san);
    wordsan_close(&c->ws);
    noise_close(c->nz);
    words_list_close(c->pl);
    ledger_close(c->led);
    free(c->ledger_path);
    budget_close(c->bud);
    embed_close(c->emb);
    tok_close(c->tok);
    gguf_close(c->g);
    free(c->cache_dir);
    free(c->swap_dir);
    sodium_memzero(c, sizeof *c);
    free(c);
}

const struct gguf *core_gguf(const struct core *c) { return c->g; }
int core_dim(const struct core *c) { return c->dim; }
int32_t core_n_vocab(const struct core *c) { return tok_n_vocab(c->tok); }
int32_t core_bos(const struct core *c) { return tok_bos(c->tok); }
int32_t core_eos(const struct core *c) { return tok_eos(c->tok); }
int core_add_bos(const struct core *c) { return tok_add_bos(c->tok); }
int core_is_eog(const struct core *c, int32_t id) { return tok_is_eog(c->tok, id); }

int32_t core_find_token(const struct core *c, const char *s, size_t len)
{
    return tok_find(c->tok, s, len);
}

void core_detok_init(struct core_detok *d, int32_t prev) { d->prev = prev; }

static size_t detok_piece(const struct tokenizer *t, struct core_detok *d, int32_t id,
                          int show_special, char *buf, size_t cap)
{
    if (!d) return tok_piece(t, id, show_special, buf, cap);
    size_t n = tok_piece_after(t, d->prev, id, show_special, buf, cap);
    d->prev = id;
    return n;
}

size_t core_piece(const struct core *c, struct core_detok *d, int32_t id, int show_special,
                  char *buf, size_t cap)
{
    return detok_piece(c->tok, d, id, show_special, buf, cap);
}

_Static_assert((int)MECH_RNM == (int)CORE_MECH_RNM && (int)MECH_RNM_EXP == (int)CORE_MECH_RNM_EXP &&
                   (int)MECH_SANTEXT == (int)CORE_MECH_SANTEXT && (int)MECH_CUSTEXT == (int)CORE_MECH_CUSTEXT &&
                   (int)MECH_NONE == (int)CORE_MECH_NONE, "enum mech_kind follows enum core_mech");
_Static_assert((int)WORDS_AUTO == (int)CORE_SCOPE_AUTO && (int)WORDS_ALL == (int)CORE_SCOPE_ALL &&
                   (int)WORDS_MARKED == (int)CORE_SCOPE_MARKED,
               "enum words_mode and enum core_scope must agree");
_Static_assert((int)MECH_KEPT == (int)CORE_TOK_KEPT && (int)MECH_REPLACED == (int)CORE_TOK_REPLACED &&
                   (int)MECH_PUBLIC == (int)CORE_TOK_PUBLIC && (int)MECH_CONTROL == (int)CORE_TOK_CONTROL,
               "enum mech_result follows enum core_tok_kind");

static const char *const kind_names[] = {"kept", "replaced", "public", "control", "random",
                                          "sanitize"};

const char *core_kind_name(int kind)
{
    if (kind < CORE_TOK_KEPT || kind > CORE_TOK_PLANNED) return "?";
    return kind_names[kind];
}

int core_check_eps(double x, const char *what, char *err, size_t errlen)
{
    return budget_valid(x, what, err, errlen);
}

const char *core_public_chars(void) { return mech_public_chars(); }

/* Report text for a piece: control bytes escaped, cut at a UTF-8 boundary. */
static void escape_piece(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        unsigned char ch = (unsigned char)s[i];
        char tmp[8];
        size_t tl;
        if (ch == '\n') { memcpy(tmp, "\\n", 2); tl = 2; }
        else if (ch == '\t') { memcpy(tmp, "\\t", 2); tl = 2; }
        else if (ch == '\r') { memcpy(tmp, "\\r", 2); tl = 2; }
        else if (ch == '\\') { memcpy(tmp, "\\\\", 2); tl = 2; }
        else if (ch < 0x20 || ch == 0x7f) { snprintf(tmp, sizeof tmp, "\\x%02x", ch); tl = 4; }
        else if (ch < 0x80) { tmp[0] = (char)ch; tl = 1; }
        else {
            /* A whole UTF-8 sequence or, if malformed, one escaped byte. */
            uint32_t cp;
            size_t n = tok_utf8_next(s + i, len - i, &cp);
            if (!n) { snprintf(tmp, sizeof tmp, "\\x%02x", ch); tl = 4; }
            else {
                if (o + n >= cap) break;
                memcpy(out + o, s + i, n);
                o += n;
                i += n;
                continue;
            }
        }
        if (o + tl >= cap) break;
        memcpy(out + o, tmp, tl);
        o += tl;
        i++;
    }
    out[o] = '\0';
}

static void piece_report(const struct tokenizer *t, int32_t id, char *out, size_t cap)
{
    char buf[128];
    size_t n = tok_piece(t, id, 1, buf, sizeof buf);
    if (n > sizeof buf) n = sizeof buf;
    escape_piece(buf, n, out, cap);
    sodium_memzero(buf, sizeof buf);
}

/* ============================ sanitize step: the DP sanitizer ============================
 * ids[0..n-1]: the raw token ids, in the guarded region. Writes the ids to send into
 * sent[0..n-1] (also in the region) and, per token, rep[i].kind / .eps / .cluster_size;
 * *msg_eps is what the message costs. CORE_SEG_TEMPLATE text is never sanitized.
 * Returns 0, CORE_EBUDGET (nothing charged, err says what is left), or -1. */

static int san_row(void *ctx, int32_t id, float *out)
{
    char e[8];
    return embed_row(((struct core *)ctx)->emb, id, out, e, sizeof e);
}

static int san_rows(void *ctx, const int32_t *ids, size_t n, float *out)
{
    char e[8];
    return embed_rows(((struct core *)ctx)->emb, ids, n, out, e, sizeof e);
}

static int san_rows_raw(void *ctx, const int32_t *ids, size_t n, uint8_t *out)
{
    char e[8];
    return embed_rows_raw(((struct core *)ctx)->emb, ids, n, out, e, sizeof e);
}

/* Fixed public sets (clustering, centroids): core/embed may serve them from the mapping. */
static int san_rows_public(void *ctx, const int32_t *ids, size_t n, float *out)
{
    char e[8];
    return embed_rows_public(((struct core *)ctx)->emb, ids, n, out, e, sizeof e);
}

/* The cluster caches are named by the embedding table's name (core/embed: its place and
 * the model file's identity) and the vocabulary; hashed once per core (all 128k token texts
 * of a Llama 3 vocabulary), as the token and the word sanitizer both ask for it. */
static void table_fingerprint(struct core *c, unsigned char fp[32])
{
    if (c->have_fp) {
        memcpy(fp, c->fp, 32);
        return;
    }
    int32_t n = tok_n_vocab(c->tok);
    crypto_generichash_state hs;
    crypto_generichash_init(&hs, NULL, 0, 32);
    crypto_generichash_update(&hs, embed_fingerprint(c->emb), 32);
    for (int32_t id = 0; id < n; id++) {
        size_t len = 0;
        const char *t = tok_text(c->tok, id, &len);
        uint32_t hdr[2] = {(uint32_t)len, (uint32_t)tok_type(c->tok, id)};
        crypto_generichash_update(&hs, (const unsigned char *)hdr, sizeof hdr);
        if (t && len) crypto_generichash_update(&hs, (const unsigned char *)t, len);
    }
    crypto_generichash_update(&hs, (const unsigned char *)mech_public_chars(),
                              strlen(mech_public_chars()));
    crypto_generichash_final(&hs, fp, 32);
    memcpy(c->fp, fp, 32);
    c->have_fp = 1;
}

static void cache_dir_of(const struct core *c, char *dir, size_t cap)
{
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    dir[0] = 0;
    if (c->cache_dir) snprintf(dir, cap, "%s", c->cache_dir);
    else if (xdg && *xdg == '/') snprintf(dir, cap, "%s/cmif", xdg);
    else if (home && *home == '/') snprintf(dir, cap, "%s/.cache/cmif", home);
}

static int san_init(struct core *c, char *err, size_t errlen)
{
    if (c->san.mc) return 0;
    unsigned char fp[32];
    table_fingerprint(c, fp);
    char dir[4096];
    cache_dir_of(c, dir, sizeof dir);
    struct sanitizer_params sp = {
        .tok = c->tok, .dim = c->dim, .row = san_row, .rows = san_rows,
        .pub_rows = san_rows_public, .ctx = c,
        .k = c->cluster_size, .quiet = c->quiet, .cache_dir = dir, .fingerprint = fp,
        .log = c->log, .log_ctx = c->log_ctx, .seeded = c->seeded, .seed = c->seed,
        .mech = c->mech, .eps = c->eps,
    };
    if (sanitizer_open(&c->san, &sp, err, errlen) != 0) return -1;
    if (c->seeded)
        core_log(c, "WARNING: seeded sanitizer: the noise is reproducible, so this run is NOT "
                    "private; use it for tests only");
    return 0;
}

/* ---- the budget: session and ledger ---------------------------------------------------- */

static int64_t now_s(void) { return (int64_t)time(NULL); }

double core_budget_total(const struct core *c) { return c->budget_total; }
double core_budget_spent(const struct core *c)
{
    return c->led ? ledger_today(c->led, now_s()) : c->session_spent;
}
double core_budget_session(const struct core *c) { return c->session_spent; }
double core_budget_lifetime(const struct core *c)
{
    return c->led ? ledger_lifetime(c->led) : c->session_spent;
}
int core_has_ledger(const struct core *c) { return c->led != NULL; }
int core_budget_refresh(struct core *c, char *err, size_t errlen)
{
    return c->led ? ledger_refresh(c->led, err, errlen) : 0;
}

/* Whether cost (on top of what the batch holds uncharged) fits; fills the refusal when not.
 * 0, CORE_EBUDGET, or -1 (the ledger could not be read: fail closed). */
static int price_check(struct core *c, double cost, const struct core_batch *b,
                       struct core_refusal *r, char *err, size_t errlen)
{
    double want = cost + b->pending;
    double spent, left;
    int fits;
    if (c->ledger_path && !c->led) {
        snprintf(err, errlen, "core: the privacy ledger could not be reopened; nothing is sent "
                              "until cmif is restarted");
        return -1;
    }
    if (c->led) {
        if (ledger_refresh(c->led, err, errlen) != 0) return -1;
        int64_t now = now_s();
        fits = ledger_check(c->led, want, c->budget_total, now, &left) == 0;
        spent = ledger_today(c->led, now);
        if (!fits) r->next_free = ledger_next_free(c->led, want, c->budget_total, now);
    } else {
        fits = budget_check(c->bud, want, err, errlen) == 0;
        spent = budget_spent(c->bud);
        left = budget_remaining(c->bud);
    }
    if (fits) return 0;
    r->eps_cost = want;
    r->eps_left = left > 0 ? left : 0;
    r->eps_total = c->budget_total;
    r->eps_spent = spent;
    snprintf(err, errlen, "privacy budget: this message would cost ε %g but %g of %g is left%s "
                          "(spent %g)", want, r->eps_left, c->budget_total,
             c->led ? " today" : "", spent);
    return CORE_EBUDGET;
}

/* Records cost: the ledger first (it can refuse or fail), then the session. */
static int charge(struct core *c, double cost, struct core_refusal *r, char *err,
                  size_t errlen)
{
    if (cost <= 0) return 0;
    if (c->ledger_path && !c->led) {
        snprintf(err, errlen, "core: the privacy ledger is not open");
        return -1;
    }
    if (c->led) {
        int64_t now = now_s();
        int rc = ledger_charge(c->led, cost, c->budget_total, now, err, errlen);
        if (rc == 1) {
            if (r) {
                r->eps_cost = cost;
                r->eps_total = c->budget_total;
                r->eps_spent = ledger_today(c->led, now);
                r->eps_left = c->budget_total - r->eps_spent;
                if (r->eps_left < 0) r->eps_left = 0;
                r->next_free = ledger_next_free(c->led, cost, c->budget_total, now);
            }
            return CORE_EBUDGET;
        }
        if (rc != 0) return -1;
        /* The session's own accountant follows the ledger; its limit is not the binding one. */
        c->session_spent += cost;
        return 0;
    }
    if (budget_spend(c->bud, cost, err, errlen) != 0) return CORE_EBUDGET;
    c->session_spent = budget_spent(c->bud);
    c->budget_spent = c->session_spent;
    return 0;
}

static int core_sanitize_ids(struct core *c, int seg, const int32_t *ids, int32_t *sent,
                             size_t n, struct core_tok_report *rep, double *msg_eps,
                             const struct core_batch *b, struct core_refusal *refusal,
                             char *err, size_t errlen)
{
    *msg_eps = 0;
    if (seg == CORE_SEG_TEMPLATE || c->mech == CORE_MECH_NONE) {
        for (size_t i = 0; i < n; i++) {
            int ty = tok_type(c->tok, ids[i]);
            sent[i] = ids[i];
            rep[i].kind = seg == CORE_SEG_TEMPLATE || ty == TOK_T_CONTROL ? CORE_TOK_CONTROL
                                                                          : CORE_TOK_KEPT;
            rep[i].eps = 0;
            rep[i].cluster_size = 0;
        }
        return 0;
    }
    if (san_init(c, err, errlen) != 0) return -1;
    struct mech *mc = c->san.mc;
    if (mech_kind(mc) != c->mech && mech_set_kind(mc, c->mech, err, errlen) != 0) return -1;
    if (mech_eps(mc) != c->eps && mech_set_eps(mc, c->eps, err, errlen) != 0) return -1;
    /* The whole message is priced and checked before any token is sanitized. */
    size_t charged = 0;
    for (size_t i = 0; i < n; i++) charged += (size_t)mech_charges(mc, ids[i]);
    double cost = budget_cost(charged, c->eps);
    int rc = price_check(c, cost, b, refusal, err, errlen);
    if (rc != 0) {
        refusal->n_sanitized = charged;
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        struct mech_out o;
        if (mech_sanitize(mc, ids[i], &o, err, errlen) != 0) return -1;
        sent[i] = o.sent;
        rep[i].kind = o.kind;      /* enum mech_result == enum core_tok_kind */
        rep[i].eps = o.eps;
        rep[i].cluster_size = o.cluster_size;
    }
    *msg_eps = cost;
    return 0;
}
/* =================================== end sanitize step =================================== */

/* Fresh buffers (not realloc) so the old copies can be wiped: with the sanitizer off, or for
 * public words, the ids, vectors and report rows are the user's own. */
static int batch_reserve(struct core_batch *b, size_t extra, int dim, char *err, size_t errlen)
{
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 16;
    while (cap < b->n + extra) cap *= 2;
    if (cap > SIZE_MAX / sizeof(float) / (size_t)dim) {
        snprintf(err, errlen, "core: batch too large");
        return -1;
    }
    float *v = calloc(cap * (size_t)dim, sizeof *v);
    int32_t *ids = calloc(cap, sizeof *ids);
    if (!v || !ids) {
        free(v);
        free(ids);
        snprintf(err, errlen, "core: out of memory for %zu vectors", cap);
        return -1;
    }
    if (b->n) {
        memcpy(v, b->vecs, b->n * (size_t)dim * sizeof *v);
        memcpy(ids, b->ids, b->n * sizeof *ids);
    }
    if (b->vecs) sodium_memzero(b->vecs, b->cap * (size_t)dim * sizeof *b->vecs);
    if (b->ids) sodium_memzero(b->ids, b->cap * sizeof *b->ids);
    free(b->vecs);
    free(b->ids);
    b->vecs = v;
    b->ids = ids;
    b->cap = cap;
    return 0;
}

static int rep_reserve(struct core_batch *b, size_t extra, char *err, size_t errlen)
{
    if (b->nrep + extra <= b->rep_cap) return 0;
    size_t cap = b->rep_cap ? b->rep_cap : 16;
    while (cap < b->nrep + extra) cap *= 2;
    struct core_tok_report *r = calloc(cap, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "core: out of memory for %zu report rows", cap);
        return -1;
    }
    if (b->nrep) memcpy(r, b->rep, b->nrep * sizeof *r);
    if (b->rep) sodium_memzero(b->rep, b->rep_cap * sizeof *b->rep);
    free(b->rep);
    b->rep = r;
    b->rep_cap = cap;
    return 0;
}

void core_batch_free(struct core_batch *b)
{
    if (!b) return;
    /* The report holds the user's own words, and the ids are the user's own when the
     * sanitizer is off or a word is public. The vectors already crossed the boundary. */
    if (b->rep) sodium_memzero(b->rep, b->rep_cap * sizeof *b->rep);
    if (b->ids) sodium_memzero(b->ids, b->cap * sizeof *b->ids);
    free(b->vecs);
    free(b->rep);
    free(b->ids);
    memset(b, 0, sizeof *b);
}

/* ---- the word unit -------------------------------------------------------------------- */

static _Thread_local struct noise *t_nz;
static uint32_t rand_below(const uint32_t upper) { return (uint32_t)noise_uniform(t_nz, upper); }

static int words_init(struct core *c, char *err, size_t errlen)
{
    if (!c->nz && noise_open(&c->nz, c->seeded, c->seed, err, errlen) != 0) return -1;
    if (c->ws.mc) return 0;
    unsigned char fp[32];
    table_fingerprint(c, fp);
    char dir[4096];
    cache_dir_of(c, dir, sizeof dir);
    struct wordsan_params wp = {
        .tok = c->tok, .pl = c->pl, .dim = c->dim, .rows = san_rows, .ctx = c,
        .raw_rows = san_rows_raw, .row_type = embed_type(c->emb),
        .row_bytes = embed_row_bytes(c->emb), .swap_dir = c->swap_dir,
        .pub_rows = san_rows_public,
        .k = c->cluster_size, .quiet = c->quiet, .cache_dir = dir, .fingerprint = fp,
        .log = c->log, .log_ctx = c->log_ctx, .noise = c->nz,
        .mech = c->mech == CORE_MECH_NONE ? CORE_MECH_RNM : c->mech, .eps = c->eps,
    };
    if (wordsan_open(&c->ws, &wp, err, errlen) != 0) return -1;
    if (c->seeded)
        core_log(c, "WARNING: seeded sanitizer: the noise is reproducible, so this run is NOT "
                    "private; use it for tests only");
    return 0;
}

/* The word's text without its leading space. */
static void unit_word(const char *t, const struct words_unit *u, const char **w, size_t *n)
{
    *w = t + u->off;
    *n = u->len;
    if (*n && **w == ' ') {
        (*w)++;
        (*n)--;
    }
}

/* Would this unit be charged (a sanitized word the mechanism prices)? */
static int unit_charged(struct core *c, const char *t, const struct words_unit *u)
{
    if (u->treat != WORDS_SANITIZE || c->mech == CORE_MECH_NONE) return 0;
    if (c->mech != CORE_MECH_CUSTEXT) return 1;
    const char *w;
    size_t n;
    unit_word(t, u, &w, &n);
    return !mech_is_stopword(w, n);
}

static int unit_kind(struct core *c, const char *t, const struct words_unit *u)
{
    if (u->treat == WORDS_CONTROL) return CORE_TOK_CONTROL;
    if (u->treat == WORDS_RANDOM) return c->mech == CORE_MECH_NONE ? CORE_TOK_KEPT : CORE_TOK_RANDOM;
    if (u->treat == WORDS_SANITIZE && unit_charged(c, t, u)) return CORE_TOK_PLANNED;
    if (u->treat == WORDS_SANITIZE && c->mech == CORE_MECH_NONE) return CORE_TOK_KEPT;
    return CORE_TOK_PUBLIC;
}

/* Splits text (already in the guarded region) into units there. */
struct wsplit {
    struct enclave *r;
    char *text, *clean;
    struct words_unit *u;
    size_t nu, clean_len;
    int32_t *ids;               /* scratch for one word's pieces */
};

static int wsplit_open(struct core *c, const char *text, size_t len, struct wsplit *ws,
                       char *err, size_t errlen)
{
    memset(ws, 0, sizeof *ws);
    size_t maxu = len + 1;
    size_t clean_off = (len + 8) & ~(size_t)7;
    size_t u_off = (clean_off + len + 8) & ~(size_t)7;
    size_t ids_off = u_off + maxu * sizeof(struct words_unit);
    /* A whole number of 16-byte units: the region's data ends at its guard page, so its size
     * decides the alignment of the units array. */
    size_t bytes = (ids_off + (len + 4) * sizeof(int32_t) + 15) & ~(size_t)15;
    if (enclave_alloc(&ws->r, bytes, 0, err, errlen) != 0) return -1;
    if (!ws->r->locked) c->msg_unlocked++;
    if ((c->require_locked && !ws->r->locked) || enclave_unseal(ws->r, err, errlen) != 0) {
        if (c->require_locked && !ws->r->locked)
            snprintf(err, errlen, "core: cannot lock memory for this message (require-locked); "
                                  "RLIMIT_MEMLOCK is exhausted");
        enclave_free(ws->r);
        ws->r = NULL;
        return -1;
    }
    ws->text = (char *)ws->r->ptr;
    ws->clean = ws->text + clean_off;
    ws->u = (struct words_unit *)(void *)(ws->r->ptr + u_off);
    ws->ids = (int32_t *)(void *)(ws->r->ptr + ids_off);
    if (len) memcpy(ws->text, text, len);
    int rc = words_split(c->pl, c->scope, ws->text, len, ws->u, maxu, &ws->nu, ws->clean,
                         &ws->clean_len, err, errlen);
    if (rc != 0) {
        enclave_free(ws->r);
        ws->r = NULL;
    }
    return rc;
}

static void report_text(const char *s, size_t n, char *out, size_t cap)
{
    escape_piece(s, n, out, cap);
}

int core_preview(struct core *c, const char *text, size_t len, struct core_tok_report *rows,
                 size_t max, size_t *n, double *eps_cost, char *err, size_t errlen)
{
    *n = 0;
    *eps_cost = 0;
    if (c->unit != CORE_UNIT_WORD) {
        snprintf(err, errlen, "core: the preview needs the word unit");
        return -1;
    }
    struct wsplit ws;
    if (wsplit_open(c, text, len, &ws, err, errlen) != 0) return -1;
    for (size_t i = 0; i < ws.nu; i++) {
        const struct words_unit *u = &ws.u[i];
        if (u->cls == WORDS_SPACE) continue;
        int k = unit_kind(c, ws.clean, u);
        double e = k == CORE_TOK_PLANNED ? c->eps : 0;
        *eps_cost += e;
        if (*n < max) {
            struct core_tok_report *r = &rows[(*n)++];
            memset(r, 0, sizeof *r);
            report_text(ws.clean + u->off, u->len, r->orig, sizeof r->orig);
            r->kind = k;
            r->eps = e;
        }
    }
    enclave_free(ws.r);
    return 0;
}

/* The word path of core_encode for user text: units, prices, substitutes, then the
 * sanitized text is tokenized and embedded. */
static int encode_words(struct core *c, const char *text, size_t len, int add_bos,
                        struct core_batch *b, double *msg_eps, char *err, size_t errlen)
{
    struct wsplit ws;
    if (wsplit_open(c, text, len, &ws, err, errlen) != 0) return -1;
    struct enclave *out = NULL;
    int rc = -1;
    size_t charged = 0;
    for (size_t i = 0; i < ws.nu; i++) charged += (size_t)unit_charged(c, ws.clean, &ws.u[i]);
    double cost = budget_cost(charged, c->eps);
    if (charged || c->mech != CORE_MECH_NONE) {
        rc = price_check(c, cost, b, &b->refusal, err, errlen);
        if (rc != 0) {
            b->refusal.n_sanitized = charged;
            goto done;
        }
        rc = -1;
    }
    if (charged && words_init(c, err, errlen) != 0) goto done;
    if (!c->nz && noise_open(&c->nz, c->seeded, c->seed, err, errlen) != 0) goto done;
    if (charged) {
        struct mech *mc = c->ws.mc;
        if (mech_kind(mc) != c->mech && mech_set_kind(mc, c->mech, err, errlen) != 0) goto done;
        if (mech_eps(mc) != c->eps && mech_set_eps(mc, c->eps, err, errlen) != 0) goto done;
    }
    /* The sanitized text: at most each unit's length or a substitute (a space and a domain
     * word) per sanitized unit. */
    size_t cap = ws.clean_len + 1 + charged * (LEXICON_MAX_WORD + 2);
    size_t max_ids = cap + 3;
    size_t ids_off = (cap + 8) & ~(size_t)7;
    if (enclave_alloc(&out, (ids_off + max_ids * sizeof(int32_t) + 15) & ~(size_t)15, 0, err,
                      errlen) != 0 ||
        enclave_unseal(out, err, errlen) != 0)
        goto done;
    char *st = (char *)out->ptr;
    int32_t *ids = (int32_t *)(void *)(out->ptr + ids_off);
    size_t sl = 0, nrows = 0;
    for (size_t i = 0; i < ws.nu; i++) nrows += ws.u[i].cls != WORDS_SPACE;
    if (rep_reserve(b, nrows, err, errlen) != 0) goto done;
    struct core_tok_report *rows = b->rep ? b->rep + b->nrep : NULL;
    if (nrows) memset(rows, 0, nrows * sizeof *rows);
    size_t ri = 0;
    t_nz = c->nz;
    for (size_t i = 0; i < ws.nu; i++) {
        const struct words_unit *u = &ws.u[i];
        const char *src = ws.clean + u->off;
        size_t start = sl;
        int kind = unit_kind(c, ws.clean, u);
        int csize = 0;
        if (kind == CORE_TOK_RANDOM) {
            sl += words_randomize(src, u->len, st + sl, rand_below);
        } else if (kind == CORE_TOK_PLANNED) {
            const char *w;
            size_t wn;
            unit_word(ws.clean, u, &w, &wn);
            if (wn < u->len) st[sl++] = ' ';
            int k;
            if (wordsan_word(&c->ws, w, wn, ws.ids, st + sl, cap - sl, &k, &csize, err,
                             errlen) != 0)
                goto done;
            sl += strlen(st + sl);
            kind = k ? CORE_TOK_REPLACED : CORE_TOK_KEPT;
        } else {
            memcpy(st + sl, src, u->len);
            sl += u->len;
        }
        if (u->cls == WORDS_SPACE) continue;
        struct core_tok_report *r = &rows[ri++];
        report_text(src, u->len, r->orig, sizeof r->orig);
        report_text(st + start, sl - start, r->sent, sizeof r->sent);
        r->kind = kind;
        r->eps = kind == CORE_TOK_KEPT || kind == CORE_TOK_REPLACED ? c->eps : 0;
        r->cluster_size = csize;
        if (c->mech == CORE_MECH_NONE) r->eps = 0;
    }
    size_t n = 0;
    if (tok_encode(c->tok, st, sl, add_bos, 0, ids, max_ids, &n, err, errlen) != 0) goto done;
    if (batch_reserve(b, n, c->dim, err, errlen) != 0) goto done;
    /* The ids of the text as sent: the decoder gets their vectors, so the lookup may be
     * seen. */
    if (embed_rows_public(c->emb, ids, n, b->vecs + b->n * (size_t)c->dim, err, errlen) != 0)
        goto done;
    memcpy(b->ids + b->n, ids, n * sizeof *ids);
    b->n += n;
    b->nrep += ri;
    *msg_eps = cost;
    rc = 0;
done:
    if (rc != 0 && b->rep) sodium_memzero(b->rep + b->nrep, (b->rep_cap - b->nrep) * sizeof *b->rep);
    t_nz = NULL;
    if (out) enclave_free(out);
    enclave_free(ws.r);
    return rc;
}

/* The token path: template text, and user text with the token unit. */
static int encode_tokens(struct core *c, const char *text, size_t len, int seg, int add_bos,
                         struct core_batch *b, double *msg_eps, char *err, size_t errlen)
{
    /* One guarded region per call: the text, its raw ids and the ids to send. */
    size_t max_ids = len + 3;
    size_t ids_off = (len + 1 + 3) & ~(size_t)3;
    size_t bytes = ids_off + 2 * max_ids * sizeof(int32_t);
    struct enclave *r;
    if (enclave_alloc(&r, bytes, 0, err, errlen) != 0) return -1;
    if (!r->locked) c->msg_unlocked++;
    if (c->require_locked && !r->locked) {
        enclave_free(r);
        snprintf(err, errlen, "core: cannot lock memory for this message (require-locked); "
                              "RLIMIT_MEMLOCK is exhausted");
        return -1;
    }
    if (enclave_unseal(r, err, errlen) != 0) {
        enclave_free(r);
        return -1;
    }
    char *rtext = (char *)r->ptr;
    int32_t *ids = (int32_t *)(void *)(r->ptr + ids_off);
    int32_t *sent = ids + max_ids;
    int rc = -1;
    size_t n = 0;
    if (len) memcpy(rtext, text, len);
    if (tok_encode(c->tok, rtext, len, add_bos, seg == CORE_SEG_TEMPLATE, ids, max_ids, &n,
                   err, errlen) != 0)
        goto out;
    if (batch_reserve(b, n, c->dim, err, errlen) != 0 || rep_reserve(b, n, err, errlen) != 0)
        goto out;
    struct core_tok_report *rep = b->rep + b->nrep;
    memset(rep, 0, n * sizeof *rep);
    rc = core_sanitize_ids(c, seg, ids, sent, n, rep, msg_eps, b, &b->refusal, err, errlen);
    if (rc != 0) {
        memset(rep, 0, n * sizeof *rep);
        goto out;
    }
    rc = embed_rows_public(c->emb, sent, n, b->vecs + b->n * (size_t)c->dim, err, errlen);
    if (rc != 0) {
        memset(rep, 0, n * sizeof *rep);
        goto out;
    }
    memcpy(b->ids + b->n, sent, n * sizeof *sent);
    for (size_t i = 0; i < n; i++) {
        piece_report(c->tok, ids[i], rep[i].orig, sizeof rep[i].orig);
        piece_report(c->tok, sent[i], rep[i].sent, sizeof rep[i].sent);
    }
    b->n += n;
    b->nrep += n;
out:
    enclave_free(r);    /* wipes text and ids */
    return rc;
}

int core_encode(struct core *c, const char *text, size_t len, int seg, int add_bos,
                struct core_batch *b, char *err, size_t errlen)
{
    if (seg != CORE_SEG_USER && seg != CORE_SEG_TEMPLATE) {
        snprintf(err, errlen, "core: unknown segment kind %d", seg);
        return -1;
    }
    if (!text && len) {
        snprintf(err, errlen, "core: NULL text");
        return -1;
    }
    if (len > ((size_t)1 << 28)) {
        snprintf(err, errlen, "core: text of %zu bytes is too long", len);
        return -1;
    }
    double msg_eps = 0;
    int rc;
    if (seg == CORE_SEG_USER && c->unit == CORE_UNIT_WORD) {
        rc = encode_words(c, text, len, add_bos, b, &msg_eps, err, errlen);
    } else {
        rc = encode_tokens(c, text, len, seg, add_bos, b, &msg_eps, err, errlen);
    }
    if (rc != 0) return rc;
    if (b->defer_charge) {
        b->pending += msg_eps;
    } else {
        rc = charge(c, msg_eps, &b->refusal, err, errlen);
        if (rc != 0) return rc;
    }
    b->msg_eps += msg_eps;
    return 0;
}

int core_commit(struct core *c, struct core_batch *b, char *err, size_t errlen)
{
    int rc = charge(c, b->pending, &b->refusal, err, errlen);
    if (rc == CORE_EBUDGET)
        snprintf(err, errlen, "privacy budget: this message would cost ε %g but %g of %g is "
                              "left today", b->refusal.eps_cost, b->refusal.eps_left,
                 b->refusal.eps_total);
    if (rc == 0) b->pending = 0;
    return rc;
}

int core_embed_token(struct core *c, int32_t id, float *out, char *err, size_t errlen)
{
    return embed_rows_public(c->emb, &id, 1, out, err, errlen);
}

int core_seal_table(struct core *c, char *err, size_t errlen)
{
    return embed_seal(c->emb, err, errlen);
}

int core_prepare(struct core *c, char *err, size_t errlen)
{
    if (c->mech == CORE_MECH_NONE) return 0;
    return c->unit == CORE_UNIT_WORD ? words_init(c, err, errlen) : san_init(c, err, errlen);
}

int core_set_eps(struct core *c, double eps, char *err, size_t errlen)
{
    if (!(eps > 0) || !isfinite(eps)) {
        snprintf(err, errlen, "core: ε must be finite and > 0 (got %g)", eps);
        return -1;
    }
    c->eps = eps;
    return 0;
}

int core_set_mechanism(struct core *c, int mech, char *err, size_t errlen)
{
    if (mech < 0 || mech > CORE_MECH_NONE) {
        snprintf(err, errlen, "core: unknown mechanism %d", mech);
        return -1;
    }
    c->mech = mech;
    return 0;
}

double core_eps(const struct core *c) { return c->eps; }
int core_mechanism(const struct core *c) { return c->mech; }
int core_unit(const struct core *c) { return c->unit; }
int core_scope(const struct core *c) { return c->scope; }

int core_set_scope(struct core *c, int scope, char *err, size_t errlen)
{
    if (scope < CORE_SCOPE_AUTO || scope > CORE_SCOPE_MARKED) {
        snprintf(err, errlen, "core: unknown scope %d", scope);
        return -1;
    }
    c->scope = scope;
    return 0;
}

const char *core_scope_name(int scope) { return words_mode_name(scope); }
int core_scope_parse(const char *name) { return name ? words_mode_parse(name) : -1; }

static const char *const unit_names[] = {"word", "token"};
const char *core_unit_name(int unit)
{
    return unit >= CORE_UNIT_WORD && unit <= CORE_UNIT_TOKEN ? unit_names[unit] : "?";
}
int core_unit_parse(const char *name)
{
    for (int i = 0; name && i <= CORE_UNIT_TOKEN; i++)
        if (strcasecmp(name, unit_names[i]) == 0) return i;
    return -1;
}

size_t core_public_word_count(void)
{
    struct words_list *pl;
    char e[64];
    if (words_list_open(&pl, NULL, 0, e, sizeof e) != 0) return 0;
    size_t n = words_list_size(pl);
    words_list_close(pl);
    return n;
}

int core_ledger_reset(const char *path, char *err, size_t errlen)
{
    return ledger_reset(path, NULL, err, errlen);
}

int core_budget_reset(struct core *c, char *err, size_t errlen)
{
    if (!c->led) {
        snprintf(err, errlen, "core: this session has no ledger");
        return -1;
    }
    ledger_close(c->led);
    c->led = NULL;
    if (ledger_reset(c->ledger_path, NULL, err, errlen) != 0 ||
        ledger_open(&c->led, c->ledger_path, NULL, err, errlen) != 0) {
        /* Fail closed: without its ledger the core charges nothing, so it sends nothing. */
        c->budget_total = 0;
        return -1;
    }
    return 0;
}

int core_set_budget(struct core *c, double limit, char *err, size_t errlen)
{
    if (budget_valid(limit, "the budget", err, errlen) != 0) return -1;
    struct budget *nb;
    if (budget_open(&nb, limit, err, errlen) != 0) return -1;
    /* The session's accountant keeps what it spent under the new limit. */
    double spent = budget_spent(c->bud);
    if (spent > 0 && !c->led) {
        char e2[8];
        if (spent > limit) {
            budget_close(nb);
            snprintf(err, errlen, "core: this session already spent ε %g, more than %g", spent,
                     limit);
            return -1;
        }
        budget_spend(nb, spent, e2, sizeof e2);
    }
    budget_close(c->bud);
    c->bud = nb;
    c->budget_total = limit;
    return 0;
}

void core_status(const struct core *c, struct core_status *st)
{
    memset(st, 0, sizeof *st);
    struct enclave_stats es;
    enclave_stats(&es);
    struct swap *sw = embed_swap(c->emb);
    struct swap_stats ss;
    swap_stats(sw, &ss);
    st->secretmem = swap_secretmem(sw);
    st->locked = swap_locked(sw);
    st->region_bytes = swap_region_bytes(sw);
    st->bytes_locked = swap_locked_bytes(sw);
    st->memlock_limit = es.memlock_limit;
    st->dumpable = es.dumpable;
    st->swap_pages_out = ss.pages_out;
    st->swap_pages_in = ss.pages_in;
    st->tamper_checks = ss.tamper_checks;
    st->swap_file_bytes = ss.file_bytes;
    st->table_sealed = embed_sealed(c->emb);
    st->table_in_swap = ss.n_pages > ss.n_slots;
    char locked[32], lim[32];
    fmt_bytes(locked, sizeof locked, st->bytes_locked);
    fmt_bytes(lim, sizeof lim, st->memlock_limit);
    char prot[96];
    if (st->locked)
        snprintf(prot, sizeof prot, "%s, %s locked",
                 st->secretmem ? "memfd_secret" : "guarded mmap+mlock", locked);
    else
        snprintf(prot, sizeof prot, "%s, NOT LOCKED (RLIMIT_MEMLOCK %s)",
                 st->secretmem ? "memfd_secret" : "guarded mmap", lim);
    char line[320];
    snprintf(line, sizeof line, "%s, swap %llu pages out/%llu in%s%s%s", prot,
             (unsigned long long)st->swap_pages_out, (unsigned long long)st->swap_pages_in,
             ss.failed ? ", SWAP FAILED" : "", st->dumpable ? ", DUMPABLE" : "",
             st->locked && c->msg_unlocked ? ", a message buffer was NOT LOCKED" : "");
    snprintf(st->summary, sizeof st->summary, "%.159s", line);
}

/* One row of core_places: the regions in w, or when the item is not allocated yet. */
static void place_row(struct core_place *p, const char *what, const struct enclave_where *w,
                      const char *later)
{
    snprintf(p->what, sizeof p->what, "%s", what);
    p->bytes = w->bytes;
    if (!w->regions)
        snprintf(p->where, sizeof p->where, "%s", later);
    else if (w->secretmem_regions == w->regions)
        snprintf(p->where, sizeof p->where, "memfd_secret, locked");
    else if (w->locked_regions == w->regions)
        snprintf(p->where, sizeof p->where, "guarded mmap+mlock");
    else
        snprintf(p->where, sizeof p->where, "guarded mmap, %zu of %zu regions NOT LOCKED",
                 w->regions - w->locked_regions, w->regions);
}

int core_places(struct core *c, struct core_place *rows, size_t max, char *err,
                size_t errlen)
{
    if (!c->nz && noise_open(&c->nz, c->seeded, c->seed, err, errlen) != 0) return -1;
    struct core_place all[6];
    size_t n = 0;
    struct swap *sw = embed_swap(c->emb);
    struct enclave_where w = {0};
    w.regions = 1;
    w.bytes = swap_region_bytes(sw);
    w.secretmem_regions = swap_secretmem(sw) != 0;
    w.locked_regions = swap_locked(sw) != 0;
    place_row(&all[n++], "token table", &w, "");
    /* The message regions exist only while a message is encoded; they are allocated as the
     * noise state was, so its kind is theirs. */
    memset(&w, 0, sizeof w);
    noise_where(c->nz, &w);
    if (c->san.nz) noise_where(c->san.nz, &w);
    place_row(&all[n++], "noise state", &w, "");
    snprintf(all[n].what, sizeof all[n].what, "message text and ids");
    snprintf(all[n].where, sizeof all[n].where, "%s, one region per message, wiped after it",
             w.secretmem_regions == w.regions ? "memfd_secret" : "guarded mmap");
    all[n++].bytes = 0;
    memset(&w, 0, sizeof w);
    mech_where(c->san.mc, &w);
    mech_where(c->ws.mc, &w);
    place_row(&all[n++], "mechanism scratch", &w,
              "allocated with the first sanitized word, like the noise state");
    memset(&w, 0, sizeof w);
    wordsan_where(&c->ws, &w);
    place_row(&all[n++], "word scratch", &w,
              "allocated with the first sanitized word, like the noise state");
    for (size_t i = 0; i < n && i < max; i++) rows[i] = all[i];
    return (int)n;
}

int core_parse_size(const char *s, size_t *out)
{
    if (!s || !*s || *s == '-') return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s) return -1;
    unsigned shift = 0;
    if (*end) {
        char u = (char)toupper((unsigned char)*end);
        shift = u == 'K' ? 10 : u == 'M' ? 20 : u == 'G' ? 30 : 99;
        if (shift == 99) return -1;
        end++;
        if (strcasecmp(end, "") != 0 && strcasecmp(end, "iB") != 0 && strcasecmp(end, "B") != 0)
            return -1;
    }
    if (v > (SIZE_MAX >> shift)) return -1;
    *out = (size_t)(v << shift);
    return 0;
}

/* ---- public text ---------------------------------------------------------------------- */

struct core_vocab {
    struct tokenizer *tok;
};

int core_vocab_open(struct core_vocab **out, const struct gguf *g, char *err, size_t errlen)
{
    *out = NULL;
    struct core_vocab *v = calloc(1, sizeof *v);
    if (!v) {
        snprintf(err, errlen, "core: out of memory");
        return -1;
    }
    if (tok_open(&v->tok, g, err, errlen) != 0) {
        free(v);
        return -1;
    }
    *out = v;
    return 0;
}

void core_vocab_close(struct core_vocab *v)
{
    if (!v) return;
    tok_close(v->tok);
    free(v);
}

int core_vocab_encode(const struct core_vocab *v, const char *text, size_t len, int add_bos,
                      int parse_special, int32_t *ids, size_t max_ids, size_t *n_out,
                      char *err, size_t errlen)
{
    return tok_encode(v->tok, text, len, add_bos, parse_special, ids, max_ids, n_out, err,
                      errlen);
}

size_t core_vocab_piece(const struct core_vocab *v, struct core_detok *d, int32_t id,
                        int show_special, char *buf, size_t cap)
{
    return detok_piece(v->tok, d, id, show_special, buf, cap);
}

const char *core_vocab_text(const struct core_vocab *v, int32_t id, size_t *len)
{
    return tok_text(v->tok, id, len);
}

int32_t core_vocab_n(const struct core_vocab *v) { return tok_n_vocab(v->tok); }
int32_t core_vocab_bos(const struct core_vocab *v) { return tok_bos(v->tok); }
int32_t core_vocab_eos(const struct core_vocab *v) { return tok_eos(v->tok); }
int core_vocab_add_bos(const struct core_vocab *v) { return tok_add_bos(v->tok); }

/* ---- evaluation sanitizer -------------------------------------------------------------- */

struct core_eval {
    struct core *core;
    const float *table;
    struct sanitizer san;
};

static int eval_row(void *ctx, int32_t id, float *out)
{
    struct core_eval *ev = ctx;
    if (id < 0 || id >= ev->san.n_vocab) return -1;
    int dim = ev->core->dim;
    memcpy(out, ev->table + (size_t)id * (size_t)dim, (size_t)dim * sizeof *out);
    return 0;
}

int core_eval_open(struct core_eval **out, struct core *c, const struct core_eval_params *p,
                   char *err, size_t errlen)
{
    *out = NULL;
    struct core_eval *ev = calloc(1, sizeof *ev);
    if (!ev) return util_seterr(err, errlen, "core: out of memory");
    ev->core = c;
    ev->table = p->table;
    struct sanitizer_params sp = {
        .tok = c->tok, .dim = c->dim, .row = p->table ? eval_row : san_row,
        .rows = p->table ? NULL : san_rows, .ctx = p->table ? (void *)ev : (void *)c,
        .k = p->cluster_size, .quiet = p->quiet,
        .log = c->log, .log_ctx = c->log_ctx, .seeded = p->seeded, .seed = p->seed,
        .mech = MECH_RNM, .eps = 1.0,
    };
    if (sanitizer_open(&ev->san, &sp, err, errlen) != 0 ||
        mech_set_santext(ev->san.mc, p->santext_p, p->santext_w, err, errlen) != 0) {
        core_eval_close(ev);
        return -1;
    }
    *out = ev;
    return 0;
}

void core_eval_close(struct core_eval *ev)
{
    if (!ev) return;
    sanitizer_close(&ev->san);
    free(ev);
}

int core_eval_set(struct core_eval *ev, int mech, double eps, char *err, size_t errlen)
{
    if (mech < 0 || mech >= CORE_MECH_NONE)
        return util_seterr(err, errlen, "core: mechanism %d cannot be evaluated", mech);
    if (mech_set_kind(ev->san.mc, mech, err, errlen) != 0) return -1;
    return mech_set_eps(ev->san.mc, eps, err, errlen);
}

int core_eval_sanitize(struct core_eval *ev, int32_t id, int32_t *sent, int *kind, char *err,
                       size_t errlen)
{
    struct mech_out o;
    if (mech_sanitize(ev->san.mc, id, &o, err, errlen) != 0) return -1;
    *sent = o.sent;
    *kind = o.kind;            /* enum mech_result == enum core_tok_kind */
    return 0;
}

int core_eval_sanitizable(const struct core_eval *ev, int32_t id)
{
    return id >= 0 && id < ev->san.n_vocab && ev->san.role[id] == MECH_ROLE_SANITIZE;
}

int32_t core_eval_clusters(const struct core_eval *ev) { return cluster_count(ev->san.cl); }

/* ---- word-level evaluation ------------------------------------------------------------- */

struct core_eval_word {
    struct core *core;
    const float *table;
    struct noise *nz;
    struct wordsan ws;
    int scope;
    int mech;
};

static int evw_rows(void *ctx, const int32_t *ids, size_t n, float *out)
{
    struct core_eval_word *ev = ctx;
    int dim = ev->core->dim;
    int32_t nv = tok_n_vocab(ev->core->tok);
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= nv) return -1;
        memcpy(out + i * (size_t)dim, ev->table + (size_t)ids[i] * (size_t)dim,
               (size_t)dim * sizeof *out);
    }
    return 0;
}

int core_eval_word_open(struct core_eval_word **out, struct core *c,
                        const struct core_eval_params *p, char *err, size_t errlen)
{
    *out = NULL;
    if (!p->table)
        return util_seterr(err, errlen, "core: the word evaluation needs the embedding table");
    struct core_eval_word *ev = calloc(1, sizeof *ev);
    if (!ev) return util_seterr(err, errlen, "core: out of memory");
    ev->core = c;
    ev->table = p->table;
    ev->scope = CORE_SCOPE_AUTO;
    if (noise_open(&ev->nz, p->seeded, p->seed, err, errlen) != 0) {
        free(ev);
        return -1;
    }
    /* The chat's partition (same fingerprint, same cache): the clusters measured here are
     * the ones the chat uses. */
    unsigned char fp[32];
    table_fingerprint(c, fp);
    char dir[4096];
    cache_dir_of(c, dir, sizeof dir);
    struct wordsan_params wp = {
        .tok = c->tok, .pl = c->pl, .dim = c->dim, .rows = evw_rows, .ctx = ev,
        .k = p->cluster_size, .quiet = p->quiet, .cache_dir = dir, .fingerprint = fp,
        .log = c->log, .log_ctx = c->log_ctx, .noise = ev->nz, .mech = MECH_RNM, .eps = 1.0,
    };
    if (wordsan_open(&ev->ws, &wp, err, errlen) != 0 ||
        mech_set_santext(ev->ws.mc, p->santext_p, p->santext_w, err, errlen) != 0) {
        core_eval_word_close(ev);
        return -1;
    }
    *out = ev;
    return 0;
}

void core_eval_word_close(struct core_eval_word *ev)
{
    if (!ev) return;
    wordsan_close(&ev->ws);
    noise_close(ev->nz);
    free(ev);
}

int core_eval_word_set(struct core_eval_word *ev, int mech, double eps, int scope, char *err,
                       size_t errlen)
{
    if (mech < 0 || mech >= CORE_MECH_NONE || scope < 0 || scope > CORE_SCOPE_MARKED) {
        snprintf(err, errlen, "core: mechanism %d / mode %d cannot be evaluated", mech, scope);
        return -1;
    }
    if (mech_set_kind(ev->ws.mc, mech, err, errlen) != 0) return -1;
    ev->mech = mech;
    ev->scope = scope;
    return mech_set_eps(ev->ws.mc, eps, err, errlen);
}

size_t core_eval_word_cap(size_t len) { return len + 1 + (len + 1) * (LEXICON_MAX_WORD + 2); }

static int32_t evw_find(const struct core_eval_word *ev, const char *w, size_t n)
{
    char low[LEXICON_MAX_WORD + 1];
    if (n > LEXICON_MAX_WORD) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)w[i];
        low[i] = (char)(ch >= 'A' && ch <= 'Z' ? ch | 0x20 : ch);
    }
    return lexicon_find(ev->ws.lex, low, n);
}

int core_eval_word_sanitize(struct core_eval_word *ev, const char *text, size_t len, char *out,
                            size_t cap, size_t *out_len, struct core_eval_unit *units,
                            size_t max_units, size_t *n_units, char *err, size_t errlen)
{
    *out_len = 0;
    *n_units = 0;
    if (cap < core_eval_word_cap(len))
        return util_seterr(err, errlen, "core: output buffer too small");
    size_t maxu = len + 1;
    struct words_unit *u = malloc(maxu * sizeof *u);
    char *clean = malloc(len + 1);
    int32_t *ids = malloc((len + 4) * sizeof *ids);
    int rc = -1;
    size_t nu = 0, cl = 0, sl = 0;
    if (!u || !clean || !ids) {
        snprintf(err, errlen, "core: out of memory");
        goto done;
    }
    if (words_split(ev->core->pl, ev->scope, text, len, u, maxu, &nu, clean, &cl, err, errlen))
        goto done;
    t_nz = ev->nz;
    for (size_t i = 0; i < nu; i++) {
        const char *src = clean + u[i].off;
        const char *w;
        size_t wn;
        unit_word(clean, &u[i], &w, &wn);
        struct core_eval_unit r = {CORE_TOK_PUBLIC, -1, -1};
        int word = u[i].cls == WORDS_ALPHA || u[i].cls == WORDS_NUMBER;
        if (word) r.orig = evw_find(ev, w, wn);
        if (u[i].treat == WORDS_RANDOM) {
            sl += words_randomize(src, u[i].len, out + sl, rand_below);
            r.kind = CORE_TOK_RANDOM;
        } else if (u[i].treat == WORDS_SANITIZE && wordsan_charges(&ev->ws, w, wn) &&
                   !(ev->mech == CORE_MECH_CUSTEXT && mech_is_stopword(w, wn))) {
            if (wn < u[i].len) out[sl++] = ' ';
            int k, csize;
            if (wordsan_word(&ev->ws, w, wn, ids, out + sl, cap - sl, &k, &csize, err, errlen))
                goto done;
            size_t n = strlen(out + sl);
            r.sent = evw_find(ev, out + sl, n);
            r.kind = k ? CORE_TOK_REPLACED : CORE_TOK_KEPT;
            sl += n;
        } else {
            memcpy(out + sl, src, u[i].len);
            sl += u[i].len;
        }
        if (word && *n_units < max_units) units[(*n_units)++] = r;
    }
    out[sl] = 0;
    *out_len = sl;
    rc = 0;
done:
    t_nz = NULL;
    free(u);
    free(clean);
    free(ids);
    return rc;
}

int32_t core_eval_word_domain(const struct core_eval_word *ev) { return lexicon_size(ev->ws.lex); }
int32_t core_eval_word_clusters(const struct core_eval_word *ev) { return cluster_count(ev->ws.cl); }
int32_t core_eval_word_cluster_of(const struct core_eval_word *ev, int32_t entry)
{
    return entry < 0 || entry >= lexicon_size(ev->ws.lex) ? -1 : cluster_of(ev->ws.cl, entry);
}
int core_eval_word_members(const struct core_eval_word *ev, int32_t cid, const int32_t **mem)
{
    return cluster_members(ev->ws.cl, cid, mem);
}
int32_t core_eval_word_token(const struct core_eval_word *ev, int32_t entry)
{
    return lexicon_token(ev->ws.lex, entry);
}
int core_eval_word_sensitive(const struct core_eval_word *ev, int32_t entry)
{
    return mech_is_sensitive(ev->ws.mc, entry);
}
