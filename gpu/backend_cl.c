/* gpu/backend_cl: the Llama forward pass on an OpenCL device, with CLBlast for prompts.
 *
 * One context and one in-order queue per opened device. Weights are uploaded once at open
 * and stay resident in their own block format; the KV cache lives on the device. A step
 * writes only the input vectors (embeddings) into the residual buffer and reads back only
 * logits. Single tokens run our own fused dequantize+matvec kernels; batches of tokens
 * expand weight tiles to F32 in a scratch buffer and multiply with CLBlastSgemm.
 * Every OpenCL/CLBlast status is checked and reported with the call that failed. */
#include "gpu/backend.h"
#include "gpu/cl_util.h" /* before clblast_c.h: fixes the OpenCL target version */

#include <clblast_c.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/quant.h"

extern const struct cl_kernel_src {
    const char *name;
    const char *src;
} cl_kernel_srcs[];

#define CL_BATCH 64                    /* tokens per prompt chunk */
#define DEQ_BUDGET ((size_t)32 << 20)  /* bytes of F32 scratch for dequantized tiles */
#define ATT_BUDGET ((size_t)64 << 20)  /* bytes of attention-score scratch */

enum {
    KT_F32, KT_F16, KT_BF16, KT_Q4_0, KT_Q8_0, KT_Q4_K, KT_Q5_K, KT_Q6_K,
    KT_Q4_1, KT_Q5_0, KT_Q5_1, KT_Q2_K, KT_Q3_K, KT_IQ4_NL, KT_IQ4_XS, KT_N
};
static const char *const kt_suffix[KT_N] = {"f32",  "f16",  "bf16", "q4_0", "q8_0",   "q4_k",  "q5_k", "q6_k",
                                            "q4_1", "q5_0", "q5_1", "q2_k", "q3_k", "iq4_nl", "iq4_xs"};
/* gpu/quant's type of each kernel set */
static const int qt_of_kt[KT_N] = {QT_F32,  QT_F16,  QT_BF16, QT_Q4_0, QT_Q8_0,   QT_Q4_K,  QT_Q5_K, QT_Q6_K,
                                   QT_Q4_1, QT_Q5_0, QT_Q5_1, QT_Q2_K, QT_Q3_K, QT_IQ4_NL, QT_IQ4_XS};

static int kt_of(int qtype)
{
    for (int k = 0; k < KT_N; k++)
        if (qt_of_kt[k] == qtype) return k;
    return -1;
}

struct clw {
    cl_mem buf;
    int kt;
    int rows, cols;
};

struct cl_layer {
    cl_mem attn_norm, ffn_norm, kc, vc;
    struct clw wq, wk, wv, wo, w_gate, w_up, w_down;
};

struct backend_cl {
    struct clu_dev dev;
    cl_context ctx;
    cl_command_queue q;
    cl_program prog;
    cl_kernel k_mv[KT_N], k_dq[KT_N];
    cl_kernel k_rmsnorm, k_rope, k_att, k_swiglu, k_shift;
    size_t mv_ls, norm_ls, att_ls;
    struct dec_config cfg;
    int ctx_len, batch;
    int att_rows;                      /* tokens whose scores fit the score scratch at once */
    struct cl_layer *layers;
    cl_mem out_norm, freqs;
    struct clw output;
    cl_mem h, xb, qb, kb, vb, ab, gb, ub, sc, logits, deq;
    size_t deq_bytes;
    size_t mem_used, mem_cap;
    char name[320];
};

/* --- small helpers ----------------------------------------------------------------- */

#define CK(call, what)                                                                      \
    do {                                                                                    \
        cl_int st_ = (call);                                                                \
        if (st_ != CL_SUCCESS) {                                                            \
            snprintf(err, errlen, "opencl: %s: %s", what, clu_status_name(st_));           \
            return -1;                                                                      \
        }                                                                                   \
    } while (0)

static int alloc_buf(struct backend_cl *b, cl_mem *out, size_t bytes, const char *what,
                     char *err, size_t errlen)
{
    cl_int st;
    if (bytes == 0) bytes = 4;
    if (b->mem_cap && b->mem_used + bytes > b->mem_cap) {
        snprintf(err, errlen,
                 "opencl: device out of memory: %s needs %zu bytes, %zu of the %zu-byte cap "
                 "in use (CL_MEM_OBJECT_ALLOCATION_FAILURE)",
                 what, bytes, b->mem_used, b->mem_cap);
        return -1;
    }
    if (bytes > b->dev.max_alloc) {
        snprintf(err, errlen,
                 "opencl: device out of memory: %s needs %zu bytes, the device allows at most "
                 "%llu per buffer",
                 what, bytes, (unsigned long long)b->dev.max_alloc);
        return -1;
    }
    *out = clCreateBuffer(b->ctx, CL_MEM_READ_WRITE, bytes, NULL, &st);
    if (!*out || st != CL_SUCCESS) {
        *out = NULL;
        snprintf(err, errlen, "opencl: clCreateBuffer(%s, %zu bytes): %s%s", what, bytes,
                 clu_status_name(st), clu_is_oom(st) ? " (device out of memory)" : "");
        return -1;
    }
    b->mem_used += bytes;
    return 0;
}

