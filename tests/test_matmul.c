// test_matmul.c - vv_matmul / vv_matmul_raw / vv_get_row.
//
// For every weight type, n_tok in {1, 2, 3, 6, 16, 33, 100}, odd n_out, small
// and large n_in (odd block counts, float tails), every ISA level and pools of
// 1, 2 and 3 threads:
//  * y matches a float64 reference computed from the dequantized weights and
//    the vec_dot_type-converted activations, within a float-summation bound;
//  * y is bit-identical across thread counts;
//  * on the tile path (SIMD levels; float weights below the BLAS threshold)
//    y equals that level's vec_dot bit for bit, so batched == per token, and
//    AVX2 == AVX-512 bit for bit;
// plus row strides (ldy > n_out), vv_matmul on a vv_tensor, vv_get_row,
// argument errors, and repacked Q4_0/Q8_0 matrices (vv_matmul_repack): the
// same y bit for bit as the raw layout at every batch size and thread count,
// within the reference bound, and a no-op where no repacked kernel applies.
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcheck.h"
#include "tensor/kernels_internal.h"
#include "tensor/matmul.h"

#define BLAS_MIN_TOK 256 // matmul.c: float weights use sgemm from this many tokens

static const int k_types[] = {VV_TYPE_F32, VV_TYPE_F16, VV_TYPE_BF16, VV_TYPE_Q8_0,
                              VV_TYPE_Q4_0, VV_TYPE_Q4_K, VV_TYPE_Q6_K};
static const int64_t k_ntok[] = {1, 2, 3, 6, 16, 33, 100};
#define N_TYPES 7
#define N_NTOK 7

static void fill_normal(vv_rng *r, float *x, int64_t n, float scale) {
    for (int64_t i = 0; i < n; i++) x[i] = vv_rng_normal(r) * scale;
}

// float64 reference: y[t][j] = sum_i deq(W)[j][i] * deq(from_float(x_t))[i];
// mag[t][j] = sum_i |terms| (Q4_K: the min part counted separately).
static void reference(int type, const uint8_t *W, int64_t n_in, int64_t n_out, const float *x, int64_t n_tok,
                      double *yref, double *mag) {
    const vv_kernels *k = vv_get_kernels(type, VV_ISA_SCALAR);
    const int at = k->vec_dot_type;
    const size_t rs = vv_row_size(type, n_in), as = vv_row_size(at, n_in);
    float *wf = malloc((size_t)(n_in * n_out) * 4), *mf = calloc((size_t)(n_in * n_out), 4);
    float *af = malloc((size_t)n_in * 4);
    uint8_t *abuf = malloc(as + 64);
    for (int64_t j = 0; j < n_out; j++) vv_dequantize_row(type, W + j * rs, wf + j * n_in, n_in);
    if (type == VV_TYPE_Q4_K) {
        uint8_t *z = malloc(rs);
        for (int64_t j = 0; j < n_out; j++) {
            memcpy(z, W + j * rs, rs);
            for (int64_t i = 0; i < n_in / 256; i++) memset(((vv_block_q4_K *)z)[i].qs, 0, 128);
            vv_dequantize_row(type, z, mf + j * n_in, n_in);
        }
        free(z);
    }
    for (int64_t t = 0; t < n_tok; t++) {
        k->from_float(x + t * n_in, abuf, n_in);
        vv_dequantize_row(at, abuf, af, n_in);
        for (int64_t j = 0; j < n_out; j++) {
            double s = 0, m = 0;
            for (int64_t i = 0; i < n_in; i++) {
                s += (double)wf[j * n_in + i] * af[i];
                m += (fabs(wf[j * n_in + i]) + 2 * fabs(mf[j * n_in + i])) * fabs(af[i]);
            }
            yref[t * n_out + j] = s;
            mag[t * n_out + j] = m;
        }
    }
    free(wf), free(mf), free(af), free(abuf);
}

