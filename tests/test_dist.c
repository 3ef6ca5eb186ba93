/* test_dist.c: the process group's collectives on 2 and 3 ranks (forked processes joined by the
 * TCP and the file rendezvous), their failure modes (a rank that dies, a rank that stalls, bad
 * environment variables), and the NCCL path (presence without a GPU, collectives with one).
 *
 * `mpirun -np N tests/test_dist --mpi` runs the same collective checks over MPI
 * (tests/test_dist_train.sh does, when mpirun exists). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dist/dist-impl.h"
#include "ops/ops.h"
#include "tests/dist_testlib.h"
#ifdef AQA_HAVE_CUDA
#include "tensor/cuda/cuda.h"
#endif

#define RCHECK(pg, cond, ...)                                                        \
    do {                                                                             \
        if (!(cond)) {                                                               \
            printf("    rank %d: %s:%d: ", aqa_dist_rank(pg), __FILE__, __LINE__);   \
            printf(__VA_ARGS__);                                                     \
            printf("\n");                                                            \
            fails++;                                                                 \
        }                                                                            \
    } while (0)

/* A value every rank can compute for (rank, i), exact in float32 sums of a few ranks. */
static float val(int r, int64_t i) { return (float)((i % 1000) - 500) + 0.25f * (float)r; }

/* FNV-1a of bytes (the same-bits-on-every-rank check). */
static uint64_t fnv(const void *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
    return h;
}

