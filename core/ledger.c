/* core/ledger: the per-user privacy ledger (rolling 24 hours + lifetime), integrity-protected
 * and updated atomically under a lock. */
#include "core/util.h"
#include "core/ledger.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#define MAGIC "CMIFLDG1"
#define VERSION 1u
#define HEAD 24 /* magic, version, n, lifetime */
#define REC 16
#define MAC 32
#define KEYLEN 32
#define MAX_CHARGES 1000000u

struct charge {
    int64_t t;
    double eps;
};

struct ledger {
    char path[4096], key_path[4096];
    unsigned char key[KEYLEN];
    struct charge *c;
    size_t n, cap;
    double lifetime;
};

static void damaged(char *err, size_t errlen, const char *path, const char *why)
{
    util_seterr(err, errlen,
           "privacy ledger %s %s: it was changed or damaged outside cmif. cmif left it as it "
           "is and charges nothing while it is refused. To start a new ledger, reset it "
           "explicitly (this forgets the ε spent today and in total).",
           path, why);
}

static int fits(double today, double cost, double limit)
{
    return today + cost <= limit + 1e-9 * limit;
}

/* ---- files ---------------------------------------------------------------------------- */

static int mkdirs(const char *path) /* the parent directories of path, 0700 */
{
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    char *slash = strrchr(d, '/');
    if (!slash || slash == d) return 0;
    *slash = 0;
    for (char *p = d + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(d, 0700) && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(d, 0700) && errno != EEXIST) return -1;
    return 0;
}

/* Reads a whole private file of this user (symlinks refused, a wider mode narrowed to 0600).
 * Returns 0 with *buf (malloc'd) and *len, 1 when it does not exist, -1 with err set. */
static int read_private(const char *path, unsigned char **buf, size_t *len, char *err,
                        size_t errlen)
{
    *buf = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) return 1;
    if (fd < 0) {
        util_seterr(err, errlen, "cannot open %s: %s%s", path, strerror(errno),
               errno == ELOOP ? " (a symbolic link is refused)" : "");
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_uid != getuid()) {
        close(fd);
        util_seterr(err, errlen, "%s is not a regular file of this user; refused", path);
        return -1;
    }
    if ((st.st_mode & 077) && fchmod(fd, 0600)) {
        close(fd);
        util_seterr(err, errlen, "%s is readable by others and cannot be made private: %s", path,
               strerror(errno));
        return -1;
    }
    if (st.st_size > (off_t)(HEAD + (size_t)MAX_CHARGES * REC + MAC)) {
        close(fd);
        util_seterr(err, errlen, "%s is too large to be a cmif ledger or key; refused", path);
        return -1;
    }
    size_t n = (size_t)st.st_size;
    unsigned char *b = malloc(n ? n : 1);
    size_t got = 0;
    while (b && got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (!b || got != n) {
        free(b);
        util_seterr(err, errlen, "cannot read %s", path);
        return -1;
    }
    *buf = b;
    *len = n;
    return 0;
}

