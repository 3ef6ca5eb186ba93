# Build fragment for models/heads/ (included by models/local.mk): the assessment heads MVLA plugs
# into, one file each behind aqa_head_ops (head.h).
nobase_aqainclude_HEADERS += models/heads/head.h models/heads/seq.h models/heads/seq_config.h models/heads/groups.h
libaqa_la_SOURCES += models/heads/head.c models/heads/tsa.c models/heads/core.c models/heads/usdl.c \
	models/heads/mlp.c models/heads/seq.c models/heads/groups.c models/heads/tpt.c models/heads/hgcn.c \
	models/heads/gdlt.c models/heads/mslstm.c models/heads/mixer.c
check_PROGRAMS += tests/test_heads tests/test_seq_heads
tests_test_heads_SOURCES = tests/test_heads.c
tests_test_seq_heads_SOURCES = tests/test_seq_heads.c
EXTRA_DIST += tests/data/golden_seq_heads.safetensors
