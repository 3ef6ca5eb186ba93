# Build fragment for nn/ (included by the top Makefile.am): modules with PyTorch's parameter
# names, layers (each with its CPU kernel and, when built, its CUDA kernel), losses, initialisers,
# optimizers and schedules, checkpoints.
nobase_aqainclude_HEADERS += nn/nn.h nn/module.h nn/container.h nn/linear.h nn/norm_layer.h nn/dropout.h nn/activation.h \
	nn/attention.h nn/transformer.h nn/conv.h nn/pool.h nn/batchnorm.h nn/loss.h nn/optim.h nn/sched.h \
	nn/init.h nn/checkpoint.h nn/rnn.h nn/graph_conv.h
noinst_HEADERS += nn/layers-impl.h nn/nn_cpu-impl.h nn/nn_cuda-impl.h nn/conv_cuda-impl.h
libaqa_la_SOURCES += nn/module.c nn/container.c nn/linear.c nn/norm_layer.c nn/dropout.c nn/activation.c nn/attention.c \
	nn/transformer.c nn/conv.c nn/conv_cpu.c nn/conv_gemm.c nn/conv_winograd.c nn/pool.c nn/batchnorm.c nn/loss.c nn/optim.c nn/sched.c \
	nn/init.c nn/checkpoint.c nn/rnn.c nn/graph_conv.c
check_PROGRAMS += tests/test_module tests/test_nn_layers tests/test_attention tests/test_conv \
	tests/test_pool_bn tests/test_loss tests/test_optim tests/test_init tests/test_checkpoint \
	tests/test_toy_transformer tests/test_rnn tests/test_graph_conv tests/test_transformer_decoder
tests_test_module_SOURCES = tests/test_module.c
tests_test_nn_layers_SOURCES = tests/test_nn_layers.c
tests_test_attention_SOURCES = tests/test_attention.c
tests_test_conv_SOURCES = tests/test_conv.c
tests_test_pool_bn_SOURCES = tests/test_pool_bn.c
tests_test_loss_SOURCES = tests/test_loss.c
tests_test_optim_SOURCES = tests/test_optim.c
tests_test_init_SOURCES = tests/test_init.c
tests_test_checkpoint_SOURCES = tests/test_checkpoint.c
tests_test_toy_transformer_SOURCES = tests/test_toy_transformer.c
tests_test_rnn_SOURCES = tests/test_rnn.c
tests_test_graph_conv_SOURCES = tests/test_graph_conv.c
tests_test_transformer_decoder_SOURCES = tests/test_transformer_decoder.c
EXTRA_DIST += tests/data/golden_loss.safetensors tests/data/golden_loss_ranking.safetensors tests/data/golden_optim.safetensors scripts/bench_torch_optim.py \
	tests/data/golden_seq_layers.safetensors
noinst_PROGRAMS += examples/train_toy_transformer
examples_train_toy_transformer_SOURCES = examples/train_toy_transformer.c
noinst_PROGRAMS += bench/bench_conv bench/bench_attention bench/bench_optim
bench_bench_conv_SOURCES = bench/bench_conv.c
bench_bench_attention_SOURCES = bench/bench_attention.c
bench_bench_optim_SOURCES = bench/bench_optim.c
bench_programs += bench/bench_conv bench/bench_attention bench/bench_optim

# The layers' CUDA kernels (host code here, device code in tensor/cuda/kernels/) and their tests.
if HAVE_CUDA
libaqa_la_SOURCES += nn/conv_cuda.c nn/norm_cuda.c nn/pool_cuda.c nn/optim_cuda.c nn/attention_cuda.c
check_PROGRAMS += tests/test_cuda_conv tests/test_cuda_nn
tests_test_cuda_conv_SOURCES = tests/test_cuda_conv.c
tests_test_cuda_nn_SOURCES = tests/test_cuda_nn.c
endif

# Data-parallel training: the fixed-order gradient tree over ranks and SyncBatchNorm (on dist/).
nobase_aqainclude_HEADERS += nn/data_parallel.h
noinst_HEADERS += nn/batchnorm-impl.h
libaqa_la_SOURCES += nn/data_parallel.c nn/sync_batchnorm.c
check_PROGRAMS += tests/test_data_parallel
tests_test_data_parallel_SOURCES = tests/test_data_parallel.c
noinst_PROGRAMS += bench/bench_dist
bench_bench_dist_SOURCES = bench/bench_dist.c
bench_programs += bench/bench_dist
