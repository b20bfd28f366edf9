/* core/cluster: greedy nearest-neighbour partition of the vocabulary (see cluster.h).
 *
 * The on-disk cache. The partition is computed from public model weights, so it is not a
 * secret; what matters is that nobody substitutes a different one (say, one that puts a
 * sensitive token in a cluster of its own, which would send it unchanged). The cache is
 * therefore sealed with crypto_secretbox (XSalsa20-Poly1305) under a key derived with
 * crypto_kdf from a per-user secret file (32 random bytes, mode 0600, created on first use
 * in the cache directory). A key living only in this process would make the cache useless
 * across runs. What this protects: a cache file written, swapped or corrupted by anyone who
 * cannot read that secret (other users with write access to a shared cache directory,
 * restored backups, disk corruption). What it does not protect: a process running as the
 * same user, which can read the secret. Every cache is also validated structurally; on any
 * failure the partition is recomputed, never trusted. */
#include "core/util.h"
#include "core/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cblas.h>
#include <sodium.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

struct cluster {
    int32_t n_vocab, n_clusters;
    int k;
    int32_t *of;          /* n_vocab: cluster id or -1 */
    int32_t *start;       /* n_clusters + 1 offsets into members */
    int32_t *members;     /* clustered ids, cluster by cluster, ascending inside each */
    int32_t n_members, cap_clusters;
    float *sim;           /* per cluster of size n, n x n cosines in member order */
    size_t *sim_off;      /* n_clusters + 1 offsets into sim */
    size_t n_sim, cap_sim;
    int dim, want_cent;   /* centroids kept (cluster_params.centroids) */
    float *cent;          /* n_clusters x dim, when want_cent */
    size_t cap_cent;      /* clusters cent has room for */
    unsigned char *blob;  /* the cache file's buffer, when sim and cent point into it */
    int from_cache;
    char note[8400];       /* why the cache was not used (paths can be long) */
};

/* ---------------------------------------------------------------------------------------
 * Greedy construction for one group */

struct nbr {
    float s;
    int32_t j;       /* position in the active matrix */
};

/* a before b: higher similarity, ties to the lower position (= lower token id). */
static int better(float sa, int32_t ja, float sb, int32_t jb)
{
    return sa > sb || (sa == sb && ja < jb);
}

static void top_insert(struct nbr *list, int *len, int cap, float s, int32_t j)
{
    int n = *len;
    if (n == cap && !better(s, j, list[n - 1].s, list[n - 1].j)) return;
    int at = n < cap ? n : cap - 1;
    while (at > 0 && better(s, j, list[at - 1].s, list[at - 1].j)) {
        list[at] = list[at - 1];
        at--;
    }
    list[at].s = s;
    list[at].j = j;
    if (n < cap) *len = n + 1;
}

struct member {
    int32_t id;
    const float *row;
};

static int cmp_member(const void *x, const void *y)
{
    int32_t a = ((const struct member *)x)->id, b = ((const struct member *)y)->id;
    return (a > b) - (a < b);
}

static int reserve_clusters(struct cluster *c, int32_t need, char *err, size_t errlen)
{
    if (need <= c->cap_clusters) return 0;
    int32_t nc = c->cap_clusters ? c->cap_clusters : 64;
    while (nc < need) nc *= 2;
    int32_t *s = realloc(c->start, (size_t)nc * sizeof *s);
    if (s) c->start = s;
    size_t *o = realloc(c->sim_off, (size_t)nc * sizeof *o);
    if (o) c->sim_off = o;
    if (!s || !o) { snprintf(err, errlen, "cluster: out of memory"); return -1; }
    c->cap_clusters = nc;
    return 0;
}

/* Append a cluster (members sorted by id) with the cosines between its members, from their
 * normalised rows. */
static int push_cluster(struct cluster *c, struct member *m, int n, int dim, char *err,
                        size_t errlen)
{
    if (reserve_clusters(c, c->n_clusters + 2, err, errlen)) return -1;
    size_t need = c->n_sim + (size_t)n * (size_t)n;
    if (need > c->cap_sim) {
        size_t cap = c->cap_sim ? c->cap_sim : 4096;
        while (cap < need) cap *= 2;
        float *ns = realloc(c->sim, cap * sizeof *ns);
        if (!ns) { snprintf(err, errlen, "cluster: out of memory"); return -1; }
        c->sim = ns;
        c->cap_sim = cap;
    }
    qsort(m, (size_t)n, sizeof *m, cmp_member);
    int32_t at = c->n_members;
    for (int i = 0; i < n; i++) c->members[at + i] = m[i].id;
    /* Each pair once (the sum is the same either way round: same products, same order),
     * four pairs at a time so the additions do not wait on each other. */
    float *sm = c->sim + c->n_sim;
    for (int i = 0; i < n; i++) {
        const float *ri = m[i].row;
        int j = i;
        for (; j + 4 <= n; j += 4) {
            const float *r0 = m[j].row, *r1 = m[j + 1].row, *r2 = m[j + 2].row, *r3 = m[j + 3].row;
            double d0 = 0, d1 = 0, d2 = 0, d3 = 0;
            for (int t = 0; t < dim; t++) {
                double x = ri[t];
                d0 += x * r0[t];
                d1 += x * r1[t];
                d2 += x * r2[t];
                d3 += x * r3[t];
            }
            double d[4] = {d0, d1, d2, d3};
            for (int q = 0; q < 4; q++)
                sm[(size_t)i * n + j + q] = sm[(size_t)(j + q) * n + i] = (float)d[q];
        }
        for (; j < n; j++) {
            double d = 0;
            for (int t = 0; t < dim; t++) d += (double)ri[t] * m[j].row[t];
            sm[(size_t)i * n + j] = sm[(size_t)j * n + i] = (float)d;
        }
    }
    if (c->want_cent) {
        if ((size_t)c->n_clusters + 1 > c->cap_cent) {
            size_t cap = c->cap_cent ? c->cap_cent * 2 : 256;
            float *nc = realloc(c->cent, cap * (size_t)dim * sizeof *nc);
            if (!nc) { snprintf(err, errlen, "cluster: out of memory"); return -1; }
            c->cent = nc;
            c->cap_cent = cap;
        }
        /* The rows are already normalised (each one exactly as lexicon_mean scales it), so
         * their sum in member order, normalised, is lexicon_mean of the raw rows. */
        float *ce = c->cent + (size_t)c->n_clusters * dim;
        for (int t = 0; t < dim; t++) ce[t] = 0;
        for (int i = 0; i < n; i++)
            for (int t = 0; t < dim; t++) ce[t] += m[i].row[t];
        double no = 0;
        for (int t = 0; t < dim; t++) no += (double)ce[t] * ce[t];
        if (no > 0) {
            float sc = (float)(1.0 / sqrt(no));
            for (int t = 0; t < dim; t++) ce[t] *= sc;
        }
    }
    c->start[c->n_clusters] = at;
    c->sim_off[c->n_clusters] = c->n_sim;
    c->n_members += n;
    c->n_sim = need;
    c->n_clusters++;
    c->start[c->n_clusters] = c->n_members;
    c->sim_off[c->n_clusters] = c->n_sim;
    return 0;
}

