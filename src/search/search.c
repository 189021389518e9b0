// search.c - decoding and sentence-level search over forked KV sequences.
#include "search.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../eval/world_eval.h"
#include "../gen/llava.h"

static const char *k_names[VV_STRAT_COUNT] = {"greedy", "sample", "bon-clip", "bon-visvm",
                                              "clip-prm", "visvm", "random", "oracle", "clip-mc",
                                              "oracle-mc", "visvm-shared"};

const char *vv_strategy_name(int s) { return s >= 0 && s < VV_STRAT_COUNT ? k_names[s] : "?"; }

int vv_strategy_from_name(const char *n) {
    for (int i = 0; i < VV_STRAT_COUNT; i++)
        if (!strcmp(n, k_names[i])) return i;
    return -1;
}

void vv_search_set_budget(vv_search_params *p, int c) {
    if (c < 1) c = 1;
    if (c > VV_SEARCH_MAX_TEMPS + 1) c = VV_SEARCH_MAX_TEMPS + 1;
    p->with_greedy = true;
    p->n_temps = c - 1;
    for (int i = 0; i < p->n_temps; i++)
        p->temps[i] = p->n_temps == 1 ? 0.5f : 0.1f + 0.8f * (float)i / (float)(p->n_temps - 1);
    p->k = 1;
}

vv_search_params vv_search_default_params(void) {
    vv_search_params p;
    memset(&p, 0, sizeof(p));
    p.strategy = VV_STRAT_GREEDY;
    vv_search_set_budget(&p, 6); // 0.1, 0.3, 0.5, 0.7, 0.9 + greedy
    p.beam = 1;
    p.max_sentences = 10;
    p.max_sentence_tokens = 48;
    p.mc_gamma = 0.9f;
    p.sample_temp = 0.7f;
    p.top_p = 0.9f;
    p.bon_n = 6;
    p.max_tokens = 256;
    p.seed = 1;
    p.prompt = "Describe the image in detail.";
    return p;
}

void vv_search_result_free(vv_search_result *r) {
    if (!r) return;
    free(r->caption);
    for (int i = 0; i < r->n_steps; i++) {
        for (int j = 0; j < r->steps[i].n; j++) {
            free(r->steps[i].cand[j].text);
            free(r->steps[i].cand[j].tokens);
        }
        free(r->steps[i].cand);
    }
    free(r->steps);
    memset(r, 0, sizeof(*r));
}

// ---------------------------------------------------------------------------

#define MAX_BEAMS 8

struct vv_searcher {
    vv_search_models m;
    vv_pool *pool;
    vv_llama_state *st;
    int n_slots, max_cand;
    int n_vocab;
    float *logits;        // [n_slots, n_vocab]: prediction for the next token of each slot
    vv_sampler smp;
    vv_clip_work cw;
    float *img_feat;      // reward CLIP image features of the current image
    float *txt_feat;
    vv_value_state *vs;
    vv_chair *chair;      // oracle
    float *batch_logits;  // [max_cand, n_vocab]
    float *hidden;        // [max_cand, n_embd] policy hidden states (visvm-shared)
    bool fixed;           // benchmark mode: no EOS / sentence-end stops
    bool dedupe;          // score identical candidates once (VISVM_DEDUPE=0: every one, for comparison)
};

void vv_searcher_free(vv_searcher *s) {
    if (!s) return;
    vv_llama_state_free(s->st);
    free(s->logits);
    free(s->batch_logits);
    free(s->hidden);
    vv_sampler_free(&s->smp);
    vv_clip_work_free(&s->cw);
    free(s->img_feat);
    free(s->txt_feat);
    vv_value_state_free(s->vs);
    vv_chair_free(s->chair);
    free(s);
}

