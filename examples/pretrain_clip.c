/* pretrain_clip.c: contrastive pre-training of a (tiny) CLIP on frame-text pairs, so that the
 * frozen VLP branch of the synthetic MVLA pipeline carries real prior knowledge.
 *
 *     examples/pretrain_clip --data DIR --out runs/clip [--steps 400 --batch 64 ...]
 *
 * Pairs: every frame of the training split's videos (T frames sampled evenly per video, the
 * loaders' rule) with the text of its stage ("inward take-off", "2.5 somersaults pike flight",
 * "entry into the water": datasets/fina.h), its FineDiving sub-action text, or both (--texts).
 * With --quality, each frame is also paired with its dive's quality text ("a video of a good
 * dive", the grade of its execution = mean of the middle judges on 0..10 in four equal bins;
 * training split only), a second InfoNCE term: a stand-in for the visual-quality vocabulary a
 * web-scale CLIP brings ("a big splash", "a clean entry").
 * Loss: CLIP's symmetric InfoNCE with the learnable logit scale (clamped to 100 as CLIP):
 * image -> text cross-entropy over the distinct texts of the batch, and text -> image
 * cross-entropy whose target spreads evenly over the batch's images of that text (several frames
 * share a text, so the text side has several positives).  AdamW with cosine decay.
 *
 * --vocab-from "jigsaws:DIR,mtl-aqa:DIR,fisv:DIR" adds the words of other datasets' texts to the
 * word vocabulary (their embeddings start untrained; train_mvla fine-tunes the text encoder), so
 * that one tiny CLIP serves the synthetic MTL-AQA, JIGSAWS and Fis-V sets too.
 *
 * Writes <out>/clip.safetensors (OpenAI names, aqa_clip_load reads it), <out>/vocab.txt (the word
 * tokenizer's vocabulary, or nothing with --bpe), <out>/config.txt, and prints the zero-shot
 * frame -> stage-text accuracy on the training and test splits. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "datasets/exemplar.h"
#include "datasets/fina.h"
#include "datasets/loader.h"
#include "datasets/video_dataset.h"
#include "examples/dist_run.h"
#include "examples/mvla_common.h"
#include "nn/loss.h"
#include "nn/optim.h"
#include "nn/sched.h"
#include "ops/ops.h"

/* --vocab-from: the stage and video texts of each "DATASET:DIR" in the comma-separated `list` into
 * the word vocabulary (Fis-V's features are looked for in DIR/features). */
static aqa_status add_vocab_from(word_tok *tok, const char *list) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *colon = strchr(item, ':'), feat[4200];
        aqa_vd_config vc;
        aqa_vd_config_init(&vc);
        if (!colon || parse_dataset((*colon = 0, item), &vc.dataset))
            return aqa_fail(AQA_EINVAL, "--vocab-from: \"%s\" is not DATASET:DIR (jigsaws, mtl-aqa, fisv)", item);
        vc.root = colon + 1;
        vc.check_files = false;
        vc.quiet = true;
        snprintf(feat, sizeof feat, "%s/features", vc.root);
        if (vc.dataset == AQA_ANN_FISV) vc.features_dir = feat;
        aqa_video_dataset *ds = aqa_video_dataset_open(&vc);
        if (!ds) return aqa_last_status();
        aqa_status st = wt_add_texts(tok, &ds->stage_texts);
        if (!st) st = wt_add_texts(tok, &ds->video_texts);
        aqa_video_dataset_free(ds);
        if (st) return st;
    }
    return AQA_OK;
}

typedef struct frame_set {
    float *pix;     /* [n, 3, R, R] */
    int64_t *text;  /* [n, k] text ids (k = 1 or 2 per frame) */
    int64_t *stage; /* [n] stage-text id (for the zero-shot accuracy) */
    int64_t *quality; /* [n] quality-text id of the frame's dive (with --quality), else NULL */
    size_t n;
} frame_set;

/* Symmetric InfoNCE of image features fi [B, D] against the distinct texts of ids[B] (token ids
 * of all texts in `tokens` [*, ctx]): image -> text CE over the batch's distinct texts, text ->
 * image CE with the target spread evenly over the images sharing the text.  Scope-owned 0-d. */
