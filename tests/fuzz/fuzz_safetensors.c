/* fuzz_safetensors.c: the safetensors reader (io/safetensors.h) and the tensor loader on top. */
#include <stdlib.h>

#include "io/safetensors.h"
#include "tensor/tensor_file.h"
#include "tensor/tensor.h"
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(safetensors) {
    const char *path = fuzz_file("in.safetensors", data, size);
    aqa_st_file *f;
    if (!path || aqa_st_open(path, &f) != AQA_OK) return 0;
    for (int i = 0; i < aqa_st_metadata_count(f); i++) {
        const char *k, *v;
        aqa_st_metadata_at(f, i, &k, &v);
    }
    for (int i = 0; i < aqa_st_count(f); i++) {
        const aqa_st_tensor *t = aqa_st_get(f, i);
        if (t->nbytes > (1u << 20)) continue; /* the reader checked it against the file already */
        double *buf = malloc(t->numel * sizeof(double) + t->nbytes + 1);
        if (buf) {
            aqa_st_read_raw(f, i, buf, t->nbytes);
            aqa_st_read_f64(f, i, buf);
        }
        free(buf);
        aqa_tensor *x = aqa_st_load(f, aqa_st_name(f, i), AQA_F32);
        aqa_tensor_free(x);
    }
    aqa_st_close(f);
    return 0;
}