/* ---------------------------------------------------------------------------------------
 * Shared by both searches */

/* The group's embedding rows into a (n x dim), each normalised to unit length. */
static int load_rows(float *a, const int32_t *ids, int32_t n, int dim, cluster_row_fn row,
                     void *ctx, const struct cluster_params *p, char *err, size_t errlen)
{
    /* Large batches: a batch reader fetches each page of the table once per batch. */
    for (int32_t i0 = 0; p->rows && i0 < n; i0 += 65536) {
        size_t cnt = (size_t)(n - i0) < 65536 ? (size_t)(n - i0) : 65536;
        if (p->rows(ctx, ids + i0, cnt, a + (size_t)i0 * dim) != 0) {
            snprintf(err, errlen, "cluster: cannot read the embedding rows of tokens %d..%d",
                     (int)ids[i0], (int)ids[i0 + (int32_t)cnt - 1]);
            return -1;
        }
    }
    for (int32_t i = 0; i < n; i++) {
        float *r = a + (size_t)i * dim;
        if (!p->rows && row(ctx, ids[i], r) != 0) {
            snprintf(err, errlen, "cluster: cannot read an embedding row");
            return -1;
        }
        double ss = 0;
        for (int d = 0; d < dim; d++) {
            if (!isfinite(r[d])) {
                snprintf(err, errlen, "cluster: embedding row of token %d is not finite", (int)ids[i]);
                return -1;
            }
            ss += (double)r[d] * r[d];
        }
        if (ss > 0) {
            float inv = (float)(1.0 / sqrt(ss));
            for (int d = 0; d < dim; d++) r[d] *= inv;
        }
    }
    return 0;
}

struct progress {
    const struct cluster_params *p;
    int32_t n;
    int show, last;
};

static void progress(struct progress *pg, int32_t assigned)
{
    int pct = (int)((int64_t)assigned * 100 / pg->n);
    if (!pg->show || pct == pg->last) return;
    const struct cluster_params *p = pg->p;
    if (p->log) {
        char msg[96];
        snprintf(msg, sizeof msg, "clustering %d tokens (K = %d): %3d%%", (int)pg->n, p->k, pct);
        p->log(p->log_ctx, msg);
    } else {
        fprintf(stderr, "\rcmif: clustering %d tokens (K = %d): %3d%%", (int)pg->n, p->k, pct);
        fflush(stderr);
    }
    pg->last = pct;
}

/* Removes the assigned rows (of row_bytes each) of the matrix m (and their entries in act),
 * keeping the order (ascending ids); returns how many are left. */
static int32_t compact(void *m, size_t row_bytes, int32_t *act, int32_t n_act,
                       const unsigned char *done)
{
    unsigned char *b = m;
    int32_t o = 0;
    for (int32_t q = 0; q < n_act; q++) {
        if (done[act[q]]) continue;
        if (o != q) memmove(b + (size_t)o * row_bytes, b + (size_t)q * row_bytes, row_bytes);
        act[o++] = act[q];
    }
    return o;
}

/* Block height of the seed-by-active similarity matrix: at most 256 rows, and at most 16M
 * similarities (64 MiB) at once. */
static int32_t block_rows(int32_t n)
{
    int32_t bh = (int32_t)((16u << 20) / (uint32_t)n);
    if (bh > 256) bh = 256;
    if (bh < 1) bh = 1;
    return bh;
}

/* A seed and its nearest neighbours (top[i].j: rows of a; their local indices are
 * local[j], or j itself when local is NULL) marked assigned and appended as one cluster, by
 * token id; pick has room for nt + 1 members. The cluster's size, or -1. */
