// threadpool.c - fork-join pool: workers spin on a generation counter for a
// short while, then sleep on a condition variable.
#include "threadpool.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_ITERS 100000 // ~ a few ms of waiting before sleeping on the condition variable
#define YIELD_AFTER 256   // then yield between polls, so oversubscribed threads (more threads
                          // than cores) hand their core to the thread that has work

struct vv_pool {
    int n;              // threads including the caller
    pthread_t *threads; // n - 1 workers
    atomic_int gen;     // incremented once per parallel section
    atomic_int n_done;  // workers finished with the current section
    atomic_int stop;
    atomic_int n_sleeping;
    vv_task_fn fn;
    void *ctx;
    int n_active;       // threads that run fn in the current section
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

typedef struct {
    vv_pool *pool;
    int ith;
} worker_arg;

static void *worker_main(void *arg) {
    worker_arg *wa = (worker_arg *)arg;
    vv_pool *p = wa->pool;
    int ith = wa->ith;
    free(wa);
    int seen = 0;
    for (;;) {
        int g;
        int spins = 0;
        while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen &&
               !atomic_load_explicit(&p->stop, memory_order_acquire)) {
            if (++spins < SPIN_ITERS) {
                if (spins < YIELD_AFTER) CPU_RELAX();
                else sched_yield();
                continue;
            }
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->n_sleeping, 1);
            while (atomic_load(&p->gen) == seen && !atomic_load(&p->stop)) pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->n_sleeping, 1);
            pthread_mutex_unlock(&p->mu);
            spins = 0;
        }
        if (atomic_load_explicit(&p->stop, memory_order_acquire)) break;
        seen = g;
        if (ith < p->n_active) p->fn(p->ctx, ith, p->n_active);
        atomic_fetch_add_explicit(&p->n_done, 1, memory_order_acq_rel);
    }
    return NULL;
}

int vv_n_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

vv_pool *vv_pool_create(int n_threads) {
    if (n_threads <= 0) n_threads = vv_n_cpus();
    if (n_threads > 512) n_threads = 512;
    vv_pool *p = calloc(1, sizeof(*p));
    if (!p) return NULL;
    p->n = n_threads;
    atomic_init(&p->gen, 0);
    atomic_init(&p->n_done, 0);
    atomic_init(&p->stop, 0);
    atomic_init(&p->n_sleeping, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (n_threads > 1) {
        p->threads = calloc((size_t)n_threads - 1, sizeof(pthread_t));
        if (!p->threads) {
            free(p);
            return NULL;
        }
        for (int i = 1; i < n_threads; i++) {
            worker_arg *wa = malloc(sizeof(*wa));
            if (wa) {
                wa->pool = p;
                wa->ith = i;
            }
            if (!wa || pthread_create(&p->threads[i - 1], NULL, worker_main, wa) != 0) {
                free(wa);
                p->n = i; // the workers started so far
                vv_pool_free(p);
                return NULL;
            }
        }
    }
    return p;
}

void vv_pool_free(vv_pool *p) {
    if (!p) return;
    atomic_store(&p->stop, 1);
    pthread_mutex_lock(&p->mu);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->threads[i - 1], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->threads);
    free(p);
}

int vv_pool_size(const vv_pool *p) { return p ? p->n : 1; }

void vv_pool_run_n(vv_pool *p, int n_threads, vv_task_fn fn, void *ctx) {
    if (!p || p->n == 1 || n_threads <= 1) {
        fn(ctx, 0, 1);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n_active = VV_MIN(n_threads, p->n);
    atomic_store(&p->n_done, 0);
    atomic_fetch_add(&p->gen, 1); // seq_cst: pairs with n_sleeping in the workers
    if (atomic_load(&p->n_sleeping) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
    fn(ctx, 0, p->n_active);
    for (int spins = 0; atomic_load_explicit(&p->n_done, memory_order_acquire) < p->n - 1; spins++) {
        if (spins < YIELD_AFTER) CPU_RELAX();
        else sched_yield();
    }
}

void vv_pool_run(vv_pool *p, vv_task_fn fn, void *ctx) { vv_pool_run_n(p, p ? p->n : 1, fn, ctx); }
