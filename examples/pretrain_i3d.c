/* pretrain_i3d.c: supervised pre-training of a (small) I3D on the clips of a frame-labelled diving
 * set, so that the CBP branch of the synthetic MVLA pipeline starts from a network that sees the
 * dive, as Kinetics-pretrained I3D does on real video.  The synthetic set has no Kinetics, and a
 * random I3D hardly sees stage changes or execution (a linear probe of its clip features finds
 * little of either), which leaves MVLA's segmentation module nothing to work with.
 *
 *     examples/pretrain_i3d --data DIR --out runs/i3d [--width 0.25 --size 48 --epochs 1 ...]
 *
 * Every training video gives --clips-per-video of its N clips of 16 frames, drawn at random each
 * time (the loaders' sampling and I3D transform, random crop and flip per video; neighbouring
 * clips overlap, so a few per video carry most of what the video teaches).  I3D's logits layer has 4 outputs per clip:
 *   - 3 stage logits, trained by cross-entropy against the clip's stage mix (the share of its
 *     frames in take-off, flight and entry: soft targets, so clips across a boundary say where);
 *     this is the default objective, an action-recognition task like Kinetics' (what the
 *     network learns about quality it learns from seeing the action, not from the scores);
 *   - 1 execution output, with --execution only: MSE against the dive's mean judge score,
 *     standardised as (mean - 5) / 2.5 (judges score 0..10; videos without judges add nothing).
 * Adam (weight decay --weight_decay, cosine decay), BatchNorm in training mode; after each epoch
 * its running statistics are re-estimated on --calibrate training videos, then the test split
 * reports the clip stage accuracy (the largest share) and, with --execution, the Spearman rho
 * between the video's mean execution output and its mean judge score.
 *
 * Writes <out>/i3d.safetensors (pytorch-i3d names, metadata "width_multiplier"; the 4-way logits
 * layer is in the file and skipped by feature-only models), <out>/config.txt, and prints
 * i3d_stage_accuracy_test (and i3d_execution_rho_test with --execution). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "datasets/loader.h"
#include "eval/metrics.h"
#include "datasets/video_dataset.h"
#include "examples/mvla_common.h"
#include "examples/mvla_run.h"
#include "models/i3d/i3d.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "ops/ops.h"

#define N_STAGES 3
#define N_OUT (N_STAGES + 1)

/* Host targets of one batch: stage mix [B N, 3] of each clip, execution [B] (NAN where absent). */
static void batch_targets(const aqa_video_dataset *ds, const aqa_batch *b, float *mix, double *exec) {
    const int64_t *stage = aqa_data(b->frame_stage); /* [B, T] */
    const float *judges = aqa_data(b->judges), *score = aqa_data(b->score), *dd = aqa_data(b->difficulty);
    for (int64_t v = 0; v < b->B; v++) {
        for (int64_t c = 0; c < ds->N; c++) {
            float *m = mix + (v * ds->N + c) * N_STAGES;
            memset(m, 0, N_STAGES * sizeof *m);
            for (int64_t f = 0; f < ds->clip_len; f++) {
                int64_t s = stage[v * ds->T + ds->clip_starts[c] + f];
                m[s < 0 ? 0 : s >= N_STAGES ? N_STAGES - 1 : s] += 1.0f / (float)ds->clip_len;
            }
        }
        /* the judges' mean: FineDiving's score is DD x the sum of the middle three */
        double sum = 0;
        int n = 0;
        for (int j = 0; j < 7; j++)
            if (judges[v * 7 + j] > 0) sum += judges[v * 7 + j], n++;
        if (n) exec[v] = sum / n;
        else if (dd[v] > 0) exec[v] = score[v] / dd[v] / 3.0;
        else exec[v] = NAN;
    }
}

/* Loss of one batch: CE over stage mixes + MSE of the execution output (where known). */
static aqa_tensor *batch_loss(aqa_tensor *logits, const float *mix, const double *exec, int64_t B, int64_t N,
                              bool execution) {
    aqa_tensor *stage_logits = aqa_narrow(logits, 1, 0, N_STAGES);
    aqa_tensor *target = aqa_from_data(mix, 2, (int64_t[]){B * N, N_STAGES}, AQA_F32);
    aqa_tensor *loss = aqa_cross_entropy(stage_logits, target, NULL);
    float *q = malloc((size_t)(B * N) * sizeof *q), *w = malloc((size_t)(B * N) * sizeof *w);
    if (!q || !w) {
        free(q), free(w);
        return aqa_fail_null("pretrain_i3d: out of memory");
    }
    int known = 0;
    for (int64_t i = 0; i < B * N; i++) {
        double e = exec[i / N];
        q[i] = isnan(e) ? 0.0f : (float)((e - 5.0) / 2.5);
        w[i] = isnan(e) ? 0.0f : 1.0f;
        known += !isnan(e);
    }
    if (known && execution) {
        aqa_tensor *out = aqa_select(aqa_narrow(logits, 1, N_STAGES, 1), 1, 0);
        aqa_tensor *qt = aqa_from_data(q, 1, (int64_t[]){B * N}, AQA_F32);
        aqa_tensor *wt = aqa_from_data(w, 1, (int64_t[]){B * N}, AQA_F32);
        aqa_tensor *se = aqa_mul(aqa_square(aqa_sub(out, qt)), wt);
        loss = aqa_add(loss, aqa_div_scalar(aqa_sum_all(se), (double)known));
    }
    free(q), free(w);
    return loss;
}

