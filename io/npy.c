/* npy.c: .npy reader/writer (format: numpy.lib.format; see npy.h for what is supported). */
#include "io/npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/atomic_file.h"

size_t aqa_npy_dtype_size(aqa_npy_dtype dtype) {
    switch (dtype) {
    case AQA_NPY_F8: return 8;
    case AQA_NPY_I8: return 8;
    case AQA_NPY_F4: return 4;
    case AQA_NPY_I4: return 4;
    }
    return 0;
}

/* ---- header parsing: the header is a Python dict literal such as
 *      {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }                        ---- */

typedef struct {
    const char *s;    /* header text (not NUL-terminated at the end of the dict) */
    size_t len, pos;  /* its length and the parse position */
    const char *path; /* for messages */
} header_parser;

static void skip_ws(header_parser *p) {
    while (p->pos < p->len && isspace((unsigned char)p->s[p->pos])) p->pos++;
}

static int expect(header_parser *p, char c) {
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == c) {
        p->pos++;
        return 1;
    }
    return 0;
}

/* Parses a quoted string into buf; returns 0 on malformed input. */
static int parse_string(header_parser *p, char *buf, size_t size) {
    skip_ws(p);
    if (p->pos >= p->len || (p->s[p->pos] != '\'' && p->s[p->pos] != '"')) return 0;
    char q = p->s[p->pos++];
    size_t n = 0;
    while (p->pos < p->len && p->s[p->pos] != q) {
        if (n + 1 >= size) return 0;
        buf[n++] = p->s[p->pos++];
    }
    if (p->pos >= p->len) return 0;
    p->pos++;
    buf[n] = '\0';
    return 1;
}

static aqa_status header_error(header_parser *p, const char *what) {
    return aqa_fail(AQA_EFORMAT, "%s: malformed .npy header (%s) at offset %zu: \"%.*s\"", p->path,
                    what, p->pos, (int)p->len, p->s);
}

static aqa_status parse_header(header_parser *p, aqa_npy_array *a) {
    int have_descr = 0, have_order = 0, have_shape = 0;
    if (!expect(p, '{')) return header_error(p, "expected '{'");
    for (;;) {
        if (expect(p, '}')) break;
        char key[32];
        if (!parse_string(p, key, sizeof key)) return header_error(p, "expected a quoted key");
        if (!expect(p, ':')) return header_error(p, "expected ':'");
        if (strcmp(key, "descr") == 0) {
            char descr[64];
            skip_ws(p);
            if (!parse_string(p, descr, sizeof descr))
                return aqa_fail(AQA_EUNSUPPORTED,
                                "%s: unsupported .npy dtype (descr is not a simple type string; "
                                "structured arrays are not supported)",
                                p->path);
            if (strcmp(descr, "<f8") == 0) a->dtype = AQA_NPY_F8;
            else if (strcmp(descr, "<f4") == 0) a->dtype = AQA_NPY_F4;
            else if (strcmp(descr, "<i8") == 0) a->dtype = AQA_NPY_I8;
            else if (strcmp(descr, "<i4") == 0) a->dtype = AQA_NPY_I4;
            else
                return aqa_fail(AQA_EUNSUPPORTED,
                                "%s: unsupported .npy dtype '%s' (supported: '<f8', '<f4', '<i8', "
                                "'<i4')",
                                p->path, descr);
            have_descr = 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            skip_ws(p);
            if (p->len - p->pos >= 5 && strncmp(p->s + p->pos, "False", 5) == 0) {
                p->pos += 5;
            } else if (p->len - p->pos >= 4 && strncmp(p->s + p->pos, "True", 4) == 0) {
                return aqa_fail(AQA_EUNSUPPORTED,
                                "%s: .npy array is in Fortran order (fortran_order True); save it "
                                "with np.ascontiguousarray",
                                p->path);
            } else {
                return header_error(p, "fortran_order is neither True nor False");
            }
            have_order = 1;
        } else if (strcmp(key, "shape") == 0) {
            if (!expect(p, '(')) return header_error(p, "shape is not a tuple");
            a->ndim = 0;
            for (;;) {
                skip_ws(p);
                if (expect(p, ')')) break;
                if (p->pos >= p->len || !isdigit((unsigned char)p->s[p->pos]))
                    return header_error(p, "shape entry is not a non-negative integer");
                if (a->ndim == AQA_NPY_MAX_DIMS)
                    return aqa_fail(AQA_EUNSUPPORTED, "%s: .npy array has more than %d dimensions",
                                    p->path, AQA_NPY_MAX_DIMS);
                size_t v = 0;
                while (p->pos < p->len && isdigit((unsigned char)p->s[p->pos])) {
                    size_t d = (size_t)(p->s[p->pos++] - '0');
                    if (v > (SIZE_MAX - d) / 10) return header_error(p, "shape entry overflows");
                    v = v * 10 + d;
                }
                skip_ws(p); /* Python 2 era files may write "3L" */
                if (p->pos < p->len && p->s[p->pos] == 'L') p->pos++;
                a->shape[a->ndim++] = v;
                if (expect(p, ',')) continue;
                if (expect(p, ')')) break;
                return header_error(p, "expected ',' or ')' in shape");
            }
            have_shape = 1;
        } else {
            return header_error(p, "unknown key");
        }
        if (expect(p, ',')) continue;
        if (expect(p, '}')) break;
        return header_error(p, "expected ',' or '}'");
    }
    if (!have_descr) return header_error(p, "no 'descr'");
    if (!have_order) return header_error(p, "no 'fortran_order'");
    if (!have_shape) return header_error(p, "no 'shape'");
    return AQA_OK;
}