/* Every collective against values computed locally; returns the failures of this rank. */
static int check_collectives(aqa_dist *pg, void *arg) {
    (void)arg;
    int fails = 0, r = aqa_dist_rank(pg), n = aqa_dist_size(pg);
    aqa_scope_begin();
    /* all_reduce sum / max / min, sizes around the ring's chunking and a large one */
    const int64_t sizes[] = {1, 2, 7, 1001, 300007};
    for (int k = 0; k < 5; k++) {
        int64_t m = sizes[k];
        aqa_tensor *t = aqa_empty(1, &m, AQA_F32), *tmax = aqa_empty(1, &m, AQA_F64), *ti = aqa_empty(1, &m, AQA_I64);
        float *p = aqa_data(t);
        double *q = aqa_data(tmax);
        int64_t *z = aqa_data(ti);
        for (int64_t i = 0; i < m; i++) p[i] = val(r, i), q[i] = (double)((r * 7 + i) % 5), z[i] = (int64_t)r * i;
        RCHECK(pg, aqa_dist_all_reduce(pg, t, AQA_DIST_SUM) == AQA_OK, "all_reduce: %s", aqa_last_error());
        RCHECK(pg, aqa_dist_all_reduce(pg, tmax, AQA_DIST_MAX) == AQA_OK, "all_reduce max: %s", aqa_last_error());
        RCHECK(pg, aqa_dist_all_reduce(pg, ti, AQA_DIST_SUM) == AQA_OK, "all_reduce i64: %s", aqa_last_error());
        int bad = 0;
        for (int64_t i = 0; i < m; i++) {
            float want = 0;
            double wmax = -1;
            int64_t wi = 0;
            for (int k2 = 0; k2 < n; k2++) {
                want += val(k2, i);
                wmax = fmax(wmax, (double)((k2 * 7 + i) % 5));
                wi += (int64_t)k2 * i;
            }
            bad += p[i] != want || q[i] != wmax || z[i] != wi;
        }
        RCHECK(pg, bad == 0, "all_reduce of %lld elements: %d wrong", (long long)m, bad);
    }
    /* random floats (inexact sums): every rank ends with the same bits */
    int64_t m = 100003;
    aqa_tensor *t = aqa_empty(1, &m, AQA_F32);
    float *p = aqa_data(t);
    uint64_t s = 0x9E3779B97F4A7C15ull * (uint64_t)(r + 1);
    for (int64_t i = 0; i < m; i++) {
        s ^= s << 13, s ^= s >> 7, s ^= s << 17;
        p[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5) * 1e3f;
    }
    RCHECK(pg, aqa_dist_all_reduce(pg, t, AQA_DIST_SUM) == AQA_OK, "%s", aqa_last_error());
    int64_t one = 1, nn = n;
    aqa_tensor *h = aqa_full(1, &one, 0, AQA_I64), *hs = aqa_empty(1, &nn, AQA_I64);
    *(int64_t *)aqa_data(h) = (int64_t)fnv(p, (size_t)m * sizeof *p);
    RCHECK(pg, aqa_dist_all_gather(pg, h, hs) == AQA_OK, "all_gather: %s", aqa_last_error());
    for (int k = 1; k < n; k++)
        RCHECK(pg, ((int64_t *)aqa_data(hs))[k] == ((int64_t *)aqa_data(hs))[0], "rank %d's all_reduce bits differ", k);
    /* broadcast from each root, small and large (scatter + ring) */
    for (int root = 0; root < n; root++) {
        for (int big = 0; big < 2; big++) {
            int64_t bm = big ? 70001 : 5;
            aqa_tensor *b = aqa_empty(1, &bm, AQA_F64);
            double *bv = aqa_data(b);
            for (int64_t i = 0; i < bm; i++) bv[i] = r == root ? (double)i * 0.5 + root : -1;
            RCHECK(pg, aqa_dist_broadcast(pg, b, root) == AQA_OK, "broadcast: %s", aqa_last_error());
            int bad = 0;
            for (int64_t i = 0; i < bm; i++) bad += bv[i] != (double)i * 0.5 + root;
            RCHECK(pg, bad == 0, "broadcast of %lld from rank %d: %d wrong", (long long)bm, root, bad);
        }
    }
    /* all_gather of [2, 3] per rank into [n, 2, 3] */
    aqa_tensor *g = aqa_empty(AQA_SHAPE(2, 3), AQA_F32), *ga = aqa_empty(AQA_SHAPE(n, 2, 3), AQA_F32);
    for (int i = 0; i < 6; i++) ((float *)aqa_data(g))[i] = (float)(10 * r + i);
    RCHECK(pg, aqa_dist_all_gather(pg, g, ga) == AQA_OK, "all_gather: %s", aqa_last_error());
    for (int k = 0; k < n; k++)
        for (int i = 0; i < 6; i++)
            RCHECK(pg, ((float *)aqa_data(ga))[k * 6 + i] == (float)(10 * k + i), "all_gather block %d", k);
    /* point to point around the ring (even ranks send first, so there is no cycle of waits) */
    if (n > 1) {
        int64_t pm = 33;
        aqa_tensor *out = aqa_full(1, &pm, (double)r, AQA_F32), *in = aqa_zeros(1, &pm, AQA_F32);
        int right = (r + 1) % n, left = (r + n - 1) % n;
        aqa_status a, b;
        if (r % 2 == 0) a = aqa_dist_send(pg, out, right), b = aqa_dist_recv(pg, in, left);
        else b = aqa_dist_recv(pg, in, left), a = aqa_dist_send(pg, out, right);
        RCHECK(pg, a == AQA_OK && b == AQA_OK, "send/recv: %s", aqa_last_error());
        RCHECK(pg, ((float *)aqa_data(in))[32] == (float)left, "recv got %g", ((float *)aqa_data(in))[32]);
        RCHECK(pg, aqa_dist_send(pg, out, r) == AQA_EINVAL, "sending to itself is an error");
    }
    /* bytes of different sizes */
    char msg[64];
    int len = snprintf(msg, sizeof msg, "rank%d%.*s", r, r, "xxxxxxxx");
    void *all = NULL;
    size_t sz[64], total = 0;
    RCHECK(pg, aqa_dist_all_gather_bytes(pg, msg, (size_t)len, &all, sz, &total) == AQA_OK, "%s", aqa_last_error());
    size_t at = 0;
    for (int k = 0; all && k < n; k++) {
        char want[64];
        int wl = snprintf(want, sizeof want, "rank%d%.*s", k, k, "xxxxxxxx");
        RCHECK(pg, sz[k] == (size_t)wl && !memcmp((char *)all + at, want, (size_t)wl), "bytes of rank %d", k);
        at += sz[k];
    }
    RCHECK(pg, total == at, "total %zu", total);
    free(all);
    RCHECK(pg, aqa_dist_barrier(pg) == AQA_OK, "barrier: %s", aqa_last_error());
    aqa_scope_end();
    return fails;
}