static void test_sweep(void) {
    vv_pool *pools[3] = {vv_pool_create(1), vv_pool_create(2), vv_pool_create(3)};
    CHECK(pools[0] && pools[1] && pools[2]);
    const int best = vv_isa_best();
    printf("kernel levels tested: scalar%s%s\n", best >= VV_ISA_AVX2 ? " avx2" : "", best >= VV_ISA_AVX512 ? " avx512" : "");
    vv_rng r;
    vv_rng_seed(&r, 42);
    const int64_t n_out = 37, max_tok = 100;
    vv_wbuf ws = {0};
    for (int ti = 0; ti < N_TYPES; ti++) {
        const int type = k_types[ti];
        const vv_type_info *info = vv_type_get(type);
        const int ablk = vv_type_get(vv_vec_dot_type(type))->blck;
        const int64_t sizes[2] = {info->blck == 1 ? 100 : ablk == 256 ? 256 : 96,
                                  info->blck == 1 ? 2051 : ablk == 256 ? 2048 : 2080};
        for (int si = 0; si < 2; si++) {
            const int64_t n_in = sizes[si];
            const size_t rs = vv_row_size(type, n_in);
            uint8_t *W = malloc(rs * n_out);
            float *xw = malloc((size_t)(n_in * n_out) * 4);
            fill_normal(&r, xw, n_in * n_out, 0.3f);
            vv_quantize_row(type, xw, W, n_in * n_out);
            float *x = malloc((size_t)(n_in * max_tok) * 4);
            fill_normal(&r, x, n_in * max_tok, 1.0f);
            double *yref = malloc(sizeof(double) * (size_t)(n_out * max_tok));
            double *mag = malloc(sizeof(double) * (size_t)(n_out * max_tok));
            reference(type, W, n_in, n_out, x, max_tok, yref, mag);
            // y for every (isa, pool, n_tok); y1 = per-token results (n_tok = 1 calls) per isa
            float *y = malloc(sizeof(float) * (size_t)(n_out * max_tok));
            float *y0 = malloc(sizeof(float) * (size_t)(n_out * max_tok));
            float *ytok[3];
            for (int isa = 0; isa < 3; isa++) ytok[isa] = malloc(sizeof(float) * (size_t)(n_out * max_tok));
            int n_ref_bad = 0, n_thr_bad = 0, n_tok_bad = 0, n_dot_bad = 0, n_isa_bad = 0;
            double worst = 0;
            for (int isa = VV_ISA_SCALAR; isa <= VV_MIN(best, VV_ISA_AVX512); isa++) {
                // per-token results and vec_dot for this level
                const vv_kernels *k = vv_get_kernels(type, isa);
                uint8_t *abuf = malloc(vv_row_size(k->vec_dot_type, n_in) + 64);
                for (int64_t t = 0; t < max_tok; t++) {
                    CHECK(vv_matmul_raw(pools[1], type, W, n_in, n_out, x + t * n_in, 1, ytok[isa] + t * n_out, n_out,
                                        &ws, isa) == VISVM_OK);
                    k->from_float(x + t * n_in, abuf, n_in);
                    for (int64_t j = 0; j < n_out; j++) {
                        float s;
                        k->vec_dot(n_in, &s, W + j * rs, abuf);
                        if (memcmp(&s, &ytok[isa][t * n_out + j], 4) != 0) n_dot_bad++;
                    }
                }
                free(abuf);
                if (isa == VV_ISA_AVX512 && memcmp(ytok[VV_ISA_AVX2], ytok[VV_ISA_AVX512], sizeof(float) * (size_t)(n_out * max_tok)) != 0)
                    n_isa_bad++;
                for (int ni = 0; ni < N_NTOK; ni++) {
                    const int64_t nt = k_ntok[ni];
                    const bool blas = isa != VV_ISA_SCALAR && info->blck == 1 && nt >= BLAS_MIN_TOK;
                    for (int p = 0; p < 3; p++) {
                        vv_pool *pool = pools[p];
                        float *yy = p == 0 ? y0 : y;
                        CHECK(vv_matmul_raw(pool, type, W, n_in, n_out, x, nt, yy, n_out, &ws, isa) == VISVM_OK);
                        if (p > 0 && memcmp(y0, y, sizeof(float) * (size_t)(n_out * nt)) != 0) n_thr_bad++;
                    }
                    for (int64_t e = 0; e < nt * n_out; e++) {
                        const double err = fabs((double)y0[e] - yref[e]);
                        const double nb = (double)n_in / ablk;
                        const double tol = (nb + 32) * 1.2e-7 * mag[e] + 1e-30;
                        if (mag[e] > 0 && err / mag[e] > worst) worst = err / mag[e];
                        if (!(err <= tol)) {
                            if (n_ref_bad < 3)
                                fprintf(stderr, "%s n_in=%lld isa=%s nt=%lld e=%lld: %.9g vs %.9g (tol %.3g)\n",
                                        vv_type_name(type), (long long)n_in, vv_isa_name(isa), (long long)nt,
                                        (long long)e, y0[e], yref[e], tol);
                            n_ref_bad++;
                        }
                    }
                    // batched == per token (every path except BLAS)
                    if (!blas && memcmp(y0, ytok[isa], sizeof(float) * (size_t)(n_out * nt)) != 0) n_tok_bad++;
                }
            }
            CHECKF(n_ref_bad == 0, "%s n_in=%lld: %d results outside the float64 bound", vv_type_name(type),
                   (long long)n_in, n_ref_bad);
            CHECKF(n_thr_bad == 0, "%s n_in=%lld: %d results depend on the thread count", vv_type_name(type),
                   (long long)n_in, n_thr_bad);
            CHECKF(n_tok_bad == 0, "%s n_in=%lld: %d batched results differ from per-token", vv_type_name(type),
                   (long long)n_in, n_tok_bad);
            CHECKF(n_dot_bad == 0, "%s n_in=%lld: %d matmul results differ from vec_dot", vv_type_name(type),
                   (long long)n_in, n_dot_bad);
            CHECKF(n_isa_bad == 0, "%s n_in=%lld: AVX2 and AVX-512 results differ", vv_type_name(type), (long long)n_in);
            if (getenv("VV_VERBOSE"))
                printf("%-5s n_in=%-5lld worst |y - ref| / sum|terms| = %.3g\n", vv_type_name(type), (long long)n_in, worst);
            free(W), free(xw), free(x), free(yref), free(mag), free(y), free(y0);
            for (int isa = 0; isa < 3; isa++) free(ytok[isa]);
        }
    }
    vv_wbuf_free(&ws);
    for (int p = 0; p < 3; p++) vv_pool_free(pools[p]);
}

