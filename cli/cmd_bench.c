// cmd_bench.c - `visvm bench`: prefill and decode speed of a random-weight
// 1.1B Llama (TinyLlama shape) in F16 / Q8_0 / Q4_0, compared with this
// machine's measured memory read bandwidth. Decoding one token streams every
// weight once, so tokens/s x bytes per token / bandwidth is the fraction of
// the hardware limit reached.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/cpu.h"
#include "base/threadpool.h"
#include "cli.h"
#include "format/gguf.h"
#include "model/llama.h"
#include "tensor/quants.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__SANITIZE_ADDRESS__)
#define BENCH_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define BENCH_CLONES
#endif

// ---------------------------------------------------------------------------
// memory bandwidth: threads sum disjoint slices of a buffer much larger than the caches

typedef struct {
    const float *buf;
    size_t n;
    double sums[512];
} bw_task;

BENCH_CLONES static double sum_floats(const float *x, size_t n) {
    float s[16] = {0};
    for (size_t i = 0; i + 16 <= n; i += 16)
        for (int j = 0; j < 16; j++) s[j] += x[i + j];
    double r = 0;
    for (int j = 0; j < 16; j++) r += s[j];
    return r;
}

static void bw_worker(void *ctx, int ith, int nth) {
    bw_task *t = (bw_task *)ctx;
    int64_t i0, i1;
    vv_split((int64_t)(t->n / 16), ith, nth, &i0, &i1);
    t->sums[ith] = sum_floats(t->buf + i0 * 16, (size_t)(i1 - i0) * 16);
}

// Best of `reps` passes over a 1 GiB buffer, GB/s (1e9 bytes).
static double measure_bandwidth(vv_pool *pool, int reps) {
    const size_t bytes = (size_t)1 << 30;
    float *buf = vv_aalloc(bytes);
    if (!buf) return 0;
    for (size_t i = 0; i < bytes / sizeof(float); i++) buf[i] = (float)(i & 1023);
    bw_task t = {buf, bytes / sizeof(float), {0}};
    double best = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = vv_time_s();
        vv_pool_run(pool, bw_worker, &t);
        double dt = vv_time_s() - t0;
        double gbs = (double)bytes / dt / 1e9;
        if (gbs > best) best = gbs;
    }
    vv_afree(buf);
    return best;
}

// ---------------------------------------------------------------------------
// random model

typedef struct {
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff;
} shape;

static const shape k_tinyllama = {32000, 2048, 22, 32, 4, 5632};

typedef struct {
    const float *src;
    void *dst;
    int type;
    int64_t n_in, n_rows;
} quant_task;

static void quant_worker(void *ctx, int ith, int nth) {
    quant_task *q = (quant_task *)ctx;
    int64_t r0, r1;
    vv_split(q->n_rows, ith, nth, &r0, &r1);
    size_t rs = vv_row_size(q->type, q->n_in);
    for (int64_t r = r0; r < r1; r++) vv_quantize_row(q->type, q->src + r * q->n_in, (char *)q->dst + r * rs, q->n_in);
}

typedef struct {
    vv_gguf_writer *w;
    int type;
    void **bufs;
    int n_bufs, cap;
} model_out;

static int add_weight(vv_pool *pool, model_out *mo, int n_out_files, const char *name, int64_t n_in, int64_t n_rows,
                      vv_rng *rng, bool is_norm) {
    size_t n = (size_t)n_in * (size_t)n_rows;
    float *f = vv_aalloc(n * sizeof(float));
    if (!f) return VISVM_ERR_NOMEM;
    const float a = 0.02f * 1.7320508f; // uniform with std 0.02
    for (size_t i = 0; i < n; i++) f[i] = is_norm ? 1.0f : (float)((vv_rng_uniform(rng) * 2 - 1) * a);
    int64_t ne[2] = {n_in, n_rows};
    for (int k = 0; k < n_out_files; k++) {
        model_out *o = &mo[k];
        int type = is_norm ? VV_TYPE_F32 : o->type;
        void *dst = vv_aalloc(vv_row_size(type, n_in) * (size_t)n_rows);
        if (!dst) {
            vv_afree(f);
            return VISVM_ERR_NOMEM;
        }
        quant_task q = {f, dst, type, n_in, n_rows};
        vv_pool_run(pool, quant_worker, &q);
        if (o->n_bufs == o->cap) {
            o->cap = o->cap ? o->cap * 2 : 64;
            o->bufs = realloc(o->bufs, (size_t)o->cap * sizeof(void *));
            if (!o->bufs) return VISVM_ERR_NOMEM;
        }
        o->bufs[o->n_bufs++] = dst;
        int rc = vv_gguf_add_tensor(o->w, name, type, is_norm ? 1 : 2, ne, dst);
        if (rc) return rc;
    }
    vv_afree(f);
    return VISVM_OK;
}

