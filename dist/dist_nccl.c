/* dist_nccl.c: collectives on CUDA tensors through NCCL, opened with dlopen like the other CUDA
 * libraries (libnccl.so.2, $AQA_CUDA_HOME/lib, or AQA_NCCL_LIB), so that a build with the
 * toolkit runs where NCCL is absent: dist.c then stages CUDA tensors through host memory.
 *
 * The communicator is made on first use: rank 0 asks NCCL for a unique id and sends it over the
 * CPU transport (MPI or TCP: the rendezvous needs no MPI).  Operations go to aqa's stream of the
 * tensor's device, so they follow the kernels that produced the data; the call then waits for
 * the stream with a deadline, watching NCCL's asynchronous error, and aborts the communicator
 * when the deadline passes (a lost rank would otherwise block the GPU forever).
 *
 * NCCL's types are declared here (values from nccl.h, as stable as its ABI). */
#include "config.h"

#ifdef AQA_HAVE_CUDA
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist-impl.h"
#include "tensor/cuda/cuda-impl.h"

typedef int nccl_result;                    /* ncclResult_t: 0 ncclSuccess, 7 ncclInProgress */
typedef struct nccl_comm *nccl_comm;         /* ncclComm_t */
typedef struct { char internal[128]; } nccl_id; /* ncclUniqueId */
enum { NCCL_INT64 = 4, NCCL_FLOAT32 = 7, NCCL_FLOAT64 = 8, NCCL_UINT8 = 1 };
enum { NCCL_SUM = 0, NCCL_MAX = 2, NCCL_MIN = 3 };
#define NCCL_IN_PROGRESS 7

typedef struct nccl_api {
    void *lib; /* dlopen handle */
    nccl_result (*GetVersion)(int *version);
    nccl_result (*GetUniqueId)(nccl_id *id);
    nccl_result (*CommInitRank)(nccl_comm *comm, int nranks, nccl_id id, int rank);
    nccl_result (*CommDestroy)(nccl_comm comm);
    nccl_result (*CommAbort)(nccl_comm comm);
    nccl_result (*CommGetAsyncError)(nccl_comm comm, nccl_result *err);
    const char *(*GetErrorString)(nccl_result r);
    nccl_result (*AllReduce)(const void *s, void *r, size_t n, int dt, int op, nccl_comm c, CUstream st);
    nccl_result (*Broadcast)(const void *s, void *r, size_t n, int dt, int root, nccl_comm c, CUstream st);
    nccl_result (*AllGather)(const void *s, void *r, size_t n, int dt, nccl_comm c, CUstream st);
    nccl_result (*Send)(const void *s, size_t n, int dt, int peer, nccl_comm c, CUstream st);
    nccl_result (*Recv)(void *r, size_t n, int dt, int peer, nccl_comm c, CUstream st);
    CUresult (*StreamQuery)(CUstream s); /* from the driver (not in aqa's driver table) */
} nccl_api;

static nccl_api api;
static int api_state; /* 0 not tried, 1 loaded, -1 absent */
static char api_error[400];

/* The communicator of one group (one device per rank). */
typedef struct nccl_state {
    nccl_comm comm; /* NULL once aborted */
    int device;     /* the CUDA device it was made for */
} nccl_state;

static bool load_sym(const char *name, void *slot) {
    void *p = dlsym(api.lib, name);
    if (!p) {
        snprintf(api_error, sizeof api_error, "libnccl lacks %s (too old?)", name);
        return false;
    }
    memcpy(slot, &p, sizeof p);
    return true;
}

