/* test_pickle.c: the pickle subset reader (io/pickle.h).
 *
 * Cases: every supported type under protocols 0-5 (tests/data/annotations/case_p*.pkl, written by
 * scripts/gen_annotation_golden.py from the values spelled out below), Python 2 byte strings,
 * refused content (error names file, opcode, offset), the real MTL-AQA / JIGSAWS pickles when
 * ../shared/data is present, and a deterministic fuzz pass (truncations and byte flips must give
 * an error or a value, never a crash; run under ASan/valgrind to catch memory errors). */
#include "io/pickle.h"
#include "tests/testlib.h"

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long sz;
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(sz > 0 ? (size_t)sz : 1);
    if (buf && fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return buf;
}

static int file_exists(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f) fclose(f);
    return f != NULL;
}

static const aqa_pyobj *get(const aqa_pyobj *d, const char *k) { return aqa_pydict_get_str(d, k); }

static void check_array(const aqa_pyobj *a, aqa_npdtype dt, int ndim, const int64_t *shape, const double *vals,
                        int64_t n, const char *what) {
    int64_t i;
    size_t cnt = 0;
    double *x;
    CHECK_MSG(a && a->type == AQA_PY_NDARRAY, "%s is not an ndarray", what);
    if (!a || a->type != AQA_PY_NDARRAY) return;
    CHECK_MSG(a->u.arr.dtype == dt, "%s dtype %s", what, aqa_npdtype_name(a->u.arr.dtype));
    CHECK_EQ_INT(a->u.arr.ndim, ndim);
    for (i = 0; i < ndim && i < a->u.arr.ndim; i++) CHECK_EQ_INT(a->u.arr.shape[i], shape[i]);
    CHECK_EQ_INT(a->u.arr.size, n);
    x = aqa_pyobj_to_f64_array(a, what, &cnt);
    CHECK(x != NULL);
    if (!x) return;
    CHECK_EQ_INT(cnt, n);
    for (i = 0; i < n && i < (int64_t)cnt; i++) CHECK_NEAR(x[i], vals[i], 0);
    free(x);
}

