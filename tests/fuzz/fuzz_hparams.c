// fuzz_hparams.c - structured edits of valid models: the loaders' checks of
// hyper-parameters against each other and against the tensors, which random
// bytes rarely reach past the GGUF reader.
//
// Input: byte 0 picks the base model (the tiny llama of tiny.c in F32 / Q8_0 /
// Q4_0, or one of the shipped world models: the captioner's mmproj, the CLIP
// reward model, the value model's mmproj); then 10-byte records
// [index][op][8 value bytes], each one edit:
//   op 0-4  set key (an existing one, or one of k_extra) to u32 / i32 / f32 /
//           bool / a short string taken from the value bytes
//   op 5    drop the key
//   op 6-7  set it to an i32 / f32 array of 0-7 elements
//   op 8    tensor: reverse its dimensions (same element count)
//   op 9    tensor: drop it
//   op 10   tensor: shrink its last dimension
//   op 11   tensor: another element type whose data fits in the old bytes
// The edited model is written by our writer and goes through
// fz_exercise_gguf.
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "fuzz.h"
#include "tensor/tensor.h"

#ifndef VISVM_SOURCE_DIR
#define VISVM_SOURCE_DIR "."
#endif

static const char *k_extra[] = {
    "clip.vision.feature_layer", "clip.vision.image_grid_pinpoints", "clip.vision.mm_patch_merge_type",
    "clip.projector_type", "general.alignment", "llama.rope.dimension_count", "llama.attention.head_count_kv",
    "tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token", "tokenizer.ggml.padding_token_id",
    "tokenizer.ggml.unknown_token_id", "llama.vocab_size", "clip.vision.stem_count", "clip.vision.stem_width",
    "clip.text.pooling", "clip.vision.pooling", "tokenizer.ggml.add_space_prefix", "clip.has_text_encoder",
    "clip.has_llava_projector", "clip.use_gelu", "llama.rope.freq_base", "clip.logit_scale",
    "tokenizer.ggml.model", "general.architecture", "llama.context_length", "llama.expert_count"};
#define N_EXTRA (int)(sizeof(k_extra) / sizeof(k_extra[0]))

typedef struct {
    char *data;
    size_t size;
} base_t;
#define N_BASES 6
static base_t bases[N_BASES];

static void load_file(const char *rel, base_t *b) {
    char p[1024];
    vv_error e = {0};
    snprintf(p, sizeof(p), "%s/%s", VISVM_SOURCE_DIR, rel);
    if (vv_read_file(p, &b->data, &b->size, &e)) b->data = NULL; // absent: that base is skipped
}

static void init(void) {
    static bool done = false;
    if (done) return;
    done = true;
    bases[0].data = fz_tiny_llama(VV_TYPE_F32, &bases[0].size);
    bases[1].data = fz_tiny_llama(VV_TYPE_Q8_0, &bases[1].size);
    bases[2].data = fz_tiny_llama(VV_TYPE_Q4_0, &bases[2].size);
    load_file("models/world/vlm-mmproj.gguf", &bases[3]);
    load_file("models/world/clip.gguf", &bases[4]);
    load_file("models/world/value-mmproj.gguf", &bases[5]);
}

// Copies key i of src into w (any type).
static void copy_key(vv_gguf_writer *w, const vv_gguf *src, int64_t i) {
    const char *k = vv_gguf_key(src, i);
    vv_error e = {0};
    int t = vv_gguf_kv_type(src, i);
    if (t == VV_GGUF_STRING) {
        const char *s;
        if (!vv_gguf_get_str(src, k, &s, &e)) vv_gguf_set_str(w, k, s);
    } else if (t == VV_GGUF_ARRAY) {
        uint64_t n = vv_gguf_arr_n(src, i);
        int at = vv_gguf_arr_type(src, i);
        if (at == VV_GGUF_STRING) {
            const char **ss = malloc(sizeof(char *) * (n ? n : 1));
            if (!ss) return;
            for (uint64_t j = 0; j < n; j++) {
                size_t len;
                ss[j] = vv_gguf_arr_str_at(src, i, j, &len);
                if (!ss[j]) ss[j] = "";
            }
            vv_gguf_set_arr_str(w, k, ss, n);
            free(ss);
        } else {
            vv_gguf_set_arr(w, k, at, vv_gguf_arr_data(src, i), n);
        }
    } else if (t == VV_GGUF_FLOAT32 || t == VV_GGUF_FLOAT64) {
        float f;
        if (!vv_gguf_get_f32(src, k, &f, &e)) vv_gguf_set_f32(w, k, f);
    } else if (t == VV_GGUF_BOOL) {
        bool b;
        if (!vv_gguf_get_bool(src, k, &b, &e)) vv_gguf_set_bool(w, k, b);
    } else {
        int64_t v;
        if (vv_gguf_get_i64(src, k, &v, &e)) return;
        switch (t) {
        case VV_GGUF_UINT8: vv_gguf_set_u8(w, k, (uint8_t)v); break;
        case VV_GGUF_INT8: vv_gguf_set_i8(w, k, (int8_t)v); break;
        case VV_GGUF_UINT16: vv_gguf_set_u16(w, k, (uint16_t)v); break;
        case VV_GGUF_INT16: vv_gguf_set_i16(w, k, (int16_t)v); break;
        case VV_GGUF_UINT32: vv_gguf_set_u32(w, k, (uint32_t)v); break;
        case VV_GGUF_INT32: vv_gguf_set_i32(w, k, (int32_t)v); break;
        case VV_GGUF_UINT64: vv_gguf_set_u64(w, k, (uint64_t)v); break;
        default: vv_gguf_set_i64(w, k, v); break;
        }
    }
}

