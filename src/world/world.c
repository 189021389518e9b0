// world.c - scene sampling, reference captions, CLIP sentences with hard
// negatives, JSON lines I/O and parallel dataset generation.
#include "world.h"

// Pixels must not depend on the compiler fusing a*b+c into an FMA (clang
// does by default, GCC does outside ISO C mode): keep every rounding step.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_SEED ((1ull << 53) - 1) // seeds travel through JSON numbers (doubles)

// ---------------------------------------------------------------------------
// Splits.

static const char *const g_split_names[] = {"train", "val", "test", "fresh", "custom"};

const char *vv_world_split_name(int split) {
    return split >= 0 && split <= VV_WORLD_CUSTOM ? g_split_names[split] : NULL;
}
int vv_world_split_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i <= VV_WORLD_CUSTOM; i++)
        if (!strcmp(name, g_split_names[i])) return i;
    return -1;
}
uint64_t vv_world_split_base(int split) {
    return split >= 0 && split <= VV_WORLD_CUSTOM ? (uint64_t)split * VV_WORLD_SPLIT_SIZE : 0;
}
int vv_world_split_of_seed(uint64_t seed) {
    uint64_t k = seed / VV_WORLD_SPLIT_SIZE;
    return k < VV_WORLD_N_SPLITS ? (int)k : VV_WORLD_CUSTOM;
}

// ---------------------------------------------------------------------------
// Parameters.

vv_world_params vv_world_default_params(void) {
    vv_world_params p;
    memset(&p, 0, sizeof(p));
    p.size = 64;
    p.min_objects = 1;
    p.max_objects = 5;
    static const float w[VV_WORLD_MAX_OBJECTS] = {0.2f, 0.25f, 0.25f, 0.15f, 0.15f, 0.15f, 0.15f, 0.15f, 0.15f};
    memcpy(p.count_weights, w, sizeof(w));
    p.small_frac = 0.16f;
    p.large_frac = 0.28f;
    p.p_large = 0.4f;
    p.jitter_frac = 0.05f;
    p.p_theme = 0.8f;
    p.alpha_min = 0.45f;
    p.alpha_max = 1.0f;
    p.p_occlude = 0.15f;
    p.occlude_min = 0.30f;
    p.occlude_max = 0.55f;
    p.p_border = 0.35f;
    p.noise = 10.0f;
    p.blob_amp = 25.0f;
    p.tint_jitter = 20.0f;
    p.clutter_max = 3;
    p.outline = 0.05f;
    p.supersample = 4;
    p.n_captions = 5;
    p.distinct_classes = true;
    p.one_per_region = true;
    return p;
}

static bool in01(float x) { return x >= 0.0f && x <= 1.0f; } // false for NaN