// Cached random models whose general.name differs are made again: v2 gives
// the chat template's words LLaMA's pieces (v1 spelled them in bytes).
#define BENCH_MODEL_NAME "visvm-bench-random-1.1b-v2"

bool bench_model_current(const char *path, const char *name) {
    vv_gguf *g = NULL;
    vv_error e = {0};
    if (!vv_file_exists(path) || vv_gguf_open(path, &g, &e)) return false;
    const char *n = NULL;
    const bool ok = vv_gguf_find_key(g, "general.name") >= 0 && vv_gguf_get_str(g, "general.name", &n, NULL) == 0 &&
                    n && strcmp(n, name) == 0;
    vv_gguf_close(g);
    return ok;
}

static int set_hparams(vv_gguf_writer *w, const shape *s, int type, char **toks, float *scores, int32_t *ttype) {
    vv_gguf_set_str(w, "general.architecture", "llama");
    vv_gguf_set_str(w, "general.name", BENCH_MODEL_NAME);
    vv_gguf_set_u32(w, "general.file_type", type == VV_TYPE_F16 ? 1 : type == VV_TYPE_Q8_0 ? 7 : type == VV_TYPE_Q4_0 ? 2 : 0);
    if (type != VV_TYPE_F16 && type != VV_TYPE_F32) vv_gguf_set_u32(w, "general.quantization_version", 2);
    vv_gguf_set_u32(w, "llama.context_length", 2048);
    vv_gguf_set_u32(w, "llama.embedding_length", (uint32_t)s->n_embd);
    vv_gguf_set_u32(w, "llama.block_count", (uint32_t)s->n_layer);
    vv_gguf_set_u32(w, "llama.feed_forward_length", (uint32_t)s->n_ff);
    vv_gguf_set_u32(w, "llama.attention.head_count", (uint32_t)s->n_head);
    vv_gguf_set_u32(w, "llama.attention.head_count_kv", (uint32_t)s->n_head_kv);
    vv_gguf_set_u32(w, "llama.rope.dimension_count", (uint32_t)(s->n_embd / s->n_head));
    vv_gguf_set_f32(w, "llama.rope.freq_base", 10000.0f);
    vv_gguf_set_f32(w, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
    vv_gguf_set_str(w, "tokenizer.ggml.model", "llama");
    vv_gguf_set_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)toks, (uint64_t)s->n_vocab);
    vv_gguf_set_arr(w, "tokenizer.ggml.scores", VV_GGUF_FLOAT32, scores, (uint64_t)s->n_vocab);
    vv_gguf_set_arr(w, "tokenizer.ggml.token_type", VV_GGUF_INT32, ttype, (uint64_t)s->n_vocab);
    vv_gguf_set_u32(w, "tokenizer.ggml.bos_token_id", 1);
    vv_gguf_set_u32(w, "tokenizer.ggml.eos_token_id", 2);
    vv_gguf_set_u32(w, "tokenizer.ggml.unknown_token_id", 0);
    return VISVM_OK;
}

// Writes random models of shape s in each type to paths[k]. Same weights in every file.
static int make_models(vv_pool *pool, const shape *s, const int *types, char **paths, int n, vv_error *e) {
    char **toks = calloc((size_t)s->n_vocab, sizeof(char *));
    float *scores = calloc((size_t)s->n_vocab, sizeof(float));
    int32_t *tt = calloc((size_t)s->n_vocab, sizeof(int32_t));
    model_out mo[8] = {{0}};
    int rc = VISVM_OK;
    if (!toks || !scores || !tt || n > 8) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    // LLaMA's pieces for the LLaVA template's words ("USER:" -> US ER :, " ASSISTANT:" -> A SS IST ANT :,
    // "\n" -> <0x0A> after a bare space piece) and the merges leading to them, so the template costs
    // what it costs with a real vocabulary; every other piece ("t<i>") never matches text
#define SP "\xe2\x96\x81" // the SentencePiece space
    static const char *const k_pieces[] = {SP, SP "U", SP "US", "ER", ":", SP "A", "SS", "IS", "IST", "AN", "ANT"};
#undef SP
    const int n_pieces = (int)(sizeof(k_pieces) / sizeof(k_pieces[0]));
    for (int i = 0; i < s->n_vocab; i++) {
        char b[32];
        if (i == 0) snprintf(b, sizeof(b), "<unk>");
        else if (i == 1) snprintf(b, sizeof(b), "<s>");
        else if (i == 2) snprintf(b, sizeof(b), "</s>");
        else if (i < 3 + 256) snprintf(b, sizeof(b), "<0x%02X>", i - 3);
        else if (i < 259 + n_pieces) snprintf(b, sizeof(b), "%s", k_pieces[i - 259]);
        else snprintf(b, sizeof(b), "\xe2\x96\x81t%d", i);
        toks[i] = vv_strdup(b);
        scores[i] = -(float)i;
        tt[i] = i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1;
    }
    for (int k = 0; k < n; k++) {
        mo[k].w = vv_gguf_writer_create();
        mo[k].type = types[k];
        if (!mo[k].w) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            goto done;
        }
        set_hparams(mo[k].w, s, types[k], toks, scores, tt);
    }
    vv_rng rng;
    vv_rng_seed(&rng, 1234);
    const int hd = s->n_embd / s->n_head, kv = s->n_head_kv * hd;
    char name[96];
