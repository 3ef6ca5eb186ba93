/* test_train_cli.c: the MVLA programs end to end on a tiny generated synthetic set:
 * pretrain_clip -> extract_features (and its resume) -> train_mvla (MVLA and plain, checkpoints,
 * JSONL log, resolved config, resume) -> evaluate --checkpoint (metrics, CSV, figures), plus
 * pretrain_i3d -> extract_features --i3d, the settings parser's errors and the NaN guard; what is
 * trained end to end (the CLIP text encoder by default, I3D in frame mode with frozen BatchNorm
 * statistics); MVLA on a Fis-V fixture (per-clip CLIP features, the sport's FUM stages).  Skips
 * when the programs are not built. */
#define _GNU_SOURCE
#include <ctype.h>
#include <ftw.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "datasets/feature_cache.h"
#include "datasets/synthetic.h"
#include "datasets/video_dataset.h"
#include "models/clip/clip.h"
#include "models/i3d/i3d.h"
#include "io/safetensors.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"
#include "tests/cli_testlib.h"
#include "tests/fixtures.h"

static char g_dir[256];
static int g_ready; /* pipeline prepared (0: skip the dependent tests) */

static bool have(const char *prog) { return access(prog, X_OK) == 0; }

static bool file_nonempty(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && st.st_size > 0;
}

/* The first size - 1 bytes of file p into buf ("" when it cannot be read). */
static void read_text(const char *p, char *buf, size_t size) {
    FILE *f = fopen(p, "r");
    size_t n = f ? fread(buf, 1, size - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
}

static int count_lines(const char *p) {
    FILE *f = fopen(p, "r");
    if (!f) return -1;
    int n = 0, ch;
    while ((ch = fgetc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

/* Common train_mvla flags for the tiny set. */
#define TINY "--tsa-heads 2 --temporal-heads 2 --batch 4 --eval-exemplars 3 --progress false --workers 2"

static void test_prepare_pipeline(void) {
    if (!cli_have("./examples/pretrain_clip") || !cli_have("./examples/extract_features") || !cli_have("./examples/train_mvla") ||
        !cli_have("./examples/evaluate")) {
        SKIP("programs not built");
        return;
    }
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "./examples/pretrain_clip --data %s/data --out %s/clip --steps 6 --batch 16 --frames 8 --res 16 "
             "--patch 8 --width 32 --layers 1 --heads 2 --embed 32 --text-width 32 --text-layers 1 --text-heads 2",
             g_dir, g_dir);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0, "pretrain_clip failed:\n%s", out);
    CHECK(out && strstr(out, "clip_zero_shot_stage_accuracy_test"));
    free(out);
    snprintf(cmd, sizeof cmd, "%s/clip/clip.safetensors", g_dir);
    CHECK(file_nonempty(cmd));
    snprintf(cmd, sizeof cmd, "%s/clip/vocab.txt", g_dir);
    CHECK(file_nonempty(cmd));
    /* features: T = 32 frames, 3 clips of 16 (stride 8), random I3D at width 1/16 (64 channels) */
    snprintf(cmd, sizeof cmd,
             "./examples/extract_features --data %s/data --out %s/feat --clip %s/clip/clip.safetensors --vocab "
             "%s/clip/vocab.txt --frames 32 --clips 3 --clip-stride 8 --i3d-width 0.0625 --i3d-short 32 --i3d-size 32 "
             "--progress false",
             g_dir, g_dir, g_dir, g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0, "extract_features failed:\n%s", out);
    CHECK(out && strstr(out, "extracted 16, already there (resumed) 0"));
    free(out);
    /* resume: nothing to do; a deleted file is redone */
    char victim[1024];
    snprintf(victim, sizeof victim, "%s/feat/SyntheticDiving_Event001__2.safetensors", g_dir);
    CHECK(remove(victim) == 0);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "extracted 1, already there (resumed) 15"), "resume:\n%s", out);
    free(out);
    g_ready = rc == 0 && file_nonempty(victim);
}

/* The tiny CLIP pretrain_clip wrote, with its word vocabulary, in the CLIP programs. */
static void test_tiny_clip_tools(void) {
    if (!g_ready || !have("./examples/tokenize") || !have("./examples/clip_embed") || !have("./examples/clip_zeroshot")) {
        SKIP("pipeline not prepared or the CLIP programs not built");
        return;
    }
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd, "printf 'inward take-off\\nentry into the water\\n' | ./examples/tokenize --vocab %s/clip/vocab.txt "
             "--context 8", g_dir);
    int rc = cli_run(cmd, &out);
    long a[8] = {0};
    int n = out ? sscanf(out, "%ld %ld %ld %ld %ld %ld %ld %ld", &a[0], &a[1], &a[2], &a[3], &a[4], &a[5], &a[6], &a[7]) : 0;
    CHECK_MSG(rc == 0 && n == 8 && a[0] > a[1] && a[1] > 0 && a[3] == a[0] + 1 && a[4] == 0, "tokenize --vocab:\n%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "printf 'inward take-off\\n' > %s/texts.txt && ./examples/clip_embed --weights "
             "%s/clip/clip.safetensors --vocab %s/clip/vocab.txt --texts %s/texts.txt --out %s/emb.safetensors",
             g_dir, g_dir, g_dir, g_dir, g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "1 texts, 0 images"), "clip_embed --vocab:\n%s", out);
    free(out);
    snprintf(cmd, sizeof cmd, "./examples/clip_zeroshot --weights %s/clip/clip.safetensors --vocab %s/clip/vocab.txt "
             "--image $(ls %s/data/*/*/*.png | head -1) --labels 'inward take-off' 'entry into the water'",
             g_dir, g_dir, g_dir);
    rc = cli_run(cmd, &out);
    double p1 = -1, p2 = -1;
    char l1[64], l2[64];
    CHECK_MSG(rc == 0 && out && sscanf(out, "%lf\t%63[^\n]\n%lf\t%63[^\n]", &p1, l1, &p2, l2) == 4 &&
                  fabs(p1 + p2 - 1) < 1e-4,
              "clip_zeroshot --vocab:\n%s", out);
    free(out);
    /* a word the vocabulary lacks is named */
    snprintf(cmd, sizeof cmd, "echo 'zebra' | ./examples/tokenize --vocab %s/clip/vocab.txt", g_dir);
    CHECK(cli_run(cmd, &out) != 0);
    CHECK_MSG(out && strstr(out, "\"zebra\" is not in the vocabulary"), "%s", out);
    free(out);
}

