/* text_tables.c: stage- and video-text tables from a fine-tuned or frozen CLIP text encoder; see
 * text_tables.h. */
#include "models/mvla/text_tables.h"

#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "models/mvla/stages.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

/* t taken out of its scope: the tables own it. */
static aqa_tensor *own(aqa_tensor *t) {
    if (t) aqa__disown(t);
    return t;
}

/* The text side of a CLIP model: everything but the image encoder and the logit scale. */
static bool is_text_side(const char *name) { return strncmp(name, "visual.", 7) != 0 && strcmp(name, "logit_scale") != 0; }

/* The text-side parameters of a model (the text side has no buffers), in state_dict order. */
typedef struct text_side {
    aqa_named_tensor *all; /* every named parameter of the model (owns the names) */
    int n_all;             /* entries of all */
    const char **names;    /* n borrowed names */
    aqa_tensor **tensors;  /* n borrowed tensors (malloc'd array) */
    int n;                 /* text-side parameters */
} text_side;

static void text_side_free(text_side *ts) {
    free(ts->names);
    free(ts->tensors);
    if (ts->all) aqa_named_tensors_free(ts->all, ts->n_all);
    memset(ts, 0, sizeof *ts);
}

/* Fills ts; returns the count or -1 (error recorded, ts empty). */
static int text_side_get(aqa_clip_model *m, text_side *ts) {
    memset(ts, 0, sizeof *ts);
    ts->n_all = aqa_module_named_tensors(&m->base, false, &ts->all);
    if (ts->n_all < 0) {
        ts->all = NULL;
        return -1;
    }
    ts->names = malloc(sizeof *ts->names * (size_t)(ts->n_all + 1));
    ts->tensors = malloc(sizeof *ts->tensors * (size_t)(ts->n_all + 1));
    if (!ts->names || !ts->tensors) {
        text_side_free(ts);
        aqa_fail(AQA_ENOMEM, "CLIP text tables: out of memory");
        return -1;
    }
    for (int i = 0; i < ts->n_all; i++)
        if (is_text_side(ts->all[i].name)) {
            ts->names[ts->n] = ts->all[i].name;
            ts->tensors[ts->n++] = ts->all[i].tensor;
        }
    return ts->n;
}

static bool ids_ok(const aqa_tensor *ids, const char *what) {
    if (ids && ids->dtype == AQA_I64 && ids->ndim == 2 && ids->shape[0] > 0) return true;
    char buf[64];
    aqa_fail(AQA_EINVAL, "CLIP text tables: %s token ids %s, expected int64 [C, ctx] with C >= 1", what,
             ids ? aqa_shape_str(ids, buf, sizeof buf) : "(missing)");
    return false;
}

aqa_mvla_text_tables *aqa_mvla_text_tables_new(aqa_clip_model *clip, const aqa_tensor *stage_ids,
                                               const aqa_tensor *video_ids, bool finetune) {
    if (!clip) return aqa_fail_null("aqa_mvla_text_tables_new: NULL model");
    if (!ids_ok(stage_ids, "stage") || !ids_ok(video_ids, "video")) return NULL;
    aqa_mvla_text_tables *t = calloc(1, sizeof *t);
    if (!t) return aqa_fail_null("aqa_mvla_text_tables_new: out of memory");
    t->clip = clip;
    t->finetune = finetune;
    t->stage_ids = aqa_clone((aqa_tensor *)stage_ids);
    t->video_ids = aqa_clone((aqa_tensor *)video_ids);
    if (t->stage_ids) own(t->stage_ids);
    if (t->video_ids) own(t->video_ids);
    text_side ts;
    if (!t->stage_ids || !t->video_ids || text_side_get(clip, &ts) < 0) {
        aqa_mvla_text_tables_free(t);
        return NULL;
    }
    for (int i = 0; i < ts.n; i++) aqa_requires_grad(ts.tensors[i], finetune);
    text_side_free(&ts);
    return t;
}

static void drop_cache(aqa_mvla_text_tables *t) {
    aqa_tensor_free(t->stage);
    aqa_tensor_free(t->video);
    t->stage = t->video = NULL;
}

void aqa_mvla_text_tables_free(aqa_mvla_text_tables *t) {
    if (!t) return;
    drop_cache(t);
    aqa_tensor_free(t->stage_ids);
    aqa_tensor_free(t->video_ids);
    free(t);
}

