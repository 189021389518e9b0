// image.c - image decoding (stb_image), PNG writing (stb_image_write) and the
// LLaVA-1.5 / LLaVA-1.6 preprocessing of llama.cpp's clip.cpp (Feb 2025),
// reproduced operation by operation so the results are bit-exact.

// The arithmetic below must not be contracted into FMAs behind our back: where
// the reference build fused a multiply-add we call fmaf() explicitly.
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include "image.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

// Debian's libstb already contains the implementations: headers only here.
#include <stb_image.h>
#include <stb_image_write.h>

// ---------------------------------------------------------------------------
// Allocation

static int dims_err(int w, int h, const char *what, vv_error *e) {
    if (w <= 0 || h <= 0)
        return vv_err(e, VISVM_ERR_FORMAT, "%s has an invalid size %dx%d", what, w, h);
    if (w > VV_IMAGE_MAX_SIDE || h > VV_IMAGE_MAX_SIDE)
        return vv_err(e, VISVM_ERR_RANGE, "%s is %dx%d pixels: a side exceeds the limit of %d pixels", what, w, h,
                      VV_IMAGE_MAX_SIDE);
    if ((long long)w * h > VV_IMAGE_MAX_PIXELS)
        return vv_err(e, VISVM_ERR_RANGE, "%s is %dx%d = %lld pixels: exceeds the limit of %lld pixels", what, w, h,
                      (long long)w * h, (long long)VV_IMAGE_MAX_PIXELS);
    return VISVM_OK;
}

static bool dims_ok(int w, int h) {
    return w > 0 && h > 0 && w <= VV_IMAGE_MAX_SIDE && h <= VV_IMAGE_MAX_SIDE && (long long)w * h <= VV_IMAGE_MAX_PIXELS;
}

int vv_image_alloc(vv_image *img, int w, int h, vv_error *e) {
    if (!img) return vv_err(e, VISVM_ERR_INVALID, "vv_image_alloc: NULL image");
    img->w = img->h = 0;
    img->rgb = NULL;
    if (w <= 0 || h <= 0) return vv_err(e, VISVM_ERR_INVALID, "vv_image_alloc: invalid size %dx%d", w, h);
    int rc = dims_err(w, h, "image", e);
    if (rc) return rc;
    img->rgb = vv_aalloc((size_t)w * (size_t)h * 3); // <= 3 * 64M: no overflow
    if (!img->rgb) return vv_err(e, VISVM_ERR_NOMEM, "out of memory for a %dx%d image", w, h);
    img->w = w;
    img->h = h;
    return VISVM_OK;
}

void vv_image_free(vv_image *img) {
    if (!img) return;
    vv_afree(img->rgb);
    img->rgb = NULL;
    img->w = img->h = 0;
}

// ---------------------------------------------------------------------------
// Decoding

static uint32_t be32(const uint8_t *p) { return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]; }
static int be16(const uint8_t *p) { return p[0] << 8 | p[1]; }

// Reads the declared size from a PNG IHDR or a JPEG SOFn header. Used only to
// explain a refusal: stb_image's own info call rejects w*h*3 > 2^30 with a terse
// "too large" before we can apply our limits.
static bool peek_dims(const uint8_t *b, size_t n, long long *w, long long *h) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 24 && !memcmp(b, png_sig, 8) && !memcmp(b + 12, "IHDR", 4)) {
        *w = be32(b + 16);
        *h = be32(b + 20);
        return true;
    }
    if (n >= 4 && b[0] == 0xff && b[1] == 0xd8) {
        size_t i = 2;
        while (i + 4 <= n) {
            if (b[i] != 0xff) return false;
            int m = b[i + 1];
            if (m == 0xff) { i++; continue; } // fill byte
            if (m == 0xd8 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) { i += 2; continue; }
            if (m == 0xd9 || m == 0xda) return false; // EOI / SOS before any SOF
            size_t len = (size_t)be16(b + i + 2);
            bool sof = m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc;
            if (sof) {
                if (i + 9 > n) return false;
                *h = be16(b + i + 5); // [len:2][precision:1][height:2][width:2]
                *w = be16(b + i + 7);
                return true;
            }
            i += 2 + len;
        }
    }
    return false;
}

