/* app/train/train_run: the `cmif train` recipe and per-byte perplexity (see train_run.h). */
#include "app/train/train_run.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/train/bpe_train.h"
#include "app/train/gguf_out.h"
#include "app/model.h"
#include "app/opts.h"
#include "core/gguf.h"
#include "core/core.h"
#include "gpu/decoder.h"
#include "gpu/rng.h"

void train_run_defaults(struct train_run_opts *o)
{
    memset(o, 0, sizeof *o);
    o->name = "cmif-tiny";
    o->vocab = 512;
    o->cfg = (struct train_config){ .dim = 64, .n_layers = 5, .n_heads = 8, .n_kv_heads = 4,
                                    .ffn = 172, .ctx = 256, .norm_eps = 1e-5f,
                                    .rope_base = 10000.0f };
    o->hp = (struct train_hparams){ .batch = 8, .steps = 1000, .warmup = 50, .lr = 1e-3f,
                                    .min_lr_frac = 0.1f, .beta1 = 0.9f, .beta2 = 0.95f,
                                    .adam_eps = 1e-8f, .weight_decay = 0.1f, .clip = 1.0f };
    o->threads = 1;
    o->seed = 1;
    o->log_every = 10;
    o->eval_every = 200;
    o->ckpt_every = 100;
}

/* Next document of buf from *pos: text between blank lines, without surrounding newlines.
 * Returns 0 at the end. */
static int next_doc(const char *buf, size_t len, size_t *pos, size_t *start, size_t *dlen)
{
    size_t i = *pos;
    while (i < len && (buf[i] == '\n' || buf[i] == '\r')) i++;
    if (i >= len) return 0;
    size_t s = i;
    while (i < len && !(buf[i] == '\n' && i + 1 < len && buf[i + 1] == '\n')) i++;
    size_t e = i;
    while (e > s && (buf[e - 1] == '\n' || buf[e - 1] == '\r')) e--;
    *start = s;
    *dlen = e - s;
    *pos = i;
    return 1;
}

/* Token stream of every document: BOS, its tokens, EOS; doc_start[i] indexes its BOS. */
struct stream { int32_t *tok; size_t n, cap; size_t *doc; size_t ndoc, capdoc; size_t bytes; };

static void stream_free(struct stream *s) { free(s->tok); free(s->doc); }

static int encode_docs(const struct core_vocab *tk, const char *buf, size_t len, struct stream *s,
                       char *err, size_t errlen)
{
    size_t pos = 0, st, dl;
    while (next_doc(buf, len, &pos, &st, &dl)) {
        if (s->n + dl + 4 > s->cap) {
            size_t cap = s->cap ? s->cap : 1 << 16;
            while (cap < s->n + dl + 4) cap *= 2;
            int32_t *nt = realloc(s->tok, cap * sizeof *nt);
            if (!nt) goto oom;
            s->tok = nt;
            s->cap = cap;
        }
        if (s->ndoc == s->capdoc) {
            size_t cap = s->capdoc ? 2 * s->capdoc : 1024;
            size_t *nd = realloc(s->doc, cap * sizeof *nd);
            if (!nd) goto oom;
            s->doc = nd;
            s->capdoc = cap;
        }
        size_t got;
        if (core_vocab_encode(tk, buf + st, dl, 1, 1, s->tok + s->n, s->cap - s->n - 1, &got, err, errlen))
            return -1;
        s->doc[s->ndoc++] = s->n;
        s->n += got;
        s->tok[s->n++] = core_vocab_eos(tk);
        s->bytes += dl;
    }
    return 0;
oom:
    snprintf(err, errlen, "out of memory while tokenizing");
    return -1;
}

/* Batch row b: T+1 tokens from a document start (clamped to the stream's end). */
static void fill_row(const struct stream *s, size_t doc, int T, int32_t *row)
{
    size_t st = s->doc[doc];
    if (st + (size_t)T + 1 > s->n) st = s->n - (size_t)T - 1;
    memcpy(row, s->tok + st, ((size_t)T + 1) * sizeof *row);
}

