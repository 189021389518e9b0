// test_kernels.c - block formats, quantizers and vec_dot kernels.
//
//  * dequantization of hand-made blocks against values computed from the
//    format description (anchors.md 2.3), independently of the decoder;
//  * quantizers on known vectors give exact bytes (Q8_0 ref vs the x86
//    activation variant on rounding ties, Q4_0 with both signs of max);
//  * quantize -> dequantize error and quantized dot-product error bounds on
//    ggml's test-quantize-fns data, plus real RMSE bounds on Gaussian data;
//  * SIMD activation quantizers give the scalar bytes; AVX2 and AVX-512
//    vec_dot agree bit for bit and stay within a float-summation bound of the
//    scalar reference on many random rows (random raw blocks included);
//  * golden: quantizing the F16 tiny-llama weights with our reference
//    quantizers reproduces the tensors of the llama-quantize --pure files
//    byte for byte.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "tcheck.h"
#include "tensor/quants.h"

static const int k_types[] = {VV_TYPE_F32, VV_TYPE_F16, VV_TYPE_BF16, VV_TYPE_Q8_0,
                              VV_TYPE_Q4_0, VV_TYPE_Q4_K, VV_TYPE_Q6_K};
#define N_TYPES ((int)(sizeof(k_types) / sizeof(k_types[0])))

static uint16_t h(float f) { return vv_fp32_to_fp16(f); }

static void fill_normal(vv_rng *r, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = vv_rng_normal(r) * scale;
}

// ---------------------------------------------------------------------------
// Hand-made blocks.

