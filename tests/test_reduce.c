/* test_reduce.c: reductions (sum, mean, var, std, max/min, argmax/argmin), softmax,
 * log_softmax, logsumexp and sum_to_shape: values against hand-computed cases and a naive
 * reference written here (double loops over a host copy), numerical stability, gradients by
 * gradcheck in float64 (multi-dim, keepdim, non-contiguous inputs), and PyTorch golden data
 * (tests/data/golden_reduce_matmul.safetensors, scripts/gen_golden_reduce_matmul.py). */
#include <math.h>

#include "aqa.h"
#include "tests/test_util.h"

/* ---- helpers ----------------------------------------------------------------------------- */

/* Naive reference reduction over the dims in mask of a row-major host array: op 0 sum, 1 max,
 * 2 min; out (keepdim order) and pos (flat row-major index over the reduced dims, first
 * occurrence). */
static void ref_reduce(int op, const double *x, int ndim, const int64_t *shape, unsigned mask, double *out,
                       int64_t *pos) {
    int64_t nout = 1, n = 1;
    for (int d = 0; d < ndim; d++) {
        n *= shape[d];
        if (!((mask >> d) & 1u)) nout *= shape[d];
    }
    for (int64_t o = 0; o < nout; o++) {
        out[o] = op == 0 ? 0 : NAN;
        pos[o] = -1;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, o = 0, ostride = 1, r = 0, rstride = 1;
        for (int d = ndim - 1; d >= 0; d--) {
            int64_t c = rem % shape[d];
            rem /= shape[d];
            if ((mask >> d) & 1u) {
                r += c * rstride;
                rstride *= shape[d];
            } else {
                o += c * ostride;
                ostride *= shape[d];
            }
        }
        double v = x[i];
        if (op == 0) {
            out[o] += v;
        } else if (pos[o] < 0 || (op == 1 ? v > out[o] : v < out[o]) || (r < pos[o] && v == out[o])) {
            out[o] = v;
            pos[o] = r;
        }
    }
}

/* ---- sum / mean -------------------------------------------------------------------------- */

static void test_sum_hand(void) {
    aqa_scope_begin();
    aqa_tensor *x = test_f64((double[]){1, 2, 3, 4, 5, 6}, AQA_SHAPE(2, 3));
    aqa_tensor *s0 = aqa_sum(x, 1, (int[]){0}, false);
    CHECK(test_shape_is(s0, AQA_SHAPE(3)));
    CHECK_NEAR(aqa_get(s0, (int64_t[]){0}), 5, 0);
    CHECK_NEAR(aqa_get(s0, (int64_t[]){2}), 9, 0);
    aqa_tensor *s1 = aqa_sum(x, 1, (int[]){-1}, true);
    CHECK(test_shape_is(s1, AQA_SHAPE(2, 1)));
    CHECK_NEAR(aqa_get(s1, (int64_t[]){1, 0}), 15, 0);
    aqa_tensor *s01 = aqa_sum(x, 2, (int[]){1, 0}, false);
    CHECK_EQ_INT(s01->ndim, 0);
    CHECK_NEAR(aqa_item(s01), 21, 0);
    aqa_tensor *all = aqa_sum_all(x);
    CHECK_NEAR(aqa_item(all), 21, 0);
    aqa_tensor *kd = aqa_sum(x, 0, NULL, true);
    CHECK(test_shape_is(kd, AQA_SHAPE(1, 1)));
    /* dtypes: int64 and bool sum to int64, float32 stays */
    aqa_tensor *xi = aqa_to_dtype(x, AQA_I64);
    aqa_tensor *si = aqa_sum(xi, 1, (int[]){1}, false);
    CHECK_EQ_INT(si->dtype, AQA_I64);
    CHECK_EQ_INT((int64_t)aqa_get(si, (int64_t[]){1}), 15);
    aqa_tensor *xb = aqa_gt_scalar(x, 2.5);
    aqa_tensor *sb = aqa_sum_all(xb);
    CHECK_EQ_INT(sb->dtype, AQA_I64);
    CHECK_EQ_INT((int64_t)aqa_item(sb), 4);
    CHECK_EQ_INT(aqa_sum_all(aqa_to_dtype(x, AQA_F32))->dtype, AQA_F32);
    /* errors */
    CHECK(aqa_sum(x, 2, (int[]){1, -1}, false) == NULL);
    CHECK(strstr(aqa_last_error(), "more than once") != NULL);
    CHECK(aqa_sum(x, 1, (int[]){2}, false) == NULL);
    CHECK(strstr(aqa_last_error(), "out of range") != NULL);
    CHECK(aqa_sum(NULL, 0, NULL, false) == NULL);
    /* 0-d input and empty input */
    aqa_tensor *sc = aqa_sum(aqa_scalar(2.5, AQA_F32), 1, (int[]){0}, false);
    CHECK_NEAR(aqa_item(sc), 2.5, 0);
    aqa_tensor *e = aqa_sum(aqa_zeros(AQA_SHAPE(0, 3), AQA_F32), 1, (int[]){0}, false);
    CHECK(test_shape_is(e, AQA_SHAPE(3)));
    CHECK_NEAR(aqa_get(e, (int64_t[]){1}), 0, 0);
    aqa_scope_end();
}

