/* test_data_parallel.c: data-parallel training (nn/data_parallel.h) on forked ranks joined by the
 * TCP rendezvous.  A small model (Linear, BatchNorm1d, Dropout, Linear; Adam) trains a few steps
 * on a fixed batch cut into micro-batches:
 *   - 1, 2, 3 and 4 ranks give the same bits (parameters, running statistics, counters, Adam's
 *     state through the parameters, losses) as one process with the same micro-batches;
 *   - one micro-batch on one process equals a plain training loop without the module;
 *   - without BatchNorm and dropout, the tree of micro-batch gradients equals the whole batch's
 *     gradient within float32 rounding;
 *   - SyncBatchNorm over 2 ranks equals BatchNorm over the joined batch (float64: outputs, input
 *     and parameter gradients, running statistics);
 *   - replicas that differ are found and named; misuse is reported. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "nn/batchnorm.h"
#include "nn/data_parallel.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/dist_testlib.h"

#define B 12     /* rows per step */
#define IN 5
#define HID 8
#define STEPS 3

typedef struct net {
    aqa_module base;
    aqa_linear_layer *fc1, *fc2;
    aqa_batch_norm_layer *bn; /* NULL: plain */
    aqa_dropout_layer *drop;  /* NULL: none */
} net;

static net *net_new(bool bn_and_dropout) {
    aqa_manual_seed(7);
    net *m = aqa_module_new(sizeof *m, "Net", NULL, "", NULL);
    m->fc1 = aqa_linear_layer_new(&m->base, "fc1", IN, HID, true);
    if (bn_and_dropout) {
        m->bn = aqa_batch_norm1d_layer_new(&m->base, "bn", HID);
        m->drop = aqa_dropout_layer_new(&m->base, "drop", 0.25);
    }
    m->fc2 = aqa_linear_layer_new(&m->base, "fc2", HID, 1, true);
    return m;
}

static aqa_tensor *net_forward(net *m, aqa_tensor *x) {
    aqa_tensor *h = aqa_linear_layer_forward(m->fc1, x);
    if (m->bn) h = aqa_batch_norm_layer_forward(m->bn, h);
    h = aqa_relu(h);
    if (m->drop) h = aqa_dropout_layer_forward(m->drop, h);
    return aqa_linear_layer_forward(m->fc2, h);
}

/* Row i of step s: inputs and target, the same on every rank. */
static void data(int s, int64_t i, float *x, float *y) {
    for (int j = 0; j < IN; j++) x[j] = sinf(0.37f * (float)(i * IN + j) + 1.3f * (float)s);
    *y = cosf(0.11f * (float)i + 0.5f * (float)s);
}

typedef struct run_cfg {
    int micro;        /* rows per micro-batch (B: one) */
    bool bn;          /* BatchNorm + dropout */
    bool use_ddp;     /* false: a plain loop (one process only) */
    char out[256];    /* rank 0 writes its result here */
} run_cfg;

/* Appends every parameter and buffer's bytes to f. */
static void dump_state(aqa_module *m, FILE *f) {
    aqa_named_tensor *nt = NULL;
    int n = aqa_module_named_tensors(m, true, &nt);
    for (int i = 0; i < n; i++) {
        aqa_tensor *t = nt[i].tensor;
        size_t nb = (size_t)aqa_numel(t) * aqa_dtype_size(t->dtype);
        void *buf = malloc(nb + 1);
        aqa_copy_to_host(t, buf, t->dtype);
        fwrite(buf, 1, nb, f);
        free(buf);
    }
    aqa_named_tensors_free(nt, n);
}

