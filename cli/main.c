// main.c - the visvm command-line program: dispatch to subcommands and the
// shared option parser.
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cpu.h"
#include "cli.h"
#include "visvm.h"

typedef struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} command;

static const command g_cmds[] = {
    {"demo", cmd_demo, "the main job: new scenes captioned by greedy, CLIP-PRM and VisVM search, HTML report"},
    {"caption", cmd_caption, "describe an image with a LLaVA model (GGUF text model + mmproj)"},
    {"golden", cmd_golden, "check the engine against a llama.cpp golden reference set (DIR/index.json)"},
    {"bench", cmd_bench, "benchmark decoding speed against the machine's memory bandwidth"},
    {"eval", cmd_eval, "caption world scenes with decoding/search strategies and score them with CHAIR"},
    {"chair", cmd_chair, "CHAIR of captions of COCO images (COCO annotations, the reference synonym table)"},
    {"generate", cmd_generate, "five responses per image (temperatures 0.2-0.8 and greedy), the paper's JSONL"},
    {"reward", cmd_reward, "add CLIP rewards of every sentence to generated responses"},
    {"train", cmd_train, "train the world's tiny models (clip, vlm, value) with visvm's C trainer"},
    {"value", cmd_value, "V(image, sentence) of a VisVM value model (Hugging Face directory, exact)"},
    {"convert", cmd_convert, "Hugging Face LLaVA-NeXT / VisVM directory -> GGUF (f32, f16, q8_0, q4_0, q4_k)"},
    {"world", cmd_world, "synthetic world: generate scenes, show one, write the CHAIR synonym file"},
};
#define N_CMDS (int)(sizeof(g_cmds) / sizeof(g_cmds[0]))

static void usage(FILE *f) {
    fprintf(f, "visvm %s - value-guided search for LLaVA-family models on the CPU\n\n", visvm_version());
    fprintf(f, "usage: visvm COMMAND [options]   (visvm COMMAND --help for its flags)\n\ncommands:\n");
    for (int i = 0; i < N_CMDS; i++) fprintf(f, "  %-10s %s\n", g_cmds[i].name, g_cmds[i].help);
    fprintf(f, "\nglobal: --help, --version; environment VISVM_LOG=0..3 sets the log level\n");
}

// OpenBLAS 0.3.21 (Debian 12) reads its kernel choice from the environment at
// load time and takes newer AVX-512 cores for Haswell; its SkylakeX kernels are
// ~1.6x faster there (bench/bench_train.c). Re-run ourselves once with the
// variable set; a user's own setting always wins.
static void maybe_reexec_for_openblas(char **argv) {
    if (getenv("OPENBLAS_CORETYPE") || getenv("VISVM_NO_REEXEC")) return;
    const vv_cpu_features *f = vv_cpu();
    if (!f->avx512f || !f->avx512bw || !f->avx512vl) return;
    setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
    setenv("VISVM_NO_REEXEC", "1", 1);
    execv("/proc/self/exe", argv);
    // exec failed: carry on with the default kernels
}

