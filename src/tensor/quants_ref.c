// quants_ref.c - scalar reference kernels: ggml's dequantize_row_*,
// quantize_row_*_ref (ggml-quants.c) and the generic vec_dot_* of ggml-cpu,
// written to give the same bytes / the same integer block sums.
//
// Products of a*b followed by + must not be fused into FMA here, or the
// quantizers' search loops (make_qkx2_quants, make_qx_quants) would pick
// different scales than llama-quantize does.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <string.h>

#include "kernels_internal.h"

#define GROUP_MAX_EPS 1e-15f

static inline float h2f(uint16_t h) { return vv_fp16_to_fp32(h); }

// float -> int truncation that stays defined for NaN / huge inputs (the
// quantizers only see them with broken weights); finite in-range values
// convert exactly as a plain cast.
static inline int trunc_clamped(float v, float lo, float hi) {
    if (!(v >= lo)) v = lo; // NaN too
    if (v > hi) v = hi;
    return (int)v;
}
static inline uint16_t f2h(float f) { return vv_fp32_to_fp16(f); }

// ---------------------------------------------------------------------------
// Dequantization.

void vv_ref_dequant_f32(const void *src, float *dst, int64_t n) { memmove(dst, src, (size_t)n * sizeof(float)); }

void vv_ref_dequant_f16(const void *src, float *dst, int64_t n) {
    const uint16_t *x = (const uint16_t *)src;
    for (int64_t i = 0; i < n; i++) dst[i] = h2f(x[i]);
}

void vv_ref_dequant_bf16(const void *src, float *dst, int64_t n) {
    const uint16_t *x = (const uint16_t *)src;
    for (int64_t i = 0; i < n; i++) dst[i] = vv_bf16_to_fp32(x[i]);
}

void vv_ref_dequant_q8_0(const void *src, float *dst, int64_t n) {
    const vv_block_q8_0 *x = (const vv_block_q8_0 *)src;
    for (int64_t i = 0; i < n / VV_QK8_0; i++) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < VV_QK8_0; j++) dst[i * VV_QK8_0 + j] = x[i].qs[j] * d;
    }
}

void vv_ref_dequant_q4_0(const void *src, float *dst, int64_t n) {
    const vv_block_q4_0 *x = (const vv_block_q4_0 *)src;
    const int qk = VV_QK4_0;
    for (int64_t i = 0; i < n / qk; i++) {
        const float d = h2f(x[i].d);
        for (int j = 0; j < qk / 2; j++) {
            const int x0 = (x[i].qs[j] & 0x0F) - 8;
            const int x1 = (x[i].qs[j] >> 4) - 8;
            dst[i * qk + j] = x0 * d;
            dst[i * qk + j + qk / 2] = x1 * d;
        }
    }
}

void vv_ref_dequant_q4_K(const void *src, float *dst, int64_t n) {
    const vv_block_q4_K *x = (const vv_block_q4_K *)src;
    float *y = dst;
    for (int64_t i = 0; i < n / VV_QK_K; i++) {
        const uint8_t *q = x[i].qs;
        const float d = h2f(x[i].d);
        const float min = h2f(x[i].dmin);
        int is = 0;
        uint8_t sc, m;
        for (int j = 0; j < VV_QK_K; j += 64) {
            vv_q4k_scale_min(is + 0, x[i].scales, &sc, &m);
            const float d1 = d * sc, m1 = min * m;
            vv_q4k_scale_min(is + 1, x[i].scales, &sc, &m);
            const float d2 = d * sc, m2 = min * m;
            for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
            q += 32;
            is += 2;
        }
    }
}

