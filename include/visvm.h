// visvm.h - public C API of libvisvm.
//
// visvm runs LLaVA-family vision-language models (CLIP ViT + projector +
// Llama/Mistral decoder) on the CPU from GGUF files, and searches for better
// captions with a value model.
//
// Basic usage (see examples/simple.c):
//
//   visvm_model  *model  = NULL;   // text decoder + vocabulary, read-only
//   visvm_mmproj *mmproj = NULL;   // vision tower + projector, read-only
//   visvm_model_load("text.gguf", NULL, &model);
//   visvm_mmproj_load("mmproj.gguf", NULL, &mmproj);
//   visvm_context *ctx = NULL;     // per-request state: KV cache, scratch
//   visvm_context_create(model, mmproj, NULL, &ctx);
//   char *text = NULL;
//   visvm_sample_params sp = visvm_sample_default_params();
//   if (visvm_caption(ctx, "cat.png", "Describe the image.", &sp, &text) != VISVM_OK)
//       fprintf(stderr, "%s\n", visvm_context_error(ctx));
//   visvm_free_string(text);
//   visvm_context_free(ctx); visvm_mmproj_free(mmproj); visvm_model_free(model);
//
// Conventions: every call returns an int status (VISVM_OK = 0, negative on
// error). Calls on a context store a message retrievable with
// visvm_context_error(); calls without a handle (loaders) store it in a
// thread-local slot read by visvm_last_error(). Handles are opaque; every
// *_free accepts NULL. Model handles are read-only after loading and may be
// shared by any number of contexts (one per thread). The library never exits
// or aborts on bad input.
#ifndef VISVM_H
#define VISVM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(VISVM_BUILD_SHARED)
#define VISVM_API __attribute__((visibility("default")))
#else
#define VISVM_API
#endif

#define VISVM_VERSION_MAJOR 0
#define VISVM_VERSION_MINOR 1
#define VISVM_VERSION_PATCH 0
#define VISVM_VERSION_STRING "0.1.0"

// ---------------------------------------------------------------------------
// Status codes (stable values).
enum visvm_status {
    VISVM_OK = 0,
    VISVM_ERR_IO = -1,          // cannot open / read / write a file
    VISVM_ERR_FORMAT = -2,      // malformed file (GGUF, image, JSON, ...)
    VISVM_ERR_NOMEM = -3,       // allocation failed or a size overflowed
    VISVM_ERR_INVALID = -4,     // invalid argument or parameter
    VISVM_ERR_UNSUPPORTED = -5, // valid but not supported (tensor type, architecture)
    VISVM_ERR_RANGE = -6,       // value out of range (context full, token id, image too large)
    VISVM_ERR_NOT_FOUND = -7,   // missing key / tensor / file
    VISVM_ERR_INTERNAL = -8     // a bug: please report
};

VISVM_API const char *visvm_version(void);
VISVM_API const char *visvm_status_str(int status);
// Message of the last failed call made by this thread without a handle.
VISVM_API const char *visvm_last_error(void);
VISVM_API void visvm_free_string(char *s);
// 0 error, 1 warn (default), 2 info, 3 debug. Environment VISVM_LOG also sets it.
VISVM_API void visvm_set_log_level(int level);

// ---------------------------------------------------------------------------
// Models.
typedef struct visvm_model visvm_model;   // text decoder + tokenizer (GGUF "llama")
typedef struct visvm_mmproj visvm_mmproj; // CLIP vision tower + LLaVA projector (GGUF "clip")
typedef struct visvm_context visvm_context;

// How the vision side follows its reference.
enum visvm_vision_mode {
    // Reference LLaVA / LLaVA-NeXT design: the feature layer the checkpoint was
    // trained with (all stored layers for converter-written files, or
    // clip.vision.feature_layer), LLaVA-1.6 unpadding plus image_newline.
    VISVM_VISION_REFERENCE = 0,
    // Bit-for-bit behaviour of llama.cpp's clip.cpp/llava.cpp (Feb 2025): only
    // block_count-1 layers, LLaVA-1.6 without unpad and without image_newline.
    VISVM_VISION_LLAMACPP = 1
};

typedef struct visvm_model_params {
    int n_threads;  // threads for loading-time work; <= 0: all cores
    bool use_mmap;  // keep weights in the file mapping (default true)
} visvm_model_params;

typedef struct visvm_mmproj_params {
    int vision_mode; // enum visvm_vision_mode (default VISVM_VISION_REFERENCE)
} visvm_mmproj_params;

VISVM_API visvm_model_params visvm_model_default_params(void);
VISVM_API visvm_mmproj_params visvm_mmproj_default_params(void);
VISVM_API int visvm_model_load(const char *path, const visvm_model_params *params, visvm_model **out);
VISVM_API void visvm_model_free(visvm_model *model);
VISVM_API int visvm_mmproj_load(const char *path, const visvm_mmproj_params *params, visvm_mmproj **out);
VISVM_API void visvm_mmproj_free(visvm_mmproj *mmproj);

