// matmul.c - y = x W^T over the thread pool.
//
// Paths:
//  * tiles (SIMD levels): activations are packed once per call (the
//    vec_dot_type data plus derived sums, kernels_internal.h; in parallel when
//    large), then every thread takes a contiguous range of output rows and
//    streams it once per token block through the tile kernels. Per (row,
//    token) the arithmetic equals vec_dot of that ISA level, so results do not
//    depend on the thread count or the batch size. Decode (n_tok = 1) is one
//    parallel section with a single sequential weight stream per thread.
//  * BLAS (F32/F16/BF16 weights, n_tok >= VV_BLAS_MIN_TOK): activations are
//    rounded through the vec_dot_type like ggml does, weight rows are widened
//    to f32 in fixed 64-row slices and multiplied with OpenBLAS sgemm
//    (single-threaded, one call per slice, slices split over the pool). Same
//    products, different summation order.
//  * scalar (isa = VV_ISA_SCALAR, or no SIMD level in this build): vec_dot per
//    (row, token) on activations converted with from_float. The reference for
//    the tests.
#include "matmul.h"

#include <cblas.h>
#include <pthread.h>
#include <string.h>

#include "kernels_internal.h"

#define VV_BLAS_MIN_TOK 256    // below this the tile kernels beat OpenBLAS 0.3.21 (measured on Zen 5)
#define VV_BLAS_ROWS 64        // weight rows widened to f32 per sgemm call
#define VV_ACT_BLOCK (384 << 10) // bytes of packed activations per token block (L2 resident)
#define VV_PAR_MIN_MACS (1 << 16) // smaller products run on one thread

void vv_wbuf_free(vv_wbuf *w) {
    if (!w) return;
    vv_afree(w->data);
    w->data = NULL;
    w->size = 0;
}

int vv_wbuf_reserve(vv_wbuf *w, size_t size) {
    if (!w) return VISVM_ERR_INVALID;
    if (size <= w->size && w->data) return VISVM_OK;
    size_t want = size + size / 4 + 4096; // grow with slack: prompts of varying length reuse it
    void *p = vv_aalloc(want);
    if (!p) return VISVM_ERR_NOMEM;
    vv_afree(w->data);
    w->data = p;
    w->size = want;
    return VISVM_OK;
}

// ---------------------------------------------------------------------------

typedef struct mm_ctx {
    int type;
    const uint8_t *w;
    size_t ldw;           // bytes between weight rows
    int64_t n_in, n_out, n_tok;
    const float *x;
    float *y;
    int64_t ldy;
    const vv_kernels *k;  // scalar path
    const vv_mm_ops *ops; // tile path
    vv_tile_fn tile;      // ops->tile, or ops->tile_rp when w is a repacked copy
    uint8_t *act;         // packed / converted activations
    size_t act_bytes;     // per token
    uint8_t *scratch;     // per-thread scratch (tile kernels, BLAS widened rows)
    size_t scratch_bytes; // per thread
} mm_ctx;

// Output rows of thread ith, in groups of 4 so tiles stay full (repacked
// weights: of VV_RP_ROWS, the F16 panel height).
static void row_range(const mm_ctx *c, int ith, int nth, int64_t *r0, int64_t *r1) {
    const int64_t q = c->tile && c->tile == (c->ops ? c->ops->tile_rp : NULL) ? VV_RP_ROWS : 4;
    int64_t g0, g1;
    vv_split((c->n_out + q - 1) / q, ith, nth, &g0, &g1);
    *r0 = VV_MIN(g0 * q, c->n_out);
    *r1 = VV_MIN(g1 * q, c->n_out);
}

static void task_pack(void *vc, int ith, int nth) {
    mm_ctx *c = (mm_ctx *)vc;
    int64_t t0, t1;
    vv_split(c->n_tok, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) c->ops->pack(c->x + t * c->n_in, c->act + (size_t)t * c->act_bytes, c->n_in);
}

static void task_tiles(void *vc, int ith, int nth) {
    mm_ctx *c = (mm_ctx *)vc;
    int64_t r0, r1;
    row_range(c, ith, nth, &r0, &r1);
    if (r0 >= r1) return;
    // token blocks keep the packed activations L2-resident while the weight
    // rows of this thread stream past them once per block
    int64_t tb = (int64_t)(VV_ACT_BLOCK / c->act_bytes);
    tb = VV_MAX(16, tb - tb % 16); // the tile kernels take 8 or 16 tokens per pass
    for (int64_t t0 = 0; t0 < c->n_tok; t0 += tb) {
        const int64_t nt = VV_MIN(tb, c->n_tok - t0);
        for (int64_t r = r0; r < r1; r += 256) { // int-sized calls (256: a multiple of VV_RP_ROWS)
            const int nr = (int)VV_MIN(256, r1 - r);
            c->tile(c->n_in, c->w + (size_t)r * c->ldw, c->ldw, nr, c->act + (size_t)t0 * c->act_bytes,
                         c->act_bytes, (int)nt, c->y + t0 * c->ldy + r, (size_t)c->ldy,
                         c->scratch + (size_t)ith * c->scratch_bytes);
        }
    }
}

