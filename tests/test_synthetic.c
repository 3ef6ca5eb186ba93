/* test_synthetic.c: the synthetic diving dataset generator (datasets/synthetic.h) and the pickle
 * writer it uses (io/pickle_write.h).
 *
 * The pickle writer is checked by reading its output back with aqa's independent pickle reader
 * (io/pickle.h); scripts/check_synthetic.py checks the same files with Python's own pickle and
 * numpy.  The generator is checked for: annotations read back by the FineDiving loader equal to the
 * plan; frame files exactly start_frame..end_frame, decoding to the rendered frames; labels that
 * agree with steps_transit_frames; scores = DD x middle three judges within [0, 30 DD];
 * determinism by seed (byte-identical trees, whatever the thread count; another seed differs); and
 * that the frames carry the signal models must learn: where the figure is and how much of it is
 * visible separates take-off, flight and entry, and splash size follows the execution quality. */
#define _XOPEN_SOURCE 700
#include "datasets/annotations.h"
#include "datasets/fina.h"
#include "image/image.h"
#include "io/pickle.h"
#include "io/pickle_write.h"
#include "datasets/synthetic.h"
#include "tests/testlib.h"

#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------------------------- */
/* helpers: temporary folders, file trees */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static char *make_tmpdir(void) {
    char tmpl[] = "/tmp/aqa_test_synthetic_XXXXXX";
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}

static char **tree_files;
static size_t tree_n, tree_root_len;

static int collect(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)ftw;
    if (flag == FTW_F) {
        tree_files = realloc(tree_files, (tree_n + 1) * sizeof *tree_files);
        tree_files[tree_n++] = strdup(path + tree_root_len);
    }
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Sorted relative paths of every file under dir; *n receives the count (free with free_tree). */
static char **list_tree(const char *dir, size_t *n) {
    tree_files = NULL;
    tree_n = 0;
    tree_root_len = strlen(dir);
    nftw(dir, collect, 16, FTW_PHYS);
    qsort(tree_files, tree_n, sizeof *tree_files, cmp_str);
    *n = tree_n;
    return tree_files;
}

static void free_tree(char **t, size_t n) {
    for (size_t i = 0; i < n; i++) free(t[i]);
    free(t);
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(len > 0 ? (size_t)len : 1);
    *n = fread(b, 1, (size_t)len, f);
    fclose(f);
    return b;
}

/* 1 when the two trees hold the same files with the same bytes. */
static int trees_equal(const char *a, const char *b, int *n_files) {
    size_t na, nb;
    char **ta = list_tree(a, &na);
    char **tb = list_tree(b, &nb);
    int same = na == nb;
    for (size_t i = 0; same && i < na; i++) {
        char pa[4096], pb[4096];
        size_t la, lb;
        if (strcmp(ta[i], tb[i])) {
            same = 0;
            break;
        }
        snprintf(pa, sizeof pa, "%s%s", a, ta[i]);
        snprintf(pb, sizeof pb, "%s%s", b, tb[i]);
        unsigned char *ba = read_all(pa, &la), *bb = read_all(pb, &lb);
        same = ba && bb && la == lb && !memcmp(ba, bb, la);
        free(ba);
        free(bb);
    }
    *n_files = (int)na;
    free_tree(ta, na);
    free_tree(tb, nb);
    return same;
}

static int files_equal(const char *a, const char *b) {
    size_t la, lb;
    unsigned char *ba = read_all(a, &la), *bb = read_all(b, &lb);
    int same = ba && bb && la == lb && !memcmp(ba, bb, la);
    free(ba);
    free(bb);
    return same;
}

/* Spearman's rank correlation (average ranks for ties), computed here independently. */
static void rank(const double *x, int n, double *r) {
    for (int i = 0; i < n; i++) {
        double less = 0, eq = 0;
        for (int j = 0; j < n; j++) {
            if (x[j] < x[i]) less++;
            else if (x[j] == x[i]) eq++;
        }
        r[i] = less + (eq - 1) / 2;
    }
}

static double spearman(const double *a, const double *b, int n) {
    double *ra = malloc(n * sizeof *ra), *rb = malloc(n * sizeof *rb), ma = 0, mb = 0, sab = 0, saa = 0, sbb = 0;
    rank(a, n, ra);
    rank(b, n, rb);
    for (int i = 0; i < n; i++) ma += ra[i] / n, mb += rb[i] / n;
    for (int i = 0; i < n; i++) {
        sab += (ra[i] - ma) * (rb[i] - mb);
        saa += (ra[i] - ma) * (ra[i] - ma);
        sbb += (rb[i] - mb) * (rb[i] - mb);
    }
    free(ra);
    free(rb);
    return sab / sqrt(saa * sbb);
}

