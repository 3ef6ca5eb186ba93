/* cli.h: the one command-line and settings parser of every example program.
 *
 * A program declares its settings with a type, a default and a help line; the parser reads them
 * from a file (`--config FILE`: `key = value` lines, '#' starts a comment), then from the flags
 * (`--key value`, `--key=value`; a switch alone means true, `--no-key` false), and checks every
 * value as it is set: integers and numbers parse completely and lie in their declared range,
 * switches are true/false (1/0, yes/no, on/off), choices are one of their words.  A bad value, an
 * unknown key, a missing value, a stray argument or an over-long config line stops the program
 * with a message naming the flag (or the file and line) and the value; `--help` prints the
 * settings with their defaults and ranges and the program exits 0.  Keys use '_' or '-'
 * interchangeably.  The resolved settings can be written back as a config file (kv_save) or a
 * flat JSON object (kv_to_json, read back by kv_from_json through cJSON).
 *
 *     kv_config c = {.program = "tool", .about = "What the tool does."};
 *     kv_def_int(&c, "epochs", "20", 1, 1000000, "training epochs");
 *     kv_def_num(&c, "lr", "1e-3", 0, 10, "learning rate");
 *     kv_def(&c, "out", "runs/x", "run folder");                        // any text
 *     int pr = kv_parse_args(&c, argc, argv, "--data DIR [settings]");
 *     if (pr) return kv_exit_code(pr);                                 // 0 after --help
 *     long epochs = kv_int(&c, "epochs");                              // checked already
 *     ...
 *     kv_free(&c);                                                     // lists only
 */
#ifndef AQA_EXAMPLES_CLI_H
#define AQA_EXAMPLES_CLI_H

#include <stdbool.h>
#include <stdio.h>

#define KV_MAX 160        /* settings per program */
#define KV_VALUE_MAX 1024 /* bytes of one value, with its terminating NUL */
#define KV_LINE_MAX 4096  /* bytes of one config-file line, with its newline */

typedef enum kv_type {
    KV_STR = 0, /* any text */
    KV_INT,     /* integer in [min, max] */
    KV_NUM,     /* finite number in [min, max] */
    KV_BOOL,    /* switch */
    KV_CHOICE,  /* one of the words in `choices` (case-insensitive) */
    KV_LIST     /* several texts: `--key a b c` (up to the next flag), repeatable */
} kv_type;

typedef struct kv_entry {
    const char *key;           /* canonical name with '_' */
    char value[KV_VALUE_MAX];  /* current value as text (a list: its number of items) */
    const char *help;          /* one line for --help */
    kv_type type;              /* how values are checked */
    double min, max;           /* KV_INT / KV_NUM: the allowed range, inclusive */
    const char *choices;       /* KV_CHOICE: the words, separated by '|' */
    bool set;                  /* given in a file, a flag or a checkpoint (not the default) */
    char **items;              /* KV_LIST: malloc'd copies of the values, in order */
    int n_items;               /* KV_LIST: how many */
} kv_entry;

typedef struct kv_config {
    kv_entry e[KV_MAX];  /* the declared settings, in declaration order */
    int n;               /* how many are declared */
    const char *program; /* name used in messages */
    const char *about;   /* one paragraph printed by --help before the settings; may be NULL */
    const char *positional; /* the key that takes the one argument given without a flag (score_video's
                             * video), or NULL: then such an argument is an error */
} kv_config;

/* Declarations (the default must be a valid value; a bad one is reported when parsing). */
void kv_def(kv_config *c, const char *key, const char *def, const char *help);
void kv_def_int(kv_config *c, const char *key, const char *def, double min, double max, const char *help);
void kv_def_num(kv_config *c, const char *key, const char *def, double min, double max, const char *help);
void kv_def_bool(kv_config *c, const char *key, const char *def, const char *help);
void kv_def_choice(kv_config *c, const char *key, const char *def, const char *choices, const char *help);
void kv_def_list(kv_config *c, const char *key, const char *help);

/* The entry of a key ('-' or '_'), or NULL. */
kv_entry *kv_find(kv_config *c, const char *key);
/* Checks and sets a value; `where` names its origin in messages ("command line", "FILE:LINE").
 * A list entry gets the value appended.  Returns 0, or 1 after a message on stderr. */
int kv_set(kv_config *c, const char *key, const char *value, const char *where);
/* Reads a key = value file.  Returns 0, or 1 after a message naming the file and line. */
int kv_load_file(kv_config *c, const char *path);
/* Parses argv: --config FILE first (wherever it is), then the flags in order, then checks every
 * default.  Returns 0, 1 on a bad argument (message printed) or 2 for --help (usage printed on
 * stdout). */
int kv_parse_args(kv_config *c, int argc, char **argv, const char *synopsis);
/* The exit status for a kv_parse_args result: 0 after --help, else 2 (a usage error). */
int kv_exit_code(int parse_result);
/* Whether the key was given (a flag, a --config file or a checkpoint), not left at its default. */
bool kv_given(kv_config *c, const char *key);
void kv_usage(kv_config *c, FILE *to, const char *synopsis);
/* Frees the lists' items. */
void kv_free(kv_config *c);

/* Typed reads of a declared key (values were checked when set). */
const char *kv_str(kv_config *c, const char *key);
bool kv_has(kv_config *c, const char *key); /* a non-empty value */
long kv_int(kv_config *c, const char *key);
double kv_double(kv_config *c, const char *key);
bool kv_bool(kv_config *c, const char *key);
/* A list's items (*n receives their number). */
char **kv_list(kv_config *c, const char *key, int *n);

/* The resolved settings as a flat JSON object of strings (malloc'd; lists are left out). */
char *kv_to_json(kv_config *c);
/* Sets the keys of a flat JSON object of strings (what kv_to_json writes), each checked as a flag
 * would be, `where` naming the source in messages; keys this program does not declare are
 * skipped when lenient.  Returns 0, or 1 after a message on stderr. */
int kv_from_json(kv_config *c, const char *json, bool lenient, const char *where);
/* Compares the settings with a flat JSON object of strings (a checkpoint's): writes "key (was A,
 * now B); ..." for each declared key both hold with different values into out (size n), leaving
 * out the keys listed in `skip` (NULL-terminated).  Returns the number of differences, or -1 when
 * json is not such an object. */
int kv_diff_json(kv_config *c, const char *json, const char *const *skip, char *out, size_t n);
/* Writes the resolved settings as a config file (atomic; re-loadable with --config).  Returns 0,
 * or 1 with the reason in aqa_last_error(). */
int kv_save(kv_config *c, const char *path);

/* mkdir -p.  Returns 0, or -1 with errno set. */
int mkdir_p(const char *path);

#endif /* AQA_EXAMPLES_CLI_H */
