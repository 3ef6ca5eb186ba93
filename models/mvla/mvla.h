/* mvla.h: MVLA, the multi-grained vision-language alignment model of "Vision-Language Action
 * Knowledge Learning for Semantic-Aware Action Quality Assessment" (ECCV 2024), as a library.
 *
 * One forward turns a batch of videos, given as features, into what an assessment head needs
 * (fused stage- and video-level features Z, frame-level features and stage boundaries) plus every
 * MVLA loss term:
 *
 *   CBP branch  F_i3d [B, N, C_i3d] (I3D clip features, computed or cached by the caller),
 *               projected to D by a Linear when C_i3d != D ("i3d_proj").
 *   VLP branch  CLIP frame features [B, T, D_clip] (frozen encoder, cached by the caller) ->
 *               learnable temporal transformer ("temporal": positional embedding + pre-norm
 *               TransformerEncoder) -> F_vis [B, T, D] (eq. 3).
 *   Texts       the stage-text and video-text tables [C_sta, D_text] / [C_vid, D_text] from the
 *               CLIP text encoder (they carry gradients when the caller fine-tunes it), projected
 *               to D when D_text != D; each sample names its stage texts and video text by id.
 *   FAM         TSA's segmentation module ("seg", segmentation.c) lifts the clip features to T
 *               pseudo-frames and gives boundary probabilities P [B, T, L] (BCE, eq. 4); given
 *               the time-averaged I3D Mixed_5c maps it also lifts them (frame_maps: TSA's keys
 *               and values);
 *               boundary l = argmax of P[:, :, l] over frames [T/L l, T/L (l+1)) as TSA; the split
 *               uses the ground truth under teacher forcing or as an oracle, the prediction else.
 *               Granularities: frame, stage, video.
 *   FUM         VLP frames are pooled to the CBP clips; fixed per-sport boundaries split clips
 *               into stages.  Granularities: clip, stage, video, plus the KL term of eq. 7.
 *   VLKL        cross-entropy over cosine similarities / tau (eq. 5, learnable tau initialised
 *               to CLIP's 0.07) at each granularity for x in {i3d, vis} (eq. 6), each term
 *               switchable and weighted (vlkl.c).
 *   SCA         semantic-aware collaborative attention (eq. 8) at stage and video level (sca.c).
 *
 * Typical training step (the program owns the model, the optimizer and the data; examples/
 * train_mvla.c is the whole program):
 *
 *     ```c
 *     // m = aqa_mvla_new(&cfg, NULL, ""); h = aqa_head_new(aqa_head_find("tsa"), &hcfg, &m->base, "head");
 *     // b: B query videos then B exemplars; targets and exemplar scores [B] from the batch
 *     aqa_status train_step(aqa_mvla *m, aqa_head *h, aqa_mvla_batch b, int64_t B, aqa_tensor *exemplar_score,
 *                           const aqa_head_targets *targets, aqa_optimizer *opt, int epoch, int max_epoch) {
 *         aqa_scope_begin();
 *         b.teacher_forcing = aqa_mvla_teacher_forcing(&m->cfg, epoch, max_epoch);
 *         b.compute_losses = true;
 *         aqa_mvla_output o;
 *         aqa_head_input q, e;
 *         aqa_head_result r;
 *         aqa_status st = aqa_mvla_forward(m, &b, &o);
 *         if (st == AQA_OK) st = aqa_mvla_head_input(&o, 0, B, &q);
 *         if (st == AQA_OK) st = aqa_mvla_head_input(&o, B, B, &e);
 *         if (st == AQA_OK) st = aqa_head_forward(h, &q, &e, exemplar_score, targets, &r);
 *         if (st == AQA_OK) {
 *             aqa_optim_zero_grad(opt);
 *             st = aqa_backward(aqa_mvla_total_loss(m, &o, r.loss), NULL, false);
 *         }
 *         if (st == AQA_OK) st = aqa_optim_step(opt);
 *         aqa_scope_end();
 *         return st;
 *     }
 *     ```
 *
 * Ablations outside this model: a frozen CLIP text encoder (Table 5's "Freeze CLIP-Text") is a
 * text table without gradient; graded texts (JIGSAWS, Fis-V, "+ Quality Text") are text tables
 * whose candidates the batch names (stage_text_cands / video_text_cands), SCA picking among them.
 *
 * Module names (state_dict keys) equal those of scripts/mvla_torch.py, so weights move between
 * the two through safetensors.  Sizes and choices the paper leaves open are settings; their
 * defaults are documented at aqa_mvla_config_default (our choices). */