/* ids encoded on the model's device; frozen: without graph.  Owned by the open scope. */
static aqa_tensor *encode(aqa_mvla_text_tables *t, aqa_tensor *ids, bool frozen) {
    return aqa_clip_encode_text(t->clip, aqa_stage_on_device(ids, t->clip->positional_embedding), frozen);
}

aqa_status aqa_mvla_text_tables_get(aqa_mvla_text_tables *t, aqa_tensor **stage, aqa_tensor **video) {
    if (!t || !stage || !video) return aqa_fail(AQA_EINVAL, "aqa_mvla_text_tables_get: NULL argument");
    *stage = *video = NULL;
    if (t->finetune && aqa_is_grad_enabled()) {
        drop_cache(t); /* the weights are about to change */
        *stage = encode(t, t->stage_ids, false);
        *video = *stage ? encode(t, t->video_ids, false) : NULL;
        return *stage && *video ? AQA_OK : aqa_fail(aqa_last_status(), "CLIP text tables: %s", aqa_last_error());
    }
    if (!t->stage) {
        aqa_scope_begin();
        aqa_tensor *s = encode(t, t->stage_ids, true), *v = s ? encode(t, t->video_ids, true) : NULL;
        if (s && v) {
            t->stage = own(s);
            t->video = own(v);
        }
        aqa_scope_end();
        if (!t->stage) return aqa_fail(aqa_last_status(), "CLIP text tables: %s", aqa_last_error());
    }
    *stage = t->stage;
    *video = t->video;
    return AQA_OK;
}

int aqa_mvla_text_tables_parameters(aqa_mvla_text_tables *t, aqa_tensor ***out) {
    if (!t || !out) {
        aqa_fail(AQA_EINVAL, "aqa_mvla_text_tables_parameters: NULL argument");
        return -1;
    }
    *out = NULL;
    if (!t->finetune) return 0;
    text_side ts;
    int n = text_side_get(t->clip, &ts);
    if (n < 0) return -1;
    *out = ts.tensors; /* handed over */
    ts.tensors = NULL;
    text_side_free(&ts);
    return n;
}

aqa_status aqa_mvla_text_tables_save(aqa_mvla_text_tables *t, const char *path, int n_meta, const char *const *meta_keys,
                                     const char *const *meta_values) {
    if (!t || !path || n_meta < 0 || (n_meta && (!meta_keys || !meta_values)))
        return aqa_fail(AQA_EINVAL, "aqa_mvla_text_tables_save: NULL or bad argument");
    text_side ts;
    if (text_side_get(t->clip, &ts) < 0) return aqa_last_status();
    const char **mk = malloc(sizeof *mk * (size_t)(n_meta + 1)), **mv = malloc(sizeof *mv * (size_t)(n_meta + 1));
    aqa_status st = mk && mv ? AQA_OK : aqa_fail(AQA_ENOMEM, "aqa_mvla_text_tables_save: out of memory");
    if (!st) {
        mk[0] = "format";
        mv[0] = "aqa-clip-text-1";
        for (int i = 0; i < n_meta; i++) mk[i + 1] = meta_keys[i], mv[i + 1] = meta_values[i];
        st = aqa_save_tensors(path, ts.n, ts.names, ts.tensors, n_meta + 1, mk, mv);
    }
    free(mk);
    free(mv);
    text_side_free(&ts);
    return st;
}

aqa_status aqa_mvla_text_tables_load(aqa_mvla_text_tables *t, const char *path) {
    if (!t || !path) return aqa_fail(AQA_EINVAL, "aqa_mvla_text_tables_load: NULL argument");
    text_side ts;
    int n = text_side_get(t->clip, &ts);
    text_side_free(&ts);
    if (n < 0) return aqa_last_status();
    aqa_load_report rep;
    aqa_status st = aqa_module_load(&t->clip->base, path, false, NULL, NULL, &rep);
    if (st) return st;
    /* non-strict because the file holds the text side only: the visual side is "missing" */
    if (rep.n_loaded != n || rep.n_unexpected || rep.n_mismatched)
        return aqa_fail(AQA_EFORMAT, "%s: not the text side of this CLIP model (%d of %d text tensors loaded; %s)", path,
                        rep.n_loaded, n, rep.text);
    drop_cache(t);
    return AQA_OK;
}
