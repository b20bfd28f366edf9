/* Readline callback glue; see ui/input.h. */
#include "ui/input.h"

#include <curses.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <readline/history.h>
#include <readline/readline.h>

#include "ui/utf8.h"

#define PROMPT "> "
#define PROMPT_CONT "... "
#define PASTE_MAX (8u << 20)

struct input {
    struct input_options o;
    /* bytes waiting for readline */
    unsigned char *ring;
    size_t rhead, rlen, rcap;
    /* an escape sequence being matched against the bracketed-paste markers */
    char esc[8];
    int nesc;
    int pasting;
    char *paste;
    size_t plen, pcap;
    /* a message continued with trailing backslashes */
    char *cont;
    size_t clen;
    int block;           /* inside a """ block: every line continues until """ */
    /* completed messages */
    char **done;
    size_t ndone, dcap;
    int eof;
    char matches[512];   /* completions listed by a second Tab, for the transcript */
    int dirty;
    int in_rl;
    FILE *devnull;
};

static struct input *g_in;   /* readline has no context pointer */
/* The allocated size of rl_line_buffer: exported by GNU readline, declared only in its
 * private header. */
extern int rl_line_buffer_len;

/* Everything here held what the user typed: wiped before it goes back to malloc. */
static void wipe_free(char *s)
{
    if (s) sodium_memzero(s, strlen(s));
    free(s);
}

static void wipe_entry(HIST_ENTRY *e)
{
    if (e->line) sodium_memzero(e->line, strlen(e->line));
    histdata_t d = free_history_entry(e);
    (void)d;
}

static int ring_push(struct input *in, const char *s, size_t n)
{
    if (in->rhead && in->rhead == in->rlen) {
        sodium_memzero(in->ring, in->rlen);   /* keys typed, deleted ones too */
        in->rhead = in->rlen = 0;
    }
    if (in->rlen + n > in->rcap) {
        if (in->rhead) {
            memmove(in->ring, in->ring + in->rhead, in->rlen - in->rhead);
            in->rlen -= in->rhead;
            in->rhead = 0;
        }
        if (in->rlen + n > in->rcap) {
            size_t nc = in->rcap ? in->rcap : 256;
            while (nc < in->rlen + n) nc *= 2;
            /* Not realloc: the old block would go back to malloc unwiped. */
            unsigned char *p = malloc(nc);
            if (!p) return -1;
            if (in->rlen) memcpy(p, in->ring, in->rlen);
            if (in->ring) sodium_memzero(in->ring, in->rcap);
            free(in->ring);
            in->ring = p;
            in->rcap = nc;
        }
    }
    memcpy(in->ring + in->rlen, s, n);
    in->rlen += n;
    return 0;
}

static int ring_avail(const struct input *in) { return in->rlen > in->rhead; }

static int rl_getc_cb(FILE *f)
{
    (void)f;
    struct input *in = g_in;
    while (!ring_avail(in)) {
        if (!in->o.fetch || in->o.fetch(in->o.ctx) < 0) return EOF;
    }
    return in->ring[in->rhead++];
}

static int rl_avail_cb(void) { return g_in && ring_avail(g_in); }
static void rl_redisplay_cb(void)
{
    if (g_in) g_in->dirty = 1;
}
static void rl_noprep(int meta) { (void)meta; }
static void rl_nodeprep(void) {}

static void set_prompt(struct input *in)
{
    rl_set_prompt(in->cont ? PROMPT_CONT : PROMPT);
    in->dirty = 1;
}

static void push_done(struct input *in, char *msg)
{
    if (in->ndone == in->dcap) {
        size_t nc = in->dcap ? in->dcap * 2 : 4;
        char **nd = realloc(in->done, nc * sizeof *nd);
        if (!nd) {
            wipe_free(msg);
            return;
        }
        in->done = nd;
        in->dcap = nc;
    }
    in->done[in->ndone++] = msg;
}

/* A line that is only """ (blanks around it allowed): opens or closes a block. */
static int is_fence(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    if (strncmp(s, "\"\"\"", 3) != 0) return 0;
    s += 3;
    while (*s == ' ' || *s == '\t') s++;
    return !*s;
}

