// clip_model.c - trainable CLIP towers, forward/backward, GGUF export.
#include "clip_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../format/gguf.h"
#include "internal.h"

static float *W(vt_params *ps, int i) { return ps->items[i].data; }
static float *G(vt_params *ps, int i) { return ps->items[i].grad; }

static int add(vt_params *ps, const char *name, int nd, int64_t a, int64_t b, int64_t c, int64_t d, unsigned fl,
               int *idx, vv_error *e) {
    int64_t shape[4] = {a, b, c, d};
    return vt_params_add(ps, name, nd, shape, fl, idx, e);
}

void vt_clip_model_free(vt_clip_model *m) {
    if (!m) return;
    vt_vit_free(&m->vis);
    vt_tf_free(&m->txt);
    vt_params_free(&m->ps);
    vv_vocab_free(m->vocab);
    vv_bpe_vocab_free(&m->bpe);
    float *bufs[] = {m->cls_rows, m->clsn, m->post_mu, m->post_rs, m->img_emb, m->tx, m->trows, m->trowsn,
                     m->tpost_mu, m->tpost_rs, m->txt_emb, m->d_img_emb, m->d_txt_emb, m->d_clsn, m->d_cls, m->d_xo,
                     m->d_trowsn, m->d_trows, m->d_to, m->d_tx};
    for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) vv_afree(bufs[i]);
    free(m->tidx);
    free(m->tids);
    free(m->tlens);
    free(m->pool_arg);
    memset(m, 0, sizeof(*m));
}

static int copy_bpe(vv_bpe_vocab *dst, const vv_bpe_vocab *src) {
    memset(dst, 0, sizeof(*dst));
    dst->texts = calloc((size_t)src->n, sizeof(char *));
    dst->scores = malloc((size_t)src->n * sizeof(float));
    dst->types = malloc((size_t)src->n * sizeof(int32_t));
    if (!dst->texts || !dst->scores || !dst->types) return VISVM_ERR_NOMEM;
    dst->n = src->n;
    for (int i = 0; i < src->n; i++)
        if (!(dst->texts[i] = vv_strdup(src->texts[i]))) return VISVM_ERR_NOMEM;
    memcpy(dst->scores, src->scores, (size_t)src->n * sizeof(float));
    memcpy(dst->types, src->types, (size_t)src->n * sizeof(int32_t));
    return VISVM_OK;
}

