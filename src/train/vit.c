// vit.c - trainable ViT tower (see vit.h).
#include "vit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static float *W(vt_params *ps, int i) { return ps->items[i].data; }
static float *G(vt_params *ps, int i) { return ps->items[i].grad; }

int vt_vit_cfg_from_gguf(const vv_gguf *g, const char *path, vt_vit_cfg *cfg, vv_error *e) {
    uint32_t v[6] = {0}, n_stem = 0, stem_ch = 0;
    static const char *const keys[6] = {"clip.vision.image_size", "clip.vision.patch_size",
                                        "clip.vision.embedding_length", "clip.vision.block_count",
                                        "clip.vision.attention.head_count", "clip.vision.feed_forward_length"};
    vv_error ke = {0}; // key errors, reported with the file's name
    int bad = 0;
    for (int i = 0; i < 6 && !bad; i++) bad = vv_gguf_get_u32(g, keys[i], &v[i], &ke);
    if (!bad && vv_gguf_find_key(g, "clip.vision.stem_count") >= 0)
        bad = vv_gguf_get_u32(g, "clip.vision.stem_count", &n_stem, &ke) ||
              vv_gguf_get_u32(g, "clip.vision.stem_width", &stem_ch, &ke);
    if (bad) return vv_err(e, ke.code ? ke.code : VISVM_ERR_FORMAT, "%s: %s", path, ke.msg);
    for (int i = 0; i < 6; i++)
        if (!v[i] || v[i] > (1u << 16))
            return vv_err(e, VISVM_ERR_FORMAT, "%s: %s = %u out of range", path, keys[i], v[i]);
    if (n_stem > VT_VIT_MAX_STEM || stem_ch > 4096)
        return vv_err(e, VISVM_ERR_FORMAT, "%s: stem of %u stages x %u channels out of range", path, n_stem, stem_ch);
    *cfg = (vt_vit_cfg){(int)v[0], (int)v[1], (int)v[2], (int)v[3], (int)v[4], (int)v[5], (int)n_stem, (int)stem_ch, false};
    return VISVM_OK;
}

