// test_train_layers.c - gradient checks (central finite differences against
// the analytic backward) for every training layer, forward values against
// direct formulas, determinism across thread counts, and error reporting.
#include "tcheck.h"
#include "train/layers.h"

#include <stdint.h>

static vt_ctx *g_ctx; // 2 threads: exercises the parallel paths
static vv_rng g_rng;

static float urand(float lo, float hi) { return lo + (hi - lo) * (float)vv_rng_uniform(&g_rng); }
static float *randv(int64_t n, float lo, float hi) {
    float *x = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    for (int64_t i = 0; i < n; i++) x[i] = urand(lo, hi);
    return x;
}
static float *zerov(int64_t n) { return calloc((size_t)(n > 0 ? n : 1), sizeof(float)); }
static float *dupv(const float *x, int64_t n) {
    float *y = malloc((size_t)n * sizeof(float));
    memcpy(y, x, (size_t)n * sizeof(float));
    return y;
}
static double wsum(const float *r, const float *y, int64_t n) { // loss = sum(r * y) in double
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)r[i] * y[i];
    return s;
}

// ---------------------------------------------------------------------------
// gradient checker

typedef struct {
    const char *name;
    float *x;       // perturbed in place
    const float *g; // analytic gradient of the loss w.r.t. x
    int64_t n;
} gc_tensor;

typedef double (*gc_loss_fn)(void *ud);

// 4-point central differences (O(h^4) truncation lets h be large enough that
// float rounding of the forward stays small): g = (-f(+2h) + 8 f(+h) - 8 f(-h) + f(-2h)) / 12h,
// h = g_hrel * max(1, |x|). Error per element:
//   |g_fd - g| / (|g_fd| + |g| + 1e-3 + 1e-2 * max_k |g_k|)
// The last floor term is there because the forward runs in float: its rounding
// noise scales with the output (hence gradient) magnitude of the tensor, so
// an element whose gradient is 100x smaller than the tensor's largest one is
// compared at the absolute precision the forward actually has.
// Returns the max over all checked elements (at most max_el per tensor, spread
// over the tensor).
static double g_hrel = 2e-2, g_floor = 1e-3, g_ffrac = 1e-2;
static double gradcheck(const char *what, gc_loss_fn f, void *ud, const gc_tensor *ts, int nt, int max_el,
                        bool verbose) {
    double worst = 0;
    for (int k = 0; k < nt; k++) {
        const gc_tensor *t = &ts[k];
        double gmax = 0;
        for (int64_t i = 0; i < t->n; i++) gmax = fmax(gmax, fabs(t->g[i]));
        const double floor_ = g_floor + g_ffrac * gmax;
        const int64_t step = t->n <= max_el ? 1 : (t->n + max_el - 1) / max_el;
        for (int64_t i = 0; i < t->n; i += step) {
            const float x0 = t->x[i];
            const float h = (float)g_hrel * fmaxf(1.0f, fabsf(x0));
            t->x[i] = x0 + 2 * h;
            const double f2 = f(ud);
            t->x[i] = x0 + h;
            const double f1 = f(ud);
            t->x[i] = x0 - h;
            const double fm1 = f(ud);
            t->x[i] = x0 - 2 * h;
            const double fm2 = f(ud);
            t->x[i] = x0;
            const double gfd = (-f2 + 8 * f1 - 8 * fm1 + fm2) / (12.0 * h);
            const double err = fabs(gfd - t->g[i]) / (fabs(gfd) + fabs(t->g[i]) + floor_);
            if (err > worst) worst = err;
            if (verbose && err > 1e-2)
                fprintf(stderr, "  %s: %s[%lld]: fd %.6g analytic %.6g (err %.3g)\n", what, t->name, (long long)i, gfd,
                        (double)t->g[i], err);
        }
    }
    return worst;
}

#define GC_TOL 1e-2
#define GC(what, f, ud, ts, nt)                                                      \
    do {                                                                             \
        double e_ = gradcheck(what, f, ud, ts, nt, 200, true);                       \
        CHECKF(e_ < GC_TOL, "%s: max gradient error %.3g", what, e_);                \
        if (getenv("VT_VERBOSE")) printf("  %-28s max rel err %.2e\n", what, e_);    \
    } while (0)

// ---------------------------------------------------------------------------
// linear

typedef struct {
    int64_t N, in, out;
    float *x, *W, *b, *r, *y;
} lin_case;

static double lin_loss(void *ud) {
    lin_case *c = ud;
    vt_linear_forward(g_ctx, c->y, c->x, c->W, c->b, c->N, c->in, c->out);
    return wsum(c->r, c->y, c->N * c->out);
}

static void test_linear_case(int64_t N, int64_t in, int64_t out, bool bias, bool self_test) {
    lin_case c = {N, in, out, randv(N * in, -1, 1), randv(out * in, -1, 1), bias ? randv(out, -1, 1) : NULL,
                  randv(N * out, -1, 1), zerov(N * out)};
    float *dx = zerov(N * in), *dW = zerov(out * in), *db = zerov(out);
    lin_loss(&c);
    CHECK(vt_linear_backward(g_ctx, dx, dW, bias ? db : NULL, c.r, c.x, c.W, N, in, out) == VISVM_OK);
    gc_tensor ts[3] = {{"x", c.x, dx, N * in}, {"W", c.W, dW, out * in}, {"b", c.b, db, out}};
    char what[64];
    snprintf(what, sizeof(what), "linear %lldx%lld->%lld%s", (long long)N, (long long)in, (long long)out,
             bias ? "+b" : "");
    GC(what, lin_loss, &c, ts, bias ? 3 : 2);
    lin_loss(&c); // the checker left y from a perturbed input
    // forward value against a direct dot product
    double maxd = 0;
    for (int64_t i = 0; i < N; i++)
        for (int64_t o = 0; o < out; o++) {
            double s = bias ? c.b[o] : 0;
            for (int64_t k = 0; k < in; k++) s += (double)c.x[i * in + k] * c.W[o * in + k];
            maxd = fmax(maxd, fabs(s - c.y[i * out + o]));
        }
    CHECKF(maxd < 1e-4, "linear forward max diff %g", maxd);
    if (self_test) {
        // the checker must notice a single wrong gradient value
        dW[3] += 0.05f + 0.1f * fabsf(dW[3]);
        double e = gradcheck("self-test", lin_loss, &c, &ts[1], 1, 1000, false);
        CHECKF(e > 10 * GC_TOL, "gradcheck missed a corrupted gradient (err %g)", e);
        dW[3] = 0;
        for (int64_t i = 0; i < out * in; i++) dW[i] = 0;
        vt_linear_backward(g_ctx, NULL, dW, NULL, c.r, c.x, c.W, N, in, out);
        dx[0] = -dx[0] + 0.3f; // wrong input gradient
        e = gradcheck("self-test", lin_loss, &c, &ts[0], 1, 1000, false);
        CHECKF(e > 10 * GC_TOL, "gradcheck missed a corrupted input gradient (err %g)", e);
    }
    free(c.x), free(c.W), free(c.b), free(c.r), free(c.y), free(dx), free(dW), free(db);
}

static void test_linear(void) {
    test_linear_case(5, 7, 6, true, true);
    test_linear_case(4, 3, 1, false, false);
    test_linear_case(300, 40, 70, true, false); // several GEMM tiles
}

// ---------------------------------------------------------------------------
// embedding, broadcast add, gather, pooling

typedef struct {
    int64_t N, V, D;
    int32_t *ids;
    float *wte, *r, *y;
} emb_case;

static double emb_loss(void *ud) {
    emb_case *c = ud;
    vt_embedding_forward(g_ctx, c->y, c->ids, c->wte, c->N, c->V, c->D);
    return wsum(c->r, c->y, c->N * c->D);
}

