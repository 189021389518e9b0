// head_train.c - LSTD fit of the visvm-shared value head (see head_train.h).
#include "head_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "../base/threadpool.h"
#include "../eval/world_eval.h"
#include "../model/image.h"
#include "../search/search.h"

vt_head_hp vt_head_default_hp(void) {
    vt_head_hp hp;
    memset(&hp, 0, sizeof(hp));
    hp.gamma = 0.9f;
    hp.reward_offset = NAN;
    hp.ridge = 1e-3f;
    return hp;
}

int vt_solve(double *A, double *b, int n, vv_error *e) {
    for (int c = 0; c < n; c++) {
        int piv = c;
        for (int r = c + 1; r < n; r++)
            if (fabs(A[(size_t)r * n + c]) > fabs(A[(size_t)piv * n + c])) piv = r;
        if (!(fabs(A[(size_t)piv * n + c]) > 1e-300)) return vv_err(e, VISVM_ERR_INVALID, "singular system (column %d)", c);
        if (piv != c) {
            for (int k = 0; k < n; k++) {
                double t = A[(size_t)c * n + k];
                A[(size_t)c * n + k] = A[(size_t)piv * n + k];
                A[(size_t)piv * n + k] = t;
            }
            double t = b[c];
            b[c] = b[piv];
            b[piv] = t;
        }
        const double inv = 1.0 / A[(size_t)c * n + c];
        for (int r = c + 1; r < n; r++) {
            const double f = A[(size_t)r * n + c] * inv;
            if (f == 0) continue;
            for (int k = c; k < n; k++) A[(size_t)r * n + k] -= f * A[(size_t)c * n + k];
            b[r] -= f * b[c];
        }
    }
    for (int c = n - 1; c >= 0; c--) {
        double acc = b[c];
        for (int k = c + 1; k < n; k++) acc -= A[(size_t)c * n + k] * b[k];
        b[c] = acc / A[(size_t)c * n + c];
    }
    return VISVM_OK;
}

// Hidden states of every TD pair's sentence: feats [n_pairs, D]. Responses of one
// image are batched (up to `batch`), the image encoded and prefilled once per batch.
static int extract(vv_searcher *s, const vt_td_set *set, const char *def_prompt, int D, int batch, const char *what,
                   float *feats, vv_error *e) {
    int rc = VISVM_OK, loaded = -1;
    vv_image img = {0};
    const char ***sent = calloc((size_t)batch, sizeof(char **));
    int *ns = calloc((size_t)batch, sizeof(int));
    float **outp = calloc((size_t)batch, sizeof(float *));
    if (!sent || !ns || !outp) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    double t0 = vv_time_s();
    for (int r0 = 0; r0 < set->n_resp && !rc;) {
        const int im = set->pairs[set->resp_first[r0]].image;
        int k = 0;
        while (r0 + k < set->n_resp && k < batch && set->pairs[set->resp_first[r0 + k]].image == im) {
            const int f = set->resp_first[r0 + k];
            sent[k] = malloc((size_t)set->resp_len[r0 + k] * sizeof(char *));
            if (!sent[k]) {
                rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                break;
            }
            for (int i = 0; i < set->resp_len[r0 + k]; i++) sent[k][i] = set->pairs[f + i].cur;
            ns[k] = set->resp_len[r0 + k];
            outp[k] = feats + (size_t)f * D;
            k++;
        }
        if (!rc && loaded != im) {
            vv_image_free(&img);
            if ((rc = vv_image_load_file(set->images[im], &img, e))) break;
            loaded = im;
        }
        const char *prompt = set->prompts && set->prompts[im] ? set->prompts[im] : def_prompt;
        if (!rc) rc = vv_searcher_responses_states(s, &img, prompt, (const char *const *const *)sent, ns, k, outp, e);
        for (int q = 0; q < k; q++) free((void *)sent[q]);
        r0 += k;
        if (!rc && (r0 % 2000 < k || r0 == set->n_resp)) {
            fprintf(stderr, "\r%s: %d/%d responses, %.0f s", what, r0, set->n_resp, vv_time_s() - t0);
            fflush(stderr);
        }
    }
    fputc('\n', stderr);
    vv_image_free(&img);
    free(sent);
    free(ns);
    free(outp);
    return rc;
}