static void test_train_evaluate_resume(void) {
    if (!g_ready) {
        SKIP("pipeline not prepared");
        return;
    }
    char cmd[2048], path[1024], *out = NULL;
    for (int plain = 0; plain < 2; plain++) {
        snprintf(cmd, sizeof cmd,
                 "./examples/train_mvla --data %s/data --features %s/feat --out %s/run%d --epochs 1 --frames 32 "
                 "--clips 3 --clip-stride 8 %s %s",
                 g_dir, g_dir, g_dir, plain, plain ? "--no-mvla" : "", TINY);
        int rc = cli_run(cmd, &out);
        CHECK_MSG(rc == 0, "train_mvla failed:\n%s", out);
        CHECK(out && isfinite(cli_metric(out, "test_last_rho")));
        CHECK(out && isfinite(cli_metric(out, "test_last_aiou50")));
        /* one epoch: the selected checkpoint is the last; both are reported */
        CHECK(out && cli_metric(out, "selected_epoch") == 1 && strstr(out, "selected_by validation_rho"));
        CHECK(out && cli_metric(out, "test_selected_rho") == cli_metric(out, "test_last_rho"));
        CHECK(out && isfinite(cli_metric(out, "test_best_epochs_rho")));
        CHECK_MSG(out && !strstr(out, "no I3D maps"), "TSA without the cached maps:\n%s", out);
        free(out);
        const char *files[] = {"last.safetensors", "best.safetensors", "config.txt", "log.jsonl", "metrics.json",
                               "best.txt"};
        for (int k = 0; k < 6; k++) {
            snprintf(path, sizeof path, "%s/run%d/%s", g_dir, plain, files[k]);
            CHECK_MSG(file_nonempty(path), "missing %s", path);
        }
        snprintf(path, sizeof path, "%s/run%d/log.jsonl", g_dir, plain);
        CHECK_EQ_INT(count_lines(path), 1);
    }
    /* resume: a second epoch continues the first run and appends to its log */
    snprintf(cmd, sizeof cmd, "./examples/train_mvla --config %s/run0/config.txt --epochs 2 --resume", g_dir);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "resumed from"), "resume failed:\n%s", out);
    CHECK(out && cli_metric(out, "last_epoch") == 2 && cli_metric(out, "selected_epoch") >= 1 && cli_metric(out, "selected_epoch") <= 2);
    double last_rho = cli_metric(out, "test_last_rho"), sel_rho = cli_metric(out, "test_selected_rho");
    free(out);
    /* evaluate agrees with train_mvla's report for both checkpoints */
    const char *ck[2] = {"best", "last"};
    for (int k = 0; k < 2; k++) {
        char *eo = NULL, ec[2048];
        snprintf(ec, sizeof ec, "./examples/evaluate --checkpoint %s/run0/%s.safetensors --out %s/eval_%s --figures 0",
                 g_dir, ck[k], g_dir, ck[k]);
        CHECK(cli_run(ec, &eo) == 0);
        CHECK_MSG(eo && fabs(cli_metric(eo, "spearman_rho") - (k ? last_rho : sel_rho)) < 1e-5, "%s: %s", ck[k], eo);
        free(eo);
    }
    /* resuming a finished run trains nothing and reports the same test numbers */
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "at epoch 2") && strstr(out, "run finished") && !strstr(out, "epoch 3/"),
              "finished resume:\n%s", out);
    CHECK(out && cli_metric(out, "test_last_rho") == last_rho && cli_metric(out, "test_selected_rho") == sel_rho);
    free(out);
    snprintf(path, sizeof path, "%s/run0/log.jsonl", g_dir);
    CHECK_EQ_INT(count_lines(path), 2);
    FILE *f = fopen(path, "r");
    char line[4096] = "";
    while (f && fgets(line, sizeof line, f)) {
    }
    if (f) fclose(f);
    cJSON *rec = cJSON_Parse(line);
    const char *keys[] = {"val_mse", "val_aiou50", "test_rho", "bce", "head"};
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(rec, "epoch");
    CHECK_MSG(cJSON_IsNumber(ep) && ep->valuedouble == 2, "last log line: %s", line);
    CHECK_MSG(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(rec, "selected")), "selected in %s", line);
    /* a rho is a number, or null where it is undefined (a constant prediction on the tiny split) */
    const cJSON *vr = cJSON_GetObjectItemCaseSensitive(rec, "val_rho");
    CHECK_MSG(cJSON_IsNumber(vr) || cJSON_IsNull(vr), "val_rho in %s", line);
    for (int k = 0; k < 5; k++) CHECK_MSG(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(rec, keys[k])), "%s in %s", keys[k], line);
    cJSON_Delete(rec);
    /* resuming with other model settings names them; without a checkpoint it is an error */
    char *again = NULL;
    snprintf(cmd, sizeof cmd, "./examples/train_mvla --config %s/run0/config.txt --epochs 3 --resume --dim 48 --head mlp",
             g_dir);
    CHECK(cli_run(cmd, &again) != 0);
    CHECK_MSG(again && strstr(again, "2 settings differ") && strstr(again, "head (was \"tsa\", now \"mlp\")") &&
                  strstr(again, "dim (was"),
              "%s", again);
    free(again);
    snprintf(cmd, sizeof cmd, "./examples/train_mvla --config %s/run0/config.txt --out %s/nothing_here --resume", g_dir,
             g_dir);
    CHECK(cli_run(cmd, &again) != 0);
    CHECK_MSG(again && strstr(again, "nothing_here/last.safetensors does not exist"), "%s", again);
    free(again);
    /* evaluate the checkpoint: the same metrics lines, CSV, figures */
    snprintf(cmd, sizeof cmd, "./examples/evaluate --checkpoint %s/run0/last.safetensors --out %s/eval --figures 2",
             g_dir, g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0, "evaluate failed:\n%s", out);
    CHECK(out && cli_metric(out, "n") == 4);
    CHECK(out && isfinite(cli_metric(out, "spearman_rho")) && isfinite(cli_metric(out, "aiou50")));
    free(out);
    snprintf(path, sizeof path, "%s/eval/predictions.csv", g_dir);
    CHECK_EQ_INT(count_lines(path), 5);
    snprintf(path, sizeof path, "%s/eval/scatter.png", g_dir);
    CHECK(file_nonempty(path));
    snprintf(cmd, sizeof cmd, "ls %s/eval/boundaries_*.png | wc -l", g_dir);
    rc = cli_run(cmd, &out);
    CHECK(out && atoi(out) == 2);
    free(out);
    /* the metrics mode reads what the checkpoint mode wrote and agrees with it */
    char *o1 = NULL, *o2 = NULL;
    snprintf(cmd, sizeof cmd, "./examples/evaluate --pred %s/eval/pred.txt --true %s/eval/true.txt", g_dir, g_dir);
    CHECK(cli_run(cmd, &o1) == 0);
    snprintf(cmd, sizeof cmd, "./examples/evaluate --checkpoint %s/run0/last.safetensors --out %s/eval2 --figures 0",
             g_dir, g_dir);
    CHECK(cli_run(cmd, &o2) == 0);
    CHECK_NEAR(cli_metric(o1, "spearman_rho"), cli_metric(o2, "spearman_rho"), 1e-6);
    CHECK_NEAR(cli_metric(o1, "mse"), cli_metric(o2, "mse"), 1e-4);
    free(o1);
    free(o2);
}

