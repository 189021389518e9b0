// test_ops.c - nn operations against direct float64 formulas: norms, RoPE
// (both layouts), activations, softmax, and attention (GEMM path vs loop path
// vs a naive reference, with GQA and causal masks); thread-count independence.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "nn/ops.h"
#include "nn/ops_simd.h"
#include "tcheck.h"

// Each SIMD softmax against the scalar reference (libm expf, double sum; itself
// checked against the formula in main): row lengths around the vector widths and attention sizes,
// score scales up to 40 (entries that underflow), masked entries, masked rows.
static void check_softmax_isa(void (*fn)(float *, int64_t), const char *name) {
    vv_rng r;
    vv_rng_seed(&r, 99);
    const int lens[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 64, 100, 600, 2053};
    const float scales[] = {1.0f, 10.0f, 40.0f};
    double worst = 0;
    float *a = malloc(2053 * sizeof(float)), *b = malloc(2053 * sizeof(float));
    for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++)
        for (int si = 0; si < 3; si++)
            for (int masked = 0; masked < 2; masked++) {
                const int n = lens[li];
                for (int i = 0; i < n; i++) a[i] = scales[si] * vv_rng_normal(&r);
                if (masked)
                    for (int i = 0; i < n; i += 3) a[i] = -INFINITY;
                if (masked && n == 1) a[0] = 0.5f; // keep one finite entry
                memcpy(b, a, (size_t)n * sizeof(float));
                vv_softmax_ref(a, n);
                fn(b, n);
                double sum = 0;
                for (int i = 0; i < n; i++) {
                    const double d = fabs((double)a[i] - b[i]);
                    if (d > 1e-37) worst = fmax(worst, d / fabs((double)a[i]));
                    CHECK(d <= 4e-6 * fabs((double)a[i]) + 1e-37); // exp ~2 ulp, float lane sums
                    if (masked && n > 1 && i % 3 == 0) CHECK(b[i] == 0.0f);
                    CHECK(b[i] >= 0.0f && isfinite(b[i]));
                    sum += b[i];
                }
                CHECK(fabs(sum - 1.0) < 1e-5);
            }
    float m[37];
    for (int i = 0; i < 37; i++) m[i] = -INFINITY;
    fn(m, 37);
    for (int i = 0; i < 37; i++) CHECK(m[i] == 0.0f);
    printf("softmax %s vs reference: worst relative difference %.2e\n", name, worst);
    free(a);
    free(b);
}


static void naive_attn(const float *q, const float *k, const float *v, float *out, int nq, int nk, int nh, int nkv,
                       int hd, const int32_t *len) {
    int ldq = nh * hd, ldk = nkv * hd;
    double *s = malloc((size_t)nk * sizeof(double));
    for (int i = 0; i < nq; i++)
        for (int h = 0; h < nh; h++) {
            int g = h / (nh / nkv), L = len ? len[i] : nk;
            double mx = -1e300, sum = 0;
            for (int j = 0; j < L; j++) {
                double d = 0;
                for (int t = 0; t < hd; t++) d += (double)q[i * ldq + h * hd + t] * k[j * ldk + g * hd + t];
                s[j] = d / sqrt((double)hd);
                mx = fmax(mx, s[j]);
            }
            for (int j = 0; j < L; j++) sum += (s[j] = exp(s[j] - mx));
            for (int t = 0; t < hd; t++) {
                double a = 0;
                for (int j = 0; j < L; j++) a += s[j] / sum * v[j * ldk + g * hd + t];
                out[i * ldq + h * hd + t] = L ? (float)a : 0.0f;
            }
        }
    free(s);
}

