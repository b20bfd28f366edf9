/* Tests of gpu/decoder + gpu/backend_cpu + app/model:
 *  - golden: greedy decoding of stories260K from BOS reproduces llama2.c's text exactly;
 *  - reference: an F32 random model (GQA, Llama 3.1 rope_freqs) against a naive
 *    double-precision forward pass written here from the Llama equations;
 *  - every weight type: a random model quantized to the type against an F32 copy of the
 *    same (dequantized) blocks, prompt batch and decode steps;
 *  - batch (prompt) path == token-by-token path; 1 thread == 2 threads;
 *  - app/model: tied output, rope_freqs, shape/type errors, context limits. */
#include "tests/testutil.h"

#include <math.h>
#include <unistd.h>

#include "app/model.h"
#include "core/gguf.h"
#include "core/tokenizer.h"
#include "gpu/decoder.h"
#include "gpu/quant.h"
#include "app/train/gguf_out.h"
#include "tests/tools/memmodel.h"
#include "tests/tools/shiftcheck.h"
#include "tests/tools/testrng.h"

/* ---- golden ---------------------------------------------------------------------------- */

/* caller_prefault: the weights' mapping started by the caller before dec_open (as app/engine
 * does while the device search runs) instead of by dec_open. */
static void golden_run(int threads, int caller_prefault)
{
    char mp[4096];
    snprintf(mp, sizeof mp, "%s", tu_shared("models/stories260K.gguf"));
    size_t glen;
    char *golden = tu_read_all(tu_shared("docs/golden-stories260K.txt"), &glen);

    char err[256];
    struct gguf *g;
    struct tokenizer *t;
    struct model *m;
    struct decoder *d;
    assert_int_equal(gguf_open(&g, mp, err, sizeof err), 0);
    assert_int_equal(tok_open(&t, g, err, sizeof err), 0);
    assert_int_equal(model_open(&m, g, err, sizeof err), 0);
    const struct dec_config *c = &m->w.cfg;
    assert_int_equal(c->dim, 64);
    assert_int_equal(c->n_heads, 8);
    assert_int_equal(c->n_kv_heads, 4);   /* GQA on a real model */
    struct dec_options o = {.threads = threads, .device = DEC_DEV_CPU, .cl_index = -1,
                            .prefaulted = caller_prefault};
    struct dec_prefault *pf = caller_prefault ? dec_prefault(&m->w) : NULL;
    if (caller_prefault) assert_non_null(pf);
    assert_int_equal(dec_open(&d, &m->w, &o, err, sizeof err), 0);

    float *x = malloc((size_t)c->dim * sizeof *x), *lg = malloc((size_t)c->vocab * sizeof *lg);
    assert_non_null(x);
    assert_non_null(lg);
    char *out = malloc(16384);
    assert_non_null(out);
    size_t on = 0;
    int32_t tok = tok_bos(t), prev = tok;   /* prev: the first piece after BOS loses its space */
    for (int pos = 0; pos < 200; pos++) {
        assert_int_equal(model_embed_token(m, tok, x, err, sizeof err), 0);
        assert_int_equal(dec_forward(d, x, 1, pos, lg, 0, err, sizeof err), 0);
        prev = tok = tu_greedy_step(t, lg, c->vocab, prev, out, &on, 16000);
    }
    out[on++] = '\n';
    if (on != glen || memcmp(out, golden, on) != 0)
        fail_msg("generated text differs from the golden file:\n%.*s", (int)on, out);

    free(out);
    free(x);
    free(lg);
    free(golden);
    dec_close(d);
    dec_prefault_end(pf);
    model_close(m);
    tok_close(t);
    gguf_close(g);
}

static void test_golden_stories260k(void **state)
{
    (void)state;
    golden_run(1, 0);
    golden_run(2, 0);
    golden_run(2, 1);
}

/* ---- random models in memory ------------------------------------------------------------ */

static uint64_t rng_state = 0x1234567;

static float frand(void) { return testrng_frand(&rng_state); }   /* uniform in [-1, 1) */

/* A random in-memory model (tests/tools/memmodel) and its F32 token embeddings. */
struct rmodel {
    struct memmodel mm;          /* w in the requested type, wf its F32 twin */
    float *embd;                 /* vocab x dim, F32 (input lookup for the test) */
};

