/* The status line; see ui/status.h. */
#include "ui/status.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "ui/colors.h"
#include "ui/utf8.h"

void status_format(const struct status_info *s, int width, char *out, size_t cap)
{
    char line[1024], tps[32];
    if (s->busy) snprintf(tps, sizeof tps, "generating…");
    else if (s->tps > 0) snprintf(tps, sizeof tps, "%.1f tok/s", s->tps);
    else snprintf(tps, sizeof tps, "- tok/s");
    char priv[160];
    const char *unit = s->unit ? s->unit : "tok";
    const char *when = s->day ? "today" : "session";
    char sp[32], tot[32];
    status_num(s->spent, sp, sizeof sp);
    status_num(s->total, tot, sizeof tot);
    if (s->unsanitized)
        snprintf(priv, sizeof priv, "NOT SANITIZED · %s %s/%s", when, sp, tot);
    else snprintf(priv, sizeof priv, "ε %g/%s · %s %s/%s", s->eps, unit, when, sp, tot);
    const char *model = s->model && *s->model ? s->model : "?";
    const char *dev = s->device ? s->device : "?";
    /* The privacy figures come before the core's long status; a narrow terminal drops the
     * core's status, then the device, before cutting anything. */
    snprintf(line, sizeof line, " %s │ %s │ %s │ %s ", model, dev, tps, priv);
    size_t head = strlen(line);
    int hw = utf8_width(line, head);
    if (hw > width)
        snprintf(line, sizeof line, " %s │ %s │ %s ", model, tps, priv);
    if (utf8_width(line, strlen(line)) > width) {   /* the privacy figures before the model */
        /* Then the speed, then the words around the figures: the budget figure itself
         * (spent/limit) is the last thing a narrow terminal may cut. */
        char shortp[160];
        if (s->unsanitized) snprintf(shortp, sizeof shortp, "NOT SANITIZED %s/%s", sp, tot);
        else snprintf(shortp, sizeof shortp, "ε %g/%.1s %s/%s", s->eps, unit, sp, tot);
        char tiny[80];
        snprintf(tiny, sizeof tiny, "%s %s/%s", s->unsanitized ? "!" : "ε", sp, tot);
        const char *fig = tiny + strlen(s->unsanitized ? "! " : "ε ");   /* spent/limit */
        const char *tries[5][2] = { { priv, tps }, { priv, NULL }, { shortp, NULL },
                                    { tiny, NULL }, { fig, NULL } };
        for (int i = 0; i < 5; i++) {
            if (tries[i][1]) snprintf(line, sizeof line, " %s │ %s ", tries[i][0], tries[i][1]);
            else snprintf(line, sizeof line, " %s ", tries[i][0]);
            if (utf8_width(line, strlen(line)) <= width) break;
        }
    } else if (hw + 16 <= width && s->core && *s->core)   /* room for a useful part of it */
        snprintf(line + head, sizeof line - head, "│ %s ", s->core);
    int w = utf8_fit(line, strlen(line), width, out, cap);
    /* Pad to the full width so the reverse-video bar spans the screen. */
    size_t l = strlen(out);
    while (w < width && l + 1 < cap) {
        out[l++] = ' ';
        w++;
    }
    out[l] = 0;
}

void status_draw(void *win, const struct status_info *s, int color)
{
    WINDOW *w = win;
    int h, wd;
    getmaxyx(w, h, wd);
    (void)h;
    char buf[2048];
    status_format(s, wd, buf, sizeof buf);
    werase(w);
    wattrset(w, color ? COLOR_PAIR(UI_PAIR_STATUS) : A_REVERSE);
    mvwaddstr(w, 0, 0, buf);
    wattrset(w, A_NORMAL);
}

void status_num(double x, char *out, size_t cap)
{
    if (x >= 1e4 || x <= -1e4) snprintf(out, cap, "%.0f", x);
    else snprintf(out, cap, "%.4g", x);
}
