/* Full-screen layout and drawing; see ui/screen.h. */
#include "ui/screen.h"

#include <curses.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include <sodium.h>

#include "ui/colors.h"
#include "ui/input.h"
#include "ui/markdown.h"
#include "ui/utf8.h"

#define INPUT_MAX_ROWS 6

struct screen {
    SCREEN *scr;
    FILE *in, *out;
    int virt, color, mouse;
    WINDOW *wt, *wp, *ws, *wi;
    int cols, rows;
    int input_h, panel_w, panel_on;
    int geo_dirty;
    struct transcript tr;
    struct panel_data pd;
    struct panel_tok *rep;
    struct status_info st;
    char st_model[128], st_device[128], st_core[192];
    size_t lay_n;           /* transcript rows at the last draw, at width lay_w: rows that */
    int lay_w;              /* arrive while scrolled back grow the scroll, the view stays put */
};

/* For screen_emergency_restore (signal handlers): the terminal's original modes. */
static struct termios g_saved_tio;
static volatile sig_atomic_t g_tty_fd = -1;

void screen_emergency_restore(void)
{
    int fd = g_tty_fd;
    if (fd < 0) return;
    static const char seq[] = "\033[?2004l\033[?1000l\033[?1006l\033[0m\033[?25h\033[?1049l\r\n";
    tcsetattr(fd, TCSANOW, &g_saved_tio);
    ssize_t r = write(fd, seq, sizeof seq - 1);
    (void)r;
}

static void colors(struct screen *s)
{
    if (!s->color || !has_colors()) {
        s->color = 0;
        return;
    }
    start_color();
    use_default_colors();
    init_pair(UI_PAIR_USER, COLOR_CYAN, -1);
    init_pair(UI_PAIR_INFO, COLOR_YELLOW, -1);
    init_pair(UI_PAIR_ERROR, COLOR_RED, -1);
    init_pair(UI_PAIR_STATUS, COLOR_WHITE, COLOR_BLUE);
    init_pair(UI_PAIR_REPLACED, COLOR_MAGENTA, -1);
    init_pair(UI_PAIR_GOOD, COLOR_GREEN, -1);
    init_pair(UI_PAIR_WARN, COLOR_YELLOW, -1);
    init_pair(UI_PAIR_BAD, COLOR_RED, -1);
    init_pair(UI_PAIR_CODE, COLOR_GREEN, -1);
}

/* How a Markdown attribute set is drawn (ui/markdown). */
static attr_t md_attr(const struct screen *s, unsigned char m)
{
    attr_t a = A_NORMAL;
    if (m & (MD_BOLD | MD_HEAD)) a |= A_BOLD;
#ifdef A_ITALIC
    if (m & MD_ITALIC) a |= A_ITALIC;
#else
    if (m & MD_ITALIC) a |= A_UNDERLINE;
#endif
    if (m & MD_FENCE) a |= A_DIM;
    if (m & (MD_CODE | MD_BLOCK)) a |= s->color ? COLOR_PAIR(UI_PAIR_CODE) : (m & MD_CODE ? A_UNDERLINE : 0);
    return a;
}

int screen_open(struct screen **out, const struct screen_options *o, char *err, size_t errlen)
{
    *out = NULL;
    struct screen *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "screen: out of memory");
        return -1;
    }
    s->in = o->in ? o->in : stdin;
    s->out = o->out ? o->out : stdout;
    s->virt = o->cols > 0 && o->rows > 0;
    s->color = o->color;
    s->mouse = o->mouse;
    const char *term = o->term ? o->term : getenv("TERM");
    if (!term || !*term) term = s->virt ? "xterm" : "dumb";
    if (!s->virt && isatty(fileno(s->out)) && tcgetattr(fileno(s->out), &g_saved_tio) == 0)
        g_tty_fd = fileno(s->out);
    s->scr = newterm(term, s->out, s->in);
    if (!s->scr) {
        g_tty_fd = -1;
        snprintf(err, errlen, "cannot open the terminal '%s' (is TERM right?)", term);
        free(s);
        return -1;
    }
    set_term(s->scr);
    if (s->virt) resizeterm(o->rows, o->cols);
    raw();         /* Ctrl-C, Ctrl-Z arrive as keys: Ctrl-C stops an answer */
    noecho();
    nonl();
    set_escdelay(25);
    curs_set(1);
    colors(s);
    if (s->mouse) {
        mousemask(BUTTON4_PRESSED | BUTTON5_PRESSED, NULL);
        mouseinterval(0);
    }
    transcript_init(&s->tr, 5000);
    s->panel_on = 1;
    s->input_h = 1;
    s->geo_dirty = 1;
    if (!s->virt) {
        /* Bracketed paste: pasted text arrives between markers (ui/input handles them). */
        fputs("\033[?2004h", s->out);
        fflush(s->out);
    }
    *out = s;
    return 0;
}