/* The values of scripts/gen_annotation_golden.py's pickle_cases(). */
static void check_case(const char *file) {
    aqa_pyobj *r = aqa_pickle_load(test_data_path(file));
    const aqa_pyobj *v, *w;
    CHECK_MSG(r != NULL, "%s: %s", file, aqa_last_error());
    if (!r) return;
    CHECK(r->type == AQA_PY_DICT);
    CHECK_EQ_INT(r->u.dict.len, 33);
    CHECK((v = get(r, "none")) && v->type == AQA_PY_NONE);
    CHECK((v = get(r, "true")) && v->type == AQA_PY_BOOL && v->u.b == 1);
    CHECK((v = get(r, "false")) && v->type == AQA_PY_BOOL && v->u.b == 0);
    CHECK((v = get(r, "int_small")) && v->type == AQA_PY_INT && v->u.i == 7);
    CHECK((v = get(r, "int_neg")) && v->type == AQA_PY_INT && v->u.i == -300);
    CHECK((v = get(r, "int_big")) && v->type == AQA_PY_INT && v->u.i == (INT64_C(1) << 40) + 3);
    CHECK((v = get(r, "int_min")) && v->type == AQA_PY_INT && v->u.i == INT64_MIN);
    CHECK((v = get(r, "int_max")) && v->type == AQA_PY_INT && v->u.i == INT64_MAX);
    CHECK((v = get(r, "float")) && v->type == AQA_PY_FLOAT && v->u.f == 3.25);
    CHECK((v = get(r, "float_neg")) && v->type == AQA_PY_FLOAT && v->u.f == -1e-300);
    v = get(r, "str");
    CHECK(v && v->type == AQA_PY_STR);
    if (v) CHECK_STR(v->u.str.ptr, "h\xc3\xa9llo \xe2\x98\x83\\n\n\"'");
    v = get(r, "bytes");
    CHECK(v && v->type == AQA_PY_BYTES && v->u.str.len == 3 && memcmp(v->u.str.ptr, "\x00\x01\xff", 3) == 0);
    CHECK((v = get(r, "empty_bytes")) && v->type == AQA_PY_BYTES && v->u.str.len == 0);
    v = get(r, "list");
    CHECK(v && v->type == AQA_PY_LIST && v->u.seq.len == 3);
    if (v && v->type == AQA_PY_LIST && v->u.seq.len == 3) {
        CHECK(v->u.seq.items[0]->type == AQA_PY_INT && v->u.seq.items[0]->u.i == 1);
        CHECK(v->u.seq.items[1]->type == AQA_PY_FLOAT && v->u.seq.items[1]->u.f == 2.5);
        CHECK(v->u.seq.items[2]->type == AQA_PY_STR);
        CHECK_STR(v->u.seq.items[2]->u.str.ptr, "x");
    }
    v = get(r, "tuple");
    CHECK(v && v->type == AQA_PY_TUPLE && v->u.seq.len == 2);
    if (v && v->type == AQA_PY_TUPLE && v->u.seq.len == 2) {
        w = v->u.seq.items[1];
        CHECK(w->type == AQA_PY_TUPLE && w->u.seq.len == 2 && w->u.seq.items[1]->type == AQA_PY_INT &&
              w->u.seq.items[1]->u.i == 2);
    }
    CHECK((v = get(r, "empty_tuple")) && v->type == AQA_PY_TUPLE && v->u.seq.len == 0);
    CHECK((v = get(r, "empty_list")) && v->type == AQA_PY_LIST && v->u.seq.len == 0);
    v = aqa_pydict_get_str_int(r, "video", 8);
    CHECK(v && v->type == AQA_PY_STR);
    if (v) CHECK_STR(v->u.str.ptr, "str-int key");
    CHECK(aqa_pydict_get_str_int(r, "video", 9) == NULL);
    v = aqa_pydict_get_int_int(r, 1, 2);
    CHECK(v && v->type == AQA_PY_STR);
    if (v) CHECK_STR(v->u.str.ptr, "int-int key");
    v = aqa_pydict_get_int(r, 5);
    CHECK(v && v->type == AQA_PY_STR);
    {   /* Python key equality: 5.0 finds the int key 5. */
        aqa_pyobj k;
        memset(&k, 0, sizeof k);
        k.type = AQA_PY_FLOAT;
        k.u.f = 5.0;
        CHECK(aqa_pydict_get(r, &k) == v);
        k.u.f = 5.5;
        CHECK(aqa_pydict_get(r, &k) == NULL);
    }
    {
        const int64_t s1[] = {2}, s23[] = {2, 3}, s3[] = {3}, s0[] = {0};
        const double f8[] = {1.5, -2.0}, i8[] = {-2, -1, 0, 1, 2, 3}, f4[] = {0, 1, 2, 3, 4, 5};
        const double be[] = {1, -2, 3}, u1[] = {0, 255}, b1[] = {1, 0};
        check_array(get(r, "f8"), AQA_NP_F8, 1, s1, f8, 2, "f8");
        check_array(get(r, "i8_2d"), AQA_NP_I8, 2, s23, i8, 6, "i8_2d");
        check_array(get(r, "f4_fortran"), AQA_NP_F4, 2, s23, f4, 6, "f4_fortran");
        check_array(get(r, "i4_be"), AQA_NP_I4, 1, s3, be, 3, "i4_be");
        check_array(get(r, "u1"), AQA_NP_U1, 1, s1, u1, 2, "u1");
        check_array(get(r, "b1"), AQA_NP_BOOL, 1, s1, b1, 2, "b1");
        check_array(get(r, "empty_f8"), AQA_NP_F8, 1, s0, f8, 0, "empty_f8");
    }
    CHECK((v = get(r, "scalar_f8")) && v->type == AQA_PY_FLOAT && v->u.f == 2.5);
    CHECK((v = get(r, "scalar_i8")) && v->type == AQA_PY_INT && v->u.i == -9);
    v = get(r, "shared");
    w = get(r, "shared_again");
    CHECK(v && v->type == AQA_PY_LIST && v->u.seq.len == 2);
    CHECK(v == w); /* the memo shares one object, freed once */
    v = get(r, "od");
    CHECK(v && v->type == AQA_PY_DICT && v->u.dict.len == 2);
    CHECK((w = get(v, "b")) && w->type == AQA_PY_INT && w->u.i == 2);
    v = get(get(r, "nested"), "deep");
    CHECK(v && v->type == AQA_PY_LIST && v->u.seq.len == 1 && v->u.seq.items[0]->u.seq.len == 1);
    aqa_pyobj_free(r);
}

