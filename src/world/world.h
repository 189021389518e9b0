// world.h - the synthetic world: procedurally rendered scenes with exact
// ground truth and templated reference captions, on which tiny CLIP / VLM /
// value models are trained and measured with CHAIR.
//
// A scene is a deterministic function of (params, seed): a theme, 1-5 objects
// (class, colour, size, one of 9 grid regions), partial occlusions, a
// textured background. Everything uses integer RNG draws and plain float
// arithmetic (+ - * / sqrtf, no transcendental libm calls), so the same seed
// gives byte-identical PNG and JSON on any IEEE machine (the build must not
// contract a*b+c into FMA: -std=c11 implies -ffp-contract=off in GCC).
//
// Seeds are split into disjoint ranges (train / val / test / fresh), see
// VV_WORLD_SPLIT_SIZE. Captions open with global sentences (setting, count),
// then one sentence per object; each class has a small set of words
// (vv_world_class_words) that CHAIR maps back to the class.
#ifndef VV_WORLD_H
#define VV_WORLD_H

#include "../base/base.h"
#include "../base/threadpool.h"
#include "../model/image.h"

#define VV_WORLD_MAX_OBJECTS 9   // one per region of the 3x3 grid
#define VV_WORLD_N_REGIONS 9
#define VV_WORLD_MAX_CAPTIONS 16
#define VV_WORLD_MAX_CLUTTER 8
#define VV_WORLD_MAX_BLOBS 5
#define VV_WORLD_SENT_MAX 128    // bytes of one sentence incl. NUL (longest is < 80)
// Objects whose visible fraction is below this may be captioned "partly hidden".
#define VV_WORLD_HIDDEN_VISIBLE 0.75f

// ---------------------------------------------------------------------------
// Splits: seeds [k * SIZE, (k + 1) * SIZE) belong to split k.
enum { VV_WORLD_TRAIN = 0, VV_WORLD_VAL, VV_WORLD_TEST, VV_WORLD_FRESH, VV_WORLD_N_SPLITS,
       VV_WORLD_CUSTOM = VV_WORLD_N_SPLITS }; // seeds >= 4 000 000
#define VV_WORLD_SPLIT_SIZE 1000000ull
const char *vv_world_split_name(int split);           // "train", ..., "custom"; NULL if out of range
int vv_world_split_from_name(const char *name);       // -1 if unknown
uint64_t vv_world_split_base(int split);              // first seed of a split
int vv_world_split_of_seed(uint64_t seed);            // VV_WORLD_CUSTOM above the last range

// ---------------------------------------------------------------------------
// Vocabulary (vocab_world.c). Indices are stable; names are lowercase words.
enum { VV_WORLD_SMALL = 0, VV_WORLD_LARGE = 1 };
int vv_world_n_classes(void);
const char *vv_world_class_name(int cls);              // canonical name, e.g. "cup"
// Words that mention the class in a caption: singular forms first (used by the
// caption templates, index 0 = canonical name), then plurals. NULL if bad cls.
const char *const *vv_world_class_words(int cls, int *n);
int vv_world_class_n_singular(int cls);                // how many of the words are singular
int vv_world_class_find(const char *name);             // canonical name -> id, -1 if unknown
int vv_world_word_class(const char *word);             // any mention word (lowercase) -> class, -1
int vv_world_n_colors(void);
const char *vv_world_color_name(int color);
const uint8_t *vv_world_color_rgb(int color);          // 3 bytes
int vv_world_color_find(const char *name);
int vv_world_n_themes(void);
const char *vv_world_theme_name(int theme);
int vv_world_theme_find(const char *name);
// The classes a theme favours (the language prior a captioner can pick up).
const int *vv_world_theme_classes(int theme, int *n);
bool vv_world_theme_has_class(int theme, int cls);
const uint8_t *vv_world_theme_rgb(int theme);          // background tint
const char *vv_world_size_name(int size);              // "small" / "large"
int vv_world_size_find(const char *name);
const char *vv_world_region_name(int region);          // "top left", ..., "bottom right"
int vv_world_region_find(const char *name);
const char *vv_world_number_word(int n);               // "one".."nine" (n in 1..9), else NULL
// COCO CHAIR synonym format: one line per class, canonical name first, then
// every other mention word, ", "-separated.
int vv_world_synonyms_text(vv_buf *out);
int vv_world_write_synonyms(const char *path, vv_error *e); // atomic