int vv_searcher_create(const vv_search_models *m, vv_pool *pool, int max_candidates, vv_searcher **out, vv_error *e) {
    *out = NULL;
    if (!m->policy || !m->policy_vision) return vv_err(e, VISVM_ERR_INVALID, "search needs a policy model and its mmproj");
    if (max_candidates < 1 || max_candidates > 512) return vv_err(e, VISVM_ERR_INVALID, "max_candidates %d out of range", max_candidates);
    vv_searcher *s = calloc(1, sizeof(*s));
    if (!s) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    s->m = *m;
    s->pool = pool;
    s->max_cand = max_candidates;
    s->dedupe = !getenv("VISVM_DEDUPE") || strcmp(getenv("VISVM_DEDUPE"), "0") != 0;
    s->n_slots = MAX_BEAMS + 2 * max_candidates; // beams, candidates, clip-mc rollouts
    s->n_vocab = m->policy->hp.n_vocab;
    // prefix (image + prompt) plus room for every candidate's sentence and the caption so far
    vv_llama_state_params sp = {4096 + max_candidates * 320, s->n_slots, 512, pool};
    int rc = vv_llama_state_create(m->policy, &sp, &s->st, e);
    if (!rc && vv_sampler_init(&s->smp, s->n_vocab)) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    s->logits = malloc((size_t)s->n_slots * s->n_vocab * sizeof(float));
    s->batch_logits = malloc((size_t)max_candidates * s->n_vocab * sizeof(float));
    s->hidden = malloc((size_t)max_candidates * m->policy->hp.n_embd * sizeof(float));
    if (!rc && (!s->logits || !s->batch_logits || !s->hidden)) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc && m->head && !strcmp(m->head->backbone, "clip"))
        rc = vv_err(e, VISVM_ERR_INVALID, "the value head is fitted on a CLIP, not on the policy: it loads as a value "
                    "model (--value HEAD --value-mmproj CLIP, strategy visvm)");
    if (!rc && m->head && m->head->n_embd != m->policy->hp.n_embd)
        rc = vv_err(e, VISVM_ERR_INVALID, "the value head reads %d-dimensional states but the policy's are %d-dimensional "
                    "(a head fitted on another policy)", m->head->n_embd, m->policy->hp.n_embd);
    if (!rc && m->reward) {
        s->img_feat = malloc((size_t)m->reward->proj_dim * sizeof(float));
        s->txt_feat = malloc((size_t)m->reward->proj_dim * sizeof(float));
        if (!s->img_feat || !s->txt_feat) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    if (!rc && m->value) rc = vv_value_state_create(m->value, pool, max_candidates, &s->vs, e);
    if (!rc) rc = vv_world_chair(&s->chair, e);
    if (rc) {
        vv_searcher_free(s);
        return rc;
    }
    *out = s;
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// batched generation

typedef struct {
    int slot, from;     // KV slot of this item; slot whose logits start it
    float temp;         // <= 0: greedy
    vv_ivec toks;
    vv_buf text;
    bool done, eos;
    double logprob;     // of the tokens in toks, under the raw logits
} gen_item;

// log softmax(logits)[tok]
static double log_prob(const float *logits, int n, int tok) {
    float mx = logits[0];
    for (int i = 1; i < n; i++) mx = logits[i] > mx ? logits[i] : mx;
    double sum = 0;
    for (int i = 0; i < n; i++) sum += exp((double)logits[i] - mx);
    return (double)logits[tok] - mx - log(sum);
}

static bool ends_sentence(const char *piece, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (piece[i] == '.' || piece[i] == '!' || piece[i] == '?') return true;
    return false;
}

// Handles a sampled token: appends it, or finishes the item.
static int take_token(vv_searcher *s, gen_item *it, const float *logits, int tok, bool stop_at_period, int max_tokens,
                      vv_error *e) {
    const vv_vocab *v = s->m.policy->vocab;
    const double lp = log_prob(logits, s->n_vocab, tok);
    if (s->fixed) { // benchmark: exactly max_tokens tokens, whatever they are
        if (vv_ivec_push(&it->toks, tok)) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        it->logprob += lp;
        if ((int)it->toks.n >= max_tokens) it->done = true;
        return VISVM_OK;
    }
    if (tok == vv_vocab_eos(v)) {
        it->done = it->eos = true;
        return VISVM_OK;
    }
    if (vv_ivec_push(&it->toks, tok)) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    it->logprob += lp;
    size_t before = it->text.n;
    int rc = vv_token_to_piece(v, tok, false, &it->text);
    if (rc) return vv_err(e, rc, "cannot decode token %d", tok);
    if (stop_at_period && ends_sentence(it->text.v + before, it->text.n - before)) it->done = true;
    if ((int)it->toks.n >= max_tokens) it->done = true;
    return VISVM_OK;
}

// Generates every item from its start slot, all in one batch per token.
static int generate(vv_searcher *s, gen_item *items, int n, bool stop_at_period, int max_tokens, float top_p,
                    vv_rng *rng, vv_search_result *res, vv_error *e) {
    int rc = VISVM_OK;
    for (int i = 0; i < n && !rc; i++) {
        gen_item *it = &items[i];
        if (it->from != it->slot && (rc = vv_llama_seq_fork(s->st, it->from, it->slot, e))) break;
        vv_sampler_params sp = {it->temp > 0 ? it->temp : 0.0f, 0, top_p};
        const float *lg = s->logits + (size_t)it->from * s->n_vocab;
        rc = take_token(s, it, lg, vv_sample(&s->smp, lg, &sp, rng), stop_at_period, max_tokens, e);
    }
    int *seg_seq = malloc((size_t)n * sizeof(int)), *seg_len = malloc((size_t)n * sizeof(int));
    int32_t *tok = malloc((size_t)n * sizeof(int32_t));
    int *idx = malloc((size_t)n * sizeof(int));
    if (!seg_seq || !seg_len || !tok || !idx) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    while (!rc) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (!items[i].done) {
                idx[k] = i;
                seg_seq[k] = items[i].slot;
                seg_len[k] = 1;
                tok[k] = items[i].toks.v[items[i].toks.n - 1];
                k++;
            }
        if (k == 0) break;
        vv_llama_batch b = {k, tok, NULL, k, seg_seq, seg_len, NULL};
        if ((rc = vv_llama_decode(s->st, &b, s->batch_logits, NULL, e))) break;
        res->gen_tokens += k;
        res->policy_forwards++;
        for (int j = 0; j < k && !rc; j++) {
            gen_item *it = &items[idx[j]];
            vv_sampler_params sp = {it->temp > 0 ? it->temp : 0.0f, 0, top_p};
            const float *lg = s->batch_logits + (size_t)j * s->n_vocab;
            rc = take_token(s, it, lg, vv_sample(&s->smp, lg, &sp, rng), stop_at_period, max_tokens, e);
        }
    }
    free(seg_seq);
    free(seg_len);
    free(tok);
    free(idx);
    return rc;
}

static char *trimmed(const char *t) {
    if (!t) t = "";
    while (*t && isspace((unsigned char)*t)) t++;
    size_t n = strlen(t);
    while (n && isspace((unsigned char)t[n - 1])) n--;
    return vv_strndup(t, n);
}