#define MAX_EDITS 16
typedef struct {
    uint8_t idx, op;
    uint8_t v[8];
} edit_t;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init();
    if (size < 1) return 0;
    const base_t *b = &bases[data[0] % N_BASES];
    if (!b->data) return 0; // a shipped model absent (source tree moved): nothing to edit
    edit_t ed[MAX_EDITS];
    int ne = 0;
    for (size_t p = 1; p + 10 <= size && ne < MAX_EDITS; p += 10, ne++) memcpy(&ed[ne], data + p, 10);

    vv_gguf *src = NULL;
    vv_error e = {0};
    if (vv_gguf_open_mem(b->data, b->size, &src, &e)) return 0;
    const int64_t n_kv = vv_gguf_n_kv(src), n_t = vv_gguf_n_tensors(src);
    vv_gguf_writer *w = vv_gguf_writer_create();
    // keys: copy all except dropped ones, then apply the sets in order
    for (int64_t i = 0; i < n_kv; i++) {
        bool drop = false;
        for (int j = 0; j < ne; j++) drop |= ed[j].op == 5 && ed[j].idx % (n_kv + N_EXTRA) == i;
        if (!drop) copy_key(w, src, i);
    }
    for (int j = 0; j < ne; j++) {
        const edit_t *x = &ed[j];
        if (x->op > 7 || x->op == 5) continue;
        const int64_t ki = x->idx % (n_kv + N_EXTRA);
        const char *k = ki < n_kv ? vv_gguf_key(src, ki) : k_extra[ki - n_kv];
        uint32_t u;
        float f;
        memcpy(&u, x->v, 4);
        memcpy(&f, x->v, 4);
        switch (x->op) {
        case 0: vv_gguf_set_u32(w, k, u); break;
        case 1: vv_gguf_set_i32(w, k, (int32_t)u); break;
        case 2: vv_gguf_set_f32(w, k, f); break;
        case 3: vv_gguf_set_bool(w, k, x->v[0] & 1); break;
        case 4: {
            char s[9];
            memcpy(s, x->v, 8);
            s[8] = 0;
            vv_gguf_set_str(w, k, s);
            break;
        }
        case 6: {
            int32_t a[7];
            const int n = x->v[0] % 8;
            for (int i = 0; i < n; i++) a[i] = (int8_t)x->v[1 + i] * (x->v[0] >> 3 & 1 ? 16 : 1);
            vv_gguf_set_arr(w, k, VV_GGUF_INT32, a, (uint64_t)n);
            break;
        }
        case 7: {
            float a[7];
            const int n = x->v[0] % 8;
            for (int i = 0; i < n; i++) a[i] = (float)(int8_t)x->v[1 + i] / 32.0f;
            vv_gguf_set_arr(w, k, VV_GGUF_FLOAT32, a, (uint64_t)n);
            break;
        }
        }
    }
    // tensors
    for (int64_t i = 0; i < n_t; i++) {
        const vv_tensor *t = vv_gguf_tensor(src, i);
        int64_t dims[4];
        int nd = t->n_dims, type = t->type;
        memcpy(dims, t->ne, sizeof(int64_t) * (size_t)nd);
        bool drop = false;
        for (int j = 0; j < ne; j++) {
            const edit_t *x = &ed[j];
            if (x->op < 8 || x->op > 11 || x->idx % n_t != i) continue;
            if (x->op == 8) {
                for (int a = 0; a < nd / 2; a++) {
                    int64_t tmp = dims[a];
                    dims[a] = dims[nd - 1 - a];
                    dims[nd - 1 - a] = tmp;
                }
            } else if (x->op == 9) {
                drop = true;
            } else if (x->op == 10) {
                dims[nd - 1] = dims[nd - 1] > 1 ? 1 + x->v[0] % dims[nd - 1] : 1;
            } else {
                static const int types[] = {VV_TYPE_F32, VV_TYPE_F16, VV_TYPE_Q8_0, VV_TYPE_Q4_0, VV_TYPE_BF16};
                type = types[x->v[0] % 5];
            }
        }
        if (drop) continue;
        // the writer reads the data for the edited shape: only edits that fit the old bytes
        size_t bytes = vv_row_size(type, dims[0]);
        for (int a = 1; a < nd; a++) bytes *= (size_t)dims[a];
        if (bytes == 0 || bytes > vv_tensor_nbytes(t)) {
            type = t->type;
            memcpy(dims, t->ne, sizeof(int64_t) * (size_t)nd);
        }
        vv_gguf_add_tensor(w, t->name, type, nd, dims, t->data);
    }
    void *mem = NULL;
    size_t msize = 0;
    if (!vv_gguf_writer_write_mem(w, &mem, &msize, &e)) fz_exercise_gguf(mem, msize);
    free(mem);
    vv_gguf_writer_free(w);
    vv_gguf_close(src);
    return 0;
}
