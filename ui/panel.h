/* ui/panel: the privacy panel beside the transcript. For the last message: each token as
 * typed and as sent, how it was treated (kept/replaced/public/control) and the ε charged;
 * message and session totals and a bar of the budget left. ui/ is trusted (it is the
 * user's own screen), so it may show the original text next to the sanitized one. The
 * rows are the panel's own type: app/ converts the core's report into them, so ui/ knows
 * nothing of the core. */
#ifndef CMIF_UI_PANEL_H
#define CMIF_UI_PANEL_H

#include <stddef.h>

/* How a token was treated (the panel shows the capital letter): kept, replaced, public,
 * control, raNdom (every letter and digit drawn at random, the shape kept) and, in the
 * preview before Enter, will be Sanitized. */
enum panel_kind { PANEL_KEPT = 0, PANEL_REPLACED, PANEL_PUBLIC, PANEL_CONTROL, PANEL_RANDOM,
                  PANEL_PLANNED };

/* One token of the last message. */
struct panel_tok {
    char orig[48];                       /* as typed (UTF-8; sanitized when drawn) */
    char sent[48];                       /* as sent */
    int kind;                            /* enum panel_kind */
    double eps;                          /* ε charged */
};

struct panel_data {
    const struct panel_tok *rep;         /* borrowed; n rows */
    size_t n;
    size_t n_system;                     /* the first rows are the system prompt, charged
                                            with this message */
    double msg_eps;
    double eps;                          /* ε per unit now */
    double spent, total;                 /* today's (day) or the session's budget */
    int day;                             /* the budget is a daily one (the ledger) */
    const char *unit;                    /* "word" or "token"; NULL: "token" */
    int preview;                         /* rep is the preview of the line being typed */
    int unsanitized;                     /* no sanitization in force (mechanism none) */
    const char *mechanism;
    int color;                           /* colour pairs are set up (see ui/colors.h) */
};

/* One token row formatted to `width` columns: "typed → sent   R 1.00". Whitespace is made
 * visible where it would hide something: a piece of only whitespace as ␣ ↵ ⇥, and a
 * leading space only one side has as ␣ ("␣T → T" says what was replaced). */
void panel_row(const struct panel_tok *r, int width, char *out, size_t cap);
/* The column heads over panel_row's rows of the same width. */
void panel_header(int width, char *out, size_t cap);
/* The budget bar: "[#####-----] 50% left" in width columns. */
void panel_bar(double spent, double total, int width, char *out, size_t cap);
/* Draws the whole panel into win (a WINDOW *). */
void panel_draw(void *win, const struct panel_data *d);

#endif
