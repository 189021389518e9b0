// value.c - VisVM value model inference (see value.h).
#include "value.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gen/llava.h"
#include "hf.h"

void vv_value_free(vv_value *v) {
    if (!v) return;
    if (v->hf) vv_hf_free(v->hf); // owns lm
    else vv_llama_free(v->lm);
    vv_clip_free(v->vision);
    vv_value_head_free(v->chead);
    free(v->head);
    free(v);
}

int vv_value_clip_n_features(int P, int rank) { return 3 * P + rank * rank; }

void vv_value_clip_features(const vv_value_head *h, const float *img_n, const float *txt_n, int P, float *phi) {
    for (int k = 0; k < P; k++) {
        phi[k] = img_n[k] * txt_n[k];
        phi[P + k] = txt_n[k];
        phi[2 * P + k] = img_n[k];
    }
    const int R = h ? h->rank : 0;
    if (R <= 0) return;
    float a[64], b[64]; // R <= 64 (checked at load and in training)
    for (int r = 0; r < R; r++) {
        double sa = 0, sb = 0;
        for (int k = 0; k < P; k++) {
            sa += (double)h->u_img[(size_t)r * P + k] * img_n[k];
            sb += (double)h->u_txt[(size_t)r * P + k] * txt_n[k];
        }
        a[r] = (float)sa;
        b[r] = (float)sb;
    }
    float *o = phi + 3 * P; // [R (image), R (sentence)]
    for (int r = 0; r < R; r++)
        for (int c = 0; c < R; c++) o[r * R + c] = a[r] * b[c];
}

// A value head on a full CLIP: head_path (visvm-value-head, backbone clip) + the CLIP GGUF.
static int load_clip_backbone(vv_value *v, const char *head_path, const char *clip_path, vv_error *e) {
    int rc = vv_value_head_load(head_path, &v->chead, e);
    if (rc) return rc;
    if (strcmp(v->chead->backbone, "clip") != 0)
        return vv_err(e, VISVM_ERR_INVALID, "%s is a value head on the policy (visvm-shared search: --value-head), "
                      "not a value model", head_path);
    if (!clip_path) return vv_err(e, VISVM_ERR_INVALID, "%s is a value head on a CLIP: give that CLIP's GGUF as the "
                                  "value model's mmproj (--value-mmproj)", head_path);
    if ((rc = vv_clip_load_file(clip_path, VISVM_VISION_REFERENCE, &v->vision, e))) return rc;
    if (!v->vision->has_text)
        return vv_err(e, VISVM_ERR_FORMAT, "%s has no text encoder: a CLIP-backbone value head needs a full CLIP",
                      clip_path);
    const int P = v->vision->proj_dim, R = v->chead->rank;
    if (v->chead->n_embd != vv_value_clip_n_features(P, R) || (R > 0 && v->chead->proj_dim != P))
        return vv_err(e, VISVM_ERR_FORMAT, "%s reads %d features (bilinear rank %d) but %s gives 3 x %d%s", head_path,
                      v->chead->n_embd, R, clip_path, P, R > 0 ? " + rank^2" : "");
    v->gamma = v->chead->gamma;
    v->reward_offset = v->chead->reward_offset;
    snprintf(v->terminal, sizeof(v->terminal), "%s", v->chead->terminal);
    return VISVM_OK;
}

// The GGUF's general.architecture ("" when absent) and visvm.value.head ("last_token" when
// absent), read in one opening.
static int peek_kind(const char *path, char *arch, size_t na, char *head, size_t nh, vv_error *e) {
    vv_gguf *g = NULL;
    int rc = vv_gguf_open(path, &g, e);
    if (rc) return rc;
    const char *a = "", *h = "last_token";
    if (vv_gguf_find_key(g, "general.architecture") >= 0) rc = vv_gguf_get_str(g, "general.architecture", &a, e);
    if (!rc && vv_gguf_find_key(g, "visvm.value.head") >= 0) rc = vv_gguf_get_str(g, "visvm.value.head", &h, e);
    if (!rc) {
        snprintf(arch, na, "%s", a);
        snprintf(head, nh, "%s", h);
    }
    vv_gguf_close(g);
    return rc;
}

