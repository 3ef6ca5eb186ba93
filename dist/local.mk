# Build fragment for dist/ (process groups and collectives; included by the top Makefile.am).
# Depends on tensor/ only.  The MPI transport is built when configure found MPI (HAVE_MPI), the
# NCCL path with the CUDA backend (NCCL itself is opened with dlopen at run time).
nobase_aqainclude_HEADERS += dist/dist.h
noinst_HEADERS += dist/dist-impl.h
libaqa_la_SOURCES += dist/dist.c dist/dist_ring.c dist/dist_tcp.c
if HAVE_MPI
libaqa_la_SOURCES += dist/dist_mpi.c
endif
if HAVE_CUDA
libaqa_la_SOURCES += dist/dist_nccl.c
endif
check_PROGRAMS += tests/test_dist
tests_test_dist_SOURCES = tests/test_dist.c
noinst_HEADERS += tests/dist_testlib.h
