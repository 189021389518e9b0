// test_api.c - the public API (include/visvm.h) on the shipped world models:
// loading errors, model facts, tokenizer buffers and round trips, low-level
// decoding (one call vs token by token, all_logits rows, truncate + redo,
// context full), image embedding fed back through decode_embd, captions
// (greedy prefixes, stop strings, seeded sampling), NULL handles everywhere.
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model/image.h"
#include "tcheck.h"
#include "visvm.h"
#include "world/world.h"

static float max_diff(const float *a, const float *b, int n) {
    float m = 0;
    for (int i = 0; i < n; i++) m = fmaxf(m, fabsf(a[i] - b[i]));
    return m;
}

// One thread's caption on its own context of the shared model handles.
typedef struct {
    const visvm_model *m;
    const visvm_mmproj *mm;
    const char *png;
    char *text;
    int rc;
} job_t;

static void *caption_job(void *arg) {
    job_t *j = arg;
    visvm_context_params cp = visvm_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = 1;
    visvm_context *ctx = NULL;
    j->rc = visvm_context_create(j->m, j->mm, &cp, &ctx);
    visvm_sample_params sp = visvm_sample_default_params();
    sp.n_predict = 40;
    if (!j->rc) j->rc = visvm_caption(ctx, j->png, "Describe the image.", &sp, &j->text);
    visvm_context_free(ctx);
    return NULL;
}

