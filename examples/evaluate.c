/* evaluate.c: computes AQA metrics.
 *
 * Metrics-only mode:
 *     examples/evaluate --pred FILE --true FILE
 * where each FILE holds one number per line or is a 1-D .npy ('<f8', '<f4', '<i8').  Prints
 * Spearman's rho, Pearson's r, R-l2 x100 (range of the given ground truth) and MSE, one
 * "name value" pair per line, so that scripts can parse the output.
 *
 * Checkpoint mode:
 *     examples/evaluate --checkpoint runs/tsa_mvla/best.safetensors [--out DIR] [--figures 4]
 *                       [--data DIR] [--features CACHE] [--test-split test] [--device cuda]
 * rebuilds the model train_mvla saved (its settings are in the checkpoint; the flags override the
 * data paths and the run-time settings), runs it over the test split (contrastive heads average
 * over --eval-exemplars training exemplars) and prints the same "name value" lines plus
 * aiou50 / aiou75 (with frame labels).  Writes, in --out (default: beside the checkpoint,
 * "<checkpoint>.eval"): predictions.csv (one row per video: key, dive, difficulty, true and
 * predicted score, true and predicted boundaries, their IoU), pred.txt / true.txt (the metrics
 * mode's input), and PNG figures: boundaries_<k>_<key>.png per video for --figures videos spread
 * over the split (the paper's Fig. 4: frame-level boundary probabilities with the true and
 * predicted boundaries, true and predicted scores in the title) and scatter.png (predicted vs
 * true scores). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/metrics.h"
#include "eval/plot.h"
#include "examples/mvla_run.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "base/error.h"

#define SYNOPSIS_METRICS "--pred FILE --true FILE"
#define SYNOPSIS_CHECKPOINT "--checkpoint FILE [--out DIR] [--figures N] [settings]"
#define ABOUT                                                                                            \
    "Metrics mode (--pred, --true): FILE holds one number per line, or is a 1-D .npy array (<f8, <f4,\n" \
    "<i8); prints n, spearman_rho, pearson_r, rl2_x100, mse.\n"                                         \
    "Checkpoint mode (evaluate " SYNOPSIS_CHECKPOINT "): rebuilds the model train_mvla\n"             \
    "saved, prints the same plus aiou50, aiou75, writes predictions.csv and PNG figures;\n"              \
    "`evaluate --checkpoint FILE --help` lists its settings."

/* Whether argv selects checkpoint mode. */
static bool checkpoint_mode(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--checkpoint") || !strncmp(argv[i], "--checkpoint=", 13)) return true;
    return false;
}

static int run_metrics(int argc, char **argv) {
    kv_config c = {.program = "evaluate", .about = ABOUT};
    kv_def(&c, "pred", "", "predicted scores");
    kv_def(&c, "true", "", "ground-truth scores");
    int pr = kv_parse_args(&c, argc, argv, SYNOPSIS_METRICS);
    if (pr) return kv_exit_code(pr);
    if (!kv_has(&c, "pred") || !kv_has(&c, "true")) {
        fprintf(stderr, "evaluate: both --pred and --true are required (or --checkpoint FILE; --help)\n");
        return 2;
    }
    aqa_score_metrics m;
    if (aqa_evaluate_files(kv_str(&c, "pred"), kv_str(&c, "true"), &m) != AQA_OK) {
        fprintf(stderr, "evaluate: %s\n", aqa_last_error());
        return 1;
    }
    printf("n %zu\n", m.n);
    printf("spearman_rho %.10g\n", m.spearman);
    printf("pearson_r %.10g\n", m.pearson);
    printf("rl2_x100 %.10g\n", m.rl2_x100);
    printf("mse %.10g\n", m.mse);
    return 0;
}

/* ---- checkpoint mode ----------------------------------------------------------------------- */

/* A file-name-safe copy of a sample key. */
static void safe_name(const char *key, char *out, size_t size) {
    size_t k = 0;
    for (; key[k] && k + 1 < size; k++) out[k] = isalnum((unsigned char)key[k]) || key[k] == '-' ? key[k] : '_';
    out[k] = 0;
}

