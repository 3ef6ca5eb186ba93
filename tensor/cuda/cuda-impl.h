/* cuda-impl.h: internals of the CUDA backend (not installed).
 *
 * The CUDA driver, NVRTC and cuBLAS are opened with dlopen at run time (cuda_driver.c): a binary
 * built with the toolkit starts on a machine without a GPU and keeps its CPU backend.  The
 * toolkit headers are used for types and constants only; the functions are called through the
 * tables below, whose members are named without the library prefix so that cuda.h's
 * `#define cuMemAlloc cuMemAlloc_v2` style renames cannot touch them. */
#ifndef AQA_CUDA_IMPL_H
#define AQA_CUDA_IMPL_H

#include <cuda.h>
#include <nvrtc.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tensor/backend.h"
#include "tensor/tensor-impl.h"

#define AQA_CUDA_MAX_DEVICES 16

/* ---- driver API (libcuda.so.1) ----------------------------------------------------------- */
typedef struct aqa_cu_api {
    void *lib; /* dlopen handle */
    CUresult (*Init)(unsigned int flags);
    CUresult (*DriverGetVersion)(int *version);
    CUresult (*DeviceGetCount)(int *count);
    CUresult (*DeviceGet)(CUdevice *dev, int ordinal);
    CUresult (*DeviceGetAttribute)(int *value, CUdevice_attribute attr, CUdevice dev);
    CUresult (*DeviceGetName)(char *name, int len, CUdevice dev);
    CUresult (*DeviceTotalMem)(size_t *bytes, CUdevice dev);
    CUresult (*DevicePrimaryCtxRetain)(CUcontext *ctx, CUdevice dev);
    CUresult (*CtxSetCurrent)(CUcontext ctx);
    CUresult (*CtxSynchronize)(void);
    CUresult (*MemGetInfo)(size_t *free_bytes, size_t *total_bytes);
    CUresult (*MemAlloc)(CUdeviceptr *ptr, size_t bytes);
    CUresult (*MemFree)(CUdeviceptr ptr);
    CUresult (*MemHostAlloc)(void **ptr, size_t bytes, unsigned int flags);
    CUresult (*MemFreeHost)(void *ptr);
    CUresult (*MemcpyHtoDAsync)(CUdeviceptr dst, const void *src, size_t bytes, CUstream s);
    CUresult (*MemcpyDtoHAsync)(void *dst, CUdeviceptr src, size_t bytes, CUstream s);
    CUresult (*MemcpyDtoDAsync)(CUdeviceptr dst, CUdeviceptr src, size_t bytes, CUstream s);
    CUresult (*MemsetD8Async)(CUdeviceptr dst, unsigned char value, size_t n, CUstream s);
    CUresult (*StreamCreate)(CUstream *s, unsigned int flags);
    CUresult (*StreamSynchronize)(CUstream s);
    CUresult (*EventCreate)(CUevent *e, unsigned int flags);
    CUresult (*EventRecord)(CUevent e, CUstream s);
    CUresult (*EventSynchronize)(CUevent e);
    CUresult (*EventElapsedTime)(float *ms, CUevent start, CUevent end);
    CUresult (*EventDestroy)(CUevent e);
    CUresult (*ModuleLoadData)(CUmodule *m, const void *image);
    CUresult (*ModuleGetFunction)(CUfunction *f, CUmodule m, const char *name);
    CUresult (*LaunchKernel)(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                             unsigned by, unsigned bz, unsigned shmem, CUstream s, void **params,
                             void **extra);
    CUresult (*GetErrorName)(CUresult r, const char **s);
    CUresult (*GetErrorString)(CUresult r, const char **s);
} aqa_cu_api;

