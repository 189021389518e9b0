// clip.c - CLIP ViT vision tower + LLaVA MLP projector (mmproj GGUF files).
#include "clip.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void vv_clip_free(vv_clip *c) {
    if (!c) return;
    free(c->layers);
    free(c->text.layers);
    vv_vocab_free(c->vocab);
    vv_gguf_close(c->gguf);
    free(c);
}

static int req_tensor(const vv_gguf *g, const char *name, const vv_tensor **out, vv_error *e) {
    *out = vv_gguf_find_tensor(g, name);
    if (!*out) return vv_err(e, VISVM_ERR_FORMAT, "mmproj is missing tensor '%s'", name);
    return VISVM_OK;
}

// Checks a matrix [n_in, n_out] is computable with these dimensions.
static int check_mat(const vv_tensor *t, int64_t n_in, int64_t n_out, vv_error *e) {
    if (t->ne[0] != n_in || t->ne[1] != n_out || t->ne[2] != 1 || t->ne[3] != 1)
        return vv_err(e, VISVM_ERR_FORMAT, "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]",
                      t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                      (long long)n_in, (long long)n_out);
    const vv_kernels *k = vv_get_kernels(t->type, VV_ISA_SCALAR);
    if (!k || !k->vec_dot)
        return vv_err(e, VISVM_ERR_UNSUPPORTED, "tensor '%s' has type %s, which visvm cannot compute yet", t->name,
                      vv_type_name(t->type));
    const vv_type_info *ai = vv_type_get(k->vec_dot_type);
    if (ai && n_in % ai->blck)
        return vv_err(e, VISVM_ERR_FORMAT, "tensor '%s': row length %lld not a multiple of %d", t->name,
                      (long long)n_in, ai->blck);
    return VISVM_OK;
}

static int check_vec(const vv_tensor *t, int64_t n, vv_error *e) {
    if (t->ne[0] != n || t->ne[1] != 1 || t->ne[2] != 1 || t->ne[3] != 1)
        return vv_err(e, VISVM_ERR_FORMAT, "tensor '%s' has %lld x %lld x %lld x %lld elements, expected %lld",
                      t->name, (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                      (long long)n);
    if (t->type != VV_TYPE_F32 && t->type != VV_TYPE_F16 && t->type != VV_TYPE_BF16)
        return vv_err(e, VISVM_ERR_UNSUPPORTED, "vector '%s' has type %s", t->name, vv_type_name(t->type));
    return VISVM_OK;
}

// Text tower of a full CLIP ("t.*" tensors, clip.text.* keys) and the projections.
static int load_text(vv_clip *c, const vv_gguf *g, vv_error *e) {
    int rc;
    uint32_t u;
#define U32(key, dst)                                     \
    if ((rc = vv_gguf_get_u32(g, key, &u, e))) return rc; \
    dst = (int)u;
    U32("clip.text.context_length", c->text.n_ctx)
    U32("clip.text.embedding_length", c->text.n_embd)
    U32("clip.text.attention.head_count", c->text.n_head)
    U32("clip.text.feed_forward_length", c->text.n_ff)
    U32("clip.text.block_count", c->text.n_layer)
#undef U32
    if ((rc = vv_gguf_get_f32_def(g, "clip.text.attention.layer_norm_epsilon", 1e-5f, &c->text.eps, e))) return rc;
    if ((rc = vv_gguf_get_f32_def(g, "clip.logit_scale", 0.0f, &c->logit_scale, e))) return rc;
    if (vv_gguf_find_key(g, "clip.vision.pooling") >= 0) {
        const char *pool = NULL;
        if ((rc = vv_gguf_get_str(g, "clip.vision.pooling", &pool, e))) return rc;
        if (strcmp(pool, "mean") && strcmp(pool, "cls") && strcmp(pool, "max"))
            return vv_err(e, VISVM_ERR_UNSUPPORTED, "clip.vision.pooling '%s' (expected cls, mean or max)", pool);
        c->mean_pool = !strcmp(pool, "mean");
        c->max_pool = !strcmp(pool, "max");
    }
    if (vv_gguf_find_key(g, "clip.text.pooling") >= 0) {
        const char *pool = NULL;
        if ((rc = vv_gguf_get_str(g, "clip.text.pooling", &pool, e))) return rc;
        if (strcmp(pool, "mean") && strcmp(pool, "eos"))
            return vv_err(e, VISVM_ERR_UNSUPPORTED, "clip.text.pooling '%s' (expected eos or mean)", pool);
        c->text_mean_pool = !strcmp(pool, "mean");
    }
    const int D = c->text.n_embd;
    if (D <= 0 || c->text.n_head <= 0 || D % c->text.n_head || c->text.n_ff <= 0 || c->text.n_ctx <= 1 ||
        c->text.n_ctx > 4096 || c->text.n_layer < 0 || c->text.n_layer > 1024)
        return vv_err(e, VISVM_ERR_FORMAT, "invalid text-tower hyper-parameters (width %d, heads %d, ctx %d)", D,
                      c->text.n_head, c->text.n_ctx);
    if ((rc = req_tensor(g, "visual_projection.weight", &c->vis_proj, e)) ||
        (rc = req_tensor(g, "text_projection.weight", &c->text.proj, e)) ||
        (rc = req_tensor(g, "t.token_embd.weight", &c->text.tok, e)) ||
        (rc = req_tensor(g, "t.position_embd.weight", &c->text.pos, e)) ||
        (rc = req_tensor(g, "t.post_ln.weight", &c->text.post_w, e)) ||
        (rc = req_tensor(g, "t.post_ln.bias", &c->text.post_b, e)))
        return rc;
    c->proj_dim = (int)c->vis_proj->ne[1];
    if ((rc = check_mat(c->vis_proj, c->n_embd, c->proj_dim, e)) || (rc = check_mat(c->text.proj, D, c->proj_dim, e)) ||
        (rc = check_vec(c->text.post_w, D, e)) || (rc = check_vec(c->text.post_b, D, e)))
        return rc;
    if (!c->post_ln_w) return vv_err(e, VISVM_ERR_FORMAT, "a full CLIP needs v.post_ln.weight");
    if (c->text.tok->ne[0] != D || c->text.pos->ne[0] != D || c->text.pos->ne[1] < c->text.n_ctx ||
        !vv_get_kernels(c->text.tok->type, VV_ISA_SCALAR) || !vv_get_kernels(c->text.pos->type, VV_ISA_SCALAR))
        return vv_err(e, VISVM_ERR_FORMAT, "text embedding tables have the wrong shape or type");
    c->text.layers = calloc((size_t)(c->text.n_layer ? c->text.n_layer : 1), sizeof(vv_clip_layer));
    if (!c->text.layers) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int il = 0; il < c->text.n_layer; il++) {
        vv_clip_layer *L = &c->text.layers[il];
        char n[96];
#define T(field, suffix)                            \
    snprintf(n, sizeof(n), "t.blk.%d." suffix, il); \
    if ((rc = req_tensor(g, n, &L->field, e))) return rc;
        T(ln1_w, "ln1.weight") T(ln1_b, "ln1.bias") T(ln2_w, "ln2.weight") T(ln2_b, "ln2.bias")
        T(q_w, "attn_q.weight") T(q_b, "attn_q.bias") T(k_w, "attn_k.weight") T(k_b, "attn_k.bias")
        T(v_w, "attn_v.weight") T(v_b, "attn_v.bias") T(o_w, "attn_out.weight") T(o_b, "attn_out.bias")
        T(fc1_w, "ffn_down.weight") T(fc1_b, "ffn_down.bias") T(fc2_w, "ffn_up.weight") T(fc2_b, "ffn_up.bias")
#undef T
        if ((rc = check_mat(L->q_w, D, D, e)) || (rc = check_mat(L->k_w, D, D, e)) || (rc = check_mat(L->v_w, D, D, e)) ||
            (rc = check_mat(L->o_w, D, D, e)) || (rc = check_mat(L->fc1_w, D, c->text.n_ff, e)) ||
            (rc = check_mat(L->fc2_w, c->text.n_ff, D, e)))
            return rc;
        const vv_tensor *vs[10] = {L->ln1_w, L->ln1_b, L->ln2_w, L->ln2_b, L->q_b, L->k_b, L->v_b, L->o_b, L->fc2_b, L->fc1_b};
        for (int j = 0; j < 10; j++)
            if ((rc = check_vec(vs[j], j == 9 ? c->text.n_ff : D, e))) return rc;
    }
    if ((rc = vv_vocab_load(g, &c->vocab, e))) return rc;
    if (vv_vocab_n(c->vocab) > c->text.tok->ne[1])
        return vv_err(e, VISVM_ERR_FORMAT, "vocabulary (%d) larger than t.token_embd (%lld)", vv_vocab_n(c->vocab),
                      (long long)c->text.tok->ne[1]);
    return VISVM_OK;
}

