// value.h - the vision value model (VisVM): a LLaVA backbone (mmproj + llama
// decoder) with a linear value head, V(image, sentence).
//
// The state is rendered in the chat template as a user turn holding the image
// and the sentence, "USER: <image>\n{sentence} ASSISTANT:" (LLaVA-1.5; the
// paper's Mistral form is "[INST] <image>\n{sentence} [/INST]"), optionally
// with the caption so far before the sentence. Because the image comes first,
// its prefix (BOS, "USER:", image embeddings) is computed once per image and
// shared by every sentence scored for it (forked KV sequences), and all
// sentences of a search step are scored in one batch.
//
// GGUF: a llama-architecture file (the decoder) with two extra tensors and keys
//   value_head.weight [n_embd] F32, value_head.bias [1] F32,
//   visvm.value.head = "last_token" (linear on the final-norm hidden state of
//     the last token; "flattened" = the paper's head over max_length padded
//     positions, loaded from Hugging Face checkpoints),
//   visvm.value.gamma (f32), visvm.value.terminal ("done_mask" | "bootstrap"),
//   visvm.value.reward_offset (f32, the centring constant subtracted from rewards),
//   visvm.value.with_prefix (bool: the state includes the caption so far),
// plus an mmproj GGUF for the vision side.
//
// Flattened heads (VisVM's released ValueModel): vv_value_load also takes a
// Hugging Face VisVM directory (text_path with config.json; mmproj_path is
// ignored) or the text.gguf + mmproj.gguf that `visvm convert` makes of one
// (visvm.value.head = "flattened", visvm.value.max_length). Those are scored
// exactly as transformers does (hf.h): HF image processing, the state
// "[INST] <image>\n{sentence} [/INST]" left-padded to max_length, one masked
// full forward per sentence with pad rows per pad_mode (enum vv_hf_pad_mode,
// SDPA by default), the head over all max_length hidden states. The image
// features are computed once per vv_value_set_image; the prefix argument of
// vv_value_score is not used (VisVM scores the sentence alone).
#ifndef VV_VALUE_H
#define VV_VALUE_H

#include "clip.h"
#include "llama.h"

struct vv_hf_llava;

struct vv_value_head;

typedef struct vv_value {
    vv_llama *lm;       // the decoder (owned by hf when hf != NULL); NULL for a CLIP backbone
    vv_clip *vision;    // NULL for flattened heads; the full CLIP (both towers) for a CLIP backbone
    struct vv_value_head *chead; // CLIP backbone: the head over vv_value_clip_features, else NULL
    struct vv_hf_llava *hf; // flattened head: the HF-exact model (hf.h), else NULL
    int pad_mode;       // flattened head: enum vv_hf_pad_mode (default VV_HF_PAD_SDPA)
    float *head;        // [n_embd] (last_token head)
    float bias;
    float gamma;
    float reward_offset;
    bool with_prefix;
    char terminal[16];
} vv_value;

int vv_value_load(const char *text_path, const char *mmproj_path, vv_value **out, vv_error *e);
void vv_value_free(vv_value *v);

// Per-request scoring state.
typedef struct vv_value_state vv_value_state;
int vv_value_state_create(const vv_value *v, vv_pool *pool, int max_batch, vv_value_state **out, vv_error *e);
void vv_value_state_free(vv_value_state *s);
// Embeds the image and prefills the shared prefix.
int vv_value_set_image(vv_value_state *s, const vv_image *img, vv_error *e);
// Tokens of the "\n" decoded after the image prefix for every candidate to fork
// after (0 when not: short prefixes unless VISVM_VALUE_NL=1; for tests).
int vv_value_state_nl_tokens(const vv_value_state *s);
// Values of n sentences for the current image (one batch). prefix (optional,
// used when the model was trained with it) is the caption so far.
int vv_value_score(vv_value_state *s, const char *const *sentences, int n, const char *prefix, float *out,
                   vv_error *e);
// Same, from token ids of the value model's vocabulary instead of text (state
// "\n" + ids + " ASSISTANT:" after the image; last_token heads without a
// caption prefix). For benchmarks with random-weight vocabularies, whose
// sampled text re-tokenizes into many more tokens than were sampled.
int vv_value_score_ids(vv_value_state *s, const int32_t *const *ids, const int *n_ids, int n, float *out, vv_error *e);

