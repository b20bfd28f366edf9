/* app/cmd_eval_privacy: `cmif eval-privacy` — the privacy/utility trade-off of the sanitizer
 * mechanisms on SST-2, measured with the model's own embeddings (taken from the core).
 *
 * For each mechanism and ε, over the sanitized tokens of the dev sentences: the fraction
 * replaced, the mean cosine similarity between original and sent embeddings, the success rate
 * of a nearest-neighbour inversion attack (guess the original as the sanitizable token whose
 * embedding is most similar to the sent one), and the accuracy of a bag-of-tokens logistic
 * regression sentiment classifier trained on clean training sentences and tested on the
 * sanitized dev sentences (clean dev accuracy is the ceiling). The numbers depend on the
 * embeddings' quality: a tiny model's embeddings are weak, so its clusters are too. The
 * sanitizer is the core's own (core_eval_*: the same builder as the chat's), fed the token ids
 * of the public data set. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "app/cmd.h"
#include "app/opts.h"
#include "core/core.h"

struct sent {
    int32_t *ids;
    size_t n;
    int label;
};

struct set {
    struct sent *s;
    size_t n, cap;
};

struct emb {
    int32_t n;
    int dim;
    float *v;       /* raw rows */
    float *u;       /* unit rows */
};

static void set_free(struct set *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->s[i].ids);
    free(s->s);
}

struct tset {
    char **text;
    int *label;
    size_t n, cap;
};

static void tset_free(struct tset *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->text[i]);
    free(s->text);
    free(s->label);
}

/* Sentences with their labels. tsv = 1: "sentence<TAB>label" with a header line (GLUE);
 * else "label sentence". Trailing spaces are dropped. */
static int load_text(const char *path, int tsv, struct tset *out, size_t limit)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cmif eval-privacy: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    long lineno = 0;
    int rc = 0;
    while ((len = getline(&line, &cap, f)) > 0 && (!limit || out->n < limit)) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (len == 0) continue;
        char *text;
        int label;
        if (tsv) {
            char *tab = strrchr(line, '\t');
            if (!tab) { fprintf(stderr, "cmif eval-privacy: %s:%ld: no tab\n", path, lineno); rc = -1; break; }
            *tab = 0;
            if (lineno == 1 && strcmp(tab + 1, "label") == 0) continue;
            if (strcmp(tab + 1, "0") && strcmp(tab + 1, "1")) {
                fprintf(stderr, "cmif eval-privacy: %s:%ld: label is not 0 or 1\n", path, lineno);
                rc = -1;
                break;
            }
            label = tab[1] - '0';
            text = line;
        } else {
            if ((line[0] != '0' && line[0] != '1') || line[1] != ' ') {
                fprintf(stderr, "cmif eval-privacy: %s:%ld: expected 'LABEL sentence'\n", path, lineno);
                rc = -1;
                break;
            }
            label = line[0] - '0';
            text = line + 2;
        }
        size_t tl = strlen(text);
        while (tl > 0 && text[tl - 1] == ' ') text[--tl] = 0;
        if (out->n == out->cap) {
            size_t nc = out->cap ? out->cap * 2 : 1024;
            char **nt = realloc(out->text, nc * sizeof *nt);
            if (nt) out->text = nt;
            int *nl = realloc(out->label, nc * sizeof *nl);
            if (nl) out->label = nl;
            if (!nt || !nl) { rc = -1; break; }
            out->cap = nc;
        }
        out->text[out->n] = strdup(text);
        out->label[out->n] = label;
        if (!out->text[out->n]) { rc = -1; break; }
        out->n++;
    }
    free(line);
    fclose(f);
    if (rc == 0 && out->n == 0) {
        fprintf(stderr, "cmif eval-privacy: %s has no sentences\n", path);
        rc = -1;
    }
    return rc;
}

/* The same sentences as token ids of the model's vocabulary (the token-level protocol). */
static int load(const char *path, int tsv, const struct core_vocab *t, struct set *out,
                size_t limit)
{
    struct tset ts = {0};
    if (load_text(path, tsv, &ts, limit) != 0) {
        tset_free(&ts);
        return -1;
    }
    int rc = 0;
    out->s = calloc(ts.n, sizeof *out->s);
    out->cap = ts.n;
    for (size_t i = 0; out->s && i < ts.n; i++) {
        struct sent *s = &out->s[out->n];
        size_t tl = strlen(ts.text[i]);
        s->ids = malloc((tl + 3) * sizeof *s->ids);
        s->label = ts.label[i];
        char err[256];
        if (!s->ids || core_vocab_encode(t, ts.text[i], tl, 0, 0, s->ids, tl + 3, &s->n, err,
                                         sizeof err)) {
            fprintf(stderr, "cmif eval-privacy: %s: sentence %zu: %s\n", path, i + 1,
                    s->ids ? err : "out of memory");
            free(s->ids);
            rc = -1;
            break;
        }
        out->n++;
    }
    if (!out->s) rc = -1;
    tset_free(&ts);
    return rc;
}

