/* checkpoint.c: training checkpoints in one safetensors file (checkpoint.h).
 *
 * Saving gathers borrowed tensor pointers and metadata strings and hands them to
 * aqa_save_tensors, which streams them into an atomically replaced file.  Loading validates
 * everything first (names, shapes, metadata, no leftovers) and only then copies, so a mismatched
 * file leaves the model, optimizer and generators untouched. */
#define _GNU_SOURCE /* vasprintf */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "ops/ops.h"
#include "nn/checkpoint.h"
#include "tensor/tensor_file.h"
#include "tensor/tensor-impl.h"

#define CKPT_FORMAT "aqa-checkpoint-1"

/* The optimizer state tensors, in file order, with their key suffix. */
static const char *const STATE_KEYS[4] = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer"};
static aqa_tensor **state_slot(aqa_param_state *s, int k) {
    switch (k) {
    case 0: return &s->exp_avg;
    case 1: return &s->exp_avg_sq;
    case 2: return &s->max_exp_avg_sq;
    default: return &s->momentum_buffer;
    }
}

/* ---- growable lists of strings / tensors ------------------------------------------------------ */

typedef struct strlist {
    char **items;
    int n, cap;
} strlist;

static bool sl_addf(strlist *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool sl_addf(strlist *l, const char *fmt, ...) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 32;
        char **ni = realloc(l->items, sizeof *ni * (size_t)cap);
        if (!ni) return false;
        l->items = ni;
        l->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int r = vasprintf(&l->items[l->n], fmt, ap);
    va_end(ap);
    if (r < 0) return false;
    l->n++;
    return true;
}

static void sl_free(strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    memset(l, 0, sizeof *l);
}

