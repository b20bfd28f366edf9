/* app/train/train: F32 training of a small Llama model (see train.h). */
#include "app/train/train.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/train/gguf_out.h"
#include "app/savefile.h"
#include "core/gguf.h"
#include "gpu/pool.h"
#include "gpu/rng.h"

/* Per-layer activations kept for the backward pass (N = B*T rows). */
struct layer_act {
    float *xn1, *r1, *q, *k, *v, *P, *att, *xm, *xn2, *r2, *a, *bu, *h;
};

struct layer_w {
    float *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w1, *w3, *w2;
};

struct train_model {
    struct train_config c;
    int max_batch, threads;
    int hd, kvd;
    size_t n_params;
    float *p, *g, *m, *v;
    struct train_tensor *tensors;
    int n_tensors;
    /* views into p and g */
    float *embd, *out_norm, *out, *gembd, *gout_norm, *gout;
    struct layer_w *lw, *lg;
    /* activations */
    float **xs;                 /* n_layers + 1 residual streams, N x dim */
    struct layer_act *act;
    float *xnf, *rf, *logits;
    /* backward scratch */
    float *dx, *dxn, *dq, *dk, *dv, *datt, *dh, *da, *db;
    float *dP;                  /* per attention task: T x T */
    float *rope_cos, *rope_sin; /* ctx x hd/2 */
    const int32_t *tok;         /* current batch */
    int B, T;
    struct layer_act *cur;      /* layer the attention tasks work on */
    struct pool *pool;
};

/* --- PRNG (gpu/rng) -------------------------------------------------------------------- */
/* Uniform in (0, 1), never 0, so log() in the Box-Muller transform stays finite. */
static double unit_open(uint64_t s[4]) { return ((rng_next(s) >> 11) + 0.5) / 9007199254740992.0; }

static float rng_normal(uint64_t s[4])
{
    double u = unit_open(s), w = unit_open(s);
    return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * w));
}

