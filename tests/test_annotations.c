/* test_annotations.c: the dataset annotation loaders (datasets/annotations.h).
 *
 * Published counts are checked on the real MTL-AQA, JIGSAWS and Fis-V files in ../shared/data
 * (skipped when absent); specific values against tests/data/annotations/expected.txt, which
 * scripts/gen_annotation_golden.py writes with Python's own pickle module; FineDiving on the
 * fixture of scripts/make_finediving_fixture.py; error cases name the file and the key. */
#include "datasets/annotations.h"
#include "tests/testlib.h"

#include <dirent.h>
#include <unistd.h>

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

/* ---- golden file ---- */
#define MAX_TOK 64
typedef struct {
    char *tok[MAX_TOK];
    int n;
} gline;

static gline *golden;
static int n_golden;

static void load_golden(void) {
    FILE *f;
    char buf[2048];
    if (golden) return;
    f = fopen(test_data_path("annotations/expected.txt"), "r");
    if (!f) return;
    while (fgets(buf, sizeof buf, f)) {
        gline g;
        char *save = NULL, *t;
        if (buf[0] == '#') continue;
        memset(&g, 0, sizeof g);
        for (t = strtok_r(buf, " \n", &save); t && g.n < MAX_TOK; t = strtok_r(NULL, " \n", &save))
            g.tok[g.n++] = strdup(t);
        if (!g.n) continue;
        golden = realloc(golden, (size_t)(n_golden + 1) * sizeof *golden);
        golden[n_golden++] = g;
    }
    fclose(f);
}

static void free_golden(void) {
    int i, k;
    for (i = 0; i < n_golden; i++)
        for (k = 0; k < golden[i].n; k++) free(golden[i].tok[k]);
    free(golden);
    golden = NULL;
    n_golden = 0;
}

/* Compares every golden line of `ds` with the manifest; returns the number of lines checked. */
static int check_golden(const aqa_ann_manifest *m, const char *ds) {
    int i, checked = 0;
    load_golden();
    for (i = 0; i < n_golden; i++) {
        gline *g = &golden[i];
        if (g->n < 3 || strcmp(g->tok[1], ds) != 0) continue;
        checked++;
        if (strcmp(g->tok[0], "count") == 0) {
            CHECK_EQ_INT(m->n_samples, atoll(g->tok[2]));
        } else if (strcmp(g->tok[0], "split") == 0 && g->n == 6) {
            const aqa_ann_split *s = aqa_ann_find_split(m, g->tok[2]);
            CHECK_MSG(s != NULL, "%s: no split %s", ds, g->tok[2]);
            if (!s) continue;
            CHECK_EQ_INT(s->n, atoll(g->tok[3]));
            if (s->n) {
                CHECK_STR(m->samples[s->idx[0]].key, g->tok[4]);
                CHECK_STR(m->samples[s->idx[s->n - 1]].key, g->tok[5]);
            }
        } else if (strcmp(g->tok[0], "distinct") == 0) {
            size_t a, b, distinct = 0;
            for (a = 0; a < m->n_samples; a++) {
                for (b = 0; b < a; b++)
                    if (strcmp(m->samples[a].dive_number, m->samples[b].dive_number) == 0) break;
                distinct += b == a;
            }
            CHECK_EQ_INT(distinct, atoll(g->tok[3]));
        } else if (strcmp(g->tok[0], "sum") == 0) {
            double s = 0;
            size_t a;
            for (a = 0; a < m->n_samples; a++) s += m->samples[a].score;
            CHECK_NEAR(s, atof(g->tok[3]), 1e-6);
        } else if (strcmp(g->tok[0], "sample") == 0) {
            long at = aqa_ann_find(m, g->tok[2]);
            const aqa_ann_sample *s;
            int t = 3, k, nj, ns, nt;
            CHECK_MSG(at >= 0, "%s: no sample %s", ds, g->tok[2]);
            if (at < 0) continue;
            s = &m->samples[at];
            CHECK_STR(s->key, g->tok[2]);
            CHECK_STR(s->video, g->tok[t++]);
            CHECK_EQ_INT(s->instance, atoll(g->tok[t++]));
            CHECK_EQ_INT(s->start_frame, atoll(g->tok[t++]));
            CHECK_EQ_INT(s->end_frame, atoll(g->tok[t++]));
            CHECK_NEAR(s->score, atof(g->tok[t++]), 1e-9);
            CHECK_NEAR(s->difficulty, atof(g->tok[t++]), 1e-12);
            CHECK_STR(s->dive_number[0] ? s->dive_number : "-", g->tok[t++]);
            nj = atoi(g->tok[t++]);
            CHECK_EQ_INT(s->n_judges, nj);
            for (k = 0; k < nj && t < g->n; k++, t++)
                if (k < s->n_judges) CHECK_NEAR(s->judges[k], atof(g->tok[t]), 1e-12);
            if (t >= g->n) continue;
            ns = atoi(g->tok[t++]);
            CHECK_EQ_INT(s->n_sub_scores, ns);
            for (k = 0; k < ns && t < g->n; k++, t++)
                if (k < s->n_sub_scores) CHECK_NEAR(s->sub_scores[k], atof(g->tok[t]), 1e-12);
            if (t + 3 > g->n) continue;
            CHECK_EQ_INT(s->n_frame_labels, atoll(g->tok[t++]));
            {
                long long sum = 0;
                size_t q;
                for (q = 0; q < s->n_frame_labels; q++) sum += s->frame_labels[q];
                CHECK_EQ_INT(sum, atoll(g->tok[t++]));
            }
            nt = atoi(g->tok[t++]);
            CHECK_EQ_INT(s->n_transit, nt);
            for (k = 0; k < nt && t < g->n; k++, t++)
                if ((size_t)k < s->n_transit) CHECK_EQ_INT(s->transit_frames[k], atoll(g->tok[t]));
        } else {
            checked--;
        }
    }
    return checked;
}

