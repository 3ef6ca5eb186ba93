/* test_metrics.c: AQA metrics, the .npy reader and evaluate's metrics mode, against golden values
 * computed independently by SciPy/numpy (scripts/gen_metrics_golden.py -> tests/data/metrics/). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eval/metrics.h"
#include "io/npy.h"
#include "base/error.h"
#include "tests/testlib.h"

#define TOL 1e-9

/* ---- golden files: lines "key v1 v2 ..." ---- */

/* Reads the numbers after "key " on the first line starting with it; returns their count (0 when
 * the file or key is missing).  *out is malloc'ed. */
static size_t golden_get(const char *name, const char *key, double **out) {
    FILE *f = fopen(test_data_path(name), "r");
    *out = NULL;
    if (!f) return 0;
    char *line = NULL;
    size_t cap = 0, n = 0, klen = strlen(key);
    while (getline(&line, &cap, f) != -1) {
        if (strncmp(line, key, klen) != 0 || line[klen] != ' ') continue;
        size_t vcap = 16;
        double *v = malloc(vcap * sizeof *v);
        char *p = line + klen, *end;
        for (;;) {
            double x = strtod(p, &end);
            if (end == p) break;
            if (n == vcap) v = realloc(v, (vcap *= 2) * sizeof *v);
            v[n++] = x;
            p = end;
        }
        *out = v;
        break;
    }
    free(line);
    fclose(f);
    return n;
}

static double golden_scalar(const char *name, const char *key) {
    double *v;
    size_t n = golden_get(name, key, &v);
    double x = n == 1 ? v[0] : NAN;
    free(v);
    return x;
}

static const char *const cases[] = {"metrics/ties_small.txt", "metrics/diving_like.txt", "metrics/negative_ties.txt",
                                    "metrics/two.txt"};

static void test_golden_scipy(void) {
    int found = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        double *pred, *truth, *rp, *rt;
        size_t n = golden_get(cases[c], "pred", &pred);
        size_t nt = golden_get(cases[c], "true", &truth);
        size_t nrp = golden_get(cases[c], "ranks_pred", &rp);
        size_t nrt = golden_get(cases[c], "ranks_true", &rt);
        if (n == 0) {
            free(truth), free(rp), free(rt);
            continue;
        }
        found++;
        CHECK_EQ_INT(nt, n);
        CHECK_EQ_INT(nrp, n);
        CHECK_EQ_INT(nrt, n);
        CHECK_NEAR((double)n, golden_scalar(cases[c], "n"), 0);
        double *ranks = malloc(n * sizeof *ranks);
        CHECK(aqa_rank_average(pred, n, ranks) == AQA_OK);
        for (size_t i = 0; i < n && nrp == n; i++) CHECK_NEAR(ranks[i], rp[i], 0);
        CHECK(aqa_rank_average(truth, n, ranks) == AQA_OK);
        for (size_t i = 0; i < n && nrt == n; i++) CHECK_NEAR(ranks[i], rt[i], 0);
        free(ranks);

        double rho = NAN, r = NAN, rl2 = NAN, mse = NAN;
        CHECK(aqa_spearman(pred, truth, n, &rho) == AQA_OK);
        CHECK(aqa_pearson(pred, truth, n, &r) == AQA_OK);
        CHECK(aqa_relative_l2(pred, truth, n, &rl2) == AQA_OK);
        CHECK(aqa_mse(pred, truth, n, &mse) == AQA_OK);
        CHECK_NEAR(rho, golden_scalar(cases[c], "spearman"), TOL);
        CHECK_NEAR(r, golden_scalar(cases[c], "pearson"), TOL);
        CHECK_NEAR(rl2, golden_scalar(cases[c], "rl2"), TOL);
        CHECK_NEAR(mse, golden_scalar(cases[c], "mse"), TOL * (1 + fabs(mse)));

        aqa_score_metrics m;
        CHECK(aqa_score_metrics_compute(pred, truth, n, &m) == AQA_OK);
        CHECK_EQ_INT(m.n, n);
        CHECK_NEAR(m.spearman, rho, 0);
        CHECK_NEAR(m.pearson, r, 0);
        CHECK_NEAR(m.rl2_x100, 100 * golden_scalar(cases[c], "rl2"), 100 * TOL);
        CHECK_NEAR(m.mse, mse, 0);
        /* Spearman is symmetric; Pearson too */
        double rho2;
        CHECK(aqa_spearman(truth, pred, n, &rho2) == AQA_OK);
        CHECK_NEAR(rho2, rho, 1e-15);
        free(pred), free(truth), free(rp), free(rt);
    }
    if (!found) SKIP("no golden files under %.200s", test_data_path("metrics"));
}

