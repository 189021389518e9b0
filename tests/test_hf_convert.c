// test_hf_convert.c - golden checks after `visvm convert` (hf_convert.h):
// the tiny Hugging Face LLaVA-NeXT of ../shared/golden-hf is converted to
// F32 and F16 GGUF, then the engine's own GGUF path (vv_llama, vv_clip in
// reference mode) is run on the reference inputs and compared with the
// transformers outputs: logits from inputs_embeds, projected features and the
// unpadded/newline-packed image features from pixel_values, tokenizer ids.
// The value checkpoint's GGUF must carry its flattened head unchanged.
#include <unistd.h>

#include "format/gguf.h"
#include "model/clip.h"
#include "model/hf_convert.h"
#include "model/value.h"
#include "tcheck.h"

static char g_dir[4096];

static float *ref_f32(const char *name, size_t n) {
    char p[4400];
    snprintf(p, sizeof(p), "%s/ref/%s", g_dir, name);
    size_t size = 0;
    float *v = tc_read(p, &size);
    if (v && size != n * 4) {
        free(v);
        return NULL;
    }
    return v;
}

static double max_err(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

static void check_type(const char *tname, double tol_logits, double tol_feat) {
    char out[256], p[512];
    snprintf(out, sizeof(out), "/tmp/vv_hfconv_%d_%s", (int)getpid(), tname);
    char src[4200];
    snprintf(src, sizeof(src), "%s/llava-next-tiny", g_dir);
    vv_error e = {0};
    int rc = vv_hf_convert(src, out, vv_type_from_name(tname), &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    if (rc) return;
    // text: logits of the reference inputs_embeds
    vv_llama *m = NULL;
    snprintf(p, sizeof(p), "%s/text.gguf", out);
    rc = vv_llama_load_file(p, &m, &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    const int L = 89, D = 128, V = 576;
    float *embd = ref_f32("img0_inputs_embeds.f32", (size_t)L * D), *ref = ref_f32("img0_logits.f32", (size_t)L * V);
    CHECK(embd && ref);
    if (!rc && embd && ref) {
        CHECK(m->hp.rope_neox && m->hp.n_vocab == V);
        // the vocabulary is padded to the 576 rows: 568 (a greedy pick of the reference) renders as nothing
        vv_buf pc = {0};
        CHECK(vv_vocab_n(m->vocab) == V && vv_vocab_type(m->vocab, 568) == VV_TOKEN_UNUSED);
        CHECK(vv_token_to_piece(m->vocab, 568, false, &pc) == VISVM_OK && pc.n == 0);
        vv_buf_free(&pc);
        vv_llama_state *st = NULL;
        vv_llama_state_params sp = {L + 8, 1, 512, NULL};
        float *lg = malloc((size_t)L * V * sizeof(float));
        CHECK(vv_llama_state_create(m, &sp, &st, &e) == VISVM_OK);
        CHECK(st && vv_llama_decode_seq(st, 0, NULL, embd, L, true, lg, &e) == VISVM_OK);
        double err = max_err(lg, ref, (size_t)L * V);
        printf("%s: text logits max err %.3g (tol %g)\n", tname, err, tol_logits);
        CHECKF(err <= tol_logits, "%s logits err %g", tname, err);
        // tokenizer from the GGUF: the README prompt, unexpanded
        vv_ivec ids = {0};
        const char *prompt = "[INST] <image>\nDescribe the image. [/INST]";
        CHECK(vv_tokenize(m->vocab, prompt, strlen(prompt), true, true, &ids, &e) == VISVM_OK);
        const int32_t want[] = {1, 284, 285, 488, 460, 512, 460, 13, 511, 297, 470, 294, 472, 461, 264, 391, 475, 323, 285, 488};
        CHECK(ids.n == 20 && !memcmp(ids.v, want, sizeof(want)));
        vv_ivec_free(&ids);
        vv_llama_state_free(st);
        free(lg);
    }
    vv_llama_free(m);
    free(embd);
    free(ref);
    // vision: HF pixel values through the GGUF tower + projector, then packing
    vv_clip *c = NULL;
    snprintf(p, sizeof(p), "%s/mmproj.gguf", out);
    rc = vv_clip_load_file(p, VISVM_VISION_REFERENCE, &c, &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    const int n = 5, S = 56, T = 16;
    float *px = ref_f32("img0_pixel_values.f32", (size_t)n * 3 * S * S);
    float *proj = ref_f32("img0_projected_features.f32", (size_t)n * T * D);
    float *packed = ref_f32("img0_packed_image_features.f32", (size_t)70 * D);
    CHECK(px && proj && packed);
    if (!rc && px && proj && packed) {
        CHECK(c->n_layer_run == 2 && c->post_ln_w == NULL);
        vv_image_batch b = {n, S, vv_aalloc((size_t)n * S * S * 3 * sizeof(float)), 2, 2, 112, 112, 90, 60};
        for (int t = 0; t < n; t++) // CHW -> HWC
            for (int ch = 0; ch < 3; ch++)
                for (int i = 0; i < S * S; i++)
                    b.data[((size_t)t * S * S + i) * 3 + ch] = px[((size_t)t * 3 + ch) * S * S + i];
        float *emb = NULL, *crops = NULL;
        int n_tok = 0;
        CHECK(vv_clip_embed(c, NULL, &b, &emb, &n_tok, &crops, &e) == VISVM_OK);
        if (emb && crops) {
            double ep = max_err(crops, proj, (size_t)n * T * D);
            printf("%s: projected features max err %.3g, packed %d tokens", tname, ep, n_tok);
            CHECKF(ep <= tol_feat, "%s projected err %g", tname, ep);
            CHECK(n_tok == 70);
            if (n_tok == 70) {
                double ek = max_err(emb, packed, (size_t)70 * D);
                printf(" max err %.3g (tol %g)\n", ek, tol_feat);
                CHECKF(ek <= tol_feat, "%s packed err %g", tname, ek);
            } else {
                printf("\n");
            }
        }
        vv_afree(emb);
        vv_afree(crops);
        vv_afree(b.data);
    }
    vv_clip_free(c);
    free(px);
    free(proj);
    free(packed);
    snprintf(p, sizeof(p), "%s/text.gguf", out);
    unlink(p);
    snprintf(p, sizeof(p), "%s/mmproj.gguf", out);
    unlink(p);
    rmdir(out);
}

static void check_value(void) {
    char out[256], p[512], src[4200];
    snprintf(out, sizeof(out), "/tmp/vv_hfconv_%d_value", (int)getpid());
    snprintf(src, sizeof(src), "%s/visvm-value-tiny", g_dir);
    vv_error e = {0};
    int rc = vv_hf_convert(src, out, VV_TYPE_F16, &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    if (rc) return;
    vv_gguf *g = NULL;
    snprintf(p, sizeof(p), "%s/text.gguf", out);
    CHECK(vv_gguf_open(p, &g, &e) == VISVM_OK);
    vv_hf_llava *m = NULL;
    CHECK(vv_hf_load(src, &m, &e) == VISVM_OK);
    if (g && m) {
        uint32_t ml = 0;
        const char *head = NULL;
        CHECK(vv_gguf_get_u32(g, "visvm.value.max_length", &ml, &e) == VISVM_OK && ml == 160);
        CHECK(vv_gguf_get_str(g, "visvm.value.head", &head, &e) == VISVM_OK && !strcmp(head, "flattened"));
        const vv_tensor *w = vv_gguf_find_tensor(g, "value_head.weight"), *b = vv_gguf_find_tensor(g, "value_head.bias");
        CHECK(w && w->type == VV_TYPE_F32 && w->ne[0] == 160 * 128 && b && b->ne[0] == 1);
        if (w && b && w->ne[0] == 160 * 128) {
            CHECK(!memcmp(w->data, m->v_head_w->data, (size_t)160 * 128 * 4));
            CHECK(*(const float *)b->data == m->v_head_b);
        }
        // the value encoder (not the base model) was converted: a perturbed weight matches
        const vv_tensor *q = vv_gguf_find_tensor(g, "blk.0.attn_q.weight");
        CHECK(q && q->type == VV_TYPE_F16);
        if (q) {
            float a = vv_fp16_to_fp32(((const uint16_t *)q->data)[7]), r = ((const float *)m->lm->layers[0].wq->data)[7];
            CHECK_NEAR(a, r, fabs(r) * 1e-3 + 1e-6);
        }
    }
    vv_hf_free(m);
    vv_gguf_close(g);
    unlink(p);
    snprintf(p, sizeof(p), "%s/mmproj.gguf", out);
    unlink(p);
    rmdir(out);
    // a directory that is not a checkpoint, and a bad type
    CHECK(vv_hf_convert("/tmp", out, VV_TYPE_F16, &e) != VISVM_OK);
    CHECK(vv_hf_convert(src, out, VV_TYPE_Q6_K, &e) == VISVM_ERR_INVALID);
}

// The three README value cases (sentence, image) scored through vv_value:
// eager and SDPA pad rows against value{i}_value.f32 / value{i}_value_cuda_sdpa.f32.
static double value_errors(const char *what, const char *text_path, const char *mmproj_path, double tol) {
    static const char *sent[3] = {"The image shows a red circle on a blue background.",
                                  "There is a small house next to the river.",
                                  "A yellow car is parked on the street, and a dog is nearby."};
    static const char *img_name[3] = {"landscape_90x60.png", "landscape_90x60.png", "nearsquare_48x44.png"};
    vv_error e = {0};
    vv_value *v = NULL;
    int rc = vv_value_load(text_path, mmproj_path, &v, &e);
    CHECKF(rc == VISVM_OK, "%s: %s", what, e.msg);
    if (rc) return INFINITY;
    CHECK(v->hf != NULL && v->pad_mode == VV_HF_PAD_SDPA);
    vv_value_state *st = NULL;
    CHECK(vv_value_state_create(v, NULL, 4, &st, &e) == VISVM_OK);
    double worst = 0;
    for (int i = 0; st && i < 3; i++) {
        char p[4400], rn[64];
        snprintf(p, sizeof(p), "%s/images/%s", g_dir, img_name[i]);
        vv_image img = {0};
        CHECK(vv_image_load_file(p, &img, &e) == VISVM_OK);
        CHECKF(vv_value_set_image(st, &img, &e) == VISVM_OK, "%s", e.msg);
        for (int mode = 0; mode < 2; mode++) {
            v->pad_mode = mode ? VV_HF_PAD_EAGER : VV_HF_PAD_SDPA;
            snprintf(rn, sizeof(rn), mode ? "value%d_value.f32" : "value%d_value_cuda_sdpa.f32", i);
            float *ref = ref_f32(rn, 1), got = NAN;
            const char *one[1] = {sent[i]};
            CHECKF(vv_value_score(st, one, 1, "ignored prefix", &got, &e) == VISVM_OK, "%s", e.msg);
            double d = ref ? fabs((double)got - ref[0]) : INFINITY;
            if (!(d <= worst)) worst = d;
            printf("%s: value %d %s %.7f (ref %.7f, err %.2g)\n", what, i, mode ? "eager" : "sdpa", got,
                   ref ? ref[0] : NAN, d);
            free(ref);
        }
        vv_image_free(&img);
    }
    CHECKF(worst <= tol, "%s: value err %g > %g", what, worst, tol);
    vv_value_state_free(st);
    vv_value_free(v);
    return worst;
}

// A converted VisVM value model through the engine's GGUF value path.
static void check_value_gguf(const char *tname, double tol) {
    char out[256], t[512], mm[512], src[4200];
    snprintf(out, sizeof(out), "/tmp/vv_hfconv_%d_value_%s", (int)getpid(), tname);
    snprintf(src, sizeof(src), "%s/visvm-value-tiny", g_dir);
    vv_error e = {0};
    int rc = vv_hf_convert(src, out, vv_type_from_name(tname), &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    if (rc) return;
    snprintf(t, sizeof(t), "%s/text.gguf", out);
    snprintf(mm, sizeof(mm), "%s/mmproj.gguf", out);
    char what[64];
    snprintf(what, sizeof(what), "value gguf %s", tname);
    value_errors(what, t, mm, tol);
    // a flattened-head GGUF without its mmproj is an error, not a crash
    vv_value *v = NULL;
    CHECK(vv_value_load(t, NULL, &v, &e) == VISVM_ERR_INVALID && v == NULL);
    unlink(t);
    unlink(mm);
    rmdir(out);
}

int main(void) {
    const char *d = getenv("VISVM_GOLDEN_HF_DIR");
    snprintf(g_dir, sizeof(g_dir), "%s", d ? d : VISVM_SOURCE_DIR "/../shared/golden-hf");
    char p[4200];
    snprintf(p, sizeof(p), "%s/index.json", g_dir);
    struct stat s;
    if (stat(p, &s) != 0) {
        printf("golden-hf data not found at %s: skipping (set VISVM_GOLDEN_HF_DIR)\n", g_dir);
        return TC_SKIP;
    }
    check_type("f32", 2e-4, 1e-4);
    check_type("f16", 0.03, 0.02); // the F16 logit and image-embedding bars of ../shared/golden/README.md
    check_type("q8_0", 0.2, 0.1);
    check_value();
    {
        char src[4200];
        snprintf(src, sizeof(src), "%s/visvm-value-tiny", g_dir);
        value_errors("value hf dir", src, NULL, 1e-4);
    }
    check_value_gguf("f32", 1e-4);
    check_value_gguf("f16", 0.03); // the F16 logit bar of ../shared/golden/README.md
    return tc_result("test_hf_convert");
}