// Prefills the chat prompt with the image into slot 0; its next-token logits go to logits[0].
static int prefill(vv_searcher *s, const vv_image *img, const char *prompt, vv_error *e) {
    const vv_llama *pm = s->m.policy;
    for (int i = 0; i < s->n_slots; i++) vv_llama_seq_clear(s->st, i);
    vv_image_batch b = {0};
    float *emb = NULL;
    int n_emb = 0;
    vv_buf full = {0};
    vv_ivec pre = {0}, post = {0};
    bool hi = false;
    int rc = vv_preprocess(img, &s->m.policy_vision->pre, &b, e);
    if (!rc) rc = vv_clip_embed(s->m.policy_vision, s->pool, &b, &emb, &n_emb, NULL, e);
    if (!rc) rc = vv_chat_format(vv_chat_resolve(VISVM_TEMPLATE_AUTO, pm->chat_template), prompt, true, &full);
    if (!rc) rc = vv_llava_tokenize(pm->vocab, full.v, &pre, &post, &hi, e);
    if (!rc) rc = vv_llava_prefill(s->st, 0, pre.v, (int)pre.n, emb, n_emb, post.v, (int)post.n, s->logits, NULL, e);
    vv_afree(emb);
    vv_image_batch_free(&b);
    vv_buf_free(&full);
    vv_ivec_free(&pre);
    vv_ivec_free(&post);
    return rc;
}

// ---------------------------------------------------------------------------
// scorers

int vv_searcher_rewards(vv_searcher *s, const vv_image *img, const char *const *sentences, int n, float *out,
                        vv_error *e) {
    const vv_clip *r = s->m.reward;
    if (!r) return vv_err(e, VISVM_ERR_INVALID, "no reward CLIP loaded");
    int rc = VISVM_OK;
    if (img) {
        vv_image_batch b = {0};
        rc = vv_preprocess(img, &r->pre, &b, e);
        if (!rc) rc = vv_clip_image_features(r, s->pool, b.data, s->img_feat, &s->cw, e);
        vv_image_batch_free(&b);
    }
    for (int i = 0; i < n && !rc; i++) {
        rc = vv_clip_text_features(r, s->pool, sentences[i], s->txt_feat, &s->cw, e);
        if (!rc) out[i] = vv_cosine(s->img_feat, s->txt_feat, r->proj_dim);
    }
    return rc;
}

// Sets up the scorer for a new image.
static int scorer_begin(vv_searcher *s, int strat, const vv_image *img, const vv_world_scene *scene, vv_error *e) {
    if (strat == VV_STRAT_CLIP_PRM || strat == VV_STRAT_BON_CLIP || strat == VV_STRAT_CLIP_MC) {
        if (!s->m.reward) return vv_err(e, VISVM_ERR_INVALID, "strategy %s needs the reward CLIP", vv_strategy_name(strat));
        return vv_searcher_rewards(s, img, NULL, 0, NULL, e);
    }
    if (strat == VV_STRAT_VISVM || strat == VV_STRAT_BON_VISVM) {
        if (!s->m.value) return vv_err(e, VISVM_ERR_INVALID, "strategy %s needs the value model", vv_strategy_name(strat));
        return vv_value_set_image(s->vs, img, e);
    }
    if (strat == VV_STRAT_VISVM_SHARED && !s->m.head)
        return vv_err(e, VISVM_ERR_INVALID, "strategy visvm-shared needs a value head on the policy (--value-head)");
    if ((strat == VV_STRAT_ORACLE || strat == VV_STRAT_ORACLE_MC) && !scene) return vv_err(e, VISVM_ERR_INVALID, "the oracle needs the scene's ground truth");
    return VISVM_OK;
}

static int score(vv_searcher *s, int strat, const vv_world_scene *scene, const char *const *sent, int n,
                 const char *prefix, vv_rng *rng, float *out, vv_error *e) {
    switch (strat) {
    case VV_STRAT_CLIP_PRM:
    case VV_STRAT_BON_CLIP: return vv_searcher_rewards(s, NULL, sent, n, out, e);
    case VV_STRAT_VISVM:
    case VV_STRAT_BON_VISVM: return vv_value_score(s->vs, sent, n, prefix, out, e);
    case VV_STRAT_ORACLE:
        for (int i = 0; i < n; i++) {
            vv_caption_stats cs;
            int rc = vv_world_score_caption(s->chair, scene, sent[i], &cs, NULL, e);
            if (rc) return rc;
            out[i] = -(float)cs.chair.n_halluc + 0.001f * (float)vv_rng_uniform(rng);
        }
        return VISVM_OK;
    default:
        for (int i = 0; i < n; i++) out[i] = (float)vv_rng_uniform(rng);
        return VISVM_OK;
    }
}

// ---------------------------------------------------------------------------

static void items_free(gen_item *it, int n) {
    for (int i = 0; it && i < n; i++) {
        vv_ivec_free(&it[i].toks);
        vv_buf_free(&it[i].text);
    }
    free(it);
}

static int push_step(vv_search_result *r, int n) {
    vv_search_step *ns = realloc(r->steps, (size_t)(r->n_steps + 1) * sizeof(vv_search_step));
    if (!ns) return VISVM_ERR_NOMEM;
    r->steps = ns;
    r->steps[r->n_steps].cand = calloc((size_t)(n ? n : 1), sizeof(vv_candidate));
    r->steps[r->n_steps].n = n;
    if (!r->steps[r->n_steps].cand) return VISVM_ERR_NOMEM;
    r->n_steps++;
    return VISVM_OK;
}

