// quants.c - type dispatch: (de)quantization entry points and the per-ISA
// kernel tables (scalar reference here, SIMD tables in quants_avx*.c).
#include "kernels_internal.h"

#include "../base/cpu.h"

typedef void (*dequant_fn)(const void *src, float *dst, int64_t n);
typedef void (*quant_fn)(const float *x, void *y, int64_t n);

static dequant_fn dequant_for(int type) {
    switch (type) {
    case VV_TYPE_F32: return vv_ref_dequant_f32;
    case VV_TYPE_F16: return vv_ref_dequant_f16;
    case VV_TYPE_BF16: return vv_ref_dequant_bf16;
    case VV_TYPE_Q8_0: return vv_ref_dequant_q8_0;
    case VV_TYPE_Q4_0: return vv_ref_dequant_q4_0;
    case VV_TYPE_Q4_K: return vv_ref_dequant_q4_K;
    case VV_TYPE_Q6_K: return vv_ref_dequant_q6_K;
    case VV_TYPE_Q8_K: return vv_ref_dequant_q8_K;
    default: return NULL;
    }
}

static quant_fn quant_for(int type) {
    switch (type) {
    case VV_TYPE_F32: return vv_ref_quant_f32;
    case VV_TYPE_F16: return vv_ref_quant_f16;
    case VV_TYPE_BF16: return vv_ref_quant_bf16;
    case VV_TYPE_Q8_0: return vv_ref_quant_q8_0;
    case VV_TYPE_Q4_0: return vv_ref_quant_q4_0;
    case VV_TYPE_Q4_K: return vv_ref_quant_q4_K;
    case VV_TYPE_Q6_K: return vv_ref_quant_q6_K;
    case VV_TYPE_Q8_K: return vv_ref_quant_q8_K;
    default: return NULL;
    }
}

int vv_dequantize_row(int type, const void *src, float *dst, int64_t n) {
    dequant_fn f = dequant_for(type);
    const vv_type_info *ti = vv_type_get(type);
    if (!f || !ti) return VISVM_ERR_UNSUPPORTED;
    if (n < 0 || n % ti->blck != 0 || (n > 0 && (!src || !dst))) return VISVM_ERR_INVALID;
    f(src, dst, n);
    return VISVM_OK;
}

int vv_quantize_row(int type, const float *src, void *dst, int64_t n) {
    quant_fn f = quant_for(type);
    const vv_type_info *ti = vv_type_get(type);
    if (!f || !ti) return VISVM_ERR_UNSUPPORTED;
    if (n < 0 || n % ti->blck != 0 || (n > 0 && (!src || !dst))) return VISVM_ERR_INVALID;
    f(src, dst, n);
    return VISVM_OK;
}

int vv_vec_dot_type(int type) {
    switch (type) {
    case VV_TYPE_F32: return VV_TYPE_F32;
    case VV_TYPE_F16: return VV_TYPE_F16;
    case VV_TYPE_BF16: return VV_TYPE_BF16;
    case VV_TYPE_Q8_0:
    case VV_TYPE_Q4_0: return VV_TYPE_Q8_0;
    case VV_TYPE_Q4_K:
    case VV_TYPE_Q6_K: return VV_TYPE_Q8_K;
    default: return -1;
    }
}

static const vv_kernels k_ref_f32 = {vv_ref_vec_dot_f32, vv_ref_quant_f32, VV_TYPE_F32};
static const vv_kernels k_ref_f16 = {vv_ref_vec_dot_f16, vv_ref_quant_f16, VV_TYPE_F16};
static const vv_kernels k_ref_bf16 = {vv_ref_vec_dot_bf16, vv_ref_quant_bf16, VV_TYPE_BF16};
static const vv_kernels k_ref_q8_0 = {vv_ref_vec_dot_q8_0, vv_ref_quant_q8_0_act, VV_TYPE_Q8_0};
static const vv_kernels k_ref_q4_0 = {vv_ref_vec_dot_q4_0, vv_ref_quant_q8_0_act, VV_TYPE_Q8_0};
static const vv_kernels k_ref_q4_K = {vv_ref_vec_dot_q4_K, vv_ref_quant_q8_K, VV_TYPE_Q8_K};
static const vv_kernels k_ref_q6_K = {vv_ref_vec_dot_q6_K, vv_ref_quant_q8_K, VV_TYPE_Q8_K};

static const vv_kernels *kernels_scalar(int type) {
    switch (type) {
    case VV_TYPE_F32: return &k_ref_f32;
    case VV_TYPE_F16: return &k_ref_f16;
    case VV_TYPE_BF16: return &k_ref_bf16;
    case VV_TYPE_Q8_0: return &k_ref_q8_0;
    case VV_TYPE_Q4_0: return &k_ref_q4_0;
    case VV_TYPE_Q4_K: return &k_ref_q4_K;
    case VV_TYPE_Q6_K: return &k_ref_q6_K;
    default: return NULL;
    }
}

int vv_isa_best(void) {
#ifdef VISVM_HAVE_X86
    const vv_cpu_features *f = vv_cpu();
    bool avx2 = f->avx2 && f->fma && f->f16c && f->bmi2;
    if (avx2 && f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx512vnni) return VV_ISA_AVX512;
    if (avx2) return VV_ISA_AVX2;
#endif
    return VV_ISA_SCALAR;
}

const char *vv_isa_name(int isa) {
    switch (isa) {
    case VV_ISA_SCALAR: return "scalar";
    case VV_ISA_AVX2: return "avx2";
    case VV_ISA_AVX512: return "avx512";
    case VV_ISA_BEST: return vv_isa_name(vv_isa_best());
    default: return "?";
    }
}

int vv_isa_resolve(int isa) {
    int best = vv_isa_best();
    if (isa < 0 || isa >= VV_ISA_BEST) return best;
    return isa < best ? isa : best;
}

const vv_kernels *vv_get_kernels(int type, int isa) {
    const vv_kernels *k = kernels_scalar(type);
    if (!k) return NULL;
#ifdef VISVM_HAVE_X86
    isa = vv_isa_resolve(isa);
    const vv_kernels *s = NULL;
    if (isa >= VV_ISA_AVX512) s = vv_kernels_avx512(type);
    if (!s && isa >= VV_ISA_AVX2) s = vv_kernels_avx2(type);
    if (s) return s;
#else
    (void)isa;
#endif
    return k;
}

const vv_mm_ops *vv_get_mm_ops(int type, int isa) {
#ifdef VISVM_HAVE_X86
    isa = vv_isa_resolve(isa);
    const vv_mm_ops *o = NULL;
    if (isa >= VV_ISA_AVX512) o = vv_mm_ops_avx512(type);
    if (!o && isa >= VV_ISA_AVX2) o = vv_mm_ops_avx2(type);
    return o;
#else
    (void)type;
    (void)isa;
    return NULL;
#endif
}