/* --- layout -------------------------------------------------------------------------- */
static void add_tensor(struct train_model *m, const char *name, int rows, int cols, int decay)
{
    struct train_tensor *t = &m->tensors[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->off = m->n_params;
    t->rows = rows;
    t->cols = cols;
    t->decay = decay;
    m->n_params += (size_t)rows * cols;
}

static void *alloc_f(size_t n, int *fail)
{
    void *p = calloc(n ? n : 1, sizeof(float));
    if (!p) *fail = 1;
    return p;
}

int train_open(struct train_model **out, const struct train_config *cfg, int max_batch,
               int threads, uint64_t seed, char *err, size_t errlen)
{
    *out = NULL;
    const struct train_config *c = cfg;
    if (c->vocab < 8 || c->dim < 2 || c->n_layers < 1 || c->n_heads < 1 || c->n_kv_heads < 1 ||
        c->ffn < 1 || c->ctx < 2 || max_batch < 1 || c->vocab > 1 << 20 || c->dim > 1 << 14 ||
        c->n_layers > 256 || c->ffn > 1 << 16 || c->ctx > 1 << 16 || max_batch > 4096) {
        snprintf(err, errlen, "model shape out of range (vocab %d, dim %d, layers %d, heads %d/%d, "
                 "ffn %d, ctx %d, batch %d)", c->vocab, c->dim, c->n_layers, c->n_heads,
                 c->n_kv_heads, c->ffn, c->ctx, max_batch);
        return -1;
    }
    if (c->dim % c->n_heads || c->n_heads % c->n_kv_heads || (c->dim / c->n_heads) % 2) {
        snprintf(err, errlen, "dim %d must split into %d heads of even size, heads into %d KV "
                 "heads", c->dim, c->n_heads, c->n_kv_heads);
        return -1;
    }
    if ((double)max_batch * c->n_heads * c->ctx * c->ctx > 4e9) {
        snprintf(err, errlen, "batch %d x ctx %d needs too much attention memory", max_batch, c->ctx);
        return -1;
    }
    struct train_model *m = calloc(1, sizeof *m);
    if (!m) goto oom0;
    m->c = *c;
    m->max_batch = max_batch;
    m->threads = threads < 1 ? 1 : threads;
    m->hd = c->dim / c->n_heads;
    m->kvd = m->hd * c->n_kv_heads;
    int L = c->n_layers, D = c->dim, F = c->ffn, kvd = m->kvd;
    int fail = 0;
    m->tensors = calloc((size_t)(9 * L + 3), sizeof *m->tensors);
    m->lw = calloc((size_t)L, sizeof *m->lw);
    m->lg = calloc((size_t)L, sizeof *m->lg);
    m->act = calloc((size_t)L, sizeof *m->act);
    m->xs = calloc((size_t)L + 1, sizeof *m->xs);
    if (!m->tensors || !m->lw || !m->lg || !m->act || !m->xs) goto oom;

    char name[48];
    add_tensor(m, "token_embd.weight", c->vocab, D, 1);
    for (int l = 0; l < L; l++) {
        static const char *const nm[9] = { "attn_norm", "attn_q", "attn_k", "attn_v",
            "attn_output", "ffn_norm", "ffn_gate", "ffn_up", "ffn_down" };
        const int rows[9] = { 1, D, kvd, kvd, D, 1, F, F, D };
        const int cols[9] = { D, D, D, D, D, D, D, D, F };
        for (int i = 0; i < 9; i++) {
            snprintf(name, sizeof name, "blk.%d.%s.weight", l, nm[i]);
            add_tensor(m, name, rows[i], cols[i], rows[i] > 1);
        }
    }
    add_tensor(m, "output_norm.weight", 1, D, 0);
    if (!c->tied) add_tensor(m, "output.weight", c->vocab, D, 1);

    m->p = alloc_f(m->n_params, &fail);
    m->g = alloc_f(m->n_params, &fail);
    m->m = alloc_f(m->n_params, &fail);
    m->v = alloc_f(m->n_params, &fail);
    if (fail) goto oom;
    int ti = 0;
    m->embd = m->p + m->tensors[ti].off;
    m->gembd = m->g + m->tensors[ti++].off;
    for (int l = 0; l < L; l++) {
        float **w = &m->lw[l].attn_norm, **gw = &m->lg[l].attn_norm;
        for (int i = 0; i < 9; i++, ti++) {
            w[i] = m->p + m->tensors[ti].off;
            gw[i] = m->g + m->tensors[ti].off;
        }
    }
    m->out_norm = m->p + m->tensors[ti].off;
    m->gout_norm = m->g + m->tensors[ti++].off;
    m->out = c->tied ? m->embd : m->p + m->tensors[ti].off;
    m->gout = c->tied ? m->gembd : m->g + m->tensors[ti].off;

    /* initialization: N(0, 0.02); projections into the residual stream scaled down by
     * sqrt(2 L) so the stream's variance does not grow with depth; norm gains 1 */
    uint64_t rng[4];
    rng_seed(rng, seed);
    for (int i = 0; i < m->n_tensors; i++) {
        struct train_tensor *t = &m->tensors[i];
        float *p = m->p + t->off;
        size_t n = (size_t)t->rows * t->cols;
        if (t->rows == 1) {
            for (size_t j = 0; j < n; j++) p[j] = 1.0f;
            continue;
        }
        float sd = 0.02f;
        if (strstr(t->name, "attn_output") || strstr(t->name, "ffn_down"))
            sd = 0.02f / sqrtf(2.0f * L);
        for (size_t j = 0; j < n; j++) p[j] = sd * rng_normal(rng);
    }

    size_t N = (size_t)max_batch * c->ctx;
    for (int l = 0; l <= L; l++) m->xs[l] = alloc_f(N * D, &fail);
    for (int l = 0; l < L; l++) {
        struct layer_act *a = &m->act[l];
        a->xn1 = alloc_f(N * D, &fail);
        a->r1 = alloc_f(N, &fail);
        a->q = alloc_f(N * D, &fail);
        a->k = alloc_f(N * kvd, &fail);
        a->v = alloc_f(N * kvd, &fail);
        a->P = alloc_f((size_t)max_batch * c->n_heads * c->ctx * c->ctx, &fail);
        a->att = alloc_f(N * D, &fail);
        a->xm = alloc_f(N * D, &fail);
        a->xn2 = alloc_f(N * D, &fail);
        a->r2 = alloc_f(N, &fail);
        a->a = alloc_f(N * F, &fail);
        a->bu = alloc_f(N * F, &fail);
        a->h = alloc_f(N * F, &fail);
    }
    m->xnf = alloc_f(N * D, &fail);
    m->rf = alloc_f(N, &fail);
    m->logits = alloc_f(N * c->vocab, &fail);
    m->dx = alloc_f(N * D, &fail);
    m->dxn = alloc_f(N * D, &fail);
    m->dq = alloc_f(N * D, &fail);
    m->dk = alloc_f(N * kvd, &fail);
    m->dv = alloc_f(N * kvd, &fail);
    m->datt = alloc_f(N * D, &fail);
    m->dh = alloc_f(N * F, &fail);
    m->da = alloc_f(N * F, &fail);
    m->db = alloc_f(N * F, &fail);
    m->dP = alloc_f((size_t)max_batch * c->n_kv_heads * c->ctx * c->ctx, &fail);
    m->rope_cos = alloc_f((size_t)c->ctx * m->hd / 2, &fail);
    m->rope_sin = alloc_f((size_t)c->ctx * m->hd / 2, &fail);
    if (fail) goto oom;
    for (int t = 0; t < c->ctx; t++)
        for (int i = 0; i < m->hd / 2; i++) {
            double th = t * pow((double)c->rope_base, -2.0 * i / m->hd);
            m->rope_cos[(size_t)t * m->hd / 2 + i] = (float)cos(th);
            m->rope_sin[(size_t)t * m->hd / 2 + i] = (float)sin(th);
        }
    if (pool_open(&m->pool, m->threads)) {
        snprintf(err, errlen, "cannot start %d threads", m->threads);
        train_close(m);
        return -1;
    }
    *out = m;
    return 0;
oom:
    train_close(m);
oom0:
    snprintf(err, errlen, "out of memory for the model and its activations");
    return -1;
}

void train_close(struct train_model *m)
{
    if (!m) return;
    if (m->pool) pool_close(m->pool);
    if (m->xs) for (int l = 0; l <= m->c.n_layers; l++) free(m->xs[l]);
    if (m->act)
        for (int l = 0; l < m->c.n_layers; l++) {
            struct layer_act *a = &m->act[l];
            float *f[] = { a->xn1, a->r1, a->q, a->k, a->v, a->P, a->att, a->xm, a->xn2, a->r2,
                           a->a, a->bu, a->h };
            for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(f[i]);
        }
    void *f[] = { m->p, m->g, m->m, m->v, m->xnf, m->rf, m->logits, m->dx, m->dxn, m->dq,
                  m->dk, m->dv, m->datt, m->dh, m->da, m->db, m->dP, m->rope_cos, m->rope_sin,
                  m->xs, m->act, m->lw, m->lg, m->tensors, m };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(f[i]);
}

const struct train_config *train_cfg(const struct train_model *m) { return &m->c; }
size_t train_n_params(const struct train_model *m) { return m->n_params; }
float *train_params(struct train_model *m) { return m->p; }
float *train_grads(struct train_model *m) { return m->g; }
int train_n_tensors(const struct train_model *m) { return m->n_tensors; }
const struct train_tensor *train_tensor(const struct train_model *m, int i)
{
    return i >= 0 && i < m->n_tensors ? &m->tensors[i] : NULL;
}
void train_zero_grad(struct train_model *m) { memset(m->g, 0, m->n_params * sizeof *m->g); }

/* --- building blocks ----------------------------------------------------------------- */
/* Y (N x out) = X (N x in) W^T, W out x in. */
static void mm_nt(const float *X, const float *W, float *Y, int N, int out, int in, float beta)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, out, in, 1.0f, X, in, W, in, beta,
                Y, out);
}
/* dX (N x in) = dY (N x out) W, with beta for accumulation. */
static void mm_nn(const float *dY, const float *W, float *dX, int N, int out, int in, float beta)
{
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, in, out, 1.0f, dY, out, W, in,
                beta, dX, in);
}
/* dW (out x in) += dY^T X. */
static void mm_tn(const float *dY, const float *X, float *dW, int N, int out, int in)
{
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, N, 1.0f, dY, out, X, in, 1.0f,
                dW, in);
}

