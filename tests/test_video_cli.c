/* test_video_cli.c: from video files to a judged score, end to end on a tiny synthetic set that
 * make_synthetic writes as frames and as videos (lossless FFV1: the untrimmed competition videos
 * and one clip per dive; no downloads):
 *   extract_frames gives back the set's frame files byte for byte, resumes, and names a missing
 *   video; extract_features from the videos writes the same cache as from the frames;
 *   score_video on a test dive's clip predicts the score and boundaries evaluate predicts for that
 *   dive (a non-contrastive MVLA model: the same features give the same numbers); with a
 *   contrastive TSA-MVLA ensemble of two seeds it writes the JSON (interval, stages with their
 *   closest texts, exemplars) and the report PNG; bad input gives messages naming it.
 * Without FFmpeg the programs must say so (checked), and the rest skips. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "datasets/annotations.h"
#include "datasets/synthetic.h"
#include "datasets/video_dataset.h"
#include "image/image.h"
#include "image/video.h"
#include "tests/cli_testlib.h"
#include "tests/testlib.h"

static char g_dir[256];
static int g_ready;     /* the set, its videos and a CLIP are there */
static int g_features;  /* the feature cache from frames is there */

static bool same_file(const char *a, const char *b) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s'", a, b);
    return cli_run(cmd, NULL) == 0;
}

/* The JSON object in a file, or NULL. */
static cJSON *read_json(const char *path) {
    FILE *f = fopen(path, "r");
    char *txt = calloc(1, 1 << 20);
    cJSON *o = f && txt && fread(txt, 1, (1 << 20) - 1, f) > 0 ? cJSON_Parse(txt) : NULL;
    if (f) fclose(f);
    free(txt);
    return o;
}

/* The first dive of the test split (its key, video, instance, dive number). */
static const aqa_ann_sample *first_test_dive(aqa_ann_manifest **m) {
    char p[512];
    snprintf(p, sizeof p, "%s/data", g_dir);
    *m = aqa_ann_load_finediving(p);
    const aqa_ann_split *sp = *m ? aqa_ann_find_split(*m, "test") : NULL;
    return sp && sp->n ? &(*m)->samples[sp->idx[0]] : NULL;
}

#define SIZES "--frames 32 --clips 3 --clip-stride 8"
#define TINY "--tsa-heads 2 --temporal-heads 2 --batch 4 --eval-exemplars 3 --progress false --workers 2"

static void test_without_ffmpeg_says_so(void) {
    if (aqa_video_available()) {
        SKIP("built with FFmpeg");
        return;
    }
    if (!cli_have("./examples/score_video") || !cli_have("./examples/extract_frames")) {
        SKIP("programs not built");
        return;
    }
    char *out = NULL;
    CHECK(cli_run("./examples/score_video --checkpoint run.safetensors clip.mp4", &out) != 0);
    CHECK_MSG(out && strstr(out, "without FFmpeg"), "%s", out);
    free(out);
    CHECK(cli_run("./examples/extract_frames --data d --videos v", &out) != 0);
    CHECK_MSG(out && strstr(out, "without FFmpeg"), "%s", out);
    free(out);
}

static void test_prepare(void) {
    if (!aqa_video_available()) {
        SKIP("aqa was built without FFmpeg");
        return;
    }
    if (!cli_have("./examples/make_synthetic") || !cli_have("./examples/pretrain_clip") || !cli_have("./examples/extract_frames") ||
        !cli_have("./examples/extract_features") || !cli_have("./examples/score_video")) {
        SKIP("programs not built");
        return;
    }
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "./examples/make_synthetic --out %s/data --videos 16 --seed %llu --size 32 --frames 40:80 --per-video 4 "
             "--quiet --video-files %s/videos --dive-files %s/clips --video-ext mkv --video-codec ffv1",
             g_dir, (unsigned long long)test_seed("synthetic set"), g_dir, g_dir);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "competition videos") && strstr(out, "dives as .mkv"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "./examples/pretrain_clip --data %s/data --out %s/clip --steps 6 --batch 16 --frames 8 --res 16 "
             "--patch 8 --width 32 --layers 1 --heads 2 --embed 32 --text-width 32 --text-layers 1 --text-heads 2",
             g_dir, g_dir);
    rc |= cli_run(cmd, &out);
    CHECK_MSG(rc == 0, "pretrain_clip:\n%s", out);
    free(out);
    g_ready = rc == 0;
}

