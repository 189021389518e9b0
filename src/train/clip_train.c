// clip_train.c - tiny CLIP: model, contrastive training on the world, probes, GGUF export.
#include "clip_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../eval/svg.h"
#include "ckpt.h"
#include "clip_model.h"

vt_clip_hp vt_clip_default_hp(void) {
    vt_clip_hp h;
    memset(&h, 0, sizeof(h));
    h.image_size = 64;
    h.patch = 8;
    h.stem_ch = 32;
    h.v_width = 128;
    h.v_layers = 4;
    h.v_heads = 4;
    h.v_ff = 512;
    h.t_width = 128;
    h.t_layers = 4;
    h.t_heads = 4;
    h.t_ff = 512;
    h.t_ctx = 64;
    h.proj = 128;
    h.scale_init = 5.0f;
    h.mean_pool = true;
    h.text_mean_pool = true;
    h.batch = 128;
    h.n_neg = 2;
    h.p_caption = 0.2f;
    h.group = 32;
    h.hard_weight = 1.0f;
    h.aux_weight = 1.0f;
    h.steps = 4000;
    h.world = vv_world_default_params();
    h.warmup = 200;
    h.lr = 1e-3f;
    h.lr_min = 3e-5f;
    h.weight_decay = 0.1f;
    h.clip_norm = 1.0f;
    h.seed = 1;
    h.threads = 0;
    h.log_every = 20;
    h.eval_every = 500;
    h.ckpt_every = 500;
    h.eval_scenes = 300;
    return h;
}

// ---------------------------------------------------------------------------
// image rendering on the pool

typedef struct {
    const vv_world_params *wp;
    const uint64_t *seeds;
    int n, size;
    float *img; // [n, size, size, 3]
    int grid;   // patch grid side for labels (0: none)
    int32_t *labels; // [n, grid * grid]
    int rc;
} render_task;

// Patch labels from the visible masks [h, w]: the class covering most of each
// grid cell (at least 20% of it), else background (n_classes).
static void patch_labels(const vv_world_scene *s, const vv_world_masks *mk, int grid, int32_t *out) {
    for (int gy = 0; gy < grid; gy++)
        for (int gx = 0; gx < grid; gx++) {
            const int y0 = gy * mk->h / grid, y1 = (gy + 1) * mk->h / grid, x0 = gx * mk->w / grid,
                      x1 = (gx + 1) * mk->w / grid;
            double best = 0.2 * (double)((y1 - y0) * (x1 - x0));
            int32_t lab = vv_world_n_classes();
            for (int o = 0; o < mk->n && o < s->n_objects; o++) {
                double cov = 0;
                for (int y = y0; y < y1; y++)
                    for (int x = x0; x < x1; x++) cov += mk->visible[o][(size_t)y * mk->w + x];
                if (cov > best) {
                    best = cov;
                    lab = s->obj[o].cls;
                }
            }
            out[gy * grid + gx] = lab;
        }
}

static void render_worker(void *arg, int ith, int nth) {
    render_task *t = arg;
    for (int i = ith; i < t->n; i += nth) {
        vv_world_scene s;
        vv_error e = {0};
        vv_image im = {0};
        vv_world_masks mk;
        memset(&mk, 0, sizeof(mk));
        int rc = vv_world_scene_make(t->wp, t->seeds[i], &s, &e);
        if (!rc) rc = vv_world_render(t->wp, &s, &im, t->labels ? &mk : NULL, &e);
        if (!rc) rc = vt_image_normalize(&im, t->size, t->img + (size_t)i * t->size * t->size * 3, &e);
        if (!rc && t->labels) patch_labels(&s, &mk, t->grid, t->labels + (size_t)i * t->grid * t->grid);
        vv_world_masks_free(&mk);
        vv_image_free(&im);
        vv_world_scene_free(&s);
        if (rc) t->rc = rc;
    }
}

int vt_render_batch(vv_pool *pool, const vv_world_params *wp, const uint64_t *seeds, int n, int size, float *img) {
    render_task t = {wp, seeds, n, size, img, 0, NULL, 0};
    vv_pool_run(pool, render_worker, &t);
    return t.rc;
}

