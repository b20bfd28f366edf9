/* ui/status: the status line: model, backend and device, tokens/s of the last answer, the
 * confidential core's protection summary, ε per token and budget left. */
#ifndef CMIF_UI_STATUS_H
#define CMIF_UI_STATUS_H

#include <stddef.h>

struct status_info {
    const char *model;
    const char *device;
    double tps;              /* tokens/s of the last answer; 0 = none yet */
    const char *core;        /* core_status summary */
    double eps, spent, total;
    int busy;                /* an answer is streaming */
};

/* The line for `width` columns (sanitized, cut with "…"). */
void status_format(const struct status_info *s, int width, char *out, size_t cap);
void status_draw(void *win, const struct status_info *s, int color);

#endif
