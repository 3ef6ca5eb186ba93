/* annotations.c: the manifest type shared by all annotation loaders (allocation, lookup, free,
 * and the checked field accessors the loaders use to read pickled records). */
#include "datasets/annotations-impl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Private part of a manifest: a sorted key index for ann_lookup(). */
typedef struct {
    aqa_ann_manifest pub;
    size_t cap_samples, cap_splits;
    size_t *order; /* sample indices sorted by key (NULL until ann_build_index) */
} manifest_priv;

aqa_ann_manifest *ann_new(aqa_ann_dataset d) {
    manifest_priv *p = calloc(1, sizeof *p);
    if (!p) return aqa_fail_null("annotations: out of memory");
    p->pub.dataset = d;
    if (!(p->pub.notes = calloc(1, 1))) {
        free(p);
        return aqa_fail_null("annotations: out of memory");
    }
    return &p->pub;
}

aqa_ann_sample *ann_add_sample(aqa_ann_manifest *m) {
    manifest_priv *p = (manifest_priv *)m;
    aqa_ann_sample *s;
    if (m->n_samples == p->cap_samples) {
        size_t nc = p->cap_samples ? p->cap_samples * 2 : 64;
        aqa_ann_sample *ns = realloc(m->samples, nc * sizeof *ns);
        if (!ns) return aqa_fail_null("annotations: out of memory for %zu samples", nc);
        m->samples = ns;
        p->cap_samples = nc;
    }
    s = &m->samples[m->n_samples++];
    memset(s, 0, sizeof *s);
    s->instance = s->start_frame = s->end_frame = -1;
    return s;
}

aqa_status ann_add_split(aqa_ann_manifest *m, const char *name, size_t *idx, size_t n) {
    manifest_priv *p = (manifest_priv *)m;
    char *nm = ann_strdup(name);
    if (!nm) {
        free(idx);
        return AQA_ENOMEM;
    }
    if (m->n_splits == p->cap_splits) {
        size_t nc = p->cap_splits ? p->cap_splits * 2 : 8;
        aqa_ann_split *ns = realloc(m->splits, nc * sizeof *ns);
        if (!ns) {
            free(nm);
            free(idx);
            return aqa_fail(AQA_ENOMEM, "annotations: out of memory");
        }
        m->splits = ns;
        p->cap_splits = nc;
    }
    m->splits[m->n_splits].name = nm;
    m->splits[m->n_splits].idx = idx;
    m->splits[m->n_splits].n = n;
    m->n_splits++;
    return AQA_OK;
}

aqa_status ann_note(aqa_ann_manifest *m, const char *fmt, ...) {
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    size_t old = m->notes ? strlen(m->notes) : 0, n = strlen(line);
    char *s = realloc(m->notes, old + n + 2);
    if (!s) return aqa_fail(AQA_ENOMEM, "annotations: out of memory");
    memcpy(s + old, line, n);
    s[old + n] = '\n';
    s[old + n + 1] = 0;
    m->notes = s;
    return AQA_OK;
}

char *ann_strdup(const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) aqa_fail(AQA_ENOMEM, "annotations: out of memory");
    return d;
}

char *ann_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) return aqa_fail_null("annotations: out of memory");
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

aqa_pyobj *ann_load_pickle(const char *dir, const char *name, char **path) {
    *path = ann_path(dir, name);
    if (!*path) return NULL;
    return aqa_pickle_load(*path);
}

/* qsort entries of the key index (the key pointer travels with the index, so the comparison
 * needs no global context and loaders stay thread-safe). */
typedef struct {
    const char *key;
    size_t idx;
} key_entry;

static int cmp_key(const void *a, const void *b) {
    return strcmp(((const key_entry *)a)->key, ((const key_entry *)b)->key);
}