static bool valid_gen_name(const char *s) {
    if (!s || !*s) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

static aqa_status check_generators(const char *fn, const char *path, const aqa_checkpoint *ck) {
    if (ck->n_generators < 0 || (ck->n_generators > 0 && (!ck->generator_names || !ck->generators)))
        return aqa_fail(AQA_EINVAL, "%s %s: invalid generator list", fn, path);
    for (int i = 0; i < ck->n_generators; i++) {
        if (!valid_gen_name(ck->generator_names[i]) || !ck->generators[i] || !strcmp(ck->generator_names[i], "default"))
            return aqa_fail(AQA_EINVAL, "%s %s: generator %d has an invalid name \"%s\" or is NULL (names: "
                            "[A-Za-z0-9_-], not \"default\")", fn, path, i,
                            ck->generator_names[i] ? ck->generator_names[i] : "(null)");
        for (int j = 0; j < i; j++)
            if (!strcmp(ck->generator_names[i], ck->generator_names[j]))
                return aqa_fail(AQA_EINVAL, "%s %s: generator name \"%s\" is repeated", fn, path, ck->generator_names[i]);
    }
    return AQA_OK;
}

/* ---- save --------------------------------------------------------------------------------------- */

aqa_status aqa_checkpoint_save(const char *path, const aqa_checkpoint *ck) {
    if (!path || !ck) return aqa_fail(AQA_EINVAL, "aqa_checkpoint_save: path or checkpoint is NULL");
    aqa_status st = check_generators("aqa_checkpoint_save", path, ck);
    if (st != AQA_OK) return st;
    strlist names = {0}, keys = {0}, values = {0};
    aqa_tensor **tensors = NULL;
    int n_tensors = 0, cap = 0;
    aqa_named_tensor *mlist = NULL;
    int n_model = 0;
    bool ok = true;
#define META(k, ...) (ok = ok && sl_addf(&keys, "%s", k) && sl_addf(&values, __VA_ARGS__))
#define ADD_TENSOR(t, ...)                                                                         \
    do {                                                                                           \
        if (ok && n_tensors == cap) {                                                              \
            cap = cap ? 2 * cap : 64;                                                              \
            aqa_tensor **nt = realloc(tensors, sizeof *nt * (size_t)cap);                          \
            if (nt) tensors = nt;                                                                  \
            else ok = false;                                                                       \
        }                                                                                          \
        if (ok && (ok = sl_addf(&names, __VA_ARGS__))) tensors[n_tensors++] = (t);                 \
    } while (0)

    META("format", "%s", CKPT_FORMAT);
    META("step", "%" PRId64, ck->step);
    META("epoch", "%" PRId64, ck->epoch);
    if (ck->config_json) META("config", "%s", ck->config_json);
    for (int i = 0; i < ck->n_meta; i++) {
        const char *k = ck->meta_keys[i];
        if (!k || !ck->meta_values[i] || !strcmp(k, "format") || !strcmp(k, "step") || !strcmp(k, "epoch") ||
            !strcmp(k, "config") || !strncmp(k, "rng.", 4) || !strncmp(k, "optim.", 6)) {
            st = aqa_fail(AQA_EINVAL, "aqa_checkpoint_save %s: metadata key \"%s\" is missing or reserved", path,
                          k ? k : "(null)");
            goto done;
        }
        META(k, "%s", ck->meta_values[i]);
    }
    aqa_generator *dg = aqa_default_generator();
    META("rng.default.seed", "%" PRIu64, dg->seed);
    META("rng.default.offset", "%" PRIu64, dg->offset);
    for (int i = 0; i < ck->n_generators; i++) {
        char k[160];
        snprintf(k, sizeof k, "rng.%s.seed", ck->generator_names[i]);
        META(k, "%" PRIu64, ck->generators[i]->seed);
        snprintf(k, sizeof k, "rng.%s.offset", ck->generator_names[i]);
        META(k, "%" PRIu64, ck->generators[i]->offset);
    }
    if (ck->model) {
        n_model = aqa_module_named_tensors(ck->model, true, &mlist);
        if (n_model < 0) {
            st = aqa_last_status();
            goto done;
        }
        for (int i = 0; i < n_model; i++) ADD_TENSOR(mlist[i].tensor, "model.%s", mlist[i].name);
    }
    if (ck->optim) {
        aqa_optimizer *o = ck->optim;
        META("optim.kind", "%s", aqa_optim_kind_name(o->kind));
        META("optim.n_groups", "%d", o->n_groups);
        for (int g = 0; g < o->n_groups; g++) {
            char k[96];
            snprintf(k, sizeof k, "optim.%d.n_params", g);
            META(k, "%d", o->groups[g].n_params);
            snprintf(k, sizeof k, "optim.%d.lr", g);
            META(k, "%.17g", o->groups[g].lr);
            snprintf(k, sizeof k, "optim.%d.initial_lr", g);
            META(k, "%.17g", o->groups[g].initial_lr);
            snprintf(k, sizeof k, "optim.%d.weight_decay", g);
            META(k, "%.17g", o->groups[g].weight_decay);
            for (int i = 0; i < o->groups[g].n_params; i++) {
                aqa_param_state *s = &o->state[g][i];
                snprintf(k, sizeof k, "optim.%d.%d.step", g, i);
                META(k, "%" PRId64, s->step);
                for (int q = 0; q < 4; q++) {
                    aqa_tensor *t = *state_slot(s, q);
                    if (t) ADD_TENSOR(t, "optim.%d.%d.%s", g, i, STATE_KEYS[q]);
                }
            }
        }
    }
    if (!ok) {
        st = aqa_fail(AQA_ENOMEM, "aqa_checkpoint_save %s: out of memory", path);
        goto done;
    }
    st = aqa_save_tensors(path, n_tensors, (const char *const *)names.items, tensors, keys.n,
                          (const char *const *)keys.items, (const char *const *)values.items);
    if (st != AQA_OK) {
        /* keep the writer's message (it names the file), prefixed with what was being saved */
        char msg[512];
        snprintf(msg, sizeof msg, "%s", aqa_last_error());
        st = aqa_fail(st, "aqa_checkpoint_save: %s (the previous checkpoint, if any, is intact)", msg);
    }
done:
    if (mlist) aqa_named_tensors_free(mlist, n_model);
    free(tensors);
    sl_free(&names);
    sl_free(&keys);
    sl_free(&values);
    return st;
#undef META
#undef ADD_TENSOR
}

/* ---- load --------------------------------------------------------------------------------------- */

static aqa_status meta_str(const aqa_st_file *f, const char *key, const char **out) {
    *out = aqa_st_metadata(f, key);
    if (!*out) return aqa_fail(AQA_EFORMAT, "%s: checkpoint metadata \"%s\" is missing", aqa_st_path(f), key);
    return AQA_OK;
}

static aqa_status meta_i64(const aqa_st_file *f, const char *key, int64_t *out) {
    const char *s;
    aqa_status st = meta_str(f, key, &s);
    if (st != AQA_OK) return st;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end) return aqa_fail(AQA_EFORMAT, "%s: checkpoint metadata \"%s\" = \"%s\" is not an integer", aqa_st_path(f), key, s);
    *out = v;
    return AQA_OK;
}

