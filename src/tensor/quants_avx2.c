// quants_avx2.c - AVX2 + FMA + F16C kernels: activation quantizers, vec_dot,
// activation packing and row x token tile kernels for matrix products.
//
// Float semantics shared with quants_avx512.c, so that both levels give
// bit-identical results (a 16-lane accumulator is a zmm there and a pair of
// ymm halves here, lo = lanes 0-7, hi = lanes 8-15; hsum16 = (lo + hi), then
// 8 -> 4 -> 2 -> 1):
//   F32/F16/BF16: accumulators A and B; chunk k of 32 values (zero-padded at
//     the end): A[l] = fma(w[32k+l], a[32k+l], A[l]), B[l] likewise for
//     32k+16+l; result hsum16(A + B).
//   Q4_0/Q8_0: blocks in groups of 16, lane p <-> block 16g+p (zero past the
//     end): acc[p] = fma(float(isum[p]), dw[p] * da[p], acc[p]) with isum the
//     exact integer block dot; result hsum16(acc).
//   Q4_K/Q6_K: blocks in value order, lanes 0-7 / 8-15 <-> the two halves of each
//     64-value chunk; per super-block, lane l holds the exact scaled int sum of
//     bytes 4l..4l+3 of the 4 chunks (Q6_K: minus 32 * sum(scale * bsum) in
//     lanes 0-7) and acc = fma(float(isum), dw * da, acc). Q4_K mins: per group
//     of 4 super-blocks, M[4k + l] = fma(float(m_2l bs_2l + m_2l+1 bs_2l+1 of
//     super-block k), dmin_k * da_k, M[4k + l]); at the end acc[0..3] -=
//     (M[0..3] + M[4..7]) + (M[8..11] + M[12..15]), then hsum16(acc).
// Integer sums are exact, so any method of computing them gives these floats.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <immintrin.h>
#include <string.h>

#include "kernels_internal.h"

#define VV_INLINE static inline __attribute__((always_inline))
// Small constant-trip loops must be unrolled so their arrays live in registers.
#define UNROLL _Pragma("GCC unroll 16")
#define TMAX 4 // tokens per pass (16 ymm registers)
// Software prefetch distance (bytes) for the streamed weight row (see quants_avx512.c).
#ifndef VV_PF_DIST
#define VV_PF_DIST 2048
#endif
VV_INLINE void pf_range(const void *p, size_t bytes) {
    if (VV_PF_DIST <= 0) return;
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + VV_PF_DIST + o, _MM_HINT_T0);
}

// ---------------------------------------------------------------------------
// Helpers.

VV_INLINE float hsum16_2(__m256 lo, __m256 hi) {
    __m256 t8 = _mm256_add_ps(lo, hi);
    __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
    __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    __m128 t1 = _mm_add_ss(t2, _mm_movehdup_ps(t2));
    return _mm_cvtss_f32(t1);
}

VV_INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }
VV_INLINE uint16_t f2h(float f) { return _cvtss_sh(f, 0); } // round to nearest even
VV_INLINE __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
VV_INLINE __m128i load128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }

// 8 int32: sums of the 4-byte groups of q * a, q unsigned (pair sums must fit int16), a signed.
VV_INLINE __m256i dot4_us(__m256i q, __m256i a) {
    return _mm256_madd_epi16(_mm256_maddubs_epi16(q, a), _mm256_set1_epi16(1));
}
// Same for two signed operands (a != -128, as ggml's sign trick).
VV_INLINE __m256i dot4_ss(__m256i w, __m256i a) { return dot4_us(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w)); }

// ---------------------------------------------------------------------------
// Activation quantizers (bit-identical to the scalar ones).

// One Q8_0 block as ggml-cpu's AVX2 quantize_row_q8_0; returns the fp16 scale.
VV_INLINE uint16_t q8_0_act_block(const float *x, int8_t *qs) {
    __m256 v0 = _mm256_loadu_ps(x), v1 = _mm256_loadu_ps(x + 8);
    __m256 v2 = _mm256_loadu_ps(x + 16), v3 = _mm256_loadu_ps(x + 24);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_andnot_ps(sign, v0);
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v1));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v2));
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, v3));
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    const float d = amax / 127.f;
    const float id = amax != 0.0f ? 127.f / amax : 0.0f;
    const __m256 mul = _mm256_set1_ps(id);
    __m256i i0 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v0, mul), _MM_FROUND_TO_NEAREST_INT));
    __m256i i1 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v1, mul), _MM_FROUND_TO_NEAREST_INT));
    __m256i i2 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v2, mul), _MM_FROUND_TO_NEAREST_INT));
    __m256i i3 = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v3, mul), _MM_FROUND_TO_NEAREST_INT));
    i0 = _mm256_packs_epi32(i0, i1);
    i2 = _mm256_packs_epi32(i2, i3);
    i0 = _mm256_packs_epi16(i0, i2);
    i0 = _mm256_permutevar8x32_epi32(i0, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)qs, i0);
    return f2h(d);
}

void vv_avx2_quant_q8_0_act(const float *x, void *vy, int64_t n) {
    vv_block_q8_0 *y = (vv_block_q8_0 *)vy;
    for (int64_t i = 0; i < n / VV_QK8_0; i++) y[i].d = q8_0_act_block(x + i * VV_QK8_0, y[i].qs);
}

