/* dist_run.h: data-parallel training for the example programs, in a few calls so that a training
 * program stays a training program (docs/distributed.md):
 *
 *     dist_def_keys(&c);                    // settings micro_batch, sync_bn
 *     dist_open(&dr, &c, "train_mvla");     // rank and size from mpirun or WORLD_SIZE/RANK/...
 *     dist_loader(&dr, &lc, false);         // this rank's micro-batches of every batch
 *     dist_attach(&dr, models, n, params, np, n_scalars);   // rank 0's weights everywhere
 *     per batch: dist_step(&dr, b, micro_fn, ctx, sums);    // forward + backward per micro-batch,
 *                                                          // gradients summed over the ranks
 *     if (dr.main) ... checkpoints, logs, stdout
 *     dist_close(&dr);
 *
 * Started alone the program behaves as before (one micro-batch per step unless micro_batch says
 * otherwise).  With N ranks each batch is cut into micro-batches of micro_batch rows (default
 * ceil(batch / N)) and `mpirun -np N prog --batch B` computes what `prog --batch B --micro-batch
 * ceil(B / N)` computes alone, bit for bit on the CPU (nn/data_parallel.h says what holds).
 *
 * Test hook: AQA_DIST_TEST_KILL=R:S makes rank R kill itself (SIGKILL, as a crash or an OOM
 * kill) when it starts its step S (counted from 0 in this process). */
#ifndef AQA_EXAMPLES_DIST_RUN_H
#define AQA_EXAMPLES_DIST_RUN_H

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/loader.h"
#include "dist/dist.h"
#include "examples/mvla_common.h"
#include "nn/data_parallel.h"
#include "ops/ops.h"
#include "autograd/autograd.h"

typedef struct dist_run {
    aqa_dist *pg;   /* the process group (a group of one when started alone) */
    aqa_ddp *ddp;   /* gradient reduction, made by dist_attach */
    int rank, size; /* this process, ranks */
    int micro;      /* rows per micro-batch (0: ceil(batch / size)) */
    bool sync_bn;   /* BatchNorm statistics over all ranks */
    bool main;      /* rank 0: prints, logs, writes the files */
    long steps;     /* dist_step calls in this process (the test hook counts them) */
} dist_run;

MC_UNUSED static void dist_def_keys(kv_config *c) {
    kv_def_int(c, "micro_batch", "0", 0, 1e9, "rows per forward/backward pass, gradients summed in a fixed order (0 = ceil(batch / ranks)); "
                                 "the same batch and micro-batch give the same model on any number of ranks");
    kv_def_bool(c, "sync_bn", "false", "BatchNorm statistics over all ranks' rows (SyncBatchNorm) instead of each micro-batch's");
}

/* Joins the launcher's group; on a multi-rank run "--device cuda" becomes this rank's GPU
 * (cuda:LOCAL_RANK) and only rank 0 shows progress.  0, or 1 with the message printed. */
MC_UNUSED static int dist_open(dist_run *d, kv_config *c, const char *program) {
    memset(d, 0, sizeof *d);
    if (aqa_dist_init(&d->pg)) {
        fprintf(stderr, "%s: %s\n", program, aqa_last_error());
        return 1;
    }
    d->rank = aqa_dist_rank(d->pg);
    d->size = aqa_dist_size(d->pg);
    d->main = d->rank == 0;
    d->micro = (int)kv_int(c, "micro_batch");
    d->sync_bn = kv_bool(c, "sync_bn");
    if (d->micro < 0) {
        fprintf(stderr, "%s: --micro-batch must be >= 0\n", program);
        return 1;
    }
    if (d->size > 1) {
        kv_entry *dev = kv_find(c, "device");
        if (dev && !strcmp(kv_str(c, "device"), "cuda")) {
            char v[32];
            snprintf(v, sizeof v, "cuda:%d", aqa_dist_local_rank(d->pg));
            kv_set(c, "device", v, "dist");
        }
        if (!d->main && kv_find(c, "progress")) kv_set(c, "progress", "false", "dist");
        /* the resolved cut goes into the saved settings: a resume on another number of ranks
         * continues the same computation */
        long batch = kv_int(c, "batch");
        if ((!d->micro || d->sync_bn) && batch > 0) {
            char v[32];
            d->micro = (int)((batch + d->size - 1) / d->size);
            snprintf(v, sizeof v, "%d", d->micro);
            kv_set(c, "micro_batch", v, "dist");
        }
        if (d->main)
            fprintf(stderr, "%s: %d ranks (%s), micro-batches of %d rows%s\n", program, d->size, aqa_dist_backend(d->pg),
                    d->micro, d->sync_bn ? ", SyncBatchNorm (one per rank)" : "");
    }
    return 0;
}

