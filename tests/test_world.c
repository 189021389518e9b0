// test_world.c - the synthetic world: determinism, ground truth against the
// rendered pixels, icon distinctness, captions, CLIP sentences, JSONL I/O,
// splits, generation (thread-count independence) and speed.
#include <ctype.h>
#include <dirent.h>
#include <unistd.h>

#include "tcheck.h"
#include "world/world.h"

#define NSCENES 300

static double now_s(void) { return vv_time_s(); }

static uint64_t fnv1a(const void *data, size_t n) {
    const uint8_t *p = (const uint8_t *)data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

// Lowercase words of a text (letters only), at most max, each < 32 chars.
static int words_of(const char *s, char (*w)[32], int max) {
    int n = 0;
    while (*s && n < max) {
        while (*s && !isalpha((unsigned char)*s)) s++;
        int k = 0;
        while (isalpha((unsigned char)*s)) {
            if (k < 31) w[n][k++] = (char)tolower((unsigned char)*s);
            s++;
        }
        if (k) w[n++][k] = 0;
    }
    return n;
}

// Region named by a sentence's position phrase, -1 if none.
static int region_of(const char *sent) {
    char low[VV_WORLD_SENT_MAX * 2];
    size_t i = 0;
    for (; sent[i] && i + 1 < sizeof(low); i++) low[i] = (char)tolower((unsigned char)sent[i]);
    low[i] = 0;
    static const struct { const char *p; int r; } t[] = {
        {"top left", 0}, {"top right", 2}, {"bottom left", 6}, {"bottom right", 8}, {"at the top", 1},
        {"at the bottom", 7}, {"on the left", 3}, {"on the right", 5}, {"in the center", 4}, {"in the middle", 4}};
    for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++)
        if (strstr(low, t[k].p)) return t[k].r;
    return -1;
}

static int number_value(const char *w) {
    for (int k = 1; k <= 9; k++)
        if (!strcmp(w, vv_world_number_word(k))) return k;
    return 0;
}

// Parsed object sentence: class, colour, size, region (-1 where absent), and
// the number of class mentions.
typedef struct { int cls, color, size, region, n_class; } parsed;
static parsed parse_sentence(const char *sent) {
    char w[64][32];
    int n = words_of(sent, w, 64);
    parsed p = {-1, -1, -1, region_of(sent), 0};
    for (int i = 0; i < n; i++) {
        int c = vv_world_word_class(w[i]);
        if (c >= 0) {
            p.cls = c;
            p.n_class++;
        }
        if (vv_world_color_find(w[i]) >= 0) p.color = vv_world_color_find(w[i]);
        if (!strcmp(w[i], "small") || !strcmp(w[i], "little")) p.size = 0;
        if (!strcmp(w[i], "large") || !strcmp(w[i], "big")) p.size = 1;
    }
    return p;
}

// ---------------------------------------------------------------------------

static void test_vocab(void) {
    int nc = vv_world_n_classes();
    CHECKF(nc >= 24, "%d classes", nc);
    CHECK(vv_world_n_colors() >= 6);
    CHECK(vv_world_n_themes() >= 5);
    // Every mention word belongs to exactly one class and is not another kind of word.
    const char *others[] = {"small", "little", "large", "big", "top", "bottom", "left", "right", "center", "middle",
                            "object", "objects", "scene", "picture", "image", "partly", "hidden"};
    for (int c = 0; c < nc; c++) {
        int n;
        const char *const *w = vv_world_class_words(c, &n);
        CHECK(w && n >= 2 && vv_world_class_n_singular(c) >= 1 && vv_world_class_n_singular(c) < n);
        CHECK(!strcmp(w[0], vv_world_class_name(c)));
        CHECK(vv_world_class_find(vv_world_class_name(c)) == c);
        for (int k = 0; k < n; k++) {
            CHECKF(vv_world_word_class(w[k]) == c, "word '%s' of class %s maps to %d", w[k], w[0],
                   vv_world_word_class(w[k]));
            for (int j = 0; j < k; j++) CHECKF(strcmp(w[j], w[k]) != 0, "duplicate word '%s'", w[k]);
            CHECKF(vv_world_color_find(w[k]) < 0 && vv_world_theme_find(w[k]) < 0 && number_value(w[k]) == 0,
                   "class word '%s' is a colour/theme/number", w[k]);
            for (size_t o = 0; o < sizeof(others) / sizeof(others[0]); o++)
                CHECKF(strcmp(w[k], others[o]) != 0, "class word '%s' is a common word", w[k]);
        }
        bool in_theme = false;
        for (int t = 0; t < vv_world_n_themes(); t++) in_theme |= vv_world_theme_has_class(t, c);
        CHECKF(in_theme, "class %s is in no theme", w[0]);
    }
    for (int t = 0; t < vv_world_n_themes(); t++) {
        int n;
        const int *cl = vv_world_theme_classes(t, &n);
        CHECK(cl && n == 6);
    }
    CHECK(vv_world_class_words(-1, NULL) == NULL && vv_world_class_words(nc, NULL) == NULL);
    CHECK(vv_world_word_class("red") == -1 && vv_world_word_class("the") == -1);

    // Synonym file: COCO CHAIR format, canonical first, every word maps back.
    vv_buf b = {0};
    CHECK(vv_world_synonyms_text(&b) == VISVM_OK);
    int lines = 0;
    for (char *line = b.v; line && *line;) {
        char *nl = strchr(line, '\n');
        CHECK(nl != NULL);
        if (!nl) break;
        *nl = 0;
        char *save = NULL, *tok = strtok_r(line, ",", &save);
        int first = 1;
        while (tok) {
            while (*tok == ' ') tok++;
            if (first) CHECKF(vv_world_class_find(tok) == lines, "line %d starts with '%s'", lines + 1, tok);
            CHECKF(vv_world_word_class(tok) == lines, "synonym '%s' on line %d", tok, lines + 1);
            first = 0;
            tok = strtok_r(NULL, ",", &save);
        }
        lines++;
        line = nl + 1;
    }
    CHECK(lines == nc);
    vv_buf_free(&b);
}

