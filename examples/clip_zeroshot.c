/* clip_zeroshot.c: zero-shot classification of one image with CLIP, a short tour of the API.
 *
 *   examples/clip_zeroshot --weights FILE.safetensors (--bpe FILE | --vocab FILE) --image FILE
 *                          --labels "text" "text" ...
 *
 * --bpe is CLIP's bpe_simple_vocab_16e6.txt.gz (models/clip/data/) for real CLIP weights, --vocab
 * the word vocabulary of a tiny CLIP trained by pretrain_clip (its vocab.txt).
 *
 * Loads the model (models/clip/clip.h), preprocesses the image as CLIP does (image/resize.h),
 * tokenizes the labels (examples/clip_tok.h), encodes both without gradients, and prints
 * softmax(100 * cosine similarity) over the labels -- CLIP's logits_per_image -- one line per
 * label in the order given: "probability<TAB>label". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/resize.h"
#include "examples/cli.h"
#include "examples/clip_tok.h"
#include "models/clip/clip.h"
#include "ops/ops.h"

int main(int argc, char **argv) {
    kv_config c = {.program = "clip_zeroshot", .about = "Zero-shot classification of one image with CLIP."};
    kv_def(&c, "weights", "", "CLIP weights (safetensors, OpenAI or Hugging Face names)");
    kv_def(&c, "bpe", "", "CLIP's bpe_simple_vocab_16e6.txt.gz (real CLIP weights)");
    kv_def(&c, "vocab", "", "word vocabulary of a CLIP trained by pretrain_clip (its vocab.txt)");
    kv_def(&c, "image", "", "PNG or JPEG image");
    kv_def_list(&c, "labels", "the candidate texts");
    int pr = kv_parse_args(&c, argc, argv, "--weights FILE.safetensors (--bpe FILE | --vocab FILE) --image FILE --labels \"text\" ...");
    int n_labels = 0;
    const char *const *labels = (const char *const *)kv_list(&c, "labels", &n_labels);
    if (!pr && (!kv_has(&c, "weights") || !kv_has(&c, "image") || n_labels == 0)) {
        fprintf(stderr, "clip_zeroshot: --weights, --image and --labels are required (--help)\n");
        pr = 1;
    }
    if (pr) {
        kv_free(&c);
        return kv_exit_code(pr);
    }
    const char *weights = kv_str(&c, "weights"), *image = kv_str(&c, "image");
    int rc = 1;
    aqa_clip_model *m = NULL;
    word_tok tok;
    memset(&tok, 0, sizeof tok);
    aqa_image *im = NULL;
    float *pix = NULL;
    int64_t *ids = NULL;
    /* 1. the model and the tokenizer */
    if (aqa_clip_load(weights, &m) != AQA_OK || wt_load(&tok, kv_str(&c, "vocab"), kv_str(&c, "bpe"), NULL) != AQA_OK)
        goto out;
    int64_t R = m->cfg.image_resolution, C = m->cfg.context_length;
    /* 2. the image, preprocessed to [1, 3, R, R] */
    pix = malloc(sizeof(float) * (size_t)(3 * R * R));
    ids = malloc(sizeof(int64_t) * (size_t)(n_labels * C));
    if (!pix || !ids || !(im = aqa_image_load(image)) || aqa_clip_preprocess(im, (int)R, pix) != AQA_OK) goto out;
    /* 3. the labels, tokenized as clip.tokenize (truncated to the context) */
    if (wt_tokenize(&tok, labels, (size_t)n_labels, C, true, ids) != AQA_OK) goto out;
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
    kv_free(&c);
    aqa_image_free(im);
    wt_free(&tok);
    aqa_clip_model_free(m);
    return rc;
}
