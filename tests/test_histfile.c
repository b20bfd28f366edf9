/* app/histfile and app/keyfile: the --history file is sealed (no plaintext on disk), 0600,
 * keeps the newest entries without consecutive duplicates, refuses a file it cannot open
 * under the user's key, and seals a plaintext history an earlier version left. */
#include "tests/testutil.h"

#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/histfile.h"
#include "app/keyfile.h"

struct got {
    char s[8][64];
    int n;
};

static void add(void *ctx, const char *line)
{
    struct got *g = ctx;
    if (g->n < 8) snprintf(g->s[g->n], sizeof g->s[0], "%s", line);
    g->n++;
}

static int file_has(const char *path, const char *needle)
{
    size_t n;
    char *b = tu_read_all(path, &n);
    int hit = 0;
    for (size_t i = 0; i + strlen(needle) <= n; i++)
        if (!memcmp(b + i, needle, strlen(needle))) hit = 1;
    free(b);
    return hit;
}

/* A history and its key in dir, opened keeping max entries. */
/* Replaces the history file with len bytes of data, opens it again and reads it into g. */
static struct histfile *rewrite_read(const char *path, const char *key, const void *data,
                                     size_t len, struct got *g)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    struct histfile *h;
    char err[1024];
    assert_int_equal(histfile_open(&h, path, key, 10, err, sizeof err), 0);
    g->n = 0;
    assert_int_equal(histfile_read(h, add, g, err, sizeof err), 0);
    return h;
}

static struct histfile *open_in(const char *dir, char *path, char *key, int max)
{
    char err[1024];
    struct histfile *h;
    snprintf(path, 512, "%s/history", dir);
    snprintf(key, 512, "%s/history.key", dir);
    assert_int_equal(histfile_open(&h, path, key, max, err, sizeof err), 0);
    return h;
}

static void test_sealed_roundtrip(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char path[512], key[512], err[1024];
    struct histfile *h = open_in(dir, path, key, 3);
    const char *in[] = { "my secret one", "my secret one", "two\nlines", "three", "four" };
    for (int i = 0; i < 5; i++) assert_int_equal(histfile_append(h, in[i], err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_false(file_has(path, "secret"));
    assert_false(file_has(path, "three"));
    struct got g = { 0 };
    assert_int_equal(histfile_read(h, add, &g, err, sizeof err), 0);
    assert_int_equal(g.n, 3);   /* the newest 3; the duplicate kept once */
    assert_string_equal(g.s[0], "two\nlines");   /* one entry, its line break kept */
    assert_string_equal(g.s[2], "four");
    histfile_close(h);

    /* Another key (another account, a changed key file): refused, file left as it is. */
    unlink(key);
    assert_int_equal(histfile_open(&h, path, key, 3, err, sizeof err), 0);
    g.n = 0;
    assert_int_equal(histfile_read(h, add, &g, err, sizeof err), -1);
    assert_non_null(strstr(err, "does not open"));
    assert_int_equal(g.n, 0);
    histfile_close(h);

    /* A plaintext history of an earlier cmif is read once and sealed. */
    h = rewrite_read(path, key, "old plain one\nold two\n", 22, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.s[0], "old plain one");
    assert_false(file_has(path, "plain"));
    histfile_close(h);
    tu_rmtree(dir);
}

static void test_keyfile(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char key[512], link[512], err[1024];
    unsigned char k1[32], k2[32];
    snprintf(key, sizeof key, "%s/k", dir);
    snprintf(link, sizeof link, "%s/link", dir);
    assert_int_equal(keyfile_load(key, k1, sizeof k1, err, sizeof err), 1);
    assert_int_equal(keyfile_load(key, k2, sizeof k2, err, sizeof err), 0);
    assert_memory_equal(k1, k2, 32);
    assert_int_equal(keyfile_load(key, k2, 16, err, sizeof err), -1);   /* wrong size */
    chmod(key, 0644);
    assert_int_equal(keyfile_load(key, k2, sizeof k2, err, sizeof err), -1);
    assert_non_null(strstr(err, "private"));
    assert_int_equal(symlink(key, link), 0);
    assert_int_equal(keyfile_load(link, k2, sizeof k2, err, sizeof err), -1);
    assert_non_null(strstr(err, "symbolic link"));
    tu_rmtree(dir);
}

/* Line breaks, carriage returns and backslashes come back exactly (and the file has no
 * raw line break inside an entry); a file of the earlier sealed format, whose lines hold no
 * escapes, still loads with its backslashes as they were. */
static void test_multiline_roundtrip(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char path[512], key[512], err[1024];
    struct histfile *h = open_in(dir, path, key, 10);
    const char *in[] = { "line one\nline two\n\nline four", "a \\n stays\\\nC:\\dir\\",
                         "cr\r\nend\\", "line one\nline two\n\nline four" };
    for (int i = 0; i < 4; i++) assert_int_equal(histfile_append(h, in[i], err, sizeof err), 0);
    struct got g = { 0 };
    assert_int_equal(histfile_read(h, add, &g, err, sizeof err), 0);
    assert_int_equal(g.n, 4);   /* not a consecutive duplicate: the same text kept again */
    for (int i = 0; i < 4; i++) assert_string_equal(g.s[i], in[i]);
    assert_true(file_has(path, "CMIFHIS2"));
    histfile_close(h);

    /* The earlier format, sealed under the same key: lines taken literally. */
    unsigned char k[32];
    assert_int_equal(keyfile_load(key, k, sizeof k, err, sizeof err), 0);
    const char *pt = "old \\n one\nold two\n";
    size_t m = strlen(pt);
    unsigned char b[256];
    memcpy(b, "CMIFHIS1", 8);
    randombytes_buf(b + 8, crypto_secretbox_NONCEBYTES);
    crypto_secretbox_easy(b + 8 + crypto_secretbox_NONCEBYTES, (const unsigned char *)pt, m,
                          b + 8, k);
    h = rewrite_read(path, key, b, 8 + crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + m, &g);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.s[0], "old \\n one");
    assert_string_equal(g.s[1], "old two");
    assert_true(file_has(path, "CMIFHIS2"));   /* rewritten in the new format */
    g.n = 0;
    assert_int_equal(histfile_read(h, add, &g, err, sizeof err), 0);
    assert_int_equal(g.n, 2);
    assert_string_equal(g.s[0], "old \\n one");
    histfile_close(h);
    tu_rmtree(dir);
}

TU_MAIN(
    cmocka_unit_test(test_sealed_roundtrip),
    cmocka_unit_test(test_multiline_roundtrip),
    cmocka_unit_test(test_keyfile))
