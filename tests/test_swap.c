/* Tests of core/swap: round trips through eviction, no plaintext on disk, a table of
 * tamper cases, key lifecycle, short writes, pages put straight into the file. */
#include "tests/testutil.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/enclave.h"
#include "core/swap.h"

#define PS 4096
#define IOLEN (SWAP_NONCE_BYTES + PS + SWAP_TAG_BYTES)

static char err[256];

static void fill_page(uint8_t *p, uint64_t page, int gen)
{
    for (size_t i = 0; i < PS; i++) p[i] = (uint8_t)(page * 31 + (uint64_t)i * 7 + (uint64_t)gen * 13);
}

static int check_page(const uint8_t *p, uint64_t page, int gen)
{
    for (size_t i = 0; i < PS; i++)
        if (p[i] != (uint8_t)(page * 31 + (uint64_t)i * 7 + (uint64_t)gen * 13)) return 0;
    return 1;
}

static struct swap *make_swap(uint64_t n_pages, size_t n_slots, int gen)
{
    struct swap *s;
    assert_int_equal(swap_open(&s, PS, n_pages, n_slots, NULL, 0, err, sizeof err), 0);
    assert_int_equal(swap_begin(s, err, sizeof err), 0);
    for (uint64_t p = 0; p < n_pages; p++) {
        uint8_t *d;
        assert_int_equal(swap_get(s, p, 1, &d, err, sizeof err), 0);
        fill_page(d, p, gen);
    }
    assert_int_equal(swap_end(s, err, sizeof err), 0);
    return s;
}

static void test_roundtrip_lru(void **state)
{
    (void)state;
    struct swap *s = make_swap(8, 3, 0);
    struct swap_stats st;
    swap_stats(s, &st);
    assert_int_equal(st.pages_out, 5);            /* 8 pages through 3 slots */
    assert_int_equal(st.resident, 3);
    assert_true(swap_fd(s) >= 0);
    struct stat fs;
    assert_int_equal(fstat(swap_fd(s), &fs), 0);
    assert_int_equal(fs.st_nlink, 0);             /* O_TMPFILE or unlinked at once */
    uint8_t buf[PS];
    for (int round = 0; round < 2; round++)
        for (uint64_t p = 0; p < 8; p++) {
            assert_int_equal(swap_read(s, p, 0, buf, PS, err, sizeof err), 0);
            assert_true(check_page(buf, p, 0));
        }
    swap_stats(s, &st);
    assert_true(st.pages_in >= 8);
    assert_int_equal(st.tamper_checks, st.pages_in);
    /* LRU: touching page 0 keeps it; a new page then evicts something else. */
    assert_int_equal(swap_begin(s, err, sizeof err), 0);
    uint8_t *d;
    assert_int_equal(swap_get(s, 5, 0, &d, err, sizeof err), 0);
    assert_int_equal(swap_get(s, 6, 0, &d, err, sizeof err), 0);
    assert_int_equal(swap_get(s, 7, 0, &d, err, sizeof err), 0);
    swap_stats(s, &st);
    uint64_t in0 = st.pages_in;
    assert_int_equal(swap_get(s, 5, 0, &d, err, sizeof err), 0);   /* hit */
    assert_int_equal(swap_get(s, 0, 0, &d, err, sizeof err), 0);   /* evicts 6 */
    assert_int_equal(swap_get(s, 5, 0, &d, err, sizeof err), 0);   /* still a hit */
    swap_stats(s, &st);
    assert_int_equal(st.pages_in, in0 + 1);
    assert_int_equal(swap_end(s, err, sizeof err), 0);
    swap_close(s);
}

static void test_errors(void **state)
{
    (void)state;
    struct swap *s;
    assert_int_equal(swap_open(&s, 0, 4, 1, NULL, 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "geometry"));
    assert_int_equal(swap_open(&s, PS, 4, 2, NULL, 0, err, sizeof err), 0);
    uint8_t buf[16];
    memset(buf, 0xaa, sizeof buf);
    assert_int_equal(swap_read(s, 1, 0, buf, sizeof buf, err, sizeof err), -1);
    assert_non_null(strstr(err, "never written"));
    assert_int_equal(buf[0], 0);
    assert_int_equal(swap_read(s, 9, 0, buf, sizeof buf, err, sizeof err), -1);
    assert_non_null(strstr(err, "out of range"));
    assert_int_equal(swap_read(s, 0, PS - 8, buf, sizeof buf, err, sizeof err), -1);
    uint8_t *d;
    assert_int_equal(swap_get(s, 0, 1, &d, err, sizeof err), -1);   /* not begun: sealed */
    assert_null(d);
    swap_close(s);
}

