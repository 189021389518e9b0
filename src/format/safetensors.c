// safetensors.c - safetensors reader (single files and sharded checkpoints)
// and writer. Rules: safetensors.h.
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (safetensors files are little-endian)"
#endif

static const char *const g_names[VV_ST_DTYPE_COUNT] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3",
                                                       "I16",  "U16", "F16", "BF16",    "I32",
                                                       "U32",  "F32", "F64", "I64",     "U64"};
static const size_t g_sizes[VV_ST_DTYPE_COUNT] = {1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 8, 8, 8};

const char *vv_st_dtype_name(int d) { return d >= 0 && d < VV_ST_DTYPE_COUNT ? g_names[d] : "?"; }
size_t vv_st_dtype_size(int d) { return d >= 0 && d < VV_ST_DTYPE_COUNT ? g_sizes[d] : 0; }

int vv_st_dtype_from_name(const char *s) {
    if (!s) return -1;
    for (int i = 0; i < VV_ST_DTYPE_COUNT; i++)
        if (!strcmp(s, g_names[i])) return i;
    return -1;
}

int vv_st_dtype_to_type(int d) {
    switch (d) {
    case VV_ST_F32: return VV_TYPE_F32;
    case VV_ST_F16: return VV_TYPE_F16;
    case VV_ST_BF16: return VV_TYPE_BF16;
    case VV_ST_F64: return VV_TYPE_F64;
    case VV_ST_I8: return VV_TYPE_I8;
    case VV_ST_I16: return VV_TYPE_I16;
    case VV_ST_I32: return VV_TYPE_I32;
    case VV_ST_I64: return VV_TYPE_I64;
    default: return -1;
    }
}

typedef struct {
    char *path;        // "" for memory images
    vv_mmap map;       // empty for memory images
    const uint8_t *base;
    size_t size;
    cJSON *meta;       // __metadata__ object (owned by header)
    cJSON *header;
} st_shard;

struct vv_safetensors {
    st_shard *shards;
    int n_shards;
    vv_st_tensor *t;   // sorted by name
    int64_t n;
    void **copies;     // aligned copies of misaligned tensors
    int64_t n_copies;
};

void vv_st_close(vv_safetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n_shards; i++) {
        free(st->shards[i].path);
        vv_mmap_close(&st->shards[i].map);
        cJSON_Delete(st->shards[i].header);
    }
    free(st->shards);
    for (int64_t i = 0; i < st->n; i++) free((char *)st->t[i].name);
    free(st->t);
    for (int64_t i = 0; i < st->n_copies; i++) vv_afree(st->copies[i]);
    free(st->copies);
    free(st);
}