static void rmodel_build(struct rmodel *r, int type, int dim, int layers, int heads, int kv_heads,
                         int ffn, int vocab, int tied, const float *rope_freqs)
{
    struct memmodel *m = &r->mm;
    struct dec_config c = {dim, layers, heads, kv_heads, dim / heads, ffn, vocab, 512, 1e-5f,
                           10000.0f, rope_freqs};
    memmodel_init(m, &c, &rng_state);
    int hd = dim / heads, qd = heads * hd, kvd = kv_heads * hd;
    float sd = 1.0f / sqrtf((float)dim), sf = 1.0f / sqrtf((float)ffn);
    for (int l = 0; l < layers; l++) {
        struct dec_layer *L = &m->w.layers[l], *F = &m->wf.layers[l];
        memmodel_vec(m, dim, &L->attn_norm, &F->attn_norm);
        memmodel_mat(m, type, qd, dim, 2 * sd, &L->wq, &F->wq);
        memmodel_mat(m, type, kvd, dim, 2 * sd, &L->wk, &F->wk);
        memmodel_mat(m, type, kvd, dim, sd, &L->wv, &F->wv);
        memmodel_mat(m, type, dim, qd, sd, &L->wo, &F->wo);
        memmodel_vec(m, dim, &L->ffn_norm, &F->ffn_norm);
        memmodel_mat(m, type, ffn, dim, sd, &L->w_gate, &F->w_gate);
        memmodel_mat(m, type, ffn, dim, sd, &L->w_up, &F->w_up);
        memmodel_mat(m, type, dim, ffn, sf, &L->w_down, &F->w_down);
    }
    memmodel_vec(m, dim, &m->w.out_norm, &m->wf.out_norm);
    struct dec_tensor eq, ef;
    memmodel_mat(m, type, vocab, dim, 1.0f, &eq, &ef);
    r->embd = (float *)ef.data;
    if (tied) {
        m->w.output = eq;
        m->wf.output = ef;
    } else {
        memmodel_mat(m, type, vocab, dim, sd, &m->w.output, &m->wf.output);
    }
}

static void rmodel_free(struct rmodel *r) { memmodel_free(&r->mm); }

static struct decoder *open_dec(const struct dec_weights *w, int threads, int ctx)
{
    char err[256];
    struct decoder *d = NULL;
    struct dec_options o = {.ctx = ctx, .threads = threads, .device = DEC_DEV_CPU, .cl_index = -1};
    if (dec_open(&d, w, &o, err, sizeof err)) fail_msg("dec_open: %s", err);
    return d;
}

static float *prompt_vecs(const struct rmodel *r, const int *ids, int n)
{
    int dim = r->mm.w.cfg.dim;
    float *x = malloc(sizeof(float) * (size_t)(n * dim));
    assert_non_null(x);
    for (int i = 0; i < n; i++) memcpy(x + i * dim, r->embd + (size_t)ids[i] * dim, sizeof(float) * dim);
    return x;
}

/* Runs a prompt batch (all logits) then `steps` decode steps; returns (n + steps) x vocab. */
static float *run_model(const struct dec_weights *w, const struct rmodel *r, const int *ids,
                        int n, int steps, int threads, int batch)
{
    int V = w->cfg.vocab;
    char err[256];
    struct decoder *d = open_dec(w, threads, 64);
    float *lg = malloc(sizeof(float) * (size_t)((n + steps) * V));
    assert_non_null(lg);
    float *x = prompt_vecs(r, ids, n + steps);
    if (batch) {
        if (dec_forward(d, x, n, 0, lg, 1, err, sizeof err)) fail_msg("%s", err);
    } else {
        for (int i = 0; i < n; i++)
            if (dec_forward(d, x + (size_t)i * w->cfg.dim, 1, i, lg + (size_t)i * V, 0, err,
                            sizeof err))
                fail_msg("%s", err);
    }
    for (int s = 0; s < steps; s++)
        if (dec_forward(d, x + (size_t)(n + s) * w->cfg.dim, 1, n + s, lg + (size_t)(n + s) * V,
                        0, err, sizeof err))
            fail_msg("%s", err);
    free(x);
    dec_close(d);
    return lg;
}

static const int ids[] = {3, 17, 200, 5, 88, 150, 42, 9, 250, 1, 77, 123};

struct tcase {
    int type;
    double tol_batch;    /* prompt path */
    double tol_decode;   /* decode path: activation quantized for the integer formats */
};

/* Tolerances are relative to the largest logit. The weights are identical (the F32 copy
 * is the dequantized blocks). F32/F16/BF16 keep F32 activations on both paths (batch:
 * SGEMM on dequantized tiles), so only summation order differs. The integer formats
 * quantize the activation to 8-bit blocks on both paths (Q8_0 blocks for Q8_0/Q4_0, Q8_K
 * for the K-quants; qt_matmul runs the decode kernels on prompt batches too), so the batch
 * path carries the same activation rounding as decode and gets the same tolerance. (Where a
 * SIMD level has no batch kernel, batches over 32 positions take dequantize + SGEMM with
 * F32 activations instead, which is only closer to the F32 copy.) */
