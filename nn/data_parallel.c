/* data_parallel.c: the fixed-order gradient tree, replicas, and BatchNorm's running statistics
 * replayed in micro-batch order (see data_parallel.h for what holds).
 *
 * A node (level l, index j) of the tree covers micro-batches [j 2^l, (j + 1) 2^l) ∩ [0, K); its
 * value is left + right, or left alone where the right child covers nothing (past K).  Leaves
 * arrive in order, so a stack that merges two siblings as soon as both are there (a binary
 * counter) holds, after a rank's block [a, b), exactly the largest aligned nodes inside it.  Rank
 * 0 pushes the other ranks' nodes, in rank order, into the same stack and finishes the tree by
 * promoting a lonely left child to its parent: every rank count gives the same additions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "nn/batchnorm.h"
#include "nn/data_parallel.h"
#include "ops/ops.h"
#include "tensor/tensor-impl.h"

#define RNG_STRIDE (1ull << 32) /* generator blocks reserved for one micro-batch */
#define MAX_DEPTH 80            /* stack nodes: levels of a tree over < 2^62 leaves, plus slack */

typedef struct tree_node {
    int level;       /* l: covers 2^l micro-batches */
    int64_t index;   /* j: starting at micro-batch j 2^l */
    aqa_tensor *buf; /* the flat sum (owned) */
} tree_node;

/* A BatchNorm layer found in the models (its counter is replayed with its updates). */
typedef struct bn_entry {
    aqa_batch_norm_layer *layer; /* borrowed */
    int64_t nbt0;                /* num_batches_tracked when the step began */
} bn_entry;

struct aqa_ddp {
    aqa_dist *pg;                /* borrowed; NULL: one process */
    int rank, size;              /* in pg */
    aqa_ddp_options opts;
    aqa_tensor **params;         /* borrowed, in the optimizer's order */
    int n_params;
    int64_t *offset;             /* each parameter's start in the flat buffer */
    int64_t grad_n;              /* gradient elements; the flat buffer adds one presence flag per parameter */
    aqa_dtype dtype;
    aqa_device device;
    aqa_named_tensor *state;     /* every parameter and buffer of the models (replicas, BN lookups) */
    int n_state;
    bn_entry *bn;                /* BatchNorm layers of the models */
    int n_bn;
    /* the step */
    int K, k0, k1, next;         /* micro-batches, this rank's [k0, k1), the next expected */
    bool direct;                 /* K = 1 on one rank: gradients stay where backward put them */
    uint64_t rng0;               /* default generator offset when the step began */
    tree_node stack[MAX_DEPTH];
    int depth;
    aqa_tensor *shared;          /* aqa_ddp_keep_shared's gradients, or NULL */
    double *scalars;             /* [k1 - k0][n_scalars] weighted */
    double *rec;                 /* recorded BatchNorm statistics (see record()) */
    size_t n_rec, cap_rec;
    bool rec_failed;             /* a record could not be stored */
};

/* ---- set-up ----------------------------------------------------------------------------------- */

static void find_bn(aqa_ddp *d, aqa_module *m) {
    if (m->type && !strncmp(m->type, "BatchNorm", 9)) {
        bn_entry *p = realloc(d->bn, sizeof *p * (size_t)(d->n_bn + 1));
        if (p) {
            d->bn = p;
            d->bn[d->n_bn++] = (bn_entry){(aqa_batch_norm_layer *)m, 0};
        }
    }
    for (int i = 0; i < m->n_children; i++) find_bn(d, m->children[i]);
}

/* The group's collectives, or what they come to in a single process (pg NULL: one rank). */
static aqa_status ddp_broadcast(aqa_ddp *d, aqa_tensor *t) { return d->pg ? aqa_dist_broadcast(d->pg, t, 0) : AQA_OK; }

static aqa_status ddp_all_gather_bytes(aqa_ddp *d, const void *in, size_t n, void **out, size_t *sizes,
                                       size_t *total) {
    if (d->pg) return aqa_dist_all_gather_bytes(d->pg, in, n, out, sizes, total);
    if (!(*out = malloc(n + 1))) return aqa_fail(AQA_ENOMEM, "data parallel: out of memory");
    if (n) memcpy(*out, in, n);
    sizes[0] = *total = n;
    return AQA_OK;
}