static aqa_status meta_u64(const aqa_st_file *f, const char *key, uint64_t *out) {
    const char *s;
    aqa_status st = meta_str(f, key, &s);
    if (st != AQA_OK) return st;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || *s == '-')
        return aqa_fail(AQA_EFORMAT, "%s: checkpoint metadata \"%s\" = \"%s\" is not an unsigned integer", aqa_st_path(f), key, s);
    *out = v;
    return AQA_OK;
}

static aqa_status meta_f64(const aqa_st_file *f, const char *key, double *out) {
    const char *s;
    aqa_status st = meta_str(f, key, &s);
    if (st != AQA_OK) return st;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end) return aqa_fail(AQA_EFORMAT, "%s: checkpoint metadata \"%s\" = \"%s\" is not a number", aqa_st_path(f), key, s);
    *out = v;
    return AQA_OK;
}

/* Finds tensor `key` expecting t's shape; marks it used. */
static aqa_status find_tensor(const aqa_st_file *f, const char *key, const aqa_tensor *t, bool *used, int *idx) {
    int i = aqa_st_find(f, key);
    if (i < 0) return aqa_fail(AQA_EFORMAT, "%s: checkpoint tensor \"%s\" is missing", aqa_st_path(f), key);
    const aqa_st_tensor *d = aqa_st_get(f, i);
    bool same = d->ndim == t->ndim;
    for (int k = 0; same && k < t->ndim; k++) same = d->shape[k] == t->shape[k];
    if (!same) {
        char want[128], have[128] = "[";
        aqa_shape_str(t, want, sizeof want);
        for (int k = 0; k < d->ndim; k++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", k ? ", " : "", (long long)d->shape[k]);
        strncat(have, "]", sizeof have - strlen(have) - 1);
        return aqa_fail(AQA_EFORMAT, "%s: checkpoint tensor \"%s\" has shape %s, expected %s", aqa_st_path(f), key, have, want);
    }
    used[i] = true;
    *idx = i;
    return AQA_OK;
}

/* Copies file tensor `key` into dst (converting dtype, any device). */
static aqa_status copy_in(const aqa_st_file *f, const char *key, aqa_tensor *dst) {
    aqa_scope_begin();
    aqa_tensor *src = aqa_st_load(f, key, dst->dtype);
    aqa_status st = src ? aqa_copy_(dst, src) : aqa_last_status();
    aqa_scope_end();
    return st;
}

static aqa_status validate(const aqa_st_file *f, aqa_checkpoint *ck, bool *used) {
    const char *path = aqa_st_path(f);
    const char *fmt;
    aqa_status st = meta_str(f, "format", &fmt);
    if (st != AQA_OK) return st;
    if (strcmp(fmt, CKPT_FORMAT) != 0)
        return aqa_fail(AQA_EFORMAT, "%s: checkpoint format \"%s\", expected \"%s\"", path, fmt, CKPT_FORMAT);
    int64_t i64;
    uint64_t u64;
    if ((st = meta_i64(f, "step", &i64)) || (st = meta_i64(f, "epoch", &i64)) || (st = meta_u64(f, "rng.default.seed", &u64)) ||
        (st = meta_u64(f, "rng.default.offset", &u64)))
        return st;
    for (int i = 0; i < ck->n_generators; i++) {
        char k[160];
        snprintf(k, sizeof k, "rng.%s.seed", ck->generator_names[i]);
        if ((st = meta_u64(f, k, &u64))) return st;
        snprintf(k, sizeof k, "rng.%s.offset", ck->generator_names[i]);
        if ((st = meta_u64(f, k, &u64))) return st;
    }
    int idx;
    char key[1024];
    if (ck->model) {
        aqa_named_tensor *list;
        int n = aqa_module_named_tensors(ck->model, true, &list);
        if (n < 0) return aqa_last_status();
        for (int i = 0; i < n && st == AQA_OK; i++) {
            snprintf(key, sizeof key, "model.%s", list[i].name);
            st = find_tensor(f, key, list[i].tensor, used, &idx);
        }
        aqa_named_tensors_free(list, n);
        if (st != AQA_OK) return st;
    }
    if (ck->optim) {
        aqa_optimizer *o = ck->optim;
        const char *kind;
        if ((st = meta_str(f, "optim.kind", &kind))) return st;
        if (strcmp(kind, aqa_optim_kind_name(o->kind)) != 0)
            return aqa_fail(AQA_EFORMAT, "%s: checkpoint optimizer is %s, the optimizer given is %s", path, kind,
                            aqa_optim_kind_name(o->kind));
        if ((st = meta_i64(f, "optim.n_groups", &i64))) return st;
        if (i64 != o->n_groups)
            return aqa_fail(AQA_EFORMAT, "%s: checkpoint has %lld optimizer groups, the optimizer given has %d", path,
                            (long long)i64, o->n_groups);
        for (int g = 0; g < o->n_groups; g++) {
            double d;
            snprintf(key, sizeof key, "optim.%d.n_params", g);
            if ((st = meta_i64(f, key, &i64))) return st;
            if (i64 != o->groups[g].n_params)
                return aqa_fail(AQA_EFORMAT, "%s: checkpoint optimizer group %d has %lld parameters, the optimizer given has %d",
                                path, g, (long long)i64, o->groups[g].n_params);
            const char *gk[3] = {"lr", "initial_lr", "weight_decay"};
            for (int q = 0; q < 3; q++) {
                snprintf(key, sizeof key, "optim.%d.%s", g, gk[q]);
                if ((st = meta_f64(f, key, &d))) return st;
            }
            for (int i = 0; i < o->groups[g].n_params; i++) {
                snprintf(key, sizeof key, "optim.%d.%d.step", g, i);
                if ((st = meta_i64(f, key, &i64))) return st;
                for (int q = 0; q < 4; q++) {
                    snprintf(key, sizeof key, "optim.%d.%d.%s", g, i, STATE_KEYS[q]);
                    if (aqa_st_find(f, key) >= 0 && (st = find_tensor(f, key, o->groups[g].params[i], used, &idx)))
                        return st;
                }
            }
        }
    }
    for (int i = 0; i < aqa_st_count(f); i++)
        if (!used[i])
            return aqa_fail(AQA_EFORMAT, "%s: checkpoint tensor \"%s\" is unexpected (no %s to receive it)", path,
                            aqa_st_name(f, i),
                            !strncmp(aqa_st_name(f, i), "model.", 6) ? "model tensor of that name"
                            : !strncmp(aqa_st_name(f, i), "optim.", 6) ? "optimizer state of that name"
                                                                        : "destination");
    return AQA_OK;
}

aqa_status aqa_checkpoint_load(const char *path, aqa_checkpoint *ck) {
    if (!path || !ck) return aqa_fail(AQA_EINVAL, "aqa_checkpoint_load: path or checkpoint is NULL");
    aqa_status st = check_generators("aqa_checkpoint_load", path, ck);
    if (st != AQA_OK) return st;
    aqa_st_file *f;
    if ((st = aqa_st_open(path, &f)) != AQA_OK) return st;
    bool *used = calloc((size_t)aqa_st_count(f) + 1, sizeof *used);
    if (!used) {
        aqa_st_close(f);
        return aqa_fail(AQA_ENOMEM, "aqa_checkpoint_load %s: out of memory", path);
    }
    st = validate(f, ck, used);
    free(used);
    if (st != AQA_OK) {
        aqa_st_close(f);
        return st;
    }
    /* everything is present and shaped right: copy */
    bool prev = aqa_set_grad_enabled(false);
    char key[1024];
    if (ck->model) {
        aqa_named_tensor *list;
        int n = aqa_module_named_tensors(ck->model, true, &list);
        for (int i = 0; i < n && st == AQA_OK; i++) {
            snprintf(key, sizeof key, "model.%s", list[i].name);
            st = copy_in(f, key, list[i].tensor);
        }
        if (n >= 0) aqa_named_tensors_free(list, n);
    }
    if (ck->optim && st == AQA_OK) {
        aqa_optimizer *o = ck->optim;
        for (int g = 0; g < o->n_groups && st == AQA_OK; g++) {
            aqa_param_group *grp = &o->groups[g];
            snprintf(key, sizeof key, "optim.%d.lr", g);
            meta_f64(f, key, &grp->lr);
            snprintf(key, sizeof key, "optim.%d.initial_lr", g);
            meta_f64(f, key, &grp->initial_lr);
            snprintf(key, sizeof key, "optim.%d.weight_decay", g);
            meta_f64(f, key, &grp->weight_decay);
            for (int i = 0; i < grp->n_params && st == AQA_OK; i++) {
                aqa_param_state *s = &o->state[g][i];
                aqa_tensor *p = grp->params[i];
                snprintf(key, sizeof key, "optim.%d.%d.step", g, i);
                meta_i64(f, key, &s->step);
                for (int q = 0; q < 4 && st == AQA_OK; q++) {
                    aqa_tensor **slot = state_slot(s, q);
                    snprintf(key, sizeof key, "optim.%d.%d.%s", g, i, STATE_KEYS[q]);
                    if (aqa_st_find(f, key) < 0) { /* the file's state has none: neither do we */
                        aqa_tensor_free(*slot);
                        *slot = NULL;
                        continue;
                    }
                    if (!*slot) {
                        *slot = aqa__new_unowned(p->ndim, p->shape, p->dtype, aqa_tensor_device(p));
                        if (!*slot) {
                            st = aqa_last_status();
                            break;
                        }
                    }
                    st = copy_in(f, key, *slot);
                }
            }
        }
    }
    if (st == AQA_OK) {
        aqa_generator *dg = aqa_default_generator();
        meta_u64(f, "rng.default.seed", &dg->seed);
        meta_u64(f, "rng.default.offset", &dg->offset);
        for (int i = 0; i < ck->n_generators; i++) {
            snprintf(key, sizeof key, "rng.%s.seed", ck->generator_names[i]);
            meta_u64(f, key, &ck->generators[i]->seed);
            snprintf(key, sizeof key, "rng.%s.offset", ck->generator_names[i]);
            meta_u64(f, key, &ck->generators[i]->offset);
        }
        meta_i64(f, "step", &ck->step);
        meta_i64(f, "epoch", &ck->epoch);
        const char *cfg = aqa_st_metadata(f, "config");
        free(ck->loaded_config);
        ck->loaded_config = cfg ? strdup(cfg) : NULL;
        if (cfg && !ck->loaded_config) st = aqa_fail(AQA_ENOMEM, "aqa_checkpoint_load %s: out of memory", path);
    }
    aqa_set_grad_enabled(prev);
    aqa_st_close(f);
    return st;
}

/* ---- model only ----------------------------------------------------------------------------------- */

char *aqa_checkpoint_model_name(const char *file_name, void *user) {
    (void)user;
    return strncmp(file_name, "model.", 6) == 0 ? strdup(file_name + 6) : NULL;
}

aqa_status aqa_checkpoint_load_model(const char *path, aqa_module *model, aqa_load_report *report) {
    if (!path || !model) return aqa_fail(AQA_EINVAL, "aqa_checkpoint_load_model: path or model is NULL");
    aqa_load_report local;
    return aqa_module_load(model, path, true, aqa_checkpoint_model_name, NULL, report ? report : &local);
}