static void test_rank_ties_by_hand(void) {
    /* values 3, 1, 3, 2, 3: sorted 1 2 3 3 3 -> ranks 1, 2, (3+4+5)/3 = 4 */
    const double x[] = {3, 1, 3, 2, 3};
    double r[5];
    CHECK(aqa_rank_average(x, 5, r) == AQA_OK);
    CHECK_NEAR(r[0], 4, 0);
    CHECK_NEAR(r[1], 1, 0);
    CHECK_NEAR(r[2], 4, 0);
    CHECK_NEAR(r[3], 2, 0);
    CHECK_NEAR(r[4], 4, 0);
    /* a monotone transform keeps rho at exactly 1; a reversal gives -1 */
    const double y[] = {30, 10, 30, 20, 30}, z[] = {-3, -1, -3, -2, -3};
    double rho;
    CHECK(aqa_spearman(x, y, 5, &rho) == AQA_OK);
    CHECK_NEAR(rho, 1, 1e-15);
    CHECK(aqa_spearman(x, z, 5, &rho) == AQA_OK);
    CHECK_NEAR(rho, -1, 1e-15);
}

static void test_errors(void) {
    const double a[] = {1, 2, 3}, c[] = {5, 5, 5}, nan3[] = {1, NAN, 3};
    double out = 42;
    aqa_clear_error();
    CHECK(aqa_spearman(a, a, 1, &out) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "at least 2") != NULL);
    CHECK(aqa_pearson(a, a, 0, &out) == AQA_EINVAL);
    CHECK(aqa_pearson(a, c, 3, &out) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "constant") != NULL);
    CHECK(aqa_spearman(c, a, 3, &out) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "constant") != NULL);
    CHECK(aqa_spearman(nan3, a, 3, &out) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "not finite") != NULL);
    CHECK(aqa_relative_l2(a, c, 3, &out) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "range is zero") != NULL);
    CHECK(aqa_relative_l2(a, a, 1, &out) == AQA_EINVAL);
    CHECK(aqa_mse(a, a, 0, &out) == AQA_EINVAL);
    CHECK(aqa_mse(NULL, a, 3, &out) == AQA_EINVAL);
    CHECK(aqa_mse(a, c, 1, &out) == AQA_OK); /* MSE is defined for one pair */
    CHECK_NEAR(out, 16, 0);
    CHECK(aqa_score_metrics_compute(a, c, 3, NULL) == AQA_EINVAL);
    /* a constant prediction or truth leaves the correlations (and, for truth, R-l2) undefined:
       NAN, not an error; the MSE is still computed */
    aqa_score_metrics m;
    CHECK(aqa_score_metrics_compute(c, a, 3, &m) == AQA_OK);
    CHECK(isnan(m.spearman) && isnan(m.pearson) && isfinite(m.rl2_x100));
    CHECK_NEAR(m.mse, (16.0 + 9.0 + 4.0) / 3.0, 1e-12);
    CHECK_NEAR(m.rl2_x100, 100.0 * (4.0 + 2.25 + 1.0) / 3.0, 1e-12);
    CHECK(aqa_score_metrics_compute(a, c, 3, &m) == AQA_OK);
    CHECK(isnan(m.spearman) && isnan(m.pearson) && isnan(m.rl2_x100));
    CHECK(aqa_score_metrics_compute(a, a, 1, &m) == AQA_OK);
    CHECK(isnan(m.spearman) && m.mse == 0);
    CHECK(aqa_score_metrics_compute(nan3, a, 3, &m) == AQA_EINVAL);
    CHECK(aqa_score_metrics_compute(a, a, 0, &m) == AQA_EINVAL);
    const double rr[] = {0.5, 1.0};
    CHECK(aqa_fisher_z_mean(rr, 2, &out) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "r[1]") != NULL);
    CHECK(aqa_fisher_z_mean(rr, 0, &out) == AQA_EINVAL);
    const long seg[] = {5, 3}, ok[] = {1, 2};
    CHECK(aqa_segment_iou(5, 3, 1, 2, AQA_IOU_TSA, &out) == AQA_EINVAL);
    CHECK(aqa_aiou(seg, ok, 1, 0.5, AQA_IOU_TSA, &out) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "video 0") != NULL);
    CHECK(aqa_aiou(ok, ok, 1, 1.5, AQA_IOU_TSA, &out) == AQA_EINVAL);
    CHECK(aqa_aiou(ok, ok, 0, 0.5, AQA_IOU_TSA, &out) == AQA_EINVAL);
}