static const struct tcase cases[] = {
    {QT_F32, 1e-5, 1e-5},   {QT_F16, 1e-5, 1e-4},   {QT_BF16, 1e-5, 1e-4},
    {QT_Q8_0, 3e-2, 3e-2},  {QT_Q4_0, 3e-2, 3e-2},  {QT_Q4_K, 3e-2, 3e-2},
    {QT_Q5_K, 3e-2, 3e-2},  {QT_Q6_K, 3e-2, 3e-2},  {QT_Q4_1, 3e-2, 3e-2},
    {QT_Q5_0, 3e-2, 3e-2},  {QT_Q5_1, 3e-2, 3e-2},  {QT_Q2_K, 3e-2, 3e-2},
    {QT_Q3_K, 3e-2, 3e-2},  {QT_IQ4_NL, 3e-2, 3e-2}, {QT_IQ4_XS, 3e-2, 3e-2},
};

static void test_types_vs_f32(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct tcase *tc = &cases[k];
        struct rmodel r;
        /* dim 256 (a K-quant block), 8 heads over 2 KV heads, tied for the odd cases. */
        rmodel_build(&r, tc->type, 256, 2, 8, 2, 512, 300, (int)(k & 1), NULL);
        int n = 6, steps = 4, V = r.mm.w.cfg.vocab;
        float *a = run_model(&r.mm.w, &r, ids, n, steps, 2, 1);
        float *b = run_model(&r.mm.wf, &r, ids, n, steps, 2, 1);
        double db = tu_rel_err(a, b, (size_t)n * V);
        double dd = tu_rel_err(a + (size_t)n * V, b + (size_t)n * V, (size_t)steps * V);
        print_message("%-5s: batch rel diff %.2e (tol %.0e), decode rel diff %.2e (tol %.0e)\n",
                      qt_name(tc->type), db, tc->tol_batch, dd, tc->tol_decode);
        if (db > tc->tol_batch || dd > tc->tol_decode)
            fail_msg("%s logits differ from the F32 copy", qt_name(tc->type));
        free(a);
        free(b);
        rmodel_free(&r);
    }
}

static void test_batch_equals_tokens(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const struct tcase *tc = &cases[k];
        struct rmodel r;
        rmodel_build(&r, tc->type, 256, 2, 8, 2, 512, 300, 0, NULL);
        int n = 9, V = r.mm.w.cfg.vocab;
        float *a = run_model(&r.mm.w, &r, ids, n, 2, 2, 1);
        float *b = run_model(&r.mm.w, &r, ids, n, 2, 2, 0);
        double dp = tu_rel_err(a, b, (size_t)n * V);
        /* steps after the prompt see the KV cache the batch wrote */
        double ds = tu_rel_err(a + (size_t)n * V, b + (size_t)n * V, (size_t)2 * V);
        print_message("%-5s: batch vs tokens %.2e, later steps %.2e (tol %.0e)\n",
                      qt_name(tc->type), dp, ds, tc->tol_decode);
        if (dp > tc->tol_decode || ds > tc->tol_decode)
            fail_msg("%s: batch and token-by-token logits differ", qt_name(tc->type));
        free(a);
        free(b);
        rmodel_free(&r);
    }
}

/* Q4_0 and IQ4_NL are repacked at load where the SIMD level has a 16-row layout (AVX-512
 * VNNI): here in shapes where only some matrices are (a head size of 24 keeps Q/K/V in the
 * row layout), with row counts that leave tails (vocab 300, ffn 224) and odd block counts
 * (96 and 224 columns), on 1 and 3 threads: logits stay close to the F32 copy, the prompt
 * path matches token by token, and the caller's weights are left as they were. */
static void test_packed_shapes(void **state)
{
    (void)state;
    static const int types[] = {QT_Q4_0, QT_IQ4_NL};
    for (size_t k = 0; k < 2; k++)
        for (int v = 0; v < 2; v++) {
            struct rmodel r;
            rmodel_build(&r, types[k], v ? 128 : 96, 2, 4, v ? 2 : 4, 224, 300, v, NULL);
            struct dec_layer L0 = r.mm.w.layers[0];
            int n = 7, steps = 3, V = r.mm.w.cfg.vocab, th = v ? 3 : 1;
            float *a = run_model(&r.mm.w, &r, ids, n, steps, th, 1);
            float *b = run_model(&r.mm.wf, &r, ids, n, steps, th, 1);
            float *c = run_model(&r.mm.w, &r, ids, n, steps, th, 0);
            double db = tu_rel_err(a, b, (size_t)(n + steps) * V), dt = tu_rel_err(a, c, (size_t)(n + steps) * V);
            print_message("%-6s dim %d: vs F32 %.2e, batch vs tokens %.2e (tol 3e-2)\n", qt_name(types[k]),
                          r.mm.w.cfg.dim, db, dt);
            if (db > 3e-2 || dt > 3e-2) fail_msg("%s: packed model logits off", qt_name(types[k]));
            assert_memory_equal(&L0, &r.mm.w.layers[0], sizeof L0);
            free(a);
            free(b);
            free(c);
            rmodel_free(&r);
        }
}

