/* gpu/backend_cpu: the Llama forward pass on the CPU.
 *
 * Decode steps (one vector) multiply the quantized weights directly (qt_matvec over a
 * prepared activation), split over the thread pool. A layer costs four pool
 * synchronisations: (1) per KV head, its Q/K/V rows, RoPE, cache write and attention
 * (qkva_task; when KV heads do not spread evenly over the threads, Q/K/V rows are split
 * instead and attention runs as a separate dispatch); (2) output projection; (3) gate and
 * up with SwiGLU in one dispatch; (4) down.
 * Prompt batches go through qt_matmul (integer formats: the decode kernels over L2-sized
 * weight tiles against all the batch's prepared activations; F16/BF16: SGEMM on dequantized
 * tiles). A job's activations are prepared once (positions split over the pool), then
 * four tasks per thread each take a slice of the weight rows, single-threaded, and apply
 * SwiGLU or the residual add to their slice; rmsnorm and RoPE run per position over the
 * pool. Prompt attention is causal SGEMM per head over an F32 KV cache; decode steps and
 * short batches attend a KV head's whole query group at once (gpu/attn, SIMD).
 * Q4_0/IQ4_NL/IQ4_XS/Q4_K matrices are repacked at load into 16-row groups where the SIMD
 * level has kernels for that layout (repack_weights); row slices are cut on multiples of 16 rows.
 * RoPE uses GGUF's "normal" layout: adjacent pairs (x[2i], x[2i+1]) rotate together. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cblas.h>

#include "gpu/attn.h"
#include "gpu/backend.h"
#include "gpu/pool.h"
#include "gpu/quant.h"

#define BATCH_MAX 256   /* positions per batched pass (bounds the scratch memory) */
#define MAX_PARTS 3
#define MV_TASK_BYTES (4u << 20)   /* decode: weights per task of a large matrix */

struct cpu {
    struct dec_config c;
    struct dec_layer *layers;
    struct dec_tensor out_norm, output;
    int ctx, nth;
    int fuse_qkva;               /* decode: one task per KV head (see qkva_task) */
    struct pool *pool;
    int qd, kvd;
    float *kc, *vc;              /* [layer][ctx][kvd] */
    float *inv_freq;             /* head_dim/2 RoPE frequencies */

    /* decode scratch */
    float *x, *xb, *q, *k, *v, *ao, *g, *u, *att, *ltmp;
    void *act[MAX_PARTS];
    size_t act_cap;

    /* batch scratch (grown on demand) */
    float *bx, *bxb, *bq, *bk, *bv, *bao, *bg;
    int bcap;
    float **mm_scratch, **mm_y;  /* per task */
    size_t mm_scratch_cap, mm_y_cap;
    void *mm_act[MAX_PARTS];     /* prepared batch activations, shared by the tasks */
    size_t mm_act_cap[MAX_PARTS];
    float **att_big;             /* per task: n x (pos+n) scores of batched attention */
    size_t att_big_cap;

    char name[96];
    void *packed;                /* the repacked weights (repack_weights), one mapping */
    size_t packed_bytes;
};

/* ---------------------------------------------------------------- small kernels */

static void rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    float s = (float)(1.0 / sqrt(ss / n + eps));
    for (int i = 0; i < n; i++) o[i] = w[i] * (s * x[i]);
}

static void rope(const struct cpu *b, float *v, int n_heads, int pos)
{
    int hd = b->c.head_dim;
    for (int i = 0; i < hd / 2; i++) {
        float th = (float)pos * b->inv_freq[i];
        float cs = cosf(th), sn = sinf(th);
        for (int h = 0; h < n_heads; h++) {
            float *p = v + (size_t)h * hd + 2 * i;
            float x0 = p[0], x1 = p[1];
            p[0] = x0 * cs - x1 * sn;
            p[1] = x0 * sn + x1 * cs;
        }
    }
}

static inline float silu(float x) { return x / (1.0f + expf(-x)); }

static size_t row_bytes(const struct dec_tensor *t) { return qt_row_bytes(t->type, (size_t)t->cols); }

/* ---------------------------------------------------------------- decode matvec jobs */

struct mv_part {
    const struct dec_tensor *w;
    const void *act;
    float *y;
};

struct mv_job {
    struct mv_part p[MAX_PARTS];
    int np;
    int swiglu;       /* p[0] gate, p[1] up: y0 = silu(y0) * y1 over the same rows */
    size_t total;     /* rows over all parts (or of one part when swiglu) */
};

/* Boundary of task t's range, rounded to 16 rows so tasks start on whole row groups. */
static size_t split(size_t total, int t, int nt)
{
    if (t >= nt) return total;
    size_t b = (size_t)((unsigned long long)total * (unsigned)t / (unsigned)nt);
    b &= ~(size_t)15;
    return b;
}

/* Tasks of a prompt-batch matmul: several per thread, claimed as threads come free, so a
 * thread slowed by a neighbour does not hold the others at the end of the job. */
static int mm_tasks(const struct cpu *b) { return b->nth > 1 ? 4 * b->nth : 1; }

