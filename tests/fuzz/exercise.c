// exercise.c - what the GGUF targets do with a file that parses: every
// accessor, the vocabulary, and the llama and CLIP loaders; a model that loads
// runs a short decode / image embedding (a header that passes a loader must
// not crash the forward).
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "fuzz.h"
#include "model/clip.h"
#include "model/llama.h"
#include "text/vocab.h"

// FZ_VERBOSE=1: say which stage refused an input (to check that seeds get deep).
void fz_say(const char *stage, const vv_error *e) {
    static int v = -1;
    if (v < 0) v = getenv("FZ_VERBOSE") != NULL;
    if (v) fprintf(stderr, "  %s: %s\n", stage, e->code ? e->msg : "ok");
}

static void walk(const vv_gguf *g) {
    volatile size_t sink = 0;
    for (int64_t i = 0; i < vv_gguf_n_kv(g); i++) {
        const char *k = vv_gguf_key(g, i);
        sink += strlen(k);
        sink += (size_t)vv_gguf_find_key(g, k);
        int t = vv_gguf_kv_type(g, i);
        if (t == VV_GGUF_STRING) {
            size_t len = 0;
            const char *s = vv_gguf_str_at(g, i, &len);
            if (s && len) sink += (unsigned char)s[len - 1];
        } else if (t == VV_GGUF_ARRAY) {
            uint64_t n = vv_gguf_arr_n(g, i);
            if (vv_gguf_arr_type(g, i) == VV_GGUF_STRING) {
                for (uint64_t j = 0; j < n && j < 64; j++) {
                    size_t len = 0;
                    const char *s = vv_gguf_arr_str_at(g, i, j, &len);
                    if (s && len) sink += (unsigned char)s[len - 1];
                }
            } else {
                sink += vv_gguf_arr_data(g, i) != NULL;
            }
        }
        vv_error e = {0};
        int64_t v;
        float f;
        bool b;
        const char *s;
        uint64_t n;
        vv_gguf_get_i64(g, k, &v, &e);
        vv_gguf_get_f32(g, k, &f, &e);
        vv_gguf_get_bool(g, k, &b, &e);
        vv_gguf_get_str(g, k, &s, &e);
        if (vv_gguf_get_arr_n(g, k, &n, &e) == 0 && n) {
            int64_t iv[4];
            float fv[4];
            vv_gguf_get_arr_i64(g, k, iv, n < 4 ? n : 4, &e);
            vv_gguf_get_arr_f32(g, k, fv, n < 4 ? n : 4, &e);
            size_t len;
            vv_gguf_get_arr_str(g, k, n - 1, &s, &len, &e);
        }
    }
    for (int64_t i = 0; i < vv_gguf_n_tensors(g); i++) {
        const vv_tensor *t = vv_gguf_tensor(g, i);
        sink += vv_gguf_find_tensor(g, t->name) == t;
        sink += vv_gguf_tensor_offset(g, i);
        if (vv_tensor_nbytes(t) > 0) sink += ((const uint8_t *)t->data)[vv_tensor_nbytes(t) - 1]; // in bounds
    }
    (void)sink;
}

static void try_vocab(const vv_gguf *g) {
    vv_vocab *v = NULL;
    vv_error e = {0};
    int rc = vv_vocab_load(g, &v, &e);
    fz_say("vocab", &e);
    if (rc) return;
    static const char *texts[] = {"the cat", " a\342\226\201dog.", "<s>x</s>", "\xff\xfe", ""};
    for (int i = 0; i < 5; i++) {
        vv_ivec ids = {0};
        if (!vv_tokenize(v, texts[i], strlen(texts[i]), true, true, &ids, &e)) {
            vv_buf out = {0};
            vv_detokenize(v, ids.v, ids.n, true, true, &out);
            free(out.v);
        }
        vv_ivec_free(&ids);
    }
    vv_vocab_free(v);
}

static void try_llama(const uint8_t *data, size_t size) {
    vv_gguf *g = NULL;
    vv_llama *m = NULL;
    vv_error e = {0};
    if (vv_gguf_open_mem(data, size, &g, &e)) return;
    int rc = vv_llama_load(g, &m, &e); // g is owned by the loader either way
    fz_say("llama", &e);
    if (rc) return;
    vv_llama_state *st = NULL;
    vv_llama_state_params sp = {16, 2, 8, NULL};
    if (!vv_llama_state_create(m, &sp, &st, &e)) {
        const int nv = vv_vocab_n(m->vocab) > 0 ? vv_vocab_n(m->vocab) : 1;
        int32_t toks[3] = {1 % nv, 2 % nv, 3 % nv};
        float *logits = malloc(sizeof(float) * 3 * (size_t)m->hp.n_vocab);
        if (logits) {
            vv_llama_decode_seq(st, 0, toks, NULL, 3, true, logits, &e);
            fz_say("decode", &e);
            if (!vv_llama_seq_fork(st, 0, 1, &e)) vv_llama_decode_seq(st, 1, toks, NULL, 1, false, logits, &e);
        }
        free(logits);
        vv_llama_state_free(st);
    }
    vv_llama_free(m);
}

static void try_clip(const uint8_t *data, size_t size, int mode) {
    vv_gguf *g = NULL;
    vv_clip *c = NULL;
    vv_error e = {0};
    if (vv_gguf_open_mem(data, size, &g, &e)) return;
    int rc = vv_clip_load(g, mode, &c, &e);
    fz_say("clip", &e);
    if (rc) return;
    // a small image through preprocessing and the tower (bounded sizes only)
    if (c->pre.image_size <= 64 && c->n_embd <= 256) {
        vv_image img = {0};
        if (!vv_image_alloc(&img, 20, 13, &e)) {
            for (int i = 0; i < 20 * 13 * 3; i++) img.rgb[i] = (uint8_t)(i * 37);
            vv_image_batch b = {0};
            if (!vv_preprocess(&img, &c->pre, &b, &e) && b.n <= 10) {
                float *emb = NULL;
                int n = 0;
                if (!vv_clip_embed(c, NULL, &b, &emb, &n, NULL, &e)) free(emb);
                fz_say("embed", &e);
                if (c->has_text && c->proj_dim > 0 && c->proj_dim <= 4096) {
                    float *f = malloc(sizeof(float) * (size_t)c->proj_dim);
                    vv_clip_work w = {0};
                    if (f) {
                        vv_clip_image_features(c, NULL, b.data, f, &w, &e);
                        vv_clip_text_features(c, NULL, "a red cat on a table", f, &w, &e);
                    }
                    vv_clip_work_free(&w);
                    free(f);
                }
            }
            vv_image_batch_free(&b);
            vv_image_free(&img);
        }
    }
    vv_clip_free(c);
}

void fz_exercise_gguf(const uint8_t *data, size_t size) {
    if (size > FZ_MAX_FILE) return;
    vv_gguf *g = NULL;
    vv_error e = {0};
    int rc = vv_gguf_open_mem(data, size, &g, &e);
    fz_say("gguf", &e);
    if (rc) return;
    walk(g);
    try_vocab(g);
    vv_gguf_close(g);
    try_llama(data, size);
    try_clip(data, size, VISVM_VISION_REFERENCE);
    try_clip(data, size, VISVM_VISION_LLAMACPP);
}
