// quants.h - block formats, (de)quantization and dot-product kernels.
//
// Weights stay in their storage type; activations are converted to the
// weight type's "vec_dot_type" before a product, as ggml does:
//   weight F32  -> activations F32
//   weight F16  -> activations F16
//   weight BF16 -> activations BF16
//   weight Q8_0, Q4_0 -> activations Q8_0
//   weight Q4_K, Q6_K -> activations Q8_K
// Every kernel has a plain scalar reference (quants_ref.c) and SIMD versions
// (quants_avx2.c, quants_avx512.c) with the same signature, chosen at run time
// and tested against the reference.
//
// Numerics: integer block dots are exact at every level; the float
// accumulation order differs between the scalar reference (ggml's generic
// order) and the SIMD levels, which agree with each other bit for bit (AVX2 ==
// AVX-512). Results are deterministic for a given level.
#ifndef VV_QUANTS_H
#define VV_QUANTS_H

#include "tensor.h"

#define VV_QK4_0 32
#define VV_QK8_0 32
#define VV_QK_K 256
#define VV_K_SCALE_SIZE 12

typedef struct { uint16_t d; uint8_t qs[VV_QK4_0 / 2]; } vv_block_q4_0;     // 18 bytes
typedef struct { uint16_t d; int8_t qs[VV_QK8_0]; } vv_block_q8_0;           // 34 bytes
typedef struct {
    uint16_t d;                        // super-block scale for quantized scales
    uint16_t dmin;                     // super-block scale for quantized mins
    uint8_t scales[VV_K_SCALE_SIZE];   // 8 x (6-bit scale, 6-bit min)
    uint8_t qs[VV_QK_K / 2];           // 4-bit quants
} vv_block_q4_K;                       // 144 bytes
typedef struct {
    uint8_t ql[VV_QK_K / 2];           // low 4 bits
    uint8_t qh[VV_QK_K / 4];           // high 2 bits
    int8_t scales[VV_QK_K / 16];       // 8-bit scales
    uint16_t d;                        // super-block scale
} vv_block_q6_K;                       // 210 bytes
typedef struct {
    float d;                           // delta
    int8_t qs[VV_QK_K];                // quants
    int16_t bsums[VV_QK_K / 16];       // sums of quants in groups of 16
} vv_block_q8_K;                       // 292 bytes

// Converts n values (multiple of the block size) of any compute type (and
// Q8_K) to f32, exactly as ggml's dequantize_row_*. Returns
// VISVM_ERR_UNSUPPORTED for other types, VISVM_ERR_INVALID for a bad n.
int vv_dequantize_row(int type, const void *src, float *dst, int64_t n);
// Quantizes n f32 values into `type` with ggml's reference quantizers
// (quantize_row_*_ref): F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K, Q8_K. Without
// an importance matrix these are what llama-quantize writes: quantizing the
// golden F16 model reproduces the --pure Q8_0/Q4_0/Q4_K/Q6_K files (and the
// default Q4_K_M mixture's tensors) byte for byte.
int vv_quantize_row(int type, const float *src, void *dst, int64_t n);
// The activation type used when multiplying by weights of `type` (-1 if unsupported).
int vv_vec_dot_type(int type);

// s = sum_i w[i] * a[i]; w in the weight type, a in its vec_dot_type; n is
// the element count (multiple of the block size).
typedef void (*vv_vec_dot_fn)(int64_t n, float *s, const void *w, const void *a);
// Converts an f32 activation row to the vec_dot_type (n multiple of its block size).
typedef void (*vv_from_float_fn)(const float *x, void *y, int64_t n);

// from_float is ggml-cpu's activation converter on x86, the one llama.cpp's
// reference logits were made with: F16 round-to-nearest-even; Q8_K =
// quantize_row_q8_K_ref; Q8_0 = the AVX2 quantize_row_q8_0 (d = amax/127 as
// fp16, q = round_half_even(x * (127/amax))), which differs from
// quantize_row_q8_0_ref (x * (1/d), rounded half away from zero) on rare ties.
// All levels produce the same bytes. vec_dot expects activations from a
// quantizer (Q8_0/Q8_K quants in [-127, 127]).
typedef struct vv_kernels {
    vv_vec_dot_fn vec_dot;       // NULL if the type cannot be multiplied
    vv_from_float_fn from_float; // converts activations to vec_dot_type
    int vec_dot_type;
} vv_kernels;

enum vv_isa { VV_ISA_SCALAR = 0, VV_ISA_AVX2 = 1, VV_ISA_AVX512 = 2, VV_ISA_BEST = 3 };
// Kernels for a weight type at a given instruction-set level; VV_ISA_BEST picks
// the fastest this CPU supports. Falls back to lower levels where a type has no
// specialised kernel. Returns NULL for unsupported types.
const vv_kernels *vv_get_kernels(int type, int isa);
// Highest ISA level this CPU (and this build) supports.
int vv_isa_best(void);
const char *vv_isa_name(int isa);

#endif