// One Q8_K super-block (quantize_row_q8_K_ref): writes 256 quants and 16 bsums, returns d.
VV_INLINE float q8_K_block(const float *x, int8_t *qs, int16_t *bsums) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (int j = 0; j < VV_QK_K; j += 8) m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)));
    __m128 m4 = _mm_max_ps(_mm256_extractf128_ps(m, 1), _mm256_castps256_ps128(m));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const float amax = _mm_cvtss_f32(m4);
    if (!(amax > 0)) { // all zero (NaN input also lands here)
        memset(qs, 0, VV_QK_K);
        memset(bsums, 0, 16 * sizeof(int16_t));
        return 0.0f;
    }
    // the first element of largest magnitude gives the sign, as the scalar scan does
    float max = 0;
    const __m256 va = _mm256_set1_ps(amax);
    for (int j = 0; j < VV_QK_K; j += 8) {
        int msk = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + j)), va, _CMP_EQ_OQ));
        if (msk) {
            max = x[j + __builtin_ctz((unsigned)msk)];
            break;
        }
    }
    const float iscale = -127.f / max;
    const __m256 vs = _mm256_set1_ps(iscale);
    const __m256i m127 = _mm256_set1_epi32(127);
    const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    const __m256i x80 = _mm256_set1_epi8((char)0x80);
    for (int j = 0; j < VV_QK_K; j += 32) {
        __m256i i0 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j))), m127);
        __m256i i1 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 8))), m127);
        __m256i i2 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 16))), m127);
        __m256i i3 = _mm256_min_epi32(_mm256_cvtps_epi32(_mm256_mul_ps(vs, _mm256_loadu_ps(x + j + 24))), m127);
        i0 = _mm256_packs_epi32(i0, i1);
        i2 = _mm256_packs_epi32(i2, i3);
        i0 = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(i0, i2), perm);
        _mm256_storeu_si256((__m256i *)(qs + j), i0);
        // sums of 8 bytes via SAD on q + 128, minus 8 * 128 each
        __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(i0, x80), _mm256_setzero_si256());
        int64_t s[4];
        _mm256_storeu_si256((__m256i *)s, sad);
        bsums[j / 16 + 0] = (int16_t)(s[0] + s[1] - 2048);
        bsums[j / 16 + 1] = (int16_t)(s[2] + s[3] - 2048);
    }
    return 1 / iscale;
}

void vv_avx2_quant_q8_K(const float *x, void *vy, int64_t n) {
    vv_block_q8_K *y = (vv_block_q8_K *)vy;
    for (int64_t i = 0; i < n / VV_QK_K; i++) y[i].d = q8_K_block(x + i * VV_QK_K, y[i].qs, y[i].bsums);
}

void vv_avx2_quant_f16(const float *x, void *vy, int64_t n) {
    uint16_t *y = (uint16_t *)vy;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) y[i] = f2h(x[i]);
}

// ---------------------------------------------------------------------------
// Activation packing (layouts in kernels_internal.h). Shared with AVX-512.

// One Q8T record from 16 quantized blocks (qs[b], d[b]; missing blocks zero),
// transposed with the same 4 x 4 dword shuffles as the weights. Equal to
// vv_q8t_group (the scalar version used by vec_dot).
VV_INLINE void transpose4(const __m256i Z[4], __m256i Q[4]);
static void q8t_record(const int8_t qs[16][32], const uint16_t d[16], int shift, uint8_t *rec) {
    int32_t corr[16];
    float da[16];
    for (int h = 0; h < 2; h++) {
        for (int hh = 0; hh < 2; hh++) {
            __m256i Z[4], Q[4];
            for (int i = 0; i < 4; i++) { // lane L' of Z[i] = block 4i + 2h + L'
                const int b = 4 * i + 2 * h;
                Z[i] = _mm256_set_m128i(load128(qs[b + 1] + 16 * hh), load128(qs[b] + 16 * hh));
            }
            transpose4(Z, Q);
            for (int j = 0; j < 4; j++) _mm256_storeu_si256((__m256i *)(rec + 64 * (4 * hh + j) + 32 * h), Q[j]);
        }
    }
    const __m256i x80 = _mm256_set1_epi8((char)0x80);
    for (int p = 0; p < 16; p++) {
        const int b = vv_q8t_block(p);
        // sum of the 32 quants: SAD of q + 128, minus 32 * 128
        const __m256i sad = _mm256_sad_epu8(_mm256_xor_si256(load256(qs[b]), x80), _mm256_setzero_si256());
        const __m128i s2 = _mm_add_epi64(_mm256_castsi256_si128(sad), _mm256_extracti128_si256(sad, 1));
        const int sum = (int)(_mm_cvtsi128_si64(s2) + _mm_extract_epi64(s2, 1)) - 4096;
        corr[p] = -sum * (1 << shift);
        da[p] = h2f(d[b]);
    }
    memcpy(rec + 512, corr, sizeof(corr));
    memcpy(rec + 576, da, sizeof(da));
}

