/* emu_cuda.c: a CPU stand-in for the CUDA driver, NVRTC and cuBLAS, for testing the CUDA backend
 * on a machine without a GPU (see run.sh).  "Compiling" turns a program's CUDA C into a shared
 * library with g++ (emu_wrap.py); a launch runs each block with one host thread per CUDA thread.
 * Device memory is host pages that are inaccessible outside device operations (AQA_EMU_PROTECT=0
 * turns that off), so a host dereference of a device pointer crashes as on a GPU.  cuBLAS GEMMs are naive column-major loops that check the leading
 * dimensions as cuBLAS does.  Only the entry points aqa's backend loads are provided. */
#define _GNU_SOURCE
#include <cuda.h>
#undef cuEventElapsedTime /* the loader asks for the unversioned name */
#include <dlfcn.h>
#include <nvrtc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef struct dim3 {
    unsigned x, y, z;
} dim3;
typedef struct emu_ctx {
    dim3 grid, block;
    void (*sync_block)(void);
    unsigned long long (*shfl)(unsigned long long v, int lane_xor);
} emu_ctx;
typedef void (*emu_fn)(void **a, const emu_ctx *c, dim3 bid, dim3 tid);

/* ---- driver --------------------------------------------------------------------------------- */
static void flush_pending(void);
static int env_int(const char *name, int fallback) {
    const char *e = getenv(name);
    return e && *e ? atoi(e) : fallback;
}
CUresult cuInit(unsigned f) { (void)f; return CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int *v) { *v = 13000; return CUDA_SUCCESS; }
CUresult cuDeviceGetCount(int *n) { *n = 1; return CUDA_SUCCESS; }
CUresult cuDeviceGet(CUdevice *d, int i) { *d = i; return i == 0 ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE; }
CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice d) {
    (void)d;
    switch (a) {
    /* AQA_EMU_CC (e.g. 100) and AQA_EMU_SM_COUNT let tests pose as other GPUs */
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = env_int("AQA_EMU_CC", 90) / 10; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = env_int("AQA_EMU_CC", 90) % 10; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = env_int("AQA_EMU_SM_COUNT", 2); break;
    default: *v = 0;
    }
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetName(char *n, int len, CUdevice d) { (void)d; snprintf(n, (size_t)len, "aqa CPU emulator"); return CUDA_SUCCESS; }
CUresult cuDeviceTotalMem_v2(size_t *b, CUdevice d) { (void)d; *b = (size_t)16 << 30; return CUDA_SUCCESS; }
CUresult cuDevicePrimaryCtxRetain(CUcontext *c, CUdevice d) { (void)d; *c = (CUcontext)0x1; return CUDA_SUCCESS; }
CUresult cuCtxSetCurrent(CUcontext c) { (void)c; return CUDA_SUCCESS; }
CUresult cuCtxSynchronize(void) { flush_pending(); return CUDA_SUCCESS; }
CUresult cuMemGetInfo_v2(size_t *f, size_t *t) { *f = (size_t)8 << 30; *t = (size_t)16 << 30; return CUDA_SUCCESS; }
/* "Device" memory: mmap'ed pages kept PROT_NONE except while an emulated device operation
 * (launch, copy, memset) runs, so host code that dereferences a device pointer crashes here as
 * it would on a real GPU. */
typedef struct dev_block {
    void *p;
    size_t len;
    struct dev_block *next;
} dev_block;
static dev_block *blocks;
static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static int protect_on = -1;
static void set_access(int prot) {
    for (dev_block *b = blocks; b; b = b->next) mprotect(b->p, b->len, prot);
}
/* Opens device memory to the host for the duration of an emulated device operation. */
static void dev_begin(void) {
    pthread_mutex_lock(&mem_lock);
    if (protect_on) set_access(PROT_READ | PROT_WRITE);
}
static void dev_end(void) {
    if (protect_on) set_access(PROT_NONE);
    pthread_mutex_unlock(&mem_lock);
}
CUresult cuMemAlloc_v2(CUdeviceptr *p, size_t n) {
    if (n > ((size_t)64 << 30)) return CUDA_ERROR_OUT_OF_MEMORY;
    if (protect_on < 0) {
        const char *e = getenv("AQA_EMU_PROTECT");
        protect_on = !(e && strcmp(e, "0") == 0);
    }
    size_t len = ((n ? n : 1) + 4095) & ~(size_t)4095;
    void *q = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (q == MAP_FAILED) return CUDA_ERROR_OUT_OF_MEMORY;
    memset(q, 0xCD, len); /* junk: kernels must not read what nothing wrote */
    dev_block *b = malloc(sizeof *b);
    b->p = q;
    b->len = len;
    pthread_mutex_lock(&mem_lock);
    b->next = blocks;
    blocks = b;
    if (protect_on) mprotect(q, len, PROT_NONE);
    pthread_mutex_unlock(&mem_lock);
    *p = (CUdeviceptr)(uintptr_t)q;
    return CUDA_SUCCESS;
}
CUresult cuMemFree_v2(CUdeviceptr p) {
    pthread_mutex_lock(&mem_lock);
    for (dev_block **b = &blocks; *b; b = &(*b)->next)
        if ((*b)->p == (void *)(uintptr_t)p) {
            dev_block *k = *b;
            *b = k->next;
            munmap(k->p, k->len);
            free(k);
            break;
        }
    pthread_mutex_unlock(&mem_lock);
    return CUDA_SUCCESS;
}
/* Pinned host memory, and the asynchrony that comes with it: a copy from pinned memory is only
 * queued, and happens at the next operation on the stream or synchronisation, as a real DMA
 * reads the buffer after cuMemcpyHtoDAsync has returned.  Host code that refills a staging
 * buffer before the copy reading it has finished then sends the wrong bytes here too.  (Copies
 * from pageable memory are synchronous, as the driver stages them before returning.) */
enum { MAX_PINNED = 64, MAX_PENDING = 256 };
static struct { char *p; size_t n; } pinned[MAX_PINNED];
static struct { CUdeviceptr d; const void *s; size_t n; } pending[MAX_PENDING];
static int n_pending;
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static int is_pinned(const void *s) {
    for (int i = 0; i < MAX_PINNED; i++)
        if (pinned[i].p && (const char *)s >= pinned[i].p && (const char *)s < pinned[i].p + pinned[i].n) return 1;
    return 0;
}
/* Performs the queued copies (the stream reaching them). */
static void flush_pending(void) {
    pthread_mutex_lock(&queue_lock);
    if (n_pending) {
        dev_begin();
        for (int i = 0; i < n_pending; i++) memcpy((void *)(uintptr_t)pending[i].d, pending[i].s, pending[i].n);
        dev_end();
        n_pending = 0;
    }
    pthread_mutex_unlock(&queue_lock);
}
CUresult cuMemHostAlloc(void **p, size_t n, unsigned f) {
    (void)f;
    *p = malloc(n);
    if (!*p) return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&queue_lock);
    for (int i = 0; i < MAX_PINNED; i++)
        if (!pinned[i].p) {
            pinned[i].p = *p;
            pinned[i].n = n;
            break;
        }
    pthread_mutex_unlock(&queue_lock);
    return CUDA_SUCCESS;
}
CUresult cuMemFreeHost(void *p) {
    flush_pending();
    pthread_mutex_lock(&queue_lock);
    for (int i = 0; i < MAX_PINNED; i++)
        if (pinned[i].p == p) pinned[i].p = NULL;
    pthread_mutex_unlock(&queue_lock);
    free(p);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr d, const void *s, size_t n, CUstream st) {
    (void)st;
    pthread_mutex_lock(&queue_lock);
    int deferred = is_pinned(s) && n_pending < MAX_PENDING;
    if (deferred) {
        pending[n_pending].d = d;
        pending[n_pending].s = s;
        pending[n_pending].n = n;
        n_pending++;
    }
    pthread_mutex_unlock(&queue_lock);
    if (deferred) return CUDA_SUCCESS;
    flush_pending();
    dev_begin();
    memcpy((void *)(uintptr_t)d, s, n);
    dev_end();
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoHAsync_v2(void *d, CUdeviceptr s, size_t n, CUstream st) {
    (void)st;
    flush_pending();
    dev_begin();
    memcpy(d, (void *)(uintptr_t)s, n);
    dev_end();
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr d, CUdeviceptr s, size_t n, CUstream st) {
    (void)st;
    flush_pending();
    dev_begin();
    memmove((void *)(uintptr_t)d, (void *)(uintptr_t)s, n);
    dev_end();
    return CUDA_SUCCESS;
}
CUresult cuMemsetD8Async(CUdeviceptr d, unsigned char v, size_t n, CUstream st) {
    (void)st;
    flush_pending();
    dev_begin();
    memset((void *)(uintptr_t)d, v, n);
    dev_end();
    return CUDA_SUCCESS;
}
CUresult cuStreamCreate(CUstream *s, unsigned f) { (void)f; *s = (CUstream)0x2; return CUDA_SUCCESS; }
CUresult cuStreamSynchronize(CUstream s) { (void)s; flush_pending(); return CUDA_SUCCESS; }
CUresult cuEventCreate(CUevent *e, unsigned f) { (void)f; *e = (CUevent)0x3; return CUDA_SUCCESS; }
CUresult cuEventRecord(CUevent e, CUstream s) { (void)e; (void)s; return CUDA_SUCCESS; }
CUresult cuEventSynchronize(CUevent e) { (void)e; flush_pending(); return CUDA_SUCCESS; }
CUresult cuEventElapsedTime(float *ms, CUevent a, CUevent b) { (void)a; (void)b; *ms = 0; return CUDA_SUCCESS; }
CUresult cuEventDestroy_v2(CUevent e) { (void)e; return CUDA_SUCCESS; }
CUresult cuGetErrorName(CUresult r, const char **s) { *s = r == CUDA_ERROR_OUT_OF_MEMORY ? "CUDA_ERROR_OUT_OF_MEMORY" : "CUDA_ERROR_EMU"; return CUDA_SUCCESS; }
CUresult cuGetErrorString(CUresult r, const char **s) { (void)r; *s = "emulated error"; return CUDA_SUCCESS; }

CUresult cuModuleLoadData(CUmodule *m, const void *image) {
    /* the "CUBIN" is a shared library; its size is in the first 8 bytes we prepended */
    uint64_t n;
    memcpy(&n, image, 8);
    char path[] = "/tmp/aqa-emu-mod-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return CUDA_ERROR_INVALID_IMAGE;
    if (write(fd, (const char *)image + 8, n) != (ssize_t)n) { close(fd); return CUDA_ERROR_INVALID_IMAGE; }
    close(fd);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    unlink(path);
    if (!h) { fprintf(stderr, "emu: dlopen: %s\n", dlerror()); return CUDA_ERROR_INVALID_IMAGE; }
    *m = (CUmodule)h;
    return CUDA_SUCCESS;
}
CUresult cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name) {
    char w[300];
    snprintf(w, sizeof w, "%s__emu", name);
    void *p = dlsym((void *)m, w);
    if (!p) return CUDA_ERROR_NOT_FOUND;
    *f = (CUfunction)p;
    return CUDA_SUCCESS;
}

