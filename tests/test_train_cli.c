/* test_train_cli.c: the MVLA programs end to end on a tiny generated synthetic set:
 * pretrain_clip -> extract_features (and its resume) -> train_mvla (MVLA and plain, checkpoints,
 * JSONL log, resolved config, resume) -> evaluate --checkpoint (metrics, CSV, figures), plus
 * pretrain_i3d -> extract_features --i3d, the settings parser's errors and the NaN guard.  Skips when the programs are not built. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/synthetic.h"
#include "models/i3d/i3d.h"
#include "io/safetensors.h"
#include "tests/cli_testlib.h"
#include "tests/testlib.h"

static char g_dir[256];
static int g_ready; /* pipeline prepared (0: skip the dependent tests) */

static bool file_nonempty(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && st.st_size > 0;
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
        CHECK(out && isfinite(cli_metric(out, "final_rho")));
        CHECK(out && isfinite(cli_metric(out, "final_aiou50")));
        free(out);
        const char *files[] = {"last.safetensors", "best.safetensors", "config.txt", "log.jsonl"};
        for (int k = 0; k < 4; k++) {
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
    free(out);
    snprintf(path, sizeof path, "%s/run0/log.jsonl", g_dir);
    CHECK_EQ_INT(count_lines(path), 2);
    FILE *f = fopen(path, "r");
    char line[4096] = "";
    while (f && fgets(line, sizeof line, f)) {
    }
    if (f) fclose(f);
    CHECK_MSG(strstr(line, "\"epoch\": 2") && strstr(line, "\"rho\"") && strstr(line, "\"aiou50\"") &&
                  strstr(line, "\"bce\"") && strstr(line, "\"head\""),
              "last log line: %s", line);
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
    CHECK_MSG(rc == 0 && out && isfinite(cli_metric(out, "final_rho")), "train_mvla from frames:\n%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/runf/last.safetensors.i3d.safetensors", g_dir);
    CHECK(file_nonempty(path));
    snprintf(cmd, sizeof cmd, "./examples/evaluate --checkpoint %s/runf/last.safetensors --figures 1", g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && cli_metric(out, "n") == 4, "evaluate (frames):\n%s", out);
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

static void test_settings_errors(void) {
    if (!cli_have("./examples/train_mvla")) {
        SKIP("train_mvla not built");
        return;
    }
    char cmd[2048], *out = NULL;
    CHECK(cli_run("./examples/train_mvla --data x --lerning-rate 3", &out) != 0);
    CHECK_MSG(out && strstr(out, "unknown setting \"lerning-rate\""), "%s", out);
    free(out);
    char conf[512];
    snprintf(conf, sizeof conf, "%s/bad.conf", g_dir);
    FILE *f = fopen(conf, "w");
    if (f) {
        fputs("epochs = 3\nthis line has no equals sign\n", f);
        fclose(f);
    }
    snprintf(cmd, sizeof cmd, "./examples/train_mvla --config %s", conf);
    CHECK(cli_run(cmd, &out) != 0);
    CHECK_MSG(out && strstr(out, "bad.conf:2"), "%s", out);
    free(out);
    CHECK(cli_run("./examples/train_mvla --help", &out) == 0);
    CHECK(out && strstr(out, "--lr_backbone") && strstr(out, "--setting"));
    free(out);
}

/* Every clip-sequence head (models/heads/seq.h) trains and evaluates from train_mvla, as X and X-MVLA
 * (small widths: the tiny set's pseudo-frames are 4 wide). */
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
            CHECK_MSG(rc == 0 && out && isfinite(cli_metric(out, "final_rho")), "%s%s:\n%s", heads[k], plain ? "" : "-MVLA", out);
            free(out);
        }
}

static void test_nan_guard(void) {
    if (!g_ready) {
        SKIP("pipeline not prepared");
        return;
    }
    /* an absurd learning rate blows the parameters up within a few steps */
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/data --features %s/feat --out %s/runnan --epochs 3 --frames 32 "
             "--clips 3 --clip-stride 8 --lr-head 1e30 --lr-backbone 1e30 %s",
             g_dir, g_dir, g_dir, TINY);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc != 0 && out && strstr(out, "loss term \"") && strstr(out, "stopping"), "rc %d:\n%s", rc, out);
    free(out);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/aqa_traincli_XXXXXX");
    if (!mkdtemp(g_dir)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    aqa_synthetic_config sc;
    aqa_synthetic_config_init(&sc);
    char data[300];
    snprintf(data, sizeof data, "%s/data", g_dir);
    sc.out_dir = data;
    sc.n_videos = 16;
    sc.seed = test_seed("synthetic set");
    sc.width = sc.height = 32;
    sc.min_frames = 40;
    sc.max_frames = 80;
    sc.dives_per_video = 4;
    if (aqa_synthetic_generate(&sc) != AQA_OK) {
        printf("FAIL setup: %s\n", aqa_last_error());
        return 1;
    }
    RUN(test_prepare_pipeline);
    RUN(test_train_evaluate_resume);
    RUN(test_train_from_frames);
    RUN(test_pretrain_i3d);
    RUN(test_settings_errors);
    RUN(test_nan_guard);
    RUN(test_sequence_heads);
    cli_rm_tree(g_dir);
    return test_finish();
}