/* The paper's Fig. 4 for row i: boundary probabilities over frames, true and predicted boundaries. */
static int boundary_figure(const run_results *res, size_t i, const char *key, const char *path) {
    int64_t T = res->T;
    double *x = malloc((size_t)T * sizeof *x), *y = malloc((size_t)T * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return 1;
    }
    aqa_plot *p = aqa_plot_new();
    char title[512];
    snprintf(title, sizeof title, "%s: true %.2f, predicted %.2f", key, res->truth[i], res->pred[i]);
    aqa_plot_title(p, title);
    aqa_plot_xlabel(p, "frame");
    aqa_plot_ylabel(p, "boundary probability");
    aqa_plot_xlim(p, 0, (double)(T - 1));
    aqa_plot_ylim(p, 0, 1.05);
    aqa_plot_grid(p, 1);
    aqa_plot_legend(p, AQA_LEGEND_OUTSIDE_RIGHT);
    const aqa_rgb col[2] = {aqa_rgb_make(31, 119, 180), aqa_rgb_make(214, 39, 40)};
    const char *names[2] = {"P(take-off | flight)", "P(flight | entry)"};
    const char *tl[2] = {"true boundary 1", "true boundary 2"}, *pl[2] = {"predicted 1", "predicted 2"};
    for (int l = 0; l < 2; l++) {
        for (int64_t t = 0; t < T; t++) {
            x[t] = (double)t;
            y[t] = res->prob[(i * (size_t)T + (size_t)t) * 2 + (size_t)l];
        }
        aqa_plot_line(p, x, y, (int)T, col[l], 2.0, names[l]);
        aqa_plot_vline(p, (double)res->tb[2 * i + (size_t)l], col[l], 2.0, 0, tl[l]);
        aqa_plot_vline(p, (double)res->pb[2 * i + (size_t)l], col[l], 1.5, 1, pl[l]);
    }
    int rc = aqa_plot_save_png(p, 900, 420, path) != AQA_OK;
    aqa_plot_free(p);
    free(x);
    free(y);
    return rc;
}

static int scatter_figure(const run_results *res, const char *title, const char *path) {
    aqa_plot *p = aqa_plot_new();
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < res->n; i++) {
        lo = fmin(lo, fmin(res->truth[i], res->pred[i]));
        hi = fmax(hi, fmax(res->truth[i], res->pred[i]));
    }
    double pad = 0.05 * (hi - lo + 1e-9);
    aqa_plot_title(p, title);
    aqa_plot_xlabel(p, "true score");
    aqa_plot_ylabel(p, "predicted score");
    aqa_plot_xlim(p, lo - pad, hi + pad);
    aqa_plot_ylim(p, lo - pad, hi + pad);
    aqa_plot_grid(p, 1);
    aqa_plot_legend(p, AQA_LEGEND_UPPER_LEFT);
    double dx[2] = {lo - pad, hi + pad};
    aqa_plot_line(p, dx, dx, 2, aqa_rgb_make(128, 128, 128), 1.0, "y = x");
    aqa_plot_scatter(p, res->truth, res->pred, (int)res->n, aqa_rgb_make(31, 119, 180), 3.0, "test videos");
    int rc = aqa_plot_save_png(p, 600, 600, path) != AQA_OK;
    aqa_plot_free(p);
    return rc;
}

/* Writes the rows of predictions.csv, pred.txt and true.txt (each atomically).  0, or 1 with the
 * file and the system's reason in aqa_last_error(). */
static int write_predictions(run_ctx *r, const run_results *res, bool fam, const char *out) {
    static const char *const names[3] = {"predictions.csv", "pred.txt", "true.txt"};
    aqa_atomic_file *af[3] = {NULL, NULL, NULL};
    char path[1400];
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%.1300s/%s", out, names[k]);
        if (aqa_atomic_open(path, &af[k])) {
            for (int j = 0; j < k; j++) aqa_atomic_abort(af[j]);
            return 1;
        }
    }
    FILE *csv = aqa_atomic_stream(af[0]), *fp = aqa_atomic_stream(af[1]), *ft = aqa_atomic_stream(af[2]);
    fprintf(csv, "key,dive_number,difficulty,true_score,pred_score,abs_error%s\n",
            fam ? ",true_b1,true_b2,pred_b1,pred_b2,iou" : "");
    for (size_t i = 0; i < res->n; i++) {
        const aqa_ann_sample *s = aqa_vd_sample(r->test, res->items[i]);
        fprintf(csv, "%s,%s,%.4g,%.6g,%.6g,%.6g", s->key, s->dive_number, s->difficulty, res->truth[i], res->pred[i],
                fabs(res->truth[i] - res->pred[i]));
        if (fam) {
            const long *pb = res->pb + 2 * i, *tb = res->tb + 2 * i;
            double iou = 0;
            aqa_segment_iou(pb[0], pb[1] < pb[0] ? pb[0] : pb[1], tb[0], tb[1], AQA_IOU_TSA, &iou);
            fprintf(csv, ",%ld,%ld,%ld,%ld,%.4f", tb[0], tb[1], pb[0], pb[1], iou);
        }
        fputc('\n', csv);
        fprintf(fp, "%.17g\n", res->pred[i]); /* round-trips exactly */
        fprintf(ft, "%.17g\n", res->truth[i]);
    }
    int rc = 0;
    for (int k = 0; k < 3; k++) rc |= aqa_atomic_commit(af[k]) != AQA_OK; /* the first failure's message stays */
    return rc;
}

