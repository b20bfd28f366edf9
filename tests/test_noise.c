/* tests/test_noise: the exact samplers match their distributions; seeded streams repeat. */
#include "tests/testutil.h"

#include <math.h>

#include "core/enclave.h"
#include "core/noise.h"

#include <sys/syscall.h>

static struct noise *seeded(uint64_t seed)
{
    struct noise *n;
    char err[256];
    assert_int_equal(noise_open(&n, 1, seed, err, sizeof err), 0);
    return n;
}

/* |observed - expected| within 5 standard deviations of a binomial count. */
static void near_binom(long count, long total, double p)
{
    double mean = total * p, sd = sqrt(total * p * (1 - p)) + 1e-9;
    if (fabs(count - mean) > 5 * sd + 1)
        fail_msg("count %ld of %ld, expected %.1f (p = %.5f, sd %.1f)", count, total, mean, p, sd);
}

static void test_seeded_repeatable(void **state)
{
    (void)state;
    struct noise *a = seeded(7), *b = seeded(7), *c = seeded(8);
    int differ = 0;
    for (int i = 0; i < 2000; i++) {
        uint64_t x = noise_u64(a), y = noise_u64(b), z = noise_u64(c);
        assert_true(x == y);
        differ += x != z;
    }
    assert_true(differ > 1990);
    assert_int_equal(noise_seeded(a), 1);
    noise_close(a);
    noise_close(b);
    noise_close(c);
    struct noise *o;
    char err[256];
    assert_int_equal(noise_open(&o, 0, 0, err, sizeof err), 0);
    assert_int_equal(noise_seeded(o), 0);
    assert_true(noise_u64(o) != noise_u64(o) || noise_u64(o) != noise_u64(o));
    noise_close(o);
}

static void test_uniform(void **state)
{
    (void)state;
    struct noise *n = seeded(1);
    long hist[7] = {0};
    const long N = 70000;
    for (long i = 0; i < N; i++) {
        uint64_t u = noise_uniform(n, 7);
        assert_true(u < 7);
        hist[u]++;
    }
    for (int i = 0; i < 7; i++) near_binom(hist[i], N, 1.0 / 7);
    assert_int_equal(noise_uniform(n, 1), 0);
    assert_int_equal(noise_uniform(n, 0), 0);
    /* A bound near 2^64 exercises the rejection threshold. */
    uint64_t big = UINT64_MAX - 5;
    for (int i = 0; i < 100; i++) assert_true(noise_uniform(n, big) < big);
    noise_close(n);
}

static void test_bernoulli_exp(void **state)
{
    (void)state;
    struct noise *n = seeded(2);
    const long N = 60000;
    const uint64_t cases[][2] = {{0, 1}, {1, 2}, {1, 1}, {7, 3}, {5, 1}, {123456789, 100000000}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        long k = 0;
        for (long i = 0; i < N; i++) k += noise_bernoulli_exp(n, cases[c][0], cases[c][1]);
        near_binom(k, N, exp(-(double)cases[c][0] / (double)cases[c][1]));
    }
    long k = 0;
    for (long i = 0; i < N; i++) k += noise_bernoulli(n, 3, 10);
    near_binom(k, N, 0.3);
    noise_close(n);
}

/* pmf of the discrete Laplace with scale b at y. */
static double dlap_pmf(double b, long y)
{
    double q = exp(-1 / b);
    return (1 - q) / (1 + q) * pow(q, labs(y));
}

static void test_dlaplace(void **state)
{
    (void)state;
    struct noise *n = seeded(3);
    const long N = 80000;
    /* Scales 2.5 and 0.75 (fractions 5/2 and 3/4) cover num > den and num < den. */
    const uint64_t sc[][2] = {{5, 2}, {3, 4}};
    for (int s = 0; s < 2; s++) {
        double b = (double)sc[s][0] / (double)sc[s][1];
        long hist[41] = {0}, tail = 0;
        double sum = 0;
        for (long i = 0; i < N; i++) {
            int64_t y = noise_dlaplace(n, sc[s][0], sc[s][1]);
            sum += (double)y;
            if (y >= -20 && y <= 20) hist[y + 20]++;
            else tail++;
        }
        for (long y = -8; y <= 8; y++) near_binom(hist[y + 20], N, dlap_pmf(b, y));
        assert_true(fabs(sum / N) < 0.1);
        (void)tail;
    }
    noise_close(n);
}