int vt_render_batch_labels(vv_pool *pool, const vv_world_params *wp, const uint64_t *seeds, int n, int size,
                           float *img, int grid, int32_t *labels) {
    if (grid <= 0 || !labels) return VISVM_ERR_INVALID;
    render_task t = {wp, seeds, n, size, img, grid, labels, 0};
    vv_pool_run(pool, render_worker, &t);
    return t.rc;
}

// ---------------------------------------------------------------------------
// probes

static float cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return (float)(ab / (sqrt(aa * bb) + 1e-12));
}

// Embeds texts in chunks of max_Bt: out [n, E].
static int embed_texts(vt_ctx *c, vt_clip_model *m, const char *const *texts, int n, float *out, vv_error *e) {
    const int E = m->hp.proj;
    int32_t *ids = malloc((size_t)m->max_Bt * m->hp.t_ctx * sizeof(int32_t));
    int32_t *lens = malloc((size_t)m->max_Bt * sizeof(int32_t));
    int rc = ids && lens ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i0 = 0; i0 < n && !rc; i0 += m->max_Bt) {
        int k = VV_MIN(m->max_Bt, n - i0), T = 0;
        rc = vt_clip_tokenize(m, texts + i0, k, ids, lens, &T, e);
        if (!rc && (rc = vt_clip_text_forward(c, m, ids, lens, k, T))) vv_err(e, rc, "%s", vt_ctx_error(c));
        if (!rc) memcpy(out + (size_t)i0 * E, m->txt_emb, (size_t)k * E * sizeof(float));
    }
    free(ids);
    free(lens);
    return rc;
}

static int probe_run(vt_ctx *c, vv_pool *pool, vt_clip_model *m, int n_scenes, vt_clip_probe *out, vv_error *e);

// Validation in eval mode: BatchNorm from running statistics, which stay as they are.
int vt_clip_probe_run(vt_ctx *c, vv_pool *pool, vt_clip_model *m, int n_scenes, vt_clip_probe *out, vv_error *e) {
    const bool was = m->vis.eval;
    m->vis.eval = true;
    int rc = probe_run(c, pool, m, n_scenes, out, e);
    m->vis.eval = was;
    return rc;
}