static size_t tensor_bytes(const struct dec_tensor *t)
{
    return (size_t)t->rows * qt_row_bytes(t->type, (size_t)t->cols);
}

static int upload_weight(struct backend_cl *b, struct clw *w, const struct dec_tensor *t,
                         const char *what, char *err, size_t errlen)
{
    w->kt = kt_of(t->type);
    if (w->kt < 0) {
        snprintf(err, errlen, "opencl: %s has a weight type (%d) without OpenCL kernels", what,
                 t->type);
        return -1;
    }
    if (w->kt >= KT_Q4_0 && t->cols % 32 != 0) {
        snprintf(err, errlen, "opencl: %s row length %lld is not a multiple of 32", what,
                 (long long)t->cols);
        return -1;
    }
    w->rows = (int)t->rows;
    w->cols = (int)t->cols;
    size_t n = tensor_bytes(t);
    if (alloc_buf(b, &w->buf, n, what, err, errlen)) return -1;
    CK(clu_write(b->q, w->buf, 0, n, t->data, CLU_W_WEIGHTS, 1), "clEnqueueWriteBuffer(weights)");
    return 0;
}

static int upload_vec(struct backend_cl *b, cl_mem *out, const struct dec_tensor *t, int n,
                      const char *what, char *err, size_t errlen)
{
    if (t->type != QT_F32 || t->rows * t->cols != n) {
        snprintf(err, errlen, "opencl: %s must be an F32 vector of %d", what, n);
        return -1;
    }
    if (alloc_buf(b, out, (size_t)n * 4, what, err, errlen)) return -1;
    CK(clu_write(b->q, *out, 0, (size_t)n * 4, t->data, CLU_W_WEIGHTS, 1),
       "clEnqueueWriteBuffer(norm weights)");
    return 0;
}

static void release_mem(cl_mem *m)
{
    if (*m) clReleaseMemObject(*m);
    *m = NULL;
}

static void cl_close(void *state)
{
    struct backend_cl *b = state;
    if (!b) return;
    if (b->q) clFinish(b->q);
    if (b->layers) {
        for (int l = 0; l < b->cfg.n_layers; l++) {
            struct cl_layer *L = &b->layers[l];
            release_mem(&L->attn_norm);
            release_mem(&L->ffn_norm);
            release_mem(&L->kc);
            release_mem(&L->vc);
            struct clw *ws[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up, &L->w_down};
            for (size_t i = 0; i < sizeof ws / sizeof ws[0]; i++) release_mem(&ws[i]->buf);
        }
        free(b->layers);
    }
    cl_mem *bufs[] = {&b->out_norm, &b->freqs, &b->output.buf, &b->h, &b->xb, &b->qb, &b->kb,
                      &b->vb, &b->ab, &b->gb, &b->ub, &b->sc, &b->logits, &b->deq};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) release_mem(bufs[i]);
    for (int i = 0; i < KT_N; i++) {
        if (b->k_mv[i]) clReleaseKernel(b->k_mv[i]);
        if (b->k_dq[i]) clReleaseKernel(b->k_dq[i]);
    }
    cl_kernel ks[] = {b->k_rmsnorm, b->k_rope, b->k_att, b->k_swiglu, b->k_shift};
    for (size_t i = 0; i < sizeof ks / sizeof ks[0]; i++)
        if (ks[i]) clReleaseKernel(ks[i]);
    if (b->prog) clReleaseProgram(b->prog);
    if (b->q) clReleaseCommandQueue(b->q);
    if (b->ctx) clReleaseContext(b->ctx);
    free(b);
}

/* The kernel sources, common.cl first, concatenated in one program. */
static char *program_source(char *err, size_t errlen)
{
    size_t total = 1;
    for (const struct cl_kernel_src *s = cl_kernel_srcs; s->name; s++) total += strlen(s->src) + 1;
    char *src = malloc(total);
    if (!src) {
        snprintf(err, errlen, "opencl: out of memory for kernel sources");
        return NULL;
    }
    src[0] = 0;
    int have_common = 0;
    for (const struct cl_kernel_src *s = cl_kernel_srcs; s->name; s++)
        if (strcmp(s->name, "common") == 0) {
            strcat(src, s->src);
            strcat(src, "\n");
            have_common = 1;
        }
    if (!have_common) {
        free(src);
        snprintf(err, errlen, "opencl: embedded kernels lack common.cl");
        return NULL;
    }
    for (const struct cl_kernel_src *s = cl_kernel_srcs; s->name; s++)
        if (strcmp(s->name, "common") != 0) {
            strcat(src, s->src);
            strcat(src, "\n");
        }
    return src;
}

static size_t pow2_le(size_t v, size_t cap)
{
    size_t p = 1;
    while (p * 2 <= v && p * 2 <= cap) p *= 2;
    return p;
}

