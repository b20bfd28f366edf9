/* cmif generate: continue a prompt with a model, streaming the text to stdout and printing
 * llama.cpp-style timings on stderr.
 *
 * The decoder only ever sees vectors. The two functions marked "input lookup" turn the
 * prompt and each generated token into embeddings through the confidential core
 * (core_encode / core_embed_token): the table lives in its guarded region and encrypted
 * swap, and app/engine builds the decoder from the core's model without token_embd (except
 * as the output matrix of a tied model). generate does not sanitize (mechanism "none"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/cmd.h"
#include "app/engine.h"
#include "app/opts.h"
#include "core/core.h"
#include "gpu/decoder.h"
#include "gpu/sampler.h"

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct gen {
    struct engine eng;         /* core, model without token_embd, decoder */
    struct core *core;         /* = eng.core */
    struct decoder *dec;       /* = eng.dec */
    struct sampler *smp;
    struct core_batch batch;   /* prompt embeddings (n x dim) and the ids sent */
    float *vecs;         /* = batch.vecs */
    float *logits;
    int32_t *ids;        /* = batch.ids */
};

static void gen_close(struct gen *s)
{
    sampler_close(s->smp);
    core_batch_free(&s->batch);
    engine_close(&s->eng);
    free(s->logits);
}

/* Input lookup: prompt text → embeddings (n x dim) in s->vecs. The ids feed the sampler's
 * repetition history. */
static int encode_prompt(struct gen *s, const char *text, size_t len, size_t *n_out, char *err,
                         size_t errlen)
{
    int add_bos = core_add_bos(s->core) && core_bos(s->core) >= 0;
    if (len == 0 && core_bos(s->core) >= 0) add_bos = 1;   /* -p "": BOS alone */
    if (core_encode(s->core, text, len, CORE_SEG_USER, add_bos, &s->batch, err, errlen))
        return -1;
    size_t n = s->batch.n;
    s->ids = s->batch.ids;
    s->vecs = s->batch.vecs;
    if (n == 0) {
        snprintf(err, errlen, "the prompt is empty and the vocabulary has no BOS token");
        return -1;
    }
    for (size_t i = 0; i < n; i++) sampler_accept(s->smp, s->ids[i]);
    *n_out = n;
    return 0;
}

/* Input lookup: a generated token's embedding. */
static int embed_generated(struct gen *s, int32_t id, float *out, char *err, size_t errlen)
{
    return core_embed_token(s->core, id, out, err, errlen);
}

#define GEN_FLAGS (OPT_ENGINE | OPT_PROMPT | OPT_PREDICT | OPT_SAMPLING | OPT_CORE_MEM)

static void usage(FILE *f)
{
    fprintf(f, "usage: cmif %s\n\nContinues a prompt (streamed to stdout; timings on stderr).\n"
               "Model: -m, else $CMIF_MODEL, else " OPTS_DEFAULT_MODEL ".\n\n",
            cmd_generate_entry.usage);
    opts_usage(f, GEN_FLAGS, NULL);
}

static void timing(const char *what, double ms, long n)
{
    fprintf(stderr, "cmif: %-11s = %10.2f ms / %5ld tokens (%8.2f ms per token, %8.2f tokens per second)\n",
            what, ms, n, n ? ms / (double)n : 0.0, ms > 0 ? 1e3 * (double)n / ms : 0.0);
}

