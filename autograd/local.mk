# Build fragment for autograd/ (included by the top Makefile.am): the recorded graph, backward,
# grad mode and gradcheck.
nobase_aqainclude_HEADERS += autograd/autograd.h
libaqa_la_SOURCES += autograd/autograd.c autograd/gradcheck.c
check_PROGRAMS += tests/test_autograd
tests_test_autograd_SOURCES = tests/test_autograd.c