/* Every other head trains and evaluates through the programs with MVLA (Z reaching it), CoRe with
 * DD-normalised scores and its groups from the training pairs, MUSDL with the dives' judge
 * counts; TSA's map keys and values are in the cache (the note for a cache without maps is absent). */
static void test_other_heads(void) {
    if (!g_ready) {
        SKIP("pipeline not prepared");
        return;
    }
    const char *heads[] = {"core --dd true", "usdl --usdl-kl mean", "musdl", "mlp"};
    for (int k = 0; k < 4; k++) {
        char cmd[2048], *out = NULL;
        snprintf(cmd, sizeof cmd,
                 "./examples/train_mvla --data %s/data --features %s/feat --out %s/runh%d --epochs 1 --max-steps 2 "
                 "--frames 32 --clips 3 --clip-stride 8 --head %s %s",
                 g_dir, g_dir, g_dir, k, heads[k], TINY);
        int rc = cli_run(cmd, &out);
        CHECK_MSG(rc == 0 && out && !strstr(out, "no I3D maps"), "train_mvla --head %s:\n%s", heads[k], out);
        CHECK_MSG(out && (k != 0 || strstr(out, "CoRe's groups from")), "train_mvla --head %s:\n%s", heads[k], out);
        free(out);
        snprintf(cmd, sizeof cmd, "./examples/evaluate --checkpoint %s/runh%d/last.safetensors --figures 0", g_dir, k);
        rc = cli_run(cmd, &out);
        CHECK_MSG(rc == 0 && out && cli_metric(out, "n") == 4 && isfinite(cli_metric(out, "mse")), "evaluate --head %s:\n%s",
                  heads[k], out);
        free(out);
    }
}

/* --seeds 2: two runs in <out>/seed<s>, each reported, then their mean and standard deviation. */
static void test_seeds(void) {
    if (!g_ready) {
        SKIP("pipeline not prepared");
        return;
    }
    char cmd[2048], path[1024], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/data --features %s/feat --out %s/runs --epochs 1 --max-steps 1 --frames 32 "
             "--clips 3 --clip-stride 8 --no-mvla --seed 3 --seeds 2 %s",
             g_dir, g_dir, g_dir, TINY);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "seed 3\n") && strstr(out, "seed 4\n"), "train_mvla --seeds 2:\n%s", out);
    double mean = cli_metric(out, "seeds_test_selected_mse_mean"), sd = cli_metric(out, "seeds_test_selected_mse_std");
    /* the two runs' MSEs, printed before the summary */
    const char *first = out ? strstr(out, "test_selected_mse ") : NULL;
    const char *second = first ? strstr(first + 1, "test_selected_mse ") : NULL;
    double a = first ? strtod(first + 18, NULL) : NAN, b = second ? strtod(second + 18, NULL) : NAN;
    CHECK_NEAR(mean, (a + b) / 2, 1e-3 * fabs(mean) + 1e-4);
    CHECK_NEAR(sd, fabs(a - b) / sqrt(2.0), 1e-3 * sd + 1e-4);
    free(out);
    for (int s = 3; s <= 4; s++) {
        snprintf(path, sizeof path, "%s/runs/seed%d/last.safetensors", g_dir, s);
        CHECK_MSG(file_nonempty(path), "missing %s", path);
        /* each seed's resolved settings rerun that seed alone */
        snprintf(path, sizeof path, "%s/runs/seed%d/config.txt", g_dir, s);
        char cb[16384], want[64];
        read_text(path, cb, sizeof cb);
        snprintf(want, sizeof want, "\nseed = %d\n", s);
        CHECK_MSG(strstr(cb, "\nseeds = 1\n") && strstr(cb, want), "%s", path);
    }
    snprintf(path, sizeof path, "%s/runs/metrics.json", g_dir);
    static char buf[65536];
    read_text(path, buf, sizeof buf);
    cJSON *mj = cJSON_Parse(buf);
    const cJSON *runs = cJSON_GetObjectItemCaseSensitive(mj, "runs");
    const cJSON *r0 = cJSON_GetArrayItem(runs, 0), *r1 = cJSON_GetArrayItem(runs, 1);
    const cJSON *s0 = cJSON_GetObjectItemCaseSensitive(r0, "seed"), *s1 = cJSON_GetObjectItemCaseSensitive(r1, "seed");
    CHECK_MSG(cJSON_GetArraySize(runs) == 2 && cJSON_IsNumber(s0) && s0->valuedouble == 3 && cJSON_IsNumber(s1) &&
                  s1->valuedouble == 4 && cJSON_GetObjectItemCaseSensitive(mj, "test_selected_rho_mean") &&
                  cJSON_GetObjectItemCaseSensitive(mj, "test_last_mse_std"),
              "metrics.json: %s", buf);
    cJSON_Delete(mj);
}

