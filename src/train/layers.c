// layers.c - training context, tiled GEMM, and the row/element-wise layers
// (embedding, linear, patch embedding, norms, activations, pooling).
// Attention and RoPE live in attention.c, losses in loss.c.
#include "internal.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

// ---------------------------------------------------------------------------
// context

static int ctx_init(vt_ctx **out, vv_pool *pool, bool own, vv_error *e) {
    vt_ctx *c = calloc(1, sizeof(*c));
    if (!c) {
        if (own) vv_pool_free(pool);
        return vv_err(e, VISVM_ERR_NOMEM, "vt_ctx_create: out of memory");
    }
    c->pool = pool;
    c->own_pool = own;
    c->n_threads = vv_pool_size(pool);
    // Parallelism comes from our tiles; OpenBLAS threads would oversubscribe
    // the cores and make results depend on its partitioning.
    openblas_set_num_threads(1);
#if defined(__x86_64__) && defined(__GNUC__)
    // OpenBLAS 0.3.21 runs Zen 4/5 with its AVX2 "Haswell" kernels; its AVX-512
    // kernels measured ~1.5x faster here (bench/bench_train.c). The choice is
    // made when the library loads, so only the environment can change it.
    const char *core = openblas_get_corename();
    if (__builtin_cpu_supports("avx512f") && core && strcmp(core, "Haswell") == 0 && !getenv("OPENBLAS_CORETYPE"))
        vv_log(2, "training: OpenBLAS uses AVX2 kernels on an AVX-512 CPU; OPENBLAS_CORETYPE=SkylakeX in the "
                  "environment makes training ~1.5x faster");
#endif
    *out = c;
    return VISVM_OK;
}

int vt_ctx_create(int n_threads, vt_ctx **out, vv_error *e) {
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vt_ctx_create: NULL out");
    *out = NULL;
    if (n_threads <= 0) n_threads = vv_n_cpus();
    vv_pool *pool = NULL;
    if (n_threads > 1) {
        pool = vv_pool_create(n_threads);
        if (!pool) return vv_err(e, VISVM_ERR_NOMEM, "vt_ctx_create: cannot create a pool of %d threads", n_threads);
    }
    return ctx_init(out, pool, true, e);
}

int vt_ctx_create_with_pool(vv_pool *pool, vt_ctx **out, vv_error *e) {
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vt_ctx_create_with_pool: NULL out");
    *out = NULL;
    return ctx_init(out, pool, false, e);
}

void vt_ctx_free(vt_ctx *ctx) {
    if (!ctx) return;
    if (ctx->own_pool) vv_pool_free(ctx->pool);
    vv_afree(ctx->scratch);
    free(ctx);
}

int vt_ctx_threads(const vt_ctx *ctx) { return ctx ? ctx->n_threads : 1; }
int vt_ctx_status(const vt_ctx *ctx) { return ctx ? ctx->err.code : VISVM_ERR_INVALID; }
const char *vt_ctx_error(const vt_ctx *ctx) { return ctx ? ctx->err.msg : "NULL training context"; }
void vt_ctx_clear_error(vt_ctx *ctx) {
    if (ctx) vv_err_clear(&ctx->err);
}

int vt_fail(vt_ctx *ctx, int code, const char *fmt, ...) {
    if (ctx && ctx->err.code == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->err.msg, sizeof(ctx->err.msg), fmt, ap);
        va_end(ap);
        ctx->err.code = code;
    }
    return code;
}

float *vt_scratch(vt_ctx *ctx, size_t n) {
    if (n <= ctx->scratch_n) return ctx->scratch;
    size_t bytes;
    if (!vv_mul_ok(n, sizeof(float), &bytes)) {
        vt_fail(ctx, VISVM_ERR_NOMEM, "training scratch: %zu floats overflow", n);
        return NULL;
    }
    float *p = vv_aalloc(bytes);
    if (!p) {
        vt_fail(ctx, VISVM_ERR_NOMEM, "training scratch: cannot allocate %zu bytes", bytes);
        return NULL;
    }
    vv_afree(ctx->scratch);
    ctx->scratch = p;
    ctx->scratch_n = n;
    return p;
}

// ---------------------------------------------------------------------------
// parallel loop with dynamic hand-out (results are task-local, see internal.h)

typedef struct {
    vt_task_fn fn;
    void *arg;
    int64_t n;
    atomic_llong next;
} par_job;

static void par_worker(void *c, int ith, int nth) {
    (void)nth;
    par_job *p = (par_job *)c;
    for (;;) {
        int64_t t = (int64_t)atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->n) break;
        p->fn(p->arg, t, ith);
    }
}

void vt_parallel(vt_ctx *ctx, int64_t n_tasks, vt_task_fn fn, void *arg) {
    if (n_tasks <= 0) return;
    if (!ctx->pool || ctx->n_threads <= 1 || n_tasks == 1) {
        for (int64_t t = 0; t < n_tasks; t++) fn(arg, t, 0);
        return;
    }
    par_job p = {fn, arg, n_tasks, 0};
    atomic_init(&p.next, 0);
    int nt = (int)VV_MIN((int64_t)ctx->n_threads, n_tasks);
    vv_pool_run_n(ctx->pool, nt, par_worker, &p);
}

// ---------------------------------------------------------------------------
// reductions with fixed lanes

VT_CLONES float vt_sum_f32(const float *x, int64_t n) {
    float s[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) s[j] += x[i + j];
    for (int j = 0; j < 8; j++) s[j] += s[j + 8];
    float r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) r += x[i];
    return r;
}

VT_CLONES float vt_dot_lanes(const float *a, const float *b, int64_t n) {
    float s[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) s[j] += a[i + j] * b[i + j];
    for (int j = 0; j < 8; j++) s[j] += s[j + 8];
    float r = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

VT_CLONES float vt_max_f32(const float *x, int64_t n) {
    float s[16];
    for (int j = 0; j < 16; j++) s[j] = -INFINITY;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) s[j] = x[i + j] > s[j] ? x[i + j] : s[j];
    float r = -INFINITY;
    for (int j = 0; j < 16; j++) r = s[j] > r ? s[j] : r;
    for (; i < n; i++) r = x[i] > r ? x[i] : r;
    return r;
}

// ---------------------------------------------------------------------------
// argument checks

#define CHECK_CTX()                                   \
    do {                                              \
        if (!ctx) return VISVM_ERR_INVALID;           \
    } while (0)
#define REQ(p)                                                                                   \
    do {                                                                                         \
        if (!(p)) return vt_fail(ctx, VISVM_ERR_INVALID, "%s: NULL argument '%s'", __func__, #p); \
    } while (0)

// n >= 0 rows of d >= 1 columns, n*d representable.
static int check_2d(vt_ctx *ctx, const char *fn, int64_t n, int64_t d) {
    int64_t t;
    if (n < 0 || d < 1 || !vt_mul3(n, d, 1, &t))
        return vt_fail(ctx, VISVM_ERR_INVALID, "%s: invalid shape [%lld, %lld]", fn, (long long)n, (long long)d);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// GEMM tiles

typedef struct {
    bool ta, tb;
    int64_t M, N, K, lda, ldb, ldc, mb, nb, tn;
    float alpha, beta;
    const float *A, *B, *bias;
    float *C;
} gemm_job;

static void gemm_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const gemm_job *g = (const gemm_job *)arg;
    const int64_t i = t / g->tn, j = t % g->tn;
    const int64_t m0 = i * g->mb, n0 = j * g->nb;
    const int64_t m = VV_MIN(g->mb, g->M - m0), n = VV_MIN(g->nb, g->N - n0);
    const float *a = g->ta ? g->A + m0 : g->A + m0 * g->lda;
    const float *b = g->tb ? g->B + n0 * g->ldb : g->B + n0;
    float *c = g->C + m0 * g->ldc + n0;
    float beta = g->beta;
    if (g->bias) {
        for (int64_t r = 0; r < m; r++) memcpy(c + r * g->ldc, g->bias + n0, (size_t)n * sizeof(float));
        beta = 1.0f;
    }
    if (g->K == 0) { // C = beta C (BLAS semantics: beta == 0 overwrites NaNs too)
        if (beta == 1.0f) return;
        for (int64_t r = 0; r < m; r++)
            for (int64_t q = 0; q < n; q++) c[r * g->ldc + q] = beta == 0.0f ? 0.0f : beta * c[r * g->ldc + q];
        return;
    }
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, (int)m, (int)n,
                (int)g->K, g->alpha, a, (int)g->lda, b, (int)g->ldb, beta, c, (int)g->ldc);
}

