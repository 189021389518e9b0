// sampler.h - token sampling: greedy, temperature, top-k, top-p (nucleus).
//
// Order follows Hugging Face generate (the paper's code): logits / T, then
// top-k, then top-p over the renormalised distribution, then a draw from a
// seeded RNG. temperature <= 0 is greedy (argmax, lowest id on ties).
#ifndef VV_SAMPLER_H
#define VV_SAMPLER_H

#include "../base/base.h"

typedef struct vv_sampler_params {
    float temperature;
    int top_k;    // <= 0: off
    float top_p;  // >= 1: off
} vv_sampler_params;

int vv_argmax(const float *logits, int n);
// Top-1 minus top-2 logit (the greedy decision margin).
float vv_logit_margin(const float *logits, int n);

typedef struct vv_sampler {
    float *p;   // [n_vocab] scratch
    int *idx;   // [n_vocab] scratch
    int n;
} vv_sampler;

int vv_sampler_init(vv_sampler *s, int n_vocab);
void vv_sampler_free(vv_sampler *s);
// Returns a token id in [0, n); never fails for finite logits.
int vv_sample(vv_sampler *s, const float *logits, const vv_sampler_params *p, vv_rng *rng);

#endif
