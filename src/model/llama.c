// llama.c - Llama/Mistral decoder: GGUF loading and the batched forward pass
// over a paged KV cache.
#include "llama.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------------------
// loading

// Fetches a tensor and checks its shape; ne1 < 0 means 1-D.
static int get_tensor(const vv_gguf *g, const char *name, int64_t ne0, int64_t ne1, bool required,
                      const vv_tensor **out, vv_error *e) {
    *out = NULL;
    const vv_tensor *t = vv_gguf_find_tensor(g, name);
    if (!t) {
        if (!required) return VISVM_OK;
        return vv_err(e, VISVM_ERR_FORMAT, "model is missing tensor '%s'", name);
    }
    int64_t want1 = ne1 < 0 ? 1 : ne1;
    if (t->ne[0] != ne0 || t->ne[1] != want1 || t->ne[2] != 1 || t->ne[3] != 1)
        return vv_err(e, VISVM_ERR_FORMAT,
                      "tensor '%s' has shape [%lld, %lld, %lld, %lld], expected [%lld, %lld]", name,
                      (long long)t->ne[0], (long long)t->ne[1], (long long)t->ne[2], (long long)t->ne[3],
                      (long long)ne0, (long long)want1);
    if (ne1 >= 0) { // a matrix: must be multipliable
        const vv_kernels *k = vv_get_kernels(t->type, VV_ISA_SCALAR);
        if (!k || !k->vec_dot)
            return vv_err(e, VISVM_ERR_UNSUPPORTED, "tensor '%s' has type %s, which visvm cannot compute yet", name,
                          vv_type_name(t->type));
        const vv_type_info *ai = vv_type_get(k->vec_dot_type);
        if (ai && ne0 % ai->blck != 0)
            return vv_err(e, VISVM_ERR_FORMAT, "tensor '%s': row length %lld is not a multiple of %d", name,
                          (long long)ne0, ai->blck);
    } else if (t->type != VV_TYPE_F32 && t->type != VV_TYPE_F16 && t->type != VV_TYPE_BF16) {
        return vv_err(e, VISVM_ERR_UNSUPPORTED, "vector tensor '%s' has type %s (expected f32/f16/bf16)", name,
                      vv_type_name(t->type));
    }
    *out = t;
    return VISVM_OK;
}

// Norm/bias vectors as f32 (they may be stored as F16 by some converters).
static float *vec_f32(const vv_tensor *t) {
    float *v = malloc((size_t)t->ne[0] * sizeof(float));
    if (v) vv_dequantize_row(t->type, t->data, v, t->ne[0]);
    return v;
}

void vv_llama_free(vv_llama *m) {
    if (!m) return;
    if (m->norm_f32) {
        int n = 2 + 6 * m->hp.n_layer;
        for (int i = 0; i < n; i++) free(m->norm_f32[i]);
        free(m->norm_f32);
    }
    free(m->layers);
    vv_vocab_free(m->vocab);
    free(m->chat_template);
    free(m->name);
    vv_gguf_close(m->gguf);
    free(m);
}

#define KEY(buf, fmt) (snprintf(buf, sizeof(buf), fmt, arch), buf)

