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

void plain_user(struct plain *p, const char *text)
{
    bol(p);
    const char *s = text;
    for (;;) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        fputs("> ", p->out);
        plain_write_safe(p->out, s, n);
        fputc('\n', p->out);
        if (!nl) break;
        s = nl + 1;
    }
    fflush(p->out);
}

void plain_piece(struct plain *p, const char *s, size_t n)
{
    if (!n) return;
    /* Complete a character left over from the previous piece first. */
    while (p->ncarry && n) {
        p->carry[p->ncarry++] = *s++;
        n--;
        uint32_t cp;
        if (utf8_decode(p->carry, p->ncarry, &cp) || p->ncarry == 4 ||
            !utf8_incomplete_tail(p->carry, p->ncarry)) {
            plain_write_safe(p->out, p->carry, p->ncarry);
            p->at_bol = 0;
            p->ncarry = 0;
        }
    }
    size_t tail = utf8_incomplete_tail(s, n);
    plain_write_safe(p->out, s, n - tail);
    memcpy(p->carry + p->ncarry, s + n - tail, tail);
    p->ncarry += tail;
    if (n - tail) p->at_bol = s[n - tail - 1] == '\n';
    fflush(p->out);
}

void plain_end_answer(struct plain *p)
{
    if (p->ncarry) {
        plain_write_safe(p->out, p->carry, p->ncarry);
        p->ncarry = 0;
        p->at_bol = 0;
    }
    bol(p);
    fflush(p->out);
}

void plain_note(struct plain *p, const char *msg)
{
    bol(p);
    const char *s = msg;
    for (;;) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        fputs("* ", p->out);
        plain_write_safe(p->out, s, n);
        fputc('\n', p->out);
        if (!nl) break;
        s = nl + 1;
    }
    fflush(p->out);
}
