// gguf.h - GGUF v2/v3 reader (mmap, fully bounds-checked) and writer.
//
// File layout (little-endian): magic "GGUF", u32 version, u64 n_tensors,
// u64 n_kv, n_kv x (string key, u32 type, value), n_tensors x (string name,
// u32 n_dims, u64 ne[n_dims], u32 type, u64 offset), padding to the alignment
// (general.alignment, default 32), tensor data. Strings are u64 length + bytes.
// (v2 uses the same widths as v3; v1 with u32 counts is rejected.)
//
// The reader never aborts: every malformed input returns an error that names
// the problem (bad magic, truncated, huge counts, overflowing dims, misaligned
// or overlapping offsets, unknown types, duplicate keys/tensors, ...).
// Tensor data may lie in any order as long as offsets are aligned and tensors
// do not overlap (llama.cpp also requires offsets to be the running sum of the
// padded sizes in info order; the writer always produces that layout).
//
// Key naming conventions (GGUF spec + llama.cpp's writers):
//  - keys are ASCII, dot-separated lower_snake_case: "<namespace>.<name>";
//    "general.*" is common to all files (general.architecture, general.name,
//    general.alignment (u32), general.file_type, general.quantization_version);
//  - model keys are prefixed with the architecture: "llama.embedding_length",
//    "llama.attention.head_count_kv", "clip.vision.image_size", ...;
//  - tokenizer keys live under "tokenizer.ggml.*" (tokens, scores, token_type,
//    bos_token_id, ...) plus "tokenizer.chat_template";
//  - counts and ids are usually u32 but any integer width may appear (Python
//    ints in arrays become i32), so read them with the integer getters below,
//    which accept every width; floats are f32 (sometimes f64).
// Tensor names follow "blk.<i>.attn_q.weight" (text) / "v.blk.<i>.ln1.bias",
// "mm.0.weight" (vision); ne[0] is the innermost dimension (reverse of numpy).
#ifndef VV_GGUF_H
#define VV_GGUF_H

#include "../tensor/tensor.h"

enum vv_gguf_type {
    VV_GGUF_UINT8 = 0,
    VV_GGUF_INT8 = 1,
    VV_GGUF_UINT16 = 2,
    VV_GGUF_INT16 = 3,
    VV_GGUF_UINT32 = 4,
    VV_GGUF_INT32 = 5,
    VV_GGUF_FLOAT32 = 6,
    VV_GGUF_BOOL = 7,
    VV_GGUF_STRING = 8,
    VV_GGUF_ARRAY = 9,
    VV_GGUF_UINT64 = 10,
    VV_GGUF_INT64 = 11,
    VV_GGUF_FLOAT64 = 12,
    VV_GGUF_TYPE_COUNT = 13
};

const char *vv_gguf_type_name(int type);

// ---------------------------------------------------------------------------
// Reader
typedef struct vv_gguf vv_gguf;

// Opens and validates a file (mmap). On error *out is NULL and e says why.
int vv_gguf_open(const char *path, vv_gguf **out, vv_error *e);
// Parses an in-memory image (not copied: buf must outlive the handle).
int vv_gguf_open_mem(const void *buf, size_t size, vv_gguf **out, vv_error *e);
void vv_gguf_close(vv_gguf *g); // NULL ok

uint32_t vv_gguf_version(const vv_gguf *g);
size_t vv_gguf_alignment(const vv_gguf *g);
// Start of the tensor data section in the file (aligned end of the header; for
// files without tensors it may lie past the end of a file written unpadded).
size_t vv_gguf_data_offset(const vv_gguf *g);
const char *vv_gguf_path(const vv_gguf *g);   // "" for memory images

// Key/value metadata.
int64_t vv_gguf_n_kv(const vv_gguf *g);
int64_t vv_gguf_find_key(const vv_gguf *g, const char *key); // index or -1
const char *vv_gguf_key(const vv_gguf *g, int64_t idx);
int vv_gguf_kv_type(const vv_gguf *g, int64_t idx);      // VV_GGUF_* of the value
int vv_gguf_arr_type(const vv_gguf *g, int64_t idx);     // element type if ARRAY, else -1
uint64_t vv_gguf_arr_n(const vv_gguf *g, int64_t idx);   // element count if ARRAY, else 0
// Fast index-based access (no key lookup; NULL on a wrong type or index).
// Raw little-endian elements of a numeric array (may be unaligned: memcpy them).
const void *vv_gguf_arr_data(const vv_gguf *g, int64_t idx);
// String array element i (NUL-terminated copy owned by the handle), O(1).
const char *vv_gguf_arr_str_at(const vv_gguf *g, int64_t idx, uint64_t i, size_t *len);
// Value of a STRING key (NUL-terminated copy owned by the handle).
const char *vv_gguf_str_at(const vv_gguf *g, int64_t idx, size_t *len);

// Typed getters by key. They return VISVM_OK, VISVM_ERR_NOT_FOUND (missing
// key) or VISVM_ERR_FORMAT (wrong type or value out of range), with a message.
// Integer getters accept any integer width (and bool) and range-check.
int vv_gguf_get_i64(const vv_gguf *g, const char *key, int64_t *out, vv_error *e);
int vv_gguf_get_u32(const vv_gguf *g, const char *key, uint32_t *out, vv_error *e);
int vv_gguf_get_i32(const vv_gguf *g, const char *key, int32_t *out, vv_error *e);
// Float getter accepts FLOAT32, FLOAT64 and integers.
int vv_gguf_get_f32(const vv_gguf *g, const char *key, float *out, vv_error *e);
// Bool getter accepts BOOL and integers holding 0 or 1.
int vv_gguf_get_bool(const vv_gguf *g, const char *key, bool *out, vv_error *e);
// Returns a NUL-terminated copy owned by the handle.
int vv_gguf_get_str(const vv_gguf *g, const char *key, const char **out, vv_error *e);
// Variants with a default for missing keys (a present key of the wrong type is still an error).
int vv_gguf_get_u32_def(const vv_gguf *g, const char *key, uint32_t def, uint32_t *out, vv_error *e);
int vv_gguf_get_f32_def(const vv_gguf *g, const char *key, float def, float *out, vv_error *e);
int vv_gguf_get_bool_def(const vv_gguf *g, const char *key, bool def, bool *out, vv_error *e);

