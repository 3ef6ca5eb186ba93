/* fuzz_ann_fisv.c: the Fis-V annotation loader (aqa_ann_load_fisv) over its files. */
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(ann_fisv) {
    static const char *const names[] = {"train_dataset.txt", "test_dataset.txt"};
    fuzz_annotations(aqa_ann_load_fisv, data, size, names, (int)(sizeof names / sizeof *names));
    return 0;
}
