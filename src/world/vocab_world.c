// vocab_world.c - the world's fixed tables: object classes and the words that
// mention them, colours, themes (with their favoured classes and background
// tints), sizes, grid regions, number words, and the CHAIR synonym file.
//
// Word rules (checked by tests/test_world.c): every mention word belongs to
// exactly one class, and no mention word is a colour, size, position, theme,
// number or template word, so CHAIR's word -> class mapping is unambiguous.
#include <string.h>

#include "world.h"

// ---------------------------------------------------------------------------
// Classes. Singular words first (the caption templates pick among them), then
// the plurals (only for CHAIR matching). The order is the icon order in
// render.c.
#define MAXW 8
typedef struct {
    const char *words[MAXW]; // NULL-terminated
    int n_singular;
} class_def;

static const class_def g_classes[] = {
    {{"cup", "mug", "cups", "mugs"}, 2},
    {{"bowl", "dish", "bowls", "dishes"}, 2},
    {{"bottle", "flask", "bottles", "flasks"}, 2},
    {{"pan", "skillet", "pans", "skillets"}, 2},
    {{"apple", "apples"}, 1},
    {{"clock", "clocks"}, 1},
    {{"book", "notebook", "books", "notebooks"}, 2},
    {{"lamp", "lamps"}, 1},
    {{"key", "keys"}, 1},
    {{"pencil", "crayon", "pencils", "crayons"}, 2},
    {{"envelope", "letter", "envelopes", "letters"}, 2},
    {{"tree", "pine", "trees", "pines"}, 2},
    {{"flower", "blossom", "flowers", "blossoms"}, 2},
    {{"leaf", "leaves"}, 1},
    {{"kite", "kites"}, 1},
    {{"sun", "suns"}, 1},
    {{"duck", "ducks"}, 1},
    {{"car", "automobile", "cars", "automobiles"}, 2},
    {{"house", "cottage", "houses", "cottages"}, 2},
    {{"sign", "signpost", "signs", "signposts"}, 2},
    {{"umbrella", "parasol", "umbrellas", "parasols"}, 2},
    {{"toothbrush", "toothbrushes"}, 1},
    {{"soap", "soaps"}, 1},
    {{"mirror", "mirrors"}, 1},
    {{"fish", "fishes"}, 1},
    {{"boat", "sailboat", "boats", "sailboats"}, 2},
    {{"shell", "seashell", "shells", "seashells"}, 2},
    {{"star", "starfish", "stars"}, 2},
};
#define N_CLASSES (int)(sizeof(g_classes) / sizeof(g_classes[0]))

int vv_world_n_classes(void) { return N_CLASSES; }

const char *vv_world_class_name(int cls) { return cls >= 0 && cls < N_CLASSES ? g_classes[cls].words[0] : NULL; }

const char *const *vv_world_class_words(int cls, int *n) {
    if (cls < 0 || cls >= N_CLASSES) {
        if (n) *n = 0;
        return NULL;
    }
    int k = 0;
    while (k < MAXW && g_classes[cls].words[k]) k++;
    if (n) *n = k;
    return g_classes[cls].words;
}

int vv_world_class_n_singular(int cls) { return cls >= 0 && cls < N_CLASSES ? g_classes[cls].n_singular : 0; }

int vv_world_class_find(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < N_CLASSES; i++)
        if (!strcmp(name, g_classes[i].words[0])) return i;
    return -1;
}

int vv_world_word_class(const char *word) {
    if (!word) return -1;
    for (int i = 0; i < N_CLASSES; i++)
        for (int k = 0; k < MAXW && g_classes[i].words[k]; k++)
            if (!strcmp(word, g_classes[i].words[k])) return i;
    return -1;
}

// ---------------------------------------------------------------------------
// Colours: saturated or extreme hues, far from the mid-tone theme tints, so
// an object's colour stays nameable at the lowest contrast.
static const char *const g_color_names[] = {"red", "green", "blue", "yellow", "purple", "orange", "white", "black"};
static const uint8_t g_color_rgb[][3] = {
    {215, 40, 40}, {40, 165, 60}, {45, 85, 215}, {240, 215, 45},
    {140, 55, 185}, {245, 135, 25}, {245, 245, 245}, {25, 25, 25},
};
#define N_COLORS (int)(sizeof(g_color_names) / sizeof(g_color_names[0]))

int vv_world_n_colors(void) { return N_COLORS; }
const char *vv_world_color_name(int c) { return c >= 0 && c < N_COLORS ? g_color_names[c] : NULL; }
const uint8_t *vv_world_color_rgb(int c) { return c >= 0 && c < N_COLORS ? g_color_rgb[c] : NULL; }
int vv_world_color_find(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < N_COLORS; i++)
        if (!strcmp(name, g_color_names[i])) return i;
    return -1;
}

