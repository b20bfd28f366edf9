/* Transcript on a plain stream; see ui/plain.h. */
#include "ui/plain.h"

#include <string.h>

#include "ui/utf8.h"

void plain_write_safe(FILE *f, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        if (c < 0x80) {
            fputc(c == '\n' || c == '\t' || (c >= 0x20 && c != 0x7f) ? (int)c : '?', f);
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = utf8_decode(s + i, n - i, &cp);
        if (!l || (cp >= 0x80 && cp < 0xa0)) {
            fputs("\xef\xbf\xbd", f);
            i++;
            continue;
        }
        fwrite(u + i, 1, l, f);
        i += l;
    }
}

void plain_init(struct plain *p, FILE *out)
{
    memset(p, 0, sizeof *p);
    p->out = out;
    p->at_bol = 1;
}

static void bol(struct plain *p)
{
    if (!p->at_bol) fputc('\n', p->out);
    p->at_bol = 1;
}

/* Each line of text on a line of its own, after mark. */
static void marked(struct plain *p, const char *mark, const char *text)
{
    bol(p);
    const char *s = text;
    for (;;) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        fputs(mark, p->out);
        plain_write_safe(p->out, s, n);
        fputc('\n', p->out);
        if (!nl) break;
        s = nl + 1;
    }
    fflush(p->out);
}

void plain_user(struct plain *p, const char *text) { marked(p, "> ", text); }

void plain_piece(struct plain *p, const char *s, size_t n)
{
    if (!n) return;
    /* Complete a character left over from the previous piece first. */
    if (utf8_carry_fill(&p->carry, &s, &n)) {
        plain_write_safe(p->out, p->carry.b, p->carry.n);
        p->at_bol = 0;
        p->carry.n = 0;
    }
    size_t k = utf8_carry_keep(&p->carry, s, n);
    plain_write_safe(p->out, s, k);
    if (k) p->at_bol = s[k - 1] == '\n';
    fflush(p->out);
}

void plain_end_answer(struct plain *p)
{
    if (p->carry.n) {
        plain_write_safe(p->out, p->carry.b, p->carry.n);
        p->carry.n = 0;
        p->at_bol = 0;
    }
    bol(p);
    fflush(p->out);
}

void plain_note(struct plain *p, const char *msg) { marked(p, "* ", msg); }
