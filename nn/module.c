/* module.c: the module tree, named parameters and buffers, modes, and weights files. */
#include "nn/module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "ops/ops.h"
#include "tensor/tensor_file.h"
#include "tensor/tensor-impl.h"

/* Whether m already uses `name` for a child or an entry (they share one namespace, as the
 * attributes of a torch module: state_dict keys stay unique). */
static bool name_taken(const aqa_module *m, const char *name) {
    for (int i = 0; i < m->n_children; i++)
        if (strcmp(m->children[i]->name, name) == 0) return true;
    for (int i = 0; i < m->n_entries; i++)
        if (strcmp(m->entries[i].name, name) == 0) return true;
    return false;
}

/* Checks that `name` can be registered in m as a `what` ("child", "parameter", "buffer"): not
 * empty, no '.', not taken.  The mistake shows here, naming the module path, not at save time. */
static bool name_ok(const aqa_module *m, const char *name, const char *what) {
    const char *why = !name || !*name ? "is empty" : strchr(name, '.') ? "contains '.'" : name_taken(m, name) ? "is already taken" : NULL;
    if (!why) return true;
    char *path = aqa_module_path(m);
    aqa_fail(AQA_EINVAL, "module %s%s(%s): %s name \"%s\" %s (child, parameter and buffer names must be unique, "
             "non-empty and without '.')", path && *path ? path : "", path && *path ? " " : "", m->type, what,
             name ? name : "", why);
    free(path);
    return false;
}

/* Checks a child's name under an indexed parent (it must be the next index, or NULL for it) and
 * writes the name to use into idx. */
static bool index_name(const aqa_module *parent, const char *name, char idx[16]) {
    snprintf(idx, 16, "%d", parent->n_children);
    if (!name || strcmp(name, idx) == 0) return true;
    char *path = aqa_module_path(parent);
    aqa_fail(AQA_EINVAL, "module %s%s(%s): child name \"%s\" given, but the children of a %s are named by their "
             "index (pass NULL for \"%s\")", path && *path ? path : "", path && *path ? " " : "", parent->type, name,
             parent->type, idx);
    free(path);
    return false;
}

void *aqa_module_new(size_t size, const char *type, aqa_module *parent, const char *name,
                     void (*destroy)(aqa_module *m)) {
    if (size < sizeof(aqa_module)) return aqa_fail_null("aqa_module_new: size %zu is smaller than aqa_module", size);
    char idx[16];
    if (parent && parent->indexed && !index_name(parent, name, idx)) return NULL;
    if (parent && parent->indexed) name = idx;
    if (parent && !name_ok(parent, name, "child")) return NULL;
    aqa_module *m = calloc(1, size);
    if (!m) return aqa_fail_null("out of memory creating module %s", type);
    m->type = type;
    m->name = strdup(name ? name : "");
    m->training = true;
    m->destroy = destroy;
    if (parent) {
        if (parent->n_children == parent->cap_children) {
            int cap = parent->cap_children ? parent->cap_children * 2 : 4;
            aqa_module **c = realloc(parent->children, sizeof *c * (size_t)cap);
            if (!c) {
                free(m->name);
                free(m);
                return aqa_fail_null("out of memory adding module %s", name);
            }
            parent->children = c;
            parent->cap_children = cap;
        }
        parent->children[parent->n_children++] = m;
        m->parent = parent;
        m->training = parent->training;
    }
    return m;
}

void aqa_module_free(aqa_module *m) {
    if (!m) return;
    for (int i = 0; i < m->n_children; i++) {
        m->children[i]->parent = NULL;
        aqa_module_free(m->children[i]);
    }
    if (m->destroy) m->destroy(m);
    for (int i = 0; i < m->n_entries; i++) {
        free(m->entries[i].name);
        aqa__release(m->entries[i].tensor);
    }
    free(m->entries);
    free(m->children);
    free(m->name);
    free(m);
}

/* Names an unnamed tensor after its entry's full dotted name ("fc1.weight"), so that error
 * messages (autograd, optimizers, init) say which parameter they mean. */