static void test_embedding(void) {
    int32_t ids[7] = {3, 0, 3, 5, 1, 3, 0}; // duplicates accumulate
    emb_case c = {7, 6, 5, ids, randv(30, -1, 1), randv(35, -1, 1), zerov(35)};
    float *dw = zerov(30);
    emb_loss(&c);
    CHECK(memcmp(c.y + 5, c.wte + 0, 5 * sizeof(float)) == 0);
    CHECK(vt_embedding_backward(g_ctx, dw, c.r, ids, 7, 6, 5) == VISVM_OK);
    gc_tensor ts[1] = {{"wte", c.wte, dw, 30}};
    GC("embedding", emb_loss, &c, ts, 1);
    for (int i = 0; i < 5; i++) CHECK(dw[2 * 5 + i] == 0.0f); // unused row
    free(c.wte), free(c.r), free(c.y), free(dw);
}

typedef struct {
    int64_t B, M;
    float *x, *t, *r, *y;
} bc_case;

static double bc_loss(void *ud) {
    bc_case *c = ud;
    vt_bcast_add_forward(g_ctx, c->y, c->x, c->t, c->B, c->M);
    return wsum(c->r, c->y, c->B * c->M);
}

static void test_bcast_add(void) {
    bc_case c = {3, 10, randv(30, -1, 1), randv(10, -1, 1), randv(30, -1, 1), zerov(30)};
    float *dx = zerov(30), *dt = zerov(10);
    bc_loss(&c);
    CHECK(vt_bcast_add_backward(g_ctx, dx, dt, c.r, 3, 10) == VISVM_OK);
    gc_tensor ts[2] = {{"x", c.x, dx, 30}, {"t", c.t, dt, 10}};
    GC("bcast_add", bc_loss, &c, ts, 2);
    free(c.x), free(c.t), free(c.r), free(c.y), free(dx), free(dt);
}

typedef struct {
    int64_t B, T, D;
    const int32_t *lens;
    int32_t idx[4];
    float *x, *r, *y;
    bool mean;
} pool_case;

static double pool_loss(void *ud) {
    pool_case *c = ud;
    if (c->mean) vt_mean_pool_forward(g_ctx, c->y, c->x, c->lens, c->B, c->T, c->D);
    else vt_gather_rows_forward(g_ctx, c->y, c->x, c->idx, c->B, c->B * c->T, c->D);
    return wsum(c->r, c->y, c->B * c->D);
}

static void test_pooling(void) {
    const int32_t lens[3] = {4, 1, 2};
    for (int mean = 0; mean <= 1; mean++) {
        pool_case c = {3, 4, 5, lens, {0}, randv(60, -1, 1), randv(15, -1, 1), zerov(15), mean};
        CHECK(vt_last_token_index(g_ctx, c.idx, lens, 3, 4) == VISVM_OK);
        CHECK(c.idx[0] == 3 && c.idx[1] == 4 && c.idx[2] == 9);
        float *dx = zerov(60);
        pool_loss(&c);
        if (mean) {
            CHECK(vt_mean_pool_backward(g_ctx, dx, c.r, lens, 3, 4, 5) == VISVM_OK);
            CHECK_NEAR(c.y[5 + 2], c.x[4 * 5 + 2], 1e-7); // sequence 1 has one token
            CHECK_NEAR(c.y[2], (c.x[2] + c.x[7] + c.x[12] + c.x[17]) / 4, 1e-6);
        } else {
            CHECK(vt_gather_rows_backward(g_ctx, dx, c.r, c.idx, 3, 12, 5) == VISVM_OK);
            CHECK(c.y[10] == c.x[9 * 5]);
        }
        gc_tensor ts[1] = {{"x", c.x, dx, 60}};
        GC(mean ? "mean_pool(lens)" : "gather_last_token", pool_loss, &c, ts, 1);
        for (int i = 0; i < 5; i++) CHECK(dx[(1 * 4 + 2) * 5 + i] == 0.0f); // padding never gets gradient
        free(c.x), free(c.r), free(c.y), free(dx);
    }
}

typedef struct {
    int64_t B, T, D;
    float *x, *r, *y;
    int32_t *arg;
} maxtok_case;

static double maxtok_loss(void *ud) {
    maxtok_case *c = ud;
    vt_max_pool_forward(g_ctx, c->y, c->arg, c->x, c->B, c->T, c->D);
    return wsum(c->r, c->y, c->B * c->D);
}

static void test_max_pool_tokens(void) {
    const int64_t B = 2, T = 5, D = 3, n = B * T * D;
    maxtok_case c = {B, T, D, zerov(n), randv(B * D, -1, 1), zerov(B * D), calloc((size_t)(B * D), sizeof(int32_t))};
    for (int64_t i = 0; i < n; i++) c.x[i] = 0.25f * (float)((i * 37) % 11) - 1.0f; // distinct per column, 0.25 apart
    maxtok_loss(&c);
    for (int64_t b = 0; b < B; b++) // known answer: the column maximum and its row
        for (int64_t d = 0; d < D; d++) {
            float m = -1e30f;
            int32_t at = -1;
            for (int64_t t = 0; t < T; t++)
                if (c.x[(b * T + t) * D + d] > m) m = c.x[(b * T + t) * D + d], at = (int32_t)t;
            CHECK(c.y[b * D + d] == m && c.arg[b * D + d] == at);
        }
    float *dx = zerov(n);
    CHECK(vt_max_pool_backward(g_ctx, dx, c.r, c.arg, B, T, D) == VISVM_OK);
    gc_tensor ts[1] = {{"x", c.x, dx, n}};
    GC("max_pool(tokens)", maxtok_loss, &c, ts, 1);
    c.arg[1] = (int32_t)T; // a corrupt argmax is refused, not followed
    CHECK(vt_max_pool_backward(g_ctx, dx, c.r, c.arg, B, T, D) == VISVM_ERR_INVALID);
    vt_ctx_clear_error(g_ctx);
    free(c.x), free(c.r), free(c.y), free(c.arg), free(dx);
}

// ---------------------------------------------------------------------------
// convolutional stem: 3x3 convolution and 2x2 max pooling

typedef struct {
    int64_t B, H, W, Ci, Co;
    float *x, *Wt, *b, *cols, *r, *y;
} conv_case;

static double conv_loss(void *ud) {
    conv_case *c = ud;
    vt_conv3x3_forward(g_ctx, c->y, c->cols, c->x, c->Wt, c->b, c->B, c->H, c->W, c->Ci, c->Co);
    return wsum(c->r, c->y, c->B * c->H * c->W * c->Co);
}

