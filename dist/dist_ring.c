/* dist_ring.c: the collectives on host buffers, written once on the transport's sendrecv, so
 * that TCP and MPI give the same bits (and every rank the same bits):
 *   all-reduce  ring reduce-scatter then ring all-gather (each link carries 2 (n-1)/n of the
 *               buffer, the bandwidth-optimal schedule); chunk c is reduced in the fixed ring
 *               order starting at rank c + 1, so a given group size always sums in one order;
 *   all-gather  ring: block b travels from rank b around the ring;
 *   broadcast   small buffers: the root sends to each rank; large ones: the root scatters one
 *               chunk to each rank, then a ring all-gather (the root sends the buffer once). */
#include <stdlib.h>
#include <string.h>

#include "dist/dist-impl.h"

#define SMALL_BROADCAST 65536 /* bytes: below this the root sends the whole buffer to each rank */

/* Chunk c of count elements split over n ranks: [start, start + len). */
static void chunk(size_t count, int n, int c, size_t *start, size_t *len) {
    size_t base = count / (size_t)n, rem = count % (size_t)n;
    *start = (size_t)c * base + ((size_t)c < rem ? (size_t)c : rem);
    *len = base + ((size_t)c < rem);
}

/* Ring all-gather of the n chunks of buf (element size es), rank r holding chunk (r + shift) % n. */
static aqa_status ring_gather_chunks(aqa_dist *pg, char *buf, size_t count, size_t es, int shift, const char *what) {
    int n = pg->size, r = pg->rank, right = (r + 1) % n, left = (r + n - 1) % n;
    for (int k = 0; k < n - 1; k++) {
        size_t ss, sl, rs, rl;
        chunk(count, n, (r + shift - k + 2 * n) % n, &ss, &sl);
        chunk(count, n, (r + shift - k - 1 + 2 * n) % n, &rs, &rl);
        aqa_status st = pg->tr->sendrecv(pg, right, buf + ss * es, sl * es, left, buf + rs * es, rl * es, what);
        if (st) return st;
    }
    return AQA_OK;
}

aqa_status aqa__dist_host_all_reduce(aqa_dist *pg, void *buf, size_t count, aqa_dtype dtype, aqa_dist_op op) {
    int n = pg->size, r = pg->rank, right = (r + 1) % n, left = (r + n - 1) % n;
    size_t es = aqa_dtype_size(dtype);
    char *b = buf, *tmp = malloc((count / (size_t)n + 1) * es);
    if (!tmp) return aqa_fail(AQA_ENOMEM, "aqa_dist_all_reduce: out of memory");
    /* reduce-scatter: after n - 1 steps rank r holds the reduction of chunk (r + 1) % n */
    aqa_status st = AQA_OK;
    for (int k = 0; k < n - 1 && !st; k++) {
        size_t ss, sl, rs, rl;
        chunk(count, n, (r - k + n) % n, &ss, &sl);
        chunk(count, n, (r - k - 1 + 2 * n) % n, &rs, &rl);
        st = pg->tr->sendrecv(pg, right, b + ss * es, sl * es, left, tmp, rl * es, "all_reduce");
        if (!st) aqa__dist_reduce_into(b + rs * es, tmp, rl, dtype, op);
    }
    free(tmp);
    return st ? st : ring_gather_chunks(pg, b, count, es, 1, "all_reduce");
}

aqa_status aqa__dist_host_all_gather(aqa_dist *pg, const void *in, void *out, size_t n_bytes) {
    int n = pg->size, r = pg->rank, right = (r + 1) % n, left = (r + n - 1) % n;
    char *o = out;
    memmove(o + (size_t)r * n_bytes, in, n_bytes);
    for (int k = 0; k < n - 1; k++) {
        int sb = (r - k + n) % n, rb = (r - k - 1 + n) % n;
        aqa_status st = pg->tr->sendrecv(pg, right, o + (size_t)sb * n_bytes, n_bytes, left, o + (size_t)rb * n_bytes,
                                         n_bytes, "all_gather");
        if (st) return st;
    }
    return AQA_OK;
}

aqa_status aqa__dist_host_broadcast(aqa_dist *pg, void *buf, size_t n_bytes, int root) {
    int n = pg->size, r = pg->rank;
    char *b = buf;
    if (n_bytes < SMALL_BROADCAST) {
        if (r != root) return pg->tr->sendrecv(pg, -1, NULL, 0, root, buf, n_bytes, "broadcast");
        for (int k = 0; k < n; k++) {
            aqa_status st = k == root ? AQA_OK : pg->tr->sendrecv(pg, k, buf, n_bytes, -1, NULL, 0, "broadcast");
            if (st) return st;
        }
        return AQA_OK;
    }
    /* scatter: rank k gets chunk (k - root) % n, i.e. rank (c + root) % n holds chunk c */
    size_t s, l;
    if (r == root) {
        for (int k = 0; k < n; k++) {
            if (k == root) continue;
            chunk(n_bytes, n, (k - root + n) % n, &s, &l);
            aqa_status st = pg->tr->sendrecv(pg, k, b + s, l, -1, NULL, 0, "broadcast");
            if (st) return st;
        }
    } else {
        chunk(n_bytes, n, (r - root + n) % n, &s, &l);
        aqa_status st = pg->tr->sendrecv(pg, -1, NULL, 0, root, b + s, l, "broadcast");
        if (st) return st;
    }
    return ring_gather_chunks(pg, b, n_bytes, 1, n - root, "broadcast");
}