int vv_clip_load(vv_gguf *g, int mode, vv_clip **out, vv_error *e) {
    *out = NULL;
    vv_clip *c = calloc(1, sizeof(*c));
    if (!c) {
        vv_gguf_close(g);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    c->gguf = g;
    c->mode = mode;
    int rc;
    const char *s = NULL;
    if ((rc = vv_gguf_get_str(g, "general.architecture", &s, e))) goto fail;
    if (strcmp(s, "clip") != 0) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "architecture '%s' is not a CLIP/mmproj file (expected 'clip')", s);
        goto fail;
    }
    bool has_vision = true;
    if ((rc = vv_gguf_get_bool_def(g, "clip.has_vision_encoder", true, &has_vision, e))) goto fail;
    if (!has_vision) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "this clip file has no vision encoder");
        goto fail;
    }
    const char *ptype = "mlp";
    if ((rc = vv_gguf_get_bool_def(g, "clip.has_llava_projector", true, &c->has_projector, e))) goto fail;
    if ((rc = vv_gguf_get_bool_def(g, "clip.has_text_encoder", false, &c->has_text, e))) goto fail;
    if (vv_gguf_find_key(g, "clip.projector_type") >= 0 && (rc = vv_gguf_get_str(g, "clip.projector_type", &ptype, e)))
        goto fail;
    if (c->has_projector && strcmp(ptype, "mlp") != 0) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "projector type '%s' is not supported (only 'mlp', as LLaVA 1.5/1.6)",
                    ptype);
        goto fail;
    }
    uint32_t u;
#define U32(key, dst)                                          \
    if ((rc = vv_gguf_get_u32(g, key, &u, e))) goto fail;      \
    dst = (int)u;
    U32("clip.vision.image_size", c->image_size)
    U32("clip.vision.patch_size", c->patch_size)
    U32("clip.vision.embedding_length", c->n_embd)
    U32("clip.vision.feed_forward_length", c->n_ff)
    U32("clip.vision.attention.head_count", c->n_head)
    U32("clip.vision.block_count", c->n_layer)
