// spm_model.c - SentencePiece ModelProto reader (protobuf wire format) and the
// Hugging Face legacy LlamaTokenizer vocabulary built from it.
#include "spm_model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *p, *end;
} pb;

static bool pb_varint(pb *r, uint64_t *v) {
    uint64_t x = 0;
    for (int s = 0; s < 64; s += 7) {
        if (r->p >= r->end) return false;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

// Reads a field key; returns false at the end or on a malformed key.
static bool pb_key(pb *r, uint32_t *field, int *wire) {
    uint64_t k;
    if (!pb_varint(r, &k) || (k >> 3) == 0 || (k >> 3) > 0x1fffffff) return false;
    *field = (uint32_t)(k >> 3);
    *wire = (int)(k & 7);
    return true;
}

// Skips or reads the value of a field: for wire 2 sets sub to the payload.
static bool pb_value(pb *r, int wire, uint64_t *v, pb *sub) {
    switch (wire) {
    case 0: return pb_varint(r, v);
    case 1:
        if (r->end - r->p < 8) return false;
        memcpy(v, r->p, 8);
        r->p += 8;
        return true;
    case 5: {
        if (r->end - r->p < 4) return false;
        uint32_t x;
        memcpy(&x, r->p, 4);
        *v = x;
        r->p += 4;
        return true;
    }
    case 2: {
        uint64_t n;
        if (!pb_varint(r, &n) || n > (uint64_t)(r->end - r->p)) return false;
        sub->p = r->p;
        sub->end = r->p + n;
        r->p += n;
        return true;
    }
    default: return false; // groups (3, 4) are not used by sentencepiece
    }
}

void vv_spm_model_free(vv_spm_model *m) {
    if (!m) return;
    for (int i = 0; i < m->n; i++) free(m->pieces[i]);
    free(m->pieces);
    free(m->scores);
    free(m->types);
    memset(m, 0, sizeof(*m));
}

static int parse_piece(pb *s, vv_spm_model *m, int i, vv_error *e) {
    m->types[i] = VV_TOKEN_NORMAL;
    m->scores[i] = 0.0f;
    uint32_t f;
    int w;
    while (s->p < s->end) {
        uint64_t v = 0;
        pb sub = {0};
        if (!pb_key(s, &f, &w) || !pb_value(s, w, &v, &sub))
            return vv_err(e, VISVM_ERR_FORMAT, "tokenizer.model: piece %d is malformed", i);
        if (f == 1 && w == 2) {
            free(m->pieces[i]);
            if (!(m->pieces[i] = vv_strndup((const char *)sub.p, (size_t)(sub.end - sub.p))))
                return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            if (strlen(m->pieces[i]) != (size_t)(sub.end - sub.p))
                return vv_err(e, VISVM_ERR_FORMAT, "tokenizer.model: piece %d contains a NUL byte", i);
        } else if (f == 2 && w == 5) {
            uint32_t x = (uint32_t)v;
            memcpy(&m->scores[i], &x, 4);
        } else if (f == 3 && w == 0) {
            if (v < 1 || v > 6) return vv_err(e, VISVM_ERR_FORMAT, "tokenizer.model: piece %d has type %llu", i, (unsigned long long)v);
            m->types[i] = (int32_t)v;
        }
    }
    if (!m->pieces[i]) return vv_err(e, VISVM_ERR_FORMAT, "tokenizer.model: piece %d has no text", i);
    return VISVM_OK;
}

static int32_t as_i32(uint64_t v) { return (int32_t)(uint32_t)v; } // protobuf int32: sign-extended varint

int vv_spm_model_parse(const void *buf, size_t size, vv_spm_model *m, vv_error *e) {
    memset(m, 0, sizeof(*m));
    m->model_type = 1; // proto defaults
    m->unk_id = 0;
    m->bos_id = 1;
    m->eos_id = 2;
    m->pad_id = -1;
    m->add_dummy_prefix = true;
    m->remove_extra_whitespaces = true;
    snprintf(m->normalizer, sizeof(m->normalizer), "nmt_nfkc");
    pb r = {buf, (const uint8_t *)buf + size};
    // pass 1: count pieces
    int n = 0;
    uint32_t f;
    int w;
    while (r.p < r.end) {
        uint64_t v;
        pb sub;
        if (!pb_key(&r, &f, &w) || !pb_value(&r, w, &v, &sub))
            return vv_err(e, VISVM_ERR_FORMAT, "tokenizer.model: not a SentencePiece model (malformed protobuf at byte %zu)",
                          (size_t)(r.p - (const uint8_t *)buf));
        if (f == 1 && w == 2) {
            if (n >= (1 << 24)) return vv_err(e, VISVM_ERR_FORMAT, "tokenizer.model: too many pieces");
            n++;
        }
    }
    if (n == 0) return vv_err(e, VISVM_ERR_FORMAT, "tokenizer.model: no pieces (not a SentencePiece model?)");
    m->pieces = calloc((size_t)n, sizeof(char *));
    m->scores = calloc((size_t)n, sizeof(float));
    m->types = calloc((size_t)n, sizeof(int32_t));
    m->n = n;
    if (!m->pieces || !m->scores || !m->types) {
        vv_spm_model_free(m);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    r.p = buf;
    int i = 0, rc = VISVM_OK;
    while (r.p < r.end && !rc) {
        uint64_t v;
        pb sub = {0};
        pb_key(&r, &f, &w);
        pb_value(&r, w, &v, &sub);
        if (f == 1 && w == 2) {
            rc = parse_piece(&sub, m, i++, e);
        } else if ((f == 2 || f == 3) && w == 2) { // trainer_spec / normalizer_spec
            uint32_t g;
            int gw;
            while (sub.p < sub.end) {
                uint64_t x = 0;
                pb s2 = {0};
                if (!pb_key(&sub, &g, &gw) || !pb_value(&sub, gw, &x, &s2)) {
                    rc = vv_err(e, VISVM_ERR_FORMAT, "tokenizer.model: malformed %s",
                                f == 2 ? "trainer_spec" : "normalizer_spec");
                    break;
                }
                if (f == 2 && gw == 0) {
                    if (g == 3) m->model_type = (int)x;
                    else if (g == 35) m->byte_fallback = x != 0;
                    else if (g == 40) m->unk_id = as_i32(x);
                    else if (g == 41) m->bos_id = as_i32(x);
                    else if (g == 42) m->eos_id = as_i32(x);
                    else if (g == 43) m->pad_id = as_i32(x);
                } else if (f == 3) {
                    if (g == 1 && gw == 2) {
                        size_t l = (size_t)(s2.end - s2.p);
                        if (l >= sizeof(m->normalizer)) l = sizeof(m->normalizer) - 1;
                        memcpy(m->normalizer, s2.p, l);
                        m->normalizer[l] = 0;
                    } else if (g == 3 && gw == 0) {
                        m->add_dummy_prefix = x != 0;
                    } else if (g == 4 && gw == 0) {
                        m->remove_extra_whitespaces = x != 0;
                    }
                }
            }
        }
    }
    if (!rc) {
        int *ids[4] = {&m->unk_id, &m->bos_id, &m->eos_id, &m->pad_id};
        for (int k = 0; k < 4; k++)
            if (*ids[k] < -1 || *ids[k] >= n) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "tokenizer.model: special id %d out of range [0, %d)", *ids[k], n);
                break;
            }
    }
    if (rc) vv_spm_model_free(m);
    return rc;
}

int vv_spm_model_load(const char *path, vv_spm_model *out, vv_error *e) {
    char *data = NULL;
    size_t size = 0;
    memset(out, 0, sizeof(*out));
    int rc = vv_read_file(path, &data, &size, e);
    if (rc) return rc;
    rc = vv_spm_model_parse(data, size, out, e);
    free(data);
    if (rc) vv_err_prefix(e, rc, "%s", path);
    return rc;
}

int vv_spm_vocab_create(const vv_spm_model *m, const vv_added_token *added, int n_added, bool add_bos, bool add_eos,
                        vv_vocab **out, vv_error *e) {
    *out = NULL;
    if (m->model_type != 2)
        return vv_err(e, VISVM_ERR_UNSUPPORTED,
                      "tokenizer.model: model type %d is not supported (only BPE, as Llama/Mistral use)", m->model_type);
    if (strcmp(m->normalizer, "identity") != 0)
        return vv_err(e, VISVM_ERR_UNSUPPORTED,
                      "tokenizer.model: normalizer '%s' is not supported (only 'identity', as Llama/Mistral use)",
                      m->normalizer);
    if (m->remove_extra_whitespaces)
        return vv_err(e, VISVM_ERR_UNSUPPORTED, "tokenizer.model: remove_extra_whitespaces is not supported");
    int n = m->n;
    for (int i = 0; i < n_added; i++) {
        if (!added[i].text || !added[i].text[0] || added[i].id < 0 || added[i].id > (1 << 24))
            return vv_err(e, VISVM_ERR_INVALID, "added token %d: bad text or id", i);
        if (added[i].id >= n) n = added[i].id + 1;
    }
    char **texts = calloc((size_t)n, sizeof(char *));
    float *scores = calloc((size_t)n, sizeof(float));
    int32_t *types = calloc((size_t)n, sizeof(int32_t));
    char (*fill)[24] = calloc((size_t)n, 24);
    int rc = VISVM_OK;
    if (!texts || !scores || !types || !fill) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        goto done;
    }
    for (int i = 0; i < m->n; i++) {
        texts[i] = m->pieces[i];
        scores[i] = m->scores[i];
        types[i] = m->types[i];
    }
    for (int i = m->n; i < n; i++) {
        snprintf(fill[i], 24, "[UNUSED_%d]", i);
        texts[i] = fill[i];
        types[i] = VV_TOKEN_UNUSED;
    }
    for (int i = 0; i < n_added; i++) {
        int id = added[i].id;
        if (id < m->n) {
            // an added token that is also a model piece (<unk>, <s>, </s>): must agree
            if (strcmp(m->pieces[id], added[i].text) != 0) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "added token '%s' has id %d, which the model names '%s'", added[i].text,
                            id, m->pieces[id]);
                goto done;
            }
            continue;
        }
        texts[id] = (char *)added[i].text;
        types[id] = added[i].special ? VV_TOKEN_CONTROL : VV_TOKEN_USER_DEFINED;
    }
    rc = vv_vocab_create(n, (const char *const *)texts, scores, types, m->bos_id, m->eos_id, m->unk_id, add_bos,
                         m->add_dummy_prefix, out, e);
    if (!rc && add_eos) rc = vv_vocab_set_add_eos(*out, true, e);
    if (!rc && m->pad_id >= 0) rc = vv_vocab_set_pad(*out, m->pad_id, e);
    if (rc && *out) {
        vv_vocab_free(*out);
        *out = NULL;
    }
done:
    free(texts);
    free(scores);
    free(types);
    free(fill);
    return rc;
}
