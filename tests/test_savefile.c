/* app/savefile: atomic writes replace the file whole or leave it as it was. */
#include "tests/testutil.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_write_replace_and_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