static void test_geometric(void **state)
{
    (void)state;
    struct noise *n = seeded(4);
    const long N = 80000;
    double b = 1.5, q = exp(-1 / b);
    long hist[30] = {0};
    for (long i = 0; i < N; i++) {
        int64_t y = noise_geometric(n, 3, 2);
        assert_true(y >= 0);
        if (y < 30) hist[y]++;
    }
    for (int y = 0; y < 10; y++) near_binom(hist[y], N, (1 - q) * pow(q, y));
    /* Large scales as the mechanisms use them (2^41 grid units over 2^20). */
    double mean = 0;
    const uint64_t num = (uint64_t)1 << 41, den = (uint64_t)1 << 20;
    for (long i = 0; i < 20000; i++) mean += (double)noise_geometric(n, num, den);
    mean /= 20000;
    double bb = (double)num / (double)den, qq = exp(-1 / bb), expect = qq / (1 - qq);
    assert_true(fabs(mean - expect) < 0.05 * expect);
    noise_close(n);
}

static void test_unit(void **state)
{
    (void)state;
    struct noise *n = seeded(5);
    double s = 0;
    for (int i = 0; i < 10000; i++) {
        double u = noise_unit(n);
        assert_true(u >= 0 && u < 1);
        s += u;
    }
    assert_true(fabs(s / 10000 - 0.5) < 0.02);
    noise_close(n);
}

/* The mapping of /proc/self/maps containing addr: its name (path column) into name. */
static int maps_name(const void *addr, char *name, size_t cap)
{
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return -1;
    char line[1024];
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        int off = 0;
        if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %n", &lo, &hi, &off) < 2) continue;
        if ((uintptr_t)addr < lo || (uintptr_t)addr >= hi) continue;
        snprintf(name, cap, "%s", off ? line + off : "");
        name[strcspn(name, "\n")] = 0;
        found = 0;
        break;
    }
    fclose(f);
    return found;
}

static pid_t mem_pid;
static const void *mem_secret, *mem_control;
static uint8_t mem_control_bytes[32];

/* In a child: root reads the parent's memory through /proc/PID/mem. Exit 0: the control
 * (heap) read worked and the secret read failed; 2: the secret was readable; 3: the control
 * could not be read (no access at all: not judged). */
static void child_read_mem(int unused)
{
    (void)unused;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)mem_pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0) _exit(3);
    uint8_t buf[32];
    if (pread(fd, buf, sizeof buf, (off_t)(uintptr_t)mem_control) != (ssize_t)sizeof buf ||
        memcmp(buf, mem_control_bytes, sizeof buf) != 0)
        _exit(3);
    _exit(pread(fd, buf, sizeof buf, (off_t)(uintptr_t)mem_secret) > 0 ? 2 : 0);
}

/* The noise state (key, counter, the unread randomness) lies in a memfd_secret mapping, and
 * reading it through /proc/PID/mem fails even for root, while a heap buffer of the same
 * process reads fine. Skipped where the kernel has no memfd_secret. */
static void test_state_in_secretmem(void **state)
{
    (void)state;
    struct noise *n;
    char err[256];
    assert_int_equal(noise_open(&n, 0, 0, err, sizeof err), 0);
    char name[512];
    assert_int_equal(maps_name(n, name, sizeof name), 0);
    struct enclave_where w = {0};
    noise_where(n, &w);
    assert_int_equal(w.regions, 1);
    if (!strstr(name, "secretmem")) {
        long fd = -1;
#ifdef SYS_memfd_secret
        fd = syscall(SYS_memfd_secret, 0);
#endif
        if (fd >= 0) {
            close((int)fd);
            fail_msg("memfd_secret works here, but the noise state is in '%s'", name);
        }
        assert_int_equal(w.secretmem_regions, 0);
        noise_close(n);
        print_message("SKIP: no memfd_secret on this kernel; the noise state is in an "
                      "anonymous guarded mapping\n");
        skip();
    }
    assert_int_equal(w.secretmem_regions, 1);
    uint8_t *heap = malloc(sizeof mem_control_bytes);
    assert_non_null(heap);
    for (size_t i = 0; i < sizeof mem_control_bytes; i++) heap[i] = (uint8_t)(0xa5 ^ i);
    memcpy(mem_control_bytes, heap, sizeof mem_control_bytes);
    mem_pid = getpid();
    mem_secret = n;
    mem_control = heap;
    (void)noise_u64(n);      /* the state is live, not just allocated */
    int st = tu_in_child(child_read_mem, 0);
    free(heap);
    noise_close(n);
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 3) {
        print_message("SKIP: this process cannot read /proc/PID/mem of its parent (not root?)\n");
        skip();
    }
    if (WEXITSTATUS(st) == 2) fail_msg("the noise state was readable through /proc/PID/mem");
    assert_int_equal(WEXITSTATUS(st), 0);
}

TU_MAIN(
    cmocka_unit_test(test_state_in_secretmem),
    cmocka_unit_test(test_seeded_repeatable),
    cmocka_unit_test(test_uniform),
    cmocka_unit_test(test_bernoulli_exp),
    cmocka_unit_test(test_dlaplace),
    cmocka_unit_test(test_geometric),
    cmocka_unit_test(test_unit))
