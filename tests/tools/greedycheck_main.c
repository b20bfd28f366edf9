/* greedycheck: replays llama.cpp's greedy decoding (tests/tools/llamacpp_steps.mjs) through
 * cmif's engine and judges every step. The prompt must tokenize to the same ids. At each
 * step cmif's argmax must be llama.cpp's token, or else the two tokens must be a near tie
 * in both engines: each engine's logit of its own choice is within TOL of its logit of the
 * other's (random weights put many logits close together, and two engines that round
 * differently may order such a pair differently). The step then goes on with llama.cpp's
 * token, so one flip does not hide the steps after it. Prints one line per step, then
 *   greedycheck: N steps, M identical, K near ties (largest gap G, tolerance TOL), ...
 * Exit 0 when every step passes, 1 when one does not, 2 on a usage or runtime error.
 *   greedycheck MODEL PROMPT_FILE STEPS_FILE [--tol F] [-c CTX] */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/engine.h"
#include "app/opts.h"
#include "core/core.h"
#include "gpu/decoder.h"

#define MAX_TOP 64
#define MAX_STEPS 256
#define MAX_PROMPT 4096

struct ref_step {
    int32_t token;
    int end;                  /* llama.cpp chose an end-of-generation token here */
    int k;
    int32_t id[MAX_TOP];
    float logit[MAX_TOP];
};

struct ref {
    int32_t prompt[MAX_PROMPT];
    int n_prompt;
    struct ref_step step[MAX_STEPS];
    int n_steps;
};

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *t = malloc(cap);
    for (size_t r; t && (r = fread(t + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap) {
            char *nt = realloc(t, cap *= 2);
            if (!nt) free(t);
            t = nt;
        }
    }
    fclose(f);
    if (t) t[n] = 0;
    *len = n;
    return t;
}

static int read_ref(const char *path, struct ref *r)
{
    size_t len;
    char *text = slurp(path, &len);
    if (!text) {
        fprintf(stderr, "greedycheck: cannot read %s\n", path);
        return -1;
    }
    memset(r, 0, sizeof *r);
    int rc = 0;
    for (char *line = strtok(text, "\n"); line && rc == 0; line = strtok(NULL, "\n")) {
        char *p = line, *end;
        if (!strncmp(p, "prompt", 6)) {
            p += 6;
            for (long v; (v = strtol(p, &end, 10)), end != p; p = end) {
                if (r->n_prompt == MAX_PROMPT) rc = -1;
                else r->prompt[r->n_prompt++] = (int32_t)v;
            }
            continue;
        }
        int is_end = !strncmp(p, "end ", 4);
        if (strncmp(p, "step ", 5) && !is_end) continue;
        if (r->n_steps == MAX_STEPS) {
            rc = -1;
            break;
        }
        struct ref_step *s = &r->step[r->n_steps];
        p += is_end ? 4 : 5;
        long i = strtol(p, &end, 10);
        p = end;
        s->token = (int32_t)strtol(p, &end, 10);
        if (end == p || i != r->n_steps) {
            rc = -1;
            break;
        }
        p = end;
        s->end = is_end;
        if (!is_end) {
            s->k = (int)strtol(p, &end, 10);
            p = end;
            if (s->k < 1 || s->k > MAX_TOP) rc = -1;
            for (int j = 0; j < s->k && rc == 0; j++) {
                s->id[j] = (int32_t)strtol(p, &end, 10);
                if (end == p || *end != ':') rc = -1;
                else s->logit[j] = strtof(end + 1, &p);
            }
        }
        r->n_steps++;
    }
    free(text);
    if (rc != 0 || r->n_prompt == 0)
        fprintf(stderr, "greedycheck: %s is not llamacpp_steps.mjs output\n", path);
    return rc != 0 || r->n_prompt == 0 ? -1 : 0;
}

/* llama.cpp's logit of token id at step s, when it is among the top k sent. */
static int ref_logit(const struct ref_step *s, int32_t id, float *out)
{
    for (int j = 0; j < s->k; j++)
        if (s->id[j] == id) {
            *out = s->logit[j];
            return 0;
        }
    return -1;
}

