/* test_conv.c: convolutions (nn/conv.h): gradchecks in float64 (stride, padding, dilation, groups,
 * bias, padding modes, transposed, non-contiguous input), forward and gradients against PyTorch
 * golden data (scripts/gen_golden_conv.py), padding rules, the column-tile bound (tiled result ==
 * untiled result), the modules' parameters, and leaks. */
#include <math.h>

#include "autograd/autograd.h"
#include "nn/conv.h"
#include "nn/nn_cpu-impl.h"
#include "tensor/cpu-impl.h"
#include "tensor/cpu_gemm-impl.h"
#include "ops/ops.h"
#include "tests/test_util.h"

#define GOLDEN_FILE "golden_conv.safetensors"

/* True when the golden file is readable (the golden tests SKIP otherwise). */
static bool have_golden(void) { return test_golden_open(GOLDEN_FILE); }

typedef enum { F_CONV, F_CONV_T } conv_fn;

/* Loads x, w (and b), runs the conv with opts, backpropagates golden gy and compares y and the
 * gradients with PyTorch's. */
static void golden_case(const char *prefix, conv_fn fn, bool has_bias, const aqa_conv_opts *opts) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(GOLDEN("%s.x", prefix), true);
    aqa_tensor *w = aqa_requires_grad(GOLDEN("%s.w", prefix), true);
    aqa_tensor *b = has_bias ? aqa_requires_grad(GOLDEN("%s.b", prefix), true) : NULL;
    aqa_tensor *y = fn == F_CONV ? aqa_conv(x, w, b, opts) : aqa_conv_transpose(x, w, b, opts);
    CHECK_MSG(y != NULL, "%s: %s", prefix, aqa_last_error());
    if (y) {
        double tol = 1e-5;
        CHECK_REL(prefix, y, GOLDEN("%s.y", prefix), tol);
        CHECK(aqa_backward(y, GOLDEN("%s.gy", prefix), false) == AQA_OK);
        CHECK_REL(prefix, x->grad, GOLDEN("%s.gx", prefix), tol);
        CHECK_REL(prefix, w->grad, GOLDEN("%s.gw", prefix), tol);
        if (b)
            CHECK_REL(prefix, b->grad, GOLDEN("%s.gb", prefix), tol);
    }
    aqa_scope_end();
}

static void test_golden_conv(void) {
    if (!have_golden()) {
        SKIP("tests/data/" GOLDEN_FILE " absent");
        return;
    }
    golden_case("conv1d", F_CONV, true, &(aqa_conv_opts){.stride = {2}, .padding = {1}, .dilation = {2}, .groups = 2});
    golden_case("conv2d", F_CONV, true, &(aqa_conv_opts){.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}});
    golden_case("conv3d", F_CONV, true, &(aqa_conv_opts){.stride = {1, 2, 2}, .padding = {1, 1, 0}, .groups = 2});
    golden_case("conv3d_tf_same", F_CONV, true,
                &(aqa_conv_opts){.stride = {2, 2, 2}, .padding_mode = AQA_PADDING_TF_SAME});
    golden_case("conv2d_same", F_CONV, false, &(aqa_conv_opts){.dilation = {1, 2}, .padding_mode = AQA_PADDING_SAME});
    golden_case("conv3d_1x1", F_CONV, true, NULL);
    golden_case("conv_t1d", F_CONV_T, true,
                &(aqa_conv_opts){.stride = {2}, .padding = {1}, .output_padding = {1}, .groups = 2});
}

/* ---- gradchecks ----------------------------------------------------------------------------------- */

typedef struct gc_case {
    aqa_conv_opts opts;
    conv_fn fn;
    bool transpose_input; /* feed x as a transposed view (non-contiguous) */
} gc_case;

static aqa_tensor *gc_fn(aqa_tensor *const *in, int n, void *user) {
    const gc_case *c = user;
    aqa_tensor *x = in[0];
    if (c->transpose_input) x = aqa_transpose(x, -1, -2);
    return c->fn == F_CONV ? aqa_conv(x, in[1], n > 2 ? in[2] : NULL, &c->opts)
                           : aqa_conv_transpose(x, in[1], n > 2 ? in[2] : NULL, &c->opts);
}

