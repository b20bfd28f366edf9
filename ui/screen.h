/* ui/screen: the full-screen layout (ncursesw). Transcript on the left, the privacy panel
 * on the right (toggled), a status line and the input line at the bottom. The screen can
 * also be virtual: rendered for a fixed size on any stream (newterm), for tests, and
 * dumped as text with screen_dump. Only the thread that opened it may use it. The colour
 * pairs it sets up are numbered in ui/colors.h. */
#ifndef CMIF_UI_SCREEN_H
#define CMIF_UI_SCREEN_H

#include <stddef.h>
#include <stdio.h>

#include "ui/panel.h"
#include "ui/status.h"
#include "ui/transcript.h"

struct input;

struct screen_options {
    int color;              /* 0: no colour (NO_COLOR, --no-color) */
    FILE *in, *out;         /* NULL: the terminal (stdin/stdout) */
    const char *term;       /* NULL: $TERM */
    int cols, rows;         /* > 0: a virtual screen of this size (tests) */
    int mouse;              /* report the mouse wheel */
};

struct screen;

int screen_open(struct screen **out, const struct screen_options *o, char *err, size_t errlen);
/* Restores the terminal (endwin) and frees everything; safe on NULL. */
void screen_close(struct screen *s);

struct transcript *screen_transcript(struct screen *s);
void screen_set_panel(struct screen *s, const struct panel_data *d);
void screen_toggle_panel(struct screen *s);
int screen_panel_visible(const struct screen *s);
void screen_set_status(struct screen *s, const struct status_info *st);

/* Recomputes the layout after a size change. */
void screen_resize(struct screen *s);
/* Scrolls the transcript by pages (positive = back). */
void screen_scroll_pages(struct screen *s, int pages);
void screen_scroll_rows(struct screen *s, int rows);
/* Redraws everything that changed and puts the cursor in the input line. */
void screen_draw(struct screen *s, struct input *in);
/* Forces a full repaint (Ctrl-L). */
void screen_repaint(struct screen *s);

/* Next key (wgetch, non-blocking: ERR when none), or blocking when wait is set. */
int screen_key(struct screen *s, int wait);
/* Mouse wheel from a KEY_MOUSE event: +1 up, -1 down, 0 other. */
int screen_wheel(struct screen *s);
/* Hands text to the terminal's clipboard with OSC 52 (a terminal without it ignores the
 * sequence). 0 or -1 (out of memory). */
int screen_clipboard(struct screen *s, const char *text, size_t n);
/* Writes what the screen shows, one text line per row (trailing blanks trimmed). */
int screen_dump(struct screen *s, FILE *f);

/* Restores the terminal from a signal handler (async-signal-safe: termios and a few
 * escape sequences), for fatal signals. */
void screen_emergency_restore(void);

#endif
