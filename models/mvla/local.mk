# Build fragment for models/mvla/ and models/heads/ (included at the end of models/local.mk):
# the MVLA model, the assessment heads, their tests and the MVLA training-step benchmark.
nobase_aqainclude_HEADERS += models/mvla/mvla.h models/mvla/stages.h models/heads/head.h
libaqa_a_SOURCES += models/mvla/stages.c models/mvla/segmentation.c models/mvla/temporal.c models/mvla/vlkl.c \
	models/mvla/sca.c models/mvla/mvla.c \
	models/heads/head.c models/heads/tsa.c models/heads/core.c models/heads/usdl.c models/heads/mlp.c
check_PROGRAMS += tests/test_mvla tests/test_heads
tests_test_mvla_SOURCES = tests/test_mvla.c
tests_test_heads_SOURCES = tests/test_heads.c
EXTRA_DIST += tests/data/golden_mvla.safetensors
bench_programs += bench/bench_mvla
noinst_PROGRAMS += bench/bench_mvla
bench_bench_mvla_SOURCES = bench/bench_mvla.c
