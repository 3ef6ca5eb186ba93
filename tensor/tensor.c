/* tensor.c: tensor and storage objects, ownership (scopes), creation, inspection, in-place fills.
 * Random numbers live in random.c; views, conversions and printing, which record autograd nodes or
 * name them, in ops/. */
#include "tensor/tensor.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tensor/backend.h"
#include "tensor/tensor-impl.h"

/* ---- dtypes and devices ---------------------------------------------------------------- */

size_t aqa_dtype_size(aqa_dtype dtype) {
    switch (dtype) {
    case AQA_F32: return 4;
    case AQA_F64: return 8;
    case AQA_I64: return 8;
    case AQA_BOOL: return 1;
    }
    return 0;
}

const char *aqa_dtype_name(aqa_dtype dtype) {
    switch (dtype) {
    case AQA_F32: return "float32";
    case AQA_F64: return "float64";
    case AQA_I64: return "int64";
    case AQA_BOOL: return "bool";
    }
    return "?";
}

bool aqa_dtype_is_float(aqa_dtype dtype) { return dtype == AQA_F32 || dtype == AQA_F64; }

const aqa_device AQA_DEVICE_CPU = {AQA_CPU, 0};
static aqa_device default_device = {AQA_CPU, 0};

aqa_device aqa_cuda_device(int index) { return (aqa_device){AQA_CUDA, index}; }
bool aqa_device_equal(aqa_device a, aqa_device b) { return a.kind == b.kind && a.index == b.index; }
void aqa_set_default_device(aqa_device device) { default_device = device; }
aqa_device aqa_default_device(void) { return default_device; }
aqa_device aqa_tensor_device(const aqa_tensor *t) { return t->storage->device; }

aqa_dtype aqa__promote(aqa_dtype a, aqa_dtype b) {
    /* order bool < i64 < f32 < f64 */
    static const int rank[] = {[AQA_BOOL] = 0, [AQA_I64] = 1, [AQA_F32] = 2, [AQA_F64] = 3};
    return rank[a] >= rank[b] ? a : b;
}

/* ---- shapes ------------------------------------------------------------------------------ */

int64_t aqa__shape_numel(int ndim, const int64_t *shape) {
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

void aqa__contiguous_strides(int ndim, const int64_t *shape, int64_t *stride) {
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s *= shape[i] > 0 ? shape[i] : 1;
    }
}

bool aqa__broadcast_shapes(const char *op, int na, const int64_t *a, int nb, const int64_t *b,
                           int *nout, int64_t *out) {
    int n = na > nb ? na : nb;
    for (int i = 0; i < n; i++) {
        int64_t da = i < n - na ? 1 : a[i - (n - na)];
        int64_t db = i < n - nb ? 1 : b[i - (n - nb)];
        if (da != db && da != 1 && db != 1) {
            char sa[128], sb[128];
            aqa_tensor ta = {.ndim = na}, tb = {.ndim = nb};
            memcpy(ta.shape, a, sizeof(int64_t) * na);
            memcpy(tb.shape, b, sizeof(int64_t) * nb);
            aqa_fail(AQA_EINVAL, "%s: shapes %s and %s do not broadcast (dimension %d: %lld vs %lld)",
                     op, aqa_shape_str(&ta, sa, sizeof sa), aqa_shape_str(&tb, sb, sizeof sb), i,
                     (long long)da, (long long)db);
            return false;
        }
        out[i] = da == 1 ? db : da;
    }
    *nout = n;
    return true;
}

int aqa_wrap_dim(int dim, int ndim) {
    int n = ndim > 0 ? ndim : 1; /* a 0-d tensor accepts dim 0 / -1 as torch does */
    if (dim < -n || dim >= n) return -1;
    return dim < 0 ? dim + n : dim;
}

int64_t aqa_numel(const aqa_tensor *t) { return aqa__shape_numel(t->ndim, t->shape); }