/* Writes path atomically: path.tmp (0600, fsynced), renamed over path, directory fsynced. */
static int write_atomic(const char *path, const void *data, size_t n, char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp); /* a leftover of a crash; we hold the lock */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        util_seterr(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    const unsigned char *p = data;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) break;
        done += (size_t)w;
    }
    int ok = done == n && fchmod(fd, 0600) == 0 && fsync(fd) == 0;
    ok = (close(fd) == 0) && ok;
    if (!ok || rename(tmp, path)) {
        util_seterr(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash) {
        if (slash == dir) slash[1] = 0;
        else *slash = 0;
        int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

static int lock_take(const char *path, char *err, size_t errlen)
{
    char lp[4200];
    snprintf(lp, sizeof lp, "%s.lock", path);
    if (mkdirs(path)) {
        util_seterr(err, errlen, "cannot create the directory of %s: %s", path, strerror(errno));
        return -1;
    }
    int fd = open(lp, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        util_seterr(err, errlen, "cannot open %s: %s", lp, strerror(errno));
        return -1;
    }
    while (flock(fd, LOCK_EX)) {
        if (errno == EINTR) continue;
        util_seterr(err, errlen, "cannot lock %s: %s", lp, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void lock_drop(int fd)
{
    if (fd >= 0) close(fd); /* releases the flock */
}

/* ---- encoding ------------------------------------------------------------------------- */

static void put_u32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t dbits(double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    return v;
}
static double bitsd(uint64_t v)
{
    double d;
    memcpy(&d, &v, 8);
    return d;
}

/* 0 loaded, 2 created, 1 missing (and not created), -1 error. */
static int load_key(struct ledger *l, int create, char *err, size_t errlen)
{
    unsigned char *b;
    size_t n;
    int rc = read_private(l->key_path, &b, &n, err, errlen);
    if (rc < 0) return -1;
    if (rc == 1) {
        if (!create) return 1;
        if (mkdirs(l->key_path)) {
            util_seterr(err, errlen, "cannot create the directory of %s: %s", l->key_path,
                   strerror(errno));
            return -1;
        }
        randombytes_buf(l->key, KEYLEN);
        return write_atomic(l->key_path, l->key, KEYLEN, err, errlen) ? -1 : 2;
    }
    if (n != KEYLEN) {
        sodium_memzero(b, n);
        free(b);
        util_seterr(err, errlen, "ledger key %s is not 32 bytes: it was changed outside cmif; the "
               "ledger was left as it is. To start a new ledger, reset it explicitly.", l->key_path);
        return -1;
    }
    memcpy(l->key, b, KEYLEN);
    sodium_memzero(b, n);
    free(b);
    return 0;
}

static int encode_write(struct ledger *l, char *err, size_t errlen)
{
    size_t len = HEAD + l->n * REC + MAC;
    unsigned char *b = malloc(len);
    if (!b) {
        util_seterr(err, errlen, "out of memory writing %s", l->path);
        return -1;
    }
    memcpy(b, MAGIC, 8);
    put_u32(b + 8, VERSION);
    put_u32(b + 12, (uint32_t)l->n);
    put_u64(b + 16, dbits(l->lifetime));
    for (size_t i = 0; i < l->n; i++) {
        put_u64(b + HEAD + i * REC, (uint64_t)l->c[i].t);
        put_u64(b + HEAD + i * REC + 8, dbits(l->c[i].eps));
    }
    crypto_generichash(b + len - MAC, MAC, b, len - MAC, l->key, KEYLEN);
    int rc = write_atomic(l->path, b, len, err, errlen);
    free(b);
    return rc;
}

static int reserve(struct ledger *l, size_t n)
{
    if (n <= l->cap) return 0;
    size_t cap = l->cap ? l->cap : 16;
    while (cap < n) cap *= 2;
    struct charge *c = realloc(l->c, cap * sizeof *c);
    if (!c) return -1;
    l->c = c;
    l->cap = cap;
    return 0;
}

/* Reads and verifies the ledger (the caller holds the lock). 1 when it does not exist. */
static int decode_read(struct ledger *l, char *err, size_t errlen)
{
    unsigned char *b;
    size_t len;
    int rc = read_private(l->path, &b, &len, err, errlen);
    if (rc) return rc;
    const char *why = NULL;
    unsigned char mac[MAC];
    if (len < HEAD + MAC) why = "is truncated";
    else if (memcmp(b, MAGIC, 8)) why = "is not a cmif ledger";
    else if ((len - HEAD - MAC) % REC || get_u32(b + 12) != (len - HEAD - MAC) / REC)
        why = "has the wrong length";
    else {
        crypto_generichash(mac, MAC, b, len - MAC, l->key, KEYLEN);
        if (sodium_memcmp(mac, b + len - MAC, MAC)) why = "fails its integrity check";
        else if (get_u32(b + 8) != VERSION) why = "has an unknown version";
    }
    size_t n = why ? 0 : get_u32(b + 12);
    double life = why ? 0 : bitsd(get_u64(b + 16));
    if (!why && (!isfinite(life) || life < 0)) why = "holds an invalid total";
    struct charge *c = why ? NULL : malloc((n ? n : 1) * sizeof *c);
    if (!why && !c) {
        free(b);
        util_seterr(err, errlen, "out of memory reading %s", l->path);
        return -1;
    }
    double sum = 0;
    for (size_t i = 0; !why && i < n; i++) {
        c[i].t = (int64_t)get_u64(b + HEAD + i * REC);
        c[i].eps = bitsd(get_u64(b + HEAD + i * REC + 8));
        if (!isfinite(c[i].eps) || c[i].eps < 0) why = "holds an invalid charge";
        sum += c[i].eps;
    }
    if (!why && sum > life * (1 + 1e-9) + 1e-12) why = "holds charges beyond its total";
    free(b);
    if (why) {
        free(c);
        damaged(err, errlen, l->path, why);
        return -1;
    }
    free(l->c); /* the handle changes only once the whole file is verified */
    l->c = c;
    l->cap = n ? n : 1;
    l->n = n;
    l->lifetime = life;
    return 0;
}

/* Under the lock: the key and the ledger, creating both on first use (neither exists). */
static int load_locked(struct ledger *l, char *err, size_t errlen)
{
    struct stat st;
    int have_ledger = lstat(l->path, &st) == 0 || errno != ENOENT;
    int rc = load_key(l, !have_ledger, err, errlen);
    if (rc < 0) return -1;
    if (rc == 1) {
        util_seterr(err, errlen, "privacy ledger %s has no key (%s is missing): it was changed "
               "outside cmif; the ledger was left as it is. To start a new ledger, reset it "
               "explicitly (this forgets the ε spent).", l->path, l->key_path);
        return -1;
    }
    int created_key = rc == 2;
    rc = decode_read(l, err, errlen);
    if (rc == 1 && !created_key) {
        util_seterr(err, errlen, "privacy ledger %s is missing but its key %s exists: it was "
               "removed outside cmif. To start a new ledger, reset it explicitly (this "
               "forgets the ε spent).", l->path, l->key_path);
        return -1;
    }
    if (rc == 1) {
        l->n = 0;
        l->lifetime = 0;
        return encode_write(l, err, errlen);
    }
    return rc;
}

static int set_paths(struct ledger *l, const char *path, const char *key_path, char *err,
                     size_t errlen)
{
    if (!path || !*path ||
        snprintf(l->path, sizeof l->path, "%s", path) >= (int)sizeof l->path ||
        (key_path ? snprintf(l->key_path, sizeof l->key_path, "%s", key_path)
                  : snprintf(l->key_path, sizeof l->key_path, "%s.key", path)) >=
            (int)sizeof l->key_path) {
        util_seterr(err, errlen, "invalid ledger path");
        return -1;
    }
    return 0;
}

/* An empty ledger object (libsodium initialised), or NULL with err. */
static struct ledger *ledger_new(char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        util_seterr(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    struct ledger *l = calloc(1, sizeof *l);
    if (!l) util_seterr(err, errlen, "out of memory");
    return l;
}

int ledger_open(struct ledger **out, const char *path, const char *key_path, char *err,
                size_t errlen)
{
    *out = NULL;
    struct ledger *l = ledger_new(err, errlen);
    if (!l) return -1;
    if (set_paths(l, path, key_path, err, errlen)) {
        free(l);
        return -1;
    }
    int fd = lock_take(l->path, err, errlen);
    if (fd < 0 || load_locked(l, err, errlen)) {
        lock_drop(fd);
        ledger_close(l);
        return -1;
    }
    lock_drop(fd);
    *out = l;
    return 0;
}

void ledger_close(struct ledger *l)
{
    if (!l) return;
    sodium_memzero(l->key, sizeof l->key);
    free(l->c);
    free(l);
}

int ledger_refresh(struct ledger *l, char *err, size_t errlen)
{
    int fd = lock_take(l->path, err, errlen);
    if (fd < 0) return -1;
    int rc = decode_read(l, err, errlen); /* on failure the handle keeps its state */
    lock_drop(fd);
    if (rc == 1) util_seterr(err, errlen, "privacy ledger %s was removed outside cmif", l->path);
    return rc ? -1 : 0;
}

double ledger_today(const struct ledger *l, int64_t now)
{
    double s = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->c[i].t > now - LEDGER_WINDOW_S) s += l->c[i].eps;
    return s;
}

double ledger_lifetime(const struct ledger *l) { return l->lifetime; }

int ledger_check(const struct ledger *l, double cost, double day_limit, int64_t now,
                 double *left)
{
    double today = ledger_today(l, now);
    if (left) *left = today < day_limit ? day_limit - today : 0;
    return cost >= 0 && fits(today, cost, day_limit) ? 0 : -1;
}

int ledger_charge(struct ledger *l, double cost, double day_limit, int64_t now, char *err,
                  size_t errlen)
{
    if (!(cost >= 0) || !isfinite(cost) || !(day_limit >= 0)) {
        util_seterr(err, errlen, "invalid charge ε %g (day limit %g)", cost, day_limit);
        return -1;
    }
    int fd = lock_take(l->path, err, errlen);
    if (fd < 0) return -1;
    int rc = decode_read(l, err, errlen);
    if (rc == 1) util_seterr(err, errlen, "privacy ledger %s was removed outside cmif; nothing "
                        "charged. To start a new ledger, reset it explicitly.", l->path);
    if (rc) {
        lock_drop(fd);
        return -1;
    }
    double today = ledger_today(l, now);
    if (!fits(today, cost, day_limit)) {
        lock_drop(fd);
        util_seterr(err, errlen, "ε %g does not fit: %g of the day's %g left (rolling 24 hours)",
               cost, today < day_limit ? day_limit - today : 0.0, day_limit);
        return 1;
    }
    if (cost == 0) {
        lock_drop(fd);
        return 0;
    }
    size_t k = 0; /* charges that left the window stay in the lifetime total only */
    for (size_t i = 0; i < l->n; i++)
        if (l->c[i].t > now - LEDGER_WINDOW_S) l->c[k++] = l->c[i];
    l->n = k;
    if (l->n >= MAX_CHARGES || reserve(l, l->n + 1)) {
        lock_drop(fd);
        ledger_refresh(l, NULL, 0);
        util_seterr(err, errlen, "too many charges in %s", l->path);
        return -1;
    }
    l->c[l->n++] = (struct charge){ .t = now, .eps = cost };
    l->lifetime += cost;
    rc = encode_write(l, err, errlen);
    lock_drop(fd);
    if (rc) ledger_refresh(l, NULL, 0); /* back to what the file says */
    return rc ? -1 : 0;
}

static int cmp_time(const void *a, const void *b)
{
    int64_t x = ((const struct charge *)a)->t, y = ((const struct charge *)b)->t;
    return (x > y) - (x < y);
}

int64_t ledger_next_free(const struct ledger *l, double cost, double day_limit, int64_t now)
{
    if (!fits(0, cost, day_limit)) return -1;
    double today = ledger_today(l, now);
    if (fits(today, cost, day_limit)) return now;
    size_t m = 0;
    struct charge *w = malloc((l->n ? l->n : 1) * sizeof *w);
    if (!w) return -1;
    for (size_t i = 0; i < l->n; i++)
        if (l->c[i].t > now - LEDGER_WINDOW_S) w[m++] = l->c[i];
    qsort(w, m, sizeof *w, cmp_time);
    int64_t at = -1;
    for (size_t i = 0; i < m; i++) {
        today -= w[i].eps;
        if (i + 1 < m && w[i + 1].t == w[i].t) continue; /* they leave together */
        if (fits(today, cost, day_limit) || i + 1 == m) {
            at = w[i].t + LEDGER_WINDOW_S;
            break;
        }
    }
    free(w);
    return at;
}

int ledger_reset(const char *path, const char *key_path, char *err, size_t errlen)
{
    struct ledger *l = ledger_new(err, errlen);
    if (!l) return -1;
    int rc = -1;
    int fd = -1;
    if (set_paths(l, path, key_path, err, errlen) == 0 &&
        (fd = lock_take(l->path, err, errlen)) >= 0) {
        randombytes_buf(l->key, KEYLEN);
        /* a symlink in place of either file is replaced, never followed (rename) */
        if (write_atomic(l->key_path, l->key, KEYLEN, err, errlen) == 0)
            rc = encode_write(l, err, errlen);
    }
    lock_drop(fd);
    ledger_close(l);
    return rc;
}
