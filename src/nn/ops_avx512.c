// ops_avx512.c - AVX-512 versions of hot f32 operations (see ops_simd.h).
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "ops_simd.h"

// exp(x) for x <= 0 lanes (softmax: x - max); x < -87.3 (and -inf) give 0.
// Same constants and operation order as ops_avx2.c's exp_neg.
static inline __m512 exp_neg(__m512 x) {
    const __m512 lo = _mm512_set1_ps(-87.33654f);
    const __mmask16 keep = _mm512_cmp_ps_mask(x, lo, _CMP_GE_OQ);
    x = _mm512_max_ps(x, lo);
    const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    const __m512i e = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(fx), _mm512_set1_epi32(127)), 23);
    return _mm512_maskz_mul_ps(keep, p, _mm512_castsi512_ps(e));
}

void vv_softmax_avx512(float *x, int64_t n) {
    __m512 vm = _mm512_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(x + i));
    if (i < n) vm = _mm512_max_ps(vm, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), (__mmask16)((1u << (n - i)) - 1), x + i));
    const float mx = _mm512_reduce_max_ps(vm);
    if (mx == -INFINITY) {
        memset(x, 0, (size_t)n * sizeof(float));
        return;
    }
    const __m512 vmx = _mm512_set1_ps(mx);
    __m512 acc = _mm512_setzero_ps();
    for (i = 0; i + 16 <= n; i += 16) {
        const __m512 e = exp_neg(_mm512_sub_ps(_mm512_loadu_ps(x + i), vmx));
        _mm512_storeu_ps(x + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        const __m512 e = _mm512_maskz_mov_ps(m, exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmx)));
        _mm512_mask_storeu_ps(x + i, m, e);
        acc = _mm512_add_ps(acc, e);
    }
    const __m512 inv = _mm512_set1_ps((float)(1.0 / (double)_mm512_reduce_add_ps(acc)));
    for (i = 0; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, _mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    if (i < n) {
        const __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(x + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + i), inv));
    }
}

// ---------------------------------------------------------------------------
// Grouped-query attention blocks (see ops_simd.h).

// 16 vectors -> one vector of their 16 horizontal sums (lane i = sum of a[i]).
static inline __m512 hsum16x16(__m512 a[16]) {
    __m512 b[8], c[4];
    for (int i = 0; i < 8; i++) // lanes: a2i.x0+a2i.x1, a2i+1.x0+a2i+1.x1, ... per 128-bit lane
        b[i] = _mm512_add_ps(_mm512_unpacklo_ps(a[2 * i], a[2 * i + 1]), _mm512_unpackhi_ps(a[2 * i], a[2 * i + 1]));
    for (int i = 0; i < 4; i++) { // per 128-bit lane: partial sums of a4i .. a4i+3
        const __m512d x = _mm512_castps_pd(b[2 * i]), y = _mm512_castps_pd(b[2 * i + 1]);
        c[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_unpacklo_pd(x, y)), _mm512_castpd_ps(_mm512_unpackhi_pd(x, y)));
    }
    // c[i] 128-bit lane L: lane-L partial sums of a4i .. a4i+3, in order; now add the four lanes
    const __m512 d0 = _mm512_add_ps(_mm512_shuffle_f32x4(c[0], c[1], 0x88), _mm512_shuffle_f32x4(c[0], c[1], 0xDD));
    const __m512 d1 = _mm512_add_ps(_mm512_shuffle_f32x4(c[2], c[3], 0x88), _mm512_shuffle_f32x4(c[2], c[3], 0xDD));
    const __m512 e = _mm512_add_ps(_mm512_shuffle_f32x4(d0, d1, 0x88), _mm512_shuffle_f32x4(d0, d1, 0xDD));
    return e;
}

