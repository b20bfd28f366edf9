/* Tests of core/ledger: charging and refusing under the day limit, the rolling window,
 * persistence, file protection (mode, symlinks, every bit flip, truncation, wrong key),
 * concurrent charging from two processes, and the explicit reset. */
#include "tests/testutil.h"

#include <fcntl.h>
#include <math.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/ledger.h"

#define T0 1700000000LL
#define DAY LEDGER_WINDOW_S

static char *dir;
static char path[512], keyp[512];

static int setup(void **st)
{
    (void)st;
    dir = tu_tmpdir();
    snprintf(path, sizeof path, "%s/state/cmif/ledger", dir);
    snprintf(keyp, sizeof keyp, "%s/state/cmif/ledger.key", dir);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    tu_rmtree(dir);
    dir = NULL;
    return 0;
}

static struct ledger *must_open(void)
{
    struct ledger *l;
    char err[512];
    if (ledger_open(&l, path, NULL, err, sizeof err)) fail_msg("ledger_open: %s", err);
    return l;
}

static void write_bytes(const char *p, const char *b, size_t n)
{
    int fd = open(p, O_WRONLY | O_TRUNC);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, n), (ssize_t)n);
    close(fd);
}

static void test_charge_refuse_expire(void **st)
{
    (void)st;
    char err[512];
    struct ledger *l = must_open();
    assert_true(ledger_today(l, T0) == 0 && ledger_lifetime(l) == 0);
    assert_int_equal(ledger_charge(l, 3, 10, T0, err, sizeof err), 0);
    assert_int_equal(ledger_charge(l, 0.1, 10, T0 + 3600, err, sizeof err), 0);
    assert_true(fabs(ledger_today(l, T0 + 3600) - 3.1) < 1e-12);
    double left;
    assert_int_equal(ledger_check(l, 6.9, 10, T0 + 3600, &left), 0);
    assert_true(fabs(left - 6.9) < 1e-12);
    assert_int_equal(ledger_check(l, 7, 10, T0 + 3600, &left), -1);
    /* 69 charges of 0.1 fill the day exactly (tolerance absorbs rounding) */
    for (int i = 0; i < 69; i++) assert_int_equal(ledger_charge(l, 0.1, 10, T0 + 7200, err, sizeof err), 0);
    assert_int_equal(ledger_charge(l, 0.1, 10, T0 + 7200, err, sizeof err), 1);
    assert_non_null(strstr(err, "left"));
    assert_int_equal(ledger_charge(l, 0, 10, T0 + 7200, err, sizeof err), 0);
    assert_int_equal(ledger_charge(l, -1, 10, T0 + 7200, err, sizeof err), -1);
    /* the first charge (3 at T0) leaves the window at T0 + DAY exactly */
    assert_int_equal(ledger_next_free(l, 2, 10, T0 + 7200), T0 + DAY);
    assert_int_equal(ledger_next_free(l, 3.05, 10, T0 + 7200), T0 + 3600 + DAY);
    assert_int_equal(ledger_next_free(l, 11, 10, T0 + 7200), -1);
    assert_int_equal(ledger_check(l, 2, 10, T0 + DAY - 1, NULL), -1);
    assert_int_equal(ledger_check(l, 2, 10, T0 + DAY, NULL), 0);
    assert_int_equal(ledger_next_free(l, 2, 10, T0 + DAY), T0 + DAY);
    assert_int_equal(ledger_charge(l, 2, 10, T0 + DAY, err, sizeof err), 0);
    assert_true(fabs(ledger_today(l, T0 + DAY) - 9.0) < 1e-9);
    assert_true(fabs(ledger_lifetime(l) - 12.0) < 1e-9);
    /* a clock set back does not free budget: future-stamped charges count as today's */
    assert_true(ledger_today(l, T0 - 5 * DAY) > 8.9); /* the T0 charge was pruned */
    ledger_close(l);
    /* survives reopening: old charges only in the lifetime total */
    l = must_open();
    assert_true(fabs(ledger_today(l, T0 + DAY) - 9.0) < 1e-9);
    assert_true(fabs(ledger_lifetime(l) - 12.0) < 1e-9);
    assert_true(fabs(ledger_today(l, T0 + 3 * DAY)) < 1e-12);
    ledger_close(l);
    /* a second handle sees the first one's charges after refresh, and charge re-reads */
    struct ledger *a = must_open(), *b = must_open();
    assert_int_equal(ledger_charge(a, 1, 10, T0 + 3 * DAY, err, sizeof err), 0);
    assert_true(ledger_today(b, T0 + 3 * DAY) == 0);
    assert_int_equal(ledger_refresh(b, err, sizeof err), 0);
    assert_true(ledger_today(b, T0 + 3 * DAY) == 1);
    assert_int_equal(ledger_charge(b, 9.5, 10, T0 + 3 * DAY, err, sizeof err), 1);
    ledger_close(a);
    ledger_close(b);
    /* key and ledger are private */
    struct stat s;
    assert_int_equal(stat(path, &s), 0);
    assert_int_equal(s.st_mode & 0777, 0600);
    assert_int_equal(stat(keyp, &s), 0);
    assert_int_equal(s.st_mode & 0777, 0600);
    assert_int_equal(s.st_size, 32);
}

