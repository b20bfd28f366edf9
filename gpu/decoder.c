/* gpu/decoder: the facade over the backends (see decoder.h).
 *
 * It checks the weights once, picks a backend, owns the context length and the input hook,
 * and forwards every call. The OpenCL backend lives in gpu/backend_cl.c (device choice and
 * fallback policy: see dec_open). */
#include "gpu/decoder.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gpu/backend.h"
#include "gpu/cl_load.h"
#include "gpu/cl_util.h"
#include "gpu/quant.h"

struct decoder {
    const struct dec_backend_ops *ops;
    void *state;
    struct dec_config cfg;
    int ctx;
    dec_input_hook hook;
    void *hook_ctx;
    struct dec_prefault *pf;    /* dec_open's own, when the caller started none */
    char note[320];
};

struct dec_prefault {
    pthread_t th;
    struct dec_layer *layers;   /* a copy: the caller's array may be a temporary */
    int n_layers;
    struct dec_tensor output;
};

/* MADV_POPULATE_READ (Linux 5.14) maps what is in the page cache and reads the rest; where
 * the kernel lacks it, the pass faults the pages as before. Weights the caller did not map
 * (a tensor in memory) are populated all the same, harmlessly. A megabyte per call: the
 * call holds the process's memory-map lock, which the start-up work running beside it
 * (the core's guarded allocations: mmap, mprotect) needs for writing. */
#define POPULATE_CHUNK ((uintptr_t)1 << 20)
static void populate(const struct dec_tensor *t)
{
#ifdef MADV_POPULATE_READ
    /* A type the CPU backend repacks is faulted in, slice by slice, by the repacking
     * itself, which then drops the slice's pages: mapping them here would only map them
     * back in. */
    if (!t->data || t->rows <= 0 || qt_packed_type(t->type) != t->type) return;
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)t->data, e = lo + (size_t)t->rows * qt_row_bytes(t->type, (size_t)t->cols);
    uintptr_t a = lo & ~(uintptr_t)(pg - 1);
    for (; a < e; a += POPULATE_CHUNK) {
        uintptr_t n = e - a < POPULATE_CHUNK ? e - a : POPULATE_CHUNK;
        (void)madvise((void *)a, n, MADV_POPULATE_READ);
        /* And a byte of each page read here: under some hypervisors the first touch of a
         * populated page still costs ~2 us (0.3 s of CPU for a 770 MB model), which this
         * thread then pays instead of the first forward pass. Only the tensor's own bytes:
         * its first page may start with someone else's memory. */
        for (uintptr_t o = a; o < a + n; o += pg) (void)*(volatile const unsigned char *)(o < lo ? lo : o);
    }
#else
    (void)t;
#endif
}

static void *prefault_run(void *arg)
{
    const struct dec_prefault *p = arg;
    for (int l = 0; l < p->n_layers; l++) {
        const struct dec_layer *L = &p->layers[l];
        const struct dec_tensor *ts[] = {&L->wq, &L->wk, &L->wv, &L->wo, &L->w_gate, &L->w_up,
                                         &L->w_down};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) populate(ts[i]);
    }
    populate(&p->output);
    return NULL;
}

struct dec_prefault *dec_prefault(const struct dec_weights *w)
{
    if (!w->layers || w->cfg.n_layers <= 0) return NULL;
    struct dec_prefault *p = calloc(1, sizeof *p);
    if (!p || !(p->layers = malloc((size_t)w->cfg.n_layers * sizeof *p->layers))) {
        free(p);
        return NULL;
    }
    memcpy(p->layers, w->layers, (size_t)w->cfg.n_layers * sizeof *p->layers);
    p->n_layers = w->cfg.n_layers;
    p->output = w->output;
    if (pthread_create(&p->th, NULL, prefault_run, p) != 0) {
        free(p->layers);
        free(p);
        return NULL;
    }
    return p;
}

void dec_prefault_end(struct dec_prefault *p)
{
    if (!p) return;
    pthread_join(p->th, NULL);
    free(p->layers);
    free(p);
}

