/* tests/bench/bench_llamacpp: cmif against llama.cpp on the same machine, in the same run.
 *
 * llama.cpp comes from npm (node-llama-cpp ships prebuilt CPU binaries; `make bench-deps`
 * installs it into build/llamacpp, or $CMIF_LLAMACPP_DIR names another install). Nothing
 * from npm is part of the repository: without node or the package this section prints how
 * to enable it and skips. tests/bench/llamacpp.mjs measures llama.cpp; each round runs it
 * and then cmif on the same model and shapes (one prompt batch of 64 positions from
 * position 0, then single-token steps), so both see the same neighbours on a shared
 * machine; the best round of each is reported with the ratio cmif / llama.cpp.
 * node-llama-cpp spends time of its own on every call (JS/native hops, its batching queue);
 * the step rate of the tiny model, whose forward pass is negligible, bounds that overhead
 * and is printed under the table so the decode ratio can be read fairly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gpu/decoder.h"
#include "gpu/quant.h"
#include "tests/bench/bench.h"

#define SCRIPT_SRC "tests/bench/llamacpp.mjs"
#define SCRIPT_NAME "cmif-bench-llamacpp.mjs"

const char *bench_llamacpp_dir(char *msg, size_t msglen)
{
    const char *env = getenv("CMIF_LLAMACPP_DIR");
    const char *dir = env && *env ? env : "build/llamacpp";
    char p[1024];
    struct stat st;
    if (system("command -v node >/dev/null 2>&1") != 0) {
        snprintf(msg, msglen, "node not found");
        return NULL;
    }
    snprintf(p, sizeof p, "%s/node_modules/node-llama-cpp/package.json", dir);
    if (stat(p, &st) != 0) {
        snprintf(msg, msglen, "node-llama-cpp not installed in %s", dir);
        return NULL;
    }
    if (stat(SCRIPT_SRC, &st) != 0) {
        snprintf(msg, msglen, "%s not found (run from the repository root)", SCRIPT_SRC);
        return NULL;
    }
    if (strchr(dir, '\'')) {
        snprintf(msg, msglen, "CMIF_LLAMACPP_DIR contains a quote");
        return NULL;
    }
    return dir;
}

int bench_llamacpp_install(const char *dir, const char *src, const char *name)
{
    char dst[1024];
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    FILE *in = fopen(src, "rb"), *out = in ? fopen(dst, "wb") : NULL;
    int ok = in && out;
    char buf[4096];
    size_t k;
    while (ok && (k = fread(buf, 1, sizeof buf, in)) > 0) ok = fwrite(buf, 1, k, out) == k;
    if (in) {
        if (ferror(in)) ok = 0;
        fclose(in);
    }
    if (out && fclose(out) != 0) ok = 0;
    if (!ok) fprintf(stderr, "cmif-bench: cannot write %s\n", dst);
    return ok ? 0 : -1;
}

/* One llama.cpp measurement: 0 and the two rates, or -1 after printing why. */
static int run_llamacpp(const char *dir, const char *model, int threads, int n_prompt,
                        int n_dec, double *prompt_tps, double *decode_tps)
{
    char abs[4096], cmd[8192], line[512];
    if (!realpath(model, abs) || strchr(abs, '\'')) {
        fprintf(stderr, "cmif-bench: bad model path %s\n", model);
        return -1;
    }
    snprintf(cmd, sizeof cmd, "cd '%s' && node %s '%s' %d %d %d 2>&1", dir, SCRIPT_NAME, abs,
             threads, n_prompt, n_dec);
    FILE *p = popen(cmd, "r");
    if (!p) {
        fprintf(stderr, "cmif-bench: cannot run node\n");
        return -1;
    }
    int got = 0;
    while (fgets(line, sizeof line, p))
        if (!got && sscanf(line, "{\"prompt_tok_s\":%lf,\"decode_tok_s\":%lf", prompt_tps,
                           decode_tps) == 2)
            got = 1;
        else
            fprintf(stderr, "llama.cpp: %s", line);
    int st = pclose(p);
    if (!got || st != 0) {
        fprintf(stderr, "cmif-bench: llama.cpp run failed on %s (status %d)\n", model, st);
        return -1;
    }
    return 0;
}