static aqa_tensor *info_nce(aqa_clip_model *m, aqa_tensor *fi, const int64_t *ids, int B, const int64_t *tokens,
                            int64_t ctx) {
    int64_t *uniq = malloc((size_t)B * sizeof *uniq), *tgt = malloc((size_t)B * sizeof *tgt);
    int64_t *uids = malloc((size_t)B * (size_t)ctx * sizeof *uids);
    float *soft = malloc((size_t)B * (size_t)B * sizeof *soft);
    aqa_tensor *loss = NULL;
    if (!uniq || !tgt || !uids || !soft) goto done;
    int U = 0;
    for (int i = 0; i < B; i++) {
        int u = 0;
        while (u < U && uniq[u] != ids[i]) u++;
        if (u == U) uniq[U++] = ids[i];
        tgt[i] = u;
    }
    for (int u = 0; u < U; u++) {
        memcpy(uids + (size_t)u * (size_t)ctx, tokens + (size_t)uniq[u] * (size_t)ctx, (size_t)ctx * sizeof *uids);
        int cnt = 0;
        for (int i = 0; i < B; i++) cnt += tgt[i] == u;
        for (int i = 0; i < B; i++) soft[u * B + i] = tgt[i] == u ? 1.0f / (float)cnt : 0.0f;
    }
    aqa_tensor *tid = aqa_from_data(uids, 2, (int64_t[]){U, ctx}, AQA_I64);
    aqa_tensor *ft = aqa_clip_encode_text(m, tid, false);
    aqa_tensor *logits = aqa_clip_logits(m, fi, ft); /* [B, U] */
    aqa_tensor *ti = aqa_from_data(tgt, 1, (int64_t[]){B}, AQA_I64);
    aqa_tensor *ts = aqa_from_data(soft, 2, (int64_t[]){U, B}, AQA_F32);
    aqa_tensor *li = aqa_cross_entropy(logits, ti, NULL);
    aqa_tensor *lt = aqa_cross_entropy(aqa_transpose(logits, 0, 1), ts, NULL);
    loss = aqa_mul_scalar(aqa_add(li, lt), 0.5);
done:
    free(uniq);
    free(tgt);
    free(uids);
    free(soft);
    return loss;
}

/* Decodes `frames` frames of every video of split into fs, with text ids into `texts`. */
static int load_frames(kv_config *c, const char *split, int R, int mode, aqa_text_set *texts, frame_set *fs,
                       aqa_video_dataset **keep, const double *qrange) {
    aqa_vd_config vc;
    aqa_vd_config_init(&vc);
    vc.root = kv_str(c, "data");
    parse_dataset(kv_str(c, "dataset"), &vc.dataset);
    vc.split = split;
    vc.num_frames = (int)kv_int(c, "frames");
    vc.num_clips = 1;
    vc.clip_len = vc.num_frames;
    vc.policy = kv_bool(c, "skip_bad") ? AQA_BAD_DATA_SKIP : AQA_BAD_DATA_FAIL;
    aqa_video_dataset *ds = aqa_video_dataset_open(&vc);
    if (!ds) {
        fprintf(stderr, "pretrain_clip: %s\n", aqa_last_error());
        return 1;
    }
    if (!strcmp(split, "train")) print_notes("pretrain_clip", ds);
    if (!ds->items[0].frame_stage) {
        fprintf(stderr, "pretrain_clip: %s has no frame labels (FineDiving layout needed)\n", vc.root);
        aqa_video_dataset_free(ds);
        return 1;
    }
    int64_t T = ds->T;
    size_t per = 3 * (size_t)R * (size_t)R;
    fs->n = ds->n_items * (size_t)T;
    fs->pix = malloc(fs->n * per * sizeof(float));
    fs->text = malloc(fs->n * 2 * sizeof(int64_t));
    fs->stage = malloc(fs->n * sizeof(int64_t));
    fs->quality = qrange ? malloc(fs->n * sizeof(int64_t)) : NULL;
    if (!fs->pix || !fs->text || !fs->stage || (qrange && !fs->quality)) {
        fprintf(stderr, "pretrain_clip: out of memory for %zu frames\n", fs->n);
        aqa_video_dataset_free(ds);
        return 1;
    }
    aqa_frame_transform tf = aqa_frame_transform_clip(R);
    aqa_progress pr;
    aqa_progress_start(&pr, split, ds->n_items, kv_bool(c, "progress"));
    for (size_t i = 0; i < ds->n_items; i++) {
        if (aqa_vd_decode(ds, i, &tf, false, 0, NULL, fs->pix + i * (size_t)T * per)) {
            fprintf(stderr, "pretrain_clip: %s\n", aqa_last_error());
            aqa_video_dataset_free(ds);
            return 1;
        }
        const aqa_vd_item *it = &ds->items[i];
        for (int64_t t = 0; t < T; t++) {
            size_t f = i * (size_t)T + (size_t)t;
            const char *stxt = aqa_text_set_get(&ds->stage_texts, (size_t)it->stage_text[it->frame_stage[t]]);
            const char *sub = aqa_finediving_subaction_text((int)it->labels[t]);
            size_t id_st = 0, id_sub = 0;
            if (aqa_text_set_add_unique(texts, stxt, &id_st) ||
                (sub && aqa_text_set_add_unique(texts, sub, &id_sub))) {
                fprintf(stderr, "pretrain_clip: %s\n", aqa_last_error());
                aqa_video_dataset_free(ds);
                return 1;
            }
            fs->stage[f] = (int64_t)id_st;
            if (qrange) {
                /* the dive's execution: the mean of its middle three judges (score / DD / 3) */
                const aqa_ann_sample *sm = aqa_vd_sample(ds, i);
                double ex = sm->difficulty > 0 ? sm->score / sm->difficulty / 3.0 : sm->score;
                aqa_quality_grade g;
                char qt[AQA_TEXT_MAX];
                size_t id_q = 0;
                if (aqa_quality_grade_of(ex, qrange[0], qrange[1], &g) || aqa_quality_text((int)g, "dive", qt, sizeof qt) ||
                    aqa_text_set_add_unique(texts, qt, &id_q)) {
                    fprintf(stderr, "pretrain_clip: %s\n", aqa_last_error());
                    aqa_video_dataset_free(ds);
                    return 1;
                }
                fs->quality[f] = (int64_t)id_q;
            }
            fs->text[2 * f] = mode == 1 && sub ? (int64_t)id_sub : (int64_t)id_st;
            fs->text[2 * f + 1] = mode == 2 && sub ? (int64_t)id_sub : fs->text[2 * f];
        }
        aqa_progress_update(&pr, i + 1, "frames decoded");
    }
    aqa_progress_finish(&pr, NULL);
    *keep = ds;
    return 0;
}

