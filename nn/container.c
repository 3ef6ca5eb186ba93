/* container.c: Sequential, ModuleList and ModuleDict (see container.h). */
#include "nn/container.h"

#include <stdlib.h>

#include "ops/ops.h"

static aqa_tensor *sequential_forward(aqa_module *m, aqa_tensor *x) {
    for (int i = 0; i < m->n_children && x; i++) {
        aqa_module *c = m->children[i];
        x = aqa_module_forward(c, x);
        if (!x) { /* say where in the chain it broke */
            char *path = aqa_module_path(c);
            aqa_fail_null("Sequential: child %s (%s): %s", path ? path : c->name, c->type, aqa_last_error());
            free(path);
        }
    }
    return x;
}

static aqa_module *container_new(aqa_module *parent, const char *name, const char *type, bool indexed) {
    aqa_module *m = aqa_module_new(sizeof *m, type, parent, name, NULL);
    if (m) m->indexed = indexed;
    return m;
}

aqa_module *aqa_sequential_new(aqa_module *parent, const char *name) {
    aqa_module *m = container_new(parent, name, "Sequential", true);
    if (m) m->forward = sequential_forward;
    return m;
}

aqa_module *aqa_module_list_new(aqa_module *parent, const char *name) {
    return container_new(parent, name, "ModuleList", true);
}

aqa_module *aqa_module_dict_new(aqa_module *parent, const char *name) {
    return container_new(parent, name, "ModuleDict", false);
}
