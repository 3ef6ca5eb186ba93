/* test_video.c: video files (image/video.h) against the synthetic frames they were made from.
 *
 * A small synthetic set is generated as PNG frames; videos are made from one dive's frames by
 * aqa's own writer and, when the ffmpeg program is installed, by it (H.264 in MP4, FFV1 in
 * Matroska), then decoded: lossless videos give the frames back bit for bit, lossy ones within
 * the codec's loss, and the model input transforms of the frame loaders (CLIP's, I3D's) agree
 * likewise.  Our decoding is compared with the ffmpeg program's own frame extraction; seeking by
 * frame and by time with the sequential read; bad files and writer misuse give errors naming the
 * file; a long video is read in bounded memory (peak RSS of a child process does not grow with
 * the video's length).  Every case skips when aqa was built without FFmpeg, where one case checks
 * the message that says so. */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "datasets/synthetic.h"
#include "datasets/video_dataset.h"
#include "image/image.h"
#include "image/resize.h"
#include "image/video.h"
#include "tests/cli_testlib.h"
#include "tests/testlib.h"

static char g_dir[256];     /* scratch folder */
static char g_frames[512];  /* folder of the dive's PNG frames */
static int64_t g_start;     /* first frame number of the dive */
static aqa_image **g_im;    /* the dive's frames */
static int g_n;             /* their count */
static bool g_ffmpeg;       /* the ffmpeg program is installed, with the libx264 encoder */