static void mv_task(void *ctx, int t, int nt)
{
    struct mv_job *j = ctx;
    size_t r0 = split(j->total, t, nt), r1 = split(j->total, t + 1, nt);
    if (r0 >= r1) return;
    if (j->swiglu) {
        for (int i = 0; i < 2; i++) {
            const struct mv_part *p = &j->p[i];
            qt_matvec(p->w->type, p->w->data, (size_t)p->w->cols, p->act, p->y + r0, r0, r1);
        }
        float *g = j->p[0].y, *u = j->p[1].y;
        for (size_t r = r0; r < r1; r++) g[r] = silu(g[r]) * u[r];
        return;
    }
    size_t base = 0;
    for (int i = 0; i < j->np; i++) {
        const struct mv_part *p = &j->p[i];
        size_t rows = (size_t)p->w->rows;
        size_t a = r0 > base ? r0 - base : 0;
        size_t e = r1 - base < rows ? r1 - base : rows;
        if (r1 > base && a < e)
            qt_matvec(p->w->type, p->w->data, (size_t)p->w->cols, p->act, p->y + a, a, e);
        base += rows;
        if (base >= r1) break;
    }
}

/* Tasks for a decode job: four per thread, and for a matrix larger than that many
 * MV_TASK_BYTES (in practice the output matrix of a large vocabulary) one per
 * MV_TASK_BYTES. Tasks are claimed as threads come free, so when one thread runs slower
 * (an interrupt, another tenant) the other idles at the end for up to one task: with four
 * per thread, a task of a 128k x 2048 Q6_K output matrix is 27 MB, over a millisecond of
 * a ~22 ms step. Smaller tasks everywhere would cost a claim (a contended cache line) per
 * task and a restart of the row stream's prefetch; layer matrices keep four per thread. */
static int mv_tasks(const struct mv_job *j, int nth)
{
    size_t bytes = 0;
    for (int i = 0; i < j->np; i++) bytes += (size_t)j->p[i].w->rows * row_bytes(j->p[i].w);
    size_t n = bytes / MV_TASK_BYTES, most = j->total / 16;
    if (n > most) n = most;
    if (n > 4096) n = 4096;
    return n > (size_t)(4 * nth) ? (int)n : 4 * nth;
}

/* Prepares x for every part (once per distinct weight type) and runs the job. */
static void mv_run(struct cpu *b, struct mv_job *j, const float *x, size_t n)
{
    for (int i = 0; i < j->np; i++) {
        int done = 0;
        for (int k = 0; k < i; k++)
            if (j->p[k].w->type == j->p[i].w->type) {
                j->p[i].act = j->p[k].act;
                done = 1;
                break;
            }
        if (!done) {
            qt_act_prepare(j->p[i].w->type, x, n, b->act[i]);
            j->p[i].act = b->act[i];
        }
    }
    if (!j->swiglu) {
        j->total = 0;
        for (int i = 0; i < j->np; i++) j->total += (size_t)j->p[i].w->rows;
    } else {
        j->total = (size_t)j->p[0].w->rows;
    }
    pool_run(b->pool, mv_task, j, b->nth > 1 ? mv_tasks(j, b->nth) : 1);
}

static void mv1(struct cpu *b, const struct dec_tensor *w, const float *x, float *y)
{
    struct mv_job j = {.np = 1};
    j.p[0].w = w;
    j.p[0].y = y;
    mv_run(b, &j, x, (size_t)w->cols);
}

/* ---------------------------------------------------------------- batched matmul jobs */

struct mm_job {
    struct cpu *b;
    const struct dec_tensor *w[MAX_PARTS];
    float *y[MAX_PARTS];
    int np;
    const float *x;
    int n;
    int residual;     /* y += X·Wᵀ (the residual stream) instead of y = X·Wᵀ */
    int swiglu;       /* parts 0 gate, 1 up (same rows): y0 = silu(gate) * up; y1 unused */
    const void *act[MAX_PARTS];   /* X prepared for part i's type, or NULL: qt_matmul */
    int prep[MAX_PARTS];          /* part i's act is filled by prep_task */
};

/* Prepares the batch's activations for the integer parts, positions split over the tasks. */
static void prep_task(void *ctx, int t, int nt)
{
    struct mm_job *j = ctx;
    size_t j0 = (size_t)j->n * (size_t)t / (size_t)nt, j1 = (size_t)j->n * (size_t)(t + 1) / (size_t)nt;
    for (int i = 0; i < j->np; i++)
        if (j->prep[i])
            qt_matmul_prepare(j->w[i]->type, j->x, (size_t)j->w[i]->cols, j0, j1, (void *)j->act[i]);
}

static void mm_task(void *ctx, int t, int nt)
{
    struct mm_job *j = ctx;
    for (int i = 0; i < j->np; i++) {
        const struct dec_tensor *w = j->w[i];
        size_t rows = (size_t)w->rows, cols = (size_t)w->cols;
        size_t r0 = split(rows, t, nt), r1 = split(rows, t + 1, nt);
        if (r0 >= r1) continue;
        size_t m = r1 - r0;
        float *yt = j->b->mm_y[t];
        const unsigned char *wr = (const unsigned char *)w->data + r0 * row_bytes(w);
        if (j->act[i]) qt_matmul_prepared(w->type, wr, m, cols, j->act[i], (size_t)j->n, yt);
        else qt_matmul(w->type, wr, m, cols, j->x, (size_t)j->n, yt, j->b->mm_scratch[t]);
        for (int r = 0; r < j->n; r++) {
            float *y = j->y[i] + (size_t)r * rows + r0;
            const float *s = yt + (size_t)r * m;
            if (j->residual)
                for (size_t c = 0; c < m; c++) y[c] += s[c];
            else if (j->swiglu && i == 1) {   /* this slice's gate rows are done: fold up in */
                float *g = j->y[0] + (size_t)r * rows + r0;
                for (size_t c = 0; c < m; c++) g[c] = silu(g[c]) * s[c];
            } else
                memcpy(y, s, m * sizeof(float));
        }
    }
}