static int make_kernel(struct backend_cl *b, cl_kernel *k, const char *name, char *err,
                       size_t errlen)
{
    cl_int st;
    *k = clCreateKernel(b->prog, name, &st);
    if (!*k || st != CL_SUCCESS) {
        *k = NULL;
        snprintf(err, errlen, "opencl: clCreateKernel(%s): %s", name, clu_status_name(st));
        return -1;
    }
    return 0;
}

static int build(struct backend_cl *b, char *err, size_t errlen)
{
    size_t maxwg = 0;
    CK(clGetDeviceInfo(b->dev.device, CL_DEVICE_MAX_WORK_GROUP_SIZE, sizeof maxwg, &maxwg, NULL),
       "clGetDeviceInfo(CL_DEVICE_MAX_WORK_GROUP_SIZE)");
    /* GPUs want wide groups for coalescing; on CPU devices (PoCL) a group runs as a loop on
     * one core, so narrow groups cost less in barriers, and a matvec group of one item (a
     * row per item, SIMD from the kernels' vector types) measured fastest on PoCL. */
    int gpu = (b->dev.type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) != 0;
    if (clu_forced_layout() >= 0) gpu = clu_forced_layout();
    b->mv_ls = pow2_le(maxwg, gpu ? 64 : 1);
    b->norm_ls = pow2_le(maxwg, gpu ? 256 : 16);
    b->att_ls = pow2_le(maxwg, gpu ? 64 : 16);
    /* The kernels take the block sizes from gpu/quant's type table. */
    char opts[640];
    int o = snprintf(opts, sizeof opts, "-cl-std=CL1.2 -DMV_LS=%zu -DNORM_LS=%zu -DATT_LS=%zu%s",
                     b->mv_ls, b->norm_ls, b->att_ls, gpu ? "" : " -DMV_KBLOCK=1");
    for (int k = KT_Q4_0; k < KT_N && o > 0 && (size_t)o < sizeof opts; k++) {
        char up[16];
        size_t i = 0;
        for (; kt_suffix[k][i] && i + 1 < sizeof up; i++) up[i] = (char)toupper((unsigned char)kt_suffix[k][i]);
        up[i] = 0;   /* "q4_k" -> BLK_Q4_K, the block size in bytes */
        o += snprintf(opts + o, sizeof opts - (size_t)o, " -DBLK_%s=%zu", up, qt_block_bytes(qt_of_kt[k]));
    }
    char *src = program_source(err, errlen);
    if (!src) return -1;
    int cached = 0;
    int r = clu_build(b->ctx, &b->dev, src, opts, &b->prog, &cached, err, errlen);
    free(src);
    if (r) return -1;
    for (int i = 0; i < KT_N; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "mv_%s", kt_suffix[i]);
        if (make_kernel(b, &b->k_mv[i], nm, err, errlen)) return -1;
        if (i == KT_F32) continue; /* F32 weights go to SGEMM as they are */
        snprintf(nm, sizeof nm, "dq_%s", kt_suffix[i]);
        if (make_kernel(b, &b->k_dq[i], nm, err, errlen)) return -1;
    }
    if (make_kernel(b, &b->k_rmsnorm, "rmsnorm", err, errlen) ||
        make_kernel(b, &b->k_rope, "rope_kv", err, errlen) ||
        make_kernel(b, &b->k_att, "attention", err, errlen) ||
        make_kernel(b, &b->k_swiglu, "swiglu", err, errlen) ||
        make_kernel(b, &b->k_shift, "kv_shift", err, errlen))
        return -1;
    return 0;
}

/* CLBlast has no tuning entry for CPU OpenCL devices such as PoCL; its GPU-shaped defaults
 * run SGEMM at ~6 GFLOP/s there. These parameters for its direct GEMM kernel (and always
 * taking the direct path) measured ~2.5-3.5x faster on PoCL for the prompt shapes used
 * here. Returns 0, or the CLBlast status of the override that failed. */
static int blast_tune_cpu(cl_device_id dev)
{
    const char *rn[] = {"XGEMM_MIN_INDIRECT_SIZE"};
    const size_t rv[] = {100000};
    const char *dn[] = {"WGD", "MDIMCD", "NDIMCD", "MDIMAD", "NDIMBD",
                        "KWID", "VWMD", "VWND", "PADA", "PADB"};
    const size_t dv[] = {64, 8, 8, 8, 8, 16, 8, 8, 0, 0};
    CLBlastStatusCode s = CLBlastOverrideParameters(dev, "GemmRoutine", CLBlastPrecisionSingle,
                                                    1, rn, rv);
    if (s == CLBlastSuccess)
        s = CLBlastOverrideParameters(dev, "XgemmDirect", CLBlastPrecisionSingle, 10, dn, dv);
    return (int)s;
}