static void test_params(void) {
    vv_world_params p = vv_world_default_params();
    vv_error e = {0};
    CHECK(vv_world_params_check(&p, &e) == VISVM_OK);
    p.max_objects = 0;
    CHECK(vv_world_params_check(&p, &e) == VISVM_ERR_INVALID && strstr(e.msg, "max_objects"));
    p = vv_world_default_params();
    p.p_theme = 1.5f;
    CHECK(vv_world_params_check(&p, &e) == VISVM_ERR_INVALID && strstr(e.msg, "p_theme"));
    p = vv_world_default_params();
    p.alpha_min = 0.9f;
    p.alpha_max = 0.5f;
    CHECK(vv_world_params_check(&p, &e) == VISVM_ERR_INVALID && strstr(e.msg, "alpha_max"));
    p = vv_world_default_params();
    p.noise = NAN;
    CHECK(vv_world_params_check(&p, &e) == VISVM_ERR_INVALID && strstr(e.msg, "noise"));
    p = vv_world_default_params();
    for (int k = 0; k < VV_WORLD_MAX_OBJECTS; k++) p.count_weights[k] = 0;
    CHECK(vv_world_params_check(&p, &e) == VISVM_ERR_INVALID && strstr(e.msg, "count_weights"));
    vv_world_scene s;
    CHECK(vv_world_scene_make(&p, 1, &s, &e) == VISVM_ERR_INVALID);
    p = vv_world_default_params();
    CHECK(vv_world_scene_make(&p, 1ull << 60, &s, &e) == VISVM_ERR_RANGE);
}

static void test_splits(void) {
    CHECK(vv_world_split_base(VV_WORLD_TRAIN) == 0 && vv_world_split_base(VV_WORLD_VAL) == 1000000 &&
          vv_world_split_base(VV_WORLD_TEST) == 2000000 && vv_world_split_base(VV_WORLD_FRESH) == 3000000);
    for (int s = 0; s < VV_WORLD_N_SPLITS; s++) {
        uint64_t b = vv_world_split_base(s);
        CHECK(vv_world_split_of_seed(b) == s && vv_world_split_of_seed(b + VV_WORLD_SPLIT_SIZE - 1) == s);
        CHECK(vv_world_split_from_name(vv_world_split_name(s)) == s);
        for (int t = 0; t < s; t++) // disjoint: [b_t, b_t + SIZE) ends at or before b_s
            CHECK(vv_world_split_base(t) + VV_WORLD_SPLIT_SIZE <= b);
    }
    CHECK(vv_world_split_of_seed(4000000) == VV_WORLD_CUSTOM);
    CHECK(vv_world_split_from_name("bogus") == -1);
    vv_world_params p = vv_world_default_params();
    vv_error e = {0};
    CHECK(vv_world_generate(&p, VV_WORLD_TEST, VV_WORLD_SPLIT_SIZE - 5, 10, "/nonexistent/x", NULL, NULL, NULL, &e) ==
          VISVM_ERR_RANGE);
    CHECK(vv_world_generate_seeds(&p, 999995, 10, "/nonexistent/x", NULL, NULL, NULL, &e) == VISVM_ERR_RANGE);
    CHECK(strstr(e.msg, "train") != NULL);
    CHECK(vv_world_generate(&p, 7, 0, 10, "/nonexistent/x", NULL, NULL, NULL, &e) == VISVM_ERR_INVALID);
}

