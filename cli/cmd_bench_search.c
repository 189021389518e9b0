// cmd_bench_search.c - `visvm bench --search`: what value-guided search costs
// compared with greedy decoding, on random weights of realistic shape (policy
// and value model each TinyLlama-1.1B, CLIP-L/14-336 towers with 576 image
// tokens) and on the shipped world models (whose caption takes milliseconds:
// repeated for a second, the fastest kept). Each measurement runs in a child
// process; its peak memory is what the run adds to the resident set (weights included),
// not the pages the child inherits from the bench process.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/wait.h>
#include <unistd.h>

#include "base/threadpool.h"
#include "cli.h"
#include "format/gguf.h"
#include "search/search.h"

// Random LLaVA-1.5-style mmproj: CLIP-L/14 at 336 px (23 stored layers), MLP projector to n_embd.
static int make_mmproj(const char *path, int n_embd, uint64_t seed, vv_pool *pool, vv_error *e) {
    const int D = 1024, F = 4096, L = 23, P = 14, S = 336, NP = (S / P) * (S / P) + 1;
    vv_gguf_writer *w = vv_gguf_writer_create();
    if (!w) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    vv_gguf_set_str(w, "general.architecture", "clip");
    vv_gguf_set_str(w, "general.name", "visvm-bench-random-clip-l-336");
    vv_gguf_set_u32(w, "general.file_type", 1);
    vv_gguf_set_bool(w, "clip.has_text_encoder", false);
    vv_gguf_set_bool(w, "clip.has_vision_encoder", true);
    vv_gguf_set_bool(w, "clip.has_llava_projector", true);
    vv_gguf_set_str(w, "clip.projector_type", "mlp");
    vv_gguf_set_u32(w, "clip.vision.image_size", S);
    vv_gguf_set_u32(w, "clip.vision.patch_size", P);
    vv_gguf_set_u32(w, "clip.vision.embedding_length", D);
    vv_gguf_set_u32(w, "clip.vision.feed_forward_length", F);
    vv_gguf_set_u32(w, "clip.vision.projection_dim", 768);
    vv_gguf_set_u32(w, "clip.vision.attention.head_count", 16);
    vv_gguf_set_f32(w, "clip.vision.attention.layer_norm_epsilon", 1e-5f);
    vv_gguf_set_u32(w, "clip.vision.block_count", L);
    const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f}, sd[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    vv_gguf_set_arr(w, "clip.vision.image_mean", VV_GGUF_FLOAT32, mean, 3);
    vv_gguf_set_arr(w, "clip.vision.image_std", VV_GGUF_FLOAT32, sd, 3);
    vv_rng rng;
    vv_rng_seed(&rng, seed);
    void **bufs = calloc(512, sizeof(void *));
    int nb = 0, rc = VISVM_OK;
    // adds a tensor of random values (F16 matrices, F32 vectors); ne innermost first
#define T(name, nd, n0, n1, n2, n3, f16, val)                                                                   \
    do {                                                                                                          \
        int64_t ne[4] = {n0, n1, n2, n3};                                                                         \
        int64_t cnt = (int64_t)(n0) * (n1) * (n2) * (n3);                                                         \
        void *d = malloc((size_t)cnt * (f16 ? 2 : 4));                                                            \
        if (!d) { rc = VISVM_ERR_NOMEM; break; }                                                                  \
        for (int64_t q = 0; q < cnt; q++) {                                                                       \
            float x = val < 0 ? (float)((vv_rng_uniform(&rng) * 2 - 1) * 0.03) : (float)(val);                   \
            if (f16) ((uint16_t *)d)[q] = vv_fp32_to_fp16(x);                                                     \
            else ((float *)d)[q] = x;                                                                             \
        }                                                                                                         \
        bufs[nb++] = d;                                                                                           \
        rc = vv_gguf_add_tensor(w, name, f16 ? VV_TYPE_F16 : VV_TYPE_F32, nd, ne, d);                             \
    } while (0)
    T("v.patch_embd.weight", 4, P, P, 3, D, 1, -1);
    T("v.class_embd", 1, D, 1, 1, 1, 0, -1);
    T("v.position_embd.weight", 2, D, NP, 1, 1, 1, -1);
    T("v.pre_ln.weight", 1, D, 1, 1, 1, 0, 1);
    T("v.pre_ln.bias", 1, D, 1, 1, 1, 0, 0);
    char n[96];
    for (int l = 0; l < L && !rc; l++) {
        const char *mats[4] = {"attn_q", "attn_k", "attn_v", "attn_out"};
        for (int k = 0; k < 4 && !rc; k++) {
            snprintf(n, sizeof(n), "v.blk.%d.%s.weight", l, mats[k]);
            T(n, 2, D, D, 1, 1, 1, -1);
            snprintf(n, sizeof(n), "v.blk.%d.%s.bias", l, mats[k]);
            T(n, 1, D, 1, 1, 1, 0, 0);
        }
        snprintf(n, sizeof(n), "v.blk.%d.ln1.weight", l); T(n, 1, D, 1, 1, 1, 0, 1);
        snprintf(n, sizeof(n), "v.blk.%d.ln1.bias", l); T(n, 1, D, 1, 1, 1, 0, 0);
        snprintf(n, sizeof(n), "v.blk.%d.ln2.weight", l); T(n, 1, D, 1, 1, 1, 0, 1);
        snprintf(n, sizeof(n), "v.blk.%d.ln2.bias", l); T(n, 1, D, 1, 1, 1, 0, 0);
        snprintf(n, sizeof(n), "v.blk.%d.ffn_down.weight", l); T(n, 2, D, F, 1, 1, 1, -1);
        snprintf(n, sizeof(n), "v.blk.%d.ffn_down.bias", l); T(n, 1, F, 1, 1, 1, 0, 0);
        snprintf(n, sizeof(n), "v.blk.%d.ffn_up.weight", l); T(n, 2, F, D, 1, 1, 1, -1);
        snprintf(n, sizeof(n), "v.blk.%d.ffn_up.bias", l); T(n, 1, D, 1, 1, 1, 0, 0);
    }
    if (!rc) T("mm.0.weight", 2, D, n_embd, 1, 1, 1, -1);
    if (!rc) T("mm.0.bias", 1, n_embd, 1, 1, 1, 0, 0);
    if (!rc) T("mm.2.weight", 2, n_embd, n_embd, 1, 1, 1, -1);
    if (!rc) T("mm.2.bias", 1, n_embd, 1, 1, 1, 0, 0);
#undef T
    (void)pool;
    if (!rc) rc = vv_gguf_writer_write(w, path, e);
    else vv_err(e, rc, "cannot build %s", path);
    for (int i = 0; i < nb; i++) free(bufs[i]);
    free(bufs);
    vv_gguf_writer_free(w);
    return rc;
}

