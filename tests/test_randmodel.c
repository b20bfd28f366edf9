/* Tests of tests/tools/randmodel: shapes and names as llama.cpp writes them, metadata,
 * the synthetic vocabulary, determinism, F32/quantized twins, weight statistics, tied
 * output, the tokenizer copy (and its extension with control tokens) and spec validation. */
#include "tests/testutil.h"

#include <math.h>

#include "core/gguf.h"
#include "gpu/quant.h"
#include "tests/tools/randmodel.h"

static char *write_model(const char *dir, const char *name, const struct randmodel_spec *s)
{
    static char path[600];
    char err[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (randmodel_write(path, s, err, sizeof err)) fail_msg("randmodel_write: %s", err);
    return path;
}

static struct gguf *open_or_fail(const char *path)
{
    struct gguf *g;
    char err[512];
    if (gguf_open(&g, path, err, sizeof err)) fail_msg("%s", err);
    return g;
}

static void expect_u32(const struct gguf *g, const char *key, uint32_t want)
{
    uint32_t v = 0;
    if (gguf_get_u32(g, key, &v) != 0) fail_msg("missing %s", key);
    if (v != want) fail_msg("%s = %u, want %u", key, v, want);
}

static void expect_shape(const struct gguf *g, const char *name, uint32_t type, uint64_t ne0,
                         uint64_t ne1)
{
    const struct gguf_tensor *t = gguf_tensor(g, name);
    if (!t) fail_msg("missing tensor %s", name);
    if (t->type != type || t->ne[0] != ne0 || t->ne[1] != ne1)
        fail_msg("%s: %s [%llu, %llu], want %s [%llu, %llu]", name, gguf_type_name(t->type),
                 (unsigned long long)t->ne[0], (unsigned long long)t->ne[1],
                 gguf_type_name(type), (unsigned long long)ne0, (unsigned long long)ne1);
    assert_int_equal(t->n_dims, ne1 == 1 ? 1 : 2);
}

static void test_default_model(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct randmodel_spec s;
    randmodel_defaults(&s);
    struct gguf *g = open_or_fail(write_model(dir, "m.gguf", &s));
    struct gguf_str str;
    assert_int_equal(gguf_get_str(g, "general.architecture", &str), 0);
    assert_memory_equal(str.ptr, "llama", 5);
    const struct { const char *key; int want; } shape[] = {
        {"embedding_length", s.dim},         {"block_count", s.n_layers},
        {"attention.head_count", s.n_heads}, {"attention.head_count_kv", s.n_kv_heads},
        {"feed_forward_length", s.ffn_dim},  {"context_length", s.ctx},
        {"rope.dimension_count", s.dim / s.n_heads},
    };
    for (size_t i = 0; i < sizeof shape / sizeof shape[0]; i++) {
        char key[64];
        snprintf(key, sizeof key, "llama.%s", shape[i].key);
        expect_u32(g, key, (uint32_t)shape[i].want);
    }
    float f;
    assert_int_equal(gguf_get_f32(g, "llama.rope.freq_base", &f), 0);
    assert_true(f == 10000.0f);
    assert_int_equal(gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &f), 0);
    assert_true(f == 1e-5f);

    uint64_t d = (uint64_t)s.dim, kvd = d / (uint64_t)s.n_heads * (uint64_t)s.n_kv_heads;
    uint64_t ffn = (uint64_t)s.ffn_dim, v = (uint64_t)s.vocab;
    assert_int_equal(g->n_tensors, 3 + 9 * s.n_layers);
    expect_shape(g, "token_embd.weight", GGUF_T_F32, d, v);
    expect_shape(g, "output_norm.weight", GGUF_T_F32, d, 1);
    expect_shape(g, "output.weight", GGUF_T_F32, d, v);
    for (int l = 0; l < s.n_layers; l++) {
        char n[64];
#define SHAPE(suffix, a, b)                                          \
    snprintf(n, sizeof n, "blk.%d." suffix ".weight", l);            \
    expect_shape(g, n, GGUF_T_F32, a, b)
        SHAPE("attn_norm", d, 1);
        SHAPE("attn_q", d, d);
        SHAPE("attn_k", d, kvd);
        SHAPE("attn_v", d, kvd);
        SHAPE("attn_output", d, d);
        SHAPE("ffn_norm", d, 1);
        SHAPE("ffn_gate", d, ffn);
        SHAPE("ffn_up", d, ffn);
        SHAPE("ffn_down", ffn, d);
#undef SHAPE
    }

    /* Synthetic SentencePiece vocabulary. */
    assert_int_equal(gguf_get_str(g, "tokenizer.ggml.model", &str), 0);
    assert_memory_equal(str.ptr, "llama", 5);
    expect_u32(g, "tokenizer.ggml.bos_token_id", 1);
    expect_u32(g, "tokenizer.ggml.eos_token_id", 2);
    const struct gguf_kv *tok = gguf_find(g, "tokenizer.ggml.tokens");
    const struct gguf_kv *tt = gguf_find(g, "tokenizer.ggml.token_type");
    const struct gguf_kv *sc = gguf_find(g, "tokenizer.ggml.scores");
    assert_non_null(tok);
    assert_non_null(tt);
    assert_non_null(sc);
    assert_int_equal(tok->arr_n, v);
    assert_int_equal(tt->arr_n, v);
    assert_int_equal(sc->arr_n, v);
    int32_t type;
    assert_int_equal(gguf_arr_str(tok, 0, &str), 0);
    assert_memory_equal(str.ptr, "<unk>", 5);
    assert_int_equal(gguf_arr_str(tok, 3 + 0x41, &str), 0);
    assert_int_equal(str.len, 6);
    assert_memory_equal(str.ptr, "<0x41>", 6);
    assert_int_equal(gguf_arr_i32(tt, 3 + 0x41, &type), 0);
    assert_int_equal(type, 6);   /* BYTE */
    assert_int_equal(gguf_arr_i32(tt, 1, &type), 0);
    assert_int_equal(type, 3);   /* CONTROL */
    int found_the = 0, found_th = 0;
    for (uint64_t i = 0; i < tok->arr_n; i++) {
        assert_int_equal(gguf_arr_str(tok, i, &str), 0);
        assert_true(str.len > 0);
        if (str.len == 6 && !memcmp(str.ptr, "\xe2\x96\x81the", 6)) found_the = 1;
        if (str.len == 5 && !memcmp(str.ptr, "\xe2\x96\x81th", 5)) found_th = 1;
        for (uint64_t j = 0; j < i && i < 400; j++) {   /* pieces are unique */
            struct gguf_str o;
            gguf_arr_str(tok, j, &o);
            assert_false(o.len == str.len && !memcmp(o.ptr, str.ptr, str.len));
        }
    }
    assert_true(found_the && found_th);

    /* Weight statistics: matrices ~ N(0, 0.5/sqrt(cols)), norms ~ 1. */
    const struct gguf_tensor *t = gguf_tensor(g, "blk.0.ffn_down.weight");
    const float *w = t->data;
    size_t n = (size_t)(t->ne[0] * t->ne[1]);
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++) sum += w[i], sq += (double)w[i] * w[i];
    double mean = sum / (double)n, sd = sqrt(sq / (double)n - mean * mean);
    double want = 0.5 / sqrt((double)t->ne[0]);
    assert_true(fabs(mean) < 0.1 * want);
    assert_true(fabs(sd - want) < 0.05 * want);
    t = gguf_tensor(g, "blk.1.attn_norm.weight");
    w = t->data;
    for (uint64_t i = 0; i < t->ne[0]; i++) assert_true(w[i] > 0.7f && w[i] < 1.3f);
    /* Distinct rows (small models never repeat rows). */
    t = gguf_tensor(g, "token_embd.weight");
    w = t->data;
    for (uint64_t r = 1; r < t->ne[1]; r++)
        assert_true(memcmp(w, w + r * t->ne[0], t->ne[0] * sizeof(float)) != 0);
    gguf_close(g);
    tu_rmtree(dir);
}