// ---------------------------------------------------------------------------
// Themes: six favoured classes each; shared classes (clock, bottle, cup, lamp,
// tree, duck, sun, kite) tie the themes' priors together. Tints are mid-tone
// (so white and black objects both stand out) and differ in hue, not only in
// brightness, because the per-scene jitter is mostly a brightness change.
enum { CUP, BOWL, BOTTLE, PAN, APPLE, CLOCK, BOOK, LAMP, KEY, PENCIL, ENVELOPE, TREE, FLOWER, LEAF, KITE, SUN,
       DUCK, CAR, HOUSE, SIGN, UMBRELLA, TOOTHBRUSH, SOAP, MIRROR, FISH, BOAT, SHELL, STAR };

typedef struct {
    const char *name;
    int classes[6];
    uint8_t rgb[3];
} theme_def;

static const theme_def g_themes[] = {
    {"kitchen", {CUP, BOWL, BOTTLE, PAN, APPLE, CLOCK}, {184, 144, 116}},
    {"office", {CLOCK, BOOK, LAMP, KEY, PENCIL, ENVELOPE}, {132, 140, 162}},
    {"park", {TREE, FLOWER, LEAF, KITE, SUN, DUCK}, {118, 152, 100}},
    {"street", {CAR, HOUSE, SIGN, UMBRELLA, TREE, LAMP}, {120, 120, 120}},
    {"bathroom", {TOOTHBRUSH, SOAP, MIRROR, DUCK, BOTTLE, CUP}, {138, 178, 186}},
    {"beach", {FISH, BOAT, SHELL, STAR, SUN, KITE}, {210, 192, 142}},
};
#define N_THEMES (int)(sizeof(g_themes) / sizeof(g_themes[0]))

int vv_world_n_themes(void) { return N_THEMES; }
const char *vv_world_theme_name(int t) { return t >= 0 && t < N_THEMES ? g_themes[t].name : NULL; }
int vv_world_theme_find(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < N_THEMES; i++)
        if (!strcmp(name, g_themes[i].name)) return i;
    return -1;
}
const int *vv_world_theme_classes(int t, int *n) {
    if (t < 0 || t >= N_THEMES) {
        if (n) *n = 0;
        return NULL;
    }
    if (n) *n = 6;
    return g_themes[t].classes;
}
bool vv_world_theme_has_class(int t, int cls) {
    if (t < 0 || t >= N_THEMES) return false;
    for (int i = 0; i < 6; i++)
        if (g_themes[t].classes[i] == cls) return true;
    return false;
}
const uint8_t *vv_world_theme_rgb(int t) { return t >= 0 && t < N_THEMES ? g_themes[t].rgb : NULL; }

// ---------------------------------------------------------------------------
// Sizes, regions, numbers.
static const char *const g_sizes[] = {"small", "large"};
const char *vv_world_size_name(int s) { return s == 0 || s == 1 ? g_sizes[s] : NULL; }
int vv_world_size_find(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < 2; i++)
        if (!strcmp(name, g_sizes[i])) return i;
    return -1;
}

static const char *const g_regions[VV_WORLD_N_REGIONS] = {
    "top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"};
const char *vv_world_region_name(int r) { return r >= 0 && r < VV_WORLD_N_REGIONS ? g_regions[r] : NULL; }
int vv_world_region_find(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < VV_WORLD_N_REGIONS; i++)
        if (!strcmp(name, g_regions[i])) return i;
    return -1;
}

static const char *const g_numbers[] = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
const char *vv_world_number_word(int n) { return n >= 1 && n <= 9 ? g_numbers[n - 1] : NULL; }

// ---------------------------------------------------------------------------
// CHAIR synonym file.
int vv_world_synonyms_text(vv_buf *out) {
    for (int i = 0; i < N_CLASSES; i++) {
        for (int k = 0; k < MAXW && g_classes[i].words[k]; k++)
            if (vv_buf_printf(out, "%s%s", k ? ", " : "", g_classes[i].words[k])) return VISVM_ERR_NOMEM;
        if (vv_buf_append(out, "\n", 1)) return VISVM_ERR_NOMEM;
    }
    return VISVM_OK;
}

int vv_world_write_synonyms(const char *path, vv_error *e) {
    if (!path || !*path) return vv_err(e, VISVM_ERR_INVALID, "vv_world_write_synonyms: empty path");
    vv_buf b = {0};
    if (vv_world_synonyms_text(&b)) {
        vv_buf_free(&b);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory writing synonyms");
    }
    int rc = vv_write_file_atomic(path, b.v, b.n, e);
    vv_buf_free(&b);
    return rc;
}
