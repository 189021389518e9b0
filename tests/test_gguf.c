// test_gguf.c - GGUF reader/writer: round trips of every value type and
// tensor layout, the golden model files (README §3/§4), copy + rewrite,
// hand-built corrupt files (one per reader check), every truncation of a
// small file, and a deterministic mutation fuzz (run under ASan/UBSan).
#include "format/gguf.h"
#include "tcheck.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
// Helpers

// Opens an exact-size heap copy (so ASan sees any over-read) and expects an
// error with the given code (0: any error) whose message contains substr.
static void expect_fail_line(int line, const char *what, const void *data, size_t size, int code, const char *substr) {
    void *copy = malloc(size ? size : 1);
    if (size) memcpy(copy, data, size);
    vv_gguf *g = (vv_gguf *)&g; // must be reset to NULL
    vv_error e = {0};
    int rc = vv_gguf_open_mem(copy, size, &g, &e);
    CHECKF(rc != VISVM_OK, "line %d %s: accepted", line, what);
    if (code) CHECKF(rc == code, "line %d %s: rc %d, expected %d (%s)", line, what, rc, code, e.msg);
    CHECKF(g == NULL, "line %d %s: handle not NULL on error", line, what);
    CHECKF(e.msg[0] && strstr(e.msg, substr), "line %d %s: message '%s' lacks '%s'", line, what, e.msg, substr);
    if (rc == VISVM_OK) vv_gguf_close(g);
    free(copy);
}
#define EXPECT_FAIL(what, b, code, substr) expect_fail_line(__LINE__, what, (b)->v, (b)->n, code, substr)

static vv_gguf *open_ok(const void *data, size_t size, const char *what) {
    vv_gguf *g = NULL;
    vv_error e = {0};
    int rc = vv_gguf_open_mem(data, size, &g, &e);
    CHECKF(rc == VISVM_OK && g, "%s: %s", what, e.msg);
    return rc == VISVM_OK ? g : NULL;
}

// Raw GGUF assembly for corrupt files.
static void b_raw(vv_buf *b, const void *p, size_t n) { CHECK(vv_buf_append(b, p, n) == VISVM_OK); }
static void b_u8(vv_buf *b, uint8_t v) { b_raw(b, &v, 1); }
static void b_u32(vv_buf *b, uint32_t v) { b_raw(b, &v, 4); }
static void b_u64(vv_buf *b, uint64_t v) { b_raw(b, &v, 8); }
static void b_str(vv_buf *b, const char *s) {
    b_u64(b, strlen(s));
    b_raw(b, s, strlen(s));
}
static void b_hdr(vv_buf *b, uint32_t ver, uint64_t n_t, uint64_t n_kv) {
    b->n = 0;
    b_raw(b, "GGUF", 4);
    b_u32(b, ver);
    b_u64(b, n_t);
    b_u64(b, n_kv);
}
static void b_kv_u32(vv_buf *b, const char *key, uint32_t v) {
    b_str(b, key);
    b_u32(b, VV_GGUF_UINT32);
    b_u32(b, v);
}
static void b_tinfo(vv_buf *b, const char *name, uint32_t n_dims, const uint64_t *ne, uint32_t type, uint64_t off) {
    b_str(b, name);
    b_u32(b, n_dims);
    for (uint32_t i = 0; i < n_dims; i++) b_u64(b, ne[i]);
    b_u32(b, type);
    b_u64(b, off);
}
static void b_pad(vv_buf *b, size_t a) {
    while (b->n % a) b_u8(b, 0);
}
static void b_zeros(vv_buf *b, size_t n) {
    for (size_t i = 0; i < n; i++) b_u8(b, 0);
}

// ---------------------------------------------------------------------------
// Round trip of every value type and several tensors

#define N_Q8 (64 * 2 * 3)
static float t_f32[5] = {1.5f, -2.25f, 0.0f, 1e30f, -7.0f};
static uint16_t t_f16[4 * 3];
static uint8_t t_q8[(N_Q8 / 32) * 34];
static float t_4d[2 * 3 * 4 * 5];

static const uint8_t a_u8[] = {0, 1, 255};
static const int8_t a_i8[] = {-128, 0, 127};
static const uint16_t a_u16[] = {0, 65535};
static const int16_t a_i16[] = {-32768, 32767, 5};
static const uint32_t a_u32[] = {4000000000u, 1, 2, 3};
static const int32_t a_i32[] = {-2147483647 - 1, 2147483647};
static const uint64_t a_u64[] = {UINT64_MAX, 42};
static const int64_t a_i64[] = {INT64_MIN, INT64_MAX, -1};
static const float a_f32[] = {0.48145466f, -1e-20f, 3.0f};
static const double a_f64[] = {1e300, -0.1};
static const uint8_t a_bool[] = {1, 0, 1};
static const char *const a_str[] = {"alpha", "", "ccc \xe2\x96\x81 utf8"};

static void fill_tensor_data(void) {
    vv_rng r;
    vv_rng_seed(&r, 7);
    for (size_t i = 0; i < sizeof(t_f16) / 2; i++) t_f16[i] = vv_fp32_to_fp16(vv_rng_normal(&r));
    for (size_t i = 0; i < sizeof(t_q8); i++) t_q8[i] = (uint8_t)vv_rng_u64(&r);
    for (size_t i = 0; i < sizeof(t_4d) / 4; i++) t_4d[i] = (float)i * 0.5f;
}

static void build_all_types(vv_gguf_writer *w) {
    CHECK(vv_gguf_set_str(w, "general.architecture", "test") == 0);
    CHECK(vv_gguf_set_u8(w, "t.u8", 200) == 0);
    CHECK(vv_gguf_set_i8(w, "t.i8", -100) == 0);
    CHECK(vv_gguf_set_u16(w, "t.u16", 60000) == 0);
    CHECK(vv_gguf_set_i16(w, "t.i16", -30000) == 0);
    CHECK(vv_gguf_set_u32(w, "t.u32", 4000000000u) == 0);
    CHECK(vv_gguf_set_i32(w, "t.i32", -2000000000) == 0);
    CHECK(vv_gguf_set_u64(w, "t.u64", ((uint64_t)1 << 63) + 5) == 0);
    CHECK(vv_gguf_set_i64(w, "t.i64", -((int64_t)1 << 62) - 3) == 0);
    CHECK(vv_gguf_set_f32(w, "t.f32", 3.25f) == 0);
    CHECK(vv_gguf_set_f64(w, "t.f64", -1e300) == 0);
    CHECK(vv_gguf_set_f64(w, "t.f64small", 0.125) == 0);
    CHECK(vv_gguf_set_bool(w, "t.true", true) == 0);
    CHECK(vv_gguf_set_bool(w, "t.false", false) == 0);
    CHECK(vv_gguf_set_str(w, "t.str", "hello w\xc3\xb6rld") == 0);
    CHECK(vv_gguf_set_str(w, "t.empty_str", "") == 0);
    CHECK(vv_gguf_set_arr(w, "a.u8", VV_GGUF_UINT8, a_u8, 3) == 0);
    CHECK(vv_gguf_set_arr(w, "a.i8", VV_GGUF_INT8, a_i8, 3) == 0);
    CHECK(vv_gguf_set_arr(w, "a.u16", VV_GGUF_UINT16, a_u16, 2) == 0);
    CHECK(vv_gguf_set_arr(w, "a.i16", VV_GGUF_INT16, a_i16, 3) == 0);
    CHECK(vv_gguf_set_arr(w, "a.u32", VV_GGUF_UINT32, a_u32, 4) == 0);
    CHECK(vv_gguf_set_arr(w, "a.i32", VV_GGUF_INT32, a_i32, 2) == 0);
    CHECK(vv_gguf_set_arr(w, "a.u64", VV_GGUF_UINT64, a_u64, 2) == 0);
    CHECK(vv_gguf_set_arr(w, "a.i64", VV_GGUF_INT64, a_i64, 3) == 0);
    CHECK(vv_gguf_set_arr(w, "a.f32", VV_GGUF_FLOAT32, a_f32, 3) == 0);
    CHECK(vv_gguf_set_arr(w, "a.f64", VV_GGUF_FLOAT64, a_f64, 2) == 0);
    CHECK(vv_gguf_set_arr(w, "a.bool", VV_GGUF_BOOL, a_bool, 3) == 0);
    CHECK(vv_gguf_set_arr_str(w, "a.str", a_str, 3) == 0);
    CHECK(vv_gguf_set_arr(w, "a.empty_i32", VV_GGUF_INT32, NULL, 0) == 0);
    CHECK(vv_gguf_set_arr_str(w, "a.empty_str", NULL, 0) == 0);
    // replacing a key keeps its position and takes the new type
    CHECK(vv_gguf_set_u32(w, "t.replaced", 1) == 0);
    CHECK(vv_gguf_set_str(w, "t.replaced", "second") == 0);

    int64_t ne1[1] = {5}, ne2[2] = {4, 3}, ne3[3] = {64, 2, 3}, ne4[4] = {2, 3, 4, 5}, ne0[2] = {3, 0};
    CHECK(vv_gguf_add_tensor(w, "f32_1d", VV_TYPE_F32, 1, ne1, t_f32) == 0);
    CHECK(vv_gguf_add_tensor(w, "f16_2d", VV_TYPE_F16, 2, ne2, t_f16) == 0);
    CHECK(vv_gguf_add_tensor(w, "q8_3d", VV_TYPE_Q8_0, 3, ne3, t_q8) == 0);
    CHECK(vv_gguf_add_tensor(w, "f32_4d", VV_TYPE_F32, 4, ne4, t_4d) == 0);
    CHECK(vv_gguf_add_tensor(w, "empty", VV_TYPE_F32, 2, ne0, NULL) == 0);
}

