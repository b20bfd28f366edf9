/* Markdown display of answers; see ui/markdown.h. */
#include "ui/markdown.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

void md_init(struct md *m) { memset(m, 0, sizeof *m); }

/* text and attr share one block: text in its first cap bytes, attr after them. */
void md_free(struct md *m)
{
    if (m->text) sodium_memzero(m->text, 2 * m->cap);
    free(m->text);
    md_init(m);
}

/* Not realloc: the outgrown block would go back to malloc unwiped. */
static int grow(struct md *m, size_t need)
{
    if (m->len + need <= m->cap) return 0;
    size_t nc = m->cap ? m->cap : 128;
    while (nc < m->len + need) nc *= 2;
    char *t = malloc(2 * nc);
    if (!t) return -1;
    if (m->len) {
        memcpy(t, m->text, m->len);
        memcpy(t + nc, m->attr, m->len);
    }
    if (m->text) sodium_memzero(m->text, 2 * m->cap);
    free(m->text);
    m->text = t;
    m->attr = (unsigned char *)t + nc;
    m->cap = nc;
    return 0;
}

static int emit(struct md *m, const char *s, size_t n, int attr)
{
    if (!n) return 0;
    if (grow(m, n) != 0) return -1;
    memcpy(m->text + m->len, s, n);
    memset(m->attr + m->len, attr, n);
    m->len += n;
    return 0;
}