// Arrays by key. n is the element count. Element getters check the index
// (VISVM_ERR_RANGE when i >= n).
int vv_gguf_get_arr_n(const vv_gguf *g, const char *key, uint64_t *n, vv_error *e);
// Copies the whole array: n_out must equal its element count (VISVM_ERR_FORMAT
// naming both counts otherwise). Integer arrays of any integer width (or bool;
// u64 values above INT64_MAX are an error); float arrays of f32/f64 (integer
// arrays are converted too).
int vv_gguf_get_arr_i64(const vv_gguf *g, const char *key, int64_t *out, uint64_t n_out, vv_error *e);
int vv_gguf_get_arr_f32(const vv_gguf *g, const char *key, float *out, uint64_t n_out, vv_error *e);
// String array element i: NUL-terminated copy owned by the handle, and its byte length.
int vv_gguf_get_arr_str(const vv_gguf *g, const char *key, uint64_t i, const char **out, size_t *len,
                        vv_error *e);

// Tensors, built at open: name, type, n_dims, ne[] (missing dims = 1), nb[]
// (contiguous strides), data pointing into the mapping (read-only memory:
// never write through it). Valid until vv_gguf_close.
int64_t vv_gguf_n_tensors(const vv_gguf *g);
const vv_tensor *vv_gguf_tensor(const vv_gguf *g, int64_t i);
const vv_tensor *vv_gguf_find_tensor(const vv_gguf *g, const char *name); // NULL if absent
// Repacks the listed matrices for the SIMD tile kernels (vv_matmul_repack_into)
// into one buffer advised as transparent huge pages (a batch of candidates
// streams them with fewer TLB misses; one buffer wastes at most one partial
// huge page, per-matrix buffers one each), and drops the raw bytes' resident
// pages when they come from the mapped file (read back on demand);
// vv_gguf_close frees the buffer. VISVM_OK as a no-op where nothing applies.
// Once per file.
int vv_gguf_repack_tensors(vv_gguf *g, const vv_tensor *const *ts, int n);
size_t vv_gguf_tensor_offset(const vv_gguf *g, int64_t i); // offset within the data section

// ---------------------------------------------------------------------------
// Writer. Keys and tensors are written in insertion order. Setting an
// existing key replaces its value. Tensor data is referenced, not copied,
// until vv_gguf_writer_write() (keep it alive); tensors are padded to the
// alignment. Output goes to a temporary file renamed into place on success.
typedef struct vv_gguf_writer vv_gguf_writer;

// Setters and add_tensor return VISVM_ERR_INVALID for bad arguments (NULL or
// empty key, NULL string, unknown type, bad shape, duplicate tensor name) and
// VISVM_ERR_NOMEM; the reason is kept in vv_gguf_writer_error(w).
vv_gguf_writer *vv_gguf_writer_create(void); // NULL if out of memory
void vv_gguf_writer_free(vv_gguf_writer *w); // NULL ok
const char *vv_gguf_writer_error(const vv_gguf_writer *w); // last error message ("" if none)
// Version 3 by default; 2 is also accepted (same layout).
int vv_gguf_writer_set_version(vv_gguf_writer *w, uint32_t version);

int vv_gguf_set_u8(vv_gguf_writer *w, const char *key, uint8_t v);
int vv_gguf_set_i8(vv_gguf_writer *w, const char *key, int8_t v);
int vv_gguf_set_u16(vv_gguf_writer *w, const char *key, uint16_t v);
int vv_gguf_set_i16(vv_gguf_writer *w, const char *key, int16_t v);
int vv_gguf_set_u32(vv_gguf_writer *w, const char *key, uint32_t v);
int vv_gguf_set_i32(vv_gguf_writer *w, const char *key, int32_t v);
int vv_gguf_set_u64(vv_gguf_writer *w, const char *key, uint64_t v);
int vv_gguf_set_i64(vv_gguf_writer *w, const char *key, int64_t v);
int vv_gguf_set_f32(vv_gguf_writer *w, const char *key, float v);
int vv_gguf_set_f64(vv_gguf_writer *w, const char *key, double v);
int vv_gguf_set_bool(vv_gguf_writer *w, const char *key, bool v);
int vv_gguf_set_str(vv_gguf_writer *w, const char *key, const char *v);
// Array of fixed-size elements (elem_type not STRING/ARRAY); data is copied.
int vv_gguf_set_arr(vv_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n);
int vv_gguf_set_arr_str(vv_gguf_writer *w, const char *key, const char *const *strs, uint64_t n);
// Copies every key/value of a reader (used when converting files).
int vv_gguf_copy_kv(vv_gguf_writer *w, const vv_gguf *src);

// ne has n_dims entries (ne[0] innermost). data must hold vv_row_size(type, ne[0]) * ne[1] * ... bytes.
int vv_gguf_add_tensor(vv_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                       const void *data);
// general.alignment, when set, must be a u32 nonzero power of two (else VISVM_ERR_INVALID).
int vv_gguf_writer_write(vv_gguf_writer *w, const char *path, vv_error *e);
// Serialises to memory (malloc'd; free with free()).
int vv_gguf_writer_write_mem(vv_gguf_writer *w, void **out, size_t *size, vv_error *e);

#endif
