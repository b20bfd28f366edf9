/* ui/utf8: strict UTF-8 decoding for everything the UI draws (model output, typed input),
 * so invalid bytes and control characters are shown harmlessly, never sent raw. */
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

#endif
