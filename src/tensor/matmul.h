// matmul.h - matrix products with weights in any compute type.
//
// Convention (as ggml and the golden README): a weight W with ne = [n_in, n_out]
// stores row j (output j) contiguously over its n_in inputs, and
//   y[t][j] = sum_i W[j][i] * x[t][i]      for t < n_tok, j < n_out.
// x is f32 [n_tok, n_in] (row stride n_in), y is f32 [n_tok, n_out] (row stride ldy).
#ifndef VV_MATMUL_H
#define VV_MATMUL_H

#include "../base/threadpool.h"
#include "quants.h"

// Scratch for converted activations; grows on demand, reused across calls.
typedef struct vv_wbuf {
    void *data;
    size_t size;
} vv_wbuf;
void vv_wbuf_free(vv_wbuf *w);
int vv_wbuf_reserve(vv_wbuf *w, size_t size);

// y = x W^T. Converts x to W's vec_dot_type once (into ws; ws may be NULL for
// a one-off call), then splits the output rows over the pool's threads (pool
// may be NULL: single thread). isa = VV_ISA_BEST normally; tests pass
// VV_ISA_SCALAR for the reference path (vec_dot per output).
//
// Results never depend on the thread count. On SIMD levels every output
// equals that level's vec_dot of the row and the converted token bit for bit,
// so a batch gives exactly the per-token results. Exceptions: F32 / F16 /
// BF16 weights with n_tok >= 256 (prefill), which use OpenBLAS sgemm on
// activations rounded through the vec_dot_type (same products, different
// summation order); and repacked F16 matrices (vv_matmul_repack), whose
// panels sum each (row, token) in one FMA chain over the inputs: the same
// result at every batch size and thread count, but not vec_dot's. Returns VISVM_ERR_UNSUPPORTED for types without kernels,
// VISVM_ERR_INVALID for bad shapes / pointers (n_in not a multiple of the
// block sizes, ldy < n_out, a W with ne[2] or ne[3] != 1), VISVM_ERR_RANGE for
// dimensions beyond INT32_MAX, VISVM_ERR_NOMEM if ws cannot grow.
int vv_matmul(vv_pool *pool, const vv_tensor *W, const float *x, int64_t n_tok, float *y, int64_t ldy,
              vv_wbuf *ws, int isa);

// Same with W given as raw pointer + type + shape (for tests and callers
// without a vv_tensor).
int vv_matmul_raw(vv_pool *pool, int type, const void *W, int64_t n_in, int64_t n_out, const float *x,
                  int64_t n_tok, float *y, int64_t ldy, vv_wbuf *ws, int isa);

// Rewrites a Q4_0 / Q8_0 matrix (n_in a multiple of 512, contiguous rows)
// once into the layout the best SIMD level's tile kernel reads without
// shuffles (AVX-512: the per-group transposes done at load instead of per
// token), stored in W->repacked (64-byte aligned, as many bytes as the raw
// data); vv_matmul then reads it at VV_ISA_BEST, with bit-identical results.
// AVX-512 also repacks F16 matrices with n_in >= 1024 and n_out a multiple of
// 32 into 32-row panels (results within float rounding of the raw path, see
// above). A no-op (VISVM_OK, repacked stays NULL) for other types, shapes or CPUs.
// The raw data stays valid and is still used by vv_get_row and other ISAs.
int vv_matmul_repack(vv_pool *pool, vv_tensor *W);
void vv_matmul_repack_free(vv_tensor *W); // frees W->repacked (NULL ok), sets it NULL
// The same into caller memory (64-byte aligned, vv_matmul_repack_size(W)
// bytes; the caller owns it): lets a model place all its repacked matrices in
// one arena. Size 0: nothing to repack (type, shape, CPU, or done already).
size_t vv_matmul_repack_size(const vv_tensor *W);
int vv_matmul_repack_into(vv_pool *pool, vv_tensor *W, void *dst);
// Copies row `row` of a 2-D weight (any compute type) to f32 (embedding lookup).
// VISVM_ERR_RANGE if row is outside [0, ne[1]).
int vv_get_row(const vv_tensor *W, int64_t row, float *out);

#endif
