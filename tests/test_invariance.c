/* test_invariance.c: no test label reaches a prediction.
 *
 * For each dataset shape (FineDiving, MTL-AQA, JIGSAWS and Fis-V annotation files written here
 * with seeded random labels, plus cached random features and text embeddings, as extract_features
 * would leave them), every head and every setting, a tiny model is trained for a few steps with
 * the training code of train_mvla (examples/mvla_run.h) and predicts the test split.  This runs
 * twice: on the labels as written, and after the test split's scores, judge scores and sub-scores
 * were permuted among its videos with one of them moved far outside every range.  Every test
 * prediction must be bit-identical between the two, and so must the text lists the feature cache
 * is checked against.  Training labels may reach a prediction (through the trained model and as
 * exemplar scores); the evaluated split's labels may not. */
#define _GNU_SOURCE
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/feature_cache.h"
#include "examples/mvla_run.h"
#include "io/pickle_write.h"
#include "tensor/tensor_file.h"
#include "tests/cli_testlib.h"
#include "tests/fixtures.h"
#include "tests/testlib.h"

#define FX_MAX 32   /* samples per fixture */
#define FX_T 32     /* frames per video */
#define FX_N 8      /* clips per video (MS-LSTM needs 8 steps) */
#define FX_D 8      /* CLIP feature and text width */
#define FX_C 64     /* I3D feature width (FAM: a multiple of 16; HGCN: frame width C / 16 a multiple of 4) */
#define FX_FISV_ROWS 8

/* The labels of one sample (what the perturbation changes) and its fixed attributes. */
typedef struct fx_sample {
    double score;           /* FineDiving dive_score, MTL-AQA final_score (JIGSAWS / Fis-V: derived) */
    double judges[7];       /* diving judges */
    double sub[6];          /* JIGSAWS GRS items; Fis-V {TES, PCS, deductions} */
    double dd;              /* difficulty (diving) */
    const char *dive;       /* dive number (diving) */
    int test;               /* in the test split */
} fx_sample;

typedef struct fx_set {
    aqa_ann_dataset kind;
    int n;
    fx_sample s[FX_MAX];
} fx_set;

static uint64_t g_rng;
static double urand(void) {
    g_rng ^= g_rng << 13, g_rng ^= g_rng >> 7, g_rng ^= g_rng << 17;
    return (double)(g_rng >> 11) / 9007199254740992.0;
}

/* Seeded random labels; every fourth sample is a test sample. */
static void fx_labels(fx_set *f, aqa_ann_dataset kind, int n) {
    static const char *dives[4] = {"107b", "207c", "307c", "407c"};
    static const double dds[4] = {3.0, 3.3, 3.4, 3.2};
    memset(f, 0, sizeof *f);
    f->kind = kind;
    f->n = n;
    for (int i = 0; i < n; i++) {
        fx_sample *s = &f->s[i];
        s->test = i % 4 == 3;
        s->dive = dives[i % 4 == 3 ? (i / 4) % 4 : i % 3];
        s->dd = dds[i % 4 == 3 ? (i / 4) % 4 : i % 3];
        for (int j = 0; j < 7; j++) s->judges[j] = floor(2 * (4 + 6 * urand())) / 2;
        s->score = s->dd * (s->judges[2] + s->judges[3] + s->judges[4]);
        for (int j = 0; j < 6; j++) s->sub[j] = kind == AQA_ANN_JIGSAWS ? 1 + floor(5 * urand()) : 0;
        if (kind == AQA_ANN_FISV) s->sub[0] = 20 + 60 * urand(), s->sub[1] = 20 + 40 * urand(), s->sub[2] = floor(3 * urand());
    }
}

/* The test samples' labels rotated by one among themselves; the first test sample's labels then
 * leave every range (scores far above the maximum, judges and items out of their scale). */
