// cmd_data.c - `visvm generate` (five responses per image and prompt) and
// `visvm reward` (CLIP reward of every sentence, the paper's JSONL layout).
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval/world_eval.h"
#include "model/hf.h"
#include "search/search.h"
#include "train/data.h"
#include "train/td_data.h"

// Streams JSON lines to a temporary file renamed into place at the end.
typedef struct {
    vv_atomic_file f;
    bool open;
} jsonl_out;

int cli_jsonl_line(vv_atomic_file *f, const void *json, vv_error *e) {
    char *s = cJSON_PrintUnformatted((const cJSON *)json);
    if (!s) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    int rc = vv_atomic_write(f, s, strlen(s), e);
    if (!rc) rc = vv_atomic_write(f, "\n", 1, e);
    free(s);
    return rc;
}

int cmd_generate(int argc, char **argv) {
    static const char def_mmproj[] = "models/world/vlm-mmproj.gguf";
    const char *world = NULL, *out = NULL, *model = "models/world/vlm-text.gguf", *mmproj = def_mmproj;
    int n = 0, threads = 0, max_tokens = 160, seed = 1;
    bool all_prompts = false;
    cli_opt opts[] = {
        {"--world", NULL, CLI_STR, &world, "world folder (scenes.jsonl + images) made by `visvm world gen`", 0, -1},
        {"--out", "-o", CLI_STR, &out, "output JSONL", 0, -1},
        {"--n", "-n", CLI_INT, &n, "number of scenes (0: all)", 0, 10000000},
        {"--all-prompts", NULL, CLI_FLAG, &all_prompts, "every image with each of the 9 prompts (else one, rotating)", 0, -1},
        {"--model", "-m", CLI_STR, &model,
         "policy text model GGUF, or a Hugging Face LLaVA-NeXT directory (converted to F16 GGUF in a temp dir)", 0, -1},
        {"--mmproj", NULL, CLI_STR, &mmproj, "policy vision model GGUF (not with an HF directory)", 0, -1},
        {"--max-tokens", NULL, CLI_INT, &max_tokens, "maximum tokens per response", 1, 4096},
        {"--seed", NULL, CLI_INT, &seed, "sampling seed", 0, 2147483647},
        {"--threads", "-t", CLI_INT, &threads, "threads; 0 = all cores", 0, 1024},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("generate", "--world DIR --out FILE [options]",
                       "Five responses per (image, prompt), decoded together: temperatures 0.2/0.4/0.6/0.8 with top-p "
                       "0.9 and greedy. Keys as the paper: text, image, image_path, temp_02, temp_04, temp_06, temp_08, greedy.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 2, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!world || !out) {
        fprintf(stderr, "visvm generate: --world and --out are required\n");
        return 2;
    }
    vv_error e = {0};
    vv_world_scene *sc = NULL;
    int n_sc = 0;
    char p[4096];
    snprintf(p, sizeof(p), "%s/scenes.jsonl", world);
    vv_llama *pm = NULL;
    vv_clip *pv = NULL;
    vv_pool *pool = vv_pool_create(threads);
    vv_searcher *s = NULL;
    jsonl_out jo = {{0}, false};
    int status = 1;
    char hf_text[CLI_PATH_MAX], hf_mm[CLI_PATH_MAX], hf_tmp[CLI_PATH_MAX] = "";
    bool failed = vv_world_read_jsonl(p, &sc, &n_sc, &e) || !pool ||
                  cli_resolve_hf_policy(model, mmproj == def_mmproj ? NULL : mmproj, hf_text, hf_mm, hf_tmp, &e);
    if (!failed && hf_tmp[0]) model = hf_text, mmproj = hf_mm;
    failed = failed || vv_llama_load_file(model, &pm, &e) || vv_clip_load_file(mmproj, VISVM_VISION_REFERENCE, &pv, &e);
    cli_hf_policy_cleanup(hf_tmp); // mmapped: the files can go now
    if (failed) {
        fprintf(stderr, "visvm generate: %s\n", e.msg[0] ? e.msg : "cannot create threads");
        goto done;
    }
    if (n > 0 && n < n_sc) n_sc = n;
    vv_search_models sm = {pm, pv, NULL, NULL, NULL};
    if (vv_searcher_create(&sm, pool, VT_N_DECODE, &s, &e) || vv_atomic_open(&jo.f, out, &e)) {
        fprintf(stderr, "visvm generate: %s\n", e.msg);
        goto done;
    }
    jo.open = true;
    int n_prompts;
    const char *const *prompts = vt_detail_prompts(&n_prompts);
    double t0 = vv_time_s();
    long tokens = 0;
    for (int i = 0; i < n_sc; i++) {
        vv_image img = {0};
        snprintf(p, sizeof(p), "%s/%s", world, sc[i].image);
        if (vv_image_load_file(p, &img, &e)) {
            fprintf(stderr, "visvm generate: %s\n", e.msg);
            goto done;
        }
        int np = all_prompts ? n_prompts : 1;
        for (int k = 0; k < np; k++) {
            const char *prompt = prompts[all_prompts ? k : i % n_prompts];
            char *resp[VT_N_DECODE];
            vv_search_result st;
            if (vv_search_responses(s, &img, prompt, vt_decode_temps, VT_N_DECODE, 0.9f, max_tokens,
                                    (uint64_t)seed * 7919u + (uint64_t)i * 31u + (uint64_t)k, resp, &st, &e)) {
                fprintf(stderr, "visvm generate: scene %d: %s\n", i, e.msg);
                vv_image_free(&img);
                goto done;
            }
            tokens += st.gen_tokens;
            cJSON *j = cJSON_CreateObject();
            cJSON_AddStringToObject(j, "text", prompt);
            cJSON_AddStringToObject(j, "image", sc[i].image);
            cJSON_AddStringToObject(j, "image_path", p);
            for (int d = 0; d < VT_N_DECODE; d++) {
                cJSON_AddStringToObject(j, vt_decode_keys[d], resp[d]);
                free(resp[d]);
            }
            rc = cli_jsonl_line(&jo.f, j, &e);
            cJSON_Delete(j);
            if (rc) {
                fprintf(stderr, "visvm generate: %s\n", e.msg);
                vv_image_free(&img);
                goto done;
            }
        }
        vv_image_free(&img);
        if ((i + 1) % 50 == 0 || i + 1 == n_sc) {
            double el = vv_time_s() - t0;
            fprintf(stderr, "\rgenerate: %d/%d images, %.0f tokens/s, ETA %.0f s   ", i + 1, n_sc, tokens / el,
                    el / (i + 1) * (n_sc - i - 1));
        }
    }
    fputc('\n', stderr);
    if (vv_atomic_commit(&jo.f, &e)) {
        jo.open = false;
        fprintf(stderr, "visvm generate: %s\n", e.msg);
        goto done;
    }
    jo.open = false;
    printf("wrote %s (%d images)\n", out, n_sc);
    status = 0;
done:
    if (jo.open) vv_atomic_abort(&jo.f);
    vv_searcher_free(s);
    vv_clip_free(pv);
    vv_llama_free(pm);
    vv_pool_free(pool);
    vv_world_scenes_free(sc, n_sc);
    return status;
}

int cmd_reward(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *clip = "models/world/clip.gguf", *world = NULL;
    int threads = 0;
    bool truth = false;
    cli_opt opts[] = {
        {"--in", "-i", CLI_STR, &in, "responses JSONL (visvm generate, or the paper's batch_generate.py)", 0, -1},
        {"--out", "-o", CLI_STR, &out, "output JSONL with \"rewards\" added", 0, -1},
        {"--clip", NULL, CLI_STR, &clip, "reward CLIP GGUF", 0, -1},
        {"--world", NULL, CLI_STR, &world,
         "world folder of the images (visvm world gen): also report the reward's within-image AUC on these responses "
         "(sentences naming only present objects against sentences naming an absent one)", 0, -1},
        {"--truth", NULL, CLI_FLAG, &truth,
         "diagnostic: reward = minus the hallucinated objects of each sentence by --world's ground truth, not CLIP "
         "(what a value model learns from a perfect reward)", 0, -1},
        {"--threads", "-t", CLI_INT, &threads, "threads; 0 = all cores", 0, 1024},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("reward", "--in FILE --out FILE [options]",
                       "Adds rewards = {decode_type: {sentence: CLIP cosine}} to every line (sentences in order, "
                       "duplicates collapsed, \"\" terminal last), as the paper's generate_clip_score.py.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 2, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!in || !out) {
        fprintf(stderr, "visvm reward: --in and --out are required\n");
        return 2;
    }
    if (truth && !world) {
        fprintf(stderr, "visvm reward: --truth needs --world (the ground truth)\n");
        return 2;
    }
    vv_error e = {0};
    char *text = NULL;
    vv_clip *cl = NULL;
    vv_pool *pool = vv_pool_create(threads);
    vv_clip_work w = {0};
    jsonl_out jo = {{0}, false};
    int status = 1, line_no = 0, n_lines = 0;
    float *imf = NULL, *tf = NULL;
    vv_world_scene *scenes = NULL; // --world: ground truth, CHAIR vocabulary, AUC so far
    int n_scenes = 0, hint = 0;
    vv_chair *ch = NULL;
    vv_auc auc = {0};
    size_t text_len = 0;
    if (vv_read_file(in, &text, &text_len, &e) || !pool || (!truth && vv_clip_load_file(clip, VISVM_VISION_REFERENCE, &cl, &e))) {
        fprintf(stderr, "visvm reward: %s\n", e.msg[0] ? e.msg : "cannot create threads");
        goto done;
    }
    if (strlen(text) != text_len) { // a binary file: the lines after its first NUL would be skipped unseen
        fprintf(stderr, "visvm reward: %s contains a NUL byte (not a JSONL file)\n", in);
        goto done;
    }
    if (cl && !cl->has_text) {
        fprintf(stderr, "visvm reward: %s is not a full CLIP (no text encoder)\n", clip);
        goto done;
    }
    if (cl) {
        imf = malloc((size_t)cl->proj_dim * sizeof(float));
        tf = malloc((size_t)cl->proj_dim * sizeof(float));
    }
    if ((cl && (!imf || !tf)) || vv_atomic_open(&jo.f, out, &e)) {
        fprintf(stderr, "visvm reward: %s\n", e.msg[0] ? e.msg : "out of memory");
        goto done;
    }
    jo.open = true;
    if (world) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/scenes.jsonl", world);
        if (vv_world_read_jsonl(p, &scenes, &n_scenes, &e) || vv_world_chair(&ch, &e)) {
            fprintf(stderr, "visvm reward: %s\n", e.msg);
            goto done;
        }
    }
    double t0 = vv_time_s();
    for (char *p = text; *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        char *line = p;
        p = nl ? nl + 1 : p + strlen(p);
        line_no++;
        if (!*line) continue;
        cJSON *j = cJSON_Parse(line);
        const cJSON *ip = j ? cJSON_GetObjectItemCaseSensitive(j, "image_path") : NULL;
        if (!cJSON_IsString(ip)) ip = j ? cJSON_GetObjectItemCaseSensitive(j, "image") : NULL;
        if (!j || !cJSON_IsString(ip)) {
            fprintf(stderr, "visvm reward: %s:%d: %s\n", in, line_no, j ? "no image_path" : "invalid JSON");
            cJSON_Delete(j);
            goto done;
        }
        vv_image img = {0};
        vv_image_batch b = {0};
        int r = VISVM_OK;
        const vv_world_scene *sc = NULL;
        if (world) {
            const cJSON *im = cJSON_GetObjectItemCaseSensitive(j, "image");
            sc = cJSON_IsString(im) ? vv_world_find_scene(scenes, n_scenes, im->valuestring, &hint) : NULL;
            if (!sc)
                r = vv_err(&e, VISVM_ERR_INVALID, "image %s is not in %s/scenes.jsonl",
                           cJSON_IsString(im) ? im->valuestring : "(no \"image\" key)", world);
        }
        if (!r && !truth) {
            r = vv_image_load_file(ip->valuestring, &img, &e);
            if (!r) r = vv_preprocess(&img, &cl->pre, &b, &e);
            if (!r) r = vv_clip_image_features(cl, pool, b.data, imf, &w, &e);
        }
        vv_image_free(&img);
        vv_image_batch_free(&b);
        if (r) {
            fprintf(stderr, "visvm reward: %s:%d: %s\n", in, line_no, e.msg);
            cJSON_Delete(j);
            goto done;
        }
        cJSON *rw = cJSON_CreateObject();
        for (int d = 0; d < VT_N_DECODE && !r; d++) {
            const cJSON *resp = cJSON_GetObjectItemCaseSensitive(j, vt_decode_keys[d]);
            if (!cJSON_IsString(resp)) continue;
            cJSON *sd = cJSON_AddObjectToObject(rw, vt_decode_keys[d]);
            char **sent = NULL;
            int ns = 0;
            vv_split_sentences(vt_response_text(resp->valuestring), &sent, &ns);
            for (int k = 0; k <= ns && !r; k++) {
                const char *st = k < ns ? sent[k] : ""; // "" = the paper's terminal piece
                if (cJSON_GetObjectItemCaseSensitive(sd, st)) continue; // duplicates keep their first occurrence
                if (truth) {
                    vv_caption_stats cs;
                    if (!(r = vv_world_score_caption(ch, sc, st, &cs, NULL, &e)))
                        cJSON_AddNumberToObject(sd, st, cs.chair.n_halluc ? -(double)cs.chair.n_halluc : 0.0);
                } else if (!(r = vv_clip_text_features(cl, pool, st, tf, &w, &e))) {
                    cJSON_AddNumberToObject(sd, st, vv_cosine(imf, tf, cl->proj_dim));
                }
            }
            vv_free_strings(sent, ns);
        }
        if (!r && world) { // this image's distinct sentences, labelled against its ground truth
            enum { MAXS = 256 };
            const char *sent[MAXS];
            float score[MAXS], kept[MAXS];
            int keep[MAXS], n = 0;
            signed char lab[MAXS];
            const cJSON *sd, *it;
            cJSON_ArrayForEach(sd, rw) cJSON_ArrayForEach(it, sd) if (n < MAXS) {
                sent[n] = it->string;
                score[n++] = (float)it->valuedouble;
            }
            const int ns = vv_world_label_distinct(ch, sc, sent, n, keep, lab);
            for (int k = 0; k < ns; k++) kept[k] = score[keep[k]];
            vv_auc_add_image(&auc, kept, lab, ns);
        }
        cJSON_AddItemToObject(j, "rewards", rw);
        if (!r) r = cli_jsonl_line(&jo.f, j, &e);
        cJSON_Delete(j);
        if (r) {
            fprintf(stderr, "visvm reward: %s:%d: %s\n", in, line_no, e.msg);
            goto done;
        }
        if (++n_lines % 100 == 0) fprintf(stderr, "\rreward: %d lines (%.0f lines/s)   ", n_lines, n_lines / (vv_time_s() - t0));
    }
    fputc('\n', stderr);
    if (vv_atomic_commit(&jo.f, &e)) {
        jo.open = false;
        fprintf(stderr, "visvm reward: %s\n", e.msg);
        goto done;
    }
    jo.open = false;
    printf("wrote %s (%d lines)\n", out, n_lines);
    if (world)
        printf("within-image AUC of the reward: %.3f (%ld pairs over %ld images; %ld sentences naming only present "
               "objects, %ld naming an absent one)\n",
               vv_auc_value(&auc), auc.pairs, auc.images, auc.n_good, auc.n_bad);
    status = 0;
done:
    vv_world_scenes_free(scenes, n_scenes);
    vv_chair_free(ch);
    if (jo.open) vv_atomic_abort(&jo.f);
    free(imf);
    free(tf);
    vv_clip_work_free(&w);
    vv_clip_free(cl);
    vv_pool_free(pool);
    free(text);
    return status;
}
