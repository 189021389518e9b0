// test_train_optim.c - parameter sets, AdamW against hand-computed values,
// weight-decay flags, gradient clipping, LR schedule, a short training run
// that must fit its batch, and checkpoints (exact resume, validation errors).
#include "tcheck.h"
#include "train/ckpt.h"

#include <stdint.h>
#include <unistd.h>

static vt_ctx *g_ctx;
static char g_dir[256];

// ---------------------------------------------------------------------------
// AdamW

static void test_adamw_hand(void) {
    vt_params ps;
    vt_params_init(&ps);
    vv_error e = {0};
    int a, b, f;
    CHECK(vt_params_add(&ps, "w", 1, (int64_t[]){3}, 0, &a, &e) == VISVM_OK);
    CHECK(vt_params_add(&ps, "norm", 1, (int64_t[]){2}, VT_PARAM_NO_DECAY, &b, &e) == VISVM_OK);
    CHECK(vt_params_add(&ps, "frozen", 2, (int64_t[]){2, 2}, VT_PARAM_FROZEN, &f, &e) == VISVM_OK);
    CHECK(vt_params_add(&ps, "w", 1, (int64_t[]){3}, 0, NULL, &e) == VISVM_ERR_INVALID); // duplicate
    CHECK(vt_params_add(&ps, "bad", 2, (int64_t[]){3, 0}, 0, NULL, &e) == VISVM_ERR_INVALID);
    CHECK(vt_params_alloc(&ps, &e) == VISVM_OK);
    CHECK(vt_params_add(&ps, "late", 1, (int64_t[]){3}, 0, NULL, &e) == VISVM_ERR_INVALID);
    vt_param *w = &ps.items[a], *nb = &ps.items[b], *fr = &ps.items[f];
    CHECK(fr->grad == NULL && fr->m == NULL && fr->data != NULL);
    CHECK(vt_params_count(&ps, false) == 9 && vt_params_count(&ps, true) == 5);
    CHECK(((uintptr_t)w->data % 64) == 0 && ((uintptr_t)nb->grad % 64) == 0);
    const float w0[3] = {1.0f, -2.0f, 0.5f}, n0[2] = {1.0f, 3.0f};
    memcpy(w->data, w0, sizeof(w0));
    memcpy(nb->data, n0, sizeof(n0));
    vt_param_fill(fr, 7.0f);
    vt_adamw cfg = {0.9, 0.999, 1e-8, 0.1};
    const float lr = 0.1f;

    // step 1: m = 0.1 g, v = 0.001 g^2, bias-corrected m/sqrt(v) = sign(g):
    //   p = p (1 - lr wd) - lr g / (|g| + eps)
    const float g1[3] = {0.1f, -0.2f, 0.0f}, gn1[2] = {0.5f, 0.0f};
    vt_params_zero_grad(&ps);
    memcpy(w->grad, g1, sizeof(g1));
    memcpy(nb->grad, gn1, sizeof(gn1));
    CHECK(vt_adamw_step(g_ctx, &ps, &cfg, lr) == VISVM_OK);
    CHECK(ps.step == 1);
    CHECK_NEAR(w->data[0], 0.99 - 0.1, 1e-6);  // 0.89
    CHECK_NEAR(w->data[1], -1.98 + 0.1, 1e-6); // -1.88
    CHECK_NEAR(w->data[2], 0.495, 1e-7);       // zero gradient: only decay
    CHECK_NEAR(nb->data[0], 1.0 - 0.1, 1e-6);  // no decay
    CHECK(nb->data[1] == 3.0f);                // no decay, no gradient: unchanged
    CHECK(fr->data[0] == 7.0f && fr->data[3] == 7.0f);
    CHECK_NEAR(w->m[0], 0.01, 1e-9);
    CHECK_NEAR(w->v[1], 0.001 * 0.04, 1e-10);

    // step 2 against the PyTorch formula evaluated in double
    const float g2[3] = {-0.3f, 0.05f, 1.0f};
    double m[3], v[3], p[3];
    for (int i = 0; i < 3; i++) {
        m[i] = 0.1 * g1[i];
        v[i] = 0.001 * (double)g1[i] * g1[i];
        p[i] = w->data[i];
        m[i] = 0.9 * m[i] + 0.1 * g2[i];
        v[i] = 0.999 * v[i] + 0.001 * (double)g2[i] * g2[i];
        const double bc1 = 1 - 0.9 * 0.9, bc2 = 1 - 0.999 * 0.999;
        p[i] = p[i] * (1 - 0.1 * 0.1) - 0.1 / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + 1e-8);
    }
    vt_params_zero_grad(&ps);
    memcpy(w->grad, g2, sizeof(g2));
    CHECK(vt_adamw_step(g_ctx, &ps, &cfg, lr) == VISVM_OK);
    for (int i = 0; i < 3; i++) {
        CHECK_NEAR(w->data[i], p[i], 2e-6);
        CHECK_NEAR(w->m[i], m[i], 1e-7);
        CHECK_NEAR(w->v[i], v[i], 1e-9);
    }
    cfg.beta1 = 1.0; // invalid
    CHECK(vt_adamw_step(g_ctx, &ps, &cfg, lr) == VISVM_ERR_INVALID);
    CHECK(ps.step == 2);
    vt_ctx_clear_error(g_ctx);
    vt_params_free(&ps);
}