int vv_llama_load(vv_gguf *g, vv_llama **out, vv_error *e) {
    *out = NULL;
    vv_llama *m = calloc(1, sizeof(*m));
    if (!m) {
        vv_gguf_close(g);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    m->gguf = g;
    int rc;
    const char *arch = NULL;
    char k[256];
    if ((rc = vv_gguf_get_str(g, "general.architecture", &arch, e))) goto fail;
    if (strcmp(arch, "llama") != 0 && strcmp(arch, "mistral") != 0) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "architecture '%s' is not supported (expected 'llama')", arch);
        goto fail;
    }
    vv_llama_hparams *hp = &m->hp;
    uint32_t u;
    if ((rc = vv_gguf_get_u32(g, KEY(k, "%s.embedding_length"), &u, e))) goto fail;
    hp->n_embd = (int)u;
    if ((rc = vv_gguf_get_u32(g, KEY(k, "%s.block_count"), &u, e))) goto fail;
    hp->n_layer = (int)u;
    if ((rc = vv_gguf_get_u32(g, KEY(k, "%s.feed_forward_length"), &u, e))) goto fail;
    hp->n_ff = (int)u;
    if ((rc = vv_gguf_get_u32(g, KEY(k, "%s.attention.head_count"), &u, e))) goto fail;
    hp->n_head = (int)u;
    if ((rc = vv_gguf_get_u32_def(g, KEY(k, "%s.attention.head_count_kv"), (uint32_t)hp->n_head, &u, e))) goto fail;
    hp->n_head_kv = (int)u;
    if ((rc = vv_gguf_get_u32_def(g, KEY(k, "%s.context_length"), 2048, &u, e))) goto fail;
    hp->n_ctx_train = (int)u;
    if ((rc = vv_gguf_get_f32(g, KEY(k, "%s.attention.layer_norm_rms_epsilon"), &hp->eps, e))) goto fail;
    if ((rc = vv_gguf_get_f32_def(g, KEY(k, "%s.rope.freq_base"), 10000.0f, &hp->rope_base, e))) goto fail;
    if (hp->n_embd <= 0 || hp->n_layer <= 0 || hp->n_head <= 0 || hp->n_head_kv <= 0 || hp->n_ff <= 0 ||
        hp->n_embd % hp->n_head != 0 || hp->n_head % hp->n_head_kv != 0 || hp->n_layer > 4096 ||
        hp->n_embd > (1 << 20) || hp->n_ff > (1 << 22) || !(hp->eps > 0) || !(hp->rope_base > 0)) {
        rc = vv_err(e, VISVM_ERR_FORMAT,
                    "invalid hyper-parameters: n_embd %d, n_layer %d, n_head %d, n_head_kv %d, n_ff %d, eps %g, "
                    "rope base %g",
                    hp->n_embd, hp->n_layer, hp->n_head, hp->n_head_kv, hp->n_ff, hp->eps, hp->rope_base);
        goto fail;
    }
    hp->head_dim = hp->n_embd / hp->n_head;
    {
        uint32_t kl;
        if ((rc = vv_gguf_get_u32_def(g, KEY(k, "%s.attention.key_length"), (uint32_t)hp->head_dim, &kl, e))) goto fail;
        if ((int)kl != hp->head_dim) {
            rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "attention.key_length %u != n_embd / n_head = %d", kl, hp->head_dim);
            goto fail;
        }
    }
    if ((rc = vv_gguf_get_u32_def(g, KEY(k, "%s.rope.dimension_count"), (uint32_t)hp->head_dim, &u, e))) goto fail;
    hp->n_rot = (int)u;
    if (hp->n_rot <= 0 || hp->n_rot > hp->head_dim || hp->n_rot % 2) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "invalid rope.dimension_count %d (head_dim %d)", hp->n_rot, hp->head_dim);
        goto fail;
    }
    hp->rope_freq_scale = 1.0f;
    {
        const char *stype = NULL;
        if (vv_gguf_find_key(g, KEY(k, "%s.rope.scaling.type")) >= 0) {
            if ((rc = vv_gguf_get_str(g, k, &stype, e))) goto fail;
            float factor = 1.0f;
            if ((rc = vv_gguf_get_f32_def(g, KEY(k, "%s.rope.scaling.factor"), 1.0f, &factor, e))) goto fail;
            if (strcmp(stype, "linear") == 0 && factor > 0) hp->rope_freq_scale = 1.0f / factor;
            else if (strcmp(stype, "none") != 0 && factor != 1.0f) {
                rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "rope scaling '%s' is not supported", stype);
                goto fail;
            }
        } else if (vv_gguf_find_key(g, KEY(k, "%s.rope.scale_linear")) >= 0) {
            float factor = 1.0f;
            if ((rc = vv_gguf_get_f32(g, k, &factor, e))) goto fail;
            if (factor > 0) hp->rope_freq_scale = 1.0f / factor;
        }
    }
    // visvm writes this key for models converted from HF with rotate-half RoPE kept as is.
    if ((rc = vv_gguf_get_bool_def(g, KEY(k, "%s.rope.neox"), false, &hp->rope_neox, e))) goto fail;

    if ((rc = vv_vocab_load(g, &m->vocab, e))) goto fail;
    {
        const vv_tensor *te = vv_gguf_find_tensor(g, "token_embd.weight");
        if (!te) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "model is missing tensor 'token_embd.weight'");
            goto fail;
        }
        hp->n_vocab = (int)te->ne[1];
    }
    if (hp->n_vocab != vv_vocab_n(m->vocab))
        vv_log(1, "token_embd has %d rows but the vocabulary has %d tokens", hp->n_vocab, vv_vocab_n(m->vocab));
    if (hp->n_vocab < vv_vocab_n(m->vocab)) {
        rc = vv_err(e, VISVM_ERR_FORMAT, "token_embd has %d rows, fewer than the %d vocabulary tokens", hp->n_vocab,
                    vv_vocab_n(m->vocab));
        goto fail;
    }

    const int64_t n_embd = hp->n_embd, q_dim = (int64_t)hp->n_head * hp->head_dim,
                  kv_dim = (int64_t)hp->n_head_kv * hp->head_dim;
    if ((rc = get_tensor(g, "token_embd.weight", n_embd, hp->n_vocab, true, &m->tok_embd, e))) goto fail;
    if ((rc = get_tensor(g, "output_norm.weight", n_embd, -1, true, &m->output_norm, e))) goto fail;
    if ((rc = get_tensor(g, "output.weight", n_embd, hp->n_vocab, false, &m->output, e))) goto fail;
    if (!m->output) m->output = m->tok_embd; // tied embeddings

    m->layers = calloc((size_t)hp->n_layer, sizeof(vv_llama_layer));
    m->norm_f32 = calloc((size_t)(2 + 6 * hp->n_layer), sizeof(float *));
    if (!m->layers || !m->norm_f32) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int il = 0; il < hp->n_layer; il++) {
        vv_llama_layer *L = &m->layers[il];
        char n[128];
#define T(field, suffix, ne0, ne1, req)                                        \
    snprintf(n, sizeof(n), "blk.%d." suffix, il);                              \
    if ((rc = get_tensor(g, n, ne0, ne1, req, &L->field, e))) goto fail;
        T(attn_norm, "attn_norm.weight", n_embd, -1, true)
        T(wq, "attn_q.weight", n_embd, q_dim, true)
        T(wk, "attn_k.weight", n_embd, kv_dim, true)
        T(wv, "attn_v.weight", n_embd, kv_dim, true)
        T(wo, "attn_output.weight", q_dim, n_embd, true)
        T(bq, "attn_q.bias", q_dim, -1, false)
        T(bk, "attn_k.bias", kv_dim, -1, false)
        T(bv, "attn_v.bias", kv_dim, -1, false)
        T(bo, "attn_output.bias", n_embd, -1, false)
        T(ffn_norm, "ffn_norm.weight", n_embd, -1, true)
        T(w_gate, "ffn_gate.weight", n_embd, hp->n_ff, true)
        T(w_up, "ffn_up.weight", n_embd, hp->n_ff, true)
        T(w_down, "ffn_down.weight", hp->n_ff, n_embd, true)
#undef T
        const vv_tensor *vecs[6] = {L->attn_norm, L->ffn_norm, L->bq, L->bk, L->bv, L->bo};
        for (int j = 0; j < 6; j++)
            if (vecs[j] && !(m->norm_f32[2 + 6 * il + j] = vec_f32(vecs[j]))) {
                rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                goto fail;
            }
    }
    if (!(m->norm_f32[0] = vec_f32(m->output_norm))) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    {
        const char *s = NULL;
        if (vv_gguf_find_key(g, "tokenizer.chat_template") >= 0 && vv_gguf_get_str(g, "tokenizer.chat_template", &s, NULL) == 0)
            m->chat_template = vv_strdup(s);
        if (vv_gguf_find_key(g, "general.name") >= 0 && vv_gguf_get_str(g, "general.name", &s, NULL) == 0)
            m->name = vv_strdup(s);
    }
    m->file_type = m->layers[0].wq->type;
    // Q4_0 / Q8_0 matrices into the SIMD kernels' layout, once (VISVM_REPACK=0: off, for comparisons)
    if (!getenv("VISVM_REPACK") || strcmp(getenv("VISVM_REPACK"), "0") != 0) {
        const vv_tensor **mats = malloc(((size_t)7 * hp->n_layer + 1) * sizeof(*mats));
        int nm = 0;
        for (int il = 0; mats && il < hp->n_layer; il++) {
            const vv_llama_layer *L = &m->layers[il];
            const vv_tensor *lm[7] = {L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down};
            for (int j = 0; j < 7; j++) mats[nm++] = lm[j];
        }
        if (mats) mats[nm++] = m->output;
        rc = mats ? vv_gguf_repack_tensors(g, mats, nm) : VISVM_ERR_NOMEM;
        free(mats);
        if (rc) {
            rc = vv_err(e, rc, "out of memory repacking the weights (VISVM_REPACK=0 skips it)");
            goto fail;
        }
    }
    *out = m;
    return VISVM_OK;