static const char *const k_order[] = {
    "general.architecture", "t.u8", "t.i8", "t.u16", "t.i16", "t.u32", "t.i32", "t.u64", "t.i64", "t.f32",
    "t.f64", "t.f64small", "t.true", "t.false", "t.str", "t.empty_str", "a.u8", "a.i8", "a.u16", "a.i16",
    "a.u32", "a.i32", "a.u64", "a.i64", "a.f32", "a.f64", "a.bool", "a.str", "a.empty_i32", "a.empty_str",
    "t.replaced",
};

static void check_all_types(const vv_gguf *g, const void *base, uint32_t version, size_t align) {
    vv_error e = {0};
    CHECK(vv_gguf_version(g) == version);
    CHECK(vv_gguf_alignment(g) == align);
    size_t nk = sizeof(k_order) / sizeof(k_order[0]);
    bool has_align = align != 32;
    CHECKF(vv_gguf_n_kv(g) == (int64_t)nk + has_align, "n_kv %" PRId64, vv_gguf_n_kv(g));
    for (size_t i = 0; i < nk; i++) CHECKF(vv_gguf_key(g, (int64_t)i) && !strcmp(vv_gguf_key(g, (int64_t)i), k_order[i]),
                                           "key %zu order", i);
    CHECK(vv_gguf_key(g, -1) == NULL && vv_gguf_key(g, 1000) == NULL);

    // scalars through the getters, with widening and range checks
    int64_t i64 = 0;
    uint32_t u32 = 0;
    int32_t i32 = 0;
    float f = 0;
    bool bl = false;
    const char *s = NULL;
    CHECK(vv_gguf_get_u32(g, "t.u8", &u32, &e) == 0 && u32 == 200);
    CHECK(vv_gguf_get_i32(g, "t.i8", &i32, &e) == 0 && i32 == -100);
    CHECK(vv_gguf_get_u32(g, "t.u16", &u32, &e) == 0 && u32 == 60000);
    CHECK(vv_gguf_get_i64(g, "t.i16", &i64, &e) == 0 && i64 == -30000);
    CHECK(vv_gguf_get_u32(g, "t.u32", &u32, &e) == 0 && u32 == 4000000000u);
    CHECK(vv_gguf_get_i32(g, "t.i32", &i32, &e) == 0 && i32 == -2000000000);
    CHECK(vv_gguf_get_i64(g, "t.i64", &i64, &e) == 0 && i64 == -((int64_t)1 << 62) - 3);
    CHECK(vv_gguf_get_i64(g, "t.true", &i64, &e) == 0 && i64 == 1);
    CHECK(vv_gguf_get_f32(g, "t.f32", &f, &e) == 0 && f == 3.25f);
    CHECK(vv_gguf_get_f32(g, "t.f64small", &f, &e) == 0 && f == 0.125f);
    CHECK(vv_gguf_get_f32(g, "t.i32", &f, &e) == 0 && f == -2000000000.0f);
    CHECK(vv_gguf_get_bool(g, "t.true", &bl, &e) == 0 && bl);
    CHECK(vv_gguf_get_bool(g, "t.false", &bl, &e) == 0 && !bl);
    CHECK(vv_gguf_get_str(g, "t.str", &s, &e) == 0 && s && !strcmp(s, "hello w\xc3\xb6rld"));
    CHECK(vv_gguf_get_str(g, "t.empty_str", &s, &e) == 0 && s && s[0] == 0);
    CHECK(vv_gguf_get_str(g, "t.replaced", &s, &e) == 0 && s && !strcmp(s, "second"));
    CHECK(vv_gguf_kv_type(g, vv_gguf_find_key(g, "t.f64")) == VV_GGUF_FLOAT64);
    CHECK(vv_gguf_kv_type(g, vv_gguf_find_key(g, "t.u64")) == VV_GGUF_UINT64);

    // errors: out of range, wrong type, missing
    e.msg[0] = 0;
    CHECK(vv_gguf_get_i64(g, "t.u64", &i64, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "out of range"));
    CHECK(vv_gguf_get_i32(g, "t.u32", &i32, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "t.u32"));
    CHECK(vv_gguf_get_u32(g, "t.i8", &u32, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "out of range"));
    CHECK(vv_gguf_get_u32(g, "t.i64", &u32, &e) == VISVM_ERR_FORMAT);
    CHECK(vv_gguf_get_f32(g, "t.f64", &f, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "out of range"));
    CHECK(vv_gguf_get_u32(g, "t.str", &u32, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "type string"));
    CHECK(vv_gguf_get_str(g, "t.u32", &s, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "expected string"));
    CHECK(vv_gguf_get_bool(g, "t.u32", &bl, &e) == VISVM_ERR_FORMAT);
    CHECK(vv_gguf_get_f32(g, "t.true", &f, &e) == VISVM_ERR_FORMAT);
    CHECK(vv_gguf_get_u32(g, "nope", &u32, &e) == VISVM_ERR_NOT_FOUND && strstr(e.msg, "'nope' not found"));
    CHECK(vv_gguf_get_u32(g, "a.u32", &u32, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "array[u32]"));
    u32 = 0;
    CHECK(vv_gguf_get_u32_def(g, "nope", 77, &u32, &e) == 0 && u32 == 77);
    CHECK(vv_gguf_get_u32_def(g, "t.u16", 77, &u32, &e) == 0 && u32 == 60000);
    CHECK(vv_gguf_get_u32_def(g, "t.str", 77, &u32, &e) == VISVM_ERR_FORMAT);
    CHECK(vv_gguf_get_f32_def(g, "nope", 1e4f, &f, &e) == 0 && f == 1e4f);
    CHECK(vv_gguf_get_f32_def(g, "t.str", 1e4f, &f, &e) == VISVM_ERR_FORMAT);
    CHECK(vv_gguf_get_bool_def(g, "nope", true, &bl, &e) == 0 && bl);
    CHECK(vv_gguf_get_bool_def(g, "t.false", true, &bl, &e) == 0 && !bl);
    CHECK(vv_gguf_get_u32(NULL, "x", &u32, &e) == VISVM_ERR_INVALID);

    // arrays: raw bytes identical, converted getters, string arrays
    struct { const char *key; int type; const void *data; size_t n, es; } arrs[] = {
        {"a.u8", VV_GGUF_UINT8, a_u8, 3, 1},     {"a.i8", VV_GGUF_INT8, a_i8, 3, 1},
        {"a.u16", VV_GGUF_UINT16, a_u16, 2, 2},  {"a.i16", VV_GGUF_INT16, a_i16, 3, 2},
        {"a.u32", VV_GGUF_UINT32, a_u32, 4, 4},  {"a.i32", VV_GGUF_INT32, a_i32, 2, 4},
        {"a.u64", VV_GGUF_UINT64, a_u64, 2, 8},  {"a.i64", VV_GGUF_INT64, a_i64, 3, 8},
        {"a.f32", VV_GGUF_FLOAT32, a_f32, 3, 4}, {"a.f64", VV_GGUF_FLOAT64, a_f64, 2, 8},
        {"a.bool", VV_GGUF_BOOL, a_bool, 3, 1},  {"a.empty_i32", VV_GGUF_INT32, NULL, 0, 4},
    };
    for (size_t i = 0; i < sizeof(arrs) / sizeof(arrs[0]); i++) {
        int64_t k = vv_gguf_find_key(g, arrs[i].key);
        CHECKF(k >= 0 && vv_gguf_kv_type(g, k) == VV_GGUF_ARRAY && vv_gguf_arr_type(g, k) == arrs[i].type &&
                   vv_gguf_arr_n(g, k) == arrs[i].n, "%s", arrs[i].key);
        const void *d = vv_gguf_arr_data(g, k);
        CHECKF(d && (arrs[i].n == 0 || memcmp(d, arrs[i].data, arrs[i].n * arrs[i].es) == 0), "%s bytes", arrs[i].key);
        uint64_t n = 99;
        CHECK(vv_gguf_get_arr_n(g, arrs[i].key, &n, &e) == 0 && n == arrs[i].n);
    }
    int64_t iv[4];
    CHECK(vv_gguf_get_arr_i64(g, "a.i8", iv, 3, &e) == 0 && iv[0] == -128 && iv[1] == 0 && iv[2] == 127);
    CHECK(vv_gguf_get_arr_i64(g, "a.u32", iv, 4, &e) == 0 && iv[0] == 4000000000ll && iv[3] == 3);
    CHECK(vv_gguf_get_arr_i64(g, "a.i64", iv, 3, &e) == 0 && iv[0] == INT64_MIN && iv[1] == INT64_MAX);
    CHECK(vv_gguf_get_arr_i64(g, "a.bool", iv, 3, &e) == 0 && iv[0] == 1 && iv[1] == 0);
    CHECK(vv_gguf_get_arr_i64(g, "a.u64", iv, 2, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "out of range"));
    CHECK(vv_gguf_get_arr_i64(g, "a.i8", iv, 2, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "3 elements, expected 2"));
    CHECK(vv_gguf_get_arr_i64(g, "a.f32", iv, 3, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "array[f32]"));
    CHECK(vv_gguf_get_arr_i64(g, "t.u32", iv, 1, &e) == VISVM_ERR_FORMAT && strstr(e.msg, "expected an array"));
    CHECK(vv_gguf_get_arr_i64(g, "a.empty_i32", iv, 0, &e) == 0);
    float fv[4];
    CHECK(vv_gguf_get_arr_f32(g, "a.f32", fv, 3, &e) == 0 && fv[0] == a_f32[0] && fv[1] == a_f32[1]);
    CHECK(vv_gguf_get_arr_f32(g, "a.f64", fv, 2, &e) == 0 && fv[1] == -0.1f);
    CHECK(vv_gguf_get_arr_f32(g, "a.i16", fv, 3, &e) == 0 && fv[0] == -32768.0f && fv[2] == 5.0f);
    CHECK(vv_gguf_get_arr_f32(g, "a.str", fv, 3, &e) == VISVM_ERR_FORMAT);
    int64_t ks = vv_gguf_find_key(g, "a.str");
    CHECK(vv_gguf_arr_type(g, ks) == VV_GGUF_STRING && vv_gguf_arr_n(g, ks) == 3 && vv_gguf_arr_data(g, ks) == NULL);
    for (uint64_t i = 0; i < 3; i++) {
        size_t len = 99;
        const char *p = vv_gguf_arr_str_at(g, ks, i, &len);
        CHECKF(p && !strcmp(p, a_str[i]) && len == strlen(a_str[i]), "a.str[%d]", (int)i);
        const char *q = NULL;
        CHECK(vv_gguf_get_arr_str(g, "a.str", i, &q, &len, &e) == 0 && q == p);
    }
    CHECK(vv_gguf_arr_str_at(g, ks, 3, NULL) == NULL);
    CHECK(vv_gguf_get_arr_str(g, "a.str", 3, &s, NULL, &e) == VISVM_ERR_RANGE && strstr(e.msg, "out of range"));
    CHECK(vv_gguf_get_arr_str(g, "a.u8", 0, &s, NULL, &e) == VISVM_ERR_FORMAT);
    CHECK(vv_gguf_arr_n(g, vv_gguf_find_key(g, "a.empty_str")) == 0);
    CHECK(vv_gguf_arr_type(g, vv_gguf_find_key(g, "a.empty_str")) == VV_GGUF_STRING);
    CHECK(vv_gguf_arr_type(g, vv_gguf_find_key(g, "t.u8")) == -1);

    // tensors: names, shapes, strides, bytes, alignment, position in the image
    struct { const char *name; int type, n_dims; int64_t ne[4]; const void *data; size_t nbytes; } ts[] = {
        {"f32_1d", VV_TYPE_F32, 1, {5, 1, 1, 1}, t_f32, sizeof(t_f32)},
        {"f16_2d", VV_TYPE_F16, 2, {4, 3, 1, 1}, t_f16, sizeof(t_f16)},
        {"q8_3d", VV_TYPE_Q8_0, 3, {64, 2, 3, 1}, t_q8, sizeof(t_q8)},
        {"f32_4d", VV_TYPE_F32, 4, {2, 3, 4, 5}, t_4d, sizeof(t_4d)},
        {"empty", VV_TYPE_F32, 2, {3, 0, 1, 1}, NULL, 0},
    };
    CHECK(vv_gguf_n_tensors(g) == 5);
    size_t prev_end = 0;
    for (int i = 0; i < 5; i++) {
        const vv_tensor *t = vv_gguf_tensor(g, i);
        CHECKF(t && !strcmp(t->name, ts[i].name) && t->type == ts[i].type && t->n_dims == ts[i].n_dims &&
                   !memcmp(t->ne, ts[i].ne, sizeof(t->ne)), "tensor %d header", i);
        if (!t) continue;
        CHECK(vv_gguf_find_tensor(g, ts[i].name) == t);
        CHECK(vv_tensor_nbytes(t) == ts[i].nbytes);
        CHECK(t->nb[1] == vv_row_size(t->type, t->ne[0]) && t->nb[2] == t->nb[1] * (size_t)t->ne[1]);
        CHECKF(ts[i].nbytes == 0 || memcmp(t->data, ts[i].data, ts[i].nbytes) == 0, "tensor %d bytes", i);
        size_t off = vv_gguf_tensor_offset(g, i);
        CHECK(off % align == 0);
        CHECK((const uint8_t *)t->data == (const uint8_t *)base + vv_gguf_data_offset(g) + off);
        CHECK(off == (prev_end + align - 1) / align * align); // contiguous in info order, as ggml
        // padding between tensors is zero
        for (size_t p = prev_end; p < off; p++)
            CHECK(((const uint8_t *)base)[vv_gguf_data_offset(g) + p] == 0);
        prev_end = off + ts[i].nbytes;
    }
    CHECK(vv_gguf_data_offset(g) % align == 0);
    CHECK(vv_gguf_find_tensor(g, "missing") == NULL && vv_gguf_tensor(g, 5) == NULL);
}