static void rmsnorm(const float *x, const float *g, float *y, float *r, int N, int D, float eps)
{
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        double ss = 0;
        for (int j = 0; j < D; j++) ss += (double)xr[j] * xr[j];
        float ri = (float)(1.0 / sqrt(ss / D + eps));
        r[n] = ri;
        for (int j = 0; j < D; j++) y[(size_t)n * D + j] = xr[j] * ri * g[j];
    }
}

/* dx += d(rmsnorm)/dx . dy; dg += d/dg. */
static void rmsnorm_back(const float *x, const float *g, const float *r, const float *dy,
                         float *dx, float *dg, int N, int D)
{
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D, *dyr = dy + (size_t)n * D;
        float *dxr = dx + (size_t)n * D;
        float ri = r[n];
        double s = 0;
        for (int j = 0; j < D; j++) s += (double)g[j] * dyr[j] * xr[j];
        float c = (float)(s * ri * ri * ri / D);
        for (int j = 0; j < D; j++) {
            dxr[j] += ri * g[j] * dyr[j] - xr[j] * c;
            dg[j] += dyr[j] * xr[j] * ri;
        }
    }
}

/* Rotates adjacent pairs of every head of x (N rows of nh heads) by position; inverse
 * rotates back (the transpose, for gradients). */
