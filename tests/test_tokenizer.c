/* test_tokenizer.c: CLIP's BPE tokenizer (models/clip/tokenizer.h) against ids from Python's
 * CLIP tokenizer (tests/data/tokenizer/, made by scripts/gen_tokenizer_golden.py), Hugging Face
 * format loading, error reporting on broken vocabulary files, thread safety and speed.
 * OpenAI's vocabulary ships in the repository (models/clip/data/, MIT); tests that need it SKIP
 * only when they cannot find the source tree (AQA_SRCDIR). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "models/clip/tokenizer.h"
#include "tests/testlib.h"

/* CLIP's BPE vocabulary, shipped in the repository (MIT, models/clip/data/LICENSE-bpe_simple_vocab_16e6.txt) */
#define VOCAB "models/clip/data/bpe_simple_vocab_16e6.txt.gz"

/* ---- golden file reading ---- */

typedef struct golden {
    int mojibake;       /* ftfy's mojibake repair changes this text (not reproduced) */
    char *text, *cleaned, *decoded;
    int64_t *raw, *t77, *t8;
    size_t n_raw, n_77, n_8;
} golden;

/* Undoes the generator's escaping (\\ \t \n \r \xHH \uXXXX \UXXXXXXXX) in place. */
static void unescape(char *s) {
    char *o = s;
    while (*s) {
        if (*s != '\\') {
            *o++ = *s++;
            continue;
        }
        s++;
        char c = *s++;
        if (c == 't') *o++ = '\t';
        else if (c == 'n') *o++ = '\n';
        else if (c == 'r') *o++ = '\r';
        else if (c == '\\') *o++ = '\\';
        else {
            int digits = c == 'x' ? 2 : c == 'u' ? 4 : 8;
            char hex[9] = {0};
            memcpy(hex, s, (size_t)digits);
            s += digits;
            unsigned long cp = strtoul(hex, NULL, 16);
            if (c == 'x') *o++ = (char)cp;
            else if (cp < 0x80) *o++ = (char)cp;
            else if (cp < 0x800) *o++ = (char)(0xC0 | (cp >> 6)), *o++ = (char)(0x80 | (cp & 0x3F));
            else if (cp < 0x10000)
                *o++ = (char)(0xE0 | (cp >> 12)), *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)),
                *o++ = (char)(0x80 | (cp & 0x3F));
            else
                *o++ = (char)(0xF0 | (cp >> 18)), *o++ = (char)(0x80 | ((cp >> 12) & 0x3F)),
                *o++ = (char)(0x80 | ((cp >> 6) & 0x3F)), *o++ = (char)(0x80 | (cp & 0x3F));
        }
    }
    *o = '\0';
}

static int64_t *parse_ids(const char *s, size_t *n) {
    size_t cap = 16;
    int64_t *v = malloc(cap * sizeof *v);
    *n = 0;
    while (*s) {
        char *end;
        long long x = strtoll(s, &end, 10);
        if (end == s) break;
        if (*n == cap) v = realloc(v, (cap *= 2) * sizeof *v);
        v[(*n)++] = x;
        s = end;
    }
    return v;
}

/* Splits line at tabs into at most max fields; returns the count. */
static int split_tabs(char *line, char **f, int max) {
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < max; p++)
        if (*p == '\t') *p = '\0', f[n++] = p + 1;
    return n;
}

