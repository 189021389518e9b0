// api_internal.h - definitions of the public opaque handles, shared by the
// API implementation and the CLI (which may reach inside for diagnostics).
#ifndef VV_API_INTERNAL_H
#define VV_API_INTERNAL_H

#include "visvm.h"
#include "base/threadpool.h"
#include "gen/sampler.h"
#include "model/clip.h"
#include "model/llama.h"

struct visvm_model {
    vv_llama *m;
};

struct visvm_mmproj {
    vv_clip *c;
};

struct visvm_context {
    const visvm_model *model;
    const visvm_mmproj *mmproj;
    vv_pool *pool;
    vv_llama_state *st;
    vv_error err;
    float *logits;   // [logits_cap, n_vocab]
    int logits_rows; // rows valid after the last decode
    int logits_cap;
    vv_rng rng;
    vv_sampler smp;
};

// Loads, preprocesses and embeds an image with the context's mmproj.
int vv_api_embed_image(visvm_context *c, const char *path, float **embd, int *n_tokens);
int vv_api_embed_vv_image(visvm_context *c, const vv_image *img, float **embd, int *n_tokens);
// visvm_caption with either an image file or a decoded image (or neither).
int vv_api_caption(visvm_context *c, const char *image_path, const vv_image *image, const char *prompt,
                   const visvm_sample_params *params, char **out_text);

#endif
