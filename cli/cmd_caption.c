// cmd_caption.c - `visvm caption`: describe an image through the public API.
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "visvm.h"

int cmd_caption(int argc, char **argv) {
    const char *model = NULL, *mmproj = NULL, *image = NULL, *prompt = "Describe the image in detail.";
    const char *tmpl = "auto", *vmode = "reference", *stop = NULL;
    int n_predict = 256, threads = 0, n_ctx = 4096, top_k = 40, verbose = 0;
    float temp = 0.0f, top_p = 0.9f;
    uint64_t seed = 42;
    cli_opt opts[] = {
        {"--model", "-m", CLI_STR, &model, "text model GGUF (llama architecture)", 0, -1},
        {"--mmproj", NULL, CLI_STR, &mmproj, "vision model GGUF (clip architecture, LLaVA projector)", 0, -1},
        {"--image", NULL, CLI_STR, &image, "image file (PNG, JPEG, BMP, ...)", 0, -1},
        {"--prompt", "-p", CLI_STR, &prompt, "question about the image", 0, -1},
        {"--n-predict", "-n", CLI_INT, &n_predict, "maximum number of new tokens", 1, 1 << 20},
        {"--temp", NULL, CLI_FLOAT, &temp, "temperature; 0 = greedy", 0, 100},
        {"--top-k", NULL, CLI_INT, &top_k, "top-k sampling; 0 = off", 0, 1 << 24},
        {"--top-p", NULL, CLI_FLOAT, &top_p, "top-p (nucleus) sampling; 1 = off", 0, 1},
        {"--seed", "-s", CLI_U64, &seed, "random seed", 0, -1},
        {"--threads", "-t", CLI_INT, &threads, "threads; 0 = all cores", 0, 1024},
        {"--ctx-size", "-c", CLI_INT, &n_ctx, "context size in tokens", 16, 1 << 22},
        {"--chat-template", NULL, CLI_STR, &tmpl, "auto | llava15 | mistral | raw", 0, -1},
        {"--vision-mode", NULL, CLI_STR, &vmode, "reference (LLaVA design) | llamacpp (llama.cpp compatible)", 0, -1},
        {"--stop", NULL, CLI_STR, &stop, "stop once the answer contains this string (e.g. \".\" for one sentence)", 0, -1},
        {"--verbose", "-v", CLI_INT, &verbose, "log level 0..3", 0, 3},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("caption", "-m TEXT.gguf --mmproj MMPROJ.gguf --image IMG [options]",
                       "Prints the model's answer about the image.", opts, (int)(sizeof(opts) / sizeof(opts[0])),
                       argc, argv, 2, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!model || !mmproj || !image) {
        fprintf(stderr, "visvm caption: -m, --mmproj and --image are required (see --help)\n");
        return 2;
    }
    visvm_sample_params sp = visvm_sample_default_params();
    if (!strcmp(tmpl, "auto")) sp.chat_template = VISVM_TEMPLATE_AUTO;
    else if (!strcmp(tmpl, "llava15")) sp.chat_template = VISVM_TEMPLATE_LLAVA15;
    else if (!strcmp(tmpl, "mistral")) sp.chat_template = VISVM_TEMPLATE_MISTRAL;
    else if (!strcmp(tmpl, "raw")) sp.chat_template = VISVM_TEMPLATE_RAW;
    else {
        fprintf(stderr, "visvm caption: unknown --chat-template '%s'\n", tmpl);
        return 2;
    }
    visvm_mmproj_params mp = visvm_mmproj_default_params();
    if (!strcmp(vmode, "llamacpp")) mp.vision_mode = VISVM_VISION_LLAMACPP;
    else if (strcmp(vmode, "reference") != 0) {
        fprintf(stderr, "visvm caption: unknown --vision-mode '%s'\n", vmode);
        return 2;
    }
    if (verbose) visvm_set_log_level(verbose);
    sp.temperature = temp;
    sp.top_k = top_k;
    sp.top_p = top_p;
    sp.seed = seed;
    sp.n_predict = n_predict;
    sp.stop = stop;

    visvm_model *m = NULL;
    visvm_mmproj *mm = NULL;
    visvm_context *ctx = NULL;
    char *text = NULL;
    int status = 1;
    if (visvm_model_load(model, NULL, &m) != VISVM_OK) {
        fprintf(stderr, "visvm caption: %s\n", visvm_last_error());
        goto done;
    }
    if (visvm_mmproj_load(mmproj, &mp, &mm) != VISVM_OK) {
        fprintf(stderr, "visvm caption: %s\n", visvm_last_error());
        goto done;
    }
    visvm_context_params cp = visvm_context_default_params();
    cp.n_ctx = n_ctx;
    cp.n_threads = threads;
    if (visvm_context_create(m, mm, &cp, &ctx) != VISVM_OK) {
        fprintf(stderr, "visvm caption: %s\n", visvm_last_error());
        goto done;
    }
    if (visvm_caption(ctx, image, prompt, &sp, &text) != VISVM_OK) {
        fprintf(stderr, "visvm caption: %s\n", visvm_context_error(ctx));
        goto done;
    }
    printf("%s\n", text);
    status = 0;
done:
    visvm_free_string(text);
    visvm_context_free(ctx);
    visvm_mmproj_free(mm);
    visvm_model_free(m);
    return status;
}
