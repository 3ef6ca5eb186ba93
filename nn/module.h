/* module.h: modules with named parameters and buffers, as torch.nn.Module.
 *
 * A module is a struct whose first member is `aqa_module base`; the base holds its type name, its
 * name inside the parent, its children and its tensors.  Dotted full names ("blocks.0.attn.
 * in_proj_weight", "bn.running_mean") are built from the tree exactly as PyTorch's state_dict
 * keys, so weights move between the two unchanged.
 *
 *     ```c run
 *     typedef struct { aqa_module base; aqa_linear_layer *fc1, *fc2; } mlp;
 *     mlp *m = aqa_module_new(sizeof *m, "MLP", NULL, "", NULL);
 *     m->fc1 = aqa_linear_layer_new(&m->base, "fc1", 4, 16, true);   // fc1.weight, fc1.bias
 *     m->fc2 = aqa_linear_layer_new(&m->base, "fc2", 16, 1, true);
 *     aqa_scope_begin();
 *     aqa_tensor *x = aqa_randn(AQA_SHAPE(8, 4), AQA_F32, NULL);
 *     aqa_tensor *y = aqa_linear_layer_forward(m->fc2, aqa_relu(aqa_linear_layer_forward(m->fc1, x)));
 *     if (!y) return 1;                                              // y: [8, 1]
 *     aqa_scope_end();
 *     aqa_module_free(&m->base);   // frees children and all parameters
 *     ```
 *
 * Names are checked when registered: a child, parameter or buffer name must be non-empty, without
 * '.', and unique within its module (they become state_dict keys); a bad one fails there, naming
 * the module path.  Registered tensors are named after their key ("fc1.weight"), which error
 * messages use.
 *
 * Parameters and buffers belong to their module (never to a scope), whatever scope is open when
 * they are registered. */
#ifndef AQA_MODULE_H
#define AQA_MODULE_H

#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aqa_module aqa_module;

typedef struct aqa_module_entry {
    char *name;         /* local name ("weight") */
    aqa_tensor *tensor; /* owned by the module; NULL for an optional absent one (bias=False) */
    bool is_buffer;     /* buffer (running_mean): saved, never trained */
} aqa_module_entry;

struct aqa_module {
    const char *type;            /* class name for messages ("Linear"); static string */
    char *name;                  /* name inside the parent ("fc1", "0"); "" for a root */
    aqa_module *parent;          /* enclosing module, NULL for a root */
    aqa_module **children;       /* sub-modules in registration order */
    int n_children, cap_children;
    aqa_module_entry *entries;   /* parameters and buffers in registration order */
    int n_entries, cap_entries;
    bool training;               /* train (true, the default) or eval mode */
    bool indexed;                /* children are named 0, 1, ... (ModuleList, Sequential) */
    /* frees the layer's own extra state (not its entries or children); may be NULL */
    void (*destroy)(aqa_module *m);
    /* the one-tensor forward (x -> y) used by aqa_module_forward and Sequential, or NULL for a
     * module without one (attention takes three inputs); set it with AQA_MODULE_FORWARD */
    aqa_tensor *(*forward)(aqa_module *m, aqa_tensor *x);
};

/* Allocates a zeroed module struct of `size` bytes (>= sizeof(aqa_module)), names it and adds it
 * to parent's children (parent may be NULL).  Returns it as void * for the caller's struct.
 * Under an indexed parent (ModuleList, Sequential: nn/container.h) the name is the child's
 * index: pass NULL (or the index itself). */
void *aqa_module_new(size_t size, const char *type, aqa_module *parent, const char *name,
                     void (*destroy)(aqa_module *m));
/* Frees a module tree (children first), its parameters and buffers.  NULL is fine.  A child is
 * freed through its root: call this on roots only. */
void aqa_module_free(aqa_module *m);

/* Registers a parameter (requires_grad set) or buffer, taking ownership of `t` (moved out of
 * any scope).  t may be NULL to register an absent optional tensor.  Returns t, or NULL when the
 * name is bad (see below) or memory runs out: t then stays with its owner. */
aqa_tensor *aqa_module_param(aqa_module *m, const char *name, aqa_tensor *t);
aqa_tensor *aqa_module_buffer(aqa_module *m, const char *name, aqa_tensor *t);
/* Replaces the tensor of an entry (frees the old one).  Returns AQA_EINVAL if absent. */
aqa_status aqa_module_set(aqa_module *m, const char *name, aqa_tensor *t);
/* A plain module without parameters of its own that groups named children (a Python attribute
 * holding sub-modules); nn/container.h has ModuleList, ModuleDict and Sequential. */
