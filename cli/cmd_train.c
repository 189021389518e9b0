// cmd_train.c - `visvm train clip|vlm|...`: trains the world's tiny models.
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "train/clip_train.h"
#include "train/vlm_train.h"

static int train_clip(int argc, char **argv) {
    vt_clip_hp hp = vt_clip_default_hp();
    const char *out = "models/world";
    bool resume = false;
    int seed = (int)hp.seed;
    cli_opt opts[] = {
        {"--out", "-o", CLI_STR, &out, "output directory (clip.gguf, checkpoint, log, loss curve)", 0, -1},
        {"--steps", NULL, CLI_INT, &hp.steps, "training steps", 1, 1 << 24},
        {"--batch", NULL, CLI_INT, &hp.batch, "images per step", 2, 4096},
        {"--neg", NULL, CLI_INT, &hp.n_neg, "hard-negative sentences per image", 0, 16},
        {"--p-caption", NULL, CLI_FLOAT, &hp.p_caption, "probability the positive is a whole caption", 0, 1},
        {"--group", NULL, CLI_INT, &hp.group, "images per same-theme group in a batch (0: random)", 0, 4096},
        {"--lr", NULL, CLI_FLOAT, &hp.lr, "peak learning rate", 1e-7, 1},
        {"--warmup", NULL, CLI_INT, &hp.warmup, "warm-up steps", 0, 1 << 24},
        {"--wd", NULL, CLI_FLOAT, &hp.weight_decay, "AdamW weight decay", 0, 1},
        {"--v-width", NULL, CLI_INT, &hp.v_width, "vision width", 16, 4096},
        {"--v-layers", NULL, CLI_INT, &hp.v_layers, "vision layers", 1, 64},
        {"--v-heads", NULL, CLI_INT, &hp.v_heads, "vision heads", 1, 64},
        {"--v-ff", NULL, CLI_INT, &hp.v_ff, "vision feed-forward width", 16, 16384},
        {"--patch", NULL, CLI_INT, &hp.patch, "patch size", 2, 64},
        {"--t-width", NULL, CLI_INT, &hp.t_width, "text width", 16, 4096},
        {"--t-layers", NULL, CLI_INT, &hp.t_layers, "text layers", 1, 64},
        {"--t-heads", NULL, CLI_INT, &hp.t_heads, "text heads", 1, 64},
        {"--t-ff", NULL, CLI_INT, &hp.t_ff, "text feed-forward width", 16, 16384},
        {"--proj", NULL, CLI_INT, &hp.proj, "embedding (projection) width", 8, 4096},
        {"--seed", NULL, CLI_INT, &seed, "random seed (init and data order)", 0, 2147483647},
        {"--threads", "-t", CLI_INT, &hp.threads, "threads; 0 = all cores", 0, 1024},
        {"--eval-every", NULL, CLI_INT, &hp.eval_every, "steps between validation probes (0: off)", 0, 1 << 24},
        {"--ckpt-every", NULL, CLI_INT, &hp.ckpt_every, "steps between checkpoints", 0, 1 << 24},
        {"--eval-scenes", NULL, CLI_INT, &hp.eval_scenes, "validation scenes for the final probes", 1, 100000},
        {"--resume", NULL, CLI_FLAG, &resume, "continue from OUT/clip.ckpt.gguf", 0, -1},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("train clip", "[options]",
                       "Trains the tiny CLIP (reward model) contrastively on synthetic-world images, sentences and "
                       "captions with hard negatives; writes OUT/clip.gguf and reports validation probes.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 3, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    hp.seed = (uint64_t)seed;
    if (hp.warmup >= hp.steps) hp.warmup = hp.steps / 10;
    vv_error e = {0};
    if (vt_clip_train(&hp, out, resume, &e)) {
        fprintf(stderr, "visvm train clip: %s\n", e.msg);
        return 1;
    }
    return 0;
}

static int train_vlm(int argc, char **argv) {
    vt_vlm_hp hp = vt_vlm_default_hp();
    const char *out = "models/world";
    bool resume = false;
    int seed = (int)hp.seed;
    cli_opt opts[] = {
        {"--out", "-o", CLI_STR, &out, "output directory (vlm-text.gguf, vlm-mmproj.gguf, checkpoint, log, curve)", 0, -1},
        {"--steps", NULL, CLI_INT, &hp.steps, "training steps", 1, 1 << 24},
        {"--batch", NULL, CLI_INT, &hp.batch, "captions per step", 1, 4096},
        {"--lr", NULL, CLI_FLOAT, &hp.lr, "peak learning rate", 1e-7, 1},
        {"--warmup", NULL, CLI_INT, &hp.warmup, "warm-up steps", 0, 1 << 24},
        {"--wd", NULL, CLI_FLOAT, &hp.weight_decay, "AdamW weight decay", 0, 1},
        {"--view", NULL, CLI_INT, &hp.image_size, "side of the tower's (downsampled) view of the image", 8, 1024},
        {"--patch", NULL, CLI_INT, &hp.patch, "patch size", 2, 64},
        {"--v-width", NULL, CLI_INT, &hp.v_width, "vision width", 16, 4096},
        {"--v-layers", NULL, CLI_INT, &hp.v_layers, "vision layers", 1, 64},
        {"--v-heads", NULL, CLI_INT, &hp.v_heads, "vision heads", 1, 64},
        {"--v-ff", NULL, CLI_INT, &hp.v_ff, "vision feed-forward width", 16, 16384},
        {"--width", NULL, CLI_INT, &hp.d, "decoder width", 16, 8192},
        {"--layers", NULL, CLI_INT, &hp.layers, "decoder layers", 1, 128},
        {"--heads", NULL, CLI_INT, &hp.heads, "decoder heads", 1, 128},
        {"--kv-heads", NULL, CLI_INT, &hp.kv_heads, "decoder KV heads", 1, 128},
        {"--ff", NULL, CLI_INT, &hp.ff, "decoder SwiGLU width", 16, 65536},
        {"--max-len", NULL, CLI_INT, &hp.max_len, "longest training sequence", 32, 8192},
        {"--seed", NULL, CLI_INT, &seed, "random seed (init and data order)", 0, 2147483647},
        {"--threads", "-t", CLI_INT, &hp.threads, "threads; 0 = all cores", 0, 1024},
        {"--ckpt-every", NULL, CLI_INT, &hp.ckpt_every, "steps between checkpoints", 0, 1 << 24},
        {"--resume", NULL, CLI_FLAG, &resume, "continue from OUT/vlm.ckpt.gguf", 0, -1},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("train vlm", "[options]",
                       "Trains the tiny LLaVA (ViT tower + MLP projector + Llama decoder) to caption synthetic-world "
                       "images with the 9 detailed prompts; writes OUT/vlm-text.gguf and OUT/vlm-mmproj.gguf.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 3, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    hp.seed = (uint64_t)seed;
    if (hp.warmup >= hp.steps) hp.warmup = hp.steps / 10;
    vv_error e = {0};
    if (vt_vlm_train(&hp, out, resume, &e)) {
        fprintf(stderr, "visvm train vlm: %s\n", e.msg);
        return 1;
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[2], "clip")) return train_clip(argc, argv);
    if (argc >= 3 && !strcmp(argv[2], "vlm")) return train_vlm(argc, argv);
    if (argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
        printf("usage: visvm train MODEL [options]   (visvm train MODEL --help)\n\nmodels:\n"
               "  clip   the tiny CLIP reward model\n"
               "  vlm    the tiny LLaVA captioner\n");
        return argc < 3 ? 2 : 0;
    }
    fprintf(stderr, "visvm train: unknown model '%s'\n", argv[2]);
    return 2;
}
