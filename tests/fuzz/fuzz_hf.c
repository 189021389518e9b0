// fuzz_hf.c - Hugging Face model directories with one JSON file replaced:
// config.json, preprocessor_config.json, tokenizer_config.json,
// added_tokens.json, model.safetensors.index.json, chat_template.json or
// value_head.json of the golden-hf tiny LLaVA-NeXT / VisVM value model
// (../shared/golden-hf; the target does nothing where it is absent). A model
// that loads tokenizes a prompt and, where its shapes stay small, computes
// the image features of a small image.
//
// Input: byte 0 picks the model (bit 0) and the file (the rest, modulo 7);
// the remaining bytes are that file's new content.
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/base.h"
#include "fuzz.h"
#include "model/hf.h"
#include "model/image.h"

static const char *k_models[2] = {"llava-next-tiny", "visvm-value-tiny"};
static char dirs[2][512]; // temp copies: symlinks to the golden files
static char src[2][512];
static bool ready;

// Removes the temp copies at exit (the links and any replaced file).
static void cleanup(void) {
    for (int m = 0; m < 2; m++) {
        if (!dirs[m][0]) continue;
        DIR *d = opendir(dirs[m]);
        if (d) {
            struct dirent *de;
            while ((de = readdir(d))) {
                if (de->d_name[0] == '.') continue;
                char p[2048];
                snprintf(p, sizeof(p), "%s/%s", dirs[m], de->d_name);
                unlink(p);
            }
            closedir(d);
        }
        rmdir(dirs[m]);
    }
}

static void init(void) {
    static bool done = false;
    if (done) return;
    done = true;
    atexit(cleanup);
    const char *base = fz_golden_hf_dir();
    for (int m = 0; m < 2; m++) {
        snprintf(src[m], sizeof(src[m]), "%s/%s", base, k_models[m]);
        snprintf(dirs[m], sizeof(dirs[m]), "/tmp/visvm-fuzz-hf-XXXXXX");
        if (!mkdtemp(dirs[m])) {
            dirs[m][0] = 0;
            return;
        }
        DIR *d = opendir(src[m]);
        if (!d) return;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            char a[2048], b[2048];
            snprintf(a, sizeof(a), "%s/%s", src[m], de->d_name);
            snprintf(b, sizeof(b), "%s/%s", dirs[m], de->d_name);
            if (symlink(a, b)) {
                closedir(d);
                return;
            }
        }
        closedir(d);
    }
    ready = true;
}

static void restore(int m, const char *f) {
    char a[2048], b[2048];
    snprintf(a, sizeof(a), "%s/%s", src[m], f);
    snprintf(b, sizeof(b), "%s/%s", dirs[m], f);
    unlink(b);
    if (access(a, F_OK) == 0 && symlink(a, b)) fprintf(stderr, "fuzz_hf: cannot restore %s\n", b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init();
    if (!ready || size < 1 || size > (1 << 16)) return 0;
    const int m = data[0] & 1;
    const char *f = fz_hf_files[(data[0] >> 1) % FZ_N_HF_FILES];
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", dirs[m], f);
    unlink(p);
    FILE *fp = fopen(p, "wb");
    if (!fp) return 0;
    fwrite(data + 1, 1, size - 1, fp);
    fclose(fp);
    vv_hf_llava *model = NULL;
    vv_error e = {0};
    int rc = vv_hf_load(dirs[m], &model, &e);
    fz_say("hf", &e);
    if (!rc) {
        vv_ivec ids = {0};
        vv_buf prompt = {0};
        if (!vv_hf_chat_prompt(model, "Describe the image.", true, &prompt) &&
            !vv_hf_tokenize(model, prompt.v, 3, &ids, &e) && model->pre.size <= 64) {
            vv_image img = {0};
            if (!vv_image_alloc(&img, 30, 17, &e)) {
                for (int i = 0; i < 30 * 17 * 3; i++) img.rgb[i] = (uint8_t)(i * 13);
                float *feats = NULL;
                int n = 0;
                if (!vv_hf_image_features(model, NULL, &img, NULL, &feats, &n, &e)) free(feats);
                fz_say("features", &e);
                vv_image_free(&img);
            }
        }
        vv_ivec_free(&ids);
        free(prompt.v);
        vv_hf_free(model);
    }
    restore(m, f);
    return 0;
}
