// llama.h - Llama/Mistral decoder (GGUF architecture "llama"): RMSNorm, RoPE
// (adjacent pairs, as llama.cpp), grouped-query attention, SwiGLU, tied or
// separate output. The model (weights, read-only) is separate from the state
// (paged KV cache, scratch), so one loaded model serves many searches.
#ifndef VV_LLAMA_H
#define VV_LLAMA_H

#include "../format/gguf.h"
#include "../tensor/matmul.h"
#include "../nn/ops.h"
#include "../text/vocab.h"
#include "kv.h"

typedef struct vv_llama_hparams {
    int n_vocab;
    int n_embd;
    int n_layer;
    int n_head;
    int n_head_kv;
    int head_dim;
    int n_ff;
    int n_rot;
    int n_ctx_train;
    float rope_base;
    float rope_freq_scale; // 1 / linear scaling factor
    float eps;
    bool rope_neox;        // rotate-half RoPE (HF layout); GGUF llama files use adjacent pairs
} vv_llama_hparams;

typedef struct vv_llama_layer {
    const vv_tensor *attn_norm, *wq, *wk, *wv, *wo;
    const vv_tensor *bq, *bk, *bv, *bo; // optional biases
    const vv_tensor *ffn_norm, *w_gate, *w_up, *w_down;
} vv_llama_layer;

typedef struct vv_llama {
    vv_gguf *gguf;             // owns the mapping the tensors point into
    vv_llama_hparams hp;
    const vv_tensor *tok_embd; // [n_embd, n_vocab]
    const vv_tensor *output_norm;
    const vv_tensor *output;   // == tok_embd when tied
    vv_llama_layer *layers;
    float **norm_f32;          // norm weights as f32 (converted once when stored as F16)
    vv_vocab *vocab;
    char *chat_template;       // tokenizer.chat_template or NULL
    char *name;                // general.name or NULL
    int file_type;             // dominant weight type (for descriptions)
} vv_llama;

// Loads from an open GGUF (takes ownership of g on success and on failure).
int vv_llama_load(vv_gguf *g, vv_llama **out, vv_error *e);
int vv_llama_load_file(const char *path, vv_llama **out, vv_error *e);
void vv_llama_free(vv_llama *m);
size_t vv_llama_n_params(const vv_llama *m);
size_t vv_llama_weight_bytes(const vv_llama *m); // bytes of all tensors

// ---------------------------------------------------------------------------
// Per-request state.
typedef struct vv_llama_state vv_llama_state;

typedef struct vv_llama_state_params {
    int n_ctx;      // total KV positions shared by all sequences
    int n_seq;      // sequence slots
    int n_batch;    // max tokens per internal forward chunk
    vv_pool *pool;  // borrowed; NULL = single thread
} vv_llama_state_params;

int vv_llama_state_create(const vv_llama *m, const vv_llama_state_params *p, vv_llama_state **out, vv_error *e);
void vv_llama_state_free(vv_llama_state *st);
vv_kv *vv_llama_state_kv(vv_llama_state *st);
const vv_llama *vv_llama_state_model(const vv_llama_state *st);
vv_kv_seq *vv_llama_state_seq(vv_llama_state *st, int seq); // NULL if out of range
int vv_llama_state_n_seq(const vv_llama_state *st);
int vv_llama_state_n_ctx(const vv_llama_state *st);
// Sequence management (wrap the KV cache).
int vv_llama_seq_fork(vv_llama_state *st, int src, int dst, vv_error *e);
int vv_llama_seq_truncate(vv_llama_state *st, int seq, int32_t len);
void vv_llama_seq_clear(vv_llama_state *st, int seq);
int32_t vv_llama_seq_len(const vv_llama_state *st, int seq);

// A batch: segments of consecutive tokens, each appended to one sequence at
// its current end (positions continue). Tokens or input embeddings.
typedef struct vv_llama_batch {
    int n_tok;
    const int32_t *tokens; // [n_tok] or NULL
    const float *embd;     // [n_tok, n_embd] or NULL
    int n_seg;
    const int *seg_seq;    // [n_seg] sequence slot of each segment
    const int *seg_len;    // [n_seg] tokens per segment (sum = n_tok)
    const bool *out;       // [n_tok] rows that produce outputs; NULL = last row of each segment
} vv_llama_batch;

// Runs the batch. For every output row (in batch order) writes logits
// [n_out, n_vocab] (if logits != NULL) and the final normalised hidden state
// [n_out, n_embd] (if hidden != NULL). On error the sequences are restored to
// their lengths before the call.
int vv_llama_decode(vv_llama_state *st, const vv_llama_batch *b, float *logits, float *hidden, vv_error *e);
// Convenience: one sequence, tokens or embd, outputs for every row (all = true) or the last.
int vv_llama_decode_seq(vv_llama_state *st, int seq, const int32_t *tokens, const float *embd, int n, bool all,
                        float *logits, vv_error *e);

#endif