static int count_tmp_files(const char *dir) {
    int n = 0;
    DIR *d = opendir(dir);
    if (!d) return -1;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp")) n++;
    closedir(d);
    return n;
}

static void test_roundtrip(void) {
    fill_tensor_data();
    vv_error e = {0};
    // v3, default alignment, to memory
    vv_gguf_writer *w = vv_gguf_writer_create();
    build_all_types(w);
    void *buf = NULL;
    size_t size = 0;
    CHECKF(vv_gguf_writer_write_mem(w, &buf, &size, &e) == 0, "%s", e.msg);
    vv_gguf *g = open_ok(buf, size, "v3 round trip");
    if (g) check_all_types(g, buf, 3, 32);
    vv_gguf_close(g);

    // same writer to a file (atomic): identical bytes, no temp file left, overwrite works
    char dir[] = "/tmp/visvm_test_gguf_XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[256];
    snprintf(path, sizeof(path), "%s/rt.gguf", dir);
    CHECKF(vv_gguf_writer_write(w, path, &e) == 0, "%s", e.msg);
    size_t fsize = 0;
    void *fdata = tc_read(path, &fsize);
    CHECK(fdata && fsize == size && memcmp(fdata, buf, size) == 0);
    free(fdata);
    g = NULL;
    CHECKF(vv_gguf_open(path, &g, &e) == 0, "%s", e.msg);
    if (g) {
        CHECK(!strcmp(vv_gguf_path(g), path));
        CHECK(vv_gguf_get_str(g, "t.str", &(const char *){NULL}, &e) == 0);
        CHECK(vv_gguf_n_tensors(g) == 5);
        vv_gguf_close(g);
    }
    CHECK(count_tmp_files(dir) == 0);

    // a write that fails validation leaves the existing file untouched
    CHECK(vv_gguf_set_u32(w, "general.alignment", 48) == 0);
    CHECK(vv_gguf_writer_write(w, path, &e) == VISVM_ERR_INVALID && strstr(e.msg, "power of two"));
    CHECK(strstr(vv_gguf_writer_error(w), "power of two") != NULL);
    fdata = tc_read(path, &fsize);
    CHECK(fdata && fsize == size && memcmp(fdata, buf, size) == 0);
    free(fdata);
    CHECK(count_tmp_files(dir) == 0);
    void *bad = NULL;
    size_t bad_n = 0;
    CHECK(vv_gguf_writer_write_mem(w, &bad, &bad_n, &e) == VISVM_ERR_INVALID && bad == NULL);
    CHECK(vv_gguf_set_u32(w, "general.alignment", 0) == 0);
    CHECK(vv_gguf_writer_write_mem(w, &bad, &bad_n, &e) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_set_u64(w, "general.alignment", 64) == 0); // wrong type
    CHECK(vv_gguf_writer_write_mem(w, &bad, &bad_n, &e) == VISVM_ERR_INVALID && strstr(e.msg, "u32"));
    // unwritable path: IO error, nothing created
    char badpath[300];
    snprintf(badpath, sizeof(badpath), "%s/no/such/dir.gguf", dir);
    CHECK(vv_gguf_set_u32(w, "general.alignment", 32) == 0);
    CHECK(vv_gguf_writer_write(w, badpath, &e) == VISVM_ERR_IO);
    vv_gguf_writer_free(w);
    free(buf);

    // v2 with a 64-byte alignment
    w = vv_gguf_writer_create();
    CHECK(vv_gguf_writer_set_version(w, 2) == 0);
    CHECK(vv_gguf_writer_set_version(w, 1) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_writer_set_version(w, 4) == VISVM_ERR_INVALID);
    build_all_types(w);
    CHECK(vv_gguf_set_u32(w, "general.alignment", 64) == 0);
    CHECKF(vv_gguf_writer_write_mem(w, &buf, &size, &e) == 0, "%s", e.msg);
    g = open_ok(buf, size, "v2 round trip");
    if (g) check_all_types(g, buf, 2, 64);
    vv_gguf_close(g);
    vv_gguf_writer_free(w);
    free(buf);
    unlink(path);
    rmdir(dir);
}

