# Build fragment for training: losses, initialisers, optimizers and schedules, checkpoints, the
# toy transformer example and the optimizer benchmark (included at the end of nn/local.mk).
nobase_aqainclude_HEADERS += nn/loss.h
libaqa_a_SOURCES += nn/loss.c
check_PROGRAMS += tests/test_loss
tests_test_loss_SOURCES = tests/test_loss.c
EXTRA_DIST += tests/data/golden_loss.safetensors
nobase_aqainclude_HEADERS += nn/optim.h nn/sched.h
libaqa_a_SOURCES += nn/optim.c nn/sched.c
check_PROGRAMS += tests/test_optim
tests_test_optim_SOURCES = tests/test_optim.c
EXTRA_DIST += tests/data/golden_optim.safetensors
nobase_aqainclude_HEADERS += nn/init.h
libaqa_a_SOURCES += nn/init.c
check_PROGRAMS += tests/test_init
tests_test_init_SOURCES = tests/test_init.c
nobase_aqainclude_HEADERS += nn/checkpoint.h
libaqa_a_SOURCES += nn/checkpoint.c
check_PROGRAMS += tests/test_checkpoint
tests_test_checkpoint_SOURCES = tests/test_checkpoint.c
bench_programs += bench/bench_optim
noinst_PROGRAMS += bench/bench_optim
bench_bench_optim_SOURCES = bench/bench_optim.c
EXTRA_DIST += scripts/bench_torch_optim.py
noinst_PROGRAMS += examples/train_toy_transformer
examples_train_toy_transformer_SOURCES = examples/train_toy_transformer.c
check_PROGRAMS += tests/test_toy_transformer
tests_test_toy_transformer_SOURCES = tests/test_toy_transformer.c