static int probe_run(vt_ctx *c, vv_pool *pool, vt_clip_model *m, int n_scenes, vt_clip_probe *out, vv_error *e) {
    memset(out, 0, sizeof(*out));
    vv_world_params wp = m->hp.world;
    const int E = m->hp.proj, S = m->hp.image_size, B = m->max_B;
    float *img = vv_aalloc((size_t)B * S * S * 3 * sizeof(float));
    float *iemb = malloc((size_t)n_scenes * E * sizeof(float));
    uint64_t *seeds = malloc((size_t)n_scenes * sizeof(uint64_t));
    int rc = img && iemb && seeds ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n_scenes && seeds; i++) seeds[i] = vv_world_split_base(VV_WORLD_VAL) + (uint64_t)i;
    for (int i0 = 0; i0 < n_scenes && !rc; i0 += B) {
        int k = VV_MIN(B, n_scenes - i0);
        if ((rc = vt_render_batch(pool, &wp, seeds + i0, k, S, img))) vv_err(e, rc, "rendering failed");
        else if ((rc = vt_clip_image_forward(c, m, img, k))) vv_err(e, rc, "%s", vt_ctx_error(c));
        else memcpy(iemb + (size_t)i0 * E, m->img_emb, (size_t)k * E * sizeof(float));
    }
    long hit[VV_WS_N_KINDS] = {0}, tot[VV_WS_N_KINDS] = {0}, r_hit = 0, r_tot = 0, c_hit = 0, t_hit = 0;
    const int nth = vv_world_n_themes();
    for (int i = 0; i < n_scenes && !rc; i++) {
        vv_world_scene s;
        vv_world_sentence *ss = NULL;
        int ns = 0;
        if ((rc = vv_world_scene_make(&wp, seeds[i], &s, e))) break;
        rc = vv_world_sentences(&s, seeds[i], &ss, &ns, e);
        // probe sentences: all scene sentences, then counts 1..5, then one setting sentence per theme
        int np = ns + 5 + nth;
        const char **texts = calloc((size_t)np, sizeof(char *));
        char (*extra)[160] = calloc((size_t)(5 + nth), 160);
        float *temb = malloc((size_t)np * E * sizeof(float));
        if (!rc && (!texts || !extra || !temb)) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        for (int j = 0; !rc && j < ns; j++) texts[j] = ss[j].text;
        for (int k = 0; !rc && k < 5; k++) {
            vv_world_count_sentence(k + 1, 0, extra[k], 160);
            texts[ns + k] = extra[k];
        }
        for (int k = 0; !rc && k < nth; k++) {
            vv_world_theme_sentence(k, 0, extra[5 + k], 160);
            texts[ns + 5 + k] = extra[5 + k];
        }
        if (!rc) rc = embed_texts(c, m, texts, np, temb, e);
        const float *ie = iemb + (size_t)i * E;
        float *sim = rc ? NULL : malloc((size_t)np * sizeof(float));
        for (int j = 0; sim && j < np; j++) sim[j] = cosine(ie, temb + (size_t)j * E, E);
        for (int j = 0; sim && j < ns; j++) {
            if (ss[j].positive) {
                bool any = false, best = true;
                for (int k = 0; k < ns; k++)
                    if (!ss[k].positive && ss[k].pos_index == j) {
                        any = true;
                        if (sim[k] >= sim[j]) best = false;
                    }
                if (any) {
                    r_tot++;
                    r_hit += best;
                }
            } else {
                int kind = ss[j].kind;
                tot[kind]++;
                hit[kind] += sim[ss[j].pos_index] > sim[j];
            }
        }
        if (sim) {
            int bc = 0, bt = 0;
            for (int k = 1; k < 5; k++) bc = sim[ns + k] > sim[ns + bc] ? k : bc;
            for (int k = 1; k < nth; k++) bt = sim[ns + 5 + k] > sim[ns + 5 + bt] ? k : bt;
            c_hit += bc + 1 == s.n_objects;
            t_hit += bt == s.theme;
        }
        free(sim);
        free(texts);
        free(extra);
        free(temb);
        free(ss);
        vv_world_scene_free(&s);
    }
    for (int k = 0; k < VV_WS_N_KINDS; k++) {
        out->n_pair[k] = (int)tot[k];
        out->pair[k] = tot[k] ? 100.0 * hit[k] / tot[k] : NAN;
    }
    out->n_retrieval = (int)r_tot;
    out->retrieval = r_tot ? 100.0 * r_hit / r_tot : NAN;
    out->count_argmax = 100.0 * c_hit / n_scenes;
    out->theme_argmax = 100.0 * t_hit / n_scenes;
    vv_afree(img);
    free(iemb);
    free(seeds);
    return rc;
}

void vt_clip_probe_print(FILE *f, const vt_clip_probe *p) {
    fprintf(f, "  retrieval (true sentence first among its corruptions): %.1f%% of %d\n", p->retrieval, p->n_retrieval);
    for (int k = VV_WS_NEG_ABSENT_THEME; k < VV_WS_N_KINDS; k++)
        if (p->n_pair[k]) fprintf(f, "  pairwise %-22s %.1f%% of %d\n", vv_world_sent_kind_name(k), p->pair[k], p->n_pair[k]);
    fprintf(f, "  count argmax (1..5) %.1f%%, setting argmax %.1f%%\n", p->count_argmax, p->theme_argmax);
}

// ---------------------------------------------------------------------------
// training

// Hard-negative term: for every image, a softmax over its own positive text
// and its n_neg false sentences (same scene, one slot changed), so the
// fine-grained differences are not diluted among all texts of the batch.
// Texts: [0, B) positives, then n_neg per image. Accumulates (+=) gradients
// into dU [B, E], dT [B + B n_neg, E] and dls; returns the mean loss * lambda.
// Auxiliary object head: sigmoid cross-entropy of z = clsn W^T + b against the
// scene's labels (class present, colour present, count == k); writes the
// gradient at clsn into dfeat [B, D] and accumulates parameter gradients.
static float aux_loss(vt_ctx *c, vt_clip_model *m, const vv_world_params *wp, const uint64_t *seeds, int B, float weight,
                      float *z, float *dz, float *dfeat) {
    const int K = m->n_aux, D = m->hp.v_width, NC = vv_world_n_classes(), NK = vv_world_n_colors();
    vt_params *ps = &m->ps;
    if (vt_linear_forward(c, z, m->clsn, ps->items[m->aux_w].data, ps->items[m->aux_b].data, B, D, K)) return NAN;
    double total = 0;
    for (int b = 0; b < B; b++) {
        vv_world_scene s;
        float y[256] = {0};
        if (vv_world_scene_make(wp, seeds[b], &s, NULL) == VISVM_OK) {
            for (int i = 0; i < s.n_objects; i++) {
                y[s.obj[i].cls] = 1;
                y[NC + s.obj[i].color] = 1;
            }
            if (s.n_objects >= 1 && s.n_objects <= 5) y[NC + NK + s.n_objects - 1] = 1;
            vv_world_scene_free(&s);
        }
        for (int k = 0; k < K; k++) {
            float v = z[(size_t)b * K + k];
            total += (v > 0 ? v : 0) - v * y[k] + log1p(exp(-fabs(v)));
            dz[(size_t)b * K + k] = weight / (float)(B * K) * (1.0f / (1.0f + expf(-v)) - y[k]);
        }
    }
    memset(dfeat, 0, (size_t)B * D * sizeof(float));
    vt_linear_backward(c, dfeat, ps->items[m->aux_w].grad, ps->items[m->aux_b].grad, dz, m->clsn,
                       ps->items[m->aux_w].data, B, D, K);
    return (float)(weight * total / (B * K));
}

