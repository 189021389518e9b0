// hf_convert.c - streaming Hugging Face -> GGUF conversion (see hf_convert.h).
//
// The GGUF header (metadata + tensor infos with their final offsets) is
// serialised first from sizes alone, then every tensor is produced row by row
// (dequantize the source row to f32, quantize to the target type) and written
// through vv_atomic_* (temp file + rename). Layout as ggml: tensors aligned to
// 32 bytes, offsets the running sum of padded sizes.
#include "hf_convert.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../format/gguf.h"

#define ALIGN 32

typedef struct {
    char name[64];
    int type;                // output type
    int n_dims;
    int64_t ne[4];
    const vv_tensor *src;    // source view (matrix or vector), or
    const float *src_f32;    // source f32 array of ne[0] * ne[1] * ... values
    size_t nbytes;
} cv_tensor;

typedef struct {
    vv_buf kv;               // serialised key/values
    uint64_t n_kv;
    cv_tensor *t;
    int n_t;
    int err;                 // first error (NOMEM/INVALID)
    vv_error *e;
} cv_file;

static void put(cv_file *f, const void *p, size_t n) {
    if (!f->err && vv_buf_append(&f->kv, p, n)) f->err = vv_err(f->e, VISVM_ERR_NOMEM, "out of memory");
}
static void put_u32(cv_file *f, uint32_t v) { put(f, &v, 4); }
static void put_u64(cv_file *f, uint64_t v) { put(f, &v, 8); }
static void put_str(cv_file *f, const char *s) {
    put_u64(f, strlen(s));
    put(f, s, strlen(s));
}
static void key(cv_file *f, const char *k, int type) {
    put_str(f, k);
    put_u32(f, (uint32_t)type);
    f->n_kv++;
}
static void kv_u32(cv_file *f, const char *k, uint32_t v) { key(f, k, VV_GGUF_UINT32), put_u32(f, v); }
static void kv_i32(cv_file *f, const char *k, int32_t v) { key(f, k, VV_GGUF_INT32), put(f, &v, 4); }
static void kv_f32(cv_file *f, const char *k, float v) { key(f, k, VV_GGUF_FLOAT32), put(f, &v, 4); }
static void kv_bool(cv_file *f, const char *k, bool v) {
    uint8_t b = v;
    key(f, k, VV_GGUF_BOOL);
    put(f, &b, 1);
}
static void kv_str(cv_file *f, const char *k, const char *v) { key(f, k, VV_GGUF_STRING), put_str(f, v); }
static void kv_arr(cv_file *f, const char *k, int et, const void *data, uint64_t n, size_t es) {
    key(f, k, VV_GGUF_ARRAY);
    put_u32(f, (uint32_t)et);
    put_u64(f, n);
    put(f, data, n * es);
}

static void add(cv_file *f, const char *name, int type, const vv_tensor *src, const float *src_f32, int n_dims,
                const int64_t *ne) {
    if (f->err) return;
    cv_tensor *t = realloc(f->t, (size_t)(f->n_t + 1) * sizeof(cv_tensor));
    if (!t) {
        f->err = vv_err(f->e, VISVM_ERR_NOMEM, "out of memory");
        return;
    }
    f->t = t;
    cv_tensor *c = &f->t[f->n_t];
    memset(c, 0, sizeof(*c));
    if (strlen(name) >= sizeof(c->name)) {
        f->err = vv_err(f->e, VISVM_ERR_INVALID, "tensor name '%s' is too long for GGUF", name);
        return;
    }
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->n_dims = n_dims;
    for (int d = 0; d < 4; d++) c->ne[d] = d < n_dims ? ne[d] : 1;
    const vv_type_info *ti = vv_type_get(type);
    if (!ti || c->ne[0] % ti->blck) type = VV_TYPE_F16; // rows that do not fill whole blocks
    c->type = type;
    c->src = src;
    c->src_f32 = src_f32;
    c->nbytes = vv_row_size(type, c->ne[0]) * (size_t)(c->ne[1] * c->ne[2] * c->ne[3]);
    f->n_t++;
}

// A matrix view: weight type for 2-D, f32 otherwise.
static void add_view(cv_file *f, const char *name, const vv_tensor *t, int wtype) {
    if (!t) return;
    add(f, name, t->n_dims == 2 ? wtype : VV_TYPE_F32, t, NULL, t->n_dims, t->ne);
}
static void add_vec(cv_file *f, const char *name, const float *v, int64_t n0, int64_t n1) {
    if (!v) return;
    int64_t ne[2] = {n0, n1};
    add(f, name, VV_TYPE_F32, NULL, v, n1 > 1 ? 2 : 1, ne);
}

