/* tokenizer.c: CLIP's byte-level BPE tokenizer: vocabulary loading (OpenAI's gzip file and
 * Hugging Face's vocab.json + merges.txt), BPE merging with a word cache, clip.tokenize's
 * SOT/EOT/padding/truncation, and decoding.  Text cleaning and word splitting live in
 * text_clean.c. */
#include "models/clip/tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "models/clip/text_clean.h"
#include "io/atomic_file.h"

#define N_MERGES (49152 - 256 - 2) /* merges CLIP uses: lines 1..48894 of the vocabulary file */
#define CACHE_SLOTS (1u << 16)     /* word cache slots; the cache is emptied when half full */

/* One word-cache entry: the BPE ids of a word's UTF-8 bytes. */
typedef struct cache_slot {
    uint64_t hash;    /* hash of the key bytes */
    uint32_t key_off; /* key bytes at cache_keys + key_off */
    uint32_t key_len;
    uint32_t ids_off; /* ids at cache_ids + ids_off */
    uint32_t n_ids;   /* 0: empty slot (a word always gives at least one id) */
} cache_slot;

/* One merge: the pair (a, b) of ids becomes id `result`, with priority `rank` (lower first). */
typedef struct merge_slot {
    uint64_t key;   /* a << 32 | b */
    int32_t rank;   /* -1: empty slot */
    int32_t result; /* id of the merged symbol */
} merge_slot;

struct aqa_bpe_tokenizer {
    size_t n_ids;        /* vocabulary size (largest id + 1) */
    char *pool;          /* all token strings, NUL-terminated, back to back */
    size_t pool_len, pool_cap;
    int64_t *tok_off;    /* per id: offset of its string in pool, -1 for an unused id */
    uint32_t *tok_len;   /* per id: string length in bytes */
    int32_t *str_slots;  /* open-addressing map token string -> id (-1 empty) */
    size_t str_mask;     /* str_slots size - 1 (a power of two) */
    merge_slot *merges;  /* open-addressing map (a, b) -> merge */
    size_t merge_mask;
    size_t n_merges;     /* merge lines used */
    int32_t (*merge_ids)[2]; /* per merge line: the ids of its two symbols (for saving) */
    int32_t byte_id[256];    /* id of each byte's symbol */
    int32_t byte_end_id[256];/* id of each byte's symbol followed by "</w>" */
    int64_t sot, eot;        /* ids of <|startoftext|> and <|endoftext|> */
    pthread_mutex_t lock;    /* guards the word cache */
    cache_slot *cache;       /* CACHE_SLOTS slots */
    size_t cache_used;
    char *cache_keys;        /* key bytes of cached words */
    size_t cache_keys_len, cache_keys_cap;
    int32_t *cache_ids;      /* ids of cached words */
    size_t cache_ids_len, cache_ids_cap;
};

/* ---- the byte encoder (CLIP's bytes_to_unicode) ---- */

/* Bytes in vocabulary order: printable Latin-1 bytes first, then the rest; byte_cp[b] is the
 * code point that stands for byte b in token strings. */
static void byte_tables(uint8_t order[256], uint32_t byte_cp[256]) {
    int n = 0, extra = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
            order[n++] = (uint8_t)b;
            byte_cp[b] = (uint32_t)b;
        }
    for (int b = 0; b < 256; b++)
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
            order[n++] = (uint8_t)b;
            byte_cp[b] = 256u + (uint32_t)extra++;
        }
}

/* ---- hashing and the string -> id map ---- */