static golden *read_golden(size_t *count) {
    FILE *f = fopen(test_data_path("tokenizer/clip_golden.txt"), "r");
    if (!f) return NULL;
    golden *g = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        if (len && line[len - 1] == '\n') line[--len] = '\0';
        if (line[0] == '#' || !len) continue;
        char *fl[7];
        if (split_tabs(line, fl, 7) != 7) continue;
        if (n == cap) g = realloc(g, (cap = cap ? cap * 2 : 256) * sizeof *g);
        golden *r = &g[n++];
        r->mojibake = strcmp(fl[0], "mojibake") == 0;
        unescape(fl[1]);
        unescape(fl[2]);
        unescape(fl[6]);
        r->text = strdup(fl[1]);
        r->cleaned = strdup(fl[2]);
        r->decoded = strdup(fl[6]);
        r->raw = parse_ids(fl[3], &r->n_raw);
        r->t77 = parse_ids(fl[4], &r->n_77);
        r->t8 = parse_ids(fl[5], &r->n_8);
    }
    free(line);
    fclose(f);
    *count = n;
    return g;
}

static void free_golden(golden *g, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(g[i].text);
        free(g[i].cleaned);
        free(g[i].decoded);
        free(g[i].raw);
        free(g[i].t77);
        free(g[i].t8);
    }
    free(g);
}

static int ids_equal(const int64_t *a, size_t na, const int64_t *b, size_t nb) {
    return na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0);
}

/* Does row (context ids) equal want (trailing zeros removed) followed by zeros? */
static int row_equal(const int64_t *row, size_t context, const int64_t *want, size_t n) {
    if (n > context) return 0;
    for (size_t i = 0; i < context; i++)
        if (row[i] != (i < n ? want[i] : 0)) return 0;
    return 1;
}

static aqa_bpe_tokenizer *load_real(void) {
    const char *path = test_source_path(VOCAB);
    if (access(path, R_OK) != 0) return NULL;
    aqa_bpe_tokenizer *t = NULL;
    aqa_status st = aqa_bpe_load(path, &t);
    CHECK_MSG(st == AQA_OK, "aqa_bpe_load(%s): %s", path, aqa_last_error());
    return t;
}

/* OpenAI's vocabulary and the golden texts (*g, *n), both loaded; when either is missing, marks
 * the test skipped, frees what did load and returns NULL. */
static aqa_bpe_tokenizer *load_real_with_golden(golden **g, size_t *n) {
    *g = read_golden(n);
    aqa_bpe_tokenizer *t = load_real();
    if (t && *g) return t;
    SKIP("vocabulary or golden file missing");
    free_golden(*g, *g ? *n : 0);
    aqa_bpe_free(t);
    *g = NULL;
    return NULL;
}

/* Checks every golden text through tokenizer t; returns the number of "ok" texts that failed. */
static int check_golden(aqa_bpe_tokenizer *t, const golden *g, size_t n, int full, int *moji_same) {
    int bad = 0;
    *moji_same = 0;
    for (size_t i = 0; i < n; i++) {
        const golden *r = &g[i];
        int64_t *ids = NULL;
        size_t nids = 0;
        aqa_status st = aqa_bpe_encode(t, r->text, &ids, &nids);
        int same = st == AQA_OK && ids_equal(ids, nids, r->raw, r->n_raw);
        if (r->mojibake) {
            *moji_same += same;
            free(ids);
            continue;
        }
        if (!same) {
            bad++;
            CHECK_MSG(same, "encode(\"%s\"): status %d, %zu ids, expected %zu", r->text, st, nids, r->n_raw);
        }
        if (full) {
            char *clean = aqa_bpe_clean_text(r->text);
            CHECK_STR(clean, r->cleaned);
            free(clean);
            int64_t row[77];
            const char *texts[1] = {r->text};
            st = aqa_bpe_tokenize(t, texts, 1, 77, 1, row);
            CHECK_MSG(st == AQA_OK && row_equal(row, 77, r->t77, r->n_77), "tokenize(\"%s\", 77)", r->text);
            st = aqa_bpe_tokenize(t, texts, 1, 8, 1, row);
            CHECK_MSG(st == AQA_OK && row_equal(row, 8, r->t8, r->n_8), "tokenize(\"%s\", 8)", r->text);
            /* CLIP raises when a text does not fit and truncation is off */
            st = aqa_bpe_tokenize(t, texts, 1, 77, 0, row);
            if (r->n_raw + 2 > 77) CHECK_MSG(st == AQA_EINVAL, "\"%.30s...\" must not fit in 77", r->text);
            else CHECK_MSG(st == AQA_OK && row_equal(row, 77, r->t77, r->n_77), "tokenize(\"%s\", no truncation)", r->text);
            char *dec = NULL;
            st = aqa_bpe_decode(t, ids, nids, &dec);
            CHECK_MSG(st == AQA_OK && dec && strcmp(dec, r->decoded) == 0, "decode of \"%s\": \"%s\"", r->text,
                      dec ? dec : "(null)");
            free(dec);
        }
        free(ids);
    }
    return bad;
}

