// vlm_train.h - the tiny LLaVA: a CLIP ViT tower + MLP projector (mm.0, GELU,
// mm.2) + Llama decoder, trained on captioning the synthetic world with the
// LLaVA-1.5 chat template and the 9 detailed-description prompts. Exported as
// a llama-architecture GGUF plus an mmproj GGUF, exactly the formats the
// engine (and llama.cpp) reads.
//
// The tower either has its own initialisation and view (image_size < the
// world's 64 px; the engine's clip.cpp preprocessing does the bilinear resize),
// or, as LLaVA's and the shipped captioner's, is the reward CLIP's tower,
// frozen (init_vision, freeze_vision).
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
    int stem, stem_ch; // convolutional stem (vt_vit_cfg; 0 stages: patchify)
    bool stem_bn;      // BatchNorm after each stem convolution (folded into it at export)
    // LLaVA-style start: the tower's weights from a CLIP GGUF (shape taken from it,
    // vt_vlm_hp_vision_from_clip), optionally frozen (no tower gradients at all)
    const char *init_vision;
    bool freeze_vision;
    // decoder
    int d, layers, heads, kv_heads, ff;
    float rope_base;
    int max_len;       // longest training sequence (image + prompt + caption)
    // training
    int batch, steps, warmup;
    float lr, lr_min, weight_decay, clip_norm;
    uint64_t seed;
    int threads, log_every, ckpt_every;
    // instruction data beside the captions, LLaVA's mix: this fraction of the
    // samples asks about one sentence of the scene (true, or a hard negative)
    // as the whole user turn, answered "yes" / "no" (0: captions only)
    float verify_frac;
    bool verify_objects; // questions only about object presence (vt_vlm_verify_question)
    bool verify_short;   // ... asked as "There is a CLASS." (no colour, size or place)
    bool verify_late;    // yes/no answered "The answer is yes/no" (the decision three tokens later)
    float verify_where;  // share of those asking "Where is the CLASS?" instead (vt_vlm_where_question)
    vv_world_params world; // training scenes (default: vv_world_default_params(); the verify probes keep the default)
} vt_vlm_hp;

vt_vlm_hp vt_vlm_default_hp(void);

// Sets hp's tower shape (view, patch, widths, stem) to the vision tower of the
// CLIP GGUF at path and hp->init_vision = path. Its BatchNorm, if any, is
// folded in the file, so the tower trains without one (stem_bn = false).
int vt_vlm_hp_vision_from_clip(vt_vlm_hp *hp, const char *path, vv_error *e);

