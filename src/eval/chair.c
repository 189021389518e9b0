// chair.c - CHAIR: synonym vocabulary, mention extraction, scoring, COCO
// ground truth. See chair.h and ../shared/reference/visvm-paper.md section 7.
#include "chair.h"
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../format/json.h"

// ---------------------------------------------------------------------------
// a small string -> int hash map (open addressing)

typedef struct {
    char **keys;
    int32_t *vals;
    size_t cap, n;
} smap;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static int smap_get(const smap *m, const char *k) {
    if (!m->cap) return -1;
    for (size_t i = hash_str(k) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
        if (!m->keys[i]) return -1;
        if (!strcmp(m->keys[i], k)) return m->vals[i];
    }
}

// Inserts or overwrites; returns 0 or VISVM_ERR_NOMEM.
static int smap_put(smap *m, const char *k, int v) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 256;
        smap nm = {calloc(nc, sizeof(char *)), calloc(nc, sizeof(int32_t)), nc, 0};
        if (!nm.keys || !nm.vals) {
            free(nm.keys);
            free(nm.vals);
            return VISVM_ERR_NOMEM;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i]) {
                size_t j = hash_str(m->keys[i]) & (nc - 1);
                while (nm.keys[j]) j = (j + 1) & (nc - 1);
                nm.keys[j] = m->keys[i];
                nm.vals[j] = m->vals[i];
                nm.n++;
            }
        free(m->keys);
        free(m->vals);
        *m = nm;
    }
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->keys[i] && strcmp(m->keys[i], k)) i = (i + 1) & (m->cap - 1);
    if (!m->keys[i]) {
        if (!(m->keys[i] = vv_strdup(k))) return VISVM_ERR_NOMEM;
        m->n++;
    }
    m->vals[i] = v;
    return VISVM_OK;
}

static void smap_free(smap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->keys[i]);
    free(m->keys);
    free(m->vals);
    memset(m, 0, sizeof(*m));
}

// ---------------------------------------------------------------------------

struct vv_chair {
    int n_classes;
    char **names;
    smap words;   // word or two-word phrase -> class id
    smap dbl;     // "w1 w2" -> index into dbl_out
    char **dbl_out;
    int n_dbl;
    smap known;   // words that may appear in a match (for singularisation)
    bool coco;
    int toilet_id, seat_word; // COCO's "toilet" + "seat" rule
};

void vv_chair_free(vv_chair *c) {
    if (!c) return;
    for (int i = 0; i < c->n_classes; i++) free(c->names[i]);
    free(c->names);
    for (int i = 0; i < c->n_dbl; i++) free(c->dbl_out[i]);
    free(c->dbl_out);
    smap_free(&c->words);
    smap_free(&c->dbl);
    smap_free(&c->known);
    free(c);
}

int vv_chair_n_classes(const vv_chair *c) { return c->n_classes; }
const char *vv_chair_class_name(const vv_chair *c, int i) { return i >= 0 && i < c->n_classes ? c->names[i] : NULL; }
int vv_chair_class_id(const vv_chair *c, const char *name) {
    for (int i = 0; i < c->n_classes; i++)
        if (!strcmp(c->names[i], name)) return i;
    return -1;
}

static int add_double(vv_chair *c, const char *key, const char *out) {
    char **nd = realloc(c->dbl_out, (size_t)(c->n_dbl + 1) * sizeof(char *));
    if (!nd) return VISVM_ERR_NOMEM;
    c->dbl_out = nd;
    if (!(c->dbl_out[c->n_dbl] = vv_strdup(out))) return VISVM_ERR_NOMEM;
    int rc = smap_put(&c->dbl, key, c->n_dbl++);
    // both words of a double word count as known (singularisation targets)
    char tmp[128];
    snprintf(tmp, sizeof(tmp), "%s", key);
    char *sp = strchr(tmp, ' ');
    if (sp) {
        *sp = 0;
        if (!rc) rc = smap_put(&c->known, tmp, 1);
        if (!rc) rc = smap_put(&c->known, sp + 1, 1);
    }
    return rc;
}

