/* test_cuda_host.c: the CUDA backend's host-side promises that no single-op comparison sees --
 * concurrent host threads, the first bad index reported whatever order the GPU threads ran in,
 * reductions that give the same bits on every GPU model, PTX for a GPU newer than NVRTC.
 *
 * On a GPU machine it runs as it is; without one, tests/test_cuda_emu.sh runs it against the CPU
 * emulator (tensor/cuda/emu), whose host-to-device copies from pinned memory are asynchronous as
 * a real DMA is, and which can pose as another GPU (AQA_EMU_CC, AQA_EMU_SM_COUNT).  The
 * reduction case prints its bits ("BITS ...") so the runner can compare two SM counts. */
#include <dlfcn.h>
#include <pthread.h>

#include "autograd/autograd.h"
#include "nn/norm_layer.h"
#include "ops/ops.h"
#include "tensor/cuda/cuda-impl.h"
#include "tests/testlib.h"
#include "tests/cuda_testlib.h"

static const aqa_device CPU = {AQA_CPU, 0};

/* A counter the emulator exports (name), or -1 on a real GPU. */
static int emu_counter(const char *name) {
    const char *lib = getenv("AQA_CUBLAS_LIB");
    void *h = lib ? dlopen(lib, RTLD_NOW | RTLD_NOLOAD) : NULL;
    int (*fn)(void) = h ? (int (*)(void))dlsym(h, name) : NULL;
    int v = fn ? fn() : -1;
    if (h) dlclose(h);
    return v;
}

/* ---- the first GEMMs of several threads make one cuBLAS handle ---------------------------- */

static pthread_barrier_t start_line;

static void *first_matmul(void *arg) {
    aqa_tensor **out = arg;
    aqa_scope_begin();
    aqa_tensor *a = aqa_to_device(aqa_ones(AQA_SHAPE(8, 8), AQA_F32), DEV);
    pthread_barrier_wait(&start_line);
    aqa_tensor *c = aqa_matmul(a, a);
    *out = c ? aqa_keep(aqa_to_device(c, CPU)) : NULL;
    aqa_scope_end();
    return NULL;
}

/* Must run first: the handle is made once per process. */
static void test_cublas_handle_made_once(void) {
    if (!have_gpu()) return;
    enum { NT = 6 };
    pthread_t th[NT];
    aqa_tensor *out[NT] = {0};
    pthread_barrier_init(&start_line, NULL, NT);
    for (int i = 0; i < NT; i++) pthread_create(&th[i], NULL, first_matmul, &out[i]);
    for (int i = 0; i < NT; i++) pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start_line);
    for (int i = 0; i < NT; i++) {
        CHECK(out[i] != NULL);
        if (out[i]) CHECK_NEAR(aqa_item(aqa_select(aqa_select(out[i], 0, 3), 0, 5)), 8.0, 0);
        aqa_tensor_free(out[i]);
    }
    int creates = emu_counter("aqa_emu_cublas_creates");
    if (creates >= 0) CHECK_EQ_INT(creates, 1);
}

/* ---- large host-to-device copies from several threads ------------------------------------ */

enum { COPY_ELEMS = 3 << 20 /* 12 MiB of float32: through both staging buffers */, COPY_ROUNDS = 4 };

static void *copy_rounds(void *arg) {
    int who = (int)(intptr_t)arg, bad = 0;
    float *host = malloc(sizeof(float) * COPY_ELEMS), *back = malloc(sizeof(float) * COPY_ELEMS);
    for (int r = 0; r < COPY_ROUNDS && host && back; r++) {
        for (int64_t i = 0; i < COPY_ELEMS; i++) host[i] = (float)(who * 1000003 + r * 7919 + i % 65521);
        aqa_scope_begin();
        int64_t n = COPY_ELEMS;
        aqa_tensor *t = aqa_to_device(aqa_from_data(host, 1, &n, AQA_F32), DEV);
        if (!t || aqa_copy_to_host(t, back, AQA_F32) != AQA_OK || memcmp(host, back, sizeof(float) * COPY_ELEMS))
            bad++;
        aqa_scope_end();
    }
    free(host);
    free(back);
    return (void *)(intptr_t)bad;
}

