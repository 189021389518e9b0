// ops.h - f32 neural-network operations shared by the models (inference side):
// norms, activations, RoPE, softmax and attention. Rows are contiguous; shapes
// are given as [rows, cols].
#ifndef VV_OPS_H
#define VV_OPS_H

#include "../base/threadpool.h"

// y = x / sqrt(mean(x^2) + eps) * w, per row of [n, d] (w may be NULL). y may alias x.
void vv_rmsnorm(const float *x, const float *w, float *y, int64_t n, int64_t d, float eps);
// y = (x - mean) / sqrt(var + eps) * w + b, per row (w, b may be NULL). y may alias x.
void vv_layernorm(const float *x, const float *w, const float *b, float *y, int64_t n, int64_t d, float eps);

// Element-wise, in place on [n] values.
void vv_silu(float *x, int64_t n);
void vv_gelu_tanh(float *x, int64_t n);  // ggml_gelu: tanh approximation
void vv_gelu_erf(float *x, int64_t n);   // exact GELU (HF "gelu")
void vv_quick_gelu(float *x, int64_t n); // x * sigmoid(1.702 x)
void vv_add(float *y, const float *x, int64_t n);            // y += x
void vv_add_bias(float *y, const float *b, int64_t n, int64_t d); // y[i][j] += b[j] for [n, d]
void vv_swiglu(float *gate, const float *up, int64_t n);     // gate = silu(gate) * up
float vv_dot_f32(const float *a, const float *b, int64_t n);
void vv_axpy_f32(float *y, float a, const float *x, int64_t n); // y += a x
// One block of grouped-query attention (ops_simd.h: vv_attn_scores_ref /
// vv_attn_values_ref), the best ISA picked once.
void vv_attn_scores(const float *q, int64_t ldq, int g, const float *k, int64_t ldk, int n, int hd, float scale,
                    float *S, int64_t lds);
void vv_attn_values(const float *P, int64_t lds, int g, const float *v, int64_t ldk, int n, int hd, float *out,
                    int64_t ldo);

// C [M, N] = alpha A [M, K] . B (B [K, N], or B^T with B [N, K] when trans_b),
// row-major with leading dimensions; BLAS, one thread per call (callers run it
// from their own pool's workers).
// Shared-prefix attention of nq query heads over one KV head's cached blocks
// (ops_simd.h: vv_attn_prefix_ref), the best ISA picked once. _fast: whether
// a SIMD version takes this shape (else callers may prefer a BLAS path).
void vv_attn_prefix(const float *Q, int nq, int hd, float scale, const float *const *kb, const float *const *vb,
                    int n_blk, int bs, int64_t ldkv, float *O, float *lse, float *work);
bool vv_attn_prefix_fast(int hd, int bs);
size_t vv_attn_prefix_work(int nq, int hd, int64_t n_pos); // floats
void vv_gemm_f32(bool trans_b, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
                 float *C, int ldc);

// Softmax of one row in place; returns nothing. Entries equal to -INFINITY get 0.
void vv_softmax(float *x, int64_t n);

// RoPE, ggml NORM mode (llama.cpp "llama" architecture, GGUF files): within
// each head rotate adjacent pairs (2i, 2i+1) by pos * base^(-2i/n_rot) / scale.
// x: [n_tok, n_head * head_dim], pos: [n_tok].
void vv_rope_norm(float *x, const int32_t *pos, int64_t n_tok, int n_head, int head_dim, int n_rot, float base,
                  float freq_scale);
// RoPE, NEOX / HF "rotate half" mode: pairs (i, i + n_rot/2).
void vv_rope_neox(float *x, const int32_t *pos, int64_t n_tok, int n_head, int head_dim, int n_rot, float base,
                  float freq_scale);

// Dense multi-head attention with grouped-query heads.
//   q   [n_q, n_head * hd]        (row stride ldq)
//   k,v [n_k, n_head_kv * hd]     (row stride ldk)
//   out [n_q, n_head * hd]        (row stride ldo)
// Query row i sees keys j < kv_len[i] (causal masks pass kv_len[i] = offset + i + 1);
// kv_len == NULL means every key is visible. Query head h uses KV head h / (n_head / n_head_kv).
// Uses OpenBLAS GEMMs per head when n_q is large, plain loops otherwise;
// parallel over heads on the pool.
typedef struct vv_attn_scratch {
    float *buf;
    size_t size; // floats
} vv_attn_scratch;
// fn(x, n) (an elementwise activation) over the pool in contiguous parts:
// same result as one call, the split only spreads the work.
void vv_map_par(vv_pool *pool, void (*fn)(float *, int64_t), float *x, int64_t n);
void vv_swiglu_par(vv_pool *pool, float *gate, const float *up, int64_t n); // vv_swiglu, the same way
int vv_attention(vv_pool *pool, const float *q, int64_t ldq, const float *k, const float *v, int64_t ldk, float *out,
                 int64_t ldo, int64_t n_q, int64_t n_k, int n_head, int n_head_kv, int hd, float scale,
                 const int32_t *kv_len, vv_attn_scratch *scratch);
void vv_attn_scratch_free(vv_attn_scratch *s);

#endif