static size_t pad_to(size_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

static int write_file(cv_file *f, const char *path) {
    if (f->err) return f->err;
    vv_error *e = f->e;
    vv_buf h = {0};
    uint32_t ver = 3;
    uint64_t nt = (uint64_t)f->n_t;
    int rc = vv_buf_append(&h, "GGUF", 4) || vv_buf_append(&h, &ver, 4) || vv_buf_append(&h, &nt, 8) ||
             vv_buf_append(&h, &f->n_kv, 8) || vv_buf_append(&h, f->kv.v, f->kv.n);
    size_t off = 0;
    int64_t max_row = 0;
    for (int i = 0; i < f->n_t && !rc; i++) {
        cv_tensor *t = &f->t[i];
        uint64_t l = strlen(t->name);
        uint32_t nd = (uint32_t)t->n_dims, ty = (uint32_t)t->type;
        rc = vv_buf_append(&h, &l, 8) || vv_buf_append(&h, t->name, l) || vv_buf_append(&h, &nd, 4);
        for (int d = 0; d < t->n_dims && !rc; d++) {
            uint64_t v = (uint64_t)t->ne[d];
            rc = vv_buf_append(&h, &v, 8);
        }
        uint64_t o = off;
        rc = rc || vv_buf_append(&h, &ty, 4) || vv_buf_append(&h, &o, 8);
        off = pad_to(off + t->nbytes);
        if (t->ne[0] > max_row) max_row = t->ne[0];
    }
    static const uint8_t zeros[ALIGN];
    if (!rc && pad_to(h.n) != h.n) rc = vv_buf_append(&h, zeros, pad_to(h.n) - h.n);
    if (rc) {
        vv_buf_free(&h);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory building the GGUF header");
    }
    float *row = malloc((size_t)max_row * sizeof(float));
    void *q = malloc(vv_row_size(VV_TYPE_F32, max_row) + 64);
    vv_atomic_file af;
    if (!row || !q) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    } else if (!(rc = vv_atomic_open(&af, path, e))) {
        rc = vv_atomic_write(&af, h.v, h.n, e);
        for (int i = 0; i < f->n_t && !rc; i++) {
            const cv_tensor *t = &f->t[i];
            const int64_t nr = t->ne[1] * t->ne[2] * t->ne[3], n0 = t->ne[0];
            const size_t out_rs = vv_row_size(t->type, n0);
            for (int64_t r = 0; r < nr && !rc; r++) {
                if (t->src) {
                    const size_t in_rs = vv_row_size(t->src->type, n0);
                    rc = vv_dequantize_row(t->src->type, (const uint8_t *)t->src->data + (size_t)r * in_rs, row, n0);
                } else {
                    memcpy(row, t->src_f32 + (size_t)r * n0, (size_t)n0 * sizeof(float));
                }
                if (!rc) rc = vv_quantize_row(t->type, row, q, n0);
                if (rc) rc = vv_err(e, rc, "cannot convert tensor '%s' to %s", t->name, vv_type_name(t->type));
                else rc = vv_atomic_write(&af, q, out_rs, e);
            }
            if (!rc && pad_to(t->nbytes) != t->nbytes) rc = vv_atomic_write(&af, zeros, pad_to(t->nbytes) - t->nbytes, e);
        }
        if (rc) vv_atomic_abort(&af);
        else rc = vv_atomic_commit(&af, e);
    }
    free(row);
    free(q);
    vv_buf_free(&h);
    return rc;
}

static void cv_free(cv_file *f) {
    vv_buf_free(&f->kv);
    free(f->t);
}

