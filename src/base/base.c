// base.c - errors, memory, fp16/bf16, time, logging, files, RNG.
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

// ---------------------------------------------------------------------------
// errors

int vv_err(vv_error *e, int code, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
        va_end(ap);
        e->code = code;
    }
    return code;
}

int vv_err_prefix(vv_error *e, int code, const char *fmt, ...) {
    if (!e) return code;
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    char old[sizeof(e->msg)];
    memcpy(old, e->msg, sizeof(old));
    old[sizeof(old) - 1] = 0;
    // truncation of very long messages is intended
    size_t np = strlen(prefix), no = strlen(old);
    if (np > sizeof(e->msg) - 3) np = sizeof(e->msg) - 3;
    if (no > sizeof(e->msg) - 3 - np) no = sizeof(e->msg) - 3 - np;
    memcpy(e->msg, prefix, np);
    memcpy(e->msg + np, ": ", 2);
    memcpy(e->msg + np + 2, old, no);
    e->msg[np + 2 + no] = 0;
    if (e->code == 0) e->code = code;
    return e->code;
}

void vv_err_clear(vv_error *e) {
    if (e) { e->code = 0; e->msg[0] = 0; }
}

// ---------------------------------------------------------------------------
// memory

void *vv_aalloc(size_t size) {
    void *p = NULL;
    if (size == 0) size = 64;
    size = (size + 63) & ~(size_t)63;
    if (posix_memalign(&p, 64, size) != 0) return NULL;
    return p;
}

void *vv_aalloc_huge(size_t size) {
    const size_t huge = (size_t)2 << 20;
    if (size < huge) return vv_aalloc(size);
    void *p = NULL;
    size = (size + 63) & ~(size_t)63;
    if (posix_memalign(&p, huge, size) != 0) return NULL;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    // a hint (THP "madvise" mode): fewer TLB misses while the weights stream. Only the
    // whole 2 MiB pages inside the buffer: a huge page faulted over the tail would add
    // up to 2 MiB of resident memory per matrix
    madvise(p, size & ~(huge - 1), MADV_HUGEPAGE);
#endif
    return p;
}

void *vv_acalloc(size_t size) {
    void *p = vv_aalloc(size);
    if (p) memset(p, 0, size ? size : 64);
    return p;
}

void vv_afree(void *p) { free(p); }

static int grow(void **v, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return VISVM_OK;
    size_t nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return VISVM_ERR_NOMEM;
        nc *= 2;
    }
    void *nv = realloc(*v, nc * elem);
    if (!nv) return VISVM_ERR_NOMEM;
    *v = nv;
    *cap = nc;
    return VISVM_OK;
}

int vv_ivec_push(vv_ivec *a, int32_t x) {
    int rc = grow((void **)&a->v, &a->cap, a->n + 1, sizeof(int32_t));
    if (rc) return rc;
    a->v[a->n++] = x;
    return VISVM_OK;
}

int vv_ivec_append(vv_ivec *a, const int32_t *x, size_t n) {
    int rc = grow((void **)&a->v, &a->cap, a->n + n, sizeof(int32_t));
    if (rc) return rc;
    if (n) memcpy(a->v + a->n, x, n * sizeof(int32_t));
    a->n += n;
    return VISVM_OK;
}

