/* metrics.h: the evaluation metrics of action quality assessment, on plain double arrays.
 *
 * - Spearman's rank correlation rho: Pearson's r of the ranks, tied values getting the average of
 *   the ranks they span (as scipy.stats.spearmanr, which TSA/CoRe/MUSDL call).
 * - Pearson's r.
 * - R-l2 (relative l2 distance) as TSA's code computes it:
 *       mean(((|s - s^|) / (s_max - s_min))^2)
 *   where s_max / s_min are the max / min of the ground truth being evaluated (not of the dataset);
 *   papers report it x100.
 * - MSE, mean((s - s^)^2) (TSA prints it as "L2"; Fis-V reports it).
 * - AIoU@d: the fraction of videos whose predicted segment [b1, b2] (first and last predicted
 *   stage boundary) has IoU >= d with the true one.  See aqa_segment_iou for the IoU definitions.
 * - Fisher-z averaging of correlations over folds / tasks: tanh(mean(atanh(r_i))).
 *
 * Every function validates its input and fails with AQA_EINVAL (message naming the argument) on
 * NULL arrays, too few samples, non-finite values or a zero variance / zero range that makes the
 * metric undefined; it never returns NaN silently.  The one exception is aqa_score_metrics_compute
 * (what training loops log): there an undefined metric is NAN, documented at the struct. */
#ifndef AQA_DATASETS_METRICS_H
#define AQA_DATASETS_METRICS_H

#include <stddef.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Average (1-based) ranks of x[0..n) into ranks[0..n): ties get the mean of the ranks they span,
 * like scipy.stats.rankdata(method='average').  n >= 1. */
aqa_status aqa_rank_average(const double *x, size_t n, double *ranks);

/* Pearson's correlation coefficient of x and y (n >= 2; neither may be constant). */
aqa_status aqa_pearson(const double *x, const double *y, size_t n, double *r);

/* Spearman's rho of x and y: Pearson of the average ranks (n >= 2; neither may be constant). */
aqa_status aqa_spearman(const double *x, const double *y, size_t n, double *rho);

/* Mean squared error mean((pred - truth)^2), n >= 1. */
aqa_status aqa_mse(const double *pred, const double *truth, size_t n, double *mse);

/* Relative l2 distance mean(((|truth - pred|) / (max(truth) - min(truth)))^2), NOT scaled by 100
 * (multiply by 100 to get the number papers report).  n >= 2; the truth may not be constant. */
aqa_status aqa_relative_l2(const double *pred, const double *truth, size_t n, double *rl2);

/* How the IoU of two segments [b1, b2] (frame indices, b1 <= b2) is measured. */
typedef enum aqa_iou_mode {
    /* TSA's utils/misc.py segment_iou: the segments are intervals of length b2 - b1,
     * inter = max(0, min(b2, b2') - max(b1, b1')), union = (b2 - b1) + (b2' - b1') - inter,
     * IoU = inter / union (TSA adds DBL_EPSILON to the union; we return 0 when union == 0,
     * which is what TSA's formula gives there, and divide exactly otherwise).  The default: it
     * reproduces TSA's published AIoU. */
    AQA_IOU_TSA = 0,
    /* The segments are the sets of frame indices {b1, ..., b2} (inclusive, length b2 - b1 + 1):
     * IoU = |A n B| / |A u B|.  Never 0/0: each set holds at least one frame. */
    AQA_IOU_FRAMES = 1
} aqa_iou_mode;

/* IoU of segments [b1, e1] and [b2, e2] under `mode`.  Requires b1 <= e1 and b2 <= e2 (a
 * reversed segment fails with AQA_EINVAL). */
aqa_status aqa_segment_iou(long b1, long e1, long b2, long e2, aqa_iou_mode mode, double *iou);

/* AIoU@d: fraction (in [0, 1]; papers report x100) of the n videos whose predicted segment
 * pred[2i], pred[2i+1] has IoU >= d with truth[2i], truth[2i+1].  n >= 1, 0 <= d <= 1.
 * Unlike TSA's test loop, which thresholds the IoU averaged over a batch and its exemplars, this is
 * per video (the paper's definition). */
aqa_status aqa_aiou(const long *pred, const long *truth, size_t n, double d, aqa_iou_mode mode,
                    double *aiou);

/* Fisher-z average of k >= 1 correlations: tanh(mean(atanh(r_i))).  Each |r_i| must be < 1 (atanh
 * of +-1 is infinite, so such a fold makes the average undefined: AQA_EINVAL naming the index). */
aqa_status aqa_fisher_z_mean(const double *r, size_t k, double *mean);

/* The score metrics evaluate prints and the training loops log. */
typedef struct aqa_score_metrics {
    size_t n;        /* number of (prediction, truth) pairs */
    double spearman; /* Spearman's rho; NAN (undefined) when pred or truth is constant or n < 2 */
    double pearson;  /* Pearson's r; NAN under the same conditions */
    double rl2_x100; /* relative l2 x 100 (the number papers report); NAN when truth is constant */
    double mse;      /* mean squared error (always defined) */
} aqa_score_metrics;

/* All four score metrics of pred vs truth at once.  A constant prediction (a head that collapsed,
 * or MUSDL without judges) makes the correlations undefined: they are NAN, and the call succeeds,
 * so a training run reports "undefined" instead of stopping.  NULL arrays, n = 0 or non-finite
 * values still fail with AQA_EINVAL. */
aqa_status aqa_score_metrics_compute(const double *pred, const double *truth, size_t n,
                                     aqa_score_metrics *out);

/* Reads a vector of numbers from `path`: a .npy file (detected by its magic bytes; 1-D, or 2-D
 * with one dimension 1; dtypes '<f8', '<f4', '<i8', '<i4') or a text file with one number per line
 * (blank lines and lines starting with '#' are skipped).  *out is malloc'ed (free() it); n >= 1
 * values or AQA_EFORMAT.  Errors name the file and, for text, the line. */
aqa_status aqa_read_vector(const char *path, double **out, size_t *n);

/* evaluate's metrics-only mode as a library call: reads both files with aqa_read_vector, checks
 * they hold the same number of values, and computes the score metrics. */
aqa_status aqa_evaluate_files(const char *pred_path, const char *truth_path,
                              aqa_score_metrics *out);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_METRICS_H */
