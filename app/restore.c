/* Restoring the user's words in answers; see app/restore.h. */
#include "app/restore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define WORD_MAX 48   /* a report row's piece: longer words are never substitutes */

struct pair {
    char sent[WORD_MAX], orig[WORD_MAX];
};

struct restore {
    struct pair *p;
    size_t n, cap;
    char part[WORD_MAX * 2];   /* the partial word held back while streaming */
    size_t plen;
};

/* Bytes a word is made of: ASCII letters and digits and every byte of a multi-byte UTF-8
 * character (letters of other scripts); everything else ends a word. */
static int word_byte(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c >= 0x80;
}

struct restore *restore_open(void) { return calloc(1, sizeof(struct restore)); }

void restore_forget(struct restore *r)
{
    if (!r) return;
    if (r->p) core_wipe(r->p, r->cap * sizeof *r->p);
    r->n = 0;
    core_wipe(r->part, sizeof r->part);
    r->plen = 0;
}

void restore_close(struct restore *r)
{
    if (!r) return;
    restore_forget(r);
    free(r->p);
    free(r);
}

static const char *skip_space(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n') s++;
    return s;
}

int restore_learn(struct restore *r, const char *orig, const char *sent)
{
    orig = skip_space(orig);
    sent = skip_space(sent);
    size_t sl = strlen(sent), ol = strlen(orig);
    if (!sl || !ol || sl >= WORD_MAX || ol >= WORD_MAX || !strcmp(orig, sent)) return 0;
    for (size_t i = 0; i < sl; i++)
        if (!word_byte((unsigned char)sent[i])) return 0;   /* never one word of an answer */
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->p[i].sent, sent)) {
            snprintf(r->p[i].orig, sizeof r->p[i].orig, "%s", orig);
            return 0;
        }
    if (r->n == r->cap) {
        /* Not realloc: the outgrown copy held the user's words and is wiped. */
        size_t nc = r->cap ? r->cap * 2 : 16;
        struct pair *np = calloc(nc, sizeof *np);
        if (!np) return -1;
        if (r->n) memcpy(np, r->p, r->n * sizeof *np);
        if (r->p) core_wipe(r->p, r->cap * sizeof *r->p);
        free(r->p);
        r->p = np;
        r->cap = nc;
    }
    snprintf(r->p[r->n].sent, WORD_MAX, "%s", sent);
    snprintf(r->p[r->n].orig, WORD_MAX, "%s", orig);
    r->n++;
    return 0;
}

const char *restore_lookup(const struct restore *r, const char *word, size_t n)
{
    if (!r || !n || n >= WORD_MAX) return NULL;
    for (size_t i = r->n; i-- > 0;)
        if (strlen(r->p[i].sent) == n && !memcmp(r->p[i].sent, word, n)) return r->p[i].orig;
    return NULL;
}

static void emit_word(const struct restore *r, const char *w, size_t n, restore_emit_fn fn,
                      void *ctx)
{
    if (!n) return;
    fn(ctx, w, n, restore_lookup(r, w, n));
}

void restore_feed(struct restore *r, const char *s, size_t n, restore_emit_fn fn, void *ctx)
{
    size_t i = 0;
    while (i < n) {
        if (word_byte((unsigned char)s[i])) {
            if (r->plen == sizeof r->part) {   /* too long to be a substitute: let it go */
                fn(ctx, r->part, r->plen, NULL);
                r->plen = 0;
            }
            r->part[r->plen++] = s[i++];
            continue;
        }
        emit_word(r, r->part, r->plen, fn, ctx);
        r->plen = 0;
        size_t j = i;
        while (j < n && !word_byte((unsigned char)s[j])) j++;
        fn(ctx, s + i, j - i, NULL);
        i = j;
    }
}

void restore_flush(struct restore *r, restore_emit_fn fn, void *ctx)
{
    emit_word(r, r->part, r->plen, fn, ctx);
    core_wipe(r->part, r->plen);
    r->plen = 0;
}

struct acc {
    char *buf;
    size_t len, cap;
    const char *open, *close;
    int changed, oom;
};

static void put(struct acc *a, const char *s, size_t n)
{
    if (a->oom) return;
    if (a->len + n + 1 > a->cap) {
        size_t nc = a->cap ? a->cap : 64;
        while (nc < a->len + n + 1) nc *= 2;
        char *nb = realloc(a->buf, nc);
        if (!nb) {
            a->oom = 1;
            return;
        }
        a->buf = nb;
        a->cap = nc;
    }
    memcpy(a->buf + a->len, s, n);
    a->len += n;
    a->buf[a->len] = 0;
}

static void acc_emit(void *ctx, const char *s, size_t n, const char *orig)
{
    struct acc *a = ctx;
    if (!orig) {
        put(a, s, n);
        return;
    }
    a->changed = 1;
    put(a, a->open, strlen(a->open));
    put(a, orig, strlen(orig));
    put(a, a->close, strlen(a->close));
}

char *restore_text(const struct restore *r, const char *s, size_t n, const char *open,
                   const char *close, int *changed)
{
    struct restore tmp = { 0 };
    if (r) {
        tmp.p = r->p;
        tmp.n = r->n;
        tmp.cap = r->cap;
    }
    struct acc a = { .open = open, .close = close };
    put(&a, "", 0);
    restore_feed(&tmp, s, n, acc_emit, &a);
    restore_flush(&tmp, acc_emit, &a);
    if (changed) *changed = a.changed;
    if (a.oom) {
        free(a.buf);
        return NULL;
    }
    return a.buf;
}