static aqa_synthetic_config small_config(int n, uint64_t seed, int size) {
    aqa_synthetic_config c;
    aqa_synthetic_config_init(&c);
    c.n_videos = n;
    c.seed = seed;
    c.width = c.height = size;
    c.min_frames = 20;
    c.max_frames = 48;
    c.dives_per_video = 4;
    return c;
}

/* ---------------------------------------------------------------------------------------- */
/* pickle writer */

static void test_pickle_writer_roundtrip(void) {
    static const int64_t ints[] = {0, 1, 255, 256, 65535, 65536, -1, -256, INT32_MIN, INT32_MAX, (int64_t)INT32_MAX + 1,
                                   (int64_t)INT32_MIN - 1, 1LL << 40, -(1LL << 40), INT64_MAX, INT64_MIN, 128, -128, 32768};
    static const double flts[] = {0.0, -0.0, 1.5, -2.25, 81.6, 1e300, -1e-300, 3.2};
    const int64_t arr[] = {-1, 0, 5, 1LL << 40, INT64_MIN, 255, 128};
    const double farr[] = {0.5, -1.25, 1e10};
    const size_t n_ints = sizeof ints / sizeof ints[0], n_flts = sizeof flts / sizeof flts[0];
    aqa_pickle_writer *w = aqa_pkw_new();
    CHECK(w != NULL);
    if (!w) return;
    aqa_pkw_dict_begin(w);
    aqa_pkw_str(w, "ints");
    aqa_pkw_list_begin(w);
    for (size_t i = 0; i < n_ints; i++) aqa_pkw_int(w, ints[i]);
    aqa_pkw_list_end(w);
    aqa_pkw_str(w, "floats");
    aqa_pkw_tuple_begin(w);
    for (size_t i = 0; i < n_flts; i++) aqa_pkw_float(w, flts[i]);
    aqa_pkw_tuple_end(w);
    aqa_pkw_tuple_begin(w); /* a (str, int) key like FineDiving's */
    aqa_pkw_str(w, "FINADivingWorldCup2021_Men3m_final_r1");
    aqa_pkw_int(w, 8);
    aqa_pkw_tuple_end(w);
    aqa_pkw_i64_array(w, arr, sizeof arr / sizeof arr[0]);
    aqa_pkw_str(w, "f64");
    aqa_pkw_f64_array(w, farr, 3);
    aqa_pkw_str(w, "empty");
    aqa_pkw_i64_array(w, NULL, 0);
    aqa_pkw_str(w, "caf\xc3\xa9 \xe2\x82\xac");
    aqa_pkw_none(w);
    aqa_pkw_int(w, 7);
    aqa_pkw_bool(w, 1);
    aqa_pkw_str(w, "nested");
    aqa_pkw_list_begin(w);
    aqa_pkw_dict_begin(w);
    aqa_pkw_dict_end(w);
    aqa_pkw_list_begin(w);
    aqa_pkw_list_end(w);
    aqa_pkw_tuple_begin(w);
    aqa_pkw_tuple_end(w);
    aqa_pkw_bool(w, 0);
    aqa_pkw_list_end(w);
    aqa_pkw_dict_end(w);
    const uint8_t *buf;
    size_t len;
    CHECK_EQ_INT(aqa_pkw_finish(w, &buf, &len), AQA_OK);
    CHECK(len > 2 && buf[0] == 0x80 && buf[1] == 2 && buf[len - 1] == '.');
    aqa_pyobj *r = aqa_pickle_loads(buf, len, "roundtrip");
    CHECK_MSG(r != NULL, "reader: %s", aqa_last_error());
    if (r) {
        CHECK_EQ_INT(r->type, AQA_PY_DICT);
        CHECK_EQ_INT(r->u.dict.len, 8);
        const aqa_pyobj *l = aqa_pydict_get_str(r, "ints");
        CHECK(l && l->type == AQA_PY_LIST && l->u.seq.len == n_ints);
        for (size_t i = 0; l && i < l->u.seq.len && i < n_ints; i++) {
            CHECK_EQ_INT(l->u.seq.items[i]->type, AQA_PY_INT);
            CHECK_MSG(l->u.seq.items[i]->u.i == ints[i], "int %zu: %lld != %lld", i, (long long)l->u.seq.items[i]->u.i,
                      (long long)ints[i]);
        }
        const aqa_pyobj *t = aqa_pydict_get_str(r, "floats");
        CHECK(t && t->type == AQA_PY_TUPLE && t->u.seq.len == n_flts);
        for (size_t i = 0; t && i < t->u.seq.len && i < n_flts; i++) {
            CHECK_EQ_INT(t->u.seq.items[i]->type, AQA_PY_FLOAT);
            CHECK(memcmp(&t->u.seq.items[i]->u.f, &flts[i], 8) == 0); /* bit-exact, -0.0 included */
        }
        const aqa_pyobj *a = aqa_pydict_get_str_int(r, "FINADivingWorldCup2021_Men3m_final_r1", 8);
        CHECK(a && a->type == AQA_PY_NDARRAY && a->u.arr.dtype == AQA_NP_I8 && a->u.arr.ndim == 1 &&
              a->u.arr.size == 7);
        if (a && a->type == AQA_PY_NDARRAY && a->u.arr.size == 7)
            CHECK(memcmp(a->u.arr.data, arr, sizeof arr) == 0);
        const aqa_pyobj *f = aqa_pydict_get_str(r, "f64");
        CHECK(f && f->type == AQA_PY_NDARRAY && f->u.arr.dtype == AQA_NP_F8 && f->u.arr.size == 3);
        if (f && f->type == AQA_PY_NDARRAY && f->u.arr.size == 3) CHECK(memcmp(f->u.arr.data, farr, sizeof farr) == 0);
        const aqa_pyobj *e = aqa_pydict_get_str(r, "empty");
        CHECK(e && e->type == AQA_PY_NDARRAY && e->u.arr.size == 0 && e->u.arr.ndim == 1);
        const aqa_pyobj *u = aqa_pydict_get_str(r, "caf\xc3\xa9 \xe2\x82\xac");
        CHECK(u && u->type == AQA_PY_NONE);
        const aqa_pyobj *s = aqa_pydict_get_int(r, 7);
        CHECK(s && s->type == AQA_PY_BOOL && s->u.b == 1);
        const aqa_pyobj *nl = aqa_pydict_get_str(r, "nested");
        CHECK(nl && nl->type == AQA_PY_LIST && nl->u.seq.len == 4);
        if (nl && nl->type == AQA_PY_LIST && nl->u.seq.len == 4) {
            CHECK(nl->u.seq.items[0]->type == AQA_PY_DICT && nl->u.seq.items[0]->u.dict.len == 0);
            CHECK(nl->u.seq.items[1]->type == AQA_PY_LIST && nl->u.seq.items[1]->u.seq.len == 0);
            CHECK(nl->u.seq.items[2]->type == AQA_PY_TUPLE && nl->u.seq.items[2]->u.seq.len == 0);
            CHECK(nl->u.seq.items[3]->type == AQA_PY_BOOL && nl->u.seq.items[3]->u.b == 0);
        }
        aqa_pyobj_free(r);
    }
    aqa_pkw_free(w);
}