static void test_determinism(void) {
    vv_world_params p = vv_world_default_params();
    vv_error e = {0};
    // Pixel hashes of fixed seeds: a change means the world changed (or the
    // build contracts FMAs / uses fast-math), which breaks reproducibility.
    static const uint64_t seeds[3] = {0, 2000000, 3000123};
    uint64_t hashes[3];
    for (int k = 0; k < 3; k++) {
        vv_world_scene a, b;
        vv_image ia, ib;
        CHECK(vv_world_scene_make(&p, seeds[k], &a, &e) == VISVM_OK);
        CHECK(vv_world_scene_make(&p, seeds[k], &b, &e) == VISVM_OK);
        CHECK(vv_world_scene_caption(&p, &a, &e) == VISVM_OK && vv_world_scene_caption(&p, &b, &e) == VISVM_OK);
        CHECK(vv_world_render(&p, &a, &ia, NULL, &e) == VISVM_OK);
        CHECK(vv_world_render(&p, &b, &ib, NULL, &e) == VISVM_OK);
        CHECK(ia.w == 64 && ia.h == 64 && !memcmp(ia.rgb, ib.rgb, 64 * 64 * 3));
        vv_buf ja = {0}, jb = {0};
        CHECK(vv_world_scene_to_json(&a, &ja, &e) == VISVM_OK && vv_world_scene_to_json(&b, &jb, &e) == VISVM_OK);
        CHECK(ja.n == jb.n && !strcmp(ja.v, jb.v));
        hashes[k] = fnv1a(ia.rgb, 64 * 64 * 3) ^ fnv1a(ja.v, ja.n);
        vv_buf_free(&ja);
        vv_buf_free(&jb);
        vv_image_free(&ia);
        vv_image_free(&ib);
        vv_world_scene_free(&a);
        vv_world_scene_free(&b);
    }
    printf("world hashes: %016llx %016llx %016llx\n", (unsigned long long)hashes[0], (unsigned long long)hashes[1],
           (unsigned long long)hashes[2]);
    static const uint64_t golden[3] = {0xdba2741186b64bb6ull, 0x213ef78d55a62d72ull, 0x80b02f0bfadd7228ull};
    for (int k = 0; k < 3; k++)
        if (golden[k]) CHECKF(hashes[k] == golden[k], "seed %llu hash changed", (unsigned long long)seeds[k]);
    // Different seeds give different scenes.
    CHECK(hashes[0] != hashes[1] && hashes[1] != hashes[2]);
}

// Ground truth against the pixels and masks.
static void test_ground_truth(void) {
    vv_world_params p = vv_world_default_params();
    vv_error e = {0};
    int n_obj = 0, n_occ = 0, n_interior = 0, n_border = 0, n_patch = 0;
    double min_contrast = 1e9, max_err = 0;
    for (int sd = 0; sd < NSCENES; sd++) {
        vv_world_scene s;
        vv_image img;
        vv_world_masks m;
        uint64_t seed = 2000000 + (uint64_t)sd;
        if (vv_world_scene_make(&p, seed, &s, &e) != VISVM_OK || vv_world_render(&p, &s, &img, &m, &e) != VISVM_OK) {
            CHECKF(0, "seed %llu: %s", (unsigned long long)seed, e.msg);
            vv_world_scene_free(&s);
            continue;
        }
        CHECK(m.n == s.n_objects && m.w == 64 && m.h == 64);
        CHECK(s.n_objects >= p.min_objects && s.n_objects <= p.max_objects);
        for (int i = 0; i < s.n_objects; i++) {
            const vv_world_object *o = &s.obj[i];
            n_obj++;
            for (int j = 0; j < i; j++) CHECK(s.obj[j].region != o->region && s.obj[j].cls != o->cls);
            // Visible fraction: recount from the masks.
            double vis = 0, full_in = 0;
            int x0 = 64, y0 = 64, x1 = -1, y1 = -1;
            bool inside_bbox = true;
            for (int y = 0; y < 64; y++)
                for (int x = 0; x < 64; x++) {
                    float v = m.visible[i][y * 64 + x];
                    full_in += m.full[i][y * 64 + x];
                    CHECK(v <= m.full[i][y * 64 + x] + 1e-6f && m.interior[i][y * 64 + x] <= v + 1e-6f);
                    if (v <= 0) continue;
                    vis += v;
                    if (x < o->bbox[0] || x >= o->bbox[2] || y < o->bbox[1] || y >= o->bbox[3]) inside_bbox = false;
                    x0 = VV_MIN(x0, x);
                    y0 = VV_MIN(y0, y);
                    x1 = VV_MAX(x1, x + 1);
                    y1 = VV_MAX(y1, y + 1);
                }
            CHECKF(inside_bbox, "seed %llu object %d: visible pixel outside bbox", (unsigned long long)seed, i);
            CHECKF(x0 == o->bbox[0] && y0 == o->bbox[1] && x1 == o->bbox[2] && y1 == o->bbox[3],
                   "seed %llu object %d: bbox not tight", (unsigned long long)seed, i);
            CHECK_NEAR(o->visible, vis / m.full_total[i], 6e-5);
            CHECK(m.full_total[i] >= full_in - 1e-3);
            if (o->occ_kind != VV_WORLD_OCC_NONE) {
                n_occ++;
                CHECKF(o->visible < 0.9f, "seed %llu object %d occluded (%d) but visible %g", (unsigned long long)seed,
                       i, o->occ_kind, (double)o->visible);
                if (o->occ_kind == VV_WORLD_OCC_BORDER) {
                    n_border++;
                    CHECK(full_in < m.full_total[i] - 1.0); // part of it lies outside the image
                    CHECK(o->bbox[0] == 0 || o->bbox[1] == 0 || o->bbox[2] == 64 || o->bbox[3] == 64);
                } else {
                    n_patch++;
                }
            } else {
                CHECK(o->visible > 0.3f);
            }
            // Interior colour = alpha * colour + (1 - alpha) * background, up to noise.
            double sum[3] = {0}, bg[3] = {0};
            int cnt = 0;
            for (int k = 0; k < 64 * 64; k++) {
                if (m.interior[i][k] < 0.999f || m.visible[i][k] < 0.999f) continue;
                cnt++;
                for (int c = 0; c < 3; c++) {
                    sum[c] += img.rgb[k * 3 + c];
                    bg[c] += m.base[k * 3 + c];
                }
            }
            if (cnt < 6) continue;
            n_interior++;
            const uint8_t *rgb = vv_world_color_rgb(o->color);
            double contrast = 0;
            for (int c = 0; c < 3; c++) {
                double mean = sum[c] / cnt, b = bg[c] / cnt;
                double expect = o->alpha * rgb[c] + (1 - o->alpha) * b;
                double tol = 1.5 + 4.0 * p.noise / sqrt((double)cnt);
                CHECKF(fabs(mean - expect) <= tol, "seed %llu object %d (%s %s) channel %d: mean %.1f expected %.1f",
                       (unsigned long long)seed, i, vv_world_color_name(o->color), vv_world_class_name(o->cls), c,
                       mean, expect);
                max_err = fmax(max_err, fabs(mean - expect));
                contrast = fmax(contrast, fabs(mean - b));
            }
            CHECKF(contrast > 12, "seed %llu object %d: contrast %.1f", (unsigned long long)seed, i, contrast);
            min_contrast = fmin(min_contrast, contrast);
        }
        vv_world_masks_free(&m);
        vv_image_free(&img);
        vv_world_scene_free(&s);
    }
    printf("ground truth: %d objects, %d occluded (%d patch, %d border), %d colour-checked; max colour error %.2f, "
           "min contrast %.1f\n", n_obj, n_occ, n_patch, n_border, n_interior, max_err, min_contrast);
    CHECK(n_patch > 10 && n_border > 5 && n_interior > n_obj / 2);
}

