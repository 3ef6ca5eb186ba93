# Build fragment for tensor/cuda/ (the CUDA backend), included at the end of tensor/local.mk.
# Everything is built only when configure found the CUDA toolkit headers (HAVE_CUDA); the driver,
# NVRTC and cuBLAS are opened with dlopen at run time (CUDA_LIBS is just -ldl), so these builds
# run on machines without a GPU.
CUDA_KERNEL_SRCS = tensor/cuda/kernels/prelude.cu tensor/cuda/kernels/unary.cu \
	tensor/cuda/kernels/norm.cu tensor/cuda/kernels/pool.cu tensor/cuda/kernels/adamw.cu \
	tensor/cuda/kernels/attention.cu \
	tensor/cuda/kernels/binary.cu tensor/cuda/kernels/where.cu tensor/cuda/kernels/axpy.cu \
	tensor/cuda/kernels/copy.cu tensor/cuda/kernels/fill.cu tensor/cuda/kernels/random.cu \
	tensor/cuda/kernels/reduce.cu tensor/cuda/kernels/softmax.cu tensor/cuda/kernels/index.cu \
	tensor/cuda/kernels/index_check.cu tensor/cuda/kernels/matmul_i64.cu \
	tensor/cuda/kernels/conv.cu
EXTRA_DIST += tensor/cuda/embed.sh $(CUDA_KERNEL_SRCS) tensor/cuda/README.md tensor/cuda/emu/run.sh \
	tensor/cuda/emu/emu_cuda.c tensor/cuda/emu/emu_shim.h tensor/cuda/emu/emu_wrap.py
if HAVE_CUDA
nobase_aqainclude_HEADERS += tensor/cuda/cuda.h
noinst_HEADERS += tensor/cuda/cuda-impl.h tensor/cuda/kernels_text.h
libaqa_la_SOURCES += tensor/cuda/cuda_driver.c tensor/cuda/cuda_alloc.c tensor/cuda/nvrtc_jit.c \
	tensor/cuda/kernels_src.c tensor/cuda/kernels_text.c tensor/cuda/cuda_elementwise.c \
	tensor/cuda/cuda_reduce.c tensor/cuda/cuda_index.c tensor/cuda/cuda_matmul.c \
	tensor/cuda/cuda_backend.c
check_PROGRAMS += tests/test_nvrtc_compile tests/test_cuda_ops tests/test_cuda_host
tests_test_cuda_host_SOURCES = tests/test_cuda_host.c
tests_test_nvrtc_compile_SOURCES = tests/test_nvrtc_compile.c
tests_test_cuda_ops_SOURCES = tests/test_cuda_ops.c
bench_programs += bench/bench_cuda
noinst_PROGRAMS += bench/bench_cuda
bench_bench_cuda_SOURCES = bench/bench_cuda.c
endif

# The kernel sources are embedded as C strings; regenerated when a .cu file changes.
$(srcdir)/tensor/cuda/kernels_text.c: $(srcdir)/tensor/cuda/embed.sh $(CUDA_KERNEL_SRCS:%=$(srcdir)/%)
	$(AM_V_GEN)$(SHELL) $(srcdir)/tensor/cuda/embed.sh $(srcdir)/tensor/cuda/kernels > $@.tmp && mv $@.tmp $@
