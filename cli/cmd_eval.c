// cmd_eval.c - `visvm eval`: caption synthetic-world scenes with decoding /
// search strategies and score them with CHAIR against the exact ground truth.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval/svg.h"
#include "eval/world_eval.h"
#include "search/search.h"
#include "model/hf.h"
#include "train/data.h"

typedef struct {
    const char *name;
    vv_world_totals tot;
    double seconds;
    long tokens, forwards;
    unsigned char *hal; // [n_scenes]: 1 where the caption has a hallucinated object (paired tests)
} strat_result;

// Loads scenes: from DIR/scenes.jsonl (images rendered from the file's PNGs) or generated in memory.
static int load_scenes(const char *world, const char *split, int start, int n, vv_world_scene **out, int *n_out,
                       vv_error *e) {
    if (world) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/scenes.jsonl", world);
        int rc = vv_world_read_jsonl(p, out, n_out, e);
        if (!rc && n > 0 && *n_out > n) { // keep the first n (their captions are freed by count later)
            for (int i = n; i < *n_out; i++) vv_world_scene_free(&(*out)[i]);
            *n_out = n;
        }
        if (!rc && *n_out == 0) { // every figure would be 0 / 0
            vv_world_scenes_free(*out, 0);
            *out = NULL;
            return vv_err(e, VISVM_ERR_INVALID, "%s has no scenes", p);
        }
        return rc;
    }
    if (n < 1) return vv_err(e, VISVM_ERR_INVALID, "--n %d: give at least one scene (0 means all, only with --world)", n);
    int sp = vv_world_split_from_name(split);
    if (sp < 0) return vv_err(e, VISVM_ERR_INVALID, "unknown split '%s'", split);
    vv_world_params wp = vv_world_default_params();
    vv_world_scene *s = calloc((size_t)n, sizeof(vv_world_scene));
    if (!s) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        int rc = vv_world_scene_make(&wp, vv_world_split_base(sp) + (uint64_t)start + (uint64_t)i, &s[i], e);
        if (rc) {
            vv_world_scenes_free(s, i);
            return rc;
        }
    }
    *out = s;
    *n_out = n;
    return VISVM_OK;
}

static int scene_image(const char *world, const vv_world_scene *s, vv_image *img, vv_error *e) {
    if (world) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", world, s->image);
        return vv_image_load_file(p, img, e);
    }
    vv_world_params wp = vv_world_default_params();
    return vv_world_render(&wp, s, img, NULL, e);
}

static int need_reward(int st) { return st == VV_STRAT_BON_CLIP || st == VV_STRAT_CLIP_PRM || st == VV_STRAT_CLIP_MC; }
static int need_value(int st) { return st == VV_STRAT_BON_VISVM || st == VV_STRAT_VISVM; }

// JSON string body (escaped) into f.
static void json_str(FILE *f, const char *t) {
    for (const char *p = t ? t : ""; *p; p++) {
        if (*p == '"' || *p == '\\') fputc('\\', f);
        if ((unsigned char)*p >= 0x20) fputc(*p, f);
    }
}

typedef struct {
    const char *world;
    vv_world_scene *scenes;
    int n_sc;
    vv_searcher *searcher;
    vv_chair *ch;
    FILE *capf;
    bool quiet;
} eval_ctx;

