/* ui/plain: the transcript without a screen (scripted sessions, stdin not a terminal).
 * Input lines are echoed with "> ", answers stream as they are generated, notices start
 * with "* ". Terminal control characters coming from the model are never passed through
 * (they could drive the reader's terminal); newlines and tabs are. */
#ifndef CMIF_UI_PLAIN_H
#define CMIF_UI_PLAIN_H

#include <stddef.h>
#include <stdio.h>

#include "ui/utf8.h"

struct plain {
    FILE *out;
    int at_bol;       /* the last character written was a newline (or nothing yet) */
    struct utf8_carry carry;   /* a character split between two streamed pieces */
};

void plain_init(struct plain *p, FILE *out);
void plain_user(struct plain *p, const char *text);
void plain_piece(struct plain *p, const char *s, size_t n);
void plain_end_answer(struct plain *p);
void plain_note(struct plain *p, const char *msg);

/* Writes s with C0 controls (except \n, \t), DEL and C1 controls replaced by '?', and
 * invalid UTF-8 bytes by U+FFFD. */
void plain_write_safe(FILE *f, const char *s, size_t n);

#endif