static uint64_t rd_u64(const uint8_t *p) {
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

// A JSON number that is a non-negative integer representable exactly (< 2^53).
static bool json_uint(const cJSON *v, uint64_t *out) {
    int64_t x;
    if (!vv_json_int(v, 0, VV_JSON_MAX_EXACT, &x)) return false;
    *out = (uint64_t)x;
    return true;
}

typedef struct {
    uint64_t begin, end;
    int64_t idx; // index into the tensor table
} st_range;

static int cmp_range(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

static int cmp_tensor(const void *a, const void *b) {
    return strcmp(((const vv_st_tensor *)a)->name, ((const vv_st_tensor *)b)->name);
}

static int grow_tensors(vv_safetensors *st, int64_t add, vv_error *e) {
    vv_st_tensor *t = realloc(st->t, (size_t)(st->n + add) * sizeof(*t));
    if (!t) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    st->t = t;
    return VISVM_OK;
}

// Fills the engine view of a tensor (type -1 when not representable).
static void set_view(vv_st_tensor *t) {
    memset(&t->view, 0, sizeof(t->view));
    t->view.name = t->name;
    t->view.type = -1;
    int type = vv_st_dtype_to_type(t->dtype);
    if (type < 0 || t->n_dims > 4) return;
    t->view.type = type;
    t->view.n_dims = t->n_dims > 0 ? t->n_dims : 1;
    for (int i = 0; i < 4; i++) t->view.ne[i] = 1;
    for (int i = 0; i < t->n_dims; i++) t->view.ne[i] = t->shape[t->n_dims - 1 - i];
    vv_tensor_set_strides(&t->view);
    t->view.data = (void *)t->data;
}

// Parses one file image and appends its tensors (shard index si).
static int parse_shard(vv_safetensors *st, int si, vv_error *e) {
    st_shard *sh = &st->shards[si];
    const char *fname = sh->path && sh->path[0] ? sh->path : "<memory>";
    if (sh->size < 8)
        return vv_err(e, VISVM_ERR_FORMAT, "%s: file of %zu bytes is too small for the 8-byte header length", fname,
                      sh->size);
    uint64_t hn = rd_u64(sh->base);
    if (hn > VV_ST_MAX_HEADER)
        return vv_err(e, VISVM_ERR_FORMAT, "%s: header length %" PRIu64 " exceeds the limit of %" PRIu64 " bytes",
                      fname, hn, VV_ST_MAX_HEADER);
    if (hn < 2)
        return vv_err(e, VISVM_ERR_FORMAT, "%s: header length %" PRIu64 " is too small for a JSON object", fname, hn);
    if (hn > sh->size - 8)
        return vv_err(e, VISVM_ERR_FORMAT,
                      "%s: header length %" PRIu64 " runs past the end of the file (%zu bytes): truncated file or "
                      "bad header length",
                      fname, hn, sh->size);
    const char *hj = (const char *)sh->base + 8;
    if (hj[0] != '{')
        return vv_err(e, VISVM_ERR_FORMAT, "%s: header does not start with '{' (bad header length or not a "
                                           "safetensors file)", fname);
    const char *end = NULL;
    char *copy = vv_strndup(hj, (size_t)hn);
    if (!copy) return vv_err(e, VISVM_ERR_NOMEM, "out of memory for a %" PRIu64 "-byte header", hn);
    if (strlen(copy) != hn) {
        free(copy);
        return vv_err(e, VISVM_ERR_FORMAT, "%s: header contains a NUL byte (invalid JSON)", fname);
    }
    sh->header = cJSON_ParseWithOpts(copy, &end, 1);
    if (!sh->header || !cJSON_IsObject(sh->header)) {
        size_t at = end ? (size_t)(end - copy) : 0;
        free(copy);
        return vv_err(e, VISVM_ERR_FORMAT, "%s: header is not valid JSON (error near byte %zu of %" PRIu64 ")", fname,
                      at, hn);
    }
    free(copy);
    const uint8_t *data = sh->base + 8 + hn;
    const uint64_t data_size = (uint64_t)(sh->size - 8 - hn);

    int64_t n = 0;
    cJSON *it;
    cJSON_ArrayForEach(it, sh->header) if (strcmp(it->string, "__metadata__") != 0) n++;
    int rc = grow_tensors(st, n, e);
    if (rc) return rc;
    st_range *ranges = malloc((size_t)(n > 0 ? n : 1) * sizeof(st_range));
    if (!ranges) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    int64_t k = 0;
    rc = VISVM_OK;
    cJSON_ArrayForEach(it, sh->header) {
        const char *name = it->string;
        if (!strcmp(name, "__metadata__")) {
            if (!cJSON_IsObject(it)) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s: __metadata__ is not an object", fname);
                break;
            }
            const cJSON *m;
            cJSON_ArrayForEach(m, it) if (!cJSON_IsString(m)) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s: __metadata__ value '%s' is not a string", fname, m->string);
                break;
            }
            if (rc) break;
            sh->meta = it;
            continue;
        }
        if (!cJSON_IsObject(it)) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: tensor '%s' entry is not an object", fname, name);
            break;
        }
        const cJSON *jd = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *js = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *jo = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        if (!cJSON_IsString(jd) || !cJSON_IsArray(js) || !cJSON_IsArray(jo)) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: tensor '%s' needs string dtype, array shape and array data_offsets",
                        fname, name);
            break;
        }
        vv_st_tensor *t = &st->t[st->n + k];
        memset(t, 0, sizeof(*t));
        t->dtype = vv_st_dtype_from_name(jd->valuestring);
        if (t->dtype < 0) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: tensor '%s' has unknown dtype '%s'", fname, name, jd->valuestring);
            break;
        }
        int nd = cJSON_GetArraySize(js);
        if (nd > VV_ST_MAX_DIMS) {
            rc = vv_err(e, VISVM_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions (max %d)", fname, name, nd,
                        VV_ST_MAX_DIMS);
            break;
        }
        t->n_dims = nd;
        size_t nel = 1;
        bool ok = true;
        int d = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, js) {
            uint64_t v;
            if (!json_uint(x, &v) || v > (uint64_t)INT64_MAX || !vv_mul_ok(nel, (size_t)v, &nel)) {
                ok = false;
                break;
            }
            t->shape[d++] = (int64_t)v;
        }
        size_t nbytes = 0;
        if (!ok || !vv_mul_ok(nel, g_sizes[t->dtype], &nbytes)) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: tensor '%s' has an invalid or overflowing shape", fname, name);
            break;
        }
        uint64_t b0, b1;
        if (cJSON_GetArraySize(jo) != 2 || !json_uint(cJSON_GetArrayItem(jo, 0), &b0) ||
            !json_uint(cJSON_GetArrayItem(jo, 1), &b1)) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: tensor '%s' data_offsets must be two non-negative integers", fname,
                        name);
            break;
        }
        if (b1 < b0) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] end before they begin",
                        fname, name, b0, b1);
            break;
        }
        if (b1 - b0 != (uint64_t)nbytes) {
            rc = vv_err(e, VISVM_ERR_FORMAT,
                        "%s: tensor '%s': shape x dtype size = %zu bytes (%s) but data_offsets [%" PRIu64 ", %" PRIu64
                        "] hold %" PRIu64 " bytes",
                        fname, name, nbytes, g_names[t->dtype], b0, b1, b1 - b0);
            break;
        }
        if (b1 > data_size) {
            rc = vv_err(e, VISVM_ERR_FORMAT,
                        "%s: tensor '%s' data_offsets [%" PRIu64 ", %" PRIu64 "] lie outside the %" PRIu64
                        "-byte data section (truncated file)",
                        fname, name, b0, b1, data_size);
            break;
        }
        if (!(t->name = vv_strdup(name))) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            break;
        }
        t->data = data + b0;
        t->nbytes = nbytes;
        t->shard = si;
        ranges[k] = (st_range){b0, b1, st->n + k};
        k++;
    }
    if (!rc) {
        // contiguity: no overlap, no gap, the whole data section covered
        qsort(ranges, (size_t)k, sizeof(st_range), cmp_range);
        uint64_t pos = 0;
        for (int64_t i = 0; i < k && !rc; i++) {
            const char *nm = st->t[ranges[i].idx].name;
            if (ranges[i].begin < pos)
                rc = vv_err(e, VISVM_ERR_FORMAT,
                            "%s: tensor '%s' bytes [%" PRIu64 ", %" PRIu64 ") overlap the previous tensor (ends at %" PRIu64 ")",
                            fname, nm, ranges[i].begin, ranges[i].end, pos);
            else if (ranges[i].begin > pos)
                rc = vv_err(e, VISVM_ERR_FORMAT,
                            "%s: bytes [%" PRIu64 ", %" PRIu64 ") before tensor '%s' are not covered by any tensor", fname,
                            pos, ranges[i].begin, nm);
            pos = ranges[i].end;
        }
        if (!rc && pos != data_size)
            rc = vv_err(e, VISVM_ERR_FORMAT,
                        "%s: tensors cover %" PRIu64 " bytes but the data section has %" PRIu64
                        " (trailing bytes not covered by any tensor)",
                        fname, pos, data_size);
    }
    // tensors parsed so far are owned by st (names freed at close)
    st->n += k;
    free(ranges);
    return rc;
}