// Runs one strategy configuration over all scenes.
static int run_strategy(eval_ctx *ec, const vv_search_params *base, const char *label, strat_result *r, vv_error *e) {
    int n_prompts;
    const char *const *prompts = vt_detail_prompts(&n_prompts);
    memset(r, 0, sizeof(*r));
    r->name = label;
    if (!(r->hal = calloc((size_t)VV_MAX(ec->n_sc, 1), 1))) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    double t0 = vv_time_s();
    for (int i = 0; i < ec->n_sc; i++) {
        vv_image img = {0};
        int rc = scene_image(ec->world, &ec->scenes[i], &img, e);
        if (rc) return vv_err_prefix(e, rc, "scene %d", i);
        vv_search_params p = *base;
        p.prompt = prompts[i % n_prompts];
        p.seed = base->seed * 1000003u + (uint64_t)i; // the same per scene for every strategy
        vv_search_result res;
        rc = vv_search_caption(ec->searcher, &img, &ec->scenes[i], &p, &res, e);
        vv_image_free(&img);
        if (rc) return vv_err_prefix(e, rc, "%s, scene %d", label, i);
        vv_caption_stats cs;
        vv_ivec hal = {0};
        vv_world_score_caption(ec->ch, &ec->scenes[i], res.caption, &cs, &hal, e);
        vv_world_totals_add(&r->tot, &ec->scenes[i], &cs);
        r->hal[i] = cs.chair.n_halluc > 0;
        r->tokens += res.gen_tokens;
        r->forwards += res.policy_forwards;
        if (ec->capf) {
            fprintf(ec->capf, "{\"strategy\":\"%s\",\"seed\":%llu,\"caption\":\"", label, (unsigned long long)ec->scenes[i].seed);
            json_str(ec->capf, res.caption);
            fprintf(ec->capf, "\",\"hallucinated\":[");
            for (size_t k = 0; k < hal.n; k++) fprintf(ec->capf, "%s\"%s\"", k ? "," : "", vv_chair_class_name(ec->ch, hal.v[k]));
            fprintf(ec->capf, "],\"steps\":[");
            for (int st = 0; st < res.n_steps; st++) {
                fprintf(ec->capf, "%s[", st ? "," : "");
                for (int c = 0; c < res.steps[st].n; c++) {
                    const vv_candidate *cd = &res.steps[st].cand[c];
                    fprintf(ec->capf, "%s{\"text\":\"", c ? "," : "");
                    json_str(ec->capf, cd->text);
                    fprintf(ec->capf, "\",\"temp\":%.2f,\"score\":%.5g,\"end\":%s,\"chosen\":%s,\"beam\":%d}", cd->temp,
                            isfinite(cd->score) ? cd->score : -1e30, cd->end ? "true" : "false",
                            cd->chosen ? "true" : "false", cd->beam);
                }
                fprintf(ec->capf, "]");
            }
            fprintf(ec->capf, "]}\n");
        }
        vv_ivec_free(&hal);
        vv_search_result_free(&res);
        if (!ec->quiet && ((i + 1) % 25 == 0 || i + 1 == ec->n_sc)) {
            fprintf(stderr, "\r%-14s %d/%d  CHAIRs %.1f  CHAIRi %.1f  recall %.1f", label, i + 1, ec->n_sc,
                    vv_chair_s(&r->tot.chair), vv_chair_i(&r->tot.chair), vv_chair_recall(&r->tot.chair));
            fflush(stderr);
        }
    }
    if (!ec->quiet) fputc('\n', stderr);
    r->seconds = vv_time_s() - t0;
    return VISVM_OK;
}

