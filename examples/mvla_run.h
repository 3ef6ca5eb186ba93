/* mvla_run.h: what train_mvla and evaluate --checkpoint share: the settings of a run, opening its
 * datasets and text tables, building the model (MVLA or the plain CBP branch, plus a head) from
 * the settings, one forward on a batch, and the evaluation pass with its metrics.
 *
 * Header-only (static functions) on top of examples/mvla_common.h.
 *
 * A model is one module tree: root "" with children "mvla" (models/mvla/mvla.h; with --no-mvla its
 * plain configuration: CBP branch + segmentation only) and "head" (models/heads/head.h).  In frame
 * mode (no --features) the frozen CLIP image encoder runs on each batch and I3D (weights or a random
 * network) is fine-tuned; its weights are saved beside the checkpoint (<ckpt>.i3d.safetensors).
 *
 * Texts.  The dataset's stage and video texts (ds->stage_texts / video_texts, the one source of a
 * run's texts) become MVLA's text tables through the CLIP text encoder (run_text_tables), which is
 * fine-tuned by default as in the paper (lr_backbone, re-encoded at every step, its text side saved
 * beside the checkpoint: <ckpt>.clip_text.safetensors); --freeze-clip-text is Table 5's "Freeze
 * CLIP-Text" (encoded once).  In feature mode the CLIP weights and tokenizer are --clip and --vocab
 * / --bpe or, when not given, those extract_features recorded in <features>/texts.safetensors; a
 * frozen run without them reads the tables cached there. */
#ifndef AQA_EXAMPLES_MVLA_RUN_H
#define AQA_EXAMPLES_MVLA_RUN_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "autograd/autograd.h"
#include "datasets/exemplar.h"
#include "datasets/loader.h"
#include "eval/metrics.h"
#include "datasets/video_dataset.h"
#include "examples/dist_run.h"
#include "examples/mvla_common.h"
#include "examples/run_store.h"
#include "models/heads/head.h"
#include "models/i3d/i3d.h"
#include "models/mvla/mvla.h"
#include "models/mvla/text_tables.h"
#include "nn/batchnorm.h"
#include "io/safetensors.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"

/* The dataset names the programs accept (mvla_common.h: parse_dataset). */
#define RUN_DATASETS "synthetic|finediving|mtl-aqa|mtl_aqa|mtlaqa|jigsaws|fisv|fis-v"

