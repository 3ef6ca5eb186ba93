/* i3d_extract.c: I3D clip features (and logits) to a safetensors file.
 *
 *   examples/i3d_extract --weights FILE.safetensors (--input FILE.safetensors | --frames DIR
 *                        [--frames DIR ...]) [--clip-len 16 --stride S] --out FILE.safetensors
 *                        [--logits] [--batch N] [--short-side 256 --crop 224] [--width W]
 *
 * --weights: pytorch-i3d state_dict names (scripts/convert_i3d_pt.py converts rgb_imagenet.pt).
 *            The network's width comes from --width, else the file's metadata "config" JSON key
 *            "width_multiplier", else 1; classes and input channels from the tensors' shapes.
 * --input:   a tensor `video` [B, 3, T, H, W] already normalised (pytorch-i3d: [-1, 1]).
 * --frames:  a folder of frames (.jpg/.jpeg/.png, sorted by name): shorter side resized to
 *            --short-side (default 256, 0 = no resize), centre crop --crop (default 224), scaled
 *            to [-1, 1], split into clips of --clip-len frames (16) every --stride frames
 *            (default 10; the last clip ends at the last frame, see models/i3d/i3d.h).  The clips
 *            of several folders follow each other in folder order.
 * Writes `features` F32 [B, 1024] (Mixed_5c, the [2, 7, 7] average pool and the mean over any
 * remaining positions) and, with --logits, `logits` F32 [B, classes]; B is the number of clips.
 * Clips run in eval mode without gradients, --batch (default 9) at a time; progress on stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "models/i3d/i3d.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"

static void usage(FILE *f) {
    fprintf(f, "usage: i3d_extract --weights FILE.safetensors (--input FILE.safetensors | --frames DIR [--frames DIR ...])\n"
               "                   [--clip-len 16 --stride S] --out FILE.safetensors [--logits] [--batch N]\n"
               "                   [--short-side 256 --crop 224] [--width W]\n");
}

static void die(const char *what) {
    fprintf(stderr, "i3d_extract: %s: %s\n", what, aqa_last_error());
    exit(1);
}

/* Model configuration from the weights file: shapes and optional metadata. */
static bool config_from_file(const char *path, double width, bool logits, aqa_i3d_config *cfg) {
    aqa_st_file *f;
    if (aqa_st_open(path, &f) != AQA_OK) return false;
    *cfg = aqa_i3d_default_config();
    cfg->final_endpoint = logits ? AQA_I3D_LOGITS : AQA_I3D_FEATURES;
    int i = aqa_st_find(f, "Conv3d_1a_7x7.conv3d.weight");
    if (i < 0) {
        aqa_fail(AQA_EFORMAT, "%s: no Conv3d_1a_7x7.conv3d.weight: not pytorch-i3d weights", path);
        aqa_st_close(f);
        return false;
    }
    cfg->in_channels = aqa_st_get(f, i)->shape[1];
    if ((i = aqa_st_find(f, "logits.conv3d.weight")) >= 0) cfg->num_classes = aqa_st_get(f, i)->shape[0];
    else if (logits) {
        aqa_fail(AQA_EFORMAT, "%s: --logits needs logits.conv3d.weight", path);
        aqa_st_close(f);
        return false;
    }
    if (width > 0) cfg->width_multiplier = width;
    else {
        const char *c = aqa_st_metadata(f, "config");
        const char *k = c ? strstr(c, "\"width_multiplier\"") : NULL;
        if (k && (k = strchr(k, ':'))) cfg->width_multiplier = strtod(k + 1, NULL);
    }
    aqa_st_close(f);
    return true;
}

/* Rows [start, start + n) of a caller-owned [B, ...] tensor through the model, into out rows. */
static void run_batch(aqa_i3d *m, aqa_tensor *video, int64_t start, int64_t n, float *feat, float *logit,
                      int64_t classes) {
    aqa_scope_begin();
    aqa_tensor *x = aqa_narrow(video, 0, start, n);
    aqa_tensor *f = NULL, *l = NULL;
    if (aqa_i3d_features_logits(m, x, &f, logit ? &l : NULL) != AQA_OK) die("forward");
    if (aqa_copy_to_host(f, feat + start * m->feature_dim, AQA_F32) != AQA_OK) die("features");
    if (logit && aqa_copy_to_host(l, logit + start * classes, AQA_F32) != AQA_OK) die("logits");
    aqa_scope_end();
}

