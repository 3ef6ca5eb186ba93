/* testlib.h: the minimal test harness every test program uses.
 *
 * A test program is one C file with static test functions and a main() that runs them:
 *
 *     static void test_add_broadcast(void) { CHECK(x == 1); CHECK_NEAR(a, b, 1e-6); }
 *     int main(void) { RUN(test_add_broadcast); return test_finish(); }
 *
 * Each test case prints one line, "PASS name", "FAIL name: file:line: what" or "SKIP name: why";
 * tests/run.sh counts those lines over all programs and prints the suite summary.  A CHECK that
 * fails does not stop the test case, so one run reports every broken expectation. */
#ifndef AQA_TESTLIB_H
#define AQA_TESTLIB_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_case_failed;   /* failures seen in the running test case */
static int test_case_skipped;  /* the running test case called SKIP */
static int test_total_failed;  /* test cases that failed in this program */
static char test_skip_reason[256];

__attribute__((unused)) static void test_fail_at(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    if (test_case_failed < 5) { /* the first few details are enough to diagnose */
        fprintf(stdout, "    %s:%d: ", file, line);
        va_start(ap, fmt);
        vfprintf(stdout, fmt, ap);
        va_end(ap);
        fputc('\n', stdout);
    }
    test_case_failed++;
}

#define CHECK(cond) \
    do { if (!(cond)) test_fail_at(__FILE__, __LINE__, "CHECK(%s) failed", #cond); } while (0)
#define CHECK_MSG(cond, ...) \
    do { if (!(cond)) test_fail_at(__FILE__, __LINE__, __VA_ARGS__); } while (0)
#define CHECK_NEAR(a, b, tol)                                                                   \
    do {                                                                                        \
        double test_a_ = (double)(a), test_b_ = (double)(b);                                    \
        if (!(fabs(test_a_ - test_b_) <= (tol)))                                                \
            test_fail_at(__FILE__, __LINE__, "%s = %.9g, %s = %.9g, |diff| %.3g > tol %.3g", #a, \
                         test_a_, #b, test_b_, fabs(test_a_ - test_b_), (double)(tol));         \
    } while (0)
#define CHECK_EQ_INT(a, b)                                                                      \
    do {                                                                                        \
        long long test_a_ = (long long)(a), test_b_ = (long long)(b);                           \
        if (test_a_ != test_b_)                                                                 \
            test_fail_at(__FILE__, __LINE__, "%s = %lld, expected %s = %lld", #a, test_a_, #b,  \
                         test_b_);                                                              \
    } while (0)
#define CHECK_STR(a, b)                                                                         \
    do {                                                                                        \
        const char *test_a_ = (a), *test_b_ = (b);                                              \
        if (!test_a_ || !test_b_ || strcmp(test_a_, test_b_) != 0)                              \
            test_fail_at(__FILE__, __LINE__, "%s = \"%s\", expected \"%s\"", #a,                \
                         test_a_ ? test_a_ : "(null)", test_b_ ? test_b_ : "(null)");           \
    } while (0)

/* Marks the running test case skipped (call it, then return). */
#define SKIP(...) \
    do { test_case_skipped = 1; snprintf(test_skip_reason, sizeof test_skip_reason, __VA_ARGS__); } while (0)

__attribute__((unused)) static void test_run_case(const char *name, void (*fn)(void)) {
    test_case_failed = 0;
    test_case_skipped = 0;
    fflush(stdout);
    fn();
    if (test_case_failed) {
        printf("FAIL %s: %d check(s) failed\n", name, test_case_failed);
        test_total_failed++;
    } else if (test_case_skipped) {
        printf("SKIP %s: %s\n", name, test_skip_reason);
    } else {
        printf("PASS %s\n", name);
    }
    fflush(stdout);
}
#define RUN(fn) test_run_case(#fn, fn)

__attribute__((unused)) static int test_finish(void) { return test_total_failed ? 1 : 0; }

/* Path of a file under tests/data (run.sh exports AQA_TEST_DATA; the default suits running a
 * test program from the build folder of an in-tree build). */
__attribute__((unused)) static const char *test_data_path(const char *name) {
    static char buf[4096];
    const char *dir = getenv("AQA_TEST_DATA");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "tests/data", name);
    return buf;
}

/* Path of a file of the source tree, e.g. models/clip/data/... (run.sh exports AQA_SRCDIR; the
 * default suits running a test program from the build folder of an in-tree build). */
__attribute__((unused)) static const char *test_source_path(const char *name) {
    static char buf[4096];
    const char *dir = getenv("AQA_SRCDIR");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : ".", name);
    return buf;
}

/* Path of a file under the read-only ../shared/data folder (NULL-safe: tests skip when absent). */
__attribute__((unused)) static const char *test_shared_path(const char *name) {
    static char buf[4096];
    const char *dir = getenv("AQA_SHARED_DATA");
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : "../shared/data", name);
    return buf;
}

/* Seed for randomised tests: AQA_TEST_SEED overrides; always printed so a failure can be rerun. */
__attribute__((unused)) static uint64_t test_seed(const char *what) {
    const char *s = getenv("AQA_TEST_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 10) : 1234;
    printf("    seed %llu (%s)\n", (unsigned long long)seed, what);
    return seed;
}

#endif /* AQA_TESTLIB_H */
