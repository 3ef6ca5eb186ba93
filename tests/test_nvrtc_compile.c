/* test_nvrtc_compile.c: the CUDA kernels compile, without a GPU.
 *
 * Loads NVRTC with dlopen (SKIP when it cannot be loaded) and compiles every program the CUDA
 * backend can generate (aqa__cuda_program_names) for sm_80 and sm_90, failing on any compile
 * error and checking that the CUBINs hold the kernels the host code launches.  Also exercises
 * the on-disk kernel cache: an entry is written, reread, detected as corrupt after a byte flip
 * or a truncation and rebuilt; AQA_KERNEL_CACHE=off writes nothing; a failed compile reports the
 * NVRTC log with numbered source lines. */
#include <dirent.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tensor/cuda/cuda-impl.h"
#include "tests/testlib.h"

static char cache_dir[256];

/* Fresh empty cache folder for this run. */
static void use_fresh_cache(const char *tag) {
    snprintf(cache_dir, sizeof cache_dir, "/tmp/aqa-test-nvrtc-%d-%s", (int)getpid(), tag);
    mkdir(cache_dir, 0755);
    setenv("AQA_KERNEL_CACHE", cache_dir, 1);
}

static void remove_cache(void) {
    DIR *d = opendir(cache_dir);
    if (!d) return;
    struct dirent *e;
    char path[600];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", cache_dir, e->d_name);
        unlink(path);
    }
    closedir(d);
    rmdir(cache_dir);
}

static bool nvrtc_ok(void) {
    if (aqa__cuda_load_nvrtc() != AQA_OK) {
        SKIP("NVRTC could not be loaded: %s", aqa_last_error());
        return false;
    }
    return true;
}

/* Does the binary contain the NUL-terminated name (its symbol table does)? */
static bool has_symbol(const char *bin, size_t n, const char *name) {
    size_t l = strlen(name) + 1;
    for (size_t i = 0; i + l <= n; i++)
        if (bin[i] == name[0] && memcmp(bin + i, name, l) == 0 && (i == 0 || bin[i - 1] == '\0')) return true;
    return false;
}

