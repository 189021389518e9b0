// tcheck.h - minimal test helpers: CHECK() records failures and continues,
// tests return tc_result() (0 pass, 1 fail) or TC_SKIP (77, CTest "skipped").
#ifndef TCHECK_H
#define TCHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define TC_SKIP 77

static int tc_failures = 0;
static int tc_checks = 0;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        tc_checks++;                                                                 \
        if (!(cond)) {                                                               \
            tc_failures++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                            \
    } while (0)

#define CHECKF(cond, ...)                                                            \
    do {                                                                             \
        tc_checks++;                                                                 \
        if (!(cond)) {                                                               \
            tc_failures++;                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                            \
            fputc('\n', stderr);                                                     \
        }                                                                            \
    } while (0)

#define CHECK_NEAR(a, b, tol) CHECKF(fabs((double)(a) - (double)(b)) <= (tol), "%g vs %g (tol %g)", \
                                     (double)(a), (double)(b), (double)(tol))

static inline int tc_result(const char *name) {
    if (tc_failures) {
        fprintf(stderr, "%s: %d of %d checks FAILED\n", name, tc_failures, tc_checks);
        return 1;
    }
    printf("%s: all %d checks passed\n", name, tc_checks);
    return 0;
}

// dir/name in one of four rotating buffers (a few may be live at once).
static inline const char *tc_path(const char *dir, const char *name) {
    static char p[4][512];
    static int k = 0;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof(p[k]), "%s/%s", dir, name);
    return p[k];
}

// Golden data directory, or NULL (with a message) when absent.
static inline const char *tc_golden_dir(void) {
    const char *d = getenv("VISVM_GOLDEN_DIR");
    if (!d) d = VISVM_GOLDEN_DIR;
    static char path[4096];
    snprintf(path, sizeof(path), "%s/index.json", d);
    struct stat st;
    if (stat(path, &st) != 0) {
        printf("golden data not found at %s: skipping (set VISVM_GOLDEN_DIR)\n", d);
        return NULL;
    }
    return d;
}

// Reads a whole file (malloc'd); NULL on failure.
static inline void *tc_read(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (size) *size = n > 0 ? (size_t)n : 0;
    return buf;
}

#endif
