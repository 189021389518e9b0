// test_train_clip.c - the tiny CLIP trainer at toy size: InfoNCE drops on a
// fixed batch, and the exported GGUF gives the engine the trainer's image and
// text features (the reward is their cosine).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/gguf.h"
#include "model/clip.h"
#include "tcheck.h"
#include "train/clip_model.h"

// Patch labels against the scene's ground truth: same pixels as vt_render_batch,
// every labelled patch lies in a bbox of an object of that class, patches
// outside every bbox are background, and every large fully visible object
// labels at least one patch.
static void test_patch_labels(vv_pool *pool, vv_error *e) {
    enum { N = 8, S = 64, G = 8 };
    vv_world_params wp = vv_world_default_params();
    uint64_t seeds[N];
    for (int i = 0; i < N; i++) seeds[i] = 100 + (uint64_t)i;
    float *a = malloc((size_t)N * S * S * 3 * sizeof(float)), *b = malloc((size_t)N * S * S * 3 * sizeof(float));
    int32_t lab[N * G * G];
    CHECK(vt_render_batch(pool, &wp, seeds, N, S, a) == VISVM_OK);
    CHECK(vt_render_batch_labels(pool, &wp, seeds, N, S, b, G, lab) == VISVM_OK);
    CHECK(memcmp(a, b, (size_t)N * S * S * 3 * sizeof(float)) == 0);
    CHECK(vt_render_batch_labels(pool, &wp, seeds, N, S, b, 0, lab) == VISVM_ERR_INVALID);
    const int NC = vv_world_n_classes();
    int n_obj = 0, n_bg = 0;
    for (int i = 0; i < N; i++) {
        vv_world_scene s;
        CHECK(vv_world_scene_make(&wp, seeds[i], &s, e) == VISVM_OK);
        for (int p = 0; p < G * G; p++) {
            const int x0 = (p % G) * (S / G), y0 = (p / G) * (S / G), x1 = x0 + S / G, y1 = y0 + S / G;
            const int32_t l = lab[i * G * G + p];
            bool in_box = false, ok = l == NC;
            for (int o = 0; o < s.n_objects; o++) {
                const int *bb = s.obj[o].bbox;
                const bool overlap = x0 < bb[2] && bb[0] < x1 && y0 < bb[3] && bb[1] < y1;
                in_box |= overlap;
                if (l == s.obj[o].cls && overlap) ok = true;
            }
            CHECK(ok);
            if (!in_box) CHECK(l == NC);
            n_bg += l == NC;
        }
        for (int o = 0; o < s.n_objects; o++) {
            if (s.obj[o].size != 1 || s.obj[o].visible < 0.99f) continue;
            bool found = false;
            for (int p = 0; p < G * G; p++) found |= lab[i * G * G + p] == s.obj[o].cls;
            CHECK(found);
            n_obj++;
        }
        vv_world_scene_free(&s);
    }
    printf("patch labels: %d large visible objects found, %d of %d patches background\n", n_obj, n_bg, N * G * G);
    CHECK(n_obj > 0 && n_bg > 0 && n_bg < N * G * G);
    free(a);
    free(b);
}

