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
# The example programs' helper (examples/dist_run.h) and their end-to-end test on 2 ranks.
noinst_HEADERS += examples/dist_run.h
check_PROGRAMS += tests/test_dist_train
tests_test_dist_train_SOURCES = tests/test_dist_train.c
