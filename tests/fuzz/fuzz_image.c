// fuzz_image.c - arbitrary bytes as an image file (PNG, JPEG, BMP, PPM, ...):
// decoding, then both preprocessing paths (llama.cpp's LLaVA-1.5 / 1.6 and
// transformers' LLaVA-NeXT) at small sizes.
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "model/hf_image.h"
#include "model/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FZ_MAX_FILE) return 0;
    vv_image img = {0};
    vv_error e = {0};
    int rc = vv_image_load_mem(data, size, &img, &e);
    fz_say("image", &e);
    if (rc) return 0;
    // keep the work bounded: the decoder accepts large images, resizing them is not what is tested
    if ((int64_t)img.w * img.h <= 512 * 512) {
        vv_preproc p = {0};
        p.image_size = 14;
        for (int c = 0; c < 3; c++) p.mean[c] = 0.5f, p.std[c] = 0.25f;
        vv_image_batch b = {0};
        if (!vv_preprocess(&img, &p, &b, &e)) vv_image_batch_free(&b);
        p.anyres = true;
        p.n_pinpoints = 3;
        int pins[3][2] = {{14, 28}, {28, 14}, {28, 28}};
        memcpy(p.pinpoints, pins, sizeof(pins));
        if (!vv_preprocess(&img, &p, &b, &e)) vv_image_batch_free(&b);
        vv_hf_preproc h = {0};
        h.size = 14;
        h.rescale = 1.0 / 255;
        for (int c = 0; c < 3; c++) h.mean[c] = 0.5f, h.std[c] = 0.25f;
        h.n_pinpoints = 3;
        memcpy(h.pinpoints, pins, sizeof(pins));
        vv_hf_pixels px = {0};
        if (!vv_hf_preprocess(&img, &h, &px, NULL, &e)) vv_hf_pixels_free(&px);
        vv_buf png = {0};
        if (!vv_image_encode_png(&img, &png, &e)) {
            vv_image back = {0};
            // our own PNG must decode to the same pixels
            if (vv_image_load_mem(png.v, png.n, &back, &e) || back.w != img.w || back.h != img.h ||
                memcmp(back.rgb, img.rgb, (size_t)img.w * img.h * 3))
                __builtin_trap();
            vv_image_free(&back);
        }
        free(png.v);
    }
    vv_image_free(&img);
    return 0;
}