static int take(struct cluster *c, struct member *pick, int32_t seed, const float *seed_row,
                const struct nbr *top, int nt, const int32_t *local, const float *a,
                unsigned char *done, const int32_t *ids, int dim, char *err, size_t errlen)
{
    pick[0].id = seed;
    pick[0].row = seed_row;
    for (int i = 0; i < nt; i++) {
        pick[i + 1].id = local ? local[top[i].j] : top[i].j;
        pick[i + 1].row = a + (size_t)top[i].j * dim;
    }
    for (int i = 0; i <= nt; i++) {
        done[pick[i].id] = 1;
        pick[i].id = ids[pick[i].id];
    }
    return push_cluster(c, pick, nt + 1, dim, err, errlen) ? -1 : nt + 1;
}

/* ---------------------------------------------------------------------------------------
 * Exact greedy for one group
 *
 * Seeds are taken in blocks: the B lowest-id unassigned tokens are the first B rows of the
 * compacted matrix of unassigned rows, so one SGEMM gives each of them its exact similarity
 * to every unassigned token; the block's seeds are then processed in id order, skipping
 * tokens an earlier seed took and excluding tokens assigned meanwhile. That is exactly the
 * sequential greedy, at the cost of one row of similarities per token, against a shrinking
 * set (about V^2·dim/2 flops in all). */
static int build_group_exact(struct cluster *c, const int32_t *ids, int32_t n, int dim,
                             cluster_row_fn row, void *ctx, const struct cluster_params *p,
                             char *err, size_t errlen)
{
    int k = p->k;
    int rc = -1;
    struct progress pg = {p, n, !p->quiet && n >= 8192, -1};
    struct member *pick = malloc(((size_t)k + 1) * sizeof *pick);
    struct nbr *top = malloc(((size_t)k + 1) * sizeof *top);
    float *a = util_big_alloc((size_t)n * (size_t)dim * sizeof(float));
    int32_t *act = malloc((size_t)n * sizeof *act);     /* row -> local index */
    unsigned char *done = calloc((size_t)n, 1);
    int32_t bh = block_rows(n);
    float *s = util_big_alloc((size_t)bh * (size_t)n * sizeof(float));
    if (!pick || !top || !a || !act || !done || !s) {
        snprintf(err, errlen, "cluster: out of memory for %d rows of %d floats", (int)n, dim);
        goto out;
    }
    if (load_rows(a, ids, n, dim, row, ctx, p, err, errlen)) goto out;
    for (int32_t i = 0; i < n; i++) act[i] = i;
    int32_t n_act = n, assigned = 0;
    while (assigned < n) {
        n_act = compact(a, (size_t)dim * sizeof(float), act, n_act, done);
        int32_t b = n_act < bh ? n_act : bh;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, n_act, dim, 1.0f, a, dim, a, dim,
                    0.0f, s, n_act);
        for (int32_t r = 0; r < b; r++) {
            if (done[act[r]]) continue;
            const float *sr = s + (size_t)r * n_act;
            /* When exactly K+1 tokens are left, the seed takes them all: a last cluster of
             * one token would give that token no privacy. */
            int want = n - assigned == k + 1 ? k : k - 1;
            int nt = 0;
            for (int32_t j = 0; j < n_act && want > 0; j++) {
                if (j == r || done[act[j]]) continue;
                if (nt == want && sr[j] < top[nt - 1].s) continue;
                top_insert(top, &nt, want, sr[j], j);
            }
            int np = take(c, pick, act[r], a + (size_t)r * dim, top, nt, act, a, done, ids, dim,
                          err, errlen);
            if (np < 0) goto out;
            assigned += np;
        }
        progress(&pg, assigned);
    }
    if (pg.show && !p->log) fputc('\n', stderr);
    rc = 0;
out:
    free(pick);
    free(top);
    free(a);
    free(act);
    free(done);
    free(s);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Projected greedy for one large group
 *
 * The same greedy (lowest-id unassigned seed, then its K-1 most similar unassigned tokens,
 * ties to the lower id), except that a seed's neighbours are chosen among C candidates: the
 * C unassigned tokens most similar to it in a P-dimensional projection of the rows, re-ranked
 * by their exact cosine in full dimension. The projection is a sparse random sign projection
 * drawn from a fixed seed (see project_rows): the partition is a function of the embedding
 * table alone, the same on every run and at any BLAS thread count. Cost: V^2·P/(2K) for the
 * search instead of V^2·dim/(2K), plus 4·V·dim additions for the projection and V/K·C·dim
 * for the re-ranking. (A principal projection of the table did no better here.) Whenever C
 * or fewer tokens are left,
 * the candidates are all of them and the step is the exact one. */

#define PROJ_DIM 64             /* P: dimensions of the candidate search */
#define PROJ_CAND 256           /* C: candidates re-ranked exactly per seed */
#define PROJ_MIN_GROUP 32768    /* smaller groups: the exact greedy (a second or less) */
#define PROJ_NNZ 4              /* coordinates each input dimension is added into */
#define PROJ_SEED 0x636d69662d706361ull

/* At most dim, and at most 4096 (coordinates are numbered in 16 bits). */
static int proj_dim(const struct cluster_params *p, int dim)
{
    int d = p->proj_dim > 0 ? p->proj_dim : PROJ_DIM;
    if (d > 4096) d = 4096;
    return d < dim ? d : dim;
}

/* At least K: a seed's cluster is filled from its candidates. */
static int proj_cand(const struct cluster_params *p)
{
    int c = p->proj_cand > 0 ? p->proj_cand : PROJ_CAND;
    return c > p->k ? c : p->k;
}

