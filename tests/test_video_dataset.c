/* test_video_dataset.c: the data pipeline: sampling and clip indices against the baselines'
 * formulas, TSA's boundaries, exemplar rules, seeded shuffling, the threaded loader on a generated
 * synthetic set, the bad-data policy and the feature cache with resume; the MTL-AQA, JIGSAWS and
 * Fis-V layouts on tiny fixtures written by the tests; video files in place of frame folders (the
 * synthetic set's competition videos, MTL-AQA's and JIGSAWS' fixtures made into videos) give the
 * same model input as the frames. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/exemplar.h"
#include "datasets/feature_cache.h"
#include "image/image.h"
#include "datasets/loader.h"
#include "io/pickle_write.h"
#include "datasets/synthetic.h"
#include "datasets/video_dataset.h"
#include "image/video.h"
#include "io/safetensors.h"
#include "tensor/tensor.h"
#include "tests/cli_testlib.h"
#include "tests/fixtures.h"
#include "tests/testlib.h"

static char g_root[256];       /* generated synthetic set */
static aqa_synthetic_config g_syn;
static aqa_synthetic_dive *g_dives;
static size_t g_n_dives;

static const aqa_synthetic_dive *plan_of(const aqa_ann_sample *s) {
    for (size_t i = 0; i < g_n_dives; i++) {
        char key[96];
        snprintf(key, sizeof key, "%s/%lld", g_dives[i].video, (long long)g_dives[i].instance);
        if (!strcmp(key, s->key)) return &g_dives[i];
    }
    return NULL;
}

/* A quiet configuration for `split` of a `dataset` layout under root (the rest as
 * aqa_vd_config_init sets it). */
static aqa_vd_config quiet_config(const char *root, aqa_ann_dataset dataset, const char *split) {
    aqa_vd_config c;
    aqa_vd_config_init(&c);
    c.root = root;
    c.dataset = dataset;
    c.split = split;
    c.quiet = true;
    return c;
}

static aqa_video_dataset *open_split(const char *root, const char *split, aqa_bad_data_policy pol, const char *features) {
    aqa_vd_config c = quiet_config(root, AQA_ANN_FINEDIVING, split);
    c.policy = pol;
    c.features_dir = features;
    return aqa_video_dataset_open(&c);
}

/* ---- pure formulas ------------------------------------------------------------------------- */

static void test_linspace_matches_numpy(void) {
    /* np.linspace(100, 162, 96).astype(int) (numpy 1.24.2): a 63-frame dive, frames repeat */
    static const int64_t want[96] = {
        100, 100, 101, 101, 102, 103, 103, 104, 105, 105, 106, 107, 107, 108, 109, 109, 110, 111, 111, 112,
        113, 113, 114, 115, 115, 116, 116, 117, 118, 118, 119, 120, 120, 121, 122, 122, 123, 124, 124, 125,
        126, 126, 127, 128, 128, 129, 130, 130, 131, 131, 132, 133, 133, 134, 135, 135, 136, 137, 137, 138,
        139, 139, 140, 141, 141, 142, 143, 143, 144, 145, 145, 146, 146, 147, 148, 148, 149, 150, 150, 151,
        152, 152, 153, 154, 154, 155, 156, 156, 157, 158, 158, 159, 160, 160, 161, 162};
    int64_t got[160];
    aqa_vd_linspace_int(100, 162, 96, got);
    for (int t = 0; t < 96; t++) CHECK_EQ_INT(got[t], want[t]);
    /* np.linspace(5, 500, 160).astype(int)[::20] */
    static const int64_t want2[8] = {5, 67, 129, 191, 254, 316, 378, 440};
    aqa_vd_linspace_int(5, 500, 160, got);
    for (int k = 0; k < 8; k++) CHECK_EQ_INT(got[k * 20], want2[k]);
    CHECK_EQ_INT(got[159], 500);
    /* hand-computed: 5 frames 10..14 onto 8 -> step 4/7 */
    static const int64_t want3[8] = {10, 10, 11, 11, 12, 12, 13, 14};
    aqa_vd_linspace_int(10, 14, 8, got);
    for (int t = 0; t < 8; t++) CHECK_EQ_INT(got[t], want3[t]);
}

static void test_clip_starts(void) {
    int64_t s[16];
    CHECK(aqa_vd_clip_starts(96, 9, 16, 10, s) == AQA_OK); /* FineDiving / TSA */
    for (int c = 0; c < 9; c++) CHECK_EQ_INT(s[c], 10 * c);
    CHECK(aqa_vd_clip_starts(103, 10, 16, 10, s) == AQA_OK); /* MTL-AQA / CoRe */
    static const int64_t mtl[10] = {0, 10, 20, 30, 40, 50, 60, 70, 80, 87};
    for (int c = 0; c < 10; c++) CHECK_EQ_INT(s[c], mtl[c]);
    CHECK(aqa_vd_clip_starts(160, 10, 16, 16, s) == AQA_OK); /* JIGSAWS */
    for (int c = 0; c < 10; c++) CHECK_EQ_INT(s[c], 16 * c);
    CHECK(aqa_vd_clip_starts(8, 2, 16, 10, s) != AQA_OK);
    aqa_clear_error();
}

static void test_tsa_boundaries(void) {
    int64_t b[2];
    const int64_t a[] = {1, 1, 1, 20, 20, 20, 20, 36, 36};
    CHECK(aqa_vd_tsa_boundaries(a, 9, b) == AQA_OK);
    CHECK_EQ_INT(b[0], 3); /* first change at 3 (TSA's transits + 1) */
    CHECK_EQ_INT(b[1], 7); /* last new label at 7 */
    const int64_t tw[] = {4, 4, 23, 23, 31, 31, 31, 36, 36, 36};
    CHECK(aqa_vd_tsa_boundaries(tw, 10, b) == AQA_OK);
    CHECK_EQ_INT(b[0], 2);
    CHECK_EQ_INT(b[1], 7);
    const int64_t rec[] = {1, 1, 20, 1, 36, 36}; /* a recurring label: first appearances count */
    CHECK(aqa_vd_tsa_boundaries(rec, 6, b) == AQA_OK);
    CHECK_EQ_INT(b[0], 2);
    CHECK_EQ_INT(b[1], 4);
    const int64_t two[] = {1, 1, 36, 36};
    CHECK(aqa_vd_tsa_boundaries(two, 4, b) == AQA_EFORMAT);
    aqa_clear_error();
    int64_t st[9];
    const int64_t bb[2] = {3, 7};
    aqa_vd_frame_stages(bb, 2, 9, st);
    static const int64_t want[9] = {0, 0, 0, 1, 1, 1, 1, 2, 2};
    for (int t = 0; t < 9; t++) CHECK_EQ_INT(st[t], want[t]);
}

/* ---- the synthetic set --------------------------------------------------------------------- */

static void test_sampling_on_synthetic(void) {
    aqa_video_dataset *ds = open_split(g_root, "train", AQA_BAD_DATA_FAIL, NULL);
    CHECK_MSG(ds != NULL, "open: %s", aqa_last_error());
    if (!ds) return;
    CHECK_EQ_INT(ds->T, 96);
    CHECK_EQ_INT(ds->N, 9);
    CHECK_EQ_INT(ds->L, 2);
    int short_seen = 0;
    for (size_t i = 0; i < ds->n_items; i++) {
        const aqa_vd_item *it = &ds->items[i];
        const aqa_ann_sample *s = aqa_vd_sample(ds, i);
        const aqa_synthetic_dive *d = plan_of(s);
        CHECK(d != NULL);
        if (!d) continue;
        int64_t n = s->end_frame - s->start_frame + 1;
        if (n < 96) short_seen++;
        /* frame t = floor(start + t (n - 1) / 95), exact rational arithmetic */
        for (int64_t t = 0; t < 96; t++) {
            int64_t want = s->start_frame + (t * (n - 1)) / 95;
            CHECK_EQ_INT(it->frames[t], want);
            CHECK_EQ_INT(it->labels[t], aqa_synthetic_frame_label(d, (int)(want - s->start_frame)));
        }
        /* boundaries: the first frame after the first label change and the entry's first frame */
        int64_t first_change = -1, entry_first = -1;
        for (int64_t t = 0; t < 96; t++) {
            if (first_change < 0 && it->labels[t] != it->labels[0]) first_change = t;
            if (entry_first < 0 && it->labels[t] == d->step_ids[d->n_steps - 1]) entry_first = t;
        }
        CHECK_EQ_INT(it->boundaries[0], first_change);
        CHECK_EQ_INT(it->boundaries[1], entry_first);
        for (int64_t t = 0; t < 96; t++)
            CHECK_EQ_INT(it->frame_stage[t], t < it->boundaries[0] ? 0 : t < it->boundaries[1] ? 1 : 2);
        /* texts: the dive's three stage texts and its sentence */
        CHECK(it->stage_text[0] != it->stage_text[2]);
        CHECK_STR(aqa_text_set_get(&ds->stage_texts, (size_t)it->stage_text[2]), "a diving video of an entry into the water");
    }
    CHECK_MSG(short_seen > 0, "no dive shorter than 96 frames in the generated set");
    aqa_video_dataset_free(ds);
}

/* The stage texts go through the prompt template: the paper's by default, none with "", any other
 * with its "[category]" filled; the ids (one per distinct text) do not change. */
static void test_stage_template(void) {
    const char *tmpl[3] = {NULL, "", "footage of [category]"};
    const char *want[3] = {"a diving video of an entry into the water", "entry into the water",
                           "footage of entry into the water"};
    for (int k = 0; k < 3; k++) {
        aqa_vd_config c = quiet_config(g_root, AQA_ANN_FINEDIVING, "train");
        c.stage_template = tmpl[k];
        aqa_video_dataset *ds = aqa_video_dataset_open(&c);
        CHECK_MSG(ds != NULL, "open: %s", aqa_last_error());
        if (!ds) continue;
        CHECK_STR(aqa_text_set_get(&ds->stage_texts, (size_t)ds->items[0].stage_text[2]), want[k]);
        aqa_video_dataset_free(ds);
    }
    aqa_vd_config c = quiet_config(g_root, AQA_ANN_FINEDIVING, "train");
    c.stage_template = "no placeholder";
    CHECK(aqa_video_dataset_open(&c) == NULL && strstr(aqa_last_error(), "[category]"));
}

