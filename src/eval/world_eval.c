// world_eval.c - CHAIR and caption statistics on synthetic-world scenes.
#include "world_eval.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int vv_world_chair(vv_chair **out, vv_error *e) {
    vv_buf b = {0};
    int rc = vv_world_synonyms_text(&b);
    if (rc) return vv_err(e, rc, "cannot build the world synonym table");
    rc = vv_chair_parse_synonyms(b.v, b.n, false, out, e);
    vv_buf_free(&b);
    return rc;
}

void vv_free_strings(char **s, int n) {
    for (int i = 0; s && i < n; i++) free(s[i]);
    free(s);
}

static bool is_abbrev(const char *text, size_t dot) {
    static const char *ab[] = {"mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "e.g", "i.e", "approx", "fig"};
    size_t b = dot;
    while (b > 0 && (isalpha((unsigned char)text[b - 1]) || text[b - 1] == '.')) b--;
    size_t n = dot - b;
    for (size_t i = 0; i < sizeof(ab) / sizeof(ab[0]); i++)
        if (strlen(ab[i]) == n && !strncasecmp(text + b, ab[i], n)) return true;
    return false;
}

int vv_split_sentences(const char *text, char ***out, int *n) {
    *out = NULL;
    *n = 0;
    int cap = 0;
    size_t len = strlen(text), start = 0;
    for (size_t i = 0; i <= len; i++) {
        bool end = i == len;
        if (!end && (text[i] == '.' || text[i] == '!' || text[i] == '?')) {
            bool next_sep = i + 1 == len || isspace((unsigned char)text[i + 1]);
            if (next_sep && !(text[i] == '.' && is_abbrev(text, i))) end = true;
        }
        if (!end) continue;
        size_t a = start, z = i == len ? len : i + 1; // keep the period
        while (a < z && isspace((unsigned char)text[a])) a++;
        while (z > a && isspace((unsigned char)text[z - 1])) z--;
        start = i + 1;
        if (z == a) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 8;
            char **ns = realloc(*out, (size_t)cap * sizeof(char *));
            if (!ns) return VISVM_ERR_NOMEM;
            *out = ns;
        }
        if (!((*out)[*n] = vv_strndup(text + a, z - a))) return VISVM_ERR_NOMEM;
        (*n)++;
    }
    return VISVM_OK;
}

// First number word (one..nine) of a sentence that mentions no object class.
static int stated_count(const vv_chair *ch, char **sent, int n) {
    for (int i = 0; i < n; i++) {
        vv_ivec m = {0};
        vv_chair_mentions(ch, sent[i], &m, NULL, NULL, NULL);
        size_t nm = m.n;
        vv_ivec_free(&m);
        if (nm) continue;
        char low[512];
        size_t l = 0;
        for (const char *p = sent[i]; *p && l + 1 < sizeof(low); p++) low[l++] = (char)tolower((unsigned char)*p);
        low[l] = 0;
        for (int k = 1; k <= 9; k++) {
            const char *w = vv_world_number_word(k);
            size_t wl = strlen(w);
            for (const char *p = strstr(low, w); p; p = strstr(p + 1, w)) {
                bool left = p == low || !isalpha((unsigned char)p[-1]);
                bool right = !isalpha((unsigned char)p[wl]);
                if (left && right) return k;
            }
        }
    }
    return 0;
}

int vv_world_score_caption(const vv_chair *ch, const vv_world_scene *s, const char *caption, vv_caption_stats *out,
                           vv_ivec *halluc, vv_error *e) {
    memset(out, 0, sizeof(*out));
    const int nc = vv_chair_n_classes(ch);
    bool *gt = calloc((size_t)nc, 1);
    if (!gt) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < s->n_objects; i++) {
        int k = vv_chair_class_id(ch, vv_world_class_name(s->obj[i].cls));
        if (k >= 0) gt[k] = true;
    }
    int rc = vv_chair_score(ch, caption, gt, &out->chair, halluc, e);
    free(gt);
    if (rc) return rc;
    char **sent = NULL;
    int n = 0;
    if ((rc = vv_split_sentences(caption, &sent, &n))) {
        vv_free_strings(sent, n);
        return vv_err(e, rc, "out of memory");
    }
    out->n_sentences = n;
    out->stated_count = stated_count(ch, sent, n);
    for (int i = 0; i < n; i++) {
        vv_ivec m = {0};
        vv_chair_mentions(ch, sent[i], &m, NULL, NULL, NULL);
        if (m.n) out->n_object_sentences++;
        vv_ivec_free(&m);
    }
    vv_free_strings(sent, n);
    return VISVM_OK;
}

