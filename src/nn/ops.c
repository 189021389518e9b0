// ops.c - f32 inference operations. Hot loops are compiled for several ISAs
// (target_clones) so the baseline build still uses AVX2/AVX-512 where present.
#include "ops.h"

#include "../base/cpu.h"
#include "ops_simd.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__) && \
    !defined(__SANITIZE_THREAD__) // sanitizers instrument the ifunc resolvers, which run before their runtime
#define VV_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define VV_CLONES
#endif

VV_CLONES float vv_dot_f32(const float *a, const float *b, int64_t n) {
    // 8 partial sums let the compiler vectorise without -ffast-math
    float s[8] = {0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += a[i + j] * b[i + j];
    float r = ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

VV_CLONES void vv_axpy_f32(float *y, float a, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += a * x[i];
}

VV_CLONES void vv_add(float *y, const float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] += x[i];
}

void vv_add_bias(float *y, const float *b, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; i++) vv_add(y + i * d, b, d);
}

void vv_rmsnorm(const float *x, const float *w, float *y, int64_t n, int64_t d, float eps) {
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        double ss = 0; // as ggml: float squares summed in double (ggml_float)
        for (int64_t i = 0; i < d; i++) ss += (double)(xr[i] * xr[i]);
        const float scale = 1.0f / sqrtf((float)(ss / d) + eps);
        if (w)
            for (int64_t i = 0; i < d; i++) yr[i] = xr[i] * scale * w[i];
        else
            for (int64_t i = 0; i < d; i++) yr[i] = xr[i] * scale;
    }
}

void vv_layernorm(const float *x, const float *w, const float *b, float *y, int64_t n, int64_t d, float eps) {
    for (int64_t r = 0; r < n; r++) {
        const float *xr = x + r * d;
        float *yr = y + r * d;
        double sum = 0;
        for (int64_t i = 0; i < d; i++) sum += xr[i];
        const float mean = (float)(sum / d);
        double var = 0;
        for (int64_t i = 0; i < d; i++) {
            float c = xr[i] - mean;
            var += (double)c * c;
        }
        const float scale = 1.0f / sqrtf((float)(var / d) + eps);
        for (int64_t i = 0; i < d; i++) {
            float v = (xr[i] - mean) * scale;
            if (w) v *= w[i];
            if (b) v += b[i];
            yr[i] = v;
        }
    }
}

// expf as glibc (2.27 and later) computes it on FMA hardware (the __expf_fma
// build of sysdeps/ieee754/flt-32/e_expf.c): x * 32 / ln 2 = k + r, 2^(k/32)
// from a 32-entry table, 2^(r/32) by a cubic, all in double. It gives this
// machine's libm expf bit for bit on every float (bench/expf_check.c), so the
// SIMD versions can match it exactly and our results no longer depend on the
// C library (glibc's non-FMA build differs on 2 of the 2^32 inputs).
const uint64_t vv_expf_tab[32] = {
    0x3ff0000000000000, 0x3fefd9b0d3158574, 0x3fefb5586cf9890f, 0x3fef9301d0125b51, 0x3fef72b83c7d517b,
    0x3fef54873168b9aa, 0x3fef387a6e756238, 0x3fef1e9df51fdee1, 0x3fef06fe0a31b715, 0x3feef1a7373aa9cb,
    0x3feedea64c123422, 0x3feece086061892d, 0x3feebfdad5362a27, 0x3feeb42b569d4f82, 0x3feeab07dd485429,
    0x3feea47eb03a5585, 0x3feea09e667f3bcd, 0x3fee9f75e8ec5f74, 0x3feea11473eb0187, 0x3feea589994cce13,
    0x3feeace5422aa0db, 0x3feeb737b0cdc5e5, 0x3feec49182a3f090, 0x3feed503b23e255d, 0x3feee89f995ad3ad,
    0x3feeff76f2fb5e47, 0x3fef199bdd85529c, 0x3fef3720dcef9069, 0x3fef5818dcfba487, 0x3fef7c97337b9b5f,
    0x3fefa4afa2a490da, 0x3fefd0765b6e4540};