static void test_api(void) {
    vv_rng r;
    vv_rng_seed(&r, 5);
    const int64_t n_in = 512, n_out = 9, n_tok = 5, ldy = 13;
    const int type = VV_TYPE_Q4_K;
    const size_t rs = vv_row_size(type, n_in);
    uint8_t *W = malloc(rs * n_out);
    float *xw = malloc(sizeof(float) * n_in * n_out), *x = malloc(sizeof(float) * n_in * n_tok);
    fill_normal(&r, xw, n_in * n_out, 1.0f);
    fill_normal(&r, x, n_in * n_tok, 1.0f);
    vv_quantize_row(type, xw, W, n_in * n_out);
    float y1[5 * 13], y2[5 * 13], row[512], deq[512];
    for (int i = 0; i < 5 * 13; i++) y1[i] = y2[i] = -12345.0f;
    // strided output, no scratch buffer given, NULL pool
    CHECK(vv_matmul_raw(NULL, type, W, n_in, n_out, x, n_tok, y1, ldy, NULL, VV_ISA_BEST) == VISVM_OK);
    int pad_ok = 1;
    for (int t = 0; t < n_tok; t++)
        for (int j = n_out; j < ldy; j++) pad_ok &= y1[t * ldy + j] == -12345.0f;
    CHECK(pad_ok);
    // the same through a vv_tensor
    vv_tensor T = {0};
    T.name = "w";
    T.type = type;
    T.n_dims = 2;
    T.ne[0] = n_in, T.ne[1] = n_out, T.ne[2] = T.ne[3] = 1;
    vv_tensor_set_strides(&T);
    T.data = W;
    vv_wbuf ws = {0};
    CHECK(vv_matmul(NULL, &T, x, n_tok, y2, ldy, &ws, VV_ISA_BEST) == VISVM_OK);
    CHECK(memcmp(y1, y2, sizeof(y1)) == 0);
    // get_row
    CHECK(vv_get_row(&T, 7, row) == VISVM_OK);
    vv_dequantize_row(type, W + 7 * rs, deq, n_in);
    CHECK(memcmp(row, deq, sizeof(row)) == 0);
    CHECK(vv_get_row(&T, n_out, row) == VISVM_ERR_RANGE);
    CHECK(vv_get_row(&T, -1, row) == VISVM_ERR_RANGE);
    CHECK(vv_get_row(NULL, 0, row) == VISVM_ERR_INVALID);
    // errors
    CHECK(vv_matmul(NULL, NULL, x, n_tok, y2, ldy, &ws, VV_ISA_BEST) == VISVM_ERR_INVALID);
    CHECK(vv_matmul_raw(NULL, type, W, 500, n_out, x, n_tok, y2, ldy, &ws, VV_ISA_BEST) == VISVM_ERR_INVALID);
    CHECK(vv_matmul_raw(NULL, VV_TYPE_Q5_0, W, n_in, n_out, x, n_tok, y2, ldy, &ws, VV_ISA_BEST) ==
          VISVM_ERR_UNSUPPORTED);
    CHECK(vv_matmul_raw(NULL, type, W, n_in, n_out, x, n_tok, y2, n_out - 1, &ws, VV_ISA_BEST) == VISVM_ERR_INVALID);
    CHECK(vv_matmul_raw(NULL, type, NULL, n_in, n_out, x, n_tok, y2, ldy, &ws, VV_ISA_BEST) == VISVM_ERR_INVALID);
    CHECK(vv_matmul_raw(NULL, VV_TYPE_Q8_0, W, 48, n_out, x, n_tok, y2, ldy, &ws, VV_ISA_BEST) == VISVM_ERR_INVALID);
    CHECK(vv_matmul_raw(NULL, type, W, n_in, n_out, x, 0, y2, ldy, &ws, VV_ISA_BEST) == VISVM_OK);
    T.ne[2] = 2;
    CHECK(vv_matmul(NULL, &T, x, n_tok, y2, ldy, &ws, VV_ISA_BEST) == VISVM_ERR_INVALID);
    vv_wbuf_free(&ws);
    vv_wbuf_free(NULL);
    free(W), free(xw), free(x);
}