/* The kernels the host code looks up, per program family (see tensor/cuda/cuda_*.c). */
static void expected_kernels(const char *prog, const char **bases, int *nb, const char **plain, int *np) {
    *nb = *np = 0;
    if (!strncmp(prog, "unary_", 6)) {
        if (strcmp(prog, "unary_b8")) bases[(*nb)++] = "unary";
        bases[(*nb)++] = "lnot";
        if (!strcmp(prog, "unary_f32")) plain[(*np)++] = "unary_v4";
    } else if (!strncmp(prog, "binary_", 7)) {
        if (strcmp(prog, "binary_b8")) bases[(*nb)++] = "binary";
        bases[(*nb)++] = "compare";
        if (!strcmp(prog, "binary_f32")) plain[(*np)++] = "binary_v4";
    } else if (!strncmp(prog, "where_", 6)) {
        bases[(*nb)++] = "where";
    } else if (!strncmp(prog, "axpy_", 5)) {
        bases[(*nb)++] = "axpy";
        if (!strcmp(prog, "axpy_f32")) plain[(*np)++] = "axpy_v4";
    } else if (!strncmp(prog, "copy_", 5)) {
        bases[(*nb)++] = "copy_f32";
        bases[(*nb)++] = "copy_f64";
        bases[(*nb)++] = "copy_i64";
        bases[(*nb)++] = "copy_b8";
    } else if (!strcmp(prog, "fill")) {
        bases[(*nb)++] = "fill_f32";
        bases[(*nb)++] = "fill_f64";
        bases[(*nb)++] = "fill_i64";
        bases[(*nb)++] = "fill_b8";
    } else if (!strcmp(prog, "random")) {
        plain[(*np)++] = "random_f32";
        plain[(*np)++] = "random_f64";
        plain[(*np)++] = "random_i64";
        plain[(*np)++] = "random_b8";
    } else if (!strncmp(prog, "reduce_", 7)) {
        static const char *ops[] = {"sum", "max", "min"};
        static const char *kinds[] = {"reduce_row32_", "reduce_row256_", "reduce_col_", "reduce_fin_",
                                      "reduce_fin256_"};
        static char names[15][32];
        int first = strcmp(prog, "reduce_b8") ? 0 : 1; /* no sum of bool */
        for (int o = first; o < 3; o++)
            for (int k = 0; k < 5; k++) {
                snprintf(names[o * 5 + k], 32, "%s%s", kinds[k], ops[o]);
                plain[(*np)++] = names[o * 5 + k];
            }
    } else if (!strncmp(prog, "softmax_", 8)) {
        static const char *s[] = {"softmax_fwd_row32", "softmax_fwd_row256", "softmax_fwd_col",
                                  "softmax_bwd_row32", "softmax_bwd_row256", "softmax_bwd_col"};
        for (int i = 0; i < 6; i++) plain[(*np)++] = s[i];
        static char reg[27][24]; /* register-cached rows: warp (w) and block (b) widths */
        static const char *widths[] = {"w1", "w2", "w4", "w8", "w16", "w32", "b8", "b16", "b32"};
        for (int i = 0; i < 27; i++) {
            snprintf(reg[i], sizeof reg[i], "softmax_%s_%s", i < 9 ? "fwd" : i < 18 ? "bwd" : "pre", widths[i % 9]);
            plain[(*np)++] = reg[i];
        }
    } else if (!strncmp(prog, "norm_", 5)) {
        static const char *s[] = {"ln_fwd32", "ln_fwd256", "ln_bwd32", "ln_bwd256", "ln_colpart", "ln_colfin",
                                  "bn_stats", "bn_fin", "bn_apply", "bn_bpart", "bn_bfin", "bn_bapply",
                                  "ln_fwd_w1", "ln_fwd_w2", "ln_fwd_w4", "ln_fwd_w8", "ln_fwd_w16", "ln_fwd_w32",
                                  "ln_fwd_b8", "ln_fwd_b16", "ln_fwd_b32", "ln_bwd_w1", "ln_bwd_w2", "ln_bwd_w4",
                                  "ln_bwd_w8", "ln_bwd_w16", "ln_bwd_w32", "ln_bwd_b8", "ln_bwd_b16", "ln_bwd_b32"};
        for (int i = 0; i < 30; i++) plain[(*np)++] = s[i];
    } else if (!strncmp(prog, "pool_", 5)) {
        static const char *s[] = {"max_fwd", "max_bwd", "avg_fwd", "avg_bwd", "ada_fwd", "ada_bwd",
                                  "max_fwd32", "max_bwd32", "avg_fwd32", "avg_bwd32", "ada_fwd32", "ada_bwd32"};
        for (int i = 0; i < 12; i++) plain[(*np)++] = s[i];
    } else if (!strncmp(prog, "adamw_", 6)) {
        plain[(*np)++] = "adam_multi";
    } else if (!strncmp(prog, "attention_", 10)) {
        plain[(*np)++] = "attn_fwd";
    } else if (!strcmp(prog, "index_check")) {
        plain[(*np)++] = "index_check_k";
    } else if (!strncmp(prog, "index_", 6)) {
        plain[(*np)++] = "index_select_k";
        plain[(*np)++] = "gather_k";
        plain[(*np)++] = "index_add_k";
        plain[(*np)++] = "scatter_add_k";
    } else if (!strcmp(prog, "matmul_i64")) {
        plain[(*np)++] = "matmul_i64_k";
    } else if (!strncmp(prog, "conv_", 5)) {
        static const char *s[] = {"vol2col_k", "vol2col_k32", "col2vol_k", "col2vol_k32", "bias_add_k", "bias_grad_k"};
        for (int i = 0; i < 6; i++) plain[(*np)++] = s[i];
    }
}

/* One worker compiles programs i = w, w + nw, ... for one arch (only every `every`-th). */
typedef struct job {
    int arch, w, nw, every;
    int failures;          /* compile errors */
    int missing;           /* expected kernels absent */
    char first_error[1100];/* first message */
} job;