static void pack_q8t(const float *x, void *dst, int64_t n, int shift) {
    const int64_t nb = n / 32;
    uint8_t *rec = (uint8_t *)dst;
    int8_t qs[16][32] __attribute__((aligned(32)));
    uint16_t d[16];
    for (int64_t g = 0; g * 16 < nb; g++, rec += VV_Q8T_GROUP) {
        const int cnt = (int)VV_MIN(16, nb - g * 16);
        for (int b = 0; b < cnt; b++) d[b] = q8_0_act_block(x + 32 * (16 * g + b), qs[b]);
        for (int b = cnt; b < 16; b++) { // zero blocks past the end
            memset(qs[b], 0, 32);
            d[b] = 0;
        }
        q8t_record((const int8_t(*)[32])qs, d, shift, rec);
    }
}
void vv_pack_q8t_q4_0(const float *x, void *dst, int64_t n) { pack_q8t(x, dst, n, 3); }
void vv_pack_q8t_q8_0(const float *x, void *dst, int64_t n) { pack_q8t(x, dst, n, 7); }

void vv_pack_q8ka(const float *x, void *dst, int64_t n) {
    const int64_t ns = n / VV_QK_K;
    size_t o[5];
    vv_q8ka_offsets(n, o);
    uint8_t *base = (uint8_t *)dst;
    int8_t *qs = (int8_t *)dst;
    float *d = (float *)(base + o[0]), *d4 = (float *)(base + o[3]);
    int16_t *bsums = (int16_t *)(base + o[1]), *bsum32 = (int16_t *)(base + o[2]);
    memset(base + o[2], 0, o[4] - o[2]); // padding of bsum32 / d4
    for (int64_t i = 0; i < ns; i++) {
        d[i] = q8_K_block(x + VV_QK_K * i, qs + VV_QK_K * i, bsums + 16 * i);
        for (int j = 0; j < 8; j++) bsum32[8 * i + j] = (int16_t)(bsums[16 * i + 2 * j] + bsums[16 * i + 2 * j + 1]);
        for (int l = 0; l < 4; l++) d4[4 * i + l] = d[i];
    }
}

// Float activations, zero-padded to a multiple of 32 values.
size_t vv_act_size_f(int64_t n) { return (size_t)((n + 31) / 32 * 32) * sizeof(float); }
static void pad_f(float *y, int64_t n) { memset(y + n, 0, vv_act_size_f(n) - (size_t)n * sizeof(float)); }
void vv_pack_f32(const float *x, void *dst, int64_t n) {
    memcpy(dst, x, (size_t)n * sizeof(float));
    pad_f((float *)dst, n);
}
void vv_pack_f16(const float *x, void *dst, int64_t n) {
    float *y = (float *)dst;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
    for (; i < n; i++) y[i] = h2f(f2h(x[i]));
    pad_f(y, n);
}
void vv_pack_bf16(const float *x, void *dst, int64_t n) {
    float *y = (float *)dst;
    for (int64_t i = 0; i < n; i++) y[i] = vv_bf16_to_fp32(vv_fp32_to_bf16(x[i]));
    pad_f(y, n);
}
size_t vv_act_size_q8t(int64_t n) { return vv_q8t_size(n); }
size_t vv_act_size_q8ka(int64_t n) { return vv_q8ka_size(n); }
size_t vv_scratch_none(int64_t n) {
    (void)n;
    return 0;
}
size_t vv_scratch_q8t(int64_t n) { return (size_t)vv_q8t_groups(n) * 576 * 16; } // 16 rows (RB)

// ---------------------------------------------------------------------------
// Float weights. WT: 0 = F32, 1 = F16, 2 = BF16.

VV_INLINE __m256 load8_w(const void *p, const int WT) {
    if (WT == 0) return _mm256_loadu_ps((const float *)p);
    if (WT == 1) return _mm256_cvtph_ps(load128(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(load128(p)), 16));
}

// One weight row x T packed tokens.
VV_INLINE void f_row(int64_t n, const uint8_t *w, const uint8_t *act, size_t lda, float *y, size_t ldy, const int T,
                     const int WT) {
    const int es = WT == 0 ? 4 : 2;
    __m256 acc[TMAX][4]; // A lo, A hi, B lo, B hi
    UNROLL
    for (int t = 0; t < T; t++)
        UNROLL
        for (int i = 0; i < 4; i++) acc[t][i] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {
        pf_range(w + k * es, (size_t)32 * es);
        __m256 wv[4];
        UNROLL
        for (int i = 0; i < 4; i++) wv[i] = load8_w(w + (k + 8 * i) * es, WT);
        UNROLL
        for (int t = 0; t < T; t++) {
            const float *a = (const float *)(act + t * lda) + k;
            UNROLL
            for (int i = 0; i < 4; i++) acc[t][i] = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(a + 8 * i), acc[t][i]);
        }
    }
    if (k < n) { // tail: weights copied into a zero-padded chunk; activations are padded
        uint8_t tmp[128] = {0};
        memcpy(tmp, w + k * es, (size_t)(n - k) * es);
        __m256 wv[4];
        UNROLL
        for (int i = 0; i < 4; i++) wv[i] = load8_w(tmp + 8 * i * es, WT);
        UNROLL
        for (int t = 0; t < T; t++) {
            const float *a = (const float *)(act + t * lda) + k;
            UNROLL
            for (int i = 0; i < 4; i++) acc[t][i] = _mm256_fmadd_ps(wv[i], _mm256_loadu_ps(a + 8 * i), acc[t][i]);
        }
    }
    UNROLL
    for (int t = 0; t < T; t++)
        y[t * ldy] = hsum16_2(_mm256_add_ps(acc[t][0], acc[t][2]), _mm256_add_ps(acc[t][1], acc[t][3]));
}

