/* cuda_testlib.h: what the CPU-vs-CUDA test programs (test_cuda_ops, test_cuda_conv,
 * test_cuda_nn) share: the device probe and its skip rule, their random numbers and the
 * normalised error they compare with.  Include after tests/testlib.h.
 *
 * No usable GPU: each case SKIPs with the reason, unless AQA_REQUIRE_GPU is set (as
 * scripts/gpu-check.sh does), where that is a failure. */
#ifndef AQA_CUDA_TESTLIB_H
#define AQA_CUDA_TESTLIB_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/backend.h"
#include "tensor/cuda/cuda.h"
#include "tests/testlib.h"

static aqa_device DEV;                                /* the GPU under test (cuda:0) */
static bool gpu_ok;                                   /* cuda_test_init found it usable */
static char skip_reason[600];                         /* why not, when not */
static uint64_t rng_state = 88172645463325252ull;     /* urand's xorshift state */

/* Probes cuda:0 (loading the driver, NVRTC, cuBLAS and the backend table), seeds urand from
 * test_seed(seed_name) and makes device errors name their kernel (AQA_CUDA_SYNC). */
__attribute__((unused)) static void cuda_test_init(const char *seed_name) {
    setenv("AQA_CUDA_SYNC", "1", 0);
    rng_state ^= test_seed(seed_name);
    if (!aqa_cuda_is_available()) {
        snprintf(skip_reason, sizeof skip_reason, "%s", aqa_last_error());
        return;
    }
    DEV = aqa_cuda_device(0);
    if (!aqa_backend_for(DEV)) snprintf(skip_reason, sizeof skip_reason, "%s", aqa_last_error());
    else gpu_ok = true;
}

/* The start of every GPU case: false (after SKIP or FAIL) when there is no usable GPU. */
__attribute__((unused)) static bool have_gpu(void) {
    if (!gpu_ok) {
        const char *req = getenv("AQA_REQUIRE_GPU");
        if (req && strcmp(req, "0") != 0) CHECK_MSG(0, "AQA_REQUIRE_GPU is set but: %.400s", skip_reason);
        else SKIP("no usable GPU: %.200s", skip_reason);
        return false;
    }
    return true;
}

/* Uniform in [0, 1) (xorshift64; the same sequence on every machine). */
__attribute__((unused)) static double urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) * (1.0 / 9007199254740992.0);
}

/* ||a - b|| / ||a|| (|| b || alone when a is 0); NaN in one but not the other is infinite. */
__attribute__((unused)) static double rel_err(const double *a, const double *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) != isnan(b[i])) return INFINITY;
        if (isnan(a[i])) continue;
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += a[i] * a[i];
    }
    return sqrt(num) / (den > 0 ? sqrt(den) : 1.0);
}

#endif /* AQA_CUDA_TESTLIB_H */