// Every class icon is distinct: pairwise IoU of the binary masks.
static void test_icons(void) {
    int nc = vv_world_n_classes();
    const struct { int side; float frac; double bound; } cfg[2] = {{64, 0.9f, 0.75}, {12, 0.85f, 0.85}};
    for (int k = 0; k < 2; k++) {
        int side = cfg[k].side;
        float *m = malloc(sizeof(float) * side * side * nc);
        for (int c = 0; c < nc; c++) CHECK(vv_world_icon_mask(c, side, cfg[k].frac, 4, m + (size_t)c * side * side, NULL) == 0);
        double worst = 0;
        int wa = 0, wb = 0;
        for (int a = 0; a < nc; a++) {
            double area = 0;
            for (int i = 0; i < side * side; i++) area += m[(size_t)a * side * side + i];
            CHECKF(area > 0.15 * side * side * cfg[k].frac * cfg[k].frac, "class %s icon too thin", vv_world_class_name(a));
            for (int b = a + 1; b < nc; b++) {
                int in = 0, un = 0;
                for (int i = 0; i < side * side; i++) {
                    bool x = m[(size_t)a * side * side + i] >= 0.5f, y = m[(size_t)b * side * side + i] >= 0.5f;
                    in += x && y;
                    un += x || y;
                }
                double iou = un ? (double)in / un : 1;
                if (iou > worst) {
                    worst = iou;
                    wa = a;
                    wb = b;
                }
            }
        }
        printf("icons at %d px: max pairwise IoU %.3f (%s / %s)\n", (int)(side * cfg[k].frac), worst,
               vv_world_class_name(wa), vv_world_class_name(wb));
        CHECK(worst < cfg[k].bound);
        free(m);
    }
    float dummy[4];
    CHECK(vv_world_icon_mask(-1, 2, 0.5f, 1, dummy, NULL) == VISVM_ERR_INVALID);
}

