// td_data.c - reading the paper's reward JSONL into TD pairs.
#include "td_data.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

const char *const vt_decode_keys[VT_N_DECODE] = {"temp_02", "temp_04", "temp_06", "temp_08", "greedy"};
const float vt_decode_temps[VT_N_DECODE] = {0.2f, 0.4f, 0.6f, 0.8f, 0.0f};

const char *vt_response_text(const char *text) {
    const char *best = text;
    const char *marks[2] = {"[/INST]", "ASSISTANT:"};
    for (int k = 0; k < 2; k++)
        for (const char *p = strstr(text, marks[k]); p; p = strstr(p + 1, marks[k])) best = p + strlen(marks[k]);
    while (*best == ' ') best++;
    return best;
}

void vt_td_free(vt_td_set *s) {
    if (!s) return;
    for (int i = 0; i < s->n_images; i++) {
        free(s->images[i]);
        if (s->prompts) free(s->prompts[i]);
    }
    free(s->images);
    free(s->prompts);
    for (int i = 0; i < s->n_pairs; i++) {
        free(s->pairs[i].cur);
        free(s->pairs[i].next);
    }
    for (int i = 0; s->state_cur && i < s->n_pairs; i++) free(s->state_cur[i]);
    for (int i = 0; s->state_next && i < s->n_pairs; i++) free(s->state_next[i]);
    free(s->state_cur);
    free(s->state_next);
    free(s->pairs);
    free(s->resp_first);
    free(s->resp_len);
    memset(s, 0, sizeof(*s));
}

static int grow(void **p, int *cap, int need, size_t elem) {
    if (need <= *cap) return VISVM_OK;
    int nc = *cap ? *cap * 2 : 256;
    while (nc < need) nc *= 2;
    void *np = realloc(*p, (size_t)nc * elem);
    if (!np) return VISVM_ERR_NOMEM;
    *p = np;
    *cap = nc;
    return VISVM_OK;
}

#define MAX_REWARD 1e6 // CLIP rewards are O(1); generous for rescaled ones
int vt_td_load(const char *path, vt_td_set *out, vv_error *e) {
    memset(out, 0, sizeof(*out));
    char *text = NULL;
    size_t len = 0;
    int rc = vv_read_file(path, &text, &len, e);
    if (rc) return rc;
    int cap_img = 0, cap_pairs = 0, cap_resp = 0, line_no = 0;
    char *p = text;
    char *line;
    while (!rc && (line = vv_next_line(&p, &line_no))) {
        cJSON *j = cJSON_Parse(line);
        if (!j) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s:%d: invalid JSON", path, line_no);
            break;
        }
        const cJSON *ip = cJSON_GetObjectItemCaseSensitive(j, "image_path");
        if (!cJSON_IsString(ip)) ip = cJSON_GetObjectItemCaseSensitive(j, "image");
        const cJSON *rw = cJSON_GetObjectItemCaseSensitive(j, "rewards");
        if (!cJSON_IsString(ip) || !cJSON_IsObject(rw)) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s:%d: needs \"image_path\" (or \"image\") and a \"rewards\" object", path,
                        line_no);
            cJSON_Delete(j);
            break;
        }
        const int old_cap = cap_img;
        if (!(rc = grow((void **)&out->images, &cap_img, out->n_images + 1, sizeof(char *))) && cap_img != old_cap) {
            char **np = realloc(out->prompts, (size_t)cap_img * sizeof(char *));
            if (np) out->prompts = np;
            else rc = VISVM_ERR_NOMEM;
        }
        const cJSON *tx = cJSON_GetObjectItemCaseSensitive(j, "text");
        if (!rc) {
            out->prompts[out->n_images] = cJSON_IsString(tx) ? vv_strdup(tx->valuestring) : NULL;
            if (cJSON_IsString(tx) && !out->prompts[out->n_images]) rc = VISVM_ERR_NOMEM;
        }
        if (rc || !(out->images[out->n_images] = vv_strdup(ip->valuestring))) {
            if (!rc) free(out->prompts[out->n_images]);
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            cJSON_Delete(j);
            break;
        }
        const int img = out->n_images++;
        const cJSON *resp;
        cJSON_ArrayForEach(resp, rw) {
            if (!cJSON_IsObject(resp)) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s:%d: rewards.%s is not an object", path, line_no,
                            resp->string ? resp->string : "?");
                break;
            }
            // sentences in order; "" is the terminal
            const cJSON *sn;
            int first = out->n_pairs;
            const cJSON *prev = NULL;
            cJSON_ArrayForEach(sn, resp) {
                if (!cJSON_IsNumber(sn) || !sn->string) {
                    rc = vv_err(e, VISVM_ERR_FORMAT, "%s:%d: reward of a sentence is not a number", path, line_no);
                    break;
                }
                // a reward that overflows float would train the value model on inf / NaN targets
                if (!(fabs(sn->valuedouble) <= MAX_REWARD)) {
                    rc = vv_err(e, VISVM_ERR_FORMAT, "%s:%d: reward %g of \"%.40s\" is outside +-%g", path, line_no,
                                sn->valuedouble, sn->string, MAX_REWARD);
                    break;
                }
                if (prev) {
                    if ((rc = grow((void **)&out->pairs, &cap_pairs, out->n_pairs + 1, sizeof(vt_td_pair)))) break;
                    vt_td_pair *tp = &out->pairs[out->n_pairs++];
                    tp->cur = vv_strdup(prev->string);
                    tp->next = vv_strdup(sn->string);
                    tp->reward = (float)prev->valuedouble;
                    tp->image = img;
                    tp->terminal = sn->string[0] == 0;
                    if (!tp->cur || !tp->next) rc = VISVM_ERR_NOMEM;
                }
                prev = sn->string[0] ? sn : NULL; // nothing follows the terminal
            }
            if (!rc && prev) { // no "" at the end: pair the last sentence with the terminal
                if (!(rc = grow((void **)&out->pairs, &cap_pairs, out->n_pairs + 1, sizeof(vt_td_pair)))) {
                    vt_td_pair *tp = &out->pairs[out->n_pairs++];
                    tp->cur = vv_strdup(prev->string);
                    tp->next = vv_strdup("");
                    tp->reward = (float)prev->valuedouble;
                    tp->image = img;
                    tp->terminal = true;
                    if (!tp->cur || !tp->next) rc = VISVM_ERR_NOMEM;
                }
            }
            if (rc) {
                if (rc == VISVM_ERR_NOMEM) vv_err(e, rc, "out of memory");
                break;
            }
            if (out->n_pairs > first) {
                if ((rc = grow((void **)&out->resp_first, &cap_resp, out->n_resp + 1, sizeof(int)))) break;
                int *nl2 = realloc(out->resp_len, (size_t)cap_resp * sizeof(int));
                if (!nl2) {
                    rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                    break;
                }
                out->resp_len = nl2;
                out->resp_first[out->n_resp] = first;
                out->resp_len[out->n_resp++] = out->n_pairs - first;
            }
        }
        cJSON_Delete(j);
    }
    free(text);
    if (!rc && out->n_pairs == 0) rc = vv_err(e, VISVM_ERR_FORMAT, "%s: no TD pairs", path);
    if (rc) vt_td_free(out);
    return rc;
}