/* The settings of a run (train_mvla's; evaluate reads them back from the checkpoint). */
MC_UNUSED static void run_def_keys(kv_config *c) {
    const double seeds = 1e18; /* seeds are 64-bit; any up to 10^18 */
    kv_def(c, "data", "", "dataset folder");
    kv_def_choice(c, "dataset", "synthetic", RUN_DATASETS, "dataset (annotation layout)");
    kv_def(c, "features", "", "feature cache folder (extract_features; Fis-V: the .npy folder): I3D frozen; \"\" = "
                              "frame mode: I3D fine-tuned in the training graph");
    kv_def(c, "clip_features", "", "Fis-V with MVLA: folder of <id>.npy per-clip CLIP image features");
    kv_def(c, "texts", "", "text embeddings (default <features>/texts.safetensors)");
    kv_def(c, "train_split", "train", "training split (JIGSAWS: e.g. Suturing/0/train)");
    kv_def(c, "test_split", "test", "evaluation split");
    kv_def_int(c, "frames", "0", 0, 100000, "T frames per video (0 = the dataset's)");
    kv_def_int(c, "clips", "0", 0, AQA_VD_MAX_CLIPS, "N clips per video (0 = the dataset's)");
    kv_def_int(c, "clip_stride", "0", 0, 100000, "clip start stride (0 = the dataset's)");
    kv_def_choice(c, "head", "tsa", "tsa|core|usdl|musdl|mlp|tpt|hgcn|gdlt|mslstm|mixer", "assessment head");
    kv_def_bool(c, "mvla", "true", "MVLA on (false / --no-mvla: the plain head \"X\")");
    kv_def(c, "setting", "w/DN", "exemplars and targets: w/DN | w/DD | w/o");
    kv_def_int(c, "dim", "0", 0, 65536, "D, MVLA's common width (0 = the CLIP feature width)");
    kv_def_int(c, "temporal_layers", "2", 1, 64, "VLP temporal transformer depth");
    kv_def_int(c, "temporal_heads", "8", 1, 1024, "its heads");
    kv_def_int(c, "temporal_ffn", "0", 0, 1e6, "its MLP width (0 = 4 x CLIP width)");
    kv_def_num(c, "dropout", "0.1", 0, 0.99, "its dropout");
    kv_def_bool(c, "sca", "true", "semantic-aware collaborative attention");
    kv_def_choice(c, "fuse", "i3d", "i3d|add", "Z without SCA (--no-sca): i3d = the CBP features alone, add = F_i3d + "
                                               "F_vis (Table 5's \"I3D + CLIP-Image\")");
    kv_def_bool(c, "freeze_clip_text", "false", "freeze the CLIP text encoder (Table 5's \"Freeze CLIP-Text\"); default: "
                                                "fine-tuned at lr_backbone, the texts re-encoded at every step");
    kv_def(c, "prompt_template", AQA_DIVING_TEMPLATE, "prompt of the diving stage texts (\"none\": the bare texts)");
    kv_def(c, "fum_boundaries", "", "FUM: first clip of stages 2 and 3, e.g. 3,8 (\"\" = the dataset's: diving "
                                    "30/50/20% of the clips, else thirds)");
    kv_def_choice(c, "vlkl_reduction", "mean", "mean|sum",
                  "VLKL CE over rows: mean = each term averaged, sum = eq. 5, summed per video");
    kv_def_bool(c, "vlkl_frame", "true", "frame-level VLKL (FAM)");
    kv_def_bool(c, "vlkl_stage", "true", "stage-level VLKL");
    kv_def_bool(c, "vlkl_video", "true", "video-level VLKL");
    kv_def_bool(c, "vlkl_kl", "true", "clip-level KL (FUM)");
    kv_def_num(c, "tau", "0.07", 1e-4, 100, "initial VLKL temperature (learnable)");
    kv_def_bool(c, "oracle", "false", "split stages by the ground-truth boundaries at test too");
    kv_def_num(c, "teacher_forcing", "0.25", 0, 1, "share of training with ground-truth stage splits (TSA)");
    kv_def_int(c, "tsa_heads", "8", 1, 1024, "TSA decoder heads");
    kv_def_int(c, "tsa_layers", "3", 1, 64, "TSA decoder blocks");
    kv_def_int(c, "tsa_tokens", "5", 1, 1024, "TSA tokens per stage");
    kv_def_int(c, "tsa_reg_hidden1", "256", 1, 1e6, "TSA regressor hidden width 1");
    kv_def_int(c, "tsa_reg_hidden2", "64", 1, 1e6, "TSA regressor hidden width 2");
    kv_def_num(c, "usdl_sigma", "5", 1e-3, 1e6, "USDL Gaussian sigma (bins)");
    kv_def_int(c, "tpt_queries", "7", 1, 1024, "TPT part queries");
    kv_def_int(c, "tpt_dim", "512", 1, 65536, "TPT decoder width");
    kv_def_int(c, "hgcn_groups", "8", 1, 1024, "HGCN groups of its 1x1 convolutions");
    kv_def_int(c, "gdlt_dim", "256", 1, 65536, "GDLT transformer width");
    kv_def_int(c, "gdlt_queries", "4", 1, 1024, "GDLT grade queries");
    kv_def_int(c, "mslstm_hidden", "256", 1, 65536, "MS-LSTM hidden size");
    kv_def_int(c, "mixer_dim", "512", 1, 65536, "MLP-Mixer token width");
    kv_def_int(c, "mixer_tokens", "1", 1, 1024, "MLP-Mixer clips per recurrent step");
    kv_def_int(c, "eval_exemplars", "10", 1, 1000, "exemplars averaged at test (contrastive heads)");
    kv_def_int(c, "batch", "8", 1, 100000, "videos per step");
    kv_def_int(c, "workers", "2", 0, 256, "data-loading threads");
    kv_def(c, "device", "cpu", "cpu | cuda | cuda:N");
    kv_def(c, "clip", "", "CLIP weights: the text encoder (and in frame mode the frozen image encoder); \"\" = "
                          "the one recorded in <features>/texts.safetensors");
    kv_def(c, "vocab", "", "word vocabulary of a pretrain_clip model (the CLIP's tokenizer)");
    kv_def(c, "bpe", "", "CLIP's BPE vocabulary file (real CLIP weights)");
    kv_def(c, "i3d", "", "frame mode: I3D weights (pytorch-i3d names; pretrain_i3d's carry their width)");
    kv_def_num(c, "i3d_width", "1", 1e-3, 1, "frame mode without --i3d: random I3D at this width multiplier");
    kv_def_int(c, "i3d_short", "128", 16, 4096, "frame mode: I3D input shorter side");
    kv_def_int(c, "i3d_size", "112", 16, 4096, "frame mode: I3D input crop");
    kv_def_bool(c, "skip_bad", "false", "skip unreadable videos (warned, counted) instead of failing");
    kv_def_int(c, "seed", "0", 0, seeds, "initialisation, shuffling, exemplars, augmentation");
    dist_def_keys(c);
}

/* Sets the momentum of every BatchNorm of a tree; returns the last value it replaced. */
static double set_bn_momentum(aqa_module *m, double v) {
    double old = NAN;
    if (m->type && strstr(m->type, "BatchNorm")) {
        old = ((aqa_batch_norm_layer *)m)->momentum;
        ((aqa_batch_norm_layer *)m)->momentum = v;
    }
    for (int i = 0; i < m->n_children; i++) {
        double o = set_bn_momentum(m->children[i], v);
        if (!isnan(o)) old = o;
    }
    return old;
}

/* BatchNorm recalibration of a randomly initialised I3D: its running statistics (mean 0, var 1 at
 * initialisation) do not match its activations, which then shrink layer after layer to ~1e-6 and
 * make the features useless (and the segmentation module's own BatchNorm unstable between train
 * and eval).  The statistics are re-estimated as the cumulative average over the clips of the
 * first n_videos videos of ds (train-mode forwards without gradients), then frozen.  Not needed
 * (and not done) with pretrained weights. */
MC_UNUSED static int calibrate_i3d_bn(aqa_i3d *m, aqa_video_dataset *ds, const aqa_frame_transform *tf, int n_videos) {
    double momentum = 0.01;
    aqa_loader_config lc;
    aqa_loader_config_init(&lc);
    lc.i3d_clips = true;
    lc.i3d_tf = *tf;
    bool prev_grad = aqa_set_grad_enabled(false);
    bool prev_freeze = m->freeze_bn_stats;
    m->freeze_bn_stats = false;
    aqa_module_train(&m->base, true);
    int rc = 0;
    size_t n = (size_t)n_videos < ds->n_items ? (size_t)n_videos : ds->n_items, done = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        aqa_batch *b = NULL;
        if (aqa_batch_build(ds, &lc, &i, 1, 0, &b)) {
            rc = 1;
            break;
        }
        if (b->B) {
            /* momentum 1 / (k + 1) at the k-th batch: the running statistics are the average */
            double old = set_bn_momentum(&m->base, 1.0 / (double)(++done));
            if (done == 1 && !isnan(old)) momentum = old;
            aqa_scope_begin();
            rc = aqa_i3d_forward(m, aqa_select(b->i3d_clips, 0, 0)) == NULL;
            aqa_scope_end();
        }
        aqa_batch_free(b);
    }
    set_bn_momentum(&m->base, momentum);
    aqa_module_train(&m->base, false);
    m->freeze_bn_stats = prev_freeze;
    aqa_set_grad_enabled(prev_grad);
    return rc;
}

