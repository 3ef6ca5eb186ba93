/* atomic_file.c: temporary file + fsync + rename + directory fsync (see atomic_file.h). */
#define _GNU_SOURCE /* fopencookie */
#include "io/atomic_file.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct aqa_atomic_file {
    char *path;     /* final destination */
    char *tmp_path; /* "<path>.tmp.<pid>", removed unless renamed */
    int fd;         /* descriptor of tmp_path; -1 once closed */
    FILE *fp;       /* buffered stream writing to fd (fopencookie); NULL once closed */
    int failed;     /* a write already failed (commit must not rename) */
    int err;        /* errno of the first failed write(2) (0: none), for the message */
};

/* The stream's write function: every byte to fd, the first failure's errno kept in af->err
 * (stdio itself only keeps an error flag, and errno is long overwritten when the commit looks). */
static ssize_t cookie_write(void *cookie, const char *buf, size_t n) {
    aqa_atomic_file *af = cookie;
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(af->fd, buf + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (!af->err) af->err = w < 0 ? errno : ENOSPC;
            af->failed = 1;
            return done ? (ssize_t)done : -1;
        }
        done += (size_t)w;
    }
    return (ssize_t)n;
}

/* The stream's seek function: muxers (FFmpeg's mp4 and mkv writers) go back to fill in their
 * headers, so the stream must be seekable like the fdopen stream it replaced. */
static int cookie_seek(void *cookie, off64_t *offset, int whence) {
    aqa_atomic_file *af = cookie;
    off_t at = lseek(af->fd, (off_t)*offset, whence);
    if (at < 0) return -1;
    *offset = (off64_t)at;
    return 0;
}

/* The reason of a failed write for messages. */
static const char *write_reason(const aqa_atomic_file *af) { return af->err ? strerror(af->err) : "write error"; }

static char *dup_printf_path(const char *path, long pid) {
    size_t n = strlen(path) + 32;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s.tmp.%ld", path, pid);
    return s;
}

static void destroy(aqa_atomic_file *af) {
    free(af->path);
    free(af->tmp_path);
    free(af);
}

aqa_status aqa_atomic_open(const char *path, aqa_atomic_file **out) {
    *out = NULL;
    if (!path || !*path) return aqa_fail(AQA_EINVAL, "aqa_atomic_open: empty path");
    aqa_atomic_file *af = calloc(1, sizeof *af);
    if (!af) return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    af->fd = -1;
    af->path = strdup(path);
    af->tmp_path = dup_printf_path(path, (long)getpid());
    if (!af->path || !af->tmp_path) {
        destroy(af);
        return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    }
    /* O_TRUNC rather than O_EXCL: a temp file left by a crashed process whose pid was reused
     * is garbage and may be overwritten. O_CLOEXEC keeps it out of child processes. */
    int fd = open(af->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0) {
        int e = errno;
        aqa_status st = aqa_fail(AQA_EIO, "%s: cannot create temporary file %s: %s", path,
                                 af->tmp_path, strerror(e));
        destroy(af);
        return st;
    }
    af->fd = fd;
    af->fp = fopencookie(af, "wb", (cookie_io_functions_t){.write = cookie_write, .seek = cookie_seek});
    if (!af->fp) {
        int e = errno;
        close(fd);
        unlink(af->tmp_path);
        aqa_status st = aqa_fail(AQA_EIO, "%s: cannot open a stream on %s: %s", path, af->tmp_path, strerror(e));
        destroy(af);
        return st;
    }
    *out = af;
    return AQA_OK;
}

FILE *aqa_atomic_stream(aqa_atomic_file *af) { return af->fp; }

const char *aqa_atomic_temp_path(const aqa_atomic_file *af) { return af->tmp_path; }

aqa_status aqa_atomic_write(aqa_atomic_file *af, const void *buf, size_t n) {
    if (n == 0) return AQA_OK;
    if (af->failed || !af->fp) return aqa_fail(AQA_ESTATE, "%s: write after failure", af->path);
    if (fwrite(buf, 1, n, af->fp) != n) {
        af->failed = 1;
        return aqa_fail(AQA_EIO, "%s: write to %s failed: %s", af->path, af->tmp_path, write_reason(af));
    }
    return AQA_OK;
}

/* Closes the stream and the descriptor (once). */
static int close_all(aqa_atomic_file *af) {
    int rc = 0;
    if (af->fp) rc |= fclose(af->fp);
    af->fp = NULL;
    if (af->fd >= 0) rc |= close(af->fd);
    af->fd = -1;
    return rc;
}

void aqa_atomic_abort(aqa_atomic_file *af) {
    if (!af) return;
    close_all(af);
    unlink(af->tmp_path);
    destroy(af);
}