static void test_single_process_group(void) {
    unsetenv("WORLD_SIZE");
    unsetenv("OMPI_COMM_WORLD_SIZE");
    aqa_dist *pg = NULL;
    CHECK(aqa_dist_init(&pg) == AQA_OK);
    CHECK_EQ_INT(aqa_dist_size(pg), 1);
    CHECK_EQ_INT(aqa_dist_rank(pg), 0);
    CHECK_STR(aqa_dist_backend(pg), "single");
    CHECK_EQ_INT(check_collectives(pg, NULL), 0);
    aqa_dist_free(pg);
}

static void test_collectives_tcp_2_ranks(void) {
    CHECK_EQ_INT(dist_test_run(2, NULL, 20, 60, check_collectives, NULL, NULL), 0);
}

static void test_collectives_tcp_3_ranks(void) {
    CHECK_EQ_INT(dist_test_run(3, NULL, 20, 60, check_collectives, NULL, NULL), 0);
}

static void test_collectives_file_rendezvous(void) {
    char rdv[256];
    dist_test_rendezvous(true, rdv, sizeof rdv);
    CHECK_EQ_INT(dist_test_run(3, rdv, 20, 60, check_collectives, NULL, NULL), 0);
    /* the address files are gone once everyone is connected */
    char path[300];
    snprintf(path, sizeof path, "%s.0", rdv + 7);
    CHECK_MSG(access(path, F_OK) != 0, "%s left behind", path);
    char *slash = strrchr(rdv, '/');
    *slash = 0;
    rmdir(rdv + 7);
}

/* Rank 1 dies (exits without a word); rank 0's next collective names it, at once. */
static int die_or_reduce(aqa_dist *pg, void *arg) {
    (void)arg;
    int fails = 0;
    if (aqa_dist_rank(pg) == 1) {
        fflush(stdout);
        _exit(0); /* as a killed process: no goodbye */
    }
    aqa_scope_begin();
    int64_t m = 1000;
    aqa_tensor *t = aqa_ones(1, &m, AQA_F32);
    double t0 = aqa__dist_now();
    aqa_status st = aqa_dist_all_reduce(pg, t, AQA_DIST_SUM);
    RCHECK(pg, st != AQA_OK, "all_reduce with a dead rank succeeded");
    RCHECK(pg, strstr(aqa_last_error(), "rank 1 closed its connection") && strstr(aqa_last_error(), "rank 0 of 2"),
           "message: %s", aqa_last_error());
    RCHECK(pg, aqa__dist_now() - t0 < 5, "noticed after %.1f s (timeout 30 s)", aqa__dist_now() - t0);
    /* the group stays failed, with the first message */
    RCHECK(pg, aqa_dist_failed(pg) && aqa_dist_barrier(pg) != AQA_OK && strstr(aqa_last_error(), "rank 1 closed"),
           "later calls: %s", aqa_last_error());
    aqa_scope_end();
    return fails;
}

static void test_dead_rank_is_named(void) {
    int rc[2];
    dist_test_run(2, NULL, 30, 60, die_or_reduce, NULL, rc);
    CHECK_EQ_INT(rc[0], 0);
}