aqa_ddp *aqa_ddp_new(aqa_dist *pg, aqa_module *const *models, int n_models, aqa_tensor *const *params, int n,
                     const aqa_ddp_options *opts) {
    if (!models || n_models < 1 || (n && !params) || n < 0) return aqa_fail_null("aqa_ddp_new: bad arguments");
    if (opts && (opts->n_scalars < 0 || opts->n_scalars > AQA_DDP_MAX_SCALARS))
        return aqa_fail_null("aqa_ddp_new: n_scalars must be 0..%d", AQA_DDP_MAX_SCALARS);
    aqa_ddp *d = calloc(1, sizeof *d);
    if (!d) return aqa_fail_null("aqa_ddp_new: out of memory");
    d->pg = pg;
    d->rank = aqa_dist_rank(pg);
    d->size = aqa_dist_size(pg);
    if (opts) d->opts = *opts;
    d->n_params = n;
    d->params = malloc(sizeof *d->params * (size_t)(n + 1));
    d->offset = malloc(sizeof *d->offset * (size_t)(n + 1));
    if (!d->params || !d->offset) {
        aqa_ddp_free(d);
        return aqa_fail_null("aqa_ddp_new: out of memory");
    }
    for (int i = 0; i < n; i++) {
        aqa_tensor *p = params[i];
        if (!p || !aqa_is_contiguous(p) || (i && (p->dtype != d->dtype || !aqa_device_equal(aqa_tensor_device(p), d->device)))) {
            aqa_ddp_free(d);
            return aqa_fail_null("aqa_ddp_new: parameter %d%s%s must be contiguous, of one dtype and on one device with the others",
                                 i, p && p->name ? " " : "", p && p->name ? p->name : "");
        }
        if (!i) d->dtype = p->dtype, d->device = aqa_tensor_device(p);
        d->params[i] = p;
        d->offset[i] = d->grad_n;
        d->grad_n += aqa_numel(p);
    }
    for (int m = 0; m < n_models; m++) {
        aqa_named_tensor *nt = NULL;
        int k = aqa_module_named_tensors(models[m], true, &nt);
        aqa_named_tensor *all = k < 0 ? NULL : realloc(d->state, sizeof *all * (size_t)(d->n_state + k + 1));
        if (!all) {
            if (k > 0) aqa_named_tensors_free(nt, k);
            aqa_ddp_free(d);
            return aqa_fail_null("aqa_ddp_new: cannot list the model's tensors");
        }
        d->state = all;
        memcpy(d->state + d->n_state, nt, sizeof *nt * (size_t)k);
        d->n_state += k;
        free(nt); /* the names now belong to d->state */
        find_bn(d, models[m]);
    }
    if (d->opts.sync_bn && d->size > 1) aqa_batch_norm_set_sync_group(pg);
    return d;
}

static void drop_step(aqa_ddp *d) {
    for (int i = 0; i < d->depth; i++) aqa_tensor_free(d->stack[i].buf);
    d->depth = 0;
    aqa_tensor_free(d->shared);
    d->shared = NULL;
    free(d->scalars);
    d->scalars = NULL;
    d->n_rec = 0;
    d->rec_failed = false;
    aqa_batch_norm_set_recorder(NULL, NULL);
}

void aqa_ddp_free(aqa_ddp *d) {
    if (!d) return;
    drop_step(d);
    if (d->opts.sync_bn) aqa_batch_norm_set_sync_group(NULL);
    if (d->state) aqa_named_tensors_free(d->state, d->n_state);
    free(d->params);
    free(d->offset);
    free(d->bn);
    free(d->rec);
    free(d);
}

