/* ann_mtl_aqa.c: MTL-AQA annotations (Parmar & Morris, CVPR 2019).
 *
 * final_annotations_dict_with_dive_number.pkl: dict (video: int, dive: int) -> {'start_frame',
 * 'end_frame', 'difficulty', 'final_score', 'judge_scores' (numpy f8[7]), 'dive_number' ('407C'),
 * ...}; train_split_0.pkl / test_split_0.pkl: lists of such keys.  Sample key "VV_D" ("01_12"),
 * video folder "VV" (two digits, as the frame folders are named). */
#include "datasets/annotations-impl.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What a sample key is, for messages. */
#define PAIR "(video, dive) pair of small ints"

/* (int, int) tuple key -> its two ints; -1 when the key has another shape. */
static int int_pair(const aqa_pyobj *k, int64_t *a, int64_t *b) {
    if (k->type != AQA_PY_TUPLE || k->u.seq.len != 2 || k->u.seq.items[0]->type != AQA_PY_INT ||
        k->u.seq.items[1]->type != AQA_PY_INT)
        return -1;
    *a = k->u.seq.items[0]->u.i;
    *b = k->u.seq.items[1]->u.i;
    return 0;
}

static aqa_status read_sample(aqa_ann_manifest *m, const char *file, const aqa_pyobj *k, const aqa_pyobj *rec,
                              size_t entry) {
    int64_t vid, dive;
    char key[64], vname[32];
    aqa_ann_sample *s;
    if (int_pair(k, &vid, &dive) || vid < 0 || vid > 999999 || dive < 0 || dive > 999999)
        return aqa_fail(AQA_EFORMAT, "%s: entry %zu: key is not a " PAIR, file, entry);
    snprintf(vname, sizeof vname, "%02d", (int)vid);
    snprintf(key, sizeof key, "%02d_%d", (int)vid, (int)dive);
    if (!(s = ann_add_sample(m))) return AQA_ENOMEM;
    if (!(s->key = ann_strdup(key)) || !(s->video = ann_strdup(vname))) return AQA_ENOMEM;
    s->instance = dive;
    if (ann_get_int(file, key, rec, "start_frame", &s->start_frame) ||
        ann_get_int(file, key, rec, "end_frame", &s->end_frame) ||
        ann_get_double(file, key, rec, "final_score", &s->score) ||
        ann_get_double(file, key, rec, "difficulty", &s->difficulty) ||
        ann_get_doubles(file, key, rec, "judge_scores", s->judges, AQA_ANN_MAX_JUDGES, &s->n_judges) ||
        ann_get_str(file, key, rec, "dive_number", s->dive_number, sizeof s->dive_number))
        return AQA_EFORMAT;
    if (s->end_frame < s->start_frame)
        return aqa_fail(AQA_EFORMAT, "%s: sample %s: end_frame %lld < start_frame %lld", file, key,
                        (long long)s->end_frame, (long long)s->start_frame);
    return AQA_OK;
}

/* Whether a dive's final_score differs from difficulty x the sum of the middle three of its seven
 * judges (FINA's rule) by more than rounding: failed dives and typos of the release, kept. */
static bool score_off_rule(const aqa_ann_sample *s) {
    double j[AQA_ANN_MAX_JUDGES];
    if (s->n_judges != 7) return false;
    memcpy(j, s->judges, sizeof j);
    for (int a = 1; a < 7; a++) /* insertion sort of 7 */
        for (int b = a; b > 0 && j[b - 1] > j[b]; b--) {
            double t = j[b];
            j[b] = j[b - 1];
            j[b - 1] = t;
        }
    return fabs(s->difficulty * (j[2] + j[3] + j[4]) - s->score) > 0.05;
}

/* A split-file entry's sample key "<video, 2 digits>_<dive>". */
static int split_key(const aqa_pyobj *entry, char *buf, size_t n) {
    int64_t a, b;
    if (int_pair(entry, &a, &b) || a < 0 || a > 999999 || b < 0 || b > 999999) return -1;
    snprintf(buf, n, "%02d_%d", (int)a, (int)b);
    return 0;
}

aqa_ann_manifest *aqa_ann_load_mtl_aqa(const char *dir) {
    char *path = NULL;
    aqa_pyobj *d;
    aqa_ann_manifest *m;
    size_t i;
    if (!dir) return aqa_fail_null("aqa_ann_load_mtl_aqa: dir is NULL");
    d = ann_load_pickle(dir, "final_annotations_dict_with_dive_number.pkl", &path);
    if (!d) {
        free(path);
        return NULL;
    }
    m = ann_new(AQA_ANN_MTL_AQA);
    if (!m) goto fail;
    if (d->type != AQA_PY_DICT) {
        aqa_fail(AQA_EFORMAT, "%s: expected a dict of dives, got a %s", path, aqa_pytype_name(d->type));
        goto fail;
    }
    for (i = 0; i < d->u.dict.len; i++)
        if (read_sample(m, path, d->u.dict.keys[i], d->u.dict.values[i], i)) goto fail;
    size_t off = 0;
    for (i = 0; i < m->n_samples; i++) off += score_off_rule(&m->samples[i]);
    if (off && ann_note(m, "%s: final_score of %zu dive(s) differs from difficulty x the middle three judges by more "
                           "than 0.05 (kept as published)", path, off))
        goto fail;
    if (ann_build_index(m, path)) goto fail;
    if (ann_read_split(m, dir, "train_split_0.pkl", "train", PAIR, split_key) ||
        ann_read_split(m, dir, "test_split_0.pkl", "test", PAIR, split_key))
        goto fail;
    free(path);
    aqa_pyobj_free(d);
    return m;
fail:
    free(path);
    aqa_pyobj_free(d);
    aqa_ann_free(m);
    return NULL;
}