static void task_scalar(void *vc, int ith, int nth) {
    mm_ctx *c = (mm_ctx *)vc;
    int64_t r0, r1;
    row_range(c, ith, nth, &r0, &r1);
    for (int64_t t = 0; t < c->n_tok; t++)
        for (int64_t r = r0; r < r1; r++)
            c->k->vec_dot(c->n_in, c->y + t * c->ldy + r, c->w + (size_t)r * c->ldw,
                          c->act + (size_t)t * c->act_bytes);
}

// BLAS: x rounded through the vec_dot_type, as f32 [n_tok, n_in].
static void task_round(void *vc, int ith, int nth) {
    mm_ctx *c = (mm_ctx *)vc;
    int64_t t0, t1;
    vv_split(c->n_tok, ith, nth, &t0, &t1);
    for (int64_t t = t0; t < t1; t++) {
        const float *src = c->x + t * c->n_in;
        float *dst = (float *)(c->act + (size_t)t * c->act_bytes);
        if (c->ops) {
            c->ops->pack(src, dst, c->n_in); // F16/BF16 packers round; pads dst up to 16 floats
        } else if (c->type == VV_TYPE_F16) {
            for (int64_t i = 0; i < c->n_in; i++) dst[i] = vv_round_fp16(src[i]);
        } else {
            for (int64_t i = 0; i < c->n_in; i++) dst[i] = vv_bf16_to_fp32(vv_fp32_to_bf16(src[i]));
        }
    }
}

static pthread_once_t g_blas_once = PTHREAD_ONCE_INIT;
// Our pool provides the parallelism; OpenBLAS threads would fight it for cores.
static void blas_init(void) { openblas_set_num_threads(1); }

static void task_blas(void *vc, int ith, int nth) {
    mm_ctx *c = (mm_ctx *)vc;
    // sgemm calls on fixed VV_BLAS_ROWS-row slices at absolute offsets: OpenBLAS
    // picks kernels by shape, so the slicing must not depend on the thread count
    int64_t g0, g1;
    vv_split((c->n_out + VV_BLAS_ROWS - 1) / VV_BLAS_ROWS, ith, nth, &g0, &g1);
    const int64_t r0 = VV_MIN(g0 * VV_BLAS_ROWS, c->n_out), r1 = VV_MIN(g1 * VV_BLAS_ROWS, c->n_out);
    const int64_t K = c->n_in;
    const float *xf = c->type == VV_TYPE_F32 ? c->x : (const float *)c->act;
    const size_t lx = c->type == VV_TYPE_F32 ? (size_t)K : c->act_bytes / sizeof(float);
    float *wf = (float *)(c->scratch + (size_t)ith * c->scratch_bytes);
    for (int64_t r = r0; r < r1; r += VV_BLAS_ROWS) {
        const int64_t nr = VV_MIN(VV_BLAS_ROWS, r1 - r);
        const float *wp;
        size_t lw;
        if (c->type == VV_TYPE_F32) {
            wp = (const float *)(c->w + (size_t)r * c->ldw);
            lw = c->ldw / sizeof(float);
        } else {
            for (int64_t j = 0; j < nr; j++)
                vv_dequantize_row(c->type, c->w + (size_t)(r + j) * c->ldw, wf + (size_t)j * K, K);
            wp = wf;
            lw = (size_t)K;
        }
        // y[t][r + j] = sum_i x[t][i] * w[j][i]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)c->n_tok, (int)nr, (int)K, 1.0f, xf, (int)lx, wp,
                    (int)lw, 0.0f, c->y + r, (int)c->ldy);
    }
}