static void test_conv3x3(void) {
    const int64_t B = 2, H = 4, W = 5, Ci = 3, Co = 4, n = B * H * W;
    conv_case c = {B, H, W, Ci, Co, randv(n * Ci, -1, 1), randv(Co * 9 * Ci, -0.5f, 0.5f), randv(Co, -1, 1),
                   zerov(n * 9 * Ci), randv(n * Co, -1, 1), zerov(n * Co)};
    conv_loss(&c);
    // direct convolution at an interior pixel and at a corner (zero padding)
    const int64_t at[2][3] = {{1, 2, 3}, {0, 0, 0}}; // (b, y, x)
    for (int t = 0; t < 2; t++) {
        const int64_t b = at[t][0], y = at[t][1], x = at[t][2], o = 3;
        double s = c.b[o];
        for (int64_t ky = 0; ky < 3; ky++)
            for (int64_t kx = 0; kx < 3; kx++) {
                const int64_t iy = y + ky - 1, ix = x + kx - 1;
                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                for (int64_t ci = 0; ci < Ci; ci++)
                    s += (double)c.Wt[((o * 3 + ky) * 3 + kx) * Ci + ci] * c.x[((b * H + iy) * W + ix) * Ci + ci];
            }
        CHECK_NEAR(c.y[((b * H + y) * W + x) * Co + o], s, 1e-5);
    }
    float *dx = zerov(n * Ci), *dW = zerov(Co * 9 * Ci), *db = zerov(Co);
    CHECK(vt_conv3x3_backward(g_ctx, dx, dW, db, c.r, c.cols, c.Wt, B, H, W, Ci, Co) == VISVM_OK);
    gc_tensor ts[3] = {{"x", c.x, dx, n * Ci}, {"W", c.Wt, dW, Co * 9 * Ci}, {"b", c.b, db, Co}};
    GC("conv3x3", conv_loss, &c, ts, 3);
    CHECK(vt_conv3x3_forward(g_ctx, c.y, c.cols, c.x, c.Wt, c.b, B, 0, W, Ci, Co) == VISVM_ERR_INVALID);
    vt_ctx_clear_error(g_ctx);
    free(c.x), free(c.Wt), free(c.b), free(c.cols), free(c.r), free(c.y), free(dx), free(dW), free(db);
}

typedef struct {
    int64_t B, H, W, C;
    float *x, *r, *y;
    uint8_t *arg;
} mpool_case;

static double mpool_loss(void *ud) {
    mpool_case *c = ud;
    vt_maxpool2_forward(g_ctx, c->y, c->arg, c->x, c->B, c->H, c->W, c->C);
    return wsum(c->r, c->y, c->B * (c->H / 2) * (c->W / 2) * c->C);
}

static void test_maxpool2(void) {
    const int64_t B = 2, H = 4, W = 6, C = 3, n = B * H * W * C, no = n / 4;
    mpool_case c = {B, H, W, C, randv(n, -1, 1), randv(no, -1, 1), zerov(no), calloc((size_t)no, 1)};
    // the 4 values of a window (offsets 0, C, W*C, W*C+C) get residues r, r+7, r+2, r+1 (mod 8): distinct,
    // 0.25 apart, so no finite-difference step (2h <= 0.04) changes a winner
    for (int64_t i = 0; i < n; i++) c.x[i] = 0.25f * (float)((i * 37) % 8) - 1.0f;
    mpool_loss(&c);
    // known answer: output (b=1, oy=1, ox=2, c=2) is the max of its window
    float m = -1e30f;
    for (int k = 0; k < 4; k++) {
        float v = c.x[((1 * H + 2 + k / 2) * W + 4 + k % 2) * C + 2];
        if (v > m) m = v;
    }
    CHECK(c.y[((1 * (H / 2) + 1) * (W / 2) + 2) * C + 2] == m);
    float *dx = zerov(n);
    CHECK(vt_maxpool2_backward(g_ctx, dx, c.r, c.arg, B, H, W, C) == VISVM_OK);
    int nz = 0;
    for (int64_t i = 0; i < n; i++) nz += dx[i] != 0.0f;
    CHECK(nz == no); // one winner per window and channel
    gc_tensor ts[1] = {{"x", c.x, dx, n}};
    GC("maxpool2", mpool_loss, &c, ts, 1);
    CHECK(vt_maxpool2_forward(g_ctx, c.y, c.arg, c.x, B, 3, W, C) == VISVM_ERR_INVALID);
    vt_ctx_clear_error(g_ctx);
    free(c.x), free(c.r), free(c.y), free(c.arg), free(dx);
}

// ---------------------------------------------------------------------------
// batch normalisation (stem)

typedef struct {
    int64_t N, C;
    float *x, *g, *b, *mean, *var, *rstd, *r, *y;
} bn_case;

static double bn_loss(void *ud) {
    bn_case *c = ud;
    vt_batchnorm_forward(g_ctx, c->y, c->mean, c->var, c->rstd, c->x, c->g, c->b, c->N, c->C, 1e-5f);
    return wsum(c->r, c->y, c->N * c->C);
}

static void test_batchnorm(void) {
    const int64_t N = 150, C = 5, n = N * C; // N > the 64 row blocks: several rows per block, some empty-free
    bn_case c = {N, C, randv(n, -2, 3), randv(C, 0.5f, 1.5f), randv(C, -1, 1), zerov(C), zerov(C), zerov(C),
                 randv(n, -1, 1), zerov(n)};
    bn_loss(&c);
    // known answers: each output channel has mean b and standard deviation |g| (up to eps)
    for (int64_t ch = 0; ch < C; ch++) {
        double m = 0, q = 0, mx = 0;
        for (int64_t i = 0; i < N; i++) mx += c.x[i * C + ch];
        mx /= (double)N;
        for (int64_t i = 0; i < N; i++) m += c.y[i * C + ch], q += (double)c.y[i * C + ch] * c.y[i * C + ch];
        m /= (double)N;
        CHECK_NEAR(m, c.b[ch], 1e-5);
        CHECK_NEAR(sqrt(q / (double)N - m * m), fabs(c.g[ch]), 1e-4);
        CHECK_NEAR(c.mean[ch], mx, 1e-5);
    }
    // inference with the batch's own statistics as running statistics gives the same outputs
    float *y2 = zerov(n);
    CHECK(vt_batchnorm_infer(g_ctx, y2, c.x, c.g, c.b, c.mean, c.var, N, C, 1e-5f) == VISVM_OK);
    double md = 0;
    for (int64_t i = 0; i < n; i++) md = fmax(md, fabs(y2[i] - c.y[i]));
    CHECK(md < 1e-5);
    float *dx = zerov(n), *dg = zerov(C), *db = zerov(C);
    CHECK(vt_batchnorm_backward(g_ctx, dx, dg, db, c.r, c.x, c.g, c.mean, c.rstd, N, C) == VISVM_OK);
    double sdx = 0; // the gradient w.r.t. x sums to zero per channel (shifting a channel changes nothing)
    for (int64_t i = 0; i < N; i++) sdx += dx[i * C + 2];
    CHECK_NEAR(sdx, 0.0, 1e-4);
    gc_tensor ts[3] = {{"x", c.x, dx, n}, {"g", c.g, dg, C}, {"b", c.b, db, C}};
    GC("batchnorm", bn_loss, &c, ts, 3);
    CHECK(vt_batchnorm_forward(g_ctx, c.y, c.mean, c.var, c.rstd, c.x, c.g, c.b, 0, C, 1e-5f) == VISVM_ERR_INVALID);
    vt_ctx_clear_error(g_ctx);
    free(c.x), free(c.g), free(c.b), free(c.mean), free(c.var), free(c.rstd), free(c.r), free(c.y), free(y2);
    free(dx), free(dg), free(db);
}

// ---------------------------------------------------------------------------
// patch embedding

typedef struct {
    int64_t B, S, P, D;
    float *img, *W, *b, *cols, *r, *y;
} patch_case;

static double patch_loss(void *ud) {
    patch_case *c = ud;
    vt_patch_embed_forward(g_ctx, c->y, c->cols, c->img, c->W, c->b, c->B, c->S, c->P, c->D);
    return wsum(c->r, c->y, c->B * (c->S / c->P) * (c->S / c->P) * c->D);
}

