/* video_none.c: the video API of a build without FFmpeg's libraries (configure did not find
 * them, or --without-ffmpeg): every call fails with AQA_EUNSUPPORTED and says how to get them. */
#include "image/video.h"

#include <stdlib.h>

#define NO_FFMPEG                                                                                       \
    "aqa was built without FFmpeg, so it cannot read or write video files (apt-get install libavformat-dev " \
    "libavcodec-dev libswscale-dev libavutil-dev, then run ./configure and make again; or extract the "    \
    "frames with the ffmpeg program)"

bool aqa_video_available(void) { return false; }

aqa_video *aqa_video_open(const char *path) {
    aqa_fail(AQA_EUNSUPPORTED, "%s: " NO_FFMPEG, path ? path : "(null)");
    return NULL;
}
void aqa_video_close(aqa_video *v) { (void)v; }
const aqa_video_info *aqa_video_get_info(const aqa_video *v) { return NULL; }
aqa_status aqa_video_count_frames(aqa_video *v, int64_t *n) { return aqa_fail(AQA_EUNSUPPORTED, NO_FFMPEG); }
aqa_status aqa_video_next(aqa_video *v, const aqa_image **frame, int64_t *index) {
    if (frame) *frame = NULL;
    return aqa_fail(AQA_EUNSUPPORTED, NO_FFMPEG);
}
aqa_status aqa_video_seek_frame(aqa_video *v, int64_t index) { return aqa_fail(AQA_EUNSUPPORTED, NO_FFMPEG); }
aqa_status aqa_video_seek_time(aqa_video *v, double seconds) { return aqa_fail(AQA_EUNSUPPORTED, NO_FFMPEG); }
int64_t aqa_video_frame_of_time(const aqa_video *v, double seconds) { return -1; }
double aqa_video_time_of_frame(const aqa_video *v, int64_t index) { return -1; }
aqa_status aqa_video_read_frames(aqa_video *v, const int64_t *indices, size_t n, aqa_video_frame_fn fn, void *user) {
    return aqa_fail(AQA_EUNSUPPORTED, NO_FFMPEG);
}

aqa_video_writer_options aqa_video_writer_defaults(void) {
    aqa_video_writer_options o = {NULL, 25.0, NULL};
    return o;
}
aqa_video_writer *aqa_video_writer_open(const char *path, int width, int height, const aqa_video_writer_options *opt) {
    aqa_fail(AQA_EUNSUPPORTED, "%s: " NO_FFMPEG, path ? path : "(null)");
    return NULL;
}
aqa_status aqa_video_writer_add(aqa_video_writer *w, const aqa_image *frame) { return aqa_fail(AQA_EUNSUPPORTED, NO_FFMPEG); }
aqa_status aqa_video_writer_close(aqa_video_writer *w) { return aqa_fail(AQA_EUNSUPPORTED, NO_FFMPEG); }
void aqa_video_writer_abort(aqa_video_writer *w) { (void)w; }