/* Makes sure every task's scratch fits the largest slice of these parts. */
static int mm_reserve(struct cpu *b, const struct mm_job *j)
{
    size_t need_s = 0, need_y = 0;
    int nt = mm_tasks(b);
    for (int i = 0; i < j->np; i++) {
        size_t rows = (size_t)j->w[i]->rows;
        size_t slice = 0;
        for (int t = 0; t < nt; t++) {
            size_t m = split(rows, t + 1, nt) - split(rows, t, nt);
            if (m > slice) slice = m;
        }
        /* parts on prepared activations need no scratch of their own */
        size_t s = j->act[i] ? 0 : qt_matmul_scratch_bytes(j->w[i]->type, slice, (size_t)j->w[i]->cols, (size_t)j->n);
        if (s > need_s) need_s = s;
        if (slice * (size_t)j->n > need_y) need_y = slice * (size_t)j->n;
    }
    if (need_s > b->mm_scratch_cap) {
        for (int t = 0; t < nt; t++) {
            free(b->mm_scratch[t]);
            b->mm_scratch[t] = malloc(need_s ? need_s : 1);
            if (!b->mm_scratch[t]) {
                b->mm_scratch_cap = 0;
                return -1;
            }
        }
        b->mm_scratch_cap = need_s;
    }
    if (need_y > b->mm_y_cap) {
        for (int t = 0; t < nt; t++) {
            free(b->mm_y[t]);
            b->mm_y[t] = malloc(need_y * sizeof(float));
            if (!b->mm_y[t]) {
                b->mm_y_cap = 0;
                return -1;
            }
        }
        b->mm_y_cap = need_y;
    }
    return 0;
}

/* Points each integer part at a prepared copy of X (one per distinct type, prepared once
 * for all tasks instead of once per task and part); -1 when out of memory. */
static int mm_acts(struct cpu *b, struct mm_job *j)
{
    int any = 0;
    for (int i = 0; i < j->np; i++) {
        int type = j->w[i]->type;
        size_t cols = (size_t)j->w[i]->cols, need = qt_matmul_act_bytes(type, cols, (size_t)j->n);
        j->act[i] = NULL;
        j->prep[i] = 0;
        if (!need) continue;
        for (int k = 0; k < i && !j->act[i]; k++)
            if (j->prep[k] && j->w[k]->type == type && (size_t)j->w[k]->cols == cols) j->act[i] = j->act[k];
        if (j->act[i]) continue;
        if (need > b->mm_act_cap[i]) {
            free(b->mm_act[i]);
            b->mm_act_cap[i] = 0;
            b->mm_act[i] = aligned_alloc(64, (need + 63) & ~(size_t)63);
            if (!b->mm_act[i]) return -1;
            b->mm_act_cap[i] = need;
        }
        j->act[i] = b->mm_act[i];
        j->prep[i] = any = 1;
    }
    if (any) pool_run(b->pool, prep_task, j, b->nth);
    return 0;
}

static int mm_run(struct cpu *b, struct mm_job *j, char *err, size_t errlen)
{
    j->b = b;
    if (mm_acts(b, j) || mm_reserve(b, j)) {
        snprintf(err, errlen, "cpu backend: out of memory for batch scratch");
        return -1;
    }
    pool_run(b->pool, mm_task, j, mm_tasks(b));
    return 0;
}

/* ---------------------------------------------------------------- attention */

struct att_job {
    struct cpu *b;
    const float *q;      /* n x qd */
    float *out;          /* n x qd */
    int n, pos, layer;
    float *scores;       /* per task, n_heads/n_kv_heads x ctx */
};

/* The query heads h0 .. h0+grp-1 (sharing one KV head) of query row q over cache positions
 * 0 .. span-1; s holds grp*span scores. */
static void attend(const struct cpu *b, int layer, const float *q, float *o, int h0, int grp,
                   int span, float *s)
{
    int hd = b->c.head_dim, group = b->c.n_heads / b->c.n_kv_heads;
    size_t koff = (size_t)layer * b->ctx * b->kvd + (size_t)(h0 / group) * hd;
    attn_group(q + (size_t)h0 * hd, b->kc + koff, b->vc + koff, (size_t)b->kvd, span, hd, grp,
               1.0f / sqrtf((float)hd), s, o + (size_t)h0 * hd);
}

/* Short batches: each task takes whole KV groups when they divide evenly among the tasks
 * (each K/V row read once per group), otherwise a slice of the heads one by one. */
