# Build fragment for tensor/ (included by the top Makefile.am).
