// test_tokenizer.c - SPM tokenizer: hand-made vocabularies (merge order,
// tie-breaks, byte fallback, special tokens, decoding, malformed metadata)
// and llama.cpp's golden vectors.
#include "base/base.h"
#include "format/gguf.h"
#include "tcheck.h"
#include "text/vocab.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SP "\xe2\x96\x81" // U+2581

// ---------------------------------------------------------------------------
// helpers

static bool ids_eq(const vv_ivec *a, const int32_t *b, size_t n) {
    return a->n == n && (n == 0 || memcmp(a->v, b, n * sizeof(int32_t)) == 0);
}

static void print_ids(const char *what, const int32_t *v, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", v[i]);
    fprintf(stderr, "\n");
}

// Tokenizes and compares with the expected ids; prints both on mismatch.
static bool tok_expect(const vv_vocab *v, const char *text, size_t len, bool add_special, bool parse_special,
                       const int32_t *want, size_t n_want, const char *label) {
    vv_ivec out = {0};
    vv_error e = {0};
    int rc = vv_tokenize(v, text, len, add_special, parse_special, &out, &e);
    bool ok = rc == VISVM_OK && ids_eq(&out, want, n_want);
    if (!ok) {
        fprintf(stderr, "tokenize mismatch (%s) rc=%d %s\n", label, rc, e.msg);
        print_ids("want", want, n_want);
        print_ids("got ", out.v, out.n);
    }
    vv_ivec_free(&out);
    return ok;
}
#define TOK_EXPECT(v, s, as, ps, ...)                                                                            \
    do {                                                                                                         \
        const int32_t want_[] = {__VA_ARGS__};                                                                   \
        CHECK(tok_expect(v, s, strlen(s), as, ps, want_, sizeof(want_) / sizeof(want_[0]), s));                   \
    } while (0)

// Decoded text of ids (malloc'd, NUL-terminated), NULL on error.
static char *detok(const vv_vocab *v, const int32_t *ids, size_t n, bool special, bool strip, size_t *len) {
    vv_buf b = {0};
    if (vv_detokenize(v, ids, n, special, strip, &b) != VISVM_OK) {
        vv_buf_free(&b);
        return NULL;
    }
    if (!b.v) b.v = calloc(1, 1);
    if (len) *len = b.n;
    return b.v;
}

// Byte-level vocabulary laid out like LLaMA's: 0 <unk>, 1 <s>, 2 </s>,
// 3..258 <0x00>..<0xFF>, then the given normal pieces with their scores.
typedef struct {
    const char *text;
    float score;
    int type;
} piece;

static vv_vocab *make_vocab(const piece *extra, int n_extra, bool with_bytes, bool add_space_prefix) {
    int n = 3 + (with_bytes ? 256 : 0) + n_extra;
    const char **texts = calloc((size_t)n, sizeof(*texts));
    float *scores = calloc((size_t)n, sizeof(*scores));
    int32_t *types = calloc((size_t)n, sizeof(*types));
    char(*bytes)[8] = calloc(256, 8);
    int k = 0;
    texts[k] = "<unk>", types[k++] = VV_TOKEN_UNKNOWN;
    texts[k] = "<s>", types[k++] = VV_TOKEN_CONTROL;
    texts[k] = "</s>", types[k++] = VV_TOKEN_CONTROL;
    if (with_bytes)
        for (int b = 0; b < 256; b++) {
            snprintf(bytes[b], 8, "<0x%02X>", b);
            texts[k] = bytes[b], types[k++] = VV_TOKEN_BYTE;
        }
    for (int i = 0; i < n_extra; i++) {
        texts[k] = extra[i].text;
        scores[k] = extra[i].score;
        types[k++] = extra[i].type ? extra[i].type : VV_TOKEN_NORMAL;
    }
    vv_vocab *v = NULL;
    vv_error e = {0};
    int rc = vv_vocab_create(n, texts, scores, types, 1, 2, 0, true, add_space_prefix, &v, &e);
    CHECKF(rc == VISVM_OK, "vv_vocab_create: %s", e.msg);
    free(texts);
    free(scores);
    free(types);
    free(bytes);
    return v;
}

// id of a piece in a make_vocab() vocabulary
#define X(i) (3 + 256 + (i))
#define B(c) (3 + (int)(uint8_t)(c))

// ---------------------------------------------------------------------------
// hand-made vocabularies