// Grouped attention blocks: the dispatched and the AVX-512 versions against the
// float64 formula (and the references), head sizes with and without a
// 16-float multiple (the fallback), 1..33 keys, rows with padding between them.
static void check_attn_group(const char *name,
                             void (*scores)(const float *, int64_t, int, const float *, int64_t, int, int, float, float *, int64_t),
                             void (*values)(const float *, int64_t, int, const float *, int64_t, int, int, float *, int64_t)) {
    vv_rng r;
    vv_rng_seed(&r, 314);
    const int hds[5] = {16, 32, 64, 128, 40}, ns[6] = {1, 5, 16, 17, 32, 33};
    const int g = 8;
    double worst_s = 0, worst_v = 0;
    for (int a = 0; a < 5; a++)
        for (int b = 0; b < 6; b++) {
            const int hd = hds[a], n = ns[b];
            const int64_t ldq = hd + 3, ldk = 2 * hd + 5, lds = n + 7, ldo = hd + 1;
            float *q = malloc(sizeof(float) * g * ldq), *k = malloc(sizeof(float) * n * ldk);
            float *v = malloc(sizeof(float) * n * ldk), *S = malloc(sizeof(float) * g * lds);
            float *P = malloc(sizeof(float) * g * lds), *o = malloc(sizeof(float) * g * ldo);
            for (int i = 0; i < g * ldq; i++) q[i] = vv_rng_normal(&r);
            for (int i = 0; i < n * ldk; i++) k[i] = vv_rng_normal(&r), v[i] = vv_rng_normal(&r);
            for (int i = 0; i < g * lds; i++) S[i] = 12345.0f, P[i] = vv_rng_uniform(&r);
            for (int i = 0; i < g * ldo; i++) o[i] = 0.5f;
            scores(q, ldq, g, k, ldk, n, hd, 0.125f, S, lds);
            values(P, lds, g, v, ldk, n, hd, o, ldo);
            for (int h = 0; h < g; h++) {
                for (int j = 0; j < n; j++) {
                    double d = 0, m = 0;
                    for (int i = 0; i < hd; i++) d += (double)q[h * ldq + i] * k[j * ldk + i], m += fabs((double)q[h * ldq + i] * k[j * ldk + i]);
                    const double err = fabs(S[h * lds + j] - 0.125 * d) / (0.125 * m + 1e-30);
                    worst_s = err > worst_s ? err : worst_s;
                }
                CHECKF(S[h * lds + n] == 12345.0f, "%s: scores wrote past n (hd %d, n %d)", name, hd, n);
                for (int i = 0; i < hd; i++) {
                    double d = 0.5, m = 0.5;
                    for (int j = 0; j < n; j++) d += (double)P[h * lds + j] * v[j * ldk + i], m += fabs((double)P[h * lds + j] * v[j * ldk + i]);
                    const double err = fabs(o[h * ldo + i] - d) / m;
                    worst_v = err > worst_v ? err : worst_v;
                }
                CHECKF(o[h * ldo + hd] == 0.5f, "%s: values wrote past hd (hd %d, n %d)", name, hd, n);
            }
            free(q), free(k), free(v), free(S), free(P), free(o);
        }
    CHECKF(worst_s < 1e-5 && worst_v < 1e-5, "%s: grouped attention off: scores %.2e, values %.2e (relative to |terms|)",
           name, worst_s, worst_v);
    printf("attention blocks %s vs float64: worst relative error scores %.2e, values %.2e\n", name, worst_s, worst_v);
}

typedef void (*prefix_fn)(const float *, int, int, float, const float *const *, const float *const *, int, int, int64_t,
                          float *, float *, float *);
