// ops_avx2.c - AVX2/FMA versions of hot f32 operations (see ops_simd.h).
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "ops_simd.h"

// exp(x) for x <= 0 lanes (softmax: x - max); x < -87.3 (and -inf) give 0.
static inline __m256 exp_neg(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-87.33654f);
    const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
    x = _mm256_max_ps(x, lo);
    const __m256 fx = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
    return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

void vv_softmax_avx2(float *x, int64_t n) {
    __m256 vm = _mm256_set1_ps(-INFINITY);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(x + i));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float mx = _mm_cvtss_f32(m4);
    for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
    if (mx == -INFINITY) {
        memset(x, 0, (size_t)n * sizeof(float));
        return;
    }
    const __m256 vmx = _mm256_set1_ps(mx);
    __m256 acc = _mm256_setzero_ps();
    for (i = 0; i + 8 <= n; i += 8) {
        const __m256 e = exp_neg(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmx));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    double sum = hsum8(acc);
    if (i < n) { // tail through a padded vector: same arithmetic as the body
        float tmp[8];
        for (int j = 0; j < 8; j++) tmp[j] = i + j < n ? x[i + j] - mx : -INFINITY;
        _mm256_storeu_ps(tmp, exp_neg(_mm256_loadu_ps(tmp)));
        for (int j = 0; i + j < n; j++) {
            x[i + j] = tmp[j];
            sum += tmp[j];
        }
    }
    const __m256 inv = _mm256_set1_ps((float)(1.0 / sum));
    for (i = 0; i + 8 <= n; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (; i < n; i++) x[i] *= (float)(1.0 / sum);
}

// ---------------------------------------------------------------------------
// expf as vv_expf_ref (glibc's algorithm with FMA), 4 double lanes at a time;
// same operations in the same order, so the same bits on every input.

static inline __m256d expf_core4(__m256d xd) {
    const __m256d inv = _mm256_set1_pd(VV_EXPF_INVLN2N), shift = _mm256_set1_pd(VV_EXPF_SHIFT);
    __m256d kd = _mm256_fmadd_pd(inv, xd, shift);
    const __m256i ki = _mm256_castpd_si256(kd);
    kd = _mm256_sub_pd(kd, shift);
    const __m256d r = _mm256_fmsub_pd(inv, xd, kd);
    __m256i t = _mm256_i64gather_epi64((const long long *)vv_expf_tab, _mm256_and_si256(ki, _mm256_set1_epi64x(31)), 8);
    t = _mm256_add_epi64(t, _mm256_slli_epi64(ki, 47));
    const __m256d z = _mm256_fmadd_pd(_mm256_set1_pd(VV_EXPF_C0), r, _mm256_set1_pd(VV_EXPF_C1));
    const __m256d r2 = _mm256_mul_pd(r, r);
    __m256d y = _mm256_fmadd_pd(_mm256_set1_pd(VV_EXPF_C2), r, _mm256_set1_pd(1.0));
    y = _mm256_fmadd_pd(z, r2, y);
    return _mm256_mul_pd(y, _mm256_castsi256_pd(t));
}

static inline __m256 expf8(__m256 x) {
    const __m128 el = _mm256_cvtpd_ps(expf_core4(_mm256_cvtps_pd(_mm256_castps256_ps128(x))));
    const __m128 eh = _mm256_cvtpd_ps(expf_core4(_mm256_cvtps_pd(_mm256_extractf128_ps(x, 1))));
    __m256 e = _mm256_insertf128_ps(_mm256_castps128_ps256(el), eh, 1);
    // |x| >= 88 or NaN: the reference's special cases
    const __m256i ux = _mm256_castps_si256(x);
    const __m256i top = _mm256_and_si256(_mm256_srli_epi32(ux, 20), _mm256_set1_epi32(0x7ff));
    if (!_mm256_testz_si256(_mm256_cmpgt_epi32(top, _mm256_set1_epi32(0x42a)), _mm256_set1_epi32(-1))) {
        e = _mm256_blendv_ps(e, _mm256_set1_ps(INFINITY), _mm256_cmp_ps(x, _mm256_set1_ps(0x1.62e42ep6f), _CMP_GT_OQ));
        e = _mm256_blendv_ps(e, _mm256_setzero_ps(), _mm256_cmp_ps(x, _mm256_set1_ps(-0x1.9fe368p6f), _CMP_LT_OQ));
        const __m256i nan_or_inf = _mm256_andnot_si256(_mm256_cmpeq_epi32(ux, _mm256_set1_epi32((int)0xff800000u)),
                                                       _mm256_cmpgt_epi32(top, _mm256_set1_epi32(0x7f7)));
        e = _mm256_blendv_ps(e, _mm256_add_ps(x, x), _mm256_castsi256_ps(nan_or_inf));
    }
    return e;
}

// kind 0: x / (1 + exp(-x)); 1: gate / (1 + exp(-gate)) * up; 2: x / (1 + exp(-1.702 x)); 3: exp(x)
static inline __m256 act8(__m256 v, __m256 u, const int kind) {
    if (kind == 3) return expf8(v);
    const __m256 a = kind == 2 ? _mm256_mul_ps(_mm256_set1_ps(-1.702f), v) : _mm256_xor_ps(v, _mm256_set1_ps(-0.0f));
    __m256 y = _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), expf8(a)));
    if (kind == 1) y = _mm256_mul_ps(y, u);
    return y;
}
static inline void act_run(float *x, const float *up, int64_t n, const int kind) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(x + i, act8(_mm256_loadu_ps(x + i), kind == 1 ? _mm256_loadu_ps(up + i) : _mm256_setzero_ps(), kind));
    if (i < n) { // tail through a padded copy
        float bx[8] = {0}, bu[8] = {0};
        memcpy(bx, x + i, sizeof(float) * (size_t)(n - i));
        if (kind == 1) memcpy(bu, up + i, sizeof(float) * (size_t)(n - i));
        _mm256_storeu_ps(bx, act8(_mm256_loadu_ps(bx), _mm256_loadu_ps(bu), kind));
        memcpy(x + i, bx, sizeof(float) * (size_t)(n - i));
    }
}
void vv_silu_avx2(float *x, int64_t n) { act_run(x, NULL, n, 0); }
void vv_swiglu_avx2(float *gate, const float *up, int64_t n) { act_run(gate, up, n, 1); }
void vv_quick_gelu_avx2(float *x, int64_t n) { act_run(x, NULL, n, 2); }
void vv_expf_avx2(float *x, int64_t n) { act_run(x, NULL, n, 3); }
