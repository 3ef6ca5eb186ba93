# Build fragment for bench/ (included by the top Makefile.am).
bench_programs =
