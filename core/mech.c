/* core/mech: RNM, RNM-exp, SanText+ and CusText+ over the vocabulary clusters (see mech.h). */
#include "core/util.h"
#include "core/mech.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/clrows.h"
#include "core/enclave.h"
#include "core/noise.h"
#include "core/tokenizer.h"

struct mech {
    int kind;
    double eps;
    double mult;                /* test-only noise multiplier */
    uint64_t scale_num, scale_den;  /* noise scale in grid units, as a fraction */
    int32_t n_vocab;
    int dim;
    cluster_row_fn row;
    int (*rows)(void *ctx, const int32_t *ids, size_t n, float *out);
    void *ctx;
    const struct cluster *cl;
    struct clrows *crows;
    struct noise *nz;
    uint8_t *role, *stop;
    /* SanText+ */
    double st_p, st_w;
    int32_t *sens;              /* sensitive token ids */
    int32_t n_sens;
    uint8_t *is_sens;
    /* scratch (input-dependent values: guarded regions, enclave scratch) */
    float *xrow;                /* the input token's row (baselines) */
    float *mrows;               /* a whole cluster's rows (max cluster size x dim) */
    size_t mcap;
    double *val;
    int64_t *score;
    size_t cap;
};

/* Noise scale 2/ε utility units = 2^(GRID+1)/ε grid units, times the test multiplier, as
 * num/den with den = 2^20, rounded up (+1 covers the division's rounding), so the noise is
 * never smaller than the ε asked for needs. */
static int set_scale(struct mech *m, char *err, size_t errlen)
{
    const double den = 1048576.0;
    double b = ldexp(1.0, MECH_GRID_BITS + 1) / m->eps * m->mult * den;
    if (!(b < 4.0e18)) {
        snprintf(err, errlen, "ε = %g is too small for the noise sampler (minimum about 1e-6)", m->eps);
        return -1;
    }
    m->scale_num = (uint64_t)ceil(b) + 1;
    m->scale_den = (uint64_t)den;
    return 0;
}

static int valid_eps(double eps, char *err, size_t errlen)
{
    if (!(eps > 0) || isinf(eps)) {
        snprintf(err, errlen, "ε must be a positive finite number (got %g)", eps);
        return -1;
    }
    return 0;
}

static int build_sensitive(struct mech *m, char *err, size_t errlen)
{
    free(m->sens);
    m->sens = NULL;
    m->n_sens = 0;
    memset(m->is_sens, 0, (size_t)m->n_vocab);
    int32_t n = 0;
    for (int32_t i = 0; i < m->n_vocab; i++)
        if (cluster_of(m->cl, i) >= 0) n++;
    int32_t want = (int32_t)ceil(m->st_w * n);
    if (want < 1 && n > 0) want = 1;
    m->sens = malloc(((size_t)want + 1) * sizeof *m->sens);
    if (!m->sens) { snprintf(err, errlen, "mech: out of memory"); return -1; }
    /* The rarest fraction w: the highest ranks among the clustered (sanitizable) tokens. */
    int32_t rank = 0, skip = n - want;
    for (int32_t i = 0; i < m->n_vocab; i++) {
        if (cluster_of(m->cl, i) < 0) continue;
        if (rank++ < skip) continue;
        m->sens[m->n_sens++] = i;
        m->is_sens[i] = 1;
    }
    return 0;
}

static int grow(struct mech *m, size_t n, char *err, size_t errlen)
{
    if (n <= m->cap) return 0;
    char e[160];
    double *v = enclave_scratch_alloc(n * sizeof *v, e, sizeof e);
    int64_t *s = v ? enclave_scratch_alloc(n * sizeof *s, e, sizeof e) : NULL;
    if (!v || !s) {
        enclave_scratch_free(v);
        snprintf(err, errlen, "mech: cannot allocate guarded scratch for %zu candidates: %s", n, e);
        return -1;
    }
    enclave_scratch_free(m->val);
    enclave_scratch_free(m->score);
    m->val = v;
    m->score = s;
    m->cap = n;
    return 0;
}

