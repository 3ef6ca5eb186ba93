/* test_paper_protocol.c: the paper's per-dataset protocols through the real programs, on tiny
 * synthetic sets (make_synthetic's layouts):
 *   Fis-V    train_mvla --target tes|pcs regresses that score: evaluate's predictions.csv of the
 *            run lists as true scores the TES / PCS column of test_dataset.txt;
 *   JIGSAWS  train_mvla --folds TASK runs the four folds (TASK/k/train -> TASK/k/test) in
 *            <out>/fold<k> and reports rho as the Fisher-z average of the folds' rho (computed
 *            here again from the folds' numbers);
 *   errors   --target on a dataset without TES/PCS, --folds on a dataset without folds.
 * pretrain_clip --vocab-from builds the CLIP whose vocabulary covers JIGSAWS' texts.  Skips when
 * the programs are not built. */
#define _GNU_SOURCE
#include <cjson/cJSON.h>

#include "tests/cli_testlib.h"

static char g_dir[256];

/* Whole file p (malloc'd), NULL when it cannot be read. */
static char *slurp(const char *p) {
    FILE *f = fopen(p, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) n = 0;
    if (b) b[n] = 0;
    fclose(f);
    return b;
}

static int make_layout(const char *layout, const char *sub, int n, const char *extra) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "./examples/make_synthetic --out %s/%s --layout %s --videos %d --size 24 --seed 3 --quiet %s",
             g_dir, sub, layout, n, extra);
    char *out = NULL;
    int rc = cli_run(cmd, &out);
    if (rc) printf("    make_synthetic: %s\n", out ? out : "");
    free(out);
    return rc;
}

static void test_fisv_targets(void) {
    if (!cli_have("./examples/train_mvla") || !cli_have("./examples/evaluate") || !cli_have("./examples/make_synthetic")) {
        SKIP("programs not built");
        return;
    }
    CHECK(make_layout("fisv", "fisv", 24, "--feature-dim 8 --frames 320:480") == 0);
    static const char *const targets[2] = {"tes", "pcs"};
    char cmd[4096], path[1024], *out = NULL;
    for (int t = 0; t < 2; t++) {
        snprintf(cmd, sizeof cmd,
                 "./examples/train_mvla --data %s/fisv --dataset fisv --features %s/fisv/features --no-mvla --head mlp "
                 "--target %s --epochs 1 --batch 4 --progress false --workers 1 --out %s/run_%s && ./examples/evaluate "
                 "--checkpoint %s/run_%s/best.safetensors --out %s/ev_%s",
                 g_dir, g_dir, targets[t], g_dir, targets[t], g_dir, targets[t], g_dir, targets[t]);
        int rc = cli_run(cmd, &out);
        CHECK_MSG(rc == 0, "%s\n%s", cmd, out ? out : "");
        free(out);
        /* the test programmes' TES and PCS as the file gives them */
        snprintf(path, sizeof path, "%s/fisv/test_dataset.txt", g_dir);
        FILE *f = fopen(path, "r");
        CHECK(f != NULL);
        int ids[64], n = 0;
        double col[2][64], ded;
        while (f && n < 64 && fscanf(f, "%d %lf %lf %lf", &ids[n], &col[0][n], &col[1][n], &ded) == 4) n++;
        if (f) fclose(f);
        CHECK(n >= 2);
        snprintf(path, sizeof path, "%s/ev_%s/predictions.csv", g_dir, targets[t]);
        f = fopen(path, "r");
        CHECK_MSG(f != NULL, "%s", path);
        char line[512];
        int matched = 0, rows = 0;
        while (f && fgets(line, sizeof line, f)) {
            int id;
            double dd, truth;
            if (sscanf(line, "%d,,%lf,%lf", &id, &dd, &truth) != 3) continue; /* the header */
            rows++;
            for (int k = 0; k < n; k++)
                if (ids[k] == id) matched += fabs(col[t][k] - truth) < 1e-3;
        }
        if (f) fclose(f);
        CHECK_EQ_INT(rows, n);
        CHECK_MSG(matched == n, "target %s: %d of %d true scores are the file's %s", targets[t], matched, n, targets[t]);
    }
    /* MTL-AQA-like sets have no TES/PCS; JIGSAWS has no folds elsewhere */
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/fisv --dataset jigsaws --features %s/fisv/features --no-mvla --head mlp "
             "--target pcs --epochs 1 --out %s/bad1",
             g_dir, g_dir, g_dir);
    CHECK(cli_run(cmd, &out) != 0 && out && (strstr(out, "PCS is Fis-V's") || strstr(out, "label.pkl")));
    free(out);
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/fisv --dataset fisv --features %s/fisv/features --no-mvla --head mlp "
             "--folds Suturing --epochs 1 --out %s/bad2",
             g_dir, g_dir, g_dir);
    CHECK(cli_run(cmd, &out) != 0 && out && strstr(out, "--folds Suturing: the folds are JIGSAWS'"));
    free(out);
}

