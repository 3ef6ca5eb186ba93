/* ops_matmul.c: aqa_matmul, torch.matmul's semantics, and its derivative.
 *
 *   [k] @ [k]             -> []            (dot)
 *   [m, k] @ [k]          -> [m]           (the appended dim of b is removed)
 *   [k] @ [k, n]          -> [n]           (the prepended dim of a is removed)
 *   [..., m, k] @ [..., k, n] -> [broadcast(...), m, n]  e.g. [2,1,3,4] @ [5,4,6] -> [2,5,3,6]
 *
 * The front-end builds stride-0 views for the broadcast batch dims (no copies) and hands the
 * operands to the backend's matmul, which feeds BLAS straight from these buffers (transposed
 * layouts become BLAS transposes).  Backward: dA = dC @ B^T, dB = A^T @ dC, whose broadcast batch
 * dims the engine sums away; when b has no batch dims dB is one gemm over the stacked rows of a
 * ([B*m, k]^T @ [B*m, n]) instead of B products summed afterwards (the linear-layer case). */
#include <string.h>

#include "autograd/autograd.h"
#include "tensor/backend.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* saved[0] = a, saved[1] = b. */
static void matmul_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *a = n->saved[0], *b = n->saved[1];
    bool a1 = a->ndim == 1, b1 = b->ndim == 1;
    int nb = g->ndim - (a1 ? 0 : 1) - (b1 ? 0 : 1); /* broadcast batch dims of the output */
    /* Everything in the full [batch..., m, k] @ [batch..., k, n] form. */
    aqa_tensor *af = a1 ? aqa_unsqueeze(a, 0) : a;
    aqa_tensor *bf = b1 ? aqa_unsqueeze(b, 1) : b;
    aqa_tensor *gf = a1 ? aqa_unsqueeze(g, nb) : g;
    if (b1) gf = aqa_unsqueeze(gf, gf ? gf->ndim : 0);
    if (!af || !bf || !gf) return;
    if (n->needs_grad[0]) {
        aqa_tensor *da = aqa_matmul(gf, aqa_transpose(bf, -1, -2)); /* [batch..., m, k] */
        grad_in[0] = a1 ? aqa_squeeze(da, -2) : da;
    }
    if (n->needs_grad[1]) {
        aqa_tensor *db;
        int64_t k = af->shape[af->ndim - 1], nn = gf->shape[gf->ndim - 1];
        if (b->ndim <= 2 && af->ndim > 2) {
            /* b is shared by the whole batch: one gemm over all rows of a. */
            aqa_tensor *a2 = aqa_reshape(af, AQA_SHAPE(-1, k));
            aqa_tensor *g2 = aqa_reshape(gf, AQA_SHAPE(-1, nn));
            db = aqa_matmul(aqa_transpose(a2, 0, 1), g2); /* [k, n] */
        } else {
            db = aqa_matmul(aqa_transpose(af, -1, -2), gf); /* [batch..., k, n] */
        }
        grad_in[1] = b1 ? aqa_squeeze(db, -1) : db;
    }
}

/* The operand as an ndim-d view [batch..., rows, cols] (stride 0 on broadcast dims), unowned. */
static aqa_tensor *batch_view(const aqa_tensor *t, bool vec_is_row, int nb, const int64_t *batch,
                              int64_t rows, int64_t cols) {
    int64_t shape[AQA_MAX_DIMS], stride[AQA_MAX_DIMS];
    int tb = t->ndim >= 2 ? t->ndim - 2 : 0; /* t's own batch dims */
    for (int i = 0; i < nb; i++) {
        int j = i - (nb - tb);
        shape[i] = batch[i];
        stride[i] = (j < 0 || (t->shape[j] == 1 && batch[i] != 1)) ? 0 : t->stride[j];
    }
    shape[nb] = rows;
    shape[nb + 1] = cols;
    if (t->ndim == 1) {
        /* [k] as [1, k] (a) or [k, 1] (b): the size-1 dim's stride never matters. */
        if (vec_is_row) {
            stride[nb] = t->shape[0] * t->stride[0];
            stride[nb + 1] = t->stride[0];
        } else {
            stride[nb] = t->stride[0];
            stride[nb + 1] = 1;
        }
    } else {
        stride[nb] = t->stride[t->ndim - 2];
        stride[nb + 1] = t->stride[t->ndim - 1];
    }
    return aqa__alias_unowned(t, nb + 2, shape, stride, t->offset);
}