static int same_file(const char *a, const char *b)
{
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    assert_non_null(fa);
    assert_non_null(fb);
    int same = 1, ca, cb;
    do {
        ca = fgetc(fa);
        cb = fgetc(fb);
        if (ca != cb) same = 0;
    } while (same && ca != EOF);
    fclose(fa);
    fclose(fb);
    return same;
}

static void test_determinism(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct randmodel_spec s;
    randmodel_defaults(&s);
    s.seed = 42;
    char a[600], b[600], c[600];
    snprintf(a, sizeof a, "%s", write_model(dir, "a.gguf", &s));
    snprintf(b, sizeof b, "%s", write_model(dir, "b.gguf", &s));
    s.seed = 43;
    snprintf(c, sizeof c, "%s", write_model(dir, "c.gguf", &s));
    assert_true(same_file(a, b));
    assert_false(same_file(a, c));
    tu_rmtree(dir);
}

/* A quantized model holds the quantization of its F32 twin's weights. */
static void test_quantized_twin(void **state)
{
    (void)state;
    static const int types[] = {GGUF_T_F16, GGUF_T_BF16, GGUF_T_Q8_0, GGUF_T_Q4_0,
                                GGUF_T_Q4_K, GGUF_T_Q5_K, GGUF_T_Q6_K, GGUF_T_Q4_1,
                                GGUF_T_Q5_0, GGUF_T_Q5_1, GGUF_T_Q2_K, GGUF_T_Q3_K,
                                GGUF_T_IQ4_NL, GGUF_T_IQ4_XS};
    char *dir = tu_tmpdir();
    struct randmodel_spec s;
    randmodel_defaults(&s);
    s.dim = 256;
    s.ffn_dim = 512;
    s.n_heads = 4;
    s.n_kv_heads = 1;
    s.n_layers = 1;
    s.vocab = 300;
    char fp[600];
    snprintf(fp, sizeof fp, "%s", write_model(dir, "f32.gguf", &s));
    struct gguf *gf = open_or_fail(fp);
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        s.type = types[k];
        s.embd_type = GGUF_T_Q8_0;
        struct gguf *gq = open_or_fail(write_model(dir, "q.gguf", &s));
        expect_shape(gq, "token_embd.weight", GGUF_T_Q8_0, 256, 300);
        expect_shape(gq, "blk.0.attn_norm.weight", GGUF_T_F32, 256, 1);
        const char *names[] = {"blk.0.ffn_down.weight", "blk.0.attn_k.weight", "output.weight"};
        for (size_t m = 0; m < 3; m++) {
            const struct gguf_tensor *tf = gguf_tensor(gf, names[m]), *tq = gguf_tensor(gq, names[m]);
            assert_int_equal(tq->type, (uint32_t)types[k]);
            assert_int_equal(tq->ne[0], tf->ne[0]);
            size_t cols = (size_t)tf->ne[0];
            uint64_t rb;
            assert_int_equal(gguf_row_bytes(tq->type, cols, &rb), 0);
            float *row = malloc(cols * sizeof *row);
            uint8_t *want = malloc(rb);
            for (uint64_t r = 0; r < tf->ne[1]; r += 7) {
                const float *x = (const float *)tf->data + r * cols;
                qt_quant_row(types[k], x, want, cols);
                assert_memory_equal((const uint8_t *)tq->data + r * rb, want, rb);
                /* and the dequantized row is close to the float weights */
                qt_dequant_row(types[k], (const uint8_t *)tq->data + r * rb, row, cols);
                double err = 0, norm = 0;
                for (size_t i = 0; i < cols; i++)
                    err += (row[i] - x[i]) * (row[i] - x[i]), norm += x[i] * x[i];
                /* 2-bit quants (Q2_K) leave about 0.27 of the norm on Gaussian rows */
                assert_true(sqrt(err / norm) < (types[k] == GGUF_T_Q2_K ? 0.35 : 0.2));
            }
            free(row);
            free(want);
        }
        gguf_close(gq);
    }
    gguf_close(gf);
    tu_rmtree(dir);
}