static int matmul_impl(vv_pool *pool, int type, const void *W, const void *rp, size_t ldw, int64_t n_in,
                       int64_t n_out, const float *x, int64_t n_tok, float *y, int64_t ldy, vv_wbuf *ws, int isa) {
    const vv_kernels *k = vv_get_kernels(type, VV_ISA_SCALAR);
    const vv_type_info *ti = vv_type_get(type);
    if (!k || !k->vec_dot || !ti) return VISVM_ERR_UNSUPPORTED;
    const vv_type_info *ai = vv_type_get(k->vec_dot_type);
    if (n_in <= 0 || n_out < 0 || n_tok < 0 || n_in % ti->blck || n_in % ai->blck || ldy < n_out)
        return VISVM_ERR_INVALID;
    if (n_in > INT32_MAX || n_out > INT32_MAX || n_tok > INT32_MAX || ldy > INT32_MAX) return VISVM_ERR_RANGE;
    if (n_tok == 0 || n_out == 0) return VISVM_OK;
    if (!W || !x || !y) return VISVM_ERR_INVALID;

    vv_wbuf local = {NULL, 0};
    if (!ws) ws = &local;
    mm_ctx c = {0};
    c.type = type;
    c.w = (const uint8_t *)W;
    c.ldw = ldw;
    c.n_in = n_in;
    c.n_out = n_out;
    c.n_tok = n_tok;
    c.x = x;
    c.y = y;
    c.ldy = ldy;

    const int nth_pool = vv_pool_size(pool);
    const double macs = (double)n_in * (double)n_out * (double)n_tok;
    const int nth = macs < VV_PAR_MIN_MACS ? 1 : nth_pool;
    const bool scalar = isa == VV_ISA_SCALAR;
    c.ops = scalar ? NULL : vv_get_mm_ops(type, isa);
    const bool is_float = type == VV_TYPE_F32 || type == VV_TYPE_F16 || type == VV_TYPE_BF16;
    int rc = VISVM_OK;

    // repacked F16 panels beat OpenBLAS at every batch size (its AVX2 kernels here)
    const bool rp_tiles = !scalar && rp && c.ops && c.ops->tile_rp;
    if (!scalar && is_float && n_tok >= VV_BLAS_MIN_TOK && !rp_tiles) {
        pthread_once(&g_blas_once, blas_init);
        size_t xbytes = 0;
        if (type != VV_TYPE_F32) {
            c.act_bytes = c.ops ? c.ops->act_size(n_in) : vv_pad64((size_t)n_in * sizeof(float));
            xbytes = c.act_bytes * (size_t)n_tok;
            c.scratch_bytes = vv_pad64((size_t)VV_BLAS_ROWS * (size_t)n_in * sizeof(float));
        }
        if ((rc = vv_wbuf_reserve(ws, xbytes + c.scratch_bytes * (size_t)nth_pool + 64))) goto done;
        c.act = (uint8_t *)ws->data;
        c.scratch = (uint8_t *)ws->data + xbytes;
        if (type != VV_TYPE_F32) vv_pool_run_n(pool, nth, task_round, &c);
        vv_pool_run_n(pool, nth, task_blas, &c);
        goto done;
    }

    if (c.ops) {
        if (rp && c.ops->tile_rp) c.w = (const uint8_t *)rp; // same row stride (vv_matmul_repack)
        c.act_bytes = c.ops->act_size(n_in);
        c.scratch_bytes = vv_pad64(c.ops->scratch_size(n_in));
        const size_t abytes = vv_pad64(c.act_bytes * (size_t)n_tok);
        if ((rc = vv_wbuf_reserve(ws, abytes + c.scratch_bytes * (size_t)nth_pool))) goto done;
        c.act = (uint8_t *)ws->data;
        c.scratch = (uint8_t *)ws->data + abytes;
        if (n_tok * n_in <= 8192) task_pack(&c, 0, 1); // not worth a parallel section
        else vv_pool_run_n(pool, nth, task_pack, &c);
        c.tile = c.w == (const uint8_t *)rp ? c.ops->tile_rp : c.ops->tile;
        vv_pool_run_n(pool, nth, task_tiles, &c);
        goto done;
    }

    // scalar reference
    c.k = k;
    c.act_bytes = vv_pad64(vv_row_size(k->vec_dot_type, n_in));
    if ((rc = vv_wbuf_reserve(ws, c.act_bytes * (size_t)n_tok))) goto done;
    c.act = (uint8_t *)ws->data;
    for (int64_t t = 0; t < n_tok; t++) k->from_float(x + t * n_in, c.act + (size_t)t * c.act_bytes, n_in);
    vv_pool_run_n(pool, nth, task_scalar, &c);

done:
    vv_wbuf_free(&local);
    return rc;
}

int vv_matmul_raw(vv_pool *pool, int type, const void *W, int64_t n_in, int64_t n_out, const float *x,
                  int64_t n_tok, float *y, int64_t ldy, vv_wbuf *ws, int isa) {
    const size_t rs = vv_row_size(type, n_in);
    if (!rs && vv_type_get(type) && vv_type_get(type)->compute) return VISVM_ERR_INVALID;
    return matmul_impl(pool, type, W, NULL, rs, n_in, n_out, x, n_tok, y, ldy, ws, isa);
}

