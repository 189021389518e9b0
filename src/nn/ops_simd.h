// ops_simd.h - SIMD versions of hot f32 operations (ops_avx2.c, ops_avx512.c),
// same contract as their scalar references in ops.c; tests compare them.
#ifndef VV_OPS_SIMD_H
#define VV_OPS_SIMD_H

#include <stdint.h>

// Softmax of one row in place (entries equal to -INFINITY get 0; an all -INFINITY row gives zeros).
// exp is a Cephes-style polynomial (about 2 ulp on the range softmax uses), sums in float lanes.
void vv_softmax_ref(float *x, int64_t n);
#if defined(VISVM_HAVE_X86)
void vv_softmax_avx2(float *x, int64_t n);
void vv_softmax_avx512(float *x, int64_t n);
#endif

#endif
