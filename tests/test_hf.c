// test_hf.c - Hugging Face pieces: SentencePiece model parsing (a hand-built
// protobuf, malformed inputs), best-resolution choice, PIL resize invariants,
// and (when ../shared/golden-hf is present) a value-model known answer.
#include <unistd.h>

#include "model/hf.h"
#include "tcheck.h"
#include "text/spm_model.h"

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        p[n++] = b | (v ? 0x80 : 0);
    } while (v);
    return n;
}

// piece message: 1 = text, 2 = score (fixed32), 3 = type
static size_t put_piece(uint8_t *p, const char *text, float score, int type) {
    uint8_t body[64];
    size_t n = 0, l = strlen(text);
    body[n++] = 0x0a;
    n += put_varint(body + n, l);
    memcpy(body + n, text, l);
    n += l;
    body[n++] = 0x15;
    memcpy(body + n, &score, 4);
    n += 4;
    body[n++] = 0x18;
    n += put_varint(body + n, (uint64_t)type);
    size_t o = 0;
    p[o++] = 0x0a; // ModelProto.pieces
    o += put_varint(p + o, n);
    memcpy(p + o, body, n);
    return o + n;
}

static size_t build_model(uint8_t *buf, int model_type) {
    size_t n = 0;
    n += put_piece(buf + n, "<unk>", 0, 2);
    n += put_piece(buf + n, "<s>", 0, 3);
    n += put_piece(buf + n, "</s>", 0, 3);
    n += put_piece(buf + n, "\xe2\x96\x81", -1, 1); // ▁
    n += put_piece(buf + n, "a", -2, 1);
    n += put_piece(buf + n, "b", -2, 1);
    n += put_piece(buf + n, "\xe2\x96\x81" "a", -0.5f, 1);
    n += put_piece(buf + n, "ab", -0.25f, 1);
    // trainer_spec: model_type (3), byte_fallback (35) = 0
    buf[n++] = 0x12;
    buf[n++] = 2;
    buf[n++] = 0x18;
    buf[n++] = (uint8_t)model_type;
    // normalizer_spec: name "identity" (1), add_dummy_prefix 1 (3), remove_extra_whitespaces 0 (4)
    buf[n++] = 0x1a;
    buf[n++] = 14;
    buf[n++] = 0x0a;
    buf[n++] = 8;
    memcpy(buf + n, "identity", 8);
    n += 8;
    buf[n++] = 0x18;
    buf[n++] = 1;
    buf[n++] = 0x20;
    buf[n++] = 0;
    return n;
}