/* FUM stage boundaries per sport (video_dataset.h): diving 30% | 50% | 20%, else thirds. */
static void test_fum_boundaries(void) {
    int64_t b[2];
    aqa_vd_fum_boundaries(AQA_ANN_MTL_AQA, 10, b);
    CHECK(b[0] == 3 && b[1] == 8);
    aqa_vd_fum_boundaries(AQA_ANN_FINEDIVING, 9, b);
    CHECK(b[0] == 3 && b[1] == 7); /* round(2.7), round(7.2) */
    aqa_vd_fum_boundaries(AQA_ANN_JIGSAWS, 10, b);
    CHECK(b[0] == 3 && b[1] == 7);
    aqa_vd_fum_boundaries(AQA_ANN_FISV, 6, b);
    CHECK(b[0] == 2 && b[1] == 4);
    aqa_vd_fum_boundaries(AQA_ANN_MTL_AQA, 3, b); /* kept inside [1, N - 1] and increasing */
    CHECK(b[0] == 1 && b[1] == 2);
    aqa_vd_fum_boundaries(AQA_ANN_MTL_AQA, 4, b); /* round(1.2) = 1, round(3.2) = 3 */
    CHECK(b[0] == 1 && b[1] == 3);
    aqa_vd_fum_boundaries(AQA_ANN_JIGSAWS, 2, b); /* too few clips for 3 stages */
    CHECK(b[0] == 0 && b[1] == 0);
}

static void test_exemplar_rules(void) {
    aqa_video_dataset *tr = open_split(g_root, "train", AQA_BAD_DATA_FAIL, NULL);
    aqa_video_dataset *te = open_split(g_root, "test", AQA_BAD_DATA_FAIL, NULL);
    CHECK(tr && te);
    if (!tr || !te) goto done;
    aqa_exemplar_mode modes[3] = {AQA_EXEMPLAR_RANDOM, AQA_EXEMPLAR_DIVE, AQA_EXEMPLAR_DIFFICULTY};
    for (int m = 0; m < 3; m++) {
        aqa_exemplar_pool *p = aqa_exemplar_pool_new(tr, modes[m]);
        CHECK(p != NULL);
        if (!p) continue;
        size_t pick[10], pick2[10];
        for (int split = 0; split < 2; split++) {
            aqa_video_dataset *q = split ? te : tr;
            for (size_t i = 0; i < q->n_items; i++) {
                const aqa_ann_sample *s = aqa_vd_sample(q, i);
                int nd = -1, nd2 = -1;
                CHECK(aqa_exemplar_pick(p, s, 99 + i, 10, pick, &nd) == AQA_OK);
                CHECK(aqa_exemplar_pick(p, s, 99 + i, 10, pick2, &nd2) == AQA_OK);
                CHECK(nd >= 1 && nd <= 10 && nd == nd2);
                /* the first nd picks are distinct, the rest repeat them in turn */
                for (int k = 0; k < nd; k++)
                    for (int l = 0; l < k; l++) CHECK(pick[k] != pick[l]);
                for (int k = nd; k < 10; k++) CHECK_EQ_INT(pick[k], pick[k % nd]);
                for (int k = 0; k < 10; k++) {
                    CHECK_EQ_INT(pick[k], pick2[k]); /* deterministic by seed */
                    CHECK(pick[k] < tr->n_items);    /* from the training split only */
                    const aqa_ann_sample *e = aqa_vd_sample(tr, pick[k]);
                    CHECK(strcmp(e->key, s->key) != 0); /* never the query */
                    if (modes[m] == AQA_EXEMPLAR_DIVE && p->fallbacks == 0)
                        CHECK(strcasecmp(e->dive_number, s->dive_number) == 0);
                    if (modes[m] == AQA_EXEMPLAR_DIFFICULTY && p->fallbacks == 0)
                        CHECK_NEAR(e->difficulty, s->difficulty, 1e-9);
                }
            }
        }
        aqa_exemplar_pool_free(p);
    }
    /* a group with the same dive number: a query from the training split with a partner */
    aqa_exemplar_pool *p = aqa_exemplar_pool_new(tr, AQA_EXEMPLAR_DIVE);
    size_t found = 0;
    for (size_t i = 0; p && i < tr->n_items && !found; i++)
        for (size_t j = 0; j < tr->n_items; j++)
            if (j != i && !strcasecmp(aqa_vd_sample(tr, i)->dive_number, aqa_vd_sample(tr, j)->dive_number)) {
                size_t pick[4];
                CHECK(aqa_exemplar_pick(p, aqa_vd_sample(tr, i), 5, 4, pick, NULL) == AQA_OK);
                for (int k = 0; k < 4; k++) {
                    CHECK(pick[k] != i);
                    CHECK(!strcasecmp(aqa_vd_sample(tr, pick[k])->dive_number, aqa_vd_sample(tr, i)->dive_number));
                }
                CHECK_EQ_INT(p->fallbacks, 0);
                found = 1;
                break;
            }
    CHECK_MSG(found, "no two training dives share a dive number");
    aqa_exemplar_pool_free(p);
    /* CoRe's deltas: every unordered pair of a group once (not the first pairs in dataset order),
     * scores over each video's own DD with use_dd; a cap takes an even sample */
    for (int m = 0; m < 3; m++) {
        aqa_exemplar_pool *pp = aqa_exemplar_pool_new(tr, modes[m]);
        double *d = NULL;
        size_t n = 0, want = 0;
        double want_sum = 0;
        for (size_t i = 0; i < tr->n_items; i++)
            for (size_t j = i + 1; j < tr->n_items; j++) {
                const aqa_ann_sample *a = aqa_vd_sample(tr, i), *b = aqa_vd_sample(tr, j);
                if (modes[m] == AQA_EXEMPLAR_DIVE && strcasecmp(a->dive_number, b->dive_number)) continue;
                if (modes[m] == AQA_EXEMPLAR_DIFFICULTY && fabs(a->difficulty - b->difficulty) > 1e-6) continue;
                want++;
                want_sum += fabs(a->score / a->difficulty - b->score / b->difficulty);
            }
        CHECK(pp && aqa_exemplar_pool_deltas(pp, true, 0, &d, &n) == AQA_OK);
        CHECK_EQ_INT(n, want);
        double sum = 0;
        for (size_t k = 0; k < n; k++) sum += d[k];
        CHECK_NEAR(sum, want_sum, 1e-9 * (1 + want_sum));
        free(d);
        if (want > 10) {
            CHECK(aqa_exemplar_pool_deltas(pp, false, want / 3, &d, &n) == AQA_OK);
            CHECK(n <= want / 3 && n >= want / 3 - 1);
            free(d);
        }
        aqa_exemplar_pool_free(pp);
    }
    aqa_exemplar_mode mm;
    CHECK(aqa_exemplar_mode_parse("w/DN", &mm) == AQA_OK && mm == AQA_EXEMPLAR_DIVE);
    CHECK(aqa_exemplar_mode_parse("w/ DD", &mm) == AQA_OK && mm == AQA_EXEMPLAR_DIFFICULTY);
    CHECK(aqa_exemplar_mode_parse("w/o", &mm) == AQA_OK && mm == AQA_EXEMPLAR_RANDOM);
    CHECK(aqa_exemplar_mode_parse("sideways", &mm) != AQA_OK);
    aqa_clear_error();
done:
    aqa_video_dataset_free(tr);
    aqa_video_dataset_free(te);
}

static void test_shuffle_determinism(void) {
    size_t a[50], b[50], c[50];
    aqa_loader_epoch_order(7, 3, true, 50, a);
    aqa_loader_epoch_order(7, 3, true, 50, b);
    aqa_loader_epoch_order(7, 4, true, 50, c);
    int same = 1, diff = 0, seen[50] = {0};
    for (int i = 0; i < 50; i++) {
        same &= a[i] == b[i];
        diff += a[i] != c[i];
        CHECK(a[i] < 50);
        if (a[i] < 50) seen[a[i]]++;
    }
    CHECK(same);
    CHECK(diff > 0);
    for (int i = 0; i < 50; i++) CHECK_EQ_INT(seen[i], 1);
    aqa_loader_epoch_order(8, 3, true, 50, c);
    diff = 0;
    for (int i = 0; i < 50; i++) diff += a[i] != c[i];
    CHECK(diff > 0);
    aqa_loader_epoch_order(7, 3, false, 50, c);
    for (int i = 0; i < 50; i++) CHECK_EQ_INT(c[i], i);
}

static void loader_cfg(aqa_loader_config *lc, int workers) {
    aqa_loader_config_init(lc);
    lc->batch_size = 3;
    lc->shuffle = true;
    lc->seed = 11;
    lc->workers = workers;
    lc->prefetch = 2;
    lc->i3d_clips = true;
    lc->i3d_tf = aqa_frame_transform_i3d(32, 24);
    lc->clip_frames = true;
    lc->clip_tf = aqa_frame_transform_clip(16);
}

static bool same_tensor(const aqa_tensor *a, const aqa_tensor *b) {
    if (!a || !b) return a == b;
    if (!aqa_same_shape(a, b)) return false;
    return memcmp(aqa_data(a), aqa_data(b), (size_t)aqa_numel(a) * aqa_dtype_size(a->dtype)) == 0;
}

