// cmd_golden.c - `visvm golden DIR`: checks the engine against a reference set
// made by llama.cpp (layout: ../shared/golden/README.md). Every shape, model
// and prompt is read from DIR/index.json; absent sections are skipped. One line
// per check with max/mean error and PASS/FAIL; exit 1 if any check fails.
//
// Thresholds (README section 8, "suggested acceptance thresholds"):
//   token ids, PNG pixels, LLaVA-1.5 preproc: exact (preproc within 1e-6);
//   LLaVA-1.6 preproc: <= 0.1% of values off by one uint8 level;
//   image embeddings: max abs <= 0.02, mean abs <= 0.003;
//   F16 text logits: max <= 0.03, mean <= 0.005, same argmax where the
//     reference margin exceeds 0.03;
//   quantized text logits: visvm replicates ggml's activation quantization, so
//     the stricter bar applies: max <= 1.0, mean <= 0.05, argmax >= 80%;
//   greedy tokens: identical up to the first step whose reference margin is
//     below the observed logit error; beyond, teacher-forced logits.
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "cli.h"
#include "gen/llava.h"
#include "gen/sampler.h"
#include "model/clip.h"
#include "model/image.h"
#include "model/llama.h"
#include "text/vocab.h"

typedef struct {
    const char *dir;
    int n_pass, n_fail;
    vv_pool *pool;
    bool verbose;
} golden;

static void line(golden *g, bool ok, const char *name, const char *fmt, ...) VV_PRINTF(4, 5);
static void line(golden *g, bool ok, const char *name, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    printf("%s  %-34s %s\n", ok ? "PASS" : "FAIL", name, buf);
    fflush(stdout);
    if (ok) g->n_pass++;
    else g->n_fail++;
}

static char *path_of(const golden *g, const char *rel) {
    vv_buf b = {0};
    if (vv_buf_printf(&b, "%s/%s", g->dir, rel)) return NULL;
    return b.v;
}

static const char *jstr(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

// Product of a JSON shape array; -1 if absent/invalid.
static int64_t jshape(const cJSON *o, const char *key, int64_t *dims, int max_dims, int *n_dims) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a)) return -1;
    int64_t p = 1;
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsNumber(it) || it->valuedouble < 0) return -1;
        if (n < max_dims && dims) dims[n] = (int64_t)it->valuedouble;
        n++;
        p *= (int64_t)it->valuedouble;
    }
    if (n_dims) *n_dims = n;
    return p;
}

// Reads a raw little-endian array of exactly n elements of `size` bytes.
static void *load_raw(golden *g, const char *rel, size_t size, int64_t n, const char *what) {
    char *p = path_of(g, rel);
    char *data = NULL;
    size_t len = 0;
    vv_error e = {0};
    if (!p || vv_read_file(p, &data, &len, &e)) {
        line(g, false, what, "cannot read %s: %s", rel, e.msg);
        free(p);
        return NULL;
    }
    free(p);
    if (n >= 0 && len != (size_t)n * size) {
        line(g, false, what, "%s has %zu bytes, expected %lld x %zu", rel, len, (long long)n, size);
        free(data);
        return NULL;
    }
    return data;
}

// Integer array from the index (e.g. "ids"); returns count or -1.
static int jints(const cJSON *o, const char *key, vv_ivec *out) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsArray(a)) return -1;
    const cJSON *it;
    cJSON_ArrayForEach(it, a) {
        if (!cJSON_IsNumber(it)) return -1;
        vv_ivec_push(out, (int32_t)it->valuedouble);
    }
    return (int)out->n;
}

typedef struct {
    double max_abs, mean_abs;
    int argmax_same, argmax_checked, rows;
} cmp_stats;

// Compares [rows, cols] arrays; argmax compared on rows whose reference margin > margin_min.
static cmp_stats compare(const float *a, const float *ref, int64_t rows, int64_t cols, double margin_min) {
    cmp_stats s = {0, 0, 0, 0, (int)rows};
    double sum = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *x = a + r * cols, *y = ref + r * cols;
        for (int64_t c = 0; c < cols; c++) {
            double d = fabs((double)x[c] - (double)y[c]);
            if (!(d <= s.max_abs)) s.max_abs = d; // NaN propagates as a failure
            sum += d;
        }
        if (vv_logit_margin(y, (int)cols) > margin_min) {
            s.argmax_checked++;
            if (vv_argmax(x, (int)cols) == vv_argmax(y, (int)cols)) s.argmax_same++;
        }
    }
    s.mean_abs = (rows * cols) != 0 ? sum / (double)(rows * cols) : 0;
    return s;
}