static void test_sum_precision(void) {
    aqa_scope_begin();
    aqa_tensor *ones = aqa_ones(AQA_SHAPE(1000000), AQA_F32);
    CHECK_NEAR(aqa_item(aqa_sum_all(ones)), 1000000.0, 0);
    aqa_tensor *ones2 = aqa_ones(AQA_SHAPE(1000, 1000), AQA_F32);
    CHECK_NEAR(aqa_item(aqa_sum_all(aqa_transpose(ones2, 0, 1))), 1000000.0, 0);
    aqa_tensor *col = aqa_sum(ones2, 1, (int[]){0}, false); /* column mode */
    CHECK_NEAR(aqa_get(col, (int64_t[]){999}), 1000.0, 0);
    /* 16.7M ones: f32 accumulation would stop at 2^24 */
    aqa_tensor *big = aqa_ones(AQA_SHAPE(1 << 24 | 4096), AQA_F32);
    CHECK_NEAR(aqa_item(aqa_sum_all(big)), (double)(1 << 24 | 4096), 0);
    /* random values: within a few ulp of the float64 sum */
    aqa_manual_seed(test_seed("sum precision"));
    aqa_tensor *r = aqa_rand(AQA_SHAPE(3, 300001), AQA_F32, NULL);
    double *v = test_host(r);
    aqa_tensor *rs = aqa_sum(r, 1, (int[]){1}, false);
    for (int i = 0; i < 3; i++) {
        double ref = 0;
        for (int j = 0; j < 300001; j++) ref += v[i * 300001 + j];
        CHECK_NEAR(aqa_get(rs, (int64_t[]){i}), ref, ref * 1e-7);
    }
    free(v);
    aqa_scope_end();
}

/* Every subset of dims of permuted / sliced 4-d tensors against the naive reference. */
static void test_reduce_all_masks(void) {
    aqa_scope_begin();
    aqa_manual_seed(test_seed("reduce masks"));
    aqa_tensor *base = aqa_randn(AQA_SHAPE(5, 4, 7, 6), AQA_F32, NULL);
    /* a few layouts: contiguous, permuted, sliced with a step, and int64 */
    aqa_tensor *views[4];
    views[0] = aqa_narrow(base, 2, 0, 3);                                  /* [5,4,3,6] */
    views[1] = aqa_permute(base, (int[]){2, 0, 3, 1});                    /* [7,5,6,4] */
    views[2] = aqa_slice(aqa_transpose(base, 1, 3), 2, 1, 7, 2);          /* [5,6,3,4] */
    views[3] = aqa_to_dtype(aqa_mul_scalar(base, 3.0), AQA_I64);          /* ties in ints */
    for (int v = 0; v < 4; v++) {
        aqa_tensor *x = views[v];
        double *xv = test_host(x);
        for (unsigned mask = 1; mask < 16; mask++) {
            int dims[4], nd = 0;
            for (int d = 0; d < 4; d++)
                if ((mask >> d) & 1u) dims[nd++] = d - (d % 2 ? 4 : 0); /* mix negative dims */
            int64_t nout = 1;
            for (int d = 0; d < 4; d++)
                if (!((mask >> d) & 1u)) nout *= x->shape[d];
            double *ref = malloc(sizeof(double) * (size_t)nout);
            int64_t *pos = malloc(sizeof(int64_t) * (size_t)nout);
            ref_reduce(0, xv, 4, x->shape, mask, ref, pos);
            double *got = test_host(aqa_sum(x, nd, dims, true));
            for (int64_t o = 0; o < nout; o++)
                CHECK_MSG(fabs(got[o] - ref[o]) <= 1e-5 * (1 + fabs(ref[o])), "sum view %d mask %u out %lld: %g vs %g",
                          v, mask, (long long)o, got[o], ref[o]);
            free(got);
            for (int op = 1; op <= 2; op++) {
                ref_reduce(op, xv, 4, x->shape, mask, ref, pos);
                /* max/min over several dims: values through a full reduction of each slice is
                 * not in the API; use argmax (flattened) when mask is everything, and max_dim
                 * on single dims. */
                if (nd == 1) {
                    aqa_tensor *idx = NULL;
                    aqa_tensor *m = op == 1 ? aqa_max_dim(x, dims[0], true, &idx) : aqa_min_dim(x, dims[0], true, &idx);
                    double *mv = test_host(m), *iv = test_host(idx);
                    for (int64_t o = 0; o < nout; o++) {
                        CHECK_MSG(mv[o] == ref[o], "max/min view %d dim %d: %g vs %g", v, dims[0], mv[o], ref[o]);
                        CHECK_MSG(iv[o] == (double)pos[o], "arg view %d dim %d out %lld: %g vs %lld", v, dims[0],
                                  (long long)o, iv[o], (long long)pos[o]);
                    }
                    free(mv);
                    free(iv);
                    aqa_tensor *am = op == 1 ? aqa_argmax(x, dims[0], false) : aqa_argmin(x, dims[0], false);
                    double *av = test_host(am);
                    for (int64_t o = 0; o < nout; o++) CHECK(av[o] == (double)pos[o]);
                    free(av);
                } else if (mask == 15) {
                    aqa_tensor *m = op == 1 ? aqa_max_all(x) : aqa_min_all(x);
                    CHECK(aqa_item(m) == ref[0]);
                    aqa_tensor *am = op == 1 ? aqa_argmax(x, AQA_ALL_DIMS, false) : aqa_argmin(x, AQA_ALL_DIMS, false);
                    CHECK_EQ_INT(am->ndim, 0);
                    CHECK_EQ_INT((int64_t)aqa_item(am), pos[0]);
                }
            }
            free(ref);
            free(pos);
        }
        free(xv);
    }
    aqa_scope_end();
}

