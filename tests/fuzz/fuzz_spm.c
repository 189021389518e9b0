// fuzz_spm.c - arbitrary bytes as a SentencePiece tokenizer.model (our own
// protobuf reader); a model that parses becomes a vocabulary (with an added
// <image> token after its pieces) and tokenizes / detokenizes a few texts.
#include <stdlib.h>
#include <string.h>

#include "base/base.h"
#include "fuzz.h"
#include "text/spm_model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FZ_MAX_FILE) return 0;
    vv_spm_model m;
    vv_error e = {0};
    int rc = vv_spm_model_parse(data, size, &m, &e);
    fz_say("spm", &e);
    if (rc) return 0;
    vv_added_token added[2] = {{"<image>", m.n, true}, {"<pad>", m.n + 1, false}};
    vv_vocab *v = NULL;
    rc = vv_spm_vocab_create(&m, added, 2, true, false, &v, &e);
    fz_say("vocab", &e);
    if (!rc) {
        static const char *texts[] = {"USER: <image>\nDescribe the image. ASSISTANT:", "  a  b\t\xc3\xa9\xff", ""};
        for (int i = 0; i < 3; i++) {
            vv_ivec ids = {0};
            if (!vv_tokenize(v, texts[i], strlen(texts[i]), true, true, &ids, &e)) {
                for (size_t j = 0; j < ids.n; j++)
                    if (ids.v[j] < 0 || ids.v[j] >= vv_vocab_n(v)) __builtin_trap();
                vv_buf out = {0};
                vv_detokenize(v, ids.v, ids.n, false, true, &out);
                free(out.v);
            }
            vv_ivec_free(&ids);
        }
        vv_vocab_free(v);
    }
    vv_spm_model_free(&m);
    return 0;
}