/* "+ Quality Text": extract_features writes the graded text tables, train_mvla fuses them. */
static void test_quality_text(void) {
    if (!g_ready) {
        SKIP("pipeline not prepared");
        return;
    }
    char cmd[2048], path[1024], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "./examples/extract_features --data %s/data --out %s/feat_q --clip %s/clip/clip.safetensors --vocab "
             "%s/clip/vocab.txt --frames 32 --clips 3 --clip-stride 8 --i3d-width 0.0625 --i3d-short 32 --i3d-size 32 "
             "--progress false --quality-text",
             g_dir, g_dir, g_dir, g_dir);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0, "extract_features --quality-text:\n%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/feat_q/stage_texts.txt", g_dir);
    int n_graded = count_lines(path);
    snprintf(path, sizeof path, "%s/feat/stage_texts.txt", g_dir);
    CHECK_EQ_INT(n_graded, 4 * count_lines(path));
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/data --features %s/feat_q --out %s/runq --epochs 1 --max-steps 2 "
             "--frames 32 --clips 3 --clip-stride 8 --quality-text %s",
             g_dir, g_dir, g_dir, TINY);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && !isnan(cli_metric(out, "test_selected_mse")), "train_mvla --quality-text:\n%s", out);
    free(out);
    /* the graded texts are encoded from the CLIP weights the cache names (run_resolve_clip), frozen
     * too: a cache extracted without --quality-text serves a graded run */
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/data --features %s/feat --out %s/runq2 --epochs 1 --frames 32 --clips 3 "
             "--clip-stride 8 --quality-text --freeze-clip-text %s",
             g_dir, g_dir, g_dir, TINY);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "CLIP text encoder frozen") && !isnan(cli_metric(out, "test_selected_mse")),
              "train_mvla --quality-text --freeze-clip-text on a plain cache:\n%s", out);
    free(out);
}

/* Frame mode: frozen CLIP image encoder per batch, a BatchNorm-calibrated random I3D fine-tuned,
 * its weights saved beside the checkpoint; evaluate rebuilds it. */
static void test_train_from_frames(void) {
    if (!g_ready) {
        SKIP("pipeline not prepared");
        return;
    }
    char cmd[2048], path[1024], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/data --clip %s/clip/clip.safetensors --vocab %s/clip/vocab.txt "
             "--i3d-width 0.0625 --i3d-short 32 --i3d-size 32 --frames 32 --clips 3 --clip-stride 8 --out %s/runf "
             "--epochs 1 --max-steps 2 %s",
             g_dir, g_dir, g_dir, g_dir, TINY);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && isfinite(cli_metric(out, "test_selected_rho")), "train_mvla from frames:\n%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/runf/last.safetensors.i3d.safetensors", g_dir);
    CHECK(file_nonempty(path));
    snprintf(path, sizeof path, "%s/runf/best.safetensors.i3d.safetensors", g_dir);
    CHECK(file_nonempty(path));
    snprintf(cmd, sizeof cmd, "./examples/evaluate --checkpoint %s/runf/last.safetensors --figures 1", g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && cli_metric(out, "n") == 4, "evaluate (frames):\n%s", out);
    free(out);
}

/* Largest |a - b| between tensor `name` of two safetensors files (NAN when either is absent). */
static double file_tensor_diff(const char *pa, const char *pb, const char *name) {
    aqa_tensor *a = aqa_load_tensor(pa, name, AQA_F32), *b = aqa_load_tensor(pb, name, AQA_F32);
    double d = NAN;
    if (a && b && aqa_numel(a) == aqa_numel(b)) {
        aqa_scope_begin(); /* owns the intermediates */
        aqa_tensor *m = aqa_max_all(aqa_abs(aqa_sub(a, b)));
        d = m ? aqa_item(m) : NAN;
        aqa_scope_end();
    }
    aqa_tensor_free(a);
    aqa_tensor_free(b);
    aqa_clear_error();
    return d;
}

static bool file_has_tensor(const char *path, const char *name) {
    aqa_st_file *f = NULL;
    if (aqa_st_open(path, &f) != AQA_OK) {
        aqa_clear_error();
        return false;
    }
    bool has = aqa_st_find(f, name) >= 0;
    aqa_st_close(f);
    return has;
}

/* The paper fine-tunes the CLIP text encoder: by default train_mvla (here run0 of
 * test_train_evaluate_resume, whose CLIP comes from the cache's record) trains its text side,
 * saved beside the checkpoint (and only it), which evaluate and --resume loaded above;
 * --freeze-clip-text (Table 5) saves none.  The same run checks --no-sca --fuse add (Table 5's
 * "I3D + CLIP-Image") and --vlkl-reduction sum, and the settings' errors. */
