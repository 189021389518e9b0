// test_train_vlm.c - the tiny LLaVA trainer end to end at toy size: a short
// run lowers the loss on a fixed batch, and the exported GGUF pair computes in
// the inference engine what the trainer computes (image embeddings and the
// logits of every caption position).
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gen/llava.h"
#include "model/clip.h"
#include "model/llama.h"
#include "tcheck.h"
#include "format/gguf.h"
#include "tensor/quants.h"
#include "train/clip_model.h"
#include "train/clip_train.h"
#include "train/vlm_train.h"

// Trains a tiny VLM on a fixed batch, exports it and compares the engine's
// image embeddings and logits with the trainer's (patchify or conv-stem tower).
static void run(int stem, bool bn) {
    vv_error e = {0};
    vv_bpe_vocab bpe = {0};
    CHECK(vt_world_vocab(&bpe, &e) == VISVM_OK);
    vt_vlm_hp hp = vt_vlm_default_hp();
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
    hp.stem = stem; // 2 stages: 16 -> 8 -> 4 = the patch-4 grid, channels 4, 8
    hp.stem_ch = 4;
    hp.stem_bn = bn; // folded into the convolutions at export; the comparison below runs in eval mode
    enum { B = 4 };
    vt_vlm m;
    CHECKF(vt_vlm_init(&m, &hp, &bpe, B, &e) == VISVM_OK, "%s", e.msg);
    CHECK((vt_params_find(&m.ps, "v.stem.1.bn.weight") != NULL) == bn);
    vv_pool *pool = vv_pool_create(2);
    vt_ctx *c = NULL;
    CHECK(vt_ctx_create_with_pool(pool, &c, &e) == VISVM_OK);
    // a fixed batch of world scenes
    vv_world_params wp = vv_world_default_params();
    uint64_t seeds[B] = {11, 12, 13, 14};
    float *img = malloc((size_t)B * 16 * 16 * 3 * sizeof(float));
    CHECK(vt_render_batch(pool, &wp, seeds, B, 16, img) == VISVM_OK);
    char *caps[B];
    const char *prompts[B];
    int np = 0;
    const char *const *pr = vt_detail_prompts(&np);
    CHECK(np == 9);
    for (int b = 0; b < B; b++) {
        vv_world_scene s;
        CHECK(vv_world_scene_make(&wp, seeds[b], &s, &e) == VISVM_OK);
        CHECK(vv_world_captions(&s, seeds[b], 1, &caps[b], &e) == VISVM_OK);
        prompts[b] = pr[b % np];
        vv_world_scene_free(&s);
    }
    // a short run lowers the loss on the fixed batch
    vt_adamw opt = vt_adamw_default();
    float first = 0, last = 0;
    int ntok = 0;
    for (int it = 0; it < 40; it++) {
        vt_params_zero_grad(&m.ps);
        float loss = 0;
        CHECK(vt_vlm_loss(c, &m, img, prompts, (const char *const *)caps, B, true, &loss, &ntok, &e) == VISVM_OK);
        if (it == 0) first = loss;
        last = loss;
        float norm;
        vt_clip_grad_norm(c, &m.ps, 1.0f, &norm);
        CHECK(vt_adamw_step(c, &m.ps, &opt, 3e-3f) == VISVM_OK);
    }
    printf("stem %d%s: loss on a fixed batch: %.3f -> %.3f (%d target tokens)\n", stem, bn ? " + BatchNorm" : "", first, last, ntok);
    CHECK(first > 5.0f && last < 0.5f * first);

    // round the weights to fp16 (what the export stores), then compare trainer and engine
    for (int i = 0; i < m.ps.n; i++)
        if (m.ps.items[i].n_dims >= 2)
            for (int64_t k = 0; k < m.ps.items[i].n; k++) m.ps.items[i].data[k] = vv_round_fp16(m.ps.items[i].data[k]);
    float loss = 0;
    CHECK(vt_vlm_loss(c, &m, img, prompts, (const char *const *)caps, B, false, &loss, &ntok, &e) == VISVM_OK);
    char tp[256], mp[256];
    snprintf(tp, sizeof(tp), "/tmp/visvm_test_vlm_%d_text.gguf", (int)getpid());
    snprintf(mp, sizeof(mp), "/tmp/visvm_test_vlm_%d_mmproj.gguf", (int)getpid());
    CHECKF(vt_vlm_export(&m, tp, mp, &e) == VISVM_OK, "%s", e.msg);
    vv_llama *lm = NULL;
    vv_clip *cl = NULL;
    CHECKF(vv_llama_load_file(tp, &lm, &e) == VISVM_OK, "%s", e.msg);
    CHECKF(vv_clip_load_file(mp, VISVM_VISION_REFERENCE, &cl, &e) == VISVM_OK, "%s", e.msg);
    if (lm && cl) {
        CHECK(cl->n_layer_run == hp.v_layers && cl->image_size == 16 && cl->n_patches == 16 && cl->n_stem == stem);
        int L = 0;
        for (int b = 0; b < B; b++) L = m.lens[b] > L ? m.lens[b] : L;
        double emb_err = 0, logit_err = 0, logit_max = 0;
        int same = 0, rows = 0;
        for (int b = 0; b < B; b++) {
            // engine: render, preprocess (bilinear 64 -> 16), tower + projector
            vv_world_scene s;
            vv_image im = {0};
            vv_image_batch ib = {0};
            float *emb = NULL;
            int n_emb = 0;
            CHECK(vv_world_scene_make(&wp, seeds[b], &s, &e) == VISVM_OK);
            CHECK(vv_world_render(&wp, &s, &im, NULL, &e) == VISVM_OK);
            CHECK(vv_preprocess(&im, &cl->pre, &ib, &e) == VISVM_OK);
            CHECK(vv_clip_embed(cl, NULL, &ib, &emb, &n_emb, NULL, &e) == VISVM_OK);
            CHECK(n_emb == m.n_img);
            for (int i = 0; emb && i < n_emb * hp.d; i++)
                emb_err = fmax(emb_err, fabs(emb[i] - m.img_emb[(size_t)b * m.n_img * hp.d + i]));
            // engine: the same token layout, all logits
            vv_buf full = {0};
            vv_ivec pre = {0}, post = {0}, ans = {0};
            bool hi;
            vv_chat_format(VISVM_TEMPLATE_LLAVA15, prompts[b], true, &full);
            CHECK(vv_llava_tokenize(lm->vocab, full.v, &pre, &post, &hi, &e) == VISVM_OK && hi);
            vv_ivec_append(&post, NULL, 0);
            vv_tokenize(lm->vocab, caps[b], strlen(caps[b]), false, false, &ans, &e);
            vv_ivec_push(&ans, 2);
            vv_ivec_append(&post, ans.v, ans.n); // the caption follows the prompt directly
            int n_all = (int)(pre.n + (size_t)n_emb + post.n);
            CHECK(n_all == m.lens[b]);
            vv_llama_state *st = NULL;
            vv_llama_state_params sp = {256, 1, 256, NULL};
            CHECK(vv_llama_state_create(lm, &sp, &st, &e) == VISVM_OK);
            float *all = malloc((size_t)n_all * bpe.n * sizeof(float));
            CHECK(vv_llava_prefill(st, 0, pre.v, (int)pre.n, emb, n_emb, post.v, (int)post.n, NULL, all, &e) == VISVM_OK);
            for (int r = 0; r < ntok; r++) {
                int row = m.tgt_rows[r];
                if (row / L != b) continue;
                const float *a = all + (size_t)(row % L) * bpe.n, *t = m.logits + (size_t)r * bpe.n;
                int am = 0, bm = 0;
                for (int v = 0; v < bpe.n; v++) {
                    logit_err = fmax(logit_err, fabs(a[v] - t[v]));
                    logit_max = fmax(logit_max, fabs(t[v]));
                    if (a[v] > a[am]) am = v;
                    if (t[v] > t[bm]) bm = v;
                }
                same += am == bm;
                rows++;
            }
            free(all);
            vv_llama_state_free(st);
            vv_buf_free(&full);
            vv_ivec_free(&pre);
            vv_ivec_free(&post);
            vv_ivec_free(&ans);
            vv_afree(emb);
            vv_image_batch_free(&ib);
            vv_image_free(&im);
            vv_world_scene_free(&s);
        }
        printf("trainer vs engine: image embeddings max |diff| %.2e; logits max |diff| %.2e (|logit| up to %.1f), "
               "argmax %d/%d\n", emb_err, logit_err, logit_max, same, rows);
        CHECK(rows == ntok);
        CHECK(emb_err < 2e-2);
        CHECK(logit_err < 5e-2);
        CHECK(same >= rows - 2);
    }
    vv_llama_free(lm);
    vv_clip_free(cl);
    unlink(tp);
    unlink(mp);
    for (int b = 0; b < B; b++) free(caps[b]);
    free(img);
    vt_vlm_free(&m);
    vt_ctx_free(c);
    vv_pool_free(pool);
    vv_bpe_vocab_free(&bpe);
}

