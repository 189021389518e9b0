// world_eval.h - scoring captions of synthetic-world scenes: CHAIR against the
// exact ground truth, plus the caption statistics that show the long-horizon
// mechanism (does the caption state the right count, does it follow it).
#ifndef VV_WORLD_EVAL_H
#define VV_WORLD_EVAL_H

#include "../world/world.h"
#include "chair.h"

// CHAIR vocabulary of the world (its synonym table).
int vv_world_chair(vv_chair **out, vv_error *e);

typedef struct vv_caption_stats {
    vv_chair_caption chair;
    int n_sentences;
    int stated_count;  // number in the first count sentence (0 if none)
    int n_object_sentences; // sentences that mention at least one object
} vv_caption_stats;

typedef struct vv_world_totals {
    vv_chair_totals chair;
    long sentences, counts_stated, counts_right, counts_over, counts_followed;
} vv_world_totals;

// Scores one caption of scene s (ground truth = the scene's classes).
int vv_world_score_caption(const vv_chair *ch, const vv_world_scene *s, const char *caption, vv_caption_stats *out,
                           vv_ivec *halluc, vv_error *e);
void vv_world_totals_add(vv_world_totals *t, const vv_world_scene *s, const vv_caption_stats *c);

// Within-image ranking quality of a sentence scorer (the world notes' "within-image
// AUC"): over pairs of object sentences about the same image, one naming only
// present classes (good) and one naming at least one absent class (bad), how often
// the good one scores higher (ties count 1/2). Pooled over images.
typedef struct vv_auc {
    double wins;
    long pairs, n_good, n_bad, images; // images: with at least one pair
} vv_auc;
// Adds one image's sentences: label 1 good, 0 bad, anything else ignored.
void vv_auc_add_image(vv_auc *a, const float *score, const signed char *label, int n);
double vv_auc_value(const vv_auc *a); // NaN without pairs
// Exact two-sided sign test (McNemar's exact test) for two strategies run on the
// same scenes: only_a captions hallucinate under A alone, only_b under B alone;
// p = min(1, 2 P(X <= min(only_a, only_b))), X ~ Binomial(only_a + only_b, 1/2).
// 1 when both are 0.
double vv_sign_test_p(long only_a, long only_b);
// Wilson score interval (95%) of a proportion k / n, in the same units as the
// proportion (0..1); [0, 1] when n is 0.
void vv_wilson95(long k, long n, double *lo, double *hi);

// Label of one sentence against scene s: 1 all mentioned classes present,
// 0 some absent, -1 no object mentioned.
int vv_world_sentence_label(const vv_chair *ch, const vv_world_scene *s, const char *sentence);
// One image's distinct sentences (first occurrence kept) with their labels:
// keep [n] receives the kept indices, label [n] their labels; returns the count.
int vv_world_label_distinct(const vv_chair *ch, const vv_world_scene *s, const char *const *sent, int n, int *keep,
                            signed char *label);
// The scene whose image is path: equal to scene.image, or ending in "/" + it
// (an absolute image_path). *hint: where to start looking (updated; scenes in order).
const vv_world_scene *vv_world_find_scene(const vv_world_scene *scenes, int n, const char *path, int *hint);

// Sentence splitting for rewards and statistics: split after '.', '!' or '?'
// followed by a space or the end, but not inside decimals ("3.5") or after
// common abbreviations ("Mr.", "e.g."). Periods are kept. Appends pieces
// (without surrounding spaces) to out as malloc'd strings; returns the count.
int vv_split_sentences(const char *text, char ***out, int *n);
void vv_free_strings(char **s, int n);

#endif
