/* fuzz_bpe_vocab.c: OpenAI's BPE vocabulary format (aqa_bpe_load: bpe_simple_vocab_16e6.txt.gz,
 * gzip or plain text), then one encoding with what was loaded. */
#include <stdbool.h>
#include <stdlib.h>

#include "models/clip/tokenizer.h"
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(bpe_vocab) {
    bool gz = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    const char *path = fuzz_file(gz ? "vocab.txt.gz" : "vocab.txt", data, size);
    aqa_bpe_tokenizer *t = NULL;
    if (!path || aqa_bpe_load(path, &t) != AQA_OK) return 0;
    int64_t *ids = NULL;
    size_t n = 0;
    if (aqa_bpe_encode(t, "a photo of an inward 3.5 somersault tuck", &ids, &n) == AQA_OK) free(ids);
    aqa_bpe_free(t);
    return 0;
}