// vec_dot for float types: a in the vec_dot_type (raw).
VV_INLINE float f_dot(int64_t n, const uint8_t *w, const uint8_t *a, const int WT) {
    const int es = WT == 0 ? 4 : 2;
    __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
    int64_t k = 0;
    for (; k + 32 <= n; k += 32)
        UNROLL
        for (int i = 0; i < 4; i++)
            acc[i] = _mm256_fmadd_ps(load8_w(w + (k + 8 * i) * es, WT), load8_w(a + (k + 8 * i) * es, WT), acc[i]);
    if (k < n) {
        uint8_t tw[128] = {0}, ta[128] = {0};
        memcpy(tw, w + k * es, (size_t)(n - k) * es);
        memcpy(ta, a + k * es, (size_t)(n - k) * es);
        UNROLL
        for (int i = 0; i < 4; i++) acc[i] = _mm256_fmadd_ps(load8_w(tw + 8 * i * es, WT), load8_w(ta + 8 * i * es, WT), acc[i]);
    }
    return hsum16_2(_mm256_add_ps(acc[0], acc[2]), _mm256_add_ps(acc[1], acc[3]));
}
static void dot_f32(int64_t n, float *s, const void *w, const void *a) { *s = f_dot(n, w, a, 0); }
static void dot_f16(int64_t n, float *s, const void *w, const void *a) { *s = f_dot(n, w, a, 1); }
static void dot_bf16(int64_t n, float *s, const void *w, const void *a) { *s = f_dot(n, w, a, 2); }

// ---------------------------------------------------------------------------
// Q4_0 / Q8_0 weights (QT 0 / 1) against Q8T records.

// 4 x 4 dword transpose inside each 128-bit lane: Q[j] dword (4L + i) = Z[i] lane L dword j.
VV_INLINE void transpose4(const __m256i Z[4], __m256i Q[4]) {
    const __m256i t0 = _mm256_unpacklo_epi32(Z[0], Z[1]), t1 = _mm256_unpackhi_epi32(Z[0], Z[1]);
    const __m256i t2 = _mm256_unpacklo_epi32(Z[2], Z[3]), t3 = _mm256_unpackhi_epi32(Z[2], Z[3]);
    Q[0] = _mm256_unpacklo_epi64(t0, t2);
    Q[1] = _mm256_unpackhi_epi64(t0, t2);
    Q[2] = _mm256_unpacklo_epi64(t1, t3);
    Q[3] = _mm256_unpackhi_epi64(t1, t3);
}

// Weights of half h (lanes 8h..8h+7) of a 16-block group, transposed as the
// AVX-512 kernel does: lane p holds block vv_q8t_block(p), so 128-bit lane L'
// of Z[i] is block 4i + 2h + L'. W[j] lane = bytes 4j..4j+3 of its block
// (Q4_0: unsigned nibbles in value order; Q8_0: signed quants); dw = scales.
VV_INLINE void q_half_w(const uint8_t *grp, int h, const int QT, __m256i W[8], __m256 *dw) {
    const size_t bs = QT == 0 ? sizeof(vv_block_q4_0) : sizeof(vv_block_q8_0);
    __m256i Z[4], Q[4];
    for (int hh = 0; hh < (QT == 0 ? 1 : 2); hh++) {
        UNROLL
        for (int i = 0; i < 4; i++) {
            const uint8_t *b = grp + (size_t)(4 * i + 2 * h) * bs + 2 + 16 * hh;
            Z[i] = _mm256_set_m128i(load128(b + bs), load128(b));
        }
        transpose4(Z, Q);
        UNROLL
        for (int j = 0; j < 4; j++) W[4 * hh + j] = Q[j];
    }
    if (QT == 0) {
        const __m256i m4 = _mm256_set1_epi8(0x0F);
        UNROLL
        for (int j = 0; j < 4; j++) {
            W[4 + j] = _mm256_and_si256(_mm256_srli_epi16(W[j], 4), m4);
            W[j] = _mm256_and_si256(W[j], m4);
        }
    }
    uint64_t d[2] = {0, 0};
    UNROLL
    for (int q = 0; q < 8; q++) {
        uint16_t v;
        memcpy(&v, grp + (size_t)vv_q8t_block(8 * h + q) * bs, 2);
        d[q / 4] |= (uint64_t)v << (16 * (q % 4));
    }
    *dw = _mm256_cvtph_ps(_mm_set_epi64x((long long)d[1], (long long)d[0]));
}