// stb_image's failure reason, made printable. It is only a hint: stb tries the
// formats in turn and a failing decoder does not always set it, so it may name
// another format's test ("bad png sig" for a broken JPEG), and for an unknown
// PNG chunk it is the raw chunk type (empty or "ID" when the file is cut).
static void stb_reason(char *buf, size_t size) {
    const char *r = stbi_failure_reason();
    size_t n = 0;
    for (; r && r[n] && n + 1 < size && n < 64; n++) buf[n] = (r[n] >= 0x20 && r[n] < 0x7f) ? r[n] : '?';
    buf[n] = 0;
    if (n == 0) snprintf(buf, size, "no reason given");
}

// Our own diagnosis of a file stb refused, for a clearer message: the format
// from its magic bytes, and whether the file is visibly truncated.
static void diagnose(const uint8_t *b, size_t n, char *buf, size_t size) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (n >= 8 && !memcmp(b, png_sig, 8)) {
        // walk the chunks: [length:4][type:4][data][crc:4]
        size_t off = 8;
        while (off + 8 <= n) {
            const uint32_t len = be32(b + off);
            char type[5];
            for (int i = 0; i < 4; i++) type[i] = (b[off + 4 + i] >= 0x20 && b[off + 4 + i] < 0x7f) ? (char)b[off + 4 + i] : '?';
            type[4] = 0;
            if ((uint64_t)len + 12 > n - off) {
                snprintf(buf, size, "truncated PNG: chunk '%s' at byte %zu needs %llu bytes, the data ends at byte %zu", type,
                         off, (unsigned long long)len + 12, n);
                return;
            }
            if (!memcmp(type, "IEND", 4)) {
                snprintf(buf, size, "corrupt PNG");
                return;
            }
            off += (size_t)len + 12;
        }
        snprintf(buf, size, "truncated PNG: the data ends at byte %zu before the IEND chunk", n);
    } else if (n >= 2 && b[0] == 0xff && b[1] == 0xd8) {
        bool eoi = false;
        for (size_t i = 2; i + 1 < n && !eoi; i++) eoi = b[i] == 0xff && b[i + 1] == 0xd9;
        snprintf(buf, size, eoi ? "corrupt JPEG" : "truncated JPEG: no end-of-image marker in %zu bytes", n);
    } else if (n >= 4 && !memcmp(b, "GIF8", 4)) {
        snprintf(buf, size, "corrupt or truncated GIF");
    } else if (n >= 2 && !memcmp(b, "BM", 2)) {
        snprintf(buf, size, "corrupt or truncated BMP");
    } else {
        snprintf(buf, size, "not a supported image format (PNG, JPEG, BMP, TGA, GIF, PSD, PNM, HDR) or corrupt");
    }
}

static int decode_err(const uint8_t *b, size_t n, const char *name, vv_error *e) {
    char why[96], diag[160];
    stb_reason(why, sizeof(why));
    diagnose(b, n, diag, sizeof(diag));
    return vv_err(e, VISVM_ERR_FORMAT, "cannot decode image '%s': %s (stb_image: %s)", name, diag, why);
}

static int decode_mem(const uint8_t *buf, size_t size, const char *name, vv_image *out, vv_error *e) {
    if (size == 0) return vv_err(e, VISVM_ERR_FORMAT, "image '%s' is empty", name);
    if (size > (size_t)INT_MAX)
        return vv_err(e, VISVM_ERR_RANGE, "image '%s' is %zu bytes: exceeds the limit of %d bytes", name, size, INT_MAX);
    char what[300];
    snprintf(what, sizeof(what), "image '%s'", name);

    int w = 0, h = 0, c = 0;
    if (!stbi_info_from_memory(buf, (int)size, &w, &h, &c)) {
        long long pw, ph;
        if (peek_dims(buf, size, &pw, &ph) && pw > 0 && ph > 0 &&
            (pw > VV_IMAGE_MAX_SIDE || ph > VV_IMAGE_MAX_SIDE || pw * ph > VV_IMAGE_MAX_PIXELS)) {
            int rc = dims_err(pw > INT_MAX ? INT_MAX : (int)pw, ph > INT_MAX ? INT_MAX : (int)ph, what, e);
            if (rc) return rc;
        }
        return decode_err(buf, size, name, e);
    }
    int rc = dims_err(w, h, what, e); // before allocating anything
    if (rc) return rc;

    int w2 = 0, h2 = 0;
    uint8_t *px = stbi_load_from_memory(buf, (int)size, &w2, &h2, &c, 3);
    if (!px) return decode_err(buf, size, name, e);
    if (w2 != w || h2 != h) {
        stbi_image_free(px);
        return vv_err(e, VISVM_ERR_FORMAT, "image '%s': header says %dx%d but %dx%d pixels were decoded", name, w, h,
                      w2, h2);
    }
    rc = vv_image_alloc(out, w, h, e);
    if (rc == VISVM_OK) memcpy(out->rgb, px, (size_t)w * h * 3);
    stbi_image_free(px);
    return rc;
}