// Tile sizes from the shape only (never the thread count): ~256 x 512 tiles,
// shrunk (not below 128) until there are at least 4; one call for tiny products.
// Measured on 2 cores: 256-512 row tiles beat both one big call and
// OpenBLAS's own threading (bench/bench_train.c).
static void gemm_tiles(int64_t M, int64_t N, int64_t K, int64_t *mb, int64_t *nb) {
    if ((double)M * (double)N * (double)K < 262144.0) {
        *mb = VV_MAX(M, 1);
        *nb = VV_MAX(N, 1);
        return;
    }
    int64_t m = VV_MIN(M, 256), n = VV_MIN(N, 512);
    for (;;) {
        int64_t tiles = ((M + m - 1) / m) * ((N + n - 1) / n);
        if (tiles >= 4) break;
        if (m >= n && m >= 256) m = (m + 1) / 2;
        else if (n >= 256) n = (n + 1) / 2;
        else if (m >= 256) m = (m + 1) / 2;
        else break;
    }
    *mb = m;
    *nb = n;
}

int vt_gemm_bias(vt_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                 int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc, const float *bias) {
    CHECK_CTX();
    if (!vt_fits_int(M) || !vt_fits_int(N) || !vt_fits_int(K) || !vt_fits_int(lda) || !vt_fits_int(ldb) ||
        !vt_fits_int(ldc))
        return vt_fail(ctx, VISVM_ERR_INVALID, "matmul: dimensions M=%lld N=%lld K=%lld out of range",
                       (long long)M, (long long)N, (long long)K);
    if (M == 0 || N == 0) return VISVM_OK;
    if ((K > 0 && (!A || !B)) || !C) return vt_fail(ctx, VISVM_ERR_INVALID, "matmul: NULL matrix");
    if (lda < VV_MAX(1, ta ? M : K) || ldb < VV_MAX(1, tb ? K : N) || ldc < N)
        return vt_fail(ctx, VISVM_ERR_INVALID, "matmul: leading dimensions too small (lda %lld ldb %lld ldc %lld)",
                       (long long)lda, (long long)ldb, (long long)ldc);
    gemm_job g = {ta, tb, M, N, K, lda, ldb, ldc, 0, 0, 0, alpha, beta, A, B, bias, C};
    gemm_tiles(M, N, K, &g.mb, &g.nb);
    g.tn = (N + g.nb - 1) / g.nb;
    vt_parallel(ctx, ((M + g.mb - 1) / g.mb) * g.tn, gemm_task, &g);
    return VISVM_OK;
}

int vt_matmul(vt_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    return vt_gemm_bias(ctx, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, NULL);
}

// ---------------------------------------------------------------------------
// generic element-wise / column helpers

#define EW_CHUNK 16384 // elements per task of element-wise loops
#define COL_BLOCK 64   // columns per task of column reductions

static int64_t n_chunks(int64_t n, int64_t chunk) { return (n + chunk - 1) / chunk; }

// dst += src
typedef struct {
    float *dst;
    const float *src;
    int64_t n;
} acc_job;

VT_CLONES static void acc_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const acc_job *a = (const acc_job *)arg;
    const int64_t i0 = t * EW_CHUNK, i1 = VV_MIN(i0 + EW_CHUNK, a->n);
    float *restrict d = a->dst;
    const float *restrict s = a->src;
    for (int64_t i = i0; i < i1; i++) d[i] += s[i];
}

int vt_accumulate(vt_ctx *ctx, float *dst, const float *src, int64_t n) {
    CHECK_CTX();
    if (n < 0) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_accumulate: negative size");
    if (n == 0) return VISVM_OK;
    REQ(dst);
    REQ(src);
    acc_job a = {dst, src, n};
    vt_parallel(ctx, n_chunks(n, EW_CHUNK), acc_task, &a);
    return VISVM_OK;
}

typedef struct {
    float *y;
    const float *a, *b;
    int64_t n;
} add_job;

VT_CLONES static void add_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const add_job *a = (const add_job *)arg;
    const int64_t i0 = t * EW_CHUNK, i1 = VV_MIN(i0 + EW_CHUNK, a->n);
    for (int64_t i = i0; i < i1; i++) a->y[i] = a->a[i] + a->b[i];
}

int vt_add_forward(vt_ctx *ctx, float *y, const float *a, const float *b, int64_t n) {
    CHECK_CTX();
    if (n < 0) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_add_forward: negative size");
    if (n == 0) return VISVM_OK;
    REQ(y);
    REQ(a);
    REQ(b);
    add_job j = {y, a, b, n};
    vt_parallel(ctx, n_chunks(n, EW_CHUNK), add_task, &j);
    return VISVM_OK;
}

// Column sums: out[c] += sum_{r < R} x[r * ld + c] for c < C, rows added in order.
typedef struct {
    float *out;
    const float *x;
    int64_t R, C, ld;
} colsum_job;

VT_CLONES static void colsum_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const colsum_job *j = (const colsum_job *)arg;
    const int64_t c0 = t * COL_BLOCK, nc = VV_MIN((int64_t)COL_BLOCK, j->C - c0);
    float acc[COL_BLOCK] = {0};
    for (int64_t r = 0; r < j->R; r++) {
        const float *row = j->x + r * j->ld + c0;
        for (int64_t c = 0; c < nc; c++) acc[c] += row[c];
    }
    for (int64_t c = 0; c < nc; c++) j->out[c0 + c] += acc[c];
}

static void colsum(vt_ctx *ctx, float *out, const float *x, int64_t R, int64_t C, int64_t ld) {
    colsum_job j = {out, x, R, C, ld};
    vt_parallel(ctx, n_chunks(C, COL_BLOCK), colsum_task, &j);
}

// ---------------------------------------------------------------------------
// broadcast add

typedef struct {
    float *y;
    const float *x, *t;
    int64_t B, M;
} bcast_job;

VT_CLONES static void bcast_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const bcast_job *j = (const bcast_job *)arg;
    const int64_t per = n_chunks(j->M, EW_CHUNK);
    const int64_t b = t / per, c = t % per;
    const int64_t i0 = c * EW_CHUNK, i1 = VV_MIN(i0 + EW_CHUNK, j->M);
    float *y = j->y + b * j->M;
    const float *x = j->x + b * j->M;
    for (int64_t i = i0; i < i1; i++) y[i] = x[i] + j->t[i];
}

int vt_bcast_add_forward(vt_ctx *ctx, float *y, const float *x, const float *t, int64_t B, int64_t M) {
    CHECK_CTX();
    int rc = check_2d(ctx, __func__, B, M);
    if (rc) return rc;
    if (B == 0) return VISVM_OK;
    REQ(y);
    REQ(x);
    REQ(t);
    bcast_job j = {y, x, t, B, M};
    vt_parallel(ctx, B * n_chunks(M, EW_CHUNK), bcast_task, &j);
    return VISVM_OK;
}

int vt_bcast_add_backward(vt_ctx *ctx, float *dx, float *dt, const float *dy, int64_t B, int64_t M) {
    CHECK_CTX();
    int rc = check_2d(ctx, __func__, B, M);
    if (rc) return rc;
    if (B == 0) return VISVM_OK;
    REQ(dy);
    if (dx && (rc = vt_accumulate(ctx, dx, dy, B * M))) return rc;
    if (dt) colsum(ctx, dt, dy, B, M, M);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// gather rows / embedding

typedef struct {
    float *y;
    const float *x;
    const int32_t *idx;
    int64_t M, D;
} gather_job;

static void gather_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const gather_job *j = (const gather_job *)arg;
    const int64_t per = VV_MAX((int64_t)1, EW_CHUNK / j->D);
    const int64_t m0 = t * per, m1 = VV_MIN(m0 + per, j->M);
    for (int64_t m = m0; m < m1; m++)
        memcpy(j->y + m * j->D, j->x + (int64_t)j->idx[m] * j->D, (size_t)j->D * sizeof(float));
}

