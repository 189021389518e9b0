// vlm_batch_shapes.c - the token layout of `visvm train vlm`'s batches, for
// bench/torch_vlm.py (the PyTorch reference in bench/train_speed.sh).
//
// Replays vt_vlm_train's data loop with the same seed (same random stream:
// B scene seeds, then per sample a caption seed and a prompt index), renders
// the images as the trainer does, tokenizes prompt + caption exactly like
// build_sample() and prints one JSON object:
//   {"vocab":V,"n_img":Ni,"batch":B,"data_ms":..,"steps":[{"pre":[..],"len":[..],"ans0":[..]},..]}
// pre[b]: tokens before the image rows, len[b]: sequence length (<= max_len),
// ans0[b]: first answer row; the step's target rows are ans0-1 .. len-2 and
// their count is the "tokens" column of vlm-train.log (train_speed.sh checks it).
// data_ms: the mean wall time per step of this data work (render + scenes +
// captions + tokenization), which visvm's tok/s includes and the PyTorch
// reference (random images and ids) does not.
//
// Build (from the repository root, after cmake --build build):
//   cc -std=c11 -D_GNU_SOURCE -O2 -Iinclude -Isrc bench/vlm_batch_shapes.c build/libvisvm.a
//      -lcjson -lstb -lopenblas -lm -lpthread -o build/vlm_batch_shapes
// Run: vlm_batch_shapes STEPS [batch=32] [view=32] [patch=4] [max_len=160] [seed=1] [threads=0]
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "gen/llava.h"
#include "train/clip_train.h"
#include "train/data.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s STEPS [batch=32] [view=32] [patch=4] [max_len=160] [seed=1] [threads=0]\n", argv[0]);
        return 2;
    }
    const int steps = atoi(argv[1]), B = argc > 2 ? atoi(argv[2]) : 32, S = argc > 3 ? atoi(argv[3]) : 32,
              P = argc > 4 ? atoi(argv[4]) : 4, max_len = argc > 5 ? atoi(argv[5]) : 160;
    const uint64_t seed = argc > 6 ? strtoull(argv[6], NULL, 10) : 1;
    const int threads = argc > 7 ? atoi(argv[7]) : 0;
    if (steps < 1 || B < 1 || P < 1 || S % P) {
        fprintf(stderr, "vlm_batch_shapes: bad arguments\n");
        return 2;
    }
    const int Ni = (S / P) * (S / P);
    vv_error e = {0};
    vv_bpe_vocab bpe = {0};
    vv_vocab *voc = NULL;
    if (vt_world_vocab(&bpe, &e) || vv_bpe_to_vocab(&bpe, &voc, &e)) {
        fprintf(stderr, "vlm_batch_shapes: %s\n", e.msg);
        return 1;
    }
    vv_pool *pool = vv_pool_create(threads);
    uint64_t *seeds = malloc((size_t)B * sizeof(uint64_t));
    float *img = malloc((size_t)B * S * S * 3 * sizeof(float));
    int *pre = malloc((size_t)B * sizeof(int)), *len = malloc((size_t)B * sizeof(int)), *ans0 = malloc((size_t)B * sizeof(int));
    if (!pool || !seeds || !img || !pre || !len || !ans0) return 1;
    int n_prompts = 0;
    const char *const *prompts = vt_detail_prompts(&n_prompts);
    vv_world_params wp = vv_world_default_params();
    vv_rng rng;
    vv_rng_seed(&rng, seed);
    double t_data = 0;
    printf("{\"vocab\":%d,\"n_img\":%d,\"batch\":%d,\"steps\":[", bpe.n, Ni, B);
    for (int st = 0; st < steps; st++) {
        double t0 = vv_time_s();
        for (int b = 0; b < B; b++) seeds[b] = vv_rng_u64(&rng) % vv_world_split_base(VV_WORLD_VAL);
        if (vt_render_batch(pool, &wp, seeds, B, S, img)) return 1;
        for (int b = 0; b < B; b++) {
            vv_world_scene s;
            char *cap = NULL;
            if (vv_world_scene_make(&wp, seeds[b], &s, &e) || vv_world_captions(&s, vv_rng_u64(&rng), 1, &cap, &e)) {
                fprintf(stderr, "vlm_batch_shapes: %s\n", e.msg);
                return 1;
            }
            const char *prompt = prompts[vv_rng_below(&rng, (uint32_t)n_prompts)];
            vv_buf full = {0};
            vv_ivec tp = {0}, tq = {0}, ta = {0};
            bool has_img = false;
            if (vv_chat_format(VISVM_TEMPLATE_LLAVA15, prompt, true, &full) ||
                vv_llava_tokenize(voc, full.v, &tp, &tq, &has_img, &e) ||
                vv_tokenize(voc, cap, strlen(cap), false, false, &ta, &e) || vv_ivec_push(&ta, vv_vocab_eos(voc))) {
                fprintf(stderr, "vlm_batch_shapes: tokenization failed: %s\n", e.msg);
                return 1;
            }
            // the layout of step() in src/train/vlm_train.c
            int l = (int)(tp.n + (size_t)Ni + tq.n + ta.n);
            if (l > max_len) l = max_len;
            int p = (int)tp.n + Ni;
            for (size_t i = 0; i < tq.n && p < l; i++) p++;
            pre[b] = (int)tp.n;
            len[b] = l;
            ans0[b] = p;
            vv_buf_free(&full);
            vv_ivec_free(&tp);
            vv_ivec_free(&tq);
            vv_ivec_free(&ta);
            free(cap);
            vv_world_scene_free(&s);
        }
        t_data += vv_time_s() - t0;
        const int *arr[3] = {pre, len, ans0};
        const char *nm[3] = {"pre", "len", "ans0"};
        printf("%s{", st ? "," : "");
        for (int k = 0; k < 3; k++) {
            printf("%s\"%s\":[", k ? "," : "", nm[k]);
            for (int b = 0; b < B; b++) printf("%s%d", b ? "," : "", arr[k][b]);
            printf("]");
        }
        printf("}");
    }
    printf("],\"data_ms\":%.3f}\n", 1000.0 * t_data / steps);
    free(seeds);
    free(img);
    free(pre);
    free(len);
    free(ans0);
    vv_pool_free(pool);
    vv_vocab_free(voc);
    vv_bpe_vocab_free(&bpe);
    return 0;
}