static void *compile_worker(void *vj) {
    job *j = vj;
    const char *const *names = aqa__cuda_program_names();
    int count = 0;
    while (names[count]) count++;
    for (int i = j->w; i < count; i += j->nw) {
        if (i % j->every) continue;
        char *src = aqa__cuda_program_source(names[i]);
        char *bin = NULL;
        size_t n = 0;
        if (!src || aqa__nvrtc_compile(names[i], src, j->arch, false, &bin, &n) != AQA_OK) {
            if (!j->failures) snprintf(j->first_error, sizeof j->first_error, "%s", aqa_last_error());
            j->failures++;
            printf("    sm_%d %s: COMPILE ERROR\n%s\n", j->arch, names[i], aqa_last_error());
            free(src);
            continue;
        }
        const char *bases[8], *plain[48];
        int nb, np;
        expected_kernels(names[i], bases, &nb, plain, &np);
        if (nb + np == 0) {
            printf("    %s: no expected kernel list in this test\n", names[i]);
            j->missing++;
        }
        for (int b = 0; b < nb; b++) {
            char k[64];
            snprintf(k, sizeof k, "%s_c", bases[b]);
            if (!has_symbol(bin, n, k)) { printf("    %s lacks %s\n", names[i], k); j->missing++; }
            for (int nd = 1; nd <= AQA_MAX_DIMS; nd++) {
                if (nd > 4 && nd < 8) continue; /* 5..7 dims run the padded _nd8 kernel */
                snprintf(k, sizeof k, "%s_nd%d", bases[b], nd);
                if (!has_symbol(bin, n, k)) { printf("    %s lacks %s\n", names[i], k); j->missing++; }
            }
        }
        for (int p = 0; p < np; p++)
            if (!has_symbol(bin, n, plain[p])) { printf("    %s lacks %s\n", names[i], plain[p]); j->missing++; }
        free(bin);
        free(src);
    }
    return NULL;
}

/* Under AddressSanitizer (the CI's sanitizer pass) NVRTC runs several times slower; that pass
 * checks aqa's own memory use, which one arch exercises fully, so sm_80 compiles a sample. */
#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

static void compile_all_for(int arch) {
    if (!nvrtc_ok()) return;
    /* NVRTC must support the arch (13.x: sm_75 and up) */
    bool ptx;
    CHECK_EQ_INT(aqa__nvrtc_arch_for(arch, &ptx), arch);
    CHECK(!ptx);
    setenv("AQA_KERNEL_CACHE", "off", 1); /* really compile */
    enum { MAXW = 8 };
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    int NW = ncpu < 2 ? 2 : ncpu > MAXW ? MAXW : (int)ncpu; /* one compile per core */
    job jobs[MAXW];
    pthread_t th[MAXW];
    for (int w = 0; w < NW; w++) {
        jobs[w] = (job){.arch = arch, .w = w, .nw = NW, .every = SANITIZED && arch == 80 ? 4 : 1};
        pthread_create(&th[w], NULL, compile_worker, &jobs[w]);
    }
    int failures = 0, missing = 0;
    for (int w = 0; w < NW; w++) {
        pthread_join(th[w], NULL);
        failures += jobs[w].failures;
        missing += jobs[w].missing;
    }
    int count = 0;
    for (const char *const *p = aqa__cuda_program_names(); *p; p++) count++;
    printf("    sm_%d: %d programs%s, %d failed, %d kernels missing\n", arch, count,
           SANITIZED && arch == 80 ? " (every 4th compiled: sanitizer build)" : "", failures, missing);
    CHECK_EQ_INT(failures, 0);
    CHECK_EQ_INT(missing, 0);
    CHECK(count >= 30);
}

static void test_compile_all_sm80(void) { compile_all_for(80); }
static void test_compile_all_sm90(void) { compile_all_for(90); }