#define W(nm, nin, nrows, norm)                                                          \
    if ((rc = add_weight(pool, mo, n, nm, nin, nrows, &rng, norm))) {                    \
        vv_err(e, rc, "cannot build tensor %s", nm);                                     \
        goto done;                                                                       \
    }
    W("token_embd.weight", s->n_embd, s->n_vocab, false)
    for (int l = 0; l < s->n_layer; l++) {
        snprintf(name, sizeof(name), "blk.%d.attn_norm.weight", l); W(name, s->n_embd, 1, true)
        snprintf(name, sizeof(name), "blk.%d.attn_q.weight", l); W(name, s->n_embd, s->n_embd, false)
        snprintf(name, sizeof(name), "blk.%d.attn_k.weight", l); W(name, s->n_embd, kv, false)
        snprintf(name, sizeof(name), "blk.%d.attn_v.weight", l); W(name, s->n_embd, kv, false)
        snprintf(name, sizeof(name), "blk.%d.attn_output.weight", l); W(name, s->n_embd, s->n_embd, false)
        snprintf(name, sizeof(name), "blk.%d.ffn_norm.weight", l); W(name, s->n_embd, 1, true)
        snprintf(name, sizeof(name), "blk.%d.ffn_gate.weight", l); W(name, s->n_embd, s->n_ff, false)
        snprintf(name, sizeof(name), "blk.%d.ffn_up.weight", l); W(name, s->n_embd, s->n_ff, false)
        snprintf(name, sizeof(name), "blk.%d.ffn_down.weight", l); W(name, s->n_ff, s->n_embd, false)
    }
    W("output_norm.weight", s->n_embd, 1, true)
    W("output.weight", s->n_embd, s->n_vocab, false)
#undef W
    for (int k = 0; k < n && !rc; k++) rc = vv_gguf_writer_write(mo[k].w, paths[k], e);
done:
    for (int k = 0; k < 8; k++) {
        for (int i = 0; i < mo[k].n_bufs; i++) vv_afree(mo[k].bufs[i]);
        free(mo[k].bufs);
        vv_gguf_writer_free(mo[k].w);
    }
    if (toks)
        for (int i = 0; i < s->n_vocab; i++) free(toks[i]);
    free(toks);
    free(scores);
    free(tt);
    return rc;
}

// ---------------------------------------------------------------------------

typedef struct {
    double prefill_tok_s, decode_tok_s, weight_gb, token_gb;
} run_result;