static void test_concurrent_large_copies(void) {
    if (!have_gpu()) return;
    enum { NT = 4 };
    pthread_t th[NT];
    for (int i = 0; i < NT; i++) pthread_create(&th[i], NULL, copy_rounds, (void *)(intptr_t)(i + 1));
    int bad = 0;
    for (int i = 0; i < NT; i++) {
        void *r;
        pthread_join(th[i], &r);
        bad += (int)(intptr_t)r;
    }
    CHECK_MSG(bad == 0, "%d of %d copies arrived with another thread's bytes", bad, NT * COPY_ROUNDS);
}

/* ---- the first bad index, as the CPU names it --------------------------------------------- */

/* Runs op on the CPU and on the device (fresh error state each) and compares the messages. */
static void same_error(const char *what, aqa_tensor *(*op)(aqa_tensor *x, aqa_tensor *idx), aqa_tensor *x,
                       aqa_tensor *idx) {
    aqa_clear_error();
    CHECK(op(x, idx) == NULL);
    char cpu_msg[512];
    snprintf(cpu_msg, sizeof cpu_msg, "%s", aqa_last_error());
    aqa_clear_error();
    CHECK(op(aqa_to_device(x, DEV), aqa_to_device(idx, DEV)) == NULL);
    CHECK_MSG(strcmp(cpu_msg, aqa_last_error()) == 0, "%s: CPU says \"%s\", CUDA says \"%s\"", what, cpu_msg,
              aqa_last_error());
    CHECK(strstr(cpu_msg, "index -5 is out of range") != NULL);
}

static aqa_tensor *select0(aqa_tensor *x, aqa_tensor *idx) { return aqa_index_select(x, 0, idx); }
static aqa_tensor *gather1(aqa_tensor *x, aqa_tensor *idx) { return aqa_gather(x, 1, idx); }

static void test_first_bad_index_reported(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    enum { N = 4096 };
    int64_t *v = malloc(sizeof(int64_t) * N);
    for (int i = 0; i < N; i++) v[i] = i % 7;
    /* several bad values; the first in row-major order is -5 (threads of later blocks find the
     * others first as often as not) */
    v[700] = -5;
    v[2100] = 900;
    v[4000] = 12345;
    int64_t n = N;
    aqa_tensor *idx = aqa_from_data(v, 1, &n, AQA_I64);
    aqa_tensor *x = aqa_rand(AQA_SHAPE(8, 3), AQA_F32, NULL);
    same_error("index_select", select0, x, idx);
    aqa_tensor *idx2 = aqa_reshape(idx, AQA_SHAPE(64, 64));
    aqa_tensor *x2 = aqa_rand(AQA_SHAPE(64, 8), AQA_F32, NULL);
    same_error("gather", gather1, x2, idx2);
    /* scatter_add checks all of the index before writing (its own check kernel) */
    aqa_tensor *out_c = aqa_zeros(AQA_SHAPE(64, 8), AQA_F32), *src = aqa_ones(AQA_SHAPE(64, 64), AQA_F32);
    aqa_clear_error();
    CHECK(aqa_backend_for(CPU)->scatter_add(out_c, 1, idx2, src) != AQA_OK);
    char cpu_msg[512];
    snprintf(cpu_msg, sizeof cpu_msg, "%s", aqa_last_error());
    aqa_tensor *out_g = aqa_to_device(out_c, DEV);
    aqa_clear_error();
    CHECK(aqa_backend_for(DEV)->scatter_add(out_g, 1, aqa_to_device(idx2, DEV), aqa_to_device(src, DEV)) != AQA_OK);
    CHECK_MSG(strstr(aqa_last_error(), "index -5 is out of range") != NULL, "scatter_add: CPU \"%s\", CUDA \"%s\"",
              cpu_msg, aqa_last_error());
    free(v);
    aqa_scope_end();
}

/* ---- reductions: the same bits on every GPU model ----------------------------------------- */

