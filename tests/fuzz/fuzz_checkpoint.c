/* fuzz_checkpoint.c: loading a training checkpoint (nn/checkpoint.h) into a small model, its Adam
 * optimizer and an extra generator: metadata parsing, name and shape checks. */
#include <stdlib.h>

#include "nn/checkpoint.h"
#include "nn/linear.h"
#include "nn/optim.h"
#include "tests/fuzz/fuzz.h"

static aqa_module *g_model;
static aqa_optimizer *g_opt;

static void free_model(void) {
    aqa_optim_free(g_opt);
    aqa_module_free(g_model);
}

FUZZ_TARGET(checkpoint) {
    if (!g_model) {
        g_model = aqa_module_new(sizeof(aqa_module), "Net", NULL, "", NULL);
        aqa_linear_layer_new(g_model, "fc", 3, 2, true);
        aqa_tensor **p = NULL;
        int n = aqa_module_parameters(g_model, &p);
        aqa_adam_options ao = AQA_ADAM_DEFAULTS;
        g_opt = aqa_adam_new(&ao);
        aqa_optim_add_group(g_opt, p, n, 1e-3, 0);
        free(p);
        atexit(free_model);
    }
    const char *path = fuzz_file("ckpt.safetensors", data, size);
    if (!path) return 0;
    aqa_generator gen = {1, 0};
    aqa_generator *gens[1] = {&gen};
    const char *names[1] = {"data"};
    aqa_checkpoint ck = {.model = g_model, .optim = g_opt, .n_generators = 1, .generator_names = names, .generators = gens};
    aqa_checkpoint_load(path, &ck);
    free(ck.loaded_config);
    aqa_load_report rep;
    aqa_checkpoint_load_model(path, g_model, &rep);
    return 0;
}
