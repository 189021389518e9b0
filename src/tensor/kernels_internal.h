// kernels_internal.h - private interface between quants.c, matmul.c, the
// scalar reference kernels (quants_ref.c) and the SIMD kernels
// (quants_avx2.c, quants_avx512.c).
//
// Matrix products do not call vec_dot per (row, token). Activations are first
// "packed" once per call into a private per-token layout that carries the
// vec_dot_type data plus derived values (block sums, transposed quants,
// expanded scales); then tile kernels stream each weight row once and apply it
// to up to 8 (Q4_0/Q8_0: 16) tokens per pass.
//
// Invariant that makes results deterministic: for one ISA level, every tile
// shape and batch size performs, for each (row, token), exactly the float
// operations of that level's vec_dot in the same order (integer parts are
// exact, so how they are computed does not matter). So a result never depends
// on the thread count or on the batch, and equals vec_dot bit for bit. The
// AVX2 kernels mirror the AVX-512 lane layout (a 16-lane accumulator is a pair
// of 8-lane halves), so AVX2 and AVX-512 also agree bit for bit; the scalar
// reference follows ggml's generic order instead (results within float
// rounding of the SIMD ones).
#ifndef VV_KERNELS_INTERNAL_H
#define VV_KERNELS_INTERNAL_H

#include "quants.h"

// ---------------------------------------------------------------------------
// Scalar reference (quants_ref.c): ggml's dequantize_row_*, quantize_row_*_ref
// and generic vec_dot_* semantics.
void vv_ref_dequant_f32(const void *src, float *dst, int64_t n);
void vv_ref_dequant_f16(const void *src, float *dst, int64_t n);
void vv_ref_dequant_bf16(const void *src, float *dst, int64_t n);
void vv_ref_dequant_q8_0(const void *src, float *dst, int64_t n);
void vv_ref_dequant_q4_0(const void *src, float *dst, int64_t n);
void vv_ref_dequant_q4_K(const void *src, float *dst, int64_t n);
void vv_ref_dequant_q6_K(const void *src, float *dst, int64_t n);
void vv_ref_dequant_q8_K(const void *src, float *dst, int64_t n);

void vv_ref_quant_f32(const float *x, void *y, int64_t n);
void vv_ref_quant_f16(const float *x, void *y, int64_t n);
void vv_ref_quant_bf16(const float *x, void *y, int64_t n);
void vv_ref_quant_q8_0(const float *x, void *y, int64_t n); // quantize_row_q8_0_ref
void vv_ref_quant_q4_0(const float *x, void *y, int64_t n);
void vv_ref_quant_q4_K(const float *x, void *y, int64_t n);
void vv_ref_quant_q6_K(const float *x, void *y, int64_t n);
void vv_ref_quant_q8_K(const float *x, void *y, int64_t n);
// Activation quantizer for Q8_0 as ggml-cpu does it on x86 (quantize_row_q8_0,
// AVX2 branch): d = amax/127 stored as fp16, q = round_half_even(x * (127/amax)).
// It differs from quantize_row_q8_0_ref (x * (1/d), round half away) in rare
// ties; llama.cpp's reference logits were made with this one.
void vv_ref_quant_q8_0_act(const float *x, void *y, int64_t n);

void vv_ref_vec_dot_f32(int64_t n, float *s, const void *w, const void *a);
void vv_ref_vec_dot_f16(int64_t n, float *s, const void *w, const void *a);
void vv_ref_vec_dot_bf16(int64_t n, float *s, const void *w, const void *a);
void vv_ref_vec_dot_q8_0(int64_t n, float *s, const void *w, const void *a);
void vv_ref_vec_dot_q4_0(int64_t n, float *s, const void *w, const void *a);
void vv_ref_vec_dot_q4_K(int64_t n, float *s, const void *w, const void *a);
void vv_ref_vec_dot_q6_K(int64_t n, float *s, const void *w, const void *a);