static void test_merges(void) {
    // 0 ▁  1 a  2 b  3 c  4 ab  5 bc  6 abc  7 ▁a
    const piece p[] = {{SP, -10, 0}, {"a", -1, 0}, {"b", -2, 0}, {"c", -3, 0},
                       {"ab", -5, 0}, {"bc", -4, 0}, {"abc", -6, 0}, {SP "a", -7, 0}};
    vv_vocab *v = make_vocab(p, 8, true, false);
    if (!v) return;
    // bc (-4) beats ab (-5); then the new pair (a, bc) = "abc" (-6) merges.
    TOK_EXPECT(v, "abc", false, false, X(6));
    TOK_EXPECT(v, "ab", false, false, X(4));
    TOK_EXPECT(v, "abab", false, false, X(4), X(4));
    TOK_EXPECT(v, "cab", false, false, X(3), X(4));
    TOK_EXPECT(v, "bcab", false, false, X(5), X(4));
    vv_vocab_free(v);

    // Highest score first: with "bc" above "ab", "abc" -> a + bc (no abc token).
    const piece q[] = {{"a", -1, 0}, {"b", -2, 0}, {"c", -3, 0}, {"ab", -5, 0}, {"bc", -4, 0}};
    v = make_vocab(q, 5, true, false);
    TOK_EXPECT(v, "abc", false, false, X(0), X(4));
    vv_vocab_free(v);

    // Equal scores: the leftmost pair wins.
    const piece t[] = {{"a", -1, 0}, {"b", -2, 0}, {"c", -3, 0}, {"ab", -5, 0}, {"bc", -5, 0}};
    v = make_vocab(t, 5, true, false);
    TOK_EXPECT(v, "abc", false, false, X(3), X(2));
    TOK_EXPECT(v, "abcabc", false, false, X(3), X(2), X(3), X(2));
    vv_vocab_free(v);

    // Ties among overlapping runs: "aaa" with aa -> (aa)(a), leftmost first.
    const piece r[] = {{"a", -1, 0}, {"aa", -2, 0}};
    v = make_vocab(r, 2, true, false);
    TOK_EXPECT(v, "aaa", false, false, X(1), X(0));
    TOK_EXPECT(v, "aaaaa", false, false, X(1), X(1), X(0));
    vv_vocab_free(v);
}

static void test_space_prefix(void) {
    // 0 ▁  1 a  2 ▁a  3 ▁▁  4 b
    const piece p[] = {{SP, -10, 0}, {"a", -1, 0}, {SP "a", -2, 0}, {SP SP, -3, 0}, {"b", -4, 0}};
    vv_vocab *v = make_vocab(p, 5, true, true);
    if (!v) return;
    TOK_EXPECT(v, "a", false, false, X(2));
    TOK_EXPECT(v, "a", true, false, 1, X(2));
    TOK_EXPECT(v, "a a", false, false, X(2), X(2));
    TOK_EXPECT(v, " a", false, false, X(0), X(2)); // ▁a (-2) beats ▁▁ (-3)
    TOK_EXPECT(v, "b", false, false, X(0), X(4));
    // whitespace only: prefix + space = ▁▁
    TOK_EXPECT(v, " ", false, false, X(3));
    TOK_EXPECT(v, "  ", false, false, X(3), X(0));
    // empty string: nothing, or only BOS
    {
        vv_ivec out = {0};
        CHECK(vv_tokenize(v, "", 0, false, true, &out, NULL) == VISVM_OK && out.n == 0);
        CHECK(vv_tokenize(v, NULL, 0, true, true, &out, NULL) == VISVM_OK && out.n == 1 && out.v[0] == 1);
        vv_ivec_free(&out);
    }
    vv_vocab_free(v);

    // Without the space prefix "a" is just "a".
    v = make_vocab(p, 5, true, false);
    TOK_EXPECT(v, "a", false, false, X(1));
    TOK_EXPECT(v, "a a", false, false, X(1), X(2));
    vv_vocab_free(v);
}

static void test_byte_fallback(void) {
    const piece p[] = {{SP, -10, 0}, {"a", -1, 0}};
    vv_vocab *v = make_vocab(p, 2, true, false);
    if (!v) return;
    // é (C3 A9) is one symbol, not a token -> its two bytes.
    TOK_EXPECT(v, "a\xc3\xa9" "a", false, false, X(1), B(0xC3), B(0xA9), X(1));
    // 🙂 F0 9F 99 82
    TOK_EXPECT(v, "\xf0\x9f\x99\x82", false, false, B(0xF0), B(0x9F), B(0x99), B(0x82));
    // Invalid UTF-8: a lead byte swallows the next bytes into one symbol
    // (as llama.cpp), so the 'a' after 0xFF 0xFE 0x80 comes out as a byte too.
    TOK_EXPECT(v, "\xff\xfe\x80" "aa", false, false, B(0xFF), B(0xFE), B(0x80), B('a'), X(1));
    // Lone continuation bytes and a truncated sequence at the end.
    TOK_EXPECT(v, "\x80\x81" "a\xe6\x97", false, false, B(0x80), B(0x81), X(1), B(0xE6), B(0x97));
    // NUL bytes inside the text are ordinary bytes.
    {
        const int32_t want[] = {X(1), B(0), X(1)};
        CHECK(tok_expect(v, "a\0a", 3, false, false, want, 3, "a\\0a"));
    }
    CHECK(vv_vocab_byte_token(v, 0x41) == B(0x41));
    vv_vocab_free(v);

    // No <0xXX> tokens: a one-byte text token is used, else <unk>.
    const char *texts[] = {"<unk>", "<s>", "</s>", "a", "\xc3", "b"};
    const int32_t types[] = {2, 3, 3, 1, 1, 1};
    vv_error e = {0};
    CHECK(vv_vocab_create(6, texts, NULL, types, 1, 2, 0, true, false, &v, &e) == VISVM_OK);
    if (v) {
        TOK_EXPECT(v, "a\xc3\xa9" "b", false, false, 3, 4, 0, 5);
        CHECK(vv_vocab_byte_token(v, 0xC3) == 4);
        CHECK(vv_vocab_byte_token(v, 0xA9) == 0);
        vv_vocab_free(v);
    }
    // ... and with neither: a clear error, output untouched.
    CHECK(vv_vocab_create(6, texts, NULL, types, 1, 2, -1, true, false, &v, &e) == VISVM_OK);
    if (v) {
        vv_ivec out = {0};
        vv_ivec_push(&out, 77);
        int rc = vv_tokenize(v, "a\xc3\xa9", 3, false, false, &out, &e);
        CHECK(rc == VISVM_ERR_NOT_FOUND);
        CHECKF(strstr(e.msg, "0xA9") != NULL, "message: %s", e.msg);
        CHECK(out.n == 1 && out.v[0] == 77);
        vv_ivec_free(&out);
        vv_vocab_free(v);
    }
}