int vv_world_params_check(const vv_world_params *p, vv_error *e) {
    if (!p) return vv_err(e, VISVM_ERR_INVALID, "world params: NULL");
#define BAD(...) return vv_err(e, VISVM_ERR_INVALID, "world params: " __VA_ARGS__)
    if (p->size < 16 || p->size > 1024) BAD("size %d out of range [16, 1024]", p->size);
    if (p->min_objects < 1 || p->min_objects > VV_WORLD_MAX_OBJECTS)
        BAD("min_objects %d out of range [1, %d]", p->min_objects, VV_WORLD_MAX_OBJECTS);
    if (p->max_objects < p->min_objects || p->max_objects > VV_WORLD_MAX_OBJECTS)
        BAD("max_objects %d out of range [min_objects %d, %d]", p->max_objects, p->min_objects, VV_WORLD_MAX_OBJECTS);
    float wsum = 0.0f;
    for (int k = 0; k < VV_WORLD_MAX_OBJECTS; k++) {
        if (!(p->count_weights[k] >= 0.0f && p->count_weights[k] <= 1e6f))
            BAD("count_weights[%d] = %g must be >= 0", k, (double)p->count_weights[k]);
        if (k + 1 >= p->min_objects && k + 1 <= p->max_objects) wsum += p->count_weights[k];
    }
    if (!(wsum > 0.0f)) BAD("count_weights are all zero for counts %d..%d", p->min_objects, p->max_objects);
    if (!(p->small_frac >= 0.05f && p->small_frac <= 0.5f)) BAD("small_frac %g out of range [0.05, 0.5]", (double)p->small_frac);
    if (!(p->large_frac >= p->small_frac && p->large_frac <= 0.5f))
        BAD("large_frac %g out of range [small_frac %g, 0.5]", (double)p->large_frac, (double)p->small_frac);
    if (!in01(p->p_large)) BAD("p_large %g out of range [0, 1]", (double)p->p_large);
    if (!(p->jitter_frac >= 0.0f && p->jitter_frac <= 0.2f)) BAD("jitter_frac %g out of range [0, 0.2]", (double)p->jitter_frac);
    if (!in01(p->p_theme)) BAD("p_theme %g out of range [0, 1]", (double)p->p_theme);
    if (!(p->alpha_min > 0.0f && p->alpha_min <= 1.0f)) BAD("alpha_min %g out of range (0, 1]", (double)p->alpha_min);
    if (!(p->alpha_max >= p->alpha_min && p->alpha_max <= 1.0f))
        BAD("alpha_max %g out of range [alpha_min %g, 1]", (double)p->alpha_max, (double)p->alpha_min);
    if (!in01(p->p_occlude)) BAD("p_occlude %g out of range [0, 1]", (double)p->p_occlude);
    if (!(p->occlude_min >= 0.0f && p->occlude_min <= 0.9f))
        BAD("occlude_min %g out of range [0, 0.9]", (double)p->occlude_min);
    if (!(p->occlude_max >= p->occlude_min && p->occlude_max <= 0.9f))
        BAD("occlude_max %g out of range [occlude_min %g, 0.9]", (double)p->occlude_max, (double)p->occlude_min);
    if (!in01(p->p_border)) BAD("p_border %g out of range [0, 1]", (double)p->p_border);
    if (!(p->noise >= 0.0f && p->noise <= 100.0f)) BAD("noise %g out of range [0, 100]", (double)p->noise);
    if (!(p->blob_amp >= 0.0f && p->blob_amp <= 100.0f)) BAD("blob_amp %g out of range [0, 100]", (double)p->blob_amp);
    if (!(p->tint_jitter >= 0.0f && p->tint_jitter <= 100.0f))
        BAD("tint_jitter %g out of range [0, 100]", (double)p->tint_jitter);
    if (p->clutter_max < 0 || p->clutter_max > VV_WORLD_MAX_CLUTTER)
        BAD("clutter_max %d out of range [0, %d]", p->clutter_max, VV_WORLD_MAX_CLUTTER);
    if (!(p->outline >= 0.0f && p->outline <= 0.2f)) BAD("outline %g out of range [0, 0.2]", (double)p->outline);
    if (p->supersample < 1 || p->supersample > 8) BAD("supersample %d out of range [1, 8]", p->supersample);
    if (p->n_captions < 0 || p->n_captions > VV_WORLD_MAX_CAPTIONS)
        BAD("n_captions %d out of range [0, %d]", p->n_captions, VV_WORLD_MAX_CAPTIONS);
#undef BAD
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// Scene sampling.

static float unif(vv_rng *r, float lo, float hi) { return lo + (float)vv_rng_uniform(r) * (hi - lo); }
static uint8_t clamp_u8(float x) { return (uint8_t)(x < 0.0f ? 0.0f : x > 255.0f ? 255.0f : x + 0.5f); }

static bool class_present(const vv_world_scene *s, int n, int cls) {
    for (int i = 0; i < n; i++)
        if (s->obj[i].cls == cls) return true;
    return false;
}

int vv_world_scene_make(const vv_world_params *p, uint64_t seed, vv_world_scene *out, vv_error *e) {
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vv_world_scene_make: NULL output");
    memset(out, 0, sizeof(*out));
    int rc = vv_world_params_check(p, e);
    if (rc) return rc;
    if (seed > MAX_SEED) return vv_err(e, VISVM_ERR_RANGE, "seed %llu above 2^53 - 1", (unsigned long long)seed);
    vv_world_scene *s = out;
    vv_rng r;
    vv_rng_seed(&r, vv_world__stream(seed, 1));
    s->seed = seed;
    s->split = vv_world_split_of_seed(seed);
    s->w = s->h = p->size;
    s->renderable = true;
    s->theme = (int)vv_rng_below(&r, (uint32_t)vv_world_n_themes());

    // Object count.
    float wsum = 0.0f;
    for (int k = p->min_objects; k <= p->max_objects; k++) wsum += p->count_weights[k - 1];
    float pick = unif(&r, 0.0f, wsum);
    int n = p->max_objects;
    for (int k = p->min_objects; k <= p->max_objects; k++) {
        pick -= p->count_weights[k - 1];
        if (pick < 0.0f && p->count_weights[k - 1] > 0.0f) {
            n = k;
            break;
        }
    }
    s->n_objects = n;

    // Regions: a partial shuffle without replacement, or independent draws.
    int regions[VV_WORLD_N_REGIONS];
    for (int i = 0; i < VV_WORLD_N_REGIONS; i++) regions[i] = i;
    for (int i = 0; i < n; i++) {
        if (p->one_per_region) {
            int j = i + (int)vv_rng_below(&r, (uint32_t)(VV_WORLD_N_REGIONS - i));
            int tmp = regions[i];
            regions[i] = regions[j];
            regions[j] = tmp;
        } else {
            regions[i] = (int)vv_rng_below(&r, VV_WORLD_N_REGIONS);
        }
    }

    const int nc = vv_world_n_classes();
    int n_theme;
    const int *theme_cls = vv_world_theme_classes(s->theme, &n_theme);
    const float S = (float)p->size, cell = S / 3.0f;
    const uint8_t *tint = vv_world_theme_rgb(s->theme);
    for (int i = 0; i < n; i++) {
        vv_world_object *o = &s->obj[i];
        // Class: the theme's prior with probability p_theme, else any class.
        int pool[64], np = 0;
        bool themed = vv_rng_uniform(&r) < (double)p->p_theme;
        for (int pass = 0; pass < 2 && np == 0; pass++) {
            bool use_theme = themed && pass == 0;
            int cnt = use_theme ? n_theme : nc;
            for (int k = 0; k < cnt; k++) {
                int c = use_theme ? theme_cls[k] : k;
                if (!p->distinct_classes || !class_present(s, i, c)) pool[np++] = c;
            }
        }
        o->cls = pool[vv_rng_below(&r, (uint32_t)np)];
        o->color = (int)vv_rng_below(&r, (uint32_t)vv_world_n_colors());
        o->size = vv_rng_uniform(&r) < (double)p->p_large ? VV_WORLD_LARGE : VV_WORLD_SMALL;
        o->region = regions[i];
        o->alpha = unif(&r, p->alpha_min, p->alpha_max);
        o->alpha = (float)((double)(int64_t)((double)o->alpha * 10000.0 + 0.5) / 10000.0);
        o->extent = S * (o->size == VV_WORLD_LARGE ? p->large_frac : p->small_frac);
        int col = o->region % 3, row = o->region / 3;
        float jit = p->jitter_frac * S;
        o->cx = ((float)col + 0.5f) * cell + unif(&r, -jit, jit);
        o->cy = ((float)row + 0.5f) * cell + unif(&r, -jit, jit);

        // Occlusion: a clutter patch over one side, or (edge regions) the
        // image border cutting the object.
        o->occ_kind = VV_WORLD_OCC_NONE;
        if (vv_rng_uniform(&r) < (double)p->p_occlude) {
            float f = unif(&r, p->occlude_min, p->occlude_max);
            int sides[4], ns = 0; // 0 left, 1 right, 2 top, 3 bottom
            if (col == 0) sides[ns++] = 0;
            if (col == 2) sides[ns++] = 1;
            if (row == 0) sides[ns++] = 2;
            if (row == 2) sides[ns++] = 3;
            bool border = ns > 0 && vv_rng_uniform(&r) < (double)p->p_border;
            // The cut line hides the fraction f of the icon's area, whatever its shape.
            float ext = o->extent, half = 0.5f * ext;
            if (border) {
                o->occ_kind = VV_WORLD_OCC_BORDER;
                int side = sides[vv_rng_below(&r, (uint32_t)ns)];
                float t = vv_world__icon_cut(o->cls, side, f) * ext; // cut line, relative to the centre
                if (side == 0) o->cx = -t;            // the cut line lands on the image border
                else if (side == 1) o->cx = S - t;
                else if (side == 2) o->cy = -t;
                else o->cy = S - t;
            } else {
                o->occ_kind = VV_WORLD_OCC_PATCH;
                int side = (int)vv_rng_below(&r, 4);
                float t = vv_world__icon_cut(o->cls, side, f) * ext;
                float pad = 0.12f * ext;
                float x0 = o->cx - half - pad, x1 = o->cx + half + pad, y0 = o->cy - half - pad, y1 = o->cy + half + pad;
                if (side == 0) x1 = o->cx + t;
                else if (side == 1) x0 = o->cx + t;
                else if (side == 2) y1 = o->cy + t;
                else y0 = o->cy + t;
                o->occ_rect[0] = x0;
                o->occ_rect[1] = y0;
                o->occ_rect[2] = x1;
                o->occ_rect[3] = y1;
                // Muted: halfway between the tint and grey, with a light/dark shift.
                float shift = unif(&r, -40.0f, 40.0f);
                for (int k = 0; k < 3; k++) o->patch_rgb[k] = clamp_u8(0.5f * (float)tint[k] + 64.0f + shift);
            }
        }
    }

    // Background: jittered tint, smooth blobs, clutter strokes.
    // Mostly a brightness change, with a little hue drift, so themes stay
    // recognisable by their tint.
    float bright = unif(&r, -p->tint_jitter, p->tint_jitter);
    for (int k = 0; k < 3; k++)
        s->tint[k] = (float)tint[k] + bright + unif(&r, -0.3f * p->tint_jitter, 0.3f * p->tint_jitter);
    s->n_blobs = 3 + (int)vv_rng_below(&r, 3);
    for (int b = 0; b < s->n_blobs; b++) {
        vv_world_blob *bl = &s->blobs[b];
        bl->x = unif(&r, 0.0f, S);
        bl->y = unif(&r, 0.0f, S);
        bl->r = unif(&r, 0.25f * S, 0.6f * S);
        float lum = unif(&r, -p->blob_amp, p->blob_amp);
        for (int k = 0; k < 3; k++) bl->d[k] = lum + unif(&r, -0.3f * p->blob_amp, 0.3f * p->blob_amp);
    }
    s->n_strokes = (int)vv_rng_below(&r, (uint32_t)p->clutter_max + 1);
    for (int i = 0; i < s->n_strokes; i++) {
        vv_world_stroke *st = &s->strokes[i];
        // A short bent scribble: a random start, then two steps of <= S/4.
        st->x[0] = unif(&r, 0.0f, S);
        st->y[0] = unif(&r, 0.0f, S);
        for (int k = 1; k < 3; k++) {
            st->x[k] = st->x[k - 1] + unif(&r, -0.25f * S, 0.25f * S);
            st->y[k] = st->y[k - 1] + unif(&r, -0.25f * S, 0.25f * S);
        }
        st->width = unif(&r, 0.35f, 0.75f) * S / 64.0f;
        float shift = unif(&r, 25.0f, 55.0f) * (vv_rng_below(&r, 2) ? 1.0f : -1.0f);
        for (int k = 0; k < 3; k++) st->rgb[k] = clamp_u8(s->tint[k] + shift + unif(&r, -8.0f, 8.0f));
    }

    rc = vv_world__visibility(p, s, e);
    if (rc) memset(out, 0, sizeof(*out));
    return rc;
}

void vv_world_scene_free(vv_world_scene *s) {
    if (!s) return;
    if (s->captions)
        for (int i = 0; i < s->n_captions; i++) free(s->captions[i]);
    free(s->captions);
    memset(s, 0, sizeof(*s));
}

// ---------------------------------------------------------------------------
// Sentences.

// Region phrases; the centre has two wordings.
static const char *const g_region_phrase[VV_WORLD_N_REGIONS] = {
    "at the top left", "at the top", "at the top right", "on the left", "in the center",
    "on the right", "at the bottom left", "at the bottom", "at the bottom right"};
static const char *const g_size_words[2][2] = {{"small", "little"}, {"large", "big"}};
static const char *const g_theme_prep[] = {"in", "in", "in", "on", "in", "on"}; // kitchen office park street bathroom beach

static const char *article(const char *word) { return strchr("aeiou", word[0]) ? "an" : "a"; }

static const char *region_phrase(int region, int word) {
    return region == 4 && word == 1 ? "in the middle" : g_region_phrase[region];
}

// snprintf into buf, then capitalise the first letter. Returns the length or
// VISVM_ERR_RANGE if it did not fit.
static int finish(char *buf, size_t cap, int len) {
    if (len < 0 || (size_t)len >= cap) {
        if (cap) buf[0] = 0;
        return VISVM_ERR_RANGE;
    }
    if (buf[0] >= 'a' && buf[0] <= 'z') buf[0] = (char)(buf[0] - 'a' + 'A');
    return len;
}

int vv_world_object_sentence(const vv_world_object_words *w, char *buf, size_t cap) {
    if (!w || !buf || !cap) return VISVM_ERR_INVALID;
    const char *const *words = vv_world_class_words(w->cls, NULL);
    if (!words || w->cls_word < 0 || w->cls_word >= vv_world_class_n_singular(w->cls) || !vv_world_color_name(w->color) ||
        w->size < 0 || w->size > 1 || w->size_word < 0 || w->size_word > 1 || w->region < 0 ||
        w->region >= VV_WORLD_N_REGIONS || w->region_word < 0 || w->region_word > 1 || w->tmpl < 0 ||
        w->tmpl >= VV_WORLD_N_OBJECT_TMPL + VV_WORLD_N_HIDDEN_TMPL) {
        buf[0] = 0;
        return VISVM_ERR_INVALID;
    }
    const char *sz = g_size_words[w->size][w->size_word], *col = vv_world_color_name(w->color);
    const char *noun = words[w->cls_word], *pos = region_phrase(w->region, w->region_word), *a = article(sz);
    int n;
    switch (w->tmpl) {
    case 0: n = snprintf(buf, cap, "%s there is %s %s %s %s.", pos, a, sz, col, noun); break;
    case 1: n = snprintf(buf, cap, "there is %s %s %s %s %s.", a, sz, col, noun, pos); break;
    case 2: n = snprintf(buf, cap, "%s %s %s %s is %s.", a, sz, col, noun, pos); break;
    case 3: n = snprintf(buf, cap, "I can see %s %s %s %s %s.", a, sz, col, noun, pos); break;
    case 4: n = snprintf(buf, cap, "%s %s %s %s is partly hidden %s.", a, sz, col, noun, pos); break;
    default: n = snprintf(buf, cap, "%s %s %s %s %s is partly hidden.", pos, a, sz, col, noun); break;
    }
    return finish(buf, cap, n);
}

int vv_world_theme_sentence(int theme, int tmpl, char *buf, size_t cap) {
    const char *t = vv_world_theme_name(theme);
    if (!buf || !cap) return VISVM_ERR_INVALID;
    if (!t || tmpl < 0 || tmpl >= VV_WORLD_N_THEME_TMPL) {
        buf[0] = 0;
        return VISVM_ERR_INVALID;
    }
    const char *a = article(t);
    int n;
    switch (tmpl) {
    case 0: n = snprintf(buf, cap, "this is %s %s scene.", a, t); break;
    case 1: n = snprintf(buf, cap, "the picture shows %s %s.", a, t); break;
    case 2: n = snprintf(buf, cap, "this picture was taken %s %s %s.", g_theme_prep[theme], a, t); break;
    default: n = snprintf(buf, cap, "it looks like %s %s.", a, t); break;
    }
    return finish(buf, cap, n);
}

int vv_world_count_sentence(int count, int tmpl, char *buf, size_t cap) {
    const char *num = vv_world_number_word(count);
    if (!buf || !cap) return VISVM_ERR_INVALID;
    if (!num || tmpl < 0 || tmpl >= VV_WORLD_N_COUNT_TMPL) {
        buf[0] = 0;
        return VISVM_ERR_INVALID;
    }
    bool one = count == 1;
    const char *obj = one ? "object" : "objects";
    int n;
    switch (tmpl) {
    case 0: n = snprintf(buf, cap, "there %s %s %s.", one ? "is" : "are", num, obj); break;
    case 1: n = snprintf(buf, cap, "the image contains %s %s.", num, obj); break;
    case 2: n = snprintf(buf, cap, "I can see %s %s.", num, obj); break;
    default: n = snprintf(buf, cap, "%s %s %s visible.", num, obj, one ? "is" : "are"); break;
    }
    return finish(buf, cap, n);
}

int vv_world_global_sentence(int theme, int count, int tmpl, char *buf, size_t cap) {
    const char *t = vv_world_theme_name(theme), *num = vv_world_number_word(count);
    if (!buf || !cap) return VISVM_ERR_INVALID;
    if (!t || !num || tmpl < 0 || tmpl >= VV_WORLD_N_GLOBAL_TMPL) {
        buf[0] = 0;
        return VISVM_ERR_INVALID;
    }
    bool one = count == 1;
    const char *obj = one ? "object" : "objects";
    int n;
    switch (tmpl) {
    case 0: n = snprintf(buf, cap, "this %s scene shows %s %s.", t, num, obj); break;
    case 1: n = snprintf(buf, cap, "there %s %s %s in this %s scene.", one ? "is" : "are", num, obj, t); break;
    default: n = snprintf(buf, cap, "the picture shows %s %s %s %s %s.", num, obj, g_theme_prep[theme], article(t), t); break;
    }
    return finish(buf, cap, n);
}

// Caption order: large objects first, then by region, then drawing order.
static void caption_order(const vv_world_scene *s, int *idx) {
    int n = s->n_objects;
    for (int i = 0; i < n; i++) idx[i] = i;
    for (int i = 1; i < n; i++) { // insertion sort: stable, n <= 9
        int x = idx[i], j = i - 1;
        while (j >= 0) {
            const vv_world_object *a = &s->obj[idx[j]], *b = &s->obj[x];
            bool after = a->size < b->size || (a->size == b->size && a->region > b->region);
            if (!after) break;
            idx[j + 1] = idx[j];
            j--;
        }
        idx[j + 1] = x;
    }
}

// Random wording for object o (the "partly hidden" templates only when it is).
static vv_world_object_words object_words(const vv_world_object *o, vv_rng *r) {
    vv_world_object_words w = {o->cls, o->color, o->size, o->region, 0, 0, 0, 0};
    w.tmpl = (int)vv_rng_below(r, VV_WORLD_N_OBJECT_TMPL);
    bool hidden = vv_rng_uniform(r) < 0.5;
    if (o->visible < VV_WORLD_HIDDEN_VISIBLE && hidden)
        w.tmpl = VV_WORLD_N_OBJECT_TMPL + (int)vv_rng_below(r, VV_WORLD_N_HIDDEN_TMPL);
    w.cls_word = (int)vv_rng_below(r, (uint32_t)vv_world_class_n_singular(o->cls));
    w.size_word = vv_rng_uniform(r) < 0.25 ? 1 : 0; // the plain word is the common one
    w.region_word = (int)vv_rng_below(r, 2);
    return w;
}

static int check_scene(const vv_world_scene *s, vv_error *e) {
    if (!s) return vv_err(e, VISVM_ERR_INVALID, "NULL scene");
    if (s->n_objects < 1 || s->n_objects > VV_WORLD_MAX_OBJECTS)
        return vv_err(e, VISVM_ERR_INVALID, "scene %llu: object count %d out of range [1, %d]",
                      (unsigned long long)s->seed, s->n_objects, VV_WORLD_MAX_OBJECTS);
    if (!vv_world_theme_name(s->theme))
        return vv_err(e, VISVM_ERR_INVALID, "scene %llu: bad theme %d", (unsigned long long)s->seed, s->theme);
    for (int i = 0; i < s->n_objects; i++) {
        const vv_world_object *o = &s->obj[i];
        if (!vv_world_class_name(o->cls) || !vv_world_color_name(o->color) || !vv_world_size_name(o->size) ||
            !vv_world_region_name(o->region))
            return vv_err(e, VISVM_ERR_INVALID, "scene %llu: object %d has a bad class, colour, size or region",
                          (unsigned long long)s->seed, i);
    }
    return VISVM_OK;
}

// Appends "sentence " pieces to b.
static int caption_one(const vv_world_scene *s, vv_rng *r, vv_buf *b) {
    char sent[VV_WORLD_SENT_MAX];
    int n = s->n_objects, rc;
    // Global part: separate setting + count sentences, or one combined
    // sentence. One-object scenes always get both, so captions have >= 3 sentences.
    if (n == 1 || vv_rng_uniform(r) < 0.4) {
        rc = vv_world_theme_sentence(s->theme, (int)vv_rng_below(r, VV_WORLD_N_THEME_TMPL), sent, sizeof(sent));
        if (rc < 0 || vv_buf_printf(b, "%s", sent)) return VISVM_ERR_INTERNAL;
        rc = vv_world_count_sentence(n, (int)vv_rng_below(r, VV_WORLD_N_COUNT_TMPL), sent, sizeof(sent));
        if (rc < 0 || vv_buf_printf(b, " %s", sent)) return VISVM_ERR_INTERNAL;
    } else {
        rc = vv_world_global_sentence(s->theme, n, (int)vv_rng_below(r, VV_WORLD_N_GLOBAL_TMPL), sent, sizeof(sent));
        if (rc < 0 || vv_buf_printf(b, "%s", sent)) return VISVM_ERR_INTERNAL;
    }
    int idx[VV_WORLD_MAX_OBJECTS];
    caption_order(s, idx);
    for (int k = 0; k < n; k++) {
        vv_world_object_words w = object_words(&s->obj[idx[k]], r);
        rc = vv_world_object_sentence(&w, sent, sizeof(sent));
        if (rc < 0 || vv_buf_printf(b, " %s", sent)) return VISVM_ERR_INTERNAL;
    }
    return VISVM_OK;
}

int vv_world_captions(const vv_world_scene *s, uint64_t seed, int n, char **out, vv_error *e) {
    if (n < 0 || (n > 0 && !out)) return vv_err(e, VISVM_ERR_INVALID, "vv_world_captions: bad output");
    for (int i = 0; i < n; i++) out[i] = NULL;
    int rc = check_scene(s, e);
    if (rc) return rc;
    for (int i = 0; i < n; i++) {
        vv_rng r;
        vv_rng_seed(&r, vv_world__stream(seed, 0x100 + (uint64_t)i));
        vv_buf b = {0};
        if (caption_one(s, &r, &b) != VISVM_OK) {
            vv_buf_free(&b);
            for (int j = 0; j < i; j++) {
                free(out[j]);
                out[j] = NULL;
            }
            return vv_err(e, VISVM_ERR_NOMEM, "out of memory writing captions for scene %llu", (unsigned long long)s->seed);
        }
        out[i] = b.v;
    }
    return VISVM_OK;
}

int vv_world_scene_caption(const vv_world_params *p, vv_world_scene *s, vv_error *e) {
    int rc = vv_world_params_check(p, e);
    if (rc) return rc;
    if (!s) return vv_err(e, VISVM_ERR_INVALID, "vv_world_scene_caption: NULL scene");
    char **caps = p->n_captions ? calloc((size_t)p->n_captions, sizeof(char *)) : NULL;
    if (p->n_captions && !caps) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    rc = vv_world_captions(s, s->seed, p->n_captions, caps, e);
    if (rc) {
        free(caps);
        return rc;
    }
    if (s->captions)
        for (int i = 0; i < s->n_captions; i++) free(s->captions[i]);
    free(s->captions);
    s->captions = caps;
    s->n_captions = p->n_captions;
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// CLIP sentences with hard negatives.

static const char *const g_kind_names[VV_WS_N_KINDS] = {
    "theme", "count", "global", "object", "absent_theme", "absent_other", "color", "position", "size", "wrong_count",
    "wrong_theme"};
const char *vv_world_sent_kind_name(int kind) { return kind >= 0 && kind < VV_WS_N_KINDS ? g_kind_names[kind] : NULL; }

// Is there an object with exactly these attributes?
static bool has_object(const vv_world_scene *s, int cls, int color, int size, int region) {
    for (int i = 0; i < s->n_objects; i++) {
        const vv_world_object *o = &s->obj[i];
        if (o->cls == cls && o->color == color && o->size == size && o->region == region) return true;
    }
    return false;
}

typedef struct {
    vv_world_sentence *v;
    int n, cap;
} sent_list;

static vv_world_sentence *sent_push(sent_list *L, int kind, bool positive, int pos_index, int object, int cls) {
    if (L->n == L->cap) {
        int nc = L->cap ? 2 * L->cap : 32;
        vv_world_sentence *nv = realloc(L->v, (size_t)nc * sizeof(*nv));
        if (!nv) return NULL;
        L->v = nv;
        L->cap = nc;
    }
    vv_world_sentence *x = &L->v[L->n];
    memset(x, 0, sizeof(*x));
    x->kind = kind;
    x->positive = positive;
    x->pos_index = positive ? L->n : pos_index;
    x->object = object;
    x->cls = cls;
    L->n++;
    return x;
}

// A different theme / count than the true one.
static int other_theme(int theme, vv_rng *r) {
    int t = (int)vv_rng_below(r, (uint32_t)vv_world_n_themes() - 1);
    return t >= theme ? t + 1 : t;
}
static int other_count(int n, vv_rng *r) { // off by one or two, within 1..9
    int c[4], k = 0;
    for (int d = -2; d <= 2; d++)
        if (d && n + d >= 1 && n + d <= 9) c[k++] = n + d;
    return c[vv_rng_below(r, (uint32_t)k)];
}

int vv_world_sentences(const vv_world_scene *s, uint64_t seed, vv_world_sentence **out, int *n_out, vv_error *e) {
    if (!out || !n_out) return vv_err(e, VISVM_ERR_INVALID, "vv_world_sentences: NULL output");
    *out = NULL;
    *n_out = 0;
    int rc = check_scene(s, e);
    if (rc) return rc;
    vv_rng r;
    vv_rng_seed(&r, vv_world__stream(seed, 0x200));
    sent_list L = {0};
    int n = s->n_objects;
    vv_world_sentence *x;
#define PUSH(...)                               \
    do {                                        \
        if (!(x = sent_push(&L, __VA_ARGS__))) \
            goto oom;                           \
    } while (0)

    int t = (int)vv_rng_below(&r, VV_WORLD_N_THEME_TMPL), pi;
    PUSH(VV_WS_THEME, true, 0, -1, -1);
    pi = L.n - 1;
    vv_world_theme_sentence(s->theme, t, x->text, sizeof(x->text));
    PUSH(VV_WS_NEG_THEME, false, pi, -1, -1);
    vv_world_theme_sentence(other_theme(s->theme, &r), t, x->text, sizeof(x->text));

    t = (int)vv_rng_below(&r, VV_WORLD_N_COUNT_TMPL);
    PUSH(VV_WS_COUNT, true, 0, -1, -1);
    pi = L.n - 1;
    vv_world_count_sentence(n, t, x->text, sizeof(x->text));
    PUSH(VV_WS_NEG_COUNT, false, pi, -1, -1);
    vv_world_count_sentence(other_count(n, &r), t, x->text, sizeof(x->text));

    t = (int)vv_rng_below(&r, VV_WORLD_N_GLOBAL_TMPL);
    PUSH(VV_WS_GLOBAL, true, 0, -1, -1);
    pi = L.n - 1;
    vv_world_global_sentence(s->theme, n, t, x->text, sizeof(x->text));
    PUSH(VV_WS_NEG_THEME, false, pi, -1, -1);
    vv_world_global_sentence(other_theme(s->theme, &r), n, t, x->text, sizeof(x->text));
    PUSH(VV_WS_NEG_COUNT, false, pi, -1, -1);
    vv_world_global_sentence(s->theme, other_count(n, &r), t, x->text, sizeof(x->text));

    int idx[VV_WORLD_MAX_OBJECTS];
    caption_order(s, idx);
    const int nc = vv_world_n_classes(), ncol = vv_world_n_colors();
    for (int k = 0; k < n; k++) {
        int oi = idx[k];
        const vv_world_object *o = &s->obj[oi];
        vv_world_object_words w = object_words(o, &r), nw;
        PUSH(VV_WS_OBJECT, true, 0, oi, o->cls);
        pi = L.n - 1;
        vv_world_object_sentence(&w, x->text, sizeof(x->text));
        // Absent classes, same theme and outside it (the class word is re-drawn).
        int cand_t[64], nt = 0, cand_o[64], no = 0;
        for (int c = 0; c < nc; c++) {
            if (class_present(s, n, c)) continue;
            if (vv_world_theme_has_class(s->theme, c)) cand_t[nt++] = c;
            else cand_o[no++] = c;
        }
        for (int pass = 0; pass < 2; pass++) {
            int *cand = pass ? cand_o : cand_t, nn = pass ? no : nt;
            if (!nn) continue;
            nw = w;
            nw.cls = cand[vv_rng_below(&r, (uint32_t)nn)];
            nw.cls_word = (int)vv_rng_below(&r, (uint32_t)vv_world_class_n_singular(nw.cls));
            PUSH(pass ? VV_WS_NEG_ABSENT_OTHER : VV_WS_NEG_ABSENT_THEME, false, pi, oi, nw.cls);
            vv_world_object_sentence(&nw, x->text, sizeof(x->text));
        }
        // Wrong colour / position / size: only slots that make the statement false.
        int cand[VV_WORLD_N_REGIONS + 16], m = 0;
        for (int c = 0; c < ncol; c++)
            if (c != o->color && !has_object(s, o->cls, c, o->size, o->region)) cand[m++] = c;
        if (m) {
            nw = w;
            nw.color = cand[vv_rng_below(&r, (uint32_t)m)];
            PUSH(VV_WS_NEG_COLOR, false, pi, oi, o->cls);
            vv_world_object_sentence(&nw, x->text, sizeof(x->text));
        }
        m = 0;
        for (int g = 0; g < VV_WORLD_N_REGIONS; g++)
            if (g != o->region && !has_object(s, o->cls, o->color, o->size, g)) cand[m++] = g;
        if (m) {
            nw = w;
            nw.region = cand[vv_rng_below(&r, (uint32_t)m)];
            PUSH(VV_WS_NEG_POSITION, false, pi, oi, o->cls);
            vv_world_object_sentence(&nw, x->text, sizeof(x->text));
        }
        if (!has_object(s, o->cls, o->color, 1 - o->size, o->region)) {
            nw = w;
            nw.size = 1 - o->size;
            PUSH(VV_WS_NEG_SIZE, false, pi, oi, o->cls);
            vv_world_object_sentence(&nw, x->text, sizeof(x->text));
        }
    }
#undef PUSH
    *out = L.v;
    *n_out = L.n;
    return VISVM_OK;
oom:
    free(L.v);
    return vv_err(e, VISVM_ERR_NOMEM, "out of memory writing sentences for scene %llu", (unsigned long long)s->seed);
}

// ---------------------------------------------------------------------------
// JSON lines.

static int json_str(vv_buf *b, const char *s) {
    if (vv_buf_append(b, "\"", 1)) return -1;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int rc;
        if (c == '"' || c == '\\') rc = vv_buf_printf(b, "\\%c", c);
        else if (c < 0x20) rc = vv_buf_printf(b, "\\u%04x", c);
        else rc = vv_buf_append(b, s, 1);
        if (rc) return -1;
    }
    return vv_buf_append(b, "\"", 1) ? -1 : 0;
}

// Fixed 4 decimals with trailing zeros trimmed ("1", "0.65", "0.8123").
static int json_num4(vv_buf *b, double x) {
    char t[48];
    snprintf(t, sizeof(t), "%.4f", x);
    char *dot = strchr(t, '.');
    if (dot) {
        char *end = t + strlen(t) - 1;
        while (end > dot && *end == '0') *end-- = 0;
        if (end == dot) *end = 0;
    }
    if (!strcmp(t, "-0")) strcpy(t, "0");
    return vv_buf_printf(b, "%s", t) ? -1 : 0;
}

static const char *const g_occ_names[] = {"none", "patch", "border"};

int vv_world_scene_to_json(const vv_world_scene *s, vv_buf *b, vv_error *e) {
    if (!s || !b) return vv_err(e, VISVM_ERR_INVALID, "vv_world_scene_to_json: NULL argument");
    int rc = check_scene(s, e);
    if (rc) return rc;
    const char *split = vv_world_split_name(s->split);
    if (!split) return vv_err(e, VISVM_ERR_INVALID, "scene %llu: bad split %d", (unsigned long long)s->seed, s->split);
    bool ok = true;
    ok = ok && !vv_buf_printf(b, "{\"image\":");
    ok = ok && !json_str(b, s->image);
    ok = ok && !vv_buf_printf(b, ",\"seed\":%llu,\"split\":\"%s\",\"theme\":\"%s\"", (unsigned long long)s->seed, split,
                              vv_world_theme_name(s->theme));
    // width / height are optional on input (0 = unknown): write only what is
    // known, so every line this writes parses back (a fuzzed line without
    // "height" used to come back as "height":0, which the parser refuses)
    if (s->w > 0) ok = ok && !vv_buf_printf(b, ",\"width\":%d", s->w);
    if (s->h > 0) ok = ok && !vv_buf_printf(b, ",\"height\":%d", s->h);
    ok = ok && !vv_buf_printf(b, ",\"objects\":[");
    for (int i = 0; ok && i < s->n_objects; i++) {
        const vv_world_object *o = &s->obj[i];
        int occ = o->occ_kind >= 0 && o->occ_kind <= 2 ? o->occ_kind : 0;
        ok = ok && !vv_buf_printf(b,
                                  "%s{\"class\":\"%s\",\"color\":\"%s\",\"size\":\"%s\",\"position\":\"%s\","
                                  "\"bbox\":[%d,%d,%d,%d],\"visible\":",
                                  i ? "," : "", vv_world_class_name(o->cls), vv_world_color_name(o->color),
                                  vv_world_size_name(o->size), vv_world_region_name(o->region), o->bbox[0], o->bbox[1],
                                  o->bbox[2], o->bbox[3]);
        ok = ok && !json_num4(b, o->visible);
        ok = ok && !vv_buf_printf(b, ",\"alpha\":");
        ok = ok && !json_num4(b, o->alpha);
        ok = ok && !vv_buf_printf(b, ",\"occlusion\":\"%s\"}", g_occ_names[occ]);
    }
    ok = ok && !vv_buf_printf(b, "],\"captions\":[");
    for (int i = 0; ok && i < s->n_captions; i++) {
        ok = ok && !(i && vv_buf_append(b, ",", 1));
        ok = ok && !json_str(b, s->captions[i] ? s->captions[i] : "");
    }
    ok = ok && !vv_buf_printf(b, "]}");
    if (!ok) return vv_err(e, VISVM_ERR_NOMEM, "out of memory writing JSON of scene %llu", (unsigned long long)s->seed);
    return VISVM_OK;
}

static const cJSON *get_key(const cJSON *obj, const char *key, const char *where, vv_error *e) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) vv_err(e, VISVM_ERR_FORMAT, "%smissing key '%s'", where, key);
    return v;
}

