// test_llama.c - the decoder against an independent float64 reference on a
// tiny random model written with our GGUF writer; batching, chunking, paged
// KV forks (copy-on-write), truncation and error paths; and a wider Q8_0 /
// Q4_0 model whose matrices are repacked at load (identical logits to
// VISVM_REPACK=0, raw pages untouched).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "format/gguf.h"
#include "model/llama.h"
#include "tcheck.h"
#include "tensor/kernels_internal.h"

enum { V = 300, E = 64, NL = 2, NH = 4, NKV = 2, HD = E / NH, FF = 96 };

typedef struct {
    float *tok, *out, *onorm;
    float *an[NL], *wq[NL], *wk[NL], *wv[NL], *wo[NL], *fn[NL], *wg[NL], *wu[NL], *wd[NL];
} weights;

static float *rnd(vv_rng *r, size_t n, float scale, float offset) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = offset + scale * vv_rng_normal(r);
    return x;
}

static void make_weights(weights *w, uint64_t seed) {
    vv_rng r;
    vv_rng_seed(&r, seed);
    w->tok = rnd(&r, (size_t)V * E, 0.5f, 0);
    w->out = rnd(&r, (size_t)V * E, 0.1f, 0);
    w->onorm = rnd(&r, E, 0.1f, 1);
    for (int l = 0; l < NL; l++) {
        w->an[l] = rnd(&r, E, 0.1f, 1);
        w->wq[l] = rnd(&r, (size_t)E * E, 0.1f, 0);
        w->wk[l] = rnd(&r, (size_t)E * NKV * HD, 0.1f, 0);
        w->wv[l] = rnd(&r, (size_t)E * NKV * HD, 0.1f, 0);
        w->wo[l] = rnd(&r, (size_t)E * E, 0.1f, 0);
        w->fn[l] = rnd(&r, E, 0.1f, 1);
        w->wg[l] = rnd(&r, (size_t)E * FF, 0.1f, 0);
        w->wu[l] = rnd(&r, (size_t)E * FF, 0.1f, 0);
        w->wd[l] = rnd(&r, (size_t)FF * E, 0.1f, 0);
    }
}

static void free_weights(weights *w) {
    free(w->tok);
    free(w->out);
    free(w->onorm);
    for (int l = 0; l < NL; l++) {
        free(w->an[l]); free(w->wq[l]); free(w->wk[l]); free(w->wv[l]); free(w->wo[l]);
        free(w->fn[l]); free(w->wg[l]); free(w->wu[l]); free(w->wd[l]);
    }
}

// Stores a [n_out][n_in] f32 matrix in `type` (quantised row by row).
static void *conv(int type, const float *x, int64_t n_in, int64_t n_out) {
    size_t rs = vv_row_size(type, n_in);
    char *d = malloc(rs * (size_t)n_out);
    for (int64_t r = 0; r < n_out; r++) vv_quantize_row(type, x + r * n_in, d + r * rs, n_in);
    return d;
}

