/* test_train_faults.c: examples/train_mvla killed and starved of disk space, on a tiny Fis-V-style
 * set (per-video .npy features the test writes, plain MLP head), against an uninterrupted run of
 * the same settings.
 *
 * - kills: 20 SIGKILLs, half at random moments of a run (within 0.12 s of its start), half at the k-th file event in the run
 *   folder (inotify: a temporary file created, closed before its rename, renamed into place), so
 *   several land inside checkpoint, best and log writes; after each, the run resumes.  Then
 *   best.txt, best.safetensors, last.safetensors and log.jsonl must equal the uninterrupted run's
 *   (the log holds each epoch once; best is the best completed epoch), no temporary file may be
 *   left, and the next start must have said it removed the stale ones.
 * - full disk: the run folder on a 1.2 MB tmpfs (skipped where mounting is not permitted): the
 *   run stops with a message naming the file and "No space left on device", leaves no temporary
 *   file and a consistent folder, and after the tmpfs grows it resumes to the same end.
 * - a file size limit (RLIMIT_FSIZE): the first checkpoint write fails with the system's reason.
 */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "tests/testlib.h"

#define PROG "./examples/train_mvla"
#define EPOCHS "30"

static char g_dir[256];

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* A 2-D float32 .npy file. */
static int write_npy(const char *path, const float *x, int rows, int cols) {
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols);
    int total = 10 + n + 1, pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned short hl = (unsigned short)(n + pad + 1);
    fwrite("\x93NUMPY\x01\x00", 1, 8, f);
    fputc(hl & 0xff, f);
    fputc(hl >> 8, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int i = 0; i < pad; i++) fputc(' ', f);
    fputc('\n', f);
    fwrite(x, sizeof *x, (size_t)(rows * cols), f);
    return fclose(f);
}

/* 40 programs (30 train, 10 test), 4 clips x 16 features each; the first feature carries the score. */
static int make_set(const char *dir) {
    char path[512];
    uint64_t s = 12345;
    snprintf(path, sizeof path, "%s/train_dataset.txt", dir);
    FILE *tr = fopen(path, "w");
    snprintf(path, sizeof path, "%s/test_dataset.txt", dir);
    FILE *te = fopen(path, "w");
    if (!tr || !te) return -1;
    for (int id = 1; id <= 40; id++) {
        float x[64];
        double u[3];
        for (int k = 0; k < 3; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            u[k] = (double)(s >> 11) / 9007199254740992.0;
        }
        double tes = 20 + 10 * u[0], pcs = 20 + 10 * u[1];
        int ded = (int)(3 * u[2]);
        fprintf(id <= 30 ? tr : te, "%d %.2f %.2f %d\n", id, tes, pcs, ded);
        for (int k = 0; k < 64; k++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            x[k] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
        }
        for (int c = 0; c < 4; c++) x[c * 16] = (float)((tes + pcs - ded) / 50.0 + 0.1 * x[c * 16]);
        snprintf(path, sizeof path, "%s/%d.npy", dir, id);
        if (write_npy(path, x, 4, 16)) return -1;
    }
    return fclose(tr) | fclose(te);
}

/* Starts train_mvla into run folder `out` (with --resume when it holds a checkpoint), output to
 * `log`; fsize_limit > 0 sets RLIMIT_FSIZE (SIGXFSZ ignored, so writes fail with EFBIG). */
static pid_t start(const char *out, const char *log, long fsize_limit) {
    char data[300], last[600];
    snprintf(data, sizeof data, "%s/data", g_dir);
    snprintf(last, sizeof last, "%s/last.safetensors", out);
    bool resume = access(last, F_OK) == 0;
    pid_t pid = fork();
    if (pid != 0) return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0666);
    if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
    }
    if (fsize_limit > 0) {
        struct rlimit rl = {(rlim_t)fsize_limit, (rlim_t)fsize_limit};
        setrlimit(RLIMIT_FSIZE, &rl);
        signal(SIGXFSZ, SIG_IGN);
    }
    char *args[] = {PROG, "--dataset", "fisv", "--data", data, "--features", data, "--no-mvla", "--head", "mlp",
                    "--epochs", EPOCHS, "--batch", "4", "--workers", "2", "--progress", "false", "--lr-head", "3e-3",
                    "--out", (char *)out, resume ? "--resume" : NULL, NULL};
    execv(PROG, args);
    _exit(127);
}

