/* checkpoint.h: save and resume a training run in one safetensors file.
 *
 * A checkpoint holds everything a run needs to continue exactly as if it had not stopped:
 *   tensors    "model.<state_dict name>"              parameters and buffers of the model
 *              "optim.<group>.<index>.exp_avg"        optimizer state (also exp_avg_sq,
 *                                                     max_exp_avg_sq, momentum_buffer)
 *   metadata   "format" = "aqa-checkpoint-1", "step", "epoch", "config" (a JSON string),
 *              "rng.default.seed" / ".offset" and "rng.<name>.seed" / ".offset" (generators),
 *              "optim.kind", "optim.n_groups", "optim.<g>.n_params", "optim.<g>.lr",
 *              "optim.<g>.initial_lr", "optim.<g>.weight_decay", "optim.<g>.<i>.step"
 * (scalars are decimal strings in __metadata__; floats are printed with 17 digits, so they
 * round-trip exactly).  The file is written atomically (io/atomic_file.h: temporary file,
 * fsync, rename): if saving fails, or the process dies while saving, the previous checkpoint at
 * that path is intact.
 *
 * Loading is strict: the model, optimizer and generators given must match the file exactly (same
 * names, shapes, groups, parameter counts); any missing or unexpected tensor, mis-shaped tensor or
 * absent metadata is an error naming the file and the key, and nothing is modified then.
 *
 *     ```c
 *     aqa_checkpoint ck = {.model = model, .optim = opt, .step = step, .config_json = "{\"lr\": 0.001}"};
 *     aqa_checkpoint_save("run/last.safetensors", &ck);
 *     // ... later, in a new process, with the same model and optimizer built again:
 *     aqa_checkpoint ck2 = {.model = model, .optim = opt};
 *     aqa_checkpoint_load("run/last.safetensors", &ck2);   // ck2.step, ck2.loaded_config
 *     free(ck2.loaded_config);
 *     ```
 */
#ifndef AQA_NN_CHECKPOINT_H
#define AQA_NN_CHECKPOINT_H

#include <stdint.h>

#include "nn/module.h"
#include "nn/optim.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aqa_checkpoint {
    aqa_module *model;       /* model whose parameters and buffers are saved / loaded; may be NULL */
    aqa_optimizer *optim;    /* optimizer whose state and group lrs are saved / loaded; may be NULL */
    int64_t step;            /* save: written; load: read back */
    int64_t epoch;           /* save: written; load: read back */
    const char *config_json; /* save: the run's configuration (any text, JSON by convention), or NULL */
    char *loaded_config;     /* load: malloc'd copy of the saved config, NULL if none; caller frees
                              * (a non-NULL value already there is freed first: zero-initialise ck) */
    /* Extra generators besides the default one (which is always saved and restored), e.g. a data
     * loader's shuffling generator; names must be unique, [A-Za-z0-9_-]. */
    int n_generators;
    const char *const *generator_names;
    aqa_generator *const *generators;
    /* save: extra metadata strings written with the checkpoint (e.g. a training run's record; read
     * them back with aqa_st_metadata).  Keys must not be "format", "step", "epoch", "config" or
     * start with "rng." or "optim.". */
    int n_meta;
    const char *const *meta_keys;
    const char *const *meta_values;
} aqa_checkpoint;

/* Writes the checkpoint to `path` atomically.  The model's tensors may live on any device (they
 * are copied to the host). */
aqa_status aqa_checkpoint_save(const char *path, const aqa_checkpoint *ck);
/* Reads `path` into ck's model, optimizer (creating state tensors as needed) and generators, sets
 * the default generator's state, and fills step, epoch and loaded_config. */
aqa_status aqa_checkpoint_load(const char *path, aqa_checkpoint *ck);

/* Loads only the model from a checkpoint, for evaluation or fine-tuning (strict on the model's
 * tensors; the optimizer state, generators and step are ignored).  report may be NULL. */
aqa_status aqa_checkpoint_load_model(const char *path, aqa_module *model, aqa_load_report *report);
/* The name map aqa_checkpoint_load_model uses with aqa_module_load: "model.x" -> "x", anything
 * else skipped (returns NULL). */
char *aqa_checkpoint_model_name(const char *file_name, void *user);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_CHECKPOINT_H */
