// bpe.h - trains a SentencePiece-style BPE vocabulary (the layout LLaMA's
// tokenizer uses) from a text corpus, for visvm's own models.
//
// Layout: <unk>, <s>, </s>, extra special tokens, 256 byte tokens <0x00>..<0xFF>,
// merged pieces in merge order (score = -rank, so llama.cpp's SPM algorithm,
// which merges the highest-scoring pair first, replays the BPE merges), then
// the single characters of the corpus (lower scores). Spaces become U+2581 and
// every word carries the SentencePiece space prefix, as the tokenizer adds it.
#ifndef VV_BPE_H
#define VV_BPE_H

#include "vocab.h"

typedef struct vv_bpe_vocab {
    int n;
    char **texts;
    float *scores;
    int32_t *types; // enum vv_token_type
} vv_bpe_vocab;

// specials: extra CONTROL/USER_DEFINED tokens after </s> (e.g. "<image>"), may be NULL.
// max_merges bounds the number of merged pieces; merging also stops when no
// pair occurs at least min_count times.
int vv_bpe_train(const char *const *texts, size_t n_texts, const char *const *specials, int n_specials,
                 int max_merges, int min_count, vv_bpe_vocab *out, vv_error *e);
void vv_bpe_vocab_free(vv_bpe_vocab *v);
// Builds a tokenizer from the trained vocabulary (BOS added, space prefix on).
int vv_bpe_to_vocab(const vv_bpe_vocab *b, vv_vocab **out, vv_error *e);

#endif
