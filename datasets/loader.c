/* loader.c: threaded batch loader and progress line; see loader.h. */
#include "datasets/loader.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "autograd/autograd.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* ---- progress ------------------------------------------------------------------------------- */

double aqa_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void aqa_progress_start(aqa_progress *p, const char *label, size_t total, bool enabled) {
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    p->enabled = enabled;
    p->tty = isatty(2);
    p->t0 = p->last = aqa_now();
}

static void fmt_time(double s, char *buf, size_t size) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, size, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, size, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
    else snprintf(buf, size, "%ld:%02ld", t / 60, t % 60);
}

void aqa_progress_format(const aqa_progress *p, double now, const char *extra, char *buf, size_t size) {
    double el = now - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32] = "?", elapsed[32];
    fmt_time(el, elapsed, sizeof elapsed);
    if (p->total && rate > 0) fmt_time((double)(p->total - (p->done < p->total ? p->done : p->total)) / rate, eta, sizeof eta);
    if (p->total)
        snprintf(buf, size, "%s %zu/%zu (%.0f%%) %.1f items/s elapsed %s ETA %s%s%s", p->label, p->done, p->total,
                 100.0 * (double)p->done / (double)p->total, rate, elapsed, eta, extra ? " " : "", extra ? extra : "");
    else
        snprintf(buf, size, "%s %zu %.1f items/s elapsed %s%s%s", p->label, p->done, rate, elapsed, extra ? " " : "",
                 extra ? extra : "");
}

