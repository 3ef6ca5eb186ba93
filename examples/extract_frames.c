/* extract_frames.c: FineDiving's frame folders from its competition videos and its annotations,
 * what the dataset's users otherwise script with ffmpeg.
 *
 *     examples/extract_frames --data FineDiving --videos videos [--out FineDiving] [--height 256]
 *                             [--format jpg|png] [--quality 95] [--split test] [--skip-bad]
 *
 * For every dive of the annotations (FineDiving's pickles in --data; the synthetic set has the
 * same) the frames start_frame..end_frame of its competition video <videos>/<video>.<ext> (.mp4,
 * .mkv, .avi, ...) become <out>/<video>/<instance>/%05d.jpg, the layout the loaders read.  Frame
 * number k is the video's k-th frame counting from 1, the file number `ffmpeg -i video.mp4
 * %05d.jpg` gives it.  Frames are resized to --height rows keeping the aspect ratio (FineDiving's
 * are 256: `scale=-1:256`; 0 keeps the decoded size) with the bicubic resize the video dataset
 * applies to video files (aqa_vd_config.video_height), so the videos and these frames give the
 * same model input (exactly with --format png).
 *
 * Each video is opened once and read forward through its dives in frame order, one frame in memory
 * at a time (image/video.h).  Resumable: a dive's frames go to a hidden folder renamed into place
 * when complete, so a dive whose folder exists is done and skipped, and an interrupted run
 * continues where it stopped.  A missing video, or one that ends before a dive's last frame, stops
 * the run with its name (--skip-bad: warned, counted, and the run goes on). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/annotations.h"
#include "datasets/loader.h"
#include "datasets/video_dataset.h"
#include "examples/mvla_common.h"
#include "image/image.h"
#include "image/resize.h"
#include "image/video.h"

typedef struct ef_settings {
    const char *out;  /* root of the frame folders */
    int height;       /* rows of the written frames (0: as decoded) */
    bool png;         /* PNG instead of JPEG */
    int quality;      /* JPEG quality */
} ef_settings;

/* What one dive's extraction writes into. */
typedef struct ef_dive {
    const ef_settings *set;
    const char *tmp;   /* the hidden folder being filled */
    int64_t first;     /* frame number of the first wanted frame */
    size_t written;    /* files written */
} ef_dive;

static aqa_status write_frame(void *user, size_t k, int64_t index, const aqa_image *im) {
    ef_dive *d = user;
    const ef_settings *s = d->set;
    aqa_image *sized = NULL;
    if (s->height > 0 && im->height != s->height) {
        if (!(sized = aqa_image_resize_to_height(im, s->height, AQA_RESAMPLE_BICUBIC))) return aqa_last_status();
        im = sized;
    }
    char path[1400];
    snprintf(path, sizeof path, "%s/%05lld.%s", d->tmp, (long long)(d->first + (int64_t)k), s->png ? "png" : "jpg");
    FILE *f = fopen(path, "wb");
    aqa_status st = f ? AQA_OK : aqa_fail(AQA_EIO, "%s: cannot create: %s", path, strerror(errno));
    if (!st) st = s->png ? aqa_image_write_png(im, f, path) : aqa_image_write_jpeg(im, f, path, s->quality);
    if (f && fclose(f) != 0 && !st) st = aqa_fail(AQA_EIO, "%s: cannot write: %s", path, strerror(errno));
    aqa_image_free(sized);
    (void)index;
    if (!st) d->written++;
    return st;
}

