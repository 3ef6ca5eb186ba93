/* cuda_elementwise.c: the CUDA backend's memory-moving and elementwise slots: copy, fill,
 * host<->device transfers, unary, binary, where, axpy and random.
 *
 * Each elementwise op merges its operands' dims on the host (aqa_iter's rules), then launches
 * the program's kernel specialised for that number of dims (NAME_nd1..4; NAME_nd8 with padding
 * for 5 to 8) or the all-contiguous one (NAME_c), with the merged geometry as a by-value
 * argument.  Checks and error messages
 * follow the CPU kernels (tensor/cpu_elementwise.c). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor/cuda/cuda-impl.h"

/* A prepared elementwise launch. */
typedef struct ew_plan {
    aqa_cuda_dev *d;  /* the device */
    int dev;          /* its index */
    aqa_cuda_geo g;   /* merged geometry */
    bool contig;      /* all operands contiguous */
    int64_t n;        /* elements */
    CUfunction f;     /* the kernel */
    char kname[64];   /* its name (messages) */
    bool vec4;        /* the float4 kernel: a thread per 4 elements */
} ew_plan;

static aqa_status ew_prepare(ew_plan *p, const char *program, const char *base, int nops,
                             const aqa_tensor *const *ops) {
    p->vec4 = false;
    p->dev = ops[0]->storage->device.index;
    p->d = aqa__cuda_dev(p->dev);
    if (!p->d) return aqa_last_status();
    p->n = aqa_numel(ops[0]);
    int nd = aqa__cuda_geometry(nops, ops, &p->g, &p->contig);
    if (!p->contig && nd > 4) { /* the _nd8 kernel, with leading size-1 dims (stride 0) */
        int pad = AQA_MAX_DIMS - nd;
        for (int d = AQA_MAX_DIMS - 1; d >= 0; d--) {
            p->g.shape[d] = d >= pad ? p->g.shape[d - pad] : 1;
            for (int k = 0; k < 4; k++) p->g.stride[k][d] = d >= pad ? p->g.stride[k][d - pad] : 0;
        }
        nd = AQA_MAX_DIMS;
    }
    if (p->contig) snprintf(p->kname, sizeof p->kname, "%s_c", base);
    else snprintf(p->kname, sizeof p->kname, "%s_nd%d", base, nd);
    if (p->n == 0) return AQA_OK;
    return aqa__cuda_kernel(p->d, p->dev, program, p->kname, &p->f);
}

/* Switches a float32 all-contiguous plan to the program's 16-byte vector kernel `vname` when
 * every pointer is 16-byte aligned (the grid then covers n / 4 vectors). */
static aqa_status ew_use_v4(ew_plan *p, const char *program, const char *vname, int nptr, void *const *ptrs) {
    if (!p->contig || p->n < 1024) return AQA_OK;
    for (int i = 0; i < nptr; i++)
        if ((uintptr_t)ptrs[i] % 16) return AQA_OK;
    aqa_status st = aqa__cuda_kernel(p->d, p->dev, program, vname, &p->f);
    if (st) return st;
    snprintf(p->kname, sizeof p->kname, "%s", vname);
    p->vec4 = true;
    return AQA_OK;
}

static aqa_status ew_go(ew_plan *p, void **args) {
    if (p->n == 0) return AQA_OK;
    int64_t items = p->vec4 ? (p->n + 3) / 4 : p->n;
    return aqa__cuda_launch(p->d, p->f, p->kname, aqa__cuda_grid(p->d, items, 256), 1, 256, 0, args);
}

/* ---- memory ------------------------------------------------------------------------------- */

aqa_status aqa__cuda_to_host(void *dst, const void *src, size_t nbytes, aqa_device device) {
    aqa_cuda_dev *d = aqa__cuda_dev(device.index);
    if (!d) return aqa_last_status();
    if (!nbytes) return AQA_OK;
    CU_CHECK(aqa__cu.MemcpyDtoHAsync(dst, (CUdeviceptr)(uintptr_t)src, nbytes, d->stream), "cuMemcpyDtoHAsync");
    CU_CHECK(aqa__cu.StreamSynchronize(d->stream), "cuStreamSynchronize (device to host copy)");
    return AQA_OK;
}

#define STAGE_BYTES ((size_t)8 << 20)

/* Host to device.  Small copies go straight from pageable memory (the driver stages them before
 * returning); large ones through two pinned buffers, so that the DMA of one chunk overlaps the
 * memcpy of the next and the call returns as soon as the caller's buffer has been read. */