int vv_image_load_mem(const void *buf, size_t size, vv_image *out, vv_error *e) {
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vv_image_load_mem: NULL output");
    memset(out, 0, sizeof(*out));
    if (!buf && size) return vv_err(e, VISVM_ERR_INVALID, "vv_image_load_mem: NULL buffer");
    return decode_mem(buf, size, "<memory>", out, e);
}

// Reads a whole image file, refusing directories and anything above
// VV_IMAGE_MAX_FILE_BYTES (checked while reading, so pipes work too).
static int read_image_file(const char *path, vv_buf *b, vv_error *e) {
    FILE *f = fopen(path, "rb");
    if (!f) return vv_err(e, VISVM_ERR_IO, "cannot open image '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            fclose(f);
            return vv_err(e, VISVM_ERR_IO, "cannot read image '%s': is a directory", path);
        }
        if (S_ISREG(st.st_mode) && (long long)st.st_size > VV_IMAGE_MAX_FILE_BYTES) {
            fclose(f);
            return vv_err(e, VISVM_ERR_RANGE, "image file '%s' is %lld bytes: exceeds the limit of %lld bytes", path,
                          (long long)st.st_size, (long long)VV_IMAGE_MAX_FILE_BYTES);
        }
    }
    char tmp[65536];
    size_t n;
    int rc = VISVM_OK;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        if ((long long)(b->n + n) > VV_IMAGE_MAX_FILE_BYTES) {
            rc = vv_err(e, VISVM_ERR_RANGE, "image file '%s' exceeds the limit of %lld bytes", path,
                        (long long)VV_IMAGE_MAX_FILE_BYTES);
            break;
        }
        if (vv_buf_append(b, tmp, n)) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory reading image '%s'", path);
            break;
        }
    }
    if (rc == VISVM_OK && ferror(f)) rc = vv_err(e, VISVM_ERR_IO, "read error on image '%s': %s", path, strerror(errno));
    fclose(f);
    return rc;
}

int vv_image_load_file(const char *path, vv_image *out, vv_error *e) {
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vv_image_load_file: NULL output");
    memset(out, 0, sizeof(*out));
    if (!path || !*path) return vv_err(e, VISVM_ERR_INVALID, "vv_image_load_file: empty path");
    vv_buf b = {0};
    int rc = read_image_file(path, &b, e);
    if (rc == VISVM_OK) rc = decode_mem((const uint8_t *)b.v, b.n, path, out, e);
    vv_buf_free(&b);
    return rc;
}

// ---------------------------------------------------------------------------
// PNG writing

typedef struct png_sink {
    vv_buf buf;
    bool oom;
} png_sink;

static void png_write_cb(void *ctx, void *data, int size) {
    png_sink *s = ctx;
    if (s->oom || size <= 0) return;
    if (vv_buf_append(&s->buf, data, (size_t)size)) s->oom = true;
}

int vv_image_encode_png(const vv_image *img, vv_buf *out, vv_error *e) {
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return vv_err(e, VISVM_ERR_INVALID, "cannot encode an empty image");
    int rc = dims_err(img->w, img->h, "image to encode", e);
    if (rc) return rc;
    png_sink s = {{0}, false};
    int ok = stbi_write_png_to_func(png_write_cb, &s, img->w, img->h, 3, img->rgb, img->w * 3);
    if (s.oom) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory encoding a PNG");
    else if (!ok || s.buf.n == 0) rc = vv_err(e, VISVM_ERR_INTERNAL, "stb_image_write failed to encode a PNG");
    if (rc) vv_buf_free(&s.buf);
    else *out = s.buf;
    return rc;
}