static void test_aiou_golden(void) {
    FILE *f = fopen(test_data_path("metrics/aiou.txt"), "r");
    if (!f) {
        SKIP("%.200s missing", test_data_path("metrics/aiou.txt"));
        return;
    }
    long pred[128], truth[128];
    size_t n = 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        long b1, e1, b2, e2;
        double it, ifr, iou;
        if (sscanf(line, "seg %ld %ld %ld %ld %lf %lf", &b1, &e1, &b2, &e2, &it, &ifr) != 6) continue;
        CHECK(aqa_segment_iou(b1, e1, b2, e2, AQA_IOU_TSA, &iou) == AQA_OK);
        CHECK_NEAR(iou, it, 1e-15);
        CHECK(aqa_segment_iou(b1, e1, b2, e2, AQA_IOU_FRAMES, &iou) == AQA_OK);
        CHECK_NEAR(iou, ifr, 1e-15);
        if (n < 64) {
            pred[2 * n] = b1, pred[2 * n + 1] = e1, truth[2 * n] = b2, truth[2 * n + 1] = e2;
            n++;
        }
    }
    fclose(f);
    CHECK(n > 40);
    const char *keys[] = {"aiou_tsa", "aiou_frames"};
    for (int k = 0; k < 2; k++)
        for (int t = 0; t < 2; t++) {
            double d = t ? 0.75 : 0.5, want = NAN, got = NAN;
            f = fopen(test_data_path("metrics/aiou.txt"), "r");
            while (f && fgets(line, sizeof line, f)) {
                char key[32];
                double dd, v;
                if (sscanf(line, "%31s %lf %lf", key, &dd, &v) == 3 && strcmp(key, keys[k]) == 0 &&
                    dd == d)
                    want = v;
            }
            if (f) fclose(f);
            CHECK(aqa_aiou(pred, truth, n, d, k ? AQA_IOU_FRAMES : AQA_IOU_TSA, &got) == AQA_OK);
            CHECK_NEAR(got, want, 1e-15);
        }
}

