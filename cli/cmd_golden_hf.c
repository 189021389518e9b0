// cmd_golden_hf.c - `visvm golden DIR` for a Hugging Face reference set
// (layout: ../shared/golden-hf/README.md): DIR/index.json has "arrays"
// (file, dtype, shape of every reference) and "facts" (texts, images, value
// cases). visvm computes every array it knows from the checkpoints in DIR
// (a LLaVA-NeXT directory and a VisVM value directory, found by their
// config.json) and then checks each listed array, one line per array:
// int32 arrays (ids, masks, sizes, uint8 images) exactly, float arrays within
// the README's float32 tolerances (pixel values 1e-6, logits 2e-4, everything
// else 1e-4). An array visvm does not compute is a FAIL. Exit 1 on any FAIL.
//
// With --convert f32|f16 each checkpoint is first converted by `visvm convert`
// into a temporary directory and the checks run on the GGUF files
// (vv_hf_load_gguf: the same HF-exact functions over the GGUF tensors). F32
// keeps the float32 tolerances; F16 uses the F16 bars of
// ../shared/golden/README.md (logits 0.03, every other float array 0.02;
// pixel values, being computed before any weight, stay at 1e-6).
#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "cli.h"
#include "model/hf.h"
#include "model/hf_convert.h"
#include <unistd.h>

typedef struct {
    char *name;
    bool is_int;
    int64_t n;
    float *f;
    int32_t *i;
} computed;

typedef struct {
    const char *dir;
    vv_pool *pool;
    computed *c;
    int n_c;
    int n_pass, n_fail;
    bool verbose;
    int convert;          // -1: safetensors; else the GGUF weight type checked
    const char *tmp;      // temporary directory of the conversions
} hfg;

// Records a computed array (float or int32) under its reference name.
static void put(hfg *g, const char *name, const void *x, int64_t n, bool is_int) {
    computed *c = realloc(g->c, (size_t)(g->n_c + 1) * sizeof(computed));
    if (!c) return;
    g->c = c;
    computed *t = &g->c[g->n_c];
    memset(t, 0, sizeof(*t));
    const size_t es = is_int ? sizeof(int32_t) : sizeof(float);
    void *d = malloc((size_t)(n > 0 ? n : 1) * es);
    t->name = vv_strdup(name);
    t->is_int = is_int;
    t->n = n;
    if (!t->name || !d) {
        free(t->name);
        free(d);
        return;
    }
    memcpy(d, x, (size_t)n * es);
    if (is_int) t->i = d;
    else t->f = d;
    g->n_c++;
}
static void put_f(hfg *g, const char *name, const float *x, int64_t n) { put(g, name, x, n, false); }
static void put_i(hfg *g, const char *name, const int32_t *x, int64_t n) { put(g, name, x, n, true); }

static void put_img(hfg *g, const char *name, const vv_image *im) {
    int64_t n = (int64_t)im->w * im->h * 3;
    int32_t *v = malloc((size_t)(n > 0 ? n : 1) * sizeof(int32_t));
    if (!v) return;
    for (int64_t k = 0; k < n; k++) v[k] = im->rgb[k];
    put_i(g, name, v, n);
    free(v);
}

static void fail_line(hfg *g, const char *name, const char *msg) {
    printf("FAIL  %-34s %s\n", name, msg);
    g->n_fail++;
}

static char *pathf(const char *a, const char *b) {
    vv_buf p = {0};
    if (vv_buf_printf(&p, "%s/%s", a, b)) return NULL;
    return p.v;
}

static int load_image(hfg *g, const char *rel, vv_image *img, const char *tag) {
    char *p = pathf(g->dir, rel);
    vv_error e = {0};
    int rc = p ? vv_image_load_file(p, img, &e) : VISVM_ERR_NOMEM;
    free(p);
    if (rc) {
        char m[600];
        snprintf(m, sizeof(m), "cannot load %s: %s", rel, e.msg);
        fail_line(g, tag, m);
    }
    return rc;
}

