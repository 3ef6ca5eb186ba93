/* ann_finediving.c: FineDiving annotations (Xu et al., CVPR 2022), and the same layout written by
 * aqa's synthetic diving generator.
 *
 * FineDiving_fine-grained_annotation.pkl: dict (video: str, instance: int) -> {'action_type',
 *   'dive_score', 'difficulty', 'steps_transit_frames' (int64 array), 'frames_labels' (int64 array,
 *   one sub-action id per frame from start_frame), 'sub-action_types' ({id: name})};
 * FineDiving_coarse_annotation.pkl: same keys -> {'action_type', 'start_frame', 'end_frame',
 *   'dive_score', 'difficulty', 'judge_scores' (list of 3, 5 or 7)};
 * train_split.pkl / test_split.pkl: lists of keys;
 * Sub_action_Types_Table.pkl (optional): dict id -> name.
 * Samples follow the fine-grained file's order; key "video/instance".  score and difficulty come
 * from the fine-grained file (TSA regresses that dive_score), frames and judges from the coarse. */
#include "datasets/annotations-impl.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABEL_ID 4095 /* sub-action ids are small (1..42 in FineDiving) */

/* What a sample key is, for messages. */
#define PAIR "(video name, instance) pair"

/* (str, int) key -> "video/instance" in buf; -1 when the key has another shape. */
static int key_string(const aqa_pyobj *k, char *buf, size_t n, const char **video, int64_t *inst) {
    const aqa_pyobj *v, *i;
    if (k->type != AQA_PY_TUPLE || k->u.seq.len != 2) return -1;
    v = k->u.seq.items[0];
    i = k->u.seq.items[1];
    if (v->type != AQA_PY_STR || i->type != AQA_PY_INT || !v->u.str.len || v->u.str.len > 200 ||
        memchr(v->u.str.ptr, 0, v->u.str.len) || memchr(v->u.str.ptr, '/', v->u.str.len))
        return -1;
    snprintf(buf, n, "%s/%lld", v->u.str.ptr, (long long)i->u.i);
    if (video) *video = v->u.str.ptr;
    if (inst) *inst = i->u.i;
    return 0;
}

/* Records id -> name in the manifest's label table (the first name seen for an id wins). */
static aqa_status add_label(aqa_ann_manifest *m, const char *file, const char *key, const aqa_pyobj *id,
                            const aqa_pyobj *name) {
    int64_t i;
    if (id->type != AQA_PY_INT || id->u.i < 0 || id->u.i > MAX_LABEL_ID || name->type != AQA_PY_STR)
        return aqa_fail(AQA_EFORMAT, "%s: %s: sub-action types must map ids 0..%d to names", file, key,
                        MAX_LABEL_ID);
    i = id->u.i;
    if ((size_t)i >= m->n_label_names) {
        char **nl = realloc(m->label_names, (size_t)(i + 1) * sizeof *nl);
        if (!nl) return aqa_fail(AQA_ENOMEM, "%s: out of memory", file);
        memset(nl + m->n_label_names, 0, ((size_t)(i + 1) - m->n_label_names) * sizeof *nl);
        m->label_names = nl;
        m->n_label_names = (size_t)(i + 1);
    }
    if (!m->label_names[i] && !(m->label_names[i] = ann_strdup(name->u.str.ptr))) return AQA_ENOMEM;
    return AQA_OK;
}

/* Faults of the release's steps_transit_frames, counted over the dives (each dive once per kind). */
typedef struct repairs {
    size_t dives;        /* dives whose transits were derived from the labels */
    size_t missing;      /* held a -1 entry */
    size_t out_of_range; /* held an entry past the frame labels */
    size_t unordered;    /* entries not ascending */
    size_t disagree;     /* in range and ascending, but not where the labels change */
    size_t no_change;    /* labels that never change: no transit can be derived (left empty) */
    char example[64];    /* the first repaired dive's key */
} repairs;

/* steps_transit_frames[i] is the index of the last frame before the i-th change of label
 * (FORMATS.md).  Where the published entries are not exactly the label changes, the label changes
 * replace them; the fault is counted by kind. */
