/* ui/status: the status line: model, backend and device, tokens/s of the last answer, the
 * confidential core's protection summary, ε per word (or token) and the ε spent today (or
 * this session) against its limit; NOT SANITIZED while no sanitization is in force. */
#ifndef CMIF_UI_STATUS_H
#define CMIF_UI_STATUS_H

#include <stddef.h>

struct status_info {
    const char *model;
    const char *device;
    double tps;              /* tokens/s of the last answer; 0 = none yet */
    const char *core;        /* core_status summary */
    double eps, spent, total;
    const char *unit;        /* "word" or "token"; NULL: "tok" */
    int day;                 /* spent/total are today's (the ledger), else the session's */
    int unsanitized;         /* no sanitization in force: NOT SANITIZED, never cut */
    int busy;                /* an answer is streaming */
};

/* A budget figure for people: up to 4 significant digits, never scientific notation
 * (100000, not 1e+05). */
void status_num(double x, char *out, size_t cap);
/* The line for `width` columns (sanitized). A narrow terminal loses the core's status, the
 * device, the model, the speed, then the words around the budget figure; the figure
 * (spent/limit) is cut (with "…") only when it alone is wider than the line. */
void status_format(const struct status_info *s, int width, char *out, size_t cap);
void status_draw(void *win, const struct status_info *s, int color);

#endif
