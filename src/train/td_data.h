// td_data.h - the VisVM data pipeline (visvm-paper.md section 2) on JSON lines:
//   generate: for each (image, prompt) five responses (temperatures 0.2, 0.4,
//     0.6, 0.8 with top-p 0.9, and greedy), keys text, image, image_path,
//     temp_02, temp_04, temp_06, temp_08, greedy;
//   reward: adds "rewards": {decode_type: {sentence: CLIP cosine}} (insertion
//     order = sentence order, duplicates collapse to their first occurrence,
//     and the empty string "" ends every response as the paper's terminal);
//   TD pairs: (current sentence, next sentence, reward of current) for
//     consecutive sentences of a response, the last one paired with "".
// Responses written by the paper's Python code (the whole decoded sequence
// including the prompt) load too: text up to the last "[/INST]" or
// "ASSISTANT:" is dropped.
#ifndef VT_TD_DATA_H
#define VT_TD_DATA_H

#include "../base/base.h"

#define VT_N_DECODE 5
extern const char *const vt_decode_keys[VT_N_DECODE]; // temp_02, temp_04, temp_06, temp_08, greedy
extern const float vt_decode_temps[VT_N_DECODE];      // 0.2, 0.4, 0.6, 0.8, 0 (greedy)

typedef struct vt_td_pair {
    char *cur, *next;  // next = "" for the terminal state
    float reward;      // CLIP reward of cur
    int image;         // index into the image list
    bool terminal;     // next is the end of the response
} vt_td_pair;

typedef struct vt_td_set {
    char **images;     // image paths (as in the JSONL "image_path", else "image")
    char **prompts;    // per image: its line's "text" (the prompt), or NULL
    int n_images;
    vt_td_pair *pairs;
    int n_pairs;
    // responses as sentence lists with rewards (for Monte-Carlo returns)
    int n_resp;
    int *resp_first, *resp_len; // pairs of response r: [resp_first[r], resp_first[r] + resp_len[r])
    // with vt_td_prefix_states: each pair's states with the caption so far, NULL otherwise
    char **state_cur, **state_next;
} vt_td_set;

// Reads a rewards JSONL (paper layout) into TD pairs. Bad lines name the line number.
int vt_td_load(const char *path, vt_td_set *out, vv_error *e);
void vt_td_free(vt_td_set *s);

// States that include the caption so far (value.h, visvm.value.with_prefix):
// state_cur[i] = the response's sentences before pair i's, then its sentence,
// joined by single spaces (as the search joins a caption; pieces trimmed, the
// first sentence kept as is); state_next[i] = the same
// with pair i's sentence moved into the prefix and its next sentence after it
// ("" at the end: the prefix and a trailing space, as the engine writes it).
int vt_td_prefix_states(vt_td_set *s, vv_error *e);

// TD target of one pair: (r - offset) + gamma * V(s'), with V(s') = 0 after the
// last sentence under the done-mask terminal.
static inline float vt_td_target(float reward, float offset, float gamma, float v_next, bool terminal, bool done_mask) {
    return (reward - offset) + gamma * ((terminal && done_mask) ? 0.0f : v_next);
}

// The response part of a stored text (after the last "[/INST]" or "ASSISTANT:").
const char *vt_response_text(const char *text);

#endif