// Copies misaligned tensors once; sets every view.
static int finish(vv_safetensors *st, vv_error *e) {
    qsort(st->t, (size_t)st->n, sizeof(vv_st_tensor), cmp_tensor);
    for (int64_t i = 1; i < st->n; i++)
        if (!strcmp(st->t[i].name, st->t[i - 1].name))
            return vv_err(e, VISVM_ERR_FORMAT, "tensor '%s' appears twice", st->t[i].name);
    for (int64_t i = 0; i < st->n; i++) {
        vv_st_tensor *t = &st->t[i];
        size_t es = g_sizes[t->dtype];
        if (t->nbytes && ((uintptr_t)t->data % es) != 0) {
            void **c = realloc(st->copies, (size_t)(st->n_copies + 1) * sizeof(void *));
            if (!c) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            st->copies = c;
            void *p = vv_aalloc(t->nbytes);
            if (!p) return vv_err(e, VISVM_ERR_NOMEM, "out of memory copying tensor '%s'", t->name);
            memcpy(p, t->data, t->nbytes);
            st->copies[st->n_copies++] = p;
            t->data = p;
        }
        set_view(t);
    }
    return VISVM_OK;
}

int vv_st_open_mem(const void *buf, size_t size, vv_safetensors **out, vv_error *e) {
    *out = NULL;
    vv_safetensors *st = calloc(1, sizeof(*st));
    if (!st || !(st->shards = calloc(1, sizeof(st_shard)))) {
        free(st);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    st->n_shards = 1;
    st->shards[0].base = buf;
    st->shards[0].size = size;
    int rc = parse_shard(st, 0, e);
    if (!rc) rc = finish(st, e);
    if (rc) {
        vv_st_close(st);
        return rc;
    }
    *out = st;
    return VISVM_OK;
}

static int open_shard_file(vv_safetensors *st, const char *path, vv_error *e) {
    st_shard *sh = realloc(st->shards, (size_t)(st->n_shards + 1) * sizeof(st_shard));
    if (!sh) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    st->shards = sh;
    st_shard *s = &st->shards[st->n_shards];
    memset(s, 0, sizeof(*s));
    st->n_shards++;
    if (!(s->path = vv_strdup(path))) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    int rc = vv_mmap_open(path, &s->map, e);
    if (rc) return rc;
    s->base = s->map.addr;
    s->size = s->map.size;
    return parse_shard(st, st->n_shards - 1, e);
}

static bool is_dir(const char *p) {
    struct stat s;
    return stat(p, &s) == 0 && S_ISDIR(s.st_mode);
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

// Sharded checkpoint from its index file.
static int open_index(vv_safetensors *st, const char *index_path, vv_error *e) {
    char *js = NULL;
    int rc = vv_read_file(index_path, &js, NULL, e);
    if (rc) return rc;
    cJSON *idx = cJSON_Parse(js);
    free(js);
    if (!cJSON_IsObject(idx)) {
        cJSON_Delete(idx);
        return vv_err(e, VISVM_ERR_FORMAT, "%s: not a valid JSON object", index_path);
    }
    const cJSON *wm = cJSON_GetObjectItemCaseSensitive(idx, "weight_map");
    if (!cJSON_IsObject(wm) || !wm->child) {
        cJSON_Delete(idx);
        return vv_err(e, VISVM_ERR_FORMAT, "%s: missing or empty \"weight_map\" object", index_path);
    }
    // directory of the index
    const char *slash = strrchr(index_path, '/');
    size_t dlen = slash ? (size_t)(slash - index_path + 1) : 0;
    // open each distinct shard in order of first appearance
    const cJSON *it;
    char **names = NULL;
    int n_names = 0;
    rc = VISVM_OK;
    cJSON_ArrayForEach(it, wm) {
        if (!cJSON_IsString(it)) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: weight_map value of '%s' is not a string", index_path, it->string);
            break;
        }
        const char *f = it->valuestring;
        if (!f[0] || strchr(f, '/') || !strcmp(f, "..") || !strcmp(f, ".")) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: shard name '%s' must be a plain file name", index_path, f);
            break;
        }
        bool seen = false;
        for (int i = 0; i < n_names && !seen; i++) seen = !strcmp(names[i], f);
        if (seen) continue;
        char **nn = realloc(names, (size_t)(n_names + 1) * sizeof(char *));
        if (!nn) {
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            break;
        }
        names = nn;
        names[n_names++] = (char *)f;
        vv_buf p = {0};
        if (vv_buf_append(&p, index_path, dlen) || vv_buf_append(&p, f, strlen(f))) {
            vv_buf_free(&p);
            rc = vv_err(e, VISVM_ERR_NOMEM, "out of memory");
            break;
        }
        rc = open_shard_file(st, p.v, e);
        vv_buf_free(&p);
        if (rc) break;
    }
    if (!rc) rc = finish(st, e);
    if (!rc) {
        // every listed tensor is in its shard; every shard tensor is listed
        int64_t n_listed = 0;
        cJSON_ArrayForEach(it, wm) {
            n_listed++;
            const vv_st_tensor *t = vv_st_find(st, it->string);
            const char *sh = t ? strrchr(st->shards[t->shard].path, '/') : NULL;
            sh = sh ? sh + 1 : (t ? st->shards[t->shard].path : NULL);
            if (!t) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s: tensor '%s' is listed in weight_map but absent from shard '%s'",
                            index_path, it->string, it->valuestring);
                break;
            }
            if (strcmp(sh, it->valuestring) != 0) {
                rc = vv_err(e, VISVM_ERR_FORMAT, "%s: tensor '%s' is listed in shard '%s' but found in '%s'", index_path,
                            it->string, it->valuestring, sh);
                break;
            }
        }
        if (!rc && n_listed != st->n)
            rc = vv_err(e, VISVM_ERR_FORMAT, "%s: the shards hold %" PRId64 " tensors but weight_map lists %" PRId64,
                        index_path, st->n, n_listed);
        const cJSON *md = cJSON_GetObjectItemCaseSensitive(idx, "metadata");
        const cJSON *ts = md ? cJSON_GetObjectItemCaseSensitive(md, "total_size") : NULL;
        uint64_t total;
        if (!rc && ts && json_uint(ts, &total) && total != (uint64_t)vv_st_total_bytes(st))
            vv_log(1, "%s: metadata.total_size %" PRIu64 " differs from the %zu tensor bytes", index_path, total,
                   vv_st_total_bytes(st));
    }
    free(names);
    cJSON_Delete(idx);
    return rc;
}

