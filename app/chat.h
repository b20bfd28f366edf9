/* app/chat: the conversation. Renders each turn with the chat template, has the core
 * encode (and sanitize) it, runs the decoder over the new vectors only (the KV cache is
 * kept across turns), samples the answer and streams it out. When the context fills,
 * the oldest turns are dropped and the user is told. chat_send runs a turn synchronously
 * (scripted sessions); chat_submit runs one on its own thread and reports through the
 * same callbacks (the full-screen chat, app/tui, relays them to its event queue). */
#ifndef CMIF_APP_CHAT_H
#define CMIF_APP_CHAT_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "core/core.h"
#include "gpu/sampler.h"

struct decoder;
struct restore;

struct chat_params {
    int tmpl;                  /* enum tmpl_kind */
    int n_predict;             /* max tokens per answer; -1 = until EOG or context full */
    struct sampler_params sp;
    const char *system;        /* initial system prompt or NULL */
    int delay_ms;              /* pause after each generated token (demos, tests) */
};

/* Where a turn's output goes. All may be NULL. Called on the thread running the turn. */
struct chat_cb {
    void (*text)(void *ctx, const char *s, size_t n);     /* a piece of the answer */
    void (*info)(void *ctx, const char *msg);             /* a notice */
    void (*report)(void *ctx);                            /* chat_last_report() is ready */
    void *ctx;
};

enum chat_role { CHAT_USER = 0, CHAT_ASSISTANT, CHAT_SYSTEM, CHAT_NOTE };

/* One transcript entry (kept for /save). rep/nrep: the privacy report of a user message. */
struct chat_entry {
    int role;
    char *text;
    size_t len;
    struct core_tok_report *rep;
    size_t nrep;
    double eps;
};

#define CHAT_STOPPED 1         /* chat_send: the user stopped the answer (not an error) */

struct chat;

int chat_open(struct chat **out, struct core *core, struct decoder *dec,
              const struct chat_params *p, char *err, size_t errlen);
void chat_close(struct chat *c);

/* The words for a budget refusal: what it would cost, what is left (today's, with the
 * ledger), and the advice (eps_hint: how to lower ε in this interface). */
void chat_refusal_text(const struct core *core, const struct core_refusal *r,
                       const char *eps_hint, char *out, size_t cap);

/* One turn: the user's message and the model's answer. 0 or CHAT_STOPPED on success;
 * CORE_EBUDGET (nothing was sent; err says what is left and, in the chat's terms, what to do)
 * or -1 with err on failure. */
int chat_send(struct chat *c, const char *text, const struct chat_cb *cb, char *err,
              size_t errlen);

/* /retry: a new answer to the last message from the same, already sanitized input: the
 * decoder gets the vectors it got before (kept from that turn) after the KV cache is rolled
 * back to before the old answer, which leaves the transcript. Nothing is encoded or charged
 * (no ε). Results as chat_send; -1 with err when there is no message to answer again. */
int chat_retry(struct chat *c, const struct chat_cb *cb, char *err, size_t errlen);

/* Called on the turn's thread when a submitted turn ends: status is chat_send's result,
 * tps the answer's tokens/s, err the error (NULL unless status < 0 or CORE_EBUDGET; valid
 * during the call). The turn no longer counts as busy; the caller should chat_join. */
typedef void (*chat_done_fn)(void *ctx, int status, double tps, const char *err);

/* chat_send (chat_retry when text is NULL) on a new thread: cb's functions (copied) and then done (with cb->ctx) are
 * called there. -1 when a turn is already running or the thread cannot start. */
int chat_submit(struct chat *c, const char *text, const struct chat_cb *cb, chat_done_fn done,
                char *err, size_t errlen);
/* Waits for a submitted turn's thread (call after QUEUE_DONE, or before closing). */
void chat_join(struct chat *c);
int chat_busy(const struct chat *c);
/* Asks the running turn to stop after the current token (thread-safe, signal-free). */
void chat_stop(struct chat *c);

