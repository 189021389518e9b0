// decode_prefix.c - cost of a multi-sequence decode step over a shared prefix:
// prefills PREFIX tokens on one sequence, forks it NB times (shared KV blocks,
// as a search's candidates) and times STEPS steps that decode one token per
// sequence. Comparing PREFIX 600 (an image's tokens) with 20 separates the
// attention over the prefix from the weight products.
//
// Not built by CMake. From the repository root, after a Release build:
//   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -Isrc bench/decode_prefix.c build/libvisvm.a
//      $(pkg-config --libs libcjson) -lstb -lopenblas -lm -lpthread -o /tmp/decode_prefix
//   /tmp/decode_prefix ~/.cache/visvm/bench/random-1.1b-q8_0.gguf NB PREFIX STEPS   (made by visvm bench)
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"
#include "base/threadpool.h"
#include "model/llama.h"

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: decode_prefix MODEL.gguf NB PREFIX STEPS\n");
        return 2;
    }
    const int nb = atoi(argv[2]), np = atoi(argv[3]), steps = atoi(argv[4]);
    if (nb < 1 || nb > 16 || np < 1 || np > 4096 || steps < 1 || steps > 1000) {
        fprintf(stderr, "decode_prefix: NB 1..16, PREFIX 1..4096, STEPS 1..1000\n");
        return 2;
    }
    vv_error e = {0};
    vv_llama *m = NULL;
    if (vv_llama_load_file(argv[1], &m, &e)) {
        fprintf(stderr, "decode_prefix: %s\n", e.msg);
        return 1;
    }
    vv_pool *pool = vv_pool_create(0);
    vv_llama_state *st = NULL;
    vv_llama_state_params sp = {np + 64 + nb * (steps + 64), nb + 1, 512, pool};
    int32_t *t = malloc(sizeof(int32_t) * (size_t)np);
    float *logits = malloc(sizeof(float) * (size_t)m->hp.n_vocab * 16);
    if (!t || !logits || vv_llama_state_create(m, &sp, &st, &e)) {
        fprintf(stderr, "decode_prefix: %s\n", e.msg[0] ? e.msg : "out of memory");
        return 1;
    }
    for (int i = 0; i < np; i++) t[i] = 100 + i % 1000;
    const double t0 = vv_time_s();
    int rc = vv_llama_decode_seq(st, 0, t, NULL, np, false, logits, &e);
    const double t1 = vv_time_s();
    for (int s = 1; s <= nb && !rc; s++) rc = vv_llama_seq_fork(st, 0, s, &e);
    int32_t toks[16];
    int seqs[16], lens[16];
    for (int j = 0; j < nb; j++) seqs[j] = 1 + j, lens[j] = 1, toks[j] = 200 + j;
    const double t2 = vv_time_s();
    for (int k = 0; k < steps && !rc; k++) {
        vv_llama_batch b = {nb, toks, NULL, nb, seqs, lens, NULL};
        rc = vv_llama_decode(st, &b, logits, NULL, &e);
    }
    const double t3 = vv_time_s();
    if (rc) {
        fprintf(stderr, "decode_prefix: %s\n", e.msg);
        return 1;
    }
    printf("%d threads; prefill %d tokens: %.2f s; %d sequences x %d steps: %.1f ms/step, %.1f tok/s\n",
           vv_pool_size(pool), np, t1 - t0, nb, steps, (t3 - t2) / steps * 1e3, nb * steps / (t3 - t2));
    vv_llama_state_free(st);
    vv_pool_free(pool);
    vv_llama_free(m);
    free(t);
    free(logits);
    return 0;
}
