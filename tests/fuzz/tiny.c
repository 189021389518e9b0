// tiny.c - inputs shared by the targets and fuzz_seeds: a tiny llama GGUF in
// memory, the HF directory's JSON files.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "format/gguf.h"
#include "fuzz.h"
#include "tensor/quants.h"
#include "tensor/tensor.h"

enum { TV = 48, TE = 32, TNH = 4, TNKV = 2, THD = TE / TNH, TFF = 64 };

void *fz_tiny_llama(int type, size_t *size) {
    vv_gguf_writer *g = vv_gguf_writer_create();
    if (!g) return NULL;
    vv_gguf_set_str(g, "general.architecture", "llama");
    vv_gguf_set_str(g, "general.name", "fuzz-tiny");
    vv_gguf_set_u32(g, "llama.context_length", 64);
    vv_gguf_set_u32(g, "llama.embedding_length", TE);
    vv_gguf_set_u32(g, "llama.block_count", 1);
    vv_gguf_set_u32(g, "llama.feed_forward_length", TFF);
    vv_gguf_set_u32(g, "llama.attention.head_count", TNH);
    vv_gguf_set_u32(g, "llama.attention.head_count_kv", TNKV);
    vv_gguf_set_u32(g, "llama.rope.dimension_count", THD);
    vv_gguf_set_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    vv_gguf_set_f32(g, "llama.rope.freq_base", 10000.0f);
    vv_gguf_set_str(g, "tokenizer.ggml.model", "llama");
    char *texts[TV];
    float scores[TV];
    int32_t types[TV];
    static const char *words[] = {"\342\226\201the", "\342\226\201a", "\342\226\201cat", "\342\226\201dog", "at", "og",
                                  "\xe2\x96\x81", "t", "h", "e", "c", "a", "d", "o", "g", "."};
    for (int i = 0; i < TV; i++) {
        char b[32];
        if (i == 0) snprintf(b, sizeof(b), "<unk>");
        else if (i == 1) snprintf(b, sizeof(b), "<s>");
        else if (i == 2) snprintf(b, sizeof(b), "</s>");
        else if (i < 3 + 16) snprintf(b, sizeof(b), "%s", words[i - 3]);
        else if (i < 3 + 16 + 26) snprintf(b, sizeof(b), "<0x%02X>", 0x41 + i - 19); // some byte tokens
        else snprintf(b, sizeof(b), "<extra_%d>", i);
        texts[i] = strdup(b);
        scores[i] = -(float)i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : (i >= 19 && i < 45) ? 6 : i >= 45 ? 4 : 1;
    }
    vv_gguf_set_arr_str(g, "tokenizer.ggml.tokens", (const char *const *)texts, TV);
    vv_gguf_set_arr(g, "tokenizer.ggml.scores", VV_GGUF_FLOAT32, scores, TV);
    vv_gguf_set_arr(g, "tokenizer.ggml.token_type", VV_GGUF_INT32, types, TV);
    vv_gguf_set_u32(g, "tokenizer.ggml.bos_token_id", 1);
    vv_gguf_set_u32(g, "tokenizer.ggml.eos_token_id", 2);
    vv_gguf_set_str(g, "tokenizer.chat_template", "{{ messages }}");
    for (int i = 0; i < TV; i++) free(texts[i]);

    vv_rng r;
    vv_rng_seed(&r, 7);
    void *bufs[16];
    int nb = 0;
#define MAT(name, nin, nout)                                                              \
    do {                                                                                  \
        float *x = malloc(sizeof(float) * (nin) * (nout));                                \
        for (int i = 0; i < (nin) * (nout); i++) x[i] = 0.1f * vv_rng_normal(&r);        \
        size_t rs = vv_row_size(type, nin);                                               \
        char *d = malloc(rs * (nout));                                                    \
        for (int o = 0; o < (nout); o++) vv_quantize_row(type, x + o * (nin), d + o * rs, nin); \
        free(x);                                                                          \
        bufs[nb++] = d;                                                                   \
        int64_t ne[2] = {nin, nout};                                                      \
        vv_gguf_add_tensor(g, name, type, 2, ne, d);                                      \
    } while (0)
#define VEC(name, n)                                                                      \
    do {                                                                                  \
        float *x = malloc(sizeof(float) * (n));                                           \
        for (int i = 0; i < (n); i++) x[i] = 1.0f + 0.1f * vv_rng_normal(&r);            \
        bufs[nb++] = x;                                                                   \
        int64_t ne[1] = {n};                                                              \
        vv_gguf_add_tensor(g, name, VV_TYPE_F32, 1, ne, x);                               \
    } while (0)
    MAT("token_embd.weight", TE, TV);
    VEC("blk.0.attn_norm.weight", TE);
    MAT("blk.0.attn_q.weight", TE, TE);
    MAT("blk.0.attn_k.weight", TE, TNKV * THD);
    MAT("blk.0.attn_v.weight", TE, TNKV * THD);
    MAT("blk.0.attn_output.weight", TE, TE);
    VEC("blk.0.ffn_norm.weight", TE);
    MAT("blk.0.ffn_gate.weight", TE, TFF);
    MAT("blk.0.ffn_up.weight", TE, TFF);
    MAT("blk.0.ffn_down.weight", TFF, TE);
    VEC("output_norm.weight", TE);
    MAT("output.weight", TE, TV);
#undef MAT
#undef VEC
    void *mem = NULL;
    vv_error e = {0};
    if (vv_gguf_writer_write_mem(g, &mem, size, &e)) {
        fprintf(stderr, "fz_tiny_llama: %s\n", e.msg);
        mem = NULL;
    }
    vv_gguf_writer_free(g);
    for (int i = 0; i < nb; i++) free(bufs[i]);
    return mem;
}

#ifndef VISVM_SOURCE_DIR
#define VISVM_SOURCE_DIR "."
#endif

const char *const fz_hf_files[FZ_N_HF_FILES] = {"config.json",       "preprocessor_config.json",
                                                "tokenizer_config.json", "added_tokens.json",
                                                "model.safetensors.index.json", "chat_template.json",
                                                "value_head.json"};

const char *fz_golden_hf_dir(void) {
    const char *d = getenv("VISVM_GOLDEN_HF_DIR");
    return d ? d : VISVM_SOURCE_DIR "/../shared/golden-hf";
}