static int text_file(const vv_hf_llava *m, const char *path, int wtype, vv_error *e) {
    cv_file f = {.e = e};
    const vv_llama *lm = m->lm;
    const vv_llama_hparams *hp = &lm->hp;
    const vv_vocab *v = lm->vocab;
    kv_str(&f, "general.architecture", "llama");
    kv_str(&f, "general.name", m->is_value ? "VisVM value model (converted from Hugging Face)"
                                           : "LLaVA-NeXT text model (converted from Hugging Face)");
    kv_u32(&f, "general.alignment", ALIGN);
    kv_u32(&f, "llama.embedding_length", (uint32_t)hp->n_embd);
    kv_u32(&f, "llama.block_count", (uint32_t)hp->n_layer);
    kv_u32(&f, "llama.feed_forward_length", (uint32_t)hp->n_ff);
    kv_u32(&f, "llama.attention.head_count", (uint32_t)hp->n_head);
    kv_u32(&f, "llama.attention.head_count_kv", (uint32_t)hp->n_head_kv);
    kv_u32(&f, "llama.attention.key_length", (uint32_t)hp->head_dim);
    kv_u32(&f, "llama.rope.dimension_count", (uint32_t)hp->n_rot);
    kv_u32(&f, "llama.context_length", (uint32_t)hp->n_ctx_train);
    kv_f32(&f, "llama.attention.layer_norm_rms_epsilon", hp->eps);
    kv_f32(&f, "llama.rope.freq_base", hp->rope_base);
    kv_bool(&f, "llama.rope.neox", true);
    if (m->sliding_window > 0) kv_u32(&f, "llama.attention.sliding_window", (uint32_t)m->sliding_window);
    kv_i32(&f, "visvm.hf.image_token_id", m->image_token);
    kv_i32(&f, "visvm.hf.pad_token_id", m->pad_token);
    // vocabulary, padded to the embedding rows (HF rounds vocab_size up, e.g.
    // 32064 or golden-hf's 576 for 514 tokens) with UNUSED "[PAD<id>]" tokens as
    // llama.cpp's converter does: argmax can pick those rows, and every id the
    // model emits then has a (empty) piece.
    const int nt = vv_vocab_n(v), nv = VV_MAX(nt, hp->n_vocab);
    kv_str(&f, "tokenizer.ggml.model", "llama");
    {
        key(&f, "tokenizer.ggml.tokens", VV_GGUF_ARRAY);
        put_u32(&f, VV_GGUF_STRING);
        put_u64(&f, (uint64_t)nv);
        for (int i = 0; i < nv; i++) {
            char pad[32];
            snprintf(pad, sizeof(pad), "[PAD%d]", i);
            put_str(&f, i < nt ? vv_vocab_text(v, i) : pad);
        }
        float *sc = malloc((size_t)nv * sizeof(float));
        int32_t *ty = malloc((size_t)nv * sizeof(int32_t));
        if (!sc || !ty) f.err = f.err ? f.err : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        else {
            for (int i = 0; i < nv; i++) {
                sc[i] = i < nt ? vv_vocab_score(v, i) : -1000.0f;
                ty[i] = i < nt ? vv_vocab_type(v, i) : VV_TOKEN_UNUSED;
            }
            kv_arr(&f, "tokenizer.ggml.scores", VV_GGUF_FLOAT32, sc, (uint64_t)nv, 4);
            kv_arr(&f, "tokenizer.ggml.token_type", VV_GGUF_INT32, ty, (uint64_t)nv, 4);
        }
        free(sc);
        free(ty);
    }
    if (vv_vocab_bos(v) >= 0) kv_u32(&f, "tokenizer.ggml.bos_token_id", (uint32_t)vv_vocab_bos(v));
    if (vv_vocab_eos(v) >= 0) kv_u32(&f, "tokenizer.ggml.eos_token_id", (uint32_t)vv_vocab_eos(v));
    if (vv_vocab_unk(v) >= 0) kv_u32(&f, "tokenizer.ggml.unknown_token_id", (uint32_t)vv_vocab_unk(v));
    if (m->pad_token >= 0 && m->pad_token < nv) kv_u32(&f, "tokenizer.ggml.padding_token_id", (uint32_t)m->pad_token);
    kv_bool(&f, "tokenizer.ggml.add_bos_token", vv_vocab_add_bos(v));
    kv_bool(&f, "tokenizer.ggml.add_eos_token", vv_vocab_add_eos(v));
    kv_bool(&f, "tokenizer.ggml.add_space_prefix", vv_vocab_add_space_prefix(v));
    if (m->chat_template) kv_str(&f, "tokenizer.chat_template", m->chat_template);
    // tensors
    add_view(&f, "token_embd.weight", lm->tok_embd, wtype);
    add_vec(&f, "output_norm.weight", lm->norm_f32[0], hp->n_embd, 1);
    if (lm->output != lm->tok_embd) add_view(&f, "output.weight", lm->output, wtype);
    for (int il = 0; il < hp->n_layer; il++) {
        const vv_llama_layer *L = &lm->layers[il];
        char n[64];
#define B(s) (snprintf(n, sizeof(n), "blk.%d.%s", il, s), n)
        add_vec(&f, B("attn_norm.weight"), lm->norm_f32[2 + 6 * il], hp->n_embd, 1);
        add_view(&f, B("attn_q.weight"), L->wq, wtype);
        add_view(&f, B("attn_k.weight"), L->wk, wtype);
        add_view(&f, B("attn_v.weight"), L->wv, wtype);
        add_view(&f, B("attn_output.weight"), L->wo, wtype);
        add_vec(&f, B("ffn_norm.weight"), lm->norm_f32[2 + 6 * il + 1], hp->n_embd, 1);
        add_view(&f, B("ffn_gate.weight"), L->w_gate, wtype);
        add_view(&f, B("ffn_up.weight"), L->w_up, wtype);
        add_view(&f, B("ffn_down.weight"), L->w_down, wtype);
#undef B
    }
    if (m->is_value) {
        kv_str(&f, "visvm.value.head", "flattened");
        kv_u32(&f, "visvm.value.max_length", (uint32_t)m->max_length);
        kv_str(&f, "visvm.value.padding_side", "left");
        int64_t ne[1] = {m->v_head_w->ne[0]};
        add(&f, "value_head.weight", VV_TYPE_F32, m->v_head_w, NULL, 1, ne);
        add_vec(&f, "value_head.bias", &m->v_head_b, 1, 1);
    }
    int rc = write_file(&f, path);
    cv_free(&f);
    return rc;
}

