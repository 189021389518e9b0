// data.h - training data drawn from the synthetic world: the shared BPE
// vocabulary, the detailed-description prompts, rendered + normalised images.
#ifndef VT_DATA_H
#define VT_DATA_H

#include "../model/image.h"
#include "../text/bpe.h"
#include "../world/world.h"
#include "layers.h"

// The 9 detailed-description prompts of LLaVA-Instruct (visvm-paper.md 2.1).
const char *const *vt_detail_prompts(int *n);

// The vocabulary every world model shares: BPE over the reference captions of
// the first 2000 train scenes, the prompts and the chat-template words, with
// "<image>" as a user-defined token. Deterministic.
int vt_world_vocab(vv_bpe_vocab *out, vv_error *e);

// Renders scene `seed` (world params p) and normalises it for a vision tower
// of side `size` exactly as the engine does (clip.cpp LLaVA-1.5 preprocessing:
// bilinear resize of the square image, CLIP mean/std): out [size, size, 3].
int vt_scene_image(const vv_world_params *p, const vv_world_scene *s, int size, float *out, vv_error *e);

// Same from an already rendered image.
int vt_image_normalize(const vv_image *img, int size, float *out, vv_error *e);

// CLIP's normalisation constants (also written to the GGUF files).
extern const float vt_clip_mean[3], vt_clip_std[3];

#endif
