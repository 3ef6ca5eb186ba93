/* tensor.h: aqa's n-dimensional tensor: storage, dtypes, devices, creation, views, lifetime.
 *
 * A tensor is a view (shape, strides in elements, offset) onto a reference-counted storage that
 * knows its device.  Views share storage, so reshape/permute/narrow/expand cost nothing.
 *
 * Lifetime.  Every tensor returned by an aqa function has one owner:
 *   - inside a scope (aqa_scope_begin ... aqa_scope_end) the scope owns it, and aqa_scope_end
 *     releases every tensor made inside at once, graph nodes included.  This is how a training
 *     step is written: temporaries, activations and the graph die together at the end of the step.
 *   - outside any scope the caller owns it and releases it with aqa_tensor_free.  Parameters,
 *     optimizer state and anything long-lived are made this way (or moved out of a scope with
 *     aqa_keep).
 * Internally tensors are reference counted (graph nodes keep what backward needs alive), so the
 * owner's release never frees memory that something else still uses.
 *
 * Errors.  Functions returning a tensor return NULL on failure after recording a message (see
 * error.h).  Every op accepts NULL inputs and returns NULL, so a chain of calls can be checked once
 * at the end. */
#ifndef AQA_TENSOR_H
#define AQA_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AQA_MAX_DIMS 8

typedef enum aqa_dtype {
    AQA_F32 = 0, /* default */
    AQA_F64 = 1, /* gradient checks, references */
    AQA_I64 = 2, /* indices, token ids, labels */
    AQA_BOOL = 3 /* results of comparisons; stored one byte per element */
} aqa_dtype;

typedef enum aqa_device_kind { AQA_CPU = 0, AQA_CUDA = 1 } aqa_device_kind;

typedef struct aqa_device {
    aqa_device_kind kind; /* CPU or CUDA */
    int index;            /* CUDA device ordinal; 0 for the CPU */
} aqa_device;

typedef struct aqa_storage aqa_storage; /* opaque: data pointer, size, device, reference count */
typedef struct aqa_node aqa_node;       /* autograd node (autograd/autograd.h) */
typedef struct aqa_scope aqa_scope;     /* opaque: a list of owned tensors */

typedef struct aqa_tensor {
    int ndim;                        /* number of dimensions, 0 (scalar) .. AQA_MAX_DIMS */
    int64_t shape[AQA_MAX_DIMS];     /* size of each dimension */
    int64_t stride[AQA_MAX_DIMS];    /* step between neighbours of each dimension, in elements */
    int64_t offset;                  /* first element's position in the storage, in elements */
    aqa_dtype dtype;                 /* element type */
    aqa_storage *storage;            /* shared, reference-counted buffer (holds the device) */
    bool requires_grad;              /* gradients flow to (leaf) or through (non-leaf) it */
    struct aqa_tensor *grad;         /* gradient accumulated into a leaf by backward, or NULL */
    aqa_node *grad_fn;               /* node that produced it (non-leaf), or NULL for a leaf */
    char *name;                      /* optional name used in error messages (owned), or NULL */
    /* internal bookkeeping: do not touch */
    int refcount;                    /* owners: scope or caller, graph nodes, views' parents */
    aqa_scope *owner;                /* the scope that owns it, NULL when the caller owns it */
    int64_t owner_slot;              /* position in the owner's list */
} aqa_tensor;

/* ---- dtypes and devices ---------------------------------------------------------------- */
size_t aqa_dtype_size(aqa_dtype dtype);
const char *aqa_dtype_name(aqa_dtype dtype); /* "float32", "float64", "int64", "bool" */
bool aqa_dtype_is_float(aqa_dtype dtype);
extern const aqa_device AQA_DEVICE_CPU;
aqa_device aqa_cuda_device(int index);
bool aqa_device_equal(aqa_device a, aqa_device b);
/* Device on which creation functions make tensors (CPU unless changed, as torch.set_default_device). */
void aqa_set_default_device(aqa_device device);
aqa_device aqa_default_device(void);
aqa_device aqa_tensor_device(const aqa_tensor *t);
/* What the CPU kernels run on, for logs and reports (the numbers of a float32 run depend on it):
 * "aqa kernels avx512, OpenBLAS 0.3.21 ... Cooperlake kernels, 2 OpenMP threads" into buf. */