static int wait_status(pid_t pid) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    return st;
}

static int run_to_end(const char *out, const char *log) { return wait_status(start(out, log, 0)); }

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

/* Number of "<name>.tmp.<digits>" files in dir. */
static int count_temps(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d))) n += strstr(e->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

/* The log's lines without their timing fields (the rest is deterministic); NULL when a line is not
 * a JSON object.  *n receives the number of lines. */
static char **log_lines(const char *dir, int *n) {
    char path[600], *line = NULL;
    size_t cap = 0;
    snprintf(path, sizeof path, "%s/log.jsonl", dir);
    FILE *f = fopen(path, "r");
    char **out = calloc(256, sizeof *out);
    *n = 0;
    bool bad = false;
    while (f && *n < 256 && getline(&line, &cap, f) >= 0) {
        cJSON *o = cJSON_Parse(line);
        if (!cJSON_IsObject(o)) bad = true;
        cJSON_DeleteItemFromObject(o, "epoch_seconds");
        cJSON_DeleteItemFromObject(o, "samples_per_s");
        out[(*n)++] = o ? cJSON_PrintUnformatted(o) : strdup("(not JSON)");
        cJSON_Delete(o);
    }
    free(line);
    if (f) fclose(f);
    if (bad) {
        for (int i = 0; i < *n; i++) free(out[i]);
        free(out);
        return NULL;
    }
    return out;
}

static void free_lines(char **l, int n) {
    for (int i = 0; l && i < n; i++) free(l[i]);
    free(l);
}

/* The "model.*" tensors of two checkpoints are byte-identical. */
static bool same_model(const char *a, const char *b) {
    aqa_st_file *fa = NULL, *fb = NULL;
    bool same = aqa_st_open(a, &fa) == AQA_OK && aqa_st_open(b, &fb) == AQA_OK;
    for (int i = 0; same && i < aqa_st_count(fa); i++) {
        const char *name = aqa_st_name(fa, i);
        if (strncmp(name, "model.", 6)) continue;
        int j = aqa_st_find(fb, name);
        const aqa_st_tensor *ta = aqa_st_get(fa, i), *tb = j >= 0 ? aqa_st_get(fb, j) : NULL;
        same = tb && ta->nbytes == tb->nbytes && !memcmp(ta->data, tb->data, ta->nbytes);
    }
    aqa_st_close(fa);
    aqa_st_close(fb);
    return same;
}

/* The run folder `dir` ended as the reference run did. */
static void check_like_reference(const char *dir, const char *what) {
    char ref[300], a[600], b[600];
    snprintf(ref, sizeof ref, "%s/ref", g_dir);
    int n_ref, n;
    char **lr = log_lines(ref, &n_ref), **l = log_lines(dir, &n);
    CHECK_MSG(l != NULL, "%s: log.jsonl has a line that is not JSON", what);
    CHECK_MSG(n == n_ref && n == atoi(EPOCHS), "%s: %d log lines, the reference has %d", what, n, n_ref);
    for (int i = 0; l && lr && i < n && i < n_ref; i++)
        CHECK_MSG(!strcmp(l[i], lr[i]), "%s: log line %d:\n  %s\nreference:\n  %s", what, i + 1, l[i], lr[i]);
    free_lines(lr, n_ref);
    free_lines(l, n);
    snprintf(a, sizeof a, "%s/best.txt", dir);
    snprintf(b, sizeof b, "%s/best.txt", ref);
    char *ta = slurp(a), *tb = slurp(b);
    CHECK_MSG(ta && tb && !strcmp(ta, tb), "%s: best.txt \"%s\", reference \"%s\"", what, ta ? ta : "(none)",
              tb ? tb : "(none)");
    free(ta);
    free(tb);
    snprintf(a, sizeof a, "%s/best.safetensors", dir);
    snprintf(b, sizeof b, "%s/best.safetensors", ref);
    CHECK_MSG(same_model(a, b), "%s: best.safetensors differs from the reference's", what);
    snprintf(a, sizeof a, "%s/last.safetensors", dir);
    snprintf(b, sizeof b, "%s/last.safetensors", ref);
    CHECK_MSG(same_model(a, b), "%s: last.safetensors differs from the reference's", what);
    CHECK_MSG(count_temps(dir) == 0, "%s: temporary files left in %s", what, dir);
}

/* What must hold at any moment: every log line is JSON, best.txt is absent or "<epoch> <score>". */
static void check_anytime(const char *dir, int kill_no) {
    char p[600];
    int n;
    char **l = log_lines(dir, &n);
    CHECK_MSG(l != NULL, "after kill %d: a log line is not JSON", kill_no);
    free_lines(l, n);
    snprintf(p, sizeof p, "%s/best.txt", dir);
    char *t = slurp(p);
    long e;
    double sc;
    CHECK_MSG(!t || sscanf(t, "%ld %lf", &e, &sc) == 2, "after kill %d: best.txt is \"%s\"", kill_no, t);
    free(t);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double g_ref_seconds = 0.12; /* how long the reference run took (the kills' time scale) */

static void test_reference(void) {
    char ref[300], log[400];
    snprintf(ref, sizeof ref, "%s/ref", g_dir);
    snprintf(log, sizeof log, "%s/ref.log", g_dir);
    double t0 = now_s();
    int st = run_to_end(ref, log);
    g_ref_seconds = now_s() - t0;
    char *t = slurp(log);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "reference run failed:\n%s", t);
    free(t);
    int n;
    char **l = log_lines(ref, &n);
    CHECK_EQ_INT(n, atoi(EPOCHS));
    free_lines(l, n);
}

/* 20 kills, then the run ends as the reference did. */
static void test_sigkill(void) {
    char dir[300], log[400];
    snprintf(dir, sizeof dir, "%s/killed", g_dir);
    snprintf(log, sizeof log, "%s/killed.log", g_dir);
    mkdir(dir, 0777);
    uint64_t seed = test_seed("kill moments");
    int killed_running = 0, in_writes = 0;
    for (int k = 0; k < 20; k++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        double u = (double)(seed >> 11) / 9007199254740992.0;
        int ino = inotify_init1(IN_NONBLOCK);
        if (ino >= 0) inotify_add_watch(ino, dir, IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO);
        pid_t pid = start(dir, log, 0);
        if (k % 2 == 0 || ino < 0) { /* a random moment within the first 0.12 s, or the first
                                      * half of a whole run when that is shorter */
            double at = u * fmin(0.12, 0.5 * g_ref_seconds);
            struct timespec d = {0, (long)(at * 1e9)};
            nanosleep(&d, NULL);
        } else { /* the m-th event in the folder (m = 1..12) */
            int want = 1 + (int)(u * 12), seen = 0;
            double t0 = now_s();
            char buf[4096] __attribute__((aligned(8)));
            while (seen < want && now_s() - t0 < 5) {
                struct pollfd p = {ino, POLLIN, 0};
                if (poll(&p, 1, 50) <= 0) {
                    if (waitpid(pid, NULL, WNOHANG) == pid) { /* ended by itself (not expected) */
                        pid = -1;
                        break;
                    }
                    continue;
                }
                ssize_t len = read(ino, buf, sizeof buf);
                for (char *q = buf; len > 0 && q < buf + len;) {
                    struct inotify_event *ev = (struct inotify_event *)q;
                    if (++seen == want) {
                        in_writes += ev->len && strstr(ev->name, ".tmp.") != NULL;
                        break;
                    }
                    q += sizeof *ev + ev->len;
                }
            }
        }
        if (pid > 0) {
            kill(pid, SIGKILL);
            int st = wait_status(pid);
            killed_running += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
            if (!WIFSIGNALED(st)) printf("    kill %d: exited with %d first\n", k + 1, WEXITSTATUS(st));
        }
        if (ino >= 0) close(ino);
        check_anytime(dir, k + 1);
    }
    printf("    %d of 20 kills hit a running train_mvla, %d during a temporary file's life\n", killed_running, in_writes);
    CHECK_MSG(killed_running >= 12, "only %d kills hit a running process", killed_running);
    int st = run_to_end(dir, log);
    char *t = slurp(log);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the last start failed:\n%s", t);
    if (in_writes) CHECK_MSG(t && strstr(t, "stale temporary file"), "no start removed stale temporary files");
    free(t);
    check_like_reference(dir, "after 20 kills");
}

/* A file size limit: the first checkpoint cannot be written; the message says why. */
static void test_file_size_limit(void) {
    char dir[300], log[400];
    snprintf(dir, sizeof dir, "%s/fsize", g_dir);
    snprintf(log, sizeof log, "%s/fsize.log", g_dir);
    int st = wait_status(start(dir, log, 100000));
    char *t = slurp(log);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) != 0 && t && strstr(t, "File too large") &&
                  strstr(t, "/fsize/last.safetensors"),
              "status %d:\n%s", st, t);
    free(t);
    CHECK_EQ_INT(count_temps(dir), 0);
    char p[600];
    snprintf(p, sizeof p, "%s/last.safetensors", dir);
    CHECK(access(p, F_OK) != 0);
}

