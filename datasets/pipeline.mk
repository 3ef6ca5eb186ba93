# Build fragment for the data pipeline and the MVLA programs (included at the end of
# datasets/local.mk): sampled video datasets, exemplar pairing, the threaded batch loader, the
# per-video feature cache; examples extract_features, train_mvla, pretrain_clip, pretrain_i3d;
# their tests.
libaqa_a_SOURCES += datasets/video_dataset.c datasets/loader.c datasets/exemplar.c datasets/feature_cache.c
nobase_aqainclude_HEADERS += datasets/video_dataset.h datasets/loader.h datasets/exemplar.h \
	datasets/feature_cache.h

check_PROGRAMS += tests/test_video_dataset tests/test_train_cli
tests_test_video_dataset_SOURCES = tests/test_video_dataset.c
tests_test_train_cli_SOURCES = tests/test_train_cli.c

# The MVLA programs (examples/mvla_common.h: their shared settings parser, word tokenizer, helpers).
noinst_HEADERS += examples/mvla_common.h examples/mvla_run.h
noinst_PROGRAMS += examples/pretrain_clip examples/pretrain_i3d examples/extract_features examples/train_mvla
examples_pretrain_clip_SOURCES = examples/pretrain_clip.c
examples_pretrain_i3d_SOURCES = examples/pretrain_i3d.c
examples_extract_features_SOURCES = examples/extract_features.c
examples_train_mvla_SOURCES = examples/train_mvla.c