int vt_vit_register(vt_vit *v, const vt_vit_cfg *cfg, vt_params *ps, vv_error *e) {
    memset(v, 0, sizeof(*v));
    v->cfg = *cfg;
    if (cfg->patch <= 0 || cfg->image_size % cfg->patch || cfg->width % cfg->heads)
        return vv_err(e, VISVM_ERR_INVALID, "invalid ViT (image %d, patch %d, width %d, heads %d)", cfg->image_size,
                      cfg->patch, cfg->width, cfg->heads);
    if (cfg->stem < 0 || cfg->stem > VT_VIT_MAX_STEM ||
        (cfg->stem > 0 && (cfg->patch != 1 << cfg->stem || cfg->stem_ch < 1 || cfg->stem_ch > 4096)))
        return vv_err(e, VISVM_ERR_INVALID, "invalid ViT stem (%d stages of %d channels; patch %d must be 2^stages)",
                      cfg->stem, cfg->stem_ch, cfg->patch);
    v->G = cfg->image_size / cfg->patch;
    v->T = 1 + v->G * v->G;
    const int64_t D = cfg->width, P = cfg->patch;
    const unsigned ND = VT_PARAM_NO_DECAY;
    int rc = VISVM_OK;
    int64_t cin = 3;
    for (int s = 0; !rc && s < cfg->stem; s++) { // [Cout, 3, 3, Cin]
        const int64_t cout = (int64_t)cfg->stem_ch << s;
        char nm[48];
        snprintf(nm, sizeof(nm), "v.stem.%d.weight", s);
        rc = vt_params_add(ps, nm, 4, (int64_t[]){cout, 3, 3, cin}, 0, &v->stem_w[s], e);
        snprintf(nm, sizeof(nm), "v.stem.%d.bias", s);
        if (!rc) rc = vt_params_add(ps, nm, 1, (int64_t[]){cout}, ND, &v->stem_b[s], e);
        if (cfg->stem_bn) { // gamma, beta; running mean and variance (not trained, kept in checkpoints)
            snprintf(nm, sizeof(nm), "v.stem.%d.bn.weight", s);
            if (!rc) rc = vt_params_add(ps, nm, 1, (int64_t[]){cout}, ND, &v->bn_g[s], e);
            snprintf(nm, sizeof(nm), "v.stem.%d.bn.bias", s);
            if (!rc) rc = vt_params_add(ps, nm, 1, (int64_t[]){cout}, ND, &v->bn_b[s], e);
            snprintf(nm, sizeof(nm), "v.stem.%d.bn.running_mean", s);
            if (!rc) rc = vt_params_add(ps, nm, 1, (int64_t[]){cout}, VT_PARAM_FROZEN, &v->bn_rm[s], e);
            snprintf(nm, sizeof(nm), "v.stem.%d.bn.running_var", s);
            if (!rc) rc = vt_params_add(ps, nm, 1, (int64_t[]){cout}, VT_PARAM_FROZEN, &v->bn_rv[s], e);
        }
        cin = cout;
    }
    if (rc) return rc;
    if (cfg->stem) rc = vt_params_add(ps, "v.patch_embd.weight", 4, (int64_t[]){D, cin, 1, 1}, 0, &v->patch_w, e);
    else rc = vt_params_add(ps, "v.patch_embd.weight", 4, (int64_t[]){D, 3, P, P}, 0, &v->patch_w, e);
    if (!rc) rc = vt_params_add(ps, "v.class_embd", 1, (int64_t[]){D}, ND, &v->cls, e);
    if (!rc) rc = vt_params_add(ps, "v.position_embd.weight", 2, (int64_t[]){v->T, D}, ND, &v->pos, e);
    if (!rc) rc = vt_params_add(ps, "v.pre_ln.weight", 1, (int64_t[]){D}, ND, &v->pre_w, e);
    if (!rc) rc = vt_params_add(ps, "v.pre_ln.bias", 1, (int64_t[]){D}, ND, &v->pre_b, e);
    vt_tf_cfg tc = {cfg->layers, cfg->width, cfg->heads, cfg->heads, cfg->ff, false, true, false, VT_ACT_QUICK_GELU,
                    false, false, 10000.0f, 1e-5f, VT_TF_VISION};
    if (!rc) rc = vt_tf_register(&v->tf, &tc, ps, e);
    return rc;
}

void vt_vit_init(vt_vit *v, vt_params *ps, vv_rng *rng) {
    if (v->cfg.stem) { // He init for the ReLU convolutions; the 1x1 embedding at unit gain (pre-LN follows)
        int64_t cin = 3;
        for (int s = 0; s < v->cfg.stem; s++) {
            vt_param_init_normal(&ps->items[v->stem_w[s]], sqrtf(2.0f / (float)(9 * cin)), rng);
            if (v->cfg.stem_bn) vt_param_fill(&ps->items[v->bn_g[s]], 1.0f), vt_param_fill(&ps->items[v->bn_rv[s]], 1.0f);
            cin = (int64_t)v->cfg.stem_ch << s;
        }
        vt_param_init_normal(&ps->items[v->patch_w], 1.0f / sqrtf((float)cin), rng);
    } else {
        vt_param_init_normal(&ps->items[v->patch_w], 0.02f, rng);
    }
    vt_param_init_normal(&ps->items[v->cls], 0.02f, rng);
    vt_param_init_normal(&ps->items[v->pos], 0.01f, rng);
    vt_param_fill(&ps->items[v->pre_w], 1.0f);
    vt_tf_init(&v->tf, ps, 0.02f, rng);
}

