// hf_image.h - Hugging Face LlavaNextImageProcessor (transformers 4.45),
// bit-exact: PIL's 8-bit fixed-point BICUBIC resize, best resolution over the
// pinpoints in Python float arithmetic, the symmetric (possibly 1-pixel-short)
// zero padding, row-major S x S tiles (short edge tiles stretched and
// center-cropped), the squashed base tile first, rescale in float64 and
// normalisation in float32, CHW output. Rules: ../shared/golden-hf/README.md.
#ifndef VV_HF_IMAGE_H
#define VV_HF_IMAGE_H

#include "image.h"

#define VV_HF_MAX_PINPOINTS 64

typedef struct vv_hf_preproc {
    int size;                  // S: crop_size = shortest_edge = vision image_size
    float mean[3], std[3];
    double rescale;            // rescale_factor (1/255)
    int n_pinpoints;
    int pinpoints[VV_HF_MAX_PINPOINTS][2]; // (height, width), config order
} vv_hf_preproc;

// One preprocessed image: tiles [n, 3, S, S] (CHW), tile 0 = the base image.
typedef struct vv_hf_pixels {
    int n, size;
    float *data;               // vv_aalloc'd
    int orig_h, orig_w;        // image_sizes = (height, width)
    int best_h, best_w;        // chosen pinpoint
    int grid_h, grid_w;        // best // S
} vv_hf_pixels;

// Intermediate images of the anyres path, for checks (all optional).
typedef struct vv_hf_preproc_debug {
    vv_image resized, padded, base;
} vv_hf_preproc_debug;

// PIL Image.resize(BICUBIC) on an 8-bit RGB image (reducing_gap None):
// separable fixed-point convolution, horizontal pass then vertical, each
// skipped when that size is unchanged.
int vv_pil_resize_bicubic(const vv_image *src, int w, int h, vv_image *dst, vv_error *e);

// transformers' select_best_resolution on (height, width); returns the index
// into pinpoints, or -1 for bad input.
int vv_hf_select_best_resolution(int h, int w, const int (*pinpoints)[2], int n);

int vv_hf_preprocess(const vv_image *img, const vv_hf_preproc *p, vv_hf_pixels *out, vv_hf_preproc_debug *dbg,
                     vv_error *e);
void vv_hf_pixels_free(vv_hf_pixels *px);
void vv_hf_preproc_debug_free(vv_hf_preproc_debug *d);

#endif
