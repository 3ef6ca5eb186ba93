/* autograd.c: grad mode, node recording and the backward engine (see autograd.h). */
#include "autograd/autograd.h"

#include <stdlib.h>
#include <string.h>

#include "tensor/backend.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

static _Thread_local bool grad_disabled; /* zero-initialised: grad mode on by default */

bool aqa_set_grad_enabled(bool enabled) {
    bool prev = !grad_disabled;
    grad_disabled = !enabled;
    return prev;
}

bool aqa_is_grad_enabled(void) { return !grad_disabled; }

aqa_tensor *aqa_requires_grad(aqa_tensor *t, bool requires_grad) {
    if (!t || !aqa__alive("aqa_requires_grad", t)) return NULL;
    if (t->grad_fn)
        return aqa_fail_null("aqa_requires_grad: tensor%s%s is not a leaf (it was produced by %s); use aqa_detach first",
                             t->name ? " " : "", t->name ? t->name : "", t->grad_fn->op);
    if (requires_grad && !aqa_dtype_is_float(t->dtype))
        return aqa_fail_null("aqa_requires_grad: only floating tensors can require gradients (got %s)",
                             aqa_dtype_name(t->dtype));
    t->requires_grad = requires_grad;
    return t;
}

void aqa_zero_grad(aqa_tensor *t) {
    if (!t) return;
    aqa__release(t->grad);
    t->grad = NULL;
}

/* ---- nodes -------------------------------------------------------------------------------- */

static void node_retain(aqa_node *n) {
    if (n) __atomic_fetch_add(&n->refcount, 1, __ATOMIC_RELAXED);
}

static void node_free_state(aqa_node *n) {
    for (int i = 0; i < n->n_saved; i++) {
        aqa__release(n->saved[i]);
        n->saved[i] = NULL;
    }
    if (n->ctx_free && n->ctx) n->ctx_free(n->ctx);
    n->ctx = NULL;
    aqa__release(n->grad_acc);
    n->grad_acc = NULL;
    n->released = true;
}

static void node_release(aqa_node *n) {
    /* iterative, so that freeing a long chain of nodes cannot overflow the C stack */
    aqa_node *stack[64];
    aqa_node **heap = NULL;
    int64_t top = 0, cap = 64;
    aqa_node **st = stack;
    if (n) st[top++] = n;
    while (top > 0) {
        aqa_node *cur = st[--top];
        if (__atomic_sub_fetch(&cur->refcount, 1, __ATOMIC_ACQ_REL) > 0) continue;
        node_free_state(cur);
        for (int i = 0; i < cur->n_inputs; i++) {
            aqa__release(cur->leaf[i]);
            if (!cur->next[i]) continue;
            if (top == cap) {
                aqa_node **grown = malloc(sizeof *grown * (size_t)cap * 2);
                if (!grown) abort(); /* cannot continue freeing safely */
                memcpy(grown, st, sizeof *grown * (size_t)top);
                free(heap);
                heap = st = grown;
                cap *= 2;
            }
            st[top++] = cur->next[i];
        }
        free(cur);
    }
    free(heap);
}

aqa_node *aqa_node_record(const char *op, aqa_backward_fn backward, int n_inputs, aqa_tensor *const *inputs,
                          aqa_tensor *out) {
    if (grad_disabled || !out || n_inputs > AQA_NODE_MAX_INPUTS) return NULL;
    bool any = false;
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i] && inputs[i]->requires_grad) any = true;
    if (!any) return NULL;
    aqa_node *n = calloc(1, sizeof *n);
    if (!n) return aqa_fail_null("out of memory recording autograd node %s", op);
    n->op = op;
    n->backward = backward;
    n->n_inputs = n_inputs;
    n->refcount = 1; /* held by out */
    for (int i = 0; i < n_inputs; i++) {
        aqa_tensor *in = inputs[i];
        if (!in) continue;
        n->in_ndim[i] = in->ndim;
        memcpy(n->in_shape[i], in->shape, sizeof(int64_t) * (size_t)in->ndim);
        n->in_dtype[i] = in->dtype;
        if (!in->requires_grad) continue;
        n->needs_grad[i] = true;
        if (in->grad_fn) {
            n->next[i] = in->grad_fn;
            node_retain(in->grad_fn);
        } else {
            n->leaf[i] = in;
            aqa__retain(in);
        }
    }
    node_release(out->grad_fn); /* an op's output is fresh; this only guards misuse */
    aqa__set_grad_fn_release(node_release); /* tensors free their grad_fn through it */
    out->grad_fn = n;
    out->requires_grad = true;
    return n;
}

