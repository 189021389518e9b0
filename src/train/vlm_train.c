// vlm_train.c - tiny LLaVA: model, captioning training on the world, GGUF export.
#include "vlm_train.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../eval/svg.h"
#include "../eval/world_eval.h"
#include "../format/json.h"
#include "../gen/llava.h"
#include "../tensor/quants.h"
#include "../text/vocab.h"
#include "ckpt.h"
#include "clip_model.h"
#include "clip_train.h"
#include "internal.h"

vt_vlm_hp vt_vlm_default_hp(void) {
    vt_vlm_hp h;
    memset(&h, 0, sizeof(h));
    h.world = vv_world_default_params();
    h.image_size = 32;
    h.patch = 4;
    h.stem_ch = 32;
    h.v_width = 128;
    h.v_layers = 3;
    h.v_heads = 4;
    h.v_ff = 512;
    h.d = 128;
    h.layers = 4;
    h.heads = 4;
    h.kv_heads = 2;
    h.ff = 384;
    h.rope_base = 10000.0f;
    h.max_len = 160;
    h.batch = 32;
    h.steps = 4000;
    h.warmup = 200;
    h.lr = 1e-3f;
    h.lr_min = 3e-5f;
    h.weight_decay = 0.05f;
    h.clip_norm = 1.0f;
    h.seed = 1;
    h.log_every = 20;
    h.ckpt_every = 500;
    return h;
}

static float *W(vt_params *ps, int i) { return ps->items[i].data; }
static float *G(vt_params *ps, int i) { return ps->items[i].grad; }

void vt_vlm_free(vt_vlm *m) {
    if (!m) return;
    vt_vit_free(&m->vit);
    vt_tf_free(&m->dec);
    vt_params_free(&m->ps);
    vv_bpe_vocab_free(&m->bpe);
    vv_vocab_free(m->vocab);
    float *b[] = {m->patches, m->p1, m->p1a, m->img_emb, m->x0, m->xn, m->rs, m->hsel, m->logits, m->d_x0, m->d_xo,
                  m->d_xn, m->d_hsel, m->d_img_emb, m->d_p1a, m->d_p1, m->d_patches, m->d_vit};
    for (size_t i = 0; i < sizeof(b) / sizeof(b[0]); i++) vv_afree(b[i]);
    free(m->ids);
    free(m->lens);
    free(m->tgt_rows);
    free(m->tgt);
    memset(m, 0, sizeof(*m));
}

int vt_vlm_hp_vision_from_clip(vt_vlm_hp *hp, const char *path, vv_error *e) {
    vv_gguf *g = NULL;
    vt_vit_cfg c;
    int rc = vv_gguf_open(path, &g, e);
    if (!rc) rc = vt_vit_cfg_from_gguf(g, path, &c, e);
    vv_gguf_close(g);
    if (rc) return rc;
    hp->image_size = c.image_size;
    hp->patch = c.patch;
    hp->v_width = c.width;
    hp->v_layers = c.layers;
    hp->v_heads = c.heads;
    hp->v_ff = c.ff;
    hp->stem = c.stem;
    hp->stem_ch = c.stem ? c.stem_ch : hp->stem_ch;
    hp->stem_bn = false;
    hp->init_vision = path;
    return VISVM_OK;
}

int vt_vlm_init(vt_vlm *m, const vt_vlm_hp *hp, const vv_bpe_vocab *bpe, int max_B, vv_error *e) {
    memset(m, 0, sizeof(*m));
    m->hp = *hp;
    m->max_B = max_B;
    m->max_L = hp->max_len;
    vt_params_init(&m->ps);
    vt_params *ps = &m->ps;
    int rc = VISVM_OK;
    // vocabulary copy (exported with the text model)
    m->bpe.n = bpe->n;
    m->bpe.texts = calloc((size_t)bpe->n, sizeof(char *));
    m->bpe.scores = malloc((size_t)bpe->n * sizeof(float));
    m->bpe.types = malloc((size_t)bpe->n * sizeof(int32_t));
    if (!m->bpe.texts || !m->bpe.scores || !m->bpe.types) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < bpe->n; i++) m->bpe.texts[i] = vv_strdup(bpe->texts[i]);
    memcpy(m->bpe.scores, bpe->scores, (size_t)bpe->n * sizeof(float));
    memcpy(m->bpe.types, bpe->types, (size_t)bpe->n * sizeof(int32_t));
    if ((rc = vv_bpe_to_vocab(bpe, &m->vocab, e))) return rc;
    const int64_t Dv = hp->v_width, D = hp->d, V = bpe->n;
    const unsigned ND = VT_PARAM_NO_DECAY;
    vt_vit_cfg vc = {hp->image_size, hp->patch, hp->v_width, hp->v_layers, hp->v_heads, hp->v_ff, hp->stem, hp->stem_ch, hp->stem_bn};
    rc = vt_vit_register(&m->vit, &vc, ps, e);
    m->n_img = m->vit.G * m->vit.G;
    m->n_vit_params = ps->n;
    if (!rc && hp->freeze_vision) // LLaVA's frozen tower: no gradients, no optimizer state
        for (int i = 0; i < ps->n; i++) ps->items[i].flags |= VT_PARAM_FROZEN;
    if (!rc) rc = vt_params_add(ps, "mm.0.weight", 2, (int64_t[]){D, Dv}, 0, &m->mm0_w, e);
    if (!rc) rc = vt_params_add(ps, "mm.0.bias", 1, (int64_t[]){D}, ND, &m->mm0_b, e);
    if (!rc) rc = vt_params_add(ps, "mm.2.weight", 2, (int64_t[]){D, D}, 0, &m->mm2_w, e);
    if (!rc) rc = vt_params_add(ps, "mm.2.bias", 1, (int64_t[]){D}, ND, &m->mm2_b, e);
    if (!rc) rc = vt_params_add(ps, "token_embd.weight", 2, (int64_t[]){V, D}, ND, &m->tok, e);
    vt_tf_cfg dc = {hp->layers, hp->d, hp->heads, hp->kv_heads, hp->ff, true, false, true, VT_ACT_SILU, true, true,
                    hp->rope_base, 1e-5f, VT_TF_LLAMA};
    if (!rc) rc = vt_tf_register(&m->dec, &dc, ps, e);
    if (!rc) rc = vt_params_add(ps, "output_norm.weight", 1, (int64_t[]){D}, ND, &m->onorm, e);
    if (!rc) rc = vt_params_add(ps, "output.weight", 2, (int64_t[]){V, D}, 0, &m->out, e);
    if (!rc) rc = vt_params_alloc(ps, e);
    if (!rc) rc = vt_vit_alloc(&m->vit, max_B, e);
    if (!rc) rc = vt_tf_alloc(&m->dec, max_B, m->max_L, e);
    if (rc) return rc;
    vv_rng rng;
    vv_rng_seed(&rng, hp->seed * 104729 + 3);
    vt_vit_init(&m->vit, ps, &rng);
    vt_param_init_normal(&ps->items[m->mm0_w], 1.0f / sqrtf((float)Dv), &rng);
    vt_param_init_normal(&ps->items[m->mm2_w], 1.0f / sqrtf((float)D), &rng);
    vt_param_init_normal(&ps->items[m->tok], 0.02f, &rng);
    vt_tf_init(&m->dec, ps, 0.02f, &rng);
    vt_param_fill(&ps->items[m->onorm], 1.0f);
    vt_param_init_normal(&ps->items[m->out], 0.02f, &rng);
    const size_t B = (size_t)max_B, L = (size_t)m->max_L, Ni = B * (size_t)m->n_img, T = (size_t)m->vit.T;
#define A(p, n) if (!((p) = vv_aalloc((n) * sizeof(float)))) rc = VISVM_ERR_NOMEM;
    A(m->patches, Ni * Dv) A(m->p1, Ni * D) A(m->p1a, Ni * D) A(m->img_emb, Ni * D) A(m->x0, B * L * D)
    A(m->xn, B * L * D) A(m->rs, B * L) A(m->hsel, B * L * D) A(m->logits, B * L * V) A(m->d_x0, B * L * D)
    A(m->d_xo, B * L * D) A(m->d_xn, B * L * D) A(m->d_hsel, B * L * D) A(m->d_img_emb, Ni * D) A(m->d_p1a, Ni * D)
    A(m->d_p1, Ni * D) A(m->d_patches, Ni * Dv) A(m->d_vit, B * T * Dv)