typedef struct run_ctx {
    kv_config *c;
    aqa_video_dataset *train, *test; /* test may be NULL */
    aqa_module *root;                /* "" with children mvla and head */
    aqa_mvla *mvla;
    aqa_head *head;
    aqa_mvla_config mcfg;
    aqa_head_config hcfg;
    aqa_tensor *stage_text, *video_text; /* frozen text tables read from the feature cache, or NULL */
    aqa_mvla_text_tables *texts;     /* text tables from the CLIP text encoder, or NULL */
    aqa_exemplar_mode mode;
    bool contrastive;
    bool use_dd;
    bool frames;                     /* frame mode */
    aqa_clip_model *clip;            /* frame mode */
    aqa_i3d *i3d;                    /* frame mode */
    aqa_device dev;
    dist_run *dist;                  /* several ranks: evaluation split among them, or NULL */
} run_ctx;

MC_UNUSED static void run_free(run_ctx *r) {
    aqa_tensor_free(r->stage_text);
    aqa_tensor_free(r->video_text);
    aqa_mvla_text_tables_free(r->texts);
    aqa_module_free(r->root);
    aqa_clip_model_free(r->clip);
    if (r->i3d) aqa_i3d_free(r->i3d);
    aqa_video_dataset_free(r->train);
    aqa_video_dataset_free(r->test);
    memset(r, 0, sizeof *r);
}

/* The stage-text prompt of the settings for dataset dk into vc (the diving sets only: the grade
 * texts of JIGSAWS and Fis-V are sentences already).  Returns 0, or 1 when a template was given
 * for a dataset it does not apply to. */
MC_UNUSED static int run_stage_template(kv_config *c, aqa_ann_dataset dk, aqa_vd_config *vc) {
    const char *t = kv_str(c, "prompt_template");
    if (dk != AQA_ANN_FINEDIVING && dk != AQA_ANN_MTL_AQA) {
        kv_entry *e = kv_find(c, "prompt_template");
        if (e && e->set && strcmp(t, AQA_DIVING_TEMPLATE)) {
            aqa_fail(AQA_EINVAL, "--prompt-template applies to the diving datasets' stage texts, not to %s",
                     kv_str(c, "dataset"));
            return 1;
        }
        return 0;
    }
    vc->stage_template = !strcmp(t, "none") ? "" : t;
    return 0;
}

/* In feature mode without --clip: the CLIP weights and tokenizer extract_features recorded in
 * <features>/texts.safetensors become the run's settings (so evaluate finds them in the
 * checkpoint).  A cache without that file, or without the record, leaves the settings alone. */
MC_UNUSED static void run_resolve_clip(kv_config *c) {
    if (kv_has(c, "clip") || !kv_has(c, "features")) return;
    char tp[1200];
    snprintf(tp, sizeof tp, "%s/texts.safetensors", kv_str(c, "features"));
    aqa_st_file *f = NULL;
    if (aqa_st_open(tp, &f) != AQA_OK) {
        aqa_clear_error();
        return;
    }
    const char *keys[3] = {"clip", "vocab", "bpe"};
    for (int k = 0; k < 3; k++) {
        const char *v = aqa_st_metadata(f, keys[k]);
        if (v && v[0] && !kv_has(c, keys[k])) kv_set(c, keys[k], v, tp);
    }
    aqa_st_close(f);
}

/* The dataset's stage and video texts as MVLA text tables of the CLIP text encoder, tokenised
 * with the run's tokenizer (--vocab or --bpe): fine-tuned or frozen (models/mvla/text_tables.h). */
MC_UNUSED static aqa_mvla_text_tables *run_text_tables(aqa_clip_model *clip, kv_config *c, const aqa_video_dataset *ds,
                                                       bool finetune) {
    word_tok tok;
    if (wt_load(&tok, kv_str(c, "vocab"), kv_str(c, "bpe"), NULL)) {
        wt_free(&tok);
        return NULL;
    }
    aqa_tensor *st = tokenize_texts(clip, &tok, &ds->stage_texts);
    aqa_tensor *vt = st ? tokenize_texts(clip, &tok, &ds->video_texts) : NULL;
    wt_free(&tok);
    aqa_mvla_text_tables *t = vt ? aqa_mvla_text_tables_new(clip, st, vt, finetune) : NULL;
    aqa_tensor_free(st);
    aqa_tensor_free(vt);
    return t;
}

static aqa_status save_i3d_side(void *obj, const char *path, int n, const char *const *k, const char *const *v) {
    return aqa_module_save(&((aqa_i3d *)obj)->base, path, n, k, v);
}

static aqa_status save_text_side(void *obj, const char *path, int n, const char *const *k, const char *const *v) {
    return aqa_mvla_text_tables_save(obj, path, n, k, v);
}

/* The weights trained beside the model, written next to each checkpoint by the run store: I3D in
 * frame mode (<ckpt>.i3d.safetensors) and the fine-tuned CLIP text side
 * (<ckpt>.clip_text.safetensors); an entry whose part is not trained has obj NULL.  Returns 2. */
