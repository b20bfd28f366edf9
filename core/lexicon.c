/* core/lexicon: the whole-word domain of a vocabulary (see lexicon.h). */
#include "core/util.h"
#include "core/lexicon.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cluster.h"
#include "core/tokenizer.h"

struct lexicon {
    int32_t n, cap;
    uint32_t *off;          /* entry i's word: pool[off[i] .. off[i] + len[i]) */
    uint8_t *len;
    int32_t *tok;           /* token whose row embeds the entry */
    uint8_t *exact;         /* tok's piece is exactly " " + word */
    uint8_t *group;
    char *pool;
    size_t pool_n, pool_cap;
    int32_t *slot;          /* open-addressing table of entry indices, -1 empty */
    size_t nslot;           /* power of two */
    lexicon_rows_fn rows, pub_rows;
    void *rows_ctx;
    int dim;
    int32_t *ctok;          /* scratch: token ids of a batch of entries */
    size_t ctok_cap;
    const struct cluster *cl;
    float *cent;            /* cluster count x dim, when read from rows here */
    const float *cv;        /* the centroids in use: cent, or the partition's own */
    uint8_t *cgroup;
    int32_t ncl;
};

static uint64_t hash_word(const char *w, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)w[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int is_alpha(unsigned char c) { return (c | 0x20) >= 'a' && (c | 0x20) <= 'z'; }

static void probe(const struct lexicon *l, const char *w, size_t n, size_t *pos)
{
    size_t mask = l->nslot - 1, i = (size_t)hash_word(w, n) & mask;
    for (;; i = (i + 1) & mask) {
        int32_t e = l->slot[i];
        if (e < 0 || (l->len[e] == n && memcmp(l->pool + l->off[e], w, n) == 0)) break;
    }
    *pos = i;
}

int32_t lexicon_find(const struct lexicon *l, const char *w, size_t n)
{
    if (!l || n == 0 || n > LEXICON_MAX_WORD) return -1;
    size_t i;
    probe(l, w, n, &i);
    return l->slot[i];
}

static int grow_entries(struct lexicon *l)
{
    int32_t cap = l->cap ? l->cap * 2 : 4096;
    uint32_t *off = realloc(l->off, (size_t)cap * sizeof *off);
    if (off) l->off = off;
    uint8_t *len = realloc(l->len, (size_t)cap);
    if (len) l->len = len;
    int32_t *tok = realloc(l->tok, (size_t)cap * sizeof *tok);
    if (tok) l->tok = tok;
    uint8_t *ex = realloc(l->exact, (size_t)cap);
    if (ex) l->exact = ex;
    if (!off || !len || !tok || !ex) return -1;
    l->cap = cap;
    return 0;
}

int lexicon_build(struct lexicon **out, const struct tokenizer *t, lexicon_public_fn pub,
                  void *pctx, char *err, size_t errlen)
{
    *out = NULL;
    struct lexicon *l = calloc(1, sizeof *l);
    if (!l) goto oom;
    int32_t nv = tok_n_vocab(t);
    l->nslot = 1;
    while (l->nslot < (size_t)nv * 2 + 16) l->nslot <<= 1;
    l->slot = malloc(l->nslot * sizeof *l->slot);
    if (!l->slot) goto oom;
    memset(l->slot, 0xff, l->nslot * sizeof *l->slot);
    /* Ascending ids: an entry is created by its lowest-id variant, so entries come out in
     * frequency order without a sort. */
    for (int32_t id = 0; id < nv; id++) {
        int ty = tok_type(t, id);
        if (ty != TOK_T_NORMAL && ty != TOK_T_UNDEFINED && ty != TOK_T_USER_DEFINED) continue;
        char buf[LEXICON_MAX_WORD + 2], low[LEXICON_MAX_WORD + 1];
        size_t full = tok_piece(t, id, 0, buf, sizeof buf);
        if (full < 2 || full > LEXICON_MAX_WORD + 1 || buf[0] != ' ') continue;
        size_t n = full - 1;
        int ok = 1, exact = 1;
        for (size_t i = 0; i < n && ok; i++) {
            unsigned char c = (unsigned char)buf[1 + i];
            ok = is_alpha(c);
            low[i] = (char)(c | 0x20);
            exact &= low[i] == (char)c;
        }
        if (!ok) continue;
        size_t pos;
        probe(l, low, n, &pos);
        int32_t e = l->slot[pos];
        if (e >= 0) {
            if (exact && !l->exact[e]) {
                l->tok[e] = id;
                l->exact[e] = 1;
            }
            continue;
        }
        if (l->n == l->cap && grow_entries(l)) goto oom;
        if (l->pool_n + n > l->pool_cap) {
            size_t pc = l->pool_cap ? l->pool_cap * 2 : 65536;
            while (pc < l->pool_n + n) pc *= 2;
            char *p = realloc(l->pool, pc);
            if (!p) goto oom;
            l->pool = p;
            l->pool_cap = pc;
        }
        memcpy(l->pool + l->pool_n, low, n);
        e = l->n++;
        l->off[e] = (uint32_t)l->pool_n;
        l->len[e] = (uint8_t)n;
        l->tok[e] = id;
        l->exact[e] = (uint8_t)exact;
        l->pool_n += n;
        l->slot[pos] = e;
    }
    if (l->n < 2) {
        snprintf(err, errlen, "lexicon: the vocabulary has %d whole-word tokens; word-level "
                              "sanitization needs a vocabulary of words", (int)l->n);
        lexicon_close(l);
        return -1;
    }
    l->group = malloc((size_t)l->n);
    if (!l->group) goto oom;
    for (int32_t e = 0; e < l->n; e++)
        l->group[e] = pub && pub(pctx, l->pool + l->off[e], l->len[e]) ? 1 : 2;
    *out = l;
    return 0;
oom:
    snprintf(err, errlen, "lexicon: out of memory");
    lexicon_close(l);
    return -1;
}

void lexicon_close(struct lexicon *l)
{
    if (!l) return;
    UTIL_FREE(l->off, l->len, l->tok, l->exact, l->group, l->pool, l->slot, l->ctok, l->cent,
              l->cgroup, l);
}

int32_t lexicon_size(const struct lexicon *l) { return l->n; }
const uint8_t *lexicon_groups(const struct lexicon *l) { return l->group; }
int32_t lexicon_token(const struct lexicon *l, int32_t i)
{
    return i >= 0 && i < l->n ? l->tok[i] : -1;
}

const char *lexicon_word(const struct lexicon *l, int32_t i, size_t *len)
{
    if (i < 0 || i >= l->n) {
        *len = 0;
        return "";
    }
    *len = l->len[i];
    return l->pool + l->off[i];
}

void lexicon_set_rows(struct lexicon *l, lexicon_rows_fn rows, void *ctx, int dim)
{
    l->rows = rows;
    l->rows_ctx = ctx;
    l->dim = dim;
}

void lexicon_set_public_rows(struct lexicon *l, lexicon_rows_fn pub) { l->pub_rows = pub; }

static int entry_rows(struct lexicon *l, lexicon_rows_fn fn, const int32_t *ids, size_t n,
                      float *out)
{
    if (!fn) return -1;
    if (n > l->ctok_cap) {
        int32_t *p = realloc(l->ctok, n * sizeof *p);
        if (!p) return -1;
        l->ctok = p;
        l->ctok_cap = n;
    }
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= l->n) return -1;
        l->ctok[i] = l->tok[ids[i]];
    }
    return fn(l->rows_ctx, l->ctok, n, out);
}

