/* Tests of the trainer (app/train/: train, train_run, bpe_train, gguf_out):
 * - gradient checks: every tensor kind (embedding, RMSNorm gains, Q/K through RoPE and
 *   grouped-query attention, V, output, SwiGLU gate/up/down, final norm, output matrix,
 *   tied output) against central finite differences on a tiny random model;
 * - the trainer's forward pass equals the engine's on the GGUF it writes (layout, RoPE
 *   convention, GQA head mapping, tied output);
 * - the learned tokenizer round-trips text through core/tokenizer and knows ChatML;
 * - a micro training run on a generated corpus drives the loss below a stated value;
 * - an interrupted run resumed from its checkpoint continues the same loss curve bit for
 *   bit; a checkpoint of other options is refused. */
#include "tests/testutil.h"

#include <math.h>

#include "app/train/bpe_train.h"
#include "app/train/gguf_out.h"
#include "app/model.h"
#include "app/train/train.h"
#include "app/train/train_run.h"
#include "core/gguf.h"
#include "core/tokenizer.h"
#include "gpu/decoder.h"
#include "gpu/rng.h"

static struct train_model *tiny(int tied, uint64_t seed)
{
    struct train_config c = { .vocab = 11, .dim = 8, .n_layers = 2, .n_heads = 4, .n_kv_heads = 2,
                              .ffn = 12, .ctx = 6, .tied = tied, .norm_eps = 1e-5f,
                              .rope_base = 10000.0f };
    struct train_model *m;
    char err[256];
    assert_int_equal(train_open(&m, &c, 2, 2, seed, err, sizeof err), 0);
    /* larger weights than training's init so every path carries a sizable gradient */
    uint64_t rng[4];
    rng_seed(rng, seed + 99);
    float *p = train_params(m);
    for (int i = 0; i < train_n_tensors(m); i++) {
        const struct train_tensor *t = train_tensor(m, i);
        for (size_t j = 0; j < (size_t)t->rows * t->cols; j++) {
            double u = rng_unit(rng) - 0.5;
            p[t->off + j] = (float)(t->rows == 1 ? 1.0 + u : 1.2 * u);
        }
    }
    return m;
}

static const int32_t gc_tok[2 * 7] = { 1, 5, 7, 3, 9, 2, 10, 1, 4, 4, 8, 6, 0, 3 };

static void gradcheck(int tied)
{
    struct train_model *m = tiny(tied, 7);
    train_zero_grad(m);
    train_loss(m, gc_tok, 2, 6, 1);
    size_t n = train_n_params(m);
    float *ana = malloc(n * sizeof *ana);
    assert_non_null(ana);
    memcpy(ana, train_grads(m), n * sizeof *ana);
    float *p = train_params(m);
    uint64_t rng[4];
    rng_seed(rng, 3);
    for (int i = 0; i < train_n_tensors(m); i++) {
        const struct train_tensor *t = train_tensor(m, i);
        size_t cnt = (size_t)t->rows * t->cols;
        double worst = 0;
        for (int k = 0; k < 8; k++) {
            size_t j = t->off + rng_next(rng) % cnt;
            float keep = p[j];
            const float h = 1e-2f;
            p[j] = keep + h;
            double lp = train_loss(m, gc_tok, 2, 6, 0);
            p[j] = keep - h;
            double lm = train_loss(m, gc_tok, 2, 6, 0);
            p[j] = keep;
            double num = (lp - lm) / (2.0 * h);
            double diff = fabs(num - ana[j]);
            double tol = 2e-4 + 2e-2 * fabs(num);
            if (diff > tol)
                fail_msg("%s[%zu]: analytic %.6g vs numeric %.6g", t->name, j - t->off, ana[j], num);
            if (diff > worst) worst = diff;
        }
        /* the gradient of every tensor is really exercised */
        double norm = 0;
        for (size_t j = 0; j < cnt; j++) norm += (double)ana[t->off + j] * ana[t->off + j];
        if (!(norm > 1e-8)) fail_msg("%s: gradient is zero", t->name);
    }
    free(ana);
    train_close(m);
}

