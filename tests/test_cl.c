/* tests/test_cl: the OpenCL backend on whatever OpenCL device is present (PoCL in CI).
 *
 * Stated tolerances (max |difference| / max |CPU logit| over every logit of a 32-token
 * prompt and 32 decode steps): vs the CPU backend on the same weights 1e-4 for F32, 1e-3
 * for F16/BF16, 5e-2 for the integer formats (the CPU backend rounds activations to 8-bit
 * blocks for them, this backend does not); vs the CPU backend on the F32 twin of the
 * same weights 1e-4 for every type (the kernels must decode exactly the same bytes).
 *
 * Skips with a message when there is no OpenCL platform at all, except under CI=true,
 * where PoCL is installed and its absence is a failure. */
#include "tests/testutil.h"

#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/gguf.h"
#include "core/tokenizer.h"
#include "gpu/backend.h"
#include "gpu/cl_util.h"
#include "gpu/decoder.h"
#include "gpu/quant.h"
#include "tests/tools/memmodel.h"
#include "tests/tools/shiftcheck.h"
#include "tests/tools/testrng.h"

/* --- helpers ------------------------------------------------------------------------ */

static int have_opencl(void)
{
    struct clu_dev *d;
    int n;
    char err[256];
    if (clu_devices(&d, &n, err, sizeof err) == 0 && n > 0) {
        clu_devices_free(d);
        return 1;
    }
    if (n == 0 && err[0] == 0) snprintf(err, sizeof err, "no OpenCL devices");
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) fail_msg("CI=true but no OpenCL: %s", err);
    print_message("SKIP: %s\n", err);
    return 0;
}

#define NEED_CL()                                                                           \
    do {                                                                                    \
        if (!have_opencl()) skip();                                                         \
    } while (0)

/* A GGUF Llama model turned into decoder weights, plus its embedding table. */
struct lm {
    struct gguf *g;
    struct dec_weights w;
    struct dec_tensor embd;
};

static void tensor_of(const struct gguf *g, const char *name, struct dec_tensor *t)
{
    const struct gguf_tensor *gt = gguf_tensor(g, name);
    assert_non_null(gt);
    t->data = gt->data;
    t->type = (int)gt->type;
    t->cols = (int64_t)gt->ne[0];
    t->rows = (int64_t)gt->ne[1];
}

static uint32_t key_u32(const struct gguf *g, const char *suffix)
{
    char k[128];
    uint32_t v = 0;
    assert_int_equal(gguf_get_u32(g, gguf_arch_key(g, suffix, k, sizeof k), &v), 0);
    return v;
}

static void lm_open(struct lm *m, const char *path)
{
    char err[256], k[128];
    memset(m, 0, sizeof *m);
    if (gguf_open(&m->g, path, err, sizeof err) != 0) fail_msg("%s", err);
    struct dec_config *c = &m->w.cfg;
    c->dim = (int)key_u32(m->g, "embedding_length");
    c->n_layers = (int)key_u32(m->g, "block_count");
    c->n_heads = (int)key_u32(m->g, "attention.head_count");
    c->n_kv_heads = (int)key_u32(m->g, "attention.head_count_kv");
    c->ffn_dim = (int)key_u32(m->g, "feed_forward_length");
    c->ctx_train = (int)key_u32(m->g, "context_length");
    c->head_dim = c->dim / c->n_heads;
    if (gguf_get_f32(m->g, gguf_arch_key(m->g, "attention.layer_norm_rms_epsilon", k, sizeof k),
                     &c->norm_eps))
        c->norm_eps = 1e-5f;
    if (gguf_get_f32(m->g, gguf_arch_key(m->g, "rope.freq_base", k, sizeof k), &c->rope_base))
        c->rope_base = 10000.0f;
    tensor_of(m->g, "token_embd.weight", &m->embd);
    c->vocab = (int)m->embd.rows;
    m->w.layers = calloc((size_t)c->n_layers, sizeof *m->w.layers);
    assert_non_null(m->w.layers);
    for (int l = 0; l < c->n_layers; l++) {
        struct dec_layer *L = &m->w.layers[l];
        char nm[96];
#define T(field, s)                                                                         \
    snprintf(nm, sizeof nm, "blk.%d.%s.weight", l, s);                                      \
    tensor_of(m->g, nm, &L->field)
        T(attn_norm, "attn_norm");
        T(wq, "attn_q");
        T(wk, "attn_k");
        T(wv, "attn_v");
        T(wo, "attn_output");
        T(ffn_norm, "ffn_norm");
        T(w_gate, "ffn_gate");
        T(w_up, "ffn_up");
        T(w_down, "ffn_down");
#undef T
    }
    tensor_of(m->g, "output_norm.weight", &m->w.out_norm);
    if (gguf_tensor(m->g, "output.weight")) tensor_of(m->g, "output.weight", &m->w.output);
    else m->w.output = m->embd; /* tied */
}

