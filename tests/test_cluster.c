/* tests/test_cluster: the partition is the greedy one, respects groups, is cached sealed,
 * and a tampered cache is recomputed, never trusted. */
#include "tests/testutil.h"

#include <math.h>
#include <sys/stat.h>

#include <cblas.h>
#include <sodium.h>

#include "core/cluster.h"
#include "tests/tools/clusterstat.h"

static uint64_t rng_state = 88172645463325252ull;
static double rnd(void)   /* xorshift: test data only */
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0 * 2 - 1;
}

static struct tu_mat random_mat(int n, int dim)
{
    struct tu_mat m = {n, dim, malloc((size_t)n * dim * sizeof(float))};
    assert_non_null(m.v);
    for (int i = 0; i < n * dim; i++) m.v[i] = (float)rnd();
    return m;
}

/* Straightforward greedy for comparison: lowest unassigned id, its k-1 most similar
 * unassigned tokens (ties to the lower id), exact scan every time. */
static void naive(const struct tu_mat *m, const uint8_t *group, int k, int32_t *of)
{
    int n = m->n;
    double *nv = malloc((size_t)n * m->dim * sizeof *nv);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int d = 0; d < m->dim; d++) s += (double)m->v[i * m->dim + d] * m->v[i * m->dim + d];
        s = s > 0 ? 1 / sqrt(s) : 0;
        for (int d = 0; d < m->dim; d++) nv[i * m->dim + d] = m->v[i * m->dim + d] * s;
    }
    for (int i = 0; i < n; i++) of[i] = -1;
    int nc = 0;
    int *last = calloc(256, sizeof *last);
    int *lastsize = calloc(256, sizeof *lastsize);
    int *prev = calloc(256, sizeof *prev);
    for (int g = 1; g < 256; g++) prev[g] = last[g] = -1;
    for (int g = 1; g < 256; g++) {
        for (int s = 0; s < n; s++) {
            if (group[s] != g || of[s] >= 0) continue;
            of[s] = nc;
            int size = 1;
            while (size < k) {
                int best = -1;
                double bs = -2;
                for (int j = 0; j < n; j++) {
                    if (group[j] != g || of[j] >= 0) continue;
                    double d = 0;
                    for (int t = 0; t < m->dim; t++) d += nv[s * m->dim + t] * nv[j * m->dim + t];
                    if (d > bs + 1e-9) { bs = d; best = j; }
                }
                if (best < 0) break;
                of[best] = nc;
                size++;
            }
            prev[g] = last[g];
            last[g] = nc;
            lastsize[g] = size;
            nc++;
        }
        if (last[g] >= 0 && lastsize[g] == 1 && prev[g] >= 0)
            for (int i = 0; i < n; i++) if (of[i] == last[g]) of[i] = prev[g];
    }
    free(nv);
    free(last);
    free(lastsize);
    free(prev);
}

/* Same partition up to cluster numbering. */
static void same_partition(const struct cluster *c, const int32_t *of, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            int a = cluster_of(c, i) >= 0 && cluster_of(c, i) == cluster_of(c, j);
            int b = of[i] >= 0 && of[i] == of[j];
            if (a != b) fail_msg("tokens %d and %d: together %d, reference %d", i, j, a, b);
        }
}

static void check_structure(const struct cluster *c, const uint8_t *group, int n, int k)
{
    int seen = 0;
    for (int32_t cl = 0; cl < cluster_count(c); cl++) {
        const int32_t *m;
        int sz = cluster_members(c, cl, &m);
        assert_true(sz >= 2 && sz <= k + 1);
        for (int i = 0; i < sz; i++) {
            assert_int_equal(cluster_of(c, m[i]), cl);
            assert_int_equal(group[m[i]], group[m[0]]);
            if (i) assert_true(m[i] > m[i - 1]);
        }
        seen += sz;
    }
    int want = 0;
    for (int i = 0; i < n; i++) {
        want += group[i] != 0;
        if (!group[i]) assert_int_equal(cluster_of(c, i), -1);
    }
    assert_int_equal(seen, want);
}