static void test_clip(void) {
    vt_params ps;
    vt_params_init(&ps);
    vt_params_add(&ps, "a", 1, (int64_t[]){1}, 0, NULL, NULL);
    vt_params_add(&ps, "b", 2, (int64_t[]){1, 1}, VT_PARAM_NO_DECAY, NULL, NULL);
    vt_params_add(&ps, "big", 1, (int64_t[]){40000}, 0, NULL, NULL); // several chunks
    CHECK(vt_params_alloc(&ps, NULL) == VISVM_OK);
    ps.items[0].grad[0] = 3.0f;
    ps.items[1].grad[0] = -4.0f;
    float norm = 0;
    CHECK(vt_clip_grad_norm(g_ctx, &ps, 10.0f, &norm) == VISVM_OK);
    CHECK_NEAR(norm, 5.0, 1e-6);
    CHECK(ps.items[0].grad[0] == 3.0f); // below the limit: unchanged
    CHECK(vt_clip_grad_norm(g_ctx, &ps, 1.0f, &norm) == VISVM_OK);
    CHECK_NEAR(norm, 5.0, 1e-6);
    CHECK_NEAR(ps.items[0].grad[0], 0.6, 1e-6);
    CHECK_NEAR(ps.items[1].grad[0], -0.8, 1e-6);
    CHECK(vt_clip_grad_norm(g_ctx, &ps, 0.0f, &norm) == VISVM_OK); // norm only
    CHECK_NEAR(norm, 1.0, 1e-6);
    for (int i = 0; i < 40000; i++) ps.items[2].grad[i] = 0.01f;
    CHECK(vt_clip_grad_norm(g_ctx, &ps, 0.0f, &norm) == VISVM_OK);
    CHECK_NEAR(norm, sqrt(1.0 + 40000 * 1e-4), 1e-5);
    ps.items[2].grad[123] = NAN;
    CHECK(vt_clip_grad_norm(g_ctx, &ps, 1.0f, &norm) == VISVM_OK);
    CHECK(isnan(norm));
    CHECK(ps.items[2].grad[0] == 0.01f); // not scaled: caller skips the step
    vt_params_zero_grad(&ps);
    CHECK(ps.items[2].grad[123] == 0.0f);
    vt_params_free(&ps);
}

static void test_schedule(void) {
    vt_lr_sched s = {1e-3f, 1e-4f, 10, 110};
    CHECK_NEAR(vt_lr_at(&s, 0), 1e-4, 1e-9);   // 1/10 of the peak
    CHECK_NEAR(vt_lr_at(&s, 4), 5e-4, 1e-9);
    CHECK_NEAR(vt_lr_at(&s, 9), 1e-3, 1e-9);   // warm-up ends at the peak
    CHECK_NEAR(vt_lr_at(&s, 10), 1e-3, 1e-9);  // cosine starts at the peak
    CHECK_NEAR(vt_lr_at(&s, 60), 5.5e-4, 1e-9); // half way: mean of peak and floor
    CHECK_NEAR(vt_lr_at(&s, 35), 1e-4 + 0.5 * 9e-4 * (1 + cos(M_PI * 0.25)), 1e-9);
    CHECK_NEAR(vt_lr_at(&s, 110), 1e-4, 1e-9);
    CHECK_NEAR(vt_lr_at(&s, 5000), 1e-4, 1e-9);
    vt_lr_sched s0 = {2e-3f, 0.0f, 0, 100};
    CHECK_NEAR(vt_lr_at(&s0, 0), 2e-3, 1e-9);
    CHECK_NEAR(vt_lr_at(&s0, 50), 1e-3, 1e-9);
    CHECK(vt_lr_at(&s0, 100) == 0.0f);
    // monotone decay after warm-up
    bool mono = true;
    for (int64_t t = 11; t <= 110; t++) mono = mono && vt_lr_at(&s, t) <= vt_lr_at(&s, t - 1);
    CHECK(mono);
}