#undef A
    m->ids = malloc(B * L * sizeof(int32_t));
    m->lens = malloc(B * sizeof(int32_t));
    m->tgt_rows = malloc(B * L * sizeof(int32_t));
    m->tgt = malloc(B * L * sizeof(int32_t));
    if (rc || !m->ids || !m->lens || !m->tgt_rows || !m->tgt) return vv_err(e, VISVM_ERR_NOMEM, "out of memory for VLM activations");
    return VISVM_OK;
}

// One sample: chat-template prompt around the image + caption + EOS, as the engine feeds it.
typedef struct {
    vv_ivec pre, post, ans;
} sample_toks;

// Frees B samples' token vectors and the array (st may be NULL).
static void samples_free(sample_toks *st, int B) {
    for (int b = 0; st && b < B; b++) {
        vv_ivec_free(&st[b].pre);
        vv_ivec_free(&st[b].post);
        vv_ivec_free(&st[b].ans);
    }
    free(st);
}

static int build_sample(const vt_vlm *m, const char *prompt, const char *caption, sample_toks *s, vv_error *e) {
    vv_buf full = {0};
    bool has_img = false;
    s->pre.n = s->post.n = s->ans.n = 0;
    int rc = vv_chat_format(VISVM_TEMPLATE_LLAVA15, prompt, true, &full);
    if (!rc) rc = vv_llava_tokenize(m->vocab, full.v, &s->pre, &s->post, &has_img, e);
    if (!rc) rc = vv_tokenize(m->vocab, caption, strlen(caption), false, false, &s->ans, e);
    if (!rc) rc = vv_ivec_push(&s->ans, vv_vocab_eos(m->vocab));
    vv_buf_free(&full);
    return rc;
}

// A verification question (vt_vlm_verify_question): a true sentence of the
// scene, 80% of them about one object (objects_only: all), or a hard negative
// made from that same sentence (so its kind says nothing about the answer),
// half of those naming an absent object of the scene's theme when the scene
// has one (objects_only: only absent objects, no wrong attributes).
int vt_vlm_verify_question(const vv_world_scene *s, vv_rng *rng, bool want_true, bool objects_only, bool short_form,
                           char *out, size_t cap, bool *truth, vv_error *e) {
    vv_world_sentence *v = NULL;
    int n = 0, rc = vv_world_sentences(s, vv_rng_u64(rng), &v, &n, e);
    if (rc) return rc;
    if (n > 256) n = 256;
    int obj[256], ko = 0, oth[256], kt = 0, pick = -1;
    for (int j = 0; j < n; j++)
        if (v[j].positive) {
            if (v[j].kind == VV_WS_OBJECT) obj[ko++] = j;
            else oth[kt++] = j;
        }
    const bool use_obj = ko && (!kt || objects_only || vv_rng_uniform(rng) < 0.8);
    const int p = use_obj ? obj[vv_rng_below(rng, (uint32_t)ko)] : kt ? oth[vv_rng_below(rng, (uint32_t)kt)] : -1;
    if (p >= 0 && want_true) pick = p;
    else if (p >= 0) { // its corruptions
        int th[256], nt = 0, ot[256], no = 0;
        for (int j = 0; j < n; j++)
            if (!v[j].positive && v[j].pos_index == p) {
                if (v[j].kind == VV_WS_NEG_ABSENT_THEME) th[nt++] = j;
                else if (!objects_only || v[j].kind == VV_WS_NEG_ABSENT_OTHER) ot[no++] = j;
            }
        if (nt && (!no || vv_rng_below(rng, 2) == 0)) pick = th[vv_rng_below(rng, (uint32_t)nt)];
        else if (no) pick = ot[vv_rng_below(rng, (uint32_t)no)];
        else pick = p; // (no corruption of it: ask the true one)
    }
    if (pick < 0) {
        free(v);
        return vv_err(e, VISVM_ERR_INTERNAL, "scene %llu has no true sentence", (unsigned long long)s->seed);
    }
    if (short_form && v[pick].cls >= 0) snprintf(out, cap, "There is a %s.", vv_world_class_name(v[pick].cls));
    else snprintf(out, cap, "%s", v[pick].text);
    *truth = v[pick].positive;
    free(v);
    return VISVM_OK;
}

int vt_vlm_where_question(const vv_world_scene *s, vv_rng *rng, bool want_true, char *q, char *ans, size_t cap,
                          bool *truth, vv_error *e) {
    const int nc = vv_world_n_classes();
    if (want_true && s->n_objects > 0) {
        const vv_world_object *o = &s->obj[vv_rng_below(rng, (uint32_t)s->n_objects)];
        snprintf(q, cap, "Where is the %s?", vv_world_class_name(o->cls));
        snprintf(ans, cap, "There is a %s %s %s at the %s.", vv_world_size_name(o->size), vv_world_color_name(o->color),
                 vv_world_class_name(o->cls), vv_world_region_name(o->region));
        *truth = true;
        return VISVM_OK;
    }
    int th[256], nt = 0, ot[256], no = 0; // absent classes: of the scene's theme, others
    for (int c = 0; c < nc && c < 256; c++) {
        bool here = false;
        for (int i = 0; i < s->n_objects; i++) here |= s->obj[i].cls == c;
        if (here) continue;
        if (vv_world_theme_has_class(s->theme, c)) th[nt++] = c;
        else ot[no++] = c;
    }
    if (!nt && !no) return vv_err(e, VISVM_ERR_INTERNAL, "scene %llu has every class", (unsigned long long)s->seed);
    const int c = nt && (!no || vv_rng_below(rng, 2) == 0) ? th[vv_rng_below(rng, (uint32_t)nt)]
                                                           : ot[vv_rng_below(rng, (uint32_t)no)];
    snprintf(q, cap, "Where is the %s?", vv_world_class_name(c));
    snprintf(ans, cap, "There is no %s.", vv_world_class_name(c));
    *truth = false;
    return VISVM_OK;
}