int vt_vit_alloc(vt_vit *v, int max_B, vv_error *e) {
    v->max_B = max_B;
    const size_t B = (size_t)max_B, T = (size_t)v->T, G2 = (size_t)v->G * v->G, D = (size_t)v->cfg.width,
                 K = v->cfg.stem ? 1 : 3 * (size_t)v->cfg.patch * v->cfg.patch;
    int rc = vt_tf_alloc(&v->tf, max_B, v->T, e);
    if (rc) return rc;
    v->cols = vv_aalloc(B * G2 * K * sizeof(float));
    v->pe = vv_aalloc(B * G2 * D * sizeof(float));
    v->x0 = vv_aalloc(B * T * D * sizeof(float));
    v->xp = vv_aalloc(B * T * D * sizeof(float));
    v->mu = vv_aalloc(B * T * sizeof(float));
    v->rs = vv_aalloc(B * T * sizeof(float));
    v->d_xp = vv_aalloc(B * T * D * sizeof(float));
    v->d_x0 = vv_aalloc(B * T * D * sizeof(float));
    v->d_pe = vv_aalloc(B * G2 * D * sizeof(float));
    if (!v->cols || !v->pe || !v->x0 || !v->xp || !v->mu || !v->rs || !v->d_xp || !v->d_x0 || !v->d_pe)
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory for ViT activations");
    size_t hw = (size_t)v->cfg.image_size * v->cfg.image_size, cin = 3, zmax = 0, pmax = 0;
    for (int s = 0; s < v->cfg.stem; s++) {
        const size_t cout = (size_t)v->cfg.stem_ch << s;
        v->s_cols[s] = vv_aalloc(B * hw * 9 * cin * sizeof(float));
        v->s_z[s] = vv_aalloc(B * hw * cout * sizeof(float));
        v->s_a[s] = vv_aalloc(B * hw * cout * sizeof(float));
        v->s_p[s] = vv_aalloc(B * hw / 4 * cout * sizeof(float));
        v->s_arg[s] = vv_aalloc(B * hw / 4 * cout);
        if (!v->s_cols[s] || !v->s_z[s] || !v->s_a[s] || !v->s_p[s] || !v->s_arg[s])
            return vv_err(e, VISVM_ERR_NOMEM, "out of memory for ViT stem activations");
        if (v->cfg.stem_bn) {
            v->s_n[s] = vv_aalloc(B * hw * cout * sizeof(float));
            v->s_mu[s] = vv_aalloc(cout * sizeof(float));
            v->s_var[s] = vv_aalloc(cout * sizeof(float));
            v->s_rs[s] = vv_aalloc(cout * sizeof(float));
            if (!v->s_n[s] || !v->s_mu[s] || !v->s_var[s] || !v->s_rs[s])
                return vv_err(e, VISVM_ERR_NOMEM, "out of memory for ViT stem activations");
        }
        zmax = VV_MAX(zmax, B * hw * cout);
        pmax = VV_MAX(pmax, B * hw / 4 * cout);
        hw /= 4;
        cin = cout;
    }
    if (v->cfg.stem) {
        v->s_dz = vv_aalloc(zmax * sizeof(float));
        v->s_da = vv_aalloc(zmax * sizeof(float));
        v->s_dp[0] = vv_aalloc(pmax * sizeof(float));
        v->s_dp[1] = vv_aalloc(pmax * sizeof(float));
        if (!v->s_dz || !v->s_da || !v->s_dp[0] || !v->s_dp[1])
            return vv_err(e, VISVM_ERR_NOMEM, "out of memory for ViT stem gradients");
    }
    return VISVM_OK;
}