/* Every index of split `a` is absent from split `b`. */
static int disjoint(const aqa_ann_split *a, const aqa_ann_split *b) {
    size_t i, j;
    for (i = 0; i < a->n; i++)
        for (j = 0; j < b->n; j++)
            if (a->idx[i] == b->idx[j]) return 0;
    return 1;
}

/* ---- MTL-AQA ---- */
static aqa_ann_manifest *load_mtl(void) {
    const char *dir = test_shared_path("MTL-AQA");
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/final_annotations_dict_with_dive_number.pkl", dir);
    if (!file_exists(probe)) {
        SKIP("%.200s absent", probe);
        return NULL;
    }
    {
        aqa_ann_manifest *m = aqa_ann_load_mtl_aqa(test_shared_path("MTL-AQA"));
        CHECK_MSG(m != NULL, "%s", aqa_last_error());
        return m;
    }
}

static void test_mtl_aqa_published_counts(void) {
    aqa_ann_manifest *m = load_mtl();
    const aqa_ann_split *tr, *te;
    size_t a, b, distinct = 0;
    if (!m) return;
    CHECK_EQ_INT(m->dataset, AQA_ANN_MTL_AQA);
    CHECK_EQ_INT(m->n_samples, 1412);
    tr = aqa_ann_find_split(m, "train");
    te = aqa_ann_find_split(m, "test");
    CHECK(tr && te);
    if (tr && te) {
        CHECK_EQ_INT(tr->n, 1059);
        CHECK_EQ_INT(te->n, 353);
        CHECK(disjoint(tr, te));
    }
    for (a = 0; a < m->n_samples; a++) {
        for (b = 0; b < a; b++)
            if (strcmp(m->samples[a].dive_number, m->samples[b].dive_number) == 0) break;
        distinct += b == a;
        CHECK_EQ_INT(m->samples[a].n_judges, 7);
        CHECK(m->samples[a].end_frame >= m->samples[a].start_frame);
    }
    CHECK_EQ_INT(distinct, 58);
    /* the release's scores that break FINA's rule (failed dives, typos) are kept and counted once */
    CHECK_MSG(m->notes && strstr(m->notes, "final_score of 28 dive(s)") && m->n_repaired == 0, "notes: %s", m->notes);
    aqa_ann_free(m);
}

