// hf_policy.c - `visvm eval -m HF_DIR` / `visvm generate -m HF_DIR`: the
// batched search decodes through the GGUF engine (vv_llama + vv_clip), so a
// Hugging Face LLaVA-NeXT directory given as the policy is converted on the
// fly (vv_hf_convert) into a private mkdtemp directory under $TMPDIR or /tmp.
//
// The weight type is F16, not F32: the released checkpoints store BF16/F16,
// so F32 would double them (28 GB for a 7B policy, and /tmp is often a tmpfs
// in RAM) without adding precision beyond the BF16 -> F16 rounding; `visvm
// golden ../shared/golden-hf --convert f16` keeps the greedy ids identical.
// For an exact F32 policy run `visvm convert HF_DIR OUT --type f32` and pass
// -m OUT/text.gguf --mmproj OUT/mmproj.gguf.
//
// The files are mmapped by the loaders, so callers remove them right after
// loading (the mappings stay valid) and again on every exit path.
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "model/hf_convert.h"

int cli_resolve_hf_policy(const char *m, const char *mmproj, char *text_out, char *mmproj_out, char *tmpdir_out,
                          vv_error *e) {
    text_out[0] = mmproj_out[0] = tmpdir_out[0] = '\0';
    if (!vv_hf_is_dir(m)) return VISVM_OK;
    if (mmproj)
        return vv_err(e, VISVM_ERR_INVALID, "%s is a Hugging Face directory: it brings its own vision tower, drop --mmproj",
                      m);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    if (snprintf(tmpdir_out, CLI_PATH_MAX, "%s/visvm-hf-XXXXXX", tmp) >= CLI_PATH_MAX - 32) {
        tmpdir_out[0] = '\0';
        return vv_err(e, VISVM_ERR_RANGE, "TMPDIR path too long");
    }
    if (!mkdtemp(tmpdir_out)) {
        int rc = vv_err(e, VISVM_ERR_IO, "cannot create a temporary directory under %s: %s", tmp, strerror(errno));
        tmpdir_out[0] = '\0';
        return rc;
    }
    snprintf(text_out, CLI_PATH_MAX, "%s/text.gguf", tmpdir_out);
    snprintf(mmproj_out, CLI_PATH_MAX, "%s/mmproj.gguf", tmpdir_out);
    int rc = vv_hf_convert(m, tmpdir_out, VV_TYPE_F16, e);
    if (rc) {
        cli_hf_policy_cleanup(tmpdir_out);
        return rc;
    }
    fprintf(stderr, "visvm: converted Hugging Face directory %s to F16 GGUF in %s (removed after loading)\n", m,
            tmpdir_out);
    return VISVM_OK;
}

void cli_hf_policy_cleanup(char *tmpdir) {
    if (!tmpdir || !tmpdir[0]) return;
    DIR *d = opendir(tmpdir); // only this process writes there: text/mmproj GGUFs and their atomic temp files
    if (d) {
        char p[CLI_PATH_MAX + 260];
        for (struct dirent *de; (de = readdir(d));) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
            snprintf(p, sizeof(p), "%s/%s", tmpdir, de->d_name);
            unlink(p);
        }
        closedir(d);
    }
    if (rmdir(tmpdir)) fprintf(stderr, "visvm: warning: cannot remove %s\n", tmpdir);
    tmpdir[0] = '\0';
}
