/* image.h: 8-bit RGB images in memory, decoded from PNG (libpng) and JPEG (libjpeg-turbo), and
 * written back to PNG or JPEG atomically.
 *
 * Every decoded image is RGB, 8 bits per channel, row-major HWC: the same pixels PIL gives for
 * `Image.open(path).convert("RGB")` (grayscale is replicated, palette is looked up, alpha is
 * dropped without compositing, 16-bit PNG samples keep their high byte).  The format is found
 * from the file's magic bytes, never from its name.  (One deliberate difference: PIL opens a
 * 16-bit grayscale PNG as mode "I" and its convert("RGB") clips values above 255, where we keep
 * the high byte as for 16-bit colour PNGs.)  CMYK/YCCK JPEGs are refused with AQA_EUNSUPPORTED.  Corrupt, truncated or oversized files give
 * an error naming the file (see base/error.h); the library never exits on bad input. */
#ifndef AQA_DATASETS_IMAGE_H
#define AQA_DATASETS_IMAGE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest accepted side and pixel count: larger headers are treated as corrupt rather than
 * allocated (a flipped bit in a header must not ask for gigabytes). */
#define AQA_IMAGE_MAX_SIDE 32768
#define AQA_IMAGE_MAX_PIXELS ((size_t)1 << 26) /* 67 M pixels, 8x a 4K frame */

typedef struct aqa_image {
    int width;     /* pixels per row */
    int height;    /* rows */
    int channels;  /* bytes per pixel; always 3 (RGB) for images made by this library */
    uint8_t *data; /* height * width * channels bytes, row-major, channels interleaved (HWC) */
} aqa_image;

/* A new black RGB image (all bytes 0); NULL with an error on a bad size or no memory. */
aqa_image *aqa_image_new(int width, int height);
/* A deep copy. */
aqa_image *aqa_image_copy(const aqa_image *im);
/* Frees the image and its pixels (NULL is fine). */
void aqa_image_free(aqa_image *im);

/* Byte offset of pixel (x, y) in data. */
static inline size_t aqa_image_offset(const aqa_image *im, int x, int y) {
    return ((size_t)y * (size_t)im->width + (size_t)x) * (size_t)im->channels;
}

/* Decodes a PNG or JPEG file.  NULL with an error (AQA_EIO: unreadable; AQA_EFORMAT: not a
 * PNG/JPEG, corrupt or truncated; AQA_EUNSUPPORTED: e.g. CMYK JPEG) naming the file. */
aqa_image *aqa_image_load(const char *path);
/* Decodes a PNG or JPEG held in memory; `name` is used in error messages only. */
aqa_image *aqa_image_decode(const void *bytes, size_t len, const char *name);

/* Writes the image as an 8-bit RGB PNG, atomically: a temporary file in the same folder is
 * written, fsync'ed and renamed over `path`, so a reader never sees half a file. */
aqa_status aqa_image_save_png(const aqa_image *im, const char *path);
/* Same for a baseline JPEG (4:2:0, libjpeg's default settings) at `quality` 1..100. */
aqa_status aqa_image_save_jpeg(const aqa_image *im, const char *path, int quality);

/* The encoders behind those two, writing to an open stream `f` that the caller closes (no
 * temporary file, no fsync: for bulk output such as generated frames); `path` names the file in
 * errors. */
aqa_status aqa_image_write_png(const aqa_image *im, FILE *f, const char *path);
aqa_status aqa_image_write_jpeg(const aqa_image *im, FILE *f, const char *path, int quality);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_IMAGE_H */
