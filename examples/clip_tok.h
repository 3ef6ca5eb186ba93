/* clip_tok.h: the tokenizer a CLIP was trained with, for the example programs: CLIP's own BPE
 * tokenizer (models/clip/tokenizer.h; --bpe bpe_simple_vocab_16e6.txt.gz, or Hugging Face's
 * vocab.json with --merges merges.txt) or the word-level tokenizer of the tiny CLIPs that
 * examples/pretrain_clip trains (--vocab: the vocab.txt it writes beside clip.safetensors).
 *
 * Word level: lower-case words split at white space, with ',' and '.' as words of their own; ids
 * 1..V in the order of the vocabulary file (one word per line), SOT = V + 1, EOT = V + 2 (the
 * largest id, as CLIP's encode_text finds the EOT by argmax), 0 = padding. */
#ifndef AQA_EXAMPLES_CLIP_TOK_H
#define AQA_EXAMPLES_CLIP_TOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datasets/texts.h"
#include "models/clip/clip.h"
#include "models/clip/tokenizer.h"
#include "tensor/tensor.h"

typedef struct word_tok {
    aqa_text_set words;     /* word level: id - 1 -> word */
    aqa_bpe_tokenizer *bpe; /* when set, CLIP's own BPE tokenizer is used instead */
} word_tok;

/* Loads the word list `vocab` or, when `bpe` is given, CLIP's BPE vocabulary (`merges` given:
 * `bpe` is Hugging Face's vocab.json).  Exactly one of vocab and bpe must be non-empty. */
aqa_status wt_load(word_tok *t, const char *vocab, const char *bpe, const char *merges);
void wt_free(word_tok *t);
/* Adds the words of the texts to a word-level vocabulary (pretrain_clip). */
aqa_status wt_add_texts(word_tok *t, const aqa_text_set *texts);
/* The vocabulary size a CLIP text encoder needs for this tokenizer. */
int64_t wt_vocab_size(const word_tok *t);
/* ids [n, ctx] for n texts, as clip.tokenize: SOT, ids, EOT, zero padding.  A text too long for
 * the context is cut (EOT kept last) when `truncate`, else an error naming the text. */
aqa_status wt_tokenize(word_tok *t, const char *const *texts, size_t n, int64_t ctx, bool truncate, int64_t *ids);
/* The ids of one text without SOT / EOT / padding (malloc'd; *n receives their number). */
aqa_status wt_encode(word_tok *t, const char *text, int64_t **ids, size_t *n);

/* Embeds n texts with the CLIP text encoder: a new caller-owned [n, D] tensor (frozen: no graph). */
aqa_tensor *wt_encode_texts(aqa_clip_model *m, word_tok *t, const char *const *texts, size_t n, bool frozen);

#endif /* AQA_EXAMPLES_CLIP_TOK_H */
