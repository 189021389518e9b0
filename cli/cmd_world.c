// cmd_world.c - `visvm world`: generate the synthetic world (images, ground
// truth, reference captions), show one scene, write the CHAIR synonym file.
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/threadpool.h"
#include "cli.h"
#include "train/td_data.h"
#include "world/world.h"

// The world's knobs as options bound to a params struct. Defaults shown by
// --help come from vv_world_default_params().
typedef struct {
    vv_world_params p;
    const char *count_weights;
    bool repeat_classes, shared_regions;
    char cw_default[128];
} knobs;

static void knobs_init(knobs *k) {
    memset(k, 0, sizeof(*k));
    k->p = vv_world_default_params();
    size_t off = 0;
    for (int i = 0; i < VV_WORLD_MAX_OBJECTS; i++)
        off += (size_t)snprintf(k->cw_default + off, sizeof(k->cw_default) - off, "%s%g", i ? "," : "",
                                (double)k->p.count_weights[i]);
    k->count_weights = k->cw_default;
}

#define N_KNOBS 23
static int knob_opts(knobs *k, cli_opt *o) {
    vv_world_params *p = &k->p;
    cli_opt t[N_KNOBS] = {
        {"--size", NULL, CLI_INT, &p->size, "image side in pixels", 16, 1024},
        {"--min-objects", NULL, CLI_INT, &p->min_objects, "fewest objects per scene", 1, VV_WORLD_MAX_OBJECTS},
        {"--max-objects", NULL, CLI_INT, &p->max_objects, "most objects per scene (at most one per 3x3 region)", 1,
         VV_WORLD_MAX_OBJECTS},
        {"--count-weights", NULL, CLI_STR, &k->count_weights,
         "relative weights of 1, 2, 3, ... objects (comma-separated; missing entries repeat the last)", 0, -1},
        {"--small", NULL, CLI_FLOAT, &p->small_frac, "small object extent / image side", 0.05, 0.5},
        {"--large", NULL, CLI_FLOAT, &p->large_frac, "large object extent / image side", 0.05, 0.5},
        {"--p-large", NULL, CLI_FLOAT, &p->p_large, "probability an object is large", 0, 1},
        {"--jitter", NULL, CLI_FLOAT, &p->jitter_frac, "max position jitter / image side", 0, 0.2},
        {"--p-theme", NULL, CLI_FLOAT, &p->p_theme, "theme strength: probability an object is one of the theme's classes",
         0, 1},
        {"--alpha-min", NULL, CLI_FLOAT, &p->alpha_min, "lowest object contrast (colour weight against the background)",
         0.01, 1},
        {"--alpha-max", NULL, CLI_FLOAT, &p->alpha_max, "highest object contrast", 0.01, 1},
        {"--p-occlude", NULL, CLI_FLOAT, &p->p_occlude, "probability an object is partly occluded", 0, 1},
        {"--occlude-min", NULL, CLI_FLOAT, &p->occlude_min, "smallest occluded share of an object's area", 0, 0.9},
        {"--occlude-max", NULL, CLI_FLOAT, &p->occlude_max, "largest occluded share of an object's area", 0, 0.9},
        {"--p-border", NULL, CLI_FLOAT, &p->p_border,
         "share of occlusions (edge regions) made by the image border instead of a clutter patch", 0, 1},
        {"--noise", NULL, CLI_FLOAT, &p->noise, "pixel noise std (0..255 units)", 0, 100},
        {"--blobs", NULL, CLI_FLOAT, &p->blob_amp, "amplitude of low-frequency background blobs", 0, 100},
        {"--tint-jitter", NULL, CLI_FLOAT, &p->tint_jitter, "per-scene jitter of the theme's background tint", 0, 100},
        {"--clutter", NULL, CLI_INT, &p->clutter_max, "most background clutter strokes per scene", 0, VV_WORLD_MAX_CLUTTER},
        {"--outline", NULL, CLI_FLOAT, &p->outline, "darker outline width / object extent (0 = none)", 0, 0.2},
        {"--supersample", NULL, CLI_INT, &p->supersample, "anti-aliasing samples per pixel side", 1, 8},
        {"--captions", NULL, CLI_INT, &p->n_captions, "reference captions per scene", 0, VV_WORLD_MAX_CAPTIONS},
        {"--repeat-classes", NULL, CLI_FLAG, &k->repeat_classes, "allow a class more than once in a scene", 0, -1},
    };
    memcpy(o, t, sizeof(t));
    return N_KNOBS;
}

