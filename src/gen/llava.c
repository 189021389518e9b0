// llava.c - chat templates, image splicing and generation.
#include "llava.h"

#include <stdlib.h>
#include <string.h>

int vv_chat_resolve(int tmpl, const char *model_chat_template) {
    if (tmpl != VISVM_TEMPLATE_AUTO) return tmpl;
    if (model_chat_template && strstr(model_chat_template, "[INST]")) return VISVM_TEMPLATE_MISTRAL;
    return VISVM_TEMPLATE_LLAVA15;
}

int vv_chat_format(int tmpl, const char *prompt, bool with_image, vv_buf *out) {
    const char *img = with_image ? VV_IMAGE_MARKER "\n" : "";
    switch (tmpl) {
    case VISVM_TEMPLATE_LLAVA15: return vv_buf_printf(out, "USER: %s%s ASSISTANT:", img, prompt);
    case VISVM_TEMPLATE_MISTRAL: return vv_buf_printf(out, "[INST] %s%s [/INST]", img, prompt);
    case VISVM_TEMPLATE_RAW:
        if (with_image && !strstr(prompt, VV_IMAGE_MARKER)) return vv_buf_printf(out, "%s%s", img, prompt);
        return vv_buf_printf(out, "%s", prompt);
    default: return VISVM_ERR_INVALID;
    }
}

char *vv_defuse_image_marker(const char *text) {
    vv_buf b = {0};
    const size_t ml = strlen(VV_IMAGE_MARKER);
    for (const char *p = text ? text : "";;) {
        const char *m = strstr(p, VV_IMAGE_MARKER);
        if (!m) {
            if (vv_buf_append(&b, p, strlen(p))) break;
            return b.v ? b.v : vv_strdup("");
        }
        if (vv_buf_append(&b, p, (size_t)(m - p)) || vv_buf_append(&b, "image", 5)) break;
        p = m + ml;
    }
    vv_buf_free(&b);
    return NULL;
}

int vv_llava_tokenize(const vv_vocab *v, const char *prompt, vv_ivec *pre, vv_ivec *post, bool *has_image,
                      vv_error *e) {
    const char *m = strstr(prompt, VV_IMAGE_MARKER);
    *has_image = m != NULL;
    size_t n_before = m ? (size_t)(m - prompt) : strlen(prompt);
    int rc = vv_tokenize(v, prompt, n_before, true, true, pre, e);
    if (rc || !m) return rc;
    const char *after = m + strlen(VV_IMAGE_MARKER);
    if (strstr(after, VV_IMAGE_MARKER)) return vv_err(e, VISVM_ERR_INVALID, "the prompt has more than one <image> marker");
    if (*after == 0) return VISVM_OK;
    return vv_tokenize(v, after, strlen(after), false, true, post, e);
}

int vv_llava_prefill(vv_llama_state *st, int seq, const int32_t *pre, int n_pre, const float *img, int n_img,
                     const int32_t *post, int n_post, float *logits, float *all_logits, vv_error *e) {
    const size_t n_vocab = (size_t)vv_llama_state_model(st)->hp.n_vocab;
    // Each part is one decode call sharing the KV cache (as llama-llava-cli).
    struct { const int32_t *t; const float *x; int n; } parts[3] = {{pre, NULL, n_pre}, {NULL, img, n_img}, {post, NULL, n_post}};
    int last_part = -1;
    for (int i = 0; i < 3; i++)
        if (parts[i].n > 0) last_part = i;
    if (last_part < 0) return vv_err(e, VISVM_ERR_INVALID, "empty prompt");
    size_t row = 0;
    for (int i = 0; i < 3; i++) {
        if (parts[i].n <= 0) continue;
        float *dst = all_logits ? all_logits + row * n_vocab : (i == last_part ? logits : NULL);
        int rc = vv_llama_decode_seq(st, seq, parts[i].t, parts[i].x, parts[i].n, all_logits != NULL, dst, e);
        if (rc) return rc;
        row += (size_t)parts[i].n;
    }
    if (all_logits && logits) memcpy(logits, all_logits + (row - 1) * n_vocab, n_vocab * sizeof(float));
    return VISVM_OK;
}

int vv_generate(vv_llama_state *st, int seq, const vv_vocab *v, float *logits, const vv_gen_params *gp, vv_rng *rng,
                vv_sampler *smp, vv_ivec *toks, vv_buf *text, vv_error *e) {
    const int eos = vv_vocab_eos(v);
    size_t text0 = text->n;
    size_t stop_len = gp->stop ? strlen(gp->stop) : 0;
    for (int i = 0; i < gp->n_predict; i++) {
        int tok = vv_sample(smp, logits, &gp->sp, rng);
        if (gp->stop_at_eos && tok == eos) break;
        if (vv_ivec_push(toks, tok)) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        size_t before = text->n;
        // Ids past the tokenizer (the padded vocabulary rows of HF checkpoints,
        // e.g. 514..575 of golden-hf's 576) have no piece: as HF's decode with
        // skip_special_tokens they add no text, and generation goes on.
        int rc = tok >= vv_vocab_n(v) ? VISVM_OK : vv_token_to_piece(v, tok, false, text);
        if (rc) return vv_err(e, rc, "cannot decode token %d", tok);
        // the first piece of an answer keeps its leading space out (llama.cpp detokenize style)
        if (before == text0 && text->n > text0 && text->v[text0] == ' ' && i == 0) {
            memmove(text->v + text0, text->v + text0 + 1, text->n - text0);
            text->n--;
        }
        bool stop = false;
        if (stop_len) {
            // search only the region the new piece could complete
            size_t from = before >= stop_len ? before - stop_len + 1 : text0;
            if (from < text0) from = text0;
            if (text->n >= from + stop_len && memmem(text->v + from, text->n - from, gp->stop, stop_len)) stop = true;
        }
        if (stop || i + 1 == gp->n_predict) break;
        rc = vv_llama_decode_seq(st, seq, &tok, NULL, 1, false, logits, e);
        if (rc) return rc;
    }
    return VISVM_OK;
}