void aqa_progress_update(aqa_progress *p, size_t done, const char *extra) {
    p->done = done;
    if (!p->enabled) return;
    double now = aqa_now();
    if (now - p->last < (p->tty ? 0.5 : 10.0)) return;
    p->last = now;
    char line[512];
    aqa_progress_format(p, now, extra, line, sizeof line);
    if (p->tty) fprintf(stderr, "\r%s\033[K", line);
    else fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

void aqa_progress_finish(aqa_progress *p, const char *extra) {
    if (!p->enabled) return;
    char line[512];
    aqa_progress_format(p, aqa_now(), extra, line, sizeof line);
    if (p->tty) fprintf(stderr, "\r%s\033[K\n", line);
    else fprintf(stderr, "%s\n", line);
    fflush(stderr);
}

/* ---- batches -------------------------------------------------------------------------------- */

#define BATCH_ROW_TENSORS 19

/* The slots of b's per-row tensors (one row per video; NULL where absent), for freeing and for
 * compacting rows. */
static void row_tensors(aqa_batch *b, aqa_tensor **slot[BATCH_ROW_TENSORS]) {
    aqa_tensor **all[BATCH_ROW_TENSORS] = {&b->i3d_clips, &b->clip_frames, &b->clip_feat, &b->i3d_feat, &b->i3d_map,
                                           &b->score, &b->difficulty, &b->judges, &b->judge_count, &b->labels,
                                           &b->boundaries, &b->boundary_target, &b->frame_stage, &b->stage_text_ids,
                                           &b->video_text_ids, &b->stage_text_cands, &b->video_text_cands,
                                           &b->dive_class, &b->exemplar_count};
    memcpy(slot, all, sizeof all);
}

void aqa_batch_free(aqa_batch *b) {
    if (!b) return;
    aqa_batch_free(b->next);
    aqa_tensor **ts[BATCH_ROW_TENSORS];
    row_tensors(b, ts);
    for (size_t k = 0; k < BATCH_ROW_TENSORS; k++) aqa_tensor_free(*ts[k]);
    aqa_batch_free(b->exemplars);
    free(b->items);
    free(b);
}

void aqa_loader_config_init(aqa_loader_config *c) {
    memset(c, 0, sizeof *c);
    c->batch_size = 8;
    c->workers = 2;
    c->prefetch = 2;
    c->flip_prob = 0.5;
    c->n_exemplars = 1;
    c->i3d_tf = aqa_frame_transform_i3d(128, 112);
    c->clip_tf = aqa_frame_transform_clip(224);
}

/* A caller-owned CPU tensor whatever the default device (workers may run while the program has
 * set CUDA as the default). */
static aqa_tensor *cpu_tensor(int ndim, const int64_t *shape, aqa_dtype dt) {
    aqa_tensor *t = aqa__new_unowned(ndim, shape, dt, AQA_DEVICE_CPU);
    return t ? aqa__own(t) : NULL;
}

/* Keeps the first n rows of t (compacted already) as a new tensor; frees t. */
static aqa_tensor *keep_rows(aqa_tensor *t, int64_t n) {
    if (!t || t->shape[0] == n) return t;
    bool prev = aqa_set_grad_enabled(false);
    aqa_tensor *v = aqa_narrow(t, 0, 0, n);
    aqa_set_grad_enabled(prev);
    aqa_tensor_free(t);
    return v;
}

static void move_row(aqa_tensor *t, int64_t from, int64_t to) {
    if (!t || from == to) return;
    size_t row = (size_t)(aqa_numel(t) / t->shape[0]) * aqa_dtype_size(t->dtype);
    char *d = aqa_data(t);
    memmove(d + (size_t)to * row, d + (size_t)from * row, row);
}

/* Loads what the config asks for of item `it` into row r of b.  Returns the status. */
static aqa_status load_row(aqa_video_dataset *ds, const aqa_loader_config *cfg, size_t it, int64_t r, uint64_t seed,
                           aqa_batch *b) {
    aqa_status st = AQA_OK;
    int64_t shift = 0;
    aqa_vd_augment aug = {aqa_seed_mix(seed, 0xA5), cfg->flip_prob};
    if (cfg->augment && ds->manifest->dataset == AQA_ANN_MTL_AQA && ds->cfg.shift_max > ds->cfg.shift_min)
        shift = ds->cfg.shift_min +
                (int64_t)(aqa_seed_mix(seed, 0x5F) % (uint64_t)(ds->cfg.shift_max - ds->cfg.shift_min + 1));
    else if (cfg->augment && ds->manifest->dataset == AQA_ANN_MTL_AQA)
        shift = ds->cfg.shift_min;
    if (b->i3d_clips) {
        size_t per = (size_t)(aqa_numel(b->i3d_clips) / b->B);
        st = aqa_vd_decode(ds, it, &cfg->i3d_tf, true, shift, cfg->augment ? &aug : NULL,
                           (float *)aqa_data(b->i3d_clips) + (size_t)r * per);
        if (st) return st;
    }
    if (b->clip_frames) {
        size_t per = (size_t)(aqa_numel(b->clip_frames) / b->B);
        st = aqa_vd_decode(ds, it, &cfg->clip_tf, false, shift, cfg->augment ? &aug : NULL,
                           (float *)aqa_data(b->clip_frames) + (size_t)r * per);
        if (st) return st;
    }
    if (b->clip_feat || b->i3d_feat || b->i3d_map) {
        float *c = b->clip_feat ? (float *)aqa_data(b->clip_feat) + (size_t)r * (size_t)(aqa_numel(b->clip_feat) / b->B)
                                : NULL;
        float *i = b->i3d_feat ? (float *)aqa_data(b->i3d_feat) + (size_t)r * (size_t)(aqa_numel(b->i3d_feat) / b->B)
                               : NULL;
        float *m = b->i3d_map ? (float *)aqa_data(b->i3d_map) + (size_t)r * (size_t)(aqa_numel(b->i3d_map) / b->B)
                              : NULL;
        st = aqa_vd_read_features(ds, it, c, i, m);
        if (st) return st;
    }
    /* labels and annotations */
    const aqa_vd_item *item = &ds->items[it];
    const aqa_ann_sample *s = aqa_vd_sample(ds, it);
    ((float *)aqa_data(b->score))[r] = (float)s->score;
    ((float *)aqa_data(b->difficulty))[r] = (float)s->difficulty;
    float *j = (float *)aqa_data(b->judges) + r * AQA_ANN_MAX_JUDGES;
    bool grs = ds->manifest->dataset == AQA_ANN_JIGSAWS; /* USDL/MUSDL: the GRS items as judges */
    int nj = grs ? s->n_sub_scores : s->n_judges;
    for (int k = 0; k < AQA_ANN_MAX_JUDGES; k++) j[k] = k < nj ? (float)(grs ? s->sub_scores[k] : s->judges[k]) : 0.0f;
    ((int64_t *)aqa_data(b->judge_count))[r] = nj;
    int64_t *st_ids = (int64_t *)aqa_data(b->stage_text_ids) + r * 3;
    for (int k = 0; k < 3; k++) st_ids[k] = item->stage_text[k];
    ((int64_t *)aqa_data(b->video_text_ids))[r] = item->video_text;
    if (b->stage_text_cands) {
        int64_t G = ds->n_grades, *sc = (int64_t *)aqa_data(b->stage_text_cands) + r * 3 * G;
        int64_t *vc = (int64_t *)aqa_data(b->video_text_cands) + r * G;
        for (int64_t g = 0; g < G; g++) {
            for (int k = 0; k < 3; k++) sc[k * G + g] = item->stage_grade_base[k] + g;
            vc[g] = item->video_grade_base + g;
        }
    }
    ((int64_t *)aqa_data(b->dive_class))[r] = item->dive_class;
    int64_t T = ds->T, L = ds->L;
    if (b->labels) memcpy((int64_t *)aqa_data(b->labels) + r * T, item->labels, (size_t)T * sizeof(int64_t));
    if (b->boundaries) {
        memcpy((int64_t *)aqa_data(b->boundaries) + r * L, item->boundaries, (size_t)L * sizeof(int64_t));
        float *tg = (float *)aqa_data(b->boundary_target) + r * T * L;
        memset(tg, 0, (size_t)(T * L) * sizeof *tg);
        for (int64_t l = 0; l < L; l++) tg[item->boundaries[l] * L + l] = 1.0f;
        memcpy((int64_t *)aqa_data(b->frame_stage) + r * T, item->frame_stage, (size_t)T * sizeof(int64_t));
    }
    return AQA_OK;
}

/* Builds the batch of items[n].  With row_ok (exemplar batches) bad rows are only flagged there
 * (left zero, no compaction), so that the caller can drop the queries they belong to. */
/* Rows take their random choices from aqa_seed_mix(seed, row0 + r): row0 is the place of items[0]
 * in its batch when the batch is built in micro-batches. */
static aqa_status build(aqa_video_dataset *ds, const aqa_loader_config *cfg, const size_t *items, size_t n,
                        uint64_t seed, size_t row0, bool with_exemplars, bool *row_ok, aqa_batch **out) {
    *out = NULL;
    if (!n) return aqa_fail(AQA_EINVAL, "aqa_batch_build: empty batch");
    aqa_batch *b = calloc(1, sizeof *b);
    if (!b) return aqa_fail(AQA_ENOMEM, "out of memory");
    b->B = (int64_t)n;
    b->micro_count = 1;
    b->batch_rows = (int64_t)n;
    b->weight = 1.0;
    b->items = malloc(n * sizeof *b->items);
    if (!b->items) {
        free(b);
        return aqa_fail(AQA_ENOMEM, "out of memory");
    }
    memcpy(b->items, items, n * sizeof *items);
    int64_t B = (int64_t)n, T = ds->T, N = ds->N, L = ds->L;
    bool frames = ds->manifest->dataset != AQA_ANN_FISV;
    aqa_status st = AQA_OK;
    if (cfg->i3d_clips && frames) {
        int h, w;
        if ((st = aqa_vd_transform_size(&cfg->i3d_tf, &h, &w))) goto fail;
        b->i3d_clips = cpu_tensor(6, (const int64_t[]){B, N, 3, ds->clip_len, h, w}, AQA_F32);
        if (!b->i3d_clips) goto fail_status;
    }
    if (cfg->clip_frames && frames) {
        int h, w;
        if ((st = aqa_vd_transform_size(&cfg->clip_tf, &h, &w))) goto fail;
        b->clip_frames = cpu_tensor(5, (const int64_t[]){B, T, 3, h, w}, AQA_F32);
        if (!b->clip_frames) goto fail_status;
    }
    if (cfg->clip_feat) {
        if (!ds->feat_clip_dim) {
            st = aqa_fail(AQA_EINVAL, "loader: CLIP features asked for but the dataset has no cached \"clip\" features");
            goto fail;
        }
        b->clip_feat = cpu_tensor(3, (const int64_t[]){B, T, ds->feat_clip_dim}, AQA_F32);
        if (!b->clip_feat) goto fail_status;
    }
    if (cfg->i3d_feat) {
        if (!ds->feat_i3d_dim) {
            st = aqa_fail(AQA_EINVAL, "loader: I3D features asked for but the dataset has no cached \"i3d\" features");
            goto fail;
        }
        b->i3d_feat = cpu_tensor(3, (const int64_t[]){B, N, ds->feat_i3d_dim}, AQA_F32);
        if (!b->i3d_feat) goto fail_status;
    }
    if (cfg->i3d_map) {
        if (!ds->feat_map_h) {
            st = aqa_fail(AQA_EINVAL, "loader: I3D maps asked for but the cache holds no \"i3d_map\" (extract again)");
            goto fail;
        }
        b->i3d_map = cpu_tensor(5, (const int64_t[]){B, N, ds->feat_i3d_dim, ds->feat_map_h, ds->feat_map_w}, AQA_F32);
        if (!b->i3d_map) goto fail_status;
    }
    b->score = cpu_tensor(1, (const int64_t[]){B}, AQA_F32);
    b->difficulty = cpu_tensor(1, (const int64_t[]){B}, AQA_F32);
    b->judges = cpu_tensor(2, (const int64_t[]){B, AQA_ANN_MAX_JUDGES}, AQA_F32);
    b->judge_count = cpu_tensor(1, (const int64_t[]){B}, AQA_I64);
    b->stage_text_ids = cpu_tensor(2, (const int64_t[]){B, 3}, AQA_I64);
    b->video_text_ids = cpu_tensor(1, (const int64_t[]){B}, AQA_I64);
    b->dive_class = cpu_tensor(1, (const int64_t[]){B}, AQA_I64);
    if (!b->score || !b->difficulty || !b->judges || !b->judge_count || !b->stage_text_ids || !b->video_text_ids ||
        !b->dive_class)
        goto fail_status;
    if (ds->n_grades > 0) {
        b->stage_text_cands = cpu_tensor(3, (const int64_t[]){B, 3, ds->n_grades}, AQA_I64);
        b->video_text_cands = cpu_tensor(2, (const int64_t[]){B, ds->n_grades}, AQA_I64);
        if (!b->stage_text_cands || !b->video_text_cands) goto fail_status;
    }
    if (L > 0 && T > 0 && ds->items[items[0]].labels) {
        b->labels = cpu_tensor(2, (const int64_t[]){B, T}, AQA_I64);
        b->boundaries = cpu_tensor(2, (const int64_t[]){B, L}, AQA_I64);
        b->boundary_target = cpu_tensor(3, (const int64_t[]){B, T, L}, AQA_F32);
        b->frame_stage = cpu_tensor(2, (const int64_t[]){B, T}, AQA_I64);
        if (!b->labels || !b->boundaries || !b->boundary_target || !b->frame_stage) goto fail_status;
    }
    /* exemplars first (so a query whose exemplar fails can be dropped with it) */
    int E = with_exemplars && cfg->exemplars ? (cfg->n_exemplars > 0 ? cfg->n_exemplars : 1) : 0;
    size_t *ex = NULL;
    bool *ex_ok = NULL;
    if (E) {
        ex = malloc((size_t)E * n * sizeof *ex);
        size_t *pick = malloc((size_t)E * sizeof *pick);
        b->exemplar_count = cpu_tensor(1, (const int64_t[]){B}, AQA_I64);
        if (!ex || !pick || !b->exemplar_count) {
            free(ex);
            free(pick);
            st = aqa_fail(AQA_ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t q = 0; q < n && !st; q++) {
            int distinct = 0;
            st = aqa_exemplar_pick(cfg->exemplars, aqa_vd_sample(ds, items[q]), aqa_seed_mix(seed, 1000003 + row0 + q),
                                   E, pick, &distinct);
            ((int64_t *)aqa_data(b->exemplar_count))[q] = distinct;
            for (int e = 0; e < E && !st; e++) ex[(size_t)e * n + q] = pick[e];
        }
        free(pick);
        ex_ok = st ? NULL : malloc((size_t)E * n * sizeof *ex_ok);
        if (!st && !ex_ok) st = aqa_fail(AQA_ENOMEM, "out of memory");
        if (!st) st = build((aqa_video_dataset *)cfg->exemplars->pool, cfg, ex, (size_t)E * n,
                            aqa_seed_mix(seed, 77), row0, false, ex_ok, &b->exemplars);
        free(ex);
        if (st) {
            free(ex_ok);
            goto fail;
        }
        b->n_exemplars = E;
    }
    /* rows; a bad row under the skip policy is dropped */
    bool *ok = row_ok ? row_ok : malloc(n * sizeof *ok);
    if (!ok) {
        free(ex_ok);
        st = aqa_fail(AQA_ENOMEM, "out of memory");
        goto fail;
    }
    int64_t good = 0;
    for (size_t r = 0; r < n; r++) {
        ok[r] = true;
        aqa_status rs = load_row(ds, cfg, items[r], (int64_t)r, aqa_seed_mix(seed, row0 + r), b);
        if (rs) {
            if (ds->cfg.policy == AQA_BAD_DATA_FAIL) {
                if (!row_ok) free(ok);
                free(ex_ok);
                st = aqa_fail(rs, "%s (bad-data policy: fail)", aqa_last_error());
                goto fail;
            }
            aqa_vd_note_bad(ds, items[r], aqa_last_error(), rs == AQA_EFORMAT);
            ok[r] = false;
        }
        /* a query whose exemplar failed goes with it */
        for (int e = 0; e < E && ok[r]; e++) ok[r] = ex_ok[(size_t)e * n + r];
        good += ok[r];
    }
    free(ex_ok);
    if (row_ok) {
        *out = b;
        return AQA_OK;
    }
    if (good < B) {
        if (good == 0) {
            free(ok);
            st = aqa_fail(AQA_EFORMAT, "loader: every video of the batch failed to load (last: %s)", aqa_last_error());
            goto fail;
        }
        aqa_tensor **ts[BATCH_ROW_TENSORS];
        row_tensors(b, ts);
        int64_t w = 0;
        for (int64_t r = 0; r < B; r++) {
            if (!ok[r]) continue;
            for (size_t k = 0; k < BATCH_ROW_TENSORS; k++) move_row(*ts[k], r, w);
            b->items[w] = b->items[r];
            w++;
        }
        for (size_t k = 0; k < BATCH_ROW_TENSORS; k++) *ts[k] = keep_rows(*ts[k], good);
        if (b->exemplars) {
            /* keep the exemplar rows of the kept queries: row e * B + b -> e * good + w */
            aqa_batch *x = b->exemplars;
            aqa_tensor **xs[BATCH_ROW_TENSORS];
            row_tensors(x, xs);
            int64_t wx = 0;
            for (int e = 0; e < E; e++)
                for (int64_t r = 0; r < B; r++) {
                    if (!ok[r]) continue;
                    for (size_t k = 0; k < BATCH_ROW_TENSORS; k++) move_row(*xs[k], e * B + r, wx);
                    x->items[wx] = x->items[e * B + r];
                    wx++;
                }
            for (size_t k = 0; k < BATCH_ROW_TENSORS; k++) *xs[k] = keep_rows(*xs[k], wx);
            x->B = wx;
        }
        b->B = good;
    }
    free(ok);
    *out = b;
    return AQA_OK;
fail_status:
    st = aqa_last_status() ? aqa_last_status() : AQA_ENOMEM;
fail:
    {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", aqa_last_error());
        aqa_batch_free(b);
        aqa_fail(st, "%s", msg);
    }
    return st;
}

aqa_status aqa_batch_build(aqa_video_dataset *ds, const aqa_loader_config *cfg, const size_t *items, size_t n,
                           uint64_t seed, aqa_batch **out) {
    if (!ds || !cfg || !items || !out) return aqa_fail(AQA_EINVAL, "aqa_batch_build: NULL argument");
    return build(ds, cfg, items, n, seed, 0, true, NULL, out);
}

/* ---- the loader ------------------------------------------------------------------------------ */

typedef struct slot {
    size_t job;       /* batch index it holds */
    bool ready;       /* filled */
    aqa_batch *batch; /* result */
    aqa_status status;
    char msg[1024];
} slot;

struct aqa_loader {
    aqa_video_dataset *ds;
    aqa_loader_config cfg;
    size_t *order;       /* this epoch's item order */
    size_t n_batches;    /* batches of the epoch */
    size_t job0, n_jobs; /* the batches this shard builds: [job0, job0 + n_jobs) */
    bool cut;            /* batches built as this shard's micro-batches */
    int epoch;
    uint64_t epoch_seed;
    pthread_t *threads;
    int n_threads;
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    size_t next_job, next_out; /* next batch to build / to hand out */
    int in_flight;             /* batches being built */
    bool stop;
    slot *slots;               /* prefetch ring, slot[j % prefetch] */
    int n_slots;
    aqa_progress progress;
    size_t items_out;
};

void aqa_loader_epoch_order(uint64_t seed, int epoch, bool shuffle, size_t n, size_t *order) {
    if (shuffle) {
        aqa_seeded_permutation(aqa_seed_mix(seed, 0x51ED0000ULL + (uint64_t)epoch), n, order);
        return;
    }
    for (size_t i = 0; i < n; i++) order[i] = i;
}

static void job_range(const aqa_loader *l, size_t j, size_t *start, size_t *n) {
    size_t B = (size_t)l->cfg.batch_size;
    *start = j * B;
    *n = *start + B <= l->ds->n_items ? B : l->ds->n_items - *start;
}

/* This shard's micro-batches of batch j (rows order[start, start + n)) as a chain. */
static aqa_status build_micro(aqa_loader *l, size_t j, size_t start, size_t n, aqa_batch **out) {
    const aqa_loader_config *c = &l->cfg;
    int shards = c->num_shards > 1 ? c->num_shards : 1;
    size_t m = c->micro_batch > 0 ? (size_t)c->micro_batch : ((size_t)c->batch_size + (size_t)shards - 1) / (size_t)shards;
    int K = (int)((n + m - 1) / m);
    int k0 = (int)((int64_t)c->shard * K / shards), k1 = (int)((int64_t)(c->shard + 1) * K / shards);
    *out = NULL;
    aqa_batch **tail = out;
    for (int k = k0; k < k1; k++) {
        size_t lo = (size_t)k * m, rows = lo + m <= n ? m : n - lo;
        aqa_status st = build(l->ds, c, l->order + start + lo, rows, aqa_seed_mix(l->epoch_seed, j), lo, true, NULL, tail);
        if (st) {
            aqa_batch_free(*out);
            *out = NULL;
            return st;
        }
        (*tail)->micro_index = k;
        (*tail)->row0 = (int64_t)lo;
        (*tail)->weight = (double)rows / (double)n;
        tail = &(*tail)->next;
    }
    if (!*out) {
        /* no micro-batch of this batch for this shard: an empty one keeps the ranks in step */
        if (!(*out = calloc(1, sizeof **out))) return aqa_fail(AQA_ENOMEM, "out of memory");
        (*out)->micro_index = -1;
    }
    for (aqa_batch *b = *out; b; b = b->next) {
        b->micro_count = K;
        b->batch_rows = (int64_t)n;
    }
    return AQA_OK;
}

static void run_job(aqa_loader *l, size_t i, slot *out) {
    size_t start, n, j = l->job0 + i;
    job_range(l, j, &start, &n);
    out->batch = NULL;
    if (l->cut) out->status = build_micro(l, j, start, n, &out->batch);
    else out->status = build(l->ds, &l->cfg, l->order + start, n, aqa_seed_mix(l->epoch_seed, j), 0, true, NULL, &out->batch);
    if (out->status) snprintf(out->msg, sizeof out->msg, "%s", aqa_last_error());
    out->job = i;
    out->ready = true;
}

static void *worker(void *arg) {
    aqa_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && (l->next_job >= l->n_jobs || l->next_job >= l->next_out + (size_t)l->n_slots))
            pthread_cond_wait(&l->work, &l->mu);
        if (l->stop) break;
        size_t j = l->next_job++;
        l->in_flight++;
        pthread_mutex_unlock(&l->mu);
        slot s;
        memset(&s, 0, sizeof s);
        run_job(l, j, &s);
        pthread_mutex_lock(&l->mu);
        l->slots[j % (size_t)l->n_slots] = s;
        l->in_flight--;
        pthread_cond_broadcast(&l->done);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

aqa_loader *aqa_loader_new(aqa_video_dataset *ds, const aqa_loader_config *cfg) {
    if (!ds || !cfg) return aqa_fail_null("aqa_loader_new: NULL argument");
    if (cfg->batch_size <= 0) return aqa_fail_null("aqa_loader_new: batch_size must be > 0 (got %d)", cfg->batch_size);
    if (cfg->workers < 0 || cfg->workers > 64) return aqa_fail_null("aqa_loader_new: workers must be 0..64");
    if ((cfg->clip_feat || cfg->i3d_feat || cfg->i3d_map) && !ds->cfg.features_dir)
        return aqa_fail_null("aqa_loader_new: cached features asked for but the dataset was opened without a "
                             "features folder");
    if ((cfg->i3d_clips || cfg->clip_frames) && ds->manifest->dataset == AQA_ANN_FISV)
        return aqa_fail_null("aqa_loader_new: Fis-V has no frames (use its features)");
    int n_shards = cfg->num_shards > 1 ? cfg->num_shards : 1;
    if (cfg->shard < 0 || cfg->shard >= n_shards || cfg->micro_batch < 0)
        return aqa_fail_null("aqa_loader_new: shard %d of %d, micro_batch %d", cfg->shard, n_shards, cfg->micro_batch);
    if (!cfg->shard_batches && (n_shards > 1 || cfg->micro_batch > 0) && cfg->exemplars && cfg->n_exemplars > 1)
        return aqa_fail_null("aqa_loader_new: micro-batches need at most one exemplar per query (got %d)", cfg->n_exemplars);
    aqa_loader *l = calloc(1, sizeof *l);
    if (!l) return aqa_fail_null("aqa_loader_new: out of memory");
    l->ds = ds;
    l->cfg = *cfg;
    l->n_slots = cfg->prefetch > 0 ? cfg->prefetch : 1;
    l->order = malloc((ds->n_items + 1) * sizeof *l->order);
    l->slots = calloc((size_t)l->n_slots, sizeof *l->slots);
    if (!l->order || !l->slots) {
        free(l->order);
        free(l->slots);
        free(l);
        return aqa_fail_null("aqa_loader_new: out of memory");
    }
    size_t B = (size_t)cfg->batch_size;
    l->n_batches = cfg->drop_last ? ds->n_items / B : (ds->n_items + B - 1) / B;
    int shards = cfg->num_shards > 1 ? cfg->num_shards : 1;
    l->n_jobs = l->n_batches;
    if (cfg->shard_batches) {
        l->job0 = l->n_batches * (size_t)cfg->shard / (size_t)shards;
        l->n_jobs = l->n_batches * (size_t)(cfg->shard + 1) / (size_t)shards - l->job0;
    } else {
        l->cut = shards > 1 || (cfg->micro_batch > 0 && cfg->micro_batch < cfg->batch_size);
    }
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->done, NULL);
    l->next_job = l->next_out = l->n_jobs; /* nothing to do before start_epoch */
    l->n_threads = cfg->workers;
    if (l->n_threads) {
        l->threads = calloc((size_t)l->n_threads, sizeof *l->threads);
        if (!l->threads) {
            aqa_loader_free(l);
            return aqa_fail_null("aqa_loader_new: out of memory");
        }
        for (int k = 0; k < l->n_threads; k++) {
            if (pthread_create(&l->threads[k], NULL, worker, l) != 0) {
                l->n_threads = k;
                aqa_loader_free(l);
                return aqa_fail_null("aqa_loader_new: cannot start worker thread %d", k);
            }
        }
    }
    return l;
}

/* Waits for running jobs and drops every prepared batch (lock held). */
static void drain(aqa_loader *l) {
    l->next_job = l->n_jobs;
    while (l->in_flight > 0) pthread_cond_wait(&l->done, &l->mu);
    for (int k = 0; k < l->n_slots; k++) {
        if (l->slots[k].ready) aqa_batch_free(l->slots[k].batch);
        memset(&l->slots[k], 0, sizeof l->slots[k]);
    }
}

void aqa_loader_free(aqa_loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->mu);
    drain(l);
    l->stop = true;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    for (int k = 0; k < l->n_threads; k++) pthread_join(l->threads[k], NULL);
    free(l->threads);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->done);
    free(l->order);
    free(l->slots);
    free(l);
}

