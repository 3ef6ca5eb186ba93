# Build fragment for the annotation readers (included at the end of datasets/local.mk):
# the Python pickle subset reader and the MTL-AQA / JIGSAWS / Fis-V / FineDiving manifest loaders.
libaqa_a_SOURCES += datasets/pickle.c datasets/annotations.c datasets/ann_mtl_aqa.c \
	datasets/ann_jigsaws.c datasets/ann_fisv.c datasets/ann_finediving.c
nobase_aqainclude_HEADERS += datasets/pickle.h datasets/annotations.h
noinst_HEADERS += datasets/annotations-impl.h

check_PROGRAMS += tests/test_pickle tests/test_annotations
tests_test_pickle_SOURCES = tests/test_pickle.c
tests_test_annotations_SOURCES = tests/test_annotations.c