static void test_mean_var_std(void) {
    aqa_scope_begin();
    aqa_tensor *x = test_f64((double[]){1, 2, 3, 4, 2, 4, 6, 8}, AQA_SHAPE(2, 4));
    aqa_tensor *m = aqa_mean(x, 1, (int[]){1}, false);
    CHECK_NEAR(aqa_get(m, (int64_t[]){0}), 2.5, 1e-15);
    CHECK_NEAR(aqa_get(m, (int64_t[]){1}), 5.0, 1e-15);
    CHECK_NEAR(aqa_item(aqa_mean_all(x)), 3.75, 1e-15);
    aqa_tensor *mi = aqa_mean_all(aqa_to_dtype(x, AQA_I64));
    CHECK_EQ_INT(mi->dtype, AQA_F32);
    CHECK_NEAR(aqa_item(mi), 3.75, 1e-6);
    /* var([1,2,3,4]) = 5/3 (unbiased), 1.25 (population) */
    aqa_tensor *v1 = aqa_var(x, 1, (int[]){1}, 1, false);
    CHECK_NEAR(aqa_get(v1, (int64_t[]){0}), 5.0 / 3.0, 1e-14);
    CHECK_NEAR(aqa_get(v1, (int64_t[]){1}), 20.0 / 3.0, 1e-14);
    aqa_tensor *v0 = aqa_var(x, 1, (int[]){-1}, 0, true);
    CHECK(test_shape_is(v0, AQA_SHAPE(2, 1)));
    CHECK_NEAR(aqa_get(v0, (int64_t[]){0, 0}), 1.25, 1e-14);
    aqa_tensor *s = aqa_std(x, 0, NULL, 1, false);
    double mu = 3.75, ss = 0;
    double vals[8] = {1, 2, 3, 4, 2, 4, 6, 8};
    for (int i = 0; i < 8; i++) ss += (vals[i] - mu) * (vals[i] - mu);
    CHECK_NEAR(aqa_item(s), sqrt(ss / 7), 1e-14);
    /* var over dim 0 (column mode) */
    aqa_tensor *vc = aqa_var(x, 1, (int[]){0}, 1, false);
    CHECK_NEAR(aqa_get(vc, (int64_t[]){3}), 8.0, 1e-14);
    /* large offset: two-pass var keeps the precision a one-pass formula would lose */
    aqa_tensor *off = aqa_add_scalar(aqa_from_data((float[]){0, 1, 2, 3}, AQA_SHAPE(4), AQA_F32), 1e4);
    CHECK_NEAR(aqa_item(aqa_var(off, 0, NULL, 1, false)), 5.0 / 3.0, 1e-5);
    /* degenerate: one element with correction 1 -> nan (0/0), mean of nothing -> nan */
    CHECK(isnan(aqa_item(aqa_var(aqa_ones(AQA_SHAPE(1), AQA_F64), 0, NULL, 1, false))));
    CHECK(isnan(aqa_item(aqa_mean_all(aqa_zeros(AQA_SHAPE(0), AQA_F32)))));
    aqa_scope_end();
}

/* ---- max / min --------------------------------------------------------------------------- */

static void test_max_min_hand(void) {
    aqa_scope_begin();
    aqa_tensor *x = test_f64((double[]){1, 5, 5, 0, -2, -2, 7, 1, 3}, AQA_SHAPE(3, 3));
    aqa_tensor *idx;
    aqa_tensor *m = aqa_max_dim(x, 1, false, &idx);
    CHECK_EQ_INT(idx->dtype, AQA_I64);
    CHECK_NEAR(aqa_get(m, (int64_t[]){0}), 5, 0);
    CHECK_EQ_INT((int64_t)aqa_get(idx, (int64_t[]){0}), 1); /* first of the tie */
    CHECK_EQ_INT((int64_t)aqa_get(idx, (int64_t[]){1}), 0);
    CHECK_EQ_INT((int64_t)aqa_get(idx, (int64_t[]){2}), 0);
    aqa_tensor *mn = aqa_min_dim(x, 1, true, &idx);
    CHECK(test_shape_is(mn, AQA_SHAPE(3, 1)) && test_shape_is(idx, AQA_SHAPE(3, 1)));
    CHECK_EQ_INT((int64_t)aqa_get(idx, (int64_t[]){1, 0}), 1);
    CHECK_NEAR(aqa_get(mn, (int64_t[]){1, 0}), -2, 0);
    CHECK(aqa_max_dim(x, 0, false, NULL) != NULL);
    CHECK_NEAR(aqa_item(aqa_max_all(x)), 7, 0);
    CHECK_NEAR(aqa_item(aqa_min_all(x)), -2, 0);
    CHECK_EQ_INT((int64_t)aqa_item(aqa_argmax(x, AQA_ALL_DIMS, false)), 6);
    CHECK_EQ_INT((int64_t)aqa_item(aqa_argmin(x, AQA_ALL_DIMS, false)), 4);
    aqa_tensor *ak = aqa_argmax(x, AQA_ALL_DIMS, true);
    CHECK(test_shape_is(ak, AQA_SHAPE(1, 1)));
    aqa_tensor *a0 = aqa_argmax(x, 0, false);
    CHECK_EQ_INT((int64_t)aqa_get(a0, (int64_t[]){0}), 2);
    CHECK_EQ_INT((int64_t)aqa_get(a0, (int64_t[]){1}), 0);
    CHECK_EQ_INT((int64_t)aqa_get(a0, (int64_t[]){2}), 0);
    /* NaN wins, at its first position */
    aqa_tensor *xn = aqa_from_data((float[]){1, NAN, 3, NAN}, AQA_SHAPE(4), AQA_F32);
    aqa_tensor *mnan = aqa_max_dim(xn, 0, false, &idx);
    CHECK(isnan(aqa_item(mnan)));
    CHECK_EQ_INT((int64_t)aqa_item(idx), 1);
    CHECK(isnan(aqa_item(aqa_min_all(xn))));
    /* big contiguous full reduction (split across threads) */
    aqa_tensor *r = aqa_arange(0, 200000, 1, AQA_F32);
    CHECK_EQ_INT((int64_t)aqa_item(aqa_argmax(r, AQA_ALL_DIMS, false)), 199999);
    CHECK_EQ_INT((int64_t)aqa_item(aqa_argmin(r, AQA_ALL_DIMS, false)), 0);
    aqa_tensor *rr = aqa_rsub_scalar(aqa_abs(aqa_add_scalar(r, -150000.5)), 0); /* peak twice */
    CHECK_EQ_INT((int64_t)aqa_item(aqa_argmax(rr, AQA_ALL_DIMS, false)), 150000);
    /* bool */
    aqa_tensor *b = aqa_gt_scalar(x, 4);
    CHECK_EQ_INT((int64_t)aqa_item(aqa_argmax(b, AQA_ALL_DIMS, false)), 1);
    /* errors */
    CHECK(aqa_max_all(aqa_zeros(AQA_SHAPE(0), AQA_F32)) == NULL);
    CHECK(aqa_max_dim(aqa_zeros(AQA_SHAPE(2, 0), AQA_F32), 1, false, NULL) == NULL);
    CHECK(aqa_argmax(x, 2, false) == NULL);
    aqa_scope_end();
}

