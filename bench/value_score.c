// value_score.c - cost of a value model's step: vv_value_set_image (image
// encode + prefill of the shared prefix "USER: <image>") once, then REPS calls
// scoring 6 candidates of 20 token ids each ("\n" + ids + " ASSISTANT:", the
// state of the paper's VisVM), one batch of forked sequences per call, as the
// VisVM search does at every step. Setting VISVM_SHARED_MIN_PREFIX=1000000
// sends the candidates' attention back to the gathered GEMM path (for an A/B).
//
// Not built by CMake. From the repository root, after a Release build:
//   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/value_score.c build/libvisvm.a
//      $(pkg-config --libs libcjson) -lstb -lopenblas -lm -lpthread -o /tmp/value_score
//   /tmp/value_score ~/.cache/visvm/bench [REPS]   (the value model files visvm bench --search makes)
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "base/threadpool.h"
#include "model/image.h"
#include "model/value.h"

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: value_score BENCH_DIR [REPS]\n");
        return 2;
    }
    const int reps = argc > 2 ? atoi(argv[2]) : 5;
    if (reps < 1 || reps > 1000) {
        fprintf(stderr, "value_score: REPS 1..1000\n");
        return 2;
    }
    char tp[1024], mp[1024];
    snprintf(tp, sizeof tp, "%s/random-1.1b-q8_0-value.gguf", argv[1]);
    snprintf(mp, sizeof mp, "%s/random-clip-l-336-value-mmproj.gguf", argv[1]);
    vv_error e = {0};
    vv_value *v = NULL;
    vv_value_state *s = NULL;
    vv_pool *pool = vv_pool_create(0);
    vv_image img = {0};
    if (!pool || vv_value_load(tp, mp, &v, &e) || vv_value_state_create(v, pool, 6, &s, &e) ||
        vv_image_alloc(&img, 640, 480, &e)) {
        fprintf(stderr, "value_score: %s\n", e.msg[0] ? e.msg : "cannot start");
        return 1;
    }
    for (size_t i = 0; i < (size_t)640 * 480 * 3; i++) img.rgb[i] = (uint8_t)((i * 2654435761u) >> 24);
    double t0 = vv_time_s();
    if (vv_value_set_image(s, &img, &e)) {
        fprintf(stderr, "value_score: %s\n", e.msg);
        return 1;
    }
    printf("set_image (encode + prefix prefill): %.3f s\n", vv_time_s() - t0);
    int32_t ids[6][20];
    const int32_t *idp[6];
    int nid[6];
    for (int j = 0; j < 6; j++) {
        for (int t = 0; t < 20; t++) ids[j][t] = 1000 + (j * 37 + t * 101) % 20000;
        idp[j] = ids[j];
        nid[j] = 20;
    }
    float out[6];
    for (int r = 0; r < reps; r++) {
        t0 = vv_time_s();
        if (vv_value_score_ids(s, idp, nid, 6, out, &e)) {
            fprintf(stderr, "value_score: %s\n", e.msg);
            return 1;
        }
        printf("score 6 x 20 ids: %.3f s\n", vv_time_s() - t0);
    }
    vv_value_state_free(s);
    vv_value_free(v);
    vv_image_free(&img);
    vv_pool_free(pool);
    return 0;
}