// ---------------------------------------------------------------------------
// a 2-layer MLP classifier: linear -> GELU -> linear -> CE

enum { IN = 16, HID = 32, CLS = 8 };

typedef struct {
    vt_params ps;
    int w1, b1, w2, b2;
    int64_t cap; // batch rows
    float *h, *a, *logits, *dh, *da;
} mlp;

static int mlp_init(mlp *m, int64_t cap, uint64_t seed, bool extra) {
    memset(m, 0, sizeof(*m));
    vt_params_init(&m->ps);
    vv_error e = {0};
    int rc = vt_params_add(&m->ps, "fc1.weight", 2, (int64_t[]){HID, IN}, 0, &m->w1, &e);
    if (!rc) rc = vt_params_add(&m->ps, "fc1.bias", 1, (int64_t[]){HID}, VT_PARAM_NO_DECAY, &m->b1, &e);
    if (!rc) rc = vt_params_add(&m->ps, "fc2.weight", 2, (int64_t[]){CLS, HID}, 0, &m->w2, &e);
    if (!rc) rc = vt_params_add(&m->ps, "fc2.bias", 1, (int64_t[]){CLS}, VT_PARAM_NO_DECAY, &m->b2, &e);
    if (!rc && extra) rc = vt_params_add(&m->ps, "extra.weight", 1, (int64_t[]){5}, 0, NULL, &e);
    if (!rc) rc = vt_params_alloc(&m->ps, &e);
    if (rc) return rc;
    vv_rng r;
    vv_rng_seed(&r, seed);
    vt_param_init_normal(&m->ps.items[m->w1], 0.25f, &r);
    vt_param_init_normal(&m->ps.items[m->w2], 0.18f, &r);
    m->cap = cap;
    m->h = calloc((size_t)cap * HID, 4);
    m->a = calloc((size_t)cap * HID, 4);
    m->logits = calloc((size_t)cap * CLS, 4);
    m->dh = calloc((size_t)cap * HID, 4);
    m->da = calloc((size_t)cap * HID, 4);
    return VISVM_OK;
}

static void mlp_free(mlp *m) {
    vt_params_free(&m->ps);
    free(m->h), free(m->a), free(m->logits), free(m->dh), free(m->da);
}

// One optimizer step on rows X[N, IN], labels Y[N]. Returns the loss before the step.
static float mlp_step(mlp *m, const float *X, const int32_t *Y, int64_t N, float lr, const vt_adamw *cfg) {
    vt_param *P = m->ps.items;
    float loss = 0, norm = 0;
    vt_params_zero_grad(&m->ps);
    vt_linear_forward(g_ctx, m->h, X, P[m->w1].data, P[m->b1].data, N, IN, HID);
    vt_act_forward(g_ctx, VT_ACT_GELU_ERF, m->a, m->h, N * HID);
    vt_linear_forward(g_ctx, m->logits, m->a, P[m->w2].data, P[m->b2].data, N, HID, CLS);
    vt_cross_entropy(g_ctx, m->logits, Y, NULL, N, CLS, &loss, NULL, m->logits, 1.0f); // in place
    memset(m->da, 0, (size_t)N * HID * 4);
    memset(m->dh, 0, (size_t)N * HID * 4);
    vt_linear_backward(g_ctx, m->da, P[m->w2].grad, P[m->b2].grad, m->logits, m->a, P[m->w2].data, N, HID, CLS);
    vt_act_backward(g_ctx, VT_ACT_GELU_ERF, m->dh, m->da, m->h, N * HID);
    vt_linear_backward(g_ctx, NULL, P[m->w1].grad, P[m->b1].grad, m->dh, X, P[m->w1].data, N, IN, HID);
    vt_clip_grad_norm(g_ctx, &m->ps, 5.0f, &norm);
    vt_adamw_step(g_ctx, &m->ps, cfg, lr);
    return loss;
}

