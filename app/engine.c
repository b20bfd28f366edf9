/* app/engine: core → model without token_embd → decoder → chat (app/engine.h). */
#include "app/engine.h"

#include <stdio.h>
#include <string.h>

#include "app/chat.h"
#include "app/model.h"
#include "app/opts.h"
#include "app/template.h"
#include "core/core.h"
#include "core/gguf.h"
#include "gpu/decoder.h"

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

void engine_close(struct engine *e)
{
    chat_close(e->chat);
    dec_close(e->dec);
    dec_prefault_end(e->pf);
    model_close(e->model);
    core_close(e->core);
    memset(e, 0, sizeof *e);
}

int engine_open(struct engine *e, const char *path, const struct opts *o,
                const struct core_options *co, int flags, char *err, size_t errlen)
{
    memset(e, 0, sizeof *e);
    char tmp[512];
    /* The device search runs beside the core's start (and before any secret exists). */
    dec_prepare(o->device);
    int rc = core_open(&e->core, path, co, tmp, sizeof tmp);
    if (rc != 0) {
        snprintf(err, errlen, "%.400s: %.500s%s", path, tmp,
                 rc == CORE_ELOCKED ? ENGINE_LOCKED_ADVICE : "");
        return -1;
    }
    if (model_open(&e->model, core_gguf(e->core), tmp, sizeof tmp) != 0) {
        snprintf(err, errlen, "%.400s: %.500s", path, tmp);
        goto fail;
    }
    /* The table is in the core; the decoder side keeps token_embd only as a tied output. */
    memset(&e->model->embd, 0, sizeof e->model->embd);
    if (core_n_vocab(e->core) > e->model->w.cfg.vocab) {
        snprintf(err, errlen, "%.400s: the vocabulary has %d tokens but the model only %d", path,
                 (int)core_n_vocab(e->core), e->model->w.cfg.vocab);
        goto fail;
    }
    snprintf(e->name, sizeof e->name, "%.150s",
             e->model->name[0] ? e->model->name : base_name(path));
    /* Past its trained context a model's positions are ones it never saw: its output
     * degrades silently. Clamp, and say so rather than accept -c quietly. */
    int ctx = o->ctx;
    int train = e->model->w.cfg.ctx_train;
    if (train > 0 && ctx > train) {
        fprintf(stderr, "cmif: -c %d is more than the %d tokens %s was trained on; using %d\n",
                ctx, train, e->name, train);
        ctx = train;
    }
    /* Both run beside the device search that dec_open waits for: the weights' pages on a
     * thread, the sanitizer on this one. Neither depends on anything the user typed. */
    e->pf = dec_prefault(&e->model->w);
    /* Best effort: where it fails, the first message builds it again and says why. */
    if (flags & ENGINE_PREPARE) (void)core_prepare(e->core, tmp, sizeof tmp);
    struct dec_options dopt = { .ctx = ctx, .threads = o->threads, .device = o->device,
                                .cl_index = o->cl_index, .prefaulted = e->pf != NULL,
                                .weights_mapped = core_gguf(e->core)->owns_map };
    if (dec_open(&e->dec, &e->model->w, &dopt, tmp, sizeof tmp) != 0) {
        snprintf(err, errlen, "%s", tmp);
        goto fail;
    }
    return 0;
fail:
    engine_close(e);
    return -1;
}

int engine_start_chat(struct engine *e, const char *template_name,
                      const struct chat_params *cp, char *err, size_t errlen)
{
    struct chat_params p = *cp;
    if (template_name) {
        p.tmpl = tmpl_parse(template_name);
    } else {
        struct gguf_str s = { 0 };
        int known = 1;
        gguf_get_str(core_gguf(e->core), "tokenizer.chat_template", &s);
        p.tmpl = tmpl_detect(s.ptr, s.len, &known);
    }
    char tmp[512];
    if (chat_open(&e->chat, e->core, e->dec, &p, tmp, sizeof tmp) != 0) {
        snprintf(err, errlen, "%s", tmp);
        return -1;
    }
    return 0;
}