static void test_captions(void) {
    vv_world_params p = vv_world_default_params();
    vv_error e = {0};
    int n_caps = 0, n_sent = 0, n_hidden = 0;
    char vocab[512][32];
    int n_vocab = 0;
    for (int sd = 0; sd < NSCENES; sd++) {
        vv_world_scene s;
        if (vv_world_scene_make(&p, 1000000 + (uint64_t)sd, &s, &e) || vv_world_scene_caption(&p, &s, &e)) {
            CHECKF(0, "%s", e.msg);
            vv_world_scene_free(&s);
            continue;
        }
        CHECK(s.n_captions == p.n_captions);
        bool present[64] = {0};
        for (int i = 0; i < s.n_objects; i++) present[s.obj[i].cls] = true;
        for (int c = 0; c < s.n_captions; c++) {
            const char *cap = s.captions[c];
            n_caps++;
            CHECK(cap[0] >= 'A' && cap[0] <= 'Z');
            bool mentioned[64] = {0};
            int n_sentences = 0, n_obj_sent = 0, stated_count = 0;
            const char *q = cap;
            while (*q) {
                const char *dot = strchr(q, '.');
                CHECKF(dot != NULL, "caption does not end with '.': %s", cap);
                if (!dot) break;
                char sent[VV_WORLD_SENT_MAX * 2];
                size_t len = (size_t)(dot - q + 1);
                CHECK(len < sizeof(sent));
                if (len >= sizeof(sent)) break;
                memcpy(sent, q, len);
                sent[len] = 0;
                n_sentences++;
                n_sent++;
                CHECK(isupper((unsigned char)sent[0]));
                for (const char *t = sent; *t; t++) CHECK(!isdigit((unsigned char)*t));
                char w[64][32];
                int nw = words_of(sent, w, 64);
                for (int k = 0; k < nw; k++) {
                    int found = 0;
                    for (int v = 0; v < n_vocab && !found; v++) found = !strcmp(vocab[v], w[k]);
                    if (!found && n_vocab < 512) strcpy(vocab[n_vocab++], w[k]);
                    if (k + 1 < nw && number_value(w[k]) && (!strcmp(w[k + 1], "object") || !strcmp(w[k + 1], "objects"))) {
                        CHECKF(stated_count == 0, "two count statements: %s", cap);
                        stated_count = number_value(w[k]);
                    }
                    int th = vv_world_theme_find(w[k]);
                    if (th >= 0) CHECKF(th == s.theme, "wrong theme word '%s' in %s", w[k], cap);
                }
                parsed ps = parse_sentence(sent);
                CHECK(ps.n_class <= 1);
                if (ps.n_class == 1) {
                    n_obj_sent++;
                    mentioned[ps.cls] = true;
                    // The sentence describes the scene's object of that class exactly.
                    int oi = -1;
                    for (int i = 0; i < s.n_objects; i++)
                        if (s.obj[i].cls == ps.cls) oi = i;
                    CHECKF(oi >= 0, "hallucinated object in reference caption: %s", sent);
                    if (oi >= 0) {
                        CHECK(ps.color == s.obj[oi].color && ps.size == s.obj[oi].size && ps.region == s.obj[oi].region);
                        if (strstr(sent, "partly hidden")) {
                            n_hidden++;
                            CHECK(s.obj[oi].visible < VV_WORLD_HIDDEN_VISIBLE);
                        }
                    }
                }
                q = dot + 1;
                if (*q) {
                    CHECK(*q == ' ');
                    q++;
                }
            }
            CHECKF(stated_count == s.n_objects, "count %d vs %d objects: %s", stated_count, s.n_objects, cap);
            CHECK(n_obj_sent == s.n_objects);
            CHECK(n_sentences >= 3 && n_sentences <= 2 + s.n_objects);
            for (int k = 0; k < vv_world_n_classes(); k++)
                CHECKF(mentioned[k] == present[k], "class %s: mentioned %d present %d in '%s'", vv_world_class_name(k),
                       mentioned[k], present[k], cap);
        }
        // Different captions of one scene vary in wording, and captions are deterministic.
        CHECK(s.n_captions < 2 || strcmp(s.captions[0], s.captions[1]) != 0 || s.n_objects == 1);
        char *again[1];
        CHECK(vv_world_captions(&s, s.seed, 1, again, &e) == VISVM_OK && !strcmp(again[0], s.captions[0]));
        free(again[0]);
        vv_world_scene_free(&s);
    }
    printf("captions: %d captions, %d sentences (%.2f per caption), %d 'partly hidden', vocabulary %d words\n", n_caps,
           n_sent, (double)n_sent / n_caps, n_hidden, n_vocab);
    CHECK(n_vocab >= 60 && n_vocab <= 200);
    CHECK(n_hidden > 0);
    // Article before a vowel.
    char buf[VV_WORLD_SENT_MAX];
    CHECK(vv_world_theme_sentence(vv_world_theme_find("office"), 0, buf, sizeof(buf)) > 0 &&
          !strcmp(buf, "This is an office scene."));
    CHECK(vv_world_count_sentence(1, 0, buf, sizeof(buf)) > 0 && !strcmp(buf, "There is one object."));
    CHECK(vv_world_count_sentence(3, 0, buf, sizeof(buf)) > 0 && !strcmp(buf, "There are three objects."));
    vv_world_object_words w = {vv_world_class_find("cup"), vv_world_color_find("red"), 0, 0, 0, 0, 0, 0};
    CHECK(vv_world_object_sentence(&w, buf, sizeof(buf)) > 0 && !strcmp(buf, "At the top left there is a small red cup."));
    CHECK(vv_world_object_sentence(&w, buf, 10) == VISVM_ERR_RANGE);
    w.tmpl = 99;
    CHECK(vv_world_object_sentence(&w, buf, sizeof(buf)) == VISVM_ERR_INVALID);
    CHECK(vv_world_count_sentence(0, 0, buf, sizeof(buf)) == VISVM_ERR_INVALID);
}

