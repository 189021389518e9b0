// hf.c - Hugging Face LLaVA-NeXT / VisVM value checkpoints: config parsing,
// tensor mapping onto the engine's structures, and HF-exact forward passes.
#include "hf.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../format/json.h"
#include "../text/spm_model.h"

// ---------------------------------------------------------------------------
// small helpers

static cJSON *read_json(const char *dir, const char *name, bool required, vv_error *e, int *rc) {
    *rc = VISVM_OK;
    vv_buf p = {0};
    if (vv_buf_printf(&p, "%s/%s", dir, name)) {
        *rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    if (!vv_file_exists(p.v)) {
        if (required) *rc = vv_err(e, VISVM_ERR_NOT_FOUND, "%s: missing", p.v);
        vv_buf_free(&p);
        return NULL;
    }
    char *js = NULL;
    if ((*rc = vv_read_file(p.v, &js, NULL, e))) {
        vv_buf_free(&p);
        return NULL;
    }
    cJSON *j = cJSON_Parse(js);
    free(js);
    if (!cJSON_IsObject(j)) {
        *rc = vv_err(e, VISVM_ERR_FORMAT, "%s: not a valid JSON object", p.v);
        cJSON_Delete(j);
        j = NULL;
    }
    vv_buf_free(&p);
    return j;
}

static const cJSON *jget(const cJSON *o, const char *k) { return o ? cJSON_GetObjectItemCaseSensitive(o, k) : NULL; }

// Integer field with a default; VISVM_ERR_FORMAT when present but not an integer.
static int jint(const cJSON *o, const char *k, int def, int *out, const char *file, vv_error *e) {
    const cJSON *v = jget(o, k);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return VISVM_OK;
    }
    int64_t x;
    if (!vv_json_int(v, -1e9, 1e9, &x)) return vv_err(e, VISVM_ERR_FORMAT, "%s: \"%s\" must be an integer", file, k);
    *out = (int)x;
    return VISVM_OK;
}

static int jnum(const cJSON *o, const char *k, double def, double *out, const char *file, vv_error *e) {
    const cJSON *v = jget(o, k);
    if (!v || cJSON_IsNull(v)) {
        *out = def;
        return VISVM_OK;
    }
    if (!cJSON_IsNumber(v)) return vv_err(e, VISVM_ERR_FORMAT, "%s: \"%s\" must be a number", file, k);
    *out = v->valuedouble;
    return VISVM_OK;
}

static const float *own_vec(vv_hf_llava *m, const vv_st_tensor *t, int64_t n, vv_error *e, int *rc) {
    float **vv = realloc(m->vecs, (size_t)(m->n_vecs + 1) * sizeof(float *));
    if (!vv) {
        *rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->vecs = vv;
    float *f = vv_aalloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    if (!f) {
        *rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->vecs[m->n_vecs++] = f;
    *rc = vv_st_to_f32(t, f, n, e);
    return *rc ? NULL : f;
}

typedef struct {
    vv_hf_llava *m;
    const char *prefix; // "" or "llava_encoder."
    vv_error *e;
    int rc;
} loader;

static const vv_st_tensor *find(loader *L, const char *name, bool required) {
    char full[512];
    snprintf(full, sizeof(full), "%s%s", L->prefix, name);
    const vv_st_tensor *t = vv_st_find(L->m->st, full);
    if (!t && required && !L->rc) L->rc = vv_err(L->e, VISVM_ERR_FORMAT, "checkpoint is missing tensor '%s'", full);
    return t;
}

static bool shape_is(const vv_st_tensor *t, int nd, const int64_t *s) {
    if (t->n_dims != nd) return false;
    for (int i = 0; i < nd; i++)
        if (t->shape[i] != s[i]) return false;
    return true;
}

static void shape_err(loader *L, const vv_st_tensor *t, int nd, const int64_t *s) {
    char a[128] = "", b[128] = "";
    size_t la = 0, lb = 0;
    for (int i = 0; i < t->n_dims && la < sizeof(a) - 24; i++)
        la += (size_t)snprintf(a + la, sizeof(a) - la, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    for (int i = 0; i < nd && lb < sizeof(b) - 24; i++)
        lb += (size_t)snprintf(b + lb, sizeof(b) - lb, "%s%lld", i ? ", " : "", (long long)s[i]);
    L->rc = vv_err(L->e, VISVM_ERR_FORMAT, "tensor '%s' has shape [%s], expected [%s]", t->name, a, b);
}

// A weight matrix [out, in] the engine can multiply.
static const vv_tensor *mat(loader *L, const char *name, int64_t n_out, int64_t n_in, bool required) {
    if (L->rc) return NULL;
    const vv_st_tensor *t = find(L, name, required);
    if (!t) return NULL;
    int64_t s[2] = {n_out, n_in};
    if (!shape_is(t, 2, s)) {
        shape_err(L, t, 2, s);
        return NULL;
    }
    if (t->view.type != VV_TYPE_F32 && t->view.type != VV_TYPE_F16 && t->view.type != VV_TYPE_BF16) {
        L->rc = vv_err(L->e, VISVM_ERR_UNSUPPORTED, "tensor '%s' has dtype %s (expected F32, F16 or BF16)", t->name,
                       vv_st_dtype_name(t->dtype));
        return NULL;
    }
    return &t->view;
}

// A vector [n] (or any tensor of n elements with the given shape) as owned f32.
static const float *vec(loader *L, const char *name, int nd, const int64_t *s, bool required) {
    if (L->rc) return NULL;
    const vv_st_tensor *t = find(L, name, required);
    if (!t) return NULL;
    if (!shape_is(t, nd, s)) {
        shape_err(L, t, nd, s);
        return NULL;
    }
    int64_t n = 1;
    for (int i = 0; i < nd; i++) n *= s[i];
    return own_vec(L->m, t, n, L->e, &L->rc);
}

static const float *vec1(loader *L, const char *name, int64_t n, bool required) {
    int64_t s[1] = {n};
    return vec(L, name, 1, s, required);
}

bool vv_hf_is_dir(const char *path) {
    struct stat s;
    if (!path || stat(path, &s) != 0 || !S_ISDIR(s.st_mode)) return false;
    vv_buf p = {0};
    bool ok = vv_buf_printf(&p, "%s/config.json", path) == 0 && vv_file_exists(p.v);
    vv_buf_free(&p);
    return ok;
}

void vv_hf_free(vv_hf_llava *m) {
    if (!m) return;
    vv_llama_free(m->lm); // its tensors point into st; gguf is NULL
    free(m->vl);
    for (int i = 0; i < m->n_vecs; i++) vv_afree(m->vecs[i]);
    free(m->vecs);
    free(m->chat_template);
    vv_st_close(m->st);
    vv_gguf_close(m->mm_gguf);
    free(m);
}

// ---------------------------------------------------------------------------
// loading

#define MAX_TOKEN_ID (1 << 24) // vv_spm_vocab_create's bound on added token ids
static int load_tokenizer(vv_hf_llava *m, const char *dir, vv_vocab **out, vv_error *e) {
    int rc;
    cJSON *tc = read_json(dir, "tokenizer_config.json", false, e, &rc);
    if (rc) return rc;
    cJSON *at = read_json(dir, "added_tokens.json", false, e, &rc);
    if (rc) {
        cJSON_Delete(tc);
        return rc;
    }
    vv_added_token added[256];
    int n_added = 0;
    const cJSON *dec = jget(tc, "added_tokens_decoder"), *it;
    if (cJSON_IsObject(dec))
        cJSON_ArrayForEach(it, dec) {
            const cJSON *c = jget(it, "content"), *sp = jget(it, "special");
            char *end = NULL;
            long id = strtol(it->string, &end, 10);
            if (!cJSON_IsString(c) || !end || *end || id < 0 || n_added >= 256) continue;
            if (id > MAX_TOKEN_ID) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s/tokenizer_config.json: added token id %ld is not a token id (0..%d)",
                            dir, id, MAX_TOKEN_ID);
                goto out;
            }
            added[n_added++] = (vv_added_token){c->valuestring, (int)id, !cJSON_IsFalse(sp)};
        }
    if (cJSON_IsObject(at))
        cJSON_ArrayForEach(it, at) {
            if (!cJSON_IsNumber(it) || n_added >= 256) continue;
            int64_t id; // range-checked: casting a huge double to int is undefined (found by fuzz_hf)
            if (!vv_json_int(it, 0, MAX_TOKEN_ID, &id)) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s/added_tokens.json: id of '%s' is %g, not a token id (0..%d)", dir,
                            it->string, it->valuedouble, MAX_TOKEN_ID);
                goto out;
            }
            bool dup = false;
            for (int i = 0; i < n_added; i++) dup |= added[i].id == (int)id;
            if (!dup) added[n_added++] = (vv_added_token){it->string, (int)id, true};
        }
    bool add_bos = !cJSON_IsFalse(jget(tc, "add_bos_token")), add_eos = cJSON_IsTrue(jget(tc, "add_eos_token"));
    m->legacy_tokenizer = !cJSON_IsFalse(jget(tc, "legacy"));
    if (!m->legacy_tokenizer)
        vv_log(1, "%s: tokenizer_config says legacy=false; visvm tokenizes as legacy (a dummy prefix per chunk)", dir);
    const cJSON *ct = jget(tc, "chat_template");
    if (cJSON_IsString(ct)) m->chat_template = vv_strdup(ct->valuestring);
    vv_spm_model sm;
    vv_buf p = {0};
    rc = vv_buf_printf(&p, "%s/tokenizer.model", dir);
    if (!rc) rc = vv_spm_model_load(p.v, &sm, e);
    vv_buf_free(&p);
    if (!rc) {
        rc = vv_spm_vocab_create(&sm, added, n_added, add_bos, add_eos, out, e);
        vv_spm_model_free(&sm);
    }
