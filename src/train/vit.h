// vit.h - trainable CLIP ViT tower: patch embedding, class token, learned
// positions, pre-LayerNorm and a transformer stack (llama.cpp mmproj names
// "v.*"). Shared by the tiny CLIP (pooled class token) and the LLaVA towers
// (patch tokens into the projector).
#ifndef VT_VIT_H
#define VT_VIT_H

#include <stdbool.h>

#include "../format/gguf.h"
#include "tf.h"

typedef struct vt_vit_cfg {
    int image_size, patch, width, layers, heads, ff;
    // Optional convolutional stem (hybrid ViT): `stem` stages of 3x3 conv + ReLU +
    // 2x2 max pool, channels stem_ch << stage, then a 1x1 "patch" embedding to
    // width; patch must be 1 << stem (the stem's total stride). 0: plain patchify.
    int stem, stem_ch;
    // BatchNorm after each stem convolution (training: batch statistics; eval and
    // export: running statistics, folded into the convolution by vt_vit_export_view).
    bool stem_bn;
} vt_vit_cfg;

#define VT_VIT_MAX_STEM 4

// The tower's shape from a clip-architecture GGUF (clip.vision.* keys, the stem
// keys when present; path names the file in errors). BatchNorm arrives folded
// in such files, so stem_bn is false. Sizes are range-checked here; patch/heads
// divisibility and the stem stride by vt_vit_register.
int vt_vit_cfg_from_gguf(const vv_gguf *g, const char *path, vt_vit_cfg *cfg, vv_error *e);

typedef struct vt_vit {
    vt_vit_cfg cfg;
    int G, T;   // patch grid side, sequence length 1 + G^2
    vt_tf tf;
    int patch_w, cls, pos, pre_w, pre_b;
    int stem_w[VT_VIT_MAX_STEM], stem_b[VT_VIT_MAX_STEM];
    int bn_g[VT_VIT_MAX_STEM], bn_b[VT_VIT_MAX_STEM], bn_rm[VT_VIT_MAX_STEM], bn_rv[VT_VIT_MAX_STEM]; // stem_bn
    float *s_n[VT_VIT_MAX_STEM], *s_mu[VT_VIT_MAX_STEM], *s_var[VT_VIT_MAX_STEM], *s_rs[VT_VIT_MAX_STEM]; // BN out, stats
    bool eval; // BatchNorm from running statistics, which stay unchanged (validation, export checks)
    float *s_cols[VT_VIT_MAX_STEM], *s_z[VT_VIT_MAX_STEM], *s_a[VT_VIT_MAX_STEM], *s_p[VT_VIT_MAX_STEM]; // per stage
    uint8_t *s_arg[VT_VIT_MAX_STEM];
    float *s_dz, *s_da, *s_dp[2]; // backward scratch (largest stage), ping-pong pooled gradients
    int max_B;
    float *cols, *pe, *x0, *xp, *mu, *rs; // activations
    float *d_xp, *d_x0, *d_pe;            // backward scratch
    float *out;                           // tf output [B*T, D] (points into tf)
} vt_vit;

// Registers parameters (names v.*) in ps; call vt_vit_alloc after vt_params_alloc.
int vt_vit_register(vt_vit *v, const vt_vit_cfg *cfg, vt_params *ps, vv_error *e);
void vt_vit_init(vt_vit *v, vt_params *ps, vv_rng *rng);
int vt_vit_alloc(vt_vit *v, int max_B, vv_error *e);
void vt_vit_free(vt_vit *v);
// A parameter list for export: the stem's BatchNorm folded into its convolutions
// (W' = W a, b' = (b - mean) a + beta, a = gamma / sqrt(var + eps)) and its
// tensors left out, so the GGUF holds a plain hybrid tower. view->items and
// *folded are allocated (free both with vt_vit_export_view_free); without
// stem_bn the view is a copy of ps.
int vt_vit_export_view(const vt_vit *v, const vt_params *ps, vt_params *view, float **folded, vv_error *e);
void vt_vit_export_view_free(vt_params *view, float *folded);
// img [B, S, S, 3] -> v->out [B*T, D] (row b*T is the class token).
int vt_vit_forward(vt_ctx *c, vt_vit *v, vt_params *ps, const float *img, int B);
// d_out [B*T, D] (consumed) -> parameter gradients.
int vt_vit_backward(vt_ctx *c, vt_vit *v, vt_params *ps, float *d_out, int B);

#endif