MC_UNUSED static int run_sides(run_ctx *r, run_side sides[2]) {
    sides[0] = (run_side){".i3d.safetensors", save_i3d_side, r->i3d};
    sides[1] = (run_side){".clip_text.safetensors", save_text_side, r->texts && r->texts->finetune ? r->texts : NULL};
    return 2;
}

/* The weights trained beside the model, read from next to a checkpoint: I3D in frame mode
 * (<ckpt>.i3d.safetensors) and the fine-tuned CLIP text side (<ckpt>.clip_text.safetensors). */
MC_UNUSED static int run_load_sidecars(run_ctx *r, const char *ckpt) {
    char path[1400];
    snprintf(path, sizeof path, "%.1300s.i3d.safetensors", ckpt);
    if (r->i3d && aqa_module_load(&r->i3d->base, path, true, NULL, NULL, NULL)) return 1;
    snprintf(path, sizeof path, "%.1300s.clip_text.safetensors", ckpt);
    if (r->texts && r->texts->finetune && aqa_mvla_text_tables_load(r->texts, path)) return 1;
    return 0;
}

/* The MVLA settings given as words: fuse, vlkl_reduction and (FUM) fum_boundaries, the dataset's
 * sport-specific split unless given.  Returns 0, or 1 naming the setting. */
static int run_parse_mvla(kv_config *c, const aqa_video_dataset *ds, aqa_mvla_config *m) {
    /* the words were checked by the settings parser */
    m->fuse = !strcasecmp(kv_str(c, "fuse"), "add") ? AQA_MVLA_FUSE_ADD : AQA_MVLA_FUSE_I3D;
    m->vlkl_reduction = !strcasecmp(kv_str(c, "vlkl_reduction"), "sum") ? AQA_MVLA_VLKL_SUM : AQA_MVLA_VLKL_MEAN;
    memset(m->fum_boundaries, 0, sizeof m->fum_boundaries);
    if (!kv_has(c, "fum_boundaries")) {
        if (m->scheme == AQA_MVLA_FUM)
            for (int64_t l = 0; l < m->num_boundaries && l < AQA_VD_MAX_BOUNDARIES; l++) m->fum_boundaries[l] = ds->fum_boundaries[l];
        return 0;
    }
    if (m->scheme != AQA_MVLA_FUM) {
        aqa_fail(AQA_EINVAL, "--fum-boundaries: this dataset has frame labels (FAM); fixed boundaries are for FUM datasets");
        return 1;
    }
    const char *p = kv_str(c, "fum_boundaries");
    for (int64_t l = 0; l < m->num_boundaries; l++) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || (l + 1 < m->num_boundaries ? *end != ',' : *end != 0)) {
            aqa_fail(AQA_EINVAL, "--fum-boundaries \"%s\": expected %lld comma-separated clip indices", kv_str(c, "fum_boundaries"),
                     (long long)m->num_boundaries);
            return 1;
        }
        m->fum_boundaries[l] = v;
        p = end + 1;
    }
    return 0;
}

static aqa_video_dataset *run_open_split(kv_config *c, const char *split) {
    aqa_vd_config vc;
    aqa_vd_config_init(&vc);
    vc.root = kv_str(c, "data");
    parse_dataset(kv_str(c, "dataset"), &vc.dataset);
    vc.split = split;
    vc.features_dir = kv_has(c, "features") ? kv_str(c, "features") : NULL;
    vc.num_frames = (int)kv_int(c, "frames");
    vc.num_clips = (int)kv_int(c, "clips");
    vc.clip_stride = (int)kv_int(c, "clip_stride");
    vc.clip_features_dir = kv_has(c, "clip_features") ? kv_str(c, "clip_features") : NULL;
    vc.policy = kv_bool(c, "skip_bad") ? AQA_BAD_DATA_SKIP : AQA_BAD_DATA_FAIL;
    if (run_stage_template(c, vc.dataset, &vc)) return NULL;
    if (vc.dataset == AQA_ANN_MTL_AQA && !strcmp(split, kv_str(c, "train_split"))) {
        vc.shift_min = -3; /* CoRe's temporal augmentation */
        vc.shift_max = 0;
    }
    return aqa_video_dataset_open(&vc);
}

static aqa_tensor *to_dev(run_ctx *r, aqa_tensor *t) {
    if (!t || r->dev.kind == AQA_CPU) return t;
    return aqa_to_device(t, r->dev);
}

/* Checks that a text list file equals the dataset's set. */
static int check_texts(const char *path, const aqa_text_set *want) {
    aqa_text_set got;
    if (aqa_text_set_load(path, 0, &got)) return 1;
    int bad = got.n != want->n;
    for (size_t i = 0; !bad && i < got.n; i++) bad = strcmp(got.texts[i], want->texts[i]) != 0;
    aqa_text_set_free(&got);
    if (bad) aqa_fail(AQA_EFORMAT, "%s does not list the dataset's texts in the same order (extract again)", path);
    return bad;
}