int mech_open(struct mech **out, const struct mech_config *cfg, int kind, double eps,
              char *err, size_t errlen)
{
    *out = NULL;
    if (!cfg || !cfg->clusters || !cfg->noise || !cfg->row || !cfg->role || cfg->dim <= 0 ||
        cfg->n_vocab != cluster_n_vocab(cfg->clusters)) {
        snprintf(err, errlen, "mech: incomplete or inconsistent configuration");
        return -1;
    }
    if (valid_eps(eps, err, errlen)) return -1;
    if (sodium_init() < 0) { snprintf(err, errlen, "mech: libsodium init failed"); return -1; }
    struct mech *m = calloc(1, sizeof *m);
    if (!m) { snprintf(err, errlen, "mech: out of memory"); return -1; }
    m->eps = eps;
    m->mult = 1.0;
    m->n_vocab = cfg->n_vocab;
    m->dim = cfg->dim;
    m->row = cfg->row;
    m->rows = cfg->rows;
    m->ctx = cfg->ctx;
    m->cl = cfg->clusters;
    m->crows = cfg->crows;
    m->nz = cfg->noise;
    m->st_p = 0.3;
    m->st_w = 0.9;
    m->role = malloc((size_t)m->n_vocab);
    m->stop = calloc((size_t)m->n_vocab, 1);
    m->is_sens = calloc((size_t)m->n_vocab, 1);
    char e[160] = "";
    m->xrow = enclave_scratch_alloc((size_t)m->dim * sizeof(float), e, sizeof e);
    if (!m->role || !m->stop || !m->is_sens || !m->xrow) {
        snprintf(err, errlen, "mech: out of memory%s%s", e[0] ? ": " : "", e);
        mech_close(m);
        return -1;
    }
    memcpy(m->role, cfg->role, (size_t)m->n_vocab);
    if (cfg->stopword) memcpy(m->stop, cfg->stopword, (size_t)m->n_vocab);
    int maxc = 1;
    for (int32_t c = 0; c < cluster_count(m->cl); c++) {
        const int32_t *mem;
        int n = cluster_members(m->cl, c, &mem);
        if (n > maxc) maxc = n;
    }
    m->mcap = (size_t)maxc;
    m->mrows = enclave_scratch_alloc(m->mcap * (size_t)m->dim * sizeof(float), e, sizeof e);
    if (!m->mrows) {
        snprintf(err, errlen, "mech: cannot allocate guarded scratch for %d rows: %s", maxc, e);
        mech_close(m);
        return -1;
    }
    if (grow(m, (size_t)maxc, err, errlen) || set_scale(m, err, errlen) ||
        mech_set_kind(m, kind, err, errlen)) {
        mech_close(m);
        return -1;
    }
    *out = m;
    return 0;
}

void mech_close(struct mech *m)
{
    if (!m) return;
    UTIL_FREE(m->role, m->stop, m->is_sens, m->sens);
    enclave_scratch_free(m->xrow);
    enclave_scratch_free(m->mrows);
    enclave_scratch_free(m->val);
    enclave_scratch_free(m->score);
    free(m);
}

void mech_where(const struct mech *m, struct enclave_where *w)
{
    if (!m) return;
    enclave_scratch_where(m->xrow, w);
    enclave_scratch_where(m->mrows, w);
    enclave_scratch_where(m->val, w);
    enclave_scratch_where(m->score, w);
}

int mech_set_eps(struct mech *m, double eps, char *err, size_t errlen)
{
    if (valid_eps(eps, err, errlen)) return -1;
    double old = m->eps;
    m->eps = eps;
    if (set_scale(m, err, errlen)) { m->eps = old; set_scale(m, err, 0); return -1; }
    return 0;
}

int mech_set_kind(struct mech *m, int kind, char *err, size_t errlen)
{
    if (kind < MECH_RNM || kind > MECH_NONE) {
        snprintf(err, errlen, "unknown mechanism %d", kind);
        return -1;
    }
    m->kind = kind;
    if (kind == MECH_SANTEXT) {
        if (!m->sens && build_sensitive(m, err, errlen)) return -1;
        if (grow(m, (size_t)m->n_sens + 1, err, errlen)) return -1;
    }
    return 0;
}