static void test_threaded_loader(void) {
    aqa_video_dataset *tr = open_split(g_root, "train", AQA_BAD_DATA_FAIL, NULL);
    CHECK(tr != NULL);
    if (!tr) return;
    int64_t live0 = aqa_live_tensors();
    aqa_exemplar_pool *pool = aqa_exemplar_pool_new(tr, AQA_EXEMPLAR_RANDOM);
    aqa_loader_config lc0, lc2;
    loader_cfg(&lc0, 0);
    loader_cfg(&lc2, 2);
    lc0.augment = lc2.augment = true;
    lc0.exemplars = lc2.exemplars = pool;
    aqa_loader *l0 = aqa_loader_new(tr, &lc0), *l2 = aqa_loader_new(tr, &lc2);
    CHECK(l0 && l2);
    if (!l0 || !l2) goto done;
    for (int epoch = 0; epoch < 2; epoch++) {
        int *seen = calloc(tr->n_items, sizeof *seen);
        aqa_loader_start_epoch(l0, epoch);
        aqa_loader_start_epoch(l2, epoch);
        size_t nb = 0;
        for (;;) {
            aqa_batch *a = NULL, *b = NULL;
            CHECK(aqa_loader_next(l0, &a) == AQA_OK);
            CHECK(aqa_loader_next(l2, &b) == AQA_OK);
            CHECK((a == NULL) == (b == NULL));
            if (!a || !b) {
                aqa_batch_free(a);
                aqa_batch_free(b);
                break;
            }
            nb++;
            CHECK_EQ_INT(a->B, b->B);
            for (int64_t r = 0; r < a->B; r++) {
                CHECK_EQ_INT(a->items[r], b->items[r]);
                if (a->items[r] < tr->n_items) seen[a->items[r]]++;
            }
            /* the same bytes whatever the thread count */
            CHECK(same_tensor(a->i3d_clips, b->i3d_clips));
            CHECK(same_tensor(a->clip_frames, b->clip_frames));
            CHECK(same_tensor(a->boundary_target, b->boundary_target));
            CHECK(same_tensor(a->exemplars->i3d_clips, b->exemplars->i3d_clips));
            CHECK_EQ_INT(a->i3d_clips->ndim, 6);
            CHECK_EQ_INT(a->i3d_clips->shape[1], 9);
            CHECK_EQ_INT(a->i3d_clips->shape[3], 16);
            CHECK_EQ_INT(a->i3d_clips->shape[4], 24);
            CHECK_EQ_INT(a->clip_frames->shape[1], 96);
            CHECK_EQ_INT(a->exemplars->B, a->B);
            for (int64_t r = 0; r < a->B; r++) {
                const aqa_ann_sample *s = aqa_vd_sample(tr, a->items[r]);
                CHECK_NEAR(((float *)aqa_data(a->score))[r], s->score, 1e-3);
                CHECK(strcmp(aqa_vd_sample(tr, a->exemplars->items[r])->key, s->key) != 0);
                const float *tg = (float *)aqa_data(a->boundary_target) + r * 96 * 2;
                const int64_t *bd = (int64_t *)aqa_data(a->boundaries) + r * 2;
                float sum = 0;
                for (int k = 0; k < 192; k++) sum += tg[k];
                CHECK_NEAR(sum, 2, 0);
                CHECK_NEAR(tg[bd[0] * 2 + 0], 1, 0);
                CHECK_NEAR(tg[bd[1] * 2 + 1], 1, 0);
            }
            /* clip c frame j is sampled frame 10 c + j: overlapping clips hold equal planes */
            const float *x = aqa_data(a->i3d_clips);
            size_t hw = 24 * 24, clip = 3 * 16 * hw;
            CHECK(memcmp(x + 0 * clip + 10 * hw, x + 1 * clip + 0 * hw, hw * sizeof(float)) == 0);
            CHECK(memcmp(x + 0 * clip + 2 * 16 * hw + 15 * hw, x + 1 * clip + 2 * 16 * hw + 5 * hw,
                         hw * sizeof(float)) == 0);
            aqa_batch_free(a);
            aqa_batch_free(b);
        }
        CHECK_EQ_INT(nb, aqa_loader_num_batches(l2));
        for (size_t i = 0; i < tr->n_items; i++) CHECK_EQ_INT(seen[i], 1);
        free(seen);
    }
    /* an unfinished epoch is discarded cleanly */
    aqa_loader_start_epoch(l2, 5);
    aqa_batch *b = NULL;
    CHECK(aqa_loader_next(l2, &b) == AQA_OK && b);
    aqa_batch_free(b);
    aqa_loader_start_epoch(l2, 6);
    /* centre-crop decode (no augmentation) equals the synchronous decode of the item */
    {
        aqa_loader_config lc;
        loader_cfg(&lc, 2);
        lc.shuffle = false;
        lc.clip_frames = false;
        aqa_loader *l = aqa_loader_new(tr, &lc);
        aqa_loader_start_epoch(l, 0);
        aqa_batch *bb = NULL;
        CHECK(aqa_loader_next(l, &bb) == AQA_OK && bb);
        if (bb) {
            size_t per = (size_t)(aqa_numel(bb->i3d_clips) / bb->B);
            float *ref = malloc(per * sizeof *ref);
            CHECK(aqa_vd_decode(tr, bb->items[1], &lc.i3d_tf, true, 0, NULL, ref) == AQA_OK);
            CHECK(memcmp(ref, (float *)aqa_data(bb->i3d_clips) + per, per * sizeof *ref) == 0);
            free(ref);
        }
        aqa_batch_free(bb);
        aqa_loader_free(l);
    }
done:
    aqa_loader_free(l0);
    aqa_loader_free(l2);
    aqa_exemplar_pool_free(pool);
    CHECK_EQ_INT(aqa_live_tensors(), live0);
    aqa_video_dataset_free(tr);
}

/* Copies the set (annotations and frame folders) to a new temporary folder. */
/* The sampler of data-parallel training: the micro-batches of every shard, joined in order, are
 * the unsharded loader's batches row for row (items, augmented clips, exemplars); whole-batch
 * sharding (evaluation) hands out contiguous blocks. */
static bool same_row(const aqa_tensor *a, int64_t ra, const aqa_tensor *b, int64_t rb) {
    if (!a || !b) return a == b;
    size_t per = (size_t)(aqa_numel(a) / a->shape[0]) * aqa_dtype_size(a->dtype);
    return memcmp((const char *)aqa_data(a) + (size_t)ra * per, (const char *)aqa_data(b) + (size_t)rb * per, per) == 0;
}

static void test_sharded_loader(void) {
    aqa_video_dataset *tr = open_split(g_root, "train", AQA_BAD_DATA_FAIL, NULL);
    CHECK(tr != NULL);
    if (!tr) return;
    aqa_exemplar_pool *pool = aqa_exemplar_pool_new(tr, AQA_EXEMPLAR_RANDOM);
    enum { SHARDS = 3 };
    aqa_loader_config lc;
    loader_cfg(&lc, 1);
    lc.batch_size = 5;
    lc.clip_frames = false;
    lc.augment = true;
    lc.exemplars = pool;
    aqa_loader *whole = aqa_loader_new(tr, &lc), *part[SHARDS];
    for (int r = 0; r < SHARDS; r++) {
        aqa_loader_config pc = lc;
        pc.shard = r;
        pc.num_shards = SHARDS;
        pc.micro_batch = 2; /* 5 rows: micro-batches of 2, 2, 1, one per shard */
        part[r] = aqa_loader_new(tr, &pc);
        CHECK(part[r] != NULL);
        if (part[r]) aqa_loader_start_epoch(part[r], 1);
    }
    aqa_loader_start_epoch(whole, 1);
    size_t batches = 0;
    for (;;) {
        aqa_batch *w = NULL, *p[SHARDS] = {NULL};
        CHECK(aqa_loader_next(whole, &w) == AQA_OK);
        for (int r = 0; r < SHARDS; r++) CHECK(part[r] && aqa_loader_next(part[r], &p[r]) == AQA_OK);
        if (!w) {
            for (int r = 0; r < SHARDS; r++) CHECK(p[r] == NULL);
            break;
        }
        batches++;
        int64_t row = 0;
        double weights = 0;
        for (int r = 0; r < SHARDS; r++)
            for (aqa_batch *m = p[r]; m; m = m->next) {
                CHECK_EQ_INT(m->batch_rows, w->B);
                if (!m->B) continue;
                CHECK_EQ_INT(m->micro_index, row / 2);
                CHECK_EQ_INT(m->micro_count, (w->B + 1) / 2);
                weights += m->weight;
                for (int64_t i = 0; i < m->B && row < w->B; i++, row++) {
                    CHECK_EQ_INT(m->items[i], w->items[row]);
                    CHECK(same_row(m->i3d_clips, i, w->i3d_clips, row));
                    CHECK(same_row(m->boundary_target, i, w->boundary_target, row));
                    CHECK_EQ_INT(m->exemplars->items[i], w->exemplars->items[row]);
                    CHECK(same_row(m->exemplars->i3d_clips, i, w->exemplars->i3d_clips, row));
                }
            }
        CHECK_EQ_INT(row, w->B);
        CHECK_NEAR(weights, 1.0, 1e-12);
        aqa_batch_free(w);
        for (int r = 0; r < SHARDS; r++) aqa_batch_free(p[r]);
    }
    CHECK_EQ_INT(batches, aqa_loader_num_batches(whole));
    /* evaluation: whole batches in contiguous blocks */
    size_t total = 0;
    for (int r = 0; r < 2; r++) {
        aqa_loader_config ec = lc;
        ec.shuffle = false;
        ec.augment = false;
        ec.n_exemplars = 3;
        ec.shard = r;
        ec.num_shards = 2;
        ec.shard_batches = true;
        aqa_loader *e = aqa_loader_new(tr, &ec);
        CHECK(e != NULL);
        if (!e) continue;
        aqa_loader_start_epoch(e, 0);
        aqa_batch *b = NULL;
        while (aqa_loader_next(e, &b) == AQA_OK && b) {
            CHECK_EQ_INT(b->items[0], total); /* split order: batch k starts at item 5 k */
            CHECK_EQ_INT(b->exemplars->B, 3 * b->B);
            total += (size_t)b->B;
            aqa_batch_free(b);
        }
        aqa_loader_free(e);
    }
    CHECK_EQ_INT(total, tr->n_items);
    /* several exemplars per query cannot be cut into micro-batches */
    aqa_loader_config bad = lc;
    bad.num_shards = 2;
    bad.n_exemplars = 2;
    CHECK(aqa_loader_new(tr, &bad) == NULL && strstr(aqa_last_error(), "one exemplar"));
    aqa_loader_free(whole);
    for (int r = 0; r < SHARDS; r++) aqa_loader_free(part[r]);
    aqa_exemplar_pool_free(pool);
    aqa_video_dataset_free(tr);
}

static void copy_set(char *dst, size_t size) {
    snprintf(dst, size, "/tmp/aqa_vdbad_XXXXXX");
    if (!mkdtemp(dst)) return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp -r '%s'/. '%s'/", g_root, dst);
    if (system(cmd) != 0) dst[0] = 0;
}