// LLaVA-style start (train vlm --init-vision CLIP.gguf --freeze-vision): the tower
// takes the CLIP's shape and weights, and two training steps leave it
// bit-identical in the exported mmproj; shape mismatches fail with a message.
static void run_init_vision(void) {
    vv_error e = {0};
    vv_bpe_vocab bpe = {0};
    CHECK(vt_world_vocab(&bpe, &e) == VISVM_OK);
    vt_clip_hp ch = vt_clip_default_hp();
    ch.image_size = 16;
    ch.patch = 4;
    ch.v_width = ch.t_width = 32;
    ch.v_layers = ch.t_layers = 2;
    ch.v_heads = ch.t_heads = 2;
    ch.v_ff = ch.t_ff = 64;
    ch.t_ctx = 16;
    ch.proj = 16;
    ch.stem = 2;
    ch.stem_ch = 4;
    ch.stem_bn = true; // folded at export: the VLM's tower has none
    vt_clip_model cm;
    CHECKF(vt_clip_model_init(&cm, &ch, &bpe, 2, 2, &e) == VISVM_OK, "%s", e.msg);
    vv_rng r;
    vv_rng_seed(&r, 5);
    for (int i = 0; i < cm.ps.n; i++)
        for (int64_t j = 0; j < cm.ps.items[i].n; j++) cm.ps.items[i].data[j] += 0.05f * vv_rng_normal(&r);
    char dir[] = "/tmp/visvm_tinit_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char cp[256], mp[256], tp[256], ck[256], lg[256], sv[256];
    snprintf(cp, sizeof(cp), "%s/clip.gguf", dir);
    CHECKF(vt_clip_export(&cm, cp, &e) == VISVM_OK, "%s", e.msg);
    vt_clip_model_free(&cm);

    vt_vlm_hp hp = vt_vlm_default_hp();
    hp.d = 32;
    hp.layers = 1;
    hp.heads = 2;
    hp.kv_heads = 1;
    hp.ff = 64;
    hp.max_len = 100;
    hp.batch = 2;
    hp.steps = 2;
    hp.warmup = 1;
    hp.ckpt_every = 0;
    hp.threads = 2;
    hp.log_every = 1;
    hp.freeze_vision = true;
    CHECKF(vt_vlm_hp_vision_from_clip(&hp, cp, &e) == VISVM_OK, "%s", e.msg);
    CHECK(hp.image_size == 16 && hp.patch == 4 && hp.v_width == 32 && hp.v_layers == 2 && hp.v_heads == 2 &&
          hp.v_ff == 64 && hp.stem == 2 && hp.stem_ch == 4 && !hp.stem_bn && hp.init_vision == cp);
    CHECKF(vt_vlm_train(&hp, dir, false, &e) == VISVM_OK, "%s", e.msg);
    snprintf(mp, sizeof(mp), "%s/vlm-mmproj.gguf", dir);
    vv_gguf *gc = NULL, *gm = NULL;
    CHECK(vv_gguf_open(cp, &gc, &e) == VISVM_OK);
    CHECK(vv_gguf_open(mp, &gm, &e) == VISVM_OK);
    int n_v = 0, n_same = 0;
    for (int64_t i = 0; gc && gm && i < vv_gguf_n_tensors(gm); i++) {
        const vv_tensor *t = vv_gguf_tensor(gm, i);
        if (strncmp(t->name, "v.", 2)) continue;
        const vv_tensor *u = vv_gguf_find_tensor(gc, t->name);
        n_v++;
        if (!u || vv_tensor_nelements(u) != vv_tensor_nelements(t)) continue;
        const int64_t n = vv_tensor_nelements(t);
        float *a = malloc((size_t)n * sizeof(float)), *b = malloc((size_t)n * sizeof(float));
        CHECK(vv_dequantize_row(t->type, t->data, a, n) == VISVM_OK && vv_dequantize_row(u->type, u->data, b, n) == VISVM_OK);
        n_same += !memcmp(a, b, (size_t)n * sizeof(float));
        free(a), free(b);
    }
    printf("init-vision: %d of %d tower tensors in the VLM's mmproj equal the CLIP's after training\n", n_same, n_v);
    CHECK(n_v > 10 && n_same == n_v);
    vv_gguf_close(gc);
    vv_gguf_close(gm);
    // a CLIP whose tower does not fit the options: clear error; a text GGUF is no CLIP
    vt_vlm_hp bad = vt_vlm_default_hp();
    snprintf(tp, sizeof(tp), "%s/vlm-text.gguf", dir);
    CHECK(vt_vlm_hp_vision_from_clip(&bad, tp, &e) != VISVM_OK && strstr(e.msg, "clip.vision") != NULL);
    bad = hp;
    bad.v_width = 64; // the file's tower is 32 wide
    e.msg[0] = 0;
    CHECK(vt_vlm_train(&bad, dir, false, &e) != VISVM_OK && strstr(e.msg, "shape") != NULL);
    snprintf(ck, sizeof(ck), "%s/vlm.ckpt.gguf", dir);
    snprintf(lg, sizeof(lg), "%s/vlm-train.log", dir);
    snprintf(sv, sizeof(sv), "%s/vlm-loss.svg", dir);
    unlink(cp), unlink(mp), unlink(tp), unlink(ck), unlink(lg), unlink(sv);
    rmdir(dir);
    vv_bpe_vocab_free(&bpe);
}