// The per-patch head's gradient reaches the tower through d_xo_extra: a few
// steps on a fixed batch lower the patch cross-entropy, and the head is not exported.
static void test_dense_head(vt_ctx *c, const vv_bpe_vocab *bpe, vv_error *e) {
    vt_clip_hp hp = vt_clip_default_hp();
    hp.image_size = 32;
    hp.patch = 8;
    hp.v_width = hp.t_width = 32;
    hp.v_layers = hp.t_layers = 1;
    hp.v_heads = hp.t_heads = 2;
    hp.v_ff = hp.t_ff = 64;
    hp.t_ctx = 48;
    hp.proj = 32;
    hp.aux_weight = 0;
    hp.dense_weight = 1;
    enum { B = 4, S = 32, G = 4, T = 1 + G * G };
    vt_clip_model m;
    CHECKF(vt_clip_model_init(&m, &hp, bpe, B, B, e) == VISVM_OK, "%s", e->msg);
    CHECK(m.dense_w >= 0 && m.aux_w < 0);
    vv_pool *pool = vv_pool_create(1);
    vv_world_params wp = vv_world_default_params();
    uint64_t seeds[B] = {5, 6, 7, 8};
    float *img = malloc((size_t)B * S * S * 3 * sizeof(float));
    int32_t grid[B * G * G], lab[B * T];
    CHECK(vt_render_batch_labels(pool, &wp, seeds, B, S, img, G, grid) == VISVM_OK);
    for (int b = 0; b < B; b++) {
        lab[b * T] = VT_IGNORE_INDEX;
        memcpy(lab + b * T + 1, grid + b * G * G, G * G * sizeof(int32_t));
    }
    const int K = vv_world_n_classes() + 1;
    float *z = malloc((size_t)B * T * K * sizeof(float)), *d = malloc((size_t)B * T * hp.v_width * sizeof(float));
    vt_adamw opt = vt_adamw_default();
    float first = 0, last = 0;
    for (int it = 0; it < 40; it++) {
        vt_params_zero_grad(&m.ps);
        CHECK(vt_clip_image_forward(c, &m, img, B) == VISVM_OK);
        memset(m.d_img_emb, 0, (size_t)B * hp.proj * sizeof(float));
        float l = 0;
        CHECK(vt_clip_dense_step(c, &m, lab, B, 1.0f, z, d, &l) == VISVM_OK);
        CHECK(m.d_xo_extra == d);
        CHECK(vt_clip_image_backward(c, &m, B) == VISVM_OK);
        double gpatch = 0; // the tower itself learns, not only the head
        const vt_param *pe = vt_params_find(&m.ps, "v.patch_embd.weight");
        for (int64_t i = 0; pe && i < pe->n; i++) gpatch += fabs(pe->grad[i]);
        if (it == 0) CHECK(gpatch > 0);
        CHECK(vt_adamw_step(c, &m.ps, &opt, 3e-3f) == VISVM_OK);
        if (it == 0) first = l;
        last = l;
    }
    printf("patch cross-entropy on a fixed batch: %.3f -> %.3f\n", first, last);
    CHECK(last < 0.5f * first);
    char path[256];
    snprintf(path, sizeof(path), "/tmp/visvm_test_clipd_%d.gguf", (int)getpid());
    CHECKF(vt_clip_export(&m, path, e) == VISVM_OK, "%s", e->msg);
    vv_gguf *g = NULL;
    CHECK(vv_gguf_open(path, &g, e) == VISVM_OK);
    if (g) CHECK(!vv_gguf_find_tensor(g, "aux_dense.weight") && vv_gguf_find_tensor(g, "v.patch_embd.weight"));
    vv_gguf_close(g);
    unlink(path);
    free(z);
    free(d);
    free(img);
    vv_pool_free(pool);
    vt_clip_model_free(&m);
}

// Loads the exported file with one key overridden; returns the load status and
// checks the message names the problem.
static int load_with_key(const char *path, const char *key, uint32_t val, const char *want, vv_error *e) {
    vv_gguf *src = NULL;
    if (vv_gguf_open(path, &src, e)) return -1;
    vv_gguf_writer *w = vv_gguf_writer_create();
    vv_gguf_copy_kv(w, src);
    for (int64_t i = 0; i < vv_gguf_n_tensors(src); i++) {
        const vv_tensor *t = vv_gguf_tensor(src, i);
        vv_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
    }
    vv_gguf_set_u32(w, key, val);
    void *mem = NULL;
    size_t size = 0;
    vv_gguf *g = NULL;
    vv_clip *cl = NULL;
    int rc = vv_gguf_writer_write_mem(w, &mem, &size, e);
    if (!rc) rc = vv_gguf_open_mem(mem, size, &g, e);
    if (!rc) rc = vv_clip_load(g, VISVM_VISION_REFERENCE, &cl, e); // takes g
    if (rc) CHECKF(strstr(e->msg, want) != NULL, "error \"%s\" should name %s", e->msg, want);
    vv_clip_free(cl);
    vv_gguf_writer_free(w);
    vv_gguf_close(src);
    free(mem);
    return rc;
}