static void test_jigsaws_folds(void) {
    if (!cli_have("./examples/train_mvla") || !cli_have("./examples/pretrain_clip") ||
        !cli_have("./examples/extract_features")) {
        SKIP("programs not built");
        return;
    }
    CHECK(make_layout("finediving", "fd", 12, "--frames 24:40 --per-video 4") == 0);
    CHECK(make_layout("jigsaws", "jig", 60, "--frames 32:48") == 0);
    char cmd[4096], *out = NULL;
    snprintf(cmd, sizeof cmd,
             "./examples/pretrain_clip --data %s/fd --out %s/clip --steps 3 --batch 8 --frames 4 --res 16 --width 16 "
             "--embed 16 --text-width 16 --progress false --vocab-from jigsaws:%s/jig && ./examples/extract_features "
             "--data %s/jig --dataset jigsaws --out %s/feat --clip %s/clip/clip.safetensors --vocab %s/clip/vocab.txt "
             "--i3d-width 0.05 --i3d-short 24 --i3d-size 24 --frames 32 --clips 4 --clip-stride 8 --progress false",
             g_dir, g_dir, g_dir, g_dir, g_dir, g_dir, g_dir);
    int rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0, "%s\n%s", cmd, out ? out : "");
    free(out);
    if (rc) return;
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/jig --dataset jigsaws --features %s/feat --frames 32 --clips 4 --clip-stride 8 "
             "--no-mvla --head mlp --folds Suturing --epochs 3 --batch 4 --val-fraction 0 --progress false --workers 1 "
             "--out %s/run",
             g_dir, g_dir, g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "folds 4"), "%s\n%s", cmd, out ? out : "");
    free(out);
    char path[1024];
    double r[4];
    for (int k = 0; k < 4; k++) {
        snprintf(path, sizeof path, "%s/run/fold%d/config.txt", g_dir, k);
        char *cfg = slurp(path), want[64];
        snprintf(want, sizeof want, "Suturing/%d/test", k);
        CHECK_MSG(cfg && strstr(cfg, want), "%s does not name %s", path, want);
        free(cfg);
        snprintf(path, sizeof path, "%s/run/fold%d/last.safetensors", g_dir, k);
        CHECK(access(path, F_OK) == 0);
    }
    snprintf(path, sizeof path, "%s/run/metrics.json", g_dir);
    char *text = slurp(path);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    free(text);
    const cJSON *run = cJSON_GetArrayItem(cJSON_GetObjectItem(root, "runs"), 0);
    const cJSON *folds = cJSON_GetObjectItem(run, "folds");
    CHECK_MSG(cJSON_GetArraySize(folds) == 4, "%s: no four folds", path);
    bool defined = true;
    for (int k = 0; k < 4 && cJSON_GetArraySize(folds) == 4; k++) {
        const cJSON *v = cJSON_GetObjectItem(cJSON_GetArrayItem(folds, k), "test_selected_rho");
        defined &= cJSON_IsNumber(v) && fabs(v->valuedouble) < 1;
        r[k] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    }
    const cJSON *avg = cJSON_GetObjectItem(run, "test_selected_rho");
    printf("    folds' rho %g %g %g %g, average %g\n", r[0], r[1], r[2], r[3], cJSON_IsNumber(avg) ? avg->valuedouble : NAN);
    if (defined) {
        double z = 0;
        for (int k = 0; k < 4; k++) z += atanh(r[k]) / 4;
        CHECK_MSG(cJSON_IsNumber(avg) && fabs(avg->valuedouble - tanh(z)) < 1e-9, "Fisher-z average of %g %g %g %g",
                  r[0], r[1], r[2], r[3]);
    } else {
        CHECK_MSG(cJSON_IsNull(avg), "a fold's rho is undefined or +-1: the average must be undefined");
    }
    cJSON_Delete(root);
    /* a rerun with --resume only reports again, the same numbers */
    snprintf(cmd, sizeof cmd,
             "./examples/train_mvla --data %s/jig --dataset jigsaws --features %s/feat --frames 32 --clips 4 --clip-stride 8 "
             "--no-mvla --head mlp --folds Suturing --epochs 3 --batch 4 --val-fraction 0 --progress false --workers 1 "
             "--out %s/run --resume",
             g_dir, g_dir, g_dir);
    rc = cli_run(cmd, &out);
    CHECK_MSG(rc == 0 && out && strstr(out, "the run finished"), "%s", out ? out : "");
    free(out);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/aqa_test_protocol_XXXXXX");
    if (!mkdtemp(g_dir)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    RUN(test_fisv_targets);
    RUN(test_jigsaws_folds);
    cli_rm_rf(g_dir);
    return test_finish();
}