out:
    cJSON_Delete(tc);
    cJSON_Delete(at);
    return rc;
}

static int load_preproc(vv_hf_llava *m, const char *dir, const cJSON *cfg, vv_error *e) {
    int rc;
    cJSON *pc = read_json(dir, "preprocessor_config.json", true, e, &rc);
    if (rc) return rc;
    const char *f = "preprocessor_config.json";
    vv_hf_preproc *p = &m->pre;
    p->size = m->v_size;
    const cJSON *cs = jget(pc, "crop_size");
    int crop = m->v_size, se = m->v_size;
    if (cJSON_IsNumber(cs)) {
        if ((rc = jint(pc, "crop_size", m->v_size, &crop, f, e))) goto done; // range-checked before the cast
    } else if (cJSON_IsObject(cs) && (rc = jint(cs, "height", m->v_size, &crop, f, e))) goto done;
    if ((rc = jint(jget(pc, "size"), "shortest_edge", m->v_size, &se, f, e))) goto done;
    if (crop != m->v_size || se != m->v_size) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: crop_size %d / shortest_edge %d differ from the vision image_size %d",
                    f, crop, se, m->v_size);
        goto done;
    }
    int resample = 3;
    if ((rc = jint(pc, "resample", 3, &resample, f, e))) goto done;
    if (resample != 3) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: resample %d (only 3 = BICUBIC is supported)", f, resample);
        goto done;
    }
    if ((rc = jnum(pc, "rescale_factor", 1.0 / 255.0, &p->rescale, f, e))) goto done;
    const float defm[3] = {0.48145466f, 0.4578275f, 0.40821073f}, defs[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    const char *keys[2] = {"image_mean", "image_std"};
    for (int k = 0; k < 2; k++) {
        float *dst = k ? p->std : p->mean;
        const cJSON *a = jget(pc, keys[k]);
        if (!a) {
            memcpy(dst, k ? defs : defm, sizeof(defm));
            continue;
        }
        if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: \"%s\" must be 3 numbers", f, keys[k]);
            goto done;
        }
        for (int c = 0; c < 3; c++) {
            const cJSON *x = cJSON_GetArrayItem(a, c);
            if (!cJSON_IsNumber(x) || (k && x->valuedouble == 0)) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s: bad \"%s\" value", f, keys[k]);
                goto done;
            }
            dst[c] = (float)x->valuedouble;
        }
    }
    const cJSON *pp = jget(pc, "image_grid_pinpoints");
    if (!pp) pp = jget(cfg, "image_grid_pinpoints");
    if (!cJSON_IsArray(pp) || cJSON_GetArraySize(pp) < 1 || cJSON_GetArraySize(pp) > VV_HF_MAX_PINPOINTS) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "image_grid_pinpoints missing or not a list of 1..%d (h, w) pairs",
                    VV_HF_MAX_PINPOINTS);
        goto done;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, pp) {
        const cJSON *h = cJSON_GetArrayItem(it, 0), *w = cJSON_GetArrayItem(it, 1);
        if (!cJSON_IsArray(it) || cJSON_GetArraySize(it) != 2 || !cJSON_IsNumber(h) || !cJSON_IsNumber(w) ||
            h->valuedouble < 1 || w->valuedouble < 1 || h->valuedouble > 16384 || w->valuedouble > 16384) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "image_grid_pinpoints: bad pair");
            goto done;
        }
        p->pinpoints[p->n_pinpoints][0] = (int)h->valuedouble;
        p->pinpoints[p->n_pinpoints][1] = (int)w->valuedouble;
        p->n_pinpoints++;
    }
done:
    cJSON_Delete(pc);
    return rc;
}

