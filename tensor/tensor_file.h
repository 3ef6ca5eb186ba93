/* tensor_file.h: tensors to and from safetensors files (the byte-level format is in
 * io/safetensors.h). */
#ifndef AQA_TENSOR_FILE_H
#define AQA_TENSOR_FILE_H

#include "io/safetensors.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Writes n named tensors (any dtype and device; copied to host as needed) to `path` atomically
 * (temporary file, fsync, rename), with n_meta metadata pairs in __metadata__. */
aqa_status aqa_save_tensors(const char *path, int n, const char *const *names, aqa_tensor *const *tensors,
                            int n_meta, const char *const *meta_keys, const char *const *meta_values);
/* Reads tensor `name` of an open file as `dtype` (F32 reads F16/BF16/F64 too; I64 reads I32),
 * on the default device.  NULL with an error naming the file and tensor when absent or
 * unconvertible. */
aqa_tensor *aqa_st_load(const aqa_st_file *f, const char *name, aqa_dtype dtype);
/* Opens `path`, reads one tensor, closes. */
aqa_tensor *aqa_load_tensor(const char *path, const char *name, aqa_dtype dtype);
/* The safetensors dtype of an aqa dtype. */
aqa_st_dtype aqa_st_dtype_of(aqa_dtype dtype);

#ifdef __cplusplus
}
#endif

#endif /* AQA_TENSOR_FILE_H */