// Forward + loss (+ backward when train): returns the mean CE over answer tokens.
static int step(vt_ctx *c, vt_vlm *m, const float *img, sample_toks *st, int B, bool train, float *loss, int *n_tok) {
    vt_params *ps = &m->ps;
    const int D = m->hp.d, Dv = m->hp.v_width, V = m->bpe.n, Ni = m->n_img, T = m->vit.T;
    // layout and targets
    int L = 0;
    for (int b = 0; b < B; b++) {
        int len = (int)(st[b].pre.n + (size_t)Ni + st[b].post.n + st[b].ans.n);
        if (len > m->max_L) len = m->max_L; // (answers are truncated; max_len covers the world's captions)
        m->lens[b] = len;
        if (len > L) L = len;
    }
    int M = 0;
    for (int b = 0; b < B; b++) {
        int32_t *id = m->ids + (size_t)b * L;
        int p = 0;
        for (size_t i = 0; i < st[b].pre.n; i++) id[p++] = st[b].pre.v[i];
        int img0 = p;
        for (int i = 0; i < Ni; i++) id[p++] = 0; // image rows (embeddings replaced below)
        for (size_t i = 0; i < st[b].post.n && p < m->lens[b]; i++) id[p++] = st[b].post.v[i];
        int ans0 = p;
        for (size_t i = 0; i < st[b].ans.n && p < m->lens[b]; i++) id[p++] = st[b].ans.v[i];
        for (; p < L; p++) id[p] = 0;
        (void)img0;
        for (int t = ans0 - 1; t < m->lens[b] - 1; t++) {
            m->tgt_rows[M] = b * L + t;
            m->tgt[M++] = id[t + 1];
        }
    }
    *n_tok = M;
    // vision tower -> patch tokens -> projector (no training: BatchNorm from running statistics, left unchanged)
    const bool was_eval = m->vit.eval;
    m->vit.eval = was_eval || !train;
    int rc = vt_vit_forward(c, &m->vit, ps, img, B);
    m->vit.eval = was_eval;
    for (int b = 0; !rc && b < B; b++)
        memcpy(m->patches + (size_t)b * Ni * Dv, m->vit.out + ((size_t)b * T + 1) * Dv, (size_t)Ni * Dv * sizeof(float));
    if (!rc) rc = vt_linear_forward(c, m->p1, m->patches, W(ps, m->mm0_w), W(ps, m->mm0_b), (int64_t)B * Ni, Dv, D);
    if (!rc) rc = vt_act_forward(c, VT_ACT_GELU_ERF, m->p1a, m->p1, (int64_t)B * Ni * D);
    if (!rc) rc = vt_linear_forward(c, m->img_emb, m->p1a, W(ps, m->mm2_w), W(ps, m->mm2_b), (int64_t)B * Ni, D, D);
    // decoder input: token embeddings with the image rows replaced
    if (!rc) rc = vt_embedding_forward(c, m->x0, m->ids, W(ps, m->tok), (int64_t)B * L, V, D);
    for (int b = 0; !rc && b < B; b++)
        memcpy(m->x0 + ((size_t)b * L + st[b].pre.n) * D, m->img_emb + (size_t)b * Ni * D, (size_t)Ni * D * sizeof(float));
    float *xo = NULL;
    if (!rc) rc = vt_tf_forward(c, &m->dec, ps, m->x0, B, L, m->lens, -1, &xo);
    if (!rc) rc = vt_rmsnorm_forward(c, m->xn, m->rs, xo, W(ps, m->onorm), (int64_t)B * L, D, 1e-5f);
    if (!rc) rc = vt_gather_rows_forward(c, m->hsel, m->xn, m->tgt_rows, M, (int64_t)B * L, D);
    if (!rc) rc = vt_linear_forward(c, m->logits, m->hsel, W(ps, m->out), NULL, M, D, V);
    if (!rc) rc = vt_cross_entropy(c, m->logits, m->tgt, NULL, M, V, loss, NULL, train ? m->logits : NULL, 1.0f);
    if (rc || !train) return rc;
    // backward
    memset(m->d_hsel, 0, (size_t)M * D * sizeof(float));
    rc = vt_linear_backward(c, m->d_hsel, G(ps, m->out), NULL, m->logits, m->hsel, W(ps, m->out), M, D, V);
    memset(m->d_xn, 0, (size_t)B * L * D * sizeof(float));
    if (!rc) rc = vt_gather_rows_backward(c, m->d_xn, m->d_hsel, m->tgt_rows, M, (int64_t)B * L, D);
    memset(m->d_xo, 0, (size_t)B * L * D * sizeof(float));
    if (!rc) rc = vt_rmsnorm_backward(c, m->d_xo, G(ps, m->onorm), m->d_xn, xo, W(ps, m->onorm), m->rs, (int64_t)B * L, D);
    memset(m->d_x0, 0, (size_t)B * L * D * sizeof(float));
    if (!rc) rc = vt_tf_backward(c, &m->dec, ps, m->d_xo, m->d_x0, B, L, m->lens, -1);
    for (int b = 0; !rc && b < B; b++) { // image rows go to the projector, not the embedding table
        float *r = m->d_x0 + ((size_t)b * L + st[b].pre.n) * D;
        memcpy(m->d_img_emb + (size_t)b * Ni * D, r, (size_t)Ni * D * sizeof(float));
        memset(r, 0, (size_t)Ni * D * sizeof(float));
    }
    if (!rc) rc = vt_embedding_backward(c, G(ps, m->tok), m->d_x0, m->ids, (int64_t)B * L, V, D);
    const int64_t NI = (int64_t)B * Ni;
    memset(m->d_p1a, 0, (size_t)NI * D * sizeof(float));
    if (!rc) rc = vt_linear_backward(c, m->d_p1a, G(ps, m->mm2_w), G(ps, m->mm2_b), m->d_img_emb, m->p1a, W(ps, m->mm2_w), NI, D, D);
    memset(m->d_p1, 0, (size_t)NI * D * sizeof(float));
    if (!rc) rc = vt_act_backward(c, VT_ACT_GELU_ERF, m->d_p1, m->d_p1a, m->p1, NI * D);
    if (m->hp.freeze_vision) // frozen tower: the projector's input gradient is not needed
        return rc ? rc : vt_linear_backward(c, NULL, G(ps, m->mm0_w), G(ps, m->mm0_b), m->d_p1, m->patches, W(ps, m->mm0_w), NI, Dv, D);
    memset(m->d_patches, 0, (size_t)NI * Dv * sizeof(float));
    if (!rc) rc = vt_linear_backward(c, m->d_patches, G(ps, m->mm0_w), G(ps, m->mm0_b), m->d_p1, m->patches, W(ps, m->mm0_w), NI, Dv, D);
    memset(m->d_vit, 0, (size_t)B * T * Dv * sizeof(float));
    for (int b = 0; !rc && b < B; b++)
        memcpy(m->d_vit + ((size_t)b * T + 1) * Dv, m->d_patches + (size_t)b * Ni * Dv, (size_t)Ni * Dv * sizeof(float));
    if (!rc) rc = vt_vit_backward(c, &m->vit, ps, m->d_vit, B);
    return rc;
}

// One optimizer step on a built batch: gradients, clipping, AdamW.
static int train_step(vt_ctx *c, vt_vlm *m, const float *img, sample_toks *st, int B, const vt_lr_sched *sched,
                      vt_adamw *opt, float clip_norm, float *loss, int *ntok, float *lr, float *norm, vv_error *e) {
    vt_params_zero_grad(&m->ps);
    int rc = step(c, m, img, st, B, true, loss, ntok);
    if (rc) return vv_err(e, rc, "training step failed: %s", vt_ctx_error(c));
    *lr = vt_lr_at(sched, m->ps.step);
    vt_clip_grad_norm(c, &m->ps, clip_norm, norm);
    if (!isfinite(*norm) || !isfinite(*loss))
        return vv_err(e, VISVM_ERR_INTERNAL, "non-finite loss or gradient at step %lld", (long long)m->ps.step);
    if ((rc = vt_adamw_step(c, &m->ps, opt, *lr))) return vv_err(e, rc, "optimizer failed: %s", vt_ctx_error(c));
    return VISVM_OK;
}

