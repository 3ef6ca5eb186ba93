/* extract_features.c: runs the frozen CLIP image encoder (and optionally I3D) over a dataset's
 * sampled frames once and writes one feature file per video (datasets/feature_cache.h), plus the
 * text embeddings of the dataset's stage and video texts.
 *
 *     examples/extract_features --data DIR --out CACHE --clip runs/clip/clip.safetensors
 *                               --vocab runs/clip/vocab.txt [--i3d WEIGHTS | --i3d-width 0.25]
 *
 * Per video: <out>/<key>.safetensors with "clip" [T, D] (the sampled frames of the loaders' rule,
 * CLIP's preprocessing at the model's resolution), "i3d" [N, C] (the N clips of 16 frames,
 * resized so the shorter side is --i3d-short and centre-cropped to --i3d-size, values in [-1, 1])
 * and "i3d_map" [N, C, H, W] (each clip's Mixed_5c map averaged over time: TSA's feature maps,
 * 4 x 4 at 112 px).
 * Texts: <out>/texts.safetensors holds "stage_text" [C_sta, D] and "video_text" [C_vid, D], the
 * frozen CLIP text encoder's embeddings of the texts listed, one per line, in
 * <out>/stage_texts.txt and <out>/video_texts.txt (the dataset's vocabularies, the stage texts in
 * --prompt-template: train_mvla checks its own against them; with --quality-text the graded texts
 * of train_mvla --quality-text), and in its metadata the absolute paths of the CLIP weights and
 * tokenizer ("clip", "vocab", "bpe"), which train_mvla uses to fine-tune that text encoder when
 * not given --clip (the cached tables serve frozen runs).
 *
 * Frames come from the frame folders of --data, or from video files (datasets/video_dataset.h:
 * FineDiving's untrimmed <video>.mp4, ...) in --videos (default --data) where the frame folders
 * are missing; --video-height resizes decoded frames first (the height of the frames the model
 * was meant for: FineDiving's are 256 rows), as examples/extract_frames --height does.
 *
 * Resumable: a video whose file exists and is valid (format, key, shapes) is skipped, so an
 * interrupted run continues where it stopped; each file is written atomically.
 *
 * I3D: --i3d FILE loads pytorch-i3d weights (converted to safetensors, or written by
 * examples/pretrain_i3d, whose metadata gives the width multiplier); without it, --i3d-width W
 * builds a randomly initialised I3D at W times the real width (seeded by --i3d-seed): a fixed
 * random video feature (the main job pretrains its I3D instead: examples/pretrain_i3d); its
 * BatchNorm statistics are first re-estimated on the clips of --i3d-calibrate videos (see
 * calibrate_i3d_bn in mvla_run.h), else its activations vanish with depth.
 * --no-i3d (i3d-width 0 and no --i3d) writes CLIP features only. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "datasets/feature_cache.h"
#include "datasets/loader.h"
#include "datasets/video_dataset.h"
#include "examples/mvla_run.h"
#include "models/i3d/i3d.h"
#include "io/atomic_file.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"

int main(int argc, char **argv) {
    kv_config c = {.program = "extract_features"};
    kv_def(&c, "data", "", "dataset folder");
    kv_def_choice(&c, "dataset", "synthetic", "synthetic|finediving|mtl-aqa|mtl_aqa|mtlaqa|jigsaws", "dataset (annotation layout)");
    kv_def(&c, "split", "", "split to extract (\"\" = every video of the dataset)");
    kv_def(&c, "videos", "", "folder of the frame folders or video files when not --data");
    kv_def(&c, "video_height", "0", "video files: resize frames to this many rows first (0 = as decoded)");
    kv_def(&c, "out", "", "cache folder (created)");
    kv_def(&c, "clip", "", "CLIP weights (safetensors, OpenAI or Hugging Face names)");
    kv_def(&c, "vocab", "", "word vocabulary of a CLIP trained by pretrain_clip");
    kv_def(&c, "bpe", "", "CLIP's bpe_simple_vocab_16e6.txt.gz (real CLIP weights)");
    kv_def(&c, "prompt_template", AQA_DIVING_TEMPLATE, "prompt of the diving stage texts (\"none\": the bare texts)");
    kv_def(&c, "i3d", "", "I3D weights (pytorch-i3d names, safetensors; pretrain_i3d's carry their width)");
    kv_def_num(&c, "i3d_width", "0", 0, 1, "without --i3d: random I3D at this width multiplier (0 = no I3D features)");
    kv_def_int(&c, "i3d_seed", "0", 0, 1e18, "seed of the random I3D");
    kv_def_int(&c, "i3d_calibrate", "8", 0, 1e6, "random I3D: training videos whose clips re-estimate its BatchNorm statistics");
    kv_def_int(&c, "i3d_short", "128", 16, 4096, "I3D input: shorter side resized to this");
    kv_def_int(&c, "i3d_size", "112", 16, 4096, "I3D input: centre crop side");
    kv_def_int(&c, "frames", "0", 0, 100000, "T frames per video (0 = the dataset's: 96, 103, 160)");
    kv_def_int(&c, "clips", "0", 0, AQA_VD_MAX_CLIPS, "N clips per video (0 = the dataset's)");
    kv_def_int(&c, "clip_stride", "0", 0, 100000, "clip start stride (0 = the dataset's)");
    kv_def_int(&c, "batch", "96", 1, 100000, "frames per CLIP forward");
    kv_def_bool(&c, "skip_bad", "false", "skip unreadable videos (warned, counted) instead of failing");
    kv_def_bool(&c, "quality_text", "false", "dives: the graded texts of train_mvla --quality-text (\"+ Quality Text\")");
    kv_def_bool(&c, "progress", "true", "progress line on stderr");
    int pr = kv_parse_args(&c, argc, argv, "--data DIR --out CACHE --clip WEIGHTS (--vocab FILE | --bpe FILE) [settings]");
    if (pr) return kv_exit_code(pr);
    if (!kv_has(&c, "data") || !kv_has(&c, "out") || !kv_has(&c, "clip")) {
        fprintf(stderr, "extract_features: --data, --out and --clip are required\n");
        return 1;
    }
    aqa_vd_config vc;
    aqa_vd_config_init(&vc);
    vc.root = kv_str(&c, "data");
    if (parse_dataset(kv_str(&c, "dataset"), &vc.dataset) || vc.dataset == AQA_ANN_FISV) {
        fprintf(stderr, "extract_features: unknown or frameless dataset \"%s\"\n", kv_str(&c, "dataset"));
        return 1;
    }
    vc.split = kv_has(&c, "split") ? kv_str(&c, "split") : NULL;
    vc.frames_root = kv_has(&c, "videos") ? kv_str(&c, "videos") : NULL;
    vc.video_height = (int)kv_int(&c, "video_height");
    vc.num_frames = (int)kv_int(&c, "frames");
    vc.num_clips = (int)kv_int(&c, "clips");
    vc.clip_stride = (int)kv_int(&c, "clip_stride");
    vc.policy = kv_bool(&c, "skip_bad") ? AQA_BAD_DATA_SKIP : AQA_BAD_DATA_FAIL;
    vc.quality_texts = kv_bool(&c, "quality_text");
    if (run_stage_template(&c, vc.dataset, &vc)) {
        fprintf(stderr, "extract_features: %s\n", aqa_last_error());
        return 1;
    }
    const char *out = kv_str(&c, "out");
    int n_stale = 0;
    if (mkdir_p(out)) {
        fprintf(stderr, "extract_features: cannot create %s: %s\n", out, strerror(errno));
        return 1;
    }
    if (aqa_atomic_clean_stale(out, &n_stale)) {
        fprintf(stderr, "extract_features: %s\n", aqa_last_error());
        return 1;
    }
    if (n_stale) fprintf(stderr, "extract_features: removed %d stale temporary file(s) in %s\n", n_stale, out);
    int rc = 1;
    aqa_video_dataset *ds = NULL;
    aqa_clip_model *clip = NULL;
    aqa_i3d *i3d = NULL;
    char path[1400];

    ds = aqa_video_dataset_open(&vc);
    if (!ds) goto fail;
    print_notes("extract_features", ds);
    if (aqa_clip_load(kv_str(&c, "clip"), &clip)) goto fail;
    aqa_module_train(&clip->base, false);
    if (kv_has(&c, "i3d") || kv_double(&c, "i3d_width") > 0) {
        /* a random I3D is calibrated on training videos only (the test split's frames stay unseen) */
        aqa_frame_transform tf = aqa_frame_transform_i3d((int)kv_int(&c, "i3d_short"), (int)kv_int(&c, "i3d_size"));
        aqa_video_dataset *cal = NULL;
        if (!kv_has(&c, "i3d") && kv_int(&c, "i3d_calibrate") > 0) {
            aqa_vd_config cc = vc;
            cc.split = "train";
            if (!(cal = aqa_video_dataset_open(&cc))) aqa_clear_error();
        }
        i3d = open_feature_i3d(kv_str(&c, "i3d"), kv_double(&c, "i3d_width"), (uint64_t)kv_int(&c, "i3d_seed"),
                               (int)kv_int(&c, "i3d_calibrate"), cal ? cal : ds, &tf);
        aqa_video_dataset_free(cal);
        if (!i3d) goto fail;
    }
    const int64_t D = clip->cfg.embed_dim, T = ds->T, N = ds->N, C = i3d ? i3d->feature_dim : 0;
    const int R = (int)clip->cfg.image_resolution;

    /* texts: the frozen tables of run_text_tables (train_mvla's source of texts), their lists, and
     * where the CLIP and its tokenizer are (absolute paths when they resolve) */
    {
        aqa_mvla_text_tables *tt = run_text_tables(clip, &c, ds, false);
        aqa_tensor *st = NULL, *vt = NULL;
        if (!tt || aqa_mvla_text_tables_get(tt, &st, &vt)) {
            aqa_mvla_text_tables_free(tt);
            goto fail;
        }
        char abs[3][PATH_MAX];
        const char *keys[3] = {"clip", "vocab", "bpe"}, *mk[5] = {"format"}, *mv[5] = {"aqa-texts-1"};
        int nm = 1;
        for (int k = 0; k < 3; k++) {
            if (!kv_has(&c, keys[k])) continue;
            if (!realpath(kv_str(&c, keys[k]), abs[k])) snprintf(abs[k], sizeof abs[k], "%s", kv_str(&c, keys[k]));
            mk[nm] = keys[k];
            mv[nm++] = abs[k];
        }
        snprintf(path, sizeof path, "%s/texts.safetensors", out);
        const char *names[2] = {"stage_text", "video_text"};
        aqa_status s = aqa_save_tensors(path, 2, names, (aqa_tensor *[]){st, vt}, nm, mk, mv);
        aqa_mvla_text_tables_free(tt);
        if (s) goto fail;
        snprintf(path, sizeof path, "%s/stage_texts.txt", out);
        if (aqa_text_set_save(&ds->stage_texts, path)) goto fail;
        snprintf(path, sizeof path, "%s/video_texts.txt", out);
        if (aqa_text_set_save(&ds->video_texts, path)) goto fail;
    }

    aqa_loader_config lc;
    aqa_loader_config_init(&lc);
    lc.clip_frames = true;
    lc.clip_tf = aqa_frame_transform_clip(R);
    lc.i3d_clips = i3d != NULL;
    lc.i3d_tf = aqa_frame_transform_i3d((int)kv_int(&c, "i3d_short"), (int)kv_int(&c, "i3d_size"));
    char encoder[4096];
    snprintf(encoder, sizeof encoder, "clip=%s T=%lld res=%d i3d=%s width=%g seed=%ld N=%lld size=%ld/%ld cal=%ld vh=%ld",
             kv_str(&c, "clip"), (long long)T, R, kv_has(&c, "i3d") ? kv_str(&c, "i3d") : "random",
             kv_double(&c, "i3d_width"), kv_int(&c, "i3d_seed"), (long long)N, kv_int(&c, "i3d_short"),
             kv_int(&c, "i3d_size"), kv_int(&c, "i3d_calibrate"), kv_int(&c, "video_height"));
    size_t done = 0, skipped = 0, failed = 0;
    const long fb = kv_int(&c, "batch");
    float *cf = malloc((size_t)(T * D) * sizeof *cf), *i3f = C ? malloc((size_t)(N * C) * sizeof *i3f) : NULL;
    float *i3m = NULL;
    int64_t MH = 0, MW = 0;
    aqa_progress prog;
    aqa_progress_start(&prog, "extract_features", ds->n_items, kv_bool(&c, "progress"));
    double t0 = aqa_now();
    for (size_t i = 0; i < ds->n_items; i++) {
        const aqa_ann_sample *s = aqa_vd_sample(ds, i);
        if (aqa_feature_cache_path(out, s->key, path, sizeof path)) goto fail_loop;
        if (aqa_feature_cache_valid(path, s->key, true, T, D, C > 0, N, C)) {
            skipped++;
            aqa_progress_update(&prog, i + 1, NULL);
            continue;
        }
        aqa_batch *b = NULL;
        if (aqa_batch_build(ds, &lc, &i, 1, 0, &b)) goto fail_loop;
        if (b->B == 0 || !b->clip_frames) { /* left out under the skip policy */
            failed++;
            aqa_batch_free(b);
            continue;
        }
        bool prev = aqa_set_grad_enabled(false);
        aqa_scope_begin();
        aqa_tensor *frames = aqa_select(b->clip_frames, 0, 0); /* [T, 3, R, R] */
        aqa_status st = AQA_OK;
        for (int64_t f0 = 0; f0 < T && !st; f0 += fb) {
            int64_t n = T - f0 < fb ? T - f0 : fb;
            aqa_scope_begin();
            aqa_tensor *e = aqa_clip_encode_image(clip, aqa_narrow(frames, 0, f0, n), true);
            st = e ? aqa_copy_to_host(e, cf + f0 * D, AQA_F32) : aqa_last_status();
            aqa_scope_end();
        }
        if (!st && C) {
            aqa_tensor *x = aqa_select(b->i3d_clips, 0, 0); /* [N, 3, 16, S, S] */
            aqa_tensor *e = NULL, *map = NULL;
            st = aqa_i3d_features_maps(i3d, x, &e, &map);
            if (!st && !i3m) { /* the map size follows from the crop: known after the first clip */
                MH = map->shape[2];
                MW = map->shape[3];
                if (!(i3m = malloc((size_t)(N * C * MH * MW) * sizeof *i3m))) st = aqa_fail(AQA_ENOMEM, "out of memory");
            }
            if (!st) st = aqa_copy_to_host(e, i3f, AQA_F32);
            if (!st) st = aqa_copy_to_host(map, i3m, AQA_F32);
        }
        aqa_scope_end();
        aqa_set_grad_enabled(prev);
        aqa_batch_free(b);
        aqa_feature_set fs = {cf, i3f, i3m, T, D, N, C, MH, MW};
        if (st || aqa_feature_cache_write(path, s->key, &fs, encoder)) goto fail_loop;
        done++;
        aqa_progress_update(&prog, i + 1, NULL);
    }
    aqa_progress_finish(&prog, NULL);
    printf("extracted %zu, already there (resumed) %zu, skipped as bad %zu, of %zu videos in %.1f s; "
           "clip [%lld, %lld], i3d [%lld, %lld], i3d_map [%lld, %lld, %lld, %lld]\n",
           done, skipped, failed, ds->n_items, aqa_now() - t0, (long long)T, (long long)D, (long long)N, (long long)C,
           (long long)N, (long long)C, (long long)MH, (long long)MW);
    if (ds->summary.n_items != ds->summary.n_split || failed) aqa_vd_print_summary(ds, stdout);
    rc = 0;
    free(cf);
    free(i3f);
    free(i3m);
    goto done;
fail_loop:
    free(cf);
    free(i3f);
    free(i3m);
fail:
    fprintf(stderr, "extract_features: %s\n", aqa_last_error());
done:
    aqa_clip_model_free(clip);
    if (i3d) aqa_i3d_free(i3d);
    aqa_video_dataset_free(ds);
    return rc;
}
