# Build fragment for bench/ (included by the top Makefile.am).  `make bench` runs every program
# listed in bench_programs (each component's fragment adds its own) through bench/run.sh; each
# prints a table, and run.sh ends with the summary table.  bench_util.h: clock, timing loop,
# setup line, PyTorch-script runner and result rows shared by the programs.
noinst_HEADERS += bench/bench_util.h
