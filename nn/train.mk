# Build fragment for training: losses, initialisers, optimizers and schedules, checkpoints, the
# toy transformer example and the optimizer benchmark (included at the end of nn/local.mk).
nobase_aqainclude_HEADERS += nn/loss.h
libaqa_a_SOURCES += nn/loss.c
check_PROGRAMS += tests/test_loss
tests_test_loss_SOURCES = tests/test_loss.c
EXTRA_DIST += tests/data/golden_loss.safetensors
