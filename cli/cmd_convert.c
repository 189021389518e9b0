// cmd_convert.c - `visvm convert HF_DIR OUT`: Hugging Face LLaVA-NeXT or
// VisVM value checkpoint -> OUT/text.gguf + OUT/mmproj.gguf (hf_convert.h).
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "model/hf_convert.h"

int cmd_convert(int argc, char **argv) {
    const char *type = "f16";
    cli_opt opts[] = {
        {"--type", NULL, CLI_STR, &type, "weight type of the matrices: f32, f16, q8_0, q4_0, q4_k", 0, -1},
    };
    const char *pos[2];
    int n_pos = 0;
    int rc = cli_parse("convert", "HF_DIR OUT_DIR [--type T]",
                       "Converts a Hugging Face LLaVA-NeXT (or VisVM value) directory into OUT_DIR/text.gguf and "
                       "OUT_DIR/mmproj.gguf, streaming tensor by tensor. The text file keeps HF's rotate-half RoPE "
                       "(llama.rope.neox); a value model's file also carries its flattened head.",
                       opts, 1, argc, argv, 2, pos, 2, &n_pos);
    if (rc) return rc == 1 ? 0 : 2;
    if (n_pos != 2) {
        fprintf(stderr, "visvm convert: expected HF_DIR and OUT_DIR (see --help)\n");
        return 2;
    }
    int t = vv_type_from_name(type);
    if (t < 0) {
        fprintf(stderr, "visvm convert: unknown --type '%s'\n", type);
        return 2;
    }
    vv_error e = {0};
    double t0 = vv_time_s();
    if ((rc = vv_hf_convert(pos[0], pos[1], t, &e))) {
        fprintf(stderr, "visvm convert: %s\n", e.msg);
        return 1;
    }
    printf("wrote %s/text.gguf and %s/mmproj.gguf (%s, %.1f s)\n", pos[1], pos[1], type, vv_time_s() - t0);
    return 0;
}