/* Prompts longer than one internal batch (256 positions) go through in chunks: all logits,
 * last-only logits and the token-by-token path agree. */
static void test_long_prompt_chunks(void **state)
{
    (void)state;
    struct rmodel r;
    rmodel_build(&r, QT_F32, 64, 2, 4, 2, 96, 40, 0, NULL);
    int n = 300, V = r.mm.w.cfg.vocab, dim = r.mm.w.cfg.dim;
    char err[256];
    float *x = malloc(sizeof(float) * (size_t)(n * dim));
    float *all = malloc(sizeof(float) * (size_t)(n * V));
    float *tok = malloc(sizeof(float) * (size_t)(n * V));
    float last[40];
    assert_true(x && all && tok);
    for (int i = 0; i < n; i++) memcpy(x + i * dim, r.embd + (size_t)((i * 7) % V) * dim, sizeof(float) * dim);
    struct decoder *d = open_dec(&r.mm.w, 2, 320);
    if (dec_forward(d, x, n, 0, all, 1, err, sizeof err)) fail_msg("%s", err);
    if (dec_forward(d, x, n, 0, last, 0, err, sizeof err)) fail_msg("%s", err);
    for (int i = 0; i < n; i++)
        if (dec_forward(d, x + i * dim, 1, i, tok + (size_t)i * V, 0, err, sizeof err)) fail_msg("%s", err);
    dec_close(d);
    double a = tu_rel_err(all, tok, (size_t)n * V), b = tu_rel_err(last, all + (size_t)(n - 1) * V, (size_t)V);
    print_message("300-position prompt: batch vs tokens %.2e, last-only vs all %.2e\n", a, b);
    assert_true(a < 1e-4);
    assert_true(b < 1e-4);
    free(x);
    free(all);
    free(tok);
    rmodel_free(&r);
}

/* Context shift: dropping cache positions and re-rotating the kept keys gives the logits
 * of a fresh decode of the kept tokens (F32 and Q8_0, with and without rope_freqs). One
 * layer, so the comparison is exact up to rounding: with more, a fresh decode's later
 * layers would no longer have seen the dropped tokens (the approximation any context
 * shift makes, llama.cpp's included), while the shifted cache keeps what they left. */
static void test_context_shift(void **state)
{
    (void)state;
    static const int types[] = {QT_F32, QT_Q8_0};
    static const float rf[8] = {1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f, 8.0f, 12.0f};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        struct rmodel r;
        rmodel_build(&r, types[k], 64, 1, 4, 2, 96, 40, 0, types[k] == QT_F32 ? rf : NULL);
        int n = 70, dim = r.mm.w.cfg.dim, V = r.mm.w.cfg.vocab;
        float *x = malloc(sizeof(float) * (size_t)((n + 2) * dim));
        assert_non_null(x);
        for (int i = 0; i < n + 2; i++)
            memcpy(x + i * dim, r.embd + (size_t)((i * 11 + 3) % V) * dim, sizeof(float) * dim);
        static const int shapes[][2] = {{1, 20}, {5, 33}, {0, 64}, {3, 67}};
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            struct decoder *a = open_dec(&r.mm.w, 2, 80), *b = open_dec(&r.mm.w, 2, 80);
            double e = shiftcheck_run(a, b, x, n, shapes[s][0], shapes[s][1], dim, V);
            print_message("%-4s shift keep %d drop %d: vs fresh decode %.2e (tol 1e-4)\n",
                          qt_name(types[k]), shapes[s][0], shapes[s][1], e);
            if (e > 1e-4) fail_msg("shifted cache differs from a fresh decode");
            dec_close(a);
            dec_close(b);
        }
        free(x);
        rmodel_free(&r);
    }
    struct rmodel r;
    rmodel_build(&r, QT_F32, 64, 2, 4, 2, 96, 40, 0, NULL);
    struct decoder *d = open_dec(&r.mm.w, 1, 16);
    char err[256] = "";
    assert_int_equal(dec_shift(d, 4, 10, 12, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot drop"));
    assert_int_equal(dec_shift(d, 0, 0, 0, err, sizeof err), 0);
    dec_close(d);
    rmodel_free(&r);
}

static void test_threads_agree(void **state)
{
    (void)state;
    struct rmodel r;
    rmodel_build(&r, QT_Q4_K, 256, 2, 8, 4, 512, 300, 0, NULL);
    int n = 5, V = r.mm.w.cfg.vocab;
    float *a = run_model(&r.mm.w, &r, ids, n, 3, 1, 1);
    float *b = run_model(&r.mm.w, &r, ids, n, 3, 2, 1);
    /* 3 threads over 4 KV heads: decode steps take the row-split path, not per-KV-head */
    float *c = run_model(&r.mm.w, &r, ids, n, 3, 3, 1);
    /* Each row's dot product is the same computation whichever thread runs it. */
    assert_true(tu_rel_err(a, b, (size_t)(n + 3) * V) < 1e-6);
    assert_true(tu_rel_err(a, c, (size_t)(n + 3) * V) < 1e-6);
    free(a);
    free(b);
    free(c);
    rmodel_free(&r);
}

/* ---- a naive reference forward pass (double precision) ------------------------------------ */

static void ref_matvec(const struct dec_tensor *t, const double *x, double *y)
{
    const float *w = t->data;
    for (int64_t r = 0; r < t->rows; r++) {
        double s = 0;
        for (int64_t c = 0; c < t->cols; c++) s += (double)w[r * t->cols + c] * x[c];
        y[r] = s;
    }
}

static void ref_rmsnorm(double *o, const double *x, const float *w, int n, double eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double s = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) o[i] = w[i] * x[i] * s;
}

