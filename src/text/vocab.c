// vocab.c - SentencePiece-style ("llama" / SPM) tokenizer, bit-compatible with
// llama.cpp's llm_tokenizer_spm (src/llama-vocab.cpp, Feb 2025).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE // memmem
#endif
#include "vocab.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPACE_ESC "\xe2\x96\x81" // U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's space
#define SPACE_ESC_LEN 3

struct vv_vocab {
    int n;
    char *arena;     // all token texts, each NUL-terminated
    size_t *off;     // [n] text offset in arena
    uint32_t *len;   // [n] text length in bytes
    float *score;    // [n]
    uint8_t *type;   // [n] enum vv_token_type
    uint8_t *byte;   // [n] value of BYTE tokens (as llama.cpp's token_to_byte)
    uint32_t *slots; // open-addressing hash: id + 1, 0 = empty
    size_t mask;     // slot count - 1 (power of two)
    int32_t byte_tok[256];
    int32_t *special; // CONTROL / USER_DEFINED / UNKNOWN ids, longest text first
    int n_special;
    int bos, eos, unk, pad;
    bool add_bos, add_eos, add_space_prefix;
};

// ---------------------------------------------------------------------------
// construction

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; // FNV-1a: texts are short, this is plenty
    for (size_t i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= 1099511628211ull;
    }
    return h ^ (h >> 29);
}

static const char *tok_text(const vv_vocab *v, int id) { return v->arena + v->off[id]; }

int vv_vocab_find(const vv_vocab *v, const char *text, size_t len) {
    if (!v || (!text && len)) return -1;
    for (size_t i = hash_bytes(text, len) & v->mask;; i = (i + 1) & v->mask) {
        uint32_t s = v->slots[i];
        if (!s) return -1;
        int id = (int)s - 1;
        if (v->len[id] == len && memcmp(tok_text(v, id), text, len) == 0) return id;
    }
}

void vv_vocab_free(vv_vocab *v) {
    if (!v) return;
    free(v->arena);
    free(v->off);
    free(v->len);
    free(v->score);
    free(v->type);
    free(v->byte);
    free(v->slots);
    free(v->special);
    free(v);
}

static int vocab_alloc(int n, vv_vocab **out, vv_error *e) {
    vv_vocab *v = calloc(1, sizeof(*v));
    if (!v) return vv_err(e, VISVM_ERR_NOMEM, "vocab: out of memory");
    size_t un = (size_t)n;
    v->n = n;
    v->off = malloc(un * sizeof(*v->off));
    v->len = malloc(un * sizeof(*v->len));
    v->score = malloc(un * sizeof(*v->score));
    v->type = malloc(un);
    v->byte = calloc(un, 1);
    v->bos = v->eos = v->unk = v->pad = -1;
    if (!v->off || !v->len || !v->score || !v->type || !v->byte) {
        vv_vocab_free(v);
        return vv_err(e, VISVM_ERR_NOMEM, "vocab: out of memory for %d tokens", n);
    }
    *out = v;
    return VISVM_OK;
}

// Stores token i. Empty texts become "[EMPTY_i]" as in llama.cpp (an empty
// piece could never be produced and would match everywhere as a special token).
static int vocab_set(vv_vocab *v, vv_buf *arena, int i, const char *text, size_t len, float score, int type,
                     vv_error *e) {
    char tmp[32];
    if (len == 0) {
        len = (size_t)snprintf(tmp, sizeof(tmp), "[EMPTY_%d]", i);
        text = tmp;
    }
    if (len > UINT32_MAX - 1) return vv_err(e, VISVM_ERR_FORMAT, "vocab: token %d text too long", i);
    v->off[i] = arena->n;
    v->len[i] = (uint32_t)len;
    v->score[i] = score;
    v->type[i] = (uint8_t)type;
    // vv_buf keeps a NUL after the data; append one explicitly so texts are C strings.
    if (vv_buf_append(arena, text, len) || vv_buf_append(arena, "", 1))
        return vv_err(e, VISVM_ERR_NOMEM, "vocab: out of memory for token texts");
    return VISVM_OK;
}

