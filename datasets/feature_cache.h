/* feature_cache.h: per-video feature files, so frozen encoders run once per dataset.
 *
 * One safetensors file per video, <dir>/<key>.safetensors with every '/' of the sample key
 * replaced by "__" (FineDiving keys are "<video>/<instance>"), holding
 *     "clip"     F32 [T, D]        the frozen CLIP image encoder's feature of each sampled frame
 *     "i3d"      F32 [N, C]        I3D's feature of each clip (optional)
 *     "i3d_map"  F32 [N, C, H, W]  I3D's Mixed_5c map of each clip averaged over time (with
 *                                  "i3d"; TSA's feature maps: its keys and values)
 * and __metadata__ {"format": "aqa-features-2", "key": <sample key>, "encoder": <free text naming
 * the weights and sampling>}.  Files are written atomically (temporary file + rename), so a file
 * that exists was written completely; aqa_feature_cache_valid additionally checks the format, the
 * key and the shapes, which is what examples/extract_features uses to resume.  Reading a file of
 * another format (aqa-features-1 had no maps) fails with a message saying to extract again. */
#ifndef AQA_DATASETS_FEATURE_CACHE_H
#define AQA_DATASETS_FEATURE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AQA_FEATURE_CACHE_FORMAT "aqa-features-2"

/* The cache file of `key` in `dir`. */
aqa_status aqa_feature_cache_path(const char *dir, const char *key, char *buf, size_t size);

/* One video's features for aqa_feature_cache_write (a NULL pointer leaves that tensor out; clip
 * and i3d not both; i3d_map only with i3d). */
typedef struct aqa_feature_set {
    const float *clip;     /* [T, D] */
    const float *i3d;      /* [N, C] */
    const float *i3d_map;  /* [N, C, H, W] */
    int64_t T, D, N, C, H, W; /* sizes */
} aqa_feature_set;

aqa_status aqa_feature_cache_write(const char *path, const char *key, const aqa_feature_set *f, const char *encoder);

/* True when `path` is a complete cache file of this format and `key` with the tensors asked for:
 * need_clip -> "clip" [T, D], need_i3d -> "i3d" [N, C] and "i3d_map" [N, C, *, *] (a size <= 0
 * matches any).  Never records an error. */
bool aqa_feature_cache_valid(const char *path, const char *key, bool need_clip, int64_t T, int64_t D,
                             bool need_i3d, int64_t N, int64_t C);

/* Reads tensor `name` ("clip", "i3d", "i3d_map") into dst after checking the file's format and
 * that the tensor's shape is shape[ndim]; errors name the file and tensor (a file of an older
 * format: extract again). */
aqa_status aqa_feature_cache_read(const char *path, const char *name, int ndim, const int64_t *shape, float *dst);
/* AQA_OK when `path` is a cache file of this format; else the error saying to extract again. */
aqa_status aqa_feature_cache_check_format(const char *path);
/* The shape of tensor `name` (*ndim dims, at most 4, into shape) after checking the file's
 * format; AQA_EFORMAT when the format is another or the tensor is absent. */
aqa_status aqa_feature_cache_dims(const char *path, const char *name, int *ndim, int64_t shape[4]);

/* Reads a Fis-V style .npy feature file [rows, cols] (f4 or f8) into dst after checking the shape
 * (rows/cols <= 0 match any); aqa_feature_npy_dims gives the shape. */
aqa_status aqa_feature_npy_read(const char *path, int64_t rows, int64_t cols, float *dst);
aqa_status aqa_feature_npy_dims(const char *path, int64_t *rows, int64_t *cols);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_FEATURE_CACHE_H */