/* A launch: every thread of a block is a pthread; blocks run one after the other. */
typedef struct launch {
    emu_fn fn;
    void **args;
    emu_ctx ctx;
    unsigned nthreads;
    pthread_barrier_t block_bar;   /* __syncthreads and end of block */
    pthread_barrier_t warp_bar[32];/* per warp, for shuffles */
    unsigned long long slot[1024]; /* shuffle exchange */
} launch;
static launch *cur;
static __thread unsigned my_tid;

static void sync_block(void) { pthread_barrier_wait(&cur->block_bar); }
static unsigned long long shfl(unsigned long long v, int o) {
    unsigned w = my_tid / 32;
    cur->slot[my_tid] = v;
    pthread_barrier_wait(&cur->warp_bar[w]);
    unsigned long long r = cur->slot[(my_tid & ~31u) | ((my_tid & 31u) ^ (unsigned)o)];
    pthread_barrier_wait(&cur->warp_bar[w]);
    return r;
}

static void *thread_main(void *arg) {
    unsigned tid = (unsigned)(uintptr_t)arg;
    my_tid = tid;
    launch *l = cur;
    for (unsigned by = 0; by < l->ctx.grid.y; by++)
        for (unsigned bx = 0; bx < l->ctx.grid.x; bx++) {
            l->fn(l->args, &l->ctx, (dim3){bx, by, 0}, (dim3){tid, 0, 0});
            pthread_barrier_wait(&l->block_bar);
        }
    return NULL;
}

