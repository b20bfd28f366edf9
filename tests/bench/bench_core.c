/* tests/bench/bench_core: the cost of the confidential core — decode tokens/s with the
 * embedding lookups served by the core (table in the guarded region and the encrypted swap)
 * vs read straight from the model mapping, same decoder, same run, rounds interleaved. */
#include "tests/bench/bench.h"

#include <stdlib.h>
#include <string.h>

#include "app/model.h"
#include "core/core.h"
#include "gpu/decoder.h"

struct run {
    struct bench_engine *e;
    struct core *c;           /* NULL: core off */
};

static int embed(struct run *r, int32_t id, float *out, char *err, size_t errlen)
{
    return r->c ? core_embed_token(r->c, id, out, err, errlen)
                : model_embed_token(r->e->m, id, out, err, errlen);
}

/* n greedy decode steps from position 0; each step embeds the previous output token.
 * Returns tokens/s, 0 on error. */
static double decode(struct run *r, int n)
{
    struct bench_engine *e = r->e;
    char err[256];
    int32_t tok = 1;
    double t0 = bench_now();
    for (int pos = 0; pos < n; pos++) {
        if (embed(r, tok, e->x, err, sizeof err) ||
            dec_forward(e->d, e->x, 1, pos, e->logits, 0, err, sizeof err)) {
            fprintf(stderr, "cmif-bench: core: %s\n", err);
            return 0;
        }
        int32_t best = 0;
        for (int32_t v = 1; v < e->vocab; v++)
            if (e->logits[v] > e->logits[best]) best = v;
        tok = best;
    }
    return n / (bench_now() - t0);
}

/* Mean seconds per lookup of the same token sequence (the last decode's choices recur in
 * real text, so rows are mostly resident); a tight loop, so noise from other processes
 * averages out over many calls. */
static double lookup_cost(struct run *r, int n)
{
    char err[256];
    double t0 = bench_now();
    for (int i = 0; i < n; i++) {
        int32_t id = (int32_t)((uint32_t)(i * 2654435761u) % 64u) * 7;  /* 64 hot tokens */
        if (embed(r, id, r->e->x, err, sizeof err)) {
            fprintf(stderr, "cmif-bench: core: %s\n", err);
            return -1;
        }
    }
    return (bench_now() - t0) / n;
}

static int bench_core(struct bench *b)
{
    int which = b->quick ? BENCH_TINY : BENCH_110M_Q8_0;
    const char *path = bench_model_path(b, which);
    if (!path) return -1;
    bench_title(b, "core: decode tokens/s with the core on (table behind the region and "
                   "swap) vs off, same run (target ratio >= 0.98)");
    struct bench_engine e;
    if (bench_engine_open(&e, path, b->max_threads, DEC_DEV_CPU, 0)) return -1;
    struct core_options o;
    core_defaults(&o);
    core_options_plain(&o);
    struct core *c;
    char err[512];
    if (core_open(&c, path, &o, err, sizeof err)) {
        fprintf(stderr, "cmif-bench: core: %s\n", err);
        bench_engine_close(&e);
        return -1;
    }
    int n = b->quick ? 16 : 64;
    if (n > e.ctx) n = e.ctx;
    struct run off = {&e, NULL}, on = {&e, c};
    decode(&off, 4);          /* warm both paths: page faults, caches */
    decode(&on, 4);
    double best_off = 0, best_on = 0;
    int rounds = b->quick ? 2 : 4;
    for (int i = 0; i < rounds; i++) {
        double a = decode(&off, n), x = decode(&on, n);
        if (a <= 0 || x <= 0) {
            core_close(c);
            bench_engine_close(&e);
            return -1;
        }
        if (a > best_off) best_off = a;
        if (x > best_on) best_on = x;
    }
    int nl = b->quick ? 2000 : 20000;
    double l_off = lookup_cost(&off, nl), l_on = lookup_cost(&on, nl);
    struct core_status st;
    core_status(c, &st);
    bench_row(b, "%-10s %10s %10s %7s", "model", "off tok/s", "on tok/s", "ratio");
    bench_row(b, "%-10s %10.2f %10.2f %7.3f", bench_model_name(which), best_off, best_on,
              best_on / best_off);
    bench_row(b, "(best of %d interleaved rounds of %d tokens; core: %s; table %d x %d)",
              rounds, n, st.summary, e.vocab, e.dim);
    if (l_off > 0 && l_on > 0) {
        /* The decode step differs only in the lookup: this is the ratio without noise. */
        double step = 1.0 / best_off;
        bench_row(b, "lookup: off %.2f us, on %.2f us (hot rows: unseal, dequantize, seal); "
                     "ratio implied at %.2f tok/s: %.4f",
                  l_off * 1e6, l_on * 1e6, best_off, step / (step + (l_on - l_off)));
    }
    core_close(c);
    bench_engine_close(&e);
    return 0;
}

BENCH_SECTION(core, "core", "decode tok/s with the confidential core on vs off", 40, bench_core)