void vv_ref_dequant_q6_K(const void *src, float *dst, int64_t n) {
    const vv_block_q6_K *x = (const vv_block_q6_K *)src;
    float *y = dst;
    for (int64_t i = 0; i < n / VV_QK_K; i++) {
        const float d = h2f(x[i].d);
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        for (int k = 0; k < VV_QK_K; k += 128) {
            for (int l = 0; l < 32; ++l) {
                int is = l / 16;
                const int8_t q1 = (int8_t)((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int8_t q2 = (int8_t)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int8_t q3 = (int8_t)((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int8_t q4 = (int8_t)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                y[l + 0] = d * sc[is + 0] * q1;
                y[l + 32] = d * sc[is + 2] * q2;
                y[l + 64] = d * sc[is + 4] * q3;
                y[l + 96] = d * sc[is + 6] * q4;
            }
            y += 128;
            ql += 64;
            qh += 32;
            sc += 8;
        }
    }
}

void vv_ref_dequant_q8_K(const void *src, float *dst, int64_t n) {
    const vv_block_q8_K *x = (const vv_block_q8_K *)src;
    for (int64_t i = 0; i < n / VV_QK_K; i++)
        for (int j = 0; j < VV_QK_K; j++) dst[i * VV_QK_K + j] = x[i].d * x[i].qs[j];
}

// ---------------------------------------------------------------------------
// Quantization (ggml quantize_row_*_ref).

void vv_ref_quant_f32(const float *x, void *y, int64_t n) { memmove(y, x, (size_t)n * sizeof(float)); }

void vv_ref_quant_f16(const float *x, void *y, int64_t n) { vv_fp32_to_fp16_row(x, (uint16_t *)y, n); }

void vv_ref_quant_bf16(const float *x, void *y, int64_t n) {
    uint16_t *o = (uint16_t *)y;
    for (int64_t i = 0; i < n; i++) o[i] = vv_fp32_to_bf16(x[i]);
}

void vv_ref_quant_q4_0(const float *x, void *vy, int64_t n) {
    vv_block_q4_0 *y = (vv_block_q4_0 *)vy;
    const int qk = VV_QK4_0;
    for (int64_t i = 0; i < n / qk; i++) {
        float amax = 0.0f, max = 0.0f; // signed value of largest magnitude
        for (int j = 0; j < qk; j++) {
            const float v = x[i * qk + j];
            if (amax < fabsf(v)) {
                amax = fabsf(v);
                max = v;
            }
        }
        const float d = max / -8;
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        for (int j = 0; j < qk / 2; ++j) {
            const float x0 = x[i * qk + 0 + j] * id;
            const float x1 = x[i * qk + qk / 2 + j] * id;
            // ggml: MIN(15, (int8_t)(x + 8.5f)); x + 8.5 lies in [0.5, 16.5] for finite input
            const int i0 = trunc_clamped(x0 + 8.5f, 0.f, 127.f), i1 = trunc_clamped(x1 + 8.5f, 0.f, 127.f);
            const uint8_t xi0 = (uint8_t)VV_MIN(15, i0);
            const uint8_t xi1 = (uint8_t)VV_MIN(15, i1);
            y[i].qs[j] = (uint8_t)(xi0 | (xi1 << 4));
        }
    }
}

void vv_ref_quant_q8_0(const float *x, void *vy, int64_t n) {
    vv_block_q8_0 *y = (vv_block_q8_0 *)vy;
    for (int64_t i = 0; i < n / VV_QK8_0; i++) {
        float amax = 0.0f;
        for (int j = 0; j < VV_QK8_0; j++) amax = VV_MAX(amax, fabsf(x[i * VV_QK8_0 + j]));
        const float d = amax / ((1 << 7) - 1);
        const float id = d ? 1.0f / d : 0.0f;
        y[i].d = f2h(d);
        for (int j = 0; j < VV_QK8_0; ++j)
            y[i].qs[j] = (int8_t)trunc_clamped(roundf(x[i * VV_QK8_0 + j] * id), -128.f, 127.f);
    }
}

void vv_ref_quant_q8_0_act(const float *x, void *vy, int64_t n) {
    vv_block_q8_0 *y = (vv_block_q8_0 *)vy;
    for (int64_t i = 0; i < n / VV_QK8_0; i++) {
        const float *xb = x + i * VV_QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < VV_QK8_0; j++) amax = VV_MAX(amax, fabsf(xb[j]));
        const float d = amax / 127.f;
        y[i].d = f2h(d);
        const float id = amax != 0.0f ? 127.f / amax : 0.0f;
        for (int j = 0; j < VV_QK8_0; ++j) {
            int q = vv_nearest_int(xb[j] * id); // _mm256_round_ps(_MM_ROUND_NEAREST)
            y[i].qs[j] = (int8_t)VV_MAX(-128, VV_MIN(127, q));
        }
    }
}

void vv_ref_quant_q8_K(const float *x, void *vy, int64_t n) {
    vv_block_q8_K *y = (vv_block_q8_K *)vy;
    for (int64_t i = 0; i < n / VV_QK_K; i++) {
        float max = 0, amax = 0;
        for (int j = 0; j < VV_QK_K; ++j) {
            float ax = fabsf(x[j]);
            if (ax > amax) {
                amax = ax;
                max = x[j];
            }
        }
        if (!amax) {
            y[i].d = 0;
            memset(y[i].qs, 0, VV_QK_K);
            memset(y[i].bsums, 0, sizeof(y[i].bsums)); // ggml leaves them unset
            x += VV_QK_K;
            continue;
        }
        const float iscale = -127.f / max;
        for (int j = 0; j < VV_QK_K; ++j) {
            int v = vv_nearest_int(iscale * x[j]);
            y[i].qs[j] = (int8_t)VV_MIN(127, v);
        }
        for (int j = 0; j < VV_QK_K / 16; ++j) {
            int sum = 0;
            for (int ii = 0; ii < 16; ++ii) sum += y[i].qs[j * 16 + ii];
            y[i].bsums[j] = (int16_t)sum;
        }
        y[i].d = 1 / iscale;
        x += VV_QK_K;
    }
}

// ggml make_qx_quants (rmse_type 1, no quant weights) as used by Q6_K.
static float make_qx_quants(int n, int nmax, const float *x, int8_t *L, int rmse_type, const float *qw) {
    float max = 0, amax = 0;
    for (int i = 0; i < n; ++i) {
        float ax = fabsf(x[i]);
        if (ax > amax) {
            amax = ax;
            max = x[i];
        }
    }
    if (amax < GROUP_MAX_EPS) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        return 0.f;
    }
    float iscale = -nmax / max;
    if (rmse_type == 0) {
        for (int i = 0; i < n; ++i) {
            int l = vv_nearest_int(iscale * x[i]);
            L[i] = (int8_t)(nmax + VV_MAX(-nmax, VV_MIN(nmax - 1, l)));
        }
        return 1 / iscale;
    }
    bool return_early = false;
    if (rmse_type < 0) {
        rmse_type = -rmse_type;
        return_early = true;
    }
    float sumlx = 0, suml2 = 0;
    for (int i = 0; i < n; ++i) {
        int l = vv_nearest_int(iscale * x[i]);
        l = VV_MAX(-nmax, VV_MIN(nmax - 1, l));
        L[i] = (int8_t)(l + nmax);
        float w = qw ? qw[i]
                 : rmse_type == 1 ? x[i] * x[i]
                 : rmse_type == 2 ? 1
                 : rmse_type == 3 ? fabsf(x[i])
                                  : sqrtf(fabsf(x[i]));
        sumlx += w * x[i] * l;
        suml2 += w * l * l;
    }
    float scale = suml2 ? sumlx / suml2 : 0.0f;
    if (return_early) return suml2 > 0 ? 0.5f * (scale + 1 / iscale) : 1 / iscale;
    float best = scale * sumlx;
    for (int is = -9; is <= 9; ++is) {
        if (is == 0) continue;
        iscale = -(nmax + 0.1f * is) / max;
        sumlx = suml2 = 0;
        for (int i = 0; i < n; ++i) {
            int l = vv_nearest_int(iscale * x[i]);
            l = VV_MAX(-nmax, VV_MIN(nmax - 1, l));
            float w = qw ? qw[i]
                     : rmse_type == 1 ? x[i] * x[i]
                     : rmse_type == 2 ? 1
                     : rmse_type == 3 ? fabsf(x[i])
                                      : sqrtf(fabsf(x[i]));
            sumlx += w * x[i] * l;
            suml2 += w * l * l;
        }
        if (suml2 > 0 && sumlx * sumlx > best * suml2) {
            for (int i = 0; i < n; ++i) {
                int l = vv_nearest_int(iscale * x[i]);
                L[i] = (int8_t)(nmax + VV_MAX(-nmax, VV_MIN(nmax - 1, l)));
            }
            scale = sumlx / suml2;
            best = scale * sumlx;
        }
    }
    return scale;
}

// ggml make_qkx2_quants: scale + min search for the K-quants with mins.
static float make_qkx2_quants(int n, int nmax, const float *x, const float *weights, uint8_t *L, float *the_min,
                              uint8_t *Laux, float rmin, float rdelta, int nstep, bool use_mad) {
    float min = x[0], max = x[0];
    float sum_w = weights[0];
    float sum_x = sum_w * x[0];
    for (int i = 1; i < n; ++i) {
        if (x[i] < min) min = x[i];
        if (x[i] > max) max = x[i];
        float w = weights[i];
        sum_w += w;
        sum_x += w * x[i];
    }
    if (min > 0) min = 0;
    if (max == min) {
        for (int i = 0; i < n; ++i) L[i] = 0;
        *the_min = -min;
        return 0.f;
    }
    float iscale = nmax / (max - min);
    float scale = 1 / iscale;
    float best_error = 0;
    for (int i = 0; i < n; ++i) {
        int l = vv_nearest_int(iscale * (x[i] - min));
        L[i] = (uint8_t)VV_MAX(0, VV_MIN(nmax, l));
        float diff = scale * L[i] + min - x[i];
        diff = use_mad ? fabsf(diff) : diff * diff;
        float w = weights[i];
        best_error += w * diff;
    }
    if (nstep < 1) {
        *the_min = -min;
        return scale;
    }
    for (int is = 0; is <= nstep; ++is) {
        iscale = (rmin + rdelta * is + nmax) / (max - min);
        float sum_l = 0, sum_l2 = 0, sum_xl = 0;
        for (int i = 0; i < n; ++i) {
            int l = vv_nearest_int(iscale * (x[i] - min));
            l = VV_MAX(0, VV_MIN(nmax, l));
            Laux[i] = (uint8_t)l;
            float w = weights[i];
            sum_l += w * l;
            sum_l2 += w * l * l;
            sum_xl += w * l * x[i];
        }
        float D = sum_w * sum_l2 - sum_l * sum_l;
        if (D > 0) {
            float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
            float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
            if (this_min > 0) {
                this_min = 0;
                this_scale = sum_xl / sum_l2;
            }
            float cur_error = 0;
            for (int i = 0; i < n; ++i) {
                float diff = this_scale * Laux[i] + this_min - x[i];
                diff = use_mad ? fabsf(diff) : diff * diff;
                float w = weights[i];
                cur_error += w * diff;
            }
            if (cur_error < best_error) {
                for (int i = 0; i < n; ++i) L[i] = Laux[i];
                best_error = cur_error;
                scale = this_scale;
                min = this_min;
            }
        }
    }
    *the_min = -min;
    return scale;
}

void vv_ref_quant_q4_K(const float *x, void *vy, int64_t n) {
    vv_block_q4_K *y = (vv_block_q4_K *)vy;
    uint8_t L[VV_QK_K];
    uint8_t Laux[32];
    float weights[32];
    float mins[VV_QK_K / 32];
    float scales[VV_QK_K / 32];
    for (int64_t i = 0; i < n / VV_QK_K; i++) {
        float max_scale = 0; // scales are positive (the min is subtracted)
        float max_min = 0;
        for (int j = 0; j < VV_QK_K / 32; ++j) {
            float sum_x2 = 0;
            for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
            float av_x = sqrtf(sum_x2 / 32);
            for (int l = 0; l < 32; ++l) weights[l] = av_x + fabsf(x[32 * j + l]);
            scales[j] = make_qkx2_quants(32, 15, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, -1.f, 0.1f, 20, false);
            if (scales[j] > max_scale) max_scale = scales[j];
            if (mins[j] > max_min) max_min = mins[j];
        }
        float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
        float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
        for (int j = 0; j < VV_QK_K / 32; ++j) {
            uint8_t ls = (uint8_t)vv_nearest_int(inv_scale * scales[j]);
            uint8_t lm = (uint8_t)vv_nearest_int(inv_min * mins[j]);
            ls = VV_MIN(63, ls);
            lm = VV_MIN(63, lm);
            if (j < 4) {
                y[i].scales[j] = ls;
                y[i].scales[j + 4] = lm;
            } else {
                y[i].scales[j + 4] = (uint8_t)((ls & 0xF) | ((lm & 0xF) << 4));
                y[i].scales[j - 4] |= (uint8_t)((ls >> 4) << 6);
                y[i].scales[j - 0] |= (uint8_t)((lm >> 4) << 6);
            }
        }
        y[i].d = f2h(max_scale / 63.f);
        y[i].dmin = f2h(max_min / 63.f);
        uint8_t sc, m;
        for (int j = 0; j < VV_QK_K / 32; ++j) {
            vv_q4k_scale_min(j, y[i].scales, &sc, &m);
            const float d = h2f(y[i].d) * sc;
            if (!d) continue; // keeps the quants make_qkx2_quants chose
            const float dm = h2f(y[i].dmin) * m;
            for (int ii = 0; ii < 32; ++ii) {
                int l = vv_nearest_int((x[32 * j + ii] + dm) / d);
                L[32 * j + ii] = (uint8_t)VV_MAX(0, VV_MIN(15, l));
            }
        }
        uint8_t *q = y[i].qs;
        for (int j = 0; j < VV_QK_K; j += 64) {
            for (int l = 0; l < 32; ++l) q[l] = (uint8_t)(L[j + l] | (L[j + l + 32] << 4));
            q += 32;
        }
        x += VV_QK_K;
    }
}

void vv_ref_quant_q6_K(const float *x, void *vy, int64_t n) {
    vv_block_q6_K *y = (vv_block_q6_K *)vy;
    int8_t L[VV_QK_K];
    float scales[VV_QK_K / 16];
    for (int64_t i = 0; i < n / VV_QK_K; i++) {
        float max_scale = 0, max_abs_scale = 0;
        for (int ib = 0; ib < VV_QK_K / 16; ++ib) {
            const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib, 1, NULL);
            scales[ib] = scale;
            const float abs_scale = fabsf(scale);
            if (abs_scale > max_abs_scale) {
                max_abs_scale = abs_scale;
                max_scale = scale;
            }
        }
        if (max_abs_scale < GROUP_MAX_EPS) {
            memset(&y[i], 0, sizeof(vv_block_q6_K));
            y[i].d = f2h(0.f);
            x += VV_QK_K;
            continue;
        }
        float iscale = -128.f / max_scale;
        y[i].d = f2h(1 / iscale);
        for (int ib = 0; ib < VV_QK_K / 16; ++ib)
            y[i].scales[ib] = (int8_t)VV_MIN(127, vv_nearest_int(iscale * scales[ib]));
        for (int j = 0; j < VV_QK_K / 16; ++j) {
            float d = h2f(y[i].d) * y[i].scales[j];
            if (!d) continue;
            for (int ii = 0; ii < 16; ++ii) {
                int l = vv_nearest_int(x[16 * j + ii] / d);
                l = VV_MAX(-32, VV_MIN(31, l));
                L[16 * j + ii] = (int8_t)(l + 32);
            }
        }
        uint8_t *ql = y[i].ql;
        uint8_t *qh = y[i].qh;
        for (int j = 0; j < VV_QK_K; j += 128) {
            for (int l = 0; l < 32; ++l) {
                const uint8_t q1 = L[j + l + 0] & 0xF;
                const uint8_t q2 = L[j + l + 32] & 0xF;
                const uint8_t q3 = L[j + l + 64] & 0xF;
                const uint8_t q4 = L[j + l + 96] & 0xF;
                ql[l + 0] = (uint8_t)(q1 | (q3 << 4));
                ql[l + 32] = (uint8_t)(q2 | (q4 << 4));
                qh[l] = (uint8_t)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) |
                                  ((L[j + l + 96] >> 4) << 6));
            }
            ql += 64;
            qh += 32;
        }
        x += VV_QK_K;
    }
}

