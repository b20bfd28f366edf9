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
    if (s->unsanitized)
        snprintf(priv, sizeof priv, "NOT SANITIZED · %s %.4g/%.4g", when, s->spent, s->total);
    else snprintf(priv, sizeof priv, "ε %g/%s · %s %.4g/%.4g", s->eps, unit, when, s->spent,
                  s->total);
    const char *model = s->model && *s->model ? s->model : "?";
    const char *dev = s->device ? s->device : "?";
    /* The privacy figures come before the core's long status; a narrow terminal drops the
     * core's status, then the device, before cutting anything. */
    snprintf(line, sizeof line, " %s │ %s │ %s │ %s ", model, dev, tps, priv);
    size_t head = strlen(line);
    int hw = utf8_width(line, head);
    if (hw > width)
        snprintf(line, sizeof line, " %s │ %s │ %s ", model, tps, priv);
    if (utf8_width(line, strlen(line)) > width)   /* the privacy figures before the model */
        snprintf(line, sizeof line, " %s │ %s ", priv, tps);
    else if (hw + 16 <= width && s->core && *s->core)   /* room for a useful part of it */
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
