// vit_classify.c - the trainer's ViT path on a controlled task, to compare with
// bench/vit_classify.py (PyTorch, same model, data and schedule): single large
// clean objects, predict their class (28-way) and colour (8-way) from the
// mean-pooled tower output. Run by bench/vit_twin.sh; a diagnostic, not a test.
//
//   vit_classify dump FILE N_TRAIN N_VAL        renders the data set (normalised HWC floats)
//   vit_classify train FILE STEPS BATCH LR THREADS
//
// FILE: int32 n, int32 n_train, then per image int32 class, int32 colour, float [64, 64, 3].
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/data.h"
#include "train/layers.h"
#include "train/vit.h"
#include "world/world.h"

enum { S = 64, PIX = S * S * 3, D = 128, VAL_MAX = 500 };

static vv_world_params world(void) { // one large, fully opaque, noise-free object
    vv_world_params wp = vv_world_default_params();
    wp.max_objects = 1;
    if (!getenv("WORLD_SIZES")) { // else the world's default small/large icons (10 and 18 px)
        wp.small_frac = 0.28f;
        wp.large_frac = 0.34f;
        wp.p_large = 1;
    }
    wp.alpha_min = 1;
    wp.noise = 0;
    return wp;
}

static int dump(const char *path, int ntr, int nva) {
    vv_error e = {0};
    vv_world_params wp = world();
    FILE *f = fopen(path, "wb");
    float *img = malloc(PIX * sizeof(float));
    if (!f || !img) return fprintf(stderr, "cannot write %s\n", path), 1;
    int n = ntr + nva;
    fwrite(&n, 4, 1, f);
    fwrite(&ntr, 4, 1, f);
    for (int i = 0; i < n; i++) { // train seeds from 0, validation seeds from the val split
        uint64_t seed = i < ntr ? (uint64_t)i : vv_world_split_base(VV_WORLD_VAL) + (uint64_t)(i - ntr);
        vv_world_scene s;
        if (vv_world_scene_make(&wp, seed, &s, &e) || vt_scene_image(&wp, &s, S, img, &e))
            return fprintf(stderr, "scene %llu: %s\n", (unsigned long long)seed, e.msg), 1;
        int32_t lab[2] = {s.obj[0].cls, s.obj[0].color};
        fwrite(lab, 4, 2, f);
        fwrite(img, sizeof(float), PIX, f);
        vv_world_scene_free(&s);
    }
    free(img);
    return fclose(f) != 0;
}

// z [B, NC + NK] -> two softmax cross-entropies, gradient written to dz.
static void two_ce(vt_ctx *c, const float *z, const int32_t *yc, const int32_t *yk, int B, int NC, int NK, float *dz,
                   float *l1, float *l2) {
    const int K = NC + NK;
    float *zc = malloc((size_t)B * NC * sizeof(float)), *zk = malloc((size_t)B * NK * sizeof(float));
    for (int b = 0; b < B; b++) {
        memcpy(zc + b * NC, z + b * K, NC * sizeof(float));
        memcpy(zk + b * NK, z + b * K + NC, NK * sizeof(float));
    }
    vt_cross_entropy(c, zc, yc, NULL, B, NC, l1, NULL, zc, 1.0f);
    vt_cross_entropy(c, zk, yk, NULL, B, NK, l2, NULL, zk, 1.0f);
    for (int b = 0; b < B; b++) {
        memcpy(dz + b * K, zc + b * NC, NC * sizeof(float));
        memcpy(dz + b * K + NC, zk + b * NK, NK * sizeof(float));
    }
    free(zc);
    free(zk);
}

