/* metrics.c: AQA evaluation metrics (see metrics.h for the definitions and their sources). */
#include "eval/metrics.h"

#include <errno.h>
#include <stdbool.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"

/* Fails unless the array exists, holds at least `min_n` values, and all are finite. */
static aqa_status check_vector(const char *fn, const char *name, const double *x, size_t n,
                               size_t min_n) {
    if (!x) return aqa_fail(AQA_EINVAL, "%s: %s is NULL", fn, name);
    if (n < min_n)
        return aqa_fail(AQA_EINVAL, "%s: %s has %zu value(s), need at least %zu", fn, name, n,
                        min_n);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]))
            return aqa_fail(AQA_EINVAL, "%s: %s[%zu] is not finite (%g)", fn, name, i, x[i]);
    return AQA_OK;
}

typedef struct {
    double v;   /* the value */
    size_t idx; /* its position in the input */
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v < y->v) return -1;
    if (x->v > y->v) return 1;
    return (x->idx > y->idx) - (x->idx < y->idx); /* deterministic order among ties */
}

aqa_status aqa_rank_average(const double *x, size_t n, double *ranks) {
    aqa_status st = check_vector("aqa_rank_average", "x", x, n, 1);
    if (st) return st;
    if (!ranks) return aqa_fail(AQA_EINVAL, "aqa_rank_average: ranks is NULL");
    ranked *r = malloc(n * sizeof *r);
    if (!r) return aqa_fail(AQA_ENOMEM, "aqa_rank_average: cannot allocate %zu ranks", n);
    for (size_t i = 0; i < n; i++) r[i] = (ranked){x[i], i};
    qsort(r, n, sizeof *r, cmp_ranked);
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && r[j].v == r[i].v) j++;
        /* positions i..j-1 (0-based) hold ranks i+1..j; their mean is (i + 1 + j) / 2 */
        double avg = 0.5 * (double)(i + 1 + j);
        for (size_t k = i; k < j; k++) ranks[r[k].idx] = avg;
        i = j;
    }
    free(r);
    return AQA_OK;
}

/* Pearson's r without input checks (callers validated); fails on zero variance. */
static aqa_status pearson_raw(const char *fn, const double *x, const double *y, size_t n,
                              double *r) {
    double mx = 0, my = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    double sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        double dx = x[i] - mx, dy = y[i] - my;
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if (sxx == 0) return aqa_fail(AQA_EINVAL, "%s: the first vector is constant (zero variance)", fn);
    if (syy == 0) return aqa_fail(AQA_EINVAL, "%s: the second vector is constant (zero variance)", fn);
    double v = sxy / sqrt(sxx * syy);
    /* rounding can push |r| a hair above 1 for (anti)collinear data */
    if (v > 1) v = 1;
    if (v < -1) v = -1;
    *r = v;
    return AQA_OK;
}

aqa_status aqa_pearson(const double *x, const double *y, size_t n, double *r) {
    aqa_status st;
    if ((st = check_vector("aqa_pearson", "x", x, n, 2))) return st;
    if ((st = check_vector("aqa_pearson", "y", y, n, 2))) return st;
    if (!r) return aqa_fail(AQA_EINVAL, "aqa_pearson: r is NULL");
    return pearson_raw("aqa_pearson", x, y, n, r);
}

aqa_status aqa_spearman(const double *x, const double *y, size_t n, double *rho) {
    aqa_status st;
    if ((st = check_vector("aqa_spearman", "x", x, n, 2))) return st;
    if ((st = check_vector("aqa_spearman", "y", y, n, 2))) return st;
    if (!rho) return aqa_fail(AQA_EINVAL, "aqa_spearman: rho is NULL");
    double *rx = malloc(2 * n * sizeof *rx);
    if (!rx) return aqa_fail(AQA_ENOMEM, "aqa_spearman: cannot allocate ranks of %zu values", n);
    double *ry = rx + n;
    st = aqa_rank_average(x, n, rx);
    if (!st) st = aqa_rank_average(y, n, ry);
    if (!st) st = pearson_raw("aqa_spearman", rx, ry, n, rho);
    free(rx);
    return st;
}

aqa_status aqa_mse(const double *pred, const double *truth, size_t n, double *mse) {
    aqa_status st;
    if ((st = check_vector("aqa_mse", "pred", pred, n, 1))) return st;
    if ((st = check_vector("aqa_mse", "truth", truth, n, 1))) return st;
    if (!mse) return aqa_fail(AQA_EINVAL, "aqa_mse: mse is NULL");
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (pred[i] - truth[i]) * (pred[i] - truth[i]);
    *mse = s / (double)n;
    return AQA_OK;
}