/* Test-split report: clip stage accuracy and the rho of the video-mean execution output. */
static aqa_status evaluate(aqa_i3d *m, aqa_video_dataset *ds, const aqa_frame_transform *tf, const dist_run *dr,
                           double *acc, double *rho) {
    aqa_loader_config lc;
    aqa_loader_config_init(&lc);
    lc.batch_size = 4;
    lc.i3d_clips = true;
    lc.i3d_tf = *tf;
    dist_loader(dr, &lc, true);
    aqa_loader *ld = aqa_loader_new(ds, &lc);
    if (!ld || aqa_loader_start_epoch(ld, 0)) {
        aqa_loader_free(ld);
        return aqa_last_status();
    }
    size_t cap = ds->n_items, nv = 0, right = 0, clips = 0;
    double *pred = malloc(cap * sizeof *pred), *truth = malloc(cap * sizeof *truth);
    float *mix = malloc((size_t)(lc.batch_size * ds->N * N_STAGES) * sizeof *mix);
    double *exec = malloc((size_t)lc.batch_size * sizeof *exec);
    aqa_status st = (pred && truth && mix && exec) ? AQA_OK : aqa_fail(AQA_ENOMEM, "pretrain_i3d: out of memory");
    bool prev = aqa_set_grad_enabled(false);
    aqa_module_train(&m->base, false);
    aqa_batch *b = NULL;
    while (!st && (st = aqa_loader_next(ld, &b)) == AQA_OK && b) {
        aqa_scope_begin();
        int64_t B = b->B, N = ds->N;
        batch_targets(ds, b, mix, exec);
        aqa_tensor *x = aqa_reshape(b->i3d_clips, 5, (int64_t[]){B * N, 3, ds->clip_len, b->i3d_clips->shape[4],
                                                                  b->i3d_clips->shape[5]});
        aqa_tensor *logits = aqa_i3d_forward(m, x);
        const float *l = logits ? aqa_data(aqa_contiguous(logits)) : NULL;
        if (!l) st = aqa_last_status();
        for (int64_t v = 0; l && v < B; v++) {
            double e = 0;
            for (int64_t c = 0; c < N; c++) {
                const float *r = l + (v * N + c) * N_OUT, *t = mix + (v * N + c) * N_STAGES;
                int pa = 0, ta = 0;
                for (int k = 1; k < N_STAGES; k++) {
                    if (r[k] > r[pa]) pa = k;
                    if (t[k] > t[ta]) ta = k;
                }
                right += pa == ta, clips++;
                e += r[N_STAGES] / (double)N;
            }
            if (!isnan(exec[v]) && nv < cap) pred[nv] = e, truth[nv] = exec[v], nv++;
        }
        aqa_scope_end();
        aqa_batch_free(b);
    }
    aqa_set_grad_enabled(prev);
    aqa_module_train(&m->base, true);
    /* every rank's videos (its block of batches), in order */
    double *counts = malloc(2 * sizeof *counts);
    size_t nr = 0;
    if (!st && counts) {
        counts[0] = (double)right, counts[1] = (double)clips;
        size_t n_truth = nv;
        if (dist_gather_rows(dr, (void **)&pred, sizeof *pred, nv, &nv) ||
            dist_gather_rows(dr, (void **)&truth, sizeof *truth, n_truth, &n_truth) ||
            dist_gather_rows(dr, (void **)&counts, 2 * sizeof *counts, 1, &nr))
            st = aqa_last_status();
        right = clips = 0;
        for (size_t k = 0; !st && k < nr; k++) right += (size_t)counts[2 * k], clips += (size_t)counts[2 * k + 1];
    }
    free(counts);
    *acc = clips ? (double)right / (double)clips : 0;
    *rho = 0;
    if (!st && nv > 2) st = aqa_spearman(pred, truth, nv, rho);
    free(pred), free(truth), free(mix), free(exec);
    aqa_loader_free(ld);
    return st;
}

