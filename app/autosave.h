/* app/autosave: --autosave [FILE], the session written at exit as /save FILE.json writes
 * it (app/session, 0600), so that `cmif --resume FILE` goes on from there. Which file is
 * settled at start, before anything is said: a named FILE must not exist yet, unless it is
 * the very file --resume read (then it is replaced by the longer conversation); without a
 * name, a new timestamped file in $XDG_STATE_HOME/cmif/sessions. An unrelated file is never
 * overwritten: one that appears under the name meanwhile sends the session to the default
 * directory instead. */
#ifndef CMIF_APP_AUTOSAVE_H
#define CMIF_APP_AUTOSAVE_H

#include <stddef.h>
#include <sys/types.h>

struct chat;

struct autosave {
    int on;
    char path[4096];       /* named FILE, "~/" expanded; "" for the default directory */
    int replace;           /* path is the resumed file: it may be replaced */
    dev_t dev;             /* the resumed file's identity, checked again at exit */
    ino_t ino;
};

/* path: the named FILE or NULL; resume: the --resume FILE or NULL. 0, or -1 with err (the
 * name is taken by another file, or cannot be expanded). */
int autosave_prepare(struct autosave *a, const char *path, const char *resume, char *err,
                     size_t errlen);
/* Writes c's session (nothing when the conversation is empty: 1). 0 with the file's name in
 * out, 1, or -1 with err. */
int autosave_write(const struct autosave *a, const struct chat *c, const char *model_name,
                   char *out, size_t cap, char *err, size_t errlen);

#endif