static void on_line(char *line)
{
    struct input *in = g_in;
    if (!line) {
        if (in->cont) {   /* Ctrl-D in a continuation: send what there is */
            if (in->block && in->clen && in->cont[in->clen - 1] == '\n')
                in->cont[--in->clen] = 0;
            push_done(in, in->cont);
            in->cont = NULL;
            in->clen = 0;
            in->block = 0;
            set_prompt(in);
            return;
        }
        in->eof = 1;
        return;
    }
    /* readline reuses its line buffer for the next line without clearing the tail. */
    if (rl_line_buffer && rl_line_buffer_len > 0)
        sodium_memzero(rl_line_buffer, (size_t)rl_line_buffer_len);
    /* """ alone on a line opens a multi-line block (as ollama has it); the next """
     * alone sends it, its line breaks kept. */
    if (is_fence(line) && (!in->cont || in->block)) {
        wipe_free(line);
        if (!in->block) {
            in->block = 1;
            in->cont = calloc(1, 1);
            in->clen = 0;
        } else {
            in->block = 0;
            if (in->clen && in->cont[in->clen - 1] == '\n') in->cont[--in->clen] = 0;
            push_done(in, in->cont);
            in->cont = NULL;
            in->clen = 0;
        }
        set_prompt(in);
        return;
    }
    size_t l = strlen(line);
    int more = in->block || (l && line[l - 1] == '\\');
    if (more && !in->block) l--;
    char *n = malloc(in->clen + l + 2);
    if (!n) {
        wipe_free(line);
        return;
    }
    if (in->clen) memcpy(n, in->cont, in->clen);
    wipe_free(in->cont);
    in->cont = n;
    memcpy(in->cont + in->clen, line, l);
    in->clen += l;
    in->cont[in->clen] = 0;
    wipe_free(line);
    if (more) {
        in->cont[in->clen++] = '\n';
        in->cont[in->clen] = 0;
    } else {
        push_done(in, in->cont);
        in->cont = NULL;
        in->clen = 0;
    }
    set_prompt(in);
}

/* Completes /command names (input_options.commands) at the start of the line; nothing
 * else. text starts with the slash. */
static char *cmd_gen(const char *text, int state)
{
    static size_t i, len;
    if (!state) {
        i = 0;
        len = strlen(text + 1);
    }
    const char *const *names = g_in ? g_in->o.commands : NULL;
    while (names && names[i]) {
        const char *n = names[i++];
        if (!strncmp(n, text + 1, len)) {
            char *m = malloc(strlen(n) + 2);
            if (m) {
                m[0] = '/';
                strcpy(m + 1, n);
            }
            return m;
        }
    }
    return NULL;
}

/* A second Tab lists the matches: readline would print them on its (silenced) stream, so
 * they are kept for the caller to show (input_matches). */
static void show_matches(char **m, int n, int maxlen)
{
    (void)maxlen;
    struct input *in = g_in;
    if (!in) return;
    size_t o = 0;
    in->matches[0] = 0;
    for (int i = 1; i <= n && m[i]; i++) {
        int k = snprintf(in->matches + o, sizeof in->matches - o, "%s%s", o ? "  " : "", m[i]);
        if (k < 0 || (size_t)k >= sizeof in->matches - o) break;
        o += (size_t)k;
    }
    in->dirty = 1;
}

/* The values arg_gen offers: those of the /command the line starts with. */
static const char *const *g_arg_values;

/* Completes the argument of a /command from input_options.args. */
static char *arg_gen(const char *text, int state)
{
    static size_t i, len;
    if (!state) {
        i = 0;
        len = strlen(text);
    }
    while (g_arg_values && g_arg_values[i]) {
        const char *v = g_arg_values[i++];
        if (!strncmp(v, text, len)) return strdup(v);
    }
    return NULL;
}

/* The values for the argument at start when the line is "/command " followed by that
 * argument alone, else NULL. */
static const char *const *arg_values(int start)
{
    const struct input_args *a = g_in ? g_in->o.args : NULL;
    const char *line = rl_line_buffer;
    if (!a || !line || line[0] != '/') return NULL;
    size_t n = strcspn(line + 1, " ");
    if (!line[1 + n]) return NULL;
    size_t p = 1 + n;
    while (line[p] == ' ') p++;
    if ((int)p != start) return NULL;
    for (; a->command; a++)
        if (strlen(a->command) == n && !strncmp(a->command, line + 1, n)) return a->values;
    return NULL;
}

