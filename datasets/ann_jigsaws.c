/* ann_jigsaws.c: JIGSAWS surgical-skill annotations as prepared by USDL/MUSDL.
 *
 * label.pkl: dict trial ('Suturing_B001') -> 6 GRS sub-scores (1..5), target = their sum;
 * splits.pkl: dict task -> 4 folds (lists of trial names).  For four-fold cross-validation each
 * task T and fold k give the splits "T/k/test" (fold k) and "T/k/train" (the other folds). */
#include "datasets/annotations-impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static aqa_status read_labels(aqa_ann_manifest *m, const char *path, const aqa_pyobj *d) {
    size_t i;
    int k;
    if (d->type != AQA_PY_DICT)
        return aqa_fail(AQA_EFORMAT, "%s: expected a dict of trials, got a %s", path, aqa_pytype_name(d->type));
    for (i = 0; i < d->u.dict.len; i++) {
        const aqa_pyobj *key = d->u.dict.keys[i], *v = d->u.dict.values[i];
        aqa_ann_sample *s;
        double *vals;
        size_t n;
        if (key->type != AQA_PY_STR || !key->u.str.len || memchr(key->u.str.ptr, 0, key->u.str.len))
            return aqa_fail(AQA_EFORMAT, "%s: entry %zu: key is a %s, expected a trial name", path, i,
                            aqa_pytype_name(key->type));
        if (!(s = ann_add_sample(m))) return AQA_ENOMEM;
        if (!(s->key = ann_strdup(key->u.str.ptr)) || !(s->video = ann_strdup(key->u.str.ptr))) return AQA_ENOMEM;
        vals = aqa_pyobj_to_f64_array(v, "GRS scores", &n);
        if (!vals) return aqa_fail(AQA_EFORMAT, "%s: trial %s: value is not a list of numbers", path, s->key);
        if (n != AQA_ANN_MAX_SUBSCORES) {
            free(vals);
            return aqa_fail(AQA_EFORMAT, "%s: trial %s: %zu GRS scores, expected 6", path, s->key, n);
        }
        s->n_sub_scores = (int)n;
        s->score = 0;
        for (k = 0; k < (int)n; k++) {
            s->sub_scores[k] = vals[k];
            s->score += vals[k];
        }
        free(vals);
    }
    return ann_build_index(m, path);
}

/* Sample indices of one fold's trial names. */
static size_t *fold_indices(aqa_ann_manifest *m, const char *path, const char *task, size_t k,
                            const aqa_pyobj *fold, size_t *n) {
    size_t i, *idx;
    if (fold->type != AQA_PY_LIST && fold->type != AQA_PY_TUPLE) {
        aqa_fail(AQA_EFORMAT, "%s: task %s: fold %zu is a %s, expected a list", path, task, k,
                 aqa_pytype_name(fold->type));
        return NULL;
    }
    idx = malloc((fold->u.seq.len ? fold->u.seq.len : 1) * sizeof *idx);
    if (!idx) return aqa_fail_null("%s: out of memory", path);
    for (i = 0; i < fold->u.seq.len; i++) {
        const aqa_pyobj *t = fold->u.seq.items[i];
        long at = t->type == AQA_PY_STR ? ann_lookup(m, t->u.str.ptr) : -1;
        if (at < 0) {
            if (t->type == AQA_PY_STR)
                aqa_fail(AQA_EFORMAT, "%s: task %s fold %zu: trial '%s' is not in label.pkl", path, task, k,
                         t->u.str.ptr);
            else
                aqa_fail(AQA_EFORMAT, "%s: task %s fold %zu: entry %zu is a %s, expected a trial name", path,
                         task, k, i, aqa_pytype_name(t->type));
            free(idx);
            return NULL;
        }
        idx[i] = (size_t)at;
    }
    *n = fold->u.seq.len;
    return idx;
}

static aqa_status read_splits(aqa_ann_manifest *m, const char *path, const aqa_pyobj *d) {
    size_t t, k, j;
    if (d->type != AQA_PY_DICT)
        return aqa_fail(AQA_EFORMAT, "%s: expected a dict task -> folds, got a %s", path, aqa_pytype_name(d->type));
    for (t = 0; t < d->u.dict.len; t++) {
        const aqa_pyobj *tk = d->u.dict.keys[t], *folds = d->u.dict.values[t];
        const char *task;
        if (tk->type != AQA_PY_STR || tk->u.str.len > 64 || memchr(tk->u.str.ptr, 0, tk->u.str.len))
            return aqa_fail(AQA_EFORMAT, "%s: entry %zu: task key is not a short str", path, t);
        task = tk->u.str.ptr;
        if ((folds->type != AQA_PY_LIST && folds->type != AQA_PY_TUPLE) || folds->u.seq.len < 2)
            return aqa_fail(AQA_EFORMAT, "%s: task %s: expected a list of folds", path, task);
        for (k = 0; k < folds->u.seq.len; k++) {
            char name[96];
            size_t ntest, ntrain = 0, *test, *train;
            test = fold_indices(m, path, task, k, folds->u.seq.items[k], &ntest);
            if (!test) return AQA_EFORMAT;
            for (j = 0; j < folds->u.seq.len; j++) {
                const aqa_pyobj *f = folds->u.seq.items[j];
                if (j != k && (f->type == AQA_PY_LIST || f->type == AQA_PY_TUPLE)) ntrain += f->u.seq.len;
            }
            train = malloc((ntrain ? ntrain : 1) * sizeof *train);
            if (!train) {
                free(test);
                return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
            }
            ntrain = 0;
            for (j = 0; j < folds->u.seq.len; j++) {
                size_t nf, *f;
                if (j == k) continue;
                f = fold_indices(m, path, task, j, folds->u.seq.items[j], &nf);
                if (!f) {
                    free(test);
                    free(train);
                    return AQA_EFORMAT;
                }
                memcpy(train + ntrain, f, nf * sizeof *f);
                ntrain += nf;
                free(f);
            }
            snprintf(name, sizeof name, "%s/%zu/test", task, k);
            if (ann_add_split(m, name, test, ntest)) {
                free(train);
                return AQA_ENOMEM;
            }
            snprintf(name, sizeof name, "%s/%zu/train", task, k);
            if (ann_add_split(m, name, train, ntrain)) return AQA_ENOMEM;
        }
    }
    return AQA_OK;
}

aqa_ann_manifest *aqa_ann_load_jigsaws(const char *dir) {
    char *lpath = NULL, *spath = NULL;
    aqa_pyobj *labels = NULL, *splits = NULL;
    aqa_ann_manifest *m = NULL;
    if (!dir) return aqa_fail_null("aqa_ann_load_jigsaws: dir is NULL");
    if (!(labels = ann_load_pickle(dir, "label.pkl", &lpath))) goto fail;
    if (!(splits = ann_load_pickle(dir, "splits.pkl", &spath))) goto fail;
    if (!(m = ann_new(AQA_ANN_JIGSAWS))) goto fail;
    if (read_labels(m, lpath, labels) || read_splits(m, spath, splits)) goto fail;
    free(lpath);
    free(spath);
    aqa_pyobj_free(labels);
    aqa_pyobj_free(splits);
    return m;
fail:
    free(lpath);
    free(spath);
    aqa_pyobj_free(labels);
    aqa_pyobj_free(splits);
    aqa_ann_free(m);
    return NULL;
}
