/* tokenize.c: command-line front end of the tokenizer of a CLIP (examples/clip_tok.h): CLIP's BPE
 * tokenizer (models/clip/tokenizer.h) or the word-level one of the tiny CLIPs pretrain_clip trains.
 *
 *   examples/tokenize (--bpe FILE [--merges FILE] | --vocab FILE) [--context N] [--raw]
 *
 * Reads one text per line on stdin (UTF-8; a trailing "\r" is kept as part of the text, like
 * any other character) and prints one line of space-separated ids per text: by default the
 * context-length ids of clip.tokenize (SOT ... EOT, zero padded, truncated with EOT last), with
 * --raw only the token ids, without SOT/EOT/padding and untruncated.  --bpe FILE is OpenAI's
 * bpe_simple_vocab_16e6.txt.gz (shipped in models/clip/data/), or Hugging Face's vocab.json with
 * --merges merges.txt; --vocab FILE is the vocab.txt pretrain_clip writes beside its weights.
 * Errors go to stderr and the exit status is non-zero. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/cli.h"
#include "examples/clip_tok.h"

int main(int argc, char **argv) {
    kv_config c = {.program = "tokenize", .about = "Reads one text per line on stdin, prints one line of token ids per text."};
    kv_def(&c, "bpe", "", "CLIP's bpe_simple_vocab_16e6.txt.gz (or Hugging Face's vocab.json with --merges)");
    kv_def(&c, "merges", "", "Hugging Face merges.txt (makes --bpe a vocab.json)");
    kv_def(&c, "vocab", "", "word vocabulary of a CLIP trained by pretrain_clip (its vocab.txt)");
    kv_def_int(&c, "context", "77", 2, 1000000, "context length");
    kv_def_bool(&c, "raw", "false", "print only the token ids, no SOT/EOT/padding, untruncated");
    int pr = kv_parse_args(&c, argc, argv, "(--bpe FILE [--merges FILE] | --vocab FILE) [--context N] [--raw] < texts");
    if (pr) return kv_exit_code(pr);
    if (!kv_has(&c, "bpe") && !kv_has(&c, "vocab")) {
        fprintf(stderr, "tokenize: --bpe FILE or --vocab FILE is required (--help)\n");
        return 2;
    }
    const long context = kv_int(&c, "context");
    const bool raw = kv_bool(&c, "raw");
    word_tok tok;
    if (wt_load(&tok, kv_str(&c, "vocab"), kv_str(&c, "bpe"), kv_str(&c, "merges")) != AQA_OK) {
        fprintf(stderr, "tokenize: %s\n", aqa_last_error());
        wt_free(&tok);
        return 1;
    }
    aqa_status st;
    int64_t *row = raw ? NULL : malloc((size_t)context * sizeof *row);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = 0;
    long lineno = 0;
    if (!raw && !row) {
        fprintf(stderr, "tokenize: out of memory\n");
        rc = 1;
    }
    while (rc == 0 && (len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
        if (memchr(line, '\0', (size_t)len)) {
            fprintf(stderr, "tokenize: line %ld holds a NUL byte\n", lineno);
            rc = 1;
            break;
        }
        if (raw) {
            int64_t *ids;
            size_t n;
            st = wt_encode(&tok, line, &ids, &n);
            if (st != AQA_OK) {
                fprintf(stderr, "tokenize: line %ld: %s\n", lineno, aqa_last_error());
                rc = 1;
                break;
            }
            for (size_t k = 0; k < n; k++) printf(k ? " %lld" : "%lld", (long long)ids[k]);
            putchar('\n');
            free(ids);
        } else {
            const char *texts[1] = {line};
            st = wt_tokenize(&tok, texts, 1, context, true, row);
            if (st != AQA_OK) {
                fprintf(stderr, "tokenize: line %ld: %s\n", lineno, aqa_last_error());
                rc = 1;
                break;
            }
            for (long k = 0; k < context; k++) printf(k ? " %lld" : "%lld", (long long)row[k]);
            putchar('\n');
        }
    }
    if (rc == 0 && ferror(stdin)) {
        fprintf(stderr, "tokenize: error reading stdin\n");
        rc = 1;
    }
    if (fflush(stdout) != 0) {
        fprintf(stderr, "tokenize: error writing output\n");
        rc = 1;
    }
    free(line);
    free(row);
    wt_free(&tok);
    return rc;
}