static int train(aqa_dist *pg, void *arg) {
    run_cfg *c = arg;
    int fails = 0, r = aqa_dist_rank(pg);
    net *m = net_new(c->bn);
    if (r > 0) {
        /* other weights and another generator state on the other ranks: aqa_ddp_sync_model must
         * give them rank 0's */
        aqa_manual_seed(1000 + (uint64_t)r);
        aqa_uniform_(m->fc1->weight, -1, 1, NULL);
    }
    aqa_tensor **params = NULL;
    int np = aqa_module_parameters(&m->base, &params);
    aqa_adam_options ao = AQA_ADAM_DEFAULTS;
    ao.lr = 1e-2;
    aqa_optimizer *opt = aqa_adam_new(&ao);
    aqa_optim_add_params(opt, params, np);
    aqa_ddp_options dopt = {.n_scalars = 1};
    aqa_module *mods[1] = {&m->base};
    aqa_ddp *d = c->use_ddp ? aqa_ddp_new(pg, mods, 1, params, np, &dopt) : NULL;
    if (c->use_ddp && (!d || aqa_ddp_sync_model(d))) {
        printf("    rank %d: %s\n", r, aqa_last_error());
        fails++;
        goto done;
    }
    FILE *f = r == 0 ? fopen(c->out, "wb") : NULL;
    float x[B * IN], y[B];
    for (int s = 0; s < STEPS; s++) {
        for (int i = 0; i < B; i++) data(s, i, x + i * IN, y + i);
        double loss_sum = 0;
        if (!d) {
            aqa_scope_begin();
            aqa_tensor *xt = aqa_from_data(x, 2, (int64_t[]){B, IN}, AQA_F32), *yt = aqa_from_data(y, 2, (int64_t[]){B, 1}, AQA_F32);
            aqa_tensor *loss = aqa_mse_loss(net_forward(m, xt), yt, AQA_REDUCTION_MEAN);
            aqa_optim_zero_grad(opt);
            loss_sum = aqa_item(loss);
            if (aqa_backward(loss, NULL, false)) fails++;
            aqa_scope_end();
        } else {
            int K = aqa_ddp_num_micro(B, c->micro), k0, k1;
            aqa_ddp_micro_range(K, r, aqa_dist_size(pg), &k0, &k1);
            if (aqa_ddp_step_begin(d, K)) fails++;
            for (int k = k0; k < k1; k++) {
                int lo = k * c->micro, n = lo + c->micro <= B ? c->micro : B - lo;
                aqa_scope_begin();
                aqa_tensor *xt = aqa_from_data(x + lo * IN, 2, (int64_t[]){n, IN}, AQA_F32);
                aqa_tensor *yt = aqa_from_data(y + lo, 2, (int64_t[]){n, 1}, AQA_F32);
                if (aqa_ddp_micro_begin(d, k)) fails++;
                aqa_tensor *loss = aqa_mse_loss(net_forward(m, xt), yt, AQA_REDUCTION_MEAN);
                double lv = aqa_item(loss);
                if (aqa_backward(loss, NULL, false) || aqa_ddp_micro_end(d, k, (double)n / B, &lv)) fails++;
                aqa_scope_end();
            }
            if (aqa_ddp_step_end(d, &loss_sum)) {
                printf("    rank %d: step_end: %s\n", r, aqa_last_error());
                fails++;
                break;
            }
        }
        if (aqa_optim_step(opt)) fails++;
        if (f) fwrite(&loss_sum, sizeof loss_sum, 1, f);
    }
    if (d && aqa_ddp_check_replicas(d, "after training")) {
        printf("    rank %d: %s\n", r, aqa_last_error());
        fails++;
    }
    if (f) {
        fwrite(&aqa_default_generator()->offset, sizeof(uint64_t), 1, f);
        dump_state(&m->base, f);
        fclose(f);
    }
done:
    aqa_ddp_free(d);
    aqa_optim_free(opt);
    free(params);
    aqa_module_free(&m->base);
    return fails;
}

/* The file's bytes (malloc'd) and size. */
static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*n + 1);
    if (fread(b, 1, *n, f) != *n) *n = 0;
    fclose(f);
    return b;
}

static bool same_file(const char *a, const char *b) {
    size_t na = 0, nb = 0;
    unsigned char *x = slurp(a, &na), *y = slurp(b, &nb);
    bool same = x && y && na == nb && na > 0 && !memcmp(x, y, na);
    free(x);
    free(y);
    return same;
}

static int run(int ranks, run_cfg *c, const char *name) {
    snprintf(c->out, sizeof c->out, "/tmp/aqa_ddp_%d_%s", (int)getpid(), name);
    return dist_test_run(ranks, NULL, 30, 120, train, c, NULL);
}

