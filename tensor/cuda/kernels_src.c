/* kernels_src.c: assembles the CUDA C source of each program the backend compiles.
 *
 * A program is named "<family>_<param>" (e.g. "unary_f32", "where_4", "copy_i64"); its source is
 * a generated header (the element type T and flags, the op numbers taken from backend.h's enums
 * so they can never drift), the shared prelude and the family's text (kernels/<family>.cu,
 * embedded by embed.sh).  aqa__cuda_program_names lists every program, which is what
 * tests/test_nvrtc_compile compiles without a GPU. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/cuda/cuda-impl.h"
#include "tensor/cuda/kernels_text.h"

static const char *const program_names[] = {
    "unary_f32", "unary_f64", "unary_i64", "unary_b8",
    "binary_f32", "binary_f64", "binary_i64", "binary_b8",
    "where_1", "where_4", "where_8",
    "axpy_f32", "axpy_f64", "axpy_i64",
    "copy_f32", "copy_f64", "copy_i64", "copy_b8",
    "fill", "random",
    "reduce_f32", "reduce_f64", "reduce_i64", "reduce_b8",
    "softmax_f32", "softmax_f64",
    "norm_f32", "norm_f64", "pool_f32", "pool_f64", "adamw_f32", "adamw_f64",
    "attention_f32", "attention_f64",
    "index_f32", "index_f64", "index_i64", "index_b8",
    "index_check", "matmul_i64",
    "conv_f32", "conv_f64",
    NULL,
};

const char *const *aqa__cuda_program_names(void) { return program_names; }

/* Growing string buffer. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void put(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(sbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (w < 0) {
            b->oom = true;
            return;
        }
        if (b->p && b->n + (size_t)w < b->cap) {
            b->n += (size_t)w;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 4096) + (size_t)w;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
}

/* C type in kernel source for a dtype tag. */
static const char *ctype_of(const char *tag) {
    if (!strcmp(tag, "f32")) return "float";
    if (!strcmp(tag, "f64")) return "double";
    if (!strcmp(tag, "i64")) return "i64"; /* one-word names (prelude typedefs): T(0) must parse */
    if (!strcmp(tag, "b8")) return "u8";
    return NULL;
}

static void put_dtype(sbuf *b, const char *tag) {
    bool f32 = !strcmp(tag, "f32"), f64 = !strcmp(tag, "f64"), i64 = !strcmp(tag, "i64"), b8 = !strcmp(tag, "b8");
    put(b, "#define T %s\n#define IS_FLOAT %d\n#define IS_F32 %d\n#define IS_I64 %d\n#define IS_BOOL %d\n",
        ctype_of(tag), f32 || f64, f32, i64, b8);
    put(b, "#define ACC %s\n", f32 || f64 ? "double" : "i64");
}

static void put_ops(sbuf *b) {
#define OP(name) put(b, "#define " #name " %d\n", (int)AQA_##name)
    OP(UN_NEG); OP(UN_EXP); OP(UN_LOG); OP(UN_SQRT); OP(UN_RSQRT); OP(UN_ABS); OP(UN_TANH);
    OP(UN_SIGMOID); OP(UN_RELU); OP(UN_GELU); OP(UN_GELU_TANH); OP(UN_QUICK_GELU); OP(UN_LOG1P);
    OP(UN_SOFTPLUS); OP(UN_SQUARE); OP(UN_SIGN); OP(UN_LOGICAL_NOT); OP(UN_CLAMP); OP(UN_ADD_SCALAR);
    OP(UN_MUL_SCALAR); OP(UN_POW_SCALAR); OP(UN_RSUB_SCALAR); OP(UN_GELU_GRAD); OP(UN_GELU_TANH_GRAD);
    OP(UN_QUICK_GELU_GRAD);
    OP(BIN_ADD); OP(BIN_SUB); OP(BIN_MUL); OP(BIN_DIV); OP(BIN_POW); OP(BIN_MAX); OP(BIN_MIN);
    OP(BIN_EQ); OP(BIN_NE); OP(BIN_LT); OP(BIN_LE); OP(BIN_GT); OP(BIN_GE); OP(BIN_AND); OP(BIN_OR);
    OP(RED_SUM); OP(RED_MAX); OP(RED_MIN);
#undef OP
}

char *aqa__cuda_program_source(const char *name) {
    const char *us = strchr(name, '_');
    char family[32];
    const char *param = "";
    if (us) {
        size_t l = (size_t)(us - name);
        if (l >= sizeof family) return aqa_fail_null("CUDA: unknown kernel program '%s'", name);
        memcpy(family, name, l);
        family[l] = '\0';
        param = us + 1;
    } else {
        snprintf(family, sizeof family, "%s", name);
    }
    bool known = false;
    for (int i = 0; program_names[i]; i++)
        if (!strcmp(program_names[i], name)) known = true;
    if (!known) return aqa_fail_null("CUDA: unknown kernel program '%s'", name);

    sbuf b = {0};
    put(&b, "// aqa CUDA program %s (assembled by tensor/cuda/kernels_src.c)\n", name);
    put_ops(&b);
    const char *text = NULL;
    if (!strcmp(name, "index_check")) { /* whole names first: they look like family_param */
        text = aqa__cuda_text_index_check;
    } else if (!strcmp(name, "matmul_i64")) {
        text = aqa__cuda_text_matmul_i64;
    } else if (!strcmp(family, "unary") || !strcmp(family, "binary") || !strcmp(family, "axpy") ||
               !strcmp(family, "reduce") || !strcmp(family, "softmax") || !strcmp(family, "index") ||
               !strcmp(family, "conv")) {
        put_dtype(&b, param);
        text = !strcmp(family, "unary")     ? aqa__cuda_text_unary
               : !strcmp(family, "binary")  ? aqa__cuda_text_binary
               : !strcmp(family, "axpy")    ? aqa__cuda_text_axpy
               : !strcmp(family, "reduce")  ? aqa__cuda_text_reduce
               : !strcmp(family, "softmax") ? aqa__cuda_text_softmax
               : !strcmp(family, "conv")    ? aqa__cuda_text_conv
                                            : aqa__cuda_text_index;
    } else if (!strcmp(family, "where")) {
        put(&b, "#define T %s\n", !strcmp(param, "1") ? "u8" : !strcmp(param, "4") ? "u32" : "u64");
        text = aqa__cuda_text_where;
    } else if (!strcmp(family, "norm") || !strcmp(family, "pool") || !strcmp(family, "adamw") ||
               !strcmp(family, "attention")) {
        put_dtype(&b, param); /* nn layers, optimizer (nn/norm_cuda.c, pool_cuda.c, optim_cuda.c, ...) */
        text = !strcmp(family, "norm")    ? aqa__cuda_text_norm
               : !strcmp(family, "pool")  ? aqa__cuda_text_pool
               : !strcmp(family, "adamw") ? aqa__cuda_text_adamw
                                          : aqa__cuda_text_attention;
    } else if (!strcmp(family, "copy")) {
        put(&b, "#define S %s\n", ctype_of(param));
        text = aqa__cuda_text_copy;
    } else if (!strcmp(family, "fill")) {
        text = aqa__cuda_text_fill;
    } else if (!strcmp(family, "random")) {
        text = aqa__cuda_text_random;
    }
    put(&b, "%s%s", aqa__cuda_text_prelude, text ? text : "");
    if (b.oom || !text) {
        free(b.p);
        return aqa_fail_null("CUDA: cannot assemble kernel program '%s'", name);
    }
    return b.p;
}