fail:
    vv_llama_free(m);
    return rc ? rc : VISVM_ERR_INTERNAL;
}

int vv_llama_load_file(const char *path, vv_llama **out, vv_error *e) {
    vv_gguf *g = NULL;
    int rc = vv_gguf_open(path, &g, e);
    if (rc) return rc;
    rc = vv_llama_load(g, out, e);
    if (rc) vv_err_prefix(e, rc, "%s", path);
    return rc;
}

size_t vv_llama_n_params(const vv_llama *m) {
    size_t n = 0;
    for (int64_t i = 0; i < vv_gguf_n_tensors(m->gguf); i++) n += (size_t)vv_tensor_nelements(vv_gguf_tensor(m->gguf, i));
    return n;
}

size_t vv_llama_weight_bytes(const vv_llama *m) {
    size_t n = 0;
    for (int64_t i = 0; i < vv_gguf_n_tensors(m->gguf); i++) n += vv_tensor_nbytes(vv_gguf_tensor(m->gguf, i));
    return n;
}

// ---------------------------------------------------------------------------
// state

struct vv_llama_state {
    const vv_llama *m;
    vv_pool *pool;
    vv_kv kv;
    vv_kv_seq *seqs;
    int n_seq, n_ctx, n_batch;
    bool shared_attn;    // shared-prefix attention for forked small rows (VISVM_SHARED_ATTN=0: off)
    bool out_rows_only;  // last layer past attention on output rows only (VISVM_OUT_ROWS_ONLY=0: all rows)
    int sh_min_medium;   // segments of 8..63 rows join it over a shared prefix of at least this many
                         // positions (VISVM_SHARED_MIN_PREFIX; default 256)
    // scratch for one chunk of up to n_batch rows
    float *x, *h, *q, *k, *v, *att, *g, *u, *ho; // see sizes in state_create
    int32_t *pos, *kv_len, *row_seq;
    vv_wbuf ws;
    vv_attn_scratch as;
    float *gk, *gv;      // gathered K/V of one sequence [n_ctx, kv_dim] (prefill of forked sequences)
    float *small_s;      // per-thread score rows for the paged small-batch attention [nth, group, n_ctx]
    // shared-prefix attention of small rows (see shared_attn_worker): per-thread scratch
    // (sh_per floats each; block pointers for vv_attn_prefix) and per-row results, grown on demand
    float *sh_buf, *sh_o, *sh_lse;
    size_t sh_buf_n, sh_o_n;
    const float **sh_ptr;
    size_t sh_ptr_n;
};

void vv_llama_state_free(vv_llama_state *st) {
    if (!st) return;
    if (st->seqs)
        for (int i = 0; i < st->n_seq; i++) vv_kv_seq_release(&st->kv, &st->seqs[i]);
    free(st->seqs);
    vv_kv_free(&st->kv);
    vv_afree(st->x);
    vv_afree(st->h);
    vv_afree(st->q);
    vv_afree(st->k);
    vv_afree(st->v);
    vv_afree(st->att);
    vv_afree(st->g);
    vv_afree(st->u);
    vv_afree(st->ho);
    free(st->pos);
    free(st->kv_len);
    free(st->row_seq);
    vv_wbuf_free(&st->ws);
    vv_attn_scratch_free(&st->as);
    vv_afree(st->gk);
    vv_afree(st->gv);
    vv_afree(st->small_s);
    vv_afree(st->sh_buf);
    vv_afree(st->sh_o);
    vv_afree(st->sh_lse);
    free(st->sh_ptr);
    free(st);
}

int vv_llama_state_create(const vv_llama *m, const vv_llama_state_params *p, vv_llama_state **out, vv_error *e) {
    *out = NULL;
    const vv_llama_hparams *hp = &m->hp;
    if (p->n_ctx <= 0 || p->n_ctx > (1 << 24) || p->n_seq <= 0 || p->n_seq > 4096 || p->n_batch <= 0)
        return vv_err(e, VISVM_ERR_INVALID, "invalid state parameters: n_ctx %d, n_seq %d, n_batch %d", p->n_ctx,
                      p->n_seq, p->n_batch);
    vv_llama_state *st = calloc(1, sizeof(*st));
    if (!st) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    st->m = m;
    st->pool = p->pool;
    st->n_seq = p->n_seq;
    st->n_ctx = p->n_ctx;
    st->n_batch = p->n_batch;
    st->shared_attn = !getenv("VISVM_SHARED_ATTN") || strcmp(getenv("VISVM_SHARED_ATTN"), "0") != 0;
    st->out_rows_only = !getenv("VISVM_OUT_ROWS_ONLY") || strcmp(getenv("VISVM_OUT_ROWS_ONLY"), "0") != 0;
    st->sh_min_medium = getenv("VISVM_SHARED_MIN_PREFIX") ? atoi(getenv("VISVM_SHARED_MIN_PREFIX")) : 256;
    if (st->sh_min_medium < 1) st->sh_min_medium = 1;
    const int kv_dim = hp->n_head_kv * hp->head_dim;
    int rc = vv_kv_init(&st->kv, hp->n_layer, kv_dim, p->n_ctx, 32, e);
    if (rc) {
        free(st);
        return rc;
    }
    const size_t nb = (size_t)p->n_batch, q_dim = (size_t)hp->n_head * hp->head_dim;
    st->seqs = calloc((size_t)p->n_seq, sizeof(vv_kv_seq));
    st->x = vv_aalloc(nb * hp->n_embd * sizeof(float));
    st->h = vv_aalloc(nb * hp->n_embd * sizeof(float));
    st->ho = vv_aalloc(nb * hp->n_embd * sizeof(float));
    st->q = vv_aalloc(nb * q_dim * sizeof(float));
    st->att = vv_aalloc(nb * q_dim * sizeof(float));
    st->k = vv_aalloc(nb * kv_dim * sizeof(float));
    st->v = vv_aalloc(nb * kv_dim * sizeof(float));
    st->g = vv_aalloc(nb * hp->n_ff * sizeof(float));
    st->u = vv_aalloc(nb * hp->n_ff * sizeof(float));
    st->pos = malloc(nb * sizeof(int32_t));
    st->kv_len = malloc(nb * sizeof(int32_t));
    st->row_seq = malloc(nb * sizeof(int32_t));
    st->small_s = vv_aalloc((size_t)vv_pool_size(p->pool) * (size_t)(m->hp.n_head / m->hp.n_head_kv) *
                           (size_t)(st->kv.n_blocks * st->kv.block_size) * sizeof(float));
    if (!st->seqs || !st->x || !st->h || !st->ho || !st->q || !st->att || !st->k || !st->v || !st->g || !st->u ||
        !st->pos || !st->kv_len || !st->row_seq || !st->small_s) {
        vv_llama_state_free(st);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory allocating the decoder state (n_batch %d)", p->n_batch);
    }
    *out = st;
    return VISVM_OK;
}