/* ---- replicas ----------------------------------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
    return h;
}

aqa_status aqa_ddp_check_replicas(aqa_ddp *d, const char *when) {
    if (!d) return aqa_fail(AQA_EINVAL, "aqa_ddp_check_replicas: NULL");
    if (d->size == 1) return AQA_OK;
    int n = d->n_state + 1; /* the tensors, then the default generator */
    uint64_t *h = calloc((size_t)n, sizeof *h);
    if (!h) return aqa_fail(AQA_ENOMEM, "aqa_ddp_check_replicas: out of memory");
    aqa_status st = AQA_OK;
    h[d->n_state] = fnv(0xcbf29ce484222325ull, aqa_default_generator(), sizeof(aqa_generator));
    for (int i = 0; i < d->n_state && !st; i++) {
        aqa_tensor *t = d->state[i].tensor;
        size_t nb = (size_t)aqa_numel(t) * aqa_dtype_size(t->dtype);
        void *buf = malloc(nb + 1);
        if (!buf) st = aqa_fail(AQA_ENOMEM, "aqa_ddp_check_replicas: out of memory");
        else if (!(st = aqa_copy_to_host(t, buf, t->dtype))) h[i] = fnv(0xcbf29ce484222325ull, buf, nb);
        free(buf);
    }
    void *all = NULL;
    size_t sizes[1024], total = 0;
    if (!st && d->size > 1024) st = aqa_fail(AQA_EINVAL, "aqa_ddp_check_replicas: more than 1024 ranks");
    if (!st) st = ddp_all_gather_bytes(d, h, sizeof *h * (size_t)n, &all, sizes, &total);
    for (int r = 1; !st && r < d->size; r++) {
        const uint64_t *hr = (const uint64_t *)all + (size_t)r * (size_t)n;
        for (int i = 0; i < n && !st; i++)
            if (hr[i] != ((const uint64_t *)all)[i])
                st = aqa_fail(AQA_ESTATE, "data parallel: rank %d's \"%s\" differs from rank 0's (%s)", r,
                              i < d->n_state ? d->state[i].name : "default random generator", when);
    }
    free(all);
    free(h);
    return st;
}

aqa_status aqa_ddp_sync_model(aqa_ddp *d) {
    if (!d) return aqa_fail(AQA_EINVAL, "aqa_ddp_sync_model: NULL");
    if (d->size == 1) return AQA_OK;
    for (int i = 0; i < d->n_state; i++) {
        aqa_status st = ddp_broadcast(d, d->state[i].tensor);
        if (st) return st;
    }
    /* and the default generator (dropout draws from it) */
    aqa_generator *g = aqa_default_generator();
    aqa_tensor *gs = aqa__new_unowned(1, (int64_t[]){2}, AQA_I64, AQA_DEVICE_CPU);
    if (!gs) return aqa_last_status();
    int64_t *v = aqa_data(gs);
    memcpy(&v[0], &g->seed, sizeof g->seed);
    memcpy(&v[1], &g->offset, sizeof g->offset);
    aqa_status st = ddp_broadcast(d, gs);
    memcpy(&g->seed, &v[0], sizeof g->seed);
    memcpy(&g->offset, &v[1], sizeof g->offset);
    aqa__release(gs);
    return st ? st : aqa_ddp_check_replicas(d, "after copying rank 0's model");
}

/* ---- micro-batches ------------------------------------------------------------------------------ */

int aqa_ddp_num_micro(int64_t rows, int64_t micro_batch) {
    if (rows <= 0) return 0;
    if (micro_batch <= 0 || micro_batch >= rows) return 1;
    return (int)((rows + micro_batch - 1) / micro_batch);
}

void aqa_ddp_micro_range(int K, int rank, int size, int *k0, int *k1) {
    *k0 = (int)((int64_t)rank * K / size);
    *k1 = (int)((int64_t)(rank + 1) * K / size);
}

/* BatchNorm record layout (doubles): running_mean's index in d->state, running_var's, momentum,
 * var_scale, C, then C means and C variances. */
static int state_index(aqa_ddp *d, const aqa_tensor *t) {
    for (int i = 0; i < d->n_state; i++)
        if (d->state[i].tensor == t) return i;
    return -1;
}