int vv_image_save_png(const vv_image *img, const char *path, vv_error *e) {
    if (!path || !*path) return vv_err(e, VISVM_ERR_INVALID, "vv_image_save_png: empty path");
    vv_buf b = {0};
    int rc = vv_image_encode_png(img, &b, e);
    if (rc) return vv_err_prefix(e, rc, "%s", path);
    rc = vv_write_file_atomic(path, b.v, b.n, e);
    vv_buf_free(&b);
    return rc;
}

// ---------------------------------------------------------------------------
// Resizing (clip.cpp)

static inline int clampi(int x, int lo, int hi) { return x < lo ? lo : x > hi ? hi : x; }

// std::min(std::max(std::round(v), 0.0f), 255.0f) converted to uint8.
static inline uint8_t to_u8(float v) {
    float r = roundf(v); // half away from zero, like std::round
    r = r < 0.0f ? 0.0f : r;
    r = r > 255.0f ? 255.0f : r;
    return (uint8_t)r;
}

static int check_resize_args(const vv_image *src, int tw, int th, vv_image *dst, const char *fn, vv_error *e) {
    if (!dst) return vv_err(e, VISVM_ERR_INVALID, "%s: NULL output", fn);
    memset(dst, 0, sizeof(*dst));
    if (!src || !src->rgb || src->w <= 0 || src->h <= 0) return vv_err(e, VISVM_ERR_INVALID, "%s: empty source image", fn);
    if (tw <= 0 || th <= 0) return vv_err(e, VISVM_ERR_INVALID, "%s: invalid target size %dx%d", fn, tw, th);
    return vv_image_alloc(dst, tw, th, e);
}

// clip_image_preprocess's bilinear loop: sx = (x + 0.5) * scale - 0.5, taps
// x0 = max(0, floor(sx)), x1 = min(x0 + 1, n - 1), weights 1-dx, dx (dx < 0
// when upscaling near the border: clip.cpp extrapolates, so do we).
int vv_resize_bilinear_clip(const vv_image *src, int tw, int th, vv_image *dst, vv_error *e) {
    int rc = check_resize_args(src, tw, th, dst, "vv_resize_bilinear_clip", e);
    if (rc) return rc;
    const int nx = src->w, ny = src->h;
    const float scale_x = (float)nx / (float)tw;
    const float scale_y = (float)ny / (float)th;
    const uint8_t *p = src->rgb;
    for (int y = 0; y < th; y++) {
        const float sy = ((float)y + 0.5f) * scale_y - 0.5f;
        const int y0 = clampi((int)floorf(sy), 0, ny - 1); // upper clamp never binds; memory safety only
        const int y1 = y0 + 1 < ny - 1 ? y0 + 1 : ny - 1;
        const float dy = sy - (float)y0;
        for (int x = 0; x < tw; x++) {
            const float sx = ((float)x + 0.5f) * scale_x - 0.5f;
            const int x0 = clampi((int)floorf(sx), 0, nx - 1);
            const int x1 = x0 + 1 < nx - 1 ? x0 + 1 : nx - 1;
            const float dx = sx - (float)x0;
            for (int c = 0; c < 3; c++) {
                const float v00 = p[3 * ((size_t)y0 * nx + x0) + c];
                const float v01 = p[3 * ((size_t)y0 * nx + x1) + c];
                const float v10 = p[3 * ((size_t)y1 * nx + x0) + c];
                const float v11 = p[3 * ((size_t)y1 * nx + x1) + c];
                const float v0 = v00 * (1.0f - dx) + v01 * dx;
                const float v1 = v10 * (1.0f - dx) + v11 * dx;
                const float v = v0 * (1.0f - dy) + v1 * dy;
                dst->rgb[3 * ((size_t)y * tw + x) + c] = to_u8(v);
            }
        }
    }
    return VISVM_OK;
}

// clip.cpp's cubic: a1..a3 are computed in double (the constants are double
// literals) and stored in float variables.
typedef struct cubic { float a0, a1, a2, a3; } cubic;
static inline cubic cubic_coef(float a0, float d0, float d2, float d3) {
    cubic k;
    k.a0 = a0;
    k.a1 = (float)(-1.0 / 3 * d0 + d2 - 1.0 / 6 * d3);
    k.a2 = (float)(1.0 / 2 * d0 + 1.0 / 2 * d2);
    k.a3 = (float)(-1.0 / 6 * d0 - 1.0 / 2 * d2 + 1.0 / 6 * d3);
    return k;
}

