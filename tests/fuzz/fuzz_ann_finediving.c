/* fuzz_ann_finediving.c: the FineDiving annotation loader (aqa_ann_load_finediving) over its files. */
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(ann_finediving) {
    static const char *const names[] = {"FineDiving_fine-grained_annotation.pkl", "FineDiving_coarse_annotation.pkl", "train_split.pkl", "test_split.pkl", "Sub_action_Types_Table.pkl"};
    fuzz_annotations(aqa_ann_load_finediving, data, size, names, (int)(sizeof names / sizeof *names));
    return 0;
}