static char **complete(const char *text, int start, int end)
{
    (void)end;
    rl_attempted_completion_over = 1;
    if (start == 0 && text[0] == '/') return rl_completion_matches(text, cmd_gen);
    if ((g_arg_values = arg_values(start))) return rl_completion_matches(text, arg_gen);
    return NULL;
}

int input_open(struct input **out, const struct input_options *o, char *err, size_t errlen)
{
    *out = NULL;
    if (g_in) {
        snprintf(err, errlen, "input: already open (readline is global)");
        return -1;
    }
    struct input *in = calloc(1, sizeof *in);
    if (!in) {
        snprintf(err, errlen, "input: out of memory");
        return -1;
    }
    in->o = *o;
    if (!in->o.history_max) in->o.history_max = 1000;
    in->devnull = fopen("/dev/null", "w");
    if (!in->devnull) {
        snprintf(err, errlen, "input: /dev/null: %s", strerror(errno));
        free(in);
        return -1;
    }
    g_in = in;
    rl_readline_name = "cmif";
    rl_catch_signals = 0;
    rl_catch_sigwinch = 0;
    rl_change_environment = 0;
    rl_prep_term_function = rl_noprep;
    rl_deprep_term_function = rl_nodeprep;
    rl_getc_function = rl_getc_cb;
    rl_input_available_hook = rl_avail_cb;
    rl_redisplay_function = rl_redisplay_cb;
    rl_outstream = in->devnull;
    rl_attempted_completion_function = complete;
    rl_completion_display_matches_hook = show_matches;
    rl_completion_query_items = 10000;
    using_history();
    stifle_history(in->o.history_max);
    rl_callback_handler_install(PROMPT, on_line);
    /* Our own bracketed-paste handling sees the markers first; readline's own binding
     * would read the paste through rl_getc and insert it character by character. */
    rl_variable_bind("enable-bracketed-paste", "off");
    in->dirty = 1;
    *out = in;
    return 0;
}

void input_close(struct input *in)
{
    if (!in) return;
    rl_callback_handler_remove();
    for (size_t i = 0; i < in->ndone; i++) wipe_free(in->done[i]);
    free(in->done);
    wipe_free(in->cont);
    if (in->paste) sodium_memzero(in->paste, in->pcap);
    free(in->paste);
    if (in->ring) sodium_memzero(in->ring, in->rcap);
    free(in->ring);
    rl_outstream = NULL;
    fclose(in->devnull);
    input_history_clear(in);
    rl_completion_display_matches_hook = NULL;
    g_in = NULL;
    free(in);
}

static const char *key_seq(int ch)
{
    switch (ch) {
    case KEY_UP: return "\033[A";
    case KEY_DOWN: return "\033[B";
    case KEY_RIGHT: return "\033[C";
    case KEY_LEFT: return "\033[D";
    case KEY_HOME: return "\033[H";
    case KEY_END: return "\033[F";
    case KEY_DC: return "\033[3~";
    case KEY_IC: return "\033[2~";
    case KEY_BACKSPACE: return "\177";
    case KEY_ENTER: return "\r";
    default: return NULL;
    }
}

static void paste_byte(struct input *in, char c)
{
    if (in->plen + 1 > in->pcap) {
        size_t nc = in->pcap ? in->pcap * 2 : 4096;
        char *p = malloc(nc);
        if (!p) return;
        if (in->plen) memcpy(p, in->paste, in->plen);
        if (in->paste) sodium_memzero(in->paste, in->pcap);
        free(in->paste);
        in->paste = p;
        in->pcap = nc;
    }
    if (in->plen < PASTE_MAX) in->paste[in->plen++] = c;
    static const char end[] = "\033[201~";
    if (in->plen >= 6 && !memcmp(in->paste + in->plen - 6, end, 6)) {
        in->pasting = 0;
        input_insert(in, in->paste, in->plen - 6);
        sodium_memzero(in->paste, in->plen);
        in->plen = 0;
    }
}