float vv_expf_ref(float x) {
    uint32_t ux;
    memcpy(&ux, &x, sizeof(ux));
    if (((ux >> 20) & 0x7ff) >= 0x42b) { // |x| >= 88 or NaN
        if (ux == 0xff800000u) return 0.0f;
        if (((ux >> 20) & 0x7ff) >= 0x7f8) return x + x; // NaN, +inf
        if (x > 0x1.62e42ep6f) return INFINITY;         // overflow
        if (x < -0x1.9fe368p6f) return 0.0f;            // underflow
    }
    const double xd = x;
    const double kd0 = fma(VV_EXPF_INVLN2N, xd, VV_EXPF_SHIFT); // round(x * 32 / ln 2), in the low bits
    uint64_t ki;
    memcpy(&ki, &kd0, sizeof(ki));
    const double kd = kd0 - VV_EXPF_SHIFT;
    const double r = fma(VV_EXPF_INVLN2N, xd, -kd);
    const uint64_t t = vv_expf_tab[ki % 32] + (ki << 47);
    double s;
    memcpy(&s, &t, sizeof(s));
    const double z = fma(VV_EXPF_C0, r, VV_EXPF_C1), r2 = r * r;
    double y = fma(VV_EXPF_C2, r, 1.0);
    y = fma(z, r2, y);
    return (float)(y * s);
}

void vv_silu_ref(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + vv_expf_ref(-x[i]));
}

void vv_swiglu_ref(float *gate, const float *up, int64_t n) {
    for (int64_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + vv_expf_ref(-gate[i])) * up[i];
}

void vv_quick_gelu_ref(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + vv_expf_ref(-1.702f * x[i]));
}

// The activations' ISA, chosen once; every level gives the references' bits.
typedef struct {
    void (*silu)(float *, int64_t);
    void (*swiglu)(float *, const float *, int64_t);
    void (*quick_gelu)(float *, int64_t);
} act_fns;
static act_fns g_act;
static pthread_once_t g_act_once = PTHREAD_ONCE_INIT;
static void act_pick(void) {
    g_act = (act_fns){vv_silu_ref, vv_swiglu_ref, vv_quick_gelu_ref};
#if defined(VISVM_HAVE_X86)
    const vv_cpu_features *f = vv_cpu();
    if (f->avx512f) g_act = (act_fns){vv_silu_avx512, vv_swiglu_avx512, vv_quick_gelu_avx512};
    else if (f->avx2 && f->fma) g_act = (act_fns){vv_silu_avx2, vv_swiglu_avx2, vv_quick_gelu_avx2};
#endif
}

void vv_silu(float *x, int64_t n) {
    pthread_once(&g_act_once, act_pick);
    g_act.silu(x, n);
}

void vv_swiglu(float *gate, const float *up, int64_t n) {
    pthread_once(&g_act_once, act_pick);
    g_act.swiglu(gate, up, n);
}

void vv_gelu_tanh(float *x, int64_t n) {
    const float c = 0.7978845608028654f; // sqrt(2/pi)
    for (int64_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(c * v * (1.0f + 0.044715f * v * v)));
    }
}

void vv_gelu_erf(float *x, int64_t n) {
    for (int64_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
}

void vv_quick_gelu(float *x, int64_t n) {
    pthread_once(&g_act_once, act_pick);
    g_act.quick_gelu(x, n);
}

// Scalar reference: libm expf, sum in double.
void vv_softmax_ref(float *x, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY) { // fully masked row: define the output as zeros
        memset(x, 0, (size_t)n * sizeof(float));
        return;
    }
    double sum = 0;
    for (int64_t i = 0; i < n; i++) {
        float e = x[i] == -INFINITY ? 0.0f : expf(x[i] - mx);
        x[i] = e;
        sum += e;
    }
    const float inv = (float)(1.0 / sum);
    for (int64_t i = 0; i < n; i++) x[i] *= inv;
}

// Attention rows run through here millions of times per caption: the ISA is
// chosen once (libm's scalar expf was ~15% of a value-model scoring step).
typedef void (*softmax_fn)(float *, int64_t);
static softmax_fn g_softmax;
static pthread_once_t g_softmax_once = PTHREAD_ONCE_INIT;
static void softmax_pick(void) {
    g_softmax = vv_softmax_ref;
#if defined(VISVM_HAVE_X86)
    const vv_cpu_features *f = vv_cpu();
    if (f->avx512f) g_softmax = vv_softmax_avx512;
    else if (f->avx2 && f->fma) g_softmax = vv_softmax_avx2;
#endif
}

void vv_softmax(float *x, int64_t n) {
    pthread_once(&g_softmax_once, softmax_pick);
    g_softmax(x, n);
}

void vv_attn_scores_ref(const float *q, int64_t ldq, int g, const float *k, int64_t ldk, int n, int hd, float scale,
                        float *S, int64_t lds) {
    for (int h = 0; h < g; h++)
        for (int j = 0; j < n; j++) S[(int64_t)h * lds + j] = scale * vv_dot_f32(q + (int64_t)h * ldq, k + (int64_t)j * ldk, hd);
}