void vv_attn_scores_avx512(const float *q, int64_t ldq, int g, const float *k, int64_t ldk, int n, int hd, float scale,
                           float *S, int64_t lds) {
    if (hd % 16 != 0 || hd > 256) {
        vv_attn_scores_ref(q, ldq, g, k, ldk, n, hd, scale, S, lds);
        return;
    }
    const int nc = hd / 16;
    for (int h = 0; h < g; h++) {
        const float *qh = q + (int64_t)h * ldq;
        __m512 qv[16];
        for (int c = 0; c < nc; c++) qv[c] = _mm512_loadu_ps(qh + 16 * c);
        for (int j0 = 0; j0 < n; j0 += 16) {
            const int m = n - j0 < 16 ? n - j0 : 16;
            __m512 acc[16];
            for (int jj = 0; jj < 16; jj++) {
                __m512 a = _mm512_setzero_ps();
                if (jj < m) {
                    const float *kr = k + (int64_t)(j0 + jj) * ldk;
                    for (int c = 0; c < nc; c++) a = _mm512_fmadd_ps(qv[c], _mm512_loadu_ps(kr + 16 * c), a);
                }
                acc[jj] = a;
            }
            const __m512 s = _mm512_mul_ps(hsum16x16(acc), _mm512_set1_ps(scale));
            _mm512_mask_storeu_ps(S + (int64_t)h * lds + j0, (__mmask16)((1u << m) - 1u), s);
        }
    }
}

void vv_attn_values_avx512(const float *P, int64_t lds, int g, const float *v, int64_t ldk, int n, int hd, float *out,
                           int64_t ldo) {
    if (hd % 16 != 0 || hd > 256) {
        vv_attn_values_ref(P, lds, g, v, ldk, n, hd, out, ldo);
        return;
    }
    const int nc = hd / 16;
    int h = 0;
    for (; h + 4 <= g && nc <= 4; h += 4) { // 4 heads x up to 4 chunks of accumulators in registers
        __m512 o[4][4];
        for (int t = 0; t < 4; t++)
            for (int c = 0; c < nc; c++) o[t][c] = _mm512_loadu_ps(out + (int64_t)(h + t) * ldo + 16 * c);
        for (int j = 0; j < n; j++) {
            const float *vr = v + (int64_t)j * ldk;
            __m512 vv[4];
            for (int c = 0; c < nc; c++) vv[c] = _mm512_loadu_ps(vr + 16 * c);
            for (int t = 0; t < 4; t++) {
                const __m512 a = _mm512_set1_ps(P[(int64_t)(h + t) * lds + j]);
                for (int c = 0; c < nc; c++) o[t][c] = _mm512_fmadd_ps(a, vv[c], o[t][c]);
            }
        }
        for (int t = 0; t < 4; t++)
            for (int c = 0; c < nc; c++) _mm512_storeu_ps(out + (int64_t)(h + t) * ldo + 16 * c, o[t][c]);
    }
    for (; h < g; h++) { // remaining heads (or wide heads): one at a time
        float *oh = out + (int64_t)h * ldo;
        for (int c = 0; c < nc; c++) {
            __m512 o = _mm512_loadu_ps(oh + 16 * c);
            for (int j = 0; j < n; j++)
                o = _mm512_fmadd_ps(_mm512_set1_ps(P[(int64_t)h * lds + j]), _mm512_loadu_ps(v + (int64_t)j * ldk + 16 * c), o);
            _mm512_storeu_ps(oh + 16 * c, o);
        }
    }
}

// ---------------------------------------------------------------------------
// Shared-prefix attention (see ops_simd.h). The queries lie along the vector
// lanes: Q is transposed once into Qt [hd, nqp] (scaled, zero-padded to 16),
// so a score tile is 8 keys x up to 48 queries of FMAs with one broadcast K
// value each (no horizontal sums), the softmax runs down the columns of St
// [L, nqp], and the value tile is up to 24 accumulators of QN queries x hd
// with one broadcast P value per query and key.

