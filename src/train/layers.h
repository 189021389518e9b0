// layers.h - training engine core: forward and backward of every layer used by
// the tiny CLIP / LLaVA / value models visvm trains on the CPU (llm.c style).
//
// Conventions (read these first)
// ------------------------------
// * f32, row-major, batch folded into rows: an activation "[N, D]" is N rows of
//   D contiguous floats (N = B * T for sequences; row b*T + t is token t of
//   sequence b). Every buffer is provided by the caller; the engine keeps no
//   hidden state between calls except the context's scratch memory.
// * Weights use PyTorch/GGUF layouts so trained tensors export directly: a
//   linear weight is W[out, in] row-major (= GGUF ne = [in, out]); the patch
//   kernel is [D][3][P][P] (= GGUF v.patch_embd ne = [P, P, 3, D]).
// * Each layer has a *_forward and a *_backward. forward writes its output
//   (=) and, where backward needs more than the inputs, saves it in caller
//   buffers named in the signature (e.g. LayerNorm mean/rstd, attention probs).
// * backward ACCUMULATES (+=) into every gradient it produces, input gradients
//   included, so residual branches and shared tensors just add up: zero the
//   gradient buffers (vt_params_zero_grad for parameters, memset for
//   activations) before a backward pass. Any gradient pointer may be NULL to
//   skip that computation (frozen weights, inputs that are data).
//   Exceptions, stated again at each function:
//     - RoPE works in place in both directions (it is an orthogonal map);
//     - loss functions WRITE (=) the gradient of their inputs (they are the
//       source of the backward pass; CE's dlogits may alias logits), but
//       accumulate parameter gradients (InfoNCE temperature).
// * Every function returns VISVM_OK or a negative VISVM_ERR_* status and never
//   aborts: bad shapes, out-of-range ids/targets/lengths and allocation
//   failures are reported. The first error is also kept in the context
//   (vt_ctx_status / vt_ctx_error) so a trainer may check once per step.
// * Threads: work is split into tasks whose shape depends only on the problem
//   size, never on the thread count, and no two tasks accumulate into the same
//   memory; so results are bit-identical run to run and for any thread count.
//   GEMMs are OpenBLAS sgemm calls on tiles of C (~256 x 512), one thread per
//   tile, with OpenBLAS itself set to 1 thread: on these 2 cores the tiling ran
//   a 4-layer transformer fwd+bwd 20-35% faster than letting OpenBLAS thread
//   each GEMM (bench/bench_train.c), and it keeps the determinism guarantee.
//   On AVX-512 CPUs that OpenBLAS 0.3.21 misdetects (Zen 4/5 -> "Haswell"),
//   OPENBLAS_CORETYPE=SkylakeX in the environment gives ~1.6x more GFLOP/s.
// * A context (and its scratch) is used by one thread at a time.
//
// Example: a pre-LN block's attention half, x -> x2 = x + Wo attn(LN(x))
// (bench/bench_train.c has a full stack):
//   forward:  vt_layernorm_forward(c, h, mu, rs, x, lnw, lnb, N, D, 1e-5f);
//             vt_linear_forward(c, qkv, h, Wqkv, bqkv, N, D, 3*D);      // fused q|k|v rows
//             vt_attention_forward(c, &ad, att, probs, qkv, qkv + D, qkv + 2*D); // ad.ldq = ldk = ldv = 3*D
//             vt_linear_forward(c, x2, att, Wo, bo, N, D, D);
//             vt_accumulate(c, x2, x, N*D);                               // residual
//   backward (dx2 given; dx, dh, datt, dqkv zeroed):
//             vt_accumulate(c, dx, dx2, N*D);                             // residual path
//             vt_linear_backward(c, datt, dWo, dbo, dx2, att, Wo, N, D, D);
//             vt_attention_backward(c, &ad, dqkv, dqkv + D, dqkv + 2*D, datt, probs, qkv, qkv + D, qkv + 2*D);
//             vt_linear_backward(c, dh, dWqkv, dbqkv, dqkv, h, Wqkv, N, D, 3*D);
//             vt_layernorm_backward(c, dx, dlnw, dlnb, dh, x, lnw, mu, rs, N, D);
#ifndef VT_LAYERS_H
#define VT_LAYERS_H

#include "../base/base.h"
#include "../base/threadpool.h"

// ---------------------------------------------------------------------------
// Context: thread pool + scratch + first error.
typedef struct vt_ctx vt_ctx;