// acc (half h lanes) += one token's group record against the half's weights.
VV_INLINE __m256 q_half_tok(const __m256i W[8], __m256 dw, const uint8_t *rec, int h, __m256 acc, const int QT) {
    __m256i s = QT == 0 ? load256(rec + 512 + 32 * h) : _mm256_setzero_si256();
    UNROLL
    for (int j = 0; j < 8; j++) {
        const __m256i a = load256(rec + 64 * j + 32 * h);
        s = _mm256_add_epi32(s, QT == 0 ? dot4_us(W[j], a) : dot4_ss(W[j], a));
    }
    const __m256 sc = _mm256_mul_ps(dw, _mm256_loadu_ps((const float *)(rec + 576) + 8 * h));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), sc, acc);
}

VV_INLINE void q_row(int64_t n, const uint8_t *w, const uint8_t *act, size_t lda, float *y, size_t ldy, const int T,
                     const int QT) {
    const size_t bs = QT == 0 ? sizeof(vv_block_q4_0) : sizeof(vv_block_q8_0);
    const int64_t nb = n / 32;
    __m256 acc[TMAX][2];
    UNROLL
    for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    uint8_t tmp[16 * sizeof(vv_block_q8_0)];
    for (int64_t g = 0; g * 16 < nb; g++) {
        const uint8_t *grp = w + (size_t)(16 * g) * bs;
        pf_range(grp, 16 * bs);
        const int64_t cnt = VV_MIN(16, nb - 16 * g);
        if (cnt < 16) { // last group: missing blocks are zero (d = 0)
            memset(tmp, 0, sizeof(tmp));
            memcpy(tmp, grp, (size_t)cnt * bs);
            grp = tmp;
        }
        UNROLL
        for (int h = 0; h < 2; h++) {
            __m256i W[8];
            __m256 dw;
            q_half_w(grp, h, QT, W, &dw);
            UNROLL
            for (int t = 0; t < T; t++)
                acc[t][h] = q_half_tok(W, dw, act + t * lda + (size_t)g * VV_Q8T_GROUP, h, acc[t][h], QT);
        }
    }
    UNROLL
    for (int t = 0; t < T; t++) y[t * ldy] = hsum16_2(acc[t][0], acc[t][1]);
}

// vec_dot with block_q8_0 activations: built into Q8T records group by group.
VV_INLINE float q_dot(int64_t n, const uint8_t *w, const vv_block_q8_0 *y, const int QT) {
    const size_t bs = QT == 0 ? sizeof(vv_block_q4_0) : sizeof(vv_block_q8_0);
    const int64_t nb = n / 32;
    __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
    uint8_t rec[VV_Q8T_GROUP] __attribute__((aligned(64)));
    uint8_t tmp[16 * sizeof(vv_block_q8_0)];
    for (int64_t g = 0; g * 16 < nb; g++) {
        const int64_t cnt = VV_MIN(16, nb - 16 * g);
        vv_q8t_group(y + 16 * g, (int)cnt, QT == 0 ? 3 : 7, rec);
        const uint8_t *grp = w + (size_t)(16 * g) * bs;
        if (cnt < 16) {
            memset(tmp, 0, sizeof(tmp));
            memcpy(tmp, grp, (size_t)cnt * bs);
            grp = tmp;
        }
        UNROLL
        for (int h = 0; h < 2; h++) {
            __m256i W[8];
            __m256 dw;
            q_half_w(grp, h, QT, W, &dw);
            acc[h] = q_half_tok(W, dw, rec, h, acc[h], QT);
        }
    }
    return hsum16_2(acc[0], acc[1]);
}
static void dot_q4_0(int64_t n, float *s, const void *w, const void *a) { *s = q_dot(n, w, a, 0); }
static void dot_q8_0(int64_t n, float *s, const void *w, const void *a) { *s = q_dot(n, w, a, 1); }

// ---------------------------------------------------------------------------
// K-quants with Q8_K activations.

// Q4_K scales/mins of one super-block as int16 [8 scales, 8 mins], decoded
// with byte shuffles (same values as ggml's get_scale_min_k4). blk points at
// the block: bytes 0-3 are d/dmin, 4-15 the 12 scale bytes s[0..11].
VV_INLINE __m256i q4k_scales_mins(const uint8_t *blk) {
    const __m128i q = _mm_loadu_si128((const __m128i *)blk);
    // low bits: sc0-3 = s0-3 & 63, sc4-7 = s8-11 & 15, m0-3 = s4-7 & 63, m4-7 = s8-11 >> 4
    const __m128i v1 = _mm_shuffle_epi8(q, _mm_setr_epi8(4, 5, 6, 7, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15));
    const __m128i lo = _mm_or_si128(
        _mm_and_si128(v1, _mm_setr_epi8(63, 63, 63, 63, 15, 15, 15, 15, 63, 63, 63, 63, 0, 0, 0, 0)),
        _mm_and_si128(_mm_srli_epi16(v1, 4), _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 15, 15, 15)));
    // high bits of sc4-7 / m4-7: bits 6-7 of s0-3 / s4-7 moved to bits 4-5
    const __m128i v2 = _mm_shuffle_epi8(q, _mm_setr_epi8(-128, -128, -128, -128, 4, 5, 6, 7, -128, -128, -128, -128, 8,
                                                         9, 10, 11));
    const __m128i hi = _mm_srli_epi16(_mm_and_si128(v2, _mm_set1_epi8((char)0xC0)), 2);
    return _mm256_cvtepu8_epi16(_mm_or_si128(lo, hi));
}