static void test_writer_errors(void) {
    vv_gguf_writer *w = vv_gguf_writer_create();
    float d[64] = {0};
    int64_t ne[4] = {32, 2, 1, 1};
    CHECK(vv_gguf_set_u32(w, NULL, 1) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_set_u32(w, "", 1) == VISVM_ERR_INVALID && strstr(vv_gguf_writer_error(w), "key"));
    CHECK(vv_gguf_set_str(w, "k", NULL) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_set_u32(NULL, "k", 1) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_set_arr(w, "k", VV_GGUF_STRING, d, 1) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_set_arr(w, "k", VV_GGUF_ARRAY, d, 1) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_set_arr(w, "k", 13, d, 1) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_set_arr(w, "k", VV_GGUF_INT32, NULL, 2) == VISVM_ERR_INVALID);
    uint8_t bad_bool[2] = {1, 2};
    CHECK(vv_gguf_set_arr(w, "k", VV_GGUF_BOOL, bad_bool, 2) == VISVM_ERR_INVALID);
    const char *strs[2] = {"a", NULL};
    CHECK(vv_gguf_set_arr_str(w, "k", strs, 2) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_add_tensor(w, NULL, VV_TYPE_F32, 1, ne, d) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_add_tensor(w, "", VV_TYPE_F32, 1, ne, d) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_add_tensor(w, "t", 4, 1, ne, d) == VISVM_ERR_INVALID && strstr(vv_gguf_writer_error(w), "type"));
    CHECK(vv_gguf_add_tensor(w, "t", 1000, 1, ne, d) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_add_tensor(w, "t", VV_TYPE_F32, 0, ne, d) == VISVM_ERR_INVALID);
    CHECK(vv_gguf_add_tensor(w, "t", VV_TYPE_F32, 5, ne, d) == VISVM_ERR_INVALID);
    int64_t neg[2] = {4, -1};
    CHECK(vv_gguf_add_tensor(w, "t", VV_TYPE_F32, 2, neg, d) == VISVM_ERR_INVALID);
    int64_t ovf[3] = {(int64_t)1 << 32, (int64_t)1 << 32, 4};
    CHECK(vv_gguf_add_tensor(w, "t", VV_TYPE_F32, 3, ovf, d) == VISVM_ERR_INVALID);
    int64_t ne33[1] = {33};
    CHECK(vv_gguf_add_tensor(w, "t", VV_TYPE_Q8_0, 1, ne33, d) == VISVM_ERR_INVALID &&
          strstr(vv_gguf_writer_error(w), "block size"));
    CHECK(vv_gguf_add_tensor(w, "t", VV_TYPE_F32, 1, ne, NULL) == VISVM_ERR_INVALID);
    char longname[80];
    memset(longname, 'x', 64);
    longname[64] = 0;
    CHECK(vv_gguf_add_tensor(w, longname, VV_TYPE_F32, 1, ne, d) == VISVM_ERR_INVALID);
    longname[63] = 0; // 63 bytes is the longest legal name
    CHECK(vv_gguf_add_tensor(w, longname, VV_TYPE_F32, 1, ne, d) == VISVM_OK);
    CHECK(vv_gguf_add_tensor(w, "t", VV_TYPE_F32, 2, ne, d) == VISVM_OK);
    CHECK(vv_gguf_add_tensor(w, "t", VV_TYPE_F32, 2, ne, d) == VISVM_ERR_INVALID &&
          strstr(vv_gguf_writer_error(w), "duplicate"));
    void *buf = NULL;
    size_t n = 0;
    CHECK(vv_gguf_writer_write_mem(w, &buf, &n, NULL) == 0);
    vv_gguf *g = open_ok(buf, n, "writer after errors");
    CHECK(g && vv_gguf_n_kv(g) == 0 && vv_gguf_n_tensors(g) == 2 && vv_gguf_find_tensor(g, longname));
    vv_gguf_close(g);
    free(buf);
    vv_gguf_writer_free(w);
    vv_gguf_writer_free(NULL);
    vv_gguf_close(NULL);
}

// Regression: tensor names stayed pointing into the name table while it was
// reallocated during parsing, so files with more than 64 tensors had garbage
// names (found resuming a 144-parameter training checkpoint).
static void test_many_tensor_names(void) {
    enum { N = 300 };
    vv_gguf_writer *w = vv_gguf_writer_create();
    static float d[N];
    char nm[64];
    for (int i = 0; i < N; i++) {
        d[i] = (float)i;
        int64_t ne[1] = {1};
        snprintf(nm, sizeof(nm), "blk.%d.some_long_tensor_name.weight", i);
        CHECK(vv_gguf_add_tensor(w, nm, VV_TYPE_F32, 1, ne, &d[i]) == 0);
    }
    void *buf = NULL;
    size_t n = 0;
    vv_error e = {0};
    CHECKF(vv_gguf_writer_write_mem(w, &buf, &n, &e) == 0, "%s", e.msg);
    vv_gguf *g = NULL;
    CHECKF(vv_gguf_open_mem(buf, n, &g, &e) == 0, "%s", e.msg);
    int bad = 0;
    for (int i = 0; g && i < N; i++) {
        snprintf(nm, sizeof(nm), "blk.%d.some_long_tensor_name.weight", i);
        const vv_tensor *t = vv_gguf_tensor(g, i);
        if (strcmp(t->name, nm) != 0 || *(const float *)t->data != (float)i) bad++;
        if (vv_gguf_find_tensor(g, nm) != t) bad++;
    }
    CHECKF(bad == 0, "%d of %d tensor names or lookups wrong", bad, N);
    vv_gguf_close(g);
    free(buf);
    vv_gguf_writer_free(w);
}

// ---------------------------------------------------------------------------
// Golden files (README §3, §4)