static int get_str(const cJSON *obj, const char *key, const char *where, const char **out, vv_error *e) {
    const cJSON *v = get_key(obj, key, where, e);
    if (!v) return VISVM_ERR_FORMAT;
    if (!cJSON_IsString(v)) return vv_err(e, VISVM_ERR_FORMAT, "%skey '%s' is not a string", where, key);
    *out = v->valuestring;
    return VISVM_OK;
}

static int get_num(const cJSON *obj, const char *key, const char *where, double lo, double hi, double *out, vv_error *e) {
    const cJSON *v = get_key(obj, key, where, e);
    if (!v) return VISVM_ERR_FORMAT;
    if (!cJSON_IsNumber(v)) return vv_err(e, VISVM_ERR_FORMAT, "%skey '%s' is not a number", where, key);
    if (!(v->valuedouble >= lo && v->valuedouble <= hi))
        return vv_err(e, VISVM_ERR_FORMAT, "%skey '%s' = %g out of range [%g, %g]", where, key, v->valuedouble, lo, hi);
    *out = v->valuedouble;
    return VISVM_OK;
}

// Name -> index through a lookup function; error names the key and value.
static int get_enum(const cJSON *obj, const char *key, const char *where, int (*find)(const char *), int *out,
                    vv_error *e) {
    const char *s = NULL;
    int rc = get_str(obj, key, where, &s, e);
    if (rc) return rc;
    *out = find(s);
    if (*out < 0) return vv_err(e, VISVM_ERR_FORMAT, "%sunknown %s '%s'", where, key, s);
    return VISVM_OK;
}