int vt_clip_model_init(vt_clip_model *m, const vt_clip_hp *hp, const vv_bpe_vocab *bpe, int max_B, int max_Bt,
                       vv_error *e) {
    memset(m, 0, sizeof(*m));
    m->hp = *hp;
    if (hp->image_size % hp->patch || hp->v_width % hp->v_heads || hp->t_width % hp->t_heads || max_B <= 0 || max_Bt < max_B)
        return vv_err(e, VISVM_ERR_INVALID, "invalid CLIP configuration (image %d, patch %d, widths %d/%d)",
                      hp->image_size, hp->patch, hp->v_width, hp->t_width);
    m->T_img = 1 + (hp->image_size / hp->patch) * (hp->image_size / hp->patch);
    m->V = bpe->n;
    m->max_B = max_B;
    m->max_Bt = max_Bt;
    int rc = copy_bpe(&m->bpe, bpe);
    if (rc) return vv_err(e, rc, "out of memory");
    if ((rc = vv_bpe_to_vocab(bpe, &m->vocab, e))) return rc;
    vt_params_init(&m->ps);
    vt_params *ps = &m->ps;
    const int D = hp->v_width, Dt = hp->t_width, E = hp->proj;
    const unsigned ND = VT_PARAM_NO_DECAY;
    vt_vit_cfg vc = {hp->image_size, hp->patch, D, hp->v_layers, hp->v_heads, hp->v_ff, hp->stem, hp->stem_ch, hp->stem_bn};
    rc = vt_vit_register(&m->vis, &vc, ps, e);
    if (!rc) rc = add(ps, "v.post_ln.weight", 1, D, 0, 0, 0, ND, &m->post_w, e);
    if (!rc) rc = add(ps, "v.post_ln.bias", 1, D, 0, 0, 0, ND, &m->post_b, e);
    if (!rc) rc = add(ps, "visual_projection.weight", 2, E, D, 0, 0, 0, &m->vproj, e);
    if (!rc) rc = add(ps, "t.token_embd.weight", 2, m->V, Dt, 0, 0, ND, &m->tok, e);
    if (!rc) rc = add(ps, "t.position_embd.weight", 2, hp->t_ctx, Dt, 0, 0, ND, &m->tpos, e);
    vt_tf_cfg tc = {hp->t_layers, Dt, hp->t_heads, hp->t_heads, hp->t_ff, false, true, false, VT_ACT_QUICK_GELU, true,
                    false, 10000.0f, 1e-5f, VT_TF_TEXT};
    if (!rc) rc = vt_tf_register(&m->txt, &tc, ps, e);
    if (!rc) rc = add(ps, "t.post_ln.weight", 1, Dt, 0, 0, 0, ND, &m->tpost_w, e);
    if (!rc) rc = add(ps, "t.post_ln.bias", 1, Dt, 0, 0, 0, ND, &m->tpost_b, e);
    if (!rc) rc = add(ps, "text_projection.weight", 2, E, Dt, 0, 0, 0, &m->tproj, e);
    if (!rc) rc = add(ps, "logit_scale", 1, 1, 0, 0, 0, ND, &m->logit_scale, e);
    m->aux_w = m->aux_b = -1;
    if (!rc && hp->aux_weight > 0) {
        m->n_aux = vv_world_n_classes() + vv_world_n_colors() + 5;
        rc = add(ps, "aux.weight", 2, m->n_aux, D, 0, 0, 0, &m->aux_w, e);
        if (!rc) rc = add(ps, "aux.bias", 1, m->n_aux, 0, 0, 0, ND, &m->aux_b, e);
    }
    m->dense_w = m->dense_b = -1;
    if (!rc && hp->dense_weight > 0) {
        rc = add(ps, "aux_dense.weight", 2, vv_world_n_classes() + 1, D, 0, 0, 0, &m->dense_w, e);
        if (!rc) rc = add(ps, "aux_dense.bias", 1, vv_world_n_classes() + 1, 0, 0, 0, ND, &m->dense_b, e);
    }
    if (!rc) rc = vt_params_alloc(ps, e);
    if (!rc) rc = vt_vit_alloc(&m->vis, max_B, e);
    if (!rc) rc = vt_tf_alloc(&m->txt, max_Bt, hp->t_ctx, e);
    if (rc) return rc;
    // initialisation (CLIP-like scales)
    vv_rng rng;
    vv_rng_seed(&rng, hp->seed * 7919 + 17);
    vt_vit_init(&m->vis, ps, &rng);
    vt_param_fill(&ps->items[m->post_w], 1.0f);
    vt_param_fill(&ps->items[m->tpost_w], 1.0f);
    vt_tf_init(&m->txt, ps, 0.02f, &rng);
    vt_param_init_normal(&ps->items[m->vproj], 1.0f / sqrtf((float)D), &rng);
    vt_param_init_normal(&ps->items[m->tok], 0.02f, &rng);
    vt_param_init_normal(&ps->items[m->tpos], 0.01f, &rng);
    vt_param_init_normal(&ps->items[m->tproj], 1.0f / sqrtf((float)Dt), &rng);
    // CLIP starts at 1/0.07; at this scale the tiny towers collapse to constant
    // embeddings before the image side sees anything (see clip_train.h), so start lower
    vt_param_fill(&ps->items[m->logit_scale], logf(hp->scale_init > 0 ? hp->scale_init : 1.0f / 0.07f));
    if (m->aux_w >= 0) vt_param_init_normal(&ps->items[m->aux_w], 1.0f / sqrtf((float)D), &rng);
    if (m->dense_w >= 0) vt_param_init_normal(&ps->items[m->dense_w], 1.0f / sqrtf((float)D), &rng);
    // activations
    const size_t B = (size_t)max_B, Bt = (size_t)max_Bt, T = (size_t)m->T_img, Tt = (size_t)hp->t_ctx;
#define A(ptr, n) if (!((ptr) = vv_aalloc((n) * sizeof(float)))) rc = VISVM_ERR_NOMEM;
    A(m->cls_rows, B * D) A(m->clsn, B * D) A(m->post_mu, B) A(m->post_rs, B) A(m->img_emb, B * E)
    A(m->tx, Bt * Tt * Dt) A(m->trows, Bt * Dt) A(m->trowsn, Bt * Dt) A(m->tpost_mu, Bt) A(m->tpost_rs, Bt)
    A(m->txt_emb, Bt * E) A(m->d_img_emb, B * E) A(m->d_txt_emb, Bt * E) A(m->d_clsn, B * D) A(m->d_cls, B * D)
    A(m->d_xo, B * T * D) A(m->d_trowsn, Bt * Dt)
    A(m->d_trows, Bt * Dt) A(m->d_to, Bt * Tt * Dt) A(m->d_tx, Bt * Tt * Dt)
#undef A
    m->tidx = malloc(Bt * sizeof(int32_t));
    m->tids = malloc(Bt * Tt * sizeof(int32_t));
    m->tlens = malloc(Bt * sizeof(int32_t));
    m->pool_arg = malloc(B * D * sizeof(int32_t));
    if (rc || !m->tidx || !m->tids || !m->tlens || !m->pool_arg) return vv_err(e, VISVM_ERR_NOMEM, "out of memory for CLIP activations");
    return VISVM_OK;
}

