// bpe.c - SentencePiece-style BPE training over word types.
#include "bpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SP "\xe2\x96\x81" // U+2581, SentencePiece's space

typedef struct {
    char **sym;  // symbols of this word type
    int n;
    long count;
    char *word;  // the whole word (with its U+2581 prefix)
    uint64_t hash;
} wtype;

static int utf8_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c >> 5) == 6) return 2;
    if ((c >> 4) == 14) return 3;
    if ((c >> 3) == 30) return 4;
    return 1; // invalid lead byte: one byte
}

void vv_bpe_vocab_free(vv_bpe_vocab *v) {
    if (!v) return;
    for (int i = 0; i < v->n; i++) free(v->texts[i]);
    free(v->texts);
    free(v->scores);
    free(v->types);
    memset(v, 0, sizeof(*v));
}

// Membership test; the vocabulary's texts are mirrored in a hash set.
typedef struct { char **k; size_t cap, n; } strset;
static uint64_t fnv(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}
static bool set_has(const strset *s, const char *t) {
    if (!s->cap) return false;
    for (size_t i = fnv(t) & (s->cap - 1); s->k[i]; i = (i + 1) & (s->cap - 1))
        if (!strcmp(s->k[i], t)) return true;
    return false;
}
static int set_add(strset *s, char *t) { // t is borrowed (owned by the vocabulary)
    if ((s->n + 1) * 2 > s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        char **nk = calloc(nc, sizeof(char *));
        if (!nk) return VISVM_ERR_NOMEM;
        for (size_t i = 0; i < s->cap; i++)
            if (s->k[i]) {
                size_t j = fnv(s->k[i]) & (nc - 1);
                while (nk[j]) j = (j + 1) & (nc - 1);
                nk[j] = s->k[i];
            }
        free(s->k);
        s->k = nk;
        s->cap = nc;
    }
    size_t i = fnv(t) & (s->cap - 1);
    while (s->k[i]) i = (i + 1) & (s->cap - 1);
    s->k[i] = t;
    s->n++;
    return VISVM_OK;
}

static int push_tok(vv_bpe_vocab *v, strset *set, int *cap, const char *text, float score, int type) {
    if (v->n == *cap) {
        *cap = *cap ? *cap * 2 : 512;
        char **t = realloc(v->texts, (size_t)*cap * sizeof(char *));
        float *s = t ? realloc(v->scores, (size_t)*cap * sizeof(float)) : NULL;
        if (t) v->texts = t;
        if (s) v->scores = s;
        int32_t *ty = s ? realloc(v->types, (size_t)*cap * sizeof(int32_t)) : NULL;
        if (!ty) return VISVM_ERR_NOMEM;
        v->types = ty;
    }
    if (!(v->texts[v->n] = vv_strdup(text)) || set_add(set, v->texts[v->n])) return VISVM_ERR_NOMEM;
    v->scores[v->n] = score;
    v->types[v->n] = type;
    v->n++;
    return VISVM_OK;
}