#ifndef AQA_MVLA_H
#define AQA_MVLA_H

#include <stdbool.h>
#include <stdint.h>

#include "models/heads/head.h"
#include "nn/batchnorm.h"
#include "nn/conv.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/transformer.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AQA_MVLA_MAX_BOUNDARIES 15 /* L at most (16 stages) */

typedef enum aqa_mvla_scheme {
    AQA_MVLA_FAM = 0, /* frame-wise annotated: segmentation module + BCE (FineDiving) */
    AQA_MVLA_FUM = 1  /* frame-wise unannotated: fixed clip boundaries + KL (MTL-AQA, JIGSAWS, Fis-V) */
} aqa_mvla_scheme;

/* How PSNet reads the time-averaged I3D Mixed_5c maps [B, N, C, H, W] (TSA's feature maps). */
typedef enum aqa_mvla_map_layout {
    AQA_MVLA_MAP_TSA = 0,     /* TSA's code: the maps reshaped in memory order to [B H W, N, C]
                                 (feamap.reshape(-1, T, C)) and PSNet's output back to
                                 [B, T, W, H, W] the same way: what TSA's numbers come from */
    AQA_MVLA_MAP_POSITION = 1 /* each spatial position's own [N, C] sequence (permuted first):
                                 PSNet sees one position's clips, as its 1-D input */
} aqa_mvla_map_layout;

/* What Z is when SCA is switched off (Table 5's rows without SCA). */
typedef enum aqa_mvla_fuse {
    AQA_MVLA_FUSE_I3D = 0, /* Z = the CBP features alone (the baseline) */
    AQA_MVLA_FUSE_ADD = 1  /* Z = F_i3d + F_vis ("I3D + CLIP-Image") */
} aqa_mvla_fuse;

/* Which texts SCA fuses when the sample's own texts are graded (chosen by its score): */
typedef enum aqa_mvla_grade_mode {
    AQA_MVLA_GRADES_NEAREST = 0, /* the paper: "the highest-similarity textual semantics", the
                                    candidate closest (cosine) to each stage / video feature */
    AQA_MVLA_GRADES_ALL = 1      /* attention over every candidate */
} aqa_mvla_grade_mode;

/* How a VLKL term reduces over its visual embeddings (rows).  Eq. 5 sums over them, which weights
 * the terms by their row counts (per video T frames : L + 1 stages : 1 video, 96 : 3 : 1 on
 * FineDiving); the mean gives every term the same weight whatever T and L are. */
typedef enum aqa_mvla_vlkl_reduction {
    AQA_MVLA_VLKL_MEAN = 0, /* each term averaged over all its rows (our default) */
    AQA_MVLA_VLKL_SUM = 1   /* eq. 5 as written: summed over the rows of each video, averaged over
                               the videos of the batch (the KL term: summed over the stage texts) */
} aqa_mvla_vlkl_reduction;

/* The loss terms, in the order of aqa_mvla_output.losses and aqa_mvla_config.loss_weight. */
typedef enum aqa_mvla_loss {
    AQA_MVLA_LOSS_BCE = 0,         /* boundary BCE (FAM, eq. 4) */
    AQA_MVLA_LOSS_FRAME_I3D,       /* L_CE(F_i3d^fra, F_text^sta) (FAM) */
    AQA_MVLA_LOSS_STAGE_I3D,       /* L_CE(F_i3d^sta, F_text^sta) */
    AQA_MVLA_LOSS_VIDEO_I3D,       /* L_CE(F_i3d^vid, F_text^vid) */
    AQA_MVLA_LOSS_FRAME_VIS,       /* the same for the VLP branch */
    AQA_MVLA_LOSS_STAGE_VIS,
    AQA_MVLA_LOSS_VIDEO_VIS,
    AQA_MVLA_LOSS_KL,              /* KL between the clip-level similarity curves (FUM, eq. 7) */
    AQA_MVLA_LOSS_HEAD,            /* the assessment head's loss (set by aqa_mvla_total_loss) */
    AQA_MVLA_NUM_LOSSES
} aqa_mvla_loss;

