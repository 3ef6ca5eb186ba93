# Build fragment for models/mvla/ (included by models/local.mk): the MVLA model -- stage
# decomposition, segmentation, temporal transformer, VLKL, SCA -- its test and the MVLA
# training-step benchmark.
nobase_aqainclude_HEADERS += models/mvla/mvla.h models/mvla/stages.h models/mvla/text_tables.h
libaqa_la_SOURCES += models/mvla/stages.c models/mvla/segmentation.c models/mvla/temporal.c models/mvla/vlkl.c \
	models/mvla/sca.c models/mvla/mvla.c models/mvla/text_tables.c
check_PROGRAMS += tests/test_mvla
tests_test_mvla_SOURCES = tests/test_mvla.c
EXTRA_DIST += tests/data/golden_mvla.safetensors
noinst_HEADERS += bench/mvla_step.h
noinst_PROGRAMS += bench/bench_mvla
bench_bench_mvla_SOURCES = bench/bench_mvla.c
bench_programs += bench/bench_mvla