/* The competition videos back to the set's frame folders, byte for byte; resume; errors. */
static void test_extract_frames(void) {
    if (!g_ready) {
        SKIP("not prepared");
        return;
    }
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "./examples/extract_frames --data %s/data --videos %s/videos --out %s/frames --height 0 --format png "
             "--progress false",
             g_dir, g_dir, g_dir);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "extracted 16 dives"), "%s", out);
    free(out);
    /* every frame file of the set, the same bytes (PNG of the same pixels) */
    snprintf(cmd, sizeof cmd, "cd %s/data && ls -d SyntheticDiving_*/*/*.png", g_dir);
    rc = cli_run(cmd, &out);
    int files = 0, differ = 0;
    for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n")) {
        char a[1024], b[1024];
        snprintf(a, sizeof a, "%s/data/%s", g_dir, line);
        snprintf(b, sizeof b, "%s/frames/%s", g_dir, line);
        files++;
        differ += !same_file(a, b);
    }
    free(out);
    CHECK_MSG(files > 16 * 40 && differ == 0, "%d frame files, %d differ", files, differ);
    snprintf(cmd, sizeof cmd, "ls %s/frames/SyntheticDiving_Event002/ | wc -l", g_dir);
    cli_run(cmd, &out);
    CHECK_MSG(out && atoi(out) == 4, "Event002 holds: %s", out); /* no hidden leftovers listed */
    free(out);
    /* resume: only a removed dive is extracted again */
    snprintf(cmd, sizeof cmd, "rm -r %s/frames/SyntheticDiving_Event003/2", g_dir);
    cli_run(cmd, NULL);
    snprintf(cmd, sizeof cmd,
             "./examples/extract_frames --data %s/data --videos %s/videos --out %s/frames --height 0 --format png "
             "--progress false",
             g_dir, g_dir, g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "extracted 1 dives") && strstr(out, "already there (resumed) 15"), "%s", out);
    free(out);
    /* the FineDiving default: 256-row JPEGs (aspect kept) */
    snprintf(cmd, sizeof cmd,
             "./examples/extract_frames --data %s/data --videos %s/videos --out %s/frames256 --split test --progress false",
             g_dir, g_dir, g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "extracted 4 dives"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "ls %s/frames256/*/*/*.jpg | head -1", g_dir);
    cli_run(cmd, &out);
    if (out) out[strcspn(out, "\n")] = 0;
    aqa_image *im = out ? aqa_image_load(out) : NULL;
    CHECK_MSG(im && im->width == 256 && im->height == 256, "%s", out);
    aqa_image_free(im);
    free(out);
    /* a missing video stops the run with its name; --skip-bad counts it */
    snprintf(cmd, sizeof cmd, "./examples/extract_frames --data %s/data --videos %s/nowhere --out %s/x --progress false",
             g_dir, g_dir, g_dir);
    CHECK(cli_run(cmd, &out) != 0);
    CHECK_MSG(out && strstr(out, "nowhere/SyntheticDiving_Event001"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd,
             "./examples/extract_frames --data %s/data --videos %s/nowhere --out %s/x --progress false --skip-bad", g_dir,
             g_dir, g_dir);
    CHECK(cli_run(cmd, &out) == 0);
    CHECK_MSG(out && strstr(out, "skipped as bad 16"), "%s", out);
    free(out);
}

/* Features from the videos (a dataset folder with annotations only) equal those from the frames. */
static void test_extract_features_from_videos(void) {
    if (!g_ready) {
        SKIP("not prepared");
        return;
    }
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "mkdir -p %s/vdata && cp %s/data/*.pkl %s/vdata/", g_dir, g_dir, g_dir);
    CHECK(cli_run(cmd, NULL) == 0);
    const char *common = "--clip %s/clip/clip.safetensors --vocab %s/clip/vocab.txt " SIZES
                         " --i3d-width 0.0625 --i3d-short 32 --i3d-size 32 --i3d-calibrate 2 --progress false";
    char fmt[1024], opts[2048];
    snprintf(fmt, sizeof fmt, "%s", common);
    snprintf(opts, sizeof opts, fmt, g_dir, g_dir);
    snprintf(cmd, sizeof cmd, "./examples/extract_features --data %s/data --out %s/feat %s", g_dir, g_dir, opts);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "extracted 16,"), "%s", out);
    free(out);
    g_features = rc == 0;
    snprintf(cmd, sizeof cmd, "./examples/extract_features --data %s/vdata --videos %s/videos --out %s/vfeat %s", g_dir,
             g_dir, g_dir, opts);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "extracted 16,"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "cd %s/feat && for f in *; do cmp -s $f ../vfeat/$f || echo differs $f; done", g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && !strstr(out, "differs"), "%s", out);
    free(out);
}

/* A non-contrastive MVLA model: score_video on a test dive's clip predicts what evaluate predicts
 * for that dive (the same features, texts and boundaries). */