static void test_gradcheck_untied(void **state) { (void)state; gradcheck(0); }

static void test_bad_batch(void **state)
{
    (void)state;
    struct train_model *m = tiny(0, 1);
    int32_t tok[7] = { 1, 2, 3, 4, 5, 6, 11 };   /* 11 is past the vocabulary */
    assert_true(isnan(train_loss(m, tok, 1, 6, 0)));
    tok[6] = -1;
    assert_true(isnan(train_loss(m, tok, 1, 6, 0)));
    tok[6] = 7;
    assert_false(isnan(train_loss(m, tok, 1, 6, 0)));
    assert_true(isnan(train_loss(m, gc_tok, 3, 6, 0)));   /* batch over max_batch */
    assert_true(isnan(train_loss(m, gc_tok, 1, 7, 0)));   /* longer than ctx */
    train_close(m);
}
static void test_gradcheck_tied(void **state) { (void)state; gradcheck(1); }

/* The model as the engine runs it: logits of the trainer and of gpu/decoder agree. */
static void engine_matches(int tied)
{
    struct train_model *m = tiny(tied, 11);
    char err[256];
    struct gguf_out *w = gguf_out_new();
    assert_non_null(w);
    train_to_gguf(m, w, "test");
    void *buf;
    size_t len;
    assert_int_equal(gguf_out_mem(w, &buf, &len, err, sizeof err), 0);
    gguf_out_free(w);
    struct gguf *g;
    struct model *md;
    struct decoder *d;
    if (gguf_open_mem(&g, buf, len, err, sizeof err)) fail_msg("%s", err);
    if (model_open(&md, g, err, sizeof err)) fail_msg("%s", err);
    assert_int_equal(md->tied, tied);
    struct dec_options o = { .ctx = 6, .threads = 1, .device = DEC_DEV_CPU, .cl_index = -1 };
    if (dec_open(&d, &md->w, &o, err, sizeof err)) fail_msg("%s", err);
    const int32_t *tok = gc_tok + 7;
    float x[6 * 8], logits[6 * 11];
    for (int i = 0; i < 6; i++) assert_int_equal(model_embed_token(md, tok[i], x + i * 8, err, sizeof err), 0);
    assert_int_equal(dec_forward(d, x, 6, 0, logits, 1, err, sizeof err), 0);
    double loss = 0;
    for (int t = 0; t < 6; t++) {
        double mx = logits[t * 11], s = 0;
        for (int j = 1; j < 11; j++) if (logits[t * 11 + j] > mx) mx = logits[t * 11 + j];
        for (int j = 0; j < 11; j++) s += exp(logits[t * 11 + j] - mx);
        loss += log(s) + mx - logits[t * 11 + tok[t + 1]];
    }
    loss /= 6;
    double mine = train_loss(m, tok, 1, 6, 0);
    if (fabs(loss - mine) > 1e-4 * fabs(mine) + 1e-5)
        fail_msg("engine loss %.7f vs trainer %.7f", loss, mine);
    dec_close(d);
    model_close(md);
    gguf_close(g);
    free(buf);
    train_close(m);
}

static void test_engine_forward_untied(void **state) { (void)state; engine_matches(0); }
static void test_engine_forward_tied(void **state) { (void)state; engine_matches(1); }

/* A small corpus from a seeded toy grammar: short stories and ChatML dialogues. */
static const char *corpus_file(const char *dir, const char *name, int docs, uint64_t seed)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    static const char *const who[] = { "Tom", "Lily", "Sam", "Mia" };
    static const char *const thing[] = { "ball", "dog", "cake", "tree", "kite", "boat" };
    static const char *const verb[] = { "saw", "liked", "found", "had" };
    static const char *const adj[] = { "big", "red", "little", "happy" };
    uint64_t r[4];
    rng_seed(r, seed);
    for (int d = 0; d < docs; d++) {
        const char *a = who[rng_next(r) % 4], *b = thing[rng_next(r) % 6];
        if (d % 2) fprintf(f, "<|im_start|>user\nTell me a story about %s and a %s.<|im_end|>\n"
                              "<|im_start|>assistant\n", a, b);
        fprintf(f, "%s %s a %s %s.", a, verb[rng_next(r) % 4], adj[rng_next(r) % 4], b);
        int n = 2 + (int)(rng_next(r) % 3);
        for (int i = 0; i < n; i++)
            fprintf(f, " The %s was %s.", b, adj[rng_next(r) % 4]);
        fprintf(f, "\n%s was happy.%s\n\n", a, d % 2 ? "<|im_end|>" : "");
    }
    assert_int_equal(fclose(f), 0);
    return path;
}

