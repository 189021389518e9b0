// base.h - internal foundation: status codes, error records, memory, fp16/bf16,
// time, files (mmap, atomic write), RNG. Every module includes this.
#ifndef VV_BASE_H
#define VV_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "visvm.h" // VISVM_OK / VISVM_ERR_* status codes

#ifdef __GNUC__
#define VV_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define VV_UNUSED __attribute__((unused))
#else
#define VV_PRINTF(a, b)
#define VV_UNUSED
#endif

#define VV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define VV_MAX(a, b) ((a) > (b) ? (a) : (b))

// ---------------------------------------------------------------------------
// Errors. Internal functions return an int status (VISVM_OK = 0, negative on
// failure) and fill an optional vv_error with a human-readable message that
// names the problem (file, key, tensor, value). Never exit/abort on bad input.
typedef struct vv_error {
    int code;
    char msg[512];
} vv_error;

// Sets e (if non-NULL) and returns code. Usage: return vv_err(e, VISVM_ERR_FORMAT, "...", ...);
int vv_err(vv_error *e, int code, const char *fmt, ...) VV_PRINTF(3, 4);
// Prefixes an existing message: "ctx: old message". Returns e->code (or code if e is NULL).
int vv_err_prefix(vv_error *e, int code, const char *fmt, ...) VV_PRINTF(3, 4);
void vv_err_clear(vv_error *e);

// ---------------------------------------------------------------------------
// Memory. 64-byte aligned (cache line, AVX-512). vv_afree(NULL) is a no-op.
void *vv_aalloc(size_t size);
// Same, for large buffers read as streams (repacked weights): from 2 MiB up,
// 2 MiB-aligned and advised as transparent huge pages. Freed by vv_afree.
void *vv_aalloc_huge(size_t size);
void *vv_acalloc(size_t size);
void vv_afree(void *p);

// Overflow-checked size arithmetic: returns false on overflow.
static inline bool vv_mul_ok(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return false;
    *out = a * b;
    return true;
}
static inline bool vv_add_ok(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return false;
    *out = a + b;
    return true;
}

// Growable arrays used all over the code base.
typedef struct vv_ivec { int32_t *v; size_t n, cap; } vv_ivec;
typedef struct vv_fvec { float *v; size_t n, cap; } vv_fvec;
typedef struct vv_buf  { char *v; size_t n, cap; } vv_buf; // bytes; kept NUL-terminated
int vv_ivec_push(vv_ivec *a, int32_t x);
int vv_ivec_append(vv_ivec *a, const int32_t *x, size_t n);
void vv_ivec_free(vv_ivec *a);
int vv_fvec_push(vv_fvec *a, float x);
int vv_fvec_resize(vv_fvec *a, size_t n);
void vv_fvec_free(vv_fvec *a);
int vv_buf_append(vv_buf *b, const void *data, size_t n);
int vv_buf_printf(vv_buf *b, const char *fmt, ...) VV_PRINTF(2, 3);
void vv_buf_free(vv_buf *b);
char *vv_strdup(const char *s);
char *vv_strndup(const char *s, size_t n);

// ---------------------------------------------------------------------------
// Half precision. Conversions round to nearest even, like F16C / ggml.
float vv_fp16_to_fp32(uint16_t h);
uint16_t vv_fp32_to_fp16(float f);
static inline float vv_bf16_to_fp32(uint16_t h) {
    union { uint32_t u; float f; } v;
    v.u = (uint32_t)h << 16;
    return v.f;
}
uint16_t vv_fp32_to_bf16(float f); // RNE, NaN kept quiet (as ggml)
// Rounds through fp16 and back (emulates ggml storing an activation as F16).
static inline float vv_round_fp16(float f) { return vv_fp16_to_fp32(vv_fp32_to_fp16(f)); }
void vv_fp16_to_fp32_row(const uint16_t *x, float *y, int64_t n);
void vv_fp32_to_fp16_row(const float *x, uint16_t *y, int64_t n);

// ---------------------------------------------------------------------------
// Time and logging.
int64_t vv_time_us(void);
double vv_time_s(void);
// Log levels: 0 error, 1 warn, 2 info, 3 debug. Default 1; env VISVM_LOG overrides.
void vv_log(int level, const char *fmt, ...) VV_PRINTF(2, 3);
void vv_log_set_level(int level);
int vv_log_get_level(void);

// ---------------------------------------------------------------------------
// Files.
typedef struct vv_mmap {
    void *addr;  // NULL for an empty file
    size_t size;
} vv_mmap;
int vv_mmap_open(const char *path, vv_mmap *m, vv_error *e);
void vv_mmap_close(vv_mmap *m);
// Drops this process's pages of [p, p + n) (whole pages inside the mapping
// only; a no-op elsewhere): they stop counting as resident and are read back
// from the file if touched again. For raw weights replaced by a repacked copy.
void vv_mmap_release(const vv_mmap *m, const void *p, size_t n);
// Reads a whole file into a malloc'd buffer (NUL-terminated, size excludes the NUL).
int vv_read_file(const char *path, char **data, size_t *size, vv_error *e);
// Line iterator over a NUL-terminated text buffer, splitting it in place:
// returns the next line with leading blanks (space, tab, CR) skipped, skipping
// blank lines, and advances *p; *line_no counts every line read (1-based).
// NULL at the end of the buffer.
char *vv_next_line(char **p, int *line_no);
// Writes data to path via "path.tmp.<pid>" + fsync + rename, so a crash never
// leaves a half-written file and never destroys the previous version.
int vv_write_file_atomic(const char *path, const void *data, size_t size, vv_error *e);
// Streaming variant: open a temp file next to path, write, then commit or abort.
typedef struct vv_atomic_file {
    void *fp;        // FILE*
    char *path;      // final path
    char *tmp_path;  // temporary path
} vv_atomic_file;
int vv_atomic_open(vv_atomic_file *f, const char *path, vv_error *e);
int vv_atomic_write(vv_atomic_file *f, const void *data, size_t size, vv_error *e);
int vv_atomic_commit(vv_atomic_file *f, vv_error *e); // flush, fsync, rename
void vv_atomic_abort(vv_atomic_file *f);               // remove temp file
bool vv_file_exists(const char *path);
int vv_mkdir_p(const char *path, vv_error *e);

// ---------------------------------------------------------------------------
// Deterministic RNG (xoshiro256**, seeded by splitmix64).
typedef struct vv_rng { uint64_t s[4]; } vv_rng;
void vv_rng_seed(vv_rng *r, uint64_t seed);
uint64_t vv_rng_u64(vv_rng *r);
double vv_rng_uniform(vv_rng *r);      // [0, 1)
float vv_rng_normal(vv_rng *r);        // N(0, 1), Box-Muller
uint32_t vv_rng_below(vv_rng *r, uint32_t n); // [0, n)

#endif