/* Whether a group of n tokens is clustered by the projected search. */
static int use_projection(const struct cluster_params *p, int32_t n, int dim)
{
    if (p->search == CLUSTER_SEARCH_EXACT) return 0;
    if (p->search == CLUSTER_SEARCH_PROJECTED) return 1;
    return n >= PROJ_MIN_GROUP && dim >= 4 * PROJ_DIM;
}

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The projection: a fixed seeded sparse random sign projection (each input dimension added,
 * with a random sign, into PROJ_NNZ of the pd coordinates), normalised per row and rounded to
 * multiples of 1/4096 (int16), so the search ranks by projected cosine. The sums are plain C
 * in a fixed order and the search's dot products are exact integers: a blocked BLAS may sum
 * in an order that depends on its thread count, and the partition must not. Rows are pw
 * int16 wide (pd rounded up to 8, zero-padded). */
static int project_rows(const float *a, int32_t n, int dim, int pd, int pw, int16_t *pr,
                        char *err, size_t errlen)
{
    size_t nz = (size_t)dim * PROJ_NNZ;
    uint16_t *to = malloc(nz * sizeof *to);
    float *sg = malloc(nz * sizeof *sg), *o = malloc((size_t)pd * sizeof *o);
    if (!to || !sg || !o) {
        free(to);
        free(sg);
        free(o);
        snprintf(err, errlen, "cluster: out of memory for the projection (dim %d)", dim);
        return -1;
    }
    uint64_t st = PROJ_SEED;
    for (size_t i = 0; i < nz; i++) {
        uint64_t r = splitmix(&st);
        to[i] = (uint16_t)((r >> 32) % (uint64_t)pd);
        sg[i] = r & 1 ? 1.0f : -1.0f;
    }
    for (int32_t i = 0; i < n; i++) {
        const float *x = a + (size_t)i * dim;
        int16_t *q = pr + (size_t)i * pw;
        for (int j = 0; j < pd; j++) o[j] = 0;
        for (int d = 0; d < dim; d++)
            for (int t = 0; t < PROJ_NNZ; t++)
                o[to[(size_t)d * PROJ_NNZ + t]] += sg[(size_t)d * PROJ_NNZ + t] * x[d];
        double ss = 0;
        for (int j = 0; j < pd; j++) ss += (double)o[j] * o[j];
        double sc = ss > 0 ? 4096.0 / sqrt(ss) : 0;
        for (int j = 0; j < pw; j++) q[j] = j < pd ? (int16_t)lrint(o[j] * sc) : 0;
    }
    free(to);
    free(sg);
    free(o);
    return 0;
}

/* Exact dot product of two int16 rows of n (a multiple of 8). The rows are unit vectors
 * scaled by 4096, so no partial sum comes near the int32 range. */
static int32_t dot16(const int16_t *x, const int16_t *y, int n)
{
#ifdef __SSE2__
    __m128i acc = _mm_setzero_si128();
    for (int i = 0; i < n; i += 8)
        acc = _mm_add_epi32(acc, _mm_madd_epi16(_mm_loadu_si128((const __m128i *)(const void *)(x + i)),
                                                _mm_loadu_si128((const __m128i *)(const void *)(y + i))));
    acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0x4e));
    acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0xb1));
    return _mm_cvtsi128_si32(acc);
#else
    int32_t s = 0;
    for (int i = 0; i < n; i++) s += (int32_t)x[i] * y[i];
    return s;
#endif
}

/* s[r * n_act + j] = projected similarity of rows r < b and j < n_act, column by column so
 * that the b seed rows stay in the first-level cache. */
static void proj_sims(const int16_t *pr, int pw, int32_t b, int32_t n_act, float *s)
{
    for (int32_t j = 0; j < n_act; j++) {
        const int16_t *y = pr + (size_t)j * pw;
        for (int32_t r = 0; r < b; r++)
            s[(size_t)r * n_act + j] = (float)dot16(pr + (size_t)r * pw, y, pw);
    }
}

/* A bounded set of the best (s, j) pairs: a heap with the worst at the root. */
static void heap_offer(struct nbr *h, int *len, int cap, float s, int32_t j)
{
    int n = *len, at;
    if (n < cap) {
        at = n++;
        while (at > 0) {
            int up = (at - 1) / 2;
            if (!better(h[up].s, h[up].j, s, j)) break;
            h[at] = h[up];
            at = up;
        }
        h[at].s = s;
        h[at].j = j;
        *len = n;
        return;
    }
    if (!better(s, j, h[0].s, h[0].j)) return;
    at = 0;
    for (;;) {
        int l = 2 * at + 1, w = l;
        if (l >= n) break;
        if (l + 1 < n && better(h[l].s, h[l].j, h[l + 1].s, h[l + 1].j)) w = l + 1;
        if (!better(s, j, h[w].s, h[w].j)) break;
        h[at] = h[w];
        at = w;
    }
    h[at].s = s;
    h[at].j = j;
}

