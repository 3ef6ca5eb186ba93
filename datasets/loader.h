/* loader.h: batches of videos for training and evaluation, decoded ahead of the consumer by worker
 * threads, plus a progress line for long passes.
 *
 * Each epoch visits the dataset's items once, in a seeded shuffled order (or in split order),
 * grouped into batches of B.  Worker threads (pthreads) build whole batches: decode the frames (or
 * read the cached features), pick exemplars, fill the batch tensors.  At most `prefetch` batches
 * exist ahead of the consumer, so memory stays bounded whatever the dataset size.  Batches come
 * out in epoch order, and everything random in them (order, exemplars, crops, flips, MTL-AQA
 * shifts) is a pure function of (seed, epoch, position), so a run is reproducible whatever the
 * thread count or timing.
 *
 *     ```c
 *     void train(aqa_video_dataset *train_ds, int epochs) {
 *         aqa_loader_config lc;  aqa_loader_config_init(&lc);
 *         lc.batch_size = 8;  lc.shuffle = true;  lc.seed = 42;  lc.clip_feat = lc.i3d_feat = true;
 *         aqa_loader *ld = aqa_loader_new(train_ds, &lc);
 *         for (int epoch = 0; epoch < epochs; epoch++) {
 *             aqa_loader_start_epoch(ld, epoch);
 *             aqa_batch *b;
 *             while (aqa_loader_next(ld, &b) == AQA_OK && b) {
 *                 // ... a step on b->clip_feat, b->i3d_feat, b->score ...
 *                 aqa_batch_free(b);
 *             }
 *         }
 *         aqa_loader_free(ld);
 *     }
 *     ```
 *
 * Batch tensors are CPU tensors owned by the batch (not by any scope): aqa_batch_free releases
 * them.  Under the skip policy a video whose frame or feature file fails to load is left out of its
 * batch (the batch is smaller; warned and counted in the dataset's summary); under the fail policy
 * aqa_loader_next returns the error naming the file. */
#ifndef AQA_DATASETS_LOADER_H
#define AQA_DATASETS_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datasets/exemplar.h"
#include "image/resize.h"
#include "datasets/video_dataset.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- progress line --------------------------------------------------------------------------- */

typedef struct aqa_progress {
    char label[64];     /* what is counted ("train epoch 3") */
    size_t total;       /* items expected (0: unknown) */
    size_t done;        /* items so far */
    double t0;          /* start time (seconds, monotonic) */
    double last;        /* time of the last print */
    bool enabled;       /* print at all */
    bool tty;           /* stderr is a terminal: rewrite one line with '\r'; else a line every 10 s */
} aqa_progress;

/* Monotonic seconds. */
double aqa_now(void);
void aqa_progress_start(aqa_progress *p, const char *label, size_t total, bool enabled);
/* Sets done; prints "label done/total (pct%) x items/s ETA m:ss extra" at most every 0.5 s (tty). */
void aqa_progress_update(aqa_progress *p, size_t done, const char *extra);
/* Prints the final line (always, when enabled) with the total time. */
void aqa_progress_finish(aqa_progress *p, const char *extra);
/* Formats the line into buf (used by the above; exposed for tests). */
void aqa_progress_format(const aqa_progress *p, double now, const char *extra, char *buf, size_t size);

/* ---- batches --------------------------------------------------------------------------------- */

typedef struct aqa_batch {
    int64_t B;                   /* videos in the batch */
    size_t *items;               /* their dataset item indices [B] */
    aqa_tensor *i3d_clips;       /* F32 [B, N, 3, clip_len, H, W] I3D input, or NULL */
    aqa_tensor *clip_frames;     /* F32 [B, T, 3, R, R] CLIP input, or NULL */
    aqa_tensor *clip_feat;       /* F32 [B, T, D] cached CLIP frame features, or NULL */
    aqa_tensor *i3d_feat;        /* F32 [B, N, C] cached I3D clip features (Fis-V: .npy), or NULL */
    aqa_tensor *i3d_map;         /* F32 [B, N, C, H, W] cached time-averaged I3D Mixed_5c maps, or NULL */
    aqa_tensor *score;           /* F32 [B] */
    aqa_tensor *difficulty;      /* F32 [B] (0 where the dataset has none) */
    aqa_tensor *judges;          /* F32 [B, 7] judge scores (0 past judge_count); JIGSAWS: its 6 GRS
                                    items, which USDL/MUSDL's code treats as judges */
    aqa_tensor *judge_count;     /* I64 [B] judges present in each row (FineDiving: 3, 5 or 7) */
    aqa_tensor *labels;          /* I64 [B, T] sampled sub-action ids (FineDiving layout), or NULL */
    aqa_tensor *boundaries;      /* I64 [B, L] TSA's boundaries (FineDiving layout), or NULL */
    aqa_tensor *boundary_target; /* F32 [B, T, L] BCE target, or NULL */
    aqa_tensor *frame_stage;     /* I64 [B, T] stage of each frame, or NULL */
    aqa_tensor *stage_text_ids;  /* I64 [B, 3] stage-text ids (graded texts: the true grade's, a label) */
    aqa_tensor *video_text_ids;  /* I64 [B] video-text ids (graded: likewise) */
    aqa_tensor *stage_text_cands; /* I64 [B, 3, G] graded texts: every grade of each stage text (known
                                    without the score); NULL when the dataset's texts are not graded */
    aqa_tensor *video_text_cands; /* I64 [B, G] the same in the video text set, or NULL */
    aqa_tensor *dive_class;      /* I64 [B] dive-number class ids */
    /* Exemplars (contrastive heads): a batch of B * n_exemplars videos from the pool, row
     * e * B + b being exemplar e of query b; NULL when none were asked. */
    struct aqa_batch *exemplars;
    int n_exemplars;
    /* Micro-batches (a loader with micro_batch or several shards; otherwise 0, 1, 0, B, 1.0, NULL):
     * this is micro-batch micro_index of the micro_count into which the epoch's batch of
     * batch_rows rows is cut; weight = its share of those rows (from the nominal sizes, so that
     * videos skipped as unreadable change nothing else); next = this rank's following
     * micro-batch of the same batch.  A rank without a micro-batch in this batch gets one with
     * B = 0 (no tensors), micro_index = -1. */
    int micro_index, micro_count;
    int64_t row0;                /* the place of its first row in the epoch's batch */
    int64_t batch_rows;
    double weight;
    struct aqa_batch *next;
    aqa_tensor *exemplar_count;  /* I64 [B] distinct exemplars of each query (<= n_exemplars; the
                                    rest repeat them), or NULL without exemplars */
} aqa_batch;

