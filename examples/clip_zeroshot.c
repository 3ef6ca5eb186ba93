/* clip_zeroshot.c: zero-shot classification of one image with CLIP, a short tour of the API.
 *
 *   examples/clip_zeroshot --weights FILE.safetensors --vocab FILE --image FILE --labels "text" "text" ...
 *
 * Loads the model (models/clip/clip.h), preprocesses the image as CLIP does (image/resize.h),
 * tokenizes the labels (models/clip/tokenizer.h), encodes both without gradients, and prints
 * softmax(100 * cosine similarity) over the labels -- CLIP's logits_per_image -- one line per
 * label in the order given: "probability<TAB>label". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/resize.h"
#include "models/clip/clip.h"
#include "models/clip/tokenizer.h"
#include "ops/ops.h"

int main(int argc, char **argv) {
    const char *weights = NULL, *vocab = NULL, *image = NULL;
    const char **labels = calloc((size_t)argc, sizeof *labels);
    int n_labels = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--weights") && i + 1 < argc) weights = argv[++i];
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(argv[i], "--image") && i + 1 < argc) image = argv[++i];
        else if (!strcmp(argv[i], "--labels")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) labels[n_labels++] = argv[++i];
        } else {
            fprintf(stderr, "clip_zeroshot: unknown or incomplete argument \"%s\"\n", argv[i]);
            n_labels = -1;
            break;
        }
    }
    if (!weights || !vocab || !image || n_labels <= 0) {
        fprintf(stderr, "usage: clip_zeroshot --weights FILE.safetensors --vocab FILE --image FILE --labels \"text\" ...\n");
        free(labels);
        return 2;
    }
    int rc = 1;
    aqa_clip_model *m = NULL;
    aqa_bpe_tokenizer *tok = NULL;
    aqa_image *im = NULL;
    float *pix = NULL;
    int64_t *ids = NULL;
    /* 1. the model and the tokenizer */
    if (aqa_clip_load(weights, &m) != AQA_OK || aqa_bpe_load(vocab, &tok) != AQA_OK) goto out;
    int64_t R = m->cfg.image_resolution, C = m->cfg.context_length;
    /* 2. the image, preprocessed to [1, 3, R, R] */
    pix = malloc(sizeof(float) * (size_t)(3 * R * R));
    ids = malloc(sizeof(int64_t) * (size_t)(n_labels * C));
    if (!pix || !ids || !(im = aqa_image_load(image)) || aqa_clip_preprocess(im, (int)R, pix) != AQA_OK) goto out;
    /* 3. the labels, tokenized as clip.tokenize (truncated to the context) */
    if (aqa_bpe_tokenize(tok, labels, (size_t)n_labels, (size_t)C, 1, ids) != AQA_OK) goto out;
    /* 4. encode without gradients, then CLIP's logits and a softmax over the labels */
    aqa_scope_begin();
    aqa_tensor *img = aqa_clip_encode_image(m, aqa_from_data(pix, AQA_SHAPE(1, 3, R, R), AQA_F32), true);
    aqa_tensor *txt = aqa_clip_encode_text(m, aqa_from_data(ids, AQA_SHAPE(n_labels, C), AQA_I64), true);
    aqa_tensor *probs = aqa_softmax(aqa_clip_logits(m, img, txt), -1); /* [1, n_labels] */
    float *p = malloc(sizeof(float) * (size_t)n_labels);
    if (p && probs && aqa_copy_to_host(probs, p, AQA_F32) == AQA_OK) {
        for (int i = 0; i < n_labels; i++) printf("%.6f\t%s\n", p[i], labels[i]);
        rc = 0;
    }
    free(p);
    aqa_scope_end();
out:
    if (rc) fprintf(stderr, "clip_zeroshot: %s\n", aqa_last_error());
    free(ids);
    free(pix);
    free(labels);
    aqa_image_free(im);
    aqa_bpe_free(tok);
    aqa_clip_model_free(m);
    return rc;
}