/* Opens datasets, texts and builds the model.  Returns 0 or 1 (message in aqa_last_error()). */
MC_UNUSED static int run_open(run_ctx *r, kv_config *c, bool need_test) {
    memset(r, 0, sizeof *r);
    r->c = c;
    aqa_ann_dataset dk;
    if (parse_dataset(kv_str(c, "dataset"), &dk)) {
        aqa_fail(AQA_EINVAL, "unknown dataset \"%s\"", kv_str(c, "dataset"));
        return 1;
    }
    const char *dv = kv_str(c, "device");
    char *end = NULL;
    long ord = !strncmp(dv, "cuda:", 5) ? strtol(dv + 5, &end, 10) : 0;
    r->dev = AQA_DEVICE_CPU;
    if (!strcmp(dv, "cuda") || (end && end > dv + 5 && !*end && ord >= 0 && ord < 64)) r->dev = aqa_cuda_device((int)ord);
    else if (strcmp(dv, "cpu")) {
        aqa_fail(AQA_EINVAL, "--device must be cpu, cuda or cuda:N (N = 0..63), not \"%s\"", dv);
        return 1;
    }
    if (aqa_exemplar_mode_parse(kv_str(c, "setting"), &r->mode)) return 1;
    r->use_dd = r->mode == AQA_EXEMPLAR_DIFFICULTY;
    r->frames = !kv_has(c, "features");
    if (r->frames && dk == AQA_ANN_FISV) {
        aqa_fail(AQA_EINVAL, "Fis-V trains from its .npy features: give --features");
        return 1;
    }
    if (!(r->train = run_open_split(c, kv_str(c, "train_split")))) return 1;
    print_notes(c->program, r->train);
    if (need_test && kv_has(c, "test_split") && !(r->test = run_open_split(c, kv_str(c, "test_split")))) return 1;
    aqa_video_dataset *ds = r->train;
    bool use_vlp = kv_bool(c, "mvla");

    /* CLIP (text tables; frame mode: the image encoder too), I3D (frame mode) and feature widths */
    int64_t clip_dim = ds->feat_clip_dim, i3d_dim = ds->feat_i3d_dim;
    bool finetune = use_vlp && !kv_bool(c, "freeze_clip_text");
    if (use_vlp && !r->frames && !clip_dim) {
        aqa_fail(AQA_EINVAL, "MVLA needs CLIP frame features (%s; or use --no-mvla)",
                 dk == AQA_ANN_FISV ? "Fis-V: --clip-features, a folder of per-clip CLIP .npy files" : "the cache has none");
        return 1;
    }
    if (use_vlp && !kv_has(c, "clip") && (r->frames || finetune)) {
        aqa_fail(AQA_EINVAL, "%s", r->frames ? "frame mode with MVLA needs --clip (or give --features)"
                                             : "fine-tuning the CLIP text encoder (the default; Table 5's \"Freeze CLIP-Text\" is "
                                               "--freeze-clip-text) needs its weights: --clip with --vocab or --bpe");
        return 1;
    }
    if (kv_has(c, "clip")) {
        if (aqa_clip_load(kv_str(c, "clip"), &r->clip)) return 1;
        aqa_module_train(&r->clip->base, false);
        aqa_module_requires_grad(&r->clip->base, false);
        if (use_vlp && !(r->texts = run_text_tables(r->clip, c, ds, finetune))) return 1;
        if (r->frames) clip_dim = r->clip->cfg.embed_dim;
        if (aqa_module_to(&r->clip->base, r->dev)) return 1;
    } else if (use_vlp) { /* frozen: the tables extract_features cached */
        char tp[1200];
        if (kv_has(c, "texts")) snprintf(tp, sizeof tp, "%s", kv_str(c, "texts"));
        else snprintf(tp, sizeof tp, "%s/texts.safetensors", kv_str(c, "features"));
        aqa_tensor *st = aqa_load_tensor(tp, "stage_text", AQA_F32);
        aqa_tensor *vt = st ? aqa_load_tensor(tp, "video_text", AQA_F32) : NULL;
        r->stage_text = st;
        r->video_text = vt;
        if (!st || !vt) return 1;
        if (!kv_has(c, "texts")) {
            snprintf(tp, sizeof tp, "%s/stage_texts.txt", kv_str(c, "features"));
            if (check_texts(tp, &ds->stage_texts)) return 1;
            snprintf(tp, sizeof tp, "%s/video_texts.txt", kv_str(c, "features"));
            if (check_texts(tp, &ds->video_texts)) return 1;
        }
        if (st->shape[0] != (int64_t)ds->stage_texts.n || vt->shape[0] != (int64_t)ds->video_texts.n) {
            aqa_fail(AQA_EFORMAT, "text tables hold %lld / %lld texts, the dataset has %zu / %zu", (long long)st->shape[0],
                     (long long)vt->shape[0], ds->stage_texts.n, ds->video_texts.n);
            return 1;
        }
        if (r->dev.kind != AQA_CPU) {
            r->stage_text = aqa_keep(to_dev(r, st));
            r->video_text = aqa_keep(to_dev(r, vt));
            aqa_tensor_free(st);
            aqa_tensor_free(vt);
        }
    }
    if (r->frames) {
        aqa_i3d_config ic = aqa_i3d_default_config();
        if (!kv_has(c, "i3d")) ic.width_multiplier = kv_double(c, "i3d_width");
        else if (aqa_i3d_file_width(kv_str(c, "i3d"), &ic.width_multiplier)) return 1;
        r->i3d = aqa_i3d_new(&ic);
        if (!r->i3d || (kv_has(c, "i3d") && aqa_i3d_load(r->i3d, kv_str(c, "i3d")))) return 1;
        if (!kv_has(c, "i3d")) {
            aqa_frame_transform tf = aqa_frame_transform_i3d((int)kv_int(c, "i3d_short"), (int)kv_int(c, "i3d_size"));
            if (calibrate_i3d_bn(r->i3d, r->train, &tf, 8)) return 1;
        }
        aqa_i3d_freeze_bn(r->i3d, true, false); /* TSA/CoRe: BatchNorm statistics frozen */
        if (aqa_module_to(&r->i3d->base, r->dev)) return 1;
        i3d_dim = r->i3d->feature_dim;
    }
    if (!i3d_dim) {
        aqa_fail(AQA_EINVAL, "no CBP (I3D) features: extract with --i3d or --i3d-width");
        return 1;
    }

    /* MVLA */
    aqa_mvla_config m = use_vlp ? aqa_mvla_config_default() : aqa_mvla_config_plain();
    m.scheme = ds->L > 0 ? AQA_MVLA_FAM : AQA_MVLA_FUM;
    m.num_clips = ds->N;
    m.i3d_dim = i3d_dim;
    m.num_frames = ds->T > 0 ? ds->T : ds->N;
    m.clip_feat_dim = clip_dim > 0 ? clip_dim : 512;
    m.text_dim = r->texts ? r->clip->cfg.embed_dim : r->stage_text ? r->stage_text->shape[1] : m.clip_feat_dim;
    m.dim = kv_int(c, "dim") > 0 ? kv_int(c, "dim") : m.clip_feat_dim;
    m.num_boundaries = 2;
    m.clip_len = ds->clip_len;
    m.clip_stride = ds->cfg.clip_stride;
    m.teacher_forcing_fraction = kv_double(c, "teacher_forcing");
    m.oracle_boundaries = kv_bool(c, "oracle");
    m.temporal_layers = (int)kv_int(c, "temporal_layers");
    m.temporal_heads = kv_int(c, "temporal_heads");
    m.temporal_ffn = kv_int(c, "temporal_ffn") > 0 ? kv_int(c, "temporal_ffn") : 4 * m.clip_feat_dim;
    m.temporal_dropout = kv_double(c, "dropout");
    if (use_vlp) {
        m.vlkl_frame = kv_bool(c, "vlkl_frame");
        m.vlkl_stage = kv_bool(c, "vlkl_stage");
        m.vlkl_video = kv_bool(c, "vlkl_video");
        m.vlkl_kl = kv_bool(c, "vlkl_kl");
        m.sca = kv_bool(c, "sca");
    }
    m.sca_mlp_hidden = m.dim;
    if (run_parse_mvla(c, ds, &m)) return 1;
    m.tau_init = kv_double(c, "tau");
    if (m.scheme == AQA_MVLA_FAM && m.num_frames % 8) {
        aqa_fail(AQA_EINVAL, "FAM needs T divisible by 8 (T = %lld)", (long long)m.num_frames);
        return 1;
    }
    if (m.scheme == AQA_MVLA_FAM && i3d_dim % 16) {
        aqa_fail(AQA_EINVAL, "FAM needs the I3D width divisible by 16 (got %lld)", (long long)i3d_dim);
        return 1;
    }
    r->mcfg = m;
    const aqa_head_ops *ops = aqa_head_find(kv_str(c, "head"));
    if (!ops) return 1;
    r->contrastive = ops->is_contrastive;
    aqa_head_config h = aqa_head_config_default();
    h.feat_dim = use_vlp ? m.dim : i3d_dim;
    h.frame_dim = m.scheme == AQA_MVLA_FAM ? i3d_dim / 16 : (use_vlp ? m.dim : i3d_dim);
    h.tsa_dim = h.frame_dim;
    h.num_stages = m.num_boundaries + 1;
    h.use_stage_features = use_vlp;
    h.score_min = floor(ds->score_min);
    h.score_max = ceil(ds->score_max);
    if (h.score_max <= h.score_min) h.score_max = h.score_min + 1;
    h.use_difficulty = r->use_dd;
    h.tsa_heads = kv_int(c, "tsa_heads");
    h.tsa_layers = (int)kv_int(c, "tsa_layers");
    h.tsa_tokens = kv_int(c, "tsa_tokens");
    h.tsa_reg_hidden1 = kv_int(c, "tsa_reg_hidden1");
    h.tsa_reg_hidden2 = kv_int(c, "tsa_reg_hidden2");
    h.usdl_sigma = kv_double(c, "usdl_sigma");
    h.seq.len = m.scheme == AQA_MVLA_FAM ? m.num_frames : m.num_clips; /* the steps of head_input.frames */
    h.seq.tpt_queries = kv_int(c, "tpt_queries");
    h.seq.tpt_dim = h.seq.tpt_ffn = kv_int(c, "tpt_dim");
    h.seq.hgcn_groups = kv_int(c, "hgcn_groups");
    h.seq.gdlt_dim = kv_int(c, "gdlt_dim");
    h.seq.gdlt_queries = kv_int(c, "gdlt_queries");
    h.seq.mslstm_hidden = kv_int(c, "mslstm_hidden");
    h.seq.mixer_dim = kv_int(c, "mixer_dim");
    h.seq.mixer_tokens = kv_int(c, "mixer_tokens");
    r->hcfg = h;
    aqa_manual_seed((uint64_t)kv_int(c, "seed"));
    r->root = aqa_module_new(sizeof(aqa_module), "AQAModel", NULL, "", NULL);
    if (!r->root) return 1;
    if (!(r->mvla = aqa_mvla_new(&m, r->root, "mvla"))) return 1;
    if (!(r->head = aqa_head_new(ops, &h, r->root, "head"))) return 1;
    if (aqa_module_to(r->root, r->dev)) return 1;
    return 0;
}

