/* linear.c: the fused linear op (one GEMM over all leading dims, bias accumulated by the GEMM),
 * its backward, and the Linear and Embedding modules. */
#include <math.h>
#include <string.h>

#include "autograd/autograd.h"
#include "nn/init.h"
#include "nn/layers-impl.h"
#include "nn/linear.h"
#include "tensor/backend.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* ---- shared helpers (layers-impl.h) -------------------------------------------------------------- */

aqa_tensor *aqa__nn_matrix_alias(const aqa_tensor *t) {
    if (!t || t->ndim == 0) return NULL;
    int last = t->ndim - 1;
    int64_t k = t->shape[last], ks = k == 1 ? 1 : t->stride[last];
    int64_t rows = 1, rs = -1, expect = 0;
    for (int d = last - 1; d >= 0; d--) {
        rows *= t->shape[d];
        if (t->shape[d] == 1) continue;
        if (rs < 0) {
            rs = t->stride[d];
        } else if (t->stride[d] != expect) {
            return NULL;
        }
        expect = t->stride[d] * t->shape[d];
    }
    if (rs < 0) rs = k * ks; /* a single row: any stride will do */
    return aqa__alias_unowned(t, 2, (const int64_t[]){rows, k}, (const int64_t[]){rs, ks}, t->offset);
}

/* A [rows, last] matrix alias of t, or of a contiguous copy of it when its leading dims do not
 * collapse.  *holder receives the copy (unowned, release it after) or NULL. */
static aqa_tensor *matrix_of(const aqa_backend *be, aqa_tensor *t, aqa_tensor **holder) {
    *holder = NULL;
    aqa_tensor *m = aqa__nn_matrix_alias(t);
    if (m) return m;
    aqa_tensor *c = aqa__new_unowned(t->ndim, t->shape, t->dtype, aqa_tensor_device(t));
    if (!c) return NULL;
    if (be->copy(c, t) != AQA_OK) {
        aqa__release(c);
        return NULL;
    }
    *holder = c;
    return aqa__nn_matrix_alias(c);
}

/* A transposed 2-D alias (no copy). */
static aqa_tensor *transposed(const aqa_tensor *m) {
    return aqa__alias_unowned(m, 2, (const int64_t[]){m->shape[1], m->shape[0]},
                              (const int64_t[]){m->stride[1], m->stride[0]}, m->offset);
}

/* Writes the row `row` (n elements of es bytes) into each of the `rows` rows of the contiguous
 * host matrix dst (a broadcast copy, page-sized memcpy's, split over threads when large). */
static void fill_rows(void *dst, const void *row, int64_t rows, int64_t n, size_t es) {
    size_t nb = (size_t)n * es;
#pragma omp parallel for if (rows * n > 65536) schedule(static)
    for (int64_t r = 0; r < rows; r++) memcpy((char *)dst + (size_t)r * nb, row, nb);
}

/* ---- the op ---------------------------------------------------------------------------------------- */

