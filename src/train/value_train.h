// value_train.h - VisVM value model training by TD(0) (visvm-paper.md 1.3):
// target = (r - offset) + gamma * V(s'), V(s') from the same network without
// gradient, mean squared error, per-sample targets. (The paper's code adds the
// batch-mean reward to every target by a broadcasting accident; we do not.)
//
// Model: a LLaVA backbone whose vision tower is initialised from the reward
// CLIP's image tower (CLIP's eyes: the captioner's own tower is what makes it
// hallucinate), a new projector, the decoder initialised from the policy VLM,
// and a linear head on the last token's final hidden state. Terminal states:
// "done_mask" (V = 0 after the last sentence, default) or "bootstrap" (the
// paper: V("") is evaluated and never anchored).
#ifndef VT_VALUE_TRAIN_H
#define VT_VALUE_TRAIN_H

#include "td_data.h"

typedef struct vt_value_hp {
    const char *clip_path;        // reward CLIP (vision tower init)
    const char *policy_text;      // policy VLM text GGUF (decoder init, tokenizer)
    const char *vlm_mmproj;       // optional: tower + projector init from the mmproj of a VLM trained on CLIP's
                                  // tower (train vlm --init-vision); policy_text is then that VLM's text GGUF
    const char *train_rewards;    // rewards JSONL for training
    const char *val_rewards;      // held-out rewards JSONL (optional)
    const char *val_world;        // world folder of the held-out images (scenes.jsonl; optional): within-image AUC
    float gamma;
    bool done_mask;               // terminal V = 0 (else bootstrap V(""))
    float reward_offset;          // subtracted from rewards; NAN = mean training reward
    bool freeze_vision;           // keep CLIP's tower fixed
    bool head_only;               // train only the value head
    bool with_prefix;             // states hold the caption so far before the sentence (visvm.value.with_prefix)
    float head_yes_no;            // > 0: head starts as this x (W_yes - W_no) of the policy's output layer, so V
                                  // starts as its yes/no margin on "USER: <image>\n{sentence} ASSISTANT:"
                                  // (a VLM trained with verify_frac; 0: random head)
    int group;                    // TD pairs per image in a batch (1: uniform pairs, the paper)
    float rank_weight;            // weight of the group-centred MSE (within-image differences; 0: off)
    int batch, steps, warmup;
    float lr, lr_min, weight_decay, clip_norm;
    uint64_t seed;
    int threads, log_every, eval_every;
    int probe_scenes;             // validation scenes for the present/absent probe
} vt_value_hp;

vt_value_hp vt_value_default_hp(void);

// Trains and writes OUT/value-text.gguf, OUT/value-mmproj.gguf,
// OUT/value-train.log, OUT/value-loss.svg, OUT/value-metrics.json.
int vt_value_train(const vt_value_hp *hp, const char *out_dir, vv_error *e);

#endif
