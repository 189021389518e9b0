// gguf.c - GGUF v2/v3 reader and writer.
//
// Reader: the file is mmap'd (or a caller's memory image is used) and parsed
// once at open with a bounds check before every read; counts are checked
// against the bytes left before anything is allocated. Scalars and numeric
// arrays stay in the image (read with memcpy: they may be unaligned); strings
// and string arrays are copied NUL-terminated so that element i of a 32000-
// token vocabulary is an O(1) pointer lookup. Keys and tensor names are found
// through open-addressing hash tables.
//
// Writer: values are serialised into byte blobs at set time; the file is the
// header (built in memory) followed by each tensor's data padded to the
// alignment, written through vv_atomic_* (temp file + rename).
#include "gguf.h"

#include "../base/threadpool.h"
#include "../tensor/matmul.h"

#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "gguf.c assumes a little-endian host (GGUF files are little-endian)"
#endif

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_STRING ((uint64_t)1 << 30) // 1 GiB, as ggml
#define GGUF_MAX_ARRAY ((uint64_t)1 << 30)  // elements, as ggml
#define GGUF_MAX_NAME 64                    // tensor names < 64 bytes (GGML_MAX_NAME)
#define GGUF_MAX_DIMS 4
// Smallest possible encodings, used to bound counts by the bytes left:
// kv = u64 key len + 1 key byte + u32 type + 1-byte value;
// tensor info = u64 name len + 1 byte + u32 n_dims + 1 x u64 dim + u32 type + u64 offset.
#define GGUF_MIN_KV 14
#define GGUF_MIN_TINFO 33

