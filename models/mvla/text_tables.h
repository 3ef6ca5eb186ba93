/* text_tables.h: MVLA's stage- and video-text tables (aqa_mvla_batch.stage_text / video_text) from
 * a CLIP text encoder, fine-tuned or frozen.
 *
 * The paper fine-tunes the CLIP text encoder with the visual feature extraction (Adam, lr 1e-4);
 * freezing it is Table 5's "Freeze CLIP-Text" ablation.
 *   fine-tuned  a call with gradients enabled (a training step) re-encodes every text with a graph
 *               (eq. 5's cross-entropy needs the whole table, not only the batch's texts), so the
 *               loss reaches the encoder's weights; a call in no-grad mode (evaluation) encodes
 *               once and reuses the tables until the next call with gradients (the weights only
 *               change between training steps).
 *   frozen      encoded once, without a graph, and cached for good; the encoder's parameters are
 *               set not to require gradients.
 * Only the text side of the model is used and trained: token_embedding, positional_embedding,
 * transformer, ln_final, text_projection ("visual.*" and logit_scale are untouched).
 *
 *     ```c
 *     // stage_ids, video_ids: the tokenised texts (I64 [C, ctx]); one training step's tables
 *     aqa_status text_step(aqa_clip_model *clip, const aqa_tensor *stage_ids, const aqa_tensor *video_ids,
 *                          aqa_mvla_batch *batch) {
 *         aqa_mvla_text_tables *tt = aqa_mvla_text_tables_new(clip, stage_ids, video_ids, true);
 *         if (!tt) return aqa_last_status();
 *         aqa_tensor **p = NULL;
 *         int n = aqa_mvla_text_tables_parameters(tt, &p); // into the optimizer's lr 1e-4 group
 *         aqa_scope_begin();
 *         aqa_status st = aqa_mvla_text_tables_get(tt, &batch->stage_text, &batch->video_text);
 *         // ... aqa_mvla_forward, backward, optimizer step ...
 *         aqa_scope_end();
 *         free(p);
 *         aqa_mvla_text_tables_free(tt);
 *         return n < 0 ? aqa_last_status() : st;
 *     }
 *     ```
 */
#ifndef AQA_MVLA_TEXT_TABLES_H
#define AQA_MVLA_TEXT_TABLES_H

#include <stdbool.h>

#include "models/clip/clip.h"
#include "tensor/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct aqa_mvla_text_tables {
    aqa_clip_model *clip;  /* borrowed text encoder (outlives the tables) */
    aqa_tensor *stage_ids; /* owned I64 [C_sta, ctx]: token ids of the stage texts */
    aqa_tensor *video_ids; /* owned I64 [C_vid, ctx]: token ids of the video texts */
    bool finetune;         /* gradients reach the encoder (false: frozen, encoded once) */
    aqa_tensor *stage;     /* owned cached tables without graph [C_sta, D] / [C_vid, D], or NULL */
    aqa_tensor *video;
} aqa_mvla_text_tables;

/* Tables of the texts tokenised as stage_ids / video_ids (I64 [C, ctx], copied) by `clip`'s text
 * encoder.  Sets requires_grad of the text-side parameters to `finetune`.  NULL on bad input. */
aqa_mvla_text_tables *aqa_mvla_text_tables_new(aqa_clip_model *clip, const aqa_tensor *stage_ids,
                                               const aqa_tensor *video_ids, bool finetune);
void aqa_mvla_text_tables_free(aqa_mvla_text_tables *t); /* NULL is fine; not the model */

/* The tables [C_sta, D] and [C_vid, D] on the encoder's device.  Fine-tuned with gradients
 * enabled: new tensors with a graph, owned by the open scope (or the caller).  Otherwise the
 * cached tables, borrowed: valid until the next call or aqa_mvla_text_tables_free. */
aqa_status aqa_mvla_text_tables_get(aqa_mvla_text_tables *t, aqa_tensor **stage, aqa_tensor **video);

/* The text-side parameters (malloc'd array of borrowed pointers) when fine-tuned; 0 and *out
 * NULL when frozen.  Returns the count, or -1. */
int aqa_mvla_text_tables_parameters(aqa_mvla_text_tables *t, aqa_tensor ***out);

/* The text side's tensors with OpenAI's names, written atomically to `path` (a fine-tuned
 * encoder's state beside a checkpoint) with n_meta metadata pairs (may be 0) and "format", and
 * read back into the model: every text-side tensor must be in the file with its shape, and
 * nothing else (errors name the file). */
aqa_status aqa_mvla_text_tables_save(aqa_mvla_text_tables *t, const char *path, int n_meta, const char *const *meta_keys,
                                     const char *const *meta_values);
aqa_status aqa_mvla_text_tables_load(aqa_mvla_text_tables *t, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* AQA_MVLA_TEXT_TABLES_H */
