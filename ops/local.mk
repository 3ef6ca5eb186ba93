# Build fragment for ops/ (included by the top Makefile.am): the differentiable tensor API -- every
# op's front-end (argument checks, shapes, broadcasting, dtype promotion, output allocation) with
# its backward beside it, views, conversions and printing.  Kernels are the backends' (tensor/).
nobase_aqainclude_HEADERS += ops/ops.h
noinst_HEADERS += ops/elementwise-impl.h
libaqa_la_SOURCES += ops/convert.c ops/views.c ops/print.c ops/ops_elementwise.c ops/ops_unary.c ops/ops_binary.c \
	ops/ops_reduce.c ops/ops_matmul.c ops/ops_join.c ops/ops_index.c
check_PROGRAMS += tests/test_elementwise tests/test_reduce tests/test_matmul tests/test_index
tests_test_elementwise_SOURCES = tests/test_elementwise.c
tests_test_reduce_SOURCES = tests/test_reduce.c
tests_test_matmul_SOURCES = tests/test_matmul.c
tests_test_index_SOURCES = tests/test_index.c
EXTRA_DIST += tests/data/golden_elementwise.safetensors