static aqa_status check_transits(aqa_ann_sample *s, repairs *rep) {
    size_t n = s->n_frame_labels, nc = 0, i;
    int64_t *chg = malloc((n ? n : 1) * sizeof *chg);
    if (!chg) return aqa_fail(AQA_ENOMEM, "annotations: out of memory");
    for (i = 0; i + 1 < n; i++)
        if (s->frame_labels[i] != s->frame_labels[i + 1]) chg[nc++] = (int64_t)i;
    bool same = nc == s->n_transit;
    for (i = 0; same && i < nc; i++) same = chg[i] == s->transit_frames[i];
    if (same) {
        free(chg);
        return AQA_OK;
    }
    bool missing = false, out = false, unordered = false;
    for (i = 0; i < s->n_transit; i++) {
        int64_t t = s->transit_frames[i];
        missing |= t == -1;
        out |= t < -1 || t >= (int64_t)n - 1;
        unordered |= i > 0 && t <= s->transit_frames[i - 1] && t != -1 && s->transit_frames[i - 1] != -1;
    }
    rep->missing += missing;
    rep->out_of_range += out;
    rep->unordered += unordered;
    rep->disagree += !missing && !out && !unordered;
    rep->no_change += nc == 0;
    if (!rep->dives++) snprintf(rep->example, sizeof rep->example, "%.60s", s->key);
    free(s->transit_frames);
    s->transit_frames = chg;
    s->n_transit = nc;
    s->transit_repaired = 1;
    return AQA_OK;
}

static aqa_status read_dive(aqa_ann_manifest *m, const char *fpath, const char *cpath, const aqa_pyobj *coarse,
                            const aqa_pyobj *k, const aqa_pyobj *fine, size_t entry, repairs *rep) {
    char key[256];
    const char *video;
    int64_t inst;
    const aqa_pyobj *crec, *types;
    aqa_ann_sample *s;
    size_t i;
    if (key_string(k, key, sizeof key, &video, &inst))
        return aqa_fail(AQA_EFORMAT, "%s: entry %zu: key is not a " PAIR, fpath, entry);
    if (!(s = ann_add_sample(m))) return AQA_ENOMEM;
    if (!(s->key = ann_strdup(key)) || !(s->video = ann_strdup(video))) return AQA_ENOMEM;
    s->instance = inst;
    if (ann_get_str(fpath, key, fine, "action_type", s->dive_number, sizeof s->dive_number) ||
        ann_get_double(fpath, key, fine, "dive_score", &s->score) ||
        ann_get_double(fpath, key, fine, "difficulty", &s->difficulty))
        return AQA_EFORMAT;
    if (!(s->frame_labels = ann_get_i64s(fpath, key, fine, "frames_labels", &s->n_frame_labels)) ||
        !(s->transit_frames = ann_get_i64s(fpath, key, fine, "steps_transit_frames", &s->n_transit)))
        return AQA_EFORMAT;
    if (!s->n_frame_labels) return aqa_fail(AQA_EFORMAT, "%s: sample %s: 'frames_labels' is empty", fpath, key);
    if (check_transits(s, rep)) return AQA_ENOMEM;
    types = aqa_pydict_get_str(fine, "sub-action_types");
    if (types) {
        if (types->type != AQA_PY_DICT)
            return aqa_fail(AQA_EFORMAT, "%s: sample %s: 'sub-action_types' is a %s, expected a dict", fpath, key,
                            aqa_pytype_name(types->type));
        for (i = 0; i < types->u.dict.len; i++)
            if (add_label(m, fpath, key, types->u.dict.keys[i], types->u.dict.values[i])) return AQA_EFORMAT;
    }
    crec = aqa_pydict_get(coarse, k);
    if (!crec) return aqa_fail(AQA_EFORMAT, "%s: dive %s (in the fine-grained file) is missing", cpath, key);
    if (ann_get_int(cpath, key, crec, "start_frame", &s->start_frame) ||
        ann_get_int(cpath, key, crec, "end_frame", &s->end_frame) ||
        ann_get_doubles(cpath, key, crec, "judge_scores", s->judges, AQA_ANN_MAX_JUDGES, &s->n_judges))
        return AQA_EFORMAT;
    if (s->end_frame < s->start_frame)
        return aqa_fail(AQA_EFORMAT, "%s: sample %s: end_frame %lld < start_frame %lld", cpath, key,
                        (long long)s->end_frame, (long long)s->start_frame);
    return AQA_OK;
}

