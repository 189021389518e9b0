// optim.h - parameter sets, AdamW, gradient clipping and the LR schedule.
//
// A model registers its tensors once in a vt_params (name + row-major shape +
// flags), then calls vt_params_alloc: values, gradients and the two AdamW
// moments live in contiguous 64-byte-aligned arenas, so zero_grad is one
// memset and the optimizer / checkpoint code iterates over the same list.
//
//   vt_params ps;  vt_params_init(&ps);
//   int wq;  vt_params_add(&ps, "blk.0.attn_q.weight", 2, (int64_t[]){D, D}, 0, &wq, &e);
//   int ln;  vt_params_add(&ps, "blk.0.attn_norm.weight", 1, (int64_t[]){D}, VT_PARAM_NO_DECAY, &ln, &e);
//   vt_params_alloc(&ps, &e);            // everything zero
//   vt_param_init_normal(&ps.items[wq], 0.02f, &rng);  vt_param_fill(&ps.items[ln], 1.0f);
//   loop: vt_params_zero_grad(&ps); forward; backward (into ps.items[i].grad);
//         vt_clip_grad_norm(ctx, &ps, 1.0f, &norm);
//         vt_adamw_step(ctx, &ps, &cfg, vt_lr_at(&sched, ps.step));
//
// Shapes are row-major, outermost first (PyTorch order): a linear weight is
// {out, in}; the GGUF ne[] is the reverse ({in, out}). Tensors added one after
// another are adjacent in every arena when the earlier one's element count is
// a multiple of 16 (e.g. gate and up weights usable as one [2F, D] matrix).
#ifndef VT_OPTIM_H
#define VT_OPTIM_H

#include "layers.h"

#define VT_NAME_MAX 128 // bytes including the NUL (GGUF tensor names, + ".adam_m")
#define VT_MAX_DIMS 4

enum vt_param_flags {
    VT_PARAM_NO_DECAY = 1u, // no weight decay (norms, biases, embeddings, logit_scale)
    VT_PARAM_FROZEN = 2u    // not trained: no grad/m/v storage (grad == NULL), skipped by the optimizer
};

typedef struct vt_param {
    char name[VT_NAME_MAX];
    int n_dims;
    int64_t shape[VT_MAX_DIMS]; // row-major, outermost first; unused dims 1
    int64_t n;                  // elements
    unsigned flags;
    float *data;                // [n]
    float *grad, *m, *v;        // [n] each, NULL when frozen
    size_t off_data, off_train; // offsets (floats) in the arenas
} vt_param;

typedef struct vt_params {
    vt_param *items;
    int n, cap;
    size_t n_data, n_train;     // arena sizes in floats (tensors padded to 16 floats)
    float *data;                // [n_data] all values
    float *grad, *m, *v;        // [n_train] each, trainable tensors only
    int64_t step;               // AdamW steps taken (its bias-correction t after a step)
    bool allocated;
} vt_params;

void vt_params_init(vt_params *ps);
void vt_params_free(vt_params *ps); // frees the arenas and the list; ps can be re-initialised
// Registers a tensor (before vt_params_alloc). Names must be unique, non-empty,
// shorter than VT_NAME_MAX - 8 (room for ".adam_m"). *index (optional) gets its index.
int vt_params_add(vt_params *ps, const char *name, int n_dims, const int64_t *shape, unsigned flags, int *index,
                  vv_error *e);
// Allocates the arenas (values, gradients, moments all zero); step = 0.
int vt_params_alloc(vt_params *ps, vv_error *e);
vt_param *vt_params_find(vt_params *ps, const char *name); // NULL if absent
int64_t vt_params_count(const vt_params *ps, bool trainable_only); // number of scalar parameters
void vt_params_zero_grad(vt_params *ps);

// Initialisers (deterministic given the RNG state).
void vt_param_fill(vt_param *p, float value);
void vt_param_init_normal(vt_param *p, float std, vv_rng *rng);
void vt_param_init_uniform(vt_param *p, float lo, float hi, vv_rng *rng);

// ---------------------------------------------------------------------------
// AdamW (PyTorch torch.optim.AdamW semantics, decoupled weight decay):
//   t = ++step;  p *= 1 - lr * wd (if decayed);  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// Hyper-parameters are double so 1 - beta is exact as in PyTorch (0.999f is not 0.999).
typedef struct vt_adamw {
    double beta1, beta2, eps, weight_decay;
} vt_adamw;
vt_adamw vt_adamw_default(void); // 0.9, 0.999, 1e-8, 0.01 (PyTorch AdamW defaults)
int vt_adamw_step(vt_ctx *ctx, vt_params *ps, const vt_adamw *cfg, float lr);

// Global L2 norm of all gradients (double accumulation in fixed chunks, so
// thread-count independent). If max_norm > 0 and norm > max_norm, scales all
// gradients by max_norm / (norm + 1e-6) (as torch.nn.utils.clip_grad_norm_).
// A non-finite norm is returned unchanged without scaling: skip that step.
int vt_clip_grad_norm(vt_ctx *ctx, vt_params *ps, float max_norm, float *norm);

// ---------------------------------------------------------------------------
// Learning-rate schedule: linear warm-up to lr_max over `warmup` steps
// (lr(0) = lr_max / warmup), then cosine decay to lr_min at step `total`,
// lr_min afterwards. step is 0-based (the step about to be taken: ps.step).
typedef struct vt_lr_sched {
    float lr_max, lr_min;
    int64_t warmup, total;
} vt_lr_sched;
float vt_lr_at(const vt_lr_sched *s, int64_t step);

#endif
