// test_clip.c - the vision side beyond the golden numbers (which `visvm golden`
// checks): the two vision modes, LLaVA-1.6 unpad + image_newline packing and
// its token-count formula, clip.vision.feature_layer, and bad mmproj files.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "model/clip.h"
#include "tcheck.h"

static char *gpath(const char *dir, const char *rel) {
    static char buf[8][1024];
    static int k = 0;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, rel);
    return buf[k];
}

// Copy of an mmproj with keys edited by `edit` (memory image; *mem must be freed).
static vv_gguf *edited(const char *path, void (*edit)(vv_gguf_writer *), void **mem) {
    vv_gguf *src = NULL;
    vv_error e = {0};
    if (vv_gguf_open(path, &src, &e)) return NULL;
    vv_gguf_writer *w = vv_gguf_writer_create();
    vv_gguf_copy_kv(w, src);
    for (int64_t i = 0; i < vv_gguf_n_tensors(src); i++) {
        const vv_tensor *t = vv_gguf_tensor(src, i);
        vv_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
    }
    edit(w);
    size_t size = 0;
    vv_gguf *out = NULL;
    if (!vv_gguf_writer_write_mem(w, mem, &size, &e)) vv_gguf_open_mem(*mem, size, &out, &e);
    vv_gguf_writer_free(w);
    vv_gguf_close(src);
    return out;
}

static void set_fl(vv_gguf_writer *w) { vv_gguf_set_i32(w, "clip.vision.feature_layer", -2); }
static void bad_proj(vv_gguf_writer *w) { vv_gguf_set_str(w, "clip.projector_type", "resampler"); }
static void bad_std(vv_gguf_writer *w) {
    float s[3] = {0.2f, 0.0f, 0.2f};
    vv_gguf_set_arr(w, "clip.vision.image_std", VV_GGUF_FLOAT32, s, 3);
}
static void bad_pin(vv_gguf_writer *w) {
    int32_t p[4] = {56, 112, 57, 56};
    vv_gguf_set_arr(w, "clip.vision.image_grid_pinpoints", VV_GGUF_INT32, p, 4);
}

