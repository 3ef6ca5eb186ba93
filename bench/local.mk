# Build fragment for bench/ (included by the top Makefile.am).  `make bench` runs every program
# listed in bench_programs; each prints a table.
bench_programs += bench/bench_matmul
noinst_PROGRAMS += bench/bench_matmul
bench_bench_matmul_SOURCES = bench/bench_matmul.c
# Clock, timing loop and PyTorch-script runner shared by the benchmark programs.
noinst_HEADERS += bench/bench_util.h bench/mvla_step.h
