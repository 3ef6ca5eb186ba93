/* test_synthetic_layouts.c: the synthetic generator's MTL-AQA, JIGSAWS and Fis-V layouts
 * (datasets/synthetic.h), read back through the real annotation loaders (datasets/annotations.h)
 * and checked against the generator's own plans and against what each layout promises:
 *   MTL-AQA  every dive with its degree of difficulty from the FINA catalogue, seven judges and
 *            final_score = DD x the middle three judges; no frame labels; the frame folder holds
 *            the dive's frames start_frame..end_frame; train and test split every dive once;
 *   JIGSAWS  six GRS items 1..5 per trial summing to its score; for each of the three tasks four
 *            folds that partition the task's trials, "T/k/train" the complement of "T/k/test";
 *            a frame folder <trial>_capture1 per trial;
 *   Fis-V    TES, PCS and deductions as sub-scores with score = TES + PCS - deductions, equal to
 *            the plan; per-programme feature files (backbone and CLIP-like) of one row per clip;
 *            TES follows what the features encode (the plan's base values and execution).
 * Plus determinism by seed for each layout and the layout names. */
#define _XOPEN_SOURCE 700
#include "datasets/annotations.h"
#include "datasets/synthetic.h"
#include "io/npy.h"
#include "tests/testlib.h"

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static char *make_tmpdir(void) {
    static char tmpl[64];
    snprintf(tmpl, sizeof tmpl, "/tmp/aqa_test_synth_layouts_XXXXXX");
    return mkdtemp(tmpl);
}

static bool exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

static aqa_synthetic_config layout_config(aqa_synthetic_layout layout, int n, uint64_t seed, const char *dir) {
    aqa_synthetic_config c;
    aqa_synthetic_config_init(&c);
    aqa_synthetic_config_layout(&c, layout);
    c.out_dir = dir;
    c.n_videos = n;
    c.seed = seed;
    c.width = c.height = 24;
    c.threads = 2;
    c.progress = 0;
    if (layout == AQA_SYNTH_JIGSAWS) c.min_frames = 16, c.max_frames = 40;
    if (layout == AQA_SYNTH_FISV) c.feature_dim = 16, c.min_frames = 320, c.max_frames = 640;
    return c;
}

/* Pearson correlation. */
static double pearson(const double *a, const double *b, int n) {
    double ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; i++) ma += a[i] / n, mb += b[i] / n;
    for (int i = 0; i < n; i++) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return sab / sqrt(saa * sbb);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Whether split `sp` holds sample index i. */
static bool in_split(const aqa_ann_split *sp, size_t i) {
    for (size_t k = 0; sp && k < sp->n; k++)
        if (sp->idx[k] == i) return true;
    return false;
}

static void test_layout_names(void) {
    aqa_synthetic_layout l;
    CHECK(aqa_synthetic_layout_parse("mtl-aqa", &l) == AQA_OK && l == AQA_SYNTH_MTL_AQA);
    CHECK(aqa_synthetic_layout_parse("jigsaws", &l) == AQA_OK && l == AQA_SYNTH_JIGSAWS);
    CHECK(aqa_synthetic_layout_parse("fis-v", &l) == AQA_OK && l == AQA_SYNTH_FISV);
    CHECK(aqa_synthetic_layout_parse("finediving", &l) == AQA_OK && l == AQA_SYNTH_FINEDIVING);
    CHECK(aqa_synthetic_layout_parse("kinetics", &l) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "kinetics") != NULL);
    /* JIGSAWS needs one trial per fold and task */
    aqa_synthetic_config c = layout_config(AQA_SYNTH_JIGSAWS, 11, 0, "/tmp/never_written");
    CHECK(aqa_synthetic_generate(&c) == AQA_EINVAL);
}