/* Bag-of-tokens logistic regression (binary presence features), SGD with L2. */
struct lr {
    int32_t n;
    double *w, b;
};

static double lr_score(const struct lr *m, const int32_t *ids, size_t n, unsigned char *seen)
{
    double z = m->b;
    for (size_t i = 0; i < n; i++) {
        if (seen[ids[i]]) continue;
        seen[ids[i]] = 1;
        z += m->w[ids[i]];
    }
    for (size_t i = 0; i < n; i++) seen[ids[i]] = 0;
    return z;
}

static int lr_train(struct lr *m, const struct set *tr, int32_t nv)
{
    m->n = nv;
    m->b = 0;
    m->w = calloc((size_t)nv, sizeof *m->w);
    unsigned char *seen = calloc((size_t)nv, 1);
    size_t *order = malloc(tr->n * sizeof *order);
    if (!m->w || !seen || !order) { free(seen); free(order); return -1; }
    for (size_t i = 0; i < tr->n; i++) order[i] = i;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    const double l2 = 1e-4;
    for (int ep = 0; ep < 15; ep++) {
        double lrate = 0.2 / (1 + ep * 0.5);
        for (size_t i = tr->n; i > 1; i--) {    /* Fisher-Yates, fixed seed: reproducible */
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            size_t j = (size_t)(x % i), t = order[i - 1];
            order[i - 1] = order[j];
            order[j] = t;
        }
        for (size_t k = 0; k < tr->n; k++) {
            const struct sent *s = &tr->s[order[k]];
            double z = lr_score(m, s->ids, s->n, seen);
            double p = 1 / (1 + exp(-z)), g = p - s->label;
            m->b -= lrate * g;
            for (size_t i = 0; i < s->n; i++) {
                int32_t id = s->ids[i];
                if (seen[id]) continue;
                seen[id] = 1;
                m->w[id] -= lrate * (g + l2 * m->w[id]);
            }
            for (size_t i = 0; i < s->n; i++) seen[s->ids[i]] = 0;
        }
    }
    free(seen);
    free(order);
    return 0;
}

static int parse_eps_list(const char *s, double *out, int max)
{
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        double v = strtod(p, &end);
        if (errno || end == p || !(v > 0) || isinf(v) || n == max) return -1;
        out[n++] = v;
        if (*end == ',') end++;
        else if (*end) return -1;
        p = end;
    }
    return n;
}

/* ---- word level ------------------------------------------------------------------------ */


/* The Bayesian attacker's likelihood table for one cluster: P(y | x) for members x, y, under
 * the mechanism (the attacker knows it and the public clusters). rnm / rnm-exp: the
 * noisy-max win probability of y given the utilities u_x (cosine, min-max normalised in the
 * cluster), integrated over the winner's noise at m quantiles (continuous Laplace / exponential
 * noise of scale 2/ε: the grid of the discrete noise is 2^-20, far finer). custext+: the
 * exponential mechanism, exact. santext+: exp(-ε/2 ||x - y||) restricted to the cluster, with
 * (1 - p) more on y = x for a non-sensitive x (an approximation: the normaliser over the whole
 * sensitive set is taken as equal for the cluster's members). */
