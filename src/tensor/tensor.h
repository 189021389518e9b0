// tensor.h - tensor element types (GGUF/ggml ids) and the tensor view struct.
#ifndef VV_TENSOR_H
#define VV_TENSOR_H

#include "../base/base.h"

// ggml type ids as stored in GGUF files (stable).
enum vv_type {
    VV_TYPE_F32 = 0,
    VV_TYPE_F16 = 1,
    VV_TYPE_Q4_0 = 2,
    VV_TYPE_Q4_1 = 3,
    VV_TYPE_Q5_0 = 6,
    VV_TYPE_Q5_1 = 7,
    VV_TYPE_Q8_0 = 8,
    VV_TYPE_Q8_1 = 9,
    VV_TYPE_Q2_K = 10,
    VV_TYPE_Q3_K = 11,
    VV_TYPE_Q4_K = 12,
    VV_TYPE_Q5_K = 13,
    VV_TYPE_Q6_K = 14,
    VV_TYPE_Q8_K = 15,
    VV_TYPE_I8 = 24,
    VV_TYPE_I16 = 25,
    VV_TYPE_I32 = 26,
    VV_TYPE_I64 = 27,
    VV_TYPE_F64 = 28,
    VV_TYPE_BF16 = 30,
    VV_TYPE_COUNT = 43
};

typedef struct vv_type_info {
    const char *name;  // "q4_0"; NULL for unknown / retired ids
    int blck;          // elements per block
    size_t type_size;  // bytes per block
    bool compute;      // visvm can dequantize and multiply with this type
} vv_type_info;

// Returns NULL for ids outside [0, VV_TYPE_COUNT) or retired/unknown ids.
const vv_type_info *vv_type_get(int type);
const char *vv_type_name(int type); // "?" if unknown
// Parses "f32", "f16", "bf16", "q8_0", "q4_0", "q4_k", "q6_k" (case-insensitive); -1 if unknown.
int vv_type_from_name(const char *name);
// Bytes of n elements (n must be a multiple of the block size; returns 0 otherwise).
size_t vv_row_size(int type, int64_t n);

// A tensor view. Data usually points into an mmap'd model file.
// ne[0] is the innermost (contiguous) dimension, as in ggml; nb[] are byte strides.
typedef struct vv_tensor {
    const char *name;
    int type;
    int n_dims;
    int64_t ne[4];
    size_t nb[4];
    void *data;
    void *repacked; // NULL, or the same matrix in the best SIMD level's load-time layout
                    // (vv_matmul_repack; owned by whoever repacked it)
} vv_tensor;

int64_t vv_tensor_nelements(const vv_tensor *t);
size_t vv_tensor_nbytes(const vv_tensor *t);
// Fills nb[] for a contiguous tensor of the given type and ne[].
void vv_tensor_set_strides(vv_tensor *t);

#endif
