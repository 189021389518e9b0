// simple.c - caption an image through the public API alone.
//
//   build/simple TEXT.gguf MMPROJ.gguf IMAGE ["prompt"]
#include <stdio.h>

#include "visvm.h"

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s TEXT.gguf MMPROJ.gguf IMAGE [prompt]\n", argv[0]);
        return 2;
    }
    const char *prompt = argc > 4 ? argv[4] : "Describe the image in detail.";
    visvm_model *model = NULL;
    visvm_mmproj *mmproj = NULL;
    visvm_context *ctx = NULL;
    char *text = NULL;
    int rc = 1;

    // Models are read-only and could be shared by many contexts.
    if (visvm_model_load(argv[1], NULL, &model) != VISVM_OK ||
        visvm_mmproj_load(argv[2], NULL, &mmproj) != VISVM_OK ||
        visvm_context_create(model, mmproj, NULL, &ctx) != VISVM_OK) {
        fprintf(stderr, "error: %s\n", visvm_last_error());
        goto done;
    }

    visvm_sample_params sp = visvm_sample_default_params(); // greedy, 256 tokens
    if (visvm_caption(ctx, argv[3], prompt, &sp, &text) != VISVM_OK) {
        fprintf(stderr, "error: %s\n", visvm_context_error(ctx));
        goto done;
    }
    printf("%s\n", text);
    rc = 0;

done:
    visvm_free_string(text);
    visvm_context_free(ctx);
    visvm_mmproj_free(mmproj);
    visvm_model_free(model);
    return rc;
}
