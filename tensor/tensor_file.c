/* tensor_file.c: tensors to and from safetensors files. */
#include "tensor/tensor_file.h"

#include <stdlib.h>

#include "tensor/tensor-impl.h"

aqa_st_dtype aqa_st_dtype_of(aqa_dtype dtype) {
    switch (dtype) {
    case AQA_F32: return AQA_ST_F32;
    case AQA_F64: return AQA_ST_F64;
    case AQA_I64: return AQA_ST_I64;
    case AQA_BOOL: return AQA_ST_BOOL;
    }
    return AQA_ST_F32;
}

aqa_status aqa_save_tensors(const char *path, int n, const char *const *names, aqa_tensor *const *tensors,
                            int n_meta, const char *const *meta_keys, const char *const *meta_values) {
    aqa_st_writer *w = aqa_st_writer_new();
    if (!w) return aqa_fail(AQA_ENOMEM, "%s: out of memory preparing the file", path);
    void **buffers = calloc((size_t)(n ? n : 1), sizeof *buffers);
    aqa_status st = buffers ? AQA_OK : aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    for (int i = 0; i < n && st == AQA_OK; i++) {
        const aqa_tensor *t = tensors[i];
        if (!t) {
            st = aqa_fail(AQA_EINVAL, "%s: tensor %s is NULL", path, names[i]);
            break;
        }
        size_t nbytes = (size_t)aqa_numel(t) * aqa_dtype_size(t->dtype);
        buffers[i] = malloc(nbytes ? nbytes : 1);
        if (!buffers[i]) {
            st = aqa_fail(AQA_ENOMEM, "%s: out of memory copying tensor %s", path, names[i]);
            break;
        }
        st = aqa_copy_to_host(t, buffers[i], t->dtype);
        if (st == AQA_OK) st = aqa_st_writer_add(w, names[i], aqa_st_dtype_of(t->dtype), t->ndim, t->shape, buffers[i]);
    }
    for (int i = 0; i < n_meta && st == AQA_OK; i++) st = aqa_st_writer_set_metadata(w, meta_keys[i], meta_values[i]);
    if (st == AQA_OK) st = aqa_st_writer_save(w, path);
    aqa_st_writer_free(w);
    for (int i = 0; buffers && i < n; i++) free(buffers[i]);
    free(buffers);
    return st;
}

aqa_tensor *aqa_st_load(const aqa_st_file *f, const char *name, aqa_dtype dtype) {
    int idx = aqa_st_find(f, name);
    if (idx < 0) return aqa_fail_null("%s: no tensor named '%s'", aqa_st_path(f), name);
    const aqa_st_tensor *info = aqa_st_get(f, idx);
    size_t nbytes = (size_t)info->numel * aqa_dtype_size(dtype);
    void *buf = malloc(nbytes ? nbytes : 1);
    if (!buf) return aqa_fail_null("%s: out of memory reading tensor '%s'", aqa_st_path(f), name);
    aqa_status st;
    switch (dtype) {
    case AQA_F32: st = aqa_st_read_f32(f, idx, buf); break;
    case AQA_F64: st = aqa_st_read_f64(f, idx, buf); break;
    case AQA_I64: st = aqa_st_read_i64(f, idx, buf); break;
    default:
        st = info->dtype == AQA_ST_BOOL || info->dtype == AQA_ST_U8
                 ? aqa_st_read_raw(f, idx, buf, nbytes)
                 : aqa_fail(AQA_EINVAL, "%s: tensor '%s' (%s) cannot be read as bool", aqa_st_path(f), name,
                            aqa_st_dtype_name(info->dtype));
    }
    aqa_tensor *t = st == AQA_OK ? aqa_from_data(buf, info->ndim, info->shape, dtype) : NULL;
    free(buf);
    return t;
}

aqa_tensor *aqa_load_tensor(const char *path, const char *name, aqa_dtype dtype) {
    aqa_st_file *f;
    if (aqa_st_open(path, &f) != AQA_OK) return NULL;
    aqa_tensor *t = aqa_st_load(f, name, dtype);
    aqa_st_close(f);
    return t;
}
