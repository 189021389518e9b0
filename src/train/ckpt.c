// ckpt.c - save / load parameter sets + AdamW state as GGUF (see ckpt.h).
#include "ckpt.h"
#include "../tensor/quants.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEY_VERSION "visvm.ckpt.version"
#define KEY_STEP "visvm.ckpt.step"
#define KEY_RNG "visvm.ckpt.rng"
#define KEY_META "visvm.ckpt.meta"
#define CKPT_VERSION 1

static void to_ne(const vt_param *p, int64_t ne[VT_MAX_DIMS]) {
    for (int d = 0; d < p->n_dims; d++) ne[d] = p->shape[p->n_dims - 1 - d];
}

static void shape_str(char *buf, size_t n, int n_dims, const int64_t *dims) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, n - o, "[");
    for (int d = 0; d < n_dims && o < n; d++)
        o += (size_t)snprintf(buf + o, n - o, "%s%" PRId64, d ? ", " : "", dims[d]);
    if (o < n) snprintf(buf + o, n - o, "]");
}

int vt_ckpt_save(const char *path, const vt_params *ps, const vt_ckpt_io *io, vv_error *e) {
    if (!path || !ps) return vv_err(e, VISVM_ERR_INVALID, "checkpoint save: NULL argument");
    if (!ps->allocated) return vv_err(e, VISVM_ERR_INVALID, "checkpoint save: parameters not allocated");
    vv_gguf_writer *w = vv_gguf_writer_create();
    if (!w) return vv_err(e, VISVM_ERR_NOMEM, "checkpoint save: out of memory");
    char name[VT_NAME_MAX + 8];
    int rc = vv_gguf_set_u32(w, KEY_VERSION, CKPT_VERSION);
    if (!rc) rc = vv_gguf_set_u64(w, KEY_STEP, (uint64_t)ps->step);
    if (!rc && io && io->rng) rc = vv_gguf_set_arr(w, KEY_RNG, VV_GGUF_UINT64, io->rng->s, 4);
    if (!rc && io && io->meta) rc = vv_gguf_set_str(w, KEY_META, io->meta);
    if (!rc && io && io->write_kv && (rc = io->write_kv(w, io->ud)) != VISVM_OK) {
        const char *m = vv_gguf_writer_error(w);
        rc = vv_err(e, rc, "checkpoint save %s: write_kv hook failed%s%s", path, *m ? ": " : "", m);
        vv_gguf_writer_free(w);
        return rc;
    }
    for (int i = 0; !rc && i < ps->n; i++) {
        const vt_param *p = &ps->items[i];
        int64_t ne[VT_MAX_DIMS];
        to_ne(p, ne);
        rc = vv_gguf_add_tensor(w, p->name, VV_TYPE_F32, p->n_dims, ne, p->data);
        if (rc || (p->flags & VT_PARAM_FROZEN)) continue;
        snprintf(name, sizeof(name), "%s.adam_m", p->name);
        rc = vv_gguf_add_tensor(w, name, VV_TYPE_F32, p->n_dims, ne, p->m);
        snprintf(name, sizeof(name), "%s.adam_v", p->name);
        if (!rc) rc = vv_gguf_add_tensor(w, name, VV_TYPE_F32, p->n_dims, ne, p->v);
    }
    if (rc) {
        rc = vv_err(e, rc, "checkpoint save %s: %s", path, vv_gguf_writer_error(w));
        vv_gguf_writer_free(w);
        return rc;
    }
    rc = vv_gguf_writer_write(w, path, e);
    vv_gguf_writer_free(w);
    if (rc) return vv_err_prefix(e, rc, "checkpoint save %s", path);
    return VISVM_OK;
}

// Finds name in g and checks type and shape against p. *out NULL if absent.
static int find_checked(const vv_gguf *g, const char *path, const char *name, const vt_param *p,
                        const vv_tensor **out, vv_error *e) {
    *out = vv_gguf_find_tensor(g, name);
    if (!*out) return VISVM_OK;
    const vv_tensor *t = *out;
    if (t->type != VV_TYPE_F32)
        return vv_err(e, VISVM_ERR_FORMAT, "checkpoint %s: tensor '%s' has type %s, expected f32", path, name,
                      vv_type_name(t->type));
    int64_t ne[VT_MAX_DIMS];
    to_ne(p, ne);
    bool same = t->n_dims == p->n_dims;
    for (int d = 0; same && d < p->n_dims; d++) same = t->ne[d] == ne[d];
    if (!same) {
        char a[128], b[128];
        shape_str(a, sizeof(a), t->n_dims, t->ne);
        shape_str(b, sizeof(b), p->n_dims, ne);
        return vv_err(e, VISVM_ERR_FORMAT, "checkpoint %s: tensor '%s' shape mismatch: file ne=%s, model ne=%s",
                      path, name, a, b);
    }
    return VISVM_OK;
}

