// api.c - the public C API (include/visvm.h) over the internal modules.
#include "visvm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_internal.h"
#include "gen/llava.h"

static _Thread_local char g_last_error[512];

static int set_last(int rc, const vv_error *e) {
    if (rc) snprintf(g_last_error, sizeof(g_last_error), "%s", e && e->msg[0] ? e->msg : visvm_status_str(rc));
    return rc;
}

const char *visvm_version(void) { return VISVM_VERSION_STRING; }

const char *visvm_status_str(int s) {
    switch (s) {
    case VISVM_OK: return "ok";
    case VISVM_ERR_IO: return "i/o error";
    case VISVM_ERR_FORMAT: return "malformed input";
    case VISVM_ERR_NOMEM: return "out of memory";
    case VISVM_ERR_INVALID: return "invalid argument";
    case VISVM_ERR_UNSUPPORTED: return "unsupported";
    case VISVM_ERR_RANGE: return "out of range";
    case VISVM_ERR_NOT_FOUND: return "not found";
    case VISVM_ERR_INTERNAL: return "internal error";
    default: return "unknown status";
    }
}

const char *visvm_last_error(void) { return g_last_error; }
void visvm_free_string(char *s) { free(s); }
void visvm_free_floats(float *p) { vv_afree(p); }
void visvm_set_log_level(int level) { vv_log_set_level(level); }

// ---------------------------------------------------------------------------
// models

visvm_model_params visvm_model_default_params(void) {
    visvm_model_params p = {0, true};
    return p;
}

visvm_mmproj_params visvm_mmproj_default_params(void) {
    visvm_mmproj_params p = {VISVM_VISION_REFERENCE};
    return p;
}

int visvm_model_load(const char *path, const visvm_model_params *params, visvm_model **out) {
    vv_error e = {0};
    (void)params;
    if (!out || !path) return set_last(vv_err(&e, VISVM_ERR_INVALID, "visvm_model_load: NULL argument"), &e);
    *out = NULL;
    visvm_model *m = calloc(1, sizeof(*m));
    if (!m) return set_last(vv_err(&e, VISVM_ERR_NOMEM, "out of memory"), &e);
    int rc = vv_llama_load_file(path, &m->m, &e);
    if (rc) {
        free(m);
        return set_last(rc, &e);
    }
    *out = m;
    return VISVM_OK;
}

void visvm_model_free(visvm_model *m) {
    if (!m) return;
    vv_llama_free(m->m);
    free(m);
}

int visvm_mmproj_load(const char *path, const visvm_mmproj_params *params, visvm_mmproj **out) {
    vv_error e = {0};
    if (!out || !path) return set_last(vv_err(&e, VISVM_ERR_INVALID, "visvm_mmproj_load: NULL argument"), &e);
    *out = NULL;
    visvm_mmproj_params p = params ? *params : visvm_mmproj_default_params();
    if (p.vision_mode != VISVM_VISION_REFERENCE && p.vision_mode != VISVM_VISION_LLAMACPP)
        return set_last(vv_err(&e, VISVM_ERR_INVALID, "unknown vision mode %d", p.vision_mode), &e);
    visvm_mmproj *m = calloc(1, sizeof(*m));
    if (!m) return set_last(vv_err(&e, VISVM_ERR_NOMEM, "out of memory"), &e);
    int rc = vv_clip_load_file(path, p.vision_mode, &m->c, &e);
    if (rc) {
        free(m);
        return set_last(rc, &e);
    }
    *out = m;
    return VISVM_OK;
}

void visvm_mmproj_free(visvm_mmproj *m) {
    if (!m) return;
    vv_clip_free(m->c);
    free(m);
}

int visvm_model_n_vocab(const visvm_model *m) { return m ? m->m->hp.n_vocab : 0; }
int visvm_model_n_embd(const visvm_model *m) { return m ? m->m->hp.n_embd : 0; }
int visvm_model_n_ctx_train(const visvm_model *m) { return m ? m->m->hp.n_ctx_train : 0; }
int visvm_model_token_bos(const visvm_model *m) { return m ? vv_vocab_bos(m->m->vocab) : -1; }
int visvm_model_token_eos(const visvm_model *m) { return m ? vv_vocab_eos(m->m->vocab) : -1; }