int vt_clip_image_forward(vt_ctx *c, vt_clip_model *m, const float *img, int B) {
    vt_params *ps = &m->ps;
    const int D = m->hp.v_width, E = m->hp.proj, T = m->T_img;
    int rc = vt_vit_forward(c, &m->vis, ps, img, B);
    if (rc) return rc;
    if (m->hp.max_pool) {
        if ((rc = vt_max_pool_forward(c, m->cls_rows, m->pool_arg, m->vis.out, B, T, D))) return rc;
    } else if (m->hp.mean_pool) {
        if ((rc = vt_mean_pool_forward(c, m->cls_rows, m->vis.out, NULL, B, T, D))) return rc;
    } else {
        for (int b = 0; b < B; b++) memcpy(m->cls_rows + (size_t)b * D, m->vis.out + (size_t)b * T * D, (size_t)D * sizeof(float));
    }
    if ((rc = vt_layernorm_forward(c, m->clsn, m->post_mu, m->post_rs, m->cls_rows, W(ps, m->post_w), W(ps, m->post_b),
                                   B, D, 1e-5f)))
        return rc;
    return vt_linear_forward(c, m->img_emb, m->clsn, W(ps, m->vproj), NULL, B, D, E);
}

int vt_clip_image_backward(vt_ctx *c, vt_clip_model *m, int B) {
    vt_params *ps = &m->ps;
    const int D = m->hp.v_width, E = m->hp.proj, T = m->T_img;
    memset(m->d_clsn, 0, (size_t)B * D * sizeof(float));
    int rc = vt_linear_backward(c, m->d_clsn, G(ps, m->vproj), NULL, m->d_img_emb, m->clsn, W(ps, m->vproj), B, D, E);
    if (!rc && m->d_clsn_extra) rc = vt_accumulate(c, m->d_clsn, m->d_clsn_extra, (int64_t)B * D);
    memset(m->d_cls, 0, (size_t)B * D * sizeof(float));
    if (!rc)
        rc = vt_layernorm_backward(c, m->d_cls, G(ps, m->post_w), G(ps, m->post_b), m->d_clsn, m->cls_rows,
                                   W(ps, m->post_w), m->post_mu, m->post_rs, B, D);
    if (rc) return rc;
    memset(m->d_xo, 0, (size_t)B * T * D * sizeof(float));
    if (m->hp.max_pool) {
        if ((rc = vt_max_pool_backward(c, m->d_xo, m->d_cls, m->pool_arg, B, T, D))) return rc;
    } else if (m->hp.mean_pool) {
        int r2 = vt_mean_pool_backward(c, m->d_xo, m->d_cls, NULL, B, T, D);
        if (r2) return r2;
    } else {
        for (int b = 0; b < B; b++) memcpy(m->d_xo + (size_t)b * T * D, m->d_cls + (size_t)b * D, (size_t)D * sizeof(float));
    }
    if (m->d_xo_extra && (rc = vt_accumulate(c, m->d_xo, m->d_xo_extra, (int64_t)B * T * D))) return rc;
    return vt_vit_backward(c, &m->vis, ps, m->d_xo, B);
}