/* Converts little-endian bytes to host order in place (a no-op on little-endian hosts). */
static void le_to_host(void *data, size_t count, size_t size) {
    const uint16_t probe = 1;
    if (*(const unsigned char *)&probe == 1) return;
    unsigned char *b = data;
    for (size_t i = 0; i < count; i++, b += size)
        for (size_t j = 0; j < size / 2; j++) {
            unsigned char t = b[j];
            b[j] = b[size - 1 - j];
            b[size - 1 - j] = t;
        }
}

aqa_status aqa_npy_load(const char *path, aqa_npy_array *out) {
    if (!path || !out) return aqa_fail(AQA_EINVAL, "aqa_npy_load: NULL argument");
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return aqa_fail(AQA_EIO, "%s: cannot open: %s", path, strerror(errno));
    aqa_status st = AQA_OK;
    char *header = NULL;
    unsigned char pre[12];
    aqa_npy_array a = {0};
    if (fread(pre, 1, 8, f) != 8 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        st = aqa_fail(AQA_EFORMAT, "%s: not a .npy file (no \\x93NUMPY magic)", path);
        goto done;
    }
    int major = pre[6];
    size_t hlen;
    if (major == 1) {
        if (fread(pre + 8, 1, 2, f) != 2) {
            st = aqa_fail(AQA_EFORMAT, "%s: truncated .npy preamble", path);
            goto done;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    } else if (major == 2 || major == 3) {
        if (fread(pre + 8, 1, 4, f) != 4) {
            st = aqa_fail(AQA_EFORMAT, "%s: truncated .npy preamble", path);
            goto done;
        }
        hlen = (size_t)pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        st = aqa_fail(AQA_EUNSUPPORTED, "%s: .npy format version %d.%d is not supported", path,
                      major, pre[7]);
        goto done;
    }
    if (hlen == 0 || hlen > (1u << 20)) {
        st = aqa_fail(AQA_EFORMAT, "%s: implausible .npy header length %zu", path, hlen);
        goto done;
    }
    header = malloc(hlen);
    if (!header) {
        st = aqa_fail(AQA_ENOMEM, "%s: cannot allocate the .npy header", path);
        goto done;
    }
    if (fread(header, 1, hlen, f) != hlen) {
        st = aqa_fail(AQA_EFORMAT, "%s: truncated .npy header", path);
        goto done;
    }
    header_parser p = {header, hlen, 0, path};
    if ((st = parse_header(&p, &a))) goto done;
    a.count = 1;
    for (int i = 0; i < a.ndim; i++) {
        if (a.shape[i] && a.count > SIZE_MAX / 16 / a.shape[i]) {
            st = aqa_fail(AQA_EFORMAT, "%s: .npy shape is too large", path);
            goto done;
        }
        a.count *= a.shape[i];
    }
    size_t esize = aqa_npy_dtype_size(a.dtype), bytes = a.count * esize;
    a.data = malloc(bytes ? bytes : 1);
    if (!a.data) {
        st = aqa_fail(AQA_ENOMEM, "%s: cannot allocate %zu bytes of .npy data", path, bytes);
        goto done;
    }
    size_t got = fread(a.data, 1, bytes, f);
    if (got != bytes) {
        st = aqa_fail(AQA_EFORMAT, "%s: truncated .npy data: %zu of %zu bytes", path, got, bytes);
        goto done;
    }
    if (fgetc(f) != EOF) {
        st = aqa_fail(AQA_EFORMAT, "%s: trailing bytes after the %zu elements the .npy header declares",
                      path, a.count);
        goto done;
    }
    le_to_host(a.data, a.count, esize);
done:
    free(header);
    fclose(f);
    if (st) {
        free(a.data);
        return st;
    }
    *out = a;
    return AQA_OK;
}

void aqa_npy_free(aqa_npy_array *a) {
    if (!a) return;
    free(a->data);
    a->data = NULL;
}

aqa_status aqa_npy_read_vector(const char *path, double **out, size_t *n) {
    if (!out || !n) return aqa_fail(AQA_EINVAL, "aqa_npy_read_vector: NULL argument");
    aqa_npy_array a;
    aqa_status st = aqa_npy_load(path, &a);
    if (st) return st;
    int is_vector = a.ndim == 1 || (a.ndim == 2 && (a.shape[0] == 1 || a.shape[1] == 1));
    if (!is_vector) {
        aqa_npy_free(&a);
        return aqa_fail(AQA_EFORMAT, "%s: expected a 1-D .npy array (or n x 1), got %d dimensions",
                        path, a.ndim);
    }
    if (a.count == 0) {
        aqa_npy_free(&a);
        return aqa_fail(AQA_EFORMAT, "%s: the .npy array is empty", path);
    }
    double *v = malloc(a.count * sizeof *v);
    if (!v) {
        aqa_npy_free(&a);
        return aqa_fail(AQA_ENOMEM, "%s: cannot allocate %zu values", path, a.count);
    }
    for (size_t i = 0; i < a.count; i++) {
        switch (a.dtype) {
        case AQA_NPY_F8: v[i] = ((const double *)a.data)[i]; break;
        case AQA_NPY_F4: v[i] = ((const float *)a.data)[i]; break;
        case AQA_NPY_I8: v[i] = (double)((const int64_t *)a.data)[i]; break;
        case AQA_NPY_I4: v[i] = ((const int32_t *)a.data)[i]; break;
        }
    }
    *n = a.count;
    *out = v;
    aqa_npy_free(&a);
    return AQA_OK;
}

/* Writes a .npy (version 1.0) of `count` little-endian elements of `size` bytes each, C order,
 * with the header's descr and shape text given; atomically. */
static aqa_status write_npy(const char *path, const char *descr, const char *shape, const void *x, size_t count,
                            size_t size) {
    char dict[160];
    int dl = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    /* magic (6) + version (2) + length (2) + dict + padding + '\n' must be a multiple of 64 */
    size_t total = 10 + (size_t)dl + 1;
    size_t pad = (64 - total % 64) % 64;
    size_t hlen = (size_t)dl + pad + 1;
    aqa_atomic_file *af;
    aqa_status st = aqa_atomic_open(path, &af);
    if (st) return st;
    FILE *f = aqa_atomic_stream(af);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hlen & 0xff),
                             (unsigned char)(hlen >> 8)};
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)dl, f) == (size_t)dl;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    const unsigned char *src = x;
    for (size_t i = 0; ok && i < count; i++) {
        /* the element's bits as an integer, written least significant byte first */
        uint64_t bits;
        uint32_t b32;
        unsigned char b[8];
        if (size == 8) memcpy(&bits, src + i * size, 8);
        else memcpy(&b32, src + i * size, 4), bits = b32;
        for (size_t j = 0; j < size; j++) b[j] = (unsigned char)(bits >> (8 * j));
        ok = fwrite(b, 1, size, f) == size;
    }
    (void)ok; /* a failed write is reported by the commit, with the system's reason */
    return aqa_atomic_commit(af);
}

aqa_status aqa_npy_write_vector(const char *path, const double *x, size_t n) {
    if (!path || (!x && n)) return aqa_fail(AQA_EINVAL, "aqa_npy_write_vector: NULL argument");
    char shape[48];
    snprintf(shape, sizeof shape, "(%zu,)", n);
    return write_npy(path, "<f8", shape, x, n, sizeof *x);
}

aqa_status aqa_npy_write_f32_2d(const char *path, const float *x, size_t rows, size_t cols) {
    if (!path || (!x && rows && cols)) return aqa_fail(AQA_EINVAL, "aqa_npy_write_f32_2d: NULL argument");
    char shape[64];
    snprintf(shape, sizeof shape, "(%zu, %zu)", rows, cols);
    return write_npy(path, "<f4", shape, x, rows * cols, sizeof *x);
}
