/* head.h: assessment heads, the part of an AQA model that turns features into a score.
 *
 * A head is one file implementing aqa_head_ops (see tsa.c, core.c, usdl.c, mlp.c): a constructor
 * that builds its module (parameters named as the public code's, so weights move), and a forward
 * that gives the predicted scores and, when targets are given, the training loss.  Heads read
 * features from an aqa_head_input, which MVLA fills (aqa_mvla_head_input) and which a plain model
 * fills with its own features, so every head trains both as "X" and as "X-MVLA".
 *
 * Contrastive heads (TSA, CoRe) compare a query with an exemplar of known score: forward takes
 * the exemplar's input and score (pairs are row i of both), and at test time the prediction is
 * averaged over several exemplars (aqa_head_predict_exemplars).
 *
 * Adding a head: write models/heads/myhead.c defining `const aqa_head_ops aqa_head_myhead = {...}`
 * whose struct embeds aqa_head first, add it to the table in head.c and the file to local.mk. */
#ifndef AQA_HEAD_H
#define AQA_HEAD_H

#include <stdbool.h>
#include <stdint.h>

#include "models/heads/seq_config.h"
#include "nn/module.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Features of B videos.  Any field may be NULL; each head documents what it needs.  Everything
 * here is known before the video is judged (no score): a test prediction may use all of it. */
typedef struct aqa_head_input {
    aqa_tensor *frames;      /* [B, T, C_f] frame- (or clip-) level features (TSA's query tokens) */
    aqa_tensor *boundaries;  /* I64 [B, L]: first step of stage l + 1 in frames (stages.h) */
    aqa_tensor *stages;      /* [B, S, C] stage-level features (MVLA's Z^sta) */
    aqa_tensor *video;       /* [B, C] video-level feature (MVLA's Z^vid, or mean I3D feature) */
    aqa_tensor *frame_maps;  /* [B, T, C_f, P] frame features at P spatial positions (TSA's keys and
                                values: PSNet on I3D Mixed_5c maps); NULL: TSA uses frames */
    aqa_tensor *difficulty;  /* [B] degree of difficulty ('w/ DD' targets, MUSDL's FINA rule); NULL */
    aqa_tensor *judge_count; /* I64 [B] judges of each video (MUSDL: the first n columns of
                                judge_scores are present); NULL = musdl_judges for every video */
} aqa_head_input;

/* Training targets of the query videos (NULL fields where unused). */
typedef struct aqa_head_targets {
    aqa_tensor *score;        /* [B] final scores */
    aqa_tensor *judge_scores; /* [B, J] per-judge scores (MUSDL; columns past judge_count ignored) */
} aqa_head_targets;

typedef struct aqa_head_result {
    aqa_tensor *pred; /* [B] predicted scores (no gradient needed for evaluation) */
    aqa_tensor *loss; /* 0-d training loss, NULL without targets */
} aqa_head_result;

/* How MUSDL turns its judges' predicted scores into the final score. */
typedef enum aqa_musdl_rule {
    AQA_MUSDL_FINA = 0, /* diving (FINA): by the video's judge count n, 7: the middle 3 of the
                           sorted 7, 5: 0.6 x the sum of 5 (synchronised dives, FineDiving's 5-judge
                           panels), 3: the sum of 3 (other n: drop (n - 3) / 2 from each end and
                           sum the rest); x DD */
    AQA_MUSDL_SUM = 1   /* the sum of all judges, no DD (JIGSAWS: the 6 GRS items) */
} aqa_musdl_rule;

/* Settings of every head (each reads its own; aqa_head_config_default gives the public codes'). */
typedef struct aqa_head_config {
    int64_t feat_dim;         /* C: width of stages/video features (512 with MVLA, 1024 plain I3D) */
    int64_t frame_dim;        /* C_f: width of frames (TSA: 64, the segmentation width) */
    int64_t num_stages;       /* S = L + 1 (TSA: 3) */
    bool use_z;               /* "R regresses Z" (MVLA): every head reads Z^sta and Z^vid, TSA as
                                 extra tokens (tsa.c), the others [Z^vid, Z^sta_1..S] concatenated
                                 ((S + 1) C values); false: each head's own input (TSA its PSNet
                                 tokens, the others `video`), the plain heads' */
    double score_min;         /* score range: USDL's bins span it (MTL-AQA [0, 104.5], JIGSAWS */
    double score_max;         /* [6, 30] in USDL's code) */
    bool use_difficulty;      /* targets / DD, prediction x DD ('w/ DD'; CoRe: each video's own DD) */
    /* TSA */
    int64_t tsa_tokens;       /* tokens per stage (5) */
    int64_t tsa_dim;          /* decoder width (64; = frame_dim) */
    int64_t tsa_heads;        /* 8 */
    int tsa_layers;           /* 3 */
    double tsa_mlp_ratio;     /* 4 */
    int64_t tsa_reg_hidden1, tsa_reg_hidden2; /* regressor 64-256-64-1 */
    bool tsa_z_bias;          /* with use_z: Z as biases added to the tokens (aqa's first way)
                                 instead of extra tokens */
    /* CoRe */
    int core_depth;           /* 5 (16 leaves) */
    int64_t core_hidden;      /* 256 */
    double core_theta;        /* CoRe's score_range: exemplar score / theta is the tree's extra
                                 input, and the outer group edges are +-theta (30 on MTL-AQA w/ DD) */
    /* USDL / MUSDL */
    int64_t usdl_bins;        /* 101 (JIGSAWS: 25) */
    double usdl_sigma;        /* Gaussian target std in bins (5 on MTL-AQA, 1 on JIGSAWS) */
    bool usdl_kl_mean;        /* KL averaged over every element (KLDivLoss's 'mean', USDL's code)
                                 instead of 'batchmean' (the true KL per video) */
    int64_t musdl_judges;     /* 7 (JIGSAWS: 6) */
    int64_t musdl_bins;       /* 21 (judge scores 0..10 by 0.5; JIGSAWS: 5, 1..5) */
    double judge_min;         /* 0 (JIGSAWS: 1) */
    double judge_max;         /* 10 (JIGSAWS: 5) */
    aqa_musdl_rule musdl_rule; /* FINA (diving) or SUM (JIGSAWS) */
    /* MLP */
    int64_t mlp_hidden1, mlp_hidden2; /* 256, 128 */
    aqa_seq_head_config seq;  /* TPT, HGCN, GDLT, MS-LSTM, MLP-Mixer (seq_config.h) */
} aqa_head_config;