static int build_group_projected(struct cluster *c, const int32_t *ids, int32_t n, int dim,
                                 cluster_row_fn row, void *ctx, const struct cluster_params *p,
                                 char *err, size_t errlen)
{
    int k = p->k, pd = proj_dim(p, dim), nc = proj_cand(p), pw = (pd + 7) / 8 * 8;
    int rc = -1;
    struct progress pg = {p, n, !p->quiet && n >= 8192, -1};
    struct member *pick = malloc(((size_t)k + 1) * sizeof *pick);
    struct nbr *top = malloc(((size_t)k + 1) * sizeof *top);
    struct nbr *cand = malloc((size_t)nc * sizeof *cand);
    float *a = util_big_alloc((size_t)n * (size_t)dim * sizeof(float));  /* never compacted */
    int16_t *pr = util_big_alloc((size_t)n * (size_t)pw * sizeof *pr);   /* compacted */
    int32_t *act = malloc((size_t)n * sizeof *act);     /* row of pr -> local index */
    unsigned char *done = calloc((size_t)n, 1);
    int32_t bh = block_rows(n);
    float *s = util_big_alloc((size_t)bh * (size_t)n * sizeof(float));
    if (!pick || !top || !cand || !a || !pr || !act || !done || !s) {
        snprintf(err, errlen, "cluster: out of memory for %d rows of %d floats", (int)n, dim);
        goto out;
    }
    if (load_rows(a, ids, n, dim, row, ctx, p, err, errlen)) goto out;
    if (project_rows(a, n, dim, pd, pw, pr, err, errlen)) goto out;
    for (int32_t i = 0; i < n; i++) act[i] = i;
    int32_t n_act = n, assigned = 0;
    while (assigned < n) {
        n_act = compact(pr, (size_t)pw * sizeof *pr, act, n_act, done);
        int32_t b = n_act < bh ? n_act : bh;
        proj_sims(pr, pw, b, n_act, s);
        for (int32_t r = 0; r < b; r++) {
            int32_t seed = act[r];
            if (done[seed]) continue;
            const float *sr = s + (size_t)r * n_act;
            int want = n - assigned == k + 1 ? k : k - 1;
            int nh = 0;
            int32_t j = 0;
            /* Once the heap is full, most of the row falls below its worst: test 16 at a
             * time (a loop the compiler vectorises) and look closer only at a hit. */
            for (; j < n_act && nh < nc; j++)
                if (j != r && !done[act[j]]) heap_offer(cand, &nh, nc, sr[j], j);
            for (; j < n_act; j += 16) {
                int32_t e = n_act - j < 16 ? n_act : j + 16;
                float lim = cand[0].s;
                int hit = 0;
                if (e == j + 16)
                    for (int t = 0; t < 16; t++) hit |= sr[j + t] >= lim;
                else
                    hit = 1;
                if (!hit) continue;
                for (int32_t i = j; i < e; i++) {
                    if (sr[i] < cand[0].s || i == r || done[act[i]]) continue;
                    heap_offer(cand, &nh, nc, sr[i], i);
                }
            }
            /* Exact re-ranking; positions in act ascend with the ids, so ties go to the
             * lower id as in the exact greedy. */
            const float *rs = a + (size_t)seed * dim;
            int nt = 0;
            for (int i = 0; i < nh && want > 0; i++) {
                int32_t li = act[cand[i].j];
                float e = cblas_sdot(dim, rs, 1, a + (size_t)li * dim, 1);
                top_insert(top, &nt, want, e, li);
            }
            int np = take(c, pick, seed, rs, top, nt, NULL, a, done, ids, dim, err, errlen);
            if (np < 0) goto out;
            assigned += np;
        }
        progress(&pg, assigned);
    }
    if (pg.show && !p->log) fputc('\n', stderr);
    rc = 0;
out:
    free(pick);
    free(top);
    free(cand);
    free(a);
    free(pr);
    free(act);
    free(done);
    free(s);
    return rc;
}

static int build_group(struct cluster *c, const int32_t *ids, int32_t n, int dim,
                       cluster_row_fn row, void *ctx, const struct cluster_params *p, char *err,
                       size_t errlen)
{
    return use_projection(p, n, dim)
               ? build_group_projected(c, ids, n, dim, row, ctx, p, err, errlen)
               : build_group_exact(c, ids, n, dim, row, ctx, p, err, errlen);
}


/* ---------------------------------------------------------------------------------------
 * Cache */

#define CACHE_MAGIC "CMIFCLC1"
#define PAYLOAD_MAGIC "CMIFCL01"

struct cache_ctx {
    unsigned char seal[crypto_secretbox_KEYBYTES];
    unsigned char id[32];      /* fingerprint + K + groups + version */
    char path[4096];
};

