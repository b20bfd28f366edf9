/* The session written at exit; see app/autosave.h. */
#include "app/autosave.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app/chat.h"
#include "app/savefile.h"
#include "app/session.h"
#include "app/xdg.h"

int autosave_prepare(struct autosave *a, const char *path, const char *resume, char *err,
                     size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->on = 1;
    if (!path) return 0;
    if (savefile_expand(path, a->path, sizeof a->path) != 0) {
        snprintf(err, errlen, "--autosave: cannot expand '%s' (HOME unset or too long)", path);
        return -1;
    }
    struct stat st, rs;
    if (lstat(a->path, &st) != 0) {
        if (errno == ENOENT) return 0;
        snprintf(err, errlen, "--autosave: %s: %s", a->path, strerror(errno));
        return -1;
    }
    char rp[4096];
    if (resume && savefile_expand(resume, rp, sizeof rp) == 0 && stat(rp, &rs) == 0 &&
        S_ISREG(st.st_mode) && st.st_dev == rs.st_dev && st.st_ino == rs.st_ino) {
        a->replace = 1;
        a->dev = st.st_dev;
        a->ino = st.st_ino;
        return 0;
    }
    snprintf(err, errlen,
             "--autosave: %s already exists; not overwritten (give a new name, --autosave "
             "alone for a new file in the state directory, or --resume %s --autosave %s to go "
             "on with it)", a->path, path, path);
    return -1;
}

/* Writes the session to a new private file beside target, then renames it over target. */
static int write_to(const struct chat *c, const char *model_name, const char *target, char *err,
                    size_t errlen)
{
    char tmp[4200];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.%ld.tmp", target, (long)getpid()) >= sizeof tmp) {
        snprintf(err, errlen, "%s: name too long", target);
        return -1;
    }
    FILE *f = savefile_open_private(tmp, 0, err, errlen);
    if (!f) return -1;
    if (session_write(c, f, model_name, tmp, err, errlen) != 0) {
        unlink(tmp);
        return -1;
    }
    if (rename(tmp, target) != 0) {
        snprintf(err, errlen, "%s: %s", target, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* A name nobody uses yet in $XDG_STATE_HOME/cmif/sessions (created 0700). */
static int default_name(char *out, size_t cap, char *err, size_t errlen)
{
    char dir[4096];
    if (xdg_path(XDG_STATE, "sessions", 1, dir, sizeof dir, err, errlen) != 0) return -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: %s", dir, strerror(errno));
        return -1;
    }
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
    for (int i = 0; i < 100; i++) {
        char sfx[16] = "";
        if (i) snprintf(sfx, sizeof sfx, "-%d", i);
        struct stat st;
        if ((size_t)snprintf(out, cap, "%s/session-%s%s.json", dir, stamp, sfx) >= cap) break;
        if (lstat(out, &st) != 0 && errno == ENOENT) return 0;
    }
    snprintf(err, errlen, "%s: no free name for the session", dir);
    return -1;
}

int autosave_write(const struct autosave *a, const struct chat *c, const char *model_name,
                   char *out, size_t cap, char *err, size_t errlen)
{
    size_t n;
    chat_entries(c, &n);
    if (!a->on || !n) return 1;
    int use_named = 0;
    if (*a->path) {
        struct stat st;
        if (lstat(a->path, &st) != 0) use_named = errno == ENOENT;
        else use_named = a->replace && S_ISREG(st.st_mode) && st.st_dev == a->dev &&
                         st.st_ino == a->ino;
    }
    if (use_named) snprintf(out, cap, "%s", a->path);
    else if (default_name(out, cap, err, errlen) != 0) return -1;
    return write_to(c, model_name, out, err, errlen);
}