static void test_no_plaintext_on_disk(void **state)
{
    (void)state;
    static const char mark[] = "CMIF-PLAINTEXT-MARKER";
    struct swap *s;
    assert_int_equal(swap_open(&s, PS, 6, 2, NULL, 0, err, sizeof err), 0);
    assert_int_equal(swap_begin(s, err, sizeof err), 0);
    for (uint64_t p = 0; p < 6; p++) {
        uint8_t *d;
        assert_int_equal(swap_get(s, p, 1, &d, err, sizeof err), 0);
        for (size_t o = 0; o + sizeof mark <= PS; o += sizeof mark) memcpy(d + o, mark, sizeof mark);
    }
    assert_int_equal(swap_end(s, err, sizeof err), 0);
    assert_int_equal(swap_flush(s, err, sizeof err), 0);
    struct swap_stats st;
    swap_stats(s, &st);
    assert_int_equal(st.resident, 0);
    assert_int_equal(st.file_bytes, 6 * IOLEN);
    /* Read the file through /proc like an outsider would. */
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", swap_fd(s));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *buf = malloc(6 * IOLEN);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, 6 * IOLEN, f), 6 * IOLEN);
    fclose(f);
    assert_null(memmem(buf, 6 * IOLEN, mark, 8));
    assert_null(memmem(buf, 6 * IOLEN, "CMIF", 4));
    free(buf);
    /* And the pages come back intact. */
    char back[sizeof mark];
    assert_int_equal(swap_read(s, 3, sizeof mark, back, sizeof back, err, sizeof err), 0);
    assert_memory_equal(back, mark, sizeof mark);
    swap_close(s);
}

static void flip_bit(int fd, off_t off)
{
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, off), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, off), 1);
}

static void copy_range(int fd, off_t from, off_t to, size_t n, uint8_t *save)
{
    uint8_t *tmp = malloc(n);
    assert_non_null(tmp);
    assert_int_equal(pread(fd, tmp, n, from), (ssize_t)n);
    if (save) memcpy(save, tmp, n);
    else assert_int_equal(pwrite(fd, tmp, n, to), (ssize_t)n);
    free(tmp);
}

enum { T_NONCE, T_CIPHER, T_TAG, T_SWAP, T_REPLAY, T_TRUNC, T_COUNT };
static const char *const tamper_names[T_COUNT] = {
    "nonce bit flip", "ciphertext bit flip", "tag bit flip", "two pages swapped",
    "older version restored", "file truncated"};

static void test_tamper_table(void **state)
{
    (void)state;
    for (int t = 0; t < T_COUNT; t++) {
        struct swap *s = make_swap(4, 1, 0);
        assert_int_equal(swap_flush(s, err, sizeof err), 0);
        int fd = swap_fd(s);
        off_t p1 = IOLEN, p2 = 2 * IOLEN;
        uint8_t *old = malloc(IOLEN);
        assert_non_null(old);
        switch (t) {
        case T_NONCE: flip_bit(fd, p1 + 3); break;
        case T_CIPHER: flip_bit(fd, p1 + SWAP_NONCE_BYTES + 100); break;
        case T_TAG: flip_bit(fd, p1 + IOLEN - 2); break;
        case T_SWAP: copy_range(fd, p2, p1, IOLEN, NULL); break;   /* page 2's copy at 1 */
        case T_REPLAY: {
            copy_range(fd, p1, 0, IOLEN, old);                     /* version 1 of page 1 */
            assert_int_equal(swap_begin(s, err, sizeof err), 0);
            uint8_t *d;
            assert_int_equal(swap_get(s, 1, 1, &d, err, sizeof err), 0);
            fill_page(d, 1, 1);
            assert_int_equal(swap_end(s, err, sizeof err), 0);
            assert_int_equal(swap_flush(s, err, sizeof err), 0);   /* version 2 on disk */
            assert_int_equal(pwrite(fd, old, IOLEN, p1), IOLEN);   /* put version 1 back */
            break;
        }
        case T_TRUNC: assert_int_equal(ftruncate(fd, p1 + IOLEN / 2), 0); break;
        }
        free(old);
        uint8_t buf[PS];
        memset(buf, 0xaa, sizeof buf);
        err[0] = 0;
        int rc = swap_read(s, 1, 0, buf, PS, err, sizeof err);
        print_message("  %-24s -> %s\n", tamper_names[t], err);
        assert_int_equal(rc, -1);
        for (size_t i = 0; i < PS; i++) assert_int_equal(buf[i], 0);
        assert_true(strstr(err, "failed authentication") || strstr(err, "missing"));
        assert_non_null(strstr(err, "page 1"));
        /* Fatal: nothing is served afterwards, even untouched pages. */
        memset(buf, 0xaa, 16);
        assert_int_equal(swap_read(s, 0, 0, buf, 16, err, sizeof err), -1);
        assert_int_equal(buf[0], 0);
        struct swap_stats st;
        swap_stats(s, &st);
        assert_int_equal(st.failed, 1);
        swap_close(s);
    }
    /* Control: the same operations without tampering succeed (page 0 read as a check). */
    struct swap *s = make_swap(4, 1, 0);
    assert_int_equal(swap_flush(s, err, sizeof err), 0);
    uint8_t buf[PS];
    assert_int_equal(swap_read(s, 1, 0, buf, PS, err, sizeof err), 0);
    assert_true(check_page(buf, 1, 0));
    swap_close(s);
}

