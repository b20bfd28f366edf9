/* core/util: error messages and freeing (see util.h). */
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <dirent.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

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

int util_mkdirs(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path) return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(path, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) return -1;
    return 0;
}

int util_user_secret(const char *dir, unsigned char key[32], char *note, size_t notelen)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/secret.key", dir) >= (int)sizeof path) return -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) { snprintf(note, notelen, "cannot create %s: %s", path, strerror(errno)); return -1; }
        unsigned char k[crypto_kdf_KEYBYTES];
        crypto_kdf_keygen(k);
        ssize_t w = write(fd, k, sizeof k);
        int ok = w == (ssize_t)sizeof k && fsync(fd) == 0;
        close(fd);
        if (!ok) {
            sodium_memzero(k, sizeof k);
            unlink(path);
            snprintf(note, notelen, "cannot write %s", path);
            return -1;
        }
        memcpy(key, k, sizeof k);
        sodium_memzero(k, sizeof k);
        return 0;
    }
    if (fd < 0) { snprintf(note, notelen, "cannot open %s: %s", path, strerror(errno)); return -1; }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid() ||
        (st.st_mode & 077) != 0 || st.st_size != crypto_kdf_KEYBYTES) {
        close(fd);
        snprintf(note, notelen, "%s is not a private 32-byte file of this user; cache not used", path);
        return -1;
    }
    ssize_t r = read(fd, key, crypto_kdf_KEYBYTES);
    close(fd);
    if (r != crypto_kdf_KEYBYTES) { snprintf(note, notelen, "cannot read %s", path); return -1; }
    return 0;
}

void *util_big_alloc(size_t bytes)
{
    void *p = NULL;
    if (posix_memalign(&p, (size_t)2 << 20, bytes ? bytes : 1) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    if (bytes >= ((size_t)2 << 20) && madvise(p, bytes, MADV_HUGEPAGE) != 0) { /* best effort */ }
#endif
    return p;
}

void util_cache_used(const char *path, const char *prefix)
{
    (void)utimensat(AT_FDCWD, path, NULL, 0);
    const char *slash = strrchr(path, '/');
    if (!slash) return;
    char dir[PATH_MAX];
    if ((size_t)(slash - path) >= sizeof dir) return;
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = 0;
    DIR *d = opendir(dir[0] ? dir : "/");
    if (!d) return;
    size_t plen = strlen(prefix);
    time_t cutoff = time(NULL) - (time_t)UTIL_CACHE_MAX_AGE_DAYS * 86400;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n <= plen + 4 || strncmp(e->d_name, prefix, plen) || strcmp(e->d_name + n - 4, ".bin") ||
            !strcmp(e->d_name, slash + 1))
            continue;
        struct stat st;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
            st.st_uid == geteuid() && st.st_mtime < cutoff)
            (void)unlinkat(dirfd(d), e->d_name, 0);
    }
    closedir(d);
}
