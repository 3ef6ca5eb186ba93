# Build fragment for the reductions, softmax and matmul (included from tensor/local.mk).
noinst_HEADERS += tensor/cpu_softmax_row.h
libaqa_a_SOURCES += tensor/ops_reduce.c tensor/ops_matmul.c tensor/cpu_reduce.c tensor/cpu_matmul.c
check_PROGRAMS += tests/test_reduce tests/test_matmul
tests_test_reduce_SOURCES = tests/test_reduce.c
tests_test_matmul_SOURCES = tests/test_matmul.c