static void att_task(void *ctx, int t, int nt)
{
    struct att_job *j = ctx;
    const struct cpu *b = j->b;
    int H = b->c.n_heads, KV = b->c.n_kv_heads, group = H / KV;
    int by_group = KV % nt == 0, units = by_group ? KV : H, width = by_group ? group : 1;
    int u0 = (int)((long)units * t / nt), u1 = (int)((long)units * (t + 1) / nt);
    float *s = j->scores + (size_t)t * group * b->ctx;
    for (int i = 0; i < j->n; i++) {
        int span = j->pos + i + 1;   /* causal: positions 0 .. pos+i */
        for (int u = u0; u < u1; u++)
            attend(b, j->layer, j->q + (size_t)i * b->qd, j->out + (size_t)i * b->qd, u * width,
                   width, span, s);
    }
}

/* Decode step, one task per KV head g: the Q rows of g's query heads and g's K and V rows,
 * RoPE, the cache write and those heads' attention. Nothing crosses between KV heads, so
 * projections and attention need no synchronisation in between. */
struct qkva_job {
    struct cpu *b;
    const struct dec_layer *L;
    const void *act_q, *act_k, *act_v;
    int layer, pos;
};

static void qkva_task(void *ctx, int g, int n_groups)
{
    (void)n_groups;
    struct qkva_job *j = ctx;
    struct cpu *b = j->b;
    const struct dec_layer *L = j->L;
    int hd = b->c.head_dim, grp = b->c.n_heads / b->c.n_kv_heads;
    size_t q0 = (size_t)g * grp * hd, q1 = q0 + (size_t)grp * hd;
    size_t k0 = (size_t)g * hd, k1 = k0 + (size_t)hd;
    qt_matvec(L->wq.type, L->wq.data, (size_t)L->wq.cols, j->act_q, b->q + q0, q0, q1);
    qt_matvec(L->wk.type, L->wk.data, (size_t)L->wk.cols, j->act_k, b->k + k0, k0, k1);
    qt_matvec(L->wv.type, L->wv.data, (size_t)L->wv.cols, j->act_v, b->v + k0, k0, k1);
    rope(b, b->q + q0, grp, j->pos);
    rope(b, b->k + k0, 1, j->pos);
    size_t off = ((size_t)j->layer * b->ctx + (size_t)j->pos) * b->kvd + k0;
    memcpy(b->kc + off, b->k + k0, (size_t)hd * sizeof(float));
    memcpy(b->vc + off, b->v + k0, (size_t)hd * sizeof(float));
    attend(b, j->layer, b->q, b->ao, g * grp, grp, j->pos + 1, b->att + (size_t)g * grp * b->ctx);
}

/* Batched attention with SGEMM, for prompts: per head, S = Q_h K_g^T over the positions
 * 0 .. pos+n-1, causal mask, scale and softmax per row, then O_h = P V_g. Each task owns
 * a slice of the heads and an n x (pos+n) score block (b->att_big[t]). */
static void att_gemm_task(void *ctx, int t, int nt)
{
    struct att_job *j = ctx;
    const struct cpu *b = j->b;
    int H = b->c.n_heads, hd = b->c.head_dim, group = b->c.n_heads / b->c.n_kv_heads;
    int h0 = (int)((long)H * t / nt), h1 = (int)((long)H * (t + 1) / nt);
    int n = j->n, span = j->pos + j->n;
    const float *kc = b->kc + (size_t)j->layer * b->ctx * b->kvd;
    const float *vc = b->vc + (size_t)j->layer * b->ctx * b->kvd;
    float *S = b->att_big[t];
    float scale = 1.0f / sqrtf((float)hd);
    for (int h = h0; h < h1; h++) {
        size_t koff = (size_t)(h / group) * hd;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, span, hd, scale,
                    j->q + (size_t)h * hd, b->qd, kc + koff, b->kvd, 0.0f, S, span);
        for (int i = 0; i < n; i++) {
            float *r = S + (size_t)i * span;
            int last = j->pos + i;   /* causal: row i sees positions 0 .. pos+i */
            float mx = -INFINITY;
            for (int p = 0; p <= last; p++)
                if (r[p] > mx) mx = r[p];
            float sum = 0;
            for (int p = 0; p <= last; p++) sum += (r[p] = expf(r[p] - mx));
            float inv = 1.0f / sum;
            for (int p = 0; p <= last; p++) r[p] *= inv;
            for (int p = last + 1; p < span; p++) r[p] = 0.0f;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, hd, span, 1.0f, S, span,
                    vc + koff, b->kvd, 0.0f, j->out + (size_t)h * hd, b->qd);
    }
}

#define ATT_GEMM_MIN 8   /* batches at least this long use the SGEMM attention */

static int attention(struct cpu *b, int layer, const float *q, float *out, int n, int pos)
{
    struct att_job j = {b, q, out, n, pos, layer, b->att};
    if (n >= ATT_GEMM_MIN) {
        size_t need = (size_t)n * (size_t)(pos + n);
        if (need > b->att_big_cap) {
            for (int t = 0; t < b->nth; t++) {
                free(b->att_big[t]);
                if (!(b->att_big[t] = malloc(need * sizeof(float)))) {
                    b->att_big_cap = 0;
                    return -1;
                }
            }
            b->att_big_cap = need;
        }
        pool_run(b->pool, att_gemm_task, &j, b->nth);
        return 0;
    }
    pool_run(b->pool, att_task, &j, b->nth);
    return 0;
}

