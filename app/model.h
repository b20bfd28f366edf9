/* app/model: the decoder's weights (struct dec_weights) built from a GGUF file.
 *
 * Reads the llama.* metadata (shapes, head counts, RMS epsilon, rope.freq_base, Llama 3.1
 * rope_freqs factors), checks every tensor's shape and type against it, and points the
 * decoder's tensors into the mapping (no copy). A model without output.weight has tied
 * embeddings: the output projection is token_embd.
 *
 * model_embed_token is the engine's own embedding lookup (app/ may read token_embd directly);
 * the confidential core replaces it with core_embed_token / core_encode. */
#ifndef CMIF_APP_MODEL_H
#define CMIF_APP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "gpu/decoder.h"

struct gguf;

struct model {
    struct dec_weights w;       /* what dec_open takes */
    struct dec_tensor embd;     /* token_embd (vocab rows of dim) */
    int tied;                   /* output is token_embd */
    char name[128];             /* general.name, or "" */
    uint64_t weight_bytes;      /* bytes of the matrices read per decoded token */
};

/* Builds the weights of a Llama-architecture model. 0, or -1 with err naming the key or
 * tensor that is missing or does not fit. The gguf must outlive the model. */
int model_open(struct model **out, const struct gguf *g, char *err, size_t errlen);
void model_close(struct model *m);

/* Dequantizes row `id` of token_embd into out[dim]. */
int model_embed_token(const struct model *m, int32_t id, float *out, char *err, size_t errlen);

#endif