/* ---- test cases ---- */

static void test_golden_openai(void) {
    size_t n;
    golden *g = read_golden(&n);
    CHECK_MSG(g && n > 300, "tests/data/tokenizer/clip_golden.txt missing or short");
    aqa_bpe_tokenizer *t = load_real();
    if (!t || !g) {
        if (!t) SKIP(VOCAB " not found (run from the build folder or set AQA_SRCDIR)");
        free_golden(g, g ? n : 0);
        aqa_bpe_free(t);
        return;
    }
    CHECK_EQ_INT(aqa_bpe_vocab_size(t), 49408);
    CHECK_EQ_INT(aqa_bpe_sot(t), AQA_CLIP_SOT);
    CHECK_EQ_INT(aqa_bpe_eot(t), AQA_CLIP_EOT);
    CHECK_STR(aqa_bpe_token(t, 0), "!");
    CHECK_STR(aqa_bpe_token(t, AQA_CLIP_EOT), "<|endoftext|>");
    int moji = 0, n_moji = 0;
    for (size_t i = 0; i < n; i++) n_moji += g[i].mojibake;
    int bad = check_golden(t, g, n, 1, &moji);
    printf("    %zu golden texts, %d differ; mojibake texts (not reproduced): %d of %d give CLIP's ids\n",
           n - (size_t)n_moji, bad, moji, n_moji);
    /* a second pass runs from the word cache and must give the same ids */
    bad = check_golden(t, g, n, 0, &moji);
    CHECK_EQ_INT(bad, 0);
    aqa_bpe_free(t);
    free_golden(g, n);
}

static void test_batch_tokenize(void) {
    size_t n;
    golden *g;
    aqa_bpe_tokenizer *t = load_real_with_golden(&g, &n);
    if (!t) return;
    const char **texts = malloc(n * sizeof *texts);
    int64_t *out = malloc(n * 77 * sizeof *out);
    for (size_t i = 0; i < n; i++) texts[i] = g[i].text;
    aqa_status st = aqa_bpe_tokenize(t, texts, n, 77, 1, out);
    CHECK(st == AQA_OK);
    for (size_t i = 0; i < n && st == AQA_OK; i++)
        if (!g[i].mojibake) CHECK_MSG(row_equal(out + i * 77, 77, g[i].t77, g[i].n_77), "row %zu", i);
    /* without truncation the batch fails on the first long text and names it */
    st = aqa_bpe_tokenize(t, texts, n, 77, 0, out);
    CHECK(st == AQA_EINVAL);
    CHECK(strstr(aqa_last_error(), "too long") != NULL);
    CHECK(aqa_bpe_tokenize(t, texts, 1, 1, 1, out) == AQA_EINVAL); /* context < 2 */
    free(texts);
    free(out);
    aqa_bpe_free(t);
    free_golden(g, n);
}