static uint64_t hash_bytes(const void *p, size_t n) {
    const unsigned char *s = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static const char *tok_str(const aqa_bpe_tokenizer *t, int32_t id) { return t->pool + t->tok_off[id]; }

/* The id of the token string s[0..n), or -1. */
static int32_t find_id(const aqa_bpe_tokenizer *t, const char *s, size_t n) {
    size_t i = hash_bytes(s, n) & t->str_mask;
    for (;;) {
        int32_t id = t->str_slots[i];
        if (id < 0) return -1;
        if (t->tok_len[id] == n && memcmp(tok_str(t, id), s, n) == 0) return id;
        i = (i + 1) & t->str_mask;
    }
}

/* Sizes the tables for ids 0..n_ids-1 (all unused). */
static aqa_status alloc_ids(aqa_bpe_tokenizer *t, size_t n_ids) {
    size_t slots = 1;
    while (slots < 2 * n_ids + 16) slots *= 2;
    t->n_ids = n_ids;
    t->tok_off = malloc(n_ids * sizeof *t->tok_off);
    t->tok_len = calloc(n_ids, sizeof *t->tok_len);
    t->str_slots = malloc(slots * sizeof *t->str_slots);
    t->str_mask = slots - 1;
    if (!t->tok_off || !t->tok_len || !t->str_slots)
        return aqa_fail(AQA_ENOMEM, "BPE vocabulary: out of memory (%zu ids)", n_ids);
    for (size_t i = 0; i < n_ids; i++) t->tok_off[i] = -1;
    for (size_t i = 0; i < slots; i++) t->str_slots[i] = -1;
    return AQA_OK;
}

/* Gives id the string s[0..n); a later id with the same string wins the string -> id map, as in
 * Python's dict(zip(vocab, range(len(vocab)))). */
static aqa_status set_token(aqa_bpe_tokenizer *t, int32_t id, const char *s, size_t n) {
    if (t->pool_len + n + 1 > t->pool_cap) {
        size_t cap = t->pool_cap ? t->pool_cap : 1 << 20;
        while (cap < t->pool_len + n + 1) cap *= 2;
        char *p = realloc(t->pool, cap);
        if (!p) return aqa_fail(AQA_ENOMEM, "BPE vocabulary: out of memory");
        t->pool = p;
        t->pool_cap = cap;
    }
    memcpy(t->pool + t->pool_len, s, n);
    t->pool[t->pool_len + n] = '\0';
    t->tok_off[id] = (int64_t)t->pool_len;
    t->tok_len[id] = (uint32_t)n;
    t->pool_len += n + 1;
    size_t i = hash_bytes(s, n) & t->str_mask;
    for (;;) {
        int32_t old = t->str_slots[i];
        if (old < 0 || (t->tok_len[old] == n && memcmp(tok_str(t, old), s, n) == 0)) {
            t->str_slots[i] = id;
            return AQA_OK;
        }
        i = (i + 1) & t->str_mask;
    }
}

/* ---- merges ---- */

static merge_slot *find_merge(const aqa_bpe_tokenizer *t, int32_t a, int32_t b) {
    uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t i = hash_bytes(&key, sizeof key) & t->merge_mask;
    for (;;) {
        merge_slot *m = &t->merges[i];
        if (m->rank < 0 || m->key == key) return m;
        i = (i + 1) & t->merge_mask;
    }
}

/* Records merge line `rank` "a b" (a later duplicate pair takes the later rank, like a dict). */
static aqa_status add_merge(aqa_bpe_tokenizer *t, const char *file, size_t line, int32_t rank,
                            const char *a, size_t na, const char *b, size_t nb) {
    int32_t ia = find_id(t, a, na), ib = find_id(t, b, nb);
    if (ia < 0 || ib < 0)
        return aqa_fail(AQA_EFORMAT, "%s: line %zu: merge symbol \"%.*s\" is not in the vocabulary",
                        file, line, ia < 0 ? (int)na : (int)nb, ia < 0 ? a : b);
    char buf[512];
    if (na + nb >= sizeof buf)
        return aqa_fail(AQA_EFORMAT, "%s: line %zu: merge symbols too long", file, line);
    memcpy(buf, a, na);
    memcpy(buf + na, b, nb);
    int32_t r = find_id(t, buf, na + nb);
    if (r < 0)
        return aqa_fail(AQA_EFORMAT, "%s: line %zu: merge result \"%.*s\" is not in the vocabulary",
                        file, line, (int)(na + nb), buf);
    merge_slot *m = find_merge(t, ia, ib);
    m->key = (uint64_t)(uint32_t)ia << 32 | (uint32_t)ib;
    m->rank = rank;
    m->result = r;
    t->merge_ids[rank][0] = ia;
    t->merge_ids[rank][1] = ib;
    return AQA_OK;
}

static aqa_status alloc_merges(aqa_bpe_tokenizer *t, size_t n) {
    size_t slots = 1;
    while (slots < 2 * n + 16) slots *= 2;
    t->merges = malloc(slots * sizeof *t->merges);
    t->merge_ids = malloc((n ? n : 1) * sizeof *t->merge_ids);
    if (!t->merges || !t->merge_ids) return aqa_fail(AQA_ENOMEM, "BPE merges: out of memory");
    for (size_t i = 0; i < slots; i++) t->merges[i].rank = -1;
    t->merge_mask = slots - 1;
    t->n_merges = n;
    return AQA_OK;
}

/* A merge line split at ASCII whitespace (Python's str.split() for these files). */
typedef struct merge_line {
    const char *a, *b; /* the two symbols */
    size_t na, nb;
} merge_line;

/* Splits line[0..n) into exactly two fields; 0 when it has another number of fields. */
static int split_merge(const char *line, size_t n, merge_line *m) {
    const char *f[3];
    size_t fl[3];
    int k = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (line[i] == ' ' || (line[i] >= '\t' && line[i] <= '\r'))) i++;
        if (i == n) break;
        size_t s = i;
        while (i < n && !(line[i] == ' ' || (line[i] >= '\t' && line[i] <= '\r'))) i++;
        if (k == 3) return 0;
        f[k] = line + s;
        fl[k] = i - s;
        k++;
    }
    if (k != 2) return 0;
    m->a = f[0], m->na = fl[0], m->b = f[1], m->nb = fl[1];
    return 1;
}

