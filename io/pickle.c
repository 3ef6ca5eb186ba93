/* pickle.c: the pickle virtual machine for the subset described in pickle.h.
 *
 * The reader executes the opcode stream like Python's Unpickler: a value stack, a separate stack
 * of MARK positions, and a memo table.  All values are allocated through one document (a list of
 * nodes), so that values shared through the memo, or even cycles built with APPEND on a memoized
 * list, are freed exactly once and without recursion.  Nothing recurses on input-controlled depth
 * except key hashing/equality of nested tuples, which is bounded (MAX_KEY_DEPTH). */
#include "io/pickle.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KEY_DEPTH 32

/* Supported callables/classes referenced by GLOBAL / STACK_GLOBAL. */
enum {
    G_NP_RECONSTRUCT, /* numpy.core.multiarray._reconstruct */
    G_NP_NDARRAY,     /* numpy.ndarray */
    G_NP_DTYPE,       /* numpy.dtype */
    G_NP_SCALAR,      /* numpy.core.multiarray.scalar */
    G_NP_FROMBUFFER,  /* numpy.core.numeric._frombuffer (protocol 5 arrays) */
    G_CODECS_ENCODE,  /* _codecs.encode (how Python 3 writes bytes at protocol < 3) */
    G_BYTES,          /* builtins.bytes / __builtin__.bytes (empty bytes at protocol < 3) */
    G_BYTEARRAY,      /* builtins.bytearray */
    G_ORDEREDDICT     /* collections.OrderedDict */
};

static const struct {
    const char *module, *name;
    int id;
} known_globals[] = {
    {"numpy.core.multiarray", "_reconstruct", G_NP_RECONSTRUCT},
    {"numpy._core.multiarray", "_reconstruct", G_NP_RECONSTRUCT},
    {"numpy", "ndarray", G_NP_NDARRAY},
    {"numpy", "dtype", G_NP_DTYPE},
    {"numpy.core.multiarray", "scalar", G_NP_SCALAR},
    {"numpy._core.multiarray", "scalar", G_NP_SCALAR},
    {"numpy.core.numeric", "_frombuffer", G_NP_FROMBUFFER},
    {"numpy._core.numeric", "_frombuffer", G_NP_FROMBUFFER},
    {"_codecs", "encode", G_CODECS_ENCODE},
    {"builtins", "bytes", G_BYTES},
    {"__builtin__", "bytes", G_BYTES},
    {"builtins", "bytearray", G_BYTEARRAY},
    {"__builtin__", "bytearray", G_BYTEARRAY},
    {"collections", "OrderedDict", G_ORDEREDDICT},
};

struct aqa_pydoc {
    aqa_pyobj **nodes; /* every value of the document */
    size_t n, cap;
};

/* The state of one load. */
typedef struct {
    const uint8_t *p; /* input */
    size_t len, pos;  /* input length, read position */
    const char *name; /* file name for messages */
    size_t op_pos;    /* byte offset of the opcode being executed */
    uint8_t op;       /* that opcode */
    struct aqa_pydoc *doc;
    aqa_pyobj **stack;
    size_t sp, stack_cap;
    size_t *marks; /* stack heights at each MARK */
    size_t nmarks, marks_cap;
    aqa_pyobj **memo;
    size_t memo_cap;
    size_t memo_count; /* entries stored (MEMOIZE uses it as the next index, like len(memo)) */
    int failed; /* an error has been recorded */
} vm;

/* ---- opcode names for messages ---- */
static const char *op_name(uint8_t op) {
    switch (op) {
    case '(': return "MARK";
    case '.': return "STOP";
    case '0': return "POP";
    case '1': return "POP_MARK";
    case '2': return "DUP";
    case 'F': return "FLOAT";
    case 'I': return "INT";
    case 'J': return "BININT";
    case 'K': return "BININT1";
    case 'L': return "LONG";
    case 'M': return "BININT2";
    case 'N': return "NONE";
    case 'P': return "PERSID";
    case 'Q': return "BINPERSID";
    case 'R': return "REDUCE";
    case 'S': return "STRING";
    case 'T': return "BINSTRING";
    case 'U': return "SHORT_BINSTRING";
    case 'V': return "UNICODE";
    case 'X': return "BINUNICODE";
    case 'a': return "APPEND";
    case 'b': return "BUILD";
    case 'c': return "GLOBAL";
    case 'd': return "DICT";
    case '}': return "EMPTY_DICT";
    case 'e': return "APPENDS";
    case 'g': return "GET";
    case 'h': return "BINGET";
    case 'i': return "INST";
    case 'j': return "LONG_BINGET";
    case 'l': return "LIST";
    case ']': return "EMPTY_LIST";
    case 'o': return "OBJ";
    case 'p': return "PUT";
    case 'q': return "BINPUT";
    case 'r': return "LONG_BINPUT";
    case 's': return "SETITEM";
    case 't': return "TUPLE";
    case ')': return "EMPTY_TUPLE";
    case 'u': return "SETITEMS";
    case 'G': return "BINFLOAT";
    case 'B': return "BINBYTES";
    case 'C': return "SHORT_BINBYTES";
    case 0x80: return "PROTO";
    case 0x81: return "NEWOBJ";
    case 0x82: return "EXT1";
    case 0x83: return "EXT2";
    case 0x84: return "EXT4";
    case 0x85: return "TUPLE1";
    case 0x86: return "TUPLE2";
    case 0x87: return "TUPLE3";
    case 0x88: return "NEWTRUE";
    case 0x89: return "NEWFALSE";
    case 0x8a: return "LONG1";
    case 0x8b: return "LONG4";
    case 0x8c: return "SHORT_BINUNICODE";
    case 0x8d: return "BINUNICODE8";
    case 0x8e: return "BINBYTES8";
    case 0x8f: return "EMPTY_SET";
    case 0x90: return "ADDITEMS";
    case 0x91: return "FROZENSET";
    case 0x92: return "NEWOBJ_EX";
    case 0x93: return "STACK_GLOBAL";
    case 0x94: return "MEMOIZE";
    case 0x95: return "FRAME";
    case 0x96: return "BYTEARRAY8";
    case 0x97: return "NEXT_BUFFER";
    case 0x98: return "READONLY_BUFFER";
    default: return "unknown opcode";
    }
}

/* Records a format error about the current opcode; returns -1 so callers can `return fail(...)`. */
static int fail(vm *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(vm *m, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    if (m->failed) return -1; /* keep the first, most specific message */
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    aqa_fail(AQA_EFORMAT, "%s: pickle opcode %s (0x%02x) at byte offset %zu: %s", m->name,
             op_name(m->op), m->op, m->op_pos, msg);
    m->failed = 1;
    return -1;
}

static int fail_nomem(vm *m) {
    if (!m->failed) aqa_fail(AQA_ENOMEM, "%s: out of memory while reading the pickle", m->name);
    m->failed = 1;
    return -1;
}

/* Grows *arr (elements of `elem` bytes) so that it holds at least `need` elements. */
static int grow(void **arr, size_t *cap, size_t need, size_t elem) {
    size_t nc;
    void *p;
    if (need <= *cap) return 0;
    nc = *cap ? *cap : 8;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem) return -1;
        nc *= 2;
    }
    p = realloc(*arr, nc * elem);
    if (!p) return -1;
    *arr = p;
    *cap = nc;
    return 0;
}

/* ---- document ---- */
static void node_release(aqa_pyobj *o) {
    switch (o->type) {
    case AQA_PY_STR:
    case AQA_PY_BYTES: free(o->u.str.ptr); break;
    case AQA_PY_LIST:
    case AQA_PY_TUPLE: free(o->u.seq.items); break;
    case AQA_PY_DICT:
        free(o->u.dict.keys);
        free(o->u.dict.values);
        free(o->u.dict.index);
        break;
    case AQA_PY_NDARRAY: free(o->u.arr.data); break;
    default: break;
    }
    free(o);
}

static void doc_free(struct aqa_pydoc *d) {
    size_t i;
    if (!d) return;
    for (i = 0; i < d->n; i++) node_release(d->nodes[i]);
    free(d->nodes);
    free(d);
}

void aqa_pyobj_free(aqa_pyobj *root) {
    if (root) doc_free(root->doc);
}

