// loss.c - softmax cross-entropy, CLIP symmetric InfoNCE (with extra negative
// texts and a learned temperature) and MSE. Each returns the loss and writes
// the gradient of its inputs (see layers.h).
#include "internal.h"

#include <stdlib.h>

// ---------------------------------------------------------------------------
// cross-entropy

typedef struct {
    const float *logits;
    const int32_t *targets;
    const float *weights;
    float *row_loss, *dlogits;
    int64_t N, V;
    double inv_wsum, grad_scale;
} ce_job;

#define CE_ROWS(V) VV_MAX((int64_t)1, (int64_t)16384 / (V))

VT_CLONES static void ce_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const ce_job *j = (const ce_job *)arg;
    const int64_t V = j->V, r0 = t * CE_ROWS(V), r1 = VV_MIN(r0 + CE_ROWS(V), j->N);
    for (int64_t r = r0; r < r1; r++) {
        const float *x = j->logits + r * V;
        float *d = j->dlogits ? j->dlogits + r * V : NULL; // may alias x: each x[i] is read before d[i] is written
        const int32_t tgt = j->targets[r];
        if (tgt == VT_IGNORE_INDEX) {
            j->row_loss[r] = 0.0f;
            if (d) memset(d, 0, (size_t)V * sizeof(float));
            continue;
        }
        const float mx = vt_max_f32(x, V);
        float s[16] = {0};
        int64_t i = 0;
        for (; i + 16 <= V; i += 16)
            for (int q = 0; q < 16; q++) s[q] += vt_expf(x[i + q] - mx);
        float sum = 0;
        for (int q = 0; q < 16; q++) sum += s[q];
        for (; i < V; i++) sum += vt_expf(x[i] - mx);
        const float lse = mx + logf(sum);
        j->row_loss[r] = lse - x[tgt];
        if (d) {
            const float w = j->weights ? j->weights[r] : 1.0f;
            const float c = (float)(j->grad_scale * (double)w * j->inv_wsum);
            for (i = 0; i < V; i++) d[i] = c * vt_expf(x[i] - lse);
            d[tgt] -= c;
        }
    }
}