#undef U32
    if ((rc = vv_gguf_get_f32_def(g, "clip.vision.attention.layer_norm_epsilon", 1e-5f, &c->eps, e))) goto fail;
    if ((rc = vv_gguf_get_bool_def(g, "clip.use_gelu", false, &c->use_gelu, e))) goto fail;
    if (c->patch_size <= 0 || c->image_size <= 0 || c->image_size % c->patch_size || c->image_size > 4096 ||
        c->n_embd <= 0 || c->n_head <= 0 || c->n_embd % c->n_head || c->n_ff <= 0 || c->n_layer < 0 ||
        c->n_layer > 1024 || c->n_embd > (1 << 16) || c->n_ff > (1 << 18)) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "invalid vision hyper-parameters (image %d, patch %d, width %d, heads %d, ff %d, layers %d)",
                    c->image_size, c->patch_size, c->n_embd, c->n_head, c->n_ff, c->n_layer);
        goto fail;
    }
    c->n_patches_side = c->image_size / c->patch_size;
    c->n_patches = c->n_patches_side * c->n_patches_side;

    // preprocessing
    c->pre.image_size = c->image_size;
    {
        const float mean0[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std0[3] = {0.26862954f, 0.26130258f, 0.27577711f};
        memcpy(c->pre.mean, mean0, sizeof(mean0));
        memcpy(c->pre.std, std0, sizeof(std0));
        uint64_t n;
        if (vv_gguf_find_key(g, "clip.vision.image_mean") >= 0) {
            if ((rc = vv_gguf_get_arr_n(g, "clip.vision.image_mean", &n, e))) goto fail;
            if (n != 3 || (rc = vv_gguf_get_arr_f32(g, "clip.vision.image_mean", c->pre.mean, 3, e))) {
                rc = rc ? rc : vv_err(e, VISVM_ERR_FORMAT, "clip.vision.image_mean must have 3 values");
                goto fail;
            }
        }
        if (vv_gguf_find_key(g, "clip.vision.image_std") >= 0) {
            if ((rc = vv_gguf_get_arr_n(g, "clip.vision.image_std", &n, e))) goto fail;
            if (n != 3 || (rc = vv_gguf_get_arr_f32(g, "clip.vision.image_std", c->pre.std, 3, e))) {
                rc = rc ? rc : vv_err(e, VISVM_ERR_FORMAT, "clip.vision.image_std must have 3 values");
                goto fail;
            }
        }
        for (int i = 0; i < 3; i++)
            if (!(c->pre.std[i] > 0)) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "clip.vision.image_std[%d] = %g must be positive", i, c->pre.std[i]);
                goto fail;
            }
        snprintf(c->merge_type, sizeof(c->merge_type), "flat");
        if (vv_gguf_find_key(g, "clip.vision.mm_patch_merge_type") >= 0) {
            if ((rc = vv_gguf_get_str(g, "clip.vision.mm_patch_merge_type", &s, e))) goto fail;
            snprintf(c->merge_type, sizeof(c->merge_type), "%s", s);
        }
        if (vv_gguf_find_key(g, "clip.vision.image_grid_pinpoints") >= 0) {
            if ((rc = vv_gguf_get_arr_n(g, "clip.vision.image_grid_pinpoints", &n, e))) goto fail;
            if (n % 2 || n / 2 > VV_MAX_PINPOINTS) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "clip.vision.image_grid_pinpoints has %llu values (need pairs, at most %d)",
                            (unsigned long long)n, VV_MAX_PINPOINTS);
                goto fail;
            }
            int64_t pp[2 * VV_MAX_PINPOINTS];
            if ((rc = vv_gguf_get_arr_i64(g, "clip.vision.image_grid_pinpoints", pp, n, e))) goto fail;
            for (uint64_t i = 0; i < n; i++)
                if (pp[i] <= 0 || pp[i] > 65536 || pp[i] % c->image_size) {
                    rc = vv_err(e, VISVM_ERR_FORMAT, "image_grid_pinpoints value %lld is not a positive multiple of %d",
                                (long long)pp[i], c->image_size);
                    goto fail;
                }
            c->pre.n_pinpoints = (int)(n / 2);
            for (int i = 0; i < c->pre.n_pinpoints; i++) {
                c->pre.pinpoints[i][0] = (int)pp[2 * i];
                c->pre.pinpoints[i][1] = (int)pp[2 * i + 1];
            }
            c->pre.anyres = c->pre.n_pinpoints > 0 && strcmp(c->merge_type, "flat") != 0;
        }
    }

    // tensors
    const int D = c->n_embd, P = c->patch_size;
    c->stem_ch[0] = 3;
    if (vv_gguf_find_key(g, "clip.vision.stem_count") >= 0) {
        uint32_t ns = 0;
        if ((rc = vv_gguf_get_u32(g, "clip.vision.stem_count", &ns, e))) goto fail;
        if (ns < 1 || ns > 4 || P != 1 << ns) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "clip.vision.stem_count %u: need 1..4 stages and patch_size = 2^stages (%d)",
                        ns, P);
            goto fail;
        }
        c->n_stem = (int)ns;
        for (int s = 0; s < c->n_stem; s++) {
            char nm[32];
            snprintf(nm, sizeof(nm), "v.stem.%d.weight", s);
            if ((rc = req_tensor(g, nm, &c->stem_w[s], e))) goto fail;
            const vv_tensor *t = c->stem_w[s];
            const int64_t cout = t->ne[3];
            if (t->ne[0] != c->stem_ch[s] || t->ne[1] != 3 || t->ne[2] != 3 || cout < 1 || cout > 4096) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s must be [%d, 3, 3, Cout] (Cout 1..4096)", nm, c->stem_ch[s]);
                goto fail;
            }
            const vv_kernels *k = vv_get_kernels(t->type, VV_ISA_SCALAR);
            if (!k || !k->vec_dot || vv_row_size(t->type, 9 * (int64_t)c->stem_ch[s]) == 0) {
                rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: unsupported tensor type for a 3x3 convolution", nm);
                goto fail;
            }
            c->stem_ch[s + 1] = (int)cout;
            snprintf(nm, sizeof(nm), "v.stem.%d.bias", s);
            c->stem_b[s] = vv_gguf_find_tensor(g, nm);
            if (c->stem_b[s] && (c->stem_b[s]->ne[0] != cout || c->stem_b[s]->ne[1] != 1)) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s must be [%lld]", nm, (long long)cout);
                goto fail;
            }
        }
    }
    if ((rc = req_tensor(g, "v.patch_embd.weight", &c->patch_w, e))) goto fail;
    if (c->n_stem) {
        const int C = c->stem_ch[c->n_stem];
        if (c->patch_w->ne[0] != 1 || c->patch_w->ne[1] != 1 || c->patch_w->ne[2] != C || c->patch_w->ne[3] != D) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "v.patch_embd.weight after a stem must be [1, 1, %d, %d]", C, D);
            goto fail;
        }
    } else if (c->patch_w->ne[0] != P || c->patch_w->ne[1] != P || c->patch_w->ne[2] != 3 || c->patch_w->ne[3] != D) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "v.patch_embd.weight must be [%d, %d, 3, %d]", P, P, D);
        goto fail;
    }
    c->patch_b = vv_gguf_find_tensor(g, "v.patch_embd.bias");
    c->class_embd = vv_gguf_find_tensor(g, "v.class_embd");
    c->has_class = c->class_embd != NULL;
    c->n_pos = c->n_patches + (c->has_class ? 1 : 0);
    if ((rc = req_tensor(g, "v.position_embd.weight", &c->pos_embd, e))) goto fail;
    if (c->pos_embd->ne[0] != D || c->pos_embd->ne[1] != c->n_pos || c->pos_embd->ne[2] != 1) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "v.position_embd.weight must be [%d, %d]", D, c->n_pos);
        goto fail;
    }
    {
        const vv_kernels *k = vv_get_kernels(c->pos_embd->type, VV_ISA_SCALAR);
        const vv_kernels *kp = vv_get_kernels(c->patch_w->type, VV_ISA_SCALAR);
        if (!k || !kp || !kp->vec_dot) {
            rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "unsupported tensor type in patch/position embeddings");
            goto fail;
        }
    }
    c->pre_ln_w = vv_gguf_find_tensor(g, "v.pre_ln.weight");
    c->pre_ln_b = vv_gguf_find_tensor(g, "v.pre_ln.bias");
    c->post_ln_w = vv_gguf_find_tensor(g, "v.post_ln.weight");
    c->post_ln_b = vv_gguf_find_tensor(g, "v.post_ln.bias");
    c->layers = calloc((size_t)(c->n_layer ? c->n_layer : 1), sizeof(vv_clip_layer));
    if (!c->layers) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    // layers to run (a full CLIP pools the last layer)
    if (!c->has_projector) {
        c->n_layer_run = c->n_layer;
    } else if (mode == VISVM_VISION_LLAMACPP) {
        c->n_layer_run = c->n_layer > 0 ? c->n_layer - 1 : 0;
    } else {
        c->n_layer_run = c->n_layer;
        int64_t idx = vv_gguf_find_key(g, "clip.vision.feature_layer");
        if (idx >= 0) {
            int64_t fl = 0;
            if (vv_gguf_kv_type(g, idx) == VV_GGUF_ARRAY) {
                uint64_t n = vv_gguf_arr_n(g, idx);
                int64_t arr[16];
                if (n == 0 || n > 16 || (rc = vv_gguf_get_arr_i64(g, "clip.vision.feature_layer", arr, n, e))) {
                    rc = rc ? rc : vv_err(e, VISVM_ERR_FORMAT, "bad clip.vision.feature_layer array");
                    goto fail;
                }
                fl = arr[n - 1];
            } else if ((rc = vv_gguf_get_i64(g, "clip.vision.feature_layer", &fl, e))) {
                goto fail;
            }
            // HF hidden_states indexing: 0 = embeddings, k = after k layers, negative from the end.
            int64_t k = fl >= 0 ? fl : (int64_t)c->n_layer + 1 + fl;
            if (k < 0 || k > c->n_layer) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "clip.vision.feature_layer %lld out of range for %d layers",
                            (long long)fl, c->n_layer);
                goto fail;
            }
            c->n_layer_run = (int)k;
        }
    }
    for (int il = 0; il < c->n_layer_run; il++) {
        vv_clip_layer *L = &c->layers[il];
        char n[96];
#define T(field, suffix)                                               \
    snprintf(n, sizeof(n), "v.blk.%d." suffix, il);                    \
    if ((rc = req_tensor(g, n, &L->field, e))) goto fail;
        T(ln1_w, "ln1.weight") T(ln1_b, "ln1.bias") T(ln2_w, "ln2.weight") T(ln2_b, "ln2.bias")
        T(q_w, "attn_q.weight") T(q_b, "attn_q.bias") T(k_w, "attn_k.weight") T(k_b, "attn_k.bias")
        T(v_w, "attn_v.weight") T(v_b, "attn_v.bias") T(o_w, "attn_out.weight") T(o_b, "attn_out.bias")
        T(fc1_w, "ffn_down.weight") T(fc1_b, "ffn_down.bias") T(fc2_w, "ffn_up.weight") T(fc2_b, "ffn_up.bias")
#undef T
        if ((rc = check_mat(L->q_w, D, D, e)) || (rc = check_mat(L->k_w, D, D, e)) || (rc = check_mat(L->v_w, D, D, e)) ||
            (rc = check_mat(L->o_w, D, D, e)) || (rc = check_mat(L->fc1_w, D, c->n_ff, e)) ||
            (rc = check_mat(L->fc2_w, c->n_ff, D, e)))
            goto fail;
        const vv_tensor *vs[10] = {L->ln1_w, L->ln1_b, L->ln2_w, L->ln2_b, L->q_b, L->k_b, L->v_b, L->o_b, L->fc2_b, L->fc1_b};
        for (int j = 0; j < 10; j++)
            if ((rc = check_vec(vs[j], j == 9 ? c->n_ff : D, e))) goto fail;
    }
    if (c->has_projector) {
        if ((rc = req_tensor(g, "mm.0.weight", &c->mm0_w, e)) || (rc = req_tensor(g, "mm.0.bias", &c->mm0_b, e)) ||
            (rc = req_tensor(g, "mm.2.weight", &c->mm2_w, e)) || (rc = req_tensor(g, "mm.2.bias", &c->mm2_b, e)))
            goto fail;
        if ((rc = check_mat(c->mm0_w, D, c->mm0_w->ne[1], e)) ||
            (rc = check_mat(c->mm2_w, c->mm0_w->ne[1], c->mm2_w->ne[1], e)) ||
            (rc = check_vec(c->mm0_b, c->mm0_w->ne[1], e)) || (rc = check_vec(c->mm2_b, c->mm2_w->ne[1], e)))
            goto fail;
        c->n_embd_out = (int)c->mm2_w->ne[1];
    }
    if (c->has_text && (rc = load_text(c, g, e))) goto fail;
    if (!c->has_projector && !c->has_text) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "this clip file has neither a LLaVA projector nor a text encoder");
        goto fail;
    }
    c->image_newline = vv_gguf_find_tensor(g, "model.image_newline");
    if (!c->image_newline) c->image_newline = vv_gguf_find_tensor(g, "v.image_newline");
    if (c->image_newline && c->has_projector && (rc = check_vec(c->image_newline, c->n_embd_out, e))) goto fail;
    if (c->class_embd && (rc = check_vec(c->class_embd, D, e))) goto fail;
    if (c->patch_b && (rc = check_vec(c->patch_b, D, e))) goto fail;
    if (c->pre_ln_w && ((rc = check_vec(c->pre_ln_w, D, e)) || (c->pre_ln_b && (rc = check_vec(c->pre_ln_b, D, e)))))
        goto fail;
    if (c->post_ln_w && ((rc = check_vec(c->post_ln_w, D, e)) || (c->post_ln_b && (rc = check_vec(c->post_ln_b, D, e)))))
        goto fail;
    // matrices into the SIMD kernels' layout, once (as the decoder; VISVM_REPACK=0: off)
    if (!getenv("VISVM_REPACK") || strcmp(getenv("VISVM_REPACK"), "0") != 0) {
        const vv_tensor **mats = malloc(((size_t)6 * c->n_layer + 2) * sizeof(*mats));
        int nm = 0;
        for (int il = 0; mats && il < c->n_layer; il++) {
            const vv_clip_layer *L = &c->layers[il];
            const vv_tensor *lm[6] = {L->q_w, L->k_w, L->v_w, L->o_w, L->fc1_w, L->fc2_w};
            for (int j = 0; j < 6; j++)
                if (lm[j]) mats[nm++] = lm[j];
        }
        if (mats && c->has_projector) {
            mats[nm++] = c->mm0_w;
            mats[nm++] = c->mm2_w;
        }
        rc = mats ? vv_gguf_repack_tensors(g, mats, nm) : VISVM_ERR_NOMEM;
        free(mats);
        if (rc) {
            rc = vv_err(e, rc, "out of memory repacking the weights (VISVM_REPACK=0 skips it)");
            goto fail;
        }
    }
    *out = c;
    return VISVM_OK;