// Normalised CLIP image and sentence features of every TD pair: raw [n_pairs, 2 P]
// (image, then sentence); each image encoded once.
static int extract_clip(const vv_clip *c, vv_pool *pool, const vt_td_set *set, const char *what, float *raw,
                        vv_error *e) {
    const int P = c->proj_dim;
    float *im = malloc((size_t)P * sizeof(float)), *tx = malloc((size_t)P * sizeof(float));
    vv_clip_work cw = {0};
    int rc = im && tx ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory"), loaded = -1;
    const double t0 = vv_time_s();
    for (int i = 0; i < set->n_pairs && !rc; i++) {
        const vt_td_pair *p = &set->pairs[i];
        if (p->image != loaded) {
            vv_image img = {0};
            vv_image_batch b = {0};
            rc = vv_image_load_file(set->images[p->image], &img, e);
            if (!rc) rc = vv_preprocess(&img, &c->pre, &b, e);
            if (!rc) rc = vv_clip_image_features(c, pool, b.data, im, &cw, e);
            vv_image_batch_free(&b);
            vv_image_free(&img);
            if (rc) break;
            vv_normalise(im, P);
            loaded = p->image;
        }
        if ((rc = vv_clip_text_features(c, pool, p->cur, tx, &cw, e))) break;
        vv_normalise(tx, P);
        memcpy(raw + (size_t)i * 2 * P, im, (size_t)P * sizeof(float));
        memcpy(raw + (size_t)i * 2 * P + P, tx, (size_t)P * sizeof(float));
        if ((i + 1) % 20000 == 0 || i + 1 == set->n_pairs) {
            fprintf(stderr, "\r%s: %d/%d sentences, %.0f s", what, i + 1, set->n_pairs, vv_time_s() - t0);
            fflush(stderr);
        }
    }
    fputc('\n', stderr);
    vv_clip_work_free(&cw);
    free(im);
    free(tx);
    return rc;
}

// LAPACK's symmetric eigensolver (in OpenBLAS, which visvm links for its GEMMs).
extern void dsyev_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w, double *work,
                   const int *lwork, int *info);

int vt_top_eigvecs(double *S, int n, int k, float *U, vv_error *e) {
    // S is symmetric, so its row-major layout is also the column-major one dsyev reads
    double *w = malloc((size_t)n * sizeof(double)), q = 0;
    int lwork = -1, info = 0;
    if (!w) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    dsyev_("V", "U", &n, S, &n, w, &q, &lwork, &info); // workspace query
    lwork = info == 0 ? (int)q : 3 * n;
    double *work = malloc((size_t)VV_MAX(lwork, 1) * sizeof(double));
    if (!work) info = -100;
    else dsyev_("V", "U", &n, S, &n, w, work, &lwork, &info);
    free(work);
    free(w);
    if (info) return vv_err(e, VISVM_ERR_INVALID, "eigendecomposition failed (LAPACK dsyev info %d)", info);
    // eigenvalues ascending: column n - 1 - j (S[col * n + row] now) is the j-th largest
    for (int j = 0; j < k && j < n; j++) {
        const double *v = S + (size_t)(n - 1 - j) * n;
        int big = 0;
        for (int r = 1; r < n; r++)
            if (fabs(v[r]) > fabs(v[big])) big = r;
        const double sg = v[big] < 0 ? -1 : 1;
        for (int r = 0; r < n; r++) U[(size_t)j * n + r] = (float)(sg * v[r]);
    }
    return VISVM_OK;
}

