/* pickle_write.c: protocol-2 pickle writer for annotation files (see pickle_write.h). */
#include "io/pickle_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"

#define MAX_DEPTH 64

enum { C_DICT, C_LIST, C_TUPLE };

struct aqa_pickle_writer {
    uint8_t *buf;    /* the stream so far */
    size_t len, cap; /* bytes used / allocated */
    aqa_status err;  /* first failure (sticky), AQA_OK while fine */
    int depth;       /* open containers */
    int kind[MAX_DEPTH];     /* C_* of each open container */
    size_t items[MAX_DEPTH]; /* values written into each open container */
    size_t top;      /* values written at top level */
    int finished;    /* STOP written */
};

/* Records the first failure; later calls return it. */
static aqa_status wfail(aqa_pickle_writer *w, aqa_status st, const char *what) {
    if (w->err == AQA_OK) {
        w->err = st;
        aqa_fail(st, "pickle writer: %s", what);
    }
    return w->err;
}

static aqa_status put(aqa_pickle_writer *w, const void *p, size_t n) {
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap < w->len + n) cap *= 2;
        uint8_t *nb = realloc(w->buf, cap);
        if (!nb) return wfail(w, AQA_ENOMEM, "out of memory");
        w->buf = nb;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
    return AQA_OK;
}

static aqa_status put1(aqa_pickle_writer *w, uint8_t b) { return put(w, &b, 1); }

static void le32(uint8_t *o, uint32_t v) {
    for (int i = 0; i < 4; i++) o[i] = (uint8_t)(v >> (8 * i));
}

/* Checks the writer can take a value (not finished, no earlier error). */
static aqa_status ready(aqa_pickle_writer *w) {
    if (!w) return aqa_fail(AQA_EINVAL, "pickle writer: NULL writer");
    if (w->err != AQA_OK) return w->err;
    if (w->finished) return wfail(w, AQA_ESTATE, "value written after finish");
    return AQA_OK;
}

/* Counts a completed value in the enclosing container. */
static void count_value(aqa_pickle_writer *w) {
    if (w->depth) w->items[w->depth - 1]++;
    else w->top++;
}

/* Raw emitters (no counting): used inside composite encodings like ndarrays. */
static aqa_status emit_int(aqa_pickle_writer *w, int64_t v) {
    uint8_t b[10];
    if (v >= 0 && v < 256) {
        b[0] = 'K';
        b[1] = (uint8_t)v;
        return put(w, b, 2);
    }
    if (v >= 0 && v < 65536) {
        b[0] = 'M';
        b[1] = (uint8_t)v;
        b[2] = (uint8_t)(v >> 8);
        return put(w, b, 3);
    }
    if (v >= INT32_MIN && v <= INT32_MAX) {
        b[0] = 'J';
        le32(b + 1, (uint32_t)(int32_t)v);
        return put(w, b, 5);
    }
    /* LONG1: little-endian two's complement, the fewest bytes that keep the sign */
    uint64_t u = (uint64_t)v;
    int n = 8;
    while (n > 1) {
        uint8_t top = (uint8_t)(u >> (8 * (n - 1)));
        uint8_t next_sign = (uint8_t)(u >> (8 * (n - 2))) & 0x80;
        if ((top == 0x00 && !next_sign) || (top == 0xff && next_sign)) n--;
        else break;
    }
    b[0] = 0x8a;
    b[1] = (uint8_t)n;
    for (int i = 0; i < n; i++) b[2 + i] = (uint8_t)(u >> (8 * i));
    return put(w, b, (size_t)(2 + n));
}

static int utf8_valid(const unsigned char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (i + k >= n) return 0; /* truncated sequence */
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80) return 0;
            cp = (cp << 6) | (s[i + j] & 0x3f);
        }
        /* overlong forms, surrogates and values beyond U+10FFFF are not UTF-8 */
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
        i += k + 1;
    }
    return 1;
}

static aqa_status emit_unicode(aqa_pickle_writer *w, const char *s, size_t n) {
    uint8_t h[5];
    if (n > UINT32_MAX) return wfail(w, AQA_EINVAL, "string longer than 4 GiB");
    h[0] = 'X';
    le32(h + 1, (uint32_t)n);
    aqa_status st = put(w, h, 5);
    return st ? st : put(w, s, n);
}

static aqa_status emit_global(aqa_pickle_writer *w, const char *module, const char *name) {
    aqa_status st = put1(w, 'c');
    if (!st) st = put(w, module, strlen(module));
    if (!st) st = put1(w, '\n');
    if (!st) st = put(w, name, strlen(name));
    if (!st) st = put1(w, '\n');
    return st;
}

/* Python 3 bytes at protocol 2: _codecs.encode(text, 'latin1') where text has one code point per
 * byte (U+0000..U+00FF), stored as UTF-8. */