static void test_score_matches_evaluate(void) {
    if (!g_features) {
        SKIP("no feature cache");
        return;
    }
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/data --features %s/feat --out %s/run_mlp --head mlp --epochs 1 " SIZES " " TINY,
             g_dir, g_dir, g_dir);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0, "train_mvla:\n%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "./examples/evaluate --checkpoint %s/run_mlp/last.safetensors --out %s/eval_mlp --figures 0",
             g_dir, g_dir);
    rc |= cli_run(cmd, &out);
    CHECK_MSG(rc == 0, "evaluate:\n%s", out);
    free(out);
    aqa_ann_manifest *m = NULL;
    const aqa_ann_sample *s = first_test_dive(&m);
    CHECK(s != NULL);
    if (rc || !s) {
        aqa_ann_free(m);
        return;
    }
    /* evaluate's row of that dive: key,dive_number,difficulty,true,pred,abs_error,true_b1,true_b2,pred_b1,pred_b2,iou */
    char path[1024], line[1024];
    snprintf(path, sizeof path, "%s/eval_mlp/predictions.csv", g_dir);
    FILE *f = fopen(path, "r");
    double pred = NAN;
    long pb1 = -1, pb2 = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, s->key, strlen(s->key)) && line[strlen(s->key)] == ',') {
            char *p = line;
            for (int k = 0; k < 4; k++) p = strchr(p, ',') + 1;
            pred = strtod(p, NULL);
            for (int k = 0; k < 4; k++) p = strchr(p, ',') + 1;
            pb1 = strtol(p, &p, 10);
            pb2 = strtol(p + 1, NULL, 10);
        }
    if (f) fclose(f);
    CHECK_MSG(isfinite(pred), "%s not in %s", s->key, path);
    snprintf(cmd, sizeof cmd,
             "./examples/score_video --checkpoint %s/run_mlp --dive %s %s/clips/%s_%lld.mkv --json %s/score_mlp.json",
             g_dir, s->dive_number, g_dir, s->video, (long long)s->instance, g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0, "score_video:\n%s", out);
    double score = cli_metric(out, "score");
    CHECK_MSG(fabs(score - pred) <= 1e-4 * fmax(1, fabs(pred)), "score_video %.6f, evaluate %.6f\n%s", score, pred, out);
    free(out);
    /* the boundaries (sampled positions) in the JSON equal evaluate's */
    snprintf(path, sizeof path, "%s/score_mlp.json", g_dir);
    cJSON *o = read_json(path);
    CHECK_MSG(o != NULL, "no JSON in %s", path);
    cJSON *bs = cJSON_GetObjectItem(o, "boundaries");
    CHECK(cJSON_GetArraySize(bs) == 2);
    if (cJSON_GetArraySize(bs) == 2) {
        CHECK_EQ_INT((long)cJSON_GetObjectItem(cJSON_GetArrayItem(bs, 0), "sampled")->valuedouble, pb1);
        CHECK_EQ_INT((long)cJSON_GetObjectItem(cJSON_GetArrayItem(bs, 1), "sampled")->valuedouble, pb2);
    }
    /* the sampled frames are the dataset's (its frame numbers), counted from the clip's first frame */
    cJSON *sf = cJSON_GetObjectItem(o, "sampled_frames");
    CHECK_EQ_INT(cJSON_GetArraySize(sf), 32);
    int64_t want[32];
    aqa_vd_linspace_int(s->start_frame, s->end_frame, 32, want);
    for (int t = 0; t < cJSON_GetArraySize(sf) && t < 32; t++)
        CHECK_EQ_INT((long)cJSON_GetArrayItem(sf, t)->valuedouble + s->start_frame, want[t]);
    cJSON_Delete(o);
    aqa_ann_free(m);
}

/* A contrastive TSA-MVLA ensemble of two seeds: the interval, the stages' closest texts, the
 * exemplars in the JSON, and the report. */
