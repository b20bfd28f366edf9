/* The privacy panel; see ui/panel.h. */
#include "ui/panel.h"

#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "ui/colors.h"
#include "ui/status.h"
#include "ui/utf8.h"

static char kind_letter(int k)
{
    switch (k) {
    case PANEL_KEPT: return 'K';
    case PANEL_REPLACED: return 'R';
    case PANEL_PUBLIC: return 'P';
    case PANEL_CONTROL: return 'C';
    case PANEL_RANDOM: return 'N';
    case PANEL_PLANNED: return 'S';
    default: return '?';
    }
}

/* The symbol for the whitespace at s (a space, tab or newline, or the report's escapes
 * "\\n", "\\t", "\\r"): *len gets the bytes it stands for; NULL when s is no whitespace. */
static const char *ws_symbol(const char *s, size_t *len)
{
    *len = 1;
    if (*s == ' ') return "␣";
    if (*s == '\n') return "↵";
    if (*s == '\t') return "⇥";
    *len = 2;
    if (s[0] == '\\' && s[1] == 'n') return "↵";
    if (s[0] == '\\' && s[1] == 't') return "⇥";
    if (s[0] == '\\' && s[1] == 'r') return "␍";
    return NULL;
}

/* A piece as the panel shows it: a piece of whitespace alone as visible symbols (never a
 * blank row), and a leading space as "␣" when `lead` (the other side has none, so the space
 * is what differs). */
static void visible_piece(const char *p, size_t n, int lead, char *out, size_t cap)
{
    size_t i = 0, o = 0, l;
    while (i < n && ws_symbol(p + i, &l)) i += l;
    int all = n && i == n;
    out[0] = 0;
    for (i = 0; i < n && o + 8 < cap;) {
        const char *sym = (all || (i == 0 && lead && p[0] == ' ')) ? ws_symbol(p + i, &l) : NULL;
        if (sym) {
            o += (size_t)snprintf(out + o, cap - o, "%s", sym);
            i += l;
        } else out[o++] = p[i++];
    }
    out[o] = 0;
}

void panel_row(const struct panel_tok *r, int width, char *out, size_t cap)
{
    /* typed(fw) " → " sent(fw) " K " eps(5) */
    int fw = (width - 3 - 3 - 5) / 2;
    if (fw < 1) fw = 1;
    char a[200], b[200], e[16], va[200], vb[200];
    size_t na = strnlen(r->orig, sizeof r->orig), nb = strnlen(r->sent, sizeof r->sent);
    int lead = (na && r->orig[0] == ' ') != (nb && r->sent[0] == ' ');
    visible_piece(r->orig, na, lead, va, sizeof va);
    visible_piece(r->sent, nb, lead, vb, sizeof vb);
    int wa = utf8_fit(va, strlen(va), fw, a, sizeof a);
    int wb = utf8_fit(vb, strlen(vb), fw, b, sizeof b);
    snprintf(e, sizeof e, "%5.2f", r->eps);
    if (strlen(e) > 5) snprintf(e, sizeof e, "%5.0f", r->eps > 99999 ? 99999 : r->eps);
    snprintf(out, cap, "%s%*s → %s%*s %c %s", a, fw - wa, "", b, fw - wb, "", kind_letter(r->kind), e);
}

void panel_header(int width, char *out, size_t cap)
{
    /* The same columns as panel_row; the kind letter's column is headed by its legend. */
    int fw = (width - 3 - 3 - 5) / 2;
    if (fw < 1) fw = 1;
    char a[64], b[64];
    int wa = utf8_fit("typed", 5, fw, a, sizeof a);
    int wb = utf8_fit("sent", 4, fw, b, sizeof b);
    snprintf(out, cap, "%s%*s   %s%*s       ε", a, fw - wa, "", b, fw - wb, "");
}

void panel_bar(double spent, double total, int width, char *out, size_t cap)
{
    double left = total > 0 ? (total - spent) / total : 0;
    if (left < 0) left = 0;
    if (left > 1) left = 1;
    char pct[16];
    snprintf(pct, sizeof pct, " %3.0f%% left", left * 100);
    int bw = width - 2 - (int)strlen(pct);
    if (bw < 1) bw = 1;
    int fill = (int)(left * bw + 0.5);
    size_t o = 0;
    if (cap < (size_t)bw + 16) {
        if (cap) out[0] = 0;
        return;
    }
    out[o++] = '[';
    for (int i = 0; i < bw; i++) out[o++] = i < fill ? '#' : '-';
    out[o++] = ']';
    out[o] = 0;
    strncat(out, pct, cap - o - 1);
}

