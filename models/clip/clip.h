/* clip.h: CLIP's image and text encoders (OpenAI's ViT models: ViT-B/32, ViT-B/16, ViT-L/14 and
 * smaller test configurations), built from nn/ layers as one module tree whose state_dict names
 * are OpenAI's ("visual.conv1.weight", "visual.transformer.resblocks.0.attn.in_proj_weight",
 * "token_embedding.weight", "logit_scale", ...).
 *
 * The computation is OpenAI's model.py:
 *   ResidualAttentionBlock: x = x + attn(ln_1(x)); x = x + c_proj(QuickGELU(c_fc(ln_2(x)))),
 *     attn = MultiheadAttention with the packed in_proj, heads = width / 64, a causal mask in the
 *     text transformer;
 *   encode_image: patches by conv1 (kernel = stride = patch, no bias), the class token before
 *     them, + positional_embedding, ln_pre, the blocks, ln_post on the class token, @ proj;
 *   encode_text: token_embedding + positional_embedding, the blocks (causal), ln_final, the row at
 *     the EOT token (argmax of the ids, EOT having the largest id), @ text_projection.
 * Activations are kept batch-first ([N, L, E]); OpenAI permutes to [L, N, E] for
 * nn.MultiheadAttention, which computes the same numbers.
 *
 * Text positions after the last EOT of the batch cannot change any EOT feature (the mask is
 * causal), so encode_text drops them before the transformer (aqa_clip_model.truncate_context,
 * on by default); the result is the same function, up to float rounding of BLAS blocking.
 *
 * Weights: aqa_clip_load reads safetensors with OpenAI's names (scripts/convert_clip_pt.py
 * converts OpenAI's .pt) or Hugging Face's CLIPModel names (openai/clip-vit-base-patch16
 * model.safetensors: q/k/v projections are packed into in_proj, visual_projection and
 * text_projection are transposed).  The configuration is inferred from the shapes as OpenAI's
 * build_model does; heads = width / 64 unless the file's __metadata__ has "vision_heads" /
 * "text_heads" (aqa's extension, written by aqa_clip_save, for test models narrower than 64). */
#ifndef AQA_MODELS_CLIP_H
#define AQA_MODELS_CLIP_H

#include <stdbool.h>
#include <stdint.h>

#include "nn/activation.h"
#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/norm_layer.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The hyper-parameters of OpenAI's CLIP(...) constructor (ViT vision tower only). */
typedef struct aqa_clip_config {
    int64_t embed_dim;          /* D, the joint embedding size (text_projection's columns) */
    int64_t image_resolution;   /* input side in pixels (patch size x grid) */
    int64_t vision_layers;      /* residual blocks of the image transformer */
    int64_t vision_width;       /* image transformer width (conv1's output channels) */
    int64_t vision_patch_size;  /* conv1's kernel and stride */
    int64_t vision_heads;       /* attention heads of the image transformer (OpenAI: width / 64) */
    int64_t context_length;     /* text positions (77) */
    int64_t vocab_size;         /* token embedding rows (49408) */
    int64_t transformer_width;  /* text transformer width */
    int64_t transformer_heads;  /* text attention heads (OpenAI: width / 64) */
    int64_t transformer_layers; /* residual blocks of the text transformer */
} aqa_clip_config;

/* OpenAI's ViT-B/16 configuration (embed 512, 224 px, 12 x 768 / 12 heads, text 12 x 512 / 8). */
aqa_clip_config aqa_clip_config_vit_b16(void);

/* One (name, shape) pair of a state dict, for inferring a configuration without any data. */
typedef struct aqa_clip_named_shape {
    const char *name;        /* OpenAI or Hugging Face tensor name */
    int ndim;                /* number of dims */
    int64_t shape[AQA_MAX_DIMS];
} aqa_clip_named_shape;

/* build_model's inference from the shapes of a state dict (OpenAI names, or Hugging Face names,
 * detected by their "text_model." / "vision_model." prefixes).  vision_heads / text_heads > 0
 * override width / 64.  Errors (AQA_EFORMAT) name the missing or inconsistent tensor; a
 * ModifiedResNet vision tower (RN50 ...) is AQA_EUNSUPPORTED. */
aqa_status aqa_clip_config_infer(const aqa_clip_named_shape *entries, int n, int64_t vision_heads,
                                 int64_t text_heads, aqa_clip_config *cfg);

/* ---- modules (the tree mirrors OpenAI's) ----------------------------------------------------- */

/* ResidualAttentionBlock: children attn, ln_1, mlp (c_fc, gelu, c_proj), ln_2. */
typedef struct aqa_clip_resblock {
    aqa_module base;              /* type "ResidualAttentionBlock" */
    aqa_mha_layer *attn;          /* "attn": in_proj_weight [3E, E], in_proj_bias, out_proj */
    aqa_layer_norm_layer *ln_1;   /* "ln_1" (eps 1e-5) */
    aqa_module *mlp;              /* "mlp": a Sequential-named container */
    aqa_linear_layer *c_fc;       /* "mlp.c_fc": E -> 4E */
    aqa_activation_layer *gelu;   /* "mlp.gelu": QuickGELU, no parameters */
    aqa_linear_layer *c_proj;     /* "mlp.c_proj": 4E -> E */
    aqa_layer_norm_layer *ln_2;   /* "ln_2" */
} aqa_clip_resblock;