static void test_patch_embed(void) {
    const int64_t B = 2, S = 6, P = 3, D = 4, G = S / P, K = 3 * P * P, np = B * G * G;
    patch_case c = {B, S, P, D, randv(B * S * S * 3, -1, 1), randv(D * K, -0.5f, 0.5f), randv(D, -1, 1),
                    zerov(np * K), randv(np * D, -1, 1), zerov(np * D)};
    patch_loss(&c);
    // direct convolution value: patch (b=1, gy=1, gx=0), output channel 2
    double s = c.b[2];
    for (int ch = 0; ch < 3; ch++)
        for (int py = 0; py < P; py++)
            for (int px = 0; px < P; px++)
                s += (double)c.W[((2 * 3 + ch) * P + py) * P + px] *
                     c.img[((1 * S + 1 * P + py) * S + 0 * P + px) * 3 + ch];
    CHECK_NEAR(c.y[(1 * G * G + 1 * G + 0) * D + 2], s, 1e-5);
    float *dimg = zerov(B * S * S * 3), *dW = zerov(D * K), *db = zerov(D);
    CHECK(vt_patch_embed_backward(g_ctx, dimg, dW, db, c.r, c.cols, c.W, B, S, P, D) == VISVM_OK);
    gc_tensor ts[3] = {{"img", c.img, dimg, B * S * S * 3}, {"W", c.W, dW, D * K}, {"b", c.b, db, D}};
    GC("patch_embed", patch_loss, &c, ts, 3);
    CHECK(vt_patch_embed_forward(g_ctx, c.y, c.cols, c.img, c.W, c.b, B, 7, P, D) == VISVM_ERR_INVALID);
    vt_ctx_clear_error(g_ctx);
    free(c.img), free(c.W), free(c.b), free(c.cols), free(c.r), free(c.y), free(dimg), free(dW), free(db);
}

// ---------------------------------------------------------------------------
// norms

typedef struct {
    int64_t N, D;
    bool rms;
    float *x, *w, *b, *r, *y, *mean, *rstd;
} norm_case;

static double norm_loss(void *ud) {
    norm_case *c = ud;
    if (c->rms) vt_rmsnorm_forward(g_ctx, c->y, c->rstd, c->x, c->w, c->N, c->D, 1e-5f);
    else vt_layernorm_forward(g_ctx, c->y, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->D, 1e-5f);
    return wsum(c->r, c->y, c->N * c->D);
}

static void test_norms(void) {
    for (int rms = 0; rms <= 1; rms++)
        for (int affine = 0; affine <= 1; affine++) {
            const int64_t N = 6, D = 37; // D not a multiple of the 16 lanes
            norm_case c = {N, D, rms, randv(N * D, -2, 2), affine ? randv(D, 0.5f, 1.5f) : NULL,
                           affine && !rms ? randv(D, -1, 1) : NULL, randv(N * D, -1, 1), zerov(N * D), zerov(N),
                           zerov(N)};
            norm_loss(&c);
            // forward against the formula (double)
            double maxd = 0;
            for (int64_t i = 0; i < N; i++) {
                const float *x = c.x + i * D;
                double m = 0, v = 0;
                for (int64_t j = 0; j < D; j++) m += x[j];
                m = rms ? 0 : m / D;
                for (int64_t j = 0; j < D; j++) v += (x[j] - m) * (x[j] - m);
                const double rs = 1 / sqrt(v / D + 1e-5);
                for (int64_t j = 0; j < D; j++) {
                    double ref = (x[j] - m) * rs * (c.w ? c.w[j] : 1) + (c.b ? c.b[j] : 0);
                    maxd = fmax(maxd, fabs(ref - c.y[i * D + j]));
                }
            }
            CHECKF(maxd < 1e-5, "%s forward max diff %g", rms ? "rmsnorm" : "layernorm", maxd);
            float *dx = zerov(N * D), *dw = zerov(D), *db = zerov(D);
            if (rms) CHECK(vt_rmsnorm_backward(g_ctx, dx, c.w ? dw : NULL, c.r, c.x, c.w, c.rstd, N, D) == 0);
            else
                CHECK(vt_layernorm_backward(g_ctx, dx, c.w ? dw : NULL, c.b ? db : NULL, c.r, c.x, c.w, c.mean,
                                            c.rstd, N, D) == 0);
            gc_tensor ts[3] = {{"x", c.x, dx, N * D}, {"w", c.w, dw, D}, {"b", c.b, db, D}};
            GC(rms ? (affine ? "rmsnorm" : "rmsnorm(no w)") : (affine ? "layernorm" : "layernorm(no affine)"),
               norm_loss, &c, ts, affine ? (rms ? 2 : 3) : 1);
            free(c.x), free(c.w), free(c.b), free(c.r), free(c.y), free(c.mean), free(c.rstd), free(dx), free(dw),
                free(db);
        }
}

// ---------------------------------------------------------------------------
// activations, SwiGLU

typedef struct {
    vt_act act;
    int64_t n;
    float *x, *r, *y;
} act_case;

static double act_loss(void *ud) {
    act_case *c = ud;
    vt_act_forward(g_ctx, c->act, c->y, c->x, c->n);
    return wsum(c->r, c->y, c->n);
}

static void test_activations(void) {
    const char *names[] = {"gelu_tanh", "gelu_erf", "quick_gelu", "silu", "relu"};
    for (int a = 0; a <= VT_ACT_RELU; a++) {
        const int64_t n = 61;
        act_case c = {(vt_act)a, n, randv(n, -4, 4), randv(n, -1, 1), zerov(n)};
        for (int64_t i = 0; i < n; i++)
            if (fabsf(c.x[i]) < 0.2f) c.x[i] += 0.4f; // x +- 2h (2h = 0.04) stays clear of ReLU's kink
        act_loss(&c);
        // forward against libm formulas
        double maxd = 0;
        for (int64_t i = 0; i < n; i++) {
            const double x = c.x[i];
            double ref = 0;
            switch (a) {
            case VT_ACT_GELU_TANH: ref = 0.5 * x * (1 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))); break;
            case VT_ACT_GELU_ERF: ref = 0.5 * x * (1 + erf(x / sqrt(2.0))); break;
            case VT_ACT_QUICK_GELU: ref = x / (1 + exp(-1.702 * x)); break;
            case VT_ACT_SILU: ref = x / (1 + exp(-x)); break;
            default: ref = x > 0 ? x : 0;
            }
            maxd = fmax(maxd, fabs(ref - c.y[i]));
        }
        CHECKF(maxd < 2e-6, "%s forward max diff %g", names[a], maxd);
        float *dx = zerov(n);
        CHECK(vt_act_backward(g_ctx, (vt_act)a, dx, c.r, c.x, n) == VISVM_OK);
        gc_tensor ts[1] = {{"x", c.x, dx, n}};
        GC(names[a], act_loss, &c, ts, 1);
        free(c.x), free(c.r), free(c.y), free(dx);
    }
    CHECK(vt_act_forward(g_ctx, (vt_act)99, NULL, NULL, 1) == VISVM_ERR_INVALID);
    vt_ctx_clear_error(g_ctx);
}

typedef struct {
    int64_t N, F;
    float *gu, *r, *h; // gu: [N, 2F] fused gate|up
} swiglu_case;

static double swiglu_loss(void *ud) {
    swiglu_case *c = ud;
    vt_swiglu_forward(g_ctx, c->h, c->gu, c->gu + c->F, c->N, c->F, 2 * c->F);
    return wsum(c->r, c->h, c->N * c->F);
}

static void test_swiglu(void) {
    const int64_t N = 5, F = 9;
    swiglu_case c = {N, F, randv(N * 2 * F, -3, 3), randv(N * F, -1, 1), zerov(N * F)};
    swiglu_loss(&c);
    const double g = c.gu[2 * F + 4], u = c.gu[2 * F + F + 4];
    CHECK_NEAR(c.h[F + 4], g / (1 + exp(-g)) * u, 1e-5);
    float *dgu = zerov(N * 2 * F);
    CHECK(vt_swiglu_backward(g_ctx, dgu, dgu + F, c.r, c.gu, c.gu + F, N, F, 2 * F) == VISVM_OK);
    gc_tensor ts[1] = {{"gate|up", c.gu, dgu, N * 2 * F}};
    GC("swiglu(fused ld=2F)", swiglu_loss, &c, ts, 1);
    free(c.gu), free(c.r), free(c.h), free(dgu);
}