aqa_status aqa__cuda_from_host(void *dst, const void *src, size_t nbytes, aqa_device device) {
    aqa_cuda_dev *d = aqa__cuda_dev(device.index);
    if (!d) return aqa_last_status();
    if (!nbytes) return AQA_OK;
    CUdeviceptr dp = (CUdeviceptr)(uintptr_t)dst;
    if (nbytes <= ((size_t)1 << 20)) {
        CU_CHECK(aqa__cu.MemcpyHtoDAsync(dp, src, nbytes, d->stream), "cuMemcpyHtoDAsync");
        return AQA_OK;
    }
    /* one host thread at a time fills the staging buffers (the data loader's workers copy
     * concurrently): a buffer is reused only after the copy that reads it has finished */
    pthread_mutex_lock(&d->lock);
    if (!d->pinned[0]) { /* first large copy: make the buffers */
        void *b0 = NULL, *b1 = NULL;
        if (aqa__cu.MemHostAlloc(&b0, STAGE_BYTES, 0) == CUDA_SUCCESS &&
            aqa__cu.MemHostAlloc(&b1, STAGE_BYTES, 0) == CUDA_SUCCESS) {
            d->pinned[0] = b0;
            d->pinned[1] = b1;
        } else if (b0) {
            aqa__cu.MemFreeHost(b0);
        }
    }
    aqa_status st = AQA_OK;
    if (!d->pinned[0]) {
        CUresult r = aqa__cu.MemcpyHtoDAsync(dp, src, nbytes, d->stream);
        if (r != CUDA_SUCCESS) st = aqa__cu_fail(r, "cuMemcpyHtoDAsync");
    }
    for (size_t done = 0; d->pinned[0] && st == AQA_OK && done < nbytes;) {
        int k = d->pinned_next; /* alternate: the DMA of one chunk overlaps the memcpy of the next */
        size_t len = nbytes - done < STAGE_BYTES ? nbytes - done : STAGE_BYTES;
        CUresult r = CUDA_SUCCESS;
        if (d->pinned_used[k] && (r = aqa__cu.EventSynchronize(d->pinned_done[k])) != CUDA_SUCCESS) {
            st = aqa__cu_fail(r, "cuEventSynchronize (staging buffer)");
            break;
        }
        d->pinned_used[k] = false;
        memcpy(d->pinned[k], (const char *)src + done, len);
        if ((r = aqa__cu.MemcpyHtoDAsync(dp + done, d->pinned[k], len, d->stream)) != CUDA_SUCCESS) {
            st = aqa__cu_fail(r, "cuMemcpyHtoDAsync (pinned)");
            break;
        }
        if ((r = aqa__cu.EventRecord(d->pinned_done[k], d->stream)) != CUDA_SUCCESS) {
            st = aqa__cu_fail(r, "cuEventRecord");
            break;
        }
        d->pinned_used[k] = true;
        d->pinned_next = k ^ 1;
        done += len;
    }
    pthread_mutex_unlock(&d->lock);
    return st;
}

aqa_status aqa__cuda_copy(aqa_tensor *dst, const aqa_tensor *src) {
    if (!aqa_same_shape(dst, src)) return aqa_fail(AQA_EINVAL, "cuda copy: shapes differ");
    if (dst->dtype == src->dtype && aqa_is_contiguous(dst) && aqa_is_contiguous(src)) {
        aqa_cuda_dev *d = aqa__cuda_dev(dst->storage->device.index);
        if (!d) return aqa_last_status();
        size_t nb = (size_t)aqa_numel(dst) * aqa_dtype_size(dst->dtype);
        if (nb)
            CU_CHECK(aqa__cu.MemcpyDtoDAsync((CUdeviceptr)(uintptr_t)aqa__ptr(dst),
                                             (CUdeviceptr)(uintptr_t)aqa__ptr(src), nb, d->stream),
                     "cuMemcpyDtoDAsync");
        return AQA_OK;
    }
    char program[32], base[32];
    snprintf(program, sizeof program, "copy_%s", aqa__cuda_dtag(src->dtype));
    snprintf(base, sizeof base, "copy_%s", aqa__cuda_dtag(dst->dtype));
    ew_plan p;
    aqa_status st = ew_prepare(&p, program, base, 2, (const aqa_tensor *[]){dst, src});
    if (st) return st;
    void *dp = aqa__ptr(dst), *sp = aqa__ptr(src);
    void *args[] = {&dp, &sp, &p.n, &p.g};
    return ew_go(&p, args);
}

