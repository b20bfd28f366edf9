/* app/session: a conversation saved as JSON (/save FILE.json) and resumed (--resume FILE).
 * The file holds the transcript with each message's privacy report, the settings, the
 * budget as it stood, and the context as the decoder had it: the vectors of the sanitized
 * inputs (and of the answers), so that resuming replays them into the KV cache without
 * encoding or charging anything again. It holds the user's text in clear: written only
 * through savefile_open_private (0600). */
#ifndef CMIF_APP_SESSION_H
#define CMIF_APP_SESSION_H

#include <stddef.h>
#include <stdio.h>

struct chat;

/* Writes the session to f (opened by the caller) and closes f. path names it in err. */
int session_write(const struct chat *c, FILE *f, const char *model_name, const char *path,
                  char *err, size_t errlen);
/* Reads path and replaces c's conversation and settings with it (chat_resume): no ε is
 * charged. *n_msgs: messages restored. 0, or -1 with err. */
int session_load(struct chat *c, const char *path, size_t *n_msgs, char *err, size_t errlen);

#endif