static void rope(const struct train_model *m, float *x, int N, int T, int nh, int inverse)
{
    int hd = m->hd, half = hd / 2;
    for (int n = 0; n < N; n++) {
        int pos = n % T;
        const float *cs = m->rope_cos + (size_t)pos * half, *sn = m->rope_sin + (size_t)pos * half;
        for (int h = 0; h < nh; h++) {
            float *v = x + ((size_t)n * nh + h) * hd;
            for (int i = 0; i < half; i++) {
                float c = cs[i], s = inverse ? -sn[i] : sn[i];
                float a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * c - b * s;
                v[2 * i + 1] = a * s + b * c;
            }
        }
    }
}

/* One task: sequence b, KV head kh, and the query heads that share it. The products run
 * as single-threaded SGEMMs over the full T x T square; the causal mask zeroes the upper
 * triangle of P (and so of dS), which makes it contribute nothing. */
struct attn_task {
    int T, hd, D, kvd;
    int h0, h1;         /* the query heads [h0, h1) that share KV head kh */
    float scale;
    size_t kv;          /* offset of (b, kh) in the K/V rows */
    size_t row;         /* offset of sequence b in the D-wide rows (Q, attention output) */
    const float *K, *V; /* of (b, kh) */
    const float *Q;     /* of (b, head 0) */
    float *P;           /* probabilities of (b, head 0) */
};

static struct attn_task attn_task_of(const struct train_model *m, int task)
{
    const struct layer_act *A = m->cur;
    int T = m->T, H = m->c.n_heads, KVH = m->c.n_kv_heads, hd = m->hd, D = m->c.dim;
    int b = task / KVH, kh = task % KVH, grp = H / KVH;
    size_t kv = (size_t)b * T * m->kvd + kh * hd, row = (size_t)b * T * D;
    return (struct attn_task){
        .T = T, .hd = hd, .D = D, .kvd = m->kvd, .h0 = kh * grp, .h1 = (kh + 1) * grp,
        .scale = 1.0f / sqrtf((float)hd), .kv = kv, .row = row, .K = A->k + kv, .V = A->v + kv,
        .Q = A->q + row, .P = A->P + (size_t)b * H * T * T,
    };
}

