# Build fragment for tests/ (included by the top Makefile.am).
check_PROGRAMS += tests/test_parity
tests_test_parity_SOURCES = tests/test_parity.c
# Helpers shared by the test programs (header-only, like tests/testlib.h).
noinst_HEADERS += tests/testlib.h tests/test_util.h tests/cuda_testlib.h tests/cli_testlib.h tests/fixtures.h
include tests/fuzz/local.mk
