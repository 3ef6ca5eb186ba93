/* bench_util.h: what the benchmark programs share, one version of each: the clock, the timing
 * loop (best of repeated runs after a warm-up), the setup line (threads, clock, aqa's vector ISA,
 * the OpenBLAS kernels that ran, PyTorch's version or why there is none), running the PyTorch
 * counterpart script (scripts/bench_torch_*.py --machine) and the result rows.
 *
 * One convention for every program: ratio = aqa speed / PyTorch speed (PyTorch's time / aqa's
 * time for rows in ms), so > 1 means aqa is faster.  Both sides run the same number of threads:
 * OMP_NUM_THREADS (aqa's OpenMP team, which also splits the BLAS products), handed to the PyTorch
 * script as AQA_BENCH_THREADS.  AQA_BENCH_CLOCK=cpu times with CPU seconds instead of wall time on
 * both sides (steadier on a busy machine; compare one thread with one thread then).  Rows marked
 * for the summary are also appended to the file $AQA_BENCH_ROWS (`make bench` prints them as one
 * table at the end).  Nothing here changes OpenBLAS's settings (OPENBLAS_CORETYPE and the like are
 * left as the environment has them).  Header-only; GNU C (the timing loop is a statement
 * expression, so that its body can be any code). */
#ifndef AQA_BENCH_UTIL_H
#define AQA_BENCH_UTIL_H

#include <cblas.h>
#include <omp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor/cpu-impl.h"
#include "tensor/tensor.h"

/* True when AQA_BENCH_CLOCK=cpu: CPU seconds of the process (all threads) instead of wall time. */
__attribute__((unused)) static bool bench_cpu_clock(void) {
    const char *e = getenv("AQA_BENCH_CLOCK");
    return e && strcmp(e, "cpu") == 0;
}

/* Seconds on the benchmark clock (see bench_cpu_clock). */
__attribute__((unused)) static double bench_now(void) {
    static int cpu = -1;
    if (cpu < 0) cpu = bench_cpu_clock();
    struct timespec ts;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Threads of both sides: aqa's OpenMP team (OMP_NUM_THREADS, else all cores). */
__attribute__((unused)) static int bench_threads(void) { return omp_get_max_threads(); }

/* Runs the body (the macro's last arguments, any code) once to warm up, then at least `reps` times and, while they have taken less than
 * min_s seconds in all, more; returns the best run's time in seconds.  Each run has its own aqa
 * scope, whose end (freeing the run's tensors) is not timed. */
#define BENCH_BEST(reps, min_s, ...)                                         \
    ({                                                                       \
        double best_ = 1e30, spent_ = 0;                                     \
        for (int r_ = -1; r_ < (reps) || spent_ < (min_s); r_++) {           \
            aqa_scope_begin();                                               \
            double t0_ = bench_now();                                        \
            __VA_ARGS__;                                                     \
            double el_ = bench_now() - t0_;                                  \
            aqa_scope_end();                                                 \
            if (r_ >= 0) {                                                   \
                spent_ += el_;                                               \
                if (el_ < best_) best_ = el_;                                \
            }                                                                \
        }                                                                    \
        best_;                                                               \
    })

/* PyTorch as the python3 on PATH has it: "torch 2.x (mkldnn True)" in *what and true, or false and
 * why not (AQA_BENCH_TORCH=0, no python3, no torch).  Asked once per process. */
__attribute__((unused)) static bool bench_torch_found(const char **what) {
    static char msg[256];
    static int found = -1;
    if (found < 0) {
        const char *e = getenv("AQA_BENCH_TORCH");
        found = 0;
        if (e && strcmp(e, "0") == 0) {
            snprintf(msg, sizeof msg, "skipped (AQA_BENCH_TORCH=0)");
        } else {
            FILE *p = popen("python3 -c 'import torch; print(\"torch\", torch.__version__, \"(mkldnn\", "
                            "torch.backends.mkldnn.is_available(), end=\")\")' 2>&1",
                            "r");
            char line[200] = "";
            if (p) {
                if (!fgets(line, sizeof line, p)) line[0] = 0;
                while (fgetc(p) != EOF) {
                }
                found = pclose(p) == 0 && strncmp(line, "torch ", 6) == 0;
            }
            line[strcspn(line, "\n")] = 0;
            if (found) snprintf(msg, sizeof msg, "%s", line);
            else snprintf(msg, sizeof msg, "NOT FOUND: python3 on PATH cannot import torch, no PyTorch column");
        }
    }
    *what = msg;
    return found == 1;
}

/* The program's title and the setup line every table starts with. */
__attribute__((unused)) static void bench_print_setup(const char *title) {
    const char *torch;
    bench_torch_found(&torch);
    printf("%s\n", title);
    printf("  %d thread(s), %s clock, aqa kernels %s, OpenBLAS %s kernels (%s), PyTorch %s\n", bench_threads(),
           bench_cpu_clock() ? "CPU-time" : "wall", aqa__cpu_isa_name(aqa__cpu_isa()), openblas_get_corename(),
           openblas_get_config(), torch);
}

/* Runs "python3 scripts/<script> --machine <args>" (from the repository root or bench/'s parent
 * folder) with AQA_BENCH_THREADS set to bench_threads() and reads n numbers from its output into
 * t.  False when PyTorch is not found (bench_print_setup says why), the script is absent, or it
 * does not print n numbers. */
__attribute__((unused)) static bool bench_torch_times(const char *script, const char *args, double *t, int n) {
    const char *why;
    if (!bench_torch_found(&why)) return false;
    char path[256] = "";
    const char *const dirs[] = {"scripts", "../scripts"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs && !path[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], script);
        FILE *f = fopen(path, "r");
        if (f) fclose(f);
        else path[0] = 0;
    }
    if (!path[0]) return false;
    char cmd[768];
    snprintf(cmd, sizeof cmd, "AQA_BENCH_THREADS=%d python3 %s --machine %s 2>/dev/null", bench_threads(), path,
             args ? args : "");
    FILE *p = popen(cmd, "r");
    if (!p) return false;
    int got = 0;
    for (int i = 0; i < n; i++) got += fscanf(p, "%lf", &t[i]) == 1;
    pclose(p);
    return got == n;
}