static void test_same_bits_on_1_to_4_ranks(void) {
    run_cfg one = {.micro = 2, .bn = true, .use_ddp = true};
    CHECK_EQ_INT(run(1, &one, "n1"), 0);
    for (int n = 2; n <= 4; n++) {
        run_cfg c = one;
        char name[16];
        snprintf(name, sizeof name, "n%d", n);
        CHECK_EQ_INT(run(n, &c, name), 0);
        CHECK_MSG(same_file(one.out, c.out), "%d ranks differ from one process (micro-batch 2 of 12)", n);
        remove(c.out);
    }
    /* micro-batches of 5, 5 and 2 rows (a smaller last one, weighted by its share) on 3 ranks */
    run_cfg a = {.micro = 5, .bn = true, .use_ddp = true}, b3 = a;
    CHECK_EQ_INT(run(1, &a, "u1"), 0);
    CHECK_EQ_INT(run(3, &b3, "u3"), 0);
    CHECK_MSG(same_file(a.out, b3.out), "3 ranks with micro-batches 5, 5, 2 differ from one process");
    /* and the result does depend on the micro-batch size (the test can see a difference) */
    CHECK_MSG(!same_file(one.out, a.out), "micro-batch 2 and 5 gave identical bits");
    remove(one.out);
    remove(a.out);
    remove(b3.out);
}

/* A NULL process group is one process (nn/data_parallel.h): several micro-batches, BatchNorm and
 * dropout give the bits of a one-rank group. */
static void test_null_group_is_one_process(void) {
    run_cfg group = {.micro = 2, .bn = true, .use_ddp = true}, none = group;
    aqa_manual_seed(7); /* the forked rank starts from this process's generator, as the direct call */
    CHECK_EQ_INT(run(1, &group, "group1"), 0);
    snprintf(none.out, sizeof none.out, "/tmp/aqa_ddp_%d_null", (int)getpid());
    aqa_manual_seed(7);
    CHECK_EQ_INT(train(NULL, &none), 0);
    CHECK_MSG(same_file(group.out, none.out), "a NULL group differs from a one-rank group (micro-batch 2 of 12)");
    remove(group.out);
    remove(none.out);
}

static void test_one_micro_batch_is_a_plain_loop(void) {
    run_cfg plain = {.micro = B, .bn = true, .use_ddp = false}, ddp = {.micro = B, .bn = true, .use_ddp = true};
    CHECK_EQ_INT(run(1, &plain, "plain"), 0);
    CHECK_EQ_INT(run(1, &ddp, "ddp1"), 0);
    CHECK_MSG(same_file(plain.out, ddp.out), "one micro-batch differs from the plain loop");
    remove(plain.out);
    remove(ddp.out);
}

/* Without BatchNorm and dropout the gradient of the mean loss does not depend on the cut. */
static void test_tree_equals_whole_batch_gradient(void) {
    run_cfg whole = {.micro = B, .bn = false, .use_ddp = false}, cut = {.micro = 3, .bn = false, .use_ddp = true};
    CHECK_EQ_INT(run(1, &whole, "whole"), 0);
    CHECK_EQ_INT(run(2, &cut, "cut"), 0);
    size_t na = 0, nb = 0;
    unsigned char *a = slurp(whole.out, &na), *b = slurp(cut.out, &nb);
    CHECK(a && b && na == nb);
    if (a && b && na == nb) {
        /* losses (doubles), generator offset, then float32 parameters */
        const double *la = (const double *)a, *lb = (const double *)b;
        for (int s = 0; s < STEPS; s++) CHECK_NEAR(la[s], lb[s], 1e-5 * fabs(la[s]) + 1e-7);
        size_t off = STEPS * sizeof(double) + sizeof(uint64_t);
        const float *pa = (const float *)(a + off), *pb = (const float *)(b + off);
        double worst = 0;
        for (size_t i = 0; i < (na - off) / 4; i++) worst = fmax(worst, fabs(pa[i] - pb[i]) / (fabs(pa[i]) + 1e-3));
        CHECK_MSG(worst < 1e-4, "parameters differ by %.3g (relative)", worst);
    }
    free(a);
    free(b);
    remove(whole.out);
    remove(cut.out);
}

/* ---- SyncBatchNorm ------------------------------------------------------------------------------ */

#define SB_ROWS 6 /* rows per rank */
#define SB_C 3
#define SB_L 4

static double sb_x(int64_t row, int64_t c, int64_t l) { return sin(0.7 * (double)(row * 13 + c * 5 + l)) * (1 + c); }
static double sb_w(int64_t row, int64_t c, int64_t l) { return cos(0.3 * (double)(row * 7 + c * 3 + l)); }