// ---------------------------------------------------------------------------
// RoPE

typedef struct {
    int64_t N, ld;
    int n_head, hd, n_rot;
    int32_t *pos;
    float *x, *r, *buf;
} rope_case;

static double rope_loss(void *ud) {
    rope_case *c = ud;
    memcpy(c->buf, c->x, (size_t)(c->N * c->ld) * sizeof(float));
    vt_rope_forward(g_ctx, c->buf, c->ld, c->pos, c->N, c->n_head, c->hd, c->n_rot, 10000.0f, 1.0f);
    return wsum(c->r, c->buf, c->N * c->ld);
}

static void test_rope(void) {
    int32_t pos[6] = {0, 1, 2, 7, 3, 100};
    const int n_head = 3, hd = 8, n_rot = 6; // partial rotation: last 2 dims per head pass through
    const int64_t N = 6, ld = n_head * hd + 5; // strided rows (view into a fused QKV buffer)
    rope_case c = {N, ld, n_head, hd, n_rot, pos, randv(N * ld, -1, 1), randv(N * ld, -1, 1), zerov(N * ld)};
    rope_loss(&c);
    // values against the rotation formula (angles in double)
    double maxd = 0;
    for (int64_t t = 0; t < N; t++)
        for (int h = 0; h < n_head; h++)
            for (int i = 0; i < hd; i += 2) {
                const float *x = c.x + t * ld + h * hd + i;
                const float *y = c.buf + t * ld + h * hd + i;
                if (i >= n_rot) {
                    maxd = fmax(maxd, fabs(x[0] - y[0]) + fabs(x[1] - y[1]));
                    continue;
                }
                const double th = pos[t] * pow(10000.0, -(double)i / n_rot);
                maxd = fmax(maxd, fabs(x[0] * cos(th) - x[1] * sin(th) - y[0]));
                maxd = fmax(maxd, fabs(x[0] * sin(th) + x[1] * cos(th) - y[1]));
            }
    for (int64_t t = 0; t < N; t++)
        for (int64_t j = n_head * hd; j < ld; j++) maxd = fmax(maxd, fabs(c.x[t * ld + j] - c.buf[t * ld + j]));
    CHECKF(maxd < 1e-4, "rope forward max diff %g", maxd);
    // analytic gradient: rotate r back, in place
    float *d = dupv(c.r, N * ld);
    CHECK(vt_rope_backward(g_ctx, d, ld, pos, N, n_head, hd, n_rot, 10000.0f, 1.0f) == VISVM_OK);
    gc_tensor ts[1] = {{"x", c.x, d, N * ld}};
    GC("rope(partial, strided)", rope_loss, &c, ts, 1);
    // forward then backward is the identity (orthogonal)
    float *z = dupv(c.x, N * ld);
    vt_rope_forward(g_ctx, z, ld, pos, N, n_head, hd, n_rot, 10000.0f, 1.0f);
    vt_rope_backward(g_ctx, z, ld, pos, N, n_head, hd, n_rot, 10000.0f, 1.0f);
    maxd = 0;
    for (int64_t i = 0; i < N * ld; i++) maxd = fmax(maxd, fabs(z[i] - c.x[i]));
    CHECKF(maxd < 1e-5, "rope round trip %g", maxd);
    CHECK(vt_rope_forward(g_ctx, z, ld, pos, N, n_head, hd, 5, 10000.0f, 1.0f) == VISVM_ERR_INVALID); // odd n_rot
    vt_ctx_clear_error(g_ctx);
    free(c.x), free(c.r), free(c.buf), free(d), free(z);
}

// ---------------------------------------------------------------------------
// attention

typedef struct {
    vt_attn_dims d;
    float *qkv; // fused [N, ld] with q | k | v column blocks (or separate views)
    float *q, *k, *v, *r, *out, *probs;
} attn_case;

static double attn_loss(void *ud) {
    attn_case *c = ud;
    vt_attention_forward(g_ctx, &c->d, c->out, c->probs, c->q, c->k, c->v);
    return wsum(c->r, c->out, c->d.B * c->d.T * c->d.n_head * c->d.hd);
}

// Direct double-precision reference.
static double attn_ref_maxdiff(const attn_case *c) {
    const vt_attn_dims *d = &c->d;
    const int64_t ldq = d->ldq, ldk = d->ldk, ldo = (int64_t)d->n_head * d->hd;
    double maxd = 0;
    double *s = malloc((size_t)d->T * sizeof(double));
    for (int64_t b = 0; b < d->B; b++) {
        const int64_t L = d->lens ? d->lens[b] : d->T;
        for (int h = 0; h < d->n_head; h++) {
            const int g = h / (d->n_head / d->n_kv);
            for (int64_t i = 0; i < d->T; i++) {
                const float *o = c->out + (b * d->T + i) * ldo + h * d->hd;
                if (i >= L) {
                    for (int e = 0; e < d->hd; e++) maxd = fmax(maxd, fabs(o[e]));
                    continue;
                }
                const int64_t n = d->causal ? i + 1 : L;
                double mx = -1e300, sum = 0;
                for (int64_t j = 0; j < n; j++) {
                    double dot = 0;
                    for (int e = 0; e < d->hd; e++)
                        dot += (double)c->q[(b * d->T + i) * ldq + h * d->hd + e] *
                               c->k[(b * d->T + j) * ldk + g * d->hd + e];
                    s[j] = dot / sqrt((double)d->hd);
                    mx = fmax(mx, s[j]);
                }
                for (int64_t j = 0; j < n; j++) sum += (s[j] = exp(s[j] - mx));
                for (int e = 0; e < d->hd; e++) {
                    double acc = 0;
                    for (int64_t j = 0; j < n; j++) acc += s[j] / sum * c->v[(b * d->T + j) * ldk + g * d->hd + e];
                    maxd = fmax(maxd, fabs(acc - o[e]));
                }
            }
        }
    }
    free(s);
    return maxd;
}

static void test_attention_case(const char *what, int64_t B, int64_t T, int n_head, int n_kv, int hd, bool causal,
                                const int32_t *lens) {
    attn_case c = {0};
    c.d = (vt_attn_dims){B, T, n_head, n_kv, hd, causal, lens, 0, 0, 0, 0};
    const int64_t N = B * T, wq = (int64_t)n_head * hd, wk = (int64_t)n_kv * hd, ld = wq + 2 * wk;
    // q, k, v as views into one fused QKV activation (strided rows)
    c.d.ldq = c.d.ldk = c.d.ldv = ld;
    c.qkv = randv(N * ld, -1.5f, 1.5f);
    c.q = c.qkv, c.k = c.qkv + wq, c.v = c.qkv + wq + wk;
    c.r = randv(N * wq, -1, 1);
    c.out = zerov(N * wq);
    c.probs = zerov(B * n_head * T * T);
    attn_loss(&c);
    double maxd = attn_ref_maxdiff(&c);
    CHECKF(maxd < 1e-5, "%s: forward vs reference max diff %g", what, maxd);
    float *dqkv = zerov(N * ld);
    CHECK(vt_attention_backward(g_ctx, &c.d, dqkv, dqkv + wq, dqkv + wq + wk, c.r, c.probs, c.q, c.k, c.v) ==
          VISVM_OK);
    gc_tensor ts[1] = {{"qkv", c.qkv, dqkv, N * ld}};
    GC(what, attn_loss, &c, ts, 1);
    if (lens) // padded rows (queries and keys) get exactly zero gradient
        for (int64_t b = 0; b < B; b++)
            for (int64_t t = lens[b]; t < T; t++)
                for (int64_t j = 0; j < ld; j++) CHECK(dqkv[(b * T + t) * ld + j] == 0.0f);
    free(c.qkv), free(c.r), free(c.out), free(c.probs), free(dqkv);
}