// A VisVM value model with the flattened head: an HF directory or its conversion.
static int load_flattened(vv_value *v, const char *text_path, const char *mmproj_path, vv_error *e) {
    int rc = vv_hf_is_dir(text_path) ? vv_hf_load(text_path, &v->hf, e)
                                     : vv_hf_load_gguf(text_path, mmproj_path, &v->hf, e);
    if (rc) return rc;
    if (!v->hf->is_value)
        return vv_err(e, VISVM_ERR_INVALID, "%s is not a value model (config.json architectures is not ValueModel)",
                      text_path);
    v->lm = v->hf->lm;
    v->pad_mode = VV_HF_PAD_SDPA;
    v->gamma = 0.9f;
    snprintf(v->terminal, sizeof(v->terminal), "bootstrap");
    return VISVM_OK;
}

int vv_value_load(const char *text_path, const char *mmproj_path, vv_value **out, vv_error *e) {
    *out = NULL;
    vv_value *v = calloc(1, sizeof(*v));
    if (!v) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    int rc;
    char head_kind[32] = "last_token", arch[32] = "";
    if (!vv_hf_is_dir(text_path) && (rc = peek_kind(text_path, arch, sizeof(arch), head_kind, sizeof(head_kind), e)))
        goto fail;
    if (!strcmp(arch, "visvm-value-head")) {
        if ((rc = load_clip_backbone(v, text_path, mmproj_path, e))) goto fail;
        *out = v;
        return VISVM_OK;
    }
    if (vv_hf_is_dir(text_path) || !strcmp(head_kind, "flattened")) {
        if ((rc = load_flattened(v, text_path, mmproj_path, e))) goto fail;
        *out = v;
        return VISVM_OK;
    }
    rc = vv_llama_load_file(text_path, &v->lm, e);
    if (!rc) rc = vv_clip_load_file(mmproj_path, VISVM_VISION_REFERENCE, &v->vision, e);
    if (rc) goto fail;
    if (!v->vision->has_projector || v->vision->n_embd_out != v->lm->hp.n_embd) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s does not project into the value model's %d dimensions", mmproj_path,
                    v->lm->hp.n_embd);
        goto fail;
    }
    const vv_gguf *g = v->lm->gguf;
    const char *head = "last_token";
    if (vv_gguf_find_key(g, "visvm.value.head") >= 0 && (rc = vv_gguf_get_str(g, "visvm.value.head", &head, e))) goto fail;
    if (strcmp(head, "last_token") != 0) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: value head '%s' is not supported in GGUF files (only last_token)",
                    text_path, head);
        goto fail;
    }
    const vv_tensor *hw = vv_gguf_find_tensor(g, "value_head.weight"), *hb = vv_gguf_find_tensor(g, "value_head.bias");
    const int D = v->lm->hp.n_embd;
    if (!hw || !hb || hw->ne[0] != D || vv_tensor_nelements(hw) != D || vv_tensor_nelements(hb) != 1 ||
        hw->type != VV_TYPE_F32 || hb->type != VV_TYPE_F32) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: needs F32 tensors value_head.weight [%d] and value_head.bias [1]",
                    text_path, D);
        goto fail;
    }
    v->head = malloc((size_t)D * sizeof(float));
    if (!v->head) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    memcpy(v->head, hw->data, (size_t)D * sizeof(float));
    v->bias = ((const float *)hb->data)[0];
    if ((rc = vv_gguf_get_f32_def(g, "visvm.value.gamma", 0.9f, &v->gamma, e)) ||
        (rc = vv_gguf_get_f32_def(g, "visvm.value.reward_offset", 0.0f, &v->reward_offset, e)) ||
        (rc = vv_gguf_get_bool_def(g, "visvm.value.with_prefix", false, &v->with_prefix, e)))
        goto fail;
    snprintf(v->terminal, sizeof(v->terminal), "bootstrap");
    if (vv_gguf_find_key(g, "visvm.value.terminal") >= 0) {
        const char *t = NULL;
        if ((rc = vv_gguf_get_str(g, "visvm.value.terminal", &t, e))) goto fail;
        snprintf(v->terminal, sizeof(v->terminal), "%s", t);
    }
    *out = v;
    return VISVM_OK;
fail:
    vv_value_free(v);
    return rc;
}