int vv_matmul(vv_pool *pool, const vv_tensor *W, const float *x, int64_t n_tok, float *y, int64_t ldy,
              vv_wbuf *ws, int isa) {
    if (!W) return VISVM_ERR_INVALID;
    if (W->ne[2] != 1 || W->ne[3] != 1) return VISVM_ERR_INVALID; // a matrix
    const size_t rs = vv_row_size(W->type, W->ne[0]);
    const size_t ldw = W->nb[1] ? W->nb[1] : rs;
    if (ldw < rs) return VISVM_ERR_INVALID;
    const void *rp = isa == VV_ISA_BEST && ldw == rs ? W->repacked : NULL;
    return matmul_impl(pool, W->type, W->data, rp, ldw, W->ne[0], W->ne[1], x, n_tok, y, ldy, ws, isa);
}

typedef struct {
    const vv_mm_ops *ops;
    const vv_tensor *W;
    size_t rs;
    uint8_t *dst;
} rp_ctx;

static void task_repack(void *vc, int ith, int nth) {
    rp_ctx *c = (rp_ctx *)vc;
    int64_t g0, g1; // whole F16 panels per thread
    vv_split((c->W->ne[1] + VV_RP_ROWS - 1) / VV_RP_ROWS, ith, nth, &g0, &g1);
    const int64_t r0 = VV_MIN(g0 * VV_RP_ROWS, c->W->ne[1]), r1 = VV_MIN(g1 * VV_RP_ROWS, c->W->ne[1]);
    if (r1 > r0)
        c->ops->repack((const uint8_t *)c->W->data + (size_t)r0 * c->rs, c->rs, c->W->ne[0], r1 - r0,
                       c->dst + (size_t)r0 * c->rs);
}

size_t vv_matmul_repack_size(const vv_tensor *W) {
    if (!W || !W->data || W->repacked) return 0;
    const vv_mm_ops *ops = vv_get_mm_ops(W->type, VV_ISA_BEST);
    if (!ops || !ops->repack || !ops->tile_rp) return 0;
    if (W->ne[1] <= 0 || W->ne[2] != 1 || W->ne[3] != 1) return 0;
    // F16: whole panels, and only matrices of real-model width (n_in >= 1024): the
    // world's 128-wide models keep the row kernels (and their exact results)
    if (W->type == VV_TYPE_F16 ? W->ne[1] % VV_RP_ROWS != 0 || W->ne[0] < 1024 : W->ne[0] % 512 != 0) return 0;
    const size_t rs = vv_row_size(W->type, W->ne[0]);
    if (W->nb[1] && W->nb[1] != rs) return 0;
    return rs * (size_t)W->ne[1];
}

int vv_matmul_repack_into(vv_pool *pool, vv_tensor *W, void *dst) {
    if (!W || !W->data || !dst || ((uintptr_t)dst & 63)) return VISVM_ERR_INVALID;
    if (!vv_matmul_repack_size(W)) return VISVM_ERR_INVALID;
    rp_ctx c = {vv_get_mm_ops(W->type, VV_ISA_BEST), W, vv_row_size(W->type, W->ne[0]), (uint8_t *)dst};
    vv_pool_run(pool, task_repack, &c);
    W->repacked = dst;
    return VISVM_OK;
}

int vv_matmul_repack(vv_pool *pool, vv_tensor *W) {
    if (!W || !W->data) return VISVM_ERR_INVALID;
    const size_t bytes = vv_matmul_repack_size(W);
    if (!bytes) return VISVM_OK; // already repacked, or nothing to do for this type / shape / CPU
    uint8_t *dst = vv_aalloc(bytes);
    if (!dst) return VISVM_ERR_NOMEM;
    return vv_matmul_repack_into(pool, W, dst);
}

void vv_matmul_repack_free(vv_tensor *W) {
    if (!W) return;
    vv_afree(W->repacked);
    W->repacked = NULL;
}

int vv_get_row(const vv_tensor *W, int64_t row, float *out) {
    if (!W || !out || !W->data) return VISVM_ERR_INVALID;
    if (row < 0 || row >= W->ne[1] || W->ne[2] != 1 || W->ne[3] != 1) return VISVM_ERR_RANGE;
    const size_t rs = vv_row_size(W->type, W->ne[0]);
    const size_t ld = W->nb[1] ? W->nb[1] : rs;
    return vv_dequantize_row(W->type, (const uint8_t *)W->data + (size_t)row * ld, out, W->ne[0]);
}