static const char *const g_type_names[VV_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
// Bytes of a scalar value; 0 for STRING/ARRAY (variable size).
static const size_t g_type_size[VV_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *vv_gguf_type_name(int type) {
    return type >= 0 && type < VV_GGUF_TYPE_COUNT ? g_type_names[type] : "?";
}

static bool is_int_type(int t) {
    return (t >= VV_GGUF_UINT8 && t <= VV_GGUF_INT32) || t == VV_GGUF_BOOL || t == VV_GGUF_UINT64 ||
           t == VV_GGUF_INT64;
}

static size_t pad_to(size_t x, size_t a) { return x + (a - x % a) % a; }

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

// Reads an integer or bool scalar of GGUF type t at p. u64 values above
// INT64_MAX set *big (the value is then meaningless). False if t is no integer.
static bool read_int(int t, const uint8_t *p, int64_t *v, bool *big) {
    *big = false;
    switch (t) {
    case VV_GGUF_UINT8: case VV_GGUF_BOOL: *v = p[0]; return true;
    case VV_GGUF_INT8: *v = (int8_t)p[0]; return true;
    case VV_GGUF_UINT16: { uint16_t x; memcpy(&x, p, 2); *v = x; return true; }
    case VV_GGUF_INT16: { int16_t x; memcpy(&x, p, 2); *v = x; return true; }
    case VV_GGUF_UINT32: { uint32_t x; memcpy(&x, p, 4); *v = x; return true; }
    case VV_GGUF_INT32: { int32_t x; memcpy(&x, p, 4); *v = x; return true; }
    case VV_GGUF_UINT64: {
        uint64_t x;
        memcpy(&x, p, 8);
        *big = x > (uint64_t)INT64_MAX;
        *v = (int64_t)(x & (uint64_t)INT64_MAX);
        return true;
    }
    case VV_GGUF_INT64: memcpy(v, p, 8); return true;
    default: return false;
    }
}

// Reads a numeric scalar (float or integer) as double. False for other types.
static bool read_num(int t, const uint8_t *p, double *v) {
    if (t == VV_GGUF_FLOAT32) { float f; memcpy(&f, p, 4); *v = f; return true; }
    if (t == VV_GGUF_FLOAT64) { memcpy(v, p, 8); return true; }
    if (t == VV_GGUF_UINT64) { uint64_t x; memcpy(&x, p, 8); *v = (double)x; return true; }
    int64_t i;
    bool big;
    if (!read_int(t, p, &i, &big)) return false;
    *v = (double)i;
    return true;
}

// ===========================================================================
// Reader

typedef struct gg_kv {
    char *key;          // NUL-terminated copy
    int type;           // VV_GGUF_*
    int arr_type;       // element type if ARRAY, else -1
    uint64_t n;         // element count if ARRAY
    const uint8_t *val; // scalar value / first numeric array element, in the image
    char *str;          // STRING value copy (NUL-terminated)
    size_t slen;
    char **strs;        // STRING array: element copies (one allocation with lens and bytes)
    size_t *lens;
} gg_kv;

struct vv_gguf {
    vv_mmap map; // file mapping (empty for memory images)
    const uint8_t *base;
    size_t size;
    char *path;
    uint32_t version;
    size_t alignment;
    size_t data_offset;
    int64_t n_kv;
    gg_kv *kv;
    int32_t *kv_hash; // open addressing, -1 = empty; capacity kv_hcap (power of two)
    size_t kv_hcap;
    int64_t n_tensors;
    vv_tensor *tensors;
    size_t *offsets; // within the data section
    size_t *nbytes;
    char (*names)[GGUF_MAX_NAME];
    int32_t *t_hash;
    size_t t_hcap;
    uint8_t *arena;      // repacked matrices of vv_gguf_repack_tensors (one huge-page buffer)
    size_t arena_size;
};

// Bounds-checked cursor over the image.
typedef struct rd {
    const uint8_t *p;
    size_t size, pos;
    vv_error *e;
} rd;

static int rd_need(rd *r, uint64_t n, const char *what) {
    if (n > r->size - r->pos)
        return vv_err(r->e, VISVM_ERR_FORMAT,
                      "file truncated: %s needs %" PRIu64 " bytes at offset %zu but only %zu remain", what, n,
                      r->pos, r->size - r->pos);
    return VISVM_OK;
}

static int rd_u32(rd *r, uint32_t *v, const char *what) {
    int rc = rd_need(r, 4, what);
    if (rc) return rc;
    memcpy(v, r->p + r->pos, 4);
    r->pos += 4;
    return VISVM_OK;
}

static int rd_u64(rd *r, uint64_t *v, const char *what) {
    int rc = rd_need(r, 8, what);
    if (rc) return rc;
    memcpy(v, r->p + r->pos, 8);
    r->pos += 8;
    return VISVM_OK;
}

// A GGUF string: u64 length (<= 1 GiB, within the file) + bytes; *s points into the image.
static int rd_str(rd *r, const uint8_t **s, uint64_t *len, const char *what) {
    int rc = rd_u64(r, len, what);
    if (rc) return rc;
    if (*len > GGUF_MAX_STRING)
        return vv_err(r->e, VISVM_ERR_FORMAT, "%s: string length %" PRIu64 " is too large (max 1 GiB)", what,
                      *len);
    rc = rd_need(r, *len, what);
    if (rc) return rc;
    *s = r->p + r->pos;
    r->pos += (size_t)*len;
    return VISVM_OK;
}

typedef const char *(*name_fn)(const vv_gguf *g, int32_t i);
static const char *kv_name(const vv_gguf *g, int32_t i) { return g->kv[i].key; }
static const char *t_name(const vv_gguf *g, int32_t i) { return g->names[i]; }

// Finds name in a hash table; returns its index or -1.
static int64_t hash_find(const vv_gguf *g, const int32_t *tab, size_t cap, name_fn nm, const char *name) {
    if (!tab || !name) return -1;
    for (size_t h = (size_t)fnv1a(name) & (cap - 1);; h = (h + 1) & (cap - 1)) {
        if (tab[h] < 0) return -1;
        if (strcmp(nm(g, tab[h]), name) == 0) return tab[h];
    }
}

// Builds a hash table over n names; on a duplicate returns its two indices.
static int hash_build(const vv_gguf *g, int64_t n, name_fn nm, int32_t **tab_out, size_t *cap_out, int64_t *dup_a,
                      int64_t *dup_b) {
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    int32_t *tab = malloc(cap * sizeof(int32_t));
    if (!tab) return VISVM_ERR_NOMEM;
    memset(tab, 0xff, cap * sizeof(int32_t));
    *dup_a = *dup_b = -1;
    for (int64_t i = 0; i < n; i++) {
        const char *name = nm(g, (int32_t)i);
        size_t h = (size_t)fnv1a(name) & (cap - 1);
        for (; tab[h] >= 0; h = (h + 1) & (cap - 1)) {
            if (strcmp(nm(g, tab[h]), name) == 0) {
                *dup_a = tab[h];
                *dup_b = i;
                free(tab);
                return VISVM_ERR_FORMAT;
            }
        }
        tab[h] = (int32_t)i;
    }
    *tab_out = tab;
    *cap_out = cap;
    return VISVM_OK;
}

// Grows the array whose pointer lives at arrp (any element type; the pointer
// is moved with memcpy to stay clear of strict aliasing) to >= need items.
static int grow_arr(void *arrp, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return VISVM_OK;
    size_t nc = *cap ? *cap * 2 : 64;
    if (nc < need) nc = need;
    if (nc > SIZE_MAX / elem) return VISVM_ERR_NOMEM;
    void *old;
    memcpy(&old, arrp, sizeof(old));
    void *nv = realloc(old, nc * elem);
    if (!nv) return VISVM_ERR_NOMEM;
    memset((char *)nv + *cap * elem, 0, (nc - *cap) * elem);
    memcpy(arrp, &nv, sizeof(nv));
    *cap = nc;
    return VISVM_OK;
}

// Parses a STRING array of n elements at the cursor into kv->strs/lens.
static int parse_str_array(rd *r, gg_kv *kv) {
    uint64_t n = kv->n;
    // each element needs at least its u64 length
    if (n > (r->size - r->pos) / 8)
        return vv_err(r->e, VISVM_ERR_FORMAT,
                      "file truncated: string array of %" PRIu64 " elements cannot fit in the %zu bytes left", n, r->size - r->pos);
    // pass 1: validate and size
    size_t start = r->pos, total = 0;
    for (uint64_t i = 0; i < n; i++) {
        const uint8_t *s;
        uint64_t len;
        int rc = rd_str(r, &s, &len, "string array element");
        if (rc) return vv_err_prefix(r->e, rc, "element %" PRIu64, i);
        total += (size_t)len; // <= file size: cannot overflow
    }
    // pass 2: copy into one block [ptrs n][lens n][bytes total + n NULs]
    size_t sz = 0;
    if (!vv_mul_ok((size_t)n, sizeof(char *) + sizeof(size_t), &sz) || !vv_add_ok(sz, total, &sz) ||
        !vv_add_ok(sz, (size_t)n + 1, &sz))
        return vv_err(r->e, VISVM_ERR_NOMEM, "string array too large");
    char *blk = malloc(sz);
    if (!blk) return vv_err(r->e, VISVM_ERR_NOMEM, "out of memory for a %" PRIu64 "-string array", n);
    kv->strs = (char **)blk;
    kv->lens = (size_t *)(blk + n * sizeof(char *));
    char *dst = blk + n * (sizeof(char *) + sizeof(size_t));
    r->pos = start;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len;
        memcpy(&len, r->p + r->pos, 8);
        memcpy(dst, r->p + r->pos + 8, (size_t)len);
        dst[len] = 0;
        kv->strs[i] = dst;
        kv->lens[i] = (size_t)len;
        dst += len + 1;
        r->pos += 8 + (size_t)len;
    }
    return VISVM_OK;
}

// Parses the value of kv (type already read) at the cursor.
static int parse_value(rd *r, gg_kv *kv) {
    int rc;
    if (kv->type == VV_GGUF_STRING) {
        const uint8_t *s;
        uint64_t len;
        if ((rc = rd_str(r, &s, &len, "string value"))) return rc;
        kv->str = vv_strndup((const char *)s, (size_t)len);
        if (!kv->str) return vv_err(r->e, VISVM_ERR_NOMEM, "out of memory");
        kv->slen = (size_t)len;
        return VISVM_OK;
    }
    if (kv->type == VV_GGUF_ARRAY) {
        uint32_t at;
        if ((rc = rd_u32(r, &at, "array element type"))) return rc;
        if (at == VV_GGUF_ARRAY) return vv_err(r->e, VISVM_ERR_FORMAT, "nested arrays are not supported");
        if (at >= VV_GGUF_TYPE_COUNT)
            return vv_err(r->e, VISVM_ERR_FORMAT, "unknown array element type %" PRIu32, at);
        kv->arr_type = (int)at;
        if ((rc = rd_u64(r, &kv->n, "array length"))) return rc;
        if (kv->n > GGUF_MAX_ARRAY)
            return vv_err(r->e, VISVM_ERR_FORMAT, "array length %" PRIu64 " exceeds the limit of 2^30 elements",
                          kv->n);
        if (at == VV_GGUF_STRING) return parse_str_array(r, kv);
        size_t es = g_type_size[at];
        if (kv->n > (r->size - r->pos) / es)
            return vv_err(r->e, VISVM_ERR_FORMAT,
                          "file truncated: array of %" PRIu64 " x %s needs %" PRIu64 " bytes but only %zu remain",
                          kv->n, g_type_names[at], kv->n * es, r->size - r->pos);
        kv->val = r->p + r->pos;
        if (at == VV_GGUF_BOOL)
            for (uint64_t i = 0; i < kv->n; i++)
                if (kv->val[i] > 1)
                    return vv_err(r->e, VISVM_ERR_FORMAT, "bool array element %" PRIu64 " has invalid value %u", i,
                                  kv->val[i]);
        r->pos += (size_t)kv->n * es;
        return VISVM_OK;
    }
    size_t es = g_type_size[kv->type];
    if ((rc = rd_need(r, es, "value"))) return rc;
    kv->val = r->p + r->pos;
    if (kv->type == VV_GGUF_BOOL && kv->val[0] > 1)
        return vv_err(r->e, VISVM_ERR_FORMAT, "invalid bool value %u (must be 0 or 1)", kv->val[0]);
    r->pos += es;
    return VISVM_OK;
}

static int parse_kvs(vv_gguf *g, rd *r, uint64_t n_kv) {
    size_t cap = 0;
    for (uint64_t i = 0; i < n_kv; i++) {
        if (grow_arr(&g->kv, &cap, (size_t)i + 1, sizeof(gg_kv)))
            return vv_err(r->e, VISVM_ERR_NOMEM, "out of memory for %" PRIu64 " keys", n_kv);
        gg_kv *kv = &g->kv[i];
        kv->arr_type = -1;
        g->n_kv = (int64_t)i + 1; // so that close() frees this entry's copies
        const uint8_t *k;
        uint64_t klen;
        int rc = rd_str(r, &k, &klen, "key");
        if (rc) return vv_err_prefix(r->e, rc, "key #%" PRIu64, i);
        if (klen == 0) return vv_err(r->e, VISVM_ERR_FORMAT, "key #%" PRIu64 " is empty", i);
        if (memchr(k, 0, (size_t)klen))
            return vv_err(r->e, VISVM_ERR_FORMAT, "key #%" PRIu64 " contains a NUL byte", i);
        kv->key = vv_strndup((const char *)k, (size_t)klen);
        if (!kv->key) return vv_err(r->e, VISVM_ERR_NOMEM, "out of memory");
        uint32_t t;
        if ((rc = rd_u32(r, &t, "value type"))) return vv_err_prefix(r->e, rc, "key '%s'", kv->key);
        if (t >= VV_GGUF_TYPE_COUNT)
            return vv_err(r->e, VISVM_ERR_FORMAT, "key '%s' has unknown value type %" PRIu32, kv->key, t);
        kv->type = (int)t;
        if ((rc = parse_value(r, kv))) return vv_err_prefix(r->e, rc, "key '%s'", kv->key);
    }
    return VISVM_OK;
}

typedef struct { size_t off; int64_t i; } off_idx;
static int cmp_off(const void *a, const void *b) {
    const off_idx *x = a, *y = b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

static int parse_tensors(vv_gguf *g, rd *r, uint64_t n_t) {
    size_t cap_t = 0, cap_o = 0, cap_b = 0, cap_n = 0;
    for (uint64_t i = 0; i < n_t; i++) {
        size_t need = (size_t)i + 1;
        if (grow_arr(&g->tensors, &cap_t, need, sizeof(vv_tensor)) ||
            grow_arr(&g->offsets, &cap_o, need, sizeof(size_t)) ||
            grow_arr(&g->nbytes, &cap_b, need, sizeof(size_t)) ||
            grow_arr(&g->names, &cap_n, need, GGUF_MAX_NAME))
            return vv_err(r->e, VISVM_ERR_NOMEM, "out of memory for %" PRIu64 " tensors", n_t);
        const uint8_t *s;
        uint64_t len;
        int rc = rd_str(r, &s, &len, "tensor name");
        if (rc) return vv_err_prefix(r->e, rc, "tensor #%" PRIu64, i);
        if (len == 0) return vv_err(r->e, VISVM_ERR_FORMAT, "tensor #%" PRIu64 " has an empty name", i);
        if (len >= GGUF_MAX_NAME)
            return vv_err(r->e, VISVM_ERR_FORMAT, "tensor #%" PRIu64 " name '%.40s...' is too long (%" PRIu64
                          " bytes, max %d)", i, (const char *)s, len, GGUF_MAX_NAME - 1);
        if (memchr(s, 0, (size_t)len))
            return vv_err(r->e, VISVM_ERR_FORMAT, "tensor #%" PRIu64 " name contains a NUL byte", i);
        char *name = g->names[i];
        memcpy(name, s, (size_t)len);
        name[len] = 0;

        uint32_t n_dims;
        if ((rc = rd_u32(r, &n_dims, "n_dims"))) return vv_err_prefix(r->e, rc, "tensor '%s'", name);
        if (n_dims < 1 || n_dims > GGUF_MAX_DIMS)
            return vv_err(r->e, VISVM_ERR_FORMAT, "tensor '%s' has n_dims %" PRIu32 " (must be 1..%d)", name, n_dims,
                          GGUF_MAX_DIMS);
        int64_t ne[4] = {1, 1, 1, 1};
        for (uint32_t d = 0; d < n_dims; d++) {
            uint64_t v;
            if ((rc = rd_u64(r, &v, "dimension"))) return vv_err_prefix(r->e, rc, "tensor '%s'", name);
            if (v > (uint64_t)INT64_MAX)
                return vv_err(r->e, VISVM_ERR_FORMAT, "tensor '%s' dimension %" PRIu32 " is negative (%" PRId64 ")",
                              name, d, (int64_t)v);
            ne[d] = (int64_t)v;
        }
        int64_t nel = 1;
        for (int d = 0; d < 4; d++)
            if (__builtin_mul_overflow(nel, ne[d], &nel))
                return vv_err(r->e, VISVM_ERR_FORMAT,
                              "tensor '%s' element count overflows (ne = [%" PRId64 ", %" PRId64 ", %" PRId64
                              ", %" PRId64 "])", name, ne[0], ne[1], ne[2], ne[3]);
        uint32_t type;
        if ((rc = rd_u32(r, &type, "type"))) return vv_err_prefix(r->e, rc, "tensor '%s'", name);
        const vv_type_info *ti = vv_type_get((int)type);
        if (type > INT32_MAX || !ti)
            return vv_err(r->e, VISVM_ERR_FORMAT, "tensor '%s' has unknown tensor type id %" PRIu32, name, type);
        if (ne[0] % ti->blck != 0)
            return vv_err(r->e, VISVM_ERR_FORMAT,
                          "tensor '%s': ne[0] = %" PRId64 " is not a multiple of the block size %d of type %s", name,
                          ne[0], ti->blck, ti->name);
        size_t nb = (size_t)(ne[0] / ti->blck);
        bool ok = vv_mul_ok(nb, ti->type_size, &nb);
        for (int d = 1; d < 4 && ok; d++) ok = vv_mul_ok(nb, (size_t)ne[d], &nb);
        if (!ok) return vv_err(r->e, VISVM_ERR_FORMAT, "tensor '%s' byte size overflows", name);
        uint64_t off;
        if ((rc = rd_u64(r, &off, "offset"))) return vv_err_prefix(r->e, rc, "tensor '%s'", name);
        if (off % g->alignment != 0)
            return vv_err(r->e, VISVM_ERR_FORMAT, "tensor '%s' offset %" PRIu64 " is not a multiple of the alignment %zu",
                          name, off, g->alignment);
        vv_tensor *t = &g->tensors[i];
        t->name = name;
        t->type = (int)type;
        t->n_dims = (int)n_dims;
        memcpy(t->ne, ne, sizeof(ne));
        vv_tensor_set_strides(t);
        g->offsets[i] = off > SIZE_MAX ? SIZE_MAX : (size_t)off;
        g->nbytes[i] = nb;
        g->n_tensors = (int64_t)i + 1;
    }
    // names[] may have moved while it grew: point every tensor at its final copy
    for (int64_t i = 0; i < g->n_tensors; i++) g->tensors[i].name = g->names[i];
    return VISVM_OK;
}

// Checks data bounds and overlaps, and sets the data pointers.
static int place_tensors(vv_gguf *g, vv_error *e) {
    int64_t n = g->n_tensors;
    if (n == 0) return VISVM_OK;
    if (g->data_offset > g->size)
        return vv_err(e, VISVM_ERR_FORMAT, "file truncated: tensor data section starts at %zu but the file has %zu bytes",
                      g->data_offset, g->size);
    size_t avail = g->size - g->data_offset;
    for (int64_t i = 0; i < n; i++) {
        if (g->offsets[i] > avail || g->nbytes[i] > avail - g->offsets[i])
            return vv_err(e, VISVM_ERR_FORMAT,
                          "tensor '%s' data [%zu, +%zu) at offset %zu extends beyond the end of the file "
                          "(data section starts at %zu, file size %zu)",
                          g->names[i], g->offsets[i], g->nbytes[i], g->offsets[i], g->data_offset, g->size);
        g->tensors[i].data = (void *)(g->base + g->data_offset + g->offsets[i]);
    }
    // overlap check: sort by offset; zero-sized tensors own no bytes
    off_idx *s = malloc((size_t)n * sizeof(off_idx));
    if (!s) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    size_t m = 0;
    for (int64_t i = 0; i < n; i++)
        if (g->nbytes[i] > 0) s[m++] = (off_idx){g->offsets[i], i};
    qsort(s, m, sizeof(off_idx), cmp_off);
    int rc = VISVM_OK;
    for (size_t k = 1; k < m; k++) {
        int64_t a = s[k - 1].i, b = s[k].i;
        if (g->offsets[b] < g->offsets[a] + g->nbytes[a]) {
            rc = vv_err(e, VISVM_ERR_FORMAT, "tensors '%s' [%zu, %zu) and '%s' [%zu, %zu) overlap", g->names[a],
                        g->offsets[a], g->offsets[a] + g->nbytes[a], g->names[b], g->offsets[b],
                        g->offsets[b] + g->nbytes[b]);
            break;
        }
    }
    free(s);
    return rc;
}

static int parse(vv_gguf *g, vv_error *e) {
    rd r = {g->base, g->size, 0, e};
    int rc;
    if (g->size == 0) return vv_err(e, VISVM_ERR_FORMAT, "empty file (not a GGUF file)");
    if (g->size < 4 || memcmp(g->base, GGUF_MAGIC, 4) != 0) {
        uint8_t m[4] = {0};
        memcpy(m, g->base, VV_MIN(g->size, 4));
        return vv_err(e, VISVM_ERR_FORMAT, "bad magic: not a GGUF file (first bytes %02x %02x %02x %02x, expected 'GGUF')",
                      m[0], m[1], m[2], m[3]);
    }
    r.pos = 4;
    uint32_t ver;
    if ((rc = rd_u32(&r, &ver, "version"))) return rc;
    if (ver == 0) return vv_err(e, VISVM_ERR_FORMAT, "invalid GGUF version 0");
    if ((ver & 0xffffu) == 0)
        return vv_err(e, VISVM_ERR_FORMAT,
                      "GGUF version 0x%08" PRIx32 " is implausible: wrong endianness (big-endian file?)", ver);
    if (ver == 1) return vv_err(e, VISVM_ERR_FORMAT, "GGUFv1 is no longer supported");
    if (ver > 3)
        return vv_err(e, VISVM_ERR_UNSUPPORTED, "unsupported GGUF version %" PRIu32 " (this reader supports 2 and 3)",
                      ver);
    g->version = ver;
    uint64_t n_t, n_kv;
    if ((rc = rd_u64(&r, &n_t, "tensor count"))) return rc;
    if ((rc = rd_u64(&r, &n_kv, "kv count"))) return rc;
    size_t left = r.size - r.pos;
    if (n_t > left / GGUF_MIN_TINFO || n_t > INT32_MAX)
        return vv_err(e, VISVM_ERR_FORMAT, "tensor count %" PRIu64 " is too large for a %zu-byte file", n_t, g->size);
    left -= (size_t)n_t * GGUF_MIN_TINFO;
    if (n_kv > left / GGUF_MIN_KV || n_kv > INT32_MAX)
        return vv_err(e, VISVM_ERR_FORMAT, "kv count %" PRIu64 " is too large for a %zu-byte file", n_kv, g->size);

    if ((rc = parse_kvs(g, &r, n_kv))) return rc;
    int64_t da, db;
    rc = hash_build(g, g->n_kv, kv_name, &g->kv_hash, &g->kv_hcap, &da, &db);
    if (rc == VISVM_ERR_NOMEM) return vv_err(e, rc, "out of memory");
    if (rc) return vv_err(e, rc, "duplicate key '%s' (entries #%" PRId64 " and #%" PRId64 ")", g->kv[db].key, da, db);

    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    int64_t ai = vv_gguf_find_key(g, "general.alignment");
    if (ai >= 0) {
        const gg_kv *kv = &g->kv[ai];
        if (kv->type != VV_GGUF_UINT32)
            return vv_err(e, VISVM_ERR_FORMAT, "key 'general.alignment' has type %s, expected u32",
                          vv_gguf_type_name(kv->type));
        uint32_t a;
        memcpy(&a, kv->val, 4);
        if (a == 0 || (a & (a - 1)) != 0)
            return vv_err(e, VISVM_ERR_FORMAT, "key 'general.alignment' = %" PRIu32 " is not a nonzero power of two", a);
        g->alignment = a;
    }

    if ((rc = parse_tensors(g, &r, n_t))) return rc;
    rc = hash_build(g, g->n_tensors, t_name, &g->t_hash, &g->t_hcap, &da, &db);
    if (rc == VISVM_ERR_NOMEM) return vv_err(e, rc, "out of memory");
    if (rc) return vv_err(e, rc, "duplicate tensor name '%s' (tensors #%" PRId64 " and #%" PRId64 ")", g->names[db], da, db);
    g->data_offset = pad_to(r.pos, g->alignment);
    return place_tensors(g, e);
}

static int open_common(vv_gguf *g, vv_gguf **out, vv_error *e) {
    int rc = parse(g, e);
    if (rc) {
        if (g->path && g->path[0]) vv_err_prefix(e, rc, "%s", g->path);
        vv_gguf_close(g);
        return rc;
    }
    *out = g;
    return VISVM_OK;
}

int vv_gguf_open(const char *path, vv_gguf **out, vv_error *e) {
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vv_gguf_open: out is NULL");
    *out = NULL;
    if (!path) return vv_err(e, VISVM_ERR_INVALID, "vv_gguf_open: path is NULL");
    vv_gguf *g = calloc(1, sizeof(*g));
    if (!g) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    g->path = vv_strdup(path);
    if (!g->path) {
        free(g);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    int rc = vv_mmap_open(path, &g->map, e);
    if (rc) {
        vv_gguf_close(g);
        return rc;
    }
    g->base = g->map.addr;
    g->size = g->map.size;
    return open_common(g, out, e);
}

int vv_gguf_open_mem(const void *buf, size_t size, vv_gguf **out, vv_error *e) {
    if (!out) return vv_err(e, VISVM_ERR_INVALID, "vv_gguf_open_mem: out is NULL");
    *out = NULL;
    if (!buf && size) return vv_err(e, VISVM_ERR_INVALID, "vv_gguf_open_mem: buffer is NULL");
    vv_gguf *g = calloc(1, sizeof(*g));
    if (!g) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    g->path = vv_strdup("");
    if (!g->path) {
        free(g);
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    g->base = buf;
    g->size = size;
    return open_common(g, out, e);
}

int vv_gguf_repack_tensors(vv_gguf *g, const vv_tensor *const *ts, int n) {
    if (!g || n < 0 || (n && !ts) || g->arena) return VISVM_ERR_INVALID;
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        if (!ts[i] || ts[i] < g->tensors || ts[i] >= g->tensors + g->n_tensors) return VISVM_ERR_INVALID;
        total += (vv_matmul_repack_size(ts[i]) + 63) & ~(size_t)63;
    }
    if (!total) return VISVM_OK;
    g->arena = vv_aalloc_huge(total);
    if (!g->arena) return VISVM_ERR_NOMEM;
    g->arena_size = total;
    vv_pool *pool = vv_pool_create(0); // all cores for the rewrite (NULL: this thread alone)
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        vv_tensor *w = &g->tensors[ts[i] - g->tensors];
        const size_t bytes = vv_matmul_repack_size(w);
        if (!bytes) continue; // not repackable, or listed twice
        int rc = vv_matmul_repack_into(pool, w, g->arena + off);
        if (rc) {
            vv_pool_free(pool);
            return rc;
        }
        vv_mmap_release(&g->map, w->data, vv_tensor_nbytes(w));
        off += (bytes + 63) & ~(size_t)63;
    }
    vv_pool_free(pool);
    return VISVM_OK;
}

void vv_gguf_close(vv_gguf *g) {
    if (!g) return;
    for (int64_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free(g->kv[i].str);
        free(g->kv[i].strs);
    }
    free(g->kv);
    free(g->kv_hash);
    for (int64_t i = 0; i < g->n_tensors && g->tensors; i++) {
        vv_tensor *w = &g->tensors[i];
        if (g->arena && (uint8_t *)w->repacked >= g->arena && (uint8_t *)w->repacked < g->arena + g->arena_size)
            w->repacked = NULL; // in the arena, freed below
        else
            vv_matmul_repack_free(w);
    }
    vv_afree(g->arena);
    free(g->tensors);
    free(g->offsets);
    free(g->nbytes);
    free(g->names);
    free(g->t_hash);
    free(g->path);
    vv_mmap_close(&g->map);
    free(g);
}

uint32_t vv_gguf_version(const vv_gguf *g) { return g ? g->version : 0; }
size_t vv_gguf_alignment(const vv_gguf *g) { return g ? g->alignment : 0; }
size_t vv_gguf_data_offset(const vv_gguf *g) { return g ? g->data_offset : 0; }
const char *vv_gguf_path(const vv_gguf *g) { return g && g->path ? g->path : ""; }

int64_t vv_gguf_n_kv(const vv_gguf *g) { return g ? g->n_kv : 0; }

int64_t vv_gguf_find_key(const vv_gguf *g, const char *key) {
    return g ? hash_find(g, g->kv_hash, g->kv_hcap, kv_name, key) : -1;
}

static const gg_kv *kv_at(const vv_gguf *g, int64_t idx) {
    return g && idx >= 0 && idx < g->n_kv ? &g->kv[idx] : NULL;
}

const char *vv_gguf_key(const vv_gguf *g, int64_t idx) {
    const gg_kv *kv = kv_at(g, idx);
    return kv ? kv->key : NULL;
}

int vv_gguf_kv_type(const vv_gguf *g, int64_t idx) {
    const gg_kv *kv = kv_at(g, idx);
    return kv ? kv->type : -1;
}

int vv_gguf_arr_type(const vv_gguf *g, int64_t idx) {
    const gg_kv *kv = kv_at(g, idx);
    return kv ? kv->arr_type : -1;
}

uint64_t vv_gguf_arr_n(const vv_gguf *g, int64_t idx) {
    const gg_kv *kv = kv_at(g, idx);
    return kv && kv->type == VV_GGUF_ARRAY ? kv->n : 0;
}

const void *vv_gguf_arr_data(const vv_gguf *g, int64_t idx) {
    const gg_kv *kv = kv_at(g, idx);
    return kv && kv->type == VV_GGUF_ARRAY && kv->arr_type != VV_GGUF_STRING ? kv->val : NULL;
}

const char *vv_gguf_arr_str_at(const vv_gguf *g, int64_t idx, uint64_t i, size_t *len) {
    const gg_kv *kv = kv_at(g, idx);
    if (!kv || kv->arr_type != VV_GGUF_STRING || i >= kv->n) return NULL;
    if (len) *len = kv->lens[i];
    return kv->strs[i];
}

const char *vv_gguf_str_at(const vv_gguf *g, int64_t idx, size_t *len) {
    const gg_kv *kv = kv_at(g, idx);
    if (!kv || kv->type != VV_GGUF_STRING) return NULL;
    if (len) *len = kv->slen;
    return kv->str;
}

// Typed getters ------------------------------------------------------------

static int lookup(const vv_gguf *g, const char *key, const gg_kv **kv, vv_error *e) {
    if (!g || !key) return vv_err(e, VISVM_ERR_INVALID, "gguf getter: NULL handle or key");
    int64_t i = vv_gguf_find_key(g, key);
    if (i < 0) return vv_err(e, VISVM_ERR_NOT_FOUND, "key '%s' not found", key);
    *kv = &g->kv[i];
    return VISVM_OK;
}

static const char *kv_type_desc(const gg_kv *kv, char *buf, size_t n) {
    if (kv->type == VV_GGUF_ARRAY) snprintf(buf, n, "array[%s]", vv_gguf_type_name(kv->arr_type));
    else snprintf(buf, n, "%s", vv_gguf_type_name(kv->type));
    return buf;
}

static int wrong_type(const gg_kv *kv, const char *expected, vv_error *e) {
    char b[32];
    return vv_err(e, VISVM_ERR_FORMAT, "key '%s' has type %s, expected %s", kv->key, kv_type_desc(kv, b, sizeof(b)),
                  expected);
}

// Integer value of kv within [lo, hi].
static int get_int_range(const vv_gguf *g, const char *key, int64_t lo, int64_t hi, const char *tname, int64_t *out,
                         vv_error *e) {
    const gg_kv *kv = NULL;
    int rc = lookup(g, key, &kv, e);
    if (rc) return rc;
    int64_t v = 0;
    bool big;
    if (!read_int(kv->type, kv->val, &v, &big)) return wrong_type(kv, "an integer", e);
    if (big) {
        uint64_t u;
        memcpy(&u, kv->val, 8);
        return vv_err(e, VISVM_ERR_FORMAT, "key '%s' value %" PRIu64 " is out of range for %s", key, u, tname);
    }
    if (v < lo || v > hi)
        return vv_err(e, VISVM_ERR_FORMAT, "key '%s' value %" PRId64 " is out of range for %s", key, v, tname);
    *out = v;
    return VISVM_OK;
}

int vv_gguf_get_i64(const vv_gguf *g, const char *key, int64_t *out, vv_error *e) {
    return get_int_range(g, key, INT64_MIN, INT64_MAX, "i64", out, e);
}

int vv_gguf_get_u32(const vv_gguf *g, const char *key, uint32_t *out, vv_error *e) {
    int64_t v = 0;
    int rc = get_int_range(g, key, 0, UINT32_MAX, "u32", &v, e);
    if (!rc) *out = (uint32_t)v;
    return rc;
}

int vv_gguf_get_i32(const vv_gguf *g, const char *key, int32_t *out, vv_error *e) {
    int64_t v = 0;
    int rc = get_int_range(g, key, INT32_MIN, INT32_MAX, "i32", &v, e);
    if (!rc) *out = (int32_t)v;
    return rc;
}

int vv_gguf_get_f32(const vv_gguf *g, const char *key, float *out, vv_error *e) {
    const gg_kv *kv = NULL;
    int rc = lookup(g, key, &kv, e);
    if (rc) return rc;
    double d;
    if (kv->type == VV_GGUF_BOOL || !read_num(kv->type, kv->val, &d)) return wrong_type(kv, "a number", e);
    if (isfinite(d) && fabs(d) > FLT_MAX)
        return vv_err(e, VISVM_ERR_FORMAT, "key '%s' value %g is out of range for f32", key, d);
    *out = (float)d;
    return VISVM_OK;
}

int vv_gguf_get_bool(const vv_gguf *g, const char *key, bool *out, vv_error *e) {
    const gg_kv *kv = NULL;
    int rc = lookup(g, key, &kv, e);
    if (rc) return rc;
    int64_t v = 0;
    bool big;
    // bool, or an integer holding 0/1 (some writers use u8)
    if (!read_int(kv->type, kv->val, &v, &big)) return wrong_type(kv, "bool", e);
    if (big || (v != 0 && v != 1))
        return vv_err(e, VISVM_ERR_FORMAT, "key '%s' integer value is not a bool (0 or 1)", key);
    *out = v != 0;
    return VISVM_OK;
}

int vv_gguf_get_str(const vv_gguf *g, const char *key, const char **out, vv_error *e) {
    const gg_kv *kv = NULL;
    int rc = lookup(g, key, &kv, e);
    if (rc) return rc;
    if (kv->type != VV_GGUF_STRING) return wrong_type(kv, "string", e);
    *out = kv->str;
    return VISVM_OK;
}

int vv_gguf_get_u32_def(const vv_gguf *g, const char *key, uint32_t def, uint32_t *out, vv_error *e) {
    if (g && key && vv_gguf_find_key(g, key) < 0) {
        *out = def;
        return VISVM_OK;
    }
    return vv_gguf_get_u32(g, key, out, e);
}

int vv_gguf_get_f32_def(const vv_gguf *g, const char *key, float def, float *out, vv_error *e) {
    if (g && key && vv_gguf_find_key(g, key) < 0) {
        *out = def;
        return VISVM_OK;
    }
    return vv_gguf_get_f32(g, key, out, e);
}

int vv_gguf_get_bool_def(const vv_gguf *g, const char *key, bool def, bool *out, vv_error *e) {
    if (g && key && vv_gguf_find_key(g, key) < 0) {
        *out = def;
        return VISVM_OK;
    }
    return vv_gguf_get_bool(g, key, out, e);
}

static int lookup_arr(const vv_gguf *g, const char *key, const gg_kv **kv, vv_error *e) {
    int rc = lookup(g, key, kv, e);
    if (rc) return rc;
    if ((*kv)->type != VV_GGUF_ARRAY) return wrong_type(*kv, "an array", e);
    return VISVM_OK;
}

int vv_gguf_get_arr_n(const vv_gguf *g, const char *key, uint64_t *n, vv_error *e) {
    const gg_kv *kv = NULL;
    int rc = lookup_arr(g, key, &kv, e);
    if (!rc) *n = kv->n;
    return rc;
}

static int check_count(const gg_kv *kv, uint64_t n_out, vv_error *e) {
    if (kv->n != n_out)
        return vv_err(e, VISVM_ERR_FORMAT, "key '%s' has %" PRIu64 " elements, expected %" PRIu64, kv->key, kv->n,
                      n_out);
    return VISVM_OK;
}

int vv_gguf_get_arr_i64(const vv_gguf *g, const char *key, int64_t *out, uint64_t n_out, vv_error *e) {
    const gg_kv *kv = NULL;
    int rc = lookup_arr(g, key, &kv, e);
    if (rc) return rc;
    if (!is_int_type(kv->arr_type)) return wrong_type(kv, "an integer array", e);
    if ((rc = check_count(kv, n_out, e))) return rc;
    size_t es = g_type_size[kv->arr_type];
    for (uint64_t i = 0; i < kv->n; i++) {
        bool big;
        read_int(kv->arr_type, kv->val + i * es, &out[i], &big);
        if (big) return vv_err(e, VISVM_ERR_FORMAT, "key '%s' element %" PRIu64 " is out of range for i64", key, i);
    }
    return VISVM_OK;
}

int vv_gguf_get_arr_f32(const vv_gguf *g, const char *key, float *out, uint64_t n_out, vv_error *e) {
    const gg_kv *kv = NULL;
    int rc = lookup_arr(g, key, &kv, e);
    if (rc) return rc;
    if (kv->arr_type == VV_GGUF_STRING || kv->arr_type == VV_GGUF_BOOL) return wrong_type(kv, "a float array", e);
    if ((rc = check_count(kv, n_out, e))) return rc;
    size_t es = g_type_size[kv->arr_type];
    if (kv->arr_type == VV_GGUF_FLOAT32) {
        if (kv->n) memcpy(out, kv->val, (size_t)kv->n * 4);
        return VISVM_OK;
    }
    for (uint64_t i = 0; i < kv->n; i++) {
        double d = 0;
        read_num(kv->arr_type, kv->val + i * es, &d);
        out[i] = (float)d;
    }
    return VISVM_OK;
}

int vv_gguf_get_arr_str(const vv_gguf *g, const char *key, uint64_t i, const char **out, size_t *len, vv_error *e) {
    const gg_kv *kv = NULL;
    int rc = lookup_arr(g, key, &kv, e);
    if (rc) return rc;
    if (kv->arr_type != VV_GGUF_STRING) return wrong_type(kv, "a string array", e);
    if (i >= kv->n)
        return vv_err(e, VISVM_ERR_RANGE, "key '%s': index %" PRIu64 " out of range (%" PRIu64 " elements)", key, i,
                      kv->n);
    *out = kv->strs[i];
    if (len) *len = kv->lens[i];
    return VISVM_OK;
}

int64_t vv_gguf_n_tensors(const vv_gguf *g) { return g ? g->n_tensors : 0; }

const vv_tensor *vv_gguf_tensor(const vv_gguf *g, int64_t i) {
    return g && i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

const vv_tensor *vv_gguf_find_tensor(const vv_gguf *g, const char *name) {
    int64_t i = g ? hash_find(g, g->t_hash, g->t_hcap, t_name, name) : -1;
    return i >= 0 ? &g->tensors[i] : NULL;
}

size_t vv_gguf_tensor_offset(const vv_gguf *g, int64_t i) {
    return g && i >= 0 && i < g->n_tensors ? g->offsets[i] : 0;
}

// ===========================================================================
// Writer

typedef struct w_kv {
    char *key;
    int type;  // VV_GGUF_*
    vv_buf val; // serialised value (after the u32 type)
} w_kv;

typedef struct w_tensor {
    char name[GGUF_MAX_NAME];
    int type, n_dims;
    int64_t ne[4];
    const void *data; // referenced, not copied
    size_t nbytes;
} w_tensor;

struct vv_gguf_writer {
    uint32_t version;
    w_kv *kv;
    size_t n_kv, cap_kv;
    w_tensor *t;
    size_t n_t, cap_t;
    vv_error err;
};

vv_gguf_writer *vv_gguf_writer_create(void) {
    vv_gguf_writer *w = calloc(1, sizeof(*w));
    if (w) w->version = 3;
    return w;
}

void vv_gguf_writer_free(vv_gguf_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_kv; i++) {
        free(w->kv[i].key);
        vv_buf_free(&w->kv[i].val);
    }
    free(w->kv);
    free(w->t);
    free(w);
}

const char *vv_gguf_writer_error(const vv_gguf_writer *w) { return w ? w->err.msg : ""; }

int vv_gguf_writer_set_version(vv_gguf_writer *w, uint32_t version) {
    if (!w) return VISVM_ERR_INVALID;
    if (version != 2 && version != 3)
        return vv_err(&w->err, VISVM_ERR_INVALID, "GGUF version %" PRIu32 " cannot be written (2 or 3)", version);
    w->version = version;
    return VISVM_OK;
}

static int buf_u32(vv_buf *b, uint32_t v) { return vv_buf_append(b, &v, 4); }
static int buf_u64(vv_buf *b, uint64_t v) { return vv_buf_append(b, &v, 8); }
static int buf_str(vv_buf *b, const char *s, size_t n) {
    int rc = buf_u64(b, n);
    return rc ? rc : vv_buf_append(b, s, n);
}

// Sets key to a serialised value (takes ownership of val on success).
static int set_kv(vv_gguf_writer *w, const char *key, int type, vv_buf *val) {
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, key) == 0) {
            vv_buf_free(&w->kv[i].val);
            w->kv[i].type = type;
            w->kv[i].val = *val;
            *val = (vv_buf){0};
            return VISVM_OK;
        }
    }
    if (grow_arr(&w->kv, &w->cap_kv, w->n_kv + 1, sizeof(w_kv)))
        return vv_err(&w->err, VISVM_ERR_NOMEM, "out of memory");
    char *k = vv_strdup(key);
    if (!k) return vv_err(&w->err, VISVM_ERR_NOMEM, "out of memory");
    w->kv[w->n_kv++] = (w_kv){k, type, *val};
    *val = (vv_buf){0};
    return VISVM_OK;
}