/* Loads NCCL once; false (reason in api_error) when it cannot be used. */
static bool load(void) {
    if (api_state) return api_state > 0;
    api_state = -1;
    const char *over = getenv("AQA_NCCL_LIB");
    const char *names[] = {"libnccl.so.2", AQA_CUDA_HOME "/lib/libnccl.so.2", AQA_CUDA_HOME "/lib64/libnccl.so.2",
                           "libnccl.so", NULL};
    for (int i = 0; !api.lib && (over && *over ? i == 0 : names[i] != NULL); i++)
        api.lib = dlopen(over && *over ? over : names[i], RTLD_NOW | RTLD_LOCAL);
    if (!api.lib) {
        snprintf(api_error, sizeof api_error, "NCCL could not be loaded (%s; AQA_NCCL_LIB names the library)",
                 over && *over ? over : "libnccl.so.2");
        return false;
    }
    if (!load_sym("ncclGetVersion", &api.GetVersion) || !load_sym("ncclGetUniqueId", &api.GetUniqueId) ||
        !load_sym("ncclCommInitRank", &api.CommInitRank) || !load_sym("ncclCommDestroy", &api.CommDestroy) ||
        !load_sym("ncclCommAbort", &api.CommAbort) || !load_sym("ncclCommGetAsyncError", &api.CommGetAsyncError) ||
        !load_sym("ncclGetErrorString", &api.GetErrorString) || !load_sym("ncclAllReduce", &api.AllReduce) ||
        !load_sym("ncclBroadcast", &api.Broadcast) || !load_sym("ncclAllGather", &api.AllGather) ||
        !load_sym("ncclSend", &api.Send) || !load_sym("ncclRecv", &api.Recv))
        return false;
    api_state = 1;
    return true;
}

int aqa__dist_nccl_version(void) {
    int v = 0;
    return load() && api.GetVersion(&v) == 0 ? v : 0;
}

static int nccl_dtype(aqa_dtype dt) {
    return dt == AQA_F32 ? NCCL_FLOAT32 : dt == AQA_F64 ? NCCL_FLOAT64 : dt == AQA_I64 ? NCCL_INT64 : NCCL_UINT8;
}

static aqa_status nccl_fail(aqa_dist *pg, nccl_result r, const char *what) {
    return aqa__dist_fail(pg, "NCCL %s failed: %s", what, api.GetErrorString ? api.GetErrorString(r) : "?");
}

/* The group's communicator on `device`, made on first use. */
static aqa_status comm_for(aqa_dist *pg, int device, nccl_state **out) {
    nccl_state *s = pg->nccl;
    if (s) {
        if (!s->comm) return aqa__dist_fail(pg, "the NCCL communicator was aborted after a failure");
        if (s->device != device)
            return aqa__dist_fail(pg, "NCCL: tensors on cuda:%d and cuda:%d; a rank uses one GPU (LOCAL_RANK)", s->device,
                                  device);
        *out = s;
        return AQA_OK;
    }
    if (!aqa__cuda_dev(device)) return aqa_last_status();
    if (!api.StreamQuery) {
        void *p = aqa__cu.lib ? dlsym(aqa__cu.lib, "cuStreamQuery") : NULL;
        if (!p) return aqa__dist_fail(pg, "the CUDA driver lacks cuStreamQuery");
        memcpy(&api.StreamQuery, &p, sizeof p);
    }
    nccl_id id;
    memset(&id, 0, sizeof id);
    nccl_result r = pg->rank == 0 ? api.GetUniqueId(&id) : 0;
    if (r) return nccl_fail(pg, r, "ncclGetUniqueId");
    /* the id travels over the CPU transport (every rank takes part, even when rank 0 failed) */
    if (pg->tr) {
        aqa_status st = aqa__dist_host_broadcast(pg, &id, sizeof id, 0);
        if (st) return st;
    }
    s = calloc(1, sizeof *s);
    if (!s) return aqa_fail(AQA_ENOMEM, "aqa_dist: out of memory");
    s->device = device;
    r = api.CommInitRank(&s->comm, pg->size, id, pg->rank);
    if (r) {
        free(s);
        return nccl_fail(pg, r, "ncclCommInitRank");
    }
    pg->nccl = s;
    snprintf(pg->backend, sizeof pg->backend, "%s+nccl", pg->tr ? pg->tr->name : "single");
    *out = s;
    return AQA_OK;
}