static int run_model(const char *path, vv_pool *pool, int n_prompt, int n_gen, run_result *r, vv_error *e) {
    vv_llama *m = NULL;
    int rc = vv_llama_load_file(path, &m, e);
    if (rc) return rc;
    vv_llama_state *st = NULL;
    vv_llama_state_params sp = {n_prompt + n_gen + 64, 1, n_prompt, pool};
    float *logits = malloc((size_t)m->hp.n_vocab * sizeof(float));
    int32_t *toks = malloc((size_t)n_prompt * sizeof(int32_t));
    if (!logits || !toks) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    if (!rc) rc = vv_llama_state_create(m, &sp, &st, e);
    if (!rc) {
        vv_rng rng;
        vv_rng_seed(&rng, 7);
        for (int i = 0; i < n_prompt; i++) toks[i] = 259 + (int32_t)vv_rng_below(&rng, (uint32_t)(m->hp.n_vocab - 259));
        // warm up: page in the weights (a cold mmap would measure the disk)
        rc = vv_llama_decode_seq(st, 0, toks, NULL, 8, false, logits, e);
        vv_llama_seq_clear(st, 0);
    }
    if (!rc) {
        double t0 = vv_time_s();
        rc = vv_llama_decode_seq(st, 0, toks, NULL, n_prompt, false, logits, e);
        r->prefill_tok_s = n_prompt / (vv_time_s() - t0);
    }
    if (!rc) {
        double t0 = vv_time_s();
        for (int i = 0; i < n_gen && !rc; i++) {
            int32_t t = 259 + (int32_t)((i * 7919) % (m->hp.n_vocab - 259));
            rc = vv_llama_decode_seq(st, 0, &t, NULL, 1, false, logits, e);
        }
        r->decode_tok_s = n_gen / (vv_time_s() - t0);
    }
    // bytes streamed per decoded token: every weight except the embedding table (one row)
    size_t all = vv_llama_weight_bytes(m), emb = vv_tensor_nbytes(m->tok_embd);
    r->weight_gb = (double)all / 1e9;
    r->token_gb = (double)(all - (m->output == m->tok_embd ? 0 : emb) + vv_row_size(m->tok_embd->type, m->hp.n_embd)) / 1e9;
    free(logits);
    free(toks);
    vv_llama_state_free(st);
    vv_llama_free(m);
    return rc;
}

int bench_search(const char *dir, const char *label, const char *policy, const char *mmproj, const char *value,
                 const char *value_mm, const char *head, int threads, int cand, int sentences, int sent_tokens,
                 bool json);
int bench_search_random(const char *dir, const char *policy, const char *type_name, int threads, bool json, bool regen);
bool bench_model_current(const char *path, const char *name);

