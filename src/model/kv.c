// kv.c - paged KV cache with reference-counted blocks.
#include "kv.h"

#include <stdlib.h>
#include <string.h>

int vv_kv_init(vv_kv *kv, int n_layer, int kv_dim, int n_positions, int block_size, vv_error *e) {
    memset(kv, 0, sizeof(*kv));
    if (n_layer <= 0 || kv_dim <= 0 || n_positions <= 0 || block_size <= 0)
        return vv_err(e, VISVM_ERR_INVALID, "kv cache: invalid size (layers %d, dim %d, positions %d)", n_layer,
                      kv_dim, n_positions);
    kv->n_layer = n_layer;
    kv->kv_dim = kv_dim;
    kv->block_size = block_size;
    kv->n_blocks = (n_positions + block_size - 1) / block_size;
    size_t per_layer, total, bytes;
    if (!vv_mul_ok((size_t)kv->n_blocks * (size_t)block_size, (size_t)kv_dim, &per_layer) ||
        !vv_mul_ok(per_layer, (size_t)n_layer, &total) || !vv_mul_ok(total, sizeof(float), &bytes))
        return vv_err(e, VISVM_ERR_NOMEM, "kv cache: size overflows");
    kv->layer_stride = per_layer;
    // Plain malloc of a large size maps fresh zero pages lazily: unused blocks cost no memory.
    kv->k = malloc(bytes);
    kv->v = malloc(bytes);
    kv->refcnt = calloc((size_t)kv->n_blocks, sizeof(int32_t));
    kv->free_stack = malloc((size_t)kv->n_blocks * sizeof(int32_t));
    if (!kv->k || !kv->v || !kv->refcnt || !kv->free_stack) {
        vv_kv_free(kv);
        return vv_err(e, VISVM_ERR_NOMEM, "kv cache: cannot allocate %.1f MiB", 2.0 * (double)bytes / 1048576.0);
    }
    // Pop order 0, 1, 2, ... so a fresh sequence gets consecutive blocks.
    for (int i = 0; i < kv->n_blocks; i++) kv->free_stack[i] = kv->n_blocks - 1 - i;
    kv->n_free = kv->n_blocks;
    return VISVM_OK;
}

void vv_kv_free(vv_kv *kv) {
    if (!kv) return;
    free(kv->k);
    free(kv->v);
    free(kv->refcnt);
    free(kv->free_stack);
    memset(kv, 0, sizeof(*kv));
}

int vv_kv_blocks_in_use(const vv_kv *kv) { return kv->n_blocks - kv->n_free; }

static int32_t block_alloc(vv_kv *kv) {
    if (kv->n_free == 0) return -1;
    int32_t b = kv->free_stack[--kv->n_free];
    kv->refcnt[b] = 1;
    int used = kv->n_blocks - kv->n_free;
    if (used > kv->hwm) kv->hwm = used;
    return b;
}

static void block_decref(vv_kv *kv, int32_t b) {
    if (--kv->refcnt[b] == 0) kv->free_stack[kv->n_free++] = b;
}

static int seq_grow(vv_kv_seq *s, int32_t need) {
    if (need <= s->cap) return VISVM_OK;
    int32_t nc = s->cap ? s->cap * 2 : 16;
    while (nc < need) nc *= 2;
    int32_t *nb = realloc(s->blk, (size_t)nc * sizeof(int32_t));
    if (!nb) return VISVM_ERR_NOMEM;
    s->blk = nb;
    s->cap = nc;
    return VISVM_OK;
}

void vv_kv_seq_release(vv_kv *kv, vv_kv_seq *s) {
    if (!s) return;
    for (int32_t i = 0; i < s->n_blk; i++) block_decref(kv, s->blk[i]);
    free(s->blk);
    memset(s, 0, sizeof(*s));
}

int vv_kv_seq_fork(vv_kv *kv, const vv_kv_seq *src, vv_kv_seq *dst, vv_error *e) {
    if (src == dst) return VISVM_OK;
    vv_kv_seq_release(kv, dst);
    if (seq_grow(dst, src->n_blk)) return vv_err(e, VISVM_ERR_NOMEM, "kv cache: out of memory");
    for (int32_t i = 0; i < src->n_blk; i++) {
        dst->blk[i] = src->blk[i];
        kv->refcnt[src->blk[i]]++;
    }
    dst->n_blk = src->n_blk;
    dst->len = src->len;
    return VISVM_OK;
}

int vv_kv_seq_truncate(vv_kv *kv, vv_kv_seq *s, int32_t len) {
    if (len < 0) len = 0;
    if (len >= s->len) return VISVM_OK;
    int32_t keep = (len + kv->block_size - 1) / kv->block_size;
    for (int32_t i = keep; i < s->n_blk; i++) block_decref(kv, s->blk[i]);
    s->n_blk = keep;
    s->len = len;
    return VISVM_OK;
}

static void block_copy(vv_kv *kv, int32_t dst, int32_t src, int32_t n_rows) {
    size_t row = (size_t)kv->kv_dim;
    for (int l = 0; l < kv->n_layer; l++) {
        size_t base = (size_t)l * kv->layer_stride;
        memcpy(kv->k + base + (size_t)dst * kv->block_size * row, kv->k + base + (size_t)src * kv->block_size * row,
               (size_t)n_rows * row * sizeof(float));
        memcpy(kv->v + base + (size_t)dst * kv->block_size * row, kv->v + base + (size_t)src * kv->block_size * row,
               (size_t)n_rows * row * sizeof(float));
    }
}

int vv_kv_seq_reserve(vv_kv *kv, vv_kv_seq *s, int32_t n, vv_error *e) {
    if (n <= 0) return VISVM_OK;
    const int bs = kv->block_size;
    // Copy-on-write of a shared, partly filled last block.
    if (s->len % bs != 0 && s->n_blk > 0) {
        int32_t last = s->blk[s->n_blk - 1];
        if (kv->refcnt[last] > 1) {
            int32_t nb = block_alloc(kv);
            if (nb < 0)
                return vv_err(e, VISVM_ERR_RANGE, "context full: all %d KV positions are in use (raise n_ctx)",
                              kv->n_blocks * bs);
            block_copy(kv, nb, last, s->len % bs);
            block_decref(kv, last);
            s->blk[s->n_blk - 1] = nb;
        }
    }
    int32_t need = (s->len + n + bs - 1) / bs;
    if (seq_grow(s, need)) return vv_err(e, VISVM_ERR_NOMEM, "kv cache: out of memory");
    while (s->n_blk < need) {
        int32_t nb = block_alloc(kv);
        if (nb < 0)
            return vv_err(e, VISVM_ERR_RANGE, "context full: all %d KV positions are in use (raise n_ctx)",
                          kv->n_blocks * bs);
        s->blk[s->n_blk++] = nb;
    }
    return VISVM_OK;
}

bool vv_kv_seq_contiguous(const vv_kv_seq *s, int32_t n_pos, int block_size) {
    int32_t nb = (n_pos + block_size - 1) / block_size;
    for (int32_t i = 1; i < nb; i++)
        if (s->blk[i] != s->blk[0] + i) return false;
    return true;
}
