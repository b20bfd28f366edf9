/* app/model: struct dec_weights from a GGUF (see model.h). */
#include "app/model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/gguf.h"
#include "gpu/quant.h"

#define SAME_TYPE(t) ((int)QT_##t == (int)GGUF_T_##t)
_Static_assert(SAME_TYPE(F32) && SAME_TYPE(F16) && SAME_TYPE(BF16) && SAME_TYPE(Q4_0) &&
                   SAME_TYPE(Q8_0) && SAME_TYPE(Q4_K) && SAME_TYPE(Q5_K) && SAME_TYPE(Q6_K) &&
                   SAME_TYPE(Q4_1) && SAME_TYPE(Q5_0) && SAME_TYPE(Q5_1) && SAME_TYPE(Q2_K) &&
                   SAME_TYPE(Q3_K) && SAME_TYPE(IQ4_NL) && SAME_TYPE(IQ4_XS),
               "gpu/quant.h QT_* follow core/gguf.h GGUF_T_*");
#undef SAME_TYPE

static int get_u32(const struct gguf *g, const char *suffix, int required, uint32_t def,
                   uint32_t *out, char *err, size_t errlen)
{
    char key[128];
    gguf_arch_key(g, suffix, key, sizeof key);
    int r = gguf_get_u32(g, key, out);
    if (r == 0) return 0;
    if (r == -1 && !required) {
        *out = def;
        return 0;
    }
    snprintf(err, errlen, r == -1 ? "missing metadata key %s" : "metadata key %s has the wrong type", key);
    return -1;
}

static int get_f32(const struct gguf *g, const char *suffix, float def, float *out, char *err,
                   size_t errlen)
{
    char key[128];
    gguf_arch_key(g, suffix, key, sizeof key);
    int r = gguf_get_f32(g, key, out);
    if (r == 0) return 0;
    if (r == -1) {
        *out = def;
        return 0;
    }
    snprintf(err, errlen, "metadata key %s has the wrong type", key);
    return -1;
}

/* Finds a tensor, checks its shape (ne0 x ne1; ne1 = 1 for vectors) and that the type is
 * one the decoder multiplies (vectors: F32 only). */
static int want(const struct gguf *g, const char *name, int64_t ne0, int64_t ne1, int vector,
                int optional, struct dec_tensor *t, char *err, size_t errlen)
{
    const struct gguf_tensor *gt = gguf_tensor(g, name);
    memset(t, 0, sizeof *t);
    if (!gt) {
        if (optional) return 1;
        snprintf(err, errlen, "missing tensor %s", name);
        return -1;
    }
    uint64_t n2 = gt->ne[2], n3 = gt->ne[3];
    if ((int64_t)gt->ne[0] != ne0 || (int64_t)gt->ne[1] != ne1 || n2 != 1 || n3 != 1) {
        snprintf(err, errlen,
                 "tensor %s has shape [%llu, %llu, %llu, %llu], expected [%lld, %lld]", name,
                 (unsigned long long)gt->ne[0], (unsigned long long)gt->ne[1],
                 (unsigned long long)n2, (unsigned long long)n3, (long long)ne0, (long long)ne1);
        return -1;
    }
    if (vector ? gt->type != GGUF_T_F32 : !qt_supported((int)gt->type)) {
        snprintf(err, errlen, "tensor %s has type %s, which this decoder does not support%s",
                 name, gguf_type_name(gt->type),
                 vector ? " (norm weights must be F32)"
                        : " (supported: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K Q5_K"
                          " Q6_K IQ4_NL IQ4_XS)");
        return -1;
    }
    if (ne0 % (int64_t)qt_block_elems((int)gt->type) != 0) {
        snprintf(err, errlen, "tensor %s: row length %lld is not a multiple of the %s block",
                 name, (long long)ne0, qt_name((int)gt->type));
        return -1;
    }
    if ((uintptr_t)gt->data % 4 != 0) {
        /* GGUF aligns tensor data to general.alignment (32 by default); the kernels read
         * F32 vectors and half-precision scales in place, so at least 4 is needed. */
        snprintf(err, errlen, "tensor %s: data is not 4-byte aligned (general.alignment too small)",
                 name);
        return -1;
    }
    t->data = gt->data;
    t->type = (int)gt->type;
    t->rows = ne1;
    t->cols = ne0;
    return 0;
}