static void test_mtl_aqa_golden(void) {
    aqa_ann_manifest *m = load_mtl();
    if (!m) return;
    CHECK(check_golden(m, "MTL-AQA") >= 8);
    aqa_ann_free(m);
}

/* ---- JIGSAWS ---- */
static aqa_ann_manifest *load_jig(void) {
    char probe[4200];
    aqa_ann_manifest *m;
    snprintf(probe, sizeof probe, "%s/label.pkl", test_shared_path("JIGSAWS"));
    if (!file_exists(probe)) {
        SKIP("%.200s absent", probe);
        return NULL;
    }
    m = aqa_ann_load_jigsaws(test_shared_path("JIGSAWS"));
    CHECK_MSG(m != NULL, "%s", aqa_last_error());
    return m;
}

static void test_jigsaws_published_counts(void) {
    static const char *tasks[] = {"Suturing", "Knot_Tying", "Needle_Passing"};
    static const int counts[] = {39, 36, 28};
    aqa_ann_manifest *m = load_jig();
    int t, k;
    if (!m) return;
    CHECK_EQ_INT(m->n_samples, 103);
    CHECK_EQ_INT(m->n_splits, 3 * 4 * 2);
    for (t = 0; t < 3; t++) {
        size_t i, n = 0, covered = 0;
        char name[64];
        for (i = 0; i < m->n_samples; i++)
            if (strncmp(m->samples[i].key, tasks[t], strlen(tasks[t])) == 0) n++;
        CHECK_EQ_INT(n, counts[t]);
        for (k = 0; k < 4; k++) {
            const aqa_ann_split *te, *tr;
            snprintf(name, sizeof name, "%s/%d/test", tasks[t], k);
            te = aqa_ann_find_split(m, name);
            snprintf(name, sizeof name, "%s/%d/train", tasks[t], k);
            tr = aqa_ann_find_split(m, name);
            CHECK_MSG(te && tr, "missing fold %s %d", tasks[t], k);
            if (!te || !tr) continue;
            CHECK_EQ_INT(te->n + tr->n, counts[t]);
            CHECK(disjoint(te, tr));
            covered += te->n;
            for (i = 0; i < te->n; i++)
                CHECK(strncmp(m->samples[te->idx[i]].key, tasks[t], strlen(tasks[t])) == 0);
        }
        CHECK_EQ_INT(covered, counts[t]); /* the 4 test folds partition the task */
        snprintf(name, sizeof name, "%s/4/test", tasks[t]);
        CHECK(aqa_ann_find_split(m, name) == NULL);
    }
    for (k = 0; k < (int)m->n_samples; k++) {
        CHECK(m->samples[k].n_sub_scores == 6);
        CHECK(m->samples[k].score >= 6 && m->samples[k].score <= 30);
    }
    aqa_ann_free(m);
}

static void test_jigsaws_golden(void) {
    aqa_ann_manifest *m = load_jig();
    if (!m) return;
    CHECK(check_golden(m, "JIGSAWS") >= 20);
    aqa_ann_free(m);
}

/* ---- Fis-V ---- */
static aqa_ann_manifest *load_fisv(void) {
    char probe[4200];
    aqa_ann_manifest *m;
    snprintf(probe, sizeof probe, "%s/train_dataset.txt", test_shared_path("Fis-V"));
    if (!file_exists(probe)) {
        SKIP("%.200s absent", probe);
        return NULL;
    }
    m = aqa_ann_load_fisv(test_shared_path("Fis-V"));
    CHECK_MSG(m != NULL, "%s", aqa_last_error());
    return m;
}