static int check_key(vv_gguf_writer *w, const char *key) {
    if (!w) return VISVM_ERR_INVALID;
    if (!key || !key[0]) return vv_err(&w->err, VISVM_ERR_INVALID, "gguf writer: NULL or empty key");
    return VISVM_OK;
}

static int set_scalar(vv_gguf_writer *w, const char *key, int type, const void *v) {
    int rc = check_key(w, key);
    if (rc) return rc;
    vv_buf b = {0};
    if (vv_buf_append(&b, v, g_type_size[type])) return vv_err(&w->err, VISVM_ERR_NOMEM, "out of memory");
    rc = set_kv(w, key, type, &b);
    vv_buf_free(&b);
    return rc;
}

int vv_gguf_set_u8(vv_gguf_writer *w, const char *key, uint8_t v) { return set_scalar(w, key, VV_GGUF_UINT8, &v); }
int vv_gguf_set_i8(vv_gguf_writer *w, const char *key, int8_t v) { return set_scalar(w, key, VV_GGUF_INT8, &v); }
int vv_gguf_set_u16(vv_gguf_writer *w, const char *key, uint16_t v) { return set_scalar(w, key, VV_GGUF_UINT16, &v); }
int vv_gguf_set_i16(vv_gguf_writer *w, const char *key, int16_t v) { return set_scalar(w, key, VV_GGUF_INT16, &v); }
int vv_gguf_set_u32(vv_gguf_writer *w, const char *key, uint32_t v) { return set_scalar(w, key, VV_GGUF_UINT32, &v); }
int vv_gguf_set_i32(vv_gguf_writer *w, const char *key, int32_t v) { return set_scalar(w, key, VV_GGUF_INT32, &v); }
int vv_gguf_set_u64(vv_gguf_writer *w, const char *key, uint64_t v) { return set_scalar(w, key, VV_GGUF_UINT64, &v); }
int vv_gguf_set_i64(vv_gguf_writer *w, const char *key, int64_t v) { return set_scalar(w, key, VV_GGUF_INT64, &v); }
int vv_gguf_set_f32(vv_gguf_writer *w, const char *key, float v) { return set_scalar(w, key, VV_GGUF_FLOAT32, &v); }
int vv_gguf_set_f64(vv_gguf_writer *w, const char *key, double v) { return set_scalar(w, key, VV_GGUF_FLOAT64, &v); }
int vv_gguf_set_bool(vv_gguf_writer *w, const char *key, bool v) {
    uint8_t b = v ? 1 : 0;
    return set_scalar(w, key, VV_GGUF_BOOL, &b);
}