static void test_iou_by_hand(void) {
    double iou;
    /* TSA intervals: [10, 20] vs [15, 25]: inter 5, union 10 + 10 - 5 = 15 */
    CHECK(aqa_segment_iou(10, 20, 15, 25, AQA_IOU_TSA, &iou) == AQA_OK);
    CHECK_NEAR(iou, 5.0 / 15.0, 1e-15);
    /* frame sets {10..20} vs {15..25}: 6 shared of 16 */
    CHECK(aqa_segment_iou(10, 20, 15, 25, AQA_IOU_FRAMES, &iou) == AQA_OK);
    CHECK_NEAR(iou, 6.0 / 16.0, 1e-15);
    /* touching: TSA 0, frames 1/21 */
    CHECK(aqa_segment_iou(0, 10, 10, 20, AQA_IOU_TSA, &iou) == AQA_OK);
    CHECK_NEAR(iou, 0, 0);
    CHECK(aqa_segment_iou(0, 10, 10, 20, AQA_IOU_FRAMES, &iou) == AQA_OK);
    CHECK_NEAR(iou, 1.0 / 21.0, 1e-15);
    /* identical single frames: TSA's formula gives 0 (0/0 -> 0), frames 1 */
    CHECK(aqa_segment_iou(7, 7, 7, 7, AQA_IOU_TSA, &iou) == AQA_OK);
    CHECK_NEAR(iou, 0, 0);
    CHECK(aqa_segment_iou(7, 7, 7, 7, AQA_IOU_FRAMES, &iou) == AQA_OK);
    CHECK_NEAR(iou, 1, 0);
    /* AIoU counts IoU >= d inclusively: IoU exactly 0.5 passes d = 0.5 */
    const long p[] = {0, 10, 0, 10}, t[] = {0, 20, 50, 60};
    double a;
    CHECK(aqa_aiou(p, t, 2, 0.5, AQA_IOU_TSA, &a) == AQA_OK);
    CHECK_NEAR(a, 0.5, 0);
}

static void test_fisher_golden(void) {
    FILE *f = fopen(test_data_path("metrics/fisher.txt"), "r");
    if (!f) {
        SKIP("%.200s missing", test_data_path("metrics/fisher.txt"));
        return;
    }
    char line[1024];
    int cases_seen = 0;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "fisher ", 7) != 0) continue;
        double r[16], want, got = NAN;
        size_t k = 0;
        char *p = line + 7, *end;
        while (k < 16) {
            double x = strtod(p, &end);
            if (end == p) break;
            r[k++] = x;
            p = end;
        }
        CHECK(sscanf(p, " -> %lf", &want) == 1);
        CHECK(aqa_fisher_z_mean(r, k, &got) == AQA_OK);
        CHECK_NEAR(got, want, 1e-12);
        cases_seen++;
    }
    fclose(f);
    CHECK_EQ_INT(cases_seen, 4);
}

/* ---- .npy and text vectors ---- */

static void test_npy_read(void) {
    const double want_p[] = {1, 2, 2, 3, 5, 5, 5, 8}, want_t[] = {2.5, 1, 3, 3, 4, 6, 6, 5.5};
    const char *files[] = {"metrics/ties_small_pred_f8.npy", "metrics/ties_small_pred_i8.npy",
                           "metrics/column_f8.npy", "metrics/v2_f8.npy",
                           "metrics/ties_small_pred.txt", "metrics/ties_small_true_f4.npy",
                           "metrics/ties_small_true_f8.npy", "metrics/ties_small_true.txt"};
    if (access(test_data_path(files[0]), R_OK) != 0) {
        SKIP("%.200s missing", test_data_path(files[0]));
        return;
    }
    for (int i = 0; i < 8; i++) {
        double *v = NULL;
        size_t n = 0;
        aqa_status st = aqa_read_vector(test_data_path(files[i]), &v, &n);
        CHECK_MSG(st == AQA_OK, "%s: %s", files[i], aqa_last_error());
        CHECK_EQ_INT(n, 8);
        const double *want = i < 5 ? want_p : want_t;
        for (size_t j = 0; j < n && j < 8; j++) CHECK_NEAR(v[j], want[j], 0);
        free(v);
    }
    /* float32 values must widen exactly to the doubles numpy gives */
    double *gold, *v = NULL;
    size_t ng = golden_get("metrics/values_f4.txt", "values", &gold), n = 0;
    CHECK(ng == 5);
    CHECK(aqa_npy_read_vector(test_data_path("metrics/values_f4.npy"), &v, &n) == AQA_OK);
    CHECK_EQ_INT(n, ng);
    for (size_t j = 0; j < n && j < ng; j++) CHECK_NEAR(v[j], gold[j], 0);
    free(v);
    free(gold);
    /* the generic loader keeps dtype and shape */
    aqa_npy_array a;
    CHECK(aqa_npy_load(test_data_path("metrics/column_f8.npy"), &a) == AQA_OK);
    CHECK_EQ_INT(a.dtype, AQA_NPY_F8);
    CHECK_EQ_INT(a.ndim, 2);
    CHECK_EQ_INT(a.shape[0], 8);
    CHECK_EQ_INT(a.shape[1], 1);
    aqa_npy_free(&a);
}