static void attn_fwd_task(void *ctx, int task, int n_tasks)
{
    (void)n_tasks;
    struct train_model *m = ctx;
    struct attn_task a = attn_task_of(m, task);
    int T = a.T, hd = a.hd, D = a.D, kvd = a.kvd;
    for (int h = a.h0; h < a.h1; h++) {
        const float *Q = a.Q + h * hd;
        float *P = a.P + (size_t)h * T * T;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, a.scale, Q, D, a.K, kvd,
                    0.0f, P, T);
        for (int t = 0; t < T; t++) {
            float *row = P + (size_t)t * T, mx = row[0];
            for (int s = 1; s <= t; s++) mx = row[s] > mx ? row[s] : mx;
            for (int s = 0; s <= t; s++) row[s] = expf(row[s] - mx);
            float sum = 0;
            for (int s = 0; s <= t; s++) sum += row[s];
            float inv = 1.0f / sum;
            for (int s = 0; s <= t; s++) row[s] *= inv;
            for (int s = t + 1; s < T; s++) row[s] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, a.V, kvd,
                    0.0f, m->cur->att + a.row + h * hd, D);
    }
}

static void attn_bwd_task(void *ctx, int task, int n_tasks)
{
    (void)n_tasks;
    struct train_model *m = ctx;
    struct attn_task a = attn_task_of(m, task);
    int T = a.T, hd = a.hd, D = a.D, kvd = a.kvd;
    float *dK = m->dk + a.kv, *dV = m->dv + a.kv;
    float *dS = m->dP + (size_t)task * T * T;
    for (int h = a.h0; h < a.h1; h++) {
        const float *Q = a.Q + h * hd;
        const float *dO = m->datt + a.row + h * hd;
        const float *P = a.P + (size_t)h * T * T;
        float beta = h == a.h0 ? 0.0f : 1.0f;    /* heads of a group add up */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, T, hd, 1.0f, dO, D, a.V, kvd, 0.0f,
                    dS, T);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, P, T, dO, D, beta,
                    dV, kvd);
        for (int t = 0; t < T; t++) {
            float *row = dS + (size_t)t * T;
            const float *pr = P + (size_t)t * T;
            float dot = 0;
            for (int s = 0; s <= t; s++) dot += row[s] * pr[s];
            for (int s = 0; s <= t; s++) row[s] = pr[s] * (row[s] - dot) * a.scale;
            for (int s = t + 1; s < T; s++) row[s] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, hd, T, 1.0f, dS, T, a.K, kvd,
                    0.0f, m->dq + a.row + h * hd, D);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, T, hd, T, 1.0f, dS, T, Q, D, beta,
                    dK, kvd);
    }
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

