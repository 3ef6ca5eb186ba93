# Build fragment for data-parallel training (included by nn/local.mk): the fixed-order gradient
# tree over ranks and SyncBatchNorm, on top of dist/.
nobase_aqainclude_HEADERS += nn/data_parallel.h
noinst_HEADERS += nn/batchnorm-impl.h
libaqa_la_SOURCES += nn/data_parallel.c nn/sync_batchnorm.c
check_PROGRAMS += tests/test_data_parallel
tests_test_data_parallel_SOURCES = tests/test_data_parallel.c
bench_programs += bench/bench_dist
noinst_PROGRAMS += bench/bench_dist
bench_bench_dist_SOURCES = bench/bench_dist.c
