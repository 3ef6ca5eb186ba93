/* safetensors.h: read and write safetensors files at the byte level (no tensor types).
 *
 * Format (Hugging Face safetensors): an 8-byte little-endian u64 N, N bytes of UTF-8 JSON (may be
 * padded with trailing spaces), then the byte buffer.  The JSON maps each tensor name to
 * {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]} with offsets relative to the
 * start of the buffer; the optional key "__metadata__" maps strings to strings.  Data are
 * little-endian, C order.
 *
 * Reading: aqa_st_open maps the file (read() into memory when mmap is impossible, or when the
 * environment sets AQA_ST_NO_MMAP=1, which tests use to cover that path) and validates
 * everything before returning, with the reference implementation's rules: N <= 100 MB and
 * 8 + N <= file size; the header is valid UTF-8 JSON whose top level is an object; each dtype is
 * known; shape entries are non-negative integers; product(shape) * itemsize == end - begin; the
 * tensors' byte ranges, sorted by begin, are contiguous from 0 (no overlap, no gap) and end
 * exactly at the end of the file; no tensor name or metadata key appears twice.  Errors name the file and, where there
 * is one, the tensor.  Afterwards every accessor is a plain lookup and cannot fail on bad data.
 * A file replaced by rename while open (as aqa's writers do) is harmless: the mapping keeps the
 * old content.  A file truncated in place by another program while mapped can raise SIGBUS,
 * as with any mmap reader.
 *
 * Writing: a builder collects (name, dtype, shape, pointer) and writes the file atomically
 * (io/atomic_file.h).  Layout chosen to match the official writer (safetensors 0.4+): metadata
 * first in the header, tensors ordered by decreasing itemsize then by name (byte-wise), the
 * JSON header padded with spaces to a multiple of 8 bytes, so that every tensor's data is
 * aligned to its itemsize within the file.  Readers accept any order.
 *
 * The tensor-level wrapper lives elsewhere; this module knows nothing about aqa tensors. */
#ifndef AQA_SAFETENSORS_H
#define AQA_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element types of the format, named as in the file ("F32", "BF16", ...) and listed in the
 * reference implementation's order of increasing alignment (the writer sorts by it).  Sub-byte
 * types (F4, F6_*) are not supported: opening a file with them fails with AQA_EUNSUPPORTED. */
typedef enum aqa_st_dtype {
    AQA_ST_BOOL,
    AQA_ST_U8,
    AQA_ST_I8,
    AQA_ST_F8_E5M2,
    AQA_ST_F8_E4M3,
    AQA_ST_F8_E5M2FNUZ,
    AQA_ST_F8_E4M3FNUZ,
    AQA_ST_F8_E8M0,
    AQA_ST_I16,
    AQA_ST_U16,
    AQA_ST_F16,
    AQA_ST_BF16,
    AQA_ST_I32,
    AQA_ST_U32,
    AQA_ST_F32,
    AQA_ST_C64,
    AQA_ST_F64,
    AQA_ST_I64,
    AQA_ST_U64,
    AQA_ST_DTYPE_COUNT
} aqa_st_dtype;

/* The name written in files ("F32"), or NULL for a value out of range. */
const char *aqa_st_dtype_name(aqa_st_dtype dtype);
/* Bytes per element (0 for a value out of range). */
size_t aqa_st_dtype_size(aqa_st_dtype dtype);
/* Parses a dtype name; returns 0 on success, -1 (no error recorded) for an unknown name. */
int aqa_st_dtype_from_name(const char *name, aqa_st_dtype *out);

/* The largest JSON header accepted, as in the reference implementation. */
#define AQA_ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

/* ---------------------------------------------------------------------------------------------
 * Reading */

typedef struct aqa_st_file aqa_st_file;

/* What the header says about one tensor; owned by the aqa_st_file, valid until aqa_st_close. */
typedef struct aqa_st_tensor {
    const char *name;     /* tensor name (NUL-terminated UTF-8) */
    aqa_st_dtype dtype;   /* element type */
    int ndim;             /* number of dimensions; 0 for a scalar */
    const int64_t *shape; /* ndim sizes, each >= 0 (NULL when ndim == 0) */
    int64_t numel;        /* product of shape (1 for a scalar, 0 when a size is 0) */
    size_t nbytes;        /* numel * itemsize == end - begin */
    uint64_t offset;      /* begin, relative to the byte buffer after the header */
    /* The bytes, pointing into the mapping (no copy).  Only aligned to the itemsize when the
     * writer padded the header (aqa and the official writer do); aqa_st_read_* cope either way. */
    const void *data;
} aqa_st_tensor;

/* Opens and validates `path`.  On success *out must be released with aqa_st_close.  Errors:
 * AQA_EIO (cannot open/map/read), AQA_EFORMAT (malformed: message names file and tensor),
 * AQA_EUNSUPPORTED (a known but unsupported dtype, e.g. F4), AQA_ENOMEM. */
