/* tests/bench/bench_attn: decode attention, the scalar reference against the SIMD kernel
 * chosen at run time (gpu/attn), timed side by side in this run.
 *   kernel:     one decode step's attention (every layer, every KV group) on one thread
 *               over an F32 cache of the model's shape, at spans 128, 1024 and 4096;
 *               rounds alternate the two kernels, the best round of each is kept;
 *   end to end: decode tok/s of the 1.1B Q8_0 model from positions 64 and 2048 with
 *               attention forced to the scalar reference and at the chosen level (the
 *               matrix kernels unchanged), rounds alternated likewise. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "gpu/attn.h"
#include "gpu/decoder.h"
#include "tests/bench/bench.h"

struct attn_shape {
    const char *name;
    int layers, heads, kv_heads, hd;
};

/* One decode step's attention at span over a cache of ctx positions; microseconds. */
static double step_us(const struct attn_shape *m, const float *kc, const float *vc, int ctx,
                      int span, const float *q, float *s, float *out, int ref)
{
    int kvd = m->kv_heads * m->hd, grp = m->heads / m->kv_heads;
    float scale = 1.0f / sqrtf((float)m->hd);
    double t0 = bench_now();
    for (int l = 0; l < m->layers; l++)
        for (int g = 0; g < m->kv_heads; g++) {
            size_t off = (size_t)l * ctx * kvd + (size_t)g * m->hd;
            const float *qg = q + (size_t)g * grp * m->hd;
            float *og = out + (size_t)g * grp * m->hd;
            (ref ? attn_group_ref : attn_group)(qg, kc + off, vc + off, (size_t)kvd, span, m->hd,
                                                grp, scale, s, og);
        }
    return (bench_now() - t0) * 1e6;
}

/* Best microseconds per step over rounds of at least min_s seconds each. */
static void time_pair(const struct attn_shape *m, const float *kc, const float *vc, int ctx,
                      int span, const float *q, float *s, float *out, int rounds, double min_s,
                      double best[2])
{
    best[0] = best[1] = INFINITY;
    for (int r = 0; r < rounds; r++)
        for (int ref = 1; ref >= 0; ref--) {
            double t0 = bench_now();
            do {
                double us = step_us(m, kc, vc, ctx, span, q, s, out, ref);
                if (us < best[!ref]) best[!ref] = us;
            } while (bench_now() - t0 < min_s);
        }
}

static int bench_kernels(struct bench *b)
{
    static const struct attn_shape shapes[] = {
        {"TinyLlama 1.1B", 22, 32, 4, 64},
        {"Llama-3.2-1B", 16, 32, 8, 64},
    };
    static const int spans[] = {128, 1024, 4096}, quick_spans[] = {16, 128};
    const int *sp = b->quick ? quick_spans : spans;
    int nsp = b->quick ? 2 : 3, ctx = sp[nsp - 1];
    bench_row(b, "%-16s %6s %12s %12s %8s   (one thread, %s kernel; best of alternating rounds)",
              "shape", "span", "scalar us", "simd us", "ratio", attn_simd_level());
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        const struct attn_shape *m = &shapes[i];
        size_t kv = (size_t)m->layers * ctx * m->kv_heads * m->hd, qn = (size_t)m->heads * m->hd;
        float *kc = malloc(kv * sizeof(float)), *vc = malloc(kv * sizeof(float));
        float *q = malloc(qn * sizeof(float)), *out = malloc(qn * sizeof(float));
        float *s = malloc((size_t)(m->heads / m->kv_heads) * ctx * sizeof(float));
        if (!kc || !vc || !q || !out || !s) {
            fprintf(stderr, "bench attn: out of memory\n");
            free(kc), free(vc), free(q), free(out), free(s);
            return -1;
        }
        /* values in [-1, 1): timing does not depend on them, only on their being normal */
        uint32_t x = 12345;
        for (size_t j = 0; j < kv; j++) {
            kc[j] = (float)((x = x * 1664525u + 1013904223u) >> 8) * 0x1p-23f - 1.0f;
            vc[j] = (float)((x = x * 1664525u + 1013904223u) >> 8) * 0x1p-23f - 1.0f;
        }
        for (size_t j = 0; j < qn; j++) q[j] = (float)((x = x * 1664525u + 1013904223u) >> 8) * 0x1p-23f - 1.0f;
        for (int k = 0; k < nsp; k++) {
            double t[2];
            time_pair(m, kc, vc, ctx, sp[k], q, s, out, b->quick ? 1 : 3, b->quick ? 0 : 0.05, t);
            bench_row(b, "%-16s %6d %12.1f %12.1f %8.2f", m->name, sp[k], t[0], t[1], t[0] / t[1]);
        }
        free(kc), free(vc), free(q), free(out), free(s);
    }
    return 0;
}

static int bench_end_to_end(struct bench *b)
{
    int which = b->quick ? BENCH_TINY : BENCH_1B_Q8_0;
    const char *path = bench_model_path(b, which);
    if (!path) return -1;
    static const int starts[] = {64, 2048}, quick_starts[] = {8, 64};
    const int *st = b->quick ? quick_starts : starts;
    int n = b->quick ? 2 : 6, rounds = b->quick ? 1 : 2;
    struct bench_engine e;
    if (bench_engine_open(&e, path, b->max_threads, DEC_DEV_CPU, st[1] + n + 8)) return -1;
    bench_decode_tps(&e, 2, 0);   /* warm: fault the mapping in */
    bench_row(b, "%-16s %6s %12s %12s %8s   (%d threads, decode tok/s, best of %d alternating rounds)",
              "model", "start", "scalar att", "simd att", "ratio", b->max_threads, rounds);
    for (int k = 0; k < 2; k++) {
        double best[2] = {0, 0};
        for (int r = 0; r < rounds; r++)
            for (int ref = 1; ref >= 0; ref--) {
                attn_force_simd(ref ? "scalar" : NULL);
                double tps = bench_decode_tps(&e, n, st[k]);
                if (tps > best[!ref]) best[!ref] = tps;
            }
        attn_force_simd(NULL);
        bench_row(b, "%-16s %6d %12.2f %12.2f %8.2f", bench_model_name(which), st[k], best[0],
                  best[1], best[0] > 0 ? best[1] / best[0] : 0);
    }
    bench_engine_close(&e);
    return 0;
}

static int bench_attn(struct bench *b)
{
    bench_title(b, "attn: decode attention, scalar reference vs SIMD (ratios only mean anything "
                   "within this run)");
    if (bench_kernels(b)) return -1;
    return bench_end_to_end(b);
}
BENCH_SECTION(attn, "attn", "decode attention: scalar vs SIMD kernel per step, and decode tok/s at "
              "positions 64 and 2048", 35, bench_attn)