static void lm_close(struct lm *m)
{
    free(m->w.layers);
    gguf_close(m->g);
}

static void lm_embed(const struct lm *m, int id, float *out)
{
    size_t rb = qt_row_bytes(m->embd.type, (size_t)m->embd.cols);
    qt_dequant_row(m->embd.type, (const uint8_t *)m->embd.data + (size_t)id * rb, out,
                   (size_t)m->embd.cols);
}

static int argmax(const float *v, int n)
{
    int b = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[b]) b = i;
    return b;
}

/* Decoder options for device (first usable OpenCL device), ctx positions, a memory cap. */
static struct dec_options dev_options(int device, int ctx, size_t cap)
{
    return (struct dec_options){.device = device, .cl_index = -1, .ctx = ctx, .cl_mem_cap = cap};
}

static struct decoder *open_dev(const struct dec_weights *w, int device, int ctx, size_t cap)
{
    struct dec_options o = dev_options(device, ctx, cap);
    struct decoder *d = NULL;
    char err[512];
    if (dec_open(&d, w, &o, err, sizeof err) != 0) fail_msg("dec_open: %s", err);
    return d;
}

/* --- boundary: every activation write is an input vector the decoder was given -------- */

struct watch {
    const float *expect; /* the batch passed to dec_forward right now */
    const float *copy;   /* the same vectors, computed independently */
    size_t expect_bytes;
    int inputs, weights, bad;
};

static void write_hook(void *ctx, int kind, const void *src, size_t bytes)
{
    struct watch *w = ctx;
    if (kind == CLU_W_WEIGHTS) {
        w->weights++;
        return;
    }
    w->inputs++;
    /* Input writes must carry exactly (a chunk of) the vectors handed to dec_forward. */
    if (!w->expect || bytes > w->expect_bytes) {
        w->bad++;
        return;
    }
    const char *lo = (const char *)w->expect, *hi = lo + w->expect_bytes;
    const char *p = src;
    if (p < lo || p + bytes > hi || memcmp(p, (const char *)w->copy + (p - lo), bytes) != 0)
        w->bad++;
}

/* --- stories260K golden text with the OpenCL backend --------------------- */