/* Features of a batch as MVLA's inputs: i3d [B, N, C] and vis [B, T, D] (scope-owned). */
static int run_features(run_ctx *r, aqa_batch *b, bool train, aqa_tensor **i3d, aqa_tensor **vis) {
    *i3d = *vis = NULL;
    if (!r->frames) {
        *i3d = to_dev(r, b->i3d_feat);
        *vis = b->clip_feat ? to_dev(r, b->clip_feat) : NULL;
        return *i3d ? 0 : 1;
    }
    int64_t B = b->B;
    if (r->clip) {
        aqa_tensor *x = to_dev(r, b->clip_frames);
        int64_t T = x->shape[1];
        aqa_tensor *f = aqa_clip_encode_image(r->clip, aqa_reshape(x, 4, (int64_t[]){B * T, x->shape[2], x->shape[3], x->shape[4]}), true);
        *vis = f ? aqa_reshape(f, 3, (int64_t[]){B, T, f->shape[1]}) : NULL;
        if (!*vis) return 1;
    }
    aqa_module_train(&r->i3d->base, train);
    aqa_tensor *x = to_dev(r, b->i3d_clips); /* [B, N, 3, L, S, S] */
    int64_t N = x->shape[1];
    aqa_tensor *f = aqa_i3d_forward(r->i3d, aqa_reshape(x, 5, (int64_t[]){B * N, 3, x->shape[3], x->shape[4], x->shape[5]}));
    *i3d = f ? aqa_reshape(f, 3, (int64_t[]){B, N, f->shape[1]}) : NULL;
    return *i3d ? 0 : 1;
}

