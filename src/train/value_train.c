// value_train.c - TD(0) training of the VisVM value model (see value_train.h).
#include "value_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../eval/svg.h"
#include "../eval/world_eval.h"
#include "../format/gguf.h"
#include "../gen/llava.h"
#include "../tensor/quants.h"
#include "../text/vocab.h"
#include "ckpt.h"
#include "clip_model.h"
#include "data.h"
#include "internal.h"
#include "tf.h"
#include "vit.h"

vt_value_hp vt_value_default_hp(void) {
    vt_value_hp h;
    memset(&h, 0, sizeof(h));
    h.clip_path = "models/world/clip.gguf";
    h.policy_text = "models/world/vlm-text.gguf";
    h.gamma = 0.9f;
    h.done_mask = true;
    h.reward_offset = NAN;
    h.freeze_vision = true;
    h.batch = 64;
    h.group = 1;
    h.steps = 3000;
    h.warmup = 100;
    h.lr = 3e-4f;
    h.lr_min = 1e-5f;
    h.weight_decay = 0.0f;
    h.clip_norm = 1.0f;
    h.seed = 1;
    h.log_every = 20;
    h.eval_every = 500;
    h.probe_scenes = 200;
    return h;
}

static float *W(vt_params *ps, int i) { return ps->items[i].data; }
static float *G(vt_params *ps, int i) { return ps->items[i].grad; }

typedef struct {
    vt_params ps;
    vt_vit vit;
    vt_tf dec;
    int mm0_w, mm0_b, mm2_w, mm2_b, tok, onorm, head_w, head_b;
    int d, V, n_img, S;
    vv_vocab *vocab;
    int max_B, max_L;
    float *patches, *p1, *p1a, *img_emb, *x0, *xn, *rs, *hl, *val;
    float *d_val, *d_hl, *d_xn, *d_xo, *d_x0, *d_img_emb, *d_p1a, *d_p1, *d_patches, *d_vit;
    int32_t *ids, *lens, *last;
} vmodel;

static void vmodel_free(vmodel *m) {
    vt_vit_free(&m->vit);
    vt_tf_free(&m->dec);
    vt_params_free(&m->ps);
    vv_vocab_free(m->vocab);
    float *b[] = {m->patches, m->p1, m->p1a, m->img_emb, m->x0, m->xn, m->rs, m->hl, m->val, m->d_val, m->d_hl,
                  m->d_xn, m->d_xo, m->d_x0, m->d_img_emb, m->d_p1a, m->d_p1, m->d_patches, m->d_vit};
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) vv_afree(b[i]);
    free(m->ids);
    free(m->lens);
    free(m->last);
}

// Value head = alpha (W_yes - W_no) from the policy's output layer [V, d]: V
// starts as the model's yes/no margin (a reward model read off an LM's answer).
static int head_from_yes_no(vmodel *m, const char *path, float alpha, vv_error *e) {
    vv_gguf *g = NULL;
    vv_ivec y = {0}, n = {0};
    int rc = vv_gguf_open(path, &g, e);
    const vv_tensor *t = rc ? NULL : vv_gguf_find_tensor(g, "output.weight");
    if (!rc && (!t || vv_tensor_nelements(t) != (int64_t)m->V * m->d))
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: no output.weight [%d, %d] for --head-yes-no", path, m->V, m->d);
    if (!rc) rc = vv_tokenize(m->vocab, "yes", 3, false, false, &y, e);
    if (!rc) rc = vv_tokenize(m->vocab, "no", 2, false, false, &n, e);
    if (!rc && (!y.n || !n.n || y.v[0] == n.v[0]))
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: \"yes\" and \"no\" do not start with different tokens", path);
    float *all = rc ? NULL : malloc((size_t)m->V * m->d * sizeof(float));
    if (!rc && !all) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc && (rc = vv_dequantize_row(t->type, t->data, all, (int64_t)m->V * m->d)))
        vv_err(e, rc, "%s: cannot read output.weight", path);
    if (!rc) {
        float *w = W(&m->ps, m->head_w);
        const float *ry = all + (size_t)y.v[0] * m->d, *rn = all + (size_t)n.v[0] * m->d;
        for (int i = 0; i < m->d; i++) w[i] = alpha * (ry[i] - rn[i]);
        W(&m->ps, m->head_b)[0] = 0;
        printf("value model: head = %g x (yes - no) rows of %s's output layer\n", alpha, path);
    }
    free(all);
    vv_ivec_free(&y);
    vv_ivec_free(&n);
    vv_gguf_close(g);
    return rc;
}