static void gradcheck_case(const char *what, int xnd, const int64_t *xs, int wnd, const int64_t *ws, bool bias,
                           gc_case c) {
    aqa_scope_begin();
    int64_t bshape = c.fn == F_CONV ? ws[0] : ws[1] * (c.opts.groups ? c.opts.groups : 1);
    aqa_tensor *in[3] = {aqa_requires_grad(aqa_randn(xnd, xs, AQA_F64, NULL), true),
                         aqa_requires_grad(aqa_randn(wnd, ws, AQA_F64, NULL), true),
                         bias ? aqa_requires_grad(aqa_randn(1, &bshape, AQA_F64, NULL), true) : NULL};
    aqa_gradcheck_result r = aqa_gradcheck(gc_fn, in, bias ? 3 : 2, &c, 1e-6, 1e-7, 1e-6);
    CHECK_MSG(r.ok, "%s: %s", what, r.message);
    aqa_scope_end();
}

static void test_gradcheck_conv(void) {
    aqa_manual_seed(test_seed("gradcheck conv"));
    gradcheck_case("conv1d s2 p1 d2 g2", 3, (int64_t[]){2, 4, 9}, 3, (int64_t[]){6, 2, 3}, true,
                   (gc_case){.opts = {.stride = {2}, .padding = {1}, .dilation = {2}, .groups = 2}});
    gradcheck_case("conv1d unbatched, no bias", 2, (int64_t[]){3, 7}, 3, (int64_t[]){2, 3, 2}, false,
                   (gc_case){.opts = {.padding = {2}}});
    gradcheck_case("conv2d s(2,1) p(1,0) d(1,2)", 4, (int64_t[]){2, 3, 6, 5}, 4, (int64_t[]){4, 3, 3, 2}, true,
                   (gc_case){.opts = {.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}}});
    gradcheck_case("conv2d transposed input, groups 3", 4, (int64_t[]){1, 3, 5, 6}, 4, (int64_t[]){3, 1, 2, 2}, true,
                   (gc_case){.opts = {.groups = 3, .padding = {1, 1}}, .transpose_input = true});
    gradcheck_case("conv2d same", 4, (int64_t[]){1, 2, 5, 6}, 4, (int64_t[]){2, 2, 4, 3}, true,
                   (gc_case){.opts = {.dilation = {1, 2}, .padding_mode = AQA_PADDING_SAME}});
    gradcheck_case("conv3d s(1,2,2) p(1,1,0) g2", 5, (int64_t[]){1, 4, 3, 5, 4}, 5, (int64_t[]){2, 2, 2, 3, 2}, true,
                   (gc_case){.opts = {.stride = {1, 2, 2}, .padding = {1, 1, 0}, .groups = 2}});
    gradcheck_case("conv3d TF same s2", 5, (int64_t[]){1, 2, 4, 5, 6}, 5, (int64_t[]){2, 2, 3, 3, 2}, true,
                   (gc_case){.opts = {.stride = {2, 2, 2}, .padding_mode = AQA_PADDING_TF_SAME}});
    gradcheck_case("conv3d dilated", 5, (int64_t[]){1, 1, 5, 5, 5}, 5, (int64_t[]){2, 1, 2, 2, 2}, false,
                   (gc_case){.opts = {.dilation = {2, 2, 1}, .padding = {1, 0, 1}}});
    gradcheck_case("conv3d 1x1x1", 5, (int64_t[]){2, 3, 2, 3, 2}, 5, (int64_t[]){4, 3, 1, 1, 1}, true, (gc_case){0});
    gradcheck_case("conv_transpose1d s2 p1 op1 g2", 3, (int64_t[]){2, 4, 5}, 3, (int64_t[]){4, 3, 3}, true,
                   (gc_case){.opts = {.stride = {2}, .padding = {1}, .output_padding = {1}, .groups = 2},
                             .fn = F_CONV_T});
    gradcheck_case("conv_transpose1d dilation 2", 3, (int64_t[]){1, 2, 4}, 3, (int64_t[]){2, 3, 2}, false,
                   (gc_case){.opts = {.dilation = {2}, .stride = {3}}, .fn = F_CONV_T});
}

/* ---- padding rules and errors ------------------------------------------------------------------------ */