// ---------------------------------------------------------------------------
// A value head on the policy itself ("visvm-shared" search; ViMaR-style): the
// value of a candidate sentence is w . h + b, h the policy's own final-norm
// hidden state at the sentence's last token in the policy's context (image,
// prompt, caption so far, the sentence). The backbone is the policy, frozen,
// so a search shares its weights, image encoding and KV cache with the
// decoding: scoring costs one batched token per step, not a second network.
// This differs from the paper's VisVM (a separately fine-tuned VLM that sees
// the sentence alone); it is reported beside it, not instead of it.
//
// GGUF (no decoder tensors): general.architecture = "visvm-value-head",
//   visvm.value.backbone = "policy", visvm.value.head = "last_token",
//   visvm.value.n_embd (u32, must equal the policy's), visvm.value.gamma,
//   visvm.value.reward_offset, visvm.value.terminal, visvm.value.policy
//   (general.name of the policy it was fitted on; informational),
//   value_head.weight [n_embd] F32, value_head.bias [1] F32.
typedef struct vv_value_head {
    float *w;     // [n_embd]
    float bias;
    int n_embd;
    char backbone[16]; // "policy" (visvm-shared) or "clip" (a value model on a full CLIP, below)
    float gamma, reward_offset;
    char terminal[16];
    char policy[128];
    // CLIP backbone with bilinear terms (rank > 0): u_img, u_txt [rank, proj_dim]
    // project the image and sentence features onto rank directions each, and phi
    // gains their outer product (below); NULL / 0 otherwise
    int rank, proj_dim;
    float *u_img, *u_txt;
} vv_value_head;

// Loads either backbone; the caller checks h->backbone.
int vv_value_head_load(const char *path, vv_value_head **out, vv_error *e);
// Writes atomically (temp file + rename).
int vv_value_head_save(const vv_value_head *h, const char *path, vv_error *e);
void vv_value_head_free(vv_value_head *h);
// w . hidden + b (double accumulation), hidden [n_embd].
double vv_value_head_apply(const vv_value_head *h, const float *hidden);

// ---------------------------------------------------------------------------
// A value model on a full CLIP (both towers): V(image, sentence) = w . phi + b
// with phi = [i * t, t, i] (3 x proj_dim; i, t the L2-normalised projected image
// and sentence features, * elementwise). The CLIP reward is the special case
// w = [1, 0, 0], b = 0 (its cosine), so the head can keep the reward's
// grounding and add what TD sees: per-feature weighting, and sentence kinds
// (t) that lead to later hallucination. Fitted by LSTD on frozen towers
// (`visvm train head --clip`). This is not the paper's VisVM (a VLM backbone);
// it is reported beside it: on the world, the VLM backbone did not learn to
// verify a sentence (README "Results").
//
// Bilinear terms (`train head --clip --bilinear R`): phi gains vec(a b^T),
// a = U_img i and b = U_txt t [R] (U the top-R principal directions of the
// training images' and sentences' features), so w can hold any rank-R
// bilinear form a^T W b between what the image shows and what the sentence
// says, beyond the diagonal i * t: e.g. that a setting sentence disagrees
// with the image's objects though it matches its colours.
//
// Files: the head GGUF (general.architecture = "visvm-value-head",
// visvm.value.backbone = "clip", visvm.value.n_embd = 3 x proj_dim + R^2, the
// other keys as above; with R > 0 also visvm.value.rank = R (u32) and F32
// tensors value_head.u_img, value_head.u_txt [proj_dim, R] (ne0 = proj_dim))
// loads as a value model with vv_value_load(head, clip): the second path is
// the CLIP GGUF whose features it was fitted on.
int vv_value_clip_n_features(int proj_dim, int rank); // 3 proj_dim + rank^2
// phi [vv_value_clip_n_features] of normalised features; h NULL or h->rank 0: [i * t, t, i].
void vv_value_clip_features(const vv_value_head *h, const float *img_n, const float *txt_n, int proj_dim, float *phi);
// Scales x [n] to unit length (left as is when zero).
void vv_normalise(float *x, int n);

#endif
