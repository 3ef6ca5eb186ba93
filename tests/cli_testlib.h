/* cli_testlib.h: what the end-to-end tests of the example programs share: running a command
 * line with its output captured, a tiny generated synthetic diving set in a fresh folder,
 * removing that folder, and 2-D .npy feature files (Fis-V's layout).  Header-only like tests/testlib.h. */
#ifndef AQA_CLI_TESTLIB_H
#define AQA_CLI_TESTLIB_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

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

/* A 2-D '<f4' .npy (format 1.0), written by hand: io/npy.h writes vectors only. */
__attribute__((unused)) static int write_npy_2d(const char *path, const float *x, int rows, int cols) {
    char hdr[128];
    int n = snprintf(hdr, sizeof hdr, "{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", rows, cols);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    unsigned hl = (unsigned)(n + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 255), (unsigned char)(hl >> 8)};
    fwrite(pre, 1, 10, f);
    fwrite(hdr, 1, (size_t)n, f);
    for (int k = 0; k < pad; k++) fputc(' ', f);
    fputc('\n', f);
    fwrite(x, sizeof *x, (size_t)rows * (size_t)cols, f);
    return fclose(f) == 0 ? 0 : -1;
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