// Prefill-sized product through the BLAS path and the quantized tile path
// with several token blocks: still equal to the reference and thread-independent.
static void test_large(void) {
    vv_rng r;
    vv_rng_seed(&r, 77);
    vv_pool *p1 = vv_pool_create(1), *p2 = vv_pool_create(2), *p3 = vv_pool_create(3);
    const int64_t n_in = 1024, n_out = 131, n_tok = 300; // BLAS path; 3 sgemm slices of 64 rows
    const int types[3] = {VV_TYPE_F16, VV_TYPE_F32, VV_TYPE_Q4_0};
    vv_wbuf ws = {0};
    for (int k = 0; k < 3; k++) {
        const int type = types[k];
        const size_t rs = vv_row_size(type, n_in);
        uint8_t *W = malloc(rs * n_out);
        float *xw = malloc(sizeof(float) * n_in * n_out), *x = malloc(sizeof(float) * n_in * n_tok);
        float *y1 = malloc(sizeof(float) * n_out * n_tok), *y2 = malloc(sizeof(float) * n_out * n_tok);
        double *yref = malloc(sizeof(double) * n_out * n_tok), *mag = malloc(sizeof(double) * n_out * n_tok);
        fill_normal(&r, xw, n_in * n_out, 0.2f);
        fill_normal(&r, x, n_in * n_tok, 1.0f);
        vv_quantize_row(type, xw, W, n_in * n_out);
        reference(type, W, n_in, n_out, x, n_tok, yref, mag);
        CHECK(vv_matmul_raw(p1, type, W, n_in, n_out, x, n_tok, y1, n_out, &ws, VV_ISA_BEST) == VISVM_OK);
        CHECK(vv_matmul_raw(p2, type, W, n_in, n_out, x, n_tok, y2, n_out, &ws, VV_ISA_BEST) == VISVM_OK);
        CHECKF(memcmp(y1, y2, sizeof(float) * n_out * n_tok) == 0, "%s: large product depends on threads",
               vv_type_name(type));
        CHECK(vv_matmul_raw(p3, type, W, n_in, n_out, x, n_tok, y2, n_out, &ws, VV_ISA_BEST) == VISVM_OK);
        CHECKF(memcmp(y1, y2, sizeof(float) * n_out * n_tok) == 0, "%s: large product depends on threads (3)",
               vv_type_name(type));
        int bad = 0;
        for (int64_t e = 0; e < n_out * n_tok; e++)
            if (!(fabs(y1[e] - yref[e]) <= (n_in / vv_type_get(type)->blck + 32) * 1.2e-7 * mag[e])) bad++;
        CHECKF(bad == 0, "%s: %d large-product results outside the bound", vv_type_name(type), bad);
        free(W), free(xw), free(x), free(y1), free(y2), free(yref), free(mag);
    }
    vv_wbuf_free(&ws);
    vv_pool_free(p1);
    vv_pool_free(p2);
    vv_pool_free(p3);
}