static int parse_scene(const cJSON *root, vv_world_scene *s, vv_error *e) {
    if (!cJSON_IsObject(root)) return vv_err(e, VISVM_ERR_FORMAT, "scene is not a JSON object");
    const char *str = NULL;
    double d = 0.0;
    int rc;
    if ((rc = get_str(root, "image", "", &str, e))) return rc;
    if (strlen(str) >= sizeof(s->image))
        return vv_err(e, VISVM_ERR_FORMAT, "key 'image' longer than %zu bytes", sizeof(s->image) - 1);
    strcpy(s->image, str);
    if ((rc = get_num(root, "seed", "", 0, (double)MAX_SEED, &d, e))) return rc;
    if (d != (double)(uint64_t)d) return vv_err(e, VISVM_ERR_FORMAT, "key 'seed' = %g is not an integer", d);
    s->seed = (uint64_t)d;
    if ((rc = get_enum(root, "split", "", vv_world_split_from_name, &s->split, e))) return rc;
    if ((rc = get_enum(root, "theme", "", vv_world_theme_find, &s->theme, e))) return rc;
    s->w = s->h = 0; // optional
    if (cJSON_GetObjectItemCaseSensitive(root, "width")) {
        if ((rc = get_num(root, "width", "", 1, VV_IMAGE_MAX_SIDE, &d, e))) return rc;
        s->w = (int)d;
    }
    if (cJSON_GetObjectItemCaseSensitive(root, "height")) {
        if ((rc = get_num(root, "height", "", 1, VV_IMAGE_MAX_SIDE, &d, e))) return rc;
        s->h = (int)d;
    }
    const cJSON *objs = get_key(root, "objects", "", e);
    if (!objs) return VISVM_ERR_FORMAT;
    if (!cJSON_IsArray(objs)) return vv_err(e, VISVM_ERR_FORMAT, "key 'objects' is not an array");
    int n = cJSON_GetArraySize(objs);
    if (n < 1 || n > VV_WORLD_MAX_OBJECTS)
        return vv_err(e, VISVM_ERR_FORMAT, "key 'objects' has %d entries, expected 1..%d", n, VV_WORLD_MAX_OBJECTS);
    s->n_objects = n;
    for (int i = 0; i < n; i++) {
        const cJSON *o = cJSON_GetArrayItem(objs, i);
        vv_world_object *ob = &s->obj[i];
        char where[48];
        snprintf(where, sizeof(where), "objects[%d]: ", i);
        if (!cJSON_IsObject(o)) return vv_err(e, VISVM_ERR_FORMAT, "%snot an object", where);
        if ((rc = get_enum(o, "class", where, vv_world_class_find, &ob->cls, e))) return rc;
        if ((rc = get_enum(o, "color", where, vv_world_color_find, &ob->color, e))) return rc;
        if ((rc = get_enum(o, "size", where, vv_world_size_find, &ob->size, e))) return rc;
        if ((rc = get_enum(o, "position", where, vv_world_region_find, &ob->region, e))) return rc;
        const cJSON *bb = get_key(o, "bbox", where, e);
        if (!bb) return VISVM_ERR_FORMAT;
        if (!cJSON_IsArray(bb) || cJSON_GetArraySize(bb) != 4)
            return vv_err(e, VISVM_ERR_FORMAT, "%skey 'bbox' is not an array of 4 numbers", where);
        for (int k = 0; k < 4; k++) {
            const cJSON *v = cJSON_GetArrayItem(bb, k);
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > VV_IMAGE_MAX_SIDE ||
                v->valuedouble != (double)(int)v->valuedouble)
                return vv_err(e, VISVM_ERR_FORMAT, "%skey 'bbox' entry %d is not a pixel coordinate", where, k);
            ob->bbox[k] = (int)v->valuedouble;
        }
        if ((rc = get_num(o, "visible", where, 0, 1, &d, e))) return rc;
        ob->visible = (float)d;
        ob->alpha = 1.0f; // optional keys
        if (cJSON_GetObjectItemCaseSensitive(o, "alpha")) {
            if ((rc = get_num(o, "alpha", where, 0, 1, &d, e))) return rc;
            ob->alpha = (float)d;
        }
        if (cJSON_GetObjectItemCaseSensitive(o, "occlusion")) {
            if ((rc = get_str(o, "occlusion", where, &str, e))) return rc;
            ob->occ_kind = -1;
            for (int k = 0; k < 3; k++)
                if (!strcmp(str, g_occ_names[k])) ob->occ_kind = k;
            if (ob->occ_kind < 0) return vv_err(e, VISVM_ERR_FORMAT, "%sunknown occlusion '%s'", where, str);
        }
    }
    const cJSON *caps = get_key(root, "captions", "", e);
    if (!caps) return VISVM_ERR_FORMAT;
    if (!cJSON_IsArray(caps)) return vv_err(e, VISVM_ERR_FORMAT, "key 'captions' is not an array");
    int nc = cJSON_GetArraySize(caps);
    if (nc > 0) {
        s->captions = calloc((size_t)nc, sizeof(char *));
        if (!s->captions) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < nc; i++) {
        const cJSON *c = cJSON_GetArrayItem(caps, i);
        if (!cJSON_IsString(c)) return vv_err(e, VISVM_ERR_FORMAT, "captions[%d] is not a string", i);
        if (!(s->captions[i] = vv_strdup(c->valuestring))) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        s->n_captions = i + 1;
    }
    return VISVM_OK;
}