// A writer holding the llama hyper-parameters and the test's vocabulary.
static vv_gguf_writer *start_model(int ctx, int embd, int n_layer, int n_ff, int n_head, int n_head_kv) {
    vv_gguf_writer *g = vv_gguf_writer_create();
    vv_gguf_set_str(g, "general.architecture", "llama");
    vv_gguf_set_u32(g, "llama.context_length", (uint32_t)ctx);
    vv_gguf_set_u32(g, "llama.embedding_length", (uint32_t)embd);
    vv_gguf_set_u32(g, "llama.block_count", (uint32_t)n_layer);
    vv_gguf_set_u32(g, "llama.feed_forward_length", (uint32_t)n_ff);
    vv_gguf_set_u32(g, "llama.attention.head_count", (uint32_t)n_head);
    vv_gguf_set_u32(g, "llama.attention.head_count_kv", (uint32_t)n_head_kv);
    vv_gguf_set_f32(g, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    vv_gguf_set_str(g, "tokenizer.ggml.model", "llama");
    char *texts[V];
    float scores[V];
    int32_t types[V];
    for (int i = 0; i < V; i++) {
        char b[16];
        if (i == 0) snprintf(b, sizeof(b), "<unk>");
        else if (i == 1) snprintf(b, sizeof(b), "<s>");
        else if (i == 2) snprintf(b, sizeof(b), "</s>");
        else snprintf(b, sizeof(b), "\xe2\x96\x81w%d", i);
        texts[i] = strdup(b);
        scores[i] = -(float)i;
        types[i] = i == 0 ? 2 : i < 3 ? 3 : 1;
    }
    vv_gguf_set_arr_str(g, "tokenizer.ggml.tokens", (const char *const *)texts, V);
    vv_gguf_set_arr(g, "tokenizer.ggml.scores", VV_GGUF_FLOAT32, scores, V);
    vv_gguf_set_arr(g, "tokenizer.ggml.token_type", VV_GGUF_INT32, types, V);
    vv_gguf_set_u32(g, "tokenizer.ggml.bos_token_id", 1);
    vv_gguf_set_u32(g, "tokenizer.ggml.eos_token_id", 2);
    for (int i = 0; i < V; i++) free(texts[i]);
    return g;
}

// Writes the model (matrices in `type`) to memory; returns the GGUF image.
static void *write_model(const weights *w, int type, bool tied, size_t *size, void ***bufs, int *n_bufs) {
    vv_gguf_writer *g = start_model(512, E, NL, FF, NH, NKV);
    vv_gguf_set_f32(g, "llama.rope.freq_base", 10000.0f);
    *bufs = calloc(64, sizeof(void *));
    *n_bufs = 0;
#define ADD2(name, x, nin, nout)                                  \
    do {                                                          \
        void *d = conv(type, x, nin, nout);                       \
        (*bufs)[(*n_bufs)++] = d;                                 \
        int64_t ne[2] = {nin, nout};                              \
        vv_gguf_add_tensor(g, name, type, 2, ne, d);              \
    } while (0)
#define ADD1(name, x, n)                                          \
    do {                                                          \
        int64_t ne[1] = {n};                                      \
        vv_gguf_add_tensor(g, name, VV_TYPE_F32, 1, ne, x);       \
    } while (0)
    ADD2("token_embd.weight", w->tok, E, V);
    char n[64];
    for (int l = 0; l < NL; l++) {
        snprintf(n, sizeof(n), "blk.%d.attn_norm.weight", l); ADD1(n, w->an[l], E);
        snprintf(n, sizeof(n), "blk.%d.attn_q.weight", l); ADD2(n, w->wq[l], E, E);
        snprintf(n, sizeof(n), "blk.%d.attn_k.weight", l); ADD2(n, w->wk[l], E, NKV * HD);
        snprintf(n, sizeof(n), "blk.%d.attn_v.weight", l); ADD2(n, w->wv[l], E, NKV * HD);
        snprintf(n, sizeof(n), "blk.%d.attn_output.weight", l); ADD2(n, w->wo[l], E, E);
        snprintf(n, sizeof(n), "blk.%d.ffn_norm.weight", l); ADD1(n, w->fn[l], E);
        snprintf(n, sizeof(n), "blk.%d.ffn_gate.weight", l); ADD2(n, w->wg[l], E, FF);
        snprintf(n, sizeof(n), "blk.%d.ffn_up.weight", l); ADD2(n, w->wu[l], E, FF);
        snprintf(n, sizeof(n), "blk.%d.ffn_down.weight", l); ADD2(n, w->wd[l], FF, E);
    }
    ADD1("output_norm.weight", w->onorm, E);
    if (!tied) ADD2("output.weight", w->out, E, V);
    void *mem = NULL;
    vv_error e = {0};
    if (vv_gguf_writer_write_mem(g, &mem, size, &e)) fprintf(stderr, "write: %s\n", e.msg);
    vv_gguf_writer_free(g);
    return mem;
}

// ---------------------------------------------------------------------------
// float64 reference forward (the golden README's formulas)

static void ref_rms(const double *x, const float *w, double *y) {
    double ss = 0;
    for (int i = 0; i < E; i++) ss += x[i] * x[i];
    double s = 1.0 / sqrt(ss / E + 1e-5);
    for (int i = 0; i < E; i++) y[i] = x[i] * s * w[i];
}

static void ref_mv(const float *W, const double *x, int nin, int nout, double *y) {
    for (int j = 0; j < nout; j++) {
        double s = 0;
        for (int i = 0; i < nin; i++) s += (double)W[(size_t)j * nin + i] * x[i];
        y[j] = s;
    }
}

static void ref_rope(double *v, int nh, int pos) {
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < HD; i += 2) {
            double th = pos * pow(10000.0, -(double)i / HD);
            double a = v[h * HD + i], b = v[h * HD + i + 1];
            v[h * HD + i] = a * cos(th) - b * sin(th);
            v[h * HD + i + 1] = a * sin(th) + b * cos(th);
        }
}

