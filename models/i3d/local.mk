# Build fragment for models/i3d/ (included by models/local.mk): the I3D network (pytorch-i3d's
# InceptionI3d), its video clip input, its test, the i3d_extract program and the benchmark.
nobase_aqainclude_HEADERS += models/i3d/i3d.h
libaqa_la_SOURCES += models/i3d/i3d.c models/i3d/clips.c
check_PROGRAMS += tests/test_i3d
tests_test_i3d_SOURCES = tests/test_i3d.c
noinst_PROGRAMS += examples/i3d_extract
examples_i3d_extract_SOURCES = examples/i3d_extract.c
noinst_PROGRAMS += bench/bench_i3d
bench_bench_i3d_SOURCES = bench/bench_i3d.c
bench_programs += bench/bench_i3d
