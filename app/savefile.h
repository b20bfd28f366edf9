/* app/savefile: writing files. savefile_write writes atomically (to path.tmp, then
 * renamed over path), so a crash or a full disk never leaves half a model or checkpoint
 * where a whole one was: used by the trained-model writer (app/train/gguf_out) and training
 * checkpoints (app/train/train). savefile_open_private opens a file only its owner can read, for
 * what holds the user's text in clear (reports, screen dumps). */
#ifndef CMIF_APP_SAVEFILE_H
#define CMIF_APP_SAVEFILE_H

#include <stddef.h>
#include <stdio.h>

/* Writes the content to f; returns nonzero when a write failed. */
typedef int (*savefile_fn)(FILE *f, void *ctx);

/* Creates path.tmp, lets fill write it, closes it and renames it to path. On any failure
 * the temporary file is removed, err names the file and the reason, and -1 is returned. */
int savefile_write(const char *path, savefile_fn fill, void *ctx, char *err, size_t errlen);

/* Opens path for writing a file only its owner can read, for what holds the user's text in
 * clear. A new file is created with O_EXCL and mode 0600. A symbolic link is never followed
 * (refused, even with SAVEFILE_OVERWRITE). An existing file is refused unless flags hold
 * SAVEFILE_OVERWRITE; then it must be a regular file owned by the user, and it is made 0600
 * and emptied before anything is written. NULL with err (naming the file and the reason) and
 * errno (EEXIST for an existing file without SAVEFILE_OVERWRITE, ELOOP for a link). */
enum { SAVEFILE_OVERWRITE = 1 };
FILE *savefile_open_private(const char *path, int flags, char *err, size_t errlen);

/* Expands a leading "~/" (or a lone "~") to $HOME. 0, or -1 when the result does not fit
 * or $HOME is unset; other paths are copied as they are. */
int savefile_expand(const char *path, char *out, size_t cap);

#endif