static bool model_is_quantized(const vv_llama *m) {
    const vv_gguf *gg = m->gguf;
    for (int64_t i = 0; i < vv_gguf_n_tensors(gg); i++) {
        const vv_tensor *t = vv_gguf_tensor(gg, i);
        if (t->type != VV_TYPE_F32 && t->type != VV_TYPE_F16 && t->type != VV_TYPE_BF16) return true;
    }
    return false;
}

typedef struct {
    double max_abs, mean_abs, min_argmax_frac;
    double margin; // argmax is compared on rows whose reference margin exceeds this
} logit_thr;

static logit_thr thresholds(const vv_llama *m) {
    if (model_is_quantized(m)) return (logit_thr){1.0, 0.05, 0.8, -1.0};
    return (logit_thr){0.03, 0.005, 1.0, 0.03};
}

static bool logits_ok(const cmp_stats *s, const logit_thr *t) {
    if (!(s->max_abs <= t->max_abs) || !(s->mean_abs <= t->mean_abs)) return false;
    return s->argmax_checked == 0 || (double)s->argmax_same >= t->min_argmax_frac * (double)s->argmax_checked;
}

// Logit comparison line.
static void logit_line(golden *g, const char *name, const cmp_stats *s, const logit_thr *t) {
    line(g, logits_ok(s, t), name, "max %.5f mean %.6f  argmax %d/%d (thr max %.3g mean %.3g)", s->max_abs, s->mean_abs,
         s->argmax_same, s->argmax_checked, t->max_abs, t->mean_abs);
}

// Teacher-forced greedy continuation: at step i our argmax is compared with
// gen[i] (up to the first step whose reference margin is below tol), then the
// reference token is fed and the resulting logits compared with gen_logits[i].
static void check_generation(golden *g, const char *tag, vv_llama_state *st, const vv_llama *m, float *last_logits,
                             const cJSON *o, double prompt_max_err, const logit_thr *thr) {
    const int nv = m->hp.n_vocab;
    int64_t dims[4] = {0};
    int nd = 0;
    int64_t n_gen = jshape(o, "gen_logits_shape", dims, 4, &nd);
    const char *gen_f = jstr(o, "gen"), *gl_f = jstr(o, "gen_logits");
    if (n_gen < 0 || !gen_f || !gl_f || nd != 2 || dims[1] != nv) {
        printf("skip  %s: no generation reference\n", tag);
        return;
    }
    int steps = (int)dims[0];
    char name[96];
    snprintf(name, sizeof(name), "%s/greedy", tag);
    int32_t *gen = load_raw(g, gen_f, 4, steps, name);
    float *ref = load_raw(g, gl_f, 4, n_gen, name);
    float *ours = malloc((size_t)n_gen * sizeof(float));
    float *cur = malloc((size_t)nv * sizeof(float));
    if (!gen || !ref || !ours || !cur) goto out;
    memcpy(cur, last_logits, (size_t)nv * sizeof(float));
    // reference margins per step: step 0 decides from the prompt's last row
    vv_ivec ours_tok = {0};
    vv_error e = {0};
    int rc = 0;
    for (int i = 0; i < steps && !rc; i++) {
        vv_ivec_push(&ours_tok, vv_argmax(cur, nv));
        rc = vv_llama_decode_seq(st, 0, &gen[i], NULL, 1, false, ours + (size_t)i * nv, &e);
        memcpy(cur, ours + (size_t)i * nv, (size_t)nv * sizeof(float));
    }
    if (rc) {
        line(g, false, name, "decode failed: %s", e.msg);
        vv_ivec_free(&ours_tok);
        goto out;
    }
    cmp_stats s = compare(ours, ref, steps, nv, thr->margin);
    snprintf(name, sizeof(name), "%s/gen_logits", tag);
    logit_line(g, name, &s, thr);
    // token comparison up to the first near-tie
    double tol = fmax(fmax(prompt_max_err, s.max_abs), 1e-6);
    const cJSON *margins = cJSON_GetObjectItemCaseSensitive(o, "greedy_margins");
    int compared = 0, same = 0, first_diff = -1;
    for (int i = 0; i < steps; i++) {
        double mg = INFINITY;
        const cJSON *mi = cJSON_IsArray(margins) ? cJSON_GetArrayItem(margins, i) : NULL;
        if (mi && cJSON_IsNumber(mi)) mg = mi->valuedouble;
        else if (i > 0) mg = vv_logit_margin(ref + (size_t)(i - 1) * nv, nv);
        if (mg < tol) break;
        compared++;
        if (ours_tok.v[i] == gen[i]) same++;
        else if (first_diff < 0) first_diff = i;
    }
    snprintf(name, sizeof(name), "%s/greedy_tokens", tag);
    line(g, same == compared, name, "%d/%d identical (compared up to the first margin below %.2g; %d steps)", same,
         compared, tol, steps);
    vv_ivec_free(&ours_tok);
out:
    free(gen);
    free(ref);
    free(ours);
    free(cur);
}

