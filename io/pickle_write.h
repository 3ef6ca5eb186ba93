/* pickle_write.h: a writer for the subset of Python's pickle format (protocol 2) that the
 * FineDiving annotation files use, so aqa can write files that `pickle.load` reads back as the
 * dataset's own: dicts, lists, tuples, str, int, float, bool, None, and 1-D numpy arrays of int64
 * or float64.
 *
 * Values are emitted as a stream, containers bracketed by begin/end calls:
 *
 *     ```c run
 *     int64_t labels[5] = {0, 0, 1, 1, 2};
 *     aqa_pickle_writer *w = aqa_pkw_new();
 *     aqa_pkw_dict_begin(w);                                 // {('video', 3): array([0, 0, 1, 1, 2])}
 *       aqa_pkw_tuple_begin(w); aqa_pkw_str(w, "video"); aqa_pkw_int(w, 3); aqa_pkw_tuple_end(w);
 *       aqa_pkw_i64_array(w, labels, 5);
 *     aqa_pkw_dict_end(w);
 *     aqa_status st = aqa_pkw_save(w, "file.pkl");          // atomic
 *     aqa_pkw_free(w);
 *     if (st != AQA_OK) return 1;
 *     ```
 *
 * Encoding (what CPython 3 writes at protocol 2, minus the memo, which readers do not need):
 * PROTO 2; ints as BININT1/BININT2/BININT/LONG1 by size; floats as BINFLOAT; str as BINUNICODE
 * (must be valid UTF-8); dict as EMPTY_DICT MARK k v ... SETITEMS; list as EMPTY_LIST MARK ...
 * APPENDS; tuple as MARK ... TUPLE (TUPLE1-3 are not needed); numpy arrays exactly as numpy's
 * ndarray.__reduce__ gives them: numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')
 * followed by BUILD with (1, shape, numpy.dtype('<i8'|'<f8') with its BUILD state
 * (3, '<', None, None, None, -1, -1, 0), False, data), the data bytes pickled as Python 3 does at
 * protocol 2: _codecs.encode(<latin-1 text>, 'latin1').
 *
 * Errors are sticky: the first failure (no memory, invalid UTF-8, an unbalanced end, a dict with
 * an odd number of items) is recorded and every later call returns it; aqa_pkw_finish/save report
 * it with a message. */
#ifndef AQA_DATASETS_PICKLE_WRITE_H
#define AQA_DATASETS_PICKLE_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aqa_pickle_writer aqa_pickle_writer;

/* A new writer holding the PROTO 2 header; NULL (with an error) on no memory. */
aqa_pickle_writer *aqa_pkw_new(void);
void aqa_pkw_free(aqa_pickle_writer *w);

/* Scalars. */
aqa_status aqa_pkw_none(aqa_pickle_writer *w);
aqa_status aqa_pkw_bool(aqa_pickle_writer *w, int v);
aqa_status aqa_pkw_int(aqa_pickle_writer *w, int64_t v);
aqa_status aqa_pkw_float(aqa_pickle_writer *w, double v);
/* A str from NUL-terminated UTF-8 (AQA_EINVAL when it is not valid UTF-8). */
aqa_status aqa_pkw_str(aqa_pickle_writer *w, const char *s);
aqa_status aqa_pkw_str_n(aqa_pickle_writer *w, const char *s, size_t len);

/* Containers: every begin needs its end; dicts take alternating keys and values. */
aqa_status aqa_pkw_dict_begin(aqa_pickle_writer *w);
aqa_status aqa_pkw_dict_end(aqa_pickle_writer *w);
aqa_status aqa_pkw_list_begin(aqa_pickle_writer *w);
aqa_status aqa_pkw_list_end(aqa_pickle_writer *w);
aqa_status aqa_pkw_tuple_begin(aqa_pickle_writer *w);
aqa_status aqa_pkw_tuple_end(aqa_pickle_writer *w);

/* 1-D numpy arrays (dtype '<i8' / '<f8') of n elements (n may be 0). */
aqa_status aqa_pkw_i64_array(aqa_pickle_writer *w, const int64_t *v, size_t n);
aqa_status aqa_pkw_f64_array(aqa_pickle_writer *w, const double *v, size_t n);

/* Ends the stream (STOP) once exactly one top-level value was written and every container is
 * closed; *buf / *len receive the bytes, owned by the writer (valid until aqa_pkw_free).  After
 * finishing no more values can be added. */
aqa_status aqa_pkw_finish(aqa_pickle_writer *w, const uint8_t **buf, size_t *len);
/* Finishes and writes the bytes to `path` atomically (io/atomic_file.h). */
aqa_status aqa_pkw_save(aqa_pickle_writer *w, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_PICKLE_WRITE_H */