// Held-out verification accuracy: n scenes of the val split (each asked one
// true and one false question), score = logit("yes") - logit("no") at the
// first answer position (where questions: "a" - "no" after "There is").
// *acc in [0, 1], *auc over true vs negative.
int vt_vlm_verify_eval(vt_ctx *c, vt_vlm *m, vv_pool *pool, int n, uint64_t seed, bool where, float *acc, float *auc,
                       vv_error *e) {
    const int B = m->max_B, S = m->hp.image_size;
    // the answers' first differing token: "yes" / "no", or "There is a" / "There is no" (where questions)
    const bool objects = m->hp.verify_objects || m->hp.verify_short;
    const bool late = m->hp.verify_late;
    const char *ta = where ? "There is a" : late ? "The answer is yes" : "yes",
               *tn = where ? "There is no" : late ? "The answer is no" : "no";
    vv_ivec yes = {0}, no = {0};
    int rc = vv_tokenize(m->vocab, ta, strlen(ta), false, false, &yes, e), kd = 0;
    if (!rc) rc = vv_tokenize(m->vocab, tn, strlen(tn), false, false, &no, e);
    while (!rc && kd < (int)yes.n && kd < (int)no.n && yes.v[kd] == no.v[kd]) kd++;
    if (!rc && (kd >= (int)yes.n || kd >= (int)no.n))
        rc = vv_err(e, VISVM_ERR_INTERNAL, "\"%s\" and \"%s\" do not differ in a token", ta, tn);
    sample_toks *st = calloc((size_t)B, sizeof(sample_toks));
    float *img = vv_aalloc((size_t)B * S * S * 3 * sizeof(float));
    uint64_t *seeds = malloc((size_t)B * sizeof(uint64_t));
    float *sc = malloc((size_t)2 * n * sizeof(float));
    signed char *lab = malloc((size_t)2 * n); // 1 true, 0 false (vv_auc labels)
    if (!rc && (!st || !img || !seeds || !sc || !lab)) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    vv_world_params wp = vv_world_default_params();
    vv_rng rng;
    vv_rng_seed(&rng, seed);
    int k = 0; // questions scored
    for (int i0 = 0; !rc && i0 < 2 * n; i0 += B) {
        const int nb = 2 * n - i0 < B ? 2 * n - i0 : B; // sample j asks scene (i0 + j) / 2, true when even
        for (int j = 0; j < nb; j++) seeds[j] = vv_world_split_base(VV_WORLD_VAL) + 900000 + (uint64_t)((i0 + j) / 2);
        if ((rc = vt_render_batch(pool, &wp, seeds, nb, S, img))) {
            vv_err(e, rc, "rendering failed");
            break;
        }
        for (int j = 0; j < nb && !rc; j++) {
            vv_world_scene s;
            char q[VV_WORLD_SENT_MAX];
            if ((rc = vv_world_scene_make(&wp, seeds[j], &s, e))) break;
            char a[VV_WORLD_SENT_MAX];
            const bool want = (i0 + j) % 2 == 0;
            bool truth = false;
            if (where) rc = vt_vlm_where_question(&s, &rng, want, q, a, sizeof(q), &truth, e);
            else rc = vt_vlm_verify_question(&s, &rng, want, objects, m->hp.verify_short, q, sizeof(q), &truth, e);
            lab[i0 + j] = (signed char)truth;
            // answer fed: the negative's prefix up to the deciding token (teacher forcing; it is the same for both)
            if (!rc) rc = build_sample(m, q, tn, &st[j], e);
            vv_world_scene_free(&s);
        }
        float loss = 0;
        int ntok = 0;
        if (!rc && (rc = step(c, m, img, st, nb, false, &loss, &ntok))) vv_err(e, rc, "%s", vt_ctx_error(c));
        int row = 0;
        for (int j = 0; j < nb && !rc; j++) { // logits rows: sample by sample, its answer positions in order
            const float *lg = m->logits + (size_t)(row + kd) * m->bpe.n;
            sc[k++] = lg[yes.v[kd]] - lg[no.v[kd]];
            row += m->lens[j] - (int)(st[j].pre.n + (size_t)m->n_img + st[j].post.n);
        }
    }
    if (!rc) {
        int right = 0;
        vv_auc a = {0}; // every question as one pool: true vs false pairs
        for (int i = 0; i < k; i++) right += (sc[i] > 0) == (lab[i] == 1);
        vv_auc_add_image(&a, sc, lab, k);
        *acc = k ? (float)right / (float)k : 0;
        *auc = a.pairs ? (float)vv_auc_value(&a) : 0.5f;
    }
    samples_free(st, B);
    vv_afree(img);
    free(seeds);
    free(sc);
    free(lab);
    vv_ivec_free(&yes);
    vv_ivec_free(&no);
    return rc;
}

int vt_vlm_loss(vt_ctx *c, vt_vlm *m, const float *img, const char *const *prompts, const char *const *captions,
                int B, bool train, float *loss, int *n_tok, vv_error *e) {
    if (B > m->max_B) return vv_err(e, VISVM_ERR_INVALID, "batch %d exceeds %d", B, m->max_B);
    sample_toks *st = calloc((size_t)B, sizeof(sample_toks));
    int rc = st ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int b = 0; b < B && !rc; b++) rc = build_sample(m, prompts[b], captions[b], &st[b], e);
    if (!rc && (rc = step(c, m, img, st, B, train, loss, n_tok))) vv_err(e, rc, "%s", vt_ctx_error(c));
    samples_free(st, B);
    return rc;
}

// ---------------------------------------------------------------------------
// export

int vt_vlm_export(const vt_vlm *m, const char *text_path, const char *mmproj_path, vv_error *e) {
    const vt_vlm_hp *h = &m->hp;
    // text model: llama architecture
    vv_gguf_writer *w = vv_gguf_writer_create();
    if (!w) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    vv_gguf_set_str(w, "general.architecture", "llama");
    vv_gguf_set_str(w, "general.name", "visvm-world-vlm");
    vv_gguf_set_u32(w, "general.file_type", 1);
    vv_gguf_set_u32(w, "llama.context_length", 2048);
    vv_gguf_set_u32(w, "llama.embedding_length", (uint32_t)h->d);
    vv_gguf_set_u32(w, "llama.block_count", (uint32_t)h->layers);
    vv_gguf_set_u32(w, "llama.feed_forward_length", (uint32_t)h->ff);
    vv_gguf_set_u32(w, "llama.attention.head_count", (uint32_t)h->heads);
    vv_gguf_set_u32(w, "llama.attention.head_count_kv", (uint32_t)h->kv_heads);
    vv_gguf_set_u32(w, "llama.rope.dimension_count", (uint32_t)(h->d / h->heads));
    vv_gguf_set_f32(w, "llama.rope.freq_base", h->rope_base);
    vv_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    vv_gguf_set_u32(w, "llama.vocab_size", (uint32_t)m->bpe.n);
    vv_gguf_set_str(w, "tokenizer.chat_template", "USER: <image>\\n{prompt} ASSISTANT:");
    int rc = vt_gguf_set_tokenizer(w, &m->bpe);
    void **keep = NULL;
    int n_keep = 0;
    // the parameters with the stem's BatchNorm folded into its convolutions
    vt_params view = {0};
    float *folded = NULL;
    if (!rc) rc = vt_vit_export_view(&m->vit, &m->ps, &view, &folded, e);
    const vt_params *ps = &view;
    // the text file holds the decoder only
    const char **skip = calloc((size_t)(ps->n ? ps->n : 1), sizeof(char *));
    int n_skip = 0;
    for (int i = 0; skip && i < ps->n; i++)
        if (!strncmp(ps->items[i].name, "v.", 2) || !strncmp(ps->items[i].name, "mm.", 3)) skip[n_skip++] = ps->items[i].name;
    if (!skip) rc = VISVM_ERR_NOMEM;
    if (!rc) rc = vt_export_params(w, ps, skip, n_skip, &keep, &n_keep, e);
    if (!rc) rc = vv_gguf_writer_write(w, text_path, e);
    vv_gguf_writer_free(w);
    // mmproj: tower + projector
    n_skip = 0;
    for (int i = 0; skip && i < ps->n; i++)
        if (strncmp(ps->items[i].name, "v.", 2) && strncmp(ps->items[i].name, "mm.", 3)) skip[n_skip++] = ps->items[i].name;
    w = rc ? NULL : vv_gguf_writer_create();
    if (w) {
        vv_gguf_set_str(w, "general.architecture", "clip");
        vv_gguf_set_str(w, "general.name", "visvm-world-vlm-mmproj");
        vv_gguf_set_str(w, "general.description", "image encoder for LLaVA (visvm world)");
        vv_gguf_set_u32(w, "general.file_type", 1);
        vv_gguf_set_bool(w, "clip.has_text_encoder", false);
        vv_gguf_set_bool(w, "clip.has_vision_encoder", true);
        vv_gguf_set_bool(w, "clip.has_llava_projector", true);
        vv_gguf_set_str(w, "clip.projector_type", "mlp");
        vv_gguf_set_bool(w, "clip.use_gelu", false);
        vv_gguf_set_u32(w, "clip.vision.image_size", (uint32_t)h->image_size);
        vv_gguf_set_u32(w, "clip.vision.patch_size", (uint32_t)h->patch);
        vv_gguf_set_u32(w, "clip.vision.embedding_length", (uint32_t)h->v_width);
        vv_gguf_set_u32(w, "clip.vision.feed_forward_length", (uint32_t)h->v_ff);
        vv_gguf_set_u32(w, "clip.vision.projection_dim", (uint32_t)h->d);
        vv_gguf_set_u32(w, "clip.vision.attention.head_count", (uint32_t)h->v_heads);
        vv_gguf_set_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-5f);
        vv_gguf_set_u32(w, "clip.vision.block_count", (uint32_t)h->v_layers);
        if (h->stem) { // hybrid tower: v.stem.N convolutions before a 1x1 v.patch_embd (src/model/clip.h)
            vv_gguf_set_u32(w, "clip.vision.stem_count", (uint32_t)h->stem);
            vv_gguf_set_u32(w, "clip.vision.stem_width", (uint32_t)h->stem_ch);
        }
        // trained on the output of every layer (HF hidden_states[n_layer])
        vv_gguf_set_i32(w, "clip.vision.feature_layer", h->v_layers);
        vv_gguf_set_arr(w, "clip.vision.image_mean", VV_GGUF_FLOAT32, vt_clip_mean, 3);
        vv_gguf_set_arr(w, "clip.vision.image_std", VV_GGUF_FLOAT32, vt_clip_std, 3);
        rc = vt_export_params(w, ps, skip, n_skip, &keep, &n_keep, e);
        if (!rc) rc = vv_gguf_writer_write(w, mmproj_path, e);
        vv_gguf_writer_free(w);
    } else if (!rc) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n_keep; i++) free(keep[i]);
    free(keep);
    free(skip);
    vt_vit_export_view_free(&view, folded);
    return rc;
}

