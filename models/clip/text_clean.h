/* text_clean.h: private text cleaning and word splitting of CLIP's tokenizer.
 *
 * CLIP's SimpleTokenizer.encode() turns a string into words in three steps that this file
 * reproduces on arrays of Unicode code points:
 *   1. basic_clean: ftfy.fix_text (the subset described in models/clip/tokenizer.h), then
 *      html.unescape twice, then str.strip();
 *   2. whitespace_clean (runs of whitespace become one space, ends trimmed), then str.lower();
 *   3. re.findall of CLIP's pattern (special tokens, contractions, letter runs, single digits,
 *      runs of other symbols).
 * Each stage is exposed separately so tests can check it against Python on its own. */
#ifndef AQA_CLIP_TEXT_CLEAN_H
#define AQA_CLIP_TEXT_CLEAN_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* A growable array of code points.  A failed allocation sets `oom` and later pushes are dropped,
 * so long pipelines check once at the end. */
typedef struct aqa_u32vec {
    uint32_t *v;  /* code points */
    size_t n;     /* used */
    size_t cap;   /* allocated */
    int oom;      /* an allocation failed */
} aqa_u32vec;

void aqa_u32vec_push(aqa_u32vec *s, uint32_t c);
void aqa_u32vec_free(aqa_u32vec *s);

/* Decodes UTF-8 into code points (appending); each byte of an invalid sequence becomes U+FFFD. */
void aqa_clip_utf8_decode(const char *text, size_t len, aqa_u32vec *out);
/* Appends the UTF-8 encoding of one code point to buf (4 bytes room needed); returns bytes. */
int aqa_clip_utf8_put(uint32_t c, unsigned char *buf);

/* Property bits (AQA_UC_* of unicode_tables.h) of a code point. */
uint32_t aqa_clip_uc_flags(uint32_t c);

/* Each stage replaces the content of `s`; AQA_ENOMEM when an allocation failed. */
aqa_status aqa_clip_nfc(aqa_u32vec *s);             /* unicodedata.normalize("NFC") */
aqa_status aqa_clip_html_unescape(aqa_u32vec *s);   /* Python's html.unescape */
aqa_status aqa_clip_ftfy(aqa_u32vec *s);            /* ftfy.fix_text subset */
aqa_status aqa_clip_clean(aqa_u32vec *s);           /* whole of step 1 and 2 above */

/* One word of step 3: code points [start, start + len) of the cleaned text. */
typedef struct aqa_clip_word {
    size_t start, len;
    int special; /* 1: <|startoftext|>, 2: <|endoftext|> matched exactly (not via case folding) */
} aqa_clip_word;

/* Splits cleaned text into CLIP's words; *words is malloc'ed (free it), *n its length. */
aqa_status aqa_clip_split_words(const aqa_u32vec *s, aqa_clip_word **words, size_t *n);

#endif /* AQA_CLIP_TEXT_CLEAN_H */