void input_key(struct input *in, int ch)
{
    if (ch >= KEY_MIN) {
        const char *s = key_seq(ch);
        if (s && !in->pasting) ring_push(in, s, strlen(s));
        return;
    }
    if (ch < 0 || ch > 255) return;
    char c = (char)ch;
    if (in->pasting) {
        paste_byte(in, c);
        return;
    }
    static const char begin[] = "\033[200~";
    if (in->nesc || c == '\033') {
        in->esc[in->nesc++] = c;
        if (memcmp(in->esc, begin, (size_t)in->nesc) != 0) {
            ring_push(in, in->esc, (size_t)in->nesc);
            in->nesc = 0;
        } else if (in->nesc == 6) {
            in->nesc = 0;
            in->pasting = 1;
            in->plen = 0;
        }
        return;
    }
    ring_push(in, &c, 1);
}

static void notify(struct input *in)
{
    if (in->o.changed) in->o.changed(in->o.ctx, input_line(in));
}

void input_pump(struct input *in)
{
    if (in->in_rl) return;
    if (in->nesc && !in->pasting) {
        /* A lone ESC (or a sequence that never completed) goes to readline as it is. */
        ring_push(in, in->esc, (size_t)in->nesc);
        in->nesc = 0;
    }
    in->in_rl = 1;
    int had = ring_avail(in);
    while (ring_avail(in) && !in->eof) rl_callback_read_char();
    in->in_rl = 0;
    if (had) notify(in);
}

void input_insert(struct input *in, const char *text, size_t n)
{
    char *buf = malloc(n + 1);
    if (!buf) return;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (c == '\r') {
            buf[o++] = '\n';
            if (i + 1 < n && text[i + 1] == '\n') i++;
        } else if (c) {
            buf[o++] = c;
        }
    }
    buf[o] = 0;
    rl_insert_text(buf);
    wipe_free(buf);
    in->dirty = 1;
    notify(in);
}

void input_set_line(struct input *in, const char *text)
{
    rl_replace_line(text, 0);
    rl_point = rl_end;
    in->dirty = 1;
    notify(in);
}

void input_cancel(struct input *in)
{
    rl_callback_sigcleanup();
    rl_replace_line("", 1);
    rl_point = rl_mark = 0;
    wipe_free(in->cont);
    in->cont = NULL;
    in->clen = 0;
    in->block = 0;
    in->nesc = 0;
    in->pasting = 0;
    in->plen = 0;
    history_set_pos(history_length);
    set_prompt(in);
    rl_on_new_line();
    notify(in);
}

char *input_take(struct input *in, int *eof)
{
    if (eof) *eof = in->eof && !in->ndone;
    if (!in->ndone) return NULL;
    char *m = in->done[0];
    memmove(in->done, in->done + 1, (in->ndone - 1) * sizeof *in->done);
    in->ndone--;
    return m;
}

int input_history_add(struct input *in, const char *line, char *err, size_t errlen)
{
    (void)in;
    /* One entry per message, its line breaks kept: recalled, it is the same message. */
    char *h = strdup(line);
    if (!h) {
        snprintf(err, errlen, "history: out of memory");
        return -1;
    }
    HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
    if (*h && !(last && !strcmp(last->line, h))) {
        /* An entry stifling pushes out is freed by readline: wipe it first. */
        if (history_length >= in->o.history_max && history_length > 0) {
            HIST_ENTRY *old = remove_history(0);
            if (old) wipe_entry(old);
        }
        add_history(h);
    }
    wipe_free(h);
    using_history();   /* Up starts from the newest entry again */
    return 0;
}

void input_history_clear(struct input *in)
{
    (void)in;
    HIST_ENTRY **l = history_list();
    for (int i = 0; l && l[i]; i++)
        if (l[i]->line) sodium_memzero(l[i]->line, strlen(l[i]->line));
    clear_history();
    using_history();
}

int input_dirty(const struct input *in) { return in->dirty; }
int input_continuing(const struct input *in) { return in->cont != NULL; }
int input_matches(struct input *in, char *out, size_t cap)
{
    if (!in->matches[0] || !cap) return 0;
    snprintf(out, cap, "%s", in->matches);
    in->matches[0] = 0;
    return 1;
}
const char *input_prompt(const struct input *in)
{
    (void)in;
    return rl_display_prompt ? rl_display_prompt : rl_prompt ? rl_prompt : "";
}
const char *input_line(const struct input *in)
{
    (void)in;
    return rl_line_buffer ? rl_line_buffer : "";
}