size_t aqa_loader_num_batches(const aqa_loader *l) { return l ? l->n_jobs : 0; }

aqa_status aqa_loader_start_epoch(aqa_loader *l, int epoch) {
    if (!l) return aqa_fail(AQA_EINVAL, "aqa_loader_start_epoch: NULL loader");
    pthread_mutex_lock(&l->mu);
    drain(l);
    l->epoch = epoch;
    l->epoch_seed = aqa_seed_mix(l->cfg.seed, 0xE0000ULL + (uint64_t)epoch);
    aqa_loader_epoch_order(l->cfg.seed, epoch, l->cfg.shuffle, l->ds->n_items, l->order);
    l->next_job = 0;
    l->next_out = 0;
    l->items_out = 0;
    char label[64];
    snprintf(label, sizeof label, "%s epoch %d", l->cfg.name ? l->cfg.name : "data", epoch);
    size_t total = l->cfg.drop_last || l->n_jobs != l->n_batches ? l->n_jobs * (size_t)l->cfg.batch_size : l->ds->n_items;
    aqa_progress_start(&l->progress, label, total, l->cfg.progress);
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    return AQA_OK;
}

aqa_status aqa_loader_next(aqa_loader *l, aqa_batch **out) {
    if (!l || !out) return aqa_fail(AQA_EINVAL, "aqa_loader_next: NULL argument");
    *out = NULL;
    pthread_mutex_lock(&l->mu);
    if (l->next_out >= l->n_jobs) {
        pthread_mutex_unlock(&l->mu);
        return AQA_OK;
    }
    size_t j = l->next_out;
    slot s;
    if (l->n_threads == 0) {
        l->next_job = j + 1;
        pthread_mutex_unlock(&l->mu);
        memset(&s, 0, sizeof s);
        run_job(l, j, &s);
        pthread_mutex_lock(&l->mu);
    } else {
        slot *sl = &l->slots[j % (size_t)l->n_slots];
        while (!(sl->ready && sl->job == j)) pthread_cond_wait(&l->done, &l->mu);
        s = *sl;
        memset(sl, 0, sizeof *sl);
    }
    l->next_out++;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->mu);
    if (s.status) {
        aqa_batch_free(s.batch);
        return aqa_fail(s.status, "%s", s.msg);
    }
    *out = s.batch;
    l->items_out += (size_t)s.batch->B;
    if (l->next_out >= l->n_jobs) aqa_progress_finish(&l->progress, NULL);
    else aqa_progress_update(&l->progress, l->items_out, NULL);
    return AQA_OK;
}
