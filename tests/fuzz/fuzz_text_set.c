/* fuzz_text_set.c: text lists (datasets/texts.h: a feature cache's stage_texts.txt, a tiny CLIP's
 * vocab.txt). */
#include "datasets/texts.h"
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(text_set) {
    const char *path = fuzz_file("texts.txt", data, size);
    aqa_text_set s;
    if (path && aqa_text_set_load(path, 0, &s) == AQA_OK) {
        if (s.n) aqa_text_set_find(&s, s.texts[0]);
        aqa_text_set_free(&s);
    }
    return 0;
}