static void test_pickle_writer_errors(void) {
    aqa_pickle_writer *w = aqa_pkw_new();
    CHECK_EQ_INT(aqa_pkw_str(w, "bad \xc3("), AQA_EINVAL); /* invalid UTF-8 */
    CHECK_EQ_INT(aqa_pkw_int(w, 1), AQA_EINVAL);          /* sticky */
    CHECK_EQ_INT(aqa_pkw_finish(w, NULL, NULL), AQA_EINVAL);
    aqa_pkw_free(w);
    const char *bad_utf8[] = {"\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\x80"};
    for (size_t i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        w = aqa_pkw_new();
        CHECK_MSG(aqa_pkw_str(w, bad_utf8[i]) == AQA_EINVAL, "bad UTF-8 case %zu accepted", i);
        aqa_pkw_free(w);
    }
    w = aqa_pkw_new();
    aqa_pkw_dict_begin(w);
    aqa_pkw_str(w, "key");
    CHECK_EQ_INT(aqa_pkw_dict_end(w), AQA_EINVAL); /* key without value */
    aqa_pkw_free(w);
    w = aqa_pkw_new();
    aqa_pkw_list_begin(w);
    CHECK_EQ_INT(aqa_pkw_tuple_end(w), AQA_EINVAL); /* mismatched end */
    aqa_pkw_free(w);
    w = aqa_pkw_new();
    aqa_pkw_list_begin(w);
    CHECK_EQ_INT(aqa_pkw_finish(w, NULL, NULL), AQA_EINVAL); /* unclosed */
    CHECK(strstr(aqa_last_error(), "unclosed") != NULL);
    aqa_pkw_free(w);
    w = aqa_pkw_new();
    aqa_pkw_int(w, 1);
    aqa_pkw_int(w, 2);
    CHECK_EQ_INT(aqa_pkw_finish(w, NULL, NULL), AQA_EINVAL); /* two top-level values */
    aqa_pkw_free(w);
    w = aqa_pkw_new();
    aqa_pkw_int(w, 1);
    CHECK_EQ_INT(aqa_pkw_finish(w, NULL, NULL), AQA_OK);
    CHECK_EQ_INT(aqa_pkw_int(w, 2), AQA_ESTATE); /* after finish */
    aqa_pkw_free(w);
    w = aqa_pkw_new();
    aqa_pkw_int(w, 1);
    CHECK_EQ_INT(aqa_pkw_save(w, "/nonexistent-dir/x.pkl"), AQA_EIO);
    CHECK(strstr(aqa_last_error(), "/nonexistent-dir/x.pkl") != NULL);
    aqa_pkw_free(w);
}

