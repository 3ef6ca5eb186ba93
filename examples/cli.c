/* cli.c: the example programs' settings parser (see cli.h). */
#include "examples/cli.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "io/atomic_file.h"
#include "base/error.h"

#define KEY_MAX 128 /* bytes of a key; longer names are never declared ones */

/* ---- declarations ------------------------------------------------------------------------- */

static kv_entry *def(kv_config *c, const char *key, const char *def, kv_type type, const char *help) {
    if (c->n >= KV_MAX) {
        fprintf(stderr, "%s: too many settings (raise KV_MAX)\n", c->program);
        abort(); /* a programming error, caught by any run of the program */
    }
    kv_entry *e = &c->e[c->n++];
    memset(e, 0, sizeof *e);
    e->key = key;
    e->type = type;
    e->help = help;
    snprintf(e->value, sizeof e->value, "%s", def ? def : "");
    return e;
}

void kv_def(kv_config *c, const char *key, const char *d, const char *help) { def(c, key, d, KV_STR, help); }

void kv_def_int(kv_config *c, const char *key, const char *d, double min, double max, const char *help) {
    kv_entry *e = def(c, key, d, KV_INT, help);
    e->min = min;
    e->max = max;
}

void kv_def_num(kv_config *c, const char *key, const char *d, double min, double max, const char *help) {
    kv_entry *e = def(c, key, d, KV_NUM, help);
    e->min = min;
    e->max = max;
}

void kv_def_bool(kv_config *c, const char *key, const char *d, const char *help) { def(c, key, d, KV_BOOL, help); }

void kv_def_choice(kv_config *c, const char *key, const char *d, const char *choices, const char *help) {
    def(c, key, d, KV_CHOICE, help)->choices = choices;
}

void kv_def_list(kv_config *c, const char *key, const char *help) { def(c, key, "0", KV_LIST, help); }

/* ---- lookup and checked values ------------------------------------------------------------ */

/* key with '-' as '_' into out; false when it does not fit (no declared key is that long). */
static bool norm_key(const char *in, char *out) {
    size_t k = 0;
    for (; in[k]; k++) {
        if (k + 1 >= KEY_MAX) return false;
        out[k] = in[k] == '-' ? '_' : in[k];
    }
    out[k] = 0;
    return true;
}

kv_entry *kv_find(kv_config *c, const char *key) {
    char k[KEY_MAX];
    if (!norm_key(key, k)) return NULL;
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->e[i].key, k)) return &c->e[i];
    return NULL;
}

static int parse_bool(const char *v, bool *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"}, *const no[] = {"0", "false", "no", "off"};
    for (int i = 0; i < 4; i++) {
        if (!strcasecmp(v, yes[i])) return *out = true, 0;
        if (!strcasecmp(v, no[i])) return *out = false, 0;
    }
    return -1;
}

static bool is_choice(const char *choices, const char *v) {
    size_t n = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && !strncasecmp(p, v, n)) return true;
        if (!bar) break;
        p = bar + 1;
    }
    return false;
}

/* A range bound as text: integers without a fraction, huge ones as such. */
static void bound_text(double v, char *buf, size_t n) {
    if (fabs(v) >= 1e15) snprintf(buf, n, "%s", v < 0 ? "-inf" : "inf");
    else snprintf(buf, n, "%.10g", v);
}

/* Checks one value against an entry's type; 0, or 1 after a message. */
static int check_value(kv_config *c, const kv_entry *e, const char *v, const char *where) {
    char lo[32], hi[32];
    bound_text(e->min, lo, sizeof lo);
    bound_text(e->max, hi, sizeof hi);
    switch (e->type) {
    case KV_STR:
    case KV_LIST: return 0;
    case KV_BOOL: {
        bool b;
        if (parse_bool(v, &b) == 0) return 0;
        fprintf(stderr, "%s: --%s (%s): \"%s\" is not true or false\n", c->program, e->key, where, v);
        return 1;
    }
    case KV_CHOICE:
        if (is_choice(e->choices, v)) return 0;
        fprintf(stderr, "%s: --%s (%s): \"%s\" is not one of %s\n", c->program, e->key, where, v, e->choices);
        return 1;
    case KV_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (end == v || *end || errno || isspace((unsigned char)*v)) {
            fprintf(stderr, "%s: --%s (%s): \"%s\" is not an integer\n", c->program, e->key, where, v);
            return 1;
        }
        if ((double)x < e->min || (double)x > e->max) {
            fprintf(stderr, "%s: --%s (%s): %lld is outside %s..%s\n", c->program, e->key, where, x, lo, hi);
            return 1;
        }
        return 0;
    }
    case KV_NUM: {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (end == v || *end || isspace((unsigned char)*v) || !isfinite(x) || (errno == ERANGE && x != 0)) {
            fprintf(stderr, "%s: --%s (%s): \"%s\" is not a finite number\n", c->program, e->key, where, v);
            return 1;
        }
        if (x < e->min || x > e->max) {
            fprintf(stderr, "%s: --%s (%s): %s is outside %s..%s\n", c->program, e->key, where, v, lo, hi);
            return 1;
        }
        return 0;
    }
    }
    return 0;
}