static void print_bits(const char *what, aqa_tensor *t) {
    int64_t n = aqa_numel(t);
    double *h = malloc(sizeof(double) * (size_t)n);
    uint64_t hash = 0xcbf29ce484222325ull;
    if (h && aqa_copy_to_host(t, h, AQA_F64) == AQA_OK)
        for (int64_t i = 0; i < n; i++) {
            float f = (float)h[i];
            uint32_t u;
            memcpy(&u, &f, 4);
            hash = (hash ^ u) * 0x100000001b3ull;
        }
    printf("BITS %s %016llx\n", what, (unsigned long long)hash);
    free(h);
}

static void test_reduction_bits(void) {
    if (!have_gpu()) return;
    aqa_scope_begin();
    aqa_manual_seed(7);
    /* few outputs over long rows (split reductions), and a layer norm's weight gradient (split
     * column partials) */
    aqa_tensor *x = aqa_to_device(aqa_randn(AQA_SHAPE(3, 200000), AQA_F32, NULL), DEV);
    aqa_tensor *s = aqa_sum(x, 1, (const int[]){1}, false);
    aqa_tensor *s0 = aqa_sum(aqa_to_device(aqa_randn(AQA_SHAPE(40000, 6), AQA_F32, NULL), DEV), 1, (const int[]){0}, false);
    aqa_tensor *w = aqa_requires_grad(aqa_to_device(aqa_ones(AQA_SHAPE(64), AQA_F32), DEV), true);
    aqa_tensor *h = aqa_to_device(aqa_randn(AQA_SHAPE(6000, 64), AQA_F32, NULL), DEV);
    aqa_tensor *y = aqa_layer_norm(h, 1, (const int64_t[]){64}, w, NULL, 1e-5);
    CHECK(s && s0 && y);
    if (y) CHECK(aqa_backward(aqa_sum_all(aqa_square(y)), NULL, false) == AQA_OK);
    if (s && s0 && w->grad) {
        print_bits("sum_rows", s);
        print_bits("sum_cols", s0);
        print_bits("layer_norm_dweight", w->grad);
    }
    aqa_tensor_free(w);
    aqa_scope_end();
}

/* ---- a GPU of a newer major version than NVRTC knows gets PTX ----------------------------- */

static void test_ptx_for_newer_gpu(void) {
    if (!have_gpu()) return;
    aqa_cuda_dev *d = aqa__cuda_dev(0);
    bool ptx;
    int arch = aqa__nvrtc_arch_for(d->cc, &ptx);
    CHECK(arch > 0);
    CHECK_EQ_INT(ptx, arch / 10 != d->cc / 10);
    /* and a kernel compiled that way runs */
    aqa_scope_begin();
    aqa_tensor *t = aqa_to_device(aqa_full(AQA_SHAPE(1000), 2.0, AQA_F32), DEV);
    aqa_tensor *e = aqa_exp(t);
    CHECK(e != NULL);
    if (e) CHECK_NEAR(aqa_item(aqa_select(aqa_to_device(e, CPU), 0, 999)), exp(2.0), 1e-5);
    aqa_scope_end();
    int requests = emu_counter("aqa_emu_ptx_requests");
    if (requests >= 0) CHECK(ptx ? requests > 0 : requests == 0);
    char buf[600];
    printf("    %s\n", aqa_cuda_version_string(buf, sizeof buf));
}

/* Runs the named cases only, when names are given (tests/test_cuda_emu.sh reruns two of them). */
static int n_only;
static char **only;
static void run(const char *name, void (*fn)(void)) {
    bool wanted = n_only == 0;
    for (int i = 0; i < n_only; i++) wanted = wanted || strcmp(only[i], name) == 0;
    if (wanted) test_run_case(name, fn);
}
#define RUN_SOME(fn) run(#fn, fn)

int main(int argc, char **argv) {
    n_only = argc - 1;
    only = argv + 1;
    cuda_test_init("cuda host");
    RUN_SOME(test_cublas_handle_made_once);
    RUN_SOME(test_concurrent_large_copies);
    RUN_SOME(test_first_bad_index_reported);
    RUN_SOME(test_reduction_bits);
    RUN_SOME(test_ptx_for_newer_gpu);
    return test_finish();
}