static void test_repack(void) {
    vv_rng r;
    vv_rng_seed(&r, 91);
    vv_pool *p1 = vv_pool_create(1), *p2 = vv_pool_create(2);
    const int64_t n_out = 37; // odd rows over 2 threads
    // 17, 23, 40 tokens: register blocks of 4 rows x 5 tokens with tails; with 3 groups of 16
    // blocks per row (n_in 1536) 16 tokens take the row path, with 5 (2560) the blocks;
    // 4-8 tokens: Q4_0 rows in passes of up to 3 tokens (3+1, 3+2, 3+3, 3+3+1, 3+3+2); with 10
    // groups (5120) 7 and 8 tokens, whose records outgrow L1, take the blocks too
    const int64_t ntok[] = {1, 2, 4, 5, 6, 7, 8, 16, 17, 23, 40};
    const int types[2] = {VV_TYPE_Q8_0, VV_TYPE_Q4_0};
    const vv_mm_ops *ops = vv_get_mm_ops(VV_TYPE_Q8_0, VV_ISA_BEST);
    const bool have = ops && ops->repack;
    vv_wbuf ws = {0};
    for (int k = 0; k < 6; k++) {
        const int type = types[k % 2];
        const int64_t n_in = k < 2 ? 1536 : k < 4 ? 2560 : 5120;
        const size_t rs = vv_row_size(type, n_in);
        uint8_t *W = malloc(rs * n_out), *W0 = malloc(rs * n_out);
        float *xw = malloc(sizeof(float) * n_in * n_out), *x = malloc(sizeof(float) * n_in * 40);
        float *y0 = malloc(sizeof(float) * n_out * 40), *y1 = malloc(sizeof(float) * n_out * 40);
        double *yref = malloc(sizeof(double) * n_out * 40), *mag = malloc(sizeof(double) * n_out * 40);
        fill_normal(&r, xw, n_in * n_out, 0.2f);
        fill_normal(&r, x, n_in * 40, 1.0f);
        vv_quantize_row(type, xw, W, n_in * n_out);
        memcpy(W0, W, rs * n_out);
        vv_tensor t = {"w", type, 2, {n_in, n_out, 1, 1}, {0}, W, NULL};
        vv_tensor_set_strides(&t);
        CHECK(vv_matmul_repack(p2, &t) == VISVM_OK);
        CHECKF((t.repacked != NULL) == have, "%s: repacked %d, kernel available %d", vv_type_name(type),
               t.repacked != NULL, have);
        CHECKF(memcmp(W, W0, rs * n_out) == 0, "%s: repacking changed the raw data", vv_type_name(type));
        if (t.repacked) CHECKF(memcmp(t.repacked, W, rs * n_out) != 0, "%s: repacked copy equals the raw rows", vv_type_name(type));
        reference(type, W, n_in, n_out, x, 40, yref, mag);
        for (size_t i = 0; i < sizeof(ntok) / sizeof(ntok[0]); i++) {
            const int64_t nt = ntok[i];
            CHECK(vv_matmul_raw(p1, type, W, n_in, n_out, x, nt, y0, n_out, &ws, VV_ISA_BEST) == VISVM_OK);
            for (int th = 1; th <= 2; th++) {
                memset(y1, 0, sizeof(float) * n_out * nt);
                CHECK(vv_matmul(th == 1 ? p1 : p2, &t, x, nt, y1, n_out, &ws, VV_ISA_BEST) == VISVM_OK);
                CHECKF(memcmp(y0, y1, sizeof(float) * n_out * nt) == 0,
                       "%s n_tok %lld threads %d: repacked result differs from the raw layout", vv_type_name(type),
                       (long long)nt, th);
            }
            int bad = 0;
            for (int64_t e = 0; e < n_out * nt; e++)
                if (!(fabs(y1[e] - yref[e]) <= (n_in / 32 + 32) * 1.2e-7 * mag[e])) bad++;
            CHECKF(bad == 0, "%s n_tok %lld: %d repacked results outside the bound", vv_type_name(type),
                   (long long)nt, bad);
        }
        // the scalar level still reads the raw rows
        CHECK(vv_matmul(p1, &t, x, 6, y1, n_out, &ws, VV_ISA_SCALAR) == VISVM_OK);
        vv_matmul_repack_free(&t);
        CHECK(t.repacked == NULL);
        vv_matmul_repack_free(&t); // twice is fine
        free(W), free(W0), free(xw), free(x), free(y0), free(y1), free(yref), free(mag);
    }
    // F16 panels (32 rows x the input, rows along the vector lanes): within the
    // reference bound, and bit-identical whatever the batch size and thread
    // count (one FMA chain per row and token); 96 rows = 3 panels over 2 threads
    {
        const int64_t n_in = 1024, n_out = 96, NT = 40;
        const int64_t ntoks[] = {1, 2, 6, 12, 13, 25, 40}; // chunks of 12 tokens with tails
        const size_t rs = vv_row_size(VV_TYPE_F16, n_in);
        const vv_mm_ops *o16 = vv_get_mm_ops(VV_TYPE_F16, VV_ISA_BEST);
        uint8_t *W = malloc(rs * n_out), *W0 = malloc(rs * n_out);
        float *xw = malloc(sizeof(float) * n_in * n_out), *x = malloc(sizeof(float) * n_in * NT);
        float *y1 = malloc(sizeof(float) * n_out * NT), *yt = malloc(sizeof(float) * n_out * NT);
        double *yref = malloc(sizeof(double) * n_out * NT), *mag = malloc(sizeof(double) * n_out * NT);
        fill_normal(&r, xw, n_in * n_out, 0.2f);
        fill_normal(&r, x, n_in * NT, 1.0f);
        vv_quantize_row(VV_TYPE_F16, xw, W, n_in * n_out);
        memcpy(W0, W, rs * n_out);
        vv_tensor t = {"w", VV_TYPE_F16, 2, {n_in, n_out, 1, 1}, {0}, W, NULL};
        vv_tensor_set_strides(&t);
        CHECK(vv_matmul_repack(p2, &t) == VISVM_OK);
        CHECKF((t.repacked != NULL) == (o16 && o16->repack != NULL), "f16: repacked %d", t.repacked != NULL);
        CHECK(memcmp(W, W0, rs * n_out) == 0);
        reference(VV_TYPE_F16, W, n_in, n_out, x, NT, yref, mag);
        // each token alone: the per-token result every batch must reproduce
        for (int64_t tk = 0; tk < NT; tk++)
            CHECK(vv_matmul(p1, &t, x + tk * n_in, 1, yt + tk * n_out, n_out, &ws, VV_ISA_BEST) == VISVM_OK);
        int bad = 0;
        for (int64_t e = 0; e < n_out * NT; e++)
            if (!(fabs(yt[e] - yref[e]) <= (n_in + 32) * 1.2e-7 * mag[e])) bad++;
        CHECKF(bad == 0, "f16 repacked: %d results outside the bound", bad);
        for (size_t i = 0; i < sizeof(ntoks) / sizeof(ntoks[0]); i++)
            for (int th = 1; th <= 2; th++) {
                const int64_t nt = ntoks[i];
                memset(y1, 0, sizeof(float) * n_out * nt);
                CHECK(vv_matmul(th == 1 ? p1 : p2, &t, x, nt, y1, n_out, &ws, VV_ISA_BEST) == VISVM_OK);
                CHECKF(memcmp(y1, yt, sizeof(float) * n_out * nt) == 0,
                       "f16 repacked n_tok %lld threads %d: differs from the tokens alone", (long long)nt, th);
            }
        // narrower inputs and rows not a multiple of 32 stay raw
        vv_tensor nar = {"n", VV_TYPE_F16, 2, {512, 96, 1, 1}, {0}, W, NULL}, odd = {"o", VV_TYPE_F16, 2, {1024, 40, 1, 1}, {0}, W, NULL};
        vv_tensor_set_strides(&nar);
        vv_tensor_set_strides(&odd);
        CHECK(vv_matmul_repack_size(&nar) == 0 && vv_matmul_repack_size(&odd) == 0);
        vv_matmul_repack_free(&t);
        free(W), free(W0), free(xw), free(x), free(y1), free(yt), free(yref), free(mag);
    }
    // no repacked kernel: rows not a multiple of 512, other types
    {
        const int64_t n = 256;
        uint8_t *W = calloc(vv_row_size(VV_TYPE_Q8_0, n), 4);
        vv_tensor t = {"w", VV_TYPE_Q8_0, 2, {n, 4, 1, 1}, {0}, W, NULL};
        vv_tensor_set_strides(&t);
        CHECK(vv_matmul_repack(NULL, &t) == VISVM_OK && t.repacked == NULL);
        float *F = calloc(512 * 4, sizeof(float));
        vv_tensor f = {"f", VV_TYPE_F32, 2, {512, 4, 1, 1}, {0}, F, NULL};
        vv_tensor_set_strides(&f);
        CHECK(vv_matmul_repack(NULL, &f) == VISVM_OK && f.repacked == NULL);
        CHECK(vv_matmul_repack(NULL, NULL) == VISVM_ERR_INVALID);
        free(W), free(F);
    }
    vv_wbuf_free(&ws);
    vv_pool_free(p1);
    vv_pool_free(p2);
}

int main(void) {
    test_repack();
    test_sweep();
    test_api();
    test_large();
    return tc_result("test_matmul");
}
