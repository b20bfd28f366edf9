/* Well-formed GGUF files that are not usable Llama models: missing required keys, keys of
 * the wrong type, missing or misshapen tensors, unsupported tensor types. The reader accepts
 * them (they are valid GGUF); the model loader (app/model) must refuse each with a message
 * naming the key or tensor. Complements test_gguf's table of malformed files. */
#include "tests/testutil.h"

#include "app/model.h"
#include "core/gguf.h"
#include "app/train/gguf_out.h"

enum { DIM = 32, LAYERS = 2, HEADS = 4, KV = 2, FFN = 64, VOCAB = 40 };

enum mut {
    M_NONE, M_NO_ARCH, M_ARCH_GPT2, M_NO_DIM, M_DIM_STRING, M_NO_LAYERS, M_LAYERS_NEG,
    M_NO_HEADS, M_NO_FFN, M_HEADS_NOT_DIVIDING, M_EPS_STRING, M_NO_EMBD, M_NO_NORM,
    M_NO_FFN_DOWN, M_BAD_K_SHAPE, M_BAD_TYPE, M_BAD_NORM_SHAPE,
};

static int zero_fill(void *ctx, void *dst, uint64_t off, uint64_t n)
{
    (void)ctx, (void)off;
    memset(dst, 0, n);
    return 0;
}

static void tensor(struct gguf_out *w, const char *name, uint64_t ne0, uint64_t ne1)
{
    uint64_t ne[2] = {ne0, ne1};
    gguf_out_tensor_fn(w, name, GGUF_T_F32, ne1 > 1 ? 2 : 1, ne, zero_fill, NULL);
}

static void write_model(const char *path, enum mut m)
{
    struct gguf_out *w = gguf_out_new();
    assert_non_null(w);
    if (m != M_NO_ARCH)
        gguf_out_str(w, "general.architecture", m == M_ARCH_GPT2 ? "gpt2" : "llama");
    const char *p = m == M_ARCH_GPT2 ? "gpt2." : "llama.";
    char k[96];
#define KEY(s) (snprintf(k, sizeof k, "%s%s", p, s), k)
    if (m == M_DIM_STRING) gguf_out_str(w, KEY("embedding_length"), "32");
    else if (m != M_NO_DIM) gguf_out_u32(w, KEY("embedding_length"), DIM);
    if (m == M_LAYERS_NEG) gguf_out_i32(w, KEY("block_count"), -2);
    else if (m != M_NO_LAYERS) gguf_out_u32(w, KEY("block_count"), LAYERS);
    if (m != M_NO_HEADS)
        gguf_out_u32(w, KEY("attention.head_count"), m == M_HEADS_NOT_DIVIDING ? 5 : HEADS);
    gguf_out_u32(w, KEY("attention.head_count_kv"), KV);
    if (m != M_NO_FFN) gguf_out_u32(w, KEY("feed_forward_length"), FFN);
    gguf_out_u32(w, KEY("context_length"), 128);
    if (m == M_EPS_STRING) gguf_out_str(w, KEY("attention.layer_norm_rms_epsilon"), "1e-5");
    else gguf_out_f32(w, KEY("attention.layer_norm_rms_epsilon"), 1e-5f);
#undef KEY
    uint64_t kvd = DIM / HEADS * KV;
    if (m != M_NO_EMBD) tensor(w, "token_embd.weight", DIM, VOCAB);
    if (m != M_NO_NORM) tensor(w, "output_norm.weight", DIM, 1);
    tensor(w, "output.weight", DIM, VOCAB);
    for (int l = 0; l < LAYERS; l++) {
        char n[64];
#define T(suffix, a, b)                                                   \
    do {                                                                  \
        snprintf(n, sizeof n, "blk.%d." suffix ".weight", l);             \
        tensor(w, n, a, b);                                            \
    } while (0)
        if (m == M_BAD_NORM_SHAPE && l == 1) T("attn_norm", DIM + 1, 1);
        else T("attn_norm", DIM, 1);
        T("attn_q", DIM, DIM);
        if (m == M_BAD_K_SHAPE && l == 1) T("attn_k", DIM, kvd + 1);
        else T("attn_k", DIM, kvd);
        T("attn_v", DIM, kvd);
        T("attn_output", DIM, DIM);
        T("ffn_norm", DIM, 1);
        T("ffn_gate", DIM, FFN);
        T("ffn_up", DIM, FFN);
        if (m == M_BAD_TYPE && l == 0) {
            uint64_t ne[2] = {256, DIM};   /* Q2_K: valid GGUF, not a decoder type */
            gguf_out_tensor_fn(w, "blk.0.ffn_down.weight", GGUF_T_Q2_K, 2, ne, zero_fill, NULL);
        } else if (!(m == M_NO_FFN_DOWN && l == 1)) {
            T("ffn_down", FFN, DIM);
        }
#undef T
    }
    char err[512];
    if (gguf_out_write(w, path, err, sizeof err)) fail_msg("%s", err);
    gguf_out_free(w);
}

