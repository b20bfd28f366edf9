/* gpu/pool: a fixed set of worker threads that run one parallel-for at a time.
 * Workers spin briefly then sleep, so the per-call cost suits per-token decode steps. */
#ifndef CMIF_GPU_POOL_H
#define CMIF_GPU_POOL_H

struct pool;

/* fn(ctx, task, n_tasks) is called once for each task in [0, n_tasks). */
typedef void (*pool_fn)(void *ctx, int task, int n_tasks);

int pool_open(struct pool **out, int n_threads);   /* n_threads includes the caller */
void pool_close(struct pool *p);
int pool_threads(const struct pool *p);
/* Runs all tasks (the caller takes part) and returns when every task is done. */
void pool_run(struct pool *p, pool_fn fn, void *ctx, int n_tasks);

#endif
