/* test_safetensors.c: safetensors reader/writer and atomic file writing.
 *
 * Golden files come from scripts/gen_safetensors_golden.py (written by the official Python
 * library); expected values are read from the plain-text golden_expected.txt written by the same
 * script, never computed by the code under test.  Malformed files are built byte by byte here.
 * AQA_ST_EXPORT=FILE makes test_golden_rewrite_identical also leave its C-written copy at FILE,
 * for `python3 scripts/gen_safetensors_golden.py --check FILE`. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/atomic_file.h"
#include "io/safetensors.h"
#include "tests/testlib.h"

/* ---------------------------------------------------------------------------------------------
 * Helpers */

static char tmp_root[512]; /* per-run scratch directory, removed at exit */

static const char *tmp_path(const char *name) {
    static char buf[8][1024];
    static int slot;
    char *b = buf[slot++ % 8];
    snprintf(b, 1024, "%s/%s", tmp_root, name);
    return b;
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void rm_rf(const char *p) { nftw(p, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int write_bytes(const char *path, const void *buf, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t w = n ? fwrite(buf, 1, n, fp) : 0;
    return fclose(fp) == 0 && w == n ? 0 : -1;
}

/* Reads a whole file; *n gets its size. NULL when it cannot be read. */
static unsigned char *read_all(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)sz + 1);
    if (b && fread(b, 1, (size_t)sz, fp) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(fp);
    *n = (size_t)sz;
    return b;
}

static int file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Number of directory entries (besides . and ..) whose name starts with prefix. */
static int count_entries(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    closedir(d);
    return n;
}

/* A file = 8-byte length + header + data bytes. */
static void write_st(const char *path, const char *header, const void *data, size_t ndata) {
    size_t nh = strlen(header);
    unsigned char *b = malloc(8 + nh + ndata + 1);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)nh >> (8 * k));
    memcpy(b + 8, header, nh);
    if (ndata) memcpy(b + 8 + nh, data, ndata);
    write_bytes(path, b, 8 + nh + ndata);
    free(b);
}

/* ---------------------------------------------------------------------------------------------
 * Expected values from golden_expected.txt */

typedef struct {
    char name[128];
    char dtype[16];
    int ndim;
    int64_t shape[8];
    int n;          /* number of values */
    char **values;  /* n decimal strings */
} expected_tensor;

typedef struct {
    expected_tensor t[64];
    int nt;
    char meta_key[32][64];
    char meta_val[32][256];
    int nm;
} expected_file;

static void free_expected(expected_file *e) {
    for (int i = 0; i < e->nt; i++) {
        for (int k = 0; k < e->t[i].n; k++) free(e->t[i].values[k]);
        free(e->t[i].values);
    }
    free(e);
}

static expected_file *load_expected(const char *path) {
    FILE *fp = fopen(path, "r");
    if (!fp) return NULL;
    expected_file *e = calloc(1, sizeof *e);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, fp)) > 0) {
        if (line[len - 1] == '\n') line[--len] = '\0';
        if (strncmp(line, "meta ", 5) == 0 && e->nm < 32) {
            char *key = line + 5, *sp = strchr(key, ' ');
            if (!sp) continue;
            *sp = '\0';
            snprintf(e->meta_key[e->nm], 64, "%s", key);
            snprintf(e->meta_val[e->nm], 256, "%s", sp + 1);
            e->nm++;
        } else if (strncmp(line, "tensor ", 7) == 0 && e->nt < 64) {
            expected_tensor *t = &e->t[e->nt++];
            char *save = NULL, *tok = strtok_r(line + 7, " ", &save);
            snprintf(t->name, sizeof t->name, "%s", tok);
            snprintf(t->dtype, sizeof t->dtype, "%s", strtok_r(NULL, " ", &save));
            t->ndim = atoi(strtok_r(NULL, " ", &save));
            for (int k = 0; k < t->ndim; k++) t->shape[k] = strtoll(strtok_r(NULL, " ", &save), NULL, 10);
            strtok_r(NULL, " ", &save); /* ":" */
            int capv = 16;
            t->values = malloc((size_t)capv * sizeof *t->values);
            while ((tok = strtok_r(NULL, " ", &save))) {
                if (t->n == capv) t->values = realloc(t->values, (size_t)(capv *= 2) * sizeof *t->values);
                t->values[t->n++] = strdup(tok);
            }
        }
    }
    free(line);
    fclose(fp);
    return e;
}

/* Exact comparison: equal bit-for-bit meaningfully (NaN == NaN, -0 != +0). */
static int same_double(double a, double b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return a == b && signbit(a) == signbit(b);
}

static int is_float_dtype(const char *d) {
    return !strcmp(d, "F32") || !strcmp(d, "F64") || !strcmp(d, "F16") || !strcmp(d, "BF16");
}