void vt_vit_free(vt_vit *v) {
    if (!v) return;
    vt_tf_free(&v->tf);
    float *b[] = {v->cols, v->pe, v->x0, v->xp, v->mu, v->rs, v->d_xp, v->d_x0, v->d_pe};
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) vv_afree(b[i]);
    for (int s = 0; s < VT_VIT_MAX_STEM; s++) {
        vv_afree(v->s_cols[s]), vv_afree(v->s_z[s]), vv_afree(v->s_a[s]), vv_afree(v->s_p[s]);
        vv_afree(v->s_arg[s]);
        vv_afree(v->s_n[s]), vv_afree(v->s_mu[s]), vv_afree(v->s_var[s]), vv_afree(v->s_rs[s]);
    }
    vv_afree(v->s_dz), vv_afree(v->s_da), vv_afree(v->s_dp[0]), vv_afree(v->s_dp[1]);
    memset(v, 0, sizeof(*v));
}

#define VT_BN_EPS 1e-5f
#define VT_BN_MOMENTUM 0.1f // PyTorch's default: running = 0.9 running + 0.1 batch

// s_z[s] [N, C] -> s_n[s]: batch statistics while training (and the running
// statistics updated, variance unbiased as PyTorch), running statistics in eval.
static int bn_stage(vt_ctx *c, vt_vit *v, vt_params *ps, int s, int64_t N, int64_t C) {
    float *rm = W(ps, v->bn_rm[s]), *rv = W(ps, v->bn_rv[s]);
    if (v->eval)
        return vt_batchnorm_infer(c, v->s_n[s], v->s_z[s], W(ps, v->bn_g[s]), W(ps, v->bn_b[s]), rm, rv, N, C,
                                  VT_BN_EPS);
    int rc = vt_batchnorm_forward(c, v->s_n[s], v->s_mu[s], v->s_var[s], v->s_rs[s], v->s_z[s], W(ps, v->bn_g[s]),
                                  W(ps, v->bn_b[s]), N, C, VT_BN_EPS);
    if (rc) return rc;
    const float unb = N > 1 ? (float)N / (float)(N - 1) : 1.0f;
    for (int64_t k = 0; k < C; k++) {
        rm[k] += VT_BN_MOMENTUM * (v->s_mu[s][k] - rm[k]);
        rv[k] += VT_BN_MOMENTUM * (v->s_var[s][k] * unb - rv[k]);
    }
    return VISVM_OK;
}

void vt_vit_export_view_free(vt_params *view, float *folded) {
    if (view) free(view->items), view->items = NULL;
    free(folded);
}