static int mmproj_file(const vv_hf_llava *m, const char *path, int wtype, vv_error *e) {
    cv_file f = {.e = e};
    const int Dv = m->v_dim, G = m->v_grid;
    kv_str(&f, "general.architecture", "clip");
    kv_str(&f, "general.name", "LLaVA-NeXT vision tower + projector (converted from Hugging Face)");
    kv_u32(&f, "general.alignment", ALIGN);
    kv_bool(&f, "clip.has_vision_encoder", true);
    kv_bool(&f, "clip.has_llava_projector", true);
    kv_bool(&f, "clip.has_text_encoder", false);
    kv_str(&f, "clip.projector_type", "mlp");
    kv_u32(&f, "clip.vision.image_size", (uint32_t)m->v_size);
    kv_u32(&f, "clip.vision.patch_size", (uint32_t)m->v_patch);
    kv_u32(&f, "clip.vision.embedding_length", (uint32_t)Dv);
    kv_u32(&f, "clip.vision.feed_forward_length", (uint32_t)m->v_ff);
    kv_u32(&f, "clip.vision.attention.head_count", (uint32_t)m->v_heads);
    kv_u32(&f, "clip.vision.block_count", (uint32_t)m->v_layers_run); // layers after the feature layer dropped
    kv_f32(&f, "clip.vision.attention.layer_norm_epsilon", m->v_eps);
    kv_bool(&f, "clip.use_gelu", !m->v_quick_gelu);
    {
        int32_t fl = m->v_layers_run; // HF indexing: k = after k layers
        kv_arr(&f, "clip.vision.feature_layer", VV_GGUF_INT32, &fl, 1, 4);
    }
    kv_arr(&f, "clip.vision.image_mean", VV_GGUF_FLOAT32, m->pre.mean, 3, 4);
    kv_arr(&f, "clip.vision.image_std", VV_GGUF_FLOAT32, m->pre.std, 3, 4);
    kv_str(&f, "clip.vision.mm_patch_merge_type", "spatial_unpad");
    {
        int32_t pp[2 * VV_HF_MAX_PINPOINTS];
        for (int i = 0; i < m->pre.n_pinpoints; i++) { // HF order, as llama.cpp's converter writes it
            pp[2 * i] = m->pre.pinpoints[i][0];
            pp[2 * i + 1] = m->pre.pinpoints[i][1];
        }
        kv_arr(&f, "clip.vision.image_grid_pinpoints", VV_GGUF_INT32, pp, (uint64_t)(2 * m->pre.n_pinpoints), 4);
    }
    // the exact HF processor / model settings, for an HF-exact reload
    kv_str(&f, "visvm.hf.pinpoints_order", "height,width");
    kv_f32(&f, "visvm.hf.rescale_factor", (float)m->pre.rescale);
    kv_str(&f, "visvm.hf.resample", "pil_bicubic");
    kv_str(&f, "visvm.hf.vision_feature_select_strategy", m->drop_cls ? "default" : "full");
    kv_str(&f, "visvm.hf.unpad", "model_float");
    // tensors
    add(&f, "v.patch_embd.weight", VV_TYPE_F32, m->patch_w, NULL, 4, m->patch_w->ne);
    add_vec(&f, "v.class_embd", m->class_embd, Dv, 1);
    add_vec(&f, "v.position_embd.weight", m->pos_embd, Dv, 1 + G * G);
    add_vec(&f, "v.pre_ln.weight", m->pre_ln_w, Dv, 1);
    add_vec(&f, "v.pre_ln.bias", m->pre_ln_b, Dv, 1);
    for (int il = 0; il < m->v_layers_run; il++) {
        const vv_hf_vlayer *V = &m->vl[il];
        char n[64];
#define B(s) (snprintf(n, sizeof(n), "v.blk.%d.%s", il, s), n)
        add_vec(&f, B("ln1.weight"), V->ln1_w, Dv, 1);
        add_vec(&f, B("ln1.bias"), V->ln1_b, Dv, 1);
        add_vec(&f, B("ln2.weight"), V->ln2_w, Dv, 1);
        add_vec(&f, B("ln2.bias"), V->ln2_b, Dv, 1);
        add_view(&f, B("attn_q.weight"), V->q_w, wtype);
        add_vec(&f, B("attn_q.bias"), V->q_b, Dv, 1);
        add_view(&f, B("attn_k.weight"), V->k_w, wtype);
        add_vec(&f, B("attn_k.bias"), V->k_b, Dv, 1);
        add_view(&f, B("attn_v.weight"), V->v_w, wtype);
        add_vec(&f, B("attn_v.bias"), V->v_b, Dv, 1);
        add_view(&f, B("attn_out.weight"), V->o_w, wtype);
        add_vec(&f, B("attn_out.bias"), V->o_b, Dv, 1);
        add_view(&f, B("ffn_down.weight"), V->fc1_w, wtype); // llama.cpp's name for fc1 (D -> n_ff)
        add_vec(&f, B("ffn_down.bias"), V->fc1_b, m->v_ff, 1);
        add_view(&f, B("ffn_up.weight"), V->fc2_w, wtype);
        add_vec(&f, B("ffn_up.bias"), V->fc2_b, Dv, 1);
#undef B
    }
    add_view(&f, "mm.0.weight", m->mm1_w, wtype);
    add_vec(&f, "mm.0.bias", m->mm1_b, m->mm1_w->ne[1], 1);
    add_view(&f, "mm.2.weight", m->mm2_w, wtype);
    add_vec(&f, "mm.2.bias", m->mm2_b, m->n_embd, 1);
    add_vec(&f, "model.image_newline", m->image_newline, m->n_embd, 1);
    int rc = write_file(&f, path);
    cv_free(&f);
    return rc;
}

