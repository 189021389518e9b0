// cmd_demo.c - `visvm demo`: new synthetic scenes captioned by greedy decoding,
// CLIP-PRM search and VisVM search with the shipped models (the paper's VLM value
// model, and where the folder has it the value model on CLIP's features), side by side with
// hallucinated objects marked, the CHAIR table, and an HTML report with the
// images and every caption's search tree.
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "eval/world_eval.h"
#include "search/search.h"
#include "train/data.h"

#define N_SHOW 4 // the last one only with DIR/value-clip.gguf
static const int k_strats[N_SHOW] = {VV_STRAT_GREEDY, VV_STRAT_CLIP_PRM, VV_STRAT_VISVM, VV_STRAT_VISVM};
static const char *k_labels[N_SHOW] = {"greedy", "CLIP-PRM", "VisVM", "VisVM-CLIP"};

static void b64(vv_buf *out, const unsigned char *d, size_t n) {
    static const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        char q[4] = {t[v >> 18 & 63], t[v >> 12 & 63], i + 1 < n ? t[v >> 6 & 63] : '=', i + 2 < n ? t[v & 63] : '='};
        vv_buf_append(out, q, 4);
    }
}

static void html_text(vv_buf *h, const char *s, size_t n) {
    for (size_t i = 0; i < n && s[i]; i++) {
        switch (s[i]) {
        case '<': vv_buf_printf(h, "&lt;"); break;
        case '>': vv_buf_printf(h, "&gt;"); break;
        case '&': vv_buf_printf(h, "&amp;"); break;
        case '"': vv_buf_printf(h, "&quot;"); break;
        default: vv_buf_append(h, s + i, 1);
        }
    }
}

// Appends the caption with hallucinated object words marked (terminal: [*word*]
// or red when colour is on; HTML: <mark>).
static void marked(const vv_world_scene *sc, const char *cap, bool html, bool color, vv_buf *out) {
    bool present[64] = {false};
    for (int i = 0; i < sc->n_objects; i++) present[sc->obj[i].cls] = true;
    for (const char *p = cap; *p;) {
        if (!isalnum((unsigned char)*p)) {
            if (html) html_text(out, p, 1);
            else vv_buf_append(out, p, 1);
            p++;
            continue;
        }
        const char *b = p;
        while (*p && (isalnum((unsigned char)*p) || *p == '-')) p++;
        char w[64];
        size_t n = (size_t)(p - b) < sizeof(w) - 1 ? (size_t)(p - b) : sizeof(w) - 1;
        for (size_t i = 0; i < n; i++) w[i] = (char)tolower((unsigned char)b[i]);
        w[n] = 0;
        int cls = vv_world_word_class(w);
        bool hal = cls >= 0 && cls < 64 && !present[cls];
        if (hal && html) vv_buf_printf(out, "<mark>");
        if (hal && !html) vv_buf_printf(out, color ? "\x1b[1;31m" : "[*");
        if (html) html_text(out, b, (size_t)(p - b));
        else vv_buf_append(out, b, (size_t)(p - b));
        if (hal && html) vv_buf_printf(out, "</mark>");
        if (hal && !html) vv_buf_printf(out, color ? "\x1b[0m" : "*]");
    }
}

static void progress(int done, int total, double t0) {
    int w = 30, f = total ? done * w / total : w;
    fprintf(stderr, "\r[");
    for (int i = 0; i < w; i++) fputc(i < f ? '#' : '.', stderr);
    fprintf(stderr, "] %d/%d captions  %.0f s", done, total, vv_time_s() - t0);
    fflush(stderr);
}