bool bench_model_current(const char *path, const char *name); // cmd_bench.c
#define BENCH_VALUE_NAME "visvm-bench-random-value-v2" // v2: made from the v2 policy (its vocabulary)

// Value model file: the policy's tensors (referenced from its mapping) plus a head.
static int make_value(const char *policy, const char *path, vv_error *e) {
    vv_gguf *g = NULL;
    int rc = vv_gguf_open(policy, &g, e);
    if (rc) return rc;
    vv_gguf_writer *w = vv_gguf_writer_create();
    vv_gguf_copy_kv(w, g);
    vv_gguf_set_str(w, "general.name", BENCH_VALUE_NAME);
    vv_gguf_set_str(w, "visvm.value.head", "last_token");
    for (int64_t i = 0; i < vv_gguf_n_tensors(g) && !rc; i++) {
        const vv_tensor *t = vv_gguf_tensor(g, i);
        rc = vv_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data);
    }
    const vv_tensor *te = vv_gguf_find_tensor(g, "token_embd.weight");
    int64_t ne1 = te ? te->ne[0] : 0, ne0 = 1;
    float *head = calloc((size_t)ne1 + 1, sizeof(float)), bias = 0.1f;
    for (int64_t i = 0; head && i < ne1; i++) head[i] = (float)((i * 7919) % 13 - 6) * 0.01f;
    if (!rc && head) rc = vv_gguf_add_tensor(w, "value_head.weight", VV_TYPE_F32, 1, &ne1, head);
    if (!rc) rc = vv_gguf_add_tensor(w, "value_head.bias", VV_TYPE_F32, 1, &ne0, &bias);
    if (!rc) rc = vv_gguf_writer_write(w, path, e);
    free(head);
    vv_gguf_writer_free(w);
    vv_gguf_close(g);
    return rc;
}

