// cmd_caption.c - `visvm caption`: describe an image through the public API,
// or, when -m is a Hugging Face LLaVA-NeXT directory, with HF's exact
// preprocessing, anyres packing and prompt tokenization (model/hf.h) feeding
// the engine's decoder.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "cli.h"
#include "gen/llava.h"
#include "model/hf.h"
#include "visvm.h"

// Caption from an HF directory: prompt + image features as transformers'
// LlavaNextProcessor builds them (<image> expanded to the packed feature
// count), one prefill of inputs_embeds, then sampling on the KV cache.
static int hf_caption(const char *dir, const char *image, const char *prompt, int tmpl, const vv_gen_params *gp,
                      uint64_t seed, int n_ctx, int threads) {
    vv_error e = {0};
    vv_hf_llava *m = NULL;
    vv_image img = {0};
    vv_pool *pool = NULL;
    vv_llama_state *st = NULL;
    vv_sampler smp = {0};
    float *feats = NULL, *embd = NULL, *logits = NULL;
    int n_img = 0, rc;
    vv_buf full = {0}, text = {0};
    vv_ivec ids = {0}, toks = {0};
    if ((rc = vv_hf_load(dir, &m, &e))) goto done;
    if (m->is_value) {
        rc = vv_err(&e, VISVM_ERR_INVALID, "%s is a value model; use `visvm value`", dir);
        goto done;
    }
    pool = vv_pool_create(threads);
    if (!pool) {
        rc = vv_err(&e, VISVM_ERR_NOMEM, "cannot create threads");
        goto done;
    }
    if ((rc = vv_image_load_file(image, &img, &e)) || (rc = vv_hf_image_features(m, pool, &img, NULL, &feats, &n_img, &e)))
        goto done;
    rc = tmpl == VISVM_TEMPLATE_AUTO ? vv_hf_chat_prompt(m, prompt, true, &full) : vv_chat_format(tmpl, prompt, true, &full);
    if (rc) {
        vv_err(&e, rc, "cannot render the prompt");
        goto done;
    }
    if ((rc = vv_hf_tokenize(m, full.v, n_img, &ids, &e))) goto done;
    if ((int64_t)ids.n + gp->n_predict > n_ctx) {
        rc = vv_err(&e, VISVM_ERR_RANGE, "prompt of %zu positions plus %d new tokens exceeds the context of %d", ids.n,
                    gp->n_predict, n_ctx);
        goto done;
    }
    const size_t D = (size_t)m->n_embd, V = (size_t)m->lm->hp.n_vocab;
    embd = malloc(ids.n * D * sizeof(float));
    logits = malloc(V * sizeof(float));
    if (!embd || !logits || vv_sampler_init(&smp, (int)V)) {
        rc = vv_err(&e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = vv_hf_embed(m, ids.v, (int)ids.n, feats, n_img, embd, &e))) goto done;
    vv_llama_state_params sp = {n_ctx, 1, 512, pool};
    if ((rc = vv_llama_state_create(m->lm, &sp, &st, &e)) ||
        (rc = vv_llama_decode_seq(st, 0, NULL, embd, (int)ids.n, false, logits, &e)))
        goto done;
    vv_rng rng;
    vv_rng_seed(&rng, seed);
    if ((rc = vv_generate(st, 0, m->lm->vocab, logits, gp, &rng, &smp, &toks, &text, &e))) goto done;
    printf("%s\n", text.v ? text.v : "");
done:
    if (rc) fprintf(stderr, "visvm caption: %s\n", e.msg);
    vv_buf_free(&full);
    vv_buf_free(&text);
    vv_ivec_free(&ids);
    vv_ivec_free(&toks);
    free(embd);
    free(logits);
    free(feats);
    vv_sampler_free(&smp);
    vv_llama_state_free(st);
    vv_pool_free(pool);
    vv_image_free(&img);
    vv_hf_free(m);
    return rc ? 1 : 0;
}

int cmd_caption(int argc, char **argv) {
    const char *model = NULL, *mmproj = NULL, *image = NULL, *prompt = "Describe the image in detail.";
    const char *tmpl = "auto", *vmode = "reference", *stop = NULL;
    int n_predict = 256, threads = 0, n_ctx = 4096, top_k = 40, verbose = 0;
    float temp = 0.0f, top_p = 0.9f;
    uint64_t seed = 42;
    cli_opt opts[] = {
        {"--model", "-m", CLI_STR, &model, "text model GGUF (llama architecture), or a Hugging Face LLaVA-NeXT directory", 0, -1},
        {"--mmproj", NULL, CLI_STR, &mmproj, "vision model GGUF (clip architecture, LLaVA projector); not with an HF directory", 0, -1},
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
    int rc = cli_parse("caption", "-m TEXT.gguf --mmproj MMPROJ.gguf --image IMG | -m HF_DIR --image IMG [options]",
                       "Prints the model's answer about the image.", opts, (int)(sizeof(opts) / sizeof(opts[0])),
                       argc, argv, 2, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    const bool hf = model && vv_hf_is_dir(model);
    if (!model || (!mmproj && !hf) || !image) {
        fprintf(stderr, "visvm caption: -m, --mmproj (unless -m is a Hugging Face directory) and --image are required "
                        "(see --help)\n");
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
    if (hf) {
        if (mmproj) fprintf(stderr, "visvm caption: %s is a Hugging Face directory; --mmproj is ignored\n", model);
        vv_gen_params gp = {{temp, top_k, top_p}, n_predict, stop, true};
        return hf_caption(model, image, prompt, sp.chat_template, &gp, seed, n_ctx, threads);
    }

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