static int cmp_special(const void *a, const void *b, void *ctx) {
    const vv_vocab *v = ctx;
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (v->len[x] != v->len[y]) return v->len[x] > v->len[y] ? -1 : 1;
    return (x > y) - (x < y); // deterministic tie-break (llama.cpp's std::sort leaves ties unspecified)
}

// Builds the hash map, byte table and special-token list; checks the ids.
static int vocab_finish(vv_vocab *v, vv_error *e) {
    int n = v->n;
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap <<= 1;
    v->slots = calloc(cap, sizeof(*v->slots));
    if (!v->slots) return vv_err(e, VISVM_ERR_NOMEM, "vocab: out of memory for the token map");
    v->mask = cap - 1;
    for (int id = 0; id < n; id++) {
        const char *t = tok_text(v, id);
        size_t i = hash_bytes(t, v->len[id]) & v->mask;
        for (; v->slots[i]; i = (i + 1) & v->mask) {
            int o = (int)v->slots[i] - 1;
            if (v->len[o] == v->len[id] && memcmp(tok_text(v, o), t, v->len[id]) == 0)
                return vv_err(e, VISVM_ERR_FORMAT, "vocab: duplicate token '%.64s' has ids %d and %d", t, o, id);
        }
        v->slots[i] = (uint32_t)id + 1;
        if (v->type[id] == VV_TOKEN_BYTE) {
            // llama.cpp: strtol(text.substr(3, 2), 16)
            char hex[3] = {0, 0, 0};
            if (v->len[id] > 3) memcpy(hex, t + 3, v->len[id] - 3 >= 2 ? 2 : 1);
            v->byte[id] = (uint8_t)strtol(hex, NULL, 16);
        }
    }

    static const char hexd[] = "0123456789ABCDEF";
    for (int b = 0; b < 256; b++) {
        char name[6] = {'<', '0', 'x', hexd[b >> 4], hexd[b & 15], '>'};
        char one = (char)b;
        int id = vv_vocab_find(v, name, 6);
        if (id < 0) id = vv_vocab_find(v, &one, 1);
        if (id < 0) id = v->unk;
        v->byte_tok[b] = id;
    }

    int ns = 0;
    for (int id = 0; id < n; id++) {
        int t = v->type[id];
        if (t == VV_TOKEN_CONTROL || t == VV_TOKEN_USER_DEFINED || t == VV_TOKEN_UNKNOWN) ns++;
    }
    if (ns) {
        v->special = malloc((size_t)ns * sizeof(*v->special));
        if (!v->special) return vv_err(e, VISVM_ERR_NOMEM, "vocab: out of memory");
        ns = 0;
        for (int id = 0; id < n; id++) {
            int t = v->type[id];
            if (t == VV_TOKEN_CONTROL || t == VV_TOKEN_USER_DEFINED || t == VV_TOKEN_UNKNOWN) v->special[ns++] = id;
        }
        qsort_r(v->special, (size_t)ns, sizeof(*v->special), cmp_special, v);
    }
    v->n_special = ns;
    return VISVM_OK;
}

static int check_id(int id, int n, const char *what, vv_error *e) {
    if (id < -1 || id >= n) return vv_err(e, VISVM_ERR_RANGE, "vocab: %s id %d out of range [0, %d)", what, id, n);
    return VISVM_OK;
}

