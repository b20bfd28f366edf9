/* tests/tools/randmodel: random-weight Llama GGUF models of any shape and weight type,
 * for tests and benchmarks (big models are generated at test time, never committed). */
#ifndef CMIF_TESTS_RANDMODEL_H
#define CMIF_TESTS_RANDMODEL_H

#include <stddef.h>
#include <stdint.h>

struct randmodel_spec {
    int dim, n_layers, n_heads, n_kv_heads, ffn_dim, vocab, ctx;
    int type;                 /* weight type of the 2-D matrices (enum gguf_ttype) */
    int embd_type;            /* token_embd type; -1 = same as type */
    int tied;                 /* no output.weight: the output projection is token_embd */
    float rope_base;          /* 0 = 10000 */
    uint64_t seed;
    const char *tokenizer_from;  /* copy tokenizer.* from this GGUF; NULL = synthetic SPM vocab */
    /* With tokenizer_from, a vocab larger than the copied one appends control tokens up to
     * vocab (as Mistral v0.3 extends the SentencePiece vocabulary to 32,768): add_tokens
     * first, then "[control_N]" for the N-th appended token (1-based). */
    const char *const *add_tokens;
    int n_add_tokens;
    const char *chat_template;   /* tokenizer.chat_template to write; NULL = none (or the copy) */
    /* >= 0: this token's row of the output projection is scaled up (x100), so its logit,
     * of random sign, is the largest about every other step: the model soon picks it (an
     * end-of-generation test). -1 = none. */
    int boost_token;
    int no_add_bos;              /* synthetic vocabulary: tokenizer.ggml.add_bos_token false */
};

void randmodel_defaults(struct randmodel_spec *s);   /* a tiny model: dim 64, 2 layers, ... */
int randmodel_write(const char *path, const struct randmodel_spec *s, char *err, size_t errlen);

#endif