/* ---- shared set-up ---- */

static aqa_bpe_tokenizer *new_tokenizer(void) {
    aqa_bpe_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return aqa_fail_null("BPE tokenizer: out of memory");
    pthread_mutex_init(&t->lock, NULL);
    t->cache = calloc(CACHE_SLOTS, sizeof *t->cache);
    if (!t->cache) {
        pthread_mutex_destroy(&t->lock);
        free(t);
        return aqa_fail_null("BPE tokenizer: out of memory");
    }
    return t;
}

void aqa_bpe_free(aqa_bpe_tokenizer *t) {
    if (!t) return;
    pthread_mutex_destroy(&t->lock);
    free(t->pool);
    free(t->tok_off);
    free(t->tok_len);
    free(t->str_slots);
    free(t->merges);
    free(t->merge_ids);
    free(t->cache);
    free(t->cache_keys);
    free(t->cache_ids);
    free(t);
}

/* Looks up the byte symbols and special tokens every vocabulary must have. */
static aqa_status find_fixed_ids(aqa_bpe_tokenizer *t, const char *file) {
    uint8_t order[256];
    uint32_t byte_cp[256];
    byte_tables(order, byte_cp);
    for (int b = 0; b < 256; b++) {
        char s[16];
        int n = aqa_clip_utf8_put(byte_cp[b], (unsigned char *)s);
        memcpy(s + n, "</w>", 4);
        t->byte_id[b] = find_id(t, s, (size_t)n);
        t->byte_end_id[b] = find_id(t, s, (size_t)n + 4);
        if (t->byte_id[b] < 0 || t->byte_end_id[b] < 0)
            return aqa_fail(AQA_EFORMAT, "%s: the vocabulary lacks the symbol of byte 0x%02X", file, b);
    }
    t->sot = find_id(t, "<|startoftext|>", 15);
    t->eot = find_id(t, "<|endoftext|>", 13);
    if (t->sot < 0 || t->eot < 0)
        return aqa_fail(AQA_EFORMAT, "%s: the vocabulary lacks <|startoftext|> or <|endoftext|>", file);
    return AQA_OK;
}

/* ---- OpenAI's bpe_simple_vocab_16e6.txt.gz ---- */

/* Reads a whole gzip (or plain) file. */
static aqa_status read_gz(const char *path, char **data, size_t *len) {
    gzFile f = gzopen(path, "rb");
    if (!f) return aqa_fail(AQA_EIO, "%s: cannot open: %s", path, errno ? strerror(errno) : "gzopen failed");
    size_t cap = 1 << 21, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        gzclose(f);
        return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (cap - n < (1 << 16)) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                gzclose(f);
                return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
            }
            buf = nb;
            cap *= 2;
        }
        int r = gzread(f, buf + n, (unsigned)(cap - n - 1));
        if (r < 0) break;
        if (r == 0) break;
        n += (size_t)r;
    }
    int err = Z_OK;
    const char *msg = gzerror(f, &err);
    if (err != Z_OK && err != Z_STREAM_END) {
        size_t pl = strlen(path); /* zlib's message starts with the path already */
        if (msg && strncmp(msg, path, pl) == 0 && msg[pl] == ':') msg += pl + 1 + (msg[pl + 1] == ' ');
        aqa_status st = aqa_fail(AQA_EIO, "%s: corrupt or truncated gzip data: %s", path, msg ? msg : "?");
        free(buf);
        gzclose(f);
        return st;
    }
    int rc = gzclose(f);
    if (rc != Z_OK) {
        free(buf);
        return aqa_fail(AQA_EIO, "%s: corrupt or truncated gzip data (%s)", path,
                        rc == Z_BUF_ERROR ? "unexpected end of file" : "read error");
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return AQA_OK;
}

/* Fills t from OpenAI's vocabulary text (data[0..len)): ids 0..255 the byte symbols, 256..511
 * the same with "</w>", then one id per merge, then <|startoftext|>, <|endoftext|>. */