/* Checks every tensor and metadata entry of an opened golden file against the expected text. */
static void check_against_expected(const aqa_st_file *f, const expected_file *e) {
    CHECK_EQ_INT(aqa_st_count(f), e->nt);
    for (int i = 0; i < e->nt; i++) {
        const expected_tensor *x = &e->t[i];
        int idx = aqa_st_find(f, x->name);
        CHECK_MSG(idx >= 0, "tensor %s not found", x->name);
        if (idx < 0) continue;
        const aqa_st_tensor *t = aqa_st_get(f, idx);
        CHECK_STR(t->name, x->name);
        CHECK_STR(aqa_st_dtype_name(t->dtype), x->dtype);
        CHECK_EQ_INT(t->ndim, x->ndim);
        int64_t numel = 1;
        for (int k = 0; k < x->ndim && k < t->ndim; k++) {
            CHECK_EQ_INT(t->shape[k], x->shape[k]);
            numel *= x->shape[k];
        }
        CHECK_EQ_INT(t->numel, numel);
        CHECK_EQ_INT(t->numel, x->n);
        CHECK_EQ_INT(t->nbytes, (size_t)numel * aqa_st_dtype_size(t->dtype));
        if (t->numel != x->n) continue;
        if (is_float_dtype(x->dtype)) {
            double *d = malloc((size_t)x->n * sizeof *d + 8);
            float *fl = malloc((size_t)x->n * sizeof *fl + 4);
            CHECK(aqa_st_read_f64(f, idx, d) == AQA_OK);
            CHECK(aqa_st_read_f32(f, idx, fl) == AQA_OK);
            for (int k = 0; k < x->n; k++) {
                double want = strtod(x->values[k], NULL);
                CHECK_MSG(same_double(d[k], want), "%s[%d]: f64 read %.17g, expected %s", x->name,
                          k, d[k], x->values[k]);
                /* For F16/BF16/F32 the expected value is an exact f32; for F64 the f32 reader
                 * must round like a C cast. */
                CHECK_MSG(same_double((double)fl[k], (double)(float)want),
                          "%s[%d]: f32 read %.9g, expected %s", x->name, k, (double)fl[k],
                          x->values[k]);
            }
            int64_t dummy;
            CHECK(aqa_st_read_i64(f, idx, x->n ? NULL : &dummy) == AQA_EINVAL);
            free(d);
            free(fl);
        } else {
            int64_t *v = malloc((size_t)x->n * sizeof *v + 8);
            CHECK(aqa_st_read_i64(f, idx, v) == AQA_OK);
            for (int k = 0; k < x->n; k++) {
                long long want = strtoll(x->values[k], NULL, 10);
                CHECK_MSG(v[k] == want, "%s[%d]: read %lld, expected %s", x->name, k,
                          (long long)v[k], x->values[k]);
            }
            float fdummy[1];
            aqa_clear_error();
            CHECK(aqa_st_read_f32(f, idx, fdummy) == AQA_EINVAL);
            CHECK(strstr(aqa_last_error(), x->name) != NULL);
            free(v);
        }
    }
    CHECK_EQ_INT(aqa_st_metadata_count(f), e->nm);
    for (int i = 0; i < e->nm; i++) CHECK_STR(aqa_st_metadata(f, e->meta_key[i]), e->meta_val[i]);
}

/* ---------------------------------------------------------------------------------------------
 * Tests: golden files */

static void test_golden_values(void) {
    expected_file *e = load_expected(test_data_path("safetensors/golden_expected.txt"));
    CHECK_MSG(e != NULL, "cannot read golden_expected.txt");
    if (!e) return;
    CHECK(e->nt >= 15 && e->nm >= 3); /* the expected file was parsed */
    aqa_st_file *f = NULL;
    aqa_status st = aqa_st_open(test_data_path("safetensors/golden.safetensors"), &f);
    CHECK_MSG(st == AQA_OK, "open: %s", aqa_last_error());
    if (f) {
        check_against_expected(f, e);
        /* The official writer aligns every tensor to its itemsize within the mapping. */
        for (int i = 0; i < aqa_st_count(f); i++) {
            const aqa_st_tensor *t = aqa_st_get(f, i);
            CHECK_EQ_INT((uintptr_t)t->data % aqa_st_dtype_size(t->dtype), 0);
        }
    }
    aqa_st_close(f);
    free_expected(e);
}

/* Same checks through the read() fallback instead of mmap. */
static void test_golden_values_without_mmap(void) {
    expected_file *e = load_expected(test_data_path("safetensors/golden_expected.txt"));
    CHECK(e != NULL);
    if (!e) return;
    setenv("AQA_ST_NO_MMAP", "1", 1);
    aqa_st_file *f = NULL;
    CHECK_MSG(aqa_st_open(test_data_path("safetensors/golden.safetensors"), &f) == AQA_OK, "%s",
              aqa_last_error());
    unsetenv("AQA_ST_NO_MMAP");
    if (f) check_against_expected(f, e);
    aqa_st_close(f);
    free_expected(e);
}

/* Re-serialising the official file with aqa's writer gives the same bytes: same tensor order
 * (dtype alignment, then name), same JSON formatting and escaping, same padding. */
static void test_golden_rewrite_identical(void) {
    const char *golden = test_data_path("safetensors/golden.safetensors");
    char golden_path[4096];
    snprintf(golden_path, sizeof golden_path, "%s", golden);
    aqa_st_file *f = NULL;
    CHECK(aqa_st_open(golden_path, &f) == AQA_OK);
    if (!f) return;
    aqa_st_writer *w = aqa_st_writer_new();
    /* Added in reverse header order, to show the writer sorts by itself. */
    for (int i = aqa_st_count(f) - 1; i >= 0; i--) {
        const aqa_st_tensor *t = aqa_st_get(f, i);
        CHECK(aqa_st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) == AQA_OK);
    }
    for (int i = 0; i < aqa_st_metadata_count(f); i++) {
        const char *k, *v;
        CHECK(aqa_st_metadata_at(f, i, &k, &v) == AQA_OK);
        CHECK(aqa_st_writer_set_metadata(w, k, v) == AQA_OK);
    }
    const char *out = tmp_path("rewrite.safetensors");
    CHECK_MSG(aqa_st_writer_save(w, out) == AQA_OK, "%s", aqa_last_error());
    const char *export = getenv("AQA_ST_EXPORT");
    if (export) CHECK_MSG(aqa_st_writer_save(w, export) == AQA_OK, "%s", aqa_last_error());
    aqa_st_writer_free(w);
    aqa_st_close(f);
    size_t na = 0, nb = 0;
    unsigned char *a = read_all(golden_path, &na), *b = read_all(out, &nb);
    CHECK(a && b);
    CHECK_EQ_INT(nb, na);
    if (a && b && na == nb) CHECK_MSG(memcmp(a, b, na) == 0, "bytes differ from the official writer's");
    free(a);
    free(b);
}