static void test_score_ensemble_report(void) {
    if (!g_features) {
        SKIP("no feature cache");
        return;
    }
    char cmd[4096], *out = NULL;
    for (int seed = 0; seed < 2; seed++) {
        snprintf(cmd, sizeof cmd,
                 "./examples/train_mvla --data %s/data --features %s/feat --out %s/run_tsa%d --seed %d --epochs 1 " SIZES " " TINY,
                 g_dir, g_dir, g_dir, seed, seed);
        int rc = cli_run(cmd, &out);
        CHECK_MSG(rc == 0, "train_mvla:\n%s", out);
        free(out);
    }
    aqa_ann_manifest *m = NULL;
    const aqa_ann_sample *s = first_test_dive(&m);
    if (!s) {
        aqa_ann_free(m);
        return;
    }
    snprintf(cmd, sizeof cmd,
             "./examples/score_video --ensemble %s/run_tsa0,%s/run_tsa1/last.safetensors --dive %s "
             "--video %s/clips/%s_%lld.mkv --json %s/ensemble.json --report %s/report",
             g_dir, g_dir, s->dive_number, g_dir, s->video, (long long)s->instance, g_dir, g_dir);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0, "score_video --ensemble:\n%s", out);
    double score = cli_metric(out, "score"), lo = cli_metric(out, "score_min"), hi = cli_metric(out, "score_max");
    CHECK_MSG(isfinite(score) && lo <= score && score <= hi && lo < hi, "score %g in [%g, %g]?\n%s", score, lo, hi, out);
    CHECK(out && strstr(out, "interval [") && strstr(out, "stage 2 flight") && strstr(out, "exemplars: 3 from the training"));
    char path[1024];
    snprintf(path, sizeof path, "%s/ensemble.json", g_dir);
    cJSON *o = read_json(path);
    CHECK_MSG(o != NULL, "no JSON in %s", path);
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(o, "runs")), 2);
    cJSON *iv = cJSON_GetObjectItem(o, "interval");
    CHECK(iv && fabs(cJSON_GetObjectItem(iv, "min")->valuedouble - lo) < 1e-3);
    cJSON *st = cJSON_GetObjectItem(o, "stages");
    CHECK_EQ_INT(cJSON_GetArraySize(st), 3);
    for (int k = 0; k < cJSON_GetArraySize(st); k++)
        CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(st, k), "closest_texts")), 3);
    cJSON *ex = cJSON_GetObjectItem(o, "exemplars");
    CHECK_EQ_INT(cJSON_GetArraySize(ex), 3);
    /* 'w/ DN': the exemplars share the dive number, and none is the scored test dive */
    for (int k = 0; k < cJSON_GetArraySize(ex); k++) {
        cJSON *x = cJSON_GetArrayItem(ex, k);
        CHECK(strcmp(cJSON_GetObjectItem(x, "key")->valuestring, s->key) != 0);
    }
    CHECK_EQ_INT(cJSON_GetArraySize(cJSON_GetObjectItem(o, "boundary_probability")), 32);
    cJSON_Delete(o);
    free(out);
    snprintf(path, sizeof path, "%s/report/report.png", g_dir);
    aqa_image *im = aqa_image_load(path);
    CHECK_MSG(im && im->width == 1200 && im->height > 400, "%s: %s", path, aqa_last_error());
    aqa_image_free(im);
    aqa_clear_error();
    aqa_ann_free(m);
}

static void test_score_errors(void) {
    if (!g_features) {
        SKIP("no feature cache");
        return;
    }
    char cmd[4096], *out = NULL, ck[600];
    snprintf(ck, sizeof ck, "%s/run_mlp/last.safetensors", g_dir);
    snprintf(cmd, sizeof cmd, "./examples/score_video --checkpoint %s --dive 105b %s/none.mp4", ck, g_dir);
    CHECK(cli_run(cmd, &out) != 0);
    CHECK_MSG(out && strstr(out, "none.mp4"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "./examples/score_video --checkpoint %s --dive 105b %s/data/train_split.pkl", ck, g_dir);
    CHECK(cli_run(cmd, &out) != 0);
    CHECK_MSG(out && strstr(out, "train_split.pkl"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "ls %s/clips/*.mkv | head -1", g_dir);
    cli_run(cmd, &out);
    char clip[600] = "";
    if (out) snprintf(clip, sizeof clip, "%.*s", (int)strcspn(out, "\n"), out);
    free(out);
    snprintf(cmd, sizeof cmd, "./examples/score_video --checkpoint %s %s", ck, clip);
    CHECK(cli_run(cmd, &out) != 0);
    CHECK_MSG(out && strstr(out, "--dive"), "no dive: %s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "./examples/score_video --checkpoint %s --dive 105b --start 9 --end 2 %s", ck, clip);
    CHECK(cli_run(cmd, &out) != 0);
    CHECK_MSG(out && strstr(out, "--start"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "./examples/score_video --checkpoint %s --dive 105b --speling 1 %s", ck, clip);
    CHECK(cli_run(cmd, &out) != 0);
    CHECK_MSG(out && strstr(out, "speling"), "%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "./examples/score_video --checkpoint %s/none.safetensors --dive 105b %s", g_dir, clip);
    CHECK(cli_run(cmd, &out) != 0);
    CHECK_MSG(out && strstr(out, "none.safetensors"), "%s", out);
    free(out);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/aqa_videocli_XXXXXX");
    if (!mkdtemp(g_dir)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    RUN(test_without_ffmpeg_says_so);
    RUN(test_prepare);
    RUN(test_extract_frames);
    RUN(test_extract_features_from_videos);
    RUN(test_score_matches_evaluate);
    RUN(test_score_ensemble_report);
    RUN(test_score_errors);
    cli_rm_rf(g_dir);
    return test_finish();
}
