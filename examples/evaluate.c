/* evaluate.c: computes AQA metrics.
 *
 * Metrics-only mode (this file):
 *     examples/evaluate --pred FILE --true FILE
 * where each FILE holds one number per line or is a 1-D .npy ('<f8', '<f4', '<i8').  Prints
 * Spearman's rho, Pearson's r, R-l2 x100 (range of the given ground truth) and MSE, one
 * "name value" pair per line, so that scripts can parse the output.
 *
 * The program parses its arguments into a struct and dispatches on the mode, so that a checkpoint
 * mode (--checkpoint FILE: run a trained model over a dataset, then score it) can be added as
 * another branch of run() without touching the metrics mode. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/metrics.h"
#include "tensor/error.h"

typedef enum eval_mode {
    EVAL_METRICS = 0,   /* --pred / --true: score two files of numbers */
    EVAL_CHECKPOINT = 1 /* --checkpoint: reserved for the model-evaluation mode */
} eval_mode;

typedef struct eval_args {
    eval_mode mode;         /* what to do, decided by the options given */
    const char *pred_path;  /* --pred: predicted scores */
    const char *true_path;  /* --true: ground-truth scores */
    const char *checkpoint; /* --checkpoint: trained model (checkpoint mode) */
} eval_args;

static void usage(FILE *to) {
    fprintf(to,
            "usage: evaluate --pred FILE --true FILE\n"
            "  FILE: one number per line, or a 1-D .npy array (<f8, <f4, <i8)\n"
            "  prints: n, spearman_rho, pearson_r, rl2_x100, mse\n");
}

/* Fills `a` from argv; returns 0 on success, 1 after printing a message (2 for --help). */
static int parse_args(int argc, char **argv, eval_args *a) {
    memset(a, 0, sizeof *a);
    for (int i = 1; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "-h") == 0 || strcmp(opt, "--help") == 0) {
            usage(stdout);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "evaluate: option %s needs a value\n", opt);
            return 1;
        }
        const char *val = argv[++i];
        if (strcmp(opt, "--pred") == 0) a->pred_path = val;
        else if (strcmp(opt, "--true") == 0) a->true_path = val;
        else if (strcmp(opt, "--checkpoint") == 0) a->checkpoint = val;
        else {
            fprintf(stderr, "evaluate: unknown option %s\n", opt);
            usage(stderr);
            return 1;
        }
    }
    if (a->checkpoint) {
        a->mode = EVAL_CHECKPOINT;
        return 0;
    }
    a->mode = EVAL_METRICS;
    if (!a->pred_path || !a->true_path) {
        fprintf(stderr, "evaluate: both --pred and --true are required\n");
        usage(stderr);
        return 1;
    }
    return 0;
}

static int run_metrics(const eval_args *a) {
    aqa_score_metrics m;
    if (aqa_evaluate_files(a->pred_path, a->true_path, &m) != AQA_OK) {
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

static int run(const eval_args *a) {
    switch (a->mode) {
    case EVAL_METRICS: return run_metrics(a);
    case EVAL_CHECKPOINT:
        fprintf(stderr, "evaluate: --checkpoint mode is not available in this build yet\n");
        return 1;
    }
    return 1;
}

int main(int argc, char **argv) {
    eval_args a;
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc == 2 ? 0 : 1;
    return run(&a);
}
