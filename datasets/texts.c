/* texts.c: text sets, their plain-file format, prompt templates and quality-grade texts. */
#include "datasets/texts.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"

void aqa_text_set_init(aqa_text_set *set) {
    if (set) memset(set, 0, sizeof *set);
}

void aqa_text_set_free(aqa_text_set *set) {
    if (!set) return;
    for (size_t i = 0; i < set->n; i++) free(set->texts[i]);
    free(set->texts);
    memset(set, 0, sizeof *set);
}

aqa_status aqa_text_set_add(aqa_text_set *set, const char *text) {
    if (!set || !text) return aqa_fail(AQA_EINVAL, "aqa_text_set_add: NULL argument");
    if (!text[0]) return aqa_fail(AQA_EINVAL, "aqa_text_set_add: empty text");
    if (strchr(text, '\n'))
        return aqa_fail(AQA_EINVAL, "aqa_text_set_add: text \"%.60s\" contains a newline", text);
    if (set->n == set->cap) {
        size_t cap = set->cap ? 2 * set->cap : 16;
        char **t = realloc(set->texts, cap * sizeof *t);
        if (!t) return aqa_fail(AQA_ENOMEM, "aqa_text_set_add: cannot grow to %zu texts", cap);
        set->texts = t;
        set->cap = cap;
    }
    char *copy = strdup(text);
    if (!copy) return aqa_fail(AQA_ENOMEM, "aqa_text_set_add: cannot copy a text");
    set->texts[set->n++] = copy;
    return AQA_OK;
}

long aqa_text_set_find(const aqa_text_set *set, const char *text) {
    if (!set || !text) return -1;
    for (size_t i = 0; i < set->n; i++)
        if (strcmp(set->texts[i], text) == 0) return (long)i;
    return -1;
}

aqa_status aqa_text_set_add_unique(aqa_text_set *set, const char *text, size_t *index) {
    long at = aqa_text_set_find(set, text);
    if (at < 0) {
        aqa_status st = aqa_text_set_add(set, text);
        if (st) return st;
        at = (long)set->n - 1;
    }
    if (index) *index = (size_t)at;
    return AQA_OK;
}

const char *aqa_text_set_get(const aqa_text_set *set, size_t i) {
    return set && i < set->n ? set->texts[i] : NULL;
}

aqa_status aqa_text_set_load(const char *path, size_t expected_n, aqa_text_set *out) {
    if (!path || !out) return aqa_fail(AQA_EINVAL, "aqa_text_set_load: NULL argument");
    aqa_text_set_init(out);
    FILE *f = fopen(path, "rb");
    if (!f) return aqa_fail(AQA_EIO, "%s: cannot open text set: %s", path, strerror(errno));
    aqa_text_set set;
    aqa_text_set_init(&set);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    aqa_status st = AQA_OK;
    while ((len = getline(&line, &cap, f)) != -1) {
        lineno++;
        if (memchr(line, '\0', (size_t)len)) {
            st = aqa_fail(AQA_EFORMAT, "%s:%zu: NUL byte in a text (binary file?)", path, lineno);
            break;
        }
        if ((size_t)len > AQA_TEXT_LINE_MAX) {
            st = aqa_fail(AQA_EFORMAT, "%s:%zu: line of %zd bytes is longer than %d", path, lineno,
                          len, AQA_TEXT_LINE_MAX);
            break;
        }
        char *s = line, *e = line + len;
        while (e > s && isspace((unsigned char)e[-1])) e--;
        while (s < e && isspace((unsigned char)*s)) s++;
        *e = '\0';
        if (s == e) {
            st = aqa_fail(AQA_EFORMAT,
                          "%s:%zu: empty line (one text per line; an empty line would shift the "
                          "class ids of the texts after it)",
                          path, lineno);
            break;
        }
        if ((st = aqa_text_set_add(&set, s))) break;
    }
    if (!st && ferror(f)) st = aqa_fail(AQA_EIO, "%s: read error: %s", path, strerror(errno));
    free(line);
    fclose(f);
    if (!st && set.n == 0) st = aqa_fail(AQA_EFORMAT, "%s: the text set is empty", path);
    if (!st && expected_n && set.n != expected_n)
        st = aqa_fail(AQA_EFORMAT, "%s: holds %zu texts, expected %zu (one per line)", path, set.n,
                      expected_n);
    if (st) {
        aqa_text_set_free(&set);
        return st;
    }
    *out = set;
    return AQA_OK;
}

aqa_status aqa_text_set_save(const aqa_text_set *set, const char *path) {
    if (!set || !path) return aqa_fail(AQA_EINVAL, "aqa_text_set_save: NULL argument");
    aqa_atomic_file *af;
    aqa_status st = aqa_atomic_open(path, &af);
    if (st) return st;
    for (size_t i = 0; i < set->n; i++) fprintf(aqa_atomic_stream(af), "%s\n", set->texts[i]);
    return aqa_atomic_commit(af); /* a failed write is reported here, with the system's reason */
}

static int starts_with_vowel(const char *s) {
    return s[0] && strchr("aeiouAEIOU", s[0]) != NULL;
}