int kv_set(kv_config *c, const char *key, const char *value, const char *where) {
    kv_entry *e = kv_find(c, key);
    if (!e) {
        fprintf(stderr, "%s: unknown setting \"%.200s\" (%s); --help lists them\n", c->program, key, where);
        return 1;
    }
    if (strlen(value) >= sizeof e->value) {
        fprintf(stderr, "%s: --%s (%s): the value is longer than %zu bytes\n", c->program, e->key, where,
                sizeof e->value - 1);
        return 1;
    }
    if (check_value(c, e, value, where)) return 1;
    if (e->type == KV_LIST) {
        char **g = realloc(e->items, (size_t)(e->n_items + 1) * sizeof *g);
        char *d = strdup(value);
        if (!g || !d) {
            free(d);
            if (g) e->items = g;
            fprintf(stderr, "%s: out of memory\n", c->program);
            return 1;
        }
        e->items = g;
        e->items[e->n_items++] = d;
        snprintf(e->value, sizeof e->value, "%d", e->n_items);
    } else {
        snprintf(e->value, sizeof e->value, "%s", value);
    }
    e->set = true;
    return 0;
}

static const char *value_of(kv_config *c, const char *key) {
    kv_entry *e = kv_find(c, key);
    if (!e) {
        fprintf(stderr, "%s: internal error: setting \"%s\" is not declared\n", c->program, key);
        abort();
    }
    return e->value;
}

const char *kv_str(kv_config *c, const char *key) { return value_of(c, key); }
bool kv_has(kv_config *c, const char *key) { return value_of(c, key)[0] != 0; }
long kv_int(kv_config *c, const char *key) { return strtol(value_of(c, key), NULL, 10); }
double kv_double(kv_config *c, const char *key) { return strtod(value_of(c, key), NULL); }
bool kv_bool(kv_config *c, const char *key) {
    bool b = false;
    parse_bool(value_of(c, key), &b);
    return b;
}

char **kv_list(kv_config *c, const char *key, int *n) {
    value_of(c, key);
    kv_entry *e = kv_find(c, key);
    *n = e->n_items;
    return e->items;
}

void kv_free(kv_config *c) {
    for (int i = 0; i < c->n; i++) {
        for (int k = 0; k < c->e[i].n_items; k++) free(c->e[i].items[k]);
        free(c->e[i].items);
        c->e[i].items = NULL;
        c->e[i].n_items = 0;
    }
}

/* ---- config files ------------------------------------------------------------------------- */

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    return s;
}

int kv_load_file(kv_config *c, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open config %s: %s\n", c->program, path, strerror(errno));
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int ln = 0, bad = 0;
    while (!bad && (len = getline(&line, &cap, f)) >= 0) {
        ln++;
        if (len > KV_LINE_MAX - 1) {
            fprintf(stderr, "%s: %s:%d: line longer than %d bytes\n", c->program, path, ln, KV_LINE_MAX - 1);
            bad = 1;
            break;
        }
        if (memchr(line, 0, (size_t)len)) {
            fprintf(stderr, "%s: %s:%d: the line holds a NUL byte\n", c->program, path, ln);
            bad = 1;
            break;
        }
        char *h = strchr(line, '#');
        if (h) *h = 0;
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            fprintf(stderr, "%s: %s:%d: expected key = value\n", c->program, path, ln);
            bad = 1;
            break;
        }
        *eq = 0;
        char where[64 + 1024];
        snprintf(where, sizeof where, "%.1024s:%d", path, ln);
        bad = kv_set(c, trim(s), trim(eq + 1), where);
    }
    if (!bad && ferror(f)) {
        fprintf(stderr, "%s: reading config %s: %s\n", c->program, path, strerror(errno));
        bad = 1;
    }
    free(line);
    fclose(f);
    return bad;
}