static void fx_perturb(fx_set *f) {
    int idx[FX_MAX] = {0}, k = 0;
    for (int i = 0; i < f->n; i++)
        if (f->s[i].test) idx[k++] = i;
    fx_sample first = f->s[idx[0]];
    for (int j = 0; j + 1 < k; j++) {
        fx_sample *d = &f->s[idx[j]], *src = &f->s[idx[j + 1]];
        d->score = src->score;
        memcpy(d->judges, src->judges, sizeof d->judges);
        memcpy(d->sub, src->sub, sizeof d->sub);
    }
    fx_sample *last = &f->s[idx[k - 1]];
    last->score = first.score;
    memcpy(last->judges, first.judges, sizeof last->judges);
    memcpy(last->sub, first.sub, sizeof last->sub);
    fx_sample *out = &f->s[idx[0]];
    out->score += 250;
    for (int j = 0; j < 7; j++) out->judges[j] = 14.5;
    for (int j = 0; j < 6; j++) out->sub[j] += 40;
}

/* ---- annotation files ----------------------------------------------------------------------- */

static void key_of(const fx_set *f, int i, char *buf, size_t n) {
    switch (f->kind) {
    case AQA_ANN_FINEDIVING: snprintf(buf, n, "FxVideo%d/%d", i / 8, i % 8 + 1); break;
    case AQA_ANN_MTL_AQA: snprintf(buf, n, "%02d_%d", i / 8 + 1, i % 8 + 1); break;
    case AQA_ANN_JIGSAWS: snprintf(buf, n, "%s_B%03d", (i / 4) % 2 ? "Knot_Tying" : "Suturing", i + 1); break;
    default: snprintf(buf, n, "%d", 100 + i); break;
    }
}

static void pk_diving_key(aqa_pickle_writer *w, const fx_set *f, int i) {
    if (f->kind == AQA_ANN_MTL_AQA) {
        pk_pair(w, i / 8 + 1, i % 8 + 1);
        return;
    }
    char v[32];
    snprintf(v, sizeof v, "FxVideo%d", i / 8);
    aqa_pkw_tuple_begin(w);
    aqa_pkw_str(w, v);
    aqa_pkw_int(w, i % 8 + 1);
    aqa_pkw_tuple_end(w);
}

static int save(aqa_pickle_writer *w, const char *dir, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int rc = aqa_pkw_save(w, p) != AQA_OK;
    aqa_pkw_free(w);
    return rc;
}

static int write_split_lists(const fx_set *f, const char *dir, const char *train, const char *test) {
    int rc = 0;
    for (int sp = 0; sp < 2; sp++) {
        aqa_pickle_writer *w = aqa_pkw_new();
        aqa_pkw_list_begin(w);
        for (int i = 0; i < f->n; i++)
            if (f->s[i].test == sp) pk_diving_key(w, f, i);
        aqa_pkw_list_end(w);
        rc |= save(w, dir, sp ? test : train);
    }
    return rc;
}

/* FineDiving: 60 frames per dive labelled take-off (15) | flight (30) | entry (15). */
static int write_finediving(const fx_set *f, const char *dir) {
    aqa_pickle_writer *fine = aqa_pkw_new(), *coarse = aqa_pkw_new();
    aqa_pkw_dict_begin(fine);
    aqa_pkw_dict_begin(coarse);
    int64_t labels[60], transit[2] = {14, 44};
    for (int t = 0; t < 60; t++) labels[t] = t < 15 ? 1 : t < 45 ? 14 : 36;
    for (int i = 0; i < f->n; i++) {
        const fx_sample *s = &f->s[i];
        pk_diving_key(fine, f, i);
        aqa_pkw_dict_begin(fine);
        aqa_pkw_str(fine, "action_type"), aqa_pkw_str(fine, s->dive);
        aqa_pkw_str(fine, "dive_score"), aqa_pkw_float(fine, s->score);
        aqa_pkw_str(fine, "difficulty"), aqa_pkw_float(fine, s->dd);
        aqa_pkw_str(fine, "steps_transit_frames"), aqa_pkw_i64_array(fine, transit, 2);
        aqa_pkw_str(fine, "frames_labels"), aqa_pkw_i64_array(fine, labels, 60);
        aqa_pkw_dict_end(fine);
        pk_diving_key(coarse, f, i);
        aqa_pkw_dict_begin(coarse);
        aqa_pkw_str(coarse, "action_type"), aqa_pkw_str(coarse, s->dive);
        aqa_pkw_str(coarse, "start_frame"), aqa_pkw_int(coarse, 100 * i);
        aqa_pkw_str(coarse, "end_frame"), aqa_pkw_int(coarse, 100 * i + 59);
        aqa_pkw_str(coarse, "dive_score"), aqa_pkw_float(coarse, s->score);
        aqa_pkw_str(coarse, "difficulty"), aqa_pkw_float(coarse, s->dd);
        aqa_pkw_str(coarse, "judge_scores"), aqa_pkw_f64_array(coarse, s->judges, 7);
        aqa_pkw_dict_end(coarse);
    }
    aqa_pkw_dict_end(fine);
    aqa_pkw_dict_end(coarse);
    int rc = save(fine, dir, "FineDiving_fine-grained_annotation.pkl");
    rc |= save(coarse, dir, "FineDiving_coarse_annotation.pkl");
    return rc | write_split_lists(f, dir, "train_split.pkl", "test_split.pkl");
}