/* Removes the files of a hidden folder left by an interrupted run, and the folder. */
static void remove_partial(const char *dir) {
    DIR *dd = opendir(dir);
    if (!dd) return;
    struct dirent *e;
    char p[1400];
    while ((e = readdir(dd)))
        if (e->d_name[0] != '.') {
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    closedir(dd);
    rmdir(dir);
}

static bool is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* Samples of the manifest in (video, start_frame) order. */
static const aqa_ann_sample *g_samples;
static int by_video_start(const void *a, const void *b) {
    const aqa_ann_sample *x = &g_samples[*(const size_t *)a], *y = &g_samples[*(const size_t *)b];
    int c = strcmp(x->video, y->video);
    if (c) return c;
    return x->start_frame < y->start_frame ? -1 : x->start_frame > y->start_frame;
}

int main(int argc, char **argv) {
    kv_config c = {.program = "extract_frames"};
    kv_def(&c, "data", "", "folder of FineDiving's annotation pickles");
    kv_def(&c, "videos", "", "folder of the competition videos (<video>.mp4, .mkv, ...)");
    kv_def(&c, "out", "", "root of the frame folders (default --data)");
    kv_def(&c, "height", "256", "rows of the written frames, aspect kept (0 = as decoded)");
    kv_def(&c, "format", "jpg", "jpg | png");
    kv_def(&c, "quality", "95", "JPEG quality 1..100");
    kv_def(&c, "split", "", "only this split's dives (\"\" = every dive)");
    kv_def_bool(&c, "skip_bad", "false", "warn about a missing or short video and go on (counted)");
    kv_def_bool(&c, "progress", "true", "progress line on stderr");
    int pr = kv_parse_args(&c, argc, argv, "--data DIR --videos DIR [--out DIR] [--height 256] [settings]");
    if (pr) return kv_exit_code(pr);
    if (!kv_has(&c, "data") || !kv_has(&c, "videos")) {
        fprintf(stderr, "extract_frames: --data and --videos are required\n");
        return 1;
    }
    if (!aqa_video_available()) {
        aqa_video_open(kv_str(&c, "videos"));
        fprintf(stderr, "extract_frames: %s\n", aqa_last_error());
        return 1;
    }
    ef_settings set = {kv_has(&c, "out") ? kv_str(&c, "out") : kv_str(&c, "data"), (int)kv_int(&c, "height"),
                       !strcmp(kv_str(&c, "format"), "png"), (int)kv_int(&c, "quality")};
    if ((!set.png && strcmp(kv_str(&c, "format"), "jpg") && strcmp(kv_str(&c, "format"), "jpeg")) || set.height < 0 ||
        set.height > AQA_IMAGE_MAX_SIDE || set.quality < 1 || set.quality > 100) {
        fprintf(stderr, "extract_frames: bad --format (jpg | png), --height or --quality (1..100)\n");
        return 1;
    }
    bool skip_bad = kv_bool(&c, "skip_bad");
    aqa_ann_manifest *m = aqa_ann_load_finediving(kv_str(&c, "data"));
    if (!m) {
        fprintf(stderr, "extract_frames: %s\n", aqa_last_error());
        return 1;
    }
    size_t n = m->n_samples, *order = malloc((n + 1) * sizeof *order);
    if (kv_has(&c, "split")) {
        const aqa_ann_split *sp = aqa_ann_find_split(m, kv_str(&c, "split"));
        if (!sp) {
            fprintf(stderr, "extract_frames: %s: no split \"%s\"\n", kv_str(&c, "data"), kv_str(&c, "split"));
            aqa_ann_free(m);
            free(order);
            return 1;
        }
        n = sp->n;
        memcpy(order, sp->idx, n * sizeof *order);
    } else {
        for (size_t i = 0; i < n; i++) order[i] = i;
    }
    g_samples = m->samples;
    qsort(order, n, sizeof *order, by_video_start);

    size_t done = 0, resumed = 0, bad = 0, frames = 0;
    int rc = 0;
    aqa_video *v = NULL;
    char cur[512] = "", path[1400], tmp[1000], fin[1400];
    aqa_progress prog;
    aqa_progress_start(&prog, "extract_frames", n, kv_bool(&c, "progress"));
    double t0 = aqa_now();
    for (size_t k = 0; k < n && !rc; k++) {
        const aqa_ann_sample *s = &m->samples[order[k]];
        snprintf(fin, sizeof fin, "%s/%s/%lld", set.out, s->video, (long long)s->instance);
        if (is_dir(fin)) {
            resumed++;
            aqa_progress_update(&prog, k + 1, NULL);
            continue;
        }
        aqa_status st = AQA_OK;
        if (strcmp(cur, s->video) != 0) { /* the next competition video */
            aqa_video_close(v);
            v = NULL;
            snprintf(cur, sizeof cur, "%s", s->video);
            snprintf(path, sizeof path, "%s/%s", kv_str(&c, "videos"), s->video);
            char file[1400];
            if (!aqa_vd_find_video(path, file, sizeof file))
                st = aqa_fail(AQA_EIO, "%s.{mp4,mkv,avi,mov,webm,...}: no video file for dive %s", path, s->key);
            else if (!(v = aqa_video_open(file)))
                st = aqa_last_status();
        } else if (!v) {
            st = aqa_fail(AQA_EIO, "dive %s: its video %s could not be read", s->key, s->video);
        }
        if (!st && s->start_frame < AQA_VD_VIDEO_FIRST_NUMBER)
            st = aqa_fail(AQA_EFORMAT, "dive %s: start_frame %lld is before the video's first frame (%d)", s->key,
                          (long long)s->start_frame, AQA_VD_VIDEO_FIRST_NUMBER);
        if (!st && s->end_frame < s->start_frame)
            st = aqa_fail(AQA_EFORMAT, "dive %s: frames %lld..%lld", s->key, (long long)s->start_frame,
                          (long long)s->end_frame);
        if (!st) {
            snprintf(tmp, sizeof tmp, "%.700s/%.200s/.%lld.partial", set.out, s->video, (long long)s->instance);
            remove_partial(tmp);
            if (mkdir_p(tmp)) st = aqa_fail(AQA_EIO, "%s: cannot create: %s", tmp, strerror(errno));
        }
        if (!st) {
            int64_t nf = s->end_frame - s->start_frame + 1, *idx = malloc((size_t)nf * sizeof *idx);
            ef_dive d = {&set, tmp, s->start_frame, 0};
            for (int64_t f = 0; idx && f < nf; f++) idx[f] = s->start_frame + f - AQA_VD_VIDEO_FIRST_NUMBER;
            st = idx ? aqa_video_read_frames(v, idx, (size_t)nf, write_frame, &d) : aqa_fail(AQA_ENOMEM, "out of memory");
            free(idx);
            if (!st && rename(tmp, fin) != 0) st = aqa_fail(AQA_EIO, "%s: cannot rename to %s: %s", tmp, fin, strerror(errno));
            if (st) {
                remove_partial(tmp);
                /* the reader's position is unknown after a failure: reopen for the next dive */
                aqa_video_close(v);
                v = NULL;
                cur[0] = 0;
            } else {
                frames += d.written;
                done++;
            }
        }
        if (st) {
            if (!skip_bad) {
                fprintf(stderr, "extract_frames: %s\n", aqa_last_error());
                rc = 1;
                break;
            }
            fprintf(stderr, "warning: skipping dive %s: %s\n", s->key, aqa_last_error());
            aqa_clear_error();
            bad++;
        }
        aqa_progress_update(&prog, k + 1, NULL);
    }
    aqa_progress_finish(&prog, NULL);
    aqa_video_close(v);
    if (!rc)
        printf("extracted %zu dives (%zu frames), already there (resumed) %zu, skipped as bad %zu, of %zu dives in %.1f s\n",
               done, frames, resumed, bad, n, aqa_now() - t0);
    free(order);
    aqa_ann_free(m);
    return rc;
}