/* Zero-shot accuracy: each frame's most similar text among the stage texts equals its own. */
static double zero_shot(aqa_clip_model *m, word_tok *tok, const aqa_text_set *texts, const frame_set *fs, int R) {
    bool prev = aqa_set_grad_enabled(false);
    aqa_scope_begin();
    aqa_tensor *tf = aqa_clip_normalize(encode_texts(m, tok, texts, true));
    size_t per = 3 * (size_t)R * (size_t)R, right = 0;
    int64_t *stage_only = malloc(texts->n * sizeof *stage_only); /* which texts are stage texts */
    for (size_t k = 0; k < texts->n; k++) stage_only[k] = 0;
    for (size_t f = 0; f < fs->n; f++) stage_only[fs->stage[f]] = 1;
    for (size_t s = 0; s < fs->n; s += 256) {
        size_t n = fs->n - s < 256 ? fs->n - s : 256;
        aqa_scope_begin();
        aqa_tensor *x = aqa_from_data(fs->pix + s * per, 4, (int64_t[]){(int64_t)n, 3, R, R}, AQA_F32);
        aqa_tensor *sim = aqa_matmul(aqa_clip_normalize(aqa_clip_encode_image(m, x, true)), aqa_transpose(tf, 0, 1));
        const float *sv = sim ? aqa_data(aqa_contiguous(sim)) : NULL;
        for (size_t i = 0; sv && i < n; i++) {
            int64_t best = -1;
            for (size_t k = 0; k < texts->n; k++)
                if (stage_only[k] && (best < 0 || sv[i * texts->n + k] > sv[i * texts->n + (size_t)best])) best = (int64_t)k;
            right += best == fs->stage[s + i];
        }
        aqa_scope_end();
    }
    free(stage_only);
    aqa_scope_end();
    aqa_set_grad_enabled(prev);
    return fs->n ? (double)right / (double)fs->n : 0;
}

/* The image encoder on rows [row0, row0 + n) of the step's frames (dist_gather_begin). */
typedef struct encode_ctx {
    aqa_clip_model *m;
    aqa_tensor *x; /* [B, 3, R, R] */
} encode_ctx;

static aqa_tensor *encode_rows(void *user, int64_t row0, int64_t n) {
    encode_ctx *e = user;
    return aqa_clip_encode_image(e->m, aqa_narrow(e->x, 0, row0, n), false);
}