static int set_str_n(vv_gguf_writer *w, const char *key, const char *v, size_t n) {
    int rc = check_key(w, key);
    if (rc) return rc;
    if (!v) return vv_err(&w->err, VISVM_ERR_INVALID, "gguf writer: NULL string for key '%s'", key);
    if (n > GGUF_MAX_STRING) return vv_err(&w->err, VISVM_ERR_INVALID, "gguf writer: string for key '%s' too long", key);
    vv_buf b = {0};
    if (buf_str(&b, v, n)) {
        vv_buf_free(&b);
        return vv_err(&w->err, VISVM_ERR_NOMEM, "out of memory");
    }
    rc = set_kv(w, key, VV_GGUF_STRING, &b);
    vv_buf_free(&b);
    return rc;
}

int vv_gguf_set_str(vv_gguf_writer *w, const char *key, const char *v) {
    return set_str_n(w, key, v, v ? strlen(v) : 0);
}

int vv_gguf_set_arr(vv_gguf_writer *w, const char *key, int elem_type, const void *data, uint64_t n) {
    int rc = check_key(w, key);
    if (rc) return rc;
    if (elem_type < 0 || elem_type >= VV_GGUF_TYPE_COUNT || elem_type == VV_GGUF_STRING || elem_type == VV_GGUF_ARRAY)
        return vv_err(&w->err, VISVM_ERR_INVALID, "gguf writer: key '%s': invalid array element type %d", key,
                      elem_type);
    if (n > GGUF_MAX_ARRAY)
        return vv_err(&w->err, VISVM_ERR_INVALID, "gguf writer: key '%s': array too long (%" PRIu64 ")", key, n);
    if (n && !data) return vv_err(&w->err, VISVM_ERR_INVALID, "gguf writer: key '%s': NULL array data", key);
    size_t es = g_type_size[elem_type];
    if (elem_type == VV_GGUF_BOOL)
        for (uint64_t i = 0; i < n; i++)
            if (((const uint8_t *)data)[i] > 1)
                return vv_err(&w->err, VISVM_ERR_INVALID, "gguf writer: key '%s': bool element %" PRIu64 " is not 0/1",
                              key, i);
    vv_buf b = {0};
    if (buf_u32(&b, (uint32_t)elem_type) || buf_u64(&b, n) || vv_buf_append(&b, data, (size_t)n * es)) {
        vv_buf_free(&b);
        return vv_err(&w->err, VISVM_ERR_NOMEM, "out of memory");
    }
    rc = set_kv(w, key, VV_GGUF_ARRAY, &b);
    vv_buf_free(&b);
    return rc;
}