static void test_npy_rejects(void) {
    struct {
        const char *file;
        aqa_status want;
        const char *msg;
    } bad[] = {
        {"metrics/bad_bigendian.npy", AQA_EUNSUPPORTED, "'>f8'"},
        {"metrics/bad_fortran.npy", AQA_EUNSUPPORTED, "Fortran"},
        {"metrics/bad_u1.npy", AQA_EUNSUPPORTED, "'|u1'"},
        {"metrics/bad_matrix.npy", AQA_EFORMAT, "1-D"},
        {"metrics/bad_truncated.npy", AQA_EFORMAT, "truncated"},
        {"metrics/does_not_exist.npy", AQA_EIO, "cannot open"},
    };
    if (access(test_data_path(bad[0].file), R_OK) != 0) {
        SKIP("%.200s missing", test_data_path(bad[0].file));
        return;
    }
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        double *v = (double *)1;
        size_t n = 0;
        aqa_status st = aqa_read_vector(test_data_path(bad[i].file), &v, &n);
        CHECK_MSG(st == bad[i].want, "%s: status %s, want %s", bad[i].file, aqa_status_name(st),
                  aqa_status_name(bad[i].want));
        CHECK_MSG(strstr(aqa_last_error(), bad[i].msg) != NULL, "%s: message \"%s\" lacks \"%s\"",
                  bad[i].file, aqa_last_error(), bad[i].msg);
        CHECK_MSG(strstr(aqa_last_error(), bad[i].file) != NULL, "message \"%s\" names no file",
                  aqa_last_error());
    }
}

/* Corrupted headers and sizes must give an error or a valid array, never a crash or an overread
 * (run under ASan/valgrind to make this bite). */
static void test_npy_fuzz(void) {
    FILE *f = fopen(test_data_path("metrics/ties_small_pred_f8.npy"), "rb");
    if (!f) {
        SKIP("%.200s missing", test_data_path("metrics/ties_small_pred_f8.npy"));
        return;
    }
    unsigned char orig[512];
    size_t len = fread(orig, 1, sizeof orig, f);
    fclose(f);
    CHECK(len == 192);
    uint64_t state = test_seed("npy fuzz") | 1;
    char path[] = "/tmp/aqa_test_npyfuzz_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    int ok = 0, failed = 0;
    for (int iter = 0; iter < 300; iter++) {
        unsigned char buf[512];
        memcpy(buf, orig, len);
        size_t n = len;
        int edits = 1 + iter % 4;
        for (int e = 0; e < edits; e++) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17; /* xorshift64 */
            size_t at = (size_t)(state % 128); /* the header lives in the first 128 bytes */
            buf[at] = (unsigned char)(state >> 24);
        }
        if (iter % 5 == 0) n = (size_t)((state >> 40) % len); /* also truncate */
        FILE *w = fopen(path, "wb");
        if (!w) break;
        fwrite(buf, 1, n, w);
        fclose(w);
        double *v = NULL;
        size_t count = 0;
        if (aqa_read_vector(path, &v, &count) == AQA_OK) {
            ok++;
            free(v);
        } else {
            failed++;
            CHECK(aqa_last_error()[0] != '\0');
        }
    }
    unlink(path);
    CHECK_EQ_INT(ok + failed, 300);
    CHECK(failed > 0);
}

