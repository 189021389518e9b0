// cmd_chair.c - `visvm chair`: CHAIR of real captions against COCO annotations,
// the reference algorithm (eval/chair.h: synonym table, lower-casing,
// singularisation, two-word objects; ground truth = instance categories +
// objects of the reference captions).
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "eval/chair.h"
#include "eval/world_eval.h"
#include "format/json.h"

// An image id: a JSON number, or the last run of digits of a string
// ("COCO_val2014_000000391895.jpg" -> 391895). -1 if there is none.
static int64_t image_id_of(const cJSON *v) {
    int64_t num;
    if (cJSON_IsNumber(v)) return vv_json_int(v, 0, VV_JSON_MAX_EXACT, &num) ? num : -1;
    if (!cJSON_IsString(v) || !v->valuestring) return -1;
    const char *s = v->valuestring, *end = NULL;
    for (const char *p = s; *p; p++)
        if (isdigit((unsigned char)*p)) end = p;
    if (!end) return -1;
    const char *beg = end;
    while (beg > s && isdigit((unsigned char)beg[-1])) beg--;
    if (end - beg >= 18) return -1;
    int64_t id = 0;
    for (const char *p = beg; p <= end; p++) id = id * 10 + (*p - '0');
    return id;
}

typedef struct {
    const vv_chair *ch;
    const vv_chair_coco *gt;
    const char *id_key, *cap_key;
    vv_chair_totals tot;
    long unknown;
    int64_t first_unknown;
    vv_buf per; // per-caption JSONL
    bool want_per;
} chair_run;

// Scores one caption object; where names its place in the input for errors.
static int score_item(chair_run *r, const cJSON *o, const char *where, vv_error *e) {
    const cJSON *idv = cJSON_GetObjectItemCaseSensitive(o, r->id_key);
    const cJSON *cv = cJSON_GetObjectItemCaseSensitive(o, r->cap_key);
    if (!cJSON_IsObject(o) || !idv || !cJSON_IsString(cv))
        return vv_err(e, VISVM_ERR_FORMAT, "%s: needs \"%s\" (number or file name) and \"%s\" (string)", where, r->id_key,
                      r->cap_key);
    const int64_t id = image_id_of(idv);
    if (id < 0) return vv_err(e, VISVM_ERR_FORMAT, "%s: \"%s\" holds no image id", where, r->id_key);
    const bool *gt = vv_chair_coco_gt(r->gt, id);
    if (!gt) {
        if (!r->unknown++) r->first_unknown = id;
        return VISVM_OK;
    }
    vv_chair_caption cc;
    vv_ivec hal = {0}, men = {0};
    int rc = vv_chair_score(r->ch, cv->valuestring, gt, &cc, &hal, e);
    if (!rc && r->want_per) rc = vv_chair_mentions(r->ch, cv->valuestring, &men, NULL, NULL, e);
    if (!rc) {
        vv_chair_add(&r->tot, &cc);
        if (r->want_per) {
            cJSON *line = cJSON_CreateObject(), *m = cJSON_CreateArray(), *h = cJSON_CreateArray();
            cJSON_AddNumberToObject(line, "image_id", (double)id);
            cJSON_AddStringToObject(line, "caption", cv->valuestring);
            for (size_t k = 0; k < men.n; k++) cJSON_AddItemToArray(m, cJSON_CreateString(vv_chair_class_name(r->ch, men.v[k])));
            for (size_t k = 0; k < hal.n; k++) cJSON_AddItemToArray(h, cJSON_CreateString(vv_chair_class_name(r->ch, hal.v[k])));
            cJSON_AddItemToObject(line, "mentions", m);
            cJSON_AddItemToObject(line, "hallucinated", h);
            char *txt = cJSON_PrintUnformatted(line);
            if (txt) vv_buf_printf(&r->per, "%s\n", txt);
            else rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            free(txt);
            cJSON_Delete(line);
        }
    }
    vv_ivec_free(&hal);
    vv_ivec_free(&men);
    return rc;
}

// A JSON array of caption objects, or JSONL (one object per line).
static int score_file(chair_run *r, const char *path, vv_error *e) {
    char *data = NULL;
    size_t n = 0;
    int rc = vv_read_file(path, &data, &n, e);
    if (rc) return rc;
    // the whole file as one JSON value (nothing after it), else JSONL
    cJSON *all = cJSON_ParseWithLengthOpts(data, n + 1, NULL, 1);
    char where[4200];
    if (cJSON_IsArray(all)) {
        int i = 0;
        for (const cJSON *o = all->child; o && !rc; o = o->next, i++) {
            snprintf(where, sizeof(where), "%s: item %d", path, i);
            rc = score_item(r, o, where, e);
        }
    } else if (cJSON_IsObject(all)) {
        snprintf(where, sizeof(where), "%s", path);
        rc = score_item(r, all, where, e);
    } else { // JSONL
        int line = 0;
        for (char *p = data; p && *p && !rc;) {
            char *nl = strchr(p, '\n');
            if (nl) *nl = 0;
            line++;
            char *q = p;
            while (isspace((unsigned char)*q)) q++;
            if (*q) {
                cJSON *o = cJSON_Parse(q);
                snprintf(where, sizeof(where), "%s:%d", path, line);
                rc = o ? score_item(r, o, where, e)
                       : vv_err(e, VISVM_ERR_FORMAT, "%s: invalid JSON (a JSON array of captions, or one object per line)",
                                where);
                cJSON_Delete(o);
            }
            p = nl ? nl + 1 : NULL;
        }
    }
    cJSON_Delete(all);
    free(data);
    return rc;
}

