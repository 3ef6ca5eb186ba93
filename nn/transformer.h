/* transformer.h: torch.nn.TransformerEncoderLayer / TransformerDecoderLayer (post-norm and
 * pre-norm) and torch.nn.TransformerEncoder / TransformerDecoder (stacks of layers with an optional
 * final norm), with PyTorch's parameter names ("layers.0.self_attn.in_proj_weight",
 * "layers.0.multihead_attn.out_proj.weight", "layers.0.linear1.weight", ...) and state_dict order.
 * One aqa_transformer_config describes a layer of either kind. */
#ifndef AQA_NN_TRANSFORMER_H
#define AQA_NN_TRANSFORMER_H

#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/dropout.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/norm_layer.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The constructor arguments of torch.nn.TransformerEncoderLayer and TransformerDecoderLayer. */
typedef struct aqa_transformer_config {
    int64_t d_model;                /* width E */
    int64_t nhead;                  /* attention heads */
    int64_t dim_feedforward;        /* hidden width of the MLP (torch default 2048) */
    double dropout;                 /* torch default 0.1 */
    aqa_activation_kind activation; /* AQA_ACT_RELU (default) or AQA_ACT_GELU, ... */
    double layer_norm_eps;          /* 1e-5 */
    bool batch_first;               /* [N, L, E] inputs (default false: [L, N, E]) */
    bool norm_first;                /* pre-norm (default false: post-norm) */
    bool bias;                      /* biases in the linear layers and norms' affine (default true) */
} aqa_transformer_config;

/* torch's defaults for d_model and nhead. */
aqa_transformer_config aqa_transformer_config_default(int64_t d_model, int64_t nhead);

typedef struct aqa_transformer_encoder_layer {
    aqa_module base;                   /* type "TransformerEncoderLayer" */
    aqa_mha_layer *self_attn;          /* "self_attn" */
    aqa_linear_layer *linear1;         /* "linear1": E -> dim_feedforward */
    aqa_dropout_layer *dropout;        /* "dropout": inside the MLP */
    aqa_linear_layer *linear2;         /* "linear2": dim_feedforward -> E */
    aqa_layer_norm_layer *norm1;       /* "norm1" */
    aqa_layer_norm_layer *norm2;       /* "norm2" */
    aqa_dropout_layer *dropout1;       /* "dropout1": after attention */
    aqa_dropout_layer *dropout2;       /* "dropout2": after the MLP */
    aqa_transformer_config cfg;        /* as built */
} aqa_transformer_encoder_layer;

aqa_transformer_encoder_layer *aqa_transformer_encoder_layer_new(aqa_module *parent, const char *name,
                                                                 const aqa_transformer_config *cfg);
/* src [L, N, E] ([N, L, E] if batch_first); src_mask [L, S] / [N*H, L, S] and
 * src_key_padding_mask [N, S] as for MultiheadAttention (may be NULL). */
aqa_tensor *aqa_transformer_encoder_layer_forward(aqa_transformer_encoder_layer *m, aqa_tensor *src,
                                                  aqa_tensor *src_mask, aqa_tensor *src_key_padding_mask);
/* Sets the generator of all dropouts of the layer (NULL = default generator). */
void aqa_transformer_encoder_layer_set_generator(aqa_transformer_encoder_layer *m, aqa_generator *gen);

typedef struct aqa_transformer_encoder {
    aqa_module base;            /* type "TransformerEncoder" */
    aqa_module *layers;         /* "layers": children "0".."n-1", each a TransformerEncoderLayer */
    int num_layers;             /* number of layers */
    aqa_layer_norm_layer *norm; /* "norm" or NULL */
} aqa_transformer_encoder;

aqa_transformer_encoder *aqa_transformer_encoder_new(aqa_module *parent, const char *name,
                                                     const aqa_transformer_config *cfg, int num_layers,
                                                     bool final_norm);
aqa_transformer_encoder_layer *aqa_transformer_encoder_layer_at(aqa_transformer_encoder *m, int i);
aqa_tensor *aqa_transformer_encoder_forward(aqa_transformer_encoder *m, aqa_tensor *src, aqa_tensor *mask,
                                            aqa_tensor *src_key_padding_mask);

