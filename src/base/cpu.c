// cpu.c - run-time CPU feature detection.
#include "cpu.h"

#include <stdio.h>
#include <string.h>

static vv_cpu_features g_feat;
static char g_desc[256];
static int g_done;

static void detect(void) {
    memset(&g_feat, 0, sizeof(g_feat));
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    g_feat.avx2 = __builtin_cpu_supports("avx2");
    g_feat.fma = __builtin_cpu_supports("fma");
    g_feat.bmi2 = __builtin_cpu_supports("bmi2");
    g_feat.avx512f = __builtin_cpu_supports("avx512f");
    g_feat.avx512bw = __builtin_cpu_supports("avx512bw");
    g_feat.avx512vl = __builtin_cpu_supports("avx512vl");
    g_feat.avx512dq = __builtin_cpu_supports("avx512dq");
    g_feat.avx512vnni = __builtin_cpu_supports("avx512vnni");
#if __GNUC__ >= 12
    g_feat.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    g_feat.avxvnni = __builtin_cpu_supports("avxvnni");
#endif
    // F16C: cpuid leaf 1, ecx bit 29 (no builtin name in older GCC).
    {
        unsigned a, b, c, d;
        __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
        g_feat.f16c = (c >> 29) & 1;
    }
#endif
    char *p = g_desc;
    size_t left = sizeof(g_desc);
#define ADD(flag, name)                                   \
    if (g_feat.flag) {                                    \
        int n = snprintf(p, left, "%s%s", p == g_desc ? "" : " ", name); \
        if (n > 0 && (size_t)n < left) { p += n; left -= (size_t)n; }   \
    }
    ADD(avx2, "AVX2") ADD(fma, "FMA") ADD(f16c, "F16C") ADD(avx512f, "AVX512F") ADD(avx512bw, "AVX512BW")
    ADD(avx512vnni, "AVX512VNNI") ADD(avx512bf16, "AVX512BF16") ADD(avxvnni, "AVXVNNI")
#undef ADD
    if (p == g_desc) snprintf(g_desc, sizeof(g_desc), "scalar");
}

const vv_cpu_features *vv_cpu(void) {
    if (!__atomic_load_n(&g_done, __ATOMIC_ACQUIRE)) {
        detect(); // idempotent; a benign race only repeats the same writes
        __atomic_store_n(&g_done, 1, __ATOMIC_RELEASE);
    }
    return &g_feat;
}

const char *vv_cpu_desc(void) {
    vv_cpu();
    return g_desc;
}
