// bench_train.c - forward + backward throughput of a transformer block stack
// built from the training layers (src/train), 1 vs 2 threads, and our tiled
// threading vs letting OpenBLAS thread each GEMM.
//
// Build (standalone, from the repository root; one command line):
//   gcc -std=c11 -D_GNU_SOURCE -O3 -Wall -Wextra -Wno-unused-parameter -fno-math-errno
//       -Iinclude -Isrc -I/usr/include/x86_64-linux-gnu/openblas-pthread
//       src/base/base.c src/base/threadpool.c src/tensor/types.c src/format/gguf.c src/train/*.c
//       bench/bench_train.c -lopenblas -lm -lpthread -o bench_train
// Run: ./bench_train [D=256] [layers=4] [T=128] [B=32] [arch=gpt|llama] [rounds=5]
//   gpt:   pre-LN, LayerNorm, QKV + causal MHA, GELU MLP (4D)   (CLIP text tower style)
//   llama: pre-norm, RMSNorm, RoPE, causal GQA (n_kv = n_head/2), SwiGLU MLP (8D/3 -> mult. of 16)
// Counted FLOPs are the GEMMs actually executed (causal attention in row blocks
// of 64 skips most of the masked triangle); element-wise work is not counted.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/layers.h"

typedef struct {
    // per-layer saved activations
    float *x, *h1, *m1, *r1, *qkv, *probs, *att, *xm, *h2, *m2, *r2, *fc, *act;
} saved;

typedef struct {
    int64_t B, T, D, F, N, L;
    int H, KV, hd;
    bool llama;
    float **W; // per layer: [0] ln1 w, [1] ln1 b, [2] Wqkv, [3] Wo, [4] ln2 w, [5] ln2 b, [6] W1 (fc / gate|up), [7] W2
    float **G; // gradients, same layout
    saved *s;
    float *out, *dout, *dx, *dxm, *dh, *dqkv, *datt, *dfc, *dact;
    int32_t *pos;
} model;

static float *alloc_f(int64_t n) {
    float *p = vv_aalloc((size_t)n * sizeof(float));
    if (!p) {
        fprintf(stderr, "out of memory (%lld floats)\n", (long long)n);
        exit(1);
    }
    memset(p, 0, (size_t)n * sizeof(float));
    return p;
}

static float *rand_f(int64_t n, float std, vv_rng *r) {
    float *p = alloc_f(n);
    for (int64_t i = 0; i < n; i++) p[i] = std * vv_rng_normal(r);
    return p;
}

static int64_t qkv_w(const model *m) { return (int64_t)(m->H + 2 * m->KV) * m->hd; }
static int64_t fc_w(const model *m) { return m->llama ? 2 * m->F : m->F; }

static void model_init(model *m) {
    vv_rng r;
    vv_rng_seed(&r, 1);
    const int64_t D = m->D, N = m->N;
    m->W = calloc((size_t)m->L * 8, sizeof(float *));
    m->G = calloc((size_t)m->L * 8, sizeof(float *));
    m->s = calloc((size_t)m->L, sizeof(saved));
    for (int64_t l = 0; l < m->L; l++) {
        float **W = m->W + l * 8, **G = m->G + l * 8;
        int64_t sz[8] = {D, D, qkv_w(m) * D, D * m->H * m->hd, D, D, fc_w(m) * D, D * m->F};
        for (int k = 0; k < 8; k++) {
            W[k] = (k == 0 || k == 4) ? rand_f(sz[k], 0.0f, &r) : rand_f(sz[k], 0.02f, &r);
            if (k == 0 || k == 4)
                for (int64_t i = 0; i < D; i++) W[k][i] = 1.0f;
            G[k] = alloc_f(sz[k]);
        }
        saved *s = &m->s[l];
        s->x = alloc_f(N * D), s->h1 = alloc_f(N * D), s->m1 = alloc_f(N), s->r1 = alloc_f(N);
        s->qkv = alloc_f(N * qkv_w(m)), s->probs = alloc_f(m->B * m->H * m->T * m->T), s->att = alloc_f(N * D);
        s->xm = alloc_f(N * D), s->h2 = alloc_f(N * D), s->m2 = alloc_f(N), s->r2 = alloc_f(N);
        s->fc = alloc_f(N * fc_w(m)), s->act = alloc_f(N * m->F);
    }
    m->out = alloc_f(N * D), m->dout = rand_f(N * D, 1.0f, &r), m->dx = alloc_f(N * D), m->dxm = alloc_f(N * D);
    m->dh = alloc_f(N * D), m->dqkv = alloc_f(N * qkv_w(m)), m->datt = alloc_f(N * D);
    m->dfc = alloc_f(N * fc_w(m)), m->dact = alloc_f(N * m->F);
    m->pos = malloc((size_t)N * sizeof(int32_t));
    for (int64_t i = 0; i < N; i++) m->pos[i] = (int32_t)(i % m->T);
    float *x0 = rand_f(N * D, 1.0f, &r);
    memcpy(m->s[0].x, x0, (size_t)(N * D) * sizeof(float));
    vv_afree(x0);
}