vv_kv *vv_llama_state_kv(vv_llama_state *st) { return &st->kv; }
const vv_llama *vv_llama_state_model(const vv_llama_state *st) { return st->m; }
vv_kv_seq *vv_llama_state_seq(vv_llama_state *st, int seq) {
    return seq >= 0 && seq < st->n_seq ? &st->seqs[seq] : NULL;
}
int vv_llama_state_n_seq(const vv_llama_state *st) { return st->n_seq; }
int vv_llama_state_n_ctx(const vv_llama_state *st) { return st->n_ctx; }

int vv_llama_seq_fork(vv_llama_state *st, int src, int dst, vv_error *e) {
    if (src < 0 || src >= st->n_seq || dst < 0 || dst >= st->n_seq)
        return vv_err(e, VISVM_ERR_INVALID, "sequence id out of range");
    return vv_kv_seq_fork(&st->kv, &st->seqs[src], &st->seqs[dst], e);
}

int vv_llama_seq_truncate(vv_llama_state *st, int seq, int32_t len) {
    if (seq < 0 || seq >= st->n_seq) return VISVM_ERR_INVALID;
    return vv_kv_seq_truncate(&st->kv, &st->seqs[seq], len);
}

void vv_llama_seq_clear(vv_llama_state *st, int seq) {
    if (seq >= 0 && seq < st->n_seq) vv_kv_seq_release(&st->kv, &st->seqs[seq]);
}

int32_t vv_llama_seq_len(const vv_llama_state *st, int seq) {
    return seq >= 0 && seq < st->n_seq ? st->seqs[seq].len : -1;
}

// ---------------------------------------------------------------------------
// forward

static inline size_t vv_pad16(size_t n) { return (n + 15) & ~(size_t)15; } // floats: keeps 64-byte alignment

// Attention of rows that decode few tokens per sequence, straight from the
// paged cache: one parallel section over (row, head) pairs of all sequences.
typedef struct {
    vv_llama_state *st;
    int layer;
    const int *rows; // rows handled here
    int n_rows;
    float scale;
    // shared prefix: when n_sh > 0 every row's sequence starts with the blocks sh_blk[0..n_sh),
    // all before the row's own position; their part of the attention is in sh_o / sh_lse
    int n_sh;
    const int32_t *sh_blk;
    size_t sh_per;    // floats of st->sh_buf per thread
    bool sh_fast;     // vv_attn_prefix (a SIMD kernel for this head size) instead of BLAS GEMMs
} small_attn_task;