/* A split-file entry's sample key "<video>/<instance>". */
static int split_key(const aqa_pyobj *entry, char *buf, size_t n) { return key_string(entry, buf, n, NULL, NULL); }

/* Optional Sub_action_Types_Table.pkl: adds names for ids no dive listed. */
static aqa_status read_types_table(aqa_ann_manifest *m, const char *dir) {
    char *path = ann_path(dir, "Sub_action_Types_Table.pkl");
    FILE *f;
    aqa_pyobj *t;
    size_t i;
    aqa_status st = AQA_OK;
    if (!path) return AQA_ENOMEM;
    f = fopen(path, "rb");
    if (!f) { /* optional file */
        free(path);
        return AQA_OK;
    }
    fclose(f);
    t = aqa_pickle_load(path);
    if (!t) {
        free(path);
        return aqa_last_status();
    }
    if (t->type != AQA_PY_DICT) st = aqa_fail(AQA_EFORMAT, "%s: expected a dict id -> name", path);
    for (i = 0; !st && i < t->u.dict.len; i++) st = add_label(m, path, "table", t->u.dict.keys[i], t->u.dict.values[i]);
    aqa_pyobj_free(t);
    free(path);
    return st;
}

aqa_ann_manifest *aqa_ann_load_finediving(const char *dir) {
    char *fpath = NULL, *cpath = NULL;
    aqa_pyobj *fine = NULL, *coarse = NULL;
    aqa_ann_manifest *m = NULL;
    size_t i;
    if (!dir) return aqa_fail_null("aqa_ann_load_finediving: dir is NULL");
    if (!(fine = ann_load_pickle(dir, "FineDiving_fine-grained_annotation.pkl", &fpath))) goto fail;
    if (!(coarse = ann_load_pickle(dir, "FineDiving_coarse_annotation.pkl", &cpath))) goto fail;
    if (!(m = ann_new(AQA_ANN_FINEDIVING))) goto fail;
    if (fine->type != AQA_PY_DICT) {
        aqa_fail(AQA_EFORMAT, "%s: expected a dict of dives, got a %s", fpath, aqa_pytype_name(fine->type));
        goto fail;
    }
    if (coarse->type != AQA_PY_DICT) {
        aqa_fail(AQA_EFORMAT, "%s: expected a dict of dives, got a %s", cpath, aqa_pytype_name(coarse->type));
        goto fail;
    }
    repairs rep;
    memset(&rep, 0, sizeof rep);
    for (i = 0; i < fine->u.dict.len; i++)
        if (read_dive(m, fpath, cpath, coarse, fine->u.dict.keys[i], fine->u.dict.values[i], i, &rep)) goto fail;
    m->n_repaired = rep.dives;
    if (rep.dives &&
        ann_note(m, "%s: steps_transit_frames of %zu dive(s) (first %s) derived from frames_labels: %zu with a -1 "
                    "entry, %zu past the last frame, %zu not ascending, %zu elsewhere than the labels change%s",
                 fpath, rep.dives, rep.example, rep.missing, rep.out_of_range, rep.unordered, rep.disagree,
                 rep.no_change ? "; some dives' labels never change (no transit)" : ""))
        goto fail;
    if (ann_build_index(m, fpath) || ann_read_split(m, dir, "train_split.pkl", "train", PAIR, split_key) ||
        ann_read_split(m, dir, "test_split.pkl", "test", PAIR, split_key) || read_types_table(m, dir))
        goto fail;
    free(fpath);
    free(cpath);
    aqa_pyobj_free(fine);
    aqa_pyobj_free(coarse);
    return m;
fail:
    free(fpath);
    free(cpath);
    aqa_pyobj_free(fine);
    aqa_pyobj_free(coarse);
    aqa_ann_free(m);
    return NULL;
}