static aqa_pyobj *new_obj(vm *m, aqa_pytype t) {
    aqa_pyobj *o;
    if (grow((void **)&m->doc->nodes, &m->doc->cap, m->doc->n + 1, sizeof *m->doc->nodes)) {
        fail_nomem(m);
        return NULL;
    }
    o = calloc(1, sizeof *o);
    if (!o) {
        fail_nomem(m);
        return NULL;
    }
    o->type = t;
    o->doc = m->doc;
    m->doc->nodes[m->doc->n++] = o;
    return o;
}

/* A STR or BYTES node holding a copy of `len` bytes (NUL-terminated). */
static aqa_pyobj *new_bytes(vm *m, aqa_pytype t, const void *src, size_t len) {
    aqa_pyobj *o = new_obj(m, t);
    if (!o) return NULL;
    o->u.str.ptr = malloc(len + 1);
    if (!o->u.str.ptr) {
        fail_nomem(m);
        return NULL;
    }
    if (len) memcpy(o->u.str.ptr, src, len);
    o->u.str.ptr[len] = 0;
    o->u.str.len = len;
    return o;
}

/* A tuple or list of the n stack items from index `start` (n may be 0 while the stack is still
 * unallocated: the stack is never indexed then, as NULL + 0 is undefined behaviour). */
static aqa_pyobj *new_seq(vm *m, aqa_pytype t, size_t start, size_t n) {
    aqa_pyobj *o = new_obj(m, t);
    if (!o) return NULL;
    if (n) {
        o->u.seq.items = malloc(n * sizeof *o->u.seq.items);
        if (!o->u.seq.items) {
            fail_nomem(m);
            return NULL;
        }
        memcpy(o->u.seq.items, m->stack + start, n * sizeof *o->u.seq.items);
    }
    o->u.seq.len = o->u.seq.cap = n;
    return o;
}

/* ---- key hashing and equality (Python semantics for the hashable subset) ---- */
static uint64_t mix64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* 0 and the hash, or -1 when `k` is unhashable (list, dict, ndarray, too deeply nested). */
static int key_hash(const aqa_pyobj *k, int depth, uint64_t *h) {
    size_t i;
    uint64_t x;
    switch (k->type) {
    case AQA_PY_NONE: *h = 0x9e3779b97f4a7c15ULL; return 0;
    case AQA_PY_BOOL: *h = mix64((uint64_t)k->u.b); return 0;
    case AQA_PY_INT: *h = mix64((uint64_t)k->u.i); return 0;
    case AQA_PY_FLOAT: {
        double f = k->u.f;
        if (f == floor(f) && f >= -9.2e18 && f <= 9.2e18) {
            *h = mix64((uint64_t)(int64_t)f); /* equal ints and floats must hash alike */
        } else {
            uint64_t bits;
            memcpy(&bits, &f, sizeof bits);
            *h = mix64(bits ^ 0x5555);
        }
        return 0;
    }
    case AQA_PY_STR:
    case AQA_PY_BYTES:
        x = k->type == AQA_PY_STR ? 1469598103934665603ULL : 1099511628211ULL;
        for (i = 0; i < k->u.str.len; i++) x = (x ^ (uint8_t)k->u.str.ptr[i]) * 1099511628211ULL;
        *h = mix64(x);
        return 0;
    case AQA_PY_TUPLE:
        if (depth >= MAX_KEY_DEPTH) return -1;
        x = 0x345678ULL + k->u.seq.len;
        for (i = 0; i < k->u.seq.len; i++) {
            uint64_t e;
            if (key_hash(k->u.seq.items[i], depth + 1, &e)) return -1;
            x = mix64(x * 1000003ULL ^ e);
        }
        *h = x;
        return 0;
    default: return -1;
    }
}

static int num_value(const aqa_pyobj *o, double *d, int64_t *i, int *is_int) {
    switch (o->type) {
    case AQA_PY_BOOL: *i = o->u.b; *is_int = 1; return 1;
    case AQA_PY_INT: *i = o->u.i; *is_int = 1; return 1;
    case AQA_PY_FLOAT: *d = o->u.f; *is_int = 0; return 1;
    default: return 0;
    }
}

static int key_equal(const aqa_pyobj *a, const aqa_pyobj *b, int depth) {
    double da = 0, db = 0;
    int64_t ia = 0, ib = 0;
    int ai, bi;
    size_t i;
    if (a == b) return 1;
    if (num_value(a, &da, &ia, &ai) && num_value(b, &db, &ib, &bi)) {
        if (ai && bi) return ia == ib;
        if (ai) return (double)ia == db && db == floor(db) && db >= -9.2e18 && db <= 9.2e18 && (int64_t)db == ia;
        if (bi) return (double)ib == da && da == floor(da) && da >= -9.2e18 && da <= 9.2e18 && (int64_t)da == ib;
        return da == db;
    }
    if (a->type != b->type) return 0;
    switch (a->type) {
    case AQA_PY_NONE: return 1;
    case AQA_PY_STR:
    case AQA_PY_BYTES:
        return a->u.str.len == b->u.str.len && memcmp(a->u.str.ptr, b->u.str.ptr, a->u.str.len) == 0;
    case AQA_PY_TUPLE:
        if (depth >= MAX_KEY_DEPTH || a->u.seq.len != b->u.seq.len) return 0;
        for (i = 0; i < a->u.seq.len; i++)
            if (!key_equal(a->u.seq.items[i], b->u.seq.items[i], depth + 1)) return 0;
        return 1;
    default: return 0;
    }
}

int aqa_pyobj_key_equal(const aqa_pyobj *a, const aqa_pyobj *b) {
    return a && b && key_equal(a, b, 0);
}

/* Index of `key` in dict `d` or -1; *slot receives the index slot where it is or would go. */
static long dict_find(const aqa_pyobj *d, const aqa_pyobj *key, uint64_t h, size_t *slot) {
    size_t mask, s;
    if (!d->u.dict.index_cap) return -1;
    mask = d->u.dict.index_cap - 1;
    for (s = h & mask;; s = (s + 1) & mask) {
        uint32_t e = d->u.dict.index[s];
        if (!e) {
            if (slot) *slot = s;
            return -1;
        }
        if (key_equal(d->u.dict.keys[e - 1], key, 0)) {
            if (slot) *slot = s;
            return (long)(e - 1);
        }
    }
}

static int dict_reindex(vm *m, aqa_pyobj *d, size_t cap) {
    uint32_t *idx = calloc(cap, sizeof *idx);
    size_t i;
    if (!idx) return fail_nomem(m);
    free(d->u.dict.index);
    d->u.dict.index = idx;
    d->u.dict.index_cap = cap;
    for (i = 0; i < d->u.dict.len; i++) {
        uint64_t h;
        size_t s;
        key_hash(d->u.dict.keys[i], 0, &h); /* keys were hashable when inserted */
        for (s = h & (cap - 1); idx[s]; s = (s + 1) & (cap - 1)) {}
        idx[s] = (uint32_t)(i + 1);
    }
    return 0;
}

/* d[key] = value, replacing an equal key's value like Python. */
static int dict_set(vm *m, aqa_pyobj *d, aqa_pyobj *key, aqa_pyobj *value) {
    uint64_t h;
    size_t slot = 0;
    long at;
    if (d->type != AQA_PY_DICT) return fail(m, "target is a %s, not a dict", aqa_pytype_name(d->type));
    if (key_hash(key, 0, &h)) return fail(m, "unhashable dict key of type %s", aqa_pytype_name(key->type));
    if (d->u.dict.len >= UINT32_MAX - 1) return fail(m, "dict too large");
    if ((d->u.dict.len + 1) * 2 > d->u.dict.index_cap) {
        if (dict_reindex(m, d, d->u.dict.index_cap ? d->u.dict.index_cap * 2 : 16)) return -1;
    }
    at = dict_find(d, key, h, &slot);
    if (at >= 0) {
        d->u.dict.values[at] = value;
        return 0;
    }
    if (d->u.dict.len + 1 > d->u.dict.cap) {
        size_t kc = d->u.dict.cap, vc = d->u.dict.cap;
        if (grow((void **)&d->u.dict.keys, &kc, d->u.dict.len + 1, sizeof(aqa_pyobj *)) ||
            grow((void **)&d->u.dict.values, &vc, d->u.dict.len + 1, sizeof(aqa_pyobj *)))
            return fail_nomem(m);
        d->u.dict.cap = kc < vc ? kc : vc;
    }
    d->u.dict.keys[d->u.dict.len] = key;
    d->u.dict.values[d->u.dict.len] = value;
    d->u.dict.index[slot] = (uint32_t)(d->u.dict.len + 1);
    d->u.dict.len++;
    return 0;
}