static void test_bad_data_policy(void) {
    char root[256];
    copy_set(root, sizeof root);
    CHECK(root[0]);
    if (!root[0]) return;
    aqa_video_dataset *tr = open_split(root, "train", AQA_BAD_DATA_FAIL, NULL);
    CHECK(tr != NULL);
    if (!tr) return;
    size_t n_all = tr->n_items;
    /* 1. a missing frame file: fail names the file; skip leaves the video out and counts it */
    char missing[1200], corrupt[1200];
    aqa_vd_frame_path(tr, 0, 40, 0, missing, sizeof missing);
    aqa_vd_frame_path(tr, 1, 50, 0, corrupt, sizeof corrupt);
    aqa_video_dataset_free(tr);
    CHECK(remove(missing) == 0);
    tr = open_split(root, "train", AQA_BAD_DATA_FAIL, NULL);
    CHECK(tr == NULL);
    CHECK_MSG(strstr(aqa_last_error(), missing) != NULL, "message \"%s\" does not name %s", aqa_last_error(), missing);
    aqa_video_dataset_free(tr);
    tr = open_split(root, "train", AQA_BAD_DATA_SKIP, NULL);
    CHECK(tr != NULL);
    if (tr) {
        CHECK_EQ_INT(tr->n_items, n_all - 1);
        CHECK_EQ_INT(tr->summary.skipped_missing, 1);
        aqa_video_dataset_free(tr);
    }
    /* 2. a corrupt frame: found by the loader */
    FILE *f = fopen(corrupt, "wb");
    CHECK(f != NULL);
    if (f) {
        fputs("\x89PNG\r\n\x1a\n garbage, not a PNG stream", f);
        fclose(f);
    }
    for (int pol = 0; pol < 2; pol++) {
        tr = open_split(root, "train", pol ? AQA_BAD_DATA_SKIP : AQA_BAD_DATA_FAIL, NULL);
        if (!pol) {
            CHECK(tr == NULL); /* the missing frame still fails first */
            aqa_video_dataset_free(tr);
            remove(corrupt); /* restore: put the missing frame back as a copy */
            char cmd[4096];
            snprintf(cmd, sizeof cmd, "cp '%s/%s' '%s' && printf 'garbage' > '%s'", g_root, missing + strlen(root) + 1,
                     missing, corrupt);
            CHECK(system(cmd) == 0);
            tr = open_split(root, "train", AQA_BAD_DATA_FAIL, NULL);
        }
        CHECK(tr != NULL);
        if (!tr) continue;
        CHECK_EQ_INT(tr->n_items, n_all);
        aqa_loader_config lc;
        loader_cfg(&lc, 1);
        lc.shuffle = false;
        lc.batch_size = (int)n_all;
        lc.clip_frames = false;
        aqa_loader *l = aqa_loader_new(tr, &lc);
        aqa_loader_start_epoch(l, 0);
        aqa_batch *b = NULL;
        aqa_status st = aqa_loader_next(l, &b);
        if (!pol) {
            CHECK(st != AQA_OK && b == NULL);
            CHECK_MSG(strstr(aqa_last_error(), corrupt) != NULL, "message \"%s\" does not name %s", aqa_last_error(),
                      corrupt);
        } else {
            CHECK(st == AQA_OK && b != NULL);
            if (b) {
                CHECK_EQ_INT(b->B, (int64_t)n_all - 1);
                CHECK_EQ_INT(b->i3d_clips->shape[0], (int64_t)n_all - 1);
                for (int64_t r = 0; r < b->B; r++) CHECK(b->items[r] != 1);
            }
            CHECK_EQ_INT(tr->summary.skipped_corrupt, 1);
        }
        aqa_batch_free(b);
        aqa_loader_free(l);
        aqa_video_dataset_free(tr);
    }
    /* 3. an annotation pointing at no frames: a missing folder */
    tr = open_split(root, "train", AQA_BAD_DATA_FAIL, NULL);
    if (tr) {
        char dir[1100];
        snprintf(dir, sizeof dir, "%s", tr->items[2].frame_dir);
        aqa_video_dataset_free(tr);
        cli_rm_rf(dir);
        tr = open_split(root, "train", AQA_BAD_DATA_FAIL, NULL);
        CHECK(tr == NULL);
        CHECK_MSG(strstr(aqa_last_error(), dir) != NULL, "message \"%s\" does not name %s", aqa_last_error(), dir);
        tr = open_split(root, "train", AQA_BAD_DATA_SKIP, NULL);
        CHECK(tr && tr->summary.skipped_no_frames == 1);
        aqa_video_dataset_free(tr);
    }
    cli_rm_rf(root);
}

/* A cache file of the first format (aqa-features-1: clip and i3d, no maps); 0 on success. */
static int write_v1_cache(const char *path, const char *key, const float *clip, int64_t T, int64_t D,
                          const float *i3d, int64_t N, int64_t C) {
    aqa_st_writer *w = aqa_st_writer_new();
    int bad = !w || aqa_st_writer_add(w, "clip", AQA_ST_F32, 2, (const int64_t[]){T, D}, clip) ||
              aqa_st_writer_add(w, "i3d", AQA_ST_F32, 2, (const int64_t[]){N, C}, i3d) ||
              aqa_st_writer_set_metadata(w, "format", "aqa-features-1") || aqa_st_writer_set_metadata(w, "key", key) ||
              aqa_st_writer_save(w, path);
    aqa_st_writer_free(w);
    return bad;
}

