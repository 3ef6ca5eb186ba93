# Build fragment for models/ (included by the top Makefile.am): one sub-fragment per model.
nobase_aqainclude_HEADERS += models/models.h
include models/clip/local.mk
include models/i3d/local.mk
include models/mvla/local.mk
include models/heads/local.mk