static int list_append(vm *m, aqa_pyobj *l, aqa_pyobj *v) {
    if (l->type != AQA_PY_LIST) return fail(m, "target is a %s, not a list", aqa_pytype_name(l->type));
    if (grow((void **)&l->u.seq.items, &l->u.seq.cap, l->u.seq.len + 1, sizeof(aqa_pyobj *)))
        return fail_nomem(m);
    l->u.seq.items[l->u.seq.len++] = v;
    return 0;
}

/* ---- public lookups ---- */
const aqa_pyobj *aqa_pydict_get(const aqa_pyobj *d, const aqa_pyobj *key) {
    uint64_t h;
    long at;
    if (!d || !key || d->type != AQA_PY_DICT || key_hash(key, 0, &h)) return NULL;
    at = dict_find(d, key, h, NULL);
    return at >= 0 ? d->u.dict.values[at] : NULL;
}

const aqa_pyobj *aqa_pydict_get_str(const aqa_pyobj *d, const char *key) {
    aqa_pyobj k;
    if (!key) return NULL;
    memset(&k, 0, sizeof k);
    k.type = AQA_PY_STR;
    k.u.str.ptr = (char *)key;
    k.u.str.len = strlen(key);
    return aqa_pydict_get(d, &k);
}

const aqa_pyobj *aqa_pydict_get_int(const aqa_pyobj *d, int64_t key) {
    aqa_pyobj k;
    memset(&k, 0, sizeof k);
    k.type = AQA_PY_INT;
    k.u.i = key;
    return aqa_pydict_get(d, &k);
}

const aqa_pyobj *aqa_pydict_get_str_int(const aqa_pyobj *d, const char *a, int64_t b) {
    aqa_pyobj ka, kb, t, *items[2];
    if (!a) return NULL;
    memset(&ka, 0, sizeof ka);
    memset(&kb, 0, sizeof kb);
    memset(&t, 0, sizeof t);
    ka.type = AQA_PY_STR;
    ka.u.str.ptr = (char *)a;
    ka.u.str.len = strlen(a);
    kb.type = AQA_PY_INT;
    kb.u.i = b;
    items[0] = &ka;
    items[1] = &kb;
    t.type = AQA_PY_TUPLE;
    t.u.seq.items = items;
    t.u.seq.len = 2;
    return aqa_pydict_get(d, &t);
}

const aqa_pyobj *aqa_pydict_get_int_int(const aqa_pyobj *d, int64_t a, int64_t b) {
    aqa_pyobj ka, kb, t, *items[2];
    memset(&ka, 0, sizeof ka);
    memset(&kb, 0, sizeof kb);
    memset(&t, 0, sizeof t);
    ka.type = kb.type = AQA_PY_INT;
    ka.u.i = a;
    kb.u.i = b;
    items[0] = &ka;
    items[1] = &kb;
    t.type = AQA_PY_TUPLE;
    t.u.seq.items = items;
    t.u.seq.len = 2;
    return aqa_pydict_get(d, &t);
}

const char *aqa_pytype_name(aqa_pytype t) {
    switch (t) {
    case AQA_PY_NONE: return "None";
    case AQA_PY_BOOL: return "bool";
    case AQA_PY_INT: return "int";
    case AQA_PY_FLOAT: return "float";
    case AQA_PY_STR: return "str";
    case AQA_PY_BYTES: return "bytes";
    case AQA_PY_LIST: return "list";
    case AQA_PY_TUPLE: return "tuple";
    case AQA_PY_DICT: return "dict";
    case AQA_PY_NDARRAY: return "ndarray";
    case AQA_PY_DTYPE: return "dtype";
    case AQA_PY_GLOBAL: return "global";
    }
    return "?";
}

static const struct {
    const char *name;
    size_t size;
} dtype_info[] = {
    [AQA_NP_BOOL] = {"b1", 1}, [AQA_NP_I1] = {"i1", 1}, [AQA_NP_I2] = {"i2", 2},
    [AQA_NP_I4] = {"i4", 4},   [AQA_NP_I8] = {"i8", 8}, [AQA_NP_U1] = {"u1", 1},
    [AQA_NP_U2] = {"u2", 2},   [AQA_NP_U4] = {"u4", 4}, [AQA_NP_U8] = {"u8", 8},
    [AQA_NP_F4] = {"f4", 4},   [AQA_NP_F8] = {"f8", 8},
};

const char *aqa_npdtype_name(aqa_npdtype t) {
    return (unsigned)t <= AQA_NP_F8 ? dtype_info[t].name : "?";
}

size_t aqa_npdtype_size(aqa_npdtype t) { return (unsigned)t <= AQA_NP_F8 ? dtype_info[t].size : 0; }

/* ---- numeric conversions ---- */
static double elem_f64(aqa_npdtype t, const void *data, int64_t i) {
    switch (t) {
    case AQA_NP_BOOL: return ((const uint8_t *)data)[i] != 0;
    case AQA_NP_I1: return ((const int8_t *)data)[i];
    case AQA_NP_I2: return ((const int16_t *)data)[i];
    case AQA_NP_I4: return ((const int32_t *)data)[i];
    case AQA_NP_I8: return (double)((const int64_t *)data)[i];
    case AQA_NP_U1: return ((const uint8_t *)data)[i];
    case AQA_NP_U2: return ((const uint16_t *)data)[i];
    case AQA_NP_U4: return ((const uint32_t *)data)[i];
    case AQA_NP_U8: return (double)((const uint64_t *)data)[i];
    case AQA_NP_F4: return ((const float *)data)[i];
    case AQA_NP_F8: return ((const double *)data)[i];
    }
    return 0;
}

/* Element i as an int64; 0 on success, -1 when not representable (fraction, NaN, range). */
static int elem_i64(aqa_npdtype t, const void *data, int64_t i, int64_t *out) {
    double d;
    switch (t) {
    case AQA_NP_I8: *out = ((const int64_t *)data)[i]; return 0;
    case AQA_NP_U8: {
        uint64_t u = ((const uint64_t *)data)[i];
        if (u > (uint64_t)INT64_MAX) return -1;
        *out = (int64_t)u;
        return 0;
    }
    case AQA_NP_F4:
    case AQA_NP_F8:
        d = elem_f64(t, data, i);
        if (!(d == floor(d)) || d < -9.2e18 || d > 9.2e18) return -1;
        *out = (int64_t)d;
        return 0;
    default: *out = (int64_t)elem_f64(t, data, i); return 0;
    }
}

aqa_status aqa_pyobj_to_double(const aqa_pyobj *o, const char *what, double *out) {
    if (!o) return aqa_fail(AQA_EINVAL, "%s: missing value", what);
    switch (o->type) {
    case AQA_PY_BOOL: *out = o->u.b; return AQA_OK;
    case AQA_PY_INT: *out = (double)o->u.i; return AQA_OK;
    case AQA_PY_FLOAT: *out = o->u.f; return AQA_OK;
    case AQA_PY_NDARRAY:
        if (o->u.arr.size == 1) {
            *out = elem_f64(o->u.arr.dtype, o->u.arr.data, 0);
            return AQA_OK;
        }
        return aqa_fail(AQA_EINVAL, "%s: expected a number, got an ndarray of %lld elements", what,
                        (long long)o->u.arr.size);
    default:
        return aqa_fail(AQA_EINVAL, "%s: expected a number, got %s", what, aqa_pytype_name(o->type));
    }
}