int vv_st_open(const char *path, vv_safetensors **out, vv_error *e) {
    *out = NULL;
    vv_safetensors *st = calloc(1, sizeof(*st));
    if (!st) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    int rc;
    vv_buf p = {0};
    if (is_dir(path)) {
        if ((rc = vv_buf_printf(&p, "%s/model.safetensors.index.json", path))) goto done;
        if (vv_file_exists(p.v)) {
            rc = open_index(st, p.v, e);
        } else {
            p.n = 0;
            if ((rc = vv_buf_printf(&p, "%s/model.safetensors", path))) goto done;
            if (!vv_file_exists(p.v)) {
                rc = vv_err(e, VISVM_ERR_NOT_FOUND,
                            "%s: no model.safetensors.index.json or model.safetensors in this directory", path);
                goto done;
            }
            if (!(rc = open_shard_file(st, p.v, e))) rc = finish(st, e);
        }
    } else if (ends_with(path, ".json")) {
        rc = open_index(st, path, e);
    } else {
        if (!(rc = open_shard_file(st, path, e))) rc = finish(st, e);
    }
done:
    vv_buf_free(&p);
    if (rc) {
        vv_st_close(st);
        return rc == VISVM_ERR_NOMEM && (!e || !e->msg[0]) ? vv_err(e, rc, "out of memory") : rc;
    }
    *out = st;
    return VISVM_OK;
}

