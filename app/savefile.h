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

/* Creates or truncates path with mode 0600 and opens it for writing; NULL with errno. */
FILE *savefile_open_private(const char *path);

#endif
