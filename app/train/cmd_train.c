/* cmif train: learns a byte-fallback BPE tokenizer and a small Llama model from a text
 * corpus on the CPU and writes a standard GGUF; `--ppl` scores held-out text per byte. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/cmd.h"
#include "app/train/train_run.h"

static const char usage_line[] =
    "train --corpus FILE --out MODEL.gguf [options] | train --ppl FILE -m MODEL.gguf";

static void usage(FILE *f)
{
    fprintf(f,
        "usage: cmif %s\n\n"
        "Trains a tokenizer (byte-fallback BPE) and a Llama model on a text corpus whose\n"
        "documents are separated by blank lines; <|im_start|>/<|im_end|> mark ChatML turns.\n\n"
        "  --corpus FILE        training text (required)\n"
        "  --out FILE           GGUF to write when training finishes\n"
        "  --eval FILE          held-out text: its loss is printed every --eval-every steps\n"
        "  --vocab N            vocabulary size, 269..8192 (default 512)\n"
        "  --dim N --layers N --heads N --kv-heads N --ffn N --ctx N\n"
        "                       shape (default 64, 5, 8, 4, 172, 256)\n"
        "  --tied               output projection shares token_embd\n"
        "  --batch N            sequences per step (default 8)\n"
        "  --steps N            optimizer steps (default 1000)\n"
        "  --lr X               peak learning rate (default 1e-3); --min-lr-frac X (0.1)\n"
        "  --warmup N           linear warm-up steps (default 50), then cosine decay\n"
        "  --wd X               AdamW weight decay (default 0.1); --clip X grad norm (1.0)\n"
        "  -t, --threads N      threads (default 1)\n"
        "  -s, --seed N         seed for initialization and data order (default 1)\n"
        "  --checkpoint FILE    save weights + optimizer state every --checkpoint-every steps\n"
        "  --resume             continue from --checkpoint when it exists\n"
        "  --stop-after N       stop after step N with a checkpoint, as if interrupted\n"
        "  --log-every N        progress line interval (default 10)\n"
        "  --eval-every N       held-out loss interval (default 200)\n"
        "  --name TEXT          general.name (default cmif-tiny)\n"
        "  --ppl FILE -m MODEL  per-byte perplexity of MODEL on FILE's documents\n"
        "  -h, --help           this help\n", usage_line);
}

static int parse_int(const char *s, const char *flag, int lo, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < lo || v > INT_MAX) {
        fprintf(stderr, "cmif train: %s: bad value '%s'\n", flag, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static int parse_float(const char *s, const char *flag, float *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || end == s || !isfinite(v) || v < 0) {
        fprintf(stderr, "cmif train: %s: bad value '%s'\n", flag, s);
        return -1;
    }
    *out = (float)v;
    return 0;
}

enum { O_CORPUS = 256, O_OUT, O_EVAL, O_VOCAB, O_DIM, O_LAYERS, O_HEADS, O_KVH, O_FFN, O_CTX,
       O_TIED, O_BATCH, O_STEPS, O_LR, O_MINLR, O_WARMUP, O_WD, O_CLIP, O_CKPT, O_CKEVERY,
       O_RESUME, O_LOGEVERY, O_EVALEVERY, O_NAME, O_PPL, O_STOP };

/* Ctrl-C / SIGTERM during training: the step in progress finishes and a checkpoint is
 * written before exiting, so no work since the last periodic checkpoint is lost. */
static volatile sig_atomic_t interrupted;
static void on_signal(int sig) { (void)sig; interrupted = 1; }

