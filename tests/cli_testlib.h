/* cli_testlib.h: what the tests that run the example programs share: running a command with its
 * output captured, whether a program is built, reading a "name value" line of a program's output,
 * and removing a scratch folder.
 *
 * Header-only like tests/testlib.h; every function is file-static and marked unused. */
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

#define CLI_UNUSED __attribute__((unused))

/* Runs a shell command, capturing stdout+stderr into *out (malloc'd; NULL out: discarded);
 * returns the exit status (-1 when it did not exit normally). */
CLI_UNUSED static int cli_run(const char *cmd, char **out) {
    size_t len = strlen(cmd) + 8;
    char *full = malloc(len);
    if (!full) return -1;
    snprintf(full, len, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    free(full);
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
CLI_UNUSED static bool cli_have(const char *prog) { return access(prog, X_OK) == 0; }

/* The value of the line "name value" in a program's output, NAN when absent. */
CLI_UNUSED static double cli_metric(const char *text, const char *name) {
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

/* rm -rf path. */
CLI_UNUSED static void cli_rm_tree(const char *path) { nftw(path, cli_rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

#endif /* AQA_CLI_TESTLIB_H */
