// hf.h - Hugging Face LLaVA-NeXT checkpoints (llava-hf/llava-v1.6-*-hf layout,
// transformers 4.45) and VisVM value models, run straight from safetensors
// with HF's semantics. Rules: ../shared/golden-hf/README.md.
//
// A model directory holds config.json, preprocessor_config.json,
// tokenizer.model (+ tokenizer_config.json / added_tokens.json) and
// model.safetensors[.index.json]. Weights stay in the file mappings: the text
// decoder is an ordinary vv_llama whose tensors point into them, with
// rotate-half RoPE (hp.rope_neox), so generation uses the engine's paged-KV
// decoder unchanged. The vision tower, projector and anyres packing follow
// LlavaNextForConditionalGeneration exactly:
//   hidden_states[vision_feature_layer] of CLIP (no post_layernorm), CLS
//   dropped for strategy "default", linear_2(gelu_erf(linear_1(x))), tiles
//   reassembled into the (gh*G) x (gw*G) map, unpadded with the model's float
//   formula int(H * (cw / W)), image_newline after every row, base tile first.
// Where the processor's integer token count disagrees with the model's float
// unpad (README "Surprises" 1, where transformers 4.45 itself fails), visvm
// uses the model's features and expands <image> to their number.
//
// VisVM value models (config architectures ["ValueModel"], keys prefixed
// "llava_encoder.", head "v_head.0.weight" [1, max_length * D]) take
// "[INST] <image>\n{sentence} [/INST]" left-padded with <pad> to max_length,
// run the decoder with positions arange(max_length) over all rows (pads
// included), and apply the head to the flattened final-norm hidden states.
#ifndef VV_HF_H
#define VV_HF_H

#include "../format/safetensors.h"
#include "hf_image.h"
#include "llama.h"

// How fully-masked (left pad) query rows attend, as transformers 4.45 does.
enum vv_hf_pad_mode {
    VV_HF_PAD_SDPA = 0,  // CUDA + SDPA (_unmask_unattended): ordinary softmax over all keys (VisVM's runs; default)
    VV_HF_PAD_EAGER = 1  // eager (HF on CPU): every score is finfo.min, uniform weights over all keys
};

typedef struct vv_hf_vlayer {
    const float *ln1_w, *ln1_b, *ln2_w, *ln2_b, *q_b, *k_b, *v_b, *o_b, *fc1_b, *fc2_b;
    const vv_tensor *q_w, *k_w, *v_w, *o_w, *fc1_w, *fc2_w;
} vv_hf_vlayer;

typedef struct vv_hf_llava {
    vv_safetensors *st;        // NULL when loaded from converted GGUF files
    vv_gguf *mm_gguf;          // the mmproj GGUF of vv_hf_load_gguf (owns its tensors), else NULL
    vv_llama *lm;              // decoder + vocabulary (tensors in st)
    int image_token, pad_token;
    int sliding_window;        // 0: none
    bool legacy_tokenizer;
    char *chat_template;       // chat_template.json / tokenizer_config.json, or NULL
    // vision tower (CLIP ViT)
    int v_size, v_patch, v_grid, v_dim, v_heads, v_ff, v_layers, v_layers_run;
    float v_eps;
    bool v_quick_gelu, drop_cls;
    const vv_tensor *patch_w;  // [D, 3, P, P] viewed as [3*P*P] x D
    const float *class_embd, *pos_embd, *pre_ln_w, *pre_ln_b; // pos_embd [1+G*G, D]
    vv_hf_vlayer *vl;
    // projector + newline
    const vv_tensor *mm1_w, *mm2_w;
    const float *mm1_b, *mm2_b, *image_newline;
    int n_embd;                // text hidden size (projector output)
    vv_hf_preproc pre;
    // value model
    bool is_value;
    int max_length;
    const vv_tensor *v_head_w; // [max_length * n_embd] x 1
    float v_head_b;
    // owned f32 copies of vectors
    float **vecs;
    int n_vecs;
} vv_hf_llava;

