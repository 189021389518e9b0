// test_world_eval.c - sentence splitting (decimals, abbreviations), and world
// CHAIR on known answers: reference captions have no hallucination, full
// recall and the right, followed count; a swapped class is one hallucination.
#include <stdlib.h>
#include <string.h>

#include "eval/world_eval.h"
#include "tcheck.h"

int main(void) {
    char **s = NULL;
    int n = 0;
    CHECK(vv_split_sentences("It costs 3.50 dollars. Mr. Smith came! Did he? Yes", &s, &n) == VISVM_OK);
    CHECK(n == 4);
    if (n == 4) {
        CHECK(!strcmp(s[0], "It costs 3.50 dollars."));
        CHECK(!strcmp(s[1], "Mr. Smith came!"));
        CHECK(!strcmp(s[2], "Did he?"));
        CHECK(!strcmp(s[3], "Yes"));
    }
    vv_free_strings(s, n);
    CHECK(vv_split_sentences("   ", &s, &n) == VISVM_OK && n == 0);
    vv_free_strings(s, n);

    vv_error e = {0};
    vv_chair *ch = NULL;
    CHECK(vv_world_chair(&ch, &e) == VISVM_OK);
    if (!ch) return 1;
    CHECK(vv_chair_n_classes(ch) == vv_world_n_classes());
    vv_world_params wp = vv_world_default_params();
    vv_world_totals t = {0};
    for (uint64_t seed = 2000000; seed < 2000200; seed++) {
        vv_world_scene sc;
        CHECK(vv_world_scene_make(&wp, seed, &sc, &e) == VISVM_OK);
        char *cap[2];
        CHECK(vv_world_captions(&sc, seed, 2, cap, &e) == VISVM_OK);
        for (int k = 0; k < 2; k++) {
            vv_caption_stats cs;
            CHECK(vv_world_score_caption(ch, &sc, cap[k], &cs, NULL, &e) == VISVM_OK);
            vv_world_totals_add(&t, &sc, &cs);
            free(cap[k]);
        }
        vv_world_scene_free(&sc);
    }
    CHECK(vv_chair_s(&t.chair) == 0 && vv_chair_i(&t.chair) == 0);
    CHECK(vv_chair_recall(&t.chair) == 100.0);
    CHECK(t.counts_stated > 300 && t.counts_right == t.counts_stated && t.counts_followed == t.counts_stated);
    // a hand-made scene: one red cup at the top left; the caption adds a clock and says two objects
    vv_world_scene sc;
    CHECK(vv_world_scene_make(&wp, 2000005, &sc, &e) == VISVM_OK);
    char buf[512];
    const char *cls0 = vv_world_class_name(sc.obj[0].cls);
    const char *other = strcmp(cls0, "clock") ? "clock" : "kite";
    snprintf(buf, sizeof(buf), "There are two objects. A small red %s is here. A big %s is there.", cls0, other);
    vv_caption_stats cs;
    vv_ivec hal = {0};
    CHECK(vv_world_score_caption(ch, &sc, buf, &cs, &hal, &e) == VISVM_OK);
    CHECK(sc.n_objects == 1); // seed 2000005: one small green umbrella
    CHECK(cs.chair.n_mentions == 2 && cs.chair.n_halluc == 1);
    CHECK(hal.n == 1 && !strcmp(vv_chair_class_name(ch, hal.v[0]), other));
    CHECK(cs.stated_count == 2 && cs.n_object_sentences == 2 && cs.n_sentences == 3);
    vv_ivec_free(&hal);
    vv_world_scene_free(&sc);
    vv_chair_free(ch);
    return tc_result("test_world_eval");
}