int vv_hf_load(const char *dir, vv_hf_llava **out, vv_error *e) {
    *out = NULL;
    int rc;
    cJSON *cfg = read_json(dir, "config.json", true, e, &rc);
    if (rc) return rc;
    vv_hf_llava *m = calloc(1, sizeof(*m));
    vv_vocab *vocab = NULL;
    if (!m) {
        cJSON_Delete(cfg);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    const char *F = "config.json";
    const cJSON *arch = cJSON_GetArrayItem(jget(cfg, "architectures"), 0);
    const cJSON *mt = jget(cfg, "model_type");
    m->is_value = cJSON_IsString(arch) && !strcmp(arch->valuestring, "ValueModel");
    if (!m->is_value && !(cJSON_IsString(mt) && !strcmp(mt->valuestring, "llava_next"))) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s/%s: model_type '%s' is not supported (expected llava_next)", dir, F,
                    cJSON_IsString(mt) ? mt->valuestring : "?");
        goto fail;
    }
    if ((rc = vv_st_open(dir, &m->st, e))) goto fail;
    loader L = {m, m->is_value ? "llava_encoder." : "", e, 0};

    // --- text config (MistralConfig / LlamaConfig defaults for absent keys)
    const cJSON *tc = jget(cfg, "text_config");
    const cJSON *tmt = jget(tc, "model_type");
    bool mistral = !cJSON_IsString(tmt) || !strcmp(tmt->valuestring, "mistral");
    if (cJSON_IsString(tmt) && strcmp(tmt->valuestring, "mistral") && strcmp(tmt->valuestring, "llama")) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: text model_type '%s' is not supported (mistral, llama)", F,
                    tmt->valuestring);
        goto fail;
    }
    int D = 0, n_layer = 0, n_head = 0, n_kv = 0, n_ff = 0, n_vocab = 0, head_dim = 0, max_pos = 0;
    double eps = 0, theta = 0;
    if ((rc = jint(tc, "hidden_size", 4096, &D, F, e)) || (rc = jint(tc, "num_hidden_layers", 32, &n_layer, F, e)) ||
        (rc = jint(tc, "num_attention_heads", 32, &n_head, F, e)) ||
        (rc = jint(tc, "intermediate_size", mistral ? 14336 : 11008, &n_ff, F, e)) ||
        (rc = jint(tc, "vocab_size", 32000, &n_vocab, F, e)) ||
        (rc = jint(tc, "max_position_embeddings", mistral ? 4096 * 32 : 2048, &max_pos, F, e)) ||
        (rc = jnum(tc, "rms_norm_eps", 1e-6, &eps, F, e)) || (rc = jnum(tc, "rope_theta", 10000.0, &theta, F, e)))
        goto fail;
    if ((rc = jint(tc, "num_key_value_heads", mistral ? 8 : n_head, &n_kv, F, e))) goto fail;
    if (D <= 0 || n_head <= 0 || D % n_head) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: hidden_size %d is not a multiple of num_attention_heads %d", F, D, n_head);
        goto fail;
    }
    if ((rc = jint(tc, "head_dim", D / n_head, &head_dim, F, e))) goto fail;
    if (mistral && jget(tc, "sliding_window") == NULL) m->sliding_window = 4096;
    else if ((rc = jint(tc, "sliding_window", 0, &m->sliding_window, F, e))) goto fail;
    if (jget(tc, "rope_scaling") && !cJSON_IsNull(jget(tc, "rope_scaling"))) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: text_config.rope_scaling is not supported", F);
        goto fail;
    }
    if (n_layer <= 0 || n_layer > 4096 || n_kv <= 0 || n_head % n_kv || n_ff <= 0 || head_dim <= 0 || head_dim % 2 ||
        n_vocab <= 0 || !(eps > 0) || !(theta > 0)) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: invalid text hyper-parameters (layers %d, heads %d/%d, ff %d, head_dim %d)",
                    F, n_layer, n_head, n_kv, n_ff, head_dim);
        goto fail;
    }
    m->n_embd = D;
    if ((rc = jint(cfg, "image_token_index", 32000, &m->image_token, F, e)) ||
        (rc = jint(cfg, "pad_token_id", -1, &m->pad_token, F, e)))
        goto fail;

    // --- vision config (CLIPVisionConfig defaults)
    const cJSON *vc = jget(cfg, "vision_config");
    if ((rc = jint(vc, "hidden_size", 768, &m->v_dim, F, e)) || (rc = jint(vc, "image_size", 224, &m->v_size, F, e)) ||
        (rc = jint(vc, "intermediate_size", 3072, &m->v_ff, F, e)) ||
        (rc = jint(vc, "num_attention_heads", 12, &m->v_heads, F, e)) ||
        (rc = jint(vc, "num_hidden_layers", 12, &m->v_layers, F, e)) ||
        (rc = jint(vc, "patch_size", 32, &m->v_patch, F, e)))
        goto fail;
    double veps = 0;
    if ((rc = jnum(vc, "layer_norm_eps", 1e-5, &veps, F, e))) goto fail;
    m->v_eps = (float)veps;
    const cJSON *act = jget(vc, "hidden_act");
    m->v_quick_gelu = !cJSON_IsString(act) || !strcmp(act->valuestring, "quick_gelu");
    if (!m->v_quick_gelu && strcmp(act->valuestring, "gelu") != 0) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: vision hidden_act '%s' is not supported", F, act->valuestring);
        goto fail;
    }
    if (m->v_patch <= 0 || m->v_size <= 0 || m->v_size % m->v_patch || m->v_dim <= 0 || m->v_heads <= 0 ||
        m->v_dim % m->v_heads || m->v_layers <= 0 || m->v_layers > 1024 || m->v_ff <= 0) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: invalid vision hyper-parameters", F);
        goto fail;
    }
    m->v_grid = m->v_size / m->v_patch;
    int fl = -2;
    if ((rc = jint(cfg, "vision_feature_layer", -2, &fl, F, e))) goto fail;
    m->v_layers_run = fl >= 0 ? fl : m->v_layers + 1 + fl;
    if (m->v_layers_run < 0 || m->v_layers_run > m->v_layers) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: vision_feature_layer %d is outside the %d layers", F, fl, m->v_layers);
        goto fail;
    }
    const cJSON *strat = jget(cfg, "vision_feature_select_strategy");
    m->drop_cls = !cJSON_IsString(strat) || !strcmp(strat->valuestring, "default");
    if (cJSON_IsString(strat) && strcmp(strat->valuestring, "default") && strcmp(strat->valuestring, "full")) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: vision_feature_select_strategy '%s'", F, strat->valuestring);
        goto fail;
    }
    const cJSON *pa = jget(cfg, "projector_hidden_act");
    if (cJSON_IsString(pa) && strcmp(pa->valuestring, "gelu") != 0) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: projector_hidden_act '%s' (only gelu)", F, pa->valuestring);
        goto fail;
    }
    if ((rc = load_preproc(m, dir, cfg, e))) goto fail;

    // --- vision tensors
    {
        const int64_t Dv = m->v_dim, P = m->v_patch, npos = 1 + (int64_t)m->v_grid * m->v_grid;
        const vv_st_tensor *pw = find(&L, "vision_tower.vision_model.embeddings.patch_embedding.weight", true);
        int64_t ps[4] = {Dv, 3, P, P};
        if (pw && !shape_is(pw, 4, ps)) shape_err(&L, pw, 4, ps);
        else if (pw && pw->view.type != VV_TYPE_F32 && pw->view.type != VV_TYPE_F16 && pw->view.type != VV_TYPE_BF16)
            L.rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "patch embedding dtype %s", vv_st_dtype_name(pw->dtype));
        if (pw) m->patch_w = &pw->view;
        m->class_embd = vec1(&L, "vision_tower.vision_model.embeddings.class_embedding", Dv, true);
        int64_t pe[2] = {npos, Dv};
        m->pos_embd = vec(&L, "vision_tower.vision_model.embeddings.position_embedding.weight", 2, pe, true);
        m->pre_ln_w = vec1(&L, "vision_tower.vision_model.pre_layrnorm.weight", Dv, true);
        m->pre_ln_b = vec1(&L, "vision_tower.vision_model.pre_layrnorm.bias", Dv, true);
        m->vl = calloc((size_t)(m->v_layers_run > 0 ? m->v_layers_run : 1), sizeof(vv_hf_vlayer));
        if (!m->vl && !L.rc) L.rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        for (int i = 0; i < m->v_layers_run && !L.rc; i++) {
            vv_hf_vlayer *V = &m->vl[i];
            char n[160];
#define VN(s) (snprintf(n, sizeof(n), "vision_tower.vision_model.encoder.layers.%d.%s", i, s), n)
            V->ln1_w = vec1(&L, VN("layer_norm1.weight"), Dv, true);
            V->ln1_b = vec1(&L, VN("layer_norm1.bias"), Dv, true);
            V->ln2_w = vec1(&L, VN("layer_norm2.weight"), Dv, true);
            V->ln2_b = vec1(&L, VN("layer_norm2.bias"), Dv, true);
            V->q_w = mat(&L, VN("self_attn.q_proj.weight"), Dv, Dv, true);
            V->k_w = mat(&L, VN("self_attn.k_proj.weight"), Dv, Dv, true);
            V->v_w = mat(&L, VN("self_attn.v_proj.weight"), Dv, Dv, true);
            V->o_w = mat(&L, VN("self_attn.out_proj.weight"), Dv, Dv, true);
            V->q_b = vec1(&L, VN("self_attn.q_proj.bias"), Dv, true);
            V->k_b = vec1(&L, VN("self_attn.k_proj.bias"), Dv, true);
            V->v_b = vec1(&L, VN("self_attn.v_proj.bias"), Dv, true);
            V->o_b = vec1(&L, VN("self_attn.out_proj.bias"), Dv, true);
            V->fc1_w = mat(&L, VN("mlp.fc1.weight"), m->v_ff, Dv, true);
            V->fc1_b = vec1(&L, VN("mlp.fc1.bias"), m->v_ff, true);
            V->fc2_w = mat(&L, VN("mlp.fc2.weight"), Dv, m->v_ff, true);
            V->fc2_b = vec1(&L, VN("mlp.fc2.bias"), Dv, true);
#undef VN
        }
        // projector: linear_1 [D, Dv] (its width is the text size in LLaVA-NeXT), linear_2 [D, D]
        const vv_st_tensor *l1 = find(&L, "multi_modal_projector.linear_1.weight", true);
        int64_t mid = l1 && l1->n_dims == 2 ? l1->shape[0] : D;
        m->mm1_w = mat(&L, "multi_modal_projector.linear_1.weight", mid, Dv, true);
        m->mm1_b = vec1(&L, "multi_modal_projector.linear_1.bias", mid, true);
        m->mm2_w = mat(&L, "multi_modal_projector.linear_2.weight", D, mid, true);
        m->mm2_b = vec1(&L, "multi_modal_projector.linear_2.bias", D, true);
        m->image_newline = vec1(&L, "image_newline", D, true);
        if ((rc = L.rc)) goto fail;
    }

    // --- text decoder as a vv_llama over the checkpoint's tensors
    if ((rc = load_tokenizer(m, dir, &vocab, e))) goto fail;
    {
        vv_llama *lm = calloc(1, sizeof(*lm));
        if (!lm) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            goto fail;
        }
        m->lm = lm;
        lm->vocab = vocab;
        vocab = NULL;
        vv_llama_hparams *hp = &lm->hp;
        const vv_st_tensor *te = find(&L, "language_model.model.embed_tokens.weight", true);
        if (!te || te->n_dims != 2) {
            rc = L.rc ? L.rc : vv_err(e, VISVM_ERR_FORMAT, "embed_tokens is not a matrix");
            goto fail;
        }
        if (te->shape[0] != n_vocab)
            vv_log(2, "embed_tokens has %lld rows, config vocab_size %d", (long long)te->shape[0], n_vocab);
        hp->n_vocab = (int)te->shape[0];
        hp->n_embd = D;
        hp->n_layer = n_layer;
        hp->n_head = n_head;
        hp->n_head_kv = n_kv;
        hp->head_dim = head_dim;
        hp->n_ff = n_ff;
        hp->n_rot = head_dim;
        hp->n_ctx_train = max_pos;
        hp->rope_base = (float)theta;
        hp->rope_freq_scale = 1.0f;
        hp->eps = (float)eps;
        hp->rope_neox = true;
        if (hp->n_vocab < vv_vocab_n(lm->vocab)) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "embed_tokens has %d rows, fewer than the %d tokenizer tokens",
                        hp->n_vocab, vv_vocab_n(lm->vocab));
            goto fail;
        }
        const int64_t q_dim = (int64_t)n_head * head_dim, kv_dim = (int64_t)n_kv * head_dim;
        lm->tok_embd = mat(&L, "language_model.model.embed_tokens.weight", hp->n_vocab, D, true);
        lm->output = mat(&L, "language_model.lm_head.weight", hp->n_vocab, D, false);
        if (!lm->output) lm->output = lm->tok_embd;
        const vv_st_tensor *onorm = find(&L, "language_model.model.norm.weight", true);
        lm->output_norm = onorm ? &onorm->view : NULL;
        lm->layers = calloc((size_t)n_layer, sizeof(vv_llama_layer));
        lm->norm_f32 = calloc((size_t)(2 + 6 * n_layer), sizeof(float *));
        if (!lm->layers || !lm->norm_f32) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            goto fail;
        }
        // norm_f32 entries are freed by vv_llama_free: allocate them with malloc
        float *nv = NULL;
