/* libFuzzer target for app/template (built by `make fuzz`, run by tests/fuzz.sh): template
 * detection on arbitrary GGUF chat_template text, name parsing, and the rendering of a
 * turn from an arbitrary system prompt and message.
 *
 * Input: a kind byte, then the system prompt and the message separated by the first NUL
 * (the whole input is also fed to tmpl_detect and tmpl_parse). A rendered turn must have at
 * most TMPL_MAX_SEGS segments, template text inside the turn's own buffer and user text
 * exactly the caller's strings: the message as one user segment, verbatim, and the system
 * prompt of a first turn likewise; nothing of the caller's text may be in a template segment;
 * tmpl_flatten must agree with the segments. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/template.h"

static int inside(const char *p, size_t n, const char *base, size_t blen)
{
    return p >= base && p <= base + blen && n <= (size_t)(base + blen - p);
}

/* Bytes a trim may remove: ASCII whitespace, and the bytes of the Unicode spaces it knows
 * (all >= 0x80); no other ASCII byte. */
static int trimmable(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (!(c == ' ' || (c >= '\t' && c <= '\r') || c >= 0x80)) return 0;
    }
    return 1;
}

/* seg is str (len bytes) itself, or where trim is allowed, str less some whitespace at its
 * ends (nothing left: an empty seg is never added). */
static int is_text(const struct tmpl_seg *seg, const char *str, size_t len, int trim)
{
    if (!inside(seg->text, seg->len, str, len) || !seg->len) return 0;
    if (!trim) return seg->text == str && seg->len == len;
    size_t lead = (size_t)(seg->text - str);
    return trimmable(str, lead) && trimmable(seg->text + seg->len, len - lead - seg->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int known = 1;
    int k = tmpl_detect((const char *)data, size, &known);
    if (k < 0 || k >= TMPL_COUNT || (known != 0 && known != 1)) abort();
    char *name = malloc(size + 1);
    if (!name) return 0;
    memcpy(name, data, size);
    name[size] = 0;
    int pk = tmpl_parse(name);
    if (pk < -1 || pk >= TMPL_COUNT) abort();
    if (pk >= 0 && strcmp(tmpl_name(pk), name) != 0 && tmpl_parse(tmpl_name(pk)) != pk) abort();
    free(name);
    if (size < 1) return 0;
    int kind = data[0] % TMPL_COUNT, first = (data[0] >> 4) & 1;
    /* system\0user (NUL-terminated copies: the renderer takes C strings) */
    const char *rest = (const char *)data + 1;
    size_t rn = size - 1;
    const char *nul = memchr(rest, 0, rn);
    size_t sl = nul ? (size_t)(nul - rest) : 0;
    const char *u = nul ? nul + 1 : rest;
    size_t ul = rn - (size_t)(u - rest);
    char *sys = malloc(sl + 1), *user = malloc(ul + 1);
    if (!sys || !user) abort();
    memcpy(sys, rest, sl);
    sys[sl] = 0;
    memcpy(user, u, ul);
    user[ul] = 0;
    ul = strlen(user);   /* a NUL inside the message ends it, as for a C string */
    static struct tmpl_turn turn;
    memset(&turn, 0xA5, sizeof turn);
    tmpl_render_turn(kind, first, nul ? sys : NULL, user, &turn);
    if (turn.n < 0 || turn.n > TMPL_MAX_SEGS || turn.n_head < 0 || turn.n_head > turn.n)
        abort();
    size_t total = 0;
    int user_segs = 0, sys_segs = 0, user_at = -1;
    int trim = kind == TMPL_LLAMA2 || kind == TMPL_LLAMA3, sys_trim = kind == TMPL_LLAMA3;
    for (int i = 0; i < turn.n; i++) {
        const struct tmpl_seg *s = &turn.seg[i];
        if (s->kind != TMPL_SEG_TEMPLATE && s->kind != TMPL_SEG_USER) abort();
        if (s->len && !s->text) abort();
        total += s->len;
        int in_user = inside(s->text, s->len, user, ul), in_sys = inside(s->text, s->len, sys, sl);
        if (s->kind == TMPL_SEG_TEMPLATE) {
            if (s->len && (in_user || in_sys)) abort();   /* user text parsed as template */
            if (!inside(s->text, s->len, turn.tbuf, turn.tlen)) abort();
        } else {
            if (in_user && is_text(s, user, ul, trim)) {
                user_segs++;
                user_at = i;
            } else if (in_sys && is_text(s, sys, sl, sys_trim)) {
                sys_segs++;
                if (turn.sys_seg != i) abort();
            } else {
                abort();
            }
        }
    }
    /* A message or system prompt of whitespace alone may vanish where the template trims. */
    int want_sys = first && nul && sl > 0;
    if (trim ? user_segs > 1 || (user_segs == 0 && !trimmable(user, ul)) : user_segs != (ul > 0))
        abort();
    if (sys_trim ? sys_segs > want_sys || (want_sys && !sys_segs && !trimmable(sys, sl))
                 : sys_segs != want_sys)
        abort();
    if (!sys_segs && turn.sys_seg != -1) abort();
    size_t need = tmpl_flatten(&turn, NULL, 0);
    if (need != total) abort();
    char *flat = malloc(need + 1);
    if (!flat) abort();
    if (tmpl_flatten(&turn, flat, need + 1) != need) abort();
    if (user_at >= 0 && !memmem(flat, need, turn.seg[user_at].text, turn.seg[user_at].len)) abort();
    free(flat);
    free(sys);
    free(user);
    (void)tmpl_answer_end(kind);
    (void)tmpl_after_eog(kind);
    return 0;
}
