/* dist_tcp.c: the CPU transport without MPI: one TCP connection between every pair of ranks,
 * set up through a rendezvous; the collectives on top are dist_ring.c's.
 *
 * Rendezvous "tcp://HOST:PORT": rank 0 listens on PORT; every other rank connects to it (retrying
 * until the timeout, so the start order does not matter) and says who it is and where it
 * listens; rank 0 answers with everyone's address, then rank i connects to every rank 0 < j < i.
 * Rendezvous "file:///PATH": each rank writes "ADDRESS PORT" to PATH.<rank> (atomically), reads
 * the lower ranks' files as they appear and connects to them; the files are removed once every
 * connection is made.  A rank's address is AQA_DIST_HOST when set, else its host name's first
 * IPv4 address.
 *
 * Every transfer polls with a deadline that moves whenever bytes move: a peer that stops
 * answering for `timeout` seconds, or whose connection closes, fails the call with its rank. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist-impl.h"

#define HELLO_MAGIC 0x41514144u /* "AQAD" */
#define HELLO_VERSION 1u

typedef struct hello {
    uint32_t magic;   /* HELLO_MAGIC */
    uint32_t version; /* HELLO_VERSION */
    int32_t rank;     /* sender's rank */
    int32_t size;     /* sender's WORLD_SIZE */
    uint32_t port;    /* sender's listening port (host order) */
} hello;

typedef struct peer_addr {
    uint32_t ip;   /* IPv4, network order */
    uint32_t port; /* host order */
} peer_addr;

typedef struct tcp_state {
    int *fd;         /* fd[r]: the connection to rank r (-1 for this rank) */
    int listen_fd;   /* this rank's listening socket, or -1 */
    char file[512];  /* file rendezvous: this rank's address file ("" when none) */
} tcp_state;

static tcp_state *S(aqa_dist *pg) { return pg->tr_state; }

static void sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- transfers ------------------------------------------------------------------------------ */

/* Sends slen bytes to rank sp while receiving rlen bytes from rank rp (either length may be 0),
 * both at once so that two ranks sending to each other never block on full socket buffers. */
static aqa_status xfer(aqa_dist *pg, int sp, const void *sbuf, size_t slen, int rp, void *rbuf, size_t rlen,
                       const char *what) {
    if (sp < 0) slen = 0, sp = rp;
    if (rp < 0) rlen = 0, rp = sp;
    tcp_state *s = S(pg);
    const char *so = sbuf;
    char *ro = rbuf;
    size_t sent = 0, got = 0;
    double deadline = aqa__dist_now() + pg->timeout;
    while (sent < slen || got < rlen) {
        struct pollfd p[2];
        int np = 0, is = -1, ir = -1;
        if (sent < slen) {
            p[np] = (struct pollfd){.fd = s->fd[sp], .events = POLLOUT};
            is = np++;
        }
        if (got < rlen) {
            if (is >= 0 && rp == sp) {
                p[is].events |= POLLIN;
                ir = is;
            } else {
                p[np] = (struct pollfd){.fd = s->fd[rp], .events = POLLIN};
                ir = np++;
            }
        }
        double left = deadline - aqa__dist_now();
        if (left <= 0) {
            int who = got < rlen ? rp : sp;
            return aqa__dist_fail(pg, "timed out after %g s waiting for rank %d (%s): that rank failed, stopped or is "
                                      "much slower (AQA_DIST_TIMEOUT sets the limit)",
                                  pg->timeout, who, what);
        }
        int r = poll(p, (nfds_t)np, left > 3600 ? 3600000 : (int)(left * 1000) + 1);
        if (r < 0) {
            if (errno == EINTR) continue;
            return aqa__dist_fail(pg, "poll failed during %s: %s", what, strerror(errno));
        }
        if (r == 0) continue;
        bool moved = false;
        if (ir >= 0 && (p[ir].revents & (POLLIN | POLLHUP | POLLERR))) {
            ssize_t k = recv(s->fd[rp], ro + got, rlen - got, 0);
            if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK))
                return aqa__dist_fail(pg, "rank %d closed its connection during %s (it exited or was killed)%s%s", rp,
                                      what, k < 0 ? ": " : "", k < 0 ? strerror(errno) : "");
            if (k > 0) got += (size_t)k, moved = true;
        }
        if (is >= 0 && sent < slen && (p[is].revents & (POLLOUT | POLLHUP | POLLERR))) {
            ssize_t k = send(s->fd[sp], so + sent, slen - sent, MSG_NOSIGNAL);
            if (k < 0 && errno != EAGAIN && errno != EINTR && errno != EWOULDBLOCK)
                return aqa__dist_fail(pg, "rank %d closed its connection during %s (it exited or was killed): %s", sp,
                                      what, strerror(errno));
            if (k > 0) sent += (size_t)k, moved = true;
        }
        if (moved) deadline = aqa__dist_now() + pg->timeout;
    }
    return AQA_OK;
}