int lexicon_rows(void *lexicon, const int32_t *ids, size_t n, float *out)
{
    struct lexicon *l = lexicon;
    return entry_rows(l, l->rows, ids, n, out);
}

int lexicon_rows_public(void *lexicon, const int32_t *ids, size_t n, float *out)
{
    struct lexicon *l = lexicon;
    return entry_rows(l, l->pub_rows ? l->pub_rows : l->rows, ids, n, out);
}

int lexicon_row(void *lexicon, int32_t i, float *out) { return lexicon_rows(lexicon, &i, 1, out); }

void lexicon_mean(const float *rows, size_t n, int dim, float *out)
{
    for (int d = 0; d < dim; d++) out[d] = 0;
    for (size_t i = 0; i < n; i++) {
        const float *r = rows + i * (size_t)dim;
        double nr = 0;
        for (int d = 0; d < dim; d++) nr += (double)r[d] * r[d];
        if (nr <= 0) continue;
        float s = (float)(1.0 / sqrt(nr));
        for (int d = 0; d < dim; d++) out[d] += r[d] * s;
    }
    double no = 0;
    for (int d = 0; d < dim; d++) no += (double)out[d] * out[d];
    if (no > 0) {
        float s = (float)(1.0 / sqrt(no));
        for (int d = 0; d < dim; d++) out[d] *= s;
    }
}

/* Fresh centroid arrays for cl's clusters: the largest cluster's size (>= 1) when the
 * centroids are to be computed, 0 when cl keeps them (used in place, nothing to read), or
 * -1 with err. */
static int centroids_alloc(struct lexicon *l, const struct cluster *cl, char *err,
                           size_t errlen)
{
    int32_t nc = cluster_count(cl);
    free(l->cent);
    free(l->cgroup);
    l->cent = NULL;
    l->cv = NULL;
    l->cgroup = calloc((size_t)(nc > 0 ? nc : 1), 1);
    if (!l->cgroup) {
        snprintf(err, errlen, "lexicon: out of memory for %d centroids", (int)nc);
        return -1;
    }
    if (nc > 0 && cluster_centroid(cl, 0)) {
        /* Kept with the partition (and its cache), one after another: used in place, no
         * row to read. */
        for (int32_t c = 0; c < nc; c++) {
            const int32_t *mem;
            if (cluster_members(cl, c, &mem) > 0) l->cgroup[c] = l->group[mem[0]];
        }
        l->cv = cluster_centroid(cl, 0);
        l->cl = cl;
        l->ncl = nc;
        return 0;
    }
    l->cent = calloc((size_t)(nc > 0 ? nc : 1) * (size_t)l->dim, sizeof *l->cent);
    l->cv = l->cent;
    if (!l->cent) {
        snprintf(err, errlen, "lexicon: out of memory for %d centroids", (int)nc);
        return -1;
    }
    int maxm = 1;
    for (int32_t c = 0; c < nc; c++) {
        const int32_t *mem;
        int m = cluster_members(cl, c, &mem);
        if (m > maxm) maxm = m;
    }
    return maxm;
}