// Model facts.
VISVM_API int visvm_model_n_vocab(const visvm_model *model);
VISVM_API int visvm_model_n_embd(const visvm_model *model);
VISVM_API int visvm_model_n_ctx_train(const visvm_model *model);
VISVM_API int visvm_model_token_bos(const visvm_model *model);
VISVM_API int visvm_model_token_eos(const visvm_model *model);
// Writes a description ("llama 1.1B Q4_0, 22 layers, ...") into buf.
VISVM_API int visvm_model_desc(const visvm_model *model, char *buf, size_t size);

// ---------------------------------------------------------------------------
// Tokenizer. Returns the number of tokens (>= 0) or a negative status; if the
// result exceeds n_max, nothing beyond n_max is written and the needed count
// is returned, so callers can retry with a larger buffer.
VISVM_API int visvm_tokenize(const visvm_model *model, const char *text, size_t len, int32_t *tokens, int n_max,
                             bool add_special, bool parse_special);
// Writes the text of one token into buf (not NUL-terminated if it fills the
// buffer); returns the byte length or a negative status.
VISVM_API int visvm_token_to_piece(const visvm_model *model, int32_t token, char *buf, int size, bool special);
// Decodes a token sequence into a new string (free with visvm_free_string).
VISVM_API int visvm_detokenize(const visvm_model *model, const int32_t *tokens, int n, bool special, char **out);

// ---------------------------------------------------------------------------
// Contexts: per-request state (KV cache, scratch, RNG, error message).
typedef struct visvm_context_params {
    int n_ctx;     // context length in tokens, up to 2^22 (default 4096; <= 0: 4096). Not capped by the
                   // model: positions past visvm_model_n_ctx_train() run, as in llama.cpp, untrained
    int n_threads; // compute threads; <= 0: all cores
    int n_batch;   // max tokens per forward call during prefill, up to 65536 (default 512; <= 0: 512)
} visvm_context_params;

VISVM_API visvm_context_params visvm_context_default_params(void);
// mmproj may be NULL for a text-only context.
VISVM_API int visvm_context_create(const visvm_model *model, const visvm_mmproj *mmproj,
                                   const visvm_context_params *params, visvm_context **out);
VISVM_API void visvm_context_free(visvm_context *ctx);
VISVM_API const char *visvm_context_error(const visvm_context *ctx);

// Low-level decoding. Appends tokens (or input embeddings [n, n_embd]) to the
// context's sequence and computes logits; with all_logits the logits of every
// position are kept (visvm_get_logits(ctx, i)), else only the last.
VISVM_API int visvm_decode_tokens(visvm_context *ctx, const int32_t *tokens, int n, bool all_logits);
VISVM_API int visvm_decode_embd(visvm_context *ctx, const float *embd, int n, bool all_logits);
// Logits row i of the last decode call (i = -1: last position); NULL if absent.
VISVM_API const float *visvm_get_logits(const visvm_context *ctx, int i);
VISVM_API int visvm_n_past(const visvm_context *ctx);
// Drops every position >= n_keep from the sequence (n_keep = 0 clears it;
// n_keep >= visvm_n_past() keeps everything). Clears the kept logits.
VISVM_API int visvm_truncate(visvm_context *ctx, int n_keep);

// Images: embeds an image file (PNG, JPEG, BMP, TGA, GIF ...) into n_tokens x
// n_embd floats (free with visvm_free_floats).
VISVM_API int visvm_image_embed_file(visvm_context *ctx, const char *path, float **embd, int *n_tokens);
VISVM_API void visvm_free_floats(float *p);

// ---------------------------------------------------------------------------
// Sampling and captioning.
enum visvm_chat_template {
    VISVM_TEMPLATE_AUTO = 0,  // from tokenizer.chat_template ([INST] -> mistral), else llava15
    VISVM_TEMPLATE_LLAVA15 = 1, // "USER: <image>\n{prompt} ASSISTANT:"
    VISVM_TEMPLATE_MISTRAL = 2, // "[INST] <image>\n{prompt} [/INST]"
    VISVM_TEMPLATE_RAW = 3      // the prompt as given (must contain <image> to place the image)
};

typedef struct visvm_sample_params {
    float temperature;   // <= 0: greedy (default 0)
    int top_k;           // <= 0: off (default 40; only used when temperature > 0)
    float top_p;         // 1: off (default 0.9)
    uint64_t seed;       // RNG seed (default 42)
    int n_predict;       // max new tokens (default 256)
    int chat_template;   // enum visvm_chat_template
    const char *stop;    // stop when the generated text ends with this string (NULL: only EOS)
} visvm_sample_params;

VISVM_API visvm_sample_params visvm_sample_default_params(void);

// Full pipeline: clear the context, embed the image, prefill the chat prompt
// with the image embeddings spliced at <image>, sample the answer.
VISVM_API int visvm_caption(visvm_context *ctx, const char *image_path, const char *prompt,
                            const visvm_sample_params *params, char **out_text);

#ifdef __cplusplus
}
#endif

#endif // VISVM_H