static void test_dequant_known(void) {
    float out[256];

    { // Q8_0: d = 0.5
        vv_block_q8_0 b;
        b.d = h(0.5f);
        for (int j = 0; j < 32; j++) b.qs[j] = (int8_t)(j * 9 - 128 + (j == 31 ? -24 : 0));
        CHECK(vv_dequantize_row(VV_TYPE_Q8_0, &b, out, 32) == VISVM_OK);
        for (int j = 0; j < 32; j++) CHECK(out[j] == 0.5f * b.qs[j]);
        CHECK(out[0] == -64.0f);
    }
    { // Q4_0: low nibbles are values 0..15, high nibbles values 16..31 (not interleaved)
        vv_block_q4_0 b;
        b.d = h(-2.0f);
        for (int j = 0; j < 16; j++) b.qs[j] = (uint8_t)(j | ((15 - j) << 4));
        CHECK(vv_dequantize_row(VV_TYPE_Q4_0, &b, out, 32) == VISVM_OK);
        for (int j = 0; j < 16; j++) {
            CHECK(out[j] == -2.0f * (j - 8));
            CHECK(out[j + 16] == -2.0f * (7 - j));
        }
    }
    { // Q4_K: 8 sub-blocks with 6-bit scales/mins (values > 15 use the high bits)
        const uint8_t sc[8] = {1, 63, 17, 32, 5, 48, 33, 0}, mn[8] = {0, 7, 63, 16, 40, 1, 31, 62};
        vv_block_q4_K b;
        memset(&b, 0, sizeof(b));
        b.d = h(0.25f);
        b.dmin = h(0.125f);
        for (int j = 0; j < 8; j++) {
            if (j < 4) {
                b.scales[j] = sc[j];
                b.scales[j + 4] = mn[j];
            } else {
                b.scales[j + 4] = (uint8_t)((sc[j] & 0xF) | ((mn[j] & 0xF) << 4));
                b.scales[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
                b.scales[j] |= (uint8_t)((mn[j] >> 4) << 6);
            }
        }
        uint8_t q[256];
        for (int v = 0; v < 256; v++) q[v] = (uint8_t)((v * 7 + 3) % 16);
        // chunk c (64 values) uses qs[32c..32c+31]: low nibbles = first 32 values, high = next 32
        for (int c = 0; c < 4; c++)
            for (int l = 0; l < 32; l++) b.qs[32 * c + l] = (uint8_t)(q[64 * c + l] | (q[64 * c + 32 + l] << 4));
        CHECK(vv_dequantize_row(VV_TYPE_Q4_K, &b, out, 256) == VISVM_OK);
        int bad = 0;
        for (int v = 0; v < 256; v++) {
            const int s = v / 32;
            const float want = 0.25f * sc[s] * q[v] - 0.125f * mn[s];
            if (fabsf(out[v] - want) > 1e-6f) bad++;
        }
        CHECKF(bad == 0, "%d Q4_K values differ", bad);
    }
    { // Q6_K: 6-bit quants (value - 32), int8 scale per 16 values
        uint8_t q[256];
        int8_t sc[16];
        for (int v = 0; v < 256; v++) q[v] = (uint8_t)((v * 37 + 11) % 64);
        for (int g = 0; g < 16; g++) sc[g] = (int8_t)(g * 17 - 128);
        vv_block_q6_K b;
        memset(&b, 0, sizeof(b));
        b.d = h(0.5f);
        memcpy(b.scales, sc, 16);
        for (int hf = 0; hf < 2; hf++)
            for (int l = 0; l < 32; l++) {
                const uint8_t q1 = q[128 * hf + l], q2 = q[128 * hf + 32 + l];
                const uint8_t q3 = q[128 * hf + 64 + l], q4 = q[128 * hf + 96 + l];
                b.ql[64 * hf + l] = (uint8_t)((q1 & 0xF) | ((q3 & 0xF) << 4));
                b.ql[64 * hf + 32 + l] = (uint8_t)((q2 & 0xF) | ((q4 & 0xF) << 4));
                b.qh[32 * hf + l] = (uint8_t)((q1 >> 4) | ((q2 >> 4) << 2) | ((q3 >> 4) << 4) | ((q4 >> 4) << 6));
            }
        CHECK(vv_dequantize_row(VV_TYPE_Q6_K, &b, out, 256) == VISVM_OK);
        int bad = 0;
        for (int v = 0; v < 256; v++)
            if (out[v] != 0.5f * sc[v / 16] * (q[v] - 32)) bad++;
        CHECKF(bad == 0, "%d Q6_K values differ", bad);
    }
    { // F16 / BF16 / F32
        const uint16_t hf[4] = {0x3C00, 0xC000, 0x7BFF, 0x0001};
        CHECK(vv_dequantize_row(VV_TYPE_F16, hf, out, 4) == VISVM_OK);
        CHECK(out[0] == 1.0f && out[1] == -2.0f && out[2] == 65504.0f && out[3] == ldexpf(1.0f, -24));
        const uint16_t bf[3] = {0x3F80, 0xC040, 0x4049};
        CHECK(vv_dequantize_row(VV_TYPE_BF16, bf, out, 3) == VISVM_OK);
        CHECK(out[0] == 1.0f && out[1] == -3.0f && out[2] == 3.140625f);
        const float f[2] = {1.5f, -7.25f};
        CHECK(vv_dequantize_row(VV_TYPE_F32, f, out, 2) == VISVM_OK);
        CHECK(out[0] == 1.5f && out[1] == -7.25f);
    }
    // errors
    CHECK(vv_dequantize_row(VV_TYPE_Q4_0, out, out, 31) == VISVM_ERR_INVALID);
    CHECK(vv_dequantize_row(VV_TYPE_Q5_0, out, out, 32) == VISVM_ERR_UNSUPPORTED);
    CHECK(vv_dequantize_row(999, out, out, 32) == VISVM_ERR_UNSUPPORTED);
    CHECK(vv_quantize_row(VV_TYPE_Q4_K, out, out, 128) == VISVM_ERR_INVALID);
    CHECK(vv_quantize_row(VV_TYPE_Q2_K, out, out, 256) == VISVM_ERR_UNSUPPORTED);
    CHECK(vv_vec_dot_type(VV_TYPE_Q4_K) == VV_TYPE_Q8_K && vv_vec_dot_type(VV_TYPE_Q4_0) == VV_TYPE_Q8_0);
    CHECK(vv_vec_dot_type(VV_TYPE_F16) == VV_TYPE_F16 && vv_vec_dot_type(VV_TYPE_Q5_1) == -1);
    CHECK(vv_get_kernels(VV_TYPE_Q5_0, VV_ISA_BEST) == NULL);
    CHECK(vv_get_kernels(VV_TYPE_Q8_K, VV_ISA_BEST) == NULL);
}

// ---------------------------------------------------------------------------
// Quantizers on known vectors.

static void test_quant_known(void) {
    { // Q8_0, amax 127 -> d = 1, quants = values
        float x[32];
        for (int j = 0; j < 32; j++) x[j] = (float)(j * 8 - 127);
        vv_block_q8_0 b;
        CHECK(vv_quantize_row(VV_TYPE_Q8_0, x, &b, 32) == VISVM_OK);
        CHECK(b.d == 0x3C00);
        for (int j = 0; j < 32; j++) CHECK(b.qs[j] == j * 8 - 127);
    }
    { // Q8_0 rounding ties: reference rounds half away from zero (roundf), the
      // x86 activation quantizer rounds half to even (_mm256_round_ps)
        float x[32] = {254, 5, -5, 7, 1, 3, -1, -3, 9, 0.5f};
        const int8_t want_ref[10] = {127, 3, -3, 4, 1, 2, -1, -2, 5, 0};
        const int8_t want_act[10] = {127, 2, -2, 4, 0, 2, 0, -2, 4, 0};
        vv_block_q8_0 b, a, a2;
        vv_quantize_row(VV_TYPE_Q8_0, x, &b, 32);
        vv_get_kernels(VV_TYPE_Q8_0, VV_ISA_SCALAR)->from_float(x, &a, 32);
        vv_get_kernels(VV_TYPE_Q4_0, VV_ISA_BEST)->from_float(x, &a2, 32);
        CHECK(b.d == 0x4000 && a.d == 0x4000);
        for (int j = 0; j < 10; j++) {
            CHECKF(b.qs[j] == want_ref[j], "ref q[%d] = %d, want %d", j, b.qs[j], want_ref[j]);
            CHECKF(a.qs[j] == want_act[j], "act q[%d] = %d, want %d", j, a.qs[j], want_act[j]);
        }
        CHECK(memcmp(&a, &a2, sizeof(a)) == 0);
        for (int j = 10; j < 32; j++) CHECK(b.qs[j] == 0 && a.qs[j] == 0);
    }
    { // Q4_0, max = -8 -> d = 1: q = x + 8
        float x[32];
        for (int j = 0; j < 16; j++) {
            x[j] = (float)(j - 8);
            x[j + 16] = (float)(7 - j);
        }
        vv_block_q4_0 b;
        CHECK(vv_quantize_row(VV_TYPE_Q4_0, x, &b, 32) == VISVM_OK);
        CHECK(b.d == 0x3C00);
        for (int j = 0; j < 16; j++) CHECK(b.qs[j] == (uint8_t)(j | ((15 - j) << 4)));
    }
    { // Q4_0, max = +4 -> d = -0.5, q = min(15, trunc(-2x + 8.5))
        float x[32] = {4, -4, 1, -1, 0.25f, 2.2f, -3.9f, 0};
        vv_block_q4_0 b;
        vv_quantize_row(VV_TYPE_Q4_0, x, &b, 32);
        CHECK(b.d == 0xB800);
        const uint8_t lo[8] = {0, 15, 6, 10, 8, 4, 15, 8};
        for (int j = 0; j < 8; j++) CHECKF((b.qs[j] & 0xF) == lo[j], "q[%d] = %d want %d", j, b.qs[j] & 0xF, lo[j]);
        for (int j = 0; j < 16; j++) CHECK((b.qs[j] >> 4) == 8);
    }
    { // Q8_K: iscale = -127 / (signed max), q = min(127, round(iscale * x)), bsums
        float x[256];
        for (int j = 0; j < 256; j++) x[j] = (float)((j % 16) - 8) * 0.5f; // max magnitude -4 first at j=0
        x[100] = 4.0f;                                                     // same magnitude, later: ignored
        vv_block_q8_K b;
        CHECK(vv_quantize_row(VV_TYPE_Q8_K, x, &b, 256) == VISVM_OK);
        CHECK(b.d == 1.0f / (-127.f / -4.0f)); // the signed max maps to -127
        CHECK(b.qs[0] == -127 && b.qs[8] == 0 && b.qs[100] == 127 && b.qs[15] == 111 && b.qs[1] == -111);
        int ok = 1;
        for (int g = 0; g < 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += b.qs[16 * g + j];
            ok &= s == b.bsums[g];
        }
        CHECK(ok);
    }
}

// ---------------------------------------------------------------------------
// Quantization error bounds.

// ggml tests/test-quantize-fns.cpp: data, "rmse" = sqrt(sum d^2) / n, thresholds.
static void gen_ggml(float offset, int n, float *dst) {
    for (int i = 0; i < n; i++) dst[i] = 0.1f + 2 * cosf(i + offset);
}
static float ggml_rmse(const float *a, const float *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += (double)(a[i] - b[i]) * (a[i] - b[i]);
    return sqrtf((float)s) / n;
}

static void test_quant_error(void) {
    enum { N = 32 * 128 };
    float *x = malloc(N * 4), *x2 = malloc(N * 4), *y = malloc(N * 4);
    uint8_t *q = malloc(N * 4 + 64), *qa = malloc(N * 4 + 64);
    gen_ggml(0.0f, N, x);
    gen_ggml(1.0f, N, x2);
    double dot_ref = 0;
    for (int i = 0; i < N; i++) dot_ref += (double)x[i] * x2[i];
    vv_rng r;
    vv_rng_seed(&r, 7);
    float *g = malloc(N * 4);
    fill_normal(&r, g, N, 1.0f);
    // real RMSE / sigma bounds on N(0,1) data (observed: f16 2.1e-4, bf16 1.7e-3,
    // q8_0 5.4e-3, q4_0 0.086, q4_k 0.070, q6_k 0.018)
    const struct { int type; float rel_rmse; } b[] = {
        {VV_TYPE_F16, 2.8e-4f}, {VV_TYPE_BF16, 2.2e-3f}, {VV_TYPE_Q8_0, 7e-3f},
        {VV_TYPE_Q4_0, 0.11f},  {VV_TYPE_Q4_K, 0.09f},   {VV_TYPE_Q6_K, 0.023f}};
    for (size_t k = 0; k < sizeof(b) / sizeof(b[0]); k++) {
        const int t = b[k].type;
        CHECK(vv_quantize_row(t, x, q, N) == VISVM_OK);
        CHECK(vv_dequantize_row(t, q, y, N) == VISVM_OK);
        const float err = ggml_rmse(x, y, N);
        CHECKF(err < 0.002f, "%s: ggml total quantization error %g", vv_type_name(t), err);
        // quantized dot product vs float dot (ggml MAX_DOT_PRODUCT_ERROR)
        const vv_kernels *kk = vv_get_kernels(t, VV_ISA_SCALAR);
        kk->from_float(x2, qa, N);
        float s = 0;
        kk->vec_dot(N, &s, q, qa);
        const double derr = fabs(s - dot_ref) / N;
        CHECKF(derr < 0.02, "%s: dot product error %g", vv_type_name(t), derr);
        // Gaussian data
        vv_quantize_row(t, g, q, N);
        vv_dequantize_row(t, q, y, N);
        double se = 0;
        for (int i = 0; i < N; i++) se += (double)(g[i] - y[i]) * (g[i] - y[i]);
        const double rel = sqrt(se / N);
        CHECKF(rel < b[k].rel_rmse, "%s: rmse/sigma %g >= %g", vv_type_name(t), rel, b[k].rel_rmse);
        if (getenv("VV_VERBOSE")) printf("%-5s rmse(ggml) %.3g  dot err %.3g  rmse/sigma %.4g\n", vv_type_name(t), err, derr, rel);
    }
    // Q8_K round trip (activation type)
    vv_quantize_row(VV_TYPE_Q8_K, g, q, N);
    vv_dequantize_row(VV_TYPE_Q8_K, q, y, N);
    CHECK(ggml_rmse(g, y, N) < 0.0005f);
    // all-zero blocks
    memset(x, 0, N * 4);
    for (int k = 0; k < N_TYPES; k++) {
        vv_quantize_row(k_types[k], x, q, 512);
        vv_dequantize_row(k_types[k], q, y, 512);
        int nz = 0;
        for (int i = 0; i < 512; i++) nz += y[i] != 0;
        CHECKF(nz == 0, "%s: zeros do not round-trip", vv_type_name(k_types[k]));
    }
    free(x), free(x2), free(y), free(q), free(qa), free(g);
}

// ---------------------------------------------------------------------------
// SIMD against the scalar reference.

// Random weights of `type`: quantized Gaussian data, or (raw) random block
// bytes with sane scales, to hit every bit pattern.
static void random_weights(vv_rng *r, int type, int64_t n, void *dst, bool raw) {
    float *x = malloc((size_t)n * 4);
    fill_normal(r, x, n, 0.5f);
    vv_quantize_row(type, x, dst, n);
    free(x);
    if (!raw) return;
    const vv_type_info *ti = vv_type_get(type);
    uint8_t *p = (uint8_t *)dst;
    const int64_t nb = n / ti->blck;
    for (int64_t b = 0; b < nb; b++) {
        uint8_t *blk = p + b * ti->type_size;
        switch (type) {
        case VV_TYPE_Q8_0:
        case VV_TYPE_Q4_0:
            for (size_t i = 2; i < ti->type_size; i++) blk[i] = (uint8_t)vv_rng_u64(r);
            break;
        case VV_TYPE_Q4_K: {
            vv_block_q4_K *k = (vv_block_q4_K *)blk;
            for (int i = 0; i < 12; i++) k->scales[i] = (uint8_t)vv_rng_u64(r);
            for (int i = 0; i < 128; i++) k->qs[i] = (uint8_t)vv_rng_u64(r);
            k->d = h((float)vv_rng_uniform(r) * 0.01f);
            k->dmin = h((float)vv_rng_uniform(r) * 0.01f);
            break;
        }
        case VV_TYPE_Q6_K: {
            vv_block_q6_K *k = (vv_block_q6_K *)blk;
            for (int i = 0; i < 128; i++) k->ql[i] = (uint8_t)vv_rng_u64(r);
            for (int i = 0; i < 64; i++) k->qh[i] = (uint8_t)vv_rng_u64(r);
            for (int i = 0; i < 16; i++) k->scales[i] = (int8_t)vv_rng_u64(r);
            break;
        }
        default: break;
        }
    }
}

// Sum of |terms| for a float-summation error bound: sum_i |w_i a_i|, plus the
// separately accumulated Q4_K min terms.
static double dot_magnitude(int type, int64_t n, const void *w, const void *a) {
    const int at = vv_vec_dot_type(type);
    float *wf = malloc((size_t)n * 4), *af = malloc((size_t)n * 4), *mf = NULL;
    vv_dequantize_row(type, w, wf, n);
    vv_dequantize_row(at, a, af, n);
    if (type == VV_TYPE_Q4_K) { // dequantizing with zero quants gives -dmin*m per value
        size_t sz = vv_row_size(type, n);
        vv_block_q4_K *z = malloc(sz);
        memcpy(z, w, sz);
        for (int64_t i = 0; i < n / 256; i++) memset(z[i].qs, 0, 128);
        mf = malloc((size_t)n * 4);
        vv_dequantize_row(type, z, mf, n);
        free(z);
    }
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        const double mi = mf ? fabs(mf[i]) : 0;
        m += (fabs(wf[i]) + 2 * mi) * fabs(af[i]);
    }
    free(wf), free(af), free(mf);
    return m;
}