static pthread_mutex_t launch_lock = PTHREAD_MUTEX_INITIALIZER;
CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shmem, CUstream s, void **params, void **extra) {
    (void)shmem; (void)s; (void)extra;
    if (gz != 1 || by != 1 || bz != 1 || bx == 0 || bx > 1024 || bx % 32) return CUDA_ERROR_INVALID_VALUE;
    if (gy > 65535) return CUDA_ERROR_INVALID_VALUE;
    flush_pending();
    pthread_mutex_lock(&launch_lock);
    dev_begin();
    launch *l = calloc(1, sizeof *l);
    l->fn = (emu_fn)f;
    l->args = params;
    l->nthreads = bx;
    l->ctx.grid = (dim3){gx, gy, 1};
    l->ctx.block = (dim3){bx, 1, 1};
    l->ctx.sync_block = sync_block;
    l->ctx.shfl = shfl;
    pthread_barrier_init(&l->block_bar, NULL, bx);
    for (unsigned w = 0; w < bx / 32; w++) pthread_barrier_init(&l->warp_bar[w], NULL, 32);
    cur = l;
    pthread_t *th = malloc(sizeof(pthread_t) * bx);
    for (unsigned t = 0; t < bx; t++) pthread_create(&th[t], NULL, thread_main, (void *)(uintptr_t)t);
    for (unsigned t = 0; t < bx; t++) pthread_join(th[t], NULL);
    free(th);
    pthread_barrier_destroy(&l->block_bar);
    for (unsigned w = 0; w < bx / 32; w++) pthread_barrier_destroy(&l->warp_bar[w]);
    free(l);
    cur = NULL;
    dev_end();
    pthread_mutex_unlock(&launch_lock);
    return CUDA_SUCCESS;
}