int vt_cross_entropy(vt_ctx *ctx, const float *logits, const int32_t *targets, const float *weights, int64_t N,
                     int64_t V, float *loss, float *row_loss, float *dlogits, float grad_scale) {
    if (!ctx) return VISVM_ERR_INVALID;
    int64_t n;
    if (N < 0 || V < 1 || !vt_mul3(N, V, 1, &n))
        return vt_fail(ctx, VISVM_ERR_INVALID, "vt_cross_entropy: invalid shape [%lld, %lld]", (long long)N,
                       (long long)V);
    if (!loss) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_cross_entropy: NULL loss");
    *loss = 0.0f;
    if (N == 0) return VISVM_OK;
    if (!logits || !targets) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_cross_entropy: NULL argument");
    double wsum = 0;
    for (int64_t r = 0; r < N; r++) {
        if (targets[r] == VT_IGNORE_INDEX) continue;
        if (targets[r] < 0 || targets[r] >= V)
            return vt_fail(ctx, VISVM_ERR_RANGE, "vt_cross_entropy: target %d at row %lld outside [0, %lld)",
                           targets[r], (long long)r, (long long)V);
        wsum += weights ? (double)weights[r] : 1.0;
    }
    float *rl = row_loss;
    if (!rl && !(rl = vt_scratch(ctx, (size_t)N))) return vt_ctx_status(ctx);
    ce_job j = {logits, targets, weights, rl, dlogits, N, V, wsum != 0 ? 1.0 / wsum : 0.0, grad_scale};
    vt_parallel(ctx, (N + CE_ROWS(V) - 1) / CE_ROWS(V), ce_task, &j);
    double acc = 0;
    for (int64_t r = 0; r < N; r++)
        if (targets[r] != VT_IGNORE_INDEX) acc += (weights ? (double)weights[r] : 1.0) * (double)rl[r];
    *loss = (float)(acc * j.inv_wsum);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// InfoNCE

// Normalises rows of x[n, D] into u, saving 1/max(|x|, 1e-12) per row.
static void l2_normalize(float *u, float *inv, const float *x, int64_t n, int64_t D) {
    for (int64_t i = 0; i < n; i++) {
        const float nrm = sqrtf(vt_dot_lanes(x + i * D, x + i * D, D));
        inv[i] = 1.0f / (nrm > 1e-12f ? nrm : 1e-12f);
        for (int64_t c = 0; c < D; c++) u[i * D + c] = x[i * D + c] * inv[i];
    }
}

// dx = inv * (du - u (u . du)), the backward of u = x / |x| (written).
static void l2_normalize_bwd(float *dx, const float *du, const float *u, const float *inv, int64_t n, int64_t D) {
    for (int64_t i = 0; i < n; i++) {
        const float p = vt_dot_lanes(u + i * D, du + i * D, D);
        for (int64_t c = 0; c < D; c++) dx[i * D + c] = inv[i] * (du[i * D + c] - u[i * D + c] * p);
    }
}

int vt_infonce(vt_ctx *ctx, const float *img, const float *txt, int64_t B, int64_t Bt, int64_t D, float logit_scale,
               vt_infonce_result *res, float *dimg, float *dtxt, float *dlogit_scale, float grad_scale) {
    if (!ctx) return VISVM_ERR_INVALID;
    int64_t n;
    if (B < 1 || Bt < B || D < 1 || !vt_mul3(B + Bt, D, 4, &n) || !vt_mul3(B, Bt, 4, &n))
        return vt_fail(ctx, VISVM_ERR_INVALID, "vt_infonce: invalid shape B=%lld Bt=%lld D=%lld (need Bt >= B >= 1)",
                       (long long)B, (long long)Bt, (long long)D);
    if (!img || !txt || !res) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_infonce: NULL argument");
    if (!isfinite(logit_scale)) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_infonce: logit_scale is not finite");
    // scratch: u[B,D] t[Bt,D] inv[B+Bt] cos[B,Bt] G[B,Bt] pc[B,B] du[B,D] dt[Bt,D]
    const size_t nu = (size_t)(B * D), nt = (size_t)(Bt * D), nl = (size_t)(B * Bt);
    float *u = vt_scratch(ctx, 2 * nu + 2 * nt + (size_t)(B + Bt) + 2 * nl + (size_t)(B * B));
    if (!u) return vt_ctx_status(ctx);
    float *t = u + nu, *inv = t + nt, *cs = inv + B + Bt, *G = cs + nl, *pc = G + nl, *du = pc + B * B, *dt = du + nu;

    l2_normalize(u, inv, img, B, D);
    l2_normalize(t, inv + B, txt, Bt, D);
    const float ls_max = logf(100.0f);
    const bool clamped = logit_scale > ls_max;
    const float s = expf(clamped ? ls_max : logit_scale);
    int rc = vt_matmul(ctx, false, true, B, Bt, D, 1.0f, u, D, t, D, 0.0f, cs, Bt); // cos[B, Bt]
    if (rc) return rc;

    // image -> text: softmax over each row (all Bt texts)
    double l_i2t = 0, l_t2i = 0;
    int64_t ok_i2t = 0, ok_t2i = 0;
    for (int64_t i = 0; i < B; i++) {
        const float *c = cs + i * Bt;
        float *g = G + i * Bt;
        float mx = -INFINITY;
        int64_t am = 0;
        for (int64_t j = 0; j < Bt; j++)
            if (s * c[j] > mx) {
                mx = s * c[j];
                am = j;
            }
        double sum = 0;
        for (int64_t j = 0; j < Bt; j++) {
            g[j] = vt_expf(s * c[j] - mx);
            sum += g[j];
        }
        const float lse = mx + (float)log(sum);
        l_i2t += lse - s * c[i];
        ok_i2t += am == i;
        const float invs = (float)(1.0 / sum);
        for (int64_t j = 0; j < Bt; j++) g[j] *= invs; // row softmax
    }
    // text -> image: softmax over each column j < B, rows i < B
    for (int64_t j = 0; j < B; j++) {
        float mx = -INFINITY;
        int64_t am = 0;
        for (int64_t i = 0; i < B; i++)
            if (s * cs[i * Bt + j] > mx) {
                mx = s * cs[i * Bt + j];
                am = i;
            }
        double sum = 0;
        for (int64_t i = 0; i < B; i++) {
            pc[i * B + j] = vt_expf(s * cs[i * Bt + j] - mx);
            sum += pc[i * B + j];
        }
        const float lse = mx + (float)log(sum);
        l_t2i += lse - s * cs[j * Bt + j];
        ok_t2i += am == j;
        const float invs = (float)(1.0 / sum);
        for (int64_t i = 0; i < B; i++) pc[i * B + j] *= invs;
    }
    res->loss_i2t = (float)(l_i2t / B);
    res->loss_t2i = (float)(l_t2i / B);
    res->loss = (float)(0.5 * (l_i2t + l_t2i) / B);
    res->acc_i2t = (float)ok_i2t / (float)B;
    res->acc_t2i = (float)ok_t2i / (float)B;
    res->scale = s;
    if (!dimg && !dtxt && !dlogit_scale) return VISVM_OK;

    // G = dloss/dlogits = grad_scale / (2B) * (P_row - I + [j < B] (P_col - I))
    const float k = grad_scale * 0.5f / (float)B;
    for (int64_t i = 0; i < B; i++)
        for (int64_t j = 0; j < Bt; j++) {
            float g = G[i * Bt + j];
            if (j < B) g += pc[i * B + j];
            if (j == i) g -= 2.0f;
            G[i * Bt + j] = k * g;
        }
    if (dlogit_scale && !clamped) {
        // dlogits/d(logit_scale) = s * cos
        double acc = 0;
        for (int64_t q = 0; q < (int64_t)nl; q++) acc += (double)G[q] * cs[q];
        *dlogit_scale += (float)(acc * s);
    }
    if (dimg) {
        if ((rc = vt_matmul(ctx, false, false, B, D, Bt, s, G, Bt, t, D, 0.0f, du, D))) return rc; // du = s G t
        l2_normalize_bwd(dimg, du, u, inv, B, D);
    }
    if (dtxt) {
        if ((rc = vt_matmul(ctx, true, false, Bt, D, B, s, G, Bt, u, D, 0.0f, dt, D))) return rc; // dt = s G^T u
        l2_normalize_bwd(dtxt, dt, t, inv + B, Bt, D);
    }
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// MSE

int vt_mse(vt_ctx *ctx, const float *pred, const float *target, const float *weights, int64_t n, float *loss,
           float *dpred, float grad_scale) {
    if (!ctx) return VISVM_ERR_INVALID;
    if (n < 0) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_mse: negative size");
    if (!loss) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_mse: NULL loss");
    *loss = 0.0f;
    if (n == 0) return VISVM_OK;
    if (!pred || !target) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_mse: NULL argument");
    double wsum = 0, acc = 0;
    for (int64_t i = 0; i < n; i++) {
        const double w = weights ? weights[i] : 1.0, e = (double)pred[i] - (double)target[i];
        wsum += w;
        acc += w * e * e;
    }
    const double inv = wsum != 0 ? 1.0 / wsum : 0.0;
    *loss = (float)(acc * inv);
    if (dpred)
        for (int64_t i = 0; i < n; i++) {
            const double w = weights ? weights[i] : 1.0;
            dpred[i] = (float)(grad_scale * 2.0 * w * inv * ((double)pred[i] - (double)target[i]));
        }
    return VISVM_OK;
}

int vt_group_centred_mse(vt_ctx *ctx, const float *pred, const float *target, const int *group, int64_t n,
                         float *loss, float *dpred, float grad_scale) {
    if (!ctx) return VISVM_ERR_INVALID;
    if (n < 0) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_group_centred_mse: negative size");
    if (!loss) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_group_centred_mse: NULL loss");
    *loss = 0.0f;
    if (n == 0) return VISVM_OK;
    if (!pred || !target || !group) return vt_fail(ctx, VISVM_ERR_INVALID, "vt_group_centred_mse: NULL argument");
    double acc = 0;
    for (int64_t i0 = 0, i1; i0 < n; i0 = i1) {
        double m = 0;
        for (i1 = i0; i1 < n && group[i1] == group[i0]; i1++) m += (double)pred[i1] - (double)target[i1];
        m /= (double)(i1 - i0);
        for (int64_t i = i0; i < i1; i++) {
            const double d = (double)pred[i] - (double)target[i] - m;
            acc += d * d;
            if (dpred) dpred[i] += (float)(grad_scale * 2.0 * d / (double)n);
        }
    }
    *loss = (float)(acc / (double)n);
    return VISVM_OK;
}