// ---------------------------------------------------------------------------
// Parameters (the world's knobs).
typedef struct vv_world_params {
    int size;                 // image side in pixels (64)
    int min_objects, max_objects;      // object count range (1..5)
    float count_weights[VV_WORLD_MAX_OBJECTS]; // relative weight of count k+1 (0.2 .25 .25 .15 .15 .15 ...)
    float small_frac, large_frac;      // icon extent / image side (0.16, 0.28: 10 and 18 px at 64)
    float p_large;            // probability an object is large (0.4)
    float jitter_frac;        // max position jitter / image side (0.05)
    float p_theme;            // probability an object is drawn from the theme's classes (0.8)
    float alpha_min, alpha_max;        // contrast: object colour weight vs background (0.45..1)
    float p_occlude;          // probability an object gets partly occluded (0.15)
    float occlude_min, occlude_max;    // fraction of the icon extent hidden (0.30..0.55)
    float p_border;           // share of occlusions done by the image border for edge regions (0.35)
    float noise;              // pixel noise std in 0..255 units (10)
    float blob_amp;           // low-frequency background blob amplitude (25)
    float tint_jitter;        // per-scene jitter of the theme tint (20)
    int clutter_max;          // background clutter strokes per scene, 0..max (3)
    float outline;            // darker outline width / icon extent (0.05; 0 = none)
    int supersample;          // anti-aliasing: s x s samples per pixel (4)
    int n_captions;           // reference captions per scene (5)
    bool distinct_classes;    // no class twice in a scene (true)
    bool one_per_region;      // at most one object per grid region (true)
} vv_world_params;

vv_world_params vv_world_default_params(void);
// VISVM_ERR_INVALID naming the bad field.
int vv_world_params_check(const vv_world_params *p, vv_error *e);

// ---------------------------------------------------------------------------
// Scenes.
enum { VV_WORLD_OCC_NONE = 0, VV_WORLD_OCC_PATCH, VV_WORLD_OCC_BORDER };

typedef struct vv_world_object {
    int cls, color, size, region;
    int bbox[4];        // visible part, pixels, half-open [x0, y0, x1, y1); all 0 if nothing visible
    float visible;      // visible coverage / unoccluded coverage (rounded to 1e-4)
    float alpha;        // contrast (colour weight against the background)
    // Render-only state (not in the JSON):
    float cx, cy, extent; // icon centre and side, pixels
    int occ_kind;         // VV_WORLD_OCC_*
    float occ_rect[4];    // patch rectangle x0, y0, x1, y1 (pixels) for OCC_PATCH
    uint8_t patch_rgb[3];
} vv_world_object;

typedef struct vv_world_stroke { float x[3], y[3], width; uint8_t rgb[3]; } vv_world_stroke;
typedef struct vv_world_blob { float x, y, r, d[3]; } vv_world_blob;

typedef struct vv_world_scene {
    uint64_t seed;
    int split;              // from the seed
    int theme;
    int w, h;
    int n_objects;
    vv_world_object obj[VV_WORLD_MAX_OBJECTS]; // drawing order (later objects cover earlier ones)
    char image[64];         // path relative to the output dir ("images/2000123.png"), may be ""
    int n_captions;
    char **captions;        // malloc'd strings (vv_world_scene_free)
    // Render-only state; renderable is false for scenes read from JSON.
    bool renderable;
    float tint[3];
    int n_blobs;
    vv_world_blob blobs[VV_WORLD_MAX_BLOBS];
    int n_strokes;
    vv_world_stroke strokes[VV_WORLD_MAX_CLUTTER];
} vv_world_scene;