/* What a micro-batch needs besides itself: the clips drawn for every video of its batch. */
typedef struct train_ctx {
    aqa_i3d *m;
    aqa_video_dataset *ds;
    int64_t K;            /* clips per video */
    const int64_t *clip;  /* [batch rows, K] the clip indices of each video of the batch */
    bool execution;       /* --execution */
    float *mix, *mix_k;   /* scratch: stage mixes of all clips / of the drawn ones */
    int64_t *pick;        /* scratch: rows of the drawn clips */
    double *exec;         /* scratch: execution targets */
} train_ctx;

/* One micro-batch: forward of its drawn clips, the loss into v[0], backward. */
static int train_micro(void *user, aqa_batch *b, double *v) {
    train_ctx *t = user;
    const int64_t N = t->ds->N, K = t->K;
    aqa_scope_begin();
    batch_targets(t->ds, b, t->mix, t->exec);
    aqa_tensor *x = aqa_reshape(b->i3d_clips, 5, (int64_t[]){b->B * N, 3, t->ds->clip_len, b->i3d_clips->shape[4],
                                                              b->i3d_clips->shape[5]});
    for (int64_t i = 0; i < b->B; i++)
        for (int64_t k = 0; k < K; k++) {
            int64_t row = i * N + t->clip[(b->row0 + i) * K + k];
            t->pick[i * K + k] = row;
            memcpy(t->mix_k + (i * K + k) * N_STAGES, t->mix + row * N_STAGES, N_STAGES * sizeof *t->mix);
        }
    if (K < N) x = aqa_index_select(x, 0, aqa_from_data(t->pick, 1, (int64_t[]){b->B * K}, AQA_I64));
    aqa_tensor *logits = aqa_i3d_forward(t->m, x);
    aqa_tensor *loss = logits ? batch_loss(logits, K < N ? t->mix_k : t->mix, t->exec, b->B, K, t->execution) : NULL;
    v[0] = loss ? aqa_item(loss) : NAN;
    int rc = !loss || (isfinite(v[0]) && aqa_backward(loss, NULL, false) != AQA_OK);
    aqa_scope_end();
    return rc;
}