/* ---------------------------------------------------------------------------------------------
 * Tests: conversions */

static void test_f16_exhaustive(void) {
#ifdef __FLT16_MAX__
    /* GCC's _Float16 (hardware or soft-float) is the independent reference here. */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        _Float16 x;
        uint16_t bits = (uint16_t)h;
        memcpy(&x, &bits, 2);
        float want = (float)x, got = aqa_st_f16_to_f32(bits);
        uint32_t wb, gb;
        memcpy(&wb, &want, 4);
        memcpy(&gb, &got, 4);
        /* NaNs: both NaN with the same sign and payload (quietened by the hardware path). */
        int ok = isnan(want) ? (isnan(got) && ((wb ^ gb) & ~0x00400000u) == 0) : wb == gb;
        if (!ok && bad++ < 5)
            CHECK_MSG(0, "f16 0x%04x: got %a (0x%08x), want %a (0x%08x)", h, (double)got, gb,
                      (double)want, wb);
    }
    CHECK_EQ_INT(bad, 0);
#else
    SKIP("compiler has no _Float16 to compare with");
#endif
}

static void test_bf16_values(void) {
    /* Values whose bf16 patterns are known by construction (top 16 bits of the f32). */
    CHECK(aqa_st_bf16_to_f32(0x3f80) == 1.0f);
    CHECK(aqa_st_bf16_to_f32(0xc020) == -2.5f);
    CHECK(isinf(aqa_st_bf16_to_f32(0x7f80)) && aqa_st_bf16_to_f32(0x7f80) > 0);
    CHECK(isnan(aqa_st_bf16_to_f32(0x7fc0)));
    CHECK(aqa_st_bf16_to_f32(0x0001) == 0x1p-133f); /* smallest subnormal */
    CHECK(signbit(aqa_st_bf16_to_f32(0x8000)) && aqa_st_bf16_to_f32(0x8000) == 0.0f);
}

/* ---------------------------------------------------------------------------------------------
 * Tests: writer round trip */

