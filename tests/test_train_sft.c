// test_train_sft.c - self-training (`visvm train vlm --sft`): the caption
// JSONL reader (eval lines with seeds, image-path lines, the strategy filter,
// errors with line numbers), and a toy fine-tune of a tiny VLM on 8 captions
// of 8 scenes that lowers the loss on those captions and exports GGUF files
// the engine loads; the GGUF-only initialisation matches the checkpoint one.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/clip.h"
#include "model/llama.h"
#include "tcheck.h"
#include "train/ckpt.h"
#include "train/clip_train.h"
#include "train/vlm_train.h"

static char g_dir[256];

static void write_text(const char *name, const char *text) {
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", g_dir, name);
    FILE *f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static const char *in_dir(const char *name) { return tc_path(g_dir, name); }

static vt_vlm_hp tiny_hp(void) {
    vt_vlm_hp hp = vt_vlm_sft_default_hp();
    hp.image_size = 16;
    hp.patch = 4;
    hp.v_width = 32;
    hp.v_layers = 2;
    hp.v_heads = 2;
    hp.v_ff = 64;
    hp.d = 32;
    hp.layers = 2;
    hp.heads = 2;
    hp.kv_heads = 1;
    hp.ff = 64;
    hp.max_len = 100;
    hp.threads = 2;
    return hp;
}

static void test_reader(void) {
    vv_error e = {0};
    vt_sft_set s;
    // errors name the file and line
    write_text("bad.jsonl", "{\"seed\": 1, \"caption\": \"A cat.\"}\n\n{\"seed\": 2, \"caption\": \"A dog.\"\n");
    CHECK(vt_sft_load(in_dir("bad.jsonl"), NULL, &s, &e) == VISVM_ERR_FORMAT);
    CHECKF(strstr(e.msg, "bad.jsonl:3: invalid JSON") != NULL, "%s", e.msg);
    CHECK(s.n == 0 && s.items == NULL);
    write_text("missing.jsonl", "{\"seed\": 1, \"caption\": \"A cat.\"}\n{\"image\": \"nope.png\", \"caption\": \"A dog.\"}\n");
    CHECK(vt_sft_load(in_dir("missing.jsonl"), NULL, &s, &e) == VISVM_ERR_IO);
    CHECKF(strstr(e.msg, "missing.jsonl:2: image ") && strstr(e.msg, "nope.png not found"), "%s", e.msg);
    write_text("seed.jsonl", "{\"seed\": -4, \"caption\": \"A cat.\"}\n");
    CHECK(vt_sft_load(in_dir("seed.jsonl"), NULL, &s, &e) == VISVM_ERR_FORMAT);
    CHECKF(strstr(e.msg, "seed.jsonl:1:") != NULL, "%s", e.msg);
    write_text("seed2.jsonl", "{\"seed\": 4.5, \"caption\": \"A cat.\"}\n");
    CHECK(vt_sft_load(in_dir("seed2.jsonl"), NULL, &s, &e) == VISVM_ERR_FORMAT);
    write_text("nocap.jsonl", "{\"seed\": 4, \"caption\": \"A cat.\"}\n{\"seed\": 4, \"text\": \"A cat.\"}\n");
    CHECK(vt_sft_load(in_dir("nocap.jsonl"), NULL, &s, &e) == VISVM_ERR_FORMAT);
    CHECKF(strstr(e.msg, "nocap.jsonl:2: needs a non-empty \"caption\"") != NULL, "%s", e.msg);
    write_text("noimg.jsonl", "{\"caption\": \"A cat.\"}\n");
    CHECK(vt_sft_load(in_dir("noimg.jsonl"), NULL, &s, &e) == VISVM_ERR_FORMAT);
    write_text("arr.jsonl", "[1, 2]\n");
    CHECK(vt_sft_load(in_dir("arr.jsonl"), NULL, &s, &e) == VISVM_ERR_FORMAT);
    CHECKF(strstr(e.msg, "arr.jsonl:1: not a JSON object") != NULL, "%s", e.msg);
    CHECK(vt_sft_load(in_dir("absent.jsonl"), NULL, &s, &e) != VISVM_OK);
    write_text("empty.jsonl", "\n  \n");
    CHECK(vt_sft_load(in_dir("empty.jsonl"), NULL, &s, &e) == VISVM_ERR_INVALID);

    // an image file (relative to the JSONL's folder) and the same scene by seed
    vv_world_params wp = vv_world_default_params();
    vv_world_scene sc;
    vv_image im = {0};
    CHECK(vv_world_scene_make(&wp, 11, &sc, &e) == VISVM_OK);
    CHECK(vv_world_render(&wp, &sc, &im, NULL, &e) == VISVM_OK);
    CHECK(vv_mkdir_p(in_dir("img"), &e) == VISVM_OK);
    CHECKF(vv_image_save_png(&im, in_dir("img/s11.png"), &e) == VISVM_OK, "%s", e.msg);
    vv_image_free(&im);
    vv_world_scene_free(&sc);
    write_text("mixed.jsonl", "{\"image\": \"img/s11.png\", \"caption\": \"A \\\"red\\\" cat.\"}\n"
                              "{\"strategy\": \"greedy\", \"seed\": 11, \"caption\": \"A dog.\"}\n"
                              "{\"strategy\": \"visvm\", \"seed\": 11, \"caption\": \"A bird.\"}\n"
                              "{\"strategy\": \"visvm\", \"seed\": 12, \"caption\": \"A fish.\"}\n");
    CHECKF(vt_sft_load(in_dir("mixed.jsonl"), NULL, &s, &e) == VISVM_OK, "%s", e.msg);
    CHECK(s.n == 4 && s.n_images == 3);
    if (s.n == 4) {
        CHECK(!strcmp(s.items[0].caption, "A \"red\" cat.") && s.items[0].image && s.items[0].line == 1);
        CHECK(strstr(s.items[0].image, "/img/s11.png") != NULL);
        CHECK(s.items[1].image == NULL && s.items[1].seed == 11 && s.items[1].img == s.items[2].img);
        CHECK(s.items[3].img != s.items[1].img && s.items[0].img != s.items[1].img);
        enum { S = 16 };
        float *img = malloc((size_t)s.n_images * S * S * 3 * sizeof(float));
        vv_pool *pool = vv_pool_create(2);
        CHECKF(vt_sft_images(pool, &s, S, img, &e) == VISVM_OK, "%s", e.msg);
        // the decoded file and the re-rendered scene are the same image, normalised as in training
        const size_t per = (size_t)S * S * 3;
        CHECK(memcmp(img + (size_t)s.items[0].img * per, img + (size_t)s.items[1].img * per, per * sizeof(float)) == 0);
        float *ref = malloc(per * sizeof(float));
        uint64_t seed12 = 12;
        CHECK(vt_render_batch(pool, &wp, &seed12, 1, S, ref) == VISVM_OK);
        CHECK(memcmp(img + (size_t)s.items[3].img * per, ref, per * sizeof(float)) == 0);
        free(ref);
        free(img);
        vv_pool_free(pool);
    }
    vt_sft_free(&s);
    CHECKF(vt_sft_load(in_dir("mixed.jsonl"), "visvm", &s, &e) == VISVM_OK, "%s", e.msg);
    CHECK(s.n == 2 && s.n_images == 2 && s.items[0].line == 3 && !strcmp(s.items[1].caption, "A fish."));
    vt_sft_free(&s);
    CHECK(vt_sft_load(in_dir("mixed.jsonl"), "bon-clip", &s, &e) == VISVM_ERR_INVALID);
    CHECKF(strstr(e.msg, "no caption with strategy \"bon-clip\"") != NULL, "%s", e.msg);
    // an undecodable image: named with its line
    write_text("img/junk.png", "not a png");
    write_text("junk.jsonl", "{\"seed\": 3, \"caption\": \"A cat.\"}\n{\"image\": \"img/junk.png\", \"caption\": \"A cat.\"}\n");
    CHECKF(vt_sft_load(in_dir("junk.jsonl"), NULL, &s, &e) == VISVM_OK, "%s", e.msg);
    float *img = malloc((size_t)2 * 16 * 16 * 3 * sizeof(float));
    vv_pool *pool = vv_pool_create(1);
    CHECK(vt_sft_images(pool, &s, 16, img, &e) == VISVM_ERR_FORMAT);
    CHECKF(strstr(e.msg, "junk.jsonl:2:") != NULL, "%s", e.msg);
    vv_pool_free(pool);
    free(img);
    vt_sft_free(&s);
}

int main(void) {
    snprintf(g_dir, sizeof(g_dir), "/tmp/visvm_test_sft_%d", (int)getpid());
    vv_error e = {0};
    CHECK(vv_mkdir_p(g_dir, &e) == VISVM_OK);
    test_reader();

    // a tiny "policy": briefly trained on world captions of other scenes, saved
    // as `visvm train vlm` leaves it (checkpoint + GGUF pair)
    vv_bpe_vocab bpe = {0};
    CHECK(vt_world_vocab(&bpe, &e) == VISVM_OK);
    vt_vlm_hp hp = tiny_hp();
    enum { B = 8 };
    vt_vlm m;
    CHECKF(vt_vlm_init(&m, &hp, &bpe, B, &e) == VISVM_OK, "%s", e.msg);
    vv_pool *pool = vv_pool_create(2);
    vt_ctx *c = NULL;
    CHECK(vt_ctx_create_with_pool(pool, &c, &e) == VISVM_OK);
    vv_world_params wp = vv_world_default_params();
    int np = 0;
    const char *const *pr = vt_detail_prompts(&np);
    float *img = malloc((size_t)B * 16 * 16 * 3 * sizeof(float));
    char *caps[B];
    const char *prompts[B];
    vt_adamw opt = vt_adamw_default();
    for (int it = 0; it < 15; it++) {
        uint64_t seeds[B];
        for (int b = 0; b < B; b++) seeds[b] = 1000 + (uint64_t)(it * B + b);
        CHECK(vt_render_batch(pool, &wp, seeds, B, 16, img) == VISVM_OK);
        for (int b = 0; b < B; b++) {
            vv_world_scene s;
            CHECK(vv_world_scene_make(&wp, seeds[b], &s, &e) == VISVM_OK);
            CHECK(vv_world_captions(&s, seeds[b], 1, &caps[b], &e) == VISVM_OK);
            prompts[b] = pr[b % np];
            vv_world_scene_free(&s);
        }
        vt_params_zero_grad(&m.ps);
        float loss = 0, norm = 0;
        int ntok = 0;
        CHECK(vt_vlm_loss(c, &m, img, prompts, (const char *const *)caps, B, true, &loss, &ntok, &e) == VISVM_OK);
        vt_clip_grad_norm(c, &m.ps, 1.0f, &norm);
        CHECK(vt_adamw_step(c, &m.ps, &opt, 3e-3f) == VISVM_OK);
        for (int b = 0; b < B; b++) free(caps[b]);
    }
    const char *init = in_dir("init");
    char init_dir[512];
    snprintf(init_dir, sizeof(init_dir), "%s", init);
    CHECK(vv_mkdir_p(init_dir, &e) == VISVM_OK);
    CHECKF(vt_ckpt_save(in_dir("init/vlm.ckpt.gguf"), &m.ps, NULL, &e) == VISVM_OK, "%s", e.msg);
    CHECKF(vt_vlm_export(&m, in_dir("init/vlm-text.gguf"), in_dir("init/vlm-mmproj.gguf"), &e) == VISVM_OK, "%s", e.msg);

    // the captions: 8 scenes (visvm lines) plus greedy lines the filter drops
    vv_buf jl = {0};
    for (int i = 0; i < 8; i++) {
        uint64_t seed = 3000000 + (uint64_t)i;
        vv_world_scene s;
        char *cap = NULL;
        CHECK(vv_world_scene_make(&wp, seed, &s, &e) == VISVM_OK);
        CHECK(vv_world_captions(&s, seed + 7, 1, &cap, &e) == VISVM_OK);
        vv_buf_printf(&jl, "{\"strategy\":\"visvm\",\"seed\":%llu,\"caption\":\"%s\",\"hallucinated\":[],\"steps\":[]}\n",
                      (unsigned long long)seed, cap);
        vv_buf_printf(&jl, "{\"strategy\":\"greedy\",\"seed\":%llu,\"caption\":\"Zebra zebra zebra.\"}\n",
                      (unsigned long long)seed);
        free(cap);
        vv_world_scene_free(&s);
    }
    write_text("caps.jsonl", jl.v);
    vv_buf_free(&jl);
    char caps_path[512];
    snprintf(caps_path, sizeof(caps_path), "%s", in_dir("caps.jsonl"));
    vt_sft_set set;
    CHECKF(vt_sft_load(caps_path, "visvm", &set, &e) == VISVM_OK, "%s", e.msg);
    CHECK(set.n == 8 && set.n_images == 8);

    // loss of the initial model on the captions (the checkpoint's weights)
    vt_vlm m0;
    vt_vlm_hp lhp = vt_vlm_sft_default_hp(); // architecture comes from the files
    lhp.max_len = 100;
    lhp.batch = B;
    CHECKF(vt_vlm_load(&m0, init_dir, &lhp, B, &e) == VISVM_OK, "%s", e.msg);
    CHECK(m0.hp.d == 32 && m0.hp.layers == 2 && m0.hp.image_size == 16 && m0.hp.kv_heads == 1 && m0.hp.v_ff == 64);
    for (int i = 0; i < m.ps.n && i < m0.ps.n; i++)
        CHECK(memcmp(m.ps.items[i].data, m0.ps.items[i].data, (size_t)m.ps.items[i].n * sizeof(float)) == 0);
    float *images = malloc((size_t)set.n_images * 16 * 16 * 3 * sizeof(float));
    CHECKF(vt_sft_images(pool, &set, 16, images, &e) == VISVM_OK, "%s", e.msg);
    double loss0 = 0, loss1 = 0, loss2 = 0;
    CHECKF(vt_vlm_sft_loss(c, &m0, &set, images, 0, &loss0, &e) == VISVM_OK, "%s", e.msg);

    // fine-tune
    vt_vlm_hp shp = tiny_hp();
    shp.steps = 60;
    shp.batch = B;
    shp.lr = 3e-3f;
    shp.lr_min = 3e-4f;
    shp.warmup = 4;
    shp.log_every = 10;
    const char *out = in_dir("out");
    char out_dir[512];
    snprintf(out_dir, sizeof(out_dir), "%s", out);
    double t0 = vv_time_s();
    CHECKF(vt_vlm_sft(&shp, caps_path, "visvm", init_dir, out_dir, &e) == VISVM_OK, "%s", e.msg);
    double dt = vv_time_s() - t0;

    vt_vlm m1;
    CHECKF(vt_vlm_load(&m1, out_dir, &lhp, B, &e) == VISVM_OK, "%s", e.msg);
    CHECKF(vt_vlm_sft_loss(c, &m1, &set, images, 0, &loss1, &e) == VISVM_OK, "%s", e.msg);
    printf("caption loss %.3f -> %.3f after 60 fine-tuning steps (%.1f s)\n", loss0, loss1, dt);
    CHECK(loss0 > 1.0 && loss1 < 0.6 * loss0);
    // the report agrees
    char *js = NULL;
    size_t jn = 0;
    CHECK(vv_read_file(in_dir("out/vlm-sft.json"), &js, &jn, &e) == VISVM_OK);
    if (js) {
        const char *b = strstr(js, "\"loss_before\":"), *a = strstr(js, "\"loss_after\":");
        CHECK(b && a);
        if (b && a) {
            CHECK_NEAR(strtod(b + 14, NULL), loss0, 1e-6);
            CHECK_NEAR(strtod(a + 13, NULL), loss1, 1e-6);
        }
        CHECK(strstr(js, "\"captions\":\t8") || strstr(js, "\"captions\": 8") || strstr(js, "\"captions\":8"));
    }
    free(js);
    CHECK(vv_file_exists(in_dir("out/vlm-sft.log")));

    // the GGUF pair alone (no checkpoint) gives the same model up to F16 rounding
    CHECK(vv_mkdir_p(in_dir("gguf"), &e) == VISVM_OK);
    char *buf = NULL;
    size_t n = 0;
    const char *names[2] = {"vlm-text.gguf", "vlm-mmproj.gguf"};
    for (int k = 0; k < 2; k++) {
        char src[600], dst[600];
        snprintf(src, sizeof(src), "%s/%s", out_dir, names[k]);
        snprintf(dst, sizeof(dst), "%s/gguf/%s", g_dir, names[k]);
        CHECK(vv_read_file(src, &buf, &n, &e) == VISVM_OK);
        CHECK(vv_write_file_atomic(dst, buf, n, &e) == VISVM_OK);
        free(buf);
        buf = NULL;
    }
    vt_vlm m2;
    CHECKF(vt_vlm_load(&m2, in_dir("gguf"), &lhp, B, &e) == VISVM_OK, "%s", e.msg);
    int same = 0;
    for (int i = 0; i < m1.ps.n && i < m2.ps.n; i++) {
        const vt_param *p1 = &m1.ps.items[i], *p2 = &m2.ps.items[i];
        bool ok = true;
        for (int64_t k = 0; k < p1->n && ok; k++)
            ok = p2->data[k] == (p1->n_dims >= 2 ? vv_round_fp16(p1->data[k]) : p1->data[k]);
        same += ok;
    }
    CHECK(same == m1.ps.n && m1.ps.n == m2.ps.n);
    CHECKF(vt_vlm_sft_loss(c, &m2, &set, images, 0, &loss2, &e) == VISVM_OK, "%s", e.msg);
    CHECK_NEAR(loss2, loss1, 0.05);
    // a folder without the files
    vt_vlm m3;
    CHECK(vt_vlm_load(&m3, in_dir("nothing"), &lhp, B, &e) != VISVM_OK);
    CHECKF(strstr(e.msg, "vlm-text.gguf") != NULL, "%s", e.msg);

    // the exported files load in the engine
    vv_llama *lm = NULL;
    vv_clip *cl = NULL;
    CHECKF(vv_llama_load_file(in_dir("out/vlm-text.gguf"), &lm, &e) == VISVM_OK, "%s", e.msg);
    CHECKF(vv_clip_load_file(in_dir("out/vlm-mmproj.gguf"), VISVM_VISION_REFERENCE, &cl, &e) == VISVM_OK, "%s", e.msg);
    if (lm) CHECK(vv_vocab_n(lm->vocab) == bpe.n);
    if (cl) CHECK(cl->image_size == 16 && cl->n_patches == 16);
    vv_llama_free(lm);
    vv_clip_free(cl);

    // --freeze-vision: the tower comes out bit-identical, the projector does not
    {
        vt_vlm_hp fhp = shp;
        fhp.steps = 10;
        fhp.freeze_vision = true;
        CHECKF(vt_vlm_sft(&fhp, caps_path, "visvm", init_dir, in_dir("outf"), &e) == VISVM_OK, "%s", e.msg);
        vt_vlm mf;
        CHECKF(vt_vlm_load(&mf, in_dir("outf"), &lhp, B, &e) == VISVM_OK, "%s", e.msg);
        int tower_same = 0, proj_changed = 0;
        for (int i = 0; i < m0.ps.n && i < mf.ps.n; i++) {
            const vt_param *a = &m0.ps.items[i], *b = &mf.ps.items[i];
            const bool same = a->n == b->n && !memcmp(a->data, b->data, (size_t)a->n * sizeof(float));
            if (i < m0.n_vit_params) tower_same += same;
            else if (!strncmp(a->name, "mm.", 3)) proj_changed += !same;
        }
        CHECKF(m0.n_vit_params > 0 && tower_same == m0.n_vit_params, "%d of %d tower tensors unchanged", tower_same,
               m0.n_vit_params);
        CHECK(proj_changed == 4);
        vt_vlm_free(&mf);
    }

    // errors: an unknown strategy, a missing model
    CHECK(vt_vlm_sft(&shp, caps_path, "sample", init_dir, in_dir("out2"), &e) == VISVM_ERR_INVALID);
    CHECK(vt_vlm_sft(&shp, caps_path, NULL, in_dir("nothing"), in_dir("out2"), &e) != VISVM_OK);

    vt_vlm_free(&m2);
    vt_vlm_free(&m1);
    vt_vlm_free(&m0);
    vt_sft_free(&set);
    free(images);
    free(img);
    vt_vlm_free(&m);
    vt_ctx_free(c);
    vv_pool_free(pool);
    vv_bpe_vocab_free(&bpe);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return tc_result("test_train_sft");
}
