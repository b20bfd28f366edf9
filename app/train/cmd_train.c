/* cmif train: learns a byte-fallback BPE tokenizer and a small Llama model from a text
 * corpus on the CPU and writes a standard GGUF; `--ppl` scores held-out text per byte. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/cmd.h"
#include "app/opts.h"
#include "app/train/train_run.h"

static const char usage_line[] =
    "train --corpus FILE --out MODEL.gguf [options] | train --ppl FILE -m MODEL.gguf";

enum { X_CORPUS = 1, X_OUT, X_EVAL, X_VOCAB, X_DIM, X_LAYERS, X_HEADS, X_KVH, X_FFN, X_CTX,
       X_TIED, X_BATCH, X_STEPS, X_LR, X_MINLR, X_WARMUP, X_WD, X_CLIP, X_CKPT, X_CKEVERY,
       X_RESUME, X_LOGEVERY, X_EVALEVERY, X_NAME, X_PPL, X_STOP, X_THREADS, X_SEED };

/* Flags without a help line of their own are described on a neighbour's line. */
static const struct opts_extra extras[] = {
    {"corpus", 0, 1, X_CORPUS, "--corpus FILE      training text (required)"},
    {"out", 0, 1, X_OUT, "--out FILE         GGUF to write when training finishes"},
    {"eval", 0, 1, X_EVAL, "--eval FILE        held-out text: its loss is printed every --eval-every steps"},
    {"vocab", 0, 1, X_VOCAB, "--vocab N          vocabulary size, 269..8192 (default 512)"},
    {"dim", 0, 1, X_DIM,
     "--dim N --layers N --heads N --kv-heads N --ffn N --ctx N\n"
     "                         shape (default 64, 5, 8, 4, 172, 256)"},
    {"layers", 0, 1, X_LAYERS, NULL},
    {"heads", 0, 1, X_HEADS, NULL},
    {"kv-heads", 0, 1, X_KVH, NULL},
    {"ffn", 0, 1, X_FFN, NULL},
    {"ctx", 0, 1, X_CTX, NULL},
    {"tied", 0, 0, X_TIED, "--tied             output projection shares token_embd"},
    {"batch", 0, 1, X_BATCH, "--batch N          sequences per step (default 8)"},
    {"steps", 0, 1, X_STEPS, "--steps N          optimizer steps (default 1000)"},
    {"lr", 0, 1, X_LR, "--lr X             peak learning rate (default 1e-3); --min-lr-frac X (0.1)"},
    {"min-lr-frac", 0, 1, X_MINLR, NULL},
    {"warmup", 0, 1, X_WARMUP, "--warmup N         linear warm-up steps (default 50), then cosine decay"},
    {"wd", 0, 1, X_WD, "--wd X             AdamW weight decay (default 0.1); --clip X grad norm (1.0)"},
    {"clip", 0, 1, X_CLIP, NULL},
    {"threads", 't', 1, X_THREADS, "-t, --threads N        threads (default 1)"},
    {"seed", 's', 1, X_SEED, "-s, --seed N           seed for initialization and data order (default 1)"},
    {"checkpoint", 0, 1, X_CKPT,
     "--checkpoint FILE  save weights + optimizer state every --checkpoint-every steps"},
    {"checkpoint-every", 0, 1, X_CKEVERY, NULL},
    {"resume", 0, 0, X_RESUME, "--resume           continue from --checkpoint when it exists"},
    {"stop-after", 0, 1, X_STOP, "--stop-after N     stop after step N with a checkpoint, as if interrupted"},
    {"log-every", 0, 1, X_LOGEVERY, "--log-every N      progress line interval (default 10)"},
    {"eval-every", 0, 1, X_EVALEVERY, "--eval-every N     held-out loss interval (default 200)"},
    {"name", 0, 1, X_NAME, "--name TEXT        general.name (default cmif-tiny)"},
    {"ppl", 0, 1, X_PPL, "--ppl FILE         per-byte perplexity of -m MODEL on FILE's documents"},
    {NULL, 0, 0, 0, NULL},
};

static void usage(FILE *f)
{
    fprintf(f,
        "usage: cmif %s\n\n"
        "Trains a tokenizer (byte-fallback BPE) and a Llama model on a text corpus whose\n"
        "documents are separated by blank lines; <|im_start|>/<|im_end|> mark ChatML turns.\n\n",
        usage_line);
    opts_usage(f, OPT_MODEL, extras);
}

static int parse_int(const char *s, const char *flag, int lo, int *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > INT_MAX) {
        snprintf(err, errlen, "%s: bad value '%s'", flag, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_float(const char *s, const char *flag, float *out, char *err, size_t errlen)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v) || v < 0) {
        snprintf(err, errlen, "%s: bad value '%s'", flag, s);
        return -1;
    }
    *out = (float)v;
    return 0;
}

struct train_flags {
    struct train_run_opts *o;
    const char *ppl;
};