static void test_feature_cache_resume(void) {
    char dir[256];
    snprintf(dir, sizeof dir, "/tmp/aqa_vdfeat_XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    aqa_video_dataset *tr = open_split(g_root, "train", AQA_BAD_DATA_FAIL, NULL);
    CHECK(tr != NULL);
    if (!tr) return;
    const int64_t T = 96, D = 8, N = 9, C = 5, H = 2, W = 3;
    float *clip = malloc((size_t)(T * D) * sizeof *clip), *i3d = malloc((size_t)(N * C) * sizeof *i3d);
    float *map = malloc((size_t)(N * C * H * W) * sizeof *map);
    for (size_t i = 0; i < tr->n_items; i++) {
        const aqa_ann_sample *s = aqa_vd_sample(tr, i);
        char path[1200];
        CHECK(aqa_feature_cache_path(dir, s->key, path, sizeof path) == AQA_OK);
        CHECK(strchr(path + strlen(dir) + 1, '/') == NULL);
        CHECK(!aqa_feature_cache_valid(path, s->key, true, T, D, true, N, C));
        for (int64_t k = 0; k < T * D; k++) clip[k] = (float)(i * 1000 + (size_t)k);
        for (int64_t k = 0; k < N * C; k++) i3d[k] = -(float)(i * 100 + (size_t)k);
        for (int64_t k = 0; k < N * C * H * W; k++) map[k] = (float)(i * 10000 + (size_t)k) + 0.5f;
        /* i3d without its map is not a complete file of this format */
        CHECK(aqa_feature_cache_write(path, s->key, &(aqa_feature_set){clip, i3d, NULL, T, D, N, C, 0, 0}, "test") == AQA_OK);
        CHECK(!aqa_feature_cache_valid(path, s->key, true, T, D, true, N, C));
        CHECK(aqa_feature_cache_write(path, s->key, &(aqa_feature_set){clip, i3d, map, T, D, N, C, H, W}, "test") == AQA_OK);
        CHECK(aqa_feature_cache_valid(path, s->key, true, T, D, true, N, C));
        CHECK(!aqa_feature_cache_valid(path, "someone/else", true, T, D, true, N, C));
        CHECK(!aqa_feature_cache_valid(path, s->key, true, T, D + 1, false, 0, 0));
    }
    /* a truncated file is not valid (resume redoes it) */
    char p0[1200];
    aqa_feature_cache_path(dir, aqa_vd_sample(tr, 0)->key, p0, sizeof p0);
    CHECK(truncate(p0, 100) == 0);
    aqa_clear_error();
    CHECK(!aqa_feature_cache_valid(p0, aqa_vd_sample(tr, 0)->key, true, T, D, true, N, C));
    CHECK_STR(aqa_last_error(), ""); /* no error left behind by the check */
    for (int64_t k = 0; k < T * D; k++) clip[k] = (float)k;
    for (int64_t k = 0; k < N * C; k++) i3d[k] = -(float)k;
    for (int64_t k = 0; k < N * C * H * W; k++) map[k] = (float)k + 0.5f;
    CHECK(aqa_feature_cache_write(p0, aqa_vd_sample(tr, 0)->key, &(aqa_feature_set){clip, i3d, map, T, D, N, C, H, W},
                                  "test") == AQA_OK);
    /* a cache of the first format (no maps) is refused by name, saying to extract again */
    char p1[1200], keep[1300], k0[1300];
    aqa_feature_cache_path(dir, aqa_vd_sample(tr, 1)->key, p1, sizeof p1);
    snprintf(keep, sizeof keep, "%s.v2", p1);
    snprintf(k0, sizeof k0, "%s.v2", p0);
    CHECK(rename(p1, keep) == 0 && write_v1_cache(p1, aqa_vd_sample(tr, 1)->key, clip, T, D, i3d, N, C) == 0);
    CHECK(!aqa_feature_cache_valid(p1, aqa_vd_sample(tr, 1)->key, true, T, D, true, N, C));
    /* the dataset opens from item 0 (still of this format); reading item 1 names the format */
    aqa_video_dataset *old = open_split(g_root, "train", AQA_BAD_DATA_FAIL, dir);
    CHECK_MSG(old != NULL, "open: %s", aqa_last_error());
    if (old) {
        aqa_status rs = aqa_vd_read_features(old, 1, clip, NULL, NULL);
        CHECK_MSG(rs == AQA_EFORMAT && strstr(aqa_last_error(), "\"aqa-features-1\"") &&
                      strstr(aqa_last_error(), "extract again"),
                  "status %d: %s", (int)rs, aqa_last_error());
    }
    aqa_video_dataset_free(old);
    /* with an old file first, opening fails with the same message */
    CHECK(rename(p0, k0) == 0 && write_v1_cache(p0, aqa_vd_sample(tr, 0)->key, clip, T, D, i3d, N, C) == 0);
    old = open_split(g_root, "train", AQA_BAD_DATA_FAIL, dir);
    CHECK_MSG(old == NULL && strstr(aqa_last_error(), "extract again"), "%s", aqa_last_error());
    aqa_video_dataset_free(old);
    CHECK(rename(k0, p0) == 0 && rename(keep, p1) == 0);
    aqa_video_dataset_free(tr);
    /* the loader reads the features back */
    tr = open_split(g_root, "train", AQA_BAD_DATA_FAIL, dir);
    CHECK(tr != NULL);
    if (tr) {
        CHECK_EQ_INT(tr->feat_clip_dim, D);
        CHECK_EQ_INT(tr->feat_i3d_dim, C);
        CHECK_EQ_INT(tr->feat_map_h, H);
        CHECK_EQ_INT(tr->feat_map_w, W);
        aqa_loader_config lc;
        aqa_loader_config_init(&lc);
        lc.batch_size = 4;
        lc.clip_feat = lc.i3d_feat = lc.i3d_map = true;
        aqa_loader *l = aqa_loader_new(tr, &lc);
        aqa_loader_start_epoch(l, 0);
        aqa_batch *b;
        int rows = 0;
        while (aqa_loader_next(l, &b) == AQA_OK && b) {
            CHECK_EQ_INT(b->clip_feat->shape[1], T);
            CHECK_EQ_INT(b->clip_feat->shape[2], D);
            for (int64_t r = 0; r < b->B; r++, rows++) {
                size_t i = b->items[r];
                float want = i == 0 ? 7.0f : (float)(i * 1000 + 7);
                CHECK_NEAR(((float *)aqa_data(b->clip_feat))[r * T * D + 7], want, 0);
                CHECK_NEAR(((float *)aqa_data(b->i3d_feat))[r * N * C + 3], i == 0 ? -3.0f : -(float)(i * 100 + 3), 0);
                CHECK_NEAR(((float *)aqa_data(b->i3d_map))[r * N * C * H * W + 17],
                           i == 0 ? 17.5f : (float)(i * 10000 + 17) + 0.5f, 0);
            }
            aqa_batch_free(b);
        }
        CHECK_EQ_INT(rows, (int)tr->n_items);
        aqa_loader_free(l);
        /* a cache file removed: the dataset says which */
        aqa_video_dataset_free(tr);
        CHECK(remove(p0) == 0);
        tr = open_split(g_root, "train", AQA_BAD_DATA_FAIL, dir);
        CHECK(tr == NULL && strstr(aqa_last_error(), p0) != NULL);
        aqa_video_dataset_free(tr);
    }
    free(clip);
    free(i3d);
    free(map);
    cli_rm_rf(dir);
}

static void test_progress_line(void) {
    aqa_progress p;
    aqa_progress_start(&p, "train epoch 1", 100, false);
    p.done = 25;
    char line[256];
    aqa_progress_format(&p, p.t0 + 5.0, "loss 0.5", line, sizeof line);
    /* 25 items in 5 s: 5 items/s, 75 left: 15 s */
    CHECK_MSG(strstr(line, "25/100") && strstr(line, "5.0 items/s") && strstr(line, "ETA 0:15") &&
                  strstr(line, "loss 0.5"),
              "line: %s", line);
}

/* ---- MTL-AQA, JIGSAWS and Fis-V layouts on tiny generated fixtures --------------------------- */

/* An 8x8 PNG whose every pixel is (r, g, 7): the frame's identity, read back through decoding. */
static int write_tag_png(const char *path, int r, int g) {
    aqa_image *im = aqa_image_new(8, 8);
    if (!im) return -1;
    for (size_t k = 0; k < 64; k++) {
        im->data[3 * k] = (uint8_t)r;
        im->data[3 * k + 1] = (uint8_t)g;
        im->data[3 * k + 2] = 7;
    }
    aqa_status st = aqa_image_save_png(im, path);
    aqa_image_free(im);
    return st == AQA_OK ? 0 : -1;
}

/* Identity transform for 8x8 frames: no resize, centre crop 8x8, v / 255. */
static aqa_frame_transform tag_transform(void) {
    aqa_frame_transform tf;
    memset(&tf, 0, sizeof tf);
    tf.crop_w = tf.crop_h = 8;
    tf.crop_x = tf.crop_y = AQA_CROP_CENTER;
    tf.norm = AQA_NORM_UNIT;
    return tf;
}

/* Decoded channel value back to the byte written. */
static int tag_of(float v) { return (int)(v * 255.0f + 0.5f); }

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Makes the frame folder `dir` (its PNG files in name order) into the lossless video `video`
 * (FFV1) and removes the folder. */
static aqa_status folder_to_video(const char *dir, const char *video) {
    char cmd[1200], line[1024];
    snprintf(cmd, sizeof cmd, "ls %s", dir);
    FILE *p = popen(cmd, "r");
    char *names[1024];
    int n = 0;
    while (p && n < 1024 && fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        names[n++] = strdup(line);
    }
    if (p) pclose(p);
    qsort(names, (size_t)n, sizeof *names, cmp_names);
    aqa_video_writer_options o = aqa_video_writer_defaults();
    o.codec = "ffv1";
    aqa_video_writer *w = NULL;
    aqa_status st = n ? AQA_OK : aqa_fail(AQA_EIO, "%s: no frames", dir);
    for (int k = 0; k < n && !st; k++) {
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, names[k]);
        aqa_image *im = aqa_image_load(path);
        if (!im) st = aqa_last_status();
        if (!st && !w && !(w = aqa_video_writer_open(video, im->width, im->height, &o))) st = aqa_last_status();
        if (!st) st = aqa_video_writer_add(w, im);
        aqa_image_free(im);
    }
    for (int k = 0; k < n; k++) free(names[k]);
    if (w && !st) st = aqa_video_writer_close(w);
    else aqa_video_writer_abort(w);
    if (!st) cli_rm_rf(dir);
    return st;
}

/* Decodes item 0 of ds into frames (clips false) or clips and compares with `want` (n floats). */
static bool same_decode(const aqa_video_dataset *ds, bool clips, int64_t shift, const float *want, size_t n) {
    aqa_frame_transform tf = tag_transform();
    float *got = malloc(n * sizeof *got);
    bool same = got && aqa_vd_decode(ds, 0, &tf, clips, shift, NULL, got) == AQA_OK && !memcmp(got, want, n * sizeof *got);
    if (!same) printf("    decode from the video: %s\n", aqa_last_error());
    free(got);
    return same;
}

static void pk_mtl_record(aqa_pickle_writer *w, int64_t start, int64_t end, double score, double dd,
                          const char *dive) {
    const double judges[7] = {7.0, 7.5, 7.0, 6.5, 7.0, 7.5, 8.0};
    aqa_pkw_dict_begin(w);
    aqa_pkw_str(w, "primary_view");
    aqa_pkw_int(w, 1);
    aqa_pkw_str(w, "start_frame");
    aqa_pkw_int(w, start);
    aqa_pkw_str(w, "end_frame");
    aqa_pkw_int(w, end);
    aqa_pkw_str(w, "final_score");
    aqa_pkw_float(w, score);
    aqa_pkw_str(w, "difficulty");
    aqa_pkw_float(w, dd);
    aqa_pkw_str(w, "judge_scores");
    aqa_pkw_f64_array(w, judges, 7);
    aqa_pkw_str(w, "dive_number");
    aqa_pkw_str(w, dive);
    aqa_pkw_dict_end(w);
}

/* The validation videos held out of a split: a seeded share, disjoint from the rest, together
 * the whole split; the score range of the opened part (or the given one). */
static void test_holdout_and_score_range(void) {
    aqa_vd_config c = quiet_config(g_root, AQA_ANN_FINEDIVING, "train");
    aqa_video_dataset *all = aqa_video_dataset_open(&c);
    c.holdout_fraction = 0.25;
    c.holdout_seed = 5;
    aqa_video_dataset *keep = aqa_video_dataset_open(&c);
    aqa_video_dataset *again = aqa_video_dataset_open(&c);
    c.holdout_take = true;
    aqa_video_dataset *held = aqa_video_dataset_open(&c);
    c.holdout_seed = 6;
    aqa_video_dataset *other = aqa_video_dataset_open(&c);
    CHECK(all && keep && again && held && other);
    if (all && keep && again && held && other) {
        size_t n = all->n_items, want = (size_t)floor(0.25 * (double)n + 0.5);
        CHECK_EQ_INT(held->n_items, want);
        CHECK_EQ_INT(keep->n_items + held->n_items, n);
        int in_both = 0, same = 1, differs = 0;
        for (size_t i = 0; i < keep->n_items; i++)
            for (size_t j = 0; j < held->n_items; j++) in_both += keep->items[i].sample == held->items[j].sample;
        for (size_t i = 0; i < keep->n_items; i++) same &= keep->items[i].sample == again->items[i].sample;
        for (size_t j = 0; j < held->n_items; j++) differs |= held->items[j].sample != other->items[j].sample;
        CHECK_EQ_INT(in_both, 0);
        CHECK(same);
        CHECK(differs); /* another seed holds out other videos (for this set and these seeds) */
        /* the range is the opened part's own */
        double lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < keep->n_items; i++) {
            lo = fmin(lo, aqa_vd_sample(keep, i)->score);
            hi = fmax(hi, aqa_vd_sample(keep, i)->score);
        }
        CHECK_NEAR(keep->score_min, lo, 0);
        CHECK_NEAR(keep->score_max, hi, 0);
    }
    aqa_video_dataset_free(all);
    aqa_video_dataset_free(keep);
    aqa_video_dataset_free(again);
    aqa_video_dataset_free(held);
    aqa_video_dataset_free(other);
    /* a given range is used as given; an empty one, or holding out everything, is an error */
    c = quiet_config(g_root, AQA_ANN_FINEDIVING, "test");
    c.score_lo = -5;
    c.score_hi = 500;
    aqa_video_dataset *t = aqa_video_dataset_open(&c);
    CHECK(t && t->score_min == -5 && t->score_max == 500);
    aqa_video_dataset_free(t);
    c.score_hi = -5;
    CHECK(aqa_video_dataset_open(&c) == NULL);
    CHECK(strstr(aqa_last_error(), "score range") != NULL);
    c = quiet_config(g_root, AQA_ANN_FINEDIVING, "test");
    c.holdout_fraction = 0.99;
    CHECK(aqa_video_dataset_open(&c) == NULL);
    CHECK(strstr(aqa_last_error(), "leaves none") != NULL);
    aqa_clear_error();
}

/* "+ Quality Text": every stage / video text in its four grades, in grade order; an item's true
 * ids are its group's base plus the grade of its score; the lists do not depend on any score. */