#define NORM(slot, name, nn)                                                             \
    do {                                                                                 \
        const vv_st_tensor *t_ = find(&L, name, true);                                   \
        if (!t_) break;                                                                  \
        int64_t s_[1] = {nn};                                                            \
        if (!shape_is(t_, 1, s_)) {                                                      \
            shape_err(&L, t_, 1, s_);                                                    \
            break;                                                                       \
        }                                                                                \
        if (!(nv = malloc((size_t)(nn) * sizeof(float)))) {                              \
            L.rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");                          \
            break;                                                                       \
        }                                                                                \
        lm->norm_f32[slot] = nv;                                                         \
        L.rc = vv_st_to_f32(t_, nv, nn, e);                                              \
    } while (0)
        NORM(0, "language_model.model.norm.weight", D);
        for (int il = 0; il < n_layer && !L.rc; il++) {
            vv_llama_layer *Y = &lm->layers[il];
            char n[160];
#define TN(s) (snprintf(n, sizeof(n), "language_model.model.layers.%d.%s", il, s), n)
            Y->wq = mat(&L, TN("self_attn.q_proj.weight"), q_dim, D, true);
            Y->wk = mat(&L, TN("self_attn.k_proj.weight"), kv_dim, D, true);
            Y->wv = mat(&L, TN("self_attn.v_proj.weight"), kv_dim, D, true);
            Y->wo = mat(&L, TN("self_attn.o_proj.weight"), D, q_dim, true);
            Y->w_gate = mat(&L, TN("mlp.gate_proj.weight"), n_ff, D, true);
            Y->w_up = mat(&L, TN("mlp.up_proj.weight"), n_ff, D, true);
            Y->w_down = mat(&L, TN("mlp.down_proj.weight"), D, n_ff, true);
            const vv_st_tensor *an = find(&L, TN("input_layernorm.weight"), true);
            Y->attn_norm = an ? &an->view : NULL;
            NORM(2 + 6 * il, TN("input_layernorm.weight"), D);
            const vv_st_tensor *fn = find(&L, TN("post_attention_layernorm.weight"), true);
            Y->ffn_norm = fn ? &fn->view : NULL;
            NORM(2 + 6 * il + 1, TN("post_attention_layernorm.weight"), D);
#undef TN
        }
#undef NORM
        if ((rc = L.rc)) goto fail;
        lm->file_type = lm->layers[0].wq->type;
        if (m->chat_template) lm->chat_template = vv_strdup(m->chat_template);
        lm->name = vv_strdup(dir);
        if (m->image_token < 0 || m->image_token >= hp->n_vocab) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: image_token_index %d outside the %d embedding rows", F,
                        m->image_token, hp->n_vocab);
            goto fail;
        }
    }
    // chat template from chat_template.json when the tokenizer config has none
    if (!m->chat_template) {
        cJSON *ctj = read_json(dir, "chat_template.json", false, e, &rc);
        if (rc) goto fail;
        const cJSON *s = jget(ctj, "chat_template");
        if (cJSON_IsString(s)) m->chat_template = vv_strdup(s->valuestring);
        cJSON_Delete(ctj);
    }

    // --- value head
    if (m->is_value) {
        const vv_st_tensor *hw = vv_st_find(m->st, "v_head.0.weight"), *hb = vv_st_find(m->st, "v_head.0.bias");
        if (!hw || !hb) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "value model: missing tensor 'v_head.0.%s'", hw ? "bias" : "weight");
            goto fail;
        }
        if (hw->n_dims != 2 || hw->shape[0] != 1 || hw->shape[1] % D != 0 || hw->shape[1] <= 0 ||
            vv_st_nelements(hb) != 1) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "value model: v_head.0.weight must be [1, max_length * %d]", D);
            goto fail;
        }
        m->max_length = (int)(hw->shape[1] / D);
        cJSON *vh = read_json(dir, "value_head.json", false, e, &rc);
        if (rc) goto fail;
        int ml = m->max_length;
        if (vh && (rc = jint(vh, "max_length", m->max_length, &ml, "value_head.json", e))) {
            cJSON_Delete(vh);
            goto fail;
        }
        cJSON_Delete(vh);
        if (ml != m->max_length) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "value_head.json: max_length %d but v_head.0.weight implies %d", ml,
                        m->max_length);
            goto fail;
        }
        if (hw->view.type != VV_TYPE_F32 && hw->view.type != VV_TYPE_F16 && hw->view.type != VV_TYPE_BF16) {
            rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "v_head.0.weight dtype %s", vv_st_dtype_name(hw->dtype));
            goto fail;
        }
        m->v_head_w = &hw->view;
        float b;
        if ((rc = vv_st_to_f32(hb, &b, 1, e))) goto fail;
        m->v_head_b = b;
        if (m->pad_token < 0) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "value model: config.json has no pad_token_id (needed for left padding)");
            goto fail;
        }
    }
    cJSON_Delete(cfg);
    *out = m;
    return VISVM_OK;
fail:
    cJSON_Delete(cfg);
    vv_vocab_free(vocab);
    vv_hf_free(m);
    return rc ? rc : VISVM_ERR_INTERNAL;
}

// ---------------------------------------------------------------------------
// vision

static int linear(vv_pool *pool, const vv_tensor *W, const float *b, const float *x, int64_t n, float *y, vv_wbuf *ws) {
    int rc = vv_matmul(pool, W, x, n, y, W->ne[1], ws, VV_ISA_BEST);
    if (!rc && b) vv_add_bias(y, b, n, W->ne[1]);
    return rc;
}

