/* fuzz_util.c: scratch files for the fuzzing harnesses (see fuzz.h). */
#include "tests/fuzz/fuzz.h"

#include "datasets/annotations.h"
#include "image/image.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_dir[256];

static void remove_dir(void) {
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[600];
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    rmdir(g_dir);
}

const char *fuzz_dir(void) {
    if (!g_dir[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/aqa_fuzz_XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(g_dir)) {
            perror("fuzz: mkdtemp");
            abort();
        }
        atexit(remove_dir);
    }
    return g_dir;
}

const char *fuzz_file(const char *name, const void *data, size_t n) {
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) return NULL;
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    if (fclose(f) != 0 || w != n) return NULL;
    return path;
}

int fuzz_files(const uint8_t *data, size_t size, const char *const *names, int n_names) {
    const size_t sl = strlen(FUZZ_SEP);
    size_t at = 0;
    for (int i = 0; i < n_names; i++) {
        size_t end = size;
        if (i + 1 < n_names)
            for (size_t k = at; k + sl <= size; k++)
                if (!memcmp(data + k, FUZZ_SEP, sl)) {
                    end = k;
                    break;
                }
        if (at > size) at = size;
        if (!fuzz_file(names[i], data + at, end - at)) return -1;
        at = end + sl;
    }
    return 0;
}

char *fuzz_text(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    if (!s) return NULL;
    if (size) memcpy(s, data, size);
    s[size] = 0;
    return s;
}

void fuzz_annotations(aqa_ann_manifest *(*loader)(const char *dir), const uint8_t *data, size_t size,
                      const char *const *names, int n_names) {
    if (fuzz_files(data, size, names, n_names)) return;
    aqa_ann_manifest *m = loader(fuzz_dir());
    for (size_t i = 0; m && i < m->n_samples; i++) aqa_ann_find(m, m->samples[i].key);
    for (size_t i = 0; m && i < m->n_splits; i++) aqa_ann_find_split(m, m->splits[i].name);
    aqa_ann_free(m);
}

void fuzz_decode_image(const uint8_t *data, size_t size, const uint8_t *magic, size_t n_magic, const char *name) {
    uint8_t *buf = malloc(size + n_magic);
    if (!buf) return;
    size_t n = 0;
    if (size < n_magic || memcmp(data, magic, n_magic)) memcpy(buf, magic, n_magic), n = n_magic;
    if (size) memcpy(buf + n, data, size);
    aqa_image_free(aqa_image_decode(buf, n + size, name));
    free(buf);
}