static void test_pickle_protocol0(void) { check_case("annotations/case_p0.pkl"); }
static void test_pickle_protocol1(void) { check_case("annotations/case_p1.pkl"); }
static void test_pickle_protocol2(void) { check_case("annotations/case_p2.pkl"); }
static void test_pickle_protocol3(void) { check_case("annotations/case_p3.pkl"); }
static void test_pickle_protocol4(void) { check_case("annotations/case_p4.pkl"); }
static void test_pickle_protocol5(void) { check_case("annotations/case_p5.pkl"); }

/* Python 2 byte strings (SHORT_BINSTRING, BINSTRING, STRING with escapes), hand-assembled. */
static void test_pickle_python2_strings(void) {
    static const char p2[] = "\x80\x02]q\x00(U\x03" "abcq\x01T\x02\x00\x00\x00" "xyh\x01" "e.";
    static const char p0[] = "(lp0\nS'a\\nb\\x41\\'c'\np1\naS\"q\"\np2\na.";
    aqa_pyobj *r = aqa_pickle_loads(p2, sizeof p2 - 1, "p2");
    CHECK_MSG(r != NULL, "%s", aqa_last_error());
    if (r) {
        CHECK(r->type == AQA_PY_LIST && r->u.seq.len == 3);
        if (r->u.seq.len == 3) {
            CHECK_STR(r->u.seq.items[0]->u.str.ptr, "abc");
            CHECK_STR(r->u.seq.items[1]->u.str.ptr, "xy");
            CHECK(r->u.seq.items[2] == r->u.seq.items[0]);
        }
        aqa_pyobj_free(r);
    }
    r = aqa_pickle_loads(p0, sizeof p0 - 1, "p0");
    CHECK_MSG(r != NULL, "%s", aqa_last_error());
    if (r) {
        CHECK(r->type == AQA_PY_LIST && r->u.seq.len == 2);
        if (r->u.seq.len == 2) {
            CHECK_STR(r->u.seq.items[0]->u.str.ptr, "a\nbA'c");
            CHECK_STR(r->u.seq.items[1]->u.str.ptr, "q");
        }
        aqa_pyobj_free(r);
    }
}

static void check_refused(const char *file, const char *op, const char *what) {
    const char *path = test_data_path(file);
    aqa_pyobj *r = aqa_pickle_load(path);
    const char *e = aqa_last_error();
    CHECK_MSG(r == NULL, "%s was accepted", file);
    aqa_pyobj_free(r);
    CHECK_EQ_INT(aqa_last_status(), AQA_EFORMAT);
    CHECK_MSG(strstr(e, path) != NULL, "message does not name the file: %s", e);
    CHECK_MSG(strstr(e, op) != NULL, "message does not name opcode %s: %s", op, e);
    CHECK_MSG(strstr(e, "byte offset") != NULL, "message has no offset: %s", e);
    CHECK_MSG(strstr(e, what) != NULL, "message lacks '%s': %s", what, e);
}

