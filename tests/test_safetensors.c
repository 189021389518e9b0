// test_safetensors.c - safetensors reader: round trips through the writer
// (single file, sharded directory with index), dtype conversions, engine views,
// and corrupt files that must fail with a message naming the problem.
#include <stdint.h>
#include <unistd.h>

#include "format/safetensors.h"
#include "tcheck.h"

// File image from a raw header string and n_data bytes of data (0x11 filled).
static uint8_t *mk(const char *json, uint64_t hlen_override, size_t n_data, size_t *size) {
    size_t hn = strlen(json);
    *size = 8 + hn + n_data;
    uint8_t *b = malloc(*size);
    uint64_t h = hlen_override ? hlen_override : hn;
    memcpy(b, &h, 8);
    memcpy(b + 8, json, hn);
    memset(b + 8 + hn, 0x11, n_data);
    return b;
}

// Opens an image expecting failure with `code` and `needle` in the message.
static void expect_fail(const char *what, const uint8_t *buf, size_t size, int code, const char *needle) {
    vv_safetensors *st = NULL;
    vv_error e = {0};
    int rc = vv_st_open_mem(buf, size, &st, &e);
    CHECKF(rc == code, "%s: rc %d, expected %d (%s)", what, rc, code, e.msg);
    CHECKF(st == NULL, "%s: handle returned on error", what);
    CHECKF(strstr(e.msg, needle) != NULL, "%s: message '%s' lacks '%s'", what, e.msg, needle);
    vv_st_close(st);
}

static void corrupt_json(const char *what, const char *json, size_t n_data, int code, const char *needle) {
    size_t size;
    uint8_t *b = mk(json, 0, n_data, &size);
    expect_fail(what, b, size, code, needle);
    free(b);
}