/* Short name of a loss term ("bce", "vlkl_frame_i3d", ..., "kl", "head"). */
const char *aqa_mvla_loss_name(aqa_mvla_loss which);

typedef struct aqa_mvla_config {
    aqa_mvla_scheme scheme;        /* FAM or FUM */
    /* sizes */
    int64_t num_clips;             /* N: CBP clips per video (9) */
    int64_t i3d_dim;               /* C_i3d: CBP feature width (1024) */
    int64_t num_frames;            /* T: frames per video (96); FAM needs T % 8 == 0 */
    int64_t clip_feat_dim;         /* D_clip: CLIP image feature width (512) */
    int64_t text_dim;              /* D_text: CLIP text embedding width (512) */
    int64_t dim;                   /* D: common width (512) */
    int64_t num_boundaries;        /* L: stage boundaries (2 -> 3 stages) */
    /* FAM segmentation module (TSA's PSNet; channels T/8, T/4, T/2, T, T over i3d_dim/16) */
    int64_t seg_mlp_hidden1;       /* TSA's MLP 64-128-64-L: 128 */
    int64_t seg_mlp_hidden2;       /* 64 */
    double teacher_forcing_fraction; /* ground-truth split while epoch / max_epoch <= this (0.25) */
    bool oracle_boundaries;        /* always split by the ground truth (Table 5's dagger rows) */
    aqa_mvla_map_layout map_layout; /* how PSNet reads batch i3d_map (TSA's code) */
    /* FUM */
    int64_t clip_len;              /* frames per clip when pooling VLP frames to clips (16) */
    int64_t clip_stride;           /* first frame of clip c = min(c * clip_stride, T - clip_len) (10):
                                      the CBP clips' rule, so the last clip of MTL-AQA (103 frames,
                                      stride 10) is frames 87..102 in both branches */
    int64_t fum_boundaries[AQA_MVLA_MAX_BOUNDARIES]; /* first clip of stage l + 1, strictly
                                      increasing in [1, N - 1]; all 0 = an even split.  The
                                      sport-specific values are the dataset's (video_dataset.h) */
    /* VLP branch */
    bool use_vlp;                  /* false: no VLP branch, no VLKL, no SCA (the plain head "X") */
    int temporal_layers;           /* temporal transformer depth (2) */
    int64_t temporal_heads;        /* its heads (8) */
    int64_t temporal_ffn;          /* its MLP width (4 D_clip) */
    double temporal_dropout;       /* its dropout (0.1) */
    /* VLKL switches (Table 4) */
    bool vlkl_frame;               /* frame-level CE (FAM) */
    bool vlkl_stage;               /* stage-level CE */
    bool vlkl_video;               /* video-level CE */
    bool vlkl_kl;                  /* clip-level KL (FUM) */
    bool vlkl_i3d, vlkl_vis;       /* which branches the CE terms apply to (both) */
    aqa_mvla_vlkl_reduction vlkl_reduction; /* how a term reduces its rows (MEAN) */
    double tau_init;               /* initial temperature (0.07, CLIP's) */
    bool learn_tau;                /* tau is a parameter (true) or fixed at tau_init */
    /* SCA (Table 5) */
    bool sca;                      /* on: Z from eq. 8; off: see fuse */
    int64_t sca_mlp_hidden;        /* hidden width of SCA's MLPs (D) */
    aqa_mvla_fuse fuse;            /* Z without SCA */
    aqa_mvla_grade_mode grade_texts; /* SCA's texts for graded candidates (NEAREST, the paper's) */
    /* loss weights, indexed by aqa_mvla_loss (all 1) */
    double loss_weight[AQA_MVLA_NUM_LOSSES];
} aqa_mvla_config;