// The reference implementation's double-word table (chair.py).
static int add_coco_doubles(vv_chair *c) {
    static const char *dw[] = {"motor bike", "motor cycle", "air plane", "traffic light", "street light",
                               "traffic signal", "stop light", "fire hydrant", "stop sign", "parking meter",
                               "suit case", "sports ball", "baseball bat", "baseball glove", "tennis racket",
                               "wine glass", "hot dog", "cell phone", "mobile phone", "teddy bear", "hair drier",
                               "potted plant", "bow tie", "laptop computer", "stove top oven", "home plate",
                               "train track"};
    static const char *animals[] = {"bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
                                    "giraffe", "animal", "cub"};
    int rc = 0;
    for (size_t i = 0; i < sizeof(dw) / sizeof(dw[0]) && !rc; i++) rc = add_double(c, dw[i], dw[i]);
    char k[64];
    for (size_t i = 0; i < sizeof(animals) / sizeof(animals[0]) && !rc; i++) {
        snprintf(k, sizeof(k), "baby %s", animals[i]);
        rc = add_double(c, k, animals[i]);
        snprintf(k, sizeof(k), "adult %s", animals[i]);
        if (!rc) rc = add_double(c, k, animals[i]);
    }
    if (!rc) rc = add_double(c, "passenger jet", "jet");
    if (!rc) rc = add_double(c, "passenger train", "train");
    if (!rc) rc = add_double(c, "bow tie", "tie");
    if (!rc) rc = add_double(c, "toilet seat", "toilet");
    if (!rc) rc = add_double(c, "wine glas", "wine glass");
    return rc;
}

int vv_chair_parse_synonyms(const char *text, size_t len, bool coco_rules, vv_chair **out, vv_error *e) {
    *out = NULL;
    vv_chair *c = calloc(1, sizeof(*c));
    if (!c) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    c->coco = coco_rules;
    c->toilet_id = -1;
    int rc = VISVM_OK, line_no = 0;
    size_t pos = 0;
    while (pos < len && !rc) {
        size_t end = pos;
        while (end < len && text[end] != '\n') end++;
        line_no++;
        char *line = vv_strndup(text + pos, end - pos);
        pos = end + 1;
        if (!line) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            break;
        }
        size_t ll = strlen(line);
        if (ll && line[ll - 1] == '\r') line[--ll] = 0;
        if (ll == 0) {
            free(line);
            continue;
        }
        char **nn = realloc(c->names, (size_t)(c->n_classes + 1) * sizeof(char *));
        if (!nn) {
            free(line);
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            break;
        }
        c->names = nn;
        int cls = c->n_classes;
        // entries separated by exactly ", " (a leading space of an entry is kept, as the reference)
        char *s = line;
        bool first = true;
        for (;;) {
            char *sep = strstr(s, ", ");
            if (sep) *sep = 0;
            if (first) {
                if (!*s) {
                    rc = vv_err(e, VISVM_ERR_FORMAT, "synonyms line %d: empty class name", line_no);
                    break;
                }
                if (!(c->names[cls] = vv_strdup(s))) {
                    rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                    break;
                }
                c->n_classes++;
                first = false;
            }
            if (*s) {
                int prev = smap_get(&c->words, s);
                if (prev >= 0 && prev != cls && !coco_rules) {
                    rc = vv_err(e, VISVM_ERR_FORMAT, "synonyms line %d: '%s' already belongs to class '%s'", line_no, s,
                                c->names[prev]);
                    break;
                }
                // COCO: a later line overrides (Python dict semantics)
                if ((rc = smap_put(&c->words, s, cls)) || (rc = smap_put(&c->known, s, 1))) {
                    rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                    break;
                }
                // world tables: multi-word synonyms are merged as double words
                if (!coco_rules && strchr(s, ' ') && (rc = add_double(c, s, s))) {
                    rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                    break;
                }
            }
            if (!sep) break;
            s = sep + 2;
        }
        free(line);
    }
    if (!rc && c->n_classes == 0) rc = vv_err(e, VISVM_ERR_FORMAT, "synonym table is empty");
    if (!rc && coco_rules && add_coco_doubles(c)) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc && coco_rules) {
        c->toilet_id = smap_get(&c->words, "toilet");
        smap_put(&c->known, "seat", 1);
    }
    if (rc) {
        vv_chair_free(c);
        return rc;
    }
    *out = c;
    return VISVM_OK;
}

int vv_chair_load_synonyms(const char *path, bool coco_rules, vv_chair **out, vv_error *e) {
    char *text = NULL;
    size_t len = 0;
    int rc = vv_read_file(path, &text, &len, e);
    if (rc) return rc;
    rc = vv_chair_parse_synonyms(text, len, coco_rules, out, e);
    free(text);
    if (rc) vv_err_prefix(e, rc, "%s", path);
    return rc;
}

