/* gpu/backend: what a decoder backend implements (the whole forward pass on its device). */
#ifndef CMIF_GPU_BACKEND_H
#define CMIF_GPU_BACKEND_H

#include "gpu/decoder.h"

struct dec_backend_ops {
    const char *name;
    int (*open)(void **state, const struct dec_weights *w, const struct dec_options *o,
                int ctx, char *err, size_t errlen);
    int (*forward)(void *state, const float *x, int n, int pos, float *logits, int all_logits,
                   char *err, size_t errlen);
    const char *(*device_name)(void *state);
    void (*close)(void *state);
    /* The cache edit behind dec_shift (arguments checked there). */
    int (*shift)(void *state, int keep, int n_discard, int n_past, char *err, size_t errlen);
};

extern const struct dec_backend_ops backend_cpu_ops;
extern const struct dec_backend_ops backend_cl_ops;

#endif