static void test_golden_stories(void **st)
{
    (void)st;
    char path[4096], gpath[4096];
    snprintf(path, sizeof path, "%s", tu_shared("models/stories260K.gguf"));
    snprintf(gpath, sizeof gpath, "%s", tu_shared("docs/golden-stories260K.txt"));
    NEED_CL();
    struct lm m;
    lm_open(&m, path);
    char err[256];
    struct tokenizer *tk;
    if (tok_open(&tk, m.g, err, sizeof err)) fail_msg("%s", err);

    struct watch wt = {0};
    clu_set_write_hook(write_hook, &wt);
    struct decoder *d = open_dev(&m.w, DEC_DEV_CL, 256, 0);
    assert_null(dec_fallback_note(d));
    assert_non_null(strstr(dec_device_name(d), "opencl"));
    assert_true(wt.weights > 0);
    assert_int_equal(wt.inputs, 0);

    int dim = m.w.cfg.dim, vocab = m.w.cfg.vocab;
    float *x = malloc((size_t)dim * 4), *lg = malloc((size_t)vocab * 4);
    float *x2 = malloc((size_t)dim * 4);
    assert_non_null(x);
    assert_non_null(x2);
    assert_non_null(lg);
    char *text = calloc(1, 65536);
    size_t tl = 0;
    int tok = tok_bos(tk);
    for (int pos = 0; pos < 200; pos++) {
        lm_embed(&m, tok, x);
        lm_embed(&m, tok, x2);
        wt.expect = x;
        wt.copy = x2;
        wt.expect_bytes = (size_t)dim * 4;
        if (dec_forward(d, x, 1, pos, lg, 0, err, sizeof err)) fail_msg("%s", err);
        tok = argmax(lg, vocab);
        char piece[256];
        size_t n = tok_piece(tk, tok, 0, piece, sizeof piece);
        if (n > sizeof piece) n = sizeof piece;
        if (tl + n < 65535) {
            memcpy(text + tl, piece, n);
            tl += n;
        }
    }
    clu_set_write_hook(NULL, NULL);
    assert_int_equal(wt.bad, 0);
    assert_int_equal(wt.inputs, 200);

    FILE *f = fopen(gpath, "rb");
    assert_non_null(f);
    char *gold = calloc(1, 65536);
    size_t gl = fread(gold, 1, 65535, f);
    fclose(f);
    while (gl && (gold[gl - 1] == '\n' || gold[gl - 1] == ' ')) gold[--gl] = 0;
    const char *t = text;
    while (*t == ' ') t++;
    size_t ol = strlen(t);
    while (ol && (t[ol - 1] == '\n' || t[ol - 1] == ' ')) ol--;
    if (ol != gl || memcmp(t, gold, gl) != 0)
        fail_msg("OpenCL output differs from the golden text:\n--- got\n%.*s\n--- want\n%s\n",
                 (int)ol, t, gold);
    free(gold);
    free(text);
    free(x);
    free(x2);
    free(lg);
    dec_close(d);
    tok_close(tk);
    lm_close(&m);
}

/* --- every weight type matches the CPU backend -------------------------- */

/* A random in-memory Llama with all matrices of one type (tests/tools/memmodel), and its
 * F32 twin: with it the CPU backend runs without quantizing activations, so it is an
 * exact-arithmetic reference for the weights the OpenCL kernels decode. */
static uint64_t rng_state;
static float frand(void) { return testrng_frand(&rng_state); }

static float *fvec(size_t n)
{
    float *v = malloc(sizeof(float) * n);
    assert_non_null(v);
    return v;
}

/* n floats from frand, in order */
static float *frand_vec(size_t n)
{
    float *v = fvec(n);
    for (size_t i = 0; i < n; i++) v[i] = frand();
    return v;
}

