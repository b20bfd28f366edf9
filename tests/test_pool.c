/* Tests of gpu/pool: every task of every run executes exactly once, with 1..4 threads,
 * over many short runs (the decode pattern) and a few long ones. */
#include "tests/testutil.h"

#include <stdatomic.h>
#include <time.h>

#include "gpu/pool.h"

#define MAX_TASKS 300

struct job {
    _Atomic int count[MAX_TASKS];
    _Atomic int bad_n;       /* calls that saw the wrong n_tasks */
    int n_tasks;
    long sum;                /* written by task 0 only: checks visibility after pool_run */
};

static void task_fn(void *ctx, int task, int n_tasks)
{
    struct job *j = ctx;
    if (n_tasks != j->n_tasks || task < 0 || task >= n_tasks) {
        atomic_fetch_add(&j->bad_n, 1);
        return;
    }
    atomic_fetch_add(&j->count[task], 1);
    if (task == 0) j->sum += n_tasks;
}

static void run_many(int threads, int runs)
{
    struct pool *p = NULL;
    assert_int_equal(pool_open(&p, threads), 0);
    assert_non_null(p);
    assert_int_equal(pool_threads(p), threads);
    struct job *j = calloc(1, sizeof *j);
    assert_non_null(j);
    long want_sum = 0;
    for (int r = 0; r < runs; r++) {
        int n = 1 + (r * 7919) % 97;            /* 1..97 tasks, mixed */
        if (r % 50 == 0) n = MAX_TASKS;
        j->n_tasks = n;
        for (int t = 0; t < MAX_TASKS; t++) atomic_store(&j->count[t], 0);
        pool_run(p, task_fn, j, n);
        want_sum += n;
        for (int t = 0; t < MAX_TASKS; t++)
            if (atomic_load(&j->count[t]) != (t < n ? 1 : 0))
                fail_msg("threads=%d run=%d task %d ran %d times", threads, r, t, atomic_load(&j->count[t]));
        assert_int_equal(j->sum, want_sum);
    }
    assert_int_equal(atomic_load(&j->bad_n), 0);
    pool_run(p, task_fn, j, 0);   /* no tasks: returns at once */
    free(j);
    pool_close(p);
}

static void test_exactly_once(void **state)
{
    (void)state;
    for (int threads = 1; threads <= 4; threads++) run_many(threads, 3000);
}

/* Tasks that take a while (so workers are in the middle of work when others finish),
 * and runs separated by pauses long enough for the workers to go to sleep. */
static void slow_fn(void *ctx, int task, int n_tasks)
{
    struct job *j = ctx;
    (void)n_tasks;
    volatile double acc = 0;
    for (int i = 0; i < 20000 * (1 + task % 3); i++) acc += i * 0.5;
    atomic_fetch_add(&j->count[task], 1);
}

static void test_sleep_wake(void **state)
{
    (void)state;
    struct pool *p = NULL;
    assert_int_equal(pool_open(&p, 3), 0);
    struct job *j = calloc(1, sizeof *j);
    assert_non_null(j);
    for (int r = 0; r < 6; r++) {
        for (int t = 0; t < MAX_TASKS; t++) atomic_store(&j->count[t], 0);
        j->n_tasks = 12;
        pool_run(p, slow_fn, j, 12);
        for (int t = 0; t < 12; t++) assert_int_equal(atomic_load(&j->count[t]), 1);
        struct timespec ts = {0, 2000000};   /* 2 ms: longer than the spin phase */
        nanosleep(&ts, NULL);
    }
    free(j);
    pool_close(p);
}

static void test_open_close(void **state)
{
    (void)state;
    struct pool *p = (struct pool *)1;
    assert_true(pool_open(&p, 0) < 0);
    assert_null(p);
    for (int i = 0; i < 20; i++) {   /* open/close without running anything */
        assert_int_equal(pool_open(&p, 1 + i % 4), 0);
        pool_close(p);
    }
    pool_close(NULL);
}

TU_MAIN(
    cmocka_unit_test(test_exactly_once),
    cmocka_unit_test(test_sleep_wake),
    cmocka_unit_test(test_open_close))