static void test_clip_text_finetune(void) {
    if (!g_ready) {
        SKIP("pipeline not prepared");
        return;
    }
    char cmd[2048], path[1024], clip[1024], *out = NULL;
    snprintf(path, sizeof path, "%s/run0/last.safetensors.clip_text.safetensors", g_dir);
    snprintf(clip, sizeof clip, "%s/clip/clip.safetensors", g_dir);
    CHECK_MSG(file_nonempty(path), "no fine-tuned text encoder beside the checkpoint: %s", path);
    double d = file_tensor_diff(path, clip, "text_projection");
    CHECK_MSG(d > 0 && d < 1, "text_projection moved by %g in training", d);
    CHECK(file_tensor_diff(path, clip, "token_embedding.weight") > 0);
    CHECK(!file_has_tensor(path, "visual.proj") && !file_has_tensor(path, "logit_scale"));
    snprintf(path, sizeof path, "%s/run0/best.safetensors.clip_text.safetensors", g_dir);
    CHECK(file_nonempty(path));

    /* a fresh run removes the side files of a previous run in its folder, even those it does not write */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/runfz && cp %s/run0/last.safetensors.clip_text.safetensors %s/runfz/", g_dir,
             g_dir, g_dir);
    CHECK(cli_run(cmd, NULL) == 0);
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/data --features %s/feat --out %s/runfz --epochs 1 --max-steps 2 --frames 32 "
             "--clips 3 --clip-stride 8 --freeze-clip-text --no-sca --fuse add --vlkl-reduction sum %s",
             g_dir, g_dir, g_dir, TINY);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "CLIP text encoder frozen, I3D frozen (cached features)") &&
                  isfinite(cli_metric(out, "test_last_rho")),
              "frozen CLIP text:\n%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/runfz/last.safetensors.clip_text.safetensors", g_dir);
    CHECK(access(path, F_OK) != 0);
    snprintf(cmd, sizeof cmd, "./examples/evaluate --checkpoint %s/runfz/last.safetensors --figures 0", g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && cli_metric(out, "n") == 4, "evaluate (frozen text):\n%s", out);
    free(out);

    /* errors name the setting */
    const char *bad[][2] = {{"--fuse concat", "\"concat\" is not one of i3d|add"},
                            {"--vlkl-reduction max", "\"max\" is not one of mean|sum"},
                            {"--fum-boundaries 1,2", "FUM datasets"}};
    for (int k = 0; k < 3; k++) {
        snprintf(cmd, sizeof cmd, "./examples/train_mvla --data %s/data --features %s/feat --out %s/runbad --frames 32 "
                 "--clips 3 --clip-stride 8 %s %s", g_dir, g_dir, g_dir, bad[k][0], TINY);
        rc = cli_run(cmd, &out);
        CHECK_MSG(rc != 0 && out && strstr(out, bad[k][1]), "%s:\n%s", bad[k][0], out);
        free(out);
    }
    /* fine-tuning needs the CLIP: a cache without texts.safetensors (no record) and no --clip */
    snprintf(cmd, sizeof cmd, "mkdir -p %s/feat_norec && cp %s/feat/Synthetic*.safetensors %s/feat_norec/", g_dir, g_dir,
             g_dir);
    CHECK(cli_run(cmd, NULL) == 0);
    snprintf(cmd, sizeof cmd, "./examples/train_mvla --data %s/data --features %s/feat_norec --out %s/runbad --frames 32 "
             "--clips 3 --clip-stride 8 %s", g_dir, g_dir, g_dir, TINY);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc != 0 && out && strstr(out, "--freeze-clip-text") && strstr(out, "--clip"), "%s", out);
    free(out);
}

/* The words of a text set, one per line, as the word tokenizer of the MVLA programs splits them
 * (lower case, ',' and '.' words of their own); returns the number written. */
static int write_vocab(FILE *f, const aqa_text_set *set, char seen[][32], int n) {
    for (size_t i = 0; i < set->n; i++) {
        char w[32];
        size_t k = 0;
        for (const char *p = set->texts[i];; p++) {
            bool sep = !*p || *p == ' ' || *p == ',' || *p == '.';
            if (!sep && k + 1 < sizeof w) w[k++] = (char)tolower((unsigned char)*p);
            if (!sep && *p) continue;
            for (int pass = 0; pass < 2; pass++) {
                if (pass == 0 && !k) continue;
                if (pass == 1 && (*p != ',' && *p != '.')) continue;
                if (pass == 0) w[k] = 0;
                else w[0] = *p, w[1] = 0;
                bool dup = false;
                for (int j = 0; j < n && !dup; j++) dup = !strcmp(seen[j], w);
                if (!dup && n < 64) {
                    snprintf(seen[n++], 32, "%s", w);
                    fprintf(f, "%s\n", w);
                }
            }
            k = 0;
            if (!*p) break;
        }
    }
    return n;
}

/* MVLA on Fis-V: the CBP .npy features plus per-clip CLIP features (--clip-features), text tables
 * from a CLIP text encoder fine-tuned on the dataset's texts, the sport's FUM stages (thirds). */
