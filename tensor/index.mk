# Build fragment for the joining/splitting/indexing/padding ops (included by tensor/local.mk).
libaqa_a_SOURCES += tensor/ops_join.c tensor/ops_index.c tensor/cpu_index.c
check_PROGRAMS += tests/test_index
tests_test_index_SOURCES = tests/test_index.c