int vv_world_scene_from_json(const char *line, vv_world_scene *out, vv_error *e) {
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vv_world_scene_from_json: NULL output");
    memset(out, 0, sizeof(*out));
    if (!line) return vv_err(e, VISVM_ERR_INVALID, "vv_world_scene_from_json: NULL line");
    cJSON *root = cJSON_Parse(line);
    if (!root) {
        const char *at = cJSON_GetErrorPtr();
        long off = at && at >= line && at <= line + strlen(line) ? (long)(at - line) : -1;
        return vv_err(e, VISVM_ERR_FORMAT, "invalid JSON (near byte %ld)", off);
    }
    int rc = parse_scene(root, out, e);
    cJSON_Delete(root);
    if (rc) vv_world_scene_free(out);
    return rc;
}

void vv_world_scenes_free(vv_world_scene *scenes, int n) {
    if (!scenes) return;
    for (int i = 0; i < n; i++) vv_world_scene_free(&scenes[i]);
    free(scenes);
}

int vv_world_read_jsonl(const char *path, vv_world_scene **scenes, int *n, vv_error *e) {
    if (!scenes || !n) return vv_err(e, VISVM_ERR_INVALID, "vv_world_read_jsonl: NULL output");
    *scenes = NULL;
    *n = 0;
    char *data = NULL;
    size_t size = 0;
    int rc = vv_read_file(path, &data, &size, e);
    if (rc) return rc;
    vv_world_scene *v = NULL;
    int cnt = 0, cap = 0;
    long line_no = 0;
    char *p = data, *end = data + size;
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        line_no++;
        *le = 0;
        char *q = p;
        while (*q == ' ' || *q == '\t' || *q == '\r') q++;
        if (*q) {
            if (cnt == cap) {
                int nc = cap ? 2 * cap : 256;
                vv_world_scene *nv = realloc(v, (size_t)nc * sizeof(*nv));
                if (!nv) {
                    rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory reading '%s'", path);
                    goto fail;
                }
                v = nv;
                cap = nc;
            }
            rc = vv_world_scene_from_json(q, &v[cnt], e);
            if (rc) {
                vv_err_prefix(e, rc, "%s:%ld", path, line_no);
                goto fail;
            }
            cnt++;
        }
        p = le + 1;
    }
    free(data);
    *scenes = v;
    *n = cnt;
    return VISVM_OK;
