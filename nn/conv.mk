# Build fragment for the convolution, pooling and batch-norm layers (included from nn/local.mk).
nobase_aqainclude_HEADERS += nn/conv.h nn/pool.h nn/batchnorm.h
noinst_HEADERS += nn/nn_cpu-impl.h
libaqa_a_SOURCES += nn/conv.c nn/conv_cpu.c nn/pool.c nn/batchnorm.c
check_PROGRAMS += tests/test_conv tests/test_pool_bn
tests_test_conv_SOURCES = tests/test_conv.c
tests_test_pool_bn_SOURCES = tests/test_pool_bn.c
noinst_PROGRAMS += bench/bench_conv
bench_bench_conv_SOURCES = bench/bench_conv.c
bench_programs += bench/bench_conv
# The CUDA kernels of the convolutions (nn/conv_cuda.c, tensor/cuda/kernels/conv.cu) and their test.
noinst_HEADERS += nn/conv_cuda-impl.h
if HAVE_CUDA
libaqa_a_SOURCES += nn/conv_cuda.c
check_PROGRAMS += tests/test_cuda_conv
tests_test_cuda_conv_SOURCES = tests/test_cuda_conv.c
endif
