// sampler.c - greedy / temperature / top-k / top-p sampling.
#include "sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int vv_argmax(const float *logits, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

float vv_logit_margin(const float *logits, int n) {
    if (n < 2) return INFINITY;
    float a = -INFINITY, b = -INFINITY;
    for (int i = 0; i < n; i++) {
        if (logits[i] > a) { b = a; a = logits[i]; }
        else if (logits[i] > b) b = logits[i];
    }
    return a - b;
}

int vv_sampler_init(vv_sampler *s, int n_vocab) {
    memset(s, 0, sizeof(*s));
    if (n_vocab <= 0) return VISVM_ERR_INVALID;
    s->p = malloc((size_t)n_vocab * sizeof(float));
    s->idx = malloc((size_t)n_vocab * sizeof(int));
    if (!s->p || !s->idx) {
        vv_sampler_free(s);
        return VISVM_ERR_NOMEM;
    }
    s->n = n_vocab;
    return VISVM_OK;
}

void vv_sampler_free(vv_sampler *s) {
    if (!s) return;
    free(s->p);
    free(s->idx);
    memset(s, 0, sizeof(*s));
}

// Orders idx so that its first k entries are the k largest keys, descending
// (ties: lower id first). Selection for small k, merge sort otherwise.
static void top_sorted(int *idx, int n, int k, const float *key) {
    if (k > 64) {
        int *tmp = malloc((size_t)n * sizeof(int));
        if (tmp) {
            for (int w = 1; w < n; w *= 2) {
                for (int i = 0; i < n; i += 2 * w) {
                    int a = i, am = VV_MIN(i + w, n), b = am, bm = VV_MIN(i + 2 * w, n), o = i;
                    while (a < am && b < bm) {
                        float ka = key[idx[a]], kb = key[idx[b]];
                        if (ka > kb || (ka == kb && idx[a] < idx[b])) tmp[o++] = idx[a++];
                        else tmp[o++] = idx[b++];
                    }
                    while (a < am) tmp[o++] = idx[a++];
                    while (b < bm) tmp[o++] = idx[b++];
                }
                memcpy(idx, tmp, (size_t)n * sizeof(int));
            }
            free(tmp);
            return;
        }
    }
    for (int i = 0; i < k; i++) { // selection (also the fallback when malloc fails)
        int best = i;
        for (int j = i + 1; j < n; j++) {
            float kj = key[idx[j]], kb = key[idx[best]];
            if (kj > kb || (kj == kb && idx[j] < idx[best])) best = j;
        }
        int t = idx[i];
        idx[i] = idx[best];
        idx[best] = t;
    }
}

int vv_sample(vv_sampler *s, const float *logits, const vv_sampler_params *p, vv_rng *rng) {
    const int n = s->n;
    if (!p || !(p->temperature > 0)) return vv_argmax(logits, n);
    float *z = s->p;
    int *idx = s->idx;
    for (int i = 0; i < n; i++) {
        z[i] = logits[i] / p->temperature;
        idx[i] = i;
    }
    int k = (p->top_k > 0 && p->top_k < n) ? p->top_k : n;
    bool need_sorted = k < n || (p->top_p > 0 && p->top_p < 1);
    if (need_sorted) top_sorted(idx, n, k, z);
    // softmax over the k candidates (idx[0..k) when sorted, else all)
    float mx = -INFINITY;
    for (int i = 0; i < k; i++) mx = fmaxf(mx, z[idx[i]]);
    double sum = 0;
    for (int i = 0; i < k; i++) sum += exp((double)(z[idx[i]] - mx));
    int m = k;
    if (need_sorted && p->top_p > 0 && p->top_p < 1) {
        // keep the smallest prefix whose mass reaches top_p (at least one token)
        double cum = 0;
        for (int i = 0; i < k; i++) {
            cum += exp((double)(z[idx[i]] - mx)) / sum;
            if (cum >= p->top_p) {
                m = i + 1;
                break;
            }
        }
        double sum2 = 0;
        for (int i = 0; i < m; i++) sum2 += exp((double)(z[idx[i]] - mx));
        sum = sum2;
    }
    double r = vv_rng_uniform(rng) * sum, acc = 0;
    for (int i = 0; i < m; i++) {
        acc += exp((double)(z[idx[i]] - mx));
        if (r < acc) return idx[i];
    }
    return idx[m - 1];
}