struct vv_value_state {
    const vv_value *v;
    vv_pool *pool;
    vv_llama_state *st;
    int max_batch;
    int32_t n_prefix;
    bool has_image;
    // the "\n" that opens every scored state ("<image>\n{sentence} ASSISTANT:"): its
    // tokens, and whether they are decoded on sequence 1 + max_batch (vv_value_set_image)
    vv_ivec nl;
    bool nl_ready;
    float *hidden; // [max_batch, n_embd]
    float *feats;  // flattened head: image features of the current image [n_img, n_embd]
    int n_img;
    // CLIP backbone: normalised image features, one sentence's, phi; encoder scratch
    float *cimg, *ctxt, *cphi;
    vv_clip_work cw;
};

void vv_value_state_free(vv_value_state *s) {
    if (!s) return;
    vv_llama_state_free(s->st);
    vv_ivec_free(&s->nl);
    free(s->hidden);
    free(s->feats);
    free(s->cimg);
    free(s->ctxt);
    free(s->cphi);
    vv_clip_work_free(&s->cw);
    free(s);
}

int vv_value_state_create(const vv_value *v, vv_pool *pool, int max_batch, vv_value_state **out, vv_error *e) {
    *out = NULL;
    if (max_batch <= 0 || max_batch > 1024) return vv_err(e, VISVM_ERR_INVALID, "value batch %d out of range", max_batch);
    vv_value_state *s = calloc(1, sizeof(*s));
    if (!s) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    s->v = v;
    s->pool = pool;
    s->max_batch = max_batch;
    if (v->hf) { // one full masked forward per sentence: no KV state
        *out = s;
        return VISVM_OK;
    }
    if (v->chead) { // CLIP backbone: features only
        const int P = v->vision->proj_dim;
        s->cimg = malloc((size_t)P * sizeof(float));
        s->ctxt = malloc((size_t)P * sizeof(float));
        s->cphi = malloc((size_t)v->chead->n_embd * sizeof(float));
        if (!s->cimg || !s->ctxt || !s->cphi) {
            vv_value_state_free(s);
            return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        }
        *out = s;
        return VISVM_OK;
    }
    // prefix (image) + up to 96 tokens per sentence (and its caption prefix when used)
    int per = v->with_prefix ? 320 : 96;
    // sequences: 0 the image prefix, 1..max_batch the candidates, 1 + max_batch prefix + "\n"
    vv_llama_state_params sp = {2048 + max_batch * per, 2 + max_batch, 512, pool};
    int rc = vv_llama_state_create(v->lm, &sp, &s->st, e);
    if (!rc) rc = vv_tokenize(v->lm->vocab, "\n", 1, false, false, &s->nl, e);
    s->hidden = malloc((size_t)max_batch * v->lm->hp.n_embd * sizeof(float));
    if (!rc && !s->hidden) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (rc) {
        vv_value_state_free(s);
        return rc;
    }
    *out = s;
    return VISVM_OK;
}

void vv_normalise(float *x, int n) {
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
    if (ss > 0) {
        const float inv = (float)(1.0 / sqrt(ss));
        for (int i = 0; i < n; i++) x[i] *= inv;
    }
}