// Q6_K chunk c (values 64c..64c+63) as unsigned 6-bit quants (lo/hi 32 bytes).
VV_INLINE void q6k_chunk(const vv_block_q6_K *x, int c, __m256i *lo, __m256i *hi) {
    const int half = c >> 1;
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    const __m256i ql0 = load256(x->ql + 64 * half), ql1 = load256(x->ql + 64 * half + 32);
    const __m256i qh = load256(x->qh + 32 * half);
    const __m256i qh2 = _mm256_srli_epi16(qh, 2);
    if ((c & 1) == 0) {
        *lo = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_slli_epi16(_mm256_and_si256(qh, _mm256_set1_epi8(3)), 4));
        *hi = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_slli_epi16(_mm256_and_si256(qh2, _mm256_set1_epi8(3)), 4));
    } else {
        *lo = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(qh, _mm256_set1_epi8(0x30)));
        *hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_and_si256(qh2, _mm256_set1_epi8(0x30)));
    }
}

// Super-blocks [0, ns) of one weight row against T packed tokens, into acc
// (lo/hi halves per token) and, for Q4_K, accm: the mins term per group of 4
// super-blocks (lane 4k + l = mins pair l of super-block k of the group).
VV_INLINE void k_accum(int64_t ns, const uint8_t *w, const vv_q8ka_view *av, __m256 (*acc)[2], __m256 (*accm)[2],
                       const int T, const int KT) {
    const size_t sbytes = KT == 0 ? sizeof(vv_block_q4_K) : sizeof(vv_block_q6_K);
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    for (int64_t i0 = 0; i0 < ns; i0 += 4) {
        __m256i mins[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
        float dmins[4] = {0, 0, 0, 0};
        UNROLL
        for (int k = 0; k < 4; k++) {
            const int64_t i = i0 + k;
            if (i >= ns) break;
            pf_range(w + (size_t)i * sbytes, sbytes);
            __m256i sl[TMAX], sh[TMAX];
            UNROLL
            for (int t = 0; t < T; t++) sl[t] = sh[t] = _mm256_setzero_si256();
            float dw;
            __m256i ms = _mm256_setzero_si256();
            if (KT == 0) {
                const vv_block_q4_K *x = (const vv_block_q4_K *)w + i;
                ms = q4k_scales_mins((const uint8_t *)x);
                const __m256i sc = _mm256_permute2x128_si256(ms, ms, 0x00); // 8 scales twice
                UNROLL
                for (int j = 0; j < 4; j++) {
                    const __m256i q = load256(x->qs + 32 * j);
                    const __m256i ql = _mm256_and_si256(q, m4), qh = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
                    const __m256i scl = _mm256_shuffle_epi8(sc, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * j))));
                    const __m256i sch = _mm256_shuffle_epi8(sc, _mm256_set1_epi16((short)(0x0100 + 0x0202 * (2 * j + 1))));
                    UNROLL
                    for (int t = 0; t < T; t++) {
                        const int8_t *a = av[t].qs + VV_QK_K * i + 64 * j;
                        sl[t] = _mm256_add_epi32(sl[t], _mm256_madd_epi16(_mm256_maddubs_epi16(ql, load256(a)), scl));
                        sh[t] = _mm256_add_epi32(sh[t], _mm256_madd_epi16(_mm256_maddubs_epi16(qh, load256(a + 32)), sch));
                    }
                }
                dw = h2f(x->d);
                const __m128i mhi = _mm256_extracti128_si256(ms, 1); // insert's lane must be a constant for clang
                mins[k / 2] = k % 2 ? _mm256_inserti128_si256(mins[k / 2], mhi, 1) : _mm256_inserti128_si256(mins[k / 2], mhi, 0);
                dmins[k] = h2f(x->dmin);
            } else {
                const vv_block_q6_K *x = (const vv_block_q6_K *)w + i;
                ms = _mm256_cvtepi8_epi16(load128(x->scales)); // 16 int16
                UNROLL
                for (int c = 0; c < 4; c++) {
                    __m256i ql, qhh;
                    q6k_chunk(x, c, &ql, &qhh);
                    // int16 lane k of the lo half covers values 64c + 2k, +1 -> scale 4c + k/8
                    const __m256i scl = _mm256_set_m128i(_mm_set1_epi16(x->scales[4 * c + 1]), _mm_set1_epi16(x->scales[4 * c]));
                    const __m256i sch =
                        _mm256_set_m128i(_mm_set1_epi16(x->scales[4 * c + 3]), _mm_set1_epi16(x->scales[4 * c + 2]));
                    UNROLL
                    for (int t = 0; t < T; t++) {
                        const int8_t *a = av[t].qs + VV_QK_K * i + 64 * c;
                        sl[t] = _mm256_add_epi32(sl[t], _mm256_madd_epi16(_mm256_maddubs_epi16(ql, load256(a)), scl));
                        sh[t] = _mm256_add_epi32(sh[t], _mm256_madd_epi16(_mm256_maddubs_epi16(qhh, load256(a + 32)), sch));
                    }
                }
                dw = h2f(x->d);
            }
            UNROLL
            for (int t = 0; t < T; t++) {
                if (KT == 1) // the -32 offset: 32 * sum_g scale_g * bsum_g, in lanes 0-7
                    sl[t] = _mm256_sub_epi32(sl[t], _mm256_slli_epi32(_mm256_madd_epi16(ms, load256(av[t].bsums + 16 * i)), 5));
                const __m256 sc = _mm256_mul_ps(_mm256_set1_ps(dw), _mm256_set1_ps(av[t].d[i]));
                acc[t][0] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sl[t]), sc, acc[t][0]);
                acc[t][1] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sh[t]), sc, acc[t][1]);
            }
        }
        if (KT == 0) {
            const __m256 dm[2] = {_mm256_set_m128(_mm_set1_ps(dmins[1]), _mm_set1_ps(dmins[0])),
                                  _mm256_set_m128(_mm_set1_ps(dmins[3]), _mm_set1_ps(dmins[2]))};
            UNROLL
            for (int t = 0; t < T; t++) {
                UNROLL
                for (int h = 0; h < 2; h++) {
                    const __m256 m = _mm256_cvtepi32_ps(_mm256_madd_epi16(mins[h], load256(av[t].bsum32 + 8 * i0 + 16 * h)));
                    const __m256 sc = _mm256_mul_ps(dm[h], _mm256_loadu_ps(av[t].d4 + 4 * i0 + 8 * h));
                    accm[t][h] = _mm256_fmadd_ps(m, sc, accm[t][h]);
                }
            }
        }
    }
}