static void del_windows(struct screen *s)
{
    if (s->wt) delwin(s->wt);
    if (s->wp) delwin(s->wp);
    if (s->ws) delwin(s->ws);
    if (s->wi) delwin(s->wi);
    s->wt = s->wp = s->ws = s->wi = NULL;
}

/* The panel's rows hold the user's words: wiped before malloc reuses them. */
static void panel_rows_free(struct screen *s)
{
    if (s->rep) sodium_memzero(s->rep, s->pd.n * sizeof *s->rep);
    free(s->rep);
    s->rep = NULL;
}

void screen_close(struct screen *s)
{
    if (!s) return;
    set_term(s->scr);
    del_windows(s);
    endwin();
    if (!s->virt) {
        fputs("\033[?2004l", s->out);
        fflush(s->out);
    }
    delscreen(s->scr);
    g_tty_fd = -1;
    transcript_free(&s->tr);
    panel_rows_free(s);
    free(s);
}

struct transcript *screen_transcript(struct screen *s) { return &s->tr; }

void screen_set_panel(struct screen *s, const struct panel_data *d)
{
    panel_rows_free(s);
    s->pd = *d;
    s->pd.color = s->color;
    if (d->n && d->rep) {
        s->rep = malloc(d->n * sizeof *s->rep);
        if (s->rep) memcpy(s->rep, d->rep, d->n * sizeof *s->rep);
        else s->pd.n = 0;
    }
    s->pd.rep = s->rep;
}

void screen_toggle_panel(struct screen *s)
{
    s->panel_on = !s->panel_on;
    s->geo_dirty = 1;
}

int screen_panel_visible(const struct screen *s) { return s->panel_on && s->panel_w > 0; }

