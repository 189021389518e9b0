// llava.h - LLaVA prompting: chat templates, splicing image embeddings at
// <image>, prefill and sampling of an answer on one sequence of a decoder state.
#ifndef VV_LLAVA_H
#define VV_LLAVA_H

#include "../model/llama.h"
#include "sampler.h"

#define VV_IMAGE_MARKER "<image>"

// enum visvm_chat_template values. AUTO picks MISTRAL when the model's
// tokenizer.chat_template contains "[INST]", else LLAVA15.
int vv_chat_resolve(int tmpl, const char *model_chat_template);
// Renders the user turn: LLAVA15 "USER: <image>\n{prompt} ASSISTANT:",
// MISTRAL "[INST] <image>\n{prompt} [/INST]", RAW the prompt itself
// ("<image>\n" prepended when with_image and the prompt has no marker).
int vv_chat_format(int tmpl, const char *prompt, bool with_image, vv_buf *out);

// Copy of text with every "<image>" marker replaced by "image", so generated
// text placed into a template cannot add image positions (malloc'd; NULL on OOM).
char *vv_defuse_image_marker(const char *text);

// Tokenizes a prompt containing at most one <image> marker as llama-llava-cli:
// text before the marker with add_special (BOS) + parse_special, text after it
// without add_special. n_image (from the caller) is not inserted here.
int vv_llava_tokenize(const vv_vocab *v, const char *prompt, vv_ivec *pre, vv_ivec *post, bool *has_image,
                      vv_error *e);

// Appends pre tokens, image embeddings [n_img, n_embd] (may be 0) and post
// tokens to sequence seq. If logits != NULL it receives the logits of the last
// position [n_vocab]. all_logits (optional, [n_pre + n_img + n_post, n_vocab])
// receives every position's logits.
int vv_llava_prefill(vv_llama_state *st, int seq, const int32_t *pre, int n_pre, const float *img, int n_img,
                     const int32_t *post, int n_post, float *logits, float *all_logits, vv_error *e);

typedef struct vv_gen_params {
    vv_sampler_params sp;
    int n_predict;      // max new tokens
    const char *stop;   // stop once the generated text contains this string (NULL: EOS only)
    bool stop_at_eos;   // stop at the EOS token (true normally; the golden runs keep going)
} vv_gen_params;

// Samples up to n_predict tokens after the current end of seq, starting from
// `logits` (the prediction for the next token, [n_vocab]; updated in place).
// Appends generated ids to toks (EOS not included) and text to text; ids past
// the vocabulary (unused padded rows of the output matrix) are kept in toks
// but add no text.
int vv_generate(vv_llama_state *st, int seq, const vv_vocab *v, float *logits, const vv_gen_params *gp, vv_rng *rng,
                vv_sampler *smp, vv_ivec *toks, vv_buf *text, vv_error *e);

#endif
