// replay.c - main() for fuzz targets built without libFuzzer: runs the
// target over every file named, or every file in every folder named.
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/base.h"
#include "fuzz.h"

static int run_file(const char *path, int *n) {
    char *buf = NULL;
    size_t len = 0;
    vv_error e = {0};
    if (vv_read_file(path, &buf, &len, &e)) {
        fprintf(stderr, "replay: %s\n", e.msg);
        return 1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
    free(buf);
    (*n)++;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

int main(int argc, char **argv) {
    int n = 0, bad = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st)) {
            fprintf(stderr, "replay: %s does not exist\n", argv[i]);
            bad = 1;
            continue;
        }
        if (!S_ISDIR(st.st_mode)) {
            bad |= run_file(argv[i], &n);
            continue;
        }
        DIR *d = opendir(argv[i]);
        if (!d) continue;
        char **names = NULL;
        size_t nn = 0;
        struct dirent *de;
        while ((de = readdir(d))) {
            if (de->d_name[0] == '.') continue;
            names = realloc(names, (nn + 1) * sizeof(char *));
            names[nn++] = strdup(de->d_name);
        }
        closedir(d);
        qsort(names, nn, sizeof(char *), cmp_str); // a stable order for reports
        for (size_t j = 0; j < nn; j++) {
            char p[4096];
            snprintf(p, sizeof(p), "%s/%s", argv[i], names[j]);
            bad |= run_file(p, &n);
            free(names[j]);
        }
        free(names);
    }
    printf("replay: %d inputs, none crashed\n", n);
    return bad;
}
