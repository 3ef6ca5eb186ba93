/* tensor-impl.h: internals of the tensor layer, shared with the backends and with the layers above
 * that build on them (ops/, autograd/, nn/ kernels; not installed). */
#ifndef AQA_TENSOR_IMPL_H
#define AQA_TENSOR_IMPL_H

#include "tensor/tensor.h"

struct aqa_storage {
    void *data;                 /* host or device pointer to the first byte */
    size_t nbytes;              /* size of the buffer */
    aqa_device device;          /* where data lives */
    int refcount;               /* tensors (views) using it; atomic */
    void (*release)(void *ctx); /* frees external memory (mmap'ed weights), or NULL: allocator */
    void *release_ctx;          /* argument of release */
    int64_t version;            /* in-place writes so far (all views share it); see aqa_node_save */
    const char *last_write;     /* the in-place op that wrote last (static string), or NULL */
};

/* Records an in-place write into t's storage by `op` (a static string such as "aqa_add_"):
 * autograd compares the version of every saved tensor before using it. */
static inline void aqa__bump_version(aqa_tensor *t, const char *op) {
    __atomic_fetch_add(&t->storage->version, 1, __ATOMIC_RELAXED);
    t->storage->last_write = op;
}

/* ---- debug mode (tensor/debug.c) ---- */
#define AQA__FREED (-0x0dead)  /* refcount of a poisoned (freed) tensor struct in debug mode */
typedef enum { AQA__FREED_BY_RELEASE = 0, AQA__FREED_BY_SCOPE, AQA__FREED_BY_CALL } aqa__free_kind;
typedef struct aqa__free_site {
    aqa__free_kind kind;  /* what freed the tensor */
    const char *file;     /* scope: where it was opened; call: where aqa_tensor_free was called */
    int line;
    const char *end_file; /* scope: where it was closed */
    int end_line;
} aqa__free_site;
/* Whether debug mode is on (AQA_DEBUG, the build's default, aqa_set_debug). */
bool aqa__debug(void);
/* Sets what frees tensors on this thread from now on (NULL: nothing in particular); returns the
 * previous one, to be put back. */
const aqa__free_site *aqa__set_free_site(const aqa__free_site *site);
/* Poisons a dead tensor struct and keeps it in the quarantine (debug mode only). */
void aqa__quarantine(aqa_tensor *t);
/* Overwrites freed host memory with 0xff bytes (NaN as floats). */
void aqa__poison_bytes(void *data, size_t nbytes);
/* Records (and prints on stderr) "op: use of a freed tensor ..., freed at ..."; returns false. */
bool aqa__report_freed(const char *op, const aqa_tensor *t);
/* False (after the report) when t was freed; NULL passes (the caller reports NULLs its own way). */
static inline bool aqa__alive(const char *op, const aqa_tensor *t) {
    return !t || t->refcount != AQA__FREED || aqa__report_freed(op, t);
}

/* A new tensor struct with a fresh contiguous storage, NOT registered with any scope (the
 * caller holds the only reference).  Used where ownership is handled explicitly. */
aqa_tensor *aqa__new_unowned(int ndim, const int64_t *shape, aqa_dtype dtype, aqa_device device);
/* A new tensor struct viewing t's storage with the given geometry, NOT registered. */
aqa_tensor *aqa__alias_unowned(const aqa_tensor *t, int ndim, const int64_t *shape,
                               const int64_t *stride, int64_t offset);
/* Registers an unowned tensor with the current scope (or leaves it caller-owned). Returns t. */
aqa_tensor *aqa__own(aqa_tensor *t);
/* Takes the owner's reference away from its scope: the caller now holds it. */
void aqa__disown(aqa_tensor *t);
void aqa__retain(aqa_tensor *t);
void aqa__release(aqa_tensor *t);
/* How a tensor drops its reference to the autograd node that produced it.  The tensor layer knows
 * nodes only as an opaque type; autograd sets this when it records a node, so every tensor that has
 * a grad_fn finds it set (PyTorch's c10 reaches autograd through an interface the same way). */
void aqa__grad_fn_release(aqa_node *n);
void aqa__set_grad_fn_release(void (*release)(aqa_node *n));

/* Shapes. */
int64_t aqa__shape_numel(int ndim, const int64_t *shape);
void aqa__contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
/* Broadcast shape of a and b into out; returns false (and records an error naming `op`) if the
 * shapes do not broadcast. */
bool aqa__broadcast_shapes(const char *op, int na, const int64_t *a, int nb, const int64_t *b,
                           int *nout, int64_t *out);
/* Byte pointer to t's first element (host or device address). */
static inline char *aqa__ptr(const aqa_tensor *t) {
    return (char *)t->storage->data + t->offset * (int64_t)aqa_dtype_size(t->dtype);
}
/* A geometry-only copy of t (same storage, dtype, shape, strides and offset) for kernel calls and
 * views handed to aqa_iter: never registered, retained or released, so the bookkeeping fields
 * are cleared. */
static inline aqa_tensor aqa__geometry_of(const aqa_tensor *t) {
    aqa_tensor v = *t;
    v.requires_grad = false;
    v.grad = NULL;
    v.grad_fn = NULL;
    v.name = NULL;
    v.owner = NULL;
    return v;
}
/* The promoted dtype of a binary op's operands. */
aqa_dtype aqa__promote(aqa_dtype a, aqa_dtype b);
/* True if none of the tensors is NULL; all must share one device (error naming op otherwise). */
bool aqa__check_inputs(const char *op, int n, aqa_tensor *const *ts);
/* The dtype rule of ops with weights (matmul, linear, conv, norms, attention), as PyTorch's:
 * every non-NULL operand has ts[0]'s dtype; no silent promotion of an input to a layer's dtype
 * (or of the weights to the input's).  Otherwise records an error naming op, both operands
 * (roles[i] and the tensor's name) and their dtypes, and returns false.  Elementwise ops and
 * losses promote (aqa__promote) as PyTorch's do. */
bool aqa__check_same_dtype(const char *op, int n, aqa_tensor *const *ts, const char *const *roles);
/* Drops the tensor's grad_fn and marks it a leaf not requiring grad (for results of
 * non-differentiable ops). */
#endif /* AQA_TENSOR_IMPL_H */