aqa_status aqa_pyobj_to_int64(const aqa_pyobj *o, const char *what, int64_t *out) {
    if (!o) return aqa_fail(AQA_EINVAL, "%s: missing value", what);
    switch (o->type) {
    case AQA_PY_BOOL: *out = o->u.b; return AQA_OK;
    case AQA_PY_INT: *out = o->u.i; return AQA_OK;
    case AQA_PY_FLOAT:
        if (o->u.f == floor(o->u.f) && fabs(o->u.f) < 9.2e18) {
            *out = (int64_t)o->u.f;
            return AQA_OK;
        }
        return aqa_fail(AQA_EINVAL, "%s: expected an integer, got %g", what, o->u.f);
    case AQA_PY_NDARRAY:
        if (o->u.arr.size == 1 && elem_i64(o->u.arr.dtype, o->u.arr.data, 0, out) == 0) return AQA_OK;
        return aqa_fail(AQA_EINVAL, "%s: expected an integer, got an ndarray (%lld elements, %s)", what,
                        (long long)o->u.arr.size, aqa_npdtype_name(o->u.arr.dtype));
    default:
        return aqa_fail(AQA_EINVAL, "%s: expected an integer, got %s", what, aqa_pytype_name(o->type));
    }
}

/* Converts element i of o (an ndarray, list or tuple) into slot i of out; an error names `what`. */
typedef aqa_status (*elem_convert_fn)(const aqa_pyobj *o, size_t i, const char *what, void *out);

static aqa_status f64_elem(const aqa_pyobj *o, size_t i, const char *what, void *out) {
    double *d = (double *)out + i;
    if (o->type != AQA_PY_NDARRAY) return aqa_pyobj_to_double(o->u.seq.items[i], what, d);
    *d = elem_f64(o->u.arr.dtype, o->u.arr.data, (int64_t)i);
    return AQA_OK;
}

static aqa_status i64_elem(const aqa_pyobj *o, size_t i, const char *what, void *out) {
    int64_t *d = (int64_t *)out + i;
    if (o->type != AQA_PY_NDARRAY) return aqa_pyobj_to_int64(o->u.seq.items[i], what, d);
    if (elem_i64(o->u.arr.dtype, o->u.arr.data, (int64_t)i, d))
        return aqa_fail(AQA_EINVAL, "%s: element %zu is not an integer", what, i);
    return AQA_OK;
}

/* The array conversions: o (an ndarray, list or tuple) as a malloc'ed array of *n elements of
 * elem_size bytes, each converted by convert; NULL with an error naming `what` (and `expected`,
 * e.g. "a numeric", when o is of another type). */
static void *to_array(const aqa_pyobj *o, const char *what, const char *expected, size_t elem_size,
                      elem_convert_fn convert, size_t *n) {
    size_t len;
    if (!o) return aqa_fail_null("%s: missing value", what);
    if (o->type == AQA_PY_NDARRAY) len = (size_t)o->u.arr.size;
    else if (o->type == AQA_PY_LIST || o->type == AQA_PY_TUPLE) len = o->u.seq.len;
    else return aqa_fail_null("%s: expected %s array or list, got %s", what, expected, aqa_pytype_name(o->type));
    void *out = malloc((len ? len : 1) * elem_size);
    if (!out) return aqa_fail_null("%s: out of memory", what);
    for (size_t i = 0; i < len; i++) {
        if (convert(o, i, what, out) != AQA_OK) {
            free(out);
            return NULL;
        }
    }
    *n = len;
    return out;
}

double *aqa_pyobj_to_f64_array(const aqa_pyobj *o, const char *what, size_t *n) {
    return to_array(o, what, "a numeric", sizeof(double), f64_elem, n);
}

int64_t *aqa_pyobj_to_i64_array(const aqa_pyobj *o, const char *what, size_t *n) {
    return to_array(o, what, "an integer", sizeof(int64_t), i64_elem, n);
}

/* ---- reading primitives (all bounded by the input length) ---- */
static int need(vm *m, size_t n) {
    if (n > m->len - m->pos) return fail(m, "truncated: needs %zu more byte(s), %zu left", n, m->len - m->pos);
    return 0;
}

