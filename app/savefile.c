/* app/savefile: atomic whole-file writes (see savefile.h). */
#include "app/savefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int savefile_write(const char *path, savefile_fn fill, void *ctx, char *err, size_t errlen)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        snprintf(err, errlen, "%s: path too long", path);
        return -1;
    }
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = fill(f, ctx) == 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, path) != 0) {
        snprintf(err, errlen, "%s: write failed: %s", path, strerror(errno));
        remove(tmp);
        return -1;
    }
    return 0;
}

static FILE *open_fail(const char *path, int e, const char *why, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s: %s", path, why ? why : strerror(e));
    errno = e;
    return NULL;
}

FILE *savefile_open_private(const char *path, int flags, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0 && errno == EEXIST) {
        struct stat ls;
        if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode))
            return open_fail(path, ELOOP, "is a symbolic link; refusing to write through it",
                             err, errlen);
        if (!(flags & SAVEFILE_OVERWRITE))
            return open_fail(path, EEXIST, "already exists; not overwritten", err, errlen);
        /* No O_TRUNC: nothing is changed before the file is known to be ours. */
        fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0 && errno == ELOOP)
            return open_fail(path, ELOOP, "is a symbolic link; refusing to write through it",
                             err, errlen);
    }
    if (fd < 0) return open_fail(path, errno, NULL, err, errlen);
    struct stat st;
    const char *why = NULL;
    if (fstat(fd, &st) != 0) why = strerror(errno);
    else if (!S_ISREG(st.st_mode)) why = "not a regular file; refusing to write to it";
    else if (st.st_uid != geteuid()) why = "owned by another user; refusing to write to it";
    else if (fchmod(fd, 0600) != 0 || ftruncate(fd, 0) != 0) why = strerror(errno);
    else if (fcntl(fd, F_SETFL, 0) != 0) why = strerror(errno);
    if (why) {
        int e = errno ? errno : EPERM;
        close(fd);
        return open_fail(path, e, why, err, errlen);
    }
    FILE *f = fdopen(fd, "w");
    if (!f) {
        int e = errno;
        close(fd);
        return open_fail(path, e, NULL, err, errlen);
    }
    return f;
}

int savefile_expand(const char *path, char *out, size_t cap)
{
    if (path[0] == '~' && (path[1] == '/' || !path[1])) {
        const char *home = getenv("HOME");
        if (!home || !*home) return -1;
        return (size_t)snprintf(out, cap, "%s%s", home, path + 1) < cap ? 0 : -1;
    }
    return (size_t)snprintf(out, cap, "%s", path) < cap ? 0 : -1;
}