static const char *tmp_path(const char *name) {
    static char buf[8][768]; /* up to 8 paths in one expression */
    static int k;
    k = (k + 1) % 8;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static bool need_video(void) {
    if (!aqa_video_available()) {
        SKIP("aqa was built without FFmpeg");
        return false;
    }
    if (!g_n) {
        SKIP("the synthetic frames were not generated");
        return false;
    }
    return true;
}

/* Writes the dive's frames with aqa's writer. */
static aqa_status write_dive(const char *path, const char *codec, const char *options) {
    aqa_video_writer_options o = aqa_video_writer_defaults();
    o.codec = codec;
    o.options = options;
    aqa_video_writer *w = aqa_video_writer_open(path, g_im[0]->width, g_im[0]->height, &o);
    if (!w) return aqa_last_status();
    for (int i = 0; i < g_n; i++)
        if (aqa_video_writer_add(w, g_im[i])) {
            aqa_video_writer_abort(w);
            return aqa_last_status();
        }
    return aqa_video_writer_close(w);
}

/* Pixel differences between a decoded video and the dive's frames. */
typedef struct diff_stats {
    int frames;      /* frames decoded */
    int max_abs;     /* largest |a - b| over all bytes */
    double mean_abs; /* mean |a - b| */
    double psnr;     /* over the whole video, dB (INFINITY when identical) */
} diff_stats;

static diff_stats compare_video(const char *path, aqa_image **ref, int n) {
    diff_stats d = {0, 0, 0, 0};
    aqa_video *v = aqa_video_open(path);
    CHECK_MSG(v != NULL, "open %s: %s", path, aqa_last_error());
    if (!v) return d;
    double sum = 0, sq = 0, count = 0;
    const aqa_image *f;
    int64_t idx;
    aqa_status st;
    while ((st = aqa_video_next(v, &f, &idx)) == AQA_OK && f) {
        CHECK_EQ_INT(idx, d.frames);
        if (d.frames < n && f->width == ref[d.frames]->width && f->height == ref[d.frames]->height) {
            size_t bytes = (size_t)f->width * f->height * 3;
            for (size_t b = 0; b < bytes; b++) {
                int e = abs((int)f->data[b] - (int)ref[d.frames]->data[b]);
                if (e > d.max_abs) d.max_abs = e;
                sum += e;
                sq += (double)e * e;
            }
            count += (double)bytes;
        }
        d.frames++;
    }
    CHECK_MSG(st == AQA_OK, "%s", aqa_last_error());
    aqa_video_close(v);
    d.mean_abs = count ? sum / count : INFINITY;
    d.psnr = sq > 0 ? 10 * log10(255.0 * 255.0 / (sq / count)) : INFINITY;
    return d;
}

/* Largest and mean |a - b| between the transform's output on every frame of the video and on the
 * reference frames (the frame loaders' path). */
static void compare_transform(const char *path, aqa_image **ref, int n, const aqa_frame_transform *tf, double *max_err,
                              double *mean_err) {
    int ow, oh;
    *max_err = INFINITY;
    *mean_err = INFINITY;
    if (aqa_frame_transform_output_size(tf, ref[0]->width, ref[0]->height, &ow, &oh)) return;
    size_t per = 3 * (size_t)ow * oh;
    float *a = malloc(per * sizeof *a), *b = malloc(per * sizeof *b);
    aqa_video *v = aqa_video_open(path);
    double mx = 0, sum = 0;
    size_t cnt = 0;
    const aqa_image *f;
    for (int i = 0; v && a && b && i < n && aqa_video_next(v, &f, NULL) == AQA_OK && f; i++) {
        if (aqa_frame_transform_apply(tf, f, a, 0) || aqa_frame_transform_apply(tf, ref[i], b, 0)) break;
        for (size_t k = 0; k < per; k++) {
            double e = fabs((double)a[k] - (double)b[k]);
            mx = e > mx ? e : mx;
            sum += e;
        }
        cnt += per;
    }
    if (cnt == per * (size_t)n) {
        *max_err = mx;
        *mean_err = sum / (double)cnt;
    }
    aqa_video_close(v);
    free(a);
    free(b);
}

/* ---- cases ---------------------------------------------------------------------------------- */

static void test_without_ffmpeg_says_so(void) {
    if (aqa_video_available()) {
        SKIP("built with FFmpeg (the build without it answers every video call with the message)");
        return;
    }
    CHECK(aqa_video_open("clip.mp4") == NULL);
    CHECK_EQ_INT(aqa_last_status(), AQA_EUNSUPPORTED);
    CHECK_MSG(strstr(aqa_last_error(), "clip.mp4") && strstr(aqa_last_error(), "without FFmpeg") &&
                  strstr(aqa_last_error(), "libavformat-dev"),
              "%s", aqa_last_error());
    CHECK(aqa_video_writer_open("out.mp4", 64, 64, NULL) == NULL);
    CHECK_EQ_INT(aqa_last_status(), AQA_EUNSUPPORTED);
    aqa_clear_error();
}

/* aqa's writer: lossless RGB encoders give the frames back exactly; its default MP4 encoder
 * (lossy) within the codec's loss. */
static void test_writer_roundtrip(void) {
    if (!need_video()) return;
    const struct {
        const char *file, *codec, *options;
        bool lossless;
    } cases[] = {{"ffv1.mkv", "ffv1", NULL, true}, {"png.avi", "png", NULL, true},
                 {"mpeg4.avi", "mpeg4", "b=2000k", false}, {"default.mp4", NULL, NULL, false}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const char *p = tmp_path(cases[c].file);
        aqa_status st = write_dive(p, cases[c].codec, cases[c].options);
        CHECK_MSG(st == AQA_OK, "%s: %s", cases[c].file, aqa_last_error());
        if (st) continue;
        aqa_video *v = aqa_video_open(p);
        CHECK_MSG(v != NULL, "%s", aqa_last_error());
        if (v) {
            const aqa_video_info *in = aqa_video_get_info(v);
            CHECK_EQ_INT(in->width, g_im[0]->width);
            CHECK_EQ_INT(in->height, g_im[0]->height);
            CHECK_NEAR(in->fps, 25.0, 1e-6);
            CHECK_EQ_INT(in->rotation, 0);
            int64_t n = 0;
            CHECK(aqa_video_count_frames(v, &n) == AQA_OK);
            CHECK_EQ_INT(n, g_n);
            CHECK_NEAR(in->duration, g_n / 25.0, 0.05);
            aqa_video_close(v);
        }
        diff_stats d = compare_video(p, g_im, g_n);
        CHECK_EQ_INT(d.frames, g_n);
        if (cases[c].lossless) {
            CHECK_MSG(d.max_abs == 0, "%s: max |diff| %d", cases[c].file, d.max_abs);
        } else {
            /* 4:2:0 chroma and quantisation on 64 x 64 cartoon frames: a few levels on average */
            CHECK_MSG(d.mean_abs < 4 && d.psnr > 28, "%s: mean |diff| %.2f, PSNR %.1f dB", cases[c].file, d.mean_abs, d.psnr);
        }
        printf("    %-12s max |diff| %3d, mean %.3f, PSNR %.1f dB\n", cases[c].file, d.max_abs, d.mean_abs, d.psnr);
    }
}

/* Videos made by the ffmpeg program from the PNG files, as a user would, decoded and compared
 * with the frames and with the ffmpeg program's own extraction. */
static void test_ffmpeg_program_videos(void) {
    if (!need_video()) return;
    if (!g_ffmpeg) {
        SKIP("the ffmpeg program (with libx264) is not installed");
        return;
    }
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "ffmpeg -loglevel error -y -framerate 25 -start_number %lld -i %s/%%05d.png -c:v libx264 -pix_fmt yuv420p "
             "-crf 12 %s && ffmpeg -loglevel error -y -framerate 25 -start_number %lld -i %s/%%05d.png -c:v ffv1 %s",
             (long long)g_start, g_frames, tmp_path("x264.mp4"), (long long)g_start, g_frames, tmp_path("cli_ffv1.mkv"));
    CHECK_EQ_INT(cli_run(cmd, NULL), 0);
    diff_stats lossless = compare_video(tmp_path("cli_ffv1.mkv"), g_im, g_n);
    CHECK_EQ_INT(lossless.frames, g_n);
    CHECK_MSG(lossless.max_abs == 0, "ffv1 from ffmpeg: max |diff| %d", lossless.max_abs);
    diff_stats x264 = compare_video(tmp_path("x264.mp4"), g_im, g_n);
    CHECK_EQ_INT(x264.frames, g_n);
    CHECK_MSG(x264.mean_abs < 4 && x264.psnr > 28, "x264: mean |diff| %.2f, PSNR %.1f dB", x264.mean_abs, x264.psnr);
    printf("    x264 (crf 12) vs frames: max |diff| %d, mean %.3f, PSNR %.1f dB\n", x264.max_abs, x264.mean_abs, x264.psnr);

    /* the model inputs of the frame loaders: exact from the lossless video, close from H.264 */
    aqa_frame_transform tfs[2] = {aqa_frame_transform_clip(32), aqa_frame_transform_i3d(48, 48)};
    for (int k = 0; k < 2; k++) {
        double mx, mean;
        compare_transform(tmp_path("cli_ffv1.mkv"), g_im, g_n, &tfs[k], &mx, &mean);
        CHECK_MSG(mx == 0, "lossless transform %d: max |diff| %g", k, mx);
        compare_transform(tmp_path("x264.mp4"), g_im, g_n, &tfs[k], &mx, &mean);
        /* CLIP's normalisation divides by std ~0.27: one level is 0.015 */
        CHECK_MSG(mean < 0.06 && isfinite(mx), "x264 transform %d: mean |diff| %g (max %g)", k, mean, mx);
        printf("    %s input from x264 vs frames: mean |diff| %.4f, max %.3f\n", k ? "I3D" : "CLIP", mean, mx);
    }

    /* our decoding against the ffmpeg program's extraction of the same video */
    char out[600];
    snprintf(out, sizeof out, "%s/cli_frames", g_dir);
    mkdir(out, 0777);
    snprintf(cmd, sizeof cmd, "ffmpeg -loglevel error -y -i %s %s/%%05d.png", tmp_path("x264.mp4"), out);
    CHECK_EQ_INT(cli_run(cmd, NULL), 0);
    aqa_image **cli = calloc((size_t)g_n, sizeof *cli);
    int nc = 0;
    for (; cli && nc < g_n; nc++) {
        char p[700];
        snprintf(p, sizeof p, "%s/%05d.png", out, nc + 1); /* the program numbers from 1 */
        if (!(cli[nc] = aqa_image_load(p))) break;
    }
    aqa_clear_error();
    CHECK_EQ_INT(nc, g_n);
    if (nc == g_n) {
        diff_stats d = compare_video(tmp_path("x264.mp4"), cli, nc);
        CHECK_MSG(d.max_abs <= 2 && d.mean_abs < 0.5, "vs the ffmpeg program's frames: max |diff| %d, mean %.3f",
                  d.max_abs, d.mean_abs);
        printf("    our decoding vs the ffmpeg program's extraction: max |diff| %d, mean %.4f\n", d.max_abs, d.mean_abs);
    }
    for (int i = 0; i < nc; i++) aqa_image_free(cli[i]);
    free(cli);

    /* a phone video recorded sideways (display matrix "rotate 90"): turned upright as the ffmpeg
     * program turns it (its extraction of frame 1 against ours) */
    snprintf(cmd, sizeof cmd,
             "ffmpeg -loglevel error -y -framerate 25 -start_number %lld -i %s/%%05d.png -vf crop=64:40:0:0 -c:v libx264 "
             "-crf 12 %s && ffmpeg -loglevel error -y -i %s -c copy -metadata:s:v:0 rotate=90 %s && "
             "ffmpeg -loglevel error -y -i %s -frames:v 1 %s",
             (long long)g_start, g_frames, tmp_path("flat.mp4"), tmp_path("flat.mp4"), tmp_path("rot.mp4"),
             tmp_path("rot.mp4"), tmp_path("rot_cli.png"));
    CHECK_EQ_INT(cli_run(cmd, NULL), 0);
    aqa_image *want = aqa_image_load(tmp_path("rot_cli.png"));
    aqa_video *v = aqa_video_open(tmp_path("rot.mp4"));
    const aqa_image *f = NULL;
    CHECK(want && v && aqa_video_next(v, &f, NULL) == AQA_OK && f);
    if (want && v && f) {
        CHECK_EQ_INT(aqa_video_get_info(v)->rotation, 270); /* "rotate=90" is counter-clockwise */
        CHECK_EQ_INT(aqa_video_get_info(v)->width, 40);
        CHECK_EQ_INT(f->width, want->width);
        CHECK_EQ_INT(f->height, want->height);
        diff_stats d = compare_video(tmp_path("rot.mp4"), &want, 1);
        /* the program rotates the YUV planes before converting: chroma is interpolated across
         * the other axis, a level or two; a wrong orientation differs by tens */
        CHECK_MSG(d.mean_abs < 2.0, "upright frame vs the ffmpeg program's: mean |diff| %.2f", d.mean_abs);
        printf("    sideways video turned upright: %dx%d, mean |diff| to the ffmpeg program's %.3f\n", f->width,
               f->height, d.mean_abs);
    }
    aqa_video_close(v);
    aqa_image_free(want);
}