/* ---- NVRTC ------------------------------------------------------------------------------------ */
typedef struct prog {
    char *src, *name, *log, *bin;
    size_t nbin;
} prog;
nvrtcResult nvrtcVersion(int *a, int *b) { *a = 13; *b = 0; return NVRTC_SUCCESS; }
nvrtcResult nvrtcGetNumSupportedArchs(int *n) { *n = 4; return NVRTC_SUCCESS; }
nvrtcResult nvrtcGetSupportedArchs(int *a) { a[0] = 75; a[1] = 80; a[2] = 86; a[3] = 90; return NVRTC_SUCCESS; }
nvrtcResult nvrtcCreateProgram(nvrtcProgram *p, const char *src, const char *name, int nh, const char *const *h,
                               const char *const *in) {
    (void)nh; (void)h; (void)in;
    prog *q = calloc(1, sizeof *q);
    q->src = strdup(src);
    q->name = strdup(name ? name : "prog");
    *p = (nvrtcProgram)q;
    return NVRTC_SUCCESS;
}
nvrtcResult nvrtcDestroyProgram(nvrtcProgram *p) {
    prog *q = (prog *)*p;
    free(q->src); free(q->name); free(q->log); free(q->bin); free(q);
    *p = NULL;
    return NVRTC_SUCCESS;
}
nvrtcResult nvrtcCompileProgram(nvrtcProgram p, int n, const char *const *o) {
    (void)n; (void)o;
    prog *q = (prog *)p;
    const char *dir = getenv("AQA_EMU_DIR");
    char base[256], cmd[1024];
    snprintf(base, sizeof base, "/tmp/aqa-emu-%d-%s-%p", (int)getpid(), q->name, (void *)q);
    char srcp[300], sop[300], logp[300];
    snprintf(srcp, sizeof srcp, "%s.cu", base);
    snprintf(sop, sizeof sop, "%s.so", base);
    snprintf(logp, sizeof logp, "%s.log", base);
    FILE *f = fopen(srcp, "w");
    fputs(q->src, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "python3 %s/emu_wrap.py %s %s > %s 2>&1", dir ? dir : ".", srcp, sop, logp);
    int rc = system(cmd);
    f = fopen(logp, "r");
    q->log = calloc(1, 1 << 16);
    if (f) { size_t r = fread(q->log, 1, (1 << 16) - 1, f); q->log[r] = 0; fclose(f); }
    if (rc == 0 && (f = fopen(sop, "rb"))) {
        fseek(f, 0, SEEK_END);
        long n2 = ftell(f);
        fseek(f, 0, SEEK_SET);
        q->bin = malloc((size_t)n2 + 8);
        uint64_t nn = (uint64_t)n2;
        memcpy(q->bin, &nn, 8);
        if (fread(q->bin + 8, 1, (size_t)n2, f) != (size_t)n2) rc = 1;
        q->nbin = (size_t)n2 + 8;
        fclose(f);
    }
    unlink(srcp); unlink(sop); unlink(logp);
    char cpp[320];
    snprintf(cpp, sizeof cpp, "%s.so.cpp", base);
    unlink(cpp);
    return rc == 0 && q->bin ? NVRTC_SUCCESS : NVRTC_ERROR_COMPILATION;
}
nvrtcResult nvrtcGetCUBINSize(nvrtcProgram p, size_t *n) { *n = ((prog *)p)->nbin; return NVRTC_SUCCESS; }
nvrtcResult nvrtcGetCUBIN(nvrtcProgram p, char *b) { memcpy(b, ((prog *)p)->bin, ((prog *)p)->nbin); return NVRTC_SUCCESS; }
/* The emulator's PTX is the same loadable library as its CUBIN (tests count the PTX requests). */
static int ptx_requests;
int aqa_emu_ptx_requests(void) { return __atomic_load_n(&ptx_requests, __ATOMIC_RELAXED); }
nvrtcResult nvrtcGetPTXSize(nvrtcProgram p, size_t *n) { return nvrtcGetCUBINSize(p, n); }
nvrtcResult nvrtcGetPTX(nvrtcProgram p, char *b) {
    __atomic_fetch_add(&ptx_requests, 1, __ATOMIC_RELAXED);
    return nvrtcGetCUBIN(p, b);
}
nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram p, size_t *n) { *n = strlen(((prog *)p)->log ? ((prog *)p)->log : "") + 1; return NVRTC_SUCCESS; }
nvrtcResult nvrtcGetProgramLog(nvrtcProgram p, char *l) { strcpy(l, ((prog *)p)->log ? ((prog *)p)->log : ""); return NVRTC_SUCCESS; }
const char *nvrtcGetErrorString(nvrtcResult r) { return r == NVRTC_SUCCESS ? "NVRTC_SUCCESS" : "NVRTC_ERROR_COMPILATION (emulated)"; }

