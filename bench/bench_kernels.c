// bench_kernels.c - memory read bandwidth and matmul throughput at the
// TinyLlama-1.1B shapes (n_embd 2048, n_ff 5632, 22 layers, vocab 32000).
//
// Not built by CMake. Build from the repository root (x86-64), one command per line:
//   B=/tmp/vvbench; mkdir -p $B; F="-O2 -std=c11 -D_GNU_SOURCE -DVISVM_HAVE_X86=1 -Iinclude -Isrc"
//   gcc $F -mavx2 -mfma -mf16c -mbmi2 -c src/tensor/quants_avx2.c -o $B/qa2.o
//   gcc $F -mavx2 -mfma -mf16c -mbmi2 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512vnni -mavx512bf16 -c src/tensor/quants_avx512.c -o $B/qa5.o
//   gcc $F bench/bench_kernels.c src/base/base.c src/base/cpu.c src/base/threadpool.c src/tensor/types.c src/tensor/quants.c src/tensor/quants_ref.c src/tensor/matmul.c $B/qa2.o $B/qa5.o -lopenblas -lm -lpthread -o $B/bench_kernels
//   $B/bench_kernels [threads] [sections] [types] [layout]
//     sections: any of b (bandwidth), s (shapes), d (1.1B decode); default "bsd"
//     types: comma list, default q4_0,q8_0,q4_k,q6_k,f16
//     layout: raw (default) or repacked (vv_matmul_repack where the type and
//     shape have one: Q4_0 / Q8_0, F16 with n_in >= 1024 -- what models use)
//
// By default it times the raw GGUF layout; models repack their Q4_0 / Q8_0
// (and wide F16) matrices at load, which the `repacked` layout argument times,
// as bench/decode_prefix.c and `visvm bench` do. Conclusions about the models'
// kernels need that argument.
//
// Prints: streaming-read bandwidth with 1 and N threads; per type and shape,
// the time of one product for n_tok = 1, 6, 16, 512 with the weight GB/s it
// implies (weights rotated over >= 384 MB of copies so they come from DRAM;
// one copy for n_tok = 512) and its fraction of the N-thread bandwidth; then
// a whole 1.1B decode step (22 x 7 layer products + output head) per type at
// batch 1..16, with tokens/s relative to batch 1.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "tensor/matmul.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

// ---------------------------------------------------------------------------
// Bandwidth.

typedef struct {
    const uint8_t *buf;
    size_t size;
    bool pf;
    volatile uint64_t sink[64];
} bw_ctx;

#if defined(__x86_64__)
// Streaming read, optionally with software prefetch 2 KiB ahead (servers where
// one thread is latency bound read faster with it; the kernels prefetch too).
__attribute__((target("avx2"))) static uint64_t read_avx2(const uint8_t *p, size_t n, bool pf) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t i = 0; i + 128 <= n; i += 128) {
        if (pf) {
            _mm_prefetch((const char *)p + i + 2048, _MM_HINT_T0);
            _mm_prefetch((const char *)p + i + 2048 + 64, _MM_HINT_T0);
        }
        a0 = _mm256_add_epi64(a0, _mm256_load_si256((const __m256i *)(p + i)));
        a1 = _mm256_add_epi64(a1, _mm256_load_si256((const __m256i *)(p + i + 32)));
        a2 = _mm256_add_epi64(a2, _mm256_load_si256((const __m256i *)(p + i + 64)));
        a3 = _mm256_add_epi64(a3, _mm256_load_si256((const __m256i *)(p + i + 96)));
    }
    __m256i s = _mm256_add_epi64(_mm256_add_epi64(a0, a1), _mm256_add_epi64(a2, a3));
    uint64_t o[4];
    _mm256_storeu_si256((__m256i *)o, s);
    return o[0] + o[1] + o[2] + o[3];
}
#endif

static uint64_t read_plain(const uint8_t *p, size_t n) {
    const uint64_t *q = (const uint64_t *)p;
    uint64_t a = 0, b = 0;
    for (size_t i = 0; i + 2 <= n / 8; i += 2) a += q[i], b += q[i + 1];
    return a + b;
}