// True if name is "<param>.adam_m" / ".adam_v" of a parameter of ps.
static bool is_moment_of_param(vt_params *ps, const char *name) {
    const size_t n = strlen(name);
    if (n < 8) return false;
    const char *suf = name + n - 7;
    if (strcmp(suf, ".adam_m") != 0 && strcmp(suf, ".adam_v") != 0) return false;
    char base[VT_NAME_MAX + 8];
    if (n - 7 >= sizeof(base)) return false;
    memcpy(base, name, n - 7);
    base[n - 7] = 0;
    return vt_params_find(ps, base) != NULL;
}

int vt_ckpt_load(const char *path, vt_params *ps, unsigned flags, const vt_ckpt_io *io, vv_error *e) {
    if (!path || !ps) return vv_err(e, VISVM_ERR_INVALID, "checkpoint load: NULL argument");
    if (!ps->allocated) return vv_err(e, VISVM_ERR_INVALID, "checkpoint load: parameters not allocated");
    if (io && io->meta_out) *io->meta_out = NULL;
    vv_gguf *g = NULL;
    int rc = vv_gguf_open(path, &g, e);
    if (rc) return vv_err_prefix(e, rc, "checkpoint %s", path);
    const bool wonly = flags & VT_CKPT_WEIGHTS_ONLY;
    const vv_tensor **src = calloc((size_t)ps->n * 3 + 1, sizeof(*src)); // data, m, v per parameter
    char name[VT_NAME_MAX + 8];
    uint64_t step = 0;
    uint64_t rng_s[4] = {0};
    bool have_rng = false;
    if (!src) {
        rc = vv_err(e, VISVM_ERR_NOMEM, "checkpoint %s: out of memory", path);
        goto done;
    }
    // 1. validate everything
    uint32_t ver = 0;
    if ((rc = vv_gguf_get_u32(g, KEY_VERSION, &ver, e))) {
        rc = vv_err_prefix(e, rc, "checkpoint %s (not a visvm checkpoint?)", path);
        goto done;
    }
    if (ver != CKPT_VERSION) {
        rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "checkpoint %s: version %u, expected %d", path, ver, CKPT_VERSION);
        goto done;
    }
    if (!wonly) {
        int64_t s64 = 0;
        if ((rc = vv_gguf_get_i64(g, KEY_STEP, &s64, e)) || s64 < 0) {
            rc = rc ? vv_err_prefix(e, rc, "checkpoint %s", path)
                    : vv_err(e, VISVM_ERR_FORMAT, "checkpoint %s: negative step", path);
            goto done;
        }
        step = (uint64_t)s64;
        if (io && io->rng) {
            int64_t k = vv_gguf_find_key(g, KEY_RNG);
            if (k < 0) {
                rc = vv_err(e, VISVM_ERR_NOT_FOUND, "checkpoint %s: no RNG state (key %s)", path, KEY_RNG);
                goto done;
            }
            if (vv_gguf_kv_type(g, k) != VV_GGUF_ARRAY || vv_gguf_arr_type(g, k) != VV_GGUF_UINT64 ||
                vv_gguf_arr_n(g, k) != 4) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "checkpoint %s: key %s is not a u64[4] array", path, KEY_RNG);
                goto done;
            }
            memcpy(rng_s, vv_gguf_arr_data(g, k), sizeof(rng_s));
            have_rng = true;
        }
    }
    for (int i = 0; i < ps->n; i++) {
        const vt_param *p = &ps->items[i];
        if ((rc = find_checked(g, path, p->name, p, &src[3 * i], e))) goto done;
        if (!src[3 * i]) {
            if (flags & VT_CKPT_ALLOW_MISSING) continue;
            rc = vv_err(e, VISVM_ERR_NOT_FOUND, "checkpoint %s: missing tensor '%s'", path, p->name);
            goto done;
        }
        if (wonly || (p->flags & VT_PARAM_FROZEN)) continue;
        for (int k = 1; k <= 2; k++) {
            snprintf(name, sizeof(name), "%s.%s", p->name, k == 1 ? "adam_m" : "adam_v");
            if ((rc = find_checked(g, path, name, p, &src[3 * i + k], e))) goto done;
            if (!src[3 * i + k]) {
                rc = vv_err(e, VISVM_ERR_NOT_FOUND, "checkpoint %s: missing tensor '%s' (optimizer state; load with "
                            "VT_CKPT_WEIGHTS_ONLY to start a fresh optimizer)", path, name);
                goto done;
            }
        }
    }
    if (!(flags & VT_CKPT_ALLOW_EXTRA)) {
        for (int64_t i = 0; i < vv_gguf_n_tensors(g); i++) {
            const char *tn = vv_gguf_tensor(g, i)->name;
            if (!vt_params_find(ps, tn) && !is_moment_of_param(ps, tn)) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "checkpoint %s: unexpected tensor '%s' (no such parameter)", path,
                            tn);
                goto done;
            }
        }
    }
    if (io && io->read_kv && (rc = io->read_kv(g, io->ud, e))) {
        rc = vv_err_prefix(e, rc, "checkpoint %s", path);
        goto done;
    }
    if (io && io->meta_out) {
        int64_t k = vv_gguf_find_key(g, KEY_META);
        if (k >= 0) {
            const char *m = vv_gguf_str_at(g, k, NULL);
            if (!m) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "checkpoint %s: key %s is not a string", path, KEY_META);
                goto done;
            }
            if (!(*io->meta_out = vv_strdup(m))) {
                rc = vv_err(e, VISVM_ERR_NOMEM, "checkpoint %s: out of memory", path);
                goto done;
            }
        }
    }
    // 2. copy (nothing can fail from here on)
    for (int i = 0; i < ps->n; i++) {
        vt_param *p = &ps->items[i];
        if (!src[3 * i]) continue;
        const size_t bytes = (size_t)p->n * sizeof(float);
        memcpy(p->data, src[3 * i]->data, bytes);
        if (p->flags & VT_PARAM_FROZEN) continue;
        if (wonly) {
            memset(p->m, 0, bytes);
            memset(p->v, 0, bytes);
        } else {
            memcpy(p->m, src[3 * i + 1]->data, bytes);
            memcpy(p->v, src[3 * i + 2]->data, bytes);
        }
    }
    ps->step = wonly ? 0 : (int64_t)step;
    if (have_rng) memcpy(io->rng->s, rng_s, sizeof(rng_s));
    rc = VISVM_OK;
