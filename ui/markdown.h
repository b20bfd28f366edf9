/* ui/markdown: how an answer is shown in the transcript when it is written in Markdown.
 * The model's text is turned into display text with one attribute byte per display byte:
 * fenced code blocks (no Markdown inside; the fence lines hidden, the language label kept),
 * inline `code`, **bold** / __bold__, *italic* / _italic_ where unambiguous, bullet lists
 * (the marker drawn as a bullet, continuation rows hung under the text) and # headings.
 * Display only: the transcript keeps the model's text as it was written (/copy, /save and
 * line mode use that). Streaming: an answer grows a piece at a time, so lines that ended
 * are rendered once and kept (with whether a code block is open after them); only the line
 * still being written is rendered again on each update. A marker that has not closed (yet,
 * or ever) is shown as written: no character is dropped or moved. Delimiters are ASCII, so
 * a multi-byte character is never split. */
#ifndef CMIF_UI_MARKDOWN_H
#define CMIF_UI_MARKDOWN_H

#include <stddef.h>

enum {
    MD_BOLD = 1,
    MD_ITALIC = 2,
    MD_CODE = 4,     /* inline code span */
    MD_BLOCK = 8,    /* a line of a fenced code block (its '\n' included) */
    MD_FENCE = 16,   /* the language label of an opening fence */
    MD_BULLET = 32,  /* a list item's marker and the indentation before it */
    MD_HEAD = 64,    /* a heading's text */
};

struct md {
    char *text;             /* display text (not NUL-terminated) */
    unsigned char *attr;    /* one MD_* set per byte of text */
    size_t len, cap;
    size_t src_done;        /* source bytes of the lines that ended, rendered for good */
    size_t len_done;        /* display bytes they gave */
    int fence_done;         /* a code block is open after them: its fence character... */
    size_t fence_n;         /* ...and length (0: none open) */
    int fence;              /* the same after everything rendered so far */
    size_t fn;
};

void md_init(struct md *m);
/* Wipes (the text is the user's conversation) and frees. */
void md_free(struct md *m);
/* Renders src, the whole answer so far: a longer version of what was given before (a
 * streamed answer grows), or anything after md_free/md_init. 0 or -1 (out of memory). */
int md_update(struct md *m, const char *src, size_t n);

#endif