static vt_attn_dims attn_dims(const model *m) {
    const int64_t w = qkv_w(m);
    return (vt_attn_dims){m->B, m->T, m->H, m->KV, m->hd, true, NULL, w, w, w, 0};
}

static void norm_fwd(vt_ctx *c, const model *m, float *y, float *mean, float *rstd, const float *x, float *w,
                     float *b) {
    if (m->llama) vt_rmsnorm_forward(c, y, rstd, x, w, m->N, m->D, 1e-5f);
    else vt_layernorm_forward(c, y, mean, rstd, x, w, b, m->N, m->D, 1e-5f);
}

static void norm_bwd(vt_ctx *c, const model *m, float *dx, float *dw, float *db, const float *dy, const float *x,
                     float *w, const float *mean, const float *rstd) {
    if (m->llama) vt_rmsnorm_backward(c, dx, dw, dy, x, w, rstd, m->N, m->D);
    else vt_layernorm_backward(c, dx, dw, db, dy, x, w, mean, rstd, m->N, m->D);
}

static void forward(vt_ctx *c, model *m) {
    const int64_t N = m->N, D = m->D, F = m->F, wq = qkv_w(m), qd = (int64_t)m->H * m->hd;
    const vt_attn_dims ad = attn_dims(m);
    for (int64_t l = 0; l < m->L; l++) {
        float **W = m->W + l * 8;
        saved *s = &m->s[l];
        float *next = l + 1 < m->L ? m->s[l + 1].x : m->out;
        norm_fwd(c, m, s->h1, s->m1, s->r1, s->x, W[0], W[1]);
        vt_linear_forward(c, s->qkv, s->h1, W[2], NULL, N, D, wq);
        if (m->llama) {
            vt_rope_forward(c, s->qkv, wq, m->pos, N, m->H, m->hd, m->hd, 10000.0f, 1.0f);
            vt_rope_forward(c, s->qkv + qd, wq, m->pos, N, m->KV, m->hd, m->hd, 10000.0f, 1.0f);
        }
        vt_attention_forward(c, &ad, s->att, s->probs, s->qkv, s->qkv + qd, s->qkv + qd + (int64_t)m->KV * m->hd);
        vt_linear_forward(c, s->xm, s->att, W[3], NULL, N, qd, D);
        vt_accumulate(c, s->xm, s->x, N * D);
        norm_fwd(c, m, s->h2, s->m2, s->r2, s->xm, W[4], W[5]);
        vt_linear_forward(c, s->fc, s->h2, W[6], NULL, N, D, fc_w(m));
        if (m->llama) vt_swiglu_forward(c, s->act, s->fc, s->fc + F, N, F, 2 * F);
        else vt_act_forward(c, VT_ACT_GELU_TANH, s->act, s->fc, N * F);
        vt_linear_forward(c, next, s->act, W[7], NULL, N, F, D);
        vt_accumulate(c, next, s->xm, N * D);
    }
}