static void test_round_trip(void) {
    float f32[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.125f, 1e-3f};
    uint16_t f16[4], bf16[4];
    float src16[4] = {0.5f, -1.0f, 65504.0f, 3.0f};
    for (int i = 0; i < 4; i++) {
        f16[i] = vv_fp32_to_fp16(src16[i]);
        bf16[i] = vv_fp32_to_bf16(src16[i]);
    }
    int64_t i64[3] = {-5, 0, 1LL << 40};
    uint8_t u8[5] = {0, 1, 127, 200, 255};
    int32_t i32[2] = {-7, 7};
    int64_t s_f32[2] = {2, 3}, s_16[2] = {2, 2}, s_i64[1] = {3}, s_u8[1] = {5}, s_i32[2] = {1, 2}, s_empty[2] = {0, 4};
    // odd-sized u8 first so that later tensors start misaligned
    vv_st_wtensor ts[] = {
        {"u8", VV_ST_U8, 1, s_u8, u8},           {"a.weight", VV_ST_F32, 2, s_f32, f32},
        {"half", VV_ST_F16, 2, s_16, f16},        {"brain", VV_ST_BF16, 2, s_16, bf16},
        {"ids", VV_ST_I64, 1, s_i64, i64},        {"small", VV_ST_I32, 2, s_i32, i32},
        {"empty", VV_ST_F32, 2, s_empty, NULL},   {"scalar", VV_ST_F32, 0, NULL, f32 + 2},
    };
    const int nt = (int)(sizeof(ts) / sizeof(ts[0]));
    void *buf = NULL;
    size_t size = 0;
    vv_error e = {0};
    CHECK(vv_st_write_mem(ts, nt, &buf, &size, &e) == VISVM_OK);
    uint64_t hn;
    memcpy(&hn, buf, 8);
    CHECK(hn % 8 == 0);
    vv_safetensors *st = NULL;
    int rc = vv_st_open_mem(buf, size, &st, &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    if (!rc) {
        CHECK(vv_st_n_tensors(st) == nt);
        CHECK(vv_st_find(st, "missing") == NULL);
        CHECK(vv_st_metadata(st, "format") && !strcmp(vv_st_metadata(st, "format"), "pt"));
        const vv_st_tensor *a = vv_st_find(st, "a.weight");
        CHECK(a && a->dtype == VV_ST_F32 && a->n_dims == 2 && a->shape[0] == 2 && a->shape[1] == 3);
        if (a) {
            CHECK(a->view.type == VV_TYPE_F32 && a->view.ne[0] == 3 && a->view.ne[1] == 2 && a->view.ne[2] == 1);
            CHECK(((uintptr_t)a->data % 4) == 0); // aligned (copied if the file had it misaligned)
            CHECK(memcmp(a->data, f32, sizeof(f32)) == 0);
        }
        float out[8];
        const vv_st_tensor *h = vv_st_find(st, "half"), *b = vv_st_find(st, "brain");
        CHECK(h && vv_st_to_f32(h, out, 4, &e) == VISVM_OK && out[2] == 65504.0f && out[1] == -1.0f);
        CHECK(h && h->view.type == VV_TYPE_F16);
        CHECK(b && vv_st_to_f32(b, out, 4, &e) == VISVM_OK && out[0] == 0.5f && out[3] == 3.0f);
        CHECK(b && b->view.type == VV_TYPE_BF16);
        CHECK(b && vv_st_to_f32(b, out, 3, &e) == VISVM_ERR_INVALID); // wrong count
        const vv_st_tensor *ids = vv_st_find(st, "ids");
        CHECK(ids && ids->view.type == VV_TYPE_I64 && ids->nbytes == 24);
        if (ids) {
            int64_t v;
            memcpy(&v, (const uint8_t *)ids->data + 16, 8);
            CHECK(v == (1LL << 40));
        }
        const vv_st_tensor *u = vv_st_find(st, "u8");
        CHECK(u && u->view.type == -1 && u->nbytes == 5 && ((const uint8_t *)u->data)[3] == 200);
        CHECK(u && vv_st_to_f32(u, out, 5, &e) == VISVM_OK && out[4] == 255.0f);
        const vv_st_tensor *em = vv_st_find(st, "empty");
        CHECK(em && em->nbytes == 0 && vv_st_nelements(em) == 0);
        const vv_st_tensor *sc = vv_st_find(st, "scalar");
        CHECK(sc && sc->n_dims == 0 && sc->nbytes == 4 && vv_st_nelements(sc) == 1);
        CHECK(vv_st_total_bytes(st) == 5 + 24 + 8 + 8 + 24 + 8 + 0 + 4);
        // sorted by name
        for (int64_t i = 1; i < vv_st_n_tensors(st); i++)
            CHECK(strcmp(vv_st_tensor_at(st, i - 1)->name, vv_st_tensor_at(st, i)->name) < 0);
    }
    vv_st_close(st);
    free(buf);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_sharded(void) {
    char dir[] = "/tmp/vv_st_testXXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(!"mkdtemp failed");
        return;
    }
    char p1[256], p2[256], pi[256], pm[256];
    snprintf(p1, sizeof(p1), "%s/model-00001-of-00002.safetensors", dir);
    snprintf(p2, sizeof(p2), "%s/model-00002-of-00002.safetensors", dir);
    snprintf(pi, sizeof(pi), "%s/model.safetensors.index.json", dir);
    float a[4] = {1, 2, 3, 4}, b[2] = {5, 6};
    int64_t sa[2] = {2, 2}, sb[1] = {2};
    vv_st_wtensor s1[] = {{"x.a", VV_ST_F32, 2, sa, a}}, s2[] = {{"x.b", VV_ST_F32, 1, sb, b}};
    vv_error e = {0};
    CHECK(vv_st_write_file(p1, s1, 1, &e) == VISVM_OK);
    CHECK(vv_st_write_file(p2, s2, 1, &e) == VISVM_OK);
    write_text(pi, "{\"metadata\":{\"total_size\":24},\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\","
                   "\"x.b\":\"model-00002-of-00002.safetensors\"}}");
    vv_safetensors *st = NULL;
    int rc = vv_st_open(dir, &st, &e);
    CHECKF(rc == VISVM_OK, "%s", e.msg);
    if (!rc) {
        CHECK(vv_st_n_shards(st) == 2 && vv_st_n_tensors(st) == 2);
        const vv_st_tensor *t = vv_st_find(st, "x.b");
        CHECK(t && t->shard == 1 && ((const float *)t->data)[1] == 6.0f);
    }
    vv_st_close(st);
    st = NULL;
    // the index names a tensor in the wrong shard
    write_text(pi, "{\"weight_map\":{\"x.a\":\"model-00002-of-00002.safetensors\","
                   "\"x.b\":\"model-00001-of-00002.safetensors\"}}");
    rc = vv_st_open(pi, &st, &e);
    CHECKF(rc == VISVM_ERR_FORMAT && strstr(e.msg, "listed in shard"), "%d %s", rc, e.msg);
    vv_st_close(st);
    st = NULL;
    // a listed tensor that no shard holds
    write_text(pi, "{\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\","
                   "\"x.b\":\"model-00002-of-00002.safetensors\",\"x.c\":\"model-00002-of-00002.safetensors\"}}");
    rc = vv_st_open(dir, &st, &e);
    CHECKF(rc == VISVM_ERR_FORMAT && strstr(e.msg, "'x.c'") && strstr(e.msg, "absent"), "%d %s", rc, e.msg);
    vv_st_close(st);
    st = NULL;
    // path traversal in a shard name
    write_text(pi, "{\"weight_map\":{\"x.a\":\"../evil.safetensors\"}}");
    rc = vv_st_open(dir, &st, &e);
    CHECKF(rc == VISVM_ERR_FORMAT && strstr(e.msg, "plain file name"), "%d %s", rc, e.msg);
    vv_st_close(st);
    st = NULL;
    // same tensor in two shards
    snprintf(pm, sizeof(pm), "%s/dup.safetensors", dir);
    vv_st_wtensor s3[] = {{"x.a", VV_ST_F32, 1, sb, b}};
    CHECK(vv_st_write_file(pm, s3, 1, &e) == VISVM_OK);
    write_text(pi, "{\"weight_map\":{\"x.a\":\"model-00001-of-00002.safetensors\",\"x.b\":\"dup.safetensors\"}}");
    rc = vv_st_open(dir, &st, &e);
    CHECKF(rc == VISVM_ERR_FORMAT && strstr(e.msg, "appears twice"), "%d %s", rc, e.msg);
    vv_st_close(st);
    st = NULL;
    // a missing shard file
    write_text(pi, "{\"weight_map\":{\"x.a\":\"nope.safetensors\"}}");
    rc = vv_st_open(dir, &st, &e);
    CHECKF(rc == VISVM_ERR_IO && strstr(e.msg, "nope.safetensors"), "%d %s", rc, e.msg);
    vv_st_close(st);
    st = NULL;
    // bad index JSON
    write_text(pi, "{\"weight_map\": [");
    rc = vv_st_open(dir, &st, &e);
    CHECKF(rc == VISVM_ERR_FORMAT && strstr(e.msg, "JSON"), "%d %s", rc, e.msg);
    vv_st_close(st);
    unlink(p1);
    unlink(p2);
    unlink(pi);
    unlink(pm);
    rmdir(dir);
    // a directory without checkpoints
    rc = vv_st_open("/tmp", &st, &e);
    CHECK(rc == VISVM_ERR_NOT_FOUND && st == NULL);
}

static void test_corrupt(void) {
    // header length beyond the file
    {
        size_t size;
        uint8_t *b = mk("{}", 1000, 0, &size);
        expect_fail("header past end", b, size, VISVM_ERR_FORMAT, "runs past the end");
        free(b);
        b = mk("{}", (uint64_t)1 << 40, 0, &size);
        expect_fail("huge header", b, size, VISVM_ERR_FORMAT, "exceeds the limit");
        free(b);
        b = mk("{}", 1, 0, &size);
        expect_fail("tiny header", b, size, VISVM_ERR_FORMAT, "too small");
        free(b);
        uint8_t four[4] = {1, 2, 3, 4};
        expect_fail("short file", four, 4, VISVM_ERR_FORMAT, "too small");
    }
    // header length pointing into the middle of the JSON
    {
        size_t size;
        const char *j = "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        uint8_t *b = mk(j, 10, 4, &size);
        expect_fail("header length too short", b, size, VISVM_ERR_FORMAT, "not valid JSON");
        free(b);
    }
    corrupt_json("bad JSON", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]", 4, VISVM_ERR_FORMAT,
                 "not valid JSON");
    corrupt_json("not an object", "[1, 2]  ", 0, VISVM_ERR_FORMAT, "does not start with '{'");
    corrupt_json("trailing garbage", "{} xx", 0, VISVM_ERR_FORMAT, "not valid JSON");
    corrupt_json("unknown dtype", "{\"a\":{\"dtype\":\"F12\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, VISVM_ERR_FORMAT,
                 "unknown dtype 'F12'");
    corrupt_json("wrong dtype size", "{\"a\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16,
                 VISVM_ERR_FORMAT, "shape x dtype size = 8 bytes (F16)");
    corrupt_json("overlap",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 12, VISVM_ERR_FORMAT, "overlap");
    corrupt_json("gap",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
                 12, VISVM_ERR_FORMAT, "not covered");
    corrupt_json("trailing bytes", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
                 VISVM_ERR_FORMAT, "trailing bytes");
    corrupt_json("truncated data", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10,
                 VISVM_ERR_FORMAT, "truncated");
    corrupt_json("reversed offsets", "{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4,
                 VISVM_ERR_FORMAT, "end before they begin");
    corrupt_json("negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
                 VISVM_ERR_FORMAT, "invalid or overflowing shape");
    corrupt_json("overflowing shape",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4,
                 VISVM_ERR_FORMAT, "invalid or overflowing shape");
    corrupt_json("fractional offset", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}", 4,
                 VISVM_ERR_FORMAT, "data_offsets");
    corrupt_json("missing field", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, VISVM_ERR_FORMAT,
                 "array shape");
    corrupt_json("metadata not strings", "{\"__metadata__\":{\"format\":1}}", 0, VISVM_ERR_FORMAT, "not a string");
    corrupt_json("duplicate name",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                 8, VISVM_ERR_FORMAT, "appears twice");
    // a valid minimal file still opens (header padded with spaces)
    {
        size_t size;
        uint8_t *b = mk("{\"a\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}    ", 0, 4, &size);
        vv_safetensors *st = NULL;
        vv_error e = {0};
        CHECKF(vv_st_open_mem(b, size, &st, &e) == VISVM_OK, "%s", e.msg);
        vv_st_close(st);
        free(b);
    }
    // every truncation of a valid file fails cleanly
    {
        float a[3] = {1, 2, 3};
        int64_t s[1] = {3};
        vv_st_wtensor t[] = {{"t", VV_ST_F32, 1, s, a}};
        void *buf = NULL;
        size_t size = 0;
        vv_error e = {0};
        CHECK(vv_st_write_mem(t, 1, &buf, &size, &e) == VISVM_OK);
        int bad = 0;
        for (size_t cut = 0; cut < size; cut++) {
            vv_safetensors *st = NULL;
            uint8_t *c = malloc(cut ? cut : 1);
            memcpy(c, buf, cut);
            if (vv_st_open_mem(c, cut, &st, &e) == VISVM_OK) bad++;
            vv_st_close(st);
            free(c);
        }
        CHECKF(bad == 0, "%d truncations opened", bad);
        free(buf);
    }
}

int main(void) {
    test_round_trip();
    test_sharded();
    test_corrupt();
    return tc_result("test_safetensors");
}