static int cache_prepare(struct cache_ctx *cc, const struct cluster_params *p, int32_t n_vocab,
                         int dim, const uint8_t *group, char *note, size_t notelen)
{
    if (util_mkdirs(p->cache_dir)) {
        snprintf(note, notelen, "cannot create cache directory %s: %s", p->cache_dir, strerror(errno));
        return -1;
    }
    unsigned char master[crypto_kdf_KEYBYTES];
    if (util_user_secret(p->cache_dir, master, note, notelen)) return -1;
    unsigned char namekey[32];
    crypto_kdf_derive_from_key(cc->seal, sizeof cc->seal, 1, "cmifclus", master);
    crypto_kdf_derive_from_key(namekey, sizeof namekey, 2, "cmifclus", master);
    sodium_memzero(master, sizeof master);

    /* Which groups the projected search builds: with none, the partition is the exact
     * greedy's and keeps its old name (version 1); with any, version 2 and the search's
     * parameters name it, so neither is ever read as the other. */
    int32_t gsize[256] = { 0 };
    for (int32_t i = 0; i < n_vocab; i++) gsize[group[i]]++;
    unsigned char proj[256] = { 0 };
    int any = 0;
    for (int g = 1; g < 256; g++) any |= proj[g] = gsize[g] > 0 && use_projection(p, gsize[g], dim);
    crypto_generichash_state st;
    uint32_t hdr[3] = { any ? 2u : 1u /* algorithm version */, (uint32_t)p->k, (uint32_t)n_vocab };
    crypto_generichash_init(&st, NULL, 0, sizeof cc->id);
    crypto_generichash_update(&st, (const unsigned char *)"cmif-cluster", 12);
    crypto_generichash_update(&st, p->fingerprint, 32);
    crypto_generichash_update(&st, (const unsigned char *)hdr, sizeof hdr);
    crypto_generichash_update(&st, group, (size_t)n_vocab);
    if (any) {
        uint32_t ps[5] = {(uint32_t)proj_dim(p, dim), (uint32_t)proj_cand(p), PROJ_NNZ,
                          (uint32_t)PROJ_SEED, (uint32_t)dim};
        crypto_generichash_update(&st, (const unsigned char *)"projected", 9);
        crypto_generichash_update(&st, (const unsigned char *)ps, sizeof ps);
        crypto_generichash_update(&st, proj, sizeof proj);
    }
    if (p->centroids) {
        /* A cache with centroids has another layout: name it apart. */
        uint32_t cent[2] = {1u, (uint32_t)dim};
        crypto_generichash_update(&st, (const unsigned char *)"centroids", 9);
        crypto_generichash_update(&st, (const unsigned char *)cent, sizeof cent);
    }
    crypto_generichash_final(&st, cc->id, sizeof cc->id);

    /* The file name is a keyed hash, so it does not say which model it belongs to. */
    unsigned char name[16];
    crypto_generichash(name, sizeof name, cc->id, sizeof cc->id, namekey, sizeof namekey);
    sodium_memzero(namekey, sizeof namekey);
    char hex[2 * sizeof name + 1];
    sodium_bin2hex(hex, sizeof hex, name, sizeof name);
    if (snprintf(cc->path, sizeof cc->path, "%s/clusters-%s.bin", p->cache_dir, hex) >=
        (int)sizeof cc->path) {
        snprintf(note, notelen, "cache path too long");
        return -1;
    }
    return 0;
}

/* The whole file into one buffer in huge pages (util_big_alloc): the cache is opened in
 * place and its arrays used where they lie, so a 16 MB cache costs a few page faults, not
 * one per 4 KiB twice over. */