int cmd_demo(int argc, char **argv) {
    const char *dir = "models/world", *out = "visvm-demo.html";
    int n = 6, start = 0, threads = 0, cand = 6;
    bool no_color = false;
    cli_opt opts[] = {
        {"--models", NULL, CLI_STR, &dir, "directory with vlm-*.gguf, clip.gguf, value-*.gguf", 0, -1},
        {"--n", "-n", CLI_INT, &n, "number of new scenes", 1, 1000},
        {"--start", NULL, CLI_INT, &start, "first scene of the 'fresh' split (never used in training or tuning)", 0, 999999},
        {"--candidates", "-k", CLI_INT, &cand, "candidates per search step", 2, 33},
        {"--out", "-o", CLI_STR, &out, "HTML report", 0, -1},
        {"--threads", "-t", CLI_INT, &threads, "threads; 0 = all cores", 0, 1024},
        {"--no-color", NULL, CLI_FLAG, &no_color, "mark hallucinations with [*...*] instead of colour", 0, -1},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("demo", "[options]",
                       "Captions new synthetic scenes with greedy decoding, CLIP-PRM search and VisVM search using the "
                       "shipped tiny models; prints them side by side with hallucinated objects marked, the CHAIR table, "
                       "and writes an HTML report with the images and every search tree.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 2, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    bool color = !no_color && isatty(1);
    char p1[4096], p2[4096], p3[4096], p4[4096], p5[4096], p6[4096];
    snprintf(p1, sizeof(p1), "%s/vlm-text.gguf", dir);
    snprintf(p2, sizeof(p2), "%s/vlm-mmproj.gguf", dir);
    snprintf(p3, sizeof(p3), "%s/clip.gguf", dir);
    snprintf(p4, sizeof(p4), "%s/value-text.gguf", dir);
    snprintf(p5, sizeof(p5), "%s/value-mmproj.gguf", dir);
    snprintf(p6, sizeof(p6), "%s/value-clip.gguf", dir);
    vv_error e = {0};
    vv_llama *pm = NULL;
    vv_clip *pv = NULL, *rw = NULL;
    vv_value *vm = NULL, *vm2 = NULL;
    vv_pool *pool = vv_pool_create(threads);
    vv_searcher *s = NULL, *s2 = NULL;
    vv_chair *ch = NULL;
    vv_buf html = {0}, txt = {0};
    int status = 1;
    double t0 = vv_time_s();
    if (!pool || vv_llama_load_file(p1, &pm, &e) || vv_clip_load_file(p2, VISVM_VISION_REFERENCE, &pv, &e) ||
        vv_clip_load_file(p3, VISVM_VISION_REFERENCE, &rw, &e) || vv_value_load(p4, p5, &vm, &e) || vv_world_chair(&ch, &e)) {
        fprintf(stderr, "visvm demo: %s\n", e.msg);
        goto done;
    }
    // the value model on the reward CLIP's features (README "Results"), where the folder has it
    if (access(p6, R_OK) == 0 && vv_value_load(p6, p3, &vm2, &e)) {
        fprintf(stderr, "visvm demo: %s\n", e.msg);
        goto done;
    }
    const int n_show = vm2 ? N_SHOW : N_SHOW - 1;
    vv_search_models sm = {pm, pv, rw, vm, NULL}, sm2 = {pm, pv, rw, vm2, NULL};
    if (vv_searcher_create(&sm, pool, cand, &s, &e) || (vm2 && vv_searcher_create(&sm2, pool, cand, &s2, &e))) {
        fprintf(stderr, "visvm demo: %s\n", e.msg);
        goto done;
    }
    vv_world_params wp = vv_world_default_params();
    vv_world_totals tot[N_SHOW];
    memset(tot, 0, sizeof(tot));
    int n_prompts;
    const char *const *prompts = vt_detail_prompts(&n_prompts);
    vv_buf_printf(&html, "<!doctype html><html><head><meta charset=\"utf-8\"><title>visvm demo</title><style>"
                         "body{font-family:sans-serif;max-width:1100px;margin:auto}td{vertical-align:top;padding:6px}"
                         "img{width:192px;image-rendering:pixelated}mark{background:#f99}.c{color:#080;font-weight:bold}"
                         "details{font-size:13px}table.t td,table.t th{border:1px solid #ccc;padding:4px 8px}"
                         "</style></head><body><h1>visvm demo</h1><p>New scenes from the <i>fresh</i> split, captioned by "
                         "the tiny VLM with greedy decoding, CLIP-PRM search and VisVM search (%d candidates per step; "
                         "VisVM: the paper's design, a VLM with a value head; VisVM-CLIP: a value model on the reward "
                         "CLIP's features, fitted by TD on the same data). "
                         "Hallucinated objects (absent from the scene) are <mark>marked</mark>. Open a search tree to "
                         "see every candidate sentence and its score; the chosen one is green.</p>",
                  cand);
    progress(0, n * n_show, t0);
    for (int i = 0; i < n; i++) {
        vv_world_scene sc;
        vv_image img = {0};
        uint64_t seed = vv_world_split_base(VV_WORLD_FRESH) + (uint64_t)start + (uint64_t)i;
        if (vv_world_scene_make(&wp, seed, &sc, &e) || vv_world_render(&wp, &sc, &img, NULL, &e)) {
            fprintf(stderr, "\nvisvm demo: %s\n", e.msg);
            goto done;
        }
        const char *prompt = prompts[i % n_prompts];
        vv_buf png = {0};
        vv_image_encode_png(&img, &png, &e);
        vv_buf_printf(&html, "<h3>Scene %llu (%s)</h3><table><tr><td><img src=\"data:image/png;base64,",
                      (unsigned long long)seed, vv_world_theme_name(sc.theme));
        b64(&html, (const unsigned char *)png.v, png.n);
        vv_buf_free(&png);
        vv_buf_printf(&html, "\"><br><small>objects: ");
        vv_buf_printf(&txt, "\n== scene %llu: %s, %d object%s:", (unsigned long long)seed, vv_world_theme_name(sc.theme),
                      sc.n_objects, sc.n_objects == 1 ? "" : "s");
        for (int k = 0; k < sc.n_objects; k++) {
            const vv_world_object *o = &sc.obj[k];
            vv_buf_printf(&html, "%s%s %s %s", k ? ", " : "", vv_world_size_name(o->size), vv_world_color_name(o->color),
                          vv_world_class_name(o->cls));
            vv_buf_printf(&txt, "%s %s %s %s", k ? "," : "", vv_world_size_name(o->size), vv_world_color_name(o->color),
                          vv_world_class_name(o->cls));
        }
        vv_buf_printf(&html, "<br>prompt: %s</small></td><td>", prompt);
        vv_buf_printf(&txt, "\n   prompt: %s\n", prompt);
        for (int si = 0; si < n_show; si++) {
            vv_search_params p = vv_search_default_params();
            vv_search_set_budget(&p, cand);
            p.strategy = k_strats[si];
            p.prompt = prompt;
            p.seed = 1000003u + (uint64_t)i; // the same for every strategy
            vv_search_result r;
            if (vv_search_caption(si == N_SHOW - 1 ? s2 : s, &img, &sc, &p, &r, &e)) {
                fprintf(stderr, "\nvisvm demo: %s\n", e.msg);
                vv_image_free(&img);
                vv_world_scene_free(&sc);
                goto done;
            }
            vv_caption_stats cs;
            vv_world_score_caption(ch, &sc, r.caption, &cs, NULL, &e);
            vv_world_totals_add(&tot[si], &sc, &cs);
            vv_buf_printf(&txt, "   %-10s (%d hallucinated) ", k_labels[si], cs.chair.n_halluc);
            marked(&sc, r.caption, false, color, &txt);
            vv_buf_printf(&txt, "\n");
            vv_buf_printf(&html, "<p><b>%s</b> (%d hallucinated of %d mentions, %.2f s): ", k_labels[si],
                          cs.chair.n_halluc, cs.chair.n_mentions, r.seconds);
            marked(&sc, r.caption, true, false, &html);
            vv_buf_printf(&html, "</p>");
            if (r.n_steps) {
                vv_buf_printf(&html, "<details><summary>search tree (%d steps)</summary><ol>", r.n_steps);
                for (int k = 0; k < r.n_steps; k++) {
                    vv_buf_printf(&html, "<li><ul>");
                    for (int j = 0; j < r.steps[k].n; j++) {
                        const vv_candidate *cd = &r.steps[k].cand[j];
                        vv_buf_printf(&html, "<li%s>", cd->chosen ? " class=\"c\"" : "");
                        if (cd->temp < 0) vv_buf_printf(&html, "greedy ");
                        else vv_buf_printf(&html, "T=%.2f ", cd->temp);
                        if (cd->end) vv_buf_printf(&html, "&lt;end of text&gt;");
                        else {
                            vv_buf_printf(&html, "%.4f: ", cd->score);
                            marked(&sc, cd->text, true, false, &html);
                        }
                        vv_buf_printf(&html, "</li>");
                    }
                    vv_buf_printf(&html, "</ul></li>");
                }
                vv_buf_printf(&html, "</ol></details>");
            }
            vv_search_result_free(&r);
            progress(i * n_show + si + 1, n * n_show, t0);
        }
        vv_buf_printf(&html, "</td></tr></table>");
        vv_image_free(&img);
        vv_world_scene_free(&sc);
    }
    fputc('\n', stderr);
    printf("%s\n", txt.v ? txt.v : "");
    vv_buf tab = {0};
    vv_buf_printf(&tab, "| strategy | CHAIRs | CHAIRi | recall | sentences |\n|---|---|---|---|---|\n");
    vv_buf_printf(&html, "<h2>CHAIR on these %d scenes</h2><table class=\"t\"><tr><th>strategy</th><th>CHAIRs</th>"
                         "<th>CHAIRi</th><th>recall</th><th>sentences</th></tr>", n);
    for (int si = 0; si < n_show; si++) {
        vv_buf_printf(&tab, "| %s | %.1f | %.1f | %.1f | %.2f |\n", k_labels[si], vv_chair_s(&tot[si].chair),
                      vv_chair_i(&tot[si].chair), vv_chair_recall(&tot[si].chair), (double)tot[si].sentences / n);
        vv_buf_printf(&html, "<tr><td>%s</td><td>%.1f</td><td>%.1f</td><td>%.1f</td><td>%.2f</td></tr>", k_labels[si],
                      vv_chair_s(&tot[si].chair), vv_chair_i(&tot[si].chair), vv_chair_recall(&tot[si].chair),
                      (double)tot[si].sentences / n);
    }
    vv_buf_printf(&html, "</table><p>(%d scenes are few; the README's table uses 500 test scenes.)</p></body></html>\n", n);
    printf("CHAIR on these %d scenes (the README reports 500 test scenes):\n\n%s\n", n, tab.v);
    vv_buf_free(&tab);
    if (vv_write_file_atomic(out, html.v, html.n, &e)) {
        fprintf(stderr, "visvm demo: %s\n", e.msg);
        goto done;
    }
    printf("HTML report: %s (%.0f s in all)\n", out, vv_time_s() - t0);
    status = 0;
done:
    vv_buf_free(&html);
    vv_buf_free(&txt);
    vv_searcher_free(s);
    vv_searcher_free(s2);
    vv_chair_free(ch);
    vv_value_free(vm);
    vv_value_free(vm2);
    vv_clip_free(rw);
    vv_clip_free(pv);
    vv_llama_free(pm);
    vv_pool_free(pool);
    return status;
}