/* Transformer: child "resblocks" holding blocks "0".."layers-1". */
typedef struct aqa_clip_transformer {
    aqa_module base;              /* type "Transformer" */
    aqa_module *resblocks;        /* "resblocks" container */
    aqa_clip_resblock **blocks;   /* the blocks (owned by the module tree; this array is ours) */
    int layers;                   /* number of blocks */
    int64_t width, heads;         /* E and the head count */
} aqa_clip_transformer;

/* VisionTransformer. */
typedef struct aqa_clip_vision {
    aqa_module base;                     /* type "VisionTransformer" */
    aqa_conv_layer *conv1;               /* "conv1": weight [W, 3, p, p], no bias */
    aqa_tensor *class_embedding;         /* [W] */
    aqa_tensor *positional_embedding;    /* [grid^2 + 1, W] */
    aqa_layer_norm_layer *ln_pre;        /* "ln_pre" */
    aqa_clip_transformer *transformer;   /* "transformer" */
    aqa_layer_norm_layer *ln_post;       /* "ln_post" */
    aqa_tensor *proj;                    /* [W, D] */
    int64_t input_resolution, patch_size, width, grid;
} aqa_clip_vision;

typedef struct aqa_clip_model {
    aqa_module base;                     /* type "CLIP", the root */
    aqa_clip_config cfg;                 /* as built */
    aqa_clip_vision *visual;             /* "visual" */
    aqa_clip_transformer *transformer;   /* "transformer": the text transformer */
    aqa_embedding_layer *token_embedding;/* "token_embedding": [vocab, width] */
    aqa_tensor *positional_embedding;    /* [context, width] */
    aqa_layer_norm_layer *ln_final;      /* "ln_final" */
    aqa_tensor *text_projection;         /* [width, D] */
    aqa_tensor *logit_scale;             /* 0-d, log(1 / 0.07) at initialisation */
    bool truncate_context;               /* encode_text drops positions after the last EOT (default
                                            true; exact under the causal mask) */
} aqa_clip_model;

/* Builds a model from a configuration (every field > 0, widths divisible by the heads),
 * initialised as OpenAI's initialize_parameters from the default generator (aqa_manual_seed
 * makes it reproducible).  NULL with an error on a bad configuration. */
aqa_clip_model *aqa_clip_model_new(const aqa_clip_config *cfg);
void aqa_clip_model_free(aqa_clip_model *m); /* NULL is fine */

/* ---- weights ----------------------------------------------------------------------------------- */
/* Loads a model from safetensors (OpenAI or Hugging Face names, see the top), configuration
 * inferred from the shapes.  Every tensor the model needs must be present with the right shape;
 * tensors the model does not use are an error too, except position_ids and OpenAI's
 * input_resolution / context_length / vocab_size.  F16/BF16/F64 data convert to float32. */
aqa_status aqa_clip_load(const char *path, aqa_clip_model **out);
/* Writes the state dict with OpenAI's names (and the heads in __metadata__). */
aqa_status aqa_clip_save(aqa_clip_model *m, const char *path);
/* The OpenAI name for a Hugging Face CLIPModel tensor name (malloc'd), or NULL when the tensor
 * is not a CLIP parameter.  *part receives 0/1/2 for q/k/v projections (rows part*E .. of
 * in_proj) or -1; *transpose is set for visual_projection / text_projection.  *ignore is set for
 * tensors to skip silently (position_ids). */
char *aqa_clip_hf_to_openai(const char *hf_name, int *part, bool *transpose, bool *ignore);

/* ---- encoders ------------------------------------------------------------------------------------ */
/* images [N, 3, R, R] (R = image_resolution, already preprocessed: image/resize.h
 * aqa_clip_preprocess) -> [N, D], unnormalised.  frozen: runs in no-grad mode and the result has
 * no graph; otherwise differentiable in the weights and the images as grad mode says. */
aqa_tensor *aqa_clip_encode_image(aqa_clip_model *m, aqa_tensor *images, bool frozen);
/* ids I64 [N, C] (C <= context_length; clip.tokenize's output) -> [N, D], unnormalised. */
aqa_tensor *aqa_clip_encode_text(aqa_clip_model *m, aqa_tensor *ids, bool frozen);
/* CLIP.forward's logits_per_image: exp(logit_scale) * normalised image @ normalised text^T,
 * [N_images, N_texts] (logits_per_text is its transpose). */
aqa_tensor *aqa_clip_logits(aqa_clip_model *m, aqa_tensor *image_features, aqa_tensor *text_features);
/* x / ||x|| along the last dim (the normalisation CLIP applies before similarities). */
aqa_tensor *aqa_clip_normalize(aqa_tensor *x);

/* ---- pieces (exposed for tests and custom models) -------------------------------------------------- */
/* One block on x [N, L, E]; causal masks keys after each query. */
aqa_tensor *aqa_clip_resblock_forward(aqa_clip_resblock *b, aqa_tensor *x, bool causal);
aqa_tensor *aqa_clip_transformer_forward(aqa_clip_transformer *t, aqa_tensor *x, bool causal);
/* Converts every parameter of the model to dtype in place (F64 for gradient checks); the
 * layers' tensor pointers stay valid. */
aqa_status aqa_clip_to_dtype(aqa_clip_model *m, aqa_dtype dtype);

#ifdef __cplusplus
}
#endif

#endif /* AQA_MODELS_CLIP_H */
