/* dist-impl.h: internals of the process group (not installed): the CPU transports (TCP, MPI)
 * behind one small table, and the NCCL path for CUDA tensors. */
#ifndef AQA_DIST_IMPL_H
#define AQA_DIST_IMPL_H

#include <stdint.h>

#include "dist/dist.h"

/* The CPU transport of a group: one primitive on host buffers, from which dist_ring.c builds
 * every collective, so that both transports compute the same bits. */
typedef struct aqa_dist_transport {
    const char *name; /* "tcp", "mpi" */
    /* Sends slen bytes to rank sp while receiving rlen bytes from rank rp, both at once (sp or rp
     * -1: only the other half).  Waits at most pg->timeout seconds without progress; failures go
     * through aqa__dist_fail naming the peer and `what`. */
    aqa_status (*sendrecv)(aqa_dist *pg, int sp, const void *sbuf, size_t slen, int rp, void *rbuf, size_t rlen,
                           const char *what);
    /* releases the transport; `failed`: do not wait for the other ranks */
    void (*close)(aqa_dist *pg, bool failed);
} aqa_dist_transport;

struct aqa_dist {
    int rank;                           /* this process */
    int size;                           /* processes in the group */
    int local_rank;                     /* rank on this machine (GPU index) */
    double timeout;                     /* seconds without progress before a wait fails */
    bool failed;                        /* a collective failed: every later call fails */
    char failure[768];                  /* the first failure's message */
    const aqa_dist_transport *tr;       /* CPU transport, NULL for a group of one */
    void *tr_state;                     /* the transport's own state */
    void *nccl;                         /* NCCL communicator state (dist_nccl.c), or NULL */
    bool nccl_unavailable;              /* NCCL failed to load: stage CUDA tensors through the host */
    char backend[32];                   /* aqa_dist_backend's answer */
};

/* Records a failure of the group ("aqa_dist: rank R of N: <message>"), marks it failed and
 * returns AQA_EIO.  Later calls fail with the same message. */
aqa_status aqa__dist_fail(aqa_dist *pg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Monotonic seconds. */
double aqa__dist_now(void);
/* Elementwise dst op= src over count elements of dtype (the one reduction all transports use). */
void aqa__dist_reduce_into(void *dst, const void *src, size_t count, aqa_dtype dtype, aqa_dist_op op);

/* dist_ring.c: the host collectives on a transport (ring all-reduce and all-gather, scatter +
 * all-gather broadcast), deterministic for a given group size. */
aqa_status aqa__dist_host_all_reduce(aqa_dist *pg, void *buf, size_t count, aqa_dtype dtype, aqa_dist_op op);
aqa_status aqa__dist_host_all_gather(aqa_dist *pg, const void *in, void *out, size_t n_bytes);
aqa_status aqa__dist_host_broadcast(aqa_dist *pg, void *buf, size_t n_bytes, int root);

/* dist_tcp.c: joins through the rendezvous `init` ("tcp://host:port" or "file:///path"). */
aqa_status aqa__dist_tcp_open(aqa_dist *pg, const char *init);
extern const aqa_dist_transport aqa__dist_tcp;

#ifdef AQA_HAVE_MPI
/* dist_mpi.c: MPI_Init and rank/size from MPI_COMM_WORLD. */
aqa_status aqa__dist_mpi_open(aqa_dist *pg);
extern const aqa_dist_transport aqa__dist_mpi;
#endif

/* dist_nccl.c (CUDA builds): collectives on CUDA tensors.  AQA_EUNSUPPORTED (no message kept)
 * when NCCL cannot be used here, so the caller stages through the host instead. */
typedef enum aqa_nccl_call { AQA_NCCL_BROADCAST, AQA_NCCL_ALL_REDUCE, AQA_NCCL_ALL_GATHER, AQA_NCCL_SEND, AQA_NCCL_RECV } aqa_nccl_call;
aqa_status aqa__dist_nccl(aqa_dist *pg, aqa_nccl_call call, void *dst, const void *src, size_t count, aqa_dtype dtype,
                          aqa_dist_op op, int peer, int device);
void aqa__dist_nccl_close(aqa_dist *pg, bool failed);
/* NCCL's version (e.g. 22703 for 2.27.3) when the library loads, else 0 (no GPU needed). */
int aqa__dist_nccl_version(void);

#endif /* AQA_DIST_IMPL_H */
