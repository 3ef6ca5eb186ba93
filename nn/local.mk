# Build fragment for nn/ (included by the top Makefile.am).
include nn/safetensors.mk
