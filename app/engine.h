/* app/engine: the one place that assembles what a model needs to run, in order: the
 * confidential core (token_embd and the tokenizer behind core/core.h), the decoder's weights
 * from the same file with token_embd taken out (the table is the core's; a tied model keeps
 * it only as the output matrix), the decoder, and for the chat the chat session.
 * `cmif chat` and `cmif generate` open their model through it. */
#ifndef CMIF_APP_ENGINE_H
#define CMIF_APP_ENGINE_H

#include <stddef.h>

struct core;
struct core_options;
struct model;
struct decoder;
struct chat;
struct chat_params;
struct opts;

/* Advice appended to a CORE_ELOCKED refusal, in the terms of the command line. */
#define ENGINE_LOCKED_ADVICE \
    "; raise `ulimit -l`, lower --core-mem, or run without --require-locked"

struct engine {
    struct core *core;
    struct model *model;
    struct decoder *dec;
    struct chat *chat;          /* NULL until engine_start_chat */
    struct dec_prefault *pf;    /* the weights being mapped in (ended at close) */
    char name[160];             /* general.name, else the file's base name */
};

/* engine_open's flags. ENGINE_PREPARE: the core builds its sanitizer during the start
 * (core_prepare), while the decoder's device search and the weights' mapping run, instead of
 * on the way of the first sanitized message: for a chat that answers its first message at
 * once (a script, plain lines), not for a screen that should appear at once (on a first run
 * that build is the clustering: seconds). */
#define ENGINE_PREPARE 1

/* Core (options co), model without token_embd, decoder (o's ctx, threads, device). 0, or -1
 * with err ("PATH: why" for the core and the model, the decoder's message as it is). On
 * failure everything opened is closed again. */
int engine_open(struct engine *e, const char *path, const struct opts *o,
                const struct core_options *co, int flags, char *err, size_t errlen);
/* The chat session on top: cp->tmpl is taken from template_name (llama2, chatml, ...) or,
 * when that is NULL, detected from the model's tokenizer.chat_template. 0 or -1 with err;
 * on failure the engine stays open. */
int engine_start_chat(struct engine *e, const char *template_name,
                      const struct chat_params *cp, char *err, size_t errlen);
/* Closes in reverse order; e is zeroed. */
void engine_close(struct engine *e);

#endif
