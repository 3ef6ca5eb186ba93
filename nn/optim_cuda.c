/* optim_cuda.c: host side of the multi-tensor Adam/AdamW step (kernels/adamw.cu): uploads the
 * table of parameters (with the first block of each) and launches one kernel for all of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/nn_cuda-impl.h"
#include "tensor/cuda/cuda-impl.h"

#define ADAM_CHUNK 4096 /* elements per block (256 threads, 16 each) */

/* Mirrors AdamTensor / AdamScalars in kernels/adamw.cu. */
typedef struct adam_tensor {
    void *p, *g, *m, *v, *vmax;
    int64_t n, block0;
    double neg_step, bc2_sqrt;
} adam_tensor;
typedef struct adam_kscalars {
    double decay, l2, w1, beta2, c2, eps;
    int32_t lerp_low, ntensors;
    int64_t chunk;
} adam_kscalars;

aqa_status aqa__cuda_adam_multi(aqa_dtype dt, int dev, int n, const aqa_adam_entry *e,
                                const aqa_adam_group_scalars *k) {
    if (dt != AQA_F32 && dt != AQA_F64)
        return aqa_fail(AQA_EINVAL, "cuda adam: dtype %s not supported (float32/float64)", aqa_dtype_name(dt));
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();
    adam_tensor *tab = malloc(sizeof *tab * (size_t)(n ? n : 1));
    if (!tab) return aqa_fail(AQA_ENOMEM, "cuda adam: no memory for the parameter table (%d entries)", n);
    int m = 0;
    int64_t blocks = 0;
    for (int i = 0; i < n; i++) {
        if (e[i].n == 0) continue;
        tab[m] = (adam_tensor){e[i].p, e[i].g, e[i].m, e[i].v, e[i].vmax, e[i].n, blocks, e[i].neg_step, e[i].bc2_sqrt};
        blocks += (e[i].n + ADAM_CHUNK - 1) / ADAM_CHUNK;
        m++;
    }
    aqa_status st = AQA_OK;
    if (m == 0) goto out;
    if (blocks > 0x7fffffffll) {
        st = aqa_fail(AQA_EINVAL, "cuda adam: %lld blocks exceed the grid limit", (long long)blocks);
        goto out;
    }
    char program[32];
    snprintf(program, sizeof program, "adamw_%s", aqa__cuda_dtag(dt));
    CUfunction f;
    if ((st = aqa__cuda_kernel(d, dev, program, "adam_multi", &f))) goto out;
    size_t bytes = sizeof *tab * (size_t)m;
    void *dtab = aqa__cuda_scratch(dev, bytes);
    if (!dtab) {
        st = aqa_last_status();
        goto out;
    }
    /* a pageable copy: the table is staged before the call returns, so it may be freed after */
    st = aqa__cuda_from_host(dtab, tab, bytes, aqa_cuda_device(dev));
    adam_kscalars ks = {k->decay, k->l2, k->w1, k->beta2, k->c2, k->eps, k->lerp_low ? 1 : 0, m, ADAM_CHUNK};
    void *args[] = {&dtab, &ks};
    if (st == AQA_OK) st = aqa__cuda_launch(d, f, "adam_multi", (unsigned)blocks, 1, 256, 0, args);
    aqa__cuda_scratch_free(dev, dtab, bytes); /* stream order keeps it alive for the kernel */
out:
    free(tab);
    return st;
}
