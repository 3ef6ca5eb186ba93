# Build fragment for datasets/ (included by the top Makefile.am).

# Metrics, .npy reader, FINA dive numbers and text annotations.
libaqa_a_SOURCES += datasets/metrics.c datasets/npy.c datasets/fina.c datasets/texts.c
nobase_aqainclude_HEADERS += datasets/metrics.h datasets/npy.h datasets/fina.h datasets/texts.h

# examples/local.mk is shared; the programs built from this component's code are listed here.
noinst_PROGRAMS += examples/evaluate
examples_evaluate_SOURCES = examples/evaluate.c

check_PROGRAMS += tests/test_metrics tests/test_fina
tests_test_metrics_SOURCES = tests/test_metrics.c
tests_test_fina_SOURCES = tests/test_fina.c
include datasets/image.mk
include datasets/annotations.mk
include datasets/synthetic.mk
include datasets/pipeline.mk