float vt_clip_hardneg_loss(const float *U, const float *Tx, int B, int n_neg, int E, float ls, float lambda, float *dU,
                          float *dT, float *dls) {
    if (n_neg <= 0 || lambda <= 0) return 0;
    const float lmax = logf(100.0f), s = expf(ls < lmax ? ls : lmax);
    double total = 0, dsum = 0;
    float *un = malloc((size_t)E * sizeof(float)), *tn = malloc((size_t)(n_neg + 1) * E * sizeof(float));
    float *du = malloc((size_t)E * sizeof(float)), *dt = malloc((size_t)E * sizeof(float));
    double cosv[64], p[64];
    if (!un || !tn || !du || !dt || n_neg + 1 > 64) goto out;
    for (int b = 0; b < B; b++) {
        const float *u = U + (size_t)b * E;
        double nu = 0;
        for (int i = 0; i < E; i++) nu += (double)u[i] * u[i];
        nu = sqrt(nu) + 1e-12;
        for (int i = 0; i < E; i++) un[i] = (float)(u[i] / nu);
        const float *tj[64];
        double nt[64];
        for (int k = 0; k <= n_neg; k++) {
            tj[k] = Tx + (size_t)(k == 0 ? b : B + b * n_neg + (k - 1)) * E;
            double n2 = 0;
            for (int i = 0; i < E; i++) n2 += (double)tj[k][i] * tj[k][i];
            nt[k] = sqrt(n2) + 1e-12;
            double c = 0;
            for (int i = 0; i < E; i++) {
                tn[(size_t)k * E + i] = (float)(tj[k][i] / nt[k]);
                c += (double)un[i] * tn[(size_t)k * E + i];
            }
            cosv[k] = c;
        }
        double mx = -1e300, z = 0;
        for (int k = 0; k <= n_neg; k++) mx = fmax(mx, s * cosv[k]);
        for (int k = 0; k <= n_neg; k++) z += (p[k] = exp(s * cosv[k] - mx));
        for (int k = 0; k <= n_neg; k++) p[k] /= z;
        total += -log(p[0] + 1e-30);
        memset(du, 0, (size_t)E * sizeof(float));
        for (int k = 0; k <= n_neg; k++) {
            double dz = lambda / (double)B * (p[k] - (k == 0)), dc = s * dz;
            dsum += dz * cosv[k];
            for (int i = 0; i < E; i++) {
                du[i] += (float)(dc * tn[(size_t)k * E + i]);
                dt[i] = (float)(dc * un[i]);
            }
            // through the normalisation of t_k
            double dot = 0;
            for (int i = 0; i < E; i++) dot += (double)dt[i] * tn[(size_t)k * E + i];
            float *g = dT ? dT + (size_t)(k == 0 ? b : B + b * n_neg + (k - 1)) * E : NULL;
            for (int i = 0; g && i < E; i++) g[i] += (float)((dt[i] - dot * tn[(size_t)k * E + i]) / nt[k]);
        }
        double dot = 0;
        for (int i = 0; i < E; i++) dot += (double)du[i] * un[i];
        for (int i = 0; dU && i < E; i++) dU[(size_t)b * E + i] += (float)((du[i] - dot * un[i]) / nu);
    }
    if (ls < lmax && dls) *dls += (float)(dsum * s);
out:
    free(un);
    free(tn);
    free(du);
    free(dt);
    return (float)(lambda * total / B);
}