void vv_attn_values_ref(const float *P, int64_t lds, int g, const float *v, int64_t ldk, int n, int hd, float *out,
                        int64_t ldo) {
    for (int h = 0; h < g; h++)
        for (int j = 0; j < n; j++) vv_axpy_f32(out + (int64_t)h * ldo, P[(int64_t)h * lds + j], v + (int64_t)j * ldk, hd);
}

typedef void (*attn_scores_fn)(const float *, int64_t, int, const float *, int64_t, int, int, float, float *, int64_t);
typedef void (*attn_values_fn)(const float *, int64_t, int, const float *, int64_t, int, int, float *, int64_t);
static attn_scores_fn g_attn_scores;
static attn_values_fn g_attn_values;
static pthread_once_t g_attn_once = PTHREAD_ONCE_INIT;
static void attn_pick(void) {
    g_attn_scores = vv_attn_scores_ref;
    g_attn_values = vv_attn_values_ref;
#if defined(VISVM_HAVE_X86)
    if (vv_cpu()->avx512f) {
        g_attn_scores = vv_attn_scores_avx512;
        g_attn_values = vv_attn_values_avx512;
    }
#endif
}

void vv_attn_scores(const float *q, int64_t ldq, int g, const float *k, int64_t ldk, int n, int hd, float scale,
                    float *S, int64_t lds) {
    pthread_once(&g_attn_once, attn_pick);
    g_attn_scores(q, ldq, g, k, ldk, n, hd, scale, S, lds);
}

void vv_attn_values(const float *P, int64_t lds, int g, const float *v, int64_t ldk, int n, int hd, float *out,
                    int64_t ldo) {
    pthread_once(&g_attn_once, attn_pick);
    g_attn_values(P, lds, g, v, ldk, n, hd, out, ldo);
}

size_t vv_attn_prefix_work(int nq, int hd, int64_t n_pos) {
    const size_t nqp = (size_t)(nq + 15) / 16 * 16;
    return nqp * ((size_t)hd + (size_t)n_pos) + 16;
}

// Scalar reference: scores and softmax per query as vv_softmax_ref does (libm
// expf, double sums), then the weighted sum of V in double.
void vv_attn_prefix_ref(const float *Q, int nq, int hd, float scale, const float *const *kb, const float *const *vb,
                        int n_blk, int bs, int64_t ldkv, float *O, float *lse, float *work) {
    const int64_t L = (int64_t)n_blk * bs;
    float *S = work; // [L]
    for (int i = 0; i < nq; i++) {
        const float *q = Q + (size_t)i * hd;
        float mx = -INFINITY;
        for (int64_t j = 0; j < L; j++) {
            S[j] = scale * vv_dot_f32(q, kb[j / bs] + (j % bs) * ldkv, hd);
            mx = S[j] > mx ? S[j] : mx;
        }
        double sum = 0;
        for (int64_t j = 0; j < L; j++) sum += (S[j] = expf(S[j] - mx));
        lse[i] = mx + (float)log(sum);
        for (int d = 0; d < hd; d++) {
            double acc = 0;
            for (int64_t j = 0; j < L; j++) acc += (double)S[j] * vb[j / bs][(j % bs) * ldkv + d];
            O[(size_t)i * hd + d] = (float)(acc / sum);
        }
    }
}

typedef void (*attn_prefix_fn)(const float *, int, int, float, const float *const *, const float *const *, int, int,
                               int64_t, float *, float *, float *);
static attn_prefix_fn g_attn_prefix;
static pthread_once_t g_prefix_once = PTHREAD_ONCE_INIT;
static void prefix_pick(void) {
    g_attn_prefix = vv_attn_prefix_ref;
#if defined(VISVM_HAVE_X86)
    if (vv_cpu()->avx512f) g_attn_prefix = vv_attn_prefix_avx512;
#endif
}

bool vv_attn_prefix_fast(int hd, int bs) {
    pthread_once(&g_prefix_once, prefix_pick);
    return g_attn_prefix != vv_attn_prefix_ref && (hd == 32 || hd == 64 || hd == 128) && bs % 8 == 0;
}

void vv_attn_prefix(const float *Q, int nq, int hd, float scale, const float *const *kb, const float *const *vb,
                    int n_blk, int bs, int64_t ldkv, float *O, float *lse, float *work) {
    pthread_once(&g_prefix_once, prefix_pick);
    g_attn_prefix(Q, nq, hd, scale, kb, vb, n_blk, bs, ldkv, O, lse, work);
}