int64_t vv_st_n_tensors(const vv_safetensors *st) { return st ? st->n : 0; }
int vv_st_n_shards(const vv_safetensors *st) { return st ? st->n_shards : 0; }

const vv_st_tensor *vv_st_tensor_at(const vv_safetensors *st, int64_t i) {
    return st && i >= 0 && i < st->n ? &st->t[i] : NULL;
}

const vv_st_tensor *vv_st_find(const vv_safetensors *st, const char *name) {
    if (!st || !name) return NULL;
    int64_t lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int64_t mid = (lo + hi) / 2;
        int c = strcmp(st->t[mid].name, name);
        if (!c) return &st->t[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

const char *vv_st_metadata(const vv_safetensors *st, const char *key) {
    if (!st) return NULL;
    for (int i = 0; i < st->n_shards; i++) {
        const cJSON *v = st->shards[i].meta ? cJSON_GetObjectItemCaseSensitive(st->shards[i].meta, key) : NULL;
        if (cJSON_IsString(v)) return v->valuestring;
    }
    return NULL;
}

size_t vv_st_total_bytes(const vv_safetensors *st) {
    size_t s = 0;
    for (int64_t i = 0; st && i < st->n; i++) s += st->t[i].nbytes;
    return s;
}

int64_t vv_st_nelements(const vv_st_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->n_dims; i++) n *= t->shape[i];
    return n;
}

int vv_st_to_f32(const vv_st_tensor *t, float *out, int64_t n, vv_error *e) {
    if (n != vv_st_nelements(t))
        return vv_err(e, VISVM_ERR_INVALID, "tensor '%s' has %" PRId64 " elements, not %" PRId64, t->name,
                      vv_st_nelements(t), n);
    const uint8_t *p = t->data;
    for (int64_t i = 0; i < n; i++) {
        switch (t->dtype) {
        case VV_ST_F32: { float v; memcpy(&v, p + 4 * i, 4); out[i] = v; break; }
        case VV_ST_F64: { double v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
        case VV_ST_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = vv_fp16_to_fp32(v); break; }
        case VV_ST_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = vv_bf16_to_fp32(v); break; }
        case VV_ST_BOOL: case VV_ST_U8: out[i] = (float)p[i]; break;
        case VV_ST_I8: out[i] = (float)(int8_t)p[i]; break;
        case VV_ST_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); out[i] = (float)v; break; }
        case VV_ST_U16: { uint16_t v; memcpy(&v, p + 2 * i, 2); out[i] = (float)v; break; }
        case VV_ST_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); out[i] = (float)v; break; }
        case VV_ST_U32: { uint32_t v; memcpy(&v, p + 4 * i, 4); out[i] = (float)v; break; }
        case VV_ST_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
        case VV_ST_U64: { uint64_t v; memcpy(&v, p + 8 * i, 8); out[i] = (float)v; break; }
        default:
            return vv_err(e, VISVM_ERR_UNSUPPORTED, "tensor '%s': dtype %s cannot be converted to f32", t->name,
                          vv_st_dtype_name(t->dtype));
        }
    }
    return VISVM_OK;
}

