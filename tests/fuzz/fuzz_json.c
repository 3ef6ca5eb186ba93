/* fuzz_json.c: the JSON aqa reads besides safetensors headers: a checkpoint's settings object
 * (examples/cli.h: kv_from_json, kv_diff_json, as evaluate and train_mvla --resume use them) and
 * an I3D weights file's "config" metadata (aqa_i3d_file_width). */
#include <stdio.h>
#include <stdlib.h>

#include "examples/cli.h"
#include "models/i3d/i3d.h"
#include "io/safetensors.h"
#include "tests/fuzz/fuzz.h"

FUZZ_TARGET(json) {
    char *text = fuzz_text(data, size);
    if (!text) return 0;
    FILE *saved = stderr;
    stderr = fopen("/dev/null", "w");
    if (!stderr) stderr = saved;
    for (int lenient = 0; lenient < 2; lenient++) {
        kv_config c = {.program = "fuzz"};
        kv_def(&c, "data", "", "text");
        kv_def_int(&c, "epochs", "20", 1, 1e6, "integer");
        kv_def_num(&c, "lr", "1e-3", 0, 10, "number");
        kv_def_bool(&c, "resume", "false", "switch");
        kv_def_choice(&c, "head", "tsa", "tsa|core|mlp", "choice");
        kv_from_json(&c, text, lenient, "fuzz");
        char diff[256];
        static const char *const skip[] = {"data", NULL};
        kv_diff_json(&c, text, skip, diff, sizeof diff);
        kv_free(&c);
    }
    if (stderr != saved) fclose(stderr);
    stderr = saved;
    /* the same text as an I3D file's config metadata */
    aqa_st_writer *w = aqa_st_writer_new();
    float one = 1;
    const char *path = NULL;
    char p[600];
    snprintf(p, sizeof p, "%s/i3d.safetensors", fuzz_dir());
    if (w && aqa_st_writer_add_copy(w, "x", AQA_ST_F32, 1, (int64_t[]){1}, &one) == AQA_OK &&
        aqa_st_writer_set_metadata(w, "config", text) == AQA_OK && aqa_st_writer_save(w, p) == AQA_OK)
        path = p;
    aqa_st_writer_free(w);
    double width;
    if (path) aqa_i3d_file_width(path, &width);
    free(text);
    return 0;
}