static int vmodel_init(vmodel *m, const vt_value_hp *hp, int max_B, vv_error *e) {
    memset(m, 0, sizeof(*m));
    vv_gguf *cg = NULL, *pg = NULL;
    int rc = vv_gguf_open(hp->clip_path, &cg, e);
    if (!rc) rc = vv_gguf_open(hp->policy_text, &pg, e);
    uint32_t D = 0, L = 0, H = 0, KV = 0, F = 0;
    float rope = 10000.0f;
    vt_vit_cfg vc = {0}; // the CLIP's tower (BatchNorm arrives folded)
    if (!rc) rc = vt_vit_cfg_from_gguf(cg, hp->clip_path, &vc, e);
    if (!rc) rc = vv_gguf_get_u32(pg, "llama.embedding_length", &D, e) || vv_gguf_get_u32(pg, "llama.block_count", &L, e) ||
                  vv_gguf_get_u32(pg, "llama.attention.head_count", &H, e) ||
                  vv_gguf_get_u32(pg, "llama.attention.head_count_kv", &KV, e) ||
                  vv_gguf_get_u32(pg, "llama.feed_forward_length", &F, e) ||
                  vv_gguf_get_f32_def(pg, "llama.rope.freq_base", 10000.0f, &rope, e);
    if (!rc) rc = vv_vocab_load(pg, &m->vocab, e);
    vv_gguf_close(cg);
    vv_gguf_close(pg);
    if (rc) return rc ? (e && e->code ? e->code : VISVM_ERR_FORMAT) : rc;
    m->d = (int)D;
    m->V = vv_vocab_n(m->vocab);
    m->S = vc.image_size;
    m->max_B = max_B;
    m->max_L = 0;
    vt_params *ps = &m->ps;
    vt_params_init(ps);
    const unsigned ND = VT_PARAM_NO_DECAY;
    const unsigned FV = hp->freeze_vision || hp->head_only ? VT_PARAM_FROZEN : 0;
    const unsigned FH = hp->head_only ? VT_PARAM_FROZEN : 0;
    const int64_t Dv = vc.width;
    rc = vt_vit_register(&m->vit, &vc, ps, e);
    m->n_img = m->vit.G * m->vit.G;
    if (!rc && FV) // frozen tower: mark every v.* tensor
        for (int i = 0; i < ps->n; i++) ps->items[i].flags |= VT_PARAM_FROZEN;
    int n_vit = ps->n;
    if (!rc) rc = vt_params_add(ps, "mm.0.weight", 2, (int64_t[]){D, Dv}, FH, &m->mm0_w, e);
    if (!rc) rc = vt_params_add(ps, "mm.0.bias", 1, (int64_t[]){D}, ND | FH, &m->mm0_b, e);
    if (!rc) rc = vt_params_add(ps, "mm.2.weight", 2, (int64_t[]){D, D}, FH, &m->mm2_w, e);
    if (!rc) rc = vt_params_add(ps, "mm.2.bias", 1, (int64_t[]){D}, ND | FH, &m->mm2_b, e);
    if (!rc) rc = vt_params_add(ps, "token_embd.weight", 2, (int64_t[]){m->V, D}, ND | FH, &m->tok, e);
    vt_tf_cfg dc = {(int)L, (int)D, (int)H, (int)KV, (int)F, true, false, true, VT_ACT_SILU, true, true, rope, 1e-5f, VT_TF_LLAMA};
    int n_before_dec = ps->n;
    if (!rc) rc = vt_tf_register(&m->dec, &dc, ps, e);
    if (!rc && FH)
        for (int i = n_before_dec; i < ps->n; i++) ps->items[i].flags |= VT_PARAM_FROZEN;
    if (!rc) rc = vt_params_add(ps, "output_norm.weight", 1, (int64_t[]){D}, ND | FH, &m->onorm, e);
    if (!rc) rc = vt_params_add(ps, "value_head.weight", 1, (int64_t[]){D}, ND, &m->head_w, e);
    if (!rc) rc = vt_params_add(ps, "value_head.bias", 1, (int64_t[]){1}, ND, &m->head_b, e);
    if (!rc) rc = vt_params_alloc(ps, e);
    if (rc) return rc;
    (void)n_vit;
    // initialisation: projector and head random, then the pretrained parts
    vv_rng rng;
    vv_rng_seed(&rng, hp->seed * 31337 + 5);
    vt_param_init_normal(&ps->items[m->mm0_w], 1.0f / sqrtf((float)Dv), &rng);
    vt_param_init_normal(&ps->items[m->mm2_w], 1.0f / sqrtf((float)D), &rng);
    vt_param_init_normal(&ps->items[m->head_w], 0.01f, &rng);
    int n1 = 0, n2 = 0;
    if ((rc = vt_params_load_gguf(ps, hp->clip_path, NULL, &n1, e)) ||
        (rc = vt_params_load_gguf(ps, hp->policy_text, NULL, &n2, e)))
        return rc;
    printf("value model: %d tensors from %s, %d from %s\n", n1, hp->clip_path, n2, hp->policy_text);
    if (hp->head_yes_no > 0 && (rc = head_from_yes_no(m, hp->policy_text, hp->head_yes_no, e))) return rc;
    if (hp->vlm_mmproj) { // a VLM's eyes: its tower (CLIP's, if it was frozen) and its trained projector
        int n_mm = 0, n_v = 0;
        if ((rc = vt_params_load_gguf_prefix(ps, hp->vlm_mmproj, "mm.", &n_mm, e)) ||
            (rc = vt_params_load_gguf_prefix(ps, hp->vlm_mmproj, "v.", &n_v, e)))
            return rc;
        if (n_mm != 4)
            return vv_err(e, VISVM_ERR_FORMAT, "%s: %d of the projector's 4 tensors (mm.0/mm.2 weight, bias) found",
                          hp->vlm_mmproj, n_mm);
        printf("value model: projector and %d tower tensors from %s\n", n_v, hp->vlm_mmproj);
    }
    // activations: longest state is "USER: " + image + a sentence (with the caption so far: up
    // to 320 tokens, the engine's room per state) + " ASSISTANT:"
    m->max_L = 3 + m->n_img + (hp->with_prefix ? 320 : 96);
    const size_t B = (size_t)max_B, Lm = (size_t)m->max_L, Ni = B * (size_t)m->n_img, T = (size_t)m->vit.T;
    if ((rc = vt_vit_alloc(&m->vit, max_B, e)) || (rc = vt_tf_alloc(&m->dec, max_B, m->max_L, e))) return rc;
#define A(p, n) if (!((p) = vv_aalloc((n) * sizeof(float)))) rc = VISVM_ERR_NOMEM;
    A(m->patches, Ni * Dv) A(m->p1, Ni * D) A(m->p1a, Ni * D) A(m->img_emb, Ni * D) A(m->x0, B * Lm * D)
    A(m->xn, B * Lm * D) A(m->rs, B * Lm) A(m->hl, B * D) A(m->val, B) A(m->d_val, B) A(m->d_hl, B * D)
    A(m->d_xn, B * Lm * D) A(m->d_xo, B * Lm * D) A(m->d_x0, B * Lm * D) A(m->d_img_emb, Ni * D) A(m->d_p1a, Ni * D)
    A(m->d_p1, Ni * D) A(m->d_patches, Ni * Dv) A(m->d_vit, B * T * Dv)
#undef A
    m->ids = malloc(B * Lm * sizeof(int32_t));
    m->lens = malloc(B * sizeof(int32_t));
    m->last = malloc(B * sizeof(int32_t));
    if (rc || !m->ids || !m->lens || !m->last) return vv_err(e, VISVM_ERR_NOMEM, "out of memory for value activations");
    return VISVM_OK;
}