typedef struct sb_result {
    double y[2 * SB_ROWS * SB_C * SB_L], gx[2 * SB_ROWS * SB_C * SB_L], gw[SB_C], gb[SB_C], rm[SB_C], rv[SB_C];
} sb_result;

/* BatchNorm1d over [rows, C, L] of the given global rows; loss sum(y * w); results of the rows. */
static int sb_run(aqa_dist *pg, int64_t row0, int64_t rows, sb_result *res) {
    int fails = 0;
    aqa_batch_norm_layer *bn = aqa_batch_norm1d_layer_new(NULL, "bn", SB_C);
    aqa_module_to_dtype(&bn->base, AQA_F64);
    aqa_scope_begin();
    aqa_uniform_(bn->weight, 0.5, 1.5, NULL);
    aqa_uniform_(bn->bias, -0.5, 0.5, NULL);
    double *x = malloc(sizeof *x * (size_t)(rows * SB_C * SB_L)), *w = malloc(sizeof *w * (size_t)(rows * SB_C * SB_L));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t c = 0; c < SB_C; c++)
            for (int64_t l = 0; l < SB_L; l++) {
                x[(i * SB_C + c) * SB_L + l] = sb_x(row0 + i, c, l);
                w[(i * SB_C + c) * SB_L + l] = sb_w(row0 + i, c, l);
            }
    aqa_tensor *xt = aqa_requires_grad(aqa_from_data(x, 3, (int64_t[]){rows, SB_C, SB_L}, AQA_F64), true);
    aqa_tensor *wt = aqa_from_data(w, 3, (int64_t[]){rows, SB_C, SB_L}, AQA_F64);
    aqa_batch_norm_set_sync_group(pg);
    aqa_tensor *y = aqa_batch_norm_layer_forward(bn, xt);
    aqa_batch_norm_set_sync_group(NULL);
    if (!y || aqa_backward(aqa_sum_all(aqa_mul(y, wt)), NULL, false)) {
        printf("    sync bn: %s\n", aqa_last_error());
        fails++;
    } else {
        aqa_copy_to_host(y, res->y, AQA_F64);
        aqa_copy_to_host(xt->grad, res->gx, AQA_F64);
        aqa_copy_to_host(bn->weight->grad, res->gw, AQA_F64);
        aqa_copy_to_host(bn->bias->grad, res->gb, AQA_F64);
        aqa_copy_to_host(bn->running_mean, res->rm, AQA_F64);
        aqa_copy_to_host(bn->running_var, res->rv, AQA_F64);
    }
    free(x);
    free(w);
    aqa_scope_end();
    aqa_module_free(&bn->base);
    return fails;
}

static int sync_bn_rank(aqa_dist *pg, void *arg) {
    const sb_result *ref = arg;
    int r = aqa_dist_rank(pg), fails = 0;
    sb_result mine;
    memset(&mine, 0, sizeof mine);
    aqa_manual_seed(3);
    fails += sb_run(pg, r * SB_ROWS, SB_ROWS, &mine);
    /* parameter gradients: each rank holds its rows' part; the sum is the whole batch's */
    aqa_scope_begin();
    aqa_tensor *g = aqa_from_data(mine.gw, 1, (int64_t[]){SB_C}, AQA_F64), *gb = aqa_from_data(mine.gb, 1, (int64_t[]){SB_C}, AQA_F64);
    aqa_dist_all_reduce(pg, g, AQA_DIST_SUM);
    aqa_dist_all_reduce(pg, gb, AQA_DIST_SUM);
    double worst = 0;
    size_t n = SB_ROWS * SB_C * SB_L, off = (size_t)r * n;
    for (size_t i = 0; i < n; i++) {
        worst = fmax(worst, fabs(mine.y[i] - ref->y[off + i]));
        worst = fmax(worst, fabs(mine.gx[i] - ref->gx[off + i]));
    }
    for (int c = 0; c < SB_C; c++) {
        worst = fmax(worst, fabs(((double *)aqa_data(g))[c] - ref->gw[c]));
        worst = fmax(worst, fabs(((double *)aqa_data(gb))[c] - ref->gb[c]));
        worst = fmax(worst, fabs(mine.rm[c] - ref->rm[c]) + fabs(mine.rv[c] - ref->rv[c]));
    }
    aqa_scope_end();
    if (!(worst < 1e-12)) {
        printf("    rank %d: SyncBatchNorm differs from BatchNorm on the joined batch by %.3g\n", r, worst);
        fails++;
    }
    return fails;
}

