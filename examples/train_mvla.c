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

int main(int argc, char **argv) {
    kv_config c = {.program = "train_mvla"};
    run_def_keys(&c);
    run_def_train_keys(&c);
    kv_def(&c, "out", "runs/mvla", "run folder (checkpoints, log.jsonl, config.txt)");
    kv_def(&c, "resume", "false", "continue from <out>/last.safetensors");
    kv_def(&c, "eval_every", "1", "evaluate every k epochs (and after the last)");
    kv_def(&c, "progress", "true", "progress line on stderr");
    int pr = kv_parse_args(&c, argc, argv, "--data DIR [--features CACHE] [--out DIR] [settings]");
    if (pr) return pr == 2 ? 0 : 1;
    if (!kv_has(&c, "data")) {
        fprintf(stderr, "train_mvla: --data is required\n");
        return 1;
    }
    dist_run dr; /* ranks from the launcher (one when started alone); rank 0 writes the files */
    if (dist_open(&dr, &c, "train_mvla")) return 1;
    const char *out = kv_str(&c, "out");
    if (mkdir_p(out)) {
        fprintf(stderr, "train_mvla: cannot create %s\n", out);
        return 1;
    }
    char path[1500], last[1024], best[1024];
    snprintf(last, sizeof last, "%.900s/last.safetensors", out);
    snprintf(best, sizeof best, "%.900s/best.safetensors", out);
    snprintf(path, sizeof path, "%s/config.txt", out);
    if (dr.main && kv_save(&c, path)) {
        fprintf(stderr, "train_mvla: cannot write %s\n", path);
        return 1;
    }

    run_ctx r;
    run_trainer tr;
    memset(&tr, 0, sizeof tr);
    int rc = 1;
    char *cfg_json = kv_to_json(&c);
    FILE *log = NULL;
    if (run_open(&r, &c, true)) goto fail;
    r.dist = &dr;
    if (!r.test) {
        fprintf(stderr, "train_mvla: no test split\n");
        goto done;
    }
    if (dr.main)
        fprintf(stderr, "train_mvla: %s %s, %zu training / %zu test videos, head %s%s, setting %s, %lld parameters (%lld trainable)\n",
            kv_str(&c, "dataset"), r.mcfg.scheme == AQA_MVLA_FAM ? "FAM" : "FUM", r.train->n_items, r.test->n_items,
            kv_str(&c, "head"), r.mcfg.use_vlp ? "-MVLA" : "", aqa_exemplar_mode_name(r.mode),
            (long long)aqa_module_num_params(r.root, false), (long long)aqa_module_num_params(r.root, true));
    if (dr.main && r.train->summary.n_items != r.train->summary.n_split) aqa_vd_print_summary(r.train, stderr);
    if (run_trainer_new(&r, &tr)) goto fail;

    /* resume */
    int start_epoch = 0;
    double best_rho = -INFINITY;
    if (kv_bool(&c, "resume") && access(last, F_OK) == 0) {
        aqa_checkpoint ck = {.model = r.root, .optim = tr.opt};
        if (aqa_checkpoint_load(last, &ck)) goto fail;
        free(ck.loaded_config);
        if (r.i3d) {
            snprintf(path, sizeof path, "%s.i3d.safetensors", last);
            if (aqa_module_load(&r.i3d->base, path, true, NULL, NULL, NULL)) goto fail;
        }
        start_epoch = (int)ck.epoch + 1;
        tr.step = ck.step;
        snprintf(path, sizeof path, "%s/best.txt", out);
        FILE *bf = fopen(path, "r");
        if (bf) {
            if (fscanf(bf, "%*d %lf", &best_rho) != 1) best_rho = -INFINITY;
            fclose(bf);
        }
        if (dr.main) fprintf(stderr, "train_mvla: resumed from %s at epoch %d, step %lld\n", last, start_epoch, (long long)tr.step);
    }

    snprintf(path, sizeof path, "%s/log.jsonl", out);
    log = dr.main ? fopen(path, start_epoch ? "a" : "w") : fopen("/dev/null", "w");
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
        run_epoch_stats es;
        int er = run_train_epoch(&r, &tr, epoch, epochs, max_steps, kv_bool(&c, "progress"), &es, &stop);
        if (er == 1) goto fail;
        if (er == 2) goto done;
        bool do_eval = (epoch + 1) % eval_every == 0 || epoch + 1 == epochs || stop;
        bool is_best = false;
        run_results_free(&res);
        if (do_eval) {
            if (run_evaluate(&r, r.test, false, false, &res)) goto fail;
            is_best = res.m.spearman > best_rho;
            if (dr.main)
                fprintf(stderr, "epoch %d/%d: test rho %.4f R-l2 %.4f MSE %.3f AIoU@0.5 %.4f AIoU@0.75 %.4f (%.1f s)%s\n",
                    epoch + 1, epochs, res.m.spearman, res.m.rl2_x100, res.m.mse, res.aiou50, res.aiou75, res.seconds,
                    is_best ? " best" : "");
        }
        /* checkpoint(s) */
        aqa_checkpoint ck = {.model = r.root, .optim = tr.opt, .step = tr.step, .epoch = epoch, .config_json = cfg_json};
        if (dr.main && aqa_checkpoint_save(last, &ck)) goto fail;
        if (dr.main && r.i3d) {
            snprintf(path, sizeof path, "%s.i3d.safetensors", last);
            if (aqa_module_save(&r.i3d->base, path, 0, NULL, NULL)) goto fail;
        }
        if (is_best) best_rho = res.m.spearman;
        if (is_best && dr.main) {
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
        fprintf(log, "{\"epoch\": %d, \"step\": %lld", epoch + 1, (long long)tr.step);
        json_num(log, "train_loss", es.n_steps ? es.loss_sum / es.n_steps : NAN, true);
        for (int k = 0; k < AQA_MVLA_NUM_LOSSES; k++)
            if (es.counts[k]) json_num(log, aqa_mvla_loss_name((aqa_mvla_loss)k), es.sums[k] / es.counts[k], true);
        json_num(log, "samples_per_s", es.seconds > 0 ? (double)es.seen / es.seconds : NAN, true);
        json_num(log, "epoch_seconds", es.seconds, true);
        json_num(log, "teacher_forcing", es.teacher, true);
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
    if (res.n && dr.main) {
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
    run_trainer_free(&tr);
    free(cfg_json);
    run_free(&r);
    dist_close(&dr);
    return rc;
}
