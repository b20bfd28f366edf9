/* Tests of core/enclave: guard pages, canary, sealing, smaps flags, fork, hardening,
 * core dumps. Faults are provoked in forked children (as libsodium's own tests do). */
#include "tests/testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <time.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/enclave.h"

static char err[256];
static const int path_flags[2] = {0, ENCLAVE_NO_SECRETMEM};

static void child_write_past_end(int flags)
{
    struct enclave *r;
    if (enclave_alloc(&r, 100, flags, err, sizeof err) != 0) _exit(3);
    if (enclave_unseal(r, err, sizeof err) != 0) _exit(3);
    memset(r->ptr, 1, r->size);          /* in bounds: fine */
    volatile uint8_t *p = r->ptr;
    p[r->size] = 1;                      /* one byte past the end: guard page */
    _exit(0);
}

static void child_write_before_start(int flags)
{
    struct enclave *r;
    if (enclave_alloc(&r, 100, flags, err, sizeof err) != 0) _exit(3);
    if (enclave_unseal(r, err, sizeof err) != 0) _exit(3);
    volatile uint8_t *p = r->ptr;
    p[-1] = 1;                           /* one byte before: the canary */
    enclave_free(r);                     /* must abort */
    _exit(0);
}

static void child_read_sealed(int flags)
{
    struct enclave *r;
    if (enclave_alloc(&r, 100, flags, err, sizeof err) != 0) _exit(3);
    volatile uint8_t *p = r->ptr;
    uint8_t v = p[0];                    /* sealed: PROT_NONE */
    (void)v;
    _exit(0);
}

static void test_guard_pages_kill(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        int st = tu_in_child(child_write_past_end, path_flags[i]);
        assert_true(tu_died_of_fault(st));
        st = tu_in_child(child_write_before_start, path_flags[i]);
        assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
        st = tu_in_child(child_read_sealed, path_flags[i]);
        assert_true(tu_died_of_fault(st));
    }
}

static void test_unseal_keeps_data(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        struct enclave *r;
        assert_int_equal(enclave_alloc(&r, 10000, path_flags[i], err, sizeof err), 0);
        assert_int_equal(r->sealed, 1);
        assert_int_equal(enclave_unseal(r, err, sizeof err), 0);
        for (size_t k = 0; k < r->size; k++) assert_int_equal(r->ptr[k], 0);
        for (size_t k = 0; k < r->size; k++) r->ptr[k] = (uint8_t)(k * 7 + 1);
        assert_int_equal(enclave_seal(r, err, sizeof err), 0);
        assert_int_equal(r->sealed, 1);
        assert_int_equal(enclave_unseal(r, err, sizeof err), 0);
        assert_int_equal(enclave_unseal(r, err, sizeof err), 0);   /* nested */
        assert_int_equal(enclave_seal(r, err, sizeof err), 0);
        assert_int_equal(r->sealed, 0);                           /* still one level open */
        for (size_t k = 0; k < r->size; k++) assert_int_equal(r->ptr[k], (uint8_t)(k * 7 + 1));
        assert_int_equal(enclave_seal(r, err, sizeof err), 0);
        assert_int_equal(r->sealed, 1);
        enclave_free(r);
    }
}

/* Range unseal opens only the pages spanning the range. */
static void child_range(int outside)
{
    struct enclave *r;
    if (enclave_alloc(&r, 4 * 4096 - 16, ENCLAVE_NO_SECRETMEM, err, sizeof err) != 0) _exit(3);
    /* ptr is page-aligned here (size + canary = 4 pages); open the third page only. */
    if (enclave_unseal_range(r, 2 * 4096 + 10, 100, err, sizeof err) != 0) _exit(4);
    volatile uint8_t *p = r->ptr;
    p[2 * 4096 + 50] = 7;
    if (outside) p[4096 + 50] = 7;          /* the second page is still sealed */
    if (enclave_seal_range(r, 2 * 4096 + 10, 100, err, sizeof err) != 0) _exit(5);
    if (!outside) {
        if (enclave_unseal(r, err, sizeof err) != 0 || p[2 * 4096 + 50] != 7) _exit(6);
        if (enclave_unseal_range(r, 0, r->size + 1, err, sizeof err) != -1) _exit(7);
        if (enclave_seal(r, err, sizeof err) != 0) _exit(8);
        p[2 * 4096 + 50] = 7;               /* sealed again: faults */
    }
    _exit(0);
}