static void test_attention(void) {
    const int32_t lens[3] = {5, 3, 0};
    test_attention_case("attn causal+GQA+padding", 3, 5, 4, 2, 4, true, lens);
    test_attention_case("attn bidir+padding MQA", 2, 5, 3, 1, 3, false, lens);
    test_attention_case("attn bidir MHA", 2, 4, 2, 2, 5, false, NULL);
    test_attention_case("attn causal 1 seq", 1, 7, 2, 1, 4, true, NULL);
    const int32_t lens_long[2] = {150, 97}; // causal row blocks of 64: 3 and 2 blocks
    test_attention_case("attn causal long+padding", 2, 150, 2, 1, 4, true, lens_long);
    test_attention_case("attn bidir long+padding", 2, 150, 2, 2, 3, false, lens_long);
    // bad arguments are reported, not crashed on
    const int32_t bad[1] = {9};
    vt_attn_dims d = {1, 5, 4, 3, 4, true, NULL, 0, 0, 0, 0};
    float buf[64 * 20] = {0};
    CHECK(vt_attention_forward(g_ctx, &d, buf, buf, buf, buf, buf) == VISVM_ERR_INVALID); // 4 % 3 != 0
    d.n_kv = 2;
    d.lens = bad;
    vt_ctx_clear_error(g_ctx);
    CHECK(vt_attention_forward(g_ctx, &d, buf, buf, buf, buf, buf) == VISVM_ERR_RANGE);
    CHECK(strstr(vt_ctx_error(g_ctx), "length 9") != NULL);
    vt_ctx_clear_error(g_ctx);
}

// ---------------------------------------------------------------------------
// losses

typedef struct {
    int64_t N, V;
    int32_t *tgt;
    float *w, *logits;
} ce_case;

static double ce_loss(void *ud) {
    ce_case *c = ud;
    float loss = 0;
    vt_cross_entropy(g_ctx, c->logits, c->tgt, c->w, c->N, c->V, &loss, NULL, NULL, 1.0f);
    return loss;
}

static void test_cross_entropy(void) {
    // hand example: logits (1, 2, 3), target 2: log(e + e^2 + e^3) - 3
    float lg[3] = {1, 2, 3}, dl[3];
    int32_t t1 = 2;
    float loss = 0, rl = 0;
    CHECK(vt_cross_entropy(g_ctx, lg, &t1, NULL, 1, 3, &loss, &rl, dl, 1.0f) == VISVM_OK);
    CHECK_NEAR(loss, 0.40760596, 1e-6);
    CHECK_NEAR(rl, 0.40760596, 1e-6);
    CHECK_NEAR(dl[0], 0.09003057, 1e-6);
    CHECK_NEAR(dl[2], 0.66524096 - 1, 1e-6);

    for (int weighted = 0; weighted <= 1; weighted++) {
        const int64_t N = 6, V = 21; // V not a multiple of 16
        int32_t tgt[6] = {3, VT_IGNORE_INDEX, 20, 0, VT_IGNORE_INDEX, 7};
        ce_case c = {N, V, tgt, weighted ? randv(N, 0.2f, 2.0f) : NULL, randv(N * V, -4, 4)};
        float *d = zerov(N * V), *rows = zerov(N);
        CHECK(vt_cross_entropy(g_ctx, c.logits, tgt, c.w, N, V, &loss, rows, d, 1.0f) == VISVM_OK);
        // loss = weighted mean of per-row CE over counted rows (reference in double)
        double acc = 0, ws = 0;
        for (int64_t i = 0; i < N; i++) {
            if (tgt[i] < 0) {
                CHECK(rows[i] == 0.0f);
                continue;
            }
            double mx = -1e300, s = 0;
            for (int64_t j = 0; j < V; j++) mx = fmax(mx, c.logits[i * V + j]);
            for (int64_t j = 0; j < V; j++) s += exp(c.logits[i * V + j] - mx);
            const double ce = mx + log(s) - c.logits[i * V + tgt[i]];
            CHECK_NEAR(rows[i], ce, 1e-5);
            const double w = c.w ? c.w[i] : 1;
            acc += w * ce;
            ws += w;
        }
        CHECK_NEAR(loss, acc / ws, 1e-5);
        gc_tensor ts[1] = {{"logits", c.logits, d, N * V}};
        GC(weighted ? "cross_entropy(weighted,ignore)" : "cross_entropy(ignore)", ce_loss, &c, ts, 1);
        for (int64_t j = 0; j < V; j++) CHECK(d[1 * V + j] == 0.0f); // ignored row
        // in place (dlogits aliases logits) gives the same gradient, scaled
        float *inpl = dupv(c.logits, N * V);
        float l2 = 0;
        CHECK(vt_cross_entropy(g_ctx, inpl, tgt, c.w, N, V, &l2, NULL, inpl, 0.5f) == VISVM_OK);
        CHECK(l2 == loss);
        double maxd = 0;
        for (int64_t i = 0; i < N * V; i++) maxd = fmax(maxd, fabs(inpl[i] - 0.5 * d[i]));
        CHECKF(maxd < 1e-7, "in-place CE gradient differs by %g", maxd);
        free(c.w), free(c.logits), free(d), free(rows), free(inpl);
    }
    // all rows ignored: loss 0, zero gradient; bad target reported
    int32_t ign[2] = {VT_IGNORE_INDEX, VT_IGNORE_INDEX}, badt[2] = {0, 3};
    float lg2[6] = {1, 2, 3, 4, 5, 6}, d2[6];
    CHECK(vt_cross_entropy(g_ctx, lg2, ign, NULL, 2, 3, &loss, NULL, d2, 1.0f) == VISVM_OK);
    CHECK(loss == 0.0f && d2[0] == 0.0f && d2[5] == 0.0f);
    CHECK(vt_cross_entropy(g_ctx, lg2, badt, NULL, 2, 3, &loss, NULL, d2, 1.0f) == VISVM_ERR_RANGE);
    CHECK(strstr(vt_ctx_error(g_ctx), "target 3") != NULL);
    vt_ctx_clear_error(g_ctx);
}

typedef struct {
    int64_t B, Bt, D;
    float *img, *txt;
    float ls;
} nce_case;

static double nce_loss(void *ud) {
    nce_case *c = ud;
    vt_infonce_result r;
    vt_infonce(g_ctx, c->img, c->txt, c->B, c->Bt, c->D, c->ls, &r, NULL, NULL, NULL, 1.0f);
    return r.loss;
}

