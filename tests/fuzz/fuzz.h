// fuzz.h - shared by the fuzz targets (tests/fuzz/fuzz_*.c).
//
// Each target defines LLVMFuzzerTestOneInput. Built two ways:
//  - with clang and VISVM_FUZZ=ON: libFuzzer (-fsanitize=fuzzer), for fuzzing
//    runs (README "Fuzzing");
//  - otherwise with replay.c as main: runs the target over files and folders
//    given on the command line. CTest replays the generated seeds
//    (fuzz_seeds) and the inputs that once crashed (tests/fuzz/regress/) under
//    the normal and ASan/UBSan builds, so every bug found stays fixed.
// A target may only fail by crashing (or a sanitizer report): every input,
// however malformed, must come back as an error code.
#ifndef VV_FUZZ_H
#define VV_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

// Tiny models for seeds and the structured targets (tiny.c). Memory images
// written by our GGUF writer; free() them.
// A 1-layer llama (n_embd 32, 4 heads / 2 KV heads, n_ff 64, 48 tokens with
// an SPM vocabulary), matrices in `type` (VV_TYPE_F32 / F16 / Q8_0 / Q4_0).
void *fz_tiny_llama(int type, size_t *size);

// Opens data as GGUF; on success walks every key and tensor, loads the
// vocabulary, the llama and the CLIP model (both vision modes) and runs what
// loads on a few tokens / a small image (exercise.c).
void fz_exercise_gguf(const uint8_t *data, size_t size);

// The seven JSON files of a Hugging Face model directory that fuzz_hf
// replaces (and fuzz_seeds takes its seeds from), and where the golden-hf
// models are ($VISVM_GOLDEN_HF_DIR, else ../shared/golden-hf beside the
// source tree).
#define FZ_N_HF_FILES 7
extern const char *const fz_hf_files[FZ_N_HF_FILES];
const char *fz_golden_hf_dir(void);

// FZ_VERBOSE=1 in the environment: prints which stage refused an input and
// why (to see that seeds and new inputs get deep).
struct vv_error;
void fz_say(const char *stage, const struct vv_error *e);

// Bounds the work a fuzzed model may ask for (values in the header drive
// allocations: the loaders accept them if consistent with the tensors).
#define FZ_MAX_FILE (1u << 22)

#endif
