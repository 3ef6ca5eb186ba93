/* mvla_common.h: helpers shared by the MVLA programs (pretrain_clip, extract_features, train_mvla,
 * evaluate) on top of the settings parser (examples/cli.h) and the CLIP tokenizers
 * (examples/clip_tok.h): text embedding with a CLIP text encoder, dataset names.
 *
 * Header-only (static functions), so each program stays one file plus this. */
#ifndef AQA_EXAMPLES_MVLA_COMMON_H
#define AQA_EXAMPLES_MVLA_COMMON_H

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/annotations.h"
#include "datasets/texts.h"
#include "datasets/video_dataset.h"
#include "examples/cli.h"
#include "examples/clip_tok.h"
#include "models/clip/clip.h"
#include "models/clip/tokenizer.h"
#include "base/error.h"
#include "tensor/tensor.h"

#define MC_UNUSED __attribute__((unused))

/* ---- datasets ------------------------------------------------------------------------------ */

/* "synthetic" and "finediving" share FineDiving's layout.  Returns 0 or -1. */
MC_UNUSED static int parse_dataset(const char *name, aqa_ann_dataset *out) {
    if (!strcasecmp(name, "synthetic") || !strcasecmp(name, "finediving")) *out = AQA_ANN_FINEDIVING;
    else if (!strcasecmp(name, "mtl-aqa") || !strcasecmp(name, "mtl_aqa") || !strcasecmp(name, "mtlaqa")) *out = AQA_ANN_MTL_AQA;
    else if (!strcasecmp(name, "jigsaws")) *out = AQA_ANN_JIGSAWS;
    else if (!strcasecmp(name, "fisv") || !strcasecmp(name, "fis-v")) *out = AQA_ANN_FISV;
    else return -1;
    return 0;
}

/* Prints what loading the annotations tolerated or repaired (aqa_ann_manifest.notes), once per
 * program: each line as "<program>: note: ...". */
MC_UNUSED static void print_notes(const char *program, const aqa_video_dataset *ds) {
    const char *p = ds && ds->manifest ? ds->manifest->notes : NULL;
    while (p && *p) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        fprintf(stderr, "%s: note: %.*s\n", program, n, p);
        p += n + (nl != NULL);
    }
}

/* The token ids of every text of the set for model m: a new I64 [n, context_length] tensor. */
MC_UNUSED static aqa_tensor *tokenize_texts(aqa_clip_model *m, word_tok *t, const aqa_text_set *texts) {
    int64_t ctx = m->cfg.context_length;
    int64_t *ids = calloc(texts->n * (size_t)ctx + 1, sizeof *ids);
    if (!ids) return aqa_fail_null("out of memory");
    aqa_tensor *x = NULL;
    if (!wt_tokenize(t, (const char *const *)texts->texts, texts->n, ctx, false, ids))
        x = aqa_from_data(ids, 2, (int64_t[]){(int64_t)texts->n, ctx}, AQA_I64);
    free(ids);
    return x;
}

/* Embeds every text of the set with the CLIP text encoder: a new caller-owned [n, D] tensor.
 * frozen: no graph. */
MC_UNUSED static aqa_tensor *encode_texts(aqa_clip_model *m, word_tok *t, const aqa_text_set *texts, bool frozen) {
    return wt_encode_texts(m, t, (const char *const *)texts->texts, texts->n, frozen);
}

#endif /* AQA_EXAMPLES_MVLA_COMMON_H */