static void record(void *user, aqa_tensor *rm, aqa_tensor *rv, const aqa_tensor *mean, const aqa_tensor *var,
                   double var_scale, double momentum) {
    aqa_ddp *d = user;
    int64_t c = aqa_numel(mean);
    size_t need = d->n_rec + 5 + 2 * (size_t)c;
    if (need > d->cap_rec) {
        size_t cap = need * 2;
        double *p = realloc(d->rec, cap * sizeof *p);
        if (!p) {
            d->rec_failed = true;
            return;
        }
        d->rec = p;
        d->cap_rec = cap;
    }
    double *r = d->rec + d->n_rec;
    r[0] = state_index(d, rm);
    r[1] = state_index(d, rv);
    r[2] = momentum;
    r[3] = var_scale;
    r[4] = (double)c;
    if (r[0] < 0 || r[1] < 0 || aqa_copy_to_host(mean, r + 5, AQA_F64) || aqa_copy_to_host(var, r + 5 + c, AQA_F64)) {
        d->rec_failed = true;
        return;
    }
    d->n_rec = need;
}

aqa_status aqa_ddp_step_begin(aqa_ddp *d, int K) {
    if (!d) return aqa_fail(AQA_EINVAL, "aqa_ddp_step_begin: NULL");
    if (K < 1) return aqa_fail(AQA_EINVAL, "aqa_ddp_step_begin: %d micro-batches", K);
    if (d->opts.sync_bn && d->size > 1 && K != d->size)
        return aqa_fail(AQA_EINVAL, "data parallel: sync_bn needs one micro-batch per rank (the batch cut into %d "
                                    "micro-batches for %d ranks): micro_batch = batch / ranks",
                        K, d->size);
    drop_step(d);
    d->K = K;
    aqa_ddp_micro_range(K, d->rank, d->size, &d->k0, &d->k1);
    d->next = d->k0;
    d->direct = K == 1 && d->size == 1;
    d->rng0 = aqa_default_generator()->offset;
    for (int i = 0; i < d->n_params; i++) aqa_zero_grad(d->params[i]);
    if (d->opts.n_scalars) {
        d->scalars = calloc((size_t)(d->k1 - d->k0) * (size_t)d->opts.n_scalars + 1, sizeof *d->scalars);
        if (!d->scalars) return aqa_fail(AQA_ENOMEM, "aqa_ddp_step_begin: out of memory");
    }
    for (int i = 0; i < d->n_bn; i++) {
        aqa_tensor *nbt = d->bn[i].layer->num_batches_tracked;
        d->bn[i].nbt0 = nbt ? (int64_t)aqa_item(nbt) : 0;
    }
    if (!d->direct && !(d->opts.sync_bn && d->size > 1)) aqa_batch_norm_set_recorder(record, d);
    return AQA_OK;
}

aqa_status aqa_ddp_micro_begin(aqa_ddp *d, int k) {
    if (!d || k < d->k0 || k >= d->k1)
        return aqa_fail(AQA_ESTATE, "aqa_ddp_micro_begin: micro-batch %d is not this rank's (it computes [%d, %d))", k,
                        d ? d->k0 : 0, d ? d->k1 : 0);
    if (d->K > 1) aqa_default_generator()->offset = d->rng0 + (uint64_t)k * RNG_STRIDE;
    return AQA_OK;
}

/* A flat buffer [grad_n + n_params] (caller-owned) from the parameters' gradients (zeros and
 * flag 0 where none), which are dropped. */