/* FineDiving's sizes with every MVLA part on (FAM, N 9 x 1024, T 96 x 512, D 512, L 2).  Our
 * choices where the paper is silent: temporal transformer 2 pre-norm layers, 8 heads, MLP 4 D,
 * GELU, dropout 0.1, final LayerNorm, positional embedding N(0, 0.02); one tau shared by all VLKL
 * terms, clamped to >= 0.01 as CLIP's logit scale; CE terms averaged over their visual
 * embeddings (vlkl_reduction MEAN; eq. 5 sums: SUM); i3d frame features projected from the segmentation width to D by a
 * Linear ("i3d_frame_proj"); SCA single-head with its own weights at stage and video level, MLP
 * hidden D; SCA's texts at stage level are the sample's stage texts, at video level the sample's
 * video text followed by its stage texts; with graded texts (batch cands), the candidates picked
 * by grade_texts in their place (NEAREST compares them with the VLP stage / video features, the
 * ones VLKL aligns with texts), the true grades serving only as VLKL / KL targets; FUM KL over
 * softmax-over-clips curves, one per stage text, averaged; FUM clips follow the CBP clips' rule
 * and split evenly unless fum_boundaries are given (the programs set the dataset's sport-specific
 * ones); teacher forcing for the first quarter of training (TSA); all weights 1. */
aqa_mvla_config aqa_mvla_config_default(void);
/* The same sizes without MVLA (use_vlp false): the CBP branch and the segmentation only, for the
 * plain head rows "X" of the tables.  Then no projection exists: frames are the segmentation's
 * pseudo-frames [B, T, W] (FAM) or the raw clip features (FUM), stage = their stage means and
 * video = the mean raw clip feature [B, C_i3d] (CoRe's and USDL's input). */
aqa_mvla_config aqa_mvla_config_plain(void);

/* TSA's segmentation module (PSNet): names inc, down1..down4, tas as in TSA's code. */
typedef struct aqa_mvla_segmentation {
    aqa_module base;                      /* type "PSNet" */
    aqa_module *blocks[5];                /* inc, down1..down4 (each a double conv) */
    aqa_conv_layer *conv[5][2];           /* the two k3 convolutions of each block */
    aqa_batch_norm_layer *bn[5][2];       /* their BatchNorms */
    aqa_linear_layer *mlp[3];             /* tas.layer1..3: W -> h1 -> h2 -> L */
    int64_t width;                        /* W: i3d_dim / 16 (64 for 1024) */
} aqa_mvla_segmentation;

/* SCA (eq. 8) at one level. */
typedef struct aqa_mvla_sca {
    aqa_module base;                                 /* type "SCA" */
    aqa_linear_layer *vis_q, *vis_k, *vis_v;         /* w_q, w_k, w_v (no bias) */
    aqa_linear_layer *vis_fc1, *vis_fc2;             /* MLP of X (vis_mlp.fc1/fc2) */
    aqa_linear_layer *cbp_q, *cbp_k, *cbp_v;         /* W_q, W_k, W_v (no bias) */
    aqa_linear_layer *cbp_fc1, *cbp_fc2;             /* MLP of Z (cbp_mlp.fc1/fc2) */
} aqa_mvla_sca;

/* The temporal transformer of the VLP branch. */
typedef struct aqa_mvla_temporal {
    aqa_module base;                      /* type "TemporalTransformer" */
    aqa_tensor *pos_embed;                /* [T, D_clip] */
    aqa_transformer_encoder *encoder;     /* "encoder": pre-norm layers + final norm */
} aqa_mvla_temporal;

typedef struct aqa_mvla {
    aqa_module base;                      /* type "MVLA" */
    aqa_mvla_config cfg;                  /* as built */
    aqa_tensor *log_tau;                  /* [1] log temperature (parameter or buffer) */
    aqa_linear_layer *i3d_proj;           /* C_i3d -> D, or NULL when equal */
    aqa_mvla_segmentation *seg;           /* FAM only */
    aqa_linear_layer *i3d_frame_proj;     /* FAM with VLP: W -> D for frame-level VLKL */
    aqa_mvla_temporal *temporal;          /* VLP only */
    aqa_linear_layer *vis_proj;           /* D_clip -> D, or NULL */
    aqa_linear_layer *text_proj;          /* D_text -> D, or NULL */
    aqa_mvla_sca *sca_stage, *sca_video;  /* SCA at stage and video level, or NULL */
} aqa_mvla;

