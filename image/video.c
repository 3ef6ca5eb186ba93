/* video.c: reading and writing video files with FFmpeg's libraries (see video.h).  Built when
 * configure finds them; image/video_none.c stands in otherwise.
 *
 * Reader: one demuxer, one decoder and one swscale converter per open file.  A decoded frame is
 * converted to RGB only when it is returned (aqa_video_next) or wanted (aqa_video_read_frames),
 * into one image buffer the reader reuses, so nothing grows with the video's length.  FFmpeg's log
 * is routed into a thread-local line that error messages quote, never to stderr. */
#include "image/video.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "io/atomic_file.h"

bool aqa_video_available(void) { return true; }

/* ---- FFmpeg's log -------------------------------------------------------------------------- */

static __thread char g_av_msg[256]; /* last error line FFmpeg logged on this thread */
static pthread_once_t g_log_once = PTHREAD_ONCE_INIT;

static void log_cb(void *avcl, int level, const char *fmt, va_list ap) {
    (void)avcl;
    if (level > AV_LOG_ERROR) return;
    vsnprintf(g_av_msg, sizeof g_av_msg, fmt, ap);
    size_t n = strlen(g_av_msg);
    while (n && (g_av_msg[n - 1] == '\n' || g_av_msg[n - 1] == ' ')) g_av_msg[--n] = 0;
}

static void log_init(void) { av_log_set_callback(log_cb); }

/* "<FFmpeg's error string>" plus the last logged line when there is one. */
static const char *av_why(int err, char *buf, size_t size) {
    char e[AV_ERROR_MAX_STRING_SIZE];
    av_strerror(err, e, sizeof e);
    if (g_av_msg[0]) snprintf(buf, size, "%s (%s)", e, g_av_msg);
    else snprintf(buf, size, "%s", e);
    g_av_msg[0] = 0;
    return buf;
}

/* ---- reader ------------------------------------------------------------------------------- */

struct aqa_video {
    char *path;                 /* file name, for messages and reopening */
    AVFormatContext *fmt;       /* demuxer */
    AVCodecContext *dec;        /* decoder of the video stream */
    int stream;                 /* index of the video stream in fmt */
    AVRational tb;              /* its time base */
    AVPacket *pkt;              /* packet being read */
    AVFrame *frame;             /* last decoded frame (decoder's pixel format) */
    bool pending;               /* frame holds a decoded frame not yet returned */
    int64_t pending_index;      /* its frame number */
    int64_t next_index;         /* frame number of the next frame the decoder gives */
    bool index_from_pts;        /* after a seek: number the next decoded frame by its timestamp */
    bool flushing;              /* end of file reached: the decoder is being drained */
    bool ended;                 /* decoder drained: no more frames */
    int64_t first_pts;          /* timestamp of frame 0 (AV_NOPTS_VALUE: unknown, no seeking) */
    int64_t exact_count;        /* aqa_video_count_frames' answer, -1 until asked */
    struct SwsContext *sws;     /* converter to RGB24, for sws_key */
    int sws_key[5];             /* width, height, pixel format, colour space, range it was made for */
    aqa_image *rgb;             /* the converted frame (decoded orientation) */
    aqa_image *upright;         /* rotated copy when info.rotation != 0, else NULL */
    aqa_video_info info;        /* what aqa_video_get_info returns */
};

static void close_codec(aqa_video *v) {
    avcodec_free_context(&v->dec);
    avformat_close_input(&v->fmt);
}