aqa_status ann_build_index(aqa_ann_manifest *m, const char *where) {
    manifest_priv *p = (manifest_priv *)m;
    key_entry *e = malloc((m->n_samples ? m->n_samples : 1) * sizeof *e);
    size_t i;
    if (!e) return aqa_fail(AQA_ENOMEM, "annotations: out of memory");
    for (i = 0; i < m->n_samples; i++) {
        e[i].key = m->samples[i].key;
        e[i].idx = i;
    }
    qsort(e, m->n_samples, sizeof *e, cmp_key);
    for (i = 1; i < m->n_samples; i++)
        if (strcmp(e[i - 1].key, e[i].key) == 0) {
            aqa_status st = aqa_fail(AQA_EFORMAT, "%s: %s sample key '%s' appears twice", where,
                                     aqa_ann_dataset_name(m->dataset), e[i].key);
            free(e);
            return st;
        }
    free(p->order);
    p->order = malloc((m->n_samples ? m->n_samples : 1) * sizeof *p->order);
    if (!p->order) {
        free(e);
        return aqa_fail(AQA_ENOMEM, "annotations: out of memory");
    }
    for (i = 0; i < m->n_samples; i++) p->order[i] = e[i].idx;
    free(e);
    return AQA_OK;
}

long ann_lookup(const aqa_ann_manifest *m, const char *key) {
    const manifest_priv *p = (const manifest_priv *)m;
    size_t lo = 0, hi = m->n_samples;
    if (!p->order) {
        size_t i;
        for (i = 0; i < m->n_samples; i++)
            if (strcmp(m->samples[i].key, key) == 0) return (long)i;
        return -1;
    }
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->samples[p->order[mid]].key, key);
        if (c == 0) return (long)p->order[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -1;
}

aqa_status ann_read_split(aqa_ann_manifest *m, const char *dir, const char *fname, const char *name,
                          const char *what, ann_split_key_fn key_of) {
    char *path = NULL, key[256];
    aqa_pyobj *l = ann_load_pickle(dir, fname, &path);
    size_t *idx = NULL, i;
    aqa_status st;
    if (!l) {
        free(path);
        return aqa_last_status();
    }
    if (l->type != AQA_PY_LIST && l->type != AQA_PY_TUPLE) {
        st = aqa_fail(AQA_EFORMAT, "%s: expected a list of keys (each a %s), got a %s", path, what,
                      aqa_pytype_name(l->type));
        goto done;
    }
    idx = malloc((l->u.seq.len ? l->u.seq.len : 1) * sizeof *idx);
    if (!idx) {
        st = aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (i = 0; i < l->u.seq.len; i++) {
        long at;
        if (key_of(l->u.seq.items[i], key, sizeof key)) {
            st = aqa_fail(AQA_EFORMAT, "%s: entry %zu is not a %s", path, i, what);
            goto done;
        }
        if ((at = ann_lookup(m, key)) < 0) {
            st = aqa_fail(AQA_EFORMAT, "%s: key %s is not in the annotations", path, key);
            goto done;
        }
        idx[i] = (size_t)at;
    }
    st = ann_add_split(m, name, idx, l->u.seq.len);
    idx = NULL;
done:
    free(idx);
    free(path);
    aqa_pyobj_free(l);
    return st;
}

long aqa_ann_find(const aqa_ann_manifest *m, const char *key) {
    return m && key ? ann_lookup(m, key) : -1;
}

const aqa_ann_split *aqa_ann_find_split(const aqa_ann_manifest *m, const char *name) {
    size_t i;
    if (!m || !name) return NULL;
    for (i = 0; i < m->n_splits; i++)
        if (strcmp(m->splits[i].name, name) == 0) return &m->splits[i];
    return NULL;
}

const char *aqa_ann_dataset_name(aqa_ann_dataset d) {
    switch (d) {
    case AQA_ANN_MTL_AQA: return "MTL-AQA";
    case AQA_ANN_JIGSAWS: return "JIGSAWS";
    case AQA_ANN_FISV: return "Fis-V";
    case AQA_ANN_FINEDIVING: return "FineDiving";
    }
    return "?";
}

void aqa_ann_free(aqa_ann_manifest *m) {
    manifest_priv *p = (manifest_priv *)m;
    size_t i;
    if (!m) return;
    for (i = 0; i < m->n_samples; i++) {
        free(m->samples[i].key);
        free(m->samples[i].video);
        free(m->samples[i].frame_labels);
        free(m->samples[i].transit_frames);
    }
    for (i = 0; i < m->n_splits; i++) {
        free(m->splits[i].name);
        free(m->splits[i].idx);
    }
    for (i = 0; i < m->n_label_names; i++) free(m->label_names[i]);
    free(m->label_names);
    free(m->notes);
    free(m->samples);
    free(m->splits);
    free(p->order);
    free(p);
}

/* ---- checked field access ---- */

/* Prefixes the last error (which names the field) with the file and sample; copies it first
 * because aqa_fail formats into the buffer aqa_last_error() points at. */
static aqa_status rewrap(const char *file, const char *key) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", aqa_last_error());
    return aqa_fail(AQA_EFORMAT, "%s: sample %s: %s", file, key, msg);
}