static void name_tensor(const aqa_module *m, const char *name, aqa_tensor *t) {
    if (!t || t->name) return;
    char *path = aqa_module_path(m);
    if (!path) return;
    size_t len = strlen(path) + strlen(name) + 2;
    char *full = malloc(len);
    if (full) snprintf(full, len, "%s%s%s", path, *path ? "." : "", name);
    t->name = full;
    free(path);
}

static aqa_tensor *add_entry(aqa_module *m, const char *name, aqa_tensor *t, bool is_buffer) {
    if (!m || !name_ok(m, name, is_buffer ? "buffer" : "parameter")) return NULL; /* t stays the caller's */
    char *copy = strdup(name);
    if (m->n_entries == m->cap_entries) {
        int cap = m->cap_entries ? m->cap_entries * 2 : 4;
        aqa_module_entry *e = realloc(m->entries, sizeof *e * (size_t)cap);
        if (e) {
            m->entries = e;
            m->cap_entries = cap;
        }
    }
    if (!copy || m->n_entries == m->cap_entries) {
        free(copy);
        return aqa_fail_null("out of memory registering %s", name);
    }
    if (t) {
        aqa__disown(t); /* the module now holds the owner's reference */
        if (!is_buffer && aqa_dtype_is_float(t->dtype)) t->requires_grad = true;
        name_tensor(m, name, t);
    }
    m->entries[m->n_entries++] = (aqa_module_entry){.name = copy, .tensor = t, .is_buffer = is_buffer};
    return t;
}

aqa_tensor *aqa_module_param(aqa_module *m, const char *name, aqa_tensor *t) { return add_entry(m, name, t, false); }
aqa_tensor *aqa_module_buffer(aqa_module *m, const char *name, aqa_tensor *t) { return add_entry(m, name, t, true); }

aqa_status aqa_module_set(aqa_module *m, const char *name, aqa_tensor *t) {
    for (int i = 0; i < m->n_entries; i++) {
        if (strcmp(m->entries[i].name, name) != 0) continue;
        aqa_tensor *old = m->entries[i].tensor;
        if (t) {
            aqa__disown(t);
            if (!m->entries[i].is_buffer && aqa_dtype_is_float(t->dtype))
                t->requires_grad = old ? old->requires_grad : true;
            name_tensor(m, name, t);
        }
        m->entries[i].tensor = t;
        aqa__release(old);
        return AQA_OK;
    }
    return aqa_fail(AQA_EINVAL, "module %s has no parameter or buffer named %s", m->type, name);
}

aqa_module *aqa_module_container(aqa_module *parent, const char *name) {
    return aqa_module_new(sizeof(aqa_module), "Module", parent, name, NULL);
}

aqa_tensor *aqa_module_forward(aqa_module *m, aqa_tensor *x) {
    if (!m) return aqa_fail_null("aqa_module_forward: NULL module");
    if (m->forward) return m->forward(m, x);
    char *path = aqa_module_path(m);
    aqa_fail(AQA_EINVAL, "aqa_module_forward: module %s%s(%s) has no one-tensor forward (set base.forward with "
             "AQA_MODULE_FORWARD, or call its own forward function)", path && *path ? path : "", path && *path ? " " : "",
             m->type);
    free(path);
    return NULL;
}

char *aqa_module_path(const aqa_module *m) {
    size_t len = 1;
    for (const aqa_module *p = m; p && p->parent; p = p->parent) len += strlen(p->name) + 1;
    char *s = malloc(len);
    if (!s) return NULL;
    s[len - 1] = '\0';
    size_t pos = len - 1;
    for (const aqa_module *p = m; p && p->parent; p = p->parent) {
        size_t n = strlen(p->name);
        pos -= n;
        memcpy(s + pos, p->name, n);
        if (p->parent->parent) s[--pos] = '.'; /* a separator before every named ancestor */
    }
    memmove(s, s + pos, len - pos);
    return s;
}

aqa_module *aqa_module_find(aqa_module *m, const char *path) {
    while (m && path && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        aqa_module *next = NULL;
        for (int i = 0; i < m->n_children && !next; i++)
            if (strlen(m->children[i]->name) == n && strncmp(m->children[i]->name, path, n) == 0) next = m->children[i];
        m = next;
        path = dot ? dot + 1 : NULL;
    }
    return m;
}