static uint64_t fnv_mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_time(double s, char *buf, size_t n)
{
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

int train_run(const struct train_run_opts *o, float *losses, int cap, char *err, size_t errlen)
{
    int rc = -1;
    char *text = NULL, *etext = NULL;
    size_t tlen = 0, elen = 0;
    struct bpe_vocab *voc = NULL;
    struct gguf_out *gw = NULL;
    void *tokbuf = NULL;
    size_t tokbuf_len = 0;
    struct gguf *tg = NULL;
    struct core_vocab *tk = NULL;
    struct stream tr = {0}, ev = {0};
    struct train_model *m = NULL;
    int32_t *batch = NULL;
    const struct train_hparams *hp = &o->hp;
    FILE *log = o->log;

    if (hp->steps < 1 || hp->batch < 1 || hp->warmup < 0 || !(hp->lr > 0) || o->log_every < 1) {
        snprintf(err, errlen, "steps, batch and lr must be positive (steps %d, batch %d)",
                 hp->steps, hp->batch);
        return -1;
    }
    if (opts_read_file(o->corpus, 4, &text, &tlen, err, errlen)) goto done;
    if (o->eval && opts_read_file(o->eval, 4, &etext, &elen, err, errlen)) goto done;

    /* tokenizer */
    double t0 = now();
    if (bpe_train(text, tlen, o->vocab, &voc, err, errlen)) goto done;
    if (!(gw = gguf_out_new())) { snprintf(err, errlen, "out of memory"); goto done; }
    bpe_vocab_to_gguf(voc, gw);
    if (gguf_out_mem(gw, &tokbuf, &tokbuf_len, err, errlen)) goto done;
    if (gguf_open_mem(&tg, tokbuf, tokbuf_len, err, errlen) || core_vocab_open(&tk, tg, err, errlen))
        goto done;
    if (encode_docs(tk, text, tlen, &tr, err, errlen)) goto done;
    if (etext && encode_docs(tk, etext, elen, &ev, err, errlen)) goto done;
    int T = o->cfg.ctx;
    if (tr.n < (size_t)T + 1 || tr.ndoc == 0) {
        snprintf(err, errlen, "%s: corpus too small (%zu tokens) for a context of %d", o->corpus,
                 tr.n, T);
        goto done;
    }
    if (etext && ev.n < (size_t)T + 1) {
        snprintf(err, errlen, "%s: held-out text too small (%zu tokens)", o->eval, ev.n);
        goto done;
    }
    if (log)
        fprintf(log, "tokenizer: %d tokens (%d characters, %d merges) in %.1f s; corpus %zu "
                "documents, %zu bytes, %zu tokens (%.2f bytes/token)\n", voc->n, voc->n_chars,
                voc->n_merges, now() - t0, tr.ndoc, tr.bytes, tr.n, (double)tr.bytes / tr.n);

    /* model */
    struct train_config cfg = o->cfg;
    cfg.vocab = voc->n;
    if (train_open(&m, &cfg, hp->batch, o->threads, o->seed, err, errlen)) goto done;
    if (log)
        fprintf(log, "model: %zu parameters (dim %d, %d layers, %d/%d heads, ffn %d, ctx %d%s); "
                "%d steps of %d x %d tokens\n", train_n_params(m), cfg.dim, cfg.n_layers,
                cfg.n_heads, cfg.n_kv_heads, cfg.ffn, cfg.ctx, cfg.tied ? ", tied" : "",
                hp->steps, hp->batch, T);

    /* what a checkpoint must agree with to be resumed */
    uint64_t tag = 1469598103934665603ull;
    tag = fnv_mix(tag, tr.tok, tr.n * sizeof *tr.tok);
    tag = fnv_mix(tag, voc->scores, (size_t)voc->n * sizeof *voc->scores);
    for (int i = 0; i < voc->n; i++) tag = fnv_mix(tag, voc->pieces[i], strlen(voc->pieces[i]));
    tag = fnv_mix(tag, hp, sizeof *hp);
    tag = fnv_mix(tag, &o->seed, sizeof o->seed);

    uint64_t rng[4];
    rng_seed(rng, o->seed ^ 0x5eedda7aull);
    int step = 0;
    if (o->resume && o->checkpoint) {
        FILE *f = fopen(o->checkpoint, "rb");
        if (f) {
            fclose(f);
            if (train_load(m, o->checkpoint, &step, rng, tag, err, errlen)) goto done;
            if (log) fprintf(log, "resumed from %s at step %d\n", o->checkpoint, step);
        }
    }

    batch = malloc((size_t)hp->batch * (T + 1) * sizeof *batch);
    if (!batch) { snprintf(err, errlen, "out of memory"); goto done; }
    double start = now(), tokens = 0;
    int first = step;
    for (; step < hp->steps; step++) {
        for (int b = 0; b < hp->batch; b++)
            fill_row(&tr, (size_t)(rng_next(rng) % tr.ndoc), T, batch + (size_t)b * (T + 1));
        train_zero_grad(m);
        float loss = train_loss(m, batch, hp->batch, T, 1);
        if (!isfinite(loss)) {
            snprintf(err, errlen, "loss is not finite at step %d (lower --lr?)", step);
            goto done;
        }
        float gnorm = train_adamw(m, hp, step);
        tokens += (double)hp->batch * T;
        if (losses && step < cap) losses[step] = loss;
        int last = step + 1 == hp->steps || step + 1 == o->stop_after;
        if (log && ((step + 1) % o->log_every == 0 || last)) {
            double el = now() - start, tps = tokens / (el > 0 ? el : 1e-9);
            char eta[32];
            fmt_time((double)(hp->steps - step - 1) * hp->batch * T / tps, eta, sizeof eta);
            fprintf(log, "step %5d/%d  loss %.4f  lr %.2e  gnorm %.3f  %.0f tok/s  ETA %s\n",
                    step + 1, hp->steps, loss, train_lr(hp, step), gnorm, tps, eta);
            fflush(log);
        }
        if (log && etext && o->eval_every > 0 && ((step + 1) % o->eval_every == 0 || last)) {
            /* held-out loss over fixed windows at the first documents */
            double sum = 0;
            int nb = 0;
            for (size_t d = 0; d < ev.ndoc && nb < 4; nb++) {
                int B = 0;
                for (; B < hp->batch && d < ev.ndoc; B++, d++)
                    fill_row(&ev, d, T, batch + (size_t)B * (T + 1));
                sum += train_loss(m, batch, B, T, 0);
            }
            fprintf(log, "eval  %5d  held-out loss %.4f\n", step + 1, sum / nb);
            fflush(log);
        }
        if (o->checkpoint && ((o->ckpt_every > 0 && (step + 1) % o->ckpt_every == 0) || last)) {
            if (train_save(m, o->checkpoint, step + 1, rng, tag, err, errlen)) goto done;
        }
        if (step + 1 == o->stop_after) { step++; break; }
        if (o->interrupt && *o->interrupt && !last) {
            if (o->checkpoint && train_save(m, o->checkpoint, step + 1, rng, tag, err, errlen))
                goto done;
            snprintf(err, errlen, "interrupted after step %d%s%s%s", step + 1,
                     o->checkpoint ? "; checkpoint saved to " : " (no --checkpoint: progress lost)",
                     o->checkpoint ? o->checkpoint : "", o->checkpoint ? ", rerun with --resume" : "");
            goto done;
        }
    }
    if (log && step > first) {
        char el[32];
        fmt_time(now() - start, el, sizeof el);
        fprintf(log, "trained steps %d..%d in %s\n", first + 1, step, el);
    }
    if (o->out && step >= hp->steps) {
        struct gguf_out *mw = gguf_out_new();
        if (!mw) { snprintf(err, errlen, "out of memory"); goto done; }
        train_to_gguf(m, mw, o->name);
        bpe_vocab_to_gguf(voc, mw);
        int r = gguf_out_write(mw, o->out, err, errlen);
        gguf_out_free(mw);
        if (r) goto done;
        if (log) fprintf(log, "wrote %s\n", o->out);
    }
    rc = 0;
done:
    free(batch);
    train_close(m);
    stream_free(&tr);
    stream_free(&ev);
    core_vocab_close(tk);
    gguf_close(tg);
    free(tokbuf);
    gguf_out_free(gw);
    bpe_vocab_free(voc);
    free(text);
    free(etext);
    return rc;
}

int train_ppl(const char *model_path, const char *path, int threads, struct ppl_result *r,
              char *err, size_t errlen)
{
    memset(r, 0, sizeof *r);
    int rc = -1;
    char *text = NULL;
    size_t len = 0;
    struct gguf *g = NULL;
    struct core_vocab *tk = NULL;
    struct model *md = NULL;
    struct decoder *dec = NULL;
    float *x = NULL, *logits = NULL;
    int32_t *ids = NULL;
    if (opts_read_file(path, 4, &text, &len, err, errlen)) goto done;
    if (gguf_open(&g, model_path, err, errlen) || core_vocab_open(&tk, g, err, errlen) ||
        model_open(&md, g, err, errlen))
        goto done;
    struct dec_options dopt = { .ctx = 0, .threads = threads, .device = DEC_DEV_CPU,
                                .cl_index = -1 };
    if (dec_open(&dec, &md->w, &dopt, err, errlen)) goto done;
    int ctx = dec_ctx(dec), dim = md->w.cfg.dim, V = md->w.cfg.vocab;
    x = malloc((size_t)ctx * dim * sizeof *x);
    logits = malloc((size_t)ctx * V * sizeof *logits);
    ids = malloc((len + 4) * sizeof *ids);
    if (!x || !logits || !ids) { snprintf(err, errlen, "out of memory"); goto done; }
    size_t pos = 0, st, dl;
    while (next_doc(text, len, &pos, &st, &dl)) {
        size_t n;
        if (core_vocab_encode(tk, text + st, dl, 1, 1, ids, len + 4, &n, err, errlen)) goto done;
        if (n > (size_t)ctx) { r->skipped++; continue; }
        for (size_t i = 0; i < n; i++)
            if (model_embed_token(md, ids[i], x + i * dim, err, errlen)) goto done;
        if (dec_forward(dec, x, (int)n, 0, logits, 1, err, errlen)) goto done;
        for (size_t i = 0; i + 1 < n; i++) {
            const float *lg = logits + i * V;
            float mx = lg[0];
            for (int j = 1; j < V; j++) if (lg[j] > mx) mx = lg[j];
            double sum = 0;
            for (int j = 0; j < V; j++) sum += exp((double)lg[j] - mx);
            r->nats += log(sum) + mx - lg[ids[i + 1]];
        }
        r->tokens += (double)n - 1;
        r->bytes += (double)dl;
        r->docs++;
    }
    if (r->docs == 0) {
        snprintf(err, errlen, "%s: no document fits the context of %d tokens", path, ctx);
        goto done;
    }
    rc = 0;
done:
    free(x);
    free(logits);
    free(ids);
    dec_close(dec);
    model_close(md);
    core_vocab_close(tk);
    gguf_close(g);
    free(text);
    return rc;
}
