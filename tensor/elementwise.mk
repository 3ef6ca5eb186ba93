# Build fragment for the elementwise ops (included by tensor/local.mk).
libaqa_a_SOURCES += tensor/ops_elementwise.c tensor/ops_binary.c tensor/ops_unary.c tensor/cpu_elementwise.c
noinst_HEADERS += tensor/elementwise-impl.h tensor/cpu_elementwise_f32.h
check_PROGRAMS += tests/test_elementwise
tests_test_elementwise_SOURCES = tests/test_elementwise.c
EXTRA_DIST += tests/data/golden_elementwise.safetensors
