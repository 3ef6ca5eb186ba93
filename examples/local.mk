# Build fragment for examples/ (included by the top Makefile.am).
