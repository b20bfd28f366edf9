/* ui/transcript: the conversation pane. Entries (your messages, streamed answers, notices)
 * are kept as text and wrapped at draw time by display width (wcwidth), so a resize
 * re-wraps everything; scrollback is counted in rows from the bottom. What is drawn is
 * sanitized (controls as ^X, invalid UTF-8 as U+FFFD). Pure layout functions are separate
 * from drawing so they can be tested without a terminal. */
#ifndef CMIF_UI_TRANSCRIPT_H
#define CMIF_UI_TRANSCRIPT_H

#include <stddef.h>

#include "ui/utf8.h"

enum tr_style { TR_USER = 0, TR_ANSWER, TR_INFO, TR_ERROR };

struct md;

struct tr_entry {
    int style;
    char *text;
    size_t len, cap;
    struct md *md;          /* an answer as Markdown shows it (markdown on), else NULL */
};

struct transcript {
    struct tr_entry *e;
    size_t n, cap;
    size_t max_entries;     /* scrollback bound: the oldest entries go first */
    int scroll;             /* rows scrolled back from the bottom (0 = follow the end) */
    struct utf8_carry carry;   /* a character split between two streamed pieces */
    int markdown;           /* answers drawn as Markdown (ui/markdown); off: as written */
};

/* One wrapped row: bytes [off, off+len) of entry idx's shown text (transcript_shown);
 * first: the entry's first row; indent: columns left blank before it (the hanging indent
 * of a list item's later rows, a code block's margin). */
struct tr_row {
    size_t idx, off, len;
    int first;
    int indent;
};

void transcript_init(struct transcript *t, size_t max_entries);
void transcript_free(struct transcript *t);
void transcript_clear(struct transcript *t);
/* A new entry. 0 or -1 (out of memory). */
int transcript_add(struct transcript *t, int style, const char *text, size_t len);
/* Streams text onto the last entry (a new TR_ANSWER entry when the last one is not an
 * answer still open). A character split across calls is held back until complete. */
int transcript_append(struct transcript *t, const char *text, size_t len);
/* Ends the streamed answer (flushes a held-back partial character). */
void transcript_end_answer(struct transcript *t);
/* Markdown display of answers on or off (all of them, shown again). The entries' text
 * stays as written either way. 0 or -1 (out of memory: answers shown as written). */
int transcript_set_markdown(struct transcript *t, int on);
/* What is drawn for an entry: its text, or its Markdown display text with one MD_* set
 * per byte (*attr NULL when the text is shown as written). */
void transcript_shown(const struct tr_entry *e, const char **text, size_t *len,
                      const unsigned char **attr);

/* Wraps one text for `width` columns (>= 1): words move to the next row when they fit
 * there, longer runs break anywhere. Calls fn for each row; returns the row count. */
size_t transcript_wrap(const char *s, size_t n, int width,
                       void (*fn)(void *ctx, size_t off, size_t len), void *ctx);
/* All rows of the transcript for a pane `width` columns wide (entries are indented by a
 * 2-column marker, and a blank row precedes each of your messages). *rows is malloc'd. */
int transcript_layout(const struct transcript *t, int width, struct tr_row **rows, size_t *n);

/* Scrolls by delta rows (positive = back in time), clamped for a pane of height rows. */
void transcript_scroll(struct transcript *t, int delta, int width, int height);

#endif
