// optim.c - parameter arenas, AdamW, gradient clipping, LR schedule.
#include "optim.h"

#include "internal.h"

#include <stdlib.h>

#define PAD 16 // floats: every tensor starts on a 64-byte boundary

void vt_params_init(vt_params *ps) {
    if (ps) memset(ps, 0, sizeof(*ps));
}

void vt_params_free(vt_params *ps) {
    if (!ps) return;
    vv_afree(ps->data); // one allocation holds all four arenas
    free(ps->items);
    memset(ps, 0, sizeof(*ps));
}

int vt_params_add(vt_params *ps, const char *name, int n_dims, const int64_t *shape, unsigned flags, int *index,
                  vv_error *e) {
    if (!ps || !name || !shape) return vv_err(e, VISVM_ERR_INVALID, "vt_params_add: NULL argument");
    if (ps->allocated) return vv_err(e, VISVM_ERR_INVALID, "vt_params_add: '%s' added after vt_params_alloc", name);
    const size_t len = strlen(name);
    if (len == 0 || len >= VT_NAME_MAX - 8)
        return vv_err(e, VISVM_ERR_INVALID, "vt_params_add: name '%s' empty or longer than %d bytes", name,
                      VT_NAME_MAX - 9);
    if (n_dims < 1 || n_dims > VT_MAX_DIMS)
        return vv_err(e, VISVM_ERR_INVALID, "vt_params_add: '%s' has %d dims (1..%d)", name, n_dims, VT_MAX_DIMS);
    if (flags & ~(unsigned)(VT_PARAM_NO_DECAY | VT_PARAM_FROZEN))
        return vv_err(e, VISVM_ERR_INVALID, "vt_params_add: '%s' has unknown flags 0x%x", name, flags);
    int64_t n = 1;
    for (int d = 0; d < n_dims; d++) {
        if (shape[d] < 1 || !vt_mul3(n, shape[d], 1, &n))
            return vv_err(e, VISVM_ERR_INVALID, "vt_params_add: '%s' has invalid dim %d = %lld", name, d,
                          (long long)shape[d]);
    }
    if (vt_params_find(ps, name)) return vv_err(e, VISVM_ERR_INVALID, "vt_params_add: duplicate name '%s'", name);
    if (ps->n == ps->cap) {
        int cap = ps->cap ? 2 * ps->cap : 64;
        vt_param *it = realloc(ps->items, (size_t)cap * sizeof(*it));
        if (!it) return vv_err(e, VISVM_ERR_NOMEM, "vt_params_add: out of memory");
        ps->items = it;
        ps->cap = cap;
    }
    vt_param *p = &ps->items[ps->n];
    memset(p, 0, sizeof(*p));
    memcpy(p->name, name, len + 1);
    p->n_dims = n_dims;
    for (int d = 0; d < VT_MAX_DIMS; d++) p->shape[d] = d < n_dims ? shape[d] : 1;
    p->n = n;
    p->flags = flags;
    const size_t padded = ((size_t)n + PAD - 1) / PAD * PAD;
    p->off_data = ps->n_data;
    ps->n_data += padded;
    if (!(flags & VT_PARAM_FROZEN)) {
        p->off_train = ps->n_train;
        ps->n_train += padded;
    }
    if (index) *index = ps->n;
    ps->n++;
    return VISVM_OK;
}

int vt_params_alloc(vt_params *ps, vv_error *e) {
    if (!ps) return vv_err(e, VISVM_ERR_INVALID, "vt_params_alloc: NULL");
    if (ps->allocated) return vv_err(e, VISVM_ERR_INVALID, "vt_params_alloc: already allocated");
    size_t total, bytes;
    if (!vv_mul_ok(ps->n_train, 3, &total) || !vv_add_ok(total, ps->n_data, &total) ||
        !vv_mul_ok(total, sizeof(float), &bytes))
        return vv_err(e, VISVM_ERR_NOMEM, "vt_params_alloc: size overflow");
    float *a = vv_acalloc(bytes ? bytes : 64);
    if (!a) return vv_err(e, VISVM_ERR_NOMEM, "vt_params_alloc: cannot allocate %zu bytes", bytes);
    ps->data = a;
    ps->grad = a + ps->n_data;
    ps->m = ps->grad + ps->n_train;
    ps->v = ps->m + ps->n_train;
    for (int i = 0; i < ps->n; i++) {
        vt_param *p = &ps->items[i];
        p->data = ps->data + p->off_data;
        if (!(p->flags & VT_PARAM_FROZEN)) {
            p->grad = ps->grad + p->off_train;
            p->m = ps->m + p->off_train;
            p->v = ps->v + p->off_train;
        }
    }
    ps->step = 0;
    ps->allocated = true;
    return VISVM_OK;
}