static void rmodel_make_layers(struct memmodel *m, int type, uint64_t seed, int layers)
{
    rng_state = seed;
    struct dec_config c = {.dim = 256, .n_layers = layers, .n_heads = 4, .n_kv_heads = 2,
                           .head_dim = 64, .ffn_dim = 512, .vocab = 320, .ctx_train = 256,
                           .norm_eps = 1e-5f, .rope_base = 10000.0f};
    memmodel_init(m, &c, &rng_state);
    int qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim;
    float sd = 1.0f / sqrtf((float)c.dim) * 1.7f, sq = 1.0f / sqrtf((float)qd) * 1.7f,
          sf = 1.0f / sqrtf((float)c.ffn_dim) * 1.7f;
    for (int l = 0; l < c.n_layers; l++) {
        struct dec_layer *L = &m->w.layers[l], *F = &m->wf.layers[l];
        memmodel_vec(m, c.dim, &L->attn_norm, &F->attn_norm);
        memmodel_vec(m, c.dim, &L->ffn_norm, &F->ffn_norm);
        memmodel_mat(m, type, qd, c.dim, sd, &L->wq, &F->wq);
        memmodel_mat(m, type, kvd, c.dim, sd, &L->wk, &F->wk);
        memmodel_mat(m, type, kvd, c.dim, sd, &L->wv, &F->wv);
        memmodel_mat(m, type, c.dim, qd, sq, &L->wo, &F->wo);
        memmodel_mat(m, type, c.ffn_dim, c.dim, sd, &L->w_gate, &F->w_gate);
        memmodel_mat(m, type, c.ffn_dim, c.dim, sd, &L->w_up, &F->w_up);
        memmodel_mat(m, type, c.dim, c.ffn_dim, sf, &L->w_down, &F->w_down);
    }
    memmodel_vec(m, c.dim, &m->w.out_norm, &m->wf.out_norm);
    memmodel_mat(m, type, c.vocab, c.dim, sd, &m->w.output, &m->wf.output);
    if (type == QT_F32) {
        /* Llama 3.1 per-pair RoPE factors, exercised with the tightest tolerance */
        float *f = memmodel_keep(m, malloc(sizeof(float) * (size_t)(c.head_dim / 2)));
        for (int i = 0; i < c.head_dim / 2; i++) f[i] = 1.0f + 7.0f * fabsf(frand());
        m->w.cfg.rope_freqs = m->wf.cfg.rope_freqs = f;
    }
}

/* Tolerances (max abs difference relative to the largest CPU logit). The CPU backend
 * quantizes activations to 8-bit blocks for integer weight formats; this backend keeps
 * them in F32, so those formats differ by the activation rounding. */
static void rmodel_make(struct memmodel *m, int type, uint64_t seed)
{
    rmodel_make_layers(m, type, seed, 2);
}

static double tol_for(int type)
{
    switch (type) {
    case QT_F32: return 1e-4;
    case QT_F16: case QT_BF16: return 1e-3;
    default: return 5e-2;
    }
}

static void run_seq(struct decoder *d, const float *in, int n_prompt, int n_steps, int dim,
                    int vocab, float *out)
{
    char err[512];
    if (dec_forward(d, in, n_prompt, 0, out, 0, err, sizeof err)) fail_msg("%s", err);
    for (int s = 0; s < n_steps; s++)
        if (dec_forward(d, in + (size_t)(n_prompt + s) * dim, 1, n_prompt + s,
                        out + (size_t)(s + 1) * vocab, 0, err, sizeof err))
            fail_msg("%s", err);
}

/* One random model on the CPU and on OpenCL: n_in random input rows, and n_out rows of
 * logits for each backend (a: CPU, b: OpenCL). */
struct cpu_vs_cl {
    struct memmodel m;
    int dim, vocab;
    float *in, *a, *b;
    struct decoder *dc, *dg;
};

static void cvc_open(struct cpu_vs_cl *t, int type, uint64_t seed, size_t n_in, size_t n_out, int ctx)
{
    rmodel_make(&t->m, type, seed);
    t->dim = t->m.w.cfg.dim;
    t->vocab = t->m.w.cfg.vocab;
    t->in = frand_vec(n_in * (size_t)t->dim);
    t->a = fvec(n_out * (size_t)t->vocab);
    t->b = fvec(n_out * (size_t)t->vocab);
    t->dc = open_dev(&t->m.w, DEC_DEV_CPU, ctx, 0);
    t->dg = open_dev(&t->m.w, DEC_DEV_CL, ctx, 0);
}

static void cvc_close(struct cpu_vs_cl *t)
{
    dec_close(t->dc);
    dec_close(t->dg);
    free(t->in);
    free(t->a);
    free(t->b);
    memmodel_free(&t->m);
}