// String array from pointers and optional lengths (NULL lens: strlen).
static int set_arr_str_n(vv_gguf_writer *w, const char *key, const char *const *strs, const size_t *lens,
                         uint64_t n) {
    int rc = check_key(w, key);
    if (rc) return rc;
    if (n > GGUF_MAX_ARRAY)
        return vv_err(&w->err, VISVM_ERR_INVALID, "gguf writer: key '%s': array too long (%" PRIu64 ")", key, n);
    if (n && !strs) return vv_err(&w->err, VISVM_ERR_INVALID, "gguf writer: key '%s': NULL string array", key);
    vv_buf b = {0};
    if (buf_u32(&b, VV_GGUF_STRING) || buf_u64(&b, n)) goto nomem;
    for (uint64_t i = 0; i < n; i++) {
        if (!strs[i]) {
            vv_buf_free(&b);
            return vv_err(&w->err, VISVM_ERR_INVALID, "gguf writer: key '%s': string %" PRIu64 " is NULL", key, i);
        }
        if (buf_str(&b, strs[i], lens ? lens[i] : strlen(strs[i]))) goto nomem;
    }
    rc = set_kv(w, key, VV_GGUF_ARRAY, &b);
    vv_buf_free(&b);
    return rc;
nomem:
    vv_buf_free(&b);
    return vv_err(&w->err, VISVM_ERR_NOMEM, "out of memory");
}

