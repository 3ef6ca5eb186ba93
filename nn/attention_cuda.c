/* attention_cuda.c: host side of the fused scaled dot-product attention forward
 * (kernels/attention.cu): the geometry of q, k, v and the mask (any strides, batch dims shared
 * by q, k and v) and the launch. */
#include <stdio.h>
#include <string.h>

#include "nn/nn_cuda-impl.h"
#include "tensor/cuda/cuda-impl.h"

#define AMAXB 4 /* batch dims the kernel takes */

/* Mirrors AGeo in kernels/attention.cu. */
typedef struct ageo {
    int32_t nb, causal;
    int64_t bshape[AMAXB];
    int64_t qb[AMAXB], kb[AMAXB], vb[AMAXB], mb[AMAXB];
    int64_t qs_l, qs_e, ks_s, ks_e, vs_s, vs_e, ms_l, ms_s;
    int64_t L, S, E, Ev;
    double scale;
} ageo;

bool aqa__cuda_attention_fits(const aqa_tensor *q, const aqa_tensor *k, const aqa_tensor *v) {
    int nd = q->ndim;
    if (nd < 2 || nd - 2 > AMAXB || k->ndim != nd || v->ndim != nd) return false;
    if (q->dtype != k->dtype || q->dtype != v->dtype || (q->dtype != AQA_F32 && q->dtype != AQA_F64)) return false;
    for (int d = 0; d < nd - 2; d++)
        if (k->shape[d] != q->shape[d] || v->shape[d] != q->shape[d]) return false;
    int64_t emax = q->dtype == AQA_F32 ? 64 : 32; /* EMAX of kernels/attention.cu */
    return q->shape[nd - 1] <= emax && v->shape[nd - 1] <= emax && q->shape[nd - 1] == k->shape[nd - 1] &&
           k->shape[nd - 2] == v->shape[nd - 2];
}

aqa_status aqa__cuda_attention_forward(aqa_tensor *out, const aqa_tensor *q, const aqa_tensor *k, const aqa_tensor *v,
                                       const aqa_tensor *mask, double scale, bool causal) {
    if (!aqa__cuda_attention_fits(q, k, v))
        return aqa_fail(AQA_EINVAL, "cuda attention: q, k, v do not fit the fused kernel");
    int nd = q->ndim;
    ageo g;
    memset(&g, 0, sizeof g);
    g.nb = nd - 2;
    g.causal = causal ? 1 : 0;
    int64_t batch = 1;
    for (int d = 0; d < nd - 2; d++) {
        g.bshape[d] = q->shape[d];
        g.qb[d] = q->stride[d];
        g.kb[d] = k->stride[d];
        g.vb[d] = v->stride[d];
        g.mb[d] = mask ? mask->stride[d] : 0;
        batch *= q->shape[d];
    }
    g.L = q->shape[nd - 2];
    g.E = q->shape[nd - 1];
    g.S = k->shape[nd - 2];
    g.Ev = v->shape[nd - 1];
    g.qs_l = q->stride[nd - 2];
    g.qs_e = q->stride[nd - 1];
    g.ks_s = k->stride[nd - 2];
    g.ks_e = k->stride[nd - 1];
    g.vs_s = v->stride[nd - 2];
    g.vs_e = v->stride[nd - 1];
    g.ms_l = mask ? mask->stride[nd - 2] : 0;
    g.ms_s = mask ? mask->stride[nd - 1] : 0;
    g.scale = scale;
    int64_t blocks = batch * ((g.L + 63) / 64); /* 64 query rows a block */
    if (blocks == 0 || g.Ev == 0) return AQA_OK;
    if (blocks > 0x7fffffffll) return aqa_fail(AQA_EINVAL, "cuda attention: %lld blocks", (long long)blocks);
    int dev = q->storage->device.index;
    aqa_cuda_dev *d = aqa__cuda_dev(dev);
    if (!d) return aqa_last_status();
    char program[32];
    snprintf(program, sizeof program, "attention_%s", aqa__cuda_dtag(q->dtype));
    CUfunction f;
    aqa_status st = aqa__cuda_kernel(d, dev, program, "attn_fwd", &f);
    if (st) return st;
    void *po = aqa__ptr(out), *pq = aqa__ptr(q), *pk = aqa__ptr(k), *pv = aqa__ptr(v), *pm = mask ? aqa__ptr(mask) : NULL;
    void *args[] = {&po, &pq, &pk, &pv, &pm, &g};
    return aqa__cuda_launch(d, f, "attn_fwd", (unsigned)blocks, 1, 64, 0, args);
}

aqa_status aqa__cuda_attention_softmax(aqa_tensor *out, const aqa_tensor *x, const aqa_tensor *mask, double scale,
                                       bool causal) {
    return aqa__cuda_softmax_scaled_masked(out, x, mask, scale, causal);
}
