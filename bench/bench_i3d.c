/* bench_i3d.c: the full-size I3D (random weights, pytorch-i3d's InceptionI3d up to the 1024-d
 * feature) on 16 x 224 x 224 clips: forward of one clip and of a 9-clip batch (eval, no
 * gradients), forward+backward of one clip (train mode, loss = sum of the features), in clips/s,
 * with the peak resident memory of each case, beside PyTorch on the same machine
 * (scripts/bench_torch_i3d.py; conventions of bench/bench_util.h).
 *
 * Each case runs in its own child process so that its peak memory (ru_maxrss) is its own; the
 * parent does no tensor work before forking (OpenMP/BLAS threads do not survive fork).
 *   bench/bench_i3d [--quick] [--train9]
 * --quick: 1 repetition each, no warm-up, 112 x 112 frames; --train9: also forward+backward of a
 * 9-clip batch (minutes, and ~10 GB for PyTorch).
 * On a shared machine, idle libgomp workers of both sides spin while other threads need the cores,
 * which inflates and scatters the times; OMP_WAIT_POLICY=passive (inherited by the PyTorch script)
 * gives steadier numbers.  The CPU-seconds columns are the steadier comparison. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "autograd/autograd.h"
#include "bench/bench_util.h"
#include "models/i3d/i3d.h"
#include "ops/ops.h"

enum { CASE_FWD1, CASE_FWD9, CASE_FWDBWD1, CASE_FWDBWD9, N_CASES };
static const char *const case_names[N_CASES] = {"forward, 1 clip", "forward, 9-clip batch", "fwd+bwd, 1 clip",
                                                "fwd+bwd, 9-clip batch"};
static const int case_clips[N_CASES] = {1, 9, 1, 9};

static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
           1e-6 * (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* One case in this (child) process: best seconds per call over reps (after warm-up calls); *cpu the
 * CPU seconds (all threads) of the fastest call. */
static double run_case(int c, int side, int warm, int reps, double *cpu) {
    aqa_manual_seed(1);
    aqa_i3d *m = aqa_i3d_new(NULL);
    if (!m) return -1;
    int64_t B = case_clips[c];
    aqa_tensor *x = aqa_rand(AQA_SHAPE(B, 3, 16, side, side), AQA_F32, NULL);
    double best = 1e30;
    for (int r = 0; r < warm + reps; r++) {
        double t0 = bench_now(), c0 = cpu_now();
        aqa_scope_begin();
        if (c == CASE_FWDBWD1 || c == CASE_FWDBWD9) {
            aqa_module_train(&m->base, true);
            aqa_tensor *f = aqa_i3d_forward(m, x);
            if (!f || aqa_backward(aqa_sum_all(f), NULL, false) != AQA_OK) best = -1;
            aqa_module_zero_grad(&m->base);
        } else {
            aqa_module_train(&m->base, false);
            bool prev = aqa_set_grad_enabled(false);
            if (!aqa_i3d_forward(m, x)) best = -1;
            aqa_set_grad_enabled(prev);
        }
        aqa_scope_end();
        double t = bench_now() - t0, ct = cpu_now() - c0;
        if (best < 0) {
            fprintf(stderr, "bench_i3d: %s\n", aqa_last_error());
            break;
        }
        if (r >= warm && t < best) best = t, *cpu = ct;
    }
    aqa_tensor_free(x);
    aqa_i3d_free(m);
    return best;
}

/* Runs case c in a child; *sec, *cpu and *peak_mb from it. */
static bool child_case(int c, int side, int warm, int reps, double *sec, double *cpu, double *peak_mb) {
    int fd[2];
    if (pipe(fd) != 0) return false;
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        close(fd[0]);
        double s[2] = {0, 0};
        s[0] = run_case(c, side, warm, reps, &s[1]);
        if (write(fd[1], s, sizeof s) != (ssize_t)sizeof s) _exit(1);
        _exit(0);
    }
    close(fd[1]);
    double s[2] = {-1, 0};
    ssize_t got = read(fd[0], s, sizeof s);
    close(fd[0]);
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0 || got != (ssize_t)sizeof s || s[0] < 0) return false;
    *sec = s[0];
    *cpu = s[1];
    *peak_mb = (double)ru.ru_maxrss / 1024.0;
    return true;
}

/* PyTorch's seconds, CPU seconds and peak MB for case c (false when unavailable). */
static bool torch_case(int c, int side, int warm, int reps, double *sec, double *cpu, double *peak_mb) {
    static const char *const case_args[N_CASES] = {"fwd1", "fwd9", "fwdbwd1", "fwdbwd9"};
    char args[128];
    snprintf(args, sizeof args, "--case %s --side %d --warm %d --reps %d", case_args[c], side, warm, reps);
    double v[3];
    if (!bench_torch_times("bench_torch_i3d.py", args, v, 3)) return false;
    *sec = v[0];
    *peak_mb = v[1];
    *cpu = v[2];
    return true;
}

int main(int argc, char **argv) {
    bool quick = false, train9 = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--quick")) quick = true;
        else if (!strcmp(argv[i], "--train9")) train9 = true;
    }
    int side = quick ? 112 : 224;
    const int warm[N_CASES] = {quick ? 0 : 1, 0, quick ? 0 : 1, 0};
    const int reps[N_CASES] = {quick ? 1 : 2, 1, quick ? 1 : 2, 1};
    char title[160];
    snprintf(title, sizeof title, "I3D (pytorch-i3d InceptionI3d to the 1024-d feature, random weights), 16x%dx%d clips, f32",
             side, side);
    bench_print_setup(title);
    static const char *const row_names[N_CASES] = {"I3D forward, 1 clip 16 x 224^2", "I3D forward, 9 clips",
                                                   "I3D forward + backward, 1 clip", "I3D forward + backward, 9 clips"};
    double res[N_CASES][6];
    bool have[N_CASES] = {false};
    int ncases = train9 ? N_CASES : CASE_FWDBWD9;
    for (int c = 0; c < ncases; c++) {
        double *r = res[c]; /* aqa s, cpu s, MB, torch s, cpu s, MB */
        if (!child_case(c, side, warm[c], reps[c], &r[0], &r[1], &r[2])) {
            printf("%-24s failed\n", case_names[c]);
            return 1;
        }
        have[c] = torch_case(c, side, warm[c], reps[c], &r[3], &r[4], &r[5]);
    }
    bench_print_head();
    for (int c = 0; c < ncases; c++)
        bench_row(row_names[c], "clips/s", case_clips[c] / res[c][0], have[c] ? case_clips[c] / res[c][3] : 0, true,
                  c != CASE_FWD9 && !quick);
    printf("  %-26s %8s %8s %8s | %8s %8s %8s\n", "", "aqa s", "cpu s", "peak MB", "torch s", "cpu s", "peak MB");
    for (int c = 0; c < ncases; c++) {
        printf("  %-26s %8.2f %8.2f %8.0f", case_names[c], res[c][0], res[c][1], res[c][2]);
        if (have[c]) printf(" | %8.2f %8.2f %8.0f\n", res[c][3], res[c][4], res[c][5]);
        else printf(" | %8s\n", "-");
    }
    printf("  (cpu s: CPU seconds of all threads of the fastest call; peak: ru_maxrss of the process running the case)\n");
    bench_print_foot();
    return 0;
}
