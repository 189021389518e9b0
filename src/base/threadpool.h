// threadpool.h - a small fork-join thread pool.
//
// vv_pool_run(pool, fn, ctx) calls fn(ctx, ith, nth) on every thread (the
// caller is thread 0) and returns when all have finished. Workers spin briefly
// before sleeping, because a decoder step issues hundreds of short parallel
// sections and a futex wake-up per section would cost more than the work.
#ifndef VV_THREADPOOL_H
#define VV_THREADPOOL_H

#include "base.h"

typedef struct vv_pool vv_pool;
typedef void (*vv_task_fn)(void *ctx, int ith, int nth);

// n_threads total, including the calling thread; <= 0 means all online CPUs.
vv_pool *vv_pool_create(int n_threads);
void vv_pool_free(vv_pool *pool);
int vv_pool_size(const vv_pool *pool); // 1 for NULL
// Runs fn on all threads; pool == NULL runs fn(ctx, 0, 1) inline.
void vv_pool_run(vv_pool *pool, vv_task_fn fn, void *ctx);
// Runs fn on at most n_threads threads (others skip the section).
void vv_pool_run_n(vv_pool *pool, int n_threads, vv_task_fn fn, void *ctx);
int vv_n_cpus(void);

// Splits [0, n) evenly into nth parts; sets [*i0, *i1) for thread ith.
static inline void vv_split(int64_t n, int ith, int nth, int64_t *i0, int64_t *i1) {
    int64_t per = (n + nth - 1) / nth;
    *i0 = VV_MIN((int64_t)ith * per, n);
    *i1 = VV_MIN(*i0 + per, n);
}

#endif
