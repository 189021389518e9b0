// clip_model.h - trainable CLIP (ViT image tower + causal text tower) and its
// GGUF export. Also used (frozen) to give the value model CLIP's eyes.
//
// Image: patches of P x P -> [class token, patches] + positions -> pre-LN ->
// blocks -> post-LN of the class token -> visual projection (no bias).
// Text: token + position embeddings -> causal blocks -> final LN of the last
// token (EOS) -> text projection. Similarity: cosine (L2-normalised
// projections), trained with symmetric InfoNCE and a learned logit scale.
//
// GGUF (architecture "clip", llama.cpp mmproj key names for the vision side):
//   clip.has_vision_encoder = clip.has_text_encoder = true, has_llava_projector = false
//   clip.vision.{image_size, patch_size, embedding_length, feed_forward_length,
//     attention.head_count, attention.layer_norm_epsilon, block_count,
//     projection_dim, image_mean, image_std}, clip.use_gelu = false (quick-GELU)
//   clip.text.{context_length, embedding_length, feed_forward_length,
//     attention.head_count, attention.layer_norm_epsilon, block_count, projection_dim}
//   clip.logit_scale (f32), tokenizer.ggml.* (the BPE vocabulary)
//   tensors v.patch_embd.weight [P,P,3,D], v.class_embd, v.position_embd.weight,
//     v.pre_ln.*, v.blk.N.*, v.post_ln.*, visual_projection.weight [D, E],
//     t.token_embd.weight, t.position_embd.weight, t.blk.N.*, t.post_ln.*,
//     text_projection.weight [Dt, E]
#ifndef VT_CLIP_MODEL_H
#define VT_CLIP_MODEL_H

#include "clip_train.h"
#include "vit.h"

typedef struct vt_clip_model {
    vt_clip_hp hp;
    vt_params ps;
    vt_vit vis;           // image tower (v.*)
    vt_tf txt;            // text tower (t.blk.*)
    int T_img;            // image sequence length (1 + G^2)
    int V;                // vocabulary size
    vv_vocab *vocab;
    vv_bpe_vocab bpe;     // for export
    // parameter indices
    int post_w, post_b, vproj;
    int tok, tpos, tpost_w, tpost_b, tproj, logit_scale;
    int aux_w, aux_b, n_aux;  // auxiliary object head (training only, not exported); -1 if off
    float *d_clsn_extra;      // [B, D] extra gradient at the pooled, normalised image feature (NULL: none)
    int dense_w, dense_b;     // per-patch class head (training only, not exported); -1 if off
    float *d_xo_extra;        // [B * T_img, D] extra gradient at the final vision tokens (NULL: none)
    // activations (sized for max_B images / max_Bt texts)
    int max_B, max_Bt;
    float *cls_rows, *clsn, *post_mu, *post_rs, *img_emb;
    float *tx, *trows, *trowsn, *tpost_mu, *tpost_rs, *txt_emb;
    int32_t *tidx, *tids, *tlens;
    int32_t *pool_arg; // [B, D] argmax of max pooling
    int t_T;              // text length of the current batch
    // gradients of activations
    float *d_img_emb, *d_txt_emb, *d_clsn, *d_cls, *d_xo;
    float *d_trowsn, *d_trows, *d_to, *d_tx;
} vt_clip_model;

// Registers and allocates parameters (random init from hp.seed) for a vocabulary.
int vt_clip_model_init(vt_clip_model *m, const vt_clip_hp *hp, const vv_bpe_vocab *bpe, int max_B, int max_Bt,
                       vv_error *e);
void vt_clip_model_free(vt_clip_model *m);

// Image tower: img [B, S, S, 3] (normalised) -> m->img_emb [B, E] (not normalised).
int vt_clip_image_forward(vt_ctx *c, vt_clip_model *m, const float *img, int B);
// Text tower: ids/lens of Bt sequences padded to T -> m->txt_emb [Bt, E].
int vt_clip_text_forward(vt_ctx *c, vt_clip_model *m, const int32_t *ids, const int32_t *lens, int Bt, int T);
// Backward from m->d_img_emb / m->d_txt_emb (parameter gradients accumulate).
int vt_clip_image_backward(vt_ctx *c, vt_clip_model *m, int B);
int vt_clip_text_backward(vt_ctx *c, vt_clip_model *m, int Bt, int T);

// Per-patch class head (hp.dense_weight > 0) on the final vision tokens m->vis.out
// [B T, D] after vt_clip_image_forward: labels [B T] (VT_IGNORE_INDEX skips a row,
// e.g. the class token), z scratch [B T, n_classes + 1]. Writes the mean cross-entropy
// to *loss, accumulates the head's gradients, writes d_tok [B T, D] = weight * dCE/dtokens
// and points m->d_xo_extra at it for vt_clip_image_backward.
int vt_clip_dense_step(vt_ctx *c, vt_clip_model *m, const int32_t *labels, int B, float weight, float *z,
                       float *d_tok, float *loss);

// Token ids of texts: [BOS] text [EOS] each, padded to the longest; returns T.
int vt_clip_tokenize(const vt_clip_model *m, const char *const *texts, int n, int32_t *ids, int32_t *lens, int *T,
                     vv_error *e);

// Writes the inference GGUF (weights F16 for matrices, F32 for vectors).
int vt_clip_export(const vt_clip_model *m, const char *path, vv_error *e);
// Adds every parameter except those named in skip as a tensor (n_dims >= 2:
// F16, else F32); converted buffers are appended to *keep (free each after the
// write).
int vt_export_params(vv_gguf_writer *w, const vt_params *ps, const char *const *skip, int n_skip, void ***keep,
                     int *n_keep, vv_error *e);
// Adds the tokenizer keys of a BPE vocabulary to a GGUF writer.
int vt_gguf_set_tokenizer(vv_gguf_writer *w, const vv_bpe_vocab *b);

#endif
