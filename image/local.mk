# Build fragment for image/ (included by the top Makefile.am): raster RGB images, below the
# tensors -- PNG/JPEG decoding and atomic encoding, PIL-exact resizing and cropping, and drawing
# (a canvas with lines, shapes and a bitmap font) for the synthetic frames and the figures, and
# video files as RGB frames (FFmpeg's libraries when configure found them, else stubs that say so).
nobase_aqainclude_HEADERS += image/image.h image/resize.h image/canvas.h image/video.h
libaqa_la_SOURCES += image/image.c image/resize.c image/canvas.c image/font.c
if HAVE_FFMPEG
libaqa_la_SOURCES += image/video.c
else
libaqa_la_SOURCES += image/video_none.c
endif
EXTRA_DIST += image/video.c image/video_none.c
check_PROGRAMS += tests/test_image tests/test_canvas tests/test_video
tests_test_image_SOURCES = tests/test_image.c
tests_test_canvas_SOURCES = tests/test_canvas.c
tests_test_video_SOURCES = tests/test_video.c
EXTRA_DIST += tests/data/image