#define PF_UNROLL _Pragma("GCC unroll 8")
static inline __attribute__((always_inline)) void prefix_scores(const float *Qt, int nqp, int hd, const float *K,
                                                                int64_t ldkv, float *S, const int NZ) {
    __m512 acc[8][3];
    PF_UNROLL
    for (int kk = 0; kk < 8; kk++)
        for (int z = 0; z < NZ; z++) acc[kk][z] = _mm512_setzero_ps();
    for (int d = 0; d < hd; d++) {
        __m512 qv[3];
        for (int z = 0; z < NZ; z++) qv[z] = _mm512_loadu_ps(Qt + (size_t)d * nqp + 16 * z);
        PF_UNROLL
        for (int kk = 0; kk < 8; kk++) {
            const __m512 kv = _mm512_set1_ps(K[kk * ldkv + d]);
            for (int z = 0; z < NZ; z++) acc[kk][z] = _mm512_fmadd_ps(kv, qv[z], acc[kk][z]);
        }
    }
    PF_UNROLL
    for (int kk = 0; kk < 8; kk++)
        for (int z = 0; z < NZ; z++) _mm512_storeu_ps(S + (size_t)kk * nqp + 16 * z, acc[kk][z]);
}

// Queries q0 .. q0 + QN of the output: O = (sum_j P[j][q] v_j) / sum.
static inline __attribute__((always_inline)) void prefix_values(const float *St, int nqp, int q0, int n_blk, int bs,
                                                                const float *const *vb, int64_t ldkv, const float *inv,
                                                                float *O, int hd, const int HZ, const int QN) {
    __m512 acc[8][8];
    PF_UNROLL
    for (int q = 0; q < QN; q++)
        for (int j = 0; j < HZ; j++) acc[q][j] = _mm512_setzero_ps();
    for (int b = 0; b < n_blk; b++)
        for (int k = 0; k < bs; k++) {
            const float *v = vb[b] + (int64_t)k * ldkv;
            const float *p = St + ((size_t)b * bs + k) * nqp + q0;
            __m512 vv[8];
            for (int j = 0; j < HZ; j++) vv[j] = _mm512_loadu_ps(v + 16 * j);
            PF_UNROLL
            for (int q = 0; q < QN; q++) {
                const __m512 pq = _mm512_set1_ps(p[q]);
                for (int j = 0; j < HZ; j++) acc[q][j] = _mm512_fmadd_ps(pq, vv[j], acc[q][j]);
            }
        }
    PF_UNROLL
    for (int q = 0; q < QN; q++) {
        const __m512 s = _mm512_set1_ps(inv[q0 + q]);
        for (int j = 0; j < HZ; j++) _mm512_storeu_ps(O + (size_t)(q0 + q) * hd + 16 * j, _mm512_mul_ps(acc[q][j], s));
    }
}

#define PV_CASE(HZ, QN, n)                                                                          \
    switch (n) {                                                                                      \
    case 1: prefix_values(St, nqp, q0, n_blk, bs, vb, ldkv, inv, O, hd, HZ, 1); break;               \
    case 2: prefix_values(St, nqp, q0, n_blk, bs, vb, ldkv, inv, O, hd, HZ, (QN) < 2 ? (QN) : 2); break; \
    case 3: prefix_values(St, nqp, q0, n_blk, bs, vb, ldkv, inv, O, hd, HZ, (QN) < 3 ? (QN) : 3); break; \
    case 4: prefix_values(St, nqp, q0, n_blk, bs, vb, ldkv, inv, O, hd, HZ, (QN) < 4 ? (QN) : 4); break; \
    case 5: prefix_values(St, nqp, q0, n_blk, bs, vb, ldkv, inv, O, hd, HZ, (QN) < 5 ? (QN) : 5); break; \
    case 6: prefix_values(St, nqp, q0, n_blk, bs, vb, ldkv, inv, O, hd, HZ, (QN) < 6 ? (QN) : 6); break; \
    case 7: prefix_values(St, nqp, q0, n_blk, bs, vb, ldkv, inv, O, hd, HZ, (QN) < 7 ? (QN) : 7); break; \
    default: prefix_values(St, nqp, q0, n_blk, bs, vb, ldkv, inv, O, hd, HZ, (QN) < 8 ? (QN) : 8); break; \
    }