/* torch: max()/min() without dim split the gradient evenly between ties; max(dim) sends it to
 * the returned index only. */
static void test_max_gradients_ties(void) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(test_f64((double[]){1, 3, 3, 2}, AQA_SHAPE(4)), true);
    CHECK(aqa_backward(aqa_max_all(x), NULL, false) == AQA_OK);
    double *g = test_host(x->grad);
    CHECK(g[0] == 0 && g[1] == 0.5 && g[2] == 0.5 && g[3] == 0);
    free(g);
    aqa_zero_grad(x);
    CHECK(aqa_backward(aqa_max_dim(x, 0, false, NULL), NULL, false) == AQA_OK);
    g = test_host(x->grad);
    CHECK(g[0] == 0 && g[1] == 1 && g[2] == 0 && g[3] == 0);
    free(g);
    aqa_tensor *y = aqa_requires_grad(test_f64((double[]){-1, -1, 4, -1}, AQA_SHAPE(4)), true);
    CHECK(aqa_backward(aqa_min_all(y), NULL, false) == AQA_OK);
    g = test_host(y->grad);
    CHECK_NEAR(g[0], 1.0 / 3, 1e-15);
    CHECK(g[2] == 0);
    free(g);
    /* a NaN result: the gradient is split between the NaNs (torch) */
    aqa_tensor *z = aqa_requires_grad(test_f64((double[]){1, NAN, 3, NAN}, AQA_SHAPE(4)), true);
    CHECK(aqa_backward(aqa_max_all(z), NULL, false) == AQA_OK);
    g = test_host(z->grad);
    CHECK(g[0] == 0 && g[1] == 0.5 && g[2] == 0 && g[3] == 0.5);
    free(g);
    aqa_scope_end();
}

/* ---- softmax family ---------------------------------------------------------------------- */

static void ref_softmax_row(const double *x, int64_t n, int64_t stride, double *y, bool log) {
    double m = -INFINITY, s = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, x[i * stride]);
    for (int64_t i = 0; i < n; i++) s += exp(x[i * stride] - m);
    for (int64_t i = 0; i < n; i++) y[i * stride] = log ? x[i * stride] - m - log1p(s - 1) : exp(x[i * stride] - m) / s;
}

