/* attention.h: scaled dot-product attention and multi-head attention, as
 * torch.nn.functional.scaled_dot_product_attention and torch.nn.MultiheadAttention.
 *
 * Both run as two batched GEMMs around one fused "mask + softmax" op: the scores come from one
 * batched GEMM with the 1/sqrt(d) scale as its alpha, the additive/causal mask is applied in place
 * on that private buffer (no pass at all without a mask) and the rows are soft-maxed; backward
 * is the softmax backward and two GEMMs.  Heads are strided views of the projections (no copies
 * until the heads are merged for the output projection).
 *
 * Mask conventions follow PyTorch, which differ between the two APIs:
 *   - scaled_dot_product_attention: a bool mask is true where attention IS allowed; a float mask
 *     is added to the scores;
 *   - MultiheadAttention: bool attn_mask / key_padding_mask are true where attention is NOT
 *     allowed (masked out); float masks are added to the scores. */
#ifndef AQA_NN_ATTENTION_H
#define AQA_NN_ATTENTION_H

#include "nn/linear.h"
#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* q [..., L, E], k [..., S, E], v [..., S, Ev] (leading dims broadcast) -> [..., L, Ev].
 * attn_mask (NULL, float additive or bool allow-mask) broadcasts to [..., L, S]; is_causal masks
 * key j > query i (top-left aligned, as torch); scale <= 0 means 1/sqrt(E); dropout_p > 0 drops
 * attention weights with the default generator (pass 0 for inference). */
aqa_tensor *aqa_scaled_dot_product_attention(aqa_tensor *q, aqa_tensor *k, aqa_tensor *v, aqa_tensor *attn_mask,
                                             double dropout_p, bool is_causal, double scale);

/* softmax(scale * scores + mask) over the last dim, with keys j > i masked when causal (i the
 * index along dim -2).  mask (float, broadcasting to scores) may be NULL.  Differentiable in
 * scores and mask.  This is the fused op attention uses; exposed for custom attention code. */
aqa_tensor *aqa_attention_softmax(aqa_tensor *scores, aqa_tensor *mask, double scale, bool causal);

/* Float [L, L] mask with -inf above the diagonal and 0 elsewhere
 * (nn.Transformer.generate_square_subsequent_mask). */
aqa_tensor *aqa_causal_mask(int64_t L, aqa_dtype dtype);

/* torch.nn.MultiheadAttention with kdim = vdim = embed_dim: parameters "in_proj_weight"
 * [3E, E] (xavier_uniform), "in_proj_bias" [3E] (zeros), child "out_proj" (a Linear, bias
 * zeroed), in PyTorch's state_dict order. */
typedef struct aqa_mha_layer {
    aqa_module base;              /* type "MultiheadAttention" */
    aqa_tensor *in_proj_weight;   /* [3E, E]: q, k, v projections stacked */
    aqa_tensor *in_proj_bias;     /* [3E] or NULL */
    aqa_linear_layer *out_proj;   /* E -> E */
    int64_t embed_dim;            /* E */
    int64_t num_heads;            /* H (divides E) */
    int64_t head_dim;             /* E / H */
    double dropout;               /* dropout on the attention weights (training only) */
    bool batch_first;             /* inputs [N, L, E] instead of [L, N, E] */
    aqa_generator *gen;           /* generator for dropout (borrowed), NULL = default */
    bool average_attn_weights;    /* weights output averaged over heads (true, the default) or
                                   * per head [N, H, L, S] (torch's average_attn_weights=False) */
} aqa_mha_layer;

aqa_mha_layer *aqa_mha_layer_new(aqa_module *parent, const char *name, int64_t embed_dim, int64_t num_heads,
                                 double dropout, bool bias, bool batch_first);

/* query [L, N, E] ([N, L, E] if batch_first; [L, E] unbatched), key/value [S, N, E] likewise
 * (pass the same tensor three times for self-attention: the projection is then one GEMM).
 * key_padding_mask [N, S] (bool: true = ignore that key; or float additive) may be NULL.
 * attn_mask [L, S] or [N * H, L, S] (bool: true = masked out; or float additive) may be NULL.
 * Returns the output (query's layout); when weights is not NULL, *weights receives the attention
 * weights averaged over heads, [N, L, S] ([L, S] unbatched), after dropout as torch (per head,
 * [N, H, L, S], when !m->average_attn_weights). */
aqa_tensor *aqa_mha_layer_forward(aqa_mha_layer *m, aqa_tensor *query, aqa_tensor *key, aqa_tensor *value,
                                  aqa_tensor *key_padding_mask, aqa_tensor *attn_mask, aqa_tensor **weights);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_ATTENTION_H */