static aqa_status build_openai(aqa_bpe_tokenizer *t, const char *path, const char *data, size_t len) {
    merge_line *ml = malloc(N_MERGES * sizeof *ml);
    if (!ml) return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    aqa_status st = AQA_OK;
    const char *end = data + len, *p = memchr(data, '\n', len);
    size_t line = 2, count = 0; /* 1-based number of the line at p */
    /* line 1 is a header ("#version: 0.2"), skipped whatever it says, as CLIP does */
    for (p = p ? p + 1 : NULL; p && count < N_MERGES; line++) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        if (e == p && e == end) break; /* the empty string after a final newline */
        if (memchr(p, '\0', (size_t)(e - p)) || !split_merge(p, (size_t)(e - p), &ml[count])) {
            st = aqa_fail(AQA_EFORMAT, "%s: line %zu: expected a merge \"A B\", got \"%.*s\"", path,
                          line, (int)((e - p) > 60 ? 60 : (e - p)), p);
            goto done;
        }
        count++;
        p = e < end ? e + 1 : NULL;
    }
    if (count < N_MERGES) {
        st = aqa_fail(AQA_EFORMAT, "%s: has %zu merge lines, CLIP's vocabulary needs %d (truncated or "
                      "not a BPE vocabulary?)", path, count, N_MERGES);
        goto done;
    }
    if ((st = alloc_ids(t, 512 + N_MERGES + 2)) != AQA_OK) goto done;
    uint8_t order[256];
    uint32_t byte_cp[256];
    byte_tables(order, byte_cp);
    for (int i = 0; i < 512 && st == AQA_OK; i++) {
        char s[16];
        int n = aqa_clip_utf8_put(byte_cp[order[i % 256]], (unsigned char *)s);
        if (i >= 256) memcpy(s + n, "</w>", 4), n += 4;
        st = set_token(t, i, s, (size_t)n);
    }
    for (size_t i = 0; i < N_MERGES && st == AQA_OK; i++) {
        char s[512];
        if (ml[i].na + ml[i].nb >= sizeof s) {
            st = aqa_fail(AQA_EFORMAT, "%s: line %zu: merge symbols too long", path, i + 2);
            break;
        }
        memcpy(s, ml[i].a, ml[i].na);
        memcpy(s + ml[i].na, ml[i].b, ml[i].nb);
        st = set_token(t, (int32_t)(512 + i), s, ml[i].na + ml[i].nb);
    }
    if (st == AQA_OK) st = set_token(t, 512 + N_MERGES, "<|startoftext|>", 15);
    if (st == AQA_OK) st = set_token(t, 512 + N_MERGES + 1, "<|endoftext|>", 13);
    if (st == AQA_OK) st = alloc_merges(t, N_MERGES);
    for (size_t i = 0; i < N_MERGES && st == AQA_OK; i++)
        st = add_merge(t, path, i + 2, (int32_t)i, ml[i].a, ml[i].na, ml[i].b, ml[i].nb);
    if (st == AQA_OK) st = find_fixed_ids(t, path);
done:
    free(ml);
    return st;
}

aqa_status aqa_bpe_load(const char *path, aqa_bpe_tokenizer **out) {
    if (!path || !out) return aqa_fail(AQA_EINVAL, "aqa_bpe_load: NULL argument");
    *out = NULL;
    char *data = NULL;
    size_t len = 0;
    errno = 0;
    aqa_status st = read_gz(path, &data, &len);
    if (st != AQA_OK) return st;
    aqa_bpe_tokenizer *t = new_tokenizer();
    if (!t) {
        free(data);
        return AQA_ENOMEM;
    }
    st = build_openai(t, path, data, len);
    free(data);
    if (st != AQA_OK) {
        aqa_bpe_free(t);
        return st;
    }
    *out = t;
    return AQA_OK;
}

/* ---- Hugging Face's vocab.json + merges.txt ---- */