/* Cluster c's centroid from its members' rows (member order). */
static void centroid_set(struct lexicon *l, const struct cluster *cl, int32_t c,
                         const float *rows)
{
    const int32_t *mem;
    int m = cluster_members(cl, c, &mem);
    if (m <= 0) return;
    lexicon_mean(rows, (size_t)m, l->dim, l->cent + (size_t)c * l->dim);
    l->cgroup[c] = l->group[mem[0]];
}

int lexicon_centroids(struct lexicon *l, const struct cluster *cl, char *err, size_t errlen)
{
    int32_t nc = cluster_count(cl);
    int dim = l->dim;
    int maxm = centroids_alloc(l, cl, err, errlen);
    if (maxm <= 0) return maxm;
    /* The rows of consecutive clusters are read in one batch of at most 32 MiB (or one
     * cluster's worth), so the table's pages are fetched once per batch rather than once
     * per cluster; the means are taken cluster by cluster as before. Cluster members are
     * contiguous in cluster order, so a batch is a run of the member list. */
    size_t cap = ((size_t)32 << 20) / ((size_t)dim * sizeof(float));
    if (cap < (size_t)maxm) cap = (size_t)maxm;
    size_t total = 0;
    for (int32_t c = 0; c < nc; c++) {
        const int32_t *mem;
        int m = cluster_members(cl, c, &mem);
        total += (size_t)(m > 0 ? m : 0);
    }
    if (cap > total && total > 0) cap = total;
    float *rows = malloc(cap * (size_t)dim * sizeof *rows);
    if (!rows) {
        snprintf(err, errlen, "lexicon: out of memory for %d centroids", (int)nc);
        return -1;
    }
    for (int32_t c0 = 0; c0 < nc;) {
        int32_t c1 = c0;
        size_t span = 0;
        const int32_t *first = NULL;
        while (c1 < nc) {
            const int32_t *mem;
            int m = cluster_members(cl, c1, &mem);
            if (span > 0 && span + (size_t)m > cap) break;
            if (!first) first = mem;
            span += (size_t)(m > 0 ? m : 0);
            c1++;
        }
        if (span > 0 && lexicon_rows_public(l, first, span, rows) != 0) {
            free(rows);
            snprintf(err, errlen, "lexicon: cannot read the rows of clusters %d..%d", (int)c0,
                     (int)c1 - 1);
            return -1;
        }
        for (int32_t c = c0; c < c1; c++) {
            const int32_t *mem;
            cluster_members(cl, c, &mem);
            centroid_set(l, cl, c, rows + (size_t)(mem - first) * dim);
        }
        c0 = c1;
    }
    free(rows);
    l->cl = cl;
    l->ncl = nc;
    return 0;
}

int lexicon_centroids_from(struct lexicon *l, const struct cluster *cl,
                           lexicon_cluster_rows_fn crows, void *ctx, char *err, size_t errlen)
{
    int32_t nc = cluster_count(cl);
    int maxm = centroids_alloc(l, cl, err, errlen);
    if (maxm <= 0) return maxm;
    float *rows = malloc((size_t)maxm * (size_t)l->dim * sizeof *rows);
    if (!rows) {
        snprintf(err, errlen, "lexicon: out of memory for %d centroids", (int)nc);
        return -1;
    }
    for (int32_t c = 0; c < nc; c++) {
        const int32_t *mem;
        if (cluster_members(cl, c, &mem) <= 0) continue;
        if (crows(ctx, c, rows) != 0) {
            free(rows);
            snprintf(err, errlen, "lexicon: cannot read the rows of cluster %d", (int)c);
            return -1;
        }
        centroid_set(l, cl, c, rows);
    }
    free(rows);
    l->cl = cl;
    l->ncl = nc;
    return 0;
}

int32_t lexicon_nearest(const struct lexicon *l, const float *x, int group)
{
    int32_t best = -1;
    double bd = -INFINITY;
    for (int32_t c = 0; c < l->ncl; c++) {
        if (l->cgroup[c] != group) continue;
        const float *r = l->cv + (size_t)c * l->dim;
        double d = 0;
        for (int k = 0; k < l->dim; k++) d += (double)x[k] * r[k];
        if (d > bd) {
            bd = d;
            best = c;
        }
    }
    return best;
}