static aqa_tensor *take_grads(aqa_ddp *d) {
    int64_t n = d->grad_n + d->n_params;
    aqa_tensor *flat = aqa__new_unowned(1, &n, d->dtype, d->device);
    double *flags = malloc(sizeof *flags * (size_t)(d->n_params + 1));
    if (!flat || !flags) {
        if (flat) aqa__release(flat);
        free(flags);
        return aqa_fail_null("data parallel: out of memory for the gradient buffer (%lld elements)", (long long)n);
    }
    aqa_status st = AQA_OK;
    aqa_scope_begin();
    for (int i = 0; i < d->n_params && !st; i++) {
        aqa_tensor *p = d->params[i], *slot = aqa_narrow(flat, 0, d->offset[i], aqa_numel(p));
        flags[i] = p->grad != NULL;
        st = p->grad ? aqa_copy_(aqa_view(slot, p->ndim, p->shape), p->grad) : aqa_zero_(slot);
        aqa_zero_grad(p);
    }
    if (!st && d->n_params) {
        aqa_tensor *f = aqa_from_data(flags, 1, (int64_t[]){d->n_params}, AQA_F64);
        st = f ? aqa_copy_(aqa_narrow(flat, 0, d->grad_n, d->n_params), f) : aqa_last_status();
    }
    aqa_scope_end();
    free(flags);
    if (st) {
        aqa__release(flat);
        return NULL;
    }
    return flat;
}

/* The two top nodes (siblings) become their parent: left += right. */
static aqa_status merge_top(aqa_ddp *d) {
    tree_node *t = &d->stack[d->depth - 1], *s = &d->stack[d->depth - 2];
    aqa_status st = aqa_add_(s->buf, t->buf, 1.0);
    aqa_tensor_free(t->buf);
    d->depth--;
    s->level++;
    s->index >>= 1;
    return st;
}

/* Pushes node (level, index) and merges siblings. */
static aqa_status push(aqa_ddp *d, int level, int64_t index, aqa_tensor *buf) {
    if (d->depth == MAX_DEPTH) {
        aqa__release(buf);
        return aqa_fail(AQA_ESTATE, "data parallel: gradient tree too deep");
    }
    d->stack[d->depth++] = (tree_node){level, index, buf};
    while (d->depth >= 2) {
        tree_node *t = &d->stack[d->depth - 1], *s = &d->stack[d->depth - 2];
        if (s->level != t->level || (t->index & 1) == 0 || s->index != t->index - 1) break;
        aqa_status st = merge_top(d);
        if (st) return st;
    }
    return AQA_OK;
}

aqa_status aqa_ddp_micro_end(aqa_ddp *d, int k, double weight, const double *scalars) {
    if (!d || k != d->next || k >= d->k1)
        return aqa_fail(AQA_ESTATE, "aqa_ddp_micro_end: micro-batch %d out of order", k);
    if (!(weight > 0)) return aqa_fail(AQA_EINVAL, "aqa_ddp_micro_end: weight %g must be positive", weight);
    if (d->rec_failed) return aqa_fail(AQA_ENOMEM, "data parallel: BatchNorm statistics could not be recorded");
    d->next++;
    for (int s = 0; s < d->opts.n_scalars; s++) d->scalars[(size_t)(k - d->k0) * (size_t)d->opts.n_scalars + (size_t)s] = weight * scalars[s];
    if (d->direct) {
        /* one micro-batch on one rank: the backward's gradients are the step's */
        for (int i = 0; weight != 1.0 && i < d->n_params; i++)
            if (d->params[i]->grad) {
                aqa_status st = aqa_mul_scalar_(d->params[i]->grad, weight);
                if (st) return st;
            }
        return AQA_OK;
    }
    aqa_tensor *leaf = take_grads(d);
    if (!leaf) return aqa_last_status();
    if (weight != 1.0) {
        aqa_scope_begin();
        aqa_status st = aqa_mul_scalar_(aqa_narrow(leaf, 0, 0, d->grad_n), weight);
        aqa_scope_end();
        if (st) {
            aqa__release(leaf);
            return st;
        }
    }
    return push(d, 0, k, leaf);
}

aqa_status aqa_ddp_keep_shared(aqa_ddp *d) {
    if (!d) return aqa_fail(AQA_EINVAL, "aqa_ddp_keep_shared: NULL");
    aqa_tensor *f = take_grads(d);
    if (!f) return aqa_last_status();
    if (d->shared) {
        aqa_status st = aqa_add_(d->shared, f, 1.0);
        aqa__release(f);
        return st;
    }
    d->shared = f;
    return AQA_OK;
}