static int pick_device(struct clu_dev *out, const struct dec_options *o, char *err,
                       size_t errlen)
{
    struct clu_dev *devs;
    int n;
    if (clu_devices(&devs, &n, err, errlen)) return -1;
    int idx = o ? o->cl_index : -1;
    int r = -1;
    if (n == 0) {
        snprintf(err, errlen, "no OpenCL devices on any platform");
    } else if (idx >= n) {
        snprintf(err, errlen, "OpenCL device %d does not exist (%d device%s: 0..%d)", idx, n,
                 n == 1 ? "" : "s", n - 1);
    } else if (idx >= 0) {
        if (!devs[idx].usable)
            snprintf(err, errlen, "OpenCL device %d (%s) is not usable: %s", idx, devs[idx].name,
                     devs[idx].why);
        else {
            *out = devs[idx];
            r = 0;
        }
    } else {
        /* First usable device; with --device auto only a GPU qualifies. */
        int gpu_only = o && o->device == DEC_DEV_AUTO;
        for (int i = 0; i < n && r; i++)
            if (devs[i].usable && (!gpu_only || (devs[i].type & (CL_DEVICE_TYPE_GPU |
                                                                  CL_DEVICE_TYPE_ACCELERATOR)))) {
                *out = devs[i];
                r = 0;
            }
        if (r)
            snprintf(err, errlen, gpu_only ? "no usable OpenCL GPU" : "no usable OpenCL device");
    }
    clu_devices_free(devs);
    return r;
}

static int att_rows_for(const struct dec_config *c, int ctx, int batch)
{
    size_t per = (size_t)c->n_heads * (size_t)ctx * 4;
    size_t r = ATT_BUDGET / per;
    if (r < 1) r = 1;
    if (r > (size_t)batch) r = (size_t)batch;
    return (int)r;
}

static size_t plan_bytes(const struct dec_weights *w, int ctx, int batch, size_t deq)
{
    const struct dec_config *c = &w->cfg;
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    size_t t = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const struct dec_layer *L = &w->layers[l];
        t += 2 * (size_t)c->dim * 4 + 2 * (size_t)ctx * kvd * 4;
        t += tensor_bytes(&L->wq) + tensor_bytes(&L->wk) + tensor_bytes(&L->wv) +
             tensor_bytes(&L->wo) + tensor_bytes(&L->w_gate) + tensor_bytes(&L->w_up) +
             tensor_bytes(&L->w_down);
    }
    t += (size_t)c->dim * 4 + tensor_bytes(&w->output) + (size_t)(c->head_dim / 2) * 4;
    t += (size_t)batch * (2 * (size_t)c->dim + 2 * qd + 2 * kvd + 2 * (size_t)c->ffn_dim +
                          (size_t)c->vocab) * 4;
    t += (size_t)att_rows_for(c, ctx, batch) * c->n_heads * (size_t)ctx * 4 + deq;
    return t;
}

static int warm_up(struct backend_cl *b, char *err, size_t errlen);

static int cl_open(void **state, const struct dec_weights *w, const struct dec_options *o,
                   int ctx, char *err, size_t errlen)
{
    *state = NULL;
    struct backend_cl *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "opencl: out of memory");
        return -1;
    }
    if (pick_device(&b->dev, o, err, errlen)) {
        free(b);
        return -1;
    }
    const struct dec_config *c = &w->cfg;
    b->cfg = *c;
    b->cfg.rope_freqs = NULL; /* uploaded; the host pointer is not kept */
    b->ctx_len = ctx;
    b->batch = CL_BATCH;
    b->att_rows = att_rows_for(c, ctx, b->batch);
    b->mem_cap = o ? o->cl_mem_cap : 0;
    snprintf(b->name, sizeof b->name, "opencl: %s (%s, %s)", b->dev.name, b->dev.platform_name,
             clu_type_name(b->dev.type));

    /* Scratch for dequantized tiles: the largest non-F32 matrix, capped. */
    size_t deq = 0;
    for (int l = 0; l < c->n_layers; l++) {
        const struct dec_layer *L = &w->layers[l];
        const struct dec_tensor *all[] = {&L->wq, &L->wk, &L->wv, &L->wo,
                                          &L->w_gate, &L->w_up, &L->w_down, &w->output};
        for (int i = 0; i < 8; i++) {
            if (all[i]->type == QT_F32) continue;
            size_t full = (size_t)all[i]->rows * all[i]->cols * 4;
            size_t row = (size_t)all[i]->cols * 4;
            size_t want = full < DEQ_BUDGET ? full : (DEQ_BUDGET / row) * row;
            if (want < row) want = row;
            if (want > deq) deq = want;
        }
    }
    b->deq_bytes = deq;

    size_t need = plan_bytes(w, ctx, b->batch, deq);
    if (b->mem_cap && need > b->mem_cap) {
        snprintf(err, errlen,
                 "opencl: device out of memory: the model needs %.1f MiB on %s, the cap is "
                 "%.1f MiB (CL_MEM_OBJECT_ALLOCATION_FAILURE)",
                 need / 1048576.0, b->dev.name, b->mem_cap / 1048576.0);
        free(b);
        return -1;
    }
    if (need > b->dev.global_mem) {
        snprintf(err, errlen,
                 "opencl: device out of memory: the model needs %.1f MiB, %s has %.1f MiB",
                 need / 1048576.0, b->dev.name, b->dev.global_mem / 1048576.0);
        free(b);
        return -1;
    }

    cl_int st;
    b->ctx = clCreateContext(NULL, 1, &b->dev.device, NULL, NULL, &st);
    if (!b->ctx || st != CL_SUCCESS) {
        b->ctx = NULL;
        snprintf(err, errlen, "opencl: clCreateContext(%s): %s", b->dev.name, clu_status_name(st));
        goto fail;
    }
    b->q = clCreateCommandQueue(b->ctx, b->dev.device, 0, &st);
    if (!b->q || st != CL_SUCCESS) {
        b->q = NULL;
        snprintf(err, errlen, "opencl: clCreateCommandQueue: %s", clu_status_name(st));
        goto fail;
    }
    if (build(b, err, errlen)) goto fail;
    if (!(b->dev.type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR))) {
        int bs = blast_tune_cpu(b->dev.device);
        if (bs != CLBlastSuccess) {
            /* Not fatal (CLBlast's defaults still work); said in the device name. */
            size_t nl = strlen(b->name);
            snprintf(b->name + nl, sizeof b->name - nl, " [CLBlastOverrideParameters: %s]",
                     clu_blast_status_name(bs));
        }
    }

    b->layers = calloc((size_t)c->n_layers, sizeof *b->layers);
    if (!b->layers) {
        snprintf(err, errlen, "opencl: out of memory");
        goto fail;
    }
    size_t qd = (size_t)c->n_heads * c->head_dim, kvd = (size_t)c->n_kv_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        const struct dec_layer *L = &w->layers[l];
        struct cl_layer *D = &b->layers[l];
        char what[64];