// Image tower + projector for B images: m->img_emb [B * n_img, d].
static int images_forward(vt_ctx *c, vmodel *m, const float *img, int B) {
    vt_params *ps = &m->ps;
    const int Dv = m->vit.cfg.width, D = m->d, Ni = m->n_img, T = m->vit.T;
    int rc = vt_vit_forward(c, &m->vit, ps, img, B);
    for (int b = 0; !rc && b < B; b++)
        memcpy(m->patches + (size_t)b * Ni * Dv, m->vit.out + ((size_t)b * T + 1) * Dv, (size_t)Ni * Dv * sizeof(float));
    if (!rc) rc = vt_linear_forward(c, m->p1, m->patches, W(ps, m->mm0_w), W(ps, m->mm0_b), (int64_t)B * Ni, Dv, D);
    if (!rc) rc = vt_act_forward(c, VT_ACT_GELU_ERF, m->p1a, m->p1, (int64_t)B * Ni * D);
    if (!rc) rc = vt_linear_forward(c, m->img_emb, m->p1a, W(ps, m->mm2_w), W(ps, m->mm2_b), (int64_t)B * Ni, D, D);
    return rc;
}

// Token ids of the states (the text after <image>); pre = BOS "USER:" "▁".
static int build_states(vmodel *m, const char *const *sent, int B, vv_ivec *pre, vv_ivec *posts, int *L_out, vv_error *e) {
    int L = 0, rc = VISVM_OK;
    for (int b = 0; b < B && !rc; b++) {
        vv_buf full = {0};
        vv_ivec p0 = {0};
        bool hi;
        posts[b].n = 0;
        char *sd = vv_defuse_image_marker(sent[b]);
        rc = sd ? vv_chat_format(VISVM_TEMPLATE_LLAVA15, sd, true, &full) : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        free(sd);
        if (!rc) rc = vv_llava_tokenize(m->vocab, full.v, &p0, &posts[b], &hi, e);
        if (!rc && b == 0) {
            pre->n = 0;
            vv_ivec_append(pre, p0.v, p0.n);
        }
        if ((int)posts[b].n > m->max_L - 3 - m->n_img) posts[b].n = (size_t)(m->max_L - 3 - m->n_img);
        int len = (int)(pre->n + (size_t)m->n_img + posts[b].n);
        m->lens[b] = len;
        L = len > L ? len : L;
        vv_buf_free(&full);
        vv_ivec_free(&p0);
    }
    *L_out = L;
    return rc;
}

// Values of B states whose images are already projected (m->img_emb).
static int values_forward(vt_ctx *c, vmodel *m, const vv_ivec *pre, const vv_ivec *posts, int B, int L, float **xo_out) {
    vt_params *ps = &m->ps;
    const int D = m->d, Ni = m->n_img;
    for (int b = 0; b < B; b++) {
        int32_t *id = m->ids + (size_t)b * L;
        int p = 0;
        for (size_t i = 0; i < pre->n; i++) id[p++] = pre->v[i];
        for (int i = 0; i < Ni; i++) id[p++] = 0;
        for (size_t i = 0; i < posts[b].n; i++) id[p++] = posts[b].v[i];
        for (; p < L; p++) id[p] = 0;
        m->last[b] = b * L + m->lens[b] - 1;
    }
    int rc = vt_embedding_forward(c, m->x0, m->ids, W(ps, m->tok), (int64_t)B * L, m->V, D);
    for (int b = 0; !rc && b < B; b++)
        memcpy(m->x0 + ((size_t)b * L + pre->n) * D, m->img_emb + (size_t)b * Ni * D, (size_t)Ni * D * sizeof(float));
    float *xo = NULL;
    if (!rc) rc = vt_tf_forward(c, &m->dec, ps, m->x0, B, L, m->lens, -1, &xo);
    if (!rc) rc = vt_rmsnorm_forward(c, m->xn, m->rs, xo, W(ps, m->onorm), (int64_t)B * L, D, 1e-5f);
    if (!rc) rc = vt_gather_rows_forward(c, m->hl, m->xn, m->last, B, (int64_t)B * L, D);
    if (!rc) rc = vt_linear_forward(c, m->val, m->hl, W(ps, m->head_w), W(ps, m->head_b), B, D, 1);
    if (xo_out) *xo_out = xo;
    return rc;
}

// Backward from m->d_val through head, decoder, projector (and the tower unless frozen).
static int values_backward(vt_ctx *c, vmodel *m, const vv_ivec *pre, int B, int L, float *xo, bool vision_trainable) {
    vt_params *ps = &m->ps;
    const int D = m->d, Ni = m->n_img, Dv = m->vit.cfg.width, T = m->vit.T;
    memset(m->d_hl, 0, (size_t)B * D * sizeof(float));
    int rc = vt_linear_backward(c, m->d_hl, G(ps, m->head_w), G(ps, m->head_b), m->d_val, m->hl, W(ps, m->head_w), B, D, 1);
    if (rc || !G(ps, m->onorm)) return rc; // head only: nothing more to train
    memset(m->d_xn, 0, (size_t)B * L * D * sizeof(float));
    if (!rc) rc = vt_gather_rows_backward(c, m->d_xn, m->d_hl, m->last, B, (int64_t)B * L, D);
    memset(m->d_xo, 0, (size_t)B * L * D * sizeof(float));
    if (!rc) rc = vt_rmsnorm_backward(c, m->d_xo, G(ps, m->onorm), m->d_xn, xo, W(ps, m->onorm), m->rs, (int64_t)B * L, D);
    memset(m->d_x0, 0, (size_t)B * L * D * sizeof(float));
    if (!rc) rc = vt_tf_backward(c, &m->dec, ps, m->d_xo, m->d_x0, B, L, m->lens, -1);
    for (int b = 0; !rc && b < B; b++) {
        float *r = m->d_x0 + ((size_t)b * L + pre->n) * D;
        memcpy(m->d_img_emb + (size_t)b * Ni * D, r, (size_t)Ni * D * sizeof(float));
        memset(r, 0, (size_t)Ni * D * sizeof(float));
    }
    if (!rc) rc = vt_embedding_backward(c, G(ps, m->tok), m->d_x0, m->ids, (int64_t)B * L, m->V, D);
    const int64_t NI = (int64_t)B * Ni;
    memset(m->d_p1a, 0, (size_t)NI * D * sizeof(float));
    if (!rc) rc = vt_linear_backward(c, m->d_p1a, G(ps, m->mm2_w), G(ps, m->mm2_b), m->d_img_emb, m->p1a, W(ps, m->mm2_w), NI, D, D);
    memset(m->d_p1, 0, (size_t)NI * D * sizeof(float));
    if (!rc) rc = vt_act_backward(c, VT_ACT_GELU_ERF, m->d_p1, m->d_p1a, m->p1, NI * D);
    if (!vision_trainable) {
        if (!rc) rc = vt_linear_backward(c, NULL, G(ps, m->mm0_w), G(ps, m->mm0_b), m->d_p1, m->patches, W(ps, m->mm0_w), NI, Dv, D);
        return rc;
    }
    memset(m->d_patches, 0, (size_t)NI * Dv * sizeof(float));
    if (!rc) rc = vt_linear_backward(c, m->d_patches, G(ps, m->mm0_w), G(ps, m->mm0_b), m->d_p1, m->patches, W(ps, m->mm0_w), NI, Dv, D);
    memset(m->d_vit, 0, (size_t)B * T * Dv * sizeof(float));
    for (int b = 0; !rc && b < B; b++)
        memcpy(m->d_vit + ((size_t)b * T + 1) * Dv, m->d_patches + (size_t)b * Ni * Dv, (size_t)Ni * Dv * sizeof(float));
    if (!rc) rc = vt_vit_backward(c, &m->vit, ps, m->d_vit, B);
    return rc;
}

