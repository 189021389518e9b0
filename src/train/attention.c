// attention.c - RoPE (ggml NORM layout) and multi-head attention with GQA,
// causal/bidirectional masks and per-sequence padding, forward + backward.
#include "internal.h"

#include <cblas.h>
#include <stdlib.h>

// ---------------------------------------------------------------------------
// RoPE

#define ROPE_MAX_PAIRS 512 // n_rot <= 1024 (cos/sin tables live on the stack)
#define ROPE_ROWS 64       // rows per task

typedef struct {
    float *x;
    const int32_t *pos;
    int64_t ld, N;
    int n_head, hd, n_rot;
    float theta_scale, freq_scale;
    bool inverse;
} rope_job;

VT_CLONES static void rope_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const rope_job *j = (const rope_job *)arg;
    float cs[ROPE_MAX_PAIRS], sn[ROPE_MAX_PAIRS];
    const int np = j->n_rot / 2;
    const int64_t r0 = t * ROPE_ROWS, r1 = VV_MIN(r0 + ROPE_ROWS, j->N);
    for (int64_t r = r0; r < r1; r++) {
        // angles exactly as vv_rope_norm / ggml: theta *= theta_scale per pair
        float theta = (float)j->pos[r] * j->freq_scale;
        for (int i = 0; i < np; i++) {
            cs[i] = cosf(theta);
            sn[i] = j->inverse ? -sinf(theta) : sinf(theta); // R^T = rotation by -theta
            theta *= j->theta_scale;
        }
        for (int h = 0; h < j->n_head; h++) {
            float *v = j->x + r * j->ld + (int64_t)h * j->hd;
            for (int i = 0; i < np; i++) {
                const float x0 = v[2 * i], x1 = v[2 * i + 1];
                v[2 * i] = x0 * cs[i] - x1 * sn[i];
                v[2 * i + 1] = x0 * sn[i] + x1 * cs[i];
            }
        }
    }
}

static int rope_run(vt_ctx *ctx, const char *fn, float *x, int64_t ld, const int32_t *pos, int64_t N, int n_head,
                    int hd, int n_rot, float base, float freq_scale, bool inverse) {
    if (!ctx) return VISVM_ERR_INVALID;
    if (N < 0 || n_head < 1 || hd < 1 || n_rot < 2 || n_rot % 2 || n_rot > hd || n_rot > 2 * ROPE_MAX_PAIRS ||
        ld < (int64_t)n_head * hd || !(base > 0))
        return vt_fail(ctx, VISVM_ERR_INVALID, "%s: invalid shape N=%lld n_head=%d hd=%d n_rot=%d ld=%lld base=%g", fn,
                       (long long)N, n_head, hd, n_rot, (long long)ld, (double)base);
    if (N == 0) return VISVM_OK;
    int64_t tot;
    if (!vt_mul3(N, ld, 1, &tot)) return vt_fail(ctx, VISVM_ERR_INVALID, "%s: size overflow", fn);
    if (!x || !pos) return vt_fail(ctx, VISVM_ERR_INVALID, "%s: NULL argument", fn);
    rope_job j = {x, pos, ld, N, n_head, hd, n_rot, powf(base, -2.0f / (float)n_rot), freq_scale, inverse};
    vt_parallel(ctx, (N + ROPE_ROWS - 1) / ROPE_ROWS, rope_task, &j);
    return VISVM_OK;
}

int vt_rope_forward(vt_ctx *ctx, float *x, int64_t ld, const int32_t *pos, int64_t N, int n_head, int hd, int n_rot,
                    float base, float freq_scale) {
    return rope_run(ctx, __func__, x, ld, pos, N, n_head, hd, n_rot, base, freq_scale, false);
}

int vt_rope_backward(vt_ctx *ctx, float *d, int64_t ld, const int32_t *pos, int64_t N, int n_head, int hd, int n_rot,
                     float base, float freq_scale) {
    return rope_run(ctx, __func__, d, ld, pos, N, n_head, hd, n_rot, base, freq_scale, true);
}

// ---------------------------------------------------------------------------
// attention

typedef struct {
    const vt_attn_dims *d;
    int64_t ldq, ldk, ldv, ldo;
    float scale;
    float *out, *probs, *dq, *dk, *dv, *scratch;
    const float *q, *k, *v, *dout, *cprobs;
} attn_job;

static int64_t seq_len(const attn_job *a, int64_t b) { return a->d->lens ? a->d->lens[b] : a->d->T; }

// Softmax over row[0:n] in place, zeros in row[n:T].
VT_CLONES static void softmax_row(float *row, int64_t n, int64_t T) {
    const float mx = vt_max_f32(row, n);
    float s[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int q = 0; q < 16; q++) {
            const float e = vt_expf(row[i + q] - mx);
            row[i + q] = e;
            s[q] += e;
        }
    float sum = 0;
    for (int q = 0; q < 16; q++) sum += s[q];
    for (; i < n; i++) {
        const float e = vt_expf(row[i] - mx);
        row[i] = e;
        sum += e;
    }
    const float inv = 1.0f / sum;
    for (i = 0; i < n; i++) row[i] *= inv;
    for (; i < T; i++) row[i] = 0.0f;
}

