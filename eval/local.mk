# Build fragment for eval/ (included by the top Makefile.am): the metrics AQA papers report and
# the figures (plots drawn on image/'s canvas).
nobase_aqainclude_HEADERS += eval/eval.h eval/metrics.h eval/plot.h
libaqa_la_SOURCES += eval/metrics.c eval/plot.c
check_PROGRAMS += tests/test_metrics
tests_test_metrics_SOURCES = tests/test_metrics.c