static void task_read(void *vc, int ith, int nth) {
    bw_ctx *c = (bw_ctx *)vc;
    int64_t i0, i1;
    vv_split((int64_t)(c->size / 4096), ith, nth, &i0, &i1); // page-aligned parts
    const uint8_t *p = c->buf + i0 * 4096;
    const size_t n = (size_t)(i1 - i0) * 4096;
#if defined(__x86_64__)
    c->sink[ith] = vv_cpu()->avx2 ? read_avx2(p, n, c->pf) : read_plain(p, n);
#else
    c->sink[ith] = read_plain(p, n);
#endif
}

// Best of 4 passes each without and with software prefetch, GB/s.
static double bandwidth(vv_pool *pool, int nth, const uint8_t *buf, size_t size) {
    double best = 0;
    for (int rep = 0; rep < 8; rep++) {
        bw_ctx c = {buf, size, rep % 2 == 1, {0}};
        double t0 = vv_time_s();
        vv_pool_run_n(pool, nth, task_read, &c);
        double dt = vv_time_s() - t0;
        best = VV_MAX(best, size / dt / 1e9);
    }
    return best;
}

// ---------------------------------------------------------------------------
// Matmul.

static void fill_weights(int type, int64_t n_in, int64_t n_out, uint8_t *dst) {
    vv_rng r;
    vv_rng_seed(&r, 1);
    float *x = malloc(sizeof(float) * n_in);
    const size_t rs = vv_row_size(type, n_in);
    // quantize 64 distinct rows, repeat them (the quantizers are slow, timings do not care)
    for (int64_t j = 0; j < n_out; j++) {
        if (j < 64) {
            for (int64_t i = 0; i < n_in; i++) x[i] = vv_rng_normal(&r) * 0.02f;
            vv_quantize_row(type, x, dst + j * rs, n_in);
        } else {
            memcpy(dst + j * rs, dst + (j % 64) * rs, rs);
        }
    }
    free(x);
}

typedef struct {
    int type;
    int64_t n_in, n_out;
    uint8_t *w; // n_copies consecutive copies
    int n_copies;
    size_t bytes; // one copy
    vv_tensor *t; // repacked layout: one tensor per copy (NULL: raw)
} mat;

static bool g_repacked; // layout argument

// Tensor view of raw weights, repacked when the layout asks for it (and the type / shape allow).
static void tensor_view(vv_pool *pool, int type, int64_t n_in, int64_t n_out, uint8_t *w, vv_tensor *t) {
    memset(t, 0, sizeof(*t));
    t->name = "w";
    t->type = type;
    t->n_dims = 2;
    t->ne[0] = n_in, t->ne[1] = n_out, t->ne[2] = t->ne[3] = 1;
    t->data = w;
    vv_tensor_set_strides(t);
    if (g_repacked && vv_matmul_repack(pool, t) != VISVM_OK) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
}
static int mm_any(vv_pool *pool, int type, const uint8_t *w, const vv_tensor *t, int64_t n_in, int64_t n_out,
                  const float *x, int64_t nt, float *y, vv_wbuf *ws) {
    if (t) return vv_matmul(pool, t, x, nt, y, n_out, ws, VV_ISA_BEST);
    return vv_matmul_raw(pool, type, w, n_in, n_out, x, nt, y, n_out, ws, VV_ISA_BEST);
}

static mat mat_new(vv_pool *pool, int type, int64_t n_in, int64_t n_out, size_t min_total) {
    mat m = {type, n_in, n_out, NULL, 1, vv_row_size(type, n_in) * (size_t)n_out, NULL};
    m.n_copies = (int)VV_MAX(1, (min_total + m.bytes - 1) / m.bytes);
    m.w = vv_aalloc(m.bytes * m.n_copies);
    if (!m.w) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    fill_weights(type, n_in, n_out, m.w);
    for (int c = 1; c < m.n_copies; c++) memcpy(m.w + c * m.bytes, m.w, m.bytes);
    if (g_repacked) {
        m.t = calloc((size_t)m.n_copies, sizeof(vv_tensor));
        for (int c = 0; m.t && c < m.n_copies; c++) tensor_view(pool, type, n_in, n_out, m.w + c * m.bytes, &m.t[c]);
    }
    return m;
}
static void mat_free(mat *m) {
    for (int c = 0; m->t && c < m->n_copies; c++) vv_matmul_repack_free(&m->t[c]);
    free(m->t);
    vv_afree(m->w);
}