int vv_vocab_create(int n, const char *const *texts, const float *scores, const int32_t *types, int bos, int eos,
                    int unk, bool add_bos, bool add_space_prefix, vv_vocab **out, vv_error *e) {
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vocab: NULL output");
    *out = NULL;
    if (n <= 0 || !texts) return vv_err(e, VISVM_ERR_INVALID, "vocab: need at least one token (n = %d)", n);
    if (n >= INT32_MAX) return vv_err(e, VISVM_ERR_RANGE, "vocab: too many tokens (%d)", n);
    int rc;
    if ((rc = check_id(bos, n, "BOS", e)) || (rc = check_id(eos, n, "EOS", e)) || (rc = check_id(unk, n, "UNK", e)))
        return rc;
    if (add_bos && bos < 0) return vv_err(e, VISVM_ERR_INVALID, "vocab: add_bos is set but there is no BOS token");
    for (int i = 0; i < n; i++) {
        if (!texts[i]) return vv_err(e, VISVM_ERR_INVALID, "vocab: token %d text is NULL", i);
        if (types && (types[i] < VV_TOKEN_UNDEFINED || types[i] > VV_TOKEN_BYTE))
            return vv_err(e, VISVM_ERR_INVALID, "vocab: token %d has type %d, outside 0..6", i, (int)types[i]);
    }
    vv_vocab *v = NULL;
    if ((rc = vocab_alloc(n, &v, e))) return rc;
    vv_buf arena = {0};
    for (int i = 0; i < n && !rc; i++)
        rc = vocab_set(v, &arena, i, texts[i], strlen(texts[i]), scores ? scores[i] : 0.0f,
                       types ? types[i] : VV_TOKEN_NORMAL, e);
    v->arena = arena.v;
    v->bos = bos;
    v->eos = eos;
    v->unk = unk;
    v->add_bos = add_bos;
    v->add_space_prefix = add_space_prefix;
    if (!rc) rc = vocab_finish(v, e);
    if (rc) {
        vv_vocab_free(v);
        return rc;
    }
    *out = v;
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// GGUF loading

#define KEY_PREFIX "tokenizer.ggml."

// Optional special-token id: absent keeps *id; present must be a valid id.
static int load_special(const vv_gguf *g, const char *key, int n, int *id, vv_error *e) {
    if (vv_gguf_find_key(g, key) < 0) return VISVM_OK;
    uint32_t u;
    int rc = vv_gguf_get_u32(g, key, &u, e);
    if (rc) return vv_err_prefix(e, rc, "vocab");
    if (u >= (uint32_t)n)
        return vv_err(e, VISVM_ERR_RANGE, "vocab: %s = %u is out of range (vocabulary has %d tokens)", key, u, n);
    *id = (int)u;
    return VISVM_OK;
}

int vv_vocab_load(const vv_gguf *g, vv_vocab **out, vv_error *e) {
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vocab: NULL output");
    *out = NULL;
    if (!g) return vv_err(e, VISVM_ERR_INVALID, "vocab: NULL GGUF handle");
    int rc;
    const char *model = NULL;
    if ((rc = vv_gguf_get_str(g, KEY_PREFIX "model", &model, e))) return vv_err_prefix(e, rc, "vocab");
    if (strcmp(model, "llama") != 0)
        return vv_err(e, VISVM_ERR_UNSUPPORTED,
                      "vocab: tokenizer model '%.64s' is not supported (only 'llama' / SentencePiece)", model);

    const char *ktok = KEY_PREFIX "tokens", *kscore = KEY_PREFIX "scores", *ktype = KEY_PREFIX "token_type";
    int64_t it = vv_gguf_find_key(g, ktok);
    if (it < 0) return vv_err(e, VISVM_ERR_NOT_FOUND, "vocab: missing key %s (the token list)", ktok);
    if (vv_gguf_kv_type(g, it) != VV_GGUF_ARRAY || vv_gguf_arr_type(g, it) != VV_GGUF_STRING)
        return vv_err(e, VISVM_ERR_FORMAT, "vocab: %s must be an array of strings", ktok);
    uint64_t n64 = vv_gguf_arr_n(g, it);
    if (n64 == 0) return vv_err(e, VISVM_ERR_FORMAT, "vocab: %s is empty", ktok);
    if (n64 >= INT32_MAX) return vv_err(e, VISVM_ERR_RANGE, "vocab: %s has too many tokens (%llu)", ktok,
                                        (unsigned long long)n64);
    int n = (int)n64;

    int64_t is = vv_gguf_find_key(g, kscore), ity = vv_gguf_find_key(g, ktype);
    if (is >= 0) {
        int at = vv_gguf_arr_type(g, is);
        if (vv_gguf_kv_type(g, is) != VV_GGUF_ARRAY ||
            !(at == VV_GGUF_FLOAT32 || at == VV_GGUF_FLOAT64 || at == VV_GGUF_INT32))
            return vv_err(e, VISVM_ERR_FORMAT, "vocab: %s must be an array of numbers", kscore);
        if (vv_gguf_arr_n(g, is) != n64)
            return vv_err(e, VISVM_ERR_FORMAT, "vocab: %s has %llu entries but %s has %d", kscore,
                          (unsigned long long)vv_gguf_arr_n(g, is), ktok, n);
    }
    if (ity >= 0) {
        int at = vv_gguf_arr_type(g, ity);
        bool is_int = (at >= VV_GGUF_UINT8 && at <= VV_GGUF_INT32) || at == VV_GGUF_UINT64 || at == VV_GGUF_INT64;
        if (vv_gguf_kv_type(g, ity) != VV_GGUF_ARRAY || !is_int)
            return vv_err(e, VISVM_ERR_FORMAT, "vocab: %s must be an array of integers", ktype);
        if (vv_gguf_arr_n(g, ity) != n64)
            return vv_err(e, VISVM_ERR_FORMAT, "vocab: %s has %llu entries but %s has %d", ktype,
                          (unsigned long long)vv_gguf_arr_n(g, ity), ktok, n);
    }

    vv_vocab *v = NULL;
    if ((rc = vocab_alloc(n, &v, e))) return rc;
    float *scores = NULL;
    int64_t *types = NULL;
    vv_buf arena = {0};
    if (is >= 0 || ity >= 0) {
        scores = calloc((size_t)n, sizeof(*scores));
        types = malloc((size_t)n * sizeof(*types));
        if (!scores || !types) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "vocab: out of memory");
            goto fail;
        }
    }
    if (is >= 0) {
        if (vv_gguf_arr_type(g, is) == VV_GGUF_INT32) { // integer scores: newer llama.cpp accepts them too
            if ((rc = vv_gguf_get_arr_i64(g, kscore, types, n64, e))) goto fail_prefix;
            for (int i = 0; i < n; i++) scores[i] = (float)types[i];
        } else if ((rc = vv_gguf_get_arr_f32(g, kscore, scores, n64, e))) {
            goto fail_prefix;
        }
    }
    if (ity >= 0) {
        if ((rc = vv_gguf_get_arr_i64(g, ktype, types, n64, e))) goto fail_prefix;
        for (int i = 0; i < n; i++)
            if (types[i] < VV_TOKEN_UNDEFINED || types[i] > VV_TOKEN_BYTE) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "vocab: %s[%d] = %lld is not a token type (0..6)", ktype, i,
                            (long long)types[i]);
                goto fail;
            }
    }
    for (int i = 0; i < n; i++) {
        const char *s = NULL;
        size_t len = 0;
        if ((rc = vv_gguf_get_arr_str(g, ktok, (uint64_t)i, &s, &len, e))) goto fail_prefix;
        if ((rc = vocab_set(v, &arena, i, s, len, scores && is >= 0 ? scores[i] : 0.0f,
                            ity >= 0 ? (int)types[i] : VV_TOKEN_NORMAL, e)))
            goto fail;
    }
    v->arena = arena.v;
    arena.v = NULL;

    // llama.cpp defaults for SPM vocabularies; a default outside the vocabulary is dropped.
    v->bos = 1 < n ? 1 : -1;
    v->eos = 2 < n ? 2 : -1;
    v->unk = 0;
    v->pad = -1;
    v->add_bos = true;
    v->add_eos = false;
    v->add_space_prefix = true;
    if ((rc = load_special(g, KEY_PREFIX "bos_token_id", n, &v->bos, e)) ||
        (rc = load_special(g, KEY_PREFIX "eos_token_id", n, &v->eos, e)) ||
        (rc = load_special(g, KEY_PREFIX "unknown_token_id", n, &v->unk, e)) ||
        (rc = load_special(g, KEY_PREFIX "padding_token_id", n, &v->pad, e)))
        goto fail;
    if ((rc = vv_gguf_get_bool_def(g, KEY_PREFIX "add_bos_token", v->add_bos, &v->add_bos, e)) ||
        (rc = vv_gguf_get_bool_def(g, KEY_PREFIX "add_eos_token", v->add_eos, &v->add_eos, e)) ||
        (rc = vv_gguf_get_bool_def(g, KEY_PREFIX "add_space_prefix", v->add_space_prefix, &v->add_space_prefix, e)))
        goto fail_prefix;
    if (v->add_bos && v->bos < 0) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "vocab: %sadd_bos_token is true but there is no BOS token", KEY_PREFIX);
        goto fail;
    }
    if (v->add_eos && v->eos < 0) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "vocab: %sadd_eos_token is true but there is no EOS token", KEY_PREFIX);
        goto fail;
    }
    if ((rc = vocab_finish(v, e))) goto fail;
    free(scores);
    free(types);
    *out = v;
    return VISVM_OK;