typedef struct {
    double seconds, encode_s, prefill_tok_s, tok_s_b[3];
    double t_prefill, t_decode, t_score; // parts of seconds
    double t_score_begin;                // of t_score: the value model's encode + image prefix
    long tokens, forwards;
    long scored, candidates; // sentences scored (identical candidates once) / candidates that needed a score
    double added_kb; // peak resident memory the run added (VmHWM after - VmRSS at start), or -1
    int ok;
} child_out;

// A /proc/self/status field in kB, or -1.
static double status_kb(const char *field) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    double v = -1;
    const size_t n = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':') {
            v = atof(line + n + 1);
            break;
        }
    fclose(f);
    return v;
}

typedef struct {
    const char *policy, *mmproj, *value, *value_mm;
    const char *head; // value head on the policy (visvm-shared); NULL: a random one
    int threads, sentences, sent_tokens, cand;
} bench_cfg;

// A random value head for the policy (timing only).
static vv_value_head *random_head(int n_embd) {
    vv_value_head *h = calloc(1, sizeof(*h));
    if (!h || !(h->w = malloc((size_t)n_embd * sizeof(float)))) {
        free(h);
        return NULL;
    }
    h->n_embd = n_embd;
    for (int i = 0; i < n_embd; i++) h->w[i] = (float)((i * 7919) % 13 - 6) * 0.01f;
    h->bias = 0.1f;
    h->gamma = 0.9f;
    return h;
}