static void test_range_seal(void **state)
{
    (void)state;
    assert_true(tu_died_of_fault(tu_in_child(child_range, 1)));
    assert_true(tu_died_of_fault(tu_in_child(child_range, 0)));
}

static void test_bad_size(void **state)
{
    (void)state;
    struct enclave *r = (void *)1;
    assert_int_equal(enclave_alloc(&r, 0, 0, err, sizeof err), -1);
    assert_null(r);
    assert_non_null(strstr(err, "size"));
}

/* smaps entry of the mapping containing addr. */
struct vma_info { size_t size_kb, locked_kb; char flags[512]; };

static int smaps_lookup(const void *addr, struct vma_info *vi)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[512];
    int in = 0, found = 0;
    memset(vi, 0, sizeof *vi);
    uintptr_t a = (uintptr_t)addr;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            if (in) break;
            in = a >= lo && a < hi;
            continue;
        }
        if (!in) continue;
        found = 1;
        sscanf(line, "Size: %zu kB", &vi->size_kb);
        sscanf(line, "Locked: %zu kB", &vi->locked_kb);
        if (strncmp(line, "VmFlags:", 8) == 0) snprintf(vi->flags, sizeof vi->flags, "%s", line + 8);
    }
    fclose(f);
    return found ? 0 : -1;
}

static int has_flag(const char *flags, const char *fl)
{
    char pat[8];
    snprintf(pat, sizeof pat, " %s", fl);
    const char *p = flags;
    while ((p = strstr(p, pat))) {
        char nx = p[strlen(pat)];
        if (nx == ' ' || nx == '\n' || nx == '\0') return 1;
        p++;
    }
    return 0;
}

static void test_smaps_flags(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        struct enclave *r;
        assert_int_equal(enclave_alloc(&r, 3 * 4096 + 5, path_flags[i], err, sizeof err), 0);
        assert_int_equal(enclave_unseal(r, err, sizeof err), 0);
        struct vma_info vi;
        assert_int_equal(smaps_lookup(r->data, &vi), 0);
        assert_int_equal(vi.size_kb * 1024, r->data_len);
        assert_true(has_flag(vi.flags, "dd"));
        if (r->locked) {
            assert_true(has_flag(vi.flags, "lo"));
            assert_int_equal(vi.locked_kb * 1024, r->data_len);
        } else {
            print_message("note: region not locked (RLIMIT_MEMLOCK); Locked: not checked\n");
        }
        if (!r->secretmem) assert_true(has_flag(vi.flags, "wf"));
        /* The guard pages on both sides are inaccessible. */
        struct vma_info g;
        assert_int_equal(smaps_lookup(r->data - 1, &g), 0);
        assert_false(has_flag(g.flags, "rd"));
        assert_int_equal(smaps_lookup(r->data + r->data_len, &g), 0);
        assert_false(has_flag(g.flags, "rd"));
        enclave_free(r);
    }
}

static void test_no_lock_reported(void **state)
{
    (void)state;
    struct enclave *r;
    assert_int_equal(enclave_alloc(&r, 4096, ENCLAVE_NO_SECRETMEM | ENCLAVE_NO_LOCK, err,
                                   sizeof err), 0);
    assert_int_equal(r->locked, 0);
    struct enclave_stats st;
    enclave_stats(&st);
    assert_true(st.bytes >= r->data_len);
    assert_true(st.bytes - st.bytes_locked >= r->data_len);
    enclave_free(r);
}

/* After fork the child sees zeros (anonymous, WIPEONFORK) or nothing (secretmem). */
static struct enclave *fork_region;
static void child_read_region(int unused)
{
    (void)unused;
    /* mprotect directly: enclave_unseal would (rightly) abort on the wiped canary. */
    if (mprotect(fork_region->data, fork_region->data_len, PROT_READ) != 0) _exit(5);
    volatile uint8_t *p = fork_region->data;
    for (size_t i = 0; i < fork_region->data_len; i++)
        if (p[i] != 0) _exit(4);
    _exit(0);
}

