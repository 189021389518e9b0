// test_train_value.c - `visvm train value` end to end on a toy TD set: four
// one-object world scenes, each with a sentence about its object (reward 0.6)
// and one about the next scene's object (absent here, reward 0.2), starting
// from the shipped CLIP and policy. Checks: option errors; a short run with image-grouped batches and
// the within-image (group-centred) term lowers the held-out TD error and the
// group-centred error on those pairs, and ranks the present sentence above the
// absent one in each image; the exported GGUF pair loads in the engine and
// gives the trainer's values.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/gguf.h"
#include "model/value.h"
#include "tensor/quants.h"
#include "text/vocab.h"
#include "tcheck.h"
#include "train/value_train.h"
#include "world/world.h"

static char g_dir[256];

static const char *in_dir(const char *name) { return tc_path(g_dir, name); }

static double metric(const char *json, const char *key) {
    char k[128];
    snprintf(k, sizeof(k), "\"%s\": ", key);
    const char *p = json ? strstr(json, k) : NULL;
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

enum { N_IMG = 4 };

int main(void) {
    const char *clip = VISVM_SOURCE_DIR "/models/world/clip.gguf", *policy = VISVM_SOURCE_DIR "/models/world/vlm-text.gguf";
    if (!vv_file_exists(clip) || !vv_file_exists(policy)) {
        printf("shipped world models absent: skipped\n");
        return 77;
    }
    snprintf(g_dir, sizeof(g_dir), "/tmp/visvm_test_value_%d", (int)getpid());
    vv_error e = {0};
    CHECK(vv_mkdir_p(g_dir, &e) == VISVM_OK);
    CHECK(vv_mkdir_p(in_dir("img"), &e) == VISVM_OK);

    // rewards JSONL in the paper's layout: per image a present-object and an absent-object response
    vv_world_params wp = vv_world_default_params();
    vv_buf jl = {0};
    // four one-object scenes of different classes; image i's absent sentence is image
    // i+1's present one, so every sentence is right in one image and wrong in another
    // (text alone cannot rank them)
    char present[N_IMG][256], absent[N_IMG][256];
    vv_world_scene sc[N_IMG];
    int n_sc = 0;
    for (uint64_t seed = 1000000; n_sc < N_IMG && seed < 1000000 + 10000; seed++) {
        CHECK(vv_world_scene_make(&wp, seed, &sc[n_sc], &e) == VISVM_OK);
        bool ok = sc[n_sc].n_objects == 1;
        for (int j = 0; j < n_sc && ok; j++) ok = sc[j].obj[0].cls != sc[n_sc].obj[0].cls;
        if (ok) n_sc++;
        else vv_world_scene_free(&sc[n_sc]);
    }
    CHECK(n_sc == N_IMG);
    for (int i = 0; i < n_sc; i++) {
        vv_image im = {0};
        CHECK(vv_world_render(&wp, &sc[i], &im, NULL, &e) == VISVM_OK);
        char png[64];
        snprintf(png, sizeof(png), "img/%d.png", i);
        CHECKF(vv_image_save_png(&im, in_dir(png), &e) == VISVM_OK, "%s", e.msg);
        snprintf(present[i], sizeof(present[i]), "There is a %s.", vv_world_class_name(sc[i].obj[0].cls));
        snprintf(absent[i], sizeof(absent[i]), "There is a %s.", vv_world_class_name(sc[(i + 1) % n_sc].obj[0].cls));
        vv_buf_printf(&jl,
                      "{\"text\":\"Describe the image.\",\"image\":\"%s\",\"image_path\":\"%s\","
                      "\"temp_02\":\"%s\",\"temp_04\":\"%s\",\"rewards\":{"
                      "\"temp_02\":{\"%s\":0.6,\"\":0.3},\"temp_04\":{\"%s\":0.2,\"\":0.3}}}\n",
                      png, in_dir(png), present[i], absent[i], present[i], absent[i]);
        vv_image_free(&im);
    }
    for (int i = 0; i < n_sc; i++) vv_world_scene_free(&sc[i]);
    const char *rw = in_dir("rw.jsonl");
    char rw_path[512];
    snprintf(rw_path, sizeof(rw_path), "%s", rw);
    CHECK(vv_write_file_atomic(rw_path, jl.v, jl.n, &e) == VISVM_OK);
    vv_buf_free(&jl);

    vt_value_hp hp = vt_value_default_hp();
    hp.clip_path = clip;
    hp.policy_text = policy;
    hp.train_rewards = rw_path;
    hp.val_rewards = rw_path;
    hp.batch = 8;
    hp.warmup = 2;
    hp.lr = 1e-3f;
    hp.lr_min = 1e-3f;
    hp.eval_every = 0;
    hp.probe_scenes = 0;
    hp.threads = 2;
    hp.reward_offset = 0.3f;
    char out[512];
    snprintf(out, sizeof(out), "%s", in_dir("out"));
    CHECK(vv_mkdir_p(out, &e) == VISVM_OK);

    // option errors: the group must divide the batch; the within-image term needs groups
    hp.group = 3;
    CHECK(vt_value_train(&hp, out, &e) == VISVM_ERR_INVALID);
    CHECKF(strstr(e.msg, "--group 3") != NULL, "%s", e.msg);
    hp.group = 1;
    hp.rank_weight = 1;
    CHECK(vt_value_train(&hp, out, &e) == VISVM_ERR_INVALID);
    CHECKF(strstr(e.msg, "--rank-weight") != NULL, "%s", e.msg);

    // before: one step at a tiny learning rate
    hp.group = 4;
    hp.rank_weight = 2;
    hp.steps = 1;
    hp.lr = hp.lr_min = 1e-7f;
    CHECKF(vt_value_train(&hp, out, &e) == VISVM_OK, "%s", e.msg);
    char *js = NULL;
    size_t jn = 0;
    CHECK(vv_read_file(in_dir("out/value-metrics.json"), &js, &jn, &e) == VISVM_OK);
    const double mse0 = metric(js, "heldout_td_mse");
    CHECK(metric(js, "group") == 4 && metric(js, "rank_weight") == 2);
    free(js);

    // after: 300 steps (a new projector must learn to pass the image: fewer leave V at the mean)
    hp.steps = 300;
    hp.lr = hp.lr_min = 1e-3f;
    CHECKF(vt_value_train(&hp, out, &e) == VISVM_OK, "%s", e.msg);
    js = NULL;
    CHECK(vv_read_file(in_dir("out/value-metrics.json"), &js, &jn, &e) == VISVM_OK);
    const double mse1 = metric(js, "heldout_td_mse");
    free(js);
    printf("held-out TD MSE %.5f -> %.5f after %d steps\n", mse0, mse1, hp.steps);
    CHECK(isfinite(mse0) && isfinite(mse1) && mse1 < 0.5 * mse0);

    // the exported model, through the engine: present above absent in every image
    vv_value *vm = NULL;
    CHECKF(vv_value_load(in_dir("out/value-text.gguf"), in_dir("out/value-mmproj.gguf"), &vm, &e) == VISVM_OK, "%s", e.msg);
    vv_value_state *vs = NULL;
    vv_pool *pool = vv_pool_create(2);
    if (vm) CHECKF(vv_value_state_create(vm, pool, 4, &vs, &e) == VISVM_OK, "%s", e.msg);
    int ranked = 0;
    for (int i = 0; vs && i < N_IMG; i++) {
        char png[64];
        snprintf(png, sizeof(png), "img/%d.png", i);
        vv_image im = {0};
        CHECK(vv_image_load_file(in_dir(png), &im, &e) == VISVM_OK);
        CHECKF(vv_value_set_image(vs, &im, &e) == VISVM_OK, "%s", e.msg);
        const char *s[2] = {present[i], absent[i]};
        float v[2] = {0, 0};
        CHECKF(vv_value_score(vs, s, 2, NULL, v, &e) == VISVM_OK, "%s", e.msg);
        printf("image %d: V(\"%s\") %.3f, V(\"%s\") %.3f\n", i, s[0], v[0], s[1], v[1]);
        ranked += v[0] > v[1];
        vv_image_free(&im);
    }
    CHECK(ranked == N_IMG);
    vv_value_state_free(vs);
    vv_value_free(vm);
    vv_pool_free(pool);

    // --with-prefix: both responses of an image go on with the same second sentence, "It is
    // nice.", whose reward follows the first (0.6 after the present object, 0.2 after "I cannot
    // tell."). Without the caption so far the two states are the same text; the exported model,
    // given that prefix by the engine, ranks the first continuation higher in every image
    {
        vv_buf jp = {0};
        for (int i = 0; i < N_IMG; i++) {
            char png[64];
            snprintf(png, sizeof(png), "img/%d.png", i);
            vv_buf_printf(&jp,
                          "{\"text\":\"Describe the image.\",\"image\":\"%s\",\"image_path\":\"%s\","
                          "\"temp_02\":\"%s It is nice.\",\"temp_04\":\"I cannot tell. It is nice.\",\"rewards\":{"
                          "\"temp_02\":{\"%s\":0.6,\"It is nice.\":0.6,\"\":0.3},"
                          "\"temp_04\":{\"I cannot tell.\":0.2,\"It is nice.\":0.2,\"\":0.3}}}\n",
                          png, in_dir(png), present[i], present[i]);
        }
        char rwp[512], outp[512];
        snprintf(rwp, sizeof(rwp), "%s", in_dir("rwp.jsonl"));
        snprintf(outp, sizeof(outp), "%s", in_dir("outp"));
        CHECK(vv_write_file_atomic(rwp, jp.v, jp.n, &e) == VISVM_OK);
        vv_buf_free(&jp);
        CHECK(vv_mkdir_p(outp, &e) == VISVM_OK);
        vt_value_hp hq = hp;
        hq.train_rewards = hq.val_rewards = rwp;
        hq.with_prefix = true;
        hq.steps = 150;
        CHECKF(vt_value_train(&hq, outp, &e) == VISVM_OK, "%s", e.msg);
        vv_value *pm = NULL;
        char tp[600], mp[600];
        snprintf(tp, sizeof(tp), "%s/value-text.gguf", outp);
        snprintf(mp, sizeof(mp), "%s/value-mmproj.gguf", outp);
        CHECKF(vv_value_load(tp, mp, &pm, &e) == VISVM_OK, "%s", e.msg);
        vv_value_state *ps = NULL;
        vv_pool *pp = vv_pool_create(2);
        if (pm) {
            CHECK(pm->with_prefix);
            CHECKF(vv_value_state_create(pm, pp, 4, &ps, &e) == VISVM_OK, "%s", e.msg);
        }
        int ahead = 0;
        for (int i = 0; ps && i < N_IMG; i++) {
            char png[64];
            snprintf(png, sizeof(png), "img/%d.png", i);
            vv_image im = {0};
            CHECK(vv_image_load_file(in_dir(png), &im, &e) == VISVM_OK);
            CHECK(vv_value_set_image(ps, &im, &e) == VISVM_OK);
            const char *nice[1] = {"It is nice."};
            float va = 0, vb = 0;
            CHECK(vv_value_score(ps, nice, 1, present[i], &va, &e) == VISVM_OK);
            CHECK(vv_value_score(ps, nice, 1, "I cannot tell.", &vb, &e) == VISVM_OK);
            printf("image %d, with prefix: V(\"It is nice.\" after the present object) %.3f, after \"I cannot tell.\" %.3f\n",
                   i, va, vb);
            // and near the TD targets of those last sentences (done mask: r - offset = 0.3 and -0.1)
            ahead += va > vb && fabs(va - 0.3) < 0.15 && fabs(vb + 0.1) < 0.15;
            vv_image_free(&im);
        }
        CHECK(ahead == N_IMG);
        vv_value_state_free(ps);
        vv_value_free(pm);
        vv_pool_free(pp);
    }

    // --head-yes-no: the head starts as alpha (W_yes - W_no) of the policy's output layer
    hp.group = 1;
    hp.rank_weight = 0;
    hp.steps = 1;
    hp.lr = hp.lr_min = 1e-9f;
    hp.head_yes_no = 0.5f;
    CHECKF(vt_value_train(&hp, out, &e) == VISVM_OK, "%s", e.msg);
    {
        vv_gguf *gp = NULL, *gv = NULL;
        vv_vocab *voc = NULL;
        vv_ivec y = {0}, n = {0};
        CHECK(vv_gguf_open(policy, &gp, &e) == VISVM_OK && vv_gguf_open(in_dir("out/value-text.gguf"), &gv, &e) == VISVM_OK);
        CHECK(gp && vv_vocab_load(gp, &voc, &e) == VISVM_OK);
        CHECK(voc && vv_tokenize(voc, "yes", 3, false, false, &y, &e) == VISVM_OK && y.n > 0);
        CHECK(voc && vv_tokenize(voc, "no", 2, false, false, &n, &e) == VISVM_OK && n.n > 0);
        const vv_tensor *to = gp ? vv_gguf_find_tensor(gp, "output.weight") : NULL;
        const vv_tensor *th = gv ? vv_gguf_find_tensor(gv, "value_head.weight") : NULL;
        CHECK(to && th && y.n && n.n);
        if (to && th && y.n && n.n) {
            const int64_t d = vv_tensor_nelements(th), nv = vv_tensor_nelements(to);
            float *all = malloc((size_t)nv * sizeof(float)), *h = malloc((size_t)d * sizeof(float));
            CHECK(vv_dequantize_row(to->type, to->data, all, nv) == VISVM_OK);
            CHECK(vv_dequantize_row(th->type, th->data, h, d) == VISVM_OK);
            double err = 0, mag = 0;
            for (int64_t i = 0; i < d; i++) {
                const double want = 0.5 * (all[(size_t)y.v[0] * d + i] - all[(size_t)n.v[0] * d + i]);
                err = fmax(err, fabs(h[i] - want));
                mag = fmax(mag, fabs(want));
            }
            printf("head-yes-no: |head - 0.5 (W_yes - W_no)| <= %.2g (rows up to %.3f)\n", err, mag);
            CHECK(mag > 0.01 && err < 1e-4);
            free(all), free(h);
        }
        vv_ivec_free(&y), vv_ivec_free(&n);
        vv_vocab_free(voc);
        vv_gguf_close(gp), vv_gguf_close(gv);
        // a policy without an output layer: a clear error
        hp.policy_text = in_dir("out/value-text.gguf");
        e.msg[0] = 0;
        CHECK(vt_value_train(&hp, out, &e) != VISVM_OK);
        CHECKF(strstr(e.msg, "output.weight") != NULL, "%s", e.msg);
    }
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", g_dir);
    CHECK(system(cmd) == 0);
    return tc_result("test_train_value");
}