#define UP(field)                                                                           \
    (snprintf(what, sizeof what, "layer %d " #field, l),                                    \
     upload_weight(b, &D->field, &L->field, what, err, errlen))
        if (UP(wq) || UP(wk) || UP(wv) || UP(wo) || UP(w_gate) || UP(w_up) || UP(w_down))
            goto fail;
#undef UP
        snprintf(what, sizeof what, "layer %d norms", l);
        if (upload_vec(b, &D->attn_norm, &L->attn_norm, c->dim, what, err, errlen) ||
            upload_vec(b, &D->ffn_norm, &L->ffn_norm, c->dim, what, err, errlen))
            goto fail;
        snprintf(what, sizeof what, "layer %d KV cache", l);
        if (alloc_buf(b, &D->kc, (size_t)ctx * kvd * 4, what, err, errlen) ||
            alloc_buf(b, &D->vc, (size_t)ctx * kvd * 4, what, err, errlen))
            goto fail;
    }
    if (upload_vec(b, &b->out_norm, &w->out_norm, c->dim, "output norm", err, errlen) ||
        upload_weight(b, &b->output, &w->output, "output", err, errlen))
        goto fail;
    {
        /* RoPE frequencies, computed as the CPU backend does so both rotate alike. */
        int hp = c->head_dim / 2;
        float *f = malloc(sizeof(float) * (size_t)hp);
        if (!f) {
            snprintf(err, errlen, "opencl: out of memory");
            goto fail;
        }
        for (int i = 0; i < hp; i++) {
            f[i] = 1.0f / powf(c->rope_base, (float)(2 * i) / (float)c->head_dim);
            if (c->rope_freqs) f[i] /= c->rope_freqs[i];
        }
        if (alloc_buf(b, &b->freqs, (size_t)hp * 4, "rope frequencies", err, errlen)) {
            free(f);
            goto fail;
        }
        st = clu_write(b->q, b->freqs, 0, (size_t)hp * 4, f, CLU_W_WEIGHTS, 1);
        free(f);
        if (st != CL_SUCCESS) {
            snprintf(err, errlen, "opencl: clEnqueueWriteBuffer(rope frequencies): %s",
                     clu_status_name(st));
            goto fail;
        }
    }
    size_t B = (size_t)b->batch;
    if (alloc_buf(b, &b->h, B * c->dim * 4, "activations", err, errlen) ||
        alloc_buf(b, &b->xb, B * (c->dim > (int)qd ? (size_t)c->dim : qd) * 4, "activations",
                  err, errlen) ||
        alloc_buf(b, &b->qb, B * qd * 4, "activations", err, errlen) ||
        alloc_buf(b, &b->kb, B * kvd * 4, "activations", err, errlen) ||
        alloc_buf(b, &b->vb, B * kvd * 4, "activations", err, errlen) ||
        alloc_buf(b, &b->ab, B * qd * 4, "activations", err, errlen) ||
        alloc_buf(b, &b->gb, B * c->ffn_dim * 4, "activations", err, errlen) ||
        alloc_buf(b, &b->ub, B * c->ffn_dim * 4, "activations", err, errlen) ||
        alloc_buf(b, &b->sc, (size_t)b->att_rows * c->n_heads * (size_t)ctx * 4,
                  "attention scores", err, errlen) ||
        alloc_buf(b, &b->logits, B * c->vocab * 4, "logits", err, errlen) ||
        alloc_buf(b, &b->deq, deq, "dequantized tiles", err, errlen))
        goto fail;
    st = clFinish(b->q);
    if (st != CL_SUCCESS) {
        snprintf(err, errlen, "opencl: clFinish(upload): %s%s", clu_status_name(st),
                 clu_is_oom(st) ? " (device out of memory)" : "");
        goto fail;
    }
    if (warm_up(b, err, errlen)) goto fail;
    *state = b;
    return 0;
