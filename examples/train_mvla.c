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
 * visual feature extraction (the VLP temporal transformer and projections, I3D in frame mode)
 * and lr_head (1e-3) for SCA, segmentation, temperature and the head.
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
 * --seeds N repeats the run with seeds seed, ..., seed + N - 1 in <out>/seed<s> and reports the
 * mean and the sample standard deviation of every reported metric (<out>/metrics.json and
 * seeds_* lines).  A correlation that is undefined (constant prediction) is reported as nan /
 * "undefined" and does not stop the run.
 *
 * Each epoch: a progress line on stderr (epoch, step, loss terms, samples/s, ETA), a summary line,
 * and a JSON line appended to <out>/log.jsonl.  --resume continues from last.safetensors (and
 * the selection state in <out>/selection.txt); a finished run resumed only reports again.  A loss
 * term that turns NaN or infinite stops the run with a message naming the term.  The resolved
 * settings are written to <out>/config.txt (re-loadable with --config).
 *
 * Data-parallel under mpirun or WORLD_SIZE/RANK (examples/dist_run.h, docs/distributed.md):
 * every rank trains its micro-batches of each batch and predicts its block of each evaluation;
 * rank 0 prints, logs and writes the files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "examples/mvla_run.h"
#include "io/atomic_file.h"
#include "nn/checkpoint.h"

/* The reported metrics, in this order. */
#define N_METRICS 5
static const char *const metric_names[N_METRICS] = {"rho", "rl2_x100", "mse", "aiou50", "aiou75"};
static const bool metric_higher_better[N_METRICS] = {true, false, false, true, true};

static void metrics_of(const run_results *res, double v[N_METRICS]) {
    v[0] = res->m.spearman, v[1] = res->m.rl2_x100, v[2] = res->m.mse, v[3] = res->aiou50, v[4] = res->aiou75;
}

/* What one seed's run reports. */
typedef struct run_report {
    int selected_epoch;           /* 1-based epoch of the selected checkpoint (0 before any) */
    bool selected_by_val;         /* chosen on the validation split (false: no validation, the last) */
    double val[N_METRICS];        /* validation metrics of the selected epoch */
    int last_epoch;               /* 1-based epoch of the last checkpoint */
    double selected[N_METRICS];   /* test metrics of the selected checkpoint */
    double last[N_METRICS];       /* test metrics of the last checkpoint */
    double best[N_METRICS];       /* each metric's best over epochs on the test split (TSA/CoRe style) */
    int best_epoch[N_METRICS];    /* its epoch (0: never evaluated) */
} run_report;

static void report_init(run_report *rp) {
    memset(rp, 0, sizeof *rp);
    for (int k = 0; k < N_METRICS; k++) rp->val[k] = rp->selected[k] = rp->last[k] = rp->best[k] = NAN;
}

/* Whether validation metrics a beat b: a defined rho beats an undefined one; two defined ones
 * compare by rho, two undefined ones by MSE (lower wins); ties keep the earlier epoch. */
static bool val_better(const double a[N_METRICS], const double b[N_METRICS]) {
    if (isnan(a[0]) != isnan(b[0])) return !isnan(a[0]);
    if (!isnan(a[0])) return a[0] > b[0];
    return a[2] < b[2] || (!isnan(a[2]) && isnan(b[2]));
}

static void json_num(FILE *f, const char *key, double v, bool comma) {
    if (isfinite(v)) fprintf(f, "%s\"%s\": %.17g", comma ? ", " : "", key, v);
    else fprintf(f, "%s\"%s\": null", comma ? ", " : "", key);
}

static void json_metrics(FILE *f, const char *prefix, const double v[N_METRICS]) {
    char key[64];
    for (int k = 0; k < N_METRICS; k++) {
        snprintf(key, sizeof key, "%s%s", prefix, metric_names[k]);
        json_num(f, key, v[k], true);
    }
}

/* A metric for people: "0.9123" or "undefined". */
static const char *human(double v, char *buf, size_t n) {
    if (isnan(v)) snprintf(buf, n, "undefined");
    else snprintf(buf, n, "%.4f", v);
    return buf;
}

/* ---- the selection state (resume) ------------------------------------------------------------ */