// Greedy, sampling and best-of-N: whole captions from slot 0.
static int whole_captions(vv_searcher *s, const vv_world_scene *scene, const vv_search_params *p, vv_rng *rng,
                          vv_search_result *res, vv_error *e) {
    const bool bon = p->strategy == VV_STRAT_BON_CLIP || p->strategy == VV_STRAT_BON_VISVM;
    const int n = bon ? VV_MIN(p->bon_n, s->max_cand) : 1;
    gen_item *it = calloc((size_t)n, sizeof(gen_item));
    if (!it) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        it[i].slot = MAX_BEAMS + i;
        it[i].from = 0;
        it[i].temp = p->strategy == VV_STRAT_GREEDY ? 0.0f : p->sample_temp;
    }
    double tg = vv_time_s();
    int rc = generate(s, it, n, false, p->max_tokens, p->top_p, rng, res, e);
    res->sec_decode += vv_time_s() - tg;
    int best = 0;
    if (!rc && bon) {
        rc = push_step(res, n);
        float best_score = -INFINITY;
        for (int i = 0; i < n && !rc; i++) {
            char **sent = NULL;
            int ns = 0;
            char *cap = trimmed(it[i].text.v);
            rc = vv_split_sentences(cap ? cap : "", &sent, &ns);
            float mean = -INFINITY;
            if (!rc && ns > 0) {
                float *sc = malloc((size_t)ns * sizeof(float));
                double acc = 0;
                if (!sc) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                else if (!(rc = score(s, p->strategy, scene, (const char *const *)sent, ns, NULL, rng, sc, e)))
                    for (int k = 0; k < ns; k++) acc += sc[k];
                res->scored += ns;
                mean = (float)(acc / ns);
                free(sc);
            }
            vv_candidate *c = &res->steps[0].cand[i];
            c->text = cap;
            c->temp = it[i].temp;
            c->score = mean;
            c->end = ns == 0;
            c->n_tokens = (int)it[i].toks.n;
            if (mean > best_score) {
                best_score = mean;
                best = i;
            }
            vv_free_strings(sent, ns);
        }
        if (!rc) res->steps[0].cand[best].chosen = true;
    }
    if (!rc) {
        res->caption = trimmed(it[best].text.v);
        if (!res->caption) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    items_free(it, n);
    return rc;
}

typedef struct {
    int slot;
    vv_buf caption;
    double cum;
    bool done;
} beam_t;

// clip-mc / oracle-mc scores of candidates texts[j] = it[map[j]]'s text (j < m) of step `step`: each
// continues greedily to the end of the caption in a scratch slot (after the candidates'),
// and sc[j] = (r(cand) - c) + sum_k gamma^(k+1) (r(rollout sentence k) - c), r the CLIP
// reward (c = mc_offset) or minus the hallucinated objects (c = 0).
static int mc_scores(vv_searcher *s, const vv_search_params *p, const vv_world_scene *scene, const gen_item *it,
                     const char *const *texts, const int *map, int m, int step, vv_rng *rng, vv_search_result *res,
                     float *sc, vv_error *e) {
    const bool truth = p->strategy == VV_STRAT_ORACLE_MC;
    const int strat = truth ? VV_STRAT_ORACLE : VV_STRAT_CLIP_PRM;
    const float c0 = truth ? 0.0f : p->mc_offset;
    gen_item *ro = calloc((size_t)m, sizeof(gen_item));
    int *ri = malloc((size_t)m * sizeof(int)), n_ro = 0;
    int rc = ro && ri ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc) rc = score(s, strat, scene, texts, m, NULL, rng, sc, e);
    for (int j = 0; j < m && !rc; j++) sc[j] -= c0;
    const int left = p->max_sentences - step - 1;
    for (int j = 0; j < m && !rc && left > 0; j++) {
        const gen_item *c = &it[map[j]];
        if (c->eos || c->toks.n == 0) continue; // the caption ends with this candidate
        const int slot = MAX_BEAMS + s->max_cand + n_ro;
        if ((rc = vv_llama_seq_fork(s->st, c->slot, slot, e))) break;
        int32_t last = c->toks.v[c->toks.n - 1];
        rc = vv_llama_decode_seq(s->st, slot, &last, NULL, 1, false, s->logits + (size_t)slot * s->n_vocab, e);
        res->gen_tokens++;
        res->policy_forwards++;
        ro[n_ro].slot = ro[n_ro].from = slot;
        ro[n_ro].temp = -1.0f;
        ri[n_ro++] = j;
    }
    if (!rc && n_ro) rc = generate(s, ro, n_ro, false, VV_MIN(p->max_tokens, left * p->max_sentence_tokens), p->top_p, rng,
                                   res, e);
    for (int q = 0; q < n_ro && !rc; q++) {
        char **ss = NULL;
        int ns = 0;
        if (vv_split_sentences(ro[q].text.v ? ro[q].text.v : "", &ss, &ns)) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            break;
        }
        const int n_all = ns; // all are freed; the first `left` count
        ns = VV_MIN(ns, left);
        float *r = malloc((size_t)(ns ? ns : 1) * sizeof(float));
        if (!r) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        if (!rc && ns) rc = score(s, strat, scene, (const char *const *)ss, ns, NULL, rng, r, e);
        double fut = 0, disc = p->mc_gamma;
        for (int k = 0; k < ns && !rc; k++, disc *= p->mc_gamma) fut += disc * (r[k] - c0);
        if (!rc) sc[ri[q]] += (float)fut;
        res->scored += ns;
        free(r);
        vv_free_strings(ss, n_all);
    }
    for (int q = 0; q < n_ro; q++) vv_llama_seq_clear(s->st, ro[q].slot);
    items_free(ro, n_ro);
    free(ri);
    return rc;
}