static void ref_rope(double *v, int heads, int hd, int pos, double base, const float *factors)
{
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd / 2; i++) {
            double freq = pow(base, -2.0 * i / hd);
            if (factors) freq /= factors[i];
            double th = pos * freq, c = cos(th), s = sin(th);
            double *p = v + h * hd + 2 * i, a = p[0], b = p[1];
            p[0] = a * c - b * s;
            p[1] = a * s + b * c;
        }
}

/* Logits of every position of the sequence x (n x dim). */
static double *ref_forward(const struct dec_weights *w, const float *x, int n)
{
    const struct dec_config *c = &w->cfg;
    int dim = c->dim, hd = c->head_dim, qd = c->n_heads * hd, kvd = c->n_kv_heads * hd;
    int grp = c->n_heads / c->n_kv_heads;
    double *h = calloc((size_t)n * dim, sizeof(double)), *xb = calloc((size_t)dim, sizeof(double));
    double *q = calloc((size_t)n * qd, sizeof(double)), *k = calloc((size_t)n * kvd, sizeof(double));
    double *v = calloc((size_t)n * kvd, sizeof(double)), *ao = calloc((size_t)qd, sizeof(double));
    double *t = calloc((size_t)(dim > c->ffn_dim ? dim : c->ffn_dim), sizeof(double));
    double *g = calloc((size_t)c->ffn_dim, sizeof(double)), *u = calloc((size_t)c->ffn_dim, sizeof(double));
    double *sc = calloc((size_t)n, sizeof(double));
    double *lg = calloc((size_t)n * c->vocab, sizeof(double));
    assert_true(h && xb && q && k && v && ao && t && g && u && sc && lg);
    for (int i = 0; i < n * dim; i++) h[i] = x[i];
    for (int l = 0; l < c->n_layers; l++) {
        const struct dec_layer *L = &w->layers[l];
        for (int p = 0; p < n; p++) {
            ref_rmsnorm(xb, h + p * dim, L->attn_norm.data, dim, c->norm_eps);
            ref_matvec(&L->wq, xb, q + p * qd);
            ref_matvec(&L->wk, xb, k + p * kvd);
            ref_matvec(&L->wv, xb, v + p * kvd);
            ref_rope(q + p * qd, c->n_heads, hd, p, c->rope_base, c->rope_freqs);
            ref_rope(k + p * kvd, c->n_kv_heads, hd, p, c->rope_base, c->rope_freqs);
        }
        for (int p = 0; p < n; p++) {
            for (int hh = 0; hh < c->n_heads; hh++) {
                int kh = hh / grp;
                double mx = -1e300, sum = 0;
                for (int s = 0; s <= p; s++) {
                    double d = 0;
                    for (int e = 0; e < hd; e++) d += q[p * qd + hh * hd + e] * k[s * kvd + kh * hd + e];
                    sc[s] = d / sqrt((double)hd);
                    if (sc[s] > mx) mx = sc[s];
                }
                for (int s = 0; s <= p; s++) sum += (sc[s] = exp(sc[s] - mx));
                for (int e = 0; e < hd; e++) {
                    double o = 0;
                    for (int s = 0; s <= p; s++) o += sc[s] / sum * v[s * kvd + kh * hd + e];
                    ao[hh * hd + e] = o;
                }
            }
            ref_matvec(&L->wo, ao, t);
            for (int i = 0; i < dim; i++) h[p * dim + i] += t[i];
            ref_rmsnorm(xb, h + p * dim, L->ffn_norm.data, dim, c->norm_eps);
            ref_matvec(&L->w_gate, xb, g);
            ref_matvec(&L->w_up, xb, u);
            for (int i = 0; i < c->ffn_dim; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            ref_matvec(&L->w_down, g, t);
            for (int i = 0; i < dim; i++) h[p * dim + i] += t[i];
        }
    }
    for (int p = 0; p < n; p++) {
        ref_rmsnorm(xb, h + p * dim, w->out_norm.data, dim, c->norm_eps);
        ref_matvec(&w->output, xb, lg + (size_t)p * c->vocab);
    }
    free(h); free(xb); free(q); free(k); free(v); free(ao); free(t); free(g); free(u); free(sc);
    return lg;
}

static void test_reference_forward(void **state)
{
    (void)state;
    /* head_dim 32: 16 RoPE factors, Llama 3.1 style (1 for high frequencies, larger below) */
    float factors[16];
    for (int i = 0; i < 16; i++) factors[i] = i < 6 ? 1.0f : 1.0f + 0.5f * (float)(i - 5);
    /* variant 0: GQA 4/2; 1: tied + rope_freqs; 2: MQA (one KV head, so the decode step
     * cannot split Q/K/V+attention by KV head and takes the row-split path) */
    for (int variant = 0; variant < 3; variant++) {
        struct rmodel r;
        rmodel_build(&r, QT_F32, 128, 2, 4, variant == 2 ? 1 : 2, 192, 100, variant == 1,
                     variant == 1 ? factors : NULL);
        int n = 10, V = r.mm.w.cfg.vocab;
        float *x = prompt_vecs(&r, (const int[]){1, 5, 9, 13, 17, 21, 25, 29, 33, 37}, n);
        double *ref = ref_forward(&r.mm.wf, x, n);
        for (int batch = 0; batch < 2; batch++) {
            float *a = run_model(&r.mm.w, &r, (const int[]){1, 5, 9, 13, 17, 21, 25, 29, 33, 37},
                                 batch ? n : 1, batch ? 0 : n - 1, 2, batch);
            double md = 0, mb = 0;
            for (int i = 0; i < n * V; i++) {
                md = fmax(md, fabs(a[i] - ref[i]));
                mb = fmax(mb, fabs(ref[i]));
            }
            print_message("reference (%s, %s): rel diff %.2e\n",
                          variant == 0 ? "GQA" : variant == 1 ? "rope_freqs" : "MQA",
                          batch ? "batch" : "tokens", md / mb);
            assert_true(md / mb < 1e-4);
            free(a);
        }
        free(ref);
        free(x);
        rmodel_free(&r);
    }
}

/* ---- decoder API edges -------------------------------------------------------------------- */

static int hook_calls, hook_n;
static void hook(void *ctx, const float *x, int n, int dim)
{
    (void)ctx;
    (void)x;
    (void)dim;
    hook_calls++;
    hook_n += n;
}

static void test_decoder_api(void **state)
{
    (void)state;
    struct rmodel r;
    rmodel_build(&r, QT_Q8_0, 64, 1, 4, 4, 64, 50, 0, NULL);
    char err[256];
    struct decoder *d = open_dec(&r.mm.w, 1, 8);
    assert_int_equal(dec_ctx(d), 8);
    assert_int_equal(dec_config(d)->dim, 64);
    assert_non_null(strstr(dec_device_name(d), "cpu"));
    assert_null(dec_fallback_note(d));
    float x[64 * 9], lg[50];
    for (int i = 0; i < 64 * 9; i++) x[i] = frand();
    dec_set_input_hook(d, hook, NULL);
    assert_int_equal(dec_forward(d, x, 3, 0, lg, 0, err, sizeof err), 0);
    assert_int_equal(hook_calls, 1);
    assert_int_equal(hook_n, 3);
    dec_set_input_hook(d, NULL, NULL);
    /* past the context */
    assert_int_equal(dec_forward(d, x, 9, 0, lg, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "context"));
    assert_int_equal(dec_forward(d, x, 1, 8, lg, 0, err, sizeof err), -1);
    assert_int_equal(dec_forward(d, x, 0, 0, lg, 0, err, sizeof err), -1);
    /* rewinding: recomputing position 1 after a longer run gives the same logits */
    float a[50], b[50];
    assert_int_equal(dec_forward(d, x, 1, 0, lg, 0, err, sizeof err), 0);
    assert_int_equal(dec_forward(d, x + 64, 1, 1, a, 0, err, sizeof err), 0);
    assert_int_equal(dec_forward(d, x + 128, 4, 2, lg, 0, err, sizeof err), 0);
    assert_int_equal(dec_forward(d, x + 64, 1, 1, b, 0, err, sizeof err), 0);
    assert_memory_equal(a, b, sizeof a);
    dec_close(d);

    /* bad weights are refused with a message */
    struct dec_weights bad = r.mm.w;
    struct dec_layer L0 = r.mm.w.layers[0];
    L0.wk.rows = 7;
    bad.layers = &L0;
    struct dec_options o = {.device = DEC_DEV_CPU, .cl_index = -1};
    assert_int_equal(dec_open(&d, &bad, &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "wk"));
    bad = r.mm.w;
    bad.cfg.n_kv_heads = 3;
    assert_int_equal(dec_open(&d, &bad, &o, err, sizeof err), -1);
    /* OpenCL requested: either the backend is built or a clear message says it is not */
    o.device = DEC_DEV_CL;
    o.threads = 1;
    if (dec_open(&d, &r.mm.w, &o, err, sizeof err) == 0) dec_close(d);
    else assert_true(strlen(err) > 0);
    rmodel_free(&r);
}

/* ---- app/model over GGUF files ----------------------------------------------------------- */

static void put_vec(struct gguf_out *w, const char *name, int n)
{
    float *v = malloc(sizeof(float) * (size_t)n);
    assert_non_null(v);
    for (int i = 0; i < n; i++) v[i] = 1.0f;
    uint64_t ne[1] = {(uint64_t)n};
    gguf_out_tensor(w, name, QT_F32, 1, ne, v);
    free(v);
}

static void put_mat(struct gguf_out *w, const char *name, int type, int rows, int cols)
{
    uint64_t rb = 0;
    assert_int_equal(gguf_row_bytes((uint32_t)type, (uint64_t)cols, &rb), 0);
    unsigned char *d = calloc((size_t)rows, (size_t)rb);
    float *tmp = malloc(sizeof(float) * (size_t)cols);
    assert_true(d && tmp);
    for (int r = 0; r < rows && qt_supported(type); r++) {
        for (int c = 0; c < cols; c++) tmp[c] = frand() * 0.1f;
        qt_quant_row(type, tmp, d + (size_t)r * rb, (size_t)cols);
    }
    uint64_t ne[2] = {(uint64_t)cols, (uint64_t)rows};
    gguf_out_tensor(w, name, (uint32_t)type, 2, ne, d);
    free(d);
    free(tmp);
}

enum { MK_OK, MK_TIED, MK_NO_NORM, MK_BAD_SHAPE, MK_BAD_TYPE, MK_ARCH, MK_NO_KEY, MK_ROPE_FREQS };

/* A tiny llama GGUF (dim 64, 4 heads, 2 KV heads, 1 layer, vocab 32) with one defect. */
static char *write_model(const char *dir, int kind)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/m%d.gguf", dir, kind);
    struct gguf_out *w = gguf_out_new();
    assert_non_null(w);
    int dim = 64, ffn = 96, V = 32;
    gguf_out_str(w, "general.architecture", kind == MK_ARCH ? "gpt2" : "llama");
    gguf_out_u32(w, "general.alignment", 32);
    if (kind != MK_NO_KEY) gguf_out_u32(w, "llama.embedding_length", (uint32_t)dim);
    gguf_out_u32(w, "llama.block_count", 1);
    gguf_out_u32(w, "llama.feed_forward_length", (uint32_t)ffn);
    gguf_out_u32(w, "llama.attention.head_count", 4);
    gguf_out_u32(w, "llama.attention.head_count_kv", 2);
    gguf_out_u32(w, "llama.context_length", 128);
    gguf_out_f32(w, "llama.rope.freq_base", 500000.0f);
    gguf_out_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-6f);
    put_mat(w, "token_embd.weight", QT_Q8_0, V, dim);
    put_vec(w, "output_norm.weight", dim);
    if (kind != MK_TIED) put_mat(w, "output.weight", QT_Q8_0, V, dim);
    if (kind == MK_ROPE_FREQS) put_vec(w, "rope_freqs.weight", 8);
    if (kind != MK_NO_NORM) put_vec(w, "blk.0.attn_norm.weight", dim);
    put_mat(w, "blk.0.attn_q.weight", kind == MK_BAD_TYPE ? 9 /* Q8_1 */ : QT_F16, dim, dim);
    put_mat(w, "blk.0.attn_k.weight", QT_F16, kind == MK_BAD_SHAPE ? dim : dim / 2, dim);
    put_mat(w, "blk.0.attn_v.weight", QT_F16, dim / 2, dim);
    put_mat(w, "blk.0.attn_output.weight", QT_F16, dim, dim);
    put_vec(w, "blk.0.ffn_norm.weight", dim);
    put_mat(w, "blk.0.ffn_gate.weight", QT_BF16, ffn, dim);
    put_mat(w, "blk.0.ffn_up.weight", QT_BF16, ffn, dim);
    put_mat(w, "blk.0.ffn_down.weight", QT_BF16, dim, ffn);
    char err[256];
    if (gguf_out_write(w, path, err, sizeof err)) fail_msg("gguf_out_write: %s", err);
    gguf_out_free(w);
    return path;
}