// Causal attention runs in blocks of query rows: block [i0, i1) only needs
// keys [0, i1), so about half of the T x T work above the diagonal is skipped.
#define CAUSAL_BLOCK 64

// One (sequence b, head h) pair.
static void attn_fwd_task(void *arg, int64_t t, int ith) {
    (void)ith;
    const attn_job *a = (const attn_job *)arg;
    const vt_attn_dims *d = a->d;
    const int64_t T = d->T, b = t / d->n_head, L = seq_len(a, b);
    const int h = (int)(t % d->n_head), g = h / (d->n_head / d->n_kv), hd = d->hd;
    float *P = a->probs + t * T * T;
    const float *Q = a->q + b * T * a->ldq + (int64_t)h * hd;
    const float *K = a->k + b * T * a->ldk + (int64_t)g * hd;
    const float *V = a->v + b * T * a->ldv + (int64_t)g * hd;
    float *O = a->out + b * T * a->ldo + (int64_t)h * hd;
    const int64_t rb = d->causal ? CAUSAL_BLOCK : VV_MAX(L, (int64_t)1);
    for (int64_t i0 = 0; i0 < L; i0 += rb) {
        const int64_t i1 = VV_MIN(i0 + rb, L), m = i1 - i0, nk = d->causal ? i1 : L;
        // S[i0:i1, 0:nk] = scale Q K^T, softmax per row (zeros past each row's visible keys)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nk, hd, a->scale, Q + i0 * a->ldq,
                    (int)a->ldq, K, (int)a->ldk, 0.0f, P + i0 * T, (int)T);
        for (int64_t i = i0; i < i1; i++) softmax_row(P + i * T, d->causal ? i + 1 : L, T);
        // O[i0:i1] = P[i0:i1, 0:nk] V[0:nk]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, hd, (int)nk, 1.0f, P + i0 * T, (int)T, V,
                    (int)a->ldv, 0.0f, O + i0 * a->ldo, (int)a->ldo);
    }
    for (int64_t i = L; i < T; i++) { // padded query rows: no probabilities, zero output
        memset(P + i * T, 0, (size_t)T * sizeof(float));
        memset(O + i * a->ldo, 0, (size_t)hd * sizeof(float));
    }
}

// Rows [i0, i1) of dS = P * (dP - rowsum(P * dP)) over the visible keys, in
// place in dP; zeros up to column nk (masked keys inside the block).
VT_CLONES static void softmax_bwd_rows(float *dP, const float *P, int64_t i0, int64_t i1, int64_t nk, int64_t L,
                                      int64_t T, bool causal) {
    for (int64_t i = i0; i < i1; i++) {
        const int64_t n = causal ? i + 1 : L;
        float *dr = dP + i * T;
        const float *pr = P + i * T;
        const float dot = vt_dot_lanes(pr, dr, n);
        for (int64_t j = 0; j < n; j++) dr[j] = pr[j] * (dr[j] - dot);
        for (int64_t j = n; j < nk; j++) dr[j] = 0.0f;
    }
}

// One (sequence b, KV head g) pair: its query heads (and row blocks) run in
// order, so the dK/dV sums have a fixed order and no other task touches them.
static void attn_bwd_task(void *arg, int64_t t, int ith) {
    const attn_job *a = (const attn_job *)arg;
    const vt_attn_dims *d = a->d;
    const int64_t T = d->T, b = t / d->n_kv, L = seq_len(a, b);
    const int g = (int)(t % d->n_kv), group = d->n_head / d->n_kv, hd = d->hd;
    if (L == 0) return;
    float *dP = a->scratch + (size_t)ith * (size_t)(T * T);
    const float *K = a->k + b * T * a->ldk + (int64_t)g * hd;
    const float *V = a->v + b * T * a->ldv + (int64_t)g * hd;
    float *dK = a->dk + b * T * a->ldk + (int64_t)g * hd;
    float *dV = a->dv + b * T * a->ldv + (int64_t)g * hd;
    const int64_t rb = d->causal ? CAUSAL_BLOCK : L;
    for (int h = g * group; h < (g + 1) * group; h++) {
        const float *P = a->cprobs + (b * d->n_head + h) * T * T;
        const float *Q = a->q + b * T * a->ldq + (int64_t)h * hd;
        const float *dO = a->dout + b * T * a->ldo + (int64_t)h * hd;
        float *dQ = a->dq + b * T * a->ldq + (int64_t)h * hd;
        for (int64_t i0 = 0; i0 < L; i0 += rb) {
            const int64_t i1 = VV_MIN(i0 + rb, L), m = i1 - i0, nk = d->causal ? i1 : L;
            const float *Pb = P + i0 * T, *dOb = dO + i0 * a->ldo;
            float *dPb = dP + i0 * T;
            // dV[0:nk] += P[i0:i1, 0:nk]^T dO[i0:i1]
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, hd, (int)m, 1.0f, Pb, (int)T, dOb,
                        (int)a->ldo, 1.0f, dV, (int)a->ldv);
            // dP = dO V^T, then through the softmax
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)nk, hd, 1.0f, dOb, (int)a->ldo, V,
                        (int)a->ldv, 0.0f, dPb, (int)T);
            softmax_bwd_rows(dP, P, i0, i1, nk, L, T, d->causal);
            // dQ[i0:i1] += scale dS K[0:nk];  dK[0:nk] += scale dS^T Q[i0:i1]
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, hd, (int)nk, a->scale, dPb, (int)T, K,
                        (int)a->ldk, 1.0f, dQ + i0 * a->ldq, (int)a->ldq);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)nk, hd, (int)m, a->scale, dPb, (int)T,
                        Q + i0 * a->ldq, (int)a->ldq, 1.0f, dK, (int)a->ldk);
        }
    }
}

