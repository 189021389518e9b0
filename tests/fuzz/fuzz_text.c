// fuzz_text.c - arbitrary text through the text inputs. Byte 0 picks:
//   0  a world scene JSON line (`world gen` files, eval inputs): parse; a scene
//      that parses must survive to_json -> from_json -> to_json unchanged, and
//      render, caption and score
//   1  the tokenizer (tiny.c's SPM vocabulary and the shipped world model's):
//      tokenize with and without specials, ids in range, detokenize
//   2  a caption through CHAIR (world synonyms) and the sentence splitter
//   3  a CHAIR synonym table (COCO rules and plain)
//   4  a TD training file (`visvm reward` output: sentence rewards per
//      caption), then its prefix states
//   5  an SFT caption file (strategy filter from byte 1)
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eval/chair.h"
#include "eval/world_eval.h"
#include "format/gguf.h"
#include "fuzz.h"
#include "model/image.h"
#include "text/vocab.h"
#include "train/td_data.h"
#include "train/vlm_train.h"
#include "tensor/tensor.h"
#include "world/world.h"

#ifndef VISVM_SOURCE_DIR
#define VISVM_SOURCE_DIR "."
#endif

static vv_vocab *voc[2];
static void *voc_mem;
static vv_chair *wch;

static char tmp_path[64]; // the file modes 4 and 5 read (the loaders take paths)

static void rm_tmp(void) {
    if (tmp_path[0]) unlink(tmp_path);
}

static void init(void) {
    static bool done = false;
    if (done) return;
    done = true;
    snprintf(tmp_path, sizeof(tmp_path), "/tmp/visvm-fuzz-text-XXXXXX");
    int fd = mkstemp(tmp_path);
    if (fd < 0) tmp_path[0] = 0;
    else {
        close(fd);
        atexit(rm_tmp);
    }
    vv_error e = {0};
    size_t n = 0;
    voc_mem = fz_tiny_llama(VV_TYPE_F32, &n);
    vv_gguf *g = NULL;
    if (voc_mem && !vv_gguf_open_mem(voc_mem, n, &g, &e)) vv_vocab_load(g, &voc[0], &e);
    vv_gguf_close(g);
    g = NULL;
    if (!vv_gguf_open(VISVM_SOURCE_DIR "/models/world/vlm-text.gguf", &g, &e)) vv_vocab_load(g, &voc[1], &e);
    vv_gguf_close(g);
    vv_world_chair(&wch, &e);
}

static void scene(const char *text) {
    vv_world_scene s, s2;
    vv_error e = {0};
    if (vv_world_scene_from_json(text, &s, &e)) {
        vv_world_scene_free(&s);
        return;
    }
    vv_buf j1 = {0}, j2 = {0};
    if (vv_world_scene_to_json(&s, &j1, &e)) __builtin_trap(); // a parsed scene always serialises
    if (vv_world_scene_from_json(j1.v, &s2, &e)) __builtin_trap();
    if (vv_world_scene_to_json(&s2, &j2, &e) || strcmp(j1.v, j2.v)) __builtin_trap();
    vv_world_params p = vv_world_default_params();
    p.supersample = 1;
    vv_image img = {0};
    if (!vv_world_render(&p, &s, &img, NULL, &e)) vv_image_free(&img);
    char *caps[3] = {0};
    if (!vv_world_captions(&s, 1, 3, caps, &e))
        for (int i = 0; i < 3; i++) free(caps[i]);
    vv_world_sentence *ss = NULL;
    int ns = 0;
    if (!vv_world_sentences(&s, 1, &ss, &ns, &e)) free(ss);
    if (wch) {
        vv_caption_stats cs;
        vv_world_score_caption(wch, &s, "There are two objects. A red cat is on the left. A dog.", &cs, NULL, &e);
    }
    vv_world_scene_free(&s);
    vv_world_scene_free(&s2);
    free(j1.v);
    free(j2.v);
}

static void tokenize(const char *text, size_t len, uint8_t flags) {
    for (int k = 0; k < 2; k++) {
        if (!voc[k]) continue;
        vv_ivec ids = {0};
        vv_error e = {0};
        if (!vv_tokenize(voc[k], text, len, flags & 1, flags & 2, &ids, &e)) {
            for (size_t i = 0; i < ids.n; i++)
                if (ids.v[i] < 0 || ids.v[i] >= vv_vocab_n(voc[k])) __builtin_trap();
            vv_buf out = {0};
            if (vv_detokenize(voc[k], ids.v, ids.n, flags & 4, flags & 8, &out)) __builtin_trap();
            free(out.v);
        }
        vv_ivec_free(&ids);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    init();
    if (size < 2 || size > (1 << 16)) return 0;
    char *t = malloc(size);
    memcpy(t, data + 2, size - 2);
    t[size - 2] = 0;
    const int mode = data[0] % 6;
    if (mode >= 4) {
        FILE *f = tmp_path[0] ? fopen(tmp_path, "wb") : NULL;
        if (!f) {
            free(t);
            return 0;
        }
        fwrite(data + 2, 1, size - 2, f);
        fclose(f);
    }
    switch (mode) {
    case 0: scene(t); break;
    case 1: tokenize(t, size - 2, data[1]); break;
    case 2:
        if (wch) {
            vv_ivec cls = {0}, wi = {0};
            int nw = 0;
            vv_error e = {0};
            vv_chair_mentions(wch, t, &cls, &wi, &nw, &e);
            for (size_t i = 0; i < cls.n; i++)
                if (cls.v[i] < 0 || cls.v[i] >= vv_chair_n_classes(wch)) __builtin_trap();
            vv_ivec_free(&cls);
            vv_ivec_free(&wi);
        }
        {
            char **parts = NULL;
            int n = 0;
            if (vv_split_sentences(t, &parts, &n) >= 0) vv_free_strings(parts, n);
        }
        break;
    case 4: {
        vt_td_set ts;
        vv_error e = {0};
        int rc = vt_td_load(tmp_path, &ts, &e);
        fz_say("td", &e);
        if (!rc) {
            vt_td_prefix_states(&ts, &e);
            vt_td_free(&ts);
        }
        break;
    }
    case 5: {
        vt_sft_set ss;
        vv_error e = {0};
        int rc = vt_sft_load(tmp_path, data[1] & 1 ? "greedy" : NULL, &ss, &e);
        fz_say("sft", &e);
        if (!rc) vt_sft_free(&ss);
        break;
    }
    default: {
        vv_chair *c = NULL;
        vv_error e = {0};
        if (!vv_chair_parse_synonyms(t, strlen(t), data[1] & 1, &c, &e)) {
            vv_ivec cls = {0};
            vv_chair_mentions(c, "a man rides a bike past two dogs and a hot dog stand", &cls, NULL, NULL, &e);
            vv_ivec_free(&cls);
        }
        vv_chair_free(c);
        break;
    }
    }
    free(t);
    return 0;
}