static void test_tied_and_tokenizer_from(void **state)
{
    (void)state;
    const char *src = tu_shared("models/stories260K.gguf");
    char *dir = tu_tmpdir();
    struct randmodel_spec s;
    randmodel_defaults(&s);
    s.tied = 1;
    s.tokenizer_from = src;
    s.vocab = 7;   /* ignored: the vocabulary size comes from the copied tokenizer */
    struct gguf *g = open_or_fail(write_model(dir, "t.gguf", &s));
    assert_null(gguf_tensor(g, "output.weight"));
    expect_shape(g, "token_embd.weight", GGUF_T_F32, 64, 512);
    expect_u32(g, "llama.vocab_size", 512);
    struct gguf *o = open_or_fail(src);
    uint64_t n_tok_keys = 0;
    for (uint64_t i = 0; i < o->n_kv; i++) {
        const struct gguf_kv *ko = &o->kv[i];
        if (ko->key.len < 10 || memcmp(ko->key.ptr, "tokenizer.", 10)) continue;
        n_tok_keys++;
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)ko->key.len, ko->key.ptr);
        const struct gguf_kv *kn = gguf_find(g, key);
        if (!kn) fail_msg("tokenizer key %s not copied", key);
        assert_int_equal(kn->type, ko->type);
        assert_int_equal(kn->arr_n, ko->arr_n);
    }
    assert_true(n_tok_keys >= 5);
    const struct gguf_kv *a = gguf_find(o, "tokenizer.ggml.tokens"),
                         *b = gguf_find(g, "tokenizer.ggml.tokens");
    for (uint64_t i = 0; i < a->arr_n; i++) {
        struct gguf_str x, y;
        assert_int_equal(gguf_arr_str(a, i, &x), 0);
        assert_int_equal(gguf_arr_str(b, i, &y), 0);
        assert_int_equal(x.len, y.len);
        assert_memory_equal(x.ptr, y.ptr, x.len);
    }
    gguf_close(o);
    gguf_close(g);
    tu_rmtree(dir);
}

