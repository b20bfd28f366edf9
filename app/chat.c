/* The conversation loop; see app/chat.h. */
#include "app/chat.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app/restore.h"
#include "app/template.h"
#include "gpu/decoder.h"

#define FWD_CHUNK 256
/* No token of any vocabulary cmif reads spans more bytes than this: a message longer than
 * this many bytes per context position cannot fit, and is refused before it is tokenized
 * (so refusing it costs no more than reading it). */
#define MAX_TOKEN_BYTES 1024

/* The vectors a turn put into the context, kept so that /retry, /save and a resumed session
 * can give them to the decoder again without encoding (and charging) user text again. */
struct turn_rec {
    float *vecs;
    size_t n, cap;
    size_t n_in;    /* the first n_in vectors are the message (template and sanitized
                       input): what /retry gives the decoder again */
};

struct chat {
    struct core *core;
    struct decoder *dec;
    struct sampler *smp;
    struct chat_params p;
    char *system;
    int dim, ctx, vocab;
    float *logits;
    float *tmpvec;

    int pos;                    /* tokens in the KV cache */
    float *head;                /* BOS and system block: kept when old turns go */
    size_t head_n;
    int started;                /* first turn rendered (head fixed) */
    struct turn_rec *turns;
    size_t nturns, turns_cap;

    struct chat_entry *ent;
    size_t nent, ent_cap;
    struct core_tok_report *last_rep;
    size_t last_nrep;
    double last_eps;
    size_t last_sys;            /* leading rows of last_rep that are the system prompt */
    double snap_spent, snap_total, snap_eps;
    struct restore *rst;        /* substitutes sent in this conversation, for /save */
    double tps;
    int last_tokens;
    int32_t *prompt_ids;        /* what the decoder received for the last message (/prompt) */
    size_t prompt_n;

