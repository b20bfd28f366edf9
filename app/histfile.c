/* app/histfile: the sealed input history (see histfile.h). File format: the magic
 * "CMIFHIS2", a 24-byte nonce, then crypto_secretbox_easy of the entries, each ended by
 * '\n'. A new nonce at every write. Inside an entry a line break is written "\n", a
 * carriage return "\r" and a backslash "\\" (so a multi-line message stays one entry and
 * comes back with its line breaks); any other backslash is read as it is. Files of earlier
 * versions still load, their lines taken literally (no escapes): "CMIFHIS1" (sealed, line
 * breaks were flattened to spaces) and plaintext (no magic); both are rewritten as CMIFHIS2. */
#include "app/histfile.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/keyfile.h"
#include "app/savefile.h"
#include "app/xdg.h"

#define MAGIC "CMIFHIS2"
#define MAGIC_V1 "CMIFHIS1"   /* entries unescaped */
#define MAGICLEN 8
#define HEAD (MAGICLEN + crypto_secretbox_NONCEBYTES)
#define MAXFILE (64u << 20)

struct histfile {
    unsigned char key[crypto_secretbox_KEYBYTES];
    char path[4096];
    int max;
};

/* The entries in plaintext, one per line; wiped when freed. */
struct plain {
    char *buf;
    size_t len, cap;
};

static void plain_free(struct plain *p)
{
    if (p->buf) sodium_memzero(p->buf, p->cap);
    free(p->buf);
    p->buf = NULL;
    p->len = p->cap = 0;
}

static int plain_put(struct plain *p, const char *s, size_t n)
{
    if (p->len + n > p->cap) {
        size_t nc = p->cap ? p->cap : 256;
        while (nc < p->len + n) nc *= 2;
        /* No realloc: the old block would be freed unwiped. */
        char *nb = malloc(nc);
        if (!nb) return -1;
        if (p->len) memcpy(nb, p->buf, p->len);
        size_t keep = p->len;
        plain_free(p);
        p->buf = nb;
        p->len = keep;
        p->cap = nc;
    }
    memcpy(p->buf + p->len, s, n);
    p->len += n;
    return 0;
}

int histfile_open(struct histfile **out, const char *path, const char *key_path, int max,
                  char *err, size_t errlen)
{
    *out = NULL;
    if (sodium_init() < 0) {
        snprintf(err, errlen, "history: libsodium did not initialize");
        return -1;
    }
    struct histfile *h = sodium_malloc(sizeof *h);
    if (!h) {
        snprintf(err, errlen, "history: out of memory");
        return -1;
    }
    memset(h, 0, sizeof *h);
    h->max = max > 0 ? max : 1000;
    if ((size_t)snprintf(h->path, sizeof h->path, "%s", path) >= sizeof h->path) {
        sodium_free(h);
        snprintf(err, errlen, "history: path too long");
        return -1;
    }
    if (keyfile_load(key_path, h->key, sizeof h->key, err, errlen) < 0) {
        sodium_free(h);
        return -1;
    }
    *out = h;
    return 0;
}

void histfile_close(struct histfile *h)
{
    if (h) sodium_free(h);   /* sodium_free wipes */
}

const char *histfile_path(const struct histfile *h) { return h->path; }

/* The whole file in memory; 1 when there is none. */
static int slurp(const char *path, unsigned char **out, size_t *n, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rbe");
    if (!f && errno == ENOENT) return 1;
    if (!f) {
        snprintf(err, errlen, "history %s: %s", path, strerror(errno));
        return -1;
    }
    struct plain p = { 0 };
    char chunk[4096];
    size_t r;
    while ((r = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (p.len + r > MAXFILE || plain_put(&p, chunk, r) != 0) {
            fclose(f);
            plain_free(&p);
            sodium_memzero(chunk, sizeof chunk);
            snprintf(err, errlen, "history %s: too large", path);
            return -1;
        }
    }
    sodium_memzero(chunk, sizeof chunk);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        plain_free(&p);
        snprintf(err, errlen, "history %s: read error", path);
        return -1;
    }
    *out = (unsigned char *)p.buf;
    *n = p.len;
    return 0;
}