static void test_special(void) {
    // 0 ▁  1 a  2 ▁a  3 <image> (user-defined)  4 <im (user-defined)  5 b  6 ▁b  7 <  8 >
    const piece p[] = {{SP, -10, 0}, {"a", -1, 0}, {SP "a", -2, 0}, {"<image>", 0, VV_TOKEN_USER_DEFINED},
                       {"<im", 0, VV_TOKEN_USER_DEFINED}, {"b", -3, 0}, {SP "b", -4, 0}, {"<", -5, 0}, {">", -6, 0}};
    vv_vocab *v = make_vocab(p, 9, true, true);
    if (!v) return;
    // Control tokens only with parse_special; the text after a special token
    // gets the space prefix again.
    TOK_EXPECT(v, "a<s>b", false, true, X(2), 1, X(6));
    TOK_EXPECT(v, "<s>a", true, true, 1, 1, X(2));
    TOK_EXPECT(v, "a</s>", false, true, X(2), 2);
    TOK_EXPECT(v, "a<s>b", false, false, X(2), X(7), B('s'), X(8), X(5));
    // <unk> is special too (UNKNOWN) with parse_special.
    TOK_EXPECT(v, "<unk>", false, true, 0);
    // User-defined tokens are matched even without parse_special, longest first.
    TOK_EXPECT(v, "<image>b", false, false, X(3), X(6));
    TOK_EXPECT(v, "a<imageb", false, false, X(2), X(4), X(2), B('g'), B('e'), X(5));
    TOK_EXPECT(v, "<image><image>", false, true, X(3), X(3));
    // Adjacent special tokens, text between them.
    TOK_EXPECT(v, "<s></s>a<s>", false, true, 1, 2, X(2), 1);
    // EOS when the vocabulary asks for it.
    vv_error e = {0};
    CHECK(vv_vocab_set_add_eos(v, true, &e) == VISVM_OK);
    TOK_EXPECT(v, "a", true, false, 1, X(2), 2);
    TOK_EXPECT(v, "a", false, false, X(2));
    CHECK(vv_vocab_set_pad(v, 5000, &e) == VISVM_ERR_RANGE);
    CHECK(vv_vocab_set_pad(v, 0, &e) == VISVM_OK && vv_vocab_pad(v) == 0);
    vv_vocab_free(v);
}

static void test_decode(void) {
    const piece p[] = {{SP, -10, 0}, {"a", -1, 0}, {SP "a", -2, 0}, {"<image>", 0, VV_TOKEN_USER_DEFINED},
                       {SP SP, -3, 0}, {"x", 0, VV_TOKEN_UNUSED}, {"b" SP "c", -4, 0}};
    vv_vocab *v = make_vocab(p, 7, true, true);
    if (!v) return;
    vv_buf b = {0};
    CHECK(vv_token_to_piece(v, X(2), false, &b) == VISVM_OK && b.n == 2 && memcmp(b.v, " a", 2) == 0);
    b.n = 0;
    CHECK(vv_token_to_piece(v, X(6), false, &b) == VISVM_OK && b.n == 3 && memcmp(b.v, "b c", 3) == 0);
    b.n = 0;
    CHECK(vv_token_to_piece(v, 1, false, &b) == VISVM_OK && b.n == 0);       // control, not special
    CHECK(vv_token_to_piece(v, 1, true, &b) == VISVM_OK && b.n == 3 && memcmp(b.v, "<s>", 3) == 0);
    b.n = 0;
    CHECK(vv_token_to_piece(v, 0, false, &b) == VISVM_OK && b.n == 0);       // unknown, not special
    CHECK(vv_token_to_piece(v, 0, true, &b) == VISVM_OK && b.n == 5 && memcmp(b.v, "<unk>", 5) == 0);
    b.n = 0;
    CHECK(vv_token_to_piece(v, X(3), false, &b) == VISVM_OK && b.n == 7);    // user-defined: always
    b.n = 0;
    CHECK(vv_token_to_piece(v, B(0x0A), false, &b) == VISVM_OK && b.n == 1 && b.v[0] == '\n');
    b.n = 0;
    CHECK(vv_token_to_piece(v, X(5), true, &b) == VISVM_OK && b.n == 0);     // unused: nothing
    CHECK(vv_token_to_piece(v, -1, true, &b) == VISVM_ERR_RANGE);
    CHECK(vv_token_to_piece(v, vv_vocab_n(v), true, &b) == VISVM_ERR_RANGE);
    vv_buf_free(&b);

    // Leading space: removed from the first token only when asked.
    const int32_t ids[] = {X(2), X(2)};
    char *s = detok(v, ids, 2, false, true, NULL);
    CHECK(s && strcmp(s, "a a") == 0);
    free(s);
    s = detok(v, ids, 2, false, false, NULL);
    CHECK(s && strcmp(s, " a a") == 0);
    free(s);
    // A leading BOS keeps the space of the next token (llama.cpp strips only token 0).
    const int32_t ids2[] = {1, X(2)};
    s = detok(v, ids2, 2, false, true, NULL);
    CHECK(s && strcmp(s, " a") == 0);
    free(s);
    s = detok(v, ids2, 2, true, true, NULL);
    CHECK(s && strcmp(s, "<s> a") == 0);
    free(s);
    // A byte token that is a space is stripped as well.
    const int32_t ids3[] = {B(' '), X(1)};
    s = detok(v, ids3, 2, false, true, NULL);
    CHECK(s && strcmp(s, "a") == 0);
    free(s);
    // Bad id: error, output unchanged.
    vv_buf o = {0};
    vv_buf_append(&o, "keep", 4);
    const int32_t bad[] = {X(1), 99999};
    CHECK(vv_detokenize(v, bad, 2, false, true, &o) == VISVM_ERR_RANGE && o.n == 4 && strcmp(o.v, "keep") == 0);
    vv_buf_free(&o);
    vv_vocab_free(v);
}