vt_param *vt_params_find(vt_params *ps, const char *name) {
    if (!ps || !name) return NULL;
    for (int i = 0; i < ps->n; i++)
        if (strcmp(ps->items[i].name, name) == 0) return &ps->items[i];
    return NULL;
}

int64_t vt_params_count(const vt_params *ps, bool trainable_only) {
    int64_t n = 0;
    for (int i = 0; ps && i < ps->n; i++)
        if (!trainable_only || !(ps->items[i].flags & VT_PARAM_FROZEN)) n += ps->items[i].n;
    return n;
}

void vt_params_zero_grad(vt_params *ps) {
    if (ps && ps->allocated && ps->n_train) memset(ps->grad, 0, ps->n_train * sizeof(float));
}

void vt_param_fill(vt_param *p, float value) {
    if (!p || !p->data) return;
    for (int64_t i = 0; i < p->n; i++) p->data[i] = value;
}

void vt_param_init_normal(vt_param *p, float std, vv_rng *rng) {
    if (!p || !p->data || !rng) return;
    for (int64_t i = 0; i < p->n; i++) p->data[i] = std * vv_rng_normal(rng);
}

void vt_param_init_uniform(vt_param *p, float lo, float hi, vv_rng *rng) {
    if (!p || !p->data || !rng) return;
    for (int64_t i = 0; i < p->n; i++) p->data[i] = lo + (hi - lo) * (float)vv_rng_uniform(rng);
}

// ---------------------------------------------------------------------------
// AdamW

vt_adamw vt_adamw_default(void) { return (vt_adamw){0.9, 0.999, 1e-8, 0.01}; }

#define OPT_CHUNK 16384 // floats per task (element-wise, so any split gives the same result)

typedef struct {
    vt_params *ps;
    int64_t *task_param; // first task of each parameter, [n + 1]
    float b1, b2, c1, c2, eps, lr, decay_mul, step_size, bc2_sqrt_inv; // c = 1 - b, from double
} adam_job;

VT_CLONES static void adam_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const adam_job *j = (const adam_job *)arg;
    // find the parameter this task belongs to (few tensors: linear scan is fine)
    int pi = 0;
    while (j->task_param[pi + 1] <= t) pi++;
    const vt_param *p = &j->ps->items[pi];
    const int64_t i0 = (t - j->task_param[pi]) * OPT_CHUNK, i1 = VV_MIN(i0 + OPT_CHUNK, p->n);
    float *restrict w = p->data, *restrict m = p->m, *restrict v = p->v;
    const float *restrict g = p->grad;
    const float dm = (p->flags & VT_PARAM_NO_DECAY) ? 1.0f : j->decay_mul;
    const float b1 = j->b1, b2 = j->b2, c1 = j->c1, c2 = j->c2;
    for (int64_t i = i0; i < i1; i++) {
        const float gi = g[i];
        const float mi = b1 * m[i] + c1 * gi;
        const float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        const float denom = sqrtf(vi) * j->bc2_sqrt_inv + j->eps;
        w[i] = w[i] * dm - j->step_size * mi / denom;
    }
}