// Trains a tiny CLIP on a fixed batch, exports it and compares the engine's
// features with the trainer's (plain patchify tower, or a conv stem; bn_max: the
// stem with BatchNorm, folded into the convolutions at export, and max pooling).
static void test_train_export(vv_pool *pool, vt_ctx *c, const vv_bpe_vocab *bpe, vv_error *e, int stem, bool bn_max) {
    vt_clip_hp hp = vt_clip_default_hp();
    hp.image_size = 32;
    hp.patch = 8;
    hp.v_width = hp.t_width = 32;
    hp.v_layers = hp.t_layers = 2;
    hp.v_heads = hp.t_heads = 2;
    hp.v_ff = hp.t_ff = 64;
    hp.t_ctx = 48;
    hp.proj = 32;
    hp.stem = stem; // 3 stages: 32 -> 16 -> 8 -> 4 = the patch-8 grid
    hp.stem_ch = 4;
    hp.stem_bn = hp.max_pool = bn_max;
    enum { B = 6 };
    vt_clip_model m;
    CHECKF(vt_clip_model_init(&m, &hp, bpe, B, B, e) == VISVM_OK, "%s", e->msg);
    vv_world_params wp = vv_world_default_params();
    uint64_t seeds[B] = {21, 22, 23, 24, 25, 26};
    float *img = malloc((size_t)B * 32 * 32 * 3 * sizeof(float));
    CHECK(vt_render_batch(pool, &wp, seeds, B, 32, img) == VISVM_OK);
    char *caps[B];
    for (int b = 0; b < B; b++) {
        vv_world_scene s;
        CHECK(vv_world_scene_make(&wp, seeds[b], &s, e) == VISVM_OK);
        CHECK(vv_world_captions(&s, seeds[b], 1, &caps[b], e) == VISVM_OK);
        vv_world_scene_free(&s);
    }
    int32_t ids[B * 48], lens[B];
    int T = 0;
    CHECK(vt_clip_tokenize(&m, (const char *const *)caps, B, ids, lens, &T, e) == VISVM_OK);
    vt_adamw opt = vt_adamw_default();
    float first = 0, last = 0;
    for (int it = 0; it < 60; it++) {
        vt_params_zero_grad(&m.ps);
        vt_infonce_result res;
        CHECK(vt_clip_image_forward(c, &m, img, B) == VISVM_OK);
        CHECK(vt_clip_text_forward(c, &m, ids, lens, B, T) == VISVM_OK);
        CHECK(vt_infonce(c, m.img_emb, m.txt_emb, B, B, hp.proj, m.ps.items[m.logit_scale].data[0], &res, m.d_img_emb,
                         m.d_txt_emb, m.ps.items[m.logit_scale].grad, 1.0f) == VISVM_OK);
        CHECK(vt_clip_text_backward(c, &m, B, T) == VISVM_OK);
        CHECK(vt_clip_image_backward(c, &m, B) == VISVM_OK);
        CHECK(vt_adamw_step(c, &m.ps, &opt, 2e-3f) == VISVM_OK);
        if (it == 0) first = res.loss;
        last = res.loss;
    }
    printf("InfoNCE on a fixed batch (stem %d%s): %.3f -> %.3f\n", stem, bn_max ? ", BN, max pool" : "", first, last);
    CHECK(last < 0.3f * first);
    // fp16-rounded weights, trainer features, export, engine features
    for (int i = 0; i < m.ps.n; i++)
        if (m.ps.items[i].n_dims >= 2)
            for (int64_t k = 0; k < m.ps.items[i].n; k++) m.ps.items[i].data[k] = vv_round_fp16(m.ps.items[i].data[k]);
    m.vis.eval = true; // BatchNorm from its running statistics, as exported
    CHECK(vt_clip_image_forward(c, &m, img, B) == VISVM_OK);
    CHECK(vt_clip_text_forward(c, &m, ids, lens, B, T) == VISVM_OK);
    char path[256];
    snprintf(path, sizeof(path), "/tmp/visvm_test_clip_%d.gguf", (int)getpid());
    CHECKF(vt_clip_export(&m, path, e) == VISVM_OK, "%s", e->msg);
    vv_clip *cl = NULL;
    CHECKF(vv_clip_load_file(path, VISVM_VISION_REFERENCE, &cl, e) == VISVM_OK, "%s", e->msg);
    if (cl) {
        CHECK(cl->has_text && !cl->has_projector && cl->proj_dim == hp.proj && cl->n_layer_run == hp.v_layers);
        CHECK(cl->n_stem == stem && cl->max_pool == bn_max);
        vv_clip_work w = {0};
        float fi[32], ft[32];
        double ei = 0, et = 0, es = 0;
        for (int b = 0; b < B; b++) {
            CHECK(vv_clip_image_features(cl, pool, img + (size_t)b * 32 * 32 * 3, fi, &w, e) == VISVM_OK);
            CHECK(vv_clip_text_features(cl, pool, caps[b], ft, &w, e) == VISVM_OK);
            for (int i = 0; i < hp.proj; i++) {
                ei = fmax(ei, fabs(fi[i] - m.img_emb[b * hp.proj + i]));
                et = fmax(et, fabs(ft[i] - m.txt_emb[b * hp.proj + i]));
            }
            es = fmax(es, fabs(vv_cosine(fi, ft, hp.proj) - vv_cosine(m.img_emb + b * hp.proj, m.txt_emb + b * hp.proj, hp.proj)));
        }
        printf("trainer vs engine (stem %d%s): image features %.2e, text features %.2e, cosine %.2e\n", stem,
               bn_max ? ", BN, max pool" : "", ei, et, es);
        CHECK(ei < 2e-2 && et < 2e-2 && es < 2e-3);
        vv_clip_work_free(&w);
        float tmp[32];
        CHECK(vv_clip_encode(cl, pool, img, tmp, &w, e) == VISVM_ERR_INVALID); // no LLaVA projector
        vv_clip_work_free(&w);
    }
    vv_clip_free(cl);
    if (stem) { // a stem that does not fit the file is refused with a message naming it
        CHECK(load_with_key(path, "clip.vision.stem_count", 2, "stem_count", e) == VISVM_ERR_FORMAT);
        CHECK(load_with_key(path, "clip.vision.stem_count", 9, "stem_count", e) == VISVM_ERR_FORMAT);
    } else { // a stem key on a patchify file: the stem tensors are missing
        CHECK(load_with_key(path, "clip.vision.stem_count", 3, "v.stem.0.weight", e) == VISVM_ERR_FORMAT);
    }
    unlink(path);
    for (int b = 0; b < B; b++) free(caps[b]);
    free(img);
    vt_clip_model_free(&m);
}

int main(void) {
    vv_error e = {0};
    vv_bpe_vocab bpe = {0};
    CHECK(vt_world_vocab(&bpe, &e) == VISVM_OK);
    vv_pool *pool = vv_pool_create(2);
    vt_ctx *c = NULL;
    CHECK(vt_ctx_create_with_pool(pool, &c, &e) == VISVM_OK);
    test_train_export(pool, c, &bpe, &e, 0, false);
    test_train_export(pool, c, &bpe, &e, 3, false);
    test_train_export(pool, c, &bpe, &e, 3, true);
    test_patch_labels(pool, &e);
    test_dense_head(c, &bpe, &e);
    vt_ctx_free(c);
    vv_pool_free(pool);
    vv_bpe_vocab_free(&bpe);
    return tc_result("test_train_clip");
}
