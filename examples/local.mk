# Build fragment for examples/ (included by the top Makefile.am): the programs that belong to no
# single component -- the quick start, the plotting demo and the MVLA pipeline (make_synthetic,
# pretrain_clip, pretrain_i3d, extract_features, train_mvla, evaluate; from videos: extract_frames,
# score_video) with their shared headers (mvla_common.h: dataset names, notes, text embedding;
# mvla_run.h: the training run; dist_run.h: data-parallel training), and own_model, the program
# of docs/writing-a-model.md.
noinst_HEADERS += examples/mvla_common.h examples/mvla_run.h examples/dist_run.h
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
check_PROGRAMS += tests/test_video_cli
tests_test_video_cli_SOURCES = tests/test_video_cli.c
check_PROGRAMS += tests/test_train_cli tests/test_train_faults tests/test_invariance
tests_test_train_cli_SOURCES = tests/test_train_cli.c
tests_test_train_faults_SOURCES = tests/test_train_faults.c
tests_test_invariance_SOURCES = tests/test_invariance.c
check_PROGRAMS += tests/test_paper_protocol
tests_test_paper_protocol_SOURCES = tests/test_paper_protocol.c
# the programs on several ranks against one process (mpirun when present)
check_PROGRAMS += tests/test_dist_train
tests_test_dist_train_SOURCES = tests/test_dist_train.c

# What every example program shares: the settings parser (cli.h), the CLIP tokenizers
# (clip_tok.h) and the crash-safe files of a training run (run_store.h), linked into every
# program through LDADD (Makefile.am).
noinst_LIBRARIES += examples/libexamples.a
examples_libexamples_a_SOURCES = examples/cli.c examples/clip_tok.c examples/run_store.c
noinst_HEADERS += examples/cli.h examples/clip_tok.h examples/run_store.h

noinst_PROGRAMS += examples/own_model
examples_own_model_SOURCES = examples/own_model.c
check_PROGRAMS += tests/test_own_model
tests_test_own_model_SOURCES = tests/test_own_model.c
EXTRA_DIST += tests/data/golden_own_model.safetensors
