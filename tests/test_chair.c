// test_chair.c - CHAIR on hand-worked examples: a small world-style table
// (exact words), and the reference COCO synonyms (double words, plurals,
// toilet-seat rule, baby animals), plus aggregation arithmetic and COCO ground
// truth from instance + caption annotations.
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/chair.h"
#include "tcheck.h"

static const char *k_world =
    "cup, cup, cups, mug, mugs\n"
    "clock, clock, clocks\n"
    "tree, tree, trees\n"
    "teddy bear, teddy bear, teddy bears\n";

static vv_chair_caption score(vv_chair *c, const char *cap, const bool *gt, vv_ivec *h) {
    vv_chair_caption r;
    vv_error e = {0};
    if (h) h->n = 0;
    CHECK(vv_chair_score(c, cap, gt, &r, h, &e) == VISVM_OK);
    return r;
}

int main(void) {
    vv_error e = {0};
    vv_chair *w = NULL;
    CHECK(vv_chair_parse_synonyms(k_world, strlen(k_world), false, &w, &e) == VISVM_OK);
    if (!w) return 1;
    CHECK(vv_chair_n_classes(w) == 4);
    CHECK(vv_chair_class_id(w, "clock") == 1);
    {
        // ground truth: cup and tree
        bool gt[4] = {true, false, true, false};
        vv_ivec h = {0};
        // mentions: mug (cup), clocks (clock, hallucinated), tree -> 3 mentions, 1 hallucination
        vv_chair_caption r = score(w, "There is a red Mug. Two clocks hang near a TREE.", gt, &h);
        CHECK(r.n_mentions == 3 && r.n_halluc == 1 && r.n_gt == 2 && r.n_gt_mentioned == 2);
        CHECK(h.n == 1 && h.v[0] == 1);
        CHECK(r.n_words == 11);
        // two-word class merged; "bear" alone mentions nothing
        r = score(w, "A teddy bear and a bear.", gt, &h);
        CHECK(r.n_mentions == 1 && r.n_halluc == 1 && h.v[0] == 3);
        // repeated mentions all count (CHAIRi counts every mention)
        r = score(w, "A cup, a cup and cups.", gt, NULL);
        CHECK(r.n_mentions == 3 && r.n_halluc == 0 && r.n_gt_mentioned == 1);
        r = score(w, "", gt, NULL);
        CHECK(r.n_mentions == 0 && r.n_words == 0);
        // aggregation: captions 1 (1 of 3 hallucinated), 2 (0 of 3), 3 (2 of 2)
        vv_chair_totals t = {0};
        vv_chair_caption a = {3, 1, 2, 2, 10}, b = {3, 0, 2, 1, 6}, c2 = {2, 2, 1, 0, 4};
        vv_chair_add(&t, &a);
        vv_chair_add(&t, &b);
        vv_chair_add(&t, &c2);
        CHECK_NEAR(vv_chair_s(&t), 200.0 / 3, 1e-9);
        CHECK_NEAR(vv_chair_i(&t), 100.0 * 3 / 8, 1e-9);
        CHECK_NEAR(vv_chair_recall(&t), 100.0 * 3 / 5, 1e-9);
        CHECK_NEAR(vv_chair_len(&t), 20.0 / 3, 1e-9);
        vv_ivec_free(&h);
    }
    // a word in two classes is an error for world tables
    {
        vv_chair *bad = NULL;
        const char *t = "cup, cup, glass\nvase, vase, glass\n";
        CHECK(vv_chair_parse_synonyms(t, strlen(t), false, &bad, &e) == VISVM_ERR_FORMAT);
        CHECK(strstr(e.msg, "glass") != NULL && bad == NULL);
        CHECK(vv_chair_parse_synonyms("", 0, false, &bad, &e) == VISVM_ERR_FORMAT);
        CHECK(vv_chair_load_synonyms("/nonexistent/synonyms.txt", false, &bad, &e) == VISVM_ERR_IO);
    }
    vv_chair_free(w);

    // COCO: the reference table with its rules
    char path[1024];
    const char *gd = getenv("VISVM_GOLDEN_DIR") ? getenv("VISVM_GOLDEN_DIR") : VISVM_GOLDEN_DIR;
    snprintf(path, sizeof(path), "%s/../reference/chair/coco-synonyms.txt", gd);
    vv_chair *c = NULL;
    if (access(path, R_OK) != 0) {
        printf("COCO synonyms not found at %s: skipping the COCO part\n", path);
        return tc_failures ? tc_result("test_chair") : (tc_result("test_chair"), TC_SKIP);
    }
    CHECK(vv_chair_load_synonyms(path, true, &c, &e) == VISVM_OK);
    if (!c) return 1;
    CHECK(vv_chair_n_classes(c) == 80);
    int person = vv_chair_class_id(c, "person"), dog = vv_chair_class_id(c, "dog"), bike = vv_chair_class_id(c, "bicycle"),
        hotdog = vv_chair_class_id(c, "hot dog"), toilet = vv_chair_class_id(c, "toilet"), chair = vv_chair_class_id(c, "chair"),
        tie = vv_chair_class_id(c, "tie"), phone = vv_chair_class_id(c, "cell phone"), wg = vv_chair_class_id(c, "wine glass"),
        table = vv_chair_class_id(c, "dining table"), mc = vv_chair_class_id(c, "motorcycle");
    CHECK(person >= 0 && dog >= 0 && bike >= 0 && hotdog >= 0 && toilet >= 0 && chair >= 0 && tie >= 0 && phone >= 0 &&
          wg >= 0 && table >= 0 && mc >= 0);
    {
        vv_ivec m = {0};
#define MENTIONS(text, ...)                                                                \
    do {                                                                                   \
        int want[] = {__VA_ARGS__};                                                        \
        int nw = (int)(sizeof(want) / sizeof(want[0]));                                    \
        m.n = 0;                                                                           \
        CHECK(vv_chair_mentions(c, text, &m, NULL, NULL, &e) == VISVM_OK);                 \
        bool ok = (int)m.n == nw;                                                          \
        for (int i = 0; ok && i < nw; i++) ok = m.v[i] == want[i];                         \
        CHECKF(ok, "\"%s\": got %zu mentions", text, m.n);                                 \
    } while (0)
        // plurals, synonyms and case
        MENTIONS("Two Men riding bikes next to three dogs.", person, bike, dog);
        // double words: hot dog is food, not a dog; cell phone; bow tie -> tie
        MENTIONS("A man eats a hot dog while holding a cell phone.", person, hotdog, phone);
        MENTIONS("He wears a bow tie.", tie);
        // toilet seat -> toilet, and "seat" dropped when "toilet" is present
        MENTIONS("A toilet seat is up.", toilet);
        MENTIONS("The seat of the toilet.", toilet);
        MENTIONS("A seat by the window.", chair);
        // baby animals map to the animal
        MENTIONS("A baby dog sleeps.", dog);
        // wine glasses: plural of the second word of a double word
        MENTIONS("Two wine glasses on a table.", wg, table);
        // "motor bike" has a leading space in the reference table and never matches;
        // the double-word table still merges it to a token that is not a synonym
        MENTIONS("A motor bike and a scooter.", mc);
        vv_ivec_free(&m);
        bool gt[80] = {0};
        gt[person] = gt[bike] = true;
        vv_chair_caption r = score(c, "A woman rides a bicycle with her dog.", gt, NULL);
        CHECK(r.n_mentions == 3 && r.n_halluc == 1 && r.n_gt_mentioned == 2);
    }
    // COCO ground truth = instance categories + objects in reference captions
    {
        char ip[256], cp[256];
        snprintf(ip, sizeof(ip), "/tmp/visvm_chair_inst_%d.json", (int)getpid());
        snprintf(cp, sizeof(cp), "/tmp/visvm_chair_caps_%d.json", (int)getpid());
        const char *inst = "{\"images\":[{\"id\":42},{\"id\":7}],"
                           "\"annotations\":[{\"image_id\":42,\"category_id\":1},{\"image_id\":7,\"category_id\":18}],"
                           "\"categories\":[{\"id\":1,\"name\":\"person\"},{\"id\":18,\"name\":\"dog\"}]}";
        const char *caps = "{\"annotations\":[{\"image_id\":42,\"caption\":\"A man with a bike.\"},"
                           "{\"image_id\":99,\"caption\":\"A cat.\"}]}";
        CHECK(vv_write_file_atomic(ip, inst, strlen(inst), &e) == 0);
        CHECK(vv_write_file_atomic(cp, caps, strlen(caps), &e) == 0);
        vv_chair_coco *g = NULL;
        CHECK(vv_chair_coco_load(c, ip, cp, &g, &e) == VISVM_OK);
        if (g) {
            CHECK(vv_chair_coco_n_images(g) == 2);
            const bool *g42 = vv_chair_coco_gt(g, 42), *g7 = vv_chair_coco_gt(g, 7);
            CHECK(g42 && g42[person] && g42[bike] && !g42[dog]);
            CHECK(g7 && g7[dog] && !g7[person]);
            CHECK(vv_chair_coco_gt(g, 99) == NULL);
            vv_chair_coco_free(g);
        }
        CHECK(vv_write_file_atomic(ip, "{\"images\": 3}", 13, &e) == 0);
        CHECK(vv_chair_coco_load(c, ip, NULL, &g, &e) == VISVM_ERR_FORMAT);
        CHECK(vv_write_file_atomic(ip, "{not json", 9, &e) == 0);
        CHECK(vv_chair_coco_load(c, ip, NULL, &g, &e) == VISVM_ERR_FORMAT);
        CHECK(strstr(e.msg, "invalid JSON") != NULL);
        // ids out of range are refused before any cast (a category id of 1e10
        // used to size a table with INT_MAX + 1 entries; huge image ids were
        // cast from double unchecked)
        const char *bad[] = {"{\"images\":[],\"annotations\":[],\"categories\":[{\"id\":1e10,\"name\":\"dog\"}]}",
                             "{\"images\":[],\"annotations\":[],\"categories\":[{\"id\":1.5,\"name\":\"dog\"}]}",
                             "{\"images\":[{\"id\":1e300}],\"annotations\":[],\"categories\":[]}",
                             "{\"images\":[{\"id\":\"7\"}],\"annotations\":[],\"categories\":[]}"};
        const char *why[] = {"category id", "category id", "integer 'id'", "integer 'id'"};
        for (int k = 0; k < 4; k++) {
            CHECK(vv_write_file_atomic(ip, bad[k], strlen(bad[k]), &e) == 0);
            CHECKF(vv_chair_coco_load(c, ip, NULL, &g, &e) == VISVM_ERR_FORMAT && g == NULL && strstr(e.msg, why[k]),
                   "case %d: %s", k, e.msg);
        }
        // annotations with absurd ids are skipped, the rest still counts
        const char *skip = "{\"images\":[{\"id\":42}],\"annotations\":[{\"image_id\":1e300,\"category_id\":1},"
                           "{\"image_id\":42,\"category_id\":1e12},{\"image_id\":42,\"category_id\":18}],"
                           "\"categories\":[{\"id\":18,\"name\":\"dog\"}]}";
        CHECK(vv_write_file_atomic(ip, skip, strlen(skip), &e) == 0);
        CHECKF(vv_chair_coco_load(c, ip, NULL, &g, &e) == VISVM_OK, "%s", e.msg);
        if (g) {
            const bool *g42 = vv_chair_coco_gt(g, 42);
            CHECK(g42 && g42[dog] && !g42[person]);
            vv_chair_coco_free(g);
        }
        unlink(ip);
        unlink(cp);
    }
    vv_chair_free(c);
    return tc_result("test_chair");
}
