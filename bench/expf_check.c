// expf_check.c - every float through visvm's expf (ops.c vv_expf_ref, and its
// AVX2 / AVX-512 versions where the CPU has them) against the C library's
// expf: counts the inputs whose bits differ (NaNs compare as NaNs). The
// activations' claim that they match libm here rests on this run; 2^32
// inputs, about 1 minute.
//
// Not built by CMake. From the repository root, after a Release build:
//   cc -O2 -std=c11 -D_GNU_SOURCE -DVISVM_HAVE_X86=1 -Iinclude -Isrc -fno-builtin bench/expf_check.c build/libvisvm.a
//      $(pkg-config --libs libcjson) -lstb -lopenblas -lm -lpthread -o /tmp/expf_check && /tmp/expf_check
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "base/cpu.h"
#include "nn/ops_simd.h"

static int same(float a, float b) {
    uint32_t ua, ub;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    return ua == ub || (isnan(a) && isnan(b));
}

int main(void) {
    enum { CH = 1 << 16 };
    static float x[CH], lib[CH], v2[CH], v5[CH];
    const vv_cpu_features *f = vv_cpu();
    const int has2 = f->avx2 && f->fma, has5 = f->avx512f;
    uint64_t bad_ref = 0, bad2 = 0, bad5 = 0;
    for (uint64_t base = 0; base < (1ull << 32); base += CH) {
        for (int i = 0; i < CH; i++) {
            const uint32_t u = (uint32_t)(base + (uint64_t)i);
            memcpy(&x[i], &u, 4);
            lib[i] = expf(x[i]);
        }
        memcpy(v2, x, sizeof(x));
        memcpy(v5, x, sizeof(x));
        if (has2) vv_expf_avx2(v2, CH);
        if (has5) vv_expf_avx512(v5, CH);
        for (int i = 0; i < CH; i++) {
            const float r = vv_expf_ref(x[i]);
            if (!same(r, lib[i]) && bad_ref++ < 10) printf("ref   x=%a libm %a visvm %a\n", x[i], lib[i], r);
            if (has2 && !same(v2[i], r) && bad2++ < 10) printf("avx2  x=%a ref %a simd %a\n", x[i], r, v2[i]);
            if (has5 && !same(v5[i], r) && bad5++ < 10) printf("avx512 x=%a ref %a simd %a\n", x[i], r, v5[i]);
        }
    }
    printf("2^32 floats: vv_expf_ref differs from libm expf on %llu; AVX2 from the reference on %llu%s; "
           "AVX-512 on %llu%s\n", (unsigned long long)bad_ref, (unsigned long long)bad2, has2 ? "" : " (not run)",
           (unsigned long long)bad5, has5 ? "" : " (not run)");
    return bad_ref || bad2 || bad5;
}