// Q4_K: lanes 0-3 minus the folded mins accumulator, then the canonical reduction.
VV_INLINE float kresult(const __m256 acc[2], const __m256 accm[2], const int KT) {
    if (KT == 1) return hsum16_2(acc[0], acc[1]);
    const __m128 t01 = _mm_add_ps(_mm256_castps256_ps128(accm[0]), _mm256_extractf128_ps(accm[0], 1));
    const __m128 t23 = _mm_add_ps(_mm256_castps256_ps128(accm[1]), _mm256_extractf128_ps(accm[1], 1));
    const __m128 l4 = _mm_sub_ps(_mm256_castps256_ps128(acc[0]), _mm_add_ps(t01, t23));
    return hsum16_2(_mm256_blend_ps(acc[0], _mm256_castps128_ps256(l4), 0x0F), acc[1]);
}

VV_INLINE void k_row(int64_t n, const uint8_t *w, const uint8_t *act, size_t lda, float *y, size_t ldy, const int T,
                     const int KT) {
    vv_q8ka_view av[TMAX];
    __m256 acc[TMAX][2], accm[TMAX][2];
    UNROLL
    for (int t = 0; t < T; t++) {
        av[t] = vv_q8ka_at(act + t * lda, n);
        acc[t][0] = acc[t][1] = accm[t][0] = accm[t][1] = _mm256_setzero_ps();
    }
    k_accum(n / VV_QK_K, w, av, acc, accm, T, KT);
    UNROLL
    for (int t = 0; t < T; t++) y[t * ldy] = kresult(acc[t], accm[t], KT);
}

// vec_dot: the Q8_K blocks are repacked 16 super-blocks at a time.
VV_INLINE float k_dot(int64_t n, const uint8_t *w, const vv_block_q8_K *y, const int KT) {
    const size_t sbytes = KT == 0 ? sizeof(vv_block_q4_K) : sizeof(vv_block_q6_K);
    const int64_t ns = n / VV_QK_K;
    uint8_t tmp[6144] __attribute__((aligned(64)));
    __m256 acc[1][2] = {{_mm256_setzero_ps(), _mm256_setzero_ps()}}, accm[1][2] = {{_mm256_setzero_ps(), _mm256_setzero_ps()}};
    for (int64_t i0 = 0; i0 < ns; i0 += 16) {
        const int64_t cnt = VV_MIN(16, ns - i0);
        vv_q8ka_from_blocks(y + i0, cnt, tmp);
        const vv_q8ka_view v = vv_q8ka_at(tmp, cnt * VV_QK_K);
        k_accum(cnt, w + (size_t)i0 * sbytes, &v, acc, accm, 1, KT);
    }
    return kresult(acc[0], accm[0], KT);
}
static void dot_q4_K(int64_t n, float *s, const void *w, const void *a) { *s = k_dot(n, w, a, 0); }
static void dot_q6_K(int64_t n, float *s, const void *w, const void *a) { *s = k_dot(n, w, a, 1); }

// ---------------------------------------------------------------------------
// Tile dispatch: rows one at a time, tokens in groups of up to TMAX.