aqa_tensor *aqa_module_get(aqa_module *m, const char *name) {
    const char *dot = strrchr(name, '.');
    aqa_module *owner = m;
    if (dot) {
        char *prefix = strndup(name, (size_t)(dot - name));
        owner = prefix ? aqa_module_find(m, prefix) : NULL;
        free(prefix);
    }
    const char *local = dot ? dot + 1 : name;
    for (int i = 0; owner && i < owner->n_entries; i++)
        if (strcmp(owner->entries[i].name, local) == 0) return owner->entries[i].tensor;
    return NULL;
}

/* ---- iteration ------------------------------------------------------------------------------ */

typedef struct {
    aqa_named_tensor *items;
    int n, cap;
    bool include_buffers;
    bool include_absent;
    bool failed;
} collect_ctx;

static void collect(aqa_module *m, const char *prefix, collect_ctx *c) {
    for (int i = 0; i < m->n_entries && !c->failed; i++) {
        aqa_module_entry *e = &m->entries[i];
        if ((!e->tensor && !c->include_absent) || (e->is_buffer && !c->include_buffers)) continue;
        if (c->n == c->cap) {
            int cap = c->cap ? c->cap * 2 : 64;
            aqa_named_tensor *it = realloc(c->items, sizeof *it * (size_t)cap);
            if (!it) {
                c->failed = true;
                return;
            }
            c->items = it;
            c->cap = cap;
        }
        size_t len = strlen(prefix) + strlen(e->name) + 2;
        char *name = malloc(len);
        if (!name) {
            c->failed = true;
            return;
        }
        snprintf(name, len, "%s%s%s", prefix, *prefix ? "." : "", e->name);
        c->items[c->n++] = (aqa_named_tensor){.name = name, .tensor = e->tensor, .is_buffer = e->is_buffer};
    }
    for (int i = 0; i < m->n_children && !c->failed; i++) {
        size_t len = strlen(prefix) + strlen(m->children[i]->name) + 2;
        char *p = malloc(len);
        if (!p) {
            c->failed = true;
            return;
        }
        snprintf(p, len, "%s%s%s", prefix, *prefix ? "." : "", m->children[i]->name);
        collect(m->children[i], p, c);
        free(p);
    }
}

static int collect_all(aqa_module *m, bool include_buffers, bool include_absent, aqa_named_tensor **out) {
    collect_ctx c = {.include_buffers = include_buffers, .include_absent = include_absent};
    collect(m, "", &c);
    if (c.failed) {
        aqa_named_tensors_free(c.items, c.n);
        aqa_fail(AQA_ENOMEM, "out of memory listing the tensors of module %s", m->type);
        return -1;
    }
    *out = c.items;
    return c.n;
}

int aqa_module_named_tensors(aqa_module *m, bool include_buffers, aqa_named_tensor **out) {
    return collect_all(m, include_buffers, false, out);
}

void aqa_named_tensors_free(aqa_named_tensor *list, int n) {
    for (int i = 0; list && i < n; i++) free(list[i].name);
    free(list);
}

int aqa_module_parameters(aqa_module *m, aqa_tensor ***out) {
    aqa_named_tensor *all;
    int n = collect_all(m, false, false, &all);
    if (n < 0) return -1;
    aqa_tensor **ps = malloc(sizeof *ps * (size_t)(n ? n : 1));
    int k = 0;
    for (int i = 0; ps && i < n; i++)
        if (all[i].tensor->requires_grad) ps[k++] = all[i].tensor;
    aqa_named_tensors_free(all, n);
    if (!ps) {
        aqa_fail(AQA_ENOMEM, "out of memory listing parameters");
        return -1;
    }
    *out = ps;
    return k;
}

int64_t aqa_module_num_params(aqa_module *m, bool trainable_only) {
    aqa_named_tensor *all;
    int n = collect_all(m, false, false, &all);
    int64_t total = 0;
    for (int i = 0; i < n; i++)
        if (!trainable_only || all[i].tensor->requires_grad) total += aqa_numel(all[i].tensor);
    aqa_named_tensors_free(all, n > 0 ? n : 0);
    return total;
}

