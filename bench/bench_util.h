/* bench_util.h: what the benchmark programs share, one version of each: a monotonic clock, the
 * timing loop (best of repeated runs after a warm-up) and running the PyTorch counterpart script
 * (scripts/bench_torch_*.py --machine) for the comparison column.  Header-only; GNU C (the
 * timing loop is a statement expression, so that its body can be any code). */
#ifndef AQA_BENCH_UTIL_H
#define AQA_BENCH_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tensor/tensor.h"

/* Seconds on the benchmark clock: the monotonic (wall) clock, or with AQA_BENCH_CLOCK=cpu the
 * process's CPU time (all threads; user + system), which other jobs on a shared machine disturb
 * far less than wall time.  Compare CPU times only with one thread on both sides
 * (OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1, and the torch scripts read the same variable). */
__attribute__((unused)) static double bench_now(void) {
    static int cpu = -1;
    if (cpu < 0) {
        const char *e = getenv("AQA_BENCH_CLOCK");
        cpu = e && strcmp(e, "cpu") == 0;
    }
    struct timespec ts;
    clock_gettime(cpu ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

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

/* Runs "python3 scripts/<script> --machine <args>" (from the repository root or bench/'s parent
 * folder) and reads n numbers from its output into t.  False when AQA_BENCH_TORCH=0, the script
 * is absent, or it does not print n numbers (no python3 with torch). */
__attribute__((unused)) static bool bench_torch_times(const char *script, const char *args, double *t, int n) {
    const char *e = getenv("AQA_BENCH_TORCH");
    if (e && strcmp(e, "0") == 0) return false;
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
    snprintf(cmd, sizeof cmd, "python3 %s --machine %s 2>/dev/null", path, args ? args : "");
    FILE *p = popen(cmd, "r");
    if (!p) return false;
    int got = 0;
    for (int i = 0; i < n; i++) got += fscanf(p, "%lf", &t[i]) == 1;
    pclose(p);
    return got == n;
}

#endif /* AQA_BENCH_UTIL_H */