static int run_checkpoint(int argc, char **argv) {
    kv_config c = {.program = "evaluate", .about = ABOUT};
    run_def_keys(&c);
    kv_def(&c, "out", "", "output folder (default <checkpoint>.eval)");
    kv_def_int(&c, "figures", "4", 0, 100000, "videos with a boundary figure (FineDiving layout)");
    kv_def(&c, "checkpoint", "", "checkpoint written by train_mvla");
    kv_def_bool(&c, "progress", "false", "progress line on stderr");
    run_def_train_keys(&c); /* train_mvla's own keys, read back from the checkpoint, unused here */
    /* the checkpoint's settings first (flags override them), unless only --help is wanted */
    const char *ckpt = NULL;
    bool help = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc) ckpt = argv[i + 1];
        else if (!strncmp(argv[i], "--checkpoint=", 13)) ckpt = argv[i] + 13;
        help |= !strcmp(argv[i], "--help") || !strcmp(argv[i], "-h");
    }
    if (!ckpt && !help) {
        fprintf(stderr, "evaluate: --checkpoint needs a file\n");
        return 2;
    }
    if (ckpt && !help) {
        if (run_checkpoint_settings(&c, ckpt)) {
            fprintf(stderr, "evaluate: %s\n", aqa_last_error());
            return 1;
        }
        /* run-time settings are this invocation's, not the training's */
        kv_set(&c, "out", "", "reset");
        kv_set(&c, "device", "cpu", "reset");
        kv_set(&c, "progress", "false", "reset");
    }
    int pr = kv_parse_args(&c, argc, argv, SYNOPSIS_CHECKPOINT);
    if (pr) return kv_exit_code(pr);
    ckpt = kv_str(&c, "checkpoint");
    char out[1024];
    if (kv_has(&c, "out")) snprintf(out, sizeof out, "%s", kv_str(&c, "out"));
    else snprintf(out, sizeof out, "%.1000s.eval", ckpt);
    if (mkdir_p(out)) {
        fprintf(stderr, "evaluate: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    run_ctx r;
    run_results res;
    memset(&res, 0, sizeof res);
    int rc = 1;
    char path[1400];
    if (run_open(&r, &c, RUN_OPEN_TEST)) goto fail;
    if (!r.test) {
        fprintf(stderr, "evaluate: no test split\n");
        goto done;
    }
    if (run_load_weights(&r, ckpt)) goto fail;
    if (run_evaluate(&r, r.test, true, kv_bool(&c, "progress"), &res)) goto fail;
    printf("n %zu\n", res.n);
    printf("spearman_rho %.10g\n", res.m.spearman);
    printf("pearson_r %.10g\n", res.m.pearson);
    printf("rl2_x100 %.10g\n", res.m.rl2_x100);
    printf("mse %.10g\n", res.m.mse);
    printf("aiou50 %.10g\n", res.aiou50);
    printf("aiou75 %.10g\n", res.aiou75);
    bool fam = r.mcfg.scheme == AQA_MVLA_FAM && isfinite(res.aiou50);
    if (write_predictions(&r, &res, fam, out)) goto fail;
    /* figures */
    char title[256];
    snprintf(title, sizeof title, "%.40s%s on %.100s: rho %.3f", kv_str(&c, "head"), kv_bool(&c, "mvla") ? "-MVLA" : "",
             kv_str(&c, "test_split"), res.m.spearman);
    snprintf(path, sizeof path, "%s/scatter.png", out);
    if (scatter_figure(&res, title, path)) goto fail;
    long nf = kv_int(&c, "figures");
    int n_fig = 0;
    if (fam && res.prob && nf > 0) {
        for (long k = 0; k < nf && (size_t)k < res.n; k++) {
            size_t i = nf > 1 ? (size_t)((double)k * (double)(res.n - 1) / (double)(nf - 1)) : 0;
            const aqa_ann_sample *s = aqa_vd_sample(r.test, res.items[i]);
            char sn[256];
            safe_name(s->key, sn, sizeof sn);
            snprintf(path, sizeof path, "%s/boundaries_%ld_%s.png", out, k, sn);
            if (boundary_figure(&res, i, s->key, path)) goto fail;
            n_fig++;
        }
    }
    fprintf(stderr, "evaluate: wrote %s/predictions.csv, scatter.png and %d boundary figure(s)\n", out, n_fig);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "evaluate: %s\n", aqa_last_error());
done:
    run_results_free(&res);
    run_free(&r);
    return rc;
}

int main(int argc, char **argv) { return checkpoint_mode(argc, argv) ? run_checkpoint(argc, argv) : run_metrics(argc, argv); }