static void tcp_close(aqa_dist *pg, bool failed) {
    (void)failed; /* closing the sockets tells the peers at once */
    tcp_state *s = S(pg);
    if (!s) return;
    for (int r = 0; s->fd && r < pg->size; r++)
        if (s->fd[r] >= 0) close(s->fd[r]);
    if (s->listen_fd >= 0) close(s->listen_fd);
    if (s->file[0]) unlink(s->file);
    free(s->fd);
    free(s);
    pg->tr_state = NULL;
}

const aqa_dist_transport aqa__dist_tcp = {"tcp", xfer, tcp_close};

/* ---- connection set-up ---------------------------------------------------------------------- */

/* Blocking exact read/write on a socket during set-up (bounded by the deadline). */
static aqa_status setup_io(aqa_dist *pg, int fd, void *buf, size_t n, bool write, double deadline, const char *who) {
    char *p = buf;
    size_t done = 0;
    while (done < n) {
        struct pollfd q = {.fd = fd, .events = write ? POLLOUT : POLLIN};
        double left = deadline - aqa__dist_now();
        if (left <= 0) return aqa__dist_fail(pg, "timed out after %g s during the rendezvous with %s", pg->timeout, who);
        int r = poll(&q, 1, (int)(left * 1000) + 1);
        if (r < 0 && errno != EINTR) return aqa__dist_fail(pg, "poll: %s", strerror(errno));
        if (r <= 0) continue;
        ssize_t k = write ? send(fd, p + done, n - done, MSG_NOSIGNAL) : recv(fd, p + done, n - done, 0);
        if (k == 0 || (k < 0 && errno != EAGAIN && errno != EINTR))
            return aqa__dist_fail(pg, "%s closed its connection during the rendezvous%s%s", who, k < 0 ? ": " : "",
                                  k < 0 ? strerror(errno) : "");
        if (k > 0) done += (size_t)k;
    }
    return AQA_OK;
}

static void tune(int fd) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* A listening socket on port (0: any free port); its port in *bound. */
static aqa_status listen_on(aqa_dist *pg, int port, int *fd_out, int *bound) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return aqa__dist_fail(pg, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_ANY)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 1024)) {
        int e = errno;
        close(fd);
        return aqa__dist_fail(pg, "cannot listen on port %d: %s%s", port, strerror(e),
                              port ? " (another job may use it: choose another MASTER_PORT)" : "");
    }
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    *fd_out = fd;
    *bound = ntohs(a.sin_port);
    return AQA_OK;
}

/* Accepts one connection before the deadline; the peer's IPv4 address in *ip. */
static aqa_status accept_one(aqa_dist *pg, int lfd, double deadline, int *fd, uint32_t *ip) {
    for (;;) {
        struct pollfd q = {.fd = lfd, .events = POLLIN};
        double left = deadline - aqa__dist_now();
        if (left <= 0)
            return aqa__dist_fail(pg, "timed out after %g s waiting for the other ranks to connect (started with the "
                                      "same WORLD_SIZE and rendezvous?)",
                                  pg->timeout);
        if (poll(&q, 1, (int)(left * 1000) + 1) <= 0) continue;
        struct sockaddr_in a;
        socklen_t len = sizeof a;
        int c = accept(lfd, (struct sockaddr *)&a, &len);
        if (c < 0) continue;
        fcntl(c, F_SETFL, fcntl(c, F_GETFL) & ~O_NONBLOCK);
        *fd = c;
        *ip = a.sin_addr.s_addr;
        return AQA_OK;
    }
}

