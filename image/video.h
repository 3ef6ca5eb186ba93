/* video.h: video files as sequences of 8-bit RGB images (aqa_image), read and written with
 * FFmpeg's libraries (libavformat, libavcodec, libswscale).
 *
 * Reading: any container and codec the installed FFmpeg decodes.  Frames come out in display
 * order as RGB (converted by libswscale with the stream's colour matrix and range, bicubic chroma
 * as the ffmpeg program's default), rotated upright when the container carries a display matrix
 * (phone videos), one at a time into a buffer the reader owns: memory stays bounded whatever the
 * video's length.
 *
 * Frame numbers.  Frame k is the k-th decoded frame, counting from 0; `ffmpeg -i v.mp4 %05d.jpg`
 * writes it as file number k + 1 (its default -start_number), which is how FineDiving's and
 * MTL-AQA's frame numbers relate to their videos (datasets/video_dataset.h).  Frame k shows at
 * time k / fps seconds after the first frame.  Seeking (by frame or by time) jumps to the key
 * frame before the target and decodes forward, deriving frame numbers from timestamps: exact for
 * constant-frame-rate videos (what cameras and encoders write); for a variable-frame-rate video
 * the numbers of frames read after a seek follow its average rate.  Reading forward never seeks
 * unless the next wanted frame is more than AQA_VIDEO_SEEK_GAP frames ahead.
 *
 * Errors name the file: AQA_EIO (cannot open), AQA_EFORMAT (not a video, no video stream, corrupt
 * or truncated data, a frame past the end), AQA_EUNSUPPORTED (no decoder for the codec; or aqa was
 * built without FFmpeg: then every call fails so, and aqa_video_available() is false).
 *
 * Writing: frames of one size go to any container/encoder pair FFmpeg writes (the container from
 * the file name), atomically (io/atomic_file.h: a temporary file renamed into place on close). */
#ifndef AQA_IMAGE_VIDEO_H
#define AQA_IMAGE_VIDEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "image/image.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Frames further ahead than this are reached by a seek, nearer ones by decoding forward. */
#define AQA_VIDEO_SEEK_GAP 250

/* True when this build reads and writes videos (configure found FFmpeg's libraries). */
bool aqa_video_available(void);

typedef struct aqa_video aqa_video; /* an open video file (opaque) */

typedef struct aqa_video_info {
    int width, height;  /* frame size in pixels after rotation (what aqa_video_next returns) */
    double fps;         /* average frame rate, frames per second */
    int64_t n_frames;   /* frame count: the container's, else estimated from the duration
                           (aqa_video_count_frames gives an exact count) */
    double duration;    /* seconds (n_frames / fps when the container has none) */
    int rotation;       /* clockwise rotation applied to make frames upright: 0, 90, 180, 270 */
    char codec[32];     /* decoder name ("h264") */
    char container[32]; /* demuxer name ("mov,mp4,m4a,3gp,3g2,mj2" is cut to fit) */
} aqa_video_info;

/* Opens a video file for reading.  NULL with an error naming the file. */
aqa_video *aqa_video_open(const char *path);
/* Closes it (NULL is fine). */
void aqa_video_close(aqa_video *v);
/* Its properties (valid while open). */
const aqa_video_info *aqa_video_get_info(const aqa_video *v);
/* The exact frame count: the container's when it records one, else counted by reading every
 * packet (no decoding); cached, and the reading position is kept. */
aqa_status aqa_video_count_frames(aqa_video *v, int64_t *n);

/* The next frame: *frame points at an image the reader owns, valid until the next call on v;
 * *index is its frame number.  At the end of the video *frame is NULL and AQA_OK is returned. */
aqa_status aqa_video_next(aqa_video *v, const aqa_image **frame, int64_t *index);
/* Positions the reader so that aqa_video_next returns frame `index` (AQA_EFORMAT when the video
 * ends before it). */
aqa_status aqa_video_seek_frame(aqa_video *v, int64_t index);
/* The same for the frame showing at `seconds` after the first frame: floor(seconds * fps). */
aqa_status aqa_video_seek_time(aqa_video *v, double seconds);
/* Frame number showing at `seconds` (floor(seconds * fps + 1e-9)), and the time of a frame. */
int64_t aqa_video_frame_of_time(const aqa_video *v, double seconds);
double aqa_video_time_of_frame(const aqa_video *v, int64_t index);

/* Called for each wanted frame: k is its position in the list of wanted frames (a frame wanted
 * several times is delivered once per position).  A non-zero status stops the reading and is
 * returned. */
typedef aqa_status (*aqa_video_frame_fn)(void *user, size_t k, int64_t index, const aqa_image *frame);
/* Streams frames indices[0..n) (non-decreasing) to fn, decoding forward, seeking over gaps of
 * more than AQA_VIDEO_SEEK_GAP frames, converting only the wanted frames to RGB; never holds more
 * than one RGB frame.  AQA_EFORMAT naming the file and frame when the video ends first. */
aqa_status aqa_video_read_frames(aqa_video *v, const int64_t *indices, size_t n, aqa_video_frame_fn fn, void *user);

/* ---- writing ------------------------------------------------------------------------------- */

typedef struct aqa_video_writer aqa_video_writer; /* a video file being written (opaque) */

typedef struct aqa_video_writer_options {
    const char *codec;   /* encoder name ("libx264", "mpeg4", "ffv1", "png", ...); NULL: the
                            container's default video encoder */
    double fps;          /* frames per second (> 0) */
    const char *options; /* encoder options "key=value:key=value" ("crf=18:preset=fast"), or NULL */
} aqa_video_writer_options;

/* Default options: the container's encoder, 25 fps, no extra options. */
aqa_video_writer_options aqa_video_writer_defaults(void);

/* Starts a video of width x height frames at `path` (container from the file name).  The pixel
 * format is the encoder's closest to RGB24 (RGB24 itself for lossless RGB encoders such as png
 * and ffv1, YUV 4:2:0 for most others).  NULL with an error naming the file. */
aqa_video_writer *aqa_video_writer_open(const char *path, int width, int height, const aqa_video_writer_options *opt);
/* Appends one frame (its size must be the video's). */
aqa_status aqa_video_writer_add(aqa_video_writer *w, const aqa_image *frame);
/* Flushes the encoder, finishes the file and moves it into place; frees w whatever the outcome
 * (on failure nothing appears at the path). */
aqa_status aqa_video_writer_close(aqa_video_writer *w);
/* Discards a video being written (NULL is fine). */
void aqa_video_writer_abort(aqa_video_writer *w);

#ifdef __cplusplus
}
#endif

#endif /* AQA_IMAGE_VIDEO_H */