// a0 + a1*t + a2*t*t + a3*t*t*t in float. The reference build (GGML_NATIVE,
// AVX-512, g++ -O3 with its default -ffp-contract=fast) contracts this
// expression, which parses as ((a0 + a1*t) + (a2*t)*t) + ((a3*t)*t)*t, into
// three fused multiply-adds, so we do the same. Both forms reproduce the golden
// 1.6 tensors exactly; on random images they disagree by one uint8 level on
// about 3.5e-6 of the values. VV_BICUBIC_NO_FMA selects the plain form.
static inline float cubic_eval(cubic k, float t) {
#ifdef VV_BICUBIC_NO_FMA
    return k.a0 + k.a1 * t + k.a2 * t * t + k.a3 * t * t * t;
#else
    return fmaf(k.a3 * t * t, t, fmaf(k.a2 * t, t, fmaf(k.a1, t, k.a0)));
#endif
}

// clip.cpp bicubic_resize: tx = nx/tw; output (i, j) samples from x = int(tx*j)
// with fraction dx = tx*j - x, using source columns x-1..x+2 and rows y-1..y+2
// clamped to the image; horizontal cubics first, then the vertical one.
int vv_resize_bicubic_clip(const vv_image *src, int tw, int th, vv_image *dst, vv_error *e) {
    int rc = check_resize_args(src, tw, th, dst, "vv_resize_bicubic_clip", e);
    if (rc) return rc;
    const int nx = src->w, ny = src->h;
    const float tx = (float)nx / (float)tw;
    const float ty = (float)ny / (float)th;
    const uint8_t *p = src->rgb;
    for (int i = 0; i < th; i++) {
        const float fy = ty * (float)i;
        const int y = (int)fy;
        const float dy = fy - (float)y;
        int rows[4];
        for (int jj = 0; jj < 4; jj++) rows[jj] = clampi(y - 1 + jj, 0, ny - 1);
        for (int j = 0; j < tw; j++) {
            const float fx = tx * (float)j;
            const int x = (int)fx;
            const float dx = fx - (float)x;
            const int xm = clampi(x - 1, 0, nx - 1), x0 = clampi(x, 0, nx - 1);
            const int xp = clampi(x + 1, 0, nx - 1), xq = clampi(x + 2, 0, nx - 1);
            for (int k = 0; k < 3; k++) {
                float C[4];
                for (int jj = 0; jj < 4; jj++) {
                    const uint8_t *row = p + (size_t)rows[jj] * nx * 3 + k;
                    const int a0 = row[x0 * 3];
                    // differences in int (uint8 promoted), then stored as float
                    C[jj] = cubic_eval(cubic_coef((float)a0, (float)(row[xm * 3] - a0), (float)(row[xp * 3] - a0),
                                                  (float)(row[xq * 3] - a0)),
                                       dx);
                }
                const float Cc = cubic_eval(cubic_coef(C[1], C[0] - C[1], C[2] - C[1], C[3] - C[1]), dy);
                dst->rgb[3 * ((size_t)i * tw + j) + k] = to_u8(Cc);
            }
        }
    }
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// LLaVA preprocessing

int vv_select_best_resolution(int w, int h, const int (*pinpoints)[2], int n) {
    if (!pinpoints || n <= 0 || w <= 0 || h <= 0) return -1;
    int best = -1;
    long long max_eff = -1, min_waste = LLONG_MAX;
    for (int i = 0; i < n; i++) {
        const int W = pinpoints[i][0], H = pinpoints[i][1];
        if (W <= 0 || H <= 0) continue;
        // float32 scale as in clip.cpp; int64 products cannot overflow
        const float sw = (float)W / (float)w, sh = (float)H / (float)h;
        const float scale = sh < sw ? sh : sw;
        const long long dw = (long long)((float)w * scale);
        const long long dh = (long long)((float)h * scale);
        long long eff = dw * dh;
        if (eff > (long long)w * h) eff = (long long)w * h;
        const long long waste = (long long)W * H - eff;
        // clip.cpp starts from (0, INT_MAX), so its first candidate always wins
        // too: starting from -1 is the same rule.
        if (eff > max_eff || (eff == max_eff && waste < min_waste)) {
            max_eff = eff;
            min_waste = waste;
            best = i;
        }
    }
    return best;
}

void vv_image_normalize(const vv_image *img, const float mean[3], const float std[3], float *out) {
    if (!img || !img->rgb || !out) return;
    const size_t n = (size_t)img->w * img->h;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) out[3 * i + c] = ((float)img->rgb[3 * i + c] / 255.0f - mean[c]) / std[c];
}