// ---------------------------------------------------------------------------
// Dot products (ggml generic): integer sum per block, then the scales.

void vv_ref_vec_dot_f32(int64_t n, float *s, const void *w, const void *a) {
    const float *x = (const float *)w, *y = (const float *)a;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(x[i] * y[i]);
    *s = (float)sum;
}

void vv_ref_vec_dot_f16(int64_t n, float *s, const void *w, const void *a) {
    const uint16_t *x = (const uint16_t *)w, *y = (const uint16_t *)a;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(h2f(x[i]) * h2f(y[i])); // exact product in f32
    *s = (float)sum;
}

void vv_ref_vec_dot_bf16(int64_t n, float *s, const void *w, const void *a) {
    const uint16_t *x = (const uint16_t *)w, *y = (const uint16_t *)a;
    double sum = 0;
    for (int64_t i = 0; i < n; i++) sum += (double)(vv_bf16_to_fp32(x[i]) * vv_bf16_to_fp32(y[i]));
    *s = (float)sum;
}

void vv_ref_vec_dot_q8_0(int64_t n, float *s, const void *w, const void *a) {
    const vv_block_q8_0 *x = (const vv_block_q8_0 *)w, *y = (const vv_block_q8_0 *)a;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / VV_QK8_0; ib++) {
        int sumi = 0;
        for (int j = 0; j < VV_QK8_0; j++) sumi += x[ib].qs[j] * y[ib].qs[j];
        sumf += sumi * (h2f(x[ib].d) * h2f(y[ib].d));
    }
    *s = sumf;
}

