/* fuzz_tokenizer.c: text through CLIP's tokenizer with OpenAI's vocabulary (cleaning, encoding,
 * clip.tokenize, decoding of the ids and of arbitrary ids) and through the word-level tokenizer of
 * the tiny CLIPs (examples/clip_tok.h).  The vocabulary is read once from the source tree
 * (AQA_SRCDIR, else the folder the harness was configured in). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/texts.h"
#include "examples/clip_tok.h"
#include "models/clip/tokenizer.h"
#include "tests/fuzz/fuzz.h"

#ifndef AQA_FUZZ_SRCDIR
#define AQA_FUZZ_SRCDIR "."
#endif

static aqa_bpe_tokenizer *g_bpe;
static word_tok g_words;

static void free_all(void) {
    aqa_bpe_free(g_bpe);
    wt_free(&g_words);
}

static int setup(void) {
    if (g_bpe) return 0;
    const char *src = getenv("AQA_SRCDIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/models/clip/data/bpe_simple_vocab_16e6.txt.gz", src ? src : AQA_FUZZ_SRCDIR);
    if (aqa_bpe_load(path, &g_bpe) != AQA_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", aqa_last_error());
        abort();
    }
    aqa_text_set_init(&g_words.words);
    static const char *const w[] = {"inward", "take-off", "entry", "into", "the", "water", ",", "."};
    for (size_t i = 0; i < sizeof w / sizeof *w; i++) aqa_text_set_add(&g_words.words, w[i]);
    atexit(free_all);
    return 0;
}

FUZZ_TARGET(tokenizer) {
    setup();
    char *text = fuzz_text(data, size);
    if (!text) return 0;
    int64_t *ids = NULL, row[77];
    size_t n = 0;
    char *out = NULL;
    if (aqa_bpe_encode(g_bpe, text, &ids, &n) == AQA_OK) {
        if (aqa_bpe_decode(g_bpe, ids, n, &out) == AQA_OK) free(out);
        free(ids);
    }
    const char *one[1] = {text};
    aqa_bpe_tokenize(g_bpe, one, 1, 77, 1, row);
    free(aqa_bpe_clean_text(text));
    /* arbitrary ids, 2 bytes each (ids past the vocabulary must be refused, not read) */
    size_t k = size / 2 < 64 ? size / 2 : 64;
    int64_t raw[64];
    for (size_t i = 0; i < k; i++) raw[i] = (int64_t)(data[2 * i] | data[2 * i + 1] << 8) - 4096;
    out = NULL;
    if (aqa_bpe_decode(g_bpe, raw, k, &out) == AQA_OK) free(out);
    /* the word-level tokenizer */
    wt_tokenize(&g_words, one, 1, 8, true, row);
    ids = NULL;
    if (wt_encode(&g_words, text, &ids, &n) == AQA_OK) free(ids);
    free(text);
    return 0;
}