static aqa_status read_file(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return aqa_fail(AQA_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (cap - n < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t r = fread(buf + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf) return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    if (bad) {
        free(buf);
        return aqa_fail(AQA_EIO, "%s: read error", path);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return AQA_OK;
}

static aqa_status build_hf(aqa_bpe_tokenizer *t, const char *vocab_json, const char *merges_txt) {
    char *data = NULL;
    size_t len = 0;
    aqa_status st = read_file(vocab_json, &data, &len);
    if (st != AQA_OK) return st;
    cJSON *root = cJSON_ParseWithLength(data, len);
    free(data);
    data = NULL;
    if (!root || !cJSON_IsObject(root)) {
        st = aqa_fail(AQA_EFORMAT, "%s: not a JSON object of token -> id", vocab_json);
        goto done;
    }
    double max_id = -1;
    cJSON *e;
    cJSON_ArrayForEach(e, root) {
        double v = cJSON_IsNumber(e) ? e->valuedouble : -1;
        if (!e->string || v < 0 || v > 16777215 || v != (double)(int64_t)v) {
            st = aqa_fail(AQA_EFORMAT, "%s: token \"%.40s\": id must be an integer in 0..2^24-1",
                          vocab_json, e->string ? e->string : "?");
            goto done;
        }
        if (v > max_id) max_id = v;
    }
    if (max_id < 0) {
        st = aqa_fail(AQA_EFORMAT, "%s: empty vocabulary", vocab_json);
        goto done;
    }
    if ((st = alloc_ids(t, (size_t)max_id + 1)) != AQA_OK) goto done;
    cJSON_ArrayForEach(e, root) {
        if ((st = set_token(t, (int32_t)e->valuedouble, e->string, strlen(e->string))) != AQA_OK)
            goto done;
    }
    if ((st = find_fixed_ids(t, vocab_json)) != AQA_OK) goto done;

    /* merges: content.strip().split("\n")[1:48895] as transformers' CLIPTokenizer reads it */
    if ((st = read_file(merges_txt, &data, &len)) != AQA_OK) goto done;
    const char *p = data, *end = data + len;
    while (p < end && (*p == ' ' || (*p >= '\t' && *p <= '\r'))) p++;
    while (end > p && (end[-1] == ' ' || (end[-1] >= '\t' && end[-1] <= '\r'))) end--;
    size_t n_lines = p < end ? 1 : 0;
    for (const char *q = p; q < end; q++) n_lines += *q == '\n';
    size_t n = n_lines > 1 ? n_lines - 1 : 0;
    if (n > N_MERGES) n = N_MERGES;
    if ((st = alloc_merges(t, n)) != AQA_OK) goto done;
    const char *q = memchr(p, '\n', (size_t)(end - p));
    q = q ? q + 1 : end;
    for (size_t i = 0; i < n; i++) {
        const char *eol = memchr(q, '\n', (size_t)(end - q));
        if (!eol) eol = end;
        merge_line m;
        if (memchr(q, '\0', (size_t)(eol - q)) || !split_merge(q, (size_t)(eol - q), &m)) {
            st = aqa_fail(AQA_EFORMAT, "%s: line %zu: expected a merge \"A B\", got \"%.*s\"",
                          merges_txt, i + 2, (int)((eol - q) > 60 ? 60 : (eol - q)), q);
            goto done;
        }
        if ((st = add_merge(t, merges_txt, i + 2, (int32_t)i, m.a, m.na, m.b, m.nb)) != AQA_OK)
            goto done;
        q = eol + 1;
    }
done:
    free(data);
    cJSON_Delete(root);
    return st;
}

aqa_status aqa_bpe_load_hf(const char *vocab_json, const char *merges_txt, aqa_bpe_tokenizer **out) {
    if (!vocab_json || !merges_txt || !out) return aqa_fail(AQA_EINVAL, "aqa_bpe_load_hf: NULL argument");
    *out = NULL;
    aqa_bpe_tokenizer *t = new_tokenizer();
    if (!t) return AQA_ENOMEM;
    aqa_status st = build_hf(t, vocab_json, merges_txt);
    if (st != AQA_OK) {
        aqa_bpe_free(t);
        return st;
    }
    *out = t;
    return AQA_OK;
}

static void json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
        else if (c < 0x20) fprintf(f, "\\u%04x", c);
        else fputc(c, f);
    }
    fputc('"', f);
}

aqa_status aqa_bpe_save_hf(const aqa_bpe_tokenizer *t, const char *vocab_json, const char *merges_txt) {
    if (!t || !vocab_json || !merges_txt) return aqa_fail(AQA_EINVAL, "aqa_bpe_save_hf: NULL argument");
    aqa_atomic_file *af;
    aqa_status st = aqa_atomic_open(vocab_json, &af);
    if (st) return st;
    FILE *f = aqa_atomic_stream(af);
    fputc('{', f);
    int first = 1;
    for (size_t id = 0; id < t->n_ids; id++) {
        if (t->tok_off[id] < 0 || find_id(t, tok_str(t, (int32_t)id), t->tok_len[id]) != (int32_t)id)
            continue; /* unused ids and strings shadowed by a later id are not in the map */
        if (!first) fputc(',', f);
        first = 0;
        json_string(f, tok_str(t, (int32_t)id));
        fprintf(f, ":%zu", id);
    }
    fputs("}\n", f);
    if ((st = aqa_atomic_commit(af))) return st; /* a failed write is reported here, with its reason */
    if ((st = aqa_atomic_open(merges_txt, &af))) return st;
    f = aqa_atomic_stream(af);
    fputs("#version: 0.2\n", f);
    for (size_t i = 0; i < t->n_merges; i++)
        fprintf(f, "%s %s\n", tok_str(t, t->merge_ids[i][0]), tok_str(t, t->merge_ids[i][1]));
    return aqa_atomic_commit(af);
}

/* ---- BPE ---- */

/* BPE of one word's bytes into sym[] (room for n ids); returns the number of ids.  As CLIP's
 * bpe(): repeatedly take the adjacent pair with the lowest merge rank and merge all its
 * occurrences left to right, until no pair has a rank. */
static size_t bpe_word(const aqa_bpe_tokenizer *t, const unsigned char *w, size_t n, int32_t *sym) {
    for (size_t i = 0; i + 1 < n; i++) sym[i] = t->byte_id[w[i]];
    sym[n - 1] = t->byte_end_id[w[n - 1]];
    while (n > 1) {
        int32_t best = -1, a = 0, b = 0, res = 0;
        for (size_t i = 0; i + 1 < n; i++) {
            const merge_slot *m = find_merge(t, sym[i], sym[i + 1]);
            if (m->rank >= 0 && (best < 0 || m->rank < best)) {
                best = m->rank;
                a = sym[i], b = sym[i + 1], res = m->result;
            }
        }
        if (best < 0) break;
        size_t o = 0;
        for (size_t i = 0; i < n;) {
            if (i + 1 < n && sym[i] == a && sym[i + 1] == b) {
                sym[o++] = res;
                i += 2;
            } else {
                sym[o++] = sym[i++];
            }
        }
        n = o;
    }
    return n;
}

/* Makes room for `more` ids after the *nids in *ids. */
static aqa_status grow_ids(int32_t **ids, size_t nids, size_t *cap, size_t more) {
    if (nids + more <= *cap) return AQA_OK;
    size_t c = *cap ? *cap : 256;
    while (c < nids + more) c *= 2;
    int32_t *p = realloc(*ids, c * sizeof *p);
    if (!p) return aqa_fail(AQA_ENOMEM, "BPE: out of memory");
    *ids = p;
    *cap = c;
    return AQA_OK;
}

/* Appends to ids the BPE ids of word bytes w[0..n) (n >= 1), through the cache. */
static aqa_status word_ids(aqa_bpe_tokenizer *t, const unsigned char *w, size_t n, int32_t **ids,
                           size_t *nids, size_t *cap) {
    aqa_status st = grow_ids(ids, *nids, cap, n);
    if (st != AQA_OK) return st;
    uint64_t h = hash_bytes(w, n);
    size_t slot = h & (CACHE_SLOTS - 1);
    pthread_mutex_lock(&t->lock);
    for (;;) {
        cache_slot *c = &t->cache[slot];
        if (!c->n_ids) break;
        if (c->hash == h && c->key_len == n && memcmp(t->cache_keys + c->key_off, w, n) == 0) {
            memcpy(*ids + *nids, t->cache_ids + c->ids_off, c->n_ids * sizeof(int32_t));
            *nids += c->n_ids;
            pthread_mutex_unlock(&t->lock);
            return AQA_OK;
        }
        slot = (slot + 1) & (CACHE_SLOTS - 1);
    }
    pthread_mutex_unlock(&t->lock);

    size_t k = bpe_word(t, w, n, *ids + *nids);

    /* remember it; the cache is emptied when half full, and words are skipped when the arenas
     * cannot grow (the cache only saves time) */
    pthread_mutex_lock(&t->lock);
    if (t->cache_used >= CACHE_SLOTS / 2) {
        memset(t->cache, 0, CACHE_SLOTS * sizeof *t->cache);
        t->cache_used = 0;
        t->cache_keys_len = 0;
        t->cache_ids_len = 0;
    }
    int room = n < (1u << 16);
    if (room && t->cache_keys_len + n > t->cache_keys_cap) {
        size_t c = t->cache_keys_cap ? t->cache_keys_cap * 2 : 1 << 16;
        while (c < t->cache_keys_len + n) c *= 2;
        char *p = realloc(t->cache_keys, c);
        if (p) t->cache_keys = p, t->cache_keys_cap = c;
        else room = 0;
    }
    if (room && t->cache_ids_len + k > t->cache_ids_cap) {
        size_t c = t->cache_ids_cap ? t->cache_ids_cap * 2 : 1 << 15;
        while (c < t->cache_ids_len + k) c *= 2;
        int32_t *p = realloc(t->cache_ids, c * sizeof *p);
        if (p) t->cache_ids = p, t->cache_ids_cap = c;
        else room = 0;
    }
    if (room) {
        slot = h & (CACHE_SLOTS - 1);
        while (t->cache[slot].n_ids) {
            cache_slot *c = &t->cache[slot];
            if (c->hash == h && c->key_len == n && memcmp(t->cache_keys + c->key_off, w, n) == 0)
                break; /* another thread added it meanwhile */
            slot = (slot + 1) & (CACHE_SLOTS - 1);
        }
        cache_slot *c = &t->cache[slot];
        if (!c->n_ids) {
            c->hash = h;
            c->key_off = (uint32_t)t->cache_keys_len;
            c->key_len = (uint32_t)n;
            c->ids_off = (uint32_t)t->cache_ids_len;
            c->n_ids = (uint32_t)k;
            memcpy(t->cache_keys + t->cache_keys_len, w, n);
            memcpy(t->cache_ids + t->cache_ids_len, *ids + *nids, k * sizeof(int32_t));
            t->cache_keys_len += n;
            t->cache_ids_len += k;
            t->cache_used++;
        }
    }
    pthread_mutex_unlock(&t->lock);
    *nids += k;
    return AQA_OK;
}

/* Encodes text into *ids (malloc'ed); stops once more than `limit` ids are known. */
static aqa_status encode(aqa_bpe_tokenizer *t, const char *text, size_t limit, int32_t **ids, size_t *nids) {
    aqa_u32vec s = {0};
    aqa_clip_word *words = NULL;
    size_t n_words = 0, cap = 0;
    unsigned char *buf = NULL;
    size_t buf_cap = 0;
    *ids = NULL;
    *nids = 0;
    aqa_clip_utf8_decode(text, strlen(text), &s);
    aqa_status st = s.oom ? aqa_fail(AQA_ENOMEM, "BPE: out of memory") : aqa_clip_clean(&s);
    if (st == AQA_OK) st = aqa_clip_split_words(&s, &words, &n_words);
    for (size_t w = 0; w < n_words && st == AQA_OK && *nids <= limit; w++) {
        if (words[w].special) {
            int32_t id = (int32_t)(words[w].special == 1 ? t->sot : t->eot);
            st = grow_ids(ids, *nids, &cap, 1);
            if (st == AQA_OK) (*ids)[(*nids)++] = id;
            continue;
        }
        size_t need = words[w].len * 4;
        if (need > buf_cap) {
            unsigned char *nb = realloc(buf, need);
            if (!nb) {
                st = aqa_fail(AQA_ENOMEM, "BPE: out of memory");
                break;
            }
            buf = nb;
            buf_cap = need;
        }
        size_t nb = 0;
        for (size_t k = 0; k < words[w].len; k++) nb += (size_t)aqa_clip_utf8_put(s.v[words[w].start + k], buf + nb);
        st = word_ids(t, buf, nb, ids, nids, &cap);
    }
    free(buf);
    free(words);
    aqa_u32vec_free(&s);
    if (st != AQA_OK) {
        free(*ids);
        *ids = NULL;
        *nids = 0;
    }
    return st;
}

aqa_status aqa_bpe_encode(aqa_bpe_tokenizer *t, const char *text, int64_t **ids, size_t *n) {
    if (!t || !text || !ids || !n) return aqa_fail(AQA_EINVAL, "aqa_bpe_encode: NULL argument");
    int32_t *v;
    size_t nv;
    *ids = NULL;
    *n = 0;
    aqa_status st = encode(t, text, SIZE_MAX, &v, &nv);
    if (st != AQA_OK) return st;
    if (nv) {
        *ids = malloc(nv * sizeof **ids);
        if (!*ids) {
            free(v);
            return aqa_fail(AQA_ENOMEM, "aqa_bpe_encode: out of memory");
        }
        for (size_t i = 0; i < nv; i++) (*ids)[i] = v[i];
    }
    *n = nv;
    free(v);
    return AQA_OK;
}

aqa_status aqa_bpe_tokenize(aqa_bpe_tokenizer *t, const char *const *texts, size_t n_texts,
                            size_t context, int truncate, int64_t *out) {
    if (!t || (n_texts && (!texts || !out))) return aqa_fail(AQA_EINVAL, "aqa_bpe_tokenize: NULL argument");
    if (context < 2) return aqa_fail(AQA_EINVAL, "aqa_bpe_tokenize: context_length %zu < 2", context);
    for (size_t i = 0; i < n_texts; i++) {
        if (!texts[i]) return aqa_fail(AQA_EINVAL, "aqa_bpe_tokenize: text %zu is NULL", i);
        int32_t *v;
        size_t nv;
        aqa_status st = encode(t, texts[i], context - 1, &v, &nv);
        if (st != AQA_OK) return st;
        int64_t *row = out + i * context;
        if (nv + 2 > context && !truncate) {
            free(v);
            return aqa_fail(AQA_EINVAL, "aqa_bpe_tokenize: text %zu (\"%.40s%s\") is too long for context length %zu",
                            i, texts[i], strlen(texts[i]) > 40 ? "..." : "", context);
        }
        size_t k = 0;
        row[k++] = t->sot;
        for (size_t j = 0; j < nv && k < context - 1; j++) row[k++] = v[j];
        row[k++] = t->eot;
        while (k < context) row[k++] = 0;
        free(v);
    }
    return AQA_OK;
}

/* ---- decoding ---- */

aqa_status aqa_bpe_decode(const aqa_bpe_tokenizer *t, const int64_t *ids, size_t n, char **text) {
    if (!t || (n && !ids) || !text) return aqa_fail(AQA_EINVAL, "aqa_bpe_decode: NULL argument");
    *text = NULL;
    uint8_t order[256];
    uint32_t byte_cp[256];
    int16_t dec[512]; /* code point -> byte (all byte code points are below 512) */
    byte_tables(order, byte_cp);
    for (int i = 0; i < 512; i++) dec[i] = -1;
    for (int b = 0; b < 256; b++) dec[byte_cp[b]] = (int16_t)b;
    /* the token strings mapped back to bytes */
    aqa_u32vec cps = {0};
    size_t nbytes = 0, cap = 64;
    unsigned char *bytes = malloc(cap);
    if (!bytes) return aqa_fail(AQA_ENOMEM, "aqa_bpe_decode: out of memory");
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || (size_t)ids[i] >= t->n_ids || t->tok_off[ids[i]] < 0) {
            free(bytes);
            aqa_u32vec_free(&cps); /* filled by the ids before this one */
            return aqa_fail(AQA_EINVAL, "aqa_bpe_decode: id %lld (position %zu) is not in the vocabulary",
                            (long long)ids[i], i);
        }
        cps.n = 0;
        aqa_clip_utf8_decode(tok_str(t, (int32_t)ids[i]), t->tok_len[ids[i]], &cps);
        if (nbytes + cps.n + 1 > cap) {
            while (nbytes + cps.n + 1 > cap) cap *= 2;
            unsigned char *p = realloc(bytes, cap);
            if (!p) {
                free(bytes);
                aqa_u32vec_free(&cps);
                return aqa_fail(AQA_ENOMEM, "aqa_bpe_decode: out of memory");
            }
            bytes = p;
        }
        for (size_t k = 0; k < cps.n; k++) {
            if (cps.v[k] >= 512 || dec[cps.v[k]] < 0) {
                free(bytes);
                aqa_u32vec_free(&cps);
                return aqa_fail(AQA_EINVAL, "aqa_bpe_decode: token %lld holds a character outside the byte encoder",
                                (long long)ids[i]);
            }
            bytes[nbytes++] = (unsigned char)dec[cps.v[k]];
        }
    }
    /* bytes.decode("utf-8", errors="replace").replace("</w>", " ") */
    cps.n = 0;
    aqa_clip_utf8_decode((const char *)bytes, nbytes, &cps);
    free(bytes);
    char *s = malloc(cps.n * 4 + 1);
    if (!s || cps.oom) {
        free(s);
        aqa_u32vec_free(&cps);
        return aqa_fail(AQA_ENOMEM, "aqa_bpe_decode: out of memory");
    }
    size_t o = 0;
    for (size_t k = 0; k < cps.n; k++) {
        if (cps.v[k] == '<' && k + 3 < cps.n && cps.v[k + 1] == '/' && cps.v[k + 2] == 'w' && cps.v[k + 3] == '>') {
            s[o++] = ' ';
            k += 3;
            continue;
        }
        o += (size_t)aqa_clip_utf8_put(cps.v[k], (unsigned char *)s + o);
    }
    s[o] = '\0';
    aqa_u32vec_free(&cps);
    *text = s;
    return AQA_OK;
}