// Samples a scene (theme, objects, layout, occluders, background) from the
// seed and computes each object's visible fraction and visible bbox from its
// rasterised coverage. No captions (vv_world_scene_caption), no pixels.
int vv_world_scene_make(const vv_world_params *p, uint64_t seed, vv_world_scene *out, vv_error *e);
void vv_world_scene_free(vv_world_scene *s); // frees captions; leaves an empty scene
// Fills s->captions with p->n_captions reference captions (seeded by s->seed).
int vv_world_scene_caption(const vv_world_params *p, vv_world_scene *s, vv_error *e);

// Optional per-object masks from the renderer (for tests / analysis). All
// arrays are [h * w] floats in [0, 1], row-major.
typedef struct vv_world_masks {
    int n, w, h;
    float *full[VV_WORLD_MAX_OBJECTS];     // unoccluded coverage (inside the image)
    float *visible[VV_WORLD_MAX_OBJECTS];  // coverage that survives later objects and patches
    float *interior[VV_WORLD_MAX_OBJECTS]; // visible coverage by the body colour (not outline)
    double full_total[VV_WORLD_MAX_OBJECTS]; // unoccluded coverage including off-image parts
    float *base;                           // [h * w * 3] background + clutter before objects
} vv_world_masks;
void vv_world_masks_free(vv_world_masks *m);

// Renders a scene made by vv_world_scene_make with the same params. masks may
// be NULL. On error *out is left empty.
int vv_world_render(const vv_world_params *p, const vv_world_scene *s, vv_image *out, vv_world_masks *masks,
                    vv_error *e);
// Coverage mask of a single icon (outline included) centred in a side x side
// float mask (mask[side * side], caller-allocated), icon extent side * frac.
int vv_world_icon_mask(int cls, int side, float frac, int supersample, float *mask, vv_error *e);

// ---------------------------------------------------------------------------
// Sentences and captions.
enum { VV_WORLD_N_THEME_TMPL = 4, VV_WORLD_N_COUNT_TMPL = 4, VV_WORLD_N_GLOBAL_TMPL = 3,
       VV_WORLD_N_OBJECT_TMPL = 4, VV_WORLD_N_HIDDEN_TMPL = 2 };

// One object sentence, all word choices explicit.
typedef struct vv_world_object_words {
    int cls, color, size, region;
    int cls_word;     // index among the class's singular words
    int size_word;    // 0 or 1: small/little, large/big
    int region_word;  // 0 or 1: "in the center" / "in the middle" (other regions ignore it)
    int tmpl;         // 0..N_OBJECT_TMPL-1, or N_OBJECT_TMPL + k for the k-th "partly hidden" template
} vv_world_object_words;

// Each returns the length written, or a negative status (bad index, buffer
// too small). Sentences start with a capital letter and end with ".".
int vv_world_object_sentence(const vv_world_object_words *w, char *buf, size_t cap);
int vv_world_theme_sentence(int theme, int tmpl, char *buf, size_t cap);
int vv_world_count_sentence(int count, int tmpl, char *buf, size_t cap);
int vv_world_global_sentence(int theme, int count, int tmpl, char *buf, size_t cap); // theme + count

// n captions for the scene, out[i] malloc'd (caller frees). Deterministic in
// (scene, seed). Global sentences first, then one sentence per object (large
// first, then by region order).
int vv_world_captions(const vv_world_scene *s, uint64_t seed, int n, char **out, vv_error *e);

// Single sentences for CLIP training: true sentences and hard negatives.
enum vv_world_sent_kind {
    VV_WS_THEME = 0,        // true: setting
    VV_WS_COUNT,            // true: object count
    VV_WS_GLOBAL,           // true: setting + count in one sentence
    VV_WS_OBJECT,           // true: one object with its attributes and position
    VV_WS_NEG_ABSENT_THEME, // object sentence with a class of the scene's theme that is absent
    VV_WS_NEG_ABSENT_OTHER, // ... with an absent class outside the theme
    VV_WS_NEG_COLOR,        // wrong colour
    VV_WS_NEG_POSITION,     // wrong region
    VV_WS_NEG_SIZE,         // wrong size
    VV_WS_NEG_COUNT,        // wrong count (off by one or two)
    VV_WS_NEG_THEME,        // wrong setting
    VV_WS_N_KINDS
};
const char *vv_world_sent_kind_name(int kind);

