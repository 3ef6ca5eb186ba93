/* cpu_backend.c: the CPU backend table and host memory, plus backend lookup by device. */
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tensor/cpu-impl.h"

/* glibc serves large blocks with a fresh mmap and unmaps them on free, so every activation
 * of a training step would page-fault its memory in again.  Raising the thresholds once lets
 * freed blocks be reused from the heap; memory stays bounded by the peak of a step. */
static void tune_malloc(void) {
    mallopt(M_MMAP_THRESHOLD, 512 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

static void *cpu_alloc(aqa_device device, size_t nbytes) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, tune_malloc);
    (void)device;
    /* 64-byte alignment suits AVX-512 loads and BLAS; aligned_alloc wants a multiple of it */
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, rounded);
    if (!p) return aqa_fail_null("out of host memory allocating %zu bytes", nbytes);
    return p;
}

static void cpu_free(aqa_device device, void *ptr, size_t nbytes) {
    (void)device;
    (void)nbytes;
    free(ptr);
}

static aqa_status cpu_memcpy(void *dst, const void *src, size_t nbytes, aqa_device device) {
    (void)device;
    memcpy(dst, src, nbytes);
    return AQA_OK;
}

const aqa_backend aqa_cpu_backend = {
    .name = "cpu",
    .alloc = cpu_alloc,
    .free = cpu_free,
    .copy = aqa__cpu_copy,
    .fill = aqa__cpu_fill,
    .to_host = cpu_memcpy,
    .from_host = cpu_memcpy,
    .unary = aqa__cpu_unary,
    .binary = aqa__cpu_binary,
    .where = aqa__cpu_where,
    .axpy = aqa__cpu_axpy,
    .reduce = aqa__cpu_reduce,
    .softmax = aqa__cpu_softmax,
    .softmax_backward = aqa__cpu_softmax_backward,
    .matmul = aqa__cpu_matmul,
    .index_select = aqa__cpu_index_select,
    .index_add = aqa__cpu_index_add,
    .gather = aqa__cpu_gather,
    .scatter_add = aqa__cpu_scatter_add,
    .random = aqa__cpu_random,
};

#ifdef AQA_HAVE_CUDA
const aqa_backend *aqa__cuda_backend(int index); /* tensor/cuda/ */
#endif

const aqa_backend *aqa_backend_for(aqa_device device) {
    if (device.kind == AQA_CPU) return &aqa_cpu_backend;
#ifdef AQA_HAVE_CUDA
    return aqa__cuda_backend(device.index);
#else
    return aqa_fail_null("device cuda:%d requested, but this build of aqa has no CUDA backend", device.index);
#endif
}
