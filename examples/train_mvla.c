/* train_mvla.c: trains an assessment head with MVLA (the paper's "X-MVLA") or without it ("X").
 *
 *     examples/train_mvla --data DIR --features CACHE --out runs/tsa_mvla            (TSA-MVLA)
 *     examples/train_mvla --data DIR --features CACHE --out runs/tsa --no-mvla       (plain TSA)
 *     examples/train_mvla --config run.conf --epochs 50 --seeds 5                    (file + flags)
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
 * Protocol (model selection never looks at the test split).  --val-fraction (0.1) of the
 * training split, drawn with --val-seed, is held out as a validation split.  After each epoch
 * (every --eval-every): validation metrics; the checkpoint <out>/last.safetensors (atomic:
 * model, optimizer, step, RNG, settings) and <out>/best.safetensors when the validation rho
 * improved (an undefined rho, from a constant prediction, never beats a defined one; between
 * undefined ones the lower MSE wins).  At the end the test split is predicted once with the
 * selected checkpoint and once with the last, and both are reported: "name value" lines on
 * stdout (test_selected_*, test_last_*) and <out>/metrics.json.  With --val-fraction 0 nothing is
 * selected: the last checkpoint is reported.
 *
 * Published tables (TSA, CoRe) report each metric's best over the training epochs on the test
 * split.  For comparison with them, --test-each-epoch (on by default) also predicts the test
 * split after each validation and reports those maxima as test_best_epochs_* with their epochs:
 * an optimistic number, labelled as such, never used to select anything.
 *
 * The paper's per-dataset protocols: --target tes|pcs trains Fis-V's TES or PCS (the paper trains
 * and reports each, and their average); --folds TASK runs JIGSAWS' four folds of a task in
 * <out>/fold<k> (splits TASK/k/train and TASK/k/test) and reports rho as the Fisher-z average of
 * the folds' (the other metrics as their mean, each fold's rho in metrics.json).
 * scripts/paper_tables.sh runs whole tables with them (docs/paper_tables.md).
 *
 * --seeds N repeats the run with seeds seed, ..., seed + N - 1 in <out>/seed<s> and reports the
 * mean and the sample standard deviation of every reported metric (<out>/metrics.json and
 * seeds_* lines).  A correlation that is undefined (constant prediction) is reported as nan /
 * "undefined" and does not stop the run.
 *
 * Each epoch: a progress line on stderr (epoch, step, loss terms, samples/s, ETA), a summary line,
 * then the commit (examples/run_store.h): last.safetensors (the one commit point: model,
 * optimizer, step, RNG, settings and the epoch's record, which carries the selection state),
 * best.safetensors when validation improved, best.txt ("<epoch> <selection score>") and the
 * epoch's JSON line in <out>/log.jsonl, so that a kill or a full disk at any moment loses no
 * completed epoch.  --resume continues from last (an error when there is none, or when a setting
 * of the model, data or optimiser differs from the checkpoint's: the message lists them); a
 * finished run resumed only reports again.  A loss term that turns NaN or infinite stops the run
 * with a message naming the term and the videos of the batch (a NaN in a feature file is named
 * with its file when read).  The resolved settings are written to <out>/config.txt (re-loadable
 * with --config).
 *
 * Data-parallel under mpirun or WORLD_SIZE/RANK (examples/dist_run.h, docs/distributed.md):
 * every rank trains its micro-batches of each batch and predicts its block of each evaluation;
 * rank 0 prints, logs and writes the files. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "examples/mvla_run.h"
#include "examples/run_store.h"
#include "io/atomic_file.h"
#include "nn/checkpoint.h"

/* The reported metrics, in this order. */
#define N_METRICS 5
static const char *const metric_names[N_METRICS] = {"rho", "rl2_x100", "mse", "aiou50", "aiou75"};
static const bool metric_higher_better[N_METRICS] = {true, false, false, true, true};

