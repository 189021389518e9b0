// quants_avx512.c - AVX-512 (F, BW, VL, DQ, VNNI) vec_dot and tile kernels.
//
// Same float semantics as quants_avx2.c (see its header), so both levels give
// bit-identical results (on raw rows; the repacked F16 panels, AVX-512 only,
// sum in another order); one zmm holds a 16-lane accumulator. Integer parts:
//  * Q4_0/Q8_0: 16 blocks are transposed in registers so that vpdpbusd lane p
//    accumulates block p (8 instructions per 16 blocks and token); Q4_0 uses
//    the unsigned nibbles with a -8 * sum(a) correction, Q8_0 uses w + 128
//    with a -128 * sum(a) correction (both precomputed in the Q8T records).
//  * Q4_K/Q6_K: vpmaddubsw + vpdpwssd with the sub-block scales; the Q4_K
//    mins term is applied once per 4 super-blocks with one 16-lane vpmaddwd.
// Rows stream one at a time; up to 8 tokens (16 for Q4_0/Q8_0) share each
// weight load. For more tokens, Q4_0/Q8_0 rows are transposed once into the
// thread's scratch and reused by every group of 16 tokens; repacked rows
// (already transposed at load) go through a 4-row x 5-token register block.
// Activation quantizers and packers are the AVX2 ones.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <immintrin.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "kernels_internal.h"

#define VV_INLINE static inline __attribute__((always_inline))
// Small constant-trip loops must be unrolled so their arrays live in registers.
#define UNROLL _Pragma("GCC unroll 16")
#define TMAX 8   // tokens per pass, float and K types
#define QTMAX 16 // tokens per pass, Q4_0/Q8_0 (16 accumulators + 9 weight registers)
// Software prefetch distance (bytes) for the streamed weight row: the hardware
// prefetchers fall behind when several token streams compete.
#ifndef VV_PF_DIST
#define VV_PF_DIST 2048
#endif
VV_INLINE void pf_range(const void *p, size_t bytes) {
    if (VV_PF_DIST <= 0) return;
    for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + VV_PF_DIST + o, _MM_HINT_T0);
}

VV_INLINE float hsum16(__m512 z) {
    __m256 t8 = _mm256_add_ps(_mm512_castps512_ps256(z), _mm512_extractf32x8_ps(z, 1));
    __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
    __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
    __m128 t1 = _mm_add_ss(t2, _mm_movehdup_ps(t2));
    return _mm_cvtss_f32(t1);
}

VV_INLINE float h2f(uint16_t h) { return _cvtsh_ss(h); }
VV_INLINE __m256i load256(const void *p) { return _mm256_loadu_si256((const __m256i *)p); }
VV_INLINE __m128i load128(const void *p) { return _mm_loadu_si128((const __m128i *)p); }
VV_INLINE __m512i load512(const void *p) { return _mm512_loadu_si512(p); }

// ---------------------------------------------------------------------------
// Float weights. WT: 0 = F32, 1 = F16, 2 = BF16.

VV_INLINE __m512 load16_w(const void *p, const int WT) {
    if (WT == 0) return _mm512_loadu_ps(p);
    if (WT == 1) return _mm512_cvtph_ps(load256(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(load256(p)), 16));
}
// First cnt (0..16) values, zeros after (masked loads never touch memory past them).
VV_INLINE __m512 load16_w_part(const void *p, int cnt, const int WT) {
    const __mmask16 m = (__mmask16)((1u << cnt) - 1);
    if (WT == 0) return _mm512_maskz_loadu_ps(m, p);
    const __m256i h = _mm256_maskz_loadu_epi16(m, p);
    if (WT == 1) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

VV_INLINE void f_row(int64_t n, const uint8_t *w, const uint8_t *act, size_t lda, float *y, size_t ldy, const int T,
                     const int WT) {
    const int es = WT == 0 ? 4 : 2;
    __m512 A[TMAX], B[TMAX];
    UNROLL
    for (int t = 0; t < T; t++) A[t] = B[t] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {
        pf_range(w + k * es, (size_t)32 * es);
        const __m512 wa = load16_w(w + k * es, WT), wb = load16_w(w + (k + 16) * es, WT);
        UNROLL
        for (int t = 0; t < T; t++) {
            const float *a = (const float *)(act + t * lda) + k;
            A[t] = _mm512_fmadd_ps(wa, _mm512_loadu_ps(a), A[t]);
            B[t] = _mm512_fmadd_ps(wb, _mm512_loadu_ps(a + 16), B[t]);
        }
    }
    if (k < n) { // activations are zero-padded to 32 values
        const int rem = (int)(n - k);
        const __m512 wa = load16_w_part(w + k * es, VV_MIN(rem, 16), WT);
        const __m512 wb = rem > 16 ? load16_w_part(w + (k + 16) * es, rem - 16, WT) : _mm512_setzero_ps();
        UNROLL
        for (int t = 0; t < T; t++) {
            const float *a = (const float *)(act + t * lda) + k;
            A[t] = _mm512_fmadd_ps(wa, _mm512_loadu_ps(a), A[t]);
            B[t] = _mm512_fmadd_ps(wb, _mm512_loadu_ps(a + 16), B[t]);
        }
    }
    UNROLL
    for (int t = 0; t < T; t++) y[t * ldy] = hsum16(_mm512_add_ps(A[t], B[t]));
}

VV_INLINE float f_dot(int64_t n, const uint8_t *w, const uint8_t *a, const int WT) {
    const int es = WT == 0 ? 4 : 2;
    __m512 A = _mm512_setzero_ps(), B = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= n; k += 32) {
        A = _mm512_fmadd_ps(load16_w(w + k * es, WT), load16_w(a + k * es, WT), A);
        B = _mm512_fmadd_ps(load16_w(w + (k + 16) * es, WT), load16_w(a + (k + 16) * es, WT), B);
    }
    if (k < n) {
        const int rem = (int)(n - k), r0 = VV_MIN(rem, 16), r1 = VV_MAX(rem - 16, 0);
        A = _mm512_fmadd_ps(load16_w_part(w + k * es, r0, WT), load16_w_part(a + k * es, r0, WT), A);
        B = _mm512_fmadd_ps(load16_w_part(w + (k + 16) * es, r1, WT), load16_w_part(a + (k + 16) * es, r1, WT), B);
    }
    return hsum16(_mm512_add_ps(A, B));
}
static void dot_f32(int64_t n, float *s, const void *w, const void *a) { *s = f_dot(n, w, a, 0); }
static void dot_f16(int64_t n, float *s, const void *w, const void *a) { *s = f_dot(n, w, a, 1); }
static void dot_bf16(int64_t n, float *s, const void *w, const void *a) { *s = f_dot(n, w, a, 2); }

