/* gpu/sampler: next-token choice from logits.
 *
 * Order of the chain follows llama.cpp's default: repetition penalty, top-k, top-p, min-p,
 * temperature, then a draw from the remaining distribution. temp 0 is greedy (after the
 * penalty): the highest logit, the lowest id on ties. The PRNG is gpu/rng's xoshiro256**
 * seeded through splitmix64, so a seed fixes the whole sequence. */
#include "gpu/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "gpu/rng.h"

struct cand {
    float logit;
    int32_t id;
};

struct sampler {
    struct sampler_params p;
    int vocab;
    uint64_t rng[4];
    int32_t *hist;          /* ring of the last repeat_last_n accepted tokens */
    int hist_n, hist_pos;
    struct cand *cand;
    unsigned char *seen;    /* vocab flags used while applying the penalty */
    float *prob;
};

void sampler_defaults(struct sampler_params *p)
{
    p->temp = 0.8f;
    p->top_k = 40;
    p->top_p = 0.95f;
    p->min_p = 0.05f;
    p->repeat_penalty = 1.0f;
    p->repeat_last_n = 64;
    p->seed = SAMPLER_SEED_RANDOM;
}

static void seed_rng(struct sampler *s)
{
    uint64_t x = s->p.seed;
    if (x == SAMPLER_SEED_RANDOM) randombytes_buf(&x, sizeof x);
    rng_seed(s->rng, x);
}

int sampler_open(struct sampler **out, const struct sampler_params *p, int vocab)
{
    *out = NULL;
    if (!p || vocab <= 0 || p->temp < 0 || p->top_k < 0 || p->repeat_last_n < 0 ||
        !(p->repeat_penalty > 0) || p->top_p < 0 || p->top_p > 1 || p->min_p < 0 || p->min_p > 1)
        return -1;
    if (sodium_init() < 0) return -1;
    struct sampler *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->p = *p;
    s->vocab = vocab;
    s->cand = malloc((size_t)vocab * sizeof *s->cand);
    s->prob = malloc((size_t)vocab * sizeof *s->prob);
    s->seen = calloc((size_t)vocab, 1);
    s->hist = malloc((size_t)(p->repeat_last_n > 0 ? p->repeat_last_n : 1) * sizeof *s->hist);
    if (!s->cand || !s->prob || !s->seen || !s->hist) {
        sampler_close(s);
        return -1;
    }
    seed_rng(s);
    *out = s;
    return 0;
}

void sampler_close(struct sampler *s)
{
    if (!s) return;
    free(s->cand);
    free(s->prob);
    free(s->seen);
    free(s->hist);
    free(s);
}

void sampler_reset(struct sampler *s)
{
    s->hist_n = 0;
    s->hist_pos = 0;
    seed_rng(s);
}

void sampler_accept(struct sampler *s, int32_t id)
{
    if (s->p.repeat_last_n <= 0 || id < 0 || id >= s->vocab) return;
    s->hist[s->hist_pos] = id;
    s->hist_pos = (s->hist_pos + 1) % s->p.repeat_last_n;
    if (s->hist_n < s->p.repeat_last_n) s->hist_n++;
}

/* Descending logit, then ascending id: a total order, so results never depend on qsort. */
static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->logit > y->logit) return -1;
    if (x->logit < y->logit) return 1;
    return (x->id > y->id) - (x->id < y->id);
}

static int cand_before(const struct cand *x, const struct cand *y)
{
    return x->logit > y->logit || (x->logit == y->logit && x->id < y->id);
}

/* Moves the k best candidates to the front (in any order): quickselect. */
static void select_top(struct cand *c, int n, int k)
{
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        struct cand pivot = c[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (cand_before(&c[i], &pivot)) i++;
            while (cand_before(&pivot, &c[j])) j--;
            if (i <= j) {
                struct cand t = c[i];
                c[i] = c[j];
                c[j] = t;
                i++;
                j--;
            }
        }
        if (k - 1 <= j) hi = j;
        else if (k - 1 >= i) lo = i;
        else break;
    }
}

static void apply_penalty(struct sampler *s, float *logits)
{
    if (s->p.repeat_penalty == 1.0f || s->hist_n == 0) return;
    for (int i = 0; i < s->hist_n; i++) {
        int32_t id = s->hist[i];
        if (s->seen[id]) continue;
        s->seen[id] = 1;
        if (logits[id] > 0) logits[id] /= s->p.repeat_penalty;
        else logits[id] *= s->p.repeat_penalty;
    }
    for (int i = 0; i < s->hist_n; i++) s->seen[s->hist[i]] = 0;
}

int32_t sampler_sample(struct sampler *s, float *logits)
{
    apply_penalty(s, logits);
    int V = s->vocab;
    if (s->p.temp <= 0.0f) {
        int32_t best = 0;
        for (int32_t i = 1; i < V; i++)
            if (logits[i] > logits[best]) best = i;
        return best;
    }

    struct cand *c = s->cand;
    int n = 0;
    for (int32_t i = 0; i < V; i++) {
        if (isnan(logits[i])) continue;
        c[n].logit = logits[i];
        c[n].id = i;
        n++;
    }
    if (n == 0) return 0;
    if (s->p.top_k > 0 && s->p.top_k < n) {
        select_top(c, n, s->p.top_k);
        n = s->p.top_k;
    }
    qsort(c, (size_t)n, sizeof *c, cand_cmp);

    /* top-p over the softmax of the (unscaled) logits. */
    if (s->p.top_p < 1.0f && n > 1) {
        double sum = 0;
        float mx = c[0].logit;
        for (int i = 0; i < n; i++) sum += (s->prob[i] = expf(c[i].logit - mx));
        double cum = 0;
        for (int i = 0; i < n; i++) {
            cum += s->prob[i] / sum;
            if (cum >= s->p.top_p) {
                n = i + 1;
                break;
            }
        }
    }
    /* min-p: keep p_i >= min_p * p_max, i.e. logit >= max + log(min_p). */
    if (s->p.min_p > 0.0f && n > 1) {
        float thr = c[0].logit + logf(s->p.min_p);
        int keep = 1;
        while (keep < n && c[keep].logit >= thr) keep++;
        n = keep;
    }

    /* temperature, softmax, draw. */
    double sum = 0;
    float mx = c[0].logit;
    for (int i = 0; i < n; i++) {
        double e = exp((double)(c[i].logit - mx) / s->p.temp);
        s->prob[i] = (float)e;
        sum += e;
    }
    double u = rng_unit(s->rng) * sum;
    double acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->prob[i];
        if (u < acc) return c[i].id;
    }
    return c[n - 1].id;
}