static void test_hf_roundtrip(void) {
    size_t n;
    golden *g;
    aqa_bpe_tokenizer *t = load_real_with_golden(&g, &n);
    if (!t) return;
    char dir[] = "/tmp/aqa_tok_XXXXXX", vj[64], mt[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(vj, sizeof vj, "%s/vocab.json", dir);
    snprintf(mt, sizeof mt, "%s/merges.txt", dir);
    CHECK(aqa_bpe_save_hf(t, vj, mt) == AQA_OK);
    aqa_bpe_tokenizer *h = NULL;
    aqa_status st = aqa_bpe_load_hf(vj, mt, &h);
    CHECK_MSG(st == AQA_OK, "load_hf: %s", aqa_last_error());
    if (h) {
        CHECK_EQ_INT(aqa_bpe_vocab_size(h), 49408);
        CHECK_EQ_INT(aqa_bpe_sot(h), AQA_CLIP_SOT);
        int moji;
        CHECK_EQ_INT(check_golden(h, g, n, 0, &moji), 0);
    }
    /* the JSON really is token -> id: spot-check a few entries with cJSON-independent search */
    FILE *f = fopen(vj, "r");
    char *buf = malloc(4 << 20);
    size_t len = f ? fread(buf, 1, (4 << 20) - 1, f) : 0;
    buf[len] = '\0';
    if (f) fclose(f);
    CHECK(strstr(buf, "\"<|endoftext|>\":49407") != NULL);
    CHECK(strstr(buf, "\"!\":0,") != NULL);
    free(buf);
    aqa_bpe_free(h);
    aqa_bpe_free(t);
    unlink(vj);
    unlink(mt);
    rmdir(dir);
    free_golden(g, n);
}

static void test_hf_tiny(void) {
    char vj[4096], mt[4096];
    snprintf(vj, sizeof vj, "%s", test_data_path("tokenizer/tiny_vocab.json"));
    snprintf(mt, sizeof mt, "%s", test_data_path("tokenizer/tiny_merges.txt"));
    aqa_bpe_tokenizer *t = NULL;
    aqa_status st = aqa_bpe_load_hf(vj, mt, &t);
    CHECK_MSG(st == AQA_OK, "load_hf(tiny): %s", aqa_last_error());
    FILE *f = fopen(test_data_path("tokenizer/tiny_golden.txt"), "r");
    CHECK(f != NULL);
    if (!t || !f) {
        if (f) fclose(f);
        aqa_bpe_free(t);
        return;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int count = 0;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len && line[len - 1] == '\n') line[--len] = '\0';
        if (line[0] == '#') continue;
        char *fl[2];
        if (split_tabs(line, fl, 2) != 2) continue;
        unescape(fl[0]);
        size_t nw;
        int64_t *want = parse_ids(fl[1], &nw);
        int64_t *ids = NULL;
        size_t nids = 0;
        st = aqa_bpe_encode(t, fl[0], &ids, &nids);
        CHECK_MSG(st == AQA_OK && ids_equal(ids, nids, want, nw), "tiny encode(\"%s\")", fl[0]);
        free(ids);
        free(want);
        count++;
    }
    CHECK(count > 50);
    free(line);
    fclose(f);
    aqa_bpe_free(t);
}

