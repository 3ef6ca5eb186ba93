/* dist.c: the process group: joining it from the environment, and the collectives on tensors,
 * which pick NCCL for CUDA tensors (when it loads) and the CPU transport otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "dist/dist-impl.h"
#include "tensor/backend.h"
#include "tensor/tensor-impl.h"

double aqa__dist_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

aqa_status aqa__dist_fail(aqa_dist *pg, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!pg->failed) {
        snprintf(pg->failure, sizeof pg->failure, "aqa_dist: rank %d of %d: %s", pg->rank, pg->size, msg);
        pg->failed = true;
    }
    return aqa_fail(AQA_EIO, "%s", pg->failure);
}

#define REDUCE_LOOP(T)                                                                   \
    do {                                                                                 \
        T *d = dst;                                                                      \
        const T *s = src;                                                                \
        if (op == AQA_DIST_SUM)                                                          \
            for (size_t i = 0; i < count; i++) d[i] += s[i];                             \
        else if (op == AQA_DIST_MAX)                                                     \
            for (size_t i = 0; i < count; i++) d[i] = s[i] > d[i] ? s[i] : d[i];         \
        else                                                                             \
            for (size_t i = 0; i < count; i++) d[i] = s[i] < d[i] ? s[i] : d[i];         \
    } while (0)

void aqa__dist_reduce_into(void *dst, const void *src, size_t count, aqa_dtype dtype, aqa_dist_op op) {
    if (dtype == AQA_F32) REDUCE_LOOP(float);
    else if (dtype == AQA_F64) REDUCE_LOOP(double);
    else REDUCE_LOOP(int64_t);
}

/* An integer environment variable in [lo, hi]; *found false when unset. */
static aqa_status env_int(const char *name, long lo, long hi, long *v, bool *found) {
    const char *s = getenv(name);
    *found = s && *s;
    if (!*found) return AQA_OK;
    char *end;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (errno || *end || x < lo || x > hi)
        return aqa_fail(AQA_EINVAL, "aqa_dist: %s=\"%s\" is not an integer in [%ld, %ld]", name, s, lo, hi);
    *v = x;
    return AQA_OK;
}

static aqa_status init_env(aqa_dist *pg) {
    long v;
    bool found;
    aqa_status st;
    const char *t = getenv("AQA_DIST_TIMEOUT");
    if (t && *t) {
        char *end;
        double s = strtod(t, &end);
        if (*end || !(s > 0)) return aqa_fail(AQA_EINVAL, "aqa_dist: AQA_DIST_TIMEOUT=\"%s\" is not a positive number of seconds", t);
        pg->timeout = s;
    }
    if ((st = env_int("OMPI_COMM_WORLD_SIZE", 1, 1 << 20, &v, &found))) return st;
    if (found) {
#ifdef AQA_HAVE_MPI
        return aqa__dist_mpi_open(pg);
#else
        if (v > 1)
            return aqa_fail(AQA_EUNSUPPORTED,
                            "aqa_dist: started by mpirun with %ld ranks, but this build has no MPI (configure did not find "
                            "libopenmpi-dev): install it and rebuild, or start the ranks with WORLD_SIZE, RANK and "
                            "MASTER_ADDR/MASTER_PORT (docs/distributed.md)",
                            v);
        return AQA_OK;
#endif
    }
    if ((st = env_int("WORLD_SIZE", 1, 1 << 20, &v, &found))) return st;
    if (!found) return AQA_OK; /* started alone */
    pg->size = (int)v;
    if ((st = env_int("RANK", 0, pg->size - 1, &v, &found))) return st;
    if (!found) return aqa_fail(AQA_EINVAL, "aqa_dist: WORLD_SIZE=%d is set but RANK is not", pg->size);
    pg->rank = (int)v;
    pg->local_rank = pg->rank;
    if ((st = env_int("LOCAL_RANK", 0, 1 << 20, &v, &found))) return st;
    if (found) pg->local_rank = (int)v;
    if (pg->size == 1) return AQA_OK;
    char init[600];
    const char *ai = getenv("AQA_DIST_INIT"), *ma = getenv("MASTER_ADDR"), *mp = getenv("MASTER_PORT");
    if (ai && *ai) snprintf(init, sizeof init, "%s", ai);
    else if (ma && *ma && mp && *mp) snprintf(init, sizeof init, "tcp://%s:%s", ma, mp);
    else
        return aqa_fail(AQA_EINVAL, "aqa_dist: WORLD_SIZE=%d needs a rendezvous: MASTER_ADDR and MASTER_PORT, or "
                                    "AQA_DIST_INIT=tcp://HOST:PORT or file:///shared/path",
                        pg->size);
    return aqa__dist_tcp_open(pg, init);
}