fail:
    vv_clip_free(c);
    return rc ? rc : VISVM_ERR_INTERNAL;
}

int vv_clip_load_file(const char *path, int mode, vv_clip **out, vv_error *e) {
    vv_gguf *g = NULL;
    int rc = vv_gguf_open(path, &g, e);
    if (rc) return rc;
    rc = vv_clip_load(g, mode, out, e);
    if (rc) vv_err_prefix(e, rc, "%s", path);
    return rc;
}

void vv_clip_work_free(vv_clip_work *w) {
    if (!w) return;
    vv_afree(w->buf);
    w->buf = NULL;
    w->size = 0;
    vv_wbuf_free(&w->ws);
    vv_attn_scratch_free(&w->as);
}

// f32 view of a vector tensor (stored f32 in practice; converted into tmp otherwise).
static const float *vecp(const vv_tensor *t, float *tmp) {
    if (!t) return NULL;
    if (t->type == VV_TYPE_F32) return (const float *)t->data;
    vv_dequantize_row(t->type, t->data, tmp, t->ne[0]);
    return tmp;
}

static int linear(vv_pool *pool, const vv_tensor *W, const vv_tensor *b, const float *x, int64_t n, float *y,
                  vv_clip_work *w, float *tmp) {
    int rc = vv_matmul(pool, W, x, n, y, W->ne[1], &w->ws, VV_ISA_BEST);
    if (rc) return rc;
    if (b) vv_add_bias(y, vecp(b, tmp), n, W->ne[1]);
    return VISVM_OK;
}