/* ---- modes ---------------------------------------------------------------------------------- */

void aqa_module_train(aqa_module *m, bool training) {
    if (!m) return;
    m->training = training;
    for (int i = 0; i < m->n_children; i++) aqa_module_train(m->children[i], training);
}

void aqa_module_requires_grad(aqa_module *m, bool requires_grad) {
    if (!m) return;
    for (int i = 0; i < m->n_entries; i++) {
        aqa_tensor *t = m->entries[i].tensor;
        if (t && !m->entries[i].is_buffer && aqa_dtype_is_float(t->dtype)) t->requires_grad = requires_grad;
    }
    for (int i = 0; i < m->n_children; i++) aqa_module_requires_grad(m->children[i], requires_grad);
}

void aqa_module_zero_grad(aqa_module *m) {
    if (!m) return;
    for (int i = 0; i < m->n_entries; i++) aqa_zero_grad(m->entries[i].tensor);
    for (int i = 0; i < m->n_children; i++) aqa_module_zero_grad(m->children[i]);
}

/* Puts c's data (same shape, another device or dtype) into t and releases c: layers keep direct
 * pointers to their tensors, so the data moves, not the struct.  t's gradient is dropped. */
static void swap_in_data(aqa_tensor *t, aqa_tensor *c) {
    aqa__disown(c);
    aqa_storage *old = t->storage;
    t->storage = c->storage;
    t->offset = c->offset;
    memcpy(t->stride, c->stride, sizeof t->stride);
    t->dtype = c->dtype;
    c->storage = old;
    aqa_zero_grad(t);
    aqa__release(c);
}

aqa_status aqa_module_to(aqa_module *m, aqa_device device) {
    for (int i = 0; i < m->n_entries; i++) {
        aqa_tensor *t = m->entries[i].tensor;
        if (!t || aqa_device_equal(aqa_tensor_device(t), device)) continue;
        bool prev = aqa_set_grad_enabled(false);
        aqa_tensor *moved = aqa_to_device(t, device);
        aqa_set_grad_enabled(prev);
        if (!moved) return aqa_last_status();
        moved->requires_grad = t->requires_grad;
        swap_in_data(t, moved);
    }
    for (int i = 0; i < m->n_children; i++) {
        aqa_status st = aqa_module_to(m->children[i], device);
        if (st != AQA_OK) return st;
    }
    return AQA_OK;
}

aqa_status aqa_module_to_dtype(aqa_module *m, aqa_dtype dtype) {
    if (!aqa_dtype_is_float(dtype))
        return aqa_fail(AQA_EINVAL, "aqa_module_to_dtype: %s is not a floating dtype", aqa_dtype_name(dtype));
    for (int i = 0; i < m->n_entries; i++) {
        aqa_tensor *t = m->entries[i].tensor;
        if (!t || !aqa_dtype_is_float(t->dtype) || t->dtype == dtype) continue;
        bool prev = aqa_set_grad_enabled(false);
        aqa_tensor *c = aqa_to_dtype(t, dtype);
        aqa_set_grad_enabled(prev);
        if (!c) return aqa_last_status();
        swap_in_data(t, c);
    }
    for (int i = 0; i < m->n_children; i++) {
        aqa_status st = aqa_module_to_dtype(m->children[i], dtype);
        if (st != AQA_OK) return st;
    }
    return AQA_OK;
}

/* ---- weights files ---------------------------------------------------------------------------- */

static void report_add(aqa_load_report *r, const char *fmt, const char *name, const char *detail) {
    size_t used = strlen(r->text);
    if (used + 1 < sizeof r->text) snprintf(r->text + used, sizeof r->text - used, fmt, name, detail);
}