static void store_kv(struct cpu *b, int layer, int pos, const float *k, const float *v)
{
    size_t off = ((size_t)layer * b->ctx + (size_t)pos) * b->kvd;
    memcpy(b->kc + off, k, (size_t)b->kvd * sizeof(float));
    memcpy(b->vc + off, v, (size_t)b->kvd * sizeof(float));
}

/* ---------------------------------------------------------------- forward passes */

static void forward_one(struct cpu *b, const float *in, int pos, float *logits)
{
    const struct dec_config *c = &b->c;
    int dim = c->dim;
    memcpy(b->x, in, (size_t)dim * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        const struct dec_layer *L = &b->layers[l];
        rmsnorm(b->xb, b->x, L->attn_norm.data, dim, c->norm_eps);
        if (b->fuse_qkva) {
            struct qkva_job j = {b, L, b->act[0], b->act[1], b->act[2], l, pos};
            qt_act_prepare(L->wq.type, b->xb, (size_t)dim, b->act[0]);
            if (L->wk.type == L->wq.type) j.act_k = b->act[0];
            else qt_act_prepare(L->wk.type, b->xb, (size_t)dim, b->act[1]);
            if (L->wv.type == L->wq.type) j.act_v = b->act[0];
            else if (L->wv.type == L->wk.type) j.act_v = j.act_k;
            else qt_act_prepare(L->wv.type, b->xb, (size_t)dim, b->act[2]);
            pool_run(b->pool, qkva_task, &j, c->n_kv_heads);
        } else {
            struct mv_job j = {.np = 3};
            j.p[0].w = &L->wq; j.p[0].y = b->q;
            j.p[1].w = &L->wk; j.p[1].y = b->k;
            j.p[2].w = &L->wv; j.p[2].y = b->v;
            mv_run(b, &j, b->xb, (size_t)dim);
            rope(b, b->q, c->n_heads, pos);
            rope(b, b->k, c->n_kv_heads, pos);
            store_kv(b, l, pos, b->k, b->v);
            (void)attention(b, l, b->q, b->ao, 1, pos);   /* n = 1: no allocation */
        }
        mv1(b, &L->wo, b->ao, b->xb);
        for (int i = 0; i < dim; i++) b->x[i] += b->xb[i];

        rmsnorm(b->xb, b->x, L->ffn_norm.data, dim, c->norm_eps);
        struct mv_job f = {.np = 2, .swiglu = 1};
        f.p[0].w = &L->w_gate; f.p[0].y = b->g;
        f.p[1].w = &L->w_up; f.p[1].y = b->u;
        mv_run(b, &f, b->xb, (size_t)dim);
        mv1(b, &L->w_down, b->g, b->xb);
        for (int i = 0; i < dim; i++) b->x[i] += b->xb[i];
    }
    rmsnorm(b->xb, b->x, b->out_norm.data, dim, c->norm_eps);
    mv1(b, &b->output, b->xb, logits);
}

/* Per-position work of a batch, split over the pool by positions (each position's
 * arithmetic is the same whichever thread does it). */
struct pos_job {
    struct cpu *b;
    const float *w;   /* rmsnorm weights, or NULL: RoPE and the KV-cache write */
    int n, pos, layer;
};

static void pos_task(void *ctx, int t, int nt)
{
    struct pos_job *j = ctx;
    struct cpu *b = j->b;
    int dim = b->c.dim, i0 = (int)((long)j->n * t / nt), i1 = (int)((long)j->n * (t + 1) / nt);
    for (int i = i0; i < i1; i++) {
        if (j->w) {
            rmsnorm(b->bxb + (size_t)i * dim, b->bx + (size_t)i * dim, j->w, dim, b->c.norm_eps);
            continue;
        }
        float *q = b->bq + (size_t)i * b->qd, *k = b->bk + (size_t)i * b->kvd;
        rope(b, q, b->c.n_heads, j->pos + i);
        rope(b, k, b->c.n_kv_heads, j->pos + i);
        store_kv(b, j->layer, j->pos + i, k, b->bv + (size_t)i * b->kvd);
    }
}

/* rmsnorm of the n batch rows of bx into bxb, with weights w. */
static void rmsnorm_batch(struct cpu *b, const float *w, int n)
{
    struct pos_job j = {.b = b, .w = w, .n = n};
    pool_run(b->pool, pos_task, &j, b->nth);
}

static int batch_reserve(struct cpu *b, int n)
{
    if (n <= b->bcap) return 0;
    const struct dec_config *c = &b->c;
    float **bufs[] = {&b->bx, &b->bxb, &b->bq, &b->bk, &b->bv, &b->bao, &b->bg};
    size_t per[] = {(size_t)c->dim, (size_t)c->dim, (size_t)b->qd, (size_t)b->kvd,
                    (size_t)b->kvd, (size_t)b->qd, (size_t)c->ffn_dim};
    for (size_t i = 0; i < sizeof per / sizeof per[0]; i++) {
        free(*bufs[i]);
        *bufs[i] = malloc(per[i] * (size_t)n * sizeof(float));
        if (!*bufs[i]) {
            b->bcap = 0;
            return -1;
        }
    }
    b->bcap = n;
    return 0;
}

