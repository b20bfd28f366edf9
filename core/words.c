/* core/words: word units of user text and their treatment by a fixed public rule. */
#include "core/util.h"
#include "core/words.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tokenizer.h"

/* The list embedded at build time from assets/public-words.txt (build/gen/public_words.c). */
extern const char core_public_words[];
extern const size_t core_public_words_len;

#define WORD_MAX 48 /* longer words are never in the list */

struct words_list {
    const char *text; /* owned copy, lowercase, words separated by '\n' */
    uint32_t *slot;   /* open addressing: offset + 1 into text, 0 = empty */
    uint8_t *slen;
    size_t cap, n;
};

static uint32_t fnv(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 16777619u;
    return h;
}

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c; }
static char upper(char c) { return c >= 'a' && c <= 'z' ? (char)(c - 32) : c; }
static int is_up(char c) { return c >= 'A' && c <= 'Z'; }
static int is_low(char c) { return c >= 'a' && c <= 'z'; }

static int find(const struct words_list *pl, const char *w, size_t n)
{
    for (size_t i = fnv(w, n) & (pl->cap - 1);; i = (i + 1) & (pl->cap - 1)) {
        if (!pl->slot[i]) return 0;
        if (pl->slen[i] == n && !memcmp(pl->text + pl->slot[i] - 1, w, n)) return 1;
    }
}

int words_list_open(struct words_list **out, const char *text, size_t len, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (!text) {
        text = core_public_words;
        len = core_public_words_len;
    }
    if (len >= UINT32_MAX) {
        util_seterr(err, errlen, "public word list too large");
        return -1;
    }
    struct words_list *pl = calloc(1, sizeof *pl);
    char *t = malloc(len + 1);
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += text[i] == '\n';
    size_t cap = 16;
    while (cap < 2 * lines) cap *= 2;
    if (pl) {
        pl->slot = calloc(cap, sizeof *pl->slot);
        pl->slen = calloc(cap, 1);
    }
    if (!pl || !t || !pl->slot || !pl->slen) {
        free(t);
        if (pl) { free(pl->slot); free(pl->slen); }
        free(pl);
        util_seterr(err, errlen, "out of memory for the public word list");
        return -1;
    }
    for (size_t i = 0; i < len; i++) t[i] = lower(text[i]);
    t[len] = 0;
    pl->text = t;
    pl->cap = cap;
    for (size_t p = 0; p < len;) {
        size_t e = p;
        while (e < len && t[e] != '\n') e++;
        size_t a = p, b = e;
        while (a < b && (t[a] == ' ' || t[a] == '\t')) a++;
        while (b > a && (t[b - 1] == ' ' || t[b - 1] == '\t' || t[b - 1] == '\r')) b--;
        if (b > a && t[a] != '#' && b - a <= WORD_MAX && !find(pl, t + a, b - a)) {
            size_t i = fnv(t + a, b - a) & (cap - 1);
            while (pl->slot[i]) i = (i + 1) & (cap - 1);
            pl->slot[i] = (uint32_t)(a + 1);
            pl->slen[i] = (uint8_t)(b - a);
            pl->n++;
        }
        p = e + 1;
    }
    *out = pl;
    return 0;
}

void words_list_close(struct words_list *pl)
{
    if (!pl) return;
    free((char *)pl->text);
    free(pl->slot);
    free(pl->slen);
    free(pl);
}

size_t words_list_size(const struct words_list *pl) { return pl ? pl->n : 0; }

int words_list_has(const struct words_list *pl, const char *word, size_t n)
{
    char buf[WORD_MAX];
    if (!pl || n == 0 || n > WORD_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        if ((uint8_t)word[i] >= 0x80) return 0;
        buf[i] = lower(word[i]);
    }
    return find(pl, buf, n);
}

/* ---- case ---------------------------------------------------------------------------- */

