# Build fragment for tensor/ (included by the top Makefile.am).
nobase_aqainclude_HEADERS += tensor/tensor.h tensor/ops.h tensor/error.h
noinst_HEADERS += tensor/tensor-impl.h tensor/backend.h tensor/cpu-impl.h tensor/iter.h tensor/kernel-shared.h
libaqa_a_SOURCES += tensor/error.c tensor/tensor.c tensor/views.c tensor/iter.c tensor/random.c \
	tensor/print.c tensor/cpu_backend.c tensor/cpu_copy.c tensor/kernel_shared.c
check_PROGRAMS += tests/test_tensor
tests_test_tensor_SOURCES = tests/test_tensor.c
include tensor/index.mk
include tensor/reduce.mk
include tensor/elementwise.mk
include tensor/cuda/local.mk