// Classes named in a sentence (single words and word pairs), as a bit mask.
static uint64_t named_classes(const char *text) {
    char w[64][24];
    int n = 0;
    for (const char *p = text; *p && n < 64;) {
        while (*p && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) p++;
        int k = 0;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) {
            if (k < 23) w[n][k++] = (char)(*p | 0x20);
            p++;
        }
        w[n][k] = 0;
        if (k) n++;
    }
    uint64_t m = 0;
    for (int i = 0; i < n; i++) {
        int c = vv_world_word_class(w[i]);
        if (c >= 0) m |= 1ull << c;
        if (i + 1 < n) {
            char two[52];
            snprintf(two, sizeof(two), "%.23s %.23s", w[i], w[i + 1]);
            if ((c = vv_world_word_class(two)) >= 0) m |= 1ull << c;
        }
    }
    return m;
}

// Classes of a scene's objects, as a bit mask.
static uint64_t present_classes(const vv_world_scene *s) {
    uint64_t m = 0;
    for (int k = 0; k < s->n_objects; k++) m |= 1ull << s->obj[k].cls;
    return m;
}

// The yes/no instruction data (train vlm --verify-frac): a question asked as
// true never names an absent class; one asked as false is a hard negative of
// the same kind (as many name an object), a good share naming an absent class of
// the scene's theme. The held-out
// evaluation of a model whose "yes" and "no" output rows are zero scores every
// question 0: accuracy exactly 50%, AUC exactly 0.5.
static void run_verify(void) {
    vv_error e = {0};
    vv_world_params wp = vv_world_default_params();
    CHECK(vv_world_n_classes() <= 64);
    vv_rng r;
    vv_rng_seed(&r, 3);
    int n_true = 0, true_ok = 0, n_false = 0, absent_theme = 0, true_named = 0, false_named = 0;
    for (int i = 0; i < 400; i++) {
        vv_world_scene s;
        CHECK(vv_world_scene_make(&wp, 1000 + (uint64_t)i, &s, &e) == VISVM_OK);
        const uint64_t present = present_classes(&s);
        char q[VV_WORLD_SENT_MAX];
        bool truth = false, want = i % 2 == 0;
        CHECKF(vt_vlm_verify_question(&s, &r, want, false, false, q, sizeof(q), &truth, &e) == VISVM_OK, "%s", e.msg);
        CHECK(truth == want && q[0]);
        const uint64_t named = named_classes(q);
        if (want) {
            n_true++;
            true_ok += (named & ~present) == 0;
            true_named += named != 0;
        } else {
            n_false++;
            false_named += named != 0;
            const uint64_t absent = named & ~present;
            bool th = false;
            for (int c = 0; c < 64; c++)
                if (absent >> c & 1 && vv_world_theme_has_class(s.theme, c)) th = true;
            absent_theme += th;
        }
        vv_world_scene_free(&s);
    }
    printf("verify questions: %d/%d true ones name only present classes; %d/%d negatives name an absent same-theme class\n",
           true_ok, n_true, absent_theme, n_false);
    printf("verify questions naming an object: %d of the true, %d of the false\n", true_named, false_named);
    CHECK(true_ok == n_true && n_true == 200);
    CHECK(absent_theme >= n_false / 4 && absent_theme < n_false);
    // the kind of sentence gives the answer away no more than by chance
    CHECK(abs(true_named - false_named) <= 20 && true_named > 120 && true_named < 190);
    // objects only (half of them short): every question names a class, present when true, absent when false
    int obj_ok = 0;
    for (int i = 0; i < 200; i++) {
        vv_world_scene s;
        CHECK(vv_world_scene_make(&wp, 3000 + (uint64_t)i, &s, &e) == VISVM_OK);
        const uint64_t present = present_classes(&s);
        char q[VV_WORLD_SENT_MAX];
        bool truth = false, want = i % 2 == 0;
        CHECKF(vt_vlm_verify_question(&s, &r, want, true, i % 4 < 2, q, sizeof(q), &truth, &e) == VISVM_OK, "%s", e.msg);
        const uint64_t named = named_classes(q);
        obj_ok += truth == want && named != 0 && ((named & ~present) == 0) == want &&
                  (i % 4 >= 2 || (!strncmp(q, "There is a ", 11) && strlen(q) < 32)); // short: "There is a CLASS.
        vv_world_scene_free(&s);
    }
    printf("objects-only questions: %d/200 name a class that is present exactly when asked as true\n", obj_ok);
    CHECK(obj_ok == 200);
    // where questions: the asked class is present exactly when the answer says where it is
    int wh_ok = 0, wh_theme = 0;
    for (int i = 0; i < 200; i++) {
        vv_world_scene s;
        CHECK(vv_world_scene_make(&wp, 5000 + (uint64_t)i, &s, &e) == VISVM_OK);
        const uint64_t present = present_classes(&s);
        char q[VV_WORLD_SENT_MAX], a[VV_WORLD_SENT_MAX];
        bool truth = false, want = i % 2 == 0;
        CHECKF(vt_vlm_where_question(&s, &r, want, q, a, sizeof(q), &truth, &e) == VISVM_OK, "%s", e.msg);
        const uint64_t nq = named_classes(q), na = named_classes(a);
        const bool one = nq && !(nq & (nq - 1));
        wh_ok += truth == want && one && na == nq && ((nq & present) != 0) == want &&
                 !strncmp(a, want ? "There is a " : "There is no ", want ? 11 : 12);
        for (int c = 0; c < 64 && !want; c++)
            if (nq >> c & 1) wh_theme += vv_world_theme_has_class(s.theme, c);
        vv_world_scene_free(&s);
    }
    printf("where questions: %d/200 consistent with the scene, %d/100 absent ones of the theme\n", wh_ok, wh_theme);
    CHECK(wh_ok == 200 && wh_theme >= 30 && wh_theme < 100);

    vv_bpe_vocab bpe = {0};
    CHECK(vt_world_vocab(&bpe, &e) == VISVM_OK);
    vt_vlm_hp hp = vt_vlm_default_hp();
    hp.image_size = 16, hp.patch = 4, hp.v_width = 32, hp.v_layers = 1, hp.v_heads = 2, hp.v_ff = 64;
    hp.d = 32, hp.layers = 1, hp.heads = 2, hp.kv_heads = 1, hp.ff = 64, hp.max_len = 100;
    vt_vlm m;
    CHECKF(vt_vlm_init(&m, &hp, &bpe, 8, &e) == VISVM_OK, "%s", e.msg);
    vv_pool *pool = vv_pool_create(2);
    vt_ctx *c = NULL;
    CHECK(vt_ctx_create_with_pool(pool, &c, &e) == VISVM_OK);
    vv_ivec y = {0}, n = {0};
    CHECK(vv_tokenize(m.vocab, "yes", 3, false, false, &y, &e) == VISVM_OK && y.n > 0);
    CHECK(vv_tokenize(m.vocab, "no", 2, false, false, &n, &e) == VISVM_OK && n.n > 0 && n.v[0] != y.v[0]);
    float acc = -1, auc = -1, *out = m.ps.items[m.out].data;
    CHECKF(vt_vlm_verify_eval(c, &m, pool, 20, 9, false, &acc, &auc, &e) == VISVM_OK, "%s", e.msg);
    CHECK(acc >= 0 && acc <= 1 && auc >= 0 && auc <= 1);
    { // the same model one question at a time (each answer row is row 0): same scores, so same figures
        vt_vlm m1;
        float acc1 = -1, auc1 = -1;
        CHECKF(vt_vlm_init(&m1, &hp, &bpe, 1, &e) == VISVM_OK, "%s", e.msg);
        CHECKF(vt_vlm_verify_eval(c, &m1, pool, 20, 9, false, &acc1, &auc1, &e) == VISVM_OK, "%s", e.msg);
        printf("verify eval, batch 8 vs 1: accuracy %.3f / %.3f, AUC %.3f / %.3f\n", acc, acc1, auc, auc1);
        CHECK(acc1 == acc && auc1 == auc && auc != 0.5f);
        float wa = -1, wu = -1, wa1 = -2, wu1 = -2; // where questions: the deciding token is the third
        CHECKF(vt_vlm_verify_eval(c, &m, pool, 20, 9, true, &wa, &wu, &e) == VISVM_OK, "%s", e.msg);
        CHECKF(vt_vlm_verify_eval(c, &m1, pool, 20, 9, true, &wa1, &wu1, &e) == VISVM_OK, "%s", e.msg);
        printf("where eval, batch 8 vs 1: accuracy %.3f / %.3f, AUC %.3f / %.3f\n", wa, wa1, wu, wu1);
        CHECK(wa == wa1 && wu == wu1 && wu != 0.5f && wu != auc);
        m.hp.verify_late = m1.hp.verify_late = true; // "The answer is yes / no": decided at the fourth token
        CHECKF(vt_vlm_verify_eval(c, &m, pool, 20, 9, false, &wa, &wu, &e) == VISVM_OK, "%s", e.msg);
        CHECKF(vt_vlm_verify_eval(c, &m1, pool, 20, 9, false, &wa1, &wu1, &e) == VISVM_OK, "%s", e.msg);
        printf("late yes/no eval, batch 8 vs 1: accuracy %.3f / %.3f, AUC %.3f / %.3f\n", wa, wa1, wu, wu1);
        CHECK(wa == wa1 && wu == wu1 && wu != 0.5f && wu != auc);
        m.hp.verify_late = false;
        vt_vlm_free(&m1);
    }
    // tie the rows (zero both: equal non-zero rows can round differently in different GEMM tiles)
    memset(out + (size_t)y.v[0] * hp.d, 0, (size_t)hp.d * sizeof(float));
    memset(out + (size_t)n.v[0] * hp.d, 0, (size_t)hp.d * sizeof(float));
    CHECKF(vt_vlm_verify_eval(c, &m, pool, 20, 9, false, &acc, &auc, &e) == VISVM_OK, "%s", e.msg);
    printf("verify eval with tied yes/no rows: accuracy %.3f, AUC %.3f\n", acc, auc);
    CHECK(acc == 0.5f && auc == 0.5f);
    vv_ivec_free(&y);
    vv_ivec_free(&n);
    vt_ctx_free(c);
    vv_pool_free(pool);
    vt_vlm_free(&m);
    vv_bpe_vocab_free(&bpe);
}

int main(void) {
    run(0, false);
    run(2, false);
    run(2, true);
    run_init_vision();
    run_verify();
    return tc_result("test_train_vlm");
}