static int check_tensor(const struct dec_tensor *t, const char *what, int layer, int64_t rows,
                        int64_t cols, int vector, char *err, size_t errlen)
{
    char name[48];
    if (layer >= 0) snprintf(name, sizeof name, "layer %d %s", layer, what);
    else snprintf(name, sizeof name, "%s", what);
    if (!t->data) {
        snprintf(err, errlen, "decoder: %s has no data", name);
        return -1;
    }
    if (vector ? t->type != QT_F32 : !qt_supported(t->type)) {
        snprintf(err, errlen, "decoder: %s has unsupported type %d", name, t->type);
        return -1;
    }
    if (t->rows != rows || t->cols != cols) {
        snprintf(err, errlen, "decoder: %s is %lld x %lld, expected %lld x %lld", name,
                 (long long)t->rows, (long long)t->cols, (long long)rows, (long long)cols);
        return -1;
    }
    if (!vector && cols % (int64_t)qt_block_elems(t->type) != 0) {
        snprintf(err, errlen, "decoder: %s row length %lld is not a multiple of the %s block",
                 name, (long long)cols, qt_name(t->type));
        return -1;
    }
    return 0;
}

static int check_weights(const struct dec_weights *w, char *err, size_t errlen)
{
    const struct dec_config *c = &w->cfg;
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->n_heads % c->n_kv_heads != 0 || c->head_dim <= 0 || c->head_dim % 2 != 0 ||
        c->ffn_dim <= 0 || c->vocab <= 0 || !(c->norm_eps > 0) || !(c->rope_base > 0)) {
        snprintf(err, errlen, "decoder: invalid configuration (dim %d, layers %d, heads %d/%d, "
                 "head_dim %d, ffn %d, vocab %d)", c->dim, c->n_layers, c->n_heads,
                 c->n_kv_heads, c->head_dim, c->ffn_dim, c->vocab);
        return -1;
    }
    if (!w->layers) {
        snprintf(err, errlen, "decoder: no layers");
        return -1;
    }
    int64_t dim = c->dim, qd = (int64_t)c->n_heads * c->head_dim;
    int64_t kvd = (int64_t)c->n_kv_heads * c->head_dim;
    for (int l = 0; l < c->n_layers; l++) {
        const struct dec_layer *L = &w->layers[l];
        if (check_tensor(&L->attn_norm, "attn_norm", l, 1, dim, 1, err, errlen) ||
            check_tensor(&L->wq, "wq", l, qd, dim, 0, err, errlen) ||
            check_tensor(&L->wk, "wk", l, kvd, dim, 0, err, errlen) ||
            check_tensor(&L->wv, "wv", l, kvd, dim, 0, err, errlen) ||
            check_tensor(&L->wo, "wo", l, dim, qd, 0, err, errlen) ||
            check_tensor(&L->ffn_norm, "ffn_norm", l, 1, dim, 1, err, errlen) ||
            check_tensor(&L->w_gate, "w_gate", l, c->ffn_dim, dim, 0, err, errlen) ||
            check_tensor(&L->w_up, "w_up", l, c->ffn_dim, dim, 0, err, errlen) ||
            check_tensor(&L->w_down, "w_down", l, dim, c->ffn_dim, 0, err, errlen))
            return -1;
    }
    if (check_tensor(&w->out_norm, "out_norm", -1, 1, dim, 1, err, errlen) ||
        check_tensor(&w->output, "output", -1, c->vocab, dim, 0, err, errlen))
        return -1;
    return 0;
}

void dec_prepare(int device)
{
    if (device == DEC_DEV_AUTO) cl_load_probe_start();
}