// ---------------------------------------------------------------------------
// images (normalised once, cached)

typedef struct {
    float **img;
    int n;
} img_cache;

static int get_image(img_cache *ic, const vt_td_set *set, int i, int S, float **out, vv_error *e) {
    if (!ic->img[i]) {
        vv_image im = {0};
        int rc = vv_image_load_file(set->images[i], &im, e);
        float *buf = rc ? NULL : malloc((size_t)S * S * 3 * sizeof(float));
        if (!rc && !buf) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        if (!rc) rc = vt_image_normalize(&im, S, buf, e);
        vv_image_free(&im);
        if (rc) {
            free(buf);
            return rc;
        }
        ic->img[i] = buf;
    }
    *out = ic->img[i];
    return VISVM_OK;
}

// TD step on pairs idx[0..B): loss (and gradients when train).
// With hp->rank_weight > 0 and train, also the group-centred MSE over runs of
// pairs of one image (*rank_loss; the batch is sampled by image then).
static int td_batch(vt_ctx *c, vmodel *m, const vt_value_hp *hp, const vt_td_set *set, img_cache *ic, const int *idx,
                    int B, float offset, bool train, float *loss, float *rank_loss, float *vcur, vv_error *e) {
    const int S = m->S;
    float *img = vv_aalloc((size_t)B * S * S * 3 * sizeof(float));
    const char **sent = calloc((size_t)B, sizeof(char *));
    vv_ivec pre = {0}, *posts = calloc((size_t)B, sizeof(vv_ivec));
    float *target = malloc((size_t)B * sizeof(float));
    int rc = img && sent && posts && target ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int b = 0; b < B && !rc; b++) {
        float *src;
        if (!(rc = get_image(ic, set, set->pairs[idx[b]].image, S, &src, e)))
            memcpy(img + (size_t)b * S * S * 3, src, (size_t)S * S * 3 * sizeof(float));
    }
    if (!rc && (rc = images_forward(c, m, img, B))) vv_err(e, rc, "%s", vt_ctx_error(c));
    // targets: (r - offset) + gamma V(s') without gradient
    int L = 0;
    for (int b = 0; sent && b < B; b++) sent[b] = set->state_next ? set->state_next[idx[b]] : set->pairs[idx[b]].next;
    if (!rc) rc = build_states(m, sent, B, &pre, posts, &L, e);
    if (!rc && (rc = values_forward(c, m, &pre, posts, B, L, NULL))) vv_err(e, rc, "%s", vt_ctx_error(c));
    for (int b = 0; b < B && !rc; b++) {
        const vt_td_pair *p = &set->pairs[idx[b]];
        target[b] = vt_td_target(p->reward, offset, hp->gamma, m->val[b], p->terminal, hp->done_mask);
    }
    // V(s) with gradient
    for (int b = 0; sent && b < B; b++) sent[b] = set->state_cur ? set->state_cur[idx[b]] : set->pairs[idx[b]].cur;
    float *xo = NULL;
    if (!rc) rc = build_states(m, sent, B, &pre, posts, &L, e);
    if (!rc && (rc = values_forward(c, m, &pre, posts, B, L, &xo))) vv_err(e, rc, "%s", vt_ctx_error(c));
    if (!rc && vcur) memcpy(vcur, m->val, (size_t)B * sizeof(float));
    if (!rc) rc = vt_mse(c, m->val, target, NULL, B, loss, train ? m->d_val : NULL, 1.0f);
    if (!rc && train && hp->rank_weight > 0 && rank_loss) {
        int *grp = malloc((size_t)B * sizeof(int));
        if (!grp) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        for (int b = 0; grp && b < B; b++) grp[b] = set->pairs[idx[b]].image;
        if (!rc && (rc = vt_group_centred_mse(c, m->val, target, grp, B, rank_loss, m->d_val, hp->rank_weight)))
            vv_err(e, rc, "%s", vt_ctx_error(c));
        free(grp);
    }
    if (!rc && train && (rc = values_backward(c, m, &pre, B, L, xo, !(hp->freeze_vision || hp->head_only))))
        vv_err(e, rc, "%s", vt_ctx_error(c));
    vv_afree(img);
    free(sent);
    for (int b = 0; posts && b < B; b++) vv_ivec_free(&posts[b]);
    free(posts);
    vv_ivec_free(&pre);
    free(target);
    return rc;
}

// ---------------------------------------------------------------------------
// evaluation: held-out TD loss, correlation of V(s) with the Monte-Carlo return

typedef struct {
    double td_loss, corr, mean_v, mean_g;
    int n;
    vv_auc auc_v, auc_r; // within-image AUC of V and of the CLIP reward (with ground truth)
    vv_auc auc_g;        // ... and of the realised discounted return (what V regresses on)
    vv_auc sib_v, sib_r, sib_g, sib_f; // siblings only (same image and position): V, reward, return, future part
} value_eval;

