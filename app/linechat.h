/* app/linechat: the chat as plain lines, for a terminal that cannot hold the full-screen
 * layout (TERM=dumb or unset) and for stdout that is not a terminal. The user types at a
 * ">>> " prompt (the terminal's own line editing); a trailing backslash or a block between
 * two """ lines continues a message; each message is followed by a one-line privacy
 * summary (what the panel shows in full screen) and the streamed answer. The transcript
 * goes through ui/plain, as scripted sessions do. Ctrl-C stops an answer. */
#ifndef CMIF_APP_LINECHAT_H
#define CMIF_APP_LINECHAT_H

#include <stdio.h>

struct chat;
struct cmds_session;
struct plain;

struct linechat_opts {
    FILE *in;          /* the user's lines */
    FILE *prompt;      /* where ">>> " goes (NULL: none) */
    int echo;          /* repeat each input as "> text" in the transcript (stdout is a file) */
};

/* Runs until end of input or /quit: EXIT_OK or EXIT_RUNTIME (app/cmd.h). */
int linechat_run(struct chat *chat, struct cmds_session *sess, struct plain *pl,
                 const struct linechat_opts *o);

/* One line saying what happened to the last message's words and what the budget holds
 * now ("privacy: 5 words: 3 as typed, 2 sanitized (1 replaced); ε 2; spent 2 of 200
 * today"). */
void linechat_summary(const struct chat *chat, char *out, size_t cap);

#endif