// logits [n, V] of the sequence toks[0..n)
static void ref_forward(const weights *w, bool tied, const int32_t *toks, int n, double *logits) {
    double *x = calloc((size_t)n * E, sizeof(double)), *K = calloc((size_t)n * NKV * HD, sizeof(double)),
           *Vv = calloc((size_t)n * NKV * HD, sizeof(double));
    double h[E], q[E], att[E], o[E], g[FF], u[FF], s[512];
    for (int t = 0; t < n; t++)
        for (int i = 0; i < E; i++) x[t * E + i] = w->tok[(size_t)toks[t] * E + i];
    for (int l = 0; l < NL; l++) {
        for (int t = 0; t < n; t++) { // K, V of all positions first (causal attention reads only <= t)
            ref_rms(x + t * E, w->an[l], h);
            ref_mv(w->wk[l], h, E, NKV * HD, K + t * NKV * HD);
            ref_mv(w->wv[l], h, E, NKV * HD, Vv + t * NKV * HD);
            ref_rope(K + t * NKV * HD, NKV, t);
        }
        double *nx = calloc((size_t)n * E, sizeof(double));
        for (int t = 0; t < n; t++) {
            ref_rms(x + t * E, w->an[l], h);
            ref_mv(w->wq[l], h, E, E, q);
            ref_rope(q, NH, t);
            for (int hh = 0; hh < NH; hh++) {
                int kv = hh / (NH / NKV);
                double mx = -1e300, sum = 0;
                for (int j = 0; j <= t; j++) {
                    double d = 0;
                    for (int i = 0; i < HD; i++) d += q[hh * HD + i] * K[(j * NKV + kv) * HD + i];
                    s[j] = d / sqrt((double)HD);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j <= t; j++) sum += (s[j] = exp(s[j] - mx));
                for (int i = 0; i < HD; i++) {
                    double a = 0;
                    for (int j = 0; j <= t; j++) a += s[j] / sum * Vv[(j * NKV + kv) * HD + i];
                    att[hh * HD + i] = a;
                }
            }
            ref_mv(w->wo[l], att, E, E, o);
            for (int i = 0; i < E; i++) nx[t * E + i] = x[t * E + i] + o[i];
            ref_rms(nx + t * E, w->fn[l], h);
            ref_mv(w->wg[l], h, E, FF, g);
            ref_mv(w->wu[l], h, E, FF, u);
            for (int i = 0; i < FF; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            ref_mv(w->wd[l], g, FF, E, o);
            for (int i = 0; i < E; i++) nx[t * E + i] += o[i];
        }
        memcpy(x, nx, (size_t)n * E * sizeof(double));
        free(nx);
    }
    for (int t = 0; t < n; t++) {
        ref_rms(x + t * E, w->onorm, h);
        ref_mv(tied ? w->tok : w->out, h, E, V, logits + (size_t)t * V);
    }
    free(x);
    free(K);
    free(Vv);
}

static double max_err(const float *a, const double *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}


// A 1-layer model wide enough for the load-time repack (512; F16 panels need
// 1024 inputs), matrices in `type`, written to memory with the test's vocabulary.
static void *write_wide(int type, size_t *size, void ***bufs, int *n_bufs) {
    const int WE = type == VV_TYPE_F16 ? 1024 : 512, WF = 2 * WE, WH = 8, WKV = 4;
    vv_gguf_writer *g = start_model(256, WE, 1, WF, WH, WKV);
    vv_rng r;
    vv_rng_seed(&r, 4242);
    *bufs = calloc(16, sizeof(void *));
    *n_bufs = 0;
    const struct { const char *name; int64_t nin, nout; bool vec; } t[] = {
        {"token_embd.weight", WE, V, false}, {"blk.0.attn_norm.weight", WE, 1, true},
        {"blk.0.attn_q.weight", WE, WE, false}, {"blk.0.attn_k.weight", WE, WE / 2, false},
        {"blk.0.attn_v.weight", WE, WE / 2, false}, {"blk.0.attn_output.weight", WE, WE, false},
        {"blk.0.ffn_norm.weight", WE, 1, true}, {"blk.0.ffn_gate.weight", WE, WF, false},
        {"blk.0.ffn_up.weight", WE, WF, false}, {"blk.0.ffn_down.weight", WF, WE, false},
        {"output_norm.weight", WE, 1, true}, {"output.weight", WE, V, false}};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        float *x = rnd(&r, (size_t)(t[i].nin * t[i].nout), t[i].vec ? 0.1f : 0.05f, t[i].vec ? 1.0f : 0.0f);
        if (t[i].vec) {
            (*bufs)[(*n_bufs)++] = x;
            vv_gguf_add_tensor(g, t[i].name, VV_TYPE_F32, 1, (int64_t[]){t[i].nin}, x);
        } else {
            void *d = conv(type, x, t[i].nin, t[i].nout);
            free(x);
            (*bufs)[(*n_bufs)++] = d;
            vv_gguf_add_tensor(g, t[i].name, type, 2, (int64_t[]){t[i].nin, t[i].nout}, d);
        }
    }
    void *mem = NULL;
    vv_error e = {0};
    if (vv_gguf_writer_write_mem(g, &mem, size, &e)) fprintf(stderr, "write: %s\n", e.msg);
    vv_gguf_writer_free(g);
    return mem;
}