// theta_i = pos * base^(-2i/n_rot), computed as ggml does: theta *= theta_scale per pair.
// cos / sin of theta_i = pos * freq_scale * theta_scale^i, i < npairs, in the
// order ggml multiplies them out. Once per token: every head uses the same
// angles (computing them per head made RoPE 1-2 ms of a 6-row decode step).
static void rope_angles(int32_t pos, float freq_scale, float theta_scale, int npairs, float *c, float *s) {
    float theta = (float)pos * freq_scale;
    for (int i = 0; i < npairs; i++) {
        c[i] = cosf(theta);
        s[i] = sinf(theta);
        theta *= theta_scale;
    }
}

void vv_rope_norm(float *x, const int32_t *pos, int64_t n_tok, int n_head, int head_dim, int n_rot, float base,
                  float freq_scale) {
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    const int np = n_rot / 2;
    float c[np > 0 ? np : 1], sn[np > 0 ? np : 1];
    for (int64_t t = 0; t < n_tok; t++) {
        rope_angles(pos[t], freq_scale, theta_scale, np, c, sn);
        for (int h = 0; h < n_head; h++) {
            float *v = x + (t * n_head + h) * (int64_t)head_dim;
            for (int i = 0; i < np; i++) {
                const float x0 = v[2 * i], x1 = v[2 * i + 1];
                v[2 * i] = x0 * c[i] - x1 * sn[i];
                v[2 * i + 1] = x0 * sn[i] + x1 * c[i];
            }
        }
    }
}

void vv_rope_neox(float *x, const int32_t *pos, int64_t n_tok, int n_head, int head_dim, int n_rot, float base,
                  float freq_scale) {
    const float theta_scale = powf(base, -2.0f / (float)n_rot);
    const int half = n_rot / 2;
    float c[half > 0 ? half : 1], sn[half > 0 ? half : 1];
    for (int64_t t = 0; t < n_tok; t++) {
        rope_angles(pos[t], freq_scale, theta_scale, half, c, sn);
        for (int h = 0; h < n_head; h++) {
            float *v = x + (t * n_head + h) * (int64_t)head_dim;
            for (int i = 0; i < half; i++) {
                const float x0 = v[i], x1 = v[i + half];
                v[i] = x0 * c[i] - x1 * sn[i];
                v[i + half] = x0 * sn[i] + x1 * c[i];
            }
        }
    }
}

// Elementwise work over the pool in contiguous parts (x, and y for SwiGLU's up).
#define MAP_PAR_MIN 16384 // fewer elements (a decode row): not worth a parallel section
typedef struct { void (*fn)(float *, int64_t); float *x; const float *y; int64_t n; } map_task;
static void map_worker(void *ctx, int ith, int nth) {
    const map_task *t = (const map_task *)ctx;
    int64_t i0, i1;
    vv_split(t->n, ith, nth, &i0, &i1);
    if (i1 <= i0) return;
    if (t->fn) t->fn(t->x + i0, i1 - i0);
    else vv_swiglu(t->x + i0, t->y + i0, i1 - i0);
}
static void map_run(vv_pool *pool, map_task *t) {
    if (!pool || t->n < MAP_PAR_MIN) map_worker(t, 0, 1);
    else vv_pool_run(pool, map_worker, t);
}
void vv_map_par(vv_pool *pool, void (*fn)(float *, int64_t), float *x, int64_t n) {
    map_task t = {fn, x, NULL, n};
    map_run(pool, &t);
}
void vv_swiglu_par(vv_pool *pool, float *gate, const float *up, int64_t n) {
    map_task t = {NULL, gate, up, n};
    map_run(pool, &t);
}

// ---------------------------------------------------------------------------
// attention

static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;
static void blas_init(void) {
    // Our own pool parallelises over heads; OpenBLAS threads would oversubscribe.
    openblas_set_num_threads(1);
}

void vv_gemm_f32(bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                 float *C, int ldc) {
    pthread_once(&g_blas_once, blas_init);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, 0.0f,
                C, ldc);
}

typedef struct {
    const float *q, *k, *v;
    float *out;
    int64_t ldq, ldk, ldo, n_q, n_k;
    int n_head, n_head_kv, hd;
    float scale;
    const int32_t *kv_len;
    float *scratch;       // per thread: n_q * n_k (gemm path) or n_k (loop path)
    size_t per_thread;
    bool gemm;
} attn_task;

static inline int64_t row_len(const attn_task *a, int64_t i) {
    int64_t L = a->kv_len ? a->kv_len[i] : a->n_k;
    return L < 0 ? 0 : (L > a->n_k ? a->n_k : L);
}

