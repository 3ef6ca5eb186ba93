# Build fragment for nn/ (included by the top Makefile.am).
nobase_aqainclude_HEADERS += nn/module.h nn/tensor_file.h
libaqa_a_SOURCES += nn/module.c nn/tensor_file.c
check_PROGRAMS += tests/test_module
tests_test_module_SOURCES = tests/test_module.c
include nn/safetensors.mk
include nn/train.mk
include nn/conv.mk
include nn/layers.mk