/* Connects to ip:port, retrying refused connections until the deadline (the peer may start
 * later).  refresh, when given, re-reads the address before each retry (file rendezvous). */
static aqa_status connect_to(aqa_dist *pg, peer_addr *addr, double deadline, const char *who,
                             aqa_status (*refresh)(aqa_dist *pg, int r, peer_addr *a, double deadline), int peer,
                             int *fd_out) {
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) return aqa__dist_fail(pg, "socket: %s", strerror(errno));
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)addr->port), .sin_addr.s_addr = addr->ip};
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            *fd_out = fd;
            return AQA_OK;
        }
        int e = errno;
        close(fd);
        if (aqa__dist_now() > deadline) {
            char ip[INET_ADDRSTRLEN] = "?";
            inet_ntop(AF_INET, &addr->ip, ip, sizeof ip);
            return aqa__dist_fail(pg, "timed out after %g s connecting to %s at %s:%u: %s", pg->timeout, who, ip,
                                  (unsigned)addr->port, strerror(e));
        }
        sleep_ms(50);
        if (refresh) {
            aqa_status st = refresh(pg, peer, addr, deadline);
            if (st) return st;
        }
    }
}

static aqa_status check_hello(aqa_dist *pg, const hello *h, const char *who) {
    if (h->magic != HELLO_MAGIC || h->version != HELLO_VERSION)
        return aqa__dist_fail(pg, "%s is not an aqa rank of this version (wrong port or address?)", who);
    if (h->size != pg->size)
        return aqa__dist_fail(pg, "rank %d was started with WORLD_SIZE=%d, this rank with %d", h->rank, h->size, pg->size);
    if (h->rank < 0 || h->rank >= pg->size || h->rank == pg->rank)
        return aqa__dist_fail(pg, "%s says it is rank %d (RANK must differ between the ranks and be < %d)", who, h->rank,
                              pg->size);
    return AQA_OK;
}

/* Accepts the connections of every rank above this one (each introduces itself). */
static aqa_status accept_higher(aqa_dist *pg, double deadline) {
    tcp_state *s = S(pg);
    for (int k = pg->rank + 1; k < pg->size; k++) {
        int fd;
        uint32_t ip;
        aqa_status st = accept_one(pg, s->listen_fd, deadline, &fd, &ip);
        if (st) return st;
        hello h;
        if ((st = setup_io(pg, fd, &h, sizeof h, false, deadline, "a connecting rank")) ||
            (st = check_hello(pg, &h, "a connecting rank"))) {
            close(fd);
            return st;
        }
        if (h.rank < pg->rank || s->fd[h.rank] >= 0) {
            close(fd);
            return aqa__dist_fail(pg, "two ranks say they are rank %d (RANK must differ between the ranks)", h.rank);
        }
        s->fd[h.rank] = fd;
    }
    return AQA_OK;
}

static aqa_status send_hello(aqa_dist *pg, int fd, int port, double deadline, const char *who) {
    hello h = {HELLO_MAGIC, HELLO_VERSION, pg->rank, pg->size, (uint32_t)port};
    return setup_io(pg, fd, &h, sizeof h, true, deadline, who);
}

/* host's first IPv4 address; false (with the resolver's reason in *why) when it has none. */
static bool lookup(const char *host, uint32_t *ip, const char **why) {
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int e = getaddrinfo(host, NULL, &hints, &res);
    if (e || !res) {
        *why = e ? gai_strerror(e) : "no address";
        return false;
    }
    *ip = ((struct sockaddr_in *)res->ai_addr)->sin_addr.s_addr;
    freeaddrinfo(res);
    return true;
}