int vv_gguf_set_arr_str(vv_gguf_writer *w, const char *key, const char *const *strs, uint64_t n) {
    return set_arr_str_n(w, key, strs, NULL, n);
}

int vv_gguf_copy_kv(vv_gguf_writer *w, const vv_gguf *src) {
    if (!w) return VISVM_ERR_INVALID;
    if (!src) return vv_err(&w->err, VISVM_ERR_INVALID, "gguf writer: copy_kv from NULL reader");
    for (int64_t i = 0; i < src->n_kv; i++) {
        const gg_kv *kv = &src->kv[i];
        int rc;
        if (kv->type == VV_GGUF_STRING) rc = set_str_n(w, kv->key, kv->str, kv->slen);
        else if (kv->type == VV_GGUF_ARRAY && kv->arr_type == VV_GGUF_STRING)
            rc = set_arr_str_n(w, kv->key, (const char *const *)kv->strs, kv->lens, kv->n);
        else if (kv->type == VV_GGUF_ARRAY) rc = vv_gguf_set_arr(w, kv->key, kv->arr_type, kv->val, kv->n);
        else rc = set_scalar(w, kv->key, kv->type, kv->val);
        if (rc) return rc;
    }
    return VISVM_OK;
}

int vv_gguf_add_tensor(vv_gguf_writer *w, const char *name, int type, int n_dims, const int64_t *ne,
                       const void *data) {
    if (!w) return VISVM_ERR_INVALID;
    vv_error *e = &w->err;
    if (!name || !name[0]) return vv_err(e, VISVM_ERR_INVALID, "gguf writer: NULL or empty tensor name");
    size_t nl = strlen(name);
    if (nl >= GGUF_MAX_NAME)
        return vv_err(e, VISVM_ERR_INVALID, "gguf writer: tensor name '%s' is too long (max %d bytes)", name,
                      GGUF_MAX_NAME - 1);
    const vv_type_info *ti = vv_type_get(type);
    if (!ti) return vv_err(e, VISVM_ERR_INVALID, "gguf writer: tensor '%s' has unknown type %d", name, type);
    if (n_dims < 1 || n_dims > GGUF_MAX_DIMS || !ne)
        return vv_err(e, VISVM_ERR_INVALID, "gguf writer: tensor '%s' has invalid n_dims %d", name, n_dims);
    int64_t full[4] = {1, 1, 1, 1}, nel = 1;
    for (int d = 0; d < n_dims; d++) {
        if (ne[d] < 0) return vv_err(e, VISVM_ERR_INVALID, "gguf writer: tensor '%s' dimension %d is negative", name, d);
        full[d] = ne[d];
        if (__builtin_mul_overflow(nel, ne[d], &nel))
            return vv_err(e, VISVM_ERR_INVALID, "gguf writer: tensor '%s' element count overflows", name);
    }
    if (full[0] % ti->blck != 0)
        return vv_err(e, VISVM_ERR_INVALID, "gguf writer: tensor '%s': ne[0] = %" PRId64
                      " is not a multiple of the block size %d of %s", name, full[0], ti->blck, ti->name);
    size_t nb = (size_t)(full[0] / ti->blck);
    bool ok = vv_mul_ok(nb, ti->type_size, &nb);
    for (int d = 1; d < 4 && ok; d++) ok = vv_mul_ok(nb, (size_t)full[d], &nb);
    if (!ok) return vv_err(e, VISVM_ERR_INVALID, "gguf writer: tensor '%s' byte size overflows", name);
    if (nb && !data) return vv_err(e, VISVM_ERR_INVALID, "gguf writer: tensor '%s' has NULL data", name);
    for (size_t i = 0; i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0)
            return vv_err(e, VISVM_ERR_INVALID, "gguf writer: duplicate tensor name '%s'", name);
    if (grow_arr(&w->t, &w->cap_t, w->n_t + 1, sizeof(w_tensor)))
        return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    w_tensor *t = &w->t[w->n_t++];
    memcpy(t->name, name, nl + 1);
    t->type = type;
    t->n_dims = n_dims;
    memcpy(t->ne, full, sizeof(full));
    t->data = data;
    t->nbytes = nb;
    return VISVM_OK;
}

