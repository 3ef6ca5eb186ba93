/* feature_cache.h: per-video feature files, so frozen encoders run once per dataset.
 *
 * One safetensors file per video, <dir>/<key>.safetensors with every '/' of the sample key
 * replaced by "__" (FineDiving keys are "<video>/<instance>"), holding
 *     "clip"  F32 [T, D]    the frozen CLIP image encoder's feature of each sampled frame
 *     "i3d"   F32 [N, C]    I3D's feature of each clip (optional)
 * and __metadata__ {"format": "aqa-features-1", "key": <sample key>, "encoder": <free text naming
 * the weights and sampling>}.  Files are written atomically (temporary file + rename), so a file
 * that exists was written completely; aqa_feature_cache_valid additionally checks the format, the
 * key and the shapes, which is what examples/extract_features uses to resume. */
#ifndef AQA_DATASETS_FEATURE_CACHE_H
#define AQA_DATASETS_FEATURE_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AQA_FEATURE_CACHE_FORMAT "aqa-features-1"

/* The cache file of `key` in `dir`. */
aqa_status aqa_feature_cache_path(const char *dir, const char *key, char *buf, size_t size);

/* Writes the file (clip or i3d may be NULL to leave that tensor out, not both). */
aqa_status aqa_feature_cache_write(const char *path, const char *key, const float *clip, int64_t T, int64_t D,
                                   const float *i3d, int64_t N, int64_t C, const char *encoder);

/* True when `path` is a complete cache file of `key` with the tensors asked for: need_clip ->
 * "clip" [T, D], need_i3d -> "i3d" [N, C] (a size <= 0 matches any).  Never records an error. */
bool aqa_feature_cache_valid(const char *path, const char *key, bool need_clip, int64_t T, int64_t D,
                             bool need_i3d, int64_t N, int64_t C);

/* Reads tensor `name` ("clip" or "i3d") into dst[rows * cols] after checking its shape is
 * [rows, cols]; errors name the file and tensor. */
aqa_status aqa_feature_cache_read(const char *path, const char *name, int64_t rows, int64_t cols, float *dst);
/* The shape [rows, cols] of tensor `name`; AQA_EFORMAT when absent or not 2-D. */
aqa_status aqa_feature_cache_dims(const char *path, const char *name, int64_t *rows, int64_t *cols);

/* Reads a Fis-V style .npy feature file [rows, cols] (f4 or f8) into dst after checking the shape
 * (rows/cols <= 0 match any); aqa_feature_npy_dims gives the shape. */
aqa_status aqa_feature_npy_read(const char *path, int64_t rows, int64_t cols, float *dst);
aqa_status aqa_feature_npy_dims(const char *path, int64_t *rows, int64_t *cols);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_FEATURE_CACHE_H */
