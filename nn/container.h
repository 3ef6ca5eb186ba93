/* container.h: torch.nn's containers -- Sequential, ModuleList, ModuleDict -- with PyTorch's
 * state_dict naming, so a model built from them loads PyTorch's weights unchanged.
 *
 * The children of a Sequential or a ModuleList are named by their index ("0", "1", ...): create
 * them with a NULL name (any layer constructor: aqa_linear_layer_new(seq, NULL, ...)).  A
 * ModuleDict's children are named by their keys (non-empty, no '.', unique) and found with
 * aqa_module_find(dict, "key").  A Sequential's forward (aqa_module_forward) feeds x through its
 * children in order; each child needs a one-tensor forward (every layer of nn/ with one input
 * has one; a module of your own sets base.forward with AQA_MODULE_FORWARD).
 *
 *     ```c run
 *     aqa_module *net = aqa_sequential_new(NULL, "");
 *     aqa_linear_layer_new(net, NULL, 4, 16, true);            // 0.weight, 0.bias
 *     aqa_activation_layer_new(net, NULL, AQA_ACT_RELU);       // 1
 *     aqa_linear_layer_new(net, NULL, 16, 1, true);            // 2.weight, 2.bias
 *     aqa_scope_begin();
 *     aqa_tensor *y = aqa_module_forward(net, aqa_randn(AQA_SHAPE(8, 4), AQA_F32, NULL));
 *     if (!y || y->shape[1] != 1) return 1;
 *     aqa_scope_end();
 *     aqa_module_free(net);
 *     ```
 */
#ifndef AQA_NN_CONTAINER_H
#define AQA_NN_CONTAINER_H

#include "nn/module.h"

#ifdef __cplusplus
extern "C" {
#endif

/* nn.Sequential: children named 0, 1, ...; forward runs them in order. */
aqa_module *aqa_sequential_new(aqa_module *parent, const char *name);
/* nn.ModuleList: children named 0, 1, ...; no forward of its own. */
aqa_module *aqa_module_list_new(aqa_module *parent, const char *name);
/* nn.ModuleDict: children named by their keys; no forward of its own. */
aqa_module *aqa_module_dict_new(aqa_module *parent, const char *name);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_CONTAINER_H */