static void test_simd_vs_ref(void) {
    const int best = vv_isa_best();
    printf("cpu: %s; best kernel level: %s\n", vv_cpu_desc(), vv_isa_name(VV_ISA_BEST));
    if (best < VV_ISA_AVX2) {
        printf("no SIMD level on this machine/build: SIMD comparisons skipped\n");
        return;
    }
    vv_rng r;
    vv_rng_seed(&r, 1234);
    const int64_t sizes_q[] = {32, 64, 96, 256, 512, 2048, 4096 + 256};
    const int64_t sizes_f[] = {1, 7, 16, 17, 100, 588, 2048, 4099};
    const int max_n = 8192;
    float *x = malloc(max_n * 4);
    uint8_t *w = malloc(max_n * 4 + 64), *a = malloc(max_n * 4 + 64), *a2 = malloc(max_n * 4 + 64);
    for (int k = 0; k < N_TYPES; k++) {
        const int type = k_types[k];
        const vv_kernels *ks = vv_get_kernels(type, VV_ISA_SCALAR);
        const vv_kernels *k2 = vv_get_kernels(type, VV_ISA_AVX2);
        const vv_kernels *k5 = best >= VV_ISA_AVX512 ? vv_get_kernels(type, VV_ISA_AVX512) : NULL;
        CHECK(ks && k2 && ks != k2);
        const vv_type_info *wi = vv_type_get(type), *ai = vv_type_get(ks->vec_dot_type);
        const bool isf = wi->blck == 1;
        const int64_t *sizes = isf ? sizes_f : sizes_q;
        int worst_ratio_bad = 0, mism25 = 0, fromf_bad = 0, runs = 0;
        double worst = 0;
        for (int si = 0; si < 7; si++) {
            int64_t n = sizes[si];
            if (!isf && ai->blck == 256) n = (n + 255) / 256 * 256;
            for (int rep = 0; rep < 24; rep++) {
                random_weights(&r, type, n, w, rep % 2 == 1);
                const float scale = rep % 3 == 0 ? 1e-3f : rep % 3 == 1 ? 1.0f : 50.0f;
                fill_normal(&r, x, n, scale);
                if (rep == 5) x[n / 2] = 0, x[0] = -x[0]; // sign of max
                // activation quantizers: SIMD bytes == scalar bytes
                const size_t as = vv_row_size(ks->vec_dot_type, n);
                ks->from_float(x, a, n);
                k2->from_float(x, a2, n);
                fromf_bad += memcmp(a, a2, as) != 0;
                if (k5) {
                    k5->from_float(x, a2, n);
                    fromf_bad += memcmp(a, a2, as) != 0;
                }
                float s_ref = 0, s2 = 0, s5 = 0;
                ks->vec_dot(n, &s_ref, w, a);
                k2->vec_dot(n, &s2, w, a);
                if (k5) {
                    k5->vec_dot(n, &s5, w, a);
                    if (memcmp(&s2, &s5, 4) != 0) {
                        if (mism25 < 3)
                            fprintf(stderr, "%s n=%lld: avx2 %.9g != avx512 %.9g\n", vv_type_name(type), (long long)n,
                                    s2, s5);
                        mism25++;
                    }
                }
                const double m = dot_magnitude(type, n, w, a);
                const double nb = (double)n / ai->blck;
                const double tol = (nb + 32) * 1.2e-7 * m + 1e-30;
                const double err = fabs((double)s2 - s_ref);
                if (m > 0 && err / m > worst) worst = err / m;
                if (!(err <= tol)) {
                    if (worst_ratio_bad < 3)
                        fprintf(stderr, "%s n=%lld: simd %.9g ref %.9g err %.3g tol %.3g\n", vv_type_name(type),
                                (long long)n, s2, s_ref, err, tol);
                    worst_ratio_bad++;
                }
                runs++;
            }
        }
        CHECKF(fromf_bad == 0, "%s: %d SIMD activation conversions differ from scalar", vv_type_name(type), fromf_bad);
        CHECKF(worst_ratio_bad == 0, "%s: %d of %d SIMD dots outside the bound", vv_type_name(type), worst_ratio_bad, runs);
        CHECKF(mism25 == 0, "%s: %d AVX2/AVX-512 results differ", vv_type_name(type), mism25);
        if (getenv("VV_VERBOSE")) printf("%-5s %d rows: worst |simd-ref|/sum|w a| = %.3g\n", vv_type_name(type), runs, worst);
    }
    if (best < VV_ISA_AVX512) printf("no AVX-512: AVX-512 comparisons skipped\n");
    free(x), free(w), free(a), free(a2);
}