// Shared-prefix attention against float64: nq query heads (tails of the
// 16-lane and value tiles), head sizes 32/64/128, blocks scattered in a cache
// with rows wider than the head (ldkv), and the log-sum-exp. Error relative to
// the sum of |terms| (outputs) or absolute (lse).
static void check_attn_prefix(const char *name, prefix_fn fn) {
    vv_rng r;
    vv_rng_seed(&r, 17);
    const int nqs[] = {1, 7, 16, 20, 48, 50, 129}, hds[] = {32, 64, 128}, bss[] = {8, 32};
    double worst_o = 0, worst_l = 0;
    for (int a = 0; a < 7; a++)
        for (int b = 0; b < 3; b++)
            for (int c = 0; c < 2; c++) {
                const int nq = nqs[a], hd = hds[b], bs = bss[c], n_blk = 3 + a % 3, ldkv = hd * 3 + 16;
                const int n_cache = n_blk + 2; // blocks used in reverse order, one skipped
                float *Q = malloc(sizeof(float) * nq * hd), *O = malloc(sizeof(float) * nq * hd), *lse = malloc(sizeof(float) * nq);
                float *K = malloc(sizeof(float) * n_cache * bs * ldkv), *V = malloc(sizeof(float) * n_cache * bs * ldkv);
                float *work = malloc(sizeof(float) * vv_attn_prefix_work(nq, hd, (int64_t)n_blk * bs));
                const float *kb[8], *vb[8];
                for (int i = 0; i < nq * hd; i++) Q[i] = vv_rng_normal(&r);
                for (int i = 0; i < n_cache * bs * ldkv; i++) { K[i] = vv_rng_normal(&r); V[i] = vv_rng_normal(&r); }
                for (int i = 0; i < n_blk; i++) { // head 1 of the row: offset hd
                    kb[i] = K + (size_t)(n_cache - 1 - i) * bs * ldkv + hd;
                    vb[i] = V + (size_t)(n_cache - 1 - i) * bs * ldkv + hd;
                }
                const float scale = 1.0f / sqrtf((float)hd);
                fn(Q, nq, hd, scale, kb, vb, n_blk, bs, ldkv, O, lse, work);
                const int L = n_blk * bs;
                double *p = malloc(sizeof(double) * L);
                for (int i = 0; i < nq; i++) {
                    double mx = -INFINITY, sum = 0;
                    for (int j = 0; j < L; j++) {
                        double d = 0;
                        for (int t = 0; t < hd; t++) d += (double)Q[i * hd + t] * kb[j / bs][(j % bs) * ldkv + t];
                        p[j] = d * scale;
                        mx = p[j] > mx ? p[j] : mx;
                    }
                    for (int j = 0; j < L; j++) sum += (p[j] = exp(p[j] - mx));
                    const double l = mx + log(sum);
                    worst_l = fmax(worst_l, fabs(lse[i] - l));
                    for (int t = 0; t < hd; t++) {
                        double o = 0, mag = 0;
                        for (int j = 0; j < L; j++) {
                            const double v = vb[j / bs][(j % bs) * ldkv + t];
                            o += p[j] * v;
                            mag += p[j] * fabs(v);
                        }
                        worst_o = fmax(worst_o, fabs(O[i * hd + t] - o / sum) / (mag / sum));
                    }
                }
                free(p), free(Q), free(O), free(lse), free(K), free(V), free(work);
            }
    CHECKF(worst_o < 1e-5 && worst_l < 1e-4, "%s: shared-prefix attention off: outputs %.2e (relative), lse %.2e", name,
           worst_o, worst_l);
    printf("shared-prefix attention %s vs float64: worst relative error outputs %.2e, lse %.2e\n", name, worst_o, worst_l);
}

// Bits of x, NaNs of any payload equal.
static bool same_bits(float a, float b) {
    uint32_t ua, ub;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    return ua == ub || (isnan(a) && isnan(b));
}

// visvm's expf (glibc's algorithm with FMA, ops.c) against the formula in
// float64 (within 1 ulp; libm's expf is not the judge, though on glibc 2.27+
// the two agree on every float: bench/expf_check.c), its SIMD versions and
// the activations built on it against the references bit for bit: every
// 4099th float (1.05 M inputs, all signs and exponents) plus the edges of the
// special cases.
static void check_expf(void) {
    static const float edges[] = {0.0f, -0.0f, 1.0f, -1.0f, 88.0f, -88.0f, 0x1.62e42ep6f, 0x1.62e430p6f,
                                  -0x1.9fe368p6f, -0x1.9fe366p6f, -0x1.9fe36ap6f, -0x1.9d1d9ep6f, -103.0f,
                                  -104.0f, 89.0f, 0x1p-149f, -0x1p-149f, 0x1p-30f, 3.4028235e38f, -3.4028235e38f,
                                  INFINITY, -INFINITY, NAN, -NAN, 0x1.04845ep+5f, -0x1.f8cbb2p+5f};
    const int ne = (int)(sizeof(edges) / sizeof(edges[0]));
    const int64_t n = (int64_t)(((1ull << 32) + 4098) / 4099) + ne;
    float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n);
    float *u = malloc(sizeof(float) * (size_t)n), *z = malloc(sizeof(float) * (size_t)n);
    int64_t k = 0;
    for (uint64_t b = 0; b < (1ull << 32); b += 4099) {
        const uint32_t w = (uint32_t)b;
        memcpy(&x[k++], &w, 4);
    }
    for (int i = 0; i < ne; i++) x[k++] = edges[i];
    CHECK(k == n);
    int64_t far = 0, worst_i = -1;
    for (int64_t i = 0; i < n; i++) {
        const float e = vv_expf_ref(x[i]);
        const double t = exp((double)x[i]);
        if (isnan(x[i])) { if (!isnan(e)) far++; continue; }
        // within one ulp of the float64 value (relative to the float spacing there)
        const double ulp = t >= 0x1p-126 ? ldexp(1.0, ilogb(t) - 23) : 0x1p-149;
        if (!(fabs(e - t) <= ulp) && !(isinf(e) && t > 3.4028235e38) && !(e == 0 && t < 0x1p-150)) {
            far++;
            worst_i = i;
        }
    }
    CHECKF(far == 0, "vv_expf_ref: %lld inputs more than 1 ulp from exp (e.g. x = %a)", (long long)far,
           worst_i >= 0 ? x[worst_i] : 0.0f);
    CHECK(vv_expf_ref(-INFINITY) == 0 && isinf(vv_expf_ref(INFINITY)) && vv_expf_ref(0) == 1);
    vv_rng r;
    vv_rng_seed(&r, 17);
    for (int64_t i = 0; i < n; i++) u[i] = vv_rng_normal(&r);