typedef struct { // held-out ground truth for the within-image AUC
    vv_world_scene *scenes;
    int n;
    vv_chair *ch;
} val_truth;

// Labels the distinct sentences of pairs sel[0..k) (one image, scene sc) and adds them to
// the AUCs of V, the reward, the return and the future part of the return (g - (r - offset)).
static void auc_add(const val_truth *t, const vv_world_scene *sc, const vt_td_set *set, const float *v, const double *g,
                    float offset, const int *sel, int k, const char **sent, int *keep, signed char *lab, float *buf,
                    vv_auc *auc[4]) {
    for (int i = 0; i < k; i++) sent[i] = set->pairs[sel[i]].cur;
    const int ns = vv_world_label_distinct(t->ch, sc, sent, k, keep, lab);
    for (int w = 0; w < 4; w++) {
        if (!auc[w]) continue;
        for (int j = 0; j < ns; j++) {
            const int i = sel[keep[j]];
            const float r = set->pairs[i].reward;
            buf[j] = w == 0 ? v[i] : w == 1 ? r : w == 2 ? (float)g[i] : (float)(g[i] - (r - offset));
        }
        vv_auc_add_image(auc[w], buf, lab, ns);
    }
}

// Within-image AUCs over the first n pairs (whole responses; pos [n]: index of the
// sentence in its response), labelled against the scenes (world_eval.h): all of
// an image's distinct sentences, and siblings only (same image, same position).
static int truth_auc(const val_truth *t, const vt_td_set *set, const float *v, const double *g, const int *pos, int n,
                     float offset, value_eval *out, vv_error *e) {
    const size_t m = (size_t)(n ? n : 1);
    int hint = 0, *keep = malloc(m * sizeof(int)), *sel = malloc(m * sizeof(int));
    float *buf = malloc(m * sizeof(float));
    signed char *lab = malloc(m);
    const char **sent = malloc(m * sizeof(char *));
    int rc = keep && sel && buf && lab && sent ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    vv_auc *all[4] = {&out->auc_v, &out->auc_r, &out->auc_g, NULL};
    vv_auc *sib[4] = {&out->sib_v, &out->sib_r, &out->sib_g, &out->sib_f};
    for (int i0 = 0, i1; i0 < n && !rc; i0 = i1) {
        const int im = set->pairs[i0].image;
        for (i1 = i0; i1 < n && set->pairs[i1].image == im;) i1++;
        const vv_world_scene *sc = vv_world_find_scene(t->scenes, t->n, set->images[im], &hint);
        if (!sc) {
            rc = vv_err(e, VISVM_ERR_INVALID, "held-out image %s is not in the --val-world scenes", set->images[im]);
            break;
        }
        int k = 0, max_pos = 0;
        for (int i = i0; i < i1; i++) {
            sel[k++] = i;
            max_pos = VV_MAX(max_pos, pos[i]);
        }
        auc_add(t, sc, set, v, g, offset, sel, k, sent, keep, lab, buf, all);
        for (int p = 0; p <= max_pos; p++) {
            k = 0;
            for (int i = i0; i < i1; i++)
                if (pos[i] == p) sel[k++] = i;
            auc_add(t, sc, set, v, g, offset, sel, k, sent, keep, lab, buf, sib);
        }
    }
    free(keep), free(sel), free(buf), free(lab), free(sent);
    return rc;
}

static int evaluate(vt_ctx *c, vmodel *m, const vt_value_hp *hp, const vt_td_set *set, img_cache *ic, float offset,
                    int max_pairs, const val_truth *truth, value_eval *out, vv_error *e) {
    memset(out, 0, sizeof(*out));
    int n = VV_MIN(set->n_pairs, max_pairs);
    // whole responses only, so the return is defined
    int n_take = 0;
    for (int r = 0; r < set->n_resp && n_take + set->resp_len[r] <= n; r++) n_take += set->resp_len[r];
    if (n_take == 0) return VISVM_OK;
    float *v = malloc((size_t)n_take * sizeof(float));
    double *g = malloc((size_t)n_take * sizeof(double));
    int *idx = malloc((size_t)m->max_B * sizeof(int)), *pos = malloc((size_t)n_take * sizeof(int));
    int rc = v && g && idx && pos ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    double loss_sum = 0;
    for (int i0 = 0; i0 < n_take && !rc; i0 += m->max_B) {
        int k = VV_MIN(m->max_B, n_take - i0);
        for (int j = 0; j < k; j++) idx[j] = i0 + j;
        float l = 0;
        rc = td_batch(c, m, hp, set, ic, idx, k, offset, false, &l, NULL, v + i0, e);
        loss_sum += (double)l * k;
    }
    // returns: G_t = (r_t - offset) + gamma G_{t+1}, terminal 0
    for (int r = 0, done = 0; r < set->n_resp && !rc; r++) {
        int f = set->resp_first[r], len = set->resp_len[r];
        if (done + len > n_take) break;
        double G = 0;
        for (int t = len - 1; t >= 0; t--) {
            G = (set->pairs[f + t].reward - offset) + hp->gamma * G;
            g[f + t] = G;
            pos[f + t] = t;
        }
        done += len;
    }
    if (!rc) {
        double sv = 0, sg = 0, svv = 0, sgg = 0, svg = 0;
        for (int i = 0; i < n_take; i++) {
            sv += v[i];
            sg += g[i];
            svv += (double)v[i] * v[i];
            sgg += g[i] * g[i];
            svg += v[i] * g[i];
        }
        double N = n_take, cv = svv / N - (sv / N) * (sv / N), cg = sgg / N - (sg / N) * (sg / N);
        out->corr = (svg / N - sv / N * sg / N) / (sqrt(cv * cg) + 1e-12);
        out->mean_v = sv / N;
        out->mean_g = sg / N;
        out->td_loss = loss_sum / N;
        out->n = n_take;
        if (truth && truth->n) rc = truth_auc(truth, set, v, g, pos, n_take, offset, out, e);
    }
    free(v);
    free(g);
    free(idx);
    free(pos);
    return rc;
}