static void test_roundtrip_all_dtypes(void) {
    float f32[6] = {1.5f, -2.0f, 0.0f, 1e-40f, INFINITY, -3.25f};
    double f64[3] = {1.0 / 3.0, -1e300, 5e-324};
    int64_t i64[4] = {INT64_MIN, -1, 0, INT64_MAX};
    int32_t i32[2] = {INT32_MIN, 123456};
    uint16_t f16[3] = {0x3c00, 0x0001, 0xfc00};  /* 1, smallest subnormal, -inf */
    uint16_t bf16[2] = {0x3f80, 0xc020};         /* 1, -2.5 */
    uint8_t u8[3] = {0, 128, 255};
    uint8_t b8[2] = {1, 0};
    float scalar = 7.25f;
    int64_t s_f32[2] = {2, 3}, s_f64[1] = {3}, s_i64[2] = {2, 2}, s_i32[1] = {2}, s_f16[1] = {3},
            s_bf16[1] = {2}, s_u8[1] = {3}, s_b8[1] = {2}, s_empty[3] = {4, 0, 2};
    aqa_st_writer *w = aqa_st_writer_new();
    CHECK(aqa_st_writer_add(w, "z.f32", AQA_ST_F32, 2, s_f32, f32) == AQA_OK);
    CHECK(aqa_st_writer_add(w, "a.f64", AQA_ST_F64, 1, s_f64, f64) == AQA_OK);
    CHECK(aqa_st_writer_add(w, "i64", AQA_ST_I64, 2, s_i64, i64) == AQA_OK);
    CHECK(aqa_st_writer_add(w, "i32", AQA_ST_I32, 1, s_i32, i32) == AQA_OK);
    CHECK(aqa_st_writer_add(w, "f16", AQA_ST_F16, 1, s_f16, f16) == AQA_OK);
    CHECK(aqa_st_writer_add(w, "bf16", AQA_ST_BF16, 1, s_bf16, bf16) == AQA_OK);
    CHECK(aqa_st_writer_add(w, "u8", AQA_ST_U8, 1, s_u8, u8) == AQA_OK);
    CHECK(aqa_st_writer_add(w, "bool", AQA_ST_BOOL, 1, s_b8, b8) == AQA_OK);
    CHECK(aqa_st_writer_add_copy(w, "scalar", AQA_ST_F32, 0, NULL, &scalar) == AQA_OK);
    CHECK(aqa_st_writer_add(w, "empty", AQA_ST_F32, 3, s_empty, NULL) == AQA_OK);
    CHECK(aqa_st_writer_add(w, "weird \"name\"\\\n\x01 \xc3\xa9", AQA_ST_U8, 1, s_u8, u8) == AQA_OK);
    CHECK(aqa_st_writer_set_metadata(w, "step", "10") == AQA_OK);
    CHECK(aqa_st_writer_set_metadata(w, "config", "{\"lr\": 0.001}") == AQA_OK);
    CHECK(aqa_st_writer_set_metadata(w, "step", "11") == AQA_OK); /* replaces */
    scalar = -1.0f; /* the _copy variant must have taken a copy already */
    const char *path = tmp_path("roundtrip.safetensors");
    CHECK_MSG(aqa_st_writer_save(w, path) == AQA_OK, "%s", aqa_last_error());
    aqa_st_writer_free(w);

    size_t n = 0;
    unsigned char *raw = read_all(path, &n);
    CHECK(raw != NULL && n >= 8);
    uint64_t hl = 0;
    for (int k = 7; raw && k >= 0; k--) hl = (hl << 8) | raw[k];
    CHECK_EQ_INT(hl % 8, 0);
    free(raw);

    aqa_st_file *f = NULL;
    CHECK_MSG(aqa_st_open(path, &f) == AQA_OK, "%s", aqa_last_error());
    if (!f) return;
    CHECK_EQ_INT(aqa_st_count(f), 11);
    CHECK_STR(aqa_st_metadata(f, "step"), "11");
    CHECK_STR(aqa_st_metadata(f, "config"), "{\"lr\": 0.001}");
    CHECK(aqa_st_metadata(f, "absent") == NULL);
    CHECK_EQ_INT(aqa_st_metadata_count(f), 2);

    float gf[6];
    double gd[3];
    int64_t gi[4];
    CHECK(aqa_st_read_f32(f, aqa_st_find(f, "z.f32"), gf) == AQA_OK);
    CHECK(memcmp(gf, f32, sizeof f32) == 0);
    CHECK(aqa_st_read_f64(f, aqa_st_find(f, "a.f64"), gd) == AQA_OK);
    CHECK(memcmp(gd, f64, sizeof f64) == 0);
    CHECK(aqa_st_read_i64(f, aqa_st_find(f, "i64"), gi) == AQA_OK);
    CHECK(memcmp(gi, i64, sizeof i64) == 0);
    CHECK(aqa_st_read_i64(f, aqa_st_find(f, "i32"), gi) == AQA_OK);
    CHECK(gi[0] == INT32_MIN && gi[1] == 123456);
    CHECK(aqa_st_read_f32(f, aqa_st_find(f, "f16"), gf) == AQA_OK);
    CHECK(gf[0] == 1.0f && gf[1] == 0x1p-24f && isinf(gf[2]) && gf[2] < 0);
    CHECK(aqa_st_read_f32(f, aqa_st_find(f, "bf16"), gf) == AQA_OK);
    CHECK(gf[0] == 1.0f && gf[1] == -2.5f);
    CHECK(aqa_st_read_i64(f, aqa_st_find(f, "u8"), gi) == AQA_OK);
    CHECK(gi[0] == 0 && gi[1] == 128 && gi[2] == 255);
    CHECK(aqa_st_read_i64(f, aqa_st_find(f, "bool"), gi) == AQA_OK);
    CHECK(gi[0] == 1 && gi[1] == 0);
    int is = aqa_st_find(f, "scalar");
    CHECK(is >= 0);
    if (is >= 0) {
        const aqa_st_tensor *t = aqa_st_get(f, is);
        CHECK_EQ_INT(t->ndim, 0);
        CHECK_EQ_INT(t->numel, 1);
        CHECK(aqa_st_read_f32(f, is, gf) == AQA_OK);
        CHECK(gf[0] == 7.25f);
    }
    int ie = aqa_st_find(f, "empty");
    CHECK(ie >= 0);
    if (ie >= 0) {
        const aqa_st_tensor *t = aqa_st_get(f, ie);
        CHECK_EQ_INT(t->ndim, 3);
        CHECK(t->shape[0] == 4 && t->shape[1] == 0 && t->shape[2] == 2);
        CHECK_EQ_INT(t->numel, 0);
        CHECK_EQ_INT(t->nbytes, 0);
        CHECK(aqa_st_read_f32(f, ie, NULL) == AQA_OK);
    }
    int iw = aqa_st_find(f, "weird \"name\"\\\n\x01 \xc3\xa9");
    CHECK(iw >= 0);
    if (iw >= 0) {
        uint8_t g8[3];
        CHECK(aqa_st_read_raw(f, iw, g8, 3) == AQA_OK);
        CHECK(memcmp(g8, u8, 3) == 0);
        CHECK(aqa_st_read_raw(f, iw, g8, 2) == AQA_EINVAL);
    }
    /* Layout: decreasing alignment then name, contiguous, each aligned to its itemsize. */
    uint64_t prev_end = 0;
    size_t prev_size = 8;
    const char *order[] = {"i64", "a.f64", "empty", "scalar", "z.f32", "i32", "bf16", "f16"};
    for (int k = 0; k < 8; k++) {
        int i = aqa_st_find(f, order[k]);
        if (i < 0) continue;
        const aqa_st_tensor *t = aqa_st_get(f, i);
        CHECK_MSG(t->offset == prev_end, "%s at %llu, expected %llu", order[k],
                  (unsigned long long)t->offset, (unsigned long long)prev_end);
        CHECK(aqa_st_dtype_size(t->dtype) <= prev_size);
        CHECK_EQ_INT((uintptr_t)t->data % aqa_st_dtype_size(t->dtype), 0);
        prev_end = t->offset + t->nbytes;
        prev_size = aqa_st_dtype_size(t->dtype);
    }
    aqa_st_close(f);
}