// Scratch: x, h, q, k, v [n, D]; f [n, max(ff, projector mid)]; patches; tmp.
// Floats of the patch region: im2col patches, or with a stem its im2col
// columns plus two feature maps (conv output, pooled output) of the largest stage.
// Stem scratch: cols_n floats of im2col columns and map_n floats per feature
// map (conv output, pooled output) of the largest stage.
static void stem_sizes(const vv_clip *c, size_t *cols_n, size_t *map_n) {
    size_t hw = (size_t)c->image_size * c->image_size;
    *cols_n = *map_n = 0;
    for (int s = 0; s < c->n_stem; s++, hw /= 4) {
        *cols_n = VV_MAX(*cols_n, hw * 9 * (size_t)c->stem_ch[s]);
        *map_n = VV_MAX(*map_n, hw * (size_t)c->stem_ch[s + 1]);
    }
}

// Floats of the patch region: im2col patches, or the stem's columns and two maps.
static size_t patch_region(const vv_clip *c) {
    const int P = c->patch_size;
    if (!c->n_stem) return (size_t)c->n_patches * 3 * P * P;
    size_t cols_n, map_n;
    stem_sizes(c, &cols_n, &map_n);
    return cols_n + 2 * map_n;
}

static int work_reserve(const vv_clip *c, vv_clip_work *w, vv_error *e) {
    const int D = VV_MAX(c->n_embd, c->text.n_embd);
    const int n = VV_MAX(c->n_pos, c->text.n_ctx);
    const int64_t mid = c->has_projector ? c->mm0_w->ne[1] : 0;
    const int ff = VV_MAX(VV_MAX(c->n_ff, c->text.n_ff), (int)mid);
    size_t n_x = (size_t)n * D, n_f = (size_t)n * ff, n_patch = patch_region(c);
    size_t n_tmp = (size_t)VV_MAX(VV_MAX(D, ff), VV_MAX(c->n_embd_out, c->proj_dim));
    size_t need = 5 * n_x + n_f + n_patch + 2 * n_tmp + 64;
    if (w->size >= need) return VISVM_OK;
    vv_afree(w->buf);
    w->buf = vv_aalloc(need * sizeof(float));
    w->size = w->buf ? need : 0;
    return w->buf ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory for CLIP encoding");
}

typedef struct {
    float *x, *h, *q, *k, *v, *f, *patches, *tmp;
} clip_bufs;

static clip_bufs bufs_of(const vv_clip *c, vv_clip_work *w) {
    const int D = VV_MAX(c->n_embd, c->text.n_embd);
    const int n = VV_MAX(c->n_pos, c->text.n_ctx);
    const int64_t mid = c->has_projector ? c->mm0_w->ne[1] : 0;
    const int ff = VV_MAX(VV_MAX(c->n_ff, c->text.n_ff), (int)mid);
    size_t n_x = (size_t)n * D, n_f = (size_t)n * ff, n_patch = patch_region(c);
    clip_bufs b;
    b.x = w->buf;
    b.h = b.x + n_x;
    b.q = b.h + n_x;
    b.k = b.q + n_x;
    b.v = b.k + n_x;
    b.f = b.v + n_x;
    b.patches = b.f + n_f;
    b.tmp = b.patches + n_patch;
    return b;
}

