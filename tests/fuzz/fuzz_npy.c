/* fuzz_npy.c: the .npy reader (io/npy.h), whole arrays and 1-D score vectors. */
#include <stdlib.h>

#include "io/npy.h"
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(npy) {
    const char *path = fuzz_file("in.npy", data, size);
    if (!path) return 0;
    aqa_npy_array a;
    if (aqa_npy_load(path, &a) == AQA_OK) aqa_npy_free(&a);
    double *v = NULL;
    size_t n = 0;
    if (aqa_npy_read_vector(path, &v, &n) == AQA_OK) free(v);
    return 0;
}
