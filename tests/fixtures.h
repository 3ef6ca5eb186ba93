/* fixtures.h: small helpers the tests use to write dataset fixtures on disk (header-only, like
 * tests/testlib.h; tests/cli_testlib.h removes them: cli_rm_rf). */
#ifndef AQA_TESTS_FIXTURES_H
#define AQA_TESTS_FIXTURES_H

#include <stdint.h>
#include <stdio.h>

#include "io/npy.h"
#include "io/pickle_write.h"

/* A 2-D '<f4' .npy of x[rows, cols] (io/npy.h's writer); 0 or -1. */
__attribute__((unused)) static int write_npy_2d(const char *path, const float *x, int rows, int cols) {
    return aqa_npy_write_f32_2d(path, x, (size_t)rows, (size_t)cols) == AQA_OK ? 0 : -1;
}

/* An MTL-AQA key (video, dive) as a tuple of ints. */
__attribute__((unused)) static void pk_pair(aqa_pickle_writer *w, int64_t v, int64_t d) {
    aqa_pkw_tuple_begin(w);
    aqa_pkw_int(w, v);
    aqa_pkw_int(w, d);
    aqa_pkw_tuple_end(w);
}

#endif /* AQA_TESTS_FIXTURES_H */