#if defined(VISVM_HAVE_X86)
    struct {
        const char *name;
        bool have;
        void (*exp)(float *, int64_t), (*silu)(float *, int64_t), (*gelu)(float *, int64_t);
        void (*swiglu)(float *, const float *, int64_t);
    } isa[2] = {{"avx2", vv_cpu()->avx2 && vv_cpu()->fma, vv_expf_avx2, vv_silu_avx2, vv_quick_gelu_avx2, vv_swiglu_avx2},
                {"avx512", vv_cpu()->avx512f, vv_expf_avx512, vv_silu_avx512, vv_quick_gelu_avx512, vv_swiglu_avx512}};
    for (int s = 0; s < 2; s++) {
        if (!isa[s].have) continue;
        int64_t bad[4] = {0};
        memcpy(y, x, sizeof(float) * (size_t)n);
        isa[s].exp(y, n);
        for (int64_t i = 0; i < n; i++) bad[0] += !same_bits(y[i], vv_expf_ref(x[i]));
        memcpy(y, x, sizeof(float) * (size_t)n), memcpy(z, x, sizeof(float) * (size_t)n);
        isa[s].silu(y, n), vv_silu_ref(z, n);
        for (int64_t i = 0; i < n; i++) bad[1] += !same_bits(y[i], z[i]);
        memcpy(y, x, sizeof(float) * (size_t)n), memcpy(z, x, sizeof(float) * (size_t)n);
        isa[s].gelu(y, n), vv_quick_gelu_ref(z, n);
        for (int64_t i = 0; i < n; i++) bad[2] += !same_bits(y[i], z[i]);
        memcpy(y, x, sizeof(float) * (size_t)n), memcpy(z, x, sizeof(float) * (size_t)n);
        isa[s].swiglu(y, u, n), vv_swiglu_ref(z, u, n);
        for (int64_t i = 0; i < n; i++) bad[3] += !same_bits(y[i], z[i]);
        CHECKF(!bad[0] && !bad[1] && !bad[2] && !bad[3], "%s: expf / silu / quick_gelu / swiglu differ from the "
               "references on %lld / %lld / %lld / %lld inputs", isa[s].name, (long long)bad[0], (long long)bad[1],
               (long long)bad[2], (long long)bad[3]);
        // lengths around the vector widths (tails), in place
        for (int len = 1; len <= 40; len++) {
            float a[40], b[40];
            for (int i = 0; i < len; i++) a[i] = b[i] = 4 * vv_rng_normal(&r);
            isa[s].swiglu(a, u, len), vv_swiglu_ref(b, u, len);
            CHECKF(!memcmp(a, b, sizeof(float) * (size_t)len), "%s swiglu, %d values", isa[s].name, len);
        }
    }
#endif
    free(x), free(y), free(u), free(z);
}