aqa_status aqa__cuda_fill(aqa_tensor *dst, double value) {
    if (value == 0.0 && aqa_is_contiguous(dst) && !signbit(value)) {
        aqa_cuda_dev *d = aqa__cuda_dev(dst->storage->device.index);
        if (!d) return aqa_last_status();
        size_t nb = (size_t)aqa_numel(dst) * aqa_dtype_size(dst->dtype);
        if (nb) CU_CHECK(aqa__cu.MemsetD8Async((CUdeviceptr)(uintptr_t)aqa__ptr(dst), 0, nb, d->stream), "cuMemsetD8Async");
        return AQA_OK;
    }
    char base[32];
    snprintf(base, sizeof base, "fill_%s", aqa__cuda_dtag(dst->dtype));
    ew_plan p;
    aqa_status st = ew_prepare(&p, "fill", base, 1, (const aqa_tensor *[]){dst});
    if (st) return st;
    void *dp = aqa__ptr(dst);
    void *args[] = {&dp, &p.n, &value, &p.g};
    return ew_go(&p, args);
}

/* ---- unary -------------------------------------------------------------------------------- */

static bool unary_i64_supported(aqa_unary_op op) {
    switch (op) {
    case AQA_UN_NEG: case AQA_UN_ABS: case AQA_UN_RELU: case AQA_UN_SQUARE: case AQA_UN_SIGN:
    case AQA_UN_CLAMP: case AQA_UN_ADD_SCALAR: case AQA_UN_MUL_SCALAR: case AQA_UN_RSUB_SCALAR:
    case AQA_UN_POW_SCALAR:
        return true;
    default:
        return false;
    }
}

aqa_status aqa__cuda_unary(aqa_unary_op op, aqa_tensor *out, const aqa_tensor *x, double p0, double p1) {
    if ((int)op < 0 || op >= AQA_UN_COUNT) return aqa_fail(AQA_EINVAL, "cuda unary: unknown op %d", (int)op);
    const aqa_tensor *ops[2] = {out, x};
    char program[32];
    snprintf(program, sizeof program, "unary_%s", aqa__cuda_dtag(x->dtype));
    ew_plan p;
    aqa_status st;
    void *op_p = aqa__ptr(out), *xp = aqa__ptr(x);
    if (op == AQA_UN_LOGICAL_NOT) {
        if (out->dtype != AQA_BOOL)
            return aqa_fail(AQA_EINVAL, "cuda unary: logical_not writes bool, got %s", aqa_dtype_name(out->dtype));
        if ((st = ew_prepare(&p, program, "lnot", 2, ops))) return st;
        void *args[] = {&op_p, &xp, &p.n, &p.g};
        return ew_go(&p, args);
    }
    if (out->dtype != x->dtype)
        return aqa_fail(AQA_EINVAL, "cuda unary: op %d: output %s and input %s differ", (int)op,
                        aqa_dtype_name(out->dtype), aqa_dtype_name(x->dtype));
    if (x->dtype == AQA_BOOL || (x->dtype == AQA_I64 && !unary_i64_supported(op)))
        return aqa_fail(AQA_EUNSUPPORTED, "cuda unary: op %d not available for %s", (int)op, aqa_dtype_name(x->dtype));
    /* integer scalars, with infinite clamp bounds resolved as on the CPU */
    int64_t q0 = 0, q1 = 0;
    if (x->dtype == AQA_I64) {
        if (op == AQA_UN_CLAMP) {
            q0 = isfinite(p0) ? (int64_t)p0 : (p0 > 0 ? INT64_MAX : INT64_MIN);
            q1 = isfinite(p1) ? (int64_t)p1 : (p1 < 0 ? INT64_MIN : INT64_MAX);
        } else {
            q0 = (int64_t)p0;
        }
    }
    if ((st = ew_prepare(&p, program, "unary", 2, ops))) return st;
    if (x->dtype == AQA_F32 && (st = ew_use_v4(&p, program, "unary_v4", 2, (void *[]){op_p, xp}))) return st;
    int opi = (int)op;
    void *args[] = {&op_p, &xp, &p.n, &opi, &p0, &p1, &q0, &q1, &p.g};
    return ew_go(&p, args);
}

/* ---- binary, where, axpy ------------------------------------------------------------------- */