/* ---------------------------------------------------------------------------------------- */
/* plan */

static void test_catalogue_labels(void) {
    size_t n;
    const aqa_synthetic_dive_type *cat = aqa_synthetic_catalogue(&n);
    CHECK(n >= 8 && n <= 16);
    aqa_synthetic_config c = small_config((int)n * 3, 5, 32);
    aqa_synthetic_dive *dv;
    size_t nd;
    CHECK_EQ_INT(aqa_synthetic_plan(&c, &dv, &nd), AQA_OK);
    if (nd != n * 3) return;
    int seen[64] = {0};
    for (size_t i = 0; i < nd; i++) {
        const aqa_synthetic_dive *d = &dv[i];
        aqa_dive fd;
        CHECK_EQ_INT(aqa_dive_parse(d->number, &fd), AQA_OK);
        CHECK_STR(d->number, cat[d->type].number);
        CHECK_EQ_INT(d->difficulty * 10, lround(cat[d->type].difficulty * 10));
        seen[d->type]++;
        /* the step names follow the dive number: direction, somersaults in the position, twists */
        const char *take = aqa_finediving_subaction_name(d->step_ids[0]);
        const char *soms = aqa_finediving_subaction_name(d->step_ids[1]);
        CHECK(take && soms);
        if (!take || !soms) continue;
        char dir[32];
        snprintf(dir, sizeof dir, "%s%s", fd.armstand ? "Arm." : "", aqa_dive_direction_name(fd.direction));
        dir[fd.armstand ? 4 : 0] = (char)(dir[fd.armstand ? 4 : 0] - 'a' + 'A');
        CHECK_STR(take, dir);
        char want[32];
        const char *pos = fd.position == AQA_POS_STRAIGHT ? "Straight" : fd.position == AQA_POS_PIKE ? "Pike" : "Tuck";
        int hs = fd.half_somersaults;
        snprintf(want, sizeof want, "%d%s Som%s.%s", hs / 2 ? hs / 2 : 0, hs % 2 ? ".5" : "", hs > 2 ? "s" : "", pos);
        if (hs == 1) snprintf(want, sizeof want, "0.5 Som.%s", pos);
        CHECK_STR(soms, want);
        CHECK_EQ_INT(d->n_steps, fd.half_twists ? 4 : 3);
        if (fd.half_twists) {
            int ht = fd.half_twists;
            snprintf(want, sizeof want, "%d%s Twist%s", ht / 2, ht % 2 ? ".5" : "", ht > 2 ? "s" : "");
            if (ht == 1) snprintf(want, sizeof want, "0.5 Twist");
            CHECK_STR(aqa_finediving_subaction_name(d->step_ids[2]), want);
        }
        CHECK_EQ_INT(d->step_ids[d->n_steps - 1], 36);
    }
    for (size_t t = 0; t < n; t++) CHECK_EQ_INT(seen[t], 3); /* balanced */
    free(dv);
}

