// image.h - image decoding (stb_image) and LLaVA preprocessing as clip.cpp does it.
//
// LLaVA-1.5: pad to a square (top-left, fill RGB 122,116,104), clip.cpp bilinear
// resize to S x S, normalise. LLaVA-1.6 (anyres): best pinpoint resolution,
// clip.cpp bicubic resize keeping the aspect ratio, centred on a black canvas,
// cut into S x S crops (row-major), preceded by the whole image resized to S x S.
// Exact formulas: ../shared/golden/README.md section 5.
//
// Thread safety: every function is reentrant; stb_image's global settings
// (vertical flip, ...) are never touched.
#ifndef VV_IMAGE_H
#define VV_IMAGE_H

#include "../base/base.h"

// Decoded 8-bit RGB image, rows top to bottom, interleaved RGB.
typedef struct vv_image {
    int w, h;
    uint8_t *rgb; // [h, w, 3], allocated with vv_aalloc
} vv_image;

// Refused above these limits (decompression bombs, absurd inputs).
#define VV_IMAGE_MAX_SIDE 16384
#define VV_IMAGE_MAX_PIXELS (64LL * 1024 * 1024)
// Image files larger than this are refused before reading (stb takes an int length).
#define VV_IMAGE_MAX_FILE_BYTES (1LL << 30)

// Decodes PNG, JPEG, BMP, TGA, GIF (first frame), PSD, PNM, HDR (tone-mapped) to RGB.
// Errors: VISVM_ERR_IO (cannot open/read, directory), VISVM_ERR_FORMAT (empty,
// corrupt, truncated, not an image; the message has stb's reason),
// VISVM_ERR_RANGE (w or h > VV_IMAGE_MAX_SIDE or w*h > VV_IMAGE_MAX_PIXELS,
// checked from the header before any pixel is decoded), VISVM_ERR_NOMEM.
// On error *out is left empty (w = h = 0, rgb = NULL).
int vv_image_load_file(const char *path, vv_image *out, vv_error *e);
int vv_image_load_mem(const void *buf, size_t size, vv_image *out, vv_error *e);
// Allocates an uninitialised w x h image (limits as above: VISVM_ERR_RANGE).
int vv_image_alloc(vv_image *img, int w, int h, vv_error *e);
void vv_image_free(vv_image *img); // frees rgb, NULL-safe; leaves w = h = 0

// Writes img as an 8-bit RGB PNG (stb_image_write), atomically: encoded in
// memory, then temp file + rename, so path is never left half-written.
// Encodes to PNG in memory (*out replaced).
int vv_image_encode_png(const vv_image *img, vv_buf *out, vv_error *e);
int vv_image_save_png(const vv_image *img, const char *path, vv_error *e);

// Preprocessing parameters (read from the mmproj file).
#define VV_MAX_PINPOINTS 64
typedef struct vv_preproc {
    int image_size;    // S: side of each preprocessed image
    float mean[3];
    float std[3];
    bool anyres;       // LLaVA-1.6 path (image_grid_pinpoints present)
    int n_pinpoints;
    int pinpoints[VV_MAX_PINPOINTS][2]; // (w, h) candidate resolutions
} vv_preproc;

// Validates p: 0 < S <= 4096, std finite and non-zero, mean finite; with
// anyres 1..VV_MAX_PINPOINTS pinpoints, each a positive multiple of S per side
// whose canvas fits the image limits. VISVM_ERR_INVALID names the bad field.
int vv_preproc_check(const vv_preproc *p, vv_error *e);

// Preprocessed images: n images of S x S x 3 floats, HWC, normalised.
typedef struct vv_image_batch {
    int n;
    int size;              // S
    float *data;           // [n, S, S, 3], allocated with vv_aalloc
    int grid_w, grid_h;    // anyres crop grid (columns, rows); 0 for LLaVA-1.5
    int canvas_w, canvas_h;// chosen pinpoint (anyres), else S
    int orig_w, orig_h;    // original image size
} vv_image_batch;

// LLaVA-1.5: n = 1. LLaVA-1.6: n = 1 + grid_w*grid_h, image 0 = whole image
// bicubic-resized to S x S, then the crops of the canvas in row-major order.
// On error *out is left empty.
int vv_preprocess(const vv_image *img, const vv_preproc *p, vv_image_batch *out, vv_error *e);
void vv_image_batch_free(vv_image_batch *b);

// Building blocks, exposed for tests.
// clip.cpp's bilinear resize (float math, round half away from zero, clamp):
// per axis scale = src/dst, source coordinate (x+0.5)*scale-0.5. Identical to
// clip_image_preprocess for the square n x n -> S x S case it uses.
int vv_resize_bilinear_clip(const vv_image *src, int tw, int th, vv_image *dst, vv_error *e);
// clip.cpp's bicubic resize (see README section 5), including the FMA
// contractions of the reference build (see image.c).
int vv_resize_bicubic_clip(const vv_image *src, int tw, int th, vv_image *dst, vv_error *e);
// llava select_best_resolution: returns index into pinpoints (-1 if n <= 0 or
// w, h <= 0). Float32 scale as clip.cpp: largest effective resolution, then
// least waste, first wins on full ties. Non-positive pinpoints are skipped.
int vv_select_best_resolution(int w, int h, const int (*pinpoints)[2], int n);
// Normalises an 8-bit image into HWC floats: (u8 / 255 - mean[c]) / std[c].
void vv_image_normalize(const vv_image *img, const float mean[3], const float std[3], float *out);

#endif