static void backward(vt_ctx *c, model *m) {
    const int64_t N = m->N, D = m->D, F = m->F, wq = qkv_w(m), qd = (int64_t)m->H * m->hd, kd = (int64_t)m->KV * m->hd;
    const vt_attn_dims ad = attn_dims(m);
    memcpy(m->dx, m->dout, (size_t)(N * D) * sizeof(float)); // gradient of the stream
    for (int64_t l = m->L - 1; l >= 0; l--) {
        float **W = m->W + l * 8, **G = m->G + l * 8;
        saved *s = &m->s[l];
        // MLP branch: stream gradient dx flows to xm directly and through the MLP
        memcpy(m->dxm, m->dx, (size_t)(N * D) * sizeof(float));
        memset(m->dact, 0, (size_t)(N * F) * sizeof(float));
        vt_linear_backward(c, m->dact, G[7], NULL, m->dx, s->act, W[7], N, F, D);
        memset(m->dfc, 0, (size_t)(N * fc_w(m)) * sizeof(float));
        if (m->llama) vt_swiglu_backward(c, m->dfc, m->dfc + F, m->dact, s->fc, s->fc + F, N, F, 2 * F);
        else vt_act_backward(c, VT_ACT_GELU_TANH, m->dfc, m->dact, s->fc, N * F);
        memset(m->dh, 0, (size_t)(N * D) * sizeof(float));
        vt_linear_backward(c, m->dh, G[6], NULL, m->dfc, s->h2, W[6], N, D, fc_w(m));
        norm_bwd(c, m, m->dxm, G[4], G[5], m->dh, s->xm, W[4], s->m2, s->r2);
        // attention branch
        memcpy(m->dx, m->dxm, (size_t)(N * D) * sizeof(float));
        memset(m->datt, 0, (size_t)(N * qd) * sizeof(float));
        vt_linear_backward(c, m->datt, G[3], NULL, m->dxm, s->att, W[3], N, qd, D);
        memset(m->dqkv, 0, (size_t)(N * wq) * sizeof(float));
        vt_attention_backward(c, &ad, m->dqkv, m->dqkv + qd, m->dqkv + qd + kd, m->datt, s->probs, s->qkv,
                              s->qkv + qd, s->qkv + qd + kd);
        if (m->llama) {
            vt_rope_backward(c, m->dqkv, wq, m->pos, N, m->H, m->hd, m->hd, 10000.0f, 1.0f);
            vt_rope_backward(c, m->dqkv + qd, wq, m->pos, N, m->KV, m->hd, m->hd, 10000.0f, 1.0f);
        }
        memset(m->dh, 0, (size_t)(N * D) * sizeof(float));
        vt_linear_backward(c, m->dh, G[2], NULL, m->dqkv, s->h1, W[2], N, D, wq);
        norm_bwd(c, m, m->dx, G[0], G[1], m->dh, s->x, W[0], s->m1, s->r1);
    }
}

static double flops(const model *m) {
    const double N = (double)m->N, D = (double)m->D, F = (double)m->F;
    const double qd = (double)m->H * m->hd, wq = (double)qkv_w(m), wf = (double)fc_w(m);
    const double lin = 2 * N * D * wq + 2 * N * qd * D + 2 * N * D * wf + 2 * N * F * D; // forward GEMMs
    // QK^T and PV as executed: causal row blocks of 64 rows see keys [0, block end)
    double keys = 0; // sum over query rows of the keys multiplied
    for (int64_t i0 = 0; i0 < m->T; i0 += 64) keys += (double)VV_MIN((int64_t)64, m->T - i0) * VV_MIN(i0 + 64, m->T);
    const double att = 2 * 2 * (double)m->B * m->H * keys * m->hd;
    return (double)m->L * (3 * lin + 3 * att); // backward: 2 GEMMs per forward GEMM
}

