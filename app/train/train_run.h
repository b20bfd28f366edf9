/* app/train/train_run: the whole `cmif train` recipe: read a corpus, learn the tokenizer
 * (bpe_train), tokenize it with core/tokenizer, train (train) with progress lines and
 * checkpoints, write the GGUF. Also the per-byte perplexity evaluation used to compare
 * models whose tokenizers differ. */
#ifndef CMIF_APP_TRAIN_TRAIN_RUN_H
#define CMIF_APP_TRAIN_TRAIN_RUN_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "app/train/train.h"

struct train_run_opts {
    const char *corpus;        /* documents separated by blank lines */
    const char *eval;          /* held-out documents (optional) */
    const char *out;           /* GGUF to write (optional for tests) */
    const char *checkpoint;    /* optional */
    const char *name;          /* general.name */
    int resume;                /* continue from checkpoint when it exists */
    int vocab;
    struct train_config cfg;   /* vocab is set from the tokenizer */
    struct train_hparams hp;
    int threads;
    uint64_t seed;
    int log_every, eval_every, ckpt_every;
    int stop_after;            /* stop (with a checkpoint) after this step, 0 = never */
    volatile sig_atomic_t *interrupt;  /* set (by a signal handler): finish the step, save
                                          the checkpoint, fail with "interrupted" */
    FILE *log;                 /* progress lines, or NULL */
};

void train_run_defaults(struct train_run_opts *o);

/* Runs the recipe. When losses is not NULL, losses[s] receives the training loss of step
 * s for every step run (cap entries). Returns 0, or -1 with err set. */
int train_run(const struct train_run_opts *o, float *losses, int cap, char *err, size_t errlen);

struct ppl_result {
    double nats, bytes, tokens;   /* summed over documents (predicting text, not EOS) */
    int docs, skipped;            /* documents scored; documents longer than the context */
};
/* Scores every document of path (blank-line separated) with the engine: the log-likelihood
 * of its tokens after BOS. Bits per byte = nats / bytes / ln 2. */
int train_ppl(const char *model_path, const char *path, int threads, struct ppl_result *r,
              char *err, size_t errlen);

#endif