int vv_value_set_image(vv_value_state *s, const vv_image *img, vv_error *e) {
    const vv_value *v = s->v;
    if (v->chead) {
        vv_image_batch b = {0};
        s->has_image = false;
        int rc = vv_preprocess(img, &v->vision->pre, &b, e);
        if (!rc) rc = vv_clip_image_features(v->vision, s->pool, b.data, s->cimg, &s->cw, e);
        vv_image_batch_free(&b);
        if (!rc) vv_normalise(s->cimg, v->vision->proj_dim);
        s->has_image = rc == VISVM_OK;
        return rc;
    }
    if (v->hf) {
        s->has_image = false;
        free(s->feats);
        s->feats = NULL;
        int rc = vv_hf_image_features(v->hf, s->pool, img, NULL, &s->feats, &s->n_img, e);
        s->has_image = rc == VISVM_OK;
        return rc;
    }
    vv_image_batch b = {0};
    float *emb = NULL;
    int n_emb = 0;
    vv_ivec pre = {0};
    s->has_image = false;
    for (int i = 0; i < vv_llama_state_n_seq(s->st); i++) vv_llama_seq_clear(s->st, i);
    int rc = vv_preprocess(img, &v->vision->pre, &b, e);
    if (!rc) rc = vv_clip_embed(v->vision, s->pool, &b, &emb, &n_emb, NULL, e);
    // "USER: " with BOS, as the text before <image> in the template
    if (!rc) rc = vv_tokenize(v->lm->vocab, "USER: ", 6, true, true, &pre, e);
    if (!rc) rc = vv_llava_prefill(s->st, 0, pre.v, (int)pre.n, emb, n_emb, NULL, 0, NULL, NULL, e);
    if (!rc) {
        s->n_prefix = vv_llama_seq_len(s->st, 0);
        s->has_image = true;
    }
    // Every scored state continues the prefix with the same "\n" tokens: decoded once
    // here on their own sequence, a step's candidates fork after them (two of a 28-row
    // candidate at the 1.1B bench shape). Only behind a long image prefix (>= 256
    // positions, a CLIP-L image): the saving is a few rows of a short forward otherwise,
    // and the "\n" rows' attention, computed in another batch, rounds differently (the
    // world models' values stay bit for bit). VISVM_VALUE_NL=0 / 1 forces it off / on.
    s->nl_ready = false;
    const char *env = getenv("VISVM_VALUE_NL");
    const bool nl_on = env ? strcmp(env, "0") != 0 : s->n_prefix >= 256;
    if (!rc && nl_on && s->nl.n > 0) {
        const int nls = 1 + s->max_batch;
        rc = vv_llama_seq_fork(s->st, 0, nls, e);
        if (!rc) rc = vv_llama_decode_seq(s->st, nls, s->nl.v, NULL, (int)s->nl.n, false, NULL, e);
        s->nl_ready = !rc;
        if (rc) s->has_image = false;
    }
    vv_ivec_free(&pre);
    vv_afree(emb);
    vv_image_batch_free(&b);
    return rc;
}

static int score_impl(vv_value_state *s, const char *const *sentences, const int32_t *const *ids, const int *n_ids,
                      int n, const char *prefix, float *out, vv_error *e);

int vv_value_score(vv_value_state *s, const char *const *sentences, int n, const char *prefix, float *out,
                   vv_error *e) {
    return score_impl(s, sentences, NULL, NULL, n, prefix, out, e);
}

int vv_value_score_ids(vv_value_state *s, const int32_t *const *ids, const int *n_ids, int n, float *out, vv_error *e) {
    if (s->v->hf) return vv_err(e, VISVM_ERR_UNSUPPORTED, "vv_value_score_ids: flattened-head models score text only");
    if (s->v->chead) return vv_err(e, VISVM_ERR_UNSUPPORTED, "vv_value_score_ids: CLIP-backbone models score text only");
    if (s->v->with_prefix) return vv_err(e, VISVM_ERR_UNSUPPORTED, "vv_value_score_ids: models with a caption prefix score text only");
    return score_impl(s, NULL, ids, n_ids, n, NULL, out, e);
}

int vv_value_state_nl_tokens(const vv_value_state *s) { return s && s->nl_ready ? (int)s->nl.n : 0; }

// Candidate seq's state: toks[before..] continue the image prefix. When they start
// with the "\n" decoded in vv_value_set_image, fork the sequence that holds it and
// drop those tokens; otherwise fork the image prefix.
static int fork_candidate(vv_value_state *s, vv_ivec *toks, size_t before, int seq, vv_error *e) {
    const size_t k = s->nl.n;
    if (s->nl_ready && toks->n - before > k && !memcmp(toks->v + before, s->nl.v, k * sizeof(int32_t))) {
        memmove(toks->v + before, toks->v + before + k, (toks->n - before - k) * sizeof(int32_t));
        toks->n -= k;
        return vv_llama_seq_fork(s->st, 1 + s->max_batch, seq, e);
    }
    return vv_llama_seq_fork(s->st, 0, seq, e);
}

