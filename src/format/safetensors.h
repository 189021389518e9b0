// safetensors.h - reader for Hugging Face safetensors files and sharded
// checkpoints, plus a small writer (tests, tools).
//
// File layout: u64 little-endian N (header length), N bytes of UTF-8 JSON
// {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
//  "__metadata__": {"key": "string", ...}} (optionally padded with spaces),
// then the byte buffer; offsets are relative to its start (8 + N).
//
// Safety rules enforced at open (those of the safetensors 0.4 crate, each
// reported with a message naming the tensor and the numbers involved):
//  - 2 <= N <= VV_ST_MAX_HEADER (100 MB) and 8 + N <= file size;
//  - the header is one JSON object (trailing spaces allowed), every tensor entry
//    has a known dtype, a shape of non-negative integers and two data offsets;
//    no duplicate names;
//  - begin <= end, product(shape) * dtype size == end - begin (overflow-checked);
//  - sorted by offset the ranges are contiguous: no overlap and no gap, the
//    first starts at 0 and the last ends exactly at the end of the file.
// Sharded checkpoints: "model.safetensors.index.json" {"metadata": {...},
// "weight_map": {name: shard file}}; every listed tensor must be in its shard,
// names must be unique across shards, shard names are plain file names.
//
// Data stays in the file mapping (never copied), except tensors whose start is
// not aligned to their element size, which are copied once into an aligned
// buffer so that typed loads are valid C.
#ifndef VV_SAFETENSORS_H
#define VV_SAFETENSORS_H

#include "../tensor/tensor.h"

#define VV_ST_MAX_HEADER ((uint64_t)100000000)
#define VV_ST_MAX_DIMS 8

enum vv_st_dtype {
    VV_ST_BOOL, VV_ST_U8, VV_ST_I8, VV_ST_F8_E5M2, VV_ST_F8_E4M3, VV_ST_I16, VV_ST_U16, VV_ST_F16, VV_ST_BF16,
    VV_ST_I32, VV_ST_U32, VV_ST_F32, VV_ST_F64, VV_ST_I64, VV_ST_U64, VV_ST_DTYPE_COUNT
};

const char *vv_st_dtype_name(int dtype);   // "F32"; "?" if unknown
int vv_st_dtype_from_name(const char *s);  // -1 if unknown
size_t vv_st_dtype_size(int dtype);        // bytes per element; 0 if unknown
// The vv_type of a dtype visvm can view as a vv_tensor (F32, F16, BF16, F64,
// I8, I16, I32, I64), else -1.
int vv_st_dtype_to_type(int dtype);

typedef struct vv_st_tensor {
    const char *name;
    int dtype;                     // enum vv_st_dtype
    int n_dims;
    int64_t shape[VV_ST_MAX_DIMS]; // numpy order: shape[n_dims-1] is contiguous
    const void *data;              // in the mapping (or an aligned copy)
    size_t nbytes;
    int shard;                     // index of the file it came from
    // Engine view (ne[0] innermost = shape[n_dims-1]); view.type < 0 when the
    // dtype has no vv_type or n_dims > 4.
    vv_tensor view;
} vv_st_tensor;

typedef struct vv_safetensors vv_safetensors;

// path: a .safetensors file, a model.safetensors.index.json, or a directory
// holding either (the index is preferred, else model.safetensors).
int vv_st_open(const char *path, vv_safetensors **out, vv_error *e);
// Parses an in-memory file image (not copied: buf must outlive the handle).
int vv_st_open_mem(const void *buf, size_t size, vv_safetensors **out, vv_error *e);
void vv_st_close(vv_safetensors *st); // NULL ok

int64_t vv_st_n_tensors(const vv_safetensors *st);
const vv_st_tensor *vv_st_tensor_at(const vv_safetensors *st, int64_t i); // sorted by name
const vv_st_tensor *vv_st_find(const vv_safetensors *st, const char *name); // NULL if absent
int vv_st_n_shards(const vv_safetensors *st);
// __metadata__ string of the first shard that has the key, else NULL.
const char *vv_st_metadata(const vv_safetensors *st, const char *key);
size_t vv_st_total_bytes(const vv_safetensors *st); // sum of tensor bytes

// Converts a numeric tensor (any float/int dtype except F8) to f32; n must equal
// its element count.
int vv_st_to_f32(const vv_st_tensor *t, float *out, int64_t n, vv_error *e);
int64_t vv_st_nelements(const vv_st_tensor *t);

// ---------------------------------------------------------------------------
// Writer: tensors in the given order, data contiguous, header padded with
// spaces to a multiple of 8, "__metadata__": {"format": "pt"}.
typedef struct vv_st_wtensor {
    const char *name;
    int dtype;
    int n_dims;
    const int64_t *shape;
    const void *data; // product(shape) * dtype size bytes
} vv_st_wtensor;
int vv_st_write_mem(const vv_st_wtensor *ts, int n, void **out, size_t *size, vv_error *e); // malloc'd
int vv_st_write_file(const char *path, const vv_st_wtensor *ts, int n, vv_error *e);       // atomic

#endif