// Normalises the S x S square of img at (x0, y0) into out [S, S, 3].
static void normalize_crop(const vv_image *img, int x0, int y0, int S, const vv_preproc *p, float *out) {
    for (int y = 0; y < S; y++) {
        const uint8_t *row = img->rgb + 3 * ((size_t)(y0 + y) * img->w + x0);
        float *o = out + (size_t)y * S * 3;
        for (int x = 0; x < S; x++)
            for (int c = 0; c < 3; c++) o[3 * x + c] = ((float)row[3 * x + c] / 255.0f - p->mean[c]) / p->std[c];
    }
}

int vv_preproc_check(const vv_preproc *p, vv_error *e) {
    if (!p) return vv_err(e, VISVM_ERR_INVALID, "preprocessing: NULL parameters");
    if (p->image_size <= 0 || p->image_size > 4096)
        return vv_err(e, VISVM_ERR_INVALID, "preprocessing: image_size %d out of range (1..4096)", p->image_size);
    for (int c = 0; c < 3; c++) {
        if (!isfinite(p->mean[c])) return vv_err(e, VISVM_ERR_INVALID, "preprocessing: image_mean[%d] is not finite", c);
        if (!isfinite(p->std[c]) || p->std[c] == 0.0f)
            return vv_err(e, VISVM_ERR_INVALID, "preprocessing: image_std[%d] = %g (must be finite and non-zero)", c,
                          (double)p->std[c]);
    }
    if (!p->anyres) return VISVM_OK;
    if (p->n_pinpoints <= 0 || p->n_pinpoints > VV_MAX_PINPOINTS)
        return vv_err(e, VISVM_ERR_INVALID, "preprocessing: anyres needs 1..%d grid pinpoints, got %d", VV_MAX_PINPOINTS,
                      p->n_pinpoints);
    const int S = p->image_size;
    for (int i = 0; i < p->n_pinpoints; i++) {
        const int W = p->pinpoints[i][0], H = p->pinpoints[i][1];
        if (W <= 0 || H <= 0) return vv_err(e, VISVM_ERR_INVALID, "preprocessing: grid pinpoint %d is %dx%d", i, W, H);
        // clip.cpp would cut partial crops and then fail in the encoder
        if (W % S || H % S)
            return vv_err(e, VISVM_ERR_UNSUPPORTED, "preprocessing: grid pinpoint %d (%dx%d) is not a multiple of image_size %d",
                          i, W, H, S);
        if (!dims_ok(W, H))
            return vv_err(e, VISVM_ERR_INVALID, "preprocessing: grid pinpoint %d (%dx%d) exceeds the image size limits", i,
                          W, H);
    }
    return VISVM_OK;
}

void vv_image_batch_free(vv_image_batch *b) {
    if (!b) return;
    vv_afree(b->data);
    memset(b, 0, sizeof(*b));
}

static int batch_alloc(vv_image_batch *out, int n, int S, vv_error *e) {
    size_t per = (size_t)S * S * 3, total;
    if (!vv_mul_ok(per, (size_t)n, &total) || !vv_mul_ok(total, sizeof(float), &total))
        return vv_err(e, VISVM_ERR_NOMEM, "preprocessed batch size overflows (%d images of %dx%d)", n, S, S);
    out->data = vv_aalloc(total);
    if (!out->data) return vv_err(e, VISVM_ERR_NOMEM, "out of memory for %d preprocessed images of %dx%d", n, S, S);
    out->n = n;
    out->size = S;
    return VISVM_OK;
}

