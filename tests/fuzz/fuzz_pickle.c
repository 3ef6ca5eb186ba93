/* fuzz_pickle.c: the pickle reader (io/pickle.h) and the accessors the annotation loaders
 * use on what it returns. */
#include <stdlib.h>

#include "io/pickle.h"
#include "tests/fuzz/fuzz.h"

/* Every accessor on every object, depth-first (the reader returns a tree; memo references may
 * form cycles, hence the depth bound). */
static void walk(const aqa_pyobj *o, int depth) {
    if (!o || depth > 64) return;
    double d;
    int64_t i;
    size_t n;
    aqa_pyobj_to_double(o, "x", &d);
    aqa_pyobj_to_int64(o, "x", &i);
    free(aqa_pyobj_to_i64_array(o, "x", &n));
    if (o->type == AQA_PY_LIST || o->type == AQA_PY_TUPLE)
        for (size_t k = 0; k < o->u.seq.len && k < 64; k++) walk(o->u.seq.items[k], depth + 1);
    if (o->type == AQA_PY_DICT) {
        for (size_t k = 0; k < o->u.dict.len && k < 64; k++) {
            walk(o->u.dict.keys[k], depth + 1);
            walk(o->u.dict.values[k], depth + 1);
            aqa_pydict_get(o, o->u.dict.keys[k]);
        }
        aqa_pydict_get_str(o, "frames_labels");
        aqa_pydict_get_str_int(o, "01", 1);
        aqa_pydict_get_int_int(o, 1, 1);
    }
}

FUZZ_TARGET(pickle) {
    aqa_pyobj *o = aqa_pickle_loads(data, size, "in.pkl");
    walk(o, 0);
    aqa_pyobj_free(o);
    return 0;
}