    atomic_int stop;
    atomic_int busy;
    pthread_t thread;
    int thread_live;
    char *job_text;
    struct chat_cb job_cb;
    chat_done_fn job_done;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int chat_open(struct chat **out, struct core *core, struct decoder *dec,
              const struct chat_params *p, char *err, size_t errlen)
{
    *out = NULL;
    struct chat *c = calloc(1, sizeof *c);
    if (!c) goto oom;
    c->core = core;
    c->dec = dec;
    c->p = *p;
    c->p.system = NULL;
    c->dim = core_dim(core);
    c->ctx = dec_ctx(dec);
    c->vocab = dec_config(dec)->vocab;
    if (c->dim <= 0 || c->ctx <= 0 || c->vocab <= 0) {
        snprintf(err, errlen, "chat: bad model shape (dim %d, context %d, vocab %d)", c->dim,
                 c->ctx, c->vocab);
        free(c);
        return -1;
    }
    if (dec_config(dec)->dim != c->dim) {
        snprintf(err, errlen, "chat: core and decoder disagree on the embedding size (%d vs %d)",
                 c->dim, dec_config(dec)->dim);
        free(c);
        return -1;
    }
    c->logits = malloc((size_t)c->vocab * sizeof(float));
    c->tmpvec = malloc((size_t)c->dim * sizeof(float));
    if (!c->logits || !c->tmpvec) goto oom;
    if (sampler_open(&c->smp, &p->sp, c->vocab) != 0) {
        snprintf(err, errlen, "chat: cannot create the sampler");
        chat_close(c);
        return -1;
    }
    if (p->system && *p->system && !(c->system = strdup(p->system))) goto oom;
    if (!(c->rst = restore_open())) goto oom;
    *out = c;
    return 0;
oom:
    snprintf(err, errlen, "chat: out of memory");
    chat_close(c);
    return -1;
}

/* The transcript and the privacy reports hold what the user typed: wipe before freeing. */
static void free_reps(struct core_tok_report *rep, size_t n)
{
    if (rep) core_wipe(rep, n * sizeof *rep);
    free(rep);
}

static void free_entries(struct chat *c)
{
    for (size_t i = 0; i < c->nent; i++) {
        if (c->ent[i].text) core_wipe(c->ent[i].text, c->ent[i].len);
        free(c->ent[i].text);
        free_reps(c->ent[i].rep, c->ent[i].nrep);
    }
    c->nent = 0;
}

static void free_prompt(struct chat *c)
{
    if (c->prompt_ids) core_wipe(c->prompt_ids, c->prompt_n * sizeof *c->prompt_ids);
    free(c->prompt_ids);
    c->prompt_ids = NULL;
    c->prompt_n = 0;
}

static void free_turns(struct chat *c)
{
    for (size_t i = 0; i < c->nturns; i++) free(c->turns[i].vecs);
    c->nturns = 0;
}

void chat_close(struct chat *c)
{
    if (!c) return;
    chat_stop(c);
    chat_join(c);
    free_entries(c);
    free(c->ent);
    free_turns(c);
    free(c->turns);
    free(c->head);
    free_reps(c->last_rep, c->last_nrep);
    free_prompt(c);
    free(c->logits);
    free(c->tmpvec);
    free(c->system);
    restore_close(c->rst);
    sampler_close(c->smp);
    free(c);
}

static int add_entry(struct chat *c, int role, const char *text, size_t len,
                     const struct core_tok_report *rep, size_t nrep, double eps)
{
    if (c->nent == c->ent_cap) {
        size_t nc = c->ent_cap ? c->ent_cap * 2 : 16;
        struct chat_entry *e = realloc(c->ent, nc * sizeof *e);
        if (!e) return -1;
        c->ent = e;
        c->ent_cap = nc;
    }
    struct chat_entry *e = &c->ent[c->nent];
    memset(e, 0, sizeof *e);
    e->role = role;
    e->text = malloc(len + 1);
    if (!e->text) return -1;
    memcpy(e->text, text, len);
    e->text[len] = 0;
    e->len = len;
    if (nrep) {
        e->rep = malloc(nrep * sizeof *rep);
        if (!e->rep) {
            free(e->text);
            return -1;
        }
        memcpy(e->rep, rep, nrep * sizeof *rep);
        e->nrep = nrep;
    }
    e->eps = eps;
    c->nent++;
    return 0;
}

static int rec_append(struct turn_rec *r, const float *v, size_t n, int dim)
{
    if (r->n + n > r->cap) {
        size_t nc = r->cap ? r->cap : 64;
        while (nc < r->n + n) nc *= 2;
        float *p = realloc(r->vecs, nc * (size_t)dim * sizeof(float));
        if (!p) return -1;
        r->vecs = p;
        r->cap = nc;
    }
    memcpy(r->vecs + r->n * (size_t)dim, v, n * (size_t)dim * sizeof(float));
    r->n += n;
    return 0;
}

/* Runs n vectors through the decoder from c->pos, in chunks so a stop request is seen. */
static int forward(struct chat *c, const float *v, size_t n, char *err, size_t errlen)
{
    size_t done = 0;
    while (done < n) {
        size_t k = n - done < FWD_CHUNK ? n - done : FWD_CHUNK;
        if (dec_forward(c->dec, v + done * (size_t)c->dim, (int)k, c->pos, c->logits, 0, err,
                        errlen) != 0)
            return -1;
        c->pos += (int)k;
        done += k;
    }
    return 0;
}

static void say(const struct chat_cb *cb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void say(const struct chat_cb *cb, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (cb && cb->info) cb->info(cb->ctx, buf);
}

/* Drops the oldest turns until `need` more tokens fit: their cache positions go and the
 * later ones move down with their keys re-rotated (dec_shift), so nothing runs through the
 * decoder again and the cost does not grow with the context. The transcript keeps every
 * turn; nothing is encoded or charged again. Returns the number of turns dropped, or -1. */
static int make_room(struct chat *c, size_t need, const struct chat_cb *cb, char *err,
                     size_t errlen)
{
    if ((size_t)c->pos + need <= (size_t)c->ctx) return 0;
    size_t keep_from = 0, used = c->head_n, dropped = 0;
    for (size_t i = 0; i < c->nturns; i++) used += c->turns[i].n;
    while (keep_from < c->nturns && used + need > (size_t)c->ctx) {
        used -= c->turns[keep_from].n;
        dropped += c->turns[keep_from++].n;
    }
    if (!keep_from) return 0;
    int before = c->pos;
    if (dec_shift(c->dec, (int)c->head_n, (int)dropped, c->pos, err, errlen) != 0) return -1;
    c->pos -= (int)dropped;
    for (size_t i = 0; i < keep_from; i++) free(c->turns[i].vecs);
    memmove(c->turns, c->turns + keep_from, (c->nturns - keep_from) * sizeof *c->turns);
    c->nturns -= keep_from;
    say(cb, "context full (%d of %d tokens): dropped the %zu oldest turn%s from the model's "
            "context (the transcript keeps them)", before, c->ctx, keep_from,
        keep_from == 1 ? "" : "s");
    return (int)keep_from;
}

static void emit(const struct chat_cb *cb, const char *s, size_t n)
{
    if (cb && cb->text && n) cb->text(cb->ctx, s, n);
}

/* Appends a template text (never sanitized) to the context and the turn record. */
static int close_with(struct chat *c, struct turn_rec *r, const char *text, char *err,
                      size_t errlen)
{
    if (!*text) return 0;
    struct core_batch b = { 0 };
    int rc = core_encode(c->core, text, strlen(text), CORE_SEG_TEMPLATE, 0, &b, err, errlen);
    if (rc == 0 && b.n && (size_t)c->pos + b.n <= (size_t)c->ctx) {
        rc = forward(c, b.vecs, b.n, err, errlen);
        if (rc == 0 && rec_append(r, b.vecs, b.n, c->dim) != 0) {
            snprintf(err, errlen, "chat: out of memory");
            rc = -1;
        }
    }
    core_batch_free(&b);
    return rc;
}

void chat_refusal_text(const struct core *core, const struct core_refusal *r,
                       const char *eps_hint, char *out, size_t cap)
{
    int day = core_has_ledger(core);
    char when[64] = "";
    if (day && r->next_free > 0) {
        time_t t = (time_t)r->next_free;
        struct tm tm;
        localtime_r(&t, &tm);
        /* Charges leave the window 24 hours after they were made: say the day too. */
        strftime(when, sizeof when, ", or wait until %a %H:%M", &tm);
    }
    snprintf(out, cap,
             "privacy budget exceeded: this message would cost ε = %g but only %g of %s %g is "
             "left (spent %g); shorten the message, %s%s",
             r->eps_cost, r->eps_left, day ? "today's budget" : "the session budget",
             r->eps_total, r->eps_spent, eps_hint,
             day ? when : ", or start a new session");
}

int chat_learn_substitutes(struct restore *r, const struct core_tok_report *rep, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((rep[i].kind == CORE_TOK_REPLACED || rep[i].kind == CORE_TOK_RANDOM) &&
            restore_learn(r, rep[i].orig, rep[i].sent) != 0)
            return -1;
    return 0;
}

const struct restore *chat_restorer(const struct chat *c) { return c->rst; }

static int answer(struct chat *c, struct turn_rec *r, const struct chat_cb *cb, char *err,
                  size_t errlen);

int chat_send(struct chat *c, const char *text, const struct chat_cb *cb, char *err,
              size_t errlen)
{
    atomic_store(&c->stop, 0);
    size_t tlen = strlen(text);
    if (tlen / MAX_TOKEN_BYTES >= (size_t)c->ctx) {
        snprintf(err, errlen,
                 "message too long: %zu bytes cannot fit the context of %d tokens (not sent, "
                 "nothing charged)", tlen, c->ctx);
        return -1;
    }
    int first = !c->started;
    struct tmpl_turn t;
    tmpl_render_turn(c->p.tmpl, first, c->system, text, &t);
    t.add_bos = t.add_bos && tmpl_keeps_bos(c->p.tmpl, core_add_bos(c->core));
    if (!t.n) {
        snprintf(err, errlen, "empty message");
        return -1;
    }

    /* 1. Encode the turn: template pieces as they are, user content sanitized. Nothing is
     * charged until the message is known to go out (core_commit below). */
    struct core_batch b = { .defer_charge = 1 };
    struct core_tok_report *rep = NULL;
    size_t nrep = 0, head_end = 0, nsys = 0;
    double eps = 0;
    int rc = 0;
    /* BOS on its own, as template: it is not part of what the user typed. */
    if (t.add_bos) rc = core_encode(c->core, "", 0, CORE_SEG_TEMPLATE, 1, &b, err, errlen);
    for (int i = 0; i < t.n && rc == 0; i++) {
        size_t before = b.nrep;
        int user = t.seg[i].kind == TMPL_SEG_USER;
        rc = core_encode(c->core, t.seg[i].text, t.seg[i].len,
                         user ? CORE_SEG_USER : CORE_SEG_TEMPLATE, 0, &b, err, errlen);
        if (rc != 0) break;
        if (user && b.nrep > before) {
            /* Not realloc: the outgrown copy of the report is wiped. */
            struct core_tok_report *nr = malloc((nrep + b.nrep - before) * sizeof *rep);
            if (!nr) {
                snprintf(err, errlen, "chat: out of memory");
                rc = -1;
                break;
            }
            if (nrep) memcpy(nr, rep, nrep * sizeof *rep);
            free_reps(rep, nrep);
            rep = nr;
            for (size_t j = before; j < b.nrep; j++) {
                rep[nrep++] = b.rep[j];
                eps += b.rep[j].eps;
            }
            /* The system prompt is sanitized and charged with the first message. */
            if (i == t.sys_seg) nsys = nrep;
        }
        if (first && i + 1 == t.n_head) head_end = b.n;
    }
    if (rc == 0 && first && !head_end && t.add_bos && c->p.tmpl != TMPL_LLAMA2 && b.n)
        head_end = 1;   /* no system block: the head is BOS alone */
    if (rc != 0) {
        /* Nothing reaches the decoder and nothing is charged. */
        if (rc == CORE_EBUDGET)
            chat_refusal_text(c->core, &b.refusal, "lower ε with /eps", err, errlen);
        core_batch_free(&b);
        free_reps(rep, nrep);
        return rc == CORE_EBUDGET ? CORE_EBUDGET : -1;
    }

    /* 2. Make room: the new tokens plus some space for the answer. A message that cannot
     * fit is refused before it becomes the last report or a transcript entry. */
    size_t body = b.n - head_end;
    size_t reserve = (size_t)c->ctx / 4;
    if (c->p.n_predict > 0 && (size_t)c->p.n_predict < reserve) reserve = (size_t)c->p.n_predict;
    size_t headlen = first ? head_end : c->head_n;
    if (headlen + body + 1 > (size_t)c->ctx) {
        snprintf(err, errlen,
                 "message too long: %zu tokens, the context holds %d (not sent, nothing "
                 "charged)", body, c->ctx);
        core_batch_free(&b);
        free_reps(rep, nrep);
        return -1;
    }

    free_reps(c->last_rep, c->last_nrep);
    c->last_rep = rep;
    c->last_nrep = nrep;
    c->last_eps = eps;
    c->last_sys = nsys;
    chat_learn_substitutes(c->rst, rep, nrep);
    if (add_entry(c, CHAT_USER, text, strlen(text), rep, nrep, eps) != 0) {
        core_batch_free(&b);
        snprintf(err, errlen, "chat: out of memory");
        return -1;
    }

    /* The message goes out: charge it (the ledger can still refuse, if another process
     * spent the day's budget meanwhile). */
    rc = core_commit(c->core, &b, err, errlen);
    if (rc != 0) {
        core_batch_free(&b);
        return rc == CORE_EBUDGET ? CORE_EBUDGET : -1;
    }
    /* The sanitized ids of all the decoder gets for this message (with the head on the
     * first one), for /prompt. */
    free_prompt(c);
    if (b.ids && b.n && (c->prompt_ids = malloc(b.n * sizeof *b.ids))) {
        memcpy(c->prompt_ids, b.ids, b.n * sizeof *b.ids);
        c->prompt_n = b.n;
    }
    c->snap_spent = core_budget_spent(c->core);
    c->snap_total = core_budget_total(c->core);
    c->snap_eps = core_eps(c->core);
    if (cb && cb->report) cb->report(cb->ctx);
    if (headlen + body + reserve > (size_t)c->ctx) reserve = (size_t)c->ctx - headlen - body;
    if (first) {
        free(c->head);
        c->head = NULL;
        c->head_n = head_end;
        if (head_end) {
            c->head = malloc(head_end * (size_t)c->dim * sizeof(float));
            if (!c->head) {
                core_batch_free(&b);
                snprintf(err, errlen, "chat: out of memory");
                return -1;
            }
            memcpy(c->head, b.vecs, head_end * (size_t)c->dim * sizeof(float));
        }
        c->started = 1;
    } else if (make_room(c, body + reserve, cb, err, errlen) < 0) {
        core_batch_free(&b);
        return -1;
    }

    /* 3. Only the new tokens go through the decoder. */
    if (c->nturns == c->turns_cap) {
        size_t nc = c->turns_cap ? c->turns_cap * 2 : 8;
        struct turn_rec *nt = realloc(c->turns, nc * sizeof *nt);
        if (!nt) {
            core_batch_free(&b);
            snprintf(err, errlen, "chat: out of memory");
            return -1;
        }
        c->turns = nt;
        c->turns_cap = nc;
    }
    struct turn_rec *r = &c->turns[c->nturns++];
    memset(r, 0, sizeof *r);
    const float *bodyv = b.vecs + head_end * (size_t)c->dim;
    if (rec_append(r, bodyv, body, c->dim) != 0) {
        core_batch_free(&b);
        snprintf(err, errlen, "chat: out of memory");
        return -1;
    }
    r->n_in = body;
    /* The head goes with the first message's body: one pass over the weights, not two. */
    rc = first ? forward(c, b.vecs, head_end + body, err, errlen)
               : forward(c, bodyv, body, err, errlen);
    core_batch_free(&b);
    if (rc != 0) return -1;
    return answer(c, r, cb, err, errlen);
}

/* 4. The answer, sampled from c->logits (the context ends with the turn's input r). */
static int answer(struct chat *c, struct turn_rec *r, const struct chat_cb *cb, char *err,
                  size_t errlen)
{
    int rc = 0;
    char *ans = NULL;
    size_t alen = 0, acap = 0;
    int ngen = 0, eog = 0, stopped = 0;
    double t0 = now_s();
    char piece[256];
    for (;;) {
        if (atomic_load(&c->stop)) {
            stopped = 1;
            break;
        }
        if (c->p.n_predict >= 0 && ngen >= c->p.n_predict) {
            /* Said, so an answer ending mid-sentence is not taken for the model's end. */
            if (ngen > 0) say(cb, "answer cut at %d tokens (-n)", c->p.n_predict);
            break;
        }
        if (c->pos >= c->ctx) {
            say(cb, "context full (%d tokens): the answer was cut; older turns will be dropped "
                    "with the next message", c->ctx);
            break;
        }
        int32_t id = sampler_sample(c->smp, c->logits);
        sampler_accept(c->smp, id);
        if (core_is_eog(c->core, id)) {
            eog = 1;
            if (c->p.tmpl != TMPL_PLAIN && c->pos < c->ctx) {
                if (core_embed_token(c->core, id, c->tmpvec, err, errlen) != 0 ||
                    forward(c, c->tmpvec, 1, err, errlen) != 0 ||
                    rec_append(r, c->tmpvec, 1, c->dim) != 0) {
                    rc = -1;
                }
            }
            break;
        }
        size_t pn = core_piece(c->core, NULL, id, 0, piece, sizeof piece);
        if (pn > sizeof piece) pn = sizeof piece;
        if (alen + pn + 1 > acap) {
            size_t nc = acap ? acap * 2 : 256;
            while (nc < alen + pn + 1) nc *= 2;
            char *na = realloc(ans, nc);
            if (!na) {
                snprintf(err, errlen, "chat: out of memory");
                rc = -1;
                break;
            }
            ans = na;
            acap = nc;
        }
        memcpy(ans + alen, piece, pn);
        alen += pn;
        emit(cb, piece, pn);
        ngen++;
        if (core_embed_token(c->core, id, c->tmpvec, err, errlen) != 0 ||
            forward(c, c->tmpvec, 1, err, errlen) != 0) {
            rc = -1;
            break;
        }
        if (rec_append(r, c->tmpvec, 1, c->dim) != 0) {
            snprintf(err, errlen, "chat: out of memory");
            rc = -1;
            break;
        }
        if (c->p.delay_ms > 0) {
            struct timespec ts = { c->p.delay_ms / 1000, (long)(c->p.delay_ms % 1000) * 1000000L };
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
        }
    }
    double dt = now_s() - t0;
    c->tps = ngen && dt > 0 ? ngen / dt : 0;
    c->last_tokens = ngen;
    if (rc == 0) {
        /* Close the answer in the context the way the template expects. */
        rc = close_with(c, r, eog ? tmpl_after_eog(c->p.tmpl) : tmpl_answer_end(c->p.tmpl), err,
                        errlen);
    }
    if (add_entry(c, CHAT_ASSISTANT, ans ? ans : "", alen, NULL, 0, 0) != 0 && rc == 0) {
        snprintf(err, errlen, "chat: out of memory");
        rc = -1;
    }
    if (stopped) add_entry(c, CHAT_NOTE, "(stopped)", 9, NULL, 0, 0);
    free(ans);
    if (rc != 0) return -1;
    return stopped ? CHAT_STOPPED : 0;
}

int chat_retry(struct chat *c, const struct chat_cb *cb, char *err, size_t errlen)
{
    atomic_store(&c->stop, 0);
    size_t last_user = c->nent;
    for (size_t i = c->nent; i-- > 0;)
        if (c->ent[i].role == CHAT_USER) {
            last_user = i;
            break;
        }
    if (!c->nturns || last_user == c->nent || !c->turns[c->nturns - 1].n_in) {
        snprintf(err, errlen, "nothing to retry: no message in this conversation yet");
        return -1;
    }
    struct turn_rec *r = &c->turns[c->nturns - 1];
    /* Back to just before the answer: the KV entries after that are overwritten, and the
     * last input vector runs again for the logits the answer starts from. */
    c->pos -= (int)(r->n - r->n_in) + 1;
    r->n = r->n_in - 1;
    if (forward(c, r->vecs + r->n * (size_t)c->dim, 1, err, errlen) != 0) return -1;
    r->n++;
    /* The old answer (and a note that it was stopped) leave the transcript kept for /save. */
    while (c->nent > last_user + 1) {
        struct chat_entry *e = &c->ent[--c->nent];
        if (e->text) core_wipe(e->text, e->len);
        free(e->text);
        free_reps(e->rep, e->nrep);
    }
    return answer(c, r, cb, err, errlen);
}

const char *chat_last_message(const struct chat *c)
{
    for (size_t i = c->nent; i-- > 0;)
        if (c->ent[i].role == CHAT_USER) return c->ent[i].text;
    return NULL;
}

const char *chat_last_answer(const struct chat *c, size_t *len)
{
    for (size_t i = c->nent; i-- > 0;)
        if (c->ent[i].role == CHAT_ASSISTANT) {
            if (len) *len = c->ent[i].len;
            return c->ent[i].text;
        }
    return NULL;
}

void chat_sampling(const struct chat *c, struct sampler_params *sp, int *n_predict)
{
    if (sp) *sp = c->p.sp;
    if (n_predict) *n_predict = c->p.n_predict;
}

int chat_set_sampling(struct chat *c, const struct sampler_params *sp, int n_predict, char *err,
                      size_t errlen)
{
    struct sampler *ns;
    if (sampler_open(&ns, sp, c->vocab) != 0) {
        snprintf(err, errlen, "chat: cannot create the sampler");
        return -1;
    }
    sampler_close(c->smp);
    c->smp = ns;
    c->p.sp = *sp;
    c->p.n_predict = n_predict;
    return 0;
}

const float *chat_head(const struct chat *c, size_t *n)
{
    *n = c->head_n;
    return c->head;
}

size_t chat_nturns(const struct chat *c) { return c->nturns; }

const float *chat_turn(const struct chat *c, size_t i, size_t *n, size_t *n_in)
{
    *n = c->turns[i].n;
    *n_in = c->turns[i].n_in;
    return c->turns[i].vecs;
}

const struct chat_entry *chat_entries(const struct chat *c, size_t *n)
{
    *n = c->nent;
    return c->ent;
}

int chat_dim(const struct chat *c) { return c->dim; }

int chat_resume(struct chat *c, const float *head, size_t head_n, const struct chat_turn_in *turns,
                size_t nturns, const struct chat_entry *ent, size_t nent, char *err,
                size_t errlen)
{
    chat_clear(c);
    size_t total = head_n;
    for (size_t i = 0; i < nturns; i++) {
        if (!turns[i].n_in || turns[i].n_in > turns[i].n) {
            snprintf(err, errlen, "turn %zu is malformed", i + 1);
            return -1;
        }
        total += turns[i].n;
    }
    if (total > (size_t)c->ctx) {
        snprintf(err, errlen, "the conversation holds %zu tokens, the context %d", total, c->ctx);
        return -1;
    }
    if (head_n) {
        if (!(c->head = malloc(head_n * (size_t)c->dim * sizeof(float)))) goto oom;
        memcpy(c->head, head, head_n * (size_t)c->dim * sizeof(float));
        c->head_n = head_n;
        if (forward(c, c->head, head_n, err, errlen) != 0) goto fail;
    }
    c->started = 1;
    if (nturns > c->turns_cap) {
        struct turn_rec *nt = realloc(c->turns, nturns * sizeof *nt);
        if (!nt) goto oom;
        c->turns = nt;
        c->turns_cap = nturns;
    }
    for (size_t i = 0; i < nturns; i++) {
        struct turn_rec *r = &c->turns[c->nturns++];
        memset(r, 0, sizeof *r);
        if (rec_append(r, turns[i].vecs, turns[i].n, c->dim) != 0) goto oom;
        r->n_in = turns[i].n_in;
        if (forward(c, r->vecs, r->n, err, errlen) != 0) goto fail;
    }
    for (size_t i = 0; i < nent; i++) {
        if (add_entry(c, ent[i].role, ent[i].text, ent[i].len, ent[i].rep, ent[i].nrep,
                      ent[i].eps) != 0)
            goto oom;
        if (ent[i].role != CHAT_USER) continue;
        chat_learn_substitutes(c->rst, ent[i].rep, ent[i].nrep);
        free_reps(c->last_rep, c->last_nrep);
        c->last_rep = NULL;
        c->last_nrep = 0;
        if (ent[i].nrep && !(c->last_rep = malloc(ent[i].nrep * sizeof *c->last_rep))) goto oom;
        if (ent[i].nrep) memcpy(c->last_rep, ent[i].rep, ent[i].nrep * sizeof *c->last_rep);
        c->last_nrep = ent[i].nrep;
        c->last_eps = ent[i].eps;
        c->last_sys = 0;
    }
    return 0;
oom:
    snprintf(err, errlen, "chat: out of memory");
fail:
    chat_clear(c);
    return -1;
}

/* --- the generation thread ------------------------------------------------------------ */

static void *job(void *arg)
{
    struct chat *c = arg;
    char err[512] = "";
    int rc = c->job_text ? chat_send(c, c->job_text, &c->job_cb, err, sizeof err)
                         : chat_retry(c, &c->job_cb, err, sizeof err);
    if (c->job_text) core_wipe(c->job_text, strlen(c->job_text));
    free(c->job_text);
    c->job_text = NULL;
    atomic_store(&c->busy, 0);
    /* Last: after this the UI may join and start the next turn. */
    c->job_done(c->job_cb.ctx, rc, c->tps, rc < 0 || rc == CORE_EBUDGET ? err : NULL);
    return NULL;
}

int chat_submit(struct chat *c, const char *text, const struct chat_cb *cb, chat_done_fn done,
                char *err, size_t errlen)
{
    if (atomic_load(&c->busy)) {
        snprintf(err, errlen, "an answer is still being generated");
        return -1;
    }
    chat_join(c);
    c->job_text = text ? strdup(text) : NULL;
    if (text && !c->job_text) {
        snprintf(err, errlen, "chat: out of memory");
        return -1;
    }
    c->job_cb = *cb;
    c->job_done = done;
    atomic_store(&c->busy, 1);
    int e = pthread_create(&c->thread, NULL, job, c);
    if (e != 0) {
        atomic_store(&c->busy, 0);
        if (c->job_text) core_wipe(c->job_text, strlen(c->job_text));
        free(c->job_text);
        c->job_text = NULL;
        snprintf(err, errlen, "chat: cannot start the generation thread: %s", strerror(e));
        return -1;
    }
    c->thread_live = 1;
    return 0;
}

void chat_join(struct chat *c)
{
    if (c && c->thread_live) {
        pthread_join(c->thread, NULL);
        c->thread_live = 0;
    }
}

int chat_busy(const struct chat *c) { return atomic_load(&((struct chat *)c)->busy); }
void chat_stop(struct chat *c)
{
    if (c) atomic_store(&c->stop, 1);
}

/* --- state ----------------------------------------------------------------------------- */

void chat_clear(struct chat *c)
{
    free_turns(c);
    free_entries(c);
    free(c->head);
    c->head = NULL;
    c->head_n = 0;
    c->pos = 0;
    c->started = 0;
    free_reps(c->last_rep, c->last_nrep);
    c->last_rep = NULL;
    c->last_nrep = 0;
    c->last_eps = 0;
    c->last_sys = 0;
    free_prompt(c);
    restore_forget(c->rst);
    sampler_reset(c->smp);
}

int chat_set_system(struct chat *c, const char *text, char *err, size_t errlen)
{
    char *s = NULL;
    if (text && *text && !(s = strdup(text))) {
        snprintf(err, errlen, "chat: out of memory");
        return -1;
    }
    free(c->system);
    c->system = s;
    return 0;
}

const char *chat_system(const struct chat *c) { return c->system; }

const struct core_tok_report *chat_last_report(const struct chat *c, size_t *n, double *eps)
{
    if (n) *n = c->last_nrep;
    if (eps) *eps = c->last_eps;
    return c->last_rep;
}

size_t chat_last_report_system(const struct chat *c) { return c->last_sys; }

const int32_t *chat_last_prompt(const struct chat *c, size_t *n)
{
    *n = c->prompt_n;
    return c->prompt_ids;
}

void chat_system_note(const struct chat *c, size_t n, char *out, size_t cap)
{
    const char *unit = core_unit_name(core_unit(c->core));
    snprintf(out, cap, "the system prompt (%zu %s%s) was sanitized and charged with this message",
             n, unit, n == 1 ? "" : "s");
}

void chat_budget_snapshot(const struct chat *c, double *spent, double *total, double *eps)
{
    *spent = c->snap_spent;
    *total = c->snap_total;
    *eps = c->snap_eps;
}

int chat_template(const struct chat *c) { return c->p.tmpl; }
int chat_pos(const struct chat *c) { return c->pos; }
int chat_ctx(const struct chat *c) { return c->ctx; }
double chat_last_tps(const struct chat *c) { return c->tps; }
struct core *chat_core(const struct chat *c) { return c->core; }

/* --- Markdown --------------------------------------------------------------------------- */

/* A table cell: inline code, with | and ` made harmless and newlines shown as ⏎. */
static void md_cell(FILE *f, const char *s)
{
    fputs("`", f);
    for (; *s; s++) {
        if (*s == '|') fputs("\\|", f);
        else if (*s == '`') fputs("'", f);
        else if (*s == '\n') fputs("⏎", f);
        else fputc(*s, f);
    }
    fputs("`", f);
}

int chat_write_markdown(const struct chat *c, FILE *f, const char *model_name,
                        const char *path, char *err, size_t errlen)
{
    fprintf(f, "# cmif transcript\n\n");
    fprintf(f, "- model: %s\n- template: %s\n- mechanism: %s, ε %.4g per token\n",
            model_name ? model_name : "?", tmpl_name(c->p.tmpl),
            core_mech_name(core_mechanism(c->core)), core_eps(c->core));
    fprintf(f, "- budget: %.4g spent of %.4g\n", core_budget_spent(c->core),
            core_budget_total(c->core));
    if (c->system) fprintf(f, "- system: %s\n", c->system);
    fputc('\n', f);
    for (size_t i = 0; i < c->nent; i++) {
        const struct chat_entry *e = &c->ent[i];
        switch (e->role) {
        case CHAT_USER:
            fprintf(f, "## You\n\n%s\n\n", e->text);
            fprintf(f, "Privacy report: %zu tokens, ε %.4g\n\n", e->nrep, e->eps);
            fprintf(f, "| # | typed | sent | treatment | ε |\n|---|---|---|---|---|\n");
            for (size_t j = 0; j < e->nrep; j++) {
                fprintf(f, "| %zu | ", j + 1);
                md_cell(f, e->rep[j].orig);
                fputs(" | ", f);
                md_cell(f, e->rep[j].sent);
                fprintf(f, " | %s | %.4g |\n", core_kind_name(e->rep[j].kind), e->rep[j].eps);
            }
            fputc('\n', f);
            break;
        case CHAT_ASSISTANT: {
            /* Both: the answer with the user's own words back (marked [[…]]) and, when any
             * word was restored, exactly what the model wrote. */
            int changed = 0;
            char *rt = restore_text(c->rst, e->text, e->len, "[[", "]]", &changed);
            fprintf(f, "## cmif\n\n%s\n\n", rt && changed ? rt : e->text);
            if (rt && changed)
                fprintf(f, "_As the model wrote it (your words in [[ ]] stand for substitutes "
                           "it was sent):_\n\n%s\n\n", e->text);
            if (rt) core_wipe(rt, strlen(rt));
            free(rt);
            break;
        }
        default: fprintf(f, "_%s_\n\n", e->text); break;
        }
    }
    int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