/* Bytes of a UTF-8 multi-byte character count as letters: '_' inside a word is no marker. */
static int wordch(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static size_t run(const char *s, size_t n, size_t i, char c)
{
    size_t j = i;
    while (j < n && s[j] == c) j++;
    return j - i;
}

/* The end of the code span opened by the r backticks at i (the index of its closing run),
 * or 0 when it does not close on this line. */
static size_t code_close(const char *s, size_t n, size_t i, size_t r)
{
    for (size_t j = i + r; j < n;) {
        size_t k = run(s, n, j, '`');
        if (k == r) return j;
        j += k ? k : 1;
    }
    return 0;
}

/* Where the k-character marker c opened at i closes (the closer's index), or 0. A closer
 * follows a non-space; a single marker (italic) or '_' also needs no letter after it, and a
 * single marker skips doubled runs (bold inside italic). Code spans are skipped whole. */
static size_t emph_close(const char *s, size_t n, size_t i, char c, size_t k)
{
    size_t j = i + k;
    while (j < n) {
        if (s[j] == '`') {
            size_t r = run(s, n, j, '`'), e = code_close(s, n, j, r);
            j = e ? e + r : j + r;
            continue;
        }
        if (s[j] != c) {
            j++;
            continue;
        }
        size_t r = run(s, n, j, c);
        int after_ok = j + r >= n || !wordch((unsigned char)s[j + r]);
        if (j > i + k && !space((unsigned char)s[j - 1]) && r >= k && (k == 2 || r == 1) &&
            ((k == 1 || c == '_') ? after_ok : 1))
            return j;
        j += r;
    }
    return 0;
}

static int inline_md(struct md *m, const char *s, size_t n, int attr)
{
    size_t i = 0, lit = 0;   /* s[lit, i) is plain text not yet emitted */
    while (i < n) {
        char c = s[i];
        if (c == '`') {
            size_t r = run(s, n, i, '`'), e = code_close(s, n, i, r);
            if (e) {
                if (emit(m, s + lit, i - lit, attr) || emit(m, s + i + r, e - i - r, attr | MD_CODE))
                    return -1;
                i = lit = e + r;
            } else {
                i += r;
            }
            continue;
        }
        if (c == '*' || c == '_') {
            size_t r = run(s, n, i, c);
            int before_ok = i == 0 || !wordch((unsigned char)s[i - 1]);
            size_t k = r >= 2 ? 2 : 1, e = 0;
            if (i + k < n && !space((unsigned char)s[i + k]) && (r == 2 || k == 1) &&
                (before_ok || (k == 2 && c == '*')))
                e = emph_close(s, n, i, c, k);
            if (e) {
                if (emit(m, s + lit, i - lit, attr) ||
                    inline_md(m, s + i + k, e - i - k, attr | (k == 2 ? MD_BOLD : MD_ITALIC)))
                    return -1;
                i = lit = e + k;
            } else {
                i += r;
            }
            continue;
        }
        i++;
    }
    return emit(m, s + lit, i - lit, attr);
}

/* A fence line: up to 3 spaces, then 3 or more '`' or '~'. Its character and length, or 0. */
static size_t fence_at(const char *s, size_t n, char *ch, size_t *ind)
{
    size_t i = 0;
    *ind = 0;
    while (i < n && i < 3 && s[i] == ' ') i++;
    if (i >= n || (s[i] != '`' && s[i] != '~')) return 0;
    size_t r = run(s, n, i, s[i]);
    if (r < 3) return 0;
    *ch = s[i];
    *ind = i;
    return r;
}

/* One line of the source (its '\n', when it has one, is s[n-1]). */
static int line_md(struct md *m, const char *s, size_t n)
{
    size_t body = n && s[n - 1] == '\n' ? n - 1 : n;
    int nl = body < n;
    char ch = 0;
    size_t ind, r = fence_at(s, body, &ch, &ind);
    if (m->fence) {
        size_t j = ind + r;
        while (j < body && space((unsigned char)s[j])) j++;
        if (r && ch == m->fence && r >= m->fn && j == body) {   /* the closing fence: hidden */
            m->fence = 0;
            m->fn = 0;
            return 0;
        }
        return emit(m, s, n, MD_BLOCK);
    }
    if (r) {
        size_t a = ind + r, b = body;
        while (a < b && space((unsigned char)s[a])) a++;
        while (b > a && space((unsigned char)s[b - 1])) b--;
        if (ch == '`' && memchr(s + a, '`', b - a)) return inline_md(m, s, n, 0);  /* not a fence */
        m->fence = ch;
        m->fn = r;
        if (a == b) return 0;   /* no label: the fence line is hidden */
        return emit(m, s + a, b - a, MD_FENCE) || (nl && emit(m, "\n", 1, MD_BLOCK));
    }
    size_t i = 0;
    while (i < body && i < 3 && s[i] == ' ') i++;
    size_t h = run(s, body, i, '#');
    if (h >= 1 && h <= 6 && (i + h == body || s[i + h] == ' ')) {
        size_t a = i + h;
        while (a < body && s[a] == ' ') a++;
        return inline_md(m, s + a, n - a, MD_HEAD | MD_BOLD);
    }
    i = 0;
    while (i < body && s[i] == ' ') i++;
    if (i + 1 < body && (s[i] == '-' || s[i] == '*' || s[i] == '+') && s[i + 1] == ' ') {
        return emit(m, s, i, MD_BULLET) || emit(m, "\xe2\x80\xa2 ", 4, MD_BULLET) ||
               inline_md(m, s + i + 2, n - i - 2, 0);
    }
    size_t d = 0;
    while (i + d < body && d < 9 && s[i + d] >= '0' && s[i + d] <= '9') d++;
    if (d && i + d + 1 < body && (s[i + d] == '.' || s[i + d] == ')') && s[i + d + 1] == ' ')
        return emit(m, s, i + d + 2, MD_BULLET) || inline_md(m, s + i + d + 2, n - i - d - 2, 0);
    return inline_md(m, s, n, 0);
}

int md_update(struct md *m, const char *src, size_t n)
{
    if (n < m->src_done) {   /* not a continuation: start over */
        md_free(m);
    }
    m->len = m->len_done;
    m->fence = m->fence_done;
    m->fn = m->fence_n;
    size_t i = m->src_done;
    while (i < n) {
        const char *nl = memchr(src + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - src) + 1 : n;
        if (line_md(m, src + i, end - i) != 0) return -1;
        i = end;
        if (nl) {   /* an ended line never changes: kept */
            m->src_done = i;
            m->len_done = m->len;
            m->fence_done = m->fence;
            m->fence_n = m->fn;
        }
    }
    return 0;
}