void vv_attn_prefix_avx512(const float *Q, int nq, int hd, float scale, const float *const *kb, const float *const *vb,
                           int n_blk, int bs, int64_t ldkv, float *O, float *lse, float *work) {
    if (!(hd == 32 || hd == 64 || hd == 128) || bs % 8) {
        vv_attn_prefix_ref(Q, nq, hd, scale, kb, vb, n_blk, bs, ldkv, O, lse, work);
        return;
    }
    const int nqp = (nq + 15) / 16 * 16, nz = nqp / 16;
    const int64_t L = (int64_t)n_blk * bs;
    float *Qt = work;                    // [hd, nqp]
    float *St = Qt + (size_t)hd * nqp;   // [L, nqp]
    float inv[nqp];
    for (int d = 0; d < hd; d++)
        for (int i = 0; i < nqp; i++) Qt[(size_t)d * nqp + i] = i < nq ? scale * Q[(size_t)i * hd + d] : 0.0f;
    const int HZ = hd / 16;
    const int QN = HZ == 2 ? 8 : HZ == 4 ? 6 : 3; // QN * HZ <= 24 accumulators
    // 48 queries at a time through scores, softmax and values, so their columns of
    // St ([L, 48] of the [L, nqp] buffer) stay in L2 between the three passes (a
    // step's six 26-token candidates: 1248 queries, 3 MB of St per head otherwise)
    for (int z0 = 0; z0 < nz; z0 += 3) {
        const int z1 = z0 + 3 < nz ? z0 + 3 : nz;
        for (int b = 0; b < n_blk; b++)
            for (int k0 = 0; k0 < bs; k0 += 8) {
                const float *K = kb[b] + (int64_t)k0 * ldkv;
                float *S = St + ((size_t)b * bs + k0) * nqp + 16 * z0;
                switch (z1 - z0) {
                case 1: prefix_scores(Qt + 16 * z0, nqp, hd, K, ldkv, S, 1); break;
                case 2: prefix_scores(Qt + 16 * z0, nqp, hd, K, ldkv, S, 2); break;
                default: prefix_scores(Qt + 16 * z0, nqp, hd, K, ldkv, S, 3); break;
                }
            }
        // softmax down each column (query): max, exp and sum; lse = max + log(sum)
        for (int z = z0; z < z1; z++) {
            __m512 m = _mm512_set1_ps(-INFINITY);
            for (int64_t j = 0; j < L; j++) m = _mm512_max_ps(m, _mm512_loadu_ps(St + (size_t)j * nqp + 16 * z));
            __m512 sum = _mm512_setzero_ps();
            for (int64_t j = 0; j < L; j++) {
                float *sp = St + (size_t)j * nqp + 16 * z;
                const __m512 e = exp_neg(_mm512_sub_ps(_mm512_loadu_ps(sp), m));
                _mm512_storeu_ps(sp, e);
                sum = _mm512_add_ps(sum, e);
            }
            float ms[16], ss[16];
            _mm512_storeu_ps(ms, m);
            _mm512_storeu_ps(ss, sum);
            for (int l = 0; l < 16; l++) {
                const int i = 16 * z + l;
                inv[i] = 1.0f / ss[l];
                if (i < nq) lse[i] = ms[l] + logf(ss[l]);
            }
        }
        const int qe = 16 * z1 < nq ? 16 * z1 : nq;
        for (int q0 = 16 * z0; q0 < qe; q0 += QN) {
            const int n = qe - q0 < QN ? qe - q0 : QN;
            if (HZ == 2) PV_CASE(2, 8, n)
            else if (HZ == 4) PV_CASE(4, 6, n)
            else PV_CASE(8, 3, n)
        }
    }
}

// ---------------------------------------------------------------------------
// expf as vv_expf_ref (glibc's algorithm with FMA), 8 double lanes at a time;
// same operations in the same order, so the same bits on every input.