/* n >= 2 positions at pos..pos+n-1; logits of all n rows, or of the last only. */
static int forward_batch(struct cpu *b, const float *in, int n, int pos, float *logits,
                         int all_logits, char *err, size_t errlen)
{
    const struct dec_config *c = &b->c;
    int dim = c->dim;
    if (batch_reserve(b, n)) {
        snprintf(err, errlen, "cpu backend: out of memory for a batch of %d", n);
        return -1;
    }
    memcpy(b->bx, in, (size_t)n * dim * sizeof(float));
    for (int l = 0; l < c->n_layers; l++) {
        const struct dec_layer *L = &b->layers[l];
        rmsnorm_batch(b, L->attn_norm.data, n);
        struct mm_job j = {.np = 3, .x = b->bxb, .n = n};
        j.w[0] = &L->wq; j.y[0] = b->bq;
        j.w[1] = &L->wk; j.y[1] = b->bk;
        j.w[2] = &L->wv; j.y[2] = b->bv;
        if (mm_run(b, &j, err, errlen)) return -1;
        struct pos_job rj = {.b = b, .n = n, .pos = pos, .layer = l};
        pool_run(b->pool, pos_task, &rj, b->nth);
        if (attention(b, l, b->bq, b->bao, n, pos)) {
            snprintf(err, errlen, "cpu backend: out of memory for attention over %d positions",
                     pos + n);
            return -1;
        }
        struct mm_job o = {.np = 1, .x = b->bao, .n = n, .residual = 1};
        o.w[0] = &L->wo; o.y[0] = b->bx;
        if (mm_run(b, &o, err, errlen)) return -1;

        rmsnorm_batch(b, L->ffn_norm.data, n);
        struct mm_job f = {.np = 2, .x = b->bxb, .n = n, .swiglu = 1};
        f.w[0] = &L->w_gate; f.y[0] = b->bg;
        f.w[1] = &L->w_up; f.y[1] = b->bg;   /* not written: up is folded into the gate rows */
        if (mm_run(b, &f, err, errlen)) return -1;
        struct mm_job d = {.np = 1, .x = b->bg, .n = n, .residual = 1};
        d.w[0] = &L->w_down; d.y[0] = b->bx;
        if (mm_run(b, &d, err, errlen)) return -1;
    }
    if (all_logits) {
        rmsnorm_batch(b, b->out_norm.data, n);
        struct mm_job o = {.np = 1, .x = b->bxb, .n = n};
        o.w[0] = &b->output; o.y[0] = logits;
        if (mm_run(b, &o, err, errlen)) return -1;
    } else {
        rmsnorm(b->xb, b->bx + (size_t)(n - 1) * dim, b->out_norm.data, dim, c->norm_eps);
        mv1(b, &b->output, b->xb, logits);
    }
    return 0;
}

static int cpu_forward(void *state, const float *x, int n, int pos, float *logits,
                       int all_logits, char *err, size_t errlen)
{
    struct cpu *b = state;
    if (pos < 0 || n <= 0 || pos > b->ctx || n > b->ctx - pos) {
        snprintf(err, errlen, "cpu backend: positions %d..%d exceed the context length %d", pos,
                 pos + n - 1, b->ctx);
        return -1;
    }
    size_t V = (size_t)b->c.vocab, dim = (size_t)b->c.dim;
    for (int s = 0; s < n; s += BATCH_MAX) {
        int m = n - s < BATCH_MAX ? n - s : BATCH_MAX;
        int last = s + m == n;
        float *lg = all_logits ? logits + (size_t)s * V : (last ? logits : NULL);
        /* Intermediate chunks' logits are not needed: the last row's go to scratch. */
        if (!lg) lg = b->ltmp;
        if (m == 1) forward_one(b, x + (size_t)s * dim, pos + s, lg);
        else if (forward_batch(b, x + (size_t)s * dim, m, pos + s, lg, all_logits, err, errlen))
            return -1;
    }
    return 0;
}

static int cpu_shift(void *state, int keep, int n_discard, int n_past, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct cpu *b = state;
    size_t kvd = (size_t)b->kvd, n = (size_t)(n_past - keep - n_discard);
    for (int l = 0; l < b->c.n_layers; l++) {
        float *kc = b->kc + ((size_t)l * b->ctx + (size_t)keep) * kvd;
        float *vc = b->vc + ((size_t)l * b->ctx + (size_t)keep) * kvd;
        memmove(kc, kc + (size_t)n_discard * kvd, n * kvd * sizeof(float));
        memmove(vc, vc + (size_t)n_discard * kvd, n * kvd * sizeof(float));
        /* RoPE composes: a key rotated for p, rotated again by -n_discard, is the key
         * for p - n_discard (up to rounding). */
        for (size_t p = 0; p < n; p++) rope(b, kc + p * kvd, b->c.n_kv_heads, -n_discard);
    }
    return 0;
}

/* ---------------------------------------------------------------- open / close */

/* Faults a range in with one call (MADV_POPULATE_READ, Linux 5.14) instead of a page fault
 * per few pages; best effort. */
static void populate_range(const void *p, size_t len)
{
#ifdef MADV_POPULATE_READ
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p, e = a + len;
    a &= ~(uintptr_t)(pg - 1);
    (void)madvise((void *)a, e - a, MADV_POPULATE_READ);
#else
    (void)p;
    (void)len;
#endif
}

/* ---------------------------------------------------------------- repacking at load */

