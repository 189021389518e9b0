// clip_train.h - the tiny CLIP (ViT image tower + causal text tower, CLIP
// architecture) trained contrastively on synthetic-world images and sentences,
// and exported as a GGUF "clip" file with both encoders. It is the reward model
// of the search (raw cosine similarity, as the paper's code).
#ifndef VT_CLIP_TRAIN_H
#define VT_CLIP_TRAIN_H

#include <stdio.h>

#include "data.h"
#include "optim.h"
#include "tf.h"

typedef struct vt_clip_hp {
    // architecture
    int image_size, patch, v_width, v_layers, v_heads, v_ff;
    int t_width, t_layers, t_heads, t_ff, t_ctx;
    int proj;
    int stem, stem_ch; // convolutional stem of the vision tower (vt_vit_cfg; 0 stages: patchify)
    float scale_init;  // initial logit scale s = exp(logit_scale); a low start avoids both towers collapsing
    bool stem_bn;      // BatchNorm after each stem convolution (folded into it at export)
    bool mean_pool;    // image embedding = mean of all final tokens (else the class token)
    bool max_pool;     // image embedding = per-feature max over all final tokens (overrides mean_pool)
    bool text_mean_pool; // text embedding = mean of the valid tokens (else the last token, EOS)
    // training
    int batch;         // images per step
    int n_neg;         // hard-negative sentences per image
    float p_caption;   // probability the positive text is a whole caption
    int group;         // images per same-theme group in a batch (<= 1: no grouping)
    float hard_weight; // weight of the per-image softmax over {positive, its hard negatives}
    float aux_weight;  // weight of an auxiliary head on the pooled image feature that predicts
                       // which classes, colours and how many objects the scene has (0: off)
    float dense_weight; // weight of a per-patch head on the final vision tokens that names the
                        // class covering each patch (or background), labels from the renderer's
                        // visible masks: 64 labels per image instead of one contrastive pair (0: off)
    int steps, warmup;
    int until;        // stop (checkpoint, export, probes) at this step of the schedule (0: at steps)
    vv_world_params world; // scenes for training and probes (default: vv_world_default_params())
    float lr, lr_min, weight_decay, clip_norm;
    uint64_t seed;
    int threads;
    int log_every, eval_every, ckpt_every;
    int eval_scenes;   // validation scenes for the probes
} vt_clip_hp;

vt_clip_hp vt_clip_default_hp(void);

// Probe accuracies on validation scenes (percent): is the true sentence scored
// above its corrupted version, per corruption kind, and retrieval (true
// sentence ranked first among itself and all its corruptions).
typedef struct vt_clip_probe {
    double pair[VV_WS_N_KINDS]; // by negative kind (NaN where none)
    int n_pair[VV_WS_N_KINDS];
    double retrieval;           // top-1 among {true, its negatives}
    int n_retrieval;
    double count_argmax;        // "There are k objects." k = 1..5 argmax is right
    double theme_argmax;        // setting sentence argmax over themes is right
} vt_clip_probe;

// Per-image softmax over {text b, its n_neg hard negatives B + b n_neg + k}
// of cosine * exp(ls): returns lambda * mean CE and accumulates (+=) gradients
// into dU [B, E], dT [B (1 + n_neg), E] and *dls.
float vt_clip_hardneg_loss(const float *U, const float *Tx, int B, int n_neg, int E, float ls, float lambda, float *dU,
                           float *dT, float *dls);

// Renders world scenes `seeds` and normalises them for a tower of side size: img [n, size, size, 3].
int vt_render_batch(vv_pool *pool, const vv_world_params *wp, const uint64_t *seeds, int n, int size, float *img);
// Same, plus per-patch labels for a grid of side grid: labels [n, grid * grid] get the
// class whose visible mask covers the largest share (>= 20%) of the patch, else
// vv_world_n_classes() (background).
int vt_render_batch_labels(vv_pool *pool, const vv_world_params *wp, const uint64_t *seeds, int n, int size,
                           float *img, int grid, int32_t *labels);

struct vt_clip_model;
// Runs the probes on the first n_scenes validation scenes.
int vt_clip_probe_run(vt_ctx *c, vv_pool *pool, struct vt_clip_model *m, int n_scenes, vt_clip_probe *out, vv_error *e);
void vt_clip_probe_print(FILE *f, const vt_clip_probe *p);

// Trains (or resumes from out_dir/clip.ckpt.gguf) and writes out_dir/clip.gguf,
// out_dir/clip-train.log, out_dir/clip-loss.svg.
int vt_clip_train(const vt_clip_hp *hp, const char *out_dir, bool resume, vv_error *e);

#endif
