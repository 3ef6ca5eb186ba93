# Build fragment for tests/ (included by the top Makefile.am).