static inline __m512d expf_core8(__m512d xd) {
    const __m512d inv = _mm512_set1_pd(VV_EXPF_INVLN2N), shift = _mm512_set1_pd(VV_EXPF_SHIFT);
    __m512d kd = _mm512_fmadd_pd(inv, xd, shift);
    const __m512i ki = _mm512_castpd_si512(kd);
    kd = _mm512_sub_pd(kd, shift);
    const __m512d r = _mm512_fmsub_pd(inv, xd, kd);
    // table entry ki % 32: two 16-entry permutes, bit 4 picks between them
    const __m512i t0 = _mm512_permutex2var_epi64(_mm512_loadu_si512(vv_expf_tab), ki, _mm512_loadu_si512(vv_expf_tab + 8));
    const __m512i t1 = _mm512_permutex2var_epi64(_mm512_loadu_si512(vv_expf_tab + 16), ki,
                                                 _mm512_loadu_si512(vv_expf_tab + 24));
    __m512i t = _mm512_mask_blend_epi64(_mm512_test_epi64_mask(ki, _mm512_set1_epi64(16)), t0, t1);
    t = _mm512_add_epi64(t, _mm512_slli_epi64(ki, 47));
    const __m512d z = _mm512_fmadd_pd(_mm512_set1_pd(VV_EXPF_C0), r, _mm512_set1_pd(VV_EXPF_C1));
    const __m512d r2 = _mm512_mul_pd(r, r);
    __m512d y = _mm512_fmadd_pd(_mm512_set1_pd(VV_EXPF_C2), r, _mm512_set1_pd(1.0));
    y = _mm512_fmadd_pd(z, r2, y);
    return _mm512_mul_pd(y, _mm512_castsi512_pd(t));
}

static inline __m512 expf16(__m512 x) {
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x));
    const __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
    const __m256 el = _mm512_cvtpd_ps(expf_core8(lo)), eh = _mm512_cvtpd_ps(expf_core8(hi));
    __m512 e = _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(el)), _mm256_castps_pd(eh), 1));
    // |x| >= 88 or NaN: the reference's special cases
    const __m512i ux = _mm512_castps_si512(x);
    const __m512i top = _mm512_and_si512(_mm512_srli_epi32(ux, 20), _mm512_set1_epi32(0x7ff));
    if (_mm512_cmpge_epi32_mask(top, _mm512_set1_epi32(0x42b))) {
        e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, _mm512_set1_ps(0x1.62e42ep6f), _CMP_GT_OQ),
                               _mm512_set1_ps(INFINITY));
        e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, _mm512_set1_ps(-0x1.9fe368p6f), _CMP_LT_OQ),
                               _mm512_setzero_ps()); // -inf too
        e = _mm512_mask_add_ps(e, _mm512_cmpge_epi32_mask(top, _mm512_set1_epi32(0x7f8)) &
                                      _mm512_cmpneq_epi32_mask(ux, _mm512_set1_epi32((int)0xff800000u)),
                               x, x); // NaN, +inf
    }
    return e;
}

// kind 0: x / (1 + exp(-x)); 1: gate / (1 + exp(-gate)) * up; 2: x / (1 + exp(-1.702 x)); 3: exp(x)
static inline void act16(float *x, const float *up, int64_t i, __mmask16 m, const int kind) {
    const __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    if (kind == 3) {
        _mm512_mask_storeu_ps(x + i, m, expf16(v));
        return;
    }
    const __m512 a = kind == 2 ? _mm512_mul_ps(_mm512_set1_ps(-1.702f), v)
                               : _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(v), _mm512_set1_epi32((int)0x80000000u)));
    __m512 y = _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), expf16(a)));
    if (kind == 1) y = _mm512_mul_ps(y, _mm512_maskz_loadu_ps(m, up + i));
    _mm512_mask_storeu_ps(x + i, m, y);
}
static inline void act_run(float *x, const float *up, int64_t n, const int kind) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) act16(x, up, i, 0xFFFF, kind);
    if (i < n) act16(x, up, i, (__mmask16)((1u << (n - i)) - 1), kind);
}
void vv_silu_avx512(float *x, int64_t n) { act_run(x, NULL, n, 0); }
void vv_swiglu_avx512(float *gate, const float *up, int64_t n) { act_run(gate, up, n, 1); }
void vv_quick_gelu_avx512(float *x, int64_t n) { act_run(x, NULL, n, 2); }
void vv_expf_avx512(float *x, int64_t n) { act_run(x, NULL, n, 3); }