static void test_arch_clamp(void) {
    if (!nvrtc_ok()) return;
    /* a device newer than anything NVRTC knows gets NVRTC's newest arch (never above the device) */
    bool ptx;
    int a = aqa__nvrtc_arch_for(990, &ptx);
    CHECK(a >= 90 && a <= 990);
    CHECK(ptx); /* another major version: only PTX loads there */
    CHECK_EQ_INT(aqa__nvrtc_arch_for(86, &ptx), 86);
    CHECK(!ptx);
    CHECK_EQ_INT(aqa__nvrtc_arch_for(30, &ptx), 0); /* too old: an error */
    CHECK(strstr(aqa_last_error(), "cannot compile") != NULL);
}

/* The Adam kernel promises the CPU loop's bits: its arithmetic is written with explicitly rounded
 * intrinsics, which NVRTC never contracts into fused multiply-adds (NVRTC's default --fmad=true
 * stays on for every other kernel), so its code holds no floating-point fma. */
static void test_adam_has_no_fma(void) {
    if (!nvrtc_ok()) return;
    setenv("AQA_KERNEL_CACHE", "off", 1);
    const char *progs[] = {"adamw_f32", "adamw_f64"};
    for (int i = 0; i < 2; i++) {
        char *src = aqa__cuda_program_source(progs[i]);
        char *ptx = NULL;
        size_t n = 0;
        CHECK_EQ_INT(aqa__nvrtc_compile(progs[i], src, 90, true, &ptx, &n), AQA_OK);
        CHECK(ptx && strstr(ptx, ".entry adam_multi") != NULL);
        CHECK_MSG(ptx && !strstr(ptx, "fma.rn.f32") && !strstr(ptx, "fma.rn.f64"), "%s: contracted fma in PTX",
                  progs[i]);
        /* and the check can see one: the plain softmax kernel has fmas */
        free(ptx);
        free(src);
    }
    char *src = aqa__cuda_program_source("softmax_f32");
    char *ptx = NULL;
    size_t n = 0;
    CHECK_EQ_INT(aqa__nvrtc_compile("softmax_f32", src, 90, true, &ptx, &n), AQA_OK);
    CHECK(ptx && strstr(ptx, "fma.rn.f32") != NULL);
    free(ptx);
    free(src);
}

/* The choice itself, for architecture lists of NVRTCs older and newer than the one here. */
static void test_pick_arch(void) {
    const int old_nvrtc[] = {50, 52, 60, 70, 75, 80, 86, 87, 89, 90};
    const int n = (int)(sizeof old_nvrtc / sizeof old_nvrtc[0]);
    bool ptx = true;
    CHECK_EQ_INT(aqa__nvrtc_pick_arch(90, old_nvrtc, n, &ptx), 90);
    CHECK(!ptx);
    CHECK_EQ_INT(aqa__nvrtc_pick_arch(89, old_nvrtc, n, &ptx), 89);
    CHECK(!ptx);
    /* cc 8.8 (unknown minor): sm_87 CUBIN runs on later minors of major 8 */
    CHECK_EQ_INT(aqa__nvrtc_pick_arch(88, old_nvrtc, n, &ptx), 87);
    CHECK(!ptx);
    /* a cc 10.0 GPU with this NVRTC: sm_90 CUBIN would fail to load; compute_90 PTX instead */
    CHECK_EQ_INT(aqa__nvrtc_pick_arch(100, old_nvrtc, n, &ptx), 90);
    CHECK(ptx);
    CHECK_EQ_INT(aqa__nvrtc_pick_arch(120, old_nvrtc, n, &ptx), 90);
    CHECK(ptx);
    CHECK_EQ_INT(aqa__nvrtc_pick_arch(35, old_nvrtc, n, &ptx), 0);
    CHECK(!ptx);
}

/* A program compiled to PTX for compute_<arch> (what a GPU of a newer major gets) is PTX text
 * for that target holding the kernels. */
