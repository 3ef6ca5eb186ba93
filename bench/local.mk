# Build fragment for bench/ (included by the top Makefile.am).  `make bench` runs every program
# listed in bench_programs (each component's fragment adds its own); each prints a table.
# Clock, timing loop and PyTorch-script runner shared by the benchmark programs.
noinst_HEADERS += bench/bench_util.h