static void test_softmax_values(void) {
    aqa_scope_begin();
    aqa_manual_seed(test_seed("softmax"));
    /* rows of several lengths (vector body + tail), f32 and f64, dim last and dim 0 */
    int64_t lens[] = {1, 3, 8, 13, 197, 1000};
    for (int li = 0; li < 6; li++) {
        int64_t n = lens[li];
        for (int dt = 0; dt < 2; dt++) {
            aqa_tensor *x = aqa_mul_scalar(aqa_randn(AQA_SHAPE(5, n), dt ? AQA_F64 : AQA_F32, NULL), 4.0);
            double *xv = test_host(x), *ref = malloc(sizeof(double) * 5 * (size_t)n);
            for (int lg = 0; lg < 2; lg++) {
                double tol = dt ? 1e-13 : 2e-6;
                for (int r = 0; r < 5; r++) ref_softmax_row(xv + r * n, n, 1, ref + r * n, lg);
                double *got = test_host(lg ? aqa_log_softmax(x, -1) : aqa_softmax(x, 1));
                for (int64_t i = 0; i < 5 * n; i++)
                    CHECK_MSG(fabs(got[i] - ref[i]) <= tol * (lg ? 1 + fabs(ref[i]) : fabs(ref[i]) + 1e-30),
                              "softmax n=%lld dt=%d log=%d i=%lld: %.9g vs %.9g", (long long)n, dt, lg,
                              (long long)i, got[i], ref[i]);
                free(got);
                /* along dim 0 (strided rows) */
                for (int64_t c = 0; c < n; c++) ref_softmax_row(xv + c, 5, n, ref + c, lg);
                got = test_host(lg ? aqa_log_softmax(x, 0) : aqa_softmax(x, -2));
                for (int64_t i = 0; i < 5 * n; i++)
                    CHECK_MSG(fabs(got[i] - ref[i]) <= tol * (lg ? 1 + fabs(ref[i]) : fabs(ref[i]) + 1e-30),
                              "softmax dim0 n=%lld dt=%d log=%d i=%lld: %.9g vs %.9g", (long long)n, dt, lg,
                              (long long)i, got[i], ref[i]);
                free(got);
                /* transposed input, softmax along the (strided) last dim */
                aqa_tensor *xt = aqa_transpose(x, 0, 1); /* [n, 5] */
                got = test_host(lg ? aqa_log_softmax(xt, 0) : aqa_softmax(xt, 0));
                for (int r = 0; r < 5; r++) ref_softmax_row(xv + r * n, n, 1, ref + r * n, lg);
                for (int64_t i = 0; i < n; i++)
                    for (int r = 0; r < 5; r++)
                        CHECK(fabs(got[i * 5 + r] - ref[r * n + i]) <= tol * (lg ? 1 + fabs(ref[r * n + i]) : fabs(ref[r * n + i]) + 1e-30));
                free(got);
            }
            free(xv);
            free(ref);
        }
    }
    /* int input gives float32 */
    aqa_tensor *si = aqa_softmax(aqa_arange(0, 3, 1, AQA_I64), 0);
    CHECK_EQ_INT(si->dtype, AQA_F32);
    double e0 = 1 / (1 + exp(1) + exp(2));
    CHECK_NEAR(aqa_get(si, (int64_t[]){0}), e0, 1e-7);
    CHECK(aqa_softmax(si, 1) == NULL);
    /* a 0-d tensor: softmax 1, log_softmax 0 */
    CHECK_NEAR(aqa_item(aqa_softmax(aqa_scalar(3, AQA_F32), 0)), 1, 0);
    CHECK_NEAR(aqa_item(aqa_log_softmax(aqa_scalar(3, AQA_F32), -1)), 0, 0);
    aqa_scope_end();
}

static void test_softmax_stability(void) {
    aqa_scope_begin();
    for (int dt = 0; dt < 2; dt++) {
        aqa_dtype d = dt ? AQA_F64 : AQA_F32;
        aqa_tensor *x = aqa_to_dtype(test_f64((double[]){1000, 1001}, AQA_SHAPE(2)), d);
        aqa_tensor *s = aqa_softmax(x, 0);
        double p1 = 1 / (1 + exp(-1.0));
        CHECK_NEAR(aqa_get(s, (int64_t[]){1}), p1, 1e-7);
        CHECK_NEAR(aqa_get(s, (int64_t[]){0}), 1 - p1, 1e-7);
        aqa_tensor *ls = aqa_log_softmax(x, 0);
        CHECK_NEAR(aqa_get(ls, (int64_t[]){1}), log(p1), 1e-6);
        CHECK_NEAR(aqa_get(ls, (int64_t[]){0}), log(1 - p1), 1e-6);
        aqa_tensor *neg = aqa_to_dtype(test_f64((double[]){-1000, -1001, -INFINITY}, AQA_SHAPE(3)), d);
        aqa_tensor *sn = aqa_softmax(neg, 0);
        CHECK_NEAR(aqa_get(sn, (int64_t[]){0}), p1, 1e-7);
        CHECK(aqa_get(sn, (int64_t[]){2}) == 0);
        CHECK(isinf(aqa_get(aqa_log_softmax(neg, 0), (int64_t[]){2})));
        /* a row of all -inf gives NaN (as torch); NaN poisons its row only */
        aqa_tensor *rows = aqa_to_dtype(test_f64((double[]){-INFINITY, -INFINITY, 1, NAN, 0, 0}, AQA_SHAPE(3, 2)), d);
        aqa_tensor *sr = aqa_softmax(rows, 1);
        CHECK(isnan(aqa_get(sr, (int64_t[]){0, 0})) && isnan(aqa_get(sr, (int64_t[]){0, 1})));
        CHECK(isnan(aqa_get(sr, (int64_t[]){1, 0})) && isnan(aqa_get(sr, (int64_t[]){1, 1})));
        CHECK_NEAR(aqa_get(sr, (int64_t[]){2, 0}), 0.5, 1e-7);
        /* the same along dim 0 of the transpose (contiguous, middle-dim path) */
        aqa_tensor *cols = aqa_contiguous(aqa_transpose(rows, 0, 1)); /* [2, 3] */
        aqa_tensor *sc = aqa_softmax(cols, 0);
        CHECK(isnan(aqa_get(sc, (int64_t[]){0, 0})) && isnan(aqa_get(sc, (int64_t[]){1, 0})));
        CHECK(isnan(aqa_get(sc, (int64_t[]){0, 1})) && isnan(aqa_get(sc, (int64_t[]){1, 1})));
        CHECK_NEAR(aqa_get(sc, (int64_t[]){1, 2}), 0.5, 1e-7);
        aqa_tensor *lc = aqa_log_softmax(aqa_contiguous(aqa_transpose(neg, 0, 0)), 0);
        CHECK_NEAR(aqa_get(lc, (int64_t[]){0}), log(p1), 1e-6);
        /* logsumexp */
        aqa_tensor *big = aqa_to_dtype(test_f64((double[]){1000, 1000, -1e30, 1e30}, AQA_SHAPE(2, 2)), d);
        aqa_tensor *l = aqa_logsumexp(big, 1, (int[]){1}, false);
        CHECK_NEAR(aqa_get(l, (int64_t[]){0}), 1000 + log(2.0), 1e-4);
        CHECK_NEAR(aqa_get(l, (int64_t[]){1}) / 1e30, 1.0, 1e-6);
        aqa_tensor *inf = aqa_to_dtype(test_f64((double[]){-INFINITY, -INFINITY, INFINITY, 1}, AQA_SHAPE(2, 2)), d);
        aqa_tensor *li = aqa_logsumexp(inf, 1, (int[]){-1}, true);
        CHECK(test_shape_is(li, AQA_SHAPE(2, 1)));
        double v0 = aqa_get(li, (int64_t[]){0, 0}), v1 = aqa_get(li, (int64_t[]){1, 0});
        CHECK(isinf(v0) && v0 < 0);
        CHECK(isinf(v1) && v1 > 0);
    }
    /* logsumexp over several dims equals log(sum(exp)) for moderate values */
    aqa_manual_seed(test_seed("logsumexp"));
    aqa_tensor *x = aqa_randn(AQA_SHAPE(3, 4, 5), AQA_F64, NULL);
    aqa_tensor *l = aqa_logsumexp(x, 2, (int[]){0, 2}, false);
    aqa_tensor *ref = aqa_log(aqa_sum(aqa_exp(x), 2, (int[]){0, 2}, false));
    for (int64_t i = 0; i < 4; i++) CHECK_NEAR(aqa_get(l, &i), aqa_get(ref, &i), 1e-13);
    CHECK_NEAR(aqa_item(aqa_logsumexp(x, 0, NULL, false)), log(aqa_item(aqa_sum_all(aqa_exp(x)))), 1e-13);
    /* empty reduction: -inf */
    aqa_tensor *le = aqa_logsumexp(aqa_zeros(AQA_SHAPE(2, 0), AQA_F32), 1, (int[]){1}, false);
    CHECK(le && isinf(aqa_get(le, (int64_t[]){0})));
    aqa_scope_end();
}