// dx[idx[m]] += dy[m]: parallel over column blocks so duplicates add in row order.
VT_CLONES static void scatter_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const gather_job *j = (const gather_job *)arg; // y = dx (target), x = dy (source)
    const int64_t c0 = t * COL_BLOCK, nc = VV_MIN((int64_t)COL_BLOCK, j->D - c0);
    for (int64_t m = 0; m < j->M; m++) {
        float *restrict d = j->y + (int64_t)j->idx[m] * j->D + c0;
        const float *restrict s = j->x + m * j->D + c0;
        for (int64_t c = 0; c < nc; c++) d[c] += s[c];
    }
}

static int check_ids(vt_ctx *ctx, const char *fn, const int32_t *idx, int64_t M, int64_t N) {
    for (int64_t m = 0; m < M; m++)
        if (idx[m] < 0 || idx[m] >= N)
            return vt_fail(ctx, VISVM_ERR_RANGE, "%s: index %d at row %lld outside [0, %lld)", fn, idx[m],
                           (long long)m, (long long)N);
    return VISVM_OK;
}

static int gather_fwd(vt_ctx *ctx, const char *fn, float *y, const float *x, const int32_t *idx, int64_t M,
                      int64_t N, int64_t D) {
    int rc = check_2d(ctx, fn, M, D);
    if (!rc) rc = check_2d(ctx, fn, N, D);
    if (rc) return rc;
    if (M == 0) return VISVM_OK;
    if (!y || !x || !idx) return vt_fail(ctx, VISVM_ERR_INVALID, "%s: NULL argument", fn);
    if ((rc = check_ids(ctx, fn, idx, M, N))) return rc;
    gather_job j = {y, x, idx, M, D};
    vt_parallel(ctx, n_chunks(M, VV_MAX((int64_t)1, EW_CHUNK / D)), gather_task, &j);
    return VISVM_OK;
}

static int gather_bwd(vt_ctx *ctx, const char *fn, float *dx, const float *dy, const int32_t *idx, int64_t M,
                      int64_t N, int64_t D) {
    int rc = check_2d(ctx, fn, M, D);
    if (!rc) rc = check_2d(ctx, fn, N, D);
    if (rc) return rc;
    if (M == 0 || !dx) return VISVM_OK;
    if (!dy || !idx) return vt_fail(ctx, VISVM_ERR_INVALID, "%s: NULL argument", fn);
    if ((rc = check_ids(ctx, fn, idx, M, N))) return rc;
    gather_job j = {dx, dy, idx, M, D};
    vt_parallel(ctx, n_chunks(D, COL_BLOCK), scatter_task, &j);
    return VISVM_OK;
}

int vt_embedding_forward(vt_ctx *ctx, float *out, const int32_t *ids, const float *wte, int64_t N, int64_t V,
                         int64_t D) {
    CHECK_CTX();
    return gather_fwd(ctx, "vt_embedding_forward", out, wte, ids, N, V, D);
}

int vt_embedding_backward(vt_ctx *ctx, float *dwte, const float *dout, const int32_t *ids, int64_t N, int64_t V,
                          int64_t D) {
    CHECK_CTX();
    return gather_bwd(ctx, "vt_embedding_backward", dwte, dout, ids, N, V, D);
}

int vt_gather_rows_forward(vt_ctx *ctx, float *y, const float *x, const int32_t *idx, int64_t M, int64_t N,
                           int64_t D) {
    CHECK_CTX();
    return gather_fwd(ctx, "vt_gather_rows_forward", y, x, idx, M, N, D);
}

int vt_gather_rows_backward(vt_ctx *ctx, float *dx, const float *dy, const int32_t *idx, int64_t M, int64_t N,
                            int64_t D) {
    CHECK_CTX();
    return gather_bwd(ctx, "vt_gather_rows_backward", dx, dy, idx, M, N, D);
}

static int check_lens(vt_ctx *ctx, const char *fn, const int32_t *lens, int64_t B, int64_t T, int32_t min_len) {
    if (!lens) return VISVM_OK;
    for (int64_t b = 0; b < B; b++)
        if (lens[b] < min_len || lens[b] > T)
            return vt_fail(ctx, VISVM_ERR_RANGE, "%s: length %d of sequence %lld outside [%d, %lld]", fn, lens[b],
                           (long long)b, min_len, (long long)T);
    return VISVM_OK;
}