// Reference SPM: repeatedly merge the best adjacent pair (highest score,
// leftmost) by scanning; O(n^2) but obviously right.
static void naive_spm(const vv_vocab *v, const char *s, vv_ivec *out) {
    size_t n = strlen(s);
    char *buf = malloc(n * 3 + 4);
    size_t nb = 0;
    memcpy(buf, SP, 3), nb = 3; // space prefix
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ') memcpy(buf + nb, SP, 3), nb += 3;
        else buf[nb++] = s[i];
    }
    // symbols are ASCII or the 3-byte ▁
    size_t *st = malloc(nb * sizeof(size_t)), *ln = malloc(nb * sizeof(size_t));
    size_t ns = 0;
    for (size_t o = 0; o < nb;) {
        size_t l = ((uint8_t)buf[o] >= 0xE0) ? 3 : 1;
        st[ns] = o, ln[ns++] = l, o += l;
    }
    for (;;) {
        int best = -1;
        float bs = 0;
        for (size_t i = 0; i + 1 < ns; i++) {
            int id = vv_vocab_find(v, buf + st[i], ln[i] + ln[i + 1]);
            if (id < 0) continue;
            float sc = vv_vocab_score(v, id);
            if (best < 0 || sc > bs) best = (int)i, bs = sc;
        }
        if (best < 0) break;
        ln[best] += ln[best + 1];
        memmove(st + best + 1, st + best + 2, (ns - best - 2) * sizeof(size_t));
        memmove(ln + best + 1, ln + best + 2, (ns - best - 2) * sizeof(size_t));
        ns--;
    }
    for (size_t i = 0; i < ns; i++) {
        int id = vv_vocab_find(v, buf + st[i], ln[i]);
        if (id >= 0) vv_ivec_push(out, id);
        else
            for (size_t j = 0; j < ln[i]; j++) vv_ivec_push(out, vv_vocab_byte_token(v, (uint8_t)buf[st[i] + j]));
    }
    free(buf), free(st), free(ln);
}

static void test_random_vs_naive(void) {
    vv_rng rng;
    vv_rng_seed(&rng, 1234);
    const char *alpha[] = {"a", "b", "c", SP};
    int mismatches = 0, roundtrip_bad = 0;
    for (int trial = 0; trial < 40; trial++) {
        // random vocabulary: all 4 symbols plus random strings of 2..5 symbols,
        // scores from a small set so that ties are common
        piece p[64];
        char store[64][32];
        int np = 0;
        for (int i = 0; i < 4; i++) p[np].text = alpha[i], p[np].score = -100.0f, p[np].type = 0, np++;
        for (int i = 0; i < 40; i++) {
            int len = 2 + (int)vv_rng_below(&rng, 4);
            store[np][0] = 0;
            for (int j = 0; j < len; j++) strcat(store[np], alpha[vv_rng_below(&rng, 4)]);
            bool dup = false;
            for (int k = 0; k < np; k++) dup |= strcmp(p[k].text, store[np]) == 0;
            if (dup) continue;
            p[np].text = store[np];
            p[np].score = -(float)vv_rng_below(&rng, 5);
            p[np].type = 0;
            np++;
        }
        vv_vocab *v = make_vocab(p, np, true, true);
        if (!v) return;
        for (int k = 0; k < 25; k++) {
            char s[80];
            int len = (int)vv_rng_below(&rng, 60);
            for (int j = 0; j < len; j++) s[j] = "abc  d"[vv_rng_below(&rng, 6)];
            s[len] = 0;
            vv_ivec got = {0}, want = {0};
            CHECK(vv_tokenize(v, s, (size_t)len, false, false, &got, NULL) == VISVM_OK);
            if (len > 0) naive_spm(v, s, &want);
            if (!ids_eq(&got, want.v, want.n)) {
                if (mismatches++ < 3) {
                    fprintf(stderr, "naive mismatch for '%s'\n", s);
                    print_ids("naive", want.v, want.n);
                    print_ids("got  ", got.v, got.n);
                }
            }
            char *d = detok(v, got.v, got.n, false, true, NULL);
            if (!d || strcmp(d, s) != 0) roundtrip_bad++;
            free(d);
            vv_ivec_free(&got), vv_ivec_free(&want);
        }
        vv_vocab_free(v);
    }
    CHECKF(mismatches == 0, "%d random texts differ from the naive merger", mismatches);
    CHECKF(roundtrip_bad == 0, "%d random texts do not round-trip", roundtrip_bad);
}