// Pre-LN transformer blocks on x [n, D] (kv_len != NULL: causal).
static int run_blocks(const vv_clip *c, vv_pool *pool, const vv_clip_layer *layers, int n_layers, int n, int D,
                      int n_head, int n_ff, float eps, const int32_t *kv_len, clip_bufs *B, vv_clip_work *w,
                      vv_error *e) {
    const int hd = D / n_head;
    float *x = B->x, *h = B->h, *q = B->q, *k = B->k, *v = B->v, *f = B->f, *tmp = B->tmp;
    int rc;
    for (int il = 0; il < n_layers; il++) {
        const vv_clip_layer *L = &layers[il];
        vv_layernorm(x, vecp(L->ln1_w, tmp), vecp(L->ln1_b, tmp + D), h, n, D, eps);
        if ((rc = linear(pool, L->q_w, L->q_b, h, n, q, w, tmp)) || (rc = linear(pool, L->k_w, L->k_b, h, n, k, w, tmp)) ||
            (rc = linear(pool, L->v_w, L->v_b, h, n, v, w, tmp)))
            return vv_err(e, rc, "attention projection failed");
        rc = vv_attention(pool, q, D, k, v, D, h, D, n, n, n_head, n_head, hd, 1.0f / sqrtf((float)hd), kv_len, &w->as);
        if (rc) return vv_err(e, rc, "attention failed");
        if ((rc = linear(pool, L->o_w, L->o_b, h, n, q, w, tmp))) return vv_err(e, rc, "attention output failed");
        vv_add(x, q, (int64_t)n * D);
        vv_layernorm(x, vecp(L->ln2_w, tmp), vecp(L->ln2_b, tmp + D), h, n, D, eps);
        if ((rc = linear(pool, L->fc1_w, L->fc1_b, h, n, f, w, tmp))) return vv_err(e, rc, "mlp failed");
        // elementwise, over the pool (on one thread, its erf / exp calls left the other idle)
        vv_map_par(pool, !c->use_gelu ? vv_quick_gelu : c->mode == VISVM_VISION_LLAMACPP ? vv_gelu_tanh : vv_gelu_erf, f,
                   (int64_t)n * n_ff);
        if ((rc = linear(pool, L->fc2_w, L->fc2_b, f, n, q, w, tmp))) return vv_err(e, rc, "mlp failed");
        vv_add(x, q, (int64_t)n * D);
    }
    return VISVM_OK;
}

// Convolutional stem: img [S, S, 3] -> stages of 3x3 conv + ReLU + 2x2 max pool;
// *out points at the last pooled map [side * side, C] inside scratch
// (patch_region floats: columns, then two maps).
static int stem_forward(const vv_clip *c, vv_pool *pool, const float *img, float *scratch, float *tmp,
                        vv_clip_work *w, const float **out, vv_error *e) {
    size_t cols_n, map_n;
    stem_sizes(c, &cols_n, &map_n);
    float *cols = scratch, *conv = scratch + cols_n, *pooled = conv + map_n;
    const float *in = img;
    int H = c->image_size;
    for (int s = 0; s < c->n_stem; s++) {
        const int ci = c->stem_ch[s], co = c->stem_ch[s + 1], K = 9 * ci;
        for (int y = 0; y < H; y++) // im2col, column order (ky, kx, cin) as the [Cout][3][3][Cin] kernel
            for (int xx = 0; xx < H; xx++) {
                float *col = cols + ((size_t)y * H + xx) * K;
                for (int ky = 0; ky < 3; ky++)
                    for (int kx = 0; kx < 3; kx++) {
                        const int iy = y + ky - 1, ix = xx + kx - 1;
                        float *dst = col + (ky * 3 + kx) * ci;
                        if (iy < 0 || iy >= H || ix < 0 || ix >= H) memset(dst, 0, (size_t)ci * sizeof(float));
                        else memcpy(dst, in + ((size_t)iy * H + ix) * ci, (size_t)ci * sizeof(float));
                    }
            }
        int rc = vv_matmul_raw(pool, c->stem_w[s]->type, c->stem_w[s]->data, K, co, cols, H * H, conv, co, &w->ws,
                               VV_ISA_BEST);
        if (rc) return vv_err(e, rc, "stem convolution %d failed", s);
        if (c->stem_b[s]) vv_add_bias(conv, vecp(c->stem_b[s], tmp), (int64_t)H * H, co);
        const int Ho = H / 2; // ReLU then 2x2 max pool (max and ReLU commute)
        for (int y = 0; y < Ho; y++)
            for (int xx = 0; xx < Ho; xx++) {
                const float *p00 = conv + ((size_t)(2 * y) * H + 2 * xx) * co, *p01 = p00 + co;
                const float *p10 = p00 + (size_t)H * co, *p11 = p10 + co;
                float *o = pooled + ((size_t)y * Ho + xx) * co;
                for (int ch = 0; ch < co; ch++) {
                    float m = fmaxf(fmaxf(p00[ch], p01[ch]), fmaxf(p10[ch], p11[ch]));
                    o[ch] = m > 0 ? m : 0;
                }
            }
        in = pooled; // the next stage copies it into cols before its conv writes
        H = Ho;
    }
    *out = in;
    return VISVM_OK;
}