// ---------------------------------------------------------------------------
// Q4_0 / Q8_0 (QT 0 / 1) against Q8T records.

typedef struct {
    __m512i W[8]; // W[j] lane p = unsigned bytes 4j..4j+3 of block p
    __m512 dw;    // block scales
} qgrp;

// 4 x 4 dword transpose inside each 128-bit lane: Q[j] dword (4L + i) = Z[i] lane L dword j.
VV_INLINE void transpose4(const __m512i Z[4], __m512i Q[4]) {
    const __m512i t0 = _mm512_unpacklo_epi32(Z[0], Z[1]), t1 = _mm512_unpackhi_epi32(Z[0], Z[1]);
    const __m512i t2 = _mm512_unpacklo_epi32(Z[2], Z[3]), t3 = _mm512_unpackhi_epi32(Z[2], Z[3]);
    Q[0] = _mm512_unpacklo_epi64(t0, t2);
    Q[1] = _mm512_unpackhi_epi64(t0, t2);
    Q[2] = _mm512_unpacklo_epi64(t1, t3);
    Q[3] = _mm512_unpackhi_epi64(t1, t3);
}

// Word permutes. Q4_0 (9-word blocks) / Q8_0 (17-word blocks): zmm lane L <-
// the 8 quant words of block L of a 4-block window; scales: word p <- d of
// block 4(p%4) + p/4 (Q4_0: lanes p%4 in {1,3} come from the second window
// of a pair; Q8_0: one window per p%4, merged by blends).
static const int16_t k_zidx[2][32] __attribute__((aligned(64))) = {
    {1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 23, 24, 25, 26, 28, 29, 30, 31, 32, 33, 34, 35},
    {1, 2, 3, 4, 5, 6, 7, 8, 18, 19, 20, 21, 22, 23, 24, 25, 35, 36, 37, 38, 39, 40, 41, 42, 52, 53, 54, 55, 56, 57, 58, 59}};
static const int16_t k_didx[2][32] __attribute__((aligned(64))) = {
    {0, 32, 0, 32, 9, 41, 9, 41, 18, 50, 18, 50, 27, 59, 27, 59},
    {0, 0, 0, 0, 17, 17, 17, 17, 34, 34, 34, 34, 51, 51, 51, 51}};
VV_INLINE __m512i zidx(const int QT) { return _mm512_load_si512(k_zidx[QT]); }
VV_INLINE __m512i didx(const int QT) { return _mm512_load_si512(k_didx[QT]); }

// Weights of a full 16-block group (grp points at its first block), before
// the per-use unpacking: Q4_0 Q[0..3] packed nibbles, Q8_0 Q[0..7] = w + 128,
// and the 16 block scales as f16 words (*d16). Lane 4L + i holds block 4i + L
// (vv_q8t_block): Z[i] collects blocks 4i..4i+3 from one window with a
// two-source word permute, then a 4 x 4 dword transpose per 128-bit lane
// spreads them over Q. This is the work a repacked row (vv_repack_q) does once.
VV_INLINE void q_grp_packed(const uint8_t *grp, const int QT, __m512i Q[8], __m256i *d16) {
    const size_t win = QT == 0 ? 4 * sizeof(vv_block_q4_0) : 4 * sizeof(vv_block_q8_0); // 72 / 136 bytes
    const __mmask32 mb = QT == 0 ? 0x0000000Fu : 0x0FFFFFFFu; // words of the second load that are used
    const __m512i zi = zidx(QT);
    __m512i la[4], lb[4], Z[4];
    for (int h = 0; h < (QT == 0 ? 1 : 2); h++) {
        UNROLL
        for (int i = 0; i < 4; i++) {
            const uint8_t *base = grp + i * win + 16 * h;
            la[i] = _mm512_loadu_si512(base);
            lb[i] = _mm512_maskz_loadu_epi16(mb, base + 64);
            Z[i] = _mm512_permutex2var_epi16(la[i], zi, lb[i]);
        }
        transpose4(Z, Q + 4 * h);
        if (QT == 0) {
            const __m512i p01 = _mm512_permutex2var_epi16(la[0], didx(QT), la[1]);
            const __m512i p23 = _mm512_permutex2var_epi16(la[2], didx(QT), la[3]);
            *d16 = _mm512_castsi512_si256(_mm512_mask_blend_epi16(0xCCCC, p01, p23));
        } else {
            const __m512i x80 = _mm512_set1_epi8((char)0x80);
            UNROLL
            for (int j = 0; j < 4; j++) Q[4 * h + j] = _mm512_xor_si512(Q[4 * h + j], x80);
        }
    }
    if (QT == 1) { // d of block 4i + L is word 17L of window i (the h = 1 windows start 16 bytes later)
        __m512i t = _mm512_setzero_si512();
        UNROLL
        for (int i = 0; i < 4; i++) {
            const uint8_t *base = grp + i * win;
            const __m512i u = _mm512_permutex2var_epi16(_mm512_loadu_si512(base), didx(QT),
                                                        _mm512_maskz_loadu_epi16(mb, base + 64));
            t = _mm512_mask_blend_epi16((__mmask32)(0x1111u << i), t, u);
        }
        *d16 = _mm512_castsi512_si256(t);
    }
}

// Packed group -> the registers q_tok takes.
VV_INLINE void q_unpack(const __m512i Q[8], __m256i d16, const int QT, qgrp *g) {
    if (QT == 0) {
        const __m512i m4 = _mm512_set1_epi8(0x0F);
        UNROLL
        for (int j = 0; j < 4; j++) {
            g->W[j] = _mm512_and_si512(Q[j], m4);
            g->W[4 + j] = _mm512_and_si512(_mm512_srli_epi16(Q[j], 4), m4);
        }
    } else {
        UNROLL
        for (int j = 0; j < 8; j++) g->W[j] = Q[j];
    }
    g->dw = _mm512_cvtph_ps(d16);
}

VV_INLINE void q_grp(const uint8_t *grp, const int QT, qgrp *g) {
    __m512i Q[8];
    __m256i d16;
    q_grp_packed(grp, QT, Q, &d16);
    q_unpack(Q, d16, QT, g);
}

