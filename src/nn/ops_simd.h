// ops_simd.h - SIMD versions of hot f32 operations (ops_avx2.c, ops_avx512.c),
// same contract as their scalar references in ops.c; tests compare them.
#ifndef VV_OPS_SIMD_H
#define VV_OPS_SIMD_H

#include <stdint.h>

// Softmax of one row in place (entries equal to -INFINITY get 0; an all -INFINITY row gives zeros).
// exp is a Cephes-style polynomial (about 2 ulp on the range softmax uses), sums in float lanes.
void vv_softmax_ref(float *x, int64_t n);
#if defined(VISVM_HAVE_X86)
void vv_softmax_avx2(float *x, int64_t n);
void vv_softmax_avx512(float *x, int64_t n);
#endif

// expf exactly as glibc computes it with FMA (ops.c), and the activations
// built on it: x / (1 + exp(-x)), gate / (1 + exp(-gate)) * up, x / (1 +
// exp(-1.702 x)). The SIMD versions give the references' bits on every input.
extern const uint64_t vv_expf_tab[32]; // 2^(i/32) as bits, minus i << 47
#define VV_EXPF_INVLN2N 0x1.71547652b82fep+5
#define VV_EXPF_SHIFT 0x1.8p+52
#define VV_EXPF_C0 0x1.c6af84b912394p-20
#define VV_EXPF_C1 0x1.ebfce50fac4f3p-13
#define VV_EXPF_C2 0x1.62e42ff0c52d6p-6
float vv_expf_ref(float x);
void vv_silu_ref(float *x, int64_t n);
void vv_swiglu_ref(float *gate, const float *up, int64_t n);
void vv_quick_gelu_ref(float *x, int64_t n);
#if defined(VISVM_HAVE_X86)
void vv_silu_avx2(float *x, int64_t n);
void vv_swiglu_avx2(float *gate, const float *up, int64_t n);
void vv_quick_gelu_avx2(float *x, int64_t n);
void vv_silu_avx512(float *x, int64_t n);
void vv_swiglu_avx512(float *gate, const float *up, int64_t n);
void vv_quick_gelu_avx512(float *x, int64_t n);
void vv_expf_avx2(float *x, int64_t n); // x = exp(x), for the tests
void vv_expf_avx512(float *x, int64_t n);
#endif

// Grouped-query attention over one block of cached positions (llama.c's
// paged decode path): g query heads q [g, hd] (rows ldq apart) that share one
// KV head; n key / value rows ldk apart.
//   scores: S[h * lds + j] = scale * dot(q_h, k_j)
//   values: out_h += sum_j P[h * lds + j] v_j      (out rows ldo apart)
// The SIMD versions read each K/V row once per head group from L1, keep
// partial sums in registers and use FMA, so they round differently from the
// references (tests bound the difference).
void vv_attn_scores_ref(const float *q, int64_t ldq, int g, const float *k, int64_t ldk, int n, int hd, float scale,
                        float *S, int64_t lds);
void vv_attn_values_ref(const float *P, int64_t lds, int g, const float *v, int64_t ldk, int n, int hd, float *out,
                        int64_t ldo);
#if defined(VISVM_HAVE_X86)
// hd a multiple of 16 (else they call the references)
void vv_attn_scores_avx512(const float *q, int64_t ldq, int g, const float *k, int64_t ldk, int n, int hd, float scale,
                           float *S, int64_t lds);
void vv_attn_values_avx512(const float *P, int64_t lds, int g, const float *v, int64_t ldk, int n, int hd, float *out,
                           int64_t ldo);
#endif

// Attention of nq query heads Q [nq, hd] (row-major) over one KV head's
// cached positions, given as n_blk blocks of bs rows ldkv floats apart
// (kb[i], vb[i]: the head's first K / V row of block i): O [nq, hd] =
// softmax(scale * Q K^T) V, and lse[i] = log sum_j exp(scale * q_i . k_j).
// work: vv_attn_prefix_work(nq, hd, n_blk * bs) floats.
void vv_attn_prefix_ref(const float *Q, int nq, int hd, float scale, const float *const *kb, const float *const *vb,
                        int n_blk, int bs, int64_t ldkv, float *O, float *lse, float *work);
#if defined(VISVM_HAVE_X86)
// hd 32, 64 or 128 and bs a multiple of 8 (else the reference)
void vv_attn_prefix_avx512(const float *Q, int nq, int hd, float scale, const float *const *kb, const float *const *vb,
                           int n_blk, int bs, int64_t ldkv, float *O, float *lse, float *work);
#endif

#endif