static void test_types_match_cpu(void **st)
{
    (void)st;
    NEED_CL();
    static const int types[] = {QT_F32,  QT_F16,  QT_BF16, QT_Q4_0, QT_Q8_0,   QT_Q4_K,  QT_Q5_K, QT_Q6_K,
                                QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q2_K, QT_Q3_K, QT_IQ4_NL, QT_IQ4_XS};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        int type = types[ti];
        const int np = 32, ns = 32;
        struct cpu_vs_cl t;
        cvc_open(&t, type, 0x9e3779b97f4a7c15ull + ti, np + ns, ns + 1, 128);
        struct memmodel *m = &t.m;
        int dim = t.dim, vocab = t.vocab;
        float *in = t.in, *a = t.a, *b = t.b;
        struct decoder *dc = t.dc, *dg = t.dg;
        assert_null(dec_fallback_note(dg));
        run_seq(dc, in, np, ns, dim, vocab, a);
        run_seq(dg, in, np, ns, dim, vocab, b);
        double e = tu_rel_err(b, a, (size_t)(ns + 1) * vocab);
        /* Exact check of the kernels' decoding: the CPU backend on the F32 twin. */
        struct decoder *dt = open_dev(&m->wf, DEC_DEV_CPU, 128, 0);
        run_seq(dt, in, np, ns, dim, vocab, a);
        double e32 = tu_rel_err(b, a, (size_t)(ns + 1) * vocab);
        dec_close(dt);
        print_message("  %-5s  OpenCL vs CPU logits: max rel err %.2e (tolerance %.0e); "
                      "vs CPU on the F32 twin %.2e (tolerance 1e-04)\n",
                      qt_name(type), e, tol_for(type), e32);
        if (!(e <= tol_for(type))) fail_msg("%s: error %.3e > %.0e", qt_name(type), e, tol_for(type));
        if (!(e32 <= 1e-4)) fail_msg("%s: error vs F32 twin %.3e > 1e-4", qt_name(type), e32);
        /* The GPU kernel layout (64-item groups, local-memory reductions, K-quants per
         * 32-element unit), run on this device too. */
        clu_force_layout(1);
        struct decoder *dgg = open_dev(&m->w, DEC_DEV_CL, 128, 0);
        clu_force_layout(-1);
        run_seq(dgg, in, np, ns, dim, vocab, a);
        double eg = tu_rel_err(a, b, (size_t)(ns + 1) * vocab);
        print_message("  %-5s  GPU kernel layout vs CPU layout: max rel err %.2e\n",
                      qt_name(type), eg);
        if (!(eg <= 1e-4)) fail_msg("%s: GPU layout differs by %.3e", qt_name(type), eg);
        dec_close(dgg);
        cvc_close(&t);
    }
}

/* A prompt of more than one batch (the backend works in chunks of 64 tokens), all logits. */
static void test_long_prompt(void **st)
{
    (void)st;
    NEED_CL();
    const int n = 150;
    struct cpu_vs_cl t;
    cvc_open(&t, QT_Q8_0, 77, n, n, 256);
    int vocab = t.vocab;
    float *in = t.in, *a = t.a, *b = t.b, *c = fvec((size_t)vocab);
    struct decoder *dc = t.dc, *dg = t.dg;
    char err[512];
    if (dec_forward(dc, in, n, 0, a, 1, err, sizeof err)) fail_msg("%s", err);
    if (dec_forward(dg, in, n, 0, b, 1, err, sizeof err)) fail_msg("%s", err);
    double e = tu_rel_err(b, a, (size_t)n * vocab);
    print_message("  %d-token prompt, all logits: max rel err %.2e\n", n, e);
    assert_true(e <= tol_for(QT_Q8_0));
    /* Last-only logits of the same prompt equal the last row of all logits. */
    if (dec_forward(dg, in, n, 0, c, 0, err, sizeof err)) fail_msg("%s", err);
    assert_true(tu_rel_err(c, b + (size_t)(n - 1) * vocab, vocab) <= 1e-5);
    free(c);
    cvc_close(&t);
}

/* Context shift on the device: dropping cache rows and re-rotating the kept keys gives the
 * logits of a fresh decode of the kept inputs (one layer: see test_decoder's shift test for
 * why more would not compare exactly). */
