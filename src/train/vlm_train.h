// vlm_train.h - the tiny LLaVA: a CLIP ViT tower + MLP projector (mm.0, GELU,
// mm.2) + Llama decoder, trained on captioning the synthetic world with the
// LLaVA-1.5 chat template and the 9 detailed-description prompts. Exported as
// a llama-architecture GGUF plus an mmproj GGUF, exactly the formats the
// engine (and llama.cpp) reads.
//
// Its eyes are deliberately weaker than the reward CLIP's: the tower has its
// own initialisation and objective (captioning, end to end) and sees a
// downsampled copy of the image (image_size < the world's 64 px; the engine's
// clip.cpp preprocessing does the bilinear resize), which is where its
// hallucinations come from (world-notes.md, "different eyes").
#ifndef VT_VLM_TRAIN_H
#define VT_VLM_TRAIN_H

#include <stdio.h>

#include "data.h"
#include "optim.h"
#include "tf.h"
#include "vit.h"

typedef struct vt_vlm_hp {
    // vision tower (its own view of the image)
    int image_size, patch, v_width, v_layers, v_heads, v_ff;
    // decoder
    int d, layers, heads, kv_heads, ff;
    float rope_base;
    int max_len;       // longest training sequence (image + prompt + caption)
    // training
    int batch, steps, warmup;
    float lr, lr_min, weight_decay, clip_norm;
    uint64_t seed;
    int threads, log_every, ckpt_every;
} vt_vlm_hp;

vt_vlm_hp vt_vlm_default_hp(void);

typedef struct vt_vlm {
    vt_vlm_hp hp;
    vt_params ps;
    vt_vit vit;
    vt_tf dec;
    int mm0_w, mm0_b, mm2_w, mm2_b, tok, onorm, out;
    int n_img;             // image tokens (patches) per sample
    vv_bpe_vocab bpe;
    vv_vocab *vocab;
    int max_B, max_L;
    // activations
    float *patches, *p1, *p1a, *img_emb;  // [B*n_img, Dv], [.., d], [.., d], [.., d]
    float *x0, *xn, *rs, *hsel, *logits;  // [B*L, d], [B*L, d], [B*L], [M, d], [M, V]
    int32_t *ids, *lens, *tgt_rows, *tgt;
    float *d_x0, *d_xo, *d_xn, *d_hsel, *d_img_emb, *d_p1a, *d_p1, *d_patches, *d_vit;
} vt_vlm;

int vt_vlm_init(vt_vlm *m, const vt_vlm_hp *hp, const vv_bpe_vocab *bpe, int max_B, vv_error *e);
void vt_vlm_free(vt_vlm *m);

// Forward (and backward when train) on B samples: img [B, S, S, 3], one prompt
// and caption each. Afterwards m->logits holds the logits of the n_tok target
// rows (rows m->tgt_rows of the [B, L] layout, L = max(m->lens)) and *loss
// their mean cross-entropy.
int vt_vlm_loss(vt_ctx *c, vt_vlm *m, const float *img, const char *const *prompts, const char *const *captions,
                int B, bool train, float *loss, int *n_tok, vv_error *e);

// Writes OUT/vlm-text.gguf and OUT/vlm-mmproj.gguf.
int vt_vlm_export(const vt_vlm *m, const char *text_path, const char *mmproj_path, vv_error *e);

int vt_vlm_train(const vt_vlm_hp *hp, const char *out_dir, bool resume, vv_error *e);

#endif