static void metrics_of(const run_results *res, double v[N_METRICS]) {
    v[0] = res->m.spearman, v[1] = res->m.rl2_x100, v[2] = res->m.mse, v[3] = res->aiou50, v[4] = res->aiou75;
}

#define JIG_FOLDS 4 /* JIGSAWS' cross-validation folds per task */

/* What one seed's run reports (with --folds: the average of its folds, fold_average). */
typedef struct run_report {
    int selected_epoch;           /* 1-based epoch of the selected checkpoint (0 before any) */
    bool selected_by_val;         /* chosen on the validation split (false: no validation, the last) */
    double val[N_METRICS];        /* validation metrics of the selected epoch */
    int last_epoch;               /* 1-based epoch of the last checkpoint */
    double selected[N_METRICS];   /* test metrics of the selected checkpoint */
    double last[N_METRICS];       /* test metrics of the last checkpoint */
    double best[N_METRICS];       /* each metric's best over epochs on the test split (TSA/CoRe style) */
    int best_epoch[N_METRICS];    /* its epoch (0: never evaluated) */
    int n_folds;                  /* --folds: the folds averaged into this report (0: one run) */
    double fold_rho[JIG_FOLDS][2]; /* --folds: each fold's test rho, selected and last checkpoint */
} run_report;

static void report_init(run_report *rp) {
    memset(rp, 0, sizeof *rp);
    for (int k = 0; k < N_METRICS; k++) rp->val[k] = rp->selected[k] = rp->last[k] = rp->best[k] = NAN;
}

/* The number model selection maximises (run_store keeps the epoch where it is highest): the
 * validation rho; an undefined rho (a constant prediction) ranks below every defined one, and
 * among undefined ones the lower MSE wins (scores in (-3, -2)); ties keep the earlier epoch. */
static double selection_score(const double val[N_METRICS]) {
    if (!isnan(val[0])) return val[0];
    return isnan(val[2]) ? -3 + 1e-9 : -3 + 1 / (1 + val[2]);
}

/* A number of a log record (JSON null when not finite). */
static void json_num(cJSON *o, const char *key, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, key, v);
    else cJSON_AddNullToObject(o, key);
}

static void json_metrics(cJSON *o, const char *prefix, const double v[N_METRICS]) {
    char key[64];
    for (int k = 0; k < N_METRICS; k++) {
        snprintf(key, sizeof key, "%s%s", prefix, metric_names[k]);
        json_num(o, key, v[k]);
    }
}

