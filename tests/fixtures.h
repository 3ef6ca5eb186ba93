/* fixtures.h: small helpers the tests use to write dataset fixtures on disk (header-only, like
 * tests/testlib.h; tests/cli_testlib.h removes them: cli_rm_rf). */
#ifndef AQA_TESTS_FIXTURES_H
#define AQA_TESTS_FIXTURES_H

#include <stdint.h>
#include <stdio.h>

#include "io/pickle_write.h"

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

/* An MTL-AQA key (video, dive) as a tuple of ints. */
__attribute__((unused)) static void pk_pair(aqa_pickle_writer *w, int64_t v, int64_t d) {
    aqa_pkw_tuple_begin(w);
    aqa_pkw_int(w, v);
    aqa_pkw_int(w, d);
    aqa_pkw_tuple_end(w);
}

#endif /* AQA_TESTS_FIXTURES_H */