/* Opens demuxer and decoder of v->path (used at open and to rewind). */
static aqa_status open_codec(aqa_video *v) {
    char why[400];
    int err = avformat_open_input(&v->fmt, v->path, NULL, NULL);
    if (err < 0) {
        aqa_status code = err == AVERROR(ENOENT) || err == AVERROR(EACCES) ? AQA_EIO : AQA_EFORMAT;
        return aqa_fail(code, "%s: cannot open as a video: %s", v->path, av_why(err, why, sizeof why));
    }
    if ((err = avformat_find_stream_info(v->fmt, NULL)) < 0)
        return aqa_fail(AQA_EFORMAT, "%s: cannot read the stream information: %s", v->path, av_why(err, why, sizeof why));
    const AVCodec *codec = NULL;
    v->stream = av_find_best_stream(v->fmt, AVMEDIA_TYPE_VIDEO, -1, -1, &codec, 0);
    if (v->stream == AVERROR_DECODER_NOT_FOUND)
        return aqa_fail(AQA_EUNSUPPORTED, "%s: no decoder for its video codec in this FFmpeg", v->path);
    if (v->stream < 0) return aqa_fail(AQA_EFORMAT, "%s: no video stream", v->path);
    AVStream *st = v->fmt->streams[v->stream];
    v->tb = st->time_base;
    if (!(v->dec = avcodec_alloc_context3(codec))) return aqa_fail(AQA_ENOMEM, "%s: out of memory", v->path);
    if ((err = avcodec_parameters_to_context(v->dec, st->codecpar)) < 0 ||
        (err = avcodec_open2(v->dec, codec, NULL)) < 0)
        return aqa_fail(AQA_EFORMAT, "%s: cannot open the %s decoder: %s", v->path, codec->name,
                        av_why(err, why, sizeof why));
    v->pending = v->flushing = v->ended = v->index_from_pts = false;
    v->next_index = 0;
    return AQA_OK;
}

/* Decodes the next frame into v->frame (not converted); *got = false at the end. */
static aqa_status decode_next(aqa_video *v, bool *got, int64_t *index) {
    char why[400];
    *got = false;
    if (v->pending) {
        v->pending = false;
        *got = true;
        *index = v->pending_index;
        return AQA_OK;
    }
    while (!v->ended) {
        int err = avcodec_receive_frame(v->dec, v->frame);
        if (err == 0) {
            int64_t idx = v->next_index;
            int64_t ts = v->frame->best_effort_timestamp;
            if (v->index_from_pts && ts != AV_NOPTS_VALUE && v->first_pts != AV_NOPTS_VALUE)
                idx = llround((double)(ts - v->first_pts) * av_q2d(v->tb) * v->info.fps);
            v->index_from_pts = false;
            v->next_index = idx + 1;
            *index = idx;
            *got = true;
            return AQA_OK;
        }
        if (err == AVERROR_EOF) {
            v->ended = true;
            break;
        }
        if (err != AVERROR(EAGAIN))
            return aqa_fail(AQA_EFORMAT, "%s: cannot decode frame %lld: %s", v->path, (long long)v->next_index,
                            av_why(err, why, sizeof why));
        if (v->flushing) { /* drained without an EOF answer: treat as the end */
            v->ended = true;
            break;
        }
        err = av_read_frame(v->fmt, v->pkt);
        if (err == AVERROR_EOF) {
            v->flushing = true;
            if ((err = avcodec_send_packet(v->dec, NULL)) < 0 && err != AVERROR_EOF)
                return aqa_fail(AQA_EFORMAT, "%s: cannot drain the decoder: %s", v->path, av_why(err, why, sizeof why));
            continue;
        }
        if (err < 0)
            return aqa_fail(AQA_EFORMAT, "%s: cannot read near frame %lld: %s", v->path, (long long)v->next_index,
                            av_why(err, why, sizeof why));
        if (v->pkt->stream_index != v->stream) {
            av_packet_unref(v->pkt);
            continue;
        }
        err = avcodec_send_packet(v->dec, v->pkt);
        av_packet_unref(v->pkt);
        if (err < 0 && err != AVERROR(EAGAIN))
            return aqa_fail(AQA_EFORMAT, "%s: corrupt data near frame %lld: %s", v->path, (long long)v->next_index,
                            av_why(err, why, sizeof why));
    }
    return AQA_OK;
}

/* Rotates src clockwise by deg (90, 180, 270) into dst (allocated to the right size). */
static void rotate_cw(const aqa_image *src, aqa_image *dst, int deg) {
    const int w = src->width, h = src->height;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int dx, dy;
            if (deg == 90) dx = h - 1 - y, dy = x;
            else if (deg == 180) dx = w - 1 - x, dy = h - 1 - y;
            else dx = y, dy = w - 1 - x;
            memcpy(dst->data + aqa_image_offset(dst, dx, dy), src->data + aqa_image_offset(src, x, y), 3);
        }
}

