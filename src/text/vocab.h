// vocab.h - SentencePiece-style "llama" tokenizer read from GGUF metadata.
//
// Matches llama.cpp's llm_tokenizer_spm: optional space prefix, spaces -> U+2581,
// greedy merging of the adjacent pair whose concatenation is a vocabulary
// token with the highest score (leftmost on ties), byte fallback <0xXX> for
// anything not in the vocabulary; special (CONTROL / USER_DEFINED) tokens are
// matched literally in the text when parse_special is set.
#ifndef VV_VOCAB_H
#define VV_VOCAB_H

#include "../format/gguf.h"

enum vv_token_type {
    VV_TOKEN_UNDEFINED = 0,
    VV_TOKEN_NORMAL = 1,
    VV_TOKEN_UNKNOWN = 2,
    VV_TOKEN_CONTROL = 3,
    VV_TOKEN_USER_DEFINED = 4,
    VV_TOKEN_UNUSED = 5,
    VV_TOKEN_BYTE = 6
};

typedef struct vv_vocab vv_vocab;

// Reads tokenizer.ggml.{model,tokens,scores,token_type,bos_token_id,eos_token_id,
// unknown_token_id,padding_token_id,add_bos_token,add_eos_token,add_space_prefix}.
// Only model "llama" (SPM) is supported; others give VISVM_ERR_UNSUPPORTED.
int vv_vocab_load(const vv_gguf *g, vv_vocab **out, vv_error *e);
// Builds a vocabulary from arrays (used by the trainer and tests).
// types may be NULL (all NORMAL); texts are UTF-8 with U+2581 for spaces.
// bos/eos/unk are ids or -1 (none). Duplicate texts are an error; an empty
// text is stored as "[EMPTY_<id>]" like llama.cpp does.
int vv_vocab_create(int n, const char *const *texts, const float *scores, const int32_t *types, int bos, int eos,
                    int unk, bool add_bos, bool add_space_prefix, vv_vocab **out, vv_error *e);
void vv_vocab_free(vv_vocab *v);

int vv_vocab_n(const vv_vocab *v);
int vv_vocab_bos(const vv_vocab *v);   // -1 if none
int vv_vocab_eos(const vv_vocab *v);
int vv_vocab_unk(const vv_vocab *v);
int vv_vocab_pad(const vv_vocab *v);
bool vv_vocab_add_bos(const vv_vocab *v);
bool vv_vocab_add_eos(const vv_vocab *v);
const char *vv_vocab_text(const vv_vocab *v, int id); // NULL if out of range
float vv_vocab_score(const vv_vocab *v, int id);
int vv_vocab_type(const vv_vocab *v, int id);
int vv_vocab_find(const vv_vocab *v, const char *text, size_t len); // id or -1
bool vv_vocab_add_space_prefix(const vv_vocab *v);
// Token used for a raw byte by the byte fallback: <0xXX>, else the one-byte
// text, else the unknown token; -1 if none of them exists.
int vv_vocab_byte_token(const vv_vocab *v, uint8_t byte);
// Adjusts what vv_vocab_create cannot express (EOS appending, padding id).
// Fails with VISVM_ERR_INVALID/RANGE if add_eos is set without an EOS token
// or pad is out of range (-1: none).
int vv_vocab_set_add_eos(vv_vocab *v, bool add_eos, vv_error *e);
int vv_vocab_set_pad(vv_vocab *v, int pad, vv_error *e);

// Appends the ids of text[0..len) to out. add_special: prepend BOS (if the
// vocabulary says add_bos) / append EOS (if add_eos). parse_special: match
// CONTROL/UNKNOWN token texts in the input as single tokens (USER_DEFINED
// texts are always matched, as in llama.cpp). With add_space_prefix, "▁" is
// put before the text at the start and after every matched special token.
// On error out is left as it was (VISVM_ERR_NOT_FOUND: a byte has no token).
int vv_tokenize(const vv_vocab *v, const char *text, size_t len, bool add_special, bool parse_special, vv_ivec *out,
                vv_error *e);

// Text of one token as llama.cpp's token_to_piece: NORMAL: U+2581 -> ' ';
// BYTE: the raw byte; CONTROL / UNKNOWN: its text only if special, else
// empty; USER_DEFINED: its text; UNUSED / UNDEFINED: empty. Appends to out.
// VISVM_ERR_RANGE for an id outside the vocabulary.
int vv_token_to_piece(const vv_vocab *v, int id, bool special, vv_buf *out);
// Decodes a sequence (appends to out). Like llama.cpp's detokenize with
// remove_special = false: the leading space produced by the space prefix of
// the first token is removed when the vocabulary adds a space prefix and
// (remove_leading_space) is set. As in llama.cpp only token 0 is stripped,
// so a sequence that starts with BOS keeps the space of the text after it.
int vv_detokenize(const vv_vocab *v, const int32_t *ids, size_t n, bool special, bool remove_leading_space,
                  vv_buf *out);

#endif
