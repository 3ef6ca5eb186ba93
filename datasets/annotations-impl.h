/* annotations-impl.h: helpers shared by the per-dataset annotation loaders (private). */
#ifndef AQA_DATASETS_ANNOTATIONS_IMPL_H
#define AQA_DATASETS_ANNOTATIONS_IMPL_H

#include "datasets/annotations.h"
#include "io/pickle.h"

/* A new empty manifest, or NULL + error. */
aqa_ann_manifest *ann_new(aqa_ann_dataset d);
/* Appends a zeroed sample (instance/start/end = -1) and returns it, or NULL + error. */
aqa_ann_sample *ann_add_sample(aqa_ann_manifest *m);
/* Appends a split named `name` that takes ownership of idx (malloc'd, n entries). */
aqa_status ann_add_split(aqa_ann_manifest *m, const char *name, size_t *idx, size_t n);
/* strdup that records an error on failure. */
char *ann_strdup(const char *s);
/* Appends one line to the manifest's notes (printf-style; the newline is added). */
aqa_status ann_note(aqa_ann_manifest *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "dir/name" in a malloc'd string. */
char *ann_path(const char *dir, const char *name);
/* Loads dir/name as a pickle; *path receives the malloc'd path for messages. */
aqa_pyobj *ann_load_pickle(const char *dir, const char *name, char **path);
/* Builds a key -> sample index table so that ann_lookup() is fast; call after the samples exist.
 * A duplicate key is an error naming `where` (the file or folder read). */
aqa_status ann_build_index(aqa_ann_manifest *m, const char *where);
long ann_lookup(const aqa_ann_manifest *m, const char *key);
/* Writes the sample key of one split-file entry into buf (n bytes); -1 when it is malformed. */
typedef int (*ann_split_key_fn)(const aqa_pyobj *entry, char *buf, size_t n);
/* Reads dir/fname, a pickled list of sample keys, into a split named `name` (after
 * ann_build_index).  key_of converts each entry; `what` describes a well-formed entry in
 * messages ("(video, dive) pair of small ints"). */
aqa_status ann_read_split(aqa_ann_manifest *m, const char *dir, const char *fname, const char *name,
                          const char *what, ann_split_key_fn key_of);

/* Field access with messages "FILE: sample KEY: field 'F': ...". */
const aqa_pyobj *ann_field(const char *file, const char *key, const aqa_pyobj *rec, const char *field);
aqa_status ann_get_double(const char *file, const char *key, const aqa_pyobj *rec, const char *field,
                          double *out);
aqa_status ann_get_int(const char *file, const char *key, const aqa_pyobj *rec, const char *field,
                       int64_t *out);
/* Copies a str field into buf (size n); error when absent, not a str or too long. */
aqa_status ann_get_str(const char *file, const char *key, const aqa_pyobj *rec, const char *field, char *buf,
                       size_t n);
/* Copies a numeric sequence field (1..max values) into out; *count receives the length. */
aqa_status ann_get_doubles(const char *file, const char *key, const aqa_pyobj *rec, const char *field,
                           double *out, int max, int *count);
/* A malloc'd copy of an integer sequence field (ndarray or list); NULL + error. */
int64_t *ann_get_i64s(const char *file, const char *key, const aqa_pyobj *rec, const char *field, size_t *n);

#endif /* AQA_DATASETS_ANNOTATIONS_IMPL_H */