static int score_impl(vv_value_state *s, const char *const *sentences, const int32_t *const *ids, const int *n_ids,
                      int n, const char *prefix, float *out, vv_error *e) {
    const vv_value *v = s->v;
    if (!s->has_image) return vv_err(e, VISVM_ERR_INVALID, "vv_value_score: no image set");
    if (v->hf) {
        (void)prefix; // VisVM scores the sentence alone
        for (int i = 0; i < n; i++) {
            char *sd = vv_defuse_image_marker(sentences[i]);
            if (!sd) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            int rc = vv_hf_value_feats(v->hf, s->pool, s->feats, s->n_img, sd, v->pad_mode, &out[i], NULL, NULL, NULL, e);
            free(sd);
            if (rc) return rc;
        }
        return VISVM_OK;
    }
    if (v->chead) { // the sentence alone, as the CLIP reward reads it; prefix unused
        const int P = v->vision->proj_dim;
        for (int i = 0; i < n; i++) {
            int rc = vv_clip_text_features(v->vision, s->pool, sentences[i], s->ctxt, &s->cw, e);
            if (rc) return rc;
            vv_normalise(s->ctxt, P);
            vv_value_clip_features(v->chead, s->cimg, s->ctxt, P, s->cphi);
            out[i] = (float)vv_value_head_apply(v->chead, s->cphi);
        }
        return VISVM_OK;
    }
    const int D = v->lm->hp.n_embd;
    int rc = VISVM_OK;
    for (int i0 = 0; i0 < n && !rc; i0 += s->max_batch) {
        const int k = VV_MIN(s->max_batch, n - i0);
        vv_ivec toks = {0};
        int *seg_seq = malloc((size_t)k * sizeof(int)), *seg_len = malloc((size_t)k * sizeof(int));
        if (!seg_seq || !seg_len) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        for (int j = 0; j < k && !rc; j++) {
            size_t before = toks.n;
            if (ids) { // "\n" + the sentence's own ids + " ASSISTANT:" (same vocabulary as the policy)
                if (vv_ivec_append(&toks, s->nl.v, s->nl.n)) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                for (int t = 0; t < n_ids[i0 + j] && !rc; t++)
                    if (ids[i0 + j][t] < 0 || ids[i0 + j][t] >= v->lm->hp.n_vocab)
                        rc = vv_err(e, VISVM_ERR_RANGE, "token id %d out of the value model's vocabulary", ids[i0 + j][t]);
                    else if (vv_ivec_push(&toks, ids[i0 + j][t]))
                        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                if (!rc) rc = vv_tokenize(v->lm->vocab, " ASSISTANT:", 11, false, false, &toks, e);
                if (rc) break;
                if ((rc = fork_candidate(s, &toks, before, 1 + j, e))) break;
                seg_seq[j] = 1 + j;
                seg_len[j] = (int)(toks.n - before);
                continue;
            }
            // the text after <image>: "\n{[caption so far ]sentence} ASSISTANT:", tokenized as the LLaVA prompt
            vv_buf full = {0}, body = {0};
            vv_ivec pre = {0};
            bool hi;
            char *sd = vv_defuse_image_marker(sentences[i0 + j]);
            char *pd = v->with_prefix && prefix && *prefix ? vv_defuse_image_marker(prefix) : NULL;
            if (pd) vv_buf_printf(&body, "%s %s", pd, sd ? sd : "");
            else vv_buf_printf(&body, "%s", sd ? sd : "");
            free(sd);
            free(pd);
            rc = vv_chat_format(VISVM_TEMPLATE_LLAVA15, body.v ? body.v : "", true, &full);
            if (!rc) rc = vv_llava_tokenize(v->lm->vocab, full.v, &pre, &toks, &hi, e);
            vv_buf_free(&full);
            vv_buf_free(&body);
            vv_ivec_free(&pre);
            if (rc) break;
            if ((rc = fork_candidate(s, &toks, before, 1 + j, e))) break;
            seg_seq[j] = 1 + j;
            seg_len[j] = (int)(toks.n - before);
        }
        if (!rc) {
            vv_llama_batch b = {(int)toks.n, toks.v, NULL, k, seg_seq, seg_len, NULL};
            rc = vv_llama_decode(s->st, &b, NULL, s->hidden, e);
        }
        for (int j = 0; j < k && !rc; j++) {
            const float *h = s->hidden + (size_t)j * D;
            double acc = v->bias;
            for (int d = 0; d < D; d++) acc += (double)v->head[d] * h[d];
            out[i0 + j] = (float)acc;
        }
        for (int j = 0; j < k; j++) vv_llama_seq_clear(s->st, 1 + j);
        free(seg_seq);
        free(seg_len);
        vv_ivec_free(&toks);
    }
    return rc;
}

// ---------------------------------------------------------------------------
// value head on the policy

void vv_value_head_free(vv_value_head *h) {
    if (!h) return;
    free(h->w);
    free(h->u_img);
    free(h->u_txt);
    free(h);
}

