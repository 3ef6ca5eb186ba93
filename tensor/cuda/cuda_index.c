/* cuda_index.c: the CUDA backend's indexing slots: index_select, index_add, gather, scatter_add.
 *
 * Checks mirror tensor/cpu_index.c.  Index values are checked on the device (the kernels lower
 * an error word to the smallest bad position, read back after them: one synchronisation) and the
 * first bad value is reported as on the CPU, whatever order the threads ran in.  index_add reads the index to the host to sort it into per-target lists (a stable
 * counting sort), so that the accumulation is deterministic without atomics; scatter_add scans,
 * per output element, the index entries that can reach it (kernels/index.cu). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/cuda/cuda-impl.h"
#include "tensor/kernel-shared.h"

/* Mirrors IGeo in kernels/index.cu. */
typedef struct igeo {
    int32_t nd, pad;
    int64_t shape[AQA_MAX_DIMS], s0[AQA_MAX_DIMS], s1[AQA_MAX_DIMS], s2[AQA_MAX_DIMS];
    int64_t n;
} igeo;

static int64_t size_along(const aqa_tensor *t, int dim) { return t->ndim ? t->shape[dim] : 1; }
static int64_t stride_along(const aqa_tensor *t, int dim) { return t->ndim ? t->stride[dim] : 0; }


static aqa_status check_index_1d_shape(const char *op, const aqa_tensor *index) {
    if (index->dtype != AQA_I64)
        return aqa_fail(AQA_EINVAL, "%s: index must be int64, got %s", op, aqa_dtype_name(index->dtype));
    if (index->ndim > 1)
        return aqa_fail(AQA_EINVAL, "%s: index must be 0-d or 1-d, got %d dimensions", op, index->ndim);
    return AQA_OK;
}

/* The error word of the index kernels: the smallest position of a bad index, all ones (none)
 * until a kernel lowers it. */
static uint64_t *flag_new(int dev, aqa_cuda_dev *d) {
    uint64_t *f = aqa__cuda_scratch(dev, 8);
    if (f && aqa__cu.MemsetD8Async((CUdeviceptr)(uintptr_t)f, 0xff, 8, d->stream) != CUDA_SUCCESS) {
        aqa__cuda_scratch_free(dev, f, 8);
        aqa_fail(AQA_EDEVICE, "CUDA: cuMemsetD8Async failed (index error flag)");
        return NULL;
    }
    return f;
}

/* Reads the flag back (synchronises) and frees it; an error naming the first bad index (the
 * value at the smallest bad position of `index`, as the CPU reports it) if one was found. */
static aqa_status flag_check(int dev, uint64_t *f, aqa_status st, const char *op, int dim, int64_t size,
                             const aqa_tensor *index) {
    uint64_t pos = UINT64_MAX;
    if (st == AQA_OK) st = aqa__cuda_to_host(&pos, f, 8, aqa_cuda_device(dev));
    aqa__cuda_scratch_free(dev, f, 8);
    if (st || pos == UINT64_MAX) return st;
    int64_t off = 0, rest = (int64_t)pos;
    for (int k = index->ndim - 1; k >= 0; k--) {
        off += (rest % index->shape[k]) * index->stride[k];
        rest /= index->shape[k];
    }
    int64_t v = 0;
    if ((st = aqa__cuda_to_host(&v, (const int64_t *)aqa__ptr(index) + off, 8, aqa_cuda_device(dev)))) return st;
    return aqa_fail(AQA_EINVAL, "%s: index %lld is out of range for dimension %d with size %lld", op, (long long)v, dim,
                    (long long)size);
}

aqa_status aqa__cuda_index_select(aqa_tensor *out, const aqa_tensor *x, int dim, const aqa_tensor *index) {
    const char *op = "index_select";
    aqa_status st = check_index_1d_shape(op, index);
    if (st) return st;
    if (out->dtype != x->dtype)
        return aqa_fail(AQA_EINVAL, "%s: output dtype %s differs from input dtype %s", op, aqa_dtype_name(out->dtype),
                        aqa_dtype_name(x->dtype));
    int64_t n = aqa_numel(index), size = size_along(x, dim);
    if (size_along(out, dim) != n) return aqa_fail(AQA_EINVAL, "%s: output size along %d is not the index count", op, dim);
    if (x->ndim && (st = aqa__check_same_but(op, out, x, dim))) return st;
    if (aqa_numel(out) == 0) return AQA_OK;
    int dev = out->storage->device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();
    igeo g;
    memset(&g, 0, sizeof g);
    if (out->ndim == 0) {
        g.nd = 1;
        g.shape[0] = 1;
        dim = 0;
    } else {
        g.nd = out->ndim;
        for (int k = 0; k < out->ndim; k++) {
            g.shape[k] = out->shape[k];
            g.s0[k] = out->stride[k];
            g.s1[k] = x->stride[k];
        }
    }
    g.n = aqa_numel(out);
    char program[32];
    snprintf(program, sizeof program, "index_%s", aqa__cuda_dtag(x->dtype));
    CUfunction f;
    if ((st = aqa__cuda_kernel(d, dev, program, "index_select_k", &f))) return st;
    uint64_t *flag = flag_new(dev, d);
    if (!flag) return aqa_last_status();
    void *op_p = aqa__ptr(out), *xp = aqa__ptr(x), *ip = aqa__ptr(index);
    int64_t is = index->ndim ? index->stride[0] : 0;
    void *args[] = {&op_p, &xp, &ip, &is, &dim, &size, &g, &flag};
    st = aqa__cuda_launch(d, f, "index_select_k", aqa__cuda_grid(d, g.n, 256), 1, 256, 0, args);
    return flag_check(dev, flag, st, op, dim, size, index);
}