/* ---- sum_to_shape ----------------------------------------------------------------------- */

static void test_sum_to_shape(void) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_arange(0, 24, 1, AQA_F64);
    aqa_tensor *x3 = aqa_view(x, AQA_SHAPE(2, 3, 4));
    aqa_tensor *a = aqa_sum_to_shape(x3, AQA_SHAPE(3, 1));
    CHECK(test_shape_is(a, AQA_SHAPE(3, 1)));
    /* row j: sum over i, k of 12 i + 4 j + k = 2 * (4*(4j) + 6) + 4*12 */
    for (int64_t j = 0; j < 3; j++) CHECK_NEAR(aqa_get(a, (int64_t[]){j, 0}), 2 * (16 * j + 6) + 48, 0);
    aqa_tensor *b = aqa_sum_to_shape(x3, AQA_SHAPE(4));
    CHECK(test_shape_is(b, AQA_SHAPE(4)));
    double bv[4] = {0};
    for (int i = 0; i < 24; i++) bv[i % 4] += i;
    for (int64_t k = 0; k < 4; k++) CHECK_NEAR(aqa_get(b, &k), bv[k], 0);
    aqa_tensor *c = aqa_sum_to_shape(x3, AQA_SHAPE(2, 3, 4));
    CHECK(test_shape_is(c, AQA_SHAPE(2, 3, 4)));
    CHECK_NEAR(aqa_get(c, (int64_t[]){1, 2, 3}), 23, 0);
    aqa_tensor *d = aqa_sum_to_shape(x3, AQA_SHAPE(1, 1, 1));
    CHECK_NEAR(aqa_get(d, (int64_t[]){0, 0, 0}), 276, 0);
    CHECK_NEAR(aqa_item(aqa_sum_to_shape(x3, 0, NULL)), 276, 0);
    CHECK(aqa_sum_to_shape(x3, AQA_SHAPE(3, 3)) == NULL);
    CHECK(aqa_sum_to_shape(x3, AQA_SHAPE(1, 2, 3, 4)) == NULL);
    aqa_scope_end();
}

/* ---- gradients ------------------------------------------------------------------------- */

typedef struct gc_case {
    const char *name;
    int op;          /* see gc_fn */
    int n_dims;      /* dims for the reduction */
    int dims[3];
    bool keepdim;
    bool transpose;  /* apply the op to x transposed (dims 0 and last): non-contiguous input */
    bool expand;     /* x is [4, 5], broadcast to [3, 4, 5] (stride 0) before the op */
} gc_case;

