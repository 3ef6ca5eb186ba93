/* cli_testlib.h: what the end-to-end tests of the example programs share: running a command
 * line with its output captured, whether a program is built, reading a "name value" line of a
 * program's output, a tiny generated synthetic diving set in a fresh folder, and removing that
 * folder.  Header-only like tests/testlib.h. */
#ifndef AQA_CLI_TESTLIB_H
#define AQA_CLI_TESTLIB_H

#include <ftw.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "datasets/synthetic.h"
#include "tests/testlib.h"

/* Runs a shell command line, stdout and stderr of all of it into *out (malloc'd; out may be NULL);
 * returns the exit status (-1 when killed by a signal). */
__attribute__((unused)) static int cli_run(const char *cmd, char **out) {
    char full[8192];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    if (!p) return -1;
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    while (buf && (k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (n + 1 >= cap) {
            char *b2 = realloc(buf, cap *= 2);
            if (!b2) break;
            buf = b2;
        }
    }
    if (buf) buf[n] = 0;
    int st = pclose(p);
    if (out) *out = buf;
    else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The program is built (executable). */
__attribute__((unused)) static bool cli_have(const char *prog) { return access(prog, X_OK) == 0; }

/* The value of the line "name value" in a program's output, NAN when absent. */
__attribute__((unused)) static double cli_metric(const char *text, const char *name) {
    if (!text) return NAN;
    size_t n = strlen(name);
    for (const char *p = text; p; p = strchr(p, '\n')) {
        if (*p == '\n') p++;
        if (!strncmp(p, name, n) && p[n] == ' ') return strtod(p + n + 1, NULL);
    }
    return NAN;
}

static int cli_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

/* Removes a folder tree. */
__attribute__((unused)) static void cli_rm_rf(const char *dir) { nftw(dir, cli_rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

/* A fresh folder dir (template "/tmp/NAME_XXXXXX", filled in) holding a 16-video synthetic set
 * (32 px, 40-80 frames, 12 training / 4 test dives) in dir/data.  0, or 1 after a "FAIL setup"
 * line. */
__attribute__((unused)) static int cli_tiny_set(char *dir) {
    if (!mkdtemp(dir)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    aqa_synthetic_config sc;
    aqa_synthetic_config_init(&sc);
    char data[300];
    snprintf(data, sizeof data, "%s/data", dir);
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
    return 0;
}

#endif /* AQA_CLI_TESTLIB_H */