static int attn_setup(vt_ctx *ctx, const char *fn, const vt_attn_dims *d, attn_job *a) {
    if (!d) return vt_fail(ctx, VISVM_ERR_INVALID, "%s: NULL dims", fn);
    if (d->B < 0 || d->T < 1 || d->T > INT_MAX || d->n_head < 1 || d->n_kv < 1 || d->n_head % d->n_kv || d->hd < 1)
        return vt_fail(ctx, VISVM_ERR_INVALID, "%s: invalid dims B=%lld T=%lld n_head=%d n_kv=%d hd=%d", fn,
                       (long long)d->B, (long long)d->T, d->n_head, d->n_kv, d->hd);
    const int64_t wq = (int64_t)d->n_head * d->hd, wk = (int64_t)d->n_kv * d->hd;
    a->d = d;
    a->ldq = d->ldq ? d->ldq : wq;
    a->ldk = d->ldk ? d->ldk : wk;
    a->ldv = d->ldv ? d->ldv : wk;
    a->ldo = d->ldo ? d->ldo : wq;
    if (a->ldq < wq || a->ldk < wk || a->ldv < wk || a->ldo < wq || !vt_fits_int(a->ldq) || !vt_fits_int(a->ldk) ||
        !vt_fits_int(a->ldv) || !vt_fits_int(a->ldo))
        return vt_fail(ctx, VISVM_ERR_INVALID, "%s: row strides too small or too large", fn);
    int64_t n, np;
    const int64_t ldmax = VV_MAX(VV_MAX(a->ldq, a->ldk), VV_MAX(a->ldv, a->ldo));
    if (!vt_mul3(d->B, d->T, ldmax, &n) || !vt_mul3(d->B * d->n_head, d->T, d->T, &np))
        return vt_fail(ctx, VISVM_ERR_INVALID, "%s: size overflow", fn);
    if (d->lens)
        for (int64_t b = 0; b < d->B; b++)
            if (d->lens[b] < 0 || d->lens[b] > d->T)
                return vt_fail(ctx, VISVM_ERR_RANGE, "%s: length %d of sequence %lld outside [0, %lld]", fn,
                               d->lens[b], (long long)b, (long long)d->T);
    a->scale = 1.0f / sqrtf((float)d->hd);
    return VISVM_OK;
}

int vt_attention_forward(vt_ctx *ctx, const vt_attn_dims *d, float *out, float *probs, const float *q, const float *k,
                         const float *v) {
    if (!ctx) return VISVM_ERR_INVALID;
    attn_job a = {0};
    int rc = attn_setup(ctx, __func__, d, &a);
    if (rc) return rc;
    if (d->B == 0) return VISVM_OK;
    if (!out || !probs || !q || !k || !v) return vt_fail(ctx, VISVM_ERR_INVALID, "%s: NULL argument", __func__);
    a.out = out;
    a.probs = probs;
    a.q = q;
    a.k = k;
    a.v = v;
    vt_parallel(ctx, d->B * d->n_head, attn_fwd_task, &a);
    return VISVM_OK;
}

int vt_attention_backward(vt_ctx *ctx, const vt_attn_dims *d, float *dq, float *dk, float *dv, const float *dout,
                          const float *probs, const float *q, const float *k, const float *v) {
    if (!ctx) return VISVM_ERR_INVALID;
    attn_job a = {0};
    int rc = attn_setup(ctx, __func__, d, &a);
    if (rc) return rc;
    if (d->B == 0) return VISVM_OK;
    if (!dq || !dk || !dv || !dout || !probs || !q || !k || !v)
        return vt_fail(ctx, VISVM_ERR_INVALID, "%s: NULL argument", __func__);
    a.scratch = vt_scratch(ctx, (size_t)ctx->n_threads * (size_t)(d->T * d->T));
    if (!a.scratch) return vt_ctx_status(ctx);
    a.dq = dq;
    a.dk = dk;
    a.dv = dv;
    a.dout = dout;
    a.cprobs = probs;
    a.q = q;
    a.k = k;
    a.v = v;
    vt_parallel(ctx, d->B * d->n_kv, attn_bwd_task, &a);
    return VISVM_OK;
}