int vv_hf_vision(const vv_hf_llava *m, vv_pool *pool, const vv_hf_pixels *px, float *embd, float *selected,
                 float *projected, vv_error *e) {
    if (px->size != m->v_size || px->n <= 0)
        return vv_err(e, VISVM_ERR_INVALID, "pixels of size %d, the vision tower expects %d", px->size, m->v_size);
    const int S = m->v_size, P = m->v_patch, G = m->v_grid, np = G * G, npos = 1 + np, Dv = m->v_dim, kdim = 3 * P * P;
    const int hd = Dv / m->v_heads, ff = m->v_ff, D = m->n_embd;
    const int64_t mid = m->mm1_w->ne[1];
    const int T = m->drop_cls ? np : npos;
    size_t need = (size_t)npos * Dv * 6 + (size_t)npos * VV_MAX(ff, (int)mid) + (size_t)np * kdim;
    float *buf = vv_aalloc(need * sizeof(float));
    if (!buf) return vv_err(e, VISVM_ERR_NOMEM, "out of memory for the vision tower");
    float *x = buf, *h = x + (size_t)npos * Dv, *q = h + (size_t)npos * Dv, *k = q + (size_t)npos * Dv,
          *v = k + (size_t)npos * Dv, *a = v + (size_t)npos * Dv, *f = a + (size_t)npos * Dv,
          *patches = f + (size_t)npos * VV_MAX(ff, (int)mid);
    vv_wbuf ws = {0};
    vv_attn_scratch as = {0};
    int rc = VISVM_OK;
    for (int t = 0; t < px->n && !rc; t++) {
        const float *img = px->data + (size_t)t * 3 * S * S; // CHW
        for (int py = 0; py < G; py++)
            for (int pxx = 0; pxx < G; pxx++) {
                float *dst = patches + (size_t)(py * G + pxx) * kdim;
                for (int c = 0; c < 3; c++)
                    for (int ky = 0; ky < P; ky++)
                        memcpy(dst + (c * P + ky) * P, img + ((size_t)c * S + py * P + ky) * S + pxx * P,
                               (size_t)P * sizeof(float));
            }
        if ((rc = vv_matmul_raw(pool, m->patch_w->type, m->patch_w->data, kdim, Dv, patches, np, x + Dv, Dv, &ws,
                                VV_ISA_BEST))) {
            vv_err(e, rc, "patch embedding failed");
            break;
        }
        memcpy(x, m->class_embd, (size_t)Dv * sizeof(float));
        vv_add(x, m->pos_embd, (int64_t)npos * Dv);
        vv_layernorm(x, m->pre_ln_w, m->pre_ln_b, x, npos, Dv, m->v_eps);
        if (embd) memcpy(embd + (size_t)t * npos * Dv, x, (size_t)npos * Dv * sizeof(float));
        for (int il = 0; il < m->v_layers_run && !rc; il++) {
            const vv_hf_vlayer *V = &m->vl[il];
            vv_layernorm(x, V->ln1_w, V->ln1_b, h, npos, Dv, m->v_eps);
            if ((rc = linear(pool, V->q_w, V->q_b, h, npos, q, &ws)) || (rc = linear(pool, V->k_w, V->k_b, h, npos, k, &ws)) ||
                (rc = linear(pool, V->v_w, V->v_b, h, npos, v, &ws)))
                break;
            if ((rc = vv_attention(pool, q, Dv, k, v, Dv, a, Dv, npos, npos, m->v_heads, m->v_heads, hd,
                                   1.0f / sqrtf((float)hd), NULL, &as)))
                break;
            if ((rc = linear(pool, V->o_w, V->o_b, a, npos, h, &ws))) break;
            vv_add(x, h, (int64_t)npos * Dv);
            vv_layernorm(x, V->ln2_w, V->ln2_b, h, npos, Dv, m->v_eps);
            if ((rc = linear(pool, V->fc1_w, V->fc1_b, h, npos, f, &ws))) break;
            if (m->v_quick_gelu) vv_quick_gelu(f, (int64_t)npos * ff);
            else vv_gelu_erf(f, (int64_t)npos * ff);
            if ((rc = linear(pool, V->fc2_w, V->fc2_b, f, npos, h, &ws))) break;
            vv_add(x, h, (int64_t)npos * Dv);
        }
        if (rc) {
            vv_err(e, rc, "vision tower failed (%s)", visvm_status_str(rc));
            break;
        }
        if (selected) memcpy(selected + (size_t)t * npos * Dv, x, (size_t)npos * Dv * sizeof(float));
        if (projected) {
            const float *xs = x + (size_t)(npos - T) * Dv;
            if ((rc = linear(pool, m->mm1_w, m->mm1_b, xs, T, f, &ws))) {
                vv_err(e, rc, "projector failed");
                break;
            }
            vv_gelu_erf(f, (int64_t)T * mid);
            if ((rc = linear(pool, m->mm2_w, m->mm2_b, f, T, projected + (size_t)t * T * D, &ws))) {
                vv_err(e, rc, "projector failed");
                break;
            }
        }
    }
    vv_wbuf_free(&ws);
    vv_attn_scratch_free(&as);
    vv_afree(buf);
    return rc;
}

int vv_hf_pack(const vv_hf_llava *m, const vv_hf_pixels *px, const float *proj, float **out, int *n_tok,
               vv_error *e) {
    *out = NULL;
    *n_tok = 0;
    const int G = m->v_grid, D = m->n_embd, T = m->drop_cls ? G * G : 1 + G * G;
    if (!m->drop_cls && px->n > 1)
        return vv_err(e, VISVM_ERR_UNSUPPORTED, "anyres packing with strategy 'full' is not supported");
    if (px->n == 1) { // single tile: features + one newline
        float *r = malloc((size_t)(T + 1) * D * sizeof(float));
        if (!r) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        memcpy(r, proj, (size_t)T * D * sizeof(float));
        memcpy(r + (size_t)T * D, m->image_newline, (size_t)D * sizeof(float));
        *out = r;
        *n_tok = T + 1;
        return VISVM_OK;
    }
    // grid from the model's own select_best_resolution(image_sizes)
    int bi = vv_hf_select_best_resolution(px->orig_h, px->orig_w, m->pre.pinpoints, m->pre.n_pinpoints);
    if (bi < 0) return vv_err(e, VISVM_ERR_INVALID, "bad image size %dx%d", px->orig_w, px->orig_h);
    const int gh = m->pre.pinpoints[bi][0] / m->v_size, gw = m->pre.pinpoints[bi][1] / m->v_size;
    if (1 + gh * gw != px->n)
        return vv_err(e, VISVM_ERR_INVALID, "%d tiles but the %dx%d grid needs %d", px->n, gh, gw, 1 + gh * gw);
    const int ch = gh * G, cw = gw * G;
    const double H = px->orig_h, W = px->orig_w;
    int r0 = 0, r1 = ch, c0 = 0, c1 = cw;
    if (W / H > (double)cw / (double)ch) {
        int new_h = (int)(H * ((double)cw / W));
        int pad = (ch - new_h) / 2;
        r0 = pad;
        r1 = ch - pad;
    } else {
        int new_w = (int)(W * ((double)ch / H));
        int pad = (cw - new_w) / 2;
        c0 = pad;
        c1 = cw - pad;
    }
    if (r1 <= r0 || c1 <= c0) return vv_err(e, VISVM_ERR_RANGE, "image %dx%d unpads to nothing", px->orig_w, px->orig_h);
    const int n = T + (r1 - r0) * (c1 - c0 + 1);
    float *r = malloc((size_t)n * D * sizeof(float));
    if (!r) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    memcpy(r, proj, (size_t)T * D * sizeof(float));
    float *dst = r + (size_t)T * D;
    for (int y = r0; y < r1; y++) {
        for (int x = c0; x < c1; x++) {
            const int ty = y / G, tx = x / G;
            const float *src = proj + ((size_t)(1 + ty * gw + tx) * T + (size_t)(y % G) * G + (x % G)) * D;
            memcpy(dst, src, (size_t)D * sizeof(float));
            dst += D;
        }
        memcpy(dst, m->image_newline, (size_t)D * sizeof(float));
        dst += D;
    }
    *out = r;
    *n_tok = n;
    return VISVM_OK;
}

int vv_hf_image_features(const vv_hf_llava *m, vv_pool *pool, const vv_image *img, vv_hf_pixels *px_out, float **out,
                         int *n_tok, vv_error *e) {
    *out = NULL;
    *n_tok = 0;
    vv_hf_pixels px;
    int rc = vv_hf_preprocess(img, &m->pre, &px, NULL, e);
    if (rc) return rc;
    const int T = m->drop_cls ? m->v_grid * m->v_grid : 1 + m->v_grid * m->v_grid;
    float *proj = vv_aalloc((size_t)px.n * T * m->n_embd * sizeof(float));
    if (!proj) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc) rc = vv_hf_vision(m, pool, &px, NULL, NULL, proj, e);
    if (!rc) rc = vv_hf_pack(m, &px, proj, out, n_tok, e);
    vv_afree(proj);
    if (px_out && !rc) *px_out = px;
    else vv_hf_pixels_free(&px);
    return rc;
}

// ---------------------------------------------------------------------------
// text

int vv_hf_tokenize(const vv_hf_llava *m, const char *text, int n_image, vv_ivec *ids, vv_error *e) {
    vv_ivec raw = {0};
    int rc = vv_tokenize(m->lm->vocab, text, strlen(text), true, true, &raw, e);
    if (rc) return rc;
    for (size_t i = 0; i < raw.n && !rc; i++) {
        if (raw.v[i] == m->image_token && n_image > 0) {
            for (int k = 0; k < n_image && !rc; k++) rc = vv_ivec_push(ids, m->image_token);
        } else {
            rc = vv_ivec_push(ids, raw.v[i]);
        }
    }
    vv_ivec_free(&raw);
    return rc ? vv_err(e, rc, "out of memory") : VISVM_OK;
}

int vv_hf_chat_prompt(const vv_hf_llava *m, const char *prompt, bool with_image, vv_buf *out) {
    bool mistral = !m->chat_template || strstr(m->chat_template, "[INST]");
    if (mistral) return vv_buf_printf(out, "[INST] %s%s [/INST]", with_image ? "<image>\n" : "", prompt);
    return vv_buf_printf(out, "USER: %s%s ASSISTANT:", with_image ? "<image>\n" : "", prompt);
}

