/* app/savefile: atomic writes replace the file whole or leave it as it was. */
#include "tests/testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/savefile.h"

static int fill_text(FILE *f, void *ctx)
{
    return fputs(ctx, f) < 0 ? -1 : 0;
}

static int fill_fails(FILE *f, void *ctx)
{
    (void)ctx;
    fputs("partial", f);
    return -1;
}

static void expect_content(const char *path, const char *want)
{
    size_t n;
    char *got = tu_read_all(path, &n);
    assert_string_equal(got, want);
    free(got);
}

static void test_write_replace_and_fail(void **state)
{
    (void)state;
    char path[512], tmp[520], err[256];
    char *dir = tu_tmpfile("out.bin", path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);

    assert_int_equal(savefile_write(path, fill_text, "first", err, sizeof err), 0);
    expect_content(path, "first");
    assert_int_equal(savefile_write(path, fill_text, "second", err, sizeof err), 0);
    expect_content(path, "second");
    assert_int_equal(access(tmp, F_OK), -1);

    /* A failed fill leaves the old file and no temporary behind. */
    assert_int_equal(savefile_write(path, fill_fails, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "write failed"));
    assert_non_null(strstr(err, path));
    expect_content(path, "second");
    assert_int_equal(access(tmp, F_OK), -1);

    /* A directory that does not exist is named in the error. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/missing/out.bin", dir);
    assert_int_equal(savefile_write(bad, fill_text, "x", err, sizeof err), -1);
    assert_non_null(strstr(err, "missing/out.bin.tmp"));

    /* A path too long for the temporary name is refused, not truncated. */
    char *lng = malloc(5000);
    assert_non_null(lng);
    memset(lng, 'a', 4999);
    lng[4999] = 0;
    char lerr[8192];
    assert_int_equal(savefile_write(lng, fill_text, "x", lerr, sizeof lerr), -1);
    assert_non_null(strstr(lerr, "path too long"));
    free(lng);
    tu_rmtree(dir);
}

static mode_t mode_of(const char *path)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    return st.st_mode & 07777;
}

/* Files that hold the user's text: never through a link, never readable by others, an
 * existing file only when asked. */
static void test_open_private(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char path[512], link[512], target[512], err[1024];
    snprintf(path, sizeof path, "%s/t.md", dir);
    snprintf(link, sizeof link, "%s/link.md", dir);
    snprintf(target, sizeof target, "%s/target.md", dir);

    FILE *f = savefile_open_private(path, 0, err, sizeof err);
    assert_non_null(f);
    fputs("new", f);
    fclose(f);
    assert_int_equal(mode_of(path), 0600);
    expect_content(path, "new");

    /* An existing 0644 file: refused without the flag, made 0600 and emptied with it. */
    assert_int_equal(chmod(path, 0644), 0);
    assert_null(savefile_open_private(path, 0, err, sizeof err));
    assert_int_equal(errno, EEXIST);
    assert_non_null(strstr(err, "already exists"));
    expect_content(path, "new");
    assert_int_equal(mode_of(path), 0644);
    f = savefile_open_private(path, SAVEFILE_OVERWRITE, err, sizeof err);
    assert_non_null(f);
    assert_int_equal(mode_of(path), 0600);
    fputs("x", f);
    fclose(f);
    expect_content(path, "x");

    /* A link is refused, dangling or not, and its target is neither created nor changed. */
    assert_int_equal(symlink(target, link), 0);
    for (int flags = 0; flags <= SAVEFILE_OVERWRITE; flags++) {
        assert_null(savefile_open_private(link, flags, err, sizeof err));
        assert_int_equal(errno, ELOOP);
        assert_non_null(strstr(err, "symbolic link"));
        assert_int_equal(access(target, F_OK), -1);
    }
    int fd = open(target, O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "keep", 4), 4);
    close(fd);
    assert_null(savefile_open_private(link, SAVEFILE_OVERWRITE, err, sizeof err));
    expect_content(target, "keep");
    assert_int_equal(mode_of(target), 0644);

    /* Not a regular file: refused. */
    assert_null(savefile_open_private(dir, SAVEFILE_OVERWRITE, err, sizeof err));
    assert_null(savefile_open_private("/dev/null", SAVEFILE_OVERWRITE, err, sizeof err));
    assert_non_null(strstr(err, "not a regular file"));
    tu_rmtree(dir);
}

static void test_expand(void **state)
{
    (void)state;
    char out[64];
    const char *home = getenv("HOME");
    char *saved = home ? strdup(home) : NULL;
    setenv("HOME", "/home/u", 1);
    assert_int_equal(savefile_expand("~/a.md", out, sizeof out), 0);
    assert_string_equal(out, "/home/u/a.md");
    assert_int_equal(savefile_expand("~", out, sizeof out), 0);
    assert_string_equal(out, "/home/u");
    assert_int_equal(savefile_expand("~other/a", out, sizeof out), 0);
    assert_string_equal(out, "~other/a");
    assert_int_equal(savefile_expand("rel/a", out, sizeof out), 0);
    assert_string_equal(out, "rel/a");
    assert_int_equal(savefile_expand("~/a", out, 5), -1);
    unsetenv("HOME");
    assert_int_equal(savefile_expand("~/a", out, sizeof out), -1);
    if (saved) setenv("HOME", saved, 1);
    free(saved);
}

TU_MAIN(
    cmocka_unit_test(test_write_replace_and_fail),
    cmocka_unit_test(test_open_private),
    cmocka_unit_test(test_expand))