static void test_plan_consistency(void) {
    aqa_synthetic_config c = small_config(120, test_seed("plan"), 32);
    c.min_frames = 16;
    c.max_frames = 130;
    aqa_synthetic_dive *dv;
    size_t n;
    CHECK_EQ_INT(aqa_synthetic_plan(&c, &dv, &n), AQA_OK);
    if (n != 120) return;
    int n_test = 0, short_dives = 0;
    size_t ncat;
    aqa_synthetic_catalogue(&ncat);
    int train_of_type[64] = {0};
    for (size_t i = 0; i < n; i++) {
        const aqa_synthetic_dive *d = &dv[i];
        CHECK(d->n_frames >= c.min_frames && d->n_frames <= c.max_frames);
        CHECK_EQ_INT(d->end_frame - d->start_frame + 1, d->n_frames);
        if (i && d->instance > 1) CHECK(d->start_frame > dv[i - 1].end_frame); /* one untrimmed video */
        short_dives += d->n_frames < 96;
        /* labels change exactly after each transition */
        for (int t = 0; t + 1 < d->n_frames; t++) {
            int changes = aqa_synthetic_frame_label(d, t) != aqa_synthetic_frame_label(d, t + 1);
            int listed = 0;
            for (int k = 0; k < d->n_steps - 1; k++) listed |= d->transit[k] == t;
            CHECK_EQ_INT(changes, listed);
        }
        for (int k = 0; k + 1 < d->n_steps - 1; k++) CHECK(d->transit[k] < d->transit[k + 1]);
        CHECK(d->transit[0] >= 2 && d->transit[d->n_steps - 2] <= d->n_frames - 4); /* >= 3 frames per stage */
        CHECK_EQ_INT(aqa_synthetic_frame_label(d, 0), d->step_ids[0]);
        CHECK_EQ_INT(aqa_synthetic_frame_label(d, d->n_frames - 1), 36);
        CHECK_EQ_INT(aqa_synthetic_frame_stage(d, (int)d->transit[0]), 0);
        CHECK_EQ_INT(aqa_synthetic_frame_stage(d, (int)d->transit[0] + 1), 1);
        CHECK_EQ_INT(aqa_synthetic_frame_stage(d, (int)d->transit[d->n_steps - 2] + 1), 2);
        CHECK_EQ_INT(aqa_synthetic_frame_stage(d, d->n_frames), -1);
        /* score = DD x middle three of seven half-point judges */
        double j[AQA_SYNTH_JUDGES];
        memcpy(j, d->judges, sizeof j);
        for (int a = 0; a < AQA_SYNTH_JUDGES; a++)
            for (int b = a + 1; b < AQA_SYNTH_JUDGES; b++)
                if (j[b] < j[a]) {
                    double x = j[a];
                    j[a] = j[b];
                    j[b] = x;
                }
        for (int a = 0; a < AQA_SYNTH_JUDGES; a++) CHECK(j[a] >= 0 && j[a] <= 10 && j[a] * 2 == floor(j[a] * 2));
        CHECK_NEAR(d->score, d->difficulty * (j[2] + j[3] + j[4]), 1e-9);
        CHECK(d->score >= 0 && d->score <= 30 * d->difficulty);
        CHECK(d->execution >= 0 && d->execution <= 1);
        n_test += d->split;
        if (!d->split) train_of_type[d->type]++;
    }
    CHECK_EQ_INT(n_test, 30); /* 25% of 120 */
    for (size_t t = 0; t < ncat; t++) CHECK_MSG(train_of_type[t] >= 6, "type %zu: %d train dives", t, train_of_type[t]);
    CHECK(short_dives > 0 && short_dives < 120);
    free(dv);
    /* bad configs are refused with a message */
    aqa_synthetic_config b = small_config(0, 1, 32);
    CHECK_EQ_INT(aqa_synthetic_plan(&b, &dv, &n), AQA_EINVAL);
    b = small_config(5, 1, 8);
    CHECK_EQ_INT(aqa_synthetic_plan(&b, &dv, &n), AQA_EINVAL);
    b = small_config(5, 1, 32);
    b.min_frames = 60;
    b.max_frames = 50;
    CHECK_EQ_INT(aqa_synthetic_plan(&b, &dv, &n), AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "frames") != NULL);
    b = small_config(5, 1, 32);
    CHECK_EQ_INT(aqa_synthetic_generate(&b), AQA_EINVAL); /* no out_dir */
}

/* ---------------------------------------------------------------------------------------- */
/* files */