float train_loss(struct train_model *m, const int32_t *tok, int B, int T, int backward)
{
    const struct train_config *c = &m->c;
    int D = c->dim, F = c->ffn, V = c->vocab, L = c->n_layers, kvd = m->kvd;
    int N = B * T;
    float eps = c->norm_eps;
    /* a batch the buffers were not sized for, or a token outside the vocabulary: NaN,
     * which the caller reports (train_run checks every loss) */
    if (B < 1 || T < 1 || B > m->max_batch || T > c->ctx) return NAN;
    for (size_t i = 0; i < (size_t)B * (T + 1); i++)
        if (tok[i] < 0 || tok[i] >= V) return NAN;
    openblas_set_num_threads(m->threads);
    m->tok = tok;
    m->B = B;
    m->T = T;

    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t id = tok[(size_t)b * (T + 1) + t];
            memcpy(m->xs[0] + ((size_t)b * T + t) * D, m->embd + (size_t)id * D, (size_t)D * 4);
        }
    for (int l = 0; l < L; l++) {
        struct layer_act *A = &m->act[l];
        struct layer_w *W = &m->lw[l];
        rmsnorm(m->xs[l], W->attn_norm, A->xn1, A->r1, N, D, eps);
        mm_nt(A->xn1, W->wq, A->q, N, D, D, 0);
        mm_nt(A->xn1, W->wk, A->k, N, kvd, D, 0);
        mm_nt(A->xn1, W->wv, A->v, N, kvd, D, 0);
        rope(m, A->q, N, T, c->n_heads, 0);
        rope(m, A->k, N, T, c->n_kv_heads, 0);
        m->cur = A;
        openblas_set_num_threads(1);
        pool_run(m->pool, attn_fwd_task, m, B * c->n_kv_heads);
        openblas_set_num_threads(m->threads);
        memcpy(A->xm, m->xs[l], (size_t)N * D * 4);
        mm_nt(A->att, W->wo, A->xm, N, D, D, 1);
        rmsnorm(A->xm, W->ffn_norm, A->xn2, A->r2, N, D, eps);
        mm_nt(A->xn2, W->w1, A->a, N, F, D, 0);
        mm_nt(A->xn2, W->w3, A->bu, N, F, D, 0);
        for (size_t i = 0; i < (size_t)N * F; i++) A->h[i] = silu(A->a[i]) * A->bu[i];
        memcpy(m->xs[l + 1], A->xm, (size_t)N * D * 4);
        mm_nt(A->h, W->w2, m->xs[l + 1], N, D, F, 1);
    }
    rmsnorm(m->xs[L], m->out_norm, m->xnf, m->rf, N, D, eps);
    mm_nt(m->xnf, m->out, m->logits, N, V, D, 0);

    /* cross-entropy; the logits buffer becomes d(loss)/d(logits) */
    double loss = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *lg = m->logits + ((size_t)b * T + t) * V;
            int32_t y = tok[(size_t)b * (T + 1) + t + 1];
            float mx = lg[0];
            for (int j = 1; j < V; j++) if (lg[j] > mx) mx = lg[j];
            double sum = 0;
            for (int j = 0; j < V; j++) sum += exp((double)lg[j] - mx);
            loss += log(sum) + mx - lg[y];
            if (backward) {
                float inv = (float)(1.0 / sum);
                for (int j = 0; j < V; j++) lg[j] = expf(lg[j] - mx) * inv / N;
                lg[y] -= 1.0f / N;
            }
        }
    loss /= N;
    if (!backward) return (float)loss;

    mm_tn(m->logits, m->xnf, m->gout, N, V, D);
    mm_nn(m->logits, m->out, m->dxn, N, V, D, 0);
    memset(m->dx, 0, (size_t)N * D * 4);
    rmsnorm_back(m->xs[L], m->out_norm, m->rf, m->dxn, m->dx, m->gout_norm, N, D);
    for (int l = L - 1; l >= 0; l--) {
        struct layer_act *A = &m->act[l];
        struct layer_w *W = &m->lw[l], *G = &m->lg[l];
        /* feed-forward: x_out = xm + h W2^T */
        mm_tn(m->dx, A->h, G->w2, N, D, F);
        mm_nn(m->dx, W->w2, m->dh, N, D, F, 0);
        for (size_t i = 0; i < (size_t)N * F; i++) {
            float a = A->a[i], sg = 1.0f / (1.0f + expf(-a));
            m->db[i] = m->dh[i] * a * sg;
            m->da[i] = m->dh[i] * A->bu[i] * sg * (1.0f + a * (1.0f - sg));
        }
        mm_tn(m->da, A->xn2, G->w1, N, F, D);
        mm_tn(m->db, A->xn2, G->w3, N, F, D);
        mm_nn(m->da, W->w1, m->dxn, N, F, D, 0);
        mm_nn(m->db, W->w3, m->dxn, N, F, D, 1);
        rmsnorm_back(A->xm, W->ffn_norm, A->r2, m->dxn, m->dx, G->ffn_norm, N, D);
        /* attention: xm = x + att Wo^T */
        mm_tn(m->dx, A->att, G->wo, N, D, D);
        mm_nn(m->dx, W->wo, m->datt, N, D, D, 0);
        m->cur = A;
        openblas_set_num_threads(1);
        pool_run(m->pool, attn_bwd_task, m, B * c->n_kv_heads);
        openblas_set_num_threads(m->threads);
        rope(m, m->dq, N, T, c->n_heads, 1);
        rope(m, m->dk, N, T, c->n_kv_heads, 1);
        mm_tn(m->dq, A->xn1, G->wq, N, D, D);
        mm_tn(m->dk, A->xn1, G->wk, N, kvd, D);
        mm_tn(m->dv, A->xn1, G->wv, N, kvd, D);
        mm_nn(m->dq, W->wq, m->dxn, N, D, D, 0);
        mm_nn(m->dk, W->wk, m->dxn, N, kvd, D, 1);
        mm_nn(m->dv, W->wv, m->dxn, N, kvd, D, 1);
        rmsnorm_back(m->xs[l], W->attn_norm, A->r1, m->dxn, m->dx, G->attn_norm, N, D);
    }
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int32_t id = tok[(size_t)b * (T + 1) + t];
            float *ge = m->gembd + (size_t)id * D;
            const float *d = m->dx + ((size_t)b * T + t) * D;
            for (int j = 0; j < D; j++) ge[j] += d[j];
        }
    return (float)loss;
}