/* Writes `text` to a fresh temporary file; returns its path (static buffer per slot). */
static const char *temp_file(int slot, const char *text, size_t len) {
    static char paths[4][64];
    snprintf(paths[slot], sizeof paths[slot], "/tmp/aqa_test_metrics_XXXXXX");
    int fd = mkstemp(paths[slot]);
    if (fd < 0) return NULL;
    if (write(fd, text, len) != (ssize_t)len) {
        close(fd);
        return NULL;
    }
    close(fd);
    return paths[slot];
}

static void test_text_vectors(void) {
    const char good[] = "# predictions\n1.5\n\n  -2e1  \r\n3\n";
    const char *p = temp_file(0, good, sizeof good - 1);
    double *v = NULL;
    size_t n = 0;
    CHECK(p != NULL);
    CHECK(aqa_read_vector(p, &v, &n) == AQA_OK);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_NEAR(v[0], 1.5, 0);
        CHECK_NEAR(v[1], -20, 0);
        CHECK_NEAR(v[2], 3, 0);
    }
    free(v);
    unlink(p);

    const char bad1[] = "1\nabc\n3\n", bad2[] = "1 2\n", bad3[] = "\n# nothing\n";
    const char *bads[] = {bad1, bad2, bad3};
    const size_t lens[] = {sizeof bad1 - 1, sizeof bad2 - 1, sizeof bad3 - 1};
    const char *msgs[] = {":2: not a number", ":1: expected one number per line", "no numbers"};
    for (int i = 0; i < 3; i++) {
        p = temp_file(1, bads[i], lens[i]);
        v = NULL;
        CHECK(aqa_read_vector(p, &v, &n) == AQA_EFORMAT);
        CHECK_MSG(strstr(aqa_last_error(), msgs[i]) != NULL, "message \"%s\" lacks \"%s\"",
                  aqa_last_error(), msgs[i]);
        CHECK(strstr(aqa_last_error(), p) != NULL);
        unlink(p);
    }
}

static void test_npy_write_roundtrip(void) {
    char path[] = "/tmp/aqa_test_npy_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0) return;
    close(fd);
    const double x[] = {0.1, -1e300, 3.25, 1e-310, 42};
    CHECK(aqa_npy_write_vector(path, x, 5) == AQA_OK);
    FILE *f = fopen(path, "rb");
    long size = -1;
    if (f) {
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fclose(f);
    }
    CHECK_EQ_INT(size, 128 + 5 * 8); /* header padded to 64 bytes (here 128), then the data */
    double *v = NULL;
    size_t n = 0;
    CHECK(aqa_npy_read_vector(path, &v, &n) == AQA_OK);
    CHECK_EQ_INT(n, 5);
    for (size_t i = 0; i < n && i < 5; i++) CHECK(memcmp(&v[i], &x[i], sizeof x[i]) == 0);
    free(v);
    unlink(path);
}

/* ---- evaluate's metrics mode: the library call and, when built, the program ---- */

static void test_evaluate_files(void) {
    const char *gold = "metrics/ties_small.txt";
    if (access(test_data_path(gold), R_OK) != 0) {
        SKIP("%.200s missing", test_data_path(gold));
        return;
    }
    const char *pairs[][2] = {
        {"metrics/ties_small_pred.txt", "metrics/ties_small_true.txt"},
        {"metrics/ties_small_pred_f8.npy", "metrics/ties_small_true_f4.npy"},
        {"metrics/ties_small_pred_i8.npy", "metrics/ties_small_true.txt"},
    };
    for (int i = 0; i < 3; i++) {
        char pp[4096];
        snprintf(pp, sizeof pp, "%s", test_data_path(pairs[i][0]));
        aqa_score_metrics m;
        aqa_status st = aqa_evaluate_files(pp, test_data_path(pairs[i][1]), &m);
        CHECK_MSG(st == AQA_OK, "%s", aqa_last_error());
        CHECK_EQ_INT(m.n, 8);
        CHECK_NEAR(m.spearman, golden_scalar(gold, "spearman"), TOL);
        CHECK_NEAR(m.pearson, golden_scalar(gold, "pearson"), TOL);
        CHECK_NEAR(m.rl2_x100, 100 * golden_scalar(gold, "rl2"), 100 * TOL);
        CHECK_NEAR(m.mse, golden_scalar(gold, "mse"), TOL);
    }
    /* mismatched lengths */
    const char three[] = "1\n2\n3\n";
    const char *p = temp_file(2, three, sizeof three - 1);
    aqa_score_metrics m;
    CHECK(aqa_evaluate_files(p, test_data_path("metrics/ties_small_true.txt"), &m) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "lengths must match") != NULL);
    unlink(p);
}