static void test_generate_and_load(void) {
    char *dir = make_tmpdir();
    CHECK(dir != NULL);
    if (!dir) return;
    aqa_synthetic_config c = small_config(6, 11, 32);
    c.out_dir = dir;
    CHECK_MSG(aqa_synthetic_generate(&c) == AQA_OK, "%s", aqa_last_error());
    aqa_synthetic_dive *dv;
    size_t n;
    CHECK_EQ_INT(aqa_synthetic_plan(&c, &dv, &n), AQA_OK);
    aqa_ann_manifest *m = aqa_ann_load_finediving(dir);
    CHECK_MSG(m != NULL, "loader: %s", aqa_last_error());
    if (m && n == 6) {
        CHECK_EQ_INT(m->n_samples, 6);
        const aqa_ann_split *tr = aqa_ann_find_split(m, "train"), *te = aqa_ann_find_split(m, "test");
        CHECK(tr && te && tr->n + te->n == 6);
        int n_test_plan = 0;
        for (size_t i = 0; i < n; i++) n_test_plan += dv[i].split;
        CHECK(te && (int)te->n == n_test_plan);
        for (size_t i = 0; i < m->n_samples && i < n; i++) {
            const aqa_ann_sample *s = &m->samples[i];
            const aqa_synthetic_dive *d = &dv[i];
            char key[128];
            snprintf(key, sizeof key, "%s/%lld", d->video, (long long)d->instance);
            CHECK_STR(s->key, key);
            CHECK_STR(s->video, d->video);
            CHECK_EQ_INT(s->instance, d->instance);
            CHECK_STR(s->dive_number, d->number);
            CHECK_EQ_INT(s->start_frame, d->start_frame);
            CHECK_EQ_INT(s->end_frame, d->end_frame);
            CHECK(s->score == d->score && s->difficulty == d->difficulty);
            CHECK_EQ_INT(s->n_judges, AQA_SYNTH_JUDGES);
            for (int j = 0; j < s->n_judges && j < AQA_SYNTH_JUDGES; j++) CHECK(s->judges[j] == d->judges[j]);
            CHECK_EQ_INT(s->n_frame_labels, d->n_frames);
            for (size_t t = 0; t < s->n_frame_labels; t++)
                CHECK_EQ_INT(s->frame_labels[t], aqa_synthetic_frame_label(d, (int)t));
            CHECK_EQ_INT(s->n_transit, d->n_steps - 1);
            for (size_t k = 0; k < s->n_transit; k++) CHECK_EQ_INT(s->transit_frames[k], d->transit[k]);
            /* which split it is in */
            const aqa_ann_split *sp = d->split ? te : tr;
            int found = 0;
            for (size_t k = 0; sp && k < sp->n; k++) found |= sp->idx[k] == i;
            CHECK(found);
            /* the frames on disk: exactly start..end, decoding to what the renderer draws */
            char vdir[4096], path[4200];
            snprintf(vdir, sizeof vdir, "%s/%s/%lld", dir, d->video, (long long)d->instance);
            size_t nfiles;
            char **files = list_tree(vdir, &nfiles);
            CHECK_EQ_INT(nfiles, d->n_frames);
            for (size_t k = 0; k < nfiles; k++) {
                char want[64];
                snprintf(want, sizeof want, "/%05lld.png", (long long)(d->start_frame + (int64_t)k));
                CHECK_STR(files[k], want);
            }
            free_tree(files, nfiles);
            aqa_image *ref = aqa_image_new(32, 32);
            for (int t = 0; t < d->n_frames; t += d->n_frames / 3) {
                snprintf(path, sizeof path, "%s/%05lld.png", vdir, (long long)(d->start_frame + t));
                aqa_image *im = aqa_image_load(path);
                CHECK_MSG(im != NULL, "%s", aqa_last_error());
                CHECK_EQ_INT(aqa_synthetic_render_frame(&c, d, t, ref), AQA_OK);
                if (im) {
                    CHECK(im->width == 32 && im->height == 32 && !memcmp(im->data, ref->data, 32 * 32 * 3));
                    aqa_image_free(im);
                }
            }
            aqa_image_free(ref);
        }
        /* the whole sub-action table */
        CHECK(m->n_label_names >= 43);
        for (int id = 1; id <= 42 && (size_t)id < m->n_label_names; id++)
            CHECK_STR(m->label_names[id], aqa_finediving_subaction_name(id));
    }
    aqa_ann_free(m);
    /* the raw fine-grained pickle: int64 arrays and the (str, int) key structure */
    char path[4200];
    snprintf(path, sizeof path, "%s/FineDiving_fine-grained_annotation.pkl", dir);
    aqa_pyobj *fine = aqa_pickle_load(path);
    CHECK(fine != NULL);
    if (fine && n == 6) {
        const aqa_pyobj *rec = aqa_pydict_get_str_int(fine, dv[0].video, dv[0].instance);
        const aqa_pyobj *lab = rec ? aqa_pydict_get_str(rec, "frames_labels") : NULL;
        CHECK(lab && lab->type == AQA_PY_NDARRAY && lab->u.arr.dtype == AQA_NP_I8 && lab->u.arr.size == dv[0].n_frames);
        const aqa_pyobj *types = rec ? aqa_pydict_get_str(rec, "sub-action_types") : NULL;
        CHECK(types && types->type == AQA_PY_DICT && (int)types->u.dict.len == dv[0].n_steps);
    }
    aqa_pyobj_free(fine);
    snprintf(path, sizeof path, "%s/fine-grained_annotation_aqa.pkl", dir);
    aqa_pyobj *aq = aqa_pickle_load(path);
    CHECK(aq && aq->type == AQA_PY_DICT && aq->u.dict.len == 6);
    if (aq && n == 6) {
        const aqa_pyobj *rec = aqa_pydict_get_str_int(aq, dv[1].video, dv[1].instance);
        CHECK(rec && rec->type == AQA_PY_LIST && rec->u.seq.len == 5);
        if (rec && rec->type == AQA_PY_LIST && rec->u.seq.len == 5) {
            CHECK_STR(rec->u.seq.items[0]->u.str.ptr, dv[1].number);
            CHECK(rec->u.seq.items[1]->u.f == dv[1].score);
            CHECK(rec->u.seq.items[3]->type == AQA_PY_NDARRAY && rec->u.seq.items[3]->u.arr.size == dv[1].n_steps - 1);
        }
    }
    aqa_pyobj_free(aq);
    /* a dive folder holding a foreign file is not deleted: generation fails and names it */
    if (n == 6) {
        snprintf(path, sizeof path, "%s/%s/%lld/notes.txt", dir, dv[0].video, (long long)dv[0].instance);
        FILE *f = fopen(path, "w");
        if (f) fclose(f);
        CHECK(aqa_synthetic_generate(&c) != AQA_OK);
        CHECK(strstr(aqa_last_error(), "notes.txt") != NULL);
        CHECK(access(path, F_OK) == 0);
    }
    free(dv);
    rm_rf(dir);
    free(dir);
}

