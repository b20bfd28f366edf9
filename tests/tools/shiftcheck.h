/* tests/tools/shiftcheck: the context-shift check both backends' tests run. A decoder that
 * drops cache positions with dec_shift must give the logits of a fresh decode of the kept
 * tokens at contiguous positions (up to float rounding: rotating a cached key twice is not
 * bit-identical to rotating it once). Header-only; needs tests/testutil.h first. */
#ifndef CMIF_TESTS_SHIFTCHECK_H
#define CMIF_TESTS_SHIFTCHECK_H

#include <stdlib.h>
#include <string.h>

#include "gpu/decoder.h"

/* x holds n + 2 input vectors. `shifted` decodes x[0..n), drops [keep, keep+nd) and decodes
 * x[n], x[n+1]; `fresh` (same weights, empty cache) decodes the kept vectors then the same
 * two. Returns the larger relative logit difference of the two steps. */
static inline double shiftcheck_run(struct decoder *shifted, struct decoder *fresh,
                                    const float *x, int n, int keep, int nd, int dim, int vocab)
{
    char err[512];
    size_t V = (size_t)vocab, D = (size_t)dim;
    float *a = malloc(2 * V * sizeof(float)), *b = malloc(2 * V * sizeof(float));
    float *seq = malloc((size_t)(n - nd) * D * sizeof(float));
    if (!a || !b || !seq) fail_msg("out of memory");
    if (dec_forward(shifted, x, n, 0, a, 0, err, sizeof err) ||
        dec_shift(shifted, keep, nd, n, err, sizeof err) ||
        dec_forward(shifted, x + (size_t)n * D, 1, n - nd, a, 0, err, sizeof err) ||
        dec_forward(shifted, x + (size_t)(n + 1) * D, 1, n - nd + 1, a + V, 0, err, sizeof err))
        fail_msg("shifted decoder: %s", err);
    memcpy(seq, x, (size_t)keep * D * sizeof(float));
    memcpy(seq + (size_t)keep * D, x + (size_t)(keep + nd) * D,
           (size_t)(n - keep - nd) * D * sizeof(float));
    if (dec_forward(fresh, seq, n - nd, 0, b, 0, err, sizeof err) ||
        dec_forward(fresh, x + (size_t)n * D, 1, n - nd, b, 0, err, sizeof err) ||
        dec_forward(fresh, x + (size_t)(n + 1) * D, 1, n - nd + 1, b + V, 0, err, sizeof err))
        fail_msg("fresh decoder: %s", err);
    double e0 = tu_rel_err(a, b, V), e1 = tu_rel_err(a + V, b + V, V);
    free(a);
    free(b);
    free(seq);
    return e0 > e1 ? e0 : e1;
}

#endif