/* Writes data to path through zlib (gzip). */
static void write_gz(const char *path, const char *data, size_t len) {
    gzFile z = gzopen(path, "wb");
    gzwrite(z, data, (unsigned)len);
    gzclose(z);
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

/* Expects loading path to fail with `want`, naming the file (and `what` when given). */
static void expect_load_error(const char *path, aqa_status want, const char *what) {
    aqa_bpe_tokenizer *t = (aqa_bpe_tokenizer *)1;
    aqa_status st = aqa_bpe_load(path, &t);
    CHECK_MSG(st == want, "load(%s): status %s, expected %s (%s)", path, aqa_status_name(st),
              aqa_status_name(want), aqa_last_error());
    CHECK(t == NULL);
    CHECK_MSG(strstr(aqa_last_error(), path) != NULL, "message does not name the file: %s", aqa_last_error());
    if (what) CHECK_MSG(strstr(aqa_last_error(), what) != NULL, "message lacks \"%s\": %s", what, aqa_last_error());
    printf("    %s\n", aqa_last_error());
}

static void test_bad_vocab_files(void) {
    char dir[] = "/tmp/aqa_tokbad_XXXXXX", p[256];
    CHECK(mkdtemp(dir) != NULL);

    snprintf(p, sizeof p, "%s/missing.txt.gz", dir);
    expect_load_error(p, AQA_EIO, "cannot open");

    /* a well-formed gzip with too few merges */
    snprintf(p, sizeof p, "%s/short.txt.gz", dir);
    const char *few = "#version: 0.2\ni n\nt h\nth e</w>\n";
    write_gz(p, few, strlen(few));
    expect_load_error(p, AQA_EFORMAT, "merge lines");

    /* a line with three symbols */
    snprintf(p, sizeof p, "%s/malformed.txt.gz", dir);
    const char *bad = "#version: 0.2\ni n\nt h e\n";
    write_gz(p, bad, strlen(bad));
    expect_load_error(p, AQA_EFORMAT, "line 3");

    /* a text file that is not a vocabulary at all */
    snprintf(p, sizeof p, "%s/notes.txt", dir);
    const char *notes = "hello\nthis is not\na vocabulary\n";
    write_file(p, notes, strlen(notes));
    expect_load_error(p, AQA_EFORMAT, NULL);

    /* a big gzip cut in the middle, and one with its compressed bytes damaged */
    size_t big = 200000;
    char *text = malloc(big + 1);
    for (size_t i = 0; i < big; i++) text[i] = (i % 7 == 6) ? '\n' : (char)('a' + (i * 2654435761u >> 7) % 26);
    snprintf(p, sizeof p, "%s/full.txt.gz", dir);
    write_gz(p, text, big);
    FILE *f = fopen(p, "rb");
    char *gz = malloc(big * 2);
    size_t gzlen = fread(gz, 1, big * 2, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/truncated.txt.gz", dir);
    write_file(p, gz, gzlen / 2);
    expect_load_error(p, AQA_EIO, "gzip");
    for (size_t i = gzlen / 3; i < gzlen / 3 + 64; i++) gz[i] ^= 0x5A;
    snprintf(p, sizeof p, "%s/corrupt.txt.gz", dir);
    write_file(p, gz, gzlen);
    expect_load_error(p, AQA_EIO, "gzip");
    free(gz);
    free(text);

    /* the real vocabulary cut short (when present) */
    const char *real = test_source_path(VOCAB);
    f = fopen(real, "rb");
    if (f) {
        char *data = malloc(4 << 20);
        size_t n = fread(data, 1, 4 << 20, f);
        fclose(f);
        snprintf(p, sizeof p, "%s/real_truncated.txt.gz", dir);
        write_file(p, data, n / 10);
        expect_load_error(p, AQA_EIO, NULL);
        free(data);
    }

    /* Hugging Face files: malformed JSON, a merge whose result is not in the vocabulary */
    char vj[256], mt[256];
    snprintf(vj, sizeof vj, "%s/vocab.json", dir);
    snprintf(mt, sizeof mt, "%s/merges.txt", dir);
    write_file(vj, "{\"a\": 1,", 8);
    write_file(mt, "#version: 0.2\n", 14);
    aqa_bpe_tokenizer *t = NULL;
    CHECK(aqa_bpe_load_hf(vj, mt, &t) == AQA_EFORMAT);
    CHECK(strstr(aqa_last_error(), vj) != NULL);
    printf("    %s\n", aqa_last_error());
    snprintf(p, sizeof p, "%s/none.json", dir);
    CHECK(aqa_bpe_load_hf(p, mt, &t) == AQA_EIO);
    CHECK(strstr(aqa_last_error(), p) != NULL);
    /* the tiny vocabulary with an extra merge whose result it lacks */
    FILE *src = fopen(test_data_path("tokenizer/tiny_merges.txt"), "rb");
    if (src) {
        char buf[8192];
        size_t n = fread(buf, 1, sizeof buf - 32, src);
        fclose(src);
        memcpy(buf + n, "q z\n", 4);
        write_file(mt, buf, n + 4);
        CHECK(aqa_bpe_load_hf(test_data_path("tokenizer/tiny_vocab.json"), mt, &t) == AQA_EFORMAT);
        CHECK(strstr(aqa_last_error(), mt) != NULL && strstr(aqa_last_error(), "qz") != NULL);
        printf("    %s\n", aqa_last_error());
    }
    CHECK(t == NULL);

    const char *names[] = {"short.txt.gz", "malformed.txt.gz", "notes.txt", "full.txt.gz", "truncated.txt.gz",
                           "corrupt.txt.gz", "real_truncated.txt.gz", "vocab.json", "merges.txt"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
}

typedef struct thread_job {
    aqa_bpe_tokenizer *t;
    const golden *g;
    size_t n;
    int bad; /* texts whose ids differ */
} thread_job;

static void *thread_main(void *arg) {
    thread_job *j = arg;
    for (int rep = 0; rep < 3; rep++)
        for (size_t i = 0; i < j->n; i++) {
            if (j->g[i].mojibake) continue;
            int64_t *ids;
            size_t n;
            if (aqa_bpe_encode(j->t, j->g[i].text, &ids, &n) != AQA_OK ||
                !ids_equal(ids, n, j->g[i].raw, j->g[i].n_raw))
                j->bad++;
            free(ids);
        }
    return NULL;
}

static void test_threads(void) {
    size_t n;
    golden *g;
    aqa_bpe_tokenizer *t = load_real_with_golden(&g, &n);
    if (!t) return;
    pthread_t th[4];
    thread_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (thread_job){t, g, n, 0};
        pthread_create(&th[i], NULL, thread_main, &jobs[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(jobs[i].bad, 0);
    }
    aqa_bpe_free(t);
    free_golden(g, n);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void test_speed(void) {
    aqa_bpe_tokenizer *t = load_real();
    if (!t) {
        SKIP(VOCAB " not found (run from the build folder or set AQA_SRCDIR)");
        return;
    }
    /* 5000 varied prompts in the style MVLA uses */
    enum { N = 5000 };
    static const char *const actions[] = {"forward", "back", "reverse", "inward", "twisting", "armstand"};
    static const char *const pos[] = {"tuck", "pike", "straight", "free"};
    static const char *const qual[] = {"a perfect", "a good", "an average", "a poor", "a failed"};
    char **texts = malloc(N * sizeof *texts);
    for (int i = 0; i < N; i++) {
        texts[i] = malloc(200);
        snprintf(texts[i], 200, "a photo of %s dive: %s %d%s somersaults in the %s position, score %d.%d",
                 qual[i % 5], actions[(i / 5) % 6], 1 + i % 4, (i % 2) ? "½" : "", pos[(i / 30) % 4],
                 i % 10, (i * 7) % 10);
    }
    int64_t *out = malloc((size_t)N * 77 * sizeof *out);
    double t0 = now();
    aqa_status st = aqa_bpe_tokenize(t, (const char *const *)texts, N, 77, 1, out);
    double dt = now() - t0;
    CHECK(st == AQA_OK);
    printf("    tokenized %d prompts in %.3f s (%.0f prompts/s)\n", N, dt, N / dt);
    CHECK_MSG(dt < 5.0, "tokenizing %d prompts took %.2f s", N, dt); /* generous: sanitizers/valgrind */
    for (int i = 0; i < N; i++) free(texts[i]);
    free(texts);
    free(out);
    aqa_bpe_free(t);
}

/* Reads one line of space-separated ids from f into a fresh array. */
static int64_t *read_id_line(FILE *f, size_t *n) {
    char *line = NULL;
    size_t cap = 0;
    int64_t *v = NULL;
    *n = 0;
    if (getline(&line, &cap, f) >= 0) v = parse_ids(line, n);
    free(line);
    return v;
}

/* examples/tokenize, as other tools call it: one text per line in, one line of ids out. */
static void test_tokenize_program(void) {
    const char *prog = "examples/tokenize", *vocab = test_source_path(VOCAB);
    if (access(prog, X_OK) != 0) {
        SKIP("examples/tokenize not built (run from the build folder)");
        return;
    }
    if (access(vocab, R_OK) != 0) {
        SKIP(VOCAB " not found (run from the build folder or set AQA_SRCDIR)");
        return;
    }
    size_t n;
    golden *g = read_golden(&n);
    CHECK(g != NULL);
    if (!g) return;
    char dir[] = "/tmp/aqa_tokcli_XXXXXX", in[64], out[64], cmd[8192];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(in, sizeof in, "%s/in.txt", dir);
    snprintf(out, sizeof out, "%s/out.txt", dir);
    FILE *f = fopen(in, "w");
    size_t used = 0;
    for (size_t i = 0; i < n; i++)
        if (!g[i].mojibake && !strchr(g[i].text, '\n')) fprintf(f, "%s\n", g[i].text), used++;
    fclose(f);
    for (int raw = 0; raw < 2; raw++) {
        snprintf(cmd, sizeof cmd, "%s --bpe '%s' %s < %s > %s", prog, vocab, raw ? "--raw" : "--context 77",
                 in, out);
        CHECK_EQ_INT(system(cmd), 0);
        f = fopen(out, "r");
        CHECK(f != NULL);
        if (!f) continue;
        size_t lines = 0;
        for (size_t i = 0; i < n; i++) {
            if (g[i].mojibake || strchr(g[i].text, '\n')) continue;
            size_t k;
            int64_t *ids = read_id_line(f, &k);
            if (raw) CHECK_MSG(ids_equal(ids, k, g[i].raw, g[i].n_raw), "--raw line for \"%s\"", g[i].text);
            else CHECK_MSG(k == 77 && row_equal(ids, 77, g[i].t77, g[i].n_77), "line for \"%s\"", g[i].text);
            free(ids);
            lines++;
        }
        CHECK_EQ_INT(lines, used);
        fclose(f);
    }
    /* errors: a missing vocabulary gives a message on stderr and a non-zero status */
    snprintf(cmd, sizeof cmd, "%s --bpe %s/none.gz < %s > %s 2>&1", prog, dir, in, out);
    CHECK(system(cmd) != 0);
    f = fopen(out, "r");
    char msg[512] = "";
    if (f) {
        if (!fgets(msg, sizeof msg, f)) msg[0] = '\0';
        fclose(f);
    }
    CHECK_MSG(strstr(msg, "none.gz") != NULL, "stderr: %s", msg);
    unlink(in);
    unlink(out);
    rmdir(dir);
    free_golden(g, n);
}

static void test_arguments(void) {
    aqa_bpe_tokenizer *t = NULL;
    CHECK(aqa_bpe_load(NULL, &t) == AQA_EINVAL);
    CHECK(aqa_bpe_load_hf("a", NULL, &t) == AQA_EINVAL);
    CHECK(aqa_bpe_encode(NULL, "x", NULL, NULL) == AQA_EINVAL);
    aqa_bpe_free(NULL);
    char *s = aqa_bpe_clean_text("  &amp;lt; Ｈｅｌｌｏ\u3000“World” ﬁne  ");
    CHECK_STR(s, "< hello \"world\" fine");
    free(s);
}

int main(void) {
    RUN(test_golden_openai);
    RUN(test_batch_tokenize);
    RUN(test_hf_roundtrip);
    RUN(test_hf_tiny);
    RUN(test_bad_vocab_files);
    RUN(test_threads);
    RUN(test_speed);
    RUN(test_tokenize_program);
    RUN(test_arguments);
    return test_finish();
}