// ggml's rounding helper: round half to even for |f| < 2^22.
static inline int vv_nearest_int(float f) {
    union { float f; int32_t i; } v;
    v.f = f + 12582912.f;
    return (v.i & 0x007fffff) - 0x00400000;
}

// Q4_K: 6-bit scale and min of sub-block j (ggml get_scale_min_k4).
static inline void vv_q4k_scale_min(int j, const uint8_t *q, uint8_t *d, uint8_t *m) {
    if (j < 4) {
        *d = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *d = (uint8_t)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        *m = (uint8_t)((q[j + 4] >> 4) | ((q[j - 0] >> 6) << 4));
    }
}

// ---------------------------------------------------------------------------
// Packed activation layouts (one token; 64-byte aligned parts).
//
// Q8T (weights Q4_0 / Q8_0): blocks of 32 in groups of 16, one 640-byte record
// per group g; lane p holds block 16g + vv_q8t_block(p) (zero past the end):
//   int8  qs[8][16][4]  qs[j][p] = quants 4j..4j+3 of the lane's block
//                       (transposed, so a vpdpbusd lane accumulates one block)
//   int32 corr[16]      -c * (sum of the block's 32 quants); c = 8 for Q4_0
//                       (weights used as unsigned q = w+8), 128 for Q8_0
//                       (AVX-512 uses w+128 as the unsigned operand)
//   float da[16]        block scale (the fp16 value)
// Q8KA (weights Q4_K / Q6_K), ns = n/256 super-blocks, ns4 = ns rounded up to 4:
//   int8 qs[n]; float d[ns]; int16 bsums[16*ns];
//   int16 bsum32[8*ns4]  pairs of bsums (sums over 32 values), zero-padded
//   float d4[4*ns4]      d of each super-block repeated 4 times, zero-padded
//   (the Q4_K mins term is applied 4 super-blocks at a time)
// FA (weights F16 / BF16 / F32): float x[n] rounded through the vec_dot_type,
//   zero-padded to a multiple of 32 values.
#define VV_Q8T_GROUP 640
// Block of lane p: the kernels transpose 4 consecutive blocks at a time, so
// lane 4L + i holds block 4i + L.
static inline int vv_q8t_block(int p) { return 4 * (p % 4) + p / 4; }
static inline size_t vv_pad64(size_t n) { return (n + 63) & ~(size_t)63; }
static inline int64_t vv_q8t_groups(int64_t n) { return (n / 32 + 15) / 16; }
static inline size_t vv_q8t_size(int64_t n) { return (size_t)vv_q8t_groups(n) * VV_Q8T_GROUP; }

typedef struct vv_q8ka_view {
    const int8_t *qs;
    const float *d;
    const int16_t *bsums;
    const int16_t *bsum32;
    const float *d4;
} vv_q8ka_view;
static inline void vv_q8ka_offsets(int64_t n, size_t o[5]) {
    const size_t ns = (size_t)n / VV_QK_K, ns4 = (ns + 3) / 4 * 4;
    o[0] = vv_pad64((size_t)n);       // d
    o[1] = o[0] + vv_pad64(ns * 4);   // bsums
    o[2] = o[1] + vv_pad64(ns * 32);  // bsum32
    o[3] = o[2] + vv_pad64(ns4 * 16); // d4
    o[4] = o[3] + vv_pad64(ns4 * 16); // total
}
static inline size_t vv_q8ka_size(int64_t n) {
    size_t o[5];
    vv_q8ka_offsets(n, o);
    return o[4];
}
static inline vv_q8ka_view vv_q8ka_at(const void *p, int64_t n) {
    const char *c = (const char *)p;
    size_t o[5];
    vv_q8ka_offsets(n, o);
    vv_q8ka_view v = {(const int8_t *)c, (const float *)(c + o[0]), (const int16_t *)(c + o[1]),
                      (const int16_t *)(c + o[2]), (const float *)(c + o[3])};
    return v;
}
// Q8KA layout from ns Q8_K blocks (dst: vv_q8ka_size(ns * 256) bytes).
void vv_q8ka_from_blocks(const vv_block_q8_K *b, int64_t ns, uint8_t *dst);
// Writes the Q8T record of one group from up to 16 Q8_0 blocks (nblk valid).
void vv_q8t_group(const vv_block_q8_0 *blk, int nblk, int shift, uint8_t *rec);

