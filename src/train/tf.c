// tf.c - pre-norm transformer stack (training): forward, backward, naming.
#include "tf.h"

#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int q_dim(const vt_tf_cfg *c) { return c->d; }
static int kv_dim(const vt_tf_cfg *c) { return c->d / c->n_head * c->n_kv; }
static int qkv_dim(const vt_tf_cfg *c) { return q_dim(c) + 2 * kv_dim(c); }

static int add(vt_params *ps, const char *name, int64_t d0, int64_t d1, unsigned flags, int *idx, vv_error *e) {
    int64_t shape[2] = {d0, d1};
    return vt_params_add(ps, name, d1 > 0 ? 2 : 1, shape, flags, idx, e);
}

int vt_tf_register(vt_tf *tf, const vt_tf_cfg *cfg, vt_params *ps, vv_error *e) {
    memset(tf, 0, sizeof(*tf));
    tf->cfg = *cfg;
    const vt_tf_cfg *c = cfg;
    if (c->n_layer < 0 || c->d <= 0 || c->n_head <= 0 || c->n_kv <= 0 || c->d % c->n_head || c->n_head % c->n_kv ||
        c->d_ff <= 0 || (c->d * c->d) % 16 || c->d_ff % 16 || kv_dim(c) % 16)
        return vv_err(e, VISVM_ERR_INVALID,
                      "transformer config: d %d, heads %d/%d, d_ff %d (need d %% heads == 0, multiples of 16)", c->d,
                      c->n_head, c->n_kv, c->d_ff);
    tf->L = calloc((size_t)(c->n_layer ? c->n_layer : 1), sizeof(vt_tf_layer));
    if (!tf->L) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    const int D = c->d, Q = q_dim(c), KV = kv_dim(c), F = c->d_ff;
    int rc = VISVM_OK;
    char n[VT_NAME_MAX];
    for (int l = 0; l < c->n_layer && !rc; l++) {
        vt_tf_layer *L = &tf->L[l];
        memset(L, -1, sizeof(*L));
        const char *p = c->style == VT_TF_VISION ? "v.blk" : c->style == VT_TF_TEXT ? "t.blk" : "blk";
#define ADD(field, suffix, d0, d1, fl)                                        \
    if (!rc) {                                                                \
        snprintf(n, sizeof(n), "%s.%d.%s", p, l, suffix);                     \
        rc = add(ps, n, d0, d1, fl, &L->field, e);                            \
    }
        if (c->style == VT_TF_LLAMA) {
            ADD(ln1_w, "attn_norm.weight", D, 0, VT_PARAM_NO_DECAY)
            ADD(wq, "attn_q.weight", Q, D, 0)
            ADD(wk, "attn_k.weight", KV, D, 0)
            ADD(wv, "attn_v.weight", KV, D, 0)
            ADD(wo, "attn_output.weight", D, Q, 0)
            ADD(ln2_w, "ffn_norm.weight", D, 0, VT_PARAM_NO_DECAY)
            if (c->swiglu) {
                ADD(w1, "ffn_gate.weight", F, D, 0)
                ADD(w3, "ffn_up.weight", F, D, 0)
                ADD(w2, "ffn_down.weight", D, F, 0)
            } else {
                ADD(w1, "ffn_up.weight", F, D, 0)
                ADD(w2, "ffn_down.weight", D, F, 0)
            }
        } else {
            ADD(ln1_w, "ln1.weight", D, 0, VT_PARAM_NO_DECAY)
            if (!c->rms) ADD(ln1_b, "ln1.bias", D, 0, VT_PARAM_NO_DECAY)
            ADD(wq, "attn_q.weight", Q, D, 0)
            ADD(wk, "attn_k.weight", KV, D, 0)
            ADD(wv, "attn_v.weight", KV, D, 0)
            if (c->bias) {
                ADD(bq, "attn_q.bias", Q, 0, VT_PARAM_NO_DECAY)
                ADD(bk, "attn_k.bias", KV, 0, VT_PARAM_NO_DECAY)
                ADD(bv, "attn_v.bias", KV, 0, VT_PARAM_NO_DECAY)
            }
            ADD(wo, "attn_out.weight", D, Q, 0)
            if (c->bias) ADD(bo, "attn_out.bias", D, 0, VT_PARAM_NO_DECAY)
            ADD(ln2_w, "ln2.weight", D, 0, VT_PARAM_NO_DECAY)
            if (!c->rms) ADD(ln2_b, "ln2.bias", D, 0, VT_PARAM_NO_DECAY)
            // mmproj naming quirk: ffn_down is fc1 (D -> F), ffn_up is fc2 (F -> D)
            if (c->swiglu) {
                ADD(w1, "ffn_gate.weight", F, D, 0)
                ADD(w3, "ffn_up.weight", F, D, 0)
                ADD(w2, "ffn_down.weight", D, F, 0)
            } else {
                ADD(w1, "ffn_down.weight", F, D, 0)
                if (c->bias) ADD(b1, "ffn_down.bias", F, 0, VT_PARAM_NO_DECAY)
                ADD(w2, "ffn_up.weight", D, F, 0)
                if (c->bias) ADD(b2, "ffn_up.bias", D, 0, VT_PARAM_NO_DECAY)
            }
        }
#undef ADD
    }
    return rc;
}