static void test_fisv_mvla(void) {
    if (!have("./examples/train_mvla")) {
        SKIP("train_mvla not built");
        return;
    }
    char root[512], p[1024], cmd[4096], *out = NULL;
    snprintf(root, sizeof root, "%s/fisv", g_dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s/feat %s/clipfeat", root, root);
    CHECK(cli_run(cmd, NULL) == 0);
    /* 8 programs for training, 4 for test; CBP [n, 16] with n = 9 or 12, CLIP [m, 8] with m = 5 or 7 */
    aqa_generator g = {test_seed("fisv mvla"), 0};
    for (int id = 1; id <= 12; id++) {
        float x[12 * 16];
        aqa_tensor *r = aqa_randn(AQA_SHAPE(12 * 16), AQA_F32, &g);
        if (r) aqa_copy_to_host(r, x, AQA_F32);
        aqa_tensor_free(r);
        snprintf(p, sizeof p, "%s/feat/%d.npy", root, id);
        CHECK(write_npy_2d(p, x, id % 2 ? 9 : 12, 16) == 0);
        snprintf(p, sizeof p, "%s/clipfeat/%d.npy", root, id);
        CHECK(write_npy_2d(p, x, id % 2 ? 5 : 7, 8) == 0);
    }
    for (int sp = 0; sp < 2; sp++) {
        snprintf(p, sizeof p, "%s/%s_dataset.txt", root, sp ? "test" : "train");
        FILE *f = fopen(p, "w");
        CHECK(f != NULL);
        for (int id = sp ? 9 : 1; f && id <= (sp ? 12 : 8); id++) fprintf(f, "%d %.1f %.1f 0.0\n", id, 20.0 + 3 * id, 30.0 + id);
        if (f) fclose(f);
    }
    /* a tiny CLIP whose word vocabulary covers the dataset's texts */
    aqa_vd_config vc;
    aqa_vd_config_init(&vc);
    vc.root = root;
    vc.dataset = AQA_ANN_FISV;
    vc.quiet = true;
    snprintf(p, sizeof p, "%s/feat", root);
    vc.features_dir = p;
    aqa_video_dataset *ds = aqa_video_dataset_open(&vc);
    CHECK_MSG(ds != NULL, "%s", aqa_last_error());
    if (!ds) return;
    char seen[64][32], vocab[600];
    snprintf(vocab, sizeof vocab, "%s/vocab.txt", root);
    FILE *f = fopen(vocab, "w");
    int nw = f ? write_vocab(f, &ds->video_texts, seen, write_vocab(f, &ds->stage_texts, seen, 0)) : 0;
    if (f) fclose(f);
    aqa_video_dataset_free(ds);
    aqa_manual_seed(5);
    aqa_clip_config cc = {.embed_dim = 8, .image_resolution = 4, .vision_layers = 1, .vision_width = 8,
                          .vision_patch_size = 2, .vision_heads = 2, .context_length = 24, .vocab_size = nw + 3,
                          .transformer_width = 8, .transformer_heads = 2, .transformer_layers = 1};
    aqa_clip_model *clip = aqa_clip_model_new(&cc);
    snprintf(p, sizeof p, "%s/clip.safetensors", root);
    CHECK(clip && aqa_clip_save(clip, p) == AQA_OK);
    aqa_clip_model_free(clip);

    const char *common = "--dataset fisv --head mlp --setting w/o --epochs 1 --batch 4 --temporal-heads 2 "
                         "--progress false --workers 1";
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s --features %s/feat --clip-features %s/clipfeat --clip %s --vocab %s "
             "--out %s/run %s",
             root, root, root, p, vocab, root, common);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "fisv FUM") && strstr(out, "CLIP text encoder fine-tuned") &&
                  strstr(out, "FUM stages start at clips 3, 6") && strstr(out, "test_last_rho"),
              "train_mvla on Fis-V with MVLA:\n%s", out);
    free(out);
    snprintf(p, sizeof p, "%s/run/last.safetensors.clip_text.safetensors", root);
    CHECK(file_nonempty(p));
    /* without per-clip CLIP features MVLA cannot run: named */
    snprintf(cmd, sizeof cmd, "./examples/train_mvla --data %s --features %s/feat --out %s/run2 --freeze-clip-text %s",
             root, root, root, common);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc != 0 && out && strstr(out, "--clip-features"), "%s", out);
    free(out);
}

/* pretrain_i3d writes a small I3D whose file carries its width, which extract_features --i3d
 * then builds and loads without being told the width. */
static void test_pretrain_i3d(void) {
    if (!g_ready || !cli_have("./examples/pretrain_i3d")) {
        SKIP("pipeline not prepared or pretrain_i3d not built");
        return;
    }
    char cmd[4096], path[1024], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "./examples/pretrain_i3d --data %s/data --out %s/i3d --width 0.0625 --short 32 --size 32 --epochs 1 "
             "--batch 2 --calibrate 2 --progress false",
             g_dir, g_dir);
    int rc = cli_run(cmd, &out);
    double acc = cli_metric(out, "i3d_stage_accuracy_test");
    CHECK_MSG(rc == 0 && acc >= 0 && acc <= 1, "pretrain_i3d:\n%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/i3d/i3d.safetensors", g_dir);
    double width = 0;
    CHECK(aqa_i3d_file_width(path, &width) == AQA_OK);
    CHECK_NEAR(width, 0.0625, 0);
    snprintf(cmd, sizeof cmd,
             "./examples/extract_features --data %s/data --out %s/feat_i3d --clip %s/clip/clip.safetensors --vocab "
             "%s/clip/vocab.txt --frames 32 --clips 3 --clip-stride 8 --i3d %s --i3d-short 32 --i3d-size 32 "
             "--progress false",
             g_dir, g_dir, g_dir, g_dir, path);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "extracted 16,") && strstr(out, "i3d [3, 64]"), "extract_features --i3d:\n%s",
              out);
    free(out);
    /* frame mode fine-tunes that I3D (lr_backbone) with its BatchNorm statistics frozen (TSA) */
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/data --clip %s/clip/clip.safetensors --vocab %s/clip/vocab.txt --i3d %s "
             "--i3d-short 32 --i3d-size 32 --frames 32 --clips 3 --clip-stride 8 --out %s/runi3d --epochs 1 "
             "--max-steps 2 --eval-every 9 %s",
             g_dir, g_dir, g_dir, path, g_dir, TINY);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "I3D fine-tuned (frame mode)"), "train_mvla frame mode:\n%s", out);
    free(out);
    char tuned[1100];
    snprintf(tuned, sizeof tuned, "%s/runi3d/last.safetensors.i3d.safetensors", g_dir);
    double dw = file_tensor_diff(tuned, path, "Conv3d_1a_7x7.conv3d.weight");
    double dm = file_tensor_diff(tuned, path, "Mixed_5c.b0.bn.running_mean");
    double dg = file_tensor_diff(tuned, path, "Mixed_5c.b0.bn.weight");
    CHECK_MSG(dw > 0 && dw < 1e-2, "first conv moved by %g (2 Adam steps of lr 1e-4)", dw);
    CHECK_MSG(dg > 0, "BatchNorm weight moved by %g (affine parameters train)", dg);
    CHECK_MSG(dm == 0, "BatchNorm running mean moved by %g (statistics frozen)", dm);
    /* bad settings and a bad width in a file are named */
    snprintf(cmd, sizeof cmd, "./examples/pretrain_i3d --data %s/data --width 2", g_dir);
    CHECK(cli_run(cmd, &out) != 0);
    CHECK_MSG(out && strstr(out, "--width"), "%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/bad_width.safetensors", g_dir);
    aqa_st_writer *w = aqa_st_writer_new();
    float one = 1;
    CHECK(w && aqa_st_writer_add_copy(w, "x", AQA_ST_F32, 1, (int64_t[]){1}, &one) == AQA_OK &&
          aqa_st_writer_set_metadata(w, "width_multiplier", "wide") == AQA_OK && aqa_st_writer_save(w, path) == AQA_OK);
    aqa_st_writer_free(w);
    CHECK(aqa_i3d_file_width(path, &width) == AQA_EFORMAT);
    CHECK_MSG(strstr(aqa_last_error(), "bad_width.safetensors") && strstr(aqa_last_error(), "width_multiplier"), "%s",
              aqa_last_error());
    aqa_clear_error();
}