/* Appends one entry to p as the file holds it (see the top of this file), '\n' ended. */
static int put_entry(struct plain *p, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *e = s[i] == '\n' ? "\\n" : s[i] == '\r' ? "\\r" : s[i] == '\\' ? "\\\\" : NULL;
        if (e ? plain_put(p, e, 2) != 0 : plain_put(p, s + i, 1) != 0) return -1;
    }
    return plain_put(p, "\n", 1);
}

/* Decodes one stored entry in place (the result is never longer). */
static void unescape(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '\\' && (s[1] == 'n' || s[1] == 'r' || s[1] == '\\')) {
            s++;
            *o++ = *s == 'n' ? '\n' : *s == 'r' ? '\r' : '\\';
        } else *o++ = *s;
    }
    *o = 0;
}

/* An earlier version's entries (one per line, taken literally) in the current encoding. */
static int escape_old(struct plain *p)
{
    struct plain q = { 0 };
    for (size_t i = 0; i < p->len;) {
        char *nl = memchr(p->buf + i, '\n', p->len - i);
        size_t n = (size_t)(nl - (p->buf + i));
        if (put_entry(&q, p->buf + i, n) != 0) {
            plain_free(&q);
            return -1;
        }
        i += n + 1;
    }
    plain_free(p);
    *p = q;
    return 0;
}

/* Decrypts (or, for an old plaintext file, copies) the entries into p. 1: old format. */
static int load_plain(struct histfile *h, struct plain *p, char *err, size_t errlen)
{
    unsigned char *b = NULL;
    size_t n = 0;
    int rc = slurp(h->path, &b, &n, err, errlen);
    if (rc == 1) return 0;
    if (rc < 0) return -1;
    int old = 0;
    int v1 = n >= MAGICLEN && !memcmp(b, MAGIC_V1, MAGICLEN);
    if (n >= MAGICLEN && (v1 || !memcmp(b, MAGIC, MAGICLEN))) {
        if (n < HEAD + crypto_secretbox_MACBYTES) rc = -1;
        size_t m = rc < 0 ? 0 : n - HEAD - crypto_secretbox_MACBYTES;
        char *pt = rc < 0 ? NULL : malloc(m + 1);
        if (!pt || crypto_secretbox_open_easy((unsigned char *)pt, b + HEAD, n - HEAD,
                                              b + MAGICLEN, h->key) != 0) {
            if (pt) sodium_memzero(pt, m + 1);
            free(pt);
            free(b);
            snprintf(err, errlen,
                     "history %s does not open under this user's key (changed or from another "
                     "account); it was left as it is and not used",
                     h->path);
            return -1;
        }
        p->buf = pt;
        p->len = m;
        p->cap = m + 1;
        old = v1;
    } else {
        old = 1;
        p->buf = (char *)b;   /* taken over: wiped by plain_free */
        p->len = p->cap = n;
        b = NULL;
    }
    free(b);   /* ciphertext only */
    if ((p->len && p->buf[p->len - 1] != '\n' && plain_put(p, "\n", 1) != 0) ||
        (old && escape_old(p) != 0)) {
        plain_free(p);
        snprintf(err, errlen, "history: out of memory");
        return -1;
    }
    return old;
}

