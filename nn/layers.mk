# Build fragment for the transformer-side layers (included by nn/local.mk): Linear, Embedding,
# LayerNorm, Dropout, activations, attention, TransformerEncoder.
nobase_aqainclude_HEADERS += nn/linear.h nn/norm_layer.h nn/dropout.h nn/activation.h nn/attention.h \
	nn/transformer.h
noinst_HEADERS += nn/layers-impl.h
libaqa_a_SOURCES += nn/linear.c nn/norm_layer.c nn/dropout.c nn/activation.c nn/attention.c nn/transformer.c
check_PROGRAMS += tests/test_nn_layers tests/test_attention
tests_test_nn_layers_SOURCES = tests/test_nn_layers.c
tests_test_attention_SOURCES = tests/test_attention.c
noinst_PROGRAMS += bench/bench_attention
bench_bench_attention_SOURCES = bench/bench_attention.c
bench_programs += bench/bench_attention
