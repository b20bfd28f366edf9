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
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "app/cmd.h"
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

/* tsv = 1: "sentence<TAB>label" with a header line (GLUE); else "label sentence". */
static int load(const char *path, int tsv, const struct core_vocab *t, struct set *out,
                size_t limit)
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
            struct sent *ns = realloc(out->s, nc * sizeof *ns);
            if (!ns) { rc = -1; break; }
            out->s = ns;
            out->cap = nc;
        }
        struct sent *s = &out->s[out->n];
        s->ids = malloc((tl + 3) * sizeof *s->ids);
        s->label = label;
        char err[256];
        if (!s->ids || core_vocab_encode(t, text, tl, 0, 0, s->ids, tl + 3, &s->n, err, sizeof err)) {
            fprintf(stderr, "cmif eval-privacy: %s:%ld: %s\n", path, lineno, s->ids ? err : "out of memory");
            free(s->ids);
            rc = -1;
            break;
        }
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

static int cmd_eval_privacy_exec(int argc, char **argv)
{
    const char *model = NULL, *dev = NULL, *train = NULL, *mechs = "rnm,rnm-exp,santext+,custext+";
    double eps[32];
    int n_eps = 5, k = 20, quiet = 0, seeded = 0;
    double st_p = 0.3, st_w = 0.9;
    unsigned long long seed = 0;
    size_t limit = 0;
    eps[0] = 0.5; eps[1] = 1; eps[2] = 2; eps[3] = 4; eps[4] = 8;
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'}, {"data", required_argument, 0, 'd'},
        {"train", required_argument, 0, 't'}, {"eps", required_argument, 0, 'e'},
        {"mechanisms", required_argument, 0, 'M'}, {"cluster-size", required_argument, 0, 'k'},
        {"seed", required_argument, 0, 's'}, {"limit", required_argument, 0, 'l'},
        {"santext-p", required_argument, 0, 'P'}, {"santext-w", required_argument, 0, 'W'},
        {"quiet", no_argument, 0, 'q'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0},
    };
    const char *use = "usage: cmif eval-privacy -m MODEL --data DEV.tsv --train TRAIN "
                      "[--eps 0.5,1,2,4,8] [--mechanisms rnm,rnm-exp,santext+,custext+] "
                      "[--cluster-size K] [--seed N] [--limit N] [--santext-p P] [--santext-w W] [-q]\n"
                      "  --santext-p P  SanText+: probability of replacing a non-sensitive token (0.3)\n"
                      "  --santext-w W  SanText+: fraction of the vocabulary that is sensitive, the\n"
                      "                 rarest by token rank (0.9)\n"
                      "  --seed N       reproducible noise: NOT private (for tests and tables)\n"
                      "  --limit N      only the first N dev sentences\n";
    optind = 1;
    opterr = 0;
    int ch;
    while ((ch = getopt_long(argc, argv, "+m:qh", lo, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 'm': model = optarg; break;
        case 'd': dev = optarg; break;
        case 't': train = optarg; break;
        case 'M': mechs = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(use, stdout); return EXIT_OK;
        case 'e':
            n_eps = parse_eps_list(optarg, eps, 32);
            if (n_eps <= 0) {
                fprintf(stderr, "cmif eval-privacy: --eps wants a comma list of positive finite numbers\n");
                return EXIT_USAGE;
            }
            break;
        case 'k':
            k = (int)strtol(optarg, &end, 10);
            if (*end || k < 2 || k > 100000) {
                fprintf(stderr, "cmif eval-privacy: --cluster-size must be an integer from 2 to 100000\n");
                return EXIT_USAGE;
            }
            break;
        case 's':
            errno = 0;
            seed = strtoull(optarg, &end, 0);
            if (errno || *end || end == optarg) {
                fprintf(stderr, "cmif eval-privacy: --seed wants an integer\n");
                return EXIT_USAGE;
            }
            seeded = 1;
            break;
        case 'P':
        case 'W': {
            double v = strtod(optarg, &end);
            if (*end || end == optarg || !(v >= 0 && v <= 1)) {
                fprintf(stderr, "cmif eval-privacy: --santext-%c wants a number in [0, 1]\n",
                        ch == 'P' ? 'p' : 'w');
                return EXIT_USAGE;
            }
            if (ch == 'P') st_p = v;
            else st_w = v;
            break;
        }
        case 'l':
            limit = (size_t)strtoull(optarg, &end, 10);
            if (*end || end == optarg) {
                fprintf(stderr, "cmif eval-privacy: --limit wants an integer\n");
                return EXIT_USAGE;
            }
            break;
        default:
            fprintf(stderr, "cmif eval-privacy: unknown or incomplete option '%s'\n%s",
                    argv[optind - 1], use);
            return EXIT_USAGE;
        }
    }
    if (!model || !dev || !train) {
        fprintf(stderr, "cmif eval-privacy: -m, --data and --train are required\n%s", use);
        return EXIT_USAGE;
    }
    int mlist[8], n_m = 0;
    {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", mechs);
        for (char *tk = strtok(buf, ","); tk; tk = strtok(NULL, ",")) {
            int m = core_mech_parse(tk);
            if (m < 0 || m == CORE_MECH_NONE || n_m == 8) {
                fprintf(stderr, "cmif eval-privacy: unknown mechanism '%s'\n", tk);
                return EXIT_USAGE;
            }
            mlist[n_m++] = m;
        }
    }
    char err[512];
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
    if (load(train, 0, t, &tr, 0) || load(dev, 1, t, &dv, limit)) goto out;
    struct core_eval_params ep = {.cluster_size = k, .quiet = quiet, .seeded = seeded,
                                  .seed = seed, .santext_p = st_p, .santext_w = st_w,
                                  .table = e.v};
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