static void test_mode_and_symlink(void **st)
{
    (void)st;
    char err[512];
    struct ledger *l = must_open();
    assert_int_equal(ledger_charge(l, 1, 10, T0, err, sizeof err), 0);
    ledger_close(l);
    /* a wider mode is narrowed */
    assert_int_equal(chmod(path, 0644), 0);
    l = must_open();
    ledger_close(l);
    struct stat s;
    assert_int_equal(stat(path, &s), 0);
    assert_int_equal(s.st_mode & 0777, 0600);
    /* a symlink in place of the ledger is refused (even to a valid ledger) */
    char real[600];
    snprintf(real, sizeof real, "%s.real", path);
    assert_int_equal(rename(path, real), 0);
    assert_int_equal(symlink(real, path), 0);
    assert_int_equal(ledger_open(&l, path, NULL, err, sizeof err), -1);
    assert_null(l);
    assert_non_null(strstr(err, "symbolic link"));
    unlink(path);
    assert_int_equal(rename(real, path), 0);
    l = must_open();
    assert_true(ledger_lifetime(l) == 1);
    ledger_close(l);
}

static void test_tamper(void **st)
{
    (void)st;
    char err[512];
    struct ledger *l = must_open();
    assert_int_equal(ledger_charge(l, 1.5, 10, T0, err, sizeof err), 0);
    assert_int_equal(ledger_charge(l, 2, 10, T0 + 60, err, sizeof err), 0);
    size_t n;
    char *orig = tu_read_all(path, &n);
    /* every single-bit flip is refused, names the file, and leaves it as it was */
    for (size_t i = 0; i < n * 8; i++) {
        char *b = malloc(n);
        memcpy(b, orig, n);
        b[i / 8] ^= (char)(1 << (i % 8));
        write_bytes(path, b, n);
        struct ledger *t;
        if (ledger_open(&t, path, NULL, err, sizeof err) == 0) fail_msg("bit %zu flip accepted", i);
        assert_non_null(strstr(err, path));
        assert_non_null(strstr(err, "outside cmif"));
        /* the open handle refuses to charge on top of it, too */
        assert_int_equal(ledger_charge(l, 0.5, 10, T0 + 120, err, sizeof err), -1);
        size_t m;
        char *now = tu_read_all(path, &m);
        assert_int_equal(m, n);
        assert_memory_equal(now, b, n);
        free(now);
        free(b);
    }
    /* every truncation is refused */
    for (size_t k = 0; k < n; k++) {
        write_bytes(path, orig, k);
        struct ledger *t;
        assert_int_equal(ledger_open(&t, path, NULL, err, sizeof err), -1);
    }
    write_bytes(path, orig, n);
    ledger_close(l);
    l = must_open();
    assert_true(ledger_lifetime(l) == 3.5);
    ledger_close(l);
    /* a wrong key */
    char other[600];
    snprintf(other, sizeof other, "%s/other.key", dir);
    int fd = open(other, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_int_equal(write(fd, "0123456789abcdef0123456789abcdef", 32), 32);
    close(fd);
    assert_int_equal(ledger_open(&l, path, other, err, sizeof err), -1);
    assert_non_null(strstr(err, "integrity"));
    /* a missing key, or a missing ledger beside its key, is refused too */
    assert_int_equal(rename(keyp, other), 0);
    assert_int_equal(ledger_open(&l, path, NULL, err, sizeof err), -1);
    assert_int_equal(rename(other, keyp), 0);
    char moved[600];
    snprintf(moved, sizeof moved, "%s.moved", path);
    assert_int_equal(rename(path, moved), 0);
    assert_int_equal(ledger_open(&l, path, NULL, err, sizeof err), -1);
    assert_non_null(strstr(err, "missing"));
    assert_int_equal(access(path, F_OK), -1); /* not silently recreated */
    assert_int_equal(rename(moved, path), 0);
    l = must_open();
    ledger_close(l);
    free(orig);
    /* reset: explicit, works on a damaged ledger, forgets everything */
    write_bytes(path, "garbage", 7);
    assert_int_equal(ledger_open(&l, path, NULL, err, sizeof err), -1);
    assert_int_equal(ledger_reset(path, NULL, err, sizeof err), 0);
    l = must_open();
    assert_true(ledger_lifetime(l) == 0 && ledger_today(l, T0) == 0);
    ledger_close(l);
}

static void test_concurrent(void **st)
{
    (void)st;
    char err[512];
    struct ledger *l = must_open();
    ledger_close(l);
    pid_t kids[2];
    for (int k = 0; k < 2; k++) {
        kids[k] = fork();
        assert_true(kids[k] >= 0);
        if (kids[k] == 0) {
            struct ledger *c;
            if (ledger_open(&c, path, NULL, err, sizeof err)) _exit(2);
            for (int i = 0; i < 100; i++)
                if (ledger_charge(c, 0.25, 1000, T0 + i, err, sizeof err)) _exit(3);
            ledger_close(c);
            _exit(0);
        }
    }
    for (int k = 0; k < 2; k++) {
        int status;
        assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    l = must_open();
    assert_true(ledger_lifetime(l) == 50.0);
    assert_true(ledger_today(l, T0 + 100) == 50.0);
    /* the day limit holds across processes too */
    assert_int_equal(ledger_charge(l, 0.25, 50, T0 + 100, err, sizeof err), 1);
    ledger_close(l);
}

TU_MAIN(
    cmocka_unit_test_setup_teardown(test_charge_refuse_expire, setup, teardown),
    cmocka_unit_test_setup_teardown(test_mode_and_symlink, setup, teardown),
    cmocka_unit_test_setup_teardown(test_tamper, setup, teardown),
    cmocka_unit_test_setup_teardown(test_concurrent, setup, teardown))