// Weights of a group given by pointer, with zero blocks past the end of the row.
VV_INLINE void q_grp_row(const uint8_t *w, int64_t nb, int64_t g, const int QT, qgrp *out) {
    const size_t bs = QT == 0 ? sizeof(vv_block_q4_0) : sizeof(vv_block_q8_0);
    const uint8_t *grp = w + (size_t)(16 * g) * bs;
    const int64_t cnt = VV_MIN(16, nb - 16 * g);
    if (cnt == 16) {
        q_grp(grp, QT, out);
    } else {
        uint8_t tmp[16 * sizeof(vv_block_q8_0)];
        memset(tmp, 0, sizeof(tmp));
        memcpy(tmp, grp, (size_t)cnt * bs);
        q_grp(tmp, QT, out);
    }
}

// One token's record against a group: acc += float(isum) * (dw * da). The 8
// vpdpbusd run as NCH independent chains (latency matters when few tokens
// share the weights); the partial sums are exact, so NCH does not change y.
VV_INLINE __m512 q_tok(const __m512i W[8], __m512 dw, const uint8_t *rec, __m512 acc, const int NCH) {
    __m512i s[4];
    s[0] = _mm512_load_si512(rec + 512);
    UNROLL
    for (int c = 1; c < NCH; c++) s[c] = _mm512_setzero_si512();
    UNROLL
    for (int j = 0; j < 8; j++) s[j % NCH] = _mm512_dpbusd_epi32(s[j % NCH], W[j], _mm512_load_si512(rec + 64 * j));
    if (NCH == 4) s[0] = _mm512_add_epi32(_mm512_add_epi32(s[0], s[1]), _mm512_add_epi32(s[2], s[3]));
    if (NCH == 2) s[0] = _mm512_add_epi32(s[0], s[1]);
    return _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[0]), _mm512_mul_ps(dw, _mm512_load_ps((const float *)(rec + 576))), acc);
}
#define NCH_FOR(T) ((T) == 1 ? 4 : (T) <= 3 ? 2 : 1)

// One row x T tokens, weights transposed in registers.
VV_INLINE void q_row(int64_t n, const uint8_t *w, const uint8_t *act, size_t lda, float *y, size_t ldy, const int T,
                     const int QT) {
    const int64_t nb = n / 32;
    __m512 acc[QTMAX];
    UNROLL
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const size_t gbytes = 16 * (QT == 0 ? sizeof(vv_block_q4_0) : sizeof(vv_block_q8_0));
    for (int64_t g = 0; g * 16 < nb; g++) {
        pf_range(w + (size_t)g * gbytes, gbytes); // past the row end is harmless: prefetches never fault
        qgrp q;
        q_grp_row(w, nb, g, QT, &q);
        UNROLL
        for (int t = 0; t < T; t++) acc[t] = q_tok(q.W, q.dw, act + t * lda + (size_t)g * VV_Q8T_GROUP, acc[t], NCH_FOR(T));
    }
    UNROLL
    for (int t = 0; t < T; t++) y[t * ldy] = hsum16(acc[t]);
}

// One row x T tokens, weights from the scratch copy (9 zmm per group).
VV_INLINE void q_row_buf(int64_t ng, const __m512i *buf, const uint8_t *act, size_t lda, float *y, size_t ldy,
                         const int T) {
    __m512 acc[QTMAX];
    UNROLL
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t g = 0; g < ng; g++) {
        const __m512i *b = buf + 9 * g;
        __m512i W[8];
        UNROLL
        for (int j = 0; j < 8; j++) W[j] = _mm512_load_si512(b + j);
        const __m512 dw = _mm512_castsi512_ps(_mm512_load_si512(b + 8));
        UNROLL
        for (int t = 0; t < T; t++) acc[t] = q_tok(W, dw, act + t * lda + (size_t)g * VV_Q8T_GROUP, acc[t], NCH_FOR(T));
    }
    UNROLL
    for (int t = 0; t < T; t++) y[t * ldy] = hsum16(acc[t]);
}

VV_INLINE float q_dot(int64_t n, const uint8_t *w, const vv_block_q8_0 *y, const int QT) {
    const int64_t nb = n / 32;
    __m512 acc = _mm512_setzero_ps();
    uint8_t rec[VV_Q8T_GROUP] __attribute__((aligned(64)));
    for (int64_t g = 0; g * 16 < nb; g++) {
        vv_q8t_group(y + 16 * g, (int)VV_MIN(16, nb - 16 * g), QT == 0 ? 3 : 7, rec);
        qgrp q;
        q_grp_row(w, nb, g, QT, &q);
        acc = q_tok(q.W, q.dw, rec, acc, 4);
    }
    return hsum16(acc);
}
static void dot_q4_0(int64_t n, float *s, const void *w, const void *a) { *s = q_dot(n, w, a, 0); }
static void dot_q8_0(int64_t n, float *s, const void *w, const void *a) { *s = q_dot(n, w, a, 1); }

#define Q16_SWITCH(T, CALL)  \
    switch (T) {             \
    case 1: CALL(1); break;  \
    case 2: CALL(2); break;  \
    case 3: CALL(3); break;  \
    case 4: CALL(4); break;  \
    case 5: CALL(5); break;  \
    case 6: CALL(6); break;  \
    case 7: CALL(7); break;  \
    case 8: CALL(8); break;  \
    case 9: CALL(9); break;  \
    case 10: CALL(10); break; \
    case 11: CALL(11); break; \
    case 12: CALL(12); break; \
    case 13: CALL(13); break; \
    case 14: CALL(14); break; \
    case 15: CALL(15); break; \
    default: CALL(16); break; \
    }

#define Q_ROW_SWITCH(T, CALL)         \
    switch (T) {                      \
    case 1: CALL(1); break;           \
    case 2: CALL(2); break;           \
    case 3: CALL(3); break;           \
    case 4: CALL(4); break;           \
    case 5: CALL(5); break;           \
    case 6: CALL(6); break;           \
    case 7: CALL(7); break;           \
    default: CALL(8); break;          \
    }

