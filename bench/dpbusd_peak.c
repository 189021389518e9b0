// dpbusd_peak.c - what one core sustains on vpdpbusd (512-bit) with every
// operand in registers: 24, 8 and 4 independent accumulator chains (the last
// shows the latency), and the clock from a chain of 1-cycle adds. The ceiling
// the Q8_0 / Q4_0 kernels are compared with in the README ("Speed").
//
// Not built by CMake (x86-64 with AVX-512 VNNI). From the repository root:
//   cc -O2 -mavx512f -mavx512vnni bench/dpbusd_peak.c -o /tmp/dpbusd_peak && /tmp/dpbusd_peak
#include <stdio.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

#define D(n) "vpdpbusd %%zmm30, %%zmm31, %%zmm" #n "\n"
#define C8 "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7"

int main(void) {
    const long n = 100000000;
    __asm__ volatile("vpxord %%zmm30, %%zmm30, %%zmm30\n vpxord %%zmm31, %%zmm31, %%zmm31\n" ::: "xmm30", "xmm31");
    double t0 = now();
    for (long i = 0; i < n; i++)
        __asm__ volatile(D(0) D(1) D(2) D(3) D(4) D(5) D(6) D(7) D(8) D(9) D(10) D(11) D(12) D(13) D(14) D(15) D(16)
                             D(17) D(18) D(19) D(20) D(21) D(22) D(23) ::: C8, "xmm8", "xmm9", "xmm10", "xmm11",
                         "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21",
                         "xmm22", "xmm23");
    const double g24 = 24.0 * n / (now() - t0) / 1e9;
    t0 = now();
    for (long i = 0; i < n; i++) __asm__ volatile(D(0) D(1) D(2) D(3) D(4) D(5) D(6) D(7) ::: C8);
    const double g8 = 8.0 * n / (now() - t0) / 1e9;
    t0 = now();
    for (long i = 0; i < n; i++) __asm__ volatile(D(0) D(1) D(2) D(3) ::: "xmm0", "xmm1", "xmm2", "xmm3");
    const double g4 = 4.0 * n / (now() - t0) / 1e9;
    long c = 0;
    t0 = now();
    for (long i = 0; i < n; i++) __asm__ volatile("add $1, %0\n add $1, %0\n add $1, %0\n add $1, %0\n" : "+r"(c));
    const double ghz = 4.0 * n / (now() - t0) / 1e9;
    printf("vpdpbusd zmm, one core: %.2f G/s (24 chains), %.2f (8), %.2f (4); clock ~%.2f GHz: %.2f per cycle, "
           "latency ~%.1f cycles\n",
           g24, g8, g4, ghz, g24 / ghz, 4.0 / (g4 / ghz));
    return 0;
}