int cmd_bench(int argc, char **argv) {
    const char *dir = NULL, *types_s = "f16,q8_0,q4_0";
    int threads = 0, n_prompt = 128, n_gen = 32;
    bool json = false, regen = false, search = false, no_decode = false;
    const char *world_models = "models/world";
    cli_opt opts[] = {
        {"--dir", NULL, CLI_STR, &dir, "where the random models are cached (default ~/.cache/visvm/bench)", 0, -1},
        {"--types", NULL, CLI_STR, &types_s, "comma-separated weight types (f16, q8_0, q4_0, q4_k, q6_k, bf16, f32)", 0, -1},
        {"--threads", "-t", CLI_INT, &threads, "threads; 0 = all cores", 0, 1024},
        {"--n-prompt", "-p", CLI_INT, &n_prompt, "prompt tokens for the prefill figure", 8, 8192},
        {"--n-gen", "-n", CLI_INT, &n_gen, "decoded tokens for the decode figure", 1, 8192},
        {"--json", NULL, CLI_FLAG, &json, "also print one JSON object per configuration", 0, -1},
        {"--regen", NULL, CLI_FLAG, &regen, "regenerate the random model files", 0, -1},
        {"--search", NULL, CLI_FLAG, &search,
         "also measure VisVM search vs greedy (1.1B policy + value, CLIP-L/14-336 towers; q4_0 and q8_0; world models)", 0, -1},
        {"--no-decode", NULL, CLI_FLAG, &no_decode, "skip the decode/prefill table", 0, -1},
        {"--world-models", NULL, CLI_STR, &world_models, "shipped world models measured by --search", 0, -1},
    };
    const char *pos[1];
    int n_pos = 0;
    int rc = cli_parse("bench", "[options]",
                       "Decode and prefill speed of a random-weight 1.1B Llama (TinyLlama shape: n_embd 2048, 22 layers, 32 "
                       "heads, 4 KV heads, n_ff 5632, vocab 32000) against the measured memory bandwidth.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 2, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    int types[8], n_types = 0;
    {
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "%s", types_s);
        for (char *tok = strtok(tmp, ","); tok; tok = strtok(NULL, ",")) {
            int t = vv_type_from_name(tok);
            const vv_kernels *k = t >= 0 ? vv_get_kernels(t, VV_ISA_SCALAR) : NULL;
            if (!k || !k->vec_dot || t == VV_TYPE_Q8_K || n_types == 8) {
                fprintf(stderr, "visvm bench: unsupported weight type '%s'\n", tok);
                return 2;
            }
            types[n_types++] = t;
        }
    }
    char dbuf[4096];
    if (!dir) {
        const char *home = getenv("HOME");
        snprintf(dbuf, sizeof(dbuf), "%s/.cache/visvm/bench", home ? home : "/tmp");
        dir = dbuf;
    }
    vv_error e = {0};
    if (vv_mkdir_p(dir, &e)) {
        fprintf(stderr, "visvm bench: %s\n", e.msg);
        return 1;
    }
    vv_pool *pool = vv_pool_create(threads);
    if (!pool) {
        fprintf(stderr, "visvm bench: cannot create threads\n");
        return 1;
    }
    const int nth = vv_pool_size(pool);
    printf("visvm bench: %d threads, CPU: %s, ISA: %s\n", nth, vv_cpu_desc(), vv_isa_name(vv_isa_best()));
    double bw = measure_bandwidth(pool, 5);
    printf("memory read bandwidth (%d threads, 1 GiB buffer, best of 5): %.1f GB/s\n", nth, bw);
    // model files
    char *paths[8];
    int need[8], n_need = 0;
    char *need_paths[8];
    for (int k = 0; k < n_types; k++) {
        vv_buf b = {0};
        vv_buf_printf(&b, "%s/random-1.1b-%s.gguf", dir, vv_type_name(types[k]));
        paths[k] = b.v;
        if (regen || !bench_model_current(paths[k], BENCH_MODEL_NAME)) {
            need[n_need] = types[k];
            need_paths[n_need++] = paths[k];
        }
    }
    int status = 0;
    if (n_need) {
        printf("generating %d random model file(s) in %s ...\n", n_need, dir);
        fflush(stdout);
        double t0 = vv_time_s();
        if (make_models(pool, &k_tinyllama, need, need_paths, n_need, &e)) {
            fprintf(stderr, "visvm bench: %s\n", e.msg);
            status = 1;
            goto done;
        }
        printf("generated in %.0f s\n", vv_time_s() - t0);
    }
    // The bandwidth these shared machines give one process drifts (the same run
    // read 41-70 GB/s across minutes), so each row is also measured right after
    // its decode and compared with the higher of the two readings.
    printf("\n| model | weights GB | prefill tok/s (%d) | decode tok/s (%d) | GB/token | decode GB/s | of bandwidth (higher "
           "of the first and a reading right after) |\n",
           n_prompt, n_gen);
    printf("|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < n_types && !no_decode; k++) {
        run_result r = {0};
        if (run_model(paths[k], pool, n_prompt, n_gen, &r, &e)) {
            fprintf(stderr, "visvm bench: %s: %s\n", paths[k], e.msg);
            status = 1;
            continue;
        }
        const double bw_row = VV_MAX(bw, measure_bandwidth(pool, 3));
        double frac = bw_row > 0 ? r.decode_tok_s * r.token_gb / bw_row : 0;
        printf("| 1.1b-%s | %.2f | %.1f | %.2f | %.3f | %.1f | %.0f%% of %.1f GB/s |\n", vv_type_name(types[k]),
               r.weight_gb, r.prefill_tok_s, r.decode_tok_s, r.token_gb, r.decode_tok_s * r.token_gb, 100 * frac, bw_row);
        if (json)
            printf("{\"model\":\"1.1b-%s\",\"threads\":%d,\"prefill_tok_s\":%.3f,\"decode_tok_s\":%.3f,\"bw_gb_s\":%.3f,"
                   "\"decode_bw_frac\":%.4f,\"gb_per_token\":%.4f,\"n_prompt\":%d,\"n_gen\":%d}\n",
                   vv_type_name(types[k]), nth, r.prefill_tok_s, r.decode_tok_s, bw_row, frac, r.token_gb, n_prompt, n_gen);
        fflush(stdout);
    }
    if (search) {
        for (int k = 0; k < n_types; k++)
            if (types[k] == VV_TYPE_Q4_0 || types[k] == VV_TYPE_Q8_0)
                status |= bench_search_random(dir, paths[k], vv_type_name(types[k]), nth, json, regen);
        char a[4096], b[4096], c[4096], d[4096], h[4096];
        snprintf(a, sizeof(a), "%s/vlm-text.gguf", world_models);
        snprintf(b, sizeof(b), "%s/vlm-mmproj.gguf", world_models);
        snprintf(c, sizeof(c), "%s/value-text.gguf", world_models);
        snprintf(d, sizeof(d), "%s/value-mmproj.gguf", world_models);
        snprintf(h, sizeof(h), "%s/value-head.gguf", world_models);
        if (vv_file_exists(a) && vv_file_exists(c))
            status |= bench_search(dir, "world-models", a, b, c, d, vv_file_exists(h) ? h : NULL, nth, 6, 6, 20, json);
        else
            printf("\n(shipped world models not found in %s: skipped)\n", world_models);
    }
done:
    for (int k = 0; k < n_types; k++) free(paths[k]);
    vv_pool_free(pool);
    return status;
}