// Runs the engine's paged-KV decoder over embeddings: logits/hidden of every row.
static int llama_all(const vv_hf_llava *m, vv_pool *pool, const float *embd, int n, float *logits, float *hidden,
                     vv_error *e) {
    vv_llama_state *st = NULL;
    vv_llama_state_params sp = {n + 64, 1, 512, pool};
    int rc = vv_llama_state_create(m->lm, &sp, &st, e);
    if (rc) return rc;
    bool *out = malloc((size_t)n);
    if (!out) {
        vv_llama_state_free(st);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    memset(out, 1, (size_t)n);
    int seq = 0;
    vv_llama_batch b = {n, NULL, embd, 1, &seq, &n, out};
    rc = vv_llama_decode(st, &b, logits, hidden, e);
    free(out);
    vv_llama_state_free(st);
    return rc;
}

// Everything for one image of the base model: preprocessing, tower, packing,
// prompt, logits; greedy decoding when n_greedy > 0.
static void run_image(hfg *g, const vv_hf_llava *m, int idx, const char *file, const char *prompt, int n_greedy) {
    char tag[64], nm[96];
    snprintf(tag, sizeof(tag), "img%d", idx);
    vv_image img = {0};
    if (load_image(g, file, &img, tag)) return;
    vv_error e = {0};
    vv_hf_pixels px = {0};
    vv_hf_preproc_debug dbg = {0};
    float *embd0 = NULL, *sel = NULL, *proj = NULL, *packed = NULL, *embeds = NULL, *logits = NULL, *hidden = NULL;
    vv_ivec ids = {0};
    vv_buf chat = {0};
    int n_tok = 0, rc;
    if ((rc = vv_hf_preprocess(&img, &m->pre, &px, &dbg, &e))) goto fail;
#define NM(s) (snprintf(nm, sizeof(nm), "img%d_%s", idx, s), nm)
    const int S = px.size, G = m->v_grid, npos = 1 + G * G, Dv = m->v_dim, D = m->n_embd;
    const int T = m->drop_cls ? G * G : npos;
    put_f(g, NM("pixel_values"), px.data, (int64_t)px.n * 3 * S * S);
    int32_t sizes[2] = {px.orig_h, px.orig_w};
    put_i(g, NM("image_sizes"), sizes, 2);
    put_img(g, NM("anyres_resized_u8"), &dbg.resized);
    put_img(g, NM("anyres_padded_u8"), &dbg.padded);
    put_img(g, NM("base_resized_u8"), &dbg.base);
    embd0 = malloc((size_t)px.n * npos * Dv * sizeof(float));
    sel = malloc((size_t)px.n * npos * Dv * sizeof(float));
    proj = malloc((size_t)px.n * T * D * sizeof(float));
    if (!embd0 || !sel || !proj) {
        rc = vv_err(&e, VISVM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = vv_hf_vision(m, g->pool, &px, embd0, sel, proj, &e))) goto fail;
    put_f(g, NM("clip_embeddings_preln"), embd0, (int64_t)px.n * npos * Dv);
    put_f(g, NM("clip_selected_layer"), sel, (int64_t)px.n * npos * Dv);
    put_f(g, NM("projected_features"), proj, (int64_t)px.n * T * D);
    if ((rc = vv_hf_pack(m, &px, proj, &packed, &n_tok, &e))) goto fail;
    put_f(g, NM("packed_image_features"), packed, (int64_t)n_tok * D);
    if ((rc = vv_hf_tokenize(m, prompt, n_tok, &ids, &e))) goto fail;
    const int L = (int)ids.n, V = m->lm->hp.n_vocab;
    put_i(g, NM("input_ids"), ids.v, L);
    {
        int32_t *ones = malloc((size_t)L * sizeof(int32_t));
        if (ones) {
            for (int i = 0; i < L; i++) ones[i] = 1;
            put_i(g, NM("attention_mask"), ones, L);
            free(ones);
        }
    }
    embeds = malloc((size_t)L * D * sizeof(float));
    logits = malloc((size_t)L * V * sizeof(float));
    hidden = malloc((size_t)L * D * sizeof(float));
    if (!embeds || !logits || !hidden) {
        rc = vv_err(&e, VISVM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = vv_hf_embed(m, ids.v, L, packed, n_tok, embeds, &e))) goto fail;
    put_f(g, NM("inputs_embeds"), embeds, (int64_t)L * D);
    if ((rc = llama_all(m, g->pool, embeds, L, logits, hidden, &e))) goto fail;
    put_f(g, NM("logits"), logits, (int64_t)L * V);
    put_f(g, NM("hidden_last"), hidden, (int64_t)L * D);
    if (n_greedy > 0) {
        // greedy with the KV cache: prefill, then one token at a time
        vv_llama_state *st = NULL;
        vv_llama_state_params sp = {L + n_greedy + 64, 1, 512, g->pool};
        float *step = malloc((size_t)n_greedy * V * sizeof(float));
        int32_t *gen = malloc((size_t)n_greedy * sizeof(int32_t));
        float *full = malloc((size_t)(L + n_greedy) * V * sizeof(float));
        float *fe = malloc((size_t)(L + n_greedy) * D * sizeof(float));
        int32_t *fids = malloc((size_t)(L + n_greedy) * sizeof(int32_t));
        if (!step || !gen || !full || !fe || !fids) rc = vv_err(&e, VISVM_ERR_NOMEM, "out of memory");
        if (!rc) rc = vv_llama_state_create(m->lm, &sp, &st, &e);
        if (!rc) rc = vv_llama_decode_seq(st, 0, NULL, embeds, L, false, step, &e);
        for (int t = 0; t < n_greedy && !rc; t++) {
            const float *lg = step + (size_t)t * V;
            int best = 0;
            for (int j = 1; j < V; j++)
                if (lg[j] > lg[best]) best = j;
            gen[t] = best;
            if (t + 1 < n_greedy) rc = vv_llama_decode_seq(st, 0, &gen[t], NULL, 1, false, step + (size_t)(t + 1) * V, &e);
        }
        vv_llama_state_free(st);
        if (!rc) {
            put_i(g, NM("greedy_new_ids"), gen, n_greedy);
            put_f(g, NM("greedy_step_logits"), step, (int64_t)n_greedy * V);
            // teacher-forced: one forward over prompt + generated ids
            memcpy(fids, ids.v, (size_t)L * sizeof(int32_t));
            memcpy(fids + L, gen, (size_t)n_greedy * sizeof(int32_t));
            put_i(g, NM("fullseq_ids"), fids, L + n_greedy);
            rc = vv_hf_embed(m, fids, L + n_greedy, packed, n_tok, fe, &e);
            if (!rc) rc = llama_all(m, g->pool, fe, L + n_greedy, full, NULL, &e);
            if (!rc) put_f(g, NM("fullseq_logits"), full, (int64_t)(L + n_greedy) * V);
        }
        free(step);
        free(gen);
        free(full);
        free(fe);
        free(fids);
        if (rc) goto fail;
    }
#undef NM
    goto done;
fail: {
    char msg[600];
    snprintf(msg, sizeof(msg), "%s", e.msg);
    fail_line(g, tag, msg);
}
done:
    vv_image_free(&img);
    vv_hf_pixels_free(&px);
    vv_hf_preproc_debug_free(&dbg);
    free(embd0);
    free(sel);
    free(proj);
    free(packed);
    free(embeds);
    free(logits);
    free(hidden);
    vv_ivec_free(&ids);
    vv_buf_free(&chat);
}

static void run_value(hfg *g, const vv_hf_llava *m, int idx, const char *file, const char *sentence, float *eager_out) {
    char tag[64], nm[96];
    snprintf(tag, sizeof(tag), "value%d", idx);
    vv_image img = {0};
    if (load_image(g, file, &img, tag)) return;
    vv_error e = {0};
    vv_ivec ids = {0}, mask = {0};
    float *hidden = malloc((size_t)m->max_length * m->n_embd * sizeof(float));
    float v_eager = 0, v_sdpa = 0;
    vv_hf_pixels px = {0};
    int rc = hidden ? VISVM_OK : vv_err(&e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc) rc = vv_hf_value(m, g->pool, &img, sentence, VV_HF_PAD_EAGER, &v_eager, &ids, &mask, hidden, &e);
    if (!rc) rc = vv_hf_value(m, g->pool, &img, sentence, VV_HF_PAD_SDPA, &v_sdpa, NULL, NULL, NULL, &e);
    if (!rc) rc = vv_hf_preprocess(&img, &m->pre, &px, NULL, &e);
    if (!rc) {
#define NM(s) (snprintf(nm, sizeof(nm), "value%d_%s", idx, s), nm)
        put_i(g, NM("input_ids"), ids.v, (int64_t)ids.n);
        put_i(g, NM("attention_mask"), mask.v, (int64_t)mask.n);
        put_f(g, NM("pixel_values"), px.data, (int64_t)px.n * 3 * px.size * px.size);
        int32_t sizes[2] = {px.orig_h, px.orig_w};
        put_i(g, NM("image_sizes"), sizes, 2);
        put_f(g, NM("hidden_last"), hidden, (int64_t)m->max_length * m->n_embd);
        put_f(g, NM("value"), &v_eager, 1);
        put_f(g, NM("value_cuda_sdpa"), &v_sdpa, 1);
#undef NM
        *eager_out = v_eager;
    } else {
        fail_line(g, tag, e.msg);
    }
    vv_hf_pixels_free(&px);
    free(hidden);
    vv_ivec_free(&ids);
    vv_ivec_free(&mask);
    vv_image_free(&img);
}

// Both golden images in one processor call: tiles padded with zeros to the largest count.
static void run_batch(hfg *g, const vv_hf_llava *m, const cJSON *images) {
    int n = cJSON_GetArraySize(images);
    if (n <= 0) return;
    vv_hf_pixels *px = calloc((size_t)n, sizeof(vv_hf_pixels));
    int32_t *sizes = calloc((size_t)n * 2, sizeof(int32_t));
    int max_n = 0, rc = 0, i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, images) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, "file");
        vv_image img = {0};
        vv_error e = {0};
        if (!px || !sizes || !cJSON_IsString(f) || load_image(g, f->valuestring, &img, "batch")) {
            rc = 1;
            break;
        }
        rc = vv_hf_preprocess(&img, &m->pre, &px[i], NULL, &e);
        vv_image_free(&img);
        if (rc) {
            fail_line(g, "batch", e.msg);
            break;
        }
        sizes[2 * i] = px[i].orig_h;
        sizes[2 * i + 1] = px[i].orig_w;
        if (px[i].n > max_n) max_n = px[i].n;
        i++;
    }
    if (!rc) {
        const int S = m->v_size;
        const size_t tile = (size_t)3 * S * S;
        float *all = calloc((size_t)n * max_n * tile, sizeof(float));
        if (all) {
            for (int k = 0; k < n; k++) memcpy(all + (size_t)k * max_n * tile, px[k].data, (size_t)px[k].n * tile * sizeof(float));
            char nm[64];
            snprintf(nm, sizeof(nm), "batch%d_pixel_values", n);
            put_f(g, nm, all, (int64_t)n * max_n * (int64_t)tile);
            snprintf(nm, sizeof(nm), "batch%d_image_sizes", n);
            put_i(g, nm, sizes, 2 * n);
            free(all);
        }
    }
    for (int k = 0; px && k < n; k++) vv_hf_pixels_free(&px[k]);
    free(px);
    free(sizes);
}