double vv_value_head_apply(const vv_value_head *h, const float *hidden) {
    double acc = h->bias;
    for (int d = 0; d < h->n_embd; d++) acc += (double)h->w[d] * hidden[d];
    return acc;
}

int vv_value_head_load(const char *path, vv_value_head **out, vv_error *e) {
    *out = NULL;
    vv_gguf *g = NULL;
    int rc = vv_gguf_open(path, &g, e);
    if (rc) return rc;
    vv_value_head *h = calloc(1, sizeof(*h));
    const char *arch = NULL, *bb = NULL;
    uint32_t n = 0;
    if (!h) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc && (vv_gguf_find_key(g, "general.architecture") < 0 || vv_gguf_get_str(g, "general.architecture", &arch, e) ||
                strcmp(arch, "visvm-value-head") != 0))
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s is not a value head (general.architecture must be "
                    "visvm-value-head; a full value model loads with --value)", path);
    if (!rc && (vv_gguf_find_key(g, "visvm.value.backbone") < 0 || vv_gguf_get_str(g, "visvm.value.backbone", &bb, e) ||
                (strcmp(bb, "policy") != 0 && strcmp(bb, "clip") != 0)))
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: visvm.value.backbone must be \"policy\" or \"clip\"", path);
    if (!rc) snprintf(h->backbone, sizeof(h->backbone), "%s", bb);
    if (!rc) rc = vv_gguf_get_u32(g, "visvm.value.n_embd", &n, e);
    if (!rc && (n < 1 || n > (1u << 20))) rc = vv_err(e, VISVM_ERR_FORMAT, "%s: visvm.value.n_embd %u out of range", path, n);
    const vv_tensor *hw = rc ? NULL : vv_gguf_find_tensor(g, "value_head.weight");
    const vv_tensor *hb = rc ? NULL : vv_gguf_find_tensor(g, "value_head.bias");
    if (!rc && (!hw || !hb || hw->type != VV_TYPE_F32 || hb->type != VV_TYPE_F32 || vv_tensor_nelements(hw) != (int64_t)n ||
                vv_tensor_nelements(hb) != 1))
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: needs F32 tensors value_head.weight [%u] and value_head.bias [1]", path, n);
    if (!rc) {
        h->n_embd = (int)n;
        h->w = malloc((size_t)n * sizeof(float));
        if (!h->w) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        memcpy(h->w, hw->data, (size_t)n * sizeof(float));
        h->bias = ((const float *)hb->data)[0];
        for (uint32_t i = 0; i < n && !rc; i++)
            if (!isfinite(h->w[i])) rc = vv_err(e, VISVM_ERR_FORMAT, "%s: value_head.weight[%u] is not finite", path, i);
        if (!rc && !isfinite(h->bias)) rc = vv_err(e, VISVM_ERR_FORMAT, "%s: value_head.bias is not finite", path);
    }
    if (!rc) rc = vv_gguf_get_f32_def(g, "visvm.value.gamma", 0.9f, &h->gamma, e);
    if (!rc) rc = vv_gguf_get_f32_def(g, "visvm.value.reward_offset", 0.0f, &h->reward_offset, e);
    if (h) snprintf(h->terminal, sizeof(h->terminal), "done_mask");
    const char *t = NULL;
    if (!rc && vv_gguf_find_key(g, "visvm.value.terminal") >= 0 && !(rc = vv_gguf_get_str(g, "visvm.value.terminal", &t, e)))
        snprintf(h->terminal, sizeof(h->terminal), "%s", t);
    if (!rc && vv_gguf_find_key(g, "visvm.value.policy") >= 0 && !(rc = vv_gguf_get_str(g, "visvm.value.policy", &t, e)))
        snprintf(h->policy, sizeof(h->policy), "%s", t);
    uint32_t rank = 0;
    if (!rc && vv_gguf_find_key(g, "visvm.value.rank") >= 0) rc = vv_gguf_get_u32(g, "visvm.value.rank", &rank, e);
    if (!rc && rank > 0) { // bilinear terms: the two projections [rank, proj_dim]
        const vv_tensor *ui = vv_gguf_find_tensor(g, "value_head.u_img"), *ut = vv_gguf_find_tensor(g, "value_head.u_txt");
        const int64_t P = (int64_t)n - (int64_t)rank * rank;
        if (strcmp(h->backbone, "clip") != 0)
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: visvm.value.rank applies to a CLIP backbone only", path);
        else if (rank > 64 || P <= 0 || P % 3 != 0)
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: visvm.value.rank %u does not fit n_embd %u (3 x proj_dim + rank^2, "
                        "rank <= 64)", path, rank, n);
        else if (!ui || !ut || ui->type != VV_TYPE_F32 || ut->type != VV_TYPE_F32 || ui->n_dims != 2 || ut->n_dims != 2 ||
                 ui->ne[0] != P / 3 || ui->ne[1] != rank || ut->ne[0] != P / 3 || ut->ne[1] != rank)
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: a rank-%u head needs F32 tensors value_head.u_img and value_head.u_txt "
                        "[%lld, %u]", path, rank, (long long)(P / 3), rank);
        if (!rc) {
            const size_t m = (size_t)rank * (size_t)(P / 3);
            h->rank = (int)rank;
            h->proj_dim = (int)(P / 3);
            h->u_img = malloc(m * sizeof(float));
            h->u_txt = malloc(m * sizeof(float));
            if (!h->u_img || !h->u_txt) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            if (!rc) {
                memcpy(h->u_img, ui->data, m * sizeof(float));
                memcpy(h->u_txt, ut->data, m * sizeof(float));
                for (size_t i = 0; i < m && !rc; i++)
                    if (!isfinite(h->u_img[i]) || !isfinite(h->u_txt[i]))
                        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: value_head.u_img/u_txt hold a value that is not finite", path);
            }
        }
    }
    vv_gguf_close(g);
    if (rc) {
        vv_value_head_free(h);
        return rc;
    }
    *out = h;
    return VISVM_OK;
}

