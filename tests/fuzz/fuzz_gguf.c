// fuzz_gguf.c - arbitrary bytes as a GGUF file (see exercise.c).
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fz_exercise_gguf(data, size);
    return 0;
}