/* A swap file written by another process (another key) cannot be read. */
static void test_file_from_killed_run(void **state)
{
    (void)state;
    char copy[4200];
    char *dir = tu_tmpfile("left-over", copy, sizeof copy);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct swap *cs;
        char e[256];
        if (swap_open(&cs, PS, 2, 1, NULL, 0, e, sizeof e) != 0) _exit(2);
        if (swap_begin(cs, e, sizeof e) != 0) _exit(2);
        for (uint64_t p = 0; p < 2; p++) {
            uint8_t *d;
            if (swap_get(cs, p, 1, &d, e, sizeof e) != 0) _exit(2);
            fill_page(d, p, 0);
        }
        swap_end(cs, e, sizeof e);
        if (swap_flush(cs, e, sizeof e) != 0) _exit(2);
        /* What a crashed run would leave behind: its sealed pages. */
        uint8_t *b = malloc(2 * IOLEN);
        int out = open(copy, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (!b || out < 0 || pread(swap_fd(cs), b, 2 * IOLEN, 0) != 2 * IOLEN ||
            write(out, b, 2 * IOLEN) != 2 * IOLEN)
            _exit(3);
        close(out);
        kill(getpid(), SIGKILL);
        _exit(4);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    /* A new run with the same geometry and the same page versions (1) ... */
    struct swap *s = make_swap(2, 1, 0);
    assert_int_equal(swap_flush(s, err, sizeof err), 0);
    int in = open(copy, O_RDONLY);
    assert_true(in >= 0);
    uint8_t *b = malloc(2 * IOLEN);
    assert_non_null(b);
    assert_int_equal(read(in, b, 2 * IOLEN), 2 * IOLEN);
    close(in);
    /* ... given the old file's pages cannot open them. */
    assert_int_equal(pwrite(swap_fd(s), b, 2 * IOLEN, 0), 2 * IOLEN);
    free(b);
    uint8_t buf[PS];
    memset(buf, 0xaa, sizeof buf);
    assert_int_equal(swap_read(s, 0, 0, buf, PS, err, sizeof err), -1);
    assert_non_null(strstr(err, "failed authentication"));
    for (size_t i = 0; i < PS; i++) assert_int_equal(buf[i], 0);
    swap_close(s);
    tu_rmtree(dir);
}

static const uint8_t *watched_key;
static int key_region_seen, key_zero_at_free;
static void key_hook(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    if (watched_key >= data && watched_key + 32 <= data + len) {
        key_region_seen = 1;
        key_zero_at_free = 1;
        for (int i = 0; i < 32; i++)
            if (watched_key[i]) key_zero_at_free = 0;
    }
}

static void test_key_wiped_at_close(void **state)
{
    (void)state;
    struct swap *s;
    assert_int_equal(swap_open(&s, PS, 2, 1, NULL, 0, err, sizeof err), 0);
    watched_key = swap_test_key(s);
    enclave_set_free_hook(key_hook, NULL);
    swap_close(s);
    enclave_set_free_hook(NULL, NULL);
    assert_int_equal(key_region_seen, 1);
    assert_int_equal(key_zero_at_free, 1);
}

/* A write that cannot complete (file size limit here; a full disk behaves the same) keeps
 * the page resident, fails the operation, and never counts a partial page as written. */
static void test_short_write_fails_closed(void **state)
{
    (void)state;
    struct swap *s = make_swap(1, 1, 0);   /* warm up sodium etc. */
    swap_close(s);
    assert_int_equal(swap_open(&s, PS, 3, 1, NULL, 0, err, sizeof err), 0);
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*oldh)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = IOLEN + IOLEN / 2;      /* page 0 fits, page 1 only half */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    uint8_t *d;
    assert_int_equal(swap_begin(s, err, sizeof err), 0);
    assert_int_equal(swap_get(s, 0, 1, &d, err, sizeof err), 0);
    fill_page(d, 0, 0);
    assert_int_equal(swap_get(s, 1, 1, &d, err, sizeof err), 0);   /* page 0 out: fits */
    fill_page(d, 1, 0);
    int rc = swap_get(s, 2, 1, &d, err, sizeof err);                /* page 1 out: short */
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, oldh);
    assert_int_equal(rc, -1);
    assert_true(strstr(err, "short write") || strstr(err, "cannot write"));
    assert_non_null(strstr(err, "kept in memory"));
    /* Page 1 is still resident and intact; page 0 reads back from disk. */
    assert_int_equal(swap_get(s, 1, 0, &d, err, sizeof err), 0);
    assert_true(check_page(d, 1, 0));
    assert_int_equal(swap_end(s, err, sizeof err), 0);
    struct swap_stats st;
    swap_stats(s, &st);
    assert_int_equal(st.pages_out, 1);
    assert_int_equal(st.failed, 0);
    /* With room again the same eviction succeeds and page 1 round-trips. */
    assert_int_equal(swap_begin(s, err, sizeof err), 0);
    assert_int_equal(swap_get(s, 2, 1, &d, err, sizeof err), 0);
    fill_page(d, 2, 0);
    assert_int_equal(swap_end(s, err, sizeof err), 0);
    uint8_t buf[PS];
    for (uint64_t p = 0; p < 3; p++) {
        assert_int_equal(swap_read(s, p, 0, buf, PS, err, sizeof err), 0);
        assert_true(check_page(buf, p, 0));
    }
    swap_close(s);
}

