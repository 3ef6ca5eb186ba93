/* fuzz_ann_jigsaws.c: the JIGSAWS annotation loader (aqa_ann_load_jigsaws) over its files. */
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(ann_jigsaws) {
    static const char *const names[] = {"label.pkl", "splits.pkl"};
    fuzz_annotations(aqa_ann_load_jigsaws, data, size, names, (int)(sizeof names / sizeof *names));
    return 0;
}