static const struct {
    enum mut m;
    const char *name, *expect;
} cases[] = {
    {M_NO_ARCH, "missing architecture", "general.architecture"},
    {M_ARCH_GPT2, "other architecture", "gpt2"},
    {M_NO_DIM, "missing embedding_length", "llama.embedding_length"},
    {M_DIM_STRING, "embedding_length is a string", "llama.embedding_length"},
    {M_NO_LAYERS, "missing block_count", "llama.block_count"},
    {M_LAYERS_NEG, "negative block_count", "llama.block_count"},
    {M_NO_HEADS, "missing head_count", "llama.attention.head_count"},
    {M_NO_FFN, "missing feed_forward_length", "llama.feed_forward_length"},
    {M_HEADS_NOT_DIVIDING, "heads do not divide dim", "head"},
    {M_EPS_STRING, "rms epsilon is a string", "llama.attention.layer_norm_rms_epsilon"},
    {M_NO_EMBD, "missing token_embd", "token_embd.weight"},
    {M_NO_NORM, "missing output_norm", "output_norm.weight"},
    {M_NO_FFN_DOWN, "missing blk.1.ffn_down", "blk.1.ffn_down.weight"},
    {M_BAD_K_SHAPE, "attn_k shape", "blk.1.attn_k.weight"},
    {M_BAD_TYPE, "unsupported tensor type", "blk.0.ffn_down.weight"},
    {M_BAD_NORM_SHAPE, "norm shape", "blk.1.attn_norm.weight"},
};

static void test_model_requirements(void **state)
{
    (void)state;
    char path[600], err[512];
    char *dir = tu_tmpfile("m.gguf", path, sizeof path);

    /* The unmodified file loads: the cases below fail for their one reason. */
    write_model(path, M_NONE);
    struct gguf *g;
    struct model *m;
    if (gguf_open(&g, path, err, sizeof err)) fail_msg("%s", err);
    if (model_open(&m, g, err, sizeof err)) fail_msg("baseline model rejected: %s", err);
    model_close(m);
    gguf_close(g);

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        write_model(path, cases[i].m);
        if (gguf_open(&g, path, err, sizeof err))
            fail_msg("case '%s': the reader rejected a valid GGUF file: %s", cases[i].name, err);
        err[0] = 0;
        m = NULL;
        int rc = model_open(&m, g, err, sizeof err);
        if (rc == 0) {
            model_close(m);
            gguf_close(g);
            fail_msg("case '%s': model_open accepted it", cases[i].name);
        }
        if (!strstr(err, cases[i].expect))
            fail_msg("case '%s': error \"%s\" does not mention \"%s\"", cases[i].name, err,
                     cases[i].expect);
        gguf_close(g);
    }
    tu_rmtree(dir);
}

TU_MAIN(
    cmocka_unit_test(test_model_requirements))
