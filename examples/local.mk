# Build fragment for examples/ (included by the top Makefile.am): the programs that belong to no
# single component -- the quick start, the plotting demo and the MVLA pipeline (make_synthetic,
# pretrain_clip, pretrain_i3d, extract_features, train_mvla, evaluate; from videos: extract_frames,
# score_video) with their shared headers
# (mvla_common.h: settings parser, word tokenizer, helpers; mvla_run.h: the training run).
noinst_HEADERS += examples/mvla_common.h examples/mvla_run.h
noinst_PROGRAMS += examples/quickstart examples/plot_demo examples/make_synthetic examples/pretrain_clip \
	examples/pretrain_i3d examples/extract_features examples/train_mvla examples/evaluate \
	examples/extract_frames examples/score_video
examples_quickstart_SOURCES = examples/quickstart.c
examples_plot_demo_SOURCES = examples/plot_demo.c
examples_make_synthetic_SOURCES = examples/make_synthetic.c
examples_pretrain_clip_SOURCES = examples/pretrain_clip.c
examples_pretrain_i3d_SOURCES = examples/pretrain_i3d.c
examples_extract_features_SOURCES = examples/extract_features.c
examples_train_mvla_SOURCES = examples/train_mvla.c
examples_evaluate_SOURCES = examples/evaluate.c
examples_extract_frames_SOURCES = examples/extract_frames.c
examples_score_video_SOURCES = examples/score_video.c
check_PROGRAMS += tests/test_train_cli tests/test_video_cli
tests_test_train_cli_SOURCES = tests/test_train_cli.c
tests_test_video_cli_SOURCES = tests/test_video_cli.c