// ---------------------------------------------------------------------------
// words

// Lower-case words: runs of letters, digits and inner hyphens.
static int split_words(const char *s, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    int cap = 0;
    for (const char *p = s; *p;) {
        while (*p && !isalnum((unsigned char)*p)) p++;
        if (!*p) break;
        const char *b = p;
        while (*p && (isalnum((unsigned char)*p) || (*p == '-' && isalnum((unsigned char)p[1])))) p++;
        if (*n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nw = realloc(*out, (size_t)cap * sizeof(char *));
            if (!nw) return VISVM_ERR_NOMEM;
            *out = nw;
        }
        // room for singular forms longer than the word ("mice" -> "mouse")
        char *w = calloc((size_t)(p - b) + 8, 1);
        if (!w) return VISVM_ERR_NOMEM;
        memcpy(w, b, (size_t)(p - b));
        for (char *q = w; *q; q++) *q = (char)tolower((unsigned char)*q);
        (*out)[(*n)++] = w;
    }
    return VISVM_OK;
}

// Rule-based singular form (stands in for pattern.en's singularize): the first
// candidate that is a known word, else the word itself.
static void singularize(const vv_chair *c, char *w) {
    if (smap_get(&c->known, w) >= 0) return;
    static const char *irr[][2] = {{"people", "person"}, {"men", "man"}, {"women", "woman"}, {"children", "child"},
                                   {"mice", "mouse"}, {"geese", "goose"}, {"feet", "foot"}, {"teeth", "tooth"},
                                   {"knives", "knife"}, {"leaves", "leaf"}, {"skis", "ski"}, {"buses", "bus"}};
    for (size_t i = 0; i < sizeof(irr) / sizeof(irr[0]); i++)
        if (!strcmp(w, irr[i][0]) && smap_get(&c->known, irr[i][1]) >= 0) {
            strcpy(w, irr[i][1]);
            return;
        }
    size_t n = strlen(w);
    char cand[128];
    if (n >= sizeof(cand) - 2 || n < 3) return;
    const struct { const char *suf, *rep; } rules[] = {{"ies", "y"}, {"ves", "f"}, {"ves", "fe"}, {"men", "man"},
                                                       {"es", ""}, {"s", ""}};
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
        size_t sl = strlen(rules[i].suf);
        if (n <= sl || strcmp(w + n - sl, rules[i].suf)) continue;
        snprintf(cand, sizeof(cand), "%.*s%s", (int)(n - sl), w, rules[i].rep);
        if (smap_get(&c->known, cand) >= 0) {
            strcpy(w, cand);
            return;
        }
    }
}