static int cmd_generate_exec(int argc, char **argv)
{
    struct opts o;
    char err[512] = "";
    opts_defaults(&o);
    int r = opts_parse(&o, argc, argv, GEN_FLAGS, NULL, NULL, NULL, err, sizeof err);
    struct core_options co = o.core;   /* --core-mem, --require-locked */
    core_options_plain(&co);
    if (r == 1) {
        usage(stdout);
        return EXIT_OK;
    }
    char mbuf[4200];
    if (opts_need_model(&o, r, err, "cmif generate", mbuf, sizeof mbuf) != 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    char *prompt = NULL;
    size_t plen = 0;
    if (o.prompt && *o.prompt) opts_argv_warning("-p", "-f FILE or -f - (stdin)");
    if (opts_read_prompt(&o, &prompt, &plen, err, sizeof err)) {
        fprintf(stderr, "cmif generate: %s\n", err);
        return EXIT_USAGE;
    }

    struct gen s;
    memset(&s, 0, sizeof s);
    int rc = EXIT_RUNTIME;
    double t0 = now_ms();
    if (engine_open(&s.eng, o.model, &o, &co, 0, err, sizeof err)) {
        fprintf(stderr, "cmif generate: %s\n", err);
        goto out;
    }
    s.core = s.eng.core;
    s.dec = s.eng.dec;
    const struct dec_config *cfg = dec_config(s.dec);
    if (dec_fallback_note(s.dec)) fprintf(stderr, "cmif: %s\n", dec_fallback_note(s.dec));
    if (sampler_open(&s.smp, &o.sp, cfg->vocab)) {
        fprintf(stderr, "cmif generate: invalid sampling options\n");
        goto out;
    }
    s.logits = malloc((size_t)cfg->vocab * sizeof(float));
    if (!s.logits) {
        fprintf(stderr, "cmif generate: out of memory\n");
        goto out;
    }
    double t_load = now_ms() - t0;

    size_t n_prompt = 0;
    if (encode_prompt(&s, prompt ? prompt : "", plen, &n_prompt, err, sizeof err)) {
        fprintf(stderr, "cmif generate: %s\n", err);
        goto out;
    }
    int ctx = dec_ctx(s.dec);
    if (n_prompt > (size_t)ctx) {
        fprintf(stderr, "cmif generate: the prompt has %zu tokens, more than the context (%d)\n",
                n_prompt, ctx);
        goto out;
    }
    /* Echo the prompt as given, then stream the continuation. */
    fwrite(prompt ? prompt : "", 1, plen, stdout);
    fflush(stdout);

    double t1 = now_ms();
    if (dec_forward(s.dec, s.vecs, (int)n_prompt, 0, s.logits, 0, err, sizeof err)) {
        fprintf(stderr, "cmif generate: %s\n", err);
        goto out;
    }
    double t_prompt = now_ms() - t1;

    float *vec = s.vecs;   /* reused for one generated token's embedding */
    int pos = (int)n_prompt;
    struct core_detok dt;      /* the first piece after BOS loses SentencePiece's space */
    core_detok_init(&dt, s.ids[n_prompt - 1]);
    long n_gen = 0;
    char piece[256];
    double t2 = now_ms();
    int stopped_ctx = 0;
    int32_t eog = -1;
    for (;;) {
        if (o.n_predict >= 0 && n_gen >= o.n_predict) break;
        int32_t id = sampler_sample(s.smp, s.logits);
        if (core_is_eog(s.core, id)) {
            eog = id;
            break;
        }
        sampler_accept(s.smp, id);
        n_gen++;
        size_t pl = core_piece(s.core, &dt, id, 0, piece, sizeof piece);
        if (pl > sizeof piece) pl = sizeof piece;
        fwrite(piece, 1, pl, stdout);
        fflush(stdout);
        if (o.n_predict >= 0 && n_gen >= o.n_predict) break;
        if (pos >= ctx) {
            stopped_ctx = 1;
            break;
        }
        if (embed_generated(&s, id, vec, err, sizeof err) ||
            dec_forward(s.dec, vec, 1, pos, s.logits, 0, err, sizeof err)) {
            fprintf(stderr, "\ncmif generate: %s\n", err);
            goto out;
        }
        pos++;
    }
    double t_eval = now_ms() - t2;
    fputc('\n', stdout);
    fflush(stdout);
    if (stopped_ctx) fprintf(stderr, "cmif: stopped: the context (%d positions) is full\n", ctx);
    if (eog >= 0) {
        /* Which end-of-generation token ended it, as llama-cli says "[end of text]". */
        struct core_detok d2;
        core_detok_init(&d2, eog);
        size_t pl = core_piece(s.core, &d2, eog, 1, piece, sizeof piece - 1);
        if (pl > sizeof piece - 1) pl = sizeof piece - 1;
        piece[pl] = 0;
        fprintf(stderr, "cmif: stopped: end of generation (%s, token %d)\n", piece, (int)eog);
    }
    fprintf(stderr, "cmif: load time   = %10.2f ms\n", t_load);
    timing("prompt eval", t_prompt, (long)n_prompt);
    timing("eval", t_eval, n_gen);
    fprintf(stderr, "cmif: backend     = %s\n", dec_device_name(s.dec));
    struct core_status cst;
    core_status(s.core, &cst);
    fprintf(stderr, "cmif: core        = %s\n", cst.summary);
    rc = EXIT_OK;
out:
    gen_close(&s);
    if (prompt) core_wipe(prompt, plen);
    free(prompt);
    return rc;
}

const struct cmd_entry cmd_generate_entry = {
    "generate",
    "generate [-m MODEL] [-p TEXT | -f FILE] [-n N] [-t N] [-c N] [-s SEED] [--temp T] ...",
    "continue a prompt with a model (no sanitization; streams text)",
    cmd_generate_exec,
};