// Integer parts exact: a dot whose float terms are all exact equals the exact value.
static void test_exact_ints(void) {
    vv_rng r;
    vv_rng_seed(&r, 99);
    enum { N = 1024 };
    for (int isa = VV_ISA_SCALAR; isa <= vv_isa_best(); isa++) {
        // Q8_0 with d = 1 everywhere: the dot is an exact integer < 2^24
        vv_block_q8_0 w[N / 32], a[N / 32];
        int64_t want = 0;
        for (int b = 0; b < N / 32; b++) {
            w[b].d = a[b].d = 0x3C00;
            for (int j = 0; j < 32; j++) {
                w[b].qs[j] = (int8_t)((int)vv_rng_below(&r, 256) - 128);
                a[b].qs[j] = (int8_t)((int)vv_rng_below(&r, 255) - 127);
                want += w[b].qs[j] * a[b].qs[j];
            }
        }
        float s = 0;
        vv_get_kernels(VV_TYPE_Q8_0, isa)->vec_dot(N, &s, w, a);
        CHECKF(s == (float)want, "isa %s: q8_0 dot %g want %lld", vv_isa_name(isa), s, (long long)want);
        vv_block_q4_0 w4[N / 32];
        want = 0;
        for (int b = 0; b < N / 32; b++) {
            w4[b].d = 0x3C00;
            for (int j = 0; j < 16; j++) w4[b].qs[j] = (uint8_t)vv_rng_u64(&r);
            for (int j = 0; j < 16; j++)
                want += ((w4[b].qs[j] & 15) - 8) * a[b].qs[j] + ((w4[b].qs[j] >> 4) - 8) * a[b].qs[j + 16];
        }
        vv_get_kernels(VV_TYPE_Q4_0, isa)->vec_dot(N, &s, w4, a);
        CHECKF(s == (float)want, "isa %s: q4_0 dot %g want %lld", vv_isa_name(isa), s, (long long)want);
    }
}

