/* fuzz_feature_cache.c: per-video feature files (datasets/feature_cache.h): the cache's
 * safetensors files and Fis-V's .npy features, as the video dataset reads them. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/feature_cache.h"
#include "tests/fuzz/fuzz.h"

/* Reads a tensor the way the video dataset does: its shape first, then the values (the map is
 * 4-D, the others 2-D; Fis-V's .npy files 2-D). */
static void read_tensor(const char *path, const char *name, bool npy) {
    int nd = 2;
    int64_t sh[4] = {0, 0, 1, 1}, n = 1;
    if ((npy ? aqa_feature_npy_dims(path, &sh[0], &sh[1]) : aqa_feature_cache_dims(path, name, &nd, sh)) != AQA_OK) return;
    for (int d = 0; d < nd; d++) {
        if (sh[d] <= 0 || sh[d] > 4096) return;
        n *= sh[d];
    }
    if (n > (1 << 22)) return;
    float *x = malloc((size_t)n * sizeof *x);
    if (x) {
        if (npy) aqa_feature_npy_read(path, sh[0], sh[1], x);
        else aqa_feature_cache_read(path, name, nd, sh, x);
    }
    free(x);
}

FUZZ_TARGET(feature_cache) {
    bool npy = size >= 6 && !memcmp(data, "\x93NUMPY", 6);
    const char *path = fuzz_file(npy ? "1.npy" : "v__1.safetensors", data, size);
    if (!path) return 0;
    if (npy) {
        read_tensor(path, NULL, true);
        return 0;
    }
    aqa_feature_cache_valid(path, "v/1", true, -1, -1, true, -1, -1);
    read_tensor(path, "clip", false);
    read_tensor(path, "i3d", false);
    read_tensor(path, "i3d_map", false);
    return 0;
}