int vt_vit_export_view(const vt_vit *v, const vt_params *ps, vt_params *view, float **folded, vv_error *e) {
    *view = *ps;
    *folded = NULL;
    view->items = malloc((size_t)(ps->n ? ps->n : 1) * sizeof(vt_param));
    if (!view->items) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    memcpy(view->items, ps->items, (size_t)ps->n * sizeof(vt_param));
    if (!v->cfg.stem || !v->cfg.stem_bn) return VISVM_OK;
    size_t total = 0;
    for (int s = 0; s < v->cfg.stem; s++) total += ps->items[v->stem_w[s]].n + ps->items[v->stem_b[s]].n;
    float *buf = malloc(total * sizeof(float));
    if (!buf) {
        vt_vit_export_view_free(view, NULL);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    float *o = buf;
    for (int s = 0; s < v->cfg.stem; s++) {
        const vt_param *pw = &ps->items[v->stem_w[s]], *pb = &ps->items[v->stem_b[s]];
        const int64_t C = pb->n, K = pw->n / C; // W [Cout, 9 Cin]
        const float *g = ps->items[v->bn_g[s]].data, *be = ps->items[v->bn_b[s]].data,
                    *rm = ps->items[v->bn_rm[s]].data, *rv = ps->items[v->bn_rv[s]].data;
        float *wf = o, *bf = o + pw->n;
        for (int64_t k = 0; k < C; k++) {
            const float a = g[k] / sqrtf(rv[k] + VT_BN_EPS);
            for (int64_t i = 0; i < K; i++) wf[k * K + i] = pw->data[k * K + i] * a;
            bf[k] = (pb->data[k] - rm[k]) * a + be[k];
        }
        view->items[v->stem_w[s]].data = wf;
        view->items[v->stem_b[s]].data = bf;
        o += pw->n + pb->n;
    }
    int n = 0; // drop the BatchNorm tensors
    for (int i = 0; i < ps->n; i++) {
        bool bn = false;
        for (int s = 0; s < v->cfg.stem; s++)
            bn |= i == v->bn_g[s] || i == v->bn_b[s] || i == v->bn_rm[s] || i == v->bn_rv[s];
        if (!bn) view->items[n++] = view->items[i];
    }
    view->n = n;
    *folded = buf;
    return VISVM_OK;
}

int vt_vit_forward(vt_ctx *c, vt_vit *v, vt_params *ps, const float *img, int B) {
    const int D = v->cfg.width, S = v->cfg.image_size, P = v->cfg.patch, T = v->T, G2 = v->G * v->G;
    if (B > v->max_B) return vt_fail(c, VISVM_ERR_INVALID, "ViT batch %d exceeds %d", B, v->max_B);
    int rc;
    if (v->cfg.stem) { // img [B, S, S, 3] -> conv/ReLU/pool stages -> [B*G*G, C] -> 1x1 embedding
        const float *in = img;
        int64_t H = S, cin = 3;
        for (int s = 0; s < v->cfg.stem; s++) {
            const int64_t cout = (int64_t)v->cfg.stem_ch << s, n = (int64_t)B * H * H * cout;
            if ((rc = vt_conv3x3_forward(c, v->s_z[s], v->s_cols[s], in, W(ps, v->stem_w[s]), W(ps, v->stem_b[s]), B,
                                         H, H, cin, cout)))
                return rc;
            const float *z = v->s_z[s]; // ReLU input: the convolution, or its BatchNorm
            if (v->cfg.stem_bn) {
                z = v->s_n[s];
                if ((rc = bn_stage(c, v, ps, s, B * H * H, cout))) return rc;
            }
            if ((rc = vt_act_forward(c, VT_ACT_RELU, v->s_a[s], z, n)) ||
                (rc = vt_maxpool2_forward(c, v->s_p[s], v->s_arg[s], v->s_a[s], B, H, H, cout)))
                return rc;
            in = v->s_p[s];
            H /= 2;
            cin = cout;
        }
        rc = vt_linear_forward(c, v->pe, in, W(ps, v->patch_w), NULL, (int64_t)B * G2, cin, D);
    } else {
        rc = vt_patch_embed_forward(c, v->pe, v->cols, img, W(ps, v->patch_w), NULL, B, S, P, D);
    }
    if (rc) return rc;
    for (int b = 0; b < B; b++) { // [class token, patches] per image
        memcpy(v->x0 + (size_t)b * T * D, W(ps, v->cls), (size_t)D * sizeof(float));
        memcpy(v->x0 + ((size_t)b * T + 1) * D, v->pe + (size_t)b * G2 * D, (size_t)G2 * D * sizeof(float));
    }
    if ((rc = vt_bcast_add_forward(c, v->x0, v->x0, W(ps, v->pos), B, (int64_t)T * D))) return rc;
    if ((rc = vt_layernorm_forward(c, v->xp, v->mu, v->rs, v->x0, W(ps, v->pre_w), W(ps, v->pre_b), (int64_t)B * T, D,
                                   1e-5f)))
        return rc;
    return vt_tf_forward(c, &v->tf, ps, v->xp, B, T, NULL, -1, &v->out);
}

int vt_vit_backward(vt_ctx *c, vt_vit *v, vt_params *ps, float *d_out, int B) {
    const int D = v->cfg.width, S = v->cfg.image_size, P = v->cfg.patch, T = v->T, G2 = v->G * v->G;
    const size_t BTD = (size_t)B * T * D;
    memset(v->d_xp, 0, BTD * sizeof(float));
    int rc = vt_tf_backward(c, &v->tf, ps, d_out, v->d_xp, B, T, NULL, -1);
    if (rc) return rc;
    memset(v->d_x0, 0, BTD * sizeof(float));
    if ((rc = vt_layernorm_backward(c, v->d_x0, G(ps, v->pre_w), G(ps, v->pre_b), v->d_xp, v->x0, W(ps, v->pre_w), v->mu,
                                    v->rs, (int64_t)B * T, D)))
        return rc;
    if ((rc = vt_bcast_add_backward(c, NULL, G(ps, v->pos), v->d_x0, B, (int64_t)T * D))) return rc;
    float *gcls = G(ps, v->cls);
    for (int b = 0; b < B; b++) {
        const float *r = v->d_x0 + (size_t)b * T * D;
        if (gcls)
            for (int i = 0; i < D; i++) gcls[i] += r[i];
        memcpy(v->d_pe + (size_t)b * G2 * D, r + D, (size_t)G2 * D * sizeof(float));
    }
    if (!G(ps, v->patch_w)) return VISVM_OK; // frozen tower
    if (!v->cfg.stem)
        return vt_patch_embed_backward(c, NULL, G(ps, v->patch_w), NULL, v->d_pe, v->cols, W(ps, v->patch_w), B, S, P,
                                       D);
    const int ns = v->cfg.stem;
    int64_t H = S >> (ns - 1), cin = (int64_t)v->cfg.stem_ch << (ns - 1); // last stage's input side, channels
    float *dp = v->s_dp[0];
    memset(dp, 0, (size_t)B * G2 * cin * sizeof(float));
    if ((rc = vt_linear_backward(c, dp, G(ps, v->patch_w), NULL, v->d_pe, v->s_p[ns - 1], W(ps, v->patch_w),
                                 (int64_t)B * G2, cin, D)))
        return rc;
    for (int s = ns - 1; s >= 0; s--) {
        const int64_t cout = (int64_t)v->cfg.stem_ch << s, n = (int64_t)B * H * H * cout;
        const int64_t ci = s ? (int64_t)v->cfg.stem_ch << (s - 1) : 3;
        memset(v->s_da, 0, (size_t)n * sizeof(float));
        memset(v->s_dz, 0, (size_t)n * sizeof(float));
        if ((rc = vt_maxpool2_backward(c, v->s_da, dp, v->s_arg[s], B, H, H, cout))) return rc;
        if (v->cfg.stem_bn) { // ReLU then BatchNorm backward: s_da -> s_dz (scratch) -> s_da as the conv gradient
            if ((rc = vt_act_backward(c, VT_ACT_RELU, v->s_dz, v->s_da, v->s_n[s], n))) return rc;
            memset(v->s_da, 0, (size_t)n * sizeof(float));
            if ((rc = vt_batchnorm_backward(c, v->s_da, G(ps, v->bn_g[s]), G(ps, v->bn_b[s]), v->s_dz, v->s_z[s],
                                            W(ps, v->bn_g[s]), v->s_mu[s], v->s_rs[s], (int64_t)B * H * H, cout)))
                return rc;
            memcpy(v->s_dz, v->s_da, (size_t)n * sizeof(float));
        } else if ((rc = vt_act_backward(c, VT_ACT_RELU, v->s_dz, v->s_da, v->s_z[s], n))) {
            return rc;
        }
        float *dx = NULL;
        if (s) { // gradient of the previous stage's pooled output
            dx = v->s_dp[(ns - s) & 1];
            memset(dx, 0, (size_t)B * H * H * ci * sizeof(float));
        }
        if ((rc = vt_conv3x3_backward(c, dx, G(ps, v->stem_w[s]), G(ps, v->stem_b[s]), v->s_dz, v->s_cols[s],
                                      W(ps, v->stem_w[s]), B, H, H, ci, cout)))
            return rc;
        dp = dx;
        H *= 2;
    }
    return VISVM_OK;
}