/* Rank 1 stalls longer than the timeout; rank 0 gives up naming it. */
static int stall_or_reduce(aqa_dist *pg, void *arg) {
    (void)arg;
    int fails = 0;
    if (aqa_dist_rank(pg) == 1) {
        struct timespec ts = {3, 0};
        nanosleep(&ts, NULL);
        return 0;
    }
    aqa_dist_set_timeout(pg, 0.5);
    aqa_scope_begin();
    aqa_tensor *t = aqa_ones(AQA_SHAPE(10), AQA_F32);
    double t0 = aqa__dist_now();
    aqa_status st = aqa_dist_broadcast(pg, t, 1);
    double dt = aqa__dist_now() - t0;
    RCHECK(pg, st != AQA_OK && strstr(aqa_last_error(), "timed out after 0.5 s waiting for rank 1"), "message: %s",
           aqa_last_error());
    RCHECK(pg, dt > 0.4 && dt < 2.5, "gave up after %.2f s", dt);
    aqa_scope_end();
    return fails;
}

static void test_stalled_rank_times_out(void) {
    int rc[2];
    dist_test_run(2, NULL, 30, 60, stall_or_reduce, NULL, rc);
    CHECK_EQ_INT(rc[0], 0);
}

static void test_environment_errors(void) {
    aqa_dist *pg = NULL;
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("AQA_DIST_INIT");
    unsetenv("MASTER_ADDR");
    setenv("WORLD_SIZE", "2", 1);
    setenv("RANK", "0", 1);
    CHECK(aqa_dist_init(&pg) != AQA_OK && !pg);
    CHECK_MSG(strstr(aqa_last_error(), "MASTER_ADDR"), "%s", aqa_last_error());
    setenv("RANK", "2", 1);
    CHECK(aqa_dist_init(&pg) != AQA_OK);
    CHECK_MSG(strstr(aqa_last_error(), "RANK=\"2\""), "%s", aqa_last_error());
    setenv("RANK", "0", 1);
    setenv("AQA_DIST_INIT", "udp://x", 1);
    CHECK(aqa_dist_init(&pg) != AQA_OK);
    CHECK_MSG(strstr(aqa_last_error(), "unknown rendezvous"), "%s", aqa_last_error());
    setenv("AQA_DIST_INIT", "tcp://127.0.0.1:1", 1);
    setenv("AQA_DIST_TIMEOUT", "zero", 1);
    CHECK(aqa_dist_init(&pg) != AQA_OK);
    CHECK_MSG(strstr(aqa_last_error(), "AQA_DIST_TIMEOUT"), "%s", aqa_last_error());
    /* rank 1 alone: nobody listens at the rendezvous, so it gives up after the timeout */
    setenv("AQA_DIST_TIMEOUT", "0.3", 1);
    setenv("RANK", "1", 1);
    CHECK(aqa_dist_init(&pg) != AQA_OK);
    CHECK_MSG(strstr(aqa_last_error(), "rank 0 (the rendezvous)"), "%s", aqa_last_error());
    unsetenv("WORLD_SIZE");
    unsetenv("RANK");
    unsetenv("AQA_DIST_INIT");
    unsetenv("AQA_DIST_TIMEOUT");
}