static void likelihood(int mech, double eps, const int32_t *mem, int n, const struct emb *e,
                       const struct core_eval_word *ev, double st_p, double *P)
{
    double *u = malloc((size_t)n * n * sizeof *u);
    for (int x = 0; x < n; x++) {
        const float *vx = e->v + (size_t)core_eval_word_token(ev, mem[x]) * e->dim;
        const float *ux = e->u + (size_t)core_eval_word_token(ev, mem[x]) * e->dim;
        double lo = INFINITY, hi = -INFINITY;
        for (int y = 0; y < n; y++) {
            int32_t ty = core_eval_word_token(ev, mem[y]);
            double d = 0;
            if (mech == CORE_MECH_RNM || mech == CORE_MECH_RNM_EXP) {
                const float *uy = e->u + (size_t)ty * e->dim;
                for (int q = 0; q < e->dim; q++) d += (double)ux[q] * uy[q];
            } else {
                const float *vy = e->v + (size_t)ty * e->dim;
                for (int q = 0; q < e->dim; q++) d += ((double)vx[q] - vy[q]) * ((double)vx[q] - vy[q]);
                d = mech == CORE_MECH_CUSTEXT ? -d : -sqrt(d);
            }
            u[x * n + y] = d;
            if (d < lo) lo = d;
            if (d > hi) hi = d;
        }
        if (mech != CORE_MECH_SANTEXT)
            for (int y = 0; y < n; y++) u[x * n + y] = hi > lo ? (u[x * n + y] - lo) / (hi - lo) : 0;
    }
    for (int x = 0; x < n; x++) {
        double *row = P + (size_t)x * n, s = 0;
        const double *ux = u + (size_t)x * n;
        if (mech == CORE_MECH_RNM || mech == CORE_MECH_RNM_EXP) {
            double b = 2 / eps;
            const int M = 120;
            for (int y = 0; y < n; y++) {
                double acc = 0;
                for (int k = 0; k < M; k++) {
                    double q = (k + 0.5) / M, z, prod = 1;
                    if (mech == CORE_MECH_RNM) z = q < 0.5 ? b * log(2 * q) : -b * log(2 - 2 * q);
                    else z = -b * log(1 - q);
                    for (int j = 0; j < n && prod > 0; j++) {
                        if (j == y) continue;
                        double t = ux[y] + z - ux[j];   /* j's noise must stay below t */
                        double F;
                        if (mech == CORE_MECH_RNM) F = t < 0 ? 0.5 * exp(t / b) : 1 - 0.5 * exp(-t / b);
                        else F = t <= 0 ? 0 : 1 - exp(-t / b);
                        prod *= F;
                    }
                    acc += prod;
                }
                row[y] = acc;
                s += acc;
            }
        } else {
            for (int y = 0; y < n; y++) s += row[y] = exp(eps / 2 * ux[y]);
        }
        for (int y = 0; y < n; y++) row[y] = s > 0 ? row[y] / s : 1.0 / n;
        if (mech == CORE_MECH_SANTEXT && !core_eval_word_sensitive(ev, mem[x])) {
            for (int y = 0; y < n; y++) row[y] *= st_p;
            row[x] += 1 - st_p;
        }
    }
    free(u);
}

struct wrun {
    size_t words, public_, random, kept, replaced, attacked, inverted, charged;
    size_t correct_clean, correct_san;
};

/* Sanitizes a set into token ids (for the classifier) and counts the units. */
static int word_pass(struct core_eval_word *ev, const struct core_vocab *t, const struct tset *ts,
                     struct set *out, struct core_eval_unit **ubuf, size_t *ucap,
                     struct wrun *r, double ***lik, int mech, double eps, const struct emb *e,
                     double st_p, const double *prior)
{
    char err[512];
    for (size_t i = 0; i < ts->n; i++) {
        size_t len = strlen(ts->text[i]), cap = core_eval_word_cap(len), ol, nu;
        if (*ucap < len + 1) {
            free(*ubuf);
            *ucap = len + 1;
            *ubuf = malloc(*ucap * sizeof **ubuf);
            if (!*ubuf) return -1;
        }
        char *o = malloc(cap);
        struct sent *s = &out->s[i];
        s->label = ts->label[i];
        s->ids = NULL;
        if (!o || core_eval_word_sanitize(ev, ts->text[i], len, o, cap, &ol, *ubuf, len + 1, &nu,
                                          err, sizeof err)) {
            fprintf(stderr, "cmif eval-privacy: %s\n", o ? err : "out of memory");
            free(o);
            return -1;
        }
        s->ids = malloc((ol + 3) * sizeof *s->ids);
        if (!s->ids || core_vocab_encode(t, o, ol, 0, 0, s->ids, ol + 3, &s->n, err, sizeof err)) {
            free(o);
            return -1;
        }
        free(o);
        out->n = i + 1;
        if (!r) continue;
        for (size_t k = 0; k < nu; k++) {
            const struct core_eval_unit *u = &(*ubuf)[k];
            r->words++;
            r->public_ += u->kind == CORE_TOK_PUBLIC;
            r->random += u->kind == CORE_TOK_RANDOM;
            r->kept += u->kind == CORE_TOK_KEPT;
            r->replaced += u->kind == CORE_TOK_REPLACED;
            if (u->kind != CORE_TOK_KEPT && u->kind != CORE_TOK_REPLACED) continue;
            r->charged++;
            /* The attacker sees the sent word, knows its cluster (the mechanism draws from the
             * original's cluster), and guesses the member of highest prior x likelihood. */
            r->attacked++;
            int32_t cid = core_eval_word_cluster_of(ev, u->sent);
            if (cid < 0 || u->orig < 0) continue;
            const int32_t *mem;
            int n = core_eval_word_members(ev, cid, &mem);
            if (!(*lik)[cid]) {
                (*lik)[cid] = malloc((size_t)n * n * sizeof(double));
                if (!(*lik)[cid]) return -1;
                likelihood(mech, eps, mem, n, e, ev, st_p, (*lik)[cid]);
            }
            int yi = -1;
            for (int q = 0; q < n; q++) if (mem[q] == u->sent) yi = q;
            if (yi < 0) continue;
            double best = -1;
            int32_t guess = -1;
            for (int x = 0; x < n; x++) {
                double p = prior[mem[x]] * (*lik)[cid][(size_t)x * n + yi];
                if (p > best) { best = p; guess = mem[x]; }
            }
            r->inverted += guess == u->orig;
        }
    }
    return 0;
}