// CLIP sentences: positives are true, negatives false, in the stated way.
static void test_sentences(void) {
    vv_world_params p = vv_world_default_params();
    vv_error e = {0};
    int kinds[VV_WS_N_KINDS] = {0};
    for (int sd = 0; sd < NSCENES; sd++) {
        vv_world_scene s;
        CHECK(vv_world_scene_make(&p, (uint64_t)sd, &s, &e) == VISVM_OK);
        vv_world_sentence *v = NULL, *v2 = NULL;
        int n = 0, n2 = 0;
        CHECK(vv_world_sentences(&s, 7, &v, &n, &e) == VISVM_OK);
        CHECK(vv_world_sentences(&s, 7, &v2, &n2, &e) == VISVM_OK && n == n2 && !memcmp(v, v2, sizeof(*v) * n));
        free(v2);
        int n_obj_pos = 0;
        for (int i = 0; i < n; i++) {
            const vv_world_sentence *x = &v[i];
            kinds[x->kind]++;
            CHECK(x->text[0] && x->text[strlen(x->text) - 1] == '.');
            CHECK(x->positive == (x->kind <= VV_WS_OBJECT));
            CHECK(x->pos_index >= 0 && x->pos_index <= i && v[x->pos_index].positive);
            char w[64][32];
            int nw = words_of(x->text, w, 64), count = 0, theme = -1;
            for (int k = 0; k < nw; k++) {
                if (number_value(w[k])) count = number_value(w[k]);
                if (vv_world_theme_find(w[k]) >= 0) theme = vv_world_theme_find(w[k]);
            }
            parsed ps = parse_sentence(x->text);
            switch (x->kind) {
            case VV_WS_THEME: CHECK(theme == s.theme && count == 0); break;
            case VV_WS_COUNT: CHECK(count == s.n_objects && theme < 0); break;
            case VV_WS_GLOBAL: CHECK(count == s.n_objects && theme == s.theme); break;
            case VV_WS_NEG_THEME: CHECK(theme >= 0 && theme != s.theme); break;
            case VV_WS_NEG_COUNT: CHECK(count > 0 && count != s.n_objects && abs(count - s.n_objects) <= 2); break;
            default: {
                CHECK(ps.n_class == 1 && ps.cls == x->cls && x->object >= 0 && x->object < s.n_objects);
                bool match = false, cls_present = false;
                for (int o = 0; o < s.n_objects; o++) {
                    const vv_world_object *ob = &s.obj[o];
                    cls_present |= ob->cls == ps.cls;
                    match |= ob->cls == ps.cls && ob->color == ps.color && ob->size == ps.size && ob->region == ps.region;
                }
                CHECKF(match == x->positive, "'%s' (%s) truth %d", x->text, vv_world_sent_kind_name(x->kind), match);
                if (x->kind == VV_WS_OBJECT) n_obj_pos++;
                if (x->kind == VV_WS_NEG_ABSENT_THEME) CHECK(!cls_present && vv_world_theme_has_class(s.theme, ps.cls));
                if (x->kind == VV_WS_NEG_ABSENT_OTHER) CHECK(!cls_present && !vv_world_theme_has_class(s.theme, ps.cls));
                if (x->kind >= VV_WS_NEG_COLOR && x->kind <= VV_WS_NEG_SIZE) {
                    // exactly one slot differs from its positive
                    parsed pp = parse_sentence(v[x->pos_index].text);
                    int diff = (pp.color != ps.color) + (pp.region != ps.region) + (pp.size != ps.size);
                    CHECK(diff == 1 && pp.cls == ps.cls);
                }
            }
            }
        }
        CHECK(n_obj_pos == s.n_objects);
        free(v);
        vv_world_scene_free(&s);
    }
    for (int k = 0; k < VV_WS_N_KINDS; k++) CHECKF(kinds[k] > 0, "no sentence of kind %s", vv_world_sent_kind_name(k));
    printf("sentences:");
    for (int k = 0; k < VV_WS_N_KINDS; k++) printf(" %s %d", vv_world_sent_kind_name(k), kinds[k]);
    printf("\n");
}

static void test_theme_prior(void) {
    vv_world_params p = vv_world_default_params();
    for (int pass = 0; pass < 2; pass++) {
        p.p_theme = pass ? 0.0f : 1.0f;
        int in = 0, tot = 0;
        for (int sd = 0; sd < 500; sd++) {
            vv_world_scene s;
            CHECK(vv_world_scene_make(&p, (uint64_t)sd, &s, NULL) == VISVM_OK);
            for (int i = 0; i < s.n_objects; i++, tot++) in += vv_world_theme_has_class(s.theme, s.obj[i].cls);
        }
        double f = (double)in / tot;
        if (pass == 0) CHECKF(f > 0.99, "p_theme 1: in-theme fraction %.3f", f);
        else CHECKF(f > 0.12 && f < 0.32, "p_theme 0: in-theme fraction %.3f (6/28 expected)", f);
    }
}

static char *tmpdir(void) {
    char tmpl[] = "/tmp/test_world_XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? vv_strdup(d) : NULL;
}

static void rm_rf(const char *dir) {
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

static void *read_all(const char *dir, const char *name, size_t *n) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return tc_read(path, n);
}

static int progress_calls;
static void on_progress(void *ud, int64_t done, int64_t total) {
    (void)ud;
    CHECK(done > 0 && done <= total);
    progress_calls++;
}