const char *aqa_cpu_info(char *buf, size_t size);

/* Shape literal helper: aqa_zeros(AQA_SHAPE(2, 3), AQA_F32). */
#define AQA_SHAPE(...)                                                       \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),         \
        (const int64_t[]) { __VA_ARGS__ }

/* ---- lifetime ------------------------------------------------------------------------ */
/* Opens a scope; tensors created until the matching aqa_scope_end are owned by it. Nestable. */
void aqa_scope_begin(void);
/* Releases every tensor the innermost scope owns and closes it. */
void aqa_scope_end(void);
/* Moves `t` out of the innermost scope into its parent (or to the caller outside all scopes);
 * a tensor owned by an outer scope, or by the caller, stays where it is.  Returns t.  Use for the
 * few results that must outlive a step (a metric, a prediction). */
aqa_tensor *aqa_keep(aqa_tensor *t);
/* Releases the owner's reference (caller-owned or scope-owned alike).  NULL is allowed. */
void aqa_tensor_free(aqa_tensor *t);
/* The same, remembering the caller's file and line for debug mode's messages.  The macros make
 * every aqa_scope_begin() / aqa_scope_end() / aqa_tensor_free(t) call record its place; the
 * functions stay available (for bindings: (aqa_scope_begin)() or a function pointer). */
void aqa_scope_begin_at(const char *file, int line);
void aqa_scope_end_at(const char *file, int line);
void aqa_tensor_free_at(aqa_tensor *t, const char *file, int line);
#define aqa_scope_begin() aqa_scope_begin_at(__FILE__, __LINE__)
#define aqa_scope_end() aqa_scope_end_at(__FILE__, __LINE__)
#define aqa_tensor_free(t) aqa_tensor_free_at((t), __FILE__, __LINE__)
/* Debug mode: AQA_DEBUG=1 in the environment (the default of a build configured with
 * --enable-debug; AQA_DEBUG=0 turns it off) poisons freed tensors.  A use of a tensor after its
 * scope ended (or after aqa_tensor_free) then fails -- the op returns NULL or an error and the
 * message, also printed on stderr, names the tensor and where it was freed: "aqa_add: use of a
 * freed tensor (float32 [8, 4]), freed at the end of the scope opened at train.c:40 and closed
 * at train.c:52".  Freed CPU memory is overwritten with NaN bytes.  Cheap: for use while writing
 * a model; aqa_set_debug switches it from a program (returns the previous setting). */
bool aqa_set_debug(bool on);
bool aqa_is_debug(void);
/* Number of live tensors and storages in this process (for leak tests). */
int64_t aqa_live_tensors(void);
int64_t aqa_live_storages(void);

/* ---- creation (on the default device) ------------------------------------------------ */
aqa_tensor *aqa_empty(int ndim, const int64_t *shape, aqa_dtype dtype);
aqa_tensor *aqa_zeros(int ndim, const int64_t *shape, aqa_dtype dtype);
aqa_tensor *aqa_ones(int ndim, const int64_t *shape, aqa_dtype dtype);
aqa_tensor *aqa_full(int ndim, const int64_t *shape, double value, aqa_dtype dtype);
aqa_tensor *aqa_scalar(double value, aqa_dtype dtype); /* 0-d tensor */
/* aqa_full on a given device rather than the default one (torch.full(..., device=d)). */
aqa_tensor *aqa_full_on(int ndim, const int64_t *shape, double value, aqa_dtype dtype, aqa_device device);
aqa_tensor *aqa_arange(double start, double end, double step, aqa_dtype dtype);
aqa_tensor *aqa_linspace(double start, double end, int64_t steps, aqa_dtype dtype);
/* Copies `data` (host memory, elements of `dtype`, row-major) into a new tensor. */
aqa_tensor *aqa_from_data(const void *data, int ndim, const int64_t *shape, aqa_dtype dtype);
aqa_tensor *aqa_zeros_like(const aqa_tensor *t);
aqa_tensor *aqa_ones_like(const aqa_tensor *t);
aqa_tensor *aqa_full_like(const aqa_tensor *t, double value);
aqa_tensor *aqa_empty_like(const aqa_tensor *t);