// ---------------------------------------------------------------------------
// training

int vt_vlm_train(const vt_vlm_hp *hp, const char *out_dir, bool resume, vv_error *e) {
    int rc = vv_mkdir_p(out_dir, e);
    if (rc) return rc;
    vv_pool *pool = vv_pool_create(hp->threads);
    vt_ctx *c = NULL;
    if (!pool) return vv_err(e, VISVM_ERR_NOMEM, "cannot create threads");
    if ((rc = vt_ctx_create_with_pool(pool, &c, e))) {
        vv_pool_free(pool);
        return rc;
    }
    const int B = hp->batch, S = hp->image_size;
    vv_bpe_vocab bpe = {0};
    vt_vlm m;
    memset(&m, 0, sizeof(m));
    sample_toks *st = calloc((size_t)B, sizeof(sample_toks));
    float *img = vv_aalloc((size_t)B * S * S * 3 * sizeof(float));
    uint64_t *seeds = malloc((size_t)B * sizeof(uint64_t));
    FILE *log = NULL;
    double *lx = NULL, *ly = NULL;
    int n_pts = 0, cap_pts = 0;
    char path[4096], ckpt[4096], mm[4096];
    snprintf(ckpt, sizeof(ckpt), "%s/vlm.ckpt.gguf", out_dir);
    if (!st || !img || !seeds) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = vt_world_vocab(&bpe, e)) || (rc = vt_vlm_init(&m, hp, &bpe, B, e))) goto done;
    if (hp->init_vision) { // the tower from CLIP (v.* tensors; shapes checked by name)
        int n_v = 0;
        if ((rc = vt_params_load_gguf_prefix(&m.ps, hp->init_vision, "v.", &n_v, e))) goto done;
        if (n_v != m.n_vit_params) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: %d of the tower's %d tensors found", hp->init_vision, n_v, m.n_vit_params);
            goto done;
        }
        printf("tower: %d tensors from %s%s\n", n_v, hp->init_vision, hp->freeze_vision ? " (frozen)" : "");
    }
    printf("tiny VLM: %lld parameters (tower %dpx/%d, %d image tokens), vocabulary %d, %d threads\n",
           (long long)vt_params_count(&m.ps, true), S, hp->patch, m.n_img, bpe.n, vv_pool_size(pool));
    vv_rng rng;
    vv_rng_seed(&rng, hp->seed);
    vt_ckpt_io io = {&rng, NULL, NULL, NULL, NULL, NULL};
    if (resume && vv_file_exists(ckpt)) {
        if ((rc = vt_ckpt_load(ckpt, &m.ps, 0, &io, e))) goto done;
        printf("resumed from %s at step %lld\n", ckpt, (long long)m.ps.step);
    }
    snprintf(path, sizeof(path), "%s/vlm-train.log", out_dir);
    log = fopen(path, m.ps.step > 0 ? "a" : "w");
    if (!log) {
        rc = vv_err(e, VISVM_ERR_IO, "cannot write %s", path);
        goto done;
    }
    if (m.ps.step == 0) fprintf(log, "step\tloss\ttokens\tlr\tgrad_norm\n");
    else {
        FILE *old = fopen(path, "r");
        char line[256];
        double s_sum = 0;
        int s_n = 0;
        while (old && fgets(line, sizeof(line), old)) {
            double sx, sy;
            if (sscanf(line, "%lf %lf", &sx, &sy) == 2 && sx < (double)m.ps.step) {
                s_sum += sy;
                if (++s_n == hp->log_every) {
                    if (n_pts == cap_pts) {
                        cap_pts = cap_pts ? cap_pts * 2 : 256;
                        lx = realloc(lx, (size_t)cap_pts * sizeof(double));
                        ly = realloc(ly, (size_t)cap_pts * sizeof(double));
                    }
                    lx[n_pts] = sx;
                    ly[n_pts++] = s_sum / s_n;
                    s_sum = 0;
                    s_n = 0;
                }
            }
        }
        if (old) fclose(old);
    }
    int n_prompts = 0;
    const char *const *prompts = vt_detail_prompts(&n_prompts);
    const vv_world_params wp = hp->world;
    vt_adamw opt = vt_adamw_default();
    opt.weight_decay = hp->weight_decay;
    vt_lr_sched sched = {hp->lr, hp->lr_min, hp->warmup, hp->steps};
    double t_start = vv_time_s(), run_loss = 0;
    int64_t step0 = m.ps.step;
    long run_tok = 0;
    int run_n = 0;
    while (m.ps.step < hp->steps && !rc) {
        for (int b = 0; b < B; b++) seeds[b] = vv_rng_u64(&rng) % vv_world_split_base(VV_WORLD_VAL);
        if ((rc = vt_render_batch(pool, &wp, seeds, B, S, img))) {
            vv_err(e, rc, "rendering failed");
            break;
        }
        for (int b = 0; b < B && !rc; b++) {
            vv_world_scene s;
            char *cap = NULL;
            if ((rc = vv_world_scene_make(&wp, seeds[b], &s, e))) break;
            if (hp->verify_frac > 0 && vv_rng_uniform(&rng) < hp->verify_frac) { // a yes/no or where question
                char q[VV_WORLD_SENT_MAX], a[VV_WORLD_SENT_MAX];
                bool truth = false, want = vv_rng_below(&rng, 2) == 0;
                if (hp->verify_where > 0 && vv_rng_uniform(&rng) < hp->verify_where)
                    rc = vt_vlm_where_question(&s, &rng, want, q, a, sizeof(q), &truth, e);
                else {
                    rc = vt_vlm_verify_question(&s, &rng, want, hp->verify_objects || hp->verify_short, hp->verify_short, q, sizeof(q), &truth, e);
                    snprintf(a, sizeof(a), "%s%s", hp->verify_late ? "The answer is " : "", truth ? "yes" : "no");
                }
                if (!rc) rc = build_sample(&m, q, a, &st[b], e);
                vv_world_scene_free(&s);
                continue;
            }
            rc = vv_world_captions(&s, vv_rng_u64(&rng), 1, &cap, e);
            if (!rc) rc = build_sample(&m, prompts[vv_rng_below(&rng, (uint32_t)n_prompts)], cap, &st[b], e);
            free(cap);
            vv_world_scene_free(&s);
        }
        if (rc) break;
        float loss = 0, norm = 0, lr = 0;
        int ntok = 0;
        if ((rc = train_step(c, &m, img, st, B, &sched, &opt, hp->clip_norm, &loss, &ntok, &lr, &norm, e))) break;
        fprintf(log, "%lld\t%.5f\t%d\t%.3g\t%.3f\n", (long long)m.ps.step, loss, ntok, lr, norm);
        run_loss += loss;
        run_tok += ntok;
        run_n++;
        if (m.ps.step % hp->log_every == 0 || m.ps.step == hp->steps) {
            double el = vv_time_s() - t_start, per = el / (double)(m.ps.step - step0);
            if (n_pts == cap_pts) {
                cap_pts = cap_pts ? cap_pts * 2 : 256;
                lx = realloc(lx, (size_t)cap_pts * sizeof(double));
                ly = realloc(ly, (size_t)cap_pts * sizeof(double));
            }
            if (lx && ly) {
                lx[n_pts] = (double)m.ps.step;
                ly[n_pts++] = run_loss / run_n;
            }
            printf("vlm step %5lld/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %.0f min\n", (long long)m.ps.step, hp->steps,
                   run_loss / run_n, lr, (double)run_tok / (per * run_n), per * (double)(hp->steps - m.ps.step) / 60);
            fflush(stdout);
            fflush(log);
            run_loss = 0;
            run_tok = 0;
            run_n = 0;
        }
        if (hp->ckpt_every > 0 && m.ps.step % hp->ckpt_every == 0 && (rc = vt_ckpt_save(ckpt, &m.ps, &io, e))) break;
    }
    if (!rc) rc = vt_ckpt_save(ckpt, &m.ps, &io, e);
    for (int wh = 0; wh < 2 && !rc && hp->verify_frac > 0; wh++) { // the kinds of question trained
        float acc = 0, auc = 0;
        if (wh ? hp->verify_where <= 0 : hp->verify_where >= 1) continue;
        if (!(rc = vt_vlm_verify_eval(c, &m, pool, 500, hp->seed + 77, wh, &acc, &auc, e)))
            printf("verification (500 val scenes, one true and one false %s each): accuracy %.1f%%, AUC %.3f\n",
                   wh ? "where question" : "sentence", 100 * acc, auc);
    }
    if (!rc) {
        snprintf(path, sizeof(path), "%s/vlm-text.gguf", out_dir);
        snprintf(mm, sizeof(mm), "%s/vlm-mmproj.gguf", out_dir);
        rc = vt_vlm_export(&m, path, mm, e);
        if (!rc) printf("wrote %s and %s\n", path, mm);
    }
    if (!rc && n_pts) {
        snprintf(path, sizeof(path), "%s/vlm-loss.svg", out_dir);
        vv_svg_series sv[1] = {{"caption cross-entropy", lx, ly, n_pts, NULL, NULL}};
        rc = vv_svg_line_chart(path, "tiny VLM training", "step", "loss (nats/token)", sv, 1, false, e);
    }