static void test_infonce(void) {
    // 2x2 hand example: img (1,0), (0,2); txt (1,1), (0,1); s = exp(ln 2) = 2.
    // cos = [[1/sqrt2, 0], [1/sqrt2, 1]], logits = 2 cos.
    float img[4] = {1, 0, 0, 2}, txt[4] = {1, 1, 0, 1};
    vt_infonce_result r;
    CHECK(vt_infonce(g_ctx, img, txt, 2, 2, 2, logf(2.0f), &r, NULL, NULL, NULL, 1.0f) == VISVM_OK);
    const double a = sqrt(2.0); // = 2 / sqrt 2
    const double i2t = 0.5 * ((log(exp(a) + 1) - a) + (log(exp(a) + exp(2.0)) - 2));
    const double t2i = 0.5 * ((log(exp(a) + exp(a)) - a) + (log(1 + exp(2.0)) - 2));
    CHECK_NEAR(r.loss_i2t, i2t, 1e-6);
    CHECK_NEAR(r.loss_t2i, t2i, 1e-6);
    CHECK_NEAR(r.loss, 0.5 * (i2t + t2i), 1e-6);
    CHECK_NEAR(r.scale, 2.0, 1e-6);
    CHECK(r.acc_i2t == 1.0f); // rows: argmax 0, 1
    CHECK(r.acc_t2i == 1.0f); // column 0 is a tie (first index wins: row 0, correct), column 1 -> row 1

    for (int clamped = 0; clamped <= 1; clamped++) {
        const int64_t B = 3, Bt = 5, D = 4; // texts 3, 4 are extra hard negatives
        nce_case c = {B, Bt, D, randv(B * D, -1, 1), randv(Bt * D, -1, 1), clamped ? 4.8f : 1.2f};
        float *di = zerov(B * D), *dt = zerov(Bt * D), dls = 0.25f; // dls accumulates onto 0.25
        CHECK(vt_infonce(g_ctx, c.img, c.txt, B, Bt, D, c.ls, &r, di, dt, &dls, 1.0f) == VISVM_OK);
        dls -= 0.25f;
        if (clamped) {
            CHECK_NEAR(r.scale, 100.0, 1e-3);
            CHECK(dls == 0.0f);
        }
        gc_tensor ts[3] = {{"img", c.img, di, B * D}, {"txt", c.txt, dt, Bt * D}, {"logit_scale", &c.ls, &dls, 1}};
        const double h_saved = g_hrel;
        if (clamped) g_hrel = 1e-3; // s = 100 makes the loss 100x sharper in the embeddings
        GC(clamped ? "infonce(clamped scale)" : "infonce(+2 negatives)", nce_loss, &c, ts, 3);
        g_hrel = h_saved;
        // negatives only appear in the image->text softmax: they still get gradient
        double gneg = 0;
        for (int64_t i = 3 * D; i < Bt * D; i++) gneg += fabs(dt[i]);
        CHECK(gneg > 0);
        free(c.img), free(c.txt), free(di), free(dt);
    }
    CHECK(vt_infonce(g_ctx, img, txt, 3, 2, 2, 0.0f, &r, NULL, NULL, NULL, 1.0f) == VISVM_ERR_INVALID); // Bt < B
    vt_ctx_clear_error(g_ctx);
}

typedef struct {
    int64_t n;
    float *p, *t, *w;
} mse_case;

static double mse_loss(void *ud) {
    mse_case *c = ud;
    float l;
    vt_mse(g_ctx, c->p, c->t, c->w, c->n, &l, NULL, 1.0f);
    return l;
}

static void test_mse(void) {
    float p[3] = {1, 2, 3}, t[3] = {0, 2, 5}, d[3], l;
    CHECK(vt_mse(g_ctx, p, t, NULL, 3, &l, d, 1.0f) == VISVM_OK);
    CHECK_NEAR(l, 5.0 / 3.0, 1e-6);
    CHECK_NEAR(d[0], 2.0 / 3.0, 1e-6);
    CHECK_NEAR(d[2], -4.0 / 3.0, 1e-6);
    for (int weighted = 0; weighted <= 1; weighted++) {
        mse_case c = {7, randv(7, -1, 1), randv(7, -1, 1), weighted ? randv(7, 0, 1) : NULL};
        float *dp = zerov(7);
        vt_mse(g_ctx, c.p, c.t, c.w, 7, &l, dp, 1.0f);
        gc_tensor ts[1] = {{"pred", c.p, dp, 7}};
        GC(weighted ? "mse(weighted)" : "mse", mse_loss, &c, ts, 1);
        free(c.p), free(c.t), free(c.w), free(dp);
    }
}

typedef struct {
    float *p, *t;
    const int *g;
} gmse_case;

static double gmse_loss(void *ud) {
    gmse_case *c = ud;
    float l;
    vt_group_centred_mse(g_ctx, c->p, c->t, c->g, 7, &l, NULL, 1.0f);
    return l;
}

// Hand-worked: groups {0,1} and {2}; e = (1, 0, -2): group means 0.5 and -2, so
// loss = (0.25 + 0.25 + 0) / 3; a shift of a whole group changes nothing.
static void test_group_centred_mse(void) {
    float p[3] = {1, 2, 3}, t[3] = {0, 2, 5}, d[3] = {1, 1, 1}, l;
    const int g[3] = {4, 4, 9};
    CHECK(vt_group_centred_mse(g_ctx, p, t, g, 3, &l, d, 1.0f) == VISVM_OK);
    CHECK_NEAR(l, 0.5 / 3.0, 1e-6);
    CHECK_NEAR(d[0], 1 + 2 * 0.5 / 3.0, 1e-6); // accumulates
    CHECK_NEAR(d[1], 1 - 2 * 0.5 / 3.0, 1e-6);
    CHECK_NEAR(d[2], 1, 1e-6);
    float p2[3] = {1 + 7, 2 + 7, 3 - 5}, l2;
    CHECK(vt_group_centred_mse(g_ctx, p2, t, g, 3, &l2, NULL, 1.0f) == VISVM_OK);
    CHECK_NEAR(l2, l, 1e-6);
    const int g7[7] = {0, 0, 0, 1, 1, 2, 3};
    gmse_case c = {randv(7, -1, 1), randv(7, -1, 1), g7};
    float *dp = zerov(7);
    vt_group_centred_mse(g_ctx, c.p, c.t, g7, 7, &l, dp, 1.0f);
    gc_tensor ts[1] = {{"pred", c.p, dp, 7}};
    GC("group-centred mse", gmse_loss, &c, ts, 1);
    free(c.p), free(c.t), free(dp);
    CHECK(vt_group_centred_mse(g_ctx, p, t, NULL, 3, &l, NULL, 1.0f) == VISVM_ERR_INVALID);
    vt_ctx_clear_error(g_ctx);
}

// ---------------------------------------------------------------------------
// determinism: a pre-LN transformer block (all layer kinds) run with 1, 2 and
// 3 threads must give bit-identical activations and gradients.

typedef struct {
    float *out, *dx, *dW[4], *db, *dln;
    float loss;
} block_result;

static float *normv(vv_rng *rng, int64_t n) {
    float *p = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) p[i] = 0.2f * vv_rng_normal(rng);
    return p;
}