// Shared-prefix ("cascade") attention: the small rows of a decode step whose
// sequences are forks of one prefix (a search's candidates over the image)
// attend to the same cached blocks. One item per KV head takes every row's
// query heads together over those blocks, so each K/V block is read once for
// all candidates, and leaves, per row and head, the normalised output over
// the prefix and its log-sum-exp; small_attn_worker then adds each row's own
// positions by one softmax over [its scores, that log-sum-exp] (exact up to
// rounding: softmax over a union split in two parts).
static void shared_attn_worker(void *ctx, int ith, int nth) {
    small_attn_task *t = (small_attn_task *)ctx;
    vv_llama_state *st = t->st;
    const vv_llama_hparams *hp = &st->m->hp;
    const int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv, bs = st->kv.block_size;
    const int q_dim = hp->n_head * hd, nq = t->n_rows * group;
    const int64_t Lp = (int64_t)t->n_sh * bs;
    if (t->sh_fast) { // queries along the vector lanes, one pass per KV head (ops_simd.h)
        float *Q = st->sh_buf + (size_t)ith * t->sh_per;     // [nq, hd]
        float *O = Q + vv_pad16((size_t)nq * hd);              // [nq, hd]
        float *lse = O + vv_pad16((size_t)nq * hd);            // [nq]
        float *work = lse + vv_pad16((size_t)nq);
        const float **kp = st->sh_ptr + (size_t)ith * 2 * t->n_sh, **vp = kp + t->n_sh;
        for (int gh = ith; gh < hp->n_head_kv; gh += nth) {
            for (int i = 0; i < t->n_rows; i++)
                memcpy(Q + (size_t)i * group * hd, st->q + (size_t)t->rows[i] * q_dim + (size_t)gh * group * hd,
                       (size_t)group * hd * sizeof(float));
            for (int bi = 0; bi < t->n_sh; bi++) {
                const size_t off = (size_t)t->layer * st->kv.layer_stride + (size_t)t->sh_blk[bi] * bs * st->kv.kv_dim +
                                   (size_t)gh * hd;
                kp[bi] = st->kv.k + off;
                vp[bi] = st->kv.v + off;
            }
            vv_attn_prefix(Q, nq, hd, t->scale, kp, vp, t->n_sh, bs, st->kv.kv_dim, O, lse, work);
            for (int qi = 0; qi < nq; qi++)
                st->sh_lse[(size_t)t->rows[qi / group] * hp->n_head + gh * group + qi % group] = lse[qi];
            for (int i = 0; i < t->n_rows; i++)
                memcpy(st->sh_o + (size_t)t->rows[i] * q_dim + (size_t)gh * group * hd, O + (size_t)i * group * hd,
                       (size_t)group * hd * sizeof(float));
        }
        return;
    }
    float *Q = st->sh_buf + (size_t)ith * t->sh_per;                           // [nq, hd]
    float *S = Q + (size_t)nq * hd;                                             // [nq, Lp]
    float *O = S + (size_t)nq * Lp;                                             // [nq, hd]
    for (int gh = ith; gh < hp->n_head_kv; gh += nth) {
        for (int i = 0; i < t->n_rows; i++)
            memcpy(Q + (size_t)i * group * hd, st->q + (size_t)t->rows[i] * q_dim + (size_t)gh * group * hd,
                   (size_t)group * hd * sizeof(float));
        // blocks stored one after another (a prefix prefilled at once): one GEMM each way
        bool contig = true;
        for (int bi = 1; bi < t->n_sh && contig; bi++) contig = t->sh_blk[bi] == t->sh_blk[0] + bi;
        const float *k0 = st->kv.k + (size_t)t->layer * st->kv.layer_stride + (size_t)t->sh_blk[0] * bs * st->kv.kv_dim +
                          (size_t)gh * hd;
        if (contig) vv_gemm_f32(true, nq, (int)Lp, hd, t->scale, Q, hd, k0, st->kv.kv_dim, S, (int)Lp);
        for (int bi = 0; bi < t->n_sh && !contig; bi++) {
            const float *kb = st->kv.k + (size_t)t->layer * st->kv.layer_stride + (size_t)t->sh_blk[bi] * bs * st->kv.kv_dim +
                              (size_t)gh * hd;
            vv_attn_scores(Q, hd, nq, kb, st->kv.kv_dim, bs, hd, t->scale, S + (int64_t)bi * bs, Lp);
        }
        for (int qi = 0; qi < nq; qi++) {
            float *sr = S + (int64_t)qi * Lp;
            int64_t am = 0;
            for (int64_t j = 1; j < Lp; j++)
                if (sr[j] > sr[am]) am = j;
            const float mx = sr[am];
            vv_softmax(sr, Lp);
            const int r = t->rows[qi / group], h = gh * group + qi % group;
            st->sh_lse[(size_t)r * hp->n_head + h] = mx - logf(sr[am]); // sr[am] = 1 / sum exp(s - mx)
        }
        const float *v0 = st->kv.v + (size_t)t->layer * st->kv.layer_stride + (size_t)t->sh_blk[0] * bs * st->kv.kv_dim +
                          (size_t)gh * hd;
        if (contig) vv_gemm_f32(false, nq, hd, (int)Lp, 1.0f, S, (int)Lp, v0, st->kv.kv_dim, O, hd);
        else memset(O, 0, (size_t)nq * hd * sizeof(float));
        for (int bi = 0; bi < t->n_sh && !contig; bi++) {
            const float *vb = st->kv.v + (size_t)t->layer * st->kv.layer_stride + (size_t)t->sh_blk[bi] * bs * st->kv.kv_dim +
                              (size_t)gh * hd;
            vv_attn_values(S + (int64_t)bi * bs, Lp, nq, vb, st->kv.kv_dim, bs, hd, O, hd);
        }
        for (int i = 0; i < t->n_rows; i++)
            memcpy(st->sh_o + (size_t)t->rows[i] * q_dim + (size_t)gh * group * hd, O + (size_t)i * group * hd,
                   (size_t)group * hd * sizeof(float));
    }
}

static void small_attn_worker(void *ctx, int ith, int nth) {
    small_attn_task *t = (small_attn_task *)ctx;
    vv_llama_state *st = t->st;
    const vv_llama_hparams *hp = &st->m->hp;
    const int hd = hp->head_dim, group = hp->n_head / hp->n_head_kv, bs = st->kv.block_size;
    const int q_dim = hp->n_head * hd;
    const int64_t lds = (int64_t)st->kv.n_blocks * bs;
    float *S = st->small_s + (size_t)ith * (size_t)group * (size_t)lds; // [group, n_ctx]
    // one item = a row and one KV head with its `group` query heads: each
    // cached K/V row is read once for all of them (vv_attn_scores/values)
    const int64_t n_items = (int64_t)t->n_rows * hp->n_head_kv;
    for (int64_t it = ith; it < n_items; it += nth) {
        const int r = t->rows[it / hp->n_head_kv];
        const int gh = (int)(it % hp->n_head_kv);
        const vv_kv_seq *s = &st->seqs[st->row_seq[r]];
        const int32_t L = st->kv_len[r];
        const float *qg = st->q + (size_t)r * q_dim + (size_t)gh * group * hd; // [group, hd]
        // positions [P, L) here; [0, P) came from shared_attn_worker (P = 0 without it)
        const int32_t P = t->n_sh * bs, n = L - P;
        for (int32_t j0 = P, bi = t->n_sh; j0 < L; j0 += bs, bi++) {
            const float *kb = st->kv.k + (size_t)t->layer * st->kv.layer_stride +
                              (size_t)s->blk[bi] * bs * st->kv.kv_dim + (size_t)gh * hd;
            vv_attn_scores(qg, hd, group, kb, st->kv.kv_dim, VV_MIN(bs, L - j0), hd, t->scale, S + (j0 - P), lds);
        }
        float *o = st->att + (size_t)r * q_dim + (size_t)gh * group * hd; // [group, hd]
        if (P) { // the prefix as one more entry: its log-sum-exp, its normalised output
            for (int h = 0; h < group; h++) {
                S[(int64_t)h * lds + n] = st->sh_lse[(size_t)r * hp->n_head + gh * group + h];
                vv_softmax(S + (int64_t)h * lds, n + 1);
                const float w = S[(int64_t)h * lds + n];
                const float *po = st->sh_o + (size_t)r * q_dim + (size_t)(gh * group + h) * hd;
                for (int d = 0; d < hd; d++) o[(size_t)h * hd + d] = w * po[d];
            }
        } else {
            for (int h = 0; h < group; h++) vv_softmax(S + (int64_t)h * lds, L);
            memset(o, 0, (size_t)group * hd * sizeof(float));
        }
        for (int32_t j0 = P, bi = t->n_sh; j0 < L; j0 += bs, bi++) {
            const float *vb = st->kv.v + (size_t)t->layer * st->kv.layer_stride +
                              (size_t)s->blk[bi] * bs * st->kv.kv_dim + (size_t)gh * hd;
            vv_attn_values(S + (j0 - P), lds, group, vb, st->kv.kv_dim, VV_MIN(bs, L - j0), hd, o, hd);
        }
    }
}