#define DEFINE_TILE(name, ROW)                                                                            \
    static void name(int64_t n, const void *w, size_t ldw, int nr, const void *act, size_t lda, int nt,    \
                     float *y, size_t ldy, void *scratch) {                                               \
        (void)scratch;                                                                                    \
        for (int r0 = 0; r0 < nr; r0 += 16)  /* tokens outer within a row block: records stay in L1 */  \
            for (int t0 = 0; t0 < nt; t0 += TMAX)                                                         \
                for (int r = r0; r < VV_MIN(nr, r0 + 16); r++) {                                          \
                    const uint8_t *wr = (const uint8_t *)w + (size_t)r * ldw;                             \
                    const uint8_t *ap = (const uint8_t *)act + (size_t)t0 * lda;                          \
                    float *yp = y + (size_t)t0 * ldy + r;                                                 \
                    switch (VV_MIN(nt - t0, TMAX)) {                                                      \
                    case 1: ROW(1); break;                                                                \
                    case 2: ROW(2); break;                                                                \
                    case 3: ROW(3); break;                                                                \
                    default: ROW(4); break;                                                               \
                    }                                                                                     \
                }                                                                                         \
    }

#define R_F32(TT) f_row(n, wr, ap, lda, yp, ldy, TT, 0)
#define R_F16(TT) f_row(n, wr, ap, lda, yp, ldy, TT, 1)
#define R_BF16(TT) f_row(n, wr, ap, lda, yp, ldy, TT, 2)
#define R_Q4_0(TT) q_row(n, wr, ap, lda, yp, ldy, TT, 0)
#define R_Q8_0(TT) q_row(n, wr, ap, lda, yp, ldy, TT, 1)
#define R_Q4_K(TT) k_row(n, wr, ap, lda, yp, ldy, TT, 0)
#define R_Q6_K(TT) k_row(n, wr, ap, lda, yp, ldy, TT, 1)

DEFINE_TILE(tile_f32, R_F32)
DEFINE_TILE(tile_f16, R_F16)
DEFINE_TILE(tile_bf16, R_BF16)
DEFINE_TILE(tile_q4_0, R_Q4_0)
DEFINE_TILE(tile_q8_0, R_Q8_0)
DEFINE_TILE(tile_q4_K, R_Q4_K)
DEFINE_TILE(tile_q6_K, R_Q6_K)

// ---------------------------------------------------------------------------
// Tables.

static const vv_kernels k_f32 = {dot_f32, vv_ref_quant_f32, VV_TYPE_F32};
static const vv_kernels k_f16 = {dot_f16, vv_avx2_quant_f16, VV_TYPE_F16};
static const vv_kernels k_bf16 = {dot_bf16, vv_ref_quant_bf16, VV_TYPE_BF16};
static const vv_kernels k_q8_0 = {dot_q8_0, vv_avx2_quant_q8_0_act, VV_TYPE_Q8_0};
static const vv_kernels k_q4_0 = {dot_q4_0, vv_avx2_quant_q8_0_act, VV_TYPE_Q8_0};
static const vv_kernels k_q4_K = {dot_q4_K, vv_avx2_quant_q8_K, VV_TYPE_Q8_K};
static const vv_kernels k_q6_K = {dot_q6_K, vv_avx2_quant_q8_K, VV_TYPE_Q8_K};

const vv_kernels *vv_kernels_avx2(int type) {
    switch (type) {
    case VV_TYPE_F32: return &k_f32;
    case VV_TYPE_F16: return &k_f16;
    case VV_TYPE_BF16: return &k_bf16;
    case VV_TYPE_Q8_0: return &k_q8_0;
    case VV_TYPE_Q4_0: return &k_q4_0;
    case VV_TYPE_Q4_K: return &k_q4_K;
    case VV_TYPE_Q6_K: return &k_q6_K;
    default: return NULL;
    }
}

static const vv_mm_ops m_f32 = {vv_pack_f32, vv_act_size_f, tile_f32, vv_scratch_none, NULL, NULL};
static const vv_mm_ops m_f16 = {vv_pack_f16, vv_act_size_f, tile_f16, vv_scratch_none, NULL, NULL};
static const vv_mm_ops m_bf16 = {vv_pack_bf16, vv_act_size_f, tile_bf16, vv_scratch_none, NULL, NULL};
static const vv_mm_ops m_q8_0 = {vv_pack_q8t_q8_0, vv_act_size_q8t, tile_q8_0, vv_scratch_none, NULL, NULL};
static const vv_mm_ops m_q4_0 = {vv_pack_q8t_q4_0, vv_act_size_q8t, tile_q4_0, vv_scratch_none, NULL, NULL};
static const vv_mm_ops m_q4_K = {vv_pack_q8ka, vv_act_size_q8ka, tile_q4_K, vv_scratch_none, NULL, NULL};
static const vv_mm_ops m_q6_K = {vv_pack_q8ka, vv_act_size_q8ka, tile_q6_K, vv_scratch_none, NULL, NULL};

const vv_mm_ops *vv_mm_ops_avx2(int type) {
    switch (type) {
    case VV_TYPE_F32: return &m_f32;
    case VV_TYPE_F16: return &m_f16;
    case VV_TYPE_BF16: return &m_bf16;
    case VV_TYPE_Q8_0: return &m_q8_0;
    case VV_TYPE_Q4_0: return &m_q4_0;
    case VV_TYPE_Q4_K: return &m_q4_K;
    case VV_TYPE_Q6_K: return &m_q6_K;
    default: return NULL;
    }
}