/* --- optimizer ----------------------------------------------------------------------- */
float train_lr(const struct train_hparams *h, int step)
{
    if (step < h->warmup) return h->lr * (float)(step + 1) / (float)h->warmup;
    int span = h->steps - h->warmup;
    double prog = span > 0 ? (double)(step - h->warmup) / span : 1.0;
    if (prog > 1) prog = 1;
    double lo = h->lr * h->min_lr_frac;
    return (float)(lo + (h->lr - lo) * 0.5 * (1.0 + cos(3.141592653589793 * prog)));
}

float train_adamw(struct train_model *m, const struct train_hparams *h, int step)
{
    double ss = 0;
    for (size_t i = 0; i < m->n_params; i++) ss += (double)m->g[i] * m->g[i];
    float norm = (float)sqrt(ss);
    float gs = h->clip > 0 && norm > h->clip ? h->clip / norm : 1.0f;
    float lr = train_lr(h, step);
    float bc1 = 1.0f - powf(h->beta1, (float)(step + 1));
    float bc2 = 1.0f - powf(h->beta2, (float)(step + 1));
    for (int t = 0; t < m->n_tensors; t++) {
        const struct train_tensor *tt = &m->tensors[t];
        float wd = tt->decay ? h->weight_decay : 0.0f;
        size_t n = (size_t)tt->rows * tt->cols;
        float *p = m->p + tt->off, *g = m->g + tt->off, *mm = m->m + tt->off, *vv = m->v + tt->off;
        for (size_t i = 0; i < n; i++) {
            float gi = g[i] * gs;
            mm[i] = h->beta1 * mm[i] + (1.0f - h->beta1) * gi;
            vv[i] = h->beta2 * vv[i] + (1.0f - h->beta2) * gi * gi;
            float mh = mm[i] / bc1, vh = vv[i] / bc2;
            p[i] -= lr * (mh / (sqrtf(vh) + h->adam_eps) + wd * p[i]);
        }
    }
    return norm;
}