static vv_llama *load_model(golden *g, const char *rel, const char *tag) {
    char *p = path_of(g, rel);
    vv_llama *m = NULL;
    vv_error e = {0};
    if (vv_llama_load_file(p, &m, &e)) line(g, false, tag, "cannot load %s: %s", rel, e.msg);
    free(p);
    return m;
}

static vv_llama_state *new_state(golden *g, const vv_llama *m, int n_ctx, const char *tag) {
    vv_llama_state *st = NULL;
    vv_error e = {0};
    // one batch for the whole prompt, as the reference
    vv_llama_state_params sp = {n_ctx, 1, n_ctx, g->pool};
    if (vv_llama_state_create(m, &sp, &st, &e)) line(g, false, tag, "cannot create state: %s", e.msg);
    return st;
}

// Tokenizer vectors of llama.cpp's test-tokenizer-0 (vocab_test section).
static void check_vocab_test(golden *g, const cJSON *vt) {
    const char *gg = jstr(vt, "gguf"), *inp = jstr(vt, "inp"), *outp = jstr(vt, "out");
    if (!gg || !inp || !outp) return;
    char *p = path_of(g, gg);
    vv_gguf *f = NULL;
    vv_vocab *v = NULL;
    vv_error e = {0};
    char *in = NULL, *out = NULL;
    int passed = 0, total = 0;
    if (vv_gguf_open(p, &f, &e) || vv_vocab_load(f, &v, &e)) {
        line(g, false, "tokenizer/vocab_test", "cannot load %s: %s", gg, e.msg);
        goto done;
    }
    char *pi = path_of(g, inp), *po = path_of(g, outp);
    int r1 = vv_read_file(pi, &in, NULL, &e), r2 = r1 ? 0 : vv_read_file(po, &out, NULL, &e);
    free(pi);
    free(po);
    if (r1 || r2) {
        line(g, false, "tokenizer/vocab_test", "cannot read test vectors: %s", e.msg);
        goto done;
    }
    const char *sep = "\n__ggml_vocab_test__\n";
    char *s = in, *ol = out;
    for (;;) {
        char *end = strstr(s, sep);
        if (!end) break;
        char *nl = strchr(ol, '\n');
        if (!nl) break;
        *nl = 0;
        vv_ivec ids = {0}, want = {0};
        vv_tokenize(v, s, (size_t)(end - s), false, false, &ids, &e);
        for (char *q = ol; *q;) {
            char *qe;
            long x = strtol(q, &qe, 10);
            if (qe == q) break;
            vv_ivec_push(&want, (int32_t)x);
            q = qe;
        }
        total++;
        if (ids.n == want.n && (ids.n == 0 || !memcmp(ids.v, want.v, ids.n * sizeof(int32_t)))) passed++;
        else if (g->verbose) printf("      mismatch on case %d: \"%.*s\"\n", total, (int)(end - s), s);
        vv_ivec_free(&ids);
        vv_ivec_free(&want);
        s = end + strlen(sep);
        ol = nl + 1;
    }
    line(g, total > 0 && passed == total, "tokenizer/vocab_test", "%d/%d cases identical", passed, total);
done:
    free(p);
    free(in);
    free(out);
    vv_vocab_free(v);
    vv_gguf_close(f);
}