int kv_save(kv_config *c, const char *path) {
    aqa_atomic_file *af;
    if (aqa_atomic_open(path, &af)) return 1;
    FILE *f = aqa_atomic_stream(af);
    fprintf(f, "# %s: resolved settings of this run (load with --config)\n", c->program);
    for (int i = 0; i < c->n; i++) {
        const kv_entry *e = &c->e[i];
        if (e->type == KV_LIST)
            for (int k = 0; k < e->n_items; k++) fprintf(f, "%s = %s\n", e->key, e->items[k]);
        else
            fprintf(f, "%s = %s\n", e->key, e->value);
    }
    return aqa_atomic_commit(af) != AQA_OK;
}

/* ---- the command line --------------------------------------------------------------------- */

static const char *type_hint(const kv_entry *e, char *buf, size_t n) {
    char lo[32], hi[32];
    bound_text(e->min, lo, sizeof lo);
    bound_text(e->max, hi, sizeof hi);
    switch (e->type) {
    case KV_INT: snprintf(buf, n, "integer %s..%s", lo, hi); break;
    case KV_NUM: snprintf(buf, n, "number %s..%s", lo, hi); break;
    case KV_BOOL: snprintf(buf, n, "switch; --no-%s", e->key); break;
    case KV_CHOICE: snprintf(buf, n, "%s", e->choices); break;
    case KV_LIST: snprintf(buf, n, "one or more values"); break;
    case KV_STR: buf[0] = 0; break;
    }
    return buf;
}

void kv_usage(kv_config *c, FILE *to, const char *synopsis) {
    fprintf(to, "usage: %s %s\n", c->program, synopsis);
    if (c->about) fprintf(to, "%s\n", c->about);
    fprintf(to, "settings (--key value, or key = value lines in --config FILE):\n");
    for (int i = 0; i < c->n; i++) {
        const kv_entry *e = &c->e[i];
        char hint[160];
        type_hint(e, hint, sizeof hint);
        fprintf(to, "  --%-22s %s", e->key, e->help);
        if (hint[0]) fprintf(to, " [%s]", hint);
        if (e->type != KV_LIST) fprintf(to, " (default: %s)", e->value[0] ? e->value : "\"\"");
        fputc('\n', to);
    }
}

int kv_exit_code(int parse_result) { return parse_result == 2 ? 0 : 2; }

bool kv_given(kv_config *c, const char *key) {
    kv_entry *e = kv_find(c, key);
    return e && e->set;
}

static bool is_flag(const char *a) { return a[0] == '-' && a[1] == '-' && a[2]; }