int main(void) {
    const char *dir = tc_golden_dir();
    if (!dir) return TC_SKIP;
    vv_error e = {0};
    vv_image img = {0};
    CHECK(vv_image_load_file(gpath(dir, "images/test-image.png"), &img, &e) == VISVM_OK);

    // LLaVA-1.6 in both modes
    vv_clip *ref = NULL, *cpp = NULL;
    CHECK(vv_clip_load_file(gpath(dir, "models/mmproj-llava16-f16.gguf"), VISVM_VISION_REFERENCE, &ref, &e) == 0);
    CHECK(vv_clip_load_file(gpath(dir, "models/mmproj-llava16-f16.gguf"), VISVM_VISION_LLAMACPP, &cpp, &e) == 0);
    if (!ref || !cpp) return 1;
    CHECK(ref->n_layer == 3 && ref->n_layer_run == 3); // converter files already end at the feature layer
    CHECK(cpp->n_layer_run == 2);                      // clip.cpp skips one more
    CHECK(ref->image_newline != NULL && ref->pre.anyres);
    vv_image_batch b = {0};
    CHECK(vv_preprocess(&img, &ref->pre, &b, &e) == VISVM_OK);
    CHECK(b.n == 5 && b.grid_w == 2 && b.grid_h == 2 && b.orig_w == 200 && b.orig_h == 150);
    // token count: 200x150 on a 2x2 grid of 4x4 patches -> 8x8 map; W/H = 1.33 > 1, so
    // new_h = int(150 * 8 / 200) = 6, pad = 1, rows 1..6 kept: 16 + 6 * (8 + 1) = 70
    CHECK(vv_clip_n_image_tokens(ref, &b) == 70);
    CHECK(vv_clip_n_image_tokens(cpp, &b) == 80);
    float *emb = NULL, *crops = NULL;
    int n = 0;
    CHECK(vv_clip_embed(ref, NULL, &b, &emb, &n, &crops, &e) == VISVM_OK);
    CHECK(n == 70);
    if (emb && crops && n == 70) {
        const int D = ref->n_embd_out, np = ref->n_patches;
        float nl[256];
        vv_dequantize_row(ref->image_newline->type, ref->image_newline->data, nl, D);
        CHECK(!memcmp(emb, crops, (size_t)np * D * sizeof(float))); // base image first
        int bad = 0;
        for (int r = 0; r < 6; r++) {
            int y = r + 1; // first kept row of the 8x8 map
            for (int x = 0; x < 8; x++) {
                int gy = y / 4, gx = x / 4;
                const float *want = crops + (size_t)(1 + gy * 2 + gx) * np * D + (size_t)((y % 4) * 4 + x % 4) * D;
                if (memcmp(emb + (size_t)(np + r * 9 + x) * D, want, (size_t)D * sizeof(float))) bad++;
            }
            if (memcmp(emb + (size_t)(np + r * 9 + 8) * D, nl, (size_t)D * sizeof(float))) bad++;
        }
        CHECKF(bad == 0, "%d rows misplaced in the unpadded grid", bad);
    }
    // the reference mode runs one more layer and exact GELU: different numbers, same shapes
    float *emb2 = NULL;
    int n2 = 0;
    CHECK(vv_clip_embed(cpp, NULL, &b, &emb2, &n2, NULL, &e) == VISVM_OK && n2 == 80);
    if (emb && emb2) {
        double d = 0;
        for (int i = 0; i < 16 * ref->n_embd_out; i++) d = fmax(d, fabs(emb[i] - emb2[i]));
        CHECK(d > 1e-3);
    }
    vv_afree(emb);
    vv_afree(emb2);
    vv_afree(crops);
    vv_image_batch_free(&b);

    // a tall image: the width is unpadded instead
    {
        vv_image tall = {0};
        CHECK(vv_image_alloc(&tall, 60, 170, &e) == VISVM_OK);
        memset(tall.rgb, 90, (size_t)60 * 170 * 3);
        vv_image_batch bt = {0};
        CHECK(vv_preprocess(&tall, &ref->pre, &bt, &e) == VISVM_OK);
        // best pinpoint (56, 168): grid 1x3 -> map 12 rows x 4 cols; W/H = 0.35 > 4/12 = 0.33,
        // so rows: new_h = int(170 * (4 / 60)) = 11, pad = 0 -> 12 rows x (4 + 1) + 16 = 76
        CHECK(bt.grid_w == 1 && bt.grid_h == 3);
        CHECK(vv_clip_n_image_tokens(ref, &bt) == 76);
        vv_image_batch_free(&bt);
        vv_image_free(&tall);
    }

    // clip.vision.feature_layer = -2 selects hidden state n_layer - 1 = 2 layers
    {
        void *mem = NULL;
        vv_gguf *g = edited(gpath(dir, "models/mmproj-llava15-f16.gguf"), set_fl, &mem);
        vv_clip *c = NULL;
        CHECK(g && vv_clip_load(g, VISVM_VISION_REFERENCE, &c, &e) == VISVM_OK);
        CHECK(c && c->n_layer_run == 2);
        vv_clip_free(c);
        free(mem);
    }
    // bad files: clear errors naming the problem
    {
        struct { void (*edit)(vv_gguf_writer *); int code; const char *word; } cases[] = {
            {bad_proj, VISVM_ERR_UNSUPPORTED, "resampler"},
            {bad_std, VISVM_ERR_FORMAT, "image_std"},
            {bad_pin, VISVM_ERR_FORMAT, "pinpoints"},
        };
        for (int i = 0; i < 3; i++) {
            void *mem = NULL;
            vv_gguf *g = edited(gpath(dir, "models/mmproj-llava16-f16.gguf"), cases[i].edit, &mem);
            vv_clip *c = NULL;
            int rc = g ? vv_clip_load(g, VISVM_VISION_REFERENCE, &c, &e) : -100;
            CHECKF(rc == cases[i].code && strstr(e.msg, cases[i].word), "case %d: rc %d, '%s'", i, rc, e.msg);
            CHECK(c == NULL);
            free(mem);
        }
        vv_clip *c = NULL;
        CHECK(vv_clip_load_file(gpath(dir, "models/tiny-llama-f16.gguf"), 0, &c, &e) == VISVM_ERR_UNSUPPORTED);
        CHECK(strstr(e.msg, "llama") != NULL);
    }
    vv_clip_free(ref);
    vv_clip_free(cpp);
    vv_image_free(&img);
    return tc_result("test_clip");
}
