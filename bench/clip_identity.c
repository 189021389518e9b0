// clip_identity.c - does a reward CLIP's image embedding know which objects are
// in a scene? Dumps, for N world scenes from a seed, the CLIP image embedding,
// the class-presence vector and the theme's classes (read by
// bench/clip_identity.py, which fits a linear probe), and prints how often the
// CLIP's own cosine ranks "There is a <present class>." above "There is a
// <absent same-theme class>.". Run by bench/clip_identity.sh; a diagnostic.
//
//   clip_identity CLIP.gguf N FIRST_SEED OUT.bin
//
// OUT.bin: int32 E, int32 n_classes, then per scene float [E] embedding,
// float [n_classes] presence (0/1), float [n_classes] same-theme flag (0/1).
#include <stdio.h>
#include <stdlib.h>

#include "base/threadpool.h"
#include "model/clip.h"
#include "world/world.h"

int main(int argc, char **argv) {
    if (argc != 5) return fprintf(stderr, "usage: clip_identity CLIP.gguf N FIRST_SEED OUT.bin\n"), 2;
    const int n = atoi(argv[2]);
    const uint64_t first = strtoull(argv[3], NULL, 10);
    vv_error e = {0};
    vv_clip *cl = NULL;
    if (vv_clip_load_file(argv[1], VISVM_VISION_REFERENCE, &cl, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    if (!cl->has_text) return fprintf(stderr, "%s: not a full CLIP (no text tower)\n", argv[1]), 1;
    vv_pool *pool = vv_pool_create(1);
    vv_clip_work w = {0};
    vv_world_params wp = vv_world_default_params();
    const int nc = vv_world_n_classes(), E = cl->proj_dim;
    float *tc = malloc(sizeof(float) * (size_t)nc * E), *imf = malloc(sizeof(float) * (size_t)E);
    FILE *f = fopen(argv[4], "wb");
    if (!tc || !imf || !f) return fprintf(stderr, "cannot write %s\n", argv[4]), 1;
    char buf[128];
    for (int c = 0; c < nc; c++) {
        snprintf(buf, sizeof(buf), "There is a %s.", vv_world_class_name(c));
        if (vv_clip_text_features(cl, pool, buf, tc + (size_t)c * E, &w, &e)) return fprintf(stderr, "%s\n", e.msg), 1;
    }
    int32_t hdr[2] = {E, nc};
    fwrite(hdr, sizeof(int32_t), 2, f);
    long win = 0, tot = 0;
    for (int i = 0; i < n; i++) {
        vv_world_scene s;
        vv_image im = {0};
        vv_image_batch b = {0};
        if (vv_world_scene_make(&wp, first + (uint64_t)i, &s, &e) || vv_world_render(&wp, &s, &im, NULL, &e) ||
            vv_preprocess(&im, &cl->pre, &b, &e) || vv_clip_image_features(cl, pool, b.data, imf, &w, &e))
            return fprintf(stderr, "scene %d: %s\n", i, e.msg), 1;
        float pres[64] = {0}, same[64] = {0};
        for (int k = 0; k < s.n_objects; k++) pres[s.obj[k].cls] = 1;
        for (int c = 0; c < nc; c++) same[c] = vv_world_theme_has_class(s.theme, c);
        fwrite(imf, sizeof(float), (size_t)E, f);
        fwrite(pres, sizeof(float), (size_t)nc, f);
        fwrite(same, sizeof(float), (size_t)nc, f);
        for (int c = 0; c < nc; c++)
            for (int d = 0; pres[c] && d < nc; d++)
                if (!pres[d] && same[d]) {
                    tot++;
                    win += vv_cosine(imf, tc + (size_t)c * E, E) > vv_cosine(imf, tc + (size_t)d * E, E);
                }
        vv_image_free(&im);
        vv_image_batch_free(&b);
        vv_world_scene_free(&s);
    }
    printf("cosine_minimal_same_theme %.2f pairs %ld\n", tot ? 100.0 * (double)win / (double)tot : 0.0, tot);
    vv_clip_work_free(&w);
    vv_clip_free(cl);
    vv_pool_free(pool);
    free(tc);
    free(imf);
    return fclose(f) != 0;
}