int main(int argc, char **argv) {
    const char *weights = NULL, *input = NULL, *out = NULL;
    const char **frames = calloc((size_t)argc, sizeof *frames);
    int n_frames_dirs = 0;
    bool want_logits = false;
    aqa_i3d_clip_opts co = aqa_i3d_default_clip_opts();
    int64_t batch = 9;
    double width = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--weights") && has) weights = argv[++i];
        else if (!strcmp(a, "--input") && has) input = argv[++i];
        else if (!strcmp(a, "--frames") && has) frames[n_frames_dirs++] = argv[++i];
        else if (!strcmp(a, "--out") && has) out = argv[++i];
        else if (!strcmp(a, "--clip-len") && has) co.clip_len = atoll(argv[++i]);
        else if (!strcmp(a, "--stride") && has) co.stride = atoll(argv[++i]);
        else if (!strcmp(a, "--short-side") && has) co.short_side = atoi(argv[++i]);
        else if (!strcmp(a, "--crop") && has) co.crop = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && has) batch = atoll(argv[++i]);
        else if (!strcmp(a, "--width") && has) width = atof(argv[++i]);
        else if (!strcmp(a, "--logits")) want_logits = true;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "i3d_extract: unknown or incomplete argument %s\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!weights || !out || (!input && !n_frames_dirs) || (input && n_frames_dirs) || batch < 1 || co.clip_len < 1) {
        usage(stderr);
        return 2;
    }
    aqa_i3d_config cfg;
    if (!config_from_file(weights, width, want_logits, &cfg)) die(weights);
    aqa_i3d *m = aqa_i3d_new(&cfg);
    if (!m) die("model");
    if (aqa_i3d_load(m, weights) != AQA_OK) die(weights);
    aqa_module_train(&m->base, false);
    aqa_set_grad_enabled(false);

    /* the whole input as one caller-owned [B, C, T, H, W] tensor */
    aqa_tensor *video = NULL;
    if (input) {
        video = aqa_load_tensor(input, "video", AQA_F32);
        if (!video) die(input);
        if (video->ndim != 5) {
            fprintf(stderr, "i3d_extract: %s: video must be [B, 3, T, H, W]\n", input);
            return 1;
        }
    } else {
        aqa_tensor **parts = calloc((size_t)n_frames_dirs, sizeof *parts);
        for (int d = 0; d < n_frames_dirs; d++) {
            fprintf(stderr, "i3d_extract: decoding %s\n", frames[d]);
            if (!(parts[d] = aqa_i3d_load_clips(frames[d], &co))) die(frames[d]);
        }
        video = n_frames_dirs == 1 ? parts[0] : aqa_cat(parts, n_frames_dirs, 0);
        if (!video) die("clips");
        if (n_frames_dirs > 1)
            for (int d = 0; d < n_frames_dirs; d++) aqa_tensor_free(parts[d]);
        free(parts);
    }
    const int64_t B = video->shape[0], D = m->feature_dim, K = cfg.num_classes;
    float *feat = malloc(sizeof(float) * (size_t)(B * D + 1));
    float *logit = want_logits ? malloc(sizeof(float) * (size_t)(B * K + 1)) : NULL;
    if (!feat || (want_logits && !logit)) {
        fprintf(stderr, "i3d_extract: out of memory\n");
        return 1;
    }
    for (int64_t s = 0; s < B; s += batch) {
        int64_t n = B - s < batch ? B - s : batch;
        fprintf(stderr, "i3d_extract: clips %lld-%lld of %lld\n", (long long)s + 1, (long long)(s + n), (long long)B);
        run_batch(m, video, s, n, feat, logit, K);
    }
    aqa_tensor *ft = aqa_from_data(feat, AQA_SHAPE(B, D), AQA_F32);
    aqa_tensor *lt = want_logits ? aqa_from_data(logit, AQA_SHAPE(B, K), AQA_F32) : NULL;
    const char *names[2] = {"features", "logits"};
    aqa_tensor *ts[2] = {ft, lt};
    const char *mk[1] = {"source"}, *mv[1] = {input ? input : frames[0]};
    if (!ft || (want_logits && !lt) || aqa_save_tensors(out, want_logits ? 2 : 1, names, ts, 1, mk, mv) != AQA_OK)
        die(out);
    fprintf(stderr, "i3d_extract: wrote %lld x %lld features%s to %s\n", (long long)B, (long long)D,
            want_logits ? " and logits" : "", out);
    aqa_tensor_free(ft);
    aqa_tensor_free(lt);
    aqa_tensor_free(video);
    free(feat);
    free(logit);
    free(frames);
    aqa_i3d_free(m);
    return 0;
}