fail_prefix:
    vv_err_prefix(e, rc, "vocab");
fail:
    free(scores);
    free(types);
    vv_buf_free(&arena);
    vv_vocab_free(v);
    return rc;
}

// ---------------------------------------------------------------------------
// accessors

int vv_vocab_n(const vv_vocab *v) { return v ? v->n : 0; }
int vv_vocab_bos(const vv_vocab *v) { return v ? v->bos : -1; }
int vv_vocab_eos(const vv_vocab *v) { return v ? v->eos : -1; }
int vv_vocab_unk(const vv_vocab *v) { return v ? v->unk : -1; }
int vv_vocab_pad(const vv_vocab *v) { return v ? v->pad : -1; }
bool vv_vocab_add_bos(const vv_vocab *v) { return v && v->add_bos; }
bool vv_vocab_add_eos(const vv_vocab *v) { return v && v->add_eos; }
bool vv_vocab_add_space_prefix(const vv_vocab *v) { return v && v->add_space_prefix; }

static bool valid_id(const vv_vocab *v, int id) { return v && id >= 0 && id < v->n; }

const char *vv_vocab_text(const vv_vocab *v, int id) { return valid_id(v, id) ? tok_text(v, id) : NULL; }
float vv_vocab_score(const vv_vocab *v, int id) { return valid_id(v, id) ? v->score[id] : 0.0f; }
int vv_vocab_type(const vv_vocab *v, int id) { return valid_id(v, id) ? v->type[id] : VV_TOKEN_UNDEFINED; }
int vv_vocab_byte_token(const vv_vocab *v, uint8_t byte) { return v ? v->byte_tok[byte] : -1; }