static void test_evaluate_program(void) {
    const char *prog = "./examples/evaluate";
    const char *gold = "metrics/ties_small.txt";
    if (access(prog, X_OK) != 0) {
        SKIP("%.200s not built (run from the build folder after make)", prog);
        return;
    }
    if (access(test_data_path(gold), R_OK) != 0) {
        SKIP("%.200s missing", test_data_path(gold));
        return;
    }
    char cmd[10240], pp[4096];
    snprintf(pp, sizeof pp, "%s", test_data_path("metrics/ties_small_pred_f8.npy"));
    snprintf(cmd, sizeof cmd, "%s --pred '%s' --true '%s' 2>&1", prog, pp,
             test_data_path("metrics/ties_small_true.txt"));
    FILE *f = popen(cmd, "r");
    CHECK(f != NULL);
    if (!f) return;
    char line[256];
    int seen = 0;
    while (fgets(line, sizeof line, f)) {
        char key[64];
        double v;
        if (sscanf(line, "%63s %lf", key, &v) != 2) continue;
        /* evaluate prints 10 significant digits */
        const struct {
            const char *key;
            double want, tol;
        } expect[] = {{"n", 8, 0},
                      {"spearman_rho", golden_scalar(gold, "spearman"), 1e-9},
                      {"pearson_r", golden_scalar(gold, "pearson"), 1e-9},
                      {"rl2_x100", 100 * golden_scalar(gold, "rl2"), 1e-8},
                      {"mse", golden_scalar(gold, "mse"), 1e-9}};
        for (int k = 0; k < 5; k++)
            if (strcmp(key, expect[k].key) == 0) {
                CHECK_NEAR(v, expect[k].want, expect[k].tol);
                seen++;
            }
    }
    int status = pclose(f);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ_INT(seen, 5);
    /* a missing --true, and an unreadable file, fail with a non-zero status and a message */
    snprintf(cmd, sizeof cmd, "%s --pred '%s' 2>&1", prog, pp);
    f = popen(cmd, "r");
    int said = 0;
    while (f && fgets(line, sizeof line, f)) said |= strstr(line, "--true") != NULL;
    status = f ? pclose(f) : -1;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    CHECK(said);
    snprintf(cmd, sizeof cmd, "%s --pred /nonexistent/p.txt --true '%s' 2>&1", prog, pp);
    f = popen(cmd, "r");
    said = 0;
    while (f && fgets(line, sizeof line, f)) said |= strstr(line, "/nonexistent/p.txt") != NULL;
    status = f ? pclose(f) : -1;
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0);
    CHECK(said);
}

int main(void) {
    (void)test_shared_path; /* testlib helpers this program does not need */
    RUN(test_golden_scipy);
    RUN(test_rank_ties_by_hand);
    RUN(test_errors);
    RUN(test_aiou_golden);
    RUN(test_iou_by_hand);
    RUN(test_fisher_golden);
    RUN(test_npy_read);
    RUN(test_npy_rejects);
    RUN(test_npy_fuzz);
    RUN(test_text_vectors);
    RUN(test_npy_write_roundtrip);
    RUN(test_evaluate_files);
    RUN(test_evaluate_program);
    return test_finish();
}