int vt_last_token_index(vt_ctx *ctx, int32_t *idx, const int32_t *lens, int64_t B, int64_t T) {
    CHECK_CTX();
    REQ(idx);
    int64_t n;
    if (B < 0 || T < 1 || !vt_mul3(B, T, 1, &n) || n > INT32_MAX)
        return vt_fail(ctx, VISVM_ERR_INVALID, "vt_last_token_index: invalid B=%lld T=%lld", (long long)B,
                       (long long)T);
    int rc = check_lens(ctx, __func__, lens, B, T, 1);
    if (rc) return rc;
    for (int64_t b = 0; b < B; b++) idx[b] = (int32_t)(b * T + (lens ? lens[b] : T) - 1);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// mean pooling

typedef struct {
    float *y;
    const float *x;
    const int32_t *lens;
    int64_t T, D;
} pool_job;

VT_CLONES static void mean_pool_task(void *arg, int64_t b, int ith) {
    (void)ith;
    const pool_job *j = (const pool_job *)arg;
    const int64_t L = j->lens ? j->lens[b] : j->T;
    float *restrict y = j->y + b * j->D;
    memset(y, 0, (size_t)j->D * sizeof(float));
    if (L == 0) return;
    for (int64_t t = 0; t < L; t++) {
        const float *restrict x = j->x + (b * j->T + t) * j->D;
        for (int64_t c = 0; c < j->D; c++) y[c] += x[c];
    }
    const float inv = 1.0f / (float)L;
    for (int64_t c = 0; c < j->D; c++) y[c] *= inv;
}

VT_CLONES static void mean_pool_bwd_task(void *arg, int64_t b, int ith) {
    (void)ith;
    const pool_job *j = (const pool_job *)arg; // y = dx, x = dy
    const int64_t L = j->lens ? j->lens[b] : j->T;
    if (L == 0) return;
    const float inv = 1.0f / (float)L;
    const float *restrict dy = j->x + b * j->D;
    for (int64_t t = 0; t < L; t++) {
        float *restrict dx = j->y + (b * j->T + t) * j->D;
        for (int64_t c = 0; c < j->D; c++) dx[c] += dy[c] * inv;
    }
}

int vt_mean_pool_forward(vt_ctx *ctx, float *y, const float *x, const int32_t *lens, int64_t B, int64_t T,
                         int64_t D) {
    CHECK_CTX();
    int64_t n;
    if (B < 0 || T < 1 || D < 1 || !vt_mul3(B, T, D, &n))
        return vt_fail(ctx, VISVM_ERR_INVALID, "vt_mean_pool_forward: invalid shape");
    if (B == 0) return VISVM_OK;
    REQ(y);
    REQ(x);
    int rc = check_lens(ctx, __func__, lens, B, T, 0);
    if (rc) return rc;
    pool_job j = {y, x, lens, T, D};
    vt_parallel(ctx, B, mean_pool_task, &j);
    return VISVM_OK;
}

int vt_mean_pool_backward(vt_ctx *ctx, float *dx, const float *dy, const int32_t *lens, int64_t B, int64_t T,
                          int64_t D) {
    CHECK_CTX();
    int64_t n;
    if (B < 0 || T < 1 || D < 1 || !vt_mul3(B, T, D, &n))
        return vt_fail(ctx, VISVM_ERR_INVALID, "vt_mean_pool_backward: invalid shape");
    if (B == 0 || !dx) return VISVM_OK;
    REQ(dy);
    int rc = check_lens(ctx, __func__, lens, B, T, 0);
    if (rc) return rc;
    pool_job j = {dx, dy, lens, T, D};
    vt_parallel(ctx, B, mean_pool_bwd_task, &j);
    return VISVM_OK;
}

int vt_max_pool_forward(vt_ctx *ctx, float *y, int32_t *arg, const float *x, int64_t B, int64_t T, int64_t D) {
    CHECK_CTX();
    int64_t n;
    if (B < 0 || T < 1 || T > INT32_MAX || D < 1 || !vt_mul3(B, T, D, &n))
        return vt_fail(ctx, VISVM_ERR_INVALID, "vt_max_pool_forward: invalid shape");
    if (B == 0) return VISVM_OK;
    REQ(y);
    REQ(arg);
    REQ(x);
    for (int64_t b = 0; b < B; b++) { // [T, D] rows, read in order
        float *yb = y + b * D;
        int32_t *ab = arg + b * D;
        memcpy(yb, x + b * T * D, (size_t)D * sizeof(float));
        memset(ab, 0, (size_t)D * sizeof(int32_t));
        for (int64_t t = 1; t < T; t++) {
            const float *r = x + (b * T + t) * D;
            for (int64_t d = 0; d < D; d++)
                if (r[d] > yb[d]) yb[d] = r[d], ab[d] = (int32_t)t;
        }
    }
    return VISVM_OK;
}

int vt_max_pool_backward(vt_ctx *ctx, float *dx, const float *dy, const int32_t *arg, int64_t B, int64_t T, int64_t D) {
    CHECK_CTX();
    int64_t n;
    if (B < 0 || T < 1 || D < 1 || !vt_mul3(B, T, D, &n))
        return vt_fail(ctx, VISVM_ERR_INVALID, "vt_max_pool_backward: invalid shape");
    if (B == 0 || !dx) return VISVM_OK;
    REQ(dy);
    REQ(arg);
    for (int64_t b = 0; b < B; b++)
        for (int64_t d = 0; d < D; d++) {
            const int32_t t = arg[b * D + d];
            if (t < 0 || t >= T) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_max_pool_backward: bad argmax");
            dx[(b * T + t) * D + d] += dy[b * D + d];
        }
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// linear

int vt_linear_forward(vt_ctx *ctx, float *y, const float *x, const float *W, const float *b, int64_t N, int64_t in,
                      int64_t out) {
    CHECK_CTX();
    int rc = check_2d(ctx, __func__, N, in);
    if (!rc) rc = check_2d(ctx, __func__, N, out);
    if (rc) return rc;
    if (N == 0) return VISVM_OK;
    REQ(y);
    REQ(x);
    REQ(W);
    return vt_gemm_bias(ctx, false, true, N, out, in, 1.0f, x, in, W, in, 0.0f, y, out, b);
}

int vt_linear_backward(vt_ctx *ctx, float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                       int64_t N, int64_t in, int64_t out) {
    CHECK_CTX();
    int rc = check_2d(ctx, __func__, N, in);
    if (!rc) rc = check_2d(ctx, __func__, N, out);
    if (rc) return rc;
    if (N == 0) return VISVM_OK;
    REQ(dy);
    if (dx) {
        REQ(W);
        if ((rc = vt_gemm_bias(ctx, false, false, N, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in, NULL))) return rc;
    }
    if (dW) {
        REQ(x);
        if ((rc = vt_gemm_bias(ctx, true, false, out, in, N, 1.0f, dy, out, x, in, 1.0f, dW, in, NULL))) return rc;
    }
    if (db) colsum(ctx, db, dy, N, out, out);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// patch embedding

typedef struct {
    float *cols;      // [Np, 3PP]
    float *img;       // [B, S, S, 3] (const in forward)
    int64_t S, P, G;
    bool to_img;      // false: img -> cols (copy); true: img += cols (scatter-add)
} patch_job;

static void patch_task(void *arg, int64_t r, int ith) {
    (void)ith;
    const patch_job *j = (const patch_job *)arg;
    const int64_t S = j->S, P = j->P, G = j->G, PP = P * P;
    const int64_t b = r / (G * G), gy = (r / G) % G, gx = r % G;
    float *col = j->cols + r * 3 * PP;
    for (int64_t py = 0; py < P; py++) {
        float *px_row = j->img + ((b * S + gy * P + py) * S + gx * P) * 3; // [P, 3] pixels of this patch row
        for (int64_t px = 0; px < P; px++)
            for (int64_t c = 0; c < 3; c++) {
                float *cv = col + c * PP + py * P + px;
                if (j->to_img) px_row[px * 3 + c] += *cv;
                else *cv = px_row[px * 3 + c];
            }
    }
}

static int patch_dims(vt_ctx *ctx, const char *fn, int64_t B, int64_t S, int64_t P, int64_t D, int64_t *np) {
    int64_t n;
    if (B < 0 || S < 1 || P < 1 || D < 1 || S % P != 0 || !vt_mul3(B, S, S * 3, &n) || !vt_mul3(B, S, S, np))
        return vt_fail(ctx, VISVM_ERR_INVALID, "%s: invalid shape B=%lld S=%lld P=%lld D=%lld (S %% P must be 0)", fn,
                       (long long)B, (long long)S, (long long)P, (long long)D);
    *np /= P * P;
    return check_2d(ctx, fn, *np, VV_MAX(3 * P * P, D));
}

int vt_patch_embed_forward(vt_ctx *ctx, float *y, float *cols, const float *img, const float *W, const float *b,
                           int64_t B, int64_t S, int64_t P, int64_t D) {
    CHECK_CTX();
    int64_t np = 0;
    int rc = patch_dims(ctx, __func__, B, S, P, D, &np);
    if (rc) return rc;
    if (np == 0) return VISVM_OK;
    REQ(y);
    REQ(cols);
    REQ(img);
    REQ(W);
    patch_job j = {cols, (float *)img, S, P, S / P, false};
    vt_parallel(ctx, np, patch_task, &j);
    return vt_linear_forward(ctx, y, cols, W, b, np, 3 * P * P, D);
}

int vt_patch_embed_backward(vt_ctx *ctx, float *dimg, float *dW, float *db, const float *dy, const float *cols,
                            const float *W, int64_t B, int64_t S, int64_t P, int64_t D) {
    CHECK_CTX();
    int64_t np = 0;
    int rc = patch_dims(ctx, __func__, B, S, P, D, &np);
    if (rc) return rc;
    if (np == 0) return VISVM_OK;
    REQ(dy);
    const int64_t K = 3 * P * P;
    if ((rc = vt_linear_backward(ctx, NULL, dW, db, dy, cols, W, np, K, D))) return rc;
    if (!dimg) return VISVM_OK;
    REQ(W);
    float *dcols = vt_scratch(ctx, (size_t)(np * K));
    if (!dcols) return vt_ctx_status(ctx);
    if ((rc = vt_gemm_bias(ctx, false, false, np, K, D, 1.0f, dy, D, W, K, 0.0f, dcols, K, NULL))) return rc;
    patch_job j = {dcols, dimg, S, P, S / P, true}; // patches are disjoint: tasks never collide
    vt_parallel(ctx, np, patch_task, &j);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// Convolutional stem: 3x3 convolution (im2col + GEMM) and 2x2 max pooling

typedef struct {
    float *cols, *x; // x: input map (forward: read; backward: accumulate)
    const float *dcols;
    int64_t H, W, C;
} conv_job;

// forward task r = one output row (b, y): cols rows for every x of that row
static void im2col3_task(void *arg, int64_t r, int ith) {
    (void)ith;
    const conv_job *j = arg;
    const int64_t H = j->H, W = j->W, C = j->C, b = r / H, y = r % H, K = 9 * C;
    for (int64_t x = 0; x < W; x++) {
        float *col = j->cols + ((b * H + y) * W + x) * K;
        for (int64_t ky = 0; ky < 3; ky++)
            for (int64_t kx = 0; kx < 3; kx++) {
                float *dst = col + (ky * 3 + kx) * C;
                const int64_t iy = y + ky - 1, ix = x + kx - 1;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) memset(dst, 0, (size_t)C * sizeof(float));
                else memcpy(dst, j->x + ((b * H + iy) * W + ix) * C, (size_t)C * sizeof(float));
            }
    }
}

// backward task r = one input row (b, iy): gathers every column entry that read
// it, so tasks write disjoint rows of dx
static void col2im3_task(void *arg, int64_t r, int ith) {
    (void)ith;
    const conv_job *j = arg;
    const int64_t H = j->H, W = j->W, C = j->C, b = r / H, iy = r % H, K = 9 * C;
    for (int64_t ix = 0; ix < W; ix++) {
        float *d = j->x + ((b * H + iy) * W + ix) * C;
        for (int64_t ky = 0; ky < 3; ky++)
            for (int64_t kx = 0; kx < 3; kx++) {
                const int64_t y = iy - ky + 1, x = ix - kx + 1; // output pixel whose window put (iy, ix) at (ky, kx)
                if (y < 0 || y >= H || x < 0 || x >= W) continue;
                const float *s = j->dcols + ((b * H + y) * W + x) * K + (ky * 3 + kx) * C;
                for (int64_t c = 0; c < C; c++) d[c] += s[c];
            }
    }
}

static int conv_dims(vt_ctx *ctx, const char *fn, int64_t B, int64_t H, int64_t W, int64_t Cin, int64_t Cout,
                     int64_t *n) {
    int64_t t;
    if (B < 0 || H < 1 || W < 1 || Cin < 1 || Cout < 1 || !vt_mul3(B, H, W, n) || !vt_mul3(*n, 9, Cin, &t) ||
        !vt_mul3(*n, Cout, 1, &t))
        return vt_fail(ctx, VISVM_ERR_INVALID, "%s: invalid shape B=%lld H=%lld W=%lld Cin=%lld Cout=%lld", fn,
                       (long long)B, (long long)H, (long long)W, (long long)Cin, (long long)Cout);
    return VISVM_OK;
}

int vt_conv3x3_forward(vt_ctx *ctx, float *y, float *cols, const float *x, const float *W, const float *b, int64_t B,
                       int64_t H, int64_t Wd, int64_t Cin, int64_t Cout) {
    CHECK_CTX();
    int64_t n = 0;
    int rc = conv_dims(ctx, __func__, B, H, Wd, Cin, Cout, &n);
    if (rc || n == 0) return rc;
    REQ(y);
    REQ(cols);
    REQ(x);
    REQ(W);
    conv_job j = {cols, (float *)x, NULL, H, Wd, Cin};
    vt_parallel(ctx, B * H, im2col3_task, &j);
    return vt_linear_forward(ctx, y, cols, W, b, n, 9 * Cin, Cout);
}

int vt_conv3x3_backward(vt_ctx *ctx, float *dx, float *dW, float *db, const float *dy, const float *cols,
                        const float *W, int64_t B, int64_t H, int64_t Wd, int64_t Cin, int64_t Cout) {
    CHECK_CTX();
    int64_t n = 0;
    int rc = conv_dims(ctx, __func__, B, H, Wd, Cin, Cout, &n);
    if (rc || n == 0) return rc;
    REQ(dy);
    const int64_t K = 9 * Cin;
    if ((rc = vt_linear_backward(ctx, NULL, dW, db, dy, cols, W, n, K, Cout))) return rc;
    if (!dx) return VISVM_OK;
    REQ(W);
    float *dcols = vt_scratch(ctx, (size_t)(n * K));
    if (!dcols) return vt_ctx_status(ctx);
    if ((rc = vt_gemm_bias(ctx, false, false, n, K, Cout, 1.0f, dy, Cout, W, K, 0.0f, dcols, K, NULL))) return rc;
    conv_job j = {NULL, dx, dcols, H, Wd, Cin};
    vt_parallel(ctx, B * H, col2im3_task, &j);
    return VISVM_OK;
}

typedef struct {
    float *y, *dx;
    uint8_t *arg;
    const float *x, *dy;
    const uint8_t *carg;
    int64_t H, W, C;
} maxpool_job;

// task r = one output row (b, oy)
static void maxpool_fwd_task(void *arg, int64_t r, int ith) {
    (void)ith;
    const maxpool_job *j = arg;
    const int64_t Ho = j->H / 2, Wo = j->W / 2, C = j->C, b = r / Ho, oy = r % Ho;
    for (int64_t ox = 0; ox < Wo; ox++) {
        const float *p[4];
        for (int k = 0; k < 4; k++) p[k] = j->x + ((b * j->H + 2 * oy + k / 2) * j->W + 2 * ox + k % 2) * C;
        float *out = j->y + ((b * Ho + oy) * Wo + ox) * C;
        uint8_t *a = j->arg + ((b * Ho + oy) * Wo + ox) * C;
        for (int64_t c = 0; c < C; c++) {
            float m = p[0][c];
            uint8_t w = 0;
            for (uint8_t k = 1; k < 4; k++)
                if (p[k][c] > m) m = p[k][c], w = k;
            out[c] = m;
            a[c] = w;
        }
    }
}

static void maxpool_bwd_task(void *arg, int64_t r, int ith) {
    (void)ith;
    const maxpool_job *j = arg;
    const int64_t Ho = j->H / 2, Wo = j->W / 2, C = j->C, b = r / Ho, oy = r % Ho;
    for (int64_t ox = 0; ox < Wo; ox++) {
        const int64_t o = ((b * Ho + oy) * Wo + ox) * C;
        for (int64_t c = 0; c < C; c++) {
            const int k = j->carg[o + c];
            j->dx[((b * j->H + 2 * oy + k / 2) * j->W + 2 * ox + k % 2) * C + c] += j->dy[o + c];
        }
    }
}

static int pool_dims(vt_ctx *ctx, const char *fn, int64_t B, int64_t H, int64_t W, int64_t C) {
    int64_t n;
    if (B < 0 || H < 2 || W < 2 || H % 2 || W % 2 || C < 1 || !vt_mul3(B, H, W, &n) || !vt_mul3(n, C, 1, &n))
        return vt_fail(ctx, VISVM_ERR_INVALID, "%s: invalid shape B=%lld H=%lld W=%lld C=%lld (H, W even)", fn,
                       (long long)B, (long long)H, (long long)W, (long long)C);
    return VISVM_OK;
}

int vt_maxpool2_forward(vt_ctx *ctx, float *y, uint8_t *arg, const float *x, int64_t B, int64_t H, int64_t Wd,
                        int64_t C) {
    CHECK_CTX();
    int rc = pool_dims(ctx, __func__, B, H, Wd, C);
    if (rc || B == 0) return rc;
    REQ(y);
    REQ(arg);
    REQ(x);
    maxpool_job j = {y, NULL, arg, x, NULL, NULL, H, Wd, C};
    vt_parallel(ctx, B * (H / 2), maxpool_fwd_task, &j);
    return VISVM_OK;
}

int vt_maxpool2_backward(vt_ctx *ctx, float *dx, const float *dy, const uint8_t *arg, int64_t B, int64_t H,
                         int64_t Wd, int64_t C) {
    CHECK_CTX();
    int rc = pool_dims(ctx, __func__, B, H, Wd, C);
    if (rc || B == 0) return rc;
    REQ(dx);
    REQ(dy);
    REQ(arg);
    maxpool_job j = {NULL, dx, NULL, NULL, dy, arg, H, Wd, C}; // windows are disjoint: tasks never collide
    vt_parallel(ctx, B * (H / 2), maxpool_bwd_task, &j);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// LayerNorm / RMSNorm

// ---------------------------------------------------------------------------
// batch normalisation over the rows of x[N, C] (pixels x channels)

#define BN_TASKS 64 // row blocks; per-block partial sums keep the reduction deterministic

typedef struct {
    const float *x, *dy, *g, *b, *mean, *rstd;
    float *y, *dx;
    double *part; // [BN_TASKS, 2, C] partial sums
    int64_t N, C, rows;
} bn_job;

static void bn_stats_task(void *arg, int64_t t, int ith) { // sums of x and x^2 per channel over a row block
    (void)ith;
    const bn_job *j = arg;
    const int64_t C = j->C, r0 = t * j->rows, r1 = VV_MIN(r0 + j->rows, j->N);
    double *s = j->part + t * 2 * C, *q = s + C;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = j->x + r * C;
        for (int64_t c = 0; c < C; c++) s[c] += xr[c], q[c] += (double)xr[c] * xr[c];
    }
}

static void bn_apply_task(void *arg, int64_t t, int ith) { // y = (x - mean) rstd g + b
    (void)ith;
    const bn_job *j = arg;
    const int64_t C = j->C, r0 = t * j->rows, r1 = VV_MIN(r0 + j->rows, j->N);
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = j->x + r * C;
        float *yr = j->y + r * C;
        for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - j->mean[c]) * j->rstd[c] * j->g[c] + (j->b ? j->b[c] : 0.0f);
    }
}

static void bn_grad_sums_task(void *arg, int64_t t, int ith) { // sums of dy and dy * xhat per channel
    (void)ith;
    const bn_job *j = arg;
    const int64_t C = j->C, r0 = t * j->rows, r1 = VV_MIN(r0 + j->rows, j->N);
    double *s = j->part + t * 2 * C, *q = s + C;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = j->x + r * C, *dr = j->dy + r * C;
        for (int64_t c = 0; c < C; c++) s[c] += dr[c], q[c] += (double)dr[c] * (xr[c] - j->mean[c]) * j->rstd[c];
    }
}