int dec_open(struct decoder **out, const struct dec_weights *w, const struct dec_options *o,
             char *err, size_t errlen)
{
    *out = NULL;
    struct dec_options def;
    if (!o) {
        memset(&def, 0, sizeof def);
        def.cl_index = -1;
        o = &def;
    }
    if (check_weights(w, err, errlen)) return -1;
    int ctx = o->ctx;
    if (ctx < 0) {
        snprintf(err, errlen, "decoder: context length %d is negative", ctx);
        return -1;
    }
    if (ctx == 0) {
        ctx = w->cfg.ctx_train > 0 ? w->cfg.ctx_train : 2048;
        if (ctx > 4096) ctx = 4096;
    }
    if (ctx > (1 << 22)) {
        snprintf(err, errlen, "decoder: context length %d is too large", ctx);
        return -1;
    }
    struct decoder *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "decoder: out of memory");
        return -1;
    }
    d->cfg = w->cfg;
    d->ctx = ctx;
    /* Before the device search below: the pages come in while it runs. */
    if (!o->prefaulted) d->pf = dec_prefault(w);

    /* Device policy: auto = the first usable OpenCL GPU, else the CPU; cl[:N] = OpenCL
     * device N (PoCL included). A device that cannot take the model (out of memory, no
     * platform, build failure) falls back to the CPU with a note; a device index that
     * does not exist is an error. */
    int r = -1;
    switch (o->device) {
    case DEC_DEV_CPU:
        d->ops = &backend_cpu_ops;
        break;
    case DEC_DEV_CL:
    case DEC_DEV_AUTO: {
        struct dec_options co = *o;
        char clerr[256] = "";
        int try_cl = 1;
        if (o->device == DEC_DEV_AUTO) {
            /* Looked for in a child process: without a GPU this process never maps the
             * OpenCL driver. No GPU: the CPU is simply the choice (no note); no OpenCL at
             * all: clerr says so. */
            co.cl_index = cl_load_probe_gpu(clerr, sizeof clerr);
            if (co.cl_index < 0) try_cl = 0;
        } else if (o->cl_index >= 0) {
            struct clu_dev *devs;
            int n = 0;
            if (clu_devices(&devs, &n, clerr, sizeof clerr) == 0) {
                clu_devices_free(devs);
                if (o->cl_index >= n) {
                    snprintf(err, errlen, "decoder: OpenCL device %d does not exist (%d device%s; "
                             "see cmif info --devices)", o->cl_index, n, n == 1 ? "" : "s");
                    dec_close(d);
                    return -1;
                }
            }
        }
        if (try_cl) {
            r = backend_cl_ops.open(&d->state, w, &co, ctx, clerr, sizeof clerr);
            if (r == 0) d->ops = &backend_cl_ops;
        }
        if (r != 0) {
            d->ops = &backend_cpu_ops;
            if (clerr[0])
                snprintf(d->note, sizeof d->note, "%s%s; using the CPU backend",
                         strncmp(clerr, "opencl", 6) ? "OpenCL: " : "", clerr);
        }
        break;
    }
    default:
        snprintf(err, errlen, "decoder: unknown device %d", o->device);
        dec_close(d);
        return -1;
    }
    if (r != 0 && d->ops->open(&d->state, w, o, ctx, err, errlen) != 0) {
        d->state = NULL;
        dec_close(d);
        return -1;
    }
    *out = d;
    return 0;
}

void dec_close(struct decoder *d)
{
    if (!d) return;
    dec_prefault_end(d->pf);
    if (d->ops && d->state) d->ops->close(d->state);
    free(d);
}

int dec_forward(struct decoder *d, const float *x, int n, int pos, float *logits,
                int all_logits, char *err, size_t errlen)
{
    if (!x || !logits || n <= 0) {
        snprintf(err, errlen, "decoder: forward needs at least one input vector");
        return -1;
    }
    if (pos < 0 || pos > d->ctx || n > d->ctx - pos) {
        snprintf(err, errlen, "decoder: positions %d..%d exceed the context length %d", pos,
                 pos + n - 1, d->ctx);
        return -1;
    }
    if (d->hook) d->hook(d->hook_ctx, x, n, d->cfg.dim);
    return d->ops->forward(d->state, x, n, pos, logits, all_logits, err, errlen);
}

int dec_shift(struct decoder *d, int keep, int n_discard, int n_past, char *err, size_t errlen)
{
    if (keep < 0 || n_discard < 0 || n_past > d->ctx || keep > n_past ||
        n_discard > n_past - keep) {
        snprintf(err, errlen, "decoder: cannot drop %d positions after %d of %d filled", n_discard,
                 keep, n_past);
        return -1;
    }
    if (n_discard == 0) return 0;
    return d->ops->shift(d->state, keep, n_discard, n_past, err, errlen);
}

int dec_ctx(const struct decoder *d) { return d->ctx; }

const struct dec_config *dec_config(const struct decoder *d) { return &d->cfg; }

const char *dec_device_name(const struct decoder *d) { return d->ops->device_name(d->state); }

const char *dec_fallback_note(const struct decoder *d) { return d->note[0] ? d->note : NULL; }

void dec_set_input_hook(struct decoder *d, dec_input_hook fn, void *ctx)
{
    d->hook = fn;
    d->hook_ctx = ctx;
}
