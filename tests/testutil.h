/* Helpers shared by the cmocka tests. Include after <cmocka.h>'s prerequisites. */
#ifndef CMIF_TESTUTIL_H
#define CMIF_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/tokenizer.h"
#include "gpu/quant.h"

/* Path of a file under ../shared (or $CMIF_SHARED). When it is missing the calling test
 * is skipped with a message, except under CI=true, where its absence fails the test. */
static inline const char *tu_shared(const char *rel)
{
    static char buf[4096];
    const char *root = getenv("CMIF_SHARED");
    if (!root || !*root) root = "../shared";
    snprintf(buf, sizeof buf, "%s/%s", root, rel);
    FILE *f = fopen(buf, "rb");
    if (f) { fclose(f); return buf; }
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) fail_msg("CI=true and shared file missing: %s", buf);
    print_message("SKIP: %s not found (tests of ../shared data skipped)\n", buf);
    skip();
    return NULL;
}

/* A fresh temporary directory for one test (removed by tu_rmtree). */
static inline char *tu_tmpdir(void)
{
    char tmpl[] = "/tmp/cmif-test-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

/* A fresh temporary directory (returned, for tu_rmtree) and the path of name inside it, in
 * path (n bytes). */
static inline char *tu_tmpfile(const char *name, char *path, size_t n)
{
    char *dir = tu_tmpdir();
    snprintf(path, n, "%s/%s", dir, name);
    return dir;
}

static inline void tu_rmtree(char *dir)
{
    char cmd[4200];
    if (!dir) return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) print_message("warning: could not remove %s\n", dir);
    free(dir);
}

/* The whole file as a NUL-terminated malloc'd buffer (its length in *len); any error
 * fails the test. */
static inline char *tu_read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    b[n] = 0;
    *len = (size_t)n;
    return b;
}

/* Relative difference of two float vectors (logits): max |a-b| over max |b| (max |a-b|
 * when b is all zeros). A NaN in a fails the test, so NaN output never passes as close. */
static inline double tu_rel_err(const float *a, const float *b, size_t n)
{
    double md = 0, mb = 0;
    for (size_t i = 0; i < n; i++) {
        if (a[i] != a[i]) fail_msg("NaN at element %zu", i);
        double d = (double)a[i] - b[i], ab = b[i];
        if (d < 0) d = -d;
        if (ab < 0) ab = -ab;
        if (d > md) md = d;
        if (ab > mb) mb = ab;
    }
    return mb > 0 ? md / mb : md;
}

static inline void *tu_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

/* Forces the kernels' SIMD level (gpu/quant's, which gpu/attn follows): 1 when the CPU has
 * it, else 0 with a note, back at the automatic level. */
static inline int tu_force_simd(const char *lv)
{
    qt_force_simd(lv);
    if (strcmp(qt_simd_level(), lv) != 0) {
        print_message("note: SIMD level %s not available on this CPU, not tested\n", lv);
        qt_force_simd(NULL);
        return 0;
    }
    return 1;
}

/* Path of the built binary under test ($BUILD/cmif). */
static inline const char *tu_cmif(void)
{
    static char buf[1024];
    const char *b = getenv("BUILD");
    snprintf(buf, sizeof buf, "%s/cmif", b && *b ? b : "build");
    return buf;
}

/* Runs fn(arg) in a forked child and returns its wait status (the child _exits 0 when fn
 * returns, or with fn's own _exit code). */
static inline int tu_fork_wait(void (*fn)(void *), void *arg)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn(arg);
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

struct tu_quiet_call {
    void (*fn)(int);
    int arg;
};

static inline void tu_quiet_child(void *p)
{
    const struct tu_quiet_call *q = p;
    signal(SIGSEGV, SIG_DFL);
    signal(SIGBUS, SIG_DFL);
    signal(SIGABRT, SIG_DFL);
    struct rlimit rl;
    if (getrlimit(RLIMIT_CORE, &rl) == 0) {
        rl.rlim_cur = 0;
        setrlimit(RLIMIT_CORE, &rl);
    }
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, STDERR_FILENO);
    q->fn(q->arg);
}

/* tu_fork_wait for a child meant to crash: it has default fault handlers (sanitizers
 * install their own), no core file (soft limit only, so a child may raise it again) and
 * stderr on /dev/null, so an intended crash is quiet. */
static inline int tu_in_child(void (*fn)(int), int arg)
{
    struct tu_quiet_call q = {fn, arg};
    return tu_fork_wait(tu_quiet_child, &q);
}

/* Whether a wait status says the process died of a memory fault. */
static inline int tu_died_of_fault(int st)
{
    return WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS);
}

/* A dense n x dim float matrix, and its row lookup in the shape the clustering and the
 * mechanisms take (ctx is the matrix; -1 for an id out of range). */
struct tu_mat {
    int n, dim;
    float *v;
};

static inline int tu_mat_row(void *ctx, int32_t id, float *out)
{
    struct tu_mat *m = ctx;
    if (id < 0 || id >= m->n) return -1;
    memcpy(out, m->v + (size_t)id * m->dim, (size_t)m->dim * sizeof(float));
    return 0;
}

/* One greedy decoding step for the golden-text tests: the arg-max token of lg[0..vocab-1]
 * (the lowest id on ties), its piece appended to out[*on] (the space after BOS dropped, as
 * the generate command does; the text must stay under cap bytes). Returns the token. */
static inline int32_t tu_greedy_step(const struct tokenizer *t, const float *lg, int32_t vocab,
                                     int32_t prev, char *out, size_t *on, size_t cap)
{
    int32_t next = 0;
    for (int32_t i = 1; i < vocab; i++)
        if (lg[i] > lg[next]) next = i;
    char piece[64];
    size_t pl = tok_piece_after(t, prev, next, 0, piece, sizeof piece);
    assert_true(pl < sizeof piece);
    assert_true(*on + pl < cap);
    memcpy(out + *on, piece, pl);
    *on += pl;
    return next;
}

/* main() of a test file: runs the cmocka tests listed (cmocka_unit_test(...), ...). */
#define TU_MAIN(...)                                                                     \
    int main(void)                                                                       \
    {                                                                                    \
        const struct CMUnitTest tests[] = {__VA_ARGS__};                                 \
        return cmocka_run_group_tests(tests, NULL, NULL);                                \
    }

#endif