/* Lays out the lines already continued with a backslash (each behind its prompt), then
 * prompt + line, as cells, calling fn for each (row, col, cell). Returns rows and sets the
 * cursor's row/col for byte offset `point` of the line. */
typedef void (*cell_fn)(void *ctx, int row, int col, const char *cell);

struct lay {
    int row, col, width;
    cell_fn fn;
    void *ctx;
};

static void lay_cell(struct lay *l, const char *cell, int w)
{
    if (l->col + w > l->width) {
        l->row++;
        l->col = 0;
    }
    if (l->fn) l->fn(l->ctx, l->row, l->col, cell);
    l->col += w;
}

/* Text without a cursor: continued lines and prompts (which may hold readline's
 * invisible-text markers). */
static void lay_text(struct lay *l, const char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n) {
        char cell[8];
        int w;
        size_t k = utf8_cell(s + i, n - i, cell, &w);
        if (s[i] == '\001' || s[i] == '\002') {
            i += k;
            continue;
        }
        if (cell[0] == '\n' && s[i] == '\n') {
            l->row++;
            l->col = 0;
        } else {
            lay_cell(l, cell, w);
        }
        i += k;
    }
}

static int layout(const char *cont, const char *prompt, const char *line, int point, int width,
                  cell_fn fn, void *ctx, int *crow, int *ccol)
{
    struct lay l = { 0, 0, width < 2 ? 2 : width, fn, ctx };
    *crow = 0;
    *ccol = 0;
    /* "line1\nline2\n": shown as "> line1" / "... line2" above the line being edited. */
    for (const char *c = cont; c && *c;) {
        const char *nl = strchr(c, '\n');
        size_t len = nl ? (size_t)(nl - c) : strlen(c);
        char *one = strndup(c, len);
        lay_text(&l, c == cont ? PROMPT : PROMPT_CONT);
        if (one) lay_text(&l, one);
        free(one);
        l.row++;
        l.col = 0;
        c += len + (nl ? 1 : 0);
    }
    lay_text(&l, prompt);
    size_t n = strlen(line), i = 0;
    while (i <= n) {
        if ((int)i == point) {
            if (l.col >= l.width) {
                l.row++;
                l.col = 0;
            }
            *crow = l.row;
            *ccol = l.col;
        }
        if (i == n) break;
        char cell[8];
        int w;
        size_t k = utf8_cell(line + i, n - i, cell, &w);
        if (cell[0] == '\n' && line[i] == '\n') {
            l.row++;
            l.col = 0;
        } else {
            lay_cell(&l, cell, w);
        }
        i += k;
    }
    return l.row + 1 + (l.col >= l.width ? 1 : 0);
}

int input_rows(const struct input *in, int width, int max)
{
    int cr, cc;
    int rows = layout(in->cont, input_prompt(in), input_line(in), rl_point, width, NULL, NULL, &cr, &cc);
    if (cr + 1 > rows) rows = cr + 1;
    return rows < 1 ? 1 : rows > max ? max : rows;
}

struct drawctx {
    WINDOW *w;
    int top, h;
};

static void draw_cell(void *ctx, int row, int col, const char *cell)
{
    struct drawctx *d = ctx;
    if (row < d->top || row >= d->top + d->h) return;
    mvwaddstr(d->w, row - d->top, col, cell);
}

void input_draw(struct input *in, void *win)
{
    WINDOW *w = win;
    int h, wd;
    getmaxyx(w, h, wd);
    int cr, cc;
    layout(in->cont, input_prompt(in), input_line(in), rl_point, wd, NULL, NULL, &cr, &cc);
    /* Show the rows around the cursor when the line is taller than the window. */
    int top = cr - h + 1 > 0 ? cr - h + 1 : 0;
    werase(w);
    struct drawctx d = { w, top, h };
    layout(in->cont, input_prompt(in), input_line(in), rl_point, wd, draw_cell, &d, &cr, &cc);
    wmove(w, cr - top, cc < wd ? cc : wd - 1);
    in->dirty = 0;
}