static void test_padding_rules(void) {
    int64_t lo = -1, hi = -1;
    /* I3D's stem: 224 wide, k 7, s 2 -> out 112, total 111*2 + 7 - 224 = 5 */
    CHECK(aqa_conv_padding(AQA_PADDING_TF_SAME, 0, 224, 7, 2, 1, &lo, &hi) == AQA_OK);
    CHECK_EQ_INT(lo, 2);
    CHECK_EQ_INT(hi, 3);
    CHECK(aqa_conv_padding(AQA_PADDING_TF_SAME, 0, 7, 3, 2, 1, &lo, &hi) == AQA_OK); /* 3*2+3-7 = 2 */
    CHECK_EQ_INT(lo, 1);
    CHECK_EQ_INT(hi, 1);
    CHECK(aqa_conv_padding(AQA_PADDING_TF_SAME, 0, 8, 1, 2, 1, &lo, &hi) == AQA_OK); /* 3*2+1-8 < 0 */
    CHECK_EQ_INT(lo, 0);
    CHECK_EQ_INT(hi, 0);
    CHECK(aqa_conv_padding(AQA_PADDING_SAME, 0, 10, 4, 1, 3, &lo, &hi) == AQA_OK); /* total 9 */
    CHECK_EQ_INT(lo, 4);
    CHECK_EQ_INT(hi, 5);
    CHECK(aqa_conv_padding(AQA_PADDING_SAME, 0, 10, 3, 2, 1, &lo, &hi) != AQA_OK);
    aqa_scope_begin();
    aqa_tensor *x = aqa_randn(AQA_SHAPE(1, 4, 8, 8), AQA_F32, NULL);
    CHECK(aqa_conv2d(x, aqa_randn(AQA_SHAPE(2, 3, 3, 3), AQA_F32, NULL), NULL, NULL) == NULL); /* channels */
    CHECK(aqa_conv2d(x, aqa_randn(AQA_SHAPE(2, 4, 9, 3), AQA_F32, NULL), NULL, NULL) == NULL); /* too big */
    CHECK(aqa_conv3d(x, aqa_randn(AQA_SHAPE(2, 4, 3, 3), AQA_F32, NULL), NULL, NULL) == NULL); /* dims */
    aqa_tensor *y = aqa_conv2d(x, aqa_randn(AQA_SHAPE(3, 2, 3, 3), AQA_F32, NULL), NULL,
                               &(aqa_conv_opts){.groups = 2, .stride = {2, 3}, .padding = {1, 0}});
    CHECK(y == NULL); /* 3 output channels do not split into 2 groups */
    y = aqa_conv2d(x, aqa_randn(AQA_SHAPE(4, 2, 3, 3), AQA_F32, NULL), NULL,
                   &(aqa_conv_opts){.groups = 2, .stride = {2, 3}, .padding = {1, 0}});
    CHECK(y && y->shape[0] == 1 && y->shape[1] == 4 && y->shape[2] == 4 && y->shape[3] == 2);
    aqa_scope_end();
}

/* ---- tiling ----------------------------------------------------------------------------------------- */

/* conv3d of copies of x0 and w0 forward and backward (upstream *gy, drawn on the first call):
 * res receives y, x's and w's gradients.  False when the conv fails. */
static bool conv3d_run(aqa_tensor *x0, aqa_tensor *w0, const aqa_conv_opts *o, aqa_tensor **gy, aqa_tensor *res[3]) {
    aqa_tensor *x = aqa_requires_grad(aqa_clone(x0), true), *w = aqa_requires_grad(aqa_clone(w0), true);
    aqa_tensor *y = aqa_conv3d(x, w, NULL, o);
    if (!y) return false;
    if (!*gy) *gy = aqa_randn(y->ndim, y->shape, AQA_F64, NULL);
    aqa_backward(y, *gy, false);
    res[0] = y;
    res[1] = x->grad;
    res[2] = w->grad;
    return true;
}

/* The same conv (forward, input and weight gradients) with a tiny tile budget and an unlimited one
 * (float64, so that the weight gradient's different summation order stays far below the bound). */