static aqa_tensor *gc_fn(aqa_tensor *const *in, int n, void *user) {
    const gc_case *c = user;
    aqa_tensor *x = in[0];
    if (c->expand) x = aqa_expand(x, AQA_SHAPE(3, 4, 5));
    if (c->transpose) x = aqa_transpose(x, 0, x->ndim - 1);
    switch (c->op) {
    case 0: return aqa_sum(x, c->n_dims, c->dims, c->keepdim);
    case 1: return aqa_mean(x, c->n_dims, c->dims, c->keepdim);
    case 2: return aqa_var(x, c->n_dims, c->dims, 1, c->keepdim);
    case 3: return aqa_std(x, c->n_dims, c->dims, 0, c->keepdim);
    case 4: return aqa_max_dim(x, c->dims[0], c->keepdim, NULL);
    case 5: return aqa_min_dim(x, c->dims[0], c->keepdim, NULL);
    case 6: return aqa_max_all(x);
    case 7: return aqa_min_all(x);
    case 8: return aqa_softmax(x, c->dims[0]);
    case 9: return aqa_log_softmax(x, c->dims[0]);
    case 10: return aqa_logsumexp(x, c->n_dims, c->dims, c->keepdim);
    case 11: return aqa_sum_to_shape(x, 2, (int64_t[]){x->shape[x->ndim - 2], 1});
    case 12: return aqa_sum_all(aqa_mul(aqa_softmax(x, c->dims[0]), x)); /* through a composite */
    case 13: return aqa_mean_all(x);
    }
    return NULL;
}

static void test_gradcheck_reductions(void) {
    static const gc_case cases[] = {
        {"sum dim1", 0, 1, {1}, false, false, false},
        {"sum dims0,2 keepdim", 0, 2, {0, -1}, true, false, false},
        {"sum all transposed", 0, 0, {0}, false, true, false},
        {"sum dim0 transposed", 0, 1, {0}, false, true, false},
        {"mean dims1,2", 1, 2, {1, 2}, false, false, false},
        {"mean keepdim transposed", 1, 1, {-1}, true, true, false},
        {"mean all", 13, 0, {0}, false, false, false},
        {"var dim1", 2, 1, {1}, false, false, false},
        {"var dims0,2 keepdim transposed", 2, 2, {0, 2}, true, true, false},
        {"std all", 3, 0, {0}, false, false, false},
        {"std dim2", 3, 1, {2}, true, true, false},
        {"max_dim 1", 4, 1, {1}, false, false, false},
        {"max_dim -1 keepdim transposed", 4, 1, {-1}, true, true, false},
        {"min_dim 0", 5, 1, {0}, false, false, false},
        {"max_all", 6, 0, {0}, false, true, false},
        {"min_all", 7, 0, {0}, false, false, false},
        {"softmax -1", 8, 0, {-1}, false, false, false},
        {"softmax 1 transposed", 8, 0, {1}, false, true, false},
        {"softmax 0", 8, 0, {0}, false, false, false},
        {"log_softmax -1", 9, 0, {-1}, false, false, false},
        {"log_softmax 0 transposed", 9, 0, {0}, false, true, false},
        {"logsumexp dim1", 10, 1, {1}, false, false, false},
        {"logsumexp dims0,2 keepdim transposed", 10, 2, {0, 2}, true, true, false},
        {"logsumexp all", 10, 0, {0}, false, false, false},
        {"sum_to_shape", 11, 0, {0}, false, false, false},
        {"sum(softmax * x)", 12, 0, {1}, false, true, false},
        /* broadcast (stride-0) inputs */
        {"sum dim0 of broadcast", 0, 1, {0}, false, false, true},
        {"sum dims1,2 of broadcast transposed", 0, 2, {1, 2}, true, true, true},
        {"mean all of broadcast", 1, 0, {0}, false, false, true},
        {"var dim0 of broadcast", 2, 1, {0}, false, false, true},
        {"max_dim 2 of broadcast", 4, 1, {2}, false, false, true},
        {"softmax 0 of broadcast", 8, 0, {0}, false, false, true},
        {"log_softmax -1 of broadcast transposed", 9, 0, {-1}, false, true, true},
        {"logsumexp 0,1 of broadcast", 10, 2, {0, 1}, false, false, true},
        {"sum_to_shape of broadcast", 11, 0, {0}, false, false, true},
    };
    aqa_manual_seed(test_seed("gradcheck reductions"));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        aqa_scope_begin();
        /* distinct values (no ties) so max/min are differentiable */
        aqa_tensor *x = cases[i].expand ? aqa_randn(AQA_SHAPE(4, 5), AQA_F64, NULL)
                                        : aqa_randn(AQA_SHAPE(3, 4, 5), AQA_F64, NULL);
        aqa_requires_grad(x, true);
        aqa_gradcheck_result r = aqa_gradcheck(gc_fn, &x, 1, (void *)&cases[i], 1e-6, 1e-7, 1e-6);
        CHECK_MSG(r.ok, "%s: %s", cases[i].name, r.message);
        aqa_scope_end();
    }
    /* broadcast input through the op: sum(x + y) with y [5] broadcast to [3, 4, 5] */
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(aqa_randn(AQA_SHAPE(5), AQA_F64, NULL), true);
    aqa_tensor *y = aqa_expand(x, AQA_SHAPE(3, 4, 5));
    aqa_tensor *l = aqa_logsumexp(y, 2, (int[]){0, 2}, false);
    CHECK(aqa_backward(l, aqa_ones(AQA_SHAPE(4), AQA_F64), false) == AQA_OK);
    /* lse_j = log(3 sum_k exp x_k) for each of the 4 j, so d/dx_k sum_j lse_j = 4 softmax(x)_k */
    aqa_tensor *sm = aqa_softmax(aqa_detach(x), 0);
    for (int64_t k = 0; k < 5; k++) CHECK_NEAR(aqa_get(x->grad, &k), 4 * aqa_get(sm, &k), 1e-12);
    aqa_scope_end();
}

/* ---- PyTorch golden data ------------------------------------------------------------------ */