static void sset_free(struct set *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->s[i].ids);
    s->n = 0;
}

static int eval_words(struct core *c, const struct core_vocab *t, const struct emb *e,
                      const char *train, const char *dev, size_t limit, size_t train_limit,
                      const struct core_eval_params *ep, const int *mlist, int n_m,
                      const double *eps, int n_eps, const int *scopes, int n_sc, int k,
                      const char *model)
{
    char err[512];
    int rc = -1;
    struct tset ttr = {0}, tdv = {0};
    struct set ctr = {0}, sdv = {0}, str = {0};
    struct core_eval_word *ev = NULL;
    struct core_eval_unit *ubuf = NULL;
    size_t ucap = 0;
    double **lik = NULL, *prior = NULL;
    struct lr clean = {0}, san = {0};
    unsigned char *seen = calloc((size_t)e->n, 1);
    if (!seen || load_text(train, 0, &ttr, train_limit) || load_text(dev, 1, &tdv, limit)) goto out;
    if (core_eval_word_open(&ev, c, ep, err, sizeof err)) {
        fprintf(stderr, "cmif eval-privacy: %s\n", err);
        goto out;
    }
    int32_t nd = core_eval_word_domain(ev), nc = core_eval_word_clusters(ev);
    lik = calloc((size_t)nc, sizeof *lik);
    prior = malloc((size_t)nd * sizeof *prior);
    ctr.s = calloc(ttr.n, sizeof *ctr.s);
    str.s = calloc(ttr.n, sizeof *str.s);
    sdv.s = calloc(tdv.n, sizeof *sdv.s);
    if (!lik || !prior || !ctr.s || !str.s || !sdv.s) goto out;
    /* Word-frequency prior: Zipf over the domain's frequency order (BPE / SentencePiece ids). */
    for (int32_t i = 0; i < nd; i++) prior[i] = 1.0 / (i + 10.0);
    /* The clean-train classifier: the training text as typed. */
    for (size_t i = 0; i < ttr.n; i++) {
        struct sent *s = &ctr.s[i];
        size_t l = strlen(ttr.text[i]);
        s->label = ttr.label[i];
        s->ids = malloc((l + 3) * sizeof *s->ids);
        if (!s->ids || core_vocab_encode(t, ttr.text[i], l, 0, 0, s->ids, l + 3, &s->n, err, sizeof err)) goto out;
        ctr.n++;
    }
    if (lr_train(&clean, &ctr, e->n)) goto out;
    size_t correct = 0;
    for (size_t i = 0; i < tdv.n; i++) {
        size_t l = strlen(tdv.text[i]), n;
        int32_t *ids = malloc((l + 3) * sizeof *ids);
        if (!ids || core_vocab_encode(t, tdv.text[i], l, 0, 0, ids, l + 3, &n, err, sizeof err)) { free(ids); goto out; }
        correct += (lr_score(&clean, ids, n, seen) > 0) == tdv.label[i];
        free(ids);
    }
    printf("model %s: word domain %d, %d clusters of K = %d; train %zu, dev %zu sentences%s\n",
           model, (int)nd, (int)nc, k, ttr.n, tdv.n,
           ep->seeded ? " [SEEDED: NOT PRIVATE, reproducible]" : "");
    printf("unit word; clean dev accuracy (ceiling): %.3f\n", (double)correct / tdv.n);
    printf("santext+: p %g, sensitive fraction w %g (rarest by word frequency rank)\n",
           ep->santext_p, ep->santext_w);
    printf("%-6s %-9s %4s %6s %6s %6s %6s %6s %6s %7s %7s %7s\n", "mode", "mechanism", "eps",
           "clear", "random", "replcd", "attack", "bound", "eps/msg", "acc_cln", "acc_san", "");
    fflush(stdout);
    for (int si = 0; si < n_sc; si++)
        for (int mi = 0; mi < n_m; mi++)
            for (int ei = 0; ei < n_eps; ei++) {
                if (core_eval_word_set(ev, mlist[mi], eps[ei], scopes[si], err, sizeof err)) {
                    fprintf(stderr, "cmif eval-privacy: %s\n", err);
                    goto out;
                }
                for (int32_t q = 0; q < nc; q++) { free(lik[q]); lik[q] = NULL; }
                struct wrun r = {0};
                sset_free(&sdv);
                sset_free(&str);
                if (word_pass(ev, t, &tdv, &sdv, &ubuf, &ucap, &r, &lik, mlist[mi], eps[ei], e,
                              ep->santext_p, prior) ||
                    word_pass(ev, t, &ttr, &str, &ubuf, &ucap, NULL, &lik, mlist[mi], eps[ei], e,
                              ep->santext_p, prior))
                    goto out;
                free(san.w);
                san.w = NULL;
                if (lr_train(&san, &str, e->n)) goto out;
                for (size_t i = 0; i < sdv.n; i++) {
                    r.correct_clean += (lr_score(&clean, sdv.s[i].ids, sdv.s[i].n, seen) > 0) == sdv.s[i].label;
                    r.correct_san += (lr_score(&san, sdv.s[i].ids, sdv.s[i].n, seen) > 0) == sdv.s[i].label;
                }
                double w = r.words ? (double)r.words : 1, a = r.attacked ? (double)r.attacked : 1;
                double ee = exp(eps[ei]);
                printf("%-6s %-9s %4g %6.3f %6.3f %6.3f %6.3f %6.3f %6.2f %7.3f %7.3f\n",
                       core_scope_name(scopes[si]), core_mech_name(mlist[mi]), eps[ei],
                       r.public_ / w, r.random / w, r.replaced / w, r.inverted / a,
                       ee / (ee + k - 1), (double)r.charged * eps[ei] / tdv.n,
                       (double)r.correct_clean / tdv.n, (double)r.correct_san / tdv.n);
                fflush(stdout);
            }
    rc = 0;
out:
    if (lik) for (int32_t q = 0; q < core_eval_word_clusters(ev); q++) free(lik[q]);
    free(lik);
    free(prior);
    free(ubuf);
    free(clean.w);
    free(san.w);
    set_free(&ctr);
    set_free(&str);
    set_free(&sdv);
    tset_free(&ttr);
    tset_free(&tdv);
    free(seen);
    core_eval_word_close(ev);
    return rc;
}