static void test_pickle_refuses_unsupported(void) {
    check_refused("annotations/bad_global.pkl", "GLOBAL", "datetime.date");
    check_refused("annotations/bad_set.pkl", "EMPTY_SET", "not supported");
    check_refused("annotations/bad_object_array.pkl", "REDUCE", "'O8'");
    check_refused("annotations/bad_bigint.pkl", "LONG1", "64 bits");
}

static void test_pickle_errors(void) {
    static const char trunc[] = "\x80\x02]q\x00(K\x01K\x02";
    static const char badop[] = "\x80\x02]\xff.";
    static const char under[] = "\x80\x02" "a.";
    static const char badmemo[] = "\x80\x02h\x05.";
    static const char unhash[] = "\x80\x02}]K\x01s.";
    aqa_pyobj *r = aqa_pickle_load("/nonexistent/dir/file.pkl");
    CHECK(r == NULL);
    CHECK_EQ_INT(aqa_last_status(), AQA_EIO);
    CHECK(strstr(aqa_last_error(), "/nonexistent/dir/file.pkl") != NULL);
    r = aqa_pickle_loads(trunc, sizeof trunc - 1, "trunc.pkl");
    CHECK(r == NULL);
    CHECK_MSG(strstr(aqa_last_error(), "trunc.pkl") && strstr(aqa_last_error(), "truncated"), "%s", aqa_last_error());
    r = aqa_pickle_loads(badop, sizeof badop - 1, "badop.pkl");
    CHECK(r == NULL);
    CHECK_MSG(strstr(aqa_last_error(), "0xff") && strstr(aqa_last_error(), "offset 3"), "%s", aqa_last_error());
    r = aqa_pickle_loads(under, sizeof under - 1, "under.pkl");
    CHECK(r == NULL);
    CHECK_MSG(strstr(aqa_last_error(), "APPEND"), "%s", aqa_last_error());
    r = aqa_pickle_loads(badmemo, sizeof badmemo - 1, "memo.pkl");
    CHECK(r == NULL);
    CHECK_MSG(strstr(aqa_last_error(), "memo"), "%s", aqa_last_error());
    r = aqa_pickle_loads(unhash, sizeof unhash - 1, "unhash.pkl");
    CHECK(r == NULL);
    CHECK_MSG(strstr(aqa_last_error(), "unhashable"), "%s", aqa_last_error());
    r = aqa_pickle_loads("", 0, "empty.pkl");
    CHECK(r == NULL);
    CHECK(aqa_pickle_loads(NULL, 10, "null") == NULL);
    aqa_pyobj_free(NULL);
}

/* MARK followed at once by TUPLE / LIST / DICT on an empty stack: empty containers.  The stack is
 * still unallocated then; UBSan (the sanitizer build stops at the first report) flagged the
 * pointer arithmetic on it before the reader indexed the stack instead. */
static void test_pickle_mark_on_empty_stack(void) {
    static const struct {
        const char *bytes;
        aqa_pytype type;
    } cases[] = {{"(t.", AQA_PY_TUPLE}, {"(l.", AQA_PY_LIST}, {"(d.", AQA_PY_DICT}, {"\x80\x02(t.", AQA_PY_TUPLE}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        aqa_pyobj *r = aqa_pickle_loads(cases[i].bytes, strlen(cases[i].bytes), "mark.pkl");
        CHECK_MSG(r != NULL, "case %zu: %s", i, aqa_last_error());
        if (!r) continue;
        CHECK_MSG(r->type == cases[i].type, "case %zu: got a %s", i, aqa_pytype_name(r->type));
        CHECK(r->type == AQA_PY_DICT ? r->u.dict.len == 0 : r->u.seq.len == 0);
        aqa_pyobj_free(r);
    }
    /* and the forms that must fail: APPENDS / SETITEMS with nothing below the MARK */
    CHECK(aqa_pickle_loads("(e.", 3, "appends.pkl") == NULL);
    CHECK(aqa_pickle_loads("(u.", 3, "setitems.pkl") == NULL);
}