// Up to 16 tokens: rows stream once, each row's weights transposed in
// registers. More tokens: rows are taken in blocks of RB, transposed once into
// scratch; then tokens go in groups of 16 (outer) and the block's rows
// (inner), so the group's records stay in L1/L2 while the rows pass over them.
#define RB 16
VV_INLINE void q_tile(int64_t n, const uint8_t *w, size_t ldw, int nr, const uint8_t *act, size_t lda, int nt,
                      float *y, size_t ldy, void *scratch, const int QT) {
    const int64_t nb = n / 32, ng = (nb + 15) / 16;
    if (nt <= QTMAX) {
        for (int r = 0; r < nr; r++) {
            const uint8_t *wr = w + (size_t)r * ldw;
#define CALL(TT) q_row(n, wr, act, lda, y + r, ldy, TT, QT)
            Q16_SWITCH(nt, CALL)
#undef CALL
        }
        return;
    }
    __m512i *buf = (__m512i *)scratch;
    for (int r0 = 0; r0 < nr; r0 += RB) {
        const int nrb = VV_MIN(RB, nr - r0);
        for (int r = 0; r < nrb; r++)
            for (int64_t g = 0; g < ng; g++) {
                qgrp q;
                q_grp_row(w + (size_t)(r0 + r) * ldw, nb, g, QT, &q);
                __m512i *b = buf + 9 * (r * ng + g);
                UNROLL
                for (int j = 0; j < 8; j++) _mm512_store_si512(b + j, q.W[j]);
                _mm512_store_si512(b + 8, _mm512_castps_si512(q.dw));
            }
        for (int t0 = 0; t0 < nt; t0 += QTMAX)
            for (int r = 0; r < nrb; r++) {
#define CALL(TT) q_row_buf(ng, buf + 9 * r * ng, act + (size_t)t0 * lda, lda, y + (size_t)t0 * ldy + r0 + r, ldy, TT)
                Q16_SWITCH(VV_MIN(nt - t0, QTMAX), CALL)
#undef CALL
            }
    }
}
// Repacked rows (vv_mm_ops.repack, for n a multiple of 512): each 16-block
// group stored as q_grp_packed leaves it, Q4_0 4 zmm + 16 f16 scales = 288
// bytes, Q8_0 8 zmm + 16 f16 scales = 544 bytes: exactly the size of the 16
// raw blocks, so a repacked matrix keeps the raw row stride. The tile kernel
// then loads instead of permuting (batch-1 decode was bound by the permutes:
// Q8_0 read 15.7 GB/s of 39 on one core). Same products, same order: results
// are bit-identical to the raw kernels.
#define RP_BYTES(QT) ((QT) == 0 ? 288 : 544)
VV_INLINE void q_repack(const uint8_t *w, size_t ldw, int64_t n, int64_t nrows, uint8_t *dst, const int QT) {
    const int64_t ng = n / 512;
    const size_t bs = QT == 0 ? sizeof(vv_block_q4_0) : sizeof(vv_block_q8_0);
    for (int64_t r = 0; r < nrows; r++)
        for (int64_t g = 0; g < ng; g++) {
            __m512i Q[8];
            __m256i d16;
            q_grp_packed(w + (size_t)r * ldw + (size_t)(16 * g) * bs, QT, Q, &d16);
            uint8_t *o = dst + (size_t)r * ldw + (size_t)g * RP_BYTES(QT);
            for (int j = 0; j < (QT == 0 ? 4 : 8); j++) _mm512_storeu_si512(o + 64 * j, Q[j]);
            _mm256_storeu_si256((__m256i *)(o + (QT == 0 ? 256 : 512)), d16);
        }
}
static void repack_q4_0(const void *w, size_t ldw, int64_t n, int64_t nrows, void *dst) {
    q_repack(w, ldw, n, nrows, dst, 0);
}
static void repack_q8_0(const void *w, size_t ldw, int64_t n, int64_t nrows, void *dst) {
    q_repack(w, ldw, n, nrows, dst, 1);
}

#ifndef VV_FAR_PF
#define VV_FAR_PF 8192
#endif
// One repacked row x T tokens. far: a second prefetch, into L2, VV_FAR_PF bytes
// ahead, for rows streamed with 4+ tokens (q_tile_rp: the row path at T >= 4 and
// the first of Q4_0's 3-token passes). Their arithmetic keeps the core busy
// long enough that the T0 prefetch 2 KiB ahead no longer covers the memory
// latency; batch 1 and 2-3 tokens keep the single prefetch (a far one cost
// batch 1 7-10%). bench_kernels 2 d, alternating: Q4_0 batch 6 22.8-24.1 ->
// 19.3-20.1 ms, batch 4 19.6-21.0 -> 17.1-18.4; Q8_0 batch 6 ~3% (27.7-28.8 ->
// 26.8-27.3 in three pairs).
VV_INLINE void q_row_rp(int64_t ng, const uint8_t *w, const uint8_t *act, size_t lda, float *y, size_t ldy, const int T,
                        const int QT, const bool far) {
    __m512 acc[QTMAX];
    UNROLL
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t g = 0; g < ng; g++) {
        const uint8_t *b = w + (size_t)g * RP_BYTES(QT);
        pf_range(b, RP_BYTES(QT));
        if (far)
            for (int o = 0; o < RP_BYTES(QT); o += 64) _mm_prefetch((const char *)b + VV_FAR_PF + o, _MM_HINT_T1);
        __m512i Q[8];
        if (QT == 0) {
            UNROLL
            for (int j = 0; j < 4; j++) Q[j] = _mm512_loadu_si512(b + 64 * j);
        } else {
            UNROLL
            for (int j = 0; j < 8; j++) Q[j] = _mm512_loadu_si512(b + 64 * j);
        }
        qgrp q;
        q_unpack(Q, _mm256_loadu_si256((const __m256i *)(b + (QT == 0 ? 256 : 512))), QT, &q);
        UNROLL
        for (int t = 0; t < T; t++) acc[t] = q_tok(q.W, q.dw, act + t * lda + (size_t)g * VV_Q8T_GROUP, acc[t], NCH_FOR(T));
    }
    UNROLL
    for (int t = 0; t < T; t++) y[t * ldy] = hsum16(acc[t]);
}

#define Q4_CHUNK 3 // Q4_0 row path: tokens per pass over a row (q_tile_rp)
// VISVM_Q4_CHUNK=0 turns the passes off (for A/B timing), read once (the pool's
// threads may race to set it; atomic, and they all compute the same value).
static bool q4_chunked(void) {
    static _Atomic int on = -1;
    int v = atomic_load_explicit(&on, memory_order_relaxed);
    if (v < 0) {
        v = !(getenv("VISVM_Q4_CHUNK") && !strcmp(getenv("VISVM_Q4_CHUNK"), "0"));
        atomic_store_explicit(&on, v, memory_order_relaxed);
    }
    return v;
}