fail:
    cl_close(b);
    return -1;
}

/* --- forward ------------------------------------------------------------------------ */

/* A kernel's arguments from index first on, each a value's size and address; an error
 * names the kernel (what) and the argument. */
struct karg {
    size_t size;
    const void *val;
};
#define KARG(v) {sizeof(v), &(v)}

static int set_args(cl_kernel k, const char *what, cl_uint first, const struct karg *a, size_t n,
                    char *err, size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        cl_int st = clSetKernelArg(k, first + (cl_uint)i, a[i].size, a[i].val);
        if (st != CL_SUCCESS) {
            snprintf(err, errlen, "opencl: clSetKernelArg(%s, %zu): %s", what, first + i,
                     clu_status_name(st));
            return -1;
        }
    }
    return 0;
}

#define ARGS(k, what, first, ...)                                                            \
    do {                                                                                     \
        const struct karg args_[] = {__VA_ARGS__};                                           \
        if (set_args(k, what, first, args_, sizeof args_ / sizeof args_[0], err, errlen))    \
            return -1;                                                                       \
    } while (0)

static int launch(struct backend_cl *b, cl_kernel k, const char *what, cl_uint dims,
                  const size_t *gsz, const size_t *lsz, char *err, size_t errlen)
{
    cl_int st = clEnqueueNDRangeKernel(b->q, k, dims, NULL, gsz, lsz, 0, NULL, NULL);
    if (st != CL_SUCCESS) {
        snprintf(err, errlen, "opencl: clEnqueueNDRangeKernel(%s): %s%s", what,
                 clu_status_name(st), clu_is_oom(st) ? " (device out of memory)" : "");
        return -1;
    }
    return 0;
}

static int matvec(struct backend_cl *b, const struct clw *w, cl_mem x, cl_mem y, int acc,
                  char *err, size_t errlen)
{
    cl_kernel k = b->k_mv[w->kt];
    cl_ulong off = 0;
    ARGS(k, "matvec", 0, KARG(w->buf), KARG(off), KARG(w->cols), KARG(x), KARG(y), KARG(acc));
    size_t g = (size_t)w->rows * b->mv_ls, l = b->mv_ls;
    return launch(b, k, "matvec", 1, &g, &l, err, errlen);
}

/* Y[n x rows] (+)= X[n x cols] · Wᵀ with CLBlast, expanding quantized W tile by tile. */
static int matmul(struct backend_cl *b, const struct clw *w, cl_mem x, cl_mem y, int n, int acc,
                  char *err, size_t errlen)
{
    if (n == 1) return matvec(b, w, x, y, acc, err, errlen);
    size_t cols = (size_t)w->cols, rows = (size_t)w->rows;
    size_t tile = w->kt == KT_F32 ? rows : b->deq_bytes / (cols * 4);
    if (tile == 0) tile = 1;
    if (tile > rows) tile = rows;
    for (size_t r0 = 0; r0 < rows; r0 += tile) {
        size_t nr = rows - r0 < tile ? rows - r0 : tile;
        cl_mem bm = w->buf;
        size_t boff = 0;
        if (w->kt == KT_F32) {
            boff = r0 * cols;
        } else {
            cl_kernel k = b->k_dq[w->kt];
            cl_ulong off = (cl_ulong)(r0 * qt_row_bytes(qt_of_kt[w->kt], cols));
            ARGS(k, "dequantize", 0, KARG(w->buf), KARG(off), KARG(w->cols), KARG(b->deq));
            size_t g = w->kt <= KT_BF16 ? nr * cols : nr * (cols / 32);
            if (launch(b, k, "dequantize", 1, &g, NULL, err, errlen)) return -1;
            bm = b->deq;
        }
        CLBlastStatusCode s = CLBlastSgemm(CLBlastLayoutRowMajor, CLBlastTransposeNo,
                                           CLBlastTransposeYes, (size_t)n, nr, cols, 1.0f, x, 0,
                                           cols, bm, boff, cols, acc ? 1.0f : 0.0f, y, r0, rows,
                                           &b->q, NULL);
        if (s != CLBlastSuccess) {
            snprintf(err, errlen, "opencl: CLBlastSgemm(%d x %zu x %zu): %s", n, nr, cols,
                     clu_blast_status_name(s));
            return -1;
        }
    }
    return 0;
}

