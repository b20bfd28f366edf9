/* Strict UTF-8; see ui/utf8.h. */
#include "ui/utf8.h"

#include <string.h>

static size_t seq_len(unsigned char c)
{
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) return 2;
    if (c >= 0xe0 && c <= 0xef) return 3;
    if (c >= 0xf0 && c <= 0xf4) return 4;
    return 0;
}

size_t utf8_decode(const char *s, size_t n, uint32_t *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (!n) return 0;
    size_t l = seq_len(u[0]);
    if (!l || n < l) return 0;
    if (l == 1) {
        *cp = u[0];
        return 1;
    }
    uint32_t v = u[0] & (0x7f >> l);
    for (size_t i = 1; i < l; i++) {
        if ((u[i] & 0xc0) != 0x80) return 0;
        v = v << 6 | (u[i] & 0x3f);
    }
    static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
    if (v < min[l] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return l;
}

size_t utf8_incomplete_tail(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    /* Look back at most 3 bytes for a lead byte whose sequence runs past the end. */
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = u[n - back];
        if ((c & 0xc0) == 0x80) continue;
        size_t l = seq_len(c);
        if (l > back) {
            /* Check the second byte's range as the full decoder would, where present. */
            if (back >= 2) {
                unsigned char c2 = u[n - back + 1];
                if ((c == 0xe0 && c2 < 0xa0) || (c == 0xed && c2 > 0x9f) ||
                    (c == 0xf0 && c2 < 0x90) || (c == 0xf4 && c2 > 0x8f))
                    return 0;
            }
            return back;
        }
        return 0;
    }
    return 0;
}

int utf8_carry_fill(struct utf8_carry *c, const char **s, size_t *n)
{
    while (c->n && *n) {
        c->b[c->n++] = *(*s)++;
        (*n)--;
        uint32_t cp;
        if (utf8_decode(c->b, c->n, &cp) || c->n == 4 || !utf8_incomplete_tail(c->b, c->n))
            return 1;
    }
    return 0;
}

size_t utf8_carry_keep(struct utf8_carry *c, const char *s, size_t n)
{
    size_t tail = utf8_incomplete_tail(s, n);
    memcpy(c->b + c->n, s + n - tail, tail);
    c->n += tail;
    return n - tail;
}

size_t utf8_encode(uint32_t cp, char *out)
{
    unsigned char *o = (unsigned char *)out;
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
    o[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

#include <string.h>
#include <wchar.h>

size_t utf8_cell(const char *s, size_t n, char out[8], int *width)
{
    unsigned char c = (unsigned char)s[0];
    if (c == '\n') {
        out[0] = '\n';
        out[1] = 0;
        *width = 0;
        return 1;
    }
    if (c == '\t') {
        out[0] = ' ';
        out[1] = 0;
        *width = 1;
        return 1;
    }
    if (c < 0x20 || c == 0x7f) {
        out[0] = '^';
        out[1] = c == 0x7f ? '?' : (char)(c + 0x40);
        out[2] = 0;
        *width = 2;
        return 1;
    }
    uint32_t cp;
    size_t l = utf8_decode(s, n, &cp);
    int w = l ? wcwidth((wchar_t)cp) : -1;
    if (!l || w < 0 || (cp >= 0x80 && cp < 0xa0)) {
        memcpy(out, "\xef\xbf\xbd", 4);
        *width = 1;
        return l ? l : 1;
    }
    memcpy(out, s, l);
    out[l] = 0;
    *width = w;
    return l;
}

int utf8_fit(const char *s, size_t n, int cols, char *out, size_t cap)
{
    size_t o = 0;
    int used = 0;
    if (!cap) return 0;
    size_t i = 0;
    while (i < n) {
        char cell[8];
        int w;
        size_t k = utf8_cell(s + i, n - i, cell, &w);
        if (cell[0] == '\n') {   /* one line: newlines shown as a return symbol */
            memcpy(cell, "\xe2\x8f\x8e", 4);
            w = 1;
        }
        size_t cl = strlen(cell);
        /* Leave room for the ellipsis unless this is the last cell and it fits. */
        int last = i + k >= n;
        if (used + w > cols - (last ? 0 : 1) || o + cl + 4 > cap) {
            if (used + 1 <= cols && o + 4 <= cap) {
                memcpy(out + o, "\xe2\x80\xa6", 3);
                o += 3;
                used++;
            }
            break;
        }
        memcpy(out + o, cell, cl);
        o += cl;
        used += w;
        i += k;
    }
    out[o] = 0;
    return used;
}

int utf8_width(const char *s, size_t n)
{
    int w = 0, cw;
    char cell[8];
    size_t i = 0;
    while (i < n) {
        i += utf8_cell(s + i, n - i, cell, &cw);
        w += cw;
    }
    return w;
}