// Fused q|k|v (and gate|up) need adjacent tensors in both arenas.
static int check_adjacent(const vt_params *ps, int a, int b, vv_error *e) {
    const vt_param *x = &ps->items[a], *y = &ps->items[b];
    if (x->data + x->n != y->data || (x->grad && x->grad + x->n != y->grad))
        return vv_err(e, VISVM_ERR_INTERNAL, "tensors %s and %s are not adjacent in the parameter arena", x->name,
                      y->name);
    return VISVM_OK;
}

void vt_tf_init(vt_tf *tf, vt_params *ps, float std, vv_rng *rng) {
    const vt_tf_cfg *c = &tf->cfg;
    float out_std = std / sqrtf(2.0f * (float)(c->n_layer > 0 ? c->n_layer : 1));
    for (int l = 0; l < c->n_layer; l++) {
        vt_tf_layer *L = &tf->L[l];
        int norms[4] = {L->ln1_w, L->ln2_w, -1, -1};
        for (int i = 0; i < 2; i++) vt_param_fill(&ps->items[norms[i]], 1.0f);
        int w[4] = {L->wq, L->wk, L->wv, L->w1};
        for (int i = 0; i < 4; i++) vt_param_init_normal(&ps->items[w[i]], std, rng);
        if (L->w3 >= 0) vt_param_init_normal(&ps->items[L->w3], std, rng);
        vt_param_init_normal(&ps->items[L->wo], out_std, rng);
        vt_param_init_normal(&ps->items[L->w2], out_std, rng);
        // biases and norm biases stay 0 (vt_params_alloc zeroes)
    }
}

void vt_tf_free(vt_tf *tf) {
    if (!tf) return;
    if (tf->x) vv_afree(tf->x[0]); // one arena, see vt_tf_alloc
    free(tf->x);
    free(tf->L);
    free(tf->pos);
    memset(tf, 0, sizeof(*tf));
}

size_t vt_tf_act_floats(const vt_tf *tf) {
    const vt_tf_cfg *c = &tf->cfg;
    const size_t R = (size_t)tf->max_rows, D = (size_t)c->d, QKV = (size_t)qkv_dim(c), Q = (size_t)q_dim(c);
    const size_t F1 = (size_t)(c->swiglu ? 2 * c->d_ff : c->d_ff), F2 = (size_t)c->d_ff;
    const size_t P = (size_t)tf->max_B * c->n_head * (size_t)tf->max_T * (size_t)tf->max_T;
    size_t per_layer = R * (D * 4 + QKV + Q + F1 + F2) + 4 * R + P; // x, h1, h2, xm + ...
    size_t bwd = R * (D * 3 + QKV + Q + F1 + F2);
    return per_layer * (size_t)c->n_layer + R * D + bwd;
}