static void test_context_shift(void **st)
{
    (void)st;
    NEED_CL();
    struct memmodel m;
    rmodel_make_layers(&m, QT_F32, 91, 1); /* F32: with Llama 3.1 rope_freqs */
    int dim = m.w.cfg.dim, vocab = m.w.cfg.vocab, n = 70;
    float *in = frand_vec((size_t)(n + 2) * dim);
    static const int shapes[][2] = {{1, 20}, {4, 40}, {0, 70 - 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        struct decoder *a = open_dev(&m.w, DEC_DEV_CL, 128, 0);
        struct decoder *b = open_dev(&m.w, DEC_DEV_CL, 128, 0);
        double e = shiftcheck_run(a, b, in, n, shapes[s][0], shapes[s][1], dim, vocab);
        print_message("  shift keep %d drop %d: vs fresh decode %.2e (tol 1e-4)\n", shapes[s][0],
                      shapes[s][1], e);
        assert_true(e <= 1e-4);
        dec_close(a);
        dec_close(b);
    }
    free(in);
    memmodel_free(&m);
}

/* --- device switch, OOM fallback, missing platform ---------------------- */

static void test_device_switch(void **st)
{
    (void)st;
    NEED_CL();
    struct memmodel m;
    rmodel_make(&m, QT_Q4_K, 5);
    int dim = m.w.cfg.dim, vocab = m.w.cfg.vocab;
    float *in = frand_vec((size_t)20 * dim);
    float *a = fvec((size_t)5 * vocab), *b = fvec((size_t)5 * vocab), *c = fvec((size_t)5 * vocab);
    struct decoder *d = open_dev(&m.w, DEC_DEV_CL, 64, 0);
    run_seq(d, in, 16, 4, dim, vocab, a);
    dec_close(d);
    d = open_dev(&m.w, DEC_DEV_CPU, 64, 0);
    assert_non_null(strstr(dec_device_name(d), "cpu"));
    run_seq(d, in, 16, 4, dim, vocab, b);
    dec_close(d);
    d = open_dev(&m.w, DEC_DEV_CL, 64, 0);
    assert_non_null(strstr(dec_device_name(d), "opencl"));
    run_seq(d, in, 16, 4, dim, vocab, c);
    dec_close(d);
    assert_true(tu_rel_err(a, b, 5 * (size_t)vocab) <= tol_for(QT_Q4_K));
    assert_true(tu_rel_err(c, a, 5 * (size_t)vocab) == 0.0); /* same device, same result */
    /* A device index that does not exist is an error, not a silent fallback. */
    struct dec_options o = dev_options(DEC_DEV_CL, 64, 0);
    o.cl_index = 99;
    char err[512];
    assert_int_equal(dec_open(&d, &m.w, &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "OpenCL device 99 does not exist"));
    /* cl:0 names the first device explicitly. */
    o.cl_index = 0;
    assert_int_equal(dec_open(&d, &m.w, &o, err, sizeof err), 0);
    assert_non_null(strstr(dec_device_name(d), "opencl"));
    dec_close(d);
    free(in);
    free(a);
    free(b);
    free(c);
    memmodel_free(&m);
}

static void test_oom_fallback(void **st)
{
    (void)st;
    NEED_CL();
    struct memmodel m;
    rmodel_make(&m, QT_Q8_0, 9);
    char err[512];
    /* The backend itself reports the shortage... */
    struct dec_options o = dev_options(DEC_DEV_CL, 0, 64 << 10);
    void *state = NULL;
    assert_int_equal(backend_cl_ops.open(&state, &m.w, &o, 64, err, sizeof err), -1);
    assert_null(state);
    print_message("  backend: %s\n", err);
    assert_non_null(strstr(err, "out of memory"));
    /* ...and the decoder falls back to the CPU with a note, for cl and for auto. */
    int devs[] = {DEC_DEV_CL, DEC_DEV_AUTO};
    for (int i = 0; i < 2; i++) {
        struct decoder *d = open_dev(&m.w, devs[i], 64, 64 << 10);
        assert_non_null(strstr(dec_device_name(d), "cpu"));
        if (devs[i] == DEC_DEV_CL) {
            assert_non_null(dec_fallback_note(d));
            print_message("  note: %s\n", dec_fallback_note(d));
            assert_non_null(strstr(dec_fallback_note(d), "out of memory"));
        }
        float x[256], *lg = malloc(sizeof(float) * (size_t)m.w.cfg.vocab);
        assert_non_null(lg);
        for (int j = 0; j < 256; j++) x[j] = frand();
        assert_int_equal(dec_forward(d, x, 1, 0, lg, 0, err, sizeof err), 0);
        free(lg);
        dec_close(d);
    }
    memmodel_free(&m);
}

/* Child side of the missing-platform test: runs with OCL_ICD_VENDORS=/nonexistent. */
static int missing_platform_child(void)
{
    struct clu_dev *dv;
    int n;
    char err[512];
    if (clu_devices(&dv, &n, err, sizeof err) == 0) {
        fprintf(stderr, "child: a platform was found\n");
        return 1;
    }
    if (!strstr(err, "no OpenCL platform")) {
        fprintf(stderr, "child: unclear message: %s\n", err);
        return 1;
    }
    struct memmodel m;
    rmodel_make(&m, QT_F32, 3);
    int devs[] = {DEC_DEV_AUTO, DEC_DEV_CL};
    for (int i = 0; i < 2; i++) {
        struct dec_options o = dev_options(devs[i], 32, 0);
        struct decoder *d;
        if (dec_open(&d, &m.w, &o, err, sizeof err)) {
            fprintf(stderr, "child: dec_open failed: %s\n", err);
            return 1;
        }
        if (!strstr(dec_device_name(d), "cpu")) {
            fprintf(stderr, "child: device %s\n", dec_device_name(d));
            return 1;
        }
        const char *note = dec_fallback_note(d);
        if (devs[i] == DEC_DEV_CL && (!note || !strstr(note, "no OpenCL platform"))) {
            fprintf(stderr, "child: note %s\n", note ? note : "(none)");
            return 1;
        }
        fprintf(stderr, "child: device %d -> %s; note: %s\n", devs[i], dec_device_name(d),
                note ? note : "(none)");
        dec_close(d);
    }
    memmodel_free(&m);
    return 0;
}

static void child_missing_platform(void *arg)
{
    (void)arg;
    setenv("OCL_ICD_VENDORS", "/nonexistent", 1);
    setenv("CMIF_TEST_CL_CHILD", "missing-platform", 1);
    execl("/proc/self/exe", "test_cl", (char *)NULL);
    _exit(127);
}

static void test_missing_platform(void **st)
{
    (void)st;
    int status = tu_fork_wait(child_missing_platform, NULL);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* --- program binary cache ------------------------------------------------------------- */

static void test_binary_cache(void **st)
{
    (void)st;
    NEED_CL();
    char *dir = tu_tmpdir();
    const char *old = getenv("XDG_CACHE_HOME");
    char *saved = old ? strdup(old) : NULL;
    setenv("XDG_CACHE_HOME", dir, 1);
    struct clu_dev *dv;
    int n;
    char err[1024];
    assert_int_equal(clu_devices(&dv, &n, err, sizeof err), 0);
    cl_int stc;
    cl_context ctx = clCreateContext(NULL, 1, &dv[0].device, NULL, NULL, &stc);
    assert_int_equal(stc, CL_SUCCESS);
    const char *src = "kernel void twice(global float *a) { a[get_global_id(0)] *= 2.0f; }\n";
    cl_program p;
    int cached = -1;
    assert_int_equal(clu_build(ctx, &dv[0], src, "", &p, &cached, err, sizeof err), 0);
    assert_int_equal(cached, 0);
    clReleaseProgram(p);
    assert_int_equal(clu_build(ctx, &dv[0], src, "", &p, &cached, err, sizeof err), 0);
    assert_int_equal(cached, 1);
    clReleaseProgram(p);
    /* Corrupt every cache entry: the next build notices, rebuilds and rewrites it. */
    char cmd[4400];
    snprintf(cmd, sizeof cmd,
             "for f in '%s'/cmif/cl-*.bin; do printf 'garbage' | dd of=\"$f\" bs=1 seek=60 "
             "conv=notrunc 2>/dev/null; done; ls '%s'/cmif | grep -c '^cl-'",
             dir, dir);
    FILE *ls = popen(cmd, "r");
    assert_non_null(ls);
    int cnt = 0;
    assert_int_equal(fscanf(ls, "%d", &cnt), 1);
    pclose(ls);
    assert_int_equal(cnt, 1);
    assert_int_equal(clu_build(ctx, &dv[0], src, "", &p, &cached, err, sizeof err), 0);
    assert_int_equal(cached, 0);
    clReleaseProgram(p);
    assert_int_equal(clu_build(ctx, &dv[0], src, "", &p, &cached, err, sizeof err), 0);
    assert_int_equal(cached, 1);
    clReleaseProgram(p);
    /* A forged entry, consistent under the unkeyed hash (what anyone who can write the cache
     * directory could make), is not taken: entries are authenticated with the user's key. */
    snprintf(cmd, sizeof cmd,
             "python3 -c \"import hashlib,glob\n"
             "for f in glob.glob('%s/cmif/cl-*.bin'):\n"
             "  b=bytearray(open(f,'rb').read()); b[60]^=1\n"
             "  b[16:48]=hashlib.blake2b(bytes(b[48:]),digest_size=32).digest()\n"
             "  open(f,'wb').write(b)\"",
             dir);
    if (system(cmd) == 0) {
        assert_int_equal(clu_build(ctx, &dv[0], src, "", &p, &cached, err, sizeof err), 0);
        assert_int_equal(cached, 0);
        clReleaseProgram(p);
    }
    /* A key file others can read is no key: no cache is used at all. */
    snprintf(cmd, sizeof cmd, "chmod 644 '%s'/cmif/cl.key", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(clu_build(ctx, &dv[0], src, "", &p, &cached, err, sizeof err), 0);
    clReleaseProgram(p);
    assert_int_equal(clu_build(ctx, &dv[0], src, "", &p, &cached, err, sizeof err), 0);
    assert_int_equal(cached, 0);
    clReleaseProgram(p);
    /* A build error names the call and carries the compiler log. */
    assert_int_equal(clu_build(ctx, &dv[0], "kernel void broken( {", "", &p, &cached, err,
                               sizeof err),
                     -1);
    assert_non_null(strstr(err, "clBuildProgram: CL_BUILD_PROGRAM_FAILURE"));
    clReleaseContext(ctx);
    clu_devices_free(dv);
    if (saved) setenv("XDG_CACHE_HOME", saved, 1);
    else unsetenv("XDG_CACHE_HOME");
    free(saved);
    tu_rmtree(dir);
}

static void test_status_names(void **st)
{
    (void)st;
    assert_string_equal(clu_status_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    assert_string_equal(clu_status_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
    assert_string_equal(clu_status_name(-9999), "CL_UNKNOWN_ERROR(-9999)");
    assert_string_equal(clu_blast_status_name(-1017), "CLBlastInvalidDimension");
    assert_string_equal(clu_blast_status_name(-4), "CL_MEM_OBJECT_ALLOCATION_FAILURE");
    assert_true(clu_is_oom(CL_MEM_OBJECT_ALLOCATION_FAILURE));
    assert_false(clu_is_oom(CL_INVALID_VALUE));
}

int main(void)
{
    const char *child = getenv("CMIF_TEST_CL_CHILD");
    if (child && strcmp(child, "missing-platform") == 0) return missing_platform_child();
    const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_status_names),
    cmocka_unit_test(test_missing_platform),
    cmocka_unit_test(test_binary_cache),
    cmocka_unit_test(test_golden_stories),
    cmocka_unit_test(test_types_match_cpu),
    cmocka_unit_test(test_long_prompt),
    cmocka_unit_test(test_context_shift),
    cmocka_unit_test(test_device_switch),
    cmocka_unit_test(test_oom_fallback),
    };
    return cmocka_run_group_tests_name("opencl backend", tests, NULL, NULL);
}