/* The sampler settings of a loader: training (micro-batches of every batch) or evaluation
 * (whole batches, a block per rank; gather the results with dist_gather_rows). */
MC_UNUSED static void dist_loader(const dist_run *d, aqa_loader_config *lc, bool eval) {
    lc->shard = d->rank;
    lc->num_shards = d->size;
    lc->shard_batches = eval;
    lc->micro_batch = eval ? 0 : d->micro;
}

/* Data-parallel training of the models' parameters params[np] (the optimizer's, in its order):
 * rank 0's weights and generator copied to every rank and checked; each micro-batch reports
 * n_scalars values to dist_step.  0, or 1 with aqa_last_error() set. */
MC_UNUSED static int dist_attach(dist_run *d, aqa_module *const *models, int n_models, aqa_tensor *const *params, int np,
                                 int n_scalars) {
    aqa_ddp_options o = {.sync_bn = d->sync_bn, .n_scalars = n_scalars};
    d->ddp = aqa_ddp_new(d->pg, models, n_models, params, np, &o);
    return !d->ddp || aqa_ddp_sync_model(d->ddp) != AQA_OK;
}

/* One micro-batch's forward and backward (its loss unscaled: dist_step weighs the gradients);
 * its n_scalars values into v.  0, or 1 with aqa_last_error() set. */
typedef int (*dist_micro_fn)(void *user, aqa_batch *mb, double *v);

/* One optimizer step's gradients: fn on each of this rank's micro-batches of b (the loader's
 * chain), then .grad = their weighted sum over all ranks in the fixed order, and sums = the
 * weighted sum of their values (the batch's mean when each value is a micro-batch mean).
 * 0, or 1 with aqa_last_error() set. */
MC_UNUSED static int dist_step(dist_run *d, aqa_batch *b, dist_micro_fn fn, void *user, double *sums) {
    const char *kill_at = getenv("AQA_DIST_TEST_KILL");
    int kr = -1;
    long ks = -1;
    if (kill_at && sscanf(kill_at, "%d:%ld", &kr, &ks) == 2 && kr == d->rank && ks == d->steps) raise(SIGKILL);
    d->steps++;
    if (aqa_ddp_step_begin(d->ddp, b->micro_count)) return 1;
    double v[AQA_DDP_MAX_SCALARS];
    for (aqa_batch *m = b; m; m = m->next) {
        if (!m->B) continue; /* this rank has no micro-batch of this batch */
        if (aqa_ddp_micro_begin(d->ddp, m->micro_index) || fn(user, m, v) ||
            aqa_ddp_micro_end(d->ddp, m->micro_index, m->weight, v))
            return 1;
    }
    return aqa_ddp_step_end(d->ddp, sums) != AQA_OK;
}

/* ---- losses over the whole batch (contrastive: every row against every other) ------------------ */

/* The rows [row0, row0 + n) of a batch through the encoder being trained: features [n, D] with
 * their graph (scope-owned), or NULL with aqa_last_error() set. */
typedef aqa_tensor *(*dist_encode_fn)(void *user, int64_t row0, int64_t n);

#define DIST_MAX_PARTS 256 /* micro-batches one rank may hold in a step */

typedef struct dist_gathered {
    int K, k0, k1;                      /* micro-batches of the batch, this rank's [k0, k1) */
    int64_t m, rows;                    /* rows per micro-batch, in the batch */
    aqa_tensor *part[DIST_MAX_PARTS];   /* this rank's features, with their graphs */
    aqa_tensor *all;                    /* every rank's features [rows, D], a leaf needing grad */
} dist_gathered;

/* Starts a step whose loss needs the features of the whole batch: this rank encodes its
 * micro-batches, and every rank receives all features in batch order (*g->all, scope-owned).
 * Compute the loss from g->all on every rank (the same bits everywhere), then dist_gather_end. */
