/* resize.c: PIL-compatible resampling (see resize.h), crop/flip, and the CLIP / I3D frame
 * transforms.
 *
 * The resampling follows the published algorithm of Pillow's libImaging (facts, not code): for
 * each output position the filter is centred at in0 + (i + 0.5) * scale in input coordinates,
 * stretched by max(scale, 1) so shrinking averages over the whole footprint, the taps cover
 * input pixels [int(centre - support + 0.5), int(centre + support + 0.5)) clipped to the image,
 * tap weights filter((j - centre + 0.5) / filterscale) are normalised to sum 1, converted to
 * fixed point with 22 fraction bits (rounded away from zero), accumulated in int with a +half
 * start, then shifted and clipped to 0..255.  The horizontal pass runs first, over just the rows
 * the vertical pass will read, and its result is kept as uint8. */
#include "image/resize.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define PRECISION_BITS (32 - 8 - 2) /* room for 8-bit values, sign and overshoot in an int */

const float aqa_clip_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
const float aqa_clip_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
const float aqa_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float aqa_imagenet_std[3] = {0.229f, 0.224f, 0.225f};

static double filter_bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static double filter_bicubic(double x) {
    const double a = -0.5; /* Keys' cubic convolution, as PIL */
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

/* Fixed-point taps for resampling one axis of length in_size to out_size. */
typedef struct taps {
    int ksize;   /* taps per output position (stride of k) */
    int *first;  /* [out] first input index */
    int *count;  /* [out] number of taps used */
    int32_t *k;  /* [out * ksize] weights, 22-bit fixed point */
} taps;

static void taps_free(taps *t) {
    free(t->first);
    free(t->count);
    free(t->k);
}

static aqa_status taps_make(taps *t, int in_size, int out_size, aqa_resample filter) {
    double (*fn)(double) = filter == AQA_RESAMPLE_BICUBIC ? filter_bicubic : filter_bilinear;
    double base_support = filter == AQA_RESAMPLE_BICUBIC ? 2.0 : 1.0;
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = base_support * filterscale;
    memset(t, 0, sizeof *t);
    t->ksize = (int)ceil(support) * 2 + 1;
    t->first = malloc(sizeof(int) * out_size);
    t->count = malloc(sizeof(int) * out_size);
    t->k = calloc((size_t)out_size * t->ksize, sizeof(int32_t));
    double *w = malloc(sizeof(double) * t->ksize);
    if (!t->first || !t->count || !t->k || !w) {
        free(w);
        taps_free(t);
        return aqa_fail(AQA_ENOMEM, "aqa_image_resize: out of memory for filter taps");
    }
    for (int i = 0; i < out_size; i++) {
        double center = (i + 0.5) * scale;
        double inv = 1.0 / filterscale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in_size) hi = in_size;
        int n = hi - lo;
        double sum = 0.0;
        for (int j = 0; j < n; j++) {
            w[j] = fn((j + lo - center + 0.5) * inv);
            sum += w[j];
        }
        int32_t *k = t->k + (size_t)i * t->ksize;
        for (int j = 0; j < n; j++) {
            double v = sum != 0.0 ? w[j] / sum : w[j];
            double f = v * (double)(1 << PRECISION_BITS);
            k[j] = (int32_t)(v < 0 ? f - 0.5 : f + 0.5);
        }
        t->first[i] = lo;
        t->count[i] = n;
    }
    free(w);
    return AQA_OK;
}

static inline uint8_t clip8(int v) {
    v >>= PRECISION_BITS; /* arithmetic shift: floor for negatives, then clipped */
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* out (w_out x rows, RGB) = horizontal pass over rows [row0, row0 + rows) of in. */
static void pass_horizontal(const aqa_image *in, int row0, int rows, uint8_t *out, int w_out,
                            const taps *t) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = in->data + (size_t)(y + row0) * in->width * 3;
        uint8_t *dst = out + (size_t)y * w_out * 3;
        for (int x = 0; x < w_out; x++) {
            const int32_t *k = t->k + (size_t)x * t->ksize;
            const uint8_t *s = src + (size_t)t->first[x] * 3;
            int s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int j = 0; j < t->count[x]; j++) {
                s0 += s[3 * j + 0] * k[j];
                s1 += s[3 * j + 1] * k[j];
                s2 += s[3 * j + 2] * k[j];
            }
            dst[3 * x + 0] = clip8(s0);
            dst[3 * x + 1] = clip8(s1);
            dst[3 * x + 2] = clip8(s2);
        }
    }
}

