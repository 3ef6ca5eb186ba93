/* seq.h: what the clip-sequence heads share.  TPT, HGCN, GDLT, MS-LSTM and the MLP-Mixer read the
 * sequence of clip (or frame) features of a video, in->frames [B, T, C_f], as their original
 * code reads I3D / C3D / Swin clip features.  With MVLA (cfg.use_z: "R regresses Z") MVLA's fused
 * features enter that sequence the way TSA takes them (our way of plugging Z in): every step gets
 * stage_proj(Z^sta) of its stage (in->boundaries) and video_proj(Z^vid) added, two Linears
 * C -> C_f named "stage_proj" and "video_proj" in the head. */
#ifndef AQA_HEADS_SEQ_H
#define AQA_HEADS_SEQ_H

#include "models/heads/head.h"
#include "nn/linear.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The Z projections of one head (both NULL without MVLA). */
typedef struct aqa_seq_z {
    aqa_linear_layer *stage_proj; /* feat_dim -> frame_dim, or NULL */
    aqa_linear_layer *video_proj; /* feat_dim -> frame_dim, or NULL */
} aqa_seq_z;

/* Adds the projections to the head module when cfg->use_z.  AQA_OK or an error. */
aqa_status aqa_seq_z_init(aqa_seq_z *z, aqa_module *head, const aqa_head_config *cfg);

/* The head's input [B, T, C_f]: in->frames (checked against cfg.frame_dim and, when cfg.seq.len
 * > 0, T), plus the Z terms when z holds projections (then in->stages, in->video and
 * in->boundaries are needed).  NULL with an error naming `who` otherwise. */
aqa_tensor *aqa_seq_input(const aqa_head *h, const aqa_seq_z *z, const aqa_head_input *in, const char *who);

/* Regression heads without exemplars ('w/ DD' as the MLP head): the training target [B] is
 * targets->score, divided by the query's in->difficulty when cfg.use_difficulty; NULL without a
 * score (no error).  y is cast to the target's device and dtype by the caller. */
aqa_tensor *aqa_seq_target(const aqa_head *h, const aqa_head_input *in, const aqa_head_targets *t, const aqa_tensor *like);
/* The prediction from the network's output y [B]: y x in->difficulty when cfg.use_difficulty and
 * it is given, else y. */
aqa_tensor *aqa_seq_prediction(const aqa_head *h, const aqa_head_input *in, aqa_tensor *y);

#ifdef __cplusplus
}
#endif

#endif /* AQA_HEADS_SEQ_H */