// "prefix sentence" (or the sentence alone without a prefix), as value.c's scoring joins them;
// after a prefix the sentence loses its leading spaces (the paper's pieces keep one).
static char *join_state(const char *prefix, size_t np, const char *sent) {
    if (!sent) sent = "";
    if (np)
        while (*sent == ' ') sent++;
    const size_t ns = strlen(sent);
    char *o = malloc(np + 1 + ns + 1);
    if (!o) return NULL;
    if (np) {
        memcpy(o, prefix, np);
        o[np] = ' ';
        memcpy(o + np + 1, sent, ns + 1);
    } else {
        memcpy(o, sent, ns + 1);
    }
    return o;
}

int vt_td_prefix_states(vt_td_set *s, vv_error *e) {
    if (s->state_cur) return VISVM_OK;
    s->state_cur = calloc((size_t)(s->n_pairs ? s->n_pairs : 1), sizeof(char *));
    s->state_next = calloc((size_t)(s->n_pairs ? s->n_pairs : 1), sizeof(char *));
    if (!s->state_cur || !s->state_next) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int r = 0; r < s->n_resp; r++) {
        vv_buf run = {0}; // the response's sentences so far, joined by spaces
        for (int i = 0; i < s->resp_len[r]; i++) {
            const int k = s->resp_first[r] + i;
            const vt_td_pair *p = &s->pairs[k];
            s->state_cur[k] = join_state(run.v, run.n, p->cur);
            const char *c0 = p->cur; // the caption so far: pieces without surrounding spaces
            size_t nc = strlen(c0);
            while (*c0 == ' ') c0++, nc--;
            while (nc && c0[nc - 1] == ' ') nc--;
            if (run.n && nc) vv_buf_append(&run, " ", 1);
            vv_buf_append(&run, c0, nc);
            s->state_next[k] = join_state(run.v, run.n, p->next);
            if (!s->state_cur[k] || !s->state_next[k]) {
                vv_buf_free(&run);
                return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            }
        }
        vv_buf_free(&run);
    }
    for (int k = 0; k < s->n_pairs; k++) // pairs outside any response (none from vt_td_load): the sentence alone
        if (!s->state_cur[k] && !(s->state_cur[k] = join_state(NULL, 0, s->pairs[k].cur)))
            return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int k = 0; k < s->n_pairs; k++)
        if (!s->state_next[k] && !(s->state_next[k] = join_state(NULL, 0, s->pairs[k].next)))
            return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    return VISVM_OK;
}