// ---------------------------------------------------------------------------
// Golden: our reference quantizers reproduce llama-quantize --pure.

typedef struct {
    char name[64];
    int type;
    int64_t ne[4];
    uint64_t off;
} gg_tensor;
typedef struct {
    uint8_t *data;
    size_t size;
    int n;
    gg_tensor t[64];
    size_t data_start;
} gg_file;

// Minimal GGUF v3 walker (anchors.md 2.1): enough to find tensors by name.
static int gg_open(const char *path, gg_file *f) {
    memset(f, 0, sizeof(*f));
    f->data = tc_read(path, &f->size);
    if (!f->data || f->size < 24 || memcmp(f->data, "GGUF", 4) != 0) return -1;
    size_t p = 4;
    uint32_t align = 32;
#define NEED(k)                       \
    do {                              \
        if (p + (k) > f->size) return -1; \
    } while (0)
#define RD(T, v)                 \
    do {                         \
        NEED(sizeof(T));         \
        memcpy(&(v), f->data + p, sizeof(T)); \
        p += sizeof(T);          \
    } while (0)
    uint32_t ver;
    uint64_t nt, nkv, len;
    RD(uint32_t, ver);
    RD(uint64_t, nt);
    RD(uint64_t, nkv);
    if (ver != 3 || nt > 64) return -1;
    static const int vsz[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
    for (uint64_t i = 0; i < nkv; i++) {
        RD(uint64_t, len);
        NEED(len);
        const bool is_align = len == 17 && memcmp(f->data + p, "general.alignment", 17) == 0;
        p += len;
        uint32_t vt;
        RD(uint32_t, vt);
        if (vt == 8) {
            RD(uint64_t, len);
            NEED(len);
            p += len;
        } else if (vt == 9) {
            uint32_t et;
            uint64_t cnt;
            RD(uint32_t, et);
            RD(uint64_t, cnt);
            if (et == 8) {
                for (uint64_t j = 0; j < cnt; j++) {
                    RD(uint64_t, len);
                    NEED(len);
                    p += len;
                }
            } else {
                if (et > 12 || !vsz[et]) return -1;
                NEED(cnt * vsz[et]);
                p += cnt * vsz[et];
            }
        } else {
            if (vt > 12 || !vsz[vt]) return -1;
            if (is_align && vt == 4) memcpy(&align, f->data + p, 4);
            NEED(vsz[vt]);
            p += vsz[vt];
        }
    }
    for (uint64_t i = 0; i < nt; i++) {
        gg_tensor *t = &f->t[f->n++];
        RD(uint64_t, len);
        NEED(len);
        if (len >= sizeof(t->name)) return -1;
        memcpy(t->name, f->data + p, len);
        t->name[len] = 0;
        p += len;
        uint32_t nd;
        RD(uint32_t, nd);
        if (nd > 4) return -1;
        for (int d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < nd; d++) RD(int64_t, t->ne[d]);
        uint32_t ty;
        RD(uint32_t, ty);
        t->type = (int)ty;
        RD(uint64_t, t->off);
    }
#undef RD
#undef NEED
    f->data_start = (p + align - 1) / align * align;
    return 0;
}

static const gg_tensor *gg_find(const gg_file *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

static void test_golden_quantize(void) {
    const char *dir = tc_golden_dir();
    if (!dir) return;
    char path[4200];
    gg_file f16;
    snprintf(path, sizeof(path), "%s/models/tiny-llama-f16.gguf", dir);
    if (gg_open(path, &f16) != 0) {
        CHECKF(0, "cannot parse %s", path);
        free(f16.data);
        return;
    }
    const char *files[] = {"q8_0", "q4_0", "q4_k", "q6_k", "q4_k_m-mix"};
    for (int fi = 0; fi < 5; fi++) {
        gg_file fq;
        snprintf(path, sizeof(path), "%s/models/tiny-llama-%s.gguf", dir, files[fi]);
        if (gg_open(path, &fq) != 0) {
            CHECKF(0, "cannot parse %s", path);
            free(fq.data);
            continue;
        }
        int n_checked = 0, n_exact = 0;
        for (int i = 0; i < fq.n; i++) {
            const gg_tensor *tq = &fq.t[i];
            const gg_tensor *tf = gg_find(&f16, tq->name);
            if (!tf || tq->ne[1] == 1 || tq->type == VV_TYPE_F32) continue; // matrices only
            CHECK(tf->type == VV_TYPE_F16);
            const int64_t n = tq->ne[0] * tq->ne[1];
            const size_t qsz = vv_row_size(tq->type, tq->ne[0]) * (size_t)tq->ne[1];
            if (fq.data_start + tq->off + qsz > fq.size || f16.data_start + tf->off + (size_t)n * 2 > f16.size) {
                CHECKF(0, "%s: tensor %s out of file", files[fi], tq->name);
                continue;
            }
            float *x = malloc((size_t)n * 4);
            uint8_t *q = malloc(qsz);
            vv_dequantize_row(VV_TYPE_F16, f16.data + f16.data_start + tf->off, x, n);
            CHECK(vv_quantize_row(tq->type, x, q, n) == VISVM_OK);
            const uint8_t *ref = fq.data + fq.data_start + tq->off;
            n_checked++;
            if (memcmp(q, ref, qsz) == 0) {
                n_exact++;
            } else {
                size_t nd = 0, first = 0;
                for (size_t b = 0; b < qsz; b++)
                    if (q[b] != ref[b] && nd++ == 0) first = b;
                CHECKF(0, "%s: %s (%s) differs in %zu of %zu bytes, first at %zu", files[fi], tq->name,
                       vv_type_name(tq->type), nd, qsz, first);
            }
            free(x), free(q);
        }
        CHECKF(n_checked >= 15, "%s: only %d tensors checked", files[fi], n_checked);
        printf("golden %-10s: %d/%d quantized tensors byte-identical\n", files[fi], n_exact, n_checked);
        free(fq.data);
    }
    free(f16.data);
}

int main(void) {
    test_dequant_known();
    test_quant_known();
    test_quant_error();
    test_simd_vs_ref();
    test_exact_ints();
    test_golden_quantize();
    return tc_result("test_kernels");
}