static void check_tokenize(golden *g, const cJSON *arr, const char *model_rel) {
    if (!model_rel) {
        printf("skip  tokenize: no model in the index to take the vocabulary from\n");
        return;
    }
    char *p = path_of(g, model_rel);
    vv_gguf *f = NULL;
    vv_vocab *v = NULL;
    vv_error e = {0};
    if (vv_gguf_open(p, &f, &e) || vv_vocab_load(f, &v, &e)) {
        line(g, false, "tokenize", "cannot load vocabulary of %s: %s", model_rel, e.msg);
        goto done;
    }
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        char name[64];
        snprintf(name, sizeof(name), "tokenize/%d", i++);
        const char *tf = jstr(it, "text_file"), *idf = jstr(it, "file");
        vv_ivec want = {0}, ids = {0};
        char *text = NULL;
        size_t len = 0;
        char *tp = tf ? path_of(g, tf) : NULL;
        if (tp && !vv_read_file(tp, &text, &len, &e)) {
            if (jints(it, "ids", &want) < 0 && idf) {
                cJSON *nt = cJSON_GetObjectItemCaseSensitive(it, "n_tokens");
                int64_t n = cJSON_IsNumber(nt) ? (int64_t)nt->valuedouble : -1;
                int32_t *r = load_raw(g, idf, 4, n, name);
                if (r) vv_ivec_append(&want, r, (size_t)n);
                free(r);
            }
            vv_tokenize(v, text, len, true, true, &ids, &e);
            bool ok = ids.n == want.n && (ids.n == 0 || !memcmp(ids.v, want.v, ids.n * 4));
            line(g, ok, name, "%zu tokens, %s", ids.n, ok ? "identical" : "DIFFERENT");
        } else {
            line(g, false, name, "cannot read text: %s", e.msg);
        }
        free(tp);
        free(text);
        vv_ivec_free(&want);
        vv_ivec_free(&ids);
    }
done:
    free(p);
    vv_vocab_free(v);
    vv_gguf_close(f);
}

static void check_text(golden *g, const cJSON *text) {
    const char *pf = jstr(text, "prompt_file");
    const cJSON *models = cJSON_GetObjectItemCaseSensitive(text, "models");
    if (!pf || !cJSON_IsObject(models)) return;
    char *pp = path_of(g, pf), *prompt = NULL;
    size_t plen = 0;
    vv_error e = {0};
    if (vv_read_file(pp, &prompt, &plen, &e)) {
        line(g, false, "text", "cannot read prompt: %s", e.msg);
        free(pp);
        return;
    }
    free(pp);
    vv_ivec ref_ids = {0};
    if (jints(text, "ids", &ref_ids) < 0) {
        const char *tf = jstr(text, "tokens_file");
        printf("note  text: no ids in the index%s\n", tf ? ", using tokens_file" : "");
    }
    const cJSON *mo;
    cJSON_ArrayForEach(mo, models) {
        const char *q = mo->string, *mrel = jstr(mo, "model"), *lf = jstr(mo, "logits");
        char tag[96], name[128];
        snprintf(tag, sizeof(tag), "text/%s", q);
        if (!mrel || !lf) continue;
        vv_llama *m = load_model(g, mrel, tag);
        if (!m) continue;
        vv_ivec ids = {0};
        vv_tokenize(m->vocab, prompt, plen, true, true, &ids, &e);
        snprintf(name, sizeof(name), "%s/tokens", tag);
        if (ref_ids.n) {
            bool ok = ids.n == ref_ids.n && !memcmp(ids.v, ref_ids.v, ids.n * 4);
            line(g, ok, name, "%zu prompt tokens %s", ids.n, ok ? "identical" : "DIFFERENT");
        }
        const vv_ivec *feed = ref_ids.n ? &ref_ids : &ids;
        int64_t dims[4] = {0};
        int nd = 0;
        int64_t nl = jshape(mo, "logits_shape", dims, 4, &nd);
        if (nl < 0 || nd != 2 || dims[1] != m->hp.n_vocab || dims[0] != (int64_t)feed->n) {
            line(g, false, tag, "logits_shape does not match the prompt / model vocabulary");
            vv_ivec_free(&ids);
            vv_llama_free(m);
            continue;
        }
        float *ref = load_raw(g, lf, 4, nl, tag);
        float *ours = malloc((size_t)nl * sizeof(float));
        vv_llama_state *st = new_state(g, m, (int)feed->n + 64, tag);
        logit_thr thr = thresholds(m);
        if (ref && ours && st) {
            if (vv_llama_decode_seq(st, 0, feed->v, NULL, (int)feed->n, true, ours, &e)) {
                line(g, false, tag, "decode failed: %s", e.msg);
            } else {
                cmp_stats s = compare(ours, ref, dims[0], dims[1], thr.margin);
                snprintf(name, sizeof(name), "%s/logits", tag);
                logit_line(g, name, &s, &thr);
                check_generation(g, tag, st, m, ours + (size_t)(dims[0] - 1) * dims[1], mo, s.max_abs, &thr);
            }
        }
        free(ref);
        free(ours);
        vv_llama_state_free(st);
        vv_ivec_free(&ids);
        vv_llama_free(m);
    }
    vv_ivec_free(&ref_ids);
    free(prompt);
}

