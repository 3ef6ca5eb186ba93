/* bench_dist.c: the process group's collectives and data-parallel training, measured:
 *   - CPU all-reduce of float32 buffers on 2 ranks over MPI (mpirun; beside Open MPI's own
 *     MPI_Allreduce) and over TCP (2 forked ranks, loopback): time, algorithm and bus bandwidth
 *     as nccl-tests report them (algbw = bytes / time, busbw = algbw x 2 (n - 1) / n);
 *   - on a GPU machine: NCCL all-reduce bandwidth on every GPU (one rank per GPU; with one GPU the
 *     NCCL path runs on one rank), and the data-parallel MVLA step (bench/mvla_step.h, 16 videos
 *     per rank, the gradient tree of nn/data_parallel.h) on 1 and on all GPUs: videos/s and
 *     scaling efficiency.  Without a GPU these lines say "skipped".
 * Timings on a shared machine are noisy (the best of several runs is kept for steps, the mean of
 * many calls for collectives, as nccl-tests does).
 *
 * Usage: bench/bench_dist [--quick]   (the program starts its ranks itself: mpirun for the MPI
 * rows, fork for the others) */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench_util.h"
#include "autograd/autograd.h"
#include "bench/mvla_step.h"
#include "config.h"
#include "dist/dist.h"
#include "nn/data_parallel.h"
#include "ops/ops.h"
#include "tests/dist_testlib.h"
#ifdef AQA_HAVE_MPI
#include <mpi.h>
#endif
#ifdef AQA_HAVE_CUDA
#include "tensor/cuda/cuda.h"
#endif

static bool g_quick;

/* The number of calls every rank makes: enough for ~0.3 s at the slowest rank's pace (ranks
 * must agree, or the collectives would not pair up). */
static int agreed_calls(aqa_dist *pg, double seconds_per_call) {
    aqa_scope_begin();
    aqa_tensor *t = aqa_full(AQA_SHAPE(1), seconds_per_call, AQA_F64);
    aqa_dist_all_reduce(pg, t, AQA_DIST_MAX);
    double s = *(double *)aqa_data(t);
    aqa_scope_end();
    double n = (g_quick ? 0.1 : 0.3) / (s > 1e-7 ? s : 1e-7);
    return n < 3 ? 3 : n > 20000 ? 20000 : (int)n;
}

/* Mean seconds of one call of op (rank 0's view) over an agreed number of calls, after a
 * warm-up call and a barrier. */
#define MEAN_TIME(pg, op)                                                        \
    ({                                                                           \
        op;                                                                      \
        double c0_ = bench_now();                                                \
        op;                                                                      \
        int n_ = agreed_calls(pg, bench_now() - c0_);                            \
        aqa_dist_barrier(pg);                                                    \
        double t0_ = bench_now();                                                \
        for (int i_ = 0; i_ < n_; i_++) op;                                      \
        (bench_now() - t0_) / n_;                                                \
    })