aqa_status aqa__cuda_gather(aqa_tensor *out, const aqa_tensor *x, int dim, const aqa_tensor *index) {
    const char *op = "gather";
    aqa_status st = aqa__check_gather_shapes(op, x, dim, index, NULL);
    if (st) return st;
    if (out->dtype != x->dtype || !aqa_same_shape(out, index))
        return aqa_fail(AQA_EINVAL, "%s: output must have the input's dtype and the index's shape", op);
    if (aqa_numel(index) == 0) return AQA_OK;
    int dev = out->storage->device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();
    igeo g;
    memset(&g, 0, sizeof g);
    int64_t size = size_along(x, dim);
    if (index->ndim == 0) {
        g.nd = 1;
        g.shape[0] = 1;
        dim = 0;
    } else {
        g.nd = index->ndim;
        for (int k = 0; k < index->ndim; k++) {
            g.shape[k] = index->shape[k];
            g.s0[k] = out->stride[k];
            g.s1[k] = index->stride[k];
            g.s2[k] = stride_along(x, k);
        }
    }
    g.n = aqa_numel(index);
    char program[32];
    snprintf(program, sizeof program, "index_%s", aqa__cuda_dtag(x->dtype));
    CUfunction f;
    if ((st = aqa__cuda_kernel(d, dev, program, "gather_k", &f))) return st;
    uint64_t *flag = flag_new(dev, d);
    if (!flag) return aqa_last_status();
    void *op_p = aqa__ptr(out), *xp = aqa__ptr(x), *ip = aqa__ptr(index);
    void *args[] = {&op_p, &xp, &ip, &dim, &size, &g, &flag};
    st = aqa__cuda_launch(d, f, "gather_k", aqa__cuda_grid(d, g.n, 256), 1, 256, 0, args);
    return flag_check(dev, flag, st, op, dim, size, index);
}

aqa_status aqa__cuda_index_add(aqa_tensor *out, int dim, const aqa_tensor *index, const aqa_tensor *src) {
    const char *op = "index_add";
    aqa_status st = check_index_1d_shape(op, index);
    if (st) return st;
    if (out->dtype != src->dtype)
        return aqa_fail(AQA_EINVAL, "%s: source dtype %s differs from output dtype %s", op, aqa_dtype_name(src->dtype),
                        aqa_dtype_name(out->dtype));
    int64_t n = aqa_numel(index), size = size_along(out, dim);
    if (size_along(src, dim) != n)
        return aqa_fail(AQA_EINVAL, "%s: source has %lld entries along dimension %d but there are %lld indices", op,
                        (long long)size_along(src, dim), dim, (long long)n);
    if (out->ndim && (st = aqa__check_same_but(op, out, src, dim))) return st;
    if (n == 0) return AQA_OK;
    int dev = out->storage->device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();

    /* the index on the host, checked, then sorted into per-target lists (stable) */
    int64_t *host = malloc((size_t)n * 8);
    int64_t *count = calloc((size_t)size + 1, 8);
    if (!host || !count) {
        free(host);
        free(count);
        return aqa_fail(AQA_ENOMEM, "%s: out of host memory for %lld indices", op, (long long)n);
    }
    if ((st = aqa_copy_to_host(index, host, AQA_I64))) goto done_host;
    for (int64_t i = 0; i < n; i++)
        if (host[i] < 0 || host[i] >= size) {
            st = aqa_fail(AQA_EINVAL, "%s: index %lld is out of range for dimension %d with size %lld", op,
                          (long long)host[i], dim, (long long)size);
            goto done_host;
        }
    for (int64_t i = 0; i < n; i++) count[host[i]]++;
    int64_t U = 0;
    for (int64_t j = 0; j < size; j++) U += count[j] > 0;
    size_t csr_n = (size_t)(U + U + 1 + n);
    int64_t *csr = malloc(csr_n * 8);
    if (!csr) {
        st = aqa_fail(AQA_ENOMEM, "%s: out of host memory for the index lists", op);
        goto done_host;
    }
    {
        /* csr = [targets U][starts U+1][source positions n], targets increasing */
        int64_t *targets = csr, *starts = csr + U, *order = csr + 2 * U + 1;
        int64_t u = 0, pos = 0;
        for (int64_t j = 0; j < size; j++) {
            if (!count[j]) continue;
            targets[u] = j;
            starts[u] = pos;
            pos += count[j];
            count[j] = starts[u]; /* from here on: next free slot of j's list */
            u++;
        }
        starts[U] = n;
        for (int64_t i = 0; i < n; i++) order[count[host[i]]++] = i; /* stable: index order kept */
    }
    void *dcsr = aqa__cuda_scratch(dev, csr_n * 8);
    if (!dcsr) {
        st = aqa_last_status();
        free(csr);
        goto done_host;
    }
    st = aqa__cuda_from_host(dcsr, csr, csr_n * 8, aqa_cuda_device(dev));
    free(csr);
    if (st == AQA_OK) {
        igeo g;
        memset(&g, 0, sizeof g);
        for (int k = 0; k < out->ndim; k++) {
            if (k == dim) continue;
            g.shape[g.nd] = out->shape[k];
            g.s0[g.nd] = out->stride[k];
            g.s1[g.nd] = src->stride[k];
            g.nd++;
        }
        if (g.nd == 0) {
            g.nd = 1;
            g.shape[0] = 1;
        }
        g.n = aqa__shape_numel(g.nd, g.shape);
        char program[32];
        snprintf(program, sizeof program, "index_%s", aqa__cuda_dtag(out->dtype));
        CUfunction f;
        st = aqa__cuda_kernel(d, dev, program, "index_add_k", &f);
        if (st == AQA_OK && g.n > 0) {
            void *op_p = aqa__ptr(out), *sp = aqa__ptr(src);
            int64_t osd = stride_along(out, dim), ssd = stride_along(src, dim);
            void *args[] = {&op_p, &sp, &dcsr, &U, &osd, &ssd, &g};
            st = aqa__cuda_launch(d, f, "index_add_k", aqa__cuda_grid(d, U * g.n, 256), 1, 256, 0, args);
        }
    }
    aqa__cuda_scratch_free(dev, dcsr, csr_n * 8);
done_host:
    free(host);
    free(count);
    return st;
}