void vv_world_totals_add(vv_world_totals *t, const vv_world_scene *s, const vv_caption_stats *c) {
    vv_chair_add(&t->chair, &c->chair);
    t->sentences += c->n_sentences;
    if (c->stated_count > 0) {
        t->counts_stated++;
        if (c->stated_count == s->n_objects) t->counts_right++;
        if (c->stated_count > s->n_objects) t->counts_over++;
        if (c->stated_count == c->n_object_sentences) t->counts_followed++;
    }
}

void vv_auc_add_image(vv_auc *a, const float *score, const signed char *label, int n) {
    long pairs = 0;
    for (int i = 0; i < n; i++) {
        a->n_good += label[i] == 1;
        a->n_bad += label[i] == 0;
        if (label[i] != 1) continue;
        for (int j = 0; j < n; j++) {
            if (label[j] != 0) continue;
            a->wins += score[i] > score[j] ? 1.0 : score[i] == score[j] ? 0.5 : 0.0;
            pairs++;
        }
    }
    a->pairs += pairs;
    a->images += pairs > 0;
}

double vv_auc_value(const vv_auc *a) { return a->pairs ? a->wins / (double)a->pairs : NAN; }

int vv_world_sentence_label(const vv_chair *ch, const vv_world_scene *s, const char *sentence) {
    vv_ivec m = {0};
    if (vv_chair_mentions(ch, sentence, &m, NULL, NULL, NULL) || !m.n) {
        vv_ivec_free(&m);
        return -1;
    }
    int label = 1;
    for (size_t k = 0; k < m.n && label; k++) {
        bool present = false;
        for (int i = 0; i < s->n_objects && !present; i++)
            present = vv_chair_class_id(ch, vv_world_class_name(s->obj[i].cls)) == m.v[k];
        if (!present) label = 0;
    }
    vv_ivec_free(&m);
    return label;
}

int vv_world_label_distinct(const vv_chair *ch, const vv_world_scene *s, const char *const *sent, int n, int *keep,
                            signed char *label) {
    int ns = 0;
    for (int i = 0; i < n; i++) {
        bool dup = false;
        for (int k = 0; k < ns && !dup; k++) dup = !strcmp(sent[keep[k]], sent[i]);
        if (dup) continue;
        keep[ns] = i;
        label[ns++] = (signed char)vv_world_sentence_label(ch, s, sent[i]);
    }
    return ns;
}

const vv_world_scene *vv_world_find_scene(const vv_world_scene *scenes, int n, const char *path, int *hint) {
    const size_t lp = strlen(path);
    for (int k = 0; k < n; k++) {
        const int i = (*hint + k) % n;
        const size_t li = strlen(scenes[i].image);
        if (li && li <= lp && !strcmp(path + lp - li, scenes[i].image) && (li == lp || path[lp - li - 1] == '/')) {
            *hint = i + 1;
            return &scenes[i];
        }
    }
    return NULL;
}

double vv_sign_test_p(long only_a, long only_b) {
    const long n = only_a + only_b, k = only_a < only_b ? only_a : only_b;
    if (n <= 0) return 1.0;
    // sum_{i <= k} C(n, i) / 2^n in logs (terms from the largest down, so no underflow of the sum)
    const double lc = lgamma((double)n + 1) - (double)n * log(2.0);
    double mx = -INFINITY, acc = 0;
    for (long i = 0; i <= k; i++) mx = fmax(mx, lc - lgamma((double)i + 1) - lgamma((double)(n - i) + 1));
    for (long i = 0; i <= k; i++) acc += exp(lc - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) - mx);
    const double p = 2.0 * exp(mx) * acc;
    return p < 1.0 ? p : 1.0;
}

void vv_wilson95(long k, long n, double *lo, double *hi) {
    if (n <= 0) {
        *lo = 0, *hi = 1;
        return;
    }
    const double z = 1.959963984540054, p = (double)k / n, z2n = z * z / n;
    const double c = (p + z2n / 2) / (1 + z2n), h = z * sqrt(p * (1 - p) / n + z2n / (4 * n)) / (1 + z2n);
    *lo = fmax(0, c - h), *hi = fmin(1, c + h);
}
