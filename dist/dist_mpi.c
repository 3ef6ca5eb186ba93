/* dist_mpi.c: the CPU transport of ranks started by mpirun: rank and size from MPI_COMM_WORLD
 * (a duplicate of it, so that a program's own MPI traffic never mixes with aqa's), transfers as
 * non-blocking MPI_Isend/MPI_Irecv pairs polled with a deadline (plain MPI calls could wait
 * forever).  Built only when configure found MPI (AQA_HAVE_MPI). */
#include "config.h"

#ifdef AQA_HAVE_MPI
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist/dist-impl.h"

#define MAX_MSG (1 << 30) /* bytes per MPI message (MPI counts are int) */

typedef struct mpi_state {
    MPI_Comm comm;   /* duplicate of MPI_COMM_WORLD */
    bool finalize;   /* aqa called MPI_Init, so it calls MPI_Finalize */
} mpi_state;

static const char *mpi_error(int code, char *buf) {
    int len = 0;
    if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) snprintf(buf, MPI_MAX_ERROR_STRING, "MPI error %d", code);
    return buf;
}

/* Waits for the requests with a deadline; the message names the peer the call waited for. */
static aqa_status wait_all(aqa_dist *pg, int n, MPI_Request *req, int peer, const char *what) {
    double deadline = aqa__dist_now() + pg->timeout;
    long spins = 0;
    for (;;) {
        int done = 0, rc = MPI_Testall(n, req, &done, MPI_STATUSES_IGNORE);
        if (rc != MPI_SUCCESS) {
            char e[MPI_MAX_ERROR_STRING];
            return aqa__dist_fail(pg, "MPI failed during %s with rank %d: %s", what, peer, mpi_error(rc, e));
        }
        if (done) return AQA_OK;
        if (aqa__dist_now() > deadline)
            return aqa__dist_fail(pg, "timed out after %g s waiting for rank %d (%s): that rank failed, stopped or is "
                                      "much slower (AQA_DIST_TIMEOUT sets the limit)",
                                  pg->timeout, peer, what);
        /* spin briefly (latency), then yield the core (ranks may share cores) */
        if (++spins > 2000) {
            struct timespec ts = {0, 50000};
            nanosleep(&ts, NULL);
        }
    }
}

static aqa_status mpi_sendrecv(aqa_dist *pg, int sp, const void *sbuf, size_t slen, int rp, void *rbuf, size_t rlen,
                               const char *what) {
    mpi_state *s = pg->tr_state;
    if (sp < 0) slen = 0;
    if (rp < 0) rlen = 0;
    size_t so = 0, ro = 0;
    do {
        MPI_Request req[2];
        int n = 0;
        int sk = slen - so > MAX_MSG ? MAX_MSG : (int)(slen - so), rk = rlen - ro > MAX_MSG ? MAX_MSG : (int)(rlen - ro);
        if (sk > 0 && MPI_Isend((const char *)sbuf + so, sk, MPI_BYTE, sp, 0, s->comm, &req[n++]) != MPI_SUCCESS)
            return aqa__dist_fail(pg, "MPI_Isend to rank %d failed (%s)", sp, what);
        if (rk > 0 && MPI_Irecv((char *)rbuf + ro, rk, MPI_BYTE, rp, 0, s->comm, &req[n++]) != MPI_SUCCESS)
            return aqa__dist_fail(pg, "MPI_Irecv from rank %d failed (%s)", rp, what);
        aqa_status st = n ? wait_all(pg, n, req, rk > 0 ? rp : sp, what) : AQA_OK;
        if (st) return st;
        so += (size_t)(sk > 0 ? sk : 0);
        ro += (size_t)(rk > 0 ? rk : 0);
    } while (so < slen || ro < rlen);
    return AQA_OK;
}

static void mpi_close(aqa_dist *pg, bool failed) {
    mpi_state *s = pg->tr_state;
    if (!s) return;
    /* after a failure MPI_Finalize could wait for the lost rank: leave without it, mpirun then
     * stops the job */
    if (!failed) {
        MPI_Comm_free(&s->comm);
        if (s->finalize) MPI_Finalize();
    }
    free(s);
    pg->tr_state = NULL;
}

const aqa_dist_transport aqa__dist_mpi = {"mpi", mpi_sendrecv, mpi_close};

aqa_status aqa__dist_mpi_open(aqa_dist *pg) {
    mpi_state *s = calloc(1, sizeof *s);
    if (!s) return aqa_fail(AQA_ENOMEM, "aqa_dist_init: out of memory");
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        /* the data loaders' threads never call MPI: the main thread is enough */
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
            free(s);
            return aqa_fail(AQA_EIO, "aqa_dist: MPI_Init_thread failed");
        }
        s->finalize = true;
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_dup(MPI_COMM_WORLD, &s->comm);
    MPI_Comm_set_errhandler(s->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(s->comm, &pg->rank);
    MPI_Comm_size(s->comm, &pg->size);
    const char *lr = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    pg->local_rank = lr && *lr ? atoi(lr) : pg->rank;
    pg->tr = &aqa__dist_mpi;
    pg->tr_state = s;
    return AQA_OK;
}
#endif /* AQA_HAVE_MPI */