static int read_file_all(const char *path, unsigned char **buf, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    struct stat st;
    unsigned char *b = NULL;
    if (fstat(fd, &st) != 0 || st.st_size < 0 || !(b = util_big_alloc((size_t)st.st_size + 1))) {
        close(fd);
        return -1;
    }
    size_t got = 0, sz = (size_t)st.st_size;
    while (got < sz) {
        ssize_t r = read(fd, b + got, sz - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (got != sz) {
        free(b);
        return -1;
    }
    *buf = b;
    *len = sz;
    return 0;
}

/* n little-endian floats at q as host floats, in place; 0, or -1 when one is not finite. */
static int floats_in_place(unsigned char *q, size_t n)
{
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    for (size_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)q[4 * i] | (uint32_t)q[4 * i + 1] << 8 |
                     (uint32_t)q[4 * i + 2] << 16 | (uint32_t)q[4 * i + 3] << 24;
        memcpy(q + 4 * i, &v, sizeof v);
    }
#endif
    const float *f = (const float *)(void *)q;
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad |= !isfinite(f[i]);
    return bad ? -1 : 0;
}

/* The cluster sizes the greedy construction gives a group of g tokens: K each, the last the
 * remainder, K+1 when exactly K+1 are left. A partition of any other shape (one-token
 * clusters, say, which would send tokens out unchanged) was not built by cluster_build. */
static int shape_ok(const struct cluster *c, const uint8_t *group, const int32_t *gr, int32_t nc,
                    int k)
{
    int32_t gsize[256] = { 0 }, nk[256] = { 0 }, nlast[256] = { 0 }, last[256] = { 0 };
    for (int32_t i = 0; i < c->n_vocab; i++)
        if (group[i]) gsize[group[i]]++;
    for (int32_t i = 0; i < nc; i++) {
        int32_t size = c->start[i + 1] - c->start[i];
        if (size == k) nk[gr[i]]++;
        else {
            nlast[gr[i]]++;
            last[gr[i]] = size;
        }
    }
    for (int g = 1; g < 256; g++) {
        int32_t want_k = 0, want_last = 0;
        for (int32_t r = gsize[g]; r > 0;) {
            int32_t take = r == k + 1 ? k + 1 : r < k ? r : k;
            if (take == k) want_k++;
            else want_last = take;
            r -= take;
        }
        if (nk[g] != want_k || nlast[g] != (want_last > 0) || (want_last && last[g] != want_last))
            return -1;
    }
    return 0;
}

/* Structural validation of a cluster assignment, then members/start/sim_off from it. */
static int adopt(struct cluster *c, const int32_t *of, const uint8_t *group, int k)
{
    int32_t nc = -1;
    for (int32_t i = 0; i < c->n_vocab; i++) {
        if ((of[i] < 0) != (group[i] == 0)) return -1;
        if (of[i] < -1 || of[i] >= c->n_vocab) return -1;
        if (of[i] > nc) nc = of[i];
    }
    nc++;   /* every id below nc must be used: checked with the counts below */
    char e[64];
    if (reserve_clusters(c, nc + 1, e, sizeof e)) return -1;
    int32_t *count = calloc((size_t)nc + 1, sizeof *count);
    int32_t *gr = malloc(((size_t)nc + 1) * sizeof *gr);
    if (!count || !gr) { free(count); free(gr); return -1; }
    for (int32_t i = 0; i < nc; i++) gr[i] = -1;
    int rc = -1;
    for (int32_t i = 0; i < c->n_vocab; i++) {
        if (of[i] < 0) continue;
        if (gr[of[i]] >= 0 && gr[of[i]] != group[i]) goto out;
        gr[of[i]] = group[i];
        count[of[i]]++;
    }
    int32_t off = 0;
    size_t soff = 0;
    for (int32_t i = 0; i < nc; i++) {
        if (count[i] < 1 || count[i] > k + 1) goto out;
        c->start[i] = off;
        c->sim_off[i] = soff;
        off += count[i];
        soff += (size_t)count[i] * (size_t)count[i];
        count[i] = 0;
    }
    c->start[nc] = off;
    c->sim_off[nc] = soff;
    if (shape_ok(c, group, gr, nc, k) != 0) goto out;
    for (int32_t i = 0; i < c->n_vocab; i++)
        if (of[i] >= 0) c->members[c->start[of[i]] + count[of[i]]++] = i;
    c->n_clusters = nc;
    c->n_members = off;
    c->n_sim = soff;
    rc = 0;
out:
    free(count);
    free(gr);
    return rc;
}

static uint32_t get32(const unsigned char *q)
{
    return (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24;
}

static void put32(unsigned char *q, uint32_t v)
{
    q[0] = (unsigned char)v; q[1] = (unsigned char)(v >> 8);
    q[2] = (unsigned char)(v >> 16); q[3] = (unsigned char)(v >> 24);
}

static int cache_load(struct cluster *c, const struct cache_ctx *cc, const uint8_t *group, int k)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    if (read_file_all(cc->path, &buf, &len)) return -1;
    const size_t hdr = 8 + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES;
    size_t base = 8 + 32 + 4 * (size_t)c->n_vocab;
    int rc = -1;
    unsigned char *plain = NULL;
    int32_t *of = NULL;
    if (len < hdr + base || (len - hdr - base) % 4 != 0 || memcmp(buf, CACHE_MAGIC, 8) != 0)
        goto out;
    size_t plen = len - hdr;
    /* Opened in place (libsodium allows it): no second copy of a cache of many MB. */
    plain = buf + 8 + crypto_secretbox_NONCEBYTES;
    of = malloc((size_t)c->n_vocab * sizeof *of);
    if (!of ||
        crypto_secretbox_open_easy(plain, plain, len - 8 - crypto_secretbox_NONCEBYTES, buf + 8,
                                   cc->seal) != 0 ||
        memcmp(plain, PAYLOAD_MAGIC, 8) != 0 || sodium_memcmp(plain + 8, cc->id, 32) != 0)
        goto out;
    for (int32_t i = 0; i < c->n_vocab; i++) of[i] = (int32_t)get32(plain + 40 + 4 * (size_t)i);
    int shape = adopt(c, of, group, k);
    size_t n_cent = c->want_cent ? (size_t)c->n_clusters * (size_t)c->dim : 0;
    if (shape != 0 || (plen - base) / 4 != c->n_sim + n_cent) {
        rc = -2;   /* it opened under the user's key: written by this user, yet not our shape */
        goto out;
    }
    /* The similarities and centroids stay where they were decrypted (4-byte aligned: the
     * buffer is, and so are base and the lengths). */
    unsigned char *qs = plain + base, *qc = qs + 4 * c->n_sim;
    if (floats_in_place(qs, c->n_sim) != 0 || floats_in_place(qc, n_cent) != 0) goto out;
    c->sim = (float *)(void *)qs;
    c->cap_sim = c->n_sim;
    if (n_cent) {
        c->cent = (float *)(void *)qc;
        c->cap_cent = (size_t)c->n_clusters;
    }
    c->blob = buf;
    buf = NULL;
    memcpy(c->of, of, (size_t)c->n_vocab * sizeof *of);
    rc = 0;
out:
    free(of);
    free(buf);
    return rc;
}

static int cache_store(const struct cluster *c, const struct cache_ctx *cc, const char *dir,
                       char *note, size_t notelen)
{
    size_t n_cent = c->want_cent ? (size_t)c->n_clusters * (size_t)c->dim : 0;
    size_t base = 8 + 32 + 4 * (size_t)c->n_vocab, plen = base + 4 * (c->n_sim + n_cent);
    size_t flen = 8 + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + plen;
    unsigned char *plain = malloc(plen), *out = malloc(flen);
    int rc = -1;
    if (!plain || !out) goto done;
    memcpy(plain, PAYLOAD_MAGIC, 8);
    memcpy(plain + 8, cc->id, 32);
    for (int32_t i = 0; i < c->n_vocab; i++) put32(plain + 40 + 4 * (size_t)i, (uint32_t)c->of[i]);
    for (size_t i = 0; i < c->n_sim; i++) {
        uint32_t v;
        memcpy(&v, &c->sim[i], sizeof v);
        put32(plain + base + 4 * i, v);
    }
    for (size_t i = 0; i < n_cent; i++) {
        uint32_t v;
        memcpy(&v, &c->cent[i], sizeof v);
        put32(plain + base + 4 * (c->n_sim + i), v);
    }
    memcpy(out, CACHE_MAGIC, 8);
    randombytes_buf(out + 8, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(out + 8 + crypto_secretbox_NONCEBYTES, plain, plen, out + 8, cc->seal);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/.clusters-XXXXXX", dir);
    int fd = mkstemp(tmp);
    if (fd < 0) { snprintf(note, notelen, "cannot write cache in %s: %s", dir, strerror(errno)); goto done; }
    int ok = fchmod(fd, 0600) == 0 && write(fd, out, flen) == (ssize_t)flen && fsync(fd) == 0;
    if (close(fd) != 0) ok = 0;
    if (!ok || rename(tmp, cc->path) != 0) {
        unlink(tmp);
        snprintf(note, notelen, "cannot write cache %s", cc->path);
        goto done;
    }
    util_cache_used(cc->path, "clusters-");
    rc = 0;
done:
    free(plain);
    free(out);
    return rc;
}

/* ---------------------------------------------------------------------------------------
 * Public */

int cluster_build(struct cluster **out, int32_t n_vocab, int dim, const uint8_t *group,
                  cluster_row_fn row, void *ctx, const struct cluster_params *p, char *err,
                  size_t errlen)
{
    *out = NULL;
    if (n_vocab <= 0 || dim <= 0) {
        snprintf(err, errlen, "cluster: bad shape (vocabulary %d, dim %d)", (int)n_vocab, dim);
        return -1;
    }
    if (!p || p->k < 2 || p->k > 100000) {
        snprintf(err, errlen, "cluster: cluster size must be between 2 and 100000 (got %d)",
                 p ? p->k : 0);
        return -1;
    }
    if (sodium_init() < 0) { snprintf(err, errlen, "cluster: libsodium init failed"); return -1; }
    struct cluster *c = calloc(1, sizeof *c);
    if (!c) { snprintf(err, errlen, "cluster: out of memory"); return -1; }
    c->n_vocab = n_vocab;
    c->k = p->k;
    c->dim = dim;
    c->want_cent = p->centroids != 0;
    c->of = malloc((size_t)n_vocab * sizeof *c->of);
    c->members = malloc((size_t)n_vocab * sizeof *c->members);
    int32_t *ids = malloc((size_t)n_vocab * sizeof *ids);
    if (!c->of || !c->members || !ids) {
        snprintf(err, errlen, "cluster: out of memory");
        free(ids);
        cluster_close(c);
        return -1;
    }
    for (int32_t i = 0; i < n_vocab; i++) c->of[i] = -1;

    struct cache_ctx cc;
    int use_cache = p->cache_dir && *p->cache_dir && p->fingerprint;
    if (use_cache && cache_prepare(&cc, p, n_vocab, dim, group, c->note, sizeof c->note)) use_cache = 0;
    if (use_cache) {
        int lr = cache_load(c, &cc, group, p->k);
        if (lr == -2)
            snprintf(c->note, sizeof c->note,
                     "cluster cache %s refused: its partition is not the one this model gives "
                     "(wrong cluster sizes or not every token in one cluster); recomputed",
                     cc.path);
        if (lr == 0) {
            util_cache_used(cc.path, "clusters-");
            c->from_cache = 1;
            sodium_memzero(&cc, sizeof cc);
            free(ids);
            *out = c;
            return 0;
        }
        /* Missing, tampered or stale: start over from a clean state. */
        free(c->sim);
        c->sim = NULL;
        c->n_sim = c->cap_sim = 0;
        free(c->cent);
        c->cent = NULL;
        c->cap_cent = 0;
        c->n_clusters = c->n_members = 0;
    }

    for (int g = 1; g < 256; g++) {
        int32_t n = 0;
        for (int32_t i = 0; i < n_vocab; i++)
            if (group[i] == g) ids[n++] = i;
        if (n == 0) continue;
        if (build_group(c, ids, n, dim, row, ctx, p, err, errlen)) {
            free(ids);
            sodium_memzero(&cc, sizeof cc);
            cluster_close(c);
            return -1;
        }
    }
    free(ids);
    for (int32_t cl = 0; cl < c->n_clusters; cl++)
        for (int32_t i = c->start[cl]; i < c->start[cl + 1]; i++) c->of[c->members[i]] = cl;
    if (use_cache) cache_store(c, &cc, p->cache_dir, c->note, sizeof c->note);
    sodium_memzero(&cc, sizeof cc);
    *out = c;
    return 0;
}

void cluster_close(struct cluster *c)
{
    if (!c) return;
    if (c->blob) {
        /* sim and cent lie in it */
        free(c->blob);
        c->sim = c->cent = NULL;
    }
    UTIL_FREE(c->of, c->start, c->sim_off, c->sim, c->cent, c->members, c);
}

int32_t cluster_count(const struct cluster *c) { return c->n_clusters; }
int32_t cluster_n_vocab(const struct cluster *c) { return c->n_vocab; }
int32_t cluster_of(const struct cluster *c, int32_t id)
{
    return id >= 0 && id < c->n_vocab ? c->of[id] : -1;
}
int cluster_members(const struct cluster *c, int32_t cid, const int32_t **members)
{
    if (cid < 0 || cid >= c->n_clusters) { *members = NULL; return 0; }
    *members = c->members + c->start[cid];
    return (int)(c->start[cid + 1] - c->start[cid]);
}
const float *cluster_sims(const struct cluster *c, int32_t id, int *n)
{
    int32_t cid = cluster_of(c, id);
    *n = 0;
    if (cid < 0 || !c->sim) return NULL;
    int32_t s0 = c->start[cid], sz = c->start[cid + 1] - s0;
    for (int32_t i = 0; i < sz; i++)
        if (c->members[s0 + i] == id) {
            *n = (int)sz;
            return c->sim + c->sim_off[cid] + (size_t)i * (size_t)sz;
        }
    return NULL;
}

const float *cluster_centroid(const struct cluster *c, int32_t cid)
{
    if (!c->cent || cid < 0 || cid >= c->n_clusters) return NULL;
    return c->cent + (size_t)cid * (size_t)c->dim;
}

int cluster_from_cache(const struct cluster *c) { return c->from_cache; }
const char *cluster_cache_note(const struct cluster *c) { return c->note; }