static double tolerance(const hfg *g, const char *name) {
    if (strstr(name, "pixel_values")) return 1e-6;
    if (g->convert == VV_TYPE_F16) return strstr(name, "logits") ? 0.03 : 0.02;
    if (strstr(name, "logits")) return 2e-4;
    return 1e-4;
}

static void check_array(hfg *g, const char *name, const cJSON *a) {
    const cJSON *jf = cJSON_GetObjectItemCaseSensitive(a, "file"), *jd = cJSON_GetObjectItemCaseSensitive(a, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(a, "shape");
    if (!cJSON_IsString(jf) || !cJSON_IsString(jd) || !cJSON_IsArray(js)) {
        fail_line(g, name, "index entry lacks file/dtype/shape");
        return;
    }
    int64_t n = 1;
    char shape[96] = "";
    size_t sl = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, js) {
        n *= (int64_t)d->valuedouble;
        if (sl < sizeof(shape) - 16) sl += (size_t)snprintf(shape + sl, sizeof(shape) - sl, "%s%d", sl ? "x" : "", (int)d->valuedouble);
    }
    bool is_int = !strcmp(jd->valuestring, "int32");
    const computed *c = NULL;
    for (int i = 0; i < g->n_c; i++)
        if (!strcmp(g->c[i].name, name)) c = &g->c[i];
    if (!c) {
        fail_line(g, name, "not computed by visvm");
        return;
    }
    char *p = pathf(g->dir, jf->valuestring);
    char *raw = NULL;
    size_t size = 0;
    vv_error e = {0};
    if (!p || vv_read_file(p, &raw, &size, &e) || size != (size_t)n * 4) {
        char m[700];
        snprintf(m, sizeof(m), "cannot read %s (%zu bytes, expected %lld): %s", jf->valuestring, size, (long long)n * 4, e.msg);
        fail_line(g, name, m);
        free(p);
        free(raw);
        return;
    }
    free(p);
    char msg[256];
    bool ok;
    if (c->n != n || c->is_int != is_int) {
        snprintf(msg, sizeof(msg), "visvm has %lld %s values, the reference %lld (%s)", (long long)c->n,
                 c->is_int ? "int" : "float", (long long)n, shape);
        ok = false;
    } else if (is_int) {
        int64_t bad = 0, first = -1;
        for (int64_t k = 0; k < n; k++) {
            int32_t r;
            memcpy(&r, raw + 4 * k, 4);
            if (r != c->i[k]) {
                if (first < 0) first = k;
                bad++;
            }
        }
        ok = bad == 0;
        if (ok) snprintf(msg, sizeof(msg), "identical [%s]", shape);
        else {
            int32_t r;
            memcpy(&r, raw + 4 * first, 4);
            snprintf(msg, sizeof(msg), "%lld of %lld differ, first at %lld: %d vs %d [%s]", (long long)bad, (long long)n,
                     (long long)first, c->i[first], r, shape);
        }
    } else {
        double mx = 0, sum = 0;
        int64_t at = 0;
        for (int64_t k = 0; k < n; k++) {
            float r;
            memcpy(&r, raw + 4 * k, 4);
            double df = fabs((double)c->f[k] - (double)r);
            if (!(df <= mx) || isnan(df)) {
                mx = isnan(df) ? INFINITY : df;
                at = k;
            }
            sum += isnan(df) ? INFINITY : df;
        }
        double tol = tolerance(g, name);
        ok = mx <= tol;
        if (n == 1) {
            float r;
            memcpy(&r, raw, 4);
            snprintf(msg, sizeof(msg), "%.7f vs %.7f, err %.2e (tol %.0e)", c->f[0], r, mx, tol);
        } else {
            snprintf(msg, sizeof(msg), "max %.2e mean %.2e (tol %.0e, worst at %lld) [%s]", mx, sum / (double)n, tol,
                     (long long)at, shape);
        }
    }
    free(raw);
    printf("%s  %-34s %s\n", ok ? "PASS" : "FAIL", name, msg);
    fflush(stdout);
    if (ok) g->n_pass++;
    else g->n_fail++;
}