aqa_head_config aqa_head_config_default(void);
/* USDL's and MUSDL's settings in nzl-thu/MUSDL's code for MTL-AQA (scores over [0, 104.5] in 101
 * bins, sigma 5, 7 judges of 21 bins over [0, 10], FINA's rule) and for JIGSAWS (25 bins over
 * [6, 30], sigma 1, its 6 GRS items as judges of 5 bins over [1, 5], summed without DD). */
void aqa_head_config_usdl_mtl_aqa(aqa_head_config *c);
void aqa_head_config_usdl_jigsaws(aqa_head_config *c);

typedef struct aqa_head_ops aqa_head_ops;

/* The common part of every head (first member of each head's struct). */
typedef struct aqa_head {
    aqa_module base;           /* the head's module tree */
    const aqa_head_ops *ops;   /* its implementation */
    aqa_head_config cfg;       /* as built */
} aqa_head;

struct aqa_head_ops {
    const char *name;          /* "tsa", "core", "usdl", "musdl", "mlp" */
    bool is_contrastive;       /* needs an exemplar and its score */
    /* Builds the head as child `name` of parent (NULL: a root).  NULL on error. */
    aqa_head *(*create)(const aqa_head_config *cfg, aqa_module *parent, const char *name);
    /* exemplar/exemplar_score are NULL for non-contrastive heads; targets NULL at inference. */
    aqa_status (*forward)(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                          aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out);
};

extern const aqa_head_ops aqa_head_tsa, aqa_head_core, aqa_head_usdl, aqa_head_musdl, aqa_head_mlp;
extern const aqa_head_ops aqa_head_tpt, aqa_head_hgcn, aqa_head_gdlt, aqa_head_mslstm, aqa_head_mixer; /* seq.h */

/* The head named `name`, or NULL (with an error listing the names). */
const aqa_head_ops *aqa_head_find(const char *name);
/* Names of all heads, NULL-terminated. */
const char *const *aqa_head_names(void);

aqa_head *aqa_head_new(const aqa_head_ops *ops, const aqa_head_config *cfg, aqa_module *parent, const char *name);
aqa_status aqa_head_forward(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplar,
                            aqa_tensor *exemplar_score, const aqa_head_targets *targets, aqa_head_result *out);
/* Test-time prediction of a contrastive head averaged over exemplars (exemplars[i] paired with
 * every query row, scores[i] [B]): query b averages exemplars 0 .. count[b] - 1 (counts I64 [B],
 * the distinct exemplars its group had, as TSA and CoRe average over fewer voters when a group
 * is small; NULL = all n).  For other heads the plain prediction.  [B], no gradient. */
aqa_tensor *aqa_head_predict_exemplars(aqa_head *h, const aqa_head_input *query, const aqa_head_input *exemplars,
                                       aqa_tensor *const *exemplar_scores, int n, const aqa_tensor *counts);

/* For head authors: ends a forward that opened aqa_scope_begin().  With st AQA_OK, out->pred
 * set and (when `train`) out->loss set, keeps them past the scope and returns AQA_OK; otherwise
 * clears both and returns st, or the recorded error (AQA_EINVAL when none). */
aqa_status aqa_head_finish(aqa_head_result *out, aqa_status st, bool train);
/* For head authors: the feature vector a non-TSA head regresses, [B, aqa_head_feature_dim(cfg)]:
 * with use_z [video, stages flattened] ((S + 1) C), else video (or the mean of stages when video
 * is NULL).  NULL with an error naming the head when what it needs is absent. */
aqa_tensor *aqa_head_feature(const aqa_head *h, const aqa_head_input *in);
int64_t aqa_head_feature_dim(const aqa_head_config *cfg);
/* For head authors: in->difficulty as host doubles in dd[B]; an error naming the head when it is
 * absent, has another length or holds a value <= 0. */
aqa_status aqa_head_difficulty(const aqa_head *h, const aqa_head_input *in, int64_t B, double *dd);

/* CoRe's groups: call once before training with the absolute score differences of the training
 * pairs (after / DD when used; aqa_exemplar_pool_deltas gives CoRe's list); see core.c. */
aqa_status aqa_core_head_set_groups(aqa_head *h, const double *deltas, int64_t n);
/* TPT's groups, the same way (tpt.c). */
aqa_status aqa_tpt_head_set_groups(aqa_head *h, const double *deltas, int64_t n);


#ifdef __cplusplus
}
#endif

#endif /* AQA_HEAD_H */
