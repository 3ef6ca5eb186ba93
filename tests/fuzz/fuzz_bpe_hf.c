/* fuzz_bpe_hf.c: Hugging Face's tokenizer files (aqa_bpe_load_hf: vocab.json, then merges.txt
 * after FUZZ_SEP), then one encoding and decoding with what was loaded. */
#include <stdio.h>
#include <stdlib.h>

#include "models/clip/tokenizer.h"
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(bpe_hf) {
    static const char *const names[2] = {"vocab.json", "merges.txt"};
    if (fuzz_files(data, size, names, 2)) return 0;
    char vj[600], mt[600];
    snprintf(vj, sizeof vj, "%s/vocab.json", fuzz_dir());
    snprintf(mt, sizeof mt, "%s/merges.txt", fuzz_dir());
    aqa_bpe_tokenizer *t = NULL;
    if (aqa_bpe_load_hf(vj, mt, &t) != AQA_OK) return 0;
    int64_t *ids = NULL;
    size_t n = 0;
    if (aqa_bpe_encode(t, "the quick brown fox", &ids, &n) == AQA_OK) {
        char *text = NULL;
        if (aqa_bpe_decode(t, ids, n, &text) == AQA_OK) free(text);
        free(ids);
    }
    aqa_bpe_free(t);
    return 0;
}