// Applies the options that do not map 1:1 onto params. Returns 0 or 2.
static int knobs_finish(knobs *k, const char *cmd) {
    k->p.distinct_classes = !k->repeat_classes;
    k->p.one_per_region = !k->shared_regions;
    if (k->count_weights != k->cw_default) {
        const char *s = k->count_weights;
        float last = -1.0f;
        int i = 0;
        while (*s && i < VV_WORLD_MAX_OBJECTS) {
            char *end;
            float v = strtof(s, &end);
            if (end == s || !(v >= 0.0f)) {
                fprintf(stderr, "visvm %s: bad --count-weights '%s'\n", cmd, k->count_weights);
                return 2;
            }
            k->p.count_weights[i++] = last = v;
            s = end;
            if (*s == ',') s++;
            else if (*s) {
                fprintf(stderr, "visvm %s: bad --count-weights '%s'\n", cmd, k->count_weights);
                return 2;
            }
        }
        if (i == 0) {
            fprintf(stderr, "visvm %s: empty --count-weights\n", cmd);
            return 2;
        }
        for (; i < VV_WORLD_MAX_OBJECTS; i++) k->p.count_weights[i] = last;
    }
    vv_error e = {0};
    if (vv_world_params_check(&k->p, &e)) {
        fprintf(stderr, "visvm %s: %s\n", cmd, e.msg);
        return 2;
    }
    return 0;
}

static bool parse_seed(const char *s, uint64_t *out) {
    if (!s || !*s || *s == '-') return false;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end) return false;
    *out = v;
    return true;
}

typedef struct {
    double t0;
    bool tty;
    int64_t last_pct;
} progress_state;

static void on_progress(void *ud, int64_t done, int64_t total) {
    progress_state *ps = (progress_state *)ud;
    double dt = vv_time_s() - ps->t0;
    double rate = dt > 0 ? (double)done / dt : 0.0;
    if (ps->tty) {
        fprintf(stderr, "\rworld gen: %lld / %lld scenes (%.0f/s)", (long long)done, (long long)total, rate);
        if (done == total) fputc('\n', stderr);
    } else {
        int64_t pct = done * 10 / total; // a line per 10 %
        if (pct != ps->last_pct || done == total) {
            fprintf(stderr, "world gen: %lld / %lld scenes (%.0f/s)\n", (long long)done, (long long)total, rate);
            ps->last_pct = pct;
        }
    }
    fflush(stderr);
}

