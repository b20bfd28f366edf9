/* app/histfile: the chat's input history kept across sessions (opt-in, --history). The
 * file is sealed with libsodium's secretbox under a per-user key (app/keyfile), so it holds
 * no plaintext; it is rewritten whole (to a 0600 temporary file, renamed over it) at every
 * new entry. Plaintext exists only in memory, and every buffer that held it is wiped. */
#ifndef CMIF_APP_HISTFILE_H
#define CMIF_APP_HISTFILE_H

#include <stddef.h>

struct histfile;

/* path: the sealed file; key_path: the per-user key (created on first use). max: entries
 * kept (oldest dropped). 0, or -1 with err. */
int histfile_open(struct histfile **out, const char *path, const char *key_path, int max,
                  char *err, size_t errlen);
void histfile_close(struct histfile *h);

/* Calls add(ctx, line) for each stored entry, oldest first (no file yet: none). A file of
 * the old plaintext format is read once and replaced by a sealed one. 0, or -1 with err
 * (a file that does not open under this key is left as it is). */
int histfile_read(struct histfile *h, void (*add)(void *ctx, const char *line), void *ctx,
                  char *err, size_t errlen);
/* Appends one entry (a multi-line message stays one entry, its line breaks kept) and
 * reseals the file.
 * Consecutive duplicates are kept once. 0, or -1 with err. */
int histfile_append(struct histfile *h, const char *line, char *err, size_t errlen);

const char *histfile_path(const struct histfile *h);

/* The user's history ($XDG_STATE_HOME/cmif/history, key history.key beside it): with want,
 * opened into *hf and where it is kept said in note; without it, or when it cannot be
 * opened, *hf is NULL and off says why (or points out a plaintext history an earlier cmif
 * left). Both are shown in the transcript: stderr would be hidden by the screen. */
void histfile_open_user(int want, struct histfile **hf, char *note, size_t note_cap,
                        char *off, size_t off_cap);

#endif