aqa_status aqa_relative_l2(const double *pred, const double *truth, size_t n, double *rl2) {
    aqa_status st;
    if ((st = check_vector("aqa_relative_l2", "pred", pred, n, 2))) return st;
    if ((st = check_vector("aqa_relative_l2", "truth", truth, n, 2))) return st;
    if (!rl2) return aqa_fail(AQA_EINVAL, "aqa_relative_l2: rl2 is NULL");
    double lo = truth[0], hi = truth[0];
    for (size_t i = 1; i < n; i++) {
        if (truth[i] < lo) lo = truth[i];
        if (truth[i] > hi) hi = truth[i];
    }
    if (hi == lo)
        return aqa_fail(AQA_EINVAL, "aqa_relative_l2: truth is constant (%g), its range is zero", lo);
    double s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(pred[i] - truth[i]) / (hi - lo);
        s += d * d;
    }
    *rl2 = s / (double)n;
    return AQA_OK;
}

aqa_status aqa_segment_iou(long b1, long e1, long b2, long e2, aqa_iou_mode mode, double *iou) {
    if (!iou) return aqa_fail(AQA_EINVAL, "aqa_segment_iou: iou is NULL");
    if (e1 < b1) return aqa_fail(AQA_EINVAL, "aqa_segment_iou: first segment [%ld, %ld] is reversed", b1, e1);
    if (e2 < b2) return aqa_fail(AQA_EINVAL, "aqa_segment_iou: second segment [%ld, %ld] is reversed", b2, e2);
    long lo = b1 > b2 ? b1 : b2, hi = e1 < e2 ? e1 : e2;
    double inter, uni;
    switch (mode) {
    case AQA_IOU_TSA:
        inter = hi > lo ? (double)(hi - lo) : 0.0;
        uni = (double)(e1 - b1) + (double)(e2 - b2) - inter;
        *iou = uni > 0 ? inter / uni : 0.0;
        return AQA_OK;
    case AQA_IOU_FRAMES:
        inter = hi >= lo ? (double)(hi - lo + 1) : 0.0;
        uni = (double)(e1 - b1 + 1) + (double)(e2 - b2 + 1) - inter;
        *iou = inter / uni;
        return AQA_OK;
    }
    return aqa_fail(AQA_EINVAL, "aqa_segment_iou: unknown mode %d", (int)mode);
}

aqa_status aqa_aiou(const long *pred, const long *truth, size_t n, double d, aqa_iou_mode mode,
                    double *aiou) {
    if (!pred || !truth || !aiou) return aqa_fail(AQA_EINVAL, "aqa_aiou: NULL argument");
    if (n < 1) return aqa_fail(AQA_EINVAL, "aqa_aiou: no videos (n = 0)");
    if (!(d >= 0 && d <= 1)) return aqa_fail(AQA_EINVAL, "aqa_aiou: threshold d = %g is not in [0, 1]", d);
    size_t hits = 0;
    for (size_t i = 0; i < n; i++) {
        double iou;
        aqa_status st = aqa_segment_iou(pred[2 * i], pred[2 * i + 1], truth[2 * i], truth[2 * i + 1],
                                        mode, &iou);
        if (st) {
            char why[256]; /* copy: the message buffer cannot be both source and destination */
            snprintf(why, sizeof why, "%s", aqa_last_error());
            return aqa_fail(st, "aqa_aiou: video %zu: %s", i, why);
        }
        if (iou >= d) hits++;
    }
    *aiou = (double)hits / (double)n;
    return AQA_OK;
}

aqa_status aqa_fisher_z_mean(const double *r, size_t k, double *mean) {
    aqa_status st = check_vector("aqa_fisher_z_mean", "r", r, k, 1);
    if (st) return st;
    if (!mean) return aqa_fail(AQA_EINVAL, "aqa_fisher_z_mean: mean is NULL");
    double z = 0;
    for (size_t i = 0; i < k; i++) {
        if (!(fabs(r[i]) < 1))
            return aqa_fail(AQA_EINVAL,
                            "aqa_fisher_z_mean: r[%zu] = %g, |r| must be < 1 (atanh is infinite)", i,
                            r[i]);
        z += atanh(r[i]);
    }
    *mean = tanh(z / (double)k);
    return AQA_OK;
}

