# Build fragment for models/clip/ (included by models/local.mk).
# CLIP's BPE tokenizer: public API in tokenizer.h; text cleaning and generated Unicode tables
# (scripts/gen_unicode_tables.py) are private.
libaqa_a_SOURCES += models/clip/tokenizer.c models/clip/text_clean.c models/clip/unicode_tables.c
nobase_aqainclude_HEADERS += models/clip/tokenizer.h
noinst_HEADERS += models/clip/text_clean.h models/clip/unicode_tables.h

check_PROGRAMS += tests/test_tokenizer
tests_test_tokenizer_SOURCES = tests/test_tokenizer.c

noinst_PROGRAMS += examples/tokenize
examples_tokenize_SOURCES = examples/tokenize.c
include models/clip/encoders.mk