/* Waits for the device's stream with the group's deadline, watching NCCL's errors. */
static aqa_status wait_stream(aqa_dist *pg, nccl_state *s, CUstream stream, const char *what, int peer) {
    double deadline = aqa__dist_now() + pg->timeout;
    long spins = 0;
    for (;;) {
        nccl_result ae = 0;
        api.CommGetAsyncError(s->comm, &ae);
        if (ae && ae != NCCL_IN_PROGRESS) {
            api.CommAbort(s->comm);
            s->comm = NULL;
            return nccl_fail(pg, ae, what);
        }
        CUresult q = api.StreamQuery(stream);
        if (q == CUDA_SUCCESS) return AQA_OK;
        if (q != CUDA_ERROR_NOT_READY) return aqa__cu_fail(q, what);
        if (aqa__dist_now() > deadline) {
            api.CommAbort(s->comm);
            s->comm = NULL;
            if (peer >= 0)
                return aqa__dist_fail(pg, "timed out after %g s in NCCL %s waiting for rank %d (AQA_DIST_TIMEOUT sets "
                                          "the limit)",
                                      pg->timeout, what, peer);
            return aqa__dist_fail(pg, "timed out after %g s in NCCL %s: a rank failed, stopped or is much slower "
                                      "(AQA_DIST_TIMEOUT sets the limit)",
                                  pg->timeout, what);
        }
        if (++spins > 2000) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
}

aqa_status aqa__dist_nccl(aqa_dist *pg, aqa_nccl_call call, void *dst, const void *src, size_t count, aqa_dtype dtype,
                          aqa_dist_op op, int peer, int device) {
    if (!load() || getenv("AQA_DIST_NO_NCCL")) {
        pg->nccl_unavailable = true;
        return AQA_EUNSUPPORTED;
    }
    nccl_state *s = NULL;
    aqa_status st = comm_for(pg, device, &s);
    if (st) return st;
    CUstream stream = aqa__cuda_dev(device)->stream;
    int dt = nccl_dtype(dtype);
    size_t n = dt == NCCL_UINT8 ? count * aqa_dtype_size(dtype) : count;
    int rop = op == AQA_DIST_MAX ? NCCL_MAX : op == AQA_DIST_MIN ? NCCL_MIN : NCCL_SUM;
    nccl_result r = 0;
    const char *what = "";
    switch (call) {
    case AQA_NCCL_BROADCAST: r = api.Broadcast(src, dst, n, dt, peer, s->comm, stream), what = "broadcast"; break;
    case AQA_NCCL_ALL_REDUCE: r = api.AllReduce(src, dst, n, dt, rop, s->comm, stream), what = "all_reduce"; break;
    case AQA_NCCL_ALL_GATHER: r = api.AllGather(src, dst, n, dt, s->comm, stream), what = "all_gather"; break;
    case AQA_NCCL_SEND: r = api.Send(src, n, dt, peer, s->comm, stream), what = "send"; break;
    case AQA_NCCL_RECV: r = api.Recv(dst, n, dt, peer, s->comm, stream), what = "recv"; break;
    }
    if (r && r != NCCL_IN_PROGRESS) return nccl_fail(pg, r, what);
    return wait_stream(pg, s, stream, what, call == AQA_NCCL_SEND || call == AQA_NCCL_RECV ? peer : -1);
}

void aqa__dist_nccl_close(aqa_dist *pg, bool failed) {
    nccl_state *s = pg->nccl;
    if (!s) return;
    if (s->comm) {
        if (failed) api.CommAbort(s->comm);
        else api.CommDestroy(s->comm);
    }
    free(s);
    pg->nccl = NULL;
}
#endif /* AQA_HAVE_CUDA */