int words_case_of(const char *w, size_t n)
{
    size_t up = 0, low = 0;
    int first = -1; /* case of the first ASCII letter: 1 upper, 0 lower */
    for (size_t i = 0; i < n; i++) {
        if (is_up(w[i])) {
            if (first < 0) first = 1;
            up++;
        } else if (is_low(w[i])) {
            if (first < 0) first = 0;
            low++;
        }
    }
    if (up + low == 0) return WORDS_CASE_NONE;
    if (up == 0) return WORDS_CASE_LOWER;
    if (first == 1 && up == 1) return WORDS_CASE_CAPITALIZED;
    if (low == 0) return WORDS_CASE_UPPER;
    return WORDS_CASE_MIXED;
}

void words_apply_case(char *dst, const char *src, size_t n, int pattern)
{
    int seen = 0;
    for (size_t i = 0; i < n; i++) {
        char c = src[i];
        int letter = is_up(c) || is_low(c);
        switch (pattern) {
        case WORDS_CASE_LOWER: c = lower(c); break;
        case WORDS_CASE_UPPER: c = upper(c); break;
        case WORDS_CASE_CAPITALIZED: c = letter && !seen ? upper(c) : lower(c); break;
        default: break;
        }
        seen |= letter;
        dst[i] = c;
    }
}

/* ---- random replacement -------------------------------------------------------------- */

size_t words_randomize(const char *in, size_t n, char *out, words_rand_fn rnd)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = tok_utf8_next(in + i, n - i, &cp);
        if (l == 0) { /* not UTF-8: copied */
            out[o++] = in[i++];
            continue;
        }
        int k = tok_cp_class(cp);
        if (k == TOK_CP_LETTER)
            out[o++] = (char)((cp >= 'A' && cp <= 'Z' ? 'A' : 'a') + rnd(26));
        else if (k == TOK_CP_NUMBER)
            out[o++] = (char)('0' + rnd(10));
        else if (k != TOK_CP_MARK)
            memmove(out + o, in + i, l), o += l;
        i += l;
    }
    return o;
}

/* ---- splitting ----------------------------------------------------------------------- */

/* Class of the code point at c[p] (TOK_CP_*), its length in *l; -1 with *l = 1 for a byte
 * that is not UTF-8; -2 past the end. */
static int cls_at(const char *c, size_t m, size_t p, size_t *l, uint32_t *cpo)
{
    uint32_t cp = 0;
    if (p >= m) {
        *l = 0;
        return -2;
    }
    *l = tok_utf8_next(c + p, m - p, &cp);
    if (cpo) *cpo = cp;
    if (*l == 0) {
        *l = 1;
        return -1;
    }
    return tok_cp_class(cp);
}

static int is_apos(uint32_t cp) { return cp == '\'' || cp == 0x2019; }
static int is_word_cls(int k) { return k == TOK_CP_LETTER || k == TOK_CP_NUMBER; }

/* End of the word run starting at p (a letter or digit); *digit set when it holds one. */
static size_t word_end(const char *c, size_t m, size_t p, int *digit)
{
    int prev_letter = 0;
    *digit = 0;
    for (;;) {
        size_t l;
        uint32_t cp;
        int k = cls_at(c, m, p, &l, &cp);
        if (k == TOK_CP_LETTER || k == TOK_CP_MARK) {
            prev_letter = 1;
        } else if (k == TOK_CP_NUMBER) {
            *digit = 1;
            prev_letter = 0;
        } else if (k == TOK_CP_OTHER && is_apos(cp) && prev_letter) {
            size_t l2;
            if (cls_at(c, m, p + l, &l2, NULL) != TOK_CP_LETTER) return p;
            prev_letter = 0;
        } else {
            return p;
        }
        p += l;
    }
}

static int push(struct words_unit *u, size_t max, size_t *n, size_t off, size_t len, int cls)
{
    if (*n >= max) return -1;
    u[*n] = (struct words_unit){ .off = off, .len = len, .cls = cls, .treat = 0, .marked = 0 };
    (*n)++;
    return 0;
}

