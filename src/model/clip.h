// clip.h - CLIP ViT vision tower + LLaVA projector from mmproj GGUF files
// (architecture "clip", key names of llama.cpp's convert_image_encoder_to_gguf.py).
//
// Two modes (enum visvm_vision_mode):
//  - REFERENCE (default): the feature layer the checkpoint was trained with
//    (every stored layer — the converter already dropped the layers after
//    LLaVA's feature layer — or clip.vision.feature_layer when present);
//    projector GELU is exact (erf) as in PyTorch; LLaVA-1.6 features are
//    unpadded and get image_newline after every row, as LLaVA-NeXT does.
//  - LLAMACPP: llama.cpp's clip.cpp/llava.cpp of Feb 2025: block_count - 1
//    layers, tanh GELU, LLaVA-1.6 grid in raster order without unpad/newline.
#ifndef VV_CLIP_H
#define VV_CLIP_H

#include "../format/gguf.h"
#include "../tensor/matmul.h"
#include "../nn/ops.h"
#include "image.h"
#include "../text/vocab.h"

typedef struct vv_clip_layer {
    const vv_tensor *ln1_w, *ln1_b, *q_w, *q_b, *k_w, *k_b, *v_w, *v_b, *o_w, *o_b;
    const vv_tensor *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b; // fc1 = "ffn_down" (D -> n_ff)
} vv_clip_layer;

typedef struct vv_clip {
    vv_gguf *gguf;
    int mode;            // enum visvm_vision_mode
    // vision hyper-parameters
    int image_size, patch_size, n_patches_side, n_patches, n_pos;
    int n_embd, n_head, n_ff, n_layer;
    int n_layer_run;     // layers actually evaluated
    float eps;
    bool use_gelu;       // tower activation: GELU instead of quick-GELU
    bool has_class;      // class token present
    vv_preproc pre;
    char merge_type[32]; // "flat" or "spatial_unpad"
    // tensors
    const vv_tensor *patch_w; // [P, P, 3, D] -> viewed as [3*P*P, D]; with a stem [1, 1, C, D]
    // Optional convolutional stem (hybrid ViT, visvm's world CLIP): n_stem stages
    // of 3x3 conv (pad 1) + ReLU + 2x2 max pool on the HWC image, then the 1x1
    // patch embedding; patch_size = 2^n_stem. Keys clip.vision.stem_count
    // (and stem_width); tensors v.stem.N.weight ne [Cin, 3, 3, Cout], v.stem.N.bias.
    int n_stem;
    int stem_ch[5];      // stem_ch[0] = 3, stem_ch[s + 1] = output channels of stage s
    const vv_tensor *stem_w[4], *stem_b[4];
    const vv_tensor *patch_b, *class_embd, *pos_embd, *pre_ln_w, *pre_ln_b, *post_ln_w, *post_ln_b;
    vv_clip_layer *layers;
    // projector (type "mlp": mm.0 -> GELU -> mm.2)
    const vv_tensor *mm0_w, *mm0_b, *mm2_w, *mm2_b;
    const vv_tensor *image_newline; // [n_embd_out] (LLaVA-1.6)
    int n_embd_out;      // projector output width (= text model n_embd); 0 without a projector
    bool has_projector;  // clip.has_llava_projector
    // A full CLIP (clip.has_text_encoder, e.g. visvm's world reward model):
    // pooled class token -> v.post_ln -> visual_projection; causal text tower.
    bool has_text;
    const vv_tensor *vis_proj;  // visual_projection.weight, ne [n_embd, proj_dim]
    int proj_dim;
    bool text_mean_pool;        // clip.text.pooling = "mean": average of the tokens, else the last (EOS)
    bool mean_pool;             // clip.vision.pooling = "mean": average of all final tokens, else the class token
    bool max_pool;              // clip.vision.pooling = "max": per-feature maximum over all final tokens
    float logit_scale;          // clip.logit_scale (informative; rewards use the raw cosine)
    struct {
        int n_ctx, n_embd, n_head, n_ff, n_layer;
        float eps;
        const vv_tensor *tok, *pos, *post_w, *post_b, *proj;
        vv_clip_layer *layers;
    } text;
    struct vv_vocab *vocab;     // tokenizer of the text tower
} vv_clip;

int vv_clip_load(vv_gguf *g, int mode, vv_clip **out, vv_error *e); // takes ownership of g
int vv_clip_load_file(const char *path, int mode, vv_clip **out, vv_error *e);
void vv_clip_free(vv_clip *c);

// Scratch for encoding (reusable).
typedef struct vv_clip_work {
    float *buf;
    size_t size;
    vv_wbuf ws;
    vv_attn_scratch as;
} vv_clip_work;
void vv_clip_work_free(vv_clip_work *w);

// Encodes one preprocessed image [S, S, 3] (HWC, normalised) through tower +
// projector: out [n_patches, n_embd_out].
int vv_clip_encode(const vv_clip *c, vv_pool *pool, const float *img, float *out, vv_clip_work *w, vv_error *e);

// Full-CLIP features (has_text): projected, not normalised, [proj_dim] each.
// img is one preprocessed image [S, S, 3]; text is tokenized as [BOS] text [EOS]
// (truncated to the context).
int vv_clip_image_features(const vv_clip *c, vv_pool *pool, const float *img, float *out, vv_clip_work *w,
                           vv_error *e);
int vv_clip_text_features(const vv_clip *c, vv_pool *pool, const char *text, float *out, vv_clip_work *w, vv_error *e);
// Cosine similarity of two feature vectors.
float vv_cosine(const float *a, const float *b, int n);

// Number of image embedding rows produced for a preprocessed batch.
int vv_clip_n_image_tokens(const vv_clip *c, const vv_image_batch *b);
// Full image embedding as spliced into the text model: out [n_tokens, n_embd_out]
// (malloc'd). crop_embd (optional, malloc'd) receives the per-image projector
// outputs [b->n, n_patches, n_embd_out].
int vv_clip_embed(const vv_clip *c, vv_pool *pool, const vv_image_batch *b, float **out, int *n_tokens,
                  float **crop_embd, vv_error *e);

#endif