static aqa_status emit_bytes(aqa_pickle_writer *w, const uint8_t *p, size_t n) {
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += p[i] < 0x80 ? 1 : 2;
    char *t = malloc(m ? m : 1);
    if (!t) return wfail(w, AQA_ENOMEM, "out of memory");
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < 0x80) {
            t[j++] = (char)p[i];
        } else {
            t[j++] = (char)(0xc0 | (p[i] >> 6));
            t[j++] = (char)(0x80 | (p[i] & 0x3f));
        }
    }
    aqa_status st = emit_global(w, "_codecs", "encode");
    if (!st) st = emit_unicode(w, t, m);
    if (!st) st = emit_unicode(w, "latin1", 6);
    if (!st) st = put1(w, 0x86); /* TUPLE2 */
    if (!st) st = put1(w, 'R');  /* REDUCE */
    free(t);
    return st;
}

aqa_pickle_writer *aqa_pkw_new(void) {
    aqa_pickle_writer *w = calloc(1, sizeof *w);
    if (!w) return aqa_fail_null("pickle writer: out of memory");
    static const uint8_t proto[2] = {0x80, 2};
    if (put(w, proto, 2) != AQA_OK) {
        aqa_pkw_free(w);
        return NULL;
    }
    return w;
}

void aqa_pkw_free(aqa_pickle_writer *w) {
    if (!w) return;
    free(w->buf);
    free(w);
}

aqa_status aqa_pkw_none(aqa_pickle_writer *w) {
    aqa_status st = ready(w);
    if (!st) st = put1(w, 'N');
    if (!st) count_value(w);
    return st;
}

aqa_status aqa_pkw_bool(aqa_pickle_writer *w, int v) {
    aqa_status st = ready(w);
    if (!st) st = put1(w, v ? 0x88 : 0x89); /* NEWTRUE / NEWFALSE */
    if (!st) count_value(w);
    return st;
}

aqa_status aqa_pkw_int(aqa_pickle_writer *w, int64_t v) {
    aqa_status st = ready(w);
    if (!st) st = emit_int(w, v);
    if (!st) count_value(w);
    return st;
}

aqa_status aqa_pkw_float(aqa_pickle_writer *w, double v) {
    aqa_status st = ready(w);
    if (st) return st;
    uint64_t u;
    uint8_t b[9];
    memcpy(&u, &v, 8);
    b[0] = 'G'; /* BINFLOAT: IEEE 754 double, big-endian */
    for (int i = 0; i < 8; i++) b[1 + i] = (uint8_t)(u >> (56 - 8 * i));
    st = put(w, b, 9);
    if (!st) count_value(w);
    return st;
}

aqa_status aqa_pkw_str_n(aqa_pickle_writer *w, const char *s, size_t len) {
    aqa_status st = ready(w);
    if (st) return st;
    if (!s && len) return wfail(w, AQA_EINVAL, "NULL string");
    if (!utf8_valid((const unsigned char *)s, len)) return wfail(w, AQA_EINVAL, "string is not valid UTF-8");
    st = emit_unicode(w, s ? s : "", len);
    if (!st) count_value(w);
    return st;
}

aqa_status aqa_pkw_str(aqa_pickle_writer *w, const char *s) {
    if (w && !s) return wfail(w, AQA_EINVAL, "NULL string");
    return aqa_pkw_str_n(w, s, s ? strlen(s) : 0);
}

static aqa_status begin(aqa_pickle_writer *w, int kind) {
    aqa_status st = ready(w);
    if (st) return st;
    if (w->depth == MAX_DEPTH) return wfail(w, AQA_EINVAL, "containers nested too deeply");
    if (kind == C_DICT) st = put1(w, '}');
    else if (kind == C_LIST) st = put1(w, ']');
    if (!st) st = put1(w, '('); /* MARK */
    if (st) return st;
    w->kind[w->depth] = kind;
    w->items[w->depth] = 0;
    w->depth++;
    return AQA_OK;
}

static aqa_status end(aqa_pickle_writer *w, int kind) {
    static const char *names[] = {"dict", "list", "tuple"};
    aqa_status st = ready(w);
    if (st) return st;
    if (!w->depth || w->kind[w->depth - 1] != kind) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s end without a matching begin", names[kind]);
        return wfail(w, AQA_EINVAL, msg);
    }
    if (kind == C_DICT && w->items[w->depth - 1] % 2)
        return wfail(w, AQA_EINVAL, "dict ended with a key but no value");
    st = put1(w, kind == C_DICT ? 'u' : kind == C_LIST ? 'e' : 't'); /* SETITEMS / APPENDS / TUPLE */
    if (st) return st;
    w->depth--;
    count_value(w);
    return AQA_OK;
}