int main(void) {
    vv_rng r;
    vv_rng_seed(&r, 3);
    // rmsnorm / layernorm
    {
        float x[2 * 40], w[40], b[40], y[2 * 40];
        for (int i = 0; i < 80; i++) x[i] = vv_rng_normal(&r) * 3 + 1;
        for (int i = 0; i < 40; i++) { w[i] = vv_rng_normal(&r); b[i] = vv_rng_normal(&r); }
        vv_rmsnorm(x, w, y, 2, 40, 1e-5f);
        for (int row = 0; row < 2; row++) {
            double ss = 0;
            for (int i = 0; i < 40; i++) ss += (double)x[row * 40 + i] * x[row * 40 + i];
            double s = 1 / sqrt(ss / 40 + 1e-5);
            for (int i = 0; i < 40; i++) CHECK_NEAR(y[row * 40 + i], x[row * 40 + i] * s * w[i], 1e-5);
        }
        vv_layernorm(x, w, b, y, 2, 40, 1e-5f);
        for (int row = 0; row < 2; row++) {
            double m = 0, var = 0;
            for (int i = 0; i < 40; i++) m += x[row * 40 + i];
            m /= 40;
            for (int i = 0; i < 40; i++) var += (x[row * 40 + i] - m) * (x[row * 40 + i] - m);
            var /= 40;
            for (int i = 0; i < 40; i++) CHECK_NEAR(y[row * 40 + i], (x[row * 40 + i] - m) / sqrt(var + 1e-5) * w[i] + b[i], 1e-4);
        }
    }
    // activations at known points
    {
        float v[4] = {-1, 0, 1, 2.5f};
        float a[4];
        memcpy(a, v, sizeof v); vv_gelu_erf(a, 4);
        CHECK_NEAR(a[0], -0.15865525393145707, 1e-6); CHECK_NEAR(a[2], 0.8413447460685429, 1e-6);
        memcpy(a, v, sizeof v); vv_gelu_tanh(a, 4);
        CHECK_NEAR(a[0], -0.15880800939172324, 1e-6); CHECK_NEAR(a[3], 2.484915733910001, 1e-5);
        memcpy(a, v, sizeof v); vv_quick_gelu(a, 4);
        CHECK_NEAR(a[2], 1 / (1 + exp(-1.702)), 1e-6);
        memcpy(a, v, sizeof v); vv_silu(a, 4);
        CHECK_NEAR(a[3], 2.5 / (1 + exp(-2.5)), 1e-6);
    }
    // softmax, including masked entries and an all-masked row
    {
        float s[4] = {1, 2, -INFINITY, 3};
        vv_softmax(s, 4);
        double z = exp(1) + exp(2) + exp(3);
        CHECK_NEAR(s[0], exp(1) / z, 1e-6); CHECK(s[2] == 0); CHECK_NEAR(s[3], exp(3) / z, 1e-6);
        float m[2] = {-INFINITY, -INFINITY};
        vv_softmax(m, 2);
        CHECK(m[0] == 0 && m[1] == 0);
    }
    check_expf();
    check_softmax_isa(vv_softmax, "dispatched");
#if defined(VISVM_HAVE_X86)
    if (vv_cpu()->avx2 && vv_cpu()->fma) check_softmax_isa(vv_softmax_avx2, "avx2");
    if (vv_cpu()->avx512f) check_softmax_isa(vv_softmax_avx512, "avx512");
#endif
    check_attn_group("reference", vv_attn_scores_ref, vv_attn_values_ref);
    check_attn_group("dispatched", vv_attn_scores, vv_attn_values);
#if defined(VISVM_HAVE_X86)
    if (vv_cpu()->avx512f) check_attn_group("avx512", vv_attn_scores_avx512, vv_attn_values_avx512);
#endif
    check_attn_prefix("reference", vv_attn_prefix_ref);
    check_attn_prefix("dispatched", vv_attn_prefix);
#if defined(VISVM_HAVE_X86)
    if (vv_cpu()->avx512f) check_attn_prefix("avx512", vv_attn_prefix_avx512);
#endif
    // RoPE: adjacent pairs (ggml NORM) and rotate-half (NEOX), against the formula
    {
        enum { T = 3, NH = 2, HD = 8 };
        float x[T * NH * HD], y[T * NH * HD];
        int32_t pos[T] = {0, 5, 17};
        for (int i = 0; i < T * NH * HD; i++) x[i] = vv_rng_normal(&r);
        memcpy(y, x, sizeof x);
        vv_rope_norm(y, pos, T, NH, HD, HD, 10000.0f, 1.0f);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < HD; i += 2) {
                    double th = pos[t] * pow(10000.0, -(double)i / HD);
                    const float *a = x + (t * NH + h) * HD;
                    CHECK_NEAR(y[(t * NH + h) * HD + i], a[i] * cos(th) - a[i + 1] * sin(th), 1e-4);
                    CHECK_NEAR(y[(t * NH + h) * HD + i + 1], a[i] * sin(th) + a[i + 1] * cos(th), 1e-4);
                }
        memcpy(y, x, sizeof x);
        vv_rope_neox(y, pos, T, NH, HD, HD, 10000.0f, 1.0f);
        for (int t = 0; t < T; t++)
            for (int h = 0; h < NH; h++)
                for (int i = 0; i < HD / 2; i++) {
                    double th = pos[t] * pow(10000.0, -2.0 * i / HD);
                    const float *a = x + (t * NH + h) * HD;
                    CHECK_NEAR(y[(t * NH + h) * HD + i], a[i] * cos(th) - a[i + HD / 2] * sin(th), 1e-4);
                    CHECK_NEAR(y[(t * NH + h) * HD + i + HD / 2], a[i] * sin(th) + a[i + HD / 2] * cos(th), 1e-4);
                }
    }
    // attention: loop path (n_q < 8) and GEMM path (n_q >= 8, blocks of 64 query rows over the keys
    // the block's longest row sees: 150 rows = 3 blocks; 140 queries over 20 keys leave whole
    // blocks masked), causal and full, GQA, threads 1 vs 3
    {
        int cases[][4] = {{1, 7, 4, 2}, {5, 12, 4, 4}, {20, 20, 8, 2}, {33, 40, 4, 1}, {150, 150, 4, 2}, {140, 20, 4, 2}};
        vv_pool *p3 = vv_pool_create(3);
        vv_attn_scratch sc = {0};
        for (int c = 0; c < 6; c++) {
            int nq = cases[c][0], nk = cases[c][1], nh = cases[c][2], nkv = cases[c][3], hd = 16;
            float *q = malloc((size_t)nq * nh * hd * 4), *k = malloc((size_t)nk * nkv * hd * 4),
                  *v = malloc((size_t)nk * nkv * hd * 4), *o1 = malloc((size_t)nq * nh * hd * 4),
                  *o2 = malloc((size_t)nq * nh * hd * 4), *o3 = malloc((size_t)nq * nh * hd * 4);
            for (int i = 0; i < nq * nh * hd; i++) q[i] = vv_rng_normal(&r);
            for (int i = 0; i < nk * nkv * hd; i++) { k[i] = vv_rng_normal(&r); v[i] = vv_rng_normal(&r); }
            int32_t *len = malloc((size_t)nq * 4);
            for (int i = 0; i < nq; i++) len[i] = nk - nq + i + 1; // causal, keys end at the query
            for (int causal = 0; causal < 2; causal++) {
                const int32_t *L = causal ? len : NULL;
                naive_attn(q, k, v, o1, nq, nk, nh, nkv, hd, L);
                CHECK(vv_attention(NULL, q, nh * hd, k, v, nkv * hd, o2, nh * hd, nq, nk, nh, nkv, hd,
                                   1.0f / sqrtf((float)hd), L, &sc) == VISVM_OK);
                CHECK(vv_attention(p3, q, nh * hd, k, v, nkv * hd, o3, nh * hd, nq, nk, nh, nkv, hd,
                                   1.0f / sqrtf((float)hd), L, &sc) == VISVM_OK);
                double e2 = 0, e3 = 0;
                for (int i = 0; i < nq * nh * hd; i++) {
                    e2 = fmax(e2, fabs(o2[i] - o1[i]));
                    e3 = fmax(e3, fabs(o3[i] - o2[i]));
                }
                CHECKF(e2 < 1e-4, "case %d causal %d: err %g", c, causal, e2);
                CHECKF(e3 == 0, "case %d causal %d: thread count changed the result by %g", c, causal, e3);
            }
            CHECK(vv_attention(NULL, q, 1, k, v, 1, o1, 1, 1, 1, 3, 2, hd, 1, NULL, &sc) == VISVM_ERR_INVALID);
            free(q); free(k); free(v); free(o1); free(o2); free(o3); free(len);
        }
        vv_attn_scratch_free(&sc);
        vv_pool_free(p3);
    }
    return tc_result("test_ops");
}