static void copy_str(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

void screen_set_status(struct screen *s, const struct status_info *st)
{
    s->st = *st;
    copy_str(s->st_model, sizeof s->st_model, st->model);
    copy_str(s->st_device, sizeof s->st_device, st->device);
    copy_str(s->st_core, sizeof s->st_core, st->core);
    s->st.model = s->st_model;
    s->st.device = s->st_device;
    s->st.core = s->st_core;
}

void screen_resize(struct screen *s)
{
    s->geo_dirty = 1;
}

static void geometry(struct screen *s, struct input *in)
{
    int cols = COLS, rows = LINES;
    int ih = in ? input_rows(in, cols, INPUT_MAX_ROWS) : 1;
    if (rows < 4) ih = 1;
    else if (ih > rows - 3) ih = rows - 3;
    int pw = 0;
    if (s->panel_on && cols >= 60) {
        pw = cols * 2 / 5;
        if (pw < 28) pw = 28;
        if (pw > 56) pw = 56;
    }
    if (!s->geo_dirty && cols == s->cols && rows == s->rows && ih == s->input_h && pw == s->panel_w)
        return;
    s->cols = cols;
    s->rows = rows;
    s->input_h = ih;
    s->panel_w = pw;
    s->geo_dirty = 0;
    del_windows(s);
    int th = rows - ih - 1;
    if (th < 1) th = 1;
    s->wt = newwin(th, cols - pw, 0, 0);
    if (pw) s->wp = newwin(th, pw, 0, cols - pw);
    s->ws = newwin(1, cols, rows - ih - 1 >= 0 ? rows - ih - 1 : 0, 0);
    s->wi = newwin(ih, cols, rows - ih, 0);
    if (s->wi) {
        keypad(s->wi, TRUE);
        meta(s->wi, TRUE);   /* 8-bit input: UTF-8 must arrive whole */
        nodelay(s->wi, TRUE);
    }
    clearok(curscr, TRUE);
    /* Scrolling back stays meaningful: clamp to what the new width produces. */
    transcript_scroll(&s->tr, 0, cols - pw, th - 1);
}

static void draw_transcript(struct screen *s)
{
    WINDOW *w = s->wt;
    if (!w) return;
    int h, wd;
    getmaxyx(w, h, wd);
    werase(w);
    struct tr_row *rows;
    size_t n;
    if (transcript_layout(&s->tr, wd, &rows, &n) != 0) {
        mvwaddstr(w, 0, 0, "(out of memory)");
        return;
    }
    if (s->tr.scroll > 0 && wd == s->lay_w && n > s->lay_n)
        s->tr.scroll += (int)(n - s->lay_n);
    s->lay_n = n;
    s->lay_w = wd;
    /* Scrolled back, the marker has the top row to itself: it never covers text. */
    int mark_row = s->tr.scroll > 0 && h > 1;
    long end = (long)n - s->tr.scroll;
    long start = end - (h - mark_row);
    if (start < 0) start = 0;
    for (long r = start; r < end; r++) {
        const struct tr_row *row = &rows[r];
        int y = (int)(r - start) + mark_row;
        if (row->idx == (size_t)-1) continue;
        const struct tr_entry *e = &s->tr.e[row->idx];
        attr_t a = A_NORMAL;
        const char *mark = "  ";
        switch (e->style) {
        case TR_USER: a = s->color ? COLOR_PAIR(UI_PAIR_USER) | A_BOLD : A_BOLD; mark = "> "; break;
        case TR_INFO: a = s->color ? COLOR_PAIR(UI_PAIR_INFO) : A_DIM; mark = "* "; break;
        case TR_ERROR: a = s->color ? COLOR_PAIR(UI_PAIR_ERROR) | A_BOLD : A_BOLD; mark = "! "; break;
        default: break;
        }
        wattrset(w, a);
        if (row->first) mvwaddstr(w, y, 0, mark);
        int x = 2 + row->indent;
        size_t i = 0;
        const char *text;
        size_t tlen;
        const unsigned char *ma;
        transcript_shown(e, &text, &tlen, &ma);
        const char *t = text + row->off;
        while (i < row->len) {
            char cell[8];
            int cw;
            if (ma) wattrset(w, a | md_attr(s, ma[row->off + i]));
            size_t k = utf8_cell(t + i, row->len - i, cell, &cw);
            i += k;
            if (cell[0] == '\n') continue;
            if (x + cw > wd) break;
            mvwaddstr(w, y, x, cell);
            x += cw;
        }
    }
    wattrset(w, A_NORMAL);
    if (mark_row) {
        char ind[64], fit[128];
        snprintf(ind, sizeof ind, " ↑ %d rows back (PgDn, End) ", s->tr.scroll);
        int iw = utf8_fit(ind, strlen(ind), wd, fit, sizeof fit);
        wattron(w, A_REVERSE);
        mvwaddstr(w, 0, wd - iw, fit);
        wattroff(w, A_REVERSE);
    }
    free(rows);
}

void screen_draw(struct screen *s, struct input *in)
{
    set_term(s->scr);
    geometry(s, in);
    draw_transcript(s);
    if (s->wt) wnoutrefresh(s->wt);
    if (s->wp) {
        panel_draw(s->wp, &s->pd);
        wnoutrefresh(s->wp);
    }
    if (s->ws) {
        status_draw(s->ws, &s->st, s->color);
        wnoutrefresh(s->ws);
    }
    if (s->wi) {
        if (in) input_draw(in, s->wi);
        else werase(s->wi);
        wnoutrefresh(s->wi);
    }
    doupdate();
}

void screen_repaint(struct screen *s)
{
    s->geo_dirty = 1;
    clearok(curscr, TRUE);
}

static int page(struct screen *s)
{
    int h = s->rows - s->input_h - 1;
    return h > 2 ? h - 1 : 1;
}

/* Scrolled back, the marker takes a row of the pane: the text has one row less. */
void screen_scroll_pages(struct screen *s, int pages)
{
    transcript_scroll(&s->tr, pages * page(s), s->cols - s->panel_w, s->rows - s->input_h - 2);
}

void screen_scroll_rows(struct screen *s, int rows)
{
    transcript_scroll(&s->tr, rows, s->cols - s->panel_w, s->rows - s->input_h - 2);
}

int screen_key(struct screen *s, int wait)
{
    set_term(s->scr);
    WINDOW *w = s->wi ? s->wi : stdscr;
    nodelay(w, wait ? FALSE : TRUE);
    int ch = wgetch(w);
    if (wait) nodelay(w, TRUE);
    return ch;
}

int screen_wheel(struct screen *s)
{
    (void)s;
    MEVENT ev;
    if (getmouse(&ev) != OK) return 0;
    if (ev.bstate & BUTTON4_PRESSED) return 1;
#ifdef BUTTON5_PRESSED
    if (ev.bstate & BUTTON5_PRESSED) return -1;
#endif
    return 0;
}

int screen_dump(struct screen *s, FILE *f)
{
    set_term(s->scr);
    int rows = LINES, cols = COLS;
    wchar_t *line = malloc(((size_t)cols + 1) * sizeof *line);
    if (!line) return -1;
    for (int y = 0; y < rows; y++) {
        int n = mvwinnwstr(curscr, y, 0, line, cols);
        if (n < 0) n = 0;
        line[n] = 0;
        while (n > 0 && line[n - 1] == L' ') n--;
        for (int i = 0; i < n; i++) {
            char b[8];
            uint32_t cp = (uint32_t)line[i];
            if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) cp = 0xfffd;
            fwrite(b, 1, utf8_encode(cp, b), f);
        }
        fputc('\n', f);
    }
    free(line);
    return ferror(f) ? -1 : 0;
}

int screen_clipboard(struct screen *s, const char *text, size_t n)
{
    size_t cap = sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL);
    char *b = malloc(cap);
    if (!b) return -1;
    sodium_bin2base64(b, cap, (const unsigned char *)text, n, sodium_base64_VARIANT_ORIGINAL);
    fprintf(s->out, "\033]52;c;%s\a", b);
    fflush(s->out);
    sodium_memzero(b, cap);
    free(b);
    return 0;
}