char *aqa_bpe_clean_text(const char *text) {
    if (!text) return aqa_fail_null("aqa_bpe_clean_text: NULL text");
    aqa_u32vec s = {0};
    aqa_clip_utf8_decode(text, strlen(text), &s);
    if (s.oom || aqa_clip_clean(&s) != AQA_OK) {
        aqa_u32vec_free(&s);
        return aqa_fail_null("aqa_bpe_clean_text: out of memory");
    }
    char *out = malloc(s.n * 4 + 1);
    if (!out) {
        aqa_u32vec_free(&s);
        return aqa_fail_null("aqa_bpe_clean_text: out of memory");
    }
    size_t o = 0;
    for (size_t i = 0; i < s.n; i++) o += (size_t)aqa_clip_utf8_put(s.v[i], (unsigned char *)out + o);
    out[o] = '\0';
    aqa_u32vec_free(&s);
    return out;
}

size_t aqa_bpe_vocab_size(const aqa_bpe_tokenizer *t) { return t ? t->n_ids : 0; }
int64_t aqa_bpe_sot(const aqa_bpe_tokenizer *t) { return t ? t->sot : -1; }
int64_t aqa_bpe_eot(const aqa_bpe_tokenizer *t) { return t ? t->eot : -1; }

const char *aqa_bpe_token(const aqa_bpe_tokenizer *t, int64_t id) {
    if (!t || id < 0 || (size_t)id >= t->n_ids || t->tok_off[id] < 0) return NULL;
    return tok_str(t, (int32_t)id);
}