/* One batch of B videos.  Tensors are borrowed. */
typedef struct aqa_mvla_batch {
    aqa_tensor *i3d;             /* [B, N, C_i3d] CBP clip features (required) */
    aqa_tensor *i3d_map;         /* [B, N, C_i3d, H, W] time-averaged I3D Mixed_5c maps (FAM, TSA's
                                    keys/values); NULL = none */
    aqa_tensor *vis;             /* [B, T, D_clip] frozen CLIP frame features (VLP only) */
    aqa_tensor *stage_text;      /* [C_sta, D_text] stage-text table (VLP only) */
    aqa_tensor *video_text;      /* [C_vid, D_text] video-text table (VLP only) */
    aqa_tensor *stage_text_ids;  /* I64 [B, L + 1]: each sample's stage texts (VLP only); with graded
                                    texts the true grades', needed only with compute_losses */
    aqa_tensor *video_text_ids;  /* I64 [B]: each sample's video text (VLP only; likewise) */
    aqa_tensor *stage_text_cands; /* I64 [B, L + 1, G]: graded texts: every grade of each stage text,
                                    from which SCA picks (cfg.grade_texts); NULL: the texts are not
                                    graded and SCA fuses stage_text_ids */
    aqa_tensor *video_text_cands; /* I64 [B, G]: the same in the video-text table (with stage_text_cands) */
    aqa_tensor *boundaries;      /* I64 [B, L] ground truth, first frame of stage l + 1 (FAM);
                                    NULL at inference unless oracle */
    aqa_tensor *boundary_target; /* [B, T, L] BCE target; NULL = 1 at the ground-truth boundary
                                    of each column, 0 elsewhere (TSA) */
    aqa_tensor *frame_stage;     /* I64 [B, T] stage of each frame for frame-level VLKL; NULL =
                                    from boundaries (or, without them, from the split used) */
    bool teacher_forcing;        /* split by the ground truth (early training, TSA) */
    bool compute_losses;         /* compute the loss terms (false: inference only) */
} aqa_mvla_batch;

/* Result of a forward.  Tensors belong to the scope open at the call (or the caller). */
typedef struct aqa_mvla_output {
    aqa_tensor *frames;          /* [B, T, W] FAM pseudo-frame features (TSA's 64-d), or
                                    [B, N, D] projected clip features (FUM) */
    aqa_tensor *frame_maps;      /* [B, T, W, H W] PSNet on batch i3d_map (FAM), else NULL */
    aqa_tensor *boundaries;      /* I64 [B, L]: the split used for frames and stages */
    aqa_tensor *pred_boundaries; /* I64 [B, L]: the predicted split (FAM), else = boundaries */
    aqa_tensor *boundary_prob;   /* [B, T, L] boundary probabilities (FAM), else NULL */
    aqa_tensor *stage;           /* [B, L + 1, D] fused stage features Z^sta */
    aqa_tensor *video;           /* [B, D] fused video feature Z^vid */
    aqa_tensor *losses[AQA_MVLA_NUM_LOSSES]; /* 0-d terms (unweighted), NULL when off */
    aqa_tensor *loss;            /* weighted sum of the present MVLA terms (0-d), or NULL */
} aqa_mvla_output;

aqa_mvla *aqa_mvla_new(const aqa_mvla_config *cfg, aqa_module *parent, const char *name);
aqa_status aqa_mvla_forward(aqa_mvla *m, const aqa_mvla_batch *batch, aqa_mvla_output *out);
/* Sets out->losses[AQA_MVLA_LOSS_HEAD] = head_loss (may be NULL) and returns the weighted sum
 * of every present term. */
aqa_tensor *aqa_mvla_total_loss(aqa_mvla *m, aqa_mvla_output *out, aqa_tensor *head_loss);
/* Whether the split should use the ground truth at this point of training (TSA's schedule:
 * epoch / max_epoch <= teacher_forcing_fraction). */
bool aqa_mvla_teacher_forcing(const aqa_mvla_config *cfg, int epoch, int max_epoch);
/* The head input of samples [start, start + n) of an output (views, no copies; frames,
 * frame_maps, boundaries, stages, video; the caller adds difficulty and judge counts). */