/* Every program answers --help with its usage and status 0, and refuses a bad value, an unknown
 * setting or a stray argument with a message naming it and status 2. */
static void test_settings_errors(void) {
    static const char *const progs[] = {"clip_embed", "clip_zeroshot", "evaluate", "extract_features", "extract_frames",
                                        "i3d_extract", "make_synthetic", "own_model", "plot_demo", "pretrain_clip",
                                        "pretrain_i3d", "quickstart", "score_video", "tokenize", "train_mvla",
                                        "train_toy_transformer"};
    char cmd[2048], help_dir[512], *out = NULL;
    int n_progs = 0;
    snprintf(help_dir, sizeof help_dir, "%s/help", g_dir);
    mkdir(help_dir, 0777);
    for (size_t i = 0; i < sizeof progs / sizeof *progs; i++) {
        snprintf(cmd, sizeof cmd, "./examples/%s", progs[i]);
        if (!have(cmd)) continue;
        n_progs++;
        char cwd[1024];
        snprintf(cmd, sizeof cmd, "cd %s && %s/examples/%s --help", help_dir, getcwd(cwd, sizeof cwd) ? cwd : ".", progs[i]);
        CHECK_MSG(cli_run(cmd, &out) == 0 && out && strstr(out, "usage:"), "%s --help:\n%s", progs[i], out);
        free(out);
        snprintf(cmd, sizeof cmd, "./examples/%s --no-such-setting", progs[i]);
        CHECK_MSG(cli_run(cmd, &out) == 2 && out && strstr(out, "no-such-setting"), "%s --no-such-setting:\n%s",
                  progs[i], out);
        free(out);
        /* score_video takes one video as its argument: a second is the stray one */
        snprintf(cmd, sizeof cmd, "./examples/%s %sstray", progs[i], strcmp(progs[i], "score_video") ? "" : "clip.mp4 ");
        CHECK_MSG(cli_run(cmd, &out) == 2 && out && strstr(out, "unexpected argument \"stray\""), "%s stray:\n%s",
                  progs[i], out);
        free(out);
    }
    if (!n_progs) {
        SKIP("programs not built");
        return;
    }
    /* --help writes nothing into the working folder (quickstart and plot_demo write files when they run) */
    snprintf(cmd, sizeof cmd, "ls -A %s | wc -l", help_dir);
    cli_run(cmd, &out);
    CHECK_MSG(out && atoi(out) == 0, "files written by --help: %s", out);
    free(out);
    /* numbers: bad values and ranges name the flag and the value */
    static const struct {
        const char *args, *want;
    } bad[] = {
        {"train_mvla --data x --lr_head abc", "--lr_head (command line): \"abc\" is not a finite number"},
        {"train_mvla --data x --epochs -1", "--epochs (command line): -1 is outside 1.."},
        {"train_mvla --data x --epochs 0", "--epochs (command line): 0 is outside 1.."},
        {"train_mvla --data x --epochs abc", "\"abc\" is not an integer"},
        {"train_mvla --data x --batch 0", "--batch (command line): 0 is outside 1.."},
        {"train_mvla --data x --batch 8x", "\"8x\" is not an integer"},
        {"train_mvla --data x --seed 99999999999999999999", "is not an integer"},
        {"train_mvla --data x --dropout nan", "is not a finite number"},
        {"train_mvla --data x --mvla perhaps", "unexpected argument \"perhaps\""},
        {"train_mvla --data x --head transformer", "\"transformer\" is not one of tsa|core"},
        {"train_mvla --data x --lerning-rate", "unknown setting \"lerning-rate\""},
        {"train_mvla --data x --epochs", "--epochs needs a value"},
        {"pretrain_clip --data x --steps -5", "--steps (command line): -5 is outside 1.."},
        {"evaluate --checkpoint x.safetensors --figures -3", "--figures (command line): -3 is outside 0.."},
        {"tokenize --context 1", "--context (command line): 1 is outside 2.."},
        {"quickstart --steps abc", "\"abc\" is not an integer"},
        {"i3d_extract --batch 0", "--batch (command line): 0 is outside 1.."},
        {"make_synthetic --videos 0", "--videos (command line): 0 is outside 1.."},
        {"clip_embed --batch -1", "--batch (command line): -1 is outside 1.."},
        {"train_toy_transformer --seq-len 1", "--seq_len (command line): 1 is outside 2.."},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char prog[64];
        sscanf(bad[i].args, "%63s", prog);
        snprintf(cmd, sizeof cmd, "./examples/%s", prog);
        if (!have(cmd)) continue;
        if (!strcmp(prog, "evaluate")) { /* checkpoint mode reads the file's settings first */
            snprintf(cmd, sizeof cmd, "./examples/%s", bad[i].args);
            CHECK(cli_run(cmd, &out) != 0);
            free(out);
            continue;
        }
        snprintf(cmd, sizeof cmd, "./examples/%s", bad[i].args);
        int rc = cli_run(cmd, &out);
        CHECK_MSG(rc == 2 && out && strstr(out, bad[i].want), "%s: status %d, wanted \"%s\":\n%s", bad[i].args, rc,
                  bad[i].want, out);
        free(out);
    }
    /* config files: a line without '=', a bad value (file and line named), an over-long line */
    char conf[512];
    snprintf(conf, sizeof conf, "%s/bad.conf", g_dir);
    FILE *f = fopen(conf, "w");
    if (f) {
        fputs("epochs = 3\nthis line has no equals sign\n", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "./examples/train_mvla --config %s", conf);
    CHECK(cli_run(cmd, &out) == 2);
    CHECK_MSG(out && strstr(out, "bad.conf:2"), "%s", out);
    free(out);
    f = fopen(conf, "w");
    if (f) {
        fputs("# fine\nbatch = 0\n", f);
        fclose(f);
    }
    CHECK(cli_run(cmd, &out) == 2);
    CHECK_MSG(out && strstr(out, "--batch (") && strstr(out, "bad.conf:2") && strstr(out, "outside"), "%s", out);
    free(out);
    f = fopen(conf, "w");
    if (f) { /* a comment line longer than any buffer, whose tail would read as a setting if split */
        fputs("epochs = 2\n# ", f);
        for (int k = 0; k < 5000; k++) fputc('x', f);
        fputs(" epochs = 7\n", f);
        fclose(f);
    }
    CHECK(cli_run(cmd, &out) == 2);
    CHECK_MSG(out && strstr(out, "bad.conf:2: line longer than"), "%s", out);
    free(out);
    CHECK(cli_run("./examples/train_mvla --help", &out) == 0);
    CHECK(out && strstr(out, "--lr_backbone") && strstr(out, "--setting") && strstr(out, "integer 1..1000000"));
    free(out);
}

/* Every clip-sequence head (models/heads/seq.h) trains and evaluates from train_mvla, as X and X-MVLA
 * (small widths: the tiny set's pseudo-frames are 4 wide).  A constant prediction is an answer
 * (rho NaN, eval/metrics.h), not a failure. */
static void test_sequence_heads(void) {
    if (!g_ready) {
        SKIP("pipeline not prepared");
        return;
    }
    const char *heads[] = {"tpt", "hgcn", "gdlt", "mslstm", "mixer"};
    for (int k = 0; k < 5; k++)
        for (int plain = 0; plain < 2; plain++) {
            char cmd[2048], *out = NULL;
            snprintf(cmd, sizeof cmd,
                     "./examples/train_mvla --data %s/data --features %s/feat --out %s/seq_%s%d --epochs 1 --frames 32 "
                     "--clips 3 --clip-stride 8 --head %s %s --tpt-dim 8 --tpt-queries 3 --hgcn-groups 1 --gdlt-dim 8 "
                     "--gdlt-queries 3 --mslstm-hidden 8 --mixer-dim 8 %s",
                     g_dir, g_dir, g_dir, heads[k], plain, heads[k], plain ? "--no-mvla" : "", TINY);
            int rc = cli_run(cmd, &out);
            CHECK_MSG(rc == 0 && out && isfinite(cli_metric(out, "test_last_rho")), "%s%s:\n%s", heads[k], plain ? "" : "-MVLA", out);
            free(out);
        }
}

/* A feature file holding a NaN stops training with a message naming the file; nothing turns NaN
 * silently several layers later. */
static void test_nan_guard(void) {
    if (!g_ready) {
        SKIP("pipeline not prepared");
        return;
    }
    char cmd[2048], path[1024], *out = NULL;
    snprintf(cmd, sizeof cmd, "cp -r %s/feat %s/featnan", g_dir, g_dir);
    CHECK(cli_run(cmd, NULL) == 0);
    snprintf(path, sizeof path, "%s/featnan/SyntheticDiving_Event001__2.safetensors", g_dir);
    aqa_st_file *sf = NULL;
    int64_t T = 0, D = 0, N = 0, C = 0, H = 0, W = 0;
    float *clip = NULL, *i3d = NULL, *map = NULL;
    if (aqa_st_open(path, &sf) == AQA_OK) {
        int ci = aqa_st_find(sf, "clip"), ii = aqa_st_find(sf, "i3d"), mi = aqa_st_find(sf, "i3d_map");
        if (ci >= 0 && ii >= 0 && mi >= 0) {
            T = aqa_st_get(sf, ci)->shape[0], D = aqa_st_get(sf, ci)->shape[1];
            N = aqa_st_get(sf, ii)->shape[0], C = aqa_st_get(sf, ii)->shape[1];
            H = aqa_st_get(sf, mi)->shape[2], W = aqa_st_get(sf, mi)->shape[3];
            clip = malloc(sizeof *clip * (size_t)(T * D));
            i3d = malloc(sizeof *i3d * (size_t)(N * C));
            map = malloc(sizeof *map * (size_t)(N * C * H * W));
            aqa_st_read_f32(sf, ci, clip);
            aqa_st_read_f32(sf, ii, i3d);
            aqa_st_read_f32(sf, mi, map);
        }
        aqa_st_close(sf);
    }
    CHECK(clip && i3d && map);
    if (!clip || !i3d || !map) {
        free(clip);
        free(i3d);
        free(map);
        return;
    }
    i3d[1] = NAN;
    CHECK(aqa_feature_cache_write(path, "SyntheticDiving_Event001/2", &(aqa_feature_set){clip, i3d, map, T, D, N, C, H, W},
                                  "test") == AQA_OK);
    free(clip);
    free(i3d);
    free(map);
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/data --features %s/featnan --out %s/runnan --epochs 2 --frames 32 "
             "--clips 3 --clip-stride 8 %s",
             g_dir, g_dir, g_dir, TINY);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc != 0 && out && strstr(out, "featnan/SyntheticDiving_Event001__2.safetensors") && strstr(out, "nan") &&
                  strstr(out, "not finite"),
              "rc %d:\n%s", rc, out);
    free(out);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/aqa_traincli_XXXXXX");
    if (cli_tiny_set(g_dir)) return 1;
    RUN(test_prepare_pipeline);
    RUN(test_tiny_clip_tools);
    RUN(test_train_evaluate_resume);
    RUN(test_other_heads);
    RUN(test_seeds);
    RUN(test_quality_text);
    RUN(test_clip_text_finetune);
    RUN(test_train_from_frames);
    RUN(test_pretrain_i3d);
    RUN(test_fisv_mvla);
    RUN(test_settings_errors);
    RUN(test_nan_guard);
    RUN(test_sequence_heads);
    cli_rm_rf(g_dir);
    return test_finish();
}