// Builds everything up to the start of the tensor data; *align receives the alignment.
static int build_header(vv_gguf_writer *w, vv_buf *h, size_t *align, vv_error *e) {
    size_t a = GGUF_DEFAULT_ALIGNMENT;
    for (size_t i = 0; i < w->n_kv; i++) {
        if (strcmp(w->kv[i].key, "general.alignment") != 0) continue;
        uint32_t v = 0;
        if (w->kv[i].type == VV_GGUF_UINT32) memcpy(&v, w->kv[i].val.v, 4);
        if (w->kv[i].type != VV_GGUF_UINT32 || v == 0 || (v & (v - 1)) != 0)
            return vv_err(e, VISVM_ERR_INVALID, "gguf writer: general.alignment must be a u32 nonzero power of two");
        a = v;
    }
    *align = a;
    int rc = vv_buf_append(h, GGUF_MAGIC, 4);
    rc = rc ? rc : buf_u32(h, w->version);
    rc = rc ? rc : buf_u64(h, w->n_t);
    rc = rc ? rc : buf_u64(h, w->n_kv);
    for (size_t i = 0; i < w->n_kv && !rc; i++) {
        rc = buf_str(h, w->kv[i].key, strlen(w->kv[i].key));
        rc = rc ? rc : buf_u32(h, (uint32_t)w->kv[i].type);
        rc = rc ? rc : vv_buf_append(h, w->kv[i].val.v, w->kv[i].val.n);
    }
    size_t off = 0;
    for (size_t i = 0; i < w->n_t && !rc; i++) {
        const w_tensor *t = &w->t[i];
        rc = buf_str(h, t->name, strlen(t->name));
        rc = rc ? rc : buf_u32(h, (uint32_t)t->n_dims);
        for (int d = 0; d < t->n_dims && !rc; d++) rc = buf_u64(h, (uint64_t)t->ne[d]);
        rc = rc ? rc : buf_u32(h, (uint32_t)t->type);
        rc = rc ? rc : buf_u64(h, off);
        off = pad_to(off + t->nbytes, a); // running sum of padded sizes, as ggml
    }
    static const uint8_t zeros[256];
    size_t padn = pad_to(h->n, a) - h->n;
    while (!rc && padn) {
        size_t k = VV_MIN(padn, sizeof(zeros));
        rc = vv_buf_append(h, zeros, k);
        padn -= k;
    }
    if (rc) return vv_err(e, VISVM_ERR_NOMEM, "gguf writer: out of memory building the header");
    return VISVM_OK;
}