/* <out>/selection.txt: the selected epoch, its validation metrics and the test bests so far. */
static int save_state(const char *out, const run_report *rp) {
    char path[1200], *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return 1;
    fprintf(f, "# train_mvla: model selection state (read by --resume)\nselected_epoch %d\n", rp->selected_epoch);
    for (int k = 0; k < N_METRICS; k++) fprintf(f, "val_%s %.17g\n", metric_names[k], rp->val[k]);
    for (int k = 0; k < N_METRICS; k++) fprintf(f, "test_best %s %.17g %d\n", metric_names[k], rp->best[k], rp->best_epoch[k]);
    fclose(f);
    snprintf(path, sizeof path, "%.1100s/selection.txt", out);
    int rc = aqa_atomic_write_file(path, buf, len) != AQA_OK;
    free(buf);
    return rc;
}

static void load_state(const char *out, run_report *rp) {
    char path[1200], line[256], name[64];
    snprintf(path, sizeof path, "%.1100s/selection.txt", out);
    FILE *f = fopen(path, "r");
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        double v;
        int e;
        if (sscanf(line, "selected_epoch %d", &e) == 1) rp->selected_epoch = e;
        for (int k = 0; k < N_METRICS; k++) {
            char key[64];
            snprintf(key, sizeof key, "val_%s %%lf", metric_names[k]);
            if (sscanf(line, key, &v) == 1) rp->val[k] = v;
            if (sscanf(line, "test_best %63s %lf %d", name, &v, &e) == 3 && !strcmp(name, metric_names[k]))
                rp->best[k] = v, rp->best_epoch[k] = e;
        }
    }
    fclose(f);
}

/* ---- one run --------------------------------------------------------------------------------- */

/* Saves the model (and, in frame mode, I3D beside it) as checkpoint `path`. */
static int save_checkpoint(run_ctx *r, run_trainer *t, const char *path, int epoch, const char *cfg_json) {
    aqa_checkpoint ck = {.model = r->root, .optim = t->opt, .step = t->step, .epoch = epoch, .config_json = cfg_json};
    if (aqa_checkpoint_save(path, &ck)) return 1;
    if (!r->i3d) return 0;
    char p[1200];
    snprintf(p, sizeof p, "%.1100s.i3d.safetensors", path);
    return aqa_module_save(&r->i3d->base, p, 0, NULL, NULL) != AQA_OK;
}

/* Predicts the test split with the current model into v[]. */
static int test_metrics(run_ctx *r, double v[N_METRICS]) {
    run_results res;
    if (run_evaluate(r, r->test, false, false, &res)) return 1;
    metrics_of(&res, v);
    run_results_free(&res);
    return 0;
}