done:
    if (log) fclose(log);
    free(lx);
    free(ly);
    samples_free(st, B);
    vv_afree(img);
    free(seeds);
    vt_vlm_free(&m);
    vv_bpe_vocab_free(&bpe);
    vt_ctx_free(c);
    vv_pool_free(pool);
    return rc;
}

// ---------------------------------------------------------------------------
// self-training: fine-tuning on captions found by search

void vt_sft_free(vt_sft_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        free(s->items[i].caption);
        free(s->items[i].image);
    }
    free(s->items);
    free(s->image_item);
    free(s->path);
    memset(s, 0, sizeof(*s));
}

// image path relative to the JSONL's folder (absolute paths kept)
static char *sft_resolve(const char *jsonl, const char *img) {
    const char *slash = strrchr(jsonl, '/');
    if (img[0] == '/' || !slash) return vv_strdup(img);
    vv_buf b = {0};
    if (vv_buf_printf(&b, "%.*s/%s", (int)(slash - jsonl), jsonl, img)) {
        vv_buf_free(&b);
        return NULL;
    }
    return b.v; // NUL-terminated by vv_buf_printf
}

typedef struct {
    const char *image; // NULL: seed
    uint64_t seed;
    int item;
} sft_key;

static int sft_key_cmp(const void *a, const void *b) {
    const sft_key *x = a, *y = b;
    if (!x->image != !y->image) return x->image ? 1 : -1;
    if (x->image) {
        int c = strcmp(x->image, y->image);
        if (c) return c;
    } else if (x->seed != y->seed) {
        return x->seed < y->seed ? -1 : 1;
    }
    return x->item < y->item ? -1 : x->item > y->item;
}

int vt_sft_load(const char *path, const char *strategy, vt_sft_set *out, vv_error *e) {
    memset(out, 0, sizeof(*out));
    char *text = NULL;
    size_t len = 0;
    int rc = vv_read_file(path, &text, &len, e);
    if (rc) return rc;
    if (strlen(text) != len) {
        free(text);
        return vv_err(e, VISVM_ERR_FORMAT, "%s: contains a NUL byte", path);
    }
    int cap = 0, line_no = 0, skipped = 0;
    char *p = text;
    if (!(out->path = vv_strdup(path))) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    char *line;
    while (!rc && (line = vv_next_line(&p, &line_no))) {
        cJSON *j = cJSON_Parse(line);
        if (!j || !cJSON_IsObject(j)) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s:%d: %s", path, line_no, j ? "not a JSON object" : "invalid JSON");
            cJSON_Delete(j);
            break;
        }
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(j, "strategy");
        const cJSON *cap_j = cJSON_GetObjectItemCaseSensitive(j, "caption");
        const cJSON *img = cJSON_GetObjectItemCaseSensitive(j, "image_path");
        if (!cJSON_IsString(img)) img = cJSON_GetObjectItemCaseSensitive(j, "image");
        const cJSON *seed = cJSON_GetObjectItemCaseSensitive(j, "seed");
        if (strategy && !(cJSON_IsString(st) && !strcmp(st->valuestring, strategy))) {
            skipped++;
            cJSON_Delete(j);
            continue;
        }
        vt_sft_item it = {0};
        it.line = line_no;
        if (!cJSON_IsString(cap_j) || !cap_j->valuestring[0])
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s:%d: needs a non-empty \"caption\" string", path, line_no);
        else if (cJSON_IsString(img)) {
            if (!img->valuestring[0]) rc = vv_err(e, VISVM_ERR_FORMAT, "%s:%d: empty image path", path, line_no);
            else if (!(it.image = sft_resolve(path, img->valuestring))) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            else if (!vv_file_exists(it.image))
                rc = vv_err(e, VISVM_ERR_IO, "%s:%d: image %s not found", path, line_no, it.image);
        } else if (cJSON_IsNumber(seed)) {
            int64_t v;
            if (!vv_json_int(seed, 0, VV_JSON_MAX_EXACT, &v))
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s:%d: \"seed\" is not a non-negative integer below 2^53", path,
                            line_no);
            else it.seed = (uint64_t)v;
        } else {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s:%d: needs a scene \"seed\" (number) or an \"image\" path (string)",
                        path, line_no);
        }
        if (!rc && !(it.caption = vv_strdup(cap_j->valuestring))) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        if (!rc && out->n == cap) {
            int nc = cap ? cap * 2 : 64;
            vt_sft_item *ni = nc < (1 << 28) ? realloc(out->items, (size_t)nc * sizeof(*ni)) : NULL;
            if (!ni) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            else {
                out->items = ni;
                cap = nc;
            }
        }
        if (rc) {
            free(it.caption);
            free(it.image);
        } else {
            out->items[out->n++] = it;
        }
        cJSON_Delete(j);
    }
    free(text);
    if (!rc && out->n == 0) {
        if (strategy)
            rc = vv_err(e, VISVM_ERR_INVALID, "%s: no caption with strategy \"%s\" (%d lines of other strategies or none)",
                        path, strategy, skipped);
        else rc = vv_err(e, VISVM_ERR_INVALID, "%s: no captions", path);
    }
    // distinct images
    sft_key *keys = rc ? NULL : malloc((size_t)out->n * sizeof(sft_key));
    if (!rc && (!keys || !(out->image_item = malloc((size_t)out->n * sizeof(int)))))
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc) {
        for (int i = 0; i < out->n; i++) keys[i] = (sft_key){out->items[i].image, out->items[i].seed, i};
        qsort(keys, (size_t)out->n, sizeof(sft_key), sft_key_cmp);
        for (int i = 0; i < out->n; i++) {
            const sft_key *k = &keys[i], *q = i ? &keys[i - 1] : NULL;
            bool same = q && !k->image == !q->image && (k->image ? !strcmp(k->image, q->image) : k->seed == q->seed);
            if (!same) out->image_item[out->n_images++] = k->item;
            out->items[k->item].img = out->n_images - 1;
        }
    }
    free(keys);
    if (rc) vt_sft_free(out);
    return rc;
}