// LLaVA-1.5: pad to a square at the top-left with the LLaVA mean colour, then
// bilinear to S x S.
static int preprocess_llava15(const vv_image *img, const vv_preproc *p, vv_image_batch *out, vv_error *e) {
    const int S = p->image_size;
    vv_image sq = {0}, rs = {0};
    const vv_image *square = img;
    int rc;
    if (img->w != img->h) {
        const int n = img->w > img->h ? img->w : img->h;
        if ((rc = vv_image_alloc(&sq, n, n, e))) return rc;
        static const uint8_t bg[3] = {122, 116, 104};
        for (size_t i = 0; i < (size_t)n * n; i++) memcpy(sq.rgb + 3 * i, bg, 3);
        for (int y = 0; y < img->h; y++)
            memcpy(sq.rgb + 3 * (size_t)y * n, img->rgb + 3 * (size_t)y * img->w, 3 * (size_t)img->w);
        square = &sq;
    }
    rc = vv_resize_bilinear_clip(square, S, S, &rs, e);
    if (rc == VISVM_OK) rc = batch_alloc(out, 1, S, e);
    if (rc == VISVM_OK) {
        vv_image_normalize(&rs, p->mean, p->std, out->data);
        out->canvas_w = out->canvas_h = S;
    }
    vv_image_free(&sq);
    vv_image_free(&rs);
    return rc;
}

// LLaVA-1.6 anyres: best pinpoint W x H, bicubic keeping the aspect ratio,
// centred on a black canvas, cut into S x S crops; image 0 is the whole image
// bicubic-resized to S x S.
static int preprocess_anyres(const vv_image *img, const vv_preproc *p, vv_image_batch *out, vv_error *e) {
    const int S = p->image_size;
    const int best = vv_select_best_resolution(img->w, img->h, (const int (*)[2])p->pinpoints, p->n_pinpoints);
    if (best < 0) return vv_err(e, VISVM_ERR_INVALID, "preprocessing: no usable grid pinpoint");
    const int W = p->pinpoints[best][0], H = p->pinpoints[best][1];

    // resize_and_pad_image
    const float sw = (float)W / (float)img->w, sh = (float)H / (float)img->h;
    int nw, nh;
    if (sw < sh) {
        nw = W;
        nh = (int)ceilf((float)img->h * sw);
        nh = nh > H ? H : nh;
    } else {
        nh = H;
        nw = (int)ceilf((float)img->w * sh);
        nw = nw > W ? W : nw;
    }
    nw = nw < 1 ? 1 : nw;
    nh = nh < 1 ? 1 : nh;

    vv_image fit = {0}, canvas = {0}, base = {0};
    int rc = vv_resize_bicubic_clip(img, nw, nh, &fit, e);
    if (rc == VISVM_OK) rc = vv_image_alloc(&canvas, W, H, e);
    if (rc == VISVM_OK) {
        memset(canvas.rgb, 0, (size_t)W * H * 3);
        const int px = (W - nw) / 2, py = (H - nh) / 2;
        for (int y = 0; y < nh; y++)
            memcpy(canvas.rgb + 3 * ((size_t)(y + py) * W + px), fit.rgb + 3 * (size_t)y * nw, 3 * (size_t)nw);
        rc = vv_resize_bicubic_clip(img, S, S, &base, e);
    }
    const int gw = W / S, gh = H / S;
    if (rc == VISVM_OK) rc = batch_alloc(out, 1 + gw * gh, S, e);
    if (rc == VISVM_OK) {
        const size_t per = (size_t)S * S * 3;
        vv_image_normalize(&base, p->mean, p->std, out->data);
        for (int gy = 0; gy < gh; gy++)
            for (int gx = 0; gx < gw; gx++)
                normalize_crop(&canvas, gx * S, gy * S, S, p, out->data + per * (size_t)(1 + gy * gw + gx));
        out->grid_w = gw;
        out->grid_h = gh;
        out->canvas_w = W;
        out->canvas_h = H;
    }
    vv_image_free(&fit);
    vv_image_free(&canvas);
    vv_image_free(&base);
    return rc;
}

int vv_preprocess(const vv_image *img, const vv_preproc *p, vv_image_batch *out, vv_error *e) {
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vv_preprocess: NULL output");
    memset(out, 0, sizeof(*out));
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return vv_err(e, VISVM_ERR_INVALID, "vv_preprocess: empty image");
    int rc = dims_err(img->w, img->h, "image to preprocess", e);
    if (rc) return rc;
    if ((rc = vv_preproc_check(p, e))) return rc;
    rc = p->anyres ? preprocess_anyres(img, p, out, e) : preprocess_llava15(img, p, out, e);
    if (rc) {
        vv_image_batch_free(out);
        return rc;
    }
    out->orig_w = img->w;
    out->orig_h = img->h;
    return VISVM_OK;
}