void panel_draw(void *win, const struct panel_data *d)
{
    WINDOW *w = win;
    int h, wd;
    getmaxyx(w, h, wd);
    werase(w);
    /* A left border separates the panel from the transcript. */
    for (int y = 0; y < h; y++) mvwaddch(w, y, 0, ACS_VLINE);
    int x = 2, cw = wd - 3;
    if (cw < 8) return;
    char buf[1024], line[512];
    int y = 0;
    wattron(w, A_BOLD);
    mvwaddstr(w, y++, x, "Privacy (F2 hides)");
    wattroff(w, A_BOLD);
    const char *unit = d->unit ? d->unit : "token";
    if (d->unsanitized) {
        wattron(w, d->color ? COLOR_PAIR(UI_PAIR_BAD) : A_REVERSE);
        snprintf(line, sizeof line, "NOT SANITIZED (%s)", d->mechanism ? d->mechanism : "?");
    } else {
        snprintf(line, sizeof line, "%s, ε %g/%s", d->mechanism ? d->mechanism : "?", d->eps,
                 unit);
    }
    utf8_fit(line, strlen(line), cw, buf, sizeof buf);
    mvwaddstr(w, y++, x, buf);
    if (d->unsanitized) wattroff(w, d->color ? COLOR_PAIR(UI_PAIR_BAD) : A_REVERSE);
    if (d->preview)
        snprintf(line, sizeof line, "preview: %zu %s%s, ε %.4g", d->n, unit,
                 d->n == 1 ? "" : "s", d->msg_eps);
    else if (d->n_system)
        snprintf(line, sizeof line, "message: %zu tok (%zu system prompt), ε %.4g", d->n,
                 d->n_system, d->msg_eps);
    else snprintf(line, sizeof line, "message: %zu tok, ε %.4g", d->n, d->msg_eps);
    utf8_fit(line, strlen(line), cw, buf, sizeof buf);
    mvwaddstr(w, y++, x, buf);
    char sp[32], tot[32];
    status_num(d->spent, sp, sizeof sp);
    status_num(d->total, tot, sizeof tot);
    snprintf(line, sizeof line, "%s: ε %s of %s", d->day ? "today" : "session", sp, tot);
    utf8_fit(line, strlen(line), cw, buf, sizeof buf);
    mvwaddstr(w, y++, x, buf);
    panel_bar(d->spent, d->total, cw, buf, sizeof buf);
    double left = d->total > 0 ? (d->total - d->spent) / d->total : 0;
    int pair = left > 0.5 ? UI_PAIR_GOOD : left > 0.2 ? UI_PAIR_WARN : UI_PAIR_BAD;
    if (d->color) wattron(w, COLOR_PAIR(pair));
    mvwaddstr(w, y++, x, buf);
    if (d->color) wattroff(w, COLOR_PAIR(pair));
    y++;
    if (y >= h) return;
    if (d->preview)
        snprintf(line, sizeof line, "before Enter: P public  S sanitize  N random  C control");
    else snprintf(line, sizeof line, "K kept  R replaced  P public  N random  C control");
    if ((int)strlen(line) > cw)   /* narrower: the capitals still name the letters */
        snprintf(line, sizeof line, d->preview ? "Public Sanitize raNdom Control"
                                               : "Kept Replaced Public raNdom Control");
    utf8_fit(line, strlen(line), cw, buf, sizeof buf);
    mvwaddstr(w, y++, x, buf);
    if (y >= h) return;
    wattron(w, A_UNDERLINE);
    panel_header(cw, line, sizeof line);
    utf8_fit(line, strlen(line), cw, buf, sizeof buf);
    mvwaddstr(w, y++, x, buf);
    wattroff(w, A_UNDERLINE);
    size_t room = h > y ? (size_t)(h - y) : 0;
    /* Too many rows: show the first ones and say how many are left out. */
    size_t show = d->n <= room ? d->n : room ? room - 1 : 0;
    for (size_t i = 0; i < show; i++) {
        panel_row(&d->rep[i], cw, buf, sizeof buf);
        int rp = d->rep[i].kind == PANEL_REPLACED || d->rep[i].kind == PANEL_PLANNED;
        if (rp) wattron(w, d->color ? COLOR_PAIR(UI_PAIR_REPLACED) : A_BOLD);
        mvwaddstr(w, y++, x, buf);
        if (rp) wattroff(w, d->color ? COLOR_PAIR(UI_PAIR_REPLACED) : A_BOLD);
    }
    if (show < d->n && y < h) {
        snprintf(line, sizeof line, "… %zu more (/save has all)", d->n - show);
        utf8_fit(line, strlen(line), cw, buf, sizeof buf);
        mvwaddstr(w, y, x, buf);
    }
}
