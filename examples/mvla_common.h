/* mvla_common.h: helpers shared by the MVLA programs (pretrain_clip, extract_features, train_mvla,
 * evaluate): a key = value configuration with command-line overrides, a word-level tokenizer for
 * the tiny synthetic CLIP, text embedding with a CLIP text encoder, dataset names.
 *
 * Header-only (static functions), so each program stays one file plus this.
 *
 * Configuration.  A run's settings are key = value pairs: from a file (`--config FILE`, one pair
 * per line, '#' starts a comment) and then from flags `--key value` (or `--key=value`; `--no-key`
 * sets key = false, a bare `--key` followed by another flag sets key = true).  Keys use '_' or
 * '-' interchangeably.  Every program declares its keys with defaults and help texts; an unknown
 * key is an error (so a typo never silently does nothing).  The resolved set is written back as a
 * re-loadable config file and as a flat JSON object. */
#ifndef AQA_EXAMPLES_MVLA_COMMON_H
#define AQA_EXAMPLES_MVLA_COMMON_H

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/annotations.h"
#include "datasets/texts.h"
#include "models/clip/clip.h"
#include "models/clip/tokenizer.h"
#include "base/error.h"
#include "tensor/tensor.h"

/* ---- configuration ------------------------------------------------------------------------ */

#define MC_UNUSED __attribute__((unused))
#define KV_MAX 160

typedef struct kv_entry {
    const char *key;  /* canonical name with '_' */
    char value[1024]; /* current value */
    const char *help; /* one line for --help */
    bool set;         /* given in a file or a flag (not the default) */
} kv_entry;

typedef struct kv_config {
    kv_entry e[KV_MAX];
    int n;
    const char *program; /* for messages */
} kv_config;

MC_UNUSED static void kv_norm(const char *in, char *out, size_t size) {
    size_t k = 0;
    for (; in[k] && k + 1 < size; k++) out[k] = in[k] == '-' ? '_' : in[k];
    out[k] = 0;
}

MC_UNUSED static void kv_def(kv_config *c, const char *key, const char *def, const char *help) {
    if (c->n >= KV_MAX) return;
    kv_entry *e = &c->e[c->n++];
    e->key = key;
    snprintf(e->value, sizeof e->value, "%s", def);
    e->help = help;
    e->set = false;
}

MC_UNUSED static kv_entry *kv_find(kv_config *c, const char *key) {
    char k[128];
    kv_norm(key, k, sizeof k);
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].key, k)) return &c->e[i];
    return NULL;
}

MC_UNUSED static int kv_set(kv_config *c, const char *key, const char *value, const char *where) {
    kv_entry *e = kv_find(c, key);
    if (!e) {
        fprintf(stderr, "%s: unknown setting \"%s\" (%s); --help lists them\n", c->program, key, where);
        return 1;
    }
    snprintf(e->value, sizeof e->value, "%s", value);
    e->set = true;
    return 0;
}

MC_UNUSED static const char *kv_str(kv_config *c, const char *key) {
    kv_entry *e = kv_find(c, key);
    return e ? e->value : "";
}
MC_UNUSED static bool kv_has(kv_config *c, const char *key) { return kv_str(c, key)[0] != 0; }
MC_UNUSED static double kv_double(kv_config *c, const char *key) { return strtod(kv_str(c, key), NULL); }
MC_UNUSED static long kv_int(kv_config *c, const char *key) { return strtol(kv_str(c, key), NULL, 10); }
MC_UNUSED static bool kv_bool(kv_config *c, const char *key) {
    const char *v = kv_str(c, key);
    return !strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on");
}

MC_UNUSED static char *kv_trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

/* Reads a key = value file into c.  Returns 0 or 1 after a message naming the file and line. */
MC_UNUSED static int kv_load_file(kv_config *c, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open config %s: %s\n", c->program, path, strerror(errno));
        return 1;
    }
    char line[2048];
    int ln = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        ln++;
        char *h = strchr(line, '#');
        if (h) *h = 0;
        char *s = kv_trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            fprintf(stderr, "%s: %s:%d: expected key = value\n", c->program, path, ln);
            bad = 1;
            break;
        }
        *eq = 0;
        char where[1200];
        snprintf(where, sizeof where, "%s:%d", path, ln);
        if (kv_set(c, kv_trim(s), kv_trim(eq + 1), where)) {
            bad = 1;
            break;
        }
    }
    fclose(f);
    return bad;
}

MC_UNUSED static void kv_usage(kv_config *c, FILE *to, const char *synopsis) {
    fprintf(to, "usage: %s %s\nsettings (--key value, or key = value lines in --config FILE):\n", c->program, synopsis);
    for (int i = 0; i < c->n; i++)
        fprintf(to, "  --%-22s %s (default: %s)\n", c->e[i].key, c->e[i].help, c->e[i].value[0] ? c->e[i].value : "\"\"");
}

/* Parses argv: --config FILE first (wherever it is), then the flags in order.  Returns 0, 1 on a
 * bad argument (message printed) or 2 for --help (usage printed). */