static int on_extra(void *ctx, int id, const char *v, char *err, size_t errlen)
{
    struct train_flags *tf = ctx;
    struct train_run_opts *o = tf->o;
    int seed;
    switch (id) {
    case X_CORPUS: o->corpus = v; return 0;
    case X_OUT: o->out = v; return 0;
    case X_EVAL: o->eval = v; return 0;
    case X_VOCAB: return parse_int(v, "--vocab", 1, &o->vocab, err, errlen);
    case X_DIM: return parse_int(v, "--dim", 1, &o->cfg.dim, err, errlen);
    case X_LAYERS: return parse_int(v, "--layers", 1, &o->cfg.n_layers, err, errlen);
    case X_HEADS: return parse_int(v, "--heads", 1, &o->cfg.n_heads, err, errlen);
    case X_KVH: return parse_int(v, "--kv-heads", 1, &o->cfg.n_kv_heads, err, errlen);
    case X_FFN: return parse_int(v, "--ffn", 1, &o->cfg.ffn, err, errlen);
    case X_CTX: return parse_int(v, "--ctx", 2, &o->cfg.ctx, err, errlen);
    case X_TIED: o->cfg.tied = 1; return 0;
    case X_BATCH: return parse_int(v, "--batch", 1, &o->hp.batch, err, errlen);
    case X_STEPS: return parse_int(v, "--steps", 1, &o->hp.steps, err, errlen);
    case X_LR: return parse_float(v, "--lr", &o->hp.lr, err, errlen);
    case X_MINLR: return parse_float(v, "--min-lr-frac", &o->hp.min_lr_frac, err, errlen);
    case X_WARMUP: return parse_int(v, "--warmup", 0, &o->hp.warmup, err, errlen);
    case X_WD: return parse_float(v, "--wd", &o->hp.weight_decay, err, errlen);
    case X_CLIP: return parse_float(v, "--clip", &o->hp.clip, err, errlen);
    case X_CKPT: o->checkpoint = v; return 0;
    case X_CKEVERY: return parse_int(v, "--checkpoint-every", 1, &o->ckpt_every, err, errlen);
    case X_RESUME: o->resume = 1; return 0;
    case X_LOGEVERY: return parse_int(v, "--log-every", 1, &o->log_every, err, errlen);
    case X_EVALEVERY: return parse_int(v, "--eval-every", 1, &o->eval_every, err, errlen);
    case X_STOP: return parse_int(v, "--stop-after", 1, &o->stop_after, err, errlen);
    case X_NAME: o->name = v; return 0;
    case X_PPL: tf->ppl = v; return 0;
    case X_THREADS: return parse_int(v, "--threads", 1, &o->threads, err, errlen);
    case X_SEED:
        if (parse_int(v, "--seed", 0, &seed, err, errlen)) return -1;
        o->seed = (uint64_t)seed;
        return 0;
    }
    snprintf(err, errlen, "internal: unknown flag id %d", id);
    return -1;
}

/* Ctrl-C / SIGTERM during training: the step in progress finishes and a checkpoint is
 * written before exiting, so no work since the last periodic checkpoint is lost. */
static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

static int cmd_train_exec(int argc, char **argv)
{
    struct train_run_opts o;
    train_run_defaults(&o);
    o.log = stdout;
    struct train_flags tf = {&o, NULL};
    struct opts op;
    opts_defaults(&op);
    char err[512];
    int r = opts_parse(&op, argc, argv, OPT_MODEL, extras, on_extra, &tf, err, sizeof err);
    if (r == 1) {
        usage(stdout);
        return EXIT_OK;
    }
    const char *ppl = tf.ppl, *model = op.model;
    int bad = 1;
    if (r < 0)
        fprintf(stderr, "cmif train: %s\n", err);
    else if (op.n_args > 0)
        fprintf(stderr, "cmif train: unexpected argument '%s'\n", op.args[0]);
    else if (!ppl && !o.corpus)
        fprintf(stderr, "cmif train: --corpus FILE is required\n");
    else if (ppl && !model)
        fprintf(stderr, "cmif train: --ppl needs -m MODEL\n");
    else if (o.resume && !o.checkpoint)
        fprintf(stderr, "cmif train: --resume needs --checkpoint FILE\n");
    else
        bad = 0;
    if (bad) {
        fprintf(stderr, "usage: cmif %s\n", usage_line);
        return EXIT_USAGE;
    }
    if (ppl) {
        struct ppl_result r;
        if (train_ppl(model, ppl, o.threads, &r, err, sizeof err)) {
            fprintf(stderr, "cmif train: %s\n", err);
            return EXIT_RUNTIME;
        }
        double bpb = r.nats / r.bytes / log(2.0);
        printf("model %s\ntext %s: %d documents (%d longer than the context skipped), "
               "%.0f bytes, %.0f tokens\n", model, ppl, r.docs, r.skipped, r.bytes, r.tokens);
        printf("bits/byte %.4f  byte perplexity %.4f  token perplexity %.3f\n", bpb,
               exp(r.nats / r.bytes), exp(r.nats / r.tokens));
        return EXIT_OK;
    }
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    interrupted = 0;
    o.interrupt = &interrupted;
    if (sigaction(SIGINT, &sa, &old_int) || sigaction(SIGTERM, &sa, &old_term)) {
        fprintf(stderr, "cmif train: cannot install signal handlers: %s\n", strerror(errno));
        return EXIT_RUNTIME;
    }
    int rc = train_run(&o, NULL, 0, err, sizeof err);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (rc) {
        fprintf(stderr, "cmif train: %s\n", err);
        return EXIT_RUNTIME;
    }
    return EXIT_OK;
}

const struct cmd_entry cmd_train_entry = {
    "train", usage_line, "train a tokenizer and a small Llama model on a text corpus (CPU)",
    cmd_train_exec,
};
