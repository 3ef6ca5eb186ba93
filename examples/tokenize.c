/* tokenize.c: command-line front end of CLIP's BPE tokenizer (models/clip/tokenizer.h).
 *
 *   examples/tokenize --vocab FILE [--context N] [--raw]
 *
 * Reads one text per line on stdin (UTF-8; a trailing "\r" is kept as part of the text, like
 * any other character) and prints one line of space-separated ids per text: by default the
 * context-length ids of clip.tokenize (SOT ... EOT, zero padded, truncated with EOT last), with
 * --raw only the BPE ids, without SOT/EOT/padding and untruncated.  FILE is OpenAI's
 * bpe_simple_vocab_16e6.txt.gz, or Hugging Face's vocab.json with --merges merges.txt.
 * Errors go to stderr and the exit status is non-zero. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/clip/tokenizer.h"

static void usage(FILE *f) {
    fprintf(f, "usage: tokenize --vocab FILE [--merges FILE] [--context N] [--raw] < texts\n"
               "  --vocab FILE    bpe_simple_vocab_16e6.txt.gz (or HF vocab.json with --merges)\n"
               "  --merges FILE   Hugging Face merges.txt (makes --vocab a vocab.json)\n"
               "  --context N     context length (default 77)\n"
               "  --raw           print only the BPE ids, no SOT/EOT/padding, untruncated\n");
}

int main(int argc, char **argv) {
    const char *vocab = NULL, *merges = NULL;
    long context = AQA_CLIP_CONTEXT;
    int raw = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(argv[i], "--merges") && i + 1 < argc) merges = argv[++i];
        else if (!strcmp(argv[i], "--context") && i + 1 < argc) {
            char *end;
            errno = 0;
            context = strtol(argv[++i], &end, 10);
            if (errno || *end || context < 2 || context > 1000000) {
                fprintf(stderr, "tokenize: --context must be an integer >= 2, got \"%s\"\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--raw")) raw = 1;
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "tokenize: unknown or incomplete argument \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!vocab) {
        fprintf(stderr, "tokenize: --vocab FILE is required\n");
        usage(stderr);
        return 2;
    }
    aqa_bpe_tokenizer *tok;
    aqa_status st = merges ? aqa_bpe_load_hf(vocab, merges, &tok) : aqa_bpe_load(vocab, &tok);
    if (st != AQA_OK) {
        fprintf(stderr, "tokenize: %s\n", aqa_last_error());
        return 1;
    }
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
            st = aqa_bpe_encode(tok, line, &ids, &n);
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
            st = aqa_bpe_tokenize(tok, texts, 1, (size_t)context, 1, row);
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
    aqa_bpe_free(tok);
    return rc;
}
