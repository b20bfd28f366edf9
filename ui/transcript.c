/* The conversation pane's model; see ui/transcript.h. Drawing is in ui/screen.c. */
#include "ui/transcript.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "ui/markdown.h"
#include "ui/utf8.h"

/* An entry's text held what the user typed or was shown: wiped before malloc reuses it. */
static void entry_free(struct tr_entry *e)
{
    if (e->text) sodium_memzero(e->text, e->cap);
    free(e->text);
    e->text = NULL;
    e->len = e->cap = 0;
    if (e->md) md_free(e->md);
    free(e->md);
    e->md = NULL;
}

/* Renders an answer's text again for the Markdown display (what is new since the last
 * time). Out of memory: the answer is shown as written. */
static void render(const struct transcript *t, struct tr_entry *e)
{
    if (!t->markdown || e->style != TR_ANSWER) return;
    if (!e->md) {
        if (!(e->md = malloc(sizeof *e->md))) return;
        md_init(e->md);
    }
    if (md_update(e->md, e->text, e->len) != 0) {
        md_free(e->md);
        free(e->md);
        e->md = NULL;
    }
}

int transcript_set_markdown(struct transcript *t, int on)
{
    t->markdown = on;
    int rc = 0;
    for (size_t i = 0; i < t->n; i++) {
        struct tr_entry *e = &t->e[i];
        if (e->md) md_free(e->md);
        free(e->md);
        e->md = NULL;
        render(t, e);
        if (on && e->style == TR_ANSWER && !e->md) rc = -1;
    }
    return rc;
}

void transcript_shown(const struct tr_entry *e, const char **text, size_t *len,
                      const unsigned char **attr)
{
    if (e->md) {
        *text = e->md->text ? e->md->text : "";
        *len = e->md->len;
        *attr = e->md->attr;
    } else {
        *text = e->text;
        *len = e->len;
        *attr = NULL;
    }
}

void transcript_init(struct transcript *t, size_t max_entries)
{
    memset(t, 0, sizeof *t);
    t->max_entries = max_entries ? max_entries : 2000;
}

void transcript_clear(struct transcript *t)
{
    for (size_t i = 0; i < t->n; i++) entry_free(&t->e[i]);
    t->n = 0;
    t->scroll = 0;
    t->carry.n = 0;
}

void transcript_free(struct transcript *t)
{
    transcript_clear(t);
    free(t->e);
    t->e = NULL;
    t->cap = 0;
}

static int grow(struct tr_entry *e, size_t need)
{
    if (e->len + need + 1 <= e->cap) return 0;
    size_t nc = e->cap ? e->cap : 64;
    while (nc < e->len + need + 1) nc *= 2;
    /* Not realloc: the outgrown block would go back to malloc unwiped. */
    char *p = malloc(nc);
    if (!p) return -1;
    if (e->text) {
        memcpy(p, e->text, e->len);
        sodium_memzero(e->text, e->cap);
        free(e->text);
    }
    e->text = p;
    e->cap = nc;
    return 0;
}

int transcript_add(struct transcript *t, int style, const char *text, size_t len)
{
    transcript_end_answer(t);
    if (t->n == t->max_entries) {
        entry_free(&t->e[0]);
        memmove(t->e, t->e + 1, (t->n - 1) * sizeof *t->e);
        t->n--;
    }
    if (t->n == t->cap) {
        size_t nc = t->cap ? t->cap * 2 : 32;
        struct tr_entry *ne = realloc(t->e, nc * sizeof *ne);
        if (!ne) return -1;
        t->e = ne;
        t->cap = nc;
    }
    struct tr_entry *e = &t->e[t->n];
    memset(e, 0, sizeof *e);
    e->style = style;
    if (grow(e, len) != 0) return -1;
    memcpy(e->text, text, len);
    e->len = len;
    e->text[len] = 0;
    t->n++;
    render(t, e);
    return 0;
}

static int raw_append(struct transcript *t, const char *s, size_t n)
{
    struct tr_entry *e = &t->e[t->n - 1];
    if (grow(e, n) != 0) return -1;
    memcpy(e->text + e->len, s, n);
    e->len += n;
    e->text[e->len] = 0;
    render(t, e);
    return 0;
}

int transcript_append(struct transcript *t, const char *s, size_t n)
{
    if (!t->n || t->e[t->n - 1].style != TR_ANSWER) {
        if (transcript_add(t, TR_ANSWER, "", 0) != 0) return -1;
    }
    /* A continuation usually starts with a word's space: not drawn before the answer's
     * first letter (the scripted transcript drops it too). */
    if (t->e[t->n - 1].len == 0 && !t->carry.n)
        while (n && *s == ' ') {
            s++;
            n--;
        }
    if (utf8_carry_fill(&t->carry, &s, &n)) {
        if (raw_append(t, t->carry.b, t->carry.n) != 0) return -1;
        t->carry.n = 0;
    }
    return raw_append(t, s, utf8_carry_keep(&t->carry, s, n));
}