static void test_create_errors(void) {
    const char *texts[] = {"<unk>", "<s>", "a", "a"};
    const int32_t types[] = {2, 3, 1, 9};
    vv_vocab *v = (vv_vocab *)1;
    vv_error e = {0};
    CHECK(vv_vocab_create(0, texts, NULL, NULL, -1, -1, -1, false, true, &v, &e) == VISVM_ERR_INVALID && !v);
    CHECK(vv_vocab_create(4, texts, NULL, NULL, 0, -1, -1, false, true, &v, &e) == VISVM_ERR_FORMAT && !v);
    CHECKF(strstr(e.msg, "duplicate") != NULL, "%s", e.msg);
    CHECK(vv_vocab_create(3, texts, NULL, NULL, 3, -1, -1, false, true, &v, &e) == VISVM_ERR_RANGE);
    CHECK(vv_vocab_create(3, texts, NULL, NULL, -1, -1, -1, true, true, &v, &e) == VISVM_ERR_INVALID);
    CHECK(vv_vocab_create(4, texts, NULL, types, 1, -1, -1, true, true, &v, &e) == VISVM_ERR_INVALID);
    CHECKF(strstr(e.msg, "type 9") != NULL, "%s", e.msg);
    // Empty texts become "[EMPTY_i]" (as llama.cpp) instead of matching everywhere.
    const char *t2[] = {"<unk>", "", "a"};
    const int32_t ty2[] = {2, 3, 1};
    CHECK(vv_vocab_create(3, t2, NULL, ty2, -1, -1, 0, false, false, &v, &e) == VISVM_OK);
    if (v) {
        CHECK(strcmp(vv_vocab_text(v, 1), "[EMPTY_1]") == 0);
        TOK_EXPECT(v, "aa", false, true, 2, 2);
        vv_vocab_free(v);
    }
    vv_vocab_free(NULL);
    CHECK(vv_vocab_text(NULL, 0) == NULL && vv_vocab_n(NULL) == 0 && vv_vocab_find(NULL, "a", 1) == -1);
    vv_ivec out = {0};
    CHECK(vv_tokenize(NULL, "a", 1, false, false, &out, &e) == VISVM_ERR_INVALID);
}

static void test_performance(void) {
    // 32000 tokens: "t<i>" strings plus a chain of "a" runs for the long text.
    int n = 32000;
    char **texts = malloc((size_t)n * sizeof(*texts));
    float *scores = malloc((size_t)n * sizeof(*scores));
    for (int i = 0; i < n; i++) {
        texts[i] = malloc(16);
        snprintf(texts[i], 16, "t%d", i);
        scores[i] = -(float)i;
    }
    strcpy(texts[0], "<unk>");
    strcpy(texts[1], "a");
    strcpy(texts[2], "aa");
    strcpy(texts[3], "aaaa");
    strcpy(texts[4], SP);
    double t0 = vv_time_s();
    vv_vocab *v = NULL;
    vv_error e = {0};
    int rc = vv_vocab_create(n, (const char *const *)texts, scores, NULL, -1, -1, 0, false, true, &v, &e);
    double t_create = vv_time_s() - t0;
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    printf("create 32000-token vocabulary: %.2f ms\n", t_create * 1e3);
    CHECKF(t_create < 0.5, "vocabulary creation took %.1f ms", t_create * 1e3); // generous for sanitizers
    if (v) {
        for (int i = 0; i < n; i += 997) CHECK(vv_vocab_find(v, texts[i], strlen(texts[i])) == i);
        CHECK(vv_vocab_find(v, "t32000", 6) == -1);
        // 400k characters: an O(n^2) merger would take minutes.
        size_t len = 400000;
        char *s = malloc(len);
        memset(s, 'a', len);
        vv_ivec out = {0};
        t0 = vv_time_s();
        rc = vv_tokenize(v, s, len, false, false, &out, &e);
        double t_tok = vv_time_s() - t0;
        printf("tokenize %zu chars: %.1f ms, %zu tokens\n", len, t_tok * 1e3, out.n);
        CHECK(rc == VISVM_OK);
        // ▁ then 100000 x "aaaa"
        CHECK(out.n == 1 + len / 4 && out.v[0] == 4 && out.v[1] == 3 && out.v[out.n - 1] == 3);
        CHECKF(t_tok < 3.0, "tokenizing took %.1f s", t_tok);
        vv_ivec_free(&out);
        free(s);
        vv_vocab_free(v);
    }
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(scores);
}