// The bilinear head's projections: the top `rank` eigenvectors of the second moments
// of the training pairs' image features and sentence features (raw [n, 2 P]).
static int fit_projections(const float *raw, int n, int P, vv_value_head *h, vv_error *e) {
    double *Si = calloc((size_t)P * P, sizeof(double)), *St = calloc((size_t)P * P, sizeof(double));
    h->u_img = malloc((size_t)h->rank * P * sizeof(float));
    h->u_txt = malloc((size_t)h->rank * P * sizeof(float));
    if (!Si || !St || !h->u_img || !h->u_txt) {
        free(Si), free(St);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        const float *x = raw + (size_t)i * 2 * P;
        for (int a = 0; a < P; a++)
            for (int b = 0; b < P; b++) {
                Si[(size_t)a * P + b] += (double)x[a] * x[b];
                St[(size_t)a * P + b] += (double)x[P + a] * x[P + b];
            }
    }
    int rc = vt_top_eigvecs(Si, P, h->rank, h->u_img, e);
    if (!rc) rc = vt_top_eigvecs(St, P, h->rank, h->u_txt, e);
    free(Si), free(St);
    return rc;
}

static void clip_phi(const vv_value_head *h, const float *raw, int n, int P, float *feats) {
    const int D = h->n_embd;
    for (int i = 0; i < n; i++)
        vv_value_clip_features(h, raw + (size_t)i * 2 * P, raw + (size_t)i * 2 * P + P, P, feats + (size_t)i * D);
}

// A [m, m] += Phi^T Dn, b += Phi^T rr over n pairs (Phi, Dn [n, m] row-major).
static void accumulate(double *A, double *b, const double *Phi, const double *Dn, const double *rr, int n, int m) {
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, m, n, 1.0, Phi, m, Dn, m, 1.0, A, m);
    cblas_dgemv(CblasRowMajor, CblasTrans, n, m, 1.0, Phi, m, rr, 1, 1.0, b, 1);
}

// The LSTD terms of pair i of response r: phi = [h, 1], dn = phi - gamma phi' (phi' = 0
// after the last sentence); returns its reward - off.
static double pair_terms(const vt_td_set *set, const float *ft, int D, float gamma, int r, int i, double off,
                         double *phi, double *dn) {
    const int f = set->resp_first[r], n = set->resp_len[r];
    const vt_td_pair *p = &set->pairs[f + i];
    const float *x = ft + (size_t)(f + i) * D;
    const float *xn = (i + 1 < n && !p->terminal) ? ft + (size_t)(f + i + 1) * D : NULL;
    for (int d = 0; d < D; d++) {
        phi[d] = x[d];
        dn[d] = x[d] - (xn ? gamma * xn[d] : 0);
    }
    phi[D] = 1;
    dn[D] = 1 - (xn ? gamma : 0);
    return p->reward - off;
}

// TD loss and the correlation of V(s) with the realised discounted return.
static void evaluate(const vt_td_set *set, const float *feats, const vv_value_head *h, float gamma, float off,
                     double *td_loss, double *corr) {
    const int D = h->n_embd;
    double loss = 0, sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
    for (int r = 0; r < set->n_resp; r++) {
        const int f = set->resp_first[r], n = set->resp_len[r];
        double G = 0;
        for (int i = n - 1; i >= 0; i--) { // backwards: return and TD error of pair f + i
            const vt_td_pair *p = &set->pairs[f + i];
            const double v = vv_value_head_apply(h, feats + (size_t)(f + i) * D);
            const double vn = (i + 1 < n && !p->terminal) ? vv_value_head_apply(h, feats + (size_t)(f + i + 1) * D) : 0;
            const double d = v - ((p->reward - off) + gamma * vn);
            loss += d * d;
            G = (p->reward - off) + gamma * (p->terminal ? 0 : G);
            sx += v;
            sy += G;
            sxx += v * v;
            syy += G * G;
            sxy += v * G;
        }
    }
    const double n = set->n_pairs;
    *td_loss = loss / n;
    const double cv = sxy / n - (sx / n) * (sy / n), vx = sxx / n - (sx / n) * (sx / n), vy = syy / n - (sy / n) * (sy / n);
    *corr = vx > 0 && vy > 0 ? cv / sqrt(vx * vy) : 0;
}

