// kv.h - paged, reference-counted KV cache shared by many sequences.
//
// The cache is a pool of blocks of `block_size` positions; a sequence is an
// ordered list of blocks. Forking a sequence shares its blocks (refcount + 1),
// so search candidates reuse the image + prompt prefix without copying it;
// the first append into a shared, partly filled block copies that block
// (copy-on-write). Memory is allocated lazily by the OS (untouched pages cost
// nothing), so peak memory follows the blocks actually written.
#ifndef VV_KV_H
#define VV_KV_H

#include "../base/base.h"

typedef struct vv_kv {
    int n_layer;
    int kv_dim;       // n_head_kv * head_dim
    int block_size;   // positions per block
    int n_blocks;
    size_t layer_stride; // floats per layer: n_blocks * block_size * kv_dim
    float *k, *v;     // [n_layer][n_blocks][block_size][kv_dim]
    int32_t *refcnt;  // [n_blocks]
    int32_t *free_stack;
    int n_free;
    int hwm;          // high-water mark of blocks in use (for memory reports)
} vv_kv;

typedef struct vv_kv_seq {
    int32_t len;      // positions 0..len-1 are filled
    int32_t n_blk, cap;
    int32_t *blk;     // block ids
} vv_kv_seq;

// n_positions: total positions the pool holds (rounded up to whole blocks).
int vv_kv_init(vv_kv *kv, int n_layer, int kv_dim, int n_positions, int block_size, vv_error *e);
void vv_kv_free(vv_kv *kv);
int vv_kv_blocks_in_use(const vv_kv *kv);

void vv_kv_seq_release(vv_kv *kv, vv_kv_seq *s); // drops all positions, frees s->blk
// dst (released first) shares all of src's blocks.
int vv_kv_seq_fork(vv_kv *kv, const vv_kv_seq *src, vv_kv_seq *dst, vv_error *e);
// Keeps positions < len.
int vv_kv_seq_truncate(vv_kv *kv, vv_kv_seq *s, int32_t len);
// Makes positions [s->len, s->len + n) writable: allocates blocks and copies a
// shared partial last block. Does not change s->len.
int vv_kv_seq_reserve(vv_kv *kv, vv_kv_seq *s, int32_t n, vv_error *e);

// Row pointers for (layer, position) of a sequence (position < blocks * block_size).
static inline float *vv_kv_k(const vv_kv *kv, const vv_kv_seq *s, int layer, int32_t pos) {
    int32_t b = s->blk[pos / kv->block_size];
    return kv->k + (size_t)layer * kv->layer_stride +
           ((size_t)b * kv->block_size + (size_t)(pos % kv->block_size)) * kv->kv_dim;
}
static inline float *vv_kv_v(const vv_kv *kv, const vv_kv_seq *s, int layer, int32_t pos) {
    int32_t b = s->blk[pos / kv->block_size];
    return kv->v + (size_t)layer * kv->layer_stride +
           ((size_t)b * kv->block_size + (size_t)(pos % kv->block_size)) * kv->kv_dim;
}
// True if blocks 0..n_blk-1 of s are consecutive ids (rows of a layer are then
// contiguous in memory with stride kv_dim).
bool vv_kv_seq_contiguous(const vv_kv_seq *s, int32_t n_pos, int block_size);

#endif