int vt_sft_images(vv_pool *pool, const vt_sft_set *s, int size, float *out, vv_error *e) {
    const size_t per = (size_t)size * size * 3;
    vv_world_params wp = vv_world_default_params();
    uint64_t *seeds = malloc((size_t)s->n_images * sizeof(uint64_t));
    int *where = malloc((size_t)s->n_images * sizeof(int));
    int rc = seeds && where ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    int n_seeds = 0;
    for (int i = 0; i < s->n_images && !rc; i++) {
        const vt_sft_item *it = &s->items[s->image_item[i]];
        if (!it->image) {
            seeds[n_seeds] = it->seed;
            where[n_seeds++] = i;
            continue;
        }
        vv_image im = {0};
        rc = vv_image_load_file(it->image, &im, e);
        if (!rc) rc = vt_image_normalize(&im, size, out + (size_t)i * per, e);
        vv_image_free(&im);
        if (rc) {
            char msg[sizeof(e->msg)];
            snprintf(msg, sizeof(msg), "%s", e->msg);
            vv_err(e, rc, "%s:%d: %s", s->path, it->line, msg);
        }
    }
    // world scenes: rendered on the pool, in chunks
    float *tmp = NULL;
    const int chunk = 64;
    if (!rc && n_seeds && !(tmp = vv_aalloc((size_t)chunk * per * sizeof(float))))
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i0 = 0; i0 < n_seeds && !rc; i0 += chunk) {
        int k = VV_MIN(chunk, n_seeds - i0);
        if ((rc = vt_render_batch(pool, &wp, seeds + i0, k, size, tmp))) {
            vv_err(e, rc, "%s: rendering the scenes of seeds %llu..%llu failed", s->path, (unsigned long long)seeds[i0],
                   (unsigned long long)seeds[i0 + k - 1]);
            break;
        }
        for (int j = 0; j < k; j++) memcpy(out + (size_t)where[i0 + j] * per, tmp + (size_t)j * per, per * sizeof(float));
    }
    vv_afree(tmp);
    free(seeds);
    free(where);
    return rc;
}

int vt_vlm_load(vt_vlm *m, const char *dir, const vt_vlm_hp *hp_in, int max_B, vv_error *e) {
    memset(m, 0, sizeof(*m));
    char tp[4096], mp[4096], cp[4096];
    snprintf(tp, sizeof(tp), "%s/vlm-text.gguf", dir);
    snprintf(mp, sizeof(mp), "%s/vlm-mmproj.gguf", dir);
    snprintf(cp, sizeof(cp), "%s/vlm.ckpt.gguf", dir);
    vt_vlm_hp hp = *hp_in;
    vv_gguf *tg = NULL, *mg = NULL;
    vv_vocab *voc = NULL;
    vv_bpe_vocab bpe = {0};
    uint32_t PD = 0, D = 0, L = 0, H = 0, KV = 0, F = 0;
    const char *ptype = NULL;
    int rc = vv_gguf_open(tp, &tg, e);
    if (!rc) rc = vv_gguf_open(mp, &mg, e);
    const struct {
        vv_gguf *g;
        const char *key;
        uint32_t *dst;
    } keys[] = {{mg, "clip.vision.projection_dim", &PD},
                {tg, "llama.embedding_length", &D},
                {tg, "llama.block_count", &L},
                {tg, "llama.attention.head_count", &H},
                {tg, "llama.attention.head_count_kv", &KV},
                {tg, "llama.feed_forward_length", &F}};
    for (size_t i = 0; !rc && i < sizeof(keys) / sizeof(keys[0]); i++) rc = vv_gguf_get_u32(keys[i].g, keys[i].key, keys[i].dst, e);
    vt_vit_cfg vc = {0};
    if (!rc) rc = vt_vit_cfg_from_gguf(mg, mp, &vc, e);
    if (!rc) rc = vv_gguf_get_f32_def(tg, "llama.rope.freq_base", 10000.0f, &hp.rope_base, e);
    if (!rc && !(rc = vv_gguf_get_str(mg, "clip.projector_type", &ptype, e)) && strcmp(ptype, "mlp"))
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: projector \"%s\" (the trainer's VLM has \"mlp\")", mp, ptype);
    if (!rc && PD != D) rc = vv_err(e, VISVM_ERR_FORMAT, "%s: projection width %u differs from the decoder's %u", mp, PD, D);
    const uint32_t lim = 1u << 16;
    if (!rc && (D > lim || L > lim || H > lim || KV > lim || F > lim || vc.image_size % vc.patch || vc.width % vc.heads ||
                !H || D % H || !KV || H % KV))
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s, %s: hyper-parameters out of range", tp, mp);
    // tokenizer: the file's, exported again as it is
    if (!rc) rc = vv_vocab_load(tg, &voc, e);
    if (!rc) {
        bpe.n = vv_vocab_n(voc);
        bpe.texts = calloc((size_t)bpe.n, sizeof(char *));
        bpe.scores = malloc((size_t)bpe.n * sizeof(float));
        bpe.types = malloc((size_t)bpe.n * sizeof(int32_t));
        if (!bpe.texts || !bpe.scores || !bpe.types) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        for (int i = 0; !rc && i < bpe.n; i++) {
            if (!(bpe.texts[i] = vv_strdup(vv_vocab_text(voc, i)))) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            bpe.scores[i] = vv_vocab_score(voc, i);
            bpe.types[i] = vv_vocab_type(voc, i);
        }
    }
    vv_vocab_free(voc);
    vv_gguf_close(tg);
    vv_gguf_close(mg);
    if (!rc) {
        hp.image_size = vc.image_size;
        hp.patch = vc.patch;
        hp.v_width = vc.width;
        hp.v_layers = vc.layers;
        hp.v_heads = vc.heads;
        hp.v_ff = vc.ff;
        hp.stem = vc.stem;
        hp.stem_ch = vc.stem_ch;
        hp.d = (int)D;
        hp.layers = (int)L;
        hp.heads = (int)H;
        hp.kv_heads = (int)KV;
        hp.ff = (int)F;
        rc = vt_vlm_init(m, &hp, &bpe, max_B, e);
    }
    vv_bpe_vocab_free(&bpe);
    if (!rc && vv_file_exists(cp)) {
        rc = vt_ckpt_load(cp, &m->ps, VT_CKPT_WEIGHTS_ONLY, NULL, e);
    } else if (!rc) {
        bool *done = calloc((size_t)m->ps.n, sizeof(bool));
        int n_loaded = 0;
        rc = done ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        if (!rc) rc = vt_params_load_gguf(&m->ps, tp, done, &n_loaded, e);
        if (!rc) rc = vt_params_load_gguf(&m->ps, mp, done, &n_loaded, e);
        for (int i = 0; !rc && i < m->ps.n; i++)
            if (!done[i]) rc = vv_err(e, VISVM_ERR_FORMAT, "%s, %s: tensor %s missing", tp, mp, m->ps.items[i].name);
        free(done);
    }
    if (rc) vt_vlm_free(m);
    return rc;
}

int vt_vlm_sft_loss(vt_ctx *c, vt_vlm *m, const vt_sft_set *s, const float *images, int max_items, double *loss,
                    vv_error *e) {
    const int S = m->hp.image_size, B = m->max_B;
    const size_t per = (size_t)S * S * 3;
    const int n = max_items > 0 && max_items < s->n ? max_items : s->n;
    int np = 0;
    const char *const *prompts = vt_detail_prompts(&np);
    float *img = vv_aalloc((size_t)B * per * sizeof(float));
    const char **pr = malloc((size_t)B * sizeof(char *)), **caps = malloc((size_t)B * sizeof(char *));
    int rc = img && pr && caps ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    double sum = 0;
    long tok = 0;
    for (int i0 = 0; i0 < n && !rc; i0 += B) {
        int k = VV_MIN(B, n - i0);
        for (int b = 0; b < k; b++) {
            int i = (int)((int64_t)(i0 + b) * s->n / n); // evenly spread
            const vt_sft_item *it = &s->items[i];
            memcpy(img + (size_t)b * per, images + (size_t)it->img * per, per * sizeof(float));
            pr[b] = prompts[i % np];
            caps[b] = it->caption;
        }
        float l = 0;
        int nt = 0;
        if (!(rc = vt_vlm_loss(c, m, img, pr, caps, k, false, &l, &nt, e))) {
            sum += (double)l * nt;
            tok += nt;
        }
    }
    *loss = tok ? sum / (double)tok : 0;
    vv_afree(img);
    free(pr);
    free(caps);
    return rc;
}