#ifdef AQA_HAVE_CUDA
/* The collectives on CUDA tensors (NCCL) against the same on CPU tensors. */
static int check_cuda(aqa_dist *pg, void *arg) {
    (void)arg;
    int fails = 0, r = aqa_dist_rank(pg), n = aqa_dist_size(pg);
    aqa_device dev = aqa_cuda_device(aqa_dist_local_rank(pg) % aqa_cuda_device_count());
    aqa_scope_begin();
    int64_t m = 1 << 20;
    aqa_tensor *c = aqa_empty(1, &m, AQA_F32);
    for (int64_t i = 0; i < m; i++) ((float *)aqa_data(c))[i] = val(r, i);
    aqa_tensor *d = aqa_to_device(c, dev);
    RCHECK(pg, aqa_dist_all_reduce(pg, d, AQA_DIST_SUM) == AQA_OK, "cuda all_reduce: %s", aqa_last_error());
    RCHECK(pg, aqa_dist_all_reduce(pg, c, AQA_DIST_SUM) == AQA_OK, "cpu all_reduce: %s", aqa_last_error());
    RCHECK(pg, aqa_item(aqa_max_all(aqa_abs(aqa_sub(aqa_to_device(d, AQA_DEVICE_CPU), c)))) == 0, "cuda != cpu sum");
    aqa_tensor *b = aqa_to_device(aqa_full(1, &m, r == 0 ? 3.0 : 0.0, AQA_F32), dev);
    RCHECK(pg, aqa_dist_broadcast(pg, b, 0) == AQA_OK && aqa_item(aqa_min_all(b)) == 3.0, "cuda broadcast");
    aqa_tensor *ga = aqa_to_device(aqa_zeros(AQA_SHAPE(n, 4), AQA_F32), dev);
    RCHECK(pg, aqa_dist_all_gather(pg, aqa_to_device(aqa_full(AQA_SHAPE(4), r, AQA_F32), dev), ga) == AQA_OK &&
                   aqa_item(aqa_sum_all(ga)) == 4.0 * n * (n - 1) / 2,
           "cuda all_gather");
    printf("    rank %d: backend %s\n", r, aqa_dist_backend(pg));
    aqa_scope_end();
    return fails;
}
#endif

static void test_nccl_path(void) {
#ifdef AQA_HAVE_CUDA
    int v = aqa__dist_nccl_version();
    if (!v) {
        SKIP("NCCL not found (libnccl.so.2): CUDA tensors are staged through host memory");
        return;
    }
    printf("    NCCL %d.%d.%d loads\n", v / 10000, (v / 100) % 100, v % 100);
    /* a GPU check in a child: the parent stays free of CUDA state before forking */
    int gpus = 0;
    fflush(stdout);
    pid_t p = fork();
    if (p == 0) exit(aqa_cuda_is_available() ? (aqa_cuda_device_count() > 8 ? 8 : aqa_cuda_device_count()) : 0);
    int st = 0;
    waitpid(p, &st, 0);
    gpus = WIFEXITED(st) ? WEXITSTATUS(st) : 0;
    if (!gpus) {
        SKIP("NCCL %d loads; no GPU for its collectives", v);
        return;
    }
    CHECK_EQ_INT(dist_test_run(gpus, NULL, 60, 300, check_cuda, NULL, NULL), 0);
#else
    SKIP("built without the CUDA toolkit");
#endif
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--mpi")) {
        /* under mpirun: every rank checks; rank 0 reports */
        aqa_dist *pg = NULL;
        if (aqa_dist_init(&pg)) {
            printf("FAIL test_collectives_mpi: %s\n", aqa_last_error());
            return 1;
        }
        int f = check_collectives(pg, NULL), r = aqa_dist_rank(pg), n = aqa_dist_size(pg);
        const char *be = aqa_dist_backend(pg);
        bool mpi = !strcmp(be, "mpi");
        aqa_dist_free(pg);
        if (r == 0) {
            if (!mpi) printf("FAIL test_collectives_mpi: backend %s, not mpi\n", be);
            else if (f) printf("FAIL test_collectives_mpi: %d check(s) failed on rank 0 of %d\n", f, n);
            else printf("PASS test_collectives_mpi (%d ranks)\n", n);
        }
        return f || !mpi;
    }
    RUN(test_single_process_group);
    RUN(test_collectives_tcp_2_ranks);
    RUN(test_collectives_tcp_3_ranks);
    RUN(test_collectives_file_rendezvous);
    RUN(test_dead_rank_is_named);
    RUN(test_stalled_rank_times_out);
    RUN(test_environment_errors);
    RUN(test_nccl_path);
    return test_finish();
}