// Output sink: a memory buffer or an atomic file.
typedef struct sink {
    vv_buf *mem;
    vv_atomic_file *f;
} sink;

static int sink_write(sink *s, const void *p, size_t n, vv_error *e) {
    if (s->mem) return vv_buf_append(s->mem, p, n) ? vv_err(e, VISVM_ERR_NOMEM, "gguf writer: out of memory") : 0;
    return vv_atomic_write(s->f, p, n, e);
}

static int write_all(vv_gguf_writer *w, sink *s, vv_error *e) {
    vv_buf h = {0};
    size_t a;
    int rc = build_header(w, &h, &a, e);
    if (!rc) rc = sink_write(s, h.v, h.n, e);
    vv_buf_free(&h);
    static const uint8_t zeros[4096];
    for (size_t i = 0; i < w->n_t && !rc; i++) {
        const w_tensor *t = &w->t[i];
        if (t->nbytes) rc = sink_write(s, t->data, t->nbytes, e);
        size_t padn = pad_to(t->nbytes, a) - t->nbytes;
        while (!rc && padn) {
            size_t k = VV_MIN(padn, sizeof(zeros));
            rc = sink_write(s, zeros, k, e);
            padn -= k;
        }
    }
    return rc;
}

static int write_file(vv_gguf_writer *w, const char *path, vv_error *e) {
    // validate the header before touching the file system
    vv_buf h = {0};
    size_t a;
    int rc = build_header(w, &h, &a, e);
    vv_buf_free(&h);
    if (rc) return rc;
    vv_atomic_file f;
    if ((rc = vv_atomic_open(&f, path, e))) return rc;
    sink s = {NULL, &f};
    rc = write_all(w, &s, e);
    if (rc) {
        vv_atomic_abort(&f);
        return rc;
    }
    return vv_atomic_commit(&f, e);
}

int vv_gguf_writer_write(vv_gguf_writer *w, const char *path, vv_error *e) {
    if (!w || !path) return vv_err(e, VISVM_ERR_INVALID, "gguf writer: NULL writer or path");
    vv_error le = {0};
    int rc = write_file(w, path, &le);
    if (rc) { // keep the message in the writer too
        w->err = le;
        if (e) *e = le;
    }
    return rc;
}

static int write_mem(vv_gguf_writer *w, void **out, size_t *size, vv_error *e) {
    *size = 0;
    vv_buf b = {0};
    sink s = {&b, NULL};
    int rc = write_all(w, &s, e);
    if (rc) {
        vv_buf_free(&b);
        return rc;
    }
    *out = b.v;
    *size = b.n;
    return VISVM_OK;
}

int vv_gguf_writer_write_mem(vv_gguf_writer *w, void **out, size_t *size, vv_error *e) {
    if (!w || !out || !size) return vv_err(e, VISVM_ERR_INVALID, "gguf writer: NULL argument");
    *out = NULL;
    *size = 0;
    vv_error le = {0};
    int rc = write_mem(w, out, size, &le);
    if (rc) {
        w->err = le;
        if (e) *e = le;
    }
    return rc;
}