typedef struct vt_vlm {
    vt_vlm_hp hp;
    vt_params ps;
    vt_vit vit;
    vt_tf dec;
    int mm0_w, mm0_b, mm2_w, mm2_b, tok, onorm, out;
    int n_img;             // image tokens (patches) per sample
    int n_vit_params;      // ps.items[0, n_vit_params) are the tower's (v.*)
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
// One yes/no question about scene s (the verify_frac data): a true sentence
// (want_true; 80% about one object) or a hard negative made from such a
// sentence, so the sentence's kind does not give the answer away; half of the
// negatives name an absent object of the scene's theme where the scene allows.
// *truth is the answer. Deterministic in (scene, rng).
// objects_only: only object sentences, and as negatives only absent objects
// (presence, what CHAIR scores; no wrong colour, size or place).
// short_form (implies objects_only): asked as "There is a CLASS." (no attributes).
int vt_vlm_verify_question(const vv_world_scene *s, vv_rng *rng, bool want_true, bool objects_only, bool short_form,
                           char *out, size_t cap, bool *truth, vv_error *e);
// A grounding question: "Where is the CLASS?" about a present object (want_true),
// answered "There is a SIZE COLOR CLASS at the REGION.", or about an absent class
// (half of them of the scene's theme where it has one), answered "There is no
// CLASS." (LLaVA's referring data; every answer token depends on the lookup.)
int vt_vlm_where_question(const vv_world_scene *s, vv_rng *rng, bool want_true, char *q, char *ans, size_t cap,
                          bool *truth, vv_error *e);
// Held-out yes/no verification (see vt_vlm_hp.verify_frac): n val-split scenes,
// one true sentence and one hard negative each; accuracy of logit(yes) >
// logit(no) and AUC of that margin, true vs negative.
// where: ask where questions instead, score logit("a") - logit("no") after "There is".
int vt_vlm_verify_eval(vt_ctx *c, vt_vlm *m, vv_pool *pool, int n, uint64_t seed, bool where, float *acc, float *auc,
                       vv_error *e);

// ---------------------------------------------------------------------------
// Self-training (visvm-paper.md section 4): supervised fine-tuning of an
// existing tiny VLM on captions found by search.
//
// Caption files are JSON lines. Lines written by `visvm eval --captions`
// ({"strategy": ..., "seed": <world scene seed>, "caption": ..., ...}) name a
// world scene, re-rendered with the world's default params; lines
// {"image": PATH, "caption": ...} ("image_path" is read first when present)
// name an image file, relative to the JSONL's folder unless absolute, decoded
// by the engine's loader. Both are normalised as training images are. Blank
// lines are skipped; errors say "FILE:LINE: ...".

typedef struct vt_sft_item {
    char *caption;
    char *image;   // resolved image path, or NULL: world scene `seed`
    uint64_t seed;
    int line;      // line in the JSONL
    int img;       // index among the set's distinct images
} vt_sft_item;

typedef struct vt_sft_set {
    vt_sft_item *items;
    int n;
    int n_images;     // distinct images (same seed or same path = same image)
    int *image_item;  // [n_images]: an item showing each image
    char *path;       // the JSONL
} vt_sft_set;

// Reads a caption JSONL; strategy != NULL keeps only lines whose "strategy"
// equals it. No caption left is an error.
int vt_sft_load(const char *path, const char *strategy, vt_sft_set *out, vv_error *e);
void vt_sft_free(vt_sft_set *s);
// The set's distinct images, normalised for a tower of side size: out [n_images, size, size, 3].
int vt_sft_images(vv_pool *pool, const vt_sft_set *s, int size, float *out, vv_error *e);

// Builds the VLM saved in dir by `visvm train vlm`: architecture and tokenizer
// from dir/vlm-text.gguf and dir/vlm-mmproj.gguf, weights from
// dir/vlm.ckpt.gguf (F32; optimizer state and step ignored) when present, else
// from the two GGUF files. hp gives max_len and the training settings; its
// architecture fields are replaced by the files'. On error *m is freed.
int vt_vlm_load(vt_vlm *m, const char *dir, const vt_vlm_hp *hp, int max_B, vv_error *e);

// Mean per-token caption cross-entropy over the set (item i asked with
// detailed prompt i % 9), on at most max_items items evenly spread (0: all).
// images: vt_sft_images of the set at the model's image size.
int vt_vlm_sft_loss(vt_ctx *c, vt_vlm *m, const vt_sft_set *s, const float *images, int max_items, double *loss,
                    vv_error *e);

// Fine-tuning defaults: 300 steps of 16 captions, lr 1e-4 (cosine to 1e-5), 20 warm-up steps.
vt_vlm_hp vt_vlm_sft_default_hp(void);

// Fine-tunes the VLM of init_dir on the captions (each step: hp->batch
// captions in shuffled epochs, each asked with a random detailed prompt) and
// writes out_dir/vlm-text.gguf, vlm-mmproj.gguf, vlm.ckpt.gguf, vlm-sft.log
// and vlm-sft.json (caption loss before and after).
int vt_vlm_sft(const vt_vlm_hp *hp, const char *captions, const char *strategy, const char *init_dir,
               const char *out_dir, vv_error *e);

#endif