/* Converts v->frame to RGB (and upright); returns the image the reader owns. */
static const aqa_image *convert(aqa_video *v) {
    AVFrame *f = v->frame;
    int cs = f->colorspace == AVCOL_SPC_UNSPECIFIED ? SWS_CS_DEFAULT : (int)f->colorspace;
    int full = f->color_range == AVCOL_RANGE_JPEG;
    int key[5] = {f->width, f->height, f->format, cs, full};
    if (!v->sws || memcmp(key, v->sws_key, sizeof key)) {
        sws_freeContext(v->sws);
        /* bicubic, as the ffmpeg program's scale filter: the same RGB as its extracted frames */
        v->sws = sws_getContext(f->width, f->height, (enum AVPixelFormat)f->format, f->width, f->height,
                                AV_PIX_FMT_RGB24, SWS_BICUBIC, NULL, NULL, NULL);
        if (!v->sws)
            return aqa_fail_null("%s: cannot convert %s frames of %dx%d to RGB", v->path,
                                 av_get_pix_fmt_name((enum AVPixelFormat)f->format), f->width, f->height);
        const int *coef = sws_getCoefficients(cs);
        sws_setColorspaceDetails(v->sws, coef, full, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0, 1 << 16, 1 << 16);
        memcpy(v->sws_key, key, sizeof key);
    }
    if (!v->rgb || v->rgb->width != f->width || v->rgb->height != f->height) {
        aqa_image_free(v->rgb);
        if (!(v->rgb = aqa_image_new(f->width, f->height)))
            return aqa_fail_null("%s: frame of %dx%d: %s", v->path, f->width, f->height, aqa_last_error());
    }
    uint8_t *dst[4] = {v->rgb->data, NULL, NULL, NULL};
    int stride[4] = {3 * f->width, 0, 0, 0};
    sws_scale(v->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst, stride);
    int rot = v->info.rotation;
    if (!rot) return v->rgb;
    int rw = rot == 180 ? f->width : f->height, rh = rot == 180 ? f->height : f->width;
    if (!v->upright || v->upright->width != rw || v->upright->height != rh) {
        aqa_image_free(v->upright);
        if (!(v->upright = aqa_image_new(rw, rh))) return NULL;
    }
    rotate_cw(v->rgb, v->upright, rot);
    return v->upright;
}

/* Clockwise rotation (0, 90, 180, 270) that makes the stream's frames upright, as the ffmpeg
 * program's autorotation computes it from the display matrix. */
static int stream_rotation(const AVStream *st) {
    const int32_t *m = NULL;
#if LIBAVFORMAT_VERSION_INT >= AV_VERSION_INT(60, 15, 100)
    const AVPacketSideData *sd =
        av_packet_side_data_get(st->codecpar->coded_side_data, st->codecpar->nb_coded_side_data, AV_PKT_DATA_DISPLAYMATRIX);
    if (sd && sd->size >= 9 * sizeof(int32_t)) m = (const int32_t *)sd->data;
#else
    size_t size = 0;
    const uint8_t *sd = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (sd && size >= 9 * sizeof(int32_t)) m = (const int32_t *)sd;
#endif
    if (!m) return 0;
    double theta = -round(av_display_rotation_get(m));
    if (isnan(theta)) return 0;
    theta -= 360 * floor(theta / 360 + 0.9 / 360);
    int r = (int)lround(theta / 90) * 90 % 360;
    return r < 0 ? r + 360 : r;
}

