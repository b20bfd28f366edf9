/* gpu/pool: persistent workers for one parallel-for at a time.
 *
 * pool_run publishes a job by bumping a 32-bit generation word; workers spin on it for a
 * short while (decode calls come back to back, so a sleeping worker would cost a wake-up
 * per matrix) and then sleep on it with futex. Tasks are claimed with an atomic counter,
 * so each runs exactly once whoever takes it. The caller returns only after every worker
 * has checked out of the generation, which is what makes rewriting the job fields for
 * the next call race-free. */
#include "gpu/pool.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define SPIN_NS 200000          /* how long an idle worker spins before sleeping */
#define WAIT_SPINS_BEFORE_YIELD 4096

struct pool {
    int n;                              /* threads including the caller */
    pthread_t *th;
    int n_started;
    _Atomic uint32_t gen;               /* futex word: bumped once per job */
    _Atomic int sleepers;
    _Atomic int next;                   /* next task index to claim */
    _Atomic int checked_out;            /* workers finished with the current generation */
    _Atomic int stop;
    /* Job fields: written by the caller before it bumps gen, read by workers after. */
    pool_fn fn;
    void *ctx;
    int n_tasks;
};

static long futex(_Atomic uint32_t *addr, int op, uint32_t val)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, NULL, NULL, 0);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void run_tasks(struct pool *p, pool_fn fn, void *ctx, int n_tasks)
{
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= n_tasks) break;
        fn(ctx, t, n_tasks);
    }
}

/* Waits until gen differs from seen; returns the new value. */
static uint32_t wait_gen(struct pool *p, uint32_t seen)
{
    uint32_t g;
    uint64_t t0 = 0;
    for (unsigned i = 0;; i++) {
        g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen) return g;
        cpu_relax();
        if ((i & 63) == 63) {
            uint64_t t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > SPIN_NS) break;
        }
    }
    for (;;) {
        atomic_fetch_add(&p->sleepers, 1);
        g = atomic_load(&p->gen);
        if (g == seen) futex(&p->gen, FUTEX_WAIT_PRIVATE, seen);   /* EAGAIN/EINTR: recheck */
        atomic_fetch_sub(&p->sleepers, 1);
        g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (g != seen) return g;
    }
}

static void *worker(void *arg)
{
    struct pool *p = arg;
    uint32_t seen = 0;
    for (;;) {
        seen = wait_gen(p, seen);
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        run_tasks(p, p->fn, p->ctx, p->n_tasks);
        atomic_fetch_add_explicit(&p->checked_out, 1, memory_order_release);
    }
    return NULL;
}

static void publish(struct pool *p)
{
    atomic_fetch_add(&p->gen, 1);   /* seq_cst: pairs with the sleepers check below */
    if (atomic_load(&p->sleepers) > 0) futex(&p->gen, FUTEX_WAKE_PRIVATE, INT_MAX);
}

int pool_open(struct pool **out, int n_threads)
{
    *out = NULL;
    if (n_threads < 1) return -EINVAL;
    struct pool *p = calloc(1, sizeof *p);
    if (!p) return -ENOMEM;
    p->n = n_threads;
    if (n_threads > 1) {
        p->th = calloc((size_t)n_threads - 1, sizeof *p->th);
        if (!p->th) { free(p); return -ENOMEM; }
        for (int i = 0; i < n_threads - 1; i++) {
            int rc = pthread_create(&p->th[i], NULL, worker, p);
            if (rc != 0) { pool_close(p); return -rc; }
            p->n_started++;
        }
    }
    *out = p;
    return 0;
}

void pool_close(struct pool *p)
{
    if (!p) return;
    if (p->n_started > 0) {
        atomic_store_explicit(&p->stop, 1, memory_order_release);
        publish(p);
        for (int i = 0; i < p->n_started; i++) pthread_join(p->th[i], NULL);
    }
    free(p->th);
    free(p);
}

int pool_threads(const struct pool *p) { return p ? p->n : 1; }

void pool_run(struct pool *p, pool_fn fn, void *ctx, int n_tasks)
{
    if (n_tasks <= 0) return;
    if (!p || p->n_started == 0 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, n_tasks);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    atomic_store_explicit(&p->checked_out, 0, memory_order_relaxed);
    publish(p);
    run_tasks(p, fn, ctx, n_tasks);
    /* Every worker checks out of this generation before the job fields may change. */
    for (unsigned i = 0;
         atomic_load_explicit(&p->checked_out, memory_order_acquire) < p->n_started; i++) {
        if (i < WAIT_SPINS_BEFORE_YIELD) cpu_relax();
        else sched_yield();   /* a worker was descheduled: give it the core */
    }
}
