/* tests/tools/memmodel: random Llama weights in memory, for the decoder tests (test_decoder
 * on the CPU, test_cl against OpenCL). Each matrix is made in the requested type and also,
 * dequantized from exactly those blocks, as F32: the F32 twin (wf) is an exact-arithmetic
 * reference for the weights a backend decodes. Values come from the caller's testrng
 * stream, so a test that keeps drawing from it after building gets a reproducible sequence.
 * Header-only and built on cmocka's asserts: include "tests/testutil.h" first. */
#ifndef CMIF_TESTS_MEMMODEL_H
#define CMIF_TESTS_MEMMODEL_H

#include <stdint.h>
#include <stdlib.h>

#include "gpu/decoder.h"
#include "gpu/quant.h"
#include "tests/tools/testrng.h"

#define MEMMODEL_MAX_BLOBS 64

struct memmodel {
    struct dec_weights w;   /* in the requested type */
    struct dec_weights wf;  /* the same weights as F32 */
    void *blobs[MEMMODEL_MAX_BLOBS];
    int nblobs;
    uint64_t *rng;          /* testrng stream of the values */
};

/* Owned by m until memmodel_free; p must not be NULL. */
static inline void *memmodel_keep(struct memmodel *m, void *p)
{
    assert_non_null(p);
    assert_true(m->nblobs < MEMMODEL_MAX_BLOBS);
    m->blobs[m->nblobs++] = p;
    return p;
}

/* An empty model of config c (layers allocated, tensors unset) drawing from *rng. */
static inline void memmodel_init(struct memmodel *m, const struct dec_config *c, uint64_t *rng)
{
    memset(m, 0, sizeof *m);
    m->rng = rng;
    m->w.cfg = m->wf.cfg = *c;
    m->w.layers = memmodel_keep(m, calloc((size_t)c->n_layers, sizeof(struct dec_layer)));
    m->wf.layers = memmodel_keep(m, calloc((size_t)c->n_layers, sizeof(struct dec_layer)));
}

/* A rows x cols matrix of uniform values in [-scale, scale), as type (q) and as F32 (f). */
static inline void memmodel_mat(struct memmodel *m, int type, int64_t rows, int64_t cols,
                                float scale, struct dec_tensor *q, struct dec_tensor *f)
{
    size_t rb = qt_row_bytes(type, (size_t)cols);
    unsigned char *qd = memmodel_keep(m, malloc(rb * (size_t)rows));
    float *fd = memmodel_keep(m, malloc(sizeof(float) * (size_t)(rows * cols)));
    float *tmp = malloc(sizeof(float) * (size_t)cols);
    assert_non_null(tmp);
    for (int64_t i = 0; i < rows; i++) {
        for (int64_t j = 0; j < cols; j++) tmp[j] = testrng_frand(m->rng) * scale;
        qt_quant_row(type, tmp, qd + (size_t)i * rb, (size_t)cols);
        qt_dequant_row(type, qd + (size_t)i * rb, fd + (size_t)(i * cols), (size_t)cols);
    }
    free(tmp);
    *q = (struct dec_tensor){qd, type, rows, cols};
    *f = (struct dec_tensor){fd, QT_F32, rows, cols};
}

/* A norm weight vector, 1 ± 0.2 (F32 in both forms). */
static inline void memmodel_vec(struct memmodel *m, int64_t n, struct dec_tensor *q,
                                struct dec_tensor *f)
{
    float *v = memmodel_keep(m, malloc(sizeof(float) * (size_t)n));
    for (int64_t i = 0; i < n; i++) v[i] = 1.0f + 0.2f * testrng_frand(m->rng);
    *q = *f = (struct dec_tensor){v, QT_F32, 1, n};
}

static inline void memmodel_free(struct memmodel *m)
{
    for (int i = 0; i < m->nblobs; i++) free(m->blobs[i]);
    m->nblobs = 0;
}

#endif
