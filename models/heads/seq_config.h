/* seq_config.h: the settings of the clip-sequence heads (TPT, HGCN, GDLT, MS-LSTM, MLP-Mixer; see
 * seq.h), one block of aqa_head_config.  Defaults (aqa_seq_head_config_default) are the original
 * papers' public code's, named beside each field. */
#ifndef AQA_HEADS_SEQ_CONFIG_H
#define AQA_HEADS_SEQ_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aqa_seq_head_config {
    int64_t len;                /* T: steps of the input sequence (frames); HGCN's graphs and the
                                   mixer's token count are built for it (10 clips, MTL-AQA) */
    /* TPT (baiyang4/aqa_tpt, README's MTL-AQA run) */
    int64_t tpt_queries;        /* K part queries (num_cluster 7) */
    int64_t tpt_dim;            /* decoder width (d_model 512) */
    int64_t tpt_ffn;            /* its MLP width (d_ffn 512) */
    int64_t tpt_heads;          /* heads of the first layer's query self-attention (8) */
    int tpt_depth;              /* group tree depth: 2^(depth-1) leaves (CoRe's 5: 16) */
    int64_t tpt_hidden;         /* width of the classifier and regressor MLPs (128) */
    double tpt_temp;            /* initial attention temperature (0.07) */
    double tpt_margin;          /* margin of the part-ranking hinge loss (margin_factor 2) */
    double tpt_var_weight;      /* weight of the sparsity (spread) loss (0.05) */
    double tpt_dropout;         /* dropout in the decoder and the pair encoder (0.1 in both) */
    /* HGCN (ZhouKanglei/HGCN_AQA, models/hgcn.py) */
    int64_t hgcn_groups;        /* groups of the 1x1 convolutions (8, the released weights') */
    int64_t hgcn_scenes;        /* scenes the shots are pooled into (7) */
    int64_t hgcn_k;             /* neighbourhood of the shot graph (3) */
    int64_t hgcn_factor;        /* channel reduction of the graph-building branches (4) */
    int64_t hgcn_dims[3];       /* widths of the shot, scene and motion levels (512, 256, 128) */
    bool hgcn_refine;           /* clip refinement graph (a: true) or a plain 1x1 conv */
    bool hgcn_scene_graph;      /* scene construction graph (b: true) or a plain 1x1 conv */
    bool hgcn_motion_graph;     /* motion graph aggregation (c: false) or a plain 1x1 conv */
    bool hgcn_sample;           /* training scores mu + std eps as HGCN (true); evaluation uses mu */
    /* GDLT (xuangch/CVPR22_GDLT, README's run) */
    int64_t gdlt_dim;           /* transformer width (hidden_dim 256) */
    int64_t gdlt_heads;         /* heads (n_head 1) */
    int gdlt_encoder;           /* encoder layers (n_encoder 1) */
    int gdlt_decoder;           /* decoder layers (n_decoder 2) */
    int64_t gdlt_queries;       /* grade queries (n_query 4) */
    double gdlt_dropout;        /* dropout (0.3) */
    double gdlt_alpha;          /* weight of the triplet loss on the grade embeddings (1.0) */
    double gdlt_margin;         /* its margin (1.0) */
    /* MS-LSTM (chmxu/MS_LSTM, model.py) */
    int64_t mslstm_conv;        /* width after the input 1x1 conv (128) */
    int64_t mslstm_hidden;      /* LSTM hidden size (256) */
    int64_t mslstm_filters;     /* filters of the multi-scale convolutions (256) */
    int64_t mslstm_attn_hidden; /* self-attention hidden width (64) */
    int64_t mslstm_descriptors; /* self-attention descriptors (50) */
    int64_t mslstm_merge;       /* width of each branch and of the merge layer (64) */
    /* MLP-Mixer (Skating-Mixer's scoring head, AndyFrancesco29/Audio-Visual-Figure-Skating) */
    int64_t mixer_dim;          /* token width (512) */
    int mixer_depth;            /* mixer blocks (2) */
    int64_t mixer_tokens;       /* clip features per recurrent step (video only: 1) */
    int64_t mixer_expansion;    /* MLP expansion factor (4) */
} aqa_seq_head_config;

aqa_seq_head_config aqa_seq_head_config_default(void);

#ifdef __cplusplus
}
#endif

#endif /* AQA_HEADS_SEQ_CONFIG_H */