static void test_mtl_aqa(void) {
    char *dir = make_tmpdir();
    CHECK(dir != NULL);
    if (!dir) return;
    aqa_synthetic_config c = layout_config(AQA_SYNTH_MTL_AQA, 12, 5, dir);
    c.dives_per_video = 5;
    CHECK_MSG(aqa_synthetic_generate(&c) == AQA_OK, "%s", aqa_last_error());
    aqa_synthetic_dive *dv = NULL;
    size_t n = 0;
    CHECK_EQ_INT(aqa_synthetic_plan(&c, &dv, &n), AQA_OK);
    aqa_ann_manifest *m = aqa_ann_load_mtl_aqa(dir);
    CHECK_MSG(m != NULL, "loader: %s", aqa_last_error());
    size_t cat_n;
    const aqa_synthetic_dive_type *cat = aqa_synthetic_catalogue(&cat_n);
    if (m && dv && n == 12) {
        CHECK_EQ_INT(m->n_samples, 12);
        const aqa_ann_split *tr = aqa_ann_find_split(m, "train"), *te = aqa_ann_find_split(m, "test");
        CHECK(tr && te && tr->n + te->n == 12 && tr->n > 0 && te->n > 0);
        int distinct_dd = 0;
        double dds[12];
        for (size_t i = 0; i < m->n_samples; i++) {
            const aqa_ann_sample *s = &m->samples[i];
            char key[32];
            long j = -1;
            for (size_t k = 0; k < n; k++) { /* the plan's dive of this key */
                snprintf(key, sizeof key, "%02d_%lld", (int)(k / 5) + 1, (long long)dv[k].instance);
                if (!strcmp(key, s->key)) j = (long)k;
            }
            CHECK_MSG(j >= 0, "sample %s not in the plan", s->key);
            if (j < 0) continue;
            const aqa_synthetic_dive *d = &dv[j];
            CHECK(s->difficulty == d->difficulty && s->difficulty > 0);
            bool in_cat = false;
            for (size_t k = 0; k < cat_n; k++) in_cat |= fabs(cat[k].difficulty - s->difficulty) < 1e-9;
            CHECK(in_cat);
            dds[i] = s->difficulty;
            CHECK_EQ_INT(s->n_judges, 7);
            double sorted[7];
            for (int k = 0; k < 7; k++) sorted[k] = s->judges[k];
            qsort(sorted, 7, sizeof *sorted, cmp_double);
            CHECK_NEAR(s->score, s->difficulty * (sorted[2] + sorted[3] + sorted[4]), 0.0051);
            CHECK_NEAR(s->score, d->score, 1e-9);
            CHECK(s->frame_labels == NULL && s->n_frame_labels == 0);
            CHECK(s->dive_number[0] && strchr("ABCD", s->dive_number[strlen(s->dive_number) - 1]));
            CHECK(in_split(tr, i) != in_split(te, i));
            CHECK(in_split(d->split ? te : tr, i));
            /* the frame folder holds the dive's frames */
            char path[4200];
            bool all = true;
            for (int64_t f = s->start_frame; f <= s->end_frame; f++) {
                snprintf(path, sizeof path, "%s/%s/%08lld.png", dir, s->video, (long long)f);
                all &= exists(path);
            }
            CHECK_MSG(all, "frames of %s missing", s->key);
        }
        for (int i = 0; i < 12; i++) {
            bool seen = false;
            for (int k = 0; k < i; k++) seen |= dds[k] == dds[i];
            distinct_dd += !seen;
        }
        CHECK(distinct_dd >= 3); /* "w/DD" has groups to choose exemplars from */
    }
    aqa_ann_free(m);
    free(dv);
    rm_rf(dir);
}