static const char *const k_llama_files[] = {"f16", "q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m-mix"};
// per tensor: the type in each of the 6 files (README §3 table)
#define F16 VV_TYPE_F16
#define F32 VV_TYPE_F32
#define Q80 VV_TYPE_Q8_0
#define Q40 VV_TYPE_Q4_0
#define Q4K VV_TYPE_Q4_K
#define Q6K VV_TYPE_Q6_K
static const struct { const char *name; int64_t ne0, ne1; int types[6]; } k_llama_tensors[] = {
    {"token_embd.weight", 256, 457, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.0.attn_norm.weight", 256, 1, {F32, F32, F32, F32, F32, F32}},
    {"blk.0.attn_q.weight", 256, 256, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.0.attn_k.weight", 256, 64, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.0.attn_v.weight", 256, 64, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.0.attn_output.weight", 256, 256, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.0.ffn_norm.weight", 256, 1, {F32, F32, F32, F32, F32, F32}},
    {"blk.0.ffn_gate.weight", 256, 768, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.0.ffn_up.weight", 256, 768, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.0.ffn_down.weight", 768, 256, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.1.attn_norm.weight", 256, 1, {F32, F32, F32, F32, F32, F32}},
    {"blk.1.attn_q.weight", 256, 256, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.1.attn_k.weight", 256, 64, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.1.attn_v.weight", 256, 64, {F16, Q80, Q40, Q4K, Q6K, Q6K}},
    {"blk.1.attn_output.weight", 256, 256, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.1.ffn_norm.weight", 256, 1, {F32, F32, F32, F32, F32, F32}},
    {"blk.1.ffn_gate.weight", 256, 768, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.1.ffn_up.weight", 256, 768, {F16, Q80, Q40, Q4K, Q6K, Q4K}},
    {"blk.1.ffn_down.weight", 768, 256, {F16, Q80, Q40, Q4K, Q6K, Q6K}},
    {"output_norm.weight", 256, 1, {F32, F32, F32, F32, F32, F32}},
    {"output.weight", 256, 457, {F16, Q80, Q40, Q4K, Q6K, Q6K}},
};

// Same value for key i of a and key j of b (type, array type, count, contents).
static bool kv_equal(const vv_gguf *a, int64_t i, const vv_gguf *b, int64_t j) {
    const char *key = vv_gguf_key(a, i);
    if (!key || !vv_gguf_key(b, j) || strcmp(key, vv_gguf_key(b, j))) return false;
    int t = vv_gguf_kv_type(a, i);
    if (t != vv_gguf_kv_type(b, j) || vv_gguf_arr_type(a, i) != vv_gguf_arr_type(b, j) ||
        vv_gguf_arr_n(a, i) != vv_gguf_arr_n(b, j))
        return false;
    if (t == VV_GGUF_STRING) {
        size_t la, lb;
        const char *sa = vv_gguf_str_at(a, i, &la), *sb = vv_gguf_str_at(b, j, &lb);
        return sa && sb && la == lb && memcmp(sa, sb, la) == 0;
    }
    if (t == VV_GGUF_ARRAY) {
        uint64_t n = vv_gguf_arr_n(a, i);
        if (vv_gguf_arr_type(a, i) == VV_GGUF_STRING) {
            for (uint64_t k = 0; k < n; k++) {
                size_t la, lb;
                const char *sa = vv_gguf_arr_str_at(a, i, k, &la), *sb = vv_gguf_arr_str_at(b, j, k, &lb);
                if (!sa || !sb || la != lb || memcmp(sa, sb, la)) return false;
            }
            return true;
        }
        static const size_t es[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
        return memcmp(vv_gguf_arr_data(a, i), vv_gguf_arr_data(b, j), n * es[vv_gguf_arr_type(a, i)]) == 0;
    }
    if (t == VV_GGUF_FLOAT32 || t == VV_GGUF_FLOAT64) {
        float x, y;
        return !vv_gguf_get_f32(a, key, &x, NULL) && !vv_gguf_get_f32(b, key, &y, NULL) && x == y;
    }
    int64_t x, y;
    return !vv_gguf_get_i64(a, key, &x, NULL) && !vv_gguf_get_i64(b, key, &y, NULL) && x == y;
}

// copy_kv + re-add every tensor, write to memory, re-read: same metadata and bytes.
static void check_copy(const vv_gguf *g, const char *what) {
    vv_gguf_writer *w = vv_gguf_writer_create();
    CHECK(vv_gguf_copy_kv(w, g) == 0);
    for (int64_t i = 0; i < vv_gguf_n_tensors(g); i++) {
        const vv_tensor *t = vv_gguf_tensor(g, i);
        CHECK(vv_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data) == 0);
    }
    void *buf = NULL;
    size_t size = 0;
    vv_error e = {0};
    CHECKF(vv_gguf_writer_write_mem(w, &buf, &size, &e) == 0, "%s: %s", what, e.msg);
    vv_gguf *h = open_ok(buf, size, what);
    if (h) {
        CHECKF(vv_gguf_n_kv(h) == vv_gguf_n_kv(g), "%s kv count", what);
        for (int64_t i = 0; i < vv_gguf_n_kv(g); i++)
            CHECKF(kv_equal(g, i, h, i), "%s: key %s differs", what, vv_gguf_key(g, i));
        CHECKF(vv_gguf_n_tensors(h) == vv_gguf_n_tensors(g), "%s tensor count", what);
        for (int64_t i = 0; i < vv_gguf_n_tensors(g); i++) {
            const vv_tensor *a = vv_gguf_tensor(g, i), *b = vv_gguf_tensor(h, i);
            CHECKF(b && !strcmp(a->name, b->name) && a->type == b->type && a->n_dims == b->n_dims &&
                       !memcmp(a->ne, b->ne, sizeof(a->ne)) &&
                       !memcmp(a->data, b->data, vv_tensor_nbytes(a)), "%s: tensor %s differs", what, a->name);
        }
        // ggml's layout is the same, so the rewrite of a ggml-written model is byte-identical
        if (vv_gguf_n_tensors(g) > 0) {
            size_t osize = 0;
            void *orig = tc_read(vv_gguf_path(g), &osize);
            CHECKF(orig && osize == size && memcmp(orig, buf, size) == 0, "%s: rewrite not byte-identical", what);
            free(orig);
        }
        vv_gguf_close(h);
    }
    free(buf);
    vv_gguf_writer_free(w);
}

static void test_golden(const char *gd) {
    char path[1024];
    vv_error e = {0};
    for (int f = 0; f < 6; f++) {
        snprintf(path, sizeof(path), "%s/models/tiny-llama-%s.gguf", gd, k_llama_files[f]);
        vv_gguf *g = NULL;
        CHECKF(vv_gguf_open(path, &g, &e) == 0, "%s", e.msg);
        if (!g) continue;
        const char *s = NULL;
        uint32_t u = 0;
        float x = 0;
        bool b = false;
        CHECK(vv_gguf_version(g) == 3 && vv_gguf_alignment(g) == 32);
        CHECK(vv_gguf_get_str(g, "general.architecture", &s, &e) == 0 && !strcmp(s, "llama"));
        CHECK(vv_gguf_get_str(g, "general.name", &s, &e) == 0 && !strcmp(s, "tiny-random-llama-public"));
        CHECK(vv_gguf_get_u32(g, "llama.context_length", &u, &e) == 0 && u == 2048);
        CHECK(vv_gguf_get_u32(g, "llama.embedding_length", &u, &e) == 0 && u == 256);
        CHECK(vv_gguf_get_u32(g, "llama.block_count", &u, &e) == 0 && u == 2);
        CHECK(vv_gguf_get_u32(g, "llama.feed_forward_length", &u, &e) == 0 && u == 768);
        CHECK(vv_gguf_get_u32(g, "llama.attention.head_count", &u, &e) == 0 && u == 8);
        CHECK(vv_gguf_get_u32(g, "llama.attention.head_count_kv", &u, &e) == 0 && u == 2);
        CHECK(vv_gguf_get_u32(g, "llama.rope.dimension_count", &u, &e) == 0 && u == 32);
        CHECK(vv_gguf_get_f32(g, "llama.rope.freq_base", &x, &e) == 0 && x == 1e6f);
        CHECK(vv_gguf_get_f32(g, "llama.attention.layer_norm_rms_epsilon", &x, &e) == 0 && x == 1e-5f);
        CHECK(vv_gguf_get_u32(g, "llama.vocab_size", &u, &e) == 0 && u == 457);
        CHECK(vv_gguf_get_u32(g, "tokenizer.ggml.bos_token_id", &u, &e) == 0 && u == 1);
        CHECK(vv_gguf_get_u32(g, "tokenizer.ggml.eos_token_id", &u, &e) == 0 && u == 2);
        CHECK(vv_gguf_get_u32(g, "tokenizer.ggml.unknown_token_id", &u, &e) == 0 && u == 0);
        CHECK(vv_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &b, &e) == 0 && b);
        CHECK(vv_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &b, &e) == 0 && !b);
        CHECK(vv_gguf_get_str(g, "tokenizer.ggml.model", &s, &e) == 0 && !strcmp(s, "llama"));
        CHECK(vv_gguf_get_str(g, "tokenizer.ggml.pre", &s, &e) == 0 && !strcmp(s, "default"));
        uint64_t n = 0;
        CHECK(vv_gguf_get_arr_n(g, "tokenizer.ggml.tokens", &n, &e) == 0 && n == 457);
        CHECK(vv_gguf_get_arr_n(g, "tokenizer.ggml.scores", &n, &e) == 0 && n == 457);
        CHECK(vv_gguf_arr_type(g, vv_gguf_find_key(g, "tokenizer.ggml.token_type")) == VV_GGUF_INT32);
        CHECK(vv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 1, &s, NULL, &e) == 0 && !strcmp(s, "<s>"));
        CHECK(vv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 3, &s, NULL, &e) == 0 && !strcmp(s, "<0x00>"));
        if (f == 0) {
            CHECK(vv_gguf_get_u32(g, "general.file_type", &u, &e) == 0 && u == 1);
            CHECK(vv_gguf_find_key(g, "general.quantization_version") < 0);
        } else {
            CHECK(vv_gguf_get_u32(g, "general.quantization_version", &u, &e) == 0 && u == 2);
        }
        CHECKF(vv_gguf_n_tensors(g) == 21, "%s: %" PRId64 " tensors", path, vv_gguf_n_tensors(g));
        for (size_t i = 0; i < sizeof(k_llama_tensors) / sizeof(k_llama_tensors[0]); i++) {
            const vv_tensor *t = vv_gguf_find_tensor(g, k_llama_tensors[i].name);
            CHECKF(t && t->ne[0] == k_llama_tensors[i].ne0 && t->ne[1] == k_llama_tensors[i].ne1 && t->ne[2] == 1 &&
                       t->ne[3] == 1 && t->n_dims == (k_llama_tensors[i].ne1 > 1 ? 2 : 1) &&
                       t->type == k_llama_tensors[i].types[f],
                   "%s: %s", k_llama_files[f], k_llama_tensors[i].name);
        }
        check_copy(g, path);
        vv_gguf_close(g);
    }

    static const int32_t pinpoints[10] = {56, 112, 112, 56, 112, 112, 168, 56, 56, 168};
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    for (int v = 0; v < 2; v++) {
        bool l16 = v == 1;
        snprintf(path, sizeof(path), "%s/models/mmproj-llava%s-f16.gguf", gd, l16 ? "16" : "15");
        vv_gguf *g = NULL;
        CHECKF(vv_gguf_open(path, &g, &e) == 0, "%s", e.msg);
        if (!g) continue;
        const char *s = NULL;
        uint32_t u = 0;
        float x = 0;
        bool b = true;
        CHECK(vv_gguf_get_str(g, "general.architecture", &s, &e) == 0 && !strcmp(s, "clip"));
        CHECK(vv_gguf_get_bool(g, "clip.has_text_encoder", &b, &e) == 0 && !b);
        CHECK(vv_gguf_get_bool(g, "clip.has_vision_encoder", &b, &e) == 0 && b);
        CHECK(vv_gguf_get_bool(g, "clip.has_llava_projector", &b, &e) == 0 && b);
        CHECK(vv_gguf_get_bool(g, "clip.use_gelu", &b, &e) == 0 && !b);
        CHECK(vv_gguf_get_u32(g, "general.file_type", &u, &e) == 0 && u == 1);
        CHECK(vv_gguf_get_str(g, "general.description", &s, &e) == 0 && !strcmp(s, "image encoder for LLaVA"));
        CHECK(vv_gguf_get_str(g, "clip.projector_type", &s, &e) == 0 && !strcmp(s, "mlp"));
        CHECK(vv_gguf_get_u32(g, "clip.vision.image_size", &u, &e) == 0 && u == 56);
        CHECK(vv_gguf_get_u32(g, "clip.vision.patch_size", &u, &e) == 0 && u == 14);
        CHECK(vv_gguf_get_u32(g, "clip.vision.embedding_length", &u, &e) == 0 && u == 128);
        CHECK(vv_gguf_get_u32(g, "clip.vision.feed_forward_length", &u, &e) == 0 && u == 512);
        CHECK(vv_gguf_get_u32(g, "clip.vision.projection_dim", &u, &e) == 0 && u == 256);
        CHECK(vv_gguf_get_u32(g, "clip.vision.attention.head_count", &u, &e) == 0 && u == 4);
        CHECK(vv_gguf_get_u32(g, "clip.vision.block_count", &u, &e) == 0 && u == 3);
        CHECK(vv_gguf_get_f32(g, "clip.vision.attention.layer_norm_epsilon", &x, &e) == 0 && x == 1e-5f);
        float fv[3];
        CHECK(vv_gguf_get_arr_f32(g, "clip.vision.image_mean", fv, 3, &e) == 0 && !memcmp(fv, mean, sizeof(fv)));
        CHECK(vv_gguf_get_arr_f32(g, "clip.vision.image_std", fv, 3, &e) == 0 && !memcmp(fv, std, sizeof(fv)));
        int64_t pp[10];
        uint64_t n = 0;
        if (l16) {
            CHECK(vv_gguf_get_arr_n(g, "clip.vision.image_grid_pinpoints", &n, &e) == 0 && n == 10);
            CHECK(vv_gguf_get_arr_i64(g, "clip.vision.image_grid_pinpoints", pp, 10, &e) == 0);
            for (int i = 0; i < 10; i++) CHECK(pp[i] == pinpoints[i]);
            CHECK(vv_gguf_get_str(g, "clip.vision.mm_patch_merge_type", &s, &e) == 0 && !strcmp(s, "spatial_unpad"));
            CHECK(vv_gguf_get_str(g, "clip.vision.image_aspect_ratio", &s, &e) == 0 && !strcmp(s, "anyres"));
            CHECK(vv_gguf_get_str(g, "clip.vision.mm_projector_type", &s, &e) == 0 && !strcmp(s, "mlp2x_gelu"));
            CHECK(vv_gguf_get_u32(g, "clip.vision.image_crop_resolution", &u, &e) == 0 && u == 56);
            CHECK(vv_gguf_get_u32(g, "clip.vision.image_split_resolution", &u, &e) == 0 && u == 56);
        } else {
            CHECK(vv_gguf_get_arr_n(g, "clip.vision.image_grid_pinpoints", &n, &e) == VISVM_ERR_NOT_FOUND);
            CHECK(vv_gguf_find_key(g, "clip.vision.mm_patch_merge_type") < 0);
        }
        CHECK(vv_gguf_n_tensors(g) == (l16 ? 58 : 57));
        static const struct { const char *name; int n_dims; int64_t ne[4]; int type; } vt[] = {
            {"mm.0.weight", 2, {128, 256, 1, 1}, F16},      {"mm.0.bias", 1, {256, 1, 1, 1}, F32},
            {"mm.2.weight", 2, {256, 256, 1, 1}, F16},      {"mm.2.bias", 1, {256, 1, 1, 1}, F32},
            {"v.class_embd", 1, {128, 1, 1, 1}, F32},       {"v.patch_embd.weight", 4, {14, 14, 3, 128}, F16},
            {"v.position_embd.weight", 2, {128, 17, 1, 1}, F16}, {"v.pre_ln.bias", 1, {128, 1, 1, 1}, F32},
            {"v.blk.2.attn_out.weight", 2, {128, 128, 1, 1}, F16}, {"v.blk.0.ffn_down.weight", 2, {128, 512, 1, 1}, F16},
            {"v.blk.1.ffn_down.bias", 1, {512, 1, 1, 1}, F32}, {"v.blk.2.ffn_up.weight", 2, {512, 128, 1, 1}, F16},
            {"v.blk.0.ln2.bias", 1, {128, 1, 1, 1}, F32},
        };
        for (size_t i = 0; i < sizeof(vt) / sizeof(vt[0]); i++) {
            const vv_tensor *t = vv_gguf_find_tensor(g, vt[i].name);
            CHECKF(t && t->n_dims == vt[i].n_dims && !memcmp(t->ne, vt[i].ne, sizeof(t->ne)) && t->type == vt[i].type,
                   "%s", vt[i].name);
        }
        const vv_tensor *nl = vv_gguf_find_tensor(g, "model.image_newline");
        CHECK(l16 ? (nl && nl->type == F32 && nl->ne[0] == 256 && nl->n_dims == 1) : nl == NULL);
        check_copy(g, path);
        vv_gguf_close(g);
    }

    // 32000-token vocabulary: fast open and O(1) element access
    snprintf(path, sizeof(path), "%s/vocab/ggml-vocab-llama-spm.gguf", gd);
    vv_gguf *g = NULL;
    int64_t t0 = vv_time_us();
    CHECKF(vv_gguf_open(path, &g, &e) == 0, "%s", e.msg);
    double open_ms = (double)(vv_time_us() - t0) / 1000.0;
#if defined(__SANITIZE_ADDRESS__)
    const double limit_ms = 1000.0;
#else
    const double limit_ms = 100.0;
#endif
    CHECKF(open_ms < limit_ms, "vocab open took %.1f ms", open_ms);
    printf("vocab open: %.2f ms\n", open_ms);
    if (g) {
        int64_t k = vv_gguf_find_key(g, "tokenizer.ggml.tokens");
        CHECK(vv_gguf_arr_n(g, k) == 32000 && vv_gguf_n_tensors(g) == 0);
        const char *s = NULL;
        CHECK(vv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 0, &s, NULL, &e) == 0 && !strcmp(s, "<unk>"));
        CHECK(vv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 2, &s, NULL, &e) == 0 && !strcmp(s, "</s>"));
        CHECK(vv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 3, &s, NULL, &e) == 0 && !strcmp(s, "<0x00>"));
        CHECK(vv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", 32000, &s, NULL, &e) == VISVM_ERR_RANGE);
        t0 = vv_time_us();
        size_t total = 0;
        int bad = 0;
        for (uint64_t i = 0; i < 32000; i++) {
            size_t len = 0, len2 = 0;
            const char *p = NULL;
            if (vv_gguf_get_arr_str(g, "tokenizer.ggml.tokens", i, &p, &len, &e) != 0) bad++;
            const char *q = vv_gguf_arr_str_at(g, k, i, &len2);
            if (!p || p != q || len != len2 || strlen(p) != len || len == 0) bad++;
            total += len;
        }
        double loop_ms = (double)(vv_time_us() - t0) / 1000.0;
        CHECKF(bad == 0, "%d bad vocabulary entries", bad);
        CHECKF(loop_ms < limit_ms, "32000 lookups took %.1f ms", loop_ms);
        CHECK(total > 32000 * 2);
        uint64_t n = 0;
        CHECK(vv_gguf_get_arr_n(g, "tokenizer.ggml.scores", &n, &e) == 0 && n == 32000);
        CHECK(vv_gguf_get_arr_n(g, "tokenizer.ggml.token_type", &n, &e) == 0 && n == 32000);
        int64_t *tt = malloc(32000 * sizeof(int64_t));
        CHECK(vv_gguf_get_arr_i64(g, "tokenizer.ggml.token_type", tt, 32000, &e) == 0 && tt[0] == 2 && tt[1] == 3 &&
              tt[2] == 3 && tt[3] == 6 && tt[1000] == 1);
        free(tt);
        check_copy(g, path);
        vv_gguf_close(g);
    }
}

