# Build fragment for models/heads/ (included by models/local.mk): the assessment heads MVLA plugs
# into, one file each behind aqa_head_ops (head.h).
nobase_aqainclude_HEADERS += models/heads/head.h
libaqa_la_SOURCES += models/heads/head.c models/heads/tsa.c models/heads/core.c models/heads/usdl.c \
	models/heads/mlp.c
check_PROGRAMS += tests/test_heads
tests_test_heads_SOURCES = tests/test_heads.c