static int32_t argmax(const float *l, int n)
{
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++)
        if (l[i] > l[best]) best = i;   /* the first of equal maxima, as llama.cpp's greedy */
    return best;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *prompt_file = NULL, *steps_file = NULL;
    double tol = 0.05;
    int ctx = 512;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tol") && i + 1 < argc) tol = atof(argv[++i]);
        else if (!strcmp(argv[i], "-c") && i + 1 < argc) ctx = atoi(argv[++i]);
        else if (!model) model = argv[i];
        else if (!prompt_file) prompt_file = argv[i];
        else if (!steps_file) steps_file = argv[i];
        else model = NULL, i = argc;
    }
    if (!model || !steps_file || !(tol >= 0) || ctx <= 0) {
        fprintf(stderr, "usage: greedycheck MODEL PROMPT_FILE STEPS_FILE [--tol F] [-c CTX]\n");
        return 2;
    }
    static struct ref ref;
    if (read_ref(steps_file, &ref)) return 2;
    size_t plen;
    char *prompt = slurp(prompt_file, &plen);
    if (!prompt) {
        fprintf(stderr, "greedycheck: cannot read %s\n", prompt_file);
        return 2;
    }

    struct opts o;
    opts_defaults(&o);
    o.ctx = ctx;
    struct core_options co;
    core_defaults(&co);
    co.mechanism = CORE_MECH_NONE;
    co.quiet = 1;
    struct engine eng;
    struct core_batch b;
    memset(&b, 0, sizeof b);
    char err[512];
    float *logits = NULL, *vec = NULL;
    int rc = 2;
    if (engine_open(&eng, model, &o, &co, 0, err, sizeof err)) {
        fprintf(stderr, "greedycheck: %s\n", err);
        free(prompt);
        return 2;
    }
    const struct dec_config *cfg = dec_config(eng.dec);
    int V = cfg->vocab;
    logits = malloc((size_t)V * sizeof *logits);
    vec = malloc((size_t)cfg->dim * sizeof *vec);
    if (!logits || !vec) {
        fprintf(stderr, "greedycheck: out of memory\n");
        goto out;
    }
    /* The prompt as `cmif generate` sends it. */
    int add_bos = core_add_bos(eng.core) && core_bos(eng.core) >= 0;
    if (core_encode(eng.core, prompt, plen, CORE_SEG_USER, add_bos, &b, err, sizeof err)) {
        fprintf(stderr, "greedycheck: %s\n", err);
        goto out;
    }
    int same = (int)b.n == ref.n_prompt;
    for (int i = 0; same && i < ref.n_prompt; i++) same = b.ids[i] == ref.prompt[i];
    if (!same) {
        printf("FAIL: the prompt tokenizes differently\n  llama.cpp:");
        for (int i = 0; i < ref.n_prompt; i++) printf(" %d", (int)ref.prompt[i]);
        printf("\n  cmif:     ");
        for (size_t i = 0; i < b.n; i++) printf(" %d", (int)b.ids[i]);
        printf("\n");
        rc = 1;
        goto out;
    }
    int pos = (int)b.n;
    if (dec_forward(eng.dec, b.vecs, (int)b.n, 0, logits, 0, err, sizeof err)) {
        fprintf(stderr, "greedycheck: %s\n", err);
        goto out;
    }
    int n_same = 0, n_tie = 0, n_bad = 0;
    double max_gap = 0, max_diff = 0;
    for (int i = 0; i < ref.n_steps; i++) {
        const struct ref_step *s = &ref.step[i];
        int32_t want = s->token, got = argmax(logits, V);
        if (want < 0 || want >= V) {
            fprintf(stderr, "greedycheck: token %d out of range\n", (int)want);
            goto out;
        }
        /* How far the engines' logits are apart, over llama.cpp's top tokens. */
        for (int j = 0; j < s->k; j++) {
            double d = fabs((double)logits[s->id[j]] - s->logit[j]);
            if (d > max_diff) max_diff = d;
        }
        if (got == want) {
            n_same++;
            printf("step %2d: %d%s\n", i, (int)want, s->end ? " (end of generation)" : "");
        } else if (s->end) {
            /* No logits come with an end of generation: an exact match is required. */
            printf("step %2d: llama.cpp ends (%d), cmif chose %d: FAIL\n", i, (int)want, (int)got);
            n_bad++;
        } else {
            /* Each engine's margin for its own choice over the other's (llama.cpp's logits
             * include its chosen token; cmif's choice must be among its top ones). */
            float lw, lg;
            double gap_c = (double)logits[got] - logits[want];
            double gap_l = ref_logit(s, want, &lw) == 0 && ref_logit(s, got, &lg) == 0
                               ? (double)lw - lg : INFINITY;
            int tie = gap_c <= tol && fabs(gap_l) <= tol;
            printf("step %2d: llama.cpp %d, cmif %d: gaps %.5f (cmif) %.5f (llama.cpp)%s\n", i,
                   (int)want, (int)got, gap_c, gap_l,
                   tie ? ": near tie" : isinf(gap_l) ? ": cmif's choice is not in llama.cpp's top "
                                                       "logits: FAIL" : ": FAIL");
            if (tie) {
                n_tie++;
                if (gap_c > max_gap) max_gap = gap_c;
                if (fabs(gap_l) > max_gap) max_gap = fabs(gap_l);
            } else {
                n_bad++;
            }
        }
        if (s->end || i + 1 == ref.n_steps) break;
        if (pos >= dec_ctx(eng.dec)) {
            fprintf(stderr, "greedycheck: the context is full\n");
            goto out;
        }
        if (core_embed_token(eng.core, want, vec, err, sizeof err) ||
            dec_forward(eng.dec, vec, 1, pos, logits, 0, err, sizeof err)) {
            fprintf(stderr, "greedycheck: %s\n", err);
            goto out;
        }
        pos++;
    }
    printf("greedycheck: %d steps, %d identical, %d near ties (largest gap %.5f, tolerance %.5f), "
           "%d failed; logits differ by at most %.5f\n",
           ref.n_steps, n_same, n_tie, max_gap, tol, n_bad, max_diff);
    rc = n_bad ? 1 : 0;
out:
    core_batch_free(&b);
    engine_close(&eng);
    free(logits);
    free(vec);
    free(prompt);
    return rc;
}