aqa_status aqa_dist_init(aqa_dist **out) {
    if (!out) return aqa_fail(AQA_EINVAL, "aqa_dist_init: NULL argument");
    *out = NULL;
    aqa_dist *pg = calloc(1, sizeof *pg);
    if (!pg) return aqa_fail(AQA_ENOMEM, "aqa_dist_init: out of memory");
    pg->size = 1;
    pg->timeout = 600;
    aqa_status st = init_env(pg);
    if (st) {
        if (pg->tr) pg->tr->close(pg, true);
        free(pg);
        return st;
    }
    snprintf(pg->backend, sizeof pg->backend, "%s", pg->tr ? pg->tr->name : "single");
    *out = pg;
    return AQA_OK;
}

void aqa_dist_free(aqa_dist *pg) {
    if (!pg) return;
#ifdef AQA_HAVE_CUDA
    aqa__dist_nccl_close(pg, pg->failed);
#endif
    if (pg->tr) pg->tr->close(pg, pg->failed);
    free(pg);
}

int aqa_dist_rank(const aqa_dist *pg) { return pg ? pg->rank : 0; }
int aqa_dist_size(const aqa_dist *pg) { return pg ? pg->size : 1; }
int aqa_dist_local_rank(const aqa_dist *pg) { return pg ? pg->local_rank : 0; }
const char *aqa_dist_backend(const aqa_dist *pg) { return pg ? pg->backend : "single"; }
bool aqa_dist_failed(const aqa_dist *pg) { return pg && pg->failed; }

void aqa_dist_set_timeout(aqa_dist *pg, double seconds) {
    if (pg && seconds > 0) pg->timeout = seconds;
}

/* ---- tensor collectives ------------------------------------------------------------------- */

/* Checks the group and a tensor argument; numeric: F32/F64/I64 only (reductions). */
static aqa_status check(aqa_dist *pg, const char *op, const aqa_tensor *t, bool numeric) {
    if (!pg) return aqa_fail(AQA_EINVAL, "aqa_dist_%s: NULL process group", op);
    if (pg->failed) return aqa_fail(AQA_EIO, "%s (aqa_dist_%s after the failure)", pg->failure, op);
    if (!t) return aqa_fail(AQA_EINVAL, "aqa_dist_%s: NULL tensor", op);
    if (!aqa_is_contiguous(t)) return aqa_fail(AQA_EINVAL, "aqa_dist_%s: the tensor must be contiguous", op);
    if (numeric && t->dtype == AQA_BOOL) return aqa_fail(AQA_EINVAL, "aqa_dist_%s: bool tensors cannot be reduced", op);
    return AQA_OK;
}

static size_t nbytes(const aqa_tensor *t) { return (size_t)aqa_numel(t) * aqa_dtype_size(t->dtype); }
static bool on_cuda(const aqa_tensor *t) { return aqa_tensor_device(t).kind == AQA_CUDA; }

/* A CUDA tensor's collective through NCCL: AQA_EUNSUPPORTED when NCCL cannot serve it (the
 * caller stages through host memory). */
static aqa_status try_nccl(aqa_dist *pg, aqa_nccl_call call, void *dst, const void *src, const aqa_tensor *t,
                           aqa_dist_op op, int peer) {
#ifdef AQA_HAVE_CUDA
    if (pg->nccl_unavailable) return AQA_EUNSUPPORTED;
    return aqa__dist_nccl(pg, call, dst, src, (size_t)aqa_numel(t), t->dtype, op, peer, aqa_tensor_device(t).index);
#else
    (void)pg, (void)call, (void)dst, (void)src, (void)t, (void)op, (void)peer;
    return AQA_EUNSUPPORTED;
#endif
}

/* Host staging of a CUDA tensor: a malloc'd copy of its bytes. */
static void *to_host(const aqa_tensor *t) {
    void *h = malloc(nbytes(t) + 1);
    if (!h) {
        aqa_fail(AQA_ENOMEM, "aqa_dist: out of memory staging %zu bytes", nbytes(t));
        return NULL;
    }
    if (aqa_copy_to_host(t, h, t->dtype)) {
        free(h);
        return NULL;
    }
    return h;
}

/* t's bytes <- h (the tensors here are contiguous). */
static aqa_status from_host(aqa_tensor *t, const void *h) {
    const aqa_backend *b = aqa_backend_for(aqa_tensor_device(t));
    return b ? b->from_host(aqa__ptr(t), h, nbytes(t), aqa_tensor_device(t)) : aqa_last_status();
}