// ---------------------------------------------------------------------------
// malformed GGUF metadata

typedef struct {
    bool no_model, no_tokens, tokens_not_str;
    const char *model;
    int n_scores, n_types;  // -1: same as tokens, -2: absent
    int bad_type_at;        // index given type 42, or -1
    int64_t bos;            // -1: absent
    int dup_at;             // token that duplicates token 3, or -1
} meta_spec;

static int load_spec(const meta_spec *m, vv_vocab **out, vv_error *e) {
    const char *toks[] = {"<unk>", "<s>", "</s>", "a", SP, SP "a", "b"};
    const int nt = 7;
    float scores[16] = {0, 0, 0, -1, -2, -3, -4};
    int32_t types[16] = {2, 3, 3, 1, 1, 1, 1};
    const char *tk[7];
    memcpy(tk, toks, sizeof(tk));
    if (m->dup_at >= 0) tk[m->dup_at] = toks[3];
    if (m->bad_type_at >= 0) types[m->bad_type_at] = 42;
    vv_gguf_writer *w = vv_gguf_writer_create();
    if (!w) return VISVM_ERR_NOMEM;
    vv_gguf_set_str(w, "general.architecture", "llama");
    if (!m->no_model) vv_gguf_set_str(w, "tokenizer.ggml.model", m->model ? m->model : "llama");
    if (!m->no_tokens) {
        if (m->tokens_not_str) vv_gguf_set_arr(w, "tokenizer.ggml.tokens", VV_GGUF_INT32, types, nt);
        else vv_gguf_set_arr_str(w, "tokenizer.ggml.tokens", tk, nt);
    }
    if (m->n_scores != -2)
        vv_gguf_set_arr(w, "tokenizer.ggml.scores", VV_GGUF_FLOAT32, scores, m->n_scores < 0 ? nt : m->n_scores);
    if (m->n_types != -2)
        vv_gguf_set_arr(w, "tokenizer.ggml.token_type", VV_GGUF_INT32, types, m->n_types < 0 ? nt : m->n_types);
    if (m->bos >= 0) vv_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", (uint32_t)m->bos);
    void *buf = NULL;
    size_t size = 0;
    int rc = vv_gguf_writer_write_mem(w, &buf, &size, e);
    vv_gguf_writer_free(w);
    if (rc) return rc;
    vv_gguf *g = NULL;
    rc = vv_gguf_open_mem(buf, size, &g, e);
    if (!rc) rc = vv_vocab_load(g, out, e);
    vv_gguf_close(g);
    free(buf);
    return rc;
}

static void test_malformed(void) {
    const meta_spec ok = {.n_scores = -1, .n_types = -1, .bad_type_at = -1, .bos = 1, .dup_at = -1};
    vv_vocab *v = NULL;
    vv_error e = {0};
    int rc = load_spec(&ok, &v, &e);
    CHECKF(rc == VISVM_OK, "valid metadata: %s", e.msg);
    if (v) {
        CHECK(vv_vocab_n(v) == 7 && vv_vocab_bos(v) == 1 && vv_vocab_eos(v) == 2 && vv_vocab_unk(v) == 0);
        CHECK(vv_vocab_add_bos(v) && !vv_vocab_add_eos(v) && vv_vocab_add_space_prefix(v));
        CHECK(vv_vocab_type(v, 1) == VV_TOKEN_CONTROL && vv_vocab_score(v, 5) == -3.0f);
        TOK_EXPECT(v, "a a", true, false, 1, 5, 5);
        vv_vocab_free(v);
        v = NULL;
    }
    // scores / token_type absent: zeros and NORMAL
    meta_spec m = ok;
    m.n_scores = -2, m.n_types = -2;
    rc = load_spec(&m, &v, &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    if (v) CHECK(vv_vocab_type(v, 1) == VV_TOKEN_NORMAL && vv_vocab_score(v, 5) == 0.0f);
    vv_vocab_free(v);
    v = NULL;

    struct {
        meta_spec m;
        int code;
        const char *needle;
    } bad[] = {
        {ok, VISVM_ERR_FORMAT, "scores"},
        {ok, VISVM_ERR_FORMAT, "scores"},
        {ok, VISVM_ERR_FORMAT, "token_type"},
        {ok, VISVM_ERR_FORMAT, "token_type"},
        {ok, VISVM_ERR_RANGE, "bos_token_id"},
        {ok, VISVM_ERR_NOT_FOUND, "tokenizer.ggml.tokens"},
        {ok, VISVM_ERR_FORMAT, "tokenizer.ggml.tokens"},
        {ok, VISVM_ERR_NOT_FOUND, "tokenizer.ggml.model"},
        {ok, VISVM_ERR_UNSUPPORTED, "gpt2"},
        {ok, VISVM_ERR_FORMAT, "duplicate"},
    };
    bad[0].m.n_scores = 5;
    bad[1].m.n_scores = 9;
    bad[2].m.n_types = 6;
    bad[3].m.bad_type_at = 4;
    bad[4].m.bos = 7;
    bad[5].m.no_tokens = true;
    bad[6].m.tokens_not_str = true;
    bad[7].m.no_model = true;
    bad[8].m.model = "gpt2";
    bad[9].m.dup_at = 6;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        v = (vv_vocab *)1;
        vv_err_clear(&e);
        rc = load_spec(&bad[i].m, &v, &e);
        CHECKF(rc == bad[i].code && v == NULL, "case %zu: rc %d (want %d): %s", i, rc, bad[i].code, e.msg);
        CHECKF(strstr(e.msg, bad[i].needle) != NULL, "case %zu: message '%s' lacks '%s'", i, e.msg, bad[i].needle);
        if (rc == VISVM_OK && v && v != (vv_vocab *)1) vv_vocab_free(v);
    }
    CHECK(vv_vocab_load(NULL, &v, &e) == VISVM_ERR_INVALID);
}