// Runs in a child: 0 greedy, 1 VisVM search, 2 decode/prefill/encode figures, 3 visvm-shared search.
static void child_run(const bench_cfg *bc, int what, child_out *o) {
    vv_error e = {0};
    memset(o, 0, sizeof(*o));
    vv_llama *pm = NULL;
    vv_clip *pv = NULL;
    vv_value *vm = NULL;
    vv_value_head *vh = NULL;
    vv_pool *pool = vv_pool_create(bc->threads);
    vv_searcher *s = NULL;
    vv_image img = {0};
    if (vv_llama_load_file(bc->policy, &pm, &e) || vv_clip_load_file(bc->mmproj, VISVM_VISION_REFERENCE, &pv, &e) ||
        (what == 1 && vv_value_load(bc->value, bc->value_mm, &vm, &e)) ||
        (what == 3 && bc->head && vv_value_head_load(bc->head, &vh, &e)) || vv_image_alloc(&img, 640, 480, &e)) {
        fprintf(stderr, "bench: %s\n", e.msg);
        goto done;
    }
    for (size_t i = 0; i < (size_t)640 * 480 * 3; i++) img.rgb[i] = (uint8_t)((i * 2654435761u) >> 24);
    if (what == 2) {
        // image encode
        vv_image_batch b = {0};
        float *emb = NULL;
        int n_emb = 0;
        double t0 = vv_time_s();
        if (vv_preprocess(&img, &pv->pre, &b, &e) || vv_clip_embed(pv, pool, &b, &emb, &n_emb, NULL, &e)) goto done;
        o->encode_s = vv_time_s() - t0;
        // prefill of the image positions + a prompt, then decode at batch 1, 6, 16 over forks of it
        vv_llama_state *st = NULL;
        vv_llama_state_params sp = {n_emb + 64 + 17 * 40, 17, 512, pool};
        if (vv_llama_state_create(pm, &sp, &st, &e)) goto done;
        float *lg = malloc((size_t)16 * pm->hp.n_vocab * sizeof(float));
        t0 = vv_time_s();
        vv_llama_decode_seq(st, 0, NULL, emb, n_emb, false, lg, &e);
        o->prefill_tok_s = n_emb / (vv_time_s() - t0);
        const int bs[3] = {1, 6, 16}, steps = 24;
        for (int k = 0; k < 3; k++) {
            for (int j = 1; j <= bs[k]; j++) vv_llama_seq_fork(st, 0, j, &e);
            int seq[16], len[16];
            int32_t tok[16];
            for (int j = 0; j < bs[k]; j++) {
                seq[j] = 1 + j;
                len[j] = 1;
                tok[j] = 300 + j;
            }
            // rounds of `steps` tokens, each cut back to the prefix, until 0.3 s have
            // passed (a 1.1B round takes longer; the tiny world models' takes ~3 ms)
            const int32_t plen = vv_llama_seq_len(st, 0);
            double spent = 0;
            long done_tok = 0;
            for (int round = 0; round < 10000 && (round == 0 || spent < 0.3); round++) {
                t0 = vv_time_s();
                for (int t = 0; t < steps; t++) {
                    vv_llama_batch bt = {bs[k], tok, NULL, bs[k], seq, len, NULL};
                    if (vv_llama_decode(st, &bt, lg, NULL, &e)) break;
                    done_tok += bs[k];
                }
                spent += vv_time_s() - t0;
                for (int j = 1; j <= bs[k]; j++) vv_llama_seq_truncate(st, j, plen);
            }
            o->tok_s_b[k] = (double)done_tok / spent;
            for (int j = 1; j <= bs[k]; j++) vv_llama_seq_clear(st, j);
        }
        free(lg);
        vv_afree(emb);
        vv_image_batch_free(&b);
        vv_llama_state_free(st);
        o->ok = 1;
        goto done;
    }
    if (what == 3 && !vh && !(vh = random_head(pm->hp.n_embd))) {
        fprintf(stderr, "bench: out of memory\n");
        goto done;
    }
    vv_search_models sm = {pm, pv, NULL, vm, vh};
    if (vv_searcher_create(&sm, pool, bc->cand, &s, &e)) {
        fprintf(stderr, "bench: %s\n", e.msg);
        goto done;
    }
    vv_search_params p = vv_search_default_params();
    vv_search_set_budget(&p, bc->cand);
    p.strategy = what == 1 ? VV_STRAT_VISVM : what == 3 ? VV_STRAT_VISVM_SHARED : VV_STRAT_GREEDY;
    p.fixed_length = true;
    p.max_sentences = bc->sentences;
    p.max_sentence_tokens = bc->sent_tokens;
    p.max_tokens = bc->sentences * bc->sent_tokens;
    // a caption of the tiny world models takes milliseconds: repeat until a second has
    // passed (at most 200 times) and keep the fastest, so timer and scheduler noise
    // does not decide the ratio; a 1.1B caption (seconds) runs once
    double spent = 0;
    o->seconds = INFINITY;
    for (int rep = 0; rep < 200 && (rep == 0 || spent < 1.0); rep++) {
        vv_search_result r;
        if (vv_search_caption(s, &img, NULL, &p, &r, &e)) {
            fprintf(stderr, "bench: %s\n", e.msg);
            goto done;
        }
        spent += r.seconds;
        if (r.seconds < o->seconds) {
            o->seconds = r.seconds; // image encoding, prefill, decoding (and value scoring) included
            o->tokens = r.gen_tokens;
            o->t_prefill = r.sec_prefill;
            o->t_decode = r.sec_decode;
            o->t_score = r.sec_score;
            o->t_score_begin = r.sec_score_begin;
            o->forwards = r.policy_forwards;
            o->scored = r.scored;
            o->candidates = 0;
            for (int k = 0; k < r.n_steps; k++)
                for (int j = 0; j < r.steps[k].n; j++) o->candidates += !r.steps[k].cand[j].end;
        }
        vv_search_result_free(&r);
    }
    o->ok = 1;
done:
    vv_image_free(&img);
    vv_searcher_free(s);
    vv_value_free(vm);
    vv_value_head_free(vh);
    vv_clip_free(pv);
    vv_llama_free(pm);
    vv_pool_free(pool);
}