static void test_tokenizer(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    const char *path = corpus_file(dir, "c.txt", 200, 5);
    FILE *f = fopen(path, "rb");
    char text[65536];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    char err[256];
    struct bpe_vocab *v;
    assert_int_equal(bpe_train(text, len, 360, &v, err, sizeof err), 0);
    print_message("toy vocabulary: %d tokens, %d characters, %d merges\n", v->n, v->n_chars, v->n_merges);
    assert_true(v->n <= 360 && v->n_merges > 40);
    bpe_vocab_free(v);
    assert_int_equal(bpe_train(text, len, 10, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "vocabulary size"));
    assert_int_equal(bpe_train(text, len, 360, &v, err, sizeof err), 0);
    struct gguf_out *w = gguf_out_new();
    assert_non_null(w);
    bpe_vocab_to_gguf(v, w);
    void *buf;
    size_t blen;
    assert_int_equal(gguf_out_mem(w, &buf, &blen, err, sizeof err), 0);
    struct gguf *g;
    struct tokenizer *t;
    if (gguf_open_mem(&g, buf, blen, err, sizeof err) || tok_open(&t, g, err, sizeof err))
        fail_msg("%s", err);
    /* words of the corpus become single tokens; unseen bytes fall back to <0xXX> */
    static const char s[] = "<|im_start|>user\nTom saw a big kite. \xc3\xa9\xe2\x82\xac!<|im_end|>";
    int32_t ids[128];
    size_t n;
    assert_int_equal(tok_encode(t, s, strlen(s), 1, 1, ids, 128, &n, err, sizeof err), 0);
    assert_int_equal(ids[0], BPE_BOS);
    assert_int_equal(ids[1], BPE_IM_START);
    assert_int_equal(ids[n - 1], BPE_IM_END);
    assert_true(tok_is_eog(t, BPE_IM_END));
    char out[256] = "";
    size_t o = 0;
    for (size_t i = 1; i < n; i++) o += tok_piece(t, ids[i], 1, out + o, sizeof out - o);
    out[o] = 0;
    assert_string_equal(out, s);
    int32_t kite = tok_find(t, "\xe2\x96\x81kite", 6);
    assert_true(kite >= BPE_BYTE0 + 256);
    int bytes = 0;
    for (size_t i = 0; i < n; i++) bytes += tok_type(t, ids[i]) == TOK_T_BYTE;
    assert_int_equal(bytes, 7);   /* \n (always bytes), and !, é, € which the corpus lacks */
    struct gguf_str tpl;
    assert_int_equal(gguf_get_str(g, "tokenizer.chat_template", &tpl), 0);
    tok_close(t);
    gguf_close(g);
    free(buf);
    gguf_out_free(w);
    bpe_vocab_free(v);
    tu_rmtree(dir);
}

static void micro_opts(struct train_run_opts *o, const char *corpus)
{
    train_run_defaults(o);
    o->corpus = corpus;
    o->vocab = 300;
    o->cfg.dim = 32;
    o->cfg.n_layers = 2;
    o->cfg.n_heads = 4;
    o->cfg.n_kv_heads = 2;
    o->cfg.ffn = 64;
    o->cfg.ctx = 32;
    o->hp.batch = 4;
    o->hp.steps = 40;
    o->hp.warmup = 5;
    o->hp.lr = 1e-2f;
    o->threads = 2;
    o->seed = 42;
    o->ckpt_every = 10;
}

/* Loss of a micro model falls from ln(vocab) (about 5.7) below 1.0 in 120 steps: the toy
 * grammar is very predictable. The GGUF written at the end loads in the engine. */