/* A number of a parsed record (NAN when absent or null). */
static double json_get(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* A metric for people: "0.9123" or "undefined". */
static const char *human(double v, char *buf, size_t n) {
    if (isnan(v)) snprintf(buf, n, "undefined");
    else snprintf(buf, n, "%.4f", v);
    return buf;
}

/* ---- the selection state ---------------------------------------------------------------------- */

/* Each epoch's record carries the selection state so far (the selected epoch, its validation
 * metrics, the test bests over epochs), so that last.safetensors, the commit point, holds it. */
static void put_state(cJSON *o, const run_report *rp) {
    cJSON_AddNumberToObject(o, "selected_epoch", rp->selected_epoch);
    json_metrics(o, "selected_val_", rp->val);
    char key[64];
    for (int k = 0; k < N_METRICS; k++) {
        snprintf(key, sizeof key, "test_best_%s", metric_names[k]);
        json_num(o, key, rp->best[k]);
        snprintf(key, sizeof key, "test_best_%s_epoch", metric_names[k]);
        cJSON_AddNumberToObject(o, key, rp->best_epoch[k]);
    }
}

/* The state of checkpoint `last`'s record (every rank reads the same committed file). */
static int load_state(const char *last, run_report *rp) {
    aqa_st_file *f;
    if (aqa_st_open(last, &f)) return 1;
    cJSON *o = cJSON_Parse(aqa_st_metadata(f, "run.record") ? aqa_st_metadata(f, "run.record") : "");
    aqa_st_close(f);
    if (!o) return (aqa_fail(AQA_EFORMAT, "%s: no run record", last), 1);
    double e = json_get(o, "selected_epoch");
    rp->selected_epoch = isnan(e) ? 0 : (int)e;
    char key[64];
    for (int k = 0; k < N_METRICS; k++) {
        snprintf(key, sizeof key, "selected_val_%s", metric_names[k]);
        rp->val[k] = json_get(o, key);
        snprintf(key, sizeof key, "test_best_%s", metric_names[k]);
        rp->best[k] = json_get(o, key);
        snprintf(key, sizeof key, "test_best_%s_epoch", metric_names[k]);
        e = json_get(o, key);
        rp->best_epoch[k] = isnan(e) ? 0 : (int)e;
    }
    cJSON_Delete(o);
    return 0;
}

/* Settings a resumed run may change: where things are and how the run is driven, not the model,
 * the data it learns from or the optimiser. */
static const char *const RUNTIME_KEYS[] = {"epochs", "resume", "progress", "workers", "device", "max_steps",
                                           "eval_every", "data", "features", "clip_features", "texts", "out",
                                           "skip_bad", "test_each_epoch", "seeds", NULL};

/* --resume: `last` must hold this run's settings.  0, or 1 after a message. */
static int check_resume(kv_config *c, const char *last) {
    aqa_st_file *f;
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

/* ---- one run --------------------------------------------------------------------------------- */

/* Predicts the test split with the current model into v[]. */
static int test_metrics(run_ctx *r, double v[N_METRICS]) {
    run_results res;
    if (run_evaluate(r, r->test, false, false, &res)) return 1;
    metrics_of(&res, v);
    run_results_free(&res);
    return 0;
}

/* Trains one seed's run in folder `out` (settings in c, ranks dr) and fills *rp.  `resume`: continue
 * from its last checkpoint (whose settings must match).  Returns 0 or 1. */
static int train_one(kv_config *c, dist_run *dr, const char *out, bool resume, run_report *rp) {
    report_init(rp);
    char path[1500], last[1024], best[1024];
    snprintf(last, sizeof last, "%.900s/last.safetensors", out);
    snprintf(best, sizeof best, "%.900s/best.safetensors", out);
    if (resume && check_resume(c, last)) return 1;
    if (dr->main && mkdir_p(out)) {
        fprintf(stderr, "train_mvla: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof path, "%s/config.txt", out);
    if (dr->main && kv_save(c, path)) {
        fprintf(stderr, "train_mvla: %s\n", aqa_last_error());
        return 1;
    }
    run_ctx r;
    run_trainer tr;
    memset(&tr, 0, sizeof tr);
    run_store rs = {0};
    int rc = 1;
    char *cfg_json = kv_to_json(c);
    char h1[32], h2[32];
    if (run_open(&r, c, RUN_OPEN_TEST | RUN_OPEN_VAL)) goto fail;
    r.dist = dr;
    if (!r.test) {
        fprintf(stderr, "train_mvla: no test split\n");
        goto done;
    }
    if (dr->main)
        fprintf(stderr, "train_mvla: %s %s, %zu training / %zu validation / %zu test videos, head %s%s, setting %s, seed %ld, "
                    "%lld parameters (%lld trainable)\n",
            kv_str(c, "dataset"), r.mcfg.scheme == AQA_MVLA_FAM ? "FAM" : "FUM", r.train->n_items,
            r.val ? r.val->n_items : 0, r.test->n_items, kv_str(c, "head"), r.mcfg.use_vlp ? "-MVLA" : "",
            aqa_exemplar_mode_name(r.mode), kv_int(c, "seed"), (long long)aqa_module_num_params(r.root, false),
            (long long)aqa_module_num_params(r.root, true));
    if (dr->main) {
        char fum[64] = "";
        if (r.mcfg.scheme == AQA_MVLA_FUM)
            snprintf(fum, sizeof fum, "; FUM stages start at clips %lld, %lld", (long long)r.mcfg.fum_boundaries[0],
                     (long long)r.mcfg.fum_boundaries[1]);
        fprintf(stderr, "train_mvla: CLIP text encoder %s, I3D %s%s\n",
                r.texts ? (r.texts->finetune ? "fine-tuned" : "frozen") : r.mcfg.use_vlp ? "frozen (cached tables)" : "unused",
                r.frames ? "fine-tuned (frame mode)" : "frozen (cached features)", fum);
        char cpu[256];
        fprintf(stderr, "train_mvla: %s\n", aqa_cpu_info(cpu, sizeof cpu));
    }
    if (dr->main && r.train->summary.n_items != r.train->summary.n_split) aqa_vd_print_summary(r.train, stderr);
    if (run_trainer_new(&r, &tr)) goto fail;

    /* the run folder (rank 0's): resuming finishes an interrupted commit first; a fresh run
     * removes the previous run's files */
    run_side sides[2];
    int n_sides = run_sides(&r, sides);
    if (dr->main) {
        if (run_store_open(&rs, out, sides, n_sides, resume)) goto fail;
        if (rs.n_cleaned) fprintf(stderr, "train_mvla: removed %d stale temporary file(s) in %s\n", rs.n_cleaned, out);
        if (rs.n_replaced)
            fprintf(stderr, "train_mvla: a fresh run (no --resume): removed %d file(s) of the previous run in %s\n",
                    rs.n_replaced, out);
    }
    int start_epoch = 0;
    double best_score = -INFINITY; /* run_store's selection score, on every rank */
    if (resume) {
        aqa_checkpoint ck = {.model = r.root, .optim = tr.opt};
        if (aqa_checkpoint_load(last, &ck)) goto fail;
        free(ck.loaded_config);
        if (run_load_sidecars(&r, last)) goto fail;
        start_epoch = (int)ck.epoch + 1;
        rp->last_epoch = start_epoch;
        tr.step = ck.step;
        if (load_state(last, rp)) goto fail;
        if (rp->selected_epoch > 0) best_score = selection_score(rp->val);
        if (dr->main)
            fprintf(stderr, "train_mvla: resumed from %s at epoch %d, step %lld\n", last, start_epoch, (long long)tr.step);
    }

    const int epochs = (int)kv_int(c, "epochs");
    if (resume && start_epoch >= epochs && dr->main)
        fprintf(stderr, "train_mvla: the run finished (%d epoch%s); its report again:\n", start_epoch, start_epoch > 1 ? "s" : "");
    const long max_steps = kv_int(c, "max_steps");
    const int eval_every = (int)kv_int(c, "eval_every");
    const bool each_epoch = kv_bool(c, "test_each_epoch");
    bool stop = false;
    for (int epoch = start_epoch; epoch < epochs && !stop; epoch++) {
        run_epoch_stats es;
        int er = run_train_epoch(&r, &tr, epoch, epochs, max_steps, kv_bool(c, "progress"), &es, &stop);
        if (er == 1) goto fail;
        if (er == 2) goto done;
        rp->last_epoch = epoch + 1;
        bool do_eval = (epoch + 1) % eval_every == 0 || epoch + 1 == epochs || stop;
        double val[N_METRICS], test[N_METRICS], score = NAN;
        bool improved = false;
        for (int k = 0; k < N_METRICS; k++) val[k] = test[k] = NAN;
        if (do_eval && r.val) {
            run_results res;
            if (run_evaluate(&r, r.val, false, false, &res)) goto fail;
            metrics_of(&res, val);
            run_results_free(&res);
            score = selection_score(val);
            improved = score > best_score; /* run_store_better's rule, on every rank */
        }
        if (do_eval && each_epoch) {
            if (test_metrics(&r, test)) goto fail;
            for (int k = 0; k < N_METRICS; k++) {
                if (isnan(test[k])) continue;
                bool better = isnan(rp->best[k]) || (metric_higher_better[k] ? test[k] > rp->best[k] : test[k] < rp->best[k]);
                if (better) rp->best[k] = test[k], rp->best_epoch[k] = epoch + 1;
            }
        }
        if (improved) {
            best_score = score;
            rp->selected_epoch = epoch + 1;
            memcpy(rp->val, val, sizeof val);
        }
        if (do_eval && dr->main)
            fprintf(stderr, "epoch %d/%d: validation rho %s MSE %.3f%s | test rho %s (each-epoch report only)\n", epoch + 1,
                    epochs, human(val[0], h1, sizeof h1), val[2], improved ? " (selected)" : "", human(test[0], h2, sizeof h2));
        /* the epoch's record, then the commit by rank 0 (every rank holds the same model and
         * metrics): last, best when selected, best.txt, log.jsonl */
        cJSON *rec = cJSON_CreateObject();
        cJSON_AddNumberToObject(rec, "epoch", epoch + 1);
        cJSON_AddNumberToObject(rec, "step", (double)tr.step);
        json_num(rec, "train_loss", es.n_steps ? es.loss_sum / es.n_steps : NAN);
        for (int k = 0; k < AQA_MVLA_NUM_LOSSES; k++)
            if (es.counts[k]) json_num(rec, aqa_mvla_loss_name((aqa_mvla_loss)k), es.sums[k] / es.counts[k]);
        json_num(rec, "samples_per_s", es.seconds > 0 ? (double)es.seen / es.seconds : NAN);
        json_num(rec, "epoch_seconds", es.seconds);
        json_num(rec, "teacher_forcing", es.teacher);
        if (do_eval && r.val) {
            json_metrics(rec, "val_", val);
            cJSON_AddBoolToObject(rec, "selected", improved);
        }
        if (do_eval && each_epoch) json_metrics(rec, "test_", test);
        put_state(rec, rp);
        char *line = cJSON_PrintUnformatted(rec);
        cJSON_Delete(rec);
        aqa_checkpoint ck = {.model = r.root, .optim = tr.opt, .step = tr.step, .epoch = epoch, .config_json = cfg_json};
        int bad = !line || (dr->main && run_store_commit(&rs, &ck, line, score));
        free(line);
        if (bad) goto fail;
    }

    /* the test split, once for the last checkpoint and once for the selected one */
    if (!rp->last_epoch) {
        if (dr->main) fprintf(stderr, "train_mvla: nothing trained (epochs %d)\n", epochs);
        goto done;
    }
    if (test_metrics(&r, rp->last)) goto fail;
    rp->selected_by_val = r.val && rp->selected_epoch > 0;
    if (!rp->selected_by_val || rp->selected_epoch == rp->last_epoch) {
        rp->selected_epoch = rp->last_epoch;
        memcpy(rp->selected, rp->last, sizeof rp->last);
    } else {
        if (aqa_checkpoint_load_model(best, r.root, NULL) || run_load_sidecars(&r, best)) goto fail;
        if (test_metrics(&r, rp->selected)) goto fail;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "train_mvla: %s\n", aqa_last_error());
done:
    run_store_free(&rs);
    run_trainer_free(&tr);
    free(cfg_json);
    run_free(&r);
    return rc;
}

/* ---- reports --------------------------------------------------------------------------------- */

static void print_report(const run_report *rp, bool has_best) {
    if (rp->n_folds) printf("folds %d (rho: their Fisher-z average, other metrics: their mean)\n", rp->n_folds);
    printf("selected_epoch %d\nselected_by %s\n", rp->selected_epoch, rp->selected_by_val ? "validation_rho" : "last_epoch");
    printf("selected_val_rho %.6g\n", rp->val[0]);
    for (int k = 0; k < N_METRICS; k++) printf("test_selected_%s %.6g\n", metric_names[k], rp->selected[k]);
    printf("last_epoch %d\n", rp->last_epoch);
    for (int k = 0; k < N_METRICS; k++) printf("test_last_%s %.6g\n", metric_names[k], rp->last[k]);
    if (!has_best) return;
    for (int k = 0; k < N_METRICS; k++)
        printf("test_best_epochs_%s %.6g\ntest_best_epochs_%s_epoch %d\n", metric_names[k], rp->best[k], metric_names[k],
               rp->best_epoch[k]);
    char h[3][32];
    fprintf(stderr,
            "train_mvla: test rho %s with the checkpoint of epoch %d (%s), %s with the last (epoch %d); best over epochs "
            "on the test split, as TSA and CoRe report (optimistic, not a model selection): %s (epoch %d)\n",
            human(rp->selected[0], h[0], sizeof h[0]), rp->selected_epoch,
            rp->selected_by_val ? "chosen on the validation split" : "no validation split: the last",
            human(rp->last[0], h[1], sizeof h[1]), rp->last_epoch, human(rp->best[0], h[2], sizeof h[2]), rp->best_epoch[0]);
}

/* Mean and sample standard deviation (n - 1) of x[n]; NAN when any value is undefined. */
static void mean_std(const double *x, int n, double *mean, double *sd) {
    double s = 0, q = 0;
    for (int i = 0; i < n; i++) s += x[i];
    *mean = s / n;
    for (int i = 0; i < n; i++) q += (x[i] - *mean) * (x[i] - *mean);
    *sd = n > 1 ? sqrt(q / (n - 1)) : 0;
}

/* The Fisher-z average of correlations r[n] (NAN when one is undefined or +-1). */
static double fisher_mean(const double *r, int n) {
    double m;
    for (int i = 0; i < n; i++)
        if (isnan(r[i])) return NAN;
    return aqa_fisher_z_mean(r, (size_t)n, &m) == AQA_OK ? m : NAN;
}

/* One seed's report from its folds' (JIGSAWS, as the paper and USDL/MUSDL report it): rho as the
 * Fisher-z average of the folds' correlations, the other metrics as their plain mean; the
 * epochs are the last fold's. */
static void fold_average(const run_report *f, int n, run_report *out) {
    report_init(out);
    out->n_folds = n;
    out->selected_by_val = true;
    for (int i = 0; i < n; i++) {
        out->selected_by_val &= f[i].selected_by_val;
        out->fold_rho[i][0] = f[i].selected[0];
        out->fold_rho[i][1] = f[i].last[0];
    }
    out->selected_epoch = f[n - 1].selected_epoch;
    out->last_epoch = f[n - 1].last_epoch;
    for (int k = 0; k < N_METRICS; k++) {
        double v[4][JIG_FOLDS];
        for (int i = 0; i < n; i++) v[0][i] = f[i].val[k], v[1][i] = f[i].selected[k], v[2][i] = f[i].last[k], v[3][i] = f[i].best[k];
        double *dst[4] = {&out->val[k], &out->selected[k], &out->last[k], &out->best[k]};
        for (int w = 0; w < 4; w++) {
            double m, sd;
            mean_std(v[w], n, &m, &sd);
            *dst[w] = k == 0 ? fisher_mean(v[w], n) : m;
        }
        out->best_epoch[k] = f[n - 1].best_epoch[k];
    }
}

/* <out>/metrics.json: every seed's report, and with several seeds the mean and std. */
static int write_metrics_json(const char *out, const run_report *rp, const long *seeds, int n, bool has_best) {
    cJSON *root = cJSON_CreateObject();
    char key[96], cpu[256];
    cJSON_AddStringToObject(root, "cpu", aqa_cpu_info(cpu, sizeof cpu)); /* float32 results depend on it */
    cJSON *runs = cJSON_AddArrayToObject(root, "runs");
    for (int i = 0; i < n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "seed", (double)seeds[i]);
        cJSON_AddNumberToObject(o, "selected_epoch", rp[i].selected_epoch);
        cJSON_AddStringToObject(o, "selected_by", rp[i].selected_by_val ? "validation_rho" : "last_epoch");
        cJSON_AddNumberToObject(o, "last_epoch", rp[i].last_epoch);
        json_metrics(o, "val_", rp[i].val);
        json_metrics(o, "test_selected_", rp[i].selected);
        json_metrics(o, "test_last_", rp[i].last);
        if (rp[i].n_folds) { /* rho above is the folds' Fisher-z average */
            cJSON *fs = cJSON_AddArrayToObject(o, "folds");
            for (int f = 0; f < rp[i].n_folds; f++) {
                cJSON *fo = cJSON_CreateObject();
                json_num(fo, "test_selected_rho", rp[i].fold_rho[f][0]);
                json_num(fo, "test_last_rho", rp[i].fold_rho[f][1]);
                cJSON_AddItemToArray(fs, fo);
            }
        }
        if (has_best) {
            json_metrics(o, "test_best_epochs_", rp[i].best);
            for (int k = 0; k < N_METRICS; k++) {
                snprintf(key, sizeof key, "test_best_epochs_%s_epoch", metric_names[k]);
                cJSON_AddNumberToObject(o, key, rp[i].best_epoch[k]);
            }
        }
        cJSON_AddItemToArray(runs, o);
    }
    if (n > 1) {
        const char *which[2] = {"test_selected_", "test_last_"};
        for (int w = 0; w < 2; w++)
            for (int k = 0; k < N_METRICS; k++) {
                double x[n], m, sd;
                for (int i = 0; i < n; i++) x[i] = w ? rp[i].last[k] : rp[i].selected[k];
                mean_std(x, n, &m, &sd);
                snprintf(key, sizeof key, "%s%s_mean", which[w], metric_names[k]);
                json_num(root, key, m);
                snprintf(key, sizeof key, "%s%s_std", which[w], metric_names[k]);
                json_num(root, key, sd);
            }
    }
    char *text = cJSON_Print(root), path[1200];
    cJSON_Delete(root);
    snprintf(path, sizeof path, "%.1100s/metrics.json", out);
    int rc = !text || aqa_atomic_write_file(path, text, strlen(text)) != AQA_OK;
    free(text);
    return rc;
}

int main(int argc, char **argv) {
    kv_config c = {.program = "train_mvla"};
    run_def_keys(&c);
    run_def_train_keys(&c);
    kv_def(&c, "out", "runs/mvla", "run folder (checkpoints, log.jsonl, config.txt, metrics.json)");
    kv_def_bool(&c, "progress", "true", "progress line on stderr");
    int pr = kv_parse_args(&c, argc, argv, "--data DIR [--features CACHE] [--out DIR] [settings]");
    if (pr) return kv_exit_code(pr);
    if (!kv_has(&c, "data")) {
        fprintf(stderr, "train_mvla: --data is required\n");
        return 1;
    }
    const long n_seeds = kv_int(&c, "seeds"), seed0 = kv_int(&c, "seed");
    const bool resume = kv_bool(&c, "resume");
    dist_run dr; /* ranks from the launcher (one when started alone); rank 0 writes the files */
    if (dist_open(&dr, &c, "train_mvla")) return 1;
    run_resolve_clip(&c); /* the CLIP a feature cache was made with, when --clip is not given */
    char out[1024];
    snprintf(out, sizeof out, "%.900s", kv_str(&c, "out"));
    const bool has_best = kv_bool(&c, "test_each_epoch");
    run_report *rp = calloc((size_t)n_seeds, sizeof *rp);
    long *seeds = calloc((size_t)n_seeds, sizeof *seeds);
    int rc = !rp || !seeds;
    char task[64]; /* a copy: kv_set below replaces the setting's string */
    snprintf(task, sizeof task, "%.60s", kv_str(&c, "folds"));
    const int n_folds = task[0] ? JIG_FOLDS : 1;
    if (task[0] && strcmp(kv_str(&c, "dataset"), "jigsaws")) {
        fprintf(stderr, "train_mvla: --folds %s: the folds are JIGSAWS' (give --dataset jigsaws)\n", task);
        rc = 1;
    }
    for (long i = 0; i < n_seeds && !rc; i++) {
        char seed_dir[1000], v[32];
        seeds[i] = seed0 + i;
        snprintf(v, sizeof v, "%ld", seeds[i]);
        kv_set(&c, "seed", v, "--seeds");
        if (n_seeds > 1) {
            snprintf(seed_dir, sizeof seed_dir, "%.900s/seed%ld", out, seeds[i]);
            kv_set(&c, "seeds", "1", "--seeds"); /* each seed's config.txt reruns that seed alone */
            if (dr.main) fprintf(stderr, "train_mvla: seed %ld (%ld of %ld) in %s\n", seeds[i], i + 1, n_seeds, seed_dir);
        } else {
            snprintf(seed_dir, sizeof seed_dir, "%.900s", out);
        }
        if (task[0]) kv_set(&c, "folds", "", "--folds"); /* each fold's config.txt reruns that fold alone */
        run_report fr[JIG_FOLDS];
        for (int f = 0; f < n_folds && !rc; f++) {
            char sub[1100];
            if (task[0]) {
                char split[96];
                snprintf(sub, sizeof sub, "%.1000s/fold%d", seed_dir, f);
                snprintf(split, sizeof split, "%s/%d/train", task, f);
                kv_set(&c, "train_split", split, "--folds");
                snprintf(split, sizeof split, "%s/%d/test", task, f);
                kv_set(&c, "test_split", split, "--folds");
                if (dr.main) fprintf(stderr, "train_mvla: %s fold %d of %d in %s\n", task, f + 1, n_folds, sub);
            } else {
                snprintf(sub, sizeof sub, "%s", seed_dir);
            }
            kv_set(&c, "out", sub, "--seeds");
            /* --resume: a run folder without a checkpoint (its run had not started) starts fresh
             * when there are several seeds or folds; with one run, nothing to resume is an error */
            char last[1200];
            snprintf(last, sizeof last, "%.1100s/last.safetensors", sub);
            bool several = n_seeds > 1 || n_folds > 1;
            bool resume_this = resume && (!several || access(last, F_OK) == 0);
            if (resume && !several && access(last, F_OK) != 0) {
                fprintf(stderr, "train_mvla: --resume: %s does not exist (nothing to resume; start without --resume)\n",
                        last);
                rc = 1;
                break;
            }
            rc = train_one(&c, &dr, sub, resume_this, task[0] ? &fr[f] : &rp[i]);
            if (!rc && dr.main && task[0]) printf("fold %d\n", f);
            if (!rc && dr.main && task[0]) print_report(&fr[f], has_best);
        }
        if (!rc && task[0]) fold_average(fr, n_folds, &rp[i]);
        if (!rc && dr.main && n_seeds > 1) printf("seed %ld\n", seeds[i]);
        if (!rc && dr.main) print_report(&rp[i], has_best);
    }
    if (!rc && dr.main && n_seeds > 1) {
        const char *which[2] = {"test_selected_", "test_last_"};
        for (int w = 0; w < 2; w++)
            for (int k = 0; k < N_METRICS; k++) {
                double x[n_seeds], m, sd;
                for (long i = 0; i < n_seeds; i++) x[i] = w ? rp[i].last[k] : rp[i].selected[k];
                mean_std(x, (int)n_seeds, &m, &sd);
                printf("seeds_%s%s_mean %.6g\nseeds_%s%s_std %.6g\n", which[w], metric_names[k], m, which[w],
                       metric_names[k], sd);
            }
        char h1[32], h2[32];
        double x[n_seeds], m, sd;
        for (long i = 0; i < n_seeds; i++) x[i] = rp[i].selected[0];
        mean_std(x, (int)n_seeds, &m, &sd);
        fprintf(stderr, "train_mvla: %ld seeds: test rho (validation-selected) %s +- %s\n", n_seeds, human(m, h1, sizeof h1),
                human(sd, h2, sizeof h2));
    }
    if (!rc && dr.main && write_metrics_json(out, rp, seeds, (int)n_seeds, has_best)) {
        fprintf(stderr, "train_mvla: cannot write %s/metrics.json\n", out);
        rc = 1;
    }
    free(rp);
    free(seeds);
    dist_close(&dr);
    return rc;
}