static uint64_t rd_le(const uint8_t *p, int n) {
    uint64_t v = 0;
    int i;
    for (i = n - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Reads a little-endian unsigned argument of n bytes. */
static int arg_uint(vm *m, int n, uint64_t *v) {
    if (need(m, (size_t)n)) return -1;
    *v = rd_le(m->p + m->pos, n);
    m->pos += (size_t)n;
    return 0;
}

/* A text line argument (protocol 0): *s points into the input, *n excludes the newline. */
static int arg_line(vm *m, const char **s, size_t *n) {
    const uint8_t *nl = memchr(m->p + m->pos, '\n', m->len - m->pos);
    if (!nl) return fail(m, "truncated: no newline ends the argument");
    *s = (const char *)(m->p + m->pos);
    *n = (size_t)(nl - (m->p + m->pos));
    m->pos += *n + 1;
    return 0;
}

/* A counted byte argument: pointer into the input. */
static int arg_counted(vm *m, uint64_t n, const uint8_t **s) {
    if (n > m->len - m->pos) return fail(m, "truncated: argument of %llu bytes, %zu left", (unsigned long long)n, m->len - m->pos);
    *s = m->p + m->pos;
    m->pos += (size_t)n;
    return 0;
}

/* ---- stack ---- */
static int push(vm *m, aqa_pyobj *o) {
    if (!o) return -1;
    if (grow((void **)&m->stack, &m->stack_cap, m->sp + 1, sizeof *m->stack)) return fail_nomem(m);
    m->stack[m->sp++] = o;
    return 0;
}

static size_t stack_floor(vm *m) { return m->nmarks ? m->marks[m->nmarks - 1] : 0; }

static aqa_pyobj *pop(vm *m) {
    if (m->sp <= stack_floor(m)) {
        fail(m, "stack underflow");
        return NULL;
    }
    return m->stack[--m->sp];
}

static aqa_pyobj *top(vm *m) {
    if (m->sp <= stack_floor(m)) {
        fail(m, "stack underflow");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* Pops the topmost MARK; *start receives the stack index of the first item above it. */
static int pop_mark(vm *m, size_t *start) {
    if (!m->nmarks) return fail(m, "no MARK on the stack");
    *start = m->marks[--m->nmarks];
    return 0;
}

/* ---- memo ---- */
static int memo_put(vm *m, uint64_t idx) {
    aqa_pyobj *o = top(m);
    size_t old = m->memo_cap;
    if (!o) return -1;
    /* A pickler numbers memo entries 0, 1, 2... so an index beyond the input size is corrupt. */
    if (idx > m->len + 16) return fail(m, "memo index %llu out of range", (unsigned long long)idx);
    if (grow((void **)&m->memo, &m->memo_cap, (size_t)idx + 1, sizeof *m->memo)) return fail_nomem(m);
    if (m->memo_cap > old) memset(m->memo + old, 0, (m->memo_cap - old) * sizeof *m->memo);
    if (!m->memo[idx]) m->memo_count++;
    m->memo[idx] = o;
    return 0;
}

static int memo_get(vm *m, uint64_t idx) {
    if (idx >= m->memo_cap || !m->memo[idx]) return fail(m, "memo index %llu was never stored", (unsigned long long)idx);
    return push(m, m->memo[idx]);
}

/* ---- value constructors ---- */
static int push_int(vm *m, int64_t v) {
    aqa_pyobj *o = new_obj(m, AQA_PY_INT);
    if (!o) return -1;
    o->u.i = v;
    return push(m, o);
}

static int push_bool(vm *m, int v) {
    aqa_pyobj *o = new_obj(m, AQA_PY_BOOL);
    if (!o) return -1;
    o->u.b = v != 0;
    return push(m, o);
}

static int push_float(vm *m, double v) {
    aqa_pyobj *o = new_obj(m, AQA_PY_FLOAT);
    if (!o) return -1;
    o->u.f = v;
    return push(m, o);
}

/* A counted string or bytes opcode (m->op): its length argument (1 byte for SHORT_BINSTRING,
 * SHORT_BINUNICODE and SHORT_BINBYTES, 8 for BINUNICODE8, BINBYTES8 and BYTEARRAY8, else 4), that
 * many bytes, pushed as an object of type t. */
static int push_counted(vm *m, aqa_pytype t) {
    int len_size = 4;
    if (m->op == 'U' || m->op == 0x8c || m->op == 'C') len_size = 1;
    else if (m->op == 0x8d || m->op == 0x8e || m->op == 0x96) len_size = 8;
    uint64_t v = 0;
    const uint8_t *s = NULL;
    return arg_uint(m, len_size, &v) || arg_counted(m, v, &s) || push(m, new_bytes(m, t, s, (size_t)v)) ? -1 : 0;
}

/* Two's-complement little-endian integer of n bytes (LONG1/LONG4), limited to 64 bits. */
static int push_long_bytes(vm *m, const uint8_t *s, size_t n) {
    uint64_t v = 0;
    size_t i;
    int neg = n && (s[n - 1] & 0x80);
    /* Strip redundant sign-extension bytes, then require the value to fit in int64. */
    while (n > 1 && s[n - 1] == (neg ? 0xff : 0x00) && ((s[n - 2] & 0x80) != 0) == neg) n--;
    if (n > 8) return fail(m, "integer wider than 64 bits is not supported");
    for (i = 0; i < n; i++) v |= (uint64_t)s[i] << (8 * i);
    if (neg && n < 8) v |= ~0ULL << (8 * n);
    return push_int(m, (int64_t)v);
}

/* Decimal integer text of protocol 0 (INT, LONG), e.g. "123", "-5", "01" (True), "123L". */
static int parse_decimal(vm *m, const char *s, size_t n, int64_t *v) {
    char buf[64];
    char *end;
    long long x;
    if (n && s[n - 1] == 'L') n--;
    if (n == 0 || n >= sizeof buf) return fail(m, "bad integer text of %zu chars", n);
    memcpy(buf, s, n);
    buf[n] = 0;
    errno = 0;
    x = strtoll(buf, &end, 10);
    if (*end) return fail(m, "bad integer text '%s'", buf);
    if (errno == ERANGE) return fail(m, "integer '%s' wider than 64 bits is not supported", buf);
    *v = x;
    return 0;
}

/* Appends code point c as UTF-8. */
static size_t put_utf8(char *o, uint32_t c) {
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xc0 | c >> 6); o[1] = (char)(0x80 | (c & 0x3f)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xe0 | c >> 12); o[1] = (char)(0x80 | ((c >> 6) & 0x3f)); o[2] = (char)(0x80 | (c & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | c >> 18); o[1] = (char)(0x80 | ((c >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3f)); o[3] = (char)(0x80 | (c & 0x3f));
    return 4;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* UNICODE (protocol 0): raw-unicode-escape text -> UTF-8 STR. */
static int push_raw_unicode(vm *m, const char *s, size_t n) {
    char *buf = malloc(n * 4 + 1); /* every input byte gives at most 4 output bytes */
    size_t i = 0, o = 0;
    aqa_pyobj *r;
    if (!buf) return fail_nomem(m);
    while (i < n) {
        if (s[i] == '\\' && i + 1 < n && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
            int digits = s[i + 1] == 'u' ? 4 : 8, k;
            uint32_t c = 0;
            if (i + 2 + (size_t)digits > n) { free(buf); return fail(m, "truncated \\u escape"); }
            for (k = 0; k < digits; k++) {
                int h = hexval((uint8_t)s[i + 2 + k]);
                if (h < 0) { free(buf); return fail(m, "bad \\u escape"); }
                c = c << 4 | (uint32_t)h;
            }
            if (c > 0x10ffff) { free(buf); return fail(m, "code point out of range"); }
            o += put_utf8(buf + o, c);
            i += 2 + (size_t)digits;
        } else {
            o += put_utf8(buf + o, (uint8_t)s[i]);
            i++;
        }
    }
    r = new_bytes(m, AQA_PY_STR, buf, o);
    free(buf);
    return push(m, r);
}

/* STRING (protocol 0): a Python 2 repr of a byte string, quoted with ' or ". */
static int push_repr_string(vm *m, const char *s, size_t n) {
    char *buf;
    size_t i, o = 0;
    aqa_pyobj *r;
    if (n < 2 || (s[0] != '\'' && s[0] != '"') || s[n - 1] != s[0]) return fail(m, "string argument is not quoted");
    buf = malloc(n);
    if (!buf) return fail_nomem(m);
    for (i = 1; i + 1 < n; i++) {
        char c = s[i];
        if (c != '\\') { buf[o++] = c; continue; }
        if (++i + 1 > n - 1) { free(buf); return fail(m, "dangling backslash in string"); }
        c = s[i];
        switch (c) {
        case 'n': buf[o++] = '\n'; break;
        case 't': buf[o++] = '\t'; break;
        case 'r': buf[o++] = '\r'; break;
        case 'a': buf[o++] = '\a'; break;
        case 'b': buf[o++] = '\b'; break;
        case 'f': buf[o++] = '\f'; break;
        case 'v': buf[o++] = '\v'; break;
        case '\\': case '\'': case '"': buf[o++] = c; break;
        case 'x': {
            int h1, h2;
            if (i + 2 > n - 2) { free(buf); return fail(m, "truncated \\x escape"); }
            h1 = hexval((uint8_t)s[i + 1]);
            h2 = hexval((uint8_t)s[i + 2]);
            if (h1 < 0 || h2 < 0) { free(buf); return fail(m, "bad \\x escape"); }
            buf[o++] = (char)(h1 * 16 + h2);
            i += 2;
            break;
        }
        default:
            if (c >= '0' && c <= '7') {
                int v = c - '0', k;
                for (k = 0; k < 2 && i + 1 < n - 1 && s[i + 1] >= '0' && s[i + 1] <= '7'; k++) v = v * 8 + (s[++i] - '0');
                buf[o++] = (char)v;
            } else {
                buf[o++] = '\\'; /* unknown escapes are kept literally, as Python does */
                buf[o++] = c;
            }
        }
    }
    r = new_bytes(m, AQA_PY_STR, buf, o);
    free(buf);
    return push(m, r);
}

/* ---- numpy ---- */
static int parse_dtype_spec(const char *s, size_t n, aqa_npdtype *t) {
    static const struct { const char *spec; aqa_npdtype t; } specs[] = {
        {"b1", AQA_NP_BOOL}, {"?", AQA_NP_BOOL}, {"i1", AQA_NP_I1}, {"i2", AQA_NP_I2}, {"i4", AQA_NP_I4},
        {"i8", AQA_NP_I8}, {"u1", AQA_NP_U1}, {"u2", AQA_NP_U2}, {"u4", AQA_NP_U4}, {"u8", AQA_NP_U8},
        {"f4", AQA_NP_F4}, {"f8", AQA_NP_F8},
    };
    size_t k;
    if (n && (s[0] == '<' || s[0] == '|' || s[0] == '=')) { s++; n--; } /* '>' is handled by BUILD */
    for (k = 0; k < sizeof specs / sizeof specs[0]; k++)
        if (strlen(specs[k].spec) == n && memcmp(specs[k].spec, s, n) == 0) {
            *t = specs[k].t;
            return 0;
        }
    return -1;
}

static void byteswap(void *data, size_t count, size_t size) {
    uint8_t *p = data;
    size_t i, k;
    if (size < 2) return;
    for (i = 0; i < count; i++, p += size)
        for (k = 0; k < size / 2; k++) {
            uint8_t t = p[k];
            p[k] = p[size - 1 - k];
            p[size - 1 - k] = t;
        }
}

/* Raw bytes of an argument: BYTES, or a Python 2 str (STR holding raw bytes). */
static int raw_bytes(const aqa_pyobj *o, const uint8_t **p, size_t *n) {
    if (o->type != AQA_PY_BYTES && o->type != AQA_PY_STR) return -1;
    *p = (const uint8_t *)o->u.str.ptr;
    *n = o->u.str.len;
    return 0;
}

/* Fills ndarray `a` from raw bytes in the given dtype, shape tuple and order. */
static int fill_array(vm *m, aqa_pyobj *a, const aqa_pyobj *dt, const aqa_pyobj *shape, int fortran,
                      const aqa_pyobj *raw) {
    const uint8_t *src;
    size_t nbytes, esz, k;
    int64_t size = 1, dims[AQA_NDARRAY_MAXDIM];
    int ndim;
    void *data;
    if (dt->type != AQA_PY_DTYPE) return fail(m, "ndarray state: dtype is a %s", aqa_pytype_name(dt->type));
    if (shape->type != AQA_PY_TUPLE && shape->type != AQA_PY_LIST)
        return fail(m, "ndarray state: shape is a %s", aqa_pytype_name(shape->type));
    if (shape->u.seq.len > AQA_NDARRAY_MAXDIM) return fail(m, "ndarray of %zu dimensions", shape->u.seq.len);
    ndim = (int)shape->u.seq.len;
    for (k = 0; k < (size_t)ndim; k++) {
        const aqa_pyobj *d = shape->u.seq.items[k];
        if (d->type != AQA_PY_INT || d->u.i < 0) return fail(m, "ndarray state: bad shape entry %zu", k);
        dims[k] = d->u.i;
        if (dims[k] && size > INT64_MAX / 16 / dims[k]) return fail(m, "ndarray state: shape too large");
        size *= dims[k];
    }
    if (raw->type == AQA_PY_LIST) return fail(m, "ndarray of Python objects (dtype 'O') is not supported");
    if (raw_bytes(raw, &src, &nbytes)) return fail(m, "ndarray state: data is a %s", aqa_pytype_name(raw->type));
    esz = aqa_npdtype_size(dt->u.dt.dtype);
    if (nbytes != (size_t)size * esz)
        return fail(m, "ndarray data has %zu bytes, shape and dtype %s need %lld", nbytes,
                    aqa_npdtype_name(dt->u.dt.dtype), (long long)size * (long long)esz);
    data = malloc(nbytes ? nbytes : 1);
    if (!data) return fail_nomem(m);
    if (fortran && ndim > 1 && size > 0) {
        /* Transpose to C order: walk C-order indices, read the Fortran-order offset. */
        int64_t idx[AQA_NDARRAY_MAXDIM] = {0}, e;
        for (e = 0; e < size; e++) {
            int64_t off = 0, stride = 1;
            int d;
            for (d = 0; d < ndim; d++) {
                off += idx[d] * stride;
                stride *= dims[d];
            }
            memcpy((uint8_t *)data + (size_t)e * esz, src + (size_t)off * esz, esz);
            for (d = ndim - 1; d >= 0; d--) {
                if (++idx[d] < dims[d]) break;
                idx[d] = 0;
            }
        }
    } else if (nbytes) {
        memcpy(data, src, nbytes);
    }
    if (dt->u.dt.big_endian) byteswap(data, (size_t)size, esz);
    free(a->u.arr.data);
    a->type = AQA_PY_NDARRAY;
    a->u.arr.data = data;
    a->u.arr.dtype = dt->u.dt.dtype;
    a->u.arr.ndim = ndim;
    memset(a->u.arr.shape, 0, sizeof a->u.arr.shape);
    for (k = 0; k < (size_t)ndim; k++) a->u.arr.shape[k] = dims[k];
    a->u.arr.size = size;
    return 0;
}

/* BUILD on an ndarray: state (version, shape, dtype, is_fortran, data) or without the version. */
static int build_ndarray(vm *m, aqa_pyobj *a, const aqa_pyobj *st) {
    size_t o;
    const aqa_pyobj *f;
    if (st->type != AQA_PY_TUPLE || (st->u.seq.len != 5 && st->u.seq.len != 4))
        return fail(m, "ndarray state is not a tuple of 4 or 5 items");
    o = st->u.seq.len == 5 ? 1 : 0;
    f = st->u.seq.items[o + 2];
    if (f->type != AQA_PY_BOOL && f->type != AQA_PY_INT) return fail(m, "ndarray state: fortran flag is a %s", aqa_pytype_name(f->type));
    return fill_array(m, a, st->u.seq.items[o + 1], st->u.seq.items[o], f->type == AQA_PY_BOOL ? f->u.b : f->u.i != 0,
                      st->u.seq.items[o + 3]);
}

/* BUILD on a dtype: state (version, byteorder, subdescr, names, fields, elsize, alignment, flags[, metadata]). */
static int build_dtype(vm *m, aqa_pyobj *d, const aqa_pyobj *st) {
    const aqa_pyobj *bo;
    if (st->type != AQA_PY_TUPLE || st->u.seq.len < 2) return fail(m, "dtype state is not a tuple");
    bo = st->u.seq.items[1];
    if (bo->type != AQA_PY_STR || bo->u.str.len != 1) return fail(m, "dtype state: bad byte order");
    if (st->u.seq.len > 3 && st->u.seq.items[3]->type != AQA_PY_NONE)
        return fail(m, "structured numpy dtypes (with field names) are not supported");
    if (st->u.seq.len > 2 && st->u.seq.items[2]->type != AQA_PY_NONE)
        return fail(m, "numpy sub-array dtypes are not supported");
    d->u.dt.big_endian = bo->u.str.ptr[0] == '>';
    return 0;
}

/* Decodes UTF-8 text whose code points are all < 256 into bytes ('latin1' encoding). */
static int latin1_encode(vm *m, const aqa_pyobj *s) {
    const uint8_t *p = (const uint8_t *)s->u.str.ptr;
    size_t n = s->u.str.len, i = 0, o = 0;
    uint8_t *buf = malloc(n + 1);
    aqa_pyobj *r;
    if (!buf) return fail_nomem(m);
    while (i < n) {
        if (p[i] < 0x80) {
            buf[o++] = p[i++];
        } else if ((p[i] & 0xe0) == 0xc0 && i + 1 < n && (p[i + 1] & 0xc0) == 0x80) {
            uint32_t c = (uint32_t)(p[i] & 0x1f) << 6 | (p[i + 1] & 0x3f);
            if (c > 0xff || c < 0x80) { free(buf); return fail(m, "_codecs.encode: text is not latin-1"); }
            buf[o++] = (uint8_t)c;
            i += 2;
        } else {
            free(buf);
            return fail(m, "_codecs.encode: text is not latin-1");
        }
    }
    r = new_bytes(m, AQA_PY_BYTES, buf, o);
    free(buf);
    return push(m, r);
}

/* REDUCE: callable(*args) for the supported callables. */
static int do_reduce(vm *m, aqa_pyobj *fn, aqa_pyobj *args) {
    size_t n;
    aqa_pyobj **a, *r;
    if (fn->type != AQA_PY_GLOBAL) return fail(m, "callable is a %s, not a supported global", aqa_pytype_name(fn->type));
    if (args->type != AQA_PY_TUPLE) return fail(m, "arguments are a %s, not a tuple", aqa_pytype_name(args->type));
    n = args->u.seq.len;
    a = args->u.seq.items;
    switch (fn->u.global) {
    case G_NP_RECONSTRUCT:
        if (n != 3 || a[0]->type != AQA_PY_GLOBAL || a[0]->u.global != G_NP_NDARRAY)
            return fail(m, "_reconstruct: expected (numpy.ndarray, shape, typecode)");
        r = new_obj(m, AQA_PY_NDARRAY); /* an empty uint8 array until BUILD gives it its state */
        if (!r) return -1;
        r->u.arr.dtype = AQA_NP_U1;
        r->u.arr.ndim = 1;
        r->u.arr.data = malloc(1);
        if (!r->u.arr.data) return fail_nomem(m);
        return push(m, r);
    case G_NP_DTYPE: {
        aqa_npdtype t;
        if (n < 1 || a[0]->type != AQA_PY_STR) return fail(m, "numpy.dtype: expected a type string");
        if (parse_dtype_spec(a[0]->u.str.ptr, a[0]->u.str.len, &t))
            return fail(m, "numpy dtype '%.32s' is not supported (numeric dtypes only)", a[0]->u.str.ptr);
        r = new_obj(m, AQA_PY_DTYPE);
        if (!r) return -1;
        r->u.dt.dtype = t;
        return push(m, r);
    }
    case G_NP_SCALAR: {
        const uint8_t *p;
        size_t len;
        uint8_t tmp[8];
        aqa_npdtype t;
        if (n != 2 || a[0]->type != AQA_PY_DTYPE || raw_bytes(a[1], &p, &len))
            return fail(m, "numpy scalar: expected (dtype, bytes)");
        t = a[0]->u.dt.dtype;
        if (len != aqa_npdtype_size(t)) return fail(m, "numpy scalar: %zu bytes for dtype %s", len, aqa_npdtype_name(t));
        memcpy(tmp, p, len);
        if (a[0]->u.dt.big_endian) byteswap(tmp, 1, len);
        if (t == AQA_NP_BOOL) return push_bool(m, tmp[0]);
        if (t == AQA_NP_F4 || t == AQA_NP_F8) return push_float(m, elem_f64(t, tmp, 0));
        {
            int64_t v;
            if (elem_i64(t, tmp, 0, &v)) return fail(m, "numpy scalar: uint64 value beyond int64");
            return push_int(m, v);
        }
    }
    case G_NP_FROMBUFFER: {
        /* _frombuffer(buffer, dtype, shape, order) */
        const aqa_pyobj *ord;
        if (n != 4) return fail(m, "_frombuffer: expected (buffer, dtype, shape, order)");
        ord = a[3];
        if (ord->type != AQA_PY_STR || ord->u.str.len != 1) return fail(m, "_frombuffer: bad order");
        r = new_obj(m, AQA_PY_NDARRAY);
        if (!r) return -1;
        if (fill_array(m, r, a[1], a[2], ord->u.str.ptr[0] == 'F', a[0])) return -1;
        return push(m, r);
    }
    case G_CODECS_ENCODE:
        if (n != 2 || a[0]->type != AQA_PY_STR || a[1]->type != AQA_PY_STR ||
            (strcmp(a[1]->u.str.ptr, "latin1") != 0 && strcmp(a[1]->u.str.ptr, "latin-1") != 0))
            return fail(m, "_codecs.encode: only (str, 'latin1') is supported");
        return latin1_encode(m, a[0]);
    case G_BYTES:
    case G_BYTEARRAY:
        if (n == 0) return push(m, new_bytes(m, AQA_PY_BYTES, "", 0));
        if (n == 1 && a[0]->type == AQA_PY_BYTES) return push(m, new_bytes(m, AQA_PY_BYTES, a[0]->u.str.ptr, a[0]->u.str.len));
        return fail(m, "bytes(): only bytes() and bytes(b'...') are supported");
    case G_ORDEREDDICT: {
        size_t k;
        r = new_obj(m, AQA_PY_DICT);
        if (!r) return -1;
        if (n == 0) return push(m, r);
        /* Older Pythons pickled OrderedDict((k, v) pairs). */
        if (n != 1 || (a[0]->type != AQA_PY_LIST && a[0]->type != AQA_PY_TUPLE))
            return fail(m, "OrderedDict: expected () or (list of pairs,)");
        for (k = 0; k < a[0]->u.seq.len; k++) {
            aqa_pyobj *pair = a[0]->u.seq.items[k];
            if ((pair->type != AQA_PY_LIST && pair->type != AQA_PY_TUPLE) || pair->u.seq.len != 2)
                return fail(m, "OrderedDict: item %zu is not a pair", k);
            if (dict_set(m, r, pair->u.seq.items[0], pair->u.seq.items[1])) return -1;
        }
        return push(m, r);
    }
    default: return fail(m, "this global cannot be called");
    }
}

static int push_global(vm *m, const char *mod, size_t nmod, const char *name, size_t nname) {
    size_t k;
    aqa_pyobj *g;
    for (k = 0; k < sizeof known_globals / sizeof known_globals[0]; k++) {
        if (strlen(known_globals[k].module) == nmod && memcmp(known_globals[k].module, mod, nmod) == 0 &&
            strlen(known_globals[k].name) == nname && memcmp(known_globals[k].name, name, nname) == 0) {
            g = new_obj(m, AQA_PY_GLOBAL);
            if (!g) return -1;
            g->u.global = known_globals[k].id;
            return push(m, g);
        }
    }
    return fail(m, "unsupported global '%.*s.%.*s' (only numpy arrays/scalars and builtins are read)",
                (int)(nmod > 100 ? 100 : nmod), mod, (int)(nname > 100 ? 100 : nname), name);
}

/* ---- the interpreter loop ---- */
static aqa_pyobj *run(vm *m) {
    for (;;) {
        uint64_t v = 0;
        const uint8_t *s = NULL;
        const char *line = NULL;
        size_t n = 0, start = 0;
        aqa_pyobj *a, *b, *c;
        if (m->pos >= m->len) {
            m->op_pos = m->pos;
            m->op = 0;
            fail(m, "truncated: the pickle ends without STOP");
            return NULL;
        }
        m->op_pos = m->pos;
        m->op = m->p[m->pos++];
        switch (m->op) {
        case 0x80: /* PROTO */
            if (arg_uint(m, 1, &v)) return NULL;
            if (v > 5) { fail(m, "unsupported pickle protocol %llu", (unsigned long long)v); return NULL; }
            break;
        case 0x95: /* FRAME: the frame's bytes simply follow */
            if (arg_uint(m, 8, &v)) return NULL;
            if (v > m->len - m->pos) { fail(m, "truncated: frame of %llu bytes, %zu left", (unsigned long long)v, m->len - m->pos); return NULL; }
            break;
        case '.': /* STOP */
            return pop(m);
        case '(': /* MARK */
            if (grow((void **)&m->marks, &m->marks_cap, m->nmarks + 1, sizeof *m->marks)) { fail_nomem(m); return NULL; }
            m->marks[m->nmarks++] = m->sp;
            break;
        case '0': /* POP: pops the top item, or the topmost MARK if that is on top */
            if (m->nmarks && m->marks[m->nmarks - 1] == m->sp) m->nmarks--;
            else if (!pop(m)) return NULL;
            break;
        case '1': /* POP_MARK */
            if (pop_mark(m, &start)) return NULL;
            m->sp = start;
            break;
        case '2': /* DUP */
            if (!(a = top(m)) || push(m, a)) return NULL;
            break;
        case 'N': if (push(m, new_obj(m, AQA_PY_NONE))) return NULL; break;
        case 0x88: if (push_bool(m, 1)) return NULL; break;
        case 0x89: if (push_bool(m, 0)) return NULL; break;
        case 'K': if (arg_uint(m, 1, &v) || push_int(m, (int64_t)v)) return NULL; break;
        case 'M': if (arg_uint(m, 2, &v) || push_int(m, (int64_t)v)) return NULL; break;
        case 'J': if (arg_uint(m, 4, &v) || push_int(m, (int64_t)(int32_t)(uint32_t)v)) return NULL; break;
        case 0x8a: /* LONG1 */
            if (arg_uint(m, 1, &v) || arg_counted(m, v, &s) || push_long_bytes(m, s, (size_t)v)) return NULL;
            break;
        case 0x8b: /* LONG4 */
            if (arg_uint(m, 4, &v)) return NULL;
            if ((int32_t)(uint32_t)v < 0) { fail(m, "negative length"); return NULL; }
            if (arg_counted(m, v, &s) || push_long_bytes(m, s, (size_t)v)) return NULL;
            break;
        case 'I': { /* INT: decimal text; "01"/"00" are True/False */
            int64_t x;
            if (arg_line(m, &line, &n)) return NULL;
            if (n == 2 && line[0] == '0' && (line[1] == '0' || line[1] == '1')) {
                if (push_bool(m, line[1] == '1')) return NULL;
                break;
            }
            if (parse_decimal(m, line, n, &x) || push_int(m, x)) return NULL;
            break;
        }
        case 'L': { /* LONG: decimal text with an optional trailing L */
            int64_t x;
            if (arg_line(m, &line, &n) || parse_decimal(m, line, n, &x) || push_int(m, x)) return NULL;
            break;
        }
        case 'F': { /* FLOAT: repr text */
            char buf[128], *end;
            double d;
            if (arg_line(m, &line, &n)) return NULL;
            if (n == 0 || n >= sizeof buf) { fail(m, "bad float text"); return NULL; }
            memcpy(buf, line, n);
            buf[n] = 0;
            d = strtod(buf, &end);
            if (*end) { fail(m, "bad float text '%s'", buf); return NULL; }
            if (push_float(m, d)) return NULL;
            break;
        }
        case 'G': { /* BINFLOAT: big-endian IEEE double */
            uint64_t bits = 0;
            double d;
            int k;
            if (need(m, 8)) return NULL;
            for (k = 0; k < 8; k++) bits = bits << 8 | m->p[m->pos + (size_t)k];
            m->pos += 8;
            memcpy(&d, &bits, sizeof d);
            if (push_float(m, d)) return NULL;
            break;
        }
        case 'S': /* STRING */
            if (arg_line(m, &line, &n) || push_repr_string(m, line, n)) return NULL;
            break;
        case 'V': /* UNICODE */
            if (arg_line(m, &line, &n) || push_raw_unicode(m, line, n)) return NULL;
            break;
        case 'T': /* BINSTRING: Python 2 str, 4-byte length */
            if (arg_uint(m, 4, &v)) return NULL;
            if ((int32_t)(uint32_t)v < 0) { fail(m, "negative length"); return NULL; }
            if (arg_counted(m, v, &s) || push(m, new_bytes(m, AQA_PY_STR, s, (size_t)v))) return NULL;
            break;
        case 'U': /* SHORT_BINSTRING */
        case 'X': /* BINUNICODE */
        case 0x8c: /* SHORT_BINUNICODE */
        case 0x8d: /* BINUNICODE8 */
            if (push_counted(m, AQA_PY_STR)) return NULL;
            break;
        case 'C': /* SHORT_BINBYTES */
        case 'B': /* BINBYTES */
        case 0x8e: /* BINBYTES8 */
        case 0x96: /* BYTEARRAY8 */
            if (push_counted(m, AQA_PY_BYTES)) return NULL;
            break;
        case ')': /* EMPTY_TUPLE */
            if (push(m, new_seq(m, AQA_PY_TUPLE, 0, 0))) return NULL;
            break;
        case 0x85: /* TUPLE1 */
        case 0x86: /* TUPLE2 */
        case 0x87: /* TUPLE3 */
            n = (size_t)(m->op - 0x84);
            if (m->sp < stack_floor(m) + n) { fail(m, "stack underflow"); return NULL; }
            a = new_seq(m, AQA_PY_TUPLE, m->sp - n, n);
            if (!a) return NULL;
            m->sp -= n;
            if (push(m, a)) return NULL;
            break;
        case 't': /* TUPLE */
        case 'l': /* LIST */
            if (pop_mark(m, &start)) return NULL;
            a = new_seq(m, m->op == 't' ? AQA_PY_TUPLE : AQA_PY_LIST, start, m->sp - start);
            if (!a) return NULL;
            m->sp = start;
            if (push(m, a)) return NULL;
            break;
        case ']': /* EMPTY_LIST */
            if (push(m, new_seq(m, AQA_PY_LIST, 0, 0))) return NULL;
            break;
        case '}': /* EMPTY_DICT */
            if (push(m, new_obj(m, AQA_PY_DICT))) return NULL;
            break;
        case 'd': { /* DICT: key/value pairs since the mark */
            size_t k;
            if (pop_mark(m, &start)) return NULL;
            if ((m->sp - start) % 2) { fail(m, "odd number of items for a dict"); return NULL; }
            if (!(a = new_obj(m, AQA_PY_DICT))) return NULL;
            for (k = start; k < m->sp; k += 2)
                if (dict_set(m, a, m->stack[k], m->stack[k + 1])) return NULL;
            m->sp = start;
            if (push(m, a)) return NULL;
            break;
        }
        case 'a': /* APPEND */
            if (!(b = pop(m)) || !(a = top(m)) || list_append(m, a, b)) return NULL;
            break;
        case 'e': { /* APPENDS */
            size_t k;
            if (pop_mark(m, &start)) return NULL;
            if (start == 0 || (m->nmarks && start <= m->marks[m->nmarks - 1])) { fail(m, "no list below the MARK"); return NULL; }
            a = m->stack[start - 1];
            for (k = start; k < m->sp; k++)
                if (list_append(m, a, m->stack[k])) return NULL;
            m->sp = start;
            break;
        }
        case 's': /* SETITEM */
            if (!(c = pop(m)) || !(b = pop(m)) || !(a = top(m)) || dict_set(m, a, b, c)) return NULL;
            break;
        case 'u': { /* SETITEMS */
            size_t k;
            if (pop_mark(m, &start)) return NULL;
            if (start == 0 || (m->nmarks && start <= m->marks[m->nmarks - 1])) { fail(m, "no dict below the MARK"); return NULL; }
            if ((m->sp - start) % 2) { fail(m, "odd number of items for SETITEMS"); return NULL; }
            a = m->stack[start - 1];
            for (k = start; k < m->sp; k += 2)
                if (dict_set(m, a, m->stack[k], m->stack[k + 1])) return NULL;
            m->sp = start;
            break;
        }
        case 'p': { /* PUT: decimal index */
            int64_t x;
            if (arg_line(m, &line, &n) || parse_decimal(m, line, n, &x)) return NULL;
            if (x < 0) { fail(m, "negative memo index"); return NULL; }
            if (memo_put(m, (uint64_t)x)) return NULL;
            break;
        }
        case 'q': if (arg_uint(m, 1, &v) || memo_put(m, v)) return NULL; break;
        case 'r': if (arg_uint(m, 4, &v) || memo_put(m, v)) return NULL; break;
        case 0x94: /* MEMOIZE: next index = number of entries stored so far */
            if (memo_put(m, (uint64_t)m->memo_count)) return NULL;
            break;
        case 'g': { /* GET */
            int64_t x;
            if (arg_line(m, &line, &n) || parse_decimal(m, line, n, &x)) return NULL;
            if (x < 0) { fail(m, "negative memo index"); return NULL; }
            if (memo_get(m, (uint64_t)x)) return NULL;
            break;
        }
        case 'h': if (arg_uint(m, 1, &v) || memo_get(m, v)) return NULL; break;
        case 'j': if (arg_uint(m, 4, &v) || memo_get(m, v)) return NULL; break;
        case 'c': { /* GLOBAL: "module\nname\n" */
            const char *mod;
            size_t nmod;
            if (arg_line(m, &mod, &nmod) || arg_line(m, &line, &n) || push_global(m, mod, nmod, line, n)) return NULL;
            break;
        }
        case 0x93: /* STACK_GLOBAL */
            if (!(b = pop(m)) || !(a = pop(m))) return NULL;
            if (a->type != AQA_PY_STR || b->type != AQA_PY_STR) { fail(m, "module and name must be str"); return NULL; }
            if (push_global(m, a->u.str.ptr, a->u.str.len, b->u.str.ptr, b->u.str.len)) return NULL;
            break;
        case 'R': /* REDUCE */
            if (!(b = pop(m)) || !(a = pop(m)) || do_reduce(m, a, b)) return NULL;
            break;
        case 'b': /* BUILD */
            if (!(b = pop(m)) || !(a = top(m))) return NULL;
            if (a->type == AQA_PY_NDARRAY) {
                if (build_ndarray(m, a, b)) return NULL;
            } else if (a->type == AQA_PY_DTYPE) {
                if (build_dtype(m, a, b)) return NULL;
            } else {
                fail(m, "cannot set the state of a %s", aqa_pytype_name(a->type));
                return NULL;
            }
            break;
        default:
            if (m->op == 'P' || m->op == 'Q' || m->op == 'i' || m->op == 'o' || (m->op >= 0x81 && m->op <= 0x84) ||
                (m->op >= 0x8f && m->op <= 0x92) || m->op == 0x97 || m->op == 0x98)
                fail(m, "opcode not supported by this reader");
            else
                fail(m, "invalid opcode");
            return NULL;
        }
    }
}

aqa_pyobj *aqa_pickle_loads(const void *buf, size_t len, const char *name) {
    vm m;
    aqa_pyobj *root;
    memset(&m, 0, sizeof m);
    m.p = buf;
    m.len = buf ? len : 0;
    m.name = name ? name : "(pickle)";
    m.doc = calloc(1, sizeof *m.doc);
    if (!m.doc) return aqa_fail_null("%s: out of memory", m.name);
    root = run(&m);
    free(m.stack);
    free(m.marks);
    free(m.memo);
    if (!root) {
        doc_free(m.doc);
        return NULL;
    }
    return root;
}

aqa_pyobj *aqa_pickle_load(const char *path) {
    FILE *f;
    long sz;
    uint8_t *buf;
    aqa_pyobj *root;
    if (!path) return aqa_fail_null("aqa_pickle_load: path is NULL");
    f = fopen(path, "rb");
    if (!f) {
        aqa_fail(AQA_EIO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        fclose(f);
        aqa_fail(AQA_EIO, "%s: cannot determine the size", path);
        return NULL;
    }
    buf = malloc(sz ? (size_t)sz : 1);
    if (!buf) {
        fclose(f);
        aqa_fail(AQA_ENOMEM, "%s: out of memory reading %ld bytes", path, sz);
        return NULL;
    }
    if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        free(buf);
        fclose(f);
        aqa_fail(AQA_EIO, "%s: read error", path);
        return NULL;
    }
    fclose(f);
    root = aqa_pickle_loads(buf, (size_t)sz, path);
    free(buf);
    return root;
}