static void bn_dx_task(void *arg, int64_t t, int ith) { // dx += g rstd (dy - mean(dy) - xhat mean(dy xhat))
    (void)ith;
    const bn_job *j = arg;
    const int64_t C = j->C, r0 = t * j->rows, r1 = VV_MIN(r0 + j->rows, j->N);
    const double *s = j->part, *q = j->part + C; // totals in block 0
    const double inv = 1.0 / (double)j->N;
    for (int64_t r = r0; r < r1; r++) {
        const float *xr = j->x + r * C, *dr = j->dy + r * C;
        float *o = j->dx + r * C;
        for (int64_t c = 0; c < C; c++) {
            const double xh = (xr[c] - j->mean[c]) * j->rstd[c];
            o[c] += (float)(j->g[c] * j->rstd[c] * (dr[c] - s[c] * inv - xh * q[c] * inv));
        }
    }
}

// Runs fn over BN_TASKS row blocks with zeroed partial sums, then totals them into block 0 (fixed order).
static int bn_reduce(vt_ctx *ctx, bn_job *j, vt_task_fn fn) {
    const int64_t C = j->C;
    j->part = calloc((size_t)BN_TASKS * 2 * C, sizeof(double));
    if (!j->part) return vt_fail(ctx, VISVM_ERR_NOMEM, "batchnorm: out of memory");
    j->rows = (j->N + BN_TASKS - 1) / BN_TASKS;
    vt_parallel(ctx, BN_TASKS, fn, j);
    for (int t = 1; t < BN_TASKS; t++)
        for (int64_t c = 0; c < 2 * C; c++) j->part[c] += j->part[t * 2 * C + c];
    return VISVM_OK;
}

