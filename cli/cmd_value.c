// cmd_value.c - `visvm value`: the value of (image, sentence) under a VisVM
// value model in the Hugging Face layout (si0wang/VisVM's ValueModel:
// "llava_encoder." LLaVA-NeXT + flattened v_head over max_length left-padded
// positions), computed as transformers 4.45 does.
#include <stdio.h>
#include <string.h>

#include "base/threadpool.h"
#include "cli.h"
#include "model/hf.h"

int cmd_value(int argc, char **argv) {
    const char *model = NULL, *image = NULL, *sentence = NULL, *attn = "sdpa";
    int threads = 0;
    bool verbose = false;
    cli_opt opts[] = {
        {"--model", "-m", CLI_STR, &model, "value model directory (config.json architectures [\"ValueModel\"])", 0, -1},
        {"--image", NULL, CLI_STR, &image, "image file", 0, -1},
        {"--sentence", NULL, CLI_STR, &sentence, "the sentence (state) to score", 0, -1},
        {"--attn", NULL, CLI_STR, &attn,
         "pad-row semantics: sdpa (transformers on CUDA, VisVM's runs) or eager (transformers on CPU)", 0, -1},
        {"--threads", "-t", CLI_INT, &threads, "threads; 0 = all cores", 0, 1024},
        {"--verbose", "-v", CLI_FLAG, &verbose, "print the input length, padding and timing", 0, -1},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse("value", "-m VALUE_DIR --image IMG --sentence TEXT [options]",
                       "Prints V(image, sentence) of a VisVM value model: the state \"[INST] <image>\\n{sentence} "
                       "[/INST]\" left-padded to the model's max_length, exactly as VisVM's Python code computes it.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 2, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model || !image || !sentence) {
        fprintf(stderr, "visvm value: -m, --image and --sentence are required (see --help)\n");
        return 2;
    }
    int mode;
    if (!strcmp(attn, "sdpa")) mode = VV_HF_PAD_SDPA;
    else if (!strcmp(attn, "eager")) mode = VV_HF_PAD_EAGER;
    else {
        fprintf(stderr, "visvm value: --attn must be sdpa or eager, not '%s'\n", attn);
        return 2;
    }
    vv_error e = {0};
    vv_hf_llava *m = NULL;
    if (!vv_hf_is_dir(model)) {
        fprintf(stderr, "visvm value: %s is not a Hugging Face model directory (no config.json)\n", model);
        return 1;
    }
    double t0 = vv_time_s();
    if ((rc = vv_hf_load(model, &m, &e))) {
        fprintf(stderr, "visvm value: %s\n", e.msg);
        return 1;
    }
    if (!m->is_value) {
        fprintf(stderr, "visvm value: %s is not a value model (config.json architectures is not ValueModel)\n", model);
        vv_hf_free(m);
        return 1;
    }
    vv_image img = {0};
    if ((rc = vv_image_load_file(image, &img, &e))) {
        fprintf(stderr, "visvm value: %s\n", e.msg);
        vv_hf_free(m);
        return 1;
    }
    vv_pool *pool = vv_pool_create(threads);
    float v = 0;
    vv_ivec mask = {0};
    double t1 = vv_time_s();
    rc = vv_hf_value(m, pool, &img, sentence, mode, &v, NULL, verbose ? &mask : NULL, NULL, &e);
    if (rc) {
        fprintf(stderr, "visvm value: %s\n", e.msg);
    } else {
        printf("%.7f\n", v);
        if (verbose) {
            int real = 0;
            for (size_t i = 0; i < mask.n; i++) real += mask.v[i];
            fprintf(stderr, "max_length %d, %d real tokens, %d pads, %s pad rows; load %.2f s, value %.2f s\n",
                    m->max_length, real, m->max_length - real, attn, t1 - t0, vv_time_s() - t1);
        }
    }
    vv_ivec_free(&mask);
    vv_pool_free(pool);
    vv_image_free(&img);
    vv_hf_free(m);
    return rc ? 1 : 0;
}