static aqa_status rendezvous_tcp(aqa_dist *pg, const char *hostport) {
    tcp_state *s = S(pg);
    char host[256];
    const char *colon = strrchr(hostport, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || colon == hostport || (size_t)(colon - hostport) >= sizeof host || *end || port <= 0 || port > 65535)
        return aqa__dist_fail(pg, "rendezvous \"tcp://%s\": expected tcp://HOST:PORT (MASTER_ADDR, MASTER_PORT)", hostport);
    memcpy(host, hostport, (size_t)(colon - hostport));
    host[colon - hostport] = 0;
    double deadline = aqa__dist_now() + pg->timeout;
    aqa_status st;
    int bound;
    peer_addr *table = calloc((size_t)pg->size, sizeof *table);
    if (!table) return aqa_fail(AQA_ENOMEM, "aqa_dist_init: out of memory");
    if (pg->rank == 0) {
        if ((st = listen_on(pg, (int)port, &s->listen_fd, &bound))) goto done;
        /* everyone introduces itself; their addresses as rank 0 sees them */
        for (int k = 1; k < pg->size; k++) {
            int fd;
            uint32_t ip;
            hello h;
            if ((st = accept_one(pg, s->listen_fd, deadline, &fd, &ip))) goto done;
            if ((st = setup_io(pg, fd, &h, sizeof h, false, deadline, "a connecting rank")) ||
                (st = check_hello(pg, &h, "a connecting rank"))) {
                close(fd);
                goto done;
            }
            if (s->fd[h.rank] >= 0) {
                close(fd);
                st = aqa__dist_fail(pg, "two ranks say they are rank %d (RANK must differ between the ranks)", h.rank);
                goto done;
            }
            s->fd[h.rank] = fd;
            table[h.rank] = (peer_addr){ip, h.port};
        }
        for (int k = 1; k < pg->size && !st; k++)
            st = setup_io(pg, s->fd[k], table, (size_t)pg->size * sizeof *table, true, deadline, "a rank");
        goto done;
    }
    peer_addr master;
    const char *why;
    if (!lookup(host, &master.ip, &why)) {
        st = aqa__dist_fail(pg, "cannot resolve the rendezvous address \"%s\" (MASTER_ADDR): %s", host, why);
        goto done;
    }
    master.port = (uint32_t)port;
    if ((st = listen_on(pg, 0, &s->listen_fd, &bound))) goto done;
    if ((st = connect_to(pg, &master, deadline, "rank 0 (the rendezvous)", NULL, 0, &s->fd[0])) ||
        (st = send_hello(pg, s->fd[0], bound, deadline, "rank 0")) ||
        (st = setup_io(pg, s->fd[0], table, (size_t)pg->size * sizeof *table, false, deadline, "rank 0")))
        goto done;
    for (int j = 1; j < pg->rank; j++) {
        char who[32];
        snprintf(who, sizeof who, "rank %d", j);
        if ((st = connect_to(pg, &table[j], deadline, who, NULL, j, &s->fd[j])) ||
            (st = send_hello(pg, s->fd[j], bound, deadline, who)))
            goto done;
    }
    st = accept_higher(pg, deadline);
done:
    free(table);
    return st;
}

/* ---- file rendezvous ---------------------------------------------------------------------- */

static const char *g_file_base; /* the PATH of file:///PATH during set-up */

static aqa_status read_addr(aqa_dist *pg, int r, peer_addr *a, double deadline) {
    char path[600], ip[64];
    snprintf(path, sizeof path, "%s.%d", g_file_base, r);
    for (;;) {
        FILE *f = fopen(path, "r");
        unsigned port = 0;
        int ok = f && fscanf(f, "%63s %u", ip, &port) == 2;
        if (f) fclose(f);
        if (ok && inet_pton(AF_INET, ip, &a->ip) == 1 && port > 0 && port < 65536) {
            a->port = port;
            return AQA_OK;
        }
        if (aqa__dist_now() > deadline)
            return aqa__dist_fail(pg, "timed out after %g s waiting for rank %d's address in %s (is the folder shared "
                                      "and every rank started?)",
                                  pg->timeout, r, path);
        sleep_ms(20);
    }
}