void vv_ref_vec_dot_q4_0(int64_t n, float *s, const void *w, const void *a) {
    const vv_block_q4_0 *x = (const vv_block_q4_0 *)w;
    const vv_block_q8_0 *y = (const vv_block_q8_0 *)a;
    const int qk = VV_QK8_0;
    float sumf = 0;
    for (int64_t ib = 0; ib < n / qk; ib++) {
        int sumi0 = 0, sumi1 = 0;
        for (int j = 0; j < qk / 2; ++j) {
            const int v0 = (x[ib].qs[j] & 0x0F) - 8;
            const int v1 = (x[ib].qs[j] >> 4) - 8;
            sumi0 += v0 * y[ib].qs[j];
            sumi1 += v1 * y[ib].qs[j + qk / 2];
        }
        int sumi = sumi0 + sumi1;
        sumf += sumi * h2f(x[ib].d) * h2f(y[ib].d);
    }
    *s = sumf;
}

void vv_ref_vec_dot_q4_K(int64_t n, float *s, const void *w, const void *a) {
    const vv_block_q4_K *x = (const vv_block_q4_K *)w;
    const vv_block_q8_K *y = (const vv_block_q8_K *)a;
    float sumf = 0;
    for (int64_t i = 0; i < n / VV_QK_K; i++) {
        const uint8_t *q4 = x[i].qs;
        const int8_t *q8 = y[i].qs;
        int32_t isum = 0, imin = 0;
        for (int j = 0; j < VV_QK_K / 64; j++) {
            uint8_t sc0, m0, sc1, m1;
            vv_q4k_scale_min(2 * j, x[i].scales, &sc0, &m0);
            vv_q4k_scale_min(2 * j + 1, x[i].scales, &sc1, &m1);
            int32_t s0 = 0, s1 = 0;
            for (int l = 0; l < 32; l++) {
                s0 += (q4[l] & 0xF) * q8[l];
                s1 += (q4[l] >> 4) * q8[l + 32];
            }
            isum += sc0 * s0 + sc1 * s1;
            imin += m0 * (y[i].bsums[4 * j + 0] + y[i].bsums[4 * j + 1]) +
                    m1 * (y[i].bsums[4 * j + 2] + y[i].bsums[4 * j + 3]);
            q4 += 32;
            q8 += 64;
        }
        const float d = h2f(x[i].d) * y[i].d;
        const float dmin = h2f(x[i].dmin) * y[i].d;
        sumf += d * isum;
        sumf -= dmin * imin;
    }
    *s = sumf;
}

