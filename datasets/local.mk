# Build fragment for datasets/ (included by the top Makefile.am): the four AQA datasets' annotation
# loaders, FINA dive numbers and the texts of each dataset, sampled video datasets, exemplar
# pairing, the threaded batch loader, the per-video feature cache and the synthetic datasets
# (dives in FineDiving's and MTL-AQA's files, surgery in JIGSAWS', skating in Fis-V's).
nobase_aqainclude_HEADERS += datasets/datasets.h datasets/annotations.h datasets/fina.h datasets/texts.h \
	datasets/video_dataset.h datasets/loader.h datasets/exemplar.h datasets/feature_cache.h datasets/synthetic.h
noinst_HEADERS += datasets/annotations-impl.h datasets/synthetic-impl.h
libaqa_la_SOURCES += datasets/annotations.c datasets/ann_finediving.c datasets/ann_mtl_aqa.c datasets/ann_jigsaws.c \
	datasets/ann_fisv.c datasets/fina.c datasets/texts.c datasets/video_dataset.c datasets/loader.c \
	datasets/exemplar.c datasets/feature_cache.c datasets/synthetic.c datasets/synthetic_mtl.c \
	datasets/synthetic_surgery.c datasets/synthetic_skating.c
check_PROGRAMS += tests/test_annotations tests/test_fina tests/test_video_dataset tests/test_synthetic \
	tests/test_synthetic_layouts
tests_test_annotations_SOURCES = tests/test_annotations.c
tests_test_fina_SOURCES = tests/test_fina.c
tests_test_video_dataset_SOURCES = tests/test_video_dataset.c
tests_test_synthetic_SOURCES = tests/test_synthetic.c
tests_test_synthetic_layouts_SOURCES = tests/test_synthetic_layouts.c