const aqa_pyobj *ann_field(const char *file, const char *key, const aqa_pyobj *rec, const char *field) {
    const aqa_pyobj *v;
    if (!rec || rec->type != AQA_PY_DICT) {
        aqa_fail(AQA_EFORMAT, "%s: sample %s: record is a %s, not a dict", file, key,
                 rec ? aqa_pytype_name(rec->type) : "missing value");
        return NULL;
    }
    v = aqa_pydict_get_str(rec, field);
    if (!v) aqa_fail(AQA_EFORMAT, "%s: sample %s: missing field '%s'", file, key, field);
    return v;
}

aqa_status ann_get_double(const char *file, const char *key, const aqa_pyobj *rec, const char *field,
                          double *out) {
    const aqa_pyobj *v = ann_field(file, key, rec, field);
    if (!v) return AQA_EFORMAT;
    if (v->type != AQA_PY_INT && v->type != AQA_PY_FLOAT && !(v->type == AQA_PY_NDARRAY && v->u.arr.size == 1))
        return aqa_fail(AQA_EFORMAT, "%s: sample %s: field '%s' is a %s, expected a number", file, key, field,
                        aqa_pytype_name(v->type));
    if (aqa_pyobj_to_double(v, field, out)) return AQA_EFORMAT;
    return AQA_OK;
}

aqa_status ann_get_int(const char *file, const char *key, const aqa_pyobj *rec, const char *field,
                       int64_t *out) {
    const aqa_pyobj *v = ann_field(file, key, rec, field);
    if (!v) return AQA_EFORMAT;
    if (v->type != AQA_PY_INT && !(v->type == AQA_PY_NDARRAY && v->u.arr.size == 1))
        return aqa_fail(AQA_EFORMAT, "%s: sample %s: field '%s' is a %s, expected an integer", file, key, field,
                        aqa_pytype_name(v->type));
    if (aqa_pyobj_to_int64(v, field, out)) return rewrap(file, key);
    return AQA_OK;
}

aqa_status ann_get_str(const char *file, const char *key, const aqa_pyobj *rec, const char *field, char *buf,
                       size_t n) {
    const aqa_pyobj *v = ann_field(file, key, rec, field);
    if (!v) return AQA_EFORMAT;
    if (v->type != AQA_PY_STR)
        return aqa_fail(AQA_EFORMAT, "%s: sample %s: field '%s' is a %s, expected a str", file, key, field,
                        aqa_pytype_name(v->type));
    if (v->u.str.len >= n || memchr(v->u.str.ptr, 0, v->u.str.len))
        return aqa_fail(AQA_EFORMAT, "%s: sample %s: field '%s' is too long (%zu bytes, at most %zu)", file, key,
                        field, v->u.str.len, n - 1);
    memcpy(buf, v->u.str.ptr, v->u.str.len + 1);
    return AQA_OK;
}

aqa_status ann_get_doubles(const char *file, const char *key, const aqa_pyobj *rec, const char *field,
                           double *out, int max, int *count) {
    const aqa_pyobj *v = ann_field(file, key, rec, field);
    double *vals;
    size_t n;
    if (!v) return AQA_EFORMAT;
    vals = aqa_pyobj_to_f64_array(v, field, &n);
    if (!vals) return rewrap(file, key);
    if (n < 1 || n > (size_t)max) {
        free(vals);
        return aqa_fail(AQA_EFORMAT, "%s: sample %s: field '%s' has %zu values, expected 1..%d", file, key, field,
                        n, max);
    }
    memcpy(out, vals, n * sizeof *out);
    *count = (int)n;
    free(vals);
    return AQA_OK;
}

int64_t *ann_get_i64s(const char *file, const char *key, const aqa_pyobj *rec, const char *field, size_t *n) {
    const aqa_pyobj *v = ann_field(file, key, rec, field);
    int64_t *vals;
    if (!v) return NULL;
    vals = aqa_pyobj_to_i64_array(v, field, n);
    if (!vals) rewrap(file, key);
    return vals;
}