static int cmd_train_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        {"corpus", 1, 0, O_CORPUS}, {"out", 1, 0, O_OUT}, {"eval", 1, 0, O_EVAL},
        {"vocab", 1, 0, O_VOCAB}, {"dim", 1, 0, O_DIM}, {"layers", 1, 0, O_LAYERS},
        {"heads", 1, 0, O_HEADS}, {"kv-heads", 1, 0, O_KVH}, {"ffn", 1, 0, O_FFN},
        {"ctx", 1, 0, O_CTX}, {"tied", 0, 0, O_TIED}, {"batch", 1, 0, O_BATCH},
        {"steps", 1, 0, O_STEPS}, {"lr", 1, 0, O_LR}, {"min-lr-frac", 1, 0, O_MINLR},
        {"warmup", 1, 0, O_WARMUP}, {"wd", 1, 0, O_WD}, {"clip", 1, 0, O_CLIP},
        {"checkpoint", 1, 0, O_CKPT}, {"checkpoint-every", 1, 0, O_CKEVERY},
        {"resume", 0, 0, O_RESUME}, {"log-every", 1, 0, O_LOGEVERY},
        {"eval-every", 1, 0, O_EVALEVERY}, {"name", 1, 0, O_NAME}, {"ppl", 1, 0, O_PPL},
        {"stop-after", 1, 0, O_STOP},
        {"threads", 1, 0, 't'}, {"seed", 1, 0, 's'}, {"model", 1, 0, 'm'}, {"help", 0, 0, 'h'},
        {0, 0, 0, 0},
    };
    struct train_run_opts o;
    train_run_defaults(&o);
    o.log = stdout;
    const char *ppl = NULL, *model = NULL;
    int c, bad = 0, seed;
    optind = 1;
    opterr = 0;
    while (!bad && (c = getopt_long(argc, argv, "t:s:m:h", lo, NULL)) != -1) {
        switch (c) {
        case O_CORPUS: o.corpus = optarg; break;
        case O_OUT: o.out = optarg; break;
        case O_EVAL: o.eval = optarg; break;
        case O_VOCAB: bad = parse_int(optarg, "--vocab", 1, &o.vocab); break;
        case O_DIM: bad = parse_int(optarg, "--dim", 1, &o.cfg.dim); break;
        case O_LAYERS: bad = parse_int(optarg, "--layers", 1, &o.cfg.n_layers); break;
        case O_HEADS: bad = parse_int(optarg, "--heads", 1, &o.cfg.n_heads); break;
        case O_KVH: bad = parse_int(optarg, "--kv-heads", 1, &o.cfg.n_kv_heads); break;
        case O_FFN: bad = parse_int(optarg, "--ffn", 1, &o.cfg.ffn); break;
        case O_CTX: bad = parse_int(optarg, "--ctx", 2, &o.cfg.ctx); break;
        case O_TIED: o.cfg.tied = 1; break;
        case O_BATCH: bad = parse_int(optarg, "--batch", 1, &o.hp.batch); break;
        case O_STEPS: bad = parse_int(optarg, "--steps", 1, &o.hp.steps); break;
        case O_LR: bad = parse_float(optarg, "--lr", &o.hp.lr); break;
        case O_MINLR: bad = parse_float(optarg, "--min-lr-frac", &o.hp.min_lr_frac); break;
        case O_WARMUP: bad = parse_int(optarg, "--warmup", 0, &o.hp.warmup); break;
        case O_WD: bad = parse_float(optarg, "--wd", &o.hp.weight_decay); break;
        case O_CLIP: bad = parse_float(optarg, "--clip", &o.hp.clip); break;
        case O_CKPT: o.checkpoint = optarg; break;
        case O_CKEVERY: bad = parse_int(optarg, "--checkpoint-every", 1, &o.ckpt_every); break;
        case O_RESUME: o.resume = 1; break;
        case O_LOGEVERY: bad = parse_int(optarg, "--log-every", 1, &o.log_every); break;
        case O_EVALEVERY: bad = parse_int(optarg, "--eval-every", 1, &o.eval_every); break;
        case O_STOP: bad = parse_int(optarg, "--stop-after", 1, &o.stop_after); break;
        case O_NAME: o.name = optarg; break;
        case O_PPL: ppl = optarg; break;
        case 'm': model = optarg; break;
        case 't': bad = parse_int(optarg, "--threads", 1, &o.threads); break;
        case 's': bad = parse_int(optarg, "--seed", 0, &seed); o.seed = (uint64_t)seed; break;
        case 'h': usage(stdout); return EXIT_OK;
        default:
            fprintf(stderr, "cmif train: unknown or incomplete option '%s'\n", argv[optind - 1]);
            bad = 1;
        }
    }
    if (!bad && optind < argc) {
        fprintf(stderr, "cmif train: unexpected argument '%s'\n", argv[optind]);
        bad = 1;
    }
    if (!bad && !ppl && !o.corpus) {
        fprintf(stderr, "cmif train: --corpus FILE is required\n");
        bad = 1;
    }
    if (!bad && ppl && !model) {
        fprintf(stderr, "cmif train: --ppl needs -m MODEL\n");
        bad = 1;
    }
    if (!bad && o.resume && !o.checkpoint) {
        fprintf(stderr, "cmif train: --resume needs --checkpoint FILE\n");
        bad = 1;
    }
    if (bad) {
        fprintf(stderr, "usage: cmif %s\n", usage_line);
        return EXIT_USAGE;
    }
    char err[512];
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
