/* npy.h: a small reader (and vector and matrix writer) for NumPy's .npy format, versions 1.0, 2.0 and 3.0.
 *
 * Supported: little-endian '<f8', '<f4', '<i8' (and '<i4'), C order (fortran_order False), any
 * number of dimensions up to AQA_NPY_MAX_DIMS.  Anything else (big-endian, object arrays,
 * structured dtypes, Fortran order, a truncated file) fails with AQA_EFORMAT or
 * AQA_EUNSUPPORTED and a message naming the file and the offending header field.  Used to read
 * prediction / ground-truth vectors saved by np.save (TSA's pred.npy, true.npy). */
#ifndef AQA_DATASETS_NPY_H
#define AQA_DATASETS_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AQA_NPY_MAX_DIMS 8

typedef enum aqa_npy_dtype {
    AQA_NPY_F8 = 0, /* '<f8' float64 */
    AQA_NPY_F4 = 1, /* '<f4' float32 */
    AQA_NPY_I8 = 2, /* '<i8' int64 */
    AQA_NPY_I4 = 3  /* '<i4' int32 */
} aqa_npy_dtype;

typedef struct aqa_npy_array {
    aqa_npy_dtype dtype;            /* element type as stored in the file */
    int ndim;                       /* number of dimensions (0 for a scalar) */
    size_t shape[AQA_NPY_MAX_DIMS]; /* extent of each dimension, C order */
    size_t count;                   /* product of the shape (1 for a scalar) */
    void *data;                     /* count elements of dtype, in host byte order (malloc'ed) */
} aqa_npy_array;

/* Size in bytes of one element of `dtype`. */
size_t aqa_npy_dtype_size(aqa_npy_dtype dtype);

/* Loads a whole .npy file.  Release with aqa_npy_free. */
aqa_status aqa_npy_load(const char *path, aqa_npy_array *out);
void aqa_npy_free(aqa_npy_array *a);

/* Loads a .npy holding a vector (1-D, or 2-D with one dimension equal to 1) of any supported dtype
 * and converts it to double.  *out is malloc'ed (free() it); at least one value. */
aqa_status aqa_npy_read_vector(const char *path, double **out, size_t *n);

/* Writes x[0..n) as a 1-D '<f8' .npy (version 1.0), readable by np.load. */
aqa_status aqa_npy_write_vector(const char *path, const double *x, size_t n);

/* Writes x[rows, cols] (C order) as a 2-D '<f4' .npy (version 1.0), atomically: a Fis-V style
 * per-video feature file (datasets/feature_cache.h reads it back). */
aqa_status aqa_npy_write_f32_2d(const char *path, const float *x, size_t rows, size_t cols);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_NPY_H */
