/* gpu/sampler: next-token choice from logits (greedy, temperature, top-k, top-p, min-p,
 * repetition penalty). Same seed and options give the same sequence. */
#ifndef CMIF_GPU_SAMPLER_H
#define CMIF_GPU_SAMPLER_H

#include <stdint.h>

struct sampler_params {
    float temp;            /* 0 = greedy */
    int top_k;             /* 0 = off; llama.cpp default 40 */
    float top_p;           /* 1 = off; default 0.95 */
    float min_p;           /* 0 = off; default 0.05 */
    float repeat_penalty;  /* 1 = off; default 1.0 */
    int repeat_last_n;     /* default 64 */
    uint64_t seed;
};

/* seed value meaning "draw a random seed from the OS CSPRNG at sampler_open". */
#define SAMPLER_SEED_RANDOM UINT64_MAX

struct sampler;

void sampler_defaults(struct sampler_params *p);
int sampler_open(struct sampler **out, const struct sampler_params *p, int vocab);
void sampler_close(struct sampler *s);
/* Picks a token from logits (modified in place: penalties, scaling). */
int32_t sampler_sample(struct sampler *s, float *logits);
/* Records a token of the context (prompt or generated) for the repetition penalty. */
void sampler_accept(struct sampler *s, int32_t id);
void sampler_reset(struct sampler *s);

#endif