/* The run folder on a small tmpfs. */
static void test_full_disk(void) {
    char dir[300], log[400], cmd[1200];
    snprintf(dir, sizeof dir, "%s/full", g_dir);
    snprintf(log, sizeof log, "%s/full.log", g_dir);
    mkdir(dir, 0777);
    if (mount("tmpfs", dir, "tmpfs", 0, "size=1200k") != 0) {
        SKIP("cannot mount a tmpfs here (%s): needs root or CAP_SYS_ADMIN", strerror(errno));
        return;
    }
    int st = run_to_end(dir, log);
    char *t = slurp(log);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) != 0 && t && strstr(t, "No space left on device") && strstr(t, "/full/"),
              "status %d:\n%s", st, t);
    free(t);
    CHECK_EQ_INT(count_temps(dir), 0);
    /* what is there is consistent: every log line JSON, best.txt a pair */
    check_anytime(dir, 0);
    if (mount("tmpfs", dir, "tmpfs", MS_REMOUNT, "size=20m") != 0) {
        CHECK_MSG(0, "remount: %s", strerror(errno));
    } else {
        st = run_to_end(dir, log);
        t = slurp(log);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "resume after the disk grew:\n%s", t);
        free(t);
        check_like_reference(dir, "after a full disk");
    }
    snprintf(cmd, sizeof cmd, "%s", dir);
    CHECK(umount(cmd) == 0);
}

int main(void) {
    if (access(PROG, X_OK) != 0) {
        printf("SKIP test_train_faults: " PROG " not built\n");
        return 0;
    }
    snprintf(g_dir, sizeof g_dir, "/tmp/aqa_faults_XXXXXX");
    if (!mkdtemp(g_dir)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    char data[300];
    snprintf(data, sizeof data, "%s/data", g_dir);
    mkdir(data, 0777);
    if (make_set(data)) {
        printf("FAIL setup: writing the data set in %s\n", data);
        return 1;
    }
    RUN(test_reference);
    RUN(test_sigkill);
    RUN(test_file_size_limit);
    RUN(test_full_disk);
    nftw(g_dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
    return test_finish();
}