#define MK_R 4 // rows x tokens of the register block (prefill-sized products)
#define MK_T 5
// R repacked rows x T tokens, register-blocked: each weight load serves T
// tokens and each activation load R rows (the R*T int32 sums of a group live
// in registers). Per (row, token) the arithmetic is
// q_tok's: exact integer sums per group, then acc = fma(float(sum), dw * da,
// acc) group by group, so results are bit-identical to q_row_rp. pf: the rows
// stream from memory (first token chunk of a row block), prefetch ahead.
VV_INLINE void q_mk_rp(int64_t ng, const uint8_t *w, size_t ldw, const uint8_t *act, size_t lda, float *y, size_t ldy,
                       const int R, const int T, const int QT, const bool pf) {
    // float accumulators in memory (one L1 load and store per group): the
    // registers go to the R*T integer sums; kept in registers, the compiler
    // spills the weights and R*T must shrink (measured slower)
    volatile __m512 acc[MK_R * MK_T];
    UNROLL
    for (int i = 0; i < R * T; i++) acc[i] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    for (int64_t g = 0; g < ng; g++) {
        const uint8_t *b = w + (size_t)g * RP_BYTES(QT);
        const uint8_t *a = act + (size_t)g * VV_Q8T_GROUP;
        if (pf) {
            UNROLL
            for (int r = 0; r < R; r++) pf_range(b + (size_t)r * ldw, RP_BYTES(QT));
        }
        __m512i s[MK_R * MK_T];
        UNROLL
        for (int t = 0; t < T; t++) {
            const __m512i c = _mm512_load_si512(a + (size_t)t * lda + 512); // the block corrections
            UNROLL
            for (int r = 0; r < R; r++) s[r * T + t] = c;
        }
        UNROLL
        for (int j = 0; j < 8; j++) {
            __m512i wv[4];
            UNROLL
            for (int r = 0; r < R; r++) {
                if (QT == 1) {
                    wv[r] = _mm512_loadu_si512(b + (size_t)r * ldw + 64 * j);
                } else { // nibbles: quants 4j.. of the low halves for j < 4, high halves after
                    const __m512i q = _mm512_loadu_si512(b + (size_t)r * ldw + 64 * (j % 4));
                    wv[r] = _mm512_and_si512(j < 4 ? q : _mm512_srli_epi16(q, 4), m4);
                }
            }
            UNROLL
            for (int t = 0; t < T; t++) {
                const __m512i av = _mm512_load_si512(a + (size_t)t * lda + 64 * j);
                UNROLL
                for (int r = 0; r < R; r++) s[r * T + t] = _mm512_dpbusd_epi32(s[r * T + t], wv[r], av);
            }
        }
        __m512 dw[4];
        UNROLL
        for (int r = 0; r < R; r++)
            dw[r] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(b + (size_t)r * ldw + (QT == 0 ? 256 : 512))));
        UNROLL
        for (int t = 0; t < T; t++) {
            const __m512 da = _mm512_load_ps((const float *)(a + (size_t)t * lda + 576));
            UNROLL
            for (int r = 0; r < R; r++)
                acc[r * T + t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s[r * T + t]), _mm512_mul_ps(dw[r], da), acc[r * T + t]);
        }
    }
    UNROLL
    for (int r = 0; r < R; r++) {
        UNROLL
        for (int t = 0; t < T; t++) y[t * ldy + r] = hsum16(acc[r * T + t]);
    }
}

#define MK_T_SWITCH(RR, T, CALL) \
    switch (T) {                 \
    case 1: CALL(RR, 1); break;  \
    case 2: CALL(RR, 2); break;  \
    case 3: CALL(RR, 3); break;  \
    case 4: CALL(RR, 4); break;  \
    default: CALL(RR, 5); break; \
    }
#define MK_SWITCH(R, T, CALL)                      \
    switch (R) {                                   \
    case 1: MK_T_SWITCH(1, T, CALL) break;         \
    case 2: MK_T_SWITCH(2, T, CALL) break;         \
    case 3: MK_T_SWITCH(3, T, CALL) break;         \
    default: MK_T_SWITCH(4, T, CALL) break;        \
    }