static void test_quality_texts(void) {
    aqa_vd_config c = quiet_config(g_root, AQA_ANN_FINEDIVING, "train");
    aqa_video_dataset *plain = aqa_video_dataset_open(&c);
    c.quality_texts = true;
    aqa_video_dataset *q = aqa_video_dataset_open(&c);
    c.split = "test";
    c.score_lo = 0, c.score_hi = 1; /* every test dive graded excellent: other grades, same lists */
    aqa_video_dataset *qt = aqa_video_dataset_open(&c);
    CHECK(plain && q && qt);
    if (plain && q && qt) {
        CHECK_EQ_INT(plain->n_grades, 0);
        CHECK_EQ_INT(q->n_grades, 4);
        CHECK_EQ_INT(q->stage_texts.n, 4 * plain->stage_texts.n);
        CHECK_EQ_INT(q->video_texts.n, 4 * plain->video_texts.n);
        CHECK_EQ_INT(qt->stage_texts.n, q->stage_texts.n);
        for (size_t i = 0; i < q->stage_texts.n && i < qt->stage_texts.n; i++)
            CHECK_STR(q->stage_texts.texts[i], qt->stage_texts.texts[i]);
        char want[512];
        snprintf(want, sizeof want, "%s, of poor quality", plain->stage_texts.texts[0]);
        CHECK_STR(q->stage_texts.texts[0], want);
        snprintf(want, sizeof want, "%s, of excellent quality", plain->stage_texts.texts[0]);
        CHECK_STR(q->stage_texts.texts[3], want);
        for (size_t i = 0; i < q->n_items; i++) {
            const aqa_vd_item *it = &q->items[i];
            aqa_quality_grade g;
            CHECK(aqa_quality_grade_of(aqa_vd_sample(q, i)->score, q->score_min, q->score_max, &g) == AQA_OK);
            for (int k = 0; k < 3; k++) {
                CHECK_EQ_INT(it->stage_text[k], it->stage_grade_base[k] + (int64_t)g);
                CHECK_EQ_INT(it->stage_grade_base[k] % 4, 0);
                CHECK_STR(plain->stage_texts.texts[it->stage_grade_base[k] / 4],
                          plain->stage_texts.texts[plain->items[i].stage_text[k]]);
            }
            CHECK_EQ_INT(it->video_text, it->video_grade_base + (int64_t)g);
        }
        for (size_t i = 0; i < qt->n_items; i++) CHECK_EQ_INT(qt->items[i].video_text - qt->items[i].video_grade_base, 3);
        /* the loader hands out the candidates: every grade of each stage text */
        aqa_loader_config lc;
        aqa_loader_config_init(&lc);
        size_t items[2] = {0, 1};
        aqa_batch *b = NULL;
        CHECK(aqa_batch_build(q, &lc, items, 2, 0, &b) == AQA_OK);
        CHECK(b && b->stage_text_cands && b->video_text_cands);
        if (b && b->stage_text_cands) {
            CHECK_EQ_INT(b->stage_text_cands->shape[2], 4);
            const int64_t *sc = aqa_data(b->stage_text_cands), *vc = aqa_data(b->video_text_cands);
            for (int g = 0; g < 4; g++) {
                CHECK_EQ_INT(sc[1 * 3 * 4 + 2 * 4 + g], q->items[1].stage_grade_base[2] + g); /* row 1, stage 2 */
                CHECK_EQ_INT(vc[4 + g], q->items[1].video_grade_base + g);
            }
        }
        aqa_batch_free(b);
    }
    aqa_video_dataset_free(plain);
    aqa_video_dataset_free(q);
    aqa_video_dataset_free(qt);
}