void transcript_end_answer(struct transcript *t)
{
    if (t->carry.n && t->n) raw_append(t, t->carry.b, t->carry.n);
    t->carry.n = 0;
}

size_t transcript_wrap(const char *s, size_t n, int width,
                       void (*fn)(void *ctx, size_t off, size_t len), void *ctx)
{
    if (width < 1) width = 1;
    size_t rows = 0, start = 0, i = 0;
    int col = 0;
    size_t brk = 0;      /* byte after the last space in this row (0: none) */
    char cell[8];
    while (i < n) {
        int w;
        size_t k = utf8_cell(s + i, n - i, cell, &w);
        if (cell[0] == '\n' && s[i] == '\n') {
            if (fn) fn(ctx, start, i - start);
            rows++;
            i += k;
            start = i;
            col = 0;
            brk = 0;
            continue;
        }
        if (col + w > width && col > 0) {
            /* Break after the last space when the word then fits on the next row. */
            size_t end = brk > start ? brk : i;
            if (fn) fn(ctx, start, end - start);
            rows++;
            start = end;
            col = utf8_width(s + start, i - start);
            brk = 0;
            continue;   /* re-examine this cell on the new row */
        }
        col += w;
        i += k;
        if (s[i - k] == ' ') brk = i;
    }
    if (start < n || rows == 0 || (n && s[n - 1] == '\n')) {
        if (fn) fn(ctx, start, n - start);
        rows++;
    }
    return rows;
}

struct lay {
    struct tr_row *rows;
    size_t n, cap;
    size_t idx;
    int first, fail;
    size_t base;        /* offset of the wrapped text in the entry's shown text */
    int indent;         /* for the rows to come */
    int hang;           /* for the rows after the next one */
};

static void lay_row(void *ctx, size_t off, size_t len)
{
    struct lay *l = ctx;
    if (l->fail) return;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 256;
        struct tr_row *r = realloc(l->rows, nc * sizeof *r);
        if (!r) {
            l->fail = 1;
            return;
        }
        l->rows = r;
        l->cap = nc;
    }
    l->rows[l->n++] = (struct tr_row){ l->idx, l->base + off, len, l->first, l->indent };
    l->first = 0;
    l->indent = l->hang;
}

/* A Markdown answer, one display line at a time: a list item's later rows hang under its
 * text, a code block's rows keep a margin. */
static void lay_md(struct lay *l, const char *s, size_t n, const unsigned char *a, int width)
{
    size_t i = 0;
    for (;;) {
        const char *nl = memchr(s + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - s) : n;
        size_t p = i;
        while (p < end && (a[p] & MD_BULLET)) p++;
        int hang = utf8_width(s + i, p - i);
        l->base = i;
        l->indent = l->hang = 0;
        if (i < n && (a[i] & MD_BLOCK) && width > 8) {
            l->indent = l->hang = 2;
            transcript_wrap(s + i, end - i, width - 2, lay_row, l);
        } else if (hang && hang <= width / 2) {
            /* The marker goes on the first row, before the text wrapped narrower. */
            l->base = p;
            l->hang = hang;
            size_t before = l->n;
            transcript_wrap(s + p, end - p, width - hang, lay_row, l);
            if (!l->fail && l->n > before) {
                l->rows[before].off = i;
                l->rows[before].len += p - i;
            }
        } else {
            transcript_wrap(s + i, end - i, width, lay_row, l);
        }
        if (!nl) break;
        i = end + 1;
    }
    l->indent = l->hang = 0;
    l->base = 0;
}

int transcript_layout(const struct transcript *t, int width, struct tr_row **rows, size_t *n)
{
    struct lay l = { 0 };
    int inner = width - 2 > 1 ? width - 2 : 1;
    for (size_t i = 0; i < t->n && !l.fail; i++) {
        if (t->e[i].style == TR_USER && i > 0) {
            l.idx = (size_t)-1;   /* blank separator row */
            l.first = 0;
            lay_row(&l, 0, 0);
        }
        l.idx = i;
        l.first = 1;
        const char *text;
        size_t len;
        const unsigned char *attr;
        transcript_shown(&t->e[i], &text, &len, &attr);
        if (attr)
            lay_md(&l, text, len, attr, inner);
        else
            transcript_wrap(text, len, inner, lay_row, &l);
    }
    if (l.fail) {
        free(l.rows);
        *rows = NULL;
        *n = 0;
        return -1;
    }
    *rows = l.rows;
    *n = l.n;
    return 0;
}

void transcript_scroll(struct transcript *t, int delta, int width, int height)
{
    struct tr_row *rows;
    size_t n;
    long s = (long)t->scroll + delta;
    if (transcript_layout(t, width, &rows, &n) != 0) return;
    free(rows);
    long max = (long)n - height;
    if (max < 0) max = 0;
    if (s > max) s = max;
    if (s < 0) s = 0;
    t->scroll = (int)s;
}