int cmd_eval(int argc, char **argv) {
    static const char def_mmproj[] = "models/world/vlm-mmproj.gguf";
    const char *world = NULL, *split = "test", *model = "models/world/vlm-text.gguf", *mmproj = def_mmproj,
               *reward = "models/world/clip.gguf", *value = "models/world/value-text.gguf",
               *value_mm = "models/world/value-mmproj.gguf", *strategies = "greedy,clip-prm,visvm", *json = NULL,
               *md = NULL, *captions_out = NULL, *sweep = NULL, *svg = NULL,
               *value_head = "models/world/value-head.gguf";
    int n = 500, start = 0, threads = 0, cand = 6, beam = 1, max_sent = 10, bon_n = 0, seed = 1, per_temp = 1;
    float temp = 0.7f, mc_gamma = 0.9f, mc_offset = -1000;
    bool quiet = false;
    cli_opt opts[] = {
        {"--world", NULL, CLI_STR, &world, "world folder made by `visvm world gen` (else scenes are generated)", 0, -1},
        {"--split", NULL, CLI_STR, &split, "split to generate when --world is not given (train|val|test|fresh)", 0, -1},
        {"--n", "-n", CLI_INT, &n, "number of scenes (0 with --world: all)", 0, 10000000},
        {"--start", NULL, CLI_INT, &start, "first scene index within the split", 0, 999999},
        {"--model", "-m", CLI_STR, &model,
         "captioner text model GGUF, or a Hugging Face LLaVA-NeXT directory (converted to F16 GGUF, temp dir)", 0, -1},
        {"--mmproj", NULL, CLI_STR, &mmproj, "captioner vision model GGUF (not with an HF directory)", 0, -1},
        {"--reward", NULL, CLI_STR, &reward, "reward CLIP GGUF (clip-prm, bon-clip)", 0, -1},
        {"--value", NULL, CLI_STR, &value,
         "value model (visvm, bon-visvm): text GGUF, a Hugging Face VisVM directory (HF-exact, SDPA pad rows), or a "
         "value head fitted on a CLIP (train head --clip; --value-mmproj is then that CLIP)", 0, -1},
        {"--value-mmproj", NULL, CLI_STR, &value_mm, "value model vision GGUF (not with an HF directory; the full CLIP for a CLIP-backbone head)", 0, -1},
        {"--value-head", NULL, CLI_STR, &value_head,
         "value head on the policy (visvm-shared; made by `visvm train head`)", 0, -1},
        {"--strategies", "-s", CLI_STR, &strategies,
         "comma-separated: greedy, sample, bon-clip, bon-visvm, clip-prm, visvm, random, oracle, clip-mc (CLIP reward "
         "plus discounted CLIP rewards of a greedy rollout: the look-ahead a value model estimates), oracle-mc (the same "
         "look-ahead scored by the ground truth), visvm-shared (a value head on the policy's own hidden state, --value-head)", 0, -1},
        {"--mc-gamma", NULL, CLI_FLOAT, &mc_gamma, "clip-mc: discount", 0, 1},
        {"--mc-offset", NULL, CLI_FLOAT, &mc_offset,
         "clip-mc: subtracted from each reward (-1000: the value model's reward offset, its TD target's)", -1000, 1000},
        {"--candidates", "-k", CLI_INT, &cand, "candidates per step: k-1 temperatures over 0.1..0.9 + greedy", 1, 33},
        {"--per-temp", NULL, CLI_INT, &per_temp,
         "samples per temperature (the paper's K): a step has (k-1) x K + 1 candidates per beam", 1, 16},
        {"--beam", NULL, CLI_INT, &beam, "beams kept per step", 1, 8},
        {"--max-sentences", NULL, CLI_INT, &max_sent, "sentence limit of step search", 1, 64},
        {"--bon-n", NULL, CLI_INT, &bon_n, "captions sampled by best-of-N (0: = candidates)", 0, 64},
        {"--temp", NULL, CLI_FLOAT, &temp, "temperature of sample and best-of-N", 0, 10},
        {"--seed", NULL, CLI_INT, &seed, "sampling seed (the same for every strategy)", 0, 2147483647},
        {"--sweep", NULL, CLI_STR, &sweep, "compute-scaling sweep: candidates per step, e.g. 2,4,8,16 (clip-prm and visvm)", 0, -1},
        {"--svg", NULL, CLI_STR, &svg, "scaling plot file for --sweep", 0, -1},
        {"--threads", "-t", CLI_INT, &threads, "threads; 0 = all cores", 0, 1024},
        {"--json", NULL, CLI_STR, &json, "write results as JSON to this file", 0, -1},
        {"--markdown", NULL, CLI_STR, &md, "write the results table as Markdown to this file", 0, -1},
        {"--captions", NULL, CLI_STR, &captions_out, "write every caption, its hallucinations and search tree (JSONL)", 0, -1},
        {"--quiet", "-q", CLI_FLAG, &quiet, "no progress output", 0, -1},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("eval", "[--world DIR | --split S --n N] [options]",
                       "Captions world scenes with each strategy (same seeds for all) and reports CHAIRs, CHAIRi, "
                       "recall, sentences, tokens, policy forwards and seconds per caption against the exact ground truth.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 2, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    vv_error e = {0};
    int strat[16], n_strat = 0, sweep_k[16], n_sweep = 0;
    char sbuf[512];
    snprintf(sbuf, sizeof(sbuf), "%s", strategies);
    for (char *t = strtok(sbuf, ","); t; t = strtok(NULL, ",")) {
        int st = vv_strategy_from_name(t);
        if (st < 0 || n_strat == 16) {
            fprintf(stderr, "visvm eval: unknown strategy '%s'\n", t);
            return 2;
        }
        strat[n_strat++] = st;
    }
    if (sweep) {
        snprintf(sbuf, sizeof(sbuf), "%s", sweep);
        for (char *t = strtok(sbuf, ","); t; t = strtok(NULL, ",")) {
            int k = atoi(t);
            if (k < 1 || k > 33 || n_sweep == 16) {
                fprintf(stderr, "visvm eval: bad --sweep value '%s' (1..33)\n", t);
                return 2;
            }
            sweep_k[n_sweep++] = k;
        }
    }
    bool want_reward = sweep != NULL, want_value = sweep != NULL, want_head = false;
    for (int i = 0; i < n_strat; i++) {
        want_reward |= need_reward(strat[i]);
        want_head |= strat[i] == VV_STRAT_VISVM_SHARED;
        want_value |= need_value(strat[i]) || (strat[i] == VV_STRAT_CLIP_MC && mc_offset <= -1000);
    }
    eval_ctx ec = {world, NULL, 0, NULL, NULL, NULL, quiet};
    if (load_scenes(world, split, start, n, &ec.scenes, &ec.n_sc, &e)) {
        fprintf(stderr, "visvm eval: %s\n", e.msg);
        return 1;
    }
    // the search decodes on GGUF files: an HF policy is converted (the HF value model is fine as is)
    char hf_text[CLI_PATH_MAX], hf_mm[CLI_PATH_MAX], hf_tmp[CLI_PATH_MAX];
    if (cli_resolve_hf_policy(model, mmproj == def_mmproj ? NULL : mmproj, hf_text, hf_mm, hf_tmp, &e)) {
        fprintf(stderr, "visvm eval: %s\n", e.msg);
        vv_world_scenes_free(ec.scenes, ec.n_sc);
        return 1;
    }
    if (hf_tmp[0]) model = hf_text, mmproj = hf_mm;
    vv_llama *pm = NULL;
    vv_clip *pv = NULL, *rw = NULL;
    vv_value *vm = NULL;
    vv_value_head *vh = NULL;
    vv_pool *pool = vv_pool_create(threads);
    strat_result res[16 + 32];
    memset(res, 0, sizeof(res));
    int n_res = 0, status = 1;
    bool failed = !pool || vv_world_chair(&ec.ch, &e) || vv_llama_load_file(model, &pm, &e) ||
                  vv_clip_load_file(mmproj, VISVM_VISION_REFERENCE, &pv, &e) ||
                  (want_reward && vv_clip_load_file(reward, VISVM_VISION_REFERENCE, &rw, &e)) ||
                  (want_value && vv_value_load(value, value_mm, &vm, &e)) ||
                  (want_head && vv_value_head_load(value_head, &vh, &e));
    cli_hf_policy_cleanup(hf_tmp); // mmapped: the files can go now
    if (failed) {
        fprintf(stderr, "visvm eval: %s\n", e.msg[0] ? e.msg : "cannot create threads");
        goto done;
    }
    const int per_step = (cand - 1) * per_temp + 1; // candidates per beam and step
    int max_cand = VV_MAX(per_step * beam, VV_MAX(bon_n, cand));
    for (int i = 0; i < n_sweep; i++) max_cand = VV_MAX(max_cand, sweep_k[i]);
    vv_search_models sm = {pm, pv, rw, vm, vh};
    if (vv_searcher_create(&sm, pool, max_cand, &ec.searcher, &e)) {
        fprintf(stderr, "visvm eval: %s\n", e.msg);
        goto done;
    }
    if (captions_out && !(ec.capf = fopen(captions_out, "w"))) {
        fprintf(stderr, "visvm eval: cannot write %s\n", captions_out);
        goto done;
    }
    vv_search_params base = vv_search_default_params();
    vv_search_set_budget(&base, cand);
    base.k = per_temp;
    base.beam = beam;
    base.max_sentences = max_sent;
    base.bon_n = bon_n ? bon_n : cand;
    base.sample_temp = temp;
    base.seed = (uint64_t)seed;
    base.mc_gamma = mc_gamma;
    base.mc_offset = mc_offset > -1000 ? mc_offset : vm ? vm->reward_offset : 0.0f;
    static char labels[48][32];
    for (int i = 0; i < n_strat; i++) {
        vv_search_params p = base;
        p.strategy = strat[i];
        snprintf(labels[n_res], sizeof(labels[0]), "%s", vv_strategy_name(strat[i]));
        if (run_strategy(&ec, &p, labels[n_res], &res[n_res], &e)) {
            fprintf(stderr, "\nvisvm eval: %s\n", e.msg);
            goto done;
        }
        n_res++;
    }
    int sweep0 = n_res;
    for (int si = 0; si < n_sweep; si++)
        for (int which = 0; which < 2; which++) {
            vv_search_params p = base;
            p.strategy = which ? VV_STRAT_VISVM : VV_STRAT_CLIP_PRM;
            vv_search_set_budget(&p, sweep_k[si]);
            snprintf(labels[n_res], sizeof(labels[0]), "%s@%d", vv_strategy_name(p.strategy), sweep_k[si]);
            if (run_strategy(&ec, &p, labels[n_res], &res[n_res], &e)) {
                fprintf(stderr, "\nvisvm eval: %s\n", e.msg);
                goto done;
            }
            n_res++;
        }
    // report
    vv_buf tab = {0};
    vv_buf_printf(&tab, "| strategy | CHAIRs | CHAIRi | recall | sentences | words | count right | over-count | "
                        "follows count | tokens | policy forwards | s/caption |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int si = 0; si < n_res; si++) {
        const vv_world_totals *t = &res[si].tot;
        double st = t->counts_stated ? 100.0 / t->counts_stated : 0;
        vv_buf_printf(&tab, "| %s | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.3f |\n",
                      res[si].name, vv_chair_s(&t->chair), vv_chair_i(&t->chair), vv_chair_recall(&t->chair),
                      (double)t->sentences / ec.n_sc, vv_chair_len(&t->chair), st * t->counts_right, st * t->counts_over,
                      st * t->counts_followed, (double)res[si].tokens / ec.n_sc, (double)res[si].forwards / ec.n_sc,
                      res[si].seconds / ec.n_sc);
    }
    // paired comparisons on the same scenes: each strategy against greedy and against CLIP-PRM at its
    // budget (and VisVM@K against CLIP-PRM@2K), exact sign test on the captions that differ
    vv_buf js_pair = {0};
    int n_pair = 0;
    for (int si = 0; si < n_res; si++) {
        const char *at = strchr(res[si].name, '@');
        char want[3][40];
        int nw = 0;
        if (strcmp(res[si].name, "greedy") != 0) snprintf(want[nw++], sizeof(want[0]), "greedy");
        if (strncmp(res[si].name, "clip-prm", 8) != 0 && strcmp(res[si].name, "greedy") != 0)
            snprintf(want[nw++], sizeof(want[0]), "clip-prm%s", at ? at : "");
        if (at && !strncmp(res[si].name, "visvm@", 6)) snprintf(want[nw++], sizeof(want[0]), "clip-prm@%d", 2 * atoi(at + 1));
        for (int w = 0; w < nw; w++)
            for (int bi = 0; bi < n_res; bi++) {
                if (bi == si || strcmp(res[bi].name, want[w]) != 0) continue;
                long only_b = 0, only_s = 0;
                for (int i = 0; i < ec.n_sc; i++) {
                    only_b += res[bi].hal[i] && !res[si].hal[i];
                    only_s += res[si].hal[i] && !res[bi].hal[i];
                }
                const double pv = vv_sign_test_p(only_b, only_s);
                if (!n_pair)
                    vv_buf_printf(&tab, "\nPaired on the same scenes (captions with a hallucination under one of the two "
                                        "only; exact sign test):\n\n| strategy | against | only against | only strategy | "
                                        "CHAIRs change | p |\n|---|---|---|---|---|---|\n");
                vv_buf_printf(&tab, "| %s | %s | %ld | %ld | %+.1f | %.3g |\n", res[si].name, res[bi].name, only_b, only_s,
                              ec.n_sc ? 100.0 * (double)(only_s - only_b) / ec.n_sc : 0.0, pv);
                vv_buf_printf(&js_pair, "%s{\"strategy\": \"%s\", \"against\": \"%s\", \"only_against\": %ld, "
                                        "\"only_strategy\": %ld, \"p\": %.4g}",
                              n_pair ? ", " : "", res[si].name, res[bi].name, only_b, only_s, pv);
                n_pair++;
                break;
            }
    }
    printf("%d scenes (%s), candidates per step %d, beam %d, seed %d\n\n%s", ec.n_sc, world ? world : split, per_step, beam,
           seed, tab.v);
    if (md && vv_write_file_atomic(md, tab.v, tab.n, &e)) fprintf(stderr, "visvm eval: %s\n", e.msg);
    if (json) {
        vv_buf js = {0};
        vv_buf_printf(&js, "{\"n_images\": %d, \"source\": \"%s\", \"candidates\": %d, \"beam\": %d, \"seed\": %d, \"strategies\": {",
                      ec.n_sc, world ? world : split, per_step, beam, seed);
        for (int si = 0; si < n_res; si++) {
            const vv_world_totals *t = &res[si].tot;
            double lo, hi;
            vv_wilson95(t->chair.halluc_captions, t->chair.captions, &lo, &hi);
            vv_buf_printf(&js, "%s\"%s\": {\"chair_s\": %.3f, \"chair_s_ci95\": [%.3f, %.3f], \"chair_i\": %.3f, "
                               "\"recall\": %.3f, \"sentences\": %.3f, \"words\": %.3f, \"tokens\": %.2f, "
                               "\"policy_forwards\": %.2f, \"sec_per_caption\": %.4f}",
                          si ? ", " : "", res[si].name, vv_chair_s(&t->chair), 100 * lo, 100 * hi, vv_chair_i(&t->chair),
                          vv_chair_recall(&t->chair), (double)t->sentences / ec.n_sc, vv_chair_len(&t->chair),
                          (double)res[si].tokens / ec.n_sc, (double)res[si].forwards / ec.n_sc, res[si].seconds / ec.n_sc);
        }
        vv_buf_printf(&js, "}, \"paired\": [%s]}\n", js_pair.v ? js_pair.v : "");
        if (vv_write_file_atomic(json, js.v, js.n, &e)) fprintf(stderr, "visvm eval: %s\n", e.msg);
        vv_buf_free(&js);
    }
    if (n_sweep && svg) {
        double xs[16], yc[16], yv[16], lc[16], hc[16], lv[16], hv[16];
        for (int si = 0; si < n_sweep; si++) {
            const vv_chair_totals *tc = &res[sweep0 + 2 * si].tot.chair, *tv = &res[sweep0 + 2 * si + 1].tot.chair;
            xs[si] = sweep_k[si];
            yc[si] = vv_chair_s(tc);
            yv[si] = vv_chair_s(tv);
            vv_wilson95(tc->halluc_captions, tc->captions, &lc[si], &hc[si]);
            vv_wilson95(tv->halluc_captions, tv->captions, &lv[si], &hv[si]);
            lc[si] *= 100, hc[si] *= 100, lv[si] *= 100, hv[si] *= 100;
        }
        // error bars: each point's 95% interval (Wilson); the paired table says whether two differ
        vv_svg_series sv[2] = {{"CLIP-PRM", xs, yc, n_sweep, lc, hc}, {"VisVM", xs, yv, n_sweep, lv, hv}};
        if (vv_svg_line_chart(svg, "CHAIRs vs candidates per step (bars: 95% intervals)", "candidates per step",
                              "CHAIRs (%)", sv, 2, true, &e))
            fprintf(stderr, "visvm eval: %s\n", e.msg);
    }
    vv_buf_free(&tab);
    vv_buf_free(&js_pair);
    status = 0;
done:
    if (ec.capf) fclose(ec.capf);
    vv_searcher_free(ec.searcher);
    vv_chair_free(ec.ch);
    vv_world_scenes_free(ec.scenes, ec.n_sc);
    for (int i = 0; i < (int)(sizeof(res) / sizeof(res[0])); i++) free(res[i].hal);
    vv_value_free(vm);
    vv_value_head_free(vh);
    vv_clip_free(rw);
    vv_clip_free(pv);
    vv_llama_free(pm);
    vv_pool_free(pool);
    return status;
}
