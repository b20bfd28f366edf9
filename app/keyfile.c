/* app/keyfile: read or create a private per-user key file (see keyfile.h). */
#include "app/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int create_key(const char *path, unsigned char *key, size_t len, char *err, size_t errlen)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
        return -1;
    }
    randombytes_buf(key, len);
    ssize_t w = write(fd, key, len);
    int ok = w == (ssize_t)len && fsync(fd) == 0;
    if (close(fd) != 0) ok = 0;
    if (!ok) {
        sodium_memzero(key, len);
        unlink(path);
        snprintf(err, errlen, "cannot write %s", path);
        return -1;
    }
    return 1;
}

int keyfile_load(const char *path, unsigned char *key, size_t len, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && errno == ENOENT) return create_key(path, key, len, err, errlen);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 errno == ELOOP ? "it is a symbolic link" : strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & 077) != 0 || st.st_size != (off_t)len) {
        close(fd);
        snprintf(err, errlen, "%s is not a private %zu-byte file of this user; not used", path,
                 len);
        return -1;
    }
    ssize_t r = read(fd, key, len);
    close(fd);
    if (r != (ssize_t)len) {
        sodium_memzero(key, len);
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    return 0;
}