int vt_tf_alloc(vt_tf *tf, int64_t max_B, int64_t max_T, vv_error *e) {
    const vt_tf_cfg *c = &tf->cfg;
    const int nl = c->n_layer;
    tf->max_B = max_B;
    tf->max_T = max_T;
    tf->max_rows = max_B * max_T;
    size_t total = vt_tf_act_floats(tf);
    // one pointer table for all per-layer arrays: 15 arrays of n_layer (+1 for x)
    tf->x = calloc((size_t)(15 * (nl + 1)), sizeof(float *));
    tf->pos = malloc((size_t)tf->max_rows * sizeof(int32_t));
    float *arena = vv_aalloc(total * sizeof(float));
    if (!tf->x || !tf->pos || !arena) {
        vv_afree(arena);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory for training activations (%.1f MiB)",
                      (double)total * 4 / 1048576.0);
    }
    float ***tabs[] = {&tf->h1, &tf->h2, &tf->mu1, &tf->rs1, &tf->mu2, &tf->rs2, &tf->qkv, &tf->probs,
                       &tf->att, &tf->xm, &tf->f1, &tf->f2};
    for (size_t i = 0; i < sizeof(tabs) / sizeof(tabs[0]); i++) *tabs[i] = tf->x + (nl + 1) * (i + 1);
    const size_t R = (size_t)tf->max_rows, D = (size_t)c->d, QKV = (size_t)qkv_dim(c), Q = (size_t)q_dim(c);
    const size_t F1 = (size_t)(c->swiglu ? 2 * c->d_ff : c->d_ff), F2 = (size_t)c->d_ff;
    const size_t P = (size_t)max_B * c->n_head * (size_t)max_T * (size_t)max_T;
    float *p = arena;
    for (int l = 0; l <= nl; l++) {
        tf->x[l] = p;
        p += R * D;
        if (l == nl) break;
        tf->h1[l] = p; p += R * D;
        tf->h2[l] = p; p += R * D;
        tf->mu1[l] = p; p += R;
        tf->rs1[l] = p; p += R;
        tf->mu2[l] = p; p += R;
        tf->rs2[l] = p; p += R;
        tf->qkv[l] = p; p += R * QKV;
        tf->probs[l] = p; p += P;
        tf->att[l] = p; p += R * Q;
        tf->xm[l] = p; p += R * D;
        tf->f1[l] = p; p += R * F1;
        tf->f2[l] = p; p += R * F2;
    }
    tf->dx = p; p += R * D;
    tf->dxm = p; p += R * D;
    tf->dh = p; p += R * D;
    tf->dqkv = p; p += R * QKV;
    tf->datt = p; p += R * Q;
    tf->df1 = p; p += R * F1;
    tf->df2 = p; p += R * F2;
    return VISVM_OK;
}

static float *W(vt_params *ps, int i) { return i >= 0 ? ps->items[i].data : NULL; }
static float *G(vt_params *ps, int i) { return i >= 0 ? ps->items[i].grad : NULL; }

static int norm_fwd(vt_ctx *c, const vt_tf_cfg *cfg, float *y, float *mu, float *rs, const float *x, const float *w,
                    const float *b, int64_t N) {
    if (cfg->rms) return vt_rmsnorm_forward(c, y, rs, x, w, N, cfg->d, cfg->eps);
    return vt_layernorm_forward(c, y, mu, rs, x, w, b, N, cfg->d, cfg->eps);
}

static int norm_bwd(vt_ctx *c, const vt_tf_cfg *cfg, float *dx, float *dw, float *db, const float *dy, const float *x,
                    const float *w, const float *mu, const float *rs, int64_t N) {
    if (cfg->rms) return vt_rmsnorm_backward(c, dx, dw, dy, x, w, rs, N, cfg->d);
    return vt_layernorm_backward(c, dx, dw, db, dy, x, w, mu, rs, N, cfg->d);
}

static vt_attn_dims attn_dims(const vt_tf_cfg *c, int64_t B, int64_t T, const int32_t *lens) {
    vt_attn_dims d = {B, T, c->n_head, c->n_kv, c->d / c->n_head, c->causal, lens, 0, 0, 0, 0};
    d.ldq = d.ldk = d.ldv = qkv_dim(c);
    d.ldo = q_dim(c);
    return d;
}