static void test_tiling_matches_untiled(void) {
    aqa_manual_seed(test_seed("tiling"));
    aqa_scope_begin();
    aqa_tensor *x0 = aqa_randn(AQA_SHAPE(2, 4, 5, 9, 11), AQA_F64, NULL);
    aqa_tensor *w0 = aqa_randn(AQA_SHAPE(6, 2, 3, 3, 3), AQA_F64, NULL);
    aqa_tensor *gy = NULL, *res[2][3];
    aqa_conv_opts o = {.stride = {1, 2, 2}, .padding = {1, 1, 1}, .groups = 2};
    for (int pass = 0; pass < 2; pass++) {
        aqa_conv_set_tile_bytes(pass == 0 ? (size_t)1 << 40 : 3000);
        aqa_conv_reset_peak_col_bytes();
        if (!conv3d_run(x0, w0, &o, &gy, res[pass])) break;
        if (pass == 1) CHECK_MSG(aqa_conv_peak_col_bytes() <= 3000, "peak %zu", aqa_conv_peak_col_bytes());
    }
    aqa_conv_set_tile_bytes(0);
    CHECK_EQ_INT(aqa_conv_tile_bytes(), 64 << 20);
    for (int i = 0; i < 3; i++) CHECK_MSG(test_max_rel_diff(res[0][i], res[1][i]) < 1e-12, "result %d: %g", i, test_max_rel_diff(res[0][i], res[1][i]));
    aqa_scope_end();
}

/* Small outputs with several samples take the folded path (several samples per GEMM): the same
 * results as sample by sample, for a strided grouped conv and a pointwise one. */
static void test_batch_folding(void) {
    aqa_manual_seed(test_seed("folding"));
    for (int pw = 0; pw < 2; pw++) {
        aqa_scope_begin();
        aqa_tensor *x0 = aqa_randn(AQA_SHAPE(5, 4, 3, 6, 7), AQA_F64, NULL);
        aqa_tensor *w0 = pw ? aqa_randn(AQA_SHAPE(6, 4, 1, 1, 1), AQA_F64, NULL) : aqa_randn(AQA_SHAPE(6, 2, 2, 3, 3), AQA_F64, NULL);
        aqa_conv_opts o = pw ? (aqa_conv_opts){0} : (aqa_conv_opts){.stride = {1, 2, 1}, .padding = {1, 1, 0}, .groups = 2};
        aqa_tensor *gy = NULL, *res[2][3] = {{0}};
        for (int pass = 0; pass < 2; pass++) {
            aqa_conv_fold_disabled = pass == 1;
            if (!conv3d_run(x0, w0, &o, &gy, res[pass])) break;
        }
        aqa_conv_fold_disabled = false;
        for (int i = 0; i < 3; i++)
            CHECK_MSG(test_max_rel_diff(res[0][i], res[1][i]) < 1e-12, "pointwise %d result %d: %g", pw, i,
                      test_max_rel_diff(res[0][i], res[1][i]));
        aqa_scope_end();
    }
}

/* I3D-like stem on [1, 3, 16, 112, 112], 7x7x7 stride 2 (TF same): the untiled column matrix is
 * 1029 x 25088 floats (~103 MB); with a 4 MiB budget the buffers stay under 4 MiB and the output
 * equals the default-budget one. */
static void test_memory_bound_i3d_stem(void) {
    aqa_manual_seed(test_seed("i3d stem"));
    aqa_scope_begin();
    aqa_tensor *x = aqa_randn(AQA_SHAPE(1, 3, 16, 112, 112), AQA_F32, NULL);
    aqa_tensor *w = aqa_requires_grad(aqa_randn(AQA_SHAPE(8, 3, 7, 7, 7), AQA_F32, NULL), true);
    aqa_conv_opts o = {.stride = {2, 2, 2}, .padding_mode = AQA_PADDING_TF_SAME};
    aqa_conv_reset_peak_col_bytes();
    aqa_tensor *y_default = aqa_conv3d(x, w, NULL, &o);
    CHECK(y_default && y_default->shape[2] == 8 && y_default->shape[3] == 56 && y_default->shape[4] == 56);
    CHECK_MSG(aqa_conv_peak_col_bytes() <= aqa_conv_tile_bytes(), "default peak %zu", aqa_conv_peak_col_bytes());
    aqa_conv_set_tile_bytes((size_t)4 << 20);
    aqa_conv_reset_peak_col_bytes();
    aqa_tensor *y = aqa_conv3d(x, w, NULL, &o);
    CHECK_MSG(aqa_conv_peak_col_bytes() <= ((size_t)4 << 20), "peak %zu", aqa_conv_peak_col_bytes());
    CHECK(test_max_rel_diff(y, y_default) < 1e-5);
    /* the weight gradient (the backward's column tiles) under the same bound */
    aqa_conv_reset_peak_col_bytes();
    CHECK(aqa_backward(aqa_sum_all(y), NULL, false) == AQA_OK);
    CHECK_MSG(aqa_conv_peak_col_bytes() <= ((size_t)4 << 20), "backward peak %zu", aqa_conv_peak_col_bytes());
    CHECK(w->grad != NULL);
    aqa_conv_set_tile_bytes(0);
    aqa_scope_end();
}