/* saved[0] = x (or its contiguous copy), saved[1] = weight; ints[0] = has bias */
static void linear_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
    aqa_tensor *x = n->saved[0], *w = n->saved[1];
    aqa_device dev = aqa_tensor_device(g);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return;
    aqa_tensor *gc = NULL, *xc = NULL, *xm = NULL, *gt = NULL, *ones = NULL, *gbm = NULL;
    aqa_tensor *gm = matrix_of(be, g, &gc);
    if (!gm) goto done;
    int64_t rows = gm->shape[0], nout = gm->shape[1], nin = w->shape[1];
    if (n->needs_grad[0]) {
        /* grad_x [..., in] = g [M, out] @ W [out, in] */
        aqa_tensor *gx = aqa__new_unowned(n->in_ndim[0], n->in_shape[0], g->dtype, dev);
        aqa_tensor *gxm = gx ? aqa__nn_matrix_alias(gx) : NULL;
        aqa_status st = gxm ? be->matmul(gxm, gm, w, 1.0, 0.0) : AQA_ENOMEM;
        aqa__release(gxm);
        if (st != AQA_OK) {
            aqa__release(gx);
            goto done;
        }
        grad_in[0] = aqa__own(gx);
    }
    if (n->needs_grad[1]) {
        /* grad_W [out, in] = g^T [out, M] @ x [M, in] */
        xm = matrix_of(be, x, &xc);
        gt = xm ? transposed(gm) : NULL;
        aqa_tensor *gw = gt ? aqa__new_unowned(2, (const int64_t[]){nout, nin}, g->dtype, dev) : NULL;
        if (!gw) goto done;
        if (be->matmul(gw, gt, xm, 1.0, 0.0) != AQA_OK) {
            aqa__release(gw);
            goto done;
        }
        grad_in[1] = aqa__own(gw);
    }
    if (n->n_inputs > 2 && n->needs_grad[2]) {
        /* grad_b [out] = ones [1, M] @ g [M, out]: one GEMV-shaped product, any device */
        ones = aqa__new_unowned(2, (const int64_t[]){1, rows}, g->dtype, dev);
        if (!ones || be->fill(ones, 1.0) != AQA_OK) goto done;
        aqa_tensor *gb = aqa__new_unowned(1, (const int64_t[]){nout}, g->dtype, dev);
        if (!gb) goto done;
        gbm = aqa__alias_unowned(gb, 2, (const int64_t[]){1, nout}, (const int64_t[]){nout, 1}, gb->offset);
        if (!gbm || be->matmul(gbm, ones, gm, 1.0, 0.0) != AQA_OK) {
            aqa__release(gb);
            goto done;
        }
        grad_in[2] = aqa__own(gb);
    }
done:
    aqa__release(gbm);
    aqa__release(ones);
    aqa__release(gt);
    aqa__release(xm);
    aqa__release(xc);
    aqa__release(gm);
    aqa__release(gc);
}

aqa_tensor *aqa_linear(aqa_tensor *x, aqa_tensor *weight, aqa_tensor *bias) {
    if (!aqa__check_inputs("aqa_linear", 2, (aqa_tensor *[]){x, weight})) return NULL;
    if (bias && !aqa__check_inputs("aqa_linear", 3, (aqa_tensor *[]){x, weight, bias})) return NULL;
    char b1[64], b2[64];
    if (weight->ndim != 2 || x->ndim < 1 || x->shape[x->ndim - 1] != weight->shape[1])
        return aqa_fail_null("aqa_linear: input %s does not match weight %s (want [..., in] and [out, in])",
                             aqa_shape_str(x, b1, sizeof b1), aqa_shape_str(weight, b2, sizeof b2));
    if (bias && (bias->ndim != 1 || bias->shape[0] != weight->shape[0]))
        return aqa_fail_null("aqa_linear: bias %s does not match weight %s (want [out])",
                             aqa_shape_str(bias, b1, sizeof b1), aqa_shape_str(weight, b2, sizeof b2));
    if (!aqa__check_same_dtype("aqa_linear", 3, (aqa_tensor *[]){x, weight, bias},
                               (const char *[]){"input", "weight", "bias"}))
        return NULL;
    aqa_dtype dt = x->dtype;
    if (!aqa_dtype_is_float(dt)) return aqa_fail_null("aqa_linear: input and weight are %s, not floating", aqa_dtype_name(dt));
    aqa_device dev = aqa_tensor_device(x);
    const aqa_backend *be = aqa_backend_for(dev);
    if (!be) return NULL;
    int64_t nout = weight->shape[0];
    int64_t shape[AQA_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++) shape[d] = x->shape[d];
    shape[x->ndim - 1] = nout;

    aqa_tensor *xc = NULL, *xm = NULL, *wt = NULL, *om = NULL, *bv = NULL;
    aqa_tensor *out = aqa__new_unowned(x->ndim, shape, dt, dev);
    aqa_status st = AQA_ENOMEM;
    if (!out) goto done;
    xm = matrix_of(be, x, &xc);
    wt = xm ? transposed(weight) : NULL;
    om = wt ? aqa__nn_matrix_alias(out) : NULL;
    if (!om) goto done;
    if (bias) {
        /* the bias rows go into the output first; the GEMM then accumulates onto them */
        if (dev.kind == AQA_CPU && (bias->stride[0] == 1 || nout <= 1)) {
            fill_rows(aqa_data(om), aqa_data(bias), om->shape[0], nout, aqa_dtype_size(dt));
        } else {
            bv = aqa__alias_unowned(bias, 2, om->shape, (const int64_t[]){0, bias->stride[0]}, bias->offset);
            if (!bv || (st = be->copy(om, bv)) != AQA_OK) goto done;
        }
    }
    st = be->matmul(om, xm, wt, 1.0, bias ? 1.0 : 0.0);
done:
    aqa__release(bv);
    aqa__release(om);
    aqa__release(wt);
    aqa__release(xm);
    if (st != AQA_OK) {
        aqa__release(xc);
        aqa__release(out);
        return NULL;
    }
    aqa__own(out);
    aqa_node *n = aqa_node_record("linear", linear_backward, bias ? 3 : 2, (aqa_tensor *[]){x, weight, bias}, out);
    if (n) {
        aqa_node_save(n, xc ? xc : x);
        aqa_node_save(n, weight);
    }
    aqa__release(xc);
    return out;
}