MC_UNUSED static aqa_tensor *dist_gather_begin(dist_run *d, int64_t rows, dist_encode_fn encode, void *user,
                                               dist_gathered *g) {
    memset(g, 0, sizeof *g);
    g->rows = rows;
    g->K = aqa_ddp_num_micro(rows, d->micro);
    g->m = g->K > 1 ? d->micro : rows;
    aqa_ddp_micro_range(g->K, d->rank, d->size, &g->k0, &g->k1);
    if (g->k1 - g->k0 > DIST_MAX_PARTS) return aqa_fail_null("dist: more than %d micro-batches on one rank", DIST_MAX_PARTS);
    if (aqa_ddp_step_begin(d->ddp, g->K)) return NULL;
    size_t bytes = 0;
    char *mine = NULL;
    int64_t D = 0;
    for (int k = g->k0; k < g->k1; k++) {
        int64_t lo = k * g->m, n = lo + g->m <= rows ? g->m : rows - lo;
        if (aqa_ddp_micro_begin(d->ddp, k) || !(g->part[k - g->k0] = encode(user, lo, n))) {
            free(mine);
            return NULL;
        }
        aqa_tensor *f = g->part[k - g->k0];
        D = f->shape[1];
        char *p = realloc(mine, bytes + (size_t)aqa_numel(f) * sizeof(float) + 1);
        if (!p || aqa_copy_to_host(f, p + bytes, AQA_F32)) {
            free(p ? p : mine);
            return p ? NULL : aqa_fail_null("dist: out of memory");
        }
        mine = p;
        bytes += (size_t)aqa_numel(f) * sizeof(float);
    }
    void *all = mine;
    size_t sizes[1024], total = bytes;
    if (d->size > 1) {
        all = NULL;
        aqa_status st = d->size > 1024 ? aqa_fail(AQA_EINVAL, "dist: more than 1024 ranks")
                                       : aqa_dist_all_gather_bytes(d->pg, mine, bytes, &all, sizes, &total);
        free(mine);
        if (st) return NULL;
    }
    if (!D) D = (int64_t)(total / sizeof(float) / (size_t)rows); /* a rank without micro-batches */
    aqa_tensor *f = aqa_from_data(all, 2, (int64_t[]){rows, D}, AQA_F32);
    free(all);
    aqa_device dev = g->k1 > g->k0 ? aqa_tensor_device(g->part[0]) : AQA_DEVICE_CPU;
    if (f && dev.kind != AQA_CPU) f = aqa_to_device(f, dev);
    g->all = f ? aqa_requires_grad(aqa_detach(f), true) : NULL;
    return g->all;
}

/* Ends the step of dist_gather_begin: backward of `loss` (computed on every rank from g->all),
 * whose parameter gradients (the loss's own parameters: text encoder, temperature) are the
 * same on every rank and counted once, then each micro-batch's features take their rows of
 * g->all's gradient back through the encoder; .grad = the sum, as one process computes it. */
MC_UNUSED static int dist_gather_end(dist_run *d, dist_gathered *g, aqa_tensor *loss) {
    if (aqa_backward(loss, NULL, false) || aqa_ddp_keep_shared(d->ddp)) return 1;
    for (int k = g->k0; k < g->k1; k++) {
        aqa_tensor *f = g->part[k - g->k0];
        aqa_tensor *gk = aqa_contiguous(aqa_narrow(g->all->grad, 0, k * g->m, f->shape[0]));
        if (!gk || aqa_backward(f, gk, false) || aqa_ddp_micro_end(d->ddp, k, 1.0, NULL)) return 1;
    }
    return aqa_ddp_step_end(d->ddp, NULL) != AQA_OK;
}

/* Evaluation results gathered on every rank: *rows (malloc'd, n_local rows of row_bytes, this
 * rank's block) becomes all ranks' rows in rank order (*n = their count).  0 or 1. */
MC_UNUSED static int dist_gather_rows(const dist_run *d, void **rows, size_t row_bytes, size_t n_local, size_t *n) {
    if (!d || d->size == 1) {
        *n = n_local;
        return 0;
    }
    void *all = NULL;
    size_t sizes[1024], total = 0;
    if (d->size > 1024 || aqa_dist_all_gather_bytes(d->pg, *rows, n_local * row_bytes, &all, sizes, &total)) return 1;
    free(*rows);
    *rows = all;
    *n = row_bytes ? total / row_bytes : 0;
    return 0;
}

MC_UNUSED static void dist_close(dist_run *d) {
    aqa_ddp_free(d->ddp);
    aqa_dist_free(d->pg);
    memset(d, 0, sizeof *d);
}

#endif /* AQA_EXAMPLES_DIST_RUN_H */