static void test_compile_ptx(void) {
    if (!nvrtc_ok()) return;
    setenv("AQA_KERNEL_CACHE", "off", 1);
    char *src = aqa__cuda_program_source("index_check");
    char *bin = NULL;
    size_t n = 0;
    CHECK_EQ_INT(aqa__nvrtc_compile("index_check", src, 90, true, &bin, &n), AQA_OK);
    CHECK(bin && n > 0 && bin[n - 1] == '\0');
    CHECK(bin && strstr(bin, ".target sm_90") != NULL);
    CHECK(bin && strstr(bin, ".entry index_check_k") != NULL);
    free(bin);
    free(src);
}

static void test_unknown_program(void) {
    CHECK(aqa__cuda_program_source("nonsense_f32") == NULL);
    CHECK(strstr(aqa_last_error(), "nonsense_f32") != NULL);
}

/* Path of the single cache entry in cache_dir (or "" when none). */
static void single_entry(char *path, size_t n, int *count) {
    *count = 0;
    path[0] = '\0';
    DIR *d = opendir(cache_dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strstr(e->d_name, ".cubin")) continue;
        (*count)++;
        snprintf(path, n, "%s/%s", cache_dir, e->d_name);
    }
    closedir(d);
}

static void test_disk_cache(void) {
    if (!nvrtc_ok()) return;
    use_fresh_cache("disk");
    char *src = aqa__cuda_program_source("index_check");
    CHECK(src != NULL);
    if (!src) return;
    char *b1 = NULL, *b2 = NULL, *b3 = NULL, *b4 = NULL;
    size_t n1 = 0, n2 = 0, n3 = 0, n4 = 0;
    aqa__nvrtc_forget_memory_cache();
    aqa_nvrtc_counters c0 = aqa__nvrtc_counters();
    CHECK_EQ_INT(aqa__nvrtc_compile("index_check", src, 80, false, &b1, &n1), AQA_OK);
    aqa_nvrtc_counters c1 = aqa__nvrtc_counters();
    CHECK_EQ_INT(c1.compiles - c0.compiles, 1);
    char path[600];
    int count;
    single_entry(path, sizeof path, &count);
    CHECK_EQ_INT(count, 1);

    /* reread from disk: same bytes, no compile */
    aqa__nvrtc_forget_memory_cache();
    CHECK_EQ_INT(aqa__nvrtc_compile("index_check", src, 80, false, &b2, &n2), AQA_OK);
    aqa_nvrtc_counters c2 = aqa__nvrtc_counters();
    CHECK_EQ_INT(c2.compiles - c1.compiles, 0);
    CHECK_EQ_INT(c2.disk_hits - c1.disk_hits, 1);
    CHECK(n1 == n2 && b1 && b2 && memcmp(b1, b2, n1) == 0);

    /* flip a byte of the payload: detected, recompiled, rewritten */
    FILE *f = fopen(path, "r+b");
    CHECK(f != NULL);
    if (f) {
        fseek(f, -10, SEEK_END);
        int ch = fgetc(f);
        fseek(f, -10, SEEK_END);
        fputc(ch ^ 0x55, f);
        fclose(f);
    }
    aqa__nvrtc_forget_memory_cache();
    CHECK_EQ_INT(aqa__nvrtc_compile("index_check", src, 80, false, &b3, &n3), AQA_OK);
    aqa_nvrtc_counters c3 = aqa__nvrtc_counters();
    CHECK_EQ_INT(c3.disk_corrupt - c2.disk_corrupt, 1);
    CHECK_EQ_INT(c3.compiles - c2.compiles, 1);
    CHECK(n3 == n1 && b3 && memcmp(b1, b3, n1) == 0);

    /* truncate it: detected and rebuilt too; then the rebuilt entry reads back fine */
    if (truncate(path, 40) != 0) CHECK_MSG(0, "truncate %s failed", path);
    aqa__nvrtc_forget_memory_cache();
    free(b4);
    CHECK_EQ_INT(aqa__nvrtc_compile("index_check", src, 80, false, &b4, &n4), AQA_OK);
    aqa_nvrtc_counters c4 = aqa__nvrtc_counters();
    CHECK_EQ_INT(c4.disk_corrupt - c3.disk_corrupt, 1);
    free(b4);
    b4 = NULL;
    aqa__nvrtc_forget_memory_cache();
    CHECK_EQ_INT(aqa__nvrtc_compile("index_check", src, 80, false, &b4, &n4), AQA_OK);
    aqa_nvrtc_counters c5 = aqa__nvrtc_counters();
    CHECK_EQ_INT(c5.disk_hits - c4.disk_hits, 1);
    CHECK_EQ_INT(c5.compiles - c4.compiles, 0);

    /* a different arch is a different entry */
    free(b4);
    b4 = NULL;
    CHECK_EQ_INT(aqa__nvrtc_compile("index_check", src, 90, false, &b4, &n4), AQA_OK);
    single_entry(path, sizeof path, &count);
    CHECK_EQ_INT(count, 2);

    /* memory cache: a second request in the same process compiles nothing */
    aqa_nvrtc_counters c6 = aqa__nvrtc_counters();
    free(b4);
    b4 = NULL;
    CHECK_EQ_INT(aqa__nvrtc_compile("index_check", src, 90, false, &b4, &n4), AQA_OK);
    aqa_nvrtc_counters c7 = aqa__nvrtc_counters();
    CHECK_EQ_INT(c7.memory_hits - c6.memory_hits, 1);
    CHECK_EQ_INT(c7.compiles - c6.compiles, 0);
    free(b1);
    free(b2);
    free(b3);
    free(b4);
    free(src);
    remove_cache();
}