static void test_spm(void) {
    uint8_t buf[512];
    size_t n = build_model(buf, 2);
    vv_spm_model m;
    vv_error e = {0};
    int rc = vv_spm_model_parse(buf, n, &m, &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    if (rc) return;
    CHECK(m.n == 8 && m.model_type == 2 && !m.remove_extra_whitespaces && m.add_dummy_prefix);
    CHECK(!strcmp(m.normalizer, "identity") && m.types[0] == VV_TOKEN_UNKNOWN && m.types[1] == VV_TOKEN_CONTROL);
    CHECK(m.scores[7] == -0.25f && !strcmp(m.pieces[7], "ab"));
    vv_added_token added[] = {{"<image>", 9, true}};
    vv_vocab *v = NULL;
    rc = vv_spm_vocab_create(&m, added, 1, true, false, &v, &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    if (!rc) {
        CHECK(vv_vocab_n(v) == 10 && vv_vocab_type(v, 8) == VV_TOKEN_UNUSED && vv_vocab_type(v, 9) == VV_TOKEN_CONTROL);
        vv_ivec ids = {0};
        // "ab<image>ab": BOS; each chunk gets its own dummy prefix, and in "▁ab" the
        // merge "ab" (score -0.25) wins over "▁a" (-0.5)
        CHECK(vv_tokenize(v, "ab<image>ab", 11, true, true, &ids, &e) == VISVM_OK);
        int32_t want[] = {1, 3, 7, 9, 3, 7};
        CHECKF(ids.n == 6 && !memcmp(ids.v, want, sizeof(want)), "got %zu ids", ids.n);
        vv_ivec_free(&ids);
        vv_vocab_free(v);
    }
    // an added token whose id collides with a model piece of another text
    vv_added_token bad[] = {{"<image>", 4, true}};
    CHECK(vv_spm_vocab_create(&m, bad, 1, true, false, &v, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "<image>"));
    vv_spm_model_free(&m);
    // unigram models are refused, not tokenized wrongly
    n = build_model(buf, 1);
    CHECK(vv_spm_model_parse(buf, n, &m, &e) == VISVM_OK);
    CHECK(vv_spm_vocab_create(&m, NULL, 0, true, false, &v, &e) == VISVM_ERR_UNSUPPORTED && strstr(e.msg, "model type"));
    vv_spm_model_free(&m);
    // every truncation of the model fails cleanly or parses fewer pieces (never crashes)
    n = build_model(buf, 2);
    for (size_t cut = 0; cut < n; cut++) {
        if (vv_spm_model_parse(buf, cut, &m, &e) == VISVM_OK) {
            CHECK(m.n <= 8);
            vv_spm_model_free(&m);
        } else {
            CHECK(e.msg[0] != 0);
        }
    }
    uint8_t junk[6] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    CHECK(vv_spm_model_parse(junk, sizeof(junk), &m, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "malformed"));
    CHECK(vv_spm_model_parse(junk, 0, &m, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "no pieces"));
}

static void test_image(void) {
    // README table: (H, W) = (60, 90) -> (112, 112); (44, 48) -> (56, 112)
    const int pp[5][2] = {{56, 112}, {112, 56}, {112, 112}, {168, 56}, {56, 168}};
    CHECK(vv_hf_select_best_resolution(60, 90, pp, 5) == 2);
    CHECK(vv_hf_select_best_resolution(44, 48, pp, 5) == 0);
    CHECK(vv_hf_select_best_resolution(0, 48, pp, 5) == -1);
    // real LLaVA-1.6 pinpoints: a 640x480 image takes 672x672... as HF: (h, w)
    const int real[5][2] = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};
    CHECK(vv_hf_select_best_resolution(480, 640, real, 5) == 2);
    CHECK(vv_hf_select_best_resolution(200, 300, real, 5) == 0);
    // PIL resize: same size is a copy; a constant image stays constant (weights sum to 1)
    vv_image src = {0}, dst = {0};
    vv_error e = {0};
    CHECK(vv_image_alloc(&src, 7, 5, &e) == VISVM_OK);
    for (int i = 0; i < 7 * 5 * 3; i++) src.rgb[i] = (uint8_t)(i * 37);
    CHECK(vv_pil_resize_bicubic(&src, 7, 5, &dst, &e) == VISVM_OK && !memcmp(src.rgb, dst.rgb, 105));
    vv_image_free(&dst);
    memset(src.rgb, 90, 105);
    CHECK(vv_pil_resize_bicubic(&src, 23, 3, &dst, &e) == VISVM_OK && dst.w == 23 && dst.h == 3);
    int bad = 0;
    for (int i = 0; i < 23 * 3 * 3; i++) bad += dst.rgb[i] != 90;
    CHECK(bad == 0);
    vv_image_free(&dst);
    CHECK(vv_pil_resize_bicubic(&src, 0, 3, &dst, &e) == VISVM_ERR_INVALID);
    vv_image_free(&src);
}

static void test_golden_value(void) {
    const char *d = getenv("VISVM_GOLDEN_HF_DIR");
    char path[4096];
    snprintf(path, sizeof(path), "%s/visvm-value-tiny", d ? d : VISVM_SOURCE_DIR "/../shared/golden-hf");
    if (!vv_hf_is_dir(path)) {
        printf("golden-hf value model absent at %s: value known answer skipped\n", path);
        return;
    }
    vv_hf_llava *m = NULL;
    vv_error e = {0};
    int rc = vv_hf_load(path, &m, &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    if (rc) return;
    CHECK(m->is_value && m->max_length == 160 && m->n_embd == 128 && m->v_layers_run == 2);
    char ip[4200];
    snprintf(ip, sizeof(ip), "%s/../images/landscape_90x60.png", path);
    vv_image img = {0};
    CHECK(vv_image_load_file(ip, &img, &e) == VISVM_OK);
    float ve = 0, vs = 0;
    const char *s = "The image shows a red circle on a blue background.";
    CHECK(vv_hf_value(m, NULL, &img, s, VV_HF_PAD_EAGER, &ve, NULL, NULL, NULL, &e) == VISVM_OK);
    CHECK(vv_hf_value(m, NULL, &img, s, VV_HF_PAD_SDPA, &vs, NULL, NULL, NULL, &e) == VISVM_OK);
    CHECK_NEAR(ve, 0.6128752, 1e-4);
    CHECK_NEAR(vs, 0.3887191, 1e-4);
    vv_hf_free(m);
    snprintf(path, sizeof(path), "%s/llava-next-tiny", d ? d : VISVM_SOURCE_DIR "/../shared/golden-hf");
    rc = vv_hf_load(path, &m, &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    if (!rc) {
        CHECK(!m->is_value); // the base model is not a value model
        CHECK(vv_hf_value(m, NULL, &img, "x", VV_HF_PAD_SDPA, &vs, NULL, NULL, NULL, &e) == VISVM_ERR_INVALID);
        vv_hf_free(m);
    }
    vv_image_free(&img);
    // not a model directory
    CHECK(vv_hf_load("/tmp", &m, &e) == VISVM_ERR_NOT_FOUND && m == NULL);
    // JSON numbers out of int range are refused with the file named, before
    // any cast (fuzz_hf found the UB: added_tokens.json {"<": 5.5e122})
    {
        char tmp[] = "/tmp/visvm_test_hf_XXXXXX";
        CHECK(mkdtemp(tmp) != NULL);
        static const char *files[] = {"config.json", "preprocessor_config.json", "tokenizer_config.json",
                                      "tokenizer.model", "model.safetensors.index.json",
                                      "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                                      "chat_template.json"};
        char a[4300], b[4300];
        for (int i = 0; i < 8; i++) {
            snprintf(a, sizeof(a), "%s/%s", path, files[i]);
            snprintf(b, sizeof(b), "%s/%s", tmp, files[i]);
            CHECK(symlink(a, b) == 0);
        }
        CHECKF(vv_hf_load(tmp, &m, &e) == VISVM_OK, "%s", e.msg); // the links alone load
        vv_hf_free(m);
        m = NULL;
        const char *bad[][2] = {{"added_tokens.json", "{\"<\": 5.5e122}"},
                                {"added_tokens.json", "{\"<x>\": 2.5}"},
                                {"preprocessor_config.json", "{\"crop_size\": 1e300}"}};
        const char *why[] = {"added_tokens.json: id of '<' is 5.5e+122", "added_tokens.json: id of '<x>' is 2.5",
                             "crop_size"};
        for (int k = 0; k < 3; k++) {
            snprintf(b, sizeof(b), "%s/%s", tmp, bad[k][0]);
            unlink(b);
            CHECK(vv_write_file_atomic(b, bad[k][1], strlen(bad[k][1]), &e) == VISVM_OK);
            CHECKF(vv_hf_load(tmp, &m, &e) == VISVM_ERR_FORMAT && m == NULL && strstr(e.msg, why[k]), "case %d: %s", k,
                   e.msg);
            unlink(b);
            if (!strcmp(bad[k][0], "preprocessor_config.json")) {
                snprintf(a, sizeof(a), "%s/%s", path, bad[k][0]);
                CHECK(symlink(a, b) == 0);
            }
        }
        for (int i = 0; i < 8; i++) {
            snprintf(b, sizeof(b), "%s/%s", tmp, files[i]);
            unlink(b);
        }
        rmdir(tmp);
    }
}

int main(void) {
    test_spm();
    test_image();
    test_golden_value();
    return tc_result("test_hf");
}