/* ---- NVRTC (libnvrtc.so.13) -------------------------------------------------------------- */
typedef struct aqa_nvrtc_api {
    void *lib; /* dlopen handle */
    nvrtcResult (*Version)(int *major, int *minor);
    nvrtcResult (*GetNumSupportedArchs)(int *n);
    nvrtcResult (*GetSupportedArchs)(int *archs);
    nvrtcResult (*CreateProgram)(nvrtcProgram *p, const char *src, const char *name, int nheaders,
                                 const char *const *headers, const char *const *include_names);
    nvrtcResult (*DestroyProgram)(nvrtcProgram *p);
    nvrtcResult (*CompileProgram)(nvrtcProgram p, int nopts, const char *const *opts);
    nvrtcResult (*GetCUBINSize)(nvrtcProgram p, size_t *n);
    nvrtcResult (*GetCUBIN)(nvrtcProgram p, char *cubin);
    nvrtcResult (*GetPTXSize)(nvrtcProgram p, size_t *n);
    nvrtcResult (*GetPTX)(nvrtcProgram p, char *ptx);
    nvrtcResult (*GetProgramLogSize)(nvrtcProgram p, size_t *n);
    nvrtcResult (*GetProgramLog)(nvrtcProgram p, char *log);
    const char *(*GetErrorString)(nvrtcResult r);
} aqa_nvrtc_api;

/* ---- cuBLAS (libcublas.so.13): types declared here, values from cublas_api.h ---------------- */
typedef void *aqa_cublas_handle;
#define AQA_CUBLAS_OP_N 0
#define AQA_CUBLAS_OP_T 1
#define AQA_CUDA_R_32F 0
#define AQA_CUDA_R_64F 1
#define AQA_CUBLAS_COMPUTE_32F 68
#define AQA_CUBLAS_COMPUTE_32F_FAST_TF32 77
#define AQA_CUBLAS_COMPUTE_64F 70
#define AQA_CUBLAS_GEMM_DEFAULT (-1)
typedef struct aqa_cublas_api {
    void *lib; /* dlopen handle */
    int (*Create)(aqa_cublas_handle *h);
    int (*Destroy)(aqa_cublas_handle h);
    int (*SetStream)(aqa_cublas_handle h, CUstream s);
    int (*GetVersion)(aqa_cublas_handle h, int *version);
    int (*GemmStridedBatchedEx)(aqa_cublas_handle h, int transa, int transb, int m, int n, int k,
                                const void *alpha, const void *a, int atype, int lda, long long sa,
                                const void *b, int btype, int ldb, long long sb, const void *beta,
                                void *c, int ctype, int ldc, long long sc, int batch, int compute,
                                int algo);
    int (*DgemmStridedBatched)(aqa_cublas_handle h, int transa, int transb, int m, int n, int k,
                               const double *alpha, const double *a, int lda, long long sa,
                               const double *b, int ldb, long long sb, const double *beta, double *c,
                               int ldc, long long sc, int batch);
} aqa_cublas_api;

extern aqa_cu_api aqa__cu;
extern aqa_nvrtc_api aqa__nvrtc;
extern aqa_cublas_api aqa__cublas;

/* One initialised device. */
typedef struct aqa_cuda_dev {
    bool ready;             /* context and stream made */
    CUdevice dev;           /* driver handle */
    CUcontext ctx;          /* the device's primary context */
    CUstream stream;        /* the one stream all work of aqa goes to */
    int cc;                 /* compute capability, major * 10 + minor */
    int sm_count;           /* multiprocessors (sizes grids) */
    char name[128];         /* marketing name */
    pthread_mutex_t lock;   /* guards the lazily made state below against concurrent host threads */
    aqa_cublas_handle blas; /* cuBLAS handle bound to stream, or NULL until first GEMM */
    void *pinned[2];        /* pinned staging buffers for host-to-device copies, or NULL */
    CUevent pinned_done[2]; /* recorded after each staging buffer's copy */
    bool pinned_used[2];    /* a copy from that buffer was queued (wait for pinned_done first) */
    int pinned_next;        /* the buffer the next chunk goes through */
} aqa_cuda_dev;

/* Reductions and norms size their splits for this many multiprocessors on every GPU, not the
 * device's own count, so that a reduction adds in the same order, and gives the same bits, on
 * every GPU model (more splits than SMs on a small GPU cost nothing measurable). */
#define AQA_CUDA_SPLIT_SMS 128