aqa_module *aqa_module_container(aqa_module *parent, const char *name);

/* Runs m's one-tensor forward (m->forward); fails naming the module when it has none. */
aqa_tensor *aqa_module_forward(aqa_module *m, aqa_tensor *x);
/* Defines `static aqa_tensor *name(aqa_module *m, aqa_tensor *x)` calling fn((type *)m, x): the
 * generic forward a module stores in base.forward (the layers of nn/ do; so can yours):
 *     AQA_MODULE_FORWARD(mlp_forward_any, mlp, mlp_forward)   ...   m->base.forward = mlp_forward_any; */
#define AQA_MODULE_FORWARD(name, type, fn) \
    static aqa_tensor *name(aqa_module *m, aqa_tensor *x) { return fn((type *)m, x); }

/* Full dotted name of a module ("blocks.0.attn"), malloc'd. */
char *aqa_module_path(const aqa_module *m);
/* Finds a descendant by dotted path, or NULL. */
aqa_module *aqa_module_find(aqa_module *m, const char *path);
/* Finds a parameter/buffer by dotted name relative to m, or NULL. */
aqa_tensor *aqa_module_get(aqa_module *m, const char *name);

/* ---- iteration ------------------------------------------------------------------------ */
typedef struct aqa_named_tensor {
    char *name;         /* full dotted name relative to the module asked (malloc'd) */
    aqa_tensor *tensor; /* borrowed */
    bool is_buffer;
} aqa_named_tensor;

/* All present parameters (and buffers when include_buffers) in state_dict order: a module's own
 * entries first, then each child's recursively.  Returns the count (-1 on error); free the
 * array with aqa_named_tensors_free. */
int aqa_module_named_tensors(aqa_module *m, bool include_buffers, aqa_named_tensor **out);
void aqa_named_tensors_free(aqa_named_tensor *list, int n);
/* Parameters only, trainable ones only (requires_grad), as a malloc'd array of borrowed
 * pointers (for optimizers). */
int aqa_module_parameters(aqa_module *m, aqa_tensor ***out);
/* Number of parameter elements (trainable_only: those with requires_grad). */
int64_t aqa_module_num_params(aqa_module *m, bool trainable_only);

/* ---- modes ---------------------------------------------------------------------------- */
void aqa_module_train(aqa_module *m, bool training); /* recursive, as module.train(mode) */
/* Freezes (false) or unfreezes (true) every parameter of the sub-tree. */
void aqa_module_requires_grad(aqa_module *m, bool requires_grad);
void aqa_module_zero_grad(aqa_module *m);
/* Moves every parameter and buffer to a device (in place: the entries are replaced). */
aqa_status aqa_module_to(aqa_module *m, aqa_device device);
/* Converts every floating parameter and buffer to a floating dtype, in place (as module.to(dtype):
 * integer buffers stay; gradients are dropped). */
aqa_status aqa_module_to_dtype(aqa_module *m, aqa_dtype dtype);

/* ---- weights files (safetensors) -------------------------------------------------------- */
typedef struct aqa_load_report {
    int n_loaded;           /* tensors copied */
    int n_missing;          /* module tensors absent from the file */
    int n_unexpected;       /* file tensors with no module tensor */
    int n_mismatched;       /* same name, different shape */
    char text[4096];        /* human-readable list (truncated if very long) */
} aqa_load_report;

/* Maps a file's tensor name to the module's name (malloc'd), or NULL to skip the tensor.  Lets a
 * loader accept another naming (Hugging Face CLIP, a "module." prefix). */
typedef char *(*aqa_name_map_fn)(const char *file_name, void *user);

/* Copies tensors from a safetensors file into the module (converting dtypes: F16/BF16/F64 to
 * F32, ...).  strict: any missing, unexpected or mis-shaped tensor is an error (and nothing is
 * changed); non-strict: matching tensors load and the rest is reported.  map may be NULL. */
aqa_status aqa_module_load(aqa_module *m, const char *path, bool strict, aqa_name_map_fn map, void *user,
                           aqa_load_report *report);
/* Writes all parameters and buffers (state_dict) to a safetensors file atomically; metadata is
 * n_meta key/value pairs (may be 0). */
aqa_status aqa_module_save(aqa_module *m, const char *path, int n_meta, const char *const *meta_keys,
                           const char *const *meta_values);

#ifdef __cplusplus
}
#endif

#endif /* AQA_MODULE_H */
