// chair.h - CHAIR object-hallucination metric (Rohrbach et al., EMNLP 2018).
//
// A caption's object mentions are found by: lower-casing, splitting into
// words, optional singularisation, merging two-word objects from a table,
// dropping "seat" when "toilet" is present (COCO rule), and mapping every word
// in the synonym vocabulary to its class ("node word"). A mention whose class
// is not in the image's ground truth is a hallucination.
//   CHAIRs = captions with >= 1 hallucination / captions
//   CHAIRi = hallucinated mentions / mentions (every mention counted)
//   recall = ground-truth classes mentioned / ground-truth classes (micro)
// Two vocabularies: the synthetic world's (exact plurals in the table, no
// singularisation) and COCO's (the reference synonyms.txt + the reference
// double-word table + rule-based singularisation).
#ifndef VV_CHAIR_H
#define VV_CHAIR_H

#include "../base/base.h"

typedef struct vv_chair vv_chair;

// COCO-format synonym file: one line per class, entries separated by ", "
// (exactly, as the reference code: an entry with a leading space never matches);
// the first entry is the class name. coco_rules adds COCO's double-word table
// and singularisation.
int vv_chair_load_synonyms(const char *path, bool coco_rules, vv_chair **out, vv_error *e);
int vv_chair_parse_synonyms(const char *text, size_t len, bool coco_rules, vv_chair **out, vv_error *e);
void vv_chair_free(vv_chair *c);

int vv_chair_n_classes(const vv_chair *c);
const char *vv_chair_class_name(const vv_chair *c, int i);
int vv_chair_class_id(const vv_chair *c, const char *name); // -1 if unknown

// Object mentions of a caption, in order (class ids); word_idx (optional)
// receives the index of each mention's first word in the caption's word list,
// words (optional) receives the number of words of the caption.
int vv_chair_mentions(const vv_chair *c, const char *caption, vv_ivec *classes, vv_ivec *word_idx, int *n_words,
                      vv_error *e);

typedef struct vv_chair_caption {
    int n_mentions;     // object mentions (with repeats)
    int n_halluc;       // mentions of classes not in the ground truth
    int n_gt;           // ground-truth classes
    int n_gt_mentioned; // of them, mentioned at least once
    int n_words;
} vv_chair_caption;

// gt: [n_classes] flags. halluc (optional) receives the hallucinated class ids.
int vv_chair_score(const vv_chair *c, const char *caption, const bool *gt, vv_chair_caption *out, vv_ivec *halluc,
                   vv_error *e);

typedef struct vv_chair_totals {
    long captions, halluc_captions, mentions, halluc_mentions, gt, gt_mentioned, words;
} vv_chair_totals;

void vv_chair_add(vv_chair_totals *t, const vv_chair_caption *c);
double vv_chair_s(const vv_chair_totals *t);      // percent
double vv_chair_i(const vv_chair_totals *t);      // percent
double vv_chair_recall(const vv_chair_totals *t); // percent
double vv_chair_len(const vv_chair_totals *t);    // mean words per caption

// COCO ground truth: categories of each image from instances_*.json plus the
// objects mentioned in its reference captions (captions_*.json), as the
// reference implementation. Lookup by image id.
typedef struct vv_chair_coco vv_chair_coco;
int vv_chair_coco_load(const vv_chair *c, const char *instances_json, const char *captions_json, vv_chair_coco **out,
                       vv_error *e);
void vv_chair_coco_free(vv_chair_coco *g);
// Ground-truth flags of an image ([n_classes]) or NULL if the id is unknown.
const bool *vv_chair_coco_gt(const vv_chair_coco *g, int64_t image_id);
int64_t vv_chair_coco_n_images(const vv_chair_coco *g);

#endif
