// value_probe.c - what a LLaVA backbone's final hidden states know about
// hallucination, for bench/value_probe.sh (a diagnostic, not a test).
//
//   value_probe feat TEXT.gguf MMPROJ.gguf SCENES.jsonl IN.tsv OUT.bin
//     IN.tsv: image_path \t sentence \t reward, grouped by image. For every
//     line, the state "USER: <image>\n{sentence} ASSISTANT:" (the value
//     model's input) is run and one record written:
//       int32 image index, int32 label (world_eval: 1 names only present
//       objects, 0 names an absent one, other: neither), float log p(sentence
//       tokens | image), float the same given the previous image, float reward,
//       float last[D] (last token's final-norm hidden state: what the value
//       head reads), float mean[D], float max[D] (over the state's tokens).
//   value_probe gethead VALUE.gguf OUT.txt
//     writes a last_token value model's head (D weights, then the bias)
//   value_probe sethead VALUE.gguf HEAD.txt OUT.gguf
//     copies a last_token value model with value_head.weight / .bias replaced
//     by HEAD.txt (D + 1 numbers, bias last).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/threadpool.h"
#include "eval/world_eval.h"
#include "format/gguf.h"
#include "gen/llava.h"
#include "model/clip.h"
#include "model/image.h"
#include "model/llama.h"
#include "world/world.h"

static int fail(const char *what, const vv_error *e) {
    fprintf(stderr, "value_probe: %s: %s\n", what, e ? e->msg : "");
    return 1;
}

// "USER: " + image on sequence seq (cleared first).
static int prefill_image(vv_llama_state *st, int seq, const vv_llama *lm, const vv_clip *cl, vv_pool *pool,
                         const char *path, vv_error *e) {
    vv_image img = {0};
    vv_image_batch b = {0};
    float *emb = NULL;
    int n_emb = 0;
    vv_ivec pre = {0};
    vv_llama_seq_clear(st, seq);
    int rc = vv_image_load_file(path, &img, e);
    if (!rc) rc = vv_preprocess(&img, &cl->pre, &b, e);
    if (!rc) rc = vv_clip_embed(cl, pool, &b, &emb, &n_emb, NULL, e);
    if (!rc) rc = vv_tokenize(lm->vocab, "USER: ", 6, true, true, &pre, e);
    if (!rc) rc = vv_llava_prefill(st, seq, pre.v, (int)pre.n, emb, n_emb, NULL, 0, NULL, NULL, e);
    vv_ivec_free(&pre);
    vv_afree(emb);
    vv_image_batch_free(&b);
    vv_image_free(&img);
    return rc;
}

// Runs toks after sequence src's prefix (in scratch slot 3): every row's
// hidden state, and log p(toks[1..n-1]).
static int run(vv_llama_state *st, int src, const vv_ivec *toks, float *logits, float *hidden, double *lp,
               vv_error *e) {
    int rc = vv_llama_seq_fork(st, src, 3, e);
    if (rc) return rc;
    int n = (int)toks->n, seq = 3;
    bool *out = malloc((size_t)n);
    if (!out) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) out[i] = true;
    vv_llama_batch b = {n, toks->v, NULL, 1, &seq, &n, out};
    rc = vv_llama_decode(st, &b, logits, hidden, e);
    free(out);
    vv_llama_seq_clear(st, 3);
    if (rc) return rc;
    const int V = vv_llama_state_model(st)->hp.n_vocab;
    double s = 0;
    for (int t = 1; t < n; t++) {
        const float *l = logits + (size_t)(t - 1) * V;
        float m = l[0];
        for (int j = 1; j < V; j++) m = l[j] > m ? l[j] : m;
        double z = 0;
        for (int j = 0; j < V; j++) z += exp(l[j] - m);
        s += l[toks->v[t]] - m - log(z);
    }
    *lp = s;
    return 0;
}