/* cuda_driver.c */
/* Loads the driver library and initialises it (once); AQA_OK or AQA_EDEVICE with a message. */
aqa_status aqa__cuda_load_driver(void);
/* Loads NVRTC (once); works without a GPU. */
aqa_status aqa__cuda_load_nvrtc(void);
/* Loads cuBLAS (once). */
aqa_status aqa__cuda_load_cublas(void);
/* The device `index`, initialised and made current on this thread; NULL + aqa_fail. */
aqa_cuda_dev *aqa__cuda_dev(int index);
/* Formats a failed driver call as an aqa error naming `what` and the versions. */
aqa_status aqa__cu_fail(CUresult r, const char *what);
/* Checks a driver call: `CU_CHECK(aqa__cu.MemAlloc(&p, n), "cuMemAlloc")` returns on failure. */
#define CU_CHECK(call, what)                                  \
    do {                                                      \
        CUresult cu_r_ = (call);                              \
        if (cu_r_ != CUDA_SUCCESS) return aqa__cu_fail(cu_r_, (what)); \
    } while (0)
/* "driver 13.0, NVRTC 13.0" (for messages). */
const char *aqa__cuda_versions(void);
/* Whether AQA_CUDA_SYNC=1: synchronise after every launch (attributes errors to kernels). */
bool aqa__cuda_sync_each_launch(void);
/* The TF32 flag (aqa_cuda_set_tf32). */
bool aqa__cuda_tf32(void);

/* cuda_alloc.c */
void *aqa__cuda_alloc(aqa_device device, size_t nbytes);
void aqa__cuda_free(aqa_device device, void *ptr, size_t nbytes);

/* nvrtc_jit.c */
/* NVRTC's version as major * 1000 + minor * 10 (13000 for 13.0), 0 when not loaded. */
int aqa__nvrtc_version(void);
/* The architecture (e.g. 90) to compile for on a device of compute capability cc, out of the
 * architectures archs[0..n) a compiler supports: the largest <= cc (0 if none); *ptx is set when
 * its major version differs from the device's, where only PTX (compute_<arch>) loads. */
int aqa__nvrtc_pick_arch(int cc, const int *archs, int n, bool *ptx);
/* aqa__nvrtc_pick_arch over the loaded NVRTC's architectures; 0 + aqa_fail if none. */
int aqa__nvrtc_arch_for(int cc, bool *ptx);
/* Compiles `source` (program `name`) to a CUBIN for sm_<arch>, or with ptx to PTX text (NUL
 * included) for compute_<arch>, through the memory and disk caches.  *cubin is malloc'd (caller
 * frees). */
aqa_status aqa__nvrtc_compile(const char *name, const char *source, int arch, bool ptx, char **cubin,
                              size_t *size);
/* Where the disk cache lives ("" when disabled). */
const char *aqa__nvrtc_cache_dir(void);
/* The kernel `kernel` of program `program` (generated by aqa__cuda_program_source) on device d:
 * compiled, loaded and cached on first use. */
aqa_status aqa__cuda_kernel(aqa_cuda_dev *d, int dev_index, const char *program, const char *kernel,
                            CUfunction *out);
/* Counters for tests: compiles done, disk hits, disk entries found corrupt and rebuilt. */
typedef struct aqa_nvrtc_counters {
    int64_t compiles, disk_hits, disk_corrupt, memory_hits;
} aqa_nvrtc_counters;
aqa_nvrtc_counters aqa__nvrtc_counters(void);
/* Drops the in-memory CUBIN cache (tests use it to exercise the disk cache). */
void aqa__nvrtc_forget_memory_cache(void);
/* 64-bit FNV-1a of n bytes, continuing from h (start with AQA_FNV_OFFSET). */
#define AQA_FNV_OFFSET 0xcbf29ce484222325ull
uint64_t aqa__fnv1a(uint64_t h, const void *data, size_t n);

/* kernels_src.c: the CUDA C source of every program, by name. */
/* Source of program `name` (malloc'd) or NULL + aqa_fail for an unknown name. */
char *aqa__cuda_program_source(const char *name);
/* Every program name the backend can generate (NULL-terminated static list). */
const char *const *aqa__cuda_program_names(void);
/* Elementwise programs hold, per kernel base name, <base>_c (all contiguous), <base>_nd1..4
 * (merged dims) and <base>_nd8 (5 to 8 dims, geometry padded with leading size-1 dims). */

/* Launch helper: checks the launch and, with AQA_CUDA_SYNC=1, the kernel's completion. */
aqa_status aqa__cuda_launch(aqa_cuda_dev *d, CUfunction f, const char *what, unsigned gx, unsigned gy,
                            unsigned bx, unsigned shmem, void **args);