static uint64_t hash_image(const aqa_image *im) {
    uint64_t h = 1469598103934665603ULL;
    size_t n = (size_t)im->width * im->height * 3;
    for (size_t i = 0; i < n; i++) h = (h ^ im->data[i]) * 1099511628211ULL;
    return h;
}

typedef struct seek_ctx {
    const uint64_t *hash; /* hashes of the sequential read */
    int bad;              /* deliveries that disagreed */
    size_t calls;         /* deliveries */
} seek_ctx;

static aqa_status check_frame(void *user, size_t k, int64_t index, const aqa_image *im) {
    seek_ctx *c = user;
    c->bad += hash_image(im) != c->hash[index];
    c->calls++;
    (void)k;
    return AQA_OK;
}

/* Seeks by frame and by time (key-frame seeks over long gaps, rewinds backwards) return the
 * frames of the sequential read. */
static void test_seek(void) {
    if (!need_video()) return;
    enum { N = 700 };
    const char *p = tmp_path("seek.avi");
    aqa_video_writer_options o = aqa_video_writer_defaults();
    o.codec = "mpeg4";
    o.options = "g=24:b=2000k";
    aqa_video_writer *w = aqa_video_writer_open(p, g_im[0]->width, g_im[0]->height, &o);
    CHECK_MSG(w != NULL, "%s", aqa_last_error());
    if (!w) return;
    aqa_image *im = aqa_image_new(g_im[0]->width, g_im[0]->height);
    for (int i = 0; i < N; i++) {
        /* every frame distinct: the dive cycles and a counter is drawn in the corner */
        memcpy(im->data, g_im[i % g_n]->data, (size_t)im->width * im->height * 3);
        for (int b = 0; b < 10; b++)
            for (int y = 0; y < 8; y++)
                for (int x = 0; x < 6; x++) memset(im->data + aqa_image_offset(im, b * 6 + x, y), (i >> b) & 1 ? 255 : 0, 3);
        CHECK(aqa_video_writer_add(w, im) == AQA_OK);
    }
    aqa_image_free(im);
    CHECK(aqa_video_writer_close(w) == AQA_OK);
    uint64_t *hash = calloc(N, sizeof *hash);
    aqa_video *v = aqa_video_open(p);
    CHECK_MSG(v != NULL, "%s", aqa_last_error());
    if (!v || !hash) {
        free(hash);
        aqa_video_close(v);
        return;
    }
    const aqa_image *f;
    int64_t idx, n = 0;
    while (aqa_video_next(v, &f, &idx) == AQA_OK && f && n < N) hash[n++] = hash_image(f);
    CHECK_EQ_INT(n, N);
    const int64_t targets[] = {0, 699, 300, 13, 450, 451, 5, 620, 2};
    for (size_t k = 0; k < sizeof targets / sizeof *targets; k++) {
        CHECK_MSG(aqa_video_seek_frame(v, targets[k]) == AQA_OK, "seek %lld: %s", (long long)targets[k], aqa_last_error());
        CHECK(aqa_video_next(v, &f, &idx) == AQA_OK && f);
        CHECK_EQ_INT(idx, targets[k]);
        if (f) CHECK_MSG(hash_image(f) == hash[targets[k]], "frame %lld after a seek differs", (long long)targets[k]);
    }
    CHECK(aqa_video_seek_time(v, 17.0) == AQA_OK); /* 25 fps: frame 425 */
    CHECK(aqa_video_next(v, &f, &idx) == AQA_OK && f);
    CHECK_EQ_INT(idx, 425);
    CHECK_EQ_INT(aqa_video_frame_of_time(v, 0.039), 0);
    CHECK_EQ_INT(aqa_video_frame_of_time(v, 0.04), 1);
    CHECK_NEAR(aqa_video_time_of_frame(v, 50), 2.0, 1e-12);
    /* past the end: an error naming the file */
    CHECK(aqa_video_seek_frame(v, N) == AQA_EFORMAT);
    CHECK_MSG(strstr(aqa_last_error(), "seek.avi") && strstr(aqa_last_error(), "ends"), "%s", aqa_last_error());
    aqa_clear_error();
    /* streaming a sampled list (repeats, a long gap, the last frame) */
    const int64_t want[] = {3, 3, 4, 40, 400, 401, 401, 699};
    seek_ctx c = {hash, 0, 0};
    CHECK(aqa_video_read_frames(v, want, 8, check_frame, &c) == AQA_OK);
    CHECK_EQ_INT(c.calls, 8);
    CHECK_EQ_INT(c.bad, 0);
    const int64_t back[] = {5, 4};
    CHECK(aqa_video_read_frames(v, back, 2, check_frame, &c) == AQA_EINVAL);
    const int64_t past[] = {698, 700};
    CHECK(aqa_video_read_frames(v, past, 2, check_frame, &c) == AQA_EFORMAT);
    aqa_clear_error();
    aqa_video_close(v);
    free(hash);
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(b, 1, n, f);
        fclose(f);
    }
}

