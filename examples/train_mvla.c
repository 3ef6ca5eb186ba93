/* train_mvla.c: trains an assessment head with MVLA (the paper's "X-MVLA") or without it ("X").
 *
 *     examples/train_mvla --data DIR --features CACHE --out runs/tsa_mvla            (TSA-MVLA)
 *     examples/train_mvla --data DIR --features CACHE --out runs/tsa --no-mvla       (plain TSA)
 *     examples/train_mvla --config run.conf --epochs 50                              (file + flags)
 *
 * Data: the synthetic set (default) or FineDiving (FineDiving layout), MTL-AQA, JIGSAWS (use
 * --train-split Suturing/0/train --test-split Suturing/0/test) or Fis-V; from cached features
 * (--features, written by extract_features; Fis-V: its .npy folder) or from frames (frozen CLIP
 * image encoder per batch, I3D fine-tuned).  Exemplars for contrastive heads (TSA, CoRe, TPT) follow
 * --setting: w/DN (same dive number), w/DD (same difficulty; targets / DD), w/o (random).
 *
 * Optimiser: Adam, weight decay 0, the paper's parameter groups: lr_backbone (1e-4) for the
 * visual feature extraction (the VLP temporal transformer and projections, I3D in frame mode)
 * and lr_head (1e-3) for SCA, segmentation, temperature and the head.
 *
 * Each epoch: a progress line on stderr (epoch, step, loss terms, samples/s, ETA); evaluation on
 * the test split (rho, R-l2 x100, MSE, AIoU@0.5/0.75 with frame labels); a JSON line appended to
 * <out>/log.jsonl; the checkpoint <out>/last.safetensors (atomic: model, optimizer, step, RNG,
 * settings) and <out>/best.safetensors when rho improved.  --resume continues from last.  A loss
 * term that turns NaN or infinite stops the run with a message naming the term.  The resolved
 * settings are written to <out>/config.txt (re-loadable with --config). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "examples/mvla_run.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"

static void json_num(FILE *f, const char *key, double v, bool comma) {
    if (isfinite(v)) fprintf(f, "%s\"%s\": %.6g", comma ? ", " : "", key, v);
    else fprintf(f, "%s\"%s\": null", comma ? ", " : "", key);
}

/* CoRe's groups (CoRe, TPT): score differences of training pairs within the exemplar groups. */
static int core_groups(run_ctx *r) {
    aqa_video_dataset *ds = r->train;
    size_t n = ds->n_items, cap = 200000, k = 0;
    double *d = malloc(cap * sizeof *d);
    if (!d) return 1;
    for (size_t i = 0; i < n && k < cap; i++)
        for (size_t j = 0; j < n && k < cap; j++) {
            if (i == j) continue;
            const aqa_ann_sample *a = aqa_vd_sample(ds, i), *b = aqa_vd_sample(ds, j);
            if (r->mode == AQA_EXEMPLAR_DIVE && strcasecmp(a->dive_number, b->dive_number)) continue;
            if (r->mode == AQA_EXEMPLAR_DIFFICULTY && fabs(a->difficulty - b->difficulty) > 1e-6) continue;
            double sa = a->score, sb = b->score;
            if (r->use_dd && a->difficulty > 0 && b->difficulty > 0) sa /= a->difficulty, sb /= b->difficulty;
            d[k++] = sa - sb;
        }
    aqa_status (*set)(aqa_head *, const double *, int64_t) =
        r->head->ops == &aqa_head_tpt ? aqa_tpt_head_set_groups : aqa_core_head_set_groups;
    int rc = k ? set(r->head, d, (int64_t)k) != AQA_OK : 0;
    free(d);
    return rc;
}

