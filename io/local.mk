# Build fragment for io/ (included by the top Makefile.am): files and file formats, below the
# tensors -- atomic writes, safetensors (byte level), Python pickles (read and write), .npy.
# Nothing here knows what a tensor is.
nobase_aqainclude_HEADERS += io/io.h io/atomic_file.h io/safetensors.h io/pickle.h io/pickle_write.h io/npy.h
libaqa_la_SOURCES += io/atomic_file.c io/safetensors.c io/pickle.c io/pickle_write.c io/npy.c
check_PROGRAMS += tests/test_safetensors tests/test_pickle
tests_test_safetensors_SOURCES = tests/test_safetensors.c
tests_test_pickle_SOURCES = tests/test_pickle.c
EXTRA_DIST += tests/data/safetensors