// Logits of 12 tokens (prefill of 9, then 3 single steps) with repacking on or off.
static void wide_logits(const void *mem, size_t size, bool repack, vv_pool *pool, float *out, bool *packed) {
    vv_error e = {0};
    vv_gguf *g = NULL;
    vv_llama *m = NULL;
    if (!repack) setenv("VISVM_REPACK", "0", 1);
    CHECK(vv_gguf_open_mem(mem, size, &g, &e) == VISVM_OK);
    CHECKF(vv_llama_load(g, &m, &e) == VISVM_OK, "%s", e.msg);
    unsetenv("VISVM_REPACK");
    if (!m) return;
    *packed = m->layers[0].wq->repacked && m->layers[0].w_down->repacked && !m->tok_embd->repacked &&
              (m->output->repacked || m->output->ne[1] % 32); // F16 panels: whole 32-row panels (V = 300)
    vv_llama_state *st = NULL;
    vv_llama_state_params sp = {64, 1, 16, pool};
    CHECK(vv_llama_state_create(m, &sp, &st, &e) == VISVM_OK);
    const int32_t toks[12] = {1, 17, 250, 3, 99, 140, 7, 222, 31, 64, 5, 180};
    CHECK(vv_llama_decode_seq(st, 0, toks, NULL, 9, true, out, &e) == VISVM_OK);
    for (int i = 9; i < 12; i++) CHECK(vv_llama_decode_seq(st, 0, toks + i, NULL, 1, false, out + (size_t)i * V, &e) == VISVM_OK);
    vv_llama_state_free(st);
    vv_llama_free(m);
}

static void test_repack_model(vv_pool *pool) {
    const vv_mm_ops *ops = vv_get_mm_ops(VV_TYPE_Q8_0, VV_ISA_BEST);
    const bool have = ops && ops->repack;
    const int types[2] = {VV_TYPE_Q8_0, VV_TYPE_Q4_0};
    float *a = calloc((size_t)12 * V, sizeof(float)), *b = calloc((size_t)12 * V, sizeof(float));
    for (int k = 0; k < 2; k++) {
        void **bufs;
        int n_bufs;
        size_t size;
        void *mem = write_wide(types[k], &size, &bufs, &n_bufs);
        bool pa = false, pb = true;
        wide_logits(mem, size, true, pool, a, &pa);
        wide_logits(mem, size, false, pool, b, &pb);
        CHECKF(pa == have, "%s: matrices repacked %d, repack kernel available %d", vv_type_name(types[k]), pa, have);
        CHECKF(!pb, "%s: VISVM_REPACK=0 still repacked", vv_type_name(types[k]));
        CHECKF(memcmp(a, b, sizeof(float) * 12 * V) == 0, "%s: repacked logits differ from the raw ones",
               vv_type_name(types[k]));
        double mx = 0;
        for (int i = 0; i < 12 * V; i++) mx = fmax(mx, fabs(a[i]));
        CHECKF(mx > 1e-3 && isfinite(mx), "%s: logits degenerate (max |l| %g)", vv_type_name(types[k]), mx);
        for (int i = 0; i < n_bufs; i++) free(bufs[i]);
        free(bufs);
        free(mem);
    }
    free(a);
    free(b);
}

// F16 panels: logits close to the raw path's. Not bit for bit: the summation
// order differs, and the activations are rounded to f16 before each product
// (as ggml does), so a last-bit difference upstream can move an activation by
// one f16 step (2^-11 relative) downstream; bound: 4 such steps.
static void test_repack_f16_model(vv_pool *pool) {
    const vv_mm_ops *ops = vv_get_mm_ops(VV_TYPE_F16, VV_ISA_BEST);
    const bool have = ops && ops->repack;
    float *a = calloc((size_t)12 * V, sizeof(float)), *b = calloc((size_t)12 * V, sizeof(float));
    void **bufs;
    int n_bufs;
    size_t size;
    void *mem = write_wide(VV_TYPE_F16, &size, &bufs, &n_bufs);
    bool pa = false, pb = true;
    wide_logits(mem, size, true, pool, a, &pa);
    wide_logits(mem, size, false, pool, b, &pb);
    CHECKF(pa == have, "f16: matrices repacked %d, repack kernel available %d", pa, have);
    CHECKF(!pb, "f16: VISVM_REPACK=0 still repacked");
    double mx = 0, diff = 0;
    for (int i = 0; i < 12 * V; i++) {
        mx = fmax(mx, fabs(b[i]));
        diff = fmax(diff, fabs(a[i] - b[i]));
    }
    CHECKF(mx > 1e-3 && isfinite(mx) && diff <= 4 * 4.9e-4 * mx, "f16 panels: logits off by %g (max |l| %g)", diff, mx);
    printf("f16 panels: worst logit difference %.2e of max |logit| %.2e\n", diff, mx);
    for (int i = 0; i < n_bufs; i++) free(bufs[i]);
    free(bufs);
    free(mem);
    free(a);
    free(b);
}

