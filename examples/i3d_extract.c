/* i3d_extract.c: I3D clip features (and logits) to a safetensors file.
 *
 *   examples/i3d_extract --weights FILE.safetensors (--input FILE.safetensors | --frames DIR
 *                        [--frames DIR ...]) [--clip-len 16 --stride S] --out FILE.safetensors
 *                        [--logits] [--batch N] [--short-side 256 --crop 224] [--width W]
 *
 * --weights: pytorch-i3d state_dict names (scripts/convert_i3d_pt.py converts rgb_imagenet.pt).
 *            The network's width comes from --width, else from the file as extract_features
 *            reads it (aqa_i3d_file_width: metadata "width_multiplier", or the "config" JSON's,
 *            else 1); classes and input channels from the tensors' shapes.
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
#include "examples/cli.h"
#include "models/i3d/i3d.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"

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
    if (i < 0 || aqa_st_get(f, i)->ndim != 5) {
        aqa_fail(AQA_EFORMAT, "%s: no 5-D Conv3d_1a_7x7.conv3d.weight: not pytorch-i3d weights", path);
        aqa_st_close(f);
        return false;
    }
    cfg->in_channels = aqa_st_get(f, i)->shape[1];
    if ((i = aqa_st_find(f, "logits.conv3d.weight")) >= 0 && aqa_st_get(f, i)->ndim == 5) cfg->num_classes = aqa_st_get(f, i)->shape[0];
    else if (logits) {
        aqa_fail(AQA_EFORMAT, "%s: --logits needs a 5-D logits.conv3d.weight", path);
        aqa_st_close(f);
        return false;
    }
    aqa_st_close(f);
    if (width > 0) cfg->width_multiplier = width;
    else if (aqa_i3d_file_width(path, &cfg->width_multiplier) != AQA_OK) return false;
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
    kv_config c = {.program = "i3d_extract", .about = "I3D clip features (and logits) to a safetensors file."};
    aqa_i3d_clip_opts co = aqa_i3d_default_clip_opts();
    char def_len[32], def_stride[32], def_short[32], def_crop[32];
    snprintf(def_len, sizeof def_len, "%lld", (long long)co.clip_len);
    snprintf(def_stride, sizeof def_stride, "%lld", (long long)co.stride);
    snprintf(def_short, sizeof def_short, "%d", co.short_side);
    snprintf(def_crop, sizeof def_crop, "%d", co.crop);
    kv_def(&c, "weights", "", "I3D weights (pytorch-i3d names, safetensors)");
    kv_def(&c, "input", "", "safetensors file holding `video` [B, 3, T, H, W] in [-1, 1]");
    kv_def_list(&c, "frames", "frame folders (.jpg/.jpeg/.png, sorted by name), repeatable");
    kv_def(&c, "out", "", "output safetensors file");
    kv_def_int(&c, "clip_len", def_len, 1, 100000, "frames per clip");
    kv_def_int(&c, "stride", def_stride, 1, 100000, "first frames of clips every this many frames");
    kv_def_int(&c, "short_side", def_short, 0, 8192, "frames: shorter side resized to this (0 = no resize)");
    kv_def_int(&c, "crop", def_crop, 1, 8192, "frames: centre crop side");
    kv_def_int(&c, "batch", "9", 1, 100000, "clips per forward");
    kv_def_num(&c, "width", "0", 0, 1, "width multiplier (0 = the one stored in --weights, else 1)");
    kv_def_bool(&c, "logits", "false", "also write the logits");
    int pr = kv_parse_args(&c, argc, argv,
                           "--weights FILE.safetensors (--input FILE.safetensors | --frames DIR [--frames DIR ...])\n"
                           "                   [--clip-len 16 --stride S] --out FILE.safetensors [--logits] [--batch N]\n"
                           "                   [--short-side 256 --crop 224] [--width W]");
    int n_frames_dirs = 0;
    char **frames = kv_list(&c, "frames", &n_frames_dirs);
    const char *weights = kv_str(&c, "weights"), *input = kv_has(&c, "input") ? kv_str(&c, "input") : NULL;
    const char *out = kv_str(&c, "out");
    if (!pr && (!weights[0] || !out[0] || (!input && !n_frames_dirs) || (input && n_frames_dirs))) {
        fprintf(stderr, "i3d_extract: --weights, --out and one of --input or --frames are required (--help)\n");
        pr = 1;
    }
    if (pr) {
        kv_free(&c);
        return kv_exit_code(pr);
    }
    co.clip_len = kv_int(&c, "clip_len");
    co.stride = kv_int(&c, "stride");
    co.short_side = (int)kv_int(&c, "short_side");
    co.crop = (int)kv_int(&c, "crop");
    const int64_t batch = kv_int(&c, "batch");
    const double width = kv_double(&c, "width");
    const bool want_logits = kv_bool(&c, "logits");
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
    kv_free(&c);
    aqa_i3d_free(m);
    return 0;
}