int vv_vocab_set_add_eos(vv_vocab *v, bool add_eos, vv_error *e) {
    if (!v) return vv_err(e, VISVM_ERR_INVALID, "vocab: NULL vocabulary");
    if (add_eos && v->eos < 0) return vv_err(e, VISVM_ERR_INVALID, "vocab: add_eos needs an EOS token");
    v->add_eos = add_eos;
    return VISVM_OK;
}

int vv_vocab_set_pad(vv_vocab *v, int pad, vv_error *e) {
    if (!v) return vv_err(e, VISVM_ERR_INVALID, "vocab: NULL vocabulary");
    int rc = check_id(pad, v->n, "padding", e);
    if (!rc) v->pad = pad;
    return rc;
}

// ---------------------------------------------------------------------------
// tokenization

typedef struct {
    int prev, next; // neighbours in the symbol chain, -1 at the ends
    size_t off;     // start in the escaped text
    size_t n;       // byte length; 0 once merged into its left neighbour
} sym_t;

typedef struct {
    int left, right;
    float score;
    size_t size;
} bigram_t;

typedef struct {
    sym_t *sym;
    size_t nsym, capsym;
    bigram_t *heap;
    size_t nheap, capheap;
    char *buf; // escaped text
    size_t nbuf, capbuf;
} spm_work;

static void work_free(spm_work *w) {
    free(w->sym);
    free(w->heap);
    free(w->buf);
}

static int reserve(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return VISVM_OK;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return VISVM_ERR_NOMEM;
        nc *= 2;
    }
    void *q = realloc(*p, nc * elem);
    if (!q) return VISVM_ERR_NOMEM;
    *p = q;
    *cap = nc;
    return VISVM_OK;
}