static void test_mtl_aqa_layout(void) {
    char root[256], p[512];
    snprintf(root, sizeof root, "/tmp/aqa_vd_mtl_XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    /* video 3: whole-video frames 1..110 as <root>/03/%08d.png, R = frame number, G = 3 */
    snprintf(p, sizeof p, "%s/03", root);
    CHECK(mkdir(p, 0755) == 0);
    int wrote = 0;
    for (int f = 1; f <= 110; f++) {
        snprintf(p, sizeof p, "%s/03/%08d.png", root, f);
        wrote += write_tag_png(p, f, 3) == 0;
    }
    CHECK_EQ_INT(wrote, 110);
    /* annotations: (3, 1) frames 20..108 (train), (3, 2) frames 104..110 (test) */
    aqa_pickle_writer *w = aqa_pkw_new();
    aqa_pkw_dict_begin(w);
    pk_pair(w, 3, 1);
    pk_mtl_record(w, 20, 108, 71.4, 3.4, "405B");
    pk_pair(w, 3, 2);
    pk_mtl_record(w, 104, 110, 40.5, 2.0, "101A");
    aqa_pkw_dict_end(w);
    snprintf(p, sizeof p, "%s/final_annotations_dict_with_dive_number.pkl", root);
    CHECK(aqa_pkw_save(w, p) == AQA_OK);
    aqa_pkw_free(w);
    for (int sp = 0; sp < 2; sp++) {
        w = aqa_pkw_new();
        aqa_pkw_list_begin(w);
        pk_pair(w, 3, sp + 1);
        aqa_pkw_list_end(w);
        snprintf(p, sizeof p, "%s/%s_split_0.pkl", root, sp ? "test" : "train");
        CHECK(aqa_pkw_save(w, p) == AQA_OK);
        aqa_pkw_free(w);
    }

    aqa_vd_config c = quiet_config(root, AQA_ANN_MTL_AQA, "train");
    aqa_video_dataset *ds = aqa_video_dataset_open(&c);
    CHECK_MSG(ds != NULL, "open: %s", aqa_last_error());
    if (ds) {
        CHECK_EQ_INT(ds->T, 103);
        CHECK_EQ_INT(ds->N, 10);
        CHECK_EQ_INT(ds->n_items, 1);
        CHECK(ds->fum_boundaries[0] == 3 && ds->fum_boundaries[1] == 8); /* the diving split, set */
        CHECK_STR(aqa_text_set_get(&ds->stage_texts, (size_t)ds->items[0].stage_text[0]),
                  "a diving video of an inward take-off");
        static const int64_t starts[10] = {0, 10, 20, 30, 40, 50, 60, 70, 80, 87};
        for (int k = 0; k < 10; k++) CHECK_EQ_INT(ds->clip_starts[k], starts[k]);
        const aqa_ann_sample *s = aqa_vd_sample(ds, 0);
        CHECK(s != NULL);
        if (s) {
            CHECK_STR(s->key, "03_1");
            CHECK_NEAR(s->score, 71.4, 1e-12);
            CHECK_NEAR(s->difficulty, 3.4, 1e-12);
            CHECK_EQ_INT(s->n_judges, 7);
            CHECK_STR(s->dive_number, "405B");
        }
        /* the 103 frames ending at end_frame 108: 6..108 */
        for (int t = 0; t < 103; t++) CHECK_EQ_INT(ds->items[0].frames[t], 6 + t);
        CHECK(aqa_vd_frame_path(ds, 0, 0, 0, p, sizeof p) == AQA_OK);
        char want[512];
        snprintf(want, sizeof want, "%s/03/00000006.png", root);
        CHECK_STR(p, want);
        aqa_frame_transform tf = tag_transform();
        float *out = malloc((size_t)10 * 3 * 16 * 64 * sizeof *out);
        CHECK(aqa_vd_decode(ds, 0, &tf, false, 0, NULL, out) == AQA_OK);
        int bad = 0;
        for (int t = 0; t < 103; t++) {
            const float *fr = out + (size_t)t * 3 * 64;
            if (tag_of(fr[0]) != 6 + t || tag_of(fr[63]) != 6 + t || tag_of(fr[64]) != 3 || tag_of(fr[128]) != 7)
                bad++;
        }
        CHECK_EQ_INT(bad, 0);
        /* a shift of -2 moves every frame back by 2 */
        CHECK(aqa_vd_decode(ds, 0, &tf, false, -2, NULL, out) == AQA_OK);
        CHECK_EQ_INT(tag_of(out[0]), 4);
        CHECK_EQ_INT(tag_of(out[(size_t)102 * 3 * 64]), 106);
        /* clips [N, 3, 16, H, W]: clip c frame j is sampled frame starts[c] + j */
        CHECK(aqa_vd_decode(ds, 0, &tf, true, 0, NULL, out) == AQA_OK);
        bad = 0;
        for (int k = 0; k < 10; k++)
            for (int j = 0; j < 16; j++) {
                const float *r = out + (((size_t)k * 3 + 0) * 16 + (size_t)j) * 64;
                const float *g = out + (((size_t)k * 3 + 1) * 16 + (size_t)j) * 64;
                if (tag_of(r[0]) != 6 + starts[k] + j || tag_of(g[5]) != 3) bad++;
            }
        CHECK_EQ_INT(bad, 0);
        /* the same frames from <root>/03.mkv (frame number k = its k-th frame) */
        if (aqa_video_available()) {
            float *frames = malloc((size_t)103 * 3 * 64 * sizeof *frames);
            CHECK(aqa_vd_decode(ds, 0, &tf, false, -2, NULL, frames) == AQA_OK);
            snprintf(p, sizeof p, "%s/03", root);
            char video[600];
            snprintf(video, sizeof video, "%s/03.mkv", root);
            CHECK_MSG(folder_to_video(p, video) == AQA_OK, "%s", aqa_last_error());
            aqa_video_dataset *dv = aqa_video_dataset_open(&c);
            CHECK_MSG(dv && !strcmp(dv->items[0].video, video), "open with the video: %s", aqa_last_error());
            if (dv) {
                CHECK(same_decode(dv, true, 0, out, (size_t)10 * 3 * 16 * 64));
                CHECK(same_decode(dv, false, -2, frames, (size_t)103 * 3 * 64));
            }
            aqa_video_dataset_free(dv);
            free(frames);
        }
        free(out);
        aqa_video_dataset_free(ds);
    }
    /* the test dive's frames 104..110: the 103 frames ending at 110 reach back before its start
       (CoRe's rule ignores start_frame): 8..110 */
    c.split = "test";
    ds = aqa_video_dataset_open(&c);
    CHECK_MSG(ds != NULL, "open test: %s", aqa_last_error());
    if (ds) {
        CHECK_EQ_INT(ds->n_items, 1);
        CHECK_EQ_INT(ds->items[0].frames[0], 8);
        CHECK_EQ_INT(ds->items[0].frames[102], 110);
        aqa_video_dataset_free(ds);
    }
    /* a shift of up to -8 would need frame 0: too short, an error under the fail policy */
    c.shift_min = -8;
    ds = aqa_video_dataset_open(&c);
    CHECK(ds == NULL);
    aqa_video_dataset_free(ds);
    aqa_clear_error();
    cli_rm_rf(root);
}

static void test_jigsaws_layout(void) {
    char root[256], p[512];
    snprintf(root, sizeof root, "/tmp/aqa_vd_jig_XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    /* Suturing_B001: 300 frames, R/G = listing position (low, high byte); Suturing_C001: 170 */
    const char *trials[2] = {"Suturing_B001", "Suturing_C001"};
    const int nfr[2] = {300, 170};
    int wrote = 0;
    for (int k = 0; k < 2; k++) {
        snprintf(p, sizeof p, "%s/%s_capture1", root, trials[k]);
        CHECK(mkdir(p, 0755) == 0);
        for (int f = 0; f < nfr[k]; f++) {
            snprintf(p, sizeof p, "%s/%s_capture1/frame_%05d.png", root, trials[k], f + 1);
            wrote += write_tag_png(p, f & 255, f >> 8) == 0;
        }
    }
    CHECK_EQ_INT(wrote, 470);
    const double grs[2][6] = {{2, 3, 4, 5, 1, 2}, {5, 5, 4, 4, 3, 3}};
    aqa_pickle_writer *w = aqa_pkw_new();
    aqa_pkw_dict_begin(w);
    for (int k = 0; k < 2; k++) {
        aqa_pkw_str(w, trials[k]);
        aqa_pkw_list_begin(w);
        for (int j = 0; j < 6; j++) aqa_pkw_float(w, grs[k][j]);
        aqa_pkw_list_end(w);
    }
    aqa_pkw_dict_end(w);
    snprintf(p, sizeof p, "%s/label.pkl", root);
    CHECK(aqa_pkw_save(w, p) == AQA_OK);
    aqa_pkw_free(w);
    w = aqa_pkw_new();
    aqa_pkw_dict_begin(w);
    aqa_pkw_str(w, "Suturing");
    aqa_pkw_list_begin(w);
    for (int k = 0; k < 2; k++) {
        aqa_pkw_list_begin(w);
        aqa_pkw_str(w, trials[k]);
        aqa_pkw_list_end(w);
    }
    aqa_pkw_list_end(w);
    aqa_pkw_dict_end(w);
    snprintf(p, sizeof p, "%s/splits.pkl", root);
    CHECK(aqa_pkw_save(w, p) == AQA_OK);
    aqa_pkw_free(w);

    /* fold 1 is the test: trains on fold 0 = B001 */
    aqa_vd_config c = quiet_config(root, AQA_ANN_JIGSAWS, "Suturing/1/train");
    aqa_video_dataset *ds = aqa_video_dataset_open(&c);
    CHECK_MSG(ds != NULL, "open: %s", aqa_last_error());
    if (ds) {
        CHECK_EQ_INT(ds->T, 160);
        CHECK_EQ_INT(ds->N, 10);
        for (int k = 0; k < 10; k++) CHECK_EQ_INT(ds->clip_starts[k], 16 * k);
        CHECK_EQ_INT(ds->n_items, 1);
        const aqa_ann_sample *s = aqa_vd_sample(ds, 0);
        CHECK(s != NULL);
        if (s) {
            CHECK_STR(s->key, "Suturing_B001");
            CHECK_NEAR(s->score, 17.0, 1e-12);
            CHECK_EQ_INT(s->n_sub_scores, 6);
        }
        const aqa_vd_item *it = &ds->items[0];
        CHECK_EQ_INT(it->n_listing, 300);
        /* np.linspace(0, 299, 160).astype(int): floor(t * 299 / 159), exact */
        for (int t = 0; t < 160; t++) CHECK_EQ_INT(it->frames[t], (t * 299) / 159);
        CHECK(aqa_vd_frame_path(ds, 0, 159, 0, p, sizeof p) == AQA_OK);
        char want[512];
        snprintf(want, sizeof want, "%s/Suturing_B001_capture1/frame_00300.png", root);
        CHECK_STR(p, want);
        aqa_frame_transform tf = tag_transform();
        float *out = malloc((size_t)160 * 3 * 64 * sizeof *out);
        CHECK(aqa_vd_decode(ds, 0, &tf, false, 0, NULL, out) == AQA_OK);
        int bad = 0;
        for (int t = 0; t < 160; t++) {
            const float *fr = out + (size_t)t * 3 * 64;
            int pos = tag_of(fr[0]) + 256 * tag_of(fr[64]);
            if (pos != (t * 299) / 159 || tag_of(fr[128 + 9]) != 7) bad++;
        }
        CHECK_EQ_INT(bad, 0);
        /* the same from <trial>_capture1.mkv: listing position p = frame p */
        if (aqa_video_available()) {
            snprintf(p, sizeof p, "%s/Suturing_B001_capture1", root);
            char video[600];
            snprintf(video, sizeof video, "%s.mkv", p);
            CHECK_MSG(folder_to_video(p, video) == AQA_OK, "%s", aqa_last_error());
            aqa_video_dataset *dv = aqa_video_dataset_open(&c);
            CHECK_MSG(dv != NULL, "open with the video: %s", aqa_last_error());
            if (dv) {
                CHECK_STR(dv->items[0].video, video);
                for (int t = 0; t < 160; t++) CHECK_EQ_INT(dv->items[0].frames[t], (t * 299) / 159);
                CHECK(same_decode(dv, false, 0, out, (size_t)160 * 3 * 64));
            }
            aqa_video_dataset_free(dv);
        }
        free(out);
        /* graded texts: the four grades of the task, whatever the scores; the training trial
           (score 17 alone in its split: range [17, 18)) is graded poor */
        CHECK_EQ_INT(ds->n_grades, 4);
        CHECK_EQ_INT(ds->stage_texts.n, 4);
        CHECK_STR(ds->stage_texts.texts[0], "a video of a poor suturing");
        CHECK_STR(ds->stage_texts.texts[3], "a video of an excellent suturing");
        CHECK_EQ_INT(ds->items[0].stage_grade_base[1], 0);
        CHECK_EQ_INT(ds->items[0].stage_text[1], 0);
        /* USDL/MUSDL's judges are the 6 GRS items */
        aqa_loader_config lc;
        aqa_loader_config_init(&lc);
        size_t item = 0;
        aqa_batch *b = NULL;
        CHECK(aqa_batch_build(ds, &lc, &item, 1, 0, &b) == AQA_OK && b);
        if (b) {
            CHECK_EQ_INT(((int64_t *)aqa_data(b->judge_count))[0], 6);
            for (int j = 0; j < 6; j++) CHECK_NEAR(((float *)aqa_data(b->judges))[j], grs[0][j], 0);
            CHECK_NEAR(((float *)aqa_data(b->judges))[6], 0, 0);
        }
        aqa_batch_free(b);
        aqa_video_dataset_free(ds);
    }
    c.split = "Suturing/1/test"; /* fold 1 = C001 */
    ds = aqa_video_dataset_open(&c);
    CHECK_MSG(ds != NULL, "open fold 1 test: %s", aqa_last_error());
    if (ds) {
        CHECK_EQ_INT(ds->n_items, 1);
        const aqa_ann_sample *s = aqa_vd_sample(ds, 0);
        if (s) CHECK_NEAR(s->score, 24.0, 1e-12);
        /* 170 frames onto 160: np.linspace(0, 169, 160).astype(int) repeats some */
        for (int t = 0; t < 160; t++) CHECK_EQ_INT(ds->items[0].frames[t], (t * 169) / 159);
        aqa_video_dataset_free(ds);
    }
    cli_rm_rf(root);
}

static void test_fisv_layout(void) {
    char root[256], p[512];
    snprintf(root, sizeof root, "/tmp/aqa_vd_fisv_XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    snprintf(p, sizeof p, "%s/feat", root);
    CHECK(mkdir(p, 0755) == 0);
    /* programs 17 (6 clips) and 23 (9 clips) train, 5 (4 clips) test; value = id*100 + row*10 + col */
    const int ids[3] = {17, 23, 5}, rows[3] = {6, 9, 4};
    for (int k = 0; k < 3; k++) {
        float x[9 * 4];
        for (int r = 0; r < rows[k]; r++)
            for (int cc = 0; cc < 4; cc++) x[r * 4 + cc] = (float)(ids[k] * 100 + r * 10 + cc);
        snprintf(p, sizeof p, "%s/feat/%d.npy", root, ids[k]);
        CHECK(write_npy_2d(p, x, rows[k], 4) == 0);
    }
    snprintf(p, sizeof p, "%s/train_dataset.txt", root);
    FILE *f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "17 40.5 35.25 1.0\n23 60.0 41.5 0.0\n");
        fclose(f);
    }
    snprintf(p, sizeof p, "%s/test_dataset.txt", root);
    f = fopen(p, "w");
    CHECK(f != NULL);
    if (f) {
        fprintf(f, "5 30.0 30.0 2.0\n");
        fclose(f);
    }
    char feat[300];
    snprintf(feat, sizeof feat, "%s/feat", root);
    aqa_vd_config c = quiet_config(root, AQA_ANN_FISV, "train");
    c.features_dir = feat;
    aqa_video_dataset *ds = aqa_video_dataset_open(&c);
    CHECK_MSG(ds != NULL, "open: %s", aqa_last_error());
    if (ds) {
        CHECK_EQ_INT(ds->n_items, 2);
        CHECK_EQ_INT(ds->N, 6); /* the first file's count */
        CHECK_EQ_INT(ds->feat_i3d_dim, 4);
        const aqa_ann_sample *s0 = aqa_vd_sample(ds, 0), *s1 = aqa_vd_sample(ds, 1);
        CHECK(s0 && s1);
        if (s0 && s1) {
            CHECK_STR(s0->video, "17");
            CHECK_NEAR(s0->score, 40.5 + 35.25 - 1.0, 1e-12);
            CHECK_EQ_INT(s0->n_sub_scores, 3);
            CHECK_NEAR(s0->sub_scores[0], 40.5, 1e-12);
            CHECK_NEAR(s0->sub_scores[1], 35.25, 1e-12);
            CHECK_NEAR(s0->sub_scores[2], 1.0, 1e-12);
            CHECK_STR(s1->video, "23");
            CHECK_NEAR(s1->score, 101.5, 1e-12);
        }
        float out[6 * 4];
        CHECK(aqa_vd_read_features(ds, 0, NULL, out, NULL) == AQA_OK);
        for (int r = 0; r < 6; r++)
            for (int cc = 0; cc < 4; cc++) CHECK_NEAR(out[r * 4 + cc], 1700 + r * 10 + cc, 0);
        /* 9 rows resampled to 6: np.linspace(0, 8, 6).astype(int) = 0, 1, 3, 4, 6, 8 */
        static const int pick[6] = {0, 1, 3, 4, 6, 8};
        CHECK(aqa_vd_read_features(ds, 1, NULL, out, NULL) == AQA_OK);
        for (int r = 0; r < 6; r++)
            for (int cc = 0; cc < 4; cc++) CHECK_NEAR(out[r * 4 + cc], 2300 + pick[r] * 10 + cc, 0);
        aqa_video_dataset_free(ds);
    }
    /* MVLA on Fis-V: per-clip CLIP features (17: 5 rows, 23: 12 rows, width 3; value = -(id*100 +
     * row*10 + col)) resampled to the N = 6 of the CBP files; the VLP branch sees T = N steps */
    snprintf(p, sizeof p, "%s/clipfeat", root);
    CHECK(mkdir(p, 0755) == 0);
    const int crows[2] = {5, 12};
    for (int k = 0; k < 2; k++) {
        float x[12 * 3];
        for (int r = 0; r < crows[k]; r++)
            for (int cc = 0; cc < 3; cc++) x[r * 3 + cc] = -(float)(ids[k] * 100 + r * 10 + cc);
        snprintf(p, sizeof p, "%s/clipfeat/%d.npy", root, ids[k]);
        CHECK(write_npy_2d(p, x, crows[k], 3) == 0);
    }
    char clipfeat[300];
    snprintf(clipfeat, sizeof clipfeat, "%s/clipfeat", root);
    c.clip_features_dir = clipfeat;
    ds = aqa_video_dataset_open(&c);
    CHECK_MSG(ds != NULL, "open with CLIP features: %s", aqa_last_error());
    if (ds) {
        CHECK(ds->N == 6 && ds->T == 6 && ds->clip_len == 1 && ds->feat_clip_dim == 3 && ds->feat_i3d_dim == 4);
        CHECK(ds->fum_boundaries[0] == 2 && ds->fum_boundaries[1] == 4); /* thirds */
        float clip[6 * 3], cbp[6 * 4];
        CHECK(aqa_vd_read_features(ds, 0, clip, cbp, NULL) == AQA_OK);
        static const int pick5[6] = {0, 0, 1, 2, 3, 4}; /* np.linspace(0, 4, 6).astype(int) */
        for (int r = 0; r < 6; r++) CHECK_NEAR(clip[r * 3 + 2], -(1700 + pick5[r] * 10 + 2), 0);
        CHECK_NEAR(cbp[5 * 4], 1750, 0);
        /* a width that differs from the first file's is named */
        float y[4 * 2] = {0};
        snprintf(p, sizeof p, "%s/clipfeat/23.npy", root);
        CHECK(write_npy_2d(p, y, 4, 2) == 0);
        CHECK(aqa_vd_read_features(ds, 1, clip, NULL, NULL) != AQA_OK && strstr(aqa_last_error(), "23.npy"));
        aqa_video_dataset_free(ds);
    }
    c.clip_features_dir = NULL;

    /* test split with N forced to 8: 4 rows stretched by repetition (linspace(0, 3, 8) = 0,0,0,1,1,2,2,3) */
    c.split = "test";
    c.num_clips = 8;
    ds = aqa_video_dataset_open(&c);
    CHECK_MSG(ds != NULL, "open test: %s", aqa_last_error());
    if (ds) {
        CHECK_EQ_INT(ds->N, 8);
        const aqa_ann_sample *s = aqa_vd_sample(ds, 0);
        if (s) CHECK_NEAR(s->score, 58.0, 1e-12);
        static const int pick[8] = {0, 0, 0, 1, 1, 2, 2, 3};
        float out[8 * 4];
        CHECK(aqa_vd_read_features(ds, 0, NULL, out, NULL) == AQA_OK);
        for (int r = 0; r < 8; r++) CHECK_NEAR(out[r * 4 + 1], 500 + pick[r] * 10 + 1, 0);
        aqa_video_dataset_free(ds);
    }
    /* a missing feature file fails at open under the fail policy, naming the file */
    snprintf(p, sizeof p, "%s/feat/5.npy", root);
    remove(p);
    ds = aqa_video_dataset_open(&c);
    CHECK(ds == NULL);
    CHECK(ds != NULL || strstr(aqa_last_error(), "5.npy") != NULL);
    aqa_video_dataset_free(ds);
    aqa_clear_error();
    cli_rm_rf(root);
}

/* The synthetic set's untrimmed competition videos (lossless) in place of its frame folders: the
 * same sampled frames and clips, with the training augmentation too; a video too short for its
 * dives is an error naming it and the frame. */
static void test_synthetic_from_videos(void) {
    if (!aqa_video_available()) {
        SKIP("aqa was built without FFmpeg");
        return;
    }
    char videos[512], shortv[512], path[1200];
    snprintf(videos, sizeof videos, "%s/videos", g_root);
    CHECK_MSG(aqa_synthetic_write_videos(&g_syn, videos, "mkv", "ffv1", false) == AQA_OK, "%s", aqa_last_error());
    aqa_video_dataset *df = open_split(g_root, "test", AQA_BAD_DATA_FAIL, NULL);
    aqa_vd_config c = quiet_config(g_root, AQA_ANN_FINEDIVING, "test");
    c.frames_root = videos;
    aqa_video_dataset *dv = aqa_video_dataset_open(&c);
    CHECK_MSG(df && dv, "open: %s", aqa_last_error());
    if (!df || !dv) goto done;
    CHECK_EQ_INT(dv->n_items, df->n_items);
    aqa_frame_transform tfs[2] = {aqa_frame_transform_clip(16), aqa_frame_transform_i3d(24, 16)};
    size_t per[2] = {(size_t)96 * 3 * 16 * 16, (size_t)9 * 3 * 16 * 16 * 16};
    float *a = malloc(per[1] * sizeof *a), *b = malloc(per[1] * sizeof *b);
    int differ = 0;
    for (size_t i = 0; i < dv->n_items; i++) {
        snprintf(path, sizeof path, "%s/%s.mkv", videos, aqa_vd_sample(dv, i)->video);
        CHECK_STR(dv->items[i].video, path);
        for (int k = 0; k < 2; k++) {
            aqa_vd_augment aug = {aqa_seed_mix(7, i), 0.5}; /* a random crop and flip, the same for both */
            CHECK(aqa_vd_decode(df, i, &tfs[k], k == 1, 0, k ? &aug : NULL, a) == AQA_OK);
            CHECK_MSG(aqa_vd_decode(dv, i, &tfs[k], k == 1, 0, k ? &aug : NULL, b) == AQA_OK, "%s", aqa_last_error());
            differ += memcmp(a, b, per[k] * sizeof *a) != 0;
        }
    }
    CHECK_EQ_INT(differ, 0);
    free(a);
    free(b);
    /* a video that ends before its dives: the decode names the video and the frame */
    snprintf(shortv, sizeof shortv, "%s/short", g_root);
    mkdir(shortv, 0755);
    const aqa_ann_sample *s0 = aqa_vd_sample(dv, 0);
    snprintf(path, sizeof path, "%s/%s.mkv", shortv, s0->video);
    aqa_video_writer *w = aqa_video_writer_open(path, 32, 32, NULL);
    aqa_image *im = aqa_image_new(32, 32);
    for (int f = 0; w && f < 30; f++) aqa_video_writer_add(w, im);
    CHECK(w && aqa_video_writer_close(w) == AQA_OK);
    aqa_image_free(im);
    aqa_video_dataset_free(dv);
    c.frames_root = shortv;
    c.policy = AQA_BAD_DATA_SKIP; /* the other videos are missing: left out */
    dv = aqa_video_dataset_open(&c);
    CHECK_MSG(dv != NULL, "%s", aqa_last_error());
    if (dv) {
        aqa_frame_transform tf = aqa_frame_transform_clip(16);
        float *out = malloc(per[0] * sizeof *out);
        CHECK(aqa_vd_decode(dv, 0, &tf, false, 0, NULL, out) == AQA_EFORMAT);
        CHECK_MSG(strstr(aqa_last_error(), path) && strstr(aqa_last_error(), "ends at frame 29"), "%s", aqa_last_error());
        free(out);
    }
    aqa_clear_error();
done:
    aqa_video_dataset_free(df);
    aqa_video_dataset_free(dv);
}

int main(void) {
    snprintf(g_root, sizeof g_root, "/tmp/aqa_vdset_XXXXXX");
    if (!mkdtemp(g_root)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    aqa_synthetic_config_init(&g_syn);
    g_syn.out_dir = g_root;
    g_syn.n_videos = 16;
    g_syn.seed = test_seed("synthetic set");
    g_syn.width = g_syn.height = 32;
    g_syn.min_frames = 40;
    g_syn.max_frames = 120;
    g_syn.dives_per_video = 4;
    g_syn.threads = 2;
    if (aqa_synthetic_generate(&g_syn) != AQA_OK || aqa_synthetic_plan(&g_syn, &g_dives, &g_n_dives) != AQA_OK) {
        printf("FAIL setup: synthetic set: %s\n", aqa_last_error());
        cli_rm_rf(g_root);
        return 1;
    }
    RUN(test_linspace_matches_numpy);
    RUN(test_clip_starts);
    RUN(test_tsa_boundaries);
    RUN(test_sampling_on_synthetic);
    RUN(test_stage_template);
    RUN(test_fum_boundaries);
    RUN(test_exemplar_rules);
    RUN(test_shuffle_determinism);
    RUN(test_threaded_loader);
    RUN(test_sharded_loader);
    RUN(test_bad_data_policy);
    RUN(test_feature_cache_resume);
    RUN(test_progress_line);
    RUN(test_holdout_and_score_range);
    RUN(test_quality_texts);
    RUN(test_mtl_aqa_layout);
    RUN(test_jigsaws_layout);
    RUN(test_fisv_layout);
    RUN(test_synthetic_from_videos);
    free(g_dives);
    cli_rm_rf(g_root);
    return test_finish();
}