static void test_fisv_published_counts(void) {
    aqa_ann_manifest *m = load_fisv();
    const aqa_ann_split *tr, *te;
    if (!m) return;
    CHECK_EQ_INT(m->n_samples, 500);
    tr = aqa_ann_find_split(m, "train");
    te = aqa_ann_find_split(m, "test");
    CHECK(tr && te);
    if (tr && te) {
        CHECK_EQ_INT(tr->n, 400);
        CHECK_EQ_INT(te->n, 100);
        CHECK(disjoint(tr, te));
    }
    aqa_ann_free(m);
}

static void test_fisv_golden(void) {
    aqa_ann_manifest *m = load_fisv();
    if (!m) return;
    CHECK(check_golden(m, "Fis-V") >= 6);
    aqa_ann_free(m);
}

/* ---- FineDiving (fixture) ---- */
/* The fixture (scripts/make_finediving_fixture.py) holds one dive for each fault of the release's
 * steps_transit_frames (a -1 entry, entries out of order, entries past the labels, entries
 * elsewhere than the labels change): the release loads whole, those dives get the transitions
 * where their labels change (expected.txt computes them with numpy), and the notes count them. */
static void test_finediving_fixture(void) {
    aqa_ann_manifest *m = aqa_ann_load_finediving(test_data_path("finediving"));
    size_t i;
    int short_dive = 0, repaired = 0, recurring = 0;
    CHECK_MSG(m != NULL, "%s", aqa_last_error());
    if (!m) return;
    CHECK_EQ_INT(m->dataset, AQA_ANN_FINEDIVING);
    CHECK(check_golden(m, "FineDiving") >= 14);
    for (i = 0; i < m->n_samples; i++) {
        const aqa_ann_sample *s = &m->samples[i];
        size_t k, distinct = 0;
        CHECK_EQ_INT(s->n_frame_labels, s->end_frame - s->start_frame + 1);
        short_dive += s->n_frame_labels < 96;
        repaired += s->transit_repaired;
        for (k = 0; k < s->n_transit; k++) /* ascending, inside the labels, at a change of label */
            CHECK_MSG(s->transit_frames[k] >= 0 && s->transit_frames[k] + 1 < (int64_t)s->n_frame_labels &&
                          (k == 0 || s->transit_frames[k] > s->transit_frames[k - 1]) &&
                          s->frame_labels[s->transit_frames[k]] != s->frame_labels[s->transit_frames[k] + 1],
                      "%s: transit %zu = %lld", s->key, k, (long long)s->transit_frames[k]);
        for (k = 0; k < s->n_frame_labels; k++) {
            size_t q = 0;
            while (q < k && s->frame_labels[q] != s->frame_labels[k]) q++;
            distinct += q == k;
        }
        recurring += distinct < s->n_transit + 1;
    }
    CHECK_EQ_INT(short_dive, 3); /* 70, 89 and 89 frames */
    CHECK_EQ_INT(repaired, 4);
    CHECK_EQ_INT(m->n_repaired, 4);
    CHECK_EQ_INT(recurring, 1);
    CHECK(aqa_ann_find(m, "03/67") >= 0 && m->samples[aqa_ann_find(m, "03/67")].transit_repaired);
    CHECK(aqa_ann_find(m, "01/12") >= 0 && !m->samples[aqa_ann_find(m, "01/12")].transit_repaired);
    /* said once, with the count of each fault */
    CHECK_MSG(m->notes && strstr(m->notes, "of 4 dive(s)") && strstr(m->notes, "2 with a -1 entry") &&
                  strstr(m->notes, "1 past the last frame") && strstr(m->notes, "1 not ascending") &&
                  strstr(m->notes, "1 elsewhere than the labels change"),
              "notes: %s", m->notes ? m->notes : "(null)");
    {
        int lines = 0;
        for (const char *p = m->notes; p && *p; p++) lines += *p == '\n';
        CHECK_EQ_INT(lines, 1);
    }
    /* label names: from the dives' 'sub-action_types' and Sub_action_Types_Table.pkl */
    CHECK_EQ_INT(m->n_label_names, 43);
    if (m->n_label_names == 43) {
        CHECK(m->label_names[0] == NULL);
        CHECK_STR(m->label_names[36], "Entry");
        CHECK_STR(m->label_names[4], "Inward");
        CHECK_STR(m->label_names[25], "3.5 Soms.Tuck");
    }
    {
        long at = aqa_ann_find(m, "FINADivingWorldCup2021_Men3m_final_r1/8");
        CHECK(at == 0);
        CHECK(aqa_ann_find(m, "FINADivingWorldCup2021_Men3m_final_r1/9") == -1);
        CHECK(aqa_ann_find_split(m, "val") == NULL);
    }
    aqa_ann_free(m);
}