// visvm-shared: feeds the last token of candidates it[idx[j]] (j < m) into
// their own slots in one batch, which the chosen one needs anyway to continue;
// their next-token logits go to logits[slot] and the value head reads the
// final hidden rows: sc[j] = w . h_j + b.
static int feed_and_score(vv_searcher *s, gen_item *it, const int *idx, int m, float *sc, vv_search_result *res,
                          vv_error *e) {
    const vv_value_head *h = s->m.head;
    const int D = s->m.policy->hp.n_embd;
    int seg_seq[512], seg_len[512], rows[512], k = 0;
    int32_t tok[512];
    for (int j = 0; j < m; j++) {
        const gen_item *g = &it[idx[j]];
        sc[j] = -INFINITY;
        if (g->toks.n == 0) continue; // nothing to score (an END candidate is not passed here)
        seg_seq[k] = g->slot;
        seg_len[k] = 1;
        tok[k] = g->toks.v[g->toks.n - 1];
        rows[k++] = j;
    }
    if (!k) return VISVM_OK;
    vv_llama_batch b = {k, tok, NULL, k, seg_seq, seg_len, NULL};
    int rc = vv_llama_decode(s->st, &b, s->batch_logits, s->hidden, e);
    if (rc) return rc;
    res->gen_tokens += k;
    res->policy_forwards++;
    for (int q = 0; q < k; q++) {
        memcpy(s->logits + (size_t)seg_seq[q] * s->n_vocab, s->batch_logits + (size_t)q * s->n_vocab,
               (size_t)s->n_vocab * sizeof(float));
        sc[rows[q]] = (float)vv_value_head_apply(h, s->hidden + (size_t)q * D);
    }
    return VISVM_OK;
}