typedef struct vv_world_sentence {
    char text[VV_WORLD_SENT_MAX];
    int kind;        // enum vv_world_sent_kind
    bool positive;   // true statement about the scene
    int pos_index;   // index (in the same array) of the true sentence this one corrupts, or its own
    int object;      // object index the sentence is about, -1 for global sentences
    int cls;         // class mentioned, -1 for global sentences
} vv_world_sentence;

// Every true sentence (theme, count, global, one per object) followed by its
// hard negatives (same template and words, one slot changed), deterministic in
// (scene, seed). *out is malloc'd (free()).
int vv_world_sentences(const vv_world_scene *s, uint64_t seed, vv_world_sentence **out, int *n, vv_error *e);

// ---------------------------------------------------------------------------
// JSON lines.
// Appends one JSON object (no newline) describing the scene: image, seed,
// split, theme, width, height, objects [{class, color, size, position, bbox
// (visible part, half-open pixels), visible, alpha, occluded}], captions.
int vv_world_scene_to_json(const vv_world_scene *s, vv_buf *out, vv_error *e);
// Parses one line into *out (ground truth + captions; renderable = false).
// Errors (VISVM_ERR_FORMAT) name the key; the caller adds the line number.
int vv_world_scene_from_json(const char *line, vv_world_scene *out, vv_error *e);
// Reads a scenes.jsonl file (blank lines skipped). Errors say "path:LINE: ...".
int vv_world_read_jsonl(const char *path, vv_world_scene **scenes, int *n, vv_error *e);
void vv_world_scenes_free(vv_world_scene *scenes, int n);

// ---------------------------------------------------------------------------
// Dataset generation.
typedef void (*vv_world_progress_fn)(void *ud, int64_t done, int64_t total);

// Writes out_dir/images/<seed>.png, out_dir/scenes.jsonl (one line per scene,
// in seed order), out_dir/synonyms.txt and out_dir/world.json (params and
// seed range), each atomically (temp + rename; scenes.jsonl last). Scenes use
// seeds first_seed .. first_seed + n - 1, which must lie in one split range
// (or all >= 4 000 000). Output does not depend on the pool size. progress
// may be NULL; it is called from the calling thread.
int vv_world_generate_seeds(const vv_world_params *p, uint64_t first_seed, int64_t n, const char *out_dir,
                            vv_pool *pool, vv_world_progress_fn progress, void *ud, vv_error *e);
// Same with seeds split_base(split) + start + i; VISVM_ERR_RANGE if start + n
// leaves the split's range.
int vv_world_generate(const vv_world_params *p, int split, uint64_t start, int64_t n, const char *out_dir,
                      vv_pool *pool, vv_world_progress_fn progress, void *ud, vv_error *e);

// ---------------------------------------------------------------------------
// Internal (shared by world.c and render.c).
// Independent RNG stream k of a scene seed (layout 1, noise 2, captions ...).
static inline uint64_t vv_world__stream(uint64_t seed, uint64_t k) {
    return (seed * 0x9e3779b97f4a7c15ull) ^ (k * 0xd1b54a32d192ed03ull) ^ 0x5851f42d4c957f2dull;
}
// Unit coordinate (u for sides 0 left / 1 right, v for 2 top / 3 bottom) of
// the line that cuts off the fraction f of the icon's area on that side.
float vv_world__icon_cut(int cls, int side, float f);
// Fills every object's visible and bbox from its rasterised coverage.
int vv_world__visibility(const vv_world_params *p, vv_world_scene *s, vv_error *e);

#endif