static int write_mtl_aqa(const fx_set *f, const char *dir) {
    aqa_pickle_writer *w = aqa_pkw_new();
    aqa_pkw_dict_begin(w);
    for (int i = 0; i < f->n; i++) {
        const fx_sample *s = &f->s[i];
        char dn[8];
        snprintf(dn, sizeof dn, "%.3s%c", s->dive, s->dive[3] - 'a' + 'A');
        pk_diving_key(w, f, i);
        aqa_pkw_dict_begin(w);
        aqa_pkw_str(w, "start_frame"), aqa_pkw_int(w, 200 * (i % 8) + 1);
        aqa_pkw_str(w, "end_frame"), aqa_pkw_int(w, 200 * (i % 8) + 120);
        aqa_pkw_str(w, "final_score"), aqa_pkw_float(w, s->score);
        aqa_pkw_str(w, "difficulty"), aqa_pkw_float(w, s->dd);
        aqa_pkw_str(w, "judge_scores"), aqa_pkw_f64_array(w, s->judges, 7);
        aqa_pkw_str(w, "dive_number"), aqa_pkw_str(w, dn);
        aqa_pkw_dict_end(w);
    }
    aqa_pkw_dict_end(w);
    int rc = save(w, dir, "final_annotations_dict_with_dive_number.pkl");
    return rc | write_split_lists(f, dir, "train_split_0.pkl", "test_split_0.pkl");
}

/* JIGSAWS: samples 4k..4k+3 belong to task k % 2 (Suturing, Knot_Tying); the test samples
 * (i % 4 == 3) form fold 1 of their task, the others folds 0, 2 and 3. */
static int write_jigsaws(const fx_set *f, const char *dir) {
    aqa_pickle_writer *w = aqa_pkw_new();
    aqa_pkw_dict_begin(w);
    for (int i = 0; i < f->n; i++) {
        char key[64];
        key_of(f, i, key, sizeof key);
        aqa_pkw_str(w, key);
        aqa_pkw_list_begin(w);
        for (int j = 0; j < 6; j++) aqa_pkw_float(w, f->s[i].sub[j]);
        aqa_pkw_list_end(w);
    }
    aqa_pkw_dict_end(w);
    int rc = save(w, dir, "label.pkl");
    w = aqa_pkw_new();
    aqa_pkw_dict_begin(w);
    for (int task = 0; task < 2; task++) {
        aqa_pkw_str(w, task ? "Knot_Tying" : "Suturing");
        aqa_pkw_list_begin(w);
        for (int fold = 0; fold < 4; fold++) {
            aqa_pkw_list_begin(w);
            for (int i = 0; i < f->n; i++) {
                static const int fold_of[4] = {0, 2, 3, 1};
                if ((i / 4) % 2 != task || fold_of[i % 4] != fold) continue;
                char key[64];
                key_of(f, i, key, sizeof key);
                aqa_pkw_str(w, key);
            }
            aqa_pkw_list_end(w);
        }
        aqa_pkw_list_end(w);
    }
    aqa_pkw_dict_end(w);
    return rc | save(w, dir, "splits.pkl");
}