void vv_ivec_free(vv_ivec *a) {
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

int vv_fvec_push(vv_fvec *a, float x) {
    int rc = grow((void **)&a->v, &a->cap, a->n + 1, sizeof(float));
    if (rc) return rc;
    a->v[a->n++] = x;
    return VISVM_OK;
}

int vv_fvec_resize(vv_fvec *a, size_t n) {
    int rc = grow((void **)&a->v, &a->cap, n, sizeof(float));
    if (rc) return rc;
    a->n = n;
    return VISVM_OK;
}

void vv_fvec_free(vv_fvec *a) {
    free(a->v);
    a->v = NULL;
    a->n = a->cap = 0;
}

int vv_buf_append(vv_buf *b, const void *data, size_t n) {
    int rc = grow((void **)&b->v, &b->cap, b->n + n + 1, 1);
    if (rc) return rc;
    if (n) memcpy(b->v + b->n, data, n);
    b->n += n;
    b->v[b->n] = 0;
    return VISVM_OK;
}

int vv_buf_printf(vv_buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return VISVM_ERR_INVALID;
    int rc = grow((void **)&b->v, &b->cap, b->n + (size_t)n + 1, 1);
    if (rc) return rc;
    va_start(ap, fmt);
    vsnprintf(b->v + b->n, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->n += (size_t)n;
    return VISVM_OK;
}

void vv_buf_free(vv_buf *b) {
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

char *vv_strdup(const char *s) { return s ? vv_strndup(s, strlen(s)) : NULL; }

char *vv_strndup(const char *s, size_t n) {
    char *r = malloc(n + 1);
    if (!r) return NULL;
    memcpy(r, s, n);
    r[n] = 0;
    return r;
}

// ---------------------------------------------------------------------------
// fp16 / bf16 (bit-exact with F16C's round-to-nearest-even conversions)

static inline uint32_t f2u(float f) { union { float f; uint32_t u; } v = {f}; return v.u; }
static inline float u2f(uint32_t u) { union { uint32_t u; float f; } v = {u}; return v.f; }

float vv_fp16_to_fp32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0) {
        if (man == 0) return u2f(sign);
        // subnormal: value = man * 2^-24
        float v = (float)man * 5.9604644775390625e-08f;
        return sign ? -v : v;
    }
    if (exp == 31) return u2f(sign | 0x7f800000u | (man << 13)); // inf / nan
    return u2f(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t vv_fp32_to_fp16(float f) {
    uint32_t x = f2u(f);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffff;
    if (ax >= 0x7f800000u) { // inf or nan
        return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 | ((ax >> 13) & 0x3ff) : 0));
    }
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); // rounds to >= 65520 -> inf
    if (ax < 0x38800000u) { // below fp16 normal range: subnormal or zero
        // value / 2^-24, rounded to nearest even
        float a = u2f(ax) * 16777216.0f; // exact (power of two scaling)
        // a is in [0, 1024); round half to even
        float r = rintf(a); // default rounding mode is nearest-even
        return (uint16_t)(sign | (uint32_t)r);
    }
    // normal: rebias exponent, round mantissa to 10 bits (nearest even)
    uint32_t m = ax + 0xfff + ((ax >> 13) & 1);
    m -= (112u << 23);
    return (uint16_t)(sign | (m >> 13));
}

uint16_t vv_fp32_to_bf16(float f) {
    uint32_t u = f2u(f);
    if ((u & 0x7fffffff) > 0x7f800000) return (uint16_t)((u >> 16) | 64); // quiet nan
    return (uint16_t)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
}

void vv_fp16_to_fp32_row(const uint16_t *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = vv_fp16_to_fp32(x[i]);
}

void vv_fp32_to_fp16_row(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = vv_fp32_to_fp16(x[i]);
}

// ---------------------------------------------------------------------------
// time and logging

int64_t vv_time_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double vv_time_s(void) { return (double)vv_time_us() * 1e-6; }

static int g_log_level = -1;

int vv_log_get_level(void) {
    if (g_log_level < 0) {
        const char *s = getenv("VISVM_LOG");
        g_log_level = s ? atoi(s) : 1;
    }
    return g_log_level;
}

void vv_log_set_level(int level) { g_log_level = level; }