// Heap order of llama.cpp's llm_bigram_spm::comparator: highest score first,
// then the leftmost pair.
static bool bigram_before(const bigram_t *a, const bigram_t *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(spm_work *w, bigram_t b) {
    if (reserve((void **)&w->heap, &w->capheap, w->nheap + 1, sizeof(bigram_t))) return VISVM_ERR_NOMEM;
    size_t i = w->nheap++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!bigram_before(&b, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = b;
    return VISVM_OK;
}

static bigram_t heap_pop(spm_work *w) {
    bigram_t top = w->heap[0], last = w->heap[--w->nheap];
    size_t i = 0, n = w->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && bigram_before(&w->heap[c + 1], &w->heap[c])) c++;
        if (!bigram_before(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n) w->heap[i] = last;
    return top;
}

static int try_add_bigram(const vv_vocab *v, spm_work *w, int left, int right) {
    if (left < 0 || right < 0) return VISVM_OK;
    size_t size = w->sym[left].n + w->sym[right].n; // the two symbols are adjacent in buf
    int id = vv_vocab_find(v, w->buf + w->sym[left].off, size);
    if (id < 0) return VISVM_OK;
    bigram_t b = {left, right, v->score[id], size};
    return heap_push(w, b);
}

// One raw-text fragment: llm_tokenizer_spm_session::tokenize on the escaped text.
static int spm_fragment(const vv_vocab *v, spm_work *w, const char *text, size_t len, bool prefix, vv_ivec *out,
                        vv_error *e) {
    // Escape: optional leading space, then every ' ' -> U+2581.
    size_t nsp = prefix ? 1 : 0;
    for (size_t i = 0; i < len; i++) nsp += text[i] == ' ';
    size_t need = len + (prefix ? 1 : 0) + nsp * (SPACE_ESC_LEN - 1);
    if (reserve((void **)&w->buf, &w->capbuf, need + 1, 1))
        return vv_err(e, VISVM_ERR_NOMEM, "tokenize: out of memory");
    size_t nb = 0;
    if (prefix) {
        memcpy(w->buf, SPACE_ESC, SPACE_ESC_LEN);
        nb = SPACE_ESC_LEN;
    }
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') {
            memcpy(w->buf + nb, SPACE_ESC, SPACE_ESC_LEN);
            nb += SPACE_ESC_LEN;
        } else {
            w->buf[nb++] = text[i];
        }
    }
    w->nbuf = nb;
    if (nb == 0) return VISVM_OK;

    // Initial symbols: one per UTF-8 character, length from the lead byte only
    // (as unicode_len_utf8), clipped at the end; invalid bytes stand alone.
    static const uint8_t utf8_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    w->nsym = 0;
    for (size_t o = 0; o < nb;) {
        if (reserve((void **)&w->sym, &w->capsym, w->nsym + 1, sizeof(sym_t)))
            return vv_err(e, VISVM_ERR_NOMEM, "tokenize: out of memory");
        size_t l = utf8_len[(uint8_t)w->buf[o] >> 4];
        if (l > nb - o) l = nb - o;
        if (w->nsym >= INT32_MAX - 1) return vv_err(e, VISVM_ERR_RANGE, "tokenize: text too long");
        int idx = (int)w->nsym;
        sym_t s = {idx - 1, o + l == nb ? -1 : idx + 1, o, l};
        w->sym[w->nsym++] = s;
        o += l;
    }

    w->nheap = 0;
    for (size_t i = 1; i < w->nsym; i++)
        if (try_add_bigram(v, w, (int)i - 1, (int)i)) return vv_err(e, VISVM_ERR_NOMEM, "tokenize: out of memory");

    while (w->nheap) {
        bigram_t b = heap_pop(w);
        sym_t *l = &w->sym[b.left], *r = &w->sym[b.right];
        // Stale entry: one side was merged away or grew since the pair was queued.
        if (l->n == 0 || r->n == 0 || l->n + r->n != b.size) continue;
        l->n += r->n;
        r->n = 0;
        l->next = r->next;
        if (r->next >= 0) w->sym[r->next].prev = b.left;
        if (try_add_bigram(v, w, l->prev, b.left) || try_add_bigram(v, w, b.left, w->sym[b.left].next))
            return vv_err(e, VISVM_ERR_NOMEM, "tokenize: out of memory");
    }

    // Every merged symbol is a vocabulary token by construction, so only
    // unmerged characters can miss the map: llama.cpp's rev_merge lookup can
    // never succeed for them (its keys are token texts), and they go straight
    // to the byte fallback.
    for (int i = 0; i != -1; i = w->sym[i].next) {
        const sym_t *s = &w->sym[i];
        int id = vv_vocab_find(v, w->buf + s->off, s->n);
        if (id >= 0) {
            if (vv_ivec_push(out, id)) return vv_err(e, VISVM_ERR_NOMEM, "tokenize: out of memory");
            continue;
        }
        for (size_t j = 0; j < s->n; j++) {
            uint8_t c = (uint8_t)w->buf[s->off + j];
            int bt = v->byte_tok[c];
            if (bt < 0)
                return vv_err(e, VISVM_ERR_NOT_FOUND,
                              "tokenize: byte 0x%02X has no token (no <0x%02X>, one-byte or unknown token)", c, c);
            if (vv_ivec_push(out, bt)) return vv_err(e, VISVM_ERR_NOMEM, "tokenize: out of memory");
        }
    }
    return VISVM_OK;
}