int vt_adamw_step(vt_ctx *ctx, vt_params *ps, const vt_adamw *cfg, float lr) {
    if (!ctx) return VISVM_ERR_INVALID;
    if (!ps || !cfg || !ps->allocated) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_adamw_step: unallocated parameters");
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1) || !(cfg->beta2 >= 0 && cfg->beta2 < 1) || !(cfg->eps >= 0) ||
        !(cfg->weight_decay >= 0) || !isfinite(lr) || lr < 0)
        return vt_fail(ctx, VISVM_ERR_INVALID, "vt_adamw_step: invalid hyper-parameters (b1 %g b2 %g eps %g wd %g lr %g)",
                       cfg->beta1, cfg->beta2, cfg->eps, cfg->weight_decay, (double)lr);
    int64_t *tp = malloc((size_t)(ps->n + 1) * sizeof(int64_t));
    if (!tp) return vt_fail(ctx, VISVM_ERR_NOMEM, "vt_adamw_step: out of memory");
    int64_t nt = 0;
    for (int i = 0; i < ps->n; i++) {
        tp[i] = nt;
        if (!(ps->items[i].flags & VT_PARAM_FROZEN)) nt += (ps->items[i].n + OPT_CHUNK - 1) / OPT_CHUNK;
    }
    tp[ps->n] = nt;
    ps->step++;
    const double t = (double)ps->step;
    const double bc1 = 1.0 - pow(cfg->beta1, t), bc2 = 1.0 - pow(cfg->beta2, t);
    adam_job j = {ps,
                  tp,
                  (float)cfg->beta1,
                  (float)cfg->beta2,
                  (float)(1.0 - cfg->beta1),
                  (float)(1.0 - cfg->beta2),
                  (float)cfg->eps,
                  lr,
                  (float)(1.0 - (double)lr * cfg->weight_decay),
                  (float)((double)lr / bc1),
                  (float)(1.0 / sqrt(bc2))};
    vt_parallel(ctx, nt, adam_task, &j);
    free(tp);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// clipping

typedef struct {
    float *g;
    double *part;
    size_t n;
    float scale;
} norm_job;

VT_CLONES static void sumsq_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const norm_job *j = (const norm_job *)arg;
    const size_t i0 = (size_t)t * OPT_CHUNK, i1 = VV_MIN(i0 + OPT_CHUNK, j->n); // i1 - i0 is a multiple of 16
    double s[8] = {0};
    size_t i = i0;
    for (; i + 8 <= i1; i += 8)
        for (int q = 0; q < 8; q++) s[q] += (double)j->g[i + q] * (double)j->g[i + q];
    for (; i < i1; i++) s[0] += (double)j->g[i] * (double)j->g[i];
    j->part[t] = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
}

VT_CLONES static void scale_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const norm_job *j = (const norm_job *)arg;
    const size_t i0 = (size_t)t * OPT_CHUNK, i1 = VV_MIN(i0 + OPT_CHUNK, j->n);
    for (size_t i = i0; i < i1; i++) j->g[i] *= j->scale;
}

int vt_clip_grad_norm(vt_ctx *ctx, vt_params *ps, float max_norm, float *norm) {
    if (!ctx) return VISVM_ERR_INVALID;
    if (!ps || !ps->allocated || !norm) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_clip_grad_norm: bad arguments");
    *norm = 0.0f;
    if (ps->n_train == 0) return VISVM_OK;
    // padding floats between tensors are always zero, so the arena is summed whole
    const int64_t nt = (int64_t)((ps->n_train + OPT_CHUNK - 1) / OPT_CHUNK);
    float *part = vt_scratch(ctx, (size_t)nt * 2);
    if (!part) return vt_ctx_status(ctx);
    norm_job j = {ps->grad, (double *)part, ps->n_train, 1.0f};
    vt_parallel(ctx, nt, sumsq_task, &j);
    double ss = 0;
    for (int64_t t = 0; t < nt; t++) ss += j.part[t];
    const double nrm = sqrt(ss);
    *norm = (float)nrm;
    if (max_norm > 0 && isfinite(nrm) && nrm > max_norm) {
        j.scale = (float)(max_norm / (nrm + 1e-6));
        vt_parallel(ctx, nt, scale_task, &j);
    }
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// schedule

float vt_lr_at(const vt_lr_sched *s, int64_t step) {
    if (!s) return 0.0f;
    if (step < 0) step = 0;
    if (s->warmup > 0 && step < s->warmup) return (float)((double)s->lr_max * (double)(step + 1) / (double)s->warmup);
    if (step >= s->total) return s->lr_min;
    const int64_t span = s->total - VV_MAX(s->warmup, (int64_t)0);
    if (span <= 0) return s->lr_min;
    const double prog = (double)(step - VV_MAX(s->warmup, (int64_t)0)) / (double)span;
    const double PI = 3.14159265358979323846;
    return (float)(s->lr_min + 0.5 * ((double)s->lr_max - s->lr_min) * (1.0 + cos(PI * prog)));
}