/* ---- the end of a step ------------------------------------------------------------------------ */

/* The aligned nodes covering [a, b), left to right (what a rank's stack holds). */
static int decompose(int64_t a, int64_t b, int *level, int64_t *index) {
    int n = 0;
    while (a < b) {
        int l = 0;
        while (l < 62 && (a & (((int64_t)2 << l) - 1)) == 0 && a + ((int64_t)2 << l) <= b) l++;
        level[n] = l;
        index[n] = a >> l;
        n++;
        a += (int64_t)1 << l;
    }
    return n;
}

/* Rank 0: the other ranks' nodes, in order, then the tree's end; the root in *root. */
static aqa_status reduce_at_root(aqa_ddp *d, aqa_tensor **root) {
    int64_t n = d->grad_n + d->n_params;
    for (int r = 1; r < d->size; r++) {
        int a, b, lv[MAX_DEPTH];
        int64_t ix[MAX_DEPTH];
        aqa_ddp_micro_range(d->K, r, d->size, &a, &b);
        int m = decompose(a, b, lv, ix);
        for (int i = 0; i < m; i++) {
            aqa_tensor *buf = aqa__new_unowned(1, &n, d->dtype, d->device);
            if (!buf) return aqa_last_status();
            aqa_status st = aqa_dist_recv(d->pg, buf, r);
            if (!st) st = push(d, lv[i], ix[i], buf);
            else aqa__release(buf);
            if (st) return st;
        }
    }
    /* a lonely left child stands for its parent (its right sibling covers nothing) */
    while (d->depth >= 2) {
        tree_node *t = &d->stack[d->depth - 1], *s = &d->stack[d->depth - 2];
        if (s->level == t->level) {
            aqa_status st = merge_top(d);
            if (st) return st;
        } else {
            t->level++;
            t->index >>= 1;
        }
    }
    if (d->depth != 1) return aqa_fail(AQA_ESTATE, "data parallel: no micro-batch in the step");
    *root = d->stack[0].buf;
    d->depth = 0;
    return AQA_OK;
}

/* Parameters' .grad from the flat sum. */
static aqa_status put_grads(aqa_ddp *d, aqa_tensor *flat) {
    double *flags = malloc(sizeof *flags * (size_t)(d->n_params + 1));
    if (!flags) return aqa_fail(AQA_ENOMEM, "data parallel: out of memory");
    aqa_status st = AQA_OK;
    aqa_scope_begin();
    if (d->n_params) st = aqa_copy_to_host(aqa_narrow(flat, 0, d->grad_n, d->n_params), flags, AQA_F64);
    for (int i = 0; i < d->n_params && !st; i++) {
        aqa_tensor *p = d->params[i];
        aqa_zero_grad(p);
        if (flags[i] == 0) continue;
        aqa_tensor *g = aqa__new_unowned(p->ndim, p->shape, p->dtype, d->device);
        if (!g) {
            st = aqa_last_status();
            break;
        }
        st = aqa_copy_(g, aqa_view(aqa_narrow(flat, 0, d->offset[i], aqa_numel(p)), p->ndim, p->shape));
        p->grad = g;
    }
    aqa_scope_end();
    free(flags);
    return st;
}