typedef struct {
    int32_t tok; // >= 0: special token; -1: raw text
    size_t off, len;
} frag_t;

typedef struct {
    frag_t *v;
    size_t n, cap;
} frag_vec;

static int frag_push(frag_vec *f, int32_t tok, size_t off, size_t len) {
    if (reserve((void **)&f->v, &f->cap, f->n + 1, sizeof(frag_t))) return VISVM_ERR_NOMEM;
    frag_t x = {tok, off, len};
    f->v[f->n++] = x;
    return VISVM_OK;
}

// llama.cpp's tokenizer_st_partition: for each special token, longest first,
// split every remaining raw fragment at each of its (non-overlapping, left to
// right) occurrences. Without parse_special only USER_DEFINED tokens count.
static int partition(const vv_vocab *v, const char *text, size_t len, bool parse_special, frag_vec *frags,
                     vv_error *e) {
    frag_vec tmp = {0};
    int rc = VISVM_OK;
    frags->n = 0;
    if (frag_push(frags, -1, 0, len)) return vv_err(e, VISVM_ERR_NOMEM, "tokenize: out of memory");
    bool present[256] = {false}; // first-byte filter: skips tokens that cannot occur
    for (size_t i = 0; i < len; i++) present[(uint8_t)text[i]] = true;
    for (int k = 0; k < v->n_special; k++) {
        int id = v->special[k];
        int t = v->type[id];
        if (!parse_special && (t == VV_TOKEN_CONTROL || t == VV_TOKEN_UNKNOWN)) continue;
        const char *st = tok_text(v, id);
        size_t sl = v->len[id];
        if (sl > len || !present[(uint8_t)st[0]]) continue;
        tmp.n = 0;
        bool hit = false;
        for (size_t f = 0; f < frags->n && !rc; f++) {
            frag_t fr = frags->v[f];
            if (fr.tok >= 0) {
                rc = frag_push(&tmp, fr.tok, 0, 0);
                continue;
            }
            size_t pos = fr.off, end = fr.off + fr.len;
            while (!rc && end - pos >= sl) {
                const char *m = memmem(text + pos, end - pos, st, sl);
                if (!m) break;
                size_t mo = (size_t)(m - text);
                hit = true;
                if (mo > pos) rc = frag_push(&tmp, -1, pos, mo - pos);
                if (!rc) rc = frag_push(&tmp, id, 0, 0);
                pos = mo + sl;
            }
            if (!rc && pos < end) rc = frag_push(&tmp, -1, pos, end - pos);
        }
        if (rc) break;
        if (hit) {
            frag_vec s = *frags;
            *frags = tmp;
            tmp = s;
        }
    }
    free(tmp.v);
    if (rc) return vv_err(e, VISVM_ERR_NOMEM, "tokenize: out of memory");
    return VISVM_OK;
}