int vt_tf_forward(vt_ctx *c, vt_tf *tf, vt_params *ps, const float *x_in, int64_t B, int64_t T, const int32_t *lens,
                  int n_run, float **out) {
    const vt_tf_cfg *cfg = &tf->cfg;
    if (n_run < 0 || n_run > cfg->n_layer) n_run = cfg->n_layer;
    const int64_t N = B * T;
    if (B <= 0 || T <= 0 || B > tf->max_B || T > tf->max_T)
        return vv_err(NULL, VISVM_ERR_INVALID, "batch exceeds the allocated activations");
    const int D = cfg->d, QKV = qkv_dim(cfg), Q = q_dim(cfg), KV = kv_dim(cfg), F = cfg->d_ff;
    const int hd = D / cfg->n_head;
    memcpy(tf->x[0], x_in, (size_t)N * D * sizeof(float));
    for (int64_t r = 0; r < N; r++) tf->pos[r] = (int32_t)(r % T);
    vt_attn_dims ad = attn_dims(cfg, B, T, lens);
    int rc = VISVM_OK;
    for (int l = 0; l < n_run && !rc; l++) {
        vt_tf_layer *L = &tf->L[l];
        float *x = tf->x[l], *y = tf->x[l + 1];
        rc = norm_fwd(c, cfg, tf->h1[l], tf->mu1[l], tf->rs1[l], x, W(ps, L->ln1_w), W(ps, L->ln1_b), N);
        if (!rc) rc = vt_linear_forward(c, tf->qkv[l], tf->h1[l], W(ps, L->wq), W(ps, L->bq), N, D, QKV);
        if (!rc && cfg->rope) {
            rc = vt_rope_forward(c, tf->qkv[l], QKV, tf->pos, N, cfg->n_head, hd, hd, cfg->rope_base, 1.0f);
            if (!rc) rc = vt_rope_forward(c, tf->qkv[l] + Q, QKV, tf->pos, N, cfg->n_kv, hd, hd, cfg->rope_base, 1.0f);
        }
        if (!rc)
            rc = vt_attention_forward(c, &ad, tf->att[l], tf->probs[l], tf->qkv[l], tf->qkv[l] + Q, tf->qkv[l] + Q + KV);
        if (!rc) rc = vt_linear_forward(c, tf->xm[l], tf->att[l], W(ps, L->wo), W(ps, L->bo), N, Q, D);
        if (!rc) rc = vt_accumulate(c, tf->xm[l], x, N * D);
        if (!rc) rc = norm_fwd(c, cfg, tf->h2[l], tf->mu2[l], tf->rs2[l], tf->xm[l], W(ps, L->ln2_w), W(ps, L->ln2_b), N);
        if (rc) break;
        if (cfg->swiglu) {
            rc = vt_linear_forward(c, tf->f1[l], tf->h2[l], W(ps, L->w1), NULL, N, D, 2 * F);
            if (!rc) rc = vt_swiglu_forward(c, tf->f2[l], tf->f1[l], tf->f1[l] + F, N, F, 2 * F);
        } else {
            rc = vt_linear_forward(c, tf->f1[l], tf->h2[l], W(ps, L->w1), W(ps, L->b1), N, D, F);
            if (!rc) rc = vt_act_forward(c, cfg->act, tf->f2[l], tf->f1[l], N * F);
        }
        if (!rc) rc = vt_linear_forward(c, y, tf->f2[l], W(ps, L->w2), W(ps, L->b2), N, F, D);
        if (!rc) rc = vt_accumulate(c, y, tf->xm[l], N * D);
    }
    if (!rc && out) *out = tf->x[n_run];
    return rc;
}

