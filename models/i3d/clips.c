/* clips.c: I3D video input: a folder of frame images (JPEG/PNG, sorted by name) decoded, resized,
 * cropped and scaled to [-1, 1], split into clips of clip_len frames at a stride, as the tensor
 * [n_clips, 3, clip_len, H, W] the network takes. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "image/image.h"
#include "image/resize.h"
#include "models/i3d/i3d.h"

int aqa_i3d_clip_starts(int64_t n_frames, int64_t clip_len, int64_t stride, int64_t *starts, int max_out) {
    if (n_frames < 1 || clip_len < 1 || stride < 0 || (max_out > 0 && !starts)) {
        aqa_fail(AQA_EINVAL, "aqa_i3d_clip_starts: bad arguments (frames %lld, clip_len %lld, stride %lld)",
                 (long long)n_frames, (long long)clip_len, (long long)stride);
        return -1;
    }
    if (stride == 0) stride = clip_len;
    int n = 0;
    int64_t last = -1;
    if (n_frames <= clip_len) {
        if (n < max_out) starts[n] = 0;
        return 1;
    }
    for (int64_t s = 0; s + clip_len <= n_frames; s += stride) {
        if (n < max_out) starts[n] = s;
        n++;
        last = s;
    }
    /* the stride grid stopped short of the last frame: one more clip ending exactly there */
    if (last + clip_len < n_frames) {
        if (n < max_out) starts[n] = n_frames - clip_len;
        n++;
    }
    return n;
}

aqa_i3d_clip_opts aqa_i3d_default_clip_opts(void) {
    return (aqa_i3d_clip_opts){.clip_len = 16, .stride = 10, .short_side = 256, .crop = 224};
}

static bool is_image_name(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0 || strcasecmp(dot, ".png") == 0);
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

void aqa_i3d_free_names(char **names, int n) {
    if (!names) return;
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

int aqa_i3d_list_frames(const char *dir, char ***out) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) {
        aqa_fail(AQA_EIO, "%s: cannot open the frames folder", dir);
        return -1;
    }
    char **names = NULL;
    int n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || !is_image_name(e->d_name)) continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **grown = realloc(names, sizeof *names * (size_t)cap);
            if (!grown) goto oom;
            names = grown;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        if (!(names[n] = malloc(len))) goto oom;
        snprintf(names[n], len, "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (n) qsort(names, (size_t)n, sizeof *names, cmp_names);
    *out = names;
    return n;
oom:
    closedir(d);
    aqa_i3d_free_names(names, n);
    aqa_fail(AQA_ENOMEM, "%s: out of memory listing frames", dir);
    return -1;
}

aqa_tensor *aqa_i3d_load_clips(const char *dir, const aqa_i3d_clip_opts *opts_in) {
    aqa_i3d_clip_opts o = opts_in ? *opts_in : aqa_i3d_default_clip_opts();
    if (o.clip_len < 1 || o.crop < 0 || o.short_side < 0)
        return aqa_fail_null("aqa_i3d_load_clips: bad options (clip_len %lld, crop %d)", (long long)o.clip_len,
                             o.crop);
    char **names;
    int nf = aqa_i3d_list_frames(dir, &names);
    if (nf < 0) return NULL;
    if (nf == 0) {
        aqa_i3d_free_names(names, nf);
        return aqa_fail_null("%s: no .jpg/.jpeg/.png frames", dir);
    }
    aqa_tensor *out = NULL;
    int64_t *starts = NULL;
    int nc = aqa_i3d_clip_starts(nf, o.clip_len, o.stride, NULL, 0);
    aqa_frame_transform t = aqa_frame_transform_i3d(o.short_side, o.crop);
    int ow = 0, oh = 0, w0 = 0, h0 = 0;
    if (nc < 1 || !(starts = malloc(sizeof *starts * (size_t)nc))) goto done;
    aqa_i3d_clip_starts(nf, o.clip_len, o.stride, starts, nc);
    const int64_t L = o.clip_len;
    /* a frame index past the video's end repeats the last frame */
    for (int f = 0; f < nf; f++) {
        aqa_image *im = aqa_image_load(names[f]);
        if (!im) goto fail;
        if (f == 0) {
            w0 = im->width;
            h0 = im->height;
            if ((o.random_crop && aqa_frame_transform_randomize(&t, w0, h0, o.seed, o.flip_prob) != AQA_OK) ||
                aqa_frame_transform_output_size(&t, w0, h0, &ow, &oh) != AQA_OK) {
                aqa_image_free(im);
                goto fail;
            }
            out = aqa_empty(AQA_SHAPE(nc, 3, L, oh, ow), AQA_F32);
            if (!out) {
                aqa_image_free(im);
                goto fail;
            }
        } else if (im->width != w0 || im->height != h0) {
            aqa_fail(AQA_EFORMAT, "%s: frame is %dx%d, the first frame %dx%d", names[f], im->width, im->height, w0, h0);
            aqa_image_free(im);
            goto fail;
        }
        float *base = aqa_data(out);
        const size_t plane = (size_t)oh * (size_t)ow, cstride = (size_t)L * plane;
        float *first = NULL;
        for (int c = 0; c < nc; c++) {
            for (int64_t j = 0; j < L; j++) {
                int64_t src = starts[c] + j < nf ? starts[c] + j : nf - 1;
                if (src != f) continue;
                float *dst = base + (size_t)c * 3 * cstride + (size_t)j * plane;
                if (!first) {
                    if (aqa_frame_transform_apply(&t, im, dst, cstride) != AQA_OK) {
                        aqa_image_free(im);
                        goto fail;
                    }
                    first = dst;
                } else {
                    for (int ch = 0; ch < 3; ch++)
                        memcpy(dst + ch * cstride, first + ch * cstride, plane * sizeof(float));
                }
            }
        }
        aqa_image_free(im);
    }
    goto done;
fail:
    aqa_tensor_free(out);
    out = NULL;
done:
    free(starts);
    aqa_i3d_free_names(names, nf);
    return out;
}