/* The real FineDiving release, when someone places it in ../shared/data/FineDiving (it is not
 * redistributable): the counts FORMATS.md gives. */
static void test_finediving_published_counts(void) {
    char probe[4200];
    aqa_ann_manifest *m;
    const aqa_ann_split *tr, *te;
    size_t a, b, distinct = 0, short_dives = 0, from_mtl = 0, entries[6] = {0}, distinct_labels[7] = {0};
    snprintf(probe, sizeof probe, "%s/FineDiving_fine-grained_annotation.pkl", test_shared_path("FineDiving"));
    if (!file_exists(probe)) {
        SKIP("%.200s absent (FineDiving is not redistributable)", probe);
        return;
    }
    m = aqa_ann_load_finediving(test_shared_path("FineDiving"));
    CHECK_MSG(m != NULL, "%s", aqa_last_error());
    if (!m) return;
    CHECK_EQ_INT(m->n_samples, 3000);
    tr = aqa_ann_find_split(m, "train");
    te = aqa_ann_find_split(m, "test");
    CHECK(tr && te);
    if (tr && te) {
        CHECK_EQ_INT(tr->n, 2251);
        CHECK_EQ_INT(te->n, 749);
    }
    for (a = 0; a < m->n_samples; a++) {
        const aqa_ann_sample *s = &m->samples[a];
        for (b = 0; b < a; b++)
            if (strcmp(s->dive_number, m->samples[b].dive_number) == 0) break;
        distinct += b == a;
        short_dives += s->n_frame_labels < 96;
        from_mtl += strlen(s->video) == 2;
        if (s->n_transit < 6) entries[s->n_transit]++;
        {
            size_t k, q, d = 0;
            for (k = 0; k < s->n_frame_labels; k++) {
                for (q = 0; q < k && s->frame_labels[q] != s->frame_labels[k]; q++) {
                }
                d += q == k;
            }
            if (d < 7) distinct_labels[d]++;
        }
        CHECK(s->difficulty >= 1.5 && s->difficulty <= 4.1);
        CHECK(s->score >= 0 && s->score <= 114.8);
    }
    CHECK_EQ_INT(distinct, 52);
    CHECK_EQ_INT(short_dives, 489);
    CHECK_EQ_INT(from_mtl, 1369);
    /* entries of steps_transit_frames per dive, and distinct sub-action ids per dive (FORMATS.md) */
    CHECK_EQ_INT(entries[2], 2209);
    CHECK_EQ_INT(entries[3], 568);
    CHECK_EQ_INT(entries[4], 223);
    CHECK_EQ_INT(distinct_labels[3], 2209);
    CHECK_EQ_INT(distinct_labels[4], 786);
    CHECK_EQ_INT(distinct_labels[5], 5);
    /* the release's faulty transitions: 7 dives, repaired from their labels, said once */
    CHECK_EQ_INT(m->n_repaired, 7);
    CHECK(m->notes && strstr(m->notes, "of 7 dive(s)"));
    {
        long k = aqa_ann_find(m, "03/67");
        CHECK(k >= 0);
        if (k >= 0) {
            const aqa_ann_sample *s = &m->samples[k];
            CHECK(s->transit_repaired && s->n_transit == 3);
            if (s->n_transit == 3) {
                CHECK_EQ_INT(s->transit_frames[0], 14);
                CHECK_EQ_INT(s->transit_frames[1], 35);
                CHECK_EQ_INT(s->transit_frames[2], 51);
            }
        }
        k = aqa_ann_find(m, "05/56");
        CHECK(k >= 0 && m->samples[k].n_frame_labels == 89 && m->samples[k].n_transit == 2 &&
              m->samples[k].transit_frames[0] == 28 && m->samples[k].transit_frames[1] == 57);
    }
    CHECK(m->n_label_names >= 43);
    aqa_ann_free(m);
}