aqa_status aqa_score_metrics_compute(const double *pred, const double *truth, size_t n,
                                     aqa_score_metrics *out) {
    if (!out) return aqa_fail(AQA_EINVAL, "aqa_score_metrics_compute: out is NULL");
    aqa_status st;
    if ((st = check_vector("aqa_score_metrics_compute", "pred", pred, n, 1))) return st;
    if ((st = check_vector("aqa_score_metrics_compute", "truth", truth, n, 1))) return st;
    aqa_score_metrics m = {.n = n, .spearman = NAN, .pearson = NAN, .rl2_x100 = NAN};
    if ((st = aqa_mse(pred, truth, n, &m.mse))) return st;
    bool pred_varies = false, truth_varies = false;
    for (size_t i = 1; i < n; i++) {
        pred_varies |= pred[i] != pred[0];
        truth_varies |= truth[i] != truth[0];
    }
    /* a constant vector (or a single pair) leaves the correlations undefined: NAN, not an error */
    if (pred_varies && truth_varies) {
        if ((st = aqa_spearman(pred, truth, n, &m.spearman))) return st;
        if ((st = aqa_pearson(pred, truth, n, &m.pearson))) return st;
    }
    if (truth_varies) {
        double rl2;
        if ((st = aqa_relative_l2(pred, truth, n, &rl2))) return st;
        m.rl2_x100 = 100.0 * rl2;
    }
    *out = m;
    return AQA_OK;
}

/* Reads a text file of one number per line. */
static aqa_status read_text_vector(const char *path, FILE *f, double **out, size_t *n) {
    size_t cap = 64, len = 0, lineno = 0;
    double *v = malloc(cap * sizeof *v);
    char *line = NULL;
    size_t line_cap = 0;
    aqa_status st = AQA_OK;
    if (!v) return aqa_fail(AQA_ENOMEM, "%s: cannot allocate", path);
    while (getline(&line, &line_cap, f) != -1) {
        lineno++;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == '\0' || *s == '\n' || *s == '\r' || *s == '#') continue;
        char *end;
        errno = 0;
        double x = strtod(s, &end);
        if (end == s) {
            st = aqa_fail(AQA_EFORMAT, "%s:%zu: not a number: \"%.40s\"", path, lineno, s);
            break;
        }
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
        if (*end != '\0') {
            st = aqa_fail(AQA_EFORMAT, "%s:%zu: expected one number per line, found extra text \"%.40s\"",
                          path, lineno, end);
            break;
        }
        if (!isfinite(x) || errno == ERANGE) {
            st = aqa_fail(AQA_EFORMAT, "%s:%zu: value out of range or not finite", path, lineno);
            break;
        }
        if (len == cap) {
            double *nv = realloc(v, 2 * cap * sizeof *v);
            if (!nv) {
                st = aqa_fail(AQA_ENOMEM, "%s: cannot allocate %zu values", path, 2 * cap);
                break;
            }
            v = nv;
            cap *= 2;
        }
        v[len++] = x;
    }
    if (!st && ferror(f)) st = aqa_fail(AQA_EIO, "%s: read error: %s", path, strerror(errno));
    if (!st && len == 0) st = aqa_fail(AQA_EFORMAT, "%s: holds no numbers", path);
    free(line);
    if (st) {
        free(v);
        return st;
    }
    *out = v;
    *n = len;
    return AQA_OK;
}

aqa_status aqa_read_vector(const char *path, double **out, size_t *n) {
    if (!path || !out || !n) return aqa_fail(AQA_EINVAL, "aqa_read_vector: NULL argument");
    FILE *f = fopen(path, "rb");
    if (!f) return aqa_fail(AQA_EIO, "%s: cannot open: %s", path, strerror(errno));
    unsigned char magic[6] = {0};
    size_t got = fread(magic, 1, sizeof magic, f);
    int is_npy = got == 6 && memcmp(magic, "\x93NUMPY", 6) == 0;
    aqa_status st;
    if (is_npy) {
        fclose(f);
        st = aqa_npy_read_vector(path, out, n);
    } else {
        rewind(f);
        st = read_text_vector(path, f, out, n);
        fclose(f);
    }
    return st;
}

aqa_status aqa_evaluate_files(const char *pred_path, const char *truth_path,
                              aqa_score_metrics *out) {
    double *pred = NULL, *truth = NULL;
    size_t np = 0, nt = 0;
    aqa_status st = aqa_read_vector(pred_path, &pred, &np);
    if (!st) st = aqa_read_vector(truth_path, &truth, &nt);
    if (!st && np != nt)
        st = aqa_fail(AQA_EINVAL, "%s holds %zu values but %s holds %zu: lengths must match",
                      pred_path, np, truth_path, nt);
    if (!st) st = aqa_score_metrics_compute(pred, truth, np, out);
    free(pred);
    free(truth);
    return st;
}