static int write_fisv(const fx_set *f, const char *dir) {
    int rc = 0;
    for (int sp = 0; sp < 2; sp++) {
        char p[1024];
        snprintf(p, sizeof p, "%s/%s_dataset.txt", dir, sp ? "test" : "train");
        FILE *o = fopen(p, "w");
        if (!o) return 1;
        for (int i = 0; i < f->n; i++)
            if (f->s[i].test == sp) fprintf(o, "%d %.17g %.17g %.17g\n", 100 + i, f->s[i].sub[0], f->s[i].sub[1], f->s[i].sub[2]);
        rc |= fclose(o) != 0;
    }
    return rc;
}

/* Random features of every sample (they do not depend on the labels). */
static int write_features(const fx_set *f, const char *dir) {
    char feat[1024], p[1200], key[64];
    snprintf(feat, sizeof feat, "%s/feat", dir);
    mkdir(feat, 0755);
    float clip[FX_T * FX_D], i3d[(FX_FISV_ROWS > FX_N ? FX_FISV_ROWS : FX_N) * FX_C];
    for (int i = 0; i < f->n; i++) {
        for (int k = 0; k < FX_T * FX_D; k++) clip[k] = (float)(urand() * 2 - 1);
        for (int k = 0; k < FX_FISV_ROWS * FX_C; k++) i3d[k] = (float)(urand() * 2 - 1);
        key_of(f, i, key, sizeof key);
        if (f->kind == AQA_ANN_FISV) {
            snprintf(p, sizeof p, "%s/%s.npy", feat, key);
            if (write_npy_2d(p, i3d, FX_FISV_ROWS, FX_C)) return 1;
            continue;
        }
        if (aqa_feature_cache_path(feat, key, p, sizeof p) ||
            aqa_feature_cache_write(p, key,
                                    &(aqa_feature_set){.clip = clip, .i3d = i3d, .T = FX_T, .D = FX_D, .N = FX_N, .C = FX_C},
                                    "test_invariance"))
            return 1;
    }
    return 0;
}

/* A pseudo-random embedding of each text, seeded by the text itself (so equal texts get equal
 * rows whatever their position). */
static aqa_tensor *embed(const aqa_text_set *ts) {
    float *x = malloc((ts->n * FX_D + 1) * sizeof *x);
    for (size_t i = 0; i < ts->n; i++) {
        uint64_t h = 1469598103934665603ull;
        for (const char *c = ts->texts[i]; *c; c++) h = (h ^ (unsigned char)*c) * 1099511628211ull;
        for (int k = 0; k < FX_D; k++) {
            h ^= h << 13, h ^= h >> 7, h ^= h << 17;
            x[i * FX_D + (size_t)k] = (float)((double)(h >> 11) / 9007199254740992.0 * 2 - 1);
        }
    }
    aqa_tensor *t = aqa_from_data(x, 2, (int64_t[]){(int64_t)ts->n, FX_D}, AQA_F32);
    free(x);
    return t;
}

/* The text tables of the dataset as extract_features writes them (texts.safetensors and the two
 * lists), from the dataset opened over all its samples; with `quality` the graded dive texts ("+
 * Quality Text") into texts_quality.safetensors. */
static int write_texts(const fx_set *f, const char *dir, bool quality) {
    char feat[1024], p[1200];
    snprintf(feat, sizeof feat, "%s/feat", dir);
    aqa_vd_config vc;
    aqa_vd_config_init(&vc);
    vc.root = dir;
    vc.dataset = f->kind;
    vc.features_dir = feat;
    vc.num_frames = FX_T;
    vc.num_clips = FX_N;
    vc.clip_stride = 2;
    vc.quality_texts = quality;
    vc.quiet = true;
    aqa_video_dataset *ds = aqa_video_dataset_open(&vc);
    if (!ds) return 1;
    aqa_tensor *st = embed(&ds->stage_texts), *vt = embed(&ds->video_texts);
    snprintf(p, sizeof p, "%s/%s.safetensors", feat, quality ? "texts_quality" : "texts");
    int rc = aqa_save_tensors(p, 2, (const char *[]){"stage_text", "video_text"}, (aqa_tensor *[]){st, vt}, 0, NULL,
                              NULL) != AQA_OK;
    if (!quality) {
        snprintf(p, sizeof p, "%s/stage_texts.txt", feat);
        rc |= aqa_text_set_save(&ds->stage_texts, p) != AQA_OK;
        snprintf(p, sizeof p, "%s/video_texts.txt", feat);
        rc |= aqa_text_set_save(&ds->video_texts, p) != AQA_OK;
    }
    aqa_tensor_free(st);
    aqa_tensor_free(vt);
    aqa_video_dataset_free(ds);
    return rc;
}