/* The all-reduce table of one group; `dev` the buffers' device.  0, or 1 on failure. */
static int allreduce_table(aqa_dist *pg, aqa_device dev, const char *title) {
    int n = aqa_dist_size(pg), r = aqa_dist_rank(pg);
    double factor = n > 1 ? 2.0 * (n - 1) / n : 1.0;
    bool mpi = !strcmp(aqa_dist_backend(pg), "mpi");
    if (r == 0) {
        printf("\n%s (%d rank%s, %s)\n", title, n, n > 1 ? "s" : "", aqa_dist_backend(pg));
        printf("%12s %12s %12s %12s%s\n", "bytes", "time us", "algbw GB/s", "busbw GB/s", mpi ? "  MPI_Allreduce busbw" : "");
    }
    const int64_t sizes[] = {256, 16384, 262144, 4194304, 16777216};
    int ns = g_quick ? 4 : 5;
    for (int k = 0; k < ns; k++) {
        aqa_scope_begin();
        aqa_tensor *t = aqa_to_device(aqa_full(1, &sizes[k], 1.0, AQA_F32), dev);
        bool ok = true;
        double s = MEAN_TIME(pg, ok = ok && aqa_dist_all_reduce(pg, t, AQA_DIST_SUM) == AQA_OK);
        if (!ok) {
            printf("rank %d: %s\n", r, aqa_last_error());
            aqa_scope_end();
            return 1;
        }
        double bytes = (double)sizes[k] * 4, alg = bytes / s / 1e9;
        char extra[48] = "";
#ifdef AQA_HAVE_MPI
        if (mpi) {
            float *buf = aqa_data(t);
            double sm = MEAN_TIME(pg, MPI_Allreduce(MPI_IN_PLACE, buf, (int)sizes[k], MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
            snprintf(extra, sizeof extra, "  %20.3f", bytes / sm / 1e9 * factor);
        }
#endif
        if (r == 0) printf("%12.0f %12.1f %12.3f %12.3f%s\n", bytes, s * 1e6, alg, alg * factor, extra);
        aqa_scope_end();
    }
    fflush(stdout);
    return 0;
}

static int cpu_ranks(aqa_dist *pg, void *arg) {
    (void)arg;
    return allreduce_table(pg, AQA_DEVICE_CPU, "CPU all-reduce, float32");
}

#ifdef AQA_HAVE_CUDA
static int gpu_count(void) {
    /* asked in a child: the parent stays free of CUDA state before forking */
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) exit(aqa_cuda_is_available() ? (aqa_cuda_device_count() > 8 ? 8 : aqa_cuda_device_count()) : 0);
    int st = 0;
    waitpid(p, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 0;
}

static int nccl_ranks(aqa_dist *pg, void *arg) {
    (void)arg;
    return allreduce_table(pg, aqa_cuda_device(aqa_dist_local_rank(pg)), "NCCL all-reduce on GPU, float32");
}

/* The data-parallel MVLA step: every rank one micro-batch of the global batch (16 videos each). */
static int step_ranks(aqa_dist *pg, void *arg) {
    double *out = arg;
    int n = aqa_dist_size(pg), r = aqa_dist_rank(pg);
    aqa_device dev = aqa_cuda_device(aqa_dist_local_rank(pg));
    mvla_step st;
    if (mvla_step_init(&st, dev)) {
        printf("rank %d: %s\n", r, aqa_last_error());
        return 1;
    }
    /* every trained parameter, in the optimizer's order (the model's, then the head's) */
    aqa_tensor **all = NULL;
    aqa_module *models[2] = {&st.m->base, &st.h->base};
    int np = aqa_module_parameters(&st.m->base, &all);
    aqa_tensor **hp = NULL;
    int nh = aqa_module_parameters(&st.h->base, &hp);
    all = realloc(all, sizeof *all * (size_t)(np + nh + 1));
    memcpy(all + np, hp, sizeof *hp * (size_t)nh);
    free(hp);
    aqa_ddp *d = aqa_ddp_new(pg, models, 2, all, np + nh, NULL);
    int rc = !d || aqa_ddp_sync_model(d);
    bool ok = !rc;
    double t = BENCH_BEST(3, g_quick ? 1.0 : 3.0, {
        ok = ok && aqa_ddp_step_begin(d, n) == AQA_OK && aqa_ddp_micro_begin(d, r) == AQA_OK;
        aqa_tensor *l = ok ? mvla_step_loss(&st, NULL, NULL) : NULL;
        ok = ok && l && aqa_backward(l, NULL, false) == AQA_OK && aqa_ddp_micro_end(d, r, 1.0 / n, NULL) == AQA_OK &&
             aqa_ddp_step_end(d, NULL) == AQA_OK && aqa_optim_step(st.opt) == AQA_OK &&
             aqa_cuda_synchronize(dev.index) == AQA_OK;
    });
    if (!ok) {
        printf("rank %d: step failed: %s\n", r, aqa_last_error());
        rc = 1;
    }
    if (r == 0 && out) {
        FILE *f = fopen((const char *)out, "w");
        if (f) fprintf(f, "%.9g\n", t), fclose(f);
    }
    aqa_ddp_free(d);
    free(all);
    mvla_step_free(&st);
    return rc;
}
#endif

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[argc - 1], "--quick")) g_quick = true;
    if (getenv("OMPI_COMM_WORLD_SIZE")) {
        /* a rank started by mpirun (below) */
        aqa_dist *pg = NULL;
        if (aqa_dist_init(&pg)) {
            printf("bench_dist: %s\n", aqa_last_error());
            return 1;
        }
        int rc = allreduce_table(pg, AQA_DEVICE_CPU, "CPU all-reduce, float32");
        aqa_dist_free(pg);
        return rc;
    }
    printf("bench_dist: collectives and data-parallel steps (timings on a shared machine are noisy)\n");
#ifdef AQA_HAVE_MPI
    if (system("mpirun --version >/dev/null 2>&1") == 0) {
        char cmd[4096];
        snprintf(cmd, sizeof cmd, "mpirun -np 2 %s--oversubscribe %s%s", geteuid() == 0 ? "--allow-run-as-root " : "",
                 argv[0], g_quick ? " --quick" : "");
        fflush(stdout);
        if (system(cmd) != 0) printf("bench_dist: the MPI ranks failed\n");
    } else {
        printf("\nCPU all-reduce over MPI: skipped (no mpirun)\n");
    }
#else
    printf("\nCPU all-reduce over MPI: skipped (built without MPI)\n");
#endif
    if (dist_test_run(2, NULL, 60, 300, cpu_ranks, NULL, NULL)) printf("bench_dist: the TCP ranks failed\n");
#ifdef AQA_HAVE_CUDA
    int gpus = gpu_count();
    if (!gpus) {
        printf("\nNCCL all-reduce and data-parallel MVLA step: skipped (no GPU)\n");
        return 0;
    }
    if (dist_test_run(gpus, NULL, 60, 300, nccl_ranks, NULL, NULL)) printf("bench_dist: the NCCL ranks failed\n");
    char path[64];
    snprintf(path, sizeof path, "/tmp/aqa_bench_dist_%d", (int)getpid());
    double t[2] = {NAN, NAN};
    int counts[2] = {1, gpus};
    for (int k = 0; k < (gpus > 1 ? 2 : 1); k++) {
        remove(path);
        if (dist_test_run(counts[k], NULL, 120, 600, step_ranks, path, NULL)) printf("bench_dist: step ranks failed\n");
        FILE *f = fopen(path, "r");
        if (f && fscanf(f, "%lf", &t[k]) != 1) t[k] = NAN;
        if (f) fclose(f);
    }
    remove(path);
    printf("\ndata-parallel MVLA training step (TSA head, 16 videos per GPU, gradients summed in the fixed tree)\n");
    printf("%6s %12s %12s %12s\n", "GPUs", "step ms", "videos/s", "efficiency");
    for (int k = 0; k < (gpus > 1 ? 2 : 1); k++)
        printf("%6d %12.2f %12.1f %12.2f\n", counts[k], t[k] * 1e3, MVLA_V * counts[k] / t[k], t[0] / t[k]);
    if (gpus == 1) printf("(one GPU: the scaling row needs several)\n");
#else
    printf("\nNCCL all-reduce and data-parallel MVLA step: skipped (built without the CUDA toolkit)\n");
#endif
    return 0;
}
