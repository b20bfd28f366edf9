/* gpu/decoder: the Llama decoder outside the trust boundary.
 *
 * It takes input *vectors* (embeddings the confidential core produced), never token ids,
 * and returns logits. It never holds the token_embd table for lookups; a model with tied
 * embeddings passes that matrix as `output` for the output projection only.
 * Backends (CPU: SIMD + OpenBLAS; OpenCL: CLBlast) implement the whole forward pass. */
#ifndef CMIF_GPU_DECODER_H
#define CMIF_GPU_DECODER_H

#include <stddef.h>
#include <stdint.h>

/* A weight matrix of `rows` rows of `cols` elements (ggml ne[1] x ne[0]), row-major, in
 * an enum qtype format; or a vector (rows == 1). data is borrowed (usually the mmap). */
struct dec_tensor {
    const void *data;
    int type;
    int64_t rows, cols;
};

struct dec_config {
    int dim, n_layers, n_heads, n_kv_heads, head_dim, ffn_dim, vocab;
    int ctx_train;
    float norm_eps;
    float rope_base;
    const float *rope_freqs;   /* Llama 3.1 per-dimension factors (head_dim/2), or NULL */
};

struct dec_layer {
    struct dec_tensor attn_norm, wq, wk, wv, wo;
    struct dec_tensor ffn_norm, w_gate, w_up, w_down;
};

struct dec_weights {
    struct dec_config cfg;
    struct dec_layer *layers;        /* cfg.n_layers entries */
    struct dec_tensor out_norm, output;
};

enum dec_device { DEC_DEV_AUTO = 0, DEC_DEV_CPU = 1, DEC_DEV_CL = 2 };

struct dec_options {
    int ctx;              /* context length (KV cache positions); 0 = min(ctx_train, 4096) */
    int threads;          /* 0 = all cores */
    int device;           /* enum dec_device */
    int cl_index;         /* OpenCL device index for DEC_DEV_CL, -1 = first usable */
    size_t cl_mem_cap;    /* tests: pretend the device has at most this many bytes (0 = real) */
    int prefaulted;       /* the caller maps the weights in itself (dec_prefault): dec_open
                             starts no thread of its own for it */
    int weights_mapped;   /* the weights are a read-only file mapping: the CPU backend drops
                             its pages of the tensors it repacks (the file keeps them) */
};

struct decoder;

int dec_open(struct decoder **out, const struct dec_weights *w, const struct dec_options *o,
             char *err, size_t errlen);
/* For DEC_DEV_AUTO: starts looking for a GPU now, in the background, so that the search
 * overlaps the caller's other start-up work; dec_open uses its answer. Other devices: nothing. */
void dec_prepare(int device);
void dec_close(struct decoder *d);

/* The weights' pages mapped in ahead of the first forward pass, on a thread of its own, in
 * the order that pass reads them (a warm start otherwise takes a page fault every few pages
 * of weights inside the first prompt, and either backend reads them all). dec_open starts it
 * itself; a caller that has the weights before it can open the decoder (while the device
 * search runs) starts it with dec_prefault, sets dec_options.prefaulted, and ends it with
 * dec_prefault_end before the weights go. Best effort: NULL when no thread could start. */
struct dec_prefault;
struct dec_prefault *dec_prefault(const struct dec_weights *w);
void dec_prefault_end(struct dec_prefault *p);   /* waits for the thread; NULL: nothing */

/* Run n input vectors (n x dim floats) at positions pos .. pos+n-1, writing the logits
 * of the last one (vocab floats) to logits, or of all n (n x vocab) when all_logits.
 * Positions past pos+n-1 in the KV cache are simply overwritten later, so rewinding is
 * calling with a smaller pos. 0 on success, -1 with err set (e.g. pos+n > ctx). */
int dec_forward(struct decoder *d, const float *x, int n, int pos, float *logits,
                int all_logits, char *err, size_t errlen);

/* Context shift: drops cache positions [keep, keep+n_discard) of the n_past filled ones and
 * moves the rest down by n_discard, re-rotating their cached keys by -n_discard with the
 * model's RoPE (as llama.cpp's K-shift), so decoding continues at n_past - n_discard
 * without running the kept tokens again. The result matches a fresh decode of the kept
 * tokens at contiguous positions up to float rounding. 0, or -1 with err set. */
int dec_shift(struct decoder *d, int keep, int n_discard, int n_past, char *err, size_t errlen);

int dec_ctx(const struct decoder *d);
const struct dec_config *dec_config(const struct decoder *d);
/* Human-readable backend and device, e.g. "cpu (avx512, 2 threads)" or "opencl: pthread-…". */
const char *dec_device_name(const struct decoder *d);
/* Message explaining a fallback (e.g. OpenCL out of memory → CPU), or NULL. */
const char *dec_fallback_note(const struct decoder *d);

/* Test hook: called with every input vector batch before it reaches the backend, so a
 * test can prove what crosses the boundary. NULL to remove. */
typedef void (*dec_input_hook)(void *ctx, const float *x, int n, int dim);
void dec_set_input_hook(struct decoder *d, dec_input_hook fn, void *ctx);

#endif