aqa_tensor *aqa_matmul(aqa_tensor *a, aqa_tensor *b) {
    if (!aqa__check_inputs("aqa_matmul", 2, (aqa_tensor *[]){a, b})) return NULL;
    char sa[128], sb[128];
    if (a->ndim == 0 || b->ndim == 0)
        return aqa_fail_null("aqa_matmul: both arguments need at least 1 dimension (got %s and %s)",
                             aqa_shape_str(a, sa, sizeof sa), aqa_shape_str(b, sb, sizeof sb));
    if (!aqa__check_same_dtype("aqa_matmul", 2, (aqa_tensor *[]){a, b}, (const char *[]){"input", "other"}))
        return NULL;
    aqa_dtype dt = a->dtype;
    if (dt == AQA_BOOL) return aqa_fail_null("aqa_matmul: not defined for bool tensors");
    bool a1 = a->ndim == 1, b1 = b->ndim == 1;
    int64_t m = a1 ? 1 : a->shape[a->ndim - 2], k = a->shape[a->ndim - 1];
    int64_t kb = b1 ? b->shape[0] : b->shape[b->ndim - 2], n = b1 ? 1 : b->shape[b->ndim - 1];
    if (k != kb)
        return aqa_fail_null("aqa_matmul: shapes %s and %s cannot be multiplied (%lld != %lld)",
                             aqa_shape_str(a, sa, sizeof sa), aqa_shape_str(b, sb, sizeof sb),
                             (long long)k, (long long)kb);
    int na = a->ndim > 2 ? a->ndim - 2 : 0, nbb = b->ndim > 2 ? b->ndim - 2 : 0, nb;
    int64_t batch[AQA_MAX_DIMS];
    if (!aqa__broadcast_shapes("aqa_matmul", na, a->shape, nbb, b->shape, &nb, batch)) return NULL;
    if (nb + 2 > AQA_MAX_DIMS) return aqa_fail_null("aqa_matmul: result would exceed %d dimensions", AQA_MAX_DIMS);
    aqa_device dev = aqa_tensor_device(a);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;

    aqa_tensor *av = batch_view(a, true, nb, batch, m, k);
    aqa_tensor *bv = batch_view(b, false, nb, batch, k, n);
    /* The result: [batch..., m?, n?]; the kernel sees its [batch..., m, n] form. */
    int64_t oshape[AQA_MAX_DIMS];
    int ond = 0;
    for (int i = 0; i < nb; i++) oshape[ond++] = batch[i];
    if (!a1) oshape[ond++] = m;
    if (!b1) oshape[ond++] = n;
    aqa_tensor *out = av && bv ? aqa__new_unowned(ond, oshape, dt, dev) : NULL;
    aqa_status st = AQA_EINVAL;
    if (out) {
        aqa_tensor full = *out;
        full.ndim = nb + 2;
        memcpy(full.shape, batch, sizeof(int64_t) * (size_t)nb);
        full.shape[nb] = m;
        full.shape[nb + 1] = n;
        aqa__contiguous_strides(full.ndim, full.shape, full.stride);
        st = be->matmul(&full, av, bv, 1.0, 0.0);
    }
    aqa__release(av);
    aqa__release(bv);
    if (st != AQA_OK) {
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    aqa_node *node = aqa_node_record("matmul", matmul_backward, 2, (aqa_tensor *[]){a, b}, out);
    if (node) {
        aqa_node_save(node, a);
        aqa_node_save(node, b);
    }
    return out;
}
