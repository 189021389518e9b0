// test_base.c - foundation: fp16/bf16 conversion (exhaustive against known
// bit patterns), atomic file writes, the thread pool, RNG determinism, the
// paged KV cache bookkeeping and the sampler.
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/threadpool.h"
#include "gen/sampler.h"
#include "model/kv.h"
#include "tcheck.h"

typedef struct { long long *acc; int n_calls; int nth_seen; } pool_task;
static void pool_fn(void *ctx, int ith, int nth) {
    pool_task *t = ctx;
    __atomic_add_fetch(t->acc, (long long)(ith + 1), __ATOMIC_RELAXED);
    __atomic_add_fetch(&t->n_calls, 1, __ATOMIC_RELAXED);
    t->nth_seen = nth;
}

int main(void) {
    // aligned allocations: 64 bytes; streamed buffers from 2 MiB up on 2 MiB (huge-page) boundaries
    {
        const size_t sizes[4] = {1, 4096, (size_t)2 << 20, ((size_t)5 << 20) + 3};
        for (int i = 0; i < 4; i++) {
            unsigned char *a = vv_aalloc(sizes[i]), *h = vv_aalloc_huge(sizes[i]);
            CHECK(a && h && ((uintptr_t)a % 64) == 0 && ((uintptr_t)h % 64) == 0);
            if (sizes[i] >= ((size_t)2 << 20)) CHECK(((uintptr_t)h % ((size_t)2 << 20)) == 0);
            if (h) {
                memset(h, 0xA5, sizes[i]); // writable to the last byte
                CHECK(h[sizes[i] - 1] == 0xA5);
            }
            vv_afree(a);
            vv_afree(h);
        }
        vv_afree(NULL);
    }
    // fp16: round trip of every finite half, known values, rounding to nearest even
    {
        int bad = 0;
        for (uint32_t h = 0; h < 65536; h++) {
            if ((h & 0x7c00) == 0x7c00) continue; // inf/nan
            if (vv_fp32_to_fp16(vv_fp16_to_fp32((uint16_t)h)) != h) bad++;
        }
        CHECKF(bad == 0, "%d halves did not round trip", bad);
        CHECK(vv_fp32_to_fp16(1.0f) == 0x3c00);
        CHECK(vv_fp32_to_fp16(-2.0f) == 0xc000);
        CHECK(vv_fp32_to_fp16(65504.0f) == 0x7bff);
        CHECK(vv_fp32_to_fp16(65520.0f) == 0x7c00);  // rounds to inf
        CHECK(vv_fp32_to_fp16(1.0f + 1.0f / 2048) == 0x3c00); // tie -> even
        CHECK(vv_fp32_to_fp16(1.0f + 3.0f / 2048) == 0x3c02); // tie -> even (up)
        CHECK(vv_fp32_to_fp16(5.9604645e-08f) == 0x0001);     // smallest subnormal
        CHECK(vv_fp16_to_fp32(0x0001) == 5.9604644775390625e-08f);
        CHECK(isnan(vv_fp16_to_fp32(vv_fp32_to_fp16(NAN))));
        CHECK(vv_fp32_to_bf16(1.0f) == 0x3f80);
        CHECK(vv_bf16_to_fp32(0x4049) == 3.140625f);
        CHECK(vv_fp32_to_bf16(1.0f + 1.0f / 256) == 0x3f80); // tie -> even
    }
    // atomic writes: content replaced whole, no temp file left behind
    {
        char path[256];
        snprintf(path, sizeof(path), "/tmp/visvm_test_base_%d.txt", (int)getpid());
        vv_error e = {0};
        CHECK(vv_write_file_atomic(path, "first", 5, &e) == VISVM_OK);
        CHECK(vv_write_file_atomic(path, "second!", 7, &e) == VISVM_OK);
        char *d = NULL;
        size_t n = 0;
        CHECK(vv_read_file(path, &d, &n, &e) == VISVM_OK && n == 7 && !memcmp(d, "second!", 7));
        free(d);
        char tmp[300];
        snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid());
        CHECK(!vv_file_exists(tmp));
        unlink(path);
        CHECK(vv_write_file_atomic("/nonexistent-dir/x", "a", 1, &e) == VISVM_ERR_IO);
        CHECK(strstr(e.msg, "/nonexistent-dir/x") != NULL);
        CHECK(vv_read_file("/nonexistent-file", &d, &n, &e) == VISVM_ERR_IO);
    }
    // thread pool: every thread runs each section exactly once; thousands of sections
    {
        for (int nt = 1; nt <= 4; nt++) {
            vv_pool *p = vv_pool_create(nt);
            CHECK(vv_pool_size(p) == nt);
            long long acc = 0;
            pool_task t = {&acc, 0, 0};
            for (int it = 0; it < 2000; it++) vv_pool_run(p, pool_fn, &t);
            CHECK(t.n_calls == 2000 * nt);
            CHECK(acc == 2000LL * nt * (nt + 1) / 2);
            acc = 0;
            t.n_calls = 0;
            vv_pool_run_n(p, 2, pool_fn, &t);
            CHECK(t.n_calls == (nt >= 2 ? 2 : 1));
            vv_pool_free(p);
        }
        long long acc = 0;
        pool_task t = {&acc, 0, 0};
        vv_pool_run(NULL, pool_fn, &t);
        CHECK(t.n_calls == 1 && t.nth_seen == 1);
        int64_t a, b, total = 0;
        for (int i = 0; i < 3; i++) {
            vv_split(10, i, 3, &a, &b);
            total += b - a;
        }
        CHECK(total == 10);
    }
    // RNG determinism and range
    {
        vv_rng r1, r2;
        vv_rng_seed(&r1, 7);
        vv_rng_seed(&r2, 7);
        int same = 1;
        for (int i = 0; i < 100; i++) same &= vv_rng_u64(&r1) == vv_rng_u64(&r2);
        CHECK(same);
        double s = 0, s2 = 0;
        for (int i = 0; i < 20000; i++) {
            double u = vv_rng_uniform(&r1);
            CHECK(u >= 0 && u < 1);
            float z = vv_rng_normal(&r1);
            s += z;
            s2 += (double)z * z;
        }
        CHECK_NEAR(s / 20000, 0, 0.05);
        CHECK_NEAR(s2 / 20000, 1, 0.05);
    }
    // KV cache: forks share blocks, copy-on-write of a shared partial block, release frees
    {
        vv_kv kv;
        vv_error e = {0};
        CHECK(vv_kv_init(&kv, 2, 4, 128, 8, &e) == VISVM_OK);
        vv_kv_seq a = {0}, b = {0};
        CHECK(vv_kv_seq_reserve(&kv, &a, 11, &e) == VISVM_OK);
        for (int p = 0; p < 11; p++) vv_kv_k(&kv, &a, 1, p)[0] = (float)p;
        a.len = 11;
        CHECK(vv_kv_blocks_in_use(&kv) == 2);
        CHECK(vv_kv_seq_contiguous(&a, 11, 8));
        CHECK(vv_kv_seq_fork(&kv, &a, &b, &e) == VISVM_OK);
        CHECK(vv_kv_blocks_in_use(&kv) == 2);
        CHECK(vv_kv_seq_reserve(&kv, &b, 1, &e) == VISVM_OK); // last block (3 of 8 used) is copied
        CHECK(vv_kv_blocks_in_use(&kv) == 3);
        vv_kv_k(&kv, &b, 1, 11)[0] = 100;
        b.len = 12;
        CHECK(vv_kv_k(&kv, &b, 1, 10)[0] == 10.0f); // copied content
        CHECK(vv_kv_k(&kv, &b, 1, 3) == vv_kv_k(&kv, &a, 1, 3)); // full block still shared
        CHECK(vv_kv_k(&kv, &b, 1, 10) != vv_kv_k(&kv, &a, 1, 10));
        CHECK(vv_kv_seq_truncate(&kv, &b, 5) == VISVM_OK);
        CHECK(vv_kv_blocks_in_use(&kv) == 2);
        vv_kv_seq_release(&kv, &a);
        vv_kv_seq_release(&kv, &b);
        CHECK(vv_kv_blocks_in_use(&kv) == 0);
        vv_kv_seq c = {0};
        CHECK(vv_kv_seq_reserve(&kv, &c, 200, &e) == VISVM_ERR_RANGE);
        vv_kv_seq_release(&kv, &c);
        vv_kv_free(&kv);
    }
    // sampler: greedy, determinism, top-k/top-p support, distribution
    {
        vv_sampler s;
        CHECK(vv_sampler_init(&s, 5) == VISVM_OK);
        float lg[5] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f};
        CHECK(vv_argmax(lg, 5) == 1); // lowest id on ties
        CHECK_NEAR(vv_logit_margin(lg, 5), 0, 0);
        vv_rng r;
        vv_rng_seed(&r, 1);
        vv_sampler_params greedy = {0, 0, 1};
        CHECK(vv_sample(&s, lg, &greedy, &r) == 1);
        vv_sampler_params k1 = {1.0f, 1, 1.0f};
        for (int i = 0; i < 50; i++) CHECK(vv_sample(&s, lg, &k1, &r) == 1);
        vv_sampler_params k3 = {1.0f, 3, 1.0f};
        for (int i = 0; i < 500; i++) {
            int t = vv_sample(&s, lg, &k3, &r);
            CHECK(t == 1 || t == 2 || t == 3);
        }
        // top-p 0.5: the two tied 3.0 logits hold 2*e^3/(2e^3+e^2+e+e^-1) = 0.78 >= 0.5 after the first (0.39 < 0.5)
        vv_sampler_params p5 = {1.0f, 0, 0.5f};
        for (int i = 0; i < 500; i++) {
            int t = vv_sample(&s, lg, &p5, &r);
            CHECK(t == 1 || t == 3);
        }
        // frequencies at T = 1 and T = 2 follow softmax(logits / T)
        for (int ti = 1; ti <= 2; ti++) {
            vv_sampler_params pt = {(float)ti, 0, 1.0f};
            int cnt[5] = {0};
            const int N = 40000;
            for (int i = 0; i < N; i++) cnt[vv_sample(&s, lg, &pt, &r)]++;
            double z = 0;
            for (int i = 0; i < 5; i++) z += exp(lg[i] / ti);
            for (int i = 0; i < 5; i++) {
                double p = exp(lg[i] / ti) / z, sd = sqrt(p * (1 - p) / N);
                CHECKF(fabs((double)cnt[i] / N - p) < 5 * sd + 1e-3, "T=%d token %d: %g vs %g", ti, i, (double)cnt[i] / N, p);
            }
        }
        vv_rng r1, r2;
        vv_rng_seed(&r1, 9);
        vv_rng_seed(&r2, 9);
        vv_sampler_params pt = {0.8f, 40, 0.9f};
        int same = 1;
        for (int i = 0; i < 100; i++) same &= vv_sample(&s, lg, &pt, &r1) == vv_sample(&s, lg, &pt, &r2);
        CHECK(same);
        vv_sampler_free(&s);
    }
    // top-p over a large vocabulary (the sampler sorts only the head, by radix sort when it
    // is long) draws exactly what sorting everything does: a plain reference (full sort by
    // key, ties by id; softmax mass; smallest prefix reaching top_p; draw within it) with the
    // same random numbers, over peaked and flat logits with ties and signed zeros
    {
        const int n = 5000;
        vv_sampler s;
        CHECK(vv_sampler_init(&s, n) == VISVM_OK);
        float *lg = malloc((size_t)n * sizeof(float)), *z = malloc((size_t)n * sizeof(float));
        int *ord = malloc((size_t)n * sizeof(int));
        vv_rng g;
        vv_rng_seed(&g, 77);
        int bad = 0, draws = 0;
        for (int dist = 0; dist < 3; dist++) {
            for (int i = 0; i < n; i++) {
                const double u = vv_rng_uniform(&g);
                lg[i] = dist == 0 ? (float)(u * 4 - 2) : dist == 1 ? (float)(u * 40 - 30) : (float)((int)(u * 6) - 3) * 0.5f;
            }
            lg[10] = 0.0f, lg[11] = -0.0f, lg[12] = 0.0f; // equal keys of both signs
            if (dist == 1) lg[4321] = 14.0f, lg[7] = 13.5f;
            const float temps[3] = {0.1f, 0.7f, 2.0f}, tops[3] = {0.5f, 0.9f, 0.99f};
            for (int ti = 0; ti < 3; ti++)
                for (int pi = 0; pi < 3; pi++) {
                    vv_sampler_params sp = {temps[ti], 0, tops[pi]};
                    vv_rng ra, rb;
                    vv_rng_seed(&ra, 100 + ti * 3 + pi);
                    vv_rng_seed(&rb, 100 + ti * 3 + pi);
                    for (int i = 0; i < n; i++) {
                        z[i] = lg[i] / temps[ti];
                        ord[i] = i;
                    }
                    // reference order: bottom-up merge sort, key descending, ties by id
                    for (int w = 1; w < n; w *= 2) {
                        int *tmp = malloc((size_t)n * sizeof(int));
                        for (int i = 0; i < n; i += 2 * w) {
                            int a = i, am = i + w < n ? i + w : n, b = am, bm = i + 2 * w < n ? i + 2 * w : n, o = i;
                            while (a < am && b < bm)
                                tmp[o++] = (z[ord[a]] > z[ord[b]] || (z[ord[a]] == z[ord[b]] && ord[a] < ord[b])) ? ord[a++] : ord[b++];
                            while (a < am) tmp[o++] = ord[a++];
                            while (b < bm) tmp[o++] = ord[b++];
                        }
                        memcpy(ord, tmp, (size_t)n * sizeof(int));
                        free(tmp);
                    }
                    const float mx = z[ord[0]];
                    double sum = 0;
                    for (int i = 0; i < n; i++) sum += exp((double)(z[ord[i]] - mx));
                    int m = n;
                    double cum = 0;
                    for (int i = 0; i < n; i++) {
                        cum += exp((double)(z[ord[i]] - mx)) / sum;
                        if (cum >= tops[pi]) {
                            m = i + 1;
                            break;
                        }
                    }
                    double sum2 = 0;
                    for (int i = 0; i < m; i++) sum2 += exp((double)(z[ord[i]] - mx));
                    for (int d = 0; d < 40; d++) {
                        double r = vv_rng_uniform(&rb) * sum2, acc = 0;
                        int want = ord[m - 1];
                        for (int i = 0; i < m; i++) {
                            acc += exp((double)(z[ord[i]] - mx));
                            if (r < acc) {
                                want = ord[i];
                                break;
                            }
                        }
                        bad += vv_sample(&s, lg, &sp, &ra) != want;
                        draws++;
                    }
                }
        }
        CHECKF(bad == 0, "%d of %d top-p draws differ from the full-sort reference", bad, draws);
        free(lg);
        free(z);
        free(ord);
        vv_sampler_free(&s);
    }
    return tc_result("test_base");
}