int vv_tokenize(const vv_vocab *v, const char *text, size_t len, bool add_special, bool parse_special, vv_ivec *out,
                vv_error *e) {
    if (!v || !out || (!text && len)) return vv_err(e, VISVM_ERR_INVALID, "tokenize: NULL argument");
    size_t n0 = out->n;
    int rc = VISVM_OK;
    frag_vec frags = {0};
    spm_work w = {0};

    if (add_special && v->add_bos) {
        if (vv_ivec_push(out, v->bos)) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "tokenize: out of memory");
            goto done;
        }
    }
    if (len > 0) {
        if ((rc = partition(v, text, len, parse_special, &frags, e))) goto done;
        // The space prefix goes before the first text and after every special
        // token (llama.cpp's is_prev_special), not only at the very start.
        bool prev_special = true;
        for (size_t i = 0; i < frags.n; i++) {
            const frag_t *f = &frags.v[i];
            if (f->tok >= 0) {
                if (vv_ivec_push(out, f->tok)) {
                    rc = vv_err(e, VISVM_ERR_NOMEM, "tokenize: out of memory");
                    goto done;
                }
                prev_special = true;
            } else {
                if ((rc = spm_fragment(v, &w, text + f->off, f->len, v->add_space_prefix && prev_special, out, e)))
                    goto done;
                prev_special = false;
            }
        }
    }
    if (add_special && v->add_eos) {
        if (vv_ivec_push(out, v->eos)) rc = vv_err(e, VISVM_ERR_NOMEM, "tokenize: out of memory");
    }
done:
    if (rc) out->n = n0;
    free(frags.v);
    work_free(&w);
    return rc;
}

// ---------------------------------------------------------------------------
// decoding

// Appends the piece, dropping one leading ' ' if lstrip (llama.cpp's lstrip = 1).
static int piece_append(const vv_vocab *v, int id, bool special, bool lstrip, vv_buf *out) {
    int t = v->type[id];
    const char *s = tok_text(v, id);
    size_t n = v->len[id];
    switch (t) {
    case VV_TOKEN_CONTROL:
    case VV_TOKEN_UNKNOWN:
    case VV_TOKEN_USER_DEFINED: // verbatim; CONTROL / UNKNOWN only when special
        if (t != VV_TOKEN_USER_DEFINED && !special) return VISVM_OK;
        if (lstrip && n && s[0] == ' ') s++, n--;
        return vv_buf_append(out, s, n);
    case VV_TOKEN_NORMAL: {
        size_t start = out->n;
        for (size_t i = 0; i < n;) {
            size_t j = i;
            while (j < n && !(j + SPACE_ESC_LEN <= n && memcmp(s + j, SPACE_ESC, SPACE_ESC_LEN) == 0)) j++;
            if (vv_buf_append(out, s + i, j - i)) return VISVM_ERR_NOMEM;
            if (j < n) {
                if (vv_buf_append(out, " ", 1)) return VISVM_ERR_NOMEM;
                j += SPACE_ESC_LEN;
            }
            i = j;
        }
        if (lstrip && out->n > start && out->v[start] == ' ') {
            memmove(out->v + start, out->v + start + 1, out->n - start - 1);
            out->v[--out->n] = 0;
        }
        return VISVM_OK;
    }
    case VV_TOKEN_BYTE: {
        char c = (char)v->byte[id];
        if (lstrip && c == ' ') return VISVM_OK;
        return vv_buf_append(out, &c, 1);
    }
    default: // UNUSED / UNDEFINED render as nothing, as in llama.cpp
        return VISVM_OK;
    }
}

int vv_token_to_piece(const vv_vocab *v, int id, bool special, vv_buf *out) {
    if (!v || !out) return VISVM_ERR_INVALID;
    if (!valid_id(v, id)) return VISVM_ERR_RANGE;
    return piece_append(v, id, special, false, out);
}

int vv_detokenize(const vv_vocab *v, const int32_t *ids, size_t n, bool special, bool remove_leading_space,
                  vv_buf *out) {
    if (!v || !out || (!ids && n)) return VISVM_ERR_INVALID;
    size_t n0 = out->n;
    for (size_t i = 0; i < n; i++) {
        if (!valid_id(v, ids[i])) {
            out->n = n0;
            if (out->v) out->v[n0] = 0;
            return VISVM_ERR_RANGE;
        }
    }
    // As llama.cpp: only the first token may lose its leading space, even if
    // it renders as nothing (a BOS therefore keeps the space of the next token).
    bool strip = remove_leading_space && v->add_space_prefix;
    for (size_t i = 0; i < n; i++) {
        int rc = piece_append(v, ids[i], special, strip && i == 0, out);
        if (rc) {
            out->n = n0;
            if (out->v) out->v[n0] = 0;
            return rc;
        }
    }
    return VISVM_OK;
}