// True when dir looks like a Hugging Face model directory (config.json present).
bool vv_hf_is_dir(const char *path);
int vv_hf_load(const char *dir, vv_hf_llava **out, vv_error *e);
void vv_hf_free(vv_hf_llava *m);
// The same model from the text.gguf + mmproj.gguf that `visvm convert` writes
// (hf_convert.h): the decoder and vocabulary from text_path (llama.rope.neox,
// visvm.hf.image_token_id / pad_token_id, and for value models
// visvm.value.head = "flattened" with visvm.value.max_length), the vision
// tower, projector, image_newline and the HF processor settings (visvm.hf.*)
// from mmproj_path. Weights stay in the GGUF mappings at their stored types,
// so every function below (HF-exact preprocessing, packing, masked forward,
// value) runs on them unchanged. Files without the visvm.hf.* keys (not made
// by visvm convert) are refused with VISVM_ERR_UNSUPPORTED.
int vv_hf_load_gguf(const char *text_path, const char *mmproj_path, vv_hf_llava **out, vv_error *e);

// Vision tower + projector over the tiles of px. Each output is optional:
// embd [n, 1+G*G, Dv] (hidden_states[0], after pre_layrnorm), selected
// [n, 1+G*G, Dv] (hidden_states[feature_layer]), projected [n, T, D] with
// T = G*G (default strategy) or 1+G*G (full).
int vv_hf_vision(const vv_hf_llava *m, vv_pool *pool, const vv_hf_pixels *px, float *embd, float *selected,
                 float *projected, vv_error *e);
// Anyres packing of projected [n, T, D]: *out (malloc'd) [*n_tok, D].
int vv_hf_pack(const vv_hf_llava *m, const vv_hf_pixels *px, const float *projected, float **out, int *n_tok,
               vv_error *e);
// preprocess + vision + pack. px (optional) receives the pixels.
int vv_hf_image_features(const vv_hf_llava *m, vv_pool *pool, const vv_image *img, vv_hf_pixels *px, float **out,
                         int *n_tok, vv_error *e);

// Tokenizes text as the slow LlamaTokenizer (legacy): BOS, special tokens
// matched literally, a dummy prefix per chunk. Every "<image>" is expanded to
// n_image copies of the image token (n_image <= 0: left as one token).
int vv_hf_tokenize(const vv_hf_llava *m, const char *text, int n_image, vv_ivec *ids, vv_error *e);
// Renders a user turn with the model's chat template (mistral "[INST] <image>\n{p} [/INST]"
// or vicuna "USER: <image>\n{p} ASSISTANT:").
int vv_hf_chat_prompt(const vv_hf_llava *m, const char *prompt, bool with_image, vv_buf *out);
// inputs_embeds [n, D]: token embeddings with the image-token rows replaced by
// img [n_img, D] in order (the count must match).
int vv_hf_embed(const vv_hf_llava *m, const int32_t *ids, int n, const float *img, int n_img, float *out,
                vv_error *e);

// One full forward as HF's eager/SDPA attention with an attention mask
// (mask NULL = all ones), positions arange(n). hidden [n, D] (after the final
// norm) and logits [n, n_vocab] are each optional.
int vv_hf_forward(const vv_hf_llava *m, vv_pool *pool, const float *embd, int n, const int32_t *mask, int pad_mode,
                  float *hidden, float *logits, vv_error *e);

// Value of (image, sentence). ids/mask (optional) receive the padded inputs,
// hidden (optional, [max_length, D]) the head input.
int vv_hf_value(const vv_hf_llava *m, vv_pool *pool, const vv_image *img, const char *sentence, int pad_mode,
                float *value, vv_ivec *ids, vv_ivec *mask, float *hidden, vv_error *e);
// The same from image features already computed (vv_hf_image_features), so
// several sentences can be scored against one image.
int vv_hf_value_feats(const vv_hf_llava *m, vv_pool *pool, const float *feats, int n_img, const char *sentence,
                      int pad_mode, float *value, vv_ivec *ids, vv_ivec *mask, float *hidden, vv_error *e);

#endif
