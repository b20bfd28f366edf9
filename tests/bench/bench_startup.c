/* tests/bench/bench_startup: what a start costs on a large vocabulary, next to llama.cpp.
 *
 * The Llama-3.2-1B shape (vocabulary 128,256 x 2048, 16 layers, Q4_K with a tied Q6_K
 * token_embd, the real Llama 3 tokenizer from ../shared/models/llama3-vocab.gguf when it is
 * there), random weights, written on first use. Each measurement is a child process, timed
 * from fork to the first byte of the answer on its stdout (cmif streams the answer a piece
 * at a time) and to its exit, with its CPU time and peak RSS (ru_maxrss from wait4):
 *   first run  `cmif chat --script` of one message with -n 1 and an empty cache directory:
 *              model load, the word clustering, sanitizing, the first token;
 *   warm start the same with the cluster cache the first run left;
 *   warm, outside the lexicon  a message with a name of several pieces: its rows are a
 *              secret lookup, so the core seals the whole table into the encrypted swap
 *              first (a message of lexicon words, numbers and punctuation needs none);
 *   llama.cpp  tests/bench/llamacpp_start.mjs: load, context, the first token (its own
 *              figures from inside node, and the whole process as for cmif).
 * The machine is shared: wall times move with the load, CPU times (user + sys) much less,
 * so both are printed, with the ratios to llama.cpp of the same run. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/gguf.h"
#include "tests/bench/bench.h"
#include "tests/tools/randmodel.h"

#define START_SCRIPT_SRC "tests/bench/llamacpp_start.mjs"
#define START_SCRIPT_NAME "cmif-bench-llamacpp-start.mjs"

struct run {
    double wall, cpu;        /* seconds */
    double first;            /* seconds to the first byte of the answer (cmif; 0: not seen) */
    double maxrss_mb;
    int status;
};

/* Seconds from t0 to the first byte after the first line on fd (cmif echoes the message,
 * then streams the answer a piece at a time), reading fd to its end; 0 if none came. */
static double first_answer_byte(int fd, double t0)
{
    char buf[4096];
    int lines = 0;
    double first = 0;
    ssize_t k;
    while ((k = read(fd, buf, sizeof buf)) != 0) {
        if (k < 0) {
            if (errno == EINTR) continue;
            break;
        }
        for (ssize_t i = 0; i < k && !first; i++)
            if (lines) first = bench_now() - t0;
            else if (buf[i] == '\n') lines = 1;
    }
    return first;
}

/* Runs argv with stdout to out_fd (-1: /dev/null; -2: a pipe read for the first answer
 * byte, r->first), stdin from /dev/null, the given extra environment (NAME=VALUE,
 * NULL-terminated). */
static int run_child(char *const argv[], char *const env[], const char *dir, int out_fd,
                     struct run *r)
{
    int pfd[2] = {-1, -1};
    if (out_fd == -2 && pipe(pfd) != 0) return -1;
    r->first = 0;
    double t0 = bench_now();
    pid_t pid = fork();
    if (pid < 0) {
        if (pfd[0] >= 0) close(pfd[0]), close(pfd[1]);
        return -1;
    }
    if (pid == 0) {
        for (int i = 0; env && env[i]; i++) putenv(env[i]);
        int nul = open("/dev/null", O_RDWR);
        if (nul >= 0) {
            dup2(nul, 0);
            dup2(pfd[1] >= 0 ? pfd[1] : out_fd >= 0 ? out_fd : nul, 1);
            dup2(nul, 2);
        }
        if (pfd[0] >= 0) close(pfd[0]), close(pfd[1]);
        if (dir && chdir(dir) != 0) _exit(126);
        execvp(argv[0], argv);
        _exit(127);
    }
    if (pfd[0] >= 0) {
        close(pfd[1]);
        r->first = first_answer_byte(pfd[0], t0);
        close(pfd[0]);
    }
    int st;
    struct rusage ru;
    while (wait4(pid, &st, 0, &ru) < 0)
        if (errno != EINTR) return -1;
    r->wall = bench_now() - t0;
    r->cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
             (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
    r->maxrss_mb = (double)ru.ru_maxrss / 1024.0;
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return 0;
}

/* build/cmif next to this program's build/bench/cmif-bench. */
static int cmif_path(char *out, size_t n)
{
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k <= 0) return -1;
    exe[k] = 0;
    for (int up = 0; up < 2; up++) {
        char *s = strrchr(exe, '/');
        if (!s) return -1;
        *s = 0;
    }
    if (snprintf(out, n, "%s/cmif", exe) >= (int)n) return -1;
    return access(out, X_OK);
}