static void make_data(float *X, int32_t *Y, int64_t n, uint64_t seed) {
    vv_rng r;
    vv_rng_seed(&r, seed);
    for (int64_t i = 0; i < n * IN; i++) X[i] = vv_rng_normal(&r);
    for (int64_t i = 0; i < n; i++) Y[i] = (int32_t)vv_rng_below(&r, CLS);
}

static void test_training_run(void) {
    enum { N = 64 };
    float X[N * IN];
    int32_t Y[N];
    make_data(X, Y, N, 7); // random labels: the model must memorise the batch
    mlp m;
    CHECK(mlp_init(&m, N, 11, false) == VISVM_OK);
    vt_adamw cfg = vt_adamw_default();
    vt_lr_sched s = {2e-2f, 1e-3f, 10, 200};
    float first = 0, last = 0;
    double t0 = vv_time_s();
    for (int it = 0; it < 200; it++) {
        float l = mlp_step(&m, X, Y, N, vt_lr_at(&s, m.ps.step), &cfg);
        if (it == 0) first = l;
        last = l;
    }
    const double dt = vv_time_s() - t0;
    CHECK(vt_ctx_status(g_ctx) == VISVM_OK);
    CHECKF(first > 1.8f && last < first / 20, "training: loss %g -> %g", (double)first, (double)last);
    printf("  MLP 200 steps: loss %.4f -> %.5f (%.1f ms)\n", (double)first, (double)last, dt * 1e3);
    mlp_free(&m);
}

// ---------------------------------------------------------------------------
// checkpoints

enum { DATA_N = 256, BATCH = 24 };

// Trains `steps` steps on minibatches drawn with rng (so the RNG matters).
static void train_steps(mlp *m, vv_rng *rng, const float *X, const int32_t *Y, int steps) {
    float xb[BATCH * IN];
    int32_t yb[BATCH];
    vt_adamw cfg = vt_adamw_default();
    vt_lr_sched s = {1e-2f, 1e-3f, 5, 40};
    for (int it = 0; it < steps; it++) {
        for (int i = 0; i < BATCH; i++) {
            uint32_t k = vv_rng_below(rng, DATA_N);
            memcpy(xb + i * IN, X + k * IN, IN * sizeof(float));
            yb[i] = Y[k];
        }
        mlp_step(m, xb, yb, BATCH, vt_lr_at(&s, m->ps.step), &cfg);
    }
}

static bool same_state(const vt_params *a, const vt_params *b) {
    return a->n_data == b->n_data && a->n_train == b->n_train && a->step == b->step &&
           memcmp(a->data, b->data, a->n_data * 4) == 0 && memcmp(a->m, b->m, a->n_train * 4) == 0 &&
           memcmp(a->v, b->v, a->n_train * 4) == 0;
}

static int write_kv_hook(vv_gguf_writer *w, void *ud) {
    (void)ud;
    return vv_gguf_set_u32(w, "mlp.hidden", HID);
}
static int read_kv_hook(const vv_gguf *g, void *ud, vv_error *e) {
    return vv_gguf_get_u32(g, "mlp.hidden", (uint32_t *)ud, e);
}

