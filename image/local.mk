# Build fragment for image/ (included by the top Makefile.am): raster RGB images, below the
# tensors -- PNG/JPEG decoding and atomic encoding, PIL-exact resizing and cropping, and drawing
# (a canvas with lines, shapes and a bitmap font) for the synthetic frames and the figures.
nobase_aqainclude_HEADERS += image/image.h image/resize.h image/canvas.h
libaqa_la_SOURCES += image/image.c image/resize.c image/canvas.c image/font.c
check_PROGRAMS += tests/test_image tests/test_canvas
tests_test_image_SOURCES = tests/test_image.c
tests_test_canvas_SOURCES = tests/test_canvas.c
EXTRA_DIST += tests/data/image
