/* make_synthetic: writes one of aqa's synthetic datasets (datasets/synthetic.h) in a real dataset's
 * files and/or a contact sheet of one of its dives.
 *
 *   examples/make_synthetic --out DIR --videos N --seed S [--layout finediving|mtl-aqa|jigsaws|fisv]
 *                           [--size 64 | --width W --height H] [--feature-dim 64]
 *                           [--format png|jpg] [--quality Q] [--frames MIN:MAX] [--train F]
 *                           [--per-video K] [--threads T] [--quiet]
 *                           [--contact-sheet FILE [--sheet-dive I] [--sheet-tiles N] [--sheet-cols C]]
 *                           [--video-files DIR] [--dive-files DIR] [--video-ext mp4] [--video-codec NAME]
 *
 * Without --out only the contact sheet and the videos are written (the dives are planned, not
 * written as frames).  The same options and seed give byte-identical frame files.  --video-files
 * writes one untrimmed video per competition video (<DIR>/<video>.<ext>, a dive's frames at its
 * annotated frame numbers: the input of examples/extract_frames), --dive-files one video per dive
 * (<DIR>/<video>_<instance>.<ext>: clips for examples/score_video); --video-codec ffv1 with
 * --video-ext mkv is lossless (aqa_synthetic_write_videos).  Progress goes to stderr, a summary to
 * stdout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datasets/synthetic.h"
#include "examples/cli.h"

int main(int argc, char **argv) {
    aqa_synthetic_config cfg;
    aqa_synthetic_config_init(&cfg);
    kv_config c = {.program = "make_synthetic",
                   .about = "Writes a synthetic dataset in a real dataset's files (--layout: FineDiving's dives with frame\n"
                            "labels, MTL-AQA's dives, JIGSAWS' surgical trials, Fis-V's skating programmes), and/or a contact\n"
                            "sheet of one of its dives."};
    kv_def(&c, "out", "", "dataset folder (without it only the contact sheet is drawn)");
    kv_def_choice(&c, "layout", "finediving", "finediving|mtl-aqa|jigsaws|fisv",
                  "which dataset's files: dives (FineDiving's, MTL-AQA's), surgical trials (JIGSAWS'), skating programmes (Fis-V's)");
    kv_def_int(&c, "videos", "200", 1, 1000000, "dives / trials / programmes");
    kv_def_int(&c, "seed", "0", 0, 1e18, "random seed (same options and seed: byte-identical files)");
    kv_def_int(&c, "size", "0", 0, 1024, "frame width and height in pixels (0 = --width x --height)");
    kv_def_int(&c, "width", "64", 16, 1024, "frame width");
    kv_def_int(&c, "height", "64", 16, 1024, "frame height");
    kv_def_choice(&c, "format", "png", "png|jpg|jpeg", "frame file format");
    kv_def_int(&c, "quality", "90", 1, 100, "JPEG quality");
    kv_def(&c, "frames", "", "frames per video MIN:MAX (16 <= MIN <= MAX <= 2000; Fis-V 100000); \"\" = the layout's");
    kv_def_int(&c, "feature_dim", "64", 8, 4096, "Fis-V: columns of the per-clip feature files");
    kv_def_num(&c, "train", "0", 0, 1, "training fraction (0 = the layout's: 0.75, Fis-V 0.8; JIGSAWS has folds)");
    kv_def_int(&c, "per_video", "10", 1, 1000, "dives per video");
    kv_def_int(&c, "threads", "0", 0, 64, "rendering threads (0 = the online CPUs, at most 8)");
    kv_def_bool(&c, "quiet", "false", "no progress on stderr");
    kv_def(&c, "contact_sheet", "", "PNG file: a contact sheet of one dive");
    kv_def_int(&c, "sheet_dive", "0", 0, 1000000, "the dive of the contact sheet");
    kv_def_int(&c, "sheet_tiles", "24", 1, 400, "frames on the contact sheet");
    kv_def_int(&c, "sheet_cols", "8", 1, 100, "columns of the contact sheet");
    kv_def(&c, "video_files", "", "folder: one untrimmed video per competition video (extract_frames' input)");
    kv_def(&c, "dive_files", "", "folder: one video per dive (clips for score_video)");
    kv_def(&c, "video_ext", "mp4", "video container (file extension)");
    kv_def(&c, "video_codec", "", "video codec (\"\" = the container's default; ffv1 with mkv is lossless)");
    int pr = kv_parse_args(&c, argc, argv, "--out DIR [--videos N] [--seed S] [settings] [--contact-sheet FILE ...]");
    if (pr) return kv_exit_code(pr);
    aqa_synthetic_layout layout = AQA_SYNTH_FINEDIVING;
    if (aqa_synthetic_layout_parse(kv_str(&c, "layout"), &layout)) { /* the choice was checked */
        fprintf(stderr, "make_synthetic: %s\n", aqa_last_error());
        return 2;
    }
    aqa_synthetic_config_layout(&cfg, layout);
    cfg.out_dir = kv_has(&c, "out") ? kv_str(&c, "out") : NULL;
    cfg.n_videos = (int)kv_int(&c, "videos");
    cfg.seed = (uint64_t)kv_int(&c, "seed");
    cfg.width = (int)(kv_int(&c, "size") ? kv_int(&c, "size") : kv_int(&c, "width"));
    cfg.height = (int)(kv_int(&c, "size") ? kv_int(&c, "size") : kv_int(&c, "height"));
    cfg.format = strcmp(kv_str(&c, "format"), "png") ? AQA_SYNTH_JPEG : AQA_SYNTH_PNG;
    cfg.jpeg_quality = (int)kv_int(&c, "quality");
    int lo, hi, k = 0, most = layout == AQA_SYNTH_FISV ? 100000 : 2000;
    const char *fr = kv_str(&c, "frames");
    if (kv_has(&c, "frames") && (sscanf(fr, "%d:%d%n", &lo, &hi, &k) != 2 || fr[k] || lo < 16 || hi < lo || hi > most)) {
        fprintf(stderr, "make_synthetic: --frames: \"%s\" is not MIN:MAX with 16 <= MIN <= MAX <= %d\n", fr, most);
        return 2;
    }
    if (kv_has(&c, "frames")) cfg.min_frames = lo, cfg.max_frames = hi;
    if (kv_double(&c, "train") > 0) cfg.train_fraction = kv_double(&c, "train");
    cfg.feature_dim = (int)kv_int(&c, "feature_dim");
    cfg.dives_per_video = (int)kv_int(&c, "per_video");
    cfg.threads = (int)kv_int(&c, "threads");
    cfg.progress = !kv_bool(&c, "quiet");
    const char *sheet = kv_has(&c, "contact_sheet") ? kv_str(&c, "contact_sheet") : NULL;
    const long sheet_dive = kv_int(&c, "sheet_dive"), sheet_tiles = kv_int(&c, "sheet_tiles"),
               sheet_cols = kv_int(&c, "sheet_cols");
    const char *video_dir = kv_has(&c, "video_files") ? kv_str(&c, "video_files") : NULL,
               *dive_dir = kv_has(&c, "dive_files") ? kv_str(&c, "dive_files") : NULL, *video_ext = kv_str(&c, "video_ext"),
               *video_codec = kv_has(&c, "video_codec") ? kv_str(&c, "video_codec") : NULL;
    if (!cfg.out_dir && !sheet && !video_dir && !dive_dir) {
        fprintf(stderr, "make_synthetic: give --out DIR, --contact-sheet FILE, --video-files DIR and/or --dive-files DIR (--help)\n");
        return 2;
    }
    if ((sheet && layout != AQA_SYNTH_FINEDIVING && layout != AQA_SYNTH_MTL_AQA) ||
        ((video_dir || dive_dir) && layout != AQA_SYNTH_FINEDIVING)) {
        fprintf(stderr, "make_synthetic: --contact-sheet draws a dive (layouts finediving, mtl-aqa); --video-files and "
                        "--dive-files write FineDiving's videos (layout finediving)\n");
        return 2;
    }
    if (cfg.out_dir) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (aqa_synthetic_generate(&cfg) != AQA_OK) {
            fprintf(stderr, "make_synthetic: %s\n", aqa_last_error());
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        static const char *const what[4] = {"dives (FineDiving's files)", "dives (MTL-AQA's files)",
                                            "surgical trials (JIGSAWS' files)", "skating programmes (Fis-V's files)"};
        if (layout == AQA_SYNTH_FISV)
            printf("wrote %d synthetic %s, %d feature columns, seed %llu, to %s in %.2f s\n", cfg.n_videos, what[layout],
                   cfg.feature_dim, (unsigned long long)cfg.seed, cfg.out_dir, s);
        else
            printf("wrote %d synthetic %s (%dx%d %s, seed %llu) to %s in %.2f s\n", cfg.n_videos, what[layout], cfg.width,
                   cfg.height, cfg.format == AQA_SYNTH_PNG ? "png" : "jpg", (unsigned long long)cfg.seed, cfg.out_dir, s);
    }
    if (sheet) {
        if (aqa_synthetic_contact_sheet(&cfg, (size_t)sheet_dive, (int)sheet_tiles, (int)sheet_cols, sheet) != AQA_OK) {
            fprintf(stderr, "make_synthetic: %s\n", aqa_last_error());
            return 1;
        }
        printf("wrote contact sheet of dive %ld to %s\n", sheet_dive, sheet);
    }
    const char *vdirs[2] = {video_dir, dive_dir};
    for (int k = 0; k < 2; k++) {
        if (!vdirs[k]) continue;
        if (aqa_synthetic_write_videos(&cfg, vdirs[k], video_ext, video_codec, k == 1) != AQA_OK) {
            fprintf(stderr, "make_synthetic: %s\n", aqa_last_error());
            return 1;
        }
        printf("wrote the %s as .%s videos to %s\n", k ? "dives" : "competition videos", video_ext, vdirs[k]);
    }
    return 0;
}