// Up to 6 tokens, or 16 whose records fit L1 (decode): rows stream once, one
// at a time (q_row_rp; a single sequential stream per thread keeps the memory
// system busy: register blocks over 4 rows made a batch-6 step 25% slower).
// More (prefill, scoring, 16 tokens of a 5632-wide input): blocks of MK_R rows
// (L1-resident after the first chunk) swept by chunks of MK_T tokens, 1.3x
// faster than 16-token row passes on a 580-token prefill, 2x on a 16-token
// 5632 x 2048 product; 7-8 tokens of that input too: their records (56 KB)
// outgrow L1 and the row path ran at half speed (a 1.1B batch-8 step 35.8-37.8
// -> 32.8-33.3 ms Q8_0, 31.4-32.2 -> 27.6-28.1 ms Q4_0; batch 6, whose
// records just fit, is fastest on the row path).
VV_INLINE void q_tile_rp(int64_t n, const uint8_t *w, size_t ldw, int nr, const uint8_t *act, size_t lda, int nt,
                         float *y, size_t ldy, const int QT) {
    const int64_t ng = n / 512;
    // the row path while its tokens' records (640 bytes per group) stay in L1
    if (nt <= 6 || (nt <= QTMAX && (int64_t)nt * ng <= 64)) {
        if (QT == 0 && nt > Q4_CHUNK && nt <= 8 && q4_chunked()) {
            // Q4_0, 4-8 tokens: each row in passes of up to 3 tokens (the later passes read it from L1).
            // One pass over 4-8 tokens ran at half the speed the weight stream allows
            // (bench_kernels: a 1.1B batch-6 step 25 -> 20 ms, batch 4 22 -> 16 ms); Q8_0 got
            // slower this way (29 -> 35 ms), and so did 9-16 Q4_0 tokens (batch 16 41 -> 46 ms),
            // so they keep one pass. Same q_tok arithmetic per
            // (row, token), exact integer sums: results are unchanged bit for bit.
            for (int r = 0; r < nr; r++)
                for (int t0 = 0; t0 < nt; t0 += Q4_CHUNK) {
#define CALL(TT) q_row_rp(ng, w + (size_t)r * ldw, act + (size_t)t0 * lda, lda, y + (size_t)t0 * ldy + r, ldy, TT, QT, t0 == 0)
                    switch (VV_MIN(Q4_CHUNK, nt - t0)) {
                    case 1: CALL(1); break;
                    case 2: CALL(2); break;
                    default: CALL(3); break;
                    }
#undef CALL
                }
            return;
        }
        for (int r = 0; r < nr; r++) {
#define CALL(TT) q_row_rp(ng, w + (size_t)r * ldw, act, lda, y + r, ldy, TT, QT, (TT) >= 4)
            Q16_SWITCH(nt, CALL)
#undef CALL
        }
        return;
    }
    for (int r0 = 0; r0 < nr; r0 += MK_R) {
        const int rr = VV_MIN(MK_R, nr - r0);
        for (int t0 = 0; t0 < nt; t0 += MK_T) {
            const int tt = VV_MIN(MK_T, nt - t0);
#define CALL(RR, TT) q_mk_rp(ng, w + (size_t)r0 * ldw, ldw, act + (size_t)t0 * lda, lda, y + (size_t)t0 * ldy + r0, ldy, RR, TT, QT, t0 == 0)
            MK_SWITCH(rr, tt, CALL)
#undef CALL
        }
    }
}
static void tile_rp_q4_0(int64_t n, const void *w, size_t ldw, int nr, const void *act, size_t lda, int nt, float *y,
                         size_t ldy, void *scratch) {
    (void)scratch;
    q_tile_rp(n, w, ldw, nr, act, lda, nt, y, ldy, 0);
}
static void tile_rp_q8_0(int64_t n, const void *w, size_t ldw, int nr, const void *act, size_t lda, int nt, float *y,
                         size_t ldy, void *scratch) {
    (void)scratch;
    q_tile_rp(n, w, ldw, nr, act, lda, nt, y, ldy, 1);
}
static void tile_q4_0(int64_t n, const void *w, size_t ldw, int nr, const void *act, size_t lda, int nt, float *y,
                      size_t ldy, void *scratch) {
    q_tile(n, w, ldw, nr, act, lda, nt, y, ldy, scratch, 0);
}
static void tile_q8_0(int64_t n, const void *w, size_t ldw, int nr, const void *act, size_t lda, int nt, float *y,
                      size_t ldy, void *scratch) {
    q_tile(n, w, ldw, nr, act, lda, nt, y, ldy, scratch, 1);
}

// ---------------------------------------------------------------------------
// K-quants.

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


// int16 index vectors: Q4_K chunk j uses scales [2j x16, 2j+1 x16]; Q6_K chunk c
// uses [4c x8, 4c+1 x8, 4c+2 x8, 4c+3 x8].
VV_INLINE __m512i idx_q4k(int j) {
    return _mm512_mask_blend_epi16(0xFFFF0000u, _mm512_set1_epi16((short)(2 * j)), _mm512_set1_epi16((short)(2 * j + 1)));
}
VV_INLINE __m512i idx_q6k(int c) {
    const __m512i base = _mm512_set1_epi16((short)(4 * c));
    const __m512i step = _mm512_set_epi16(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0,
                                          0, 0, 0, 0, 0, 0);
    return _mm512_add_epi16(base, step);
}

// Q4_K chunk j: [low nibbles of qs[32j..], high nibbles] in value order.
VV_INLINE __m512i q4k_chunk(const vv_block_q4_K *x, int j) {
    const __m256i q = load256(x->qs + 32 * j);
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1);
    return _mm512_and_si512(z, _mm512_set1_epi8(0x0F));
}

// Q6_K chunk c (values 64c..64c+63) as unsigned 6-bit quants.
VV_INLINE __m512i q6k_chunk(const vv_block_q6_K *x, int c) {
    const int half = c >> 1;
    const __m512i L = load512(x->ql + 64 * half);
    const __m256i H = load256(x->qh + 32 * half);
    const __m512i H2 = _mm512_inserti64x4(_mm512_castsi256_si512(H), _mm256_srli_epi16(H, 2), 1);
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    if ((c & 1) == 0)
        return _mm512_or_si512(_mm512_and_si512(L, m4), _mm512_slli_epi16(_mm512_and_si512(H2, _mm512_set1_epi8(3)), 4));
    return _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(L, 4), m4), _mm512_and_si512(H2, _mm512_set1_epi8(0x30)));
}

// Per-row super-block data shared by the tokens of a pass.
typedef struct {
    __m256i sm; // Q4_K: 8 scales + 8 mins (int16); Q6_K: 16 scales (int16)
    __m512 dv;  // d broadcast
    float dmin;
} ksb_w;

VV_INLINE ksb_w ksb_load(const uint8_t *row, int64_t i, const int KT) {
    ksb_w s;
    if (KT == 0) {
        const vv_block_q4_K *x = (const vv_block_q4_K *)row + i;
        s.sm = q4k_scales_mins((const uint8_t *)x);
        s.dv = _mm512_set1_ps(h2f(x->d));
        s.dmin = h2f(x->dmin);
    } else {
        const vv_block_q6_K *x = (const vv_block_q6_K *)row + i;
        s.sm = _mm256_cvtepi8_epi16(load128(x->scales));
        s.dv = _mm512_set1_ps(h2f(x->d));
        s.dmin = 0;
    }
    return s;
}
VV_INLINE __m512i kchunk(const uint8_t *row, int64_t i, int j, const int KT) {
    return KT == 0 ? q4k_chunk((const vv_block_q4_K *)row + i, j) : q6k_chunk((const vv_block_q6_K *)row + i, j);
}
VV_INLINE __m512i kscale(const ksb_w *s, int j, const int KT) {
    return _mm512_permutexvar_epi16(KT == 0 ? idx_q4k(j) : idx_q6k(j), _mm512_zextsi256_si512(s->sm));
}