aqa_status aqa_st_open(const char *path, aqa_st_file **out);
void aqa_st_close(aqa_st_file *f); /* NULL is fine */

const char *aqa_st_path(const aqa_st_file *f);
/* Number of tensors (metadata excluded). Tensors are numbered 0..count-1 in header order. */
int aqa_st_count(const aqa_st_file *f);
/* Name of tensor i, NULL when i is out of range. */
const char *aqa_st_name(const aqa_st_file *f, int i);
/* Index of the tensor called `name`, or -1 (no error recorded: absence is not an error). */
int aqa_st_find(const aqa_st_file *f, const char *name);
/* Description of tensor i, NULL (and an error recorded) when i is out of range. */
const aqa_st_tensor *aqa_st_get(const aqa_st_file *f, int i);

/* Value of metadata `key`, or NULL when absent. */
const char *aqa_st_metadata(const aqa_st_file *f, const char *key);
/* Number of metadata entries and the i-th (key, value), in header order. */
int aqa_st_metadata_count(const aqa_st_file *f);
aqa_status aqa_st_metadata_at(const aqa_st_file *f, int i, const char **key, const char **value);

/* Copies tensor i's numel elements into dst, converted.  dst must hold numel values.
 * read_f32/read_f64 accept F32, F64, F16, BF16 (F16 and BF16 convert exactly, including
 * subnormals, infinities and NaN; F64 -> F32 rounds to nearest).  read_i64 accepts I64, I32,
 * I16, I8, U8, U16, U32, BOOL and U64 (values above INT64_MAX are an error).  Other dtypes give
 * AQA_EINVAL naming the file, the tensor and its dtype. */
aqa_status aqa_st_read_f32(const aqa_st_file *f, int i, float *dst);
aqa_status aqa_st_read_f64(const aqa_st_file *f, int i, double *dst);
aqa_status aqa_st_read_i64(const aqa_st_file *f, int i, int64_t *dst);
/* Copies the raw little-endian bytes of tensor i; dst_bytes must equal its nbytes. */
aqa_status aqa_st_read_raw(const aqa_st_file *f, int i, void *dst, size_t dst_bytes);

/* Exact scalar conversions used by the readers (exposed for tests and the tensor layer). */
float aqa_st_f16_to_f32(uint16_t h);
float aqa_st_bf16_to_f32(uint16_t b);

/* ---------------------------------------------------------------------------------------------
 * Writing */

typedef struct aqa_st_writer aqa_st_writer;

aqa_st_writer *aqa_st_writer_new(void); /* NULL on allocation failure */
void aqa_st_writer_free(aqa_st_writer *w); /* NULL is fine */

/* Adds a tensor.  Only the pointer is kept: `data` (numel * itemsize bytes, little-endian,
 * C order) must stay alive and unchanged until aqa_st_writer_save returns.  data may be NULL
 * when numel is 0.  Errors (AQA_EINVAL, naming the tensor): empty name, name "__metadata__",
 * name not valid UTF-8, duplicate name, unknown dtype, negative size or ndim, size overflow. */
aqa_status aqa_st_writer_add(aqa_st_writer *w, const char *name, aqa_st_dtype dtype, int ndim,
                             const int64_t *shape, const void *data);
/* Same, but the writer keeps its own copy of the bytes (handy for small scalars). */
aqa_status aqa_st_writer_add_copy(aqa_st_writer *w, const char *name, aqa_st_dtype dtype,
                                  int ndim, const int64_t *shape, const void *data);
/* Produces a tensor's bytes at save time: fills dst with exactly nbytes bytes (little-endian,
 * C order) and returns AQA_OK, or records an error and returns it (the save then fails and the
 * old file stays).  Lets a caller stream tensors that are not in host memory (e.g. GPU tensors
 * copied one at a time) without holding every copy at once. */
typedef aqa_status (*aqa_st_fill_fn)(void *ctx, void *dst, size_t nbytes);
/* Same as aqa_st_writer_add, but the bytes come from fill(ctx, buffer, nbytes) during save, into
 * a temporary buffer the writer allocates for that one tensor.  ctx must stay valid until save. */
aqa_status aqa_st_writer_add_deferred(aqa_st_writer *w, const char *name, aqa_st_dtype dtype,
                                      int ndim, const int64_t *shape, aqa_st_fill_fn fill,
                                      void *ctx);
/* Sets "__metadata__"[key] = value (both copied; setting a key again replaces its value). */
aqa_status aqa_st_writer_set_metadata(aqa_st_writer *w, const char *key, const char *value);
/* Writes the file atomically: on failure an existing file at `path` is left unchanged. */
aqa_status aqa_st_writer_save(const aqa_st_writer *w, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* AQA_SAFETENSORS_H */