static void test_jigsaws(void) {
    char *dir = make_tmpdir();
    CHECK(dir != NULL);
    if (!dir) return;
    aqa_synthetic_config c = layout_config(AQA_SYNTH_JIGSAWS, 24, 7, dir);
    CHECK_MSG(aqa_synthetic_generate(&c) == AQA_OK, "%s", aqa_last_error());
    aqa_synthetic_trial *tv = NULL;
    size_t n = 0;
    CHECK_EQ_INT(aqa_synthetic_plan_trials(&c, &tv, &n), AQA_OK);
    aqa_ann_manifest *m = aqa_ann_load_jigsaws(dir);
    CHECK_MSG(m != NULL, "loader: %s", aqa_last_error());
    if (m && tv && n == 24) {
        CHECK_EQ_INT(m->n_samples, 24);
        for (size_t i = 0; i < m->n_samples; i++) {
            const aqa_ann_sample *s = &m->samples[i];
            CHECK_EQ_INT(s->n_sub_scores, 6);
            double sum = 0;
            for (int g = 0; g < s->n_sub_scores; g++) {
                CHECK(s->sub_scores[g] >= 1 && s->sub_scores[g] <= 5 && s->sub_scores[g] == floor(s->sub_scores[g]));
                sum += s->sub_scores[g];
            }
            CHECK_NEAR(s->score, sum, 1e-9);
            long j = -1;
            for (size_t k = 0; k < n; k++)
                if (!strcmp(tv[k].name, s->key)) j = (long)k;
            CHECK_MSG(j >= 0 && tv[j].score == s->score, "trial %s", s->key);
            char path[4200];
            snprintf(path, sizeof path, "%s/%s_capture1/00001.png", dir, s->key);
            CHECK_MSG(exists(path), "%s missing", path);
        }
        static const char *const tasks[3] = {"Suturing", "Needle_Passing", "Knot_Tying"};
        for (int t = 0; t < 3; t++) {
            size_t in_task = 0, covered = 0;
            for (size_t i = 0; i < m->n_samples; i++) in_task += !strncmp(m->samples[i].key, tasks[t], strlen(tasks[t]));
            CHECK(in_task >= 4);
            for (int k = 0; k < 4; k++) {
                char name[64];
                snprintf(name, sizeof name, "%s/%d/test", tasks[t], k);
                const aqa_ann_split *te = aqa_ann_find_split(m, name);
                snprintf(name, sizeof name, "%s/%d/train", tasks[t], k);
                const aqa_ann_split *tr = aqa_ann_find_split(m, name);
                CHECK_MSG(te && tr, "folds of %s", tasks[t]);
                if (!te || !tr) continue;
                CHECK(te->n >= 1);
                CHECK_EQ_INT(te->n + tr->n, in_task);
                covered += te->n;
                for (size_t i = 0; i < te->n; i++) {
                    CHECK(!in_split(tr, te->idx[i]));
                    CHECK(!strncmp(m->samples[te->idx[i]].key, tasks[t], strlen(tasks[t])));
                }
            }
            CHECK_EQ_INT(covered, in_task); /* the four test folds partition the task */
        }
    }
    aqa_ann_free(m);
    free(tv);
    rm_rf(dir);
}

