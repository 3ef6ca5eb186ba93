# Build fragment for autograd/ (included by the top Makefile.am).