static void test_generate_and_io(void) {
    vv_world_params p = vv_world_default_params();
    vv_error e = {0};
    char *d1 = tmpdir(), *d2 = tmpdir();
    CHECK(d1 && d2);
    if (!d1 || !d2) return;
    const int N = 300; // > one batch of 256, so batching is exercised
    vv_pool *pool2 = vv_pool_create(2);
    double t0 = now_s();
    CHECK(vv_world_generate(&p, VV_WORLD_TEST, 5, N, d1, NULL, on_progress, NULL, &e) == VISVM_OK);
    double t1 = now_s();
    CHECK(vv_world_generate(&p, VV_WORLD_TEST, 5, N, d2, pool2, NULL, NULL, &e) == VISVM_OK);
    double t2 = now_s();
    printf("generate %d scenes (PNG + JSON, fsync per file): %.0f scenes/s on 1 thread, %.0f on 2\n", N, N / (t1 - t0),
           N / (t2 - t1));
    CHECK(progress_calls == 2);
    vv_pool_free(pool2);
    // Same bytes with 1 and 2 threads.
    const char *files[] = {"scenes.jsonl", "synonyms.txt", "world.json"};
    for (int k = 0; k < 3; k++) {
        size_t n1 = 0, n2 = 0;
        char *a = read_all(d1, files[k], &n1), *b = read_all(d2, files[k], &n2);
        CHECKF(a && b && n1 == n2 && n1 > 0 && !memcmp(a, b, n1), "%s differs", files[k]);
        free(a);
        free(b);
    }
    for (int i = 0; i < N; i += 37) {
        char name[64];
        snprintf(name, sizeof(name), "images/%07d.png", 2000005 + i);
        size_t n1 = 0, n2 = 0;
        char *a = read_all(d1, name, &n1), *b = read_all(d2, name, &n2);
        CHECKF(a && b && n1 == n2 && !memcmp(a, b, n1), "%s differs", name);
        free(a);
        free(b);
    }
    // No temp files left behind.
    DIR *dir = opendir(d1);
    struct dirent *de;
    int n_entries = 0;
    while (dir && (de = readdir(dir))) {
        if (de->d_name[0] == '.') continue;
        n_entries++;
        CHECKF(!strstr(de->d_name, ".tmp."), "temp file %s left", de->d_name);
    }
    if (dir) closedir(dir);
    CHECK(n_entries == 4); // images, scenes.jsonl, synonyms.txt, world.json

    // Round trip: read back and compare with freshly made scenes.
    vv_world_scene *sc = NULL;
    int n = 0;
    char path[512];
    snprintf(path, sizeof(path), "%s/scenes.jsonl", d1);
    CHECKF(vv_world_read_jsonl(path, &sc, &n, &e) == VISVM_OK, "%s", e.msg);
    CHECK(n == N);
    for (int i = 0; i < n; i++) {
        vv_world_scene s;
        uint64_t seed = 2000005 + (uint64_t)i;
        CHECK(vv_world_scene_make(&p, seed, &s, &e) == VISVM_OK && vv_world_scene_caption(&p, &s, &e) == VISVM_OK);
        const vv_world_scene *r = &sc[i];
        CHECK(r->seed == seed && r->split == VV_WORLD_TEST && r->theme == s.theme && r->n_objects == s.n_objects);
        CHECK(r->w == 64 && r->h == 64 && !r->renderable);
        snprintf(s.image, sizeof(s.image), "images/%07llu.png", (unsigned long long)seed);
        CHECK(!strcmp(r->image, s.image));
        for (int k = 0; k < s.n_objects; k++) {
            const vv_world_object *a = &r->obj[k], *b = &s.obj[k];
            CHECK(a->cls == b->cls && a->color == b->color && a->size == b->size && a->region == b->region);
            CHECK(!memcmp(a->bbox, b->bbox, sizeof(a->bbox)) && a->visible == b->visible && a->alpha == b->alpha);
            CHECK(a->occ_kind == b->occ_kind);
        }
        CHECK(r->n_captions == s.n_captions);
        for (int k = 0; k < s.n_captions && k < r->n_captions; k++) CHECK(!strcmp(r->captions[k], s.captions[k]));
        // JSON of the read-back scene is byte-identical to the original line.
        vv_buf ja = {0}, jb = {0};
        CHECK(vv_world_scene_to_json(r, &ja, &e) == VISVM_OK && vv_world_scene_to_json(&s, &jb, &e) == VISVM_OK);
        CHECK(ja.v && jb.v && !strcmp(ja.v, jb.v));
        vv_buf_free(&ja);
        vv_buf_free(&jb);
        vv_world_scene_free(&s);
    }
    // The PNG decodes to what the renderer produced.
    {
        vv_world_scene s;
        vv_image a, b;
        CHECK(vv_world_scene_make(&p, 2000005 + 7, &s, &e) == VISVM_OK && vv_world_render(&p, &s, &a, NULL, &e) == 0);
        snprintf(path, sizeof(path), "%s/images/%07d.png", d1, 2000005 + 7);
        CHECK(vv_image_load_file(path, &b, &e) == VISVM_OK);
        CHECK(a.w == b.w && a.h == b.h && b.rgb && !memcmp(a.rgb, b.rgb, (size_t)a.w * a.h * 3));
        vv_image_free(&a);
        vv_image_free(&b);
        // A scene read from JSON cannot be rendered.
        CHECK(n > 0 && vv_world_render(&p, &sc[0], &a, NULL, &e) == VISVM_ERR_INVALID);
        vv_world_scene_free(&s);
    }
    vv_world_scenes_free(sc, n);

    // Errors name the line.
    size_t len = 0;
    char *good = read_all(d1, "scenes.jsonl", &len);
    char *nl1 = good ? strchr(good, '\n') : NULL, *nl2 = nl1 ? strchr(nl1 + 1, '\n') : NULL;
    CHECK(nl2 != NULL);
    if (nl2) {
        size_t two = (size_t)(nl2 - good + 1);
        const char *bad[] = {"{\"image\": \"x.png\", \"seed\": 1,\n", // truncated JSON
                             "{\"image\":\"x.png\",\"seed\":1,\"split\":\"train\",\"objects\":[],\"captions\":[]}\n",
                             ("{\"image\":\"x.png\",\"seed\":1,\"split\":\"train\",\"theme\":\"park\",\"objects\":[{\"class\":"
                              "\"dragon\",\"color\":\"red\",\"size\":\"small\",\"position\":\"top\",\"bbox\":[0,0,1,1],"
                              "\"visible\":1}],\"captions\":[]}\n"),
                             ("{\"image\":\"x.png\",\"seed\":1.5,\"split\":\"train\",\"theme\":\"park\",\"objects\":[],"
                              "\"captions\":[]}\n")};
        const char *expect[] = {"invalid JSON", "missing key 'theme'", "unknown class 'dragon'", "not an integer"};
        for (int k = 0; k < 4; k++) {
            vv_buf f = {0};
            vv_buf_append(&f, good, two);
            vv_buf_append(&f, "\n", 1); // a blank line still counts as a line
            vv_buf_printf(&f, "%s", bad[k]);
            snprintf(path, sizeof(path), "%s/bad.jsonl", d1);
            CHECK(vv_write_file_atomic(path, f.v, f.n, &e) == VISVM_OK);
            vv_world_scene *x = NULL;
            int nx = 0;
            int rc = vv_world_read_jsonl(path, &x, &nx, &e);
            CHECKF(rc == VISVM_ERR_FORMAT && strstr(e.msg, "bad.jsonl:4:") && strstr(e.msg, expect[k]),
                   "case %d: rc %d, message '%s'", k, rc, e.msg);
            CHECK(x == NULL && nx == 0);
            vv_buf_free(&f);
        }
        snprintf(path, sizeof(path), "%s/missing.jsonl", d1);
        vv_world_scene *x = NULL;
        int nx = 0;
        CHECK(vv_world_read_jsonl(path, &x, &nx, &e) == VISVM_ERR_IO);
    }
    free(good);
    // width / height are optional: a line without them writes back without
    // them and parses again (found by fuzz_text: "height":0 came back)
    {
        const char *line = "{\"image\":\"x.png\",\"seed\":1,\"split\":\"train\",\"theme\":\"park\",\"width\":24,"
                           "\"objects\":[{\"class\":\"fish\",\"color\":\"red\",\"size\":\"small\",\"position\":\"top\","
                           "\"bbox\":[0,0,1,1],\"visible\":1}],\"captions\":[]}";
        vv_world_scene s, s2;
        vv_buf j = {0}, j2 = {0};
        CHECKF(vv_world_scene_from_json(line, &s, &e) == VISVM_OK, "%s", e.msg);
        CHECK(s.w == 24 && s.h == 0);
        CHECK(vv_world_scene_to_json(&s, &j, &e) == VISVM_OK && j.v && strstr(j.v, "\"width\":24") &&
              !strstr(j.v, "height"));
        CHECKF(j.v && vv_world_scene_from_json(j.v, &s2, &e) == VISVM_OK, "%s", e.msg);
        CHECK(vv_world_scene_to_json(&s2, &j2, &e) == VISVM_OK && j2.v && !strcmp(j.v, j2.v));
        vv_buf_free(&j);
        vv_buf_free(&j2);
        vv_world_scene_free(&s);
        vv_world_scene_free(&s2);
    }
    rm_rf(d1);
    rm_rf(d2);
    free(d1);
    free(d2);
}

static void test_speed(void) {
    vv_world_params p = vv_world_default_params();
    const int N = 400;
    double t0 = now_s();
    int ok = 0;
    for (int i = 0; i < N; i++) {
        vv_world_scene s;
        vv_image img;
        if (vv_world_scene_make(&p, 3000000 + (uint64_t)i, &s, NULL) == VISVM_OK &&
            vv_world_scene_caption(&p, &s, NULL) == VISVM_OK && vv_world_render(&p, &s, &img, NULL, NULL) == VISVM_OK) {
            ok++;
            vv_image_free(&img);
        }
        vv_world_scene_free(&s);
    }
    double dt = now_s() - t0;
    CHECK(ok == N);
    printf("speed: %.0f scenes/s (64x64, sample + captions + render, 1 thread, no PNG)\n", N / dt);
}

int main(void) {
    test_vocab();
    test_params();
    test_splits();
    test_determinism();
    test_ground_truth();
    test_icons();
    test_captions();
    test_sentences();
    test_theme_prior();
    test_generate_and_io();
    test_speed();
    return tc_result("test_world");
}