static int write_fixture(const fx_set *f, const char *dir) {
    mkdir(dir, 0755);
    int rc;
    switch (f->kind) {
    case AQA_ANN_FINEDIVING: rc = write_finediving(f, dir); break;
    case AQA_ANN_MTL_AQA: rc = write_mtl_aqa(f, dir); break;
    case AQA_ANN_JIGSAWS: rc = write_jigsaws(f, dir); break;
    default: rc = write_fisv(f, dir); break;
    }
    uint64_t keep = g_rng;
    g_rng = 0x5EEDF00Dull; /* the same features for both label sets */
    rc = rc || write_features(f, dir);
    g_rng = keep;
    bool dives = f->kind == AQA_ANN_FINEDIVING || f->kind == AQA_ANN_MTL_AQA;
    return rc || (f->kind != AQA_ANN_FISV && write_texts(f, dir, false)) || (dives && write_texts(f, dir, true));
}

/* ---- one run -------------------------------------------------------------------------------- */

/* What a run leaves to compare. */
typedef struct fx_result {
    double *pred;           /* test predictions, in split order */
    size_t n;
    aqa_text_set stage, video; /* the training dataset's text lists */
} fx_result;

static void fx_result_free(fx_result *r) {
    free(r->pred);
    aqa_text_set_free(&r->stage);
    aqa_text_set_free(&r->video);
    memset(r, 0, sizeof *r);
}

static int copy_texts(const aqa_text_set *from, aqa_text_set *to) {
    aqa_text_set_init(to);
    for (size_t i = 0; i < from->n; i++)
        if (aqa_text_set_add(to, from->texts[i])) return 1;
    return 0;
}

/* Trains a tiny model of the settings `kv` (key, value pairs, NULL-terminated) on dir for two
 * steps and predicts its test split.  Returns 0 or 1 (message in aqa_last_error()). */
static int run_once(const char *dir, const char *const *kv, fx_result *out) {
    memset(out, 0, sizeof *out);
    kv_config c = {.program = "test_invariance"};
    run_def_keys(&c);
    run_def_train_keys(&c);
    char feat[1024];
    snprintf(feat, sizeof feat, "%s/feat", dir);
    const char *base[] = {"data", dir, "features", feat, "frames", "32", "clips", "8", "clip_stride", "2", "batch", "4",
                          "workers", "0", "eval_exemplars", "3", "tsa_heads", "2", "temporal_heads", "2",
                          "temporal_layers", "1", "temporal_ffn", "16", "epochs", "1", "max_steps", "2",
                          "tpt_dim", "8", "tpt_queries", "3", "hgcn_groups", "1", "gdlt_dim", "8", "gdlt_queries", "3",
                          "mslstm_hidden", "8", "mixer_dim", "8", NULL};
    for (int k = 0; base[k]; k += 2) kv_set(&c, base[k], base[k + 1], "test");
    for (int k = 0; kv[k]; k += 2)
        if (kv_set(&c, kv[k], kv[k + 1], "test")) return 1;
    char texts[1100];
    snprintf(texts, sizeof texts, "%s/texts_quality.safetensors", feat);
    if (kv_bool(&c, "quality_text")) kv_set(&c, "texts", texts, "test");
    run_ctx r;
    memset(&r, 0, sizeof r);
    run_trainer t;
    memset(&t, 0, sizeof t);
    run_results res;
    memset(&res, 0, sizeof res);
    dist_run dr; /* one process */
    if (dist_open(&dr, &c, "test_invariance")) return 1;
    int rc = 1;
    if (run_open(&r, &c, RUN_OPEN_TEST | RUN_OPEN_VAL)) goto done;
    r.dist = &dr;
    if (run_trainer_new(&r, &t)) goto done;
    run_epoch_stats es;
    bool stopped = false;
    if (run_train_epoch(&r, &t, 0, 1, kv_int(&c, "max_steps"), false, &es, &stopped)) goto done;
    if (run_evaluate(&r, r.test, false, false, &res)) goto done;
    out->n = res.n;
    out->pred = malloc((res.n + 1) * sizeof *out->pred);
    memcpy(out->pred, res.pred, res.n * sizeof *out->pred);
    rc = copy_texts(&r.train->stage_texts, &out->stage) || copy_texts(&r.train->video_texts, &out->video);
done:
    run_results_free(&res);
    run_trainer_free(&t);
    run_free(&r);
    dist_close(&dr);
    return rc;
}