// ---------------------------------------------------------------------------
// golden vectors

static vv_vocab *load_golden_vocab(const char *dir, const char *rel) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    vv_gguf *g = NULL;
    vv_vocab *v = NULL;
    vv_error e = {0};
    double t0 = vv_time_s();
    int rc = vv_gguf_open(path, &g, &e);
    if (!rc) rc = vv_vocab_load(g, &v, &e);
    double dt = vv_time_s() - t0;
    vv_gguf_close(g);
    CHECKF(rc == VISVM_OK, "%s: %s", rel, e.msg);
    if (v) printf("load %s (%d tokens): %.1f ms\n", rel, vv_vocab_n(v), dt * 1e3);
    return v;
}

static void test_golden_vocab_file(const char *dir) {
    vv_vocab *v = load_golden_vocab(dir, "vocab/ggml-vocab-llama-spm.gguf");
    if (!v) return;
    CHECK(vv_vocab_n(v) == 32000 && vv_vocab_bos(v) == 1 && vv_vocab_eos(v) == 2 && vv_vocab_unk(v) == 0);
    CHECK(vv_vocab_add_space_prefix(v) && vv_vocab_add_bos(v));
    // Load time on its own (the GGUF parse is excluded): well under 100 ms.
    char path[4096];
    snprintf(path, sizeof(path), "%s/vocab/ggml-vocab-llama-spm.gguf", dir);
    vv_gguf *g = NULL;
    if (vv_gguf_open(path, &g, NULL) == VISVM_OK) {
        vv_vocab *v2 = NULL;
        double t0 = vv_time_s();
        CHECK(vv_vocab_load(g, &v2, NULL) == VISVM_OK);
        double dt = vv_time_s() - t0;
        printf("vv_vocab_load of the 32000-token vocabulary: %.1f ms\n", dt * 1e3);
        CHECKF(dt < 0.5, "vv_vocab_load took %.1f ms", dt * 1e3); // < 100 ms unsanitized; slack for ASan
        vv_vocab_free(v2);
        vv_gguf_close(g);
    }

    char *inp = NULL, *outp = NULL;
    size_t ni = 0, no = 0;
    snprintf(path, sizeof(path), "%s/vocab/ggml-vocab-llama-spm.gguf.inp", dir);
    inp = tc_read(path, &ni);
    snprintf(path, sizeof(path), "%s/vocab/ggml-vocab-llama-spm.gguf.out", dir);
    outp = tc_read(path, &no);
    CHECK(inp && outp);
    if (inp && outp) {
        static const char sep[] = "\n__ggml_vocab_test__\n";
        const size_t nsep = sizeof(sep) - 1;
        int n_cases = 0, n_pass = 0, n_rt = 0;
        size_t ip = 0, op = 0;
        while (ip < ni) {
            const char *m = memmem(inp + ip, ni - ip, sep, nsep);
            if (!m) break;
            size_t tl = (size_t)(m - (inp + ip));
            // expected ids: one line
            const char *nl = memchr(outp + op, '\n', no - op);
            size_t ll = nl ? (size_t)(nl - (outp + op)) : no - op;
            vv_ivec want = {0};
            char *line = vv_strndup(outp + op, ll);
            for (char *q = line, *end; *q; q = end) {
                long x = strtol(q, &end, 10);
                if (end == q) break;
                vv_ivec_push(&want, (int32_t)x);
            }
            free(line);
            char label[64];
            snprintf(label, sizeof(label), "vocab case %d", n_cases);
            bool ok = tok_expect(v, inp + ip, tl, false, false, want.v, want.n, label);
            n_pass += ok;
            // round trip (space prefix removed)
            size_t dl = 0;
            char *d = detok(v, want.v, want.n, false, true, &dl);
            if (d && dl == tl && memcmp(d, inp + ip, tl) == 0) n_rt++;
            else fprintf(stderr, "round trip failed for vocab case %d\n", n_cases);
            free(d);
            vv_ivec_free(&want);
            n_cases++;
            ip += tl + nsep;
            op += ll + (nl ? 1 : 0);
        }
        printf("llama-spm vocab test: %d/%d cases pass, %d round-trip\n", n_pass, n_cases, n_rt);
        CHECKF(n_cases == 46, "found %d cases", n_cases);
        CHECK(n_pass == n_cases);
        CHECK(n_rt == n_cases);
    }
    free(inp);
    free(outp);
    vv_vocab_free(v);
}