aqa_status aqa__cuda_scatter_add(aqa_tensor *out, int dim, const aqa_tensor *index, const aqa_tensor *src) {
    const char *op = "scatter_add";
    aqa_status st = aqa__check_gather_shapes(op, out, dim, index, src);
    if (st) return st;
    if (out->dtype != src->dtype)
        return aqa_fail(AQA_EINVAL, "%s: source dtype %s differs from output dtype %s", op, aqa_dtype_name(src->dtype),
                        aqa_dtype_name(out->dtype));
    if ((src->ndim ? src->ndim : 1) != (index->ndim ? index->ndim : 1))
        return aqa_fail(AQA_EINVAL, "%s: source has %d dimensions, the index %d", op, src->ndim, index->ndim);
    if (aqa_numel(index) == 0) return AQA_OK;
    int dev = out->storage->device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();
    int64_t size = size_along(out, dim);

    /* check every index first (nothing is written when one is bad, as on the CPU) */
    igeo c;
    memset(&c, 0, sizeof c);
    igeo g;
    memset(&g, 0, sizeof g);
    int64_t L = 1;
    if (index->ndim == 0) {
        c.nd = g.nd = 1;
        c.shape[0] = 1;
        g.shape[0] = size;
        dim = 0;
    } else {
        c.nd = g.nd = index->ndim;
        for (int k = 0; k < index->ndim; k++) {
            c.shape[k] = index->shape[k];
            c.s0[k] = index->stride[k];
            g.shape[k] = k == dim ? size : index->shape[k];
            g.s0[k] = out->stride[k];
            g.s1[k] = index->stride[k];
            g.s2[k] = src->stride[k];
        }
        L = index->shape[dim];
    }
    c.n = aqa_numel(index);
    g.n = aqa__shape_numel(g.nd, g.shape);
    CUfunction fc, f;
    char program[32];
    snprintf(program, sizeof program, "index_%s", aqa__cuda_dtag(out->dtype));
    if ((st = aqa__cuda_kernel(d, dev, "index_check", "index_check_k", &fc))) return st;
    if ((st = aqa__cuda_kernel(d, dev, program, "scatter_add_k", &f))) return st;
    uint64_t *flag = flag_new(dev, d);
    if (!flag) return aqa_last_status();
    void *ip = aqa__ptr(index);
    void *cargs[] = {&ip, &size, &c, &flag};
    st = aqa__cuda_launch(d, fc, "index_check_k", aqa__cuda_grid(d, c.n, 256), 1, 256, 0, cargs);
    if ((st = flag_check(dev, flag, st, op, dim, size, index))) return st;
    void *op_p = aqa__ptr(out), *sp = aqa__ptr(src);
    void *args[] = {&op_p, &sp, &ip, &dim, &L, &g};
    return aqa__cuda_launch(d, f, "scatter_add_k", aqa__cuda_grid(d, g.n, 256), 1, 256, 0, args);
}