static void run_block(int n_threads, block_result *res) {
    vt_ctx *ctx = NULL;
    vt_ctx_create(n_threads, &ctx, NULL);
    vv_rng rng;
    vv_rng_seed(&rng, 1234);
    const int64_t B = 4, T = 72, D = 96, H = 4, hd = D / H, F = 4 * D, N = B * T, V = 50;
    const int32_t lens[4] = {72, 17, 65, 1};
#define RV(n) normv(&rng, n)
    float *x = RV(N * D), *lnw = RV(D), *Wqkv = RV(3 * D * D), *Wo = RV(D * D), *W1 = RV(F * D), *W2 = RV(D * F),
          *Wh = RV(V * D), *b1 = RV(F);
    int32_t *pos = malloc(N * sizeof(int32_t)), *tgt = malloc(N * sizeof(int32_t));
    for (int64_t i = 0; i < N; i++) {
        pos[i] = (int32_t)(i % T);
        tgt[i] = (i % T) < lens[i / T] ? (int32_t)vv_rng_below(&rng, V) : VT_IGNORE_INDEX;
    }
    float *h = zerov(N * D), *mean = zerov(N), *rstd = zerov(N), *qkv = zerov(N * 3 * D), *att = zerov(N * D),
          *probs = zerov(B * H * T * T), *o = zerov(N * D), *x2 = zerov(N * D), *f1 = zerov(N * F),
          *f2 = zerov(N * F), *y = zerov(N * D), *lg = zerov(N * V);
    vt_attn_dims ad = {B, T, (int)H, (int)H, (int)hd, true, lens, 3 * D, 3 * D, 3 * D, 0}; // q|k|v fused rows
    vt_layernorm_forward(ctx, h, mean, rstd, x, lnw, NULL, N, D, 1e-5f);
    vt_linear_forward(ctx, qkv, h, Wqkv, NULL, N, D, 3 * D);
    vt_rope_forward(ctx, qkv, 3 * D, pos, N, (int)H, (int)hd, (int)hd, 10000.0f, 1.0f);
    vt_rope_forward(ctx, qkv + D, 3 * D, pos, N, (int)H, (int)hd, (int)hd, 10000.0f, 1.0f);
    vt_attention_forward(ctx, &ad, att, probs, qkv, qkv + D, qkv + 2 * D);
    vt_linear_forward(ctx, o, att, Wo, NULL, N, D, D);
    vt_add_forward(ctx, x2, x, o, N * D);
    vt_linear_forward(ctx, f1, x2, W1, b1, N, D, F);
    vt_act_forward(ctx, VT_ACT_GELU_TANH, f2, f1, N * F);
    vt_linear_forward(ctx, y, f2, W2, NULL, N, F, D);
    vt_accumulate(ctx, y, x2, N * D);
    vt_linear_forward(ctx, lg, y, Wh, NULL, N, D, V);
    float *dlg = zerov(N * V);
    vt_cross_entropy(ctx, lg, tgt, NULL, N, V, &res->loss, NULL, dlg, 1.0f);
    float *dy = zerov(N * D), *df2 = zerov(N * F), *df1 = zerov(N * F), *dx2 = zerov(N * D), *datt = zerov(N * D),
          *dqkv = zerov(N * 3 * D), *dh = zerov(N * D);
    res->dx = zerov(N * D);
    for (int i = 0; i < 4; i++) res->dW[i] = zerov(F * D);
    res->db = zerov(F);
    res->dln = zerov(D);
    vt_linear_backward(ctx, dy, res->dW[3], NULL, dlg, y, Wh, N, D, V);
    vt_accumulate(ctx, dx2, dy, N * D);
    vt_linear_backward(ctx, df2, res->dW[2], NULL, dy, f2, W2, N, F, D);
    vt_act_backward(ctx, VT_ACT_GELU_TANH, df1, df2, f1, N * F);
    vt_linear_backward(ctx, dx2, res->dW[1], res->db, df1, x2, W1, N, D, F);
    vt_accumulate(ctx, res->dx, dx2, N * D);
    vt_linear_backward(ctx, datt, res->dW[0], NULL, dx2, att, Wo, N, D, D);
    vt_attention_backward(ctx, &ad, dqkv, dqkv + D, dqkv + 2 * D, datt, probs, qkv, qkv + D, qkv + 2 * D);
    vt_rope_backward(ctx, dqkv, 3 * D, pos, N, (int)H, (int)hd, (int)hd, 10000.0f, 1.0f);
    vt_rope_backward(ctx, dqkv + D, 3 * D, pos, N, (int)H, (int)hd, (int)hd, 10000.0f, 1.0f);
    vt_linear_backward(ctx, dh, NULL, NULL, dqkv, h, Wqkv, N, D, 3 * D);
    vt_layernorm_backward(ctx, res->dx, res->dln, NULL, dh, x, lnw, mean, rstd, N, D);
    CHECK(vt_ctx_status(ctx) == VISVM_OK);
    res->out = lg;
    free(x), free(lnw), free(Wqkv), free(Wo), free(W1), free(W2), free(Wh), free(b1), free(pos), free(tgt);
    free(h), free(mean), free(rstd), free(qkv), free(att), free(probs), free(o), free(x2), free(f1), free(f2), free(y);
    free(dlg), free(dy), free(df2), free(df1), free(dx2), free(datt), free(dqkv), free(dh);
    vt_ctx_free(ctx);
#undef RV
}

static void free_block(block_result *r) {
    free(r->out), free(r->dx), free(r->db), free(r->dln);
    for (int i = 0; i < 4; i++) free(r->dW[i]);
}

static void test_determinism(void) {
    const int64_t N = 4 * 72, D = 96, F = 384, V = 50;
    block_result ref, r;
    run_block(1, &ref);
    CHECK(isfinite(ref.loss) && ref.loss > 0);
    const int threads[3] = {1, 2, 3};
    for (int k = 0; k < 3; k++) {
        run_block(threads[k], &r);
        CHECKF(r.loss == ref.loss, "loss differs with %d threads", threads[k]);
        bool same = memcmp(r.out, ref.out, (size_t)(N * V) * 4) == 0 && memcmp(r.dx, ref.dx, (size_t)(N * D) * 4) == 0 &&
                    memcmp(r.db, ref.db, (size_t)F * 4) == 0 && memcmp(r.dln, ref.dln, (size_t)D * 4) == 0;
        for (int i = 0; i < 4; i++) same = same && memcmp(r.dW[i], ref.dW[i], (size_t)(F * D) * 4) == 0;
        CHECKF(same, "results with %d threads are not bit-identical to 1 thread", threads[k]);
        free_block(&r);
    }
    free_block(&ref);
}

// ---------------------------------------------------------------------------

static void test_errors(void) {
    int32_t ids[2] = {0, 6};
    float wte[12] = {0}, out[4];
    CHECK(vt_embedding_forward(g_ctx, out, ids, wte, 2, 6, 2) == VISVM_ERR_RANGE);
    CHECK(vt_ctx_status(g_ctx) == VISVM_ERR_RANGE);
    CHECK(strstr(vt_ctx_error(g_ctx), "index 6") != NULL);
    CHECK(vt_linear_forward(g_ctx, out, NULL, wte, NULL, 1, 2, 2) == VISVM_ERR_INVALID);
    CHECK(vt_ctx_status(g_ctx) == VISVM_ERR_RANGE); // first error is kept
    vt_ctx_clear_error(g_ctx);
    CHECK(vt_ctx_status(g_ctx) == VISVM_OK);
    CHECK(vt_linear_forward(g_ctx, out, wte, wte, NULL, -1, 2, 2) == VISVM_ERR_INVALID);
    CHECK(vt_linear_forward(NULL, out, wte, wte, NULL, 1, 2, 2) == VISVM_ERR_INVALID);
    const int32_t lens0[1] = {0};
    CHECK(vt_last_token_index(g_ctx, ids, lens0, 1, 4) == VISVM_ERR_RANGE);
    vt_ctx_clear_error(g_ctx);
}

int main(void) {
    vv_rng_seed(&g_rng, 42);
    if (getenv("GC_H")) g_hrel = atof(getenv("GC_H"));
    if (getenv("GC_FLOOR")) g_floor = atof(getenv("GC_FLOOR"));
    if (getenv("GC_FFRAC")) g_ffrac = atof(getenv("GC_FFRAC"));
    vv_error e = {0};
    if (vt_ctx_create(2, &g_ctx, &e) != VISVM_OK) {
        fprintf(stderr, "ctx: %s\n", e.msg);
        return 1;
    }
    test_linear();
    test_embedding();
    test_bcast_add();
    test_pooling();
    test_patch_embed();
    test_conv3x3();
    test_maxpool2();
    test_batchnorm();
    test_max_pool_tokens();
    test_norms();
    test_activations();
    test_swiglu();
    test_rope();
    test_attention();
    test_cross_entropy();
    test_infonce();
    test_mse();
    test_group_centred_mse();
    test_determinism();
    test_errors();
    CHECKF(vt_ctx_status(g_ctx) == VISVM_OK, "unexpected error left in the context: %s", vt_ctx_error(g_ctx));
    vt_ctx_free(g_ctx);
    return tc_result("test_train_layers");
}
