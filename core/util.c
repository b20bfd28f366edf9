/* core/util: error messages and freeing (see util.h). */
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int util_seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* The sentinel is util_free_all's own address, so NULL pointers (arrays never allocated)
 * can stand anywhere in the list. */
void util_free_all(void *first, ...)
{
    va_list ap;
    va_start(ap, first);
    for (void *p = first; p != (void *)&util_free_all; p = va_arg(ap, void *)) free(p);
    va_end(ap);
}

void util_pick_dir(const char *dir, char *out, size_t n)
{
    const char *cands[3] = {dir, getenv("XDG_RUNTIME_DIR"), getenv("TMPDIR")};
    for (int i = 0; i < 3; i++) {
        struct stat st;
        if (cands[i] && *cands[i] && stat(cands[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            snprintf(out, n, "%s", cands[i]);
            return;
        }
    }
    snprintf(out, n, "/tmp");
}

int util_tmpfile(const char *dir, const char *what, char *err, size_t errlen)
{
    int fd = -1;
#ifdef O_TMPFILE
    fd = open(dir, O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
#endif
    if (fd >= 0) return fd;
    /* No O_TMPFILE on this filesystem: create a private name and unlink it at once. */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/cmif-%s-XXXXXX", dir, what);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0)
        return util_seterr(err, errlen, "%s: cannot create %s file in %s: %s", what, what, dir,
                           strerror(errno));
    if (unlink(path) != 0) {
        util_seterr(err, errlen, "%s: cannot unlink %s file %s: %s", what, what, path,
                    strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}
