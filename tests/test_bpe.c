// test_bpe.c - BPE vocabulary training on the synthetic world's captions:
// layout (specials, bytes), every corpus word becomes one token, round trips,
// determinism, and byte fallback for unseen text.
#include <stdlib.h>
#include <string.h>

#include "tcheck.h"
#include "text/bpe.h"
#include "world/world.h"

int main(void) {
    vv_world_params p = vv_world_default_params();
    vv_error e = {0};
    enum { NS = 300 };
    char *caps[NS * 3];
    int nc = 0;
    for (int i = 0; i < NS; i++) {
        vv_world_scene s;
        CHECK(vv_world_scene_make(&p, (uint64_t)i, &s, &e) == VISVM_OK);
        char *c3[3];
        CHECK(vv_world_captions(&s, (uint64_t)i, 3, c3, &e) == VISVM_OK);
        for (int k = 0; k < 3; k++) caps[nc++] = c3[k];
        vv_world_scene_free(&s);
    }
    const char *specials[1] = {"<image>"};
    vv_bpe_vocab b1, b2;
    CHECK(vv_bpe_train((const char *const *)caps, (size_t)nc, specials, 1, 2000, 2, &b1, &e) == VISVM_OK);
    CHECK(vv_bpe_train((const char *const *)caps, (size_t)nc, specials, 1, 2000, 2, &b2, &e) == VISVM_OK);
    CHECK(b1.n == b2.n);
    int same = b1.n == b2.n;
    for (int i = 0; same && i < b1.n; i++) same = !strcmp(b1.texts[i], b2.texts[i]) && b1.scores[i] == b2.scores[i];
    CHECK(same);
    printf("vocabulary: %d tokens\n", b1.n);
    CHECK(!strcmp(b1.texts[0], "<unk>") && !strcmp(b1.texts[1], "<s>") && !strcmp(b1.texts[2], "</s>"));
    CHECK(!strcmp(b1.texts[3], "<image>") && b1.types[3] == VV_TOKEN_USER_DEFINED);
    CHECK(!strcmp(b1.texts[4], "<0x00>") && !strcmp(b1.texts[4 + 255], "<0xFF>") && b1.types[4 + 65] == VV_TOKEN_BYTE);
    CHECK(b1.n < 1200);
    vv_vocab *v = NULL;
    CHECK(vv_bpe_to_vocab(&b1, &v, &e) == VISVM_OK);
    if (v) {
        // every caption: short token sequences (about one token per word) and exact round trips
        long words = 0, toks = 0;
        int bad = 0;
        for (int i = 0; i < nc; i++) {
            vv_ivec ids = {0};
            vv_buf out = {0};
            CHECK(vv_tokenize(v, caps[i], strlen(caps[i]), false, false, &ids, &e) == VISVM_OK);
            CHECK(vv_detokenize(v, ids.v, ids.n, false, true, &out) == VISVM_OK);
            if (!out.v || strcmp(out.v, caps[i])) bad++;
            for (const char *q = caps[i]; *q; q++) words += *q == ' ';
            words++;
            toks += (long)ids.n;
            for (size_t k = 0; k < ids.n; k++)
                if (vv_vocab_type(v, ids.v[k]) == VV_TOKEN_BYTE) bad++;
            vv_ivec_free(&ids);
            vv_buf_free(&out);
        }
        CHECKF(bad == 0, "%d captions did not round trip or needed byte tokens", bad);
        printf("tokens per word: %.3f\n", (double)toks / words);
        CHECK((double)toks / words < 1.4);
        // unseen text falls back to bytes and still round trips; <image> is one token
        const char *odd = "Zebra 42 \xc3\xa9t\xc3\xa9 <image>";
        vv_ivec ids = {0};
        vv_buf out = {0};
        CHECK(vv_tokenize(v, odd, strlen(odd), true, true, &ids, &e) == VISVM_OK);
        bool has_img = false;
        for (size_t k = 0; k < ids.n; k++) has_img |= ids.v[k] == 3;
        CHECK(has_img && ids.v[0] == 1);
        CHECK(vv_detokenize(v, ids.v + 1, ids.n - 1, true, true, &out) == VISVM_OK);
        CHECKF(out.v && !strcmp(out.v, odd), "got '%s'", out.v ? out.v : "");
        vv_ivec_free(&ids);
        vv_buf_free(&out);
        vv_vocab_free(v);
    }
    vv_bpe_vocab_free(&b1);
    vv_bpe_vocab_free(&b2);
    for (int i = 0; i < nc; i++) free(caps[i]);
    return tc_result("test_bpe");
}
