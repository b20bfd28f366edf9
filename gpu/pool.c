/* gpu/pool: persistent workers for one parallel-for at a time.
 *
 * pool_run publishes a job by bumping a 32-bit generation word; workers spin on it for a
 * short while (decode calls come back to back, so a sleeping worker would cost a wake-up
 * per matrix) and then sleep on it with futex. Tasks are claimed from a 64-bit counter that
 * carries the generation in its high half, so a claim only succeeds for the current job
 * and each task runs exactly once. The caller returns when every task is done, without
 * waiting for workers that never woke up: on a busy machine a descheduled worker then costs
 * nothing, the caller simply runs more of the tasks itself.
 *
 * The job fields live in two slots (by generation parity). A worker that wakes very late
 * may read a slot already rewritten for a later job, but its claim then fails: the slot
 * stores are releases, so seeing a newer value means the counter has moved on too. */
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

struct job_slot {
    _Atomic(pool_fn) fn;
    _Atomic(void *) ctx;
    _Atomic int n_tasks;
};

struct pool {
    int n;                              /* threads including the caller */
    pthread_t *th;
    int n_started;
    _Atomic uint32_t gen;               /* futex word: bumped once per job */
    _Atomic uint64_t claim;             /* generation << 32 | next task index */
    _Atomic int done;                   /* tasks finished in the current job */
    _Atomic int sleepers;
    _Atomic int stop;
    struct job_slot slot[2];
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

/* Claims and runs tasks of generation g until none are left (or a newer job started). */
static void run_tasks(struct pool *p, uint32_t g)
{
    const struct job_slot *js = &p->slot[g & 1];
    pool_fn fn = atomic_load_explicit(&js->fn, memory_order_acquire);
    void *ctx = atomic_load_explicit(&js->ctx, memory_order_acquire);
    int n_tasks = atomic_load_explicit(&js->n_tasks, memory_order_acquire);
    uint64_t v = atomic_load_explicit(&p->claim, memory_order_acquire);
    for (;;) {
        if ((uint32_t)(v >> 32) != g || (uint32_t)v >= (uint32_t)n_tasks) return;
        if (!atomic_compare_exchange_weak_explicit(&p->claim, &v, v + 1, memory_order_acq_rel,
                                                   memory_order_acquire))
            continue;   /* v now holds the current value */
        fn(ctx, (int)(uint32_t)v, n_tasks);
        atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
        v = atomic_load_explicit(&p->claim, memory_order_acquire);
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
        run_tasks(p, seen);
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
    /* Only the caller writes gen, so this is the next generation. */
    uint32_t g = atomic_load_explicit(&p->gen, memory_order_relaxed) + 1;
    struct job_slot *js = &p->slot[g & 1];
    atomic_store_explicit(&js->fn, fn, memory_order_release);
    atomic_store_explicit(&js->ctx, ctx, memory_order_release);
    atomic_store_explicit(&js->n_tasks, n_tasks, memory_order_release);
    atomic_store_explicit(&p->done, 0, memory_order_relaxed);
    atomic_store_explicit(&p->claim, (uint64_t)g << 32, memory_order_release);
    publish(p);
    run_tasks(p, g);
    /* Wait for tasks other threads claimed and are still running. */
    for (unsigned i = 0; atomic_load_explicit(&p->done, memory_order_acquire) < n_tasks; i++) {
        if (i < WAIT_SPINS_BEFORE_YIELD) cpu_relax();
        else sched_yield();   /* the thread running it was descheduled: give it the core */
    }
}