int vt_clip_dense_step(vt_ctx *c, vt_clip_model *m, const int32_t *labels, int B, float weight, float *z,
                       float *d_tok, float *loss) {
    if (m->dense_w < 0) return vt_fail(c, VISVM_ERR_INVALID, "vt_clip_dense_step: the model has no patch head");
    const int64_t N = (int64_t)B * m->T_img, D = m->hp.v_width, K = vv_world_n_classes() + 1;
    vt_param *pw = &m->ps.items[m->dense_w], *pb = &m->ps.items[m->dense_b];
    int rc = vt_linear_forward(c, z, m->vis.out, pw->data, pb->data, N, D, K);
    if (!rc) rc = vt_cross_entropy(c, z, labels, NULL, N, K, loss, NULL, z, weight);
    if (rc) return rc;
    memset(d_tok, 0, (size_t)(N * D) * sizeof(float));
    if ((rc = vt_linear_backward(c, d_tok, pw->grad, pb->grad, z, m->vis.out, pw->data, N, D, K))) return rc;
    m->d_xo_extra = d_tok;
    return VISVM_OK;
}

int vt_clip_text_forward(vt_ctx *c, vt_clip_model *m, const int32_t *ids, const int32_t *lens, int Bt, int T) {
    vt_params *ps = &m->ps;
    const int D = m->hp.t_width, E = m->hp.proj;
    if (T > m->hp.t_ctx || Bt > m->max_Bt) return vt_fail(c, VISVM_ERR_INVALID, "text batch too large");
    m->t_T = T;
    memcpy(m->tids, ids, (size_t)Bt * T * sizeof(int32_t));
    memcpy(m->tlens, lens, (size_t)Bt * sizeof(int32_t));
    int rc = vt_embedding_forward(c, m->tx, m->tids, W(ps, m->tok), (int64_t)Bt * T, m->V, D);
    if (!rc) rc = vt_bcast_add_forward(c, m->tx, m->tx, W(ps, m->tpos), Bt, (int64_t)T * D);
    float *to = NULL;
    if (!rc) rc = vt_tf_forward(c, &m->txt, ps, m->tx, Bt, T, m->tlens, -1, &to);
    if (m->hp.text_mean_pool) {
        if (!rc) rc = vt_mean_pool_forward(c, m->trows, to, m->tlens, Bt, T, D);
    } else {
        if (!rc) rc = vt_last_token_index(c, m->tidx, m->tlens, Bt, T);
        if (!rc) rc = vt_gather_rows_forward(c, m->trows, to, m->tidx, Bt, (int64_t)Bt * T, D);
    }
    if (!rc)
        rc = vt_layernorm_forward(c, m->trowsn, m->tpost_mu, m->tpost_rs, m->trows, W(ps, m->tpost_w),
                                  W(ps, m->tpost_b), Bt, D, 1e-5f);
    if (!rc) rc = vt_linear_forward(c, m->txt_emb, m->trowsn, W(ps, m->tproj), NULL, Bt, D, E);
    return rc;
}

int vt_clip_text_backward(vt_ctx *c, vt_clip_model *m, int Bt, int T) {
    vt_params *ps = &m->ps;
    const int D = m->hp.t_width, E = m->hp.proj;
    const size_t BTD = (size_t)Bt * T * D;
    memset(m->d_trowsn, 0, (size_t)Bt * D * sizeof(float));
    int rc = vt_linear_backward(c, m->d_trowsn, G(ps, m->tproj), NULL, m->d_txt_emb, m->trowsn, W(ps, m->tproj), Bt, D, E);
    memset(m->d_trows, 0, (size_t)Bt * D * sizeof(float));
    if (!rc)
        rc = vt_layernorm_backward(c, m->d_trows, G(ps, m->tpost_w), G(ps, m->tpost_b), m->d_trowsn, m->trows,
                                   W(ps, m->tpost_w), m->tpost_mu, m->tpost_rs, Bt, D);
    memset(m->d_to, 0, BTD * sizeof(float));
    if (!rc) rc = m->hp.text_mean_pool ? vt_mean_pool_backward(c, m->d_to, m->d_trows, m->tlens, Bt, T, D)
                                       : vt_gather_rows_backward(c, m->d_to, m->d_trows, m->tidx, Bt, (int64_t)Bt * T, D);
    memset(m->d_tx, 0, BTD * sizeof(float));
    if (!rc) rc = vt_tf_backward(c, &m->txt, ps, m->d_to, m->d_tx, Bt, T, m->tlens, -1);
    if (!rc) rc = vt_bcast_add_backward(c, NULL, G(ps, m->tpos), m->d_tx, Bt, (int64_t)T * D);
    if (!rc) rc = vt_embedding_backward(c, G(ps, m->tok), m->d_tx, m->tids, (int64_t)Bt * T, m->V, D);
    return rc;
}

