/* make_synthetic: writes aqa's synthetic diving dataset (FineDiving layout) and/or a contact
 * sheet of one of its dives.
 *
 *   examples/make_synthetic --out DIR --videos N --seed S [--size 64 | --width W --height H]
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
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "datasets/synthetic.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: make_synthetic --out DIR [--videos N] [--seed S] [--size PX | --width W --height H]\n"
            "                      [--format png|jpg] [--quality Q] [--frames MIN:MAX] [--train FRACTION]\n"
            "                      [--per-video K] [--threads T] [--quiet]\n"
            "                      [--contact-sheet FILE [--sheet-dive I] [--sheet-tiles N] [--sheet-cols C]]\n"
            "                      [--video-files DIR] [--dive-files DIR] [--video-ext mp4] [--video-codec NAME]\n"
            "Writes the synthetic diving dataset in FineDiving's layout (frames + annotation pickles).\n"
            "Defaults: 200 videos, seed 0, 64x64 PNG frames, 40:120 frames per dive, train 0.75.\n");
}

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv) {
    aqa_synthetic_config cfg;
    aqa_synthetic_config_init(&cfg);
    cfg.progress = 1;
    const char *sheet = NULL, *video_dir = NULL, *dive_dir = NULL, *video_ext = "mp4", *video_codec = NULL;
    long sheet_dive = 0, sheet_tiles = 24, sheet_cols = 8, v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--quiet")) {
            cfg.progress = 0;
            continue;
        }
        if (!val) {
            fprintf(stderr, "make_synthetic: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (!strcmp(a, "--out")) cfg.out_dir = val;
        else if (!strcmp(a, "--videos")) bad = parse_long(val, 1, 1000000, &v), cfg.n_videos = (int)v;
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            cfg.seed = strtoull(val, &end, 10);
            bad = errno || end == val || *end || val[0] == '-';
        } else if (!strcmp(a, "--size")) bad = parse_long(val, 16, 1024, &v), cfg.width = cfg.height = (int)v;
        else if (!strcmp(a, "--width")) bad = parse_long(val, 16, 1024, &v), cfg.width = (int)v;
        else if (!strcmp(a, "--height")) bad = parse_long(val, 16, 1024, &v), cfg.height = (int)v;
        else if (!strcmp(a, "--format")) {
            if (!strcmp(val, "png")) cfg.format = AQA_SYNTH_PNG;
            else if (!strcmp(val, "jpg") || !strcmp(val, "jpeg")) cfg.format = AQA_SYNTH_JPEG;
            else bad = 1;
        } else if (!strcmp(a, "--quality")) bad = parse_long(val, 1, 100, &v), cfg.jpeg_quality = (int)v;
        else if (!strcmp(a, "--frames")) {
            int lo, hi, k;
            bad = sscanf(val, "%d:%d%n", &lo, &hi, &k) != 2 || val[k];
            cfg.min_frames = lo;
            cfg.max_frames = hi;
        } else if (!strcmp(a, "--train")) {
            char *end;
            cfg.train_fraction = strtod(val, &end);
            bad = end == val || *end;
        } else if (!strcmp(a, "--per-video")) bad = parse_long(val, 1, 1000, &v), cfg.dives_per_video = (int)v;
        else if (!strcmp(a, "--threads")) bad = parse_long(val, 0, 64, &v), cfg.threads = (int)v;
        else if (!strcmp(a, "--contact-sheet")) sheet = val;
        else if (!strcmp(a, "--sheet-dive")) bad = parse_long(val, 0, 1000000, &sheet_dive);
        else if (!strcmp(a, "--sheet-tiles")) bad = parse_long(val, 1, 400, &sheet_tiles);
        else if (!strcmp(a, "--sheet-cols")) bad = parse_long(val, 1, 100, &sheet_cols);
        else if (!strcmp(a, "--video-files")) video_dir = val;
        else if (!strcmp(a, "--dive-files")) dive_dir = val;
        else if (!strcmp(a, "--video-ext")) video_ext = val;
        else if (!strcmp(a, "--video-codec")) video_codec = val;
        else {
            fprintf(stderr, "make_synthetic: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        if (bad) {
            fprintf(stderr, "make_synthetic: bad value '%s' for %s\n", val, a);
            return 2;
        }
    }
    if (!cfg.out_dir && !sheet && !video_dir && !dive_dir) {
        usage(stderr);
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
        printf("wrote %d synthetic dives (%dx%d %s, seed %llu) to %s in %.2f s\n", cfg.n_videos, cfg.width, cfg.height,
               cfg.format == AQA_SYNTH_PNG ? "png" : "jpg", (unsigned long long)cfg.seed, cfg.out_dir, s);
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