static void test_micro_training(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct train_run_opts o;
    micro_opts(&o, corpus_file(dir, "c.txt", 300, 9));
    o.hp.steps = 120;
    char out[600];
    snprintf(out, sizeof out, "%s/m.gguf", dir);
    o.out = out;
    float loss[120];
    char err[256];
    if (train_run(&o, loss, 120, err, sizeof err)) fail_msg("%s", err);
    double last = 0;
    for (int i = 110; i < 120; i++) last += loss[i] / 10;
    print_message("micro training: loss %.3f at step 1, %.3f over steps 111-120\n", loss[0], last);
    assert_true(loss[0] > 4.5);
    assert_true(last < 1.0);
    struct gguf *g;
    struct model *md;
    struct tokenizer *t;
    if (gguf_open(&g, out, err, sizeof err) || model_open(&md, g, err, sizeof err) ||
        tok_open(&t, g, err, sizeof err))
        fail_msg("%s", err);
    assert_int_equal(md->w.cfg.n_layers, 2);
    assert_int_equal(md->w.cfg.ctx_train, 32);
    tok_close(t);
    model_close(md);
    gguf_close(g);
    tu_rmtree(dir);
}

/* Steps 21..40 after resuming equal those of an uninterrupted run, bit for bit. */
static void test_resume(void **state)
{
    (void)state;
    char ck1[600], ck2[600], err[256];
    char *dir = tu_tmpfile("a.ckpt", ck1, sizeof ck1);
    snprintf(ck2, sizeof ck2, "%s/b.ckpt", dir);
    struct train_run_opts o;
    micro_opts(&o, corpus_file(dir, "c.txt", 120, 3));
    float straight[40], parts[40];
    memset(parts, 0, sizeof parts);
    o.checkpoint = ck1;
    if (train_run(&o, straight, 40, err, sizeof err)) fail_msg("%s", err);
    o.checkpoint = ck2;
    o.stop_after = 20;
    if (train_run(&o, parts, 40, err, sizeof err)) fail_msg("%s", err);
    for (int i = 20; i < 40; i++) assert_true(parts[i] == 0.0f);
    o.stop_after = 0;
    o.resume = 1;
    if (train_run(&o, parts, 40, err, sizeof err)) fail_msg("%s", err);
    for (int i = 0; i < 40; i++)
        if (memcmp(&parts[i], &straight[i], sizeof(float)) != 0)
            fail_msg("step %d: resumed loss %.9g vs straight %.9g", i + 1, parts[i], straight[i]);
    assert_true(straight[39] < straight[0]);
    /* other options: the checkpoint is refused with a reason */
    o.seed = 43;
    assert_int_equal(train_run(&o, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "other data or options"));
    o.seed = 42;
    o.cfg.dim = 16;
    assert_int_equal(train_run(&o, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "different model shape"));
    tu_rmtree(dir);
}

static void test_bad_input(void **state)
{
    (void)state;
    struct train_run_opts o;
    char err[256];
    micro_opts(&o, "/nonexistent/corpus.txt");
    assert_int_equal(train_run(&o, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "/nonexistent/corpus.txt"));
    char *dir = tu_tmpdir();
    micro_opts(&o, corpus_file(dir, "c.txt", 1, 1));
    o.cfg.ctx = 256;
    assert_int_equal(train_run(&o, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "too small"));
    micro_opts(&o, corpus_file(dir, "c.txt", 50, 1));
    o.cfg.dim = 30;     /* 4 heads of 7.5 */
    assert_int_equal(train_run(&o, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "heads"));
    tu_rmtree(dir);
}

TU_MAIN(
    cmocka_unit_test(test_gradcheck_untied),
    cmocka_unit_test(test_gradcheck_tied),
    cmocka_unit_test(test_bad_batch),
    cmocka_unit_test(test_engine_forward_untied),
    cmocka_unit_test(test_engine_forward_tied),
    cmocka_unit_test(test_tokenizer),
    cmocka_unit_test(test_micro_training),
    cmocka_unit_test(test_resume),
    cmocka_unit_test(test_bad_input))
