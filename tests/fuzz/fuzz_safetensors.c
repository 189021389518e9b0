// fuzz_safetensors.c - arbitrary bytes as a .safetensors file: the header
// checks (JSON, dtypes, shapes, offsets) and every accessor; small tensors are
// converted to f32 (reads every byte a header claims).
#include <stdlib.h>
#include <string.h>

#include "format/safetensors.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > FZ_MAX_FILE) return 0;
    vv_safetensors *st = NULL;
    vv_error e = {0};
    int rc = vv_st_open_mem(data, size, &st, &e);
    fz_say("safetensors", &e);
    if (rc) return 0;
    volatile size_t sink = vv_st_total_bytes(st) + (size_t)vv_st_n_shards(st);
    const char *m = vv_st_metadata(st, "format");
    if (m) sink += strlen(m);
    for (int64_t i = 0; i < vv_st_n_tensors(st); i++) {
        const vv_st_tensor *t = vv_st_tensor_at(st, i);
        sink += vv_st_find(st, t->name) == t;
        sink += strlen(vv_st_dtype_name(t->dtype));
        if (t->nbytes) sink += ((const uint8_t *)t->data)[t->nbytes - 1]; // in bounds
        const int64_t n = vv_st_nelements(t);
        if (n > 0 && n <= (1 << 20)) {
            float *f = malloc(sizeof(float) * (size_t)n);
            if (f && !vv_st_to_f32(t, f, n, &e)) sink += f[n - 1] == f[n - 1];
            free(f);
        }
    }
    (void)sink;
    vv_st_close(st);
    return 0;
}