// Within-image AUCs of V (the fitted head) and of the reward over a held-out set:
// every image's distinct sentences, and siblings (same position in its responses).
static int head_auc(const char *world, const vt_td_set *set, const float *feats, const vv_value_head *h,
                    vt_head_metrics *m, vv_error *e) {
    char path[4096];
    snprintf(path, sizeof(path), "%s/scenes.jsonl", world);
    vv_world_scene *sc = NULL;
    int n_sc = 0, hint = 0;
    vv_chair *ch = NULL;
    const size_t n = (size_t)(set->n_pairs ? set->n_pairs : 1);
    int *keep = malloc(n * sizeof(int)), *sel = malloc(n * sizeof(int)), *pos = malloc(n * sizeof(int));
    float *bv = malloc(n * sizeof(float)), *br = malloc(n * sizeof(float));
    signed char *lab = malloc(n);
    const char **sent = malloc(n * sizeof(char *));
    int rc = keep && sel && pos && bv && br && lab && sent ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc) rc = vv_world_read_jsonl(path, &sc, &n_sc, e);
    if (!rc) rc = vv_world_chair(&ch, e);
    vv_auc av = {0}, ar = {0}, sv = {0}, sr = {0};
    for (int r = 0; r < set->n_resp; r++)
        for (int i = 0; i < set->resp_len[r]; i++) pos[set->resp_first[r] + i] = i;
    for (int i0 = 0, i1; i0 < set->n_pairs && !rc; i0 = i1) {
        const int im = set->pairs[i0].image;
        for (i1 = i0; i1 < set->n_pairs && set->pairs[i1].image == im;) i1++;
        const vv_world_scene *s = vv_world_find_scene(sc, n_sc, set->images[im], &hint);
        if (!s) {
            rc = vv_err(e, VISVM_ERR_INVALID, "held-out image %s is not in %s", set->images[im], path);
            break;
        }
        int max_pos = 0;
        for (int i = i0; i < i1; i++) max_pos = VV_MAX(max_pos, pos[i]);
        for (int p = -1; p <= max_pos; p++) { // -1: all of the image's sentences
            int k = 0;
            for (int i = i0; i < i1; i++)
                if (p < 0 || pos[i] == p) sel[k++] = i;
            for (int j = 0; j < k; j++) sent[j] = set->pairs[sel[j]].cur;
            const int ns = vv_world_label_distinct(ch, s, sent, k, keep, lab);
            for (int j = 0; j < ns; j++) {
                const int i = sel[keep[j]];
                bv[j] = (float)vv_value_head_apply(h, feats + (size_t)i * h->n_embd);
                br[j] = set->pairs[i].reward;
            }
            vv_auc_add_image(p < 0 ? &av : &sv, bv, lab, ns);
            vv_auc_add_image(p < 0 ? &ar : &sr, br, lab, ns);
        }
    }
    if (!rc) {
        m->auc_v = vv_auc_value(&av);
        m->auc_r = vv_auc_value(&ar);
        m->sib_v = vv_auc_value(&sv);
        m->sib_r = vv_auc_value(&sr);
        m->auc_pairs = av.pairs;
        m->sib_pairs = sv.pairs;
    }
    vv_world_scenes_free(sc, n_sc);
    vv_chair_free(ch);
    free(keep), free(sel), free(pos), free(bv), free(br), free(lab), free(sent);
    return rc;
}