int vv_hf_embed(const vv_hf_llava *m, const int32_t *ids, int n, const float *img, int n_img, float *out,
                vv_error *e) {
    const int D = m->n_embd;
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->lm->hp.n_vocab)
            return vv_err(e, VISVM_ERR_RANGE, "token id %d out of range [0, %d)", ids[i], m->lm->hp.n_vocab);
        if (ids[i] == m->image_token && img) {
            if (k >= n_img)
                return vv_err(e, VISVM_ERR_INVALID, "more image tokens in the prompt than the %d image features", n_img);
            memcpy(out + (size_t)i * D, img + (size_t)k * D, (size_t)D * sizeof(float));
            k++;
        } else {
            int rc = vv_get_row(m->lm->tok_embd, ids[i], out + (size_t)i * D);
            if (rc) return vv_err(e, rc, "cannot read embedding row %d", ids[i]);
        }
    }
    if (img && k != n_img)
        return vv_err(e, VISVM_ERR_INVALID, "the prompt has %d image tokens but the image gives %d features", k, n_img);
    return VISVM_OK;
}

// Attention over a whole sequence with HF's mask semantics.
typedef struct {
    const float *q, *k, *v;
    float *out, *scores; // scores: [nth, n]
    const int32_t *mask;
    int n, n_head, n_kv, hd, pad_mode;
    float scale;
} attn_task;

static void attn_worker(void *ctx, int ith, int nth) {
    attn_task *t = ctx;
    const int q_dim = t->n_head * t->hd, kv_dim = t->n_kv * t->hd, group = t->n_head / t->n_kv, hd = t->hd;
    float *S = t->scores + (size_t)ith * t->n;
    const int64_t n_items = (int64_t)t->n * t->n_head;
    for (int64_t it = ith; it < n_items; it += nth) {
        const int i = (int)(it / t->n_head), h = (int)(it % t->n_head), g = h / group;
        const float *qi = t->q + (size_t)i * q_dim + (size_t)h * hd;
        float *o = t->out + (size_t)i * q_dim + (size_t)h * hd;
        memset(o, 0, (size_t)hd * sizeof(float));
        const bool pad_row = t->mask && !t->mask[i];
        if (pad_row && t->pad_mode == VV_HF_PAD_EAGER) { // uniform over all keys
            const float w = 1.0f / (float)t->n;
            for (int j = 0; j < t->n; j++) vv_axpy_f32(o, w, t->v + (size_t)j * kv_dim + (size_t)g * hd, hd);
            continue;
        }
        const int jmax = pad_row ? t->n : i + 1; // SDPA-unmasked pad rows see every key
        float mx = -INFINITY;
        for (int j = 0; j < jmax; j++) {
            if (!pad_row && t->mask && !t->mask[j]) {
                S[j] = -INFINITY;
                continue;
            }
            S[j] = t->scale * vv_dot_f32(qi, t->k + (size_t)j * kv_dim + (size_t)g * hd, hd);
            if (S[j] > mx) mx = S[j];
        }
        double sum = 0;
        for (int j = 0; j < jmax; j++) {
            S[j] = S[j] == -INFINITY ? 0.0f : expf(S[j] - mx);
            sum += S[j];
        }
        const float inv = (float)(1.0 / sum);
        for (int j = 0; j < jmax; j++)
            if (S[j] != 0.0f) vv_axpy_f32(o, S[j] * inv, t->v + (size_t)j * kv_dim + (size_t)g * hd, hd);
    }
}

// HF rotate-half RoPE: inv_freq = 1 / theta^(2i/d) in float32, angle = pos * inv_freq in float32.
static void rope_hf(float *x, int n, int n_head, int hd, float theta) {
    const int half = hd / 2;
    float inv[1024];
    for (int i = 0; i < half && i < 1024; i++) inv[i] = 1.0f / powf(theta, (float)(2 * i) / (float)hd);
    for (int p = 0; p < n; p++)
        for (int h = 0; h < n_head; h++) {
            float *v = x + ((size_t)p * n_head + h) * hd;
            for (int i = 0; i < half; i++) {
                const float ang = (float)p * inv[i], c = cosf(ang), s = sinf(ang);
                const float x0 = v[i], x1 = v[i + half];
                v[i] = x0 * c - x1 * s;
                v[i + half] = x1 * c + x0 * s;
            }
        }
}

int vv_hf_forward(const vv_hf_llava *m, vv_pool *pool, const float *embd, int n, const int32_t *mask, int pad_mode,
                  float *hidden, float *logits, vv_error *e) {
    const vv_llama *lm = m->lm;
    const vv_llama_hparams *hp = &lm->hp;
    const int D = hp->n_embd, hd = hp->head_dim, q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd, ff = hp->n_ff;
    if (n <= 0) return vv_err(e, VISVM_ERR_INVALID, "empty sequence");
    if (hd > 2048) return vv_err(e, VISVM_ERR_UNSUPPORTED, "head_dim %d", hd);
    if (m->sliding_window > 0 && n > m->sliding_window)
        return vv_err(e, VISVM_ERR_UNSUPPORTED, "sequence of %d tokens exceeds the sliding window %d", n,
                      m->sliding_window);
    const size_t N = (size_t)n;
    float *x = vv_aalloc(N * D * sizeof(float)), *h = vv_aalloc(N * VV_MAX(D, q_dim) * sizeof(float));
    float *q = vv_aalloc(N * q_dim * sizeof(float)), *k = vv_aalloc(N * kv_dim * sizeof(float));
    float *v = vv_aalloc(N * kv_dim * sizeof(float)), *att = vv_aalloc(N * q_dim * sizeof(float));
    float *g = vv_aalloc(N * ff * sizeof(float)), *u = vv_aalloc(N * ff * sizeof(float));
    float *sc = vv_aalloc((size_t)vv_pool_size(pool) * N * sizeof(float));
    vv_wbuf ws = {0};
    int rc = VISVM_OK;
    if (!x || !h || !q || !k || !v || !att || !g || !u || !sc) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory for a %d-token forward", n);
        goto done;
    }
    memcpy(x, embd, N * D * sizeof(float));
    for (int il = 0; il < hp->n_layer; il++) {
        const vv_llama_layer *L = &lm->layers[il];
        float *const *nf = lm->norm_f32 + 2 + 6 * il;
        vv_rmsnorm(x, nf[0], h, n, D, hp->eps);
        if ((rc = linear(pool, L->wq, NULL, h, n, q, &ws)) || (rc = linear(pool, L->wk, NULL, h, n, k, &ws)) ||
            (rc = linear(pool, L->wv, NULL, h, n, v, &ws)))
            break;
        rope_hf(q, n, hp->n_head, hd, hp->rope_base);
        rope_hf(k, n, hp->n_head_kv, hd, hp->rope_base);
        attn_task t = {q, k, v, att, sc, mask, n, hp->n_head, hp->n_head_kv, hd, pad_mode, 1.0f / sqrtf((float)hd)};
        vv_pool_run(pool, attn_worker, &t);
        if ((rc = linear(pool, L->wo, NULL, att, n, h, &ws))) break;
        vv_add(x, h, (int64_t)n * D);
        vv_rmsnorm(x, nf[1], h, n, D, hp->eps);
        if ((rc = linear(pool, L->w_gate, NULL, h, n, g, &ws)) || (rc = linear(pool, L->w_up, NULL, h, n, u, &ws))) break;
        vv_swiglu(g, u, (int64_t)n * ff);
        if ((rc = linear(pool, L->w_down, NULL, g, n, h, &ws))) break;
        vv_add(x, h, (int64_t)n * D);
    }
    if (rc) {
        vv_err(e, rc, "decoder forward failed (%s)", visvm_status_str(rc));
        goto done;
    }
    vv_rmsnorm(x, lm->norm_f32[0], x, n, D, hp->eps);
    if (hidden) memcpy(hidden, x, N * D * sizeof(float));
    if (logits && (rc = linear(pool, lm->output, NULL, x, n, logits, &ws))) vv_err(e, rc, "lm_head failed");
done:
    vv_wbuf_free(&ws);
    vv_afree(x);
    vv_afree(h);
    vv_afree(q);
    vv_afree(k);
    vv_afree(v);
    vv_afree(att);
    vv_afree(g);
    vv_afree(u);
    vv_afree(sc);
    return rc;
}

// ---------------------------------------------------------------------------
// value model

int vv_hf_value(const vv_hf_llava *m, vv_pool *pool, const vv_image *img, const char *sentence, int pad_mode,
                float *value, vv_ivec *ids_out, vv_ivec *mask_out, float *hidden_out, vv_error *e) {
    if (!m->is_value) return vv_err(e, VISVM_ERR_INVALID, "not a value model (config architectures != ValueModel)");
    float *feats = NULL;
    int n_img = 0;
    int rc = vv_hf_image_features(m, pool, img, NULL, &feats, &n_img, e);
    if (!rc) rc = vv_hf_value_feats(m, pool, feats, n_img, sentence, pad_mode, value, ids_out, mask_out, hidden_out, e);
    free(feats);
    return rc;
}

