// test_world_eval.c - sentence splitting (decimals, abbreviations), and world
// CHAIR on known answers: reference captions have no hallucination, full
// recall and the right, followed count; a swapped class is one hallucination.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/svg.h"
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
    // sentence labels against that scene: present-only 1, naming an absent class 0, no object -1
    snprintf(buf, sizeof(buf), "A small red %s is here.", cls0);
    CHECK(vv_world_sentence_label(ch, &sc, buf) == 1);
    snprintf(buf, sizeof(buf), "A %s stands next to a %s.", cls0, other);
    CHECK(vv_world_sentence_label(ch, &sc, buf) == 0);
    CHECK(vv_world_sentence_label(ch, &sc, "There are two objects.") == -1);
    // distinct sentences keep their first occurrence; scene lookup by relative or absolute image path
    snprintf(buf, sizeof(buf), "A small red %s is here.", cls0);
    const char *sents[4] = {buf, "There are two objects.", buf, "A big clock and a kite."};
    int keep[4];
    signed char lab[4];
    CHECK(vv_world_label_distinct(ch, &sc, sents, 4, keep, lab) == 3);
    CHECK(keep[0] == 0 && keep[1] == 1 && keep[2] == 3 && lab[0] == 1 && lab[1] == -1 && lab[2] == 0);
    int hint = 0;
    snprintf(sc.image, sizeof(sc.image), "images/2000005.png");
    CHECK(vv_world_find_scene(&sc, 1, "images/2000005.png", &hint) == &sc);
    CHECK(vv_world_find_scene(&sc, 1, "/data/w/images/2000005.png", &hint) == &sc);
    CHECK(vv_world_find_scene(&sc, 1, "/data/w/myimages/2000005.png", &hint) == NULL);
    // within-image AUC, worked by hand: image 1 goods {0.9, 0.5} vs bads {0.7, 0.5}:
    // 0.9 beats both (2), 0.5 loses to 0.7 and ties 0.5 (0.5) -> 2.5 of 4 pairs;
    // image 2 has no bad sentence (no pair); image 3: good 0.2 < bad 0.3 -> 0 of 1
    vv_auc auc = {0};
    vv_auc_add_image(&auc, (const float[]){0.9f, 0.7f, 0.5f, 0.5f, 0.1f}, (const signed char[]){1, 0, 1, 0, -1}, 5);
    vv_auc_add_image(&auc, (const float[]){0.4f}, (const signed char[]){1}, 1);
    vv_auc_add_image(&auc, (const float[]){0.2f, 0.3f}, (const signed char[]){1, 0}, 2);
    CHECK(auc.pairs == 5 && auc.images == 2 && auc.n_good == 4 && auc.n_bad == 3);
    CHECK(vv_auc_value(&auc) == 0.5); // 2.5 / 5
    vv_auc none = {0};
    CHECK(vv_auc_value(&none) != vv_auc_value(&none)); // NaN without pairs
    // exact sign test, hand-worked: 0 of 10 -> 2 / 2^10; 5 of 20 -> 2 (1+20+190+1140+4845+15504) / 2^20;
    // 2 of 5 -> 2 x 16/32 = 1 (capped); symmetric; nothing discordant -> 1
    CHECK(fabs(vv_sign_test_p(0, 10) - 2.0 / 1024) < 1e-12);
    CHECK(fabs(vv_sign_test_p(5, 15) - 2.0 * 21700 / 1048576) < 1e-12);
    CHECK(fabs(vv_sign_test_p(15, 5) - vv_sign_test_p(5, 15)) < 1e-15);
    CHECK(fabs(vv_sign_test_p(2, 3) - 1.0) < 1e-12 && vv_sign_test_p(0, 0) == 1.0);
    // large counts stay finite: 400 vs 600 -> about 2.7e-10 (normal approximation z = 6.3)
    // Wilson 95%: 0 of 10 -> [0, 0.2775]; 5 of 10 -> [0.2366, 0.7634]; 128 of 500 -> [0.2197, 0.2960]
    double wl, wh;
    vv_wilson95(0, 10, &wl, &wh);
    CHECKF(wl == 0 && fabs(wh - 0.27753) < 1e-4, "wilson 0/10 [%g, %g]", wl, wh);
    vv_wilson95(5, 10, &wl, &wh);
    CHECKF(fabs(wl - 0.23659) < 1e-4 && fabs(wh - 0.76341) < 1e-4, "wilson 5/10 [%g, %g]", wl, wh);
    vv_wilson95(128, 500, &wl, &wh);
    CHECKF(fabs(wl - 0.21971) < 1e-4 && fabs(wh - 0.29600) < 1e-4, "wilson 128/500 [%g, %g]", wl, wh);
    vv_wilson95(0, 0, &wl, &wh);
    CHECK(wl == 0 && wh == 1);
    // error bars in the SVG line chart: one path per finite interval, none without intervals,
    // and the y axis stretched to the bars (a tick at 20 for a bar down to 20, points at 27-30)
    {
        char tmpl[] = "/tmp/visvm-svg-XXXXXX";
        int fd = mkstemp(tmpl);
        CHECK(fd >= 0);
        if (fd >= 0) close(fd);
        const double x[3] = {2, 4, 8}, y[3] = {30, 28, 27}, lo[3] = {25, NAN, 20}, hi[3] = {35, NAN, 39};
        vv_svg_series ser[2] = {{"a", x, y, 3, lo, hi}, {"b", x, y, 3, NULL, NULL}};
        vv_error se = {0};
        char *txt = NULL;
        size_t len = 0;
        CHECK(vv_svg_line_chart(tmpl, "t", "x", "y", ser, 2, true, &se) == VISVM_OK);
        CHECK(vv_read_file(tmpl, &txt, &len, &se) == VISVM_OK);
        int paths = 0;
        for (const char *q = txt; q && (q = strstr(q, "<path")); q++) paths++;
        CHECKF(paths == 2, "%d error bars", paths);
        CHECK(txt && strstr(txt, ">20<") && strstr(txt, ">35<"));
        free(txt);
        CHECK(vv_svg_line_chart(tmpl, "t", "x", "y", ser + 1, 1, true, &se) == VISVM_OK);
        txt = NULL;
        CHECK(vv_read_file(tmpl, &txt, &len, &se) == VISVM_OK);
        CHECK(txt && !strstr(txt, "<path") && !strstr(txt, ">20<"));
        free(txt);
        unlink(tmpl);
    }
    const double pl = vv_sign_test_p(400, 600);
    CHECKF(pl > 1e-10 && pl < 1e-9, "sign test p %g", pl);
    vv_ivec_free(&hal);
    vv_world_scene_free(&sc);
    vv_chair_free(ch);
    return tc_result("test_world_eval");
}