aqa_status aqa_text_fill_template(const char *template_, const char *category, char *buf,
                                  size_t size) {
    static const char ph[] = "[category]";
    const size_t phl = sizeof ph - 1;
    if (!template_ || !category || !buf || !size)
        return aqa_fail(AQA_EINVAL, "aqa_text_fill_template: NULL argument");
    if (!strstr(template_, ph))
        return aqa_fail(AQA_EINVAL, "aqa_text_fill_template: template \"%.80s\" has no [category]",
                        template_);
    size_t o = 0;
    const char *p = template_;
    while (*p) {
        const char *hit = strstr(p, ph);
        size_t lit = hit ? (size_t)(hit - p) : strlen(p);
        int an = 0;
        /* "a [category]" with a vowel-initial category: write "an"; the "a" is the last word of
         * the literal part (at the start or after a blank). */
        if (hit && lit >= 2 && p[lit - 1] == ' ' && (p[lit - 2] == 'a' || p[lit - 2] == 'A') &&
            (lit == 2 || p[lit - 3] == ' ') && starts_with_vowel(category))
            an = 1;
        size_t need = lit + (an ? 1 : 0) + (hit ? strlen(category) : 0);
        if (o + need >= size)
            return aqa_fail(AQA_EINVAL, "aqa_text_fill_template: text longer than %zu bytes", size - 1);
        if (an) {
            memcpy(buf + o, p, lit - 1);
            o += lit - 1;
            buf[o++] = 'n';
            buf[o++] = ' ';
        } else {
            memcpy(buf + o, p, lit);
            o += lit;
        }
        if (!hit) break;
        memcpy(buf + o, category, strlen(category));
        o += strlen(category);
        p = hit + phl;
    }
    buf[o] = '\0';
    return AQA_OK;
}

const char *aqa_quality_grade_name(int grade) {
    static const char *const names[AQA_GRADE_COUNT] = {"poor", "fair", "good", "excellent"};
    return grade >= 0 && grade < AQA_GRADE_COUNT ? names[grade] : NULL;
}

aqa_status aqa_quality_grade_of(double score, double lo, double hi, aqa_quality_grade *grade) {
    if (!grade) return aqa_fail(AQA_EINVAL, "aqa_quality_grade_of: grade is NULL");
    if (!isfinite(score) || !isfinite(lo) || !isfinite(hi))
        return aqa_fail(AQA_EINVAL, "aqa_quality_grade_of: non-finite score %g or range [%g, %g]",
                        score, lo, hi);
    if (!(lo < hi))
        return aqa_fail(AQA_EINVAL, "aqa_quality_grade_of: empty score range [%g, %g]", lo, hi);
    double t = (score - lo) / (hi - lo) * AQA_GRADE_COUNT;
    int g = t <= 0 ? 0 : (int)floor(t);
    if (g >= AQA_GRADE_COUNT) g = AQA_GRADE_COUNT - 1;
    *grade = (aqa_quality_grade)g;
    return AQA_OK;
}

aqa_status aqa_quality_text(int grade, const char *action, char *buf, size_t size) {
    const char *name = aqa_quality_grade_name(grade);
    if (!name) return aqa_fail(AQA_EINVAL, "aqa_quality_text: grade %d is not 0..3", grade);
    if (!action || !action[0] || !buf)
        return aqa_fail(AQA_EINVAL, "aqa_quality_text: missing action name or buffer");
    int n = snprintf(buf, size, "a video of %s %s %s", starts_with_vowel(name) ? "an" : "a", name,
                     action);
    if (n < 0 || (size_t)n >= size)
        return aqa_fail(AQA_EINVAL, "aqa_quality_text: text for \"%.60s\" longer than %zu bytes",
                        action, size - 1);
    return AQA_OK;
}

aqa_status aqa_quality_describe(int grade, const char *text, char *buf, size_t size) {
    const char *name = aqa_quality_grade_name(grade);
    if (!name) return aqa_fail(AQA_EINVAL, "aqa_quality_describe: grade %d is not 0..3", grade);
    if (!text || !text[0] || !buf) return aqa_fail(AQA_EINVAL, "aqa_quality_describe: missing text or buffer");
    int n = snprintf(buf, size, "%s, of %s quality", text, name);
    if (n < 0 || (size_t)n >= size)
        return aqa_fail(AQA_EINVAL, "aqa_quality_describe: text for \"%.60s\" longer than %zu bytes", text, size - 1);
    return AQA_OK;
}

aqa_status aqa_text_set_quality(const char *action, aqa_text_set *out) {
    if (!out) return aqa_fail(AQA_EINVAL, "aqa_text_set_quality: out is NULL");
    aqa_text_set_init(out);
    char buf[AQA_TEXT_MAX];
    for (int g = 0; g < AQA_GRADE_COUNT; g++) {
        aqa_status st = aqa_quality_text(g, action, buf, sizeof buf);
        if (!st) st = aqa_text_set_add(out, buf);
        if (st) {
            aqa_text_set_free(out);
            return st;
        }
    }
    return AQA_OK;
}
