// data.c - world-derived training data shared by the trainers.
#include "data.h"

#include <stdlib.h>
#include <string.h>

const float vt_clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float vt_clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

static const char *const k_prompts[9] = {
    "What do you see happening in this image?",
    "Can you describe the main features of this image for me?",
    "What are the key elements in this picture?",
    "Explain the visual content of the image in great detail.",
    "What is this photo about?",
    "Can you elaborate on the elements of the picture provided?",
    "Analyze the image in a comprehensive and detailed manner.",
    "Write a detailed description of the given image.",
    "What do you think is going on in this snapshot?",
};

const char *const *vt_detail_prompts(int *n) {
    *n = 9;
    return k_prompts;
}

int vt_world_vocab(vv_bpe_vocab *out, vv_error *e) {
    vv_world_params p = vv_world_default_params();
    enum { N_SCENES = 2000, N_CAP = 5 };
    char **texts = calloc(N_SCENES * N_CAP, sizeof(char *));
    if (!texts) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    size_t n = 0;
    int rc = VISVM_OK;
    for (int i = 0; i < N_SCENES && !rc; i++) {
        vv_world_scene s;
        rc = vv_world_scene_make(&p, (uint64_t)i, &s, e);
        if (!rc) rc = vv_world_captions(&s, (uint64_t)i, N_CAP, texts + n, e);
        if (!rc) n += N_CAP;
        vv_world_scene_free(&s);
    }
    if (!rc) {
        // prompts and template words repeated so they merge into whole-word tokens
        size_t n_rep = 40;
        char **all = calloc(n + n_rep * 10, sizeof(char *));
        if (!all) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        else {
            memcpy(all, texts, n * sizeof(char *));
            size_t m = n;
            for (size_t r = 0; r < n_rep; r++) {
                for (int i = 0; i < 9; i++) all[m++] = (char *)k_prompts[i];
                all[m++] = "USER: ASSISTANT:";
            }
            const char *specials[1] = {"<image>"};
            rc = vv_bpe_train((const char *const *)all, m, specials, 1, 4000, 2, out, e);
            free(all);
        }
    }
    for (size_t i = 0; i < N_SCENES * N_CAP; i++) free(texts[i]);
    free(texts);
    return rc;
}

int vt_image_normalize(const vv_image *img, int size, float *out, vv_error *e) {
    vv_preproc pp;
    memset(&pp, 0, sizeof(pp));
    pp.image_size = size;
    memcpy(pp.mean, vt_clip_mean, sizeof(pp.mean));
    memcpy(pp.std, vt_clip_std, sizeof(pp.std));
    vv_image_batch b = {0};
    int rc = vv_preprocess(img, &pp, &b, e);
    if (!rc) memcpy(out, b.data, (size_t)size * size * 3 * sizeof(float));
    vv_image_batch_free(&b);
    return rc;
}

int vt_scene_image(const vv_world_params *p, const vv_world_scene *s, int size, float *out, vv_error *e) {
    vv_image img = {0};
    int rc = vv_world_render(p, s, &img, NULL, e);
    if (!rc) rc = vt_image_normalize(&img, size, out, e);
    vv_image_free(&img);
    return rc;
}