static void test_empty_file_roundtrip(void) {
    aqa_st_writer *w = aqa_st_writer_new();
    const char *path = tmp_path("empty.safetensors");
    CHECK(aqa_st_writer_save(w, path) == AQA_OK);
    aqa_st_writer_free(w);
    size_t n = 0;
    unsigned char *b = read_all(path, &n);
    /* As the reference writer: length 8, "{}" and six spaces. */
    static const unsigned char want[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
    CHECK(b && n == 16 && memcmp(b, want, 16) == 0);
    free(b);
    aqa_st_file *f = NULL;
    CHECK(aqa_st_open(path, &f) == AQA_OK);
    if (f) {
        CHECK_EQ_INT(aqa_st_count(f), 0);
        CHECK_EQ_INT(aqa_st_find(f, "x"), -1);
        CHECK(aqa_st_name(f, 0) == NULL);
        CHECK(aqa_st_get(f, 0) == NULL);
        CHECK(aqa_st_metadata(f, "x") == NULL);
    }
    aqa_st_close(f);
}

/* Files from writers that do not pad the header: data start at an odd address. */
static void test_unaligned_data(void) {
    unsigned char data[4 + 8 + 2];
    float fv = -1.75f;
    double dv = 1.0 / 7.0;
    uint16_t hv = 0x3555; /* f16 0.333251953125 */
    memcpy(data, &fv, 4);
    memcpy(data + 4, &dv, 8);
    memcpy(data + 12, &hv, 2);
    char h[512];
    snprintf(h, sizeof h, "%s",
             "{\"f\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
             "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[4,12]},"
             "\"h\":{\"dtype\":\"F16\",\"shape\":[1,1],\"data_offsets\":[12,14]}}");
    if (strlen(h) % 2 == 0) strcat(h, " "); /* odd header length => odd data address */
    const char *path = tmp_path("unaligned.safetensors");
    write_st(path, h, data, sizeof data);
    aqa_st_file *f = NULL;
    CHECK_MSG(aqa_st_open(path, &f) == AQA_OK, "%s", aqa_last_error());
    if (!f) return;
    float g;
    double gd;
    CHECK(aqa_st_read_f32(f, aqa_st_find(f, "f"), &g) == AQA_OK && g == -1.75f);
    CHECK(aqa_st_read_f64(f, aqa_st_find(f, "d"), &gd) == AQA_OK && gd == 1.0 / 7.0);
    CHECK(aqa_st_read_f32(f, aqa_st_find(f, "d"), &g) == AQA_OK && g == (float)(1.0 / 7.0));
    CHECK(aqa_st_read_f64(f, aqa_st_find(f, "h"), &gd) == AQA_OK && gd == 0.333251953125);
    CHECK((uintptr_t)aqa_st_get(f, aqa_st_find(f, "d"))->data % 8 != 0); /* really unaligned */
    /* Header order is kept for indices. */
    CHECK_STR(aqa_st_name(f, 0), "f");
    CHECK_STR(aqa_st_name(f, 2), "h");
    aqa_st_close(f);
}

/* ---------------------------------------------------------------------------------------------
 * Tests: malformed files */

typedef struct {
    const char *label;    /* file name in the scratch dir */
    const char *header;   /* JSON header, or NULL when raw is used */
    size_t ndata;         /* bytes of zero data after the header */
    aqa_status status;    /* expected failure */
    const char *tensor;   /* name the message must contain, or NULL */
    const char *phrase;   /* another substring the message must contain, or NULL */
} bad_case;

static void expect_open_error(const char *path, aqa_status want, const char *tensor,
                              const char *phrase, const char *label) {
    aqa_st_file *f = (aqa_st_file *)0x1;
    aqa_clear_error();
    aqa_status st = aqa_st_open(path, &f);
    CHECK_MSG(st == want, "%s: status %s, expected %s (%s)", label, aqa_status_name(st),
              aqa_status_name(want), aqa_last_error());
    CHECK_MSG(f == NULL, "%s: *out not NULL on failure", label);
    const char *msg = aqa_last_error();
    CHECK_MSG(strstr(msg, path) != NULL, "%s: message does not name the file: %s", label, msg);
    if (tensor)
        CHECK_MSG(strstr(msg, tensor) != NULL, "%s: message does not name tensor %s: %s", label,
                  tensor, msg);
    if (phrase)
        CHECK_MSG(strstr(msg, phrase) != NULL, "%s: message lacks \"%s\": %s", label, phrase, msg);
    if (getenv("AQA_TEST_VERBOSE")) printf("    %s: %s\n", label, msg);
    if (st == AQA_OK) aqa_st_close(f);
}

static void test_malformed_headers(void) {
    static const bad_case cases[] = {
        {"invalid_json", "{\"a\":{\"dtype\":\"F32\",", 0, AQA_EFORMAT, NULL, "JSON"},
        {"not_object", "[1,2,3]", 0, AQA_EFORMAT, NULL, "object"},
        {"trailing_garbage", "{}  x", 0, AQA_EFORMAT, NULL, "garbage"},
        {"entry_not_object", "{\"w\":5}", 0, AQA_EFORMAT, "w", NULL},
        {"out_of_bounds", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8,
         AQA_EFORMAT, "w", "out of bounds"},
        {"overlap",
         "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, AQA_EFORMAT, "b", "overlap"},
        {"gap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, AQA_EFORMAT,
         "a", "gap"},
        {"uncovered_tail", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8,
         AQA_EFORMAT, NULL, "cover"},
        {"size_mismatch", "{\"m\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
         AQA_EFORMAT, "m", "need 12"},
        {"end_before_begin", "{\"m\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8,
         AQA_EFORMAT, "m", NULL},
        {"unknown_dtype", "{\"u\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         AQA_EFORMAT, "u", "F33"},
        {"subbyte_dtype", "{\"q\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1,
         AQA_EUNSUPPORTED, "q", "F4"},
        {"negative_shape", "{\"n\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4,
         AQA_EFORMAT, "n", "shape"},
        {"fractional_shape", "{\"n\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}",
         4, AQA_EFORMAT, "n", "shape"},
        {"shape_overflow",
         "{\"o\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8,
         AQA_EFORMAT, "o", "overflow"},
        {"missing_offsets", "{\"k\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, AQA_EFORMAT, "k",
         "data_offsets"},
        {"negative_offset", "{\"k\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4,
         AQA_EFORMAT, "k", "data_offsets"},
        {"missing_dtype", "{\"k\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, AQA_EFORMAT, "k",
         "dtype"},
        {"duplicate_name",
         "{\"d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, AQA_EFORMAT, "d", "twice"},
        {"metadata_not_string", "{\"__metadata__\":{\"step\":5}}", 0, AQA_EFORMAT, "step", NULL},
        {"metadata_not_object", "{\"__metadata__\":[\"x\"]}", 0, AQA_EFORMAT, "__metadata__", NULL},
        {"bad_utf8", "{\"\xff\":{}}", 0, AQA_EFORMAT, NULL, "UTF-8"},
        {"duplicate_metadata", "{\"__metadata__\":{\"step\":\"1\",\"step\":\"2\"}}", 0,
         AQA_EFORMAT, "step", "twice"},
    };
    int nbad = (int)(sizeof cases / sizeof *cases);
    for (int i = 0; i < nbad; i++) {
        char name[128];
        snprintf(name, sizeof name, "bad_%s.safetensors", cases[i].label);
        const char *path = tmp_path(name);
        void *zeros = calloc(1, cases[i].ndata + 1);
        write_st(path, cases[i].header, zeros, cases[i].ndata);
        free(zeros);
        expect_open_error(path, cases[i].status, cases[i].tensor, cases[i].phrase, cases[i].label);
    }
}

static void test_malformed_lengths(void) {
    /* Shorter than the length field. */
    const char *p0 = tmp_path("bad_zero_bytes.safetensors");
    write_bytes(p0, "", 0);
    expect_open_error(p0, AQA_EFORMAT, NULL, "truncated", "zero bytes");
    const char *p5 = tmp_path("bad_five_bytes.safetensors");
    write_bytes(p5, "\x02\0\0\0\0", 5);
    expect_open_error(p5, AQA_EFORMAT, NULL, "truncated", "five bytes");

    /* Header length larger than the file. */
    unsigned char b[8 + 2] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    const char *pl = tmp_path("bad_header_past_end.safetensors");
    write_bytes(pl, b, sizeof b);
    expect_open_error(pl, AQA_EFORMAT, NULL, "header length 100", "header past end");

    /* Huge lengths: above the 100 MB limit, and one that would overflow 8 + N. */
    unsigned char h1[10] = {0, 0, 0, 0x10, 0, 0, 0, 0, '{', '}'}; /* 256 MiB */
    const char *ph1 = tmp_path("bad_header_huge.safetensors");
    write_bytes(ph1, h1, sizeof h1);
    expect_open_error(ph1, AQA_EFORMAT, NULL, "limit", "huge header");
    unsigned char h2[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    const char *ph2 = tmp_path("bad_header_u64max.safetensors");
    write_bytes(ph2, h2, sizeof h2);
    expect_open_error(ph2, AQA_EFORMAT, NULL, "limit", "u64 max header");

    /* Missing file. */
    const char *pm = tmp_path("does_not_exist.safetensors");
    expect_open_error(pm, AQA_EIO, NULL, NULL, "missing file");
}

/* The golden file cut short at several points: every prefix must fail cleanly. */
static void test_truncated_golden(void) {
    size_t n = 0;
    unsigned char *b = read_all(test_data_path("safetensors/golden.safetensors"), &n);
    CHECK(b != NULL && n > 100);
    if (!b) return;
    size_t cuts[] = {0, 7, 8, 9, 20, 100, n / 2, n - 4, n - 1};
    for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
        char name[64];
        snprintf(name, sizeof name, "truncated_%zu.safetensors", cuts[k]);
        const char *path = tmp_path(name);
        write_bytes(path, b, cuts[k]);
        expect_open_error(path, AQA_EFORMAT, NULL, NULL, name);
    }
    /* Cutting into the last tensor's data names that tensor. */
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = (hl << 8) | b[k];
    const char *path = tmp_path("truncated_last.safetensors");
    write_bytes(path, b, n - 1);
    aqa_st_file *f = NULL;
    CHECK(aqa_st_open(test_data_path("safetensors/golden.safetensors"), &f) == AQA_OK);
    if (f) {
        const char *last = NULL;
        uint64_t best = 0;
        for (int i = 0; i < aqa_st_count(f); i++) {
            const aqa_st_tensor *t = aqa_st_get(f, i);
            if (t->nbytes && t->offset + t->nbytes >= best) {
                best = t->offset + t->nbytes;
                last = t->name;
            }
        }
        CHECK(best == n - 8 - hl);
        char lastname[128];
        snprintf(lastname, sizeof lastname, "%s", last ? last : "?");
        aqa_st_close(f);
        expect_open_error(path, AQA_EFORMAT, lastname, "out of bounds", "truncated last tensor");
    }
    free(b);
}

/* ---------------------------------------------------------------------------------------------
 * Tests: API misuse */

static void test_writer_errors(void) {
    aqa_st_writer *w = aqa_st_writer_new();
    float v[2] = {1, 2};
    int64_t s2[1] = {2}, sneg[1] = {-2};
    CHECK(aqa_st_writer_add(w, "x", AQA_ST_F32, 1, s2, v) == AQA_OK);
    aqa_clear_error();
    CHECK(aqa_st_writer_add(w, "x", AQA_ST_F32, 1, s2, v) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "'x'") && strstr(aqa_last_error(), "twice"));
    CHECK(aqa_st_writer_add(w, "neg", AQA_ST_F32, 1, sneg, v) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "neg") != NULL);
    CHECK(aqa_st_writer_add(w, "nodata", AQA_ST_F32, 1, s2, NULL) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "nodata") != NULL);
    CHECK(aqa_st_writer_add(w, "__metadata__", AQA_ST_F32, 1, s2, v) == AQA_EINVAL);
    CHECK(aqa_st_writer_add(w, "", AQA_ST_F32, 1, s2, v) == AQA_EINVAL);
    CHECK(aqa_st_writer_add(w, "baddtype", (aqa_st_dtype)99, 1, s2, v) == AQA_EINVAL);
    CHECK(aqa_st_writer_add(w, "bad\xff", AQA_ST_F32, 1, s2, v) == AQA_EINVAL);
    CHECK(aqa_st_writer_set_metadata(w, "k", "\xc3") == AQA_EINVAL);
    /* The failed calls left the writer usable: it saves just "x". */
    const char *path = tmp_path("after_errors.safetensors");
    CHECK(aqa_st_writer_save(w, path) == AQA_OK);
    aqa_st_writer_free(w);
    aqa_st_file *f = NULL;
    CHECK(aqa_st_open(path, &f) == AQA_OK);
    if (f) {
        CHECK_EQ_INT(aqa_st_count(f), 1);
        CHECK_STR(aqa_st_name(f, 0), "x");
    }
    aqa_st_close(f);
}

static void test_reader_errors(void) {
    uint64_t big[2] = {5, (uint64_t)INT64_MAX + 1};
    int64_t s[1] = {2};
    aqa_st_writer *w = aqa_st_writer_new();
    CHECK(aqa_st_writer_add(w, "u64", AQA_ST_U64, 1, s, big) == AQA_OK);
    const char *path = tmp_path("u64.safetensors");
    CHECK(aqa_st_writer_save(w, path) == AQA_OK);
    aqa_st_writer_free(w);
    aqa_st_file *f = NULL;
    CHECK(aqa_st_open(path, &f) == AQA_OK);
    if (!f) return;
    int64_t out[2];
    aqa_clear_error();
    CHECK(aqa_st_read_i64(f, 0, out) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "u64") && strstr(aqa_last_error(), path));
    double d[2];
    CHECK(aqa_st_read_f64(f, 0, d) == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "U64") != NULL);
    CHECK(aqa_st_read_f32(f, 1, (float *)d) == AQA_EINVAL);
    CHECK(aqa_st_read_f32(f, -1, (float *)d) == AQA_EINVAL);
    CHECK(aqa_st_get(f, 5) == NULL);
    CHECK(aqa_st_metadata_at(f, 0, NULL, NULL) == AQA_EINVAL);
    CHECK_STR(aqa_st_path(f), path);
    aqa_st_close(f);
    aqa_st_close(NULL);
    aqa_st_writer_free(NULL);
    CHECK(aqa_st_dtype_name(AQA_ST_DTYPE_COUNT) == NULL);
    aqa_st_dtype dt;
    CHECK(aqa_st_dtype_from_name("BF16", &dt) == 0 && dt == AQA_ST_BF16);
    CHECK(aqa_st_dtype_from_name("bf16", &dt) == -1);
}