/* ---- the float32 GEMM path (nn/conv_gemm.c) against the vol2col + OpenBLAS path --------------- */

typedef struct path_case {
    const char *what;
    int64_t x[5], w[5]; /* [n, c, d, h, w], [o, c/groups (transposed: in/groups... as torch), kd, kh, kw] */
    aqa_conv_opts opts;
    bool transposed;
    bool winograd; /* 3x3x3 unit stride, >= 16 channels: Winograd's path on AVX-512 (nn/conv_winograd.c) */
} path_case;

/* y, x.grad, w.grad, b.grad of one conv3d (or conv_transpose3d) in float32 with gy = gy0. */
static bool path_run(const path_case *c, aqa_tensor *x0, aqa_tensor *w0, aqa_tensor *b0, aqa_tensor **gy,
                     aqa_tensor *res[4]) {
    aqa_tensor *x = aqa_requires_grad(aqa_clone(x0), true), *w = aqa_requires_grad(aqa_clone(w0), true);
    long runs = aqa_conv_winograd_runs;
    aqa_tensor *b = aqa_requires_grad(aqa_clone(b0), true);
    aqa_tensor *y = c->transposed ? aqa_conv_transpose(x, w, b, &c->opts) : aqa_conv(x, w, b, &c->opts);
    CHECK_MSG(y != NULL, "%s: %s", c->what, aqa_last_error());
    if (!y) return false;
    if (!*gy) *gy = aqa_randn(y->ndim, y->shape, AQA_F32, NULL);
    CHECK(aqa_backward(y, *gy, false) == AQA_OK);
    if (c->winograd && !aqa_conv_gemm_disabled && aqa__cpu_isa() >= AQA_ISA_AVX512)
        CHECK_MSG(aqa_conv_winograd_runs == runs + 3, "%s: %ld Winograd products, expected 3", c->what,
                  aqa_conv_winograd_runs - runs);
    res[0] = y;
    res[1] = x->grad;
    res[2] = w->grad;
    res[3] = b->grad;
    return res[1] && res[2] && res[3];
}

/* Every geometry the GEMM and Winograd paths handle (strides, padding before/after, dilation,
 * groups, batches whose columns straddle GEMM tiles, odd sizes for the tile edges, k longer than
 * one block, a strided conv whose input gradient stays on the old path, the transposed conv;
 * Winograd: padding 0, 1 and 2, odd sizes, tile rows of more than 16 tiles, several blocks of
 * tiles) gives the old path's results within float32 rounding of the different order of sums
 * (weights scaled as a layer's, 1 / sqrt(fan-in), so that errors compare with the outputs). */
