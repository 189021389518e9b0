// cmd_value.c - `visvm value`: the value of (image, sentence) under a VisVM
// value model in the Hugging Face layout (si0wang/VisVM's ValueModel:
// "llava_encoder." LLaVA-NeXT + flattened v_head over max_length left-padded
// positions), computed as transformers 4.45 does, from the HF directory or
// from its `visvm convert` GGUF files (vv_value, value.h).
#include <stdio.h>
#include <string.h>

#include "base/threadpool.h"
#include "cli.h"
#include "model/hf.h"
#include "model/value.h"

int cmd_value(int argc, char **argv) {
    const char *model = NULL, *mmproj = NULL, *image = NULL, *sentence = NULL, *attn = "sdpa";
    int threads = 0;
    bool verbose = false;
    cli_opt opts[] = {
        {"--model", "-m", CLI_STR, &model,
         "value model: HF directory (config.json architectures [\"ValueModel\"]) or value text GGUF", 0, -1},
        {"--mmproj", NULL, CLI_STR, &mmproj, "vision GGUF of a GGUF value model (not with an HF directory)", 0, -1},
        {"--image", NULL, CLI_STR, &image, "image file", 0, -1},
        {"--sentence", NULL, CLI_STR, &sentence, "the sentence (state) to score", 0, -1},
        {"--attn", NULL, CLI_STR, &attn,
         "pad-row semantics: sdpa (transformers on CUDA, VisVM's runs) or eager (transformers on CPU)", 0, -1},
        {"--threads", "-t", CLI_INT, &threads, "threads; 0 = all cores", 0, 1024},
        {"--verbose", "-v", CLI_FLAG, &verbose, "print the input length, padding and timing", 0, -1},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse("value", "-m VALUE_DIR | -m VALUE.gguf --mmproj MMPROJ.gguf, --image IMG --sentence TEXT [options]",
                       "Prints V(image, sentence) of a VisVM value model: the state \"[INST] <image>\\n{sentence} "
                       "[/INST]\" left-padded to the model's max_length, exactly as VisVM's Python code computes it "
                       "(HF directory, or its `visvm convert` GGUF files). A GGUF value model with a last_token head "
                       "(visvm train) is scored as the search does.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 2, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    const bool hf = model && vv_hf_is_dir(model);
    if (!model || !image || !sentence || (!hf && !mmproj)) {
        fprintf(stderr, "visvm value: -m, --image and --sentence are required, and --mmproj unless -m is a Hugging "
                        "Face directory (see --help)\n");
        return 2;
    }
    int mode;
    if (!strcmp(attn, "sdpa")) mode = VV_HF_PAD_SDPA;
    else if (!strcmp(attn, "eager")) mode = VV_HF_PAD_EAGER;
    else {
        fprintf(stderr, "visvm value: --attn must be sdpa or eager, not '%s'\n", attn);
        return 2;
    }
    if (hf && mmproj) fprintf(stderr, "visvm value: %s is a Hugging Face directory; --mmproj is ignored\n", model);
    vv_error e = {0};
    vv_value *v = NULL;
    vv_value_state *st = NULL;
    vv_image img = {0};
    vv_pool *pool = NULL;
    double t0 = vv_time_s(), t1 = t0;
    float val = 0;
    rc = vv_value_load(model, hf ? NULL : mmproj, &v, &e);
    if (!rc) {
        v->pad_mode = mode;
        rc = vv_image_load_file(image, &img, &e);
    }
    if (!rc && !(pool = vv_pool_create(threads))) rc = vv_err(&e, VISVM_ERR_NOMEM, "cannot create threads");
    if (!rc) {
        t1 = vv_time_s();
        const char *one[1] = {sentence};
        rc = vv_value_state_create(v, pool, 1, &st, &e);
        if (!rc) rc = vv_value_set_image(st, &img, &e);
        if (!rc) rc = vv_value_score(st, one, 1, NULL, &val, &e);
    }
    if (rc) {
        fprintf(stderr, "visvm value: %s\n", e.msg);
    } else {
        printf("%.7f\n", val);
        if (verbose) {
            if (v->hf)
                fprintf(stderr, "flattened head over max_length %d, %s pad rows; ", v->hf->max_length, attn);
            else if (v->chead)
                fprintf(stderr, "head on the CLIP's features; ");
            else
                fprintf(stderr, "last_token head; ");
            fprintf(stderr, "load %.2f s, value %.2f s\n", t1 - t0, vv_time_s() - t1);
        }
    }
    vv_value_state_free(st);
    vv_pool_free(pool);
    vv_image_free(&img);
    vv_value_free(v);
    return rc ? 1 : 0;
}