/* ---- modules --------------------------------------------------------------------------------------- */

/* Frees a half-built root module (a child is freed with its parent). */
static void *fail_module(aqa_module *m) {
    if (m && !m->parent) aqa_module_free(m);
    return NULL;
}

AQA_MODULE_FORWARD(linear_any, aqa_linear_layer, aqa_linear_layer_forward)

aqa_linear_layer *aqa_linear_layer_new(aqa_module *parent, const char *name, int64_t in_features,
                                       int64_t out_features, bool bias) {
    if (in_features < 0 || out_features < 0)
        return aqa_fail_null("Linear %s: negative size (%lld, %lld)", name ? name : "", (long long)in_features,
                             (long long)out_features);
    aqa_linear_layer *m = aqa_module_new(sizeof *m, "Linear", parent, name, NULL);
    if (!m) return NULL;
    m->base.forward = linear_any;
    m->in_features = in_features;
    m->out_features = out_features;
    /* PyTorch's reset_parameters: weight, then bias, from the default generator */
    aqa_tensor *w = aqa_empty(AQA_SHAPE(out_features, in_features), AQA_F32);
    aqa_tensor *b = bias ? aqa_empty(AQA_SHAPE(out_features), AQA_F32) : NULL;
    if (!w || (bias && !b) || aqa_init_linear_default(w, b, NULL) != AQA_OK ||
        !(m->weight = aqa_module_param(&m->base, "weight", w))) {
        aqa_tensor_free(w);
        aqa_tensor_free(b);
        return fail_module(&m->base);
    }
    if (bias) {
        if (!(m->bias = aqa_module_param(&m->base, "bias", b))) {
            aqa_tensor_free(b);
            return fail_module(&m->base);
        }
    } else {
        aqa_module_param(&m->base, "bias", NULL);
    }
    return m;
}

aqa_tensor *aqa_linear_layer_forward(aqa_linear_layer *m, aqa_tensor *x) {
    if (!m) return aqa_fail_null("aqa_linear_layer_forward: NULL module");
    return aqa_linear(x, m->weight, m->bias);
}

AQA_MODULE_FORWARD(embedding_any, aqa_embedding_layer, aqa_embedding_layer_forward)

aqa_embedding_layer *aqa_embedding_layer_new(aqa_module *parent, const char *name, int64_t num_embeddings,
                                             int64_t embedding_dim) {
    if (num_embeddings < 0 || embedding_dim < 0)
        return aqa_fail_null("Embedding %s: negative size (%lld, %lld)", name ? name : "",
                             (long long)num_embeddings, (long long)embedding_dim);
    aqa_embedding_layer *m = aqa_module_new(sizeof *m, "Embedding", parent, name, NULL);
    if (!m) return NULL;
    m->base.forward = embedding_any;
    m->num_embeddings = num_embeddings;
    m->embedding_dim = embedding_dim;
    aqa_tensor *w = aqa_empty(AQA_SHAPE(num_embeddings, embedding_dim), AQA_F32);
    if (!w || aqa_normal_(w, 0.0, 1.0, NULL) != AQA_OK || !(m->weight = aqa_module_param(&m->base, "weight", w))) {
        aqa_tensor_free(w);
        return fail_module(&m->base);
    }
    return m;
}

aqa_tensor *aqa_embedding_layer_forward(aqa_embedding_layer *m, aqa_tensor *ids) {
    if (!m) return aqa_fail_null("aqa_embedding_layer_forward: NULL module");
    return aqa_embedding(m->weight, ids);
}