/* Every rank's BatchNorm records, replayed in micro-batch order from the step's start. */
static aqa_status replay_bn(aqa_ddp *d) {
    void *all = NULL;
    size_t sizes[1024], total = 0;
    if (d->size > 1024) return aqa_fail(AQA_EINVAL, "data parallel: more than 1024 ranks");
    aqa_status st = ddp_all_gather_bytes(d, d->rec, d->n_rec * sizeof *d->rec, &all, sizes, &total);
    if (st) return st;
    for (int i = 0; i < d->n_bn && !st; i++)
        if (d->bn[i].layer->num_batches_tracked) st = aqa_fill_(d->bn[i].layer->num_batches_tracked, (double)d->bn[i].nbt0);
    const double *r = all, *end = (const double *)((const char *)all + total);
    while (!st && r < end) {
        int im = (int)r[0], iv = (int)r[1];
        int64_t c = (int64_t)r[4];
        double momentum = r[2];
        aqa_tensor *rm = d->state[im].tensor, *rv = d->state[iv].tensor;
        for (int i = 0; i < d->n_bn; i++) {
            aqa_batch_norm_layer *L = d->bn[i].layer;
            if (L->running_mean != rm || !L->num_batches_tracked) continue;
            double nbt = aqa_item(L->num_batches_tracked) + 1;
            st = aqa_fill_(L->num_batches_tracked, nbt);
            if (isnan(L->momentum)) momentum = 1.0 / nbt; /* cumulative average: the global count */
        }
        aqa_scope_begin();
        aqa_tensor *m = aqa_to_device(aqa_to_dtype(aqa_from_data(r + 5, 1, &c, AQA_F64), rm->dtype), aqa_tensor_device(rm));
        aqa_tensor *v = aqa_to_device(aqa_to_dtype(aqa_from_data(r + 5 + c, 1, &c, AQA_F64), rv->dtype), aqa_tensor_device(rv));
        if (!st) st = m && v ? aqa_batch_norm_update_running(rm, rv, m, v, r[3], momentum) : aqa_last_status();
        aqa_scope_end();
        r += 5 + 2 * c;
    }
    free(all);
    return st;
}

aqa_status aqa_ddp_step_end(aqa_ddp *d, double *sums) {
    if (!d) return aqa_fail(AQA_EINVAL, "aqa_ddp_step_end: NULL");
    aqa_batch_norm_set_recorder(NULL, NULL);
    if (d->next != d->k1)
        return aqa_fail(AQA_ESTATE, "aqa_ddp_step_end: micro-batches [%d, %d) of this rank were not all computed", d->k0,
                        d->k1);
    if (d->rec_failed) return aqa_fail(AQA_ENOMEM, "data parallel: BatchNorm statistics could not be recorded");
    aqa_status st = AQA_OK;
    if (d->direct) {
        if (d->shared) {
            aqa_tensor *mine = take_grads(d);
            st = mine ? aqa_add_(mine, d->shared, 1.0) : aqa_last_status();
            if (!st) st = put_grads(d, mine);
            if (mine) aqa__release(mine);
        }
    } else {
        aqa_tensor *root = NULL;
        if (d->rank == 0) {
            st = reduce_at_root(d, &root);
            if (!st && d->shared) st = aqa_add_(root, d->shared, 1.0);
        } else {
            for (int i = 0; i < d->depth && !st; i++) st = aqa_dist_send(d->pg, d->stack[i].buf, 0);
            int64_t n = d->grad_n + d->n_params;
            if (!st && !(root = aqa__new_unowned(1, &n, d->dtype, d->device))) st = aqa_last_status();
        }
        if (!st) st = ddp_broadcast(d, root);
        if (!st) st = put_grads(d, root);
        if (root) aqa__release(root);
        if (!st) st = replay_bn(d);
        if (d->K > 1) aqa_default_generator()->offset = d->rng0 + (uint64_t)d->K * RNG_STRIDE;
    }
    /* the micro-batches' scalars in order */
    int S = d->opts.n_scalars;
    if (!st && S && sums) {
        void *all = NULL;
        size_t sizes[1024], total = 0;
        if (d->size > 1024) st = aqa_fail(AQA_EINVAL, "data parallel: more than 1024 ranks");
        if (!st)
            st = ddp_all_gather_bytes(d, d->scalars, sizeof(double) * (size_t)(d->k1 - d->k0) * (size_t)S, &all,
                                           sizes, &total);
        if (!st) {
            const double *v = all;
            size_t rows = total / (sizeof(double) * (size_t)S);
            for (int s = 0; s < S; s++) sums[s] = 0;
            for (size_t k = 0; k < rows; k++)
                for (int s = 0; s < S; s++) sums[s] += v[k * (size_t)S + (size_t)s];
        }
        free(all);
    }
    drop_step(d);
    return st;
}
