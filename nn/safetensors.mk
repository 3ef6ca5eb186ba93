# Build fragment for safetensors I/O and atomic file writing (included from nn/local.mk).
libaqa_a_SOURCES += nn/safetensors.c nn/atomic_file.c
nobase_aqainclude_HEADERS += nn/safetensors.h nn/atomic_file.h
check_PROGRAMS += tests/test_safetensors
tests_test_safetensors_SOURCES = tests/test_safetensors.c
EXTRA_DIST += tests/data/safetensors