int cmd_chair(int argc, char **argv) {
    const char *caps = NULL, *inst = NULL, *ref = NULL, *syn = NULL, *json = NULL, *per = NULL;
    const char *id_key = "image_id", *cap_key = "caption";
    cli_opt opts[] = {
        {"--captions", "-c", CLI_STR, &caps, "captions to score: a JSON array of objects, or JSONL", 0, -1},
        {"--instances", NULL, CLI_STR, &inst, "COCO instances_*.json (ground-truth categories per image)", 0, -1},
        {"--coco-captions", NULL, CLI_STR, &ref,
         "COCO captions_*.json: objects of the reference captions join the ground truth (as the reference code)", 0, -1},
        {"--synonyms", NULL, CLI_STR, &syn, "CHAIR synonym table (the reference synonyms.txt)", 0, -1},
        {"--image-id-key", NULL, CLI_STR, &id_key, "key of the image id (a number, or a file name ending in it)", 0, -1},
        {"--caption-key", NULL, CLI_STR, &cap_key, "key of the caption", 0, -1},
        {"--json", NULL, CLI_STR, &json, "write the totals as JSON", 0, -1},
        {"--per-caption", NULL, CLI_STR, &per, "write each caption's mentions and hallucinations as JSONL", 0, -1},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse("chair", "--captions FILE --instances FILE --synonyms FILE [options]",
                       "CHAIR (Rohrbach et al. 2018) of captions of COCO images: CHAIRs (captions with a hallucinated "
                       "object), CHAIRi (hallucinated mentions / mentions), recall of the ground-truth objects, words "
                       "per caption. Captions of images absent from the annotations are counted and skipped.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 2, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!caps || !inst || !syn) {
        fprintf(stderr, "visvm chair: --captions, --instances and --synonyms are required\n");
        return 2;
    }
    vv_error e = {0};
    vv_chair *ch = NULL;
    vv_chair_coco *gt = NULL;
    chair_run r = {0};
    int status = 1;
    if (vv_chair_load_synonyms(syn, true, &ch, &e) || vv_chair_coco_load(ch, inst, ref, &gt, &e)) {
        fprintf(stderr, "visvm chair: %s\n", e.msg);
        goto done;
    }
    r.ch = ch;
    r.gt = gt;
    r.id_key = id_key;
    r.cap_key = cap_key;
    r.want_per = per != NULL;
    if (score_file(&r, caps, &e)) {
        fprintf(stderr, "visvm chair: %s\n", e.msg);
        goto done;
    }
    if (!r.tot.captions) {
        fprintf(stderr, "visvm chair: no caption of %s is of an image in %s%s\n", caps, inst,
                r.unknown ? " (check --image-id-key)" : "");
        goto done;
    }
    double lo, hi;
    vv_wilson95(r.tot.halluc_captions, r.tot.captions, &lo, &hi);
    printf("| captions | CHAIRs | CHAIRs 95%% interval | CHAIRi | recall | words |\n|---|---|---|---|---|---|\n"
           "| %ld | %.1f | %.1f-%.1f | %.1f | %.1f | %.1f |\n",
           r.tot.captions, vv_chair_s(&r.tot), 100 * lo, 100 * hi, vv_chair_i(&r.tot), vv_chair_recall(&r.tot),
           vv_chair_len(&r.tot));
    if (r.unknown)
        fprintf(stderr, "visvm chair: %ld captions skipped: their images are not in %s (the first: id %lld)\n", r.unknown,
                inst, (long long)r.first_unknown);
    if (json) {
        vv_buf js = {0};
        vv_buf_printf(&js,
                      "{\"n_captions\": %ld, \"chair_s\": %.3f, \"chair_s_ci95\": [%.3f, %.3f], \"chair_i\": %.3f, "
                      "\"recall\": %.3f, \"words\": %.3f, \"mentions\": %ld, \"hallucinated_mentions\": %ld, "
                      "\"skipped_unknown_images\": %ld}\n",
                      r.tot.captions, vv_chair_s(&r.tot), 100 * lo, 100 * hi, vv_chair_i(&r.tot), vv_chair_recall(&r.tot),
                      vv_chair_len(&r.tot), r.tot.mentions, r.tot.halluc_mentions, r.unknown);
        int wr = vv_write_file_atomic(json, js.v, js.n, &e);
        vv_buf_free(&js);
        if (wr) {
            fprintf(stderr, "visvm chair: %s\n", e.msg);
            goto done;
        }
    }
    if (per && vv_write_file_atomic(per, r.per.v ? r.per.v : "", r.per.n, &e)) {
        fprintf(stderr, "visvm chair: %s\n", e.msg);
        goto done;
    }
    status = 0;
done:
    vv_buf_free(&r.per);
    vv_chair_coco_free(gt);
    vv_chair_free(ch);
    return status;
}