static int rmsnorm(struct backend_cl *b, cl_mem x, int row0, int nrows, cl_mem wn, cl_mem y,
                   char *err, size_t errlen)
{
    cl_kernel k = b->k_rmsnorm;
    float eps = b->cfg.norm_eps;
    ARGS(k, "rmsnorm", 0, KARG(x), KARG(row0), KARG(wn), KARG(y), KARG(b->cfg.dim), KARG(eps));
    size_t g = (size_t)nrows * b->norm_ls, l = b->norm_ls;
    return launch(b, k, "rmsnorm", 1, &g, &l, err, errlen);
}

static int layer_fwd(struct backend_cl *b, struct cl_layer *L, int n, int pos, char *err,
                     size_t errlen)
{
    const struct dec_config *c = &b->cfg;
    if (rmsnorm(b, b->h, 0, n, L->attn_norm, b->xb, err, errlen) ||
        matmul(b, &L->wq, b->xb, b->qb, n, 0, err, errlen) ||
        matmul(b, &L->wk, b->xb, b->kb, n, 0, err, errlen) ||
        matmul(b, &L->wv, b->xb, b->vb, n, 0, err, errlen))
        return -1;
    cl_kernel k = b->k_rope;
    ARGS(k, "rope_kv", 0, KARG(b->qb), KARG(b->kb), KARG(b->vb), KARG(L->kc), KARG(L->vc),
         KARG(c->n_heads), KARG(c->n_kv_heads), KARG(c->head_dim), KARG(pos), KARG(b->freqs));
    int hmax = c->n_heads > c->n_kv_heads ? c->n_heads : c->n_kv_heads;
    size_t g2[2] = {(size_t)hmax * (c->head_dim / 2), (size_t)n};
    if (launch(b, k, "rope_kv", 2, g2, NULL, err, errlen)) return -1;

    k = b->k_att;
    ARGS(k, "attention", 0, KARG(b->qb), KARG(L->kc), KARG(L->vc), KARG(b->ab), KARG(b->sc),
         KARG(c->n_heads), KARG(c->n_kv_heads), KARG(c->head_dim), KARG(pos), KARG(b->ctx_len));
    for (int i0 = 0; i0 < n; i0 += b->att_rows) {
        int nt = n - i0 < b->att_rows ? n - i0 : b->att_rows;
        ARGS(k, "attention", 10, KARG(i0));
        size_t ga[2] = {(size_t)c->n_heads * b->att_ls, (size_t)nt}, la[2] = {b->att_ls, 1};
        if (launch(b, k, "attention", 2, ga, la, err, errlen)) return -1;
    }

    if (matmul(b, &L->wo, b->ab, b->h, n, 1, err, errlen) ||
        rmsnorm(b, b->h, 0, n, L->ffn_norm, b->xb, err, errlen) ||
        matmul(b, &L->w_gate, b->xb, b->gb, n, 0, err, errlen) ||
        matmul(b, &L->w_up, b->xb, b->ub, n, 0, err, errlen))
        return -1;
    k = b->k_swiglu;
    ARGS(k, "swiglu", 0, KARG(b->gb), KARG(b->ub));
    size_t gs = (size_t)n * c->ffn_dim;
    if (launch(b, k, "swiglu", 1, &gs, NULL, err, errlen)) return -1;
    return matmul(b, &L->w_down, b->gb, b->h, n, 1, err, errlen);
}

static int chunk_fwd(struct backend_cl *b, const float *x, int n, int pos, float *logits,
                     int all_logits, int last, char *err, size_t errlen)
{
    const struct dec_config *c = &b->cfg;
    if (x) {
        CK(clu_write(b->q, b->h, 0, (size_t)n * c->dim * 4, x, CLU_W_INPUT, 1),
           "clEnqueueWriteBuffer(input vectors)");
    } else {
        /* warm-up: zeros made on the device, no host data crosses */
        float zero = 0.0f;
        CK(clEnqueueFillBuffer(b->q, b->h, &zero, sizeof zero, 0, (size_t)n * c->dim * 4, 0,
                               NULL, NULL),
           "clEnqueueFillBuffer(warm-up input)");
    }
    for (int l = 0; l < c->n_layers; l++)
        if (layer_fwd(b, &b->layers[l], n, pos, err, errlen)) return -1;
    if (all_logits) {
        if (rmsnorm(b, b->h, 0, n, b->out_norm, b->xb, err, errlen) ||
            matmul(b, &b->output, b->xb, b->logits, n, 0, err, errlen))
            return -1;
        CK(clEnqueueReadBuffer(b->q, b->logits, CL_TRUE, 0, (size_t)n * c->vocab * 4, logits, 0,
                               NULL, NULL),
           "clEnqueueReadBuffer(logits)");
    } else if (last) {
        if (rmsnorm(b, b->h, n - 1, 1, b->out_norm, b->xb, err, errlen) ||
            matvec(b, &b->output, b->xb, b->logits, 0, err, errlen))
            return -1;
        CK(clEnqueueReadBuffer(b->q, b->logits, CL_TRUE, 0, (size_t)c->vocab * 4, logits, 0, NULL,
                               NULL),
           "clEnqueueReadBuffer(logits)");
    } else {
        CK(clFinish(b->q), "clFinish");
    }
    return 0;
}