// Decodes an image file; compares with the golden pixels when given.
static void check_images(golden *g, const cJSON *images) {
    const cJSON *io;
    cJSON_ArrayForEach(io, images) {
        const char *key = io->string, *mp = jstr(io, "mmproj"), *imf = jstr(io, "image");
        char tag[96], name[128];
        snprintf(tag, sizeof(tag), "image/%s", key);
        if (!mp || !imf) continue;
        vv_error e = {0};
        vv_clip *c = NULL;
        char *p = path_of(g, mp);
        int rc = vv_clip_load_file(p, VISVM_VISION_LLAMACPP, &c, &e);
        free(p);
        if (rc) {
            line(g, false, tag, "cannot load %s: %s", mp, e.msg);
            continue;
        }
        vv_image img = {0}, ref_img = {0};
        p = path_of(g, imf);
        rc = vv_image_load_file(p, &img, &e);
        free(p);
        int64_t dims[4] = {0};
        int nd = 0;
        const char *rf = jstr(io, "rgb_u8");
        int64_t n_rgb = jshape(io, "rgb_u8_shape", dims, 4, &nd);
        snprintf(name, sizeof(name), "%s/pixels", tag);
        if (rc) {
            line(g, false, name, "cannot decode %s: %s", imf, e.msg);
        } else if (rf && n_rgb > 0 && nd == 3) {
            uint8_t *ref = load_raw(g, rf, 1, n_rgb, name);
            if (ref) {
                ref_img.w = (int)dims[1];
                ref_img.h = (int)dims[0];
                ref_img.rgb = ref;
                int maxd = 0;
                int64_t ndiff = 0;
                bool same_size = img.w == ref_img.w && img.h == ref_img.h;
                for (int64_t i = 0; same_size && i < n_rgb; i++) {
                    int d = abs((int)img.rgb[i] - (int)ref[i]);
                    if (d) ndiff++;
                    if (d > maxd) maxd = d;
                }
                line(g, same_size && maxd == 0, name, "%dx%d, max diff %d, %lld of %lld values differ", img.w, img.h,
                     maxd, (long long)ndiff, (long long)n_rgb);
            }
        }
        // preprocessing from the reference pixels (isolates decoder differences)
        const vv_image *src = ref_img.rgb ? &ref_img : &img;
        vv_image_batch b = {0};
        const char *ppf = jstr(io, "preproc");
        int64_t n_pre = jshape(io, "preproc_shape", dims, 4, &nd);
        snprintf(name, sizeof(name), "%s/preproc", tag);
        if (src->rgb && ppf && n_pre > 0 && nd == 4) {
            if (vv_preprocess(src, &c->pre, &b, &e)) {
                line(g, false, name, "preprocessing failed: %s", e.msg);
            } else if (b.n != dims[0] || b.size != dims[1] || dims[2] != dims[1] || dims[3] != 3) {
                line(g, false, name, "got %d images of %d px, reference [%lld, %lld, %lld, %lld]", b.n, b.size,
                     (long long)dims[0], (long long)dims[1], (long long)dims[2], (long long)dims[3]);
            } else {
                float *ref = load_raw(g, ppf, 4, n_pre, name);
                if (ref) {
                    int64_t off1 = 0, bad = 0;
                    double maxd = 0;
                    for (int64_t i = 0; i < n_pre; i++) {
                        double d = fabs((double)b.data[i] - ref[i]);
                        if (d > maxd) maxd = d;
                        double level = 1.0 / (255.0 * c->pre.std[i % 3]);
                        if (d > 1e-6) {
                            if (d <= level * 1.01 + 1e-6) off1++;
                            else bad++;
                        }
                    }
                    // clip.cpp's bicubic (anyres) is reproducible only up to FMA contraction
                    double allowed = c->pre.anyres ? 0.001 * (double)n_pre : 0;
                    line(g, bad == 0 && off1 <= allowed, name, "max %.3g; %lld of %lld values one level off (allowed %.0f)",
                         maxd, (long long)off1, (long long)n_pre, allowed);
                    const cJSON *gwh = cJSON_GetObjectItemCaseSensitive(io, "anyres_grid_wh");
                    if (cJSON_IsArray(gwh) && cJSON_GetArraySize(gwh) == 2) {
                        int gw = cJSON_GetArrayItem(gwh, 0)->valueint, gh = cJSON_GetArrayItem(gwh, 1)->valueint;
                        snprintf(name, sizeof(name), "%s/grid", tag);
                        line(g, gw == b.grid_w && gh == b.grid_h, name, "%dx%d (reference %dx%d)", b.grid_w, b.grid_h, gw, gh);
                    }
                    // tower + projector from the reference preprocessed tensor
                    const char *cef = jstr(io, "crop_embd");
                    int64_t cdims[4];
                    int cnd;
                    int64_t n_ce = jshape(io, "crop_embd_shape", cdims, 4, &cnd);
                    snprintf(name, sizeof(name), "%s/crop_embd", tag);
                    if (cef && n_ce > 0 && cnd == 3 && cdims[0] == dims[0] && cdims[1] == c->n_patches &&
                        cdims[2] == c->n_embd_out) {
                        float *rce = load_raw(g, cef, 4, n_ce, name);
                        float *ce = malloc((size_t)n_ce * sizeof(float));
                        vv_clip_work w = {0};
                        int rc2 = 0;
                        size_t per_img = (size_t)dims[1] * dims[2] * 3, per_out = (size_t)cdims[1] * cdims[2];
                        for (int64_t k = 0; rce && ce && k < cdims[0] && !rc2; k++)
                            rc2 = vv_clip_encode(c, g->pool, ref + k * per_img, ce + k * per_out, &w, &e);
                        if (rce && ce) {
                            if (rc2) line(g, false, name, "encode failed: %s", e.msg);
                            else {
                                cmp_stats s = compare(ce, rce, cdims[0] * cdims[1], cdims[2], INFINITY);
                                line(g, s.max_abs <= 0.02 && s.mean_abs <= 0.003, name,
                                     "max %.5f mean %.6f (thr 0.02/0.003)", s.max_abs, s.mean_abs);
                            }
                        }
                        vv_clip_work_free(&w);
                        free(rce);
                        free(ce);
                    } else if (cef) {
                        line(g, false, name, "crop_embd_shape does not match the model");
                    }
                    free(ref);
                }
            }
        }
        vv_image_batch_free(&b);
        // end to end: our decoder, preprocessing, tower, projector and assembly
        const char *ef = jstr(io, "embd");
        int64_t n_e = jshape(io, "embd_shape", dims, 4, &nd);
        snprintf(name, sizeof(name), "%s/embd", tag);
        if (img.rgb && ef && n_e > 0 && nd == 2) {
            float *emb = NULL;
            int n_tok = 0;
            vv_image_batch b2 = {0};
            if (vv_preprocess(&img, &c->pre, &b2, &e) || vv_clip_embed(c, g->pool, &b2, &emb, &n_tok, NULL, &e)) {
                line(g, false, name, "failed: %s", e.msg);
            } else if (n_tok != dims[0] || c->n_embd_out != dims[1]) {
                line(g, false, name, "%d x %d embeddings, reference %lld x %lld", n_tok, c->n_embd_out,
                     (long long)dims[0], (long long)dims[1]);
            } else {
                float *re = load_raw(g, ef, 4, n_e, name);
                if (re) {
                    cmp_stats s = compare(emb, re, dims[0], dims[1], INFINITY);
                    line(g, s.max_abs <= 0.02 && s.mean_abs <= 0.003, name,
                         "%d tokens, max %.5f mean %.6f (thr 0.02/0.003)", n_tok, s.max_abs, s.mean_abs);
                }
                free(re);
            }
            vv_afree(emb);
            vv_image_batch_free(&b2);
        }
        free(ref_img.rgb);
        vv_image_free(&img);
        vv_clip_free(c);
    }
}