/* Deferred tensors: the producer runs during save; its failure aborts the save. */
typedef struct {
    int calls;   /* times called */
    int fail;    /* return an error instead of data */
} fill_state;

static aqa_status fill_iota(void *ctx, void *dst, size_t nbytes) {
    fill_state *s = ctx;
    s->calls++;
    if (s->fail) return aqa_fail(AQA_EDEVICE, "device copy failed");
    float *f = dst;
    for (size_t k = 0; k < nbytes / sizeof(float); k++) f[k] = (float)k + 0.5f;
    return AQA_OK;
}

static void test_deferred_tensors(void) {
    const char *path = tmp_path("deferred.safetensors");
    int64_t shape[2] = {3, 2};
    double d = 2.0;
    fill_state ok = {0, 0}, bad = {0, 1};
    aqa_st_writer *w = aqa_st_writer_new();
    CHECK(aqa_st_writer_add_deferred(w, "lazy", AQA_ST_F32, 2, shape, fill_iota, &ok) == AQA_OK);
    CHECK(aqa_st_writer_add(w, "eager", AQA_ST_F64, 0, NULL, &d) == AQA_OK);
    CHECK(aqa_st_writer_add_deferred(w, "nofill", AQA_ST_F32, 2, shape, NULL, NULL) == AQA_EINVAL);
    CHECK_MSG(aqa_st_writer_save(w, path) == AQA_OK, "%s", aqa_last_error());
    CHECK_EQ_INT(ok.calls, 1);
    aqa_st_file *f = NULL;
    CHECK(aqa_st_open(path, &f) == AQA_OK);
    if (f) {
        float v[6];
        int i = aqa_st_find(f, "lazy");
        CHECK(i >= 0 && aqa_st_read_f32(f, i, v) == AQA_OK);
        for (int k = 0; k < 6; k++) CHECK(v[k] == (float)k + 0.5f);
    }
    aqa_st_close(f);
    /* A failing producer: error names file and tensor, keeps its reason, old file intact. */
    CHECK(aqa_st_writer_add_deferred(w, "broken", AQA_ST_F32, 2, shape, fill_iota, &bad) == AQA_OK);
    aqa_clear_error();
    CHECK(aqa_st_writer_save(w, path) == AQA_EDEVICE);
    const char *msg = aqa_last_error();
    CHECK_MSG(strstr(msg, path) && strstr(msg, "broken") && strstr(msg, "device copy failed"),
              "message: %s", msg);
    aqa_st_writer_free(w);
    CHECK(aqa_st_open(path, &f) == AQA_OK);
    if (f) CHECK_EQ_INT(aqa_st_count(f), 2);
    aqa_st_close(f);
    CHECK_EQ_INT(count_entries(tmp_root, "deferred.safetensors"), 1); /* no temp left */
}

