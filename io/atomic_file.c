/* atomic_file.c: temporary file + fsync + rename + directory fsync (see atomic_file.h). */
#include "io/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct aqa_atomic_file {
    char *path;     /* final destination */
    char *tmp_path; /* "<path>.tmp.<pid>", removed unless renamed */
    FILE *fp;       /* open stream on tmp_path; NULL once closed */
    int failed;     /* a write already failed (commit must not rename) */
};

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
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        int e = errno;
        close(fd);
        unlink(af->tmp_path);
        aqa_status st = aqa_fail(AQA_EIO, "%s: fdopen failed: %s", path, strerror(e));
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
        return aqa_fail(AQA_EIO, "%s: write to %s failed: %s", af->path, af->tmp_path,
                        strerror(errno));
    }
    return AQA_OK;
}

void aqa_atomic_abort(aqa_atomic_file *af) {
    if (!af) return;
    if (af->fp) fclose(af->fp);
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
    if (af->failed) {
        st = aqa_fail(AQA_EIO, "%s: not written: an earlier write failed", af->path);
        aqa_atomic_abort(af);
        return st;
    }
    /* Every step before the rename must succeed, or the old file stays. fclose is checked
     * too: on NFS and full disks the error can first show there. */
    if (ferror(af->fp)) {
        st = aqa_fail(AQA_EIO, "%s: a write to %s failed", af->path, af->tmp_path);
    } else if (fflush(af->fp) != 0) {
        e = errno;
        st = aqa_fail(AQA_EIO, "%s: flushing %s failed: %s", af->path, af->tmp_path, strerror(e));
    } else if (fsync(fileno(af->fp)) != 0) {
        e = errno;
        st = aqa_fail(AQA_EIO, "%s: fsync of %s failed: %s", af->path, af->tmp_path, strerror(e));
    }
    int rc = fclose(af->fp);
    af->fp = NULL;
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
