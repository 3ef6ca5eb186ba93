/* cuda_driver.c: loading the CUDA driver, NVRTC and cuBLAS with dlopen, device setup (primary
 * context, one stream), launch and geometry helpers, and the public availability/version calls.
 *
 * Nothing here is linked against CUDA: a missing library is a recorded error (AQA_EDEVICE) that
 * names the library and what dlopen said, and the CPU backend keeps working. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "tensor/cuda/cuda-impl.h"
#include "tensor/cuda/cuda.h"
#include "tensor/iter.h"

aqa_cu_api aqa__cu;
aqa_nvrtc_api aqa__nvrtc;
aqa_cublas_api aqa__cublas;

static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
/* Load outcomes: 0 not tried, 1 loaded, -1 failed (message kept for later calls). */
static int driver_state, nvrtc_state, cublas_state;
static char driver_error[512], nvrtc_error[512], cublas_error[512];
static int driver_version; /* cuDriverGetVersion: 13000 for 13.0 */
static int device_count;
static aqa_cuda_dev devices[AQA_CUDA_MAX_DEVICES];
static bool tf32_allowed;

/* Opens the first library of `names` (NULL-terminated) that loads; env var overrides. */
static void *open_first(const char *env, const char *const *names, char *err, size_t errn) {
    const char *over = getenv(env);
    if (over && *over) {
        void *h = dlopen(over, RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        snprintf(err, errn, "%s=%s: %s", env, over, dlerror());
        return NULL;
    }
    char first_err[200] = "";
    int n = 0;
    for (int i = 0; names[i]; i++, n++) {
        void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        if (h) return h;
        if (i == 0) {
            const char *e = dlerror();
            snprintf(first_err, sizeof first_err, "%s", e ? e : "?");
        }
    }
    snprintf(err, errn, "%s (and %d other names) could not be loaded: %s; set %s to the library's path", names[0],
             n - 1, first_err, env);
    return NULL;
}

/* dlsym into *slot; false (with the missing name in err) when absent. */
static bool sym(void *lib, const char *name, void *slot, char *err, size_t errn) {
    void *p = dlsym(lib, name);
    if (!p) {
        snprintf(err, errn, "symbol %s missing from the library (too old?)", name);
        return false;
    }
    memcpy(slot, &p, sizeof p);
    return true;
}

const char *aqa__cuda_versions(void) {
    static _Thread_local char buf[96];
    int nv = aqa__nvrtc_version();
    snprintf(buf, sizeof buf, "CUDA driver %d.%d, NVRTC %d.%d", driver_version / 1000,
             (driver_version % 1000) / 10, nv / 1000, (nv % 1000) / 10);
    return buf;
}

aqa_status aqa__cu_fail(CUresult r, const char *what) {
    const char *name = "?", *desc = "?";
    if (aqa__cu.GetErrorName) aqa__cu.GetErrorName(r, &name);
    if (aqa__cu.GetErrorString) aqa__cu.GetErrorString(r, &desc);
    if (r == CUDA_ERROR_OUT_OF_MEMORY)
        return aqa_fail(AQA_ENOMEM, "CUDA: %s failed: %s (%s) [%s]", what, name ? name : "?",
                        desc ? desc : "?", aqa__cuda_versions());
    return aqa_fail(AQA_EDEVICE, "CUDA: %s failed: %s (%s) [%s]", what, name ? name : "?",
                    desc ? desc : "?", aqa__cuda_versions());
}

aqa_status aqa__cuda_load_driver(void) {
    pthread_mutex_lock(&load_lock);
    if (driver_state == 0) {
        static const char *const names[] = {"libcuda.so.1", "libcuda.so",
                                            /* where containers mount the driver */
                                            "/usr/local/nvidia/lib64/libcuda.so.1",
                                            "/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib64/libcuda.so.1",
                                            "/usr/lib/wsl/lib/libcuda.so.1", NULL};
        char err[400] = "";
        void *lib = open_first("AQA_CUDA_DRIVER_LIB", names, err, sizeof err);
        bool ok = lib != NULL;
        aqa_cu_api *c = &aqa__cu;
#define S(field, name) ok = ok && sym(lib, name, &c->field, err, sizeof err)
        S(Init, "cuInit");
        S(DriverGetVersion, "cuDriverGetVersion");
        S(DeviceGetCount, "cuDeviceGetCount");
        S(DeviceGet, "cuDeviceGet");
        S(DeviceGetAttribute, "cuDeviceGetAttribute");
        S(DeviceGetName, "cuDeviceGetName");
        S(DeviceTotalMem, "cuDeviceTotalMem_v2");
        S(DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain");
        S(CtxSetCurrent, "cuCtxSetCurrent");
        S(CtxSynchronize, "cuCtxSynchronize");
        S(MemGetInfo, "cuMemGetInfo_v2");
        S(MemAlloc, "cuMemAlloc_v2");
        S(MemFree, "cuMemFree_v2");
        S(MemHostAlloc, "cuMemHostAlloc");
        S(MemFreeHost, "cuMemFreeHost");
        S(MemcpyHtoDAsync, "cuMemcpyHtoDAsync_v2");
        S(MemcpyDtoHAsync, "cuMemcpyDtoHAsync_v2");
        S(MemcpyDtoDAsync, "cuMemcpyDtoDAsync_v2");
        S(MemsetD8Async, "cuMemsetD8Async");
        S(StreamCreate, "cuStreamCreate");
        S(StreamSynchronize, "cuStreamSynchronize");
        S(EventCreate, "cuEventCreate");
        S(EventRecord, "cuEventRecord");
        S(EventSynchronize, "cuEventSynchronize");
        S(EventElapsedTime, "cuEventElapsedTime");
        S(EventDestroy, "cuEventDestroy_v2");
        S(ModuleLoadData, "cuModuleLoadData");
        S(ModuleGetFunction, "cuModuleGetFunction");
        S(LaunchKernel, "cuLaunchKernel");
        S(GetErrorName, "cuGetErrorName");
        S(GetErrorString, "cuGetErrorString");
#undef S
        if (ok) {
            CUresult r = c->Init(0);
            if (r == CUDA_SUCCESS) r = c->DriverGetVersion(&driver_version);
            if (r == CUDA_SUCCESS) r = c->DeviceGetCount(&device_count);
            if (r != CUDA_SUCCESS) {
                const char *name = "?";
                c->GetErrorName(r, &name);
                snprintf(err, sizeof err, "cuInit/cuDeviceGetCount failed: %s", name ? name : "?");
                ok = false;
            } else if (device_count <= 0) {
                snprintf(err, sizeof err, "the driver (%d.%d) sees no GPU", driver_version / 1000,
                         (driver_version % 1000) / 10);
                ok = false;
            }
            if (device_count > AQA_CUDA_MAX_DEVICES) device_count = AQA_CUDA_MAX_DEVICES;
        }
        if (!ok) {
            snprintf(driver_error, sizeof driver_error, "CUDA driver unavailable: %s", err);
            device_count = 0;
            driver_state = -1;
        } else {
            driver_state = 1;
        }
    }
    int st = driver_state;
    pthread_mutex_unlock(&load_lock);
    if (st < 0) return aqa_fail(AQA_EDEVICE, "%s", driver_error);
    return AQA_OK;
}

aqa_status aqa__cuda_load_nvrtc(void) {
    pthread_mutex_lock(&load_lock);
    if (nvrtc_state == 0) {
        static const char *const names[] = {"libnvrtc.so.13", "libnvrtc.so",
                                            AQA_CUDA_HOME "/lib64/libnvrtc.so.13",
                                            AQA_CUDA_HOME "/lib/libnvrtc.so.13", "libnvrtc.so.12", NULL};
        char err[400] = "";
        void *lib = open_first("AQA_NVRTC_LIB", names, err, sizeof err);
        bool ok = lib != NULL;
        aqa_nvrtc_api *n = &aqa__nvrtc;
#define S(field, name) ok = ok && sym(lib, name, &n->field, err, sizeof err)
        S(Version, "nvrtcVersion");
        S(GetNumSupportedArchs, "nvrtcGetNumSupportedArchs");
        S(GetSupportedArchs, "nvrtcGetSupportedArchs");
        S(CreateProgram, "nvrtcCreateProgram");
        S(DestroyProgram, "nvrtcDestroyProgram");
        S(CompileProgram, "nvrtcCompileProgram");
        S(GetCUBINSize, "nvrtcGetCUBINSize");
        S(GetCUBIN, "nvrtcGetCUBIN");
        S(GetPTXSize, "nvrtcGetPTXSize");
        S(GetPTX, "nvrtcGetPTX");
        S(GetProgramLogSize, "nvrtcGetProgramLogSize");
        S(GetProgramLog, "nvrtcGetProgramLog");
        S(GetErrorString, "nvrtcGetErrorString");
#undef S
        if (ok) n->lib = lib;
        if (!ok) snprintf(nvrtc_error, sizeof nvrtc_error, "NVRTC unavailable: %s", err);
        nvrtc_state = ok ? 1 : -1;
    }
    int st = nvrtc_state;
    pthread_mutex_unlock(&load_lock);
    if (st < 0) return aqa_fail(AQA_EDEVICE, "%s", nvrtc_error);
    return AQA_OK;
}

aqa_status aqa__cuda_load_cublas(void) {
    pthread_mutex_lock(&load_lock);
    if (cublas_state == 0) {
        static const char *const names[] = {"libcublas.so.13", "libcublas.so",
                                            AQA_CUDA_HOME "/lib64/libcublas.so.13",
                                            AQA_CUDA_HOME "/lib/libcublas.so.13", "libcublas.so.12", NULL};
        char err[400] = "";
        void *lib = open_first("AQA_CUBLAS_LIB", names, err, sizeof err);
        bool ok = lib != NULL;
        aqa_cublas_api *b = &aqa__cublas;
#define S(field, name) ok = ok && sym(lib, name, &b->field, err, sizeof err)
        S(Create, "cublasCreate_v2");
        S(Destroy, "cublasDestroy_v2");
        S(SetStream, "cublasSetStream_v2");
        S(GetVersion, "cublasGetVersion_v2");
        S(GemmStridedBatchedEx, "cublasGemmStridedBatchedEx");
        S(DgemmStridedBatched, "cublasDgemmStridedBatched");
#undef S
        if (ok) b->lib = lib;
        if (!ok) snprintf(cublas_error, sizeof cublas_error, "cuBLAS unavailable: %s", err);
        cublas_state = ok ? 1 : -1;
    }
    int st = cublas_state;
    pthread_mutex_unlock(&load_lock);
    if (st < 0) return aqa_fail(AQA_EDEVICE, "%s", cublas_error);
    return AQA_OK;
}

/* Makes the context, stream and staging events of device i (caller holds load_lock). */
static aqa_status dev_setup(aqa_cuda_dev *d, int i) {
    pthread_mutex_init(&d->lock, NULL);
    CU_CHECK(aqa__cu.DeviceGet(&d->dev, i), "cuDeviceGet");
    int major = 0, minor = 0;
    CU_CHECK(aqa__cu.DeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, d->dev),
             "cuDeviceGetAttribute(compute capability)");
    CU_CHECK(aqa__cu.DeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, d->dev),
             "cuDeviceGetAttribute(compute capability)");
    CU_CHECK(aqa__cu.DeviceGetAttribute(&d->sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, d->dev),
             "cuDeviceGetAttribute(multiprocessors)");
    d->cc = major * 10 + minor;
    if (aqa__cu.DeviceGetName(d->name, (int)sizeof d->name, d->dev) != CUDA_SUCCESS)
        snprintf(d->name, sizeof d->name, "GPU %d", i);
    CU_CHECK(aqa__cu.DevicePrimaryCtxRetain(&d->ctx, d->dev), "cuDevicePrimaryCtxRetain");
    CU_CHECK(aqa__cu.CtxSetCurrent(d->ctx), "cuCtxSetCurrent");
    /* a blocking stream: ordered with the legacy default stream that libraries may use */
    CU_CHECK(aqa__cu.StreamCreate(&d->stream, CU_STREAM_DEFAULT), "cuStreamCreate");
    for (int k = 0; k < 2; k++)
        CU_CHECK(aqa__cu.EventCreate(&d->pinned_done[k], CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    d->ready = true;
    return AQA_OK;
}

aqa_cuda_dev *aqa__cuda_dev(int index) {
    if (aqa__cuda_load_driver() != AQA_OK) return NULL;
    if (index < 0 || index >= device_count)
        return aqa_fail_null("cuda:%d requested, but this machine has %d GPU(s)", index, device_count);
    aqa_cuda_dev *d = &devices[index];
    if (!__atomic_load_n(&d->ready, __ATOMIC_ACQUIRE)) {
        pthread_mutex_lock(&load_lock);
        aqa_status st = d->ready ? AQA_OK : dev_setup(d, index);
        pthread_mutex_unlock(&load_lock);
        if (st != AQA_OK) return NULL;
        /* kernels need NVRTC and a target it supports: say so now rather than at the first op */
        bool ptx;
        if (aqa__cuda_load_nvrtc() != AQA_OK || aqa__nvrtc_arch_for(d->cc, &ptx) == 0) return NULL;
    }
    /* every thread that uses the device needs its context current */
    CUresult r = aqa__cu.CtxSetCurrent(d->ctx);
    if (r != CUDA_SUCCESS) {
        aqa__cu_fail(r, "cuCtxSetCurrent");
        return NULL;
    }
    return d;
}

bool aqa__cuda_sync_each_launch(void) {
    static int v = -1;
    if (v < 0) {
        const char *e = getenv("AQA_CUDA_SYNC");
        v = e && *e && strcmp(e, "0") != 0;
    }
    return v == 1;
}

bool aqa__cuda_tf32(void) { return __atomic_load_n(&tf32_allowed, __ATOMIC_RELAXED); }
void aqa_cuda_set_tf32(bool allow) { __atomic_store_n(&tf32_allowed, allow, __ATOMIC_RELAXED); }
bool aqa_cuda_tf32_allowed(void) { return aqa__cuda_tf32(); }

aqa_status aqa__cuda_launch(aqa_cuda_dev *d, CUfunction f, const char *what, unsigned gx, unsigned gy,
                            unsigned bx, unsigned shmem, void **args) {
    if (gx == 0 || gy == 0) return AQA_OK;
    CUresult r = aqa__cu.LaunchKernel(f, gx, gy, 1, bx, 1, 1, shmem, d->stream, args, NULL);
    if (r != CUDA_SUCCESS) {
        char buf[160];
        snprintf(buf, sizeof buf, "launching kernel %s (grid %u x %u, block %u, shared %u)", what, gx, gy, bx,
                 shmem);
        return aqa__cu_fail(r, buf);
    }
    if (aqa__cuda_sync_each_launch()) {
        r = aqa__cu.StreamSynchronize(d->stream);
        if (r != CUDA_SUCCESS) {
            char buf[160];
            snprintf(buf, sizeof buf, "kernel %s (grid %u x %u, block %u)", what, gx, gy, bx);
            return aqa__cu_fail(r, buf);
        }
    }
    return AQA_OK;
}

unsigned aqa__cuda_grid(const aqa_cuda_dev *d, int64_t n, unsigned threads) {
    if (n <= 0) return 0;
    int64_t blocks = (n + threads - 1) / threads;
    int64_t cap = (int64_t)(d->sm_count > 0 ? d->sm_count : 80) * 16; /* grid-stride beyond this */
    return (unsigned)(blocks < cap ? blocks : cap);
}

int aqa__cuda_geometry(int nops, const aqa_tensor *const *ops, aqa_cuda_geo *g, bool *contig) {
    aqa_iter it;
    aqa_iter_init(&it, nops, ops);
    memset(g, 0, sizeof *g);
    bool c = it.ndim == 1;
    for (int d = 0; d < it.ndim; d++) {
        g->shape[d] = it.shape[d];
        for (int k = 0; k < nops; k++) {
            g->stride[k][d] = it.stride[k][d] / (int64_t)aqa_dtype_size(ops[k]->dtype);
            if (it.ndim == 1 && g->stride[k][d] != 1 && it.shape[0] > 1) c = false;
        }
    }
    *contig = c;
    return it.ndim;
}

void *aqa__cuda_scratch(int dev_index, size_t nbytes) {
    return aqa__cuda_alloc(aqa_cuda_device(dev_index), nbytes ? nbytes : 1);
}
void aqa__cuda_scratch_free(int dev_index, void *p, size_t nbytes) {
    if (p) aqa__cuda_free(aqa_cuda_device(dev_index), p, nbytes ? nbytes : 1);
}

const char *aqa__cuda_dtag(aqa_dtype dt) {
    switch (dt) {
    case AQA_F32: return "f32";
    case AQA_F64: return "f64";
    case AQA_I64: return "i64";
    default: return "b8";
    }
}

/* ---- public ------------------------------------------------------------------------------ */

bool aqa_cuda_is_available(void) { return aqa__cuda_load_driver() == AQA_OK && device_count > 0; }

int aqa_cuda_device_count(void) { return aqa__cuda_load_driver() == AQA_OK ? device_count : 0; }

const char *aqa_cuda_version_string(char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    size_t l = 0;
#define ADD(...) l += (size_t)snprintf(buf + l, l < n ? n - l : 0, __VA_ARGS__)
    aqa_status drv = aqa__cuda_load_driver();
    if (drv == AQA_OK) ADD("CUDA driver %d.%d", driver_version / 1000, (driver_version % 1000) / 10);
    else ADD("CUDA driver: not loaded (%s)", driver_error);
    if (aqa__cuda_load_nvrtc() == AQA_OK) {
        int v = aqa__nvrtc_version();
        ADD(", NVRTC %d.%d", v / 1000, (v % 1000) / 10);
    } else {
        ADD(", NVRTC: not loaded");
    }
    if (aqa__cuda_load_cublas() == AQA_OK) ADD(", cuBLAS loaded");
    else ADD(", cuBLAS: not loaded");
    /* the CUDA runtime is not used by aqa itself (cuBLAS loads it): report it when present */
    void *rt = dlopen("libcudart.so.13", RTLD_NOW | RTLD_LOCAL);
    if (!rt) rt = dlopen("libcudart.so", RTLD_NOW | RTLD_LOCAL);
    if (rt) {
        int (*rv)(int *) = NULL;
        void *p = dlsym(rt, "cudaRuntimeGetVersion");
        memcpy(&rv, &p, sizeof p);
        int v = 0;
        if (rv && rv(&v) == 0) ADD(", CUDA runtime %d.%d", v / 1000, (v % 1000) / 10);
        dlclose(rt);
    }
    for (int i = 0; drv == AQA_OK && i < device_count; i++) {
        aqa_cuda_dev *d = aqa__cuda_dev(i);
        if (!d) {
            ADD("; cuda:%d unusable (%s)", i, aqa_last_error());
            continue;
        }
        bool ptx;
        int arch = aqa__nvrtc_arch_for(d->cc, &ptx);
        ADD("; cuda:%d %s (cc %d.%d, NVRTC target %s_%d, %d SMs)", i, d->name, d->cc / 10, d->cc % 10,
            ptx ? "compute" : "sm", arch, d->sm_count);
        if (d->blas && aqa__cublas.GetVersion) {
            int v = 0;
            if (aqa__cublas.GetVersion(d->blas, &v) == 0) ADD(", cuBLAS %d", v);
        }
    }
#undef ADD
    return buf;
}

aqa_status aqa_cuda_synchronize(int device) {
    aqa_cuda_dev *d = aqa__cuda_dev(device);
    if (!d) return aqa_last_status();
    CU_CHECK(aqa__cu.StreamSynchronize(d->stream), "cuStreamSynchronize");
    return AQA_OK;
}