// n_threads total including the caller (<= 0: all CPUs). Also sets OpenBLAS to
// one thread (process-wide; the inference code does the same).
int vt_ctx_create(int n_threads, vt_ctx **out, vv_error *e);
// Uses an existing pool (not owned; NULL = single thread).
int vt_ctx_create_with_pool(vv_pool *pool, vt_ctx **out, vv_error *e);
void vt_ctx_free(vt_ctx *ctx); // NULL ok
int vt_ctx_threads(const vt_ctx *ctx);
int vt_ctx_status(const vt_ctx *ctx);      // first error code since the last clear (VISVM_OK if none)
const char *vt_ctx_error(const vt_ctx *ctx); // its message ("" if none)
void vt_ctx_clear_error(vt_ctx *ctx);

// ---------------------------------------------------------------------------
// GEMM on the pool: C[M,N] = alpha op(A) op(B) + beta C, row-major, op = ^T if
// ta/tb. Deterministic tiling of C (see above). Exposed for model code (tied
// LM heads, custom products).
int vt_matmul(vt_ctx *ctx, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
              int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

// ---------------------------------------------------------------------------
// Embedding. ids[N] in [0, V) (VISVM_ERR_RANGE otherwise).
//   forward:  out[N, D] = wte[ids[i], :]
//   backward: dwte[ids[i], :] += dout[i, :]   (scatter-add, duplicates summed in row order)
int vt_embedding_forward(vt_ctx *ctx, float *out, const int32_t *ids, const float *wte, int64_t N, int64_t V,
                         int64_t D);
int vt_embedding_backward(vt_ctx *ctx, float *dwte, const float *dout, const int32_t *ids, int64_t N, int64_t V,
                          int64_t D);

// Broadcast add (learned positional embeddings, class token bias, ...):
//   forward:  y[b, :] = x[b, :] + t[:]   for b < B; y, x: [B, M], t: [M]. y may alias x.
//   backward: dx[b, :] += dy[b, :];  dt[:] += sum_b dy[b, :]
// (Positional table pos[T, D] over a [B*T, D] batch: M = T * D.)
int vt_bcast_add_forward(vt_ctx *ctx, float *y, const float *x, const float *t, int64_t B, int64_t M);
int vt_bcast_add_backward(vt_ctx *ctx, float *dx, float *dt, const float *dy, int64_t B, int64_t M);

// ---------------------------------------------------------------------------
// Linear: y[N, out] = x[N, in] W[out, in]^T + b[out] (b may be NULL).
//   backward: dx[N, in] += dy W;  dW[out, in] += dy^T x;  db[out] += sum_rows dy
int vt_linear_forward(vt_ctx *ctx, float *y, const float *x, const float *W, const float *b, int64_t N, int64_t in,
                      int64_t out);
int vt_linear_backward(vt_ctx *ctx, float *dx, float *dW, float *db, const float *dy, const float *x, const float *W,
                       int64_t N, int64_t in, int64_t out);

// Patch embedding (ViT): image [B, S, S, 3] HWC f32 -> patches of P x P, grid
// G = S / P (S % P == 0), rows ordered b, gy, gx: y[B*G*G, D].
//   cols[B*G*G, 3*P*P] (saved for backward) holds each patch in kernel order
//   (c, py, px); W[D][3][P][P] (= [D, 3*P*P]); b[D] or NULL.
//   backward: dW += dy^T cols; db += sum dy; dimg[B,S,S,3] += (dy W) scattered back (dimg may be NULL).
int vt_patch_embed_forward(vt_ctx *ctx, float *y, float *cols, const float *img, const float *W, const float *b,
                           int64_t B, int64_t S, int64_t P, int64_t D);
int vt_patch_embed_backward(vt_ctx *ctx, float *dimg, float *dW, float *db, const float *dy, const float *cols,
                            const float *W, int64_t B, int64_t S, int64_t P, int64_t D);

// Convolutional stem (hybrid ViT, Dosovitskiy et al. 2021 sec. 3.1): HWC maps.
// 3x3 convolution, stride 1, zero padding 1: x[B, H, W, Cin] -> y[B, H, W, Cout].
//   W[Cout][3][3][Cin] (= [Cout, 9*Cin], row order ky, kx, cin; PyTorch's
//   [Cout, Cin, 3, 3] permuted), b[Cout] or NULL; cols[B*H*W, 9*Cin] is kept
//   for backward.
//   backward: dW += dy^T cols; db += sum dy; dx += (dy W) gathered back (dx may be NULL).
int vt_conv3x3_forward(vt_ctx *ctx, float *y, float *cols, const float *x, const float *W, const float *b, int64_t B,
                       int64_t H, int64_t Wd, int64_t Cin, int64_t Cout);
int vt_conv3x3_backward(vt_ctx *ctx, float *dx, float *dW, float *db, const float *dy, const float *cols,
                        const float *W, int64_t B, int64_t H, int64_t Wd, int64_t Cin, int64_t Cout);
// 2x2 max pooling, stride 2 (H, Wd even): x[B, H, Wd, C] -> y[B, H/2, Wd/2, C];
// arg[B*H/2*Wd/2*C] keeps the winner (0..3, first maximum on ties) for backward.
//   backward: dx[winner] += dy.
int vt_maxpool2_forward(vt_ctx *ctx, float *y, uint8_t *arg, const float *x, int64_t B, int64_t H, int64_t Wd,
                        int64_t C);
int vt_maxpool2_backward(vt_ctx *ctx, float *dx, const float *dy, const uint8_t *arg, int64_t B, int64_t H,
                         int64_t Wd, int64_t C);

// Batch normalisation (Ioffe & Szegedy 2015) per channel of x[N, C] (N = B*H*W
// pixels of an HWC map), training mode: batch mean and biased variance,
// y = (x - mean) * rstd * g + b (b may be NULL); mean[C], var[C], rstd[C] are
// written (the caller keeps running statistics from mean/var; rstd is kept for
// backward). Sums in double over fixed row blocks: deterministic for any thread count.
//   backward: dx += g rstd (dy - mean(dy) - xhat mean(dy xhat)); dg += sum dy xhat; db += sum dy
//   (dx, dg, db may be NULL).
// Inference uses the running statistics instead (the same as folding them into
// the preceding convolution, which is what the exported GGUF holds).
int vt_batchnorm_forward(vt_ctx *ctx, float *y, float *mean, float *var, float *rstd, const float *x, const float *g,
                         const float *b, int64_t N, int64_t C, float eps);
int vt_batchnorm_infer(vt_ctx *ctx, float *y, const float *x, const float *g, const float *b, const float *run_mean,
                       const float *run_var, int64_t N, int64_t C, float eps);
int vt_batchnorm_backward(vt_ctx *ctx, float *dx, float *dg, float *db, const float *dy, const float *x,
                          const float *g, const float *mean, const float *rstd, int64_t N, int64_t C);

// ---------------------------------------------------------------------------
// LayerNorm per row of x[N, D]: y = (x - mean) * rstd * w + b, rstd = 1/sqrt(var + eps)
// (biased variance, as PyTorch). w, b may be NULL (no affine). Saves mean[N], rstd[N].
//   backward: dx += ...; dw += sum_rows dy * xhat; db += sum_rows dy
int vt_layernorm_forward(vt_ctx *ctx, float *y, float *mean, float *rstd, const float *x, const float *w,
                         const float *b, int64_t N, int64_t D, float eps);
int vt_layernorm_backward(vt_ctx *ctx, float *dx, float *dw, float *db, const float *dy, const float *x,
                          const float *w, const float *mean, const float *rstd, int64_t N, int64_t D);

// RMSNorm per row: y = x * rstd * w, rstd = 1/sqrt(mean(x^2) + eps); w may be NULL. Saves rstd[N].
int vt_rmsnorm_forward(vt_ctx *ctx, float *y, float *rstd, const float *x, const float *w, int64_t N, int64_t D,
                       float eps);
int vt_rmsnorm_backward(vt_ctx *ctx, float *dx, float *dw, const float *dy, const float *x, const float *w,
                        const float *rstd, int64_t N, int64_t D);

// ---------------------------------------------------------------------------
// Element-wise activations on n values: y = f(x) (y may alias x only if the
// caller does not need x for backward: backward reads x).
//   backward: dx += dy * f'(x)
typedef enum vt_act {
    VT_ACT_GELU_TANH = 0, // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))  (ggml gelu)
    VT_ACT_GELU_ERF = 1,  // 0.5 x (1 + erf(x / sqrt 2))  (exact; HF "gelu")
    VT_ACT_QUICK_GELU = 2,// x sigmoid(1.702 x)  (OpenAI CLIP)
    VT_ACT_SILU = 3,      // x sigmoid(x)
    VT_ACT_RELU = 4       // max(x, 0)
} vt_act;
int vt_act_forward(vt_ctx *ctx, vt_act act, float *y, const float *x, int64_t n);
int vt_act_backward(vt_ctx *ctx, vt_act act, float *dx, const float *dy, const float *x, int64_t n);

// SwiGLU: h[N, F] = silu(gate) * up. gate and up rows have stride ld (ld >= F),
// so a fused [N, 2F] gate|up GEMM output is used as gate = buf, up = buf + F, ld = 2F.
//   backward: dgate += dh * up * silu'(gate);  dup += dh * silu(gate)  (same stride ld)
int vt_swiglu_forward(vt_ctx *ctx, float *h, const float *gate, const float *up, int64_t N, int64_t F, int64_t ld);
int vt_swiglu_backward(vt_ctx *ctx, float *dgate, float *dup, const float *dh, const float *gate, const float *up,
                       int64_t N, int64_t F, int64_t ld);

// Residual add: y[n] = a + b (y may alias a or b);  backward: vt_accumulate(da, dy) and (db, dy).
int vt_add_forward(vt_ctx *ctx, float *y, const float *a, const float *b, int64_t n);
// dst[n] += src[n]: the backward of an add / residual branch / copy.
int vt_accumulate(vt_ctx *ctx, float *dst, const float *src, int64_t n);

// ---------------------------------------------------------------------------
// RoPE, ggml NORM mode (llama.cpp "llama", same angles as vv_rope_norm): within
// each head, pairs (2i, 2i+1) for 2i < n_rot rotate by theta = pos * freq_scale
// * base^(-2i/n_rot). x: [N, n_head * hd] rows with stride ld (>= n_head * hd), pos[N].
// IN PLACE both ways: forward rotates x; backward rotates the gradient back
// (d <- R^T d), turning dL/d(rotated) into dL/d(input).
int vt_rope_forward(vt_ctx *ctx, float *x, int64_t ld, const int32_t *pos, int64_t N, int n_head, int hd, int n_rot,
                    float base, float freq_scale);
int vt_rope_backward(vt_ctx *ctx, float *d, int64_t ld, const int32_t *pos, int64_t N, int n_head, int hd, int n_rot,
                     float base, float freq_scale);

// ---------------------------------------------------------------------------
// Multi-head attention over B sequences of T rows (N = B * T).
//   q [N, n_head * hd] (row stride ldq), k [N, n_kv * hd] (ldk), v [N, n_kv * hd] (ldv),
//   out [N, n_head * hd] (ldo). Query head h uses KV head h / (n_head / n_kv).
//   Scores scale 1/sqrt(hd). lens[B] (or NULL = all T): only rows/keys t < lens[b]
//   of sequence b are valid (right padding); padded query rows get out = 0 and
//   padded rows get no gradient, so padding never influences valid rows.
//   causal: query t sees keys <= t (computed in row blocks of 64, skipping most
//   of the masked triangle).
//   probs[B, n_head, T, T]: softmax probabilities saved for backward (0 where
//   masked); 4 B*n_head*T^2 bytes per layer, the largest saved activation for long T.
// Strides let q/k/v be views into one fused QKV GEMM output; the gradients
// dq/dk/dv use the same strides (all three required, accumulated +=).
typedef struct vt_attn_dims {
    int64_t B, T;
    int n_head, n_kv, hd;
    bool causal;
    const int32_t *lens;          // [B] or NULL
    int64_t ldq, ldk, ldv, ldo;   // 0 = dense (n_head*hd, n_kv*hd, n_kv*hd, n_head*hd)
} vt_attn_dims;
int vt_attention_forward(vt_ctx *ctx, const vt_attn_dims *d, float *out, float *probs, const float *q, const float *k,
                         const float *v);
int vt_attention_backward(vt_ctx *ctx, const vt_attn_dims *d, float *dq, float *dk, float *dv, const float *dout,
                          const float *probs, const float *q, const float *k, const float *v);

// ---------------------------------------------------------------------------
// Pooling for value heads and text towers. x: [B*T, D]; lens[B] (NULL = all T).
// Mean over the valid tokens: y[b] = mean_{t < lens[b]} x[b*T + t] (0 if lens[b] == 0).
int vt_mean_pool_forward(vt_ctx *ctx, float *y, const float *x, const int32_t *lens, int64_t B, int64_t T,
                         int64_t D);
int vt_mean_pool_backward(vt_ctx *ctx, float *dx, const float *dy, const int32_t *lens, int64_t B, int64_t T,
                          int64_t D);
// Max over all T tokens per feature (the CLIP image embedding's "max" pooling):
// y[b, d] = max_t x[b*T + t, d]; arg[B*D] keeps the winning t (first on ties).
//   backward: dx[b*T + arg, d] += dy[b, d].
int vt_max_pool_forward(vt_ctx *ctx, float *y, int32_t *arg, const float *x, int64_t B, int64_t T, int64_t D);
int vt_max_pool_backward(vt_ctx *ctx, float *dx, const float *dy, const int32_t *arg, int64_t B, int64_t T, int64_t D);
// Row gather: y[M, D] = x[idx[m], :], idx in [0, N);  backward dx[idx[m]] += dy[m].
// The last valid token of each sequence is idx[b] = b*T + lens[b] - 1 (vt_last_token_index).
int vt_gather_rows_forward(vt_ctx *ctx, float *y, const float *x, const int32_t *idx, int64_t M, int64_t N,
                           int64_t D);
int vt_gather_rows_backward(vt_ctx *ctx, float *dx, const float *dy, const int32_t *idx, int64_t M, int64_t N,
                            int64_t D);
// idx[b] = b*T + lens[b] - 1 (lens NULL: T - 1); lens[b] must be in [1, T].
int vt_last_token_index(vt_ctx *ctx, int32_t *idx, const int32_t *lens, int64_t B, int64_t T);

// ---------------------------------------------------------------------------
// Losses. They compute the loss and, when the gradient pointer is non-NULL,
// WRITE dloss/dinput * grad_scale (grad_scale = dL_total/dloss, usually 1).

#define VT_IGNORE_INDEX (-1)

// Softmax cross-entropy. logits[N, V]; targets[N] in [0, V) or VT_IGNORE_INDEX;
// weights[N] (NULL = 1). loss = sum_i w_i CE_i / sum_i w_i over counted rows
// (0 when nothing counts). row_loss[N] (optional) gets CE_i (0 when ignored).
// dlogits[N, V] (optional, may alias logits) = grad_scale * w_i / sum w * (softmax - onehot).
int vt_cross_entropy(vt_ctx *ctx, const float *logits, const int32_t *targets, const float *weights, int64_t N,
                     int64_t V, float *loss, float *row_loss, float *dlogits, float grad_scale);

// CLIP symmetric InfoNCE. img[B, D], txt[Bt, D] with Bt >= B: text i < B is
// the positive of image i, texts B..Bt-1 are extra (hard) negatives.
// Both are L2-normalised inside; s = exp(min(logit_scale, ln 100)); L = s u t^T [B, Bt].
//   loss_i2t = mean_i CE(L[i, 0:Bt], i)      (softmax over all Bt texts)
//   loss_t2i = mean_j CE(L[0:B, j], j), j<B  (softmax over the B images)
//   loss = (loss_i2t + loss_t2i) / 2
// dimg/dtxt: written (=) when non-NULL; dlogit_scale: accumulated (+=), zero
// contribution while logit_scale > ln 100 (clamped, as torch.clamp).
typedef struct vt_infonce_result {
    float loss, loss_i2t, loss_t2i;
    float acc_i2t, acc_t2i; // top-1 retrieval accuracy (argmax, first index on ties)
    float scale;            // s actually used
} vt_infonce_result;
int vt_infonce(vt_ctx *ctx, const float *img, const float *txt, int64_t B, int64_t Bt, int64_t D, float logit_scale,
               vt_infonce_result *res, float *dimg, float *dtxt, float *dlogit_scale, float grad_scale);

// Mean squared error: loss = sum_i w_i (pred_i - target_i)^2 / sum_i w_i (weights NULL = plain mean).
// dpred[n] written when non-NULL.
int vt_mse(vt_ctx *ctx, const float *pred, const float *target, const float *weights, int64_t n, float *loss,
           float *dpred, float grad_scale);

// Group-centred squared error: with e = pred - target and m_g the mean of e over
// group g (consecutive runs of equal group[i]), loss = sum_i (e_i - m_g)^2 / n.
// Only differences within a group count (a shift shared by a group is free):
// the within-image ranking term of the value model. dpred (when not NULL) is
// ADDED to: 2 (e_i - m_g) / n * grad_scale. pred, target, group [n].
int vt_group_centred_mse(vt_ctx *ctx, const float *pred, const float *target, const int *group, int64_t n,
                         float *loss, float *dpred, float grad_scale);

#endif