aqa_status aqa_dist_barrier(aqa_dist *pg) {
    if (!pg) return aqa_fail(AQA_EINVAL, "aqa_dist_barrier: NULL process group");
    if (pg->failed) return aqa_fail(AQA_EIO, "%s (aqa_dist_barrier after the failure)", pg->failure);
    if (!pg->tr) return AQA_OK;
    char one = 1, *all = malloc((size_t)pg->size);
    if (!all) return aqa_fail(AQA_ENOMEM, "aqa_dist_barrier: out of memory");
    aqa_status st = aqa__dist_host_all_gather(pg, &one, all, 1);
    free(all);
    return st;
}

aqa_status aqa_dist_broadcast(aqa_dist *pg, aqa_tensor *t, int root) {
    aqa_status st = check(pg, "broadcast", t, false);
    if (st) return st;
    if (root < 0 || root >= pg->size)
        return aqa_fail(AQA_EINVAL, "aqa_dist_broadcast: root %d is not a rank of the group (size %d)", root, pg->size);
    aqa__bump_version(t, "aqa_dist_broadcast"); /* written in place below: autograd must see it */
    if (on_cuda(t)) {
        st = try_nccl(pg, AQA_NCCL_BROADCAST, aqa__ptr(t), aqa__ptr(t), t, AQA_DIST_SUM, root);
        if (st != AQA_EUNSUPPORTED) return st;
    }
    if (!pg->tr) return AQA_OK;
    if (on_cuda(t)) {
        void *h = to_host(t);
        if (!h) return aqa_last_status();
        st = aqa__dist_host_broadcast(pg, h, nbytes(t), root);
        if (!st) st = from_host(t, h);
        free(h);
        return st;
    }
    return aqa__dist_host_broadcast(pg, aqa__ptr(t), nbytes(t), root);
}

aqa_status aqa_dist_all_reduce(aqa_dist *pg, aqa_tensor *t, aqa_dist_op op) {
    aqa_status st = check(pg, "all_reduce", t, true);
    if (st) return st;
    if (op < AQA_DIST_SUM || op > AQA_DIST_MIN) return aqa_fail(AQA_EINVAL, "aqa_dist_all_reduce: unknown op %d", (int)op);
    aqa__bump_version(t, "aqa_dist_all_reduce");
    if (on_cuda(t)) {
        st = try_nccl(pg, AQA_NCCL_ALL_REDUCE, aqa__ptr(t), aqa__ptr(t), t, op, 0);
        if (st != AQA_EUNSUPPORTED) return st;
    }
    if (!pg->tr) return AQA_OK;
    if (on_cuda(t)) {
        void *h = to_host(t);
        if (!h) return aqa_last_status();
        st = aqa__dist_host_all_reduce(pg, h, (size_t)aqa_numel(t), t->dtype, op);
        if (!st) st = from_host(t, h);
        free(h);
        return st;
    }
    return aqa__dist_host_all_reduce(pg, aqa__ptr(t), (size_t)aqa_numel(t), t->dtype, op);
}

aqa_status aqa_dist_all_gather(aqa_dist *pg, const aqa_tensor *in, aqa_tensor *out) {
    aqa_status st = check(pg, "all_gather", in, false);
    if (!st) st = check(pg, "all_gather", out, false);
    if (st) return st;
    if (aqa_numel(out) != (int64_t)pg->size * aqa_numel(in) || out->dtype != in->dtype ||
        !aqa_device_equal(aqa_tensor_device(in), aqa_tensor_device(out)))
        return aqa_fail(AQA_EINVAL, "aqa_dist_all_gather: out must hold size (%d) x %lld elements of the input's dtype "
                                    "and device (has %lld)",
                        pg->size, (long long)aqa_numel(in), (long long)aqa_numel(out));
    aqa__bump_version(out, "aqa_dist_all_gather");
    if (on_cuda(in)) {
        st = try_nccl(pg, AQA_NCCL_ALL_GATHER, aqa__ptr(out), aqa__ptr(in), in, AQA_DIST_SUM, 0);
        if (st != AQA_EUNSUPPORTED) return st;
    }
    if (!pg->tr) {
        void *h = to_host(in);
        st = h ? from_host(out, h) : aqa_last_status();
        free(h);
        return st;
    }
    if (on_cuda(in)) {
        void *h = to_host(in), *ho = malloc(nbytes(out) + 1);
        st = h && ho ? aqa__dist_host_all_gather(pg, h, ho, nbytes(in)) : aqa_fail(AQA_ENOMEM, "aqa_dist_all_gather: out of memory");
        if (!st) st = from_host(out, ho);
        free(h);
        free(ho);
        return st;
    }
    return aqa__dist_host_all_gather(pg, aqa__ptr(in), aqa__ptr(out), nbytes(in));
}