static int segment(const char *c, size_t m, struct words_unit *u, size_t max, size_t *n)
{
    *n = 0;
    for (size_t p = 0; p < m;) {
        size_t l, l2, e;
        int digit;
        int k = cls_at(c, m, p, &l, NULL);
        if (k == -1) {
            if (push(u, max, n, p, 1, WORDS_PUNCT)) return -1;
            p++;
            continue;
        }
        if (c[p] == ' ' && is_word_cls(cls_at(c, m, p + 1, &l2, NULL))) {
            e = word_end(c, m, p + 1, &digit);
            if (push(u, max, n, p, e - p, digit ? WORDS_NUMBER : WORDS_ALPHA)) return -1;
            p = e;
            continue;
        }
        if (k == TOK_CP_SPACE) {
            e = p;
            size_t last = p;
            while (cls_at(c, m, e, &l2, NULL) == TOK_CP_SPACE) last = e, e += l2;
            /* leave a final plain space to the word that follows */
            if (e - p > 1 && c[last] == ' ' && last + 1 == e &&
                is_word_cls(cls_at(c, m, e, &l2, NULL)))
                e = last;
            if (push(u, max, n, p, e - p, WORDS_SPACE)) return -1;
            p = e;
            continue;
        }
        if (is_word_cls(k)) {
            e = word_end(c, m, p, &digit);
            if (push(u, max, n, p, e - p, digit ? WORDS_NUMBER : WORDS_ALPHA)) return -1;
            p = e;
            continue;
        }
        e = p + l; /* other code points and marks with no letter before them */
        for (;;) {
            int k2 = cls_at(c, m, e, &l2, NULL);
            if (k2 != TOK_CP_OTHER && k2 != TOK_CP_MARK) break;
            e += l2;
        }
        if (push(u, max, n, p, e - p, WORDS_PUNCT)) return -1;
        p = e;
    }
    return 0;
}

/* Removes {{ }} markers from text into clean; records the marked spans (clean offsets) as
 * units at the back of u (from max - 1 downwards). Returns the number of spans. */
static size_t strip_marks(const char *t, size_t len, char *clean, size_t *clen,
                          struct words_unit *u, size_t max)
{
    size_t o = 0, spans = 0, start = 0;
    int open = 0;
    for (size_t i = 0; i < len;) {
        if (i + 1 < len && t[i] == '{' && t[i + 1] == '{') {
            i += 2;
            if (i < len && t[i] == ' ') i++;
            if (!open) open = 1, start = o;
            continue;
        }
        if (open && i + 1 < len && t[i] == '}' && t[i + 1] == '}') {
            i += 2;
            if (o > start && clean[o - 1] == ' ') o--; /* the space before "}}" */
            open = 0;
            u[max - 1 - spans] = (struct words_unit){ .off = start, .len = o - start };
            spans++;
            continue;
        }
        clean[o++] = t[i++];
    }
    if (open) {
        u[max - 1 - spans] = (struct words_unit){ .off = start, .len = o - start };
        spans++;
    }
    *clen = o;
    return spans;
}

static int lower_eq(const char *a, size_t n, const char *lit)
{
    size_t k = strlen(lit);
    if (n != k) return 0;
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lit[i]) return 0;
    return 1;
}

static int is_open_char(const char *s, size_t n)
{
    static const char *const open[] = { "(", "<", "[", "\"", "'", "\xe2\x80\x9c", "\xe2\x80\x98",
                                        "\xc2\xab" };
    for (size_t i = 0; i < sizeof open / sizeof open[0]; i++) {
        size_t k = strlen(open[i]);
        if (k <= n && !memcmp(s, open[i], k)) return (int)k;
    }
    return 0;
}

static int is_close_char(const char *s, size_t n) /* at the end of s[0..n) */
{
    static const char *const close[] = { ".", ",", ";", ":", "!", "?", ")", ">", "]", "\"", "'",
                                         "\xe2\x80\x9d", "\xe2\x80\x99", "\xc2\xbb" };
    for (size_t i = 0; i < sizeof close / sizeof close[0]; i++) {
        size_t k = strlen(close[i]);
        if (k <= n && !memcmp(s + n - k, close[i], k)) return (int)k;
    }
    return 0;
}