static uint64_t tbytes(const struct dec_tensor *t)
{
    return (uint64_t)t->rows * qt_row_bytes(t->type, (size_t)t->cols);
}

int model_open(struct model **out, const struct gguf *g, char *err, size_t errlen)
{
    *out = NULL;
    struct gguf_str arch;
    if (gguf_get_str(g, "general.architecture", &arch) != 0) {
        snprintf(err, errlen, "missing metadata key general.architecture");
        return -1;
    }
    if (arch.len != 5 || memcmp(arch.ptr, "llama", 5) != 0) {
        snprintf(err, errlen, "architecture '%.*s' is not supported (only llama)",
                 (int)(arch.len > 64 ? 64 : arch.len), arch.ptr);
        return -1;
    }
    struct model *m = calloc(1, sizeof *m);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    struct dec_config *c = &m->w.cfg;
    uint32_t dim, nl, ffn, nh, nkv, ctx, kl, rd;
    if (get_u32(g, "embedding_length", 1, 0, &dim, err, errlen) ||
        get_u32(g, "block_count", 1, 0, &nl, err, errlen) ||
        get_u32(g, "feed_forward_length", 1, 0, &ffn, err, errlen) ||
        get_u32(g, "attention.head_count", 1, 0, &nh, err, errlen) ||
        get_u32(g, "attention.head_count_kv", 0, nh, &nkv, err, errlen) ||
        get_u32(g, "context_length", 0, 2048, &ctx, err, errlen) ||
        get_f32(g, "attention.layer_norm_rms_epsilon", 1e-5f, &c->norm_eps, err, errlen) ||
        get_f32(g, "rope.freq_base", 10000.0f, &c->rope_base, err, errlen))
        goto fail;
    if (dim == 0 || dim > 65536 || nl == 0 || nl > 1024 || ffn == 0 || ffn > 1 << 20 || nh == 0 ||
        nh > 1024 || nkv == 0 || nkv > nh || nh % nkv != 0 || ctx == 0) {
        snprintf(err, errlen,
                 "implausible llama shape: dim %u, layers %u, ffn %u, heads %u, kv heads %u, ctx %u",
                 dim, nl, ffn, nh, nkv, ctx);
        goto fail;
    }
    if (get_u32(g, "attention.key_length", 0, 0, &kl, err, errlen)) goto fail;
    if (kl == 0) {
        if (dim % nh != 0) {
            snprintf(err, errlen, "embedding_length %u is not a multiple of head_count %u", dim, nh);
            goto fail;
        }
        kl = dim / nh;
    }
    if (kl % 2 != 0 || kl > 1024) {
        snprintf(err, errlen, "head size %u must be even and at most 1024", kl);
        goto fail;
    }
    uint32_t vl;
    if (get_u32(g, "attention.value_length", 0, kl, &vl, err, errlen)) goto fail;
    if (vl != kl) {
        snprintf(err, errlen, "attention.value_length %u differs from key_length %u", vl, kl);
        goto fail;
    }
    if (get_u32(g, "rope.dimension_count", 0, kl, &rd, err, errlen)) goto fail;
    if (rd != kl) {
        snprintf(err, errlen, "rope.dimension_count %u differs from the head size %u (partial "
                 "rotary embeddings are not supported)", rd, kl);
        goto fail;
    }
    {
        char key[128];
        struct gguf_str st;
        float factor = 1.0f;
        gguf_arch_key(g, "rope.scaling.type", key, sizeof key);
        int has_type = gguf_get_str(g, key, &st) == 0;
        if (get_f32(g, "rope.scaling.factor", 1.0f, &factor, err, errlen)) goto fail;
        if (has_type && !(st.len == 4 && !memcmp(st.ptr, "none", 4)) && factor != 1.0f &&
            factor != 0.0f) {
            snprintf(err, errlen, "rope scaling '%.*s' (factor %g) is not supported",
                     (int)(st.len > 32 ? 32 : st.len), st.ptr, (double)factor);
            goto fail;
        }
    }
    c->dim = (int)dim;
    c->n_layers = (int)nl;
    c->n_heads = (int)nh;
    c->n_kv_heads = (int)nkv;
    c->head_dim = (int)kl;
    c->ffn_dim = (int)ffn;
    c->ctx_train = ctx > (1u << 24) ? (1 << 24) : (int)ctx;

    const struct gguf_tensor *te = gguf_tensor(g, "token_embd.weight");
    if (!te) {
        snprintf(err, errlen, "missing tensor token_embd.weight");
        goto fail;
    }
    if (te->ne[1] == 0 || te->ne[1] > (1u << 24)) {
        snprintf(err, errlen, "token_embd.weight: implausible vocabulary size %llu",
                 (unsigned long long)te->ne[1]);
        goto fail;
    }
    c->vocab = (int)te->ne[1];
    if (want(g, "token_embd.weight", dim, c->vocab, 0, 0, &m->embd, err, errlen)) goto fail;
    if (want(g, "output_norm.weight", dim, 1, 1, 0, &m->w.out_norm, err, errlen)) goto fail;
    int r = want(g, "output.weight", dim, c->vocab, 0, 1, &m->w.output, err, errlen);
    if (r < 0) goto fail;
    if (r == 1) {
        m->w.output = m->embd;
        m->tied = 1;
    }
    struct dec_tensor rf;
    r = want(g, "rope_freqs.weight", kl / 2, 1, 1, 1, &rf, err, errlen);
    if (r < 0) goto fail;
    c->rope_freqs = r == 0 ? (const float *)rf.data : NULL;

    m->w.layers = calloc(nl, sizeof *m->w.layers);
    if (!m->w.layers) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    int64_t qd = (int64_t)nh * kl, kvd = (int64_t)nkv * kl;
    m->weight_bytes = tbytes(&m->w.output);
    for (uint32_t l = 0; l < nl; l++) {
        struct dec_layer *L = &m->w.layers[l];
        char nm[96];
#define W(field, suffix, ne0, ne1, vec)                                              \
        snprintf(nm, sizeof nm, "blk.%u." suffix ".weight", l);                      \
        if (want(g, nm, ne0, ne1, vec, 0, &L->field, err, errlen)) goto fail;
        W(attn_norm, "attn_norm", dim, 1, 1)
        W(wq, "attn_q", dim, qd, 0)
        W(wk, "attn_k", dim, kvd, 0)
        W(wv, "attn_v", dim, kvd, 0)
        W(wo, "attn_output", qd, dim, 0)
        W(ffn_norm, "ffn_norm", dim, 1, 1)
        W(w_gate, "ffn_gate", dim, ffn, 0)
        W(w_up, "ffn_up", dim, ffn, 0)
        W(w_down, "ffn_down", ffn, dim, 0)
#undef W
        m->weight_bytes += tbytes(&L->wq) + tbytes(&L->wk) + tbytes(&L->wv) + tbytes(&L->wo) +
                           tbytes(&L->w_gate) + tbytes(&L->w_up) + tbytes(&L->w_down);
    }
    struct gguf_str nmv;
    if (gguf_get_str(g, "general.name", &nmv) == 0)
        snprintf(m->name, sizeof m->name, "%.*s", (int)(nmv.len > 127 ? 127 : nmv.len), nmv.ptr);
    *out = m;
    return 0;
fail:
    model_close(m);
    return -1;
}

void model_close(struct model *m)
{
    if (!m) return;
    free(m->w.layers);
    free(m);
}

int model_embed_token(const struct model *m, int32_t id, float *out, char *err, size_t errlen)
{
    if (id < 0 || id >= m->w.cfg.vocab) {
        snprintf(err, errlen, "token id %d outside the vocabulary (0..%d)", id, m->w.cfg.vocab - 1);
        return -1;
    }
    size_t rb = qt_row_bytes(m->embd.type, (size_t)m->embd.cols);
    qt_dequant_row(m->embd.type, (const unsigned char *)m->embd.data + (size_t)id * rb, out,
                   (size_t)m->embd.cols);
    return 0;
}