int kv_parse_args(kv_config *c, int argc, char **argv, const char *synopsis) {
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            kv_usage(c, stdout, synopsis);
            return 2;
        }
    }
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config")) continue;
        if (i + 1 >= argc) {
            fprintf(stderr, "%s: --config needs a file\n", c->program);
            return 1;
        }
        if (kv_load_file(c, argv[++i])) return 1;
    }
    bool positional_seen = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--config")) {
            i++;
            continue;
        }
        if (!is_flag(a)) {
            if (c->positional && !positional_seen) {
                positional_seen = true;
                if (kv_set(c, c->positional, a, "command line")) return 1;
                continue;
            }
            fprintf(stderr, "%s: unexpected argument \"%.200s\"; --help lists the settings\n", c->program, a);
            return 1;
        }
        char key[KEY_MAX + 8];
        const char *eq = strchr(a + 2, '=');
        size_t klen = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (klen >= KEY_MAX) {
            fprintf(stderr, "%s: unknown setting \"%.60s...\" (command line); --help lists them\n", c->program, a + 2);
            return 1;
        }
        memcpy(key, a + 2, klen);
        key[klen] = 0;
        kv_entry *e = kv_find(c, key);
        if (eq) {
            if (kv_set(c, key, eq + 1, "command line")) return 1;
            continue;
        }
        if (!e && !strncmp(key, "no-", 3) && (e = kv_find(c, key + 3)) && e->type == KV_BOOL) {
            if (kv_set(c, key + 3, "false", "command line")) return 1;
            continue;
        }
        if (!e) return kv_set(c, key, "", "command line"); /* the unknown-setting message */
        bool b;
        if (e->type == KV_BOOL) { /* a switch takes a value only when one follows */
            bool val = i + 1 < argc && parse_bool(argv[i + 1], &b) == 0;
            if (kv_set(c, key, val ? argv[++i] : "true", "command line")) return 1;
            continue;
        }
        if (i + 1 >= argc || is_flag(argv[i + 1])) {
            fprintf(stderr, "%s: --%s needs a value\n", c->program, e->key);
            return 1;
        }
        if (e->type == KV_LIST) {
            while (i + 1 < argc && !is_flag(argv[i + 1]))
                if (kv_set(c, key, argv[++i], "command line")) return 1;
            continue;
        }
        if (kv_set(c, key, argv[++i], "command line")) return 1;
    }
    /* the defaults of what was not set (a bad default is a bug of the program, reported here) */
    for (int i = 0; i < c->n; i++)
        if (!c->e[i].set && check_value(c, &c->e[i], c->e[i].value, "default")) return 1;
    return 0;
}

/* ---- JSON --------------------------------------------------------------------------------- */

char *kv_to_json(kv_config *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    for (int i = 0; i < c->n; i++) {
        if (c->e[i].type == KV_LIST) continue;
        if (!cJSON_AddStringToObject(o, c->e[i].key, c->e[i].value)) {
            cJSON_Delete(o);
            return NULL;
        }
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

int kv_from_json(kv_config *c, const char *json, bool lenient, const char *where) {
    cJSON *o = cJSON_Parse(json);
    int bad = 0;
    if (!cJSON_IsObject(o)) {
        fprintf(stderr, "%s: %s: the settings are not a JSON object\n", c->program, where);
        cJSON_Delete(o);
        return 1;
    }
    for (const cJSON *it = o->child; it && !bad; it = it->next) {
        if (!it->string) continue;
        if (!cJSON_IsString(it)) {
            fprintf(stderr, "%s: %s: setting \"%.200s\" is not a string\n", c->program, where, it->string);
            bad = 1;
        } else if (!kv_find(c, it->string)) {
            if (!lenient) bad = kv_set(c, it->string, it->valuestring, where);
        } else {
            bad = kv_set(c, it->string, it->valuestring, where);
        }
    }
    cJSON_Delete(o);
    return bad;
}

int kv_diff_json(kv_config *c, const char *json, const char *const *skip, char *out, size_t n) {
    cJSON *o = cJSON_Parse(json);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return -1;
    }
    int diffs = 0;
    size_t len = 0;
    if (n) out[0] = 0;
    for (const cJSON *it = o->child; it; it = it->next) {
        const kv_entry *e = it->string && cJSON_IsString(it) ? kv_find(c, it->string) : NULL;
        if (!e || e->type == KV_LIST || !strcmp(e->value, it->valuestring)) continue;
        bool skipped = false;
        for (int k = 0; skip && skip[k] && !skipped; k++) skipped = !strcmp(skip[k], e->key);
        if (skipped) continue;
        if (len < n)
            len += (size_t)snprintf(out + len, n - len, "%s%s (was \"%.100s\", now \"%.100s\")", diffs ? "; " : "", e->key,
                                    it->valuestring, e->value);
        diffs++;
    }
    cJSON_Delete(o);
    return diffs;
}

/* ---- folders ------------------------------------------------------------------------------ */

int mkdir_p(const char *path) {
    size_t n = strlen(path);
    char *buf = malloc(n + 1);
    if (!buf) return -1;
    memcpy(buf, path, n + 1);
    int rc = 0;
    for (char *p = buf + 1; *p && !rc; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) rc = -1;
        *p = '/';
    }
    if (!rc && mkdir(buf, 0777) != 0 && errno != EEXIST) rc = -1;
    struct stat st;
    if (!rc && (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))) {
        rc = -1;
        if (!errno || errno == EEXIST) errno = ENOTDIR;
    }
    int e = errno;
    free(buf);
    errno = e;
    return rc;
}