int main(void) {
    const char *text_path = VISVM_SOURCE_DIR "/models/world/vlm-text.gguf";
    const char *mm_path = VISVM_SOURCE_DIR "/models/world/vlm-mmproj.gguf";
    if (access(text_path, R_OK)) {
        printf("shipped world models absent at %s: skipped\n", text_path);
        return TC_SKIP;
    }
    CHECK(!strcmp(visvm_version(), VISVM_VERSION_STRING));
    CHECK(strlen(visvm_status_str(VISVM_ERR_RANGE)) > 0 && strlen(visvm_status_str(12345)) > 0);
    visvm_set_log_level(0);

    // loading errors name the file; *out stays NULL
    visvm_model *m = (visvm_model *)1;
    CHECK(visvm_model_load("/nonexistent/x.gguf", NULL, &m) != VISVM_OK && m == NULL);
    CHECK(strstr(visvm_last_error(), "/nonexistent/x.gguf") != NULL);
    CHECK(visvm_model_load(mm_path, NULL, &m) != VISVM_OK && m == NULL); // a CLIP file is not a text model
    CHECK(strstr(visvm_last_error(), "clip") != NULL);
    visvm_mmproj *mm = (visvm_mmproj *)1;
    CHECK(visvm_mmproj_load(text_path, NULL, &mm) != VISVM_OK && mm == NULL);
    CHECK(visvm_model_load(NULL, NULL, &m) != VISVM_OK && visvm_model_load(text_path, NULL, NULL) != VISVM_OK);
    visvm_mmproj_params bad_mode = visvm_mmproj_default_params();
    bad_mode.vision_mode = 7;
    CHECK(visvm_mmproj_load(mm_path, &bad_mode, &mm) == VISVM_ERR_INVALID && mm == NULL);

    CHECKF(visvm_model_load(text_path, NULL, &m) == VISVM_OK, "%s", visvm_last_error());
    CHECKF(visvm_mmproj_load(mm_path, NULL, &mm) == VISVM_OK, "%s", visvm_last_error());
    if (!m || !mm) return tc_result("test_api");

    // facts
    const int nv = visvm_model_n_vocab(m), ne = visvm_model_n_embd(m);
    CHECK(nv > 10 && ne > 0 && visvm_model_n_ctx_train(m) > 0);
    CHECK(visvm_model_token_bos(m) >= 0 && visvm_model_token_bos(m) < nv);
    CHECK(visvm_model_token_eos(m) >= 0 && visvm_model_token_eos(m) < nv);
    char desc[256];
    CHECK(visvm_model_desc(m, desc, sizeof(desc)) >= 0 && strstr(desc, "llama") != NULL);
    char tiny[4] = "xyz";
    CHECK(visvm_model_desc(m, tiny, sizeof(tiny)) >= 0 && tiny[3] == 0); // truncated, still terminated
    CHECK(visvm_model_n_vocab(NULL) <= 0 && visvm_model_desc(NULL, desc, sizeof(desc)) < 0);

    // tokenizer: the needed count when the buffer is short, nothing written past it
    const char *sent = "This is a beach scene. There are two objects.";
    int32_t toks[128];
    const int nt = visvm_tokenize(m, sent, strlen(sent), toks, 128, true, false);
    CHECK(nt > 3 && nt < 128 && toks[0] == visvm_model_token_bos(m));
    int32_t few[3] = {-5, -5, -5};
    CHECK(visvm_tokenize(m, sent, strlen(sent), few, 2, true, false) == nt && few[2] == -5);
    CHECK(few[0] == toks[0] && few[1] == toks[1]);
    char *back = NULL;
    CHECK(visvm_detokenize(m, toks + 1, nt - 1, false, &back) == VISVM_OK && back);
    CHECKF(back && !strcmp(back, sent), "round trip: '%s'", back ? back : "(null)");
    visvm_free_string(back);
    char piece[64];
    const int pl = visvm_token_to_piece(m, toks[1], piece, sizeof(piece), false);
    CHECK(pl > 0 && pl < 64);
    CHECK(visvm_token_to_piece(m, nv, piece, sizeof(piece), false) < 0);
    CHECK(visvm_token_to_piece(m, -1, piece, sizeof(piece), false) < 0);
    CHECK(visvm_tokenize(NULL, sent, strlen(sent), toks, 128, true, false) < 0);
    CHECK(visvm_tokenize(m, NULL, 3, toks, 128, true, false) < 0);

    // contexts
    visvm_context_params cp = visvm_context_default_params();
    cp.n_ctx = 256;
    cp.n_threads = 2;
    visvm_context *ctx = NULL, *ctx2 = NULL;
    CHECK(visvm_context_create(NULL, mm, &cp, &ctx) != VISVM_OK && ctx == NULL);
    visvm_context_params bad = cp;
    bad.n_ctx = 1 << 23;
    CHECK(visvm_context_create(m, mm, &bad, &ctx) == VISVM_ERR_INVALID && ctx == NULL);
    CHECK(strstr(visvm_last_error(), "n_ctx") != NULL);
    bad = cp;
    bad.n_batch = 1 << 20;
    CHECK(visvm_context_create(m, mm, &bad, &ctx) == VISVM_ERR_INVALID && ctx == NULL);
    CHECKF(visvm_context_create(m, mm, &cp, &ctx) == VISVM_OK, "%s", visvm_last_error());
    CHECKF(visvm_context_create(m, NULL, &cp, &ctx2) == VISVM_OK, "%s", visvm_last_error()); // text only
    if (!ctx || !ctx2) return tc_result("test_api");

    // one call with every row's logits vs token by token on a second context
    float *all = malloc(sizeof(float) * (size_t)nv * (size_t)nt);
    CHECK(visvm_decode_tokens(ctx, toks, nt, true) == VISVM_OK && visvm_n_past(ctx) == nt);
    for (int i = 0; i < nt; i++) {
        const float *l = visvm_get_logits(ctx, i);
        CHECK(l != NULL);
        if (l) memcpy(all + (size_t)i * nv, l, sizeof(float) * (size_t)nv);
    }
    CHECK(visvm_get_logits(ctx, nt) == NULL && visvm_get_logits(ctx, -1) == visvm_get_logits(ctx, nt - 1));
    float worst = 0;
    for (int i = 0; i < nt; i++) {
        CHECK(visvm_decode_tokens(ctx2, toks + i, 1, false) == VISVM_OK);
        const float *l = visvm_get_logits(ctx2, -1);
        if (l) worst = fmaxf(worst, max_diff(l, all + (size_t)i * nv, nv));
        CHECK(visvm_get_logits(ctx2, 1) == NULL); // only the last row without all_logits
    }
    CHECKF(worst < 1e-3f, "token by token vs one call: %g", worst);
    // truncate and decode the tail again: the same logits
    CHECK(visvm_truncate(ctx, 4) == VISVM_OK && visvm_n_past(ctx) == 4 && visvm_get_logits(ctx, -1) == NULL);
    CHECK(visvm_decode_tokens(ctx, toks + 4, nt - 4, false) == VISVM_OK && visvm_n_past(ctx) == nt);
    const float *l = visvm_get_logits(ctx, -1);
    CHECKF(l && max_diff(l, all + (size_t)(nt - 1) * nv, nv) < 1e-3f, "after truncate: %g",
           l ? max_diff(l, all + (size_t)(nt - 1) * nv, nv) : -1.0);
    // bad calls leave the sequence as it was and say why
    CHECK(visvm_truncate(ctx, -1) == VISVM_ERR_INVALID && visvm_n_past(ctx) == nt);
    CHECK(strstr(visvm_context_error(ctx), "negative") != NULL);
    CHECK(visvm_truncate(ctx, nt + 10) == VISVM_OK && visvm_n_past(ctx) == nt); // keeps everything
    int32_t oov = nv + 3;
    CHECK(visvm_decode_tokens(ctx, &oov, 1, false) != VISVM_OK && visvm_n_past(ctx) == nt);
    CHECK(strlen(visvm_context_error(ctx)) > 0);
    CHECK(visvm_decode_tokens(ctx, NULL, 1, false) != VISVM_OK && visvm_decode_tokens(ctx, toks, 0, false) != VISVM_OK);
    CHECK(visvm_decode_tokens(ctx, toks, -3, false) != VISVM_OK && visvm_n_past(ctx) == nt);
    int32_t *many = malloc(sizeof(int32_t) * 300);
    for (int i = 0; i < 300; i++) many[i] = toks[1 + i % (nt - 1)];
    CHECK(visvm_decode_tokens(ctx, many, 300, false) == VISVM_ERR_RANGE && visvm_n_past(ctx) == nt); // context full
    CHECK(strstr(visvm_context_error(ctx), "context") != NULL);
    free(many);

    // an image: embed, then the embeddings through decode_embd
    vv_world_params wp = vv_world_default_params();
    vv_world_scene sc;
    vv_image img = {0};
    vv_error e = {0};
    char png[64];
    snprintf(png, sizeof(png), "/tmp/visvm_test_api_%d.png", (int)getpid());
    CHECK(vv_world_scene_make(&wp, 3000000 + 17, &sc, &e) == VISVM_OK && vv_world_render(&wp, &sc, &img, NULL, &e) == 0);
    CHECK(vv_image_save_png(&img, png, &e) == VISVM_OK);
    float *embd = NULL;
    int n_img = 0;
    CHECK(visvm_image_embed_file(ctx2, png, &embd, &n_img) != VISVM_OK && embd == NULL); // no mmproj
    CHECK(strstr(visvm_context_error(ctx2), "mmproj") != NULL);
    CHECK(visvm_image_embed_file(ctx, "/nonexistent.png", &embd, &n_img) != VISVM_OK && embd == NULL);
    CHECKF(visvm_image_embed_file(ctx, png, &embd, &n_img) == VISVM_OK, "%s", visvm_context_error(ctx));
    CHECK(embd && n_img > 0 && n_img < 256);
    if (embd) {
        bool finite = true;
        for (size_t i = 0; i < (size_t)n_img * ne; i++) finite &= isfinite(embd[i]);
        CHECK(finite);
        CHECK(visvm_truncate(ctx, 0) == VISVM_OK && visvm_n_past(ctx) == 0);
        CHECK(visvm_decode_tokens(ctx, toks, 1, false) == VISVM_OK);
        CHECK(visvm_decode_embd(ctx, embd, n_img, false) == VISVM_OK && visvm_n_past(ctx) == 1 + n_img);
        CHECK(visvm_get_logits(ctx, -1) != NULL);
        CHECK(visvm_decode_embd(ctx, NULL, n_img, false) != VISVM_OK && visvm_n_past(ctx) == 1 + n_img);
    }
    visvm_free_floats(embd);

    // captions: greedy is deterministic, a shorter budget gives a prefix, stop ends at the string
    visvm_sample_params sp = visvm_sample_default_params();
    sp.n_predict = 40;
    char *c40 = NULL, *c8 = NULL, *cs = NULL, *r1 = NULL, *r2 = NULL;
    CHECKF(visvm_caption(ctx, png, "Describe the image.", &sp, &c40) == VISVM_OK, "%s", visvm_context_error(ctx));
    sp.n_predict = 8;
    CHECK(visvm_caption(ctx, png, "Describe the image.", &sp, &c8) == VISVM_OK);
    CHECKF(c40 && c8 && strlen(c8) > 0 && strlen(c8) < strlen(c40) && !strncmp(c8, c40, strlen(c8)), "'%s' / '%s'",
           c8 ? c8 : "", c40 ? c40 : "");
    sp.n_predict = 40;
    sp.stop = ".";
    CHECK(visvm_caption(ctx, png, "Describe the image.", &sp, &cs) == VISVM_OK);
    CHECKF(cs && strlen(cs) > 1 && cs[strlen(cs) - 1] == '.' && strchr(cs, '.') == cs + strlen(cs) - 1 &&
               c40 && !strncmp(cs, c40, strlen(cs)),
           "stop: '%s'", cs ? cs : "");
    sp.stop = NULL;
    sp.temperature = 0.9f;
    sp.seed = 7;
    CHECK(visvm_caption(ctx, png, "Describe the image.", &sp, &r1) == VISVM_OK);
    CHECK(visvm_caption(ctx2, png, "Describe the image.", &sp, &r2) != VISVM_OK); // no mmproj
    CHECK(visvm_caption(ctx, png, "Describe the image.", &sp, &r2) == VISVM_OK);
    CHECKF(r1 && r2 && !strcmp(r1, r2), "same seed: '%s' / '%s'", r1 ? r1 : "", r2 ? r2 : "");
    char *bad_out = (char *)1;
    CHECK(visvm_caption(ctx, "/nonexistent.png", "x", &sp, &bad_out) != VISVM_OK && bad_out == NULL);
    sp.n_predict = -1;
    CHECK(visvm_caption(ctx, png, "x", &sp, &bad_out) != VISVM_OK && bad_out == NULL);
    sp = visvm_sample_default_params();
    sp.top_p = NAN;
    CHECK(visvm_caption(ctx, png, "x", &sp, &bad_out) != VISVM_OK && bad_out == NULL);
    CHECK(visvm_caption(NULL, png, "x", &sp, &bad_out) != VISVM_OK);
    // the model handles serve contexts on several threads at once: same greedy captions
    {
        job_t jobs[3];
        pthread_t th[3];
        for (int i = 0; i < 3; i++) {
            jobs[i] = (job_t){m, mm, png, NULL, -100};
            CHECK(pthread_create(&th[i], NULL, caption_job, &jobs[i]) == 0);
        }
        for (int i = 0; i < 3; i++) {
            pthread_join(th[i], NULL);
            CHECKF(jobs[i].rc == VISVM_OK && jobs[i].text && c40 && !strcmp(jobs[i].text, c40), "thread %d: '%s'", i,
                   jobs[i].text ? jobs[i].text : "");
            visvm_free_string(jobs[i].text);
        }
    }
    visvm_free_string(c40);
    visvm_free_string(c8);
    visvm_free_string(cs);
    visvm_free_string(r1);
    visvm_free_string(r2);

    // NULL handles
    CHECK(visvm_n_past(NULL) == 0 && visvm_get_logits(NULL, 0) == NULL && visvm_truncate(NULL, 0) != VISVM_OK);
    CHECK(visvm_decode_tokens(NULL, toks, 1, false) != VISVM_OK && strlen(visvm_context_error(NULL)) > 0);
    visvm_free_string(NULL);
    visvm_free_floats(NULL);
    visvm_context_free(NULL);
    visvm_mmproj_free(NULL);
    visvm_model_free(NULL);

    unlink(png);
    vv_image_free(&img);
    vv_world_scene_free(&sc);
    free(all);
    visvm_context_free(ctx);
    visvm_context_free(ctx2);
    visvm_mmproj_free(mm);
    visvm_model_free(m);
    return tc_result("test_api");
}