static int bn_dims(vt_ctx *ctx, const char *fn, int64_t N, int64_t C) {
    int64_t t;
    if (N < 1 || C < 1 || !vt_mul3(N, C, 1, &t))
        return vt_fail(ctx, VISVM_ERR_INVALID, "%s: invalid shape N=%lld C=%lld", fn, (long long)N, (long long)C);
    return VISVM_OK;
}

int vt_batchnorm_forward(vt_ctx *ctx, float *y, float *mean, float *var, float *rstd, const float *x, const float *g,
                         const float *b, int64_t N, int64_t C, float eps) {
    CHECK_CTX();
    int rc = bn_dims(ctx, __func__, N, C);
    if (rc) return rc;
    REQ(y);
    REQ(mean);
    REQ(var);
    REQ(rstd);
    REQ(x);
    REQ(g);
    bn_job j = {.x = x, .g = g, .b = b, .y = y, .N = N, .C = C};
    if ((rc = bn_reduce(ctx, &j, bn_stats_task))) return rc;
    for (int64_t c = 0; c < C; c++) {
        const double m = j.part[c] / (double)N, v = VV_MAX(j.part[C + c] / (double)N - m * m, 0.0);
        mean[c] = (float)m;
        var[c] = (float)v;
        rstd[c] = (float)(1.0 / sqrt(v + eps));
    }
    free(j.part);
    j.mean = mean, j.rstd = rstd;
    vt_parallel(ctx, (N + j.rows - 1) / j.rows, bn_apply_task, &j);
    return VISVM_OK;
}

int vt_batchnorm_infer(vt_ctx *ctx, float *y, const float *x, const float *g, const float *b, const float *run_mean,
                       const float *run_var, int64_t N, int64_t C, float eps) {
    CHECK_CTX();
    int rc = bn_dims(ctx, __func__, N, C);
    if (rc) return rc;
    REQ(y);
    REQ(x);
    REQ(g);
    REQ(run_mean);
    REQ(run_var);
    float *rstd = malloc((size_t)C * sizeof(float));
    if (!rstd) return vt_fail(ctx, VISVM_ERR_NOMEM, "batchnorm: out of memory");
    for (int64_t c = 0; c < C; c++) rstd[c] = 1.0f / sqrtf(run_var[c] + eps);
    bn_job j = {.x = x, .g = g, .b = b, .y = y, .mean = run_mean, .rstd = rstd, .N = N, .C = C};
    j.rows = (N + BN_TASKS - 1) / BN_TASKS;
    vt_parallel(ctx, BN_TASKS, bn_apply_task, &j);
    free(rstd);
    return VISVM_OK;
}

int vt_batchnorm_backward(vt_ctx *ctx, float *dx, float *dg, float *db, const float *dy, const float *x,
                          const float *g, const float *mean, const float *rstd, int64_t N, int64_t C) {
    CHECK_CTX();
    int rc = bn_dims(ctx, __func__, N, C);
    if (rc) return rc;
    REQ(dy);
    REQ(x);
    REQ(g);
    REQ(mean);
    REQ(rstd);
    bn_job j = {.x = x, .dy = dy, .g = g, .mean = mean, .rstd = rstd, .dx = dx, .N = N, .C = C};
    if ((rc = bn_reduce(ctx, &j, bn_grad_sums_task))) return rc;
    for (int64_t c = 0; c < C; c++) {
        if (dg) dg[c] += (float)j.part[C + c];
        if (db) db[c] += (float)j.part[c];
    }
    if (dx) vt_parallel(ctx, BN_TASKS, bn_dx_task, &j);
    free(j.part);
    return VISVM_OK;
}

#define ROW_CHUNK(D) VV_MAX((int64_t)1, (int64_t)EW_CHUNK / (D)) // rows per task

typedef struct {
    float *y, *mean, *rstd, *dx;
    const float *x, *w, *b, *dy;
    const float *cmean, *crstd;
    float *dw, *db;
    int64_t N, D;
    float eps;
} norm_job;

VT_CLONES static void ln_fwd_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const norm_job *j = (const norm_job *)arg;
    const int64_t D = j->D, r0 = t * ROW_CHUNK(D), r1 = VV_MIN(r0 + ROW_CHUNK(D), j->N);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * D;
        float *y = j->y + r * D;
        const float m = vt_sum_f32(x, D) / (float)D;
        float s[16] = {0};
        int64_t i = 0;
        for (; i + 16 <= D; i += 16)
            for (int q = 0; q < 16; q++) {
                const float c = x[i + q] - m;
                s[q] += c * c;
            }
        float var = 0;
        for (int q = 0; q < 16; q++) var += s[q];
        for (; i < D; i++) var += (x[i] - m) * (x[i] - m);
        const float rs = 1.0f / sqrtf(var / (float)D + j->eps);
        if (j->w && j->b)
            for (i = 0; i < D; i++) y[i] = (x[i] - m) * rs * j->w[i] + j->b[i];
        else
            for (i = 0; i < D; i++) {
                float v = (x[i] - m) * rs;
                if (j->w) v *= j->w[i];
                if (j->b) v += j->b[i];
                y[i] = v;
            }
        j->mean[r] = m;
        j->rstd[r] = rs;
    }
}