int vv_bpe_train(const char *const *texts, size_t n_texts, const char *const *specials, int n_specials,
                 int max_merges, int min_count, vv_bpe_vocab *out, vv_error *e) {
    memset(out, 0, sizeof(*out));
    if (min_count < 1) min_count = 1;
    // word types: split on ' ' and prefix each word with U+2581
    wtype *w = NULL;
    int nw = 0, capw = 0, rc = VISVM_OK, cap = 0;
    strset set = {0};  // texts already in the vocabulary
    int *htab = NULL; // word -> type index (open addressing)
    size_t hcap = 0;
    for (size_t t = 0; t < n_texts && !rc; t++) {
        const char *s = texts[t];
        while (*s && !rc) {
            while (*s == ' ') s++;
            if (!*s) break;
            const char *b = s;
            while (*s && *s != ' ') s++;
            size_t len = (size_t)(s - b);
            char buf[256];
            if (len + 4 > sizeof(buf)) continue; // very long "words" are left to byte fallback
            memcpy(buf, SP, 3);
            memcpy(buf + 3, b, len);
            buf[len + 3] = 0;
            int found = -1;
            uint64_t h = 1469598103934665603ull;
            for (const char *q = buf; *q; q++) h = (h ^ (unsigned char)*q) * 1099511628211ull;
            if ((size_t)(nw + 1) * 2 > hcap) { // grow and rehash
                size_t nc = hcap ? hcap * 2 : 1024;
                int *nh = malloc(nc * sizeof(int));
                if (!nh) {
                    rc = VISVM_ERR_NOMEM;
                    break;
                }
                for (size_t i = 0; i < nc; i++) nh[i] = -1;
                for (int i = 0; i < nw; i++) {
                    size_t j = w[i].hash & (nc - 1);
                    while (nh[j] >= 0) j = (j + 1) & (nc - 1);
                    nh[j] = i;
                }
                free(htab);
                htab = nh;
                hcap = nc;
            }
            size_t slot = h & (hcap - 1);
            for (; htab[slot] >= 0; slot = (slot + 1) & (hcap - 1))
                if (w[htab[slot]].hash == h && !strcmp(w[htab[slot]].word, buf)) {
                    found = htab[slot];
                    break;
                }
            if (found >= 0) {
                w[found].count++;
                continue;
            }
            if (nw == capw) {
                capw = capw ? capw * 2 : 256;
                wtype *nwp = realloc(w, (size_t)capw * sizeof(wtype));
                if (!nwp) {
                    rc = VISVM_ERR_NOMEM;
                    break;
                }
                w = nwp;
            }
            wtype *x = &w[nw];
            x->count = 1;
            x->n = 0;
            x->hash = h;
            x->word = vv_strdup(buf);
            x->sym = malloc((len + 1) * sizeof(char *));
            if (!x->sym || !x->word) {
                free(x->sym);
                free(x->word);
                rc = VISVM_ERR_NOMEM;
                break;
            }
            htab[slot] = nw;
            nw++;
            for (size_t p = 0; p < len + 3 && !rc;) {
                int cl = p < 3 ? 3 : utf8_len((unsigned char)buf[p]);
                if (p + (size_t)cl > len + 3) cl = (int)(len + 3 - p);
                if (!(x->sym[x->n++] = vv_strndup(buf + p, (size_t)cl))) rc = VISVM_ERR_NOMEM;
                p += (size_t)cl;
            }
        }
    }
    // specials and bytes
    if (!rc) rc = push_tok(out, &set, &cap, "<unk>", 0, VV_TOKEN_UNKNOWN);
    if (!rc) rc = push_tok(out, &set, &cap, "<s>", 0, VV_TOKEN_CONTROL);
    if (!rc) rc = push_tok(out, &set, &cap, "</s>", 0, VV_TOKEN_CONTROL);
    for (int i = 0; i < n_specials && !rc; i++) rc = push_tok(out, &set, &cap, specials[i], 0, VV_TOKEN_USER_DEFINED);
    for (int b = 0; b < 256 && !rc; b++) {
        char t[8];
        snprintf(t, sizeof(t), "<0x%02X>", b);
        rc = push_tok(out, &set, &cap, t, 0, VV_TOKEN_BYTE);
    }
    // merges: most frequent adjacent pair (ties: lexicographically smallest), applied to all words
    for (int rank = 0; rank < max_merges && !rc; rank++) {
        const char *ba = NULL, *bb = NULL;
        long best = 0;
        // count adjacent pairs in a hash table keyed by (a, b)
        size_t n_pairs = 0;
        for (int i = 0; i < nw; i++) n_pairs += (size_t)(w[i].n > 1 ? w[i].n - 1 : 0);
        size_t pcap = 64;
        while (pcap < n_pairs * 2 + 2) pcap *= 2;
        struct pslot { const char *a, *b; long c; } *pt = calloc(pcap, sizeof(struct pslot));
        if (!pt) {
            rc = VISVM_ERR_NOMEM;
            break;
        }
        for (int i = 0; i < nw; i++)
            for (int k = 0; k + 1 < w[i].n; k++) {
                const char *x = w[i].sym[k], *y = w[i].sym[k + 1];
                uint64_t h = 1469598103934665603ull;
                for (const char *q = x; *q; q++) h = (h ^ (unsigned char)*q) * 1099511628211ull;
                h = (h ^ 0xff) * 1099511628211ull;
                for (const char *q = y; *q; q++) h = (h ^ (unsigned char)*q) * 1099511628211ull;
                size_t j = h & (pcap - 1);
                while (pt[j].a && (strcmp(pt[j].a, x) || strcmp(pt[j].b, y))) j = (j + 1) & (pcap - 1);
                pt[j].a = x;
                pt[j].b = y;
                pt[j].c += w[i].count;
            }
        for (size_t j = 0; j < pcap; j++) {
            if (!pt[j].a) continue;
            int better = pt[j].c > best;
            if (pt[j].c == best && ba) {
                int o = strcmp(pt[j].a, ba);
                better = o < 0 || (o == 0 && strcmp(pt[j].b, bb) < 0);
            }
            if (better) {
                best = pt[j].c;
                ba = pt[j].a;
                bb = pt[j].b;
            }
        }
        free(pt);
        if (!ba || best < min_count) break;
        char merged[512];
        snprintf(merged, sizeof(merged), "%s%s", ba, bb);
        char *ca = vv_strdup(ba), *cb = vv_strdup(bb);
        if (!ca || !cb) {
            free(ca);
            free(cb);
            rc = VISVM_ERR_NOMEM;
            break;
        }
        for (int i = 0; i < nw && !rc; i++)
            for (int k = 0; k + 1 < w[i].n; k++)
                if (!strcmp(w[i].sym[k], ca) && !strcmp(w[i].sym[k + 1], cb)) {
                    char *m = vv_strdup(merged);
                    if (!m) {
                        rc = VISVM_ERR_NOMEM;
                        break;
                    }
                    free(w[i].sym[k]);
                    free(w[i].sym[k + 1]);
                    w[i].sym[k] = m;
                    memmove(w[i].sym + k + 1, w[i].sym + k + 2, (size_t)(w[i].n - k - 2) * sizeof(char *));
                    w[i].n--;
                }
        free(ca);
        free(cb);
        if (!rc && !set_has(&set, merged)) rc = push_tok(out, &set, &cap, merged, -(float)rank, VV_TOKEN_NORMAL);
    }
    // single characters of the corpus, after all merges
    int n_chars = 0;
    for (size_t t = 0; t < n_texts && !rc; t++) {
        const char *s = texts[t];
        char buf[8];
        if (!set_has(&set, SP)) rc = push_tok(out, &set, &cap, SP, -1e9f, VV_TOKEN_NORMAL);
        for (size_t p = 0; s[p] && !rc;) {
            int cl = utf8_len((unsigned char)s[p]);
            size_t k = 0;
            while (k < (size_t)cl && s[p + k]) k++;
            memcpy(buf, s + p, k);
            buf[k] = 0;
            p += k;
            if (buf[0] == ' ' || set_has(&set, buf)) continue;
            rc = push_tok(out, &set, &cap, buf, -1e6f - (float)n_chars++, VV_TOKEN_NORMAL);
        }
    }
    for (int i = 0; i < nw; i++) {
        for (int k = 0; k < w[i].n; k++) free(w[i].sym[k]);
        free(w[i].sym);
        free(w[i].word);
    }
    free(w);
    free(htab);
    free(set.k);
    if (rc) {
        vv_bpe_vocab_free(out);
        return vv_err(e, rc, "out of memory training the BPE vocabulary");
    }
    return VISVM_OK;
}

int vv_bpe_to_vocab(const vv_bpe_vocab *b, vv_vocab **out, vv_error *e) {
    return vv_vocab_create(b->n, (const char *const *)b->texts, b->scores, b->types, 1, 2, 0, true, true, out, e);
}