/* Trains one seed's run in folder `out` (settings in c, ranks dr) and fills *rp.  Returns 0 or 1. */
static int train_one(kv_config *c, dist_run *dr, const char *out, run_report *rp) {
    report_init(rp);
    if (dr->main && mkdir_p(out)) {
        fprintf(stderr, "train_mvla: cannot create %s\n", out);
        return 1;
    }
    char path[1500], last[1024], best[1024];
    snprintf(last, sizeof last, "%.900s/last.safetensors", out);
    snprintf(best, sizeof best, "%.900s/best.safetensors", out);
    snprintf(path, sizeof path, "%s/config.txt", out);
    if (dr->main && kv_save(c, path)) {
        fprintf(stderr, "train_mvla: cannot write %s\n", path);
        return 1;
    }
    run_ctx r;
    run_trainer tr;
    memset(&tr, 0, sizeof tr);
    int rc = 1;
    char *cfg_json = kv_to_json(c);
    FILE *log = NULL;
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
    if (dr->main && r.train->summary.n_items != r.train->summary.n_split) aqa_vd_print_summary(r.train, stderr);
    if (run_trainer_new(&r, &tr)) goto fail;

    /* resume */
    int start_epoch = 0;
    if (kv_bool(c, "resume") && access(last, F_OK) == 0) {
        aqa_checkpoint ck = {.model = r.root, .optim = tr.opt};
        if (aqa_checkpoint_load(last, &ck)) goto fail;
        free(ck.loaded_config);
        if (r.i3d) {
            snprintf(path, sizeof path, "%s.i3d.safetensors", last);
            if (aqa_module_load(&r.i3d->base, path, true, NULL, NULL, NULL)) goto fail;
        }
        start_epoch = (int)ck.epoch + 1;
        rp->last_epoch = start_epoch;
        tr.step = ck.step;
        load_state(out, rp);
        if (dr->main)
            fprintf(stderr, "train_mvla: resumed from %s at epoch %d, step %lld\n", last, start_epoch, (long long)tr.step);
    }
    snprintf(path, sizeof path, "%s/log.jsonl", out);
    log = dr->main ? fopen(path, start_epoch ? "a" : "w") : fopen("/dev/null", "w");
    if (!log) {
        fprintf(stderr, "train_mvla: cannot write %s\n", path);
        goto done;
    }

    const int epochs = (int)kv_int(c, "epochs");
    const long max_steps = kv_int(c, "max_steps");
    const int eval_every = kv_int(c, "eval_every") > 0 ? (int)kv_int(c, "eval_every") : 1;
    const bool each_epoch = kv_bool(c, "test_each_epoch");
    bool stop = false;
    for (int epoch = start_epoch; epoch < epochs && !stop; epoch++) {
        run_epoch_stats es;
        int er = run_train_epoch(&r, &tr, epoch, epochs, max_steps, kv_bool(c, "progress"), &es, &stop);
        if (er == 1) goto fail;
        if (er == 2) goto done;
        rp->last_epoch = epoch + 1;
        bool do_eval = (epoch + 1) % eval_every == 0 || epoch + 1 == epochs || stop;
        double val[N_METRICS], test[N_METRICS];
        bool improved = false;
        for (int k = 0; k < N_METRICS; k++) val[k] = test[k] = NAN;
        if (do_eval && r.val) {
            run_results res;
            if (run_evaluate(&r, r.val, false, false, &res)) goto fail;
            metrics_of(&res, val);
            run_results_free(&res);
            improved = rp->selected_epoch == 0 || val_better(val, rp->val);
        }
        if (do_eval && each_epoch) {
            if (test_metrics(&r, test)) goto fail;
            for (int k = 0; k < N_METRICS; k++) {
                if (isnan(test[k])) continue;
                bool better = isnan(rp->best[k]) || (metric_higher_better[k] ? test[k] > rp->best[k] : test[k] < rp->best[k]);
                if (better) rp->best[k] = test[k], rp->best_epoch[k] = epoch + 1;
            }
        }
        if (do_eval && dr->main)
            fprintf(stderr, "epoch %d/%d: validation rho %s MSE %.3f%s | test rho %s (each-epoch report only)\n", epoch + 1,
                    epochs, human(val[0], h1, sizeof h1), val[2], improved ? " (selected)" : "", human(test[0], h2, sizeof h2));
        /* files by rank 0 (every rank holds the same model and the same metrics) */
        if (dr->main && save_checkpoint(&r, &tr, last, epoch, cfg_json)) goto fail;
        if (improved) {
            if (dr->main && save_checkpoint(&r, &tr, best, epoch, cfg_json)) goto fail;
            rp->selected_epoch = epoch + 1;
            memcpy(rp->val, val, sizeof val);
        }
        if (dr->main && save_state(out, rp)) goto fail;
        fprintf(log, "{\"epoch\": %d, \"step\": %lld", epoch + 1, (long long)tr.step);
        json_num(log, "train_loss", es.n_steps ? es.loss_sum / es.n_steps : NAN, true);
        for (int k = 0; k < AQA_MVLA_NUM_LOSSES; k++)
            if (es.counts[k]) json_num(log, aqa_mvla_loss_name((aqa_mvla_loss)k), es.sums[k] / es.counts[k], true);
        json_num(log, "samples_per_s", es.seconds > 0 ? (double)es.seen / es.seconds : NAN, true);
        json_num(log, "epoch_seconds", es.seconds, true);
        json_num(log, "teacher_forcing", es.teacher, true);
        if (do_eval && r.val) {
            json_metrics(log, "val_", val);
            fprintf(log, ", \"selected\": %s", improved ? "true" : "false");
        }
        if (do_eval && each_epoch) json_metrics(log, "test_", test);
        fprintf(log, "}\n");
        fflush(log);
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
        if (aqa_checkpoint_load_model(best, r.root, NULL)) goto fail;
        if (r.i3d) {
            snprintf(path, sizeof path, "%s.i3d.safetensors", best);
            if (aqa_module_load(&r.i3d->base, path, true, NULL, NULL, NULL)) goto fail;
        }
        if (test_metrics(&r, rp->selected)) goto fail;
    }
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "train_mvla: %s\n", aqa_last_error());
done:
    if (log) fclose(log);
    run_trainer_free(&tr);
    free(cfg_json);
    run_free(&r);
    return rc;
}

/* ---- reports --------------------------------------------------------------------------------- */

