/* clip_embed.c: CLIP text and image embeddings to a safetensors file.
 *
 *   examples/clip_embed --weights FILE.safetensors --vocab FILE [--texts FILE]
 *                       [--images FILE.safetensors] [--image-files A.png B.jpg ...]
 *                       --out FILE.safetensors [--batch N]
 *
 * --weights: CLIP weights with OpenAI or Hugging Face names (models/clip/clip.h).
 * --vocab:   OpenAI's bpe_simple_vocab_16e6.txt.gz.
 * --texts:   one text per line (UTF-8), tokenized as clip.tokenize with the model's context
 *            length; a text too long for the context is truncated (EOT kept last) with a warning.
 * --images:  a safetensors file holding `images` [N, 3, R, R], already preprocessed.
 * --image-files: PNG/JPEG files, preprocessed as CLIP's preprocess (image/resize.h); they
 *            come after the --images tensor in image_embeds.
 * Writes token_ids (I64 [n, context]), text_embeds (F32 [n, D]) and image_embeds (F32 [m, D]),
 * unnormalised, exactly what encode_text / encode_image return (empty tensors when there are no
 * texts or images).  Work runs in batches of --batch (default 32), with progress on stderr when
 * there is more than one batch.  Errors go to stderr and the exit status is non-zero. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/resize.h"
#include "models/clip/clip.h"
#include "models/clip/tokenizer.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"

static void usage(FILE *f) {
    fprintf(f, "usage: clip_embed --weights FILE.safetensors --vocab FILE [--texts FILE] [--images FILE.safetensors]\n"
               "                  [--image-files A.png B.jpg ...] --out FILE.safetensors [--batch N]\n");
}

/* Reads the lines of a file (without their '\n'); a last line without '\n' counts, an empty
 * file has no lines. */
static char **read_lines(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return NULL;
    char **lines = NULL, *line = NULL;
    size_t cap = 0, lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') line[len - 1] = '\0';
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **g = realloc(lines, cap * sizeof *lines);
            if (!g) break;
            lines = g;
        }
        lines[(*n)++] = strdup(line);
    }
    free(line);
    fclose(f);
    if (!lines) lines = calloc(1, sizeof *lines);
    return lines;
}

/* Concatenates n row blocks [rows_i, D] into one caller-owned tensor [sum rows_i, D]. */
static aqa_tensor *cat_rows(aqa_tensor **parts, int n, int64_t D) {
    if (n == 0) return aqa_zeros(AQA_SHAPE(0, D), AQA_F32);
    return aqa_cat(parts, n, 0);
}