int vv_hf_convert(const char *hf_dir, const char *out_dir, int type, vv_error *e) {
    if (type != VV_TYPE_F32 && type != VV_TYPE_F16 && type != VV_TYPE_Q8_0 && type != VV_TYPE_Q4_0 &&
        type != VV_TYPE_Q4_K)
        return vv_err(e, VISVM_ERR_INVALID, "convert: type %s is not one of f32, f16, q8_0, q4_0, q4_k",
                      vv_type_name(type));
    vv_hf_llava *m = NULL;
    int rc = vv_hf_load(hf_dir, &m, e);
    if (rc) return rc;
    if ((rc = vv_mkdir_p(out_dir, e))) {
        vv_hf_free(m);
        return rc;
    }
    vv_buf p = {0};
    rc = vv_buf_printf(&p, "%s/text.gguf", out_dir) ? vv_err(e, VISVM_ERR_NOMEM, "out of memory") : 0;
    if (!rc) rc = text_file(m, p.v, type, e);
    p.n = 0;
    if (!rc) rc = vv_buf_printf(&p, "%s/mmproj.gguf", out_dir) ? vv_err(e, VISVM_ERR_NOMEM, "out of memory") : 0;
    if (!rc) rc = mmproj_file(m, p.v, type, e);
    vv_buf_free(&p);
    vv_hf_free(m);
    return rc;
}
