# Build fragment for image decoding/encoding, PIL-compatible resizing and the raster canvas/plots
# (datasets/image.*, resize.*, canvas.*, plot.*, font.c; included from datasets/local.mk).
libaqa_a_SOURCES += datasets/image.c datasets/resize.c
nobase_aqainclude_HEADERS += datasets/image.h datasets/resize.h
check_PROGRAMS += tests/test_image
tests_test_image_SOURCES = tests/test_image.c
EXTRA_DIST += tests/data/image
libaqa_a_SOURCES += datasets/canvas.c datasets/font.c datasets/plot.c
nobase_aqainclude_HEADERS += datasets/canvas.h datasets/plot.h
check_PROGRAMS += tests/test_canvas
tests_test_canvas_SOURCES = tests/test_canvas.c
noinst_PROGRAMS += examples/plot_demo
examples_plot_demo_SOURCES = examples/plot_demo.c