/* out (w x h_out) = vertical pass over in (w x any rows), taps' first indices shifted by -row0.
 * acc is a caller-provided row of w * 3 ints: accumulating whole rows keeps the inner loop
 * contiguous (and vectorisable); the sums are the same integers as PIL's per-pixel loop. */
static void pass_vertical(const uint8_t *in, int w, int row0, uint8_t *out, int h_out,
                          const taps *t, int *acc) {
    size_t stride = (size_t)w * 3;
    for (int y = 0; y < h_out; y++) {
        const int32_t *k = t->k + (size_t)y * t->ksize;
        const uint8_t *src = in + (size_t)(t->first[y] - row0) * stride;
        uint8_t *dst = out + (size_t)y * stride;
        for (size_t c = 0; c < stride; c++) acc[c] = 1 << (PRECISION_BITS - 1);
        for (int j = 0; j < t->count[y]; j++) {
            const uint8_t *row = src + (size_t)j * stride;
            int32_t kj = k[j];
            for (size_t c = 0; c < stride; c++) acc[c] += row[c] * kj;
        }
        for (size_t c = 0; c < stride; c++) dst[c] = clip8(acc[c]);
    }
}

aqa_image *aqa_image_resize(const aqa_image *src, int out_w, int out_h, aqa_resample filter) {
    if (!src || !src->data || src->channels != 3)
        return aqa_fail_null("aqa_image_resize: source must be a 3-channel image");
    if (filter != AQA_RESAMPLE_BILINEAR && filter != AQA_RESAMPLE_BICUBIC)
        return aqa_fail_null("aqa_image_resize: unknown filter %d", (int)filter);
    aqa_image *out = aqa_image_new(out_w, out_h);
    if (!out) return NULL;
    int need_h = out_w != src->width, need_v = out_h != src->height;
    if (!need_h && !need_v) {
        memcpy(out->data, src->data, (size_t)out_w * out_h * 3);
        return out;
    }
    taps tv = {0}, th = {0};
    uint8_t *tmp = NULL;
    if (taps_make(&tv, src->height, out_h, filter) != AQA_OK) goto fail;
    /* Rows of the source the vertical pass reads: the horizontal pass only makes those. */
    int row0 = tv.first[0];
    int row1 = tv.first[out_h - 1] + tv.count[out_h - 1];
    const uint8_t *mid = src->data;
    int mid_w = src->width, mid_row0 = 0;
    if (need_h) {
        if (taps_make(&th, src->width, out_w, filter) != AQA_OK) goto fail;
        if (!need_v) {
            pass_horizontal(src, 0, out_h, out->data, out_w, &th);
            taps_free(&th);
            taps_free(&tv);
            return out;
        }
        tmp = malloc((size_t)out_w * (row1 - row0) * 3);
        if (!tmp) {
            aqa_fail(AQA_ENOMEM, "aqa_image_resize: out of memory");
            goto fail;
        }
        pass_horizontal(src, row0, row1 - row0, tmp, out_w, &th);
        mid = tmp;
        mid_w = out_w;
        mid_row0 = row0;
    }
    int *acc = malloc(sizeof(int) * (size_t)mid_w * 3);
    if (!acc) {
        aqa_fail(AQA_ENOMEM, "aqa_image_resize: out of memory");
        goto fail;
    }
    pass_vertical(mid, mid_w, mid_row0, out->data, out_h, &tv, acc);
    free(acc);
    free(tmp);
    taps_free(&th);
    taps_free(&tv);
    return out;
fail:
    free(tmp);
    taps_free(&th);
    taps_free(&tv);
    aqa_image_free(out);
    return NULL;
}

aqa_image *aqa_image_resize_to_height(const aqa_image *src, int height, aqa_resample filter) {
    if (!src || !src->data || height <= 0) return aqa_fail_null("aqa_image_resize_to_height: bad image or height %d", height);
    int64_t w = ((int64_t)2 * src->width * height + src->height) / ((int64_t)2 * src->height);
    return aqa_image_resize(src, w < 1 ? 1 : (int)w, height, filter);
}

aqa_status aqa_resize_shorter_size(int w, int h, int n, int *out_w, int *out_h) {
    if (w <= 0 || h <= 0 || n <= 0 || !out_w || !out_h)
        return aqa_fail(AQA_EINVAL, "aqa_resize_shorter_size: bad size %dx%d -> %d", w, h, n);
    /* Python: int(n * long / short); n * long is exact in double, the division rounds once. */
    if (w <= h) {
        *out_w = n;
        *out_h = (int)((double)n * h / w);
    } else {
        *out_h = n;
        *out_w = (int)((double)n * w / h);
    }
    return AQA_OK;
}