static int rm_cache(const char *dir)
{
    char cmd[1200];
    if (strchr(dir, '\'')) return -1;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int run_cmif(const char *cmif, const char *model, const char *xdg, const char *msg,
                    int threads, struct run *r)
{
    char th[16];
    snprintf(th, sizeof th, "%d", threads);
    char *argv[] = {(char *)cmif, "chat", "-m", (char *)model, "--script", (char *)msg,
                    "-n", "1", "--no-ledger", "--dp-seed", "1", "-s", "1", "-t", th, NULL};
    static char cache[1200], state[1200];
    snprintf(cache, sizeof cache, "XDG_CACHE_HOME=%s/cache", xdg);
    snprintf(state, sizeof state, "XDG_STATE_HOME=%s/state", xdg);
    char *env[] = {cache, state, NULL};
    if (run_child(argv, env, NULL, -2, r) != 0 || r->status != 0 || !(r->first > 0)) {
        fprintf(stderr, "cmif-bench: %s chat failed (status %d)\n", cmif, r->status);
        return -1;
    }
    return 0;
}

static int run_llama(const char *dir, const char *model, int threads, struct run *r,
                     double *load_ms, double *first_ms)
{
    char abs[PATH_MAX], th[16], out[] = "/tmp/cmif-bench-start-XXXXXX";
    if (!realpath(model, abs)) return -1;
    snprintf(th, sizeof th, "%d", threads);
    int fd = mkstemp(out);
    if (fd < 0) return -1;
    unlink(out);
    char *argv[] = {"node", START_SCRIPT_NAME, abs, th, NULL};
    int rc = run_child(argv, NULL, dir, fd, r);
    char line[512] = "";
    ssize_t k = rc == 0 ? pread(fd, line, sizeof line - 1, 0) : -1;
    close(fd);
    if (k > 0) line[k] = 0;
    if (rc != 0 || r->status != 0 ||
        sscanf(line, "{\"load_ms\":%lf,\"first_token_ms\":%lf", load_ms, first_ms) != 2) {
        fprintf(stderr, "cmif-bench: llama.cpp start-up run failed (status %d): %s\n",
                r->status, line);
        return -1;
    }
    return 0;
}

static int bench_startup(struct bench *b)
{
    bench_title(b, "startup: first run and warm start to the first token (Llama-3.2-1B shape), "
                   "next to llama.cpp");
    char cmif[PATH_MAX];
    if (cmif_path(cmif, sizeof cmif) != 0) {
        bench_row(b, "skipped: no cmif binary next to the bench (make bench builds it)");
        return 0;
    }
    const char *model = b->quick ? bench_model_path(b, BENCH_TINY) : bench_model_path(b, BENCH_L32_1B_Q4_K);
    if (!model) return -1;
    char xdg[] = "/tmp/cmif-bench-xdg-XXXXXX", msg[1100], msg2[1100];
    if (!mkdtemp(xdg)) return -1;
    snprintf(msg, sizeof msg, "%s/message.txt", xdg);
    snprintf(msg2, sizeof msg2, "%s/message-outside.txt", xdg);
    FILE *f = fopen(msg, "w"), *f2 = fopen(msg2, "w");
    int wrote = f && fputs("Alice owes Bob 500 dollars for the flat in Leeds\n", f) >= 0;
    wrote = f2 && fputs("Alice owes Grzegorz 500 dollars for the flat in Leeds\n", f2) >= 0 && wrote;
    if ((f && fclose(f) != 0) || (f2 && fclose(f2) != 0) || !wrote) {
        rm_cache(xdg);
        return -1;
    }
    int threads = b->max_threads;
    bench_bw_release();
    struct run cold, warm = {0}, outside = {0}, w;
    int rc = run_cmif(cmif, model, xdg, msg, threads, &cold);
    for (int i = 0; i < (b->quick ? 1 : 3) && rc == 0; i++)   /* best of three warm starts */
        if ((rc = run_cmif(cmif, model, xdg, msg, threads, &w)) == 0 &&
            (warm.first == 0 || w.first < warm.first))
            warm = w;
    for (int i = 0; i < (b->quick ? 1 : 3) && rc == 0; i++)
        if ((rc = run_cmif(cmif, model, xdg, msg2, threads, &w)) == 0 &&
            (outside.first == 0 || w.first < outside.first))
            outside = w;
    rm_cache(xdg);
    if (rc) return -1;
    bench_row(b, "%-34s %9s %9s %9s %10s", "", "1st tok s", "exit s", "CPU s", "peak RSS");
    bench_row(b, "%-34s %9.2f %9.2f %9.2f %7.0f MB", "cmif first run (no cluster cache)",
              cold.first, cold.wall, cold.cpu, cold.maxrss_mb);
    bench_row(b, "%-34s %9.2f %9.2f %9.2f %7.0f MB", "cmif warm start", warm.first, warm.wall,
              warm.cpu, warm.maxrss_mb);
    bench_row(b, "%-34s %9.2f %9.2f %9.2f %7.0f MB", "cmif warm, a word outside lexicon",
              outside.first, outside.wall, outside.cpu, outside.maxrss_mb);
    char why[256];
    const char *dir = bench_llamacpp_dir(why, sizeof why);
    if (!dir) {
        bench_row(b, "llama.cpp skipped: %s; `make bench-deps` installs it into build/llamacpp "
                     "(or set CMIF_LLAMACPP_DIR)", why);
    } else {
        struct run l;
        double load_ms, first_ms;
        if (bench_llamacpp_install(dir, START_SCRIPT_SRC, START_SCRIPT_NAME) ||
            run_llama(dir, model, threads, &l, &load_ms, &first_ms))
            return -1;
        bench_row(b, "%-34s %9s %9.2f %9.2f %7.0f MB", "llama.cpp (node, whole process)", "-",
                  l.wall, l.cpu, l.maxrss_mb);
        bench_row(b, "llama.cpp inside node: load %.2f s, load to first token %.2f s",
                  load_ms / 1e3, first_ms / 1e3);
        bench_row(b, "ratios cmif / llama.cpp (whole process): first run wall %.1f, CPU %.1f; "
                     "warm start wall %.1f, CPU %.1f; outside the lexicon wall %.1f, CPU %.1f; "
                     "cmif warm start to its first token / llama.cpp load to its first token "
                     "inside node %.2f",
                  cold.wall / l.wall, cold.cpu / l.cpu, warm.wall / l.wall, warm.cpu / l.cpu,
                  outside.wall / l.wall, outside.cpu / l.cpu, warm.first / (first_ms / 1e3));
    }
    bench_row(b, "(cmif: chat --script, one message, -n 1, %d threads; 1st tok = from exec to "
                 "the answer's first byte on stdout, exit = the whole process; warm rows = best "
                 "of %d by 1st tok; targets: first run <= 8 s, warm start to the first token "
                 "<= 0.6 s; a shared machine: read the CPU column and the ratios)",
              threads, b->quick ? 1 : 3);
    return 0;
}
BENCH_SECTION(startup, "startup", "first run, warm start to first token, peak RSS vs llama.cpp "
                                  "(Llama-3.2-1B shape)", 25, bench_startup)