static void test_fork_does_not_inherit(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(enclave_alloc(&fork_region, 256, path_flags[i], err, sizeof err), 0);
        if (!fork_region->wipeonfork) {
            print_message("note: MADV_WIPEONFORK/DONTFORK unavailable\n");
            enclave_free(fork_region);
            continue;
        }
        assert_int_equal(enclave_unseal(fork_region, err, sizeof err), 0);
        memset(fork_region->ptr, 0x5a, fork_region->size);
        assert_int_equal(enclave_seal(fork_region, err, sizeof err), 0);
        int st = tu_in_child(child_read_region, 0);
        /* secretmem is MADV_DONTFORK: the child has no mapping there at all (mprotect fails
         * with ENOMEM, exit 5) */
        if (fork_region->secretmem)
            assert_true(tu_died_of_fault(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 5));
        else assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        enclave_free(fork_region);
    }
}

static const uint8_t *hook_data;
static size_t hook_len;
static int hook_all_zero;
static void free_hook(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    hook_data = data;
    hook_len = len;
    hook_all_zero = 1;
    for (size_t i = 0; i < len; i++)
        if (data[i]) hook_all_zero = 0;
}

/* Frees r and checks that its whole data pages were zero when the free hook saw them. */
static void free_wiped(struct enclave *r)
{
    uint8_t *data = r->data;
    size_t len = r->data_len;
    enclave_set_free_hook(free_hook, NULL);
    enclave_free(r);
    enclave_set_free_hook(NULL, NULL);
    assert_ptr_equal(hook_data, data);
    assert_int_equal(hook_len, len);
    assert_int_equal(hook_all_zero, 1);
}

static void test_free_wipes(void **state)
{
    (void)state;
    struct enclave *r;
    assert_int_equal(enclave_alloc(&r, 5000, 0, err, sizeof err), 0);
    assert_int_equal(enclave_unseal(r, err, sizeof err), 0);
    memset(r->ptr, 0xff, r->size);
    free_wiped(r);   /* canary included: the whole data pages */
}

/* A large secret region is faulted as it is used, not when it is made; the pages that were
 * used are wiped when it is freed (the rest never held anything). */
static void test_large_secret_region_lazy(void **state)
{
    (void)state;
    const size_t ps = 4096, size = (size_t)2 << 20;
    struct enclave *r;
    assert_int_equal(enclave_alloc(&r, size, 0, err, sizeof err), 0);
    if (!r->secretmem) {
        enclave_free(r);
        print_message("SKIP: no memfd_secret on this kernel\n");
        skip();
    }
    size_t np = r->data_len / ps, resident = 0;
    unsigned char *vec = malloc(np);
    assert_non_null(vec);
    assert_int_equal(mincore(r->data, r->data_len, vec), 0);
    for (size_t i = 0; i < np; i++) resident += vec[i] & 1;
    assert_true(resident <= 2);       /* the canary's page */
    assert_int_equal(enclave_unseal(r, err, sizeof err), 0);
    memset(r->data + 7 * ps, 0xa5, 3 * ps);
    memset(r->data + np / 2 * ps + 100, 0x5a, 1000);
    free_wiped(r);
    free(vec);
}

static void child_harden(int unused)
{
    (void)unused;
    char e[128];
    if (enclave_harden(e, sizeof e) != 0) _exit(2);
    if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0) _exit(3);
    struct rlimit rl;
    if (getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur != 0 || rl.rlim_max != 0) _exit(4);
    struct enclave_stats st;
    enclave_stats(&st);
    if (st.dumpable != 0 || !st.core_limit_zero) _exit(5);
    _exit(0);
}

