/* run_store.h: the files of a training run folder, committed so that a kill (SIGKILL, power loss)
 * or a full disk at any moment loses nothing that was complete.
 *
 *   last.safetensors          checkpoint of the last completed epoch (model, optimizer, RNG, step,
 *                             settings) and the run's record: "run.best_epoch", "run.best_score"
 *                             and "run.record" (that epoch's log line)
 *   best.safetensors          a copy of the checkpoint of the epoch with the best score so far
 *   <ckpt><suffix>            side files of a checkpoint: weights trained outside the model tree
 *                             (train_mvla: ".i3d.safetensors", frame mode's fine-tuned I3D, and
 *                             ".clip_text.safetensors", the fine-tuned CLIP text encoder)
 *   best.txt                  "<epoch, 0-based> <score>" of best
 *   log.jsonl                 one JSON object per completed epoch ("epoch" counts from 1)
 *
 * An epoch is complete when last.safetensors holding it is renamed into place: that rename is the
 * one commit point.  Everything else follows from last's record and is (re)done by
 * run_store_finish, which every commit runs and every resumed start runs first: a side file is
 * written as "<side>.pending" before its checkpoint and renamed after it (or dropped when its
 * checkpoint never came), best is copied from last when last's epoch is the best, best.txt and
 * log.jsonl are rewritten (atomically) when they disagree with the record.  So after any kill,
 * once the run starts again: best is the best completed epoch, the log holds every completed
 * epoch exactly once, and the temporary files of writers that died are gone
 * (aqa_atomic_clean_stale).  Every write is checked; a failure names the file and the system's
 * reason, and the previous state stays whole. */
#ifndef AQA_EXAMPLES_RUN_STORE_H
#define AQA_EXAMPLES_RUN_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "nn/checkpoint.h"
#include "nn/module.h"

/* A side file "<ckpt><suffix>" of every checkpoint, written by save(obj, path, metadata), which
 * must record the metadata given (the epoch).  obj NULL: this run writes no such file (a fresh
 * start still removes a previous run's). */
typedef struct run_side {
    const char *suffix; /* ".i3d.safetensors" (static string) */
    aqa_status (*save)(void *obj, const char *path, int n_meta, const char *const *keys, const char *const *values);
    void *obj;          /* what save writes, or NULL */
} run_side;

#define RUN_STORE_MAX_SIDES 4

typedef struct run_store {
    char *dir;          /* run folder */
    char *last, *best;  /* checkpoint paths in it */
    run_side sides[RUN_STORE_MAX_SIDES]; /* the checkpoints' side files */
    int n_sides;        /* entries of sides */
    int64_t epoch;      /* last completed epoch (0-based); -1 before the first */
    int64_t best_epoch; /* epoch of best; -1 while none was evaluated */
    double best_score;  /* its score; -inf while none */
    char *record;       /* JSON log line of `epoch` (malloc'd); NULL before the first */
    int n_cleaned;      /* stale temporary files removed by run_store_open */
    int n_replaced;     /* files of a previous run a fresh start removed */
} run_store;

/* Opens the run folder (created): removes the temporary files of dead writers.  A fresh run
 * (resume false) also removes the previous run's checkpoints, side files, best.txt and log.jsonl;
 * a resumed one reads last's record (an error when there is no last) and finishes its commit.
 * sides (n_sides <= RUN_STORE_MAX_SIDES, copied) are the checkpoints' side files.  Returns 0, or 1
 * with the reason in aqa_last_error(). */
int run_store_open(run_store *s, const char *dir, const run_side *sides, int n_sides, bool resume);
/* Whether `score` (NAN: not evaluated) beats the best so far. */
bool run_store_better(const run_store *s, double score);
/* Commits completed epoch ck->epoch: the side files, ck with the run's record (`record`: that
 * epoch's log line, a JSON object; `score`: NAN when not evaluated), then best, best.txt and
 * log.jsonl.  Returns 0, or 1 with the reason in aqa_last_error() (what was committed before
 * stays). */
int run_store_commit(run_store *s, const aqa_checkpoint *ck, const char *record, double score);
/* Brings best, the side files, best.txt and log.jsonl in line with last's record. */
int run_store_finish(run_store *s);
void run_store_free(run_store *s);

#endif /* AQA_EXAMPLES_RUN_STORE_H */
