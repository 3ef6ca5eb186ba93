/* test_toy_transformer.c: runs examples/train_toy_transformer with small settings (150 steps,
 * sequences of 8, batch 32) and checks that it learns the task (held-out token accuracy > 0.9,
 * chance is 0.1) and that its checkpoint has the documented layout.  SKIPs when the example has
 * not been built (`make` builds it; `make check` alone does not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cjson/cJSON.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "tests/testlib.h"

static const char *find_example(void) {
    static const char *const candidates[] = {"examples/train_toy_transformer", "../examples/train_toy_transformer"};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++)
        if (access(candidates[i], X_OK) == 0) return candidates[i];
    return NULL;
}

static void test_learns_reversal(void) {
    const char *exe = find_example();
    if (!exe) {
        SKIP("examples/train_toy_transformer is not built (run make)");
        return;
    }
    char ckpt[] = "/tmp/aqa_toy_ckpt.XXXXXX";
    int fd = mkstemp(ckpt);
    CHECK(fd >= 0);
    if (fd >= 0) close(fd);
    char cmd[1024];
    /* passive OpenMP waiting: the test suite may share the cores with other programs */
    snprintf(cmd, sizeof cmd,
             "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} %s --steps 150 --seq-len 8 --batch 32 --seed 3 --quiet "
             "--checkpoint %s",
             exe, ckpt);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    if (!p) return;
    double acc = -1;
    char line[256];
    while (fgets(line, sizeof line, p))
        if (sscanf(line, "accuracy %lf", &acc) == 1) break;
    while (fgets(line, sizeof line, p)) {
    }
    int rc = pclose(p);
    CHECK_EQ_INT(rc, 0);
    printf("    held-out token accuracy %.4f\n", acc);
    CHECK_MSG(acc > 0.9, "accuracy %.4f <= 0.9", acc);

    aqa_st_file *f;
    CHECK(aqa_st_open(ckpt, &f) == AQA_OK);
    if (f) {
        CHECK_STR(aqa_st_metadata(f, "format"), "aqa-checkpoint-1");
        CHECK_STR(aqa_st_metadata(f, "step"), "150");
        cJSON *cfg = cJSON_Parse(aqa_st_metadata(f, "config") ? aqa_st_metadata(f, "config") : "");
        const cJSON *task = cJSON_GetObjectItemCaseSensitive(cfg, "task"), *len = cJSON_GetObjectItemCaseSensitive(cfg, "seq_len");
        CHECK(cJSON_IsString(task) && !strcmp(task->valuestring, "reverse") && cJSON_IsNumber(len) && len->valuedouble == 8);
        cJSON_Delete(cfg);
        CHECK(aqa_st_find(f, "model.encoder.layers.0.self_attn.in_proj_weight") >= 0);
        CHECK(aqa_st_find(f, "model.pos_emb") >= 0);
        CHECK(aqa_st_find(f, "model.head.bias") >= 0);
        CHECK(aqa_st_find(f, "optim.0.0.exp_avg_sq") >= 0);
        CHECK(aqa_st_metadata(f, "rng.data.offset") != NULL);
        aqa_st_close(f);
    }
    unlink(ckpt);
}

int main(void) {
    RUN(test_learns_reversal);
    return test_finish();
}