int visvm_model_desc(const visvm_model *m, char *buf, size_t size) {
    if (!m || !buf || size == 0) return VISVM_ERR_INVALID;
    const vv_llama_hparams *hp = &m->m->hp;
    double np = (double)vv_llama_n_params(m->m);
    snprintf(buf, size, "llama %.*f%s %s, %d layers, n_embd %d, heads %d/%d, n_ff %d, vocab %d", np >= 1e9 ? 2 : 1,
             np >= 1e9 ? np / 1e9 : np / 1e6, np >= 1e9 ? "B" : "M", vv_type_name(m->m->file_type), hp->n_layer,
             hp->n_embd, hp->n_head, hp->n_head_kv, hp->n_ff, hp->n_vocab);
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// tokenizer

int visvm_tokenize(const visvm_model *m, const char *text, size_t len, int32_t *tokens, int n_max, bool add_special,
                   bool parse_special) {
    vv_error e = {0};
    if (!m || (!text && len)) return set_last(vv_err(&e, VISVM_ERR_INVALID, "visvm_tokenize: NULL argument"), &e);
    vv_ivec v = {0};
    int rc = vv_tokenize(m->m->vocab, text ? text : "", len, add_special, parse_special, &v, &e);
    if (rc) {
        vv_ivec_free(&v);
        return set_last(rc, &e);
    }
    if (v.n > (size_t)INT32_MAX) {
        vv_ivec_free(&v);
        return set_last(vv_err(&e, VISVM_ERR_RANGE, "too many tokens"), &e);
    }
    int n = (int)v.n;
    if (tokens && n_max > 0) memcpy(tokens, v.v, (size_t)VV_MIN(n, n_max) * sizeof(int32_t));
    vv_ivec_free(&v);
    return n;
}

int visvm_token_to_piece(const visvm_model *m, int32_t token, char *buf, int size, bool special) {
    if (!m || (!buf && size > 0)) return VISVM_ERR_INVALID;
    vv_buf b = {0};
    int rc = vv_token_to_piece(m->m->vocab, token, special, &b);
    if (rc) {
        vv_buf_free(&b);
        return rc;
    }
    int n = (int)b.n;
    if (size > 0) memcpy(buf, b.v ? b.v : "", (size_t)VV_MIN(n, size));
    vv_buf_free(&b);
    return n;
}

int visvm_detokenize(const visvm_model *m, const int32_t *tokens, int n, bool special, char **out) {
    if (!m || !out || (n > 0 && !tokens) || n < 0) return VISVM_ERR_INVALID;
    vv_buf b = {0};
    int rc = vv_detokenize(m->m->vocab, tokens, (size_t)n, special, true, &b);
    if (rc) {
        vv_buf_free(&b);
        return rc;
    }
    if (!b.v) b.v = calloc(1, 1);
    *out = b.v;
    return *out ? VISVM_OK : VISVM_ERR_NOMEM;
}

// ---------------------------------------------------------------------------
// contexts

visvm_context_params visvm_context_default_params(void) {
    visvm_context_params p = {4096, 0, 512};
    return p;
}

static int ctx_err(visvm_context *c, int rc) {
    if (rc && c && !c->err.msg[0]) vv_err(&c->err, rc, "%s", visvm_status_str(rc));
    return rc;
}

int visvm_context_create(const visvm_model *model, const visvm_mmproj *mmproj, const visvm_context_params *params,
                         visvm_context **out) {
    vv_error e = {0};
    if (!model || !out) return set_last(vv_err(&e, VISVM_ERR_INVALID, "visvm_context_create: NULL argument"), &e);
    *out = NULL;
    visvm_context_params p = params ? *params : visvm_context_default_params();
    if (p.n_ctx <= 0) p.n_ctx = 4096;
    if (p.n_batch <= 0) p.n_batch = 512;
    if (p.n_ctx > (1 << 22) || p.n_batch > (1 << 16))
        return set_last(vv_err(&e, VISVM_ERR_INVALID, "n_ctx %d / n_batch %d out of range", p.n_ctx, p.n_batch), &e);
    if (mmproj && mmproj->c->n_embd_out != model->m->hp.n_embd)
        return set_last(vv_err(&e, VISVM_ERR_INVALID,
                               "the mmproj projects to %d dimensions but the text model has n_embd %d",
                               mmproj->c->n_embd_out, model->m->hp.n_embd),
                        &e);
    visvm_context *c = calloc(1, sizeof(*c));
    if (!c) return set_last(vv_err(&e, VISVM_ERR_NOMEM, "out of memory"), &e);
    c->model = model;
    c->mmproj = mmproj;
    c->pool = vv_pool_create(p.n_threads);
    if (!c->pool) {
        free(c);
        return set_last(vv_err(&e, VISVM_ERR_NOMEM, "cannot create threads"), &e);
    }
    vv_llama_state_params sp = {p.n_ctx, 1, p.n_batch, c->pool};
    int rc = vv_llama_state_create(model->m, &sp, &c->st, &e);
    if (!rc && vv_sampler_init(&c->smp, model->m->hp.n_vocab)) rc = vv_err(&e, VISVM_ERR_NOMEM, "out of memory");
    if (rc) {
        visvm_context_free(c);
        return set_last(rc, &e);
    }
    vv_rng_seed(&c->rng, 42);
    *out = c;
    return VISVM_OK;
}

void visvm_context_free(visvm_context *c) {
    if (!c) return;
    vv_llama_state_free(c->st);
    vv_pool_free(c->pool);
    vv_sampler_free(&c->smp);
    vv_afree(c->logits);
    free(c);
}

const char *visvm_context_error(const visvm_context *c) { return c ? c->err.msg : "NULL context"; }

static int ensure_logits(visvm_context *c, int rows) {
    if (rows <= c->logits_cap) return VISVM_OK;
    vv_afree(c->logits);
    c->logits = vv_aalloc((size_t)rows * c->model->m->hp.n_vocab * sizeof(float));
    c->logits_cap = c->logits ? rows : 0;
    return c->logits ? VISVM_OK : vv_err(&c->err, VISVM_ERR_NOMEM, "out of memory for %d logits rows", rows);
}

static int decode_common(visvm_context *c, const int32_t *tokens, const float *embd, int n, bool all) {
    vv_err_clear(&c->err);
    if (n <= 0 || (!tokens && !embd)) return vv_err(&c->err, VISVM_ERR_INVALID, "nothing to decode");
    int rc = ensure_logits(c, all ? n : 1);
    if (rc) return rc;
    rc = vv_llama_decode_seq(c->st, 0, tokens, embd, n, all, c->logits, &c->err);
    c->logits_rows = rc ? 0 : (all ? n : 1);
    return ctx_err(c, rc);
}

int visvm_decode_tokens(visvm_context *c, const int32_t *tokens, int n, bool all_logits) {
    if (!c) return VISVM_ERR_INVALID;
    return decode_common(c, tokens, NULL, n, all_logits);
}

int visvm_decode_embd(visvm_context *c, const float *embd, int n, bool all_logits) {
    if (!c) return VISVM_ERR_INVALID;
    return decode_common(c, NULL, embd, n, all_logits);
}

const float *visvm_get_logits(const visvm_context *c, int i) {
    if (!c || c->logits_rows == 0) return NULL;
    if (i < 0) i = c->logits_rows - 1;
    if (i >= c->logits_rows) return NULL;
    return c->logits + (size_t)i * c->model->m->hp.n_vocab;
}

int visvm_n_past(const visvm_context *c) { return c ? vv_llama_seq_len(c->st, 0) : 0; }

int visvm_truncate(visvm_context *c, int n_keep) {
    if (!c) return VISVM_ERR_INVALID;
    if (n_keep < 0) return vv_err(&c->err, VISVM_ERR_INVALID, "visvm_truncate: n_keep %d is negative", n_keep);
    c->logits_rows = 0;
    return vv_llama_seq_truncate(c->st, 0, n_keep);
}

int vv_api_embed_vv_image(visvm_context *c, const vv_image *img, float **embd, int *n_tokens) {
    *embd = NULL;
    *n_tokens = 0;
    if (!c->mmproj) return vv_err(&c->err, VISVM_ERR_INVALID, "this context has no vision model (mmproj)");
    vv_image_batch b = {0};
    int rc = vv_preprocess(img, &c->mmproj->c->pre, &b, &c->err);
    if (!rc) rc = vv_clip_embed(c->mmproj->c, c->pool, &b, embd, n_tokens, NULL, &c->err);
    vv_image_batch_free(&b);
    return rc;
}

int vv_api_embed_image(visvm_context *c, const char *path, float **embd, int *n_tokens) {
    *embd = NULL;
    *n_tokens = 0;
    if (!c->mmproj) return vv_err(&c->err, VISVM_ERR_INVALID, "this context has no vision model (mmproj)");
    vv_image img = {0};
    int rc = vv_image_load_file(path, &img, &c->err);
    if (!rc) rc = vv_api_embed_vv_image(c, &img, embd, n_tokens);
    vv_image_free(&img);
    return rc;
}

int visvm_image_embed_file(visvm_context *c, const char *path, float **embd, int *n_tokens) {
    if (!c || !path || !embd || !n_tokens) return VISVM_ERR_INVALID;
    vv_err_clear(&c->err);
    return ctx_err(c, vv_api_embed_image(c, path, embd, n_tokens));
}

// ---------------------------------------------------------------------------
// captioning

visvm_sample_params visvm_sample_default_params(void) {
    visvm_sample_params p = {0.0f, 40, 0.9f, 42, 256, VISVM_TEMPLATE_AUTO, NULL};
    return p;
}

int visvm_caption(visvm_context *c, const char *image_path, const char *prompt, const visvm_sample_params *params,
                  char **out_text) {
    return vv_api_caption(c, image_path, NULL, prompt, params, out_text);
}

int vv_api_caption(visvm_context *c, const char *image_path, const vv_image *image, const char *prompt,
                   const visvm_sample_params *params, char **out_text) {
    if (!c || !prompt || !out_text) return VISVM_ERR_INVALID;
    *out_text = NULL;
    vv_err_clear(&c->err);
    visvm_sample_params p = params ? *params : visvm_sample_default_params();
    if (p.n_predict < 0 || p.n_predict > (1 << 20) || p.top_p < 0 || p.top_p > 1 || p.temperature < 0 ||
        p.temperature > 100)
        return vv_err(&c->err, VISVM_ERR_INVALID, "bad sampling parameters (n_predict %d, temp %g, top_p %g)",
                      p.n_predict, p.temperature, p.top_p);
    const vv_llama *m = c->model->m;
    int rc;
    float *img = NULL;
    int n_img = 0;
    vv_buf full = {0}, text = {0};
    vv_ivec pre = {0}, post = {0}, toks = {0};
    bool has_image = false;
    const bool with_image = image_path || image;
    if (image_path && (rc = vv_api_embed_image(c, image_path, &img, &n_img))) goto done;
    if (image && (rc = vv_api_embed_vv_image(c, image, &img, &n_img))) goto done;
    int tmpl = vv_chat_resolve(p.chat_template, m->chat_template);
    if ((rc = vv_chat_format(tmpl, prompt, with_image, &full))) {
        vv_err(&c->err, rc, "unknown chat template %d", p.chat_template);
        goto done;
    }
    if ((rc = vv_llava_tokenize(m->vocab, full.v, &pre, &post, &has_image, &c->err))) goto done;
    if (with_image && !has_image) {
        rc = vv_err(&c->err, VISVM_ERR_INVALID, "the prompt has no <image> marker for the image");
        goto done;
    }
    if ((int64_t)pre.n + n_img + (int64_t)post.n + p.n_predict > vv_llama_state_n_ctx(c->st)) {
        rc = vv_err(&c->err, VISVM_ERR_RANGE, "prompt (%zu tokens + %d image positions) plus %d new tokens exceeds the context of %d",
                    pre.n + post.n, n_img, p.n_predict, vv_llama_state_n_ctx(c->st));
        goto done;
    }
    vv_llama_seq_clear(c->st, 0);
    if ((rc = ensure_logits(c, 1))) goto done;
    rc = vv_llava_prefill(c->st, 0, pre.v, (int)pre.n, img, n_img, post.v, (int)post.n, c->logits, NULL, &c->err);
    if (rc) goto done;
    vv_rng_seed(&c->rng, p.seed);
    vv_gen_params gp = {{p.temperature, p.top_k, p.top_p}, p.n_predict, p.stop, true};
    rc = vv_generate(c->st, 0, m->vocab, c->logits, &gp, &c->rng, &c->smp, &toks, &text, &c->err);
    c->logits_rows = 1;
    if (!rc) {
        if (!text.v) text.v = calloc(1, 1);
        *out_text = text.v;
        text.v = NULL;
        if (!*out_text) rc = vv_err(&c->err, VISVM_ERR_NOMEM, "out of memory");
    }
done:
    vv_afree(img);
    vv_buf_free(&full);
    vv_buf_free(&text);
    vv_ivec_free(&pre);
    vv_ivec_free(&post);
    vv_ivec_free(&toks);
    return ctx_err(c, rc);
}
