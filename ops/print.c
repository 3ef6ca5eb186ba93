/* print.c: text form of a tensor, in PyTorch's layout:
 *
 *   tensor([[ 1.0000, -2.5000],
 *           [ 3.0000,  4.0000]], shape=[2, 2], dtype=float32, device=cpu)
 *
 * Values use one format for the whole tensor, chosen as PyTorch does: integers as "1.", fixed
 * four decimals, or scientific notation when the magnitudes span more than 1e3 or exceed 1e8.
 * Tensors with more than 1000 elements show the first and last 3 entries of each dimension. */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "tensor/tensor-impl.h"

typedef struct {
    char *buf;
    size_t len, cap;
} strbuf;

static void sb_printf(strbuf *sb, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(sb->buf ? sb->buf + sb->len : NULL, sb->buf ? sb->cap - sb->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if (sb->buf && sb->len + (size_t)n < sb->cap) {
            sb->len += (size_t)n;
            return;
        }
        size_t cap = sb->cap ? sb->cap * 2 : 256;
        while (cap < sb->len + (size_t)n + 1) cap *= 2;
        char *b = realloc(sb->buf, cap);
        if (!b) return;
        sb->buf = b;
        sb->cap = cap;
    }
}

enum { EDGE = 3, SUMMARY_THRESHOLD = 1000 };

typedef struct {
    const aqa_tensor *t; /* host copy, contiguous */
    const double *v;     /* values as double */
    bool summarize;      /* elide the middle of long dimensions */
    int mode;            /* 0 integer-valued floats, 1 fixed, 2 scientific, 3 int64, 4 bool */
    int width;           /* widest formatted value */
} print_ctx;

static int format_value(const print_ctx *c, double v, char *out, size_t size) {
    switch (c->mode) {
    case 0: return isfinite(v) ? snprintf(out, size, "%.0f.", v) : snprintf(out, size, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    case 1: return isfinite(v) ? snprintf(out, size, "%.4f", v) : snprintf(out, size, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    case 2: return isfinite(v) ? snprintf(out, size, "%.4e", v) : snprintf(out, size, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
    case 3: return snprintf(out, size, "%lld", (long long)v);
    default: return snprintf(out, size, "%s", v != 0 ? "True" : "False");
    }
}

/* Visits the indices shown in dimension d. */
static bool shown(const print_ctx *c, int d, int64_t i) {
    int64_t n = c->t->shape[d];
    return !c->summarize || n <= 2 * EDGE || i < EDGE || i >= n - EDGE;
}

static void choose_format(print_ctx *c, int64_t n) {
    if (c->t->dtype == AQA_I64) { c->mode = 3; return; }
    if (c->t->dtype == AQA_BOOL) { c->mode = 4; return; }
    bool integral = true;
    double max_abs = 0, min_abs = INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double v = c->v[i];
        if (!isfinite(v)) continue;
        if (v != floor(v)) integral = false;
        double a = fabs(v);
        if (a > max_abs) max_abs = a;
        if (a > 0 && a < min_abs) min_abs = a;
    }
    if (integral) c->mode = max_abs >= 1e8 ? 2 : 0;
    else if (max_abs >= 1e8 || (min_abs < INFINITY && (max_abs / min_abs > 1000.0 || min_abs < 1e-4))) c->mode = 2;
    else c->mode = 1;
}

static void print_dim(strbuf *sb, const print_ctx *c, int d, int64_t offset, int indent) {
    const aqa_tensor *t = c->t;
    if (d == t->ndim) {
        char tmp[64];
        format_value(c, c->v[offset], tmp, sizeof tmp);
        sb_printf(sb, "%*s", c->width, tmp);
        return;
    }
    int64_t n = t->shape[d], stride = t->stride[d];
    sb_printf(sb, "[");
    bool first = true;
    for (int64_t i = 0; i < n; i++) {
        if (!shown(c, d, i)) {
            if (i == EDGE) {
                if (d == t->ndim - 1) sb_printf(sb, ", ...");
                else sb_printf(sb, ",\n%*s...", indent + 1, "");
            }
            continue;
        }
        if (!first) {
            if (d == t->ndim - 1) sb_printf(sb, ", ");
            else {
                sb_printf(sb, ",");
                for (int k = 0; k < t->ndim - 1 - d; k++) sb_printf(sb, "\n");
                sb_printf(sb, "%*s", indent + 1, "");
            }
        }
        first = false;
        print_dim(sb, c, d + 1, offset + i * stride, indent + 1);
    }
    sb_printf(sb, "]");
}

char *aqa_to_string(const aqa_tensor *t) {
    strbuf sb = {0};
    if (!t) {
        sb_printf(&sb, "(null tensor)");
        return sb.buf;
    }
    if (!aqa__alive("aqa_print", t)) {
        sb_printf(&sb, "(freed tensor: %s)", aqa_last_error());
        return sb.buf;
    }
    int64_t n = aqa_numel(t);
    double *v = malloc(sizeof(double) * (size_t)(n ? n : 1));
    if (!v || aqa_copy_to_host(t, v, AQA_F64) != AQA_OK) {
        free(v);
        sb_printf(&sb, "(tensor could not be read: %s)", aqa_last_error());
        return sb.buf;
    }
    aqa_tensor host = *t;
    aqa__contiguous_strides(t->ndim, t->shape, host.stride);
    print_ctx c = {.t = &host, .v = v, .summarize = n > SUMMARY_THRESHOLD};
    choose_format(&c, n);
    /* width over all values (cheap enough, and stable when the summary hides some) */
    for (int64_t i = 0; i < n; i++) {
        char tmp[64];
        int w = format_value(&c, v[i], tmp, sizeof tmp);
        if (w > c.width) c.width = w;
    }
    sb_printf(&sb, "tensor(");
    if (n == 0 && t->ndim > 0) sb_printf(&sb, "[]");
    else print_dim(&sb, &c, 0, 0, 7);
    char shape[160];
    aqa_device dev = t->storage->device;
    sb_printf(&sb, ", shape=%s, dtype=%s, device=%s", aqa_shape_str(t, shape, sizeof shape), aqa_dtype_name(t->dtype),
              dev.kind == AQA_CPU ? "cpu" : "cuda");
    if (dev.kind != AQA_CPU) sb_printf(&sb, ":%d", dev.index);
    if (t->grad_fn) sb_printf(&sb, ", grad_fn=<%s>", t->grad_fn->op);
    else if (t->requires_grad) sb_printf(&sb, ", requires_grad=True");
    sb_printf(&sb, ")");
    free(v);
    return sb.buf;
}

void aqa_fprint(FILE *f, const aqa_tensor *t) {
    char *s = aqa_to_string(t);
    if (s) fprintf(f, "%s\n", s);
    free(s);
}

void aqa_print(const aqa_tensor *t) { aqa_fprint(stdout, t); }
