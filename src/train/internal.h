// internal.h - shared plumbing of the training engine (not part of its API):
// the context struct, deterministic parallel loops, scratch and small
// vectorisable math helpers.
#ifndef VT_INTERNAL_H
#define VT_INTERNAL_H

#include "layers.h"

#include <limits.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

// Hot loops are compiled for several ISAs (as src/nn/ops.c does) because the
// library build uses baseline x86-64 flags. Every reduction below is written
// with explicit lanes, so the clones compute bit-identical results.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__) // sanitizers instrument the ifunc resolvers, which run before their runtime
#define VT_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VT_CLONES
#endif

struct vt_ctx {
    vv_pool *pool;     // NULL: single thread
    bool own_pool;
    int n_threads;
    float *scratch;    // grown on demand by vt_scratch(); 64-byte aligned
    size_t scratch_n;  // floats
    vv_error err;      // first error since the last vt_ctx_clear_error()
};

// Records the first error in the context and returns code.
int vt_fail(vt_ctx *ctx, int code, const char *fmt, ...) VV_PRINTF(3, 4);

// Scratch of n floats valid until the next vt_scratch() call (contents undefined).
// NULL (with the error recorded) when out of memory.
float *vt_scratch(vt_ctx *ctx, size_t n);

// Runs fn(arg, task, ith) for task in [0, n_tasks) on the pool, tasks handed out
// dynamically. Callers make every task write a disjoint output with a fixed
// order of operations, so results never depend on the thread count.
typedef void (*vt_task_fn)(void *arg, int64_t task, int ith);
void vt_parallel(vt_ctx *ctx, int64_t n_tasks, vt_task_fn fn, void *arg);

// Internal GEMM on the pool; when bias != NULL every row of C is first set to
// bias[N] and beta is ignored (C = alpha op(A) op(B) + bias).
int vt_gemm_bias(vt_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, const float *bias);

static inline bool vt_fits_int(int64_t v) { return v >= 0 && v <= INT_MAX; }

// Element count a*b*c as int64 with overflow detection (false on overflow or negative input).
static inline bool vt_mul3(int64_t a, int64_t b, int64_t c, int64_t *out) {
    const int64_t lim = INT64_MAX / 8; // leave room for byte sizes
    if (a < 0 || b < 0 || c < 0) return false;
    if (b != 0 && a > lim / b) return false;
    const int64_t ab = a * b;
    if (c != 0 && ab > lim / c) return false;
    *out = ab * c;
    return true;
}

// exp(x), vectorisable (no calls, no branches, no float->int conversion):
// Cephes-style range reduction x = n ln2 + r and a degree-6 polynomial; max
// rel. error ~2 ulp. Returns exactly 0 below -87.3 (also for -inf, so masked
// logits vanish), saturates at exp(88.3) above, and propagates NaN.
static inline float vt_expf(float x) {
    const bool under = x < -87.3f;
    x = x > 88.3f ? 88.3f : x;
    x = x < -87.3f ? -87.3f : x;
    const float z = x * 1.44269504088896341f;
    const float t = z + 12582912.0f; // 1.5 * 2^23: t's low mantissa bits hold round(z)
    const float n = t - 12582912.0f;
    float r = x - n * 0.693359375f;   // ln2 split in two parts for exactness
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t tb;
    memcpy(&tb, &t, sizeof(tb));
    const uint32_t sb = (tb - 0x4B400000u + 127u) << 23; // 2^n, n in [-126, 127]
    float scale;
    memcpy(&scale, &sb, sizeof(scale));
    const float y = p * scale;
    return under ? 0.0f : y;
}

static inline float vt_sigmoidf(float x) { return 1.0f / (1.0f + vt_expf(-x)); }

// tanh via exp; exact limits +-1 for large |x|.
static inline float vt_tanhf(float x) { return 1.0f - 2.0f / (1.0f + vt_expf(2.0f * x)); }

// Deterministic float reductions with 16 fixed lanes (identical in every clone).
float vt_sum_f32(const float *x, int64_t n);
float vt_dot_lanes(const float *a, const float *b, int64_t n);
float vt_max_f32(const float *x, int64_t n); // -INFINITY for n == 0

#endif