// ---------------------------------------------------------------------------
// writer

static int build_header(const vv_st_wtensor *ts, int n, vv_buf *h, size_t *data_size, vv_error *e) {
    size_t off = 0;
    if (vv_buf_printf(h, "{\"__metadata__\":{\"format\":\"pt\"}")) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        const vv_st_wtensor *t = &ts[i];
        size_t es = vv_st_dtype_size(t->dtype), nel = 1, nb;
        if (!t->name || !t->name[0] || !es || t->n_dims < 0 || t->n_dims > VV_ST_MAX_DIMS || strchr(t->name, '"') ||
            strchr(t->name, '\\'))
            return vv_err(e, VISVM_ERR_INVALID, "tensor %d: bad name, dtype or rank", i);
        for (int d = 0; d < t->n_dims; d++)
            if (t->shape[d] < 0 || !vv_mul_ok(nel, (size_t)t->shape[d], &nel))
                return vv_err(e, VISVM_ERR_INVALID, "tensor '%s': bad shape", t->name);
        if (!vv_mul_ok(nel, es, &nb)) return vv_err(e, VISVM_ERR_INVALID, "tensor '%s': size overflows", t->name);
        int rc = vv_buf_printf(h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name, vv_st_dtype_name(t->dtype));
        for (int d = 0; d < t->n_dims && !rc; d++) rc = vv_buf_printf(h, "%s%" PRId64, d ? "," : "", t->shape[d]);
        if (!rc) rc = vv_buf_printf(h, "],\"data_offsets\":[%zu,%zu]}", off, off + nb);
        if (rc) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
        off += nb;
    }
    if (vv_buf_append(h, "}", 1)) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    while (h->n % 8)
        if (vv_buf_append(h, " ", 1)) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    *data_size = off;
    return VISVM_OK;
}