fail:
    free(data);
    vv_world_scenes_free(v, cnt);
    return rc;
}

// ---------------------------------------------------------------------------
// Generation.

typedef struct {
    int rc;
    vv_error err;
    vv_buf json;
} gen_slot;

typedef struct {
    const vv_world_params *p;
    const char *dir;
    uint64_t first; // seed of slot 0
    int n;          // slots in this batch
    gen_slot *slots;
    atomic_int next;
} gen_batch;

static int gen_one(const vv_world_params *p, const char *dir, uint64_t seed, gen_slot *slot) {
    vv_world_scene s;
    vv_image img = {0};
    vv_error *e = &slot->err;
    int rc = vv_world_scene_make(p, seed, &s, e);
    if (rc) return rc;
    snprintf(s.image, sizeof(s.image), "images/%07llu.png", (unsigned long long)seed);
    if (!(rc = vv_world_scene_caption(p, &s, e)) && !(rc = vv_world_render(p, &s, &img, NULL, e))) {
        vv_buf path = {0};
        if (vv_buf_printf(&path, "%s/%s", dir, s.image)) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        else rc = vv_image_save_png(&img, path.v, e);
        vv_buf_free(&path);
    }
    if (!rc) rc = vv_world_scene_to_json(&s, &slot->json, e);
    vv_image_free(&img);
    vv_world_scene_free(&s);
    return rc;
}