/* Missing, unreadable, non-video and truncated files: errors naming the file, no crash. */
static void test_bad_files(void) {
    if (!need_video()) return;
    CHECK(aqa_video_open(tmp_path("missing.mp4")) == NULL);
    CHECK_EQ_INT(aqa_last_status(), AQA_EIO);
    CHECK_MSG(strstr(aqa_last_error(), "missing.mp4"), "%s", aqa_last_error());
    CHECK(aqa_video_open(g_dir) == NULL);
    CHECK_EQ_INT(aqa_last_status(), AQA_EIO);
    const char text[] = "this is not a video, just a few words of text\n";
    write_bytes(tmp_path("notes.mp4"), text, sizeof text - 1);
    CHECK(aqa_video_open(tmp_path("notes.mp4")) == NULL);
    CHECK_EQ_INT(aqa_last_status(), AQA_EFORMAT);
    CHECK_MSG(strstr(aqa_last_error(), "notes.mp4"), "%s", aqa_last_error());
    write_bytes(tmp_path("empty.mkv"), "", 0);
    CHECK(aqa_video_open(tmp_path("empty.mkv")) == NULL);
    CHECK_MSG(strstr(aqa_last_error(), "empty.mkv"), "%s", aqa_last_error());
    /* a truncated file: opening or reading fails with the name, or reads fewer frames */
    const char *full = tmp_path("trunc_src.mp4");
    if (write_dive(full, NULL, NULL) == AQA_OK) {
        FILE *f = fopen(full, "rb");
        char *buf = malloc(1 << 20);
        size_t n = f && buf ? fread(buf, 1, 1 << 20, f) : 0;
        if (f) fclose(f);
        for (int cut = 1; cut <= 3; cut++) {
            write_bytes(tmp_path("trunc.mp4"), buf, n * (size_t)cut / 4);
            aqa_video *v = aqa_video_open(tmp_path("trunc.mp4"));
            if (!v) {
                CHECK_MSG(strstr(aqa_last_error(), "trunc.mp4"), "%s", aqa_last_error());
                continue;
            }
            const aqa_image *im;
            int frames = 0;
            aqa_status st;
            while ((st = aqa_video_next(v, &im, NULL)) == AQA_OK && im) frames++;
            CHECK(st != AQA_OK || frames < g_n);
            if (st) CHECK_MSG(strstr(aqa_last_error(), "trunc.mp4"), "%s", aqa_last_error());
            aqa_video_close(v);
        }
        free(buf);
    }
    aqa_clear_error();
}

