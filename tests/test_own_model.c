/* test_own_model.c: runs examples/own_model, the complete program of docs/writing-a-model.md
 * (a custom op and model, gradchecks, parity with PyTorch on the golden file of
 * scripts/gen_golden_own_model.py, training, checkpoint and bit-identical resume), and checks
 * its report; a golden file of other weights must make it fail.  SKIPs when the example has not
 * been built (`make` builds it; `make check` alone does not). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/testlib.h"

static const char *find_example(void) {
    static const char *const candidates[] = {"examples/own_model", "../examples/own_model"};
    for (size_t i = 0; i < sizeof candidates / sizeof *candidates; i++)
        if (access(candidates[i], X_OK) == 0) return candidates[i];
    return NULL;
}

/* Runs the example with a golden file; its stdout goes to out; returns the exit status. */
static int run_example(const char *exe, const char *golden, char *out, size_t size) {
    char ckpt[] = "/tmp/aqa_own_model.XXXXXX", cmd[2048];
    int fd = mkstemp(ckpt);
    if (fd >= 0) close(fd);
    snprintf(cmd, sizeof cmd, "OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive} %s --golden %s --steps 120 --checkpoint %s",
             exe, golden, ckpt);
    FILE *p = popen(cmd, "r");
    size_t used = 0;
    out[0] = '\0';
    if (!p) return -1;
    while (used + 1 < size && fgets(out + used, (int)(size - used), p)) used += strlen(out + used);
    int rc = pclose(p);
    unlink(ckpt);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_own_model_program(void) {
    const char *exe = find_example();
    if (!exe) {
        SKIP("examples/own_model is not built (run make)");
        return;
    }
    char out[4096];
    CHECK_EQ_INT(run_example(exe, test_data_path("golden_own_model.safetensors"), out, sizeof out), 0);
    for (const char *line = out, *end; *line; line = *end ? end + 1 : end) { /* the report, indented */
        end = strchr(line, '\n');
        if (!end) end = line + strlen(line);
        printf("    %.*s\n", (int)(end - line), line);
    }
    CHECK(strstr(out, "gradcheck l2_normalize: gradcheck passed") != NULL);
    CHECK(strstr(out, "gradcheck ClipScorer, 6 parameters: gradcheck passed") != NULL);
    double err = 1;
    const char *par = strstr(out, "parity with PyTorch: scores, loss and 6 gradients within ");
    CHECK(par && sscanf(par, "parity with PyTorch: scores, loss and 6 gradients within %lf", &err) == 1 && err <= 1e-4);
    CHECK(strstr(out, "weights bit-identical to the uninterrupted run's") != NULL);
    CHECK(strstr(out, "all checks passed") != NULL);
    /* another model's weights: the strict load fails, and so does the program */
    CHECK_EQ_INT(run_example(exe, test_data_path("golden_loss.safetensors"), out, sizeof out), 1);
    CHECK(strstr(out, "parity with PyTorch: ") && strstr(out, "SOME CHECKS FAILED"));
}

int main(void) {
    RUN(test_own_model_program);
    return test_finish();
}