static void test_golden(void) {
    if (!test_golden_open("golden_reduce_matmul.safetensors")) {
        CHECK_MSG(0, "cannot open golden file: %s", aqa_last_error());
        return;
    }
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(GOLDEN("red.x"), true); /* [4, 6, 5] */
    CHECK(x != NULL);
    /* each output y gets upstream gradient golden "<name>.gy"; compare y and x.grad */
#define GOLDEN_OP(NAME, EXPR)                                                                          \
    do {                                                                                               \
        aqa_zero_grad(x);                                                                              \
        aqa_tensor *y = (EXPR);                                                                        \
        CHECK_CLOSE_SCALED(NAME ".y", y, GOLDEN(NAME ".y"), 1e-5);             \
        aqa_tensor *gy = GOLDEN(NAME ".gy");                                                        \
        if (y && gy) aqa_backward(y, aqa_reshape(gy, y->ndim, y->shape), false);                        \
        CHECK_CLOSE_SCALED(NAME ".gx", x->grad, GOLDEN(NAME ".gx"), 1e-5);    \
    } while (0)
    GOLDEN_OP("sum_1", aqa_sum(x, 1, (int[]){1}, false));
    GOLDEN_OP("sum_02k", aqa_sum(x, 2, (int[]){0, 2}, true));
    GOLDEN_OP("mean_m1", aqa_mean(x, 1, (int[]){-1}, false));
    GOLDEN_OP("var_1", aqa_var(x, 1, (int[]){1}, 1, false));
    GOLDEN_OP("var_02_c0", aqa_var(x, 2, (int[]){0, 2}, 0, true));
    GOLDEN_OP("std_all", aqa_std(x, 0, NULL, 1, false));
    GOLDEN_OP("max_dim1", aqa_max_dim(x, 1, false, NULL));
    GOLDEN_OP("min_dim2", aqa_min_dim(x, 2, true, NULL));
    GOLDEN_OP("amax_all", aqa_max_all(x));
    GOLDEN_OP("softmax_m1", aqa_softmax(x, -1));
    GOLDEN_OP("softmax_1", aqa_softmax(x, 1));
    GOLDEN_OP("log_softmax_m1", aqa_log_softmax(x, -1));
    GOLDEN_OP("log_softmax_0", aqa_log_softmax(x, 0));
    GOLDEN_OP("logsumexp_12", aqa_logsumexp(x, 2, (int[]){1, 2}, false));
    GOLDEN_OP("softmax_t", aqa_softmax(aqa_transpose(x, 0, 2), -1));
    /* argmax and max_dim indices */
    aqa_tensor *idx;
    aqa_max_dim(x, 1, false, &idx);
    CHECK_CLOSE_SCALED("max_dim1.idx", idx, GOLDEN("max_dim1.idx"), 0);
    CHECK_CLOSE_SCALED("argmax_2", aqa_argmax(x, 2, false), GOLDEN("argmax_2"), 0);
    CHECK_CLOSE_SCALED("argmin_all", aqa_argmin(x, AQA_ALL_DIMS, false), GOLDEN("argmin_all"), 0);
    /* softmax of an attention-sized row block */
    aqa_tensor *att = GOLDEN("att.x");
    CHECK_CLOSE_SCALED("att.softmax", aqa_softmax(att, -1), GOLDEN("att.softmax"), 1e-5);
    CHECK_CLOSE_SCALED("att.log_softmax", aqa_log_softmax(att, -1), GOLDEN("att.log_softmax"), 1e-5);
    aqa_scope_end();
}

static void test_no_leaks(void) {
    int64_t t0 = aqa_live_tensors(), s0 = aqa_live_storages();
    /* outside any scope: every result is caller-owned */
    aqa_tensor *x = aqa_requires_grad(aqa_randn(AQA_SHAPE(3, 4), AQA_F32, NULL), true);
    aqa_tensor *idx = NULL;
    aqa_tensor *ys[] = {aqa_sum(x, 1, (int[]){0}, false), aqa_mean(x, 0, NULL, false),
                        aqa_var(x, 1, (int[]){1}, 1, true), aqa_std(x, 0, NULL, 1, false),
                        aqa_max_dim(x, 1, false, &idx), aqa_max_all(x), aqa_argmax(x, AQA_ALL_DIMS, false),
                        aqa_softmax(x, -1), aqa_log_softmax(x, 0), aqa_logsumexp(x, 1, (int[]){1}, false),
                        aqa_sum_to_shape(x, AQA_SHAPE(1, 4)), aqa_min_all(x)};
    for (size_t i = 0; i < sizeof ys / sizeof ys[0]; i++) CHECK(ys[i] != NULL);
    for (size_t i = 0; i < sizeof ys / sizeof ys[0]; i++) aqa_tensor_free(ys[i]);
    aqa_tensor_free(idx);
    aqa_tensor_free(x);
    CHECK_EQ_INT(aqa_live_tensors(), t0);
    CHECK_EQ_INT(aqa_live_storages(), s0);
}

int main(void) {
    RUN(test_sum_hand);
    RUN(test_sum_precision);
    RUN(test_reduce_all_masks);
    RUN(test_mean_var_std);
    RUN(test_max_min_hand);
    RUN(test_max_gradients_ties);
    RUN(test_softmax_values);
    RUN(test_softmax_stability);
    RUN(test_sum_to_shape);
    RUN(test_gradcheck_reductions);
    RUN(test_golden);
    RUN(test_no_leaks);
    test_golden_close();
    return test_finish();
}