static void test_writer_errors(void) {
    if (!need_video()) return;
    CHECK(aqa_video_writer_open(tmp_path("x.notavideo"), 32, 32, NULL) == NULL);
    CHECK_MSG(strstr(aqa_last_error(), "x.notavideo") && strstr(aqa_last_error(), "container"), "%s", aqa_last_error());
    aqa_video_writer_options o = aqa_video_writer_defaults();
    o.codec = "no_such_codec";
    CHECK(aqa_video_writer_open(tmp_path("x.mkv"), 32, 32, &o) == NULL);
    CHECK_EQ_INT(aqa_last_status(), AQA_EUNSUPPORTED);
    o.codec = "ffv1";
    o.options = "no_such_option=3";
    CHECK(aqa_video_writer_open(tmp_path("x.mkv"), 32, 32, &o) == NULL);
    CHECK_MSG(strstr(aqa_last_error(), "no_such_option"), "%s", aqa_last_error());
    o.options = NULL;
    o.fps = 0;
    CHECK(aqa_video_writer_open(tmp_path("x.mkv"), 32, 32, &o) == NULL);
    /* a frame of the wrong size is refused; a video without frames is not left behind */
    o.fps = 25;
    aqa_video_writer *w = aqa_video_writer_open(tmp_path("x.mkv"), 32, 32, &o);
    CHECK(w != NULL);
    aqa_image *im = aqa_image_new(16, 32);
    CHECK(aqa_video_writer_add(w, im) == AQA_EINVAL);
    CHECK_MSG(strstr(aqa_last_error(), "x.mkv") && strstr(aqa_last_error(), "16x32"), "%s", aqa_last_error());
    aqa_image_free(im);
    CHECK(aqa_video_writer_close(w) != AQA_OK);
    CHECK(access(tmp_path("x.mkv"), F_OK) != 0);
    /* nothing but finished videos in the folder (no temporary files) */
    char cmd[700], *line = NULL;
    snprintf(cmd, sizeof cmd, "ls %s | grep -c tmp", g_dir);
    FILE *p = popen(cmd, "r");
    size_t cap = 0;
    CHECK(p && getline(&line, &cap, p) > 0 && atoi(line) == 0);
    if (p) pclose(p);
    free(line);
    aqa_clear_error();
}

