/* dist.h: a process group for training on several processes, GPUs or machines
 * (torch.distributed's role): who am I (rank), how many are we (size), and the collectives
 * on tensors of either device.
 *
 *     ```c
 *     int sum_over_ranks(aqa_tensor *t) {
 *         aqa_dist *pg;
 *         if (aqa_dist_init(&pg)) { fprintf(stderr, "%s\n", aqa_last_error()); return 1; }
 *         aqa_dist_all_reduce(pg, t, AQA_DIST_SUM);   // t on every rank <- the sum over ranks
 *         aqa_dist_free(pg);
 *         return 0;
 *     }
 *     ```
 *
 * aqa_dist_init reads the environment the launcher leaves:
 *   - started by `mpirun -np N prog` (Open MPI's OMPI_COMM_WORLD_* variables) in a build with
 *     MPI (configure found libopenmpi-dev): rank and size from MPI, CPU buffers over MPI;
 *   - WORLD_SIZE, RANK (and LOCAL_RANK, the GPU of this rank) set by hand or by a launcher such
 *     as torchrun, with a rendezvous: MASTER_ADDR + MASTER_PORT (rank 0 listens there), or
 *     AQA_DIST_INIT=tcp://HOST:PORT, or AQA_DIST_INIT=file:///shared/path (each rank writes its
 *     address to path.<rank> and reads the others'); CPU buffers over TCP between every pair of
 *     ranks.  No MPI needed;
 *   - none of these: a group of one (every collective is a copy or nothing).
 * CUDA tensors go through NCCL (libnccl.so.2, opened with dlopen: builds without it work) when it
 * loads, its unique id sent over the CPU transport; otherwise they are staged through host memory.
 *
 * Failures never hang: every wait gives up after AQA_DIST_TIMEOUT seconds without progress
 * (default 600) with a message naming the rank it waited for, and a peer that exits or is killed
 * is reported as soon as its connection closes (TCP) or by mpirun, which stops the job.  After a
 * failure every later call fails at once with the first message.
 *
 * Every collective must be called by every rank of the group in the same order with matching
 * sizes (as MPI and NCCL require).  Results are deterministic for a given size: the same inputs
 * give the same bits, and every rank receives the same bits. */
#ifndef AQA_DIST_H
#define AQA_DIST_H

#include <stdbool.h>
#include <stddef.h>

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aqa_dist aqa_dist; /* opaque: a process group */

typedef enum aqa_dist_op { AQA_DIST_SUM = 0, AQA_DIST_MAX = 1, AQA_DIST_MIN = 2 } aqa_dist_op;

/* Joins the group the environment describes (see above); *out is a group of one when the
 * process was started alone.  AQA_OK, or an error naming the variable or peer at fault. */
aqa_status aqa_dist_init(aqa_dist **out);
/* Leaves the group (MPI_Finalize, NCCL communicator, sockets).  After a failure it does not wait
 * for the other ranks: this process then exits and the launcher (or the closed connections)
 * stop the rest.  NULL is fine. */
void aqa_dist_free(aqa_dist *pg);

int aqa_dist_rank(const aqa_dist *pg);       /* 0 .. size - 1 (0 for NULL) */
int aqa_dist_size(const aqa_dist *pg);       /* ranks in the group (1 for NULL) */
int aqa_dist_local_rank(const aqa_dist *pg); /* rank among the ranks of this machine: the GPU to use */
/* "single", "mpi" or "tcp" (the CPU transport), plus "+nccl" once NCCL carried a CUDA tensor. */
const char *aqa_dist_backend(const aqa_dist *pg);
/* Seconds without progress before a wait fails (AQA_DIST_TIMEOUT; tests lower it). */
void aqa_dist_set_timeout(aqa_dist *pg, double seconds);
/* True once a collective failed (the group is unusable). */
bool aqa_dist_failed(const aqa_dist *pg);

/* ---- collectives on tensors (contiguous; F32, F64 or I64; CPU or CUDA) ----------------------- */
aqa_status aqa_dist_barrier(aqa_dist *pg);
/* t on every rank <- t of `root`. */
aqa_status aqa_dist_broadcast(aqa_dist *pg, aqa_tensor *t, int root);
/* t on every rank <- op over the ranks' t (elementwise). */
aqa_status aqa_dist_all_reduce(aqa_dist *pg, aqa_tensor *t, aqa_dist_op op);
/* out [size * numel(in)] (any shape with that many elements) <- the ranks' `in` in rank order. */
aqa_status aqa_dist_all_gather(aqa_dist *pg, const aqa_tensor *in, aqa_tensor *out);
/* Point to point: t goes to / comes from `peer` (the sizes must match). */
aqa_status aqa_dist_send(aqa_dist *pg, const aqa_tensor *t, int peer);
aqa_status aqa_dist_recv(aqa_dist *pg, aqa_tensor *t, int peer);

/* ---- host bytes (messages whose size differs between ranks) -------------------------------- */
/* Every rank's n_bytes of `in`, in rank order, into *out (malloc'd, caller frees) with each
 * rank's size in sizes[size] and the total in *total (sizes may differ between ranks). */
aqa_status aqa_dist_all_gather_bytes(aqa_dist *pg, const void *in, size_t n_bytes, void **out, size_t *sizes,
                                     size_t *total);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DIST_H */
