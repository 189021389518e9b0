// spm_model.h - SentencePiece model files (tokenizer.model, a protobuf
// ModelProto) read in C, turned into the engine's vocabulary.
//
// Only what a Llama/Mistral tokenizer needs is read: the pieces (text, score,
// type), TrainerSpec.model_type / byte_fallback / unk,bos,eos,pad ids, and
// NormalizerSpec.name / add_dummy_prefix / remove_extra_whitespaces. Every
// read is bounds-checked; malformed files give VISVM_ERR_FORMAT naming the
// field. The encoder is the engine's SPM merge (vocab.h), which is
// sentencepiece's BPE algorithm; unigram models and normalizers other than
// "identity" are refused (VISVM_ERR_UNSUPPORTED) rather than tokenized wrongly.
#ifndef VV_SPM_MODEL_H
#define VV_SPM_MODEL_H

#include "vocab.h"

typedef struct vv_spm_model {
    int n;
    char **pieces;    // [n] UTF-8, U+2581 for spaces
    float *scores;    // [n]
    int32_t *types;   // [n] enum vv_token_type (sentencepiece uses the same numbers)
    int model_type;   // 1 unigram, 2 BPE, 3 word, 4 char
    bool byte_fallback;
    int unk_id, bos_id, eos_id, pad_id; // -1 when disabled
    char normalizer[32];
    bool add_dummy_prefix, remove_extra_whitespaces;
} vv_spm_model;

int vv_spm_model_parse(const void *buf, size_t size, vv_spm_model *out, vv_error *e);
int vv_spm_model_load(const char *path, vv_spm_model *out, vv_error *e);
void vv_spm_model_free(vv_spm_model *m);

// Tokens added on top of the model (Hugging Face added_tokens), each with its id.
typedef struct vv_added_token {
    const char *text;
    int id;
    bool special; // matched as a whole in the text (CONTROL) when true, else USER_DEFINED
} vv_added_token;

// Vocabulary of a Hugging Face slow LlamaTokenizer in legacy mode: the model's
// pieces, then the added tokens (ids must follow the model's, gaps are filled
// with unused placeholders). Encoding with vv_tokenize(add_special = true,
// parse_special = true) splits on the special tokens, gives every text chunk
// its own dummy-prefix U+2581 and prepends BOS when add_bos.
int vv_spm_vocab_create(const vv_spm_model *m, const vv_added_token *added, int n_added, bool add_bos, bool add_eos,
                        vv_vocab **out, vv_error *e);

#endif