/* A list that contains itself (APPEND of a memoized list) must load and free without looping. */
static void test_pickle_cycle(void) {
    static const char cyc[] = "\x80\x02]q\x00h\x00" "a.";
    aqa_pyobj *r = aqa_pickle_loads(cyc, sizeof cyc - 1, "cycle.pkl");
    CHECK_MSG(r != NULL, "%s", aqa_last_error());
    if (!r) return;
    CHECK(r->type == AQA_PY_LIST && r->u.seq.len == 1 && r->u.seq.items[0] == r);
    aqa_pyobj_free(r);
}

static void test_pickle_mtl_aqa_real(void) {
    const char *path = test_shared_path("MTL-AQA/final_annotations_dict_with_dive_number.pkl");
    aqa_pyobj *r;
    const aqa_pyobj *rec, *v;
    if (!file_exists(path)) {
        SKIP("%.200s absent", path);
        return;
    }
    r = aqa_pickle_load(path);
    CHECK_MSG(r != NULL, "%s", aqa_last_error());
    if (!r) return;
    CHECK(r->type == AQA_PY_DICT && r->u.dict.len == 1412);
    /* (1, 1): values read with Python's pickle (see tests/data/annotations/expected.txt) */
    rec = aqa_pydict_get_int_int(r, 1, 1);
    CHECK(rec && rec->type == AQA_PY_DICT && rec->u.dict.len == 12);
    CHECK((v = get(rec, "start_frame")) && v->type == AQA_PY_INT && v->u.i == 7377);
    CHECK((v = get(rec, "end_frame")) && v->type == AQA_PY_INT && v->u.i == 7462);
    CHECK((v = get(rec, "final_score")) && v->type == AQA_PY_FLOAT && v->u.f == 88.0);
    CHECK((v = get(rec, "difficulty")) && v->type == AQA_PY_FLOAT && v->u.f == 3.2);
    v = get(rec, "dive_number");
    CHECK(v && v->type == AQA_PY_STR);
    if (v) CHECK_STR(v->u.str.ptr, "407C");
    {
        const int64_t s7[] = {7};
        const double js[] = {9.5, 9, 9.5, 9, 8.5, 9.5, 8.5};
        check_array(get(rec, "judge_scores"), AQA_NP_F8, 1, s7, js, 7, "judge_scores");
    }
    aqa_pyobj_free(r);
}

static void test_pickle_all_shared_files(void) {
    static const char *files[] = {"MTL-AQA/final_annotations_dict.pkl", "MTL-AQA/augmented_final_annotations_dict.pkl",
                                  "MTL-AQA/final_captions_dict.pkl",    "MTL-AQA/train_split_0.pkl",
                                  "MTL-AQA/test_split_0.pkl",           "JIGSAWS/label.pkl",
                                  "JIGSAWS/splits.pkl"};
    static const size_t lens[] = {1412, 1412, 1416, 1059, 353, 103, 3};
    size_t i, found = 0;
    for (i = 0; i < sizeof files / sizeof files[0]; i++) {
        const char *path = test_shared_path(files[i]);
        aqa_pyobj *r;
        size_t n;
        if (!file_exists(path)) continue;
        found++;
        r = aqa_pickle_load(path);
        CHECK_MSG(r != NULL, "%s", aqa_last_error());
        if (!r) continue;
        n = r->type == AQA_PY_DICT ? r->u.dict.len : r->type == AQA_PY_LIST ? r->u.seq.len : 0;
        CHECK_MSG(n == lens[i], "%s: %zu entries, expected %zu", files[i], n, lens[i]);
        aqa_pyobj_free(r);
    }
    if (!found) SKIP("no shared annotation files");
}