static void check_llava(golden *g, const cJSON *llava) {
    const char *pf = jstr(llava, "prompt_file");
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(llava, "runs");
    if (!pf || !cJSON_IsObject(runs)) return;
    char *pp = path_of(g, pf), *prompt = NULL;
    vv_error e = {0};
    if (vv_read_file(pp, &prompt, NULL, &e)) {
        line(g, false, "llava", "cannot read prompt: %s", e.msg);
        free(pp);
        return;
    }
    free(pp);
    const cJSON *ro;
    cJSON_ArrayForEach(ro, runs) {
        char tag[96], name[128];
        snprintf(tag, sizeof(tag), "llava/%s", ro->string);
        const char *mrel = jstr(ro, "model"), *mp = jstr(ro, "mmproj"), *imf = jstr(ro, "image"), *lf = jstr(ro, "logits");
        if (!mrel || !mp || !imf || !lf) continue;
        vv_llama *m = load_model(g, mrel, tag);
        vv_clip *c = NULL;
        char *p = path_of(g, mp);
        if (m && vv_clip_load_file(p, VISVM_VISION_LLAMACPP, &c, &e)) line(g, false, tag, "cannot load %s: %s", mp, e.msg);
        free(p);
        vv_ivec pre = {0}, post = {0}, rpre = {0}, rpost = {0};
        float *emb = NULL, *ours = NULL, *ref = NULL;
        vv_llama_state *st = NULL;
        if (!m || !c) goto next;
        bool has_img = false;
        if (vv_llava_tokenize(m->vocab, prompt, &pre, &post, &has_img, &e)) {
            line(g, false, tag, "tokenize failed: %s", e.msg);
            goto next;
        }
        if (jints(ro, "ids_pre", &rpre) >= 0 && jints(ro, "ids_post", &rpost) >= 0) {
            bool ok = pre.n == rpre.n && post.n == rpost.n && !memcmp(pre.v, rpre.v, pre.n * 4) &&
                      !memcmp(post.v, rpost.v, post.n * 4);
            snprintf(name, sizeof(name), "%s/tokens", tag);
            line(g, ok, name, "%zu + <image> + %zu tokens %s", pre.n, post.n, ok ? "identical" : "DIFFERENT");
        }
        {
            vv_image img = {0};
            vv_image_batch b = {0};
            int n_tok = 0;
            p = path_of(g, imf);
            int rc = vv_image_load_file(p, &img, &e);
            free(p);
            if (!rc) rc = vv_preprocess(&img, &c->pre, &b, &e);
            if (!rc) rc = vv_clip_embed(c, g->pool, &b, &emb, &n_tok, NULL, &e);
            vv_image_free(&img);
            vv_image_batch_free(&b);
            if (rc) {
                line(g, false, tag, "image embedding failed: %s", e.msg);
                goto next;
            }
            cJSON *ni = cJSON_GetObjectItemCaseSensitive(ro, "n_image_pos");
            if (cJSON_IsNumber(ni) && ni->valueint != n_tok) {
                line(g, false, tag, "%d image positions, reference %d", n_tok, ni->valueint);
                goto next;
            }
            int64_t dims[4] = {0};
            int nd = 0;
            int64_t nl = jshape(ro, "logits_shape", dims, 4, &nd);
            const vv_ivec *fp = rpre.n ? &rpre : &pre, *fq = rpre.n ? &rpost : &post;
            if (nl < 0 || nd != 2 || dims[1] != m->hp.n_vocab || dims[0] != (int64_t)(fp->n + n_tok + fq->n)) {
                line(g, false, tag, "logits_shape does not match");
                goto next;
            }
            ref = load_raw(g, lf, 4, nl, tag);
            ours = malloc((size_t)nl * sizeof(float));
            st = new_state(g, m, (int)dims[0] + 64, tag);
            if (!ref || !ours || !st) goto next;
            float *last = malloc((size_t)m->hp.n_vocab * sizeof(float));
            if (!last) goto next;
            if (vv_llava_prefill(st, 0, fp->v, (int)fp->n, emb, n_tok, fq->v, (int)fq->n, last, ours, &e)) {
                line(g, false, tag, "prefill failed: %s", e.msg);
            } else {
                logit_thr thr = thresholds(m);
                cmp_stats s = compare(ours, ref, dims[0], dims[1], thr.margin);
                snprintf(name, sizeof(name), "%s/logits", tag);
                logit_line(g, name, &s, &thr);
                check_generation(g, tag, st, m, last, ro, s.max_abs, &thr);
            }
            free(last);
        }
    next:
        vv_llama_state_free(st);
        free(ref);
        free(ours);
        vv_afree(emb);
        vv_ivec_free(&pre);
        vv_ivec_free(&post);
        vv_ivec_free(&rpre);
        vv_ivec_free(&rpost);
        vv_clip_free(c);
        vv_llama_free(m);
    }
    free(prompt);
}