/* A copied vocabulary extended with control tokens (Mistral v0.3's 32,768): the copied
 * tokens keep their ids, scores and types; the added ones come after, named by add_tokens
 * and then [control_N]; the table grows with them. */
static void test_extended_vocab(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    struct randmodel_spec s;
    randmodel_defaults(&s);
    s.vocab = 300;
    char src[600];
    snprintf(src, sizeof src, "%s", write_model(dir, "src.gguf", &s));
    static const char *const extra[] = {"[INST]", "[/INST]"};
    s.tokenizer_from = src;
    s.vocab = 310;
    s.add_tokens = extra;
    s.n_add_tokens = 2;
    struct gguf *g = open_or_fail(write_model(dir, "x.gguf", &s));
    struct gguf *o = open_or_fail(src);
    expect_u32(g, "llama.vocab_size", 310);
    expect_shape(g, "token_embd.weight", GGUF_T_F32, 64, 310);
    expect_shape(g, "output.weight", GGUF_T_F32, 64, 310);
    const struct gguf_kv *tok = gguf_find(g, "tokenizer.ggml.tokens"),
                         *sc = gguf_find(g, "tokenizer.ggml.scores"),
                         *ty = gguf_find(g, "tokenizer.ggml.token_type"),
                         *otok = gguf_find(o, "tokenizer.ggml.tokens"),
                         *osc = gguf_find(o, "tokenizer.ggml.scores"),
                         *oty = gguf_find(o, "tokenizer.ggml.token_type");
    assert_non_null(tok);
    assert_non_null(sc);
    assert_non_null(ty);
    assert_int_equal(tok->arr_n, 310);
    assert_int_equal(sc->arr_n, 310);
    assert_int_equal(ty->arr_n, 310);
    for (uint64_t i = 0; i < 300; i++) {
        struct gguf_str x, y;
        float fx, fy;
        int32_t tx, tyv;
        assert_int_equal(gguf_arr_str(otok, i, &x), 0);
        assert_int_equal(gguf_arr_str(tok, i, &y), 0);
        assert_int_equal(x.len, y.len);
        assert_memory_equal(x.ptr, y.ptr, x.len);
        assert_int_equal(gguf_arr_f32(osc, i, &fx), 0);
        assert_int_equal(gguf_arr_f32(sc, i, &fy), 0);
        assert_true(fx == fy);
        assert_int_equal(gguf_arr_i32(oty, i, &tx), 0);
        assert_int_equal(gguf_arr_i32(ty, i, &tyv), 0);
        assert_int_equal(tx, tyv);
    }
    static const char *const want[] = {"[INST]", "[/INST]", "[control_3]"};
    for (uint64_t i = 300; i < 303; i++) {
        struct gguf_str y;
        int32_t t;
        assert_int_equal(gguf_arr_str(tok, i, &y), 0);
        assert_int_equal(y.len, strlen(want[i - 300]));
        assert_memory_equal(y.ptr, want[i - 300], y.len);
        assert_int_equal(gguf_arr_i32(ty, i, &t), 0);
        assert_int_equal(t, 3);   /* control */
    }
    struct gguf_str last;
    assert_int_equal(gguf_arr_str(tok, 309, &last), 0);
    assert_int_equal(last.len, strlen("[control_10]"));
    assert_memory_equal(last.ptr, "[control_10]", last.len);
    gguf_close(o);
    gguf_close(g);
    tu_rmtree(dir);
}