VT_CLONES static void ln_bwd_dx_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const norm_job *j = (const norm_job *)arg;
    const int64_t D = j->D, r0 = t * ROW_CHUNK(D), r1 = VV_MIN(r0 + ROW_CHUNK(D), j->N);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * D, *dy = j->dy + r * D;
        float *dx = j->dx + r * D;
        const float m = j->cmean[r], rs = j->crstd[r];
        // sums of g = w*dy and g*xhat over the row
        float s1[16] = {0}, s2[16] = {0};
        int64_t i = 0;
        for (; i + 16 <= D; i += 16)
            for (int q = 0; q < 16; q++) {
                const float g = j->w ? j->w[i + q] * dy[i + q] : dy[i + q];
                s1[q] += g;
                s2[q] += g * ((x[i + q] - m) * rs);
            }
        float g_sum = 0, gx_sum = 0;
        for (int q = 0; q < 16; q++) {
            g_sum += s1[q];
            gx_sum += s2[q];
        }
        for (; i < D; i++) {
            const float g = j->w ? j->w[i] * dy[i] : dy[i];
            g_sum += g;
            gx_sum += g * ((x[i] - m) * rs);
        }
        const float g_mean = g_sum / (float)D, gx_mean = gx_sum / (float)D;
        for (i = 0; i < D; i++) {
            const float g = j->w ? j->w[i] * dy[i] : dy[i];
            const float xh = (x[i] - m) * rs;
            dx[i] += (g - g_mean - xh * gx_mean) * rs;
        }
    }
}

// dw[c] += sum_r dy * xhat, db[c] += sum_r dy over a block of columns (rows in order).
// For RMSNorm cmean is NULL (xhat = x * rstd).
VT_CLONES static void norm_bwd_dw_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const norm_job *j = (const norm_job *)arg;
    const int64_t c0 = t * COL_BLOCK, nc = VV_MIN((int64_t)COL_BLOCK, j->D - c0);
    float aw[COL_BLOCK] = {0}, ab[COL_BLOCK] = {0};
    for (int64_t r = 0; r < j->N; r++) {
        const float *x = j->x + r * j->D + c0, *dy = j->dy + r * j->D + c0;
        const float m = j->cmean ? j->cmean[r] : 0.0f, rs = j->crstd[r];
        for (int64_t c = 0; c < nc; c++) {
            aw[c] += dy[c] * ((x[c] - m) * rs);
            ab[c] += dy[c];
        }
    }
    if (j->dw)
        for (int64_t c = 0; c < nc; c++) j->dw[c0 + c] += aw[c];
    if (j->db)
        for (int64_t c = 0; c < nc; c++) j->db[c0 + c] += ab[c];
}

int vt_layernorm_forward(vt_ctx *ctx, float *y, float *mean, float *rstd, const float *x, const float *w,
                         const float *b, int64_t N, int64_t D, float eps) {
    CHECK_CTX();
    int rc = check_2d(ctx, __func__, N, D);
    if (rc) return rc;
    if (N == 0) return VISVM_OK;
    REQ(y);
    REQ(mean);
    REQ(rstd);
    REQ(x);
    if (!(eps >= 0)) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_layernorm_forward: eps must be >= 0");
    norm_job j = {.y = y, .mean = mean, .rstd = rstd, .x = x, .w = w, .b = b, .N = N, .D = D, .eps = eps};
    vt_parallel(ctx, n_chunks(N, ROW_CHUNK(D)), ln_fwd_task, &j);
    return VISVM_OK;
}

int vt_layernorm_backward(vt_ctx *ctx, float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, const float *mean, const float *rstd, int64_t N, int64_t D) {
    CHECK_CTX();
    int rc = check_2d(ctx, __func__, N, D);
    if (rc) return rc;
    if (N == 0) return VISVM_OK;
    REQ(dy);
    REQ(x);
    REQ(mean);
    REQ(rstd);
    norm_job j = {.dx = dx, .x = x, .w = w, .dy = dy, .cmean = mean, .crstd = rstd, .dw = dw, .db = db, .N = N,
                  .D = D};
    if (dx) vt_parallel(ctx, n_chunks(N, ROW_CHUNK(D)), ln_bwd_dx_task, &j);
    if (dw || db) vt_parallel(ctx, n_chunks(D, COL_BLOCK), norm_bwd_dw_task, &j);
    return VISVM_OK;
}

VT_CLONES static void rms_fwd_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const norm_job *j = (const norm_job *)arg;
    const int64_t D = j->D, r0 = t * ROW_CHUNK(D), r1 = VV_MIN(r0 + ROW_CHUNK(D), j->N);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * D;
        float *y = j->y + r * D;
        const float rs = 1.0f / sqrtf(vt_dot_lanes(x, x, D) / (float)D + j->eps);
        if (j->w)
            for (int64_t i = 0; i < D; i++) y[i] = x[i] * rs * j->w[i];
        else
            for (int64_t i = 0; i < D; i++) y[i] = x[i] * rs;
        j->rstd[r] = rs;
    }
}

VT_CLONES static void rms_bwd_dx_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const norm_job *j = (const norm_job *)arg;
    const int64_t D = j->D, r0 = t * ROW_CHUNK(D), r1 = VV_MIN(r0 + ROW_CHUNK(D), j->N);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->x + r * D, *dy = j->dy + r * D;
        float *dx = j->dx + r * D;
        const float rs = j->crstd[r];
        float s[16] = {0};
        int64_t i = 0;
        for (; i + 16 <= D; i += 16)
            for (int q = 0; q < 16; q++) s[q] += (j->w ? j->w[i + q] * dy[i + q] : dy[i + q]) * x[i + q];
        float gx = 0;
        for (int q = 0; q < 16; q++) gx += s[q];
        for (; i < D; i++) gx += (j->w ? j->w[i] * dy[i] : dy[i]) * x[i];
        // dx = rs * (g - x * rs^2 * mean(g x)),  g = w dy
        const float k = rs * rs * gx / (float)D;
        for (i = 0; i < D; i++) {
            const float g = j->w ? j->w[i] * dy[i] : dy[i];
            dx[i] += rs * (g - x[i] * k);
        }
    }
}

int vt_rmsnorm_forward(vt_ctx *ctx, float *y, float *rstd, const float *x, const float *w, int64_t N, int64_t D,
                       float eps) {
    CHECK_CTX();
    int rc = check_2d(ctx, __func__, N, D);
    if (rc) return rc;
    if (N == 0) return VISVM_OK;
    REQ(y);
    REQ(rstd);
    REQ(x);
    if (!(eps >= 0)) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_rmsnorm_forward: eps must be >= 0");
    norm_job j = {.y = y, .rstd = rstd, .x = x, .w = w, .N = N, .D = D, .eps = eps};
    vt_parallel(ctx, n_chunks(N, ROW_CHUNK(D)), rms_fwd_task, &j);
    return VISVM_OK;
}

