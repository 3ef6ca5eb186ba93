# Build fragment for datasets/ (included by the top Makefile.am).
include datasets/image.mk