static int feat(char **argv) {
    vv_error e = {0};
    vv_llama *lm = NULL;
    vv_clip *cl = NULL;
    vv_world_scene *scenes = NULL;
    int nsc = 0;
    vv_chair *ch = NULL;
    if (vv_llama_load_file(argv[0], &lm, &e) || vv_clip_load_file(argv[1], VISVM_VISION_REFERENCE, &cl, &e) ||
        vv_world_read_jsonl(argv[2], &scenes, &nsc, &e) || vv_world_chair(&ch, &e))
        return fail("load", &e);
    vv_pool *pool = vv_pool_create(0);
    vv_llama_state *st = NULL;
    vv_llama_state_params sp = {4096, 4, 512, pool};
    if (vv_llama_state_create(lm, &sp, &st, &e)) return fail("state", &e);
    const int D = lm->hp.n_embd, V = lm->hp.n_vocab, MAXT = 500;
    float *logits = malloc((size_t)MAXT * V * sizeof(float)), *hidden = malloc((size_t)MAXT * D * sizeof(float));
    float *rec = malloc((size_t)(3 + 3 * D) * sizeof(float));
    FILE *in = fopen(argv[3], "r"), *out = fopen(argv[4], "wb");
    if (!logits || !hidden || !rec || !in || !out) return fail("cannot open the files or allocate", NULL);
    char line[4096], cur[1024] = "";
    int img_idx = -1, slot = 0, hint = 0, nrec = 0;
    const vv_world_scene *sc = NULL;
    while (fgets(line, sizeof(line), in)) {
        line[strcspn(line, "\n")] = 0;
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2) return fail("IN.tsv needs image_path \\t sentence \\t reward", NULL);
        *t1 = *t2 = 0;
        const char *path = line, *sent = t1 + 1;
        const float reward = strtof(t2 + 1, NULL);
        if (strcmp(path, cur)) { // next image: prefill into the other slot, keep the previous one
            snprintf(cur, sizeof(cur), "%s", path);
            slot ^= 1;
            if (prefill_image(st, slot, lm, cl, pool, path, &e)) return fail(path, &e);
            img_idx++;
            if (!(sc = vv_world_find_scene(scenes, nsc, path, &hint))) return fail("no scene for an image", NULL);
        }
        vv_buf full = {0};
        vv_ivec pre = {0}, toks = {0};
        bool hi;
        if (vv_chat_format(VISVM_TEMPLATE_LLAVA15, sent, true, &full) ||
            vv_llava_tokenize(lm->vocab, full.v, &pre, &toks, &hi, &e))
            return fail("tokenize", &e);
        vv_buf_free(&full);
        vv_ivec_free(&pre);
        if (toks.n < 2 || toks.n > (size_t)MAXT) return fail("sentence length out of range", NULL);
        double lp_other, lp;
        if (run(st, img_idx ? slot ^ 1 : slot, &toks, logits, hidden, &lp_other, &e) ||
            run(st, slot, &toks, logits, hidden, &lp, &e))
            return fail("decode", &e);
        const int n = (int)toks.n;
        const int32_t hdr[2] = {img_idx, vv_world_sentence_label(ch, sc, sent)};
        rec[0] = (float)lp;
        rec[1] = (float)lp_other;
        rec[2] = reward;
        float *last = rec + 3, *mean = last + D, *mx = mean + D;
        for (int d = 0; d < D; d++) {
            double s = 0;
            float m = -INFINITY;
            for (int t = 0; t < n; t++) {
                const float h = hidden[(size_t)t * D + d];
                s += h;
                m = h > m ? h : m;
            }
            last[d] = hidden[(size_t)(n - 1) * D + d];
            mean[d] = (float)(s / n);
            mx[d] = m;
        }
        if (fwrite(hdr, sizeof(hdr), 1, out) != 1 || fwrite(rec, sizeof(float), 3 + 3 * (size_t)D, out) != 3 + 3 * (size_t)D)
            return fail("write", NULL);
        nrec++;
        vv_ivec_free(&toks);
    }
    if (fclose(out)) return fail("write", NULL);
    fclose(in);
    fprintf(stderr, "value_probe: %d records (D = %d) over %d images\n", nrec, D, img_idx + 1);
    free(logits), free(hidden), free(rec);
    vv_llama_state_free(st);
    vv_pool_free(pool);
    vv_world_scenes_free(scenes, nsc);
    vv_llama_free(lm);
    vv_clip_free(cl);
    return 0;
}

static int sethead(char **argv) {
    vv_error e = {0};
    vv_gguf *g = NULL;
    if (vv_gguf_open(argv[0], &g, &e)) return fail(argv[0], &e);
    const vv_tensor *hw = vv_gguf_find_tensor(g, "value_head.weight");
    if (!hw || hw->type != VV_TYPE_F32) return fail("no F32 value_head.weight", NULL);
    const int64_t D = hw->ne[0];
    float *h = malloc((size_t)(D + 2) * sizeof(float));
    int n = 0;
    FILE *f = fopen(argv[1], "r");
    if (!f || !h) return fail(argv[1], NULL);
    while (n < D + 2 && fscanf(f, "%f", &h[n]) == 1) n++;
    fclose(f);
    if (n != D + 1) return fail("HEAD.txt must hold n_embd + 1 numbers", NULL);
    vv_gguf_writer *w = vv_gguf_writer_create();
    if (!w || vv_gguf_copy_kv(w, g)) return fail("copy keys", NULL);
    for (int64_t i = 0; i < vv_gguf_n_tensors(g); i++) {
        const vv_tensor *t = vv_gguf_tensor(g, i);
        const void *d = !strcmp(t->name, "value_head.weight") ? h : !strcmp(t->name, "value_head.bias") ? h + D : t->data;
        if (vv_gguf_add_tensor(w, t->name, t->type, t->n_dims, t->ne, d)) return fail(vv_gguf_writer_error(w), NULL);
    }
    if (vv_gguf_writer_write(w, argv[2], &e)) return fail(argv[2], &e);
    vv_gguf_writer_free(w);
    vv_gguf_close(g);
    free(h);
    return 0;
}

static int gethead(char **argv) {
    vv_error e = {0};
    vv_gguf *g = NULL;
    if (vv_gguf_open(argv[0], &g, &e)) return fail(argv[0], &e);
    const vv_tensor *hw = vv_gguf_find_tensor(g, "value_head.weight"), *hb = vv_gguf_find_tensor(g, "value_head.bias");
    if (!hw || !hb || hw->type != VV_TYPE_F32 || hb->type != VV_TYPE_F32) return fail("no F32 value head", NULL);
    FILE *f = fopen(argv[1], "w");
    if (!f) return fail(argv[1], NULL);
    for (int64_t i = 0; i < hw->ne[0]; i++) fprintf(f, "%.9g\n", ((const float *)hw->data)[i]);
    fprintf(f, "%.9g\n", ((const float *)hb->data)[0]);
    if (fclose(f)) return fail(argv[1], NULL);
    vv_gguf_close(g);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 7 && !strcmp(argv[1], "feat")) return feat(argv + 2);
    if (argc == 5 && !strcmp(argv[1], "sethead")) return sethead(argv + 2);
    if (argc == 4 && !strcmp(argv[1], "gethead")) return gethead(argv + 2);
    fprintf(stderr, "usage: value_probe feat TEXT.gguf MMPROJ.gguf SCENES.jsonl IN.tsv OUT.bin\n"
                    "       value_probe gethead VALUE.gguf OUT.txt\n"
                    "       value_probe sethead VALUE.gguf HEAD.txt OUT.gguf\n");
    return 2;
}