// Super-blocks [0, ns) of one weight row (w) against T packed tokens (views
// av, same super-block range), accumulated into acc (16 lanes per token) and,
// for Q4_K, accm: the mins term, applied per group of 4 super-blocks with
// lane 4k + l = mins pair l of super-block k of the group.
VV_INLINE void k_accum(int64_t ns, const uint8_t *w, const vv_q8ka_view *av, __m512 *acc, __m512 *accm, const int T,
                       const int KT) {
    const size_t sbytes = KT == 0 ? sizeof(vv_block_q4_K) : sizeof(vv_block_q6_K);
    const __m512i d4idx = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    for (int64_t i0 = 0; i0 < ns; i0 += 4) {
        __m512i mins = _mm512_setzero_si512();
        float dmins[4] = {0, 0, 0, 0};
        UNROLL
        for (int k = 0; k < 4; k++) {
            const int64_t i = i0 + k;
            if (i >= ns) break;
            pf_range(w + (size_t)i * sbytes, sbytes);
            const ksb_w sw = ksb_load(w, i, KT);
            __m512i sumi[TMAX];
            UNROLL
            for (int t = 0; t < T; t++) sumi[t] = _mm512_setzero_si512();
            UNROLL
            for (int j = 0; j < 4; j++) {
                const __m512i q = kchunk(w, i, j, KT);
                const __m512i sc = kscale(&sw, j, KT);
                UNROLL
                for (int t = 0; t < T; t++) {
                    const __m512i p = _mm512_maddubs_epi16(q, load512(av[t].qs + VV_QK_K * i + 64 * j));
                    sumi[t] = _mm512_dpwssd_epi32(sumi[t], p, sc);
                }
            }
            UNROLL
            for (int t = 0; t < T; t++) {
                if (KT == 1) { // the -32 offset: 32 * sum_g scale_g * bsum_g, in lanes 0-7
                    const __m256i corr = _mm256_slli_epi32(_mm256_madd_epi16(sw.sm, load256(av[t].bsums + 16 * i)), 5);
                    sumi[t] = _mm512_sub_epi32(sumi[t], _mm512_zextsi256_si512(corr));
                }
                const __m512 sc = _mm512_mul_ps(sw.dv, _mm512_set1_ps(av[t].d[i]));
                acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sumi[t]), sc, acc[t]);
            }
            if (KT == 0) {
                // into 128-bit lane k (a masked broadcast: insert's lane must be a constant for clang)
                mins = _mm512_mask_broadcast_i32x4(mins, (__mmask16)(0xFu << (4 * k)), _mm256_extracti128_si256(sw.sm, 1));
                dmins[k] = sw.dmin;
            }
        }
        if (KT == 0) {
            const __m512 dminv = _mm512_permutexvar_ps(d4idx, _mm512_castps128_ps512(_mm_loadu_ps(dmins)));
            UNROLL
            for (int t = 0; t < T; t++) {
                const __m512 m = _mm512_cvtepi32_ps(_mm512_madd_epi16(mins, load512(av[t].bsum32 + 8 * i0)));
                accm[t] = _mm512_fmadd_ps(m, _mm512_mul_ps(dminv, _mm512_loadu_ps(av[t].d4 + 4 * i0)), accm[t]);
            }
        }
    }
}

// Q4_K: lanes 0-3 minus the folded mins accumulator, then the canonical reduction.
VV_INLINE float kresult(__m512 acc, __m512 accm, const int KT) {
    if (KT == 1) return hsum16(acc);
    const __m128 t01 = _mm_add_ps(_mm512_castps512_ps128(accm), _mm512_extractf32x4_ps(accm, 1));
    const __m128 t23 = _mm_add_ps(_mm512_extractf32x4_ps(accm, 2), _mm512_extractf32x4_ps(accm, 3));
    const __m128 f4 = _mm_add_ps(t01, t23);
    return hsum16(_mm512_mask_sub_ps(acc, 0x000F, acc, _mm512_zextps128_ps512(f4)));
}