aqa_status aqa__cuda_binary(aqa_binary_op op, aqa_tensor *out, const aqa_tensor *a, const aqa_tensor *b) {
    if ((int)op < 0 || op >= AQA_BIN_COUNT) return aqa_fail(AQA_EINVAL, "cuda binary: unknown op %d", (int)op);
    if (a->dtype != b->dtype)
        return aqa_fail(AQA_EINVAL, "cuda binary: op %d: operands %s and %s differ", (int)op,
                        aqa_dtype_name(a->dtype), aqa_dtype_name(b->dtype));
    const aqa_tensor *ops[3] = {out, a, b};
    char program[32];
    snprintf(program, sizeof program, "binary_%s", aqa__cuda_dtag(a->dtype));
    const char *base;
    if (op >= AQA_BIN_EQ) {
        if (out->dtype != AQA_BOOL)
            return aqa_fail(AQA_EINVAL, "cuda binary: comparison %d writes bool, got %s", (int)op,
                            aqa_dtype_name(out->dtype));
        base = "compare";
    } else {
        if (out->dtype != a->dtype)
            return aqa_fail(AQA_EINVAL, "cuda binary: op %d: output %s and inputs %s differ", (int)op,
                            aqa_dtype_name(out->dtype), aqa_dtype_name(a->dtype));
        if (a->dtype == AQA_BOOL || (a->dtype == AQA_I64 && op == AQA_BIN_DIV))
            return aqa_fail(AQA_EUNSUPPORTED, "cuda binary: op %d not available for %s", (int)op,
                            aqa_dtype_name(a->dtype));
        base = "binary";
    }
    ew_plan p;
    aqa_status st = ew_prepare(&p, program, base, 3, ops);
    if (st) return st;
    void *op_p = aqa__ptr(out), *ap = aqa__ptr(a), *bp = aqa__ptr(b);
    if (a->dtype == AQA_F32 && op < AQA_BIN_EQ && (st = ew_use_v4(&p, program, "binary_v4", 3, (void *[]){op_p, ap, bp})))
        return st;
    int opi = (int)op;
    void *args[] = {&op_p, &ap, &bp, &p.n, &opi, &p.g};
    return ew_go(&p, args);
}

aqa_status aqa__cuda_where(aqa_tensor *out, const aqa_tensor *cond, const aqa_tensor *a, const aqa_tensor *b) {
    if (cond->dtype != AQA_BOOL)
        return aqa_fail(AQA_EINVAL, "cuda where: condition must be bool, got %s", aqa_dtype_name(cond->dtype));
    if (a->dtype != out->dtype || b->dtype != out->dtype)
        return aqa_fail(AQA_EINVAL, "cuda where: dtypes %s, %s -> %s differ", aqa_dtype_name(a->dtype),
                        aqa_dtype_name(b->dtype), aqa_dtype_name(out->dtype));
    char program[32];
    snprintf(program, sizeof program, "where_%zu", aqa_dtype_size(out->dtype));
    ew_plan p;
    aqa_status st = ew_prepare(&p, program, "where", 4, (const aqa_tensor *[]){out, cond, a, b});
    if (st) return st;
    void *op_p = aqa__ptr(out), *cp = aqa__ptr(cond), *ap = aqa__ptr(a), *bp = aqa__ptr(b);
    void *args[] = {&op_p, &cp, &ap, &bp, &p.n, &p.g};
    return ew_go(&p, args);
}

aqa_status aqa__cuda_axpy(aqa_tensor *dst, const aqa_tensor *src, double alpha) {
    if (dst->dtype != src->dtype)
        return aqa_fail(AQA_EINVAL, "cuda axpy: dtypes %s and %s differ", aqa_dtype_name(dst->dtype),
                        aqa_dtype_name(src->dtype));
    if (dst->dtype == AQA_BOOL) return aqa_fail(AQA_EUNSUPPORTED, "cuda axpy: not available for bool");
    char program[32];
    snprintf(program, sizeof program, "axpy_%s", aqa__cuda_dtag(dst->dtype));
    ew_plan p;
    aqa_status st = ew_prepare(&p, program, "axpy", 2, (const aqa_tensor *[]){dst, src});
    if (st) return st;
    void *dp = aqa__ptr(dst), *sp = aqa__ptr(src);
    if (dst->dtype == AQA_F32 && (st = ew_use_v4(&p, program, "axpy_v4", 2, (void *[]){dp, sp}))) return st;
    void *args[] = {&dp, &sp, &p.n, &alpha, &p.g};
    return ew_go(&p, args);
}

/* ---- random ------------------------------------------------------------------------------- */

aqa_status aqa__cuda_random(aqa_tensor *t, int kind, double a, double b, uint64_t seed, uint64_t offset) {
    if (!aqa_is_contiguous(t)) return aqa_fail(AQA_EINVAL, "cuda random: tensor must be contiguous");
    int64_t n = aqa_numel(t);
    if (n == 0) return AQA_OK;
    int dev = t->storage->device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();
    char kname[32];
    snprintf(kname, sizeof kname, "random_%s", aqa__cuda_dtag(t->dtype));
    CUfunction f;
    aqa_status st = aqa__cuda_kernel(d, dev, "random", kname, &f);
    if (st) return st;
    void *tp = aqa__ptr(t);
    unsigned long long s = seed, o = offset;
    void *args[] = {&tp, &n, &kind, &a, &b, &s, &o};
    return aqa__cuda_launch(d, f, kname, aqa__cuda_grid(d, n, 256), 1, 256, 0, args);
}