int main(int argc, char **argv) {
    kv_config c = {.program = "pretrain_clip"};
    kv_def(&c, "data", "", "dataset folder (FineDiving layout: the synthetic set or FineDiving)");
    kv_def_choice(&c, "dataset", "synthetic", "synthetic|finediving", "dataset (frame labels needed)");
    kv_def(&c, "out", "runs/clip", "output folder");
    kv_def_choice(&c, "texts", "stage", "stage|subaction|both", "frame texts");
    kv_def_bool(&c, "quality", "false", "also pair each frame with its dive's quality text (\"a video of a good dive\")");
    kv_def_int(&c, "frames", "16", 1, 100000, "frames sampled per video (evenly)");
    kv_def_int(&c, "steps", "400", 1, 1e9, "optimizer steps");
    kv_def_int(&c, "batch", "64", 2, 100000, "frames per step");
    kv_def_num(&c, "lr", "5e-4", 0, 10, "AdamW learning rate (cosine decay, 5% warm-up)");
    kv_def_num(&c, "weight_decay", "0.1", 0, 10, "AdamW weight decay");
    kv_def_int(&c, "seed", "0", 0, 1e18, "initialisation and batch sampling");
    kv_def_int(&c, "res", "32", 8, 4096, "image resolution (pixels)");
    kv_def_int(&c, "patch", "8", 1, 4096, "ViT patch size");
    kv_def_int(&c, "width", "64", 1, 65536, "image transformer width");
    kv_def_int(&c, "layers", "2", 1, 256, "image transformer blocks");
    kv_def_int(&c, "heads", "2", 1, 1024, "image transformer heads");
    kv_def_int(&c, "embed", "64", 1, 65536, "joint embedding size D");
    kv_def_int(&c, "text_width", "64", 1, 65536, "text transformer width");
    kv_def_int(&c, "text_layers", "2", 1, 256, "text transformer blocks");
    kv_def_int(&c, "text_heads", "2", 1, 1024, "text transformer heads");
    kv_def_int(&c, "context", "32", 2, 4096, "text context length");
    kv_def(&c, "bpe", "", "CLIP's bpe_simple_vocab_16e6.txt.gz: use CLIP's tokenizer instead of words");
    kv_def(&c, "vocab_from", "", "also the words of these datasets' texts: \"DATASET:DIR,...\" (jigsaws, mtl-aqa, fisv)");
    kv_def_bool(&c, "skip_bad", "false", "skip unreadable videos (warned, counted) instead of failing");
    kv_def_bool(&c, "progress", "true", "progress lines on stderr");
    dist_def_keys(&c);
    int pr = kv_parse_args(&c, argc, argv, "--data DIR [--out DIR] [settings]");
    if (pr) return kv_exit_code(pr);
    dist_run dr; /* ranks from the launcher (one when started alone); rank 0 writes the files */
    if (dist_open(&dr, &c, "pretrain_clip")) return 1;
    if (!kv_has(&c, "data")) {
        fprintf(stderr, "pretrain_clip: --data is required\n");
        return 1;
    }
    aqa_ann_dataset dk;
    if (parse_dataset(kv_str(&c, "dataset"), &dk) || dk != AQA_ANN_FINEDIVING) {
        fprintf(stderr, "pretrain_clip: --dataset must be synthetic or finediving (frame labels needed)\n");
        return 1;
    }
    int mode = !strcmp(kv_str(&c, "texts"), "subaction") ? 1 : !strcmp(kv_str(&c, "texts"), "both") ? 2 : 0;
    const char *out = kv_str(&c, "out");
    char path[1200];
    if (mkdir_p(out)) {
        fprintf(stderr, "pretrain_clip: cannot create %s\n", out);
        return 1;
    }
    const int R = (int)kv_int(&c, "res");
    aqa_manual_seed((uint64_t)kv_int(&c, "seed"));

    aqa_text_set texts;
    aqa_text_set_init(&texts);
    frame_set tr = {0}, te = {0};
    aqa_video_dataset *dtr = NULL, *dte = NULL;
    /* quality grades: equal bins over the execution range the judges' scale allows (0..10) */
    const double qrange[2] = {0.0, 10.0};
    const double *qr = kv_bool(&c, "quality") ? qrange : NULL;
    if (load_frames(&c, "train", R, mode, &texts, &tr, &dtr, qr)) return 1;
    if (load_frames(&c, "test", R, mode, &texts, &te, &dte, qr)) return 1;

    /* tokenizer: every text the MVLA pipeline will encode must be in the vocabulary */
    word_tok tok;
    memset(&tok, 0, sizeof tok);
    aqa_text_set_init(&tok.words);
    if (kv_has(&c, "bpe")) {
        if (aqa_bpe_load(kv_str(&c, "bpe"), &tok.bpe)) {
            fprintf(stderr, "pretrain_clip: %s\n", aqa_last_error());
            return 1;
        }
    } else {
        aqa_text_set subs;
        aqa_text_set_finediving_subactions(&subs);
        aqa_status st = wt_add_texts(&tok, &texts);
        if (!st) st = wt_add_texts(&tok, &subs);
        if (!st) st = wt_add_texts(&tok, &dtr->stage_texts);
        if (!st) st = wt_add_texts(&tok, &dtr->video_texts);
        /* the words of the graded forms (train_mvla --quality-text) */
        aqa_text_set_free(&subs);
        aqa_text_set_init(&subs);
        char gt[AQA_TEXT_MAX];
        for (int g = 0; !st && g < AQA_GRADE_COUNT; g++)
            if (aqa_quality_describe(g, "dive", gt, sizeof gt) || aqa_text_set_add(&subs, gt) ||
                aqa_quality_text(g, "dive", gt, sizeof gt) || aqa_text_set_add(&subs, gt))
                st = aqa_last_status();
        if (!st) st = wt_add_texts(&tok, &subs);
        aqa_text_set_free(&subs);
        if (!st) st = add_vocab_from(&tok, kv_str(&c, "vocab_from"));
        snprintf(path, sizeof path, "%s/vocab.txt", out);
        if (st || (dr.main && aqa_text_set_save(&tok.words, path))) {
            fprintf(stderr, "pretrain_clip: %s\n", aqa_last_error());
            return 1;
        }
    }

    aqa_clip_config cc = {
        .embed_dim = kv_int(&c, "embed"), .image_resolution = R, .vision_layers = kv_int(&c, "layers"),
        .vision_width = kv_int(&c, "width"), .vision_patch_size = kv_int(&c, "patch"),
        .vision_heads = kv_int(&c, "heads"), .context_length = kv_int(&c, "context"),
        .vocab_size = wt_vocab_size(&tok), .transformer_width = kv_int(&c, "text_width"),
        .transformer_heads = kv_int(&c, "text_heads"), .transformer_layers = kv_int(&c, "text_layers")};
    aqa_clip_model *m = aqa_clip_model_new(&cc);
    if (!m) {
        fprintf(stderr, "pretrain_clip: %s\n", aqa_last_error());
        return 1;
    }
    if (dr.main)
        fprintf(stderr, "pretrain_clip: %zu training frames, %zu test frames, %zu texts, vocabulary %lld, %lld parameters\n",
            tr.n, te.n, texts.n, (long long)cc.vocab_size, (long long)aqa_module_num_params(&m->base, true));
    /* token ids of every text, once */
    int64_t ctx = cc.context_length;
    int64_t *ids = calloc(texts.n * (size_t)ctx, sizeof *ids);
    if (!ids || wt_tokenize(&tok, (const char *const *)texts.texts, texts.n, ctx, false, ids)) {
        fprintf(stderr, "pretrain_clip: %s\n", aqa_last_error());
        return 1;
    }

    aqa_tensor **params = NULL;
    int np = aqa_module_parameters(&m->base, &params);
    aqa_adam_options ao = AQA_ADAMW_DEFAULTS;
    ao.lr = kv_double(&c, "lr");
    ao.weight_decay = kv_double(&c, "weight_decay");
    aqa_optimizer *opt = aqa_adamw_new(&ao);
    aqa_optim_add_params(opt, params, np);
    aqa_module *models[1] = {&m->base};
    int attached = dist_attach(&dr, models, 1, params, np, 0);
    free(params);
    if (attached) {
        fprintf(stderr, "pretrain_clip: %s\n", aqa_last_error());
        return 1;
    }
    const long steps = kv_int(&c, "steps");
    const int B = (int)kv_int(&c, "batch");
    const size_t per = 3 * (size_t)R * (size_t)R;
    float *img = malloc((size_t)B * per * sizeof *img);
    int64_t *sel_text = malloc((size_t)B * sizeof *sel_text), *sel_q = malloc((size_t)B * sizeof *sel_q);
    uint64_t rng = aqa_seed_mix((uint64_t)kv_int(&c, "seed"), 0xC11F);
    aqa_progress prog;
    aqa_progress_start(&prog, "pretrain_clip", (size_t)steps, kv_bool(&c, "progress"));
    double ema = 0, t0 = aqa_now();
    int rc = 0;
    for (long step = 0; step < steps; step++) {
        /* cosine decay with 5% linear warm-up */
        long warm = steps / 20 > 0 ? steps / 20 : 1;
        double lr = step < warm ? ao.lr * (double)(step + 1) / (double)warm
                                : ao.lr * 0.5 * (1 + cos(M_PI * (double)(step - warm) / (double)(steps - warm)));
        aqa_optim_set_lr(opt, lr);
        for (int i = 0; i < B; i++) {
            rng = aqa_seed_mix(rng, (uint64_t)step * 1000 + (uint64_t)i);
            size_t f = (size_t)(rng % tr.n);
            memcpy(img + (size_t)i * per, tr.pix + f * per, per * sizeof *img);
            sel_text[i] = tr.text[2 * f + (int)((rng >> 40) & 1)];
            if (tr.quality) sel_q[i] = tr.quality[f];
        }
        aqa_scope_begin();
        /* the features of all frames (each rank encodes its micro-batches), the loss over all */
        encode_ctx ec = {m, aqa_from_data(img, 4, (int64_t[]){B, 3, R, R}, AQA_F32)};
        dist_gathered g;
        aqa_tensor *fi = dist_gather_begin(&dr, B, encode_rows, &ec, &g);
        aqa_tensor *loss = info_nce(m, fi, sel_text, B, ids, ctx);
        if (tr.quality) loss = aqa_add(loss, info_nce(m, fi, sel_q, B, ids, ctx));
        double lv = loss ? aqa_item(loss) : NAN;
        if (!isfinite(lv)) {
            fprintf(stderr, "\npretrain_clip: step %ld: the contrastive loss is %g (%s); stopping\n", step, lv,
                    loss ? "not finite" : aqa_last_error());
            aqa_scope_end();
            rc = 1;
            break;
        }
        if (dist_gather_end(&dr, &g, loss) || aqa_optim_step(opt)) {
            fprintf(stderr, "\npretrain_clip: %s\n", aqa_last_error());
            aqa_scope_end();
            rc = 1;
            break;
        }
        aqa_scope_end();
        double ls = aqa_item(m->logit_scale); /* CLIP clamps the learned scale at 100 */
        if (ls > (float)log(100.0)) aqa_fill_(m->logit_scale, ls = (float)log(100.0));
        ema = step ? 0.95 * ema + 0.05 * lv : lv;
        char extra[128];
        snprintf(extra, sizeof extra, "loss %.4f lr %.2e scale %.1f", ema, lr, exp(ls));
        aqa_progress_update(&prog, (size_t)step + 1, extra);
    }
    if (!rc && dr.main) {
        char extra[128];
        snprintf(extra, sizeof extra, "loss %.4f", ema);
        aqa_progress_finish(&prog, extra);
        double acc_tr = zero_shot(m, &tok, &texts, &tr, R), acc_te = zero_shot(m, &tok, &texts, &te, R);
        printf("clip_train_seconds %.1f\n", aqa_now() - t0);
        printf("clip_zero_shot_stage_accuracy_train %.4f\n", acc_tr);
        printf("clip_zero_shot_stage_accuracy_test %.4f\n", acc_te);
        snprintf(path, sizeof path, "%s/clip.safetensors", out);
        if (aqa_clip_save(m, path)) {
            fprintf(stderr, "pretrain_clip: %s\n", aqa_last_error());
            rc = 1;
        } else {
            fprintf(stderr, "pretrain_clip: wrote %s\n", path);
        }
        snprintf(path, sizeof path, "%s/config.txt", out);
        if (!rc && kv_save(&c, path)) {
            fprintf(stderr, "pretrain_clip: %s\n", aqa_last_error());
            rc = 1;
        }
    }
    free(img);
    free(sel_text);
    free(sel_q);
    free(ids);
    aqa_optim_free(opt);
    aqa_clip_model_free(m);
    wt_free(&tok);
    aqa_text_set_free(&texts);
    free(tr.pix), free(tr.text), free(tr.stage), free(tr.quality);
    free(te.pix), free(te.text), free(te.stage), free(te.quality);
    aqa_video_dataset_free(dtr);
    aqa_video_dataset_free(dte);
    dist_close(&dr);
    return rc;
}