static void gen_worker(void *ctx, int ith, int nth) {
    gen_batch *b = (gen_batch *)ctx;
    (void)ith;
    (void)nth;
    for (;;) { // dynamic scheduling: the output is per slot, so order of work does not matter
        int i = atomic_fetch_add(&b->next, 1);
        if (i >= b->n) break;
        gen_slot *sl = &b->slots[i];
        sl->rc = gen_one(b->p, b->dir, b->first + (uint64_t)i, sl);
    }
}

static int write_meta(const vv_world_params *p, uint64_t first, int64_t n, const char *dir, vv_error *e) {
    vv_buf b = {0}, path = {0};
    const char *split = vv_world_split_name(vv_world_split_of_seed(first));
    int rc = vv_buf_printf(&b,
        "{\"format\":\"visvm-world-1\",\"split\":\"%s\",\"first_seed\":%llu,\"n\":%lld,\"start\":%llu,"
        "\"params\":{\"size\":%d,\"min_objects\":%d,\"max_objects\":%d,\"count_weights\":[",
        split, (unsigned long long)first, (long long)n,
        (unsigned long long)(first - vv_world_split_base(vv_world_split_of_seed(first))), p->size, p->min_objects,
        p->max_objects);
    for (int k = 0; k < VV_WORLD_MAX_OBJECTS && !rc; k++) rc = vv_buf_printf(&b, "%s%g", k ? "," : "", (double)p->count_weights[k]);
    if (!rc)
        rc = vv_buf_printf(&b,
            "],\"small_frac\":%g,\"large_frac\":%g,\"p_large\":%g,\"jitter_frac\":%g,\"p_theme\":%g,"
            "\"alpha_min\":%g,\"alpha_max\":%g,\"p_occlude\":%g,\"occlude_min\":%g,\"occlude_max\":%g,"
            "\"p_border\":%g,\"noise\":%g,\"blob_amp\":%g,\"tint_jitter\":%g,\"clutter_max\":%d,\"outline\":%g,"
            "\"supersample\":%d,\"n_captions\":%d,\"distinct_classes\":%s,\"one_per_region\":%s}}\n",
            (double)p->small_frac, (double)p->large_frac, (double)p->p_large, (double)p->jitter_frac,
            (double)p->p_theme, (double)p->alpha_min, (double)p->alpha_max, (double)p->p_occlude,
            (double)p->occlude_min, (double)p->occlude_max, (double)p->p_border, (double)p->noise,
            (double)p->blob_amp, (double)p->tint_jitter, p->clutter_max, (double)p->outline, p->supersample,
            p->n_captions, p->distinct_classes ? "true" : "false", p->one_per_region ? "true" : "false");
    if (!rc) rc = vv_buf_printf(&path, "%s/world.json", dir);
    if (rc) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    else rc = vv_write_file_atomic(path.v, b.v, b.n, e);
    vv_buf_free(&b);
    vv_buf_free(&path);
    return rc;
}

