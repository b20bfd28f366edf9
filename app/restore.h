/* app/restore: the user's own words back in the model's answer, on the trusted screen only.
 * The substitutes the core sent for the user's words in this conversation (report rows
 * "replaced" and "random": orig ↔ sent) are learnt here; when an answer contains one of
 * them as a whole word, it is shown as the user's original word, marked. The decoder never
 * sees this mapping: it lives in app/ on the UI side and only changes what is drawn, saved
 * or reported. Streaming: a word may arrive in several pieces, so the current partial word
 * is held back until a byte that cannot continue it arrives (restore_flush at the end). */
#ifndef CMIF_APP_RESTORE_H
#define CMIF_APP_RESTORE_H

#include <stddef.h>

struct restore;

/* NULL when out of memory. */
struct restore *restore_open(void);
/* Wipes what it learnt (the user's words) and frees; safe on NULL. */
void restore_close(struct restore *r);
/* Learns that sent stood for orig (leading spaces ignored; nothing when they are equal,
 * empty or not one whole word). A later pair for the same sent word wins. 0 or -1 (memory). */
int restore_learn(struct restore *r, const char *orig, const char *sent);
/* Forgets every pair and the held-back piece (a new conversation). */
void restore_forget(struct restore *r);
/* The original word for a whole sent word of n bytes, or NULL. */
const char *restore_lookup(const struct restore *r, const char *word, size_t n);

/* Output of restore_feed: plain text (orig NULL), or one restored word: orig is the user's
 * word, s/n the model's word it stands for. */
typedef void (*restore_emit_fn)(void *ctx, const char *s, size_t n, const char *orig);
/* Streams answer text through fn; a trailing partial word is held back. */
void restore_feed(struct restore *r, const char *s, size_t n, restore_emit_fn fn, void *ctx);
/* Emits the held-back partial word (end of the answer). */
void restore_flush(struct restore *r, restore_emit_fn fn, void *ctx);
/* The whole text with each restored word written open + orig + close (malloc'd,
 * NUL-terminated; NULL when out of memory). *changed (may be NULL): a word was restored. */
char *restore_text(const struct restore *r, const char *s, size_t n, const char *open,
                   const char *close, int *changed);

#endif