/* The cache is sealed outside swap_begin/swap_end, and inside it only the slot in use is
 * open: a stale pointer to another slot faults. Run in children. */
static void child_touch_sealed(int which)
{
    struct swap *s;
    char e[256];
    if (swap_open(&s, PS, 4, 4, NULL, 0, e, sizeof e) != 0) _exit(2);
    uint8_t *p0, *p2;
    if (swap_begin(s, e, sizeof e) != 0 || swap_get(s, 0, 1, &p0, e, sizeof e) != 0) _exit(3);
    p0[0] = 1;
    if (which == 0) {
        if (swap_end(s, e, sizeof e) != 0) _exit(4);
    } else {
        if (swap_get(s, 2, 1, &p2, e, sizeof e) != 0) _exit(5);
        p2[0] = 2;                        /* the open slot: fine */
    }
    volatile uint8_t *v = p0;
    uint8_t x = v[0];                      /* sealed: must fault */
    (void)x;
}

static void test_sealed_outside_access(void **state)
{
    (void)state;
    for (int which = 0; which < 2; which++) {
        int st = tu_in_child(child_touch_sealed, which);
        assert_true(WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS));
    }
}

/* swap_put seals pages straight from a source into the file: they read back exactly (a short
 * tail as zeros), a flipped bit in one is still caught, and a resident page is refused. */
static void test_put(void **state)
{
    (void)state;
    enum { N = 40 };
    uint8_t *src = malloc((size_t)N * PS);
    assert_non_null(src);
    for (uint64_t p = 0; p < N; p++) fill_page(src + p * PS, p, 5);
    struct swap *s;
    assert_int_equal(swap_open(&s, PS, N, 3, NULL, 0, err, sizeof err), 0);
    size_t len = (size_t)N * PS - 100;             /* the last page is short */
    assert_int_equal(swap_put(s, 0, N, src, len, err, sizeof err), 0);
    struct swap_stats st;
    swap_stats(s, &st);
    assert_int_equal(st.pages_out, N);
    assert_int_equal(st.resident, 0);
    assert_int_equal(st.file_bytes, (size_t)N * IOLEN);
    uint8_t buf[PS];
    for (uint64_t p = 0; p < N; p++) {
        assert_int_equal(swap_read(s, p, 0, buf, PS, err, sizeof err), 0);
        if (p < N - 1) assert_true(check_page(buf, p, 5));
        else {
            assert_memory_equal(buf, src + p * PS, PS - 100);
            for (size_t i = PS - 100; i < PS; i++) assert_int_equal(buf[i], 0);
        }
    }
    /* Page N-1 is resident now (just read): refused. */
    assert_int_equal(swap_put(s, N - 1, 1, src, PS, err, sizeof err), -1);
    assert_non_null(strstr(err, "resident"));
    /* A flipped bit in a page that was put: detected on the way in. */
    int fd = swap_fd(s);
    uint8_t b;
    off_t at = (off_t)(5 * IOLEN + SWAP_NONCE_BYTES + 9);
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 1;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    assert_int_equal(swap_read(s, 5, 0, buf, PS, err, sizeof err), -1);
    assert_non_null(strstr(err, "authentication"));
    swap_close(s);
    free(src);
}

TU_MAIN(
    cmocka_unit_test(test_roundtrip_lru),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_no_plaintext_on_disk),
    cmocka_unit_test(test_tamper_table),
    cmocka_unit_test(test_file_from_killed_run),
    cmocka_unit_test(test_key_wiped_at_close),
    cmocka_unit_test(test_short_write_fails_closed),
    cmocka_unit_test(test_sealed_outside_access),
    cmocka_unit_test(test_put))
