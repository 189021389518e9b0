// cpu.h - run-time CPU feature detection (x86: cpuid + xgetbv via GCC builtins).
#ifndef VV_CPU_H
#define VV_CPU_H

#include "base.h"

typedef struct vv_cpu_features {
    bool avx2, fma, f16c, bmi2;
    bool avx512f, avx512bw, avx512vl, avx512dq, avx512vnni, avx512bf16;
    bool avxvnni;
} vv_cpu_features;

const vv_cpu_features *vv_cpu(void);
// A short string like "AVX2 FMA F16C AVX512F AVX512BW AVX512VNNI".
const char *vv_cpu_desc(void);

#endif