aqa_video *aqa_video_open(const char *path) {
    pthread_once(&g_log_once, log_init);
    if (!path || !*path) return aqa_fail_null("aqa_video_open: no file name");
    struct stat sb;
    if (stat(path, &sb) != 0) {
        aqa_fail(AQA_EIO, "%s: no such video file", path);
        return NULL;
    }
    if (S_ISDIR(sb.st_mode)) {
        aqa_fail(AQA_EIO, "%s: is a folder, not a video file", path);
        return NULL;
    }
    aqa_video *v = calloc(1, sizeof *v);
    if (!v || !(v->path = strdup(path)) || !(v->pkt = av_packet_alloc()) || !(v->frame = av_frame_alloc())) {
        aqa_video_close(v);
        aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
        return NULL;
    }
    v->exact_count = -1;
    v->first_pts = AV_NOPTS_VALUE;
    if (open_codec(v)) {
        aqa_video_close(v);
        return NULL;
    }
    AVStream *st = v->fmt->streams[v->stream];
    aqa_video_info *in = &v->info;
    AVRational fr = st->avg_frame_rate.num > 0 && st->avg_frame_rate.den > 0 ? st->avg_frame_rate : st->r_frame_rate;
    in->fps = fr.num > 0 && fr.den > 0 ? av_q2d(fr) : 25.0;
    in->rotation = stream_rotation(st);
    bool swap = in->rotation == 90 || in->rotation == 270;
    in->width = swap ? v->dec->height : v->dec->width;
    in->height = swap ? v->dec->width : v->dec->height;
    if (st->duration != AV_NOPTS_VALUE && st->duration > 0) in->duration = (double)st->duration * av_q2d(st->time_base);
    else if (v->fmt->duration != AV_NOPTS_VALUE && v->fmt->duration > 0) in->duration = (double)v->fmt->duration / AV_TIME_BASE;
    in->n_frames = st->nb_frames > 0 ? st->nb_frames : (int64_t)llround(in->duration * in->fps);
    if (in->duration <= 0) in->duration = (double)in->n_frames / in->fps;
    snprintf(in->codec, sizeof in->codec, "%s", v->dec->codec->name);
    snprintf(in->container, sizeof in->container, "%s", v->fmt->iformat->name);
    /* frame 0: decoded now, so that a file with no decodable frame fails here, and its
     * timestamp anchors the frame numbers of seeks */
    bool got = false;
    int64_t idx = 0;
    if (decode_next(v, &got, &idx)) {
        aqa_video_close(v);
        return NULL;
    }
    if (!got) {
        aqa_fail(AQA_EFORMAT, "%s: the video stream holds no frame", path);
        aqa_video_close(v);
        return NULL;
    }
    if (in->width <= 0 || in->height <= 0) {
        in->width = swap ? v->frame->height : v->frame->width;
        in->height = swap ? v->frame->width : v->frame->height;
    }
    v->first_pts = v->frame->best_effort_timestamp;
    v->pending = true;
    v->pending_index = idx;
    return v;
}

void aqa_video_close(aqa_video *v) {
    if (!v) return;
    close_codec(v);
    av_packet_free(&v->pkt);
    av_frame_free(&v->frame);
    sws_freeContext(v->sws);
    aqa_image_free(v->rgb);
    aqa_image_free(v->upright);
    free(v->path);
    free(v);
}

const aqa_video_info *aqa_video_get_info(const aqa_video *v) { return v ? &v->info : NULL; }

aqa_status aqa_video_count_frames(aqa_video *v, int64_t *n) {
    if (!v || !n) return aqa_fail(AQA_EINVAL, "aqa_video_count_frames: NULL argument");
    if (v->exact_count < 0) {
        AVStream *st = v->fmt->streams[v->stream];
        if (st->nb_frames > 0) {
            v->exact_count = st->nb_frames;
        } else { /* count the stream's packets with a second demuxer: the reader keeps its place */
            AVFormatContext *f = NULL;
            char why[400];
            int err = avformat_open_input(&f, v->path, NULL, NULL);
            if (err >= 0) err = avformat_find_stream_info(f, NULL);
            if (err < 0) {
                avformat_close_input(&f);
                return aqa_fail(AQA_EFORMAT, "%s: cannot count frames: %s", v->path, av_why(err, why, sizeof why));
            }
            AVPacket *p = av_packet_alloc();
            int64_t count = 0;
            while (p && (err = av_read_frame(f, p)) >= 0) {
                count += p->stream_index == v->stream;
                av_packet_unref(p);
            }
            av_packet_free(&p);
            avformat_close_input(&f);
            if (err != AVERROR_EOF)
                return aqa_fail(AQA_EFORMAT, "%s: cannot count frames: %s", v->path, av_why(err, why, sizeof why));
            v->exact_count = count;
        }
        v->info.n_frames = v->exact_count;
    }
    *n = v->exact_count;
    return AQA_OK;
}