/* New conversation: context and transcript emptied; the spent budget stays spent. */
void chat_clear(struct chat *c);
/* Sets the system prompt; it takes effect with the next conversation (/clear) unless
 * nothing has been said yet. NULL or "" removes it. */
int chat_set_system(struct chat *c, const char *text, char *err, size_t errlen);
const char *chat_system(const struct chat *c);

/* The last message the user sent / the model's last answer (borrowed; NULL when none). */
const char *chat_last_message(const struct chat *c);
const char *chat_last_answer(const struct chat *c, size_t *len);
/* The sampling settings (/set, /show) and the answer length (-n; -1: until the end). The
 * setter takes effect with the next answer (a new sampler). 0 or -1 with err. */
void chat_sampling(const struct chat *c, struct sampler_params *sp, int *n_predict);
int chat_set_sampling(struct chat *c, const struct sampler_params *sp, int n_predict, char *err,
                      size_t errlen);

/* The context as the decoder has it (for session files): the head (BOS and system block)
 * and each turn's vectors, of which the first n_in are the message (template and
 * sanitized input) and the rest the answer. Borrowed; read only while no turn runs. */
int chat_dim(const struct chat *c);
const float *chat_head(const struct chat *c, size_t *n);
size_t chat_nturns(const struct chat *c);
const float *chat_turn(const struct chat *c, size_t i, size_t *n, size_t *n_in);
const struct chat_entry *chat_entries(const struct chat *c, size_t *n);

struct chat_turn_in {
    const float *vecs;
    size_t n, n_in;
};
/* Replaces the conversation with a saved one: the decoder is given the saved vectors again
 * (already sanitized: nothing is encoded or charged), the transcript and the reports are
 * restored (the last report is the last message's). 0, or -1 with err (the conversation
 * is then empty). */
int chat_resume(struct chat *c, const float *head, size_t head_n, const struct chat_turn_in *turns,
                size_t nturns, const struct chat_entry *ent, size_t nent, char *err,
                size_t errlen);

/* Report of the last user message (rows for the privacy panel). */
const struct core_tok_report *chat_last_report(const struct chat *c, size_t *n, double *eps);
/* The token ids the decoder received for the last message, in order: BOS and the system
 * block on a conversation's first message, the template's tokens and the message as
 * sanitized (never what the user typed). Borrowed; NULL with *n 0 when no message was sent
 * in this conversation (also after --resume). Read only while no turn runs. */
const int32_t *chat_last_prompt(const struct chat *c, size_t *n);
/* How many of those rows, from the first, are the system prompt: it is sanitized and
 * charged with the first message of a conversation (0 for the others). */
size_t chat_last_report_system(const struct chat *c);
/* The sentence that says so, for n such rows. */
void chat_system_note(const struct chat *c, size_t n, char *out, size_t cap);
/* Budget figures taken right after the last message was encoded: the UI thread reads
 * these while a turn runs instead of calling into the core concurrently. */
void chat_budget_snapshot(const struct chat *c, double *spent, double *total, double *eps);

int chat_template(const struct chat *c);
int chat_pos(const struct chat *c);           /* tokens in the context */
int chat_ctx(const struct chat *c);
double chat_last_tps(const struct chat *c);   /* tokens/s of the last answer */
struct core *chat_core(const struct chat *c);

/* Teaches r the substitutes of a report (rows replaced or random: orig ↔ sent). 0 or -1. */
int chat_learn_substitutes(struct restore *r, const struct core_tok_report *rep, size_t n);
/* The substitutes sent in this conversation (for /save and reports; app/restore). Read it
 * only while no turn runs. */
const struct restore *chat_restorer(const struct chat *c);

/* Writes the transcript with the per-word privacy report as Markdown to f (an answer that
 * repeats a substitute shows the user's word marked [[word]], then what the model wrote) (opened by the
 * caller: it holds the user's text in clear, see savefile_open_private) and closes f. path
 * only names the file in err. */
int chat_write_markdown(const struct chat *c, FILE *f, const char *model_name,
                        const char *path, char *err, size_t errlen);

#endif