vt_vlm_hp vt_vlm_sft_default_hp(void) {
    vt_vlm_hp h = vt_vlm_default_hp();
    h.batch = 16;
    h.steps = 300;
    h.warmup = 20;
    h.lr = 1e-4f;
    h.lr_min = 1e-5f;
    h.ckpt_every = 0;
    return h;
}

int vt_vlm_sft(const vt_vlm_hp *hp, const char *captions, const char *strategy, const char *init_dir,
               const char *out_dir, vv_error *e) {
    vt_sft_set set;
    int rc = vt_sft_load(captions, strategy, &set, e);
    if (rc) return rc;
    if ((rc = vv_mkdir_p(out_dir, e))) {
        vt_sft_free(&set);
        return rc;
    }
    vv_pool *pool = vv_pool_create(hp->threads);
    vt_ctx *c = NULL;
    if (!pool) {
        vt_sft_free(&set);
        return vv_err(e, VISVM_ERR_NOMEM, "cannot create threads");
    }
    if ((rc = vt_ctx_create_with_pool(pool, &c, e))) {
        vt_sft_free(&set);
        vv_pool_free(pool);
        return rc;
    }
    const int B = hp->batch;
    vt_vlm m;
    memset(&m, 0, sizeof(m));
    sample_toks *st = calloc((size_t)B, sizeof(sample_toks));
    int *perm = malloc((size_t)set.n * sizeof(int));
    float *images = NULL, *img = NULL;
    FILE *log = NULL;
    char path[4096], mm[4096];
    double before = 0, after = 0;
    size_t per = 0;
    if (!st || !perm) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = vt_vlm_load(&m, init_dir, hp, B, e))) goto done;
    const int S = m.hp.image_size;
    per = (size_t)S * S * 3;
    images = vv_aalloc((size_t)set.n_images * per * sizeof(float));
    img = vv_aalloc((size_t)B * per * sizeof(float));
    if (!images || !img) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = vt_sft_images(pool, &set, S, images, e))) goto done;
    printf("self-training: %d captions of %d images from %s%s%s%s; VLM of %s (%lld parameters, %d threads)\n", set.n,
           set.n_images, captions, strategy ? " (strategy " : "", strategy ? strategy : "", strategy ? ")" : "",
           init_dir, (long long)vt_params_count(&m.ps, true), vv_pool_size(pool));
    enum { EVAL_ITEMS = 512 };
    if ((rc = vt_vlm_sft_loss(c, &m, &set, images, EVAL_ITEMS, &before, e))) goto done;
    printf("caption loss before: %.4f nats/token\n", before);
    snprintf(path, sizeof(path), "%s/vlm-sft.log", out_dir);
    if (!(log = fopen(path, "w"))) {
        rc = vv_err(e, VISVM_ERR_IO, "cannot write %s", path);
        goto done;
    }
    fprintf(log, "step\tloss\ttokens\tlr\tgrad_norm\n");
    int n_prompts = 0;
    const char *const *prompts = vt_detail_prompts(&n_prompts);
    vv_rng rng;
    vv_rng_seed(&rng, hp->seed);
    vt_adamw opt = vt_adamw_default();
    opt.weight_decay = hp->weight_decay;
    vt_lr_sched sched = {hp->lr, hp->lr_min, hp->warmup, hp->steps};
    double t_start = vv_time_s(), run_loss = 0;
    long run_tok = 0;
    int run_n = 0, pos = set.n; // pos == n: shuffle a new epoch
    while (m.ps.step < hp->steps && !rc) {
        for (int b = 0; b < B && !rc; b++) {
            if (pos == set.n) { // Fisher-Yates
                for (int i = 0; i < set.n; i++) perm[i] = i;
                for (int i = set.n - 1; i > 0; i--) {
                    int j = (int)vv_rng_below(&rng, (uint32_t)i + 1), t = perm[i];
                    perm[i] = perm[j];
                    perm[j] = t;
                }
                pos = 0;
            }
            const vt_sft_item *it = &set.items[perm[pos++]];
            memcpy(img + (size_t)b * per, images + (size_t)it->img * per, per * sizeof(float));
            rc = build_sample(&m, prompts[vv_rng_below(&rng, (uint32_t)n_prompts)], it->caption, &st[b], e);
        }
        if (rc) break;
        float loss = 0, norm = 0, lr = 0;
        int ntok = 0;
        if ((rc = train_step(c, &m, img, st, B, &sched, &opt, hp->clip_norm, &loss, &ntok, &lr, &norm, e))) break;
        fprintf(log, "%lld\t%.5f\t%d\t%.3g\t%.3f\n", (long long)m.ps.step, loss, ntok, lr, norm);
        run_loss += loss;
        run_tok += ntok;
        run_n++;
        if (m.ps.step % hp->log_every == 0 || m.ps.step == hp->steps) {
            double per_step = (vv_time_s() - t_start) / (double)m.ps.step;
            printf("sft step %5lld/%d  loss %.4f  lr %.2e  %.0f tok/s  ETA %.1f min\n", (long long)m.ps.step, hp->steps,
                   run_loss / run_n, lr, (double)run_tok / (per_step * run_n),
                   per_step * (double)(hp->steps - m.ps.step) / 60);
            fflush(stdout);
            fflush(log);
            run_loss = 0;
            run_tok = 0;
            run_n = 0;
        }
    }
    if (rc) goto done;
    if ((rc = vt_vlm_sft_loss(c, &m, &set, images, EVAL_ITEMS, &after, e))) goto done;
    printf("caption loss after:  %.4f nats/token\n", after);
    snprintf(path, sizeof(path), "%s/vlm.ckpt.gguf", out_dir);
    if ((rc = vt_ckpt_save(path, &m.ps, NULL, e))) goto done;
    snprintf(path, sizeof(path), "%s/vlm-text.gguf", out_dir);
    snprintf(mm, sizeof(mm), "%s/vlm-mmproj.gguf", out_dir);
    if ((rc = vt_vlm_export(&m, path, mm, e))) goto done;
    printf("wrote %s and %s\n", path, mm);
    cJSON *j = cJSON_CreateObject();
    char *js = NULL;
    if (j) {
        cJSON_AddStringToObject(j, "captions_file", captions);
        if (strategy) cJSON_AddStringToObject(j, "strategy", strategy);
        cJSON_AddStringToObject(j, "init", init_dir);
        cJSON_AddNumberToObject(j, "captions", set.n);
        cJSON_AddNumberToObject(j, "images", set.n_images);
        cJSON_AddNumberToObject(j, "steps", hp->steps);
        cJSON_AddNumberToObject(j, "batch", B);
        cJSON_AddNumberToObject(j, "lr", hp->lr);
        cJSON_AddNumberToObject(j, "seed", (double)hp->seed);
        cJSON_AddNumberToObject(j, "loss_before", before);
        cJSON_AddNumberToObject(j, "loss_after", after);
        cJSON_AddNumberToObject(j, "loss_items", VV_MIN(set.n, (int)EVAL_ITEMS));
        js = cJSON_Print(j);
        cJSON_Delete(j);
    }
    snprintf(path, sizeof(path), "%s/vlm-sft.json", out_dir);
    if (!js) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    else {
        size_t n = strlen(js);
        js[n] = '\n'; // cJSON_Print's buffer has room for the NUL: replaced, length + 1 written
        rc = vv_write_file_atomic(path, js, n + 1, e);
        free(js);
    }
done:
    if (log) fclose(log);
    samples_free(st, B);
    free(perm);
    vv_afree(images);
    vv_afree(img);
    vt_vlm_free(&m);
    vt_sft_free(&set);
    vt_ctx_free(c);
    vv_pool_free(pool);
    return rc;
}