// One measurement: a fresh context, one warm-up pass, then one timed fwd + bwd.
static void run_once(model *m, int threads, bool blas_threads, double *t_fwd, double *t_bwd) {
    vt_ctx *c = NULL;
    vv_error e = {0};
    if (vt_ctx_create(blas_threads ? 1 : threads, &c, &e)) {
        fprintf(stderr, "%s\n", e.msg);
        exit(1);
    }
    if (blas_threads) openblas_set_num_threads(threads); // one tile at a time, OpenBLAS splits it
    forward(c, m);
    backward(c, m);
    double t0 = vv_time_s();
    forward(c, m);
    double t1 = vv_time_s();
    backward(c, m);
    double t2 = vv_time_s();
    if (vt_ctx_status(c)) fprintf(stderr, "error: %s\n", vt_ctx_error(c));
    vt_ctx_free(c);
    openblas_set_num_threads(1);
    *t_fwd = t1 - t0;
    *t_bwd = t2 - t1;
}

int main(int argc, char **argv) {
    model m = {0};
    m.D = argc > 1 ? atoll(argv[1]) : 256;
    m.L = argc > 2 ? atoll(argv[2]) : 4;
    m.T = argc > 3 ? atoll(argv[3]) : 128;
    m.B = argc > 4 ? atoll(argv[4]) : 32;
    m.llama = argc > 5 && strcmp(argv[5], "llama") == 0;
    const int reps = argc > 6 ? atoi(argv[6]) : 5;
    m.hd = 64;
    if (m.D < 64 || m.D % 64) m.hd = 32;
    if (m.D % m.hd) {
        fprintf(stderr, "D must be a multiple of 32\n");
        return 1;
    }
    m.H = (int)(m.D / m.hd);
    m.KV = m.llama && m.H % 2 == 0 ? m.H / 2 : m.H;
    m.F = m.llama ? (8 * m.D / 3 + 15) / 16 * 16 : 4 * m.D;
    m.N = m.B * m.T;
    model_init(&m);
    const double fl = flops(&m);
    printf("%s stack: D=%lld layers=%lld T=%lld B=%lld heads=%d (kv %d, hd %d) F=%lld: %.2f GFLOP per fwd+bwd\n",
           m.llama ? "llama" : "gpt", (long long)m.D, (long long)m.L, (long long)m.T, (long long)m.B, m.H, m.KV, m.hd,
           (long long)m.F, fl * 1e-9);
    enum { NCFG = 3 };
    const struct {
        int threads;
        bool blas;
        const char *what;
    } cfgs[NCFG] = {{1, false, "1 thread"}, {2, false, "2 threads, our tiles (default)"},
                    {2, true, "2 threads, OpenBLAS threading"}};
    // Configurations are interleaved and the best of `reps` rounds is kept, so a
    // burst of background load on the machine hits all of them alike.
    double best_f[NCFG], best_b[NCFG];
    for (int i = 0; i < NCFG; i++) best_f[i] = best_b[i] = 1e30;
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < NCFG; i++) {
            if (cfgs[i].threads > vv_n_cpus()) continue;
            double tf, tb;
            run_once(&m, cfgs[i].threads, cfgs[i].blas, &tf, &tb);
            if (tf + tb < best_f[i] + best_b[i]) best_f[i] = tf, best_b[i] = tb;
        }
    for (int i = 0; i < NCFG; i++) {
        if (cfgs[i].threads > vv_n_cpus()) continue;
        const double t = best_f[i] + best_b[i];
        printf("  %-32s fwd %7.1f ms  bwd %7.1f ms  %8.0f tokens/s  %6.1f GFLOP/s\n", cfgs[i].what,
               best_f[i] * 1e3, best_b[i] * 1e3, (double)m.N / t, fl / t * 1e-9);
    }
    return 0;
}
