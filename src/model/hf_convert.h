// hf_convert.h - Hugging Face LLaVA-NeXT / VisVM value checkpoint -> GGUF.
//
// Writes into out_dir:
//   text.gguf   - architecture "llama": decoder + SentencePiece vocabulary padded
//                 to the embedding rows with UNUSED "[PAD<id>]" tokens
//                 (<image>/<pad> as CONTROL tokens), llama.rope.neox = true
//                 (HF rotate-half RoPE kept as is, rows not permuted);
//                 value models also get value_head.weight [max_length * n_embd],
//                 value_head.bias [1], visvm.value.head = "flattened",
//                 visvm.value.max_length;
//   mmproj.gguf - architecture "clip" (llama.cpp key and tensor names): only
//                 the encoder layers up to vision_feature_layer, no post-LN,
//                 projector "mlp", image_newline, anyres pinpoints, and the
//                 HF processor settings under visvm.hf.*.
// Streaming: each tensor is converted and written row by row from the
// safetensors mapping, so peak memory is a few rows, not the model. 2-D weight
// matrices take `type` (f32, f16, q8_0, q4_0, q4_k; rows whose length is not
// a multiple of the block fall back to f16); vectors, embeddings of the vision
// tower and the value head stay f32. Outputs are written atomically.
#ifndef VV_HF_CONVERT_H
#define VV_HF_CONVERT_H

#include "hf.h"

int vv_hf_convert(const char *hf_dir, const char *out_dir, int type, vv_error *e);

#endif