/* Directory part of `path` ("." when it has none), so the rename can be made durable. */
static char *dir_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    size_t n = (size_t)(slash - path);
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = '\0';
    }
    return d;
}

aqa_status aqa_atomic_commit(aqa_atomic_file *af) {
    aqa_status st = AQA_OK;
    int e = 0;
    /* Every step before the rename must succeed, or the old file stays.  The buffered tail goes
     * out with fflush; close is checked too: on NFS and full disks the error can first show there. */
    if (!af->failed && fflush(af->fp) != 0) af->failed = 1;
    if (af->failed || ferror(af->fp)) {
        st = aqa_fail(AQA_EIO, "%s: writing %s failed: %s", af->path, af->tmp_path, write_reason(af));
    } else if (fsync(af->fd) != 0) {
        e = errno;
        st = aqa_fail(AQA_EIO, "%s: fsync of %s failed: %s", af->path, af->tmp_path, strerror(e));
    }
    if (af->fp && fclose(af->fp) != 0 && st == AQA_OK) {
        e = af->err ? af->err : errno;
        st = aqa_fail(AQA_EIO, "%s: closing %s failed: %s", af->path, af->tmp_path, strerror(e));
    }
    af->fp = NULL;
    int rc = close(af->fd);
    af->fd = -1;
    if (st == AQA_OK && rc != 0) {
        e = errno;
        st = aqa_fail(AQA_EIO, "%s: closing %s failed: %s", af->path, af->tmp_path, strerror(e));
    }
    if (st == AQA_OK && rename(af->tmp_path, af->path) != 0) {
        e = errno;
        st = aqa_fail(AQA_EIO, "%s: cannot rename %s over it: %s", af->path, af->tmp_path,
                      strerror(e));
    }
    if (st != AQA_OK) {
        unlink(af->tmp_path);
        destroy(af);
        return st;
    }
    /* The rename is done; make it durable. File systems that cannot fsync a directory say
     * EINVAL (or EBADF / EROFS for read-only opens); that is not a failure of the save. */
    char *dir = dir_of(af->path);
    if (dir) {
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) != 0 && errno != EINVAL && errno != EBADF && errno != EROFS) {
                e = errno;
                st = aqa_fail(AQA_EIO, "%s: written, but fsync of directory %s failed: %s",
                              af->path, dir, strerror(e));
            }
            close(dfd);
        }
        free(dir);
    }
    destroy(af);
    return st;
}

aqa_status aqa_atomic_write_file(const char *path, const void *buf, size_t n) {
    aqa_atomic_file *af;
    aqa_status st = aqa_atomic_open(path, &af);
    if (st != AQA_OK) return st;
    st = aqa_atomic_write(af, buf, n);
    if (st != AQA_OK) {
        aqa_atomic_abort(af);
        return st;
    }
    return aqa_atomic_commit(af);
}

/* Whether `name` is "<something>.tmp.<pid>" with a pid of a process that no longer exists. */
static int stale_temp(const char *name) {
    const char *t = strstr(name, ".tmp.");
    if (!t || t == name) return 0;
    for (;;) { /* the last ".tmp." in the name */
        const char *n = strstr(t + 1, ".tmp.");
        if (!n) break;
        t = n;
    }
    const char *d = t + 5;
    if (!*d) return 0;
    long pid = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9' || pid > 100000000) return 0;
        pid = pid * 10 + (*d - '0');
    }
    if (pid <= 0) return 0;
    if (pid == (long)getpid()) return 0; /* ours: still being written */
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

aqa_status aqa_atomic_clean_stale(const char *dir, int *n_removed) {
    if (n_removed) *n_removed = 0;
    if (!dir) return aqa_fail(AQA_EINVAL, "aqa_atomic_clean_stale: dir is NULL");
    DIR *d = opendir(dir);
    if (!d) return aqa_fail(AQA_EIO, "%s: cannot list: %s", dir, strerror(errno));
    aqa_status st = AQA_OK;
    struct dirent *e;
    size_t dl = strlen(dir);
    while ((e = readdir(d))) {
        if (!stale_temp(e->d_name)) continue;
        size_t n = dl + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p) {
            st = aqa_fail(AQA_ENOMEM, "%s: out of memory", dir);
            break;
        }
        snprintf(p, n, "%s/%s", dir, e->d_name);
        if (unlink(p) == 0) {
            if (n_removed) ++*n_removed;
        } else if (errno != ENOENT && st == AQA_OK) {
            st = aqa_fail(AQA_EIO, "%s: cannot remove the stale temporary file: %s", p, strerror(errno));
        }
        free(p);
    }
    closedir(d);
    return st;
}