int vv_chair_mentions(const vv_chair *c, const char *caption, vv_ivec *classes, vv_ivec *word_idx, int *n_words,
                      vv_error *e) {
    char **w = NULL;
    int n = 0;
    int rc = split_words(caption ? caption : "", &w, &n);
    if (rc) {
        for (int i = 0; i < n; i++) free(w[i]);
        free(w);
        return vv_err(e, rc, "out of memory");
    }
    if (n_words) *n_words = n;
    if (c->coco)
        for (int i = 0; i < n; i++) singularize(c, w[i]);
    // merge double words, left to right
    int n_tok = 0;
    const char **tok = malloc((size_t)(n ? n : 1) * sizeof(char *));
    int *tidx = malloc((size_t)(n ? n : 1) * sizeof(int));
    if (!tok || !tidx) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    char pair[256];
    bool has_toilet = false, has_seat = false;
    for (int i = 0; i < n && !rc;) {
        int d = -1;
        size_t l0 = strlen(w[i]), l1 = i + 1 < n ? strlen(w[i + 1]) : 0;
        if (i + 1 < n && l0 + l1 + 2 <= sizeof(pair)) {
            memcpy(pair, w[i], l0);
            pair[l0] = ' ';
            memcpy(pair + l0 + 1, w[i + 1], l1 + 1);
            d = smap_get(&c->dbl, pair);
        }
        tidx[n_tok] = i;
        if (d >= 0) {
            tok[n_tok++] = c->dbl_out[d];
            i += 2;
        } else {
            tok[n_tok++] = w[i];
            i += 1;
        }
        if (!strcmp(tok[n_tok - 1], "toilet")) has_toilet = true;
        if (!strcmp(tok[n_tok - 1], "seat")) has_seat = true;
    }
    bool drop_seat = c->coco && has_toilet && has_seat;
    for (int i = 0; i < n_tok && !rc; i++) {
        if (drop_seat && !strcmp(tok[i], "seat")) continue;
        int cls = smap_get(&c->words, tok[i]);
        if (cls < 0) continue;
        if (vv_ivec_push(classes, cls) || (word_idx && vv_ivec_push(word_idx, tidx[i])))
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    free(tok);
    free(tidx);
    for (int i = 0; i < n; i++) free(w[i]);
    free(w);
    return rc;
}

int vv_chair_score(const vv_chair *c, const char *caption, const bool *gt, vv_chair_caption *out, vv_ivec *halluc,
                   vv_error *e) {
    memset(out, 0, sizeof(*out));
    vv_ivec m = {0};
    int rc = vv_chair_mentions(c, caption, &m, NULL, &out->n_words, e);
    if (rc) {
        vv_ivec_free(&m);
        return rc;
    }
    bool *seen = calloc((size_t)c->n_classes, 1);
    if (!seen) {
        vv_ivec_free(&m);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    out->n_mentions = (int)m.n;
    for (size_t i = 0; i < m.n; i++) {
        int k = m.v[i];
        seen[k] = true;
        if (!gt[k]) {
            out->n_halluc++;
            if (halluc) vv_ivec_push(halluc, k);
        }
    }
    for (int k = 0; k < c->n_classes; k++)
        if (gt[k]) {
            out->n_gt++;
            if (seen[k]) out->n_gt_mentioned++;
        }
    free(seen);
    vv_ivec_free(&m);
    return VISVM_OK;
}

void vv_chair_add(vv_chair_totals *t, const vv_chair_caption *c) {
    t->captions++;
    if (c->n_halluc > 0) t->halluc_captions++;
    t->mentions += c->n_mentions;
    t->halluc_mentions += c->n_halluc;
    t->gt += c->n_gt;
    t->gt_mentioned += c->n_gt_mentioned;
    t->words += c->n_words;
}

double vv_chair_s(const vv_chair_totals *t) { return t->captions ? 100.0 * t->halluc_captions / t->captions : 0; }
double vv_chair_i(const vv_chair_totals *t) { return t->mentions ? 100.0 * t->halluc_mentions / t->mentions : 0; }
double vv_chair_recall(const vv_chair_totals *t) { return t->gt ? 100.0 * t->gt_mentioned / t->gt : 0; }
double vv_chair_len(const vv_chair_totals *t) { return t->captions ? (double)t->words / t->captions : 0; }

// ---------------------------------------------------------------------------
// COCO ground truth

struct vv_chair_coco {
    int n_classes;
    int64_t n, cap;
    int64_t *ids;  // sorted image ids
    bool *flags;   // [n, n_classes]
};

void vv_chair_coco_free(vv_chair_coco *g) {
    if (!g) return;
    free(g->ids);
    free(g->flags);
    free(g);
}

int64_t vv_chair_coco_n_images(const vv_chair_coco *g) { return g->n; }

static int64_t find_id(const vv_chair_coco *g, int64_t id) {
    int64_t lo = 0, hi = g->n - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        if (g->ids[mid] == id) return mid;
        if (g->ids[mid] < id) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

const bool *vv_chair_coco_gt(const vv_chair_coco *g, int64_t image_id) {
    int64_t i = find_id(g, image_id);
    return i < 0 ? NULL : g->flags + i * g->n_classes;
}

static cJSON *load_json(const char *path, vv_error *e) {
    char *text = NULL;
    size_t len = 0;
    if (vv_read_file(path, &text, &len, e)) return NULL;
    cJSON *j = cJSON_ParseWithLength(text, len);
    free(text);
    if (!j) vv_err(e, VISVM_ERR_FORMAT, "%s: invalid JSON", path);
    return j;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

#define COCO_MAX_CAT (1 << 20) // COCO's category ids are < 100
#define COCO_MAX_ID VV_JSON_MAX_EXACT

int vv_chair_coco_load(const vv_chair *c, const char *instances_json, const char *captions_json, vv_chair_coco **out,
                       vv_error *e) {
    *out = NULL;
    cJSON *inst = load_json(instances_json, e);
    if (!inst) return e && e->code ? e->code : VISVM_ERR_FORMAT;
    cJSON *caps = captions_json ? load_json(captions_json, e) : NULL;
    int rc = VISVM_OK;
    if (captions_json && !caps) {
        cJSON_Delete(inst);
        return e && e->code ? e->code : VISVM_ERR_FORMAT;
    }
    vv_chair_coco *g = calloc(1, sizeof(*g));
    const cJSON *images = cJSON_GetObjectItemCaseSensitive(inst, "images");
    const cJSON *anns = cJSON_GetObjectItemCaseSensitive(inst, "annotations");
    const cJSON *cats = cJSON_GetObjectItemCaseSensitive(inst, "categories");
    if (!g) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    else if (!cJSON_IsArray(images) || !cJSON_IsArray(anns) || !cJSON_IsArray(cats))
        rc = vv_err(e, VISVM_ERR_FORMAT, "%s: expected 'images', 'annotations' and 'categories' arrays", instances_json);
    // category id -> class (by name through the synonym table)
    int max_cat = 0;
    const cJSON *it;
    if (!rc)
        cJSON_ArrayForEach(it, cats) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
            int64_t v;
            if (!vv_json_int(id, 0, COCO_MAX_CAT, &v)) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s: a category id is not an integer in 0..%d", instances_json,
                            COCO_MAX_CAT);
                break;
            }
            if (v > max_cat) max_cat = (int)v;
        }
    int *cat_cls = rc ? NULL : malloc((size_t)(max_cat + 1) * sizeof(int));
    if (!rc && !cat_cls) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc) {
        for (int i = 0; i <= max_cat; i++) cat_cls[i] = -1;
        cJSON_ArrayForEach(it, cats) {
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
            int64_t v;
            if (vv_json_int(id, 0, max_cat, &v) && cJSON_IsString(nm)) {
                int k = vv_chair_class_id(c, nm->valuestring);
                if (k < 0) k = smap_get(&c->words, nm->valuestring);
                cat_cls[v] = k;
            }
        }
        g->n_classes = c->n_classes;
        g->cap = cJSON_GetArraySize(images);
        g->ids = malloc((size_t)(g->cap ? g->cap : 1) * sizeof(int64_t));
        if (!g->ids) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        cJSON_ArrayForEach(it, images) {
            if (rc) break;
            const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
            if (!vv_json_int(id, -COCO_MAX_ID, COCO_MAX_ID, &g->ids[g->n])) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s: an image has no integer 'id'", instances_json);
                break;
            }
            g->n++;
        }
    }
    if (!rc) {
        qsort(g->ids, (size_t)g->n, sizeof(int64_t), cmp_i64);
        g->flags = calloc((size_t)(g->n ? g->n : 1) * (size_t)g->n_classes, 1);
        if (!g->flags) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    if (!rc)
        cJSON_ArrayForEach(it, anns) {
            const cJSON *img = cJSON_GetObjectItemCaseSensitive(it, "image_id");
            const cJSON *cat = cJSON_GetObjectItemCaseSensitive(it, "category_id");
            int64_t iid, cid;
            if (!vv_json_int(img, -COCO_MAX_ID, COCO_MAX_ID, &iid) || !vv_json_int(cat, 0, max_cat, &cid)) continue;
            int64_t i = find_id(g, iid);
            if (i >= 0 && cat_cls[cid] >= 0) g->flags[i * g->n_classes + cat_cls[cid]] = true;
        }
    if (!rc && caps) {
        const cJSON *ca = cJSON_GetObjectItemCaseSensitive(caps, "annotations");
        if (!cJSON_IsArray(ca)) rc = vv_err(e, VISVM_ERR_FORMAT, "%s: expected an 'annotations' array", captions_json);
        vv_ivec m = {0};
        if (!rc)
            cJSON_ArrayForEach(it, ca) {
                const cJSON *img = cJSON_GetObjectItemCaseSensitive(it, "image_id");
                const cJSON *cap = cJSON_GetObjectItemCaseSensitive(it, "caption");
                int64_t iid;
                if (!vv_json_int(img, -COCO_MAX_ID, COCO_MAX_ID, &iid) || !cJSON_IsString(cap)) continue;
                int64_t i = find_id(g, iid);
                if (i < 0) continue;
                m.n = 0;
                if ((rc = vv_chair_mentions(c, cap->valuestring, &m, NULL, NULL, e))) break;
                for (size_t k = 0; k < m.n; k++) g->flags[i * g->n_classes + m.v[k]] = true;
            }
        vv_ivec_free(&m);
    }
    free(cat_cls);
    cJSON_Delete(inst);
    cJSON_Delete(caps);
    if (rc) {
        vv_chair_coco_free(g);
        return rc;
    }
    *out = g;
    return VISVM_OK;
}