/* ---------------------------------------------------------------------------------------------
 * Tests: atomic writing */

static void test_atomic_missing_directory(void) {
    const char *dir = tmp_path("no_such_dir");
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    aqa_st_writer *w = aqa_st_writer_new();
    float v = 1;
    CHECK(aqa_st_writer_add(w, "v", AQA_ST_F32, 0, NULL, &v) == AQA_OK);
    aqa_clear_error();
    CHECK(aqa_st_writer_save(w, path) == AQA_EIO);
    CHECK_MSG(strstr(aqa_last_error(), path) != NULL, "message: %s", aqa_last_error());
    aqa_st_writer_free(w);
    CHECK(!file_exists(dir));
    CHECK(aqa_atomic_write_file(path, "x", 1) == AQA_EIO);
    CHECK(!file_exists(dir));
    /* Nothing named like the target or a temp appeared in the scratch root. */
    CHECK_EQ_INT(count_entries(tmp_root, "no_such_dir"), 0);
}

static void test_atomic_overwrite(void) {
    const char *path = tmp_path("atomic.txt");
    CHECK(aqa_atomic_write_file(path, "old content", 11) == AQA_OK);
    size_t n = 0;
    unsigned char *b;

    /* Commit: the old content stays visible until the rename. */
    aqa_atomic_file *af = NULL;
    CHECK(aqa_atomic_open(path, &af) == AQA_OK);
    if (!af) return;
    char tmpname[1024];
    snprintf(tmpname, sizeof tmpname, "%s", aqa_atomic_temp_path(af));
    char want_tmp[1024];
    snprintf(want_tmp, sizeof want_tmp, "%s.tmp.%ld", path, (long)getpid());
    CHECK_STR(tmpname, want_tmp);
    CHECK(aqa_atomic_write(af, "new ", 4) == AQA_OK);
    fputs("content!", aqa_atomic_stream(af));
    fflush(aqa_atomic_stream(af));
    CHECK(file_exists(tmpname));
    b = read_all(path, &n);
    CHECK(b && n == 11 && memcmp(b, "old content", 11) == 0);
    free(b);
    CHECK(aqa_atomic_commit(af) == AQA_OK);
    b = read_all(path, &n);
    CHECK(b && n == 12 && memcmp(b, "new content!", 12) == 0);
    free(b);
    CHECK(!file_exists(tmpname));

    /* Abort: the old file is untouched and the temp file is gone. */
    CHECK(aqa_atomic_open(path, &af) == AQA_OK);
    if (!af) return;
    CHECK(aqa_atomic_write(af, "garbage", 7) == AQA_OK);
    aqa_atomic_abort(af);
    b = read_all(path, &n);
    CHECK(b && n == 12 && memcmp(b, "new content!", 12) == 0);
    free(b);
    CHECK(!file_exists(tmpname));
    CHECK_EQ_INT(count_entries(tmp_root, "atomic.txt"), 1);
}

