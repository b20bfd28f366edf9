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

#include <sodium.h>

#include "core/budget.h"
#include "core/cluster.h"
#include "core/embed.h"
#include "core/enclave.h"
#include "core/gguf.h"
#include "core/mech.h"
#include "core/noise.h"
#include "core/sanitizer.h"
#include "core/swap.h"
#include "core/tokenizer.h"

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
    o->budget = 64.0;
    o->cluster_size = 20;
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
    if (budget_open(&c->bud, o->budget, err, errlen) != 0) {
        core_close(c);
        return -1;
    }
    if (o->cache_dir && !(c->cache_dir = strdup(o->cache_dir))) {
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
    /* The swap's key and version table take a page or two; the rest caches rows. */
    size_t ctl = 2 * 4096;
    struct embed_options eo = {
        .cache_bytes = c->mem_limit > 2 * ctl ? c->mem_limit - ctl : c->mem_limit / 2,
        .swap_dir = o->swap_dir,
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
    budget_close(c->bud);
    embed_close(c->emb);
    tok_close(c->tok);
    gguf_close(c->g);
    free(c->cache_dir);
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
_Static_assert((int)MECH_KEPT == (int)CORE_TOK_KEPT && (int)MECH_REPLACED == (int)CORE_TOK_REPLACED &&
                   (int)MECH_PUBLIC == (int)CORE_TOK_PUBLIC && (int)MECH_CONTROL == (int)CORE_TOK_CONTROL,
               "enum mech_result follows enum core_tok_kind");

static const char *const kind_names[] = {"kept", "replaced", "public", "control"};

const char *core_kind_name(int kind)
{
    if (kind < CORE_TOK_KEPT || kind > CORE_TOK_CONTROL) return "?";
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
            size_t n = ch >= 0xf0 ? 4 : ch >= 0xe0 ? 3 : ch >= 0xc0 ? 2 : 0;
            int ok = n > 0 && i + n <= len;
            for (size_t k = 1; ok && k < n; k++) ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
            if (!ok) { snprintf(tmp, sizeof tmp, "\\x%02x", ch); tl = 4; }
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

/* ===================== sanitize step (owned by H6: the DP sanitizer) =====================
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

static int san_init(struct core *c, char *err, size_t errlen)
{
    if (c->san.mc) return 0;
    int32_t n = tok_n_vocab(c->tok);
    /* The cluster cache is named by the embedding table's hash and the vocabulary. */
    unsigned char fp[32];
    crypto_generichash_state hs;
    crypto_generichash_init(&hs, NULL, 0, sizeof fp);
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
    crypto_generichash_final(&hs, fp, sizeof fp);
    char dir[4096] = "";
    const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (c->cache_dir) snprintf(dir, sizeof dir, "%s", c->cache_dir);
    else if (xdg && *xdg == '/') snprintf(dir, sizeof dir, "%s/cmif", xdg);
    else if (home && *home == '/') snprintf(dir, sizeof dir, "%s/.cache/cmif", home);
    struct sanitizer_params sp = {
        .tok = c->tok, .dim = c->dim, .row = san_row, .rows = san_rows, .ctx = c,
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

static int core_sanitize_ids(struct core *c, int seg, const int32_t *ids, int32_t *sent,
                             size_t n, struct core_tok_report *rep, double *msg_eps,
                             struct core_refusal *refusal, char *err, size_t errlen)
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
    if (budget_check(c->bud, cost, err, errlen) != 0) {
        *refusal = (struct core_refusal){.eps_cost = cost, .eps_left = budget_remaining(c->bud),
                                         .eps_total = budget_total(c->bud),
                                         .eps_spent = budget_spent(c->bud),
                                         .n_sanitized = charged};
        return CORE_EBUDGET;
    }
    for (size_t i = 0; i < n; i++) {
        struct mech_out o;
        if (mech_sanitize(mc, ids[i], &o, err, errlen) != 0) return -1;
        sent[i] = o.sent;
        rep[i].kind = o.kind;      /* enum mech_result == enum core_tok_kind */
        rep[i].eps = o.eps;
        rep[i].cluster_size = o.cluster_size;
    }
    if (budget_spend(c->bud, cost, err, errlen) != 0) return CORE_EBUDGET;
    c->budget_spent = budget_spent(c->bud);
    *msg_eps = cost;
    return 0;
}
/* =================================== end sanitize step =================================== */

static int batch_reserve(struct core_batch *b, size_t extra, int dim, char *err, size_t errlen)
{
    if (b->n + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 16;
    while (cap < b->n + extra) cap *= 2;
    if (cap > SIZE_MAX / sizeof(float) / (size_t)dim) {
        snprintf(err, errlen, "core: batch too large");
        return -1;
    }
    /* Fresh buffers (not realloc) so the old copies can be wiped. */
    float *v = calloc(cap * (size_t)dim, sizeof *v);
    struct core_tok_report *r = calloc(cap, sizeof *r);
    int32_t *ids = calloc(cap, sizeof *ids);
    if (!v || !r || !ids) {
        free(v);
        free(r);
        free(ids);
        snprintf(err, errlen, "core: out of memory for %zu vectors", cap);
        return -1;
    }
    if (b->n) {
        memcpy(v, b->vecs, b->n * (size_t)dim * sizeof *v);
        memcpy(r, b->rep, b->n * sizeof *r);
        memcpy(ids, b->ids, b->n * sizeof *ids);
    }
    /* With the sanitizer off (or for public tokens) the ids and vectors are the user's own. */
    if (b->vecs) sodium_memzero(b->vecs, b->cap * (size_t)dim * sizeof *b->vecs);
    if (b->rep) sodium_memzero(b->rep, b->cap * sizeof *b->rep);
    if (b->ids) sodium_memzero(b->ids, b->cap * sizeof *b->ids);
    free(b->vecs);
    free(b->rep);
    free(b->ids);
    b->vecs = v;
    b->rep = r;
    b->ids = ids;
    b->cap = cap;
    return 0;
}

void core_batch_free(struct core_batch *b)
{
    if (!b) return;
    /* The report holds the user's own pieces, and the ids are the user's own when the
     * sanitizer is off or a token is public. The vectors already crossed the boundary. */
    if (b->rep) sodium_memzero(b->rep, b->cap * sizeof *b->rep);
    if (b->ids) sodium_memzero(b->ids, b->cap * sizeof *b->ids);
    free(b->vecs);
    free(b->rep);
    free(b->ids);
    memset(b, 0, sizeof *b);
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
    if (batch_reserve(b, n, c->dim, err, errlen) != 0) goto out;
    struct core_tok_report *rep = b->rep + b->n;
    memset(rep, 0, n * sizeof *rep);
    double msg_eps = 0;
    rc = core_sanitize_ids(c, seg, ids, sent, n, rep, &msg_eps, &b->refusal, err, errlen);
    if (rc != 0) {
        memset(rep, 0, n * sizeof *rep);
        goto out;
    }
    rc = embed_rows(c->emb, sent, n, b->vecs + b->n * (size_t)c->dim, err, errlen);
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
    b->msg_eps += msg_eps;
out:
    enclave_free(r);    /* wipes text and ids */
    return rc;
}

int core_embed_token(struct core *c, int32_t id, float *out, char *err, size_t errlen)
{
    return embed_row(c->emb, id, out, err, errlen);
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
double core_budget_total(const struct core *c) { return c->budget_total; }
double core_budget_spent(const struct core *c) { return c->budget_spent; }

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
    if (!ev) {
        snprintf(err, errlen, "core: out of memory");
        return -1;
    }
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
    if (mech < 0 || mech >= CORE_MECH_NONE) {
        snprintf(err, errlen, "core: mechanism %d cannot be evaluated", mech);
        return -1;
    }
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
