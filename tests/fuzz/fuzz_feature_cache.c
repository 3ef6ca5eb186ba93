/* fuzz_feature_cache.c: per-video feature files (datasets/feature_cache.h): the cache's
 * safetensors files and Fis-V's .npy features, as the video dataset reads them. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/feature_cache.h"
#include "tests/fuzz/fuzz.h"

static void read_2d(const char *path, const char *name, bool npy) {
    int64_t r = 0, c = 0;
    if ((npy ? aqa_feature_npy_dims(path, &r, &c) : aqa_feature_cache_dims(path, name, &r, &c)) != AQA_OK) return;
    if (r <= 0 || c <= 0 || r > 4096 || c > 4096) return;
    float *x = malloc((size_t)(r * c) * sizeof *x);
    if (x) {
        if (npy) aqa_feature_npy_read(path, r, c, x);
        else aqa_feature_cache_read(path, name, r, c, x);
    }
    free(x);
}

FUZZ_TARGET(feature_cache) {
    bool npy = size >= 6 && !memcmp(data, "\x93NUMPY", 6);
    const char *path = fuzz_file(npy ? "1.npy" : "v__1.safetensors", data, size);
    if (!path) return 0;
    if (npy) {
        read_2d(path, NULL, true);
        return 0;
    }
    aqa_feature_cache_valid(path, "v/1", true, -1, -1, true, -1, -1);
    read_2d(path, "clip", false);
    read_2d(path, "i3d", false);
    return 0;
}
