/* fuzz_ann_mtl_aqa.c: the MTL-AQA annotation loader (aqa_ann_load_mtl_aqa) over its files. */
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(ann_mtl_aqa) {
    static const char *const names[] = {"final_annotations_dict_with_dive_number.pkl", "train_split_0.pkl", "test_split_0.pkl"};
    fuzz_annotations(aqa_ann_load_mtl_aqa, data, size, names, (int)(sizeof names / sizeof *names));
    return 0;
}
