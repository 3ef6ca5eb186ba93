/* feature_cache.c: per-video feature files (safetensors) and Fis-V .npy features; see
 * feature_cache.h. */
#include "datasets/feature_cache.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/npy.h"
#include "io/safetensors.h"

aqa_status aqa_feature_cache_path(const char *dir, const char *key, char *buf, size_t size) {
    if (!dir || !key || !buf) return aqa_fail(AQA_EINVAL, "aqa_feature_cache_path: NULL argument");
    size_t n = (size_t)snprintf(buf, size, "%s/", dir);
    for (const char *p = key; *p && n + 3 < size; p++) {
        if (*p == '/') {
            buf[n++] = '_';
            buf[n++] = '_';
        } else {
            buf[n++] = *p;
        }
    }
    const char *ext = ".safetensors";
    if (n + strlen(ext) + 1 > size) return aqa_fail(AQA_EINVAL, "feature cache path of %s too long", key);
    memcpy(buf + n, ext, strlen(ext) + 1);
    return AQA_OK;
}

aqa_status aqa_feature_cache_write(const char *path, const char *key, const aqa_feature_set *f, const char *encoder) {
    if (!path || !key || !f || (!f->clip && !f->i3d) || (f->i3d_map && !f->i3d))
        return aqa_fail(AQA_EINVAL, "aqa_feature_cache_write: nothing to write (or maps without i3d features)");
    aqa_st_writer *w = aqa_st_writer_new();
    if (!w) return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    aqa_status st = AQA_OK;
    if (f->clip) st = aqa_st_writer_add(w, "clip", AQA_ST_F32, 2, (const int64_t[]){f->T, f->D}, f->clip);
    if (!st && f->i3d) st = aqa_st_writer_add(w, "i3d", AQA_ST_F32, 2, (const int64_t[]){f->N, f->C}, f->i3d);
    if (!st && f->i3d_map)
        st = aqa_st_writer_add(w, "i3d_map", AQA_ST_F32, 4, (const int64_t[]){f->N, f->C, f->H, f->W}, f->i3d_map);
    if (!st) st = aqa_st_writer_set_metadata(w, "format", AQA_FEATURE_CACHE_FORMAT);
    if (!st) st = aqa_st_writer_set_metadata(w, "key", key);
    if (!st) st = aqa_st_writer_set_metadata(w, "encoder", encoder ? encoder : "");
    if (!st) st = aqa_st_writer_save(w, path);
    aqa_st_writer_free(w);
    return st;
}

/* The tensor `name` of f if it is F32 of ndim dims matching shape (entries <= 0 match any). */
static const aqa_st_tensor *find_shaped(const aqa_st_file *f, const char *name, int ndim, const int64_t *shape) {
    int i = aqa_st_find(f, name);
    const aqa_st_tensor *t = i >= 0 ? aqa_st_get(f, i) : NULL;
    if (!t || t->ndim != ndim || t->dtype != AQA_ST_F32) return NULL;
    for (int d = 0; d < ndim; d++)
        if (shape[d] > 0 && t->shape[d] != shape[d]) return NULL;
    return t;
}

/* Opens a cache file and checks its format; the message says what to do about an old one. */
static aqa_status open_checked(const char *path, aqa_st_file **f) {
    aqa_status st = aqa_st_open(path, f);
    if (st) return st;
    const char *fmt = aqa_st_metadata(*f, "format");
    if (fmt && strcmp(fmt, AQA_FEATURE_CACHE_FORMAT) == 0) return AQA_OK;
    char got[64];
    snprintf(got, sizeof got, "%s", fmt ? fmt : "(none)");
    aqa_st_close(*f);
    *f = NULL;
    return aqa_fail(AQA_EFORMAT, "%s: feature cache format \"%s\", this version reads \"%s\" (it adds the I3D "
                    "Mixed_5c maps TSA attends to): extract again with examples/extract_features",
                    path, got, AQA_FEATURE_CACHE_FORMAT);
}

aqa_status aqa_feature_cache_check_format(const char *path) {
    aqa_st_file *f = NULL;
    aqa_status st = open_checked(path, &f);
    if (f) aqa_st_close(f);
    return st;
}

bool aqa_feature_cache_valid(const char *path, const char *key, bool need_clip, int64_t T, int64_t D,
                             bool need_i3d, int64_t N, int64_t C) {
    aqa_st_file *f = NULL;
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", aqa_last_error());
    aqa_status saved_status = aqa_last_status();
    bool ok = false;
    if (open_checked(path, &f) == AQA_OK) {
        const char *k = aqa_st_metadata(f, "key");
        ok = k && key && strcmp(k, key) == 0;
        if (ok && need_clip) ok = find_shaped(f, "clip", 2, (const int64_t[]){T, D}) != NULL;
        if (ok && need_i3d)
            ok = find_shaped(f, "i3d", 2, (const int64_t[]){N, C}) && find_shaped(f, "i3d_map", 4, (const int64_t[]){N, C, 0, 0});
        aqa_st_close(f);
    }
    /* an invalid file is an answer, not an error: restore the previous message */
    if (saved_status) aqa_fail(saved_status, "%s", saved);
    else aqa_clear_error();
    return ok;
}