enum { X_DATA = 1, X_TRAIN, X_EPS, X_MECHS, X_K, X_SEED, X_LIMIT, X_STP, X_STW, X_UNIT,
       X_SCOPE, X_TRAINLIMIT, X_QUIET };

static const struct opts_extra extras[] = {
    {"data", 0, 1, X_DATA, "--data DEV.tsv     GLUE SST-2 dev set: \"sentence<TAB>label\" (required)"},
    {"train", 0, 1, X_TRAIN, "--train TRAIN      training sentences: \"LABEL sentence\" (required)"},
    {"eps", 0, 1, X_EPS, "--eps LIST         comma list of ε to measure (default 0.5,1,2,4,8)"},
    {"mechanisms", 0, 1, X_MECHS,
     "--mechanisms LIST  rnm,rnm-exp,santext+,custext+ (default: all four)"},
    {"cluster-size", 0, 1, X_K, "--cluster-size K   tokens per cluster, 2..100000 (default 20)"},
    {"unit", 0, 1, X_UNIT,
     "--unit word|token  word (default): the chat's word path (public rule, word\n"
     "                         domain, clusters); token: every token on its own (the paper)"},
    {"sanitize", 0, 1, X_SCOPE, "--sanitize LIST    word modes to measure: auto,all,marked (default auto)"},
    {"train-limit", 0, 1, X_TRAINLIMIT,
     "--train-limit N    only the first N training sentences (both protocols)"},
    {"santext-p", 0, 1, X_STP,
     "--santext-p P      SanText+: probability of replacing a non-sensitive token (0.3)"},
    {"santext-w", 0, 1, X_STW,
     "--santext-w W      SanText+: fraction of the vocabulary that is sensitive, the\n"
     "                         rarest by token rank (0.9)"},
    {"seed", 0, 1, X_SEED, "--seed N           reproducible noise: NOT private (for tests and tables)"},
    {"limit", 0, 1, X_LIMIT, "--limit N          only the first N dev sentences"},
    {"quiet", 'q', 0, X_QUIET, "-q, --quiet            no progress while clustering"},
    {NULL, 0, 0, 0, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: cmif eval-privacy -m MODEL --data DEV.tsv --train TRAIN "
               "[--eps 0.5,1,2,4,8] [--mechanisms rnm,rnm-exp,santext+,custext+] "
               "[--cluster-size K] [--seed N] [--limit N] [--santext-p P] [--santext-w W] [-q]\n");
    opts_usage(f, OPT_MODEL, extras);
}