/* This machine's address for the others: AQA_DIST_HOST, or the host name's first IPv4 address. */
static aqa_status own_address(aqa_dist *pg, char *ip, size_t n) {
    const char *h = getenv("AQA_DIST_HOST");
    char name[256];
    if (!h || !*h) {
        if (gethostname(name, sizeof name)) snprintf(name, sizeof name, "localhost");
        h = name;
    }
    uint32_t a;
    const char *why;
    if (!lookup(h, &a, &why)) {
        if (h != name) return aqa__dist_fail(pg, "cannot resolve AQA_DIST_HOST=\"%s\": %s", h, why);
        a = htonl(INADDR_LOOPBACK); /* a host name that does not resolve: one machine, loopback */
    }
    inet_ntop(AF_INET, &a, ip, (socklen_t)n);
    return AQA_OK;
}

static aqa_status rendezvous_file(aqa_dist *pg, const char *path) {
    tcp_state *s = S(pg);
    if (!*path || strlen(path) > 400) return aqa__dist_fail(pg, "rendezvous \"file://%s\": expected file:///PATH", path);
    double deadline = aqa__dist_now() + pg->timeout;
    int bound;
    char ip[64], tmp[600];
    aqa_status st = listen_on(pg, 0, &s->listen_fd, &bound);
    if (!st) st = own_address(pg, ip, sizeof ip);
    if (st) return st;
    snprintf(s->file, sizeof s->file, "%s.%d", path, pg->rank);
    snprintf(tmp, sizeof tmp, "%s.%d.tmp%ld", path, pg->rank, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s %d\n", ip, bound) < 0 || fclose(f) || rename(tmp, s->file)) {
        int e = errno;
        s->file[0] = 0;
        return aqa__dist_fail(pg, "cannot write the rendezvous file %s: %s", tmp, strerror(e));
    }
    g_file_base = path;
    for (int j = 0; j < pg->rank && !st; j++) {
        char who[32];
        peer_addr a;
        snprintf(who, sizeof who, "rank %d", j);
        st = read_addr(pg, j, &a, deadline);
        if (!st) st = connect_to(pg, &a, deadline, who, read_addr, j, &s->fd[j]);
        if (!st) st = send_hello(pg, s->fd[j], bound, deadline, who);
    }
    if (!st) st = accept_higher(pg, deadline);
    g_file_base = NULL;
    return st;
}

aqa_status aqa__dist_tcp_open(aqa_dist *pg, const char *init) {
    tcp_state *s = calloc(1, sizeof *s);
    if (s) s->fd = malloc((size_t)pg->size * sizeof *s->fd);
    if (!s || !s->fd) {
        free(s);
        return aqa_fail(AQA_ENOMEM, "aqa_dist_init: out of memory");
    }
    for (int r = 0; r < pg->size; r++) s->fd[r] = -1;
    s->listen_fd = -1;
    pg->tr = &aqa__dist_tcp;
    pg->tr_state = s;
    aqa_status st;
    if (!strncmp(init, "tcp://", 6)) st = rendezvous_tcp(pg, init + 6);
    else if (!strncmp(init, "file://", 7)) st = rendezvous_file(pg, init + 7);
    else st = aqa__dist_fail(pg, "unknown rendezvous \"%s\" (AQA_DIST_INIT): expected tcp://HOST:PORT or file:///PATH", init);
    for (int r = 0; !st && r < pg->size; r++)
        if (r != pg->rank) tune(s->fd[r]);
    /* everyone is connected: the address files can go (the barrier makes sure all were read) */
    if (!st) st = aqa_dist_barrier(pg);
    if (!st && s->file[0]) {
        unlink(s->file);
        s->file[0] = 0;
    }
    if (!st && s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    return st;
}
