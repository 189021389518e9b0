// cmd_train.c - `visvm train clip|vlm|...`: trains the world's tiny models.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "train/head_train.h"
#include "train/clip_train.h"
#include "train/value_train.h"
#include "train/vlm_train.h"

static int train_clip(int argc, char **argv) {
    vt_clip_hp hp = vt_clip_default_hp();
    const char *out = "models/world";
    bool resume = false, cls_pool = false, text_eos = false, max_pool = false, stem_bn = false;
    int seed = (int)hp.seed;
    cli_opt opts[] = {
        {"--out", "-o", CLI_STR, &out, "output directory (clip.gguf, checkpoint, log, loss curve)", 0, -1},
        {"--steps", NULL, CLI_INT, &hp.steps, "training steps", 1, 1 << 24},
        {"--until", NULL, CLI_INT, &hp.until, "stop at this step of the --steps schedule (0: run it all)", 0, 1 << 24},
        {"--batch", NULL, CLI_INT, &hp.batch, "images per step", 2, 4096},
        {"--neg", NULL, CLI_INT, &hp.n_neg, "hard-negative sentences per image", 0, 16},
        {"--p-caption", NULL, CLI_FLOAT, &hp.p_caption, "probability the positive is a whole caption", 0, 1},
        {"--aux-weight", NULL, CLI_FLOAT, &hp.aux_weight, "weight of the auxiliary object head (0: pure CLIP loss)", 0, 100},
        {"--dense-weight", NULL, CLI_FLOAT, &hp.dense_weight, "weight of the per-patch class head (labels from the renderer's masks; 0: off)", 0, 100},
        {"--hard-weight", NULL, CLI_FLOAT, &hp.hard_weight, "weight of the per-image hard-negative softmax", 0, 100},
        {"--world-small", NULL, CLI_FLOAT, &hp.world.small_frac, "world knob: small object extent / image side (diagnostics; eval uses the default world)", 0.05, 0.45},
        {"--world-large", NULL, CLI_FLOAT, &hp.world.large_frac, "world knob: large object extent / image side", 0.05, 0.45},
        {"--world-p-large", NULL, CLI_FLOAT, &hp.world.p_large, "world knob: probability an object is large", 0, 1},
        {"--world-alpha-min", NULL, CLI_FLOAT, &hp.world.alpha_min, "world knob: lowest object contrast", 0, 1},
        {"--world-noise", NULL, CLI_FLOAT, &hp.world.noise, "world knob: pixel noise std (0..255 units)", 0, 64},
        {"--world-max-objects", NULL, CLI_INT, &hp.world.max_objects, "world knob: most objects per scene", 1, 9},
        {"--group", NULL, CLI_INT, &hp.group, "images per same-theme group in a batch (0: random)", 0, 4096},
        {"--lr", NULL, CLI_FLOAT, &hp.lr, "peak learning rate", 1e-7, 1},
        {"--warmup", NULL, CLI_INT, &hp.warmup, "warm-up steps", 0, 1 << 24},
        {"--wd", NULL, CLI_FLOAT, &hp.weight_decay, "AdamW weight decay", 0, 1},
        {"--v-width", NULL, CLI_INT, &hp.v_width, "vision width", 16, 4096},
        {"--v-layers", NULL, CLI_INT, &hp.v_layers, "vision layers", 1, 64},
        {"--v-heads", NULL, CLI_INT, &hp.v_heads, "vision heads", 1, 64},
        {"--v-ff", NULL, CLI_INT, &hp.v_ff, "vision feed-forward width", 16, 16384},
        {"--patch", NULL, CLI_INT, &hp.patch, "patch size (with --stem: set to 2^stages)", 2, 64},
        {"--stem", NULL, CLI_INT, &hp.stem, "convolutional stem stages (3x3 conv + ReLU + 2x2 max pool each; hybrid ViT; 0: patchify)", 0, 4},
        {"--stem-width", NULL, CLI_INT, &hp.stem_ch, "channels of the first stem stage (doubling per stage)", 1, 1024},
        {"--stem-bn", NULL, CLI_FLAG, &stem_bn, "BatchNorm after each stem convolution (folded into it in the exported GGUF)", 0, -1},
        {"--t-width", NULL, CLI_INT, &hp.t_width, "text width", 16, 4096},
        {"--t-layers", NULL, CLI_INT, &hp.t_layers, "text layers", 1, 64},
        {"--t-heads", NULL, CLI_INT, &hp.t_heads, "text heads", 1, 64},
        {"--t-ff", NULL, CLI_INT, &hp.t_ff, "text feed-forward width", 16, 16384},
        {"--proj", NULL, CLI_INT, &hp.proj, "embedding (projection) width", 8, 4096},
        {"--scale-init", NULL, CLI_FLOAT, &hp.scale_init, "initial logit scale (CLIP: 14.3)", 0.1, 100},
        {"--text-eos", NULL, CLI_FLAG, &text_eos, "pool the text at its last token (default: mean of the tokens)", 0, -1},
        {"--cls-pool", NULL, CLI_FLAG, &cls_pool, "pool the class token (default: mean of all tokens)", 0, -1},
        {"--max-pool", NULL, CLI_FLAG, &max_pool, "image embedding: per-feature max over all tokens (default: mean)", 0, -1},
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
    if (cls_pool && max_pool) {
        fprintf(stderr, "visvm train clip: --cls-pool and --max-pool exclude each other\n");
        return 2;
    }
    if (cls_pool) hp.mean_pool = false;
    hp.max_pool = max_pool;
    hp.stem_bn = stem_bn;
    if (stem_bn && !hp.stem) {
        fprintf(stderr, "visvm train clip: --stem-bn needs --stem N\n");
        return 2;
    }
    if (text_eos) hp.text_mean_pool = false;
    if (hp.warmup >= hp.steps) hp.warmup = hp.steps / 10;
    vv_error e = {0};
    if (vt_clip_train(&hp, out, resume, &e)) {
        fprintf(stderr, "visvm train clip: %s\n", e.msg);
        return 1;
    }
    return 0;
}

// `visvm train vlm --sft FILE --init DIR`: self-training (fine-tuning on searched captions).
static int train_vlm_sft(int argc, char **argv) {
    vt_vlm_hp hp = vt_vlm_sft_default_hp();
    const char *out = NULL, *sft = NULL, *init = NULL, *strategy = NULL;
    int seed = (int)hp.seed;
    bool freeze_vision = false;
    cli_opt opts[] = {
        {"--sft", NULL, CLI_STR, &sft, "captions JSONL: visvm eval --captions lines (seed) or {\"image\", \"caption\"}", 0, -1},
        {"--init", NULL, CLI_STR, &init, "folder of the VLM to fine-tune (vlm-text.gguf, vlm-mmproj.gguf, vlm.ckpt.gguf if present)", 0, -1},
        {"--strategy", NULL, CLI_STR, &strategy, "only the lines of this strategy (e.g. visvm)", 0, -1},
        {"--out", "-o", CLI_STR, &out, "output directory (vlm-text.gguf, vlm-mmproj.gguf, checkpoint, vlm-sft.log/.json)", 0, -1},
        {"--steps", NULL, CLI_INT, &hp.steps, "training steps", 1, 1 << 24},
        {"--batch", NULL, CLI_INT, &hp.batch, "captions per step", 1, 4096},
        {"--lr", NULL, CLI_FLOAT, &hp.lr, "peak learning rate (cosine decay to a tenth)", 1e-7, 1},
        {"--warmup", NULL, CLI_INT, &hp.warmup, "warm-up steps", 0, 1 << 24},
        {"--wd", NULL, CLI_FLOAT, &hp.weight_decay, "AdamW weight decay", 0, 1},
        {"--max-len", NULL, CLI_INT, &hp.max_len, "longest training sequence", 32, 8192},
        {"--freeze-vision", NULL, CLI_FLAG, &freeze_vision,
         "keep the vision tower fixed (a VLM trained on CLIP's frozen tower, LLaVA-style)", 0, -1},
        {"--seed", NULL, CLI_INT, &seed, "random seed (data order and prompts)", 0, 2147483647},
        {"--threads", "-t", CLI_INT, &hp.threads, "threads; 0 = all cores", 0, 1024},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("train vlm --sft", "FILE --init DIR --out OUT [options]",
                       "Self-training (VisVM paper section 4): fine-tunes an existing tiny VLM on captions found by "
                       "search; images are world scenes re-rendered from their seeds (default world params) or image "
                       "files relative to the JSONL. Writes OUT/vlm-text.gguf and OUT/vlm-mmproj.gguf.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 3, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!sft || !init || !out) {
        fprintf(stderr, "visvm train vlm: --sft needs --init DIR and --out OUT\n");
        return 2;
    }
    hp.seed = (uint64_t)seed;
    hp.freeze_vision = freeze_vision;
    hp.lr_min = hp.lr * 0.1f;
    if (hp.warmup >= hp.steps) hp.warmup = hp.steps / 10;
    vv_error e = {0};
    if (vt_vlm_sft(&hp, sft, strategy, init, out, &e)) {
        fprintf(stderr, "visvm train vlm: %s\n", e.msg);
        return 1;
    }
    return 0;
}

static int train_vlm(int argc, char **argv) {
    for (int i = 3; i < argc; i++)
        if (!strcmp(argv[i], "--sft") || !strncmp(argv[i], "--sft=", 6)) return train_vlm_sft(argc, argv);
    vt_vlm_hp hp = vt_vlm_default_hp();
    const char *out = "models/world";
    bool resume = false, stem_bn = false, freeze_vision = false, verify_objects = false, verify_short = false,
         verify_late = false;
    const char *init_vision = NULL;
    int seed = (int)hp.seed;
    cli_opt opts[] = {
        {"--out", "-o", CLI_STR, &out, "output directory (vlm-text.gguf, vlm-mmproj.gguf, checkpoint, log, curve)", 0, -1},
        {"--steps", NULL, CLI_INT, &hp.steps, "training steps", 1, 1 << 24},
        {"--batch", NULL, CLI_INT, &hp.batch, "captions per step", 1, 4096},
        {"--lr", NULL, CLI_FLOAT, &hp.lr, "peak learning rate", 1e-7, 1},
        {"--warmup", NULL, CLI_INT, &hp.warmup, "warm-up steps", 0, 1 << 24},
        {"--wd", NULL, CLI_FLOAT, &hp.weight_decay, "AdamW weight decay", 0, 1},
        {"--view", NULL, CLI_INT, &hp.image_size, "side of the tower's (downsampled) view of the image", 8, 1024},
        {"--patch", NULL, CLI_INT, &hp.patch, "patch size (with --stem: 2^stages)", 2, 64},
        {"--stem", NULL, CLI_INT, &hp.stem, "convolutional stem stages (3x3 conv + ReLU + 2x2 max pool each; hybrid ViT; 0: patchify)", 0, 4},
        {"--stem-width", NULL, CLI_INT, &hp.stem_ch, "channels of the first stem stage (doubling per stage)", 1, 1024},
        {"--stem-bn", NULL, CLI_FLAG, &stem_bn, "BatchNorm after each stem convolution (folded into it in the exported mmproj)", 0, -1},
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
        {"--init-vision", NULL, CLI_STR, &init_vision,
         "CLIP GGUF whose vision tower starts the VLM's (LLaVA-style; its shape replaces the tower options)", 0, -1},
        {"--freeze-vision", NULL, CLI_FLAG, &freeze_vision, "do not train the tower (LLaVA; with --init-vision)", 0, -1},
        {"--world-tint-jitter", NULL, CLI_FLOAT, &hp.world.tint_jitter,
         "world knob (training scenes): per-scene jitter of the theme's background tint", 0, 255},
        {"--world-p-theme", NULL, CLI_FLOAT, &hp.world.p_theme,
         "world knob (training scenes): probability an object is one of the theme's classes", 0, 1},
        {"--world-max-objects", NULL, CLI_INT, &hp.world.max_objects, "world knob (training scenes): most objects per scene", 1, 9},
        {"--verify-frac", NULL, CLI_FLOAT, &hp.verify_frac,
         "share of samples that ask a yes/no question about one sentence of the scene (true or a hard negative; "
         "LLaVA-style instruction data; held-out accuracy printed at the end)", 0, 1},
        {"--verify-where", NULL, CLI_FLOAT, &hp.verify_where,
         "share of those questions asking where an object is instead (\"Where is the kite?\" -> its sentence, or "
         "\"There is no kite.\")", 0, 1},
        {"--verify-short", NULL, CLI_FLAG, &verify_short,
         "yes/no questions about object presence as \"There is a CLASS.\" (no colour, size or place)", 0, -1},
        {"--verify-late", NULL, CLI_FLAG, &verify_late, "yes/no questions answered \"The answer is yes/no\"", 0, -1},
        {"--verify-objects", NULL, CLI_FLAG, &verify_objects,
         "those questions only about object presence (true object sentences vs absent objects)", 0, -1},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("train vlm", "[options]",
                       "Trains the tiny LLaVA (ViT tower + MLP projector + Llama decoder) to caption synthetic-world "
                       "images with the 9 detailed prompts; writes OUT/vlm-text.gguf and OUT/vlm-mmproj.gguf. "
                       "Self-training on searched captions: visvm train vlm --sft FILE --init DIR --out OUT (--help).",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 3, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    hp.seed = (uint64_t)seed;
    hp.stem_bn = stem_bn;
    if (stem_bn && !hp.stem) {
        fprintf(stderr, "visvm train vlm: --stem-bn needs --stem N\n");
        return 2;
    }
    if (freeze_vision && !init_vision) {
        fprintf(stderr, "visvm train vlm: --freeze-vision needs --init-vision CLIP.gguf (a frozen random tower sees nothing)\n");
        return 2;
    }
    hp.freeze_vision = freeze_vision;
    hp.verify_objects = verify_objects;
    hp.verify_short = verify_short;
    hp.verify_late = verify_late;
    if ((verify_objects || verify_short || verify_late || hp.verify_where > 0) && hp.verify_frac <= 0) {
        fprintf(stderr, "visvm train vlm: --verify-where, -objects, -short and -late need --verify-frac F > 0\n");
        return 2;
    }
    if (hp.warmup >= hp.steps) hp.warmup = hp.steps / 10;
    vv_error e = {0};
    if (init_vision && vt_vlm_hp_vision_from_clip(&hp, init_vision, &e)) {
        fprintf(stderr, "visvm train vlm: %s\n", e.msg);
        return 1;
    }
    if (vt_vlm_train(&hp, out, resume, &e)) {
        fprintf(stderr, "visvm train vlm: %s\n", e.msg);
        return 1;
    }
    return 0;
}

static int train_value(int argc, char **argv) {
    vt_value_hp hp = vt_value_default_hp();
    const char *out = "models/world", *terminal = "done_mask";
    float offset = -1000.0f;
    bool train_vision = false, head_only = false;
    int seed = (int)hp.seed;
    cli_opt opts[] = {
        {"--rewards", NULL, CLI_STR, &hp.train_rewards, "training rewards JSONL (visvm reward)", 0, -1},
        {"--val", NULL, CLI_STR, &hp.val_rewards, "held-out rewards JSONL", 0, -1},
        {"--val-world", NULL, CLI_STR, &hp.val_world,
         "world folder of the held-out images (visvm world gen): also report the within-image AUC of V and of the reward", 0, -1},
        {"--clip", NULL, CLI_STR, &hp.clip_path, "reward CLIP GGUF (vision tower initialisation)", 0, -1},
        {"--policy", NULL, CLI_STR, &hp.policy_text, "policy text GGUF (decoder initialisation, tokenizer)", 0, -1},
        {"--vlm-mmproj", NULL, CLI_STR, &hp.vlm_mmproj,
         "start tower and projector from this mmproj, of a VLM trained on CLIP's tower (train vlm --init-vision); "
         "--policy is then that VLM's text GGUF", 0, -1},
        {"--out", "-o", CLI_STR, &out, "output directory (value-text.gguf, value-mmproj.gguf, log, metrics)", 0, -1},
        {"--gamma", NULL, CLI_FLOAT, &hp.gamma, "discount", 0, 1},
        {"--terminal", NULL, CLI_STR, &terminal, "done_mask (V = 0 after the last sentence) | bootstrap (paper: V(\"\"))", 0, -1},
        {"--reward-offset", NULL, CLI_FLOAT, &offset, "subtracted from rewards (-1000: the mean training reward)", -1000, 1000},
        {"--train-vision", NULL, CLI_FLAG, &train_vision, "also fine-tune CLIP's tower (default: frozen)", 0, -1},
        {"--head-only", NULL, CLI_FLAG, &head_only, "train only the value head", 0, -1},
        {"--with-prefix", NULL, CLI_FLAG, &hp.with_prefix,
         "states hold the caption so far before the sentence (the search passes it; the paper's state is the "
         "sentence alone)", 0, -1},
        {"--head-yes-no", NULL, CLI_FLOAT, &hp.head_yes_no,
         "start the head as this x (yes - no) rows of --policy's output layer: V starts as its yes/no margin "
         "(a policy trained with train vlm --verify-frac; 0: random head)", 0, 100},
        {"--steps", NULL, CLI_INT, &hp.steps, "training steps", 1, 1 << 24},
        {"--batch", NULL, CLI_INT, &hp.batch, "TD pairs per step", 1, 4096},
        {"--group", NULL, CLI_INT, &hp.group,
         "TD pairs per image in a batch (images drawn uniformly, then their pairs); 1 = uniform pairs (the paper)", 1, 4096},
        {"--rank-weight", NULL, CLI_FLOAT, &hp.rank_weight,
         "adds this weight x the group-centred MSE (errors minus their image's mean: only within-image differences "
         "count; needs --group >= 2)", 0, 1000},
        {"--lr", NULL, CLI_FLOAT, &hp.lr, "peak learning rate", 1e-7, 1},
        {"--warmup", NULL, CLI_INT, &hp.warmup, "warm-up steps", 0, 1 << 24},
        {"--seed", NULL, CLI_INT, &seed, "random seed", 0, 2147483647},
        {"--eval-every", NULL, CLI_INT, &hp.eval_every, "steps between held-out evaluations (0: off)", 0, 1 << 24},
        {"--probe-scenes", NULL, CLI_INT, &hp.probe_scenes, "validation scenes for the present/absent probe", 0, 100000},
        {"--threads", "-t", CLI_INT, &hp.threads, "threads; 0 = all cores", 0, 1024},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("train value", "--rewards FILE [options]",
                       "TD(0) training of the VisVM value model: target = (r - offset) + gamma V(s'), V(s') without "
                       "gradient, MSE with per-sample targets.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 3, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!hp.train_rewards) {
        fprintf(stderr, "visvm train value: --rewards is required\n");
        return 2;
    }
    if (!strcmp(terminal, "done_mask")) hp.done_mask = true;
    else if (!strcmp(terminal, "bootstrap")) hp.done_mask = false;
    else {
        fprintf(stderr, "visvm train value: unknown --terminal '%s'\n", terminal);
        return 2;
    }
    hp.reward_offset = offset <= -1000.0f ? NAN : offset;
    hp.freeze_vision = !train_vision;
    hp.head_only = head_only;
    hp.seed = (uint64_t)seed;
    if (hp.warmup >= hp.steps) hp.warmup = hp.steps / 10;
    vv_error e = {0};
    if (vt_value_train(&hp, out, &e)) {
        fprintf(stderr, "visvm train value: %s\n", e.msg);
        return 1;
    }
    return 0;
}

static int train_head(int argc, char **argv) {
    vt_head_hp hp = vt_head_default_hp();
    const char *out = "models/world/value-head.gguf";
    float offset = -1000.0f;
    hp.policy_text = "models/world/vlm-text.gguf";
    hp.policy_mmproj = "models/world/vlm-mmproj.gguf";
    cli_opt opts[] = {
        {"--rewards", NULL, CLI_STR, &hp.train_rewards, "training rewards JSONL (visvm reward)", 0, -1},
        {"--val", NULL, CLI_STR, &hp.val_rewards, "held-out rewards JSONL: TD loss and return correlation", 0, -1},
        {"--model", "-m", CLI_STR, &hp.policy_text, "policy text GGUF (the backbone, frozen)", 0, -1},
        {"--mmproj", NULL, CLI_STR, &hp.policy_mmproj, "policy mmproj GGUF", 0, -1},
        {"--out", "-o", CLI_STR, &out, "value head GGUF to write", 0, -1},
        {"--gamma", NULL, CLI_FLOAT, &hp.gamma, "discount", 0, 1},
        {"--reward-offset", NULL, CLI_FLOAT, &offset, "subtracted from rewards (-1000: the mean training reward)", -1000, 1000},
        {"--ridge", NULL, CLI_FLOAT, &hp.ridge, "L2 on the head's weights, x the mean squared feature x pairs", 0, 1e5},
        {"--prompt", NULL, CLI_STR, &hp.prompt, "prompt for lines without \"text\"", 0, -1},
        {"--centre", NULL, CLI_FLAG, &hp.centre,
         "fit within-image differences only (each term minus its image's mean; a step's choice sees nothing else)", 0, -1},
        {"--val-world", NULL, CLI_STR, &hp.val_world,
         "world folder of --val's images: within-image AUC of V and of the reward (ground truth labels)", 0, -1},
        {"--clip", NULL, CLI_STR, &hp.clip,
         "fit a value model on this full CLIP's frozen features instead (phi = [i*t, t, i]; search with --value HEAD "
         "--value-mmproj CLIP, strategy visvm)", 0, -1},
        {"--ridge-to-reward", NULL, CLI_FLAG, &hp.ridge_to_reward,
         "with --clip: the ridge pulls toward the reward's head (V = cosine), not toward zero", 0, -1},
        {"--bilinear", NULL, CLI_INT, &hp.bilinear_rank,
         "with --clip: add R^2 bilinear image x sentence terms on the top R principal directions of each (0 = none)",
         0, 64},
        {"--threads", "-t", CLI_INT, &hp.threads, "threads; 0 = all cores", 0, 1024},
    };
    const char *pos[1];
    int n_pos;
    int rc = cli_parse("train head", "--rewards FILE [options]",
                       "Fits a value head on the policy's own frozen hidden states (visvm-shared search), or with "
                       "--clip a value model on a CLIP's frozen features, by least-squares TD: the TD(0) fixed point "
                       "of target = (r - offset) + gamma V(s'), in one pass.",
                       opts, (int)(sizeof(opts) / sizeof(opts[0])), argc, argv, 3, pos, 0, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (!hp.train_rewards) {
        fprintf(stderr, "visvm train head: --rewards is required\n");
        return 2;
    }
    hp.reward_offset = offset <= -1000.0f ? NAN : offset;
    vv_error e = {0};
    vt_head_metrics m;
    if (vt_head_train(&hp, out, &m, &e)) {
        fprintf(stderr, "visvm train head: %s\n", e.msg);
        return 1;
    }
    printf("wrote %s (%.0f s)\n| set | TD pairs | TD loss | corr(V, discounted return) |\n|---|---|---|---|\n", out, m.seconds);
    printf("| train | %d | %.5f | %.3f |\n", m.n_train, m.td_loss_train, m.corr_train);
    if (m.n_val) printf("| held out | %d | %.5f | %.3f |\n", m.n_val, m.td_loss_val, m.corr_val);
    if (m.auc_pairs)
        printf("held out, within-image AUC (present-only vs absent-naming sentences, %ld pairs): V %.3f, reward %.3f; "
               "siblings (%ld pairs): V %.3f, reward %.3f\n", m.auc_pairs, m.auc_v, m.auc_r, m.sib_pairs, m.sib_v,
               m.sib_r);
    return 0;
}

int cmd_train(int argc, char **argv) {
    if (argc >= 3 && !strcmp(argv[2], "head")) return train_head(argc, argv);
    if (argc >= 3 && !strcmp(argv[2], "value")) return train_value(argc, argv);
    if (argc >= 3 && !strcmp(argv[2], "clip")) return train_clip(argc, argv);
    if (argc >= 3 && !strcmp(argv[2], "vlm")) return train_vlm(argc, argv);
    if (argc < 3 || !strcmp(argv[2], "--help") || !strcmp(argv[2], "-h")) {
        printf("usage: visvm train MODEL [options]   (visvm train MODEL --help)\n\nmodels:\n"
               "  clip   the tiny CLIP reward model\n"
               "  vlm    the tiny LLaVA captioner\n"
               "  value  the VisVM value model (TD learning on visvm reward output)\n"
               "  head   a value head on the policy's frozen hidden states (visvm-shared search; LSTD)\n");
        return argc < 3 ? 2 : 0;
    }
    fprintf(stderr, "visvm train: unknown model '%s'\n", argv[2]);
    return 2;
}
