/* clip_embed.c: CLIP text and image embeddings to a safetensors file.
 *
 *   examples/clip_embed --weights FILE.safetensors (--bpe FILE | --vocab FILE) [--texts FILE]
 *                       [--images FILE.safetensors] [--image-files A.png B.jpg ...]
 *                       --out FILE.safetensors [--batch N]
 *
 * --weights: CLIP weights with OpenAI or Hugging Face names (models/clip/clip.h).
 * --bpe:     OpenAI's bpe_simple_vocab_16e6.txt.gz (models/clip/data/), for real CLIP weights;
 * --vocab:   the word vocabulary of a tiny CLIP trained by pretrain_clip (its vocab.txt).
 * --texts:   one text per line (UTF-8), tokenized as clip.tokenize with the model's context
 *            length; a text too long for the context is truncated (EOT kept last) with a warning.
 * --images:  a safetensors file holding `images` [N, 3, R, R], already preprocessed.
 * --image-files: PNG/JPEG files, preprocessed as CLIP's preprocess (image/resize.h); they
 *            come after the --images tensor in image_embeds.
 * Writes token_ids (I64 [n, context]), text_embeds (F32 [n, D]) and image_embeds (F32 [m, D]),
 * unnormalised, exactly what encode_text / encode_image return (empty tensors when there are no
 * texts or images).  Work runs in batches of --batch (default 32), with progress on stderr when
 * there is more than one batch.  Errors go to stderr and the exit status is non-zero. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "image/resize.h"
#include "examples/cli.h"
#include "examples/clip_tok.h"
#include "models/clip/clip.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"

/* Reads the lines of a file (without their '\n'); a last line without '\n' counts, an empty
 * file has no lines.  NULL with the file and the reason in aqa_last_error(). */
static char **read_lines(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    *n = 0;
    if (!f) return aqa_fail_null("%s: cannot open: %s", path, strerror(errno));
    char **lines = calloc(1, sizeof *lines), *line = NULL;
    size_t cap = 1, lcap = 0;
    ssize_t len;
    bool ok = lines != NULL;
    while (ok && (len = getline(&line, &lcap, f)) >= 0) {
        if (memchr(line, 0, (size_t)len)) {
            aqa_fail(AQA_EFORMAT, "%s: line %zu holds a NUL byte", path, *n + 1);
            ok = false;
            break;
        }
        if (len > 0 && line[len - 1] == '\n') line[len - 1] = '\0';
        if (*n == cap) {
            char **g = realloc(lines, 2 * cap * sizeof *lines);
            if (!g) break;
            lines = g;
            cap *= 2;
        }
        if (!(lines[*n] = strdup(line))) break;
        ++*n;
    }
    if (ok && (ferror(f) || !feof(f))) {
        aqa_fail(AQA_EIO, "%s: read error or out of memory", path);
        ok = false;
    }
    free(line);
    fclose(f);
    if (!ok) {
        for (size_t i = 0; lines && i < *n; i++) free(lines[i]);
        free(lines);
        *n = 0;
        return NULL;
    }
    return lines;
}

/* Concatenates n row blocks [rows_i, D] into one caller-owned tensor [sum rows_i, D]. */
static aqa_tensor *cat_rows(aqa_tensor **parts, int n, int64_t D) {
    if (n == 0) return aqa_zeros(AQA_SHAPE(0, D), AQA_F32);
    return aqa_cat(parts, n, 0);
}

int main(int argc, char **argv) {
    kv_config c = {.program = "clip_embed", .about = "CLIP text and image embeddings to a safetensors file."};
    kv_def(&c, "weights", "", "CLIP weights (safetensors, OpenAI or Hugging Face names)");
    kv_def(&c, "bpe", "", "CLIP's bpe_simple_vocab_16e6.txt.gz (real CLIP weights)");
    kv_def(&c, "vocab", "", "word vocabulary of a CLIP trained by pretrain_clip (its vocab.txt)");
    kv_def(&c, "texts", "", "one text per line (UTF-8)");
    kv_def(&c, "images", "", "safetensors file holding `images` [N, 3, R, R], already preprocessed");
    kv_def_list(&c, "image_files", "PNG/JPEG files, preprocessed as CLIP does");
    kv_def(&c, "out", "", "output safetensors file");
    kv_def_int(&c, "batch", "32", 1, 100000, "texts or images per forward");
    int pr = kv_parse_args(&c, argc, argv,
                           "--weights FILE.safetensors (--bpe FILE | --vocab FILE) [--texts FILE] [--images FILE.safetensors]\n"
                           "                  [--image-files A.png B.jpg ...] --out FILE.safetensors [--batch N]");
    if (pr) {
        kv_free(&c);
        return kv_exit_code(pr);
    }
    if (!kv_has(&c, "weights") || !kv_has(&c, "out")) {
        fprintf(stderr, "clip_embed: --weights and --out are required (--help)\n");
        kv_free(&c);
        return 2;
    }
    const char *weights = kv_str(&c, "weights"), *out_path = kv_str(&c, "out");
    const char *texts_path = kv_has(&c, "texts") ? kv_str(&c, "texts") : NULL;
    const char *images_path = kv_has(&c, "images") ? kv_str(&c, "images") : NULL;
    int n_files;
    char **files = kv_list(&c, "image_files", &n_files);
    const long batch = kv_int(&c, "batch");
    word_tok tok;
    int rc = 1;
    aqa_clip_model *m = NULL;
    char **lines = NULL;
    size_t n_texts = 0;
    int64_t *ids = NULL;
    aqa_tensor *token_ids = NULL, *text_embeds = NULL, *image_embeds = NULL, *given = NULL;
    memset(&tok, 0, sizeof tok);
    if (aqa_clip_load(weights, &m) != AQA_OK || wt_load(&tok, kv_str(&c, "vocab"), kv_str(&c, "bpe"), NULL) != AQA_OK)
        goto fail;
    const int64_t C = m->cfg.context_length, D = m->cfg.embed_dim, R = m->cfg.image_resolution;

    /* ---- texts ---- */
    if (texts_path) {
        if (!(lines = read_lines(texts_path, &n_texts))) goto fail;
    }
    ids = malloc(sizeof *ids * (n_texts ? n_texts : 1) * (size_t)C);
    if (!ids) goto fail;
    for (size_t i = 0; i < n_texts; i++) {
        const char *one[1] = {lines[i]};
        if (wt_tokenize(&tok, one, 1, C, false, ids + i * (size_t)C) != AQA_OK) {
            if (wt_tokenize(&tok, one, 1, C, true, ids + i * (size_t)C) != AQA_OK) goto fail;
            fprintf(stderr, "clip_embed: warning: text %zu is longer than the context (%lld); truncated\n", i + 1,
                    (long long)C);
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
        if (given->ndim != 4 || given->shape[1] != 3 || given->shape[2] != R || given->shape[3] != R) {
            aqa_fail(AQA_EINVAL, "%s: images must be [N, 3, %lld, %lld] (the model's resolution)", images_path,
                     (long long)R, (long long)R);
            goto fail;
        }
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
    rc = 1;
done:
    for (size_t i = 0; lines && i < n_texts; i++) free(lines[i]);
    free(lines);
    free(ids);
    kv_free(&c);
    aqa_tensor_free(token_ids);
    aqa_tensor_free(text_embeds);
    aqa_tensor_free(image_embeds);
    aqa_tensor_free(given);
    wt_free(&tok);
    aqa_clip_model_free(m);
    return rc;
}