aqa_status aqa_video_next(aqa_video *v, const aqa_image **frame, int64_t *index) {
    if (!v || !frame) return aqa_fail(AQA_EINVAL, "aqa_video_next: NULL argument");
    *frame = NULL;
    bool got;
    int64_t idx = 0;
    aqa_status st = decode_next(v, &got, &idx);
    if (st || !got) return st;
    if (!(*frame = convert(v))) return aqa_last_status();
    if (index) *index = idx;
    return AQA_OK;
}

/* Reopens the file and decodes from frame 0. */
static aqa_status rewind_video(aqa_video *v) {
    close_codec(v);
    return open_codec(v);
}

/* Leaves the decoded frame `index` (or, in a video with a gap there, the first after it)
 * pending; AQA_EFORMAT when the video ends first. */
static aqa_status reach(aqa_video *v, int64_t index) {
    int64_t cur = v->pending ? v->pending_index : v->next_index;
    bool can_seek = v->first_pts != AV_NOPTS_VALUE;
    if (index < cur || (index - cur > AQA_VIDEO_SEEK_GAP && can_seek)) {
        aqa_status st = AQA_OK;
        bool sought = false;
        if (can_seek && index > 0) {
            int64_t ts = v->first_pts + (int64_t)llround((double)index / v->info.fps / av_q2d(v->tb));
            avcodec_flush_buffers(v->dec);
            v->pending = v->flushing = v->ended = false;
            sought = avformat_seek_file(v->fmt, v->stream, INT64_MIN, ts, ts, 0) >= 0;
            if (sought) {
                v->index_from_pts = true;
                bool got;
                int64_t idx = 0;
                if ((st = decode_next(v, &got, &idx))) return st;
                /* a seek that lands after the target (or finds nothing) is undone by rewinding */
                if (got && idx <= index) {
                    v->pending = true;
                    v->pending_index = idx;
                } else {
                    sought = false;
                }
            }
        }
        if (!sought && (st = rewind_video(v))) return st;
    }
    for (;;) {
        bool got;
        int64_t idx = 0;
        aqa_status st = decode_next(v, &got, &idx);
        if (st) return st;
        if (!got)
            return aqa_fail(AQA_EFORMAT, "%s: the video ends at frame %lld; frame %lld was asked for", v->path,
                            (long long)v->next_index - 1, (long long)index);
        if (idx >= index) {
            v->pending = true;
            v->pending_index = idx;
            return AQA_OK;
        }
    }
}

aqa_status aqa_video_seek_frame(aqa_video *v, int64_t index) {
    if (!v) return aqa_fail(AQA_EINVAL, "aqa_video_seek_frame: NULL video");
    if (index < 0) return aqa_fail(AQA_EINVAL, "%s: frame %lld does not exist", v->path, (long long)index);
    return reach(v, index);
}

int64_t aqa_video_frame_of_time(const aqa_video *v, double seconds) {
    return (int64_t)floor(seconds * v->info.fps + 1e-9);
}

double aqa_video_time_of_frame(const aqa_video *v, int64_t index) { return (double)index / v->info.fps; }

aqa_status aqa_video_seek_time(aqa_video *v, double seconds) {
    if (!v) return aqa_fail(AQA_EINVAL, "aqa_video_seek_time: NULL video");
    if (!(seconds >= 0)) return aqa_fail(AQA_EINVAL, "%s: time %g s is before the video", v->path, seconds);
    return reach(v, aqa_video_frame_of_time(v, seconds));
}

