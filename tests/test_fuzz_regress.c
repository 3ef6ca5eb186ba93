/* test_fuzz_regress.c: every fuzzing harness of tests/fuzz/ over its seed corpus (tests/fuzz/seeds.sh,
 * made from tests/data, plus the seeds written here) and over the inputs that once crashed it
 * (tests/fuzz/regress/<target>/), without libFuzzer: a replayed crash is a crash of this program (and
 * a report of the sanitizer build CI runs).  `make fuzz` does the fuzzing itself.
 *
 *   tests/test_fuzz_regress                    the test (PASS per target, with the inputs run)
 *   tests/test_fuzz_regress --write-seeds DIR  adds the seeds aqa writes itself (a checkpoint of the
 *                                              checkpoint harness's model, feature cache files) */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autograd/autograd.h"
#include "datasets/feature_cache.h"
#include "nn/checkpoint.h"
#include "nn/linear.h"
#include "nn/optim.h"
#include "ops/ops.h"
#include "tests/testlib.h"

#define TARGETS(X)                                                                                                     \
    X(safetensors) X(checkpoint) X(feature_cache) X(pickle) X(ann_finediving) X(ann_mtl_aqa) X(ann_jigsaws)           \
        X(ann_fisv) X(npy) X(png) X(jpeg) X(bpe_vocab) X(bpe_hf) X(tokenizer) X(config) X(json) X(text_set)

#define DECLARE(name) int fuzz_##name(const uint8_t *data, size_t size);
TARGETS(DECLARE)

typedef struct target {
    const char *name;                       /* folder name under seeds/ and regress/ */
    int (*fn)(const uint8_t *, size_t);     /* the harness */
} target;

#define ENTRY(name) {#name, fuzz_##name},
static const target g_targets[] = {TARGETS(ENTRY)};

static char g_seeds[300];

/* Seeds only aqa can write: a checkpoint of the checkpoint harness's model (Linear 3 -> 2 named
 * "fc", Adam after one step, a "data" generator) and feature cache files. */
static int write_seeds(const char *dir) {
    char path[600];
    snprintf(path, sizeof path, "%s/checkpoint", dir);
    mkdir(path, 0777);
    aqa_module *m = aqa_module_new(sizeof(aqa_module), "Net", NULL, "", NULL);
    aqa_linear_layer *fc = aqa_linear_layer_new(m, "fc", 3, 2, true);
    aqa_tensor **p = NULL;
    int n = aqa_module_parameters(m, &p);
    aqa_adam_options ao = AQA_ADAM_DEFAULTS;
    aqa_optimizer *opt = aqa_adam_new(&ao);
    aqa_optim_add_group(opt, p, n, 1e-3, 0);
    aqa_scope_begin();
    aqa_tensor *y = aqa_linear_layer_forward(fc, aqa_ones(AQA_SHAPE(4, 3), AQA_F32));
    aqa_backward(aqa_sum_all(y), NULL, false);
    aqa_optim_step(opt);
    aqa_scope_end();
    aqa_generator gen = {7, 3};
    aqa_generator *gens[1] = {&gen};
    const char *names[1] = {"data"};
    aqa_checkpoint ck = {.model = m, .optim = opt, .step = 1, .epoch = 0, .config_json = "{\"epochs\": \"3\"}",
                         .n_generators = 1, .generator_names = names, .generators = gens};
    snprintf(path, sizeof path, "%s/checkpoint/adam.safetensors", dir);
    int rc = aqa_checkpoint_save(path, &ck) != AQA_OK;
    aqa_checkpoint model_only = {.model = m};
    snprintf(path, sizeof path, "%s/checkpoint/model.safetensors", dir);
    rc |= aqa_checkpoint_save(path, &model_only) != AQA_OK;
    aqa_optim_free(opt);
    free(p);
    aqa_module_free(m);
    float clip[6 * 4], i3d[2 * 8], map[2 * 8 * 2 * 2];
    for (int k = 0; k < 24; k++) clip[k] = (float)k / 24;
    for (int k = 0; k < 16; k++) i3d[k] = -(float)k / 16;
    for (int k = 0; k < 64; k++) map[k] = (float)k / 64;
    snprintf(path, sizeof path, "%s/feature_cache/v__1.safetensors", dir);
    rc |= aqa_feature_cache_write(path, "v/1", &(aqa_feature_set){clip, i3d, map, 6, 4, 2, 8, 2, 2}, "seed") != AQA_OK;
    snprintf(path, sizeof path, "%s/feature_cache/clip_only.safetensors", dir);
    rc |= aqa_feature_cache_write(path, "v/1", &(aqa_feature_set){.clip = clip, .T = 6, .D = 4}, "seed") != AQA_OK;
    if (rc) fprintf(stderr, "test_fuzz_regress: writing seeds: %s\n", aqa_last_error());
    return rc;
}

/* Runs fn over every file of dir; returns how many ran (-1 when a file cannot be read). */
static int run_dir(int (*fn)(const uint8_t *, size_t), const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        fseek(f, 0, SEEK_END);
        long len = ftell(f);
        fseek(f, 0, SEEK_SET);
        uint8_t *buf = malloc((size_t)len + 1);
        size_t got = buf ? fread(buf, 1, (size_t)len, f) : 0;
        fclose(f);
        if (!buf || got != (size_t)len) {
            free(buf);
            n = -1;
            break;
        }
        fn(buf, (size_t)len);
        aqa_clear_error();
        free(buf);
        n++;
    }
    closedir(d);
    return n;
}

static const target *g_current;

static void test_target(void) {
    char seeds[600], regress[5200];
    snprintf(seeds, sizeof seeds, "%s/%s", g_seeds, g_current->name);
    snprintf(regress, sizeof regress, "%s/tests/fuzz/regress/%s", test_source_path(""), g_current->name);
    int a = run_dir(g_current->fn, seeds), b = run_dir(g_current->fn, regress);
    CHECK_MSG(a > 0, "%s: no seed inputs in %s", g_current->name, seeds);
    CHECK(b >= 0);
    printf("    %s: %d seed(s), %d saved crash input(s)\n", g_current->name, a, b);
}

int main(int argc, char **argv) {
    if (argc == 3 && !strcmp(argv[1], "--write-seeds")) return write_seeds(argv[2]);
    snprintf(g_seeds, sizeof g_seeds, "/tmp/aqa_fuzzseeds_XXXXXX");
    if (!mkdtemp(g_seeds)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    char cmd[5000];
    snprintf(cmd, sizeof cmd, "sh '%s' '%s'", test_source_path("tests/fuzz/seeds.sh"), g_seeds);
    if (system(cmd) != 0 || write_seeds(g_seeds)) {
        printf("FAIL setup: the seed corpora (%s)\n", cmd);
        return 1;
    }
    for (size_t i = 0; i < sizeof g_targets / sizeof *g_targets; i++) {
        char name[64];
        g_current = &g_targets[i];
        snprintf(name, sizeof name, "fuzz_regress_%s", g_current->name);
        test_run_case(name, test_target);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_seeds);
    if (system(cmd) != 0) printf("    could not remove %s\n", g_seeds);
    return test_finish();
}