static void test_sync_batch_norm_equals_joined_batch(void) {
    /* the reference: one process, BatchNorm over both ranks' rows (computed in a child: no OpenMP
     * in the parent before forking) */
    sb_result *ref = calloc(1, sizeof *ref);
    char path[128];
    snprintf(path, sizeof path, "/tmp/aqa_syncbn_%d", (int)getpid());
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) {
        aqa_manual_seed(3);
        int f = sb_run(NULL, 0, 2 * SB_ROWS, ref);
        FILE *o = fopen(path, "wb");
        fwrite(ref, sizeof *ref, 1, o);
        fclose(o);
        exit(f);
    }
    int st = 0;
    waitpid(p, &st, 0);
    FILE *i = fopen(path, "rb");
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0 && i && fread(ref, sizeof *ref, 1, i) == 1);
    if (i) fclose(i);
    remove(path);
    CHECK_EQ_INT(dist_test_run(2, NULL, 30, 60, sync_bn_rank, ref, NULL), 0);
    free(ref);
}

/* ---- replicas and misuse ------------------------------------------------------------------------ */

static int diverge(aqa_dist *pg, void *arg) {
    (void)arg;
    int fails = 0, r = aqa_dist_rank(pg);
    net *m = net_new(true);
    aqa_tensor **params = NULL;
    int np = aqa_module_parameters(&m->base, &params);
    aqa_module *mods[1] = {&m->base};
    aqa_ddp *d = aqa_ddp_new(pg, mods, 1, params, np, NULL);
    if (!d || aqa_ddp_sync_model(d)) fails++;
    if (r == 1) aqa_fill_(m->bn->running_var, 2.0);
    aqa_status st = aqa_ddp_check_replicas(d, "the test");
    if (!st || !strstr(aqa_last_error(), "rank 1's \"bn.running_var\" differs from rank 0's (the test)")) {
        printf("    rank %d: check_replicas: %s\n", r, st ? aqa_last_error() : "passed");
        fails++;
    }
    /* misuse: another rank's micro-batch, micro-batches out of order, sync_bn with two per rank */
    if (aqa_ddp_step_begin(d, 4) || aqa_ddp_micro_begin(d, r == 0 ? 2 : 0) != AQA_ESTATE ||
        aqa_ddp_micro_end(d, r == 0 ? 1 : 3, 1.0, NULL) != AQA_ESTATE)
        fails++;
    aqa_ddp_free(d);
    aqa_ddp_options so = {.sync_bn = true};
    d = aqa_ddp_new(pg, mods, 1, params, np, &so);
    if (aqa_ddp_step_begin(d, 4) != AQA_EINVAL || !strstr(aqa_last_error(), "one micro-batch per rank")) fails++;
    aqa_ddp_free(d);
    free(params);
    aqa_module_free(&m->base);
    return fails;
}

static void test_replicas_and_misuse(void) { CHECK_EQ_INT(dist_test_run(2, NULL, 30, 60, diverge, NULL, NULL), 0); }

static void test_micro_ranges(void) {
    int k0, k1, total = 0;
    for (int r = 0; r < 3; r++) {
        aqa_ddp_micro_range(7, r, 3, &k0, &k1);
        CHECK_EQ_INT(k0, total);
        CHECK(k1 - k0 == 2 || k1 - k0 == 3);
        total = k1;
    }
    CHECK_EQ_INT(total, 7);
    CHECK_EQ_INT(aqa_ddp_num_micro(12, 5), 3);
    CHECK_EQ_INT(aqa_ddp_num_micro(12, 0), 1);
    CHECK_EQ_INT(aqa_ddp_num_micro(12, 12), 1);
    aqa_ddp_micro_range(1, 0, 2, &k0, &k1);
    CHECK(k0 == 0 && k1 == 0); /* fewer micro-batches than ranks: rank 0 has none */
}

int main(void) {
    RUN(test_micro_ranges);
    RUN(test_same_bits_on_1_to_4_ranks);
    RUN(test_null_group_is_one_process);
    RUN(test_one_micro_batch_is_a_plain_loop);
    RUN(test_tree_equals_whole_batch_gradient);
    RUN(test_sync_batch_norm_equals_joined_batch);
    RUN(test_replicas_and_misuse);
    return test_finish();
}