int main(int argc, char **argv) {
    const char *weights = NULL, *vocab = NULL, *texts_path = NULL, *images_path = NULL, *out_path = NULL;
    const char **files = calloc((size_t)argc, sizeof *files);
    int n_files = 0;
    long batch = 32;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--weights") && i + 1 < argc) weights = argv[++i];
        else if (!strcmp(argv[i], "--vocab") && i + 1 < argc) vocab = argv[++i];
        else if (!strcmp(argv[i], "--texts") && i + 1 < argc) texts_path = argv[++i];
        else if (!strcmp(argv[i], "--images") && i + 1 < argc) images_path = argv[++i];
        else if (!strcmp(argv[i], "--out") && i + 1 < argc) out_path = argv[++i];
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
            char *end;
            batch = strtol(argv[++i], &end, 10);
            if (*end || batch < 1) {
                fprintf(stderr, "clip_embed: --batch must be a positive integer, got \"%s\"\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(argv[i], "--image-files")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) files[n_files++] = argv[++i];
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "clip_embed: unknown or incomplete argument \"%s\"\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (!weights || !vocab || !out_path) {
        fprintf(stderr, "clip_embed: --weights, --vocab and --out are required\n");
        usage(stderr);
        return 2;
    }
    int rc = 1;
    aqa_clip_model *m = NULL;
    aqa_bpe_tokenizer *tok = NULL;
    char **lines = NULL;
    size_t n_texts = 0;
    int64_t *ids = NULL;
    aqa_tensor *token_ids = NULL, *text_embeds = NULL, *image_embeds = NULL, *given = NULL;
    if (aqa_clip_load(weights, &m) != AQA_OK || aqa_bpe_load(vocab, &tok) != AQA_OK) goto fail;
    const int64_t C = m->cfg.context_length, D = m->cfg.embed_dim, R = m->cfg.image_resolution;

    /* ---- texts ---- */
    if (texts_path) {
        lines = read_lines(texts_path, &n_texts);
        if (!lines) {
            fprintf(stderr, "clip_embed: cannot read %s\n", texts_path);
            goto fail_quiet;
        }
    }
    ids = malloc(sizeof *ids * (n_texts ? n_texts : 1) * (size_t)C);
    if (!ids) goto fail;
    for (size_t i = 0; i < n_texts; i++) {
        const char *one[1] = {lines[i]};
        if (aqa_bpe_tokenize(tok, one, 1, (size_t)C, 0, ids + i * (size_t)C) != AQA_OK) {
            fprintf(stderr, "clip_embed: warning: text %zu is longer than the context (%lld); truncated\n", i + 1,
                    (long long)C);
            if (aqa_bpe_tokenize(tok, one, 1, (size_t)C, 1, ids + i * (size_t)C) != AQA_OK) goto fail;
        }
    }
    token_ids = aqa_from_data(ids, AQA_SHAPE((int64_t)n_texts, C), AQA_I64);
    if (!token_ids) goto fail;
    {
        int nb = (int)(((int64_t)n_texts + batch - 1) / batch);
        aqa_tensor **parts = calloc((size_t)(nb ? nb : 1), sizeof *parts);
        aqa_scope_begin();
        for (int b = 0; b < nb; b++) {
            int64_t s = b * batch, len = (int64_t)n_texts - s < batch ? (int64_t)n_texts - s : batch;
            parts[b] = aqa_clip_encode_text(m, aqa_narrow(token_ids, 0, s, len), true);
            if (!parts[b]) break;
            if (nb > 1) fprintf(stderr, "clip_embed: texts %lld/%zu\n", (long long)(s + len), n_texts);
        }
        text_embeds = aqa_keep(cat_rows(parts, nb, D));
        aqa_scope_end();
        free(parts);
        if (!text_embeds) goto fail;
    }

    /* ---- images ---- */
    int64_t n_given = 0;
    if (images_path) {
        given = aqa_load_tensor(images_path, "images", AQA_F32);
        if (!given) goto fail;
        n_given = given->shape[0];
    }
    {
        int64_t total = n_given + n_files;
        int nb = (int)((total + batch - 1) / batch);
        aqa_tensor **parts = calloc((size_t)(nb ? nb : 1), sizeof *parts);
        float *pix = malloc(sizeof(float) * (size_t)(batch * 3 * R * R));
        bool ok = parts && pix;
        aqa_scope_begin();
        for (int b = 0; b < nb && ok; b++) {
            int64_t s = b * batch, len = total - s < batch ? total - s : batch;
            aqa_tensor *x = NULL;
            if (s + len <= n_given) {
                x = aqa_narrow(given, 0, s, len);
            } else {
                /* this batch mixes the given tensor's tail and decoded files */
                for (int64_t k = 0; k < len && ok; k++) {
                    int64_t idx = s + k;
                    float *dst = pix + k * 3 * R * R;
                    if (idx < n_given) {
                        ok = aqa_copy_to_host(aqa_select(given, 0, idx), dst, AQA_F32) == AQA_OK;
                    } else {
                        aqa_image *im = aqa_image_load(files[idx - n_given]);
                        ok = im && aqa_clip_preprocess(im, (int)R, dst) == AQA_OK;
                        aqa_image_free(im);
                    }
                }
                if (ok) x = aqa_from_data(pix, AQA_SHAPE(len, 3, R, R), AQA_F32);
            }
            parts[b] = ok ? aqa_clip_encode_image(m, x, true) : NULL;
            ok = parts[b] != NULL;
            if (ok && nb > 1) fprintf(stderr, "clip_embed: images %lld/%lld\n", (long long)(s + len), (long long)total);
        }
        if (ok) image_embeds = aqa_keep(cat_rows(parts, nb, D));
        aqa_scope_end();
        free(parts);
        free(pix);
        if (!image_embeds) goto fail;
    }

    {
        const char *names[] = {"token_ids", "text_embeds", "image_embeds"};
        aqa_tensor *ts[] = {token_ids, text_embeds, image_embeds};
        if (aqa_save_tensors(out_path, 3, names, ts, 0, NULL, NULL) != AQA_OK) goto fail;
    }
    fprintf(stderr, "clip_embed: %zu texts, %lld images -> %s\n", n_texts, (long long)image_embeds->shape[0],
            out_path);
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "clip_embed: %s\n", aqa_last_error());
fail_quiet:
    rc = 1;
done:
    for (size_t i = 0; lines && i < n_texts; i++) free(lines[i]);
    free(lines);
    free(ids);
    free(files);
    aqa_tensor_free(token_ids);
    aqa_tensor_free(text_embeds);
    aqa_tensor_free(image_embeds);
    aqa_tensor_free(given);
    aqa_bpe_free(tok);
    aqa_clip_model_free(m);
    return rc;
}