static int is_address(const char *s, size_t n)
{
    for (size_t i = 0; i + 3 <= n; i++)
        if (s[i] == ':' && s[i + 1] == '/' && s[i + 2] == '/') return 1;
    if (n > 4 && lower_eq(s, 4, "www.")) return 1;
    const char *at = memchr(s, '@', n);
    if (!at || at == s) return 0;
    for (const char *d = at + 2; d + 1 < s + n; d++)
        if (*d == '.') return 1;
    return 0;
}

/* Marks the letter/digit units inside e-mail addresses and URLs. */
static void mark_addresses(const char *c, size_t m, struct words_unit *u, size_t n)
{
    size_t ui = 0;
    for (size_t p = 0; p < m;) {
        size_t l;
        if (cls_at(c, m, p, &l, NULL) == TOK_CP_SPACE) {
            p += l;
            continue;
        }
        size_t e = p;
        while (e < m && cls_at(c, m, e, &l, NULL) != TOK_CP_SPACE) e += l;
        size_t a = p, b = e;
        int k;
        while (a < b && (k = is_open_char(c + a, b - a))) a += (size_t)k;
        while (b > a && (k = is_close_char(c + a, b - a))) b -= (size_t)k;
        if (b > a && is_address(c + a, b - a)) {
            while (ui < n && u[ui].off + u[ui].len <= a) ui++;
            for (size_t j = ui; j < n && u[j].off < b; j++)
                if (u[j].cls == WORDS_ALPHA || u[j].cls == WORDS_NUMBER)
                    u[j].marked |= WORDS_MARK_ADDRESS;
        }
        p = e;
    }
}

/* The stem of a contraction that decides whether it is public ("don't" → "do"), or NULL
 * with *sn = 0 when the word has an apostrophe but is not a known contraction. */
static const char *contraction_stem(const char *w, size_t n, size_t *sn)
{
    size_t i = 0, al = 0;
    while (i < n && w[i] != '\'' && !(i + 3 <= n && !memcmp(w + i, "\xe2\x80\x99", 3))) i++;
    if (i == n) {
        *sn = n;
        return w;
    }
    al = w[i] == '\'' ? 1 : 3;
    const char *suf = w + i + al;
    size_t sl = n - i - al;
    *sn = 0;
    if (lower_eq(suf, sl, "t")) {
        if (i < 2 || lower(w[i - 1]) != 'n') return NULL;
        static const char *const irregular[] = { "ca", "wo", "ai", "sha" };
        for (size_t k = 0; k < 4; k++)
            if (lower_eq(w, i - 1, irregular[k])) {
                *sn = 1;
                return "i"; /* always public */
            }
        *sn = i - 1;
        return w;
    }
    static const char *const sufs[] = { "s", "re", "ve", "ll", "d", "m" };
    for (size_t k = 0; k < 6; k++)
        if (lower_eq(suf, sl, sufs[k])) {
            *sn = i;
            return w;
        }
    return NULL;
}

static int auto_public(const struct words_list *pl, const char *w, size_t n, int sent_start)
{
    size_t sn;
    const char *stem = contraction_stem(w, n, &sn);
    if (!stem || sn == 0) return 0;
    for (size_t i = 0; i < n; i++) { /* ASCII letters and apostrophes only */
        if ((uint8_t)w[i] < 0x80) continue;
        if (i + 3 <= n && !memcmp(w + i, "\xe2\x80\x99", 3)) {
            i += 2;
            continue;
        }
        return 0;
    }
    if (lower_eq(stem, sn, "i")) return 1;
    if (!words_list_has(pl, stem, sn)) return 0;
    int cs = words_case_of(w, n);
    if (cs == WORDS_CASE_LOWER) return 1;
    if (cs == WORDS_CASE_CAPITALIZED || cs == WORDS_CASE_UPPER) return sent_start;
    return 0;
}