static int world_gen(int argc, char **argv) {
    knobs k;
    knobs_init(&k);
    const char *out = NULL, *split_name = "train", *seed_str = NULL;
    int n = 1000, threads = 0;
    uint64_t start = 0;
    bool quiet = false;
    cli_opt opts[N_KNOBS + 9];
    cli_opt head[] = {
        {"--out", "-o", CLI_STR, &out, "output directory (images/, scenes.jsonl, synonyms.txt, world.json)", 0, -1},
        {"--split", NULL, CLI_STR, &split_name, "train | val | test | fresh (seed ranges of 1 000 000 each)", 0, -1},
        {"--n", "-n", CLI_INT, &n, "number of scenes", 0, (double)VV_WORLD_SPLIT_SIZE},
        {"--start", NULL, CLI_U64, &start, "first scene within the split: seeds base(split) + start + i", 0, -1},
        {"--seed", NULL, CLI_STR, &seed_str, "explicit first seed (instead of --split/--start)", 0, -1},
        {"--threads", "-t", CLI_INT, &threads, "threads; 0 = all cores (output does not depend on it)", 0, 1024},
        {"--quiet", "-q", CLI_FLAG, &quiet, "no progress on stderr", 0, -1},
        {"--shared-regions", NULL, CLI_FLAG, &k.shared_regions, "allow several objects in one 3x3 region", 0, -1},
    };
    int nh = (int)(sizeof(head) / sizeof(head[0]));
    memcpy(opts, head, sizeof(head));
    int no = nh + knob_opts(&k, opts + nh);
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("world gen", "--out DIR [--split S --n N --start K | --seed S --n N] [world options]",
                       "Renders n scenes of the synthetic world with ground truth and reference captions.\n"
                       "Seeds: train [0, 1e6), val [1e6, 2e6), test [2e6, 3e6), fresh [3e6, 4e6).",
                       opts, no, argc, argv, 3, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!out) {
        fprintf(stderr, "visvm world gen: --out is required (see --help)\n");
        return 2;
    }
    if ((rc = knobs_finish(&k, "world gen"))) return rc;
    int split = vv_world_split_from_name(split_name);
    if (split < 0 || split >= VV_WORLD_N_SPLITS) {
        fprintf(stderr, "visvm world gen: unknown --split '%s' (train, val, test or fresh)\n", split_name);
        return 2;
    }
    uint64_t first = 0;
    if (seed_str && !parse_seed(seed_str, &first)) {
        fprintf(stderr, "visvm world gen: invalid --seed '%s'\n", seed_str);
        return 2;
    }
    vv_pool *pool = threads == 1 ? NULL : vv_pool_create(threads);
    progress_state ps = {vv_time_s(), isatty(2) != 0, -1};
    bool show = !quiet && n >= 500;
    vv_error e = {0};
    if (seed_str)
        rc = vv_world_generate_seeds(&k.p, first, n, out, pool, show ? on_progress : NULL, &ps, &e);
    else
        rc = vv_world_generate(&k.p, split, start, n, out, pool, show ? on_progress : NULL, &ps, &e);
    vv_pool_free(pool);
    if (rc) {
        fprintf(stderr, "visvm world gen: %s\n", e.msg);
        return 1;
    }
    if (!quiet) {
        uint64_t s0 = seed_str ? first : vv_world_split_base(split) + start;
        fprintf(stderr, "world gen: wrote %d scenes (seeds %llu..%llu) to %s in %.1f s\n", n, (unsigned long long)s0,
                (unsigned long long)(s0 + (uint64_t)(n > 0 ? n - 1 : 0)), out, vv_time_s() - ps.t0);
    }
    return 0;
}