int vv_hf_value_feats(const vv_hf_llava *m, vv_pool *pool, const float *feats, int n_img, const char *sentence,
                      int pad_mode, float *value, vv_ivec *ids_out, vv_ivec *mask_out, float *hidden_out,
                      vv_error *e) {
    if (!m->is_value) return vv_err(e, VISVM_ERR_INVALID, "not a value model (config architectures != ValueModel)");
    const int L = m->max_length, D = m->n_embd;
    float *embd = NULL, *hid = NULL;
    int rc;
    vv_ivec ids = {0};
    vv_buf state = {0};
    int32_t *mask = NULL;
    if ((rc = vv_hf_chat_prompt(m, sentence, true, &state))) {
        rc = vv_err(e, rc, "out of memory");
        goto done;
    }
    vv_ivec toks = {0};
    if ((rc = vv_hf_tokenize(m, state.v, n_img, &toks, e))) goto done;
    if ((int)toks.n > L) {
        // truncation="right" keeps the first max_length tokens; the image must survive it
        int n_keep_img = 0;
        for (int i = 0; i < L; i++) n_keep_img += toks.v[i] == m->image_token;
        if (n_keep_img != n_img) {
            vv_ivec_free(&toks);
            rc = vv_err(e, VISVM_ERR_RANGE, "the value input has %zu tokens; truncating to max_length %d cuts the image",
                        toks.n, L);
            goto done;
        }
        toks.n = (size_t)L;
    }
    const int n_pad = L - (int)toks.n;
    mask = malloc((size_t)L * sizeof(int32_t));
    if (!mask) {
        vv_ivec_free(&toks);
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < L && !rc; i++) {
        rc = vv_ivec_push(&ids, i < n_pad ? m->pad_token : toks.v[i - n_pad]);
        mask[i] = i >= n_pad;
    }
    vv_ivec_free(&toks);
    if (rc) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    embd = vv_aalloc((size_t)L * D * sizeof(float));
    hid = hidden_out ? hidden_out : vv_aalloc((size_t)L * D * sizeof(float));
    if (!embd || !hid) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = vv_hf_embed(m, ids.v, L, feats, n_img, embd, e))) goto done;
    if ((rc = vv_hf_forward(m, pool, embd, L, mask, pad_mode, hid, NULL, e))) goto done;
    float out = 0.0f;
    if ((rc = vv_matmul(pool, m->v_head_w, hid, 1, &out, 1, NULL, VV_ISA_BEST))) {
        vv_err(e, rc, "value head failed");
        goto done;
    }
    *value = out + m->v_head_b;
    if (ids_out && (rc = vv_ivec_append(ids_out, ids.v, ids.n))) rc = vv_err(e, rc, "out of memory");
    for (int i = 0; mask_out && !rc && i < L; i++)
        if (vv_ivec_push(mask_out, mask[i])) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
done:
    vv_afree(embd);
    if (hid != hidden_out) vv_afree(hid);
    vv_ivec_free(&ids);
    vv_buf_free(&state);
    free(mask);
    return rc;
}

// ---------------------------------------------------------------------------
// converted GGUF files (hf_convert.h)

typedef struct {
    const vv_gguf *g;
    const char *path;
    vv_error *e;
    int rc;
} gg_loader;

// An F32 tensor of exactly n values (vectors), or an error.
static const float *gg_vec(gg_loader *L, const char *name, int64_t n) {
    if (L->rc) return NULL;
    const vv_tensor *t = vv_gguf_find_tensor(L->g, name);
    if (!t || t->type != VV_TYPE_F32 || vv_tensor_nelements(t) != n) {
        L->rc = vv_err(L->e, VISVM_ERR_FORMAT, "%s: needs F32 tensor '%s' of %lld values", L->path, name, (long long)n);
        return NULL;
    }
    return (const float *)t->data;
}

// A weight matrix [n_in] x n_out at any type.
static const vv_tensor *gg_mat(gg_loader *L, const char *name, int64_t n_out, int64_t n_in) {
    if (L->rc) return NULL;
    const vv_tensor *t = vv_gguf_find_tensor(L->g, name);
    if (!t || t->n_dims != 2 || t->ne[0] != n_in || (n_out > 0 && t->ne[1] != n_out)) {
        L->rc = vv_err(L->e, VISVM_ERR_FORMAT, "%s: needs matrix '%s' [%lld x %lld]", L->path, name, (long long)n_in,
                       (long long)n_out);
        return NULL;
    }
    return t;
}

static int gg_u32(gg_loader *L, const char *key, int *out) {
    uint32_t v = 0;
    if (L->rc) return L->rc;
    if ((L->rc = vv_gguf_get_u32(L->g, key, &v, L->e))) return L->rc;
    if (v > (1u << 30)) L->rc = vv_err(L->e, VISVM_ERR_FORMAT, "%s: %s = %u out of range", L->path, key, v);
    *out = (int)v;
    return L->rc;
}

static int gg_str_is(gg_loader *L, const char *key, const char *a, const char *b, bool *is_a) {
    const char *s = NULL;
    if (L->rc) return L->rc;
    if (vv_gguf_find_key(L->g, key) < 0)
        return L->rc = vv_err(L->e, VISVM_ERR_UNSUPPORTED,
                              "%s: no '%s' key: not written by `visvm convert` (convert the Hugging Face directory again)",
                              L->path, key);
    if ((L->rc = vv_gguf_get_str(L->g, key, &s, L->e))) return L->rc;
    if (strcmp(s, a) && strcmp(s, b))
        return L->rc = vv_err(L->e, VISVM_ERR_UNSUPPORTED, "%s: %s = '%s' (expected %s or %s)", L->path, key, s, a, b);
    *is_a = !strcmp(s, a);
    return VISVM_OK;
}