bool aqa_is_contiguous(const aqa_tensor *t) {
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

bool aqa_same_shape(const aqa_tensor *a, const aqa_tensor *b) {
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *aqa_shape_str(const aqa_tensor *t, char *buf, size_t size) {
    size_t used = 0;
    used += snprintf(buf + used, size - used, "[");
    for (int i = 0; i < t->ndim && used < size; i++)
        used += snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* ---- live counts (leak tests) --------------------------------------------------------------- */

static int64_t live_tensors, live_storages;
int64_t aqa_live_tensors(void) { return __atomic_load_n(&live_tensors, __ATOMIC_RELAXED); }
int64_t aqa_live_storages(void) { return __atomic_load_n(&live_storages, __ATOMIC_RELAXED); }

/* ---- storage ------------------------------------------------------------------------------ */

static aqa_storage *storage_new(size_t nbytes, aqa_device device) {
    const aqa_backend *be = aqa_backend_for(device);
    if (!be) return NULL;
    aqa_storage *s = calloc(1, sizeof *s);
    if (!s) return aqa_fail_null("out of host memory allocating a storage header");
    /* allocate at least one byte so that empty tensors still have a valid pointer */
    s->data = be->alloc(device, nbytes ? nbytes : 1);
    if (!s->data) {
        free(s);
        return NULL;
    }
    s->nbytes = nbytes;
    s->device = device;
    s->refcount = 1;
    __atomic_fetch_add(&live_storages, 1, __ATOMIC_RELAXED);
    return s;
}

static void storage_release(aqa_storage *s) {
    if (!s || __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    if (s->release) {
        s->release(s->release_ctx);
    } else {
        const aqa_backend *be = aqa_backend_for(s->device);
        if (s->device.kind == AQA_CPU && aqa__debug()) aqa__poison_bytes(s->data, s->nbytes);
        if (be) be->free(s->device, s->data, s->nbytes ? s->nbytes : 1);
    }
    free(s);
    __atomic_fetch_sub(&live_storages, 1, __ATOMIC_RELAXED);
}

/* ---- tensor objects ------------------------------------------------------------------------- */

static aqa_tensor *tensor_struct(int ndim, const int64_t *shape, aqa_dtype dtype) {
    if (ndim < 0 || ndim > AQA_MAX_DIMS)
        return aqa_fail_null("tensor: %d dimensions requested, at most %d supported", ndim, AQA_MAX_DIMS);
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) return aqa_fail_null("tensor: negative size %lld in dimension %d", (long long)shape[i], i);
    aqa_tensor *t = calloc(1, sizeof *t);
    if (!t) return aqa_fail_null("out of host memory allocating a tensor header");
    t->ndim = ndim;
    if (ndim) memcpy(t->shape, shape, sizeof(int64_t) * ndim);
    t->dtype = dtype;
    t->refcount = 1;
    t->owner_slot = -1;
    __atomic_fetch_add(&live_tensors, 1, __ATOMIC_RELAXED);
    return t;
}

aqa_tensor *aqa__new_unowned(int ndim, const int64_t *shape, aqa_dtype dtype, aqa_device device) {
    aqa_tensor *t = tensor_struct(ndim, shape, dtype);
    if (!t) return NULL;
    aqa__contiguous_strides(ndim, shape, t->stride);
    t->storage = storage_new((size_t)aqa_numel(t) * aqa_dtype_size(dtype), device);
    if (!t->storage) {
        free(t);
        __atomic_fetch_sub(&live_tensors, 1, __ATOMIC_RELAXED);
        return NULL;
    }
    return t;
}

aqa_tensor *aqa__alias_unowned(const aqa_tensor *src, int ndim, const int64_t *shape,
                               const int64_t *stride, int64_t offset) {
    aqa_tensor *t = tensor_struct(ndim, shape, src->dtype);
    if (!t) return NULL;
    if (ndim) memcpy(t->stride, stride, sizeof(int64_t) * ndim);
    t->offset = offset;
    t->storage = src->storage;
    __atomic_fetch_add(&t->storage->refcount, 1, __ATOMIC_RELAXED);
    return t;
}

void aqa__retain(aqa_tensor *t) {
    if (t) __atomic_fetch_add(&t->refcount, 1, __ATOMIC_RELAXED);
}

static void (*grad_fn_release)(aqa_node *n);

void aqa__set_grad_fn_release(void (*release)(aqa_node *n)) {
    __atomic_store_n(&grad_fn_release, release, __ATOMIC_RELEASE);
}

void aqa__grad_fn_release(aqa_node *n) {
    void (*release)(aqa_node *) = __atomic_load_n(&grad_fn_release, __ATOMIC_ACQUIRE);
    if (n && release) release(n);
}

void aqa__release(aqa_tensor *t) {
    if (!t || !aqa__alive("aqa_tensor_free", t) || __atomic_sub_fetch(&t->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    storage_release(t->storage);
    aqa__release(t->grad);
    if (t->grad_fn) aqa__grad_fn_release(t->grad_fn);
    __atomic_fetch_sub(&live_tensors, 1, __ATOMIC_RELAXED);
    if (aqa__debug()) {
        aqa__quarantine(t); /* poisoned, not reused: a later use is reported */
        return;
    }
    free(t->name);
    free(t);
}

/* ---- scopes ----------------------------------------------------------------------------- */

struct aqa_scope {
    aqa_tensor **items; /* owned tensors; NULL where one left the scope early */
    int64_t n, cap;     /* used and allocated slots */
    aqa_scope *parent;  /* enclosing scope, NULL at the outermost */
    const char *file;   /* where it was opened (for debug mode's messages), or NULL */
    int line;
};

static _Thread_local aqa_scope *current_scope;

static void scope_add(aqa_scope *s, aqa_tensor *t) {
    if (s->n == s->cap) {
        int64_t cap = s->cap ? s->cap * 2 : 256;
        aqa_tensor **items = realloc(s->items, sizeof *items * cap);
        if (!items) {
            /* cannot track it: hand it to the caller rather than lose it */
            t->owner = NULL;
            t->owner_slot = -1;
            return;
        }
        s->items = items;
        s->cap = cap;
    }
    t->owner = s;
    t->owner_slot = s->n;
    s->items[s->n++] = t;
}

aqa_tensor *aqa__own(aqa_tensor *t) {
    if (t && current_scope) scope_add(current_scope, t);
    return t;
}

void aqa__disown(aqa_tensor *t) {
    if (!t || !t->owner) return;
    aqa_scope *s = t->owner;
    s->items[t->owner_slot] = NULL;
    if (t->owner_slot == s->n - 1) s->n--;
    t->owner = NULL;
    t->owner_slot = -1;
}

void aqa_scope_begin_at(const char *file, int line) {
    aqa_scope *s = calloc(1, sizeof *s);
    if (!s) abort(); /* a 56-byte allocation failing leaves nothing sensible to do */
    s->parent = current_scope;
    s->file = file;
    s->line = line;
    current_scope = s;
}

void aqa_scope_end_at(const char *file, int line) {
    aqa_scope *s = current_scope;
    if (!s) return;
    current_scope = s->parent;
    aqa__free_site site = {AQA__FREED_BY_SCOPE, s->file, s->line, file, line};
    const aqa__free_site *prev = aqa__set_free_site(&site);
    /* release newest first: later tensors tend to depend on earlier ones */
    for (int64_t i = s->n - 1; i >= 0; i--) {
        aqa_tensor *t = s->items[i];
        if (!t) continue;
        t->owner = NULL;
        t->owner_slot = -1;
        aqa__release(t);
    }
    aqa__set_free_site(prev);
    free(s->items);
    free(s);
}

void(aqa_scope_begin)(void) { aqa_scope_begin_at(NULL, 0); }
void(aqa_scope_end)(void) { aqa_scope_end_at(NULL, 0); }

aqa_tensor *aqa_keep(aqa_tensor *t) {
    if (!aqa__alive("aqa_keep", t)) return NULL;
    /* only the innermost scope's tensors move: one of an outer scope already outlives it (a
     * function may keep its own input among its results) */
    if (!t || !t->owner || t->owner != current_scope) return t;
    aqa_scope *parent = t->owner->parent;
    aqa__disown(t);
    if (parent) scope_add(parent, t);
    return t;
}

void aqa_tensor_free_at(aqa_tensor *t, const char *file, int line) {
    if (!t || !aqa__alive("aqa_tensor_free", t)) return;
    aqa__free_site site = {AQA__FREED_BY_CALL, file, line, NULL, 0};
    const aqa__free_site *prev = aqa__set_free_site(&site);
    aqa__disown(t);
    aqa__release(t);
    aqa__set_free_site(prev);
}

void(aqa_tensor_free)(aqa_tensor *t) { aqa_tensor_free_at(t, NULL, 0); }

/* ---- creation ------------------------------------------------------------------------------ */

aqa_tensor *aqa_empty(int ndim, const int64_t *shape, aqa_dtype dtype) {
    return aqa__own(aqa__new_unowned(ndim, shape, dtype, default_device));
}

aqa_tensor *aqa_full(int ndim, const int64_t *shape, double value, aqa_dtype dtype) {
    return aqa_full_on(ndim, shape, value, dtype, default_device);
}

aqa_tensor *aqa_full_on(int ndim, const int64_t *shape, double value, aqa_dtype dtype, aqa_device device) {
    aqa_tensor *t = aqa__new_unowned(ndim, shape, dtype, device);
    if (!t) return NULL;
    if (aqa_fill_(t, value) != AQA_OK) {
        aqa__release(t);
        return NULL;
    }
    return aqa__own(t);
}

aqa_tensor *aqa_zeros(int ndim, const int64_t *shape, aqa_dtype dtype) { return aqa_full(ndim, shape, 0.0, dtype); }
aqa_tensor *aqa_ones(int ndim, const int64_t *shape, aqa_dtype dtype) { return aqa_full(ndim, shape, 1.0, dtype); }
aqa_tensor *aqa_scalar(double value, aqa_dtype dtype) { return aqa_full(0, NULL, value, dtype); }

static aqa_tensor *like(const aqa_tensor *t, bool fill, double value) {
    if (!t) return NULL;
    aqa_tensor *r = aqa__new_unowned(t->ndim, t->shape, t->dtype, t->storage->device);
    if (!r) return NULL;
    if (fill && aqa_fill_(r, value) != AQA_OK) {
        aqa__release(r);
        return NULL;
    }
    return aqa__own(r);
}
aqa_tensor *aqa_zeros_like(const aqa_tensor *t) { return like(t, true, 0.0); }
aqa_tensor *aqa_ones_like(const aqa_tensor *t) { return like(t, true, 1.0); }
aqa_tensor *aqa_full_like(const aqa_tensor *t, double value) { return like(t, true, value); }
aqa_tensor *aqa_empty_like(const aqa_tensor *t) { return like(t, false, 0.0); }

/* Writes value v as element i of a host buffer of dtype. */
static void host_store(void *buf, aqa_dtype dtype, int64_t i, double v) {
    switch (dtype) {
    case AQA_F32: ((float *)buf)[i] = (float)v; break;
    case AQA_F64: ((double *)buf)[i] = v; break;
    case AQA_I64: ((int64_t *)buf)[i] = (int64_t)v; break;
    case AQA_BOOL: ((uint8_t *)buf)[i] = v != 0; break;
    }
}

static double host_load(const void *buf, aqa_dtype dtype, int64_t i) {
    switch (dtype) {
    case AQA_F32: return ((const float *)buf)[i];
    case AQA_F64: return ((const double *)buf)[i];
    case AQA_I64: return (double)((const int64_t *)buf)[i];
    case AQA_BOOL: return ((const uint8_t *)buf)[i];
    }
    return 0;
}

aqa_tensor *aqa_from_data(const void *data, int ndim, const int64_t *shape, aqa_dtype dtype) {
    aqa_tensor *t = aqa__new_unowned(ndim, shape, dtype, default_device);
    if (!t) return NULL;
    const aqa_backend *be = aqa_backend_for(default_device);
    size_t nbytes = (size_t)aqa_numel(t) * aqa_dtype_size(dtype);
    if (nbytes && be->from_host(t->storage->data, data, nbytes, default_device) != AQA_OK) {
        aqa__release(t);
        return NULL;
    }
    return aqa__own(t);
}

aqa_tensor *aqa_arange(double start, double end, double step, aqa_dtype dtype) {
    if (step == 0 || !isfinite(start) || !isfinite(end))
        return aqa_fail_null("aqa_arange: step must be non-zero and bounds finite (start %g, end %g, step %g)",
                             start, end, step);
    int64_t n = (int64_t)ceil((end - start) / step);
    if (n < 0) n = 0;
    void *buf = malloc((size_t)(n ? n : 1) * 8);
    if (!buf) return aqa_fail_null("aqa_arange: out of memory for %lld elements", (long long)n);
    for (int64_t i = 0; i < n; i++) host_store(buf, dtype, i, start + (double)i * step);
    aqa_tensor *t = aqa_from_data(buf, 1, &n, dtype);
    free(buf);
    return t;
}

aqa_tensor *aqa_linspace(double start, double end, int64_t steps, aqa_dtype dtype) {
    if (steps < 0) return aqa_fail_null("aqa_linspace: steps must be >= 0, got %lld", (long long)steps);
    void *buf = malloc((size_t)(steps ? steps : 1) * 8);
    if (!buf) return aqa_fail_null("aqa_linspace: out of memory");
    double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0;
    /* torch fills the second half from the end so both endpoints are exact */
    for (int64_t i = 0; i < steps; i++)
        host_store(buf, dtype, i, i < steps / 2 ? start + step * (double)i : end - step * (double)(steps - 1 - i));
    aqa_tensor *t = aqa_from_data(buf, 1, &steps, dtype);
    free(buf);
    return t;
}

/* ---- inspection ------------------------------------------------------------------------------ */

void *aqa_data(const aqa_tensor *t) {
    if (!t || !aqa__alive("aqa_data", t) || t->storage->device.kind != AQA_CPU) return NULL;
    return aqa__ptr(t);
}

double aqa_get(const aqa_tensor *t, const int64_t *index) {
    if (!aqa__alive("aqa_get", t)) return NAN;
    int64_t off = t->offset;
    for (int i = 0; i < t->ndim; i++) off += index[i] * t->stride[i];
    size_t es = aqa_dtype_size(t->dtype);
    if (t->storage->device.kind == AQA_CPU) return host_load(t->storage->data, t->dtype, off);
    char tmp[8];
    const aqa_backend *be = aqa_backend_for(t->storage->device);
    if (!be || be->to_host(tmp, (char *)t->storage->data + off * es, es, t->storage->device) != AQA_OK) return NAN;
    return host_load(tmp, t->dtype, 0);
}

double aqa_item(const aqa_tensor *t) {
    if (!t || !aqa__alive("aqa_item", t)) return NAN;
    if (aqa_numel(t) != 1) {
        aqa_fail(AQA_EINVAL, "aqa_item: tensor%s%s has %lld elements, expected 1", t->name ? " " : "",
                 t->name ? t->name : "", (long long)aqa_numel(t));
        return NAN;
    }
    int64_t zero[AQA_MAX_DIMS] = {0};
    return aqa_get(t, zero);
}

aqa_status aqa_copy_to_host(const aqa_tensor *t, void *dst, aqa_dtype dtype) {
    if (!t) return aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
    if (!aqa__alive("aqa_copy_to_host", t)) return AQA_ESTATE;
    /* make a contiguous copy of the right dtype on t's device, then move the bytes */
    aqa_tensor *c = aqa__new_unowned(t->ndim, t->shape, dtype, t->storage->device);
    if (!c) return aqa_last_status();
    const aqa_backend *be = aqa_backend_for(t->storage->device);
    aqa_status st = be->copy(c, t);
    if (st == AQA_OK) {
        size_t nbytes = (size_t)aqa_numel(c) * aqa_dtype_size(dtype);
        st = nbytes ? be->to_host(dst, c->storage->data, nbytes, c->storage->device) : AQA_OK;
    }
    aqa__release(c);
    return st;
}

int64_t aqa_tensor_version(const aqa_tensor *t) { return __atomic_load_n(&t->storage->version, __ATOMIC_RELAXED); }

aqa_tensor *aqa_set_name(aqa_tensor *t, const char *name) {
    if (!aqa__alive("aqa_set_name", t)) return NULL;
    if (!t) return NULL;
    free(t->name);
    t->name = name ? strdup(name) : NULL;
    return t;
}

/* ---- in-place writes (never recorded) --------------------------------------------------------- */

aqa_status aqa_fill_(aqa_tensor *t, double value) {
    if (!t) return aqa_fail(AQA_EINVAL, "aqa_fill_: NULL tensor");
    if (!aqa__alive("aqa_fill_", t)) return AQA_ESTATE;
    aqa__bump_version(t, "aqa_fill_");
    return aqa_backend_for(t->storage->device)->fill(t, value);
}

aqa_status aqa_zero_(aqa_tensor *t) { return aqa_fill_(t, 0.0); }

bool aqa__check_inputs(const char *op, int n, aqa_tensor *const *ts) {
    for (int i = 0; i < n; i++) {
        if (!ts[i]) {
            /* keep the first error (the one that produced the NULL) when there is one */
            if (aqa_last_status() == AQA_OK) aqa_fail(AQA_EINVAL, "%s: input %d is NULL", op, i);
            return false;
        }
        if (!aqa__alive(op, ts[i])) return false;
    }
    for (int i = 1; i < n; i++) {
        if (!aqa_device_equal(ts[i]->storage->device, ts[0]->storage->device)) {
            aqa_fail(AQA_EINVAL, "%s: input %d is on %s:%d but input 0 is on %s:%d", op, i,
                     ts[i]->storage->device.kind == AQA_CPU ? "cpu" : "cuda", ts[i]->storage->device.index,
                     ts[0]->storage->device.kind == AQA_CPU ? "cpu" : "cuda", ts[0]->storage->device.index);
            return false;
        }
    }
    return true;
}

bool aqa__check_same_dtype(const char *op, int n, aqa_tensor *const *ts, const char *const *roles) {
    for (int i = 1; i < n; i++) {
        if (!ts[i] || ts[i]->dtype == ts[0]->dtype) continue;
        return aqa_fail(AQA_EINVAL,
                        "%s: %s%s%s is %s but %s%s%s is %s; the operands of a layer must share one dtype (as in "
                        "PyTorch): convert one explicitly with aqa_to_dtype, or a module with aqa_module_to_dtype",
                        op, roles[0], ts[0]->name ? " " : "", ts[0]->name ? ts[0]->name : "",
                        aqa_dtype_name(ts[0]->dtype), roles[i], ts[i]->name ? " " : "",
                        ts[i]->name ? ts[i]->name : "", aqa_dtype_name(ts[i]->dtype)) == AQA_OK;
    }
    return true;
}
