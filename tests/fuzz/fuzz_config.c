/* fuzz_config.c: the example programs' settings parser (examples/cli.h): a --config file (the
 * input up to FUZZ_SEP) and a command line (the rest, its arguments separated by NUL bytes), with
 * a key of every type. */
#define _GNU_SOURCE /* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "examples/cli.h"
#include "tests/fuzz/fuzz.h"

static void declare(kv_config *c) {
    kv_def(c, "data", "", "text");
    kv_def_int(c, "epochs", "20", 1, 1e6, "integer");
    kv_def_num(c, "lr", "1e-3", 0, 10, "number");
    kv_def_bool(c, "resume", "false", "switch");
    kv_def_choice(c, "head", "tsa", "tsa|core|mlp", "choice");
    kv_def_list(c, "labels", "list");
}

FUZZ_TARGET(config) {
    static const char *const names[2] = {"run.conf", "args"};
    if (fuzz_files(data, size, names, 2)) return 0;
    char path[600];
    snprintf(path, sizeof path, "%s/run.conf", fuzz_dir());
    /* the parser reports on stderr; keep the fuzzer's output readable */
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    if (!stderr) stderr = saved;
    kv_config c = {.program = "fuzz"};
    declare(&c);
    kv_load_file(&c, path);
    kv_free(&c);
    /* argv: "prog --config run.conf" then the NUL-separated arguments (at most 64) */
    const uint8_t *args = memmem(data, size, FUZZ_SEP, strlen(FUZZ_SEP));
    char *copy = NULL, *argv[68] = {"fuzz", "--config", path};
    int argc = 3;
    if (args && memchr(data, 0, (size_t)(args - data)) == NULL) {
        args += strlen(FUZZ_SEP);
        size_t n = size - (size_t)(args - data);
        copy = malloc(n + 1);
        if (copy) {
            memcpy(copy, args, n);
            copy[n] = 0;
            for (size_t at = 0; at <= n && argc < 67; at += strlen(copy + at) + 1) argv[argc++] = copy + at;
        }
    }
    argv[argc] = NULL;
    kv_config d = {.program = "fuzz"};
    declare(&d);
    if (kv_parse_args(&d, argc, argv, "fuzz") == 0) {
        int nl;
        kv_list(&d, "labels", &nl);
        kv_int(&d, "epochs");
        kv_double(&d, "lr");
        kv_bool(&d, "resume");
        free(kv_to_json(&d));
    }
    kv_free(&d);
    free(copy);
    if (stderr != saved) fclose(stderr);
    stderr = saved;
    return 0;
}