/* ---- error cases ---- */
static void check_error(aqa_ann_manifest *m, const char *a, const char *b, const char *c) {
    const char *e = aqa_last_error();
    CHECK(m == NULL);
    aqa_ann_free(m);
    CHECK_MSG(strstr(e, a) != NULL, "message lacks '%s': %s", a, e);
    if (b) CHECK_MSG(strstr(e, b) != NULL, "message lacks '%s': %s", b, e);
    if (c) CHECK_MSG(strstr(e, c) != NULL, "message lacks '%s': %s", c, e);
}

static void test_errors_missing_files(void) {
    check_error(aqa_ann_load_mtl_aqa("/nonexistent/mtl"), "/nonexistent/mtl/final_annotations_dict_with_dive_number.pkl",
                "cannot open", NULL);
    check_error(aqa_ann_load_jigsaws("/nonexistent/jig"), "/nonexistent/jig/label.pkl", "cannot open", NULL);
    check_error(aqa_ann_load_fisv("/nonexistent/fisv"), "/nonexistent/fisv/train_dataset.txt", "cannot open", NULL);
    check_error(aqa_ann_load_finediving("/nonexistent/fd"), "/nonexistent/fd/FineDiving_fine-grained_annotation.pkl",
                "cannot open", NULL);
    check_error(aqa_ann_load_finediving(NULL), "NULL", NULL, NULL);
}

static void test_errors_wrong_structure(void) {
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", test_data_path("finediving/bad_missing_field"));
    check_error(aqa_ann_load_finediving(dir), "FineDiving_coarse_annotation.pkl", "01/3", "'end_frame'");
    snprintf(dir, sizeof dir, "%s", test_data_path("finediving/bad_wrong_type"));
    check_error(aqa_ann_load_finediving(dir), "FineDiving_fine-grained_annotation.pkl", "01/12", "frames_labels");
    snprintf(dir, sizeof dir, "%s", test_data_path("finediving/bad_split_key"));
    check_error(aqa_ann_load_finediving(dir), "test_split.pkl", "FINADivingWorldCup2021_Men3m_final_r9/99", NULL);
    snprintf(dir, sizeof dir, "%s", test_data_path("finediving/bad_fraction"));
    check_error(aqa_ann_load_finediving(dir), "FINADivingWorldCup2021_Men3m_final_r1/8", "steps_transit_frames",
                "not an integer");
}

/* Scratch directory with copies of files (optionally truncated or replaced). */
static char scratch[64];

static int make_scratch(void) {
    snprintf(scratch, sizeof scratch, "/tmp/aqa_test_ann_XXXXXX");
    return mkdtemp(scratch) != NULL;
}

static void remove_scratch(void) {
    DIR *d = opendir(scratch);
    struct dirent *e;
    char p[512];
    if (!d) return;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", scratch, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(scratch);
}

/* Copies src to scratch/name, keeping `keep` bytes (all when keep < 0). */
static int copy_file(const char *src, const char *name, long keep) {
    FILE *in = fopen(src, "rb"), *out;
    char p[512];
    int c;
    long n = 0;
    if (!in) return 0;
    snprintf(p, sizeof p, "%s/%s", scratch, name);
    out = fopen(p, "wb");
    if (!out) {
        fclose(in);
        return 0;
    }
    while ((c = fgetc(in)) != EOF && (keep < 0 || n < keep)) {
        fputc(c, out);
        n++;
    }
    fclose(in);
    fclose(out);
    return 1;
}