int aqa_center_crop_offset(int len, int crop) {
    if (crop > len) return -((crop - len) / 2);
    int d = len - crop;
    if (d % 2 == 0) return d / 2;
    int half = d / 2; /* (d / 2.0) = half + 0.5: Python's round goes to the even neighbour */
    return half % 2 == 0 ? half : half + 1;
}

aqa_image *aqa_image_crop(const aqa_image *src, int x, int y, int w, int h) {
    if (!src || !src->data || src->channels != 3)
        return aqa_fail_null("aqa_image_crop: source must be a 3-channel image");
    aqa_image *out = aqa_image_new(w, h);
    if (!out) return NULL;
    int x0 = x < 0 ? -x : 0, x1 = src->width - x < w ? src->width - x : w;
    if (x1 <= x0) return out;
    for (int r = 0; r < h; r++) {
        int sy = y + r;
        if (sy < 0 || sy >= src->height) continue;
        memcpy(out->data + ((size_t)r * w + x0) * 3,
               src->data + ((size_t)sy * src->width + x + x0) * 3, (size_t)(x1 - x0) * 3);
    }
    return out;
}

void aqa_image_hflip(aqa_image *im) {
    if (!im || !im->data) return;
    for (int y = 0; y < im->height; y++) {
        uint8_t *row = im->data + (size_t)y * im->width * 3;
        for (int a = 0, b = im->width - 1; a < b; a++, b--)
            for (int c = 0; c < 3; c++) {
                uint8_t t = row[3 * a + c];
                row[3 * a + c] = row[3 * b + c];
                row[3 * b + c] = t;
            }
    }
}

aqa_status aqa_image_to_float(const aqa_image *im, aqa_norm norm, float *out, size_t chan_stride) {
    if (!im || !im->data || im->channels != 3 || !out)
        return aqa_fail(AQA_EINVAL, "aqa_image_to_float: need a 3-channel image and an output buffer");
    size_t plane = (size_t)im->width * im->height;
    if (chan_stride == 0) chan_stride = plane;
    if ((int)norm < AQA_NORM_UNIT || (int)norm > AQA_NORM_IMAGENET)
        return aqa_fail(AQA_EINVAL, "aqa_image_to_float: unknown normalisation %d", (int)norm);
    if (chan_stride < plane)
        return aqa_fail(AQA_EINVAL, "aqa_image_to_float: channel stride %zu < plane size %zu",
                        chan_stride, plane);
    float lut[3][256]; /* the 256 possible results per channel, each computed as the reference does */
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            switch (norm) {
            case AQA_NORM_I3D: lut[c][v] = (float)((double)v / 255.0 * 2.0 - 1.0); break;
            case AQA_NORM_CLIP: lut[c][v] = ((float)v / 255.0f - aqa_clip_mean[c]) / aqa_clip_std[c]; break;
            case AQA_NORM_IMAGENET:
                lut[c][v] = ((float)v / 255.0f - aqa_imagenet_mean[c]) / aqa_imagenet_std[c];
                break;
            default: lut[c][v] = (float)v / 255.0f; break;
            }
        }
    for (size_t i = 0; i < plane; i++)
        for (int c = 0; c < 3; c++) out[c * chan_stride + i] = lut[c][im->data[3 * i + c]];
    return AQA_OK;
}

aqa_frame_transform aqa_frame_transform_clip(int n) {
    aqa_frame_transform t = {0};
    t.short_side = n;
    t.filter = AQA_RESAMPLE_BICUBIC;
    t.crop_w = t.crop_h = n;
    t.crop_x = t.crop_y = AQA_CROP_CENTER;
    t.norm = AQA_NORM_CLIP;
    return t;
}

aqa_frame_transform aqa_frame_transform_i3d(int short_side, int crop) {
    aqa_frame_transform t = {0};
    t.short_side = short_side;
    t.filter = AQA_RESAMPLE_BILINEAR;
    t.crop_w = t.crop_h = crop;
    t.crop_x = t.crop_y = AQA_CROP_CENTER;
    t.norm = AQA_NORM_I3D;
    return t;
}