typedef struct {
    double *x, *y;
    int n, cap;
} series;

static void series_push(series *s, double x, double y) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 256;
        s->x = realloc(s->x, (size_t)s->cap * sizeof(double));
        s->y = realloc(s->y, (size_t)s->cap * sizeof(double));
    }
    if (s->x && s->y) {
        s->x[s->n] = x;
        s->y[s->n++] = y;
    }
}

static void path_in(char *buf, size_t n, const char *dir, const char *file) { snprintf(buf, n, "%s/%s", dir, file); }

int vt_clip_train(const vt_clip_hp *hp, const char *out_dir, bool resume, vv_error *e) {
    int rc = vv_mkdir_p(out_dir, e);
    if (rc) return rc;
    vv_pool *pool = vv_pool_create(hp->threads);
    vt_ctx *c = NULL;
    if (!pool) return vv_err(e, VISVM_ERR_NOMEM, "cannot create threads");
    if ((rc = vt_ctx_create_with_pool(pool, &c, e))) {
        vv_pool_free(pool);
        return rc;
    }
    vv_bpe_vocab bpe = {0};
    vt_clip_model m;
    memset(&m, 0, sizeof(m));
    const int B = hp->batch, Bt = hp->batch * (1 + hp->n_neg), S = hp->image_size, E = hp->proj;
    float *img = NULL, *aux_z = NULL, *aux_dz = NULL, *aux_df = NULL, *dz = NULL, *d_tok = NULL;
    int32_t *plab = NULL, *plab_grid = NULL;
    uint64_t *seeds = NULL;
    char **texts = NULL;
    int32_t *ids = NULL, *lens = NULL;
    FILE *log = NULL;
    series loss_s = {0}, acc_s = {0};
    char path[4096], ckpt[4096];
    path_in(ckpt, sizeof(ckpt), out_dir, "clip.ckpt.gguf");
    double t0 = vv_time_s();
    if ((rc = vt_world_vocab(&bpe, e))) goto done;
    if ((rc = vt_clip_model_init(&m, hp, &bpe, B, Bt, e))) goto done;
    printf("tiny CLIP: %lld parameters, vocabulary %d, image %dx%d patch %d, %d threads\n",
           (long long)vt_params_count(&m.ps, true), bpe.n, S, S, hp->patch, vv_pool_size(pool));
    vv_rng rng;
    vv_rng_seed(&rng, hp->seed);
    vt_ckpt_io io = {&rng, NULL, NULL, NULL, NULL, NULL};
    if (resume && vv_file_exists(ckpt)) {
        if ((rc = vt_ckpt_load(ckpt, &m.ps, 0, &io, e))) goto done;
        printf("resumed from %s at step %lld\n", ckpt, (long long)m.ps.step);
    }
    img = vv_aalloc((size_t)B * S * S * 3 * sizeof(float));
    seeds = malloc((size_t)B * sizeof(uint64_t));
    aux_z = malloc((size_t)B * (m.n_aux + 1) * sizeof(float));
    aux_dz = malloc((size_t)B * (m.n_aux + 1) * sizeof(float));
    aux_df = malloc((size_t)B * hp->v_width * sizeof(float));
    const int G = S / hp->patch, Ti = m.T_img, NCd = vv_world_n_classes() + 1;
    if (m.dense_w >= 0) { // [B, T] targets (class token ignored), logits [B T, NCd], gradient at the tokens
        plab = malloc((size_t)B * Ti * sizeof(int32_t));
        plab_grid = malloc((size_t)B * G * G * sizeof(int32_t));
        dz = vv_aalloc((size_t)B * Ti * NCd * sizeof(float));
        d_tok = vv_aalloc((size_t)B * Ti * hp->v_width * sizeof(float));
        if (!plab || !plab_grid || !dz || !d_tok) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            goto done;
        }
    }
    texts = calloc((size_t)Bt, sizeof(char *));
    ids = malloc((size_t)Bt * hp->t_ctx * sizeof(int32_t));
    lens = malloc((size_t)Bt * sizeof(int32_t));
    if (!img || !seeds || !texts || !ids || !lens || !aux_z || !aux_dz || !aux_df) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    path_in(path, sizeof(path), out_dir, "clip-train.log");
    log = fopen(path, m.ps.step > 0 ? "a" : "w");
    if (!log) {
        rc = vv_err(e, VISVM_ERR_IO, "cannot write %s", path);
        goto done;
    }
    if (m.ps.step == 0) fprintf(log, "step\tloss\tacc_i2t\tacc_t2i\tscale\tlr\tgrad_norm\n");
    else { // rebuild the curve from the log of the earlier run
        FILE *old = fopen(path, "r");
        char line[512];
        while (old && fgets(line, sizeof(line), old)) {
            double st, l, a;
            if (sscanf(line, "%lf %lf %lf", &st, &l, &a) == 3 && st < (double)m.ps.step) {
                series_push(&loss_s, st, l);
                series_push(&acc_s, st, 100 * a);
            }
        }
        if (old) fclose(old);
    }
    vv_world_params wp = hp->world;
    vt_adamw opt = vt_adamw_default();
    opt.weight_decay = hp->weight_decay;
    vt_lr_sched sched = {hp->lr, hp->lr_min, hp->warmup, hp->steps};
    double t_start = vv_time_s();
    int64_t step0 = m.ps.step;
    double run_loss = 0, run_aux = 0, run_dense = 0; // run_aux: the auxiliary head's BCE per label (unweighted)
    int run_n = 0;
    const int64_t stop_at = hp->until > 0 && hp->until < hp->steps ? hp->until : hp->steps;
    while (m.ps.step < stop_at && !rc) {
        // batch: B scenes; text i < B is image i's positive, then n_neg negatives per image
        // images come in groups of hp->group sharing one theme: with the setting
        // the same across the group, in-batch negatives can only be told apart
        // by their objects (otherwise the theme is a shortcut the model learns first)
        for (int b = 0; b < B && !rc; b++) {
            int want = -1;
            if (hp->group > 1) {
                int g = b / hp->group;
                want = (int)((uint64_t)(g * 2654435761u + m.ps.step * 40503u) % (uint64_t)vv_world_n_themes());
            }
            for (int tries = 0;; tries++) {
                seeds[b] = vv_rng_u64(&rng) % vv_world_split_base(VV_WORLD_VAL);
                if (want < 0 || tries > 200) break;
                vv_world_scene s;
                if ((rc = vv_world_scene_make(&wp, seeds[b], &s, e))) break;
                int th = s.theme;
                vv_world_scene_free(&s);
                if (th == want) break;
            }
        }
        if (rc) break;
        if (plab) { // patch labels land at rows 1..G^2 of each image; row 0 (class token) is ignored
            rc = vt_render_batch_labels(pool, &wp, seeds, B, S, img, G, plab_grid);
            for (int b = 0; !rc && b < B; b++) {
                memcpy(plab + (size_t)b * Ti + 1, plab_grid + (size_t)b * G * G, (size_t)G * G * sizeof(int32_t));
                plab[(size_t)b * Ti] = VT_IGNORE_INDEX;
            }
        } else rc = vt_render_batch(pool, &wp, seeds, B, S, img);
        if (rc) {
            vv_err(e, rc, "rendering failed");
            break;
        }
        int nt = B;
        for (int b = 0; b < B && !rc; b++) {
            vv_world_scene s;
            vv_world_sentence *ss = NULL;
            int ns = 0;
            if ((rc = vv_world_scene_make(&wp, seeds[b], &s, e))) break;
            uint64_t sseed = vv_rng_u64(&rng);
            if ((rc = vv_world_sentences(&s, sseed, &ss, &ns, e))) {
                vv_world_scene_free(&s);
                break;
            }
            int pos[64], npos = 0, negs[256], nneg = 0;
            for (int j = 0; j < ns; j++) {
                if (ss[j].positive && npos < 64) pos[npos++] = j;
                else if (!ss[j].positive && nneg < 256) negs[nneg++] = j;
            }
            // positive: a whole caption sometimes, else an object sentence (70%) or a global one
            int pj = -1;
            if (vv_rng_uniform(&rng) < hp->p_caption) {
                char *cap = NULL;
                if ((rc = vv_world_captions(&s, sseed, 1, &cap, e)) == VISVM_OK) texts[b] = cap;
            } else {
                int objs[16], no = 0, globs[16], ng = 0;
                for (int k = 0; k < npos; k++) {
                    if (ss[pos[k]].kind == VV_WS_OBJECT && no < 16) objs[no++] = pos[k];
                    else if (ng < 16) globs[ng++] = pos[k];
                }
                pj = (no && (vv_rng_uniform(&rng) < 0.7 || !ng)) ? objs[vv_rng_below(&rng, (uint32_t)no)]
                                                                : globs[vv_rng_below(&rng, (uint32_t)ng)];
                texts[b] = vv_strdup(ss[pj].text);
            }
            // negatives: corruptions of the chosen positive first, absent same-theme objects favoured
            for (int k = 0; k < hp->n_neg && !rc; k++) {
                int best = -1;
                for (int tries = 0; tries < 8 && nneg; tries++) {
                    int cand = negs[vv_rng_below(&rng, (uint32_t)nneg)];
                    if (pj >= 0 && ss[cand].pos_index != pj && tries < 4) continue;
                    best = cand;
                    if (ss[cand].kind == VV_WS_NEG_ABSENT_THEME || tries >= 4) break;
                }
                if (best < 0 && nneg) best = negs[0];
                texts[nt++] = vv_strdup(best >= 0 ? ss[best].text : "There is nothing.");
            }
            free(ss);
            vv_world_scene_free(&s);
        }
        int T = 0;
        if (!rc) rc = vt_clip_tokenize(&m, (const char *const *)texts, nt, ids, lens, &T, e);
        for (int i = 0; i < nt; i++) {
            free(texts[i]);
            texts[i] = NULL;
        }
        if (rc) break;
        vt_params_zero_grad(&m.ps);
        vt_infonce_result res;
        float *gls = m.ps.items[m.logit_scale].grad;
        if ((rc = vt_clip_image_forward(c, &m, img, B)) || (rc = vt_clip_text_forward(c, &m, ids, lens, nt, T)) ||
            (rc = vt_infonce(c, m.img_emb, m.txt_emb, B, nt, E, m.ps.items[m.logit_scale].data[0], &res, m.d_img_emb,
                             m.d_txt_emb, gls, 1.0f))) {
            vv_err(e, rc, "training step failed: %s", vt_ctx_error(c));
            break;
        }
        if (m.aux_w >= 0) {
            float al = aux_loss(c, &m, &wp, seeds, B, hp->aux_weight, aux_z, aux_dz, aux_df);
            if (isfinite(al)) {
                m.d_clsn_extra = aux_df;
                res.loss += al;
                run_aux += al / hp->aux_weight;
            }
        }
        if (m.dense_w >= 0) { // per-patch class head on the final vision tokens
            float dl = 0;
            if ((rc = vt_clip_dense_step(c, &m, plab, B, hp->dense_weight, dz, d_tok, &dl))) {
                vv_err(e, rc, "training step failed: %s", vt_ctx_error(c));
                break;
            }
            res.loss += hp->dense_weight * dl;
            run_dense += dl;
        }
        float hn = vt_clip_hardneg_loss(m.img_emb, m.txt_emb, B, nt == B * (1 + hp->n_neg) ? hp->n_neg : 0, E,
                                m.ps.items[m.logit_scale].data[0], hp->hard_weight, m.d_img_emb, m.d_txt_emb, gls);
        res.loss += hn;
        if ((rc = vt_clip_text_backward(c, &m, nt, T)) || (rc = vt_clip_image_backward(c, &m, B))) {
            vv_err(e, rc, "training step failed: %s", vt_ctx_error(c));
            break;
        }
        float norm = 0, lr = vt_lr_at(&sched, m.ps.step);
        vt_clip_grad_norm(c, &m.ps, hp->clip_norm, &norm);
        if (!isfinite(norm) || !isfinite(res.loss)) {
            rc = vv_err(e, VISVM_ERR_INTERNAL, "non-finite loss or gradient at step %lld", (long long)m.ps.step);
            break;
        }
        if ((rc = vt_adamw_step(c, &m.ps, &opt, lr))) {
            vv_err(e, rc, "optimizer failed: %s", vt_ctx_error(c));
            break;
        }
        run_loss += res.loss;
        run_n++;
        fprintf(log, "%lld\t%.5f\t%.4f\t%.4f\t%.3f\t%.3g\t%.3f\n", (long long)m.ps.step, res.loss, res.acc_i2t,
                res.acc_t2i, res.scale, lr, norm);
        if (m.ps.step % hp->log_every == 0 || m.ps.step == hp->steps) {
            double el = vv_time_s() - t_start, per = el / (double)(m.ps.step - step0);
            series_push(&loss_s, (double)m.ps.step, run_loss / run_n);
            series_push(&acc_s, (double)m.ps.step, 100 * res.acc_i2t);
            printf("clip step %5lld/%d  loss %.4f  acc %.2f  scale %.1f  lr %.2e  %.1f img/s  ETA %.0f min",
                   (long long)m.ps.step, hp->steps, run_loss / run_n, res.acc_i2t, res.scale, lr, B / per,
                   per * (double)(hp->steps - m.ps.step) / 60);
            if (m.aux_w >= 0) printf("  aux-bce %.4f", run_aux / run_n);
            if (m.dense_w >= 0) printf("  patch-ce %.4f", run_dense / run_n);
            printf("\n");
            fflush(stdout);
            fflush(log);
            run_loss = run_aux = run_dense = 0;
            run_n = 0;
        }
        if (hp->ckpt_every > 0 && m.ps.step % hp->ckpt_every == 0 && (rc = vt_ckpt_save(ckpt, &m.ps, &io, e))) break;
        if (hp->eval_every > 0 && m.ps.step % hp->eval_every == 0 && m.ps.step < hp->steps) {
            vt_clip_probe pr;
            if ((rc = vt_clip_probe_run(c, pool, &m, VV_MIN(hp->eval_scenes, 100), &pr, e))) break;
            printf("val probes at step %lld (100 scenes):\n", (long long)m.ps.step);
            vt_clip_probe_print(stdout, &pr);
        }
    }
    if (!rc) rc = vt_ckpt_save(ckpt, &m.ps, &io, e);
    if (!rc) {
        path_in(path, sizeof(path), out_dir, "clip.gguf");
        rc = vt_clip_export(&m, path, e);
        if (!rc) printf("wrote %s\n", path);
    }
    if (!rc) {
        vt_clip_probe pr;
        rc = vt_clip_probe_run(c, pool, &m, hp->eval_scenes, &pr, e);
        if (!rc) {
            printf("val probes (%d scenes):\n", hp->eval_scenes);
            vt_clip_probe_print(stdout, &pr);
            vv_buf js = {0};
            vv_buf_printf(&js, "{\"steps\": %lld, \"seconds\": %.0f, \"retrieval\": %.2f, \"count_argmax\": %.2f, \"theme_argmax\": %.2f",
                          (long long)m.ps.step, vv_time_s() - t0, pr.retrieval, pr.count_argmax, pr.theme_argmax);
            for (int k = VV_WS_NEG_ABSENT_THEME; k < VV_WS_N_KINDS; k++)
                if (pr.n_pair[k]) vv_buf_printf(&js, ", \"pair_%s\": %.2f", vv_world_sent_kind_name(k), pr.pair[k]);
            vv_buf_printf(&js, "}\n");
            path_in(path, sizeof(path), out_dir, "clip-metrics.json");
            rc = vv_write_file_atomic(path, js.v, js.n, e);
            vv_buf_free(&js);
        }
    }
    if (!rc && loss_s.n) {
        path_in(path, sizeof(path), out_dir, "clip-loss.svg");
        vv_svg_series sv[1] = {{"InfoNCE loss", loss_s.x, loss_s.y, loss_s.n, NULL, NULL}};
        rc = vv_svg_line_chart(path, "tiny CLIP training", "step", "loss", sv, 1, false, e);
    }
done:
    if (log) fclose(log);
    free(loss_s.x);
    free(loss_s.y);
    free(acc_s.x);
    free(acc_s.y);
    vv_afree(img);
    free(aux_z);
    free(aux_dz);
    free(aux_df);
    free(plab);
    free(plab_grid);
    vv_afree(dz);
    vv_afree(d_tok);
    free(seeds);
    if (texts)
        for (int i = 0; i < Bt; i++) free(texts[i]);
    free(texts);
    free(ids);
    free(lens);
    vt_clip_model_free(&m);
    vv_bpe_vocab_free(&bpe);
    vt_ctx_free(c);
    vv_pool_free(pool);
    return rc;
}