static void write_text(const char *name, const char *text) {
    char p[512];
    FILE *f;
    snprintf(p, sizeof p, "%s/%s", scratch, name);
    f = fopen(p, "w");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static void test_errors_truncated(void) {
    static const char *names[] = {"FineDiving_coarse_annotation.pkl", "FineDiving_fine-grained_annotation.pkl",
                                  "train_split.pkl", "test_split.pkl"};
    char src[4200];
    int i;
    if (!make_scratch()) {
        SKIP("cannot create a scratch directory");
        return;
    }
    for (i = 0; i < 4; i++) {
        snprintf(src, sizeof src, "%s/%s", test_data_path("finediving"), names[i]);
        CHECK(copy_file(src, names[i], i == 1 ? 3000 : -1));
    }
    check_error(aqa_ann_load_finediving(scratch), "FineDiving_fine-grained_annotation.pkl", "truncated", "byte offset");
    remove_scratch();

    /* MTL-AQA: annotation file replaced by the FineDiving coarse file ((str, int) keys) */
    if (!make_scratch()) return;
    snprintf(src, sizeof src, "%s/FineDiving_coarse_annotation.pkl", test_data_path("finediving"));
    CHECK(copy_file(src, "final_annotations_dict_with_dive_number.pkl", -1));
    check_error(aqa_ann_load_mtl_aqa(scratch), "final_annotations_dict_with_dive_number.pkl", "entry 0",
                "(video, dive)");
    remove_scratch();

    /* MTL-AQA: the real file truncated (when present) */
    snprintf(src, sizeof src, "%s/final_annotations_dict_with_dive_number.pkl", test_shared_path("MTL-AQA"));
    if (file_exists(src) && make_scratch()) {
        CHECK(copy_file(src, "final_annotations_dict_with_dive_number.pkl", 100000));
        check_error(aqa_ann_load_mtl_aqa(scratch), "final_annotations_dict_with_dive_number.pkl", "truncated", NULL);
        remove_scratch();
    }

    /* a malformed record names the file, the sample and the field (scripts/gen_annotation_golden.py) */
    check_error(aqa_ann_load_mtl_aqa(test_data_path("annotations/bad_mtl")), "final_annotations_dict_with_dive_number.pkl",
                "02_5", "judge_scores");
    check_error(aqa_ann_load_jigsaws(test_data_path("annotations/bad_jigsaws")), "label.pkl", "Suturing_B002",
                "5 GRS scores");

    /* Fis-V: a malformed line is named by file and line number */
    if (!make_scratch()) return;
    write_text("train_dataset.txt", "1 28.71 29.36 1\n2 30.0 x 0\n");
    write_text("test_dataset.txt", "3 1 2 0\n");
    check_error(aqa_ann_load_fisv(scratch), "train_dataset.txt:2", "field 'pcs'", "id tes pcs ded");
    write_text("train_dataset.txt", "1 28.71 29.36 1\n");
    write_text("test_dataset.txt", "1 1 2 0\n");
    check_error(aqa_ann_load_fisv(scratch), "appears twice", "'1'", NULL);
    write_text("test_dataset.txt", "\n4 1 2 0\n\n");
    {
        aqa_ann_manifest *m = aqa_ann_load_fisv(scratch);
        CHECK_MSG(m != NULL, "%s", aqa_last_error());
        if (m) {
            CHECK_EQ_INT(m->n_samples, 2);
            CHECK_NEAR(m->samples[0].score, 28.71 + 29.36 - 1, 1e-12);
        }
        aqa_ann_free(m);
    }
    remove_scratch();
}

int main(void) {
    RUN(test_mtl_aqa_published_counts);
    RUN(test_mtl_aqa_golden);
    RUN(test_jigsaws_published_counts);
    RUN(test_jigsaws_golden);
    RUN(test_fisv_published_counts);
    RUN(test_fisv_golden);
    RUN(test_finediving_fixture);
    RUN(test_finediving_published_counts);
    RUN(test_errors_missing_files);
    RUN(test_errors_wrong_structure);
    RUN(test_errors_truncated);
    free_golden();
    return test_finish();
}