static aqa_tensor *cat2(aqa_tensor *a, aqa_tensor *b) {
    if (!a || !b) return NULL;
    return aqa_cat((aqa_tensor *[]){a, b}, 2, 0);
}

/* MVLA forward over the batch's queries followed (pair != NULL) by its exemplars. */
MC_UNUSED static aqa_status run_forward(run_ctx *r, aqa_batch *q, aqa_batch *ex, bool train, bool teacher,
                                        aqa_mvla_output *o) {
    aqa_tensor *qi, *qv, *ei = NULL, *ev = NULL;
    if (run_features(r, q, train, &qi, &qv)) return aqa_last_status();
    if (ex && run_features(r, ex, train, &ei, &ev)) return aqa_last_status();
    aqa_mvla_batch mb;
    memset(&mb, 0, sizeof mb);
    mb.i3d = ex ? cat2(qi, ei) : qi;
    mb.vis = r->mcfg.use_vlp ? (ex ? cat2(qv, ev) : qv) : NULL;
    mb.stage_text = r->stage_text;
    mb.video_text = r->video_text;
    if (r->texts && aqa_mvla_text_tables_get(r->texts, &mb.stage_text, &mb.video_text)) return aqa_last_status();
    mb.stage_text_ids = to_dev(r, ex ? cat2(q->stage_text_ids, ex->stage_text_ids) : q->stage_text_ids);
    mb.video_text_ids = to_dev(r, ex ? cat2(q->video_text_ids, ex->video_text_ids) : q->video_text_ids);
    bool gt = train || r->mcfg.oracle_boundaries;
    if (q->boundaries && gt) {
        mb.boundaries = to_dev(r, ex ? cat2(q->boundaries, ex->boundaries) : q->boundaries);
        mb.boundary_target = to_dev(r, ex ? cat2(q->boundary_target, ex->boundary_target) : q->boundary_target);
        mb.frame_stage = to_dev(r, ex ? cat2(q->frame_stage, ex->frame_stage) : q->frame_stage);
    }
    mb.teacher_forcing = teacher && mb.boundaries != NULL;
    mb.compute_losses = train;
    return aqa_mvla_forward(r->mvla, &mb, o);
}

/* One evaluation pass: predictions, truth, boundaries and boundary probabilities of every video. */
typedef struct run_results {
    size_t n;
    double *pred, *truth, *difficulty;
    long *pb, *tb;          /* predicted / true boundaries [n, 2] (FAM) */
    float *prob;            /* [n, T, 2] boundary probabilities (FAM), or NULL */
    int64_t T;
    size_t *items;          /* dataset item of each row */
    aqa_score_metrics m;
    double aiou50, aiou75;  /* NAN without frame labels */
    double seconds;
} run_results;

MC_UNUSED static void run_results_free(run_results *res) {
    free(res->pred);
    free(res->truth);
    free(res->difficulty);
    free(res->pb);
    free(res->tb);
    free(res->prob);
    free(res->items);
    memset(res, 0, sizeof *res);
}

/* Every rank's block of evaluation rows, in order, on every rank (so all compute the metrics). */
static int run_gather(const dist_run *d, run_results *res) {
    size_t n = res->n, m = n, row_prob = (size_t)res->T * 2 * sizeof(float);
    return dist_gather_rows(d, (void **)&res->pred, sizeof *res->pred, n, &m) ||
           dist_gather_rows(d, (void **)&res->truth, sizeof *res->truth, n, &m) ||
           dist_gather_rows(d, (void **)&res->difficulty, sizeof *res->difficulty, n, &m) ||
           dist_gather_rows(d, (void **)&res->items, sizeof *res->items, n, &m) ||
           dist_gather_rows(d, (void **)&res->pb, 2 * sizeof *res->pb, n, &m) ||
           dist_gather_rows(d, (void **)&res->tb, 2 * sizeof *res->tb, n, &m) ||
           (res->prob && dist_gather_rows(d, (void **)&res->prob, row_prob, n, &m)) || (res->n = m, 0);
}