int vv_world_generate_seeds(const vv_world_params *p, uint64_t first, int64_t n, const char *out_dir, vv_pool *pool,
                            vv_world_progress_fn progress, void *ud, vv_error *e) {
    int rc = vv_world_params_check(p, e);
    if (rc) return rc;
    if (!out_dir || !*out_dir) return vv_err(e, VISVM_ERR_INVALID, "world generate: empty output directory");
    if (n < 0 || n > (int64_t)VV_WORLD_SPLIT_SIZE)
        return vv_err(e, VISVM_ERR_RANGE, "world generate: n = %lld out of range [0, %llu]", (long long)n,
                      (unsigned long long)VV_WORLD_SPLIT_SIZE);
    if (first > MAX_SEED || (uint64_t)n > MAX_SEED - first)
        return vv_err(e, VISVM_ERR_RANGE, "world generate: seeds %llu + %lld exceed 2^53 - 1", (unsigned long long)first,
                      (long long)n);
    int split = vv_world_split_of_seed(first);
    if (n > 0 && vv_world_split_of_seed(first + (uint64_t)n - 1) != split)
        return vv_err(e, VISVM_ERR_RANGE, "world generate: seeds %llu..%llu cross the end of the %s range [%llu, %llu)",
                      (unsigned long long)first, (unsigned long long)(first + (uint64_t)n - 1),
                      vv_world_split_name(split), (unsigned long long)vv_world_split_base(split),
                      (unsigned long long)(vv_world_split_base(split) + VV_WORLD_SPLIT_SIZE));
    vv_buf path = {0};
    if (vv_buf_printf(&path, "%s/images", out_dir)) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    rc = vv_mkdir_p(path.v, e);
    if (!rc) {
        path.n = 0;
        rc = vv_buf_printf(&path, "%s/synonyms.txt", out_dir) ? vv_err(e, VISVM_ERR_NOMEM, "out of memory")
                                                              : vv_world_write_synonyms(path.v, e);
    }
    if (!rc) rc = write_meta(p, first, n, out_dir, e);
    vv_atomic_file f = {0};
    if (!rc) {
        path.n = 0;
        rc = vv_buf_printf(&path, "%s/scenes.jsonl", out_dir) ? vv_err(e, VISVM_ERR_NOMEM, "out of memory")
                                                              : vv_atomic_open(&f, path.v, e);
    }
    vv_buf_free(&path);
    if (rc) return rc;

    // Batches keep memory bounded and give progress reports; each slot is a
    // pure function of its seed, so the thread count cannot change the output.
    const int B = 256;
    gen_slot *slots = calloc((size_t)B, sizeof(gen_slot));
    if (!slots) {
        vv_atomic_abort(&f);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    for (int64_t done = 0; done < n && !rc;) {
        int nb = (int)VV_MIN((int64_t)B, n - done);
        gen_batch b = {p, out_dir, first + (uint64_t)done, nb, slots, 0};
        for (int i = 0; i < nb; i++) {
            slots[i].rc = 0;
            slots[i].json.n = 0;
            if (slots[i].json.v) slots[i].json.v[0] = 0;
            vv_err_clear(&slots[i].err);
        }
        atomic_init(&b.next, 0);
        vv_pool_run(pool, gen_worker, &b);
        for (int i = 0; i < nb && !rc; i++) {
            if (slots[i].rc) {
                rc = slots[i].rc;
                vv_err(e, rc, "scene %llu: %s", (unsigned long long)(b.first + (uint64_t)i), slots[i].err.msg);
                break;
            }
            rc = vv_atomic_write(&f, slots[i].json.v, slots[i].json.n, e);
            if (!rc) rc = vv_atomic_write(&f, "\n", 1, e);
        }
        done += nb;
        if (!rc && progress) progress(ud, done, n);
    }
    for (int i = 0; i < B; i++) vv_buf_free(&slots[i].json);
    free(slots);
    if (rc) {
        vv_atomic_abort(&f);
        return rc;
    }
    return vv_atomic_commit(&f, e);
}

int vv_world_generate(const vv_world_params *p, int split, uint64_t start, int64_t n, const char *out_dir,
                      vv_pool *pool, vv_world_progress_fn progress, void *ud, vv_error *e) {
    if (split < 0 || split >= VV_WORLD_N_SPLITS)
        return vv_err(e, VISVM_ERR_INVALID, "world generate: bad split %d (train, val, test or fresh)", split);
    if (n < 0) return vv_err(e, VISVM_ERR_RANGE, "world generate: n = %lld is negative", (long long)n);
    if (start > VV_WORLD_SPLIT_SIZE || (uint64_t)n > VV_WORLD_SPLIT_SIZE - start)
        return vv_err(e, VISVM_ERR_RANGE, "world generate: start %llu + n %lld leaves the %s range of %llu seeds",
                      (unsigned long long)start, (long long)n, vv_world_split_name(split),
                      (unsigned long long)VV_WORLD_SPLIT_SIZE);
    return vv_world_generate_seeds(p, vv_world_split_base(split) + start, n, out_dir, pool, progress, ud, e);
}
