// hf_image.c - LlavaNextImageProcessor as transformers 4.45 + Pillow 9.4 run it.
#include "hf_image.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------
// PIL 8-bit BICUBIC (libImaging/Resample.c)

#define PIL_PRECISION_BITS (32 - 8 - 2)

static double bicubic_filter(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

// Fixed-point coefficients of one axis: bounds [out, 2] (xmin, count), kk [out, ksize].
static int precompute(int in_size, int out_size, int **bounds_out, int32_t **kk_out, int *ksize_out) {
    const double support0 = 2.0;
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = support0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *k = malloc((size_t)ksize * sizeof(double));
    int *bounds = malloc((size_t)out_size * 2 * sizeof(int));
    int32_t *kk = malloc((size_t)out_size * ksize * sizeof(int32_t));
    if (!k || !bounds || !kk) {
        free(k);
        free(bounds);
        free(kk);
        return VISVM_ERR_NOMEM;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        int x;
        for (x = 0; x < xmax; x++) {
            double w = bicubic_filter((x + xmin - center + 0.5) * ss);
            k[x] = w;
            ww += w;
        }
        for (x = 0; x < xmax; x++)
            if (ww != 0.0) k[x] /= ww;
        for (; x < ksize; x++) k[x] = 0;
        for (x = 0; x < ksize; x++)
            kk[(size_t)xx * ksize + x] = k[x] < 0 ? (int32_t)(-0.5 + k[x] * (1 << PIL_PRECISION_BITS))
                                                  : (int32_t)(0.5 + k[x] * (1 << PIL_PRECISION_BITS));
        bounds[xx * 2] = xmin;
        bounds[xx * 2 + 1] = xmax;
    }
    free(k);
    *bounds_out = bounds;
    *kk_out = kk;
    *ksize_out = ksize;
    return VISVM_OK;
}

static inline uint8_t clip8(int32_t in) {
    if (in >= (1 << PIL_PRECISION_BITS << 8)) return 255;
    if (in <= 0) return 0;
    return (uint8_t)(in >> PIL_PRECISION_BITS);
}

// One pass along x (horizontal = true) or y over an RGB image.
static int resample_pass(const vv_image *src, vv_image *dst, int out, bool horizontal, vv_error *e) {
    int *bounds = NULL, ksize = 0;
    int32_t *kk = NULL;
    int in = horizontal ? src->w : src->h;
    if (precompute(in, out, &bounds, &kk, &ksize)) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    int rc = vv_image_alloc(dst, horizontal ? out : src->w, horizontal ? src->h : out, e);
    if (rc) {
        free(bounds);
        free(kk);
        return rc;
    }
    const int W = src->w;
    for (int y = 0; y < dst->h; y++)
        for (int x = 0; x < dst->w; x++) {
            int o = horizontal ? x : y;
            const int32_t *k = kk + (size_t)o * ksize;
            int xmin = bounds[o * 2], xcnt = bounds[o * 2 + 1];
            for (int c = 0; c < 3; c++) {
                int32_t ss = 1 << (PIL_PRECISION_BITS - 1);
                for (int t = 0; t < xcnt; t++) {
                    const uint8_t px = horizontal ? src->rgb[((size_t)y * W + (xmin + t)) * 3 + c]
                                                  : src->rgb[((size_t)(xmin + t) * W + x) * 3 + c];
                    ss += (int32_t)px * k[t];
                }
                dst->rgb[((size_t)y * dst->w + x) * 3 + c] = clip8(ss);
            }
        }
    free(bounds);
    free(kk);
    return VISVM_OK;
}

int vv_pil_resize_bicubic(const vv_image *src, int w, int h, vv_image *dst, vv_error *e) {
    memset(dst, 0, sizeof(*dst));
    if (!src || !src->rgb || src->w <= 0 || src->h <= 0 || w <= 0 || h <= 0)
        return vv_err(e, VISVM_ERR_INVALID, "resize: bad image or target size %dx%d", w, h);
    vv_image tmp = {0};
    const vv_image *cur = src;
    int rc;
    if (w != src->w) {
        if ((rc = resample_pass(src, &tmp, w, true, e))) return rc;
        cur = &tmp;
    }
    if (h != src->h) {
        rc = resample_pass(cur, dst, h, false, e);
        vv_image_free(&tmp);
        return rc;
    }
    if (cur == &tmp) {
        *dst = tmp;
        return VISVM_OK;
    }
    if ((rc = vv_image_alloc(dst, w, h, e))) return rc;
    memcpy(dst->rgb, src->rgb, (size_t)w * h * 3);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// LlavaNextImageProcessor

int vv_hf_select_best_resolution(int h, int w, const int (*pp)[2], int n) {
    if (h <= 0 || w <= 0 || n <= 0) return -1;
    int best = -1;
    long long max_eff = 0;
    double min_waste = INFINITY;
    for (int i = 0; i < n; i++) {
        int ph = pp[i][0], pw = pp[i][1];
        if (ph <= 0 || pw <= 0) continue;
        double sw = (double)pw / w, sh = (double)ph / h, scale = sw < sh ? sw : sh;
        long long dw = (long long)(w * scale), dh = (long long)(h * scale);
        long long eff = dw * dh, full = (long long)w * h;
        if (eff > full) eff = full;
        double waste = (double)((long long)pw * ph - eff);
        if (eff > max_eff || (eff == max_eff && waste < min_waste)) {
            max_eff = eff;
            min_waste = waste;
            best = i;
        }
    }
    return best;
}

// Writes one S x S uint8 tile as normalised CHW floats.
static void normalize_chw(const vv_image *t, const vv_hf_preproc *p, float *out) {
    const int S = p->size;
    for (int c = 0; c < 3; c++) {
        const float m = p->mean[c], s = p->std[c];
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                float v = (float)((double)t->rgb[((size_t)y * S + x) * 3 + c] * p->rescale);
                out[((size_t)c * S + y) * S + x] = (v - m) / s;
            }
    }
}

// HF resize(shortest_edge = S) + center_crop(S) of a tile (no-op for S x S).
static int tile_to_square(const vv_image *t, int S, vv_image *out, vv_error *e) {
    int w = t->w, h = t->h, nw, nh;
    if (w <= h) {
        nw = S;
        nh = (int)((double)S * h / w);
    } else {
        nh = S;
        nw = (int)((double)S * w / h);
    }
    vv_image r = {0};
    int rc = vv_pil_resize_bicubic(t, nw, nh, &r, e);
    if (rc) return rc;
    if (nw == S && nh == S) {
        *out = r;
        return VISVM_OK;
    }
    if (nw < S || nh < S) {
        vv_image_free(&r);
        return vv_err(e, VISVM_ERR_INTERNAL, "tile resized to %dx%d, smaller than %d", nw, nh, S);
    }
    int top = (nh - S) / 2, left = (nw - S) / 2;
    if ((rc = vv_image_alloc(out, S, S, e))) {
        vv_image_free(&r);
        return rc;
    }
    for (int y = 0; y < S; y++) memcpy(out->rgb + (size_t)y * S * 3, r.rgb + ((size_t)(y + top) * nw + left) * 3, (size_t)S * 3);
    vv_image_free(&r);
    return VISVM_OK;
}

void vv_hf_pixels_free(vv_hf_pixels *px) {
    if (!px) return;
    vv_afree(px->data);
    memset(px, 0, sizeof(*px));
}

void vv_hf_preproc_debug_free(vv_hf_preproc_debug *d) {
    if (!d) return;
    vv_image_free(&d->resized);
    vv_image_free(&d->padded);
    vv_image_free(&d->base);
}

int vv_hf_preprocess(const vv_image *img, const vv_hf_preproc *p, vv_hf_pixels *out, vv_hf_preproc_debug *dbg,
                     vv_error *e) {
    memset(out, 0, sizeof(*out));
    if (dbg) memset(dbg, 0, sizeof(*dbg));
    const int S = p->size, H = img->h, W = img->w;
    if (S <= 0 || S > 4096 || p->n_pinpoints <= 0 || p->rescale <= 0)
        return vv_err(e, VISVM_ERR_INVALID, "image processor: bad size %d or no pinpoints", S);
    for (int i = 0; i < p->n_pinpoints; i++)
        if (p->pinpoints[i][0] % S || p->pinpoints[i][1] % S || p->pinpoints[i][0] <= 0 || p->pinpoints[i][1] <= 0 ||
            (int64_t)p->pinpoints[i][0] * p->pinpoints[i][1] > VV_IMAGE_MAX_PIXELS)
            return vv_err(e, VISVM_ERR_INVALID, "image processor: pinpoint %dx%d is not a positive multiple of %d",
                          p->pinpoints[i][0], p->pinpoints[i][1], S);
    int bi = vv_hf_select_best_resolution(H, W, p->pinpoints, p->n_pinpoints);
    if (bi < 0) return vv_err(e, VISVM_ERR_INVALID, "image processor: empty image %dx%d", W, H);
    const int bh = p->pinpoints[bi][0], bw = p->pinpoints[bi][1];
    // resize for patching, keeping the aspect ratio inside (bh, bw)
    double sw = (double)bw / W, sh = (double)bh / H;
    int nh, nw;
    if (sw < sh) {
        nw = bw;
        nh = (int)ceil(H * sw);
        if (nh > bh) nh = bh;
    } else {
        nh = bh;
        nw = (int)ceil(W * sh);
        if (nw > bw) nw = bw;
    }
    if (nh < 1) nh = 1;
    if (nw < 1) nw = 1;
    vv_image resized = {0}, padded = {0}, base = {0}, tile = {0}, sq = {0};
    int rc = vv_pil_resize_bicubic(img, nw, nh, &resized, e);
    if (rc) return rc;
    const int ph = (bh - nh) / 2, pw = (bw - nw) / 2, PH = nh + 2 * ph, PW = nw + 2 * pw;
    if ((rc = vv_image_alloc(&padded, PW, PH, e))) goto fail;
    memset(padded.rgb, 0, (size_t)PW * PH * 3);
    for (int y = 0; y < nh; y++)
        memcpy(padded.rgb + ((size_t)(y + ph) * PW + pw) * 3, resized.rgb + (size_t)y * nw * 3, (size_t)nw * 3);
    if ((rc = vv_pil_resize_bicubic(img, S, S, &base, e))) goto fail;
    const int gh = (PH + S - 1) / S, gw = (PW + S - 1) / S;
    out->n = 1 + gh * gw;
    out->size = S;
    out->orig_h = H;
    out->orig_w = W;
    out->best_h = bh;
    out->best_w = bw;
    out->grid_h = bh / S;
    out->grid_w = bw / S;
    const size_t tile_floats = (size_t)3 * S * S;
    out->data = vv_aalloc((size_t)out->n * tile_floats * sizeof(float));
    if (!out->data) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    normalize_chw(&base, p, out->data);
    for (int ty = 0; ty < gh; ty++)
        for (int tx = 0; tx < gw; tx++) {
            const int y0 = ty * S, x0 = tx * S, th = VV_MIN(S, PH - y0), tw = VV_MIN(S, PW - x0);
            if ((rc = vv_image_alloc(&tile, tw, th, e))) goto fail;
            for (int y = 0; y < th; y++)
                memcpy(tile.rgb + (size_t)y * tw * 3, padded.rgb + ((size_t)(y0 + y) * PW + x0) * 3, (size_t)tw * 3);
            if ((rc = tile_to_square(&tile, S, &sq, e))) goto fail;
            normalize_chw(&sq, p, out->data + (size_t)(1 + ty * gw + tx) * tile_floats);
            vv_image_free(&tile);
            vv_image_free(&sq);
        }
    if (dbg) {
        dbg->resized = resized;
        dbg->padded = padded;
        dbg->base = base;
    } else {
        vv_image_free(&resized);
        vv_image_free(&padded);
        vv_image_free(&base);
    }
    return VISVM_OK;
fail:
    vv_image_free(&resized);
    vv_image_free(&padded);
    vv_image_free(&base);
    vv_image_free(&tile);
    vv_image_free(&sq);
    vv_hf_pixels_free(out);
    return rc;
}