int vv_value_head_save(const vv_value_head *h, const char *path, vv_error *e) {
    if (!h || !h->w || h->n_embd < 1) return vv_err(e, VISVM_ERR_INVALID, "vv_value_head_save: empty head");
    vv_gguf_writer *w = vv_gguf_writer_create();
    if (!w) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    vv_gguf_set_str(w, "general.architecture", "visvm-value-head");
    const bool clip = !strcmp(h->backbone, "clip");
    vv_gguf_set_str(w, "general.name", clip ? "visvm value head on a CLIP" : "visvm value head on the policy");
    vv_gguf_set_str(w, "visvm.value.backbone", clip ? "clip" : "policy");
    vv_gguf_set_str(w, "visvm.value.head", "last_token");
    vv_gguf_set_u32(w, "visvm.value.n_embd", (uint32_t)h->n_embd);
    vv_gguf_set_f32(w, "visvm.value.gamma", h->gamma);
    vv_gguf_set_f32(w, "visvm.value.reward_offset", h->reward_offset);
    vv_gguf_set_str(w, "visvm.value.terminal", h->terminal[0] ? h->terminal : "done_mask");
    if (h->policy[0]) vv_gguf_set_str(w, "visvm.value.policy", h->policy);
    int64_t ne = h->n_embd, ne1 = 1;
    int rc = vv_gguf_add_tensor(w, "value_head.weight", VV_TYPE_F32, 1, &ne, h->w);
    if (!rc) rc = vv_gguf_add_tensor(w, "value_head.bias", VV_TYPE_F32, 1, &ne1, &h->bias);
    if (!rc && h->rank > 0) {
        if (!clip || !h->u_img || !h->u_txt || h->n_embd != vv_value_clip_n_features(h->proj_dim, h->rank)) {
            vv_gguf_writer_free(w);
            return vv_err(e, VISVM_ERR_INVALID, "vv_value_head_save: inconsistent bilinear head");
        }
        vv_gguf_set_u32(w, "visvm.value.rank", (uint32_t)h->rank);
        int64_t nu[2] = {h->proj_dim, h->rank};
        rc = vv_gguf_add_tensor(w, "value_head.u_img", VV_TYPE_F32, 2, nu, h->u_img);
        if (!rc) rc = vv_gguf_add_tensor(w, "value_head.u_txt", VV_TYPE_F32, 2, nu, h->u_txt);
    }
    if (!rc) rc = vv_gguf_writer_write(w, path, e);
    else vv_err(e, rc, "cannot build %s", path);
    vv_gguf_writer_free(w);
    return rc;
}
