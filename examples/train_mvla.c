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
 * feature extraction (the VLP temporal transformer and projections, the CLIP text encoder unless
 * --freeze-clip-text, I3D in frame mode) and lr_head (1e-3) for SCA, segmentation, temperature and
 * the head.
 *
 * What is trained end to end.  The CLIP text encoder is fine-tuned by default (the paper; its
 * text side is re-encoded at every step and saved beside each checkpoint).  I3D is fine-tuned
 * only in frame mode (no --features: I3D runs in the training graph, lr_backbone, BatchNorm
 * statistics frozen as TSA); from a feature cache it is frozen (its clip features were computed
 * once), which is what the README's synthetic numbers use.  The CLIP image encoder is always
 * frozen (the paper).
 *
 * Each epoch: a progress line on stderr (epoch, step, loss terms, samples/s, ETA); evaluation on
 * the test split (rho, R-l2 x100, MSE, AIoU@0.5/0.75 with frame labels); then the commit
 * (examples/run_store.h): the checkpoint <out>/last.safetensors (model, optimizer, step, RNG,
 * settings, the epoch's record), <out>/best.safetensors when rho improved, best.txt and a JSON
 * line per epoch in <out>/log.jsonl, so that a kill or a full disk at any moment loses no
 * completed epoch.  --resume continues from last (an error when there is none, or when a setting
 * of the model, data or optimiser differs from the checkpoint's: the message lists them); resuming
 * a finished run prints its final metrics.  A loss term that turns NaN or infinite stops the run
 * with a message naming the term and the videos of the batch (a NaN in a feature file is named
 * with its file when read).  The resolved settings are written to <out>/config.txt (re-loadable
 * with --config). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "examples/mvla_run.h"
#include "examples/run_store.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"

/* A number of a log record (JSON null when not finite). */
static void json_num(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

/* The final metrics lines (stdout), from a log record: the run's last epoch. */
static void print_final(const char *record, double best) {
    static const char *const keys[5] = {"rho", "rl2_x100", "mse", "aiou50", "aiou75"};
    cJSON *o = cJSON_Parse(record);
    for (int k = 0; k < 5; k++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, keys[k]);
        printf("final_%s %.4f\n", keys[k], cJSON_IsNumber(v) ? v->valuedouble : NAN);
    }
    printf("best_rho %.4f\n", best);
    cJSON_Delete(o);
}

/* Settings a resumed run may change: where things are and how the run is driven, not the model,
 * the data it learns from or the optimiser. */
static const char *const RUNTIME_KEYS[] = {"epochs", "resume", "progress", "workers", "device", "max_steps",
                                           "eval_every", "data", "features", "clip_features", "texts", "out", "skip_bad", NULL};

/* --resume: <out>/last.safetensors must exist and hold this run's settings.  0, or 1 after a
 * message. */
static int check_resume(kv_config *c, const char *last) {
    aqa_st_file *f;
    if (access(last, F_OK) != 0) {
        fprintf(stderr, "train_mvla: --resume: %s does not exist (nothing to resume; start without --resume)\n", last);
        return 1;
    }
    if (aqa_st_open(last, &f)) {
        fprintf(stderr, "train_mvla: --resume: %s\n", aqa_last_error());
        return 1;
    }
    const char *cfg = aqa_st_metadata(f, "config");
    char diff[2048];
    int n = cfg ? kv_diff_json(c, cfg, RUNTIME_KEYS, diff, sizeof diff) : -1;
    aqa_st_close(f);
    if (n < 0) fprintf(stderr, "train_mvla: --resume: %s holds no settings (not written by train_mvla?)\n", last);
    else if (n > 0)
        fprintf(stderr, "train_mvla: --resume: %d setting%s differ%s from the checkpoint's: %s (resume with the same "
                        "settings, or start a new run elsewhere)\n", n, n > 1 ? "s" : "", n > 1 ? "" : "s", diff);
    return n != 0;
}

/* The keys of a batch's videos, comma-separated, for messages. */
static void batch_keys(aqa_video_dataset *ds, const aqa_batch *b, char *out, size_t n) {
    size_t len = 0;
    out[0] = 0;
    for (int64_t i = 0; i < b->B && len + 1 < n; i++)
        len += (size_t)snprintf(out + len, n - len, "%s%s", i ? ", " : "", aqa_vd_sample(ds, b->items[i])->key);
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

/* What one micro-batch needs besides itself. */
typedef struct train_step_ctx {
    run_ctx *r;
    bool teacher; /* ground-truth stage splits this epoch */
} train_step_ctx;

#define N_VALUES (1 + 2 * AQA_MVLA_NUM_LOSSES) /* total loss, each term, whether the term exists */

/* One micro-batch (data-parallel step, examples/dist_run.h): forward, the loss values into v,
 * backward. */
static int train_micro(void *user, aqa_batch *b, double *v) {
    train_step_ctx *t = user;
    run_ctx *r = t->r;
    aqa_scope_begin();
    int64_t B = b->B;
    aqa_mvla_output o;
    aqa_head_result hr;
    aqa_head_input qi, ei;
    bool ok = run_forward(r, b, r->contrastive ? b->exemplars : NULL, true, t->teacher, &o) == AQA_OK &&
              aqa_mvla_head_input(&o, 0, B, &qi) == AQA_OK &&
              (!r->contrastive || aqa_mvla_head_input(&o, B, B, &ei) == AQA_OK);
    aqa_head_targets tg = {.score = to_dev(r, b->score), .judge_scores = to_dev(r, b->judges),
                           .difficulty = to_dev(r, b->difficulty)};
    ok = ok && aqa_head_forward(r->head, &qi, r->contrastive ? &ei : NULL,
                                r->contrastive ? to_dev(r, b->exemplars->score) : NULL, &tg, &hr) == AQA_OK;
    aqa_tensor *loss = ok ? aqa_mvla_total_loss(r->mvla, &o, hr.loss) : NULL;
    for (int k = 0; loss && k < AQA_MVLA_NUM_LOSSES; k++) {
        v[1 + k] = o.losses[k] ? aqa_item(o.losses[k]) : 0;
        v[1 + AQA_MVLA_NUM_LOSSES + k] = o.losses[k] != NULL;
    }
    if (loss) v[0] = aqa_item(loss);
    int rc = !loss || aqa_backward(loss, NULL, false) != AQA_OK;
    aqa_scope_end();
    return rc;
}

int main(int argc, char **argv) {
    kv_config c = {.program = "train_mvla"};
    run_def_keys(&c);
    kv_def(&c, "out", "runs/mvla", "run folder (checkpoints, log.jsonl, config.txt)");
    kv_def_int(&c, "epochs", "20", 1, 1e6, "training epochs");
    kv_def_num(&c, "lr_backbone", "1e-4", 0, 10, "Adam lr of feature extraction (temporal transformer, projections, CLIP text "
                                                       "encoder, I3D in frame mode)");
    kv_def_num(&c, "lr_head", "1e-3", 0, 10, "Adam lr of SCA, segmentation and the head");
    kv_def_num(&c, "weight_decay", "0", 0, 10, "Adam weight decay");
    kv_def_bool(&c, "augment", "true", "random crop/flip (frame mode), MTL-AQA shift");
    kv_def_bool(&c, "resume", "false", "continue from <out>/last.safetensors (an error when there is none)");
    kv_def_int(&c, "max_steps", "0", 0, 1e15, "stop after this many steps in total (0 = no limit; tests)");
    kv_def_int(&c, "eval_every", "1", 1, 1e6, "evaluate every k epochs (and after the last)");
    kv_def_bool(&c, "progress", "true", "progress line on stderr");
    int pr = kv_parse_args(&c, argc, argv, "--data DIR [--features CACHE] [--out DIR] [settings]");
    if (pr) return kv_exit_code(pr);
    if (!kv_has(&c, "data")) {
        fprintf(stderr, "train_mvla: --data is required\n");
        return 1;
    }
    dist_run dr; /* ranks from the launcher (one when started alone); rank 0 writes the files */
    if (dist_open(&dr, &c, "train_mvla")) return 1;
    run_resolve_clip(&c); /* the CLIP a feature cache was made with, when --clip is not given */
    const char *out = kv_str(&c, "out");
    const bool resume = kv_bool(&c, "resume");
    char path[1500], last[1024];
    snprintf(last, sizeof last, "%.900s/last.safetensors", out);
    if (resume && check_resume(&c, last)) return 1;
    if (mkdir_p(out)) {
        fprintf(stderr, "train_mvla: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/config.txt", out);
    if (dr.main && kv_save(&c, path)) {
        fprintf(stderr, "train_mvla: %s\n", aqa_last_error());
        return 1;
    }

    run_ctx r;
    int rc = 1;
    aqa_optimizer *opt = NULL;
    aqa_loader *ld = NULL;
    aqa_exemplar_pool *pool = NULL;
    aqa_tensor **bb = NULL, **rest = NULL;
    char *cfg_json = kv_to_json(&c);
    run_store rs = {0};
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
    if (dr.main) {
        char fum[64] = "";
        if (r.mcfg.scheme == AQA_MVLA_FUM)
            snprintf(fum, sizeof fum, "; FUM stages start at clips %lld, %lld", (long long)r.mcfg.fum_boundaries[0],
                     (long long)r.mcfg.fum_boundaries[1]);
        fprintf(stderr, "train_mvla: CLIP text encoder %s, I3D %s%s\n",
                r.texts ? (r.texts->finetune ? "fine-tuned" : "frozen") : r.mcfg.use_vlp ? "frozen (cached tables)" : "unused",
                r.frames ? "fine-tuned (frame mode)" : "frozen (cached features)", fum);
    }
    if (dr.main && r.train->summary.n_items != r.train->summary.n_split) aqa_vd_print_summary(r.train, stderr);
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
    for (int k = 0; k < 2; k++) { /* I3D (frame mode) and the CLIP text side join the backbone group */
        aqa_tensor **ip = NULL;
        int ni = k == 0 ? (r.i3d ? aqa_module_parameters(&r.i3d->base, &ip) : 0)
                        : (r.texts ? aqa_mvla_text_tables_parameters(r.texts, &ip) : 0);
        if (ni < 0) goto fail;
        bb = realloc(bb, sizeof *bb * (size_t)(nb + ni + 1));
        if (ni) memcpy(bb + nb, ip, sizeof *ip * (size_t)ni);
        nb += ni;
        free(ip);
    }
    aqa_adam_options ao = AQA_ADAM_DEFAULTS;
    ao.weight_decay = kv_double(&c, "weight_decay");
    opt = aqa_adam_new(&ao);
    if (!opt) goto fail;
    if (nb && aqa_optim_add_group(opt, bb, nb, kv_double(&c, "lr_backbone"), ao.weight_decay) < 0) goto fail;
    if (nr && aqa_optim_add_group(opt, rest, nr, kv_double(&c, "lr_head"), ao.weight_decay) < 0) goto fail;

    /* the run folder (rank 0's); resuming finishes an interrupted commit first */
    run_side sides[2];
    int n_sides = run_sides(&r, sides);
    if (dr.main && run_store_open(&rs, out, sides, n_sides, resume)) goto fail;
    if (rs.n_cleaned) fprintf(stderr, "train_mvla: removed %d stale temporary file(s) in %s\n", rs.n_cleaned, out);
    if (rs.n_replaced)
        fprintf(stderr, "train_mvla: a fresh run (no --resume): removed %d file(s) of the previous run in %s\n",
                rs.n_replaced, out);
    int start_epoch = 0;
    int64_t step = 0;
    const int epochs = (int)kv_int(&c, "epochs");
    if (resume) {
        aqa_checkpoint ck = {.model = r.root, .optim = opt};
        if (aqa_checkpoint_load(last, &ck)) goto fail;
        free(ck.loaded_config);
        if (run_load_sidecars(&r, last)) goto fail;
        start_epoch = (int)ck.epoch + 1;
        step = ck.step;
        if (dr.main) fprintf(stderr, "train_mvla: resumed from %s at epoch %d, step %lld\n", last, start_epoch, (long long)step);
        if (start_epoch >= epochs) {
            if (dr.main) {
                fprintf(stderr, "train_mvla: the run finished (%d epoch%s); its final metrics:\n", start_epoch,
                        start_epoch > 1 ? "s" : "");
                print_final(rs.record, rs.best_score);
            }
            rc = 0;
            goto done;
        }
    }
    /* every rank starts from rank 0's weights; the steps sum the ranks' gradients */
    aqa_module *models[3] = {r.root};
    int n_models = 1;
    if (r.i3d) models[n_models++] = &r.i3d->base;
    if (r.texts && r.texts->finetune) models[n_models++] = &r.clip->base;
    aqa_tensor **all = malloc(sizeof *all * (size_t)(nb + nr + 1));
    if (!all) goto fail;
    if (nb) memcpy(all, bb, sizeof *bb * (size_t)nb);
    if (nr) memcpy(all + nb, rest, sizeof *rest * (size_t)nr);
    int attach = dist_attach(&dr, models, n_models, all, nb + nr, N_VALUES);
    free(all);
    if (attach) goto fail;

    pool = r.contrastive ? aqa_exemplar_pool_new(r.train, r.mode) : NULL;
    if (r.contrastive && !pool) goto fail;
    aqa_loader_config lc;
    aqa_loader_config_init(&lc);
    lc.batch_size = (int)kv_int(&c, "batch");
    lc.workers = (int)kv_int(&c, "workers");
    lc.seed = (uint64_t)kv_int(&c, "seed");
    lc.shuffle = true;
    lc.drop_last = r.train->n_items > (size_t)lc.batch_size;
    lc.clip_feat = !r.frames && r.mcfg.use_vlp;
    lc.i3d_feat = !r.frames;
    lc.clip_frames = r.frames && r.clip;
    lc.i3d_clips = r.frames;
    if (r.clip) lc.clip_tf = aqa_frame_transform_clip((int)r.clip->cfg.image_resolution);
    lc.i3d_tf = aqa_frame_transform_i3d((int)kv_int(&c, "i3d_short"), (int)kv_int(&c, "i3d_size"));
    lc.augment = kv_bool(&c, "augment");
    lc.exemplars = pool;
    lc.n_exemplars = 1;
    dist_loader(&dr, &lc, false);
    ld = aqa_loader_new(r.train, &lc);
    if (!ld) goto fail;
    const long max_steps = kv_int(&c, "max_steps");
    const int eval_every = (int)kv_int(&c, "eval_every");
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
            double v[N_VALUES];
            train_step_ctx tc = {&r, teacher};
            if (dist_step(&dr, b, train_micro, &tc, v)) {
                aqa_batch_free(b);
                goto fail;
            }
            /* every term must be finite (the values of all micro-batches, on every rank) */
            for (int k = 0; k < AQA_MVLA_NUM_LOSSES; k++) {
                if (!v[1 + AQA_MVLA_NUM_LOSSES + k]) continue;
                if (!isfinite(v[1 + k])) {
                    char keys[512];
                    batch_keys(r.train, b, keys, sizeof keys);
                    fprintf(stderr, "\ntrain_mvla: epoch %d step %lld: loss term \"%s\" is %g on the batch of videos "
                                    "%s (their inputs read as finite: lower the learning rates); stopping\n",
                            epoch + 1, (long long)step, aqa_mvla_loss_name((aqa_mvla_loss)k), v[1 + k], keys);
                    aqa_batch_free(b);
                    goto done;
                }
                sums[k] += v[1 + k];
                counts[k]++;
            }
            double lv = v[0];
            if (aqa_optim_step(opt)) {
                aqa_batch_free(b);
                goto fail;
            }
            loss_sum += lv;
            n_steps++;
            step++;
            seen += (size_t)b->batch_rows;
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
            is_best = dr.main && run_store_better(&rs, res.m.spearman);
            if (dr.main)
                fprintf(stderr, "epoch %d/%d: test rho %.4f R-l2 %.4f MSE %.3f AIoU@0.5 %.4f AIoU@0.75 %.4f (%.1f s)%s\n",
                        epoch + 1, epochs, res.m.spearman, res.m.rl2_x100, res.m.mse, res.aiou50, res.aiou75,
                        res.seconds, is_best ? " best" : "");
        }
        /* the epoch's record, then the commit (checkpoints, best, best.txt, log.jsonl) by rank 0:
         * every rank holds the same model */
        cJSON *rec = cJSON_CreateObject();
        cJSON_AddNumberToObject(rec, "epoch", epoch + 1);
        cJSON_AddNumberToObject(rec, "step", (double)step);
        json_num(rec, "train_loss", n_steps ? loss_sum / n_steps : NAN);
        for (int k = 0; k < AQA_MVLA_NUM_LOSSES; k++)
            if (counts[k]) json_num(rec, aqa_mvla_loss_name((aqa_mvla_loss)k), sums[k] / counts[k]);
        json_num(rec, "samples_per_s", secs > 0 ? (double)seen / secs : NAN);
        json_num(rec, "epoch_seconds", secs);
        json_num(rec, "teacher_forcing", teacher);
        if (do_eval) {
            json_num(rec, "rho", res.m.spearman);
            json_num(rec, "rl2_x100", res.m.rl2_x100);
            json_num(rec, "mse", res.m.mse);
            json_num(rec, "aiou50", res.aiou50);
            json_num(rec, "aiou75", res.aiou75);
            cJSON_AddBoolToObject(rec, "best", is_best);
        }
        char *line = cJSON_PrintUnformatted(rec);
        cJSON_Delete(rec);
        aqa_checkpoint ck = {.model = r.root, .optim = opt, .step = step, .epoch = epoch, .config_json = cfg_json};
        int bad = !line || (dr.main && run_store_commit(&rs, &ck, line, do_eval ? res.m.spearman : NAN));
        free(line);
        if (bad) goto fail;
    }
    if (res.n && dr.main) print_final(rs.record, rs.best_score);
    run_results_free(&res);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "train_mvla: %s\n", aqa_last_error());
done:
    run_store_free(&rs);
    aqa_loader_free(ld);
    aqa_exemplar_pool_free(pool);
    aqa_optim_free(opt);
    free(bb);
    free(rest);
    free(cfg_json);
    run_free(&r);
    dist_close(&dr);
    return rc;
}
