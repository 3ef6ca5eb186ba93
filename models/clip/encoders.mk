# Build fragment for CLIP's encoders (included at the end of models/clip/local.mk): the model
# (clip.h), its weights files, tests, the clip_embed / clip_zeroshot programs and the benchmark.
libaqa_a_SOURCES += models/clip/clip.c models/clip/vision.c models/clip/text.c models/clip/clip_weights.c
nobase_aqainclude_HEADERS += models/clip/clip.h
noinst_HEADERS += models/clip/clip-impl.h

check_PROGRAMS += tests/test_clip
tests_test_clip_SOURCES = tests/test_clip.c

noinst_PROGRAMS += examples/clip_embed examples/clip_zeroshot
examples_clip_embed_SOURCES = examples/clip_embed.c
examples_clip_zeroshot_SOURCES = examples/clip_zeroshot.c

noinst_PROGRAMS += bench/bench_clip
bench_bench_clip_SOURCES = bench/bench_clip.c
bench_programs += bench/bench_clip