// The last layer past attention runs on the output rows alone (VISVM_OUT_ROWS_ONLY,
// default on). Logits and hidden states must be bit for bit those of all rows
// (VISVM_OUT_ROWS_ONLY=0) and match the float64 reference: a 40-token prompt in
// chunks of 16 (two chunks without an output row), then three forks decoded as one
// batch with a scattered output mask (rows 0 and 3 of a 5-row segment, a 1-row
// segment, rows 2 and 6 of a 7-row one) and with the default (segment ends).
static void out_rows_run(vv_llama *m, const int32_t *toks, bool only, vv_pool *pool, float *lg, float *hid) {
    vv_error e = {0};
    if (!only) setenv("VISVM_OUT_ROWS_ONLY", "0", 1);
    vv_llama_state *st = NULL;
    vv_llama_state_params sp = {256, 4, 16, pool};
    CHECK(vv_llama_state_create(m, &sp, &st, &e) == VISVM_OK);
    unsetenv("VISVM_OUT_ROWS_ONLY");
    if (!st) return;
    CHECKF(vv_llama_decode_seq(st, 0, toks, NULL, 40, false, lg, &e) == VISVM_OK, "%s", e.msg);
    for (int s = 1; s < 4; s++) CHECK(vv_llama_seq_fork(st, 0, s, &e) == VISVM_OK);
    int32_t bt[13];
    memcpy(bt, toks + 40, 5 * sizeof(int32_t));
    bt[5] = 11;
    for (int i = 0; i < 7; i++) bt[6 + i] = 20 + 3 * i;
    int seg_seq[3] = {1, 2, 3}, seg_len[3] = {5, 1, 7};
    bool outv[13] = {0};
    outv[0] = outv[3] = outv[5] = outv[8] = outv[12] = true;
    vv_llama_batch b = {13, bt, NULL, 3, seg_seq, seg_len, outv};
    CHECKF(vv_llama_decode(st, &b, lg + V, hid, &e) == VISVM_OK, "%s", e.msg);
    vv_llama_batch b2 = {13, bt, NULL, 3, seg_seq, seg_len, NULL}; // segment ends: rows 4, 5, 12
    for (int s = 1; s < 4; s++) {
        vv_llama_seq_clear(st, s);
        CHECK(vv_llama_seq_fork(st, 0, s, &e) == VISVM_OK);
    }
    CHECKF(vv_llama_decode(st, &b2, lg + 6 * V, hid + 5 * E, &e) == VISVM_OK, "%s", e.msg);
    vv_llama_state_free(st);
}

static void test_out_rows(vv_llama *m, const int32_t *toks, const double *ref, double tol, vv_pool *pool, int variant) {
    float *la = calloc((size_t)9 * V, sizeof(float)), *lb = calloc((size_t)9 * V, sizeof(float));
    float *ha = calloc((size_t)8 * E, sizeof(float)), *hb = calloc((size_t)8 * E, sizeof(float));
    out_rows_run(m, toks, true, pool, la, ha);
    out_rows_run(m, toks, false, pool, lb, hb);
    CHECKF(memcmp(la, lb, sizeof(float) * 9 * V) == 0 && memcmp(ha, hb, sizeof(float) * 8 * E) == 0,
           "variant %d: output-row-only last layer changed logits or hidden states", variant);
    // prompt's last token; fork 1 continues the reference: rows 0 and 3 = positions 40, 43; its end 44
    double err = VV_MAX(max_err(la, ref + (size_t)39 * V, V), max_err(la + V, ref + (size_t)40 * V, V));
    err = VV_MAX(err, max_err(la + 2 * V, ref + (size_t)43 * V, V));
    err = VV_MAX(err, max_err(la + 6 * V, ref + (size_t)44 * V, V));
    CHECKF(err < tol, "variant %d: output rows off the reference by %g", variant, err);
    double mx = 0;
    for (int i = 0; i < 8 * E; i++) mx = fmax(mx, fabs(ha[i]));
    CHECKF(mx > 1e-3 && isfinite(mx), "variant %d: hidden states degenerate", variant);
    free(la);
    free(lb);
    free(ha);
    free(hb);
}