/* ---- random numbers: Philox4x32-10, counter based, same stream on every device ---------- */
typedef struct aqa_generator {
    uint64_t seed;   /* Philox key */
    uint64_t offset; /* counter: advanced by the number of 4-word blocks each draw consumed */
} aqa_generator;
/* Seeds the default generator (torch.manual_seed). */
void aqa_manual_seed(uint64_t seed);
aqa_generator *aqa_default_generator(void);
/* gen NULL means the default generator. */
aqa_tensor *aqa_rand(int ndim, const int64_t *shape, aqa_dtype dtype, aqa_generator *gen);
aqa_tensor *aqa_randn(int ndim, const int64_t *shape, aqa_dtype dtype, aqa_generator *gen);
/* Uniform integers in [low, high) as I64. */
aqa_tensor *aqa_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, aqa_generator *gen);
/* A random permutation of 0..n-1 (I64). */
aqa_tensor *aqa_randperm(int64_t n, aqa_generator *gen);
/* In place, no autograd: fill with U(low, high) / N(mean, std) (initialisers use these). */
aqa_status aqa_uniform_(aqa_tensor *t, double low, double high, aqa_generator *gen);
aqa_status aqa_normal_(aqa_tensor *t, double mean, double std, aqa_generator *gen);
/* The Philox4x32-10 block for (key, counter): 4 uint32 outputs (exposed for tests/backends). */
void aqa_philox4x32(uint64_t key, uint64_t counter, uint32_t out[4]);

/* ---- inspection ---------------------------------------------------------------------- */
int64_t aqa_numel(const aqa_tensor *t);
bool aqa_is_contiguous(const aqa_tensor *t);
/* Pointer to the first element (host memory only; NULL for device tensors). */
void *aqa_data(const aqa_tensor *t);
/* Reads one element as double (any dtype/device; slow: for tests and printing). */
double aqa_get(const aqa_tensor *t, const int64_t *index);
/* Reads a 0-d or one-element tensor as double. */
double aqa_item(const aqa_tensor *t);
/* Copies all elements, in row-major order, to host memory as `dtype` (converting). */
aqa_status aqa_copy_to_host(const aqa_tensor *t, void *dst, aqa_dtype dtype);
/* How many in-place writes (aqa_copy_, aqa_fill_, aqa_add_, aqa_mul_scalar_, optimizer steps, ...)
 * t's storage has seen, as torch's t._version; views share their base's counter.  Backward fails
 * when a tensor it saved was written in place after the forward (autograd.h). */
int64_t aqa_tensor_version(const aqa_tensor *t);
/* Sets the name used in error messages (copied). Returns t. */
aqa_tensor *aqa_set_name(aqa_tensor *t, const char *name);
/* "[2, 3]" into buf. */
const char *aqa_shape_str(const aqa_tensor *t, char *buf, size_t size);
bool aqa_same_shape(const aqa_tensor *a, const aqa_tensor *b);
/* ---- in-place writes (never recorded; the differentiable copies and views are in ops/ops.h) -- */
aqa_status aqa_fill_(aqa_tensor *t, double value);
aqa_status aqa_zero_(aqa_tensor *t);

/* aqa_squeeze's dim meaning every size-1 dimension. */
#define AQA_ALL_DIMS (-100)

/* Normalises a possibly negative dim for ndim dimensions; -1 when out of range. */
int aqa_wrap_dim(int dim, int ndim);

#ifdef __cplusplus
}
#endif

#endif /* AQA_TENSOR_H */