int vt_rmsnorm_backward(vt_ctx *ctx, float *dx, float *dw, const float *dy, const float *x, const float *w,
                        const float *rstd, int64_t N, int64_t D) {
    CHECK_CTX();
    int rc = check_2d(ctx, __func__, N, D);
    if (rc) return rc;
    if (N == 0) return VISVM_OK;
    REQ(dy);
    REQ(x);
    REQ(rstd);
    norm_job j = {.dx = dx, .x = x, .w = w, .dy = dy, .crstd = rstd, .dw = dw, .N = N, .D = D};
    if (dx) vt_parallel(ctx, n_chunks(N, ROW_CHUNK(D)), rms_bwd_dx_task, &j);
    if (dw) vt_parallel(ctx, n_chunks(D, COL_BLOCK), norm_bwd_dw_task, &j);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// activations

#define GELU_C 0.7978845608028654f // sqrt(2/pi)
#define GELU_A 0.044715f

typedef struct {
    vt_act act;
    float *y;       // forward output / backward dx
    const float *x; // input
    const float *dy;
    int64_t n;
} act_job;

VT_CLONES static void act_fwd_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const act_job *j = (const act_job *)arg;
    const int64_t i0 = t * EW_CHUNK, i1 = VV_MIN(i0 + EW_CHUNK, j->n);
    float *y = j->y;
    const float *x = j->x;
    switch (j->act) {
    case VT_ACT_GELU_TANH:
        for (int64_t i = i0; i < i1; i++) {
            const float v = x[i];
            y[i] = 0.5f * v * (1.0f + vt_tanhf(GELU_C * v * (1.0f + GELU_A * v * v)));
        }
        break;
    case VT_ACT_GELU_ERF:
        for (int64_t i = i0; i < i1; i++) y[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        break;
    case VT_ACT_QUICK_GELU:
        for (int64_t i = i0; i < i1; i++) y[i] = x[i] * vt_sigmoidf(1.702f * x[i]);
        break;
    case VT_ACT_SILU:
        for (int64_t i = i0; i < i1; i++) y[i] = x[i] * vt_sigmoidf(x[i]);
        break;
    case VT_ACT_RELU:
        for (int64_t i = i0; i < i1; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    }
}

VT_CLONES static void act_bwd_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const act_job *j = (const act_job *)arg;
    const int64_t i0 = t * EW_CHUNK, i1 = VV_MIN(i0 + EW_CHUNK, j->n);
    float *dx = j->y;
    const float *x = j->x, *dy = j->dy;
    switch (j->act) {
    case VT_ACT_GELU_TANH:
        for (int64_t i = i0; i < i1; i++) {
            const float v = x[i];
            const float th = vt_tanhf(GELU_C * v * (1.0f + GELU_A * v * v));
            const float d = 0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * GELU_C * (1.0f + 3.0f * GELU_A * v * v);
            dx[i] += dy[i] * d;
        }
        break;
    case VT_ACT_GELU_ERF:
        for (int64_t i = i0; i < i1; i++) {
            const float v = x[i];
            const float d = 0.5f * (1.0f + erff(v * 0.70710678118654752f)) +
                            v * vt_expf(-0.5f * v * v) * 0.3989422804014327f; // 1/sqrt(2 pi)
            dx[i] += dy[i] * d;
        }
        break;
    case VT_ACT_QUICK_GELU:
        for (int64_t i = i0; i < i1; i++) {
            const float s = vt_sigmoidf(1.702f * x[i]);
            dx[i] += dy[i] * (s + 1.702f * x[i] * s * (1.0f - s));
        }
        break;
    case VT_ACT_SILU:
        for (int64_t i = i0; i < i1; i++) {
            const float s = vt_sigmoidf(x[i]);
            dx[i] += dy[i] * s * (1.0f + x[i] * (1.0f - s));
        }
        break;
    case VT_ACT_RELU:
        for (int64_t i = i0; i < i1; i++) dx[i] += x[i] > 0.0f ? dy[i] : 0.0f;
        break;
    }
}

static int check_act(vt_ctx *ctx, const char *fn, vt_act act, int64_t n) {
    if ((int)act < VT_ACT_GELU_TANH || (int)act > VT_ACT_RELU)
        return vt_fail(ctx, VISVM_ERR_INVALID, "%s: unknown activation %d", fn, (int)act);
    if (n < 0) return vt_fail(ctx, VISVM_ERR_INVALID, "%s: negative size", fn);
    return VISVM_OK;
}

int vt_act_forward(vt_ctx *ctx, vt_act act, float *y, const float *x, int64_t n) {
    CHECK_CTX();
    int rc = check_act(ctx, __func__, act, n);
    if (rc || n == 0) return rc;
    REQ(y);
    REQ(x);
    act_job j = {act, y, x, NULL, n};
    vt_parallel(ctx, n_chunks(n, EW_CHUNK), act_fwd_task, &j);
    return VISVM_OK;
}

int vt_act_backward(vt_ctx *ctx, vt_act act, float *dx, const float *dy, const float *x, int64_t n) {
    CHECK_CTX();
    int rc = check_act(ctx, __func__, act, n);
    if (rc || n == 0 || !dx) return rc;
    REQ(dy);
    REQ(x);
    act_job j = {act, dx, x, dy, n};
    vt_parallel(ctx, n_chunks(n, EW_CHUNK), act_bwd_task, &j);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// SwiGLU

typedef struct {
    float *h, *dgate, *dup;
    const float *gate, *up, *dh;
    int64_t N, F, ld;
} swiglu_job;

VT_CLONES static void swiglu_fwd_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const swiglu_job *j = (const swiglu_job *)arg;
    const int64_t F = j->F, r0 = t * ROW_CHUNK(F), r1 = VV_MIN(r0 + ROW_CHUNK(F), j->N);
    for (int64_t r = r0; r < r1; r++) {
        const float *g = j->gate + r * j->ld, *u = j->up + r * j->ld;
        float *h = j->h + r * F;
        for (int64_t i = 0; i < F; i++) h[i] = g[i] * vt_sigmoidf(g[i]) * u[i];
    }
}

VT_CLONES static void swiglu_bwd_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const swiglu_job *j = (const swiglu_job *)arg;
    const int64_t F = j->F, r0 = t * ROW_CHUNK(F), r1 = VV_MIN(r0 + ROW_CHUNK(F), j->N);
    for (int64_t r = r0; r < r1; r++) {
        const float *g = j->gate + r * j->ld, *u = j->up + r * j->ld, *dh = j->dh + r * F;
        float *dg = j->dgate ? j->dgate + r * j->ld : NULL, *du = j->dup ? j->dup + r * j->ld : NULL;
        if (dg)
            for (int64_t i = 0; i < F; i++) {
                const float s = vt_sigmoidf(g[i]);
                dg[i] += dh[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            }
        if (du)
            for (int64_t i = 0; i < F; i++) du[i] += dh[i] * g[i] * vt_sigmoidf(g[i]);
    }
}

static int swiglu_check(vt_ctx *ctx, const char *fn, int64_t N, int64_t F, int64_t ld) {
    int rc = check_2d(ctx, fn, N, F);
    if (!rc) rc = check_2d(ctx, fn, N, ld);
    if (!rc && ld < F) rc = vt_fail(ctx, VISVM_ERR_INVALID, "%s: ld %lld < F %lld", fn, (long long)ld, (long long)F);
    return rc;
}

int vt_swiglu_forward(vt_ctx *ctx, float *h, const float *gate, const float *up, int64_t N, int64_t F, int64_t ld) {
    CHECK_CTX();
    int rc = swiglu_check(ctx, __func__, N, F, ld);
    if (rc || N == 0) return rc;
    REQ(h);
    REQ(gate);
    REQ(up);
    swiglu_job j = {.h = h, .gate = gate, .up = up, .N = N, .F = F, .ld = ld};
    vt_parallel(ctx, n_chunks(N, ROW_CHUNK(F)), swiglu_fwd_task, &j);
    return VISVM_OK;
}

int vt_swiglu_backward(vt_ctx *ctx, float *dgate, float *dup, const float *dh, const float *gate, const float *up,
                       int64_t N, int64_t F, int64_t ld) {
    CHECK_CTX();
    int rc = swiglu_check(ctx, __func__, N, F, ld);
    if (rc || N == 0 || (!dgate && !dup)) return rc;
    REQ(dh);
    REQ(gate);
    REQ(up);
    swiglu_job j = {.dgate = dgate, .dup = dup, .gate = gate, .up = up, .dh = dh, .N = N, .F = F, .ld = ld};
    vt_parallel(ctx, n_chunks(N, ROW_CHUNK(F)), swiglu_bwd_task, &j);
    return VISVM_OK;
}