static void test_cache_off(void) {
    if (!nvrtc_ok()) return;
    use_fresh_cache("off");
    setenv("AQA_KERNEL_CACHE", "off", 1);
    CHECK_STR(aqa__nvrtc_cache_dir(), "");
    char *src = aqa__cuda_program_source("matmul_i64");
    char *bin = NULL;
    size_t n = 0;
    aqa__nvrtc_forget_memory_cache();
    CHECK_EQ_INT(aqa__nvrtc_compile("matmul_i64", src, 80, false, &bin, &n), AQA_OK);
    char path[600];
    int count;
    single_entry(path, sizeof path, &count);
    CHECK_EQ_INT(count, 0);
    free(bin);
    free(src);
    remove_cache();
}

static void test_compile_error_report(void) {
    if (!nvrtc_ok()) return;
    use_fresh_cache("err");
    const char *bad = "// a broken kernel\n"
                      "extern \"C\" __global__ void k(float *x) {\n"
                      "    x[0] = undefined_thing_42;\n"
                      "}\n";
    char *bin = NULL;
    size_t n = 0;
    aqa_status st = aqa__nvrtc_compile("broken", bad, 80, false, &bin, &n);
    CHECK_EQ_INT(st, AQA_EDEVICE);
    const char *msg = aqa_last_error();
    CHECK(strstr(msg, "undefined_thing_42") != NULL); /* NVRTC's log */
    CHECK(strstr(msg, "    3| ") != NULL);            /* the numbered source line */
    CHECK(strstr(msg, "broken") != NULL);
    CHECK(bin == NULL);
    free(bin);
    /* the full report file exists */
    const char *p = strstr(msg, "full log and numbered source: ");
    CHECK(p != NULL);
    if (p) {
        char path[600];
        snprintf(path, sizeof path, "%s", p + strlen("full log and numbered source: "));
        char *close = strrchr(path, ')');
        if (close) *close = '\0';
        FILE *f = fopen(path, "r");
        CHECK_MSG(f != NULL, "report %s missing", path);
        if (f) fclose(f);
        unlink(path);
    }
    remove_cache();
}

int main(void) {
    RUN(test_unknown_program);
    RUN(test_arch_clamp);
    RUN(test_pick_arch);
    RUN(test_compile_ptx);
    RUN(test_adam_has_no_fma);
    RUN(test_disk_cache);
    RUN(test_cache_off);
    RUN(test_compile_error_report);
    RUN(test_compile_all_sm80);
    RUN(test_compile_all_sm90);
    return test_finish();
}
