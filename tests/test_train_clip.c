// test_train_clip.c - the tiny CLIP trainer at toy size: InfoNCE drops on a
// fixed batch, and the exported GGUF gives the engine the trainer's image and
// text features (the reward is their cosine).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/clip.h"
#include "tcheck.h"
#include "train/clip_model.h"

int main(void) {
    vv_error e = {0};
    vv_bpe_vocab bpe = {0};
    CHECK(vt_world_vocab(&bpe, &e) == VISVM_OK);
    vt_clip_hp hp = vt_clip_default_hp();
    hp.image_size = 32;
    hp.patch = 8;
    hp.v_width = hp.t_width = 32;
    hp.v_layers = hp.t_layers = 2;
    hp.v_heads = hp.t_heads = 2;
    hp.v_ff = hp.t_ff = 64;
    hp.t_ctx = 48;
    hp.proj = 32;
    enum { B = 6 };
    vt_clip_model m;
    CHECKF(vt_clip_model_init(&m, &hp, &bpe, B, B, &e) == VISVM_OK, "%s", e.msg);
    vv_pool *pool = vv_pool_create(2);
    vt_ctx *c = NULL;
    CHECK(vt_ctx_create_with_pool(pool, &c, &e) == VISVM_OK);
    vv_world_params wp = vv_world_default_params();
    uint64_t seeds[B] = {21, 22, 23, 24, 25, 26};
    float *img = malloc((size_t)B * 32 * 32 * 3 * sizeof(float));
    CHECK(vt_render_batch(pool, &wp, seeds, B, 32, img) == VISVM_OK);
    char *caps[B];
    for (int b = 0; b < B; b++) {
        vv_world_scene s;
        CHECK(vv_world_scene_make(&wp, seeds[b], &s, &e) == VISVM_OK);
        CHECK(vv_world_captions(&s, seeds[b], 1, &caps[b], &e) == VISVM_OK);
        vv_world_scene_free(&s);
    }
    int32_t ids[B * 48], lens[B];
    int T = 0;
    CHECK(vt_clip_tokenize(&m, (const char *const *)caps, B, ids, lens, &T, &e) == VISVM_OK);
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
    printf("InfoNCE on a fixed batch: %.3f -> %.3f\n", first, last);
    CHECK(last < 0.3f * first);
    // fp16-rounded weights, trainer features, export, engine features
    for (int i = 0; i < m.ps.n; i++)
        if (m.ps.items[i].n_dims >= 2)
            for (int64_t k = 0; k < m.ps.items[i].n; k++) m.ps.items[i].data[k] = vv_round_fp16(m.ps.items[i].data[k]);
    CHECK(vt_clip_image_forward(c, &m, img, B) == VISVM_OK);
    CHECK(vt_clip_text_forward(c, &m, ids, lens, B, T) == VISVM_OK);
    char path[256];
    snprintf(path, sizeof(path), "/tmp/visvm_test_clip_%d.gguf", (int)getpid());
    CHECKF(vt_clip_export(&m, path, &e) == VISVM_OK, "%s", e.msg);
    vv_clip *cl = NULL;
    CHECKF(vv_clip_load_file(path, VISVM_VISION_REFERENCE, &cl, &e) == VISVM_OK, "%s", e.msg);
    if (cl) {
        CHECK(cl->has_text && !cl->has_projector && cl->proj_dim == hp.proj && cl->n_layer_run == hp.v_layers);
        vv_clip_work w = {0};
        float fi[32], ft[32];
        double ei = 0, et = 0, es = 0;
        for (int b = 0; b < B; b++) {
            CHECK(vv_clip_image_features(cl, pool, img + (size_t)b * 32 * 32 * 3, fi, &w, &e) == VISVM_OK);
            CHECK(vv_clip_text_features(cl, pool, caps[b], ft, &w, &e) == VISVM_OK);
            for (int i = 0; i < hp.proj; i++) {
                ei = fmax(ei, fabs(fi[i] - m.img_emb[b * hp.proj + i]));
                et = fmax(et, fabs(ft[i] - m.txt_emb[b * hp.proj + i]));
            }
            es = fmax(es, fabs(vv_cosine(fi, ft, hp.proj) - vv_cosine(m.img_emb + b * hp.proj, m.txt_emb + b * hp.proj, hp.proj)));
        }
        printf("trainer vs engine: image features %.2e, text features %.2e, cosine %.2e\n", ei, et, es);
        CHECK(ei < 2e-2 && et < 2e-2 && es < 2e-3);
        vv_clip_work_free(&w);
        float tmp[32];
        CHECK(vv_clip_encode(cl, pool, img, tmp, &w, &e) == VISVM_ERR_INVALID); // no LLaVA projector
        vv_clip_work_free(&w);
    }
    vv_clip_free(cl);
    unlink(path);
    for (int b = 0; b < B; b++) free(caps[b]);
    free(img);
    vt_clip_model_free(&m);
    vt_ctx_free(c);
    vv_pool_free(pool);
    vv_bpe_vocab_free(&bpe);
    return tc_result("test_train_clip");
}
