# Build fragment for the synthetic diving dataset generator and the protocol-2 pickle writer it
# uses (datasets/synthetic.*, datasets/pickle_write.*; included at the end of datasets/local.mk).
libaqa_a_SOURCES += datasets/synthetic.c datasets/pickle_write.c
nobase_aqainclude_HEADERS += datasets/synthetic.h datasets/pickle_write.h

noinst_PROGRAMS += examples/make_synthetic
examples_make_synthetic_SOURCES = examples/make_synthetic.c

check_PROGRAMS += tests/test_synthetic
tests_test_synthetic_SOURCES = tests/test_synthetic.c