/* Keeps the newest h->max entries of p, seals them and replaces the file. */
static int store(struct histfile *h, struct plain *p, char *err, size_t errlen)
{
    size_t lines = 0, start = 0;
    for (size_t i = 0; i < p->len; i++) lines += p->buf[i] == '\n';
    for (; lines > (size_t)h->max && start < p->len; start++)
        if (p->buf[start] == '\n') lines--;
    size_t m = p->len - start;
    size_t n = HEAD + crypto_secretbox_MACBYTES + m;
    unsigned char *b = malloc(n);
    if (!b) {
        snprintf(err, errlen, "history: out of memory");
        return -1;
    }
    memcpy(b, MAGIC, MAGICLEN);
    randombytes_buf(b + MAGICLEN, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(b + HEAD, (const unsigned char *)p->buf + start, m, b + MAGICLEN,
                          h->key);
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", h->path);
    unlink(tmp);   /* a leftover of a crashed write; a link there is removed, not followed */
    char e2[600];
    FILE *f = savefile_open_private(tmp, 0, e2, sizeof e2);
    if (!f) {
        free(b);
        snprintf(err, errlen, "history %s", e2);
        return -1;
    }
    int ok = fwrite(b, 1, n, f) == n;
    free(b);
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) ok = 0;
    if (fclose(f) != 0) ok = 0;
    if (!ok || rename(tmp, h->path) != 0) {
        snprintf(err, errlen, "history %s: write failed: %s", h->path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int histfile_read(struct histfile *h, void (*add)(void *ctx, const char *line), void *ctx,
                  char *err, size_t errlen)
{
    struct plain p = { 0 };
    int old = load_plain(h, &p, err, errlen);
    if (old < 0) return -1;
    /* An earlier version's file is rewritten in this one's format first: the loop below
     * decodes p in place. */
    int rc = old ? store(h, &p, err, errlen) : 0;
    for (size_t i = 0; i < p.len;) {
        char *nl = memchr(p.buf + i, '\n', p.len - i);
        *nl = 0;
        unescape(p.buf + i);   /* in place: p is wiped whole when freed */
        if (p.buf[i]) add(ctx, p.buf + i);
        i = (size_t)(nl - p.buf) + 1;
    }
    plain_free(&p);
    return rc;
}

int histfile_append(struct histfile *h, const char *line, char *err, size_t errlen)
{
    struct plain p = { 0 };
    if (load_plain(h, &p, err, errlen) < 0) return -1;
    /* The last entry, to drop a consecutive duplicate (compared as stored). */
    size_t last = p.len ? p.len - 1 : 0;
    while (last > 0 && p.buf[last - 1] != '\n') last--;
    size_t at = p.len;
    if (put_entry(&p, line, strlen(line)) != 0) {
        plain_free(&p);
        snprintf(err, errlen, "history: out of memory");
        return -1;
    }
    int dup = at && at - last == p.len - at && !memcmp(p.buf + last, p.buf + at, at - last);
    int rc = dup ? 0 : store(h, &p, err, errlen);
    plain_free(&p);
    return rc;
}

void histfile_open_user(int want, struct histfile **hf, char *note, size_t note_cap,
                        char *off, size_t off_cap)
{
    char path[4096], key[4096], err[700];
    *hf = NULL;
    if (xdg_path(XDG_STATE, "history", want, path, sizeof path, err, sizeof err) != 0 ||
        xdg_path(XDG_STATE, "history.key", want, key, sizeof key, err, sizeof err) != 0) {
        if (want)
            snprintf(off, off_cap,
                     "%.500s: the input history is kept for this session only", err);
        return;
    }
    if (!want) {
        FILE *f = fopen(path, "rbe");
        char magic[8] = "";
        if (f && (fread(magic, 1, sizeof magic, f) != sizeof magic || memcmp(magic, MAGIC, 8)) &&
            memcmp(magic, MAGIC_V1, 8))
            snprintf(off, off_cap,
                     "%.500s holds inputs of an earlier cmif in plain text: delete it, or run with "
                     "--history once to seal it",
                     path);
        if (f) fclose(f);
        return;
    }
    if (histfile_open(hf, path, key, 1000, err, sizeof err) != 0) {
        snprintf(off, off_cap,
                 "%.500s: the input history is kept for this session only", err);
        return;
    }
    snprintf(note, note_cap,
             "--history: your inputs are kept in %.300s, sealed (XSalsa20-Poly1305) under the key "
             "in %.300s; other users cannot read them, you can (and so can anyone with your "
             "account)",
             path, key);
}