/* What the flags set beyond -m. */
struct evp_flags {
    const char *dev, *train;
    double eps[32];
    int n_eps, mlist[8], n_m, k, quiet, seeded, unit, scopes[3], n_sc;
    size_t limit, train_limit;
    double st_p, st_w;
    unsigned long long seed;
};

/* A comma list of names (at most max, parsed by parse): 0, or -1 on an unknown name. */
static int parse_list(const char *s, int (*parse)(const char *), int *out, int max, int *n,
                      const char **bad)
{
    char b[256];
    snprintf(b, sizeof b, "%s", s);
    *n = 0;
    for (char *tk = strtok(b, ","); tk; tk = strtok(NULL, ",")) {
        int v = parse(tk);
        if (v < 0 || *n == max) {
            *bad = s + (tk - b);
            return -1;
        }
        out[(*n)++] = v;
    }
    return 0;
}

static int mech_parse(const char *s)
{
    int m = core_mech_parse(s);
    return m == CORE_MECH_NONE ? -1 : m;
}

static int on_extra(void *ctx, int id, const char *v, char *err, size_t errlen)
{
    struct evp_flags *fl = ctx;
    long l;
    const char *bad = v;
    switch (id) {
    case X_DATA: fl->dev = v; return 0;
    case X_TRAIN: fl->train = v; return 0;
    case X_QUIET: fl->quiet = 1; return 0;
    case X_UNIT:
        if (strcmp(v, "word") == 0) fl->unit = CORE_UNIT_WORD;
        else if (strcmp(v, "token") == 0) fl->unit = CORE_UNIT_TOKEN;
        else break;
        return 0;
    case X_SCOPE:
        if (parse_list(v, core_scope_parse, fl->scopes, 3, &fl->n_sc, &bad) || !fl->n_sc) break;
        return 0;
    case X_MECHS:
        if (parse_list(v, mech_parse, fl->mlist, 8, &fl->n_m, &bad) == 0 && fl->n_m) return 0;
        snprintf(err, errlen, "unknown mechanism '%.*s'", (int)strcspn(bad, ","), bad);
        return -1;
    case X_EPS:
        if ((fl->n_eps = parse_eps_list(v, fl->eps, 32)) <= 0) break;
        return 0;
    case X_K:
        if (opts_int(v, 2, 100000, &l)) break;
        fl->k = (int)l;
        return 0;
    case X_SEED: {
        char *end;
        errno = 0;
        fl->seed = strtoull(v, &end, 0);
        if (errno || *end || end == v) break;
        fl->seeded = 1;
        return 0;
    }
    case X_STP:
    case X_STW: {
        double d;
        if (opts_float(v, 0, 1, &d)) break;
        *(id == X_STP ? &fl->st_p : &fl->st_w) = d;
        return 0;
    }
    case X_LIMIT:
    case X_TRAINLIMIT:
        if (opts_int(v, 0, LONG_MAX, &l)) break;
        *(id == X_LIMIT ? &fl->limit : &fl->train_limit) = (size_t)l;
        return 0;
    default:
        snprintf(err, errlen, "internal: unknown flag id %d", id);
        return -1;
    }
    static const char *const want[] = {
        [X_UNIT] = "--unit wants word or token",
        [X_SCOPE] = "--sanitize wants auto, all or marked",
        [X_EPS] = "--eps wants a comma list of positive finite numbers",
        [X_K] = "--cluster-size must be an integer from 2 to 100000",
        [X_SEED] = "--seed wants an integer",
        [X_STP] = "--santext-p wants a number in [0, 1]",
        [X_STW] = "--santext-w wants a number in [0, 1]",
        [X_LIMIT] = "--limit wants an integer >= 0",
        [X_TRAINLIMIT] = "--train-limit wants an integer >= 0",
    };
    snprintf(err, errlen, "%s", want[id]);
    return -1;
}