// ---------------------------------------------------------------------------
// Corrupt files

// A small valid file whose last tensor ends exactly at the end of the file
// (so every proper prefix is truncated).
static void *small_file(size_t *size) {
    vv_gguf_writer *w = vv_gguf_writer_create();
    static float f[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    static uint16_t h[16];
    static const char *const toks[] = {"<unk>", "<s>", "hello", ""};
    static const float sc[4] = {0, -1, -2.5f, -3};
    int64_t ne1[1] = {8}, ne2[2] = {4, 4};
    vv_gguf_set_str(w, "general.architecture", "llama");
    vv_gguf_set_u32(w, "llama.embedding_length", 256);
    vv_gguf_set_bool(w, "b", true);
    vv_gguf_set_arr_str(w, "tokenizer.ggml.tokens", toks, 4);
    vv_gguf_set_arr(w, "tokenizer.ggml.scores", VV_GGUF_FLOAT32, sc, 4);
    vv_gguf_set_f64(w, "d", 2.5);
    vv_gguf_add_tensor(w, "a", VV_TYPE_F32, 1, ne1, f);
    vv_gguf_add_tensor(w, "b.weight", VV_TYPE_F16, 2, ne2, h);
    void *buf = NULL;
    CHECK(vv_gguf_writer_write_mem(w, &buf, size, NULL) == 0);
    vv_gguf_writer_free(w);
    return buf;
}

static void test_truncation(void) {
    size_t size = 0;
    uint8_t *buf = small_file(&size);
    if (!buf) return;
    vv_gguf *g = open_ok(buf, size, "small file");
    CHECK(g && vv_gguf_n_tensors(g) == 2);
    vv_gguf_close(g);
    int fails = 0;
    for (size_t n = 0; n < size; n++) {
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, buf, n);
        vv_error e = {0};
        g = NULL;
        int rc = vv_gguf_open_mem(p, n, &g, &e);
        bool ok = rc == VISVM_ERR_FORMAT && g == NULL &&
                  (strstr(e.msg, "truncated") || strstr(e.msg, "too large") || strstr(e.msg, "magic") ||
                   strstr(e.msg, "empty") || strstr(e.msg, "beyond the end"));
        if (!ok && fails++ < 5) fprintf(stderr, "prefix %zu/%zu: rc %d '%s'\n", n, size, rc, e.msg);
        vv_gguf_close(g);
        free(p);
    }
    CHECKF(fails == 0, "%d of %zu prefixes not rejected as truncated", fails, size);
    free(buf);
}

