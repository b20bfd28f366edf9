/* ui/utf8: strict UTF-8 decoding for everything the UI draws (model output, typed input),
 * so invalid bytes and control characters are shown harmlessly, never sent raw; and the
 * carry that joins a character split between two streamed pieces (the transcript and
 * plain mode both stream the answer). The one UTF-8 decoder of ui/. */
#ifndef CMIF_UI_UTF8_H
#define CMIF_UI_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Decodes one code point at s (n bytes available): its length 1..4, or 0 when the bytes
 * are not valid UTF-8 (overlong, surrogate, > U+10FFFF, truncated). */
size_t utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Bytes at the end of s that start a valid but incomplete sequence (0..3): a streamed
 * token may end in the middle of a character; keep these for the next piece. */
size_t utf8_incomplete_tail(const char *s, size_t n);
/* Appends the UTF-8 encoding of cp to out (4 bytes room), returns its length. */
size_t utf8_encode(uint32_t cp, char *out);

/* A character split between two streamed pieces: a token may end in the middle of one. */
struct utf8_carry {
    char b[4];
    size_t n;
};
/* Completes a carried character with the first bytes of the piece *s (*n bytes), consuming
 * them. 1 when c->b holds c->n bytes to show now (a whole character, or bytes that cannot
 * become one): the caller shows them and sets c->n to 0. 0 while the piece ran out first. */
int utf8_carry_fill(struct utf8_carry *c, const char **s, size_t *n);
/* After the carry is shown (or when n is 0): keeps the incomplete character at the end of
 * s for the next piece and returns how many bytes of s can be shown now. */
size_t utf8_carry_keep(struct utf8_carry *c, const char *s, size_t n);

#endif

#ifndef CMIF_UI_UTF8_CELL
#define CMIF_UI_UTF8_CELL
/* The next display unit of s (n > 0 bytes): what to draw for it (sanitized UTF-8 in out,
 * at most 8 bytes, NUL-terminated) and its width in columns. C0/C1 controls and DEL are
 * shown as ^X (width 2), invalid bytes and unprintable code points as U+FFFD, tabs as a
 * space. '\n' is returned as itself with width 0; callers break lines on it. Returns the
 * bytes of s consumed (>= 1). Needs setlocale(LC_CTYPE) for wcwidth. */
size_t utf8_cell(const char *s, size_t n, char out[8], int *width);
/* Sanitized copy of s that fits in `cols` columns ("…" marks a cut), NUL-terminated in
 * out. Returns the columns used. */
int utf8_fit(const char *s, size_t n, int cols, char *out, size_t cap);
/* Display width of s as utf8_cell draws it (newlines count 0). */
int utf8_width(const char *s, size_t n);
#endif