/* Grid size for a grid-stride loop over n items with `threads` per block. */
unsigned aqa__cuda_grid(const aqa_cuda_dev *d, int64_t n, unsigned threads);

/* Geometry handed to strided kernels by value: merged dims (innermost last) and element strides
 * of up to 4 operands.  Must match `Geo` in the kernel prelude. */
typedef struct aqa_cuda_geo {
    int64_t shape[AQA_MAX_DIMS];     /* merged sizes */
    int64_t stride[4][AQA_MAX_DIMS]; /* element strides per operand */
} aqa_cuda_geo;
/* Merges the operands' dims (aqa_iter rules) into g; returns the merged ndim (>= 1) and
 * whether every operand is contiguous (one dim, stride 1) in *contig. */
int aqa__cuda_geometry(int nops, const aqa_tensor *const *ops, aqa_cuda_geo *g, bool *contig);

/* Device scratch memory (through the caching allocator). */
void *aqa__cuda_scratch(int dev_index, size_t nbytes);
void aqa__cuda_scratch_free(int dev_index, void *p, size_t nbytes);

/* Kernels of the backend table (cuda_elementwise.c, cuda_reduce.c, cuda_index.c,
 * cuda_matmul.c). */
aqa_status aqa__cuda_copy(aqa_tensor *dst, const aqa_tensor *src);
aqa_status aqa__cuda_fill(aqa_tensor *dst, double value);
aqa_status aqa__cuda_to_host(void *dst, const void *src, size_t nbytes, aqa_device device);
aqa_status aqa__cuda_from_host(void *dst, const void *src, size_t nbytes, aqa_device device);
aqa_status aqa__cuda_unary(aqa_unary_op op, aqa_tensor *out, const aqa_tensor *x, double p0, double p1);
aqa_status aqa__cuda_binary(aqa_binary_op op, aqa_tensor *out, const aqa_tensor *a, const aqa_tensor *b);
aqa_status aqa__cuda_where(aqa_tensor *out, const aqa_tensor *cond, const aqa_tensor *a, const aqa_tensor *b);
aqa_status aqa__cuda_axpy(aqa_tensor *dst, const aqa_tensor *src, double alpha);
aqa_status aqa__cuda_random(aqa_tensor *t, int kind, double a, double b, uint64_t seed, uint64_t offset);
aqa_status aqa__cuda_reduce(aqa_reduce_op op, aqa_tensor *out, aqa_tensor *idx, const aqa_tensor *x,
                            uint32_t dim_mask);
aqa_status aqa__cuda_softmax(aqa_tensor *out, const aqa_tensor *x, int dim, bool log);
aqa_status aqa__cuda_softmax_backward(aqa_tensor *grad_x, const aqa_tensor *grad_y, const aqa_tensor *y,
                                      int dim, bool log);
/* out (contiguous) = softmax(x * scale + mask, -inf above the diagonal when causal) over the last
 * dim, whose rows must be contiguous (stride 1) and at most 8192 long; mask NULL or a view of x's
 * shape (stride 0 where broadcast) of x's dtype; the causal query index is the row's index along
 * dim -2.  The fused softmax of attention (nn/attention_cuda.c). */
aqa_status aqa__cuda_softmax_scaled_masked(aqa_tensor *out, const aqa_tensor *x, const aqa_tensor *mask, double scale,
                                           bool causal);
aqa_status aqa__cuda_matmul(aqa_tensor *c, const aqa_tensor *a, const aqa_tensor *b, double alpha,
                            double beta);
aqa_status aqa__cuda_index_select(aqa_tensor *out, const aqa_tensor *x, int dim, const aqa_tensor *index);
aqa_status aqa__cuda_index_add(aqa_tensor *out, int dim, const aqa_tensor *index, const aqa_tensor *src);
aqa_status aqa__cuda_gather(aqa_tensor *out, const aqa_tensor *x, int dim, const aqa_tensor *index);
aqa_status aqa__cuda_scatter_add(aqa_tensor *out, int dim, const aqa_tensor *index, const aqa_tensor *src);

/* Short dtype tag used in program names: "f32", "f64", "i64", "b8". */
const char *aqa__cuda_dtag(aqa_dtype dt);

#endif /* AQA_CUDA_IMPL_H */