/* cluster_sims: each clustered token's cosines to its cluster, in member order. */
static void check_sims(const struct cluster *c, const struct tu_mat *m)
{
    for (int32_t id = 0; id < m->n; id++) {
        int n;
        const float *s = cluster_sims(c, id, &n);
        if (cluster_of(c, id) < 0) {
            assert_null(s);
            continue;
        }
        const int32_t *mem;
        assert_int_equal(cluster_members(c, cluster_of(c, id), &mem), n);
        assert_non_null(s);
        for (int i = 0; i < n; i++) {
            double d = 0, na = 0, nb = 0;
            for (int t = 0; t < m->dim; t++) {
                double x = m->v[id * m->dim + t], y = m->v[mem[i] * m->dim + t];
                d += x * y;
                na += x * x;
                nb += y * y;
            }
            assert_true(fabs(s[i] - d / sqrt(na * nb)) < 1e-5);
        }
    }
}

static void test_matches_naive_greedy(void **state)
{
    (void)state;
    /* Big enough that neighbour lists are refreshed and exact scans happen. */
    const int n = 700, dim = 12, k = 7;
    struct tu_mat m = random_mat(n, dim);
    uint8_t *group = malloc(n);
    for (int i = 0; i < n; i++) group[i] = i % 50 == 3 ? 0 : (i % 9 == 0 ? 2 : 1);
    struct cluster *c;
    char err[256];
    struct cluster_params p = {.k = k, .quiet = 1};
    assert_int_equal(cluster_build(&c, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    check_structure(c, group, n, k);
    int32_t *of = malloc(n * sizeof *of);
    naive(&m, group, k, of);
    same_partition(c, of, n);
    check_sims(c, &m);
    assert_int_equal(cluster_from_cache(c), 0);
    cluster_close(c);
    free(of);
    free(group);
    free(m.v);
}

static void test_recovers_planted_groups(void **state)
{
    (void)state;
    /* Three tight bundles of 20 around orthogonal directions, interleaved ids. */
    const int n = 60, dim = 8, k = 20;
    struct tu_mat m = {n, dim, calloc((size_t)n * dim, sizeof(float))};
    uint8_t group[60];
    for (int i = 0; i < n; i++) {
        for (int d = 0; d < dim; d++) m.v[i * dim + d] = (float)(0.01 * rnd());
        m.v[i * dim + i % 3] += 1.0f;
        group[i] = 1;
    }
    struct cluster *c;
    char err[256];
    struct cluster_params p = {.k = k, .quiet = 1};
    assert_int_equal(cluster_build(&c, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    assert_int_equal(cluster_count(c), 3);
    for (int i = 0; i < n; i++) assert_int_equal(cluster_of(c, i), cluster_of(c, i % 3));
    cluster_close(c);
    free(m.v);
}

static void test_remainder(void **state)
{
    (void)state;
    char err[256];
    struct cluster_params p = {.k = 20, .quiet = 1};
    /* n, clusters, largest, smallest */
    int sizes[][4] = {{41, 2, 21, 20}, {45, 3, 20, 5}, {40, 2, 20, 20}};
    for (int t = 0; t < 3; t++) {
        int n = sizes[t][0];
        struct tu_mat m = random_mat(n, 6);
        uint8_t group[64];
        memset(group, 1, sizeof group);
        struct cluster *c;
        assert_int_equal(cluster_build(&c, n, 6, group, tu_mat_row, &m, &p, err, sizeof err), 0);
        assert_int_equal(cluster_count(c), sizes[t][1]);
        int lo = 1 << 30, hi = 0;
        for (int cl = 0; cl < cluster_count(c); cl++) {
            const int32_t *mm;
            int s = cluster_members(c, cl, &mm);
            if (s < lo) lo = s;
            if (s > hi) hi = s;
        }
        assert_int_equal(hi, sizes[t][2]);
        assert_int_equal(lo, sizes[t][3]);
        check_structure(c, group, n, 20);
        cluster_close(c);
        free(m.v);
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    char err[256];
    struct cluster *c;
    struct tu_mat m = random_mat(10, 4);
    uint8_t group[10];
    memset(group, 1, sizeof group);
    struct cluster_params p = {.k = 1, .quiet = 1};
    assert_int_equal(cluster_build(&c, 10, 4, group, tu_mat_row, &m, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "cluster size"));
    p.k = 3;
    assert_int_equal(cluster_build(&c, 0, 4, group, tu_mat_row, &m, &p, err, sizeof err), -1);
    m.v[5] = NAN;
    assert_int_equal(cluster_build(&c, 10, 4, group, tu_mat_row, &m, &p, err, sizeof err), -1);
    assert_non_null(strstr(err, "not finite"));
    free(m.v);
}

static char *cache_file(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %.400s/clusters-*.bin 2>/dev/null | head -1", dir);
    FILE *p = popen(cmd, "r");
    static char line[512];
    line[0] = 0;
    if (p) {
        if (!fgets(line, sizeof line, p)) line[0] = 0;
        pclose(p);
    }
    line[strcspn(line, "\n")] = 0;
    return line[0] ? line : NULL;
}

/* Rewrites the sealed cache at path as one cluster per clustered token, sealed under the
 * user's secret like cluster.c does (layout: magic, nonce, secretbox of payload magic, id,
 * n_vocab cluster ids, then count^2 similarities per cluster). */
static void forge_singletons(const char *path, const char *keypath, int n)
{
    unsigned char master[crypto_kdf_KEYBYTES], seal[crypto_secretbox_KEYBYTES];
    size_t kl;
    char *k = tu_read_all(keypath, &kl);
    assert_int_equal(kl, sizeof master);
    memcpy(master, k, sizeof master);
    free(k);
    crypto_kdf_derive_from_key(seal, sizeof seal, 1, "cmifclus", master);
    size_t len;
    unsigned char *buf = (unsigned char *)tu_read_all(path, &len);
    const size_t nb = crypto_secretbox_NONCEBYTES, mb = crypto_secretbox_MACBYTES;
    size_t plen = len - 8 - nb - mb;
    unsigned char *plain = malloc(plen);
    assert_int_equal(crypto_secretbox_open_easy(plain, buf + 8 + nb, len - 8 - nb, buf + 8, seal), 0);
    size_t base = 40 + 4 * (size_t)n;
    int32_t next = 0;
    for (int i = 0; i < n; i++) {
        unsigned char *q = plain + 40 + 4 * (size_t)i;
        int32_t of = (int32_t)((uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                               (uint32_t)q[3] << 24);
        if (of < 0) continue;
        uint32_t v = (uint32_t)next++;
        q[0] = (unsigned char)v; q[1] = (unsigned char)(v >> 8);
        q[2] = (unsigned char)(v >> 16); q[3] = (unsigned char)(v >> 24);
    }
    size_t nplen = base + 4 * (size_t)next;   /* one 1x1 similarity per cluster */
    unsigned char *np = malloc(nplen);
    memcpy(np, plain, base);
    float one = 1.0f;
    for (int32_t i = 0; i < next; i++) memcpy(np + base + 4 * (size_t)i, &one, 4);
    size_t flen = 8 + nb + mb + nplen;
    unsigned char *out = malloc(flen);
    memcpy(out, buf, 8);
    randombytes_buf(out + 8, nb);
    crypto_secretbox_easy(out + 8 + nb, np, nplen, out + 8, seal);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(out, 1, flen, f), flen);
    fclose(f);
    free(out);
    free(np);
    free(plain);
    free(buf);
}

static void test_cache(void **state)
{
    (void)state;
    char cdir[4200];
    char *dir = tu_tmpfile("sub/cmif", cdir, sizeof cdir);
    const int n = 300, dim = 10;
    struct tu_mat m = random_mat(n, dim);
    uint8_t *group = malloc(n);
    /* Two groups, the second (like byte tokens) with low ids: cluster numbering is not in
     * id order across groups. */
    for (int i = 0; i < n; i++) group[i] = i < 5 ? 0 : i < 60 ? 2 : 1;
    unsigned char fp[32];
    memset(fp, 0xab, sizeof fp);
    struct cluster_params p = {.k = 10, .quiet = 1, .cache_dir = cdir, .fingerprint = fp};
    char err[256];
    struct cluster *a, *b, *c2;
    assert_int_equal(cluster_build(&a, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    assert_int_equal(cluster_from_cache(a), 0);
    char *f = cache_file(cdir);
    assert_non_null(f);
    char path[4400];
    snprintf(path, sizeof path, "%s", f);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 077, 0);
    char key[4400];
    snprintf(key, sizeof key, "%s/secret.key", cdir);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    /* Second build: from the cache, identical. */
    assert_int_equal(cluster_build(&b, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    assert_int_equal(cluster_from_cache(b), 1);
    for (int i = 0; i < n; i++) assert_int_equal(cluster_of(a, i), cluster_of(b, i));
    check_sims(b, &m);
    cluster_close(b);

    /* A different fingerprint or K does not use it. */
    unsigned char fp2[32];
    memset(fp2, 0xac, sizeof fp2);
    p.fingerprint = fp2;
    assert_int_equal(cluster_build(&b, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    assert_int_equal(cluster_from_cache(b), 0);
    cluster_close(b);
    p.fingerprint = fp;

    /* With centroids kept: a cache of its own (the other layout is not taken for it), and
     * the centroids come back from it bit for bit. */
    p.centroids = 1;
    assert_int_equal(cluster_build(&b, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    assert_int_equal(cluster_from_cache(b), 0);
    assert_int_equal(cluster_build(&c2, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    assert_int_equal(cluster_from_cache(c2), 1);
    assert_int_equal(cluster_count(b), cluster_count(c2));
    for (int32_t c = 0; c < cluster_count(b); c++) {
        assert_non_null(cluster_centroid(b, c));
        assert_memory_equal(cluster_centroid(b, c), cluster_centroid(c2, c), dim * sizeof(float));
    }
    assert_null(cluster_centroid(a, 0));
    cluster_close(b);
    cluster_close(c2);
    p.centroids = 0;   /* path still names the first cache */

    /* Flip one bit of the sealed file: detected, recomputed, same partition. */
    FILE *fh = fopen(path, "r+b");
    assert_non_null(fh);
    fseek(fh, 60, SEEK_SET);
    int ch = fgetc(fh);
    fseek(fh, 60, SEEK_SET);
    fputc(ch ^ 1, fh);
    fclose(fh);
    assert_int_equal(cluster_build(&c2, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    assert_int_equal(cluster_from_cache(c2), 0);
    for (int i = 0; i < n; i++) assert_int_equal(cluster_of(a, i), cluster_of(c2, i));
    cluster_close(c2);
    /* ... and rewritten, so the next run reads it again. */
    assert_int_equal(cluster_build(&c2, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    assert_int_equal(cluster_from_cache(c2), 1);
    cluster_close(c2);

    /* A cache forged by the same user (who can read the secret), sealed correctly but with
     * one-token clusters, is refused with a clear note and recomputed. */
    forge_singletons(path, key, n);
    assert_int_equal(cluster_build(&c2, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    assert_int_equal(cluster_from_cache(c2), 0);
    assert_non_null(strstr(cluster_cache_note(c2), "refused"));
    for (int i = 0; i < n; i++) assert_int_equal(cluster_of(a, i), cluster_of(c2, i));
    cluster_close(c2);

    /* A secret readable by others is refused: the cache is not used (still builds). */
    assert_int_equal(chmod(key, 0644), 0);
    assert_int_equal(cluster_build(&c2, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    assert_int_equal(cluster_from_cache(c2), 0);
    assert_non_null(strstr(cluster_cache_note(c2), "private"));
    cluster_close(c2);

    cluster_close(a);
    free(group);
    free(m.v);
    tu_rmtree(dir);
}

/* A structured table like an embedding table's: n rows around n/k random centres (ids
 * interleaved) that span only a few directions (a decaying spectrum, as real tables have),
 * each row its centre plus noise in every dimension. */
static struct tu_mat planted_mat(int n, int dim, int k)
{
    struct tu_mat m = {n, dim, malloc((size_t)n * dim * sizeof(float))};
    assert_non_null(m.v);
    int nc = n / k, span = dim / 6;
    float *ctr = calloc((size_t)nc * dim, sizeof *ctr);
    for (int i = 0; i < nc; i++)
        for (int d = 0; d < span; d++) ctr[(size_t)i * dim + d] = (float)rnd();
    for (int i = 0; i < n; i++)
        for (int d = 0; d < dim; d++)
            m.v[(size_t)i * dim + d] = ctr[(size_t)((i * 7) % nc) * dim + d] + 0.3f * (float)rnd();
    free(ctr);
    return m;
}

/* Every cluster of a one-group partition has K members, but the last (the remainder, or
 * K + 1 when K + 1 were left). */
static void check_sizes(const struct cluster *c, int n, int k)
{
    int small = 0;
    for (int32_t cl = 0; cl < cluster_count(c); cl++) {
        const int32_t *m;
        int sz = cluster_members(c, cl, &m);
        if (sz != k) small++;
    }
    int rem = n % k;
    assert_int_equal(cluster_count(c), n / k + (rem > 1 ? 1 : 0));
    assert_int_equal(small, rem == 0 ? 0 : 1);
}

static void test_projected(void **state)
{
    (void)state;
    const int n = 4001, dim = 96, k = 20;
    struct tu_mat m = planted_mat(n, dim, k);
    uint8_t *group = malloc(n);
    memset(group, 1, n);
    char err[256];
    struct cluster *x, *a, *b;
    struct cluster_params p = {.k = k, .quiet = 1, .search = CLUSTER_SEARCH_EXACT};
    assert_int_equal(cluster_build(&x, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    p.search = CLUSTER_SEARCH_PROJECTED;
    p.proj_dim = 32;
    p.proj_cand = 100;
    assert_int_equal(cluster_build(&a, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    check_structure(a, group, n, k);
    check_sizes(a, n, k);
    check_sims(a, &m);

    /* A fixed function of the table: the same partition again, and with another number of
     * BLAS threads. */
    for (int th = 1; th <= 2; th++) {
        openblas_set_num_threads(th);
        assert_int_equal(cluster_build(&b, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
        for (int i = 0; i < n; i++) assert_int_equal(cluster_of(a, i), cluster_of(b, i));
        cluster_close(b);
    }

    /* Quality: the mean cosine of members to their seed within 0.03 of the exact greedy's
     * (0.020 below it here), and most of each exact cluster (83% here) found in its seed's
     * projected cluster. */
    double qx = clusterstat_seed_cos(x), qa = clusterstat_seed_cos(a);
    double rec = clusterstat_seed_recall(x, a);
    print_message("projected: mean cos to seed %.4f (exact %.4f), seed recall %.3f\n", qa, qx, rec);
    assert_true(qa >= qx - 0.03);
    assert_true(rec >= 0.75);

    /* With candidates for every token, the projected greedy is the exact one. */
    p.proj_cand = n;
    assert_int_equal(cluster_build(&b, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j += 97)
            assert_int_equal(cluster_of(b, i) == cluster_of(b, j), cluster_of(x, i) == cluster_of(x, j));
    cluster_close(b);
    cluster_close(x);
    cluster_close(a);
    free(group);
    free(m.v);
}

/* Groups, the remainder rules and the exact path for small n, under the projected search. */
static void test_projected_small(void **state)
{
    (void)state;
    char err[256];
    const int n = 700, dim = 12, k = 7;
    struct tu_mat m = random_mat(n, dim);
    uint8_t *group = malloc(n);
    for (int i = 0; i < n; i++) group[i] = i % 50 == 3 ? 0 : (i % 9 == 0 ? 2 : 1);
    struct cluster *c;
    struct cluster_params p = {.k = k, .quiet = 1, .search = CLUSTER_SEARCH_PROJECTED,
                               .proj_dim = 4, .proj_cand = 16};
    assert_int_equal(cluster_build(&c, n, dim, group, tu_mat_row, &m, &p, err, sizeof err), 0);
    check_structure(c, group, n, k);
    check_sims(c, &m);
    cluster_close(c);
    free(group);
    free(m.v);
    uint8_t g1[64];
    memset(g1, 1, sizeof g1);
    p.k = 20;
    for (int nn = 40; nn <= 45; nn++) {
        struct tu_mat r = random_mat(nn, 6);
        assert_int_equal(cluster_build(&c, nn, 6, g1, tu_mat_row, &r, &p, err, sizeof err), 0);
        check_structure(c, g1, nn, 20);
        check_sizes(c, nn, 20);
        cluster_close(c);
        free(r.v);
    }
}

/* One build with p, which must (want 1) or must not (0) come from the cache. */
static void from_cache(int n, int dim, const uint8_t *group, struct tu_mat *m,
                       const struct cluster_params *p, int want)
{
    char err[256];
    struct cluster *c;
    assert_int_equal(cluster_build(&c, n, dim, group, tu_mat_row, m, p, err, sizeof err), 0);
    assert_int_equal(cluster_from_cache(c), want);
    cluster_close(c);
}

/* A cache written by one search is never read as the other's partition. */
static void test_cache_names_search(void **state)
{
    (void)state;
    char cdir[4200];
    char *dir = tu_tmpfile("sub/cmif", cdir, sizeof cdir);
    const int n = 600, dim = 16;
    struct tu_mat m = planted_mat(n, dim, 10);
    uint8_t *group = malloc(n);
    memset(group, 1, n);
    unsigned char fp[32];
    memset(fp, 0x5a, sizeof fp);
    struct cluster_params p = {.k = 10, .quiet = 1, .cache_dir = cdir, .fingerprint = fp,
                               .search = CLUSTER_SEARCH_EXACT};
    from_cache(n, dim, group, &m, &p, 0);
    /* The automatic choice for a group this small is the exact search: same cache. */
    p.search = CLUSTER_SEARCH_AUTO;
    from_cache(n, dim, group, &m, &p, 1);
    p.search = CLUSTER_SEARCH_PROJECTED;
    p.proj_dim = 4;
    p.proj_cand = 20;
    from_cache(n, dim, group, &m, &p, 0);
    from_cache(n, dim, group, &m, &p, 1);
    /* Other projection parameters: another partition, another cache. */
    p.proj_cand = 30;
    from_cache(n, dim, group, &m, &p, 0);
    free(group);
    free(m.v);
    tu_rmtree(dir);
}

TU_MAIN(
    cmocka_unit_test(test_matches_naive_greedy),
    cmocka_unit_test(test_recovers_planted_groups),
    cmocka_unit_test(test_remainder),
    cmocka_unit_test(test_bad_input),
    cmocka_unit_test(test_cache),
    cmocka_unit_test(test_projected),
    cmocka_unit_test(test_projected_small),
    cmocka_unit_test(test_cache_names_search))
