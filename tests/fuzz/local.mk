# Build fragment for tests/fuzz/ (included by tests/local.mk): libFuzzer harnesses for every reader
# of outside bytes (tests/fuzz/fuzz.h), and their regression run in `make check`.
#
#   make fuzz                  builds the library and the harnesses with clang, ASan and UBSan in
#                              fuzz-build/, then fuzzes each target for FUZZ_SECONDS (60) from the
#                              seed corpora (tests/fuzz/seeds.sh: made from tests/data) and the
#                              saved crash inputs (tests/fuzz/regress/<target>/).  A crash stops it
#                              with the input in fuzz-build/crashes/: fix the bug, then add the
#                              input to tests/fuzz/regress/<target>/ so that make check replays it.
#   make fuzz FUZZ_SECONDS=15  the short form CI runs (.ci/run).
FUZZ_TARGETS = safetensors checkpoint feature_cache pickle ann_finediving ann_mtl_aqa ann_jigsaws ann_fisv npy \
	png jpeg bpe_vocab bpe_hf tokenizer config json text_set
# (listed, not derived from FUZZ_TARGETS: automake must see the sources of a program)
fuzz_harness_sources = tests/fuzz/fuzz_safetensors.c tests/fuzz/fuzz_checkpoint.c tests/fuzz/fuzz_feature_cache.c \
	tests/fuzz/fuzz_pickle.c tests/fuzz/fuzz_ann_finediving.c tests/fuzz/fuzz_ann_mtl_aqa.c \
	tests/fuzz/fuzz_ann_jigsaws.c tests/fuzz/fuzz_ann_fisv.c tests/fuzz/fuzz_npy.c tests/fuzz/fuzz_png.c \
	tests/fuzz/fuzz_jpeg.c tests/fuzz/fuzz_bpe_vocab.c tests/fuzz/fuzz_bpe_hf.c tests/fuzz/fuzz_tokenizer.c \
	tests/fuzz/fuzz_config.c tests/fuzz/fuzz_json.c tests/fuzz/fuzz_text_set.c
noinst_HEADERS += tests/fuzz/fuzz.h
EXTRA_DIST += tests/fuzz/seeds.sh tests/fuzz/regress

# make check: every target over the seeds and the saved crash inputs, built like the other tests
# (so the sanitizer build of CI replays them under ASan/UBSan too).
check_PROGRAMS += tests/test_fuzz_regress
tests_test_fuzz_regress_SOURCES = tests/test_fuzz_regress.c tests/fuzz/fuzz_util.c $(fuzz_harness_sources)
tests_test_fuzz_regress_CPPFLAGS = $(AM_CPPFLAGS) -DAQA_FUZZ_SRCDIR='"$(abs_top_srcdir)"'

FUZZ_SECONDS = 60
FUZZ_DIR = fuzz-build
FUZZ_FLAGS = -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	-std=gnu11 -fopenmp -w
fuzz_lib_sources = $(filter %.c,$(libaqa_la_SOURCES) $(examples_libexamples_a_SOURCES) tests/fuzz/fuzz_util.c)
fuzz_lib_objects = $(fuzz_lib_sources:%.c=$(FUZZ_DIR)/obj/%.o)
fuzz_programs = $(FUZZ_TARGETS:%=$(FUZZ_DIR)/fuzz_%)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(AM_V_CC)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(DEFS) $(DEFAULT_INCLUDES) $(AM_CPPFLAGS) \
	  -DAQA_FUZZ_SRCDIR='"$(abs_top_srcdir)"' -c $< -o $@

$(FUZZ_DIR)/libfuzzaqa.a: $(fuzz_lib_objects)
	$(AM_V_AR)rm -f $@ && $(AR) cr $@ $(fuzz_lib_objects) && $(RANLIB) $@

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libfuzzaqa.a
	$(AM_V_CCLD)$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -DAQA_LIBFUZZER $(DEFS) $(DEFAULT_INCLUDES) \
	  $(AM_CPPFLAGS) -DAQA_FUZZ_SRCDIR='"$(abs_top_srcdir)"' $< $(FUZZ_DIR)/libfuzzaqa.a $(OPENBLAS_LIBS) \
	  $(AQA_DEP_LIBS) -o $@

fuzz-programs: $(fuzz_programs)

fuzz: $(fuzz_programs) tests/test_fuzz_regress
	@if test -z "$(FUZZ_CC)"; then echo "make fuzz: no clang with libFuzzer (install clang and libclang-rt-NN-dev, then configure)"; exit 1; fi
	@rm -rf $(FUZZ_DIR)/seeds && mkdir -p $(FUZZ_DIR)/crashes && \
	AQA_SRCDIR=$(abs_top_srcdir) $(SHELL) $(srcdir)/tests/fuzz/seeds.sh $(FUZZ_DIR)/seeds && \
	AQA_SRCDIR=$(abs_top_srcdir) ./tests/test_fuzz_regress --write-seeds $(FUZZ_DIR)/seeds && \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/seeds/$$t; \
	  regress=$(srcdir)/tests/fuzz/regress/$$t; test -d $$regress || regress=; \
	  echo "== fuzz $$t ($(FUZZ_SECONDS) s)"; \
	  AQA_SRCDIR=$(abs_top_srcdir) ASAN_OPTIONS=detect_leaks=1 \
	    $(FUZZ_DIR)/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2560 -max_len=65536 \
	    -print_final_stats=0 -close_fd_mask=1 -artifact_prefix=$(FUZZ_DIR)/crashes/$$t- \
	    $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/seeds/$$t $$regress >$(FUZZ_DIR)/$$t.log 2>&1 || \
	    { tail -60 $(FUZZ_DIR)/$$t.log; echo "FAIL fuzz $$t: crash input in $(FUZZ_DIR)/crashes/ (add it to tests/fuzz/regress/$$t/ once fixed)"; exit 1; }; \
	  grep -E '^Done [0-9]+ runs' $(FUZZ_DIR)/$$t.log | sed "s/^/    $$t: /"; \
	done; echo "fuzz: $(words $(FUZZ_TARGETS)) targets, no crash"

clean-local: clean-fuzz
clean-fuzz:
	rm -rf $(FUZZ_DIR)
.PHONY: fuzz fuzz-programs clean-fuzz
