/* ann_fisv.c: Fis-V figure-skating annotations (Xu et al., TCSVT 2019, files of MS_LSTM).
 *
 * train_dataset.txt and test_dataset.txt hold one program per line: "id tes pcs ded".  Sample key
 * and video are the id ("17"; features are per-video files "<id>.npy").  sub_scores = {TES, PCS,
 * deductions}; score = TES + PCS - deductions (fs_dataset.csv's 'total' column is not read: it
 * disagrees with that sum for 14 of the 500 programs). */
#include "datasets/annotations-impl.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const FIELDS[5] = {"id", "tes", "pcs", "ded", "end of line"};

/* Parses one line "id tes pcs ded"; 1 when parsed, 0 for a blank line, -1 when malformed with
 * *bad the index of the field at fault in FIELDS. */
static int parse_line(const char *line, long long *id, double v[3], int *bad) {
    const char *p = line;
    char *end;
    int k;
    while (*p == ' ' || *p == '\t' || *p == '\r') p++;
    if (!*p) return 0;
    errno = 0;
    *bad = 0;
    *id = strtoll(p, &end, 10);
    if (end == p || errno || *id < 0 || (*end != ' ' && *end != '\t')) return -1;
    p = end;
    for (k = 0; k < 3; k++) {
        *bad = k + 1;
        v[k] = strtod(p, &end);
        if (end == p || !isfinite(v[k])) return -1;
        p = end;
    }
    *bad = 4;
    while (*p == ' ' || *p == '\t' || *p == '\r') p++;
    return *p ? -1 : 1;
}

/* Reads one list file, appending samples and a split named `name`. */
static aqa_status read_list(aqa_ann_manifest *m, const char *dir, const char *fname, const char *name) {
    char *path = ann_path(dir, fname), line[256];
    FILE *f;
    size_t *idx = NULL, n = 0, cap = 0, lineno = 0;
    aqa_status st = AQA_OK;
    if (!path) return AQA_ENOMEM;
    f = fopen(path, "r");
    if (!f) {
        st = aqa_fail(AQA_EIO, "%s: cannot open: %s", path, strerror(errno));
        free(path);
        return st;
    }
    while (fgets(line, sizeof line, f)) {
        long long id;
        double v[3];
        int r, bad = 0;
        char key[32];
        aqa_ann_sample *s;
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            st = aqa_fail(AQA_EFORMAT, "%s:%zu: line too long", path, lineno);
            goto done;
        }
        line[strcspn(line, "\n")] = 0;
        r = parse_line(line, &id, v, &bad);
        if (r == 0) continue;
        if (r < 0) {
            st = aqa_fail(AQA_EFORMAT, "%s:%zu: field '%s': expected 'id tes pcs ded', got '%.60s'", path, lineno,
                          FIELDS[bad], line);
            goto done;
        }
        if (!(s = ann_add_sample(m))) {
            st = AQA_ENOMEM;
            goto done;
        }
        snprintf(key, sizeof key, "%lld", id);
        if (!(s->key = ann_strdup(key)) || !(s->video = ann_strdup(key))) {
            st = AQA_ENOMEM;
            goto done;
        }
        s->n_sub_scores = 3;
        memcpy(s->sub_scores, v, sizeof v);
        s->score = v[0] + v[1] - v[2];
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 256, *ni = realloc(idx, nc * sizeof *ni);
            if (!ni) {
                st = aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
                goto done;
            }
            idx = ni;
            cap = nc;
        }
        idx[n++] = m->n_samples - 1;
    }
    if (ferror(f)) {
        st = aqa_fail(AQA_EIO, "%s: read error", path);
        goto done;
    }
    st = ann_add_split(m, name, idx, n);
    idx = NULL;
done:
    fclose(f);
    free(idx);
    free(path);
    return st;
}

aqa_ann_manifest *aqa_ann_load_fisv(const char *dir) {
    aqa_ann_manifest *m;
    if (!dir) return aqa_fail_null("aqa_ann_load_fisv: dir is NULL");
    if (!(m = ann_new(AQA_ANN_FISV))) return NULL;
    if (read_list(m, dir, "train_dataset.txt", "train") || read_list(m, dir, "test_dataset.txt", "test") ||
        ann_build_index(m, dir)) {
        aqa_ann_free(m);
        return NULL;
    }
    return m;
}
