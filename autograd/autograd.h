/* autograd.h: define-by-run reverse-mode differentiation.
 *
 * When grad mode is on and an op's input requires grad, the op records a node: its backward
 * function, edges to the nodes (or leaf tensors) of its inputs, and the tensors backward needs.
 * aqa_backward walks the nodes from the output in reverse topological order and accumulates into
 * the .grad of leaves.  Backward functions are written with the ordinary tensor ops (run in
 * no-grad mode), so every op that exists on a device is differentiable there.
 *
 * Writing an op (see tensor/ops_*.c for many; docs/writing-a-model.md has a complete program):
 * compute the value without recording, then record a node and save what backward needs.
 *
 *     ```c
 *     static void my_mul_backward(aqa_node *n, aqa_tensor *g, aqa_tensor **grad_in) {
 *         if (n->needs_grad[0]) grad_in[0] = aqa_mul(g, n->saved[1]);
 *         if (n->needs_grad[1]) grad_in[1] = aqa_mul(g, n->saved[0]);
 *     }
 *
 *     aqa_tensor *my_mul(aqa_tensor *a, aqa_tensor *b) {
 *         bool prev = aqa_set_grad_enabled(false); // the value, without aqa_mul's own node
 *         aqa_tensor *out = aqa_mul(a, b);
 *         aqa_set_grad_enabled(prev);
 *         aqa_node *n = aqa_node_record("my_mul", my_mul_backward, 2, (aqa_tensor *[]){a, b}, out);
 *         if (n) { aqa_node_save(n, a); aqa_node_save(n, b); }
 *         return out;
 *     }
 *     ```
 *
 * Gradients returned for broadcast inputs may have the broadcast shape: the engine sums them back
 * to the input's shape.  Temporaries made inside a backward function are freed by the engine. */
#ifndef AQA_AUTOGRAD_H
#define AQA_AUTOGRAD_H

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AQA_NODE_MAX_INPUTS 8
#define AQA_NODE_MAX_SAVED 8

struct aqa_node;
/* Computes the gradients of the node's inputs from the gradient of its output `grad_out`.
 * Set grad_in[i] only where n->needs_grad[i]; leave the others NULL. */
typedef void (*aqa_backward_fn)(struct aqa_node *n, aqa_tensor *grad_out, aqa_tensor **grad_in);

struct aqa_node {
    const char *op;                             /* op name, for error messages and debugging */
    aqa_backward_fn backward;                   /* the derivative */
    int n_inputs;                               /* number of inputs (edges) */
    bool needs_grad[AQA_NODE_MAX_INPUTS];       /* input i requires a gradient */
    struct aqa_node *next[AQA_NODE_MAX_INPUTS]; /* input i's producing node (owned ref) or NULL */
    aqa_tensor *leaf[AQA_NODE_MAX_INPUTS];      /* input i when it is a leaf needing grad (ref) */
    int in_ndim[AQA_NODE_MAX_INPUTS];           /* input i's shape, to reduce broadcast grads */
    int64_t in_shape[AQA_NODE_MAX_INPUTS][AQA_MAX_DIMS];
    aqa_dtype in_dtype[AQA_NODE_MAX_INPUTS];    /* input i's dtype, the gradient is cast to it */
    int n_saved;                                /* tensors kept for backward */
    aqa_tensor *saved[AQA_NODE_MAX_SAVED];      /* detached aliases (owned refs) */
    int64_t saved_version[AQA_NODE_MAX_SAVED];  /* their version when saved; backward checks it */
    int64_t ints[8];                            /* op parameters (dims, sizes, flags) */
    double reals[4];                            /* op parameters (scalars) */
    void *ctx;                                  /* larger op state, freed with ctx_free */
    void (*ctx_free)(void *ctx);
    /* engine bookkeeping */
    int refcount;                               /* output tensor + consumers' edges */
    int dependencies;                           /* consumers still to deliver a gradient */
    bool released;                              /* saved state freed after backward */
    aqa_tensor *grad_acc;                       /* gradient of the output being accumulated */
    struct aqa_node *topo_next;                 /* intrusive list used during one backward */
};

/* ---- grad mode ------------------------------------------------------------------------- */
/* Returns the previous mode: `bool prev = aqa_set_grad_enabled(false); ...;
 * aqa_set_grad_enabled(prev);` is torch.no_grad().  Thread-local, on by default. */
bool aqa_set_grad_enabled(bool enabled);
bool aqa_is_grad_enabled(void);

/* ---- leaves ------------------------------------------------------------------------------ */
/* Marks a leaf as requiring grad (returns t); fails on a non-leaf. */
aqa_tensor *aqa_requires_grad(aqa_tensor *t, bool requires_grad);
/* Drops t->grad. */
void aqa_zero_grad(aqa_tensor *t);

/* ---- backward ---------------------------------------------------------------------------- */
/* Backpropagates from `y`.  grad_y NULL means ones (y must then have one element).  The saved
 * state of the graph is freed afterwards unless retain_graph. */
aqa_status aqa_backward(aqa_tensor *y, aqa_tensor *grad_y, bool retain_graph);

/* ---- for op authors ---------------------------------------------------------------------- */
/* Records a node producing `out` if grad mode is on and an input requires grad; else returns
 * NULL and does nothing.  Inputs may be NULL (not differentiable positions). */
aqa_node *aqa_node_record(const char *op, aqa_backward_fn backward, int n_inputs,
                          aqa_tensor *const *inputs, aqa_tensor *out);
/* Saves a tensor for backward (as a detached alias sharing storage).  Returns the slot index.
 * Its version (aqa_tensor_version) is recorded: if anything writes into it in place before
 * backward runs this node, backward fails with "a tensor needed for gradient computation was
 * modified by an in-place operation" naming the node, the tensor and the writer, as PyTorch
 * does, instead of differentiating at the new values. */
int aqa_node_save(aqa_node *n, aqa_tensor *t);

/* ---- gradient checking --------------------------------------------------------------------- */
/* A function of tensors to check: returns one output tensor (any shape) from n inputs. */
typedef aqa_tensor *(*aqa_gradcheck_fn)(aqa_tensor *const *inputs, int n, void *user);

typedef struct aqa_gradcheck_result {
    bool ok;             /* every element within tolerance */
    int input;           /* input of the worst element */
    int64_t index;       /* flat index of the worst element in that input */
    double analytical;   /* backward's value there */
    double numerical;    /* central finite difference there */
    double max_abs_err;  /* worst |analytical - numerical| */
    double max_rel_err;  /* its relative form: err / max(1, |numerical|) */
    char message[256];   /* human-readable summary */
} aqa_gradcheck_result;

/* Compares analytical gradients of sum(fn(inputs) * w), w a fixed random weighting, with central
 * finite differences (step eps) for every element of every input that requires grad.  Inputs
 * should be F64 (pass F32 only with loose tolerances).  Passes when |a - n| <= atol + rtol * |n|. */
aqa_gradcheck_result aqa_gradcheck(aqa_gradcheck_fn fn, aqa_tensor *const *inputs, int n,
                                   void *user, double eps, double atol, double rtol);

#ifdef __cplusplus
}
#endif

#endif /* AQA_AUTOGRAD_H */