// Loads the LLaVA-NeXT and value checkpoints found in sub-directories of dir.
static void find_models(hfg *g, vv_hf_llava **base, vv_hf_llava **value) {
    DIR *d = opendir(g->dir);
    if (!d) return;
    struct dirent *de;
    char *names[64];
    int n = 0;
    while ((de = readdir(d)) && n < 64)
        if (de->d_name[0] != '.') names[n++] = vv_strdup(de->d_name);
    closedir(d);
    // sorted, so that the choice does not depend on directory order
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (names[i] && names[j] && strcmp(names[i], names[j]) > 0) {
                char *t = names[i];
                names[i] = names[j];
                names[j] = t;
            }
    for (int i = 0; i < n; i++) {
        char *p = names[i] ? pathf(g->dir, names[i]) : NULL;
        if (p && vv_hf_is_dir(p)) {
            vv_hf_llava *m = NULL;
            vv_error e = {0};
            double t0 = vv_time_s();
            int rc = vv_hf_load(p, &m, &e);
            if (!rc && g->convert >= 0) { // convert, then check the GGUF files (unlinked once mapped)
                vv_hf_free(m);
                m = NULL;
                char *out = pathf(g->tmp, names[i]), *tp = out ? pathf(out, "text.gguf") : NULL,
                     *mp = out ? pathf(out, "mmproj.gguf") : NULL;
                rc = !out || !tp || !mp ? vv_err(&e, VISVM_ERR_NOMEM, "out of memory") : vv_hf_convert(p, out, g->convert, &e);
                if (!rc) rc = vv_hf_load_gguf(tp, mp, &m, &e);
                if (tp) unlink(tp);
                if (mp) unlink(mp);
                if (out) rmdir(out);
                free(out);
                free(tp);
                free(mp);
            }
            if (rc) {
                char msg[700];
                snprintf(msg, sizeof(msg), "cannot load %s: %s", names[i], e.msg);
                fail_line(g, "load", msg);
            } else if ((m->is_value && !*value) || (!m->is_value && !*base)) {
                *(m->is_value ? value : base) = m;
                char how[64];
                if (g->convert >= 0) snprintf(how, sizeof(how), "converted to %s GGUF", vv_type_name(g->convert));
                else snprintf(how, sizeof(how), "%d shards", vv_st_n_shards(m->st));
                printf("      loaded %s %s (%s, %.2f s)\n", m->is_value ? "value model" : "LLaVA-NeXT", names[i], how,
                       vv_time_s() - t0);
            } else {
                vv_hf_free(m);
            }
        }
        free(p);
        free(names[i]);
    }
}