static void test_determinism(void) {
    char *a = make_tmpdir(), *b = make_tmpdir(), *c = make_tmpdir();
    CHECK(a && b && c);
    if (a && b && c) {
        aqa_synthetic_config ca = small_config(6, 42, 32);
        ca.out_dir = a;
        ca.threads = 1;
        aqa_synthetic_config cb = ca;
        cb.out_dir = b;
        cb.threads = 3;
        aqa_synthetic_config cc = ca;
        cc.out_dir = c;
        cc.seed = 43;
        CHECK_EQ_INT(aqa_synthetic_generate(&ca), AQA_OK);
        CHECK_EQ_INT(aqa_synthetic_generate(&cb), AQA_OK);
        CHECK_EQ_INT(aqa_synthetic_generate(&cc), AQA_OK);
        int nf = 0;
        CHECK(trees_equal(a, b, &nf));
        CHECK(nf > 6 * 20);
        CHECK(!trees_equal(a, c, &nf));
        char pa[4200], pc[4200];
        snprintf(pa, sizeof pa, "%s/FineDiving_fine-grained_annotation.pkl", a);
        snprintf(pc, sizeof pc, "%s/FineDiving_fine-grained_annotation.pkl", c);
        CHECK(!files_equal(pa, pc));
        /* regenerating into the same folder replaces every dive (no stale frames) */
        ca.min_frames = ca.max_frames = 17;
        CHECK_EQ_INT(aqa_synthetic_generate(&ca), AQA_OK);
        size_t n;
        char **t = list_tree(a, &n);
        int frames = 0;
        for (size_t i = 0; i < n; i++) frames += strstr(t[i], ".png") != NULL;
        free_tree(t, n);
        CHECK_EQ_INT(frames, 6 * 17);
    }
    if (a) rm_rf(a);
    if (b) rm_rf(b);
    if (c) rm_rf(c);
    free(a);
    free(b);
    free(c);
}

static void test_jpeg_frames(void) {
    char *dir = make_tmpdir();
    if (!dir) return;
    aqa_synthetic_config c = small_config(3, 3, 48);
    c.out_dir = dir;
    c.format = AQA_SYNTH_JPEG;
    c.jpeg_quality = 85;
    CHECK_MSG(aqa_synthetic_generate(&c) == AQA_OK, "%s", aqa_last_error());
    aqa_synthetic_dive *dv;
    size_t n;
    CHECK_EQ_INT(aqa_synthetic_plan(&c, &dv, &n), AQA_OK);
    if (n == 3) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s/%lld/%05lld.jpg", dir, dv[2].video, (long long)dv[2].instance,
                 (long long)dv[2].end_frame);
        aqa_image *im = aqa_image_load(path);
        CHECK_MSG(im && im->width == 48 && im->height == 48, "%s", aqa_last_error());
        /* lossy, but close to the rendered frame */
        aqa_image *ref = aqa_image_new(48, 48);
        aqa_synthetic_render_frame(&c, &dv[2], dv[2].n_frames - 1, ref);
        if (im) {
            double err = 0;
            for (int i = 0; i < 48 * 48 * 3; i++) err += fabs((double)im->data[i] - ref->data[i]);
            CHECK(err / (48 * 48 * 3) < 6);
        }
        aqa_image_free(im);
        aqa_image_free(ref);
        free(dv);
    }
    rm_rf(dir);
    free(dir);
}

/* ---------------------------------------------------------------------------------------- */
/* signal */

/* Skin and suit pixels above the water are warm (red well above blue); sky, water, platform and
 * the underwater-tinted body are not.  White pixels are splash. */
typedef struct frame_stats {
    double warm, warm_y, white;
} frame_stats;

static frame_stats stats_of(const aqa_image *im) {
    frame_stats s = {0, 0, 0};
    for (int y = 0; y < im->height; y++)
        for (int x = 0; x < im->width; x++) {
            const uint8_t *p = im->data + aqa_image_offset(im, x, y);
            if (p[0] > 110 && p[0] > p[2] + 35) {
                s.warm++;
                s.warm_y += y;
            }
            if (p[0] > 232 && p[1] > 232 && p[2] > 232) s.white++;
        }
    if (s.warm) s.warm_y /= s.warm;
    return s;
}