int main(int argc, char **argv) {
    kv_config c = {.program = "train_mvla"};
    run_def_keys(&c);
    kv_def(&c, "out", "runs/mvla", "run folder (checkpoints, log.jsonl, config.txt)");
    kv_def(&c, "epochs", "20", "training epochs");
    kv_def(&c, "lr_backbone", "1e-4", "Adam lr of visual feature extraction (temporal transformer, projections, I3D)");
    kv_def(&c, "lr_head", "1e-3", "Adam lr of SCA, segmentation and the head");
    kv_def(&c, "weight_decay", "0", "Adam weight decay");
    kv_def(&c, "augment", "true", "random crop/flip (frame mode), MTL-AQA shift");
    kv_def(&c, "resume", "false", "continue from <out>/last.safetensors");
    kv_def(&c, "max_steps", "0", "stop after this many steps in total (0 = no limit; tests)");
    kv_def(&c, "eval_every", "1", "evaluate every k epochs (and after the last)");
    kv_def(&c, "progress", "true", "progress line on stderr");
    int pr = kv_parse_args(&c, argc, argv, "--data DIR [--features CACHE] [--out DIR] [settings]");
    if (pr) return pr == 2 ? 0 : 1;
    if (!kv_has(&c, "data")) {
        fprintf(stderr, "train_mvla: --data is required\n");
        return 1;
    }
    const char *out = kv_str(&c, "out");
    if (mkdir_p(out)) {
        fprintf(stderr, "train_mvla: cannot create %s\n", out);
        return 1;
    }
    char path[1500], last[1024], best[1024];
    snprintf(last, sizeof last, "%.900s/last.safetensors", out);
    snprintf(best, sizeof best, "%.900s/best.safetensors", out);
    snprintf(path, sizeof path, "%s/config.txt", out);
    if (kv_save(&c, path)) {
        fprintf(stderr, "train_mvla: cannot write %s\n", path);
        return 1;
    }

    run_ctx r;
    int rc = 1;
    aqa_optimizer *opt = NULL;
    aqa_loader *ld = NULL;
    aqa_exemplar_pool *pool = NULL;
    aqa_tensor **bb = NULL, **rest = NULL;
    char *cfg_json = kv_to_json(&c);
    FILE *log = NULL;
    if (run_open(&r, &c, true)) goto fail;
    if (!r.test) {
        fprintf(stderr, "train_mvla: no test split\n");
        goto done;
    }
    fprintf(stderr, "train_mvla: %s %s, %zu training / %zu test videos, head %s%s, setting %s, %lld parameters (%lld trainable)\n",
            kv_str(&c, "dataset"), r.mcfg.scheme == AQA_MVLA_FAM ? "FAM" : "FUM", r.train->n_items, r.test->n_items,
            kv_str(&c, "head"), r.mcfg.use_vlp ? "-MVLA" : "", aqa_exemplar_mode_name(r.mode),
            (long long)aqa_module_num_params(r.root, false), (long long)aqa_module_num_params(r.root, true));
    if (r.train->summary.n_items != r.train->summary.n_split) aqa_vd_print_summary(r.train, stderr);
    if ((r.head->ops == &aqa_head_core || r.head->ops == &aqa_head_tpt) && core_groups(&r)) goto fail;

    /* Adam with the paper's groups */
    int nb = 0, nr = 0;
    if (aqa_mvla_param_groups(r.mvla, &bb, &nb, &rest, &nr)) goto fail;
    aqa_tensor **hp = NULL;
    int nh = aqa_module_parameters(&r.head->base, &hp);
    if (nh < 0) goto fail;
    rest = realloc(rest, sizeof *rest * (size_t)(nr + nh + 1));
    memcpy(rest + nr, hp, sizeof *hp * (size_t)nh);
    nr += nh;
    free(hp);
    if (r.i3d) {
        aqa_tensor **ip = NULL;
        int ni = aqa_module_parameters(&r.i3d->base, &ip);
        if (ni < 0) goto fail;
        bb = realloc(bb, sizeof *bb * (size_t)(nb + ni + 1));
        memcpy(bb + nb, ip, sizeof *ip * (size_t)ni);
        nb += ni;
        free(ip);
    }
    aqa_adam_options ao = AQA_ADAM_DEFAULTS;
    ao.weight_decay = kv_double(&c, "weight_decay");
    opt = aqa_adam_new(&ao);
    if (!opt) goto fail;
    if (nb && aqa_optim_add_group(opt, bb, nb, kv_double(&c, "lr_backbone"), ao.weight_decay) < 0) goto fail;
    if (nr && aqa_optim_add_group(opt, rest, nr, kv_double(&c, "lr_head"), ao.weight_decay) < 0) goto fail;

    /* resume */
    int start_epoch = 0;
    int64_t step = 0;
    double best_rho = -INFINITY;
    if (kv_bool(&c, "resume") && access(last, F_OK) == 0) {
        aqa_checkpoint ck = {.model = r.root, .optim = opt};
        if (aqa_checkpoint_load(last, &ck)) goto fail;
        free(ck.loaded_config);
        if (r.i3d) {
            snprintf(path, sizeof path, "%s.i3d.safetensors", last);
            if (aqa_module_load(&r.i3d->base, path, true, NULL, NULL, NULL)) goto fail;
        }
        start_epoch = (int)ck.epoch + 1;
        step = ck.step;
        snprintf(path, sizeof path, "%s/best.txt", out);
        FILE *bf = fopen(path, "r");
        if (bf) {
            if (fscanf(bf, "%*d %lf", &best_rho) != 1) best_rho = -INFINITY;
            fclose(bf);
        }
        fprintf(stderr, "train_mvla: resumed from %s at epoch %d, step %lld\n", last, start_epoch, (long long)step);
    }

    pool = r.contrastive ? aqa_exemplar_pool_new(r.train, r.mode) : NULL;
    if (r.contrastive && !pool) goto fail;
    aqa_loader_config lc;
    aqa_loader_config_init(&lc);
    lc.batch_size = (int)kv_int(&c, "batch");
    lc.workers = (int)kv_int(&c, "workers");
    lc.seed = (uint64_t)kv_int(&c, "seed");
    lc.shuffle = true;
    lc.drop_last = r.train->n_items > (size_t)lc.batch_size;
    run_loader_inputs(&r, &lc);
    lc.augment = kv_bool(&c, "augment");
    lc.exemplars = pool;
    lc.n_exemplars = 1;
    ld = aqa_loader_new(r.train, &lc);
    if (!ld) goto fail;
    snprintf(path, sizeof path, "%s/log.jsonl", out);
    log = fopen(path, start_epoch ? "a" : "w");
    if (!log) {
        fprintf(stderr, "train_mvla: cannot write %s\n", path);
        goto done;
    }

    const int epochs = (int)kv_int(&c, "epochs");
    const long max_steps = kv_int(&c, "max_steps");
    const int eval_every = kv_int(&c, "eval_every") > 0 ? (int)kv_int(&c, "eval_every") : 1;
    run_results res;
    memset(&res, 0, sizeof res);
    bool stop = false;
    for (int epoch = start_epoch; epoch < epochs && !stop; epoch++) {
        aqa_module_train(r.root, true);
        if (aqa_loader_start_epoch(ld, epoch)) goto fail;
        bool teacher = aqa_mvla_teacher_forcing(&r.mcfg, epoch, epochs);
        char label[64];
        snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, epochs);
        size_t total = aqa_loader_num_batches(ld) * (size_t)lc.batch_size;
        aqa_progress prog;
        aqa_progress_start(&prog, label, total, kv_bool(&c, "progress"));
        double sums[AQA_MVLA_NUM_LOSSES] = {0}, loss_sum = 0, t0 = aqa_now();
        int counts[AQA_MVLA_NUM_LOSSES] = {0}, n_steps = 0;
        size_t seen = 0;
        for (;;) {
            aqa_batch *b = NULL;
            if (aqa_loader_next(ld, &b)) goto fail;
            if (!b) break;
            if (max_steps && step >= max_steps) {
                aqa_batch_free(b);
                stop = true;
                break;
            }
            aqa_scope_begin();
            int64_t B = b->B;
            aqa_mvla_output o;
            aqa_head_result hr;
            aqa_head_input qi, ei;
            bool ok = run_forward(&r, b, r.contrastive ? b->exemplars : NULL, true, teacher, &o) == AQA_OK &&
                      aqa_mvla_head_input(&o, 0, B, &qi) == AQA_OK &&
                      (!r.contrastive || aqa_mvla_head_input(&o, B, B, &ei) == AQA_OK);
            aqa_head_targets tg = {.score = to_dev(&r, b->score), .judge_scores = to_dev(&r, b->judges),
                                   .difficulty = to_dev(&r, b->difficulty)};
            ok = ok && aqa_head_forward(r.head, &qi, r.contrastive ? &ei : NULL,
                                        r.contrastive ? to_dev(&r, b->exemplars->score) : NULL, &tg, &hr) == AQA_OK;
            aqa_tensor *loss = ok ? aqa_mvla_total_loss(r.mvla, &o, hr.loss) : NULL;
            if (!loss) {
                aqa_scope_end();
                aqa_batch_free(b);
                goto fail;
            }
            /* every term must be finite */
            for (int k = 0; k < AQA_MVLA_NUM_LOSSES; k++) {
                if (!o.losses[k]) continue;
                double v = aqa_item(o.losses[k]);
                if (!isfinite(v)) {
                    fprintf(stderr, "\ntrain_mvla: epoch %d step %lld: loss term \"%s\" is %g; stopping (lower the "
                                    "learning rates or check the inputs)\n",
                            epoch + 1, (long long)step, aqa_mvla_loss_name((aqa_mvla_loss)k), v);
                    aqa_scope_end();
                    aqa_batch_free(b);
                    goto done;
                }
                sums[k] += v;
                counts[k]++;
            }
            double lv = aqa_item(loss);
            aqa_optim_zero_grad(opt);
            if (aqa_backward(loss, NULL, false) || aqa_optim_step(opt)) {
                aqa_scope_end();
                aqa_batch_free(b);
                goto fail;
            }
            aqa_scope_end();
            loss_sum += lv;
            n_steps++;
            step++;
            seen += (size_t)B;
            aqa_batch_free(b);
            char extra[256];
            int nx = snprintf(extra, sizeof extra, "step %lld loss %.4f", (long long)step, loss_sum / n_steps);
            for (int k = 0; k < AQA_MVLA_NUM_LOSSES && nx < (int)sizeof extra - 32; k++)
                if (counts[k] && (k == AQA_MVLA_LOSS_BCE || k == AQA_MVLA_LOSS_HEAD))
                    nx += snprintf(extra + nx, sizeof extra - (size_t)nx, " %s %.4f", aqa_mvla_loss_name((aqa_mvla_loss)k),
                                   sums[k] / counts[k]);
            aqa_progress_update(&prog, seen, extra);
        }
        double secs = aqa_now() - t0;
        char extra[128];
        snprintf(extra, sizeof extra, "loss %.4f", n_steps ? loss_sum / n_steps : NAN);
        aqa_progress_finish(&prog, extra);
        bool do_eval = (epoch + 1) % eval_every == 0 || epoch + 1 == epochs || stop;
        bool is_best = false;
        run_results_free(&res);
        if (do_eval) {
            if (run_evaluate(&r, r.test, false, false, &res)) goto fail;
            is_best = res.m.spearman > best_rho;
            fprintf(stderr, "epoch %d/%d: test rho %.4f R-l2 %.4f MSE %.3f AIoU@0.5 %.4f AIoU@0.75 %.4f (%.1f s)%s\n",
                    epoch + 1, epochs, res.m.spearman, res.m.rl2_x100, res.m.mse, res.aiou50, res.aiou75, res.seconds,
                    is_best ? " best" : "");
        }
        /* checkpoint(s) */
        aqa_checkpoint ck = {.model = r.root, .optim = opt, .step = step, .epoch = epoch, .config_json = cfg_json};
        if (aqa_checkpoint_save(last, &ck)) goto fail;
        if (r.i3d) {
            snprintf(path, sizeof path, "%s.i3d.safetensors", last);
            if (aqa_module_save(&r.i3d->base, path, 0, NULL, NULL)) goto fail;
        }
        if (is_best) {
            best_rho = res.m.spearman;
            if (aqa_checkpoint_save(best, &ck)) goto fail;
            if (r.i3d) {
                snprintf(path, sizeof path, "%s.i3d.safetensors", best);
                if (aqa_module_save(&r.i3d->base, path, 0, NULL, NULL)) goto fail;
            }
            snprintf(path, sizeof path, "%s/best.txt", out);
            FILE *bf = fopen(path, "w");
            if (bf) {
                fprintf(bf, "%d %.17g\n", epoch, best_rho);
                fclose(bf);
            }
        }
        fprintf(log, "{\"epoch\": %d, \"step\": %lld", epoch + 1, (long long)step);
        json_num(log, "train_loss", n_steps ? loss_sum / n_steps : NAN, true);
        for (int k = 0; k < AQA_MVLA_NUM_LOSSES; k++)
            if (counts[k]) json_num(log, aqa_mvla_loss_name((aqa_mvla_loss)k), sums[k] / counts[k], true);
        json_num(log, "samples_per_s", secs > 0 ? (double)seen / secs : NAN, true);
        json_num(log, "epoch_seconds", secs, true);
        json_num(log, "teacher_forcing", teacher, true);
        if (do_eval) {
            json_num(log, "rho", res.m.spearman, true);
            json_num(log, "rl2_x100", res.m.rl2_x100, true);
            json_num(log, "mse", res.m.mse, true);
            json_num(log, "aiou50", res.aiou50, true);
            json_num(log, "aiou75", res.aiou75, true);
            fprintf(log, ", \"best\": %s", is_best ? "true" : "false");
        }
        fprintf(log, "}\n");
        fflush(log);
    }
    if (res.n) {
        printf("final_rho %.4f\nfinal_rl2_x100 %.4f\nfinal_mse %.4f\nfinal_aiou50 %.4f\nfinal_aiou75 %.4f\nbest_rho %.4f\n",
               res.m.spearman, res.m.rl2_x100, res.m.mse, res.aiou50, res.aiou75, best_rho);
    }
    run_results_free(&res);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "train_mvla: %s\n", aqa_last_error());
done:
    if (log) fclose(log);
    aqa_loader_free(ld);
    aqa_exemplar_pool_free(pool);
    aqa_optim_free(opt);
    free(bb);
    free(rest);
    free(cfg_json);
    run_free(&r);
    return rc;
}