static aqa_status check_peer(aqa_dist *pg, const char *op, int peer) {
    if (peer < 0 || peer >= pg->size || peer == pg->rank)
        return aqa_fail(AQA_EINVAL, "aqa_dist_%s: peer %d is not another rank of the group (rank %d of %d)", op, peer,
                        pg->rank, pg->size);
    return AQA_OK;
}

aqa_status aqa_dist_send(aqa_dist *pg, const aqa_tensor *t, int peer) {
    aqa_status st = check(pg, "send", t, false);
    if (!st) st = check_peer(pg, "send", peer);
    if (st) return st;
    if (on_cuda(t)) {
        st = try_nccl(pg, AQA_NCCL_SEND, NULL, aqa__ptr(t), t, AQA_DIST_SUM, peer);
        if (st != AQA_EUNSUPPORTED) return st;
        void *h = to_host(t);
        if (!h) return aqa_last_status();
        st = pg->tr->sendrecv(pg, peer, h, nbytes(t), -1, NULL, 0, "send");
        free(h);
        return st;
    }
    return pg->tr->sendrecv(pg, peer, aqa__ptr(t), nbytes(t), -1, NULL, 0, "send");
}

aqa_status aqa_dist_recv(aqa_dist *pg, aqa_tensor *t, int peer) {
    aqa_status st = check(pg, "recv", t, false);
    if (!st) st = check_peer(pg, "recv", peer);
    if (st) return st;
    aqa__bump_version(t, "aqa_dist_recv");
    if (on_cuda(t)) {
        st = try_nccl(pg, AQA_NCCL_RECV, aqa__ptr(t), NULL, t, AQA_DIST_SUM, peer);
        if (st != AQA_EUNSUPPORTED) return st;
        void *h = malloc(nbytes(t) + 1);
        if (!h) return aqa_fail(AQA_ENOMEM, "aqa_dist_recv: out of memory");
        st = pg->tr->sendrecv(pg, -1, NULL, 0, peer, h, nbytes(t), "recv");
        if (!st) st = from_host(t, h);
        free(h);
        return st;
    }
    return pg->tr->sendrecv(pg, -1, NULL, 0, peer, aqa__ptr(t), nbytes(t), "recv");
}

aqa_status aqa_dist_all_gather_bytes(aqa_dist *pg, const void *in, size_t n_bytes, void **out, size_t *sizes,
                                     size_t *total) {
    if (!pg || !out || !sizes || !total || (n_bytes && !in))
        return aqa_fail(AQA_EINVAL, "aqa_dist_all_gather_bytes: NULL argument");
    if (pg->failed) return aqa_fail(AQA_EIO, "%s (aqa_dist_all_gather_bytes after the failure)", pg->failure);
    *out = NULL;
    int64_t mine = (int64_t)n_bytes, *all = malloc((size_t)pg->size * sizeof *all);
    if (!all) return aqa_fail(AQA_ENOMEM, "aqa_dist_all_gather_bytes: out of memory");
    aqa_status st = pg->tr ? aqa__dist_host_all_gather(pg, &mine, all, sizeof mine) : (all[0] = mine, AQA_OK);
    size_t max = 0, sum = 0;
    for (int r = 0; !st && r < pg->size; r++) {
        sizes[r] = (size_t)all[r];
        sum += sizes[r];
        if (sizes[r] > max) max = sizes[r];
    }
    free(all);
    if (st) return st;
    /* every rank sends max bytes (padded), then the padding is squeezed out */
    char *pad = calloc(max + 1, 1), *big = malloc((size_t)pg->size * max + 1), *res = malloc(sum + 1);
    if (!pad || !big || !res) st = aqa_fail(AQA_ENOMEM, "aqa_dist_all_gather_bytes: out of memory");
    if (!st) {
        if (n_bytes) memcpy(pad, in, n_bytes);
        st = pg->tr ? aqa__dist_host_all_gather(pg, pad, big, max) : (memcpy(big, pad, max), AQA_OK);
    }
    if (!st) {
        size_t at = 0;
        for (int r = 0; r < pg->size; r++) {
            memcpy(res + at, big + (size_t)r * max, sizes[r]);
            at += sizes[r];
        }
        *out = res;
        *total = sum;
        res = NULL;
    }
    free(pad);
    free(big);
    free(res);
    return st;
}
