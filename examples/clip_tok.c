/* clip_tok.c: BPE or word-level tokenizer of a CLIP (see clip_tok.h). */
#include "examples/clip_tok.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WORD_MAX 48   /* bytes of one word, with its NUL (longer words are cut) */
#define WORDS_MAX 256 /* words of one text */

/* The words of a text (at most max); returns their number, or -1 when there are more. */
static int split_words(const char *text, char words[][WORD_MAX], int max) {
    int n = 0;
    char cur[WORD_MAX];
    size_t k = 0;
    for (const char *p = text;; p++) {
        char ch = (char)tolower((unsigned char)*p);
        bool sep = !ch || isspace((unsigned char)ch) || ch == ',' || ch == '.';
        if (sep) {
            if (k) {
                if (n >= max) return -1;
                cur[k] = 0;
                memcpy(words[n++], cur, k + 1);
            }
            k = 0;
            if (ch == ',' || ch == '.') {
                if (n >= max) return -1;
                snprintf(words[n++], WORD_MAX, "%c", ch);
            }
            if (!ch) break;
        } else if (k + 1 < sizeof cur) {
            cur[k++] = ch;
        }
    }
    return n;
}

aqa_status wt_add_texts(word_tok *t, const aqa_text_set *texts) {
    char(*w)[WORD_MAX] = malloc(WORDS_MAX * sizeof *w);
    aqa_status st = w ? AQA_OK : aqa_fail(AQA_ENOMEM, "out of memory");
    for (size_t i = 0; i < texts->n && !st; i++) {
        int n = split_words(texts->texts[i], w, WORDS_MAX);
        if (n < 0) st = aqa_fail(AQA_EINVAL, "text \"%.80s...\" has more than %d words", texts->texts[i], WORDS_MAX);
        for (int k = 0; k < n && !st; k++) st = aqa_text_set_add_unique(&t->words, w[k], NULL);
    }
    free(w);
    return st;
}

int64_t wt_vocab_size(const word_tok *t) {
    return t->bpe ? (int64_t)aqa_bpe_vocab_size(t->bpe) : (int64_t)t->words.n + 3;
}

/* The word ids of one text (1..V), at most max; -1 when there are more words. */
static int word_ids(word_tok *t, const char *text, int64_t *ids, int max, aqa_status *st) {
    char(*w)[WORD_MAX] = malloc(WORDS_MAX * sizeof *w);
    *st = AQA_OK;
    if (!w) return *st = aqa_fail(AQA_ENOMEM, "out of memory"), 0;
    int m = split_words(text, w, WORDS_MAX);
    if (m < 0) {
        *st = aqa_fail(AQA_EINVAL, "text \"%.80s...\" has more than %d words", text, WORDS_MAX);
        m = 0;
    }
    int k = 0;
    for (; k < m && k < max && !*st; k++) {
        long id = aqa_text_set_find(&t->words, w[k]);
        if (id < 0) *st = aqa_fail(AQA_EINVAL, "text \"%.200s\": word \"%s\" is not in the vocabulary", text, w[k]);
        ids[k] = id + 1;
    }
    free(w);
    return m > max ? -1 : m;
}

aqa_status wt_tokenize(word_tok *t, const char *const *texts, size_t n, int64_t ctx, bool truncate, int64_t *ids) {
    if (ctx < 2) return aqa_fail(AQA_EINVAL, "context length %lld < 2", (long long)ctx);
    if (t->bpe) return aqa_bpe_tokenize(t->bpe, texts, n, (size_t)ctx, truncate, ids);
    int64_t V = (int64_t)t->words.n;
    for (size_t i = 0; i < n; i++) {
        int64_t *row = ids + i * (size_t)ctx;
        memset(row, 0, (size_t)ctx * sizeof *row);
        aqa_status st;
        int max = (int)(ctx - 2 < WORDS_MAX ? ctx - 2 : WORDS_MAX);
        int m = word_ids(t, texts[i], row + 1, max, &st);
        if (st) return st;
        if (m < 0 && !truncate)
            return aqa_fail(AQA_EINVAL, "text %zu (\"%.80s\") has more words than the context holds (%lld)", i,
                            texts[i], (long long)ctx - 2);
        if (m < 0) m = max;
        row[0] = V + 1;
        row[m + 1] = V + 2;
    }
    return AQA_OK;
}

aqa_status wt_encode(word_tok *t, const char *text, int64_t **ids, size_t *n) {
    *ids = NULL;
    *n = 0;
    if (t->bpe) return aqa_bpe_encode(t->bpe, text, ids, n);
    int64_t *buf = malloc(WORDS_MAX * sizeof *buf);
    if (!buf) return aqa_fail(AQA_ENOMEM, "out of memory");
    aqa_status st;
    int m = word_ids(t, text, buf, WORDS_MAX, &st);
    if (st) {
        free(buf);
        return st;
    }
    *ids = buf;
    *n = (size_t)m;
    return AQA_OK;
}

aqa_status wt_load(word_tok *t, const char *vocab, const char *bpe, const char *merges) {
    memset(t, 0, sizeof *t);
    aqa_text_set_init(&t->words);
    bool has_v = vocab && vocab[0], has_b = bpe && bpe[0];
    if (has_v == has_b)
        return aqa_fail(AQA_EINVAL, "give the tokenizer as one of --vocab (a word list written by pretrain_clip) or "
                                    "--bpe (CLIP's BPE vocabulary)");
    if (has_b) return merges && merges[0] ? aqa_bpe_load_hf(bpe, merges, &t->bpe) : aqa_bpe_load(bpe, &t->bpe);
    if (merges && merges[0]) return aqa_fail(AQA_EINVAL, "--merges goes with --bpe vocab.json, not with --vocab");
    return aqa_text_set_load(vocab, 0, &t->words);
}

void wt_free(word_tok *t) {
    aqa_text_set_free(&t->words);
    aqa_bpe_free(t->bpe);
    memset(t, 0, sizeof *t);
}

aqa_tensor *wt_encode_texts(aqa_clip_model *m, word_tok *t, const char *const *texts, size_t n, bool frozen) {
    int64_t ctx = m->cfg.context_length;
    int64_t *ids = calloc(n * (size_t)ctx + 1, sizeof *ids);
    if (!ids) return aqa_fail_null("out of memory");
    if (wt_tokenize(t, texts, n, ctx, false, ids)) {
        free(ids);
        return NULL;
    }
    aqa_tensor *x = aqa_from_data(ids, 2, (int64_t[]){(int64_t)n, ctx}, AQA_I64);
    free(ids);
    aqa_tensor *f = aqa_clip_encode_text(m, x, frozen);
    aqa_tensor_free(x);
    return f;
}
