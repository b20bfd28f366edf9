/* XDG base directories; see app/xdg.h. */
#include "app/xdg.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const envs[] = { "XDG_STATE_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME" };
static const char *const defs[] = { ".local/state", ".config", ".cache" };

static int mkdirs(char *path, char *err, size_t errlen)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        int r = mkdir(path, 0700);
        *p = '/';
        if (r != 0 && errno != EEXIST) goto fail;
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST) goto fail;
    return 0;
fail:
    snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
    return -1;
}

int xdg_dir(int kind, int create, char *buf, size_t cap, char *err, size_t errlen)
{
    if (kind < 0 || kind > XDG_CACHE) {
        snprintf(err, errlen, "xdg: bad kind %d", kind);
        return -1;
    }
    const char *base = getenv(envs[kind]);
    int n;
    /* The spec says relative values are invalid and must be ignored. */
    if (base && base[0] == '/') {
        n = snprintf(buf, cap, "%s/cmif", base);
    } else {
        const char *home = getenv("HOME");
        if (!home || home[0] != '/') {
            struct passwd *pw = getpwuid(getuid());
            home = pw ? pw->pw_dir : NULL;
        }
        if (!home) {
            snprintf(err, errlen, "neither $%s nor $HOME is set", envs[kind]);
            return -1;
        }
        n = snprintf(buf, cap, "%s/%s/cmif", home, defs[kind]);
    }
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "xdg: path too long");
        return -1;
    }
    return create ? mkdirs(buf, err, errlen) : 0;
}

int xdg_path(int kind, const char *name, int create, char *buf, size_t cap, char *err,
             size_t errlen)
{
    if (xdg_dir(kind, create, buf, cap, err, errlen) != 0) return -1;
    size_t l = strlen(buf);
    int n = snprintf(buf + l, cap - l, "/%s", name);
    if (n < 0 || (size_t)n >= cap - l) {
        snprintf(err, errlen, "xdg: path too long");
        return -1;
    }
    return 0;
}