aqa_status aqa_feature_cache_dims(const char *path, const char *name, int *ndim, int64_t shape[4]) {
    aqa_st_file *f = NULL;
    aqa_status st = open_checked(path, &f);
    if (st) return st;
    int i = aqa_st_find(f, name);
    const aqa_st_tensor *t = i >= 0 ? aqa_st_get(f, i) : NULL;
    if (!t || t->ndim < 1 || t->ndim > 4) {
        aqa_st_close(f);
        return aqa_fail(AQA_EFORMAT, "%s: no tensor \"%s\" of 1 to 4 dims", path, name);
    }
    *ndim = t->ndim;
    for (int d = 0; d < t->ndim; d++) shape[d] = t->shape[d];
    aqa_st_close(f);
    return AQA_OK;
}

/* Features feed the model as they are: a NaN or an infinity is the file's fault, reported with its
 * position, not a loss that turns NaN several layers later. */
static aqa_status check_finite(const char *path, const char *name, const float *x, int64_t rows, int64_t cols) {
    for (int64_t r = 0; r < rows; r++)
        for (int64_t c = 0; c < cols; c++)
            if (!isfinite(x[r * cols + c]))
                return aqa_fail(AQA_EFORMAT, "%s: %s%s%sfeature [%lld, %lld] is %g (not finite)", path, name ? "tensor \"" : "",
                                name ? name : "", name ? "\" " : "", (long long)r, (long long)c, (double)x[r * cols + c]);
    return AQA_OK;
}

aqa_status aqa_feature_cache_read(const char *path, const char *name, int ndim, const int64_t *shape, float *dst) {
    aqa_st_file *f = NULL;
    aqa_status st = open_checked(path, &f);
    if (st) return st;
    int i = aqa_st_find(f, name);
    const aqa_st_tensor *t = i >= 0 ? aqa_st_get(f, i) : NULL;
    if (!t) {
        aqa_st_close(f);
        return aqa_fail(AQA_EFORMAT, "%s: no tensor \"%s\"", path, name);
    }
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char got[96] = "", want[96] = "";
        for (int d = 0; d < t->ndim && d < 8; d++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        for (int d = 0; d < ndim && d < 8; d++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "", (long long)shape[d]);
        st = aqa_fail(AQA_EFORMAT, "%s: tensor \"%s\" has shape [%s], expected [%s]", path, name, got, want);
    } else {
        st = aqa_st_read_f32(f, i, dst);
        int64_t rows = ndim > 0 ? shape[0] : 1, cols = 1; /* the rows of the first dim, the rest flattened */
        for (int d = 1; d < ndim; d++) cols *= shape[d];
        if (!st) st = check_finite(path, name, dst, rows, cols);
    }
    aqa_st_close(f);
    return st;
}

aqa_status aqa_feature_npy_dims(const char *path, int64_t *rows, int64_t *cols) {
    aqa_npy_array a;
    aqa_status st = aqa_npy_load(path, &a);
    if (st) return st;
    if (a.ndim != 2) {
        aqa_npy_free(&a);
        return aqa_fail(AQA_EFORMAT, "%s: features must be 2-D [n_clips, dim], got %d dims", path, a.ndim);
    }
    *rows = (int64_t)a.shape[0];
    *cols = (int64_t)a.shape[1];
    aqa_npy_free(&a);
    return AQA_OK;
}

aqa_status aqa_feature_npy_read(const char *path, int64_t rows, int64_t cols, float *dst) {
    aqa_npy_array a;
    aqa_status st = aqa_npy_load(path, &a);
    if (st) return st;
    if (a.ndim != 2 || (rows > 0 && (int64_t)a.shape[0] != rows) || (cols > 0 && (int64_t)a.shape[1] != cols)) {
        st = aqa_fail(AQA_EFORMAT, "%s: features of shape [%zu, %zu], expected [%lld, %lld]", path,
                      a.ndim > 0 ? a.shape[0] : 0, a.ndim > 1 ? a.shape[1] : 0, (long long)rows, (long long)cols);
        aqa_npy_free(&a);
        return st;
    }
    for (size_t k = 0; k < a.count; k++) {
        switch (a.dtype) {
        case AQA_NPY_F8: dst[k] = (float)((const double *)a.data)[k]; break;
        case AQA_NPY_F4: dst[k] = ((const float *)a.data)[k]; break;
        case AQA_NPY_I8: dst[k] = (float)((const int64_t *)a.data)[k]; break;
        case AQA_NPY_I4: dst[k] = (float)((const int32_t *)a.data)[k]; break;
        }
    }
    st = check_finite(path, NULL, dst, (int64_t)a.shape[0], (int64_t)a.shape[1]);
    aqa_npy_free(&a);
    return st;
}