// Forks, runs, returns the child's figures and its peak resident memory (bytes).
static int in_child(const bench_cfg *bc, int what, child_out *o, double *peak) {
    int fds[2];
    if (pipe(fds)) return -1;
    fflush(stdout);
#if defined(__GLIBC__)
    malloc_trim(0); // free heap pages the child could otherwise reuse without counting them
#endif
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        close(fds[0]);
        child_out co;
        // A forked child starts with the bench process's resident pages (hundreds of
        // MiB after the decode table); measure what the run adds: reset the peak
        // to the current size (clear_refs 5), subtract the size at the start.
        const double base = status_kb("VmRSS");
        FILE *cr = fopen("/proc/self/clear_refs", "w");
        bool reset = false;
        if (cr) {
            reset = fputs("5", cr) >= 0;
            reset = fclose(cr) == 0 && reset;
        }
        child_run(bc, what, &co);
        const double hwm = status_kb("VmHWM");
        co.added_kb = reset && base >= 0 && hwm >= base ? hwm - base : -1;
        if (write(fds[1], &co, sizeof(co)) != (ssize_t)sizeof(co)) _exit(2);
        _exit(co.ok ? 0 : 1);
    }
    close(fds[1]);
    ssize_t got = read(fds[0], o, sizeof(*o));
    close(fds[0]);
    int status = 0;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    *peak = got == (ssize_t)sizeof(*o) && o->added_kb >= 0 ? o->added_kb * 1024.0 : (double)ru.ru_maxrss * 1024.0;
    return got == (ssize_t)sizeof(*o) && o->ok ? 0 : -1;
}

int bench_search(const char *dir, const char *label, const char *policy, const char *mmproj, const char *value,
                 const char *value_mm, const char *head, int threads, int cand, int sentences, int sent_tokens,
                 bool json) {
    bench_cfg bc = {policy, mmproj, value, value_mm, head, threads, sentences, sent_tokens, cand};
    (void)dir;
    child_out g, s, f, h;
    double pg = 0, ps = 0, pf = 0, ph = 0;
    if (in_child(&bc, 0, &g, &pg) || in_child(&bc, 1, &s, &ps) || in_child(&bc, 3, &h, &ph) ||
        in_child(&bc, 2, &f, &pf)) {
        fprintf(stderr, "visvm bench: %s: a measurement failed\n", label);
        return 1;
    }
    double tr = s.seconds / g.seconds, mr = ps / pg, htr = h.seconds / g.seconds, hmr = ph / pg;
    printf("\n%s: %d sentences x %d tokens, VisVM search with %d candidates per step\n", label, sentences, sent_tokens, cand);
    printf("| figure | value |\n|---|---|\n");
    printf("| greedy caption (encode + prefill + decode) | %.3g s, peak +%.0f MiB |\n", g.seconds, pg / 1048576);
    printf("| VisVM search caption (same + candidates + value model) | %.3g s, peak +%.0f MiB |\n", s.seconds, ps / 1048576);
    printf("| time split: encode+prefill / decode / scoring (greedy) | %.2f / %.2f / %.2f s |\n", g.t_prefill, g.t_decode,
           g.t_score);
    printf("| time split: encode+prefill / decode / scoring (search) | %.2f / %.2f / %.2f s |\n", s.t_prefill, s.t_decode,
           s.t_score);
    // search <= 2x greedy  <=>  candidate decoding + candidate scoring <= 2 x greedy's decoding
    // + (2 x greedy's encode+prefill - the search's encode+prefill - the value model's)
    const double need_lhs = s.t_decode + (s.t_score - s.t_score_begin);
    const double need_rhs = 2 * g.t_decode + 2 * g.t_prefill - s.t_prefill - s.t_score_begin;
    printf("| of the scoring: value model's encode + image prefix / candidate sentences | %.2f / %.2f s |\n",
           s.t_score_begin, s.t_score - s.t_score_begin);
    printf("| search / greedy wall time | %.2f |\n| search / greedy peak memory | %.2f |\n", tr, mr);
    printf("| search <= 2x greedy needs candidate decoding + sentence scoring <= 2 x greedy's decoding + 2 x its "
           "encode+prefill - both networks' in the search | %.2f + %.2f = %.2f s against %.2f s |\n",
           s.t_decode, s.t_score - s.t_score_begin, need_lhs, need_rhs);
    printf("| visvm-shared search caption (value head on the policy%s) | %.3g s, peak +%.0f MiB |\n",
           head ? "" : ", random head", h.seconds, ph / 1048576);
    printf("| time split: encode+prefill / decode / scoring (visvm-shared) | %.2f / %.2f / %.2f s |\n", h.t_prefill,
           h.t_decode, h.t_score);
    printf("| visvm-shared search / greedy wall time | %.2f |\n| visvm-shared search / greedy peak memory | %.2f |\n",
           htr, hmr);
    printf("| policy tokens (visvm-shared) | %ld in %ld batched calls |\n", h.tokens, h.forwards);
    printf("| policy tokens decoded (greedy / search) | %ld / %ld in %ld / %ld batched calls |\n", g.tokens, s.tokens,
           g.forwards, s.forwards);
    printf("| sentences scored by the value model (VisVM search; identical candidates once) | %ld of %ld candidates |\n",
           s.scored, s.candidates);
    printf("| image encode | %.2f s |\n| prefill | %.1f tok/s |\n", f.encode_s, f.prefill_tok_s);
    printf("| decode tok/s at batch 1 / 6 / 16 | %.1f / %.1f / %.1f (batch 6 = %.1fx batch 1) |\n", f.tok_s_b[0],
           f.tok_s_b[1], f.tok_s_b[2], f.tok_s_b[1] / f.tok_s_b[0]);
    if (json)
        printf("{\"bench\":\"search\",\"model\":\"%s\",\"threads\":%d,\"candidates\":%d,\"search_over_greedy_time\":%.4f,"
               "\"search_over_greedy_mem\":%.4f,\"greedy_s\":%.3f,\"search_s\":%.3f,\"decode_tok_s_b1\":%.3f,"
               "\"decode_tok_s_b6\":%.3f,\"decode_tok_s_b16\":%.3f,\"prefill_tok_s\":%.3f,\"image_encode_s\":%.4f,"
               "\"shared_search_over_greedy_time\":%.4f,\"shared_search_over_greedy_mem\":%.4f,\"shared_search_s\":%.3f,"
               "\"greedy_prefill_s\":%.3f,\"greedy_decode_s\":%.3f,\"search_prefill_s\":%.3f,\"search_decode_s\":%.3f,"
               "\"value_prefix_s\":%.3f,\"search_score_s\":%.3f}\n",
               label, threads, cand, tr, mr, g.seconds, s.seconds, f.tok_s_b[0], f.tok_s_b[1], f.tok_s_b[2],
               f.prefill_tok_s, f.encode_s, htr, hmr, h.seconds, g.t_prefill, g.t_decode, s.t_prefill, s.t_decode,
               s.t_score_begin, s.t_score - s.t_score_begin);
    fflush(stdout);
    return 0;
}