int vt_tf_backward(vt_ctx *c, vt_tf *tf, vt_params *ps, float *dout, float *dx_in, int64_t B, int64_t T,
                   const int32_t *lens, int n_run) {
    const vt_tf_cfg *cfg = &tf->cfg;
    if (n_run < 0 || n_run > cfg->n_layer) n_run = cfg->n_layer;
    const int64_t N = B * T;
    const int D = cfg->d, QKV = qkv_dim(cfg), Q = q_dim(cfg), KV = kv_dim(cfg), F = cfg->d_ff;
    const int hd = D / cfg->n_head;
    const int F1 = cfg->swiglu ? 2 * F : F;
    vt_attn_dims ad = attn_dims(cfg, B, T, lens);
    int rc = VISVM_OK;
    // adjacency of the fused tensors (cheap; guards the arena assumption)
    for (int l = 0; l < n_run && !rc; l++) {
        vt_tf_layer *L = &tf->L[l];
        rc = check_adjacent(ps, L->wq, L->wk, NULL) || check_adjacent(ps, L->wk, L->wv, NULL);
        if (!rc && L->bq >= 0) rc = check_adjacent(ps, L->bq, L->bk, NULL) || check_adjacent(ps, L->bk, L->bv, NULL);
        if (!rc && cfg->swiglu) rc = check_adjacent(ps, L->w1, L->w3, NULL);
        if (rc) return vt_fail(c, VISVM_ERR_INTERNAL, "fused tensors are not adjacent in the parameter arena");
    }
    float *dcur = dout; // gradient w.r.t. x[l + 1]
    for (int l = n_run - 1; l >= 0 && !rc; l--) {
        vt_tf_layer *L = &tf->L[l];
        float *dprev = (l == 0 && dx_in) ? NULL : (dcur == tf->dx ? tf->dxm : tf->dx);
        // MLP branch: y = xm + mlp(norm(xm))
        float *dxm = tf->dh; // gradient w.r.t. xm
        memcpy(dxm, dcur, (size_t)N * D * sizeof(float));
        memset(tf->df2, 0, (size_t)N * F * sizeof(float));
        rc = vt_linear_backward(c, tf->df2, G(ps, L->w2), G(ps, L->b2), dcur, tf->f2[l], W(ps, L->w2), N, F, D);
        memset(tf->df1, 0, (size_t)N * F1 * sizeof(float));
        if (!rc) {
            if (cfg->swiglu) rc = vt_swiglu_backward(c, tf->df1, tf->df1 + F, tf->df2, tf->f1[l], tf->f1[l] + F, N, F, 2 * F);
            else rc = vt_act_backward(c, cfg->act, tf->df1, tf->df2, tf->f1[l], N * F);
        }
        // dh2 reuses datt's buffer only if sizes allow; use a dedicated area: df2 (size N*F >= N*D required)
        float *dh2 = tf->datt; // [N, Q] with Q == D
        memset(dh2, 0, (size_t)N * D * sizeof(float));
        if (!rc) rc = vt_linear_backward(c, dh2, G(ps, L->w1), G(ps, L->b1), tf->df1, tf->h2[l], W(ps, L->w1), N, D, F1);
        if (!rc) rc = norm_bwd(c, cfg, dxm, G(ps, L->ln2_w), G(ps, L->ln2_b), dh2, tf->xm[l], W(ps, L->ln2_w), tf->mu2[l],
                              tf->rs2[l], N);
        if (rc) break;
        // attention branch: xm = x + attn(norm(x))
        float *dx = dprev ? dprev : dx_in;
        if (dprev) memcpy(dx, dxm, (size_t)N * D * sizeof(float));
        else rc = vt_accumulate(c, dx, dxm, N * D);
        memset(tf->datt, 0, (size_t)N * Q * sizeof(float));
        if (!rc) rc = vt_linear_backward(c, tf->datt, G(ps, L->wo), G(ps, L->bo), dxm, tf->att[l], W(ps, L->wo), N, Q, D);
        memset(tf->dqkv, 0, (size_t)N * QKV * sizeof(float));
        if (!rc)
            rc = vt_attention_backward(c, &ad, tf->dqkv, tf->dqkv + Q, tf->dqkv + Q + KV, tf->datt, tf->probs[l],
                                       tf->qkv[l], tf->qkv[l] + Q, tf->qkv[l] + Q + KV);
        if (!rc && cfg->rope) {
            rc = vt_rope_backward(c, tf->dqkv, QKV, tf->pos, N, cfg->n_head, hd, hd, cfg->rope_base, 1.0f);
            if (!rc) rc = vt_rope_backward(c, tf->dqkv + Q, QKV, tf->pos, N, cfg->n_kv, hd, hd, cfg->rope_base, 1.0f);
        }
        float *dh1 = tf->datt; // attention grads consumed; reuse [N, D]
        memset(dh1, 0, (size_t)N * D * sizeof(float));
        if (!rc) rc = vt_linear_backward(c, dh1, G(ps, L->wq), G(ps, L->bq), tf->dqkv, tf->h1[l], W(ps, L->wq), N, D, QKV);
        if (!rc) rc = norm_bwd(c, cfg, dx, G(ps, L->ln1_w), G(ps, L->ln1_b), dh1, tf->x[l], W(ps, L->ln1_w), tf->mu1[l],
                              tf->rs1[l], N);
        dcur = dx;
    }
    if (!rc && n_run == 0 && dx_in) rc = vt_accumulate(c, dx_in, dout, N * D);
    return rc;
}