/* A failing rename (target is a non-empty directory) removes the temp file, keeps the target. */
static void test_atomic_rename_failure(void) {
    const char *dir = tmp_path("target_is_dir");
    mkdir(dir, 0755);
    char inner[1024];
    snprintf(inner, sizeof inner, "%s/keep", dir);
    write_bytes(inner, "k", 1);
    aqa_st_writer *w = aqa_st_writer_new();
    aqa_clear_error();
    CHECK(aqa_st_writer_save(w, dir) == AQA_EIO);
    CHECK_MSG(strstr(aqa_last_error(), dir) != NULL, "message: %s", aqa_last_error());
    aqa_st_writer_free(w);
    CHECK(file_exists(inner));
    CHECK_EQ_INT(count_entries(tmp_root, "target_is_dir"), 1); /* no target_is_dir.tmp.* */
}

/* Overwriting a file that is open for reading: the reader keeps the old mapping. */
static void test_overwrite_while_open(void) {
    const char *path = tmp_path("reopen.safetensors");
    float a = 1.0f, b = 2.0f;
    aqa_st_writer *w = aqa_st_writer_new();
    aqa_st_writer_add(w, "v", AQA_ST_F32, 0, NULL, &a);
    CHECK(aqa_st_writer_save(w, path) == AQA_OK);
    aqa_st_writer_free(w);
    aqa_st_file *f = NULL;
    CHECK(aqa_st_open(path, &f) == AQA_OK);
    w = aqa_st_writer_new();
    aqa_st_writer_add(w, "v", AQA_ST_F32, 0, NULL, &b);
    CHECK(aqa_st_writer_save(w, path) == AQA_OK);
    aqa_st_writer_free(w);
    float got = 0;
    if (f) CHECK(aqa_st_read_f32(f, 0, &got) == AQA_OK && got == 1.0f);
    aqa_st_close(f);
    CHECK(aqa_st_open(path, &f) == AQA_OK);
    if (f) CHECK(aqa_st_read_f32(f, 0, &got) == AQA_OK && got == 2.0f);
    aqa_st_close(f);
}

int main(void) {
    const char *t = getenv("TMPDIR");
    snprintf(tmp_root, sizeof tmp_root, "%s/aqa_test_st_XXXXXX", t && *t ? t : "/tmp");
    if (!mkdtemp(tmp_root)) {
        printf("FAIL setup: mkdtemp %s: %s\n", tmp_root, strerror(errno));
        return 1;
    }
    RUN(test_golden_values);
    RUN(test_golden_values_without_mmap);
    RUN(test_golden_rewrite_identical);
    RUN(test_f16_exhaustive);
    RUN(test_bf16_values);
    RUN(test_roundtrip_all_dtypes);
    RUN(test_empty_file_roundtrip);
    RUN(test_unaligned_data);
    RUN(test_malformed_headers);
    RUN(test_malformed_lengths);
    RUN(test_truncated_golden);
    RUN(test_writer_errors);
    RUN(test_reader_errors);
    RUN(test_deferred_tensors);
    RUN(test_atomic_missing_directory);
    RUN(test_atomic_overwrite);
    RUN(test_atomic_rename_failure);
    RUN(test_overwrite_while_open);
    rm_rf(tmp_root);
    return test_finish();
}