int aqa_node_save(aqa_node *n, aqa_tensor *t) {
    if (!n || !t) return -1;
    if (n->n_saved >= AQA_NODE_MAX_SAVED) {
        aqa_fail(AQA_EINVAL, "autograd node %s: more than %d saved tensors", n->op, AQA_NODE_MAX_SAVED);
        return -1;
    }
    /* a detached alias: the saved value must not keep its own graph (or this node) alive */
    aqa_tensor *alias = aqa__alias_unowned(t, t->ndim, t->shape, t->stride, t->offset);
    if (!alias) return -1;
    if (t->name && !(alias->name = strdup(t->name))) { /* for the message of check_saved */
        aqa__release(alias);
        aqa_fail(AQA_ENOMEM, "autograd node %s: out of memory saving %s", n->op, t->name);
        return -1;
    }
    n->saved[n->n_saved] = alias;
    n->saved_version[n->n_saved] = aqa_tensor_version(t);
    return n->n_saved++;
}

/* ---- backward ------------------------------------------------------------------------------ */

typedef struct {
    aqa_node **items;
    int64_t n, cap;
} node_list;

static bool list_push(node_list *l, aqa_node *n) {
    if (l->n == l->cap) {
        int64_t cap = l->cap ? l->cap * 2 : 64;
        aqa_node **items = realloc(l->items, sizeof *items * (size_t)cap);
        if (!items) return false;
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = n;
    return true;
}

#define VISITED ((aqa_node *)1)

/* Fails (as PyTorch) when a tensor n saved was written in place after it was saved: its backward
 * would differentiate at the new values and return a wrong gradient without a word. */
static aqa_status check_saved(const aqa_node *n) {
    for (int i = 0; i < n->n_saved; i++) {
        const aqa_tensor *s = n->saved[i];
        if (!s || aqa_tensor_version(s) == n->saved_version[i]) continue;
        char shape[128];
        const char *writer = s->storage->last_write;
        return aqa_fail(AQA_ESTATE,
                        "aqa_backward: a tensor needed for gradient computation was modified by an in-place "
                        "operation: tensor %s%s(%s %s), saved by %s, is at version %lld (last written by %s); "
                        "expected version %lld. Run the forward again after the write, or write into a copy "
                        "(aqa_clone)", s->name ? s->name : "", s->name ? " " : "", aqa_dtype_name(s->dtype), aqa_shape_str(s, shape, sizeof shape), n->op,
                        (long long)aqa_tensor_version(s), writer ? writer : "an in-place op",
                        (long long)n->saved_version[i]);
    }
    return AQA_OK;
}

/* Brings a gradient to the input's shape, dtype and device. */
static aqa_tensor *conform(aqa_tensor *g, const aqa_node *n, int i, aqa_device device) {
    if (g->ndim != n->in_ndim[i] || memcmp(g->shape, n->in_shape[i], sizeof(int64_t) * (size_t)g->ndim) != 0)
        g = aqa_sum_to_shape(g, n->in_ndim[i], n->in_shape[i]);
    if (g && g->dtype != n->in_dtype[i]) g = aqa_to_dtype(g, n->in_dtype[i]);
    if (g && !aqa_device_equal(aqa_tensor_device(g), device)) g = aqa_to_device(g, device);
    return g;
}

/* True when g may become a leaf's .grad as it is instead of being copied (PyTorch's AccumulateGrad
 * steals such gradients too): nobody else holds it (one reference: the backward's scope, or the
 * engine for a pending gradient handed on unchanged) or its memory (no views, not saved), it has
 * the leaf's shape, dtype and device, is contiguous from its storage's start, records no graph,
 * and the backward did not hand it to another input as well (the leaf's .grad is later added to
 * in place). */
static bool can_take(const aqa_tensor *leaf, const aqa_tensor *g, aqa_tensor *const *grad_in, int n_in, int i) {
    if (__atomic_load_n(&g->refcount, __ATOMIC_ACQUIRE) != 1 ||
        __atomic_load_n(&g->storage->refcount, __ATOMIC_ACQUIRE) != 1)
        return false;
    if (g->grad_fn || g->requires_grad || g->offset != 0 || g->dtype != leaf->dtype || !aqa_same_shape(g, leaf) ||
        !aqa_is_contiguous(g) || !aqa_device_equal(aqa_tensor_device(g), aqa_tensor_device(leaf)))
        return false;
    for (int j = 0; j < n_in; j++)
        if (j != i && grad_in[j] == g) return false;
    return true;
}

/* Adds g into a leaf's .grad (a private contiguous tensor); with take, g itself becomes .grad
 * when can_take allowed it (the caller checked). */
static aqa_status accumulate_leaf(aqa_tensor *leaf, aqa_tensor *g, bool take) {
    if (!leaf->grad && take) {
        if (g->owner) aqa__disown(g); /* the scope's reference becomes the leaf's */
        else aqa__retain(g);         /* the engine keeps its own until it drops the pending gradient */
        leaf->grad = g;
        return AQA_OK;
    }
    if (!leaf->grad) {
        aqa_tensor *copy = aqa__new_unowned(leaf->ndim, leaf->shape, leaf->dtype, aqa_tensor_device(leaf));
        if (!copy) return aqa_last_status();
        aqa_status st = aqa_copy_(copy, g);
        if (st != AQA_OK) {
            aqa__release(copy);
            return st;
        }
        leaf->grad = copy;
        return AQA_OK;
    }
    return aqa_add_(leaf->grad, g, 1.0);
}

/* Adds g into a node's pending output gradient (the engine holds one reference). */
static void accumulate_node(aqa_node *n, aqa_tensor *g) {
    if (!n->grad_acc) {
        aqa__retain(g);
        n->grad_acc = g;
        return;
    }
    aqa_tensor *sum = aqa_add(n->grad_acc, g);
    if (!sum) return;
    aqa__retain(sum);
    aqa__release(n->grad_acc);
    n->grad_acc = sum;
}

aqa_status aqa_backward(aqa_tensor *y, aqa_tensor *grad_y, bool retain_graph) {
    if (!y) return aqa_fail(AQA_EINVAL, "aqa_backward: output tensor is NULL");
    if (!aqa__alive("aqa_backward", y) || !aqa__alive("aqa_backward", grad_y)) return AQA_ESTATE;
    if (!y->requires_grad)
        return aqa_fail(AQA_ESTATE, "aqa_backward: the output%s%s does not require grad (no input requires grad, or "
                        "it was computed in no-grad mode)", y->name ? " " : "", y->name ? y->name : "");
    if (!grad_y && aqa_numel(y) != 1) {
        char buf[128];
        return aqa_fail(AQA_EINVAL, "aqa_backward: grad_y can be omitted only for one-element outputs, got shape %s",
                        aqa_shape_str(y, buf, sizeof buf));
    }
    if (grad_y && !aqa_same_shape(grad_y, y)) {
        char a[128], b[128];
        return aqa_fail(AQA_EINVAL, "aqa_backward: grad_y has shape %s, output has %s", aqa_shape_str(grad_y, a, sizeof a),
                        aqa_shape_str(y, b, sizeof b));
    }
    bool prev = aqa_set_grad_enabled(false);
    aqa_scope_begin();
    aqa_status st = AQA_OK;
    aqa_tensor *seed = grad_y ? grad_y : aqa_ones_like(y);
    if (!seed) {
        st = aqa_last_status();
        goto done;
    }
    if (!y->grad_fn) { /* y is itself a leaf */
        st = accumulate_leaf(y, seed, false); /* the caller's grad_y is never taken */
        goto done;
    }
    aqa_node *root = y->grad_fn;
    if (root->released) {
        st = aqa_fail(AQA_ESTATE, "aqa_backward: the graph of %s was already freed by an earlier backward; pass "
                      "retain_graph to backward twice", root->op);
        goto done;
    }

    /* pass 1: collect reachable nodes and count each one's consumers */
    node_list all = {0}, ready = {0};
    root->topo_next = VISITED;
    root->dependencies = 0;
    if (!list_push(&all, root)) {
        st = aqa_fail(AQA_ENOMEM, "aqa_backward: out of memory");
        goto cleanup;
    }
    for (int64_t k = 0; k < all.n; k++) {
        aqa_node *n = all.items[k];
        for (int i = 0; i < n->n_inputs; i++) {
            aqa_node *m = n->next[i];
            if (!m || !n->needs_grad[i]) continue;
            if (m->topo_next != VISITED) {
                m->topo_next = VISITED;
                m->dependencies = 0;
                if (!list_push(&all, m)) {
                    st = aqa_fail(AQA_ENOMEM, "aqa_backward: out of memory");
                    goto cleanup;
                }
            }
            m->dependencies++;
        }
    }

    /* pass 2: run nodes whose consumers have all delivered (Kahn's order) */
    accumulate_node(root, seed);
    list_push(&ready, root);
    while (ready.n > 0 && st == AQA_OK) {
        aqa_node *n = ready.items[--ready.n];
        if (n->released) {
            st = aqa_fail(AQA_ESTATE, "aqa_backward: node %s was already freed by an earlier backward; pass "
                          "retain_graph to backward twice", n->op);
            break;
        }
        if ((st = check_saved(n)) != AQA_OK) break;
        aqa_tensor *grad_in[AQA_NODE_MAX_INPUTS] = {0};
        aqa_scope_begin();
        if (n->grad_acc) {
            aqa_clear_error();
            n->backward(n, n->grad_acc, grad_in);
            for (int i = 0; i < n->n_inputs && st == AQA_OK; i++) {
                if (!n->needs_grad[i]) continue;
                if (!grad_in[i]) {
                    if (aqa_last_status() != AQA_OK)
                        st = aqa_fail(aqa_last_status(), "backward of %s failed: %s", n->op, aqa_last_error());
                    continue;
                }
                aqa_device dev = n->leaf[i] ? aqa_tensor_device(n->leaf[i]) : aqa_tensor_device(grad_in[i]);
                aqa_tensor *g = conform(grad_in[i], n, i, dev);
                if (!g) {
                    st = aqa_fail(aqa_last_status(), "backward of %s, input %d: %s", n->op, i, aqa_last_error());
                    break;
                }
                if (n->leaf[i]) st = accumulate_leaf(n->leaf[i], g, can_take(n->leaf[i], g, grad_in, n->n_inputs, i));
                else accumulate_node(n->next[i], g);
            }
        }
        aqa_scope_end();
        aqa__release(n->grad_acc);
        n->grad_acc = NULL;
        for (int i = 0; i < n->n_inputs; i++) {
            aqa_node *m = n->next[i];
            if (m && n->needs_grad[i] && --m->dependencies == 0) list_push(&ready, m);
        }
        if (!retain_graph) node_free_state(n);
    }

cleanup:
    for (int64_t k = 0; k < all.n; k++) {
        all.items[k]->topo_next = NULL;
        aqa__release(all.items[k]->grad_acc);
        all.items[k]->grad_acc = NULL;
    }
    free(all.items);
    free(ready.items);
done:
    aqa_scope_end();
    aqa_set_grad_enabled(prev);
    return st;
}