// Tile kernel: y[t*ldy + r] = dot(row r of w, token t of act) for r < nr,
// t < nt; rows are ldw bytes apart, packed tokens lda bytes apart. Rows are
// processed one at a time: one sequential weight stream per thread is what the
// hardware prefetchers follow (several interleaved rows ran at ~1/3 of the
// bandwidth on Zen 5), helped by software prefetch. scratch:
// ops->scratch_size(n) bytes, 64-byte aligned, private to the calling thread.
typedef void (*vv_tile_fn)(int64_t n, const void *w, size_t ldw, int nr, const void *act, size_t lda, int nt,
                           float *y, size_t ldy, void *scratch);
// Packs one f32 activation row of length n into the private layout.
typedef void (*vv_pack_fn)(const float *x, void *dst, int64_t n);

#define VV_RP_ROWS 32 // row granularity of repacked products (F16 panels)
typedef struct vv_mm_ops {
    vv_pack_fn pack;
    size_t (*act_size)(int64_t n);     // bytes of one packed token (multiple of 64)
    vv_tile_fn tile;
    size_t (*scratch_size)(int64_t n); // per-thread scratch of the tile kernel
    // Optional (NULL: none): rewrite raw rows into the layout tile_rp reads
    // (same size and row stride), once at model load. Shapes: Q4_0 / Q8_0 n a
    // multiple of 512; F16 rows (n_out) a multiple of 32, and tile_rp then gets
    // row ranges that start at and span multiples of 32 (VV_RP_ROWS).
    void (*repack)(const void *w, size_t ldw, int64_t n, int64_t nrows, void *dst);
    vv_tile_fn tile_rp;
} vv_mm_ops;

// Shared by the AVX2 and AVX-512 levels (defined in quants_avx2.c; x86 only):
// activation quantizers bit-identical to the scalar ones, and the packers.
void vv_avx2_quant_q8_0_act(const float *x, void *y, int64_t n);
void vv_avx2_quant_q8_K(const float *x, void *y, int64_t n);
void vv_avx2_quant_f16(const float *x, void *y, int64_t n);
void vv_pack_q8t_q4_0(const float *x, void *dst, int64_t n);
void vv_pack_q8t_q8_0(const float *x, void *dst, int64_t n);
void vv_pack_q8ka(const float *x, void *dst, int64_t n);
void vv_pack_f32(const float *x, void *dst, int64_t n);
void vv_pack_f16(const float *x, void *dst, int64_t n);
void vv_pack_bf16(const float *x, void *dst, int64_t n);
size_t vv_act_size_f(int64_t n);
size_t vv_act_size_q8t(int64_t n);
size_t vv_scratch_none(int64_t n);
size_t vv_scratch_q8t(int64_t n);
size_t vv_act_size_q8ka(int64_t n);

// Per-ISA tables (NULL when the type has no kernel at that level).
const vv_kernels *vv_kernels_avx2(int type);
const vv_mm_ops *vv_mm_ops_avx2(int type);
const vv_kernels *vv_kernels_avx512(int type);
const vv_mm_ops *vv_mm_ops_avx512(int type);
// Matmul ops for `type` at `isa` (after fallback), or NULL (scalar: none).
const vv_mm_ops *vv_get_mm_ops(int type, int isa);
// Resolves VV_ISA_BEST and clamps to what the CPU/build supports.
int vv_isa_resolve(int isa);

#endif