aqa_status aqa_video_read_frames(aqa_video *v, const int64_t *indices, size_t n, aqa_video_frame_fn fn, void *user) {
    if (!v || (n && (!indices || !fn))) return aqa_fail(AQA_EINVAL, "aqa_video_read_frames: NULL argument");
    for (size_t k = 0; k < n; k++)
        if (indices[k] < 0 || (k && indices[k] < indices[k - 1]))
            return aqa_fail(AQA_EINVAL, "%s: wanted frames must be >= 0 and non-decreasing (position %zu: %lld)",
                            v->path, k, (long long)indices[k]);
    const aqa_image *im = NULL;
    int64_t have = -1;
    for (size_t k = 0; k < n; k++) {
        if (indices[k] != have) {
            aqa_status st = reach(v, indices[k]);
            if (st) return st;
            v->pending = false; /* consumed here */
            have = indices[k];
            if (!(im = convert(v))) return aqa_last_status();
        }
        aqa_status st = fn(user, k, indices[k], im);
        if (st) return st;
    }
    return AQA_OK;
}

/* ---- writer ------------------------------------------------------------------------------- */

struct aqa_video_writer {
    char *path;               /* final file name */
    aqa_atomic_file *af;      /* the temporary file the muxer writes through io */
    AVFormatContext *fmt;     /* muxer */
    AVIOContext *io;          /* custom I/O over af's stream */
    AVCodecContext *enc;      /* encoder */
    AVStream *st;             /* the video stream */
    struct SwsContext *sws;   /* RGB24 -> the encoder's pixel format */
    AVFrame *frame;           /* converted frame handed to the encoder */
    AVPacket *pkt;            /* encoded packet */
    int64_t n;                /* frames added */
};

aqa_video_writer_options aqa_video_writer_defaults(void) {
    aqa_video_writer_options o = {NULL, 25.0, NULL};
    return o;
}