int mech_is_sensitive(const struct mech *m, int32_t id)
{
    return m->sens && id >= 0 && id < m->n_vocab && m->is_sens[id];
}

int mech_set_santext(struct mech *m, double p, double w, char *err, size_t errlen)
{
    if (!(p >= 0 && p <= 1) || !(w > 0 && w <= 1)) {
        snprintf(err, errlen, "SanText+ needs 0 <= p <= 1 and 0 < w <= 1 (got p %g, w %g)", p, w);
        return -1;
    }
    m->st_p = p;
    m->st_w = w;
    if (build_sensitive(m, err, errlen)) return -1;
    return grow(m, (size_t)m->n_sens + 1, err, errlen);
}

int mech_kind(const struct mech *m) { return m->kind; }
double mech_eps(const struct mech *m) { return m->eps; }

void mech_test_noise_mult(struct mech *m, double mult)
{
    char e[128];
    m->mult = mult > 0 ? mult : 1.0;
    set_scale(m, e, sizeof e);
}

int mech_charges(const struct mech *m, int32_t id)
{
    if (id < 0 || id >= m->n_vocab || m->kind == MECH_NONE) return 0;
    if (cluster_of(m->cl, id) < 0) return 0;
    if (m->kind == MECH_CUSTEXT && m->stop[id]) return 0;
    return 1;
}

