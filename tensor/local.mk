# Build fragment for tensor/ (included by the top Makefile.am): tensors and storage, scopes,
# factories, random numbers, the backend interface and the CPU kernels (OpenBLAS + OpenMP), and
# tensors to and from safetensors files.  Nothing here records autograd nodes (ops/ does).
nobase_aqainclude_HEADERS += tensor/tensor.h tensor/tensor_file.h
noinst_HEADERS += tensor/tensor-impl.h tensor/backend.h tensor/cpu-impl.h tensor/iter.h tensor/kernel-shared.h \
	tensor/cpu_elementwise_f32.h tensor/cpu_softmax_row.h tensor/cpu_gemm-impl.h
libaqa_la_SOURCES += tensor/tensor.c tensor/debug.c tensor/iter.c tensor/random.c tensor/kernel_shared.c tensor/tensor_file.c \
	tensor/cpu_backend.c tensor/cpu_copy.c tensor/cpu_elementwise.c tensor/cpu_reduce.c tensor/cpu_matmul.c \
	tensor/cpu_index.c tensor/cpu_isa.c tensor/cpu_random.c tensor/cpu_gemm.c tensor/cpu_gemm_kernels.c
check_PROGRAMS += tests/test_tensor
tests_test_tensor_SOURCES = tests/test_tensor.c
noinst_PROGRAMS += bench/bench_matmul
bench_bench_matmul_SOURCES = bench/bench_matmul.c
bench_programs += bench/bench_matmul
include tensor/cuda/local.mk
