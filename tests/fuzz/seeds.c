// seeds.c - writes starting inputs for every fuzz target into OUT/<target>/
// (CTest's fuzz_seeds fixture; also the corpus a fuzzing run starts from).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "fuzz.h"
#include "model/image.h"
#include "tensor/tensor.h"
#include "world/world.h"

#ifndef VISVM_SOURCE_DIR
#define VISVM_SOURCE_DIR "."
#endif

static const char *out_dir;
static int n_written;

static int put(const char *target, const char *name, const void *data, size_t size) {
    char p[4096];
    snprintf(p, sizeof(p), "%s/%s", out_dir, target);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/%s/%s", out_dir, target, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, size, f) != size) {
        fprintf(stderr, "fuzz_seeds: cannot write %s\n", p);
        if (f) fclose(f);
        return 1;
    }
    fclose(f);
    n_written++;
    return 0;
}

// Copies an optional file (absent: nothing to do).
static int copy_file(const char *target, const char *name, const char *path) {
    char *b = NULL;
    size_t n = 0;
    vv_error e = {0};
    if (vv_read_file(path, &b, &n, &e)) return 0;
    int rc = put(target, name, b, n);
    free(b);
    return rc;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds OUT_DIR\n");
        return 2;
    }
    out_dir = argv[1];
    mkdir(out_dir, 0755);
    // every target's folder, even where its optional sources (golden data) are absent:
    // CTest replays each folder
    static const char *targets[] = {"fuzz_gguf", "fuzz_hparams", "fuzz_safetensors", "fuzz_image",
                                    "fuzz_text", "fuzz_spm",     "fuzz_hf"};
    for (int i = 0; i < 7; i++) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", out_dir, targets[i]);
        mkdir(p, 0755);
    }
    int rc = 0;
    // GGUF: the tiny llama in four types, a truncated one, the shipped world towers
    static const int types[] = {VV_TYPE_F32, VV_TYPE_F16, VV_TYPE_Q8_0, VV_TYPE_Q4_0};
    for (int i = 0; i < 4; i++) {
        size_t n = 0;
        void *m = fz_tiny_llama(types[i], &n);
        if (!m) return 1;
        char name[64];
        snprintf(name, sizeof(name), "tiny-llama-%s.gguf", vv_type_name(types[i]));
        rc |= put("fuzz_gguf", name, m, n);
        if (i == 0) rc |= put("fuzz_gguf", "tiny-llama-truncated.gguf", m, n / 3);
        free(m);
    }
    rc |= copy_file("fuzz_gguf", "world-vlm-mmproj.gguf", VISVM_SOURCE_DIR "/models/world/vlm-mmproj.gguf");
    rc |= copy_file("fuzz_gguf", "world-clip.gguf", VISVM_SOURCE_DIR "/models/world/clip.gguf");
    // hparams: the bases unedited, and a few edits of each kind
    for (int b = 0; b < 6; b++) {
        uint8_t in[1 + 3 * 10] = {(uint8_t)b};
        rc |= put("fuzz_hparams", b == 0 ? "base0" : b == 1 ? "base1" : b == 2 ? "base2" : b == 3 ? "base3" : b == 4 ? "base4" : "base5", in, 1);
        for (int op = 0; op < 12; op++) {
            for (int r = 0; r < 3; r++) {
                uint8_t *x = in + 1 + 10 * r;
                x[0] = (uint8_t)(7 * op + 13 * r + b);
                x[1] = (uint8_t)op;
                for (int k = 0; k < 8; k++) x[2 + k] = (uint8_t)(op * 31 + r * 7 + k * 3);
            }
            char name[32];
            snprintf(name, sizeof(name), "base%d-op%d", b, op);
            rc |= put("fuzz_hparams", name, in, sizeof(in));
        }
    }
    // safetensors: three tensors of different dtypes and ranks
    {
        float a[6] = {1, 2, 3, 4, 5, 6};
        uint16_t h[4] = {0x3c00, 0x4000, 0xbc00, 0x7c00};
        int32_t iv[3] = {-1, 0, 7};
        int64_t sa[2] = {2, 3}, sh[1] = {4}, si[3] = {1, 3, 1};
        vv_st_wtensor ts[3] = {{"model.a.weight", VV_ST_F32, 2, sa, a},
                               {"model.b", VV_ST_F16, 1, sh, h},
                               {"c", VV_ST_I32, 3, si, iv}};
        void *m = NULL;
        size_t n = 0;
        vv_error e = {0};
        if (vv_st_write_mem(ts, 3, &m, &n, &e)) {
            fprintf(stderr, "fuzz_seeds: %s\n", e.msg);
            return 1;
        }
        rc |= put("fuzz_safetensors", "three.safetensors", m, n);
        free(m);
    }
    // images: PNGs of a rendered world scene, the golden JPEG if present
    {
        vv_world_params p = vv_world_default_params();
        p.size = 24;
        vv_world_scene s;
        vv_image img = {0};
        vv_buf png = {0};
        vv_error e = {0};
        if (vv_world_scene_make(&p, 4242, &s, &e) || vv_world_render(&p, &s, &img, NULL, &e) ||
            vv_image_encode_png(&img, &png, &e)) {
            fprintf(stderr, "fuzz_seeds: %s\n", e.msg);
            return 1;
        }
        rc |= put("fuzz_image", "scene24.png", png.v, png.n);
        // the scene as JSON for the text target
        vv_buf js = {0};
        vv_buf_append(&js, "\0\0", 2);
        vv_world_scene_to_json(&s, &js, &e);
        rc |= put("fuzz_text", "scene.json", js.v, js.n);
        free(js.v);
        free(png.v);
        vv_image_free(&img);
        vv_world_scene_free(&s);
        static const char ppm[] = "P6\n3 2\n255\n\xff\0\0\0\xff\0\0\0\xff\xff\xff\xff\0\0\0\x80\x80\x80";
        rc |= put("fuzz_image", "tiny.ppm", ppm, sizeof(ppm) - 1);
    }
    rc |= copy_file("fuzz_image", "golden.jpg", VISVM_SOURCE_DIR "/../shared/golden/images/test-image.jpg");
    {
        char p[4096];
        snprintf(p, sizeof(p), "%s/llava-next-tiny/tokenizer.model", fz_golden_hf_dir());
        rc |= copy_file("fuzz_spm", "llava-next-tiny.model", p);
    }
    {
        // a minimal ModelProto: pieces <unk> <s> </s> (types 2 3 3), "\u2581a", "b", <0x41> (byte);
        // trainer_spec {model_type: BPE, byte_fallback: true}, normalizer_spec {name: identity, remove_extra_whitespaces: false}
        static const uint8_t pb[] = {
        0x0a, 0x0e, 0x0a, 0x05, 0x3c, 0x75, 0x6e, 0x6b, 0x3e, 0x15, 0x00, 0x00, 0x00, 0x00, 0x18, 0x02,
        0x0a, 0x0c, 0x0a, 0x03, 0x3c, 0x73, 0x3e, 0x15, 0x00, 0x00, 0x00, 0x00, 0x18, 0x03, 0x0a, 0x0d,
        0x0a, 0x04, 0x3c, 0x2f, 0x73, 0x3e, 0x15, 0x00, 0x00, 0x00, 0x00, 0x18, 0x03, 0x0a, 0x0b, 0x0a,
        0x04, 0xe2, 0x96, 0x81, 0x61, 0x15, 0x00, 0x00, 0x80, 0xbf, 0x0a, 0x08, 0x0a, 0x01, 0x62, 0x15,
        0x00, 0x00, 0x00, 0xc0, 0x0a, 0x0f, 0x0a, 0x06, 0x3c, 0x30, 0x78, 0x34, 0x31, 0x3e, 0x15, 0x00,
        0x00, 0x00, 0x00, 0x18, 0x06, 0x12, 0x05, 0x18, 0x02, 0x98, 0x02, 0x01,
        0x1a, 0x0c, 0x0a, 0x08, 'i', 'd', 'e', 'n', 't', 'i', 't', 'y', 0x20, 0x00};
        rc |= put("fuzz_spm", "minimal.model", pb, sizeof(pb));
    }
    // HF directories: each JSON file of the two golden-hf models as its own seed,
    // byte 0 naming the model and the file (fuzz_hf's layout)
    for (int m = 0; m < 2; m++)
        for (int f = 0; f < FZ_N_HF_FILES; f++) {
            char p[4096], *text = NULL;
            size_t n = 0;
            vv_error e = {0};
            snprintf(p, sizeof(p), "%s/%s/%s", fz_golden_hf_dir(), m ? "visvm-value-tiny" : "llava-next-tiny",
                     fz_hf_files[f]);
            if (vv_read_file(p, &text, &n, &e)) continue;
            uint8_t *buf = malloc(n + 1);
            if (buf) {
                buf[0] = (uint8_t)(m | f << 1);
                memcpy(buf + 1, text, n);
                char name[96];
                snprintf(name, sizeof(name), "%s-%s", m ? "value" : "llava", fz_hf_files[f]);
                rc |= put("fuzz_hf", name, buf, n + 1);
            }
            free(buf);
            free(text);
        }
    // text: tokenizer, caption and synonym inputs
    {
        static const char tok[] = "\x01\x03 the cat<s> dog.\xe2\x96\x81 ABC \xff";
        static const char cap[] = "\x02\x00There are three objects. A red cat is left of a dog. A kite? e.g. 3.5 cats!";
        static const char syn[] = "\x03\x01person, girl, boy, man, woman\ndog, puppy\nhot dog\nbicycle, bike\n";
        rc |= put("fuzz_text", "tokenize", tok, sizeof(tok) - 1);
        rc |= put("fuzz_text", "caption", cap, sizeof(cap) - 1);
        rc |= put("fuzz_text", "synonyms", syn, sizeof(syn) - 1);
        static const char td[] = "\x04\x00{\"image\": \"a.png\", \"rewards\": {\"greedy\": {\"A cup.\": 0.3, "
                                 "\"It is red.\": 0.2, \"\": 0}, \"t0.5\": {\"One dog.\": 0.1}}}\n";
        static const char sft[] = "\x05\x01{\"strategy\": \"greedy\", \"seed\": 12, \"caption\": \"A cup.\"}\n"
                                  "{\"strategy\": \"visvm\", \"seed\": 3, \"caption\": \"x\"}\n";
        rc |= put("fuzz_text", "td", td, sizeof(td) - 1);
        rc |= put("fuzz_text", "sft", sft, sizeof(sft) - 1);
    }
    printf("fuzz_seeds: %d inputs in %s\n", n_written, out_dir);
    return rc;
}