int main(void) {
    weights w;
    make_weights(&w, 99);
    vv_pool *pool = vv_pool_create(2);
    int32_t toks[80];
    vv_rng r;
    vv_rng_seed(&r, 5);
    toks[0] = 1;
    for (int i = 1; i < 80; i++) toks[i] = 3 + (int32_t)vv_rng_below(&r, V - 3);
    const int n = 70;
    double *ref = malloc((size_t)80 * V * sizeof(double));
    float *got = malloc((size_t)80 * V * sizeof(float));

    for (int variant = 0; variant < 3; variant++) {
        // 0: f32 weights, separate output; 1: f32 tied; 2: q8_0 weights (loose tolerance)
        bool tied = variant == 1;
        int type = variant == 2 ? VV_TYPE_Q8_0 : VV_TYPE_F32;
        double tol = variant == 2 ? 0.15 : 2e-4;
        void **bufs;
        int n_bufs;
        size_t size;
        void *mem = write_model(&w, type, tied, &size, &bufs, &n_bufs);
        vv_gguf *g = NULL;
        vv_llama *m = NULL;
        vv_error e = {0};
        CHECK(vv_gguf_open_mem(mem, size, &g, &e) == VISVM_OK);
        CHECKF(vv_llama_load(g, &m, &e) == VISVM_OK, "%s", e.msg);
        if (!m) return 1;
        CHECK(m->hp.n_head_kv == NKV && m->hp.head_dim == HD && m->hp.n_vocab == V);
        CHECK((m->output == m->tok_embd) == tied);
        ref_forward(&w, tied, toks, 80, ref);
        test_out_rows(m, toks, ref, tol, pool, variant);

        // (a) whole prompt in one batch, (b) chunks of 3, (c) one token at a time
        int batches[3] = {128, 3, 1};
        for (int bi = 0; bi < 3; bi++) {
            vv_llama_state *st = NULL;
            vv_llama_state_params sp = {256, 4, batches[bi], bi == 1 ? NULL : pool};
            CHECK(vv_llama_state_create(m, &sp, &st, &e) == VISVM_OK);
            if (batches[bi] == 1) {
                for (int i = 0; i < n; i++) CHECK(vv_llama_decode_seq(st, 0, toks + i, NULL, 1, false, got + (size_t)i * V, &e) == 0);
            } else {
                CHECK(vv_llama_decode_seq(st, 0, toks, NULL, n, true, got, &e) == VISVM_OK);
            }
            double err = max_err(got, ref, (size_t)n * V);
            CHECKF(err < tol, "variant %d batch %d: max err %g", variant, batches[bi], err);
            CHECK(vv_llama_seq_len(st, 0) == n);
            vv_llama_state_free(st);
        }

        // forks: prefix of 37 positions (a partly filled shared block), then three
        // continuations decoded as one multi-sequence batch; sequence 3 gets a 20-row
        // segment (gathered attention path: the prefix is shorter than VISVM_SHARED_MIN_PREFIX)
        {
            vv_llama_state *st = NULL;
            vv_llama_state_params sp = {512, 4, 64, pool};
            CHECK(vv_llama_state_create(m, &sp, &st, &e) == VISVM_OK);
            CHECK(vv_llama_decode_seq(st, 0, toks, NULL, 37, false, got, &e) == VISVM_OK);
            int blocks_before = vv_kv_blocks_in_use(vv_llama_state_kv(st));
            for (int s = 1; s < 4; s++) CHECK(vv_llama_seq_fork(st, 0, s, &e) == VISVM_OK);
            CHECK(vv_kv_blocks_in_use(vv_llama_state_kv(st)) == blocks_before); // shared, not copied
            // continuation tokens: seq 0: toks[37..39], seq 1: 2 other tokens, seq 2: 1 token, seq 3: toks[37..56]
            int32_t alt[2] = {7, 8};
            int32_t bt[3 + 2 + 1 + 20];
            memcpy(bt, toks + 37, 3 * sizeof(int32_t));
            memcpy(bt + 3, alt, 2 * sizeof(int32_t));
            bt[5] = 9;
            memcpy(bt + 6, toks + 37, 20 * sizeof(int32_t));
            int seg_seq[4] = {0, 1, 2, 3}, seg_len[4] = {3, 2, 1, 20};
            bool outv[26];
            for (int i = 0; i < 26; i++) outv[i] = true;
            vv_llama_batch b = {26, bt, NULL, 4, seg_seq, seg_len, outv};
            float *lg = malloc((size_t)26 * V * sizeof(float));
            CHECKF(vv_llama_decode(st, &b, lg, NULL, &e) == VISVM_OK, "%s", e.msg);
            // seq 0 and seq 3 continue the reference sequence
            CHECKF(max_err(lg, ref + (size_t)37 * V, 3 * V) < tol, "fork seq0");
            CHECKF(max_err(lg + (size_t)6 * V, ref + (size_t)37 * V, 20 * V) < tol, "fork seq3 (long segment)");
            // seq 1 and 2 against their own reference sequences
            int32_t s1[39], s2[38];
            memcpy(s1, toks, 37 * sizeof(int32_t));
            memcpy(s2, toks, 37 * sizeof(int32_t));
            s1[37] = 7;
            s1[38] = 8;
            s2[37] = 9;
            double *r1 = malloc((size_t)39 * V * sizeof(double));
            ref_forward(&w, tied, s1, 39, r1);
            CHECKF(max_err(lg + (size_t)3 * V, r1 + (size_t)37 * V, 2 * V) < tol, "fork seq1");
            ref_forward(&w, tied, s2, 38, r1);
            CHECKF(max_err(lg + (size_t)5 * V, r1 + (size_t)37 * V, V) < tol, "fork seq2");
            // the prefix of seq 0 was not modified by the others' writes: truncate + redo
            CHECK(vv_llama_seq_truncate(st, 0, 37) == VISVM_OK);
            CHECK(vv_llama_decode_seq(st, 0, toks + 37, NULL, 3, true, lg, &e) == VISVM_OK);
            CHECKF(max_err(lg, ref + (size_t)37 * V, 3 * V) < tol, "after truncate");
            // hidden-state output has the final norm applied: logits = output . hidden
            float hid[E];
            int one_seq = 1, one_len = 1;
            int32_t tk = 11;
            vv_llama_batch b1 = {1, &tk, NULL, 1, &one_seq, &one_len, NULL};
            CHECK(vv_llama_decode(st, &b1, lg, hid, &e) == VISVM_OK);
            if (variant == 0) {
                double l0 = 0;
                for (int i = 0; i < E; i++) l0 += (double)w.out[i] * hid[i];
                CHECK_NEAR(lg[0], l0, 1e-3);
            }
            // errors leave the sequence unchanged
            int32_t bad = V + 5;
            int32_t len1 = vv_llama_seq_len(st, 1);
            CHECK(vv_llama_decode_seq(st, 1, &bad, NULL, 1, false, lg, &e) == VISVM_ERR_RANGE);
            CHECK(vv_llama_seq_len(st, 1) == len1);
            CHECK(strstr(e.msg, "out of range") != NULL);
            int dup_seq[2] = {1, 1}, dup_len[2] = {1, 1};
            int32_t two[2] = {5, 6};
            vv_llama_batch bd = {2, two, NULL, 2, dup_seq, dup_len, NULL};
            CHECK(vv_llama_decode(st, &bd, lg, NULL, &e) == VISVM_ERR_INVALID);
            free(r1);
            free(lg);
            for (int s = 0; s < 4; s++) vv_llama_seq_clear(st, s);
            CHECK(vv_kv_blocks_in_use(vv_llama_state_kv(st)) == 0);
            vv_llama_state_free(st);
        }
        // segments of 8..63 rows take the shared-prefix path only when they share a long
        // enough prefix (here >= 32 positions, one block):
        // (a) a 43-row and a 20-row segment of forks of one prefix (both over the shared
        // blocks), (b) two 20-row forks beside an 80-row segment of a new sequence (gathered
        // GEMM path), (c) two unrelated sequences (nothing shared: both gathered); with the
        // shared path on and off, every row against the float64 reference
        {
            int32_t other[80];
            other[0] = 1;
            for (int i = 1; i < 80; i++) other[i] = 3 + (int32_t)((i * 7919) % (V - 3));
            double *r2 = malloc((size_t)80 * V * sizeof(double));
            ref_forward(&w, tied, other, 80, r2);
            setenv("VISVM_SHARED_MIN_PREFIX", "32", 1); // the 37-token prefix counts as long (default 256)
            for (int sh = 0; sh < 2; sh++) {
                if (!sh) setenv("VISVM_SHARED_ATTN", "0", 1);
                vv_llama_state_params sp = {512, 3, 128, pool};
                for (int cs = 0; cs < 3; cs++) {
                    vv_llama_state *st = NULL;
                    CHECK(vv_llama_state_create(m, &sp, &st, &e) == VISVM_OK);
                    const int pre = 37, n0 = cs == 0 ? 43 : 20, n1 = 20, n2 = cs == 1 ? 80 : 0, nt = n0 + n1 + n2;
                    CHECK(vv_llama_decode_seq(st, 0, toks, NULL, pre, false, got, &e) == VISVM_OK);
                    if (cs < 2) CHECK(vv_llama_seq_fork(st, 0, 1, &e) == VISVM_OK);
                    else CHECK(vv_llama_decode_seq(st, 1, other, NULL, pre, false, got, &e) == VISVM_OK);
                    int32_t bt[128];
                    memcpy(bt, toks + pre, (size_t)n0 * sizeof(int32_t));
                    memcpy(bt + n0, cs < 2 ? toks + pre : other + pre, (size_t)n1 * sizeof(int32_t));
                    memcpy(bt + n0 + n1, other, (size_t)n2 * sizeof(int32_t));
                    int sq[3] = {0, 1, 2}, sl[3] = {n0, n1, n2};
                    bool outv[128];
                    for (int i = 0; i < nt; i++) outv[i] = true;
                    vv_llama_batch b = {nt, bt, NULL, n2 ? 3 : 2, sq, sl, outv};
                    float *lg = malloc((size_t)nt * V * sizeof(float));
                    CHECKF(vv_llama_decode(st, &b, lg, NULL, &e) == VISVM_OK, "%s", e.msg);
                    CHECKF(max_err(lg, ref + (size_t)pre * V, (size_t)n0 * V) < tol, "case %d seq 0 (shared path %s)",
                           cs, sh ? "on" : "off");
                    CHECKF(max_err(lg + (size_t)n0 * V, (cs < 2 ? ref : r2) + (size_t)pre * V, (size_t)n1 * V) < tol,
                           "case %d seq 1 (shared path %s)", cs, sh ? "on" : "off");
                    if (n2)
                        CHECKF(max_err(lg + (size_t)(n0 + n1) * V, r2, (size_t)n2 * V) < tol, "case 1 seq 2 (shared path %s)",
                               sh ? "on" : "off");
                    free(lg);
                    vv_llama_state_free(st);
                }
                unsetenv("VISVM_SHARED_ATTN");
            }
            unsetenv("VISVM_SHARED_MIN_PREFIX");
            free(r2);
        }
        // shared-prefix attention over blocks that are not stored one after another: seq 1's
        // block sits between seq 0's, so seq 0 holds blocks 0, 2, 3; a fork of it and seq 0
        // decode together (rows share blocks 0 and 2) and both match the reference; the same
        // with the shared path off (VISVM_SHARED_ATTN=0) agrees
        for (int sh = 0; sh < 2; sh++) {
            if (!sh) setenv("VISVM_SHARED_ATTN", "0", 1);
            vv_llama_state *st = NULL;
            vv_llama_state_params sp = {512, 3, 64, pool};
            CHECK(vv_llama_state_create(m, &sp, &st, &e) == VISVM_OK);
            unsetenv("VISVM_SHARED_ATTN");
            CHECK(vv_llama_decode_seq(st, 0, toks, NULL, 20, false, got, &e) == VISVM_OK);
            CHECK(vv_llama_decode_seq(st, 1, toks, NULL, 20, false, got, &e) == VISVM_OK);
            CHECK(vv_llama_decode_seq(st, 0, toks + 20, NULL, 50, false, got, &e) == VISVM_OK);
            const vv_kv_seq *s0 = vv_llama_state_seq(st, 0);
            CHECKF(s0 && s0->n_blk >= 3 && s0->blk[1] != s0->blk[0] + 1, "seq 0's blocks are contiguous: the case is not built");
            CHECK(vv_llama_seq_fork(st, 0, 2, &e) == VISVM_OK);
            int32_t two[2] = {toks[70], toks[70]};
            int sq[2] = {0, 2}, sl[2] = {1, 1};
            vv_llama_batch b = {2, two, NULL, 2, sq, sl, NULL};
            float *lg = malloc((size_t)2 * V * sizeof(float));
            CHECKF(vv_llama_decode(st, &b, lg, NULL, &e) == VISVM_OK, "%s", e.msg);
            CHECKF(max_err(lg, ref + (size_t)70 * V, V) < tol && max_err(lg + V, ref + (size_t)70 * V, V) < tol,
                   "shared-prefix attention (%s) over non-contiguous blocks", sh ? "on" : "off");
            free(lg);
            vv_llama_state_free(st);
        }
        // context full: a clear error, nothing kept
        {
            vv_llama_state *st = NULL;
            vv_llama_state_params sp = {64, 1, 64, NULL};
            CHECK(vv_llama_state_create(m, &sp, &st, &e) == VISVM_OK);
            CHECK(vv_llama_decode_seq(st, 0, toks, NULL, 60, false, got, &e) == VISVM_OK);
            int rc = vv_llama_decode_seq(st, 0, toks, NULL, 10, false, got, &e);
            CHECK(rc == VISVM_ERR_RANGE);
            CHECK(strstr(e.msg, "context full") != NULL);
            CHECK(vv_llama_seq_len(st, 0) == 60);
            vv_llama_state_free(st);
        }
        vv_llama_free(m);
        for (int i = 0; i < n_bufs; i++) free(bufs[i]);
        free(bufs);
        free(mem);
    }
    // a model missing a tensor is refused with its name
    {
        void **bufs;
        int n_bufs;
        size_t size;
        vv_gguf_writer *gw = vv_gguf_writer_create();
        vv_gguf_set_str(gw, "general.architecture", "gpt2");
        void *mem = NULL;
        vv_error e = {0};
        vv_gguf_writer_write_mem(gw, &mem, &size, &e);
        vv_gguf_writer_free(gw);
        vv_gguf *g = NULL;
        vv_llama *m = NULL;
        CHECK(vv_gguf_open_mem(mem, size, &g, &e) == VISVM_OK);
        CHECK(vv_llama_load(g, &m, &e) == VISVM_ERR_UNSUPPORTED);
        CHECK(strstr(e.msg, "gpt2") != NULL);
        free(mem);
        (void)bufs;
        (void)n_bufs;
    }
    free(ref);
    free(got);
    free_weights(&w);
    test_repack_model(pool);
    test_repack_f16_model(pool);
    vv_pool_free(pool);
    return tc_result("test_llama");
}
