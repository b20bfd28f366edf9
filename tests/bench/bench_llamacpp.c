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

static int bench_llamacpp(struct bench *b)
{
    bench_title(b, "llamacpp: cmif vs llama.cpp (node-llama-cpp CPU build), same models, "
                   "alternating rounds");
    char why[256];
    const char *dir = bench_llamacpp_dir(why, sizeof why);
    if (!dir) {
        bench_row(b, "skipped: %s; `make bench-deps` installs llama.cpp from npm into "
                     "build/llamacpp (or set CMIF_LLAMACPP_DIR)", why);
        return 0;
    }
    if (bench_llamacpp_install(dir, SCRIPT_SRC, SCRIPT_NAME)) return -1;
    static const int full[] = {BENCH_1B_Q8_0, BENCH_1B_Q4_K};
    static const int quick[] = {BENCH_TINY};
    const int *models = b->quick ? quick : full;
    int n_models = b->quick ? 1 : 2, rounds = b->quick ? 1 : 3;
    int threads = b->max_threads, n_prompt = b->quick ? 16 : 64, n_dec = b->quick ? 8 : 16;
    for (int i = 0; i < n_models; i++)
        if (!bench_model_path(b, models[i])) return -1;
    bench_row(b, "%-10s %3s %11s %11s %7s %11s %11s %7s", "model", "thr", "cmif pp/s",
              "llama pp/s", "ratio", "cmif tg/s", "llama tg/s", "ratio");
    for (int i = 0; i < n_models; i++) {
        const char *path = bench_model_path(b, models[i]);
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
        bench_row(b, "%-10s %3d %11.1f %11.1f %7.2f %11.2f %11.2f %7.2f", bench_model_name(models[i]),
                  threads, cp, lp, lp > 0 ? cp / lp : 0, cd, ld, ld > 0 ? cd / ld : 0);
    }
    if (!b->quick) {   /* node-llama-cpp's own cost per call, on a model that costs nothing */
        const char *tiny = bench_model_path(b, BENCH_TINY);
        double p, d;
        if (!tiny || run_llamacpp(dir, tiny, threads, n_prompt, n_dec, &p, &d)) return -1;
        bench_row(b, "node-llama-cpp per-step overhead <= %.1f ms (its step time on the tiny "
                     "model); llama.cpp tg/s with it removed would be at most 1/(1/tg - that)",
                  1e3 / d);
    }
    bench_row(b, "(pp = one prompt batch of %d positions from position 0; tg = %d single steps "
                 "after it; best of %d alternating rounds; ratio = cmif / llama.cpp)",
              n_prompt, n_dec, rounds);
    return 0;
}
BENCH_SECTION(llamacpp, "llamacpp", "cmif vs llama.cpp (npm node-llama-cpp) prompt/decode tok/s",
              35, bench_llamacpp)