static bool same_texts(const aqa_text_set *a, const aqa_text_set *b) {
    if (a->n != b->n) return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->texts[i], b->texts[i])) return false;
    return true;
}

/* ---- the cases ----------------------------------------------------------------------------- */

static const char *const g_heads[] = {"tsa", "core", "usdl", "musdl", "mlp", "tpt", "hgcn", "gdlt", "mslstm", "mixer"};

/* Runs every head under every combination of `mvla` (on / off) and `settings` (exemplar setting
 * values) on the two fixtures of `kind`, with `extra` settings, and checks the predictions. */
static void check_dataset(aqa_ann_dataset kind, const char *dataset, int n, const char *train_split,
                          const char *test_split, const bool *mvla, int n_mvla, const char *const *settings,
                          int n_settings, const char *const *extra) {
    char root[256], dir[2][300];
    snprintf(root, sizeof root, "/tmp/aqa_invariance_XXXXXX");
    if (!mkdtemp(root)) {
        CHECK_MSG(0, "mkdtemp");
        return;
    }
    fx_set f;
    g_rng = test_seed(dataset) | 1;
    fx_labels(&f, kind, n);
    for (int v = 0; v < 2; v++) {
        snprintf(dir[v], sizeof dir[v], "%s/%s", root, v ? "perturbed" : "published");
        if (v) fx_perturb(&f);
        CHECK_MSG(write_fixture(&f, dir[v]) == 0, "writing the %s fixture: %s", dataset, aqa_last_error());
    }
    int runs = 0, differing = 0;
    char which[1024] = "";
    for (size_t h = 0; h < sizeof g_heads / sizeof *g_heads; h++)
        for (int m = 0; m < n_mvla; m++)
            for (int s = 0; s < n_settings; s++) {
                /* the exemplar setting only picks exemplars (w/DN = w/o) unless it divides by DD */
                const aqa_head_ops *ops = aqa_head_find(g_heads[h]);
                if (n_settings > 1 && ops && !ops->is_contrastive && !strcmp(settings[s], "w/o")) continue;
                if (kind == AQA_ANN_FISV && ops == &aqa_head_musdl) continue; /* refused: Fis-V has no judges */
                const char *kv[32] = {"dataset", dataset, "train_split", train_split, "test_split", test_split,
                                      "head", g_heads[h], "mvla", mvla[m] ? "true" : "false", "setting", settings[s],
                                      /* random text features: the fixtures have no CLIP weights to fine-tune */
                                      "freeze_clip_text", "true"};
                int k = 14;
                for (int e = 0; extra && extra[e] && k < 30; e++) kv[k++] = extra[e];
                kv[k] = NULL;
                fx_result r[2];
                char what[256];
                snprintf(what, sizeof what, "%s head %s%s setting %s", dataset, g_heads[h], mvla[m] ? "-MVLA" : "",
                         settings[s]);
                int bad = 0;
                for (int v = 0; v < 2 && !bad; v++) {
                    bad = run_once(dir[v], kv, &r[v]);
                    CHECK_MSG(!bad, "%s (%s labels): %s", what, v ? "perturbed" : "published", aqa_last_error());
                    if (bad) fx_result_free(&r[0]);
                }
                aqa_clear_error();
                if (bad) continue;
                runs++;
                CHECK_MSG(same_texts(&r[0].stage, &r[1].stage) && same_texts(&r[0].video, &r[1].video),
                          "%s: the text lists change with the test labels (%zu / %zu stage texts)", what, r[0].stage.n,
                          r[1].stage.n);
                size_t diff = 0;
                double worst = 0;
                for (size_t i = 0; i < r[0].n && r[0].n == r[1].n; i++)
                    if (memcmp(&r[0].pred[i], &r[1].pred[i], sizeof(double))) {
                        diff++;
                        worst = fmax(worst, fabs(r[0].pred[i] - r[1].pred[i]));
                    }
                CHECK_MSG(r[0].n == r[1].n && r[0].n > 0 && diff == 0,
                          "%s: %zu of %zu test predictions change with the test labels (by up to %g)", what, diff,
                          r[0].n, worst);
                if (diff || !same_texts(&r[0].stage, &r[1].stage)) {
                    differing++;
                    snprintf(which + strlen(which), sizeof which - strlen(which), "%s%s%s %s", which[0] ? ", " : "",
                             g_heads[h], mvla[m] ? "-MVLA" : "", settings[s]);
                }
                fx_result_free(&r[0]);
                fx_result_free(&r[1]);
            }
    printf("    %s: %d runs, %d depend on the test labels%s%s\n", dataset, runs, differing, differing ? ": " : "", which);
    cli_rm_rf(root);
}