static void test_resume_exact(void) {
    static float X[DATA_N * IN];
    static int32_t Y[DATA_N];
    make_data(X, Y, DATA_N, 99);
    const int N = 30, K = 12;
    char path[512];
    snprintf(path, sizeof(path), "%s/ckpt.gguf", g_dir);

    mlp straight;
    vv_rng r1;
    vv_rng_seed(&r1, 5);
    CHECK(mlp_init(&straight, BATCH, 3, false) == VISVM_OK);
    train_steps(&straight, &r1, X, Y, N);

    mlp first, resumed;
    vv_rng r2, r3;
    vv_rng_seed(&r2, 5);
    CHECK(mlp_init(&first, BATCH, 3, false) == VISVM_OK);
    train_steps(&first, &r2, X, Y, K);
    vt_ckpt_io io = {.rng = &r2, .meta = "{\"epoch\": 0, \"note\": \"test\"}", .write_kv = write_kv_hook};
    vv_error e = {0};
    CHECKF(vt_ckpt_save(path, &first.ps, &io, &e) == VISVM_OK, "save: %s", e.msg);

    CHECK(mlp_init(&resumed, BATCH, 777, false) == VISVM_OK); // different init: must be overwritten
    vv_rng_seed(&r3, 12345);
    char *meta = NULL;
    uint32_t hidden = 0;
    vt_ckpt_io lio = {.rng = &r3, .meta_out = &meta, .read_kv = read_kv_hook, .ud = &hidden};
    CHECKF(vt_ckpt_load(path, &resumed.ps, 0, &lio, &e) == VISVM_OK, "load: %s", e.msg);
    CHECK(same_state(&first.ps, &resumed.ps));
    CHECK(memcmp(&r2, &r3, sizeof(r2)) == 0);
    CHECK(meta && strcmp(meta, "{\"epoch\": 0, \"note\": \"test\"}") == 0);
    CHECK(hidden == HID);
    free(meta);
    train_steps(&resumed, &r3, X, Y, N - K);
    CHECKF(same_state(&straight.ps, &resumed.ps), "resumed training is not bit-identical to straight training");
    CHECK(resumed.ps.step == N);

    // the file is a plain GGUF: tensors with ne reversed from the row-major shape
    vv_gguf *g = NULL;
    CHECK(vv_gguf_open(path, &g, &e) == VISVM_OK);
    if (g) {
        const vv_tensor *t = vv_gguf_find_tensor(g, "fc1.weight");
        CHECK(t && t->type == VV_TYPE_F32 && t->n_dims == 2 && t->ne[0] == IN && t->ne[1] == HID);
        CHECK(t && memcmp(t->data, first.ps.items[first.w1].data, IN * HID * 4) == 0);
        CHECK(vv_gguf_find_tensor(g, "fc2.bias.adam_v") != NULL);
        CHECK(vv_gguf_n_tensors(g) == 12);
        vv_gguf_close(g);
    }
    mlp_free(&straight), mlp_free(&first), mlp_free(&resumed);
}