static size_t wt_bytes(const vv_st_wtensor *t) {
    size_t nb = vv_st_dtype_size(t->dtype);
    for (int d = 0; d < t->n_dims; d++) nb *= (size_t)t->shape[d];
    return nb;
}

int vv_st_write_mem(const vv_st_wtensor *ts, int n, void **out, size_t *size, vv_error *e) {
    *out = NULL;
    *size = 0;
    vv_buf h = {0};
    size_t ds = 0;
    int rc = build_header(ts, n, &h, &ds, e);
    if (rc) {
        vv_buf_free(&h);
        return rc;
    }
    size_t total = 8 + h.n + ds;
    uint8_t *buf = malloc(total ? total : 1);
    if (!buf) {
        vv_buf_free(&h);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    uint64_t hn = h.n;
    memcpy(buf, &hn, 8);
    memcpy(buf + 8, h.v, h.n);
    size_t off = 8 + h.n;
    for (int i = 0; i < n; i++) {
        size_t nb = wt_bytes(&ts[i]);
        if (nb) memcpy(buf + off, ts[i].data, nb);
        off += nb;
    }
    vv_buf_free(&h);
    *out = buf;
    *size = total;
    return VISVM_OK;
}

int vv_st_write_file(const char *path, const vv_st_wtensor *ts, int n, vv_error *e) {
    vv_buf h = {0};
    size_t ds = 0;
    int rc = build_header(ts, n, &h, &ds, e);
    if (rc) {
        vv_buf_free(&h);
        return rc;
    }
    vv_atomic_file f;
    if ((rc = vv_atomic_open(&f, path, e))) {
        vv_buf_free(&h);
        return rc;
    }
    uint64_t hn = h.n;
    rc = vv_atomic_write(&f, &hn, 8, e);
    if (!rc) rc = vv_atomic_write(&f, h.v, h.n, e);
    for (int i = 0; i < n && !rc; i++) {
        size_t nb = wt_bytes(&ts[i]);
        if (nb) rc = vv_atomic_write(&f, ts[i].data, nb, e);
    }
    vv_buf_free(&h);
    if (rc) {
        vv_atomic_abort(&f);
        return rc;
    }
    return vv_atomic_commit(&f, e);
}