// Probe on world validation scenes: V(true object sentence) > V(same sentence with an absent same-theme class).
static int probe(vt_ctx *c, vmodel *m, int n_scenes, double *acc, vv_error *e) {
    vv_world_params wp = vv_world_default_params();
    int hit = 0, tot = 0, rc = VISVM_OK;
    float *img = vv_aalloc((size_t)m->S * m->S * 3 * sizeof(float));
    vv_ivec pre = {0}, posts[2] = {{0}, {0}};
    if (!img) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_scenes && !rc; i++) {
        vv_world_scene s;
        vv_world_sentence *ss = NULL;
        int ns = 0;
        uint64_t seed = vv_world_split_base(VV_WORLD_VAL) + 500000 + (uint64_t)i;
        if ((rc = vv_world_scene_make(&wp, seed, &s, e))) break;
        rc = vt_scene_image(&wp, &s, m->S, img, e);
        if (!rc) rc = vv_world_sentences(&s, seed, &ss, &ns, e);
        if (!rc) rc = images_forward(c, m, img, 1);
        for (int j = 0; j < ns && !rc; j++) {
            if (ss[j].kind != VV_WS_NEG_ABSENT_THEME) continue;
            const char *two[2] = {ss[ss[j].pos_index].text, ss[j].text};
            float vals[2];
            for (int k = 0; k < 2 && !rc; k++) { // one state at a time (the image rows stay in img_emb[0])
                int L = 0;
                rc = build_states(m, &two[k], 1, &pre, &posts[k], &L, e);
                if (!rc) rc = values_forward(c, m, &pre, &posts[k], 1, L, NULL);
                vals[k] = m->val[0];
            }
            hit += vals[0] > vals[1];
            tot++;
        }
        free(ss);
        vv_world_scene_free(&s);
    }
    vv_afree(img);
    vv_ivec_free(&pre);
    vv_ivec_free(&posts[0]);
    vv_ivec_free(&posts[1]);
    *acc = tot ? 100.0 * hit / tot : NAN;
    return rc;
}

// ---------------------------------------------------------------------------
// export

static int export_value(vmodel *m, const vt_value_hp *hp, float offset, const char *text_path, const char *mm_path,
                        vv_error *e) {
    vv_gguf *pg = NULL, *cg = NULL;
    int rc = vv_gguf_open(hp->policy_text, &pg, e);
    if (!rc) rc = vv_gguf_open(hp->clip_path, &cg, e);
    vv_gguf_writer *w = rc ? NULL : vv_gguf_writer_create();
    void **keep = NULL;
    int n_keep = 0;
    vt_params *ps = &m->ps;
    const char **skip = calloc((size_t)ps->n, sizeof(char *));
    int n_skip = 0;
    if (!rc && (!w || !skip)) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc) {
        // text file: the policy's keys (architecture, tokenizer) + value keys; decoder + head
        vv_gguf_copy_kv(w, pg);
        vv_gguf_set_str(w, "general.name", "visvm-world-value");
        vv_gguf_set_str(w, "visvm.value.head", "last_token");
        vv_gguf_set_f32(w, "visvm.value.gamma", hp->gamma);
        vv_gguf_set_str(w, "visvm.value.terminal", hp->done_mask ? "done_mask" : "bootstrap");
        vv_gguf_set_f32(w, "visvm.value.reward_offset", offset);
        vv_gguf_set_bool(w, "visvm.value.with_prefix", hp->with_prefix);
        for (int i = 0; i < ps->n; i++)
            if (!strncmp(ps->items[i].name, "v.", 2) || !strncmp(ps->items[i].name, "mm.", 3) ||
                !strncmp(ps->items[i].name, "value_head.", 11))
                skip[n_skip++] = ps->items[i].name;
        rc = vt_export_params(w, ps, skip, n_skip, &keep, &n_keep, e);
        int64_t ne1[1] = {m->d}, ne0[1] = {1};
        if (!rc) rc = vv_gguf_add_tensor(w, "value_head.weight", VV_TYPE_F32, 1, ne1, W(ps, m->head_w));
        if (!rc) rc = vv_gguf_add_tensor(w, "value_head.bias", VV_TYPE_F32, 1, ne0, W(ps, m->head_b));
        if (!rc) rc = vv_gguf_writer_write(w, text_path, e);
    }
    vv_gguf_writer_free(w);
    w = NULL;
    if (!rc) {
        // mmproj: CLIP's vision keys, a LLaVA projector, tower + projector tensors
        w = vv_gguf_writer_create();
        if (!w) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        vv_gguf_copy_kv(w, cg);
        vv_gguf_set_str(w, "general.name", "visvm-world-value-mmproj");
        vv_gguf_set_bool(w, "clip.has_text_encoder", false);
        vv_gguf_set_bool(w, "clip.has_llava_projector", true);
        vv_gguf_set_str(w, "clip.projector_type", "mlp");
        vv_gguf_set_u32(w, "clip.vision.projection_dim", (uint32_t)m->d);
        vv_gguf_set_i32(w, "clip.vision.feature_layer", m->vit.cfg.layers);
        n_skip = 0;
        for (int i = 0; i < ps->n; i++)
            if (strncmp(ps->items[i].name, "v.", 2) && strncmp(ps->items[i].name, "mm.", 3)) skip[n_skip++] = ps->items[i].name;
        rc = vt_export_params(w, ps, skip, n_skip, &keep, &n_keep, e);
        if (!rc) rc = vv_gguf_writer_write(w, mm_path, e);
    }
    vv_gguf_writer_free(w);
    for (int i = 0; i < n_keep; i++) free(keep[i]);
    free(keep);
    free(skip);
    vv_gguf_close(pg);
    vv_gguf_close(cg);
    return rc;
}

// ---------------------------------------------------------------------------

