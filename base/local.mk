# Build fragment for base/ (included by the top Makefile.am): status codes and the error message
# of the last failure, the one thing every layer above uses.
nobase_aqainclude_HEADERS += base/error.h
libaqa_la_SOURCES += base/error.c