int vt_head_train(const vt_head_hp *hp, const char *out_path, vt_head_metrics *metrics, vv_error *e) {
    if (!hp->train_rewards) return vv_err(e, VISVM_ERR_INVALID, "train head needs --rewards");
    if (!hp->clip && (!hp->policy_text || !hp->policy_mmproj))
        return vv_err(e, VISVM_ERR_INVALID, "train head needs the policy (text and mmproj), or --clip");
    if (hp->ridge_to_reward && !hp->clip)
        return vv_err(e, VISVM_ERR_INVALID, "--ridge-to-reward applies to a CLIP backbone (--clip) only");
    if (!(hp->gamma >= 0 && hp->gamma <= 1)) return vv_err(e, VISVM_ERR_INVALID, "gamma %g out of [0, 1]", hp->gamma);
    if (!(hp->ridge >= 0 && hp->ridge < 1e6)) return vv_err(e, VISVM_ERR_INVALID, "ridge %g out of range", hp->ridge);
    if (hp->bilinear_rank && !hp->clip)
        return vv_err(e, VISVM_ERR_INVALID, "--bilinear applies to a CLIP backbone (--clip) only");
    if (hp->bilinear_rank < 0 || hp->bilinear_rank > 64)
        return vv_err(e, VISVM_ERR_INVALID, "--bilinear %d out of [0, 64]", hp->bilinear_rank);
    const double t0 = vv_time_s();
    const char *def_prompt = hp->prompt ? hp->prompt : "Describe the image in detail.";
    vt_td_set tr, va;
    memset(&tr, 0, sizeof(tr));
    memset(&va, 0, sizeof(va));
    vv_llama *pm = NULL;
    vv_clip *pv = NULL, *cb = NULL;
    vv_searcher *s = NULL;
    vv_pool *pool = vv_pool_create(hp->threads);
    float *ft = NULL, *fv = NULL, *rt = NULL, *rv = NULL;
    double *A = NULL, *bv = NULL;
    vv_value_head h;
    memset(&h, 0, sizeof(h));
    int rc = pool ? VISVM_OK : vv_err(e, VISVM_ERR_NOMEM, "cannot create threads");
    if (!rc) rc = vt_td_load(hp->train_rewards, &tr, e);
    if (!rc && hp->val_rewards) rc = vt_td_load(hp->val_rewards, &va, e);
    if (!rc && hp->clip) {
        rc = vv_clip_load_file(hp->clip, VISVM_VISION_REFERENCE, &cb, e);
        if (!rc && !cb->has_text) rc = vv_err(e, VISVM_ERR_FORMAT, "%s has no text encoder (--clip needs a full CLIP)", hp->clip);
    }
    if (!rc && !hp->clip) rc = vv_llama_load_file(hp->policy_text, &pm, e);
    if (!rc && !hp->clip) rc = vv_clip_load_file(hp->policy_mmproj, VISVM_VISION_REFERENCE, &pv, e);
    const int batch = 8;
    if (!rc && !hp->clip) {
        vv_search_models sm = {pm, pv, NULL, NULL, NULL};
        rc = vv_searcher_create(&sm, pool, batch, &s, e);
    }
    if (!rc && cb && hp->bilinear_rank > cb->proj_dim)
        rc = vv_err(e, VISVM_ERR_INVALID, "--bilinear %d exceeds the CLIP's %d features", hp->bilinear_rank, cb->proj_dim);
    const int D = cb ? vv_value_clip_n_features(cb->proj_dim, hp->bilinear_rank) : pm ? pm->hp.n_embd : 0, P = D + 1;
    if (!rc && cb) {
        h.rank = hp->bilinear_rank;
        h.proj_dim = cb->proj_dim;
        rt = malloc((size_t)tr.n_pairs * 2 * cb->proj_dim * sizeof(float));
        rv = va.n_pairs ? malloc((size_t)va.n_pairs * 2 * cb->proj_dim * sizeof(float)) : NULL;
        if (!rt || (va.n_pairs && !rv)) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    if (!rc) {
        ft = malloc((size_t)tr.n_pairs * D * sizeof(float));
        fv = va.n_pairs ? malloc((size_t)va.n_pairs * D * sizeof(float)) : NULL;
        A = calloc((size_t)P * P, sizeof(double));
        bv = calloc((size_t)P, sizeof(double));
        h.w = malloc((size_t)D * sizeof(float));
        h.n_embd = D;
        if (!ft || (va.n_pairs && !fv) || !A || !bv || !h.w) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    if (!rc && cb) rc = extract_clip(cb, pool, &tr, "training sentences", rt, e);
    if (!rc && cb && va.n_pairs) rc = extract_clip(cb, pool, &va, "held-out sentences", rv, e);
    if (!rc && cb && h.rank > 0) rc = fit_projections(rt, tr.n_pairs, cb->proj_dim, &h, e);
    if (!rc && cb) {
        clip_phi(&h, rt, tr.n_pairs, cb->proj_dim, ft);
        if (va.n_pairs) clip_phi(&h, rv, va.n_pairs, cb->proj_dim, fv);
    }
    free(rt);
    free(rv);
    rt = rv = NULL;
    if (!rc && !cb) rc = extract(s, &tr, def_prompt, D, batch, "training states", ft, e);
    if (!rc && !cb && va.n_pairs) rc = extract(s, &va, def_prompt, D, batch, "held-out states", fv, e);
    double off = hp->reward_offset;
    if (!rc && isnan(off)) {
        off = 0;
        for (int i = 0; i < tr.n_pairs; i++) off += tr.pairs[i].reward;
        off /= tr.n_pairs;
    }
    if (!rc) {
        // A = sum phi (phi - gamma phi')^T, b = sum phi (r - off); phi = [h, 1]. Centred:
        // every term minus its image's mean (only within-image differences count, which is
        // all a step's choice sees), w from the D x D system, then the bias that zeroes the
        // mean TD error
        const int Pc = hp->centre ? D : P, CH = 256; // pairs per GEMM: A += Phi^T Dn, b += Phi^T rr
        double *phi = malloc((size_t)P * sizeof(double)), *dn = malloc((size_t)P * sizeof(double));
        double *mphi = calloc((size_t)P, sizeof(double)), *mdn = calloc((size_t)P, sizeof(double));
        double *cphi = malloc((size_t)CH * Pc * sizeof(double)), *cdn = malloc((size_t)CH * Pc * sizeof(double));
        double *crr = malloc((size_t)CH * sizeof(double));
        int nc = 0;
        if (!phi || !dn || !mphi || !mdn || !cphi || !cdn || !crr) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        for (int r0 = 0, r1; r0 < tr.n_resp && !rc; r0 = r1) { // responses r0..r1 share an image
            const int im = tr.pairs[tr.resp_first[r0]].image;
            for (r1 = r0 + 1; r1 < tr.n_resp && tr.pairs[tr.resp_first[r1]].image == im; r1++) {}
            double mr = 0;
            memset(mphi, 0, (size_t)P * sizeof(double));
            memset(mdn, 0, (size_t)P * sizeof(double));
            if (hp->centre) { // the image's means
                int cnt = 0;
                for (int r = r0; r < r1; r++)
                    for (int i = 0; i < tr.resp_len[r]; i++, cnt++) {
                        mr += pair_terms(&tr, ft, D, hp->gamma, r, i, off, phi, dn);
                        for (int a = 0; a < P; a++) {
                            mphi[a] += phi[a];
                            mdn[a] += dn[a];
                        }
                    }
                for (int a = 0; a < P && cnt; a++) {
                    mphi[a] /= cnt;
                    mdn[a] /= cnt;
                }
                if (cnt) mr /= cnt;
            }
            for (int r = r0; r < r1; r++)
                for (int i = 0; i < tr.resp_len[r]; i++) {
                    const double rr = pair_terms(&tr, ft, D, hp->gamma, r, i, off, phi, dn) - mr;
                    for (int a = 0; a < Pc; a++) { // zero means unless centred
                        cphi[(size_t)nc * Pc + a] = phi[a] - mphi[a];
                        cdn[(size_t)nc * Pc + a] = dn[a] - mdn[a];
                    }
                    crr[nc++] = rr;
                    if (nc == CH) {
                        accumulate(A, bv, cphi, cdn, crr, nc, Pc);
                        nc = 0;
                    }
                }
        }
        if (!rc && nc) accumulate(A, bv, cphi, cdn, crr, nc, Pc);
        free(cphi);
        free(cdn);
        free(crr);
        // ridge relative to the mean squared feature, on the weights only
        double msq = 0;
        for (int i = 0; i < tr.n_pairs && !rc; i++)
            for (int d = 0; d < D; d++) msq += (double)ft[(size_t)i * D + d] * ft[(size_t)i * D + d];
        msq /= (double)tr.n_pairs * D;
        // toward zero, or (ridge_to_reward) toward the reward's head w0 = [1 (i*t), 0 (t), 0 (i)]:
        // lam (w - w0) added to the normal equations
        const double lam = hp->ridge * msq * tr.n_pairs;
        for (int d = 0; d < D && !rc; d++) {
            A[(size_t)d * Pc + d] += lam;
            if (hp->ridge_to_reward && d < D / 3) bv[d] += lam;
        }
        if (!rc) rc = vt_solve(A, bv, Pc, e);
        if (!rc) {
            for (int d = 0; d < D; d++) h.w[d] = (float)bv[d];
            h.bias = hp->centre ? 0.0f : (float)bv[D];
            if (hp->centre) { // mean over pairs of (r - off) + gamma V(s') - V(s) = 0 for the bias
                double num = 0, den = 0;
                for (int r = 0; r < tr.n_resp; r++) {
                    const int f = tr.resp_first[r], n = tr.resp_len[r];
                    for (int i = 0; i < n; i++) { // h.bias is 0 here: vv_value_head_apply gives w . h
                        const vt_td_pair *p = &tr.pairs[f + i];
                        const bool nt = i + 1 < n && !p->terminal;
                        const double wx = vv_value_head_apply(&h, ft + (size_t)(f + i) * D);
                        const double wxn = nt ? vv_value_head_apply(&h, ft + (size_t)(f + i + 1) * D) : 0;
                        num += (p->reward - off) + hp->gamma * wxn - wx;
                        den += 1 - (nt ? hp->gamma : 0);
                    }
                }
                h.bias = den > 0 ? (float)(num / den) : 0.0f;
            }
            for (int d = 0; d < D && !rc; d++)
                if (!isfinite(h.w[d])) rc = vv_err(e, VISVM_ERR_INVALID, "the LSTD solution is not finite (raise --ridge)");
        }
        free(mphi);
        free(mdn);
        free(phi);
        free(dn);
    }
    if (!rc) {
        h.gamma = hp->gamma;
        h.reward_offset = (float)off;
        snprintf(h.terminal, sizeof(h.terminal), "done_mask");
        snprintf(h.backbone, sizeof(h.backbone), "%s", cb ? "clip" : "policy");
        if (cb) { // the CLIP's file name (informational)
            const char *b = strrchr(hp->clip, '/');
            snprintf(h.policy, sizeof(h.policy), "%s", b ? b + 1 : hp->clip);
        }
        else snprintf(h.policy, sizeof(h.policy), "%s", pm->name ? pm->name : "");
        rc = vv_value_head_save(&h, out_path, e);
    }
    if (!rc && metrics) {
        memset(metrics, 0, sizeof(*metrics));
        metrics->n_train = tr.n_pairs;
        metrics->n_val = va.n_pairs;
        evaluate(&tr, ft, &h, hp->gamma, (float)off, &metrics->td_loss_train, &metrics->corr_train);
        if (va.n_pairs)
            evaluate(&va, fv, &h, hp->gamma, (float)off, &metrics->td_loss_val, &metrics->corr_val);
        if (va.n_pairs && hp->val_world) rc = head_auc(hp->val_world, &va, fv, &h, metrics, e);
        metrics->seconds = vv_time_s() - t0;
    }
    free(h.w);
    free(h.u_img);
    free(h.u_txt);
    free(A);
    free(bv);
    free(ft);
    free(fv);
    vv_searcher_free(s);
    vv_clip_free(pv);
    vv_clip_free(cb);
    vv_llama_free(pm);
    vv_pool_free(pool);
    vt_td_free(&tr);
    vt_td_free(&va);
    return rc;
}
