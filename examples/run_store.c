/* run_store.c: crash-safe files of a training run folder (see run_store.h). */
#include "examples/run_store.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "examples/cli.h"
#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "base/error.h"

#define PENDING ".pending"

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 1;
    char *s = malloc(n);
    if (s) snprintf(s, n, "%s%s", a, b);
    else aqa_fail(AQA_ENOMEM, "out of memory");
    return s;
}

static bool exists(const char *path) { return access(path, F_OK) == 0; }

/* Removes a file if it is there; 0, or 1 with the reason. */
static int remove_file(const char *path) {
    if (unlink(path) == 0 || errno == ENOENT) return 0;
    aqa_fail(AQA_EIO, "%s: cannot remove: %s", path, strerror(errno));
    return 1;
}

/* The "epoch" metadata of a safetensors file: 0 and *epoch, or -1 when absent or unreadable. */
static int file_epoch(const char *path, int64_t *epoch) {
    aqa_st_file *f;
    char saved[512];
    snprintf(saved, sizeof saved, "%s", aqa_last_error());
    aqa_status saved_st = aqa_last_status();
    int rc = -1;
    if (aqa_st_open(path, &f) == AQA_OK) {
        const char *v = aqa_st_metadata(f, "epoch");
        char *end;
        if (v) {
            long long e = strtoll(v, &end, 10);
            if (end != v && !*end) *epoch = e, rc = 0;
        }
        aqa_st_close(f);
    }
    if (saved_st) aqa_fail(saved_st, "%s", saved); /* a missing file is an answer, not an error */
    else aqa_clear_error();
    return rc;
}

/* Copies src to dst atomically; 0, or 1 with the file and the reason. */
static int copy_file(const char *src, const char *dst) {
    FILE *in = fopen(src, "rb");
    if (!in) {
        aqa_fail(AQA_EIO, "%s: cannot open: %s", src, strerror(errno));
        return 1;
    }
    aqa_atomic_file *af;
    if (aqa_atomic_open(dst, &af)) {
        fclose(in);
        return 1;
    }
    char buf[1 << 16];
    size_t n;
    aqa_status st = AQA_OK;
    while (!st && (n = fread(buf, 1, sizeof buf, in)) > 0) st = aqa_atomic_write(af, buf, n);
    if (!st && ferror(in)) st = aqa_fail(AQA_EIO, "%s: read error: %s", src, strerror(errno));
    fclose(in);
    if (st) {
        aqa_atomic_abort(af);
        return 1;
    }
    return aqa_atomic_commit(af) != AQA_OK;
}

/* Renames the pending side file `suffix` of ckpt into place when its epoch is the checkpoint's,
 * else drops it. */
static int settle_pending(const char *ckpt, const char *suffix) {
    char *side = join(ckpt, suffix), *pend = side ? join(side, PENDING) : NULL;
    int rc = !pend;
    int64_t pe, ce;
    if (pend && exists(pend)) {
        if (file_epoch(pend, &pe) == 0 && file_epoch(ckpt, &ce) == 0 && pe == ce) {
            if (rename(pend, side) != 0) rc = (aqa_fail(AQA_EIO, "%s: cannot rename to %s: %s", pend, side, strerror(errno)), 1);
        } else {
            rc = remove_file(pend);
        }
    }
    free(side);
    free(pend);
    return rc;
}

/* settle_pending for every side file this run writes. */
static int settle_sides(const run_store *s, const char *ckpt) {
    for (int i = 0; i < s->n_sides; i++)
        if (s->sides[i].obj && settle_pending(ckpt, s->sides[i].suffix)) return 1;
    return 0;
}

/* Copies last's side files to best's pending ones (settled once best is in place). */
static int copy_sides_to_best(const run_store *s) {
    int rc = 0;
    for (int i = 0; i < s->n_sides && !rc; i++) {
        if (!s->sides[i].obj) continue;
        char *ls = join(s->last, s->sides[i].suffix), *bs = join(s->best, s->sides[i].suffix);
        char *bp = bs ? join(bs, PENDING) : NULL;
        rc = !ls || !bp || copy_file(ls, bp);
        free(ls);
        free(bs);
        free(bp);
    }
    return rc;
}

/* Writes `text` to path atomically unless the file holds exactly that already. */
static int put_text(const char *path, const char *text) {
    FILE *f = fopen(path, "rb");
    if (f) {
        size_t n = strlen(text);
        char *buf = malloc(n + 2);
        size_t got = buf ? fread(buf, 1, n + 1, f) : 0;
        bool same = buf && got == n && !memcmp(buf, text, n);
        free(buf);
        fclose(f);
        if (same) return 0;
    }
    return aqa_atomic_write_file(path, text, strlen(text)) != AQA_OK;
}

