// cmd_eval.c - `visvm eval`: caption synthetic-world scenes with decoding /
// search strategies and score them with CHAIR against the exact ground truth.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_internal.h"
#include "cli.h"
#include "eval/world_eval.h"
#include "train/data.h"

typedef struct {
    const char *name;
    vv_world_totals tot;
    double seconds;
    long tokens;
} strat_result;

// Loads scenes: from DIR/scenes.jsonl (images rendered from the file's PNGs) or generated in memory.
static int load_scenes(const char *world, const char *split, int start, int n, vv_world_scene **out, int *n_out,
                       vv_error *e) {
    if (world) {
        char p[4096];
        snprintf(p, sizeof(p), "%s/scenes.jsonl", world);
        int rc = vv_world_read_jsonl(p, out, n_out, e);
        if (!rc && n > 0 && *n_out > n) *n_out = n;
        return rc;
    }
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

int cmd_eval(int argc, char **argv) {
    const char *world = NULL, *split = "test", *model = "models/world/vlm-text.gguf",
               *mmproj = "models/world/vlm-mmproj.gguf", *strategies = "greedy", *json = NULL, *md = NULL,
               *captions_out = NULL;
    int n = 500, start = 0, threads = 0, n_predict = 160;
    bool quiet = false;
    cli_opt opts[] = {
        {"--world", NULL, CLI_STR, &world, "world folder made by `visvm world gen` (else scenes are generated)", 0, -1},
        {"--split", NULL, CLI_STR, &split, "split to generate when --world is not given (train|val|test|fresh)", 0, -1},
        {"--n", "-n", CLI_INT, &n, "number of scenes (0 with --world: all)", 0, 10000000},
        {"--start", NULL, CLI_INT, &start, "first scene index within the split", 0, 999999},
        {"--model", "-m", CLI_STR, &model, "captioner text model GGUF", 0, -1},
        {"--mmproj", NULL, CLI_STR, &mmproj, "captioner vision model GGUF", 0, -1},
        {"--strategies", "-s", CLI_STR, &strategies, "comma-separated: greedy", 0, -1},
        {"--n-predict", NULL, CLI_INT, &n_predict, "maximum tokens per caption", 1, 4096},
        {"--threads", "-t", CLI_INT, &threads, "threads; 0 = all cores", 0, 1024},
        {"--json", NULL, CLI_STR, &json, "write results as JSON to this file", 0, -1},
        {"--markdown", NULL, CLI_STR, &md, "write the results table as Markdown to this file", 0, -1},
        {"--captions", NULL, CLI_STR, &captions_out, "write every caption with its hallucinations (JSONL)", 0, -1},
        {"--quiet", "-q", CLI_FLAG, &quiet, "no progress output", 0, -1},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("eval", "[--world DIR | --split S --n N] [options]",
                       "Captions world scenes with each strategy and reports CHAIRs, CHAIRi, recall, sentences and "
                       "count statistics against the exact ground truth.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 2, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    vv_error e = {0};
    vv_world_scene *scenes = NULL;
    int n_sc = 0;
    if (load_scenes(world, split, start, n, &scenes, &n_sc, &e)) {
        fprintf(stderr, "visvm eval: %s\n", e.msg);
        return 1;
    }
    vv_chair *ch = NULL;
    visvm_model *vm = NULL;
    visvm_mmproj *mp = NULL;
    visvm_context *ctx = NULL;
    FILE *capf = NULL;
    strat_result res[8];
    int n_strat = 0, status = 1;
    char sbuf[256];
    snprintf(sbuf, sizeof(sbuf), "%s", strategies);
    for (char *t = strtok(sbuf, ","); t && n_strat < 8; t = strtok(NULL, ",")) {
        if (strcmp(t, "greedy") != 0) {
            fprintf(stderr, "visvm eval: unknown strategy '%s'\n", t);
            goto done;
        }
        memset(&res[n_strat], 0, sizeof(res[0]));
        res[n_strat++].name = t;
    }
    if (vv_world_chair(&ch, &e)) {
        fprintf(stderr, "visvm eval: %s\n", e.msg);
        goto done;
    }
    visvm_context_params cp = visvm_context_default_params();
    cp.n_threads = threads;
    cp.n_ctx = 1024;
    if (visvm_model_load(model, NULL, &vm) || visvm_mmproj_load(mmproj, NULL, &mp) ||
        visvm_context_create(vm, mp, &cp, &ctx)) {
        fprintf(stderr, "visvm eval: %s\n", visvm_last_error());
        goto done;
    }
    if (captions_out && !(capf = fopen(captions_out, "w"))) {
        fprintf(stderr, "visvm eval: cannot write %s\n", captions_out);
        goto done;
    }
    int n_prompts;
    const char *const *prompts = vt_detail_prompts(&n_prompts);
    for (int si = 0; si < n_strat; si++) {
        strat_result *r = &res[si];
        double t0 = vv_time_s();
        for (int i = 0; i < n_sc; i++) {
            vv_image img = {0};
            if (scene_image(world, &scenes[i], &img, &e)) {
                fprintf(stderr, "visvm eval: scene %d: %s\n", i, e.msg);
                goto done;
            }
            visvm_sample_params sp = visvm_sample_default_params();
            sp.n_predict = n_predict;
            char *text = NULL;
            int crc = vv_api_caption(ctx, NULL, &img, prompts[i % n_prompts], &sp, &text);
            vv_image_free(&img);
            if (crc) {
                fprintf(stderr, "visvm eval: scene %d: %s\n", i, visvm_context_error(ctx));
                goto done;
            }
            vv_caption_stats cs;
            vv_ivec hal = {0};
            vv_world_score_caption(ch, &scenes[i], text, &cs, &hal, &e);
            vv_world_totals_add(&r->tot, &scenes[i], &cs);
            if (capf) {
                fprintf(capf, "{\"strategy\":\"%s\",\"seed\":%llu,\"caption\":\"", r->name,
                        (unsigned long long)scenes[i].seed);
                for (const char *p = text; *p; p++) {
                    if (*p == '"' || *p == '\\') fputc('\\', capf);
                    if ((unsigned char)*p >= 0x20) fputc(*p, capf);
                }
                fprintf(capf, "\",\"hallucinated\":[");
                for (size_t k = 0; k < hal.n; k++)
                    fprintf(capf, "%s\"%s\"", k ? "," : "", vv_chair_class_name(ch, hal.v[k]));
                fprintf(capf, "]}\n");
            }
            vv_ivec_free(&hal);
            visvm_free_string(text);
            if (!quiet && ((i + 1) % 50 == 0 || i + 1 == n_sc)) {
                fprintf(stderr, "\r%s: %d/%d  CHAIRs %.1f  CHAIRi %.1f", r->name, i + 1, n_sc, vv_chair_s(&r->tot.chair),
                        vv_chair_i(&r->tot.chair));
                fflush(stderr);
            }
        }
        if (!quiet) fputc('\n', stderr);
        r->seconds = vv_time_s() - t0;
    }
    // report
    vv_buf tab = {0};
    vv_buf_printf(&tab, "| strategy | CHAIRs | CHAIRi | recall | sentences | words | count stated | count right | "
                        "over-count | follows count | s/caption |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int si = 0; si < n_strat; si++) {
        const vv_world_totals *t = &res[si].tot;
        double st = t->counts_stated ? 100.0 / t->counts_stated : 0;
        vv_buf_printf(&tab, "| %s | %.1f | %.1f | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f | %.1f | %.3f |\n",
                      res[si].name, vv_chair_s(&t->chair), vv_chair_i(&t->chair), vv_chair_recall(&t->chair),
                      (double)t->sentences / n_sc, vv_chair_len(&t->chair), 100.0 * t->counts_stated / n_sc,
                      st * t->counts_right, st * t->counts_over, st * t->counts_followed, res[si].seconds / n_sc);
    }
    printf("%d scenes (%s)\n\n%s", n_sc, world ? world : split, tab.v);
    if (md && vv_write_file_atomic(md, tab.v, tab.n, &e)) fprintf(stderr, "visvm eval: %s\n", e.msg);
    if (json) {
        vv_buf js = {0};
        vv_buf_printf(&js, "{\"n_images\": %d, \"source\": \"%s\", \"strategies\": {", n_sc, world ? world : split);
        for (int si = 0; si < n_strat; si++) {
            const vv_world_totals *t = &res[si].tot;
            vv_buf_printf(&js, "%s\"%s\": {\"chair_s\": %.3f, \"chair_i\": %.3f, \"recall\": %.3f, \"sentences\": %.3f, "
                               "\"words\": %.3f, \"sec_per_caption\": %.4f}",
                          si ? ", " : "", res[si].name, vv_chair_s(&t->chair), vv_chair_i(&t->chair),
                          vv_chair_recall(&t->chair), (double)t->sentences / n_sc, vv_chair_len(&t->chair),
                          res[si].seconds / n_sc);
        }
        vv_buf_printf(&js, "}}\n");
        if (vv_write_file_atomic(json, js.v, js.n, &e)) fprintf(stderr, "visvm eval: %s\n", e.msg);
        vv_buf_free(&js);
    }
    vv_buf_free(&tab);
    status = 0;
done:
    if (capf) fclose(capf);
    visvm_context_free(ctx);
    visvm_mmproj_free(mp);
    visvm_model_free(vm);
    vv_chair_free(ch);
    vv_world_scenes_free(scenes, n_sc);
    return status;
}