static int try_model(const char *dir, int kind, struct model **m, struct gguf **g, char *err,
                     size_t errlen)
{
    const char *p = write_model(dir, kind);
    if (gguf_open(g, p, err, errlen)) fail_msg("gguf_open: %s", err);
    int r = model_open(m, *g, err, errlen);
    return r;
}

static void test_model_from_gguf(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char err[256];
    struct model *m;
    struct gguf *g;

    assert_int_equal(try_model(dir, MK_OK, &m, &g, err, sizeof err), 0);
    assert_int_equal(m->w.cfg.n_kv_heads, 2);
    assert_int_equal(m->w.cfg.head_dim, 16);
    assert_int_equal(m->w.cfg.vocab, 32);
    assert_true(m->w.cfg.rope_base == 500000.0f);
    assert_true(m->w.cfg.norm_eps == 1e-6f);
    assert_false(m->tied);
    assert_ptr_not_equal(m->w.output.data, m->embd.data);
    assert_null(m->w.cfg.rope_freqs);
    /* it runs, and embeddings are the dequantized rows */
    struct decoder *d;
    struct dec_options o = {.threads = 1, .device = DEC_DEV_CPU, .cl_index = -1};
    assert_int_equal(dec_open(&d, &m->w, &o, err, sizeof err), 0);
    assert_int_equal(dec_ctx(d), 128);
    float x[64], lg[32];
    assert_int_equal(model_embed_token(m, 5, x, err, sizeof err), 0);
    assert_int_equal(dec_forward(d, x, 1, 0, lg, 0, err, sizeof err), 0);
    assert_int_equal(model_embed_token(m, 32, x, err, sizeof err), -1);
    assert_int_equal(model_embed_token(m, -1, x, err, sizeof err), -1);
    dec_close(d);
    model_close(m);
    gguf_close(g);

    assert_int_equal(try_model(dir, MK_TIED, &m, &g, err, sizeof err), 0);
    assert_true(m->tied);
    assert_ptr_equal(m->w.output.data, m->embd.data);
    model_close(m);
    gguf_close(g);

    assert_int_equal(try_model(dir, MK_ROPE_FREQS, &m, &g, err, sizeof err), 0);
    assert_non_null(m->w.cfg.rope_freqs);
    assert_true(m->w.cfg.rope_freqs[7] == 1.0f);
    model_close(m);
    gguf_close(g);

    static const struct { int kind; const char *msg; } bad[] = {
        {MK_NO_NORM, "blk.0.attn_norm.weight"},
        {MK_BAD_SHAPE, "blk.0.attn_k.weight"},
        {MK_BAD_TYPE, "blk.0.attn_q.weight"},
        {MK_ARCH, "gpt2"},
        {MK_NO_KEY, "llama.embedding_length"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m = NULL;
        err[0] = '\0';
        assert_int_equal(try_model(dir, bad[i].kind, &m, &g, err, sizeof err), -1);
        assert_null(m);
        if (!strstr(err, bad[i].msg)) fail_msg("error '%s' does not name '%s'", err, bad[i].msg);
        gguf_close(g);
    }
    tu_rmtree(dir);
}

TU_MAIN(
    cmocka_unit_test(test_golden_stories260k),
    cmocka_unit_test(test_reference_forward),
    cmocka_unit_test(test_types_vs_f32),
    cmocka_unit_test(test_batch_equals_tokens),
    cmocka_unit_test(test_packed_shapes),
    cmocka_unit_test(test_long_prompt_chunks),
    cmocka_unit_test(test_context_shift),
    cmocka_unit_test(test_threads_agree),
    cmocka_unit_test(test_decoder_api),
    cmocka_unit_test(test_model_from_gguf))