int cmd_golden_hf(const char *dir, const void *index_json, int threads, bool verbose, const char *convert) {
    const cJSON *idx = index_json;
    const cJSON *arrays = cJSON_GetObjectItemCaseSensitive(idx, "arrays");
    const cJSON *facts = cJSON_GetObjectItemCaseSensitive(idx, "facts");
    hfg g = {dir, NULL, NULL, 0, 0, 0, verbose, -1, NULL};
    char tmp[] = "/tmp/visvm-golden-XXXXXX";
    if (convert) {
        g.convert = vv_type_from_name(convert);
        if (g.convert != VV_TYPE_F32 && g.convert != VV_TYPE_F16) {
            fprintf(stderr, "visvm golden: --convert must be f32 or f16, not '%s'\n", convert);
            return 2;
        }
        if (!mkdtemp(tmp)) {
            fprintf(stderr, "visvm golden: cannot create a temporary directory for the conversions\n");
            return 1;
        }
        g.tmp = tmp;
    }
    g.pool = vv_pool_create(threads);
    double t0 = vv_time_s();
    vv_hf_llava *base = NULL, *value = NULL;
    find_models(&g, &base, &value);
    if (g.tmp) rmdir(g.tmp);
    if (base) {
        const cJSON *tc = cJSON_GetObjectItemCaseSensitive(facts, "tokenizer_cases"), *it;
        int i = 0;
        cJSON_ArrayForEach(it, tc) {
            const cJSON *t = cJSON_GetObjectItemCaseSensitive(it, "text");
            vv_ivec ids = {0};
            vv_error e = {0};
            char nm[64];
            snprintf(nm, sizeof(nm), "tok%d_input_ids", i);
            if (cJSON_IsString(t) && vv_hf_tokenize(base, t->valuestring, 0, &ids, &e) == VISVM_OK)
                put_i(&g, nm, ids.v, (int64_t)ids.n);
            else
                fail_line(&g, nm, e.msg);
            vv_ivec_free(&ids);
            i++;
        }
        const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(facts, "prompt");
        const cJSON *images = cJSON_GetObjectItemCaseSensitive(facts, "images");
        const cJSON *greedy = cJSON_GetObjectItemCaseSensitive(facts, "greedy");
        int n_greedy = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(greedy, "new_ids"));
        i = 0;
        cJSON_ArrayForEach(it, images) {
            const cJSON *f = cJSON_GetObjectItemCaseSensitive(it, "file");
            if (cJSON_IsString(f) && cJSON_IsString(prompt))
                run_image(&g, base, i, f->valuestring, prompt->valuestring, i == 0 ? n_greedy : 0);
            i++;
        }
        run_batch(&g, base, images);
    }
    if (value) {
        const cJSON *vf = cJSON_GetObjectItemCaseSensitive(facts, "value");
        const cJSON *cases = cJSON_GetObjectItemCaseSensitive(vf, "cases"), *it;
        int n = cJSON_GetArraySize(cases), i = 0;
        float *vals = calloc((size_t)(n > 0 ? n : 1), sizeof(float));
        cJSON_ArrayForEach(it, cases) {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(it, "sentence"), *f = cJSON_GetObjectItemCaseSensitive(it, "image");
            if (cJSON_IsString(s) && cJSON_IsString(f) && vals) run_value(&g, value, i, f->valuestring, s->valuestring, &vals[i]);
            i++;
        }
        // a batched call gives the single-call values (README: difference 0)
        char nm[64];
        snprintf(nm, sizeof(nm), "value_batch%d_values", n);
        if (vals) put_f(&g, nm, vals, n);
        free(vals);
    }
    const cJSON *a;
    cJSON_ArrayForEach(a, arrays) check_array(&g, a->string, a);
    vv_hf_free(base);
    vv_hf_free(value);
    for (int i = 0; i < g.n_c; i++) {
        free(g.c[i].name);
        free(g.c[i].f);
        free(g.c[i].i);
    }
    free(g.c);
    vv_pool_free(g.pool);
    if (convert) printf("golden-hf (%s GGUF): %d passed, %d failed (%.1f s)\n", convert, g.n_pass, g.n_fail, vv_time_s() - t0);
    else printf("golden-hf: %d passed, %d failed (%.1f s)\n", g.n_pass, g.n_fail, vv_time_s() - t0);
    if (g.n_pass + g.n_fail == 0) {
        fprintf(stderr, "visvm golden: no checks found in %s/index.json\n", dir);
        return 1;
    }
    return g.n_fail ? 1 : 0;
}