/* Peak resident memory (KiB) of a child that writes nothing and reads a video of `frames` frames:
 * every frame in order, then 96 frames spread over it (the loaders' sampling). */
static long child_peak_kib(const char *path, int frames) {
    int fd[2];
    if (pipe(fd)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        long rss = -1;
        aqa_video *v = aqa_video_open(path);
        const aqa_image *im;
        int n = 0;
        while (v && aqa_video_next(v, &im, NULL) == AQA_OK && im) n++;
        int64_t idx[96];
        aqa_vd_linspace_int(0, frames - 1, 96, idx);
        seek_ctx c = {NULL, 0, 0};
        (void)c;
        bool ok = v && n == frames && aqa_video_seek_frame(v, 0) == AQA_OK;
        for (int k = 0; ok && k < 96; k++) ok = aqa_video_seek_frame(v, idx[k]) == AQA_OK && aqa_video_next(v, &im, NULL) == AQA_OK;
        aqa_video_close(v);
        struct rusage ru;
        if (ok && getrusage(RUSAGE_SELF, &ru) == 0) rss = ru.ru_maxrss;
        if (write(fd[1], &rss, sizeof rss) != sizeof rss) _exit(1);
        _exit(0);
    }
    close(fd[1]);
    long rss = -1;
    if (pid < 0 || read(fd[0], &rss, sizeof rss) != sizeof rss) rss = -1;
    close(fd[0]);
    if (pid > 0) waitpid(pid, NULL, 0);
    return rss;
}