static const bool g_mvla_both[2] = {true, false}, g_plain[1] = {false};
static const char *const g_diving_settings[3] = {"w/DN", "w/DD", "w/o"};
static const char *const g_random[1] = {"w/o"};

static void test_finediving(void) {
    check_dataset(AQA_ANN_FINEDIVING, "finediving", 24, "train", "test", g_mvla_both, 2, g_diving_settings, 3, NULL);
}

static void test_mtl_aqa(void) {
    check_dataset(AQA_ANN_MTL_AQA, "mtl-aqa", 24, "train", "test", g_mvla_both, 2, g_diving_settings, 3, NULL);
}

static void test_jigsaws(void) {
    check_dataset(AQA_ANN_JIGSAWS, "jigsaws", 32, "Suturing/1/train", "Suturing/1/test", g_mvla_both, 2, g_random, 1,
                  NULL);
}

/* SCA attending over every grade text instead of the nearest one. */
static void test_jigsaws_all_grades(void) {
    static const char *const all[] = {"grade_texts", "all", NULL};
    check_dataset(AQA_ANN_JIGSAWS, "jigsaws", 32, "Suturing/1/train", "Suturing/1/test", g_mvla_both, 1, g_random, 1,
                  all);
}

/* "+ Quality Text" on dives: graded stage and video texts, nearest and all. */
static void test_quality_text(void) {
    static const char *const modes[2][5] = {{"quality_text", "true", "grade_texts", "nearest", NULL},
                                             {"quality_text", "true", "grade_texts", "all", NULL}};
    for (int k = 0; k < 2; k++) {
        check_dataset(AQA_ANN_FINEDIVING, "finediving", 24, "train", "test", g_mvla_both, 1, g_diving_settings, 1,
                      modes[k]);
        check_dataset(AQA_ANN_MTL_AQA, "mtl-aqa", 24, "train", "test", g_mvla_both, 1, g_diving_settings + 1, 1,
                      modes[k]);
    }
}

/* Fis-V trains from its .npy features without CLIP frame features: the plain heads. */
static void test_fisv(void) {
    check_dataset(AQA_ANN_FISV, "fisv", 24, "train", "test", g_plain, 1, g_random, 1, NULL);
}

int main(void) {
    RUN(test_finediving);
    RUN(test_mtl_aqa);
    RUN(test_jigsaws);
    RUN(test_jigsaws_all_grades);
    RUN(test_quality_text);
    RUN(test_fisv);
    return test_finish();
}