static int world_show(int argc, char **argv) {
    knobs k;
    knobs_init(&k);
    const char *seed_str = "0", *png = NULL;
    bool sentences = false;
    cli_opt opts[N_KNOBS + 4];
    cli_opt head[] = {
        {"--seed", "-s", CLI_STR, &seed_str, "scene seed", 0, -1},
        {"--png", NULL, CLI_STR, &png, "also write the image to this PNG file", 0, -1},
        {"--sentences", NULL, CLI_FLAG, &sentences, "print the CLIP sentences (true and hard negatives) instead", 0, -1},
        {"--shared-regions", NULL, CLI_FLAG, &k.shared_regions, "allow several objects in one 3x3 region", 0, -1},
    };
    int nh = (int)(sizeof(head) / sizeof(head[0]));
    memcpy(opts, head, sizeof(head));
    int no = nh + knob_opts(&k, opts + nh);
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("world show", "--seed S [--png FILE] [--sentences] [world options]",
                       "Prints one scene as its scenes.jsonl line (or its CLIP sentences).", opts, no, argc, argv, 3,
                       pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if ((rc = knobs_finish(&k, "world show"))) return rc;
    uint64_t seed;
    if (!parse_seed(seed_str, &seed)) {
        fprintf(stderr, "visvm world show: invalid --seed '%s'\n", seed_str);
        return 2;
    }
    vv_error e = {0};
    vv_world_scene s;
    vv_image img = {0};
    vv_buf b = {0};
    int status = 1;
    if (vv_world_scene_make(&k.p, seed, &s, &e) || vv_world_scene_caption(&k.p, &s, &e)) goto done;
    if (png) {
        if (vv_world_render(&k.p, &s, &img, NULL, &e) || vv_image_save_png(&img, png, &e)) goto done;
        snprintf(s.image, sizeof(s.image), "%.63s", png);
    }
    if (sentences) {
        vv_world_sentence *v = NULL;
        int n = 0;
        if (vv_world_sentences(&s, s.seed, &v, &n, &e)) goto done;
        for (int i = 0; i < n; i++)
            printf("%s\t%s\t%s\n", v[i].positive ? "+" : "-", vv_world_sent_kind_name(v[i].kind), v[i].text);
        free(v);
    } else {
        if (vv_world_scene_to_json(&s, &b, &e)) goto done;
        printf("%s\n", b.v);
    }
    status = 0;
done:
    if (status) fprintf(stderr, "visvm world show: %s\n", e.msg);
    vv_buf_free(&b);
    vv_image_free(&img);
    vv_world_scene_free(&s);
    return status;
}

static int world_synonyms(int argc, char **argv) {
    const char *out = NULL;
    cli_opt opts[] = {{"--out", "-o", CLI_STR, &out, "output file (default: stdout)", 0, -1}};
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("world synonyms", "[--out FILE]",
                       "Writes the class synonym table in the COCO CHAIR format (canonical name first).", opts, 1, argc,
                       argv, 3, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    vv_error e = {0};
    if (out) {
        if (vv_world_write_synonyms(out, &e)) {
            fprintf(stderr, "visvm world synonyms: %s\n", e.msg);
            return 1;
        }
        return 0;
    }
    vv_buf b = {0};
    if (vv_world_synonyms_text(&b)) {
        fprintf(stderr, "visvm world synonyms: out of memory\n");
        return 1;
    }
    fputs(b.v, stdout);
    vv_buf_free(&b);
    return 0;
}

static void shuffle(int *a, int n, vv_rng *rng) { // Fisher-Yates
    for (int j = n - 1; j > 0; j--) {
        int k = (int)vv_rng_below(rng, (uint32_t)(j + 1)), t = a[j];
        a[j] = a[k];
        a[k] = t;
    }
}

// Value-model alignment data: each scene's CLIP sentences (its true sentences
// and hard negatives, those naming an absent object of the scene's theme
// first) dealt at random into the five responses of `visvm generate`'s layout,
// so `visvm reward` scores them and `visvm train value --gamma 0` teaches the
// value model to see what the reward sees before TD training.
static int world_sentences(int argc, char **argv) {
    const char *world = NULL, *out = NULL, *prompt = "Describe this image in detail.";
    int n_neg = -1;
    uint64_t seed = 1;
    cli_opt opts[] = {
        {"--world", "-w", CLI_STR, &world, "world folder (visvm world gen): its scenes.jsonl and images/", 0, -1},
        {"--out", "-o", CLI_STR, &out, "output JSONL (generate's keys: text, image, image_path, temp_02 ... greedy)", 0, -1},
        {"--negatives", NULL, CLI_INT, &n_neg, "hard negatives per scene (-1: as many as true sentences)", -1, 64},
        {"--seed", NULL, CLI_U64, &seed, "shuffling seed", 0, -1},
        {"--prompt", "-p", CLI_STR, &prompt, "the text key", 0, -1},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("world sentences", "--world DIR --out FILE [--negatives N]",
                       "Writes each scene's true sentences and hard negatives (absent same-theme objects first, then\n"
                       "other corruptions), shuffled into five responses per scene, as JSONL in generate's layout.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 3, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!world || !out) {
        fprintf(stderr, "visvm world sentences: --world and --out are required (see --help)\n");
        return 2;
    }
    vv_error e = {0};
    vv_world_scene *sc = NULL;
    int n_sc = 0, status = 1, n_pos_all = 0, n_neg_all = 0;
    vv_atomic_file f;
    bool open = false;
    char path[4096];
    snprintf(path, sizeof(path), "%s/scenes.jsonl", world);
    if (vv_world_read_jsonl(path, &sc, &n_sc, &e) || vv_atomic_open(&f, out, &e)) goto done;
    open = true;
    vv_rng rng;
    vv_rng_seed(&rng, seed);
    for (int i = 0; i < n_sc; i++) {
        vv_world_sentence *v = NULL;
        int n = 0;
        if (vv_world_sentences(&sc[i], sc[i].seed, &v, &n, &e)) goto done;
        // pick: every true sentence, then negatives: absent same-theme ones, then the rest in random order
        int pick[256], np = 0, neg[256], nn = 0;
        for (int j = 0; j < n && j < 256; j++)
            if (v[j].positive) pick[np++] = j;
            else if (v[j].kind == VV_WS_NEG_ABSENT_THEME) neg[nn++] = j;
        const int nat = nn;
        for (int j = 0; j < n && j < 256; j++)
            if (!v[j].positive && v[j].kind != VV_WS_NEG_ABSENT_THEME) neg[nn++] = j;
        shuffle(neg + nat, nn - nat, &rng);
        int want = n_neg < 0 ? np : n_neg;
        n_pos_all += np;
        for (int j = 0; j < nn && j < want; j++) pick[np++] = neg[j], n_neg_all++;
        shuffle(pick, np, &rng); // then dealt into the five responses
        vv_buf resp[VT_N_DECODE] = {{0}};
        for (int j = 0; j < np; j++) {
            vv_buf *b = &resp[j % VT_N_DECODE];
            if ((b->n && vv_buf_append(b, " ", 1)) || vv_buf_append(b, v[pick[j]].text, strlen(v[pick[j]].text))) {
                vv_err(&e, VISVM_ERR_NOMEM, "out of memory");
                break;
            }
        }
        free(v);
        char ip[4096];
        snprintf(ip, sizeof(ip), "%s/%s", world, sc[i].image);
        cJSON *j = e.code ? NULL : cJSON_CreateObject();
        if (j) {
            cJSON_AddStringToObject(j, "text", prompt);
            cJSON_AddStringToObject(j, "image", sc[i].image);
            cJSON_AddStringToObject(j, "image_path", ip);
            for (int d = 0; d < VT_N_DECODE; d++) cJSON_AddStringToObject(j, vt_decode_keys[d], resp[d].v ? resp[d].v : "");
        } else if (!e.code) vv_err(&e, VISVM_ERR_NOMEM, "out of memory");
        for (int d = 0; d < VT_N_DECODE; d++) vv_buf_free(&resp[d]);
        rc = e.code ? e.code : cli_jsonl_line(&f, j, &e);
        cJSON_Delete(j);
        if (rc) goto done;
    }
    if (vv_atomic_commit(&f, &e)) goto done;
    open = false;
    fprintf(stderr, "world sentences: %d scenes, %d true sentences, %d hard negatives -> %s\n", n_sc, n_pos_all,
            n_neg_all, out);
    status = 0;
done:
    if (status) fprintf(stderr, "visvm world sentences: %s\n", e.msg);
    if (open) vv_atomic_abort(&f);
    vv_world_scenes_free(sc, n_sc);
    return status;
}

int cmd_world(int argc, char **argv) {
    static const struct {
        const char *name;
        int (*fn)(int, char **);
        const char *help;
    } subs[] = {
        {"gen", world_gen, "generate scenes: DIR/images/*.png, scenes.jsonl, synonyms.txt, world.json"},
        {"show", world_show, "print one scene (JSON line or CLIP sentences), optionally its PNG"},
        {"sentences", world_sentences, "write each scene's true sentences and hard negatives as generate-style JSONL"},
        {"synonyms", world_synonyms, "write the class synonym table (COCO CHAIR format)"},
    };
    const int n = (int)(sizeof(subs) / sizeof(subs[0]));
    bool help = argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h") || !strcmp(argv[2], "help");
    if (!help)
        for (int i = 0; i < n; i++)
            if (!strcmp(argv[2], subs[i].name)) return subs[i].fn(argc, argv);
    FILE *f = help && argc >= 3 ? stdout : stderr;
    if (!help) fprintf(f, "visvm world: unknown subcommand '%s'\n\n", argv[2]);
    fprintf(f, "usage: visvm world SUBCOMMAND [options]   (visvm world SUBCOMMAND --help for its flags)\n\n"
               "The synthetic world: procedurally rendered scenes with exact ground truth and reference captions.\n\n"
               "subcommands:\n");
    for (int i = 0; i < n; i++) fprintf(f, "  %-10s %s\n", subs[i].name, subs[i].help);
    return help && argc >= 3 ? 0 : 2;
}
