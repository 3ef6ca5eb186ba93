/* dist_testlib.h: running a test function on several ranks inside one test program: each rank
 * is a forked child that joins a process group through the TCP or file rendezvous (no MPI,
 * no launcher), runs the function and exits with the number of its failed checks.  The parent
 * waits for every child with a time limit, so a hang fails the case instead of the suite.
 *
 * Children report details on stdout with "    rank R: ..." lines; the parent counts failures.
 * The parent must not have run OpenMP work before forking (libgomp does not survive fork), so
 * tests do their single-process reference computations in a child as well (n = 1). */
#ifndef AQA_DIST_TESTLIB_H
#define AQA_DIST_TESTLIB_H

#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dist/dist.h"
#include "tests/testlib.h"

/* A free TCP port of this machine (bound then released; good enough for a test). */
__attribute__((unused)) static int dist_test_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0) close(fd);
    return port;
}

/* A rendezvous for n ranks: "tcp://127.0.0.1:PORT", or (file) "file://<tmp>/rdv" in a fresh folder. */
__attribute__((unused)) static void dist_test_rendezvous(bool file, char *buf, size_t n) {
    if (!file) {
        snprintf(buf, n, "tcp://127.0.0.1:%d", dist_test_free_port());
        return;
    }
    char dir[] = "/tmp/aqa_rdv_XXXXXX";
    if (!mkdtemp(dir)) snprintf(dir, sizeof dir, "/tmp");
    snprintf(buf, n, "file://%s/rdv", dir);
}

typedef int (*dist_test_fn)(aqa_dist *pg, void *arg);

/* Runs fn on n ranks joined through `init` (NULL: a fresh TCP rendezvous), each with the given
 * timeout in seconds.  Returns the number of ranks that failed (non-zero exit, crash, or still
 * running after `limit` seconds: killed).  rc[r], when given, receives each rank's exit status
 * (-1 for a crash or kill). */
__attribute__((unused)) static int dist_test_run(int n, const char *init, double timeout, double limit, dist_test_fn fn,
                                                 void *arg, int *rc) {
    char rdv[256];
    if (!init) {
        dist_test_rendezvous(false, rdv, sizeof rdv);
        init = rdv;
    }
    pid_t pid[64];
    fflush(stdout);
    fflush(stderr);
    for (int r = 0; r < n; r++) {
        pid[r] = fork();
        if (pid[r] == 0) {
            char v[32];
            snprintf(v, sizeof v, "%d", n);
            setenv("WORLD_SIZE", v, 1);
            snprintf(v, sizeof v, "%d", r);
            setenv("RANK", v, 1);
            setenv("LOCAL_RANK", v, 1);
            snprintf(v, sizeof v, "%g", timeout);
            setenv("AQA_DIST_TIMEOUT", v, 1);
            setenv("AQA_DIST_INIT", init, 1);
            unsetenv("OMPI_COMM_WORLD_SIZE");
            aqa_dist *pg = NULL;
            int failed;
            if (aqa_dist_init(&pg)) {
                printf("    rank %d: aqa_dist_init: %s\n", r, aqa_last_error());
                failed = 1;
            } else {
                failed = fn(pg, arg);
            }
            aqa_dist_free(pg);
            fflush(stdout);
            exit(failed > 100 ? 100 : failed);
        }
    }
    int bad = 0;
    double end = limit > 0 ? (double)time(NULL) + limit : 0;
    for (int r = 0; r < n; r++) {
        int st = 0;
        pid_t w;
        while ((w = waitpid(pid[r], &st, WNOHANG)) == 0) {
            if (end && (double)time(NULL) > end) {
                for (int k = r; k < n; k++) kill(pid[k], SIGKILL);
                printf("    rank %d: still running after %g s: killed\n", r, limit);
                end = 0;
            }
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
        int code = w > 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        if (rc) rc[r] = code;
        if (code != 0) bad++;
    }
    return bad;
}

#endif /* AQA_DIST_TESTLIB_H */
