/* tests/bench: `make bench` (build/bench/cmif-bench), modular.
 *
 * Every .c file under tests/bench is linked into one program. A file adds a section of the
 * report with BENCH_SECTION; sections run in `order` (lower first), each printing its own
 * table. Performance figures are only meaningful as ratios measured in the same run (the
 * machine is shared and noisy), so a section prints the ratio it is about next to the raw
 * numbers it comes from.
 *
 *   static int bench_mine(struct bench *b)
 *   {
 *       bench_title(b, "mine: what it measures");
 *       const char *path = bench_model_path(b, b->quick ? BENCH_TINY : BENCH_110M_Q8_0);
 *       if (!path) return -1;
 *       struct bench_engine e;
 *       if (bench_engine_open(&e, path, 2, DEC_DEV_CPU, 0)) return -1;
 *       double tps = bench_decode_tps(&e, b->quick ? 4 : 32, 0);
 *       bench_row(b, "%-20s %8.2f tok/s", bench_model_name(BENCH_110M_Q8_0), tps);
 *       bench_engine_close(&e);
 *       return 0;
 *   }
 *   BENCH_SECTION(mine, "mine", "one line for --list", 50, bench_mine)
 *
 * Orders used: 10 bandwidth, 20 load, 30 engine (CPU prompt/decode); 40+ for the core, dp
 * and cl sections.
 *
 * Command line: cmif-bench [--quick] [--only NAME[,NAME...]] [--list] [--threads N]
 * [--dir DIR] [--types T[,T...]]. Models are written on first use to $CMIF_BENCH_DIR or /tmp/cmif-bench
 * (random weights from tests/tools/randmodel) and reused when present. */
#ifndef CMIF_TESTS_BENCH_H
#define CMIF_TESTS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct gguf;
struct model;
struct decoder;

struct bench {
    int quick;            /* --quick: tiny model, few tokens (a smoke run, seconds) */
    int max_threads;      /* thread counts measured are 1 .. max_threads (default 2) */
    const char *dir;      /* benchmark models directory */
    FILE *out;            /* the report (stdout) */
    const char *types;    /* --types: the weight types the llama.cpp sections compare (NULL: all) */
};

typedef int (*bench_fn)(struct bench *b);   /* 0 ok, -1 failed (after printing why) */

struct bench_section {
    const char *name;     /* for --only and --list */
    const char *desc;
    int order;
    bench_fn fn;
};

void bench_register(const struct bench_section *s);

/* Whether name is one of the comma-separated names in list (NULL: every name). */
int bench_selected(const char *list, const char *name);

#define BENCH_SECTION(id, name, desc, order, fn)                                           \
    static const struct bench_section bench_sec_##id = {name, desc, order, fn};          \
    __attribute__((constructor)) static void bench_reg_##id(void)                        \
    {                                                                                      \
        bench_register(&bench_sec_##id);                                                   \
    }

/* The standard random models (TinyLlama = dim 2048, 22 layers, ffn 5632, 32 heads, 4 KV
 * heads, vocab 32000; 110M = llama2.c stories110M: dim 768, 12 layers, ffn 2048, 12
 * heads, vocab 32000; 3.2-1B = Llama-3.2-1B: dim 2048, 16 layers, ffn 8192, 32 heads, 8 KV
 * heads, vocab 128256, Q4_K layers with a Q6_K token_embd that is also the output matrix;
 * tiny = dim 256, 4 layers, for --quick). */
enum bench_model {
    BENCH_TINY = 0,
    BENCH_110M_Q8_0,
    BENCH_110M_Q4_K,
    BENCH_1B_Q8_0,
    BENCH_1B_Q4_K,
    BENCH_L32_1B_Q4_K,
    BENCH_N_MODELS
};

const char *bench_model_name(int which);
/* Path of a standard model, written first when absent (prints a line while it does).
 * NULL after printing an error. */
const char *bench_model_path(struct bench *b, int which);
/* Model `base`'s shape with its matrices in weight type `type` (QT_*; the tied Q6_K
 * token_embd of the Llama-3.2-1B shape stays), written on first use like the others; its
 * display name ("1.1B Q5_K") into name. The path is valid until the next call. */
const char *bench_model_typed(struct bench *b, int base, int type, char *name, size_t namelen);

double bench_now(void);   /* seconds, monotonic */

/* Read bandwidth of this machine in GB/s with `threads` threads: a streaming sum over a
 * buffer far larger than the last-level cache (>= 1 GiB and >= 4x L3). Every pass of the run
 * is kept per thread count; the yardstick is a statistic over all of them, so a section can
 * spread passes across its run (before, between and after what it measures) and a
 * neighbour's burst on a shared machine shows up as spread instead of a wrong figure. */
struct bench_bw {
    double best, median, min;   /* GB/s over the passes */
    double spread;              /* (best - median) / best */
    int passes;
};
/* The most spread the yardstick may have for a utilisation figure to be printed. */
#define BENCH_BW_MAX_SPREAD 0.10
/* One pass (recorded); GB/s, 0 on failure. */
double bench_read_bw_pass(struct bench *b, int threads);
/* `passes` more passes (recorded). 0 ok, -1 failed. */
int bench_bw_sample(struct bench *b, int threads, int passes);
/* Frees the bandwidth buffer (GBs) until the next pass: a child forked meanwhile then does
 * not start with it as its own peak RSS (bench startup's peak memory column). */
void bench_bw_release(void);
/* Statistics of every pass so far with `threads` threads (all zero when none). */
void bench_bw_stats(int threads, struct bench_bw *s);
/* 1 when there are at least 3 passes and the spread is within BENCH_BW_MAX_SPREAD. */
int bench_bw_stable(const struct bench_bw *s);
/* "best ..., median ..., min ... GB/s over N passes, spread ... (stable|unstable, limit ...)" */
void bench_bw_describe(const struct bench_bw *s, char *buf, size_t len);
/* Best pass so far, taking passes first until there are a few. */
double bench_read_bw(struct bench *b, int threads);

/* A model opened for decoding (CPU or another device), with random input vectors taken
 * from the model's own embedding rows. */
struct bench_engine {
    struct gguf *g;
    struct model *m;
    struct decoder *d;
    float *x;             /* scratch input vectors */
    float *logits;
    int dim, vocab, ctx;
    double load_ms;       /* gguf_open + model_open + dec_open */
    uint64_t weight_bytes;/* bytes of weight matrices read per decoded token */
    uint64_t rng;
};

int bench_engine_open(struct bench_engine *e, const char *path, int threads, int device,
                      int ctx);
void bench_engine_close(struct bench_engine *e);
/* Tokens/s of one prompt batch of n positions starting at position 0. */
double bench_prompt_tps(struct bench_engine *e, int n);
/* Tokens/s of n single-token decode steps from position start. */
double bench_decode_tps(struct bench_engine *e, int n, int start);

/* llama.cpp through npm's node-llama-cpp: the directory holding node_modules/node-llama-cpp
 * ($CMIF_LLAMACPP_DIR, else build/llamacpp), or NULL with the reason in msg; and a copy of
 * a script (src, from the repository root) into it as name, where its import of
 * node-llama-cpp resolves (0, or -1 after printing why). */
const char *bench_llamacpp_dir(char *msg, size_t msglen);
int bench_llamacpp_install(const char *dir, const char *src, const char *name);

/* Report helpers: a section title line, then rows (printf format, newline added). */
void bench_title(struct bench *b, const char *title);
void bench_row(struct bench *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
