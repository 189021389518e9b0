// cli.h - shared helpers of the visvm command-line program: a small option
// parser whose table also generates --help (every flag with its default).
#ifndef VV_CLI_H
#define VV_CLI_H

#include <stdbool.h>
#include <stdint.h>

enum cli_type { CLI_STR, CLI_INT, CLI_FLOAT, CLI_FLAG, CLI_U64 };

typedef struct cli_opt {
    const char *lng;   // "--model"
    const char *shrt;  // "-m" or NULL
    int type;          // enum cli_type
    void *dst;         // const char**, int*, float*, bool*, uint64_t*
    const char *help;
    double lo, hi;     // numeric range (ignored when lo > hi)
} cli_opt;

// Parses argv[first..argc). Positional arguments are returned in pos (up to
// max_pos). Returns 0, 1 if --help was printed, or 2 on error (message printed).
int cli_parse(const char *cmd, const char *usage, const char *desc, cli_opt *opts, int n_opts, int argc, char **argv,
              int first, const char **pos, int max_pos, int *n_pos);
void cli_print_help(const char *cmd, const char *usage, const char *desc, const cli_opt *opts, int n_opts);

int cmd_caption(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_golden(int argc, char **argv);
// Hugging Face reference sets (index.json with "arrays" + "facts"); index_json is a cJSON object.
int cmd_golden_hf(const char *dir, const void *index_json, int threads, bool verbose, const char *convert);
int cmd_bench(int argc, char **argv);
int cmd_world(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_reward(int argc, char **argv);
int cmd_value(int argc, char **argv);
int cmd_chair(int argc, char **argv);
int cmd_convert(int argc, char **argv);

// Policy -m of eval / generate (hf_policy.c). When m is a Hugging Face
// directory and mmproj is NULL (not given), converts it to F16 GGUF in a fresh
// mkdtemp directory ($TMPDIR or /tmp) and fills text_out, mmproj_out and
// tmpdir_out (CLI_PATH_MAX bytes each); otherwise leaves them "" (use m and the
// --mmproj value). An HF directory with --mmproj is an error. Call
// cli_hf_policy_cleanup(tmpdir_out) once the GGUFs are loaded (they are
// mmapped) and on every exit path; it removes the directory, then sets "".
#define CLI_PATH_MAX 4096
struct vv_error;
int cli_resolve_hf_policy(const char *m, const char *mmproj, char *text_out, char *mmproj_out, char *tmpdir_out,
                          struct vv_error *e);
void cli_hf_policy_cleanup(char *tmpdir);

// Writes one JSON value (a cJSON *) as a line to f (cmd_data.c): the JSONL
// outputs of generate, reward and world sentences.
struct vv_atomic_file;
int cli_jsonl_line(struct vv_atomic_file *f, const void *json, struct vv_error *e);

#endif