int vt_value_train(const vt_value_hp *hp, const char *out_dir, vv_error *e) {
    int rc = vv_mkdir_p(out_dir, e);
    if (rc) return rc;
    vv_pool *pool = vv_pool_create(hp->threads);
    vt_ctx *c = NULL;
    if (!pool) return vv_err(e, VISVM_ERR_NOMEM, "cannot create threads");
    if ((rc = vt_ctx_create_with_pool(pool, &c, e))) {
        vv_pool_free(pool);
        return rc;
    }
    vt_td_set tr = {0}, va = {0};
    vmodel m;
    memset(&m, 0, sizeof(m));
    img_cache ic = {0}, icv = {0};
    FILE *log = NULL;
    double *lx = NULL, *ly = NULL;
    int n_pts = 0;
    int *idx = NULL, *img_first = NULL, *by_img = NULL;
    char path[4096];
    val_truth truth = {0};
    if ((rc = vt_td_load(hp->train_rewards, &tr, e))) goto done;
    if (hp->group < 1 || hp->batch % hp->group) {
        rc = vv_err(e, VISVM_ERR_INVALID, "--group %d must be >= 1 and divide --batch %d", hp->group, hp->batch);
        goto done;
    }
    if (!(hp->rank_weight >= 0) || (hp->rank_weight > 0 && hp->group < 2)) {
        rc = vv_err(e, VISVM_ERR_INVALID, "--rank-weight %g needs --group >= 2 (pairs of one image to compare) and must be >= 0",
                    hp->rank_weight);
        goto done;
    }
    // pairs by image (for batches of hp->group pairs per image): img_first [n_images + 1], by_img [n_pairs];
    // vt_td_load refuses a file without pairs, so some image has them
    img_first = calloc((size_t)tr.n_images + 1, sizeof(int));
    by_img = malloc((size_t)(tr.n_pairs ? tr.n_pairs : 1) * sizeof(int));
    if (!img_first || !by_img) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < tr.n_pairs; i++) img_first[tr.pairs[i].image + 1]++;
    for (int i = 0; i < tr.n_images; i++) img_first[i + 1] += img_first[i];
    {
        int *fill = calloc((size_t)tr.n_images + 1, sizeof(int));
        if (!fill) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            goto done;
        }
        for (int i = 0; i < tr.n_pairs; i++) by_img[img_first[tr.pairs[i].image] + fill[tr.pairs[i].image]++] = i;
        free(fill);
    }
    if (hp->val_rewards && (rc = vt_td_load(hp->val_rewards, &va, e))) goto done;
    if (hp->with_prefix && ((rc = vt_td_prefix_states(&tr, e)) || (hp->val_rewards && (rc = vt_td_prefix_states(&va, e)))))
        goto done;
    if (hp->val_world) {
        snprintf(path, sizeof(path), "%s/scenes.jsonl", hp->val_world);
        if ((rc = vv_world_read_jsonl(path, &truth.scenes, &truth.n, e)) || (rc = vv_world_chair(&truth.ch, e))) goto done;
    }
    float offset = hp->reward_offset;
    if (isnan(offset)) {
        double s = 0;
        for (int i = 0; i < tr.n_pairs; i++) s += tr.pairs[i].reward;
        offset = (float)(s / tr.n_pairs);
    }
    printf("TD pairs: %d train (%d images, %d responses), %d held out; gamma %.2f, terminal %s, reward offset %.4f\n",
           tr.n_pairs, tr.n_images, tr.n_resp, va.n_pairs, hp->gamma, hp->done_mask ? "done-mask (V = 0)" : "bootstrap V(\"\")",
           offset);
    if (hp->group > 1)
        printf("batches: %d images x %d pairs; within-image (group-centred) MSE weight %g\n", hp->batch / hp->group, hp->group,
               hp->rank_weight);
    if ((rc = vmodel_init(&m, hp, hp->batch, e))) goto done;
    printf("value model: %lld trainable parameters%s\n", (long long)vt_params_count(&m.ps, true),
           hp->head_only ? " (head only)" : hp->freeze_vision ? " (CLIP tower frozen)" : "");
    ic.img = calloc((size_t)tr.n_images, sizeof(float *));
    ic.n = tr.n_images;
    icv.img = calloc((size_t)(va.n_images ? va.n_images : 1), sizeof(float *));
    icv.n = va.n_images;
    idx = malloc((size_t)hp->batch * sizeof(int));
    lx = malloc((size_t)(hp->steps / hp->log_every + 2) * sizeof(double));
    ly = malloc((size_t)(hp->steps / hp->log_every + 2) * sizeof(double));
    if (!ic.img || !icv.img || !idx || !lx || !ly) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    snprintf(path, sizeof(path), "%s/value-train.log", out_dir);
    if (!(log = fopen(path, "w"))) {
        rc = vv_err(e, VISVM_ERR_IO, "cannot write %s", path);
        goto done;
    }
    fprintf(log, "step\ttd_mse\tlr\tgrad_norm\n");
    vv_rng rng;
    vv_rng_seed(&rng, hp->seed);
    vt_adamw opt = vt_adamw_default();
    opt.weight_decay = hp->weight_decay;
    vt_lr_sched sched = {hp->lr, hp->lr_min, hp->warmup, hp->steps};
    double t0 = vv_time_s(), run = 0, run_rank = 0;
    int run_n = 0;
    for (int step = 0; step < hp->steps && !rc; step++) {
        if (hp->group <= 1) {
            for (int b = 0; b < hp->batch; b++) idx[b] = (int)vv_rng_below(&rng, (uint32_t)tr.n_pairs);
        } else { // an image (with pairs) uniformly, then hp->group of its pairs with replacement
            for (int b = 0; b < hp->batch; b += hp->group) {
                int im;
                do im = (int)vv_rng_below(&rng, (uint32_t)tr.n_images);
                while (img_first[im + 1] == img_first[im]);
                const int np = img_first[im + 1] - img_first[im];
                for (int k = 0; k < hp->group; k++) idx[b + k] = by_img[img_first[im] + (int)vv_rng_below(&rng, (uint32_t)np)];
            }
        }
        vt_params_zero_grad(&m.ps);
        float loss = 0, rloss = 0, norm = 0, lr = vt_lr_at(&sched, m.ps.step);
        if ((rc = td_batch(c, &m, hp, &tr, &ic, idx, hp->batch, offset, true, &loss, &rloss, NULL, e))) break;
        vt_clip_grad_norm(c, &m.ps, hp->clip_norm, &norm);
        if (!isfinite(loss) || !isfinite(norm)) {
            rc = vv_err(e, VISVM_ERR_INTERNAL, "non-finite loss at step %d", step);
            break;
        }
        if ((rc = vt_adamw_step(c, &m.ps, &opt, lr))) {
            vv_err(e, rc, "optimizer failed: %s", vt_ctx_error(c));
            break;
        }
        fprintf(log, "%d\t%.6f\t%.3g\t%.4f\n", step + 1, loss, lr, norm);
        run += loss;
        run_rank += rloss;
        run_n++;
        if ((step + 1) % hp->log_every == 0 || step + 1 == hp->steps) {
            double per = (vv_time_s() - t0) / (step + 1);
            lx[n_pts] = step + 1;
            ly[n_pts++] = run / run_n;
            printf("value step %5d/%d  td-mse %.5f", step + 1, hp->steps, run / run_n);
            if (hp->rank_weight > 0) printf("  within-image %.5f", run_rank / run_n);
            printf("  lr %.2e  %.1f pairs/s  ETA %.0f min\n", lr, hp->batch / per, per * (hp->steps - step - 1) / 60);
            fflush(stdout);
            fflush(log);
            run = 0;
            run_rank = 0;
            run_n = 0;
        }
        if (hp->eval_every > 0 && (step + 1) % hp->eval_every == 0 && step + 1 < hp->steps && va.n_pairs) {
            value_eval ev;
            if ((rc = evaluate(c, &m, hp, &va, &icv, offset, 2000, &truth, &ev, e))) break;
            printf("  held out: td-mse %.5f, corr(V, MC return) %.3f, mean V %.3f vs return %.3f (%d states)",
                   ev.td_loss, ev.corr, ev.mean_v, ev.mean_g, ev.n);
            if (ev.auc_v.pairs)
                printf(", within-image AUC V %.3f (reward %.3f, return %.3f)", vv_auc_value(&ev.auc_v),
                       vv_auc_value(&ev.auc_r), vv_auc_value(&ev.auc_g));
            printf("\n");
        }
    }
    if (rc) goto done;
    char tp[4096], mp[4096];
    snprintf(tp, sizeof(tp), "%s/value-text.gguf", out_dir);
    snprintf(mp, sizeof(mp), "%s/value-mmproj.gguf", out_dir);
    if ((rc = export_value(&m, hp, offset, tp, mp, e))) goto done;
    printf("wrote %s and %s\n", tp, mp);
    {
        value_eval ev = {0};
        double pr = NAN;
        if (va.n_pairs && (rc = evaluate(c, &m, hp, &va, &icv, offset, 4000, &truth, &ev, e))) goto done;
        if (hp->probe_scenes > 0 && (rc = probe(c, &m, hp->probe_scenes, &pr, e))) goto done;
        printf("held out: td-mse %.5f, corr(V, MC return) %.3f (%d states); probe present > absent same-theme object %.1f%%\n",
               ev.td_loss, ev.corr, ev.n, pr);
        const double av = vv_auc_value(&ev.auc_v), ar = vv_auc_value(&ev.auc_r);
        if (ev.auc_v.pairs)
            printf("held out, within-image AUC (present-only vs absent-naming sentences, %ld pairs, %ld images): "
                   "V %.3f, reward %.3f, realised return %.3f\n", ev.auc_v.pairs, ev.auc_v.images, av, ar,
                   vv_auc_value(&ev.auc_g));
        if (ev.sib_v.pairs)
            printf("held out, siblings only (same image and sentence position, %ld pairs): V %.3f, reward %.3f, "
                   "realised return %.3f, its future part (return after the sentence) %.3f\n", ev.sib_v.pairs,
                   vv_auc_value(&ev.sib_v), vv_auc_value(&ev.sib_r), vv_auc_value(&ev.sib_g), vv_auc_value(&ev.sib_f));
        vv_buf js = {0};
        vv_buf_printf(&js, "{\"steps\": %d, \"seconds\": %.0f, \"pairs\": %d, \"gamma\": %.3f, \"terminal\": \"%s\", "
                           "\"reward_offset\": %.5f, \"heldout_td_mse\": %.6f, \"heldout_corr_mc_return\": %.4f, "
                           "\"heldout_states\": %d, \"probe_absent_same_theme\": %.2f, \"group\": %d, \"rank_weight\": %g",
                      hp->steps, vv_time_s() - t0, tr.n_pairs, hp->gamma, hp->done_mask ? "done_mask" : "bootstrap",
                      offset, ev.td_loss, ev.corr, ev.n, pr, hp->group, hp->rank_weight);
        if (ev.auc_v.pairs)
            vv_buf_printf(&js, ", \"heldout_auc_value\": %.4f, \"heldout_auc_reward\": %.4f, \"heldout_auc_return\": %.4f, "
                               "\"heldout_auc_pairs\": %ld", av, ar, vv_auc_value(&ev.auc_g), ev.auc_v.pairs);
        if (ev.sib_v.pairs)
            vv_buf_printf(&js, ", \"sibling_auc_value\": %.4f, \"sibling_auc_reward\": %.4f, \"sibling_auc_return\": %.4f, "
                               "\"sibling_auc_future\": %.4f, \"sibling_auc_pairs\": %ld", vv_auc_value(&ev.sib_v),
                          vv_auc_value(&ev.sib_r), vv_auc_value(&ev.sib_g), vv_auc_value(&ev.sib_f), ev.sib_v.pairs);
        vv_buf_printf(&js, "}\n");
        snprintf(path, sizeof(path), "%s/value-metrics.json", out_dir);
        rc = vv_write_file_atomic(path, js.v, js.n, e);
        vv_buf_free(&js);
    }
    if (!rc && n_pts) {
        snprintf(path, sizeof(path), "%s/value-loss.svg", out_dir);
        vv_svg_series sv[1] = {{"TD mean squared error", lx, ly, n_pts, NULL, NULL}};
        rc = vv_svg_line_chart(path, "VisVM value model (TD(0))", "step", "loss", sv, 1, false, e);
    }
done:
    if (log) fclose(log);
    for (int i = 0; ic.img && i < ic.n; i++) free(ic.img[i]);
    for (int i = 0; icv.img && i < icv.n; i++) free(icv.img[i]);
    free(ic.img);
    free(icv.img);
    free(idx);
    free(img_first);
    free(by_img);
    free(lx);
    free(ly);
    vmodel_free(&m);
    vt_td_free(&tr);
    vt_td_free(&va);
    vv_world_scenes_free(truth.scenes, truth.n);
    vv_chair_free(truth.ch);
    vt_ctx_free(c);
    vv_pool_free(pool);
    return rc;
}