static void test_gemm_path_matches_blas(void) {
    int mr, nr;
    if (!aqa__sgemm_tile(&mr, &nr)) {
        SKIP("no GEMM microkernel on this CPU (or AQA_CPU_ISA=baseline): the old path is the only one");
        return;
    }
    aqa_manual_seed(test_seed("gemm path"));
    const path_case cases[] = {
        {.what = "3x3x3 pad 1", .x = {1, 5, 4, 7, 9}, .w = {11, 5, 3, 3, 3}, .opts = {.padding = {1, 1, 1}}},
        {.what = "3x3x3 pad 1 batch 3", .x = {3, 4, 3, 5, 6}, .w = {9, 4, 3, 3, 3}, .opts = {.padding = {1, 1, 1}}},
        {.what = "1x1x1 batch 2", .x = {2, 70, 2, 3, 5}, .w = {20, 70, 1, 1, 1}, .opts = {.padding = {0}}},
        {.what = "stride 2 TF same (strided: old input grad)", .x = {2, 3, 5, 9, 8}, .w = {8, 3, 3, 3, 3},
         .opts = {.stride = {2, 2, 2}, .padding_mode = AQA_PADDING_TF_SAME}},
        {.what = "dilated, groups 2", .x = {1, 6, 5, 6, 7}, .w = {4, 3, 2, 3, 2}, .opts = {.dilation = {2, 1, 2}, .padding = {1, 2, 0}, .groups = 2}},
        {.what = "same padding (asymmetric)", .x = {2, 3, 4, 5, 6}, .w = {5, 3, 2, 2, 4}, .opts = {.padding_mode = AQA_PADDING_SAME}},
        {.what = "k > one block (C 40 x 27)", .x = {1, 40, 3, 4, 10}, .w = {17, 40, 3, 3, 3}, .opts = {.padding = {1, 1, 1}}},
        {.what = "transposed, stride 2", .x = {2, 4, 3, 4, 5}, .w = {4, 3, 3, 3, 3}, .opts = {.stride = {2, 2, 2}, .padding = {1, 1, 1}}, .transposed = true},
        {.what = "Winograd pad 1, batch 2, odd sizes", .x = {2, 24, 5, 7, 37}, .w = {20, 24, 3, 3, 3},
         .opts = {.padding = {1, 1, 1}}, .winograd = true},
        {.what = "Winograd pad 0 / 2 / 1", .x = {1, 16, 6, 9, 8}, .w = {17, 16, 3, 3, 3}, .opts = {.padding = {0, 2, 1}},
         .winograd = true},
        {.what = "Winograd TF same, several blocks", .x = {2, 128, 4, 10, 50}, .w = {128, 128, 3, 3, 3},
         .opts = {.padding_mode = AQA_PADDING_TF_SAME}, .winograd = true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const path_case *c = &cases[i];
        aqa_scope_begin();
        aqa_tensor *x0 = aqa_randn(5, c->x, AQA_F32, NULL);
        aqa_tensor *w0 = aqa_mul_scalar(aqa_randn(5, c->w, AQA_F32, NULL), 1.0 / sqrt((double)(c->w[1] * c->w[2] * c->w[3] * c->w[4])));
        int64_t nb = c->transposed ? c->w[1] * (c->opts.groups ? c->opts.groups : 1) : c->w[0];
        aqa_tensor *b0 = aqa_randn(1, &nb, AQA_F32, NULL), *gy = NULL, *res[2][4] = {{0}};
        bool ok = true;
        for (int pass = 0; pass < 2 && ok; pass++) {
            aqa_conv_gemm_disabled = pass == 1;
            ok = path_run(c, x0, w0, b0, &gy, res[pass]);
        }
        aqa_conv_gemm_disabled = false;
        static const char *const names[4] = {"y", "x.grad", "w.grad", "b.grad"};
        for (int r = 0; r < 4 && ok; r++) {
            double d = test_scaled_err(res[0][r], res[1][r], 1.0);
            CHECK_MSG(d < 1e-5, "%s: %s differs by %g", c->what, names[r], d);
        }
        aqa_scope_end();
    }
}

/* ---- modules ------------------------------------------------------------------------------------------ */

static void test_modules(void) {
    aqa_manual_seed(test_seed("modules"));
    aqa_conv_layer *c = aqa_conv3d_layer_new(NULL, "", 4, 6, 3, 1, 1, 1, 2, true);
    CHECK(c != NULL);
    if (!c) return;
    CHECK_STR(c->base.type, "Conv3d");
    aqa_named_tensor *list = NULL;
    int n = aqa_module_named_tensors(&c->base, true, &list);
    CHECK_EQ_INT(n, 2);
    if (n == 2) {
        CHECK_STR(list[0].name, "weight");
        CHECK_STR(list[1].name, "bias");
    }
    aqa_named_tensors_free(list, n);
    CHECK(c->weight->ndim == 5 && c->weight->shape[0] == 6 && c->weight->shape[1] == 2 && c->weight->shape[4] == 3);
    /* U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in 2*27 = 54 */
    double bound = 1 / sqrt(54.0), lo = 1e9, hi = -1e9;
    for (int64_t i = 0; i < aqa_numel(c->weight); i++) {
        double v = ((float *)aqa_data(c->weight))[i];
        lo = fmin(lo, v);
        hi = fmax(hi, v);
    }
    CHECK(lo >= -bound && hi <= bound && hi - lo > bound); /* spread over most of the range */
    aqa_scope_begin();
    aqa_tensor *y = aqa_conv_layer_forward(c, aqa_randn(AQA_SHAPE(2, 4, 3, 4, 5), AQA_F32, NULL));
    CHECK(y && y->shape[1] == 6 && y->shape[2] == 3 && y->shape[3] == 4 && y->shape[4] == 5);
    aqa_scope_end();
    aqa_module_free(&c->base);

    aqa_conv_layer *t = aqa_conv_transpose1d_layer_new(NULL, "", 4, 6, 3, 2, 1, 1, 2, false, 1);
    CHECK(t && !t->bias && t->weight->shape[0] == 4 && t->weight->shape[1] == 3 && t->weight->shape[2] == 3);
    aqa_scope_begin();
    y = t ? aqa_conv_layer_forward(t, aqa_randn(AQA_SHAPE(1, 4, 5), AQA_F32, NULL)) : NULL;
    CHECK(y && y->shape[1] == 6 && y->shape[2] == 10); /* (5-1)*2 - 2 + 2 + 1 + 1 */
    aqa_scope_end();
    aqa_module_free(t ? &t->base : NULL);

    aqa_conv_layer *c1 = aqa_conv1d_layer_new(NULL, "", 3, 5, 3, 1, 1, 1, 1, true);
    CHECK(c1 && c1->weight->ndim == 3 && c1->bias->shape[0] == 5);
    aqa_module_free(c1 ? &c1->base : NULL);
}

/* A frozen weight (no grad): the input gradient alone, equal to the one computed with both. */
static void test_frozen_weight(void) {
    aqa_manual_seed(test_seed("frozen"));
    aqa_scope_begin();
    aqa_tensor *x0 = aqa_randn(AQA_SHAPE(2, 4, 6, 5), AQA_F64, NULL), *w0 = aqa_randn(AQA_SHAPE(4, 2, 3, 3), AQA_F64, NULL);
    aqa_conv_opts o = {.groups = 2, .padding = {1, 1}, .stride = {2, 1}};
    aqa_tensor *gx[2] = {0};
    for (int frozen = 0; frozen < 2; frozen++) {
        aqa_tensor *x = aqa_requires_grad(aqa_clone(x0), true), *w = aqa_requires_grad(aqa_clone(w0), !frozen);
        aqa_tensor *y = aqa_conv2d(x, w, NULL, &o);
        CHECK(aqa_backward(aqa_sum_all(aqa_mul(y, y)), NULL, false) == AQA_OK);
        gx[frozen] = x->grad;
        CHECK(frozen ? w->grad == NULL : w->grad != NULL);
        /* transposed, frozen too */
        aqa_tensor *x2 = aqa_requires_grad(aqa_clone(x0), true);
        aqa_tensor *t = aqa_conv_transpose(x2, w, NULL, NULL);
        CHECK(t && aqa_backward(aqa_sum_all(t), NULL, false) == AQA_OK && x2->grad);
    }
    CHECK(test_max_rel_diff(gx[0], gx[1]) < 1e-12);
    aqa_scope_end();
}

static void test_no_leaks(void) {
    int64_t t0 = aqa_live_tensors(), s0 = aqa_live_storages();
    aqa_scope_begin();
    aqa_tensor *x = aqa_requires_grad(aqa_randn(AQA_SHAPE(1, 2, 5, 6), AQA_F32, NULL), true);
    aqa_tensor *w = aqa_requires_grad(aqa_randn(AQA_SHAPE(3, 2, 3, 3), AQA_F32, NULL), true);
    aqa_tensor *y = aqa_conv2d(x, w, NULL, &(aqa_conv_opts){.padding = {1, 1}});
    aqa_backward(aqa_sum_all(y), NULL, false);
    aqa_tensor *xt = aqa_requires_grad(aqa_randn(AQA_SHAPE(1, 3, 5), AQA_F32, NULL), true);
    aqa_tensor *wt = aqa_requires_grad(aqa_randn(AQA_SHAPE(3, 2, 3), AQA_F32, NULL), true);
    aqa_backward(aqa_sum_all(aqa_conv_transpose1d(xt, wt, NULL, NULL)), NULL, false);
    aqa_scope_end();
    CHECK_EQ_INT(aqa_live_tensors(), t0);
    CHECK_EQ_INT(aqa_live_storages(), s0);
}

int main(void) {
    RUN(test_golden_conv);
    RUN(test_gradcheck_conv);
    RUN(test_padding_rules);
    RUN(test_tiling_matches_untiled);
    RUN(test_batch_folding);
    RUN(test_memory_bound_i3d_stem);
    RUN(test_gemm_path_matches_blas);
    RUN(test_modules);
    RUN(test_frozen_weight);
    RUN(test_no_leaks);
    test_golden_close();
    return test_finish();
}