static void test_fisv(void) {
    char *dir = make_tmpdir();
    CHECK(dir != NULL);
    if (!dir) return;
    aqa_synthetic_config c = layout_config(AQA_SYNTH_FISV, 40, 3, dir);
    CHECK_MSG(aqa_synthetic_generate(&c) == AQA_OK, "%s", aqa_last_error());
    aqa_synthetic_programme *pv = NULL;
    size_t n = 0;
    CHECK_EQ_INT(aqa_synthetic_plan_programmes(&c, &pv, &n), AQA_OK);
    aqa_ann_manifest *m = aqa_ann_load_fisv(dir);
    CHECK_MSG(m != NULL, "loader: %s", aqa_last_error());
    if (m && pv && n == 40) {
        CHECK_EQ_INT(m->n_samples, 40);
        const aqa_ann_split *tr = aqa_ann_find_split(m, "train"), *te = aqa_ann_find_split(m, "test");
        CHECK(tr && te && tr->n + te->n == 40 && te->n >= 4 && te->n <= 12);
        double tes[40], value[40];
        for (size_t i = 0; i < m->n_samples; i++) {
            const aqa_ann_sample *s = &m->samples[i];
            int id = atoi(s->key);
            CHECK(id >= 1 && id <= 40);
            if (id < 1 || id > 40) continue;
            const aqa_synthetic_programme *p = &pv[id - 1];
            CHECK_EQ_INT(s->n_sub_scores, 3);
            CHECK_NEAR(s->sub_scores[0], p->tes, 1e-9);
            CHECK_NEAR(s->sub_scores[1], p->pcs, 1e-9);
            CHECK_NEAR(s->sub_scores[2], p->ded, 1e-9);
            CHECK_NEAR(s->score, p->tes + p->pcs - p->ded, 1e-9);
            CHECK(p->tes > 0 && p->pcs > 0 && p->pcs <= 40);
            tes[i] = p->tes;
            value[i] = 0;
            for (int e = 0; e < AQA_SYNTH_ELEMENTS; e++) value[i] += p->base[e] * (0.5 + p->quality[e]);
            for (int k = 0; k < 2; k++) {
                char path[4200];
                snprintf(path, sizeof path, "%s/%s/%d.npy", dir, k ? "clip_features" : "features", id);
                aqa_npy_array a;
                CHECK_MSG(aqa_npy_load(path, &a) == AQA_OK, "%s", aqa_last_error());
                CHECK(a.ndim == 2 && a.dtype == AQA_NPY_F4 && (int)a.shape[0] == p->n_clips && a.shape[1] == 16);
                CHECK(p->n_clips >= 10 && p->n_clips <= 20); /* 320..640 frames in 32-frame clips */
                aqa_npy_free(&a);
            }
        }
        /* the technical score follows what the features encode */
        CHECK(pearson(tes, value, 40) > 0.8);
    }
    aqa_ann_free(m);
    free(pv);
    rm_rf(dir);
}

/* The same config twice gives the same annotations (file bytes); another seed does not. */
static void test_determinism(void) {
    static const aqa_synthetic_layout layouts[3] = {AQA_SYNTH_MTL_AQA, AQA_SYNTH_JIGSAWS, AQA_SYNTH_FISV};
    static const char *const files[3] = {"final_annotations_dict_with_dive_number.pkl", "label.pkl", "train_dataset.txt"};
    for (int l = 0; l < 3; l++) {
        char *dirs[3];
        char *bytes[3] = {NULL, NULL, NULL};
        long len[3] = {0, 0, 0};
        for (int k = 0; k < 3; k++) {
            char tmpl[] = "/tmp/aqa_test_synth_det_XXXXXX";
            dirs[k] = strdup(mkdtemp(tmpl) ? tmpl : "");
            aqa_synthetic_config c = layout_config(layouts[l], 12, k == 2 ? 99 : 4, dirs[k]);
            c.threads = k + 1;
            CHECK_MSG(aqa_synthetic_generate(&c) == AQA_OK, "%s", aqa_last_error());
            char path[4200];
            snprintf(path, sizeof path, "%s/%s", dirs[k], files[l]);
            FILE *f = fopen(path, "rb");
            CHECK_MSG(f != NULL, "%s", path);
            if (f) {
                fseek(f, 0, SEEK_END);
                len[k] = ftell(f);
                rewind(f);
                bytes[k] = malloc((size_t)len[k] + 1);
                if (bytes[k] && fread(bytes[k], 1, (size_t)len[k], f) != (size_t)len[k]) len[k] = -1;
                fclose(f);
            }
        }
        CHECK_MSG(len[0] > 0 && len[0] == len[1] && bytes[0] && bytes[1] && !memcmp(bytes[0], bytes[1], (size_t)len[0]),
                  "layout %d: same seed, different %s", l, files[l]);
        CHECK_MSG(!(len[0] == len[2] && bytes[2] && bytes[0] && !memcmp(bytes[0], bytes[2], (size_t)len[0])),
                  "layout %d: another seed, the same %s", l, files[l]);
        for (int k = 0; k < 3; k++) {
            rm_rf(dirs[k]);
            free(dirs[k]);
            free(bytes[k]);
        }
    }
}

int main(void) {
    RUN(test_layout_names);
    RUN(test_mtl_aqa);
    RUN(test_jigsaws);
    RUN(test_fisv);
    RUN(test_determinism);
    return test_finish();
}