aqa_status aqa_mvla_head_input(const aqa_mvla_output *o, int64_t start, int64_t n, aqa_head_input *in);
/* The parameters of the "visual feature extraction" group (lr 1e-4 in the paper: temporal
 * transformer and projections) and of the rest (SCA, segmentation, tau: lr 1e-3), as malloc'd
 * arrays of borrowed pointers.  Returns AQA_OK. */
aqa_status aqa_mvla_param_groups(aqa_mvla *m, aqa_tensor ***backbone, int *n_backbone, aqa_tensor ***rest,
                                 int *n_rest);

/* ---- components (exposed for tests and custom models) ------------------------------------ */
aqa_mvla_segmentation *aqa_mvla_segmentation_new(aqa_module *parent, const char *name, int64_t num_clips,
                                                 int64_t i3d_dim, int64_t num_frames, int64_t hidden1,
                                                 int64_t hidden2, int64_t num_boundaries);
/* i3d [B, N, C_i3d] -> *frames [B, T, W] and *prob [B, T, L] (sigmoid). */
aqa_status aqa_mvla_segmentation_forward(aqa_mvla_segmentation *s, aqa_tensor *i3d, aqa_tensor **frames,
                                         aqa_tensor **prob);
/* TSA's boundary selection from prob [B, T, L]: boundary l = l T/L + argmax over frames
 * [l T/L, (l+1) T/L) of column l (T/L rounded), then made valid (>= 1, increasing, < T). */
aqa_tensor *aqa_mvla_select_boundaries(aqa_tensor *prob);
/* 1 at (b, boundaries[b, l], l), 0 elsewhere: [B, T, L] of dtype. */
aqa_tensor *aqa_mvla_boundary_target(const aqa_tensor *boundaries, int64_t T, aqa_dtype dtype);

aqa_mvla_temporal *aqa_mvla_temporal_new(aqa_module *parent, const char *name, int64_t num_frames, int64_t width,
                                         int layers, int64_t heads, int64_t ffn, double dropout);
aqa_tensor *aqa_mvla_temporal_forward(aqa_mvla_temporal *t, aqa_tensor *x);

aqa_mvla_sca *aqa_mvla_sca_new(aqa_module *parent, const char *name, int64_t dim, int64_t mlp_hidden);
/* vis [B, Q, D], text [B, K, D], i3d [B, Q', D] -> Z [B, Q', D] (eq. 8). */
aqa_tensor *aqa_mvla_sca_forward(aqa_mvla_sca *s, aqa_tensor *vis, aqa_tensor *text, aqa_tensor *i3d);
/* SCA's texts among graded candidates: table [C, D] (projected), cands I64 [B, K, G] (ids into
 * table, G per slot), feat [B, K, D] (the slot's VLP feature).  NEAREST: the candidate with the
 * highest cosine similarity to each slot's feature, [B, K, D] (ties: the lowest grade; the choice
 * carries no gradient, the chosen rows do); ALL: every candidate, [B, K G, D]. */
aqa_tensor *aqa_mvla_pick_texts(aqa_tensor *table, aqa_tensor *cands, aqa_tensor *feat, aqa_mvla_grade_mode mode);

/* eq. 5 averaged over the rows: CE of cos(x_i, texts_j) * exp(-log_tau) with target ids[i].
 * x [M, D], texts [C, D] (any scale: both are L2-normalised here), ids I64 [M], log_tau [1]. */
aqa_tensor *aqa_mvla_vlkl_ce(aqa_tensor *x, aqa_tensor *texts, aqa_tensor *ids, aqa_tensor *log_tau);
/* The FUM KL term: curves over clips of cos(clip, text_s) / tau for each of a sample's stage
 * texts; KL(softmax(i3d curve) || softmax(vis curve)) averaged over samples and texts.
 * i3d, vis [B, N, D]; texts [B, S, D]. */
aqa_tensor *aqa_mvla_vlkl_kl(aqa_tensor *i3d, aqa_tensor *vis, aqa_tensor *texts, aqa_tensor *log_tau);
/* x / max(||x||, 1e-12) along the last dim (F.normalize). */
aqa_tensor *aqa_mvla_l2_normalize(aqa_tensor *x);

#ifdef __cplusplus
}
#endif

#endif /* AQA_MVLA_H */
