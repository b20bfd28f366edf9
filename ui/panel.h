/* ui/panel: the privacy panel beside the transcript. For the last message: each token as
 * typed and as sent, how it was treated (kept/replaced/public/control) and the ε charged;
 * message and session totals and a bar of the budget left. ui/ is trusted (it is the
 * user's own screen), so it may show the original text next to the sanitized one. */
#ifndef CMIF_UI_PANEL_H
#define CMIF_UI_PANEL_H

#include <stddef.h>

#include "core/core.h"

struct panel_data {
    const struct core_tok_report *rep;   /* borrowed; n rows */
    size_t n;
    double msg_eps;
    double eps;                          /* ε per token now */
    double spent, total;                 /* session budget */
    const char *mechanism;
    int color;                           /* colour pairs are set up (see ui/screen.h) */
};

/* One token row formatted to `width` columns: "typed → sent   R 1.00". */
void panel_row(const struct core_tok_report *r, int width, char *out, size_t cap);
/* The column heads over panel_row's rows of the same width. */
void panel_header(int width, char *out, size_t cap);
/* The budget bar: "[#####-----] 50% left" in width columns. */
void panel_bar(double spent, double total, int width, char *out, size_t cap);
/* Draws the whole panel into win (a WINDOW *). */
void panel_draw(void *win, const struct panel_data *d);

#endif