static int step_search(vv_searcher *s, const vv_world_scene *scene, const vv_search_params *p, vv_rng *rng,
                       vv_search_result *res, vv_error *e) {
    const int per_beam = (p->n_temps * p->k + (p->with_greedy ? 1 : 0));
    const int B = VV_MAX(1, VV_MIN(p->beam, MAX_BEAMS));
    if (per_beam < 1) return vv_err(e, VISVM_ERR_INVALID, "step search needs at least one candidate per step");
    if (per_beam * B > s->max_cand)
        return vv_err(e, VISVM_ERR_RANGE, "%d candidates per step exceed the searcher's %d", per_beam * B, s->max_cand);
    beam_t beams[MAX_BEAMS];
    memset(beams, 0, sizeof(beams));
    int n_beams = 1;
    beams[0].slot = 0;
    int rc = VISVM_OK;
    const bool shared = p->strategy == VV_STRAT_VISVM_SHARED;
    gen_item *it = calloc((size_t)per_beam * B, sizeof(gen_item));
    bool *fed = calloc((size_t)per_beam * B, sizeof(bool)); // last token already in the candidate's slot
    float *sc = malloc((size_t)per_beam * B * sizeof(float));
    const char **texts = calloc((size_t)per_beam * B, sizeof(char *));
    if (!it || !fed || !sc || !texts) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int step = 0; step < p->max_sentences && !rc; step++) {
        // candidates of every live beam; greedy first, then temperature x K
        int n = 0;
        for (int b = 0; b < n_beams; b++) {
            if (beams[b].done) continue;
            for (int c = 0; c < per_beam; c++) {
                gen_item *g = &it[n];
                g->toks.n = 0;
                g->text.n = 0;
                if (g->text.v) g->text.v[0] = 0;
                g->done = g->eos = false;
                g->logprob = 0;
                fed[n] = false;
                g->slot = MAX_BEAMS + n;
                g->from = beams[b].slot;
                g->temp = (p->with_greedy && c == 0) ? -1.0f : p->temps[(c - (p->with_greedy ? 1 : 0)) / p->k];
                n++;
            }
        }
        if (n == 0) break;
        double tg = vv_time_s();
        rc = generate(s, it, n, true, p->max_sentence_tokens, p->top_p, rng, res, e);
        res->sec_decode += vv_time_s() - tg;
        if (rc) break;
        if ((rc = push_step(res, n))) {
            vv_err(e, rc, "out of memory");
            break;
        }
        vv_search_step *st = &res->steps[res->n_steps - 1];
        // record; greedy END finishes its beam (the released code's stopping rule)
        for (int i = 0; i < n; i++) {
            vv_candidate *c = &st->cand[i];
            c->text = trimmed(it[i].text.v);
            c->temp = it[i].temp;
            c->beam = (it[i].from == 0 && n_beams == 1) ? 0 : -1;
            for (int b = 0; b < n_beams; b++)
                if (beams[b].slot == it[i].from) c->beam = b;
            c->n_tokens = (int)it[i].toks.n;
            c->logprob = (float)it[i].logprob;
            c->tokens = malloc((size_t)(c->n_tokens + 1) * sizeof(int32_t));
            if (!c->tokens) {
                rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                break;
            }
            if (c->n_tokens) memcpy(c->tokens, it[i].toks.v, (size_t)c->n_tokens * sizeof(int32_t));
            c->end = it[i].eos && (!c->text || !*c->text);
            if (s->fixed && c->text && !*c->text) { // benchmark: score the token count as text
                free(c->text);
                c->text = vv_strdup("There is a small red cup at the top left of the picture next to a big blue clock.");
            }
            c->score = -INFINITY;
        }
        if (rc) break;
        for (int b = 0; b < n_beams; b++)
            for (int i = 0; i < n; i++)
                if (st->cand[i].beam == b && st->cand[i].temp < 0 && st->cand[i].end) beams[b].done = true;
        // score the non-END candidates (per beam, so the prefix is the right one)
        for (int b = 0; b < n_beams && !rc; b++) {
            if (beams[b].done && n_beams == 1) break;
            int m = 0, map[512];
            for (int i = 0; i < n; i++)
                if (st->cand[i].beam == b && !st->cand[i].end) {
                    texts[m] = st->cand[i].text;
                    map[m++] = i;
                }
            if (!m) continue;
            double ts = vv_time_s();
            // Identical candidates (a low temperature often reproduces greedy's sentence) are scored
            // once: CLIP-PRM and VisVM scores are functions of the text (and the beam's prefix) alone.
            // rep[j]: candidate j's representative among the first um distinct ones (packed in front).
            int um = 0, rep[512];
            float usc[512];
            const bool by_ids = s->fixed && p->strategy == VV_STRAT_VISVM && s->m.value && s->m.value->lm &&
                                !s->m.value->hf && !s->m.value->with_prefix && s->m.value->lm->hp.n_vocab == s->n_vocab;
            const bool dedupe = s->dedupe && (p->strategy == VV_STRAT_CLIP_PRM || p->strategy == VV_STRAT_VISVM);
            int umap[512];
            for (int j = 0; j < m; j++) {
                const vv_candidate *cj = &st->cand[map[j]];
                int k = 0;
                for (; dedupe && k < um; k++) {
                    const vv_candidate *ck = &st->cand[umap[k]];
                    if (by_ids ? (ck->n_tokens == cj->n_tokens &&
                                  !memcmp(ck->tokens, cj->tokens, (size_t)cj->n_tokens * sizeof(int32_t)))
                               : (ck->text && cj->text && !strcmp(ck->text, cj->text)))
                        break;
                }
                if (!dedupe || k == um) {
                    texts[um] = cj->text;
                    umap[um] = map[j];
                    k = um++;
                }
                rep[j] = k;
            }
            if (by_ids) {
                // benchmark: the value model reads the candidates' own ids (random-weight vocabularies
                // re-tokenize 20 sampled tokens into ~9x more; real sentences round-trip)
                const int32_t *idp[512];
                int nid[512];
                for (int j = 0; j < um; j++) {
                    idp[j] = st->cand[umap[j]].tokens;
                    nid[j] = st->cand[umap[j]].n_tokens;
                }
                rc = vv_value_score_ids(s->vs, idp, nid, um, usc, e);
            } else if (dedupe) {
                rc = score(s, p->strategy, scene, texts, um, beams[b].caption.v, rng, usc, e);
            } else if (shared) {
                rc = feed_and_score(s, it, map, m, sc, res, e);
                for (int j = 0; j < m && !rc; j++) fed[map[j]] = it[map[j]].toks.n > 0;
            } else if (p->strategy == VV_STRAT_CLIP_MC || p->strategy == VV_STRAT_ORACLE_MC) {
                rc = mc_scores(s, p, scene, it, texts, map, m, step, rng, res, sc, e);
            } else {
                rc = score(s, p->strategy, scene, texts, m, beams[b].caption.v, rng, sc, e);
            }
            res->sec_score += vv_time_s() - ts;
            for (int j = 0; j < m && !rc; j++) st->cand[map[j]].score = by_ids || dedupe ? usc[rep[j]] : sc[j];
            res->scored += um; // = m unless identical candidates were merged
        }
        if (rc) break;
        bool any_live = false;
        for (int b = 0; b < n_beams; b++) any_live |= !beams[b].done;
        if (!any_live) break;
        // choose the best B candidates of live beams (ties: earlier candidate)
        int chosen[MAX_BEAMS], n_ch = 0;
        for (int r = 0; r < B; r++) {
            int best = -1;
            for (int i = 0; i < n; i++) {
                vv_candidate *c = &st->cand[i];
                if (c->end || c->chosen || c->beam < 0 || beams[c->beam].done) continue;
                if (best < 0 || c->score > st->cand[best].score) best = i;
            }
            if (best < 0) break;
            st->cand[best].chosen = true;
            chosen[n_ch++] = best;
        }
        if (n_ch == 0) break;
        // new beams: finished beams stay; chosen candidates take over beam slots
        beam_t nb[MAX_BEAMS];
        int n_nb = 0;
        for (int b = 0; b < n_beams; b++)
            if (beams[b].done && n_nb < B) nb[n_nb++] = beams[b];
        for (int j = 0; j < n_ch && n_nb < B; j++) {
            vv_candidate *c = &st->cand[chosen[j]];
            beam_t *ob = &beams[c->beam];
            beam_t x;
            memset(&x, 0, sizeof(x));
            if (ob->caption.n) vv_buf_printf(&x.caption, "%s ", ob->caption.v);
            vv_buf_printf(&x.caption, "%s", c->text);
            x.cum = ob->cum + c->score;
            x.done = it[chosen[j]].eos;
            x.slot = -1 - chosen[j]; // candidate index until slots are reassigned
            nb[n_nb++] = x;
        }
        // slots: beams that continue move into beam slots 0.. (forks share blocks)
        bool used[MAX_BEAMS] = {false};
        for (int j = 0; j < n_nb; j++)
            if (nb[j].slot >= 0) used[nb[j].slot] = true;
        for (int b = 0; b < n_beams; b++) {
            bool kept = false;
            for (int j = 0; j < n_nb; j++) kept |= nb[j].slot == beams[b].slot;
            if (!kept) vv_llama_seq_clear(s->st, beams[b].slot);
            vv_buf_free(&beams[b].caption);
        }
        for (int j = 0; j < n_nb && !rc; j++) {
            if (nb[j].slot >= 0) continue;
            int ci = -1 - nb[j].slot, slot = 0;
            while (used[slot]) slot++;
            used[slot] = true;
            nb[j].slot = slot;
            if ((rc = vv_llama_seq_fork(s->st, it[ci].slot, slot, e))) break;
            if (!nb[j].done && fed[ci]) { // its last token is in the fork already, logits in its slot
                memcpy(s->logits + (size_t)slot * s->n_vocab, s->logits + (size_t)it[ci].slot * s->n_vocab,
                       (size_t)s->n_vocab * sizeof(float));
            } else if (!nb[j].done) { // feed the sentence's last token: logits for the next sentence
                int32_t last = it[ci].toks.v[it[ci].toks.n - 1];
                rc = vv_llama_decode_seq(s->st, slot, &last, NULL, 1, false, s->logits + (size_t)slot * s->n_vocab, e);
                res->gen_tokens++;
                res->policy_forwards++;
            }
        }
        for (int i = 0; i < n; i++) vv_llama_seq_clear(s->st, it[i].slot);
        memcpy(beams, nb, sizeof(beam_t) * (size_t)n_nb);
        n_beams = n_nb;
    }
    // final caption: the beam with the best cumulative score
    if (!rc) {
        int best = 0;
        for (int b = 1; b < n_beams; b++)
            if (beams[b].cum > beams[best].cum) best = b;
        res->caption = vv_strdup(beams[best].caption.v ? beams[best].caption.v : "");
        if (!res->caption) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    for (int b = 0; b < n_beams; b++) vv_buf_free(&beams[b].caption);
    items_free(it, per_beam * B);
    free(fed);
    free(sc);
    free(texts);
    return rc;
}