MC_UNUSED static int run_evaluate(run_ctx *r, aqa_video_dataset *ds, bool keep_prob, bool progress, run_results *res) {
    memset(res, 0, sizeof *res);
    double t0 = aqa_now();
    kv_config *c = r->c;
    aqa_exemplar_pool *pool = r->contrastive ? aqa_exemplar_pool_new(r->train, r->mode) : NULL;
    if (r->contrastive && !pool) return 1;
    aqa_loader_config lc;
    aqa_loader_config_init(&lc);
    lc.batch_size = (int)kv_int(c, "batch");
    lc.workers = (int)kv_int(c, "workers");
    lc.seed = aqa_seed_mix((uint64_t)kv_int(c, "seed"), 0x7E57);
    lc.shuffle = false;
    lc.clip_feat = !r->frames && r->mcfg.use_vlp;
    lc.i3d_feat = !r->frames;
    lc.clip_frames = r->frames && r->clip;
    lc.i3d_clips = r->frames;
    if (r->clip) lc.clip_tf = aqa_frame_transform_clip((int)r->clip->cfg.image_resolution);
    lc.i3d_tf = aqa_frame_transform_i3d((int)kv_int(c, "i3d_short"), (int)kv_int(c, "i3d_size"));
    lc.exemplars = pool;
    lc.n_exemplars = (int)kv_int(c, "eval_exemplars");
    if (r->dist) dist_loader(r->dist, &lc, true);
    aqa_loader *ld = aqa_loader_new(ds, &lc);
    if (!ld) {
        aqa_exemplar_pool_free(pool);
        return 1;
    }
    size_t n = ds->n_items, L = 2;
    res->pred = calloc(n + 1, sizeof *res->pred);
    res->truth = calloc(n + 1, sizeof *res->truth);
    res->difficulty = calloc(n + 1, sizeof *res->difficulty);
    res->pb = calloc(2 * n + 2, sizeof *res->pb);
    res->tb = calloc(2 * n + 2, sizeof *res->tb);
    res->items = calloc(n + 1, sizeof *res->items);
    res->T = r->mcfg.num_frames;
    bool fam = r->mcfg.scheme == AQA_MVLA_FAM;
    if (keep_prob && fam) res->prob = calloc(n * (size_t)res->T * L + 1, sizeof *res->prob);
    bool prev_mode = r->root->training;
    aqa_module_train(r->root, false);
    bool prev = aqa_set_grad_enabled(false);
    aqa_loader_start_epoch(ld, 0);
    aqa_progress pr;
    aqa_progress_start(&pr, "evaluate", n, progress);
    int rc = 0;
    bool have_b = fam;
    for (;;) {
        aqa_batch *b = NULL;
        if (aqa_loader_next(ld, &b)) {
            rc = 1;
            break;
        }
        if (!b) break;
        aqa_scope_begin();
        aqa_mvla_output oq, oe;
        aqa_tensor *pred = NULL;
        int64_t B = b->B;
        if (run_forward(r, b, NULL, false, false, &oq)) goto batch_fail;
        aqa_head_input qi;
        if (aqa_mvla_head_input(&oq, 0, B, &qi)) goto batch_fail;
        if (r->contrastive) {
            int E = b->n_exemplars;
            if (run_forward(r, b->exemplars, NULL, false, false, &oe)) goto batch_fail;
            aqa_head_input *ei = calloc((size_t)E, sizeof *ei);
            aqa_tensor **es = calloc((size_t)E, sizeof *es);
            for (int e = 0; e < E; e++) {
                aqa_mvla_head_input(&oe, (int64_t)e * B, B, &ei[e]);
                es[e] = to_dev(r, aqa_narrow(b->exemplars->score, 0, (int64_t)e * B, B));
            }
            pred = aqa_head_predict_exemplars(r->head, &qi, ei, es, E, to_dev(r, b->difficulty));
            free(ei);
            free(es);
        } else {
            pred = aqa_head_predict_exemplars(r->head, &qi, NULL, NULL, 0, to_dev(r, b->difficulty));
        }
        if (!pred) goto batch_fail;
        size_t base = pr.done;
        double *pv = malloc((size_t)B * sizeof *pv);
        aqa_copy_to_host(pred, pv, AQA_F64);
        int64_t *bb = malloc((size_t)(2 * B) * sizeof *bb);
        if (have_b && b->boundaries) aqa_copy_to_host(oq.pred_boundaries, bb, AQA_I64);
        for (int64_t i = 0; i < B; i++) {
            const aqa_ann_sample *s = aqa_vd_sample(ds, b->items[i]);
            res->pred[base + (size_t)i] = pv[i];
            res->truth[base + (size_t)i] = s->score;
            res->difficulty[base + (size_t)i] = s->difficulty;
            res->items[base + (size_t)i] = b->items[i];
            if (have_b && b->boundaries) {
                const int64_t *tb = (const int64_t *)aqa_data(b->boundaries) + i * 2;
                for (int k = 0; k < 2; k++) {
                    res->pb[2 * (base + (size_t)i) + (size_t)k] = (long)bb[i * 2 + k];
                    res->tb[2 * (base + (size_t)i) + (size_t)k] = (long)tb[k];
                }
            }
        }
        if (res->prob && oq.boundary_prob) {
            aqa_copy_to_host(oq.boundary_prob, res->prob + base * (size_t)res->T * L, AQA_F32);
        }
        if (!b->boundaries) have_b = false;
        free(pv);
        free(bb);
        aqa_progress_update(&pr, base + (size_t)B, NULL);
        aqa_scope_end();
        aqa_batch_free(b);
        continue;
    batch_fail:
        aqa_scope_end();
        aqa_batch_free(b);
        rc = 1;
        break;
    }
    aqa_progress_finish(&pr, NULL);
    aqa_set_grad_enabled(prev);
    aqa_module_train(r->root, prev_mode);
    if (r->frames && r->i3d) aqa_module_train(&r->i3d->base, prev_mode);
    aqa_loader_free(ld);
    aqa_exemplar_pool_free(pool);
    res->n = pr.done;
    if (!rc && r->dist) rc = run_gather(r->dist, res);
    if (rc) return 1;
    if (aqa_score_metrics_compute(res->pred, res->truth, res->n, &res->m)) return 1;
    res->aiou50 = res->aiou75 = NAN;
    if (have_b && res->n) {
        aqa_aiou(res->pb, res->tb, res->n, 0.5, AQA_IOU_TSA, &res->aiou50);
        aqa_aiou(res->pb, res->tb, res->n, 0.75, AQA_IOU_TSA, &res->aiou75);
    }
    res->seconds = aqa_now() - t0;
    return 0;
}

#endif /* AQA_EXAMPLES_MVLA_RUN_H */