int vv_hf_load_gguf(const char *text_path, const char *mmproj_path, vv_hf_llava **out, vv_error *e) {
    *out = NULL;
    if (!text_path || !mmproj_path)
        return vv_err(e, VISVM_ERR_INVALID, "a converted model needs both its text and its mmproj GGUF");
    vv_hf_llava *m = calloc(1, sizeof(*m));
    if (!m) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    int rc = vv_llama_load_file(text_path, &m->lm, e);
    if (!rc) rc = vv_gguf_open(mmproj_path, &m->mm_gguf, e);
    if (rc) goto fail;
    const vv_gguf *tg = m->lm->gguf;
    vv_llama_hparams *hp = &m->lm->hp;
    gg_loader T = {tg, text_path, e, 0}, V = {m->mm_gguf, mmproj_path, e, 0};
    // --- text side
    if (vv_gguf_find_key(tg, "visvm.hf.image_token_id") < 0 || !hp->rope_neox) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED,
                    "%s: not a Hugging Face conversion by `visvm convert` (no visvm.hf.image_token_id / rope.neox)",
                    text_path);
        goto fail;
    }
    int32_t it = 0, pt = -1;
    if ((rc = vv_gguf_get_i32(tg, "visvm.hf.image_token_id", &it, e))) goto fail;
    if (vv_gguf_find_key(tg, "visvm.hf.pad_token_id") >= 0 && (rc = vv_gguf_get_i32(tg, "visvm.hf.pad_token_id", &pt, e)))
        goto fail;
    m->image_token = it;
    m->pad_token = pt;
    if (m->image_token < 0 || m->image_token >= hp->n_vocab) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: image token %d outside the %d embedding rows", text_path, it, hp->n_vocab);
        goto fail;
    }
    uint32_t sw = 0;
    if ((rc = vv_gguf_get_u32_def(tg, "llama.attention.sliding_window", 0, &sw, e))) goto fail;
    m->sliding_window = (int)VV_MIN(sw, 1u << 30);
    m->legacy_tokenizer = true;
    if (m->lm->chat_template && !(m->chat_template = vv_strdup(m->lm->chat_template))) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    m->n_embd = hp->n_embd;
    const int D = hp->n_embd;
    if (vv_gguf_find_key(tg, "visvm.value.head") >= 0) {
        bool flat = false;
        if (gg_str_is(&T, "visvm.value.head", "flattened", "last_token", &flat)) goto fail_T;
        if (!flat) {
            rc = vv_err(e, VISVM_ERR_INVALID, "%s: a last_token value model is not a Hugging Face VisVM checkpoint",
                        text_path);
            goto fail;
        }
        m->is_value = true;
        if (gg_u32(&T, "visvm.value.max_length", &m->max_length)) goto fail_T;
        if (m->max_length <= 0) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: visvm.value.max_length must be positive", text_path);
            goto fail;
        }
        const vv_tensor *hw = vv_gguf_find_tensor(tg, "value_head.weight");
        const float *hb = gg_vec(&T, "value_head.bias", 1);
        if (T.rc) goto fail_T;
        if (!hw || hw->type != VV_TYPE_F32 || hw->ne[0] != (int64_t)m->max_length * D || vv_tensor_nelements(hw) != hw->ne[0]) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: the flattened head needs F32 value_head.weight [%lld]", text_path,
                        (long long)m->max_length * D);
            goto fail;
        }
        m->v_head_w = hw;
        m->v_head_b = hb[0];
        if (m->pad_token < 0 || m->pad_token >= hp->n_vocab) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: value model without a valid visvm.hf.pad_token_id", text_path);
            goto fail;
        }
        const char *ps = NULL;
        if (vv_gguf_find_key(tg, "visvm.value.padding_side") >= 0) {
            if ((rc = vv_gguf_get_str(tg, "visvm.value.padding_side", &ps, e))) goto fail;
            if (strcmp(ps, "left")) {
                rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: padding_side '%s' (only left)", text_path, ps);
                goto fail;
            }
        }
    }
    // --- vision side
    int n_layers = 0;
    bool use_gelu = false, order_hw = false, drop = false;
    if (gg_u32(&V, "clip.vision.image_size", &m->v_size) || gg_u32(&V, "clip.vision.patch_size", &m->v_patch) ||
        gg_u32(&V, "clip.vision.embedding_length", &m->v_dim) ||
        gg_u32(&V, "clip.vision.feed_forward_length", &m->v_ff) ||
        gg_u32(&V, "clip.vision.attention.head_count", &m->v_heads) || gg_u32(&V, "clip.vision.block_count", &n_layers))
        goto fail_V;
    if ((rc = vv_gguf_get_f32_def(m->mm_gguf, "clip.vision.attention.layer_norm_epsilon", 1e-5f, &m->v_eps, e)) ||
        (rc = vv_gguf_get_bool_def(m->mm_gguf, "clip.use_gelu", false, &use_gelu, e)))
        goto fail;
    m->v_quick_gelu = !use_gelu;
    if (gg_str_is(&V, "visvm.hf.pinpoints_order", "height,width", "height,width", &order_hw) ||
        gg_str_is(&V, "visvm.hf.vision_feature_select_strategy", "default", "full", &drop) ||
        gg_str_is(&V, "visvm.hf.unpad", "model_float", "model_float", &order_hw))
        goto fail_V;
    m->drop_cls = drop;
    if (m->v_patch <= 0 || m->v_size <= 0 || m->v_size % m->v_patch || m->v_dim <= 0 || m->v_heads <= 0 ||
        m->v_dim % m->v_heads || n_layers < 0 || n_layers > 1024 || m->v_ff <= 0) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: invalid vision hyper-parameters", mmproj_path);
        goto fail;
    }
    m->v_layers = m->v_layers_run = n_layers;
    m->v_grid = m->v_size / m->v_patch;
    // processor
    vv_hf_preproc *p = &m->pre;
    p->size = m->v_size;
    float rs = 0;
    if ((rc = vv_gguf_get_f32_def(m->mm_gguf, "visvm.hf.rescale_factor", 1.0f / 255.0f, &rs, e)) ||
        (rc = vv_gguf_get_arr_f32(m->mm_gguf, "clip.vision.image_mean", p->mean, 3, e)) ||
        (rc = vv_gguf_get_arr_f32(m->mm_gguf, "clip.vision.image_std", p->std, 3, e)))
        goto fail;
    p->rescale = rs;
    const double inv = floor(1.0 / (double)rs + 0.5); // 1/255 stored as float: restore the double the processor uses
    if (inv > 0 && (float)(1.0 / inv) == rs) p->rescale = 1.0 / inv;
    uint64_t npp = 0;
    int64_t pp[2 * VV_HF_MAX_PINPOINTS];
    if ((rc = vv_gguf_get_arr_n(m->mm_gguf, "clip.vision.image_grid_pinpoints", &npp, e))) goto fail;
    if (npp < 2 || npp % 2 || npp > 2 * VV_HF_MAX_PINPOINTS) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: image_grid_pinpoints must be 1..%d (h, w) pairs", mmproj_path,
                    VV_HF_MAX_PINPOINTS);
        goto fail;
    }
    if ((rc = vv_gguf_get_arr_i64(m->mm_gguf, "clip.vision.image_grid_pinpoints", pp, npp, e))) goto fail;
    for (uint64_t i = 0; i < npp / 2; i++) {
        if (pp[2 * i] < 1 || pp[2 * i + 1] < 1 || pp[2 * i] > 16384 || pp[2 * i + 1] > 16384) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: bad pinpoint", mmproj_path);
            goto fail;
        }
        p->pinpoints[i][0] = (int)pp[2 * i];
        p->pinpoints[i][1] = (int)pp[2 * i + 1];
    }
    p->n_pinpoints = (int)(npp / 2);
    // tensors
    {
        const int64_t Dv = m->v_dim, P = m->v_patch, npos = 1 + (int64_t)m->v_grid * m->v_grid;
        const vv_tensor *pw = vv_gguf_find_tensor(m->mm_gguf, "v.patch_embd.weight");
        if (!pw || pw->type != VV_TYPE_F32 || vv_tensor_nelements(pw) != Dv * 3 * P * P) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: needs F32 v.patch_embd.weight [%lld, 3, %lld, %lld]", mmproj_path,
                        (long long)Dv, (long long)P, (long long)P);
            goto fail;
        }
        m->patch_w = pw;
        m->class_embd = gg_vec(&V, "v.class_embd", Dv);
        m->pos_embd = gg_vec(&V, "v.position_embd.weight", npos * Dv);
        m->pre_ln_w = gg_vec(&V, "v.pre_ln.weight", Dv);
        m->pre_ln_b = gg_vec(&V, "v.pre_ln.bias", Dv);
        m->vl = calloc((size_t)(n_layers > 0 ? n_layers : 1), sizeof(vv_hf_vlayer));
        if (!m->vl) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            goto fail;
        }
        for (int i = 0; i < n_layers && !V.rc; i++) {
            vv_hf_vlayer *Y = &m->vl[i];
            char n[96];
#define VN(s) (snprintf(n, sizeof(n), "v.blk.%d.%s", i, s), n)
            Y->ln1_w = gg_vec(&V, VN("ln1.weight"), Dv);
            Y->ln1_b = gg_vec(&V, VN("ln1.bias"), Dv);
            Y->ln2_w = gg_vec(&V, VN("ln2.weight"), Dv);
            Y->ln2_b = gg_vec(&V, VN("ln2.bias"), Dv);
            Y->q_w = gg_mat(&V, VN("attn_q.weight"), Dv, Dv);
            Y->q_b = gg_vec(&V, VN("attn_q.bias"), Dv);
            Y->k_w = gg_mat(&V, VN("attn_k.weight"), Dv, Dv);
            Y->k_b = gg_vec(&V, VN("attn_k.bias"), Dv);
            Y->v_w = gg_mat(&V, VN("attn_v.weight"), Dv, Dv);
            Y->v_b = gg_vec(&V, VN("attn_v.bias"), Dv);
            Y->o_w = gg_mat(&V, VN("attn_out.weight"), Dv, Dv);
            Y->o_b = gg_vec(&V, VN("attn_out.bias"), Dv);
            Y->fc1_w = gg_mat(&V, VN("ffn_down.weight"), m->v_ff, Dv); // llama.cpp's name for fc1
            Y->fc1_b = gg_vec(&V, VN("ffn_down.bias"), m->v_ff);
            Y->fc2_w = gg_mat(&V, VN("ffn_up.weight"), Dv, m->v_ff);
            Y->fc2_b = gg_vec(&V, VN("ffn_up.bias"), Dv);
#undef VN
        }
        m->mm1_w = gg_mat(&V, "mm.0.weight", 0, Dv);
        if (m->mm1_w) m->mm1_b = gg_vec(&V, "mm.0.bias", m->mm1_w->ne[1]);
        if (m->mm1_w) m->mm2_w = gg_mat(&V, "mm.2.weight", D, m->mm1_w->ne[1]);
        m->mm2_b = gg_vec(&V, "mm.2.bias", D);
        m->image_newline = gg_vec(&V, "model.image_newline", D);
        if (V.rc) goto fail_V;
    }
    *out = m;
    return VISVM_OK;
fail_T:
    rc = T.rc;
    goto fail;
fail_V:
    rc = V.rc;
fail:
    vv_hf_free(m);
    return rc ? rc : VISVM_ERR_INTERNAL;
}