#if LIBAVFORMAT_VERSION_MAJOR >= 61
static int io_write(void *opaque, const uint8_t *buf, int size) {
#else
static int io_write(void *opaque, uint8_t *buf, int size) {
#endif
    FILE *f = aqa_atomic_stream((aqa_atomic_file *)opaque);
    return fwrite(buf, 1, (size_t)size, f) == (size_t)size ? size : AVERROR(EIO);
}

static int64_t io_seek(void *opaque, int64_t offset, int whence) {
    FILE *f = aqa_atomic_stream((aqa_atomic_file *)opaque);
    if (whence & AVSEEK_SIZE) {
        if (fflush(f) != 0) return AVERROR(EIO);
        struct stat sb;
        return fstat(fileno(f), &sb) == 0 ? (int64_t)sb.st_size : AVERROR(EIO);
    }
    if (fseeko(f, (off_t)offset, whence & ~AVSEEK_FORCE) != 0) return AVERROR(EIO);
    return (int64_t)ftello(f);
}

static void writer_free(aqa_video_writer *w) {
    if (w->io) {
        av_freep(&w->io->buffer);
        avio_context_free(&w->io);
    }
    if (w->fmt) w->fmt->pb = NULL;
    avformat_free_context(w->fmt);
    avcodec_free_context(&w->enc);
    sws_freeContext(w->sws);
    av_frame_free(&w->frame);
    av_packet_free(&w->pkt);
    free(w->path);
    free(w);
}

void aqa_video_writer_abort(aqa_video_writer *w) {
    if (!w) return;
    aqa_atomic_abort(w->af);
    writer_free(w);
}

/* The encoder's pixel format: RGB24 or another lossless RGB layout when it takes one, else
 * YUV 4:2:0 (what players expect), else its closest to RGB24. */
static enum AVPixelFormat pick_pix_fmt(const AVCodec *c) {
    const enum AVPixelFormat *list = NULL;
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(61, 13, 100)
    avcodec_get_supported_config(NULL, c, AV_CODEC_CONFIG_PIX_FORMAT, 0, (const void **)&list, NULL);
#else
    list = c->pix_fmts;
#endif
    if (!list) return AV_PIX_FMT_YUV420P;
    bool has420 = false;
    for (const enum AVPixelFormat *p = list; *p != AV_PIX_FMT_NONE; p++) {
        if (*p == AV_PIX_FMT_RGB24) return *p;
        has420 |= *p == AV_PIX_FMT_YUV420P;
    }
    int loss = 0;
    enum AVPixelFormat best = avcodec_find_best_pix_fmt_of_list(list, AV_PIX_FMT_RGB24, 0, &loss);
    if (best != AV_PIX_FMT_NONE && !(loss & (FF_LOSS_COLORSPACE | FF_LOSS_CHROMA | FF_LOSS_RESOLUTION | FF_LOSS_DEPTH)))
        return best;
    return has420 ? AV_PIX_FMT_YUV420P : best;
}

/* Sends frame (NULL: flush) and writes every packet the encoder gives back. */
static aqa_status encode(aqa_video_writer *w, AVFrame *frame) {
    char why[400];
    int err = avcodec_send_frame(w->enc, frame);
    if (err < 0) return aqa_fail(AQA_EIO, "%s: cannot encode frame %lld: %s", w->path, (long long)w->n, av_why(err, why, sizeof why));
    for (;;) {
        err = avcodec_receive_packet(w->enc, w->pkt);
        if (err == AVERROR(EAGAIN) || err == AVERROR_EOF) return AQA_OK;
        if (err < 0) return aqa_fail(AQA_EIO, "%s: encoder failed: %s", w->path, av_why(err, why, sizeof why));
        av_packet_rescale_ts(w->pkt, w->enc->time_base, w->st->time_base);
        w->pkt->stream_index = w->st->index;
        err = av_interleaved_write_frame(w->fmt, w->pkt);
        if (err < 0) return aqa_fail(AQA_EIO, "%s: cannot write: %s", w->path, av_why(err, why, sizeof why));
    }
}

aqa_video_writer *aqa_video_writer_open(const char *path, int width, int height, const aqa_video_writer_options *opt) {
    pthread_once(&g_log_once, log_init);
    aqa_video_writer_options o = opt ? *opt : aqa_video_writer_defaults();
    if (!path || !*path) return aqa_fail_null("aqa_video_writer_open: no file name");
    if (width <= 0 || height <= 0 || width > AQA_IMAGE_MAX_SIDE || height > AQA_IMAGE_MAX_SIDE)
        return aqa_fail_null("%s: bad frame size %dx%d", path, width, height);
    if (!(o.fps > 0) || o.fps > 1000) return aqa_fail_null("%s: bad frame rate %g", path, o.fps);
    aqa_video_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return aqa_fail_null("%s: out of memory", path);
    }
    char why[400];
    AVDictionary *dict = NULL;
    const AVOutputFormat *of = av_guess_format(NULL, path, NULL);
    if (!of) {
        aqa_fail(AQA_EINVAL, "%s: cannot tell the container from the file name (use .mp4, .mkv, .avi, ...)", path);
        goto fail;
    }
    const AVCodec *codec = o.codec ? avcodec_find_encoder_by_name(o.codec) : avcodec_find_encoder(of->video_codec);
    if (!codec || codec->type != AVMEDIA_TYPE_VIDEO) {
        aqa_fail(AQA_EUNSUPPORTED, "%s: no video encoder \"%s\" in this FFmpeg", path,
                 o.codec ? o.codec : avcodec_get_name(of->video_codec));
        goto fail;
    }
    if (avformat_alloc_output_context2(&w->fmt, of, NULL, path) < 0 || !(w->enc = avcodec_alloc_context3(codec)) ||
        !(w->frame = av_frame_alloc()) || !(w->pkt = av_packet_alloc())) {
        aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    AVRational fr = av_d2q(o.fps, 1001000);
    w->enc->width = width;
    w->enc->height = height;
    w->enc->time_base = av_inv_q(fr);
    w->enc->framerate = fr;
    w->enc->pix_fmt = pick_pix_fmt(codec);
    w->enc->thread_count = 1; /* deterministic output, no threads behind the caller's back */
    if (of->flags & AVFMT_GLOBALHEADER) w->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (o.options && av_dict_parse_string(&dict, o.options, "=", ":", 0) < 0) {
        aqa_fail(AQA_EINVAL, "%s: bad encoder options \"%s\" (expected key=value:key=value)", path, o.options);
        goto fail;
    }
    int err = avcodec_open2(w->enc, codec, &dict);
    if (err < 0) {
        aqa_fail(AQA_EINVAL, "%s: cannot open the %s encoder: %s", path, codec->name, av_why(err, why, sizeof why));
        goto fail;
    }
    if (av_dict_count(dict)) {
        aqa_fail(AQA_EINVAL, "%s: the %s encoder has no option \"%s\"", path, codec->name, av_dict_get(dict, "", NULL, AV_DICT_IGNORE_SUFFIX)->key);
        goto fail;
    }
    av_dict_free(&dict);
    if (!(w->st = avformat_new_stream(w->fmt, NULL)) || avcodec_parameters_from_context(w->st->codecpar, w->enc) < 0) {
        aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    w->st->time_base = w->enc->time_base;
    w->st->avg_frame_rate = fr;
    w->frame->format = w->enc->pix_fmt;
    w->frame->width = width;
    w->frame->height = height;
    if (av_frame_get_buffer(w->frame, 0) < 0) {
        aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    w->sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, w->enc->pix_fmt, SWS_BICUBIC, NULL, NULL, NULL);
    if (!w->sws) {
        aqa_fail(AQA_EUNSUPPORTED, "%s: cannot convert RGB to %s", path, av_get_pix_fmt_name(w->enc->pix_fmt));
        goto fail;
    }
    if (aqa_atomic_open(path, &w->af)) goto fail;
    const int io_size = 1 << 16;
    unsigned char *buf = av_malloc(io_size);
    if (!buf || !(w->io = avio_alloc_context(buf, io_size, 1, w->af, NULL, io_write, io_seek))) {
        av_free(buf);
        aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
        goto fail;
    }
    w->fmt->pb = w->io;
    if ((err = avformat_write_header(w->fmt, NULL)) < 0) {
        aqa_fail(AQA_EIO, "%s: cannot write the %s header: %s", path, of->name, av_why(err, why, sizeof why));
        goto fail;
    }
    return w;
fail:
    av_dict_free(&dict);
    aqa_video_writer_abort(w);
    return NULL;
}

aqa_status aqa_video_writer_add(aqa_video_writer *w, const aqa_image *im) {
    if (!w || !im || !im->data) return aqa_fail(AQA_EINVAL, "aqa_video_writer_add: NULL argument");
    if (im->width != w->enc->width || im->height != w->enc->height || im->channels != 3)
        return aqa_fail(AQA_EINVAL, "%s: frame %lld is %dx%d (%d channels), the video is %dx%d RGB", w->path,
                        (long long)w->n, im->width, im->height, im->channels, w->enc->width, w->enc->height);
    if (av_frame_make_writable(w->frame) < 0) return aqa_fail(AQA_ENOMEM, "%s: out of memory", w->path);
    const uint8_t *src[4] = {im->data, NULL, NULL, NULL};
    int stride[4] = {3 * im->width, 0, 0, 0};
    sws_scale(w->sws, src, stride, 0, im->height, w->frame->data, w->frame->linesize);
    w->frame->pts = w->n;
    aqa_status st = encode(w, w->frame);
    if (!st) w->n++;
    return st;
}

aqa_status aqa_video_writer_close(aqa_video_writer *w) {
    if (!w) return aqa_fail(AQA_EINVAL, "aqa_video_writer_close: NULL writer");
    aqa_status st = w->n ? AQA_OK : aqa_fail(AQA_EINVAL, "%s: no frame was added", w->path);
    char why[400];
    int err;
    if (!st) st = encode(w, NULL);
    if (!st && (err = av_write_trailer(w->fmt)) < 0)
        st = aqa_fail(AQA_EIO, "%s: cannot finish the file: %s", w->path, av_why(err, why, sizeof why));
    if (!st) {
        avio_flush(w->io);
        if (w->io->error < 0) st = aqa_fail(AQA_EIO, "%s: write failed", w->path);
    }
    if (st) {
        aqa_video_writer_abort(w);
        return st;
    }
    st = aqa_atomic_commit(w->af);
    writer_free(w);
    return st;
}