static void test_corrupt(void) {
    vv_buf b = {0};
    uint64_t ne16[1] = {16};

    b.n = 0;
    EXPECT_FAIL("empty", &b, VISVM_ERR_FORMAT, "empty");
    b_raw(&b, "GGU", 3);
    EXPECT_FAIL("3 bytes", &b, VISVM_ERR_FORMAT, "magic");
    b_hdr(&b, 3, 0, 0);
    memcpy(b.v, "GGML", 4);
    EXPECT_FAIL("bad magic", &b, VISVM_ERR_FORMAT, "magic");
    b_hdr(&b, 0, 0, 0);
    EXPECT_FAIL("version 0", &b, VISVM_ERR_FORMAT, "version 0");
    b_hdr(&b, 1, 0, 0);
    EXPECT_FAIL("version 1", &b, VISVM_ERR_FORMAT, "GGUFv1 is no longer supported");
    b_hdr(&b, 4, 0, 0);
    EXPECT_FAIL("version 4", &b, 0, "version 4");
    b_hdr(&b, 0x03000000u, 0, 0);
    EXPECT_FAIL("byte-swapped version", &b, VISVM_ERR_FORMAT, "endianness");
    b_hdr(&b, 0x00020000u, 0, 0);
    EXPECT_FAIL("version 2<<16", &b, VISVM_ERR_FORMAT, "endianness");
    // minimal valid files
    b_hdr(&b, 3, 0, 0);
    vv_gguf *g = open_ok(b.v, b.n, "header only v3");
    CHECK(g && vv_gguf_n_kv(g) == 0 && vv_gguf_n_tensors(g) == 0 && !strcmp(vv_gguf_path(g), ""));
    vv_gguf_close(g);
    b_hdr(&b, 2, 0, 0);
    g = open_ok(b.v, b.n, "header only v2");
    CHECK(vv_gguf_version(g) == 2);
    vv_gguf_close(g);

    // huge counts: rejected before any allocation
    b_hdr(&b, 3, (uint64_t)1 << 40, 0);
    EXPECT_FAIL("huge tensor count", &b, VISVM_ERR_FORMAT, "tensor count");
    b_hdr(&b, 3, UINT64_MAX, 0);
    EXPECT_FAIL("negative tensor count", &b, VISVM_ERR_FORMAT, "tensor count");
    b_hdr(&b, 3, 0, (uint64_t)1 << 50);
    EXPECT_FAIL("huge kv count", &b, VISVM_ERR_FORMAT, "kv count");
    b_hdr(&b, 3, 0, 2);
    b_kv_u32(&b, "a", 1);
    b_str(&b, "bbbbb");
    b_u32(&b, VV_GGUF_UINT32); // value missing
    EXPECT_FAIL("kv count > entries", &b, VISVM_ERR_FORMAT, "truncated");

    // strings
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, (uint64_t)1 << 40);
    b_zeros(&b, 16);
    EXPECT_FAIL("huge key length", &b, VISVM_ERR_FORMAT, "too large");
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, 1000);
    b_raw(&b, "abcdefghijklmnopqrstuvwxyz", 26);
    EXPECT_FAIL("key past end", &b, VISVM_ERR_FORMAT, "truncated");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "s");
    b_u32(&b, VV_GGUF_STRING);
    b_u64(&b, (uint64_t)1 << 31);
    b_zeros(&b, 8);
    EXPECT_FAIL("huge string value", &b, VISVM_ERR_FORMAT, "too large");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "s");
    b_u32(&b, VV_GGUF_STRING);
    b_u64(&b, 100);
    b_zeros(&b, 8);
    EXPECT_FAIL("string past end", &b, VISVM_ERR_FORMAT, "'s'");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "");
    b_u32(&b, VV_GGUF_UINT32);
    b_u32(&b, 0);
    EXPECT_FAIL("empty key", &b, VISVM_ERR_FORMAT, "empty");
    b_hdr(&b, 3, 0, 1);
    b_u64(&b, 3);
    b_raw(&b, "a\0b", 3);
    b_u32(&b, VV_GGUF_UINT32);
    b_u32(&b, 0);
    EXPECT_FAIL("NUL in key", &b, VISVM_ERR_FORMAT, "NUL");

    // value types
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, 13);
    b_zeros(&b, 8);
    EXPECT_FAIL("unknown value type", &b, VISVM_ERR_FORMAT, "unknown value type 13");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, VV_GGUF_BOOL);
    b_u8(&b, 2);
    EXPECT_FAIL("bad bool", &b, VISVM_ERR_FORMAT, "bool");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, VV_GGUF_ARRAY);
    b_u32(&b, VV_GGUF_BOOL);
    b_u64(&b, 3);
    b_u8(&b, 1), b_u8(&b, 0), b_u8(&b, 7);
    EXPECT_FAIL("bad bool in array", &b, VISVM_ERR_FORMAT, "bool array element 2");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, VV_GGUF_ARRAY);
    b_u32(&b, VV_GGUF_ARRAY);
    b_u64(&b, 1);
    b_u32(&b, VV_GGUF_UINT8);
    b_u64(&b, 1);
    b_u8(&b, 0);
    EXPECT_FAIL("nested array", &b, VISVM_ERR_FORMAT, "nested");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, VV_GGUF_ARRAY);
    b_u32(&b, 99);
    b_u64(&b, 0);
    EXPECT_FAIL("unknown array type", &b, VISVM_ERR_FORMAT, "unknown array element type 99");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, VV_GGUF_ARRAY);
    b_u32(&b, VV_GGUF_UINT32);
    b_u64(&b, ((uint64_t)1 << 30) + 1);
    b_zeros(&b, 64);
    EXPECT_FAIL("huge array", &b, VISVM_ERR_FORMAT, "2^30");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, VV_GGUF_ARRAY);
    b_u32(&b, VV_GGUF_UINT64);
    b_u64(&b, (uint64_t)1 << 29);
    b_zeros(&b, 64);
    EXPECT_FAIL("array past end", &b, VISVM_ERR_FORMAT, "truncated");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, VV_GGUF_ARRAY);
    b_u32(&b, VV_GGUF_STRING);
    b_u64(&b, (uint64_t)1 << 29);
    b_zeros(&b, 64);
    EXPECT_FAIL("string array past end", &b, VISVM_ERR_FORMAT, "cannot fit");
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "k");
    b_u32(&b, VV_GGUF_ARRAY);
    b_u32(&b, VV_GGUF_STRING);
    b_u64(&b, 2);
    b_str(&b, "ok");
    b_u64(&b, 1000);
    b_zeros(&b, 16);
    EXPECT_FAIL("string array element past end", &b, VISVM_ERR_FORMAT, "element 1");
    b_hdr(&b, 3, 0, 2);
    b_kv_u32(&b, "dup.key", 1);
    b_kv_u32(&b, "dup.key", 2);
    EXPECT_FAIL("duplicate key", &b, VISVM_ERR_FORMAT, "duplicate key 'dup.key'");

    // general.alignment
    b_hdr(&b, 3, 0, 1);
    b_str(&b, "general.alignment");
    b_u32(&b, VV_GGUF_UINT64);
    b_u64(&b, 32);
    EXPECT_FAIL("alignment u64", &b, VISVM_ERR_FORMAT, "expected u32");
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 0);
    EXPECT_FAIL("alignment 0", &b, VISVM_ERR_FORMAT, "power of two");
    b_hdr(&b, 3, 0, 1);
    b_kv_u32(&b, "general.alignment", 48);
    EXPECT_FAIL("alignment 48", &b, VISVM_ERR_FORMAT, "power of two");

    // tensor infos (each followed by enough padded data to be otherwise valid)
#define T1(name, nd, ne, type, off)         \
    do {                                    \
        b_hdr(&b, 3, 1, 0);                 \
        b_tinfo(&b, name, nd, ne, type, off); \
        b_pad(&b, 32);                      \
        b_zeros(&b, 256);                   \
    } while (0)
    T1("t", 1, ne16, VV_TYPE_F32, 0);
    g = open_ok(b.v, b.n, "one tensor");
    CHECK(g && vv_gguf_find_tensor(g, "t") && vv_gguf_find_tensor(g, "t")->ne[0] == 16);
    vv_gguf_close(g);
    T1("", 1, ne16, VV_TYPE_F32, 0);
    EXPECT_FAIL("empty tensor name", &b, VISVM_ERR_FORMAT, "empty name");
    char name64[65];
    memset(name64, 'n', 64);
    name64[64] = 0;
    T1(name64, 1, ne16, VV_TYPE_F32, 0);
    EXPECT_FAIL("64-byte name", &b, VISVM_ERR_FORMAT, "too long");
    name64[63] = 0;
    T1(name64, 1, ne16, VV_TYPE_F32, 0);
    g = open_ok(b.v, b.n, "63-byte name");
    vv_gguf_close(g);
    T1("t", 0, ne16, VV_TYPE_F32, 0);
    EXPECT_FAIL("n_dims 0", &b, VISVM_ERR_FORMAT, "n_dims 0");
    uint64_t ne5[5] = {1, 1, 1, 1, 1};
    T1("t", 5, ne5, VV_TYPE_F32, 0);
    EXPECT_FAIL("n_dims 5", &b, VISVM_ERR_FORMAT, "n_dims 5");
    uint64_t neg[2] = {4, UINT64_MAX};
    T1("t", 2, neg, VV_TYPE_F32, 0);
    EXPECT_FAIL("negative dim", &b, VISVM_ERR_FORMAT, "dimension 1 is negative");
    uint64_t ovf[3] = {(uint64_t)1 << 32, (uint64_t)1 << 32, 2};
    T1("t", 3, ovf, VV_TYPE_F32, 0);
    EXPECT_FAIL("int64 overflow", &b, VISVM_ERR_FORMAT, "element count overflows");
    uint64_t big[1] = {(uint64_t)1 << 62}; // 2^62 elements fit int64, 2^64 bytes do not fit size_t
    T1("t", 1, big, VV_TYPE_F32, 0);
    EXPECT_FAIL("size_t overflow", &b, VISVM_ERR_FORMAT, "byte size overflows");
    uint64_t huge[2] = {(uint64_t)1 << 30, (uint64_t)1 << 20}; // fits, but not in the file
    T1("t", 2, huge, VV_TYPE_F32, 0);
    EXPECT_FAIL("tensor larger than file", &b, VISVM_ERR_FORMAT, "beyond the end");
    T1("t", 1, ne16, 4, 0);
    EXPECT_FAIL("retired type", &b, VISVM_ERR_FORMAT, "unknown tensor type id 4");
    T1("t", 1, ne16, 1000, 0);
    EXPECT_FAIL("unknown type", &b, VISVM_ERR_FORMAT, "unknown tensor type id 1000");
    T1("t", 1, ne16, 0x80000000u, 0);
    EXPECT_FAIL("type id > INT32_MAX", &b, VISVM_ERR_FORMAT, "unknown tensor type");
    T1("t", 1, ne16, VV_TYPE_Q8_0, 0);
    EXPECT_FAIL("ne0 not multiple of block", &b, VISVM_ERR_FORMAT, "block size 32");
    T1("t", 1, ne16, VV_TYPE_F32, 16);
    EXPECT_FAIL("misaligned offset", &b, VISVM_ERR_FORMAT, "not a multiple of the alignment");
    T1("t", 1, ne16, VV_TYPE_F32, 1024);
    EXPECT_FAIL("offset beyond file", &b, VISVM_ERR_FORMAT, "beyond the end");
    T1("t", 1, ne16, VV_TYPE_F32, UINT64_MAX - 31);
    EXPECT_FAIL("offset near 2^64", &b, VISVM_ERR_FORMAT, "beyond the end");
    // data section start past the end of the file
    b_hdr(&b, 3, 1, 0);
    b_tinfo(&b, "t", 1, ne16, VV_TYPE_F32, 0);
    EXPECT_FAIL("no data section", &b, VISVM_ERR_FORMAT, "truncated");

    // two tensors: duplicate names, overlap, out-of-order but disjoint