int vv_search_responses(vv_searcher *s, const vv_image *img, const char *prompt, const float *temps, int n,
                        float top_p, int max_tokens, uint64_t seed, char **out, vv_search_result *stats, vv_error *e) {
    if (n < 1 || n > s->max_cand) return vv_err(e, VISVM_ERR_RANGE, "%d responses exceed the searcher's %d", n, s->max_cand);
    vv_search_result tmp;
    memset(&tmp, 0, sizeof(tmp));
    vv_rng rng;
    vv_rng_seed(&rng, seed);
    double t0 = vv_time_s();
    int rc = prefill(s, img, prompt, e);
    gen_item *it = rc ? NULL : calloc((size_t)n, sizeof(gen_item));
    if (!rc && !it) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i = 0; it && i < n; i++) {
        it[i].slot = MAX_BEAMS + i;
        it[i].from = 0;
        it[i].temp = temps[i];
    }
    if (!rc) rc = generate(s, it, n, false, max_tokens, top_p, &rng, &tmp, e);
    for (int i = 0; i < n; i++) out[i] = NULL;
    for (int i = 0; i < n && !rc; i++)
        if (!(out[i] = trimmed(it[i].text.v))) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (rc)
        for (int i = 0; i < n; i++) {
            free(out[i]);
            out[i] = NULL;
        }
    items_free(it, n);
    for (int i = 0; i < s->n_slots; i++) vv_llama_seq_clear(s->st, i);
    tmp.seconds = vv_time_s() - t0;
    if (stats) *stats = tmp;
    return rc;
}

int vv_search_caption(vv_searcher *s, const vv_image *img, const vv_world_scene *scene, const vv_search_params *p,
                      vv_search_result *out, vv_error *e) {
    memset(out, 0, sizeof(*out));
    if (p->strategy < 0 || p->strategy >= VV_STRAT_COUNT) return vv_err(e, VISVM_ERR_INVALID, "unknown strategy %d", p->strategy);
    if (p->n_temps < 0 || p->n_temps > VV_SEARCH_MAX_TEMPS || p->k < 1 || p->max_sentences < 1 ||
        p->max_sentence_tokens < 1 || p->max_tokens < 1 || p->bon_n < 1 || !(p->top_p > 0 && p->top_p <= 1))
        return vv_err(e, VISVM_ERR_INVALID, "invalid search parameters");
    for (int i = 0; i < p->n_temps; i++)
        if (!(p->temps[i] >= 0 && p->temps[i] <= 10)) return vv_err(e, VISVM_ERR_INVALID, "temperature %g out of range", p->temps[i]);
    double t0 = vv_time_s();
    vv_rng rng;
    vv_rng_seed(&rng, p->seed);
    s->fixed = p->fixed_length;
    int rc = scorer_begin(s, p->strategy, img, scene, e);
    out->sec_score = vv_time_s() - t0;
    out->sec_score_begin = out->sec_score;
    double tp = vv_time_s();
    if (!rc) rc = prefill(s, img, p->prompt ? p->prompt : "Describe the image in detail.", e);
    out->sec_prefill = vv_time_s() - tp;
    if (!rc) {
        if (p->strategy <= VV_STRAT_BON_VISVM) rc = whole_captions(s, scene, p, &rng, out, e);
        else rc = step_search(s, scene, p, &rng, out, e);
    }
    for (int i = 0; i < s->n_slots; i++) vv_llama_seq_clear(s->st, i);
    s->fixed = false;
    out->seconds = vv_time_s() - t0;
    if (rc) vv_search_result_free(out);
    return rc;
}