/* The column heads of bench_row. */
__attribute__((unused)) static void bench_print_head(void) {
    printf("%-52s %10s %10s %7s\n", "work", "aqa", "PyTorch", "ratio");
}

/* One result row: aqa's and PyTorch's values in `unit` (torch <= 0: none), higher_better for
 * speeds (GFLOP/s, images/s), false for times (ms); ratio = aqa speed / PyTorch speed.  With
 * summary, the row also goes to $AQA_BENCH_ROWS as "work (unit)|aqa|torch|ratio". */
__attribute__((unused)) static void bench_row(const char *work, const char *unit, double aqa, double torch,
                                              bool higher_better, bool summary) {
    char label[160];
    snprintf(label, sizeof label, "%s (%s)", work, unit);
    double ratio = torch > 0 && aqa > 0 ? (higher_better ? aqa / torch : torch / aqa) : 0;
    if (ratio > 0) printf("%-52s %10.2f %10.2f %7.2f\n", label, aqa, torch, ratio);
    else printf("%-52s %10.2f %10s %7s\n", label, aqa, "-", "-");
    const char *rows = getenv("AQA_BENCH_ROWS");
    FILE *f = summary && rows && *rows ? fopen(rows, "a") : NULL;
    if (f) {
        if (ratio > 0) fprintf(f, "%s|%.3g|%.3g|%.2f\n", label, aqa, torch, ratio);
        else fprintf(f, "%s|%.3g|-|-\n", label, aqa);
        fclose(f);
    }
}

/* The line under every table: the ratio convention. */
__attribute__((unused)) static void bench_print_foot(void) {
    printf("  (ratio = aqa speed / PyTorch speed, for ms rows PyTorch ms / aqa ms: > 1 means aqa is faster)\n\n");
}

#endif /* AQA_BENCH_UTIL_H */