static int32_t *read_i32(const char *dir, const char *rel, size_t *n) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    size_t size = 0;
    int32_t *p = tc_read(path, &size);
    CHECKF(p != NULL, "cannot read %s", path);
    *n = size / sizeof(int32_t);
    return p;
}

// Tokenizes a text file as llama.cpp (BOS, parse_special) and checks ids + round trip.
static void check_prompt(const vv_vocab *v, const char *dir, const char *txt, const char *ids_rel) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", dir, txt);
    size_t tl = 0, n = 0;
    char *text = tc_read(path, &tl);
    int32_t *want = read_i32(dir, ids_rel, &n);
    CHECKF(text != NULL, "cannot read %s", path);
    if (text && want) {
        CHECK(tok_expect(v, text, tl, true, true, want, n, txt));
        CHECK(n > 0 && want[0] == vv_vocab_bos(v));
        // without BOS: the same minus the first element
        CHECK(tok_expect(v, text, tl, false, true, want + 1, n - 1, txt));
        size_t dl = 0;
        char *d = detok(v, want + 1, n - 1, false, true, &dl);
        CHECKF(d && dl == tl && memcmp(d, text, tl) == 0, "round trip of %s: '%s'", txt, d ? d : "(null)");
        free(d);
        // with the BOS rendered: "<s>" then the text with its prefix space
        d = detok(v, want, n, true, true, &dl);
        CHECKF(d && dl == tl + 4 && memcmp(d, "<s> ", 4) == 0 && memcmp(d + 4, text, tl) == 0, "%s with BOS", txt);
        free(d);
    }
    free(text);
    free(want);
}

static void test_golden_prompts(const char *dir) {
    vv_vocab *v = load_golden_vocab(dir, "models/tiny-llama-f16.gguf");
    if (!v) return;
    CHECK(vv_vocab_n(v) == 457);
    for (int i = 0; i < 4; i++) {
        char txt[64], ids[64];
        snprintf(txt, sizeof(txt), "ref/tokenize/prompt%d.txt", i);
        snprintf(ids, sizeof(ids), "ref/tokenize/prompt%d.tokens.i32", i);
        check_prompt(v, dir, txt, ids);
    }
    check_prompt(v, dir, "ref/text/prompt.txt", "ref/text/prompt.tokens.i32");

    // LLaVA prompt: split at the first <image> as llama-llava-cli does.
    char path[4096];
    snprintf(path, sizeof(path), "%s/ref/llava/prompt.txt", dir);
    size_t pl = 0;
    char *prompt = tc_read(path, &pl);
    CHECK(prompt != NULL);
    if (prompt) {
        const char *img = memmem(prompt, pl, "<image>", 7);
        CHECK(img != NULL);
        if (img) {
            size_t np = (size_t)(img - prompt);
            const char *post = img + 7;
            size_t npost = pl - np - 7;
            const int32_t pre_want[] = {1, 335, 402};
            CHECK(tok_expect(v, prompt, np, true, true, pre_want, 3, "llava pre"));
            const int32_t post_want[] = {402, 13, 445, 299, 269, 337, 300, 406, 278, 382, 311, 308, 437, 334};
            CHECK(tok_expect(v, post, npost, false, true, post_want, 14, "llava post"));
            const char *runs[] = {"llava15.png", "llava15.jpg", "llava16.png", "llava16.jpg"};
            for (int r = 0; r < 4; r++) {
                char rel[128];
                size_t n = 0;
                snprintf(rel, sizeof(rel), "ref/llava/%s.tokens_pre.i32", runs[r]);
                int32_t *t = read_i32(dir, rel, &n);
                if (t) CHECK(tok_expect(v, prompt, np, true, true, t, n, rel));
                free(t);
                snprintf(rel, sizeof(rel), "ref/llava/%s.tokens_post.i32", runs[r]);
                t = read_i32(dir, rel, &n);
                if (t) CHECK(tok_expect(v, post, npost, false, true, t, n, rel));
                free(t);
            }
            // decoding the post tokens gives " \n..." : the prefix space is real text here
            size_t dl = 0;
            char *d = detok(v, post_want, 14, false, true, &dl);
            CHECKF(d && dl == npost && memcmp(d, post, npost) == 0, "llava post decode '%s'", d ? d : "(null)");
            free(d);
        }
    }
    free(prompt);
    vv_vocab_free(v);
}

int main(void) {
    test_merges();
    test_space_prefix();
    test_byte_fallback();
    test_special();
    test_decode();
    test_random_vs_naive();
    test_create_errors();
    test_performance();
    test_malformed();

    const char *dir = tc_golden_dir();
    if (dir) {
        test_golden_vocab_file(dir);
        test_golden_prompts(dir);
    }
    int rc = tc_result("test_tokenizer");
    if (rc == 0 && !dir) return TC_SKIP;
    return rc;
}