/* One model: cmif and llama.cpp in alternating rounds, the best of each and their ratios. */
static int compare(struct bench *b, const char *dir, const char *path, const char *name,
                   int rounds, int n_prompt, int n_dec)
{
    int threads = b->max_threads;
    struct bench_engine e;
    if (bench_engine_open(&e, path, threads, DEC_DEV_CPU, 0)) return -1;
    bench_prompt_tps(&e, n_prompt);   /* warm: fault the mapping in, size the buffers */
    double cp = 0, cd = 0, lp = 0, ld = 0;
    int rc = 0;
    for (int r = 0; r < rounds && rc == 0; r++) {
        double p, d;
        if ((rc = run_llamacpp(dir, path, threads, n_prompt, n_dec, &p, &d)) != 0) break;
        if (p > lp) lp = p;
        if (d > ld) ld = d;
        if ((p = bench_prompt_tps(&e, n_prompt)) > cp) cp = p;
        if ((d = bench_decode_tps(&e, n_dec, n_prompt)) > cd) cd = d;
    }
    bench_engine_close(&e);
    if (rc) return -1;
    bench_row(b, "%-12s %3d %11.1f %11.1f %7.2f %11.2f %11.2f %7.2f", name, threads, cp, lp,
              lp > 0 ? cp / lp : 0, cd, ld, ld > 0 ? cd / ld : 0);
    return 0;
}

/* The weight types compared, in the TinyLlama and Llama-3.2-1B shapes: the main section the
 * common ones, llamacpp-types the rest (their models take long to quantize). */
static const int main_types[] = {QT_Q4_0, QT_Q4_K, QT_Q5_K, QT_Q6_K, QT_Q8_0};
static const int more_types[] = {QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q2_K, QT_Q3_K, QT_IQ4_NL,
                                 QT_IQ4_XS};

static int run_types(struct bench *b, const char *title, const int *types, int n_types)
{
    bench_title(b, title);
    char why[256];
    const char *dir = bench_llamacpp_dir(why, sizeof why);
    if (!dir) {
        bench_row(b, "skipped: %s; `make bench-deps` installs llama.cpp from npm into "
                     "build/llamacpp (or set CMIF_LLAMACPP_DIR)", why);
        return 0;
    }
    if (bench_llamacpp_install(dir, SCRIPT_SRC, SCRIPT_NAME)) return -1;
    int rounds = b->quick ? 1 : 3, n_prompt = b->quick ? 16 : 64, n_dec = b->quick ? 8 : 16;
    bench_row(b, "%-12s %3s %11s %11s %7s %11s %11s %7s", "model", "thr", "cmif pp/s",
              "llama pp/s", "ratio", "cmif tg/s", "llama tg/s", "ratio");
    if (b->quick) {   /* the tiny shape in the first type: the whole path, in seconds */
        char name[64];
        const char *path = bench_model_typed(b, BENCH_TINY, types[0], name, sizeof name);
        if (!path || compare(b, dir, path, name, rounds, n_prompt, n_dec)) return -1;
    } else {
        static const int shapes[] = {BENCH_1B_Q8_0, BENCH_L32_1B_Q4_K};
        for (int si = 0; si < 2; si++)
            for (int ti = 0; ti < n_types; ti++) {
                if (!bench_selected(b->types, qt_name(types[ti]))) continue;
                char name[64];
                const char *path = bench_model_typed(b, shapes[si], types[ti], name, sizeof name);
                if (!path || compare(b, dir, path, name, rounds, n_prompt, n_dec)) return -1;
            }
        /* node-llama-cpp's own cost per call, on a model that costs nothing */
        const char *tiny = bench_model_path(b, BENCH_TINY);
        double p, d;
        if (!tiny || run_llamacpp(dir, tiny, b->max_threads, n_prompt, n_dec, &p, &d)) return -1;
        bench_row(b, "node-llama-cpp per-step overhead <= %.1f ms (its step time on the tiny "
                     "model); llama.cpp tg/s with it removed would be at most 1/(1/tg - that)",
                  1e3 / d);
    }
    bench_row(b, "(pp = one prompt batch of %d positions from position 0; tg = %d single steps "
                 "after it; best of %d alternating rounds; ratio = cmif / llama.cpp; 1.1B = "
                 "TinyLlama shape, 3.2-1B = Llama-3.2-1B shape with a tied Q6_K token_embd)",
              n_prompt, n_dec, rounds);
    return 0;
}

static int bench_llamacpp(struct bench *b)
{
    return run_types(b, "llamacpp: cmif vs llama.cpp (node-llama-cpp CPU build), same models, "
                        "alternating rounds",
                     main_types, (int)(sizeof main_types / sizeof main_types[0]));
}

static int bench_llamacpp_types(struct bench *b)
{
    return run_types(b, "llamacpp-types: the same for the other weight types",
                     more_types, (int)(sizeof more_types / sizeof more_types[0]));
}

BENCH_SECTION(llamacpp, "llamacpp", "cmif vs llama.cpp prompt/decode tok/s: Q4_0 Q4_K Q5_K Q6_K "
              "Q8_0 in the TinyLlama and Llama-3.2-1B shapes", 35, bench_llamacpp)
BENCH_SECTION(llamacpp_types, "llamacpp-types", "cmif vs llama.cpp on Q4_1 Q5_0 Q5_1 Q2_K "
              "Q3_K IQ4_NL IQ4_XS, both shapes", 36, bench_llamacpp_types)