static void decide(const struct words_list *pl, int mode, const char *c, struct words_unit *u,
                   size_t n)
{
    int sent_start = 1;
    for (size_t i = 0; i < n; i++) {
        struct words_unit *x = &u[i];
        const char *s = c + x->off;
        if (x->cls == WORDS_SPACE) {
            if (memchr(s, '\n', x->len)) sent_start = 1;
            x->treat = WORDS_CONTROL;
            continue;
        }
        if (x->cls == WORDS_PUNCT) {
            size_t a = 0;
            int k;
            while (a < x->len && (k = is_open_char(s + a, x->len - a))) a += (size_t)k;
            if (a < x->len) sent_start = s[x->len - 1] && strchr(".!?:", s[x->len - 1]);
            x->treat = WORDS_CONTROL;
            continue;
        }
        int start = sent_start;
        sent_start = 0;
        if (x->marked & WORDS_MARK_ADDRESS) x->treat = WORDS_RANDOM;
        else if (x->cls == WORDS_NUMBER)
            x->treat = mode == WORDS_MARKED && !(x->marked & WORDS_MARK_USER) ? WORDS_PUBLIC
                                                                             : WORDS_RANDOM;
        else if (x->marked & WORDS_MARK_USER) x->treat = WORDS_SANITIZE;
        else if (mode == WORDS_ALL) x->treat = WORDS_SANITIZE;
        else if (mode == WORDS_MARKED) x->treat = WORDS_PUBLIC;
        else {
            size_t sp = s[0] == ' ';
            x->treat = auto_public(pl, s + sp, x->len - sp, start) ? WORDS_PUBLIC : WORDS_SANITIZE;
        }
    }
}

int words_split(const struct words_list *pl, int mode, const char *text, size_t len,
                struct words_unit *units, size_t max_units, size_t *n_units, char *clean,
                size_t *clean_len, char *err, size_t errlen)
{
    *n_units = 0;
    *clean_len = 0;
    if (mode != WORDS_AUTO && mode != WORDS_ALL && mode != WORDS_MARKED) {
        util_seterr(err, errlen, "unknown sanitize mode %d", mode);
        return -1;
    }
    if (mode == WORDS_AUTO && !pl) {
        util_seterr(err, errlen, "sanitize mode auto needs the public word list");
        return -1;
    }
    if (max_units < len + 1) {
        util_seterr(err, errlen, "room for %zu word units, %zu needed", max_units, len + 1);
        return -1;
    }
    size_t m, n;
    /* Marked spans wait at the back of units: s spans remove at least 2s bytes, so the
     * units (at most one per clean byte) never reach them before they are read. */
    size_t spans = strip_marks(text, len, clean, &m, units, max_units);
    size_t first_span = max_units - spans;
    if (segment(clean, m, units, first_span, &n)) {
        util_seterr(err, errlen, "too many word units");
        return -1;
    }
    for (size_t j = 0, ui = 0; j < spans; j++) {
        size_t a = units[max_units - 1 - j].off, b = a + units[max_units - 1 - j].len;
        while (ui < n && units[ui].off + units[ui].len <= a) ui++;
        for (size_t k = ui; k < n && units[k].off < b; k++) units[k].marked |= WORDS_MARK_USER;
    }
    mark_addresses(clean, m, units, n);
    decide(pl, mode, clean, units, n);
    *n_units = n;
    *clean_len = m;
    return 0;
}

const char *words_cls_name(int cls)
{
    static const char *const k[] = { "?", "alpha", "number", "punct", "space" };
    return cls >= 1 && cls <= 4 ? k[cls] : "?";
}

const char *words_treat_name(int treat)
{
    static const char *const k[] = { "?", "public", "sanitize", "random", "control" };
    return treat >= 1 && treat <= 4 ? k[treat] : "?";
}

const char *words_mode_name(int mode)
{
    static const char *const k[] = { "auto", "all", "marked" };
    return mode >= 0 && mode <= 2 ? k[mode] : "?";
}

int words_mode_parse(const char *s)
{
    for (int i = 0; i <= 2; i++)
        if (s && !strcmp(s, words_mode_name(i))) return i;
    return -1;
}