/* ---- cuBLAS ------------------------------------------------------------------------------------ */
/* Handles made (tests check that concurrent first GEMMs make one per device). */
static int cublas_creates;
int aqa_emu_cublas_creates(void) { return __atomic_load_n(&cublas_creates, __ATOMIC_RELAXED); }
int cublasCreate_v2(void **h) {
    __atomic_fetch_add(&cublas_creates, 1, __ATOMIC_RELAXED);
    usleep(20000); /* a slow create widens the window in which a second thread would make another */
    *h = (void *)0x4;
    return 0;
}
int cublasDestroy_v2(void *h) { (void)h; return 0; }
int cublasSetStream_v2(void *h, CUstream s) { (void)h; (void)s; return 0; }
int cublasGetVersion_v2(void *h, int *v) { (void)h; *v = 130000; return 0; }
#define MAX(a, b) ((a) > (b) ? (a) : (b))
static int check_ld(int ta, int tb, int m, int n, int k, int lda, int ldb, int ldc) {
    if (m < 0 || n < 0 || k < 0) return 7;
    if (lda < MAX(1, ta ? k : m) || ldb < MAX(1, tb ? n : k) || ldc < MAX(1, m)) {
        fprintf(stderr, "emu cublas: bad leading dims ta %d tb %d m %d n %d k %d lda %d ldb %d ldc %d\n", ta, tb, m, n,
                k, lda, ldb, ldc);
        return 7; /* CUBLAS_STATUS_INVALID_VALUE */
    }
    return 0;
}
#define GEMM_BODY(T)                                                                                   \
    for (int bi = 0; bi < batch; bi++) {                                                               \
        const T *A = a + (long long)bi * sa, *B = b + (long long)bi * sb;                              \
        T *C = c + (long long)bi * sc;                                                                 \
        for (int j = 0; j < n; j++)                                                                    \
            for (int i = 0; i < m; i++) {                                                              \
                double acc = 0;                                                                        \
                for (int l = 0; l < k; l++)                                                            \
                    acc += (double)(ta ? A[l + (long long)i * lda] : A[i + (long long)l * lda]) *      \
                           (double)(tb ? B[j + (long long)l * ldb] : B[l + (long long)j * ldb]);       \
                T *cp = &C[i + (long long)j * ldc];                                                    \
                *cp = (T)(al * acc + (be == 0 ? 0.0 : be * (double)*cp));                              \
            }                                                                                          \
    }
int cublasGemmStridedBatchedEx(void *h, int ta, int tb, int m, int n, int k, const void *alpha, const void *av,
                               int at, int lda, long long sa, const void *bv, int bt, int ldb, long long sb,
                               const void *beta, void *cv, int ct, int ldc, long long sc, int batch, int compute,
                               int algo) {
    (void)h; (void)compute; (void)algo;
    if (at != 0 || bt != 0 || ct != 0) return 7;
    int r = check_ld(ta, tb, m, n, k, lda, ldb, ldc);
    if (r) return r;
    const float *a = av, *b = bv;
    float *c = cv;
    double al = *(const float *)alpha, be = *(const float *)beta;
    dev_begin();
    GEMM_BODY(float)
    dev_end();
    return 0;
}
int cublasDgemmStridedBatched(void *h, int ta, int tb, int m, int n, int k, const double *alpha, const double *a,
                              int lda, long long sa, const double *b, int ldb, long long sb, const double *beta,
                              double *c, int ldc, long long sc, int batch) {
    (void)h;
    int r = check_ld(ta, tb, m, n, k, lda, ldb, ldc);
    if (r) return r;
    double al = *alpha, be = *beta;
    dev_begin();
    GEMM_BODY(double)
    dev_end();
    return 0;
}