int vt_clip_tokenize(const vt_clip_model *m, const char *const *texts, int n, int32_t *ids, int32_t *lens, int *T,
                     vv_error *e) {
    const int ctx = m->hp.t_ctx;
    vv_ivec tmp = {0};
    int maxT = 1, rc = VISVM_OK;
    // first pass: lengths
    int32_t *all = malloc((size_t)n * ctx * sizeof(int32_t));
    if (!all) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && !rc; i++) {
        tmp.n = 0;
        vv_ivec_push(&tmp, vv_vocab_bos(m->vocab));
        rc = vv_tokenize(m->vocab, texts[i], strlen(texts[i]), false, false, &tmp, e);
        if ((int)tmp.n > ctx - 1) tmp.n = (size_t)(ctx - 1);
        vv_ivec_push(&tmp, vv_vocab_eos(m->vocab));
        lens[i] = (int32_t)tmp.n;
        memcpy(all + (size_t)i * ctx, tmp.v, tmp.n * sizeof(int32_t));
        if ((int)tmp.n > maxT) maxT = (int)tmp.n;
    }
    for (int i = 0; i < n && !rc; i++) {
        for (int t = 0; t < maxT; t++) ids[(size_t)i * maxT + t] = t < lens[i] ? all[(size_t)i * ctx + t] : 0;
    }
    *T = maxT;
    free(all);
    vv_ivec_free(&tmp);
    return rc;
}

// ---------------------------------------------------------------------------
// export

int vt_gguf_set_tokenizer(vv_gguf_writer *w, const vv_bpe_vocab *b) {
    int rc = vv_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    if (!rc) rc = vv_gguf_set_str(w, "tokenizer.ggml.pre", "default");
    if (!rc) rc = vv_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)b->texts, (uint64_t)b->n);
    if (!rc) rc = vv_gguf_set_arr(w, "tokenizer.ggml.scores", VV_GGUF_FLOAT32, b->scores, (uint64_t)b->n);
    if (!rc) rc = vv_gguf_set_arr(w, "tokenizer.ggml.token_type", VV_GGUF_INT32, b->types, (uint64_t)b->n);
    if (!rc) rc = vv_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    if (!rc) rc = vv_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    if (!rc) rc = vv_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    if (!rc) rc = vv_gguf_set_bool(w, "tokenizer.ggml.add_bos_token", true);
    if (!rc) rc = vv_gguf_set_bool(w, "tokenizer.ggml.add_eos_token", false);
    return rc;
}

// Adds every parameter as a tensor (matrices F16, everything else F32). The
// converted buffers are appended to *keep and must outlive the write.
int vt_export_params(vv_gguf_writer *w, const vt_params *ps, const char *const *skip, int n_skip, void ***keep,
                     int *n_keep, vv_error *e) {
    for (int i = 0; i < ps->n; i++) {
        const vt_param *p = &ps->items[i];
        bool sk = false;
        for (int k = 0; k < n_skip; k++) sk |= !strcmp(skip[k], p->name);
        if (sk) continue;
        int64_t ne[4];
        for (int d = 0; d < p->n_dims; d++) ne[d] = p->shape[p->n_dims - 1 - d];
        bool f16 = p->n_dims >= 2;
        void *data = p->data;
        if (f16) {
            uint16_t *h = malloc((size_t)p->n * sizeof(uint16_t));
            void **nk = realloc(*keep, (size_t)(*n_keep + 1) * sizeof(void *));
            if (!h || !nk) {
                free(h);
                if (nk) *keep = nk;
                return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            }
            *keep = nk;
            (*keep)[(*n_keep)++] = h;
            vv_fp32_to_fp16_row(p->data, h, p->n);
            data = h;
        }
        int rc = vv_gguf_add_tensor(w, p->name, f16 ? VV_TYPE_F16 : VV_TYPE_F32, p->n_dims, ne, data);
        if (rc) return vv_err(e, rc, "cannot add tensor %s: %s", p->name, vv_gguf_writer_error(w));
    }
    return VISVM_OK;
}