#define ATTN_QB 64 // query rows per block of the GEMM path
static void attn_worker(void *ctx, int ith, int nth) {
    attn_task *a = (attn_task *)ctx;
    float *S = a->scratch + (size_t)ith * a->per_thread;
    const int group = a->n_head / a->n_head_kv;
    if (a->gemm) {
        for (int h = ith; h < a->n_head; h += nth) {
            const int g = h / group;
            const float *qh = a->q + (int64_t)h * a->hd;
            const float *kh = a->k + (int64_t)g * a->hd;
            const float *vh = a->v + (int64_t)g * a->hd;
            // blocks of ATTN_QB query rows, each over the keys its longest row sees: a causal
            // prefill skips the masked triangle (half its products)
            for (int64_t i0 = 0; i0 < a->n_q; i0 += ATTN_QB) {
                const int64_t nb = VV_MIN(ATTN_QB, a->n_q - i0);
                int64_t Lb = 0;
                for (int64_t i = i0; i < i0 + nb; i++) Lb = VV_MAX(Lb, row_len(a, i));
                float *ob = a->out + i0 * a->ldo + (int64_t)h * a->hd;
                if (Lb == 0) { // fully masked rows: zeros, as vv_softmax gives them
                    for (int64_t i = 0; i < nb; i++) memset(ob + i * a->ldo, 0, (size_t)a->hd * sizeof(float));
                    continue;
                }
                // S[nb, Lb] = scale * Q_h K_g^T
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)Lb, a->hd, a->scale,
                            qh + i0 * a->ldq, (int)a->ldq, kh, (int)a->ldk, 0.0f, S, (int)Lb);
                for (int64_t i = 0; i < nb; i++) {
                    float *row = S + i * Lb;
                    const int64_t L = row_len(a, i0 + i);
                    for (int64_t j = L; j < Lb; j++) row[j] = -INFINITY;
                    vv_softmax(row, Lb);
                }
                // out_h[nb, hd] = S V_g
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)nb, a->hd, (int)Lb, 1.0f, S, (int)Lb,
                            vh, (int)a->ldk, 0.0f, ob, (int)a->ldo);
            }
        }
    } else {
        const int64_t n_items = a->n_q * a->n_head;
        for (int64_t it = ith; it < n_items; it += nth) {
            const int64_t i = it / a->n_head;
            const int h = (int)(it % a->n_head);
            const int g = h / group;
            const float *qh = a->q + i * a->ldq + (int64_t)h * a->hd;
            const int64_t L = row_len(a, i);
            for (int64_t j = 0; j < L; j++) S[j] = a->scale * vv_dot_f32(qh, a->k + j * a->ldk + (int64_t)g * a->hd, a->hd);
            vv_softmax(S, L);
            float *o = a->out + i * a->ldo + (int64_t)h * a->hd;
            memset(o, 0, (size_t)a->hd * sizeof(float));
            for (int64_t j = 0; j < L; j++) vv_axpy_f32(o, S[j], a->v + j * a->ldk + (int64_t)g * a->hd, a->hd);
        }
    }
}

int vv_attention(vv_pool *pool, const float *q, int64_t ldq, const float *k, const float *v, int64_t ldk, float *out,
                 int64_t ldo, int64_t n_q, int64_t n_k, int n_head, int n_head_kv, int hd, float scale,
                 const int32_t *kv_len, vv_attn_scratch *scratch) {
    if (n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv != 0 || hd <= 0) return VISVM_ERR_INVALID;
    if (n_q == 0) return VISVM_OK;
    pthread_once(&g_blas_once, blas_init);
    const int nth = vv_pool_size(pool);
    attn_task a = {q, k, v, out, ldq, ldk, ldo, n_q, n_k, n_head, n_head_kv, hd, scale, kv_len, NULL, 0, false};
    a.gemm = n_q >= 8 && n_k > 0 && n_q * n_k < (int64_t)1 << 31;
    a.per_thread = a.gemm ? (size_t)(VV_MIN(n_q, ATTN_QB) * n_k) : (size_t)(n_k > 0 ? n_k : 1);
    a.per_thread = (a.per_thread + 15) & ~(size_t)15;
    size_t need = a.per_thread * (size_t)nth;
    if (scratch->size < need) {
        vv_afree(scratch->buf);
        scratch->buf = vv_aalloc(need * sizeof(float));
        scratch->size = scratch->buf ? need : 0;
        if (!scratch->buf) return VISVM_ERR_NOMEM;
    }
    a.scratch = scratch->buf;
    vv_pool_run(pool, attn_worker, &a);
    return VISVM_OK;
}

void vv_attn_scratch_free(vv_attn_scratch *s) {
    if (!s) return;
    vv_afree(s->buf);
    s->buf = NULL;
    s->size = 0;
}