/* --- export and checkpoints ---------------------------------------------------------- */
void train_to_gguf(const struct train_model *m, struct gguf_out *w, const char *name)
{
    const struct train_config *c = &m->c;
    gguf_out_str(w, "general.architecture", "llama");
    gguf_out_str(w, "general.name", name);
    gguf_out_u32(w, "general.file_type", 0);   /* all F32 */
    gguf_out_u32(w, "llama.context_length", (uint32_t)c->ctx);
    gguf_out_u32(w, "llama.embedding_length", (uint32_t)c->dim);
    gguf_out_u32(w, "llama.block_count", (uint32_t)c->n_layers);
    gguf_out_u32(w, "llama.feed_forward_length", (uint32_t)c->ffn);
    gguf_out_u32(w, "llama.attention.head_count", (uint32_t)c->n_heads);
    gguf_out_u32(w, "llama.attention.head_count_kv", (uint32_t)c->n_kv_heads);
    gguf_out_f32(w, "llama.attention.layer_norm_rms_epsilon", c->norm_eps);
    gguf_out_f32(w, "llama.rope.freq_base", c->rope_base);
    gguf_out_u32(w, "llama.rope.dimension_count", (uint32_t)m->hd);
    gguf_out_u32(w, "llama.vocab_size", (uint32_t)c->vocab);
    for (int i = 0; i < m->n_tensors; i++) {
        const struct train_tensor *t = &m->tensors[i];
        uint64_t ne[2] = { (uint64_t)t->cols, (uint64_t)t->rows };
        gguf_out_tensor_ref(w, t->name, GGUF_T_F32, t->rows > 1 ? 2 : 1, ne, m->p + t->off);
    }
}

struct ckpt_head {
    char magic[8];
    int32_t cfg[8];
    float eps, base;
    int32_t step, pad;
    uint64_t rng[4], tag, n_params;
};

static void ckpt_fill(const struct train_model *m, struct ckpt_head *h)
{
    memset(h, 0, sizeof *h);
    memcpy(h->magic, "CMIFCKP1", 8);
    const struct train_config *c = &m->c;
    int32_t v[8] = { c->vocab, c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->ffn, c->ctx,
                     c->tied };
    memcpy(h->cfg, v, sizeof v);
    h->eps = c->norm_eps;
    h->base = c->rope_base;
    h->n_params = m->n_params;
}

struct ckpt_file {
    const struct train_model *m;
    const struct ckpt_head *h;
};

/* Header, weights, then Adam's first and second moments. */
static int write_ckpt(FILE *f, void *ctx)
{
    const struct ckpt_file *o = ctx;
    const struct train_model *m = o->m;
    size_t n = m->n_params;
    int ok = fwrite(o->h, sizeof *o->h, 1, f) == 1 && fwrite(m->p, 4, n, f) == n &&
             fwrite(m->m, 4, n, f) == n && fwrite(m->v, 4, n, f) == n;
    return ok ? 0 : -1;
}

int train_save(const struct train_model *m, const char *path, int step, const uint64_t rng[4],
               uint64_t tag, char *err, size_t errlen)
{
    struct ckpt_head h;
    ckpt_fill(m, &h);
    h.step = step;
    memcpy(h.rng, rng, sizeof h.rng);
    h.tag = tag;
    struct ckpt_file o = {m, &h};
    return savefile_write(path, write_ckpt, &o, err, errlen);
}

int train_load(struct train_model *m, const char *path, int *step, uint64_t rng[4],
               uint64_t tag, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    struct ckpt_head h, want;
    ckpt_fill(m, &want);
    size_t n = m->n_params;
    int rc = -1;
    if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, want.magic, 8) != 0) {
        snprintf(err, errlen, "%s: not a cmif training checkpoint", path);
    } else if (memcmp(h.cfg, want.cfg, sizeof h.cfg) != 0 || h.eps != want.eps ||
               h.base != want.base || h.n_params != want.n_params) {
        snprintf(err, errlen, "%s: checkpoint is of a different model shape", path);
    } else if (h.tag != tag) {
        snprintf(err, errlen, "%s: checkpoint was made with other data or options "
                 "(tokens, vocabulary, batch, lr, steps or seed differ)", path);
    } else if (h.step < 0 || fread(m->p, 4, n, f) != n || fread(m->m, 4, n, f) != n ||
               fread(m->v, 4, n, f) != n) {
        snprintf(err, errlen, "%s: checkpoint is truncated", path);
    } else {
        *step = h.step;
        memcpy(rng, h.rng, sizeof h.rng);
        rc = 0;
    }
    fclose(f);
    return rc;
}
