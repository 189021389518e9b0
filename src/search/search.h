// search.h - caption decoding and search strategies behind one interface:
//   greedy; sampling; best-of-N over whole captions (selector: mean CLIP
//   reward, or mean VisVM value); sentence-level step search (VisVM paper):
//   per step, every beam proposes N temperatures x K samples (+ greedy)
//   candidate sentences, a scorer (CLIP-PRM, VisVM, random, oracle) rates
//   them, the best B continue; a caption ends when a beam's greedy candidate
//   is the end of text (the released code's rule) or after max_sentences.
//
// All candidates of a step are decoded together as one multi-sequence batch
// over forks of the shared image + prompt prefix (paged KV: no copies), so a
// step reads the weights once per token for all candidates. Every candidate,
// its score and the chosen path are recorded (the search tree). Seeded.
#ifndef VV_SEARCH_H
#define VV_SEARCH_H

#include "../gen/sampler.h"
#include "../model/clip.h"
#include "../model/llama.h"
#include "../model/value.h"
#include "../world/world.h"

enum vv_strategy {
    VV_STRAT_GREEDY = 0,
    VV_STRAT_SAMPLE,     // one caption sampled at sample_temp / top_p
    VV_STRAT_BON_CLIP,   // best of bon_n sampled captions by mean CLIP reward of their sentences
    VV_STRAT_BON_VISVM,  // ... by mean VisVM value of their sentences
    VV_STRAT_CLIP_PRM,   // step search scored by the CLIP reward of the candidate sentence
    VV_STRAT_VISVM,      // step search scored by the value model
    VV_STRAT_RANDOM,     // step search, random pick (the handicap of sampling alone)
    VV_STRAT_ORACLE,     // step search scored by the ground truth (an upper bound; needs the scene)
    VV_STRAT_CLIP_MC,    // step search scored by a Monte-Carlo look-ahead: (r - mc_offset) of the candidate plus
                         // the mc_gamma-discounted (r - mc_offset) of the sentences of one greedy rollout to the
                         // end of the caption: a one-sample estimate of what a TD value model on these rewards
                         // learns (a diagnostic of the look-ahead itself; costs a rollout per candidate)
    VV_STRAT_ORACLE_MC,  // the same look-ahead scored by the ground truth (minus hallucinated objects; no offset):
                         // whether looking ahead helps even with a perfect reward
    VV_STRAT_VISVM_SHARED, // step search scored by a value head on the policy's own hidden state (value.h,
                           // vv_value_head): each candidate's last token is fed in one batch (as the chosen
                           // one's is anyway), the head reads that row; no second network, encode or prefix
    VV_STRAT_COUNT
};
const char *vv_strategy_name(int s);     // "greedy", "sample", "bon-clip", "bon-visvm", "clip-prm", "visvm", "random",
                                         // "oracle", "clip-mc", "oracle-mc", "visvm-shared"
int vv_strategy_from_name(const char *n); // -1 if unknown

#define VV_SEARCH_MAX_TEMPS 32

typedef struct vv_search_params {
    int strategy;
    // step search
    int n_temps;                 // sampling temperatures per step (paper: 5)
    float temps[VV_SEARCH_MAX_TEMPS];
    bool with_greedy;            // plus one greedy candidate (paper: yes)
    int k;                       // samples per temperature (paper: 1)
    int beam;                    // beams kept per step (paper: 1)
    int max_sentences;           // caption length limit in sentences
    int max_sentence_tokens;     // a candidate stops after this many tokens
    float mc_gamma, mc_offset;   // clip-mc: discount (0.9) and the constant subtracted from rewards (0; the
                                 // value model's visvm.value.reward_offset makes it that model's target)
    // sampling / best-of-N
    float sample_temp, top_p;
    int bon_n;
    int max_tokens;              // whole caption (greedy, sample, best-of-N)
    uint64_t seed;
    const char *prompt;          // user prompt; the chat template comes from the model
    bool fixed_length;           // benchmark: ignore EOS and sentence ends, every candidate is
                                 // max_sentence_tokens long, every caption max_sentences sentences
} vv_search_params;