void aqa_batch_free(aqa_batch *b); /* NULL is fine; frees the exemplar batch and the next micro-batches too */

/* ---- loader ---------------------------------------------------------------------------------- */

typedef struct aqa_loader_config {
    int batch_size;              /* B (8) */
    bool shuffle;                /* seeded shuffle each epoch (false: split order) */
    uint64_t seed;               /* shuffling, exemplars, augmentation */
    bool drop_last;              /* drop the last incomplete batch */
    int workers;                 /* decoding threads (2); 0 = build batches in aqa_loader_next */
    int prefetch;                /* batches decoded ahead, the queue bound (2) */
    bool i3d_clips;              /* decode frames into I3D clips with i3d_tf */
    aqa_frame_transform i3d_tf;  /* (fixed output size: crop or exact resize) */
    bool clip_frames;            /* decode frames for the CLIP image encoder with clip_tf */
    aqa_frame_transform clip_tf;
    bool clip_feat, i3d_feat;    /* read these cached features (dataset opened with features_dir) */
    bool i3d_map;                /* and the cached I3D maps (the cache must hold them) */
    bool augment;                /* random crop (+ flip) per video, MTL-AQA end shift */
    double flip_prob;            /* flip probability when augmenting (0.5) */
    aqa_exemplar_pool *exemplars; /* borrowed pool, or NULL */
    int n_exemplars;             /* exemplars per query (1 in training, e.g. 10 at test) */
    bool progress;               /* progress line on stderr */
    const char *name;            /* progress label ("train") */
    /* Sharding over the ranks of data-parallel training (the sampler): every rank draws the same
     * permutation of the epoch.  Training: each batch is cut into micro-batches of micro_batch
     * rows (0: ceil(batch_size / num_shards)) and shard r of num_shards gets micro-batches
     * [r K / num_shards, (r + 1) K / num_shards) of every batch, as a chain (aqa_batch.next);
     * every random choice depends on the row's place in its batch, never on the cut.
     * Evaluation (shard_batches): whole batches, shard r getting the r-th contiguous block. */
    int shard;                   /* this rank (0 .. num_shards - 1) */
    int num_shards;              /* ranks (0 or 1: no sharding) */
    int micro_batch;             /* rows per micro-batch (0: see above; cutting needs n_exemplars <= 1) */
    bool shard_batches;          /* whole batches per shard instead of micro-batches of each batch */
} aqa_loader_config;

void aqa_loader_config_init(aqa_loader_config *c);

typedef struct aqa_loader aqa_loader;

/* A loader over ds (borrowed; must outlive the loader).  Threads start here. */
aqa_loader *aqa_loader_new(aqa_video_dataset *ds, const aqa_loader_config *cfg);
void aqa_loader_free(aqa_loader *l); /* joins the threads */

/* Begins epoch `epoch` (any batches of an unfinished epoch are discarded). */
aqa_status aqa_loader_start_epoch(aqa_loader *l, int epoch);
/* The next batch of the epoch in *out (caller frees), or *out = NULL at the end of the epoch.
 * On error *out = NULL and the error is returned. */
aqa_status aqa_loader_next(aqa_loader *l, aqa_batch **out);
/* Batches per epoch (this shard's: with shard_batches its block; else every batch, each this
 * shard's micro-batches). */
size_t aqa_loader_num_batches(const aqa_loader *l);
/* The item order of epoch `epoch` (n = dataset items) as the loader uses it. */
void aqa_loader_epoch_order(uint64_t seed, int epoch, bool shuffle, size_t n, size_t *order);

/* Builds one batch of the given dataset items synchronously (what workers do); exposed for
 * programs that assemble their own batches (evaluation with fixed exemplars). */
aqa_status aqa_batch_build(aqa_video_dataset *ds, const aqa_loader_config *cfg, const size_t *items, size_t n,
                           uint64_t seed, aqa_batch **out);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_LOADER_H */