// Vision tower up to the feature layer: B->x [n_pos, D] (class token first when present).
static int tower(const vv_clip *c, vv_pool *pool, const float *img, clip_bufs *B, vv_clip_work *w, vv_error *e) {
    const int D = c->n_embd, P = c->patch_size, S = c->image_size, np = c->n_patches, npos = c->n_pos;
    const int side = c->n_patches_side;
    int kdim = 3 * P * P;
    float *x = B->x, *patches = B->patches, *tmp = B->tmp;
    const float *rows = patches; // [np, kdim] input of the patch embedding
    if (c->n_stem) {
        int rc = stem_forward(c, pool, img, patches, tmp, w, &rows, e);
        if (rc) return rc;
        kdim = c->stem_ch[c->n_stem];
    } else {
        // im2col: patch p = (py, px), element order (c, ky, kx) as the [D][3][P][P] kernel
        for (int py = 0; py < side; py++)
            for (int px = 0; px < side; px++) {
                float *dst = patches + (size_t)(py * side + px) * kdim;
                for (int ch = 0; ch < 3; ch++)
                    for (int ky = 0; ky < P; ky++)
                        for (int kx = 0; kx < P; kx++)
                            dst[(ch * P + ky) * P + kx] = img[((size_t)(py * P + ky) * S + (px * P + kx)) * 3 + ch];
            }
    }
    const int off = c->has_class ? 1 : 0;
    int rc = vv_matmul_raw(pool, c->patch_w->type, c->patch_w->data, kdim, D, rows, np, x + (size_t)off * D, D,
                           &w->ws, VV_ISA_BEST);
    if (rc) return vv_err(e, rc, "patch embedding failed");
    if (c->patch_b) vv_add_bias(x + (size_t)off * D, vecp(c->patch_b, tmp), np, D);
    if (c->has_class) memcpy(x, vecp(c->class_embd, tmp), (size_t)D * sizeof(float));
    for (int t = 0; t < npos; t++) {
        vv_get_row(c->pos_embd, t, tmp);
        vv_add(x + (size_t)t * D, tmp, D);
    }
    if (c->pre_ln_w) {
        const float *wv = vecp(c->pre_ln_w, tmp);
        vv_layernorm(x, wv, c->pre_ln_b ? vecp(c->pre_ln_b, tmp + D) : NULL, x, npos, D, c->eps);
    }
    return run_blocks(c, pool, c->layers, c->n_layer_run, npos, D, c->n_head, c->n_ff, c->eps, NULL, B, w, e);
}

int vv_clip_encode(const vv_clip *c, vv_pool *pool, const float *img, float *out, vv_clip_work *w, vv_error *e) {
    if (!c->has_projector) return vv_err(e, VISVM_ERR_INVALID, "this clip file has no LLaVA projector");
    int rc = work_reserve(c, w, e);
    if (rc) return rc;
    clip_bufs B = bufs_of(c, w);
    if ((rc = tower(c, pool, img, &B, w, e))) return rc;
    const int D = c->n_embd, np = c->n_patches, npos = c->n_pos, off = c->has_class ? 1 : 0;
    const int64_t proj_mid = c->mm0_w->ne[1];
    if (c->post_ln_w) {
        const float *wv = vecp(c->post_ln_w, B.tmp);
        vv_layernorm(B.x, wv, c->post_ln_b ? vecp(c->post_ln_b, B.tmp + D) : NULL, B.x, npos, D, c->eps);
    }
    // projector on the patch tokens (class token dropped): [np, D] -> [np, mid] -> [np, n_embd_out]
    const float *xp = B.x + (size_t)off * D;
    if ((rc = linear(pool, c->mm0_w, c->mm0_b, xp, np, B.f, w, B.tmp))) return vv_err(e, rc, "projector failed");
    vv_map_par(pool, c->mode == VISVM_VISION_LLAMACPP ? vv_gelu_tanh : vv_gelu_erf, B.f, (int64_t)np * proj_mid);
    if ((rc = linear(pool, c->mm2_w, c->mm2_b, B.f, np, out, w, B.tmp))) return vv_err(e, rc, "projector failed");
    return VISVM_OK;
}

int vv_clip_image_features(const vv_clip *c, vv_pool *pool, const float *img, float *out, vv_clip_work *w,
                           vv_error *e) {
    if (!c->has_text || !c->has_class) return vv_err(e, VISVM_ERR_INVALID, "not a full CLIP (no text encoder)");
    int rc = work_reserve(c, w, e);
    if (rc) return rc;
    clip_bufs B = bufs_of(c, w);
    if ((rc = tower(c, pool, img, &B, w, e))) return rc;
    const int D = c->n_embd;
    float *cls = B.h; // class token (or the mean / max of all tokens) -> post-LN -> projection
    float *pooled = B.x;
    if (c->mean_pool) {
        pooled = B.q;
        for (int i = 0; i < D; i++) {
            double acc = 0;
            for (int t = 0; t < c->n_pos; t++) acc += B.x[(size_t)t * D + i];
            pooled[i] = (float)(acc / c->n_pos);
        }
    } else if (c->max_pool) {
        pooled = B.q;
        memcpy(pooled, B.x, (size_t)D * sizeof(float));
        for (int t = 1; t < c->n_pos; t++)
            for (int i = 0; i < D; i++) pooled[i] = VV_MAX(pooled[i], B.x[(size_t)t * D + i]);
    }
    vv_layernorm(pooled, vecp(c->post_ln_w, B.tmp), c->post_ln_b ? vecp(c->post_ln_b, B.tmp + D) : NULL, cls, 1, D, c->eps);
    return linear(pool, c->vis_proj, NULL, cls, 1, out, w, B.tmp) ? vv_err(e, VISVM_ERR_INTERNAL, "projection failed")
                                                                  : VISVM_OK;
}

int vv_clip_text_features(const vv_clip *c, vv_pool *pool, const char *text, float *out, vv_clip_work *w, vv_error *e) {
    if (!c->has_text) return vv_err(e, VISVM_ERR_INVALID, "not a full CLIP (no text encoder)");
    int rc = work_reserve(c, w, e);
    if (rc) return rc;
    clip_bufs B = bufs_of(c, w);
    const int D = c->text.n_embd, ctx = c->text.n_ctx;
    vv_ivec ids = {0};
    vv_ivec_push(&ids, vv_vocab_bos(c->vocab));
    if ((rc = vv_tokenize(c->vocab, text, strlen(text), false, false, &ids, e))) {
        vv_ivec_free(&ids);
        return rc;
    }
    if ((int)ids.n > ctx - 1) ids.n = (size_t)(ctx - 1); // as training: truncate, then EOS
    vv_ivec_push(&ids, vv_vocab_eos(c->vocab));
    const int n = (int)ids.n;
    int32_t kv_len[4096];
    for (int t = 0; t < n; t++) {
        vv_get_row(c->text.tok, ids.v[t], B.x + (size_t)t * D);
        vv_get_row(c->text.pos, t, B.tmp);
        vv_add(B.x + (size_t)t * D, B.tmp, D);
        kv_len[t] = t + 1;
    }
    vv_ivec_free(&ids);
    if ((rc = run_blocks(c, pool, c->text.layers, c->text.n_layer, n, D, c->text.n_head, c->text.n_ff, c->text.eps,
                         kv_len, &B, w, e)))
        return rc;
    float *last = B.h, *pooled = B.x + (size_t)(n - 1) * D;
    if (c->text_mean_pool) {
        pooled = B.q;
        for (int i = 0; i < D; i++) {
            double acc = 0;
            for (int t = 0; t < n; t++) acc += B.x[(size_t)t * D + i];
            pooled[i] = (float)(acc / n);
        }
    }
    vv_layernorm(pooled, vecp(c->text.post_w, B.tmp), vecp(c->text.post_b, B.tmp + D), last, 1, D, c->text.eps);
    return linear(pool, c->text.proj, NULL, last, 1, out, w, B.tmp) ? vv_err(e, VISVM_ERR_INTERNAL, "projection failed")
                                                                    : VISVM_OK;
}