// ---------------------------------------------------------------------------
// states for fitting the visvm-shared head

int vv_searcher_responses_states(vv_searcher *s, const vv_image *img, const char *prompt,
                                 const char *const *const *sentences, const int *n, int n_resp, float *const *out,
                                 vv_error *e) {
    if (n_resp < 1 || n_resp > s->max_cand)
        return vv_err(e, VISVM_ERR_RANGE, "%d responses exceed the searcher's %d", n_resp, s->max_cand);
    const vv_vocab *v = s->m.policy->vocab;
    const int D = s->m.policy->hp.n_embd;
    int rc = prefill(s, img, prompt ? prompt : "Describe the image in detail.", e);
    vv_ivec toks = {0};
    vv_buf joined = {0}, piece = {0};
    vv_ivec outf = {0}; // 1: the row is a sentence end
    bool *outb = NULL;
    int *seg_seq = calloc((size_t)n_resp, sizeof(int)), *seg_len = calloc((size_t)n_resp, sizeof(int));
    int total_out = 0, **row = calloc((size_t)n_resp, sizeof(int *));
    if (!rc && (!seg_seq || !seg_len || !row)) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int r = 0; r < n_resp && !rc; r++) {
        // the response as one continuation; where each sentence ends in it
        joined.n = 0;
        size_t *end = malloc((size_t)(n[r] ? n[r] : 1) * sizeof(size_t));
        row[r] = malloc((size_t)(n[r] ? n[r] : 1) * sizeof(int));
        if (!end || !row[r]) {
            free(end);
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            break;
        }
        for (int i = 0; i < n[r]; i++) {
            char *sd = vv_defuse_image_marker(sentences[r][i]);
            vv_buf_printf(&joined, "%s%s", i ? " " : "", sd ? sd : "");
            free(sd);
            end[i] = joined.n;
        }
        const size_t before = toks.n;
        if (n[r] > 0) rc = vv_tokenize(v, joined.v, joined.n, false, false, &toks, e);
        seg_seq[r] = MAX_BEAMS + r;
        seg_len[r] = (int)(toks.n - before);
        if (!rc && n[r] > 0 && seg_len[r] == 0) rc = vv_err(e, VISVM_ERR_INVALID, "response %d tokenizes to nothing", r);
        if (!rc) rc = vv_llama_seq_fork(s->st, 0, seg_seq[r], e);
        // walk the pieces: sentence i ends at the first token whose text (leading spaces
        // dropped) reaches end[i]
        piece.n = 0;
        size_t lead = 0;
        bool in_lead = true;
        int si = 0;
        for (int j = 0; j < seg_len[r] && !rc; j++) {
            const size_t pb = piece.n;
            if ((rc = vv_token_to_piece(v, toks.v[before + j], false, &piece))) {
                vv_err(e, rc, "cannot decode token %d", toks.v[before + j]);
                break;
            }
            for (size_t c = pb; c < piece.n && in_lead; c++) {
                if (piece.v[c] == ' ') lead++;
                else in_lead = false;
            }
            bool is_end = false;
            while (si < n[r] && (piece.n - lead >= end[si] || j == seg_len[r] - 1)) {
                row[r][si++] = total_out;
                is_end = true;
            }
            if (vv_ivec_push(&outf, is_end)) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            if (is_end) total_out++;
        }
        free(end);
    }
    float *hid = NULL;
    if (!rc && total_out > 0) {
        hid = malloc((size_t)total_out * D * sizeof(float));
        outb = malloc(outf.n + 1);
        for (size_t j = 0; outb && j < outf.n; j++) outb[j] = outf.v[j] != 0;
        if (!hid || !outb) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        int nz = 0, *ss = seg_seq, *sl = seg_len;
        // segments of empty responses are dropped
        for (int r = 0; r < n_resp && !rc; r++)
            if (seg_len[r] > 0) {
                ss[nz] = seg_seq[r];
                sl[nz++] = seg_len[r];
            }
        vv_llama_batch b = {(int)toks.n, toks.v, NULL, nz, ss, sl, outb};
        if (!rc) rc = vv_llama_decode(s->st, &b, NULL, hid, e);
    }
    for (int r = 0; r < n_resp && !rc; r++)
        for (int i = 0; i < n[r]; i++) memcpy(out[r] + (size_t)i * D, hid + (size_t)row[r][i] * D, (size_t)D * sizeof(float));
    for (int i = 0; i < s->n_slots; i++) vv_llama_seq_clear(s->st, i);
    for (int r = 0; row && r < n_resp; r++) free(row[r]);
    free(row);
    free(hid);
    free(seg_seq);
    free(seg_len);
    vv_ivec_free(&toks);
    vv_buf_free(&joined);
    vv_buf_free(&piece);
    vv_ivec_free(&outf);
    free(outb);
    return rc;
}

int vv_searcher_sentence_states(vv_searcher *s, const vv_image *img, const char *prompt, const char *const *sentences,
                                int n, float *out, vv_error *e) {
    const char *const *ss[1] = {sentences};
    float *o[1] = {out};
    return vv_searcher_responses_states(s, img, prompt, ss, &n, 1, o, e);
}