/* The "epoch" number of one log line (a JSON object), or -1. */
static long line_epoch(const char *line) {
    cJSON *o = cJSON_Parse(line);
    const cJSON *e = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "epoch") : NULL;
    long v = cJSON_IsNumber(e) && e->valuedouble >= 1 && e->valuedouble < 1e9 ? (long)e->valuedouble : -1;
    cJSON_Delete(o);
    return v;
}

/* log.jsonl: the first well-formed line of each epoch before the record's, then the record. */
static int fix_log(run_store *s) {
    char *path = join(s->dir, "/log.jsonl");
    if (!path) return 1;
    long want = (long)s->epoch + 1;
    char *out = NULL, *line = NULL;
    size_t out_n = 0, cap = 0;
    FILE *mem = open_memstream(&out, &out_n);
    FILE *f = fopen(path, "rb");
    long next = 1; /* epochs are kept in order, each once */
    ssize_t len;
    while (mem && f && (len = getline(&line, &cap, f)) >= 0) {
        if (memchr(line, 0, (size_t)len)) continue;
        long e = line_epoch(line);
        if (e != next || e >= want) continue;
        fputs(line, mem);
        if (len && line[len - 1] != '\n') fputc('\n', mem);
        next++;
    }
    if (f) fclose(f);
    free(line);
    int rc = 0;
    if (!mem) rc = (aqa_fail(AQA_ENOMEM, "out of memory"), 1);
    else {
        if (s->record) fprintf(mem, "%s\n", s->record);
        if (fclose(mem) != 0) rc = (aqa_fail(AQA_ENOMEM, "out of memory"), 1);
    }
    if (!rc && next != want)
        fprintf(stderr, "warning: %s lacks epochs %ld..%ld (deleted by hand?); they cannot be restored\n", path, next,
                want - 1);
    if (!rc) rc = put_text(path, out ? out : "");
    free(out);
    free(path);
    return rc;
}

int run_store_finish(run_store *s) {
    if (s->epoch < 0) return 0;
    if (settle_sides(s, s->last)) return 1;
    if (exists(s->best) && settle_sides(s, s->best)) return 1;
    if (s->best_epoch >= 0) {
        int64_t be = -1;
        if (file_epoch(s->best, &be) != 0 || be != s->best_epoch) {
            if (s->best_epoch != s->epoch) {
                fprintf(stderr, "warning: %s is not the checkpoint of epoch %lld, the best (deleted by hand?); it "
                                "cannot be restored\n", s->best, (long long)s->best_epoch + 1);
            } else {
                /* the side files first (pending), then best, then the side files into place */
                if (copy_sides_to_best(s) || copy_file(s->last, s->best) || settle_sides(s, s->best)) return 1;
            }
        }
        char *bt = join(s->dir, "/best.txt"), text[64];
        snprintf(text, sizeof text, "%lld %.17g\n", (long long)s->best_epoch, s->best_score);
        int rc = !bt || put_text(bt, text);
        free(bt);
        if (rc) return 1;
    }
    return fix_log(s);
}

bool run_store_better(const run_store *s, double score) { return isfinite(score) && score > s->best_score; }

/* Reads last's record into s. */
static int read_record(run_store *s) {
    aqa_st_file *f;
    if (aqa_st_open(s->last, &f)) return 1;
    const char *e = aqa_st_metadata(f, "epoch"), *be = aqa_st_metadata(f, "run.best_epoch"),
               *bs = aqa_st_metadata(f, "run.best_score"), *rec = aqa_st_metadata(f, "run.record");
    char *end1 = NULL, *end2 = NULL, *end3 = NULL;
    int rc = 0;
    if (!e || !be || !bs || !rec) {
        rc = 1;
        aqa_fail(AQA_EFORMAT, "%s: no run record (epoch, run.best_epoch, run.best_score, run.record): not written by "
                              "this train_mvla", s->last);
    } else {
        s->epoch = strtoll(e, &end1, 10);
        s->best_epoch = strtoll(be, &end2, 10);
        s->best_score = strtod(bs, &end3);
        if (*end1 || *end2 || *end3 || s->epoch < 0 || s->best_epoch < -1 || s->best_epoch > s->epoch ||
            line_epoch(rec) != s->epoch + 1) {
            rc = 1;
            aqa_fail(AQA_EFORMAT, "%s: malformed run record", s->last);
        } else if (!(s->record = strdup(rec))) {
            rc = (aqa_fail(AQA_ENOMEM, "out of memory"), 1);
        }
    }
    aqa_st_close(f);
    return rc;
}