MC_UNUSED static int kv_parse_args(kv_config *c, int argc, char **argv, const char *synopsis) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            kv_usage(c, stdout, synopsis);
            return 2;
        }
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "%s: --config needs a file\n", c->program);
                return 1;
            }
            if (kv_load_file(c, argv[i + 1])) return 1;
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            fprintf(stderr, "%s: unexpected argument \"%s\"\n", c->program, a);
            return 1;
        }
        char key[256];
        snprintf(key, sizeof key, "%s", a + 2);
        char *eq = strchr(key, '=');
        if (eq) {
            *eq = 0;
            if (kv_set(c, key, eq + 1, "command line")) return 1;
            continue;
        }
        if (!kv_find(c, key) && !strncmp(key, "no-", 3) && kv_find(c, key + 3)) {
            if (kv_set(c, key + 3, "false", "command line")) return 1;
            continue;
        }
        if (!kv_find(c, key)) return kv_set(c, key, "", "command line");
        if (i + 1 >= argc || (!strncmp(argv[i + 1], "--", 2) && strlen(argv[i + 1]) > 2)) {
            if (kv_set(c, key, "true", "command line")) return 1;
            continue;
        }
        if (kv_set(c, key, argv[++i], "command line")) return 1;
    }
    return 0;
}

/* Appends s to a JSON string body (escaped). */
MC_UNUSED static void json_escape(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
        else fputc(ch, f);
    }
}

/* The resolved configuration as a flat JSON object of strings (malloc'd). */
MC_UNUSED static char *kv_to_json(kv_config *c) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) return NULL;
    fputc('{', f);
    for (int i = 0; i < c->n; i++) {
        fprintf(f, "%s\"%s\": \"", i ? ", " : "", c->e[i].key);
        json_escape(f, c->e[i].value);
        fputc('"', f);
    }
    fputc('}', f);
    fclose(f);
    return buf;
}

/* Reads a flat JSON object of strings (what kv_to_json writes) into c; unknown keys are ignored
 * when lenient.  Returns 0 or 1. */
MC_UNUSED static int kv_from_json(kv_config *c, const char *json, bool lenient) {
    const char *p = strchr(json, '{');
    if (!p) return 1;
    p++;
    for (;;) {
        while (*p && (isspace((unsigned char)*p) || *p == ',')) p++;
        if (*p == '}' || !*p) break;
        char parts[2][1024];
        for (int k = 0; k < 2; k++) {
            while (*p && *p != '"') p++;
            if (!*p) return 1;
            p++;
            size_t n = 0;
            while (*p && *p != '"') {
                char ch = *p++;
                if (ch == '\\' && *p) {
                    ch = *p++;
                    if (ch == 'u') {
                        ch = (char)strtol((char[]){p[0], p[1], p[2], p[3], 0}, NULL, 16);
                        p += 4;
                    } else if (ch == 'n') ch = '\n';
                    else if (ch == 't') ch = '\t';
                }
                if (n + 1 < sizeof parts[k]) parts[k][n++] = ch;
            }
            parts[k][n] = 0;
            if (*p) p++;
            if (k == 0) {
                while (*p && *p != ':') p++;
                if (*p) p++;
            }
        }
        kv_entry *e = kv_find(c, parts[0]);
        if (e) {
            snprintf(e->value, sizeof e->value, "%s", parts[1]);
            e->set = true;
        } else if (!lenient) {
            return 1;
        }
    }
    return 0;
}