static void test_ckpt_errors(void) {
    char path[512], bad[512];
    snprintf(path, sizeof(path), "%s/err.gguf", g_dir);
    snprintf(bad, sizeof(bad), "%s/trunc.gguf", g_dir);
    mlp a, b;
    vv_error e = {0};
    CHECK(mlp_init(&a, 4, 1, false) == VISVM_OK);
    a.ps.step = 17;
    CHECK(vt_ckpt_save(path, &a.ps, NULL, &e) == VISVM_OK);

    // missing tensor: the loading model has a parameter the file lacks
    CHECK(mlp_init(&b, 4, 2, true) == VISVM_OK);
    float before = b.ps.items[b.w1].data[0];
    CHECK(vt_ckpt_load(path, &b.ps, 0, NULL, &e) == VISVM_ERR_NOT_FOUND);
    CHECKF(strstr(e.msg, "missing tensor 'extra.weight'") != NULL, "%s", e.msg);
    CHECK(b.ps.items[b.w1].data[0] == before && b.ps.step == 0); // unchanged on error
    // ... accepted with ALLOW_MISSING: the rest is loaded
    CHECK(vt_ckpt_load(path, &b.ps, VT_CKPT_ALLOW_MISSING, NULL, &e) == VISVM_OK);
    CHECK(b.ps.items[b.w1].data[0] == a.ps.items[a.w1].data[0] && b.ps.step == 17);
    mlp_free(&b);

    // unexpected tensor: the file has a parameter the model lacks
    CHECK(mlp_init(&b, 4, 2, true) == VISVM_OK);
    char path2[512];
    snprintf(path2, sizeof(path2), "%s/extra.gguf", g_dir);
    CHECK(vt_ckpt_save(path2, &b.ps, NULL, &e) == VISVM_OK);
    mlp_free(&b);
    CHECK(mlp_init(&b, 4, 2, false) == VISVM_OK);
    CHECK(vt_ckpt_load(path2, &b.ps, 0, NULL, &e) == VISVM_ERR_FORMAT);
    CHECKF(strstr(e.msg, "unexpected tensor 'extra.weight") != NULL, "%s", e.msg);
    CHECK(vt_ckpt_load(path2, &b.ps, VT_CKPT_ALLOW_EXTRA, NULL, &e) == VISVM_OK);
    mlp_free(&b);

    // shape mismatch
    vt_params ps;
    vt_params_init(&ps);
    vt_params_add(&ps, "fc1.weight", 2, (int64_t[]){IN, HID}, 0, NULL, NULL); // transposed
    vt_params_alloc(&ps, NULL);
    CHECK(vt_ckpt_load(path, &ps, VT_CKPT_ALLOW_EXTRA, NULL, &e) == VISVM_ERR_FORMAT);
    CHECKF(strstr(e.msg, "shape mismatch") && strstr(e.msg, "fc1.weight"), "%s", e.msg);
    vt_params_free(&ps);

    // a frozen parameter in the saving model has no moments: a trainable
    // loader needs VT_CKPT_WEIGHTS_ONLY
    vt_params_init(&ps);
    vt_params_add(&ps, "p", 1, (int64_t[]){4}, VT_PARAM_FROZEN, NULL, NULL);
    vt_params_alloc(&ps, NULL);
    vt_param_fill(&ps.items[0], 2.5f);
    CHECK(vt_ckpt_save(path2, &ps, NULL, &e) == VISVM_OK);
    vt_params_free(&ps);
    vt_params_init(&ps);
    vt_params_add(&ps, "p", 1, (int64_t[]){4}, 0, NULL, NULL);
    vt_params_alloc(&ps, NULL);
    ps.items[0].m[0] = 1.0f;
    CHECK(vt_ckpt_load(path2, &ps, 0, NULL, &e) == VISVM_ERR_NOT_FOUND);
    CHECKF(strstr(e.msg, "p.adam_m") != NULL, "%s", e.msg);
    CHECK(vt_ckpt_load(path2, &ps, VT_CKPT_WEIGHTS_ONLY, NULL, &e) == VISVM_OK);
    CHECK(ps.items[0].data[3] == 2.5f && ps.items[0].m[0] == 0.0f && ps.step == 0);
    // RNG requested but not stored
    vv_rng r;
    vt_ckpt_io io = {.rng = &r};
    CHECK(vt_ckpt_load(path, &a.ps, 0, &io, &e) == VISVM_ERR_NOT_FOUND);
    vt_params_free(&ps);

    // corrupt (truncated) file, missing file, not a checkpoint
    size_t n = 0;
    char *buf = tc_read(path, &n);
    CHECK(buf != NULL && n > 100);
    FILE *f = fopen(bad, "wb");
    if (f && buf) {
        fwrite(buf, 1, n / 2, f);
        fclose(f);
    }
    free(buf);
    CHECK(vt_ckpt_load(bad, &a.ps, 0, NULL, &e) == VISVM_ERR_FORMAT);
    CHECKF(strstr(e.msg, "trunc.gguf") != NULL, "%s", e.msg);
    snprintf(bad, sizeof(bad), "%s/nope.gguf", g_dir);
    CHECK(vt_ckpt_load(bad, &a.ps, 0, NULL, &e) == VISVM_ERR_IO);
    vv_gguf_writer *w = vv_gguf_writer_create();
    vv_gguf_set_str(w, "general.architecture", "llama");
    snprintf(bad, sizeof(bad), "%s/other.gguf", g_dir);
    CHECK(vv_gguf_writer_write(w, bad, &e) == VISVM_OK);
    vv_gguf_writer_free(w);
    CHECK(vt_ckpt_load(bad, &a.ps, 0, NULL, &e) == VISVM_ERR_NOT_FOUND);
    CHECKF(strstr(e.msg, "not a visvm checkpoint") != NULL, "%s", e.msg);
    // saving into a missing directory fails cleanly
    snprintf(bad, sizeof(bad), "%s/no/such/dir/x.gguf", g_dir);
    CHECK(vt_ckpt_save(bad, &a.ps, NULL, &e) == VISVM_ERR_IO);
    mlp_free(&a);
}

static void rm_dir(void) {
    const char *names[] = {"ckpt.gguf", "err.gguf", "extra.gguf", "trunc.gguf", "other.gguf"};
    char p[600];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", g_dir, names[i]);
        unlink(p);
    }
    rmdir(g_dir);
}

int main(void) {
    vv_error e = {0};
    if (vt_ctx_create(2, &g_ctx, &e) != VISVM_OK) {
        fprintf(stderr, "ctx: %s\n", e.msg);
        return 1;
    }
    const char *tmp = getenv("TMPDIR");
    snprintf(g_dir, sizeof(g_dir), "%s/vt_optim_XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g_dir)) {
        fprintf(stderr, "cannot create a temporary directory\n");
        return 1;
    }
    test_adamw_hand();
    test_clip();
    test_schedule();
    test_training_run();
    test_resume_exact();
    test_ckpt_errors();
    rm_dir();
    CHECKF(vt_ctx_status(g_ctx) == VISVM_OK, "unexpected error left in the context: %s", vt_ctx_error(g_ctx));
    vt_ctx_free(g_ctx);
    return tc_result("test_train_optim");
}