int run_store_open(run_store *s, const char *dir, const run_side *sides, int n_sides, bool resume) {
    memset(s, 0, sizeof *s);
    if (n_sides < 0 || n_sides > RUN_STORE_MAX_SIDES) {
        aqa_fail(AQA_EINVAL, "run_store_open: %d side files (at most %d)", n_sides, RUN_STORE_MAX_SIDES);
        return 1;
    }
    for (int i = 0; i < n_sides; i++) s->sides[i] = sides[i];
    s->n_sides = n_sides;
    s->epoch = s->best_epoch = -1;
    s->best_score = -INFINITY;
    if (mkdir_p(dir)) {
        aqa_fail(AQA_EIO, "%s: cannot create: %s", dir, strerror(errno));
        return 1;
    }
    if (!(s->dir = strdup(dir)) || !(s->last = join(dir, "/last.safetensors")) ||
        !(s->best = join(dir, "/best.safetensors")))
        return (aqa_fail(AQA_ENOMEM, "out of memory"), 1);
    if (aqa_atomic_clean_stale(dir, &s->n_cleaned)) return 1;
    if (resume) {
        if (!exists(s->last)) {
            aqa_fail(AQA_EINVAL, "--resume: %s does not exist (nothing to resume; start without --resume)", s->last);
            return 1;
        }
        return read_record(s) || run_store_finish(s);
    }
    static const char *const old[] = {"/last.safetensors", "/best.safetensors", "/best.txt", "/log.jsonl"};
    static const char *const ckpts[] = {"/last.safetensors", "/best.safetensors"}, *const pend[] = {"", PENDING};
    for (size_t i = 0; i < sizeof old / sizeof *old + 4 * (size_t)n_sides; i++) {
        char *p;
        if (i < sizeof old / sizeof *old) p = join(dir, old[i]);
        else { /* each side file of both checkpoints, and its pending copy */
            size_t k = i - sizeof old / sizeof *old;
            char *c = join(dir, ckpts[k % 2]), *sd = c ? join(c, sides[k / 4].suffix) : NULL;
            p = sd ? join(sd, pend[(k / 2) % 2]) : NULL;
            free(c);
            free(sd);
        }
        s->n_replaced += p && exists(p);
        int rc = !p || remove_file(p);
        free(p);
        if (rc) return 1;
    }
    return 0;
}

int run_store_commit(run_store *s, const aqa_checkpoint *ck, const char *record, double score) {
    char ebuf[32], bebuf[32], bsbuf[40];
    int64_t best_epoch = s->best_epoch;
    double best_score = s->best_score;
    if (run_store_better(s, score)) best_epoch = ck->epoch, best_score = score;
    if (line_epoch(record) != ck->epoch + 1) {
        aqa_fail(AQA_EINVAL, "run_store_commit: the record of epoch %lld is not a JSON object with \"epoch\": %lld",
                 (long long)ck->epoch, (long long)ck->epoch + 1);
        return 1;
    }
    snprintf(ebuf, sizeof ebuf, "%lld", (long long)ck->epoch);
    snprintf(bebuf, sizeof bebuf, "%lld", (long long)best_epoch);
    snprintf(bsbuf, sizeof bsbuf, "%.17g", best_score);
    for (int i = 0; i < s->n_sides; i++) {
        const run_side *sd = &s->sides[i];
        if (!sd->obj) continue;
        char *sp = join(s->last, sd->suffix), *pp = sp ? join(sp, PENDING) : NULL;
        const char *k[1] = {"epoch"}, *v[1] = {ebuf};
        int rc = !pp || sd->save(sd->obj, pp, 1, k, v) != AQA_OK;
        free(sp);
        free(pp);
        if (rc) {
            settle_sides(s, s->last); /* drops the side files of the epoch that did not commit */
            return 1;
        }
    }
    const char *mk[3] = {"run.best_epoch", "run.best_score", "run.record"}, *mv[3] = {bebuf, bsbuf, record};
    aqa_checkpoint c = *ck;
    c.n_meta = 3;
    c.meta_keys = mk;
    c.meta_values = mv;
    if (aqa_checkpoint_save(s->last, &c)) {
        settle_sides(s, s->last); /* drops the side files of the epoch that did not commit */
        return 1;
    }
    /* committed */
    char *r = strdup(record);
    if (!r) return (aqa_fail(AQA_ENOMEM, "out of memory"), 1);
    free(s->record);
    s->record = r;
    s->epoch = ck->epoch;
    s->best_epoch = best_epoch;
    s->best_score = best_score;
    return run_store_finish(s);
}

void run_store_free(run_store *s) {
    free(s->dir);
    free(s->last);
    free(s->best);
    free(s->record);
    memset(s, 0, sizeof *s);
}