int cmd_golden(int argc, char **argv) {
    int threads = 0;
    bool verbose = false;
    const char *convert = NULL;
    cli_opt opts[] = {
        {"--threads", "-t", CLI_INT, &threads, "threads; 0 = all cores", 0, 1024},
        {"--verbose", "-v", CLI_FLAG, &verbose, "print details of mismatches", 0, -1},
        {"--convert", NULL, CLI_STR, &convert,
         "Hugging Face sets: convert each checkpoint to GGUF (f32 | f16) first and check the GGUF files", 0, -1},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse("golden", "DIR [options]",
                       "Checks tokenizer, text logits, greedy tokens, decoded pixels, preprocessing, image embeddings and "
                       "full LLaVA prompts against DIR/index.json (a llama.cpp reference set), or every array of a Hugging "
                       "Face reference set (index.json arrays + facts; --convert to check GGUF conversions). Exit 1 if any "
                       "check fails.",
                       opts, 3, argc, argv, 2, pos, 1, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (n_pos != 1) {
        fprintf(stderr, "visvm golden: expected the reference directory (see --help)\n");
        return 2;
    }
    golden g = {pos[0], 0, 0, NULL, verbose};
    char *ip = path_of(&g, "index.json"), *js = NULL;
    vv_error e = {0};
    if (vv_read_file(ip, &js, NULL, &e)) {
        fprintf(stderr, "visvm golden: %s\n", e.msg);
        free(ip);
        return 2;
    }
    free(ip);
    cJSON *idx = cJSON_Parse(js);
    free(js);
    if (!cJSON_IsObject(idx)) {
        fprintf(stderr, "visvm golden: %s/index.json is not valid JSON\n", g.dir);
        cJSON_Delete(idx);
        return 2;
    }
    if (cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(idx, "arrays")) &&
        cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(idx, "facts"))) { // Hugging Face layout (cmd_golden_hf.c)
        rc = cmd_golden_hf(g.dir, idx, threads, verbose, convert);
        cJSON_Delete(idx);
        return rc;
    }
    if (convert) {
        fprintf(stderr, "visvm golden: --convert applies to Hugging Face reference sets (index.json with arrays and facts)\n");
        cJSON_Delete(idx);
        return 2;
    }
    g.pool = vv_pool_create(threads);
    double t0 = vv_time_s();
    const cJSON *sec;
    if ((sec = cJSON_GetObjectItemCaseSensitive(idx, "vocab_test"))) check_vocab_test(&g, sec);
    if ((sec = cJSON_GetObjectItemCaseSensitive(idx, "tokenize")) && cJSON_IsArray(sec)) {
        // vocabulary: the first text model of the set, else the first LLaVA run's model
        const char *mrel = NULL;
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(idx, "text"), *ms = t ? cJSON_GetObjectItemCaseSensitive(t, "models") : NULL;
        if (ms && ms->child) mrel = jstr(ms->child, "model");
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(idx, "llava"), *rs = l ? cJSON_GetObjectItemCaseSensitive(l, "runs") : NULL;
        if (!mrel && rs && rs->child) mrel = jstr(rs->child, "model");
        check_tokenize(&g, sec, mrel);
    }
    if ((sec = cJSON_GetObjectItemCaseSensitive(idx, "text"))) check_text(&g, sec);
    if ((sec = cJSON_GetObjectItemCaseSensitive(idx, "image")) && cJSON_IsObject(sec)) check_images(&g, sec);
    if ((sec = cJSON_GetObjectItemCaseSensitive(idx, "llava"))) check_llava(&g, sec);
    cJSON_Delete(idx);
    vv_pool_free(g.pool);
    printf("golden: %d passed, %d failed (%.1f s)\n", g.n_pass, g.n_fail, vv_time_s() - t0);
    if (g.n_pass + g.n_fail == 0) {
        fprintf(stderr, "visvm golden: no checks found in %s/index.json\n", g.dir);
        return 1;
    }
    return g.n_fail ? 1 : 0;
}