static int train(const char *path, int steps, int B, float lr, int threads) {
    FILE *f = fopen(path, "rb");
    int n = 0, ntr = 0;
    if (!f || fread(&n, 4, 1, f) != 1 || fread(&ntr, 4, 1, f) != 1 || n <= ntr || ntr <= 0)
        return fprintf(stderr, "cannot read %s\n", path), 1;
    float *imgs = malloc((size_t)n * PIX * sizeof(float));
    int32_t *lab = malloc((size_t)n * 2 * sizeof(int32_t));
    for (int i = 0; i < n; i++)
        if (fread(lab + 2 * i, 4, 2, f) != 2 || fread(imgs + (size_t)i * PIX, sizeof(float), PIX, f) != PIX)
            return fprintf(stderr, "%s is truncated\n", path), 1;
    fclose(f);
    const int NC = vv_world_n_classes(), NK = vv_world_n_colors(), K = NC + NK, MB = B > VAL_MAX ? B : VAL_MAX;
    vv_error e = {0};
    vt_params ps;
    vt_params_init(&ps);
    vt_vit v;
    const int stem = getenv("STEM") ? atoi(getenv("STEM")) : 0; // 3: hybrid tower (conv stem 32/64/128)
    const bool bn = getenv("BN") && atoi(getenv("BN")), maxp = getenv("MAXPOOL") && atoi(getenv("MAXPOOL"));
    if (bn && !stem) return fprintf(stderr, "BN=1 needs STEM\n"), 1;
    vt_vit_cfg vc = {S, 8, D, 4, 4, 512, stem, 32, bn}; // the shipped CLIP's tower
    int lw, lb, hw, hb;
    int rc = vt_vit_register(&v, &vc, &ps, &e);
    if (!rc) rc = vt_params_add(&ps, "post.w", 1, (int64_t[]){D}, VT_PARAM_NO_DECAY, &lw, &e);
    if (!rc) rc = vt_params_add(&ps, "post.b", 1, (int64_t[]){D}, VT_PARAM_NO_DECAY, &lb, &e);
    if (!rc) rc = vt_params_add(&ps, "head.w", 2, (int64_t[]){K, D}, 0, &hw, &e);
    if (!rc) rc = vt_params_add(&ps, "head.b", 1, (int64_t[]){K}, VT_PARAM_NO_DECAY, &hb, &e);
    if (!rc) rc = vt_params_alloc(&ps, &e);
    if (!rc) rc = vt_vit_alloc(&v, MB, &e);
    vt_ctx *c = NULL;
    if (!rc) rc = vt_ctx_create(threads, &c, &e);
    if (rc) return fprintf(stderr, "%s\n", e.msg), 1;
    vv_rng rng;
    vv_rng_seed(&rng, 1);
    vt_vit_init(&v, &ps, &rng);
    vt_param_fill(&ps.items[lw], 1);
    vt_param_init_normal(&ps.items[hw], 1.0f / sqrtf(D), &rng);
    const int T = v.T;
    float *pool = malloc((size_t)MB * D * 4), *pn = malloc((size_t)MB * D * 4), *mu = malloc(MB * 4),
          *rs = malloc(MB * 4), *z = malloc((size_t)MB * K * 4), *dz = malloc((size_t)MB * K * 4),
          *dpn = malloc((size_t)MB * D * 4), *dpool = malloc((size_t)MB * D * 4),
          *dxo = malloc((size_t)MB * T * D * 4), *batch = malloc((size_t)MB * PIX * 4);
    int32_t *yc = malloc(MB * 4), *yk = malloc(MB * 4), *arg = malloc((size_t)MB * D * 4);
    vt_adamw opt = vt_adamw_default();
    opt.weight_decay = 0.1;
    vt_lr_sched sch = {lr, lr * 0.1f, 50, steps};
    double rl = 0, rk = 0, t0 = vv_time_s();
    int rn = 0;
    for (int step = 0; step <= steps; step++) {
        if (step % 100 == 0 || step == steps) { // validation accuracy, argmax per head
            const int nv = VV_MIN(n - ntr, VAL_MAX);
            int okc = 0, okk = 0;
            v.eval = true; // BatchNorm from running statistics
            vt_vit_forward(c, &v, &ps, imgs + (size_t)ntr * PIX, nv);
            v.eval = false;
            if (maxp) vt_max_pool_forward(c, pool, arg, v.out, nv, T, D);
            else vt_mean_pool_forward(c, pool, v.out, NULL, nv, T, D);
            vt_layernorm_forward(c, pn, mu, rs, pool, ps.items[lw].data, ps.items[lb].data, nv, D, 1e-5f);
            vt_linear_forward(c, z, pn, ps.items[hw].data, ps.items[hb].data, nv, D, K);
            for (int i = 0; i < nv; i++) {
                int bc = 0, bk = 0;
                for (int k = 0; k < NC; k++) bc = z[i * K + k] > z[i * K + bc] ? k : bc;
                for (int k = 0; k < NK; k++) bk = z[i * K + NC + k] > z[i * K + NC + bk] ? k : bk;
                okc += bc == lab[2 * (ntr + i)];
                okk += bk == lab[2 * (ntr + i) + 1];
            }
            printf("step %d train_ce_class %.3f train_ce_colour %.3f val_acc_class %.1f val_acc_colour %.1f sec %.0f\n",
                   step, rn ? rl / rn : 0, rn ? rk / rn : 0, 100.0 * okc / nv, 100.0 * okk / nv, vv_time_s() - t0);
            fflush(stdout);
            rl = rk = 0;
            rn = 0;
        }
        if (step == steps) break;
        for (int b = 0; b < B; b++) {
            const int i = (int)(vv_rng_uniform(&rng) * ntr);
            memcpy(batch + (size_t)b * PIX, imgs + (size_t)i * PIX, PIX * sizeof(float));
            yc[b] = lab[2 * i];
            yk[b] = lab[2 * i + 1];
        }
        vt_params_zero_grad(&ps);
        vt_vit_forward(c, &v, &ps, batch, B);
        if (maxp) vt_max_pool_forward(c, pool, arg, v.out, B, T, D);
        else vt_mean_pool_forward(c, pool, v.out, NULL, B, T, D);
        vt_layernorm_forward(c, pn, mu, rs, pool, ps.items[lw].data, ps.items[lb].data, B, D, 1e-5f);
        vt_linear_forward(c, z, pn, ps.items[hw].data, ps.items[hb].data, B, D, K);
        float l1, l2, gn;
        two_ce(c, z, yc, yk, B, NC, NK, dz, &l1, &l2);
        rl += l1;
        rk += l2;
        rn++;
        memset(dpn, 0, (size_t)B * D * 4);
        vt_linear_backward(c, dpn, ps.items[hw].grad, ps.items[hb].grad, dz, pn, ps.items[hw].data, B, D, K);
        memset(dpool, 0, (size_t)B * D * 4);
        vt_layernorm_backward(c, dpool, ps.items[lw].grad, ps.items[lb].grad, dpn, pool, ps.items[lw].data, mu, rs, B, D);
        memset(dxo, 0, (size_t)B * T * D * 4);
        if (maxp) vt_max_pool_backward(c, dxo, dpool, arg, B, T, D);
        else vt_mean_pool_backward(c, dxo, dpool, NULL, B, T, D);
        vt_vit_backward(c, &v, &ps, dxo, B);
        vt_clip_grad_norm(c, &ps, 1.0f, &gn);
        vt_adamw_step(c, &ps, &opt, vt_lr_at(&sch, step));
        if (vt_ctx_status(c)) return fprintf(stderr, "%s\n", vt_ctx_error(c)), 1;
    }
    float *fl[] = {pool, pn, mu, rs, z, dz, dpn, dpool, dxo, batch};
    for (size_t i = 0; i < sizeof fl / sizeof *fl; i++) free(fl[i]);
    free(yc), free(yk), free(arg), free(imgs), free(lab);
    vt_ctx_free(c);
    vt_vit_free(&v);
    vt_params_free(&ps);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 5 && !strcmp(argv[1], "dump")) return dump(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 7 && !strcmp(argv[1], "train"))
        return train(argv[2], atoi(argv[3]), atoi(argv[4]), (float)atof(argv[5]), atoi(argv[6]));
    fprintf(stderr, "usage: vit_classify dump FILE N_TRAIN N_VAL | train FILE STEPS BATCH LR THREADS\n");
    return 2;
}