static int cmd_eval_privacy_exec(int argc, char **argv)
{
    struct evp_flags fl = {
        .eps = {0.5, 1, 2, 4, 8}, .n_eps = 5,
        .mlist = {CORE_MECH_RNM, CORE_MECH_RNM_EXP, CORE_MECH_SANTEXT, CORE_MECH_CUSTEXT},
        .n_m = 4, .k = 20, .unit = CORE_UNIT_WORD, .scopes = {CORE_SCOPE_AUTO}, .n_sc = 1,
        .st_p = 0.3, .st_w = 0.9,
    };
    struct opts op;
    opts_defaults(&op);
    char err[512];
    struct opts_refusal rf = {on_extra, &fl, 0};
    int r = opts_parse(&op, argc, argv, OPT_MODEL, extras, opts_refusal_fn, &rf, err, sizeof err);
    if (r == 1) {
        usage(stdout);
        return EXIT_OK;
    }
    if (r < 0 || op.n_args > 0 || !op.model || !fl.dev || !fl.train) {
        if (r < 0)
            fprintf(stderr, "cmif eval-privacy: %s\n", err);
        else if (op.n_args > 0)
            fprintf(stderr, "cmif eval-privacy: unexpected argument '%s'\n", op.args[0]);
        else
            fprintf(stderr, "cmif eval-privacy: -m, --data and --train are required\n");
        if (!rf.refused) usage(stderr);
        return EXIT_USAGE;
    }
    const char *model = op.model, *dev = fl.dev, *train = fl.train;
    const double *eps = fl.eps;
    const int *mlist = fl.mlist, *scopes = fl.scopes;
    int n_eps = fl.n_eps, n_m = fl.n_m, n_sc = fl.n_sc, k = fl.k, quiet = fl.quiet;
    int seeded = fl.seeded, unit = fl.unit;
    size_t limit = fl.limit, train_limit = fl.train_limit;
    double st_p = fl.st_p, st_w = fl.st_w;
    unsigned long long seed = fl.seed;
    struct core_options o;
    core_defaults(&o);
    o.mechanism = CORE_MECH_NONE;
    o.quiet = quiet;
    struct core *c;
    if (core_open(&c, model, &o, err, sizeof err)) {
        fprintf(stderr, "cmif eval-privacy: %s\n", err);
        return EXIT_RUNTIME;
    }
    int rc = EXIT_RUNTIME;
    struct core_vocab *t = NULL;
    struct emb e = {core_n_vocab(c), core_dim(c), NULL, NULL};
    struct set tr = {0}, dv = {0};
    int32_t *nn = malloc((size_t)e.n * sizeof *nn);
    unsigned char *seen = calloc((size_t)e.n, 1);
    float *sims = malloc((size_t)e.n * sizeof *sims);
    int32_t *buf = NULL;
    struct core_eval *ev = NULL;
    struct lr lr = {0};
    e.v = malloc((size_t)e.n * (size_t)e.dim * sizeof(float));
    e.u = malloc((size_t)e.n * (size_t)e.dim * sizeof(float));
    if (!nn || !seen || !sims || !e.v || !e.u) {
        fprintf(stderr, "cmif eval-privacy: out of memory\n");
        goto out;
    }
    for (int32_t i = 0; i < e.n; i++) {
        float *r = e.v + (size_t)i * e.dim, *u = e.u + (size_t)i * e.dim;
        if (core_embed_token(c, i, r, err, sizeof err)) {
            fprintf(stderr, "cmif eval-privacy: %s\n", err);
            goto out;
        }
        double ss = 0;
        for (int d = 0; d < e.dim; d++) ss += (double)r[d] * r[d];
        double inv = ss > 0 ? 1 / sqrt(ss) : 0;
        for (int d = 0; d < e.dim; d++) u[d] = (float)(r[d] * inv);
        nn[i] = -1;
    }
    if (core_vocab_open(&t, core_gguf(c), err, sizeof err)) {
        fprintf(stderr, "cmif eval-privacy: %s\n", err);
        goto out;
    }
    struct core_eval_params ep = {.cluster_size = k, .quiet = quiet, .seeded = seeded,
                                  .seed = seed, .santext_p = st_p, .santext_w = st_w,
                                  .table = e.v};
    if (unit == CORE_UNIT_WORD) {
        if (eval_words(c, t, &e, train, dev, limit, train_limit, &ep, mlist, n_m, eps, n_eps,
                       scopes, n_sc, k, model) == 0)
            rc = EXIT_OK;
        goto out;
    }
    if (load(train, 0, t, &tr, train_limit) || load(dev, 1, t, &dv, limit)) goto out;
    if (core_eval_open(&ev, c, &ep, err, sizeof err)) {
        fprintf(stderr, "cmif eval-privacy: %s\n", err);
        goto out;
    }
    if (lr_train(&lr, &tr, e.n)) {
        fprintf(stderr, "cmif eval-privacy: out of memory\n");
        goto out;
    }
    size_t maxn = 0;
    for (size_t i = 0; i < dv.n; i++) if (dv.s[i].n > maxn) maxn = dv.s[i].n;
    buf = malloc((maxn + 1) * sizeof *buf);
    if (!buf) goto out;
    size_t correct = 0;
    for (size_t i = 0; i < dv.n; i++)
        correct += (lr_score(&lr, dv.s[i].ids, dv.s[i].n, seen) > 0) == dv.s[i].label;
    printf("model %s: vocabulary %d, dim %d, %d clusters of K = %d; train %zu, dev %zu sentences%s\n",
           model, (int)e.n, e.dim, (int)core_eval_clusters(ev), k, tr.n, dv.n,
           seeded ? " [SEEDED: NOT PRIVATE, reproducible]" : "");
    printf("clean dev accuracy (ceiling): %.3f\n", (double)correct / dv.n);
    printf("santext+: p %g, sensitive fraction w %g\n", st_p, st_w);
    printf("%-9s %5s %9s %9s %9s %9s\n", "mechanism", "eps", "replaced", "mean_cos", "nn_invert", "accuracy");
    fflush(stdout);
    for (int mi = 0; mi < n_m; mi++) {
        for (int ei = 0; ei < n_eps; ei++) {
            if (core_eval_set(ev, mlist[mi], eps[ei], err, sizeof err)) {
                fprintf(stderr, "cmif eval-privacy: %s\n", err);
                goto out;
            }
            size_t tokens = 0, replaced = 0, inverted = 0;
            double cos_sum = 0;
            correct = 0;
            for (size_t si = 0; si < dv.n; si++) {
                const struct sent *s = &dv.s[si];
                for (size_t j = 0; j < s->n; j++) {
                    int32_t sent;
                    int kind;
                    if (core_eval_sanitize(ev, s->ids[j], &sent, &kind, err, sizeof err)) {
                        fprintf(stderr, "cmif eval-privacy: %s\n", err);
                        goto out;
                    }
                    buf[j] = sent;
                    if (kind != CORE_TOK_KEPT && kind != CORE_TOK_REPLACED) continue;
                    tokens++;
                    replaced += kind == CORE_TOK_REPLACED;
                    const float *a = e.u + (size_t)s->ids[j] * e.dim, *b = e.u + (size_t)sent * e.dim;
                    double d = 0;
                    for (int q = 0; q < e.dim; q++) d += (double)a[q] * b[q];
                    cos_sum += d;
                    /* Inversion: the sanitizable token nearest to what was sent (memoised). */
                    if (nn[sent] < 0) {
                        cblas_sgemv(CblasRowMajor, CblasNoTrans, e.n, e.dim, 1.0f, e.u, e.dim, b,
                                    1, 0.0f, sims, 1);
                        float best = -2;
                        for (int32_t v = 0; v < e.n; v++)
                            if (core_eval_sanitizable(ev, v) && sims[v] > best) {
                                best = sims[v];
                                nn[sent] = v;
                            }
                    }
                    inverted += nn[sent] == s->ids[j];
                }
                correct += (lr_score(&lr, buf, s->n, seen) > 0) == s->label;
            }
            printf("%-9s %5g %9.3f %9.3f %9.3f %9.3f\n", core_mech_name(mlist[mi]), eps[ei],
                   tokens ? (double)replaced / tokens : 0, tokens ? cos_sum / tokens : 0,
                   tokens ? (double)inverted / tokens : 0, (double)correct / dv.n);
            fflush(stdout);
        }
    }
    rc = EXIT_OK;
out:
    core_eval_close(ev);
    core_vocab_close(t);
    free(lr.w);
    free(buf);
    set_free(&tr);
    set_free(&dv);
    free(nn);
    free(seen);
    free(sims);
    free(e.v);
    free(e.u);
    core_close(c);
    return rc;
}

const struct cmd_entry cmd_eval_privacy_entry = {
    "eval-privacy",
    "eval-privacy -m MODEL --data DEV.tsv --train TRAIN [--eps 0.5,1,2,4,8]",
    "privacy/utility of the sanitizer mechanisms on SST-2 (replacement, similarity, "
    "inversion attack, sentiment accuracy)",
    cmd_eval_privacy_exec,
};