/* splitmix64: deterministic pseudo-random numbers for the fuzz pass */
static uint64_t next_rand(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Truncates and corrupts real files: every result must be a value or an error with a message. */
static void fuzz_file(const char *path, uint64_t *seed, int rounds, size_t *ok, size_t *err) {
    static const char opcodes[] = "()]}tue.hqjKJMXC\x8c\x94\x85\x86\x87" "Rb"; /* structure-changing ones */
    size_t n, i;
    unsigned char *orig = read_all(path, &n), *buf;
    int k;
    if (!orig) return;
    buf = malloc(n);
    /* truncations at 64 evenly spread lengths (must all fail: STOP is the last byte) */
    for (i = 0; i < 64; i++) {
        size_t len = n * i / 64;
        aqa_pyobj *r = aqa_pickle_loads(orig, len, path);
        CHECK_MSG(r == NULL, "%s truncated to %zu bytes was accepted", path, len);
        CHECK(strstr(aqa_last_error(), path) != NULL);
        aqa_pyobj_free(r);
        (*err)++;
    }
    for (k = 0; k < rounds; k++) {
        int flips = 1 + (int)(next_rand(seed) % 4), f;
        aqa_pyobj *r;
        size_t len = n;
        memcpy(buf, orig, n);
        for (f = 0; f < flips; f++) {
            size_t at = (size_t)(next_rand(seed) % n);
            uint64_t how = next_rand(seed);
            if (how % 3 == 0) buf[at] ^= (unsigned char)(1u << (how >> 8) % 8);
            else if (how % 3 == 1) buf[at] = (unsigned char)(how >> 16);
            else buf[at] = (unsigned char)opcodes[(how >> 16) % (sizeof opcodes - 1)];
        }
        if (next_rand(seed) % 4 == 0) len = (size_t)(next_rand(seed) % n);
        aqa_clear_error();
        r = aqa_pickle_loads(buf, len, path);
        if (r) (*ok)++;
        else {
            (*err)++;
            CHECK_MSG(aqa_last_error()[0] != 0, "failure without a message");
        }
        aqa_pyobj_free(r);
    }
    free(buf);
    free(orig);
}

static void test_pickle_fuzz(void) {
    uint64_t seed = test_seed("pickle fuzz");
    size_t ok = 0, err = 0;
    fuzz_file(test_data_path("annotations/case_p2.pkl"), &seed, 1500, &ok, &err);
    fuzz_file(test_data_path("annotations/case_p4.pkl"), &seed, 1500, &ok, &err);
    fuzz_file(test_data_path("annotations/case_p0.pkl"), &seed, 1000, &ok, &err);
    fuzz_file(test_data_path("finediving/FineDiving_fine-grained_annotation.pkl"), &seed, 1000, &ok, &err);
    fuzz_file(test_shared_path("JIGSAWS/splits.pkl"), &seed, 500, &ok, &err);
    fuzz_file(test_shared_path("MTL-AQA/test_split_0.pkl"), &seed, 300, &ok, &err);
    fuzz_file(test_shared_path("MTL-AQA/final_annotations_dict_with_dive_number.pkl"), &seed, 100, &ok, &err);
    printf("    fuzz: %zu accepted, %zu refused\n", ok, err);
    CHECK(err > 0);
}

int main(void) {
    RUN(test_pickle_protocol0);
    RUN(test_pickle_protocol1);
    RUN(test_pickle_protocol2);
    RUN(test_pickle_protocol3);
    RUN(test_pickle_protocol4);
    RUN(test_pickle_protocol5);
    RUN(test_pickle_python2_strings);
    RUN(test_pickle_refuses_unsupported);
    RUN(test_pickle_errors);
    RUN(test_pickle_cycle);
    RUN(test_pickle_mark_on_empty_stack);
    RUN(test_pickle_mtl_aqa_real);
    RUN(test_pickle_all_shared_files);
    RUN(test_pickle_fuzz);
    return test_finish();
}