/* One prompt chunk and one decode step over zero inputs at open: every buffer is touched
 * (drivers that allocate lazily report out-of-memory here, where the decoder can still fall
 * back to the CPU, not in the middle of a conversation) and every kernel, CLBlast's too, is
 * compiled before the first real token. The KV entries written are overwritten later. */
static int warm_up(struct backend_cl *b, char *err, size_t errlen)
{
    int n = b->ctx_len >= 3 && b->batch >= 2 ? 2 : 1;
    float *lg = malloc(sizeof(float) * (size_t)b->cfg.vocab);
    if (!lg) {
        snprintf(err, errlen, "opencl: out of memory");
        return -1;
    }
    int r = chunk_fwd(b, NULL, n, 0, lg, 0, 1, err, errlen);
    if (r == 0 && n == 2) r = chunk_fwd(b, NULL, 1, 2, lg, 0, 1, err, errlen);
    free(lg);
    if (r == 0) {
        cl_int st = clFinish(b->q);
        if (st != CL_SUCCESS) {
            snprintf(err, errlen, "opencl: clFinish(warm-up): %s%s", clu_status_name(st),
                     clu_is_oom(st) ? " (device out of memory)" : "");
            r = -1;
        }
    }
    return r;
}

static int cl_forward(void *state, const float *x, int n, int pos, float *logits, int all_logits,
                      char *err, size_t errlen)
{
    struct backend_cl *b = state;
    if (!x || !logits || n <= 0 || pos < 0 || pos > b->ctx_len || n > b->ctx_len - pos) {
        snprintf(err, errlen, "opencl: positions %d..%d outside the context of %d", pos,
                 pos + n - 1, b->ctx_len);
        return -1;
    }
    const struct dec_config *c = &b->cfg;
    for (int i = 0; i < n; i += b->batch) {
        int nn = n - i < b->batch ? n - i : b->batch;
        float *lg = all_logits ? logits + (size_t)i * c->vocab : logits;
        if (chunk_fwd(b, x + (size_t)i * c->dim, nn, pos + i, lg, all_logits, i + nn == n, err,
                      errlen)) {
            clFinish(b->q); /* nothing may still read the caller's buffers */
            return -1;
        }
    }
    return 0;
}

static int shift_pass(struct backend_cl *b, cl_mem ks, cl_mem vs, cl_mem kc, cl_mem vc, int s0,
                      int d0, int delta, int n, char *err, size_t errlen)
{
    const struct dec_config *c = &b->cfg;
    cl_kernel k = b->k_shift;
    ARGS(k, "kv_shift", 0, KARG(ks), KARG(vs), KARG(kc), KARG(vc), KARG(c->n_kv_heads),
         KARG(c->head_dim), KARG(s0), KARG(d0), KARG(delta), KARG(b->freqs));
    size_t g2[2] = {(size_t)c->n_kv_heads * (c->head_dim / 2), (size_t)n};
    return launch(b, k, "kv_shift", 2, g2, NULL, err, errlen);
}

/* Moves one layer's kept rows down through the scratch pair ks/vs (work-items must not
 * read rows others overwrite), rotating the keys on the way back. */
static int shift_layer(struct backend_cl *b, struct cl_layer *L, cl_mem ks, cl_mem vs, int keep,
                       int n_discard, int n, char *err, size_t errlen)
{
    return shift_pass(b, L->kc, L->vc, ks, vs, keep + n_discard, 0, 0, n, err, errlen) ||
           shift_pass(b, ks, vs, L->kc, L->vc, 0, keep, -n_discard, n, err, errlen);
}

static int cl_shift(void *state, int keep, int n_discard, int n_past, char *err, size_t errlen)
{
    struct backend_cl *b = state;
    int n = n_past - keep - n_discard;
    if (n <= 0) return 0; /* nothing kept after the dropped part: the next forward overwrites */
    size_t bytes = (size_t)n * b->cfg.n_kv_heads * b->cfg.head_dim * 4;
    cl_mem ks = NULL, vs = NULL;
    int rc = -1;
    if (alloc_buf(b, &ks, bytes, "KV shift scratch", err, errlen) == 0 &&
        alloc_buf(b, &vs, bytes, "KV shift scratch", err, errlen) == 0) {
        rc = 0;
        for (int l = 0; l < b->cfg.n_layers && rc == 0; l++)
            rc = shift_layer(b, &b->layers[l], ks, vs, keep, n_discard, n, err, errlen);
    }
    /* The scratch is released only once the queue has used it. */
    clFinish(b->q);
    if (ks) b->mem_used -= bytes;
    if (vs) b->mem_used -= bytes;
    release_mem(&ks);
    release_mem(&vs);
    return rc;
}

static const char *cl_device_name(void *state)
{
    struct backend_cl *b = state;
    return b->name;
}

const struct dec_backend_ops backend_cl_ops = {
    "opencl", cl_open, cl_forward, cl_device_name, cl_close, cl_shift,
};