// Seconds per product (median of passes over the copies).
static double time_matmul(vv_pool *pool, const mat *m, int64_t n_tok, const float *x, float *y, vv_wbuf *ws,
                          double budget_s) {
    double times[64];
    int n = 0;
    double t_start = vv_time_s();
    // warm-up pass
    for (int c = 0; c < m->n_copies; c++)
        mm_any(pool, m->type, m->w + c * m->bytes, m->t ? &m->t[c] : NULL, m->n_in, m->n_out, x, n_tok, y, ws);
    while (n < 64 && (n < 3 || vv_time_s() - t_start < budget_s)) {
        double t0 = vv_time_s();
        for (int c = 0; c < m->n_copies; c++)
            mm_any(pool, m->type, m->w + c * m->bytes, m->t ? &m->t[c] : NULL, m->n_in, m->n_out, x, n_tok, y, ws);
        times[n++] = (vv_time_s() - t0) / m->n_copies;
    }
    for (int i = 1; i < n; i++) // insertion sort for the median
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            double t = times[j];
            times[j] = times[j - 1];
            times[j - 1] = t;
        }
    return times[n / 2];
}

static void noop(void *ctx, int ith, int nth) {
    (void)ctx, (void)ith, (void)nth;
}

int main(int argc, char **argv) {
    const int nth = argc > 1 ? atoi(argv[1]) : 2;
    const char *sections = argc > 2 ? argv[2] : "bsd";
    const char *type_list = argc > 3 ? argv[3] : "q4_0,q8_0,q4_k,q6_k,f16";
    g_repacked = argc > 4 && strcmp(argv[4], "repacked") == 0;
    if (argc > 4 && !g_repacked && strcmp(argv[4], "raw") != 0) {
        fprintf(stderr, "layout: raw or repacked\n");
        return 2;
    }
    int types[16], n_types = 0;
    {
        char buf[256];
        snprintf(buf, sizeof(buf), "%s", type_list);
        for (char *tok = strtok(buf, ","); tok && n_types < 16; tok = strtok(NULL, ",")) {
            const int t = vv_type_from_name(tok);
            if (t < 0 || !vv_get_kernels(t, VV_ISA_BEST)) {
                fprintf(stderr, "unknown or unsupported type '%s'\n", tok);
                return 2;
            }
            types[n_types++] = t;
        }
    }
    vv_pool *pool = vv_pool_create(nth);
    printf("cpu: %s; kernels: %s; threads: %d\n", vv_cpu_desc(), vv_isa_name(VV_ISA_BEST), vv_pool_size(pool));

    // bandwidth over 1 GiB (first touched by every thread's part); always measured, the
    // other sections report fractions of it
    double bwn = 0;
    {
        const size_t bsz = (size_t)1 << 30;
        uint8_t *buf = vv_aalloc(bsz);
        if (!buf) return 1;
        memset(buf, 1, bsz);
        const double bw1 = bandwidth(pool, 1, buf, bsz);
        bwn = bandwidth(pool, nth, buf, bsz);
        vv_afree(buf);
        printf("memory read bandwidth (streaming read of 1 GiB, best of plain / prefetched): 1 thread %.1f GB/s, "
               "%d threads %.1f GB/s\n",
               bw1, nth, bwn);
    }
    {
        const int reps = 20000;
        double t0 = vv_time_s();
        for (int i = 0; i < reps; i++) vv_pool_run(pool, noop, NULL);
        printf("pool dispatch: %.2f us per parallel section\n", (vv_time_s() - t0) / reps * 1e6);
    }

    const int64_t shapes[3][2] = {{2048, 2048}, {2048, 5632}, {5632, 2048}}; // {n_in, n_out}
    const int64_t ntoks[4] = {1, 6, 16, 512};
    float *x = malloc(sizeof(float) * 32000 * 512), *y = malloc(sizeof(float) * 32000 * 512);
    vv_rng r;
    vv_rng_seed(&r, 3);
    for (int i = 0; i < 5632 * 512; i++) x[i] = vv_rng_normal(&r);
    vv_wbuf ws = {0};

    if (strchr(sections, 's'))
        printf("\n%-5s %-11s %5s %10s %9s %7s %9s %9s\n", "type", "n_in x out", "n_tok", "ms/call", "wGB/s", "of bw",
               "tok/s", "GFLOP/s");
    for (int ti = 0; strchr(sections, 's') && ti < n_types; ti++) {
        for (int si = 0; si < 3; si++) {
            mat m = mat_new(pool, types[ti], shapes[si][0], shapes[si][1], (size_t)384 << 20);
            double t1 = 0;
            for (int ni = 0; ni < 4; ni++) {
                const int64_t nt = ntoks[ni];
                mat m1 = m;
                if (nt >= 512) m1.n_copies = 1; // compute bound: weights may stay in cache
                const double t = time_matmul(pool, &m1, nt, x, y, &ws, nt >= 512 ? 0.6 : 0.3);
                if (nt == 1) t1 = t;
                const double gbs = m.bytes / t / 1e9;
                printf("%-5s %4lldx%-6lld %5lld %10.3f %9.1f %6.0f%% %9.0f %9.1f", vv_type_name(m.type),
                       (long long)m.n_in, (long long)m.n_out, (long long)nt, t * 1e3, gbs, 100 * gbs / bwn, nt / t,
                       2.0 * m.n_in * m.n_out * nt / t / 1e9);
                if (nt > 1) printf("   x%.1f tok/s vs n_tok=1", (nt / t) / (1 / t1));
                printf("\n");
            }
            mat_free(&m);
        }
    }

    // whole decode step of a 1.1B model: 22 x (q, k, v, o, gate, up, down) + output
    for (int di = 0; strchr(sections, 'd') && di < n_types; di++) {
        const int type = types[di];
        const int64_t L = 22, E = 2048, F = 5632, KV = 256, V = 32000;
        const int64_t shp[8][2] = {{E, E}, {E, KV}, {E, KV}, {E, E}, {E, F}, {E, F}, {F, E}, {E, V}};
        uint8_t *proto[8];
        size_t sz[8], total = 0;
        for (int k = 0; k < 8; k++) {
            sz[k] = vv_row_size(type, shp[k][0]) * (size_t)shp[k][1];
            proto[k] = vv_aalloc(sz[k]);
            fill_weights(type, shp[k][0], shp[k][1], proto[k]);
            total += k < 7 ? sz[k] * L : sz[k];
        }
        uint8_t *model = vv_aalloc(total);
        if (!model) return 1;
        uint8_t *ptr[23][8];
        static vv_tensor tv[23][8];
        size_t off = 0;
        for (int l = 0; l < L; l++)
            for (int k = 0; k < 7; k++) {
                ptr[l][k] = model + off;
                memcpy(model + off, proto[k], sz[k]);
                tensor_view(pool, type, shp[k][0], shp[k][1], ptr[l][k], &tv[l][k]);
                off += sz[k];
            }
        ptr[0][7] = model + off;
        memcpy(model + off, proto[7], sz[7]);
        tensor_view(pool, type, E, V, ptr[0][7], &tv[0][7]);
        printf("\n1.1B decode step, %s weights (%.0f MB, %s layout):\n", vv_type_name(type), total / 1e6,
               g_repacked ? "repacked" : "raw");
        const int64_t batches[6] = {1, 2, 4, 6, 8, 16};
        double tok1 = 0;
        for (int bi = 0; bi < 6; bi++) {
            const int64_t nt = batches[bi];
            double best = 1e30;
            for (int rep = 0; rep < 6; rep++) {
                double t0 = vv_time_s();
                for (int l = 0; l < L; l++)
                    for (int k = 0; k < 7; k++)
                        mm_any(pool, type, ptr[l][k], g_repacked ? &tv[l][k] : NULL, shp[k][0], shp[k][1], x, nt, y,
                               &ws);
                mm_any(pool, type, ptr[0][7], g_repacked ? &tv[0][7] : NULL, E, V, x, nt, y, &ws);
                best = VV_MIN(best, vv_time_s() - t0);
            }
            if (nt == 1) tok1 = 1 / best;
            printf("  batch %2lld: %7.1f ms = %6.1f tok/s (x%.1f vs batch 1), weights at %5.1f GB/s = %3.0f%% of "
                   "%d-thread bandwidth\n",
                   (long long)nt, best * 1e3, nt / best, nt / best / tok1, total / best / 1e9,
                   100 * total / best / 1e9 / bwn, nth);
        }
        for (int l = 0; l < L; l++)
            for (int k = 0; k < 8; k++)
                if (k < 7 || l == 0) vv_matmul_repack_free(&tv[l][k]);
        vv_afree(model);
        for (int k = 0; k < 8; k++) vv_afree(proto[k]);
    }
    vv_wbuf_free(&ws);
    free(x), free(y);
    vv_pool_free(pool);
    return 0;
}