static int mm(vv_llama_state *st, const vv_tensor *W, const float *x, int n, float *y) {
    return vv_matmul(st->pool, W, x, n, y, W->ne[1], &st->ws, VV_ISA_BEST);
}

// Segment of the current chunk: rows [r0, r0 + n) of sequence seq, first position p0.
typedef struct { int seq, r0, n; int32_t p0; } chunk_seg;

static int forward_chunk(vv_llama_state *st, const vv_llama_batch *b, int row0, int n, const chunk_seg *segs,
                         int n_segs, float *logits, float *hidden, int *n_out_done, vv_error *e) {
    const vv_llama *m = st->m;
    const vv_llama_hparams *hp = &m->hp;
    const int n_embd = hp->n_embd, hd = hp->head_dim, q_dim = hp->n_head * hd, kv_dim = hp->n_head_kv * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    int rc;

    // input embeddings [n, n_embd]
    for (int i = 0; i < n; i++) {
        if (b->tokens) {
            int32_t t = b->tokens[row0 + i];
            if (t < 0 || t >= hp->n_vocab)
                return vv_err(e, VISVM_ERR_RANGE, "token id %d out of range [0, %d)", t, hp->n_vocab);
            if ((rc = vv_get_row(m->tok_embd, t, st->x + (size_t)i * n_embd)))
                return vv_err(e, rc, "cannot read embedding row %d", t);
        } else {
            memcpy(st->x + (size_t)i * n_embd, b->embd + (size_t)(row0 + i) * n_embd, (size_t)n_embd * sizeof(float));
        }
    }
    // rows whose hidden state / logits the caller wants: b->out, else the last row of
    // each segment of the whole batch
    int out_rows[512];
    int *orow = n <= 512 ? out_rows : malloc((size_t)n * sizeof(int));
    if (!orow) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    int n_o = 0;
    for (int i = 0; i < n; i++) {
        bool want;
        if (b->out) want = b->out[row0 + i];
        else {
            want = false;
            int acc = 0;
            for (int s = 0; s < b->n_seg; s++) {
                acc += b->seg_len[s];
                if (row0 + i == acc - 1) want = true;
            }
        }
        if (want) orow[n_o++] = i;
    }
    // positions, visible lengths, row -> sequence
    for (int si = 0; si < n_segs; si++)
        for (int i = 0; i < segs[si].n; i++) {
            int r = segs[si].r0 + i;
            st->pos[r] = segs[si].p0 + i;
            st->kv_len[r] = segs[si].p0 + i + 1;
            st->row_seq[r] = segs[si].seq;
        }
    // rows whose attention runs in the paged loop kernel: short segments (< 8 rows) and,
    // when they fork a long prefix (>= sh_min_medium positions) shared with the others,
    // segments of up to 64 rows (a value model scoring a step's candidates over its image
    // prefix): the prefix part is then one pass over the shared blocks for all rows
    // (shared_attn_worker) instead of a gather of the whole sequence and GEMMs per segment
    // (scoring 6 x 26 tokens over a 600-token prefix at the 1.1B shape: 0.52 -> 0.44 s).
    // Short prefixes keep the GEMM path (and the world models' results bit for bit)
    int small_rows[512];
    int *small = n <= 512 ? small_rows : malloc((size_t)n * sizeof(int));
    unsigned char sm_buf[64], *seg_small = n_segs <= 64 ? sm_buf : malloc((size_t)n_segs);
    if (!small || !seg_small) {
        if (small != small_rows) free(small);
        if (seg_small != sm_buf) free(seg_small);
        if (orow != out_rows) free(orow);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    int n_small = 0, n_sh = 0;
    for (int pass = 0; pass < 2; pass++) { // pass 0 with the medium segments; pass 1 without, if they share nothing
        n_small = 0;
        bool medium = false;
        for (int si = 0; si < n_segs; si++) {
            seg_small[si] = segs[si].n < 8 || (pass == 0 && st->shared_attn && segs[si].n < 64);
            medium |= segs[si].n >= 8 && seg_small[si];
            if (seg_small[si])
                for (int i = 0; i < segs[si].n; i++) small[n_small++] = segs[si].r0 + i;
        }
        // shared prefix of the small rows: leading blocks common to all their sequences and
        // entirely before every row's position (never written this step); worth it from 2 rows
        n_sh = 0;
        if (n_small >= 2 && st->shared_attn) {
            const vv_kv_seq *s0 = &st->seqs[st->row_seq[small[0]]];
            int32_t min_pos = INT32_MAX;
            for (int i = 0; i < n_small; i++) min_pos = VV_MIN(min_pos, st->pos[small[i]]);
            n_sh = VV_MIN(s0->n_blk, min_pos / st->kv.block_size);
            for (int i = 1; i < n_small && n_sh > 0; i++) {
                const vv_kv_seq *si = &st->seqs[st->row_seq[small[i]]];
                int c = 0;
                while (c < n_sh && c < si->n_blk && si->blk[c] == s0->blk[c]) c++;
                n_sh = c;
            }
        }
        if (!medium || (int64_t)n_sh * st->kv.block_size >= st->sh_min_medium) break;
    }
    const int32_t *sh_blk = NULL;
    size_t sh_per = 0;
    const bool sh_fast = vv_attn_prefix_fast(hd, st->kv.block_size);
    {
        const int nb = n_sh;
        n_sh = 0;
        if (nb > 0) {
            const vv_kv_seq *s0 = &st->seqs[st->row_seq[small[0]]];
            const size_t nq = (size_t)n_small * (hp->n_head / hp->n_head_kv), nth = (size_t)vv_pool_size(st->pool);
            const size_t Lp = (size_t)nb * st->kv.block_size;
            sh_per = sh_fast ? 2 * vv_pad16(nq * hd) + vv_pad16(nq) + vv_attn_prefix_work((int)nq, hd, (int64_t)Lp)
                             : nq * (Lp + 2 * hd);
            const size_t need = nth * sh_per;
            const size_t need_o = (size_t)st->n_batch * q_dim; // indexed by chunk row
            if (sh_fast && 2 * nth * (size_t)nb > st->sh_ptr_n) {
                free(st->sh_ptr);
                st->sh_ptr = malloc(2 * nth * (size_t)nb * sizeof(*st->sh_ptr));
                st->sh_ptr_n = st->sh_ptr ? 2 * nth * (size_t)nb : 0;
            }
            if (need > st->sh_buf_n) {
                vv_afree(st->sh_buf);
                st->sh_buf = vv_aalloc(need * sizeof(float));
                st->sh_buf_n = st->sh_buf ? need : 0;
            }
            if (need_o > st->sh_o_n) {
                vv_afree(st->sh_o);
                vv_afree(st->sh_lse);
                st->sh_o = vv_aalloc(need_o * sizeof(float));
                st->sh_lse = vv_aalloc((size_t)st->n_batch * hp->n_head * sizeof(float));
                st->sh_o_n = st->sh_o && st->sh_lse ? need_o : 0;
            }
            if (st->sh_buf_n >= need && st->sh_o_n >= need_o &&
                (!sh_fast || st->sh_ptr_n >= 2 * nth * (size_t)nb)) { // else (out of memory) the plain path
                n_sh = nb;
                sh_blk = s0->blk;
            }
        }
    }

    for (int il = 0; il < hp->n_layer; il++) {
        const vv_llama_layer *L = &m->layers[il];
        float *const *nf = m->norm_f32 + 2 + 6 * il; // attn_norm, ffn_norm, bq, bk, bv, bo
        vv_rmsnorm(st->x, nf[0], st->h, n, n_embd, hp->eps);
        if ((rc = mm(st, L->wq, st->h, n, st->q)) || (rc = mm(st, L->wk, st->h, n, st->k)) ||
            (rc = mm(st, L->wv, st->h, n, st->v)))
            goto mm_fail;
        if (nf[2]) vv_add_bias(st->q, nf[2], n, q_dim);
        if (nf[3]) vv_add_bias(st->k, nf[3], n, kv_dim);
        if (nf[4]) vv_add_bias(st->v, nf[4], n, kv_dim);
        if (hp->rope_neox) {
            vv_rope_neox(st->q, st->pos, n, hp->n_head, hd, hp->n_rot, hp->rope_base, hp->rope_freq_scale);
            vv_rope_neox(st->k, st->pos, n, hp->n_head_kv, hd, hp->n_rot, hp->rope_base, hp->rope_freq_scale);
        } else {
            vv_rope_norm(st->q, st->pos, n, hp->n_head, hd, hp->n_rot, hp->rope_base, hp->rope_freq_scale);
            vv_rope_norm(st->k, st->pos, n, hp->n_head_kv, hd, hp->n_rot, hp->rope_base, hp->rope_freq_scale);
        }
        // store K/V of every row at its position
        for (int r = 0; r < n; r++) {
            const vv_kv_seq *s = &st->seqs[st->row_seq[r]];
            memcpy(vv_kv_k(&st->kv, s, il, st->pos[r]), st->k + (size_t)r * kv_dim, (size_t)kv_dim * sizeof(float));
            memcpy(vv_kv_v(&st->kv, s, il, st->pos[r]), st->v + (size_t)r * kv_dim, (size_t)kv_dim * sizeof(float));
        }
        // attention
        if (n_small) {
            small_attn_task t = {st, il, small, n_small, scale, n_sh, sh_blk, sh_per, sh_fast};
            if (n_sh) vv_pool_run(st->pool, shared_attn_worker, &t);
            vv_pool_run(st->pool, small_attn_worker, &t);
        }
        for (int si = 0; si < n_segs; si++) {
            const chunk_seg *sg = &segs[si];
            if (seg_small[si]) continue;
            const vv_kv_seq *s = &st->seqs[sg->seq];
            const int32_t n_k = sg->p0 + sg->n;
            const float *kb, *vb;
            if (vv_kv_seq_contiguous(s, n_k, st->kv.block_size)) {
                kb = vv_kv_k(&st->kv, s, il, 0);
                vb = vv_kv_v(&st->kv, s, il, 0);
            } else { // forked sequence: gather its rows
                if (!st->gk) {
                    size_t sz = (size_t)st->kv.n_blocks * st->kv.block_size * kv_dim * sizeof(float);
                    st->gk = vv_aalloc(sz);
                    st->gv = vv_aalloc(sz);
                    if (!st->gk || !st->gv) {
                        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
                        goto out;
                    }
                }
                for (int32_t j = 0; j < n_k; j++) {
                    memcpy(st->gk + (size_t)j * kv_dim, vv_kv_k(&st->kv, s, il, j), (size_t)kv_dim * sizeof(float));
                    memcpy(st->gv + (size_t)j * kv_dim, vv_kv_v(&st->kv, s, il, j), (size_t)kv_dim * sizeof(float));
                }
                kb = st->gk;
                vb = st->gv;
            }
            rc = vv_attention(st->pool, st->q + (size_t)sg->r0 * q_dim, q_dim, kb, vb, kv_dim,
                              st->att + (size_t)sg->r0 * q_dim, q_dim, sg->n, n_k, hp->n_head, hp->n_head_kv, hd,
                              scale, st->kv_len + sg->r0, &st->as);
            if (rc) {
                vv_err(e, rc, "attention failed");
                goto out;
            }
        }
        // Last layer: past attention only the output rows matter (the others' K/V
        // are stored above), so their rows move to the front and the output
        // projection and feed-forward run on those alone (llama.cpp's inp_out_ids):
        // a 576-token prefill or a scoring call does 1/n_layer less work. Each row
        // is computed as before: the products are row-independent, bit for bit.
        int nr = n;
        if (il == hp->n_layer - 1 && st->out_rows_only && n_o < n) {
            for (int j = 0; j < n_o; j++)
                if (orow[j] != j) { // orow ascending: row orow[j] >= j is not overwritten yet
                    memcpy(st->att + (size_t)j * q_dim, st->att + (size_t)orow[j] * q_dim, (size_t)q_dim * sizeof(float));
                    memcpy(st->x + (size_t)j * n_embd, st->x + (size_t)orow[j] * n_embd, (size_t)n_embd * sizeof(float));
                    orow[j] = j;
                }
            nr = n_o;
            if (!nr) break;
        }
        if ((rc = mm(st, L->wo, st->att, nr, st->h))) goto mm_fail;
        if (nf[5]) vv_add_bias(st->h, nf[5], nr, n_embd);
        vv_add(st->x, st->h, (int64_t)nr * n_embd);
        // feed-forward
        vv_rmsnorm(st->x, nf[1], st->h, nr, n_embd, hp->eps);
        if ((rc = mm(st, L->w_gate, st->h, nr, st->g)) || (rc = mm(st, L->w_up, st->h, nr, st->u))) goto mm_fail;
        vv_swiglu_par(st->pool, st->g, st->u, (int64_t)nr * hp->n_ff);
        if ((rc = mm(st, L->w_down, st->g, nr, st->h))) goto mm_fail;
        vv_add(st->x, st->h, (int64_t)nr * n_embd);
    }
    // outputs: rows orow[] (0..n_o-1 once the last layer moved them to the front)
    {
        for (int j = 0; j < n_o; j++)
            memcpy(st->ho + (size_t)j * n_embd, st->x + (size_t)orow[j] * n_embd, (size_t)n_embd * sizeof(float));
        if (n_o) {
            vv_rmsnorm(st->ho, m->norm_f32[0], st->ho, n_o, n_embd, hp->eps);
            if (hidden) memcpy(hidden + (size_t)*n_out_done * n_embd, st->ho, (size_t)n_o * n_embd * sizeof(float));
            if (logits) {
                rc = vv_matmul(st->pool, m->output, st->ho, n_o, logits + (size_t)*n_out_done * hp->n_vocab,
                               hp->n_vocab, &st->ws, VV_ISA_BEST);
                if (rc) goto mm_fail;
            }
            *n_out_done += n_o;
        }
    }
    rc = VISVM_OK;
    goto out;
mm_fail:
    vv_err(e, rc, "matrix product failed (%s)", visvm_status_str(rc));
out:
    if (small != small_rows) free(small);
    if (seg_small != sm_buf) free(seg_small);
    if (orow != out_rows) free(orow);
    return rc;
}

int vv_llama_decode(vv_llama_state *st, const vv_llama_batch *b, float *logits, float *hidden, vv_error *e) {
    const vv_llama_hparams *hp = &st->m->hp;
    if (!b || b->n_tok <= 0 || b->n_seg <= 0 || !b->seg_seq || !b->seg_len || (!b->tokens == !b->embd))
        return vv_err(e, VISVM_ERR_INVALID, "invalid batch (need tokens or embeddings, and segments)");
    int total = 0;
    for (int s = 0; s < b->n_seg; s++) {
        if (b->seg_seq[s] < 0 || b->seg_seq[s] >= st->n_seq || b->seg_len[s] <= 0)
            return vv_err(e, VISVM_ERR_INVALID, "batch segment %d: bad sequence %d or length %d", s, b->seg_seq[s],
                          b->seg_len[s]);
        for (int s2 = 0; s2 < s; s2++)
            if (b->seg_seq[s2] == b->seg_seq[s])
                return vv_err(e, VISVM_ERR_INVALID, "sequence %d appears in two segments of one batch", b->seg_seq[s]);
        total += b->seg_len[s];
    }
    if (total != b->n_tok) return vv_err(e, VISVM_ERR_INVALID, "segment lengths sum to %d, not %d", total, b->n_tok);
    (void)hp;
    // remember lengths to restore on error; reserve cache space for every segment
    int32_t *len0 = malloc((size_t)b->n_seg * sizeof(int32_t));
    if (!len0) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    int rc = VISVM_OK;
    for (int s = 0; s < b->n_seg; s++) len0[s] = st->seqs[b->seg_seq[s]].len;
    for (int s = 0; s < b->n_seg && !rc; s++) rc = vv_kv_seq_reserve(&st->kv, &st->seqs[b->seg_seq[s]], b->seg_len[s], e);
    // chunks of at most n_batch rows
    int n_out = 0;
    chunk_seg *segs = malloc((size_t)b->n_seg * sizeof(chunk_seg));
    if (!segs && !rc) rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int row0 = 0; row0 < b->n_tok && !rc; row0 += st->n_batch) {
        const int n = VV_MIN(st->n_batch, b->n_tok - row0);
        int n_segs = 0, acc = 0;
        for (int s = 0; s < b->n_seg; s++) {
            int a0 = acc, a1 = acc + b->seg_len[s];
            acc = a1;
            int c0 = VV_MAX(a0, row0), c1 = VV_MIN(a1, row0 + n);
            if (c0 >= c1) continue;
            vv_kv_seq *sq = &st->seqs[b->seg_seq[s]];
            segs[n_segs++] = (chunk_seg){b->seg_seq[s], c0 - row0, c1 - c0, sq->len};
        }
        rc = forward_chunk(st, b, row0, n, segs, n_segs, logits, hidden, &n_out, e);
        if (!rc)
            for (int i = 0; i < n_segs; i++) st->seqs[segs[i].seq].len += segs[i].n;
    }
    free(segs);
    if (rc)
        for (int s = 0; s < b->n_seg; s++) vv_kv_seq_truncate(&st->kv, &st->seqs[b->seg_seq[s]], len0[s]);
    free(len0);
    return rc;
}

int vv_llama_decode_seq(vv_llama_state *st, int seq, const int32_t *tokens, const float *embd, int n, bool all,
                        float *logits, vv_error *e) {
    bool *out = NULL;
    if (all) {
        out = malloc((size_t)(n > 0 ? n : 1));
        if (!out) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        memset(out, 1, (size_t)(n > 0 ? n : 1));
    }
    vv_llama_batch b = {n, tokens, embd, 1, &seq, &n, out};
    int rc = vv_llama_decode(st, &b, logits, NULL, e);
    free(out);
    return rc;
}
