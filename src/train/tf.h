// tf.h - a pre-norm transformer stack for training (forward + backward),
// shared by the three towers visvm trains: the CLIP ViT (LayerNorm, biases,
// quick-GELU MLP, bidirectional), the CLIP text tower (same, causal) and the
// Llama decoder (RMSNorm, no biases, RoPE, GQA, SwiGLU, causal).
//
// Parameters are registered under their GGUF inference names (prefix "v.blk.%d."
// with the llama.cpp mmproj names, "t.blk.%d." for the text tower, "blk.%d."
// for Llama), so a trained parameter set exports tensor by tensor. q, k and v
// weights (and biases) are registered back to back, which makes them one
// [q_dim + 2 kv_dim, d] matrix in the arena: a single fused GEMM in training.
#ifndef VT_TF_H
#define VT_TF_H

#include "optim.h"

typedef struct vt_tf_cfg {
    int n_layer, d, n_head, n_kv, d_ff;
    bool rms;        // RMSNorm without bias (Llama) instead of LayerNorm with bias
    bool bias;       // linear layers have biases (CLIP)
    bool swiglu;     // gate/up/down SwiGLU MLP (Llama) instead of fc1 -> act -> fc2
    vt_act act;      // activation of the fc1/fc2 MLP
    bool causal;
    bool rope;       // adjacent-pair RoPE on q and k (Llama GGUF layout)
    float rope_base;
    float eps;
    int style;       // enum vt_tf_style: tensor naming
} vt_tf_cfg;

enum vt_tf_style { VT_TF_VISION = 0, VT_TF_TEXT = 1, VT_TF_LLAMA = 2 };

typedef struct vt_tf_layer {
    int ln1_w, ln1_b, wq, wk, wv, bq, bk, bv, wo, bo, ln2_w, ln2_b;
    int w1, b1, w2, b2, w3; // fc1 (or gate), fc1 bias, fc2 (or down), fc2 bias, up (SwiGLU)
} vt_tf_layer;

typedef struct vt_tf {
    vt_tf_cfg cfg;
    vt_tf_layer *L;
    // activations for up to max_rows rows [B*T] and max_bt2 = B*T*T entries
    int64_t max_rows, max_B, max_T;
    float **x;          // [n_layer + 1][rows, d]: inputs of each layer, x[n_layer] = output
    float **h1, **h2;   // norm outputs [rows, d]
    float **mu1, **rs1, **mu2, **rs2; // [rows]
    float **qkv;        // [rows, q_dim + 2 kv_dim]
    float **probs;      // [B, n_head, T, T]
    float **att;        // [rows, q_dim]
    float **xm;         // after attention residual [rows, d]
    float **f1, **f2;   // MLP: fc1 out / act out, or gate|up fused [rows, 2 d_ff] and swiglu out [rows, d_ff]
    // backward scratch
    float *dx, *dh, *dqkv, *datt, *df1, *df2, *dxm;
    int32_t *pos;       // [rows] positions for RoPE (t within the sequence)
} vt_tf;

// Registers the parameters of n_layer blocks (names from cfg.style).
int vt_tf_register(vt_tf *tf, const vt_tf_cfg *cfg, vt_params *ps, vv_error *e);
// Initialises registered weights: linear N(0, std), output projections
// N(0, std / sqrt(2 n_layer)), norms 1, biases 0.
void vt_tf_init(vt_tf *tf, vt_params *ps, float std, vv_rng *rng);
// Allocates activations for batches of up to max_B sequences of max_T rows.
int vt_tf_alloc(vt_tf *tf, int64_t max_B, int64_t max_T, vv_error *e);
void vt_tf_free(vt_tf *tf);

// Forward of B sequences of T rows: x_in [B*T, d] -> returns the output
// buffer tf->x[n_layer] [B*T, d]. lens[B] (NULL = all T) marks valid rows.
// n_run <= n_layer blocks are evaluated (-1: all).
int vt_tf_forward(vt_ctx *c, vt_tf *tf, vt_params *ps, const float *x_in, int64_t B, int64_t T, const int32_t *lens,
                  int n_run, float **out);
// Backward: dout [B*T, d] (gradient of the stack output, consumed) -> dx_in
// accumulated (+=) when non-NULL; parameter gradients accumulated.
int vt_tf_backward(vt_ctx *c, vt_tf *tf, vt_params *ps, float *dout, float *dx_in, int64_t B, int64_t T,
                   const int32_t *lens, int n_run);

// Number of floats of the activation buffers (for memory reports).
size_t vt_tf_act_floats(const vt_tf *tf);

#endif
