// types.c - ggml type table (block sizes match ggml-common.h) and tensor helpers.
#include "tensor.h"

#include <strings.h>

// Sizes of every GGUF-stable type, so files with types visvm cannot compute
// still parse (and are refused later with a clear message).
static const vv_type_info g_types[VV_TYPE_COUNT] = {
    [VV_TYPE_F32] = {"f32", 1, 4, true},
    [VV_TYPE_F16] = {"f16", 1, 2, true},
    [VV_TYPE_Q4_0] = {"q4_0", 32, 18, true},
    [VV_TYPE_Q4_1] = {"q4_1", 32, 20, false},
    [VV_TYPE_Q5_0] = {"q5_0", 32, 22, false},
    [VV_TYPE_Q5_1] = {"q5_1", 32, 24, false},
    [VV_TYPE_Q8_0] = {"q8_0", 32, 34, true},
    [VV_TYPE_Q8_1] = {"q8_1", 32, 36, false},
    [VV_TYPE_Q2_K] = {"q2_k", 256, 84, false},
    [VV_TYPE_Q3_K] = {"q3_k", 256, 110, false},
    [VV_TYPE_Q4_K] = {"q4_k", 256, 144, true},
    [VV_TYPE_Q5_K] = {"q5_k", 256, 176, false},
    [VV_TYPE_Q6_K] = {"q6_k", 256, 210, true},
    [VV_TYPE_Q8_K] = {"q8_k", 256, 292, true},
    [16] = {"iq2_xxs", 256, 66, false},
    [17] = {"iq2_xs", 256, 74, false},
    [18] = {"iq3_xxs", 256, 98, false},
    [19] = {"iq1_s", 256, 50, false},
    [20] = {"iq4_nl", 32, 18, false},
    [21] = {"iq3_s", 256, 110, false},
    [22] = {"iq2_s", 256, 82, false},
    [23] = {"iq4_xs", 256, 136, false},
    [VV_TYPE_I8] = {"i8", 1, 1, false},
    [VV_TYPE_I16] = {"i16", 1, 2, false},
    [VV_TYPE_I32] = {"i32", 1, 4, false},
    [VV_TYPE_I64] = {"i64", 1, 8, false},
    [VV_TYPE_F64] = {"f64", 1, 8, false},
    [29] = {"iq1_m", 256, 56, false},
    [VV_TYPE_BF16] = {"bf16", 1, 2, true},
    [34] = {"tq1_0", 256, 54, false},
    [35] = {"tq2_0", 256, 66, false},
    [39] = {"mxfp4", 32, 17, false},
};

const vv_type_info *vv_type_get(int type) {
    if (type < 0 || type >= VV_TYPE_COUNT) return NULL;
    const vv_type_info *t = &g_types[type];
    return t->name ? t : NULL;
}

const char *vv_type_name(int type) {
    const vv_type_info *t = vv_type_get(type);
    return t ? t->name : "?";
}

int vv_type_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < VV_TYPE_COUNT; i++)
        if (g_types[i].name && strcasecmp(g_types[i].name, name) == 0) return i;
    return -1;
}

size_t vv_row_size(int type, int64_t n) {
    const vv_type_info *t = vv_type_get(type);
    if (!t || n < 0 || n % t->blck != 0) return 0;
    return (size_t)(n / t->blck) * t->type_size;
}

int64_t vv_tensor_nelements(const vv_tensor *t) { return t->ne[0] * t->ne[1] * t->ne[2] * t->ne[3]; }

size_t vv_tensor_nbytes(const vv_tensor *t) {
    return vv_row_size(t->type, t->ne[0]) * (size_t)(t->ne[1] * t->ne[2] * t->ne[3]);
}

void vv_tensor_set_strides(vv_tensor *t) {
    const vv_type_info *ti = vv_type_get(t->type);
    t->nb[0] = ti ? ti->type_size : 0;
    t->nb[1] = vv_row_size(t->type, t->ne[0]);
    t->nb[2] = t->nb[1] * (size_t)t->ne[1];
    t->nb[3] = t->nb[2] * (size_t)t->ne[2];
}