static void test_signal_stages(void) {
    aqa_synthetic_config c = small_config(36, test_seed("signal"), 64);
    c.min_frames = 40;
    c.max_frames = 120;
    aqa_synthetic_dive *dv;
    size_t n;
    CHECK_EQ_INT(aqa_synthetic_plan(&c, &dv, &n), AQA_OK);
    if (n != 36) return;
    aqa_image *im = aqa_image_new(64, 64);
    int ok_height = 0, ok_visible = 0, ok_splash = 0, ok_frames = 0, n_frames = 0;
    double splash[36], exec[36];
    for (size_t i = 0; i < n; i++) {
        const aqa_synthetic_dive *d = &dv[i];
        double y[3] = {0}, warm[3] = {0}, white[3] = {0}, cnt[3] = {0};
        double take_warm_max = 0;
        for (int t = 0; t < d->n_frames; t++) {
            aqa_synthetic_render_frame(&c, d, t, im);
            frame_stats s = stats_of(im);
            int st = aqa_synthetic_frame_stage(d, t);
            y[st] += s.warm_y;
            warm[st] += s.warm;
            white[st] += s.white;
            cnt[st]++;
            if (st == 0 && s.warm > take_warm_max) take_warm_max = s.warm;
            /* frame by frame: a figure high and whole during take-off, mostly gone (under water)
             * or with splash by the end of the entry */
            n_frames++;
            if (st == 0) ok_frames += s.warm > 10 && s.warm_y < 0.40 * 64 + 2;
            else if (st == 1) ok_frames += s.warm > 5 && s.white <= 1;
            else ok_frames += s.white > 0 || s.warm < 0.5 * take_warm_max;
        }
        for (int k = 0; k < 3; k++) {
            y[k] /= cnt[k];
            warm[k] /= cnt[k];
            white[k] /= cnt[k];
        }
        ok_height += y[0] < y[1];            /* the figure flies below its take-off height */
        ok_visible += warm[2] < 0.6 * warm[1]; /* and disappears into the water */
        ok_splash += white[2] > white[1] + 0.5;
        splash[i] = white[2];
        exec[i] = d->execution;
    }
    printf("    stage separation: height %d/36, visibility %d/36, splash %d/36 dives; frames %d/%d\n", ok_height, ok_visible,
           ok_splash, ok_frames, n_frames);
    CHECK(ok_height >= 33);
    CHECK(ok_visible >= 33);
    CHECK(ok_splash >= 33);
    CHECK(ok_frames >= 0.9 * n_frames);
    double rho = spearman(splash, exec, 36);
    printf("    Spearman(splash pixels in entry frames, execution) = %.3f\n", rho);
    CHECK(rho < -0.6);
    aqa_image_free(im);
    free(dv);
}

static void test_signal_execution_score(void) {
    aqa_synthetic_config c = small_config(240, 9, 32);
    aqa_synthetic_dive *dv;
    size_t n;
    CHECK_EQ_INT(aqa_synthetic_plan(&c, &dv, &n), AQA_OK);
    if (n != 240) return;
    double e[240], js[240], sc[240], dd[240], jit[240], spl[240];
    for (size_t i = 0; i < n; i++) {
        e[i] = dv[i].execution;
        js[i] = dv[i].score / dv[i].difficulty;
        sc[i] = dv[i].score;
        dd[i] = dv[i].difficulty;
        jit[i] = dv[i].angle_jitter;
        spl[i] = dv[i].splash;
    }
    double r_ej = spearman(e, js, 240), r_es = spearman(e, sc, 240), r_ds = spearman(dd, sc, 240);
    printf("    Spearman: execution-judges %.3f, execution-score %.3f, difficulty-score %.3f\n", r_ej, r_es, r_ds);
    CHECK(r_ej > 0.9);
    CHECK(r_es > 0.5);
    CHECK(r_ds > 0.3); /* both what was dived and how well matter */
    CHECK(spearman(e, jit, 240) < -0.99);
    CHECK(spearman(e, spl, 240) < -0.99);
    free(dv);
}

static void test_contact_sheet(void) {
    char *dir = make_tmpdir();
    if (!dir) return;
    char path[4200];
    snprintf(path, sizeof path, "%s/sheet.png", dir);
    aqa_synthetic_config c = small_config(4, 1, 32);
    CHECK_MSG(aqa_synthetic_contact_sheet(&c, 2, 12, 6, path) == AQA_OK, "%s", aqa_last_error());
    aqa_image *im = aqa_image_load(path);
    CHECK(im && im->width > 6 * 32 && im->height > 2 * 32);
    aqa_image_free(im);
    CHECK_EQ_INT(aqa_synthetic_contact_sheet(&c, 9, 12, 6, path), AQA_EINVAL); /* no such dive */
    rm_rf(dir);
    free(dir);
}

int main(void) {
    RUN(test_pickle_writer_roundtrip);
    RUN(test_pickle_writer_errors);
    RUN(test_catalogue_labels);
    RUN(test_plan_consistency);
    RUN(test_generate_and_load);
    RUN(test_determinism);
    RUN(test_jpeg_frames);
    RUN(test_signal_stages);
    RUN(test_signal_execution_score);
    RUN(test_contact_sheet);
    return test_finish();
}