done:
    if (rc && io && io->meta_out && *io->meta_out) {
        free(*io->meta_out);
        *io->meta_out = NULL;
    }
    free(src);
    vv_gguf_close(g);
    return rc;
}

static int load_gguf(vt_params *ps, const char *path, const char *prefix, bool *done, int *n_loaded, vv_error *e) {
    vv_gguf *g = NULL;
    int rc = vv_gguf_open(path, &g, e);
    if (rc) return rc;
    for (int i = 0; i < ps->n && !rc; i++) {
        vt_param *p = &ps->items[i];
        if (prefix && strncmp(p->name, prefix, strlen(prefix))) continue;
        const vv_tensor *t = vv_gguf_find_tensor(g, p->name);
        if (!t) continue;
        bool ok = vv_tensor_nelements(t) == p->n;
        for (int d = 0; d < p->n_dims && ok; d++) ok = t->ne[d] == p->shape[p->n_dims - 1 - d];
        if (!ok) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: tensor %s has a different shape than the model expects", path,
                        p->name);
            break;
        }
        if ((rc = vv_dequantize_row(t->type, t->data, p->data, p->n))) {
            vv_err(e, rc, "%s: cannot read tensor %s (type %s)", path, p->name, vv_type_name(t->type));
            break;
        }
        if (!done || !done[i]) (*n_loaded)++;
        if (done) done[i] = true;
    }
    vv_gguf_close(g);
    return rc;
}

int vt_params_load_gguf(vt_params *ps, const char *path, bool *done, int *n_loaded, vv_error *e) {
    return load_gguf(ps, path, NULL, done, n_loaded, e);
}

int vt_params_load_gguf_prefix(vt_params *ps, const char *path, const char *prefix, int *n_loaded, vv_error *e) {
    return load_gguf(ps, path, prefix, NULL, n_loaded, e);
}
