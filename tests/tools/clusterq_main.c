/* clusterq: the sanitizer's token partition of a model (the groups of --unit token) built by
 * the exact greedy and by the projected greedy, side by side in one process: CPU seconds of
 * each and the projected partition's quality against the exact one.
 *   mean cos to seed  mean cosine of each cluster's members to its seed (lowest id)
 *   seed recall       per exact cluster, the share of its members found in the projected
 *                     cluster of its seed (averaged over clusters)
 *   pair recall       share of the exact partition's same-cluster pairs kept together
 * Usage: clusterq MODEL.gguf [-k K] [-p DIMS] [-c CANDIDATES] [-t OPENBLAS_THREADS]
 *        [--projected-only | --exact-only] [--dump FILE]
 * One search alone shows its peak memory under time -v; --dump writes the projected
 * partition, to compare runs (BLAS thread counts). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <cblas.h>

#include "core/cluster.h"
#include "core/embed.h"
#include "core/gguf.h"
#include "core/mech.h"
#include "core/tokenizer.h"
#include "tests/tools/clusterstat.h"

static int row_of(void *ctx, int32_t id, float *out)
{
    char err[256];
    return embed_rows_public(ctx, &id, 1, out, err, sizeof err);
}

static int rows_of(void *ctx, const int32_t *ids, size_t n, float *out)
{
    char err[256];
    return embed_rows_public(ctx, ids, n, out, err, sizeof err);
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static struct cluster *build(const char *what, int32_t nv, int dim, const uint8_t *group,
                             struct embed *e, struct cluster_params *p, double *cpu)
{
    char err[256];
    struct cluster *c;
    double t0 = cpu_seconds();
    if (cluster_build(&c, nv, dim, group, row_of, e, p, err, sizeof err)) {
        fprintf(stderr, "clusterq: %s: %s\n", what, err);
        exit(2);
    }
    *cpu = cpu_seconds() - t0;
    return c;
}

int main(int argc, char **argv)
{
    const char *model = NULL, *dump = NULL;
    int k = 20, pd = 0, cand = 0, threads = 0, proj_only = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-k") && i + 1 < argc) k = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-p") && i + 1 < argc) pd = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-c") && i + 1 < argc) cand = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc) threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--projected-only")) proj_only = 1;
        else if (!strcmp(argv[i], "--exact-only")) proj_only = -1;
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc) dump = argv[++i];
        else if (argv[i][0] != '-' && !model) model = argv[i];
        else {
            fprintf(stderr, "usage: clusterq MODEL.gguf [-k K] [-p DIMS] [-c CANDIDATES] [-t N] "
                            "[--projected-only | --exact-only] [--dump FILE]\n");
            return 2;
        }
    }
    if (!model) return 2;
    if (threads > 0) openblas_set_num_threads(threads);
    char err[256];
    struct gguf *g;
    struct tokenizer *t;
    struct embed *e;
    struct embed_options eo = {.cache_bytes = 1u << 20, .keep_mapping = 1};
    if (gguf_open(&g, model, err, sizeof err) || tok_open(&t, g, err, sizeof err) ||
        embed_open(&e, g, &eo, err, sizeof err)) {
        fprintf(stderr, "clusterq: %s\n", err);
        return 2;
    }
    int32_t nv = embed_n_vocab(e);
    int dim = embed_dim(e);
    uint8_t *role = malloc((size_t)nv), *group = malloc((size_t)nv), *stop = malloc((size_t)nv);
    mech_token_roles(t, role, group, stop);
    int32_t clustered = 0;
    for (int32_t i = 0; i < nv; i++) clustered += group[i] != 0;
    printf("model %s: %d tokens x %d, %d clustered, K = %d\n", model, (int)nv, dim,
           (int)clustered, k);

    /* For scale: the mean cosine of random pairs of clustered tokens (what a partition that
     * ignored the embeddings would give). */
    {
        int32_t *cl = malloc((size_t)clustered * sizeof *cl), nc = 0;
        for (int32_t i = 0; i < nv; i++)
            if (group[i]) cl[nc++] = i;
        float *x = malloc((size_t)dim * sizeof *x), *y = malloc((size_t)dim * sizeof *y);
        double sum = 0;
        const int pairs = 20000;
        uint64_t st = 1;
        for (int i = 0; i < pairs; i++) {
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            int32_t u = cl[(st >> 33) % (uint64_t)nc];
            st = st * 6364136223846793005ull + 1442695040888963407ull;
            int32_t v = cl[(st >> 33) % (uint64_t)nc];
            row_of(e, u, x);
            row_of(e, v, y);
            double d = 0, nx = 0, ny = 0;
            for (int t = 0; t < dim; t++) {
                d += (double)x[t] * y[t];
                nx += (double)x[t] * x[t];
                ny += (double)y[t] * y[t];
            }
            sum += nx > 0 && ny > 0 ? d / sqrt(nx * ny) : 0;
        }
        printf("random pairs: mean cos %.4f\n", sum / pairs);
        free(cl);
        free(x);
        free(y);
    }

    struct cluster_params p = {.k = k, .quiet = 1, .rows = rows_of, .proj_dim = pd,
                               .proj_cand = cand, .search = CLUSTER_SEARCH_PROJECTED};
    double tp, tx = 0;
    if (proj_only < 0) {
        p.search = CLUSTER_SEARCH_EXACT;
        struct cluster *cx = build("exact", nv, dim, group, e, &p, &tx);
        printf("exact: %.2f s CPU, mean cos to seed %.4f\n", tx, clusterstat_seed_cos(cx));
        cluster_close(cx);
        return 0;
    }
    struct cluster *cp = build("projected", nv, dim, group, e, &p, &tp);
    if (dump) {
        /* The projected partition as "token cluster" lines (seed-numbered: the cluster's
         * lowest id), to compare runs. */
        FILE *f = fopen(dump, "w");
        for (int32_t i = 0; f && i < nv; i++) {
            const int32_t *m;
            int32_t cl = cluster_of(cp, i);
            fprintf(f, "%d %d\n", (int)i, cl < 0 ? -1 : (cluster_members(cp, cl, &m), (int)m[0]));
        }
        if (f) fclose(f);
    }
    printf("projected (P = %d, C = %d): %.2f s CPU, mean cos to seed %.4f\n", pd ? pd : 64,
           cand ? cand : 256, tp, clusterstat_seed_cos(cp));
    if (!proj_only) {
        p.search = CLUSTER_SEARCH_EXACT;
        struct cluster *cx = build("exact", nv, dim, group, e, &p, &tx);
        printf("exact: %.2f s CPU, mean cos to seed %.4f\n", tx, clusterstat_seed_cos(cx));
        printf("seed recall %.4f, pair recall %.4f, CPU ratio exact/projected %.1f\n",
               clusterstat_seed_recall(cx, cp), clusterstat_pair_recall(cx, cp), tx / tp);
        cluster_close(cx);
    }
    cluster_close(cp);
    free(role);
    free(group);
    free(stop);
    embed_close(e);
    tok_close(t);
    gguf_close(g);
    return 0;
}
