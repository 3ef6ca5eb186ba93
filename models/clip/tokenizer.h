/* tokenizer.h: CLIP's byte-level BPE tokenizer (OpenAI's SimpleTokenizer), in C.
 *
 * Gives the same ids as CLIP's Python tokenizer (`clip.tokenize`, open_clip's SimpleTokenizer) for
 * the vocabulary OpenAI ships, `bpe_simple_vocab_16e6.txt.gz`, or for Hugging Face's
 * `vocab.json` + `merges.txt` of the same model.  Independent of the tensor engine: ids come back
 * as plain int64_t arrays.
 *
 * What one text goes through, as in CLIP:
 *   1. ftfy.fix_text (see below), html.unescape twice, strip;
 *   2. runs of whitespace collapsed to one space, then str.lower() (with Python's final sigma);
 *   3. split into words by CLIP's pattern
 *        <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
 *      (case-insensitive, Unicode classes of the Python `regex` module);
 *   4. each word's UTF-8 bytes mapped through the byte encoder, merged by BPE rank, the last
 *      symbol marked "</w>"; the literal words <|startoftext|> and <|endoftext|> are their ids.
 * Character data (letters, digits, whitespace, case mapping, NFC, HTML entities) is generated
 * from Python 3.11 / unicodedata 14.0 / regex 2026.5 / ftfy 6.3.1 by scripts/gen_unicode_tables.py
 * (aqa_uc_tables_source in unicode_tables_generated.c records the versions); a Python with other versions
 * of these packages may classify characters added to Unicode since then differently.
 *
 * ftfy.fix_text (default configuration) is reproduced for: HTML entity unescaping (ftfy's own
 * rules, including upper-case names like &EACUTE; and the "off when the line holds a '<'" rule),
 * C1 control characters read as Windows-1252, Latin ligatures split, full-width/half-width forms
 * made normal width (and U+3000 made a space), curly quotes made straight, line breaks
 * normalised, ANSI terminal escapes and control characters removed, NFC normalisation, all
 * repeated until stable, line by line.
 * NOT reproduced: ftfy's mojibake repair (fix_encoding: text decoded with the wrong codec such as
 * "cafÃ©" -> "café", restore_byte_a0, replace_lossy_sequences, decode_inconsistent_utf8, and
 * the C1 handling inside it).  Texts that ftfy would re-decode therefore tokenize differently;
 * ordinary text, accented or not, is not affected.
 * Input is UTF-8; each byte of an invalid UTF-8 sequence is read as U+FFFD (Python would have
 * refused such bytes before they became a str).
 *
 * Thread safety: a tokenizer may be shared by threads (its word cache is locked). */
#ifndef AQA_CLIP_TOKENIZER_H
#define AQA_CLIP_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Ids of CLIP's special tokens in OpenAI's vocabulary (also in Hugging Face's copy of it). */
#define AQA_CLIP_SOT 49406
#define AQA_CLIP_EOT 49407
#define AQA_CLIP_CONTEXT 77 /* CLIP's context length */

typedef struct aqa_bpe_tokenizer aqa_bpe_tokenizer;

/* Reads OpenAI's bpe_simple_vocab_16e6.txt.gz (gzip, or the same text uncompressed): the first
 * 48894 merges after the header line, as CLIP does.  Errors (naming the file): AQA_EIO when it
 * cannot be opened or read (including a corrupt or truncated gzip stream), AQA_EFORMAT when
 * there are too few merge lines or a line is malformed. */
aqa_status aqa_bpe_load(const char *path, aqa_bpe_tokenizer **out);

/* Reads Hugging Face's vocab.json (token -> id) and merges.txt (a header line, then one merge
 * "a b" per line; at most the first 48894 are used, as transformers' CLIPTokenizer does).  The
 * vocabulary must hold the 512 byte symbols, every merge result and <|startoftext|>,
 * <|endoftext|>. */
aqa_status aqa_bpe_load_hf(const char *vocab_json, const char *merges_txt, aqa_bpe_tokenizer **out);

/* Writes the tokenizer as Hugging Face's vocab.json + merges.txt (what aqa_bpe_load_hf reads). */
aqa_status aqa_bpe_save_hf(const aqa_bpe_tokenizer *tok, const char *vocab_json,
                           const char *merges_txt);

void aqa_bpe_free(aqa_bpe_tokenizer *tok);

/* SimpleTokenizer.encode: the BPE ids of one UTF-8 text, without SOT/EOT.  *ids is malloc'ed
 * (free() it; NULL when *n == 0). */
aqa_status aqa_bpe_encode(aqa_bpe_tokenizer *tok, const char *text, int64_t **ids, size_t *n);

/* clip.tokenize: for each text, [SOT, ids..., EOT] zero-padded to context_length, written to
 * out[i * context_length ...] (out holds n_texts * context_length ids).  A text longer than the
 * context is cut to context_length ids whose last is EOT when `truncate`, and is an error
 * (AQA_EINVAL naming the text's index) otherwise, as in CLIP.  context_length must be >= 2.
 * After an error the content of out is unspecified. */
aqa_status aqa_bpe_tokenize(aqa_bpe_tokenizer *tok, const char *const *texts, size_t n_texts,
                            size_t context_length, int truncate, int64_t *out);

/* SimpleTokenizer.decode: the text of ids ("</w>" becomes a space, invalid UTF-8 becomes
 * U+FFFD).  *text is malloc'ed (free() it).  AQA_EINVAL for an id outside the vocabulary. */
aqa_status aqa_bpe_decode(const aqa_bpe_tokenizer *tok, const int64_t *ids, size_t n, char **text);

/* The cleaned text CLIP splits into words (steps 1-2 above), UTF-8, malloc'ed; NULL on error. */
char *aqa_bpe_clean_text(const char *text);

size_t aqa_bpe_vocab_size(const aqa_bpe_tokenizer *tok); /* number of ids (49408 for CLIP) */
int64_t aqa_bpe_sot(const aqa_bpe_tokenizer *tok);       /* id of <|startoftext|> */
int64_t aqa_bpe_eot(const aqa_bpe_tokenizer *tok);       /* id of <|endoftext|> */
/* The token string of an id as in the vocabulary files (byte-encoded, e.g. "hello</w>"), or NULL. */
const char *aqa_bpe_token(const aqa_bpe_tokenizer *tok, int64_t id);

#ifdef __cplusplus
}
#endif

#endif /* AQA_CLIP_TOKENIZER_H */