/* The weights whose type has a packed layout at this SIMD level (qt_packed_type: Q4_0,
 * IQ4_NL, IQ4_XS, Q4_K and Q8_0 at AVX-512 VNNI) are copied once into it, in memory of our own, and
 * the decoder reads only the copy: groups of 16 rows interleaved, so the prompt kernels sum
 * each block in integers for 16 rows at once and decode streams one group at a time. Row ranges the
 * passes ask for start on multiples of 16 (split), but the fused Q/K/V task cuts by heads
 * and the unfused one concatenates Q, K and V: those are packed only when the head size is
 * a multiple of 16. The token embedding the core reads, the GGUF file and an OpenCL device
 * keep the original layout; a tied output matrix is packed for the decoder alone. When the
 * caller says the weights are a read-only file mapping, the original pages of each packed
 * slice are dropped from this process as soon as it is copied (the page cache keeps them),
 * so the process holds one copy and its peak stays about one slice above that. */
struct repack_job {
    struct dec_tensor **t;
    size_t *off;
    int n, drop;
    uint8_t *dst;
};

static void drop_pages(const void *p, size_t len)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)p + pg - 1) & ~(uintptr_t)(pg - 1), e = ((uintptr_t)p + len) & ~(uintptr_t)(pg - 1);
    if (e > a) (void)madvise((void *)a, e - a, MADV_DONTNEED);
}

static void repack_task(void *ctx, int t, int nt)
{
    struct repack_job *j = ctx;
    for (int i = 0; i < j->n; i++) {
        const struct dec_tensor *w = j->t[i];
        size_t rows = (size_t)w->rows, cols = (size_t)w->cols, rb = row_bytes(w);
        size_t r0 = split(rows, t, nt), r1 = split(rows, t + 1, nt);
        if (r0 >= r1) continue;
        populate_range((const uint8_t *)w->data + r0 * rb, (r1 - r0) * rb);   /* faults in bulk */
        qt_pack(w->type, w->data, rows, cols, j->dst + j->off[i], r0, r1);
        if (j->drop) drop_pages((const uint8_t *)w->data + r0 * rb, (r1 - r0) * rb);
    }
}

static int repack_weights(struct cpu *b, int drop, char *err, size_t errlen)
{
    size_t cap = 7 * (size_t)b->c.n_layers + 1, total = 0;
    struct repack_job j = {.t = malloc(cap * sizeof *j.t), .off = malloc(cap * sizeof *j.off), .drop = drop};
    if (!j.t || !j.off) goto oom;
    int qkv_ok = b->c.head_dim % 16 == 0;
    for (int l = 0; l <= b->c.n_layers; l++) {
        struct dec_tensor *ts[7];
        int nts = 0;
        if (l == b->c.n_layers) {
            ts[nts++] = &b->output;
        } else {
            struct dec_layer *L = &b->layers[l];
            if (qkv_ok) { ts[nts++] = &L->wq; ts[nts++] = &L->wk; ts[nts++] = &L->wv; }
            ts[nts++] = &L->wo; ts[nts++] = &L->w_gate; ts[nts++] = &L->w_up; ts[nts++] = &L->w_down;
        }
        for (int i = 0; i < nts; i++) {
            struct dec_tensor *w = ts[i];
            if (!w->data || w->rows < 16 || qt_packed_type(w->type) == w->type) continue;
            j.t[j.n] = w;
            j.off[j.n++] = total;
            total += ((size_t)w->rows * row_bytes(w) + 63) & ~(size_t)63;
        }
    }
    if (j.n > 0) {
        void *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) goto oom;
#ifdef MADV_HUGEPAGE
        (void)madvise(m, total, MADV_HUGEPAGE);
#endif
        j.dst = m;
        pool_run(b->pool, repack_task, &j, b->nth);
        for (int i = 0; i < j.n; i++) {
            j.t[i]->data = j.dst + j.off[i];
            j.t[i]->type = qt_packed_type(j.t[i]->type);
        }
        b->packed = m;
        b->packed_bytes = total;
    }
    free(j.t);
    free(j.off);
    return 0;
oom:
    free(j.t);
    free(j.off);
    snprintf(err, errlen, "cpu backend: out of memory for the repacked weights");
    return -1;
}

static void cpu_close(void *state)
{
    struct cpu *b = state;
    if (!b) return;
    if (b->packed) munmap(b->packed, b->packed_bytes);
    if (b->pool) pool_close(b->pool);
    free(b->layers);
    free(b->kc);
    free(b->vc);
    free(b->inv_freq);
    float *bufs[] = {b->ltmp, b->x, b->xb, b->q, b->k, b->v, b->ao, b->g, b->u, b->att,
                     b->bx, b->bxb, b->bq, b->bk, b->bv, b->bao, b->bg};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    for (int i = 0; i < MAX_PARTS; i++) {
        free(b->act[i]);
        free(b->mm_act[i]);
    }
    if (b->mm_scratch)
        for (int t = 0; t < mm_tasks(b); t++) free(b->mm_scratch[t]);
    if (b->mm_y)
        for (int t = 0; t < mm_tasks(b); t++) free(b->mm_y[t]);
    if (b->att_big)
        for (int t = 0; t < b->nth; t++) free(b->att_big[t]);
    free(b->att_big);
    free(b->mm_scratch);
    free(b->mm_y);
    free(b);
}