aqa_status aqa_module_load(aqa_module *m, const char *path, bool strict, aqa_name_map_fn map, void *user,
                           aqa_load_report *report) {
    aqa_load_report local;
    aqa_load_report *r = report ? report : &local;
    memset(r, 0, sizeof *r);
    aqa_st_file *f;
    aqa_status st = aqa_st_open(path, &f);
    if (st != AQA_OK) return st;
    aqa_named_tensor *mine;
    int n = collect_all(m, true, false, &mine);
    if (n < 0) {
        aqa_st_close(f);
        return aqa_last_status();
    }
    int nf = aqa_st_count(f);
    int *target = malloc(sizeof(int) * (size_t)(nf ? nf : 1)); /* file tensor -> module tensor or -1 */
    bool *found = calloc((size_t)(n ? n : 1), sizeof(bool));
    if (!target || !found) {
        st = aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
        goto out;
    }
    for (int i = 0; i < nf; i++) {
        const char *fname = aqa_st_name(f, i);
        char *mapped = map ? map(fname, user) : strdup(fname);
        target[i] = -1;
        if (!mapped) continue; /* the map skips it */
        for (int j = 0; j < n; j++)
            if (strcmp(mine[j].name, mapped) == 0) target[i] = j;
        if (target[i] < 0) {
            r->n_unexpected++;
            report_add(r, "unexpected: %s%s\n", fname, "");
        } else {
            const aqa_st_tensor *info = aqa_st_get(f, i);
            aqa_tensor *t = mine[target[i]].tensor;
            found[target[i]] = true; /* present in the file: mis-shaped at worst, never missing too */
            bool same = info->ndim == t->ndim;
            for (int d = 0; same && d < t->ndim; d++) same = info->shape[d] == t->shape[d];
            if (!same) {
                char a[128], detail[200];
                aqa_tensor fake = {.ndim = info->ndim};
                memcpy(fake.shape, info->shape, sizeof(int64_t) * (size_t)info->ndim);
                snprintf(detail, sizeof detail, " (file %s, module %s)", aqa_shape_str(&fake, a, sizeof a),
                         aqa_shape_str(t, (char[128]){0}, 128));
                r->n_mismatched++;
                report_add(r, "shape mismatch: %s%s\n", mapped, detail);
                target[i] = -2;
            }
        }
        free(mapped);
    }
    for (int j = 0; j < n; j++) {
        if (found[j]) continue;
        r->n_missing++;
        report_add(r, "missing: %s%s\n", mine[j].name, "");
    }
    if (strict && (r->n_missing || r->n_unexpected || r->n_mismatched)) {
        st = aqa_fail(AQA_EFORMAT, "%s: does not match module %s (%d missing, %d unexpected, %d mis-shaped):\n%s", path,
                      m->type, r->n_missing, r->n_unexpected, r->n_mismatched, r->text);
        goto out;
    }
    bool prev = aqa_set_grad_enabled(false);
    for (int i = 0; i < nf && st == AQA_OK; i++) {
        if (target[i] < 0) continue;
        aqa_tensor *dst = mine[target[i]].tensor;
        aqa_scope_begin();
        aqa_tensor *src = aqa_st_load(f, aqa_st_name(f, i), dst->dtype);
        st = src ? aqa_copy_(dst, src) : aqa_last_status();
        aqa_scope_end();
        if (st == AQA_OK) r->n_loaded++;
    }
    aqa_set_grad_enabled(prev);
out:
    free(target);
    free(found);
    aqa_named_tensors_free(mine, n);
    aqa_st_close(f);
    return st;
}

aqa_status aqa_module_save(aqa_module *m, const char *path, int n_meta, const char *const *meta_keys,
                           const char *const *meta_values) {
    aqa_named_tensor *all;
    int n = collect_all(m, true, false, &all);
    if (n < 0) return aqa_last_status();
    const char **names = malloc(sizeof *names * (size_t)(n ? n : 1));
    aqa_tensor **ts = malloc(sizeof *ts * (size_t)(n ? n : 1));
    aqa_status st;
    if (!names || !ts) {
        st = aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    } else {
        for (int i = 0; i < n; i++) {
            names[i] = all[i].name;
            ts[i] = all[i].tensor;
        }
        st = aqa_save_tensors(path, n, names, ts, n_meta, meta_keys, meta_values);
    }
    free(names);
    free(ts);
    aqa_named_tensors_free(all, n);
    return st;
}