static void test_long_video_bounded_memory(void) {
    if (!need_video()) return;
#if defined(__SANITIZE_ADDRESS__)
    SKIP("AddressSanitizer's quarantine keeps freed memory resident (the plain build checks this)");
    return;
#endif
    if (getenv("AQA_TEST_WRAPPER") && *getenv("AQA_TEST_WRAPPER")) {
        SKIP("under a test wrapper (valgrind) resident memory means nothing");
        return;
    }
    /* 192 x 144 frames (81 KiB as RGB): the long video holds 162 MiB of frames */
    enum { W = 192, H = 144, SHORT = 200, LONG = 2000 };
    aqa_image *big[8];
    for (int k = 0; k < 8; k++) big[k] = aqa_image_resize(g_im[k * g_n / 8], W, H, AQA_RESAMPLE_BILINEAR);
    long peak[2] = {-1, -1};
    const int lens[2] = {SHORT, LONG};
    for (int c = 0; c < 2; c++) {
        const char *p = tmp_path(c ? "long.avi" : "short.avi");
        aqa_video_writer_options o = aqa_video_writer_defaults();
        o.codec = "mpeg4";
        aqa_video_writer *w = aqa_video_writer_open(p, W, H, &o);
        CHECK_MSG(w != NULL, "%s", aqa_last_error());
        for (int i = 0; w && i < lens[c]; i++) CHECK(aqa_video_writer_add(w, big[i % 8]) == AQA_OK);
        CHECK(w && aqa_video_writer_close(w) == AQA_OK);
        peak[c] = child_peak_kib(p, lens[c]);
        remove(p);
    }
    for (int k = 0; k < 8; k++) aqa_image_free(big[k]);
    CHECK_MSG(peak[0] > 0 && peak[1] > 0, "a child failed to read the video");
    /* the long video's frames would take 162 MiB; allow 16 MiB of allocator noise */
    CHECK_MSG(peak[1] - peak[0] < 16 * 1024, "peak RSS %ld KiB for %d frames vs %ld KiB for %d frames", peak[1], LONG,
              peak[0], SHORT);
    printf("    peak RSS reading %d frames: %ld KiB; %d frames: %ld KiB\n", SHORT, peak[0], LONG, peak[1]);
}

int main(void) {
    snprintf(g_dir, sizeof g_dir, "/tmp/aqa_video_XXXXXX");
    if (!mkdtemp(g_dir)) {
        printf("FAIL setup: mkdtemp\n");
        return 1;
    }
    g_ffmpeg = cli_run("ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libx264", NULL) == 0;
    if (aqa_video_available()) {
        /* the synthetic set as PNG frames; the first dive is the test video's content */
        aqa_synthetic_config sc;
        aqa_synthetic_config_init(&sc);
        char data[300];
        snprintf(data, sizeof data, "%s/data", g_dir);
        sc.out_dir = data;
        sc.n_videos = 2;
        sc.seed = test_seed("synthetic set");
        sc.min_frames = 40;
        sc.max_frames = 48;
        aqa_synthetic_dive *dives = NULL;
        size_t nd = 0;
        if (aqa_synthetic_generate(&sc) == AQA_OK && aqa_synthetic_plan(&sc, &dives, &nd) == AQA_OK && nd) {
            snprintf(g_frames, sizeof g_frames, "%s/%s/%lld", data, dives[0].video, (long long)dives[0].instance);
            g_start = dives[0].start_frame;
            g_im = calloc((size_t)dives[0].n_frames, sizeof *g_im);
            for (int i = 0; g_im && i < dives[0].n_frames; i++) {
                char p[700];
                snprintf(p, sizeof p, "%s/%05lld.png", g_frames, (long long)(g_start + i));
                if (!(g_im[i] = aqa_image_load(p))) break;
                g_n = i + 1;
            }
            if (g_n != dives[0].n_frames) g_n = 0;
        }
        if (!g_n) printf("    setup: %s\n", aqa_last_error());
        free(dives);
    }
    RUN(test_without_ffmpeg_says_so);
    RUN(test_writer_roundtrip);
    RUN(test_ffmpeg_program_videos);
    RUN(test_seek);
    RUN(test_bad_files);
    RUN(test_writer_errors);
    RUN(test_long_video_bounded_memory);
    for (int i = 0; g_im && i < g_n; i++) aqa_image_free(g_im[i]);
    free(g_im);
    cli_rm_rf(g_dir);
    return test_finish();
}