static int cpu_open(void **state, const struct dec_weights *w, const struct dec_options *o,
                    int ctx, char *err, size_t errlen)
{
    *state = NULL;
    struct cpu *b = calloc(1, sizeof *b);
    if (!b) goto oom;
    const struct dec_config *c = &w->cfg;
    b->c = *c;
    b->ctx = ctx;
    b->out_norm = w->out_norm;
    b->output = w->output;
    b->qd = c->n_heads * c->head_dim;
    b->kvd = c->n_kv_heads * c->head_dim;
    b->layers = malloc((size_t)c->n_layers * sizeof *b->layers);
    if (!b->layers) goto oom;
    memcpy(b->layers, w->layers, (size_t)c->n_layers * sizeof *b->layers);

    int nth = o && o->threads > 0 ? o->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nth < 1) nth = 1;
    if (nth > 256) nth = 256;
    if (pool_open(&b->pool, nth) != 0) {
        snprintf(err, errlen, "cpu backend: cannot start %d threads", nth);
        cpu_close(b);
        return -1;
    }
    b->nth = pool_threads(b->pool);
    /* Parallelism comes from the pool; OpenBLAS runs inside each task on one thread. */
    openblas_set_num_threads(1);

    size_t kv = (size_t)c->n_layers * (size_t)ctx * (size_t)b->kvd;
    b->kc = calloc(kv, sizeof(float));
    b->vc = calloc(kv, sizeof(float));
    if (!b->kc || !b->vc) {
        snprintf(err, errlen, "cpu backend: cannot allocate the KV cache (%zu MiB for %d positions)",
                 2 * kv * sizeof(float) >> 20, ctx);
        cpu_close(b);
        return -1;
    }
    int hd = c->head_dim;
    b->inv_freq = malloc((size_t)(hd / 2) * sizeof(float));
    if (!b->inv_freq) goto oom;
    for (int i = 0; i < hd / 2; i++) {
        float f = 1.0f / powf(c->rope_base, (float)(2 * i) / (float)hd);
        /* Llama 3.1: per-dimension factors divide the frequency. */
        if (c->rope_freqs) f /= c->rope_freqs[i];
        b->inv_freq[i] = f;
    }
    size_t dim = (size_t)c->dim, ffn = (size_t)c->ffn_dim;
    size_t vmax = dim > ffn ? dim : ffn;
    if ((size_t)b->qd > vmax) vmax = (size_t)b->qd;
    b->x = malloc(dim * sizeof(float));
    b->xb = malloc(dim * sizeof(float));
    b->q = malloc((size_t)b->qd * sizeof(float));
    b->k = malloc((size_t)b->kvd * sizeof(float));
    b->v = malloc((size_t)b->kvd * sizeof(float));
    b->ao = malloc((size_t)b->qd * sizeof(float));
    b->g = malloc(ffn * sizeof(float));
    b->u = malloc(ffn * sizeof(float));
    /* Fused QKV+attention needs KV heads that spread evenly over the threads. */
    b->fuse_qkva = c->n_kv_heads >= b->nth &&
                   (c->n_kv_heads % b->nth == 0 || c->n_kv_heads >= 4 * b->nth);
    /* scores: a KV group's heads x ctx for each task (decode: one task per KV head) */
    int att_rows = b->nth > c->n_kv_heads ? b->nth : c->n_kv_heads;
    b->att = malloc((size_t)att_rows * (size_t)(c->n_heads / c->n_kv_heads) * (size_t)ctx * sizeof(float));
    b->ltmp = malloc((size_t)c->vocab * sizeof(float));
    if (!b->ltmp || !b->x || !b->xb || !b->q || !b->k || !b->v || !b->ao || !b->g || !b->u || !b->att)
        goto oom;
    size_t act = 0;
    /* Room for the prepared activation of any weight type (ggml numbers stay below 64). */
    for (int t = 0; t < 64; t++)
        for (int p = 0; p < 2; p++) {   /* the type, and its packed layout's (repack_weights) */
            int tp = p ? t | QT_PACKED : t;
            size_t a = qt_supported(tp) ? qt_act_bytes(tp, (vmax + 255) / 256 * 256) : 0;
            if (a > act) act = a;
        }
    for (int i = 0; i < MAX_PARTS; i++)
        if (!(b->act[i] = malloc(act))) goto oom;
    b->act_cap = act;
    b->mm_scratch = calloc((size_t)mm_tasks(b), sizeof *b->mm_scratch);
    b->mm_y = calloc((size_t)mm_tasks(b), sizeof *b->mm_y);
    b->att_big = calloc((size_t)b->nth, sizeof *b->att_big);
    if (!b->mm_scratch || !b->mm_y || !b->att_big) goto oom;
    snprintf(b->name, sizeof b->name, "cpu (%s, %d thread%s)", qt_simd_level(), b->nth,
             b->nth == 1 ? "" : "s");
    if (repack_weights(b, o && o->weights_mapped, err, errlen)) {
        cpu_close(b);
        return -1;
    }
    *state = b;
    return 0;
oom:
    snprintf(err, errlen, "cpu backend: out of memory");
    cpu_close(b);
    return -1;
}

static const char *cpu_device_name(void *state) { return ((struct cpu *)state)->name; }

const struct dec_backend_ops backend_cpu_ops = {
    "cpu", cpu_open, cpu_forward, cpu_device_name, cpu_close, cpu_shift,
};