static void test_bad_specs(void **state)
{
    (void)state;
    char path[600], err[512];
    char *dir = tu_tmpfile("bad.gguf", path, sizeof path);
    struct randmodel_spec s;
    static const struct {
        int field, value;
        const char *expect;
    } cases[] = {
        {0, 0, "positive"},
        {1, 5, "n_heads 5"},                         /* dim 64 not divisible by 5 heads */
        {2, 3, "not a multiple of n_kv_heads 3"},
        {3, GGUF_T_Q4_K, "dim 64 is not a multiple of the Q4_K block size 256"},
        {4, 100, "at least 259 tokens"},
        {5, GGUF_T_Q8_1, "cannot be generated"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        randmodel_defaults(&s);
        switch (cases[i].field) {
        case 0: s.dim = cases[i].value; break;
        case 1: s.n_heads = cases[i].value; break;
        case 2: s.n_kv_heads = cases[i].value; break;
        case 3: s.type = cases[i].value; break;
        case 4: s.vocab = cases[i].value; break;
        case 5: s.embd_type = cases[i].value; break;
        }
        err[0] = 0;
        assert_int_equal(randmodel_write(path, &s, err, sizeof err), -1);
        if (!strstr(err, cases[i].expect)) fail_msg("case %zu: '%s'", i, err);
    }
    randmodel_defaults(&s);
    s.tokenizer_from = "/nonexistent.gguf";
    assert_int_equal(randmodel_write(path, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, "cannot open /nonexistent.gguf"));
    tu_rmtree(dir);
}

TU_MAIN(
    cmocka_unit_test(test_default_model),
    cmocka_unit_test(test_determinism),
    cmocka_unit_test(test_quantized_twin),
    cmocka_unit_test(test_tied_and_tokenizer_from),
    cmocka_unit_test(test_extended_vocab),
    cmocka_unit_test(test_bad_specs))