// Paper defaults: temperatures 0.1 .. 0.9 + greedy (6 candidates), K = 1, B = 1.
vv_search_params vv_search_default_params(void);
// Sets n_temps / temps for a candidate budget per step: budget - 1 temperatures
// evenly spaced over [0.1, 0.9] plus greedy (budget >= 1).
void vv_search_set_budget(vv_search_params *p, int candidates_per_step);

typedef struct vv_candidate {
    char *text;       // the sentence (no leading space)
    float temp;       // < 0: greedy
    float score;
    bool end;         // end of text (EOS before any sentence text)
    bool chosen;
    int beam;         // beam it extends
    int n_tokens;
    int32_t *tokens;  // [n_tokens] the policy's token ids (EOS not included)
    float logprob;    // sum over tokens of log softmax(raw policy logits) (temperature 1):
                      // lets a test compare the batched path with a plain one
} vv_candidate;

typedef struct vv_search_step {
    vv_candidate *cand;
    int n;
} vv_search_step;

typedef struct vv_search_result {
    char *caption;
    vv_search_step *steps; // step search only
    int n_steps;
    // cost
    long gen_tokens;      // tokens decoded by the policy (candidates included)
    long policy_forwards; // batched decode calls of the policy
    long scored;          // sentences scored
    double seconds;
    double sec_prefill, sec_decode, sec_score; // parts of seconds: image + prompt prefill, candidate decoding, scoring
    double sec_score_begin; // of sec_score: the scorer's per-image work (a value model's encode + image prefix)
} vv_search_result;
void vv_search_result_free(vv_search_result *r);

// Scorers the search can use (each optional; a strategy needing one it lacks fails clearly).
typedef struct vv_search_models {
    const vv_llama *policy;
    const vv_clip *policy_vision;
    const vv_clip *reward;    // full CLIP (CLIP-PRM, bon-clip)
    const vv_value *value;    // VisVM (visvm, bon-visvm)
    const vv_value_head *head; // value head on the policy (visvm-shared); n_embd must match the policy
} vv_search_models;

typedef struct vv_searcher vv_searcher;
int vv_searcher_create(const vv_search_models *m, vv_pool *pool, int max_candidates, vv_searcher **out, vv_error *e);
void vv_searcher_free(vv_searcher *s);
// Captions one image. scene (optional) is the ground truth, needed by the oracle.
int vv_search_caption(vv_searcher *s, const vv_image *img, const vv_world_scene *scene, const vv_search_params *p,
                      vv_search_result *out, vv_error *e);

// n whole responses to one prompt, decoded together: temps[i] <= 0 is greedy,
// else sampling with top_p (the data generation of the paper: 0.2/0.4/0.6/0.8
// with top-p 0.9, and greedy). out[i] malloc'd. stats (optional) gets the cost.
int vv_search_responses(vv_searcher *s, const vv_image *img, const char *prompt, const float *temps, int n,
                        float top_p, int max_tokens, uint64_t seed, char **out, vv_search_result *stats, vv_error *e);

// CLIP reward of sentences for an image (raw cosine), computed with the
// searcher's reward model: image features once, then each sentence.
int vv_searcher_rewards(vv_searcher *s, const vv_image *img, const char *const *sentences, int n, float *out,
                        vv_error *e);

// The states visvm-shared scores, for fitting its head: the policy's final-norm
// hidden state at the last token of each sentence of a response, in the
// policy's context (image + prompt + the sentences before it), out [n, n_embd].
// The response is tokenized as one continuation (sentences joined by spaces).
int vv_searcher_sentence_states(vv_searcher *s, const vv_image *img, const char *prompt, const char *const *sentences,
                                int n, float *out, vv_error *e);
// Same for several responses to one image: the image + prompt prefix is
// encoded and prefilled once and forked for each response. out[r] [n[r], n_embd].
int vv_searcher_responses_states(vv_searcher *s, const vv_image *img, const char *prompt,
                                 const char *const *const *sentences, const int *n, int n_resp, float *const *out,
                                 vv_error *e);

#endif