/* ---- decoder ---------------------------------------------------------------------------------- */

typedef struct aqa_transformer_decoder_layer {
    aqa_module base;                   /* type "TransformerDecoderLayer" */
    aqa_mha_layer *self_attn;          /* "self_attn": over the target */
    aqa_mha_layer *multihead_attn;     /* "multihead_attn": target queries, memory keys/values */
    aqa_linear_layer *linear1;         /* "linear1": E -> dim_feedforward */
    aqa_dropout_layer *dropout;        /* "dropout": inside the MLP */
    aqa_linear_layer *linear2;         /* "linear2": dim_feedforward -> E */
    aqa_layer_norm_layer *norm1;       /* "norm1": around self-attention */
    aqa_layer_norm_layer *norm2;       /* "norm2": around cross-attention */
    aqa_layer_norm_layer *norm3;       /* "norm3": around the MLP */
    aqa_dropout_layer *dropout1;       /* "dropout1": after self-attention */
    aqa_dropout_layer *dropout2;       /* "dropout2": after cross-attention */
    aqa_dropout_layer *dropout3;       /* "dropout3": after the MLP */
    aqa_transformer_config cfg;        /* as built */
} aqa_transformer_decoder_layer;

aqa_transformer_decoder_layer *aqa_transformer_decoder_layer_new(aqa_module *parent, const char *name,
                                                                 const aqa_transformer_config *cfg);
/* tgt [T, N, E] and memory [S, N, E] ([N, ., E] if batch_first; [T, E] / [S, E] unbatched).
 * tgt_mask [T, T] / [N*H, T, T] and memory_mask [T, S] / [N*H, T, S], tgt_key_padding_mask [N, T]
 * and memory_key_padding_mask [N, S]: as for MultiheadAttention (bool true = masked out, or float
 * additive), each may be NULL.  A causal target mask is aqa_causal_mask(T, dtype).  Post-norm:
 *   x = norm1(x + SA(x)); x = norm2(x + MHA(x, memory)); x = norm3(x + FF(x))
 * pre-norm (norm_first): x = x + SA(norm1(x)); x = x + MHA(norm2(x), memory); x = x + FF(norm3(x)). */
aqa_tensor *aqa_transformer_decoder_layer_forward(aqa_transformer_decoder_layer *m, aqa_tensor *tgt,
                                                  aqa_tensor *memory, aqa_tensor *tgt_mask, aqa_tensor *memory_mask,
                                                  aqa_tensor *tgt_key_padding_mask,
                                                  aqa_tensor *memory_key_padding_mask);
/* Sets the generator of all dropouts of the layer (NULL = default generator). */
void aqa_transformer_decoder_layer_set_generator(aqa_transformer_decoder_layer *m, aqa_generator *gen);

typedef struct aqa_transformer_decoder {
    aqa_module base;            /* type "TransformerDecoder" */
    aqa_module *layers;         /* "layers": children "0".."n-1", each a TransformerDecoderLayer */
    int num_layers;             /* number of layers */
    aqa_layer_norm_layer *norm; /* "norm" or NULL */
} aqa_transformer_decoder;

/* Unlike torch, whose TransformerDecoder deep-copies one layer (all layers start equal), each
 * layer is initialised on its own, as for aqa_transformer_encoder_new. */
aqa_transformer_decoder *aqa_transformer_decoder_new(aqa_module *parent, const char *name,
                                                     const aqa_transformer_config *cfg, int num_layers,
                                                     bool final_norm);
aqa_transformer_decoder_layer *aqa_transformer_decoder_layer_at(aqa_transformer_decoder *m, int i);
/* Every layer with the same memory and masks, then the final norm. */
aqa_tensor *aqa_transformer_decoder_forward(aqa_transformer_decoder *m, aqa_tensor *tgt, aqa_tensor *memory,
                                            aqa_tensor *tgt_mask, aqa_tensor *memory_mask,
                                            aqa_tensor *tgt_key_padding_mask, aqa_tensor *memory_key_padding_mask);

#ifdef __cplusplus
}
#endif

#endif /* AQA_NN_TRANSFORMER_H */