static double dotf(const float *a, const float *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

static double dist2(const float *a, const float *b, int n)
{
    double s = 0;
    for (int i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    return sqrt(s);
}

static int fetch(struct mech *m, int32_t id, float *out, char *err, size_t errlen)
{
    if (m->row(m->ctx, id, out) != 0) {
        /* The id is (or is next to) the user's raw token: it is not put in the message. */
        snprintf(err, errlen, "mech: cannot read an embedding row");
        return -1;
    }
    return 0;
}

/* Rows of ids[0..n-1] into out: one batched call when the provider has one. */
static int fetch_many(struct mech *m, const int32_t *ids, size_t n, float *out, char *err,
                      size_t errlen)
{
    if (m->rows) {
        if (m->rows(m->ctx, ids, n, out) != 0) {
            snprintf(err, errlen, "mech: cannot read the embeddings of %zu tokens", n);
            return -1;
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if (fetch(m, ids[i], out + i * (size_t)m->dim, err, errlen)) return -1;
    return 0;
}

/* Exponential mechanism over val[0..n-1] (utilities, higher is better) with weight
 * exp(coef * (u - u_max)); floating point, used by the baselines only. */
static int exp_mech(struct mech *m, size_t n, double coef)
{
    double top = -INFINITY, sum = 0;
    for (size_t i = 0; i < n; i++) if (m->val[i] > top) top = m->val[i];
    for (size_t i = 0; i < n; i++) {
        m->val[i] = exp(coef * (m->val[i] - top));
        sum += m->val[i];
    }
    double r = noise_unit(m->nz) * sum;
    for (size_t i = 0; i < n; i++) {
        r -= m->val[i];
        if (r < 0) return (int)i;
    }
    return (int)n - 1;
}

/* Report-noisy-max over the cosines in val[0..n-1] (candidates in cluster order). */
static int rnm(struct mech *m, int n)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (m->val[i] < lo) lo = m->val[i];
        if (m->val[i] > hi) hi = m->val[i];
    }
    const int64_t one = (int64_t)1 << MECH_GRID_BITS;
    int best = 0;
    for (int i = 0; i < n; i++) {
        /* The quantised utility is an integer in [0, 2^GRID] whatever the input: that range
         * is all the privacy argument needs. */
        int64_t u = 0;
        if (hi > lo) {
            double q = (m->val[i] - lo) / (hi - lo);
            u = (int64_t)llround(q * (double)one);
            if (u < 0) u = 0;
            if (u > one) u = one;
        }
        int64_t z = m->kind == MECH_RNM_EXP ? noise_geometric(m->nz, m->scale_num, m->scale_den)
                                            : noise_dlaplace(m->nz, m->scale_num, m->scale_den);
        m->score[i] = u + z;
        if (m->score[i] > m->score[best]) best = i;     /* ties: the earlier (lower id) wins */
    }
    sodium_memzero(m->val, (size_t)n * sizeof *m->val);
    sodium_memzero(m->score, (size_t)n * sizeof *m->score);
    return best;
}

static int custext(struct mech *m, const int32_t *mem, int n, char *err, size_t errlen)
{
    double lo = INFINITY, hi = -INFINITY;
    (void)mem;
    (void)err;
    (void)errlen;
    for (int i = 0; i < n; i++) {
        double d = dist2(m->xrow, m->mrows + (size_t)i * m->dim, m->dim);
        m->val[i] = d;
        if (d < lo) lo = d;
        if (d > hi) hi = d;
    }
    for (int i = 0; i < n; i++) m->val[i] = hi > lo ? -(m->val[i] - lo) / (hi - lo) : 0;
    int r = exp_mech(m, (size_t)n, m->eps / 2);
    sodium_memzero(m->val, (size_t)n * sizeof *m->val);
    return r;
}

static int32_t santext(struct mech *m, int32_t id, int *replaced, char *err, size_t errlen)
{
    *replaced = 0;
    if (!m->is_sens[id] && !(noise_unit(m->nz) < m->st_p)) return id;
    for (int32_t i0 = 0; i0 < m->n_sens; i0 += (int32_t)m->mcap) {
        size_t cnt = (size_t)(m->n_sens - i0) < m->mcap ? (size_t)(m->n_sens - i0) : m->mcap;
        if (fetch_many(m, m->sens + i0, cnt, m->mrows, err, errlen)) return -1;
        for (size_t i = 0; i < cnt; i++)
            m->val[i0 + (int32_t)i] = -dist2(m->xrow, m->mrows + i * (size_t)m->dim, m->dim);
    }
    int r = exp_mech(m, (size_t)m->n_sens, m->eps / 2);
    sodium_memzero(m->val, (size_t)m->n_sens * sizeof *m->val);
    *replaced = 1;
    return m->sens[r];
}

int mech_sanitize(struct mech *m, int32_t id, struct mech_out *o, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    if (id < 0 || id >= m->n_vocab) {
        snprintf(err, errlen, "mech: token id out of range (vocabulary %d)", (int)m->n_vocab);
        return -1;
    }
    o->sent = id;
    int32_t cid = cluster_of(m->cl, id);
    if (m->kind == MECH_NONE || cid < 0 || (m->kind == MECH_CUSTEXT && m->stop[id])) {
        o->kind = m->role[id] == MECH_ROLE_CONTROL ? MECH_CONTROL : MECH_PUBLIC;
        if (m->kind == MECH_NONE && cid >= 0) o->kind = MECH_KEPT;
        return 0;
    }
    const int32_t *mem;
    int n = cluster_members(m->cl, cid, &mem);
    o->cluster_size = n;
    o->eps = m->eps;
    size_t rows_used = 0;
    int ns = 0;
    const float *sims = NULL;
    if (m->kind == MECH_RNM || m->kind == MECH_RNM_EXP) {
        /* The cosines to the cluster were computed with the clusters: no rows to read. */
        sims = cluster_sims(m->cl, id, &ns);
        if (sims && ns == n)
            for (int i = 0; i < n; i++) m->val[i] = sims[i];
    }
    if (sims && ns == n) {
        /* nothing to fetch */
    } else if (m->kind == MECH_SANTEXT) {
        if (fetch(m, id, m->xrow, err, errlen)) return -1;
        rows_used = m->mcap;
    } else {
        /* The cluster holds the input token: one batched read serves both. */
        if (fetch_many(m, mem, (size_t)n, m->mrows, err, errlen)) return -1;
        rows_used = (size_t)n;
        for (int i = 0; i < n; i++)
            if (mem[i] == id) memcpy(m->xrow, m->mrows + (size_t)i * m->dim, (size_t)m->dim * sizeof(float));
        if (m->kind == MECH_RNM || m->kind == MECH_RNM_EXP) {
            double nx = sqrt(dotf(m->xrow, m->xrow, m->dim));
            for (int i = 0; i < n; i++) {
                const float *cr = m->mrows + (size_t)i * m->dim;
                double nc = sqrt(dotf(cr, cr, m->dim));
                m->val[i] = nx > 0 && nc > 0 ? dotf(m->xrow, cr, m->dim) / (nx * nc) : 0;
            }
        }
    }
    int32_t sent = id;
    if (m->kind == MECH_RNM || m->kind == MECH_RNM_EXP) {
        sent = mem[n > 1 ? rnm(m, n) : 0];
    } else if (m->kind == MECH_CUSTEXT) {
        int i = n > 1 ? custext(m, mem, n, err, errlen) : 0;
        if (i < 0) return -1;
        sent = mem[i];
    } else {
        int rep;
        sent = santext(m, id, &rep, err, errlen);
        if (sent < 0) return -1;
        o->cluster_size = m->n_sens;
    }
    sodium_memzero(m->xrow, (size_t)m->dim * sizeof(float));
    sodium_memzero(m->mrows, rows_used * (size_t)m->dim * sizeof(float));
    o->sent = sent;
    o->kind = sent == id ? MECH_KEPT : MECH_REPLACED;
    return 0;
}

/* A common English stopword list (the words CusText+ leaves as they are). */
static const char *const stopwords[] = {
    "a", "about", "above", "after", "again", "against", "ain", "all", "am", "an", "and", "any",
    "are", "aren", "as", "at", "be", "because", "been", "before", "being", "below", "between",
    "both", "but", "by", "can", "couldn", "d", "did", "didn", "do", "does", "doesn", "doing",
    "don", "down", "during", "each", "few", "for", "from", "further", "had", "hadn", "has",
    "hasn", "have", "haven", "having", "he", "her", "here", "hers", "herself", "him",
    "himself", "his", "how", "i", "if", "in", "into", "is", "isn", "it", "its", "itself",
    "just", "ll", "m", "ma", "me", "mightn", "more", "most", "mustn", "my", "myself", "needn",
    "no", "nor", "not", "now", "o", "of", "off", "on", "once", "only", "or", "other", "our",
    "ours", "ourselves", "out", "over", "own", "re", "s", "same", "shan", "she", "should",
    "shouldn", "so", "some", "such", "t", "than", "that", "the", "their", "theirs", "them",
    "themselves", "then", "there", "these", "they", "this", "those", "through", "to", "too",
    "under", "until", "up", "ve", "very", "was", "wasn", "we", "were", "weren", "what", "when",
    "where", "which", "while", "who", "whom", "why", "will", "with", "won", "wouldn", "y",
    "you", "your", "yours", "yourself", "yourselves",
};

int mech_is_stopword(const char *piece, size_t len)
{
    while (len > 0 && (*piece == ' ' || *piece == '\t')) { piece++; len--; }
    if (len == 0 || len > 16) return 0;
    char w[17];
    for (size_t i = 0; i < len; i++) w[i] = (char)tolower((unsigned char)piece[i]);
    w[len] = 0;
    /* The first letter first: a word-level start asks this of every lexicon entry. */
    for (size_t i = 0; i < sizeof stopwords / sizeof *stopwords; i++)
        if (stopwords[i][0] == w[0] && strcmp(w, stopwords[i]) == 0) return 1;
    return 0;
}

static const char public_chars[] = " \t\n\r\v\f!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

const char *mech_public_chars(void) { return public_chars; }

int mech_is_public_piece(const char *piece, size_t len)
{
    if (len == 0) return 0;
    for (size_t i = 0; i < len; i++)
        if (piece[i] == 0 || !strchr(public_chars, piece[i])) return 0;
    return 1;
}

void mech_token_roles(const struct tokenizer *t, uint8_t *role, uint8_t *group, uint8_t *stop)
{
    int32_t n = tok_n_vocab(t), nbytes = 0;
    for (int32_t id = 0; id < n; id++) {
        int ty = tok_type(t, id);
        char buf[256];
        size_t full = tok_piece(t, id, 0, buf, sizeof buf);
        size_t len = full > sizeof buf ? sizeof buf : full;
        /* A piece longer than buf is never public: only its head could be checked, and a
         * word after a run of punctuation must not pass through at ε = 0. */
        int fits = full <= sizeof buf;
        stop[id] = (uint8_t)(fits && mech_is_stopword(buf, len));
        if (ty == TOK_T_CONTROL || ty == TOK_T_UNKNOWN || ty == TOK_T_UNUSED || len == 0) {
            role[id] = MECH_ROLE_CONTROL;
            group[id] = 0;
        } else if (fits && mech_is_public_piece(buf, len)) {
            role[id] = MECH_ROLE_PUBLIC;
            group[id] = 0;
        } else {
            role[id] = MECH_ROLE_SANITIZE;
            group[id] = ty == TOK_T_BYTE ? 2 : 1;
            nbytes += ty == TOK_T_BYTE;
        }
    }
    if (nbytes < 2)
        for (int32_t id = 0; id < n; id++) if (group[id] == 2) group[id] = 1;
}

int mech_sanitize_vec(struct mech *m, int32_t cid, const float *x, struct mech_out *o,
                      char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->sent = -1;
    if (m->kind == MECH_NONE || cid < 0 || cid >= cluster_count(m->cl)) {
        snprintf(err, errlen, "mech: no cluster for this word");
        return -1;
    }
    memcpy(m->xrow, x, (size_t)m->dim * sizeof(float));
    int32_t sent;
    size_t rows_used = 0;
    if (m->kind == MECH_SANTEXT) {
        /* Outside the domain means outside the frequent words: always sensitive. */
        int rep;
        if (m->n_sens <= 0) {
            snprintf(err, errlen, "mech: SanText+ has no sensitive words");
            return -1;
        }
        for (int32_t i0 = 0; i0 < m->n_sens; i0 += (int32_t)m->mcap) {
            size_t cnt = (size_t)(m->n_sens - i0) < m->mcap ? (size_t)(m->n_sens - i0) : m->mcap;
            if (fetch_many(m, m->sens + i0, cnt, m->mrows, err, errlen)) return -1;
            for (size_t i = 0; i < cnt; i++)
                m->val[i0 + (int32_t)i] = -dist2(m->xrow, m->mrows + i * (size_t)m->dim, m->dim);
        }
        rep = exp_mech(m, (size_t)m->n_sens, m->eps / 2);
        sodium_memzero(m->val, (size_t)m->n_sens * sizeof *m->val);
        sent = m->sens[rep];
        rows_used = m->mcap;
        o->cluster_size = m->n_sens;
    } else {
        const int32_t *mem;
        int n = cluster_members(m->cl, cid, &mem);
        /* With the clusters' rows stored together, the rows and their norms (into val) come
         * in one read; the cosines below are the same numbers either way. */
        int have_norms = m->crows != NULL;
        if (have_norms ? clrows_get(m->crows, cid, m->mrows, m->val, err, errlen)
                       : fetch_many(m, mem, (size_t)n, m->mrows, err, errlen))
            return -1;
        rows_used = (size_t)n;
        o->cluster_size = n;
        int i = 0;
        if (m->kind == MECH_CUSTEXT) {
            i = n > 1 ? custext(m, mem, n, err, errlen) : 0;
        } else {
            double nx = sqrt(dotf(m->xrow, m->xrow, m->dim));
            for (int j = 0; j < n; j++) {
                const float *cr = m->mrows + (size_t)j * m->dim;
                double nc = have_norms ? m->val[j] : sqrt(dotf(cr, cr, m->dim));
                m->val[j] = nx > 0 && nc > 0 ? dotf(m->xrow, cr, m->dim) / (nx * nc) : 0;
            }
            i = n > 1 ? rnm(m, n) : 0;
        }
        sent = mem[i];
    }
    sodium_memzero(m->xrow, (size_t)m->dim * sizeof(float));
    sodium_memzero(m->mrows, rows_used * (size_t)m->dim * sizeof(float));
    o->sent = sent;
    o->kind = MECH_REPLACED;
    o->eps = m->eps;
    return 0;
}
