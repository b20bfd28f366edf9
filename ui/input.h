/* ui/input: the input line, driven by GNU readline's callback interface and fed from the
 * ncurses loop byte by byte (rl_getc_function), so ~/.inputrc editing (emacs/vi), history
 * (Up/Down, Ctrl-R) and completion of /commands work while the screen belongs to ncurses.
 * The command names come from the caller (the app owns the table), so ui/ stays free of it.
 * Readline never touches the terminal: we draw its line ourselves (rl_redisplay_function).
 * Multi-line input: a line ending in a backslash continues; a block between two lines of
 * """ is one message; a bracketed paste inserts its text, newlines included, as part of
 * one message. Readline is global state, so there is
 * one input per process. */
#ifndef CMIF_UI_INPUT_H
#define CMIF_UI_INPUT_H

#include <stddef.h>

struct input;

/* The values one /command takes as its argument (command without the slash). */
struct input_args {
    const char *command;
    const char *const *values;  /* NULL-terminated */
};

struct input_options {
    int history_max;            /* entries kept (stifle_history); 0 = 1000 */
    /* Blocks until at least one more key has been handed to input_key (called when
     * readline needs a byte in the middle of a key sequence). Returns -1 on EOF. */
    int (*fetch)(void *ctx);
    void *ctx;
    /* Names Tab completes after a '/' at the start of the line, without the slash;
     * NULL-terminated and borrowed for the input's life. NULL: nothing to complete. */
    const char *const *commands;
    /* Values Tab completes as the argument of a /command ("/mechanism cu" -> "custext"),
     * ended by an entry whose command is NULL; borrowed for the input's life. NULL: none. */
    const struct input_args *args;
    /* Called with the line being edited (borrowed, NUL-terminated; may be "") after keys,
     * a paste or a cancel may have changed it, so the app can preview what Enter would
     * send. NULL: none. Runs on the caller's thread, from input_pump/input_insert/
     * input_cancel/input_take. */
    void (*changed)(void *ctx, const char *line);
};

int input_open(struct input **out, const struct input_options *o, char *err, size_t errlen);
void input_close(struct input *in);

/* One key from wgetch (a byte, or a KEY_* code such as KEY_UP, which becomes the escape
 * sequence readline binds). Keys are buffered; input_pump hands them to readline. */
void input_key(struct input *in, int ch);
/* Runs readline over the buffered keys (not re-entrant: call from the main loop). */
void input_pump(struct input *in);
/* Inserts text at the cursor as typed (a paste): \r\n and \r become \n. */
void input_insert(struct input *in, const char *text, size_t n);
/* Replaces the line being edited with text (newlines kept), the cursor at its end. */
void input_set_line(struct input *in, const char *text);
/* Ctrl-C at the prompt: forget the line being edited and any continuation lines. */
void input_cancel(struct input *in);

/* A completed message (malloc'd, caller frees), or NULL. *eof is set when the user asked
 * to leave (Ctrl-D on an empty line). */
char *input_take(struct input *in, int *eof);
/* Adds a message to the in-memory history Up and Ctrl-R recall (its newlines kept, so a
 * recalled message is the same message; consecutive duplicates dropped). Keeping it
 * across sessions is the app's (app/histfile).
 * 0, or -1 with err (out of memory). */
int input_history_add(struct input *in, const char *line, char *err, size_t errlen);
/* Forgets the history, each entry's text wiped before readline frees it (also done by
 * input_close). */
void input_history_clear(struct input *in);

/* Whether the line must be redrawn (readline changed it). */
int input_dirty(const struct input *in);
/* Rows the line needs at this width (1..max). */
int input_rows(const struct input *in, int width, int max);
/* Draws prompt and line into win (a WINDOW *) and leaves the cursor where readline's
 * point is; clears the dirty flag. Controls are drawn as ^X, invalid UTF-8 as U+FFFD. */
void input_draw(struct input *in, void *win);
/* Currently editing a continuation line (after a trailing backslash). */
int input_continuing(const struct input *in);
/* The completions a second Tab listed, once ("/save  /save-history"): 1 and out set, or 0. */
int input_matches(struct input *in, char *out, size_t cap);
/* The prompt shown (tests). */
const char *input_prompt(const struct input *in);
/* The line being edited (tests, drawing). */
const char *input_line(const struct input *in);

#endif