static void test_harden(void **state)
{
    (void)state;
    int st = tu_in_child(child_harden, 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* A marker computed byte by byte straight into its destination, so that no copy of it
 * exists anywhere else in the child's memory. */
static void write_marker(volatile uint8_t *dst, uint64_t seed, size_t n)
{
    uint64_t x = seed;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        dst[i] = (uint8_t)('A' + x % 26);
    }
}

#define MARK_LEN 48
static uint64_t dump_seed;
static void child_dump(int use_secretmem)
{
    /* Undo what tu_in_child set: this child is meant to dump. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_CORE, &rl) != 0) _exit(9);
    rl.rlim_cur = rl.rlim_max;                 /* ulimit -c unlimited, as far as allowed */
    if (setrlimit(RLIMIT_CORE, &rl) != 0) _exit(9);
    prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
    struct enclave *r;
    char e[64];
    if (enclave_alloc(&r, 4096, use_secretmem ? 0 : ENCLAVE_NO_SECRETMEM, e, sizeof e) != 0)
        _exit(8);
    if (enclave_unseal(r, e, sizeof e) != 0) _exit(8);
    write_marker(r->ptr, dump_seed, MARK_LEN);
    /* Control: the same kind of marker in ordinary heap memory must show up in the dump. */
    volatile uint8_t *heap = malloc(4096);
    if (!heap) _exit(8);
    write_marker(heap, dump_seed ^ 0x9e3779b97f4a7c15ull, MARK_LEN);
    abort();
}

static int file_contains(const char *path, const uint8_t *pat, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 1 << 20, have = 0;
    uint8_t *buf = malloc(cap + n);
    int found = 0;
    size_t r;
    while (buf && (r = fread(buf + have, 1, cap, f)) > 0) {
        size_t len = have + r;
        if (memmem(buf, len, pat, n)) { found = 1; break; }
        have = len < n ? len : n - 1;
        memmove(buf, buf + len - have, have);
    }
    free(buf);
    fclose(f);
    return found;
}

static void test_core_dump_has_no_marker(void **state)
{
    (void)state;
    if (getenv("CMIF_ASAN")) {
        print_message("SKIP: core dumps under ASan are huge and disabled by the runtime\n");
        skip();
    }
    char pattern[256] = "";
    FILE *f = fopen("/proc/sys/kernel/core_pattern", "r");
    if (f) { if (!fgets(pattern, sizeof pattern, f)) pattern[0] = 0; fclose(f); }
    if (pattern[0] == '|' || strchr(pattern, '/')) {
        print_message("SKIP: core_pattern '%s' does not write a core in the cwd\n", pattern);
        skip();
    }
    int dumped = 0;
    for (int sm = 1; sm >= 0; sm--) {
        char *dir = tu_tmpdir();
        char cwd[4096];
        assert_non_null(getcwd(cwd, sizeof cwd));
        assert_int_equal(chdir(dir), 0);
        dump_seed = (uint64_t)time(NULL) * 2654435761u + (uint64_t)getpid() * 40503u + (uint64_t)sm;
        int st = tu_in_child(child_dump, sm);
        assert_int_equal(chdir(cwd), 0);
        if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT))
            fail_msg("dump child: status %#x", st);
        DIR *d = opendir(dir);
        assert_non_null(d);
        struct dirent *de;
        char core[4600] = "";
        while ((de = readdir(d)))
            if (strncmp(de->d_name, "core", 4) == 0)
                snprintf(core, sizeof core, "%s/%s", dir, de->d_name);
        closedir(d);
        if (core[0]) {
            uint8_t mark[MARK_LEN], ctl[MARK_LEN];
            write_marker(mark, dump_seed, MARK_LEN);
            write_marker(ctl, dump_seed ^ 0x9e3779b97f4a7c15ull, MARK_LEN);
            int has_ctl = file_contains(core, ctl, MARK_LEN);
            int has_mark = file_contains(core, mark, MARK_LEN);
            if (has_ctl == 1) {
                dumped = 1;
                print_message("  core dump (%s region): heap marker present, region marker %s\n",
                              sm ? "memfd_secret" : "mmap", has_mark ? "PRESENT" : "absent");
                assert_int_equal(has_mark, 0);
            } else {
                print_message("note: core file without the heap control marker; not judged\n");
            }
        }
        tu_rmtree(dir);
    }
    if (!dumped) {
        print_message("SKIP: the kernel wrote no usable core file\n");
        skip();
    }
}

TU_MAIN(
    cmocka_unit_test(test_guard_pages_kill),
    cmocka_unit_test(test_unseal_keeps_data),
    cmocka_unit_test(test_bad_size),
    cmocka_unit_test(test_range_seal),
    cmocka_unit_test(test_smaps_flags),
    cmocka_unit_test(test_no_lock_reported),
    cmocka_unit_test(test_fork_does_not_inherit),
    cmocka_unit_test(test_free_wipes),
    cmocka_unit_test(test_large_secret_region_lazy),
    cmocka_unit_test(test_harden),
    cmocka_unit_test(test_core_dump_has_no_marker))