aqa_status aqa_frame_transform_resized_size(const aqa_frame_transform *t, int in_w, int in_h,
                                            int *rw, int *rh) {
    if (!t || !rw || !rh || in_w <= 0 || in_h <= 0)
        return aqa_fail(AQA_EINVAL, "aqa_frame_transform: bad arguments (input %dx%d)", in_w, in_h);
    if (t->short_side > 0) return aqa_resize_shorter_size(in_w, in_h, t->short_side, rw, rh);
    if (t->resize_w < 0 || t->resize_h < 0 || (t->resize_w > 0) != (t->resize_h > 0))
        return aqa_fail(AQA_EINVAL, "aqa_frame_transform: bad resize size %dx%d", t->resize_w,
                        t->resize_h);
    *rw = t->resize_w > 0 ? t->resize_w : in_w;
    *rh = t->resize_h > 0 ? t->resize_h : in_h;
    return AQA_OK;
}

aqa_status aqa_frame_transform_output_size(const aqa_frame_transform *t, int in_w, int in_h,
                                           int *out_w, int *out_h) {
    int rw, rh;
    aqa_status st = aqa_frame_transform_resized_size(t, in_w, in_h, &rw, &rh);
    if (st != AQA_OK) return st;
    if (t->crop_w < 0 || t->crop_h < 0)
        return aqa_fail(AQA_EINVAL, "aqa_frame_transform: bad crop %dx%d", t->crop_w, t->crop_h);
    *out_w = t->crop_w > 0 ? t->crop_w : rw;
    *out_h = t->crop_h > 0 ? t->crop_h : rh;
    return AQA_OK;
}

/* splitmix64: a small, well-mixed generator so a seed gives the same crop on every platform. */
static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

aqa_status aqa_frame_transform_randomize(aqa_frame_transform *t, int in_w, int in_h, uint64_t seed,
                                         double flip_prob) {
    int rw, rh;
    aqa_status st = aqa_frame_transform_resized_size(t, in_w, in_h, &rw, &rh);
    if (st != AQA_OK) return st;
    uint64_t s = seed;
    int cw = t->crop_w > 0 ? t->crop_w : rw, ch = t->crop_h > 0 ? t->crop_h : rh;
    /* when the crop is larger than the image there is no freedom: keep the centred/padded origin */
    t->crop_x = cw <= rw ? (int)(splitmix64(&s) % (uint64_t)(rw - cw + 1)) : AQA_CROP_CENTER;
    t->crop_y = ch <= rh ? (int)(splitmix64(&s) % (uint64_t)(rh - ch + 1)) : AQA_CROP_CENTER;
    double u = (double)(splitmix64(&s) >> 11) * (1.0 / 9007199254740992.0);
    t->hflip = flip_prob > 0 && u < flip_prob;
    return AQA_OK;
}

aqa_status aqa_frame_transform_apply(const aqa_frame_transform *t, const aqa_image *im, float *out,
                                     size_t chan_stride) {
    if (!t || !im || !im->data || !out)
        return aqa_fail(AQA_EINVAL, "aqa_frame_transform_apply: NULL argument");
    int rw, rh, ow, oh;
    aqa_status st = aqa_frame_transform_output_size(t, im->width, im->height, &ow, &oh);
    if (st != AQA_OK) return st;
    aqa_frame_transform_resized_size(t, im->width, im->height, &rw, &rh);
    aqa_image *resized = NULL, *cropped = NULL;
    const aqa_image *cur = im;
    if (rw != im->width || rh != im->height) {
        resized = aqa_image_resize(im, rw, rh, t->filter);
        if (!resized) return aqa_last_status();
        cur = resized;
    }
    if (ow != rw || oh != rh || t->hflip) {
        int x = t->crop_x == AQA_CROP_CENTER ? aqa_center_crop_offset(rw, ow) : t->crop_x;
        int y = t->crop_y == AQA_CROP_CENTER ? aqa_center_crop_offset(rh, oh) : t->crop_y;
        cropped = aqa_image_crop(cur, x, y, ow, oh);
        if (!cropped) {
            aqa_image_free(resized);
            return aqa_last_status();
        }
        if (t->hflip) aqa_image_hflip(cropped);
        cur = cropped;
    }
    st = aqa_image_to_float(cur, t->norm, out, chan_stride);
    aqa_image_free(cropped);
    aqa_image_free(resized);
    return st;
}

aqa_status aqa_clip_preprocess(const aqa_image *im, int n, float *out) {
    aqa_frame_transform t = aqa_frame_transform_clip(n);
    return aqa_frame_transform_apply(&t, im, out, 0);
}

aqa_status aqa_i3d_preprocess(const aqa_image *im, int short_side, int crop, float *out) {
    aqa_frame_transform t = aqa_frame_transform_i3d(short_side, crop);
    return aqa_frame_transform_apply(&t, im, out, 0);
}