/* Writes the resolved settings as a config file (re-loadable with --config). */
MC_UNUSED static int kv_save(kv_config *c, const char *path) {
    char tmp[1400];
    snprintf(tmp, sizeof tmp, "%.1300s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return 1;
    fprintf(f, "# %s: resolved settings of this run (load with --config)\n", c->program);
    for (int i = 0; i < c->n; i++) fprintf(f, "%s = %s\n", c->e[i].key, c->e[i].value);
    if (fclose(f) != 0) return 1;
    return rename(tmp, path) != 0;
}

MC_UNUSED static int mkdir_p(const char *path) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* ---- datasets ------------------------------------------------------------------------------ */

/* "synthetic" and "finediving" share FineDiving's layout.  Returns 0 or -1. */
MC_UNUSED static int parse_dataset(const char *name, aqa_ann_dataset *out) {
    if (!strcasecmp(name, "synthetic") || !strcasecmp(name, "finediving")) *out = AQA_ANN_FINEDIVING;
    else if (!strcasecmp(name, "mtl-aqa") || !strcasecmp(name, "mtl_aqa") || !strcasecmp(name, "mtlaqa")) *out = AQA_ANN_MTL_AQA;
    else if (!strcasecmp(name, "jigsaws")) *out = AQA_ANN_JIGSAWS;
    else if (!strcasecmp(name, "fisv") || !strcasecmp(name, "fis-v")) *out = AQA_ANN_FISV;
    else return -1;
    return 0;
}

/* ---- a word-level tokenizer for small CLIPs ------------------------------------------------- *
 * Lower-case words split at spaces, with ',' and '.' as words of their own; ids 1..V in the order
 * of the vocabulary file, SOT = V + 1, EOT = V + 2 (the largest id, as CLIP's encode_text finds the
 * EOT by argmax), 0 = padding.  The vocabulary file has one word per line. */
typedef struct word_tok {
    aqa_text_set words; /* id - 1 -> word */
    aqa_bpe_tokenizer *bpe; /* when set, CLIP's own BPE tokenizer is used instead */
} word_tok;

MC_UNUSED static int wt_split(const char *text, char words[][48], int max) {
    int n = 0;
    char cur[48];
    size_t k = 0;
    for (const char *p = text;; p++) {
        char ch = (char)tolower((unsigned char)*p);
        bool sep = !ch || isspace((unsigned char)ch) || ch == ',' || ch == '.';
        if (sep) {
            if (k && n < max) {
                cur[k] = 0;
                snprintf(words[n++], 48, "%s", cur);
            }
            k = 0;
            if ((ch == ',' || ch == '.') && n < max) snprintf(words[n++], 48, "%c", ch);
            if (!ch) break;
        } else if (k + 1 < sizeof cur) {
            cur[k++] = ch;
        }
    }
    return n;
}

MC_UNUSED static aqa_status wt_add_texts(word_tok *t, const aqa_text_set *texts) {
    char w[64][48];
    for (size_t i = 0; i < texts->n; i++) {
        int n = wt_split(texts->texts[i], w, 64);
        for (int k = 0; k < n; k++) {
            aqa_status st = aqa_text_set_add_unique(&t->words, w[k], NULL);
            if (st) return st;
        }
    }
    return AQA_OK;
}

MC_UNUSED static int64_t wt_vocab_size(const word_tok *t) {
    return t->bpe ? (int64_t)aqa_bpe_vocab_size(t->bpe) : (int64_t)t->words.n + 3;
}

/* ids [n, ctx] for n texts. */
MC_UNUSED static aqa_status wt_tokenize(word_tok *t, const char *const *texts, size_t n, int64_t ctx, int64_t *ids) {
    if (t->bpe) return aqa_bpe_tokenize(t->bpe, texts, n, (size_t)ctx, 1, ids);
    int64_t V = (int64_t)t->words.n;
    char w[64][48];
    for (size_t i = 0; i < n; i++) {
        int64_t *row = ids + i * ctx;
        memset(row, 0, (size_t)ctx * sizeof *row);
        int m = wt_split(texts[i], w, 64);
        if (m + 2 > ctx) return aqa_fail(AQA_EINVAL, "text \"%s\" has %d words, the context holds %lld", texts[i], m,
                                         (long long)ctx - 2);
        row[0] = V + 1;
        for (int k = 0; k < m; k++) {
            long id = aqa_text_set_find(&t->words, w[k]);
            if (id < 0) return aqa_fail(AQA_EINVAL, "text \"%s\": word \"%s\" is not in the vocabulary", texts[i], w[k]);
            row[k + 1] = id + 1;
        }
        row[m + 1] = V + 2;
    }
    return AQA_OK;
}

/* Loads the tokenizer a CLIP was trained with: `bpe` (CLIP's vocabulary file) when given, else the
 * word list `vocab`. */
MC_UNUSED static aqa_status wt_load(word_tok *t, const char *vocab, const char *bpe) {
    memset(t, 0, sizeof *t);
    aqa_text_set_init(&t->words);
    if (bpe && bpe[0]) return aqa_bpe_load(bpe, &t->bpe);
    if (!vocab || !vocab[0]) return aqa_fail(AQA_EINVAL, "no tokenizer: give --vocab (word list) or --bpe");
    return aqa_text_set_load(vocab, 0, &t->words);
}

MC_UNUSED static void wt_free(word_tok *t) {
    aqa_text_set_free(&t->words);
    aqa_bpe_free(t->bpe);
    memset(t, 0, sizeof *t);
}

/* Embeds every text of the set with the CLIP text encoder: a new caller-owned [n, D] tensor.
 * frozen: no graph. */
MC_UNUSED static aqa_tensor *encode_texts(aqa_clip_model *m, word_tok *t, const aqa_text_set *texts, bool frozen) {
    int64_t ctx = m->cfg.context_length;
    int64_t *ids = calloc(texts->n * (size_t)ctx + 1, sizeof *ids);
    if (!ids) return aqa_fail_null("out of memory");
    if (wt_tokenize(t, (const char *const *)texts->texts, texts->n, ctx, ids)) {
        free(ids);
        return NULL;
    }
    aqa_tensor *x = aqa_from_data(ids, 2, (int64_t[]){(int64_t)texts->n, ctx}, AQA_I64);
    free(ids);
    aqa_tensor *f = aqa_clip_encode_text(m, x, frozen);
    aqa_tensor_free(x);
    return f;
}

#endif /* AQA_EXAMPLES_MVLA_COMMON_H */