static void print_report(const run_report *rp, bool has_best) {
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

/* <out>/metrics.json: every seed's report, and with several seeds the mean and std. */
static int write_metrics_json(const char *out, const run_report *rp, const long *seeds, int n, bool has_best) {
    char path[1200], *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return 1;
    fprintf(f, "{\"runs\": [");
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s{\"seed\": %ld, \"selected_epoch\": %d, \"selected_by\": \"%s\", \"last_epoch\": %d", i ? ", " : "",
                seeds[i], rp[i].selected_epoch, rp[i].selected_by_val ? "validation_rho" : "last_epoch", rp[i].last_epoch);
        json_metrics(f, "val_", rp[i].val);
        json_metrics(f, "test_selected_", rp[i].selected);
        json_metrics(f, "test_last_", rp[i].last);
        if (has_best) {
            json_metrics(f, "test_best_epochs_", rp[i].best);
            for (int k = 0; k < N_METRICS; k++) fprintf(f, ", \"test_best_epochs_%s_epoch\": %d", metric_names[k], rp[i].best_epoch[k]);
        }
        fputc('}', f);
    }
    fputc(']', f);
    if (n > 1) {
        const char *which[2] = {"test_selected_", "test_last_"};
        for (int w = 0; w < 2; w++)
            for (int k = 0; k < N_METRICS; k++) {
                double x[n], m, sd;
                for (int i = 0; i < n; i++) x[i] = w ? rp[i].last[k] : rp[i].selected[k];
                mean_std(x, n, &m, &sd);
                char key[96];
                snprintf(key, sizeof key, "%s%s_mean", which[w], metric_names[k]);
                json_num(f, key, m, true);
                snprintf(key, sizeof key, "%s%s_std", which[w], metric_names[k]);
                json_num(f, key, sd, true);
            }
    }
    fprintf(f, "}\n");
    fclose(f);
    snprintf(path, sizeof path, "%.1100s/metrics.json", out);
    int rc = aqa_atomic_write_file(path, buf, len) != AQA_OK;
    free(buf);
    return rc;
}

int main(int argc, char **argv) {
    kv_config c = {.program = "train_mvla"};
    run_def_keys(&c);
    run_def_train_keys(&c);
    kv_def(&c, "out", "runs/mvla", "run folder (checkpoints, log.jsonl, config.txt, metrics.json)");
    kv_def(&c, "progress", "true", "progress line on stderr");
    int pr = kv_parse_args(&c, argc, argv, "--data DIR [--features CACHE] [--out DIR] [settings]");
    if (pr) return pr == 2 ? 0 : 1;
    if (!kv_has(&c, "data")) {
        fprintf(stderr, "train_mvla: --data is required\n");
        return 1;
    }
    const long n_seeds = kv_int(&c, "seeds"), seed0 = kv_int(&c, "seed");
    if (n_seeds < 1 || n_seeds > 1000) {
        fprintf(stderr, "train_mvla: --seeds must be 1..1000, not %s\n", kv_str(&c, "seeds"));
        return 1;
    }
    dist_run dr; /* ranks from the launcher (one when started alone); rank 0 writes the files */
    if (dist_open(&dr, &c, "train_mvla")) return 1;
    char out[1024];
    snprintf(out, sizeof out, "%.900s", kv_str(&c, "out"));
    const bool has_best = kv_bool(&c, "test_each_epoch");
    run_report *rp = calloc((size_t)n_seeds, sizeof *rp);
    long *seeds = calloc((size_t)n_seeds, sizeof *seeds);
    int rc = !rp || !seeds;
    for (long i = 0; i < n_seeds && !rc; i++) {
        char sub[1000], v[32];
        seeds[i] = seed0 + i;
        snprintf(v, sizeof v, "%ld", seeds[i]);
        kv_set(&c, "seed", v, "--seeds");
        if (n_seeds > 1) {
            snprintf(sub, sizeof sub, "%.900s/seed%ld", out, seeds[i]);
            kv_set(&c, "out", sub, "--seeds");
            kv_set(&c, "seeds", "1", "--seeds"); /* each seed's config.txt reruns that seed alone */
            if (dr.main) fprintf(stderr, "train_mvla: seed %ld (%ld of %ld) in %s\n", seeds[i], i + 1, n_seeds, sub);
        } else {
            snprintf(sub, sizeof sub, "%.900s", out);
        }
        rc = train_one(&c, &dr, sub, &rp[i]);
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