#define T2(n1, o1, n2, o2)                                  \
    do {                                                    \
        b_hdr(&b, 3, 2, 0);                                 \
        b_tinfo(&b, n1, 1, ne16, VV_TYPE_F32, o1);          \
        b_tinfo(&b, n2, 1, ne16, VV_TYPE_F32, o2);          \
        b_pad(&b, 32);                                      \
        b_zeros(&b, 128);                                   \
    } while (0)
    T2("x", 0, "x", 64);
    EXPECT_FAIL("duplicate tensor", &b, VISVM_ERR_FORMAT, "duplicate tensor name 'x'");
    T2("x", 0, "y", 32);
    EXPECT_FAIL("overlap", &b, VISVM_ERR_FORMAT, "overlap");
    T2("x", 64, "y", 32);
    EXPECT_FAIL("overlap reversed", &b, VISVM_ERR_FORMAT, "overlap");
    T2("x", 0, "y", 0);
    EXPECT_FAIL("same offset", &b, VISVM_ERR_FORMAT, "overlap");
    T2("x", 64, "y", 0);
    g = open_ok(b.v, b.n, "disjoint, out of order");
    if (g) {
        const uint8_t *d0 = vv_gguf_find_tensor(g, "y")->data;
        CHECK((const uint8_t *)vv_gguf_find_tensor(g, "x")->data == d0 + 64);
        CHECK(vv_gguf_tensor_offset(g, 0) == 64 && vv_gguf_tensor_offset(g, 1) == 0);
    }
    vv_gguf_close(g);
    // custom alignment applies to offsets and the data section
    b_hdr(&b, 3, 1, 1);
    b_kv_u32(&b, "general.alignment", 64);
    b_tinfo(&b, "t", 1, ne16, VV_TYPE_F32, 32);
    b_pad(&b, 64);
    b_zeros(&b, 128);
    EXPECT_FAIL("offset misaligned for 64", &b, VISVM_ERR_FORMAT, "alignment 64");
    b_hdr(&b, 3, 1, 1);
    b_kv_u32(&b, "general.alignment", 64);
    b_tinfo(&b, "t", 1, ne16, VV_TYPE_F32, 64);
    b_pad(&b, 64);
    size_t ds = b.n;
    b_zeros(&b, 128);
    g = open_ok(b.v, b.n, "alignment 64");
    CHECK(g && vv_gguf_alignment(g) == 64 && vv_gguf_data_offset(g) == ds);
    vv_gguf_close(g);

    // file errors
    vv_error e = {0};
    g = (vv_gguf *)&g;
    CHECK(vv_gguf_open("/nonexistent/x.gguf", &g, &e) == VISVM_ERR_IO && g == NULL && strstr(e.msg, "x.gguf"));
    CHECK(vv_gguf_open_mem(NULL, 10, &g, &e) == VISVM_ERR_INVALID);
    vv_buf_free(&b);
}

// Deterministic mutation fuzz: any result is fine, crashes and over-reads are not.
static void touch(const vv_gguf *g, uint64_t *sink) {
    for (int64_t i = 0; i < vv_gguf_n_kv(g); i++) {
        const char *key = vv_gguf_key(g, i);
        int64_t v;
        float f;
        bool b;
        const char *s;
        *sink += vv_gguf_get_i64(g, key, &v, NULL) == 0 ? (uint64_t)v : 1;
        *sink += vv_gguf_get_f32(g, key, &f, NULL) == 0 ? (uint64_t)(f == f) : 2;
        *sink += vv_gguf_get_bool(g, key, &b, NULL) == 0 ? b : 3;
        if (vv_gguf_get_str(g, key, &s, NULL) == 0) *sink += strlen(s);
        uint64_t n = vv_gguf_arr_n(g, i);
        if (vv_gguf_arr_type(g, i) == VV_GGUF_STRING) {
            for (uint64_t k = 0; k < n; k++) *sink += strlen(vv_gguf_arr_str_at(g, i, k, NULL));
        } else if (n > 0) {
            int64_t *iv = malloc(n * sizeof(int64_t));
            float *fv = malloc(n * sizeof(float));
            if (vv_gguf_get_arr_i64(g, key, iv, n, NULL) == 0) *sink += (uint64_t)iv[n - 1];
            if (vv_gguf_get_arr_f32(g, key, fv, n, NULL) == 0) *sink += (uint64_t)(fv[n - 1] == fv[n - 1]);
            free(iv);
            free(fv);
        }
    }
    for (int64_t i = 0; i < vv_gguf_n_tensors(g); i++) {
        const vv_tensor *t = vv_gguf_tensor(g, i);
        size_t nb = vv_tensor_nbytes(t);
        for (size_t k = 0; k < nb; k++) *sink += ((const uint8_t *)t->data)[k];
        *sink += strlen(t->name);
    }
}

static void test_fuzz(void) {
    size_t size = 0;
    uint8_t *base = small_file(&size);
    if (!base) return;
    vv_rng r;
    vv_rng_seed(&r, 20250220);
    static const uint64_t interesting[] = {0, 1, 2, 31, 32, 33, 63, 64, 255, 0x7fffffff, 0x80000000u, 0xffffffffu,
                                           (uint64_t)1 << 30, (uint64_t)1 << 31, INT64_MAX, UINT64_MAX};
    int n_ok = 0, n_err = 0, bad = 0;
    uint64_t sink = 0;
    for (int it = 0; it < 4000; it++) {
        size_t n = size;
        if (vv_rng_below(&r, 8) == 0) n = vv_rng_below(&r, (uint32_t)size); // sometimes truncate too
        uint8_t *p = malloc(n ? n : 1);
        memcpy(p, base, n);
        int muts = 1 + (int)vv_rng_below(&r, 4);
        for (int m = 0; m < muts && n > 0; m++) {
            size_t pos = vv_rng_below(&r, (uint32_t)n);
            switch (vv_rng_below(&r, 4)) {
            case 0: p[pos] = (uint8_t)vv_rng_u64(&r); break;
            case 1: p[pos] ^= (uint8_t)(1u << vv_rng_below(&r, 8)); break;
            case 2: p[pos] = vv_rng_below(&r, 2) ? 0xff : 0; break;
            default: {
                uint64_t v = interesting[vv_rng_below(&r, sizeof(interesting) / sizeof(interesting[0]))];
                size_t k = VV_MIN((size_t)8, n - pos);
                memcpy(p + pos, &v, k);
            }
            }
        }
        vv_gguf *g = NULL;
        vv_error e = {0};
        int rc = vv_gguf_open_mem(p, n, &g, &e);
        if (rc == VISVM_OK) {
            n_ok++;
            touch(g, &sink);
            vv_gguf_close(g);
        } else {
            n_err++;
            if (g != NULL || e.msg[0] == 0 || rc > 0) bad++;
        }
        free(p);
    }
    printf("fuzz: %d accepted, %d rejected (sink %" PRIu64 ")\n", n_ok, n_err, sink);
    CHECKF(bad == 0, "%d rejections without a message", bad);
    CHECK(n_ok > 100 && n_err > 100); // the fuzz exercises both paths
    free(base);
}

int main(void) {
    test_roundtrip();
    test_writer_errors();
    test_many_tensor_names();
    test_truncation();
    test_corrupt();
    test_fuzz();
    const char *gd = tc_golden_dir();
    if (gd) test_golden(gd);
    else printf("golden-file checks skipped\n");
    return tc_result("test_gguf");
}