void vv_ref_vec_dot_q6_K(int64_t n, float *s, const void *w, const void *a) {
    const vv_block_q6_K *x = (const vv_block_q6_K *)w;
    const vv_block_q8_K *y = (const vv_block_q8_K *)a;
    float sumf = 0;
    for (int64_t i = 0; i < n / VV_QK_K; i++) {
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        const int8_t *sc = x[i].scales;
        const int8_t *q8 = y[i].qs;
        int32_t isum = 0;
        for (int k = 0; k < VV_QK_K; k += 128) {
            int32_t g[8] = {0};
            for (int l = 0; l < 32; ++l) {
                int is = l / 16;
                const int q1 = ((ql[l + 0] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                const int q3 = ((ql[l + 0] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                g[is + 0] += q1 * q8[l + 0];
                g[is + 2] += q2 * q8[l + 32];
                g[is + 4] += q3 * q8[l + 64];
                g[is + 6] += q4 * q8[l + 96];
            }
            for (int j = 0; j < 8; j++) isum += sc[j] * g[j];
            ql += 64;
            qh += 32;
            sc += 8;
            q8 += 128;
        }
        sumf += h2f(x[i].d) * y[i].d * isum;
    }
    *s = sumf;
}

// ---------------------------------------------------------------------------
// Q8T group record (kernels_internal.h) from up to 16 Q8_0 blocks; lane p
// holds block vv_q8t_block(p).
void vv_q8t_group(const vv_block_q8_0 *blk, int nblk, int shift, uint8_t *rec) {
    memset(rec, 0, VV_Q8T_GROUP);
    int32_t corr[16] = {0};
    float da[16] = {0};
    for (int p = 0; p < 16; p++) {
        const int b = vv_q8t_block(p);
        if (b >= nblk) continue;
        int sum = 0;
        for (int j = 0; j < 8; j++) memcpy(rec + 64 * j + 4 * p, blk[b].qs + 4 * j, 4);
        for (int i = 0; i < 32; i++) sum += blk[b].qs[i];
        corr[p] = -sum * (1 << shift);
        da[p] = h2f(blk[b].d);
    }
    memcpy(rec + 512, corr, sizeof(corr));
    memcpy(rec + 576, da, sizeof(da));
}

// Q8KA layout (kernels_internal.h) from ns Q8_K blocks; equal to what the
// SIMD packer writes for the same quants.
void vv_q8ka_from_blocks(const vv_block_q8_K *b, int64_t ns, uint8_t *dst) {
    size_t o[5];
    vv_q8ka_offsets(ns * VV_QK_K, o);
    memset(dst, 0, o[4]);
    float *d = (float *)(dst + o[0]), *d4 = (float *)(dst + o[3]);
    int16_t *bsums = (int16_t *)(dst + o[1]), *bsum32 = (int16_t *)(dst + o[2]);
    for (int64_t i = 0; i < ns; i++) {
        memcpy(dst + VV_QK_K * i, b[i].qs, VV_QK_K);
        d[i] = b[i].d;
        memcpy(bsums + 16 * i, b[i].bsums, 16 * sizeof(int16_t));
        for (int j = 0; j < 8; j++) bsum32[8 * i + j] = (int16_t)(b[i].bsums[2 * j] + b[i].bsums[2 * j + 1]);
        for (int l = 0; l < 4; l++) d4[4 * i + l] = b[i].d;
    }
}