int bench_search_random(const char *dir, const char *policy, const char *type_name, int threads, bool json, bool regen) {
    char mm[4096], vmm[4096], val[4096], label[64];
    snprintf(mm, sizeof(mm), "%s/random-clip-l-336-mmproj.gguf", dir);
    snprintf(vmm, sizeof(vmm), "%s/random-clip-l-336-value-mmproj.gguf", dir);
    snprintf(val, sizeof(val), "%s/random-1.1b-%s-value.gguf", dir, type_name);
    snprintf(label, sizeof(label), "1.1b-%s", type_name);
    vv_error e = {0};
    vv_gguf *pg = NULL;
    int n_embd = 2048;
    if (vv_gguf_open(policy, &pg, &e) == 0) {
        uint32_t u;
        if (vv_gguf_get_u32(pg, "llama.embedding_length", &u, &e) == 0) n_embd = (int)u;
        vv_gguf_close(pg);
    }
    if ((regen || !vv_file_exists(mm)) && make_mmproj(mm, n_embd, 11, NULL, &e)) goto fail;
    if ((regen || !vv_file_exists(vmm)) && make_mmproj(vmm, n_embd, 12, NULL, &e)) goto fail;
    if ((regen || !bench_model_current(val, BENCH_VALUE_NAME)) && make_value(policy, val, &e)) goto fail;
    return bench_search(dir, label, policy, mm, val, vmm, NULL, threads, 6, 6, 20, json);
fail:
    fprintf(stderr, "visvm bench: %s\n", e.msg);
    return 1;
}