int main(int argc, char **argv) {
    kv_config c = {.program = "pretrain_i3d"};
    kv_def(&c, "data", "", "dataset folder with frame labels (the synthetic set or FineDiving)");
    kv_def_choice(&c, "dataset", "synthetic", "synthetic|finediving", "dataset (frame labels needed)");
    kv_def(&c, "out", "runs/i3d", "output folder");
    kv_def_num(&c, "width", "0.25", 1e-3, 1, "I3D width multiplier (1 = the real network)");
    kv_def_int(&c, "short", "48", 16, 4096, "input: shorter side resized to this");
    kv_def_int(&c, "size", "48", 16, 4096, "input: crop side (random crop when training, centre crop at test)");
    kv_def_bool(&c, "execution", "false", "also regress the dive's mean judge score (default: stage mixes only)");
    kv_def_int(&c, "epochs", "1", 1, 1e6, "passes over the training split");
    kv_def_int(&c, "batch", "2", 1, 100000, "videos per step");
    kv_def_int(&c, "clips_per_video", "3", 0, AQA_VD_MAX_CLIPS, "clips of each video trained on per step, drawn at random (0 = all N)");
    kv_def_num(&c, "lr", "1e-3", 0, 10, "Adam learning rate (cosine decay)");
    kv_def_num(&c, "weight_decay", "1e-4", 0, 10, "Adam weight decay");
    kv_def_num(&c, "dropout", "0.2", 0, 0.99, "dropout before the logits layer");
    kv_def_int(&c, "calibrate", "32", 0, 1e6, "training videos whose clips re-estimate BatchNorm statistics after each epoch");
    kv_def_int(&c, "workers", "2", 0, 256, "data-loading threads");
    kv_def_int(&c, "seed", "0", 0, 1e18, "initialisation, shuffling, augmentation");
    kv_def_bool(&c, "skip_bad", "false", "skip unreadable videos (warned, counted) instead of failing");
    kv_def_bool(&c, "progress", "true", "progress line on stderr");
    dist_def_keys(&c);
    int pr = kv_parse_args(&c, argc, argv, "--data DIR [--out DIR] [settings]");
    if (pr) return kv_exit_code(pr);
    dist_run dr; /* ranks from the launcher (one when started alone); rank 0 writes the files */
    if (dist_open(&dr, &c, "pretrain_i3d")) return 1;
    aqa_vd_config vc;
    aqa_vd_config_init(&vc);
    vc.root = kv_str(&c, "data");
    if (!kv_has(&c, "data") || parse_dataset(kv_str(&c, "dataset"), &vc.dataset) || vc.dataset != AQA_ANN_FINEDIVING) {
        fprintf(stderr, "pretrain_i3d: --data is required and --dataset must be synthetic or finediving "
                        "(frame labels needed)\n");
        return 1;
    }
    const double width = kv_double(&c, "width");
    const long epochs = kv_int(&c, "epochs"), batch = kv_int(&c, "batch");
    const char *out = kv_str(&c, "out");
    if (mkdir_p(out)) {
        fprintf(stderr, "pretrain_i3d: cannot create %s\n", out);
        return 1;
    }
    vc.policy = kv_bool(&c, "skip_bad") ? AQA_BAD_DATA_SKIP : AQA_BAD_DATA_FAIL;
    aqa_vd_config tc = vc;
    vc.split = "train";
    tc.split = "test";
    int rc = 1;
    aqa_video_dataset *dtr = aqa_video_dataset_open(&vc), *dte = dtr ? aqa_video_dataset_open(&tc) : NULL;
    aqa_i3d *m = NULL;
    aqa_optimizer *opt = NULL;
    aqa_loader *ld = NULL;
    float *mix = NULL, *mix_k = NULL;
    int64_t *pick = NULL, *clip = NULL;
    double *exec = NULL;
    if (!dte) goto fail;
    print_notes("pretrain_i3d", dtr);
    aqa_manual_seed((uint64_t)kv_int(&c, "seed"));
    aqa_i3d_config ic = aqa_i3d_default_config();
    ic.width_multiplier = width;
    ic.num_classes = N_OUT;
    ic.final_endpoint = AQA_I3D_LOGITS;
    ic.dropout_p = kv_double(&c, "dropout");
    if (!(m = aqa_i3d_new(&ic))) goto fail;
    aqa_module_train(&m->base, true);
    aqa_tensor **params = NULL;
    int np = aqa_module_parameters(&m->base, &params);
    if (np < 0) goto fail;
    aqa_adam_options ao = AQA_ADAM_DEFAULTS;
    ao.lr = kv_double(&c, "lr");
    ao.weight_decay = kv_double(&c, "weight_decay");
    opt = aqa_adam_new(&ao);
    aqa_module *models[1] = {&m->base};
    if (!opt || aqa_optim_add_params(opt, params, np) || dist_attach(&dr, models, 1, params, np, 1)) {
        free(params);
        goto fail;
    }
    free(params);

    aqa_frame_transform tf = aqa_frame_transform_i3d((int)kv_int(&c, "short"), (int)kv_int(&c, "size"));
    aqa_loader_config lc;
    aqa_loader_config_init(&lc);
    lc.batch_size = (int)batch;
    lc.shuffle = true;
    lc.drop_last = true;
    lc.seed = aqa_seed_mix((uint64_t)kv_int(&c, "seed"), 0x13D);
    lc.workers = (int)kv_int(&c, "workers");
    lc.i3d_clips = true;
    lc.i3d_tf = tf;
    lc.augment = true;
    dist_loader(&dr, &lc, false);
    if (!(ld = aqa_loader_new(dtr, &lc))) goto fail;
    const int64_t N = dtr->N;
    const int64_t K = kv_int(&c, "clips_per_video") < 1 || kv_int(&c, "clips_per_video") > N ? N
                                                                                               : kv_int(&c, "clips_per_video");
    mix = malloc((size_t)(batch * N * N_STAGES) * sizeof *mix);
    mix_k = malloc((size_t)(batch * K * N_STAGES) * sizeof *mix_k);
    pick = malloc((size_t)(batch * K) * sizeof *pick);
    clip = malloc((size_t)(batch * K) * sizeof *clip);
    exec = malloc((size_t)batch * sizeof *exec);
    uint64_t rng = aqa_seed_mix((uint64_t)kv_int(&c, "seed"), 0xC1195);
    if (!mix || !mix_k || !pick || !clip || !exec) {
        aqa_fail(AQA_ENOMEM, "pretrain_i3d: out of memory");
        goto fail;
    }
    if (dr.main)
        fprintf(stderr, "pretrain_i3d: %zu training / %zu test videos, %lld of %lld clips each per step, %lld parameters (width %g)\n",
            dtr->n_items, dte->n_items, (long long)K, (long long)N, (long long)aqa_module_num_params(&m->base, true), width);
    const size_t per_epoch = dtr->n_items / (size_t)batch, total = per_epoch * (size_t)epochs;
    if (!total) {
        aqa_fail(AQA_EINVAL, "pretrain_i3d: fewer training videos (%zu) than --batch %ld", dtr->n_items, batch);
        goto fail;
    }
    double t0 = aqa_now(), ema = 0, acc = 0, rho = 0;
    size_t step = 0;
    for (long ep = 0; ep < epochs; ep++) {
        char name[64];
        snprintf(name, sizeof name, "epoch %ld/%ld", ep + 1, epochs);
        aqa_progress prog;
        aqa_progress_start(&prog, name, per_epoch, kv_bool(&c, "progress"));
        if (aqa_loader_start_epoch(ld, (int)ep)) goto fail;
        aqa_batch *b = NULL;
        aqa_status st;
        while ((st = aqa_loader_next(ld, &b)) == AQA_OK && b) {
            aqa_optim_set_lr(opt, ao.lr * 0.5 * (1 + cos(M_PI * (double)step / (double)total)));
            /* K of each video's N clips, drawn afresh each step for every video of the batch (on
             * every rank, so the draws do not depend on the ranks) */
            for (int64_t v = 0; v < b->batch_rows; v++) {
                int64_t *rows = clip + v * K;
                for (int64_t k = 0; k < K; k++) {
                    bool again;
                    do {
                        rng = aqa_seed_mix(rng, step * 131 + (uint64_t)(v * K + k));
                        rows[k] = (int64_t)(rng % (uint64_t)N);
                        again = false;
                        for (int64_t j = 0; j < k; j++) again |= rows[j] == rows[k];
                    } while (again);
                }
            }
            train_ctx tc = {m, dtr, K, clip, kv_bool(&c, "execution"), mix, mix_k, pick, exec};
            double lv = NAN;
            int bad = dist_step(&dr, b, train_micro, &tc, &lv);
            aqa_batch_free(b);
            if (bad || !isfinite(lv)) {
                fprintf(stderr, "\npretrain_i3d: step %zu: the loss is %g (%s); stopping\n", step, lv,
                        bad ? aqa_last_error() : "not finite");
                goto fail_quiet;
            }
            if (aqa_optim_step(opt)) goto fail;
            ema = step ? 0.9 * ema + 0.1 * lv : lv;
            step++;
            char extra[64];
            snprintf(extra, sizeof extra, "loss %.4f", ema);
            aqa_progress_update(&prog, step - (size_t)ep * per_epoch, extra);
        }
        if (st) goto fail;
        aqa_progress_finish(&prog, NULL);
        /* BatchNorm's running statistics (momentum 0.01) trail the changing weights far behind:
         * re-estimate them with the current weights before testing (and saving) */
        if (calibrate_i3d_bn(m, dtr, &tf, (int)kv_int(&c, "calibrate"))) goto fail;
        if (evaluate(m, dte, &tf, &dr, &acc, &rho)) goto fail;
        char rho_text[48] = "";
        if (kv_bool(&c, "execution")) snprintf(rho_text, sizeof rho_text, ", execution rho %.4f", rho);
        if (dr.main)
            fprintf(stderr, "epoch %ld/%ld: loss %.4f, test clip stage accuracy %.4f%s (%.0f s)\n", ep + 1, epochs, ema, acc,
                rho_text, aqa_now() - t0);
    }
    if (!dr.main) {
        rc = 0;
        goto done;
    }
    printf("i3d_train_seconds %.1f\n", aqa_now() - t0);
    printf("i3d_stage_accuracy_test %.4f\n", acc);
    if (kv_bool(&c, "execution")) printf("i3d_execution_rho_test %.4f\n", rho);
    char path[1200], wbuf[32];
    snprintf(wbuf, sizeof wbuf, "%.17g", width);
    snprintf(path, sizeof path, "%s/i3d.safetensors", out);
    const char *mk[2] = {"format", "width_multiplier"}, *mv[2] = {"aqa-i3d-pretrained-1", wbuf};
    if (aqa_module_save(&m->base, path, 2, mk, mv)) goto fail;
    fprintf(stderr, "pretrain_i3d: wrote %s\n", path);
    snprintf(path, sizeof path, "%s/config.txt", out);
    if (kv_save(&c, path)) goto fail;
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "pretrain_i3d: %s\n", aqa_last_error());
fail_quiet:
done:
    free(mix);
    free(mix_k);
    free(pick);
    free(clip);
    free(exec);
    aqa_loader_free(ld);
    aqa_optim_free(opt);
    if (m) aqa_i3d_free(m);
    aqa_video_dataset_free(dtr);
    aqa_video_dataset_free(dte);
    dist_close(&dr);
    return rc;
}