VV_INLINE void k_row(int64_t n, const uint8_t *w, const uint8_t *act, size_t lda, float *y, size_t ldy, const int T,
                     const int KT) {
    vv_q8ka_view av[TMAX];
    __m512 acc[TMAX], accm[TMAX];
    UNROLL
    for (int t = 0; t < T; t++) {
        av[t] = vv_q8ka_at(act + t * lda, n);
        acc[t] = accm[t] = _mm512_setzero_ps();
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
    __m512 acc = _mm512_setzero_ps(), accm = _mm512_setzero_ps();
    for (int64_t i0 = 0; i0 < ns; i0 += 16) {
        const int64_t cnt = VV_MIN(16, ns - i0);
        vv_q8ka_from_blocks(y + i0, cnt, tmp);
        const vv_q8ka_view v = vv_q8ka_at(tmp, cnt * VV_QK_K);
        k_accum(cnt, w + (size_t)i0 * sbytes, &v, &acc, &accm, 1, KT);
    }
    return kresult(acc, accm, KT);
}
static void dot_q4_K(int64_t n, float *s, const void *w, const void *a) { *s = k_dot(n, w, a, 0); }
static void dot_q6_K(int64_t n, float *s, const void *w, const void *a) { *s = k_dot(n, w, a, 1); }

// ---------------------------------------------------------------------------
// Tile dispatch for the float and K types: rows one at a time, tokens in groups of 8.

#define DEFINE_TILE(name, ROW)                                                                            \
    static void name(int64_t n, const void *w, size_t ldw, int nr, const void *act, size_t lda, int nt,    \
                     float *y, size_t ldy, void *scratch) {                                               \
        (void)scratch;                                                                                    \
        for (int r0 = 0; r0 < nr; r0 += RB)                                                               \
            for (int t0 = 0; t0 < nt; t0 += TMAX)                                                         \
                for (int r = r0; r < VV_MIN(nr, r0 + RB); r++) {                                          \
                    const uint8_t *wr = (const uint8_t *)w + (size_t)r * ldw;                             \
                    const uint8_t *ap = (const uint8_t *)act + (size_t)t0 * lda;                          \
                    float *yp = y + (size_t)t0 * ldy + r;                                                 \
                    Q_ROW_SWITCH(VV_MIN(nt - t0, TMAX), ROW)                                              \
                }                                                                                         \
    }

#define R_F32(TT) f_row(n, wr, ap, lda, yp, ldy, TT, 0)
#define R_F16(TT) f_row(n, wr, ap, lda, yp, ldy, TT, 1)
#define R_BF16(TT) f_row(n, wr, ap, lda, yp, ldy, TT, 2)
#define R_Q4_K(TT) k_row(n, wr, ap, lda, yp, ldy, TT, 0)
#define R_Q6_K(TT) k_row(n, wr, ap, lda, yp, ldy, TT, 1)

DEFINE_TILE(tile_f32, R_F32)
DEFINE_TILE(tile_f16, R_F16)
DEFINE_TILE(tile_bf16, R_BF16)
DEFINE_TILE(tile_q4_K, R_Q4_K)
DEFINE_TILE(tile_q6_K, R_Q6_K)

// ---------------------------------------------------------------------------
// Repacked F16 (vv_mm_ops.repack, n_out a multiple of 32): each panel of 32
// rows stored as [n][32] f16, the 32 rows' weights at one input index next to
// each other (same bytes as the 32 raw rows). The tile kernel then puts output
// rows along the vector lanes: per input index, two weight loads and one
// broadcast activation per token feed 2 x T FMAs, with no horizontal sums.
// Each (row, token) is one FMA chain over the input in order, whatever the
// batch, so results do not depend on the batch size or the thread count.
#define F16P 32
static void repack_f16(const void *w, size_t ldw, int64_t n, int64_t nrows, void *dst) {
    for (int64_t p = 0; p * F16P < nrows; p++) {
        const uint8_t *src = (const uint8_t *)w + (size_t)p * F16P * ldw;
        uint16_t *o = (uint16_t *)((uint8_t *)dst + (size_t)p * F16P * ldw);
        for (int64_t k0 = 0; k0 < n; k0 += 64) { // 64 inputs x 32 rows: a 4 KiB block stays in L1
            const int64_t k1 = VV_MIN(n, k0 + 64);
            for (int i = 0; i < F16P; i++) {
                const uint16_t *r = (const uint16_t *)(src + (size_t)i * ldw);
                for (int64_t k = k0; k < k1; k++) o[(size_t)k * F16P + i] = r[k];
            }
        }
    }
}

// One panel x T tokens (activations: f32, lda bytes apart).
VV_INLINE void f16p_tile(int64_t n, const uint8_t *pw, const uint8_t *act, size_t lda, float *y, size_t ldy,
                         const int T, const bool pf) {
    __m512 a0[QTMAX], a1[QTMAX]; // T <= 12 in use (Q16_SWITCH instantiates up to 16)
    UNROLL
    for (int t = 0; t < T; t++) a0[t] = a1[t] = _mm512_setzero_ps();
    for (int64_t k = 0; k < n; k++) {
        const uint8_t *wk = pw + (size_t)k * (2 * F16P);
        if (pf && (k & 1) == 0) _mm_prefetch((const char *)wk + VV_PF_DIST, _MM_HINT_T0);
        const __m512 w0 = _mm512_cvtph_ps(load256(wk)), w1 = _mm512_cvtph_ps(load256(wk + 32));
        UNROLL
        for (int t = 0; t < T; t++) {
            const __m512 x = _mm512_set1_ps(((const float *)(act + (size_t)t * lda))[k]);
            a0[t] = _mm512_fmadd_ps(w0, x, a0[t]);
            a1[t] = _mm512_fmadd_ps(w1, x, a1[t]);
        }
    }
    UNROLL
    for (int t = 0; t < T; t++) {
        _mm512_storeu_ps(y + (size_t)t * ldy, a0[t]);
        _mm512_storeu_ps(y + (size_t)t * ldy + 16, a1[t]);
    }
}

// Panels of the nr rows (a multiple of 32, w at a panel start) swept by chunks
// of 12 tokens; the first chunk streams the panel from memory, the others
// find it in L2.
static void tile_rp_f16(int64_t n, const void *w, size_t ldw, int nr, const void *act, size_t lda, int nt, float *y,
                        size_t ldy, void *scratch) {
    (void)scratch;
    for (int r0 = 0; r0 < nr; r0 += F16P) {
        const uint8_t *pw = (const uint8_t *)w + (size_t)r0 * ldw;
        for (int t0 = 0; t0 < nt; t0 += 12) {
            const uint8_t *ap = (const uint8_t *)act + (size_t)t0 * lda;
            float *yp = y + (size_t)t0 * ldy + r0;
#define CALL(TT) f16p_tile(n, pw, ap, lda, yp, ldy, TT, t0 == 0)
            Q16_SWITCH(VV_MIN(nt - t0, 12), CALL) // 13..16 never taken
#undef CALL
        }
    }
}

// ---------------------------------------------------------------------------
// Tables.

static const vv_kernels k_f32 = {dot_f32, vv_ref_quant_f32, VV_TYPE_F32};
static const vv_kernels k_f16 = {dot_f16, vv_avx2_quant_f16, VV_TYPE_F16};
static const vv_kernels k_bf16 = {dot_bf16, vv_ref_quant_bf16, VV_TYPE_BF16};
static const vv_kernels k_q8_0 = {dot_q8_0, vv_avx2_quant_q8_0_act, VV_TYPE_Q8_0};
static const vv_kernels k_q4_0 = {dot_q4_0, vv_avx2_quant_q8_0_act, VV_TYPE_Q8_0};
static const vv_kernels k_q4_K = {dot_q4_K, vv_avx2_quant_q8_K, VV_TYPE_Q8_K};
static const vv_kernels k_q6_K = {dot_q6_K, vv_avx2_quant_q8_K, VV_TYPE_Q8_K};

const vv_kernels *vv_kernels_avx512(int type) {
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
static const vv_mm_ops m_f16 = {vv_pack_f16, vv_act_size_f, tile_f16, vv_scratch_none, repack_f16, tile_rp_f16};
static const vv_mm_ops m_bf16 = {vv_pack_bf16, vv_act_size_f, tile_bf16, vv_scratch_none, NULL, NULL};
static const vv_mm_ops m_q8_0 = {vv_pack_q8t_q8_0, vv_act_size_q8t, tile_q8_0, vv_scratch_q8t, repack_q8_0, tile_rp_q8_0};
static const vv_mm_ops m_q4_0 = {vv_pack_q8t_q4_0, vv_act_size_q8t, tile_q4_0, vv_scratch_q8t, repack_q4_0, tile_rp_q4_0};
static const vv_mm_ops m_q4_K = {vv_pack_q8ka, vv_act_size_q8ka, tile_q4_K, vv_scratch_none, NULL, NULL};
static const vv_mm_ops m_q6_K = {vv_pack_q8ka, vv_act_size_q8ka, tile_q6_K, vv_scratch_none, NULL, NULL};

const vv_mm_ops *vv_mm_ops_avx512(int type) {
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
