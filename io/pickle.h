/* pickle.h: a reader for the subset of Python's pickle format that AQA annotation files use.
 *
 * Reads protocols 0-5 (no out-of-band buffers) into a small tagged value tree: None, bool, int
 * (64-bit), float, str, bytes, list, tuple, dict, and numpy arrays and scalars (the pickle calls
 * `numpy.core.multiarray._reconstruct` / `scalar`, `numpy.dtype`; numpy 2's `numpy._core` path too).
 * Python 2 `str` values (STRING, BINSTRING) are read as AQA_PY_STR holding the raw bytes.
 * Everything else (arbitrary classes, persistent ids, extension codes, integers beyond 64 bits,
 * object/string/structured numpy dtypes) is refused with a message naming the file, the opcode
 * and its byte offset, never guessed.  Every read is bounded by the input length, so a truncated or
 * corrupt file gives an error (AQA_EFORMAT), never a crash.
 *
 * Ownership: aqa_pickle_load() returns the root of a document; every value reachable from it
 * belongs to that document (values shared through the pickle memo appear several times in the
 * tree but are stored once) and aqa_pyobj_free(root) releases all of them at once. */
#ifndef AQA_DATASETS_PICKLE_H
#define AQA_DATASETS_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_pytype {
    AQA_PY_NONE,
    AQA_PY_BOOL,
    AQA_PY_INT,
    AQA_PY_FLOAT,
    AQA_PY_STR,     /* UTF-8 text (or a Python 2 byte string) */
    AQA_PY_BYTES,
    AQA_PY_LIST,
    AQA_PY_TUPLE,
    AQA_PY_DICT,
    AQA_PY_NDARRAY, /* numpy.ndarray of a numeric dtype */
    AQA_PY_DTYPE,   /* a numpy.dtype object (as a value; arrays carry their dtype in .arr) */
    AQA_PY_GLOBAL   /* a reference to one of the supported callables/classes (internal use) */
} aqa_pytype;

/* Element types of numpy arrays; values are stored in native (little-endian host) byte order. */
typedef enum aqa_npdtype {
    AQA_NP_BOOL, /* 'b1', 1 byte */
    AQA_NP_I1,
    AQA_NP_I2,
    AQA_NP_I4,
    AQA_NP_I8,
    AQA_NP_U1,
    AQA_NP_U2,
    AQA_NP_U4,
    AQA_NP_U8,
    AQA_NP_F4,
    AQA_NP_F8
} aqa_npdtype;

#define AQA_NDARRAY_MAXDIM 16

struct aqa_pydoc; /* the document that owns a tree's values (private) */

typedef struct aqa_pyobj {
    aqa_pytype type;
    struct aqa_pydoc *doc; /* owning document (private) */
    union {
        int b;      /* AQA_PY_BOOL: 0 or 1 */
        int64_t i;  /* AQA_PY_INT */
        double f;   /* AQA_PY_FLOAT */
        struct {    /* AQA_PY_STR, AQA_PY_BYTES */
            char *ptr;  /* len bytes, followed by a NUL so text can be used as a C string */
            size_t len; /* length in bytes (a STR may contain NULs only if the file put them there) */
        } str;
        struct {    /* AQA_PY_LIST, AQA_PY_TUPLE */
            struct aqa_pyobj **items;
            size_t len;
            size_t cap; /* allocated slots (private) */
        } seq;
        struct {    /* AQA_PY_DICT, in insertion order like Python */
            struct aqa_pyobj **keys;
            struct aqa_pyobj **values;
            size_t len;
            size_t cap;       /* allocated entries (private) */
            uint32_t *index;  /* open-addressing hash index: entry + 1, 0 = empty (private) */
            size_t index_cap; /* slots in index, a power of two (private) */
        } dict;
        struct {    /* AQA_PY_NDARRAY */
            aqa_npdtype dtype;
            int ndim;
            int64_t shape[AQA_NDARRAY_MAXDIM];
            int64_t size; /* number of elements (product of shape) */
            void *data;   /* size elements, C order (Fortran-ordered pickles are transposed) */
        } arr;
        struct {    /* AQA_PY_DTYPE */
            aqa_npdtype dtype;
            int big_endian; /* from the dtype's pickled state ('>') */
        } dt;
        int global; /* AQA_PY_GLOBAL: which callable (private enumeration in pickle.c) */
    } u;
} aqa_pyobj;

/* Reads the pickle file at `path`.  NULL on failure (aqa_last_error() names the file, and for a
 * format problem the opcode and byte offset). */
aqa_pyobj *aqa_pickle_load(const char *path);
/* Same, from memory; `name` is used in messages. */
aqa_pyobj *aqa_pickle_loads(const void *buf, size_t len, const char *name);
/* Frees the document that `root` (a value returned by aqa_pickle_load/loads) belongs to. NULL ok. */
void aqa_pyobj_free(aqa_pyobj *root);

/* "dict", "ndarray", ... */
const char *aqa_pytype_name(aqa_pytype t);
/* "f8", "i8", ... and the element size in bytes. */
const char *aqa_npdtype_name(aqa_npdtype t);
size_t aqa_npdtype_size(aqa_npdtype t);

/* Dict lookups with Python key equality (1 == 1.0 == True).  NULL when `d` is not a dict or has
 * no such key; these do not record an error. */
const aqa_pyobj *aqa_pydict_get(const aqa_pyobj *d, const aqa_pyobj *key);
const aqa_pyobj *aqa_pydict_get_str(const aqa_pyobj *d, const char *key);
const aqa_pyobj *aqa_pydict_get_int(const aqa_pyobj *d, int64_t key);
/* Keys that are 2-tuples: (str, int) as in FineDiving and (int, int) as in MTL-AQA. */
const aqa_pyobj *aqa_pydict_get_str_int(const aqa_pyobj *d, const char *a, int64_t b);
const aqa_pyobj *aqa_pydict_get_int_int(const aqa_pyobj *d, int64_t a, int64_t b);

/* Python equality of two values that can be dict keys (None, bool, int, float, str, bytes and
 * tuples of these); other values compare unequal. */
int aqa_pyobj_key_equal(const aqa_pyobj *a, const aqa_pyobj *b);

/* Numeric conversions: bool/int/float, and an ndarray of exactly one element.  AQA_EINVAL for
 * other values (the message uses `what` to name the value). */
aqa_status aqa_pyobj_to_double(const aqa_pyobj *o, const char *what, double *out);
aqa_status aqa_pyobj_to_int64(const aqa_pyobj *o, const char *what, int64_t *out);
/* Copies the elements of a numeric sequence (ndarray of any numeric dtype, or list/tuple of
 * bool/int/float) into a new malloc'd array; *n receives the count.  Integers requested from float
 * data must be integral.  NULL + error otherwise (an empty sequence gives a non-NULL array). */
double *aqa_pyobj_to_f64_array(const aqa_pyobj *o, const char *what, size_t *n);
int64_t *aqa_pyobj_to_i64_array(const aqa_pyobj *o, const char *what, size_t *n);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_PICKLE_H */