int vt_clip_export(const vt_clip_model *m, const char *path, vv_error *e) {
    const vt_clip_hp *h = &m->hp;
    vv_gguf_writer *w = vv_gguf_writer_create();
    if (!w) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    vv_gguf_set_str(w, "general.architecture", "clip");
    vv_gguf_set_str(w, "general.name", "visvm-world-clip");
    vv_gguf_set_str(w, "general.description", "tiny CLIP trained by visvm on its synthetic world (reward model)");
    vv_gguf_set_u32(w, "general.file_type", 1);
    vv_gguf_set_bool(w, "clip.has_vision_encoder", true);
    vv_gguf_set_bool(w, "clip.has_text_encoder", true);
    vv_gguf_set_bool(w, "clip.has_llava_projector", false);
    vv_gguf_set_bool(w, "clip.use_gelu", false);
    vv_gguf_set_u32(w, "clip.vision.image_size", (uint32_t)h->image_size);
    vv_gguf_set_u32(w, "clip.vision.patch_size", (uint32_t)h->patch);
    vv_gguf_set_u32(w, "clip.vision.embedding_length", (uint32_t)h->v_width);
    vv_gguf_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)h->v_ff);
    vv_gguf_set_u32(w, "clip.vision.attention.head_count", (uint32_t)h->v_heads);
    vv_gguf_set_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-5f);
    vv_gguf_set_u32(w, "clip.vision.block_count", (uint32_t)h->v_layers);
    if (h->stem) { // hybrid tower: v.stem.N.{weight,bias} convolutions before a 1x1 v.patch_embd
        vv_gguf_set_u32(w, "clip.vision.stem_count", (uint32_t)h->stem);
        vv_gguf_set_u32(w, "clip.vision.stem_width", (uint32_t)h->stem_ch);
    }
    vv_gguf_set_u32(w, "clip.vision.projection_dim", (uint32_t)h->proj);
    vv_gguf_set_str(w, "clip.vision.pooling", h->max_pool ? "max" : h->mean_pool ? "mean" : "cls");
    vv_gguf_set_str(w, "clip.text.pooling", h->text_mean_pool ? "mean" : "eos");
    vv_gguf_set_arr(w, "clip.vision.image_mean", VV_GGUF_FLOAT32, vt_clip_mean, 3);
    vv_gguf_set_arr(w, "clip.vision.image_std", VV_GGUF_FLOAT32, vt_clip_std, 3);
    vv_gguf_set_u32(w, "clip.text.context_length", (uint32_t)h->t_ctx);
    vv_gguf_set_u32(w, "clip.text.embedding_length", (uint32_t)h->t_width);
    vv_gguf_set_u32(w, "clip.text.feed_forward_length", (uint32_t)h->t_ff);
    vv_gguf_set_u32(w, "clip.text.attention.head_count", (uint32_t)h->t_heads);
    vv_gguf_set_f32(w, "clip.text.attention.layer_norm_epsilon", 1e-5f);
    vv_gguf_set_u32(w, "clip.text.block_count", (uint32_t)h->t_layers);
    vv_gguf_set_u32(w, "clip.text.projection_dim", (uint32_t)h->proj);
    vv_gguf_set_f32(w, "clip.logit_scale", m->ps.items[m->logit_scale].data[0]);
    int rc = vt_gguf_set_tokenizer(w, &m->bpe);
    void **keep = NULL;
    int n_keep = 0;
    const char *skip[5] = {"logit_scale", "aux.weight", "aux.bias", "aux_dense.weight", "aux_dense.bias"};
    vt_params view = {0}; // the parameters with the stem's BatchNorm folded into its convolutions
    float *folded = NULL;
    if (rc) vv_err(e, rc, "cannot write tokenizer keys");
    if (!rc) rc = vt_vit_export_view(&m->vis, &m->ps, &view, &folded, e);
    if (!rc) rc = vt_export_params(w, &view, skip, 5, &keep, &n_keep, e);
    if (!rc) rc = vv_gguf_writer_write(w, path, e);
    vt_vit_export_view_free(&view, folded);
    for (int i = 0; i < n_keep; i++) free(keep[i]);
    free(keep);
    vv_gguf_writer_free(w);
    return rc;
}