aqa_status aqa_pkw_dict_begin(aqa_pickle_writer *w) { return begin(w, C_DICT); }
aqa_status aqa_pkw_dict_end(aqa_pickle_writer *w) { return end(w, C_DICT); }
aqa_status aqa_pkw_list_begin(aqa_pickle_writer *w) { return begin(w, C_LIST); }
aqa_status aqa_pkw_list_end(aqa_pickle_writer *w) { return end(w, C_LIST); }
aqa_status aqa_pkw_tuple_begin(aqa_pickle_writer *w) { return begin(w, C_TUPLE); }
aqa_status aqa_pkw_tuple_end(aqa_pickle_writer *w) { return end(w, C_TUPLE); }

/* numpy's ndarray.__reduce__ at protocol 2 for a C-contiguous 1-D array of an 8-byte dtype. */
static aqa_status emit_array(aqa_pickle_writer *w, const char *dtype, const void *data, size_t n) {
    aqa_status st = ready(w);
    if (st) return st;
    if (!data && n) return wfail(w, AQA_EINVAL, "NULL array data");
    if (n > (size_t)INT64_MAX / 8) return wfail(w, AQA_EINVAL, "array too large");
    /* _reconstruct(ndarray, (0,), b'b') */
    st = emit_global(w, "numpy.core.multiarray", "_reconstruct");
    if (!st) st = emit_global(w, "numpy", "ndarray");
    if (!st) st = emit_int(w, 0);
    if (!st) st = put1(w, 0x85); /* TUPLE1 */
    if (!st) st = emit_bytes(w, (const uint8_t *)"b", 1);
    if (!st) st = put1(w, 0x87); /* TUPLE3 */
    if (!st) st = put1(w, 'R');
    /* state (1, (n,), dtype, False, data) */
    if (!st) st = put1(w, '(');
    if (!st) st = emit_int(w, 1);
    if (!st) st = emit_int(w, (int64_t)n);
    if (!st) st = put1(w, 0x85);
    /* numpy.dtype(dtype, False, True) with state (3, '<', None, None, None, -1, -1, 0) */
    if (!st) st = emit_global(w, "numpy", "dtype");
    if (!st) st = emit_unicode(w, dtype, strlen(dtype));
    if (!st) st = put1(w, 0x89);
    if (!st) st = put1(w, 0x88);
    if (!st) st = put1(w, 0x87);
    if (!st) st = put1(w, 'R');
    if (!st) st = put1(w, '(');
    if (!st) st = emit_int(w, 3);
    if (!st) st = emit_unicode(w, "<", 1);
    if (!st) st = put(w, "NNN", 3);
    if (!st) st = emit_int(w, -1);
    if (!st) st = emit_int(w, -1);
    if (!st) st = emit_int(w, 0);
    if (!st) st = put1(w, 't');
    if (!st) st = put1(w, 'b'); /* BUILD the dtype */
    if (!st) st = put1(w, 0x89); /* not Fortran-ordered */
    if (!st) {
        /* the data bytes, little-endian (converted on a big-endian host) */
        uint8_t *le = malloc(n ? 8 * n : 1);
        if (!le) return wfail(w, AQA_ENOMEM, "out of memory");
        const uint8_t *src = data;
        for (size_t i = 0; i < n; i++) {
            uint64_t u;
            memcpy(&u, src + 8 * i, 8);
            for (int k = 0; k < 8; k++) le[8 * i + k] = (uint8_t)(u >> (8 * k));
        }
        st = emit_bytes(w, le, 8 * n);
        free(le);
    }
    if (!st) st = put1(w, 't');
    if (!st) st = put1(w, 'b'); /* BUILD the array */
    if (!st) count_value(w);
    return st;
}

aqa_status aqa_pkw_i64_array(aqa_pickle_writer *w, const int64_t *v, size_t n) {
    return emit_array(w, "i8", v, n);
}

aqa_status aqa_pkw_f64_array(aqa_pickle_writer *w, const double *v, size_t n) {
    return emit_array(w, "f8", v, n);
}

aqa_status aqa_pkw_finish(aqa_pickle_writer *w, const uint8_t **buf, size_t *len) {
    if (!w) return aqa_fail(AQA_EINVAL, "pickle writer: NULL writer");
    if (w->err != AQA_OK) return w->err;
    if (!w->finished) {
        if (w->depth) return wfail(w, AQA_EINVAL, "finish with unclosed containers");
        if (w->top != 1) return wfail(w, AQA_EINVAL, "a pickle holds exactly one top-level value");
        aqa_status st = put1(w, '.'); /* STOP */
        if (st) return st;
        w->finished = 1;
    }
    if (buf) *buf = w->buf;
    if (len) *len = w->len;
    return AQA_OK;
}

aqa_status aqa_pkw_save(aqa_pickle_writer *w, const char *path) {
    const uint8_t *b;
    size_t n;
    aqa_status st = aqa_pkw_finish(w, &b, &n);
    if (st != AQA_OK) {
        char msg[512]; /* copied: the message buffer is about to be rewritten */
        snprintf(msg, sizeof msg, "%s", aqa_last_error());
        if (path) aqa_fail(st, "%s: %s", path, msg);
        return st;
    }
    return aqa_atomic_write_file(path, b, n);
}
