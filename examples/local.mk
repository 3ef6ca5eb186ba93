# Build fragment for examples/ (included by the top Makefile.am).
noinst_PROGRAMS += examples/quickstart
examples_quickstart_SOURCES = examples/quickstart.c
