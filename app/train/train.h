/* app/train/train: trains a small Llama model in F32 on the CPU (for `cmif train`).
 *
 * Forward and backward passes for every block the engine runs (embedding, RMSNorm, RoPE
 * in the GGUF "normal" adjacent-pair layout, grouped-query attention with a causal mask,
 * SwiGLU, tied or separate output projection, cross-entropy), AdamW with warm-up and
 * cosine decay, global gradient clipping. Matrix products go to OpenBLAS SGEMM, attention
 * runs on a gpu/pool thread pool, one task per (sequence, KV head) so every sum has a
 * fixed order: the same seed, data and thread count give bit-identical runs.
 *
 * All parameters live in one array (p) in a fixed tensor order, with their gradients (g)
 * and Adam moments (m, v) beside it; train_tensor() names each tensor as llama.cpp does. */
#ifndef CMIF_APP_TRAIN_TRAIN_H
#define CMIF_APP_TRAIN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

struct gguf_out;

struct train_config {
    int vocab, dim, n_layers, n_heads, n_kv_heads, ffn, ctx;
    int tied;              /* output projection is token_embd */
    float norm_eps, rope_base;
};

struct train_hparams {
    int batch, steps, warmup;
    float lr, min_lr_frac, beta1, beta2, adam_eps, weight_decay, clip;
};

/* One parameter tensor: rows x cols floats at p + off (ggml ne[0] = cols, ne[1] = rows). */
struct train_tensor {
    char name[48];
    size_t off;
    int rows, cols;
    int decay;             /* matrices get weight decay; norm gains do not */
};

struct train_model;

/* Allocates a model for batches of up to max_batch sequences of cfg->ctx tokens and
 * initializes its weights from seed. 0, or -1 with err naming the bad shape. */
int train_open(struct train_model **out, const struct train_config *cfg, int max_batch,
               int threads, uint64_t seed, char *err, size_t errlen);
void train_close(struct train_model *m);

const struct train_config *train_cfg(const struct train_model *m);
size_t train_n_params(const struct train_model *m);
float *train_params(struct train_model *m);
float *train_grads(struct train_model *m);
int train_n_tensors(const struct train_model *m);
const struct train_tensor *train_tensor(const struct train_model *m, int i);

/* Mean cross-entropy of predicting tok[b*(T+1) + t + 1] from tok[b*(T+1) .. + t] for
 * t < T, b < B (T <= ctx, B <= max_batch). With backward, the gradients of that mean
 * are ADDED to the gradient array (train_zero_grad clears it). NaN for a batch out of
 * those bounds or a token id outside the vocabulary. */
float train_loss(struct train_model *m, const int32_t *tok, int B, int T, int backward);
void train_zero_grad(struct train_model *m);

/* Learning rate of step (0-based) under warm-up then cosine decay to lr * min_lr_frac. */
float train_lr(const struct train_hparams *h, int step);
/* Clips the gradient to global norm h->clip (when > 0) and applies one AdamW update with
 * the learning rate of this step; returns the norm before clipping. */
float train_adamw(struct train_model *m, const struct train_hparams *h, int step);

/* The model as a llama GGUF: llama.* metadata and F32 tensors (borrowed from m: write
 * before the next update). Tokenizer metadata is the caller's. */
void train_to_gguf(const struct train_model *m, struct gguf_out *w, const char *name);

/* Checkpoint: config, weights, Adam moments, step, data-sampler RNG state and a tag the
 * caller uses to refuse resuming on other data/options. Written atomically. */
int train_save(const struct train_model *m, const char *path, int step, const uint64_t rng[4],
               uint64_t tag, char *err, size_t errlen);
/* Loads a checkpoint into m (same config required). */
int train_load(struct train_model *m, const char *path, int *step, uint64_t rng[4],
               uint64_t tag, char *err, size_t errlen);

#endif