int main(int argc, char **argv) {
    maybe_reexec_for_openblas(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("visvm %s\n", visvm_version());
        return 0;
    }
    for (int i = 0; i < N_CMDS; i++)
        if (!strcmp(argv[1], g_cmds[i].name)) return g_cmds[i].fn(argc, argv);
    fprintf(stderr, "visvm: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}

// ---------------------------------------------------------------------------
// option parser

void cli_print_help(const char *cmd, const char *usage_line, const char *desc, const cli_opt *opts, int n_opts) {
    printf("usage: visvm %s %s\n\n%s\n\noptions:\n", cmd, usage_line, desc);
    for (int i = 0; i < n_opts; i++) {
        const cli_opt *o = &opts[i];
        char names[64], def[128] = "";
        snprintf(names, sizeof(names), "%s%s%s", o->shrt ? o->shrt : "", o->shrt ? ", " : "", o->lng);
        const char *arg = o->type == CLI_STR ? " S" : o->type == CLI_FLAG ? "" : o->type == CLI_FLOAT ? " F" : " N";
        switch (o->type) {
        case CLI_STR: {
            const char *v = *(const char **)o->dst;
            snprintf(def, sizeof(def), "%s%s%s", v ? "\"" : "", v ? v : "none", v ? "\"" : "");
            break;
        }
        case CLI_INT: snprintf(def, sizeof(def), "%d", *(int *)o->dst); break;
        case CLI_U64: snprintf(def, sizeof(def), "%llu", (unsigned long long)*(uint64_t *)o->dst); break;
        case CLI_FLOAT: snprintf(def, sizeof(def), "%g", (double)*(float *)o->dst); break;
        case CLI_FLAG: snprintf(def, sizeof(def), "%s", *(bool *)o->dst ? "on" : "off"); break;
        }
        char left[96];
        snprintf(left, sizeof(left), "%s%s", names, arg);
        printf("  %-26s %s (default: %s)\n", left, o->help, def);
    }
    printf("  %-26s %s\n", "-h, --help", "show this help");
}

static int parse_value(const char *cmd, const cli_opt *o, const char *v) {
    char *end = NULL;
    errno = 0;
    switch (o->type) {
    case CLI_STR: *(const char **)o->dst = v; return 0;
    case CLI_INT: {
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end || x < -2147483647L || x > 2147483647L) break;
        if (o->lo <= o->hi && (x < o->lo || x > o->hi)) {
            fprintf(stderr, "visvm %s: %s %ld is out of range [%g, %g]\n", cmd, o->lng, x, o->lo, o->hi);
            return 2;
        }
        *(int *)o->dst = (int)x;
        return 0;
    }
    case CLI_U64: {
        if (*v == '-') break;
        unsigned long long x = strtoull(v, &end, 10);
        if (errno || end == v || *end) break;
        *(uint64_t *)o->dst = (uint64_t)x;
        return 0;
    }
    case CLI_FLOAT: {
        double x = strtod(v, &end);
        if (errno || end == v || *end || !isfinite(x)) break;
        if (o->lo <= o->hi && (x < o->lo || x > o->hi)) {
            fprintf(stderr, "visvm %s: %s %g is out of range [%g, %g]\n", cmd, o->lng, x, o->lo, o->hi);
            return 2;
        }
        *(float *)o->dst = (float)x;
        return 0;
    }
    }
    fprintf(stderr, "visvm %s: invalid value '%s' for %s\n", cmd, v, o->lng);
    return 2;
}

int cli_parse(const char *cmd, const char *usage_line, const char *desc, cli_opt *opts, int n_opts, int argc,
              char **argv, int first, const char **pos, int max_pos, int *n_pos) {
    *n_pos = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cli_print_help(cmd, usage_line, desc, opts, n_opts);
            return 1;
        }
        if (a[0] == '-' && a[1] != 0 && !(a[1] >= '0' && a[1] <= '9')) {
            const char *eq = strchr(a, '=');
            size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
            const cli_opt *o = NULL;
            for (int j = 0; j < n_opts; j++)
                if ((strlen(opts[j].lng) == nlen && !strncmp(opts[j].lng, a, nlen)) ||
                    (opts[j].shrt && strlen(opts[j].shrt) == nlen && !strncmp(opts[j].shrt, a, nlen)))
                    o = &opts[j];
            if (!o) {
                fprintf(stderr, "visvm %s: unknown option '%.*s' (see visvm %s --help)\n", cmd, (int)nlen, a, cmd);
                return 2;
            }
            if (o->type == CLI_FLAG) {
                if (eq) {
                    fprintf(stderr, "visvm %s: %s takes no value\n", cmd, o->lng);
                    return 2;
                }
                *(bool *)o->dst = true;
                continue;
            }
            const char *v = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) {
                fprintf(stderr, "visvm %s: %s needs a value\n", cmd, o->lng);
                return 2;
            }
            int rc = parse_value(cmd, o, v);
            if (rc) return rc;
        } else {
            if (*n_pos >= max_pos) {
                fprintf(stderr, "visvm %s: unexpected argument '%s'\n", cmd, a);
                return 2;
            }
            pos[(*n_pos)++] = a;
        }
    }
    return 0;
}