float vv_cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return (float)(ab / (sqrt(aa * bb) + 1e-12));
}

// Rows/columns of the unpadded anyres feature map (reference mode), as HF's
// unpad_image in floating point: see ../shared/golden-hf/README.md.
static void unpad_region(const vv_clip *c, const vv_image_batch *b, int *r0, int *r1, int *c0, int *c1) {
    const int ps = c->n_patches_side;
    const int H = b->grid_h * ps, W = b->grid_w * ps;
    const double oh = b->orig_h, ow = b->orig_w;
    *r0 = 0;
    *r1 = H;
    *c0 = 0;
    *c1 = W;
    if (ow / oh > (double)W / (double)H) {
        int new_h = (int)(oh * ((double)W / ow));
        int pad = (H - new_h) / 2;
        *r0 = pad;
        *r1 = H - pad;
    } else {
        int new_w = (int)(ow * ((double)H / oh));
        int pad = (W - new_w) / 2;
        *c0 = pad;
        *c1 = W - pad;
    }
}

static bool use_grid(const vv_clip *c, const vv_image_batch *b) { return b->grid_w > 0 && b->grid_h > 0 && b->n > 1; }

int vv_clip_n_image_tokens(const vv_clip *c, const vv_image_batch *b) {
    if (!use_grid(c, b)) return c->n_patches * (b->n > 0 ? 1 : 0);
    if (c->mode == VISVM_VISION_LLAMACPP) return c->n_patches * b->n;
    int r0, r1, c0, c1;
    unpad_region(c, b, &r0, &r1, &c0, &c1);
    return c->n_patches + (r1 - r0) * ((c1 - c0) + (c->image_newline ? 1 : 0));
}

int vv_clip_embed(const vv_clip *c, vv_pool *pool, const vv_image_batch *b, float **out, int *n_tokens,
                  float **crop_embd, vv_error *e) {
    *out = NULL;
    *n_tokens = 0;
    if (crop_embd) *crop_embd = NULL;
    if (b->n <= 0 || b->size != c->image_size)
        return vv_err(e, VISVM_ERR_INVALID, "preprocessed image has size %d, the vision model expects %d", b->size,
                      c->image_size);
    const int np = c->n_patches, Do = c->n_embd_out;
    const size_t crop_floats = (size_t)np * Do;
    float *crops = vv_aalloc((size_t)b->n * crop_floats * sizeof(float));
    if (!crops) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    vv_clip_work w = {0};
    int rc = VISVM_OK;
    const size_t img_floats = (size_t)b->size * b->size * 3;
    // In LLaVA-1.5 only image 0 is used; anyres encodes every crop.
    int n_enc = use_grid(c, b) ? b->n : 1;
    for (int i = 0; i < n_enc && !rc; i++) rc = vv_clip_encode(c, pool, b->data + i * img_floats, crops + i * crop_floats, &w, e);
    vv_clip_work_free(&w);
    if (rc) {
        vv_afree(crops);
        return rc;
    }
    int n_tok = vv_clip_n_image_tokens(c, b);
    float *res = vv_aalloc((size_t)n_tok * Do * sizeof(float));
    if (!res) {
        vv_afree(crops);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    memcpy(res, crops, crop_floats * sizeof(float)); // base image (or the only image)
    if (use_grid(c, b)) {
        const int ps = c->n_patches_side, gw = b->grid_w;
        float *dst = res + crop_floats;
        if (c->mode == VISVM_VISION_LLAMACPP) {
            // llava.cpp: global raster order over the grid, no unpad, no newline
            for (int gy = 0; gy < b->grid_h; gy++)
                for (int r = 0; r < ps; r++)
                    for (int gx = 0; gx < gw; gx++) {
                        const float *src = crops + (size_t)(1 + gy * gw + gx) * crop_floats + (size_t)r * ps * Do;
                        memcpy(dst, src, (size_t)ps * Do * sizeof(float));
                        dst += (size_t)ps * Do;
                    }
        } else {
            int r0, r1, c0, c1;
            unpad_region(c, b, &r0, &r1, &c0, &c1);
            float *nl = NULL;
            if (c->image_newline) {
                nl = malloc((size_t)Do * sizeof(float));
                if (!nl) {
                    vv_afree(crops);
                    vv_afree(res);
                    return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                }
                vv_dequantize_row(c->image_newline->type, c->image_newline->data, nl, Do);
            }
            for (int y = r0; y < r1; y++) {
                for (int x = c0; x < c1; x++) {
                    int gy = y / ps, gx = x / ps;
                    const float *src = crops + (size_t)(1 + gy * gw + gx) * crop_floats + (size_t)((y % ps) * ps + (x % ps)) * Do;
                    memcpy(dst, src, (size_t)Do * sizeof(float));
                    dst += Do;
                }
                if (nl) {
                    memcpy(dst, nl, (size_t)Do * sizeof(float));
                    dst += Do;
                }
            }
            free(nl);
        }
    }
    if (crop_embd) *crop_embd = crops;
    else vv_afree(crops);
    *out = res;
    *n_tokens = n_tok;
    return VISVM_OK;
}