void vv_log(int level, const char *fmt, ...) {
    if (level > vv_log_get_level()) return;
    static const char *names[] = {"error", "warn", "info", "debug"};
    fprintf(stderr, "visvm %s: ", names[level < 0 ? 0 : level > 3 ? 3 : level]);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

// ---------------------------------------------------------------------------
// files

int vv_mmap_open(const char *path, vv_mmap *m, vv_error *e) {
    m->addr = NULL;
    m->size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vv_err(e, VISVM_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int err = errno;
        close(fd);
        return vv_err(e, VISVM_ERR_IO, "cannot stat '%s': %s", path, strerror(err));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return vv_err(e, VISVM_ERR_IO, "'%s' is not a regular file", path);
    }
    if (st.st_size > 0) {
        void *a = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (a == MAP_FAILED) {
            int err = errno;
            close(fd);
            return vv_err(e, VISVM_ERR_IO, "cannot mmap '%s': %s", path, strerror(err));
        }
        m->addr = a;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return VISVM_OK;
}

void vv_mmap_release(const vv_mmap *m, const void *p, size_t n) {
    if (!m || !m->addr || !p || !n) return;
    const uintptr_t a = (uintptr_t)m->addr, e = a + m->size, ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = (uintptr_t)p, hi = lo + n;
    if (lo < a || hi > e || hi < lo) return;
    lo = (lo + ps - 1) / ps * ps;
    hi = hi / ps * ps;
    if (hi > lo) madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

void vv_mmap_close(vv_mmap *m) {
    if (m && m->addr) munmap(m->addr, m->size);
    if (m) { m->addr = NULL; m->size = 0; }
}

char *vv_next_line(char **p, int *line_no) {
    while (**p) {
        char *line = *p, *nl = strchr(line, '\n');
        if (nl) *nl = 0;
        *p = nl ? nl + 1 : line + strlen(line);
        (*line_no)++;
        while (*line == ' ' || *line == '\t' || *line == '\r') line++;
        if (*line) return line;
    }
    return NULL;
}

int vv_read_file(const char *path, char **data, size_t *size, vv_error *e) {
    *data = NULL;
    if (size) *size = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return vv_err(e, VISVM_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    vv_buf b = {0};
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
        if (vv_buf_append(&b, tmp, n)) {
            fclose(f);
            vv_buf_free(&b);
            return vv_err(e, VISVM_ERR_NOMEM, "out of memory reading '%s'", path);
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        vv_buf_free(&b);
        return vv_err(e, VISVM_ERR_IO, "read error on '%s'", path);
    }
    if (!b.v) { // empty file
        b.v = calloc(1, 1);
        if (!b.v) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    }
    *data = b.v;
    if (size) *size = b.n;
    return VISVM_OK;
}

int vv_atomic_open(vv_atomic_file *f, const char *path, vv_error *e) {
    memset(f, 0, sizeof(*f));
    vv_buf b = {0};
    if (vv_buf_printf(&b, "%s.tmp.%ld", path, (long)getpid())) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    FILE *fp = fopen(b.v, "wb");
    if (!fp) {
        int rc = vv_err(e, VISVM_ERR_IO, "cannot create '%s': %s", b.v, strerror(errno));
        vv_buf_free(&b);
        return rc;
    }
    f->fp = fp;
    f->tmp_path = b.v;
    f->path = vv_strdup(path);
    return VISVM_OK;
}

int vv_atomic_write(vv_atomic_file *f, const void *data, size_t size, vv_error *e) {
    if (!f->fp) return vv_err(e, VISVM_ERR_INVALID, "atomic file not open");
    if (size && fwrite(data, 1, size, (FILE *)f->fp) != size)
        return vv_err(e, VISVM_ERR_IO, "write error on '%s': %s", f->tmp_path, strerror(errno));
    return VISVM_OK;
}

int vv_atomic_commit(vv_atomic_file *f, vv_error *e) {
    int rc = VISVM_OK;
    FILE *fp = (FILE *)f->fp;
    if (!fp) return vv_err(e, VISVM_ERR_INVALID, "atomic file not open");
    if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
        rc = vv_err(e, VISVM_ERR_IO, "cannot flush '%s': %s", f->tmp_path, strerror(errno));
    if (fclose(fp) != 0 && rc == VISVM_OK)
        rc = vv_err(e, VISVM_ERR_IO, "cannot close '%s': %s", f->tmp_path, strerror(errno));
    f->fp = NULL;
    if (rc == VISVM_OK && rename(f->tmp_path, f->path) != 0)
        rc = vv_err(e, VISVM_ERR_IO, "cannot rename '%s' to '%s': %s", f->tmp_path, f->path, strerror(errno));
    if (rc != VISVM_OK) unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    f->tmp_path = f->path = NULL;
    return rc;
}

void vv_atomic_abort(vv_atomic_file *f) {
    if (f->fp) fclose((FILE *)f->fp);
    if (f->tmp_path) unlink(f->tmp_path);
    free(f->tmp_path);
    free(f->path);
    memset(f, 0, sizeof(*f));
}

int vv_write_file_atomic(const char *path, const void *data, size_t size, vv_error *e) {
    vv_atomic_file f;
    int rc = vv_atomic_open(&f, path, e);
    if (rc) return rc;
    rc = vv_atomic_write(&f, data, size, e);
    if (rc) {
        vv_atomic_abort(&f);
        return rc;
    }
    return vv_atomic_commit(&f, e);
}

bool vv_file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

int vv_mkdir_p(const char *path, vv_error *e) {
    char *p = vv_strdup(path);
    if (!p) return vv_err(e, VISVM_ERR_NOMEM, "out of memory");
    for (char *s = p + 1; *s; s++) {
        if (*s == '/') {
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                int rc = vv_err(e, VISVM_ERR_IO, "cannot create directory '%s': %s", p, strerror(errno));
                free(p);
                return rc;
            }
            *s = '/';
        }
    }
    int rc = VISVM_OK;
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        rc = vv_err(e, VISVM_ERR_IO, "cannot create directory '%s': %s", p, strerror(errno));
    free(p);
    return rc;
}

// ---------------------------------------------------------------------------
// RNG

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void vv_rng_seed(vv_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t vv_rng_u64(vv_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double vv_rng_uniform(vv_rng *r) { return (double)(vv_rng_u64(r) >> 11) * (1.0 / 9007199254740992.0); }

float vv_rng_normal(vv_rng *r) {
    double u1 = vv_rng_uniform(r), u2 = vv_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

uint32_t vv_rng_below(vv_rng *r, uint32_t n) {
    if (n == 0) return 0;
    return (uint32_t)(((vv_rng_u64(r) >> 32) * (uint64_t)n) >> 32);
}
