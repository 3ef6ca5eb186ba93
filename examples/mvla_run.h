/* mvla_run.h: what train_mvla and evaluate --checkpoint share: the settings of a run, opening its
 * datasets and text tables, building the model (MVLA or the plain CBP branch, plus a head) from
 * the settings, one forward on a batch, the evaluation pass with its metrics, and the training
 * epoch.
 *
 * Protocol.  The training split loses a seeded share of its videos (--val-fraction, --val-seed)
 * to a validation split; the rest trains and provides the exemplars, the score range (heads,
 * quality grades; or --score-range) and CoRe's groups.  No test label enters any of them: the
 * test split is only predicted.
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
#include "nn/optim.h"
#include "tensor/tensor_file.h"
#include "ops/ops.h"
#include "tensor/tensor_file.h"

/* The dataset names the programs accept (mvla_common.h: parse_dataset). */
#define RUN_DATASETS "synthetic|finediving|mtl-aqa|mtl_aqa|mtlaqa|jigsaws|fisv|fis-v"

/* The settings of a run (train_mvla's; evaluate reads them back from the checkpoint). */
MC_UNUSED static void run_def_keys(kv_config *c) {
    const double seeds = 1e18; /* seeds are 64-bit; any up to 10^18 */
    kv_def(c, "data", "", "dataset folder");
    kv_def_choice(c, "dataset", "synthetic", RUN_DATASETS, "dataset (annotation layout)");
    kv_def(c, "videos", "", "frame mode: folder of the frame folders or video files when not --data");
    kv_def_int(c, "video_height", "0", 0, 4096, "frame mode, video files: resize frames to this many rows first (0 = as decoded)");
    kv_def(c, "features", "", "feature cache folder (extract_features; Fis-V: the .npy folder): I3D frozen; \"\" = "
                              "frame mode: I3D fine-tuned in the training graph");
    kv_def(c, "clip_features", "", "Fis-V with MVLA: folder of <id>.npy per-clip CLIP image features");
    kv_def(c, "texts", "", "text embeddings (default <features>/texts.safetensors)");
    kv_def_choice(c, "target", "score", "score|tes|pcs", "the score regressed: the dataset's, or Fis-V's TES or PCS (the paper trains and reports each)");
    kv_def(c, "train_split", "train", "training split (JIGSAWS: e.g. Suturing/0/train)");
    kv_def(c, "test_split", "test", "evaluation split");
    kv_def_num(c, "val_fraction", "0.1", 0, 0.9, "share of the training split held out for validation (model selection); 0 = none");
    kv_def_int(c, "val_seed", "0", 0, 1e18, "which training videos are held out");
    kv_def(c, "score_range", "", "score range \"lo,hi\" of the heads and quality grades (\"\" = the training videos')");
    kv_def_bool(c, "quality_text", "false", "dives: graded stage and video texts (the paper's \"+ Quality Text\")");
    kv_def_choice(c, "grade_texts", "nearest", "nearest|all", "SCA's graded texts: nearest (the paper: the highest-similarity text) or all");
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
    kv_def_int(c, "tpt_queries", "7", 1, 1024, "TPT part queries");
    kv_def_int(c, "tpt_dim", "512", 1, 65536, "TPT decoder width");
    kv_def_int(c, "hgcn_groups", "8", 1, 1024, "HGCN groups of its 1x1 convolutions");
    kv_def_int(c, "gdlt_dim", "256", 1, 65536, "GDLT transformer width");
    kv_def_int(c, "gdlt_queries", "4", 1, 1024, "GDLT grade queries");
    kv_def_int(c, "mslstm_hidden", "256", 1, 65536, "MS-LSTM hidden size");
    kv_def_int(c, "mixer_dim", "512", 1, 65536, "MLP-Mixer token width");
    kv_def_int(c, "mixer_tokens", "1", 1, 1024, "MLP-Mixer clips per recurrent step");
    kv_def_choice(c, "map_layout", "tsa", "tsa|position", "how PSNet reads the I3D Mixed_5c maps (tsa: its code's reshape)");
    kv_def_bool(c, "head_z", "true", "with MVLA the head regresses Z^sta and Z^vid (false: its own input, Z^vid or none)");
    kv_def_bool(c, "tsa_z_bias", "false", "TSA: Z as biases of its tokens instead of extra tokens");
    kv_def_choice(c, "dd", "auto", "auto|true|false", "targets / DD, prediction x DD (auto: with w/DD)");
    kv_def_num(c, "core_theta", "0", 0, 1e6, "CoRe's score_range: exemplar score scale, outer group edge (0 = 30 with DD, else score max)");
    kv_def_int(c, "core_pairs", "0", 0, 1e9, "CoRe's groups from at most this many training pairs, sampled evenly (0 = all)");
    kv_def_int(c, "usdl_bins", "0", 0, 100000, "USDL bins (0 = the dataset's: 101; JIGSAWS 25)");
    kv_def_num(c, "usdl_sigma", "0", 0, 1e6, "USDL/MUSDL Gaussian sigma in bins (0 = the dataset's: 5; JIGSAWS 1)");
    kv_def_choice(c, "usdl_kl", "batchmean", "batchmean|mean", "USDL/MUSDL KL reduction (mean: per element, their code)");
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

/* The frozen I3D of feature extraction (extract_features; score_video rebuilds it for a new
 * video): `weights` (pytorch-i3d names; pretrain_i3d's files carry their width) when given, else a
 * random network at `width` seeded by `seed` whose BatchNorm statistics are re-estimated on the
 * clips of `calibrate` videos of `cal_ds` (the training split) through transform tf.  Eval mode;
 * NULL with the error recorded. */
MC_UNUSED static aqa_i3d *open_feature_i3d(const char *weights, double width, uint64_t seed, int calibrate,
                                           aqa_video_dataset *cal_ds, const aqa_frame_transform *tf) {
    aqa_i3d_config ic = aqa_i3d_default_config();
    bool have = weights && weights[0];
    if (have && aqa_i3d_file_width(weights, &ic.width_multiplier)) return NULL;
    if (!have) {
        ic.width_multiplier = width;
        aqa_manual_seed(seed);
    }
    aqa_i3d *m = aqa_i3d_new(&ic);
    if (!m || (have && aqa_i3d_load(m, weights))) {
        if (m) aqa_i3d_free(m);
        return NULL;
    }
    aqa_module_train(&m->base, false);
    if (!have && calibrate > 0 && calibrate_i3d_bn(m, cal_ds, tf, calibrate)) {
        aqa_i3d_free(m);
        return NULL;
    }
    return m;
}

/* Checkpoint names "model.<name>" -> the model's "<name>"; optimizer state is skipped. */
MC_UNUSED static char *strip_model(const char *file_name, void *user) {
    (void)user;
    return strncmp(file_name, "model.", 6) == 0 ? strdup(file_name + 6) : NULL;
}

/* Reads the settings train_mvla stored in checkpoint `ckpt` into c (declared with run_def_keys and
 * the program's own keys; keys c does not know are ignored).  Returns 0, or 1 with the error
 * recorded. */
MC_UNUSED static int run_checkpoint_settings(kv_config *c, const char *ckpt) {
    aqa_st_file *f = NULL;
    if (aqa_st_open(ckpt, &f)) return 1;
    const char *cfg = aqa_st_metadata(f, "config");
    char where[1200];
    snprintf(where, sizeof where, "settings in %.1100s", ckpt);
    int bad = !cfg || kv_from_json(c, cfg, true, where);
    /* runs from before the heads followed their authors' code (no "head_z" setting) hold weights
     * of other models under the same names (TSA's Z biases, 1-D keys): refused, not misread */
    bool old = !bad && !strstr(cfg, "\"head_z\"");
    aqa_st_close(f);
    if (!cfg) aqa_fail(AQA_EFORMAT, "%s: no settings in the checkpoint (not written by train_mvla?)", ckpt);
    if (old)
        aqa_fail(AQA_EFORMAT, "%s: written before the heads changed (TSA's map keys and Z tokens, CoRe's groups, MUSDL's "
                              "judge counts): train again", ckpt);
    return bad || old;
}

typedef struct run_ctx {
    kv_config *c;
    aqa_video_dataset *train;        /* the training split less its held-out videos */
    aqa_video_dataset *val;          /* the held-out videos (validation), or NULL */
    aqa_video_dataset *test;         /* the evaluation split, or NULL */
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
    bool maps;                       /* I3D Mixed_5c maps feed TSA's keys and values (FAM) */
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
    aqa_video_dataset_free(r->val);
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

/* Which datasets run_open opens besides the training part. */
#define RUN_OPEN_TEST 1
#define RUN_OPEN_VAL 2

/* Which part of its split run_open_split opens. */
typedef enum run_part {
    RUN_PART_TRAIN = 0, /* the training split less the held-out videos */
    RUN_PART_VAL = 1,   /* the held-out videos of the training split */
    RUN_PART_TEST = 2   /* the whole evaluation split */
} run_part;

/* Opens `part`; `train` (NULL for the training part) is the training part, whose score range and
 * clip count every other part uses (Fis-V's count comes from the first feature file read). */
static aqa_video_dataset *run_open_split(kv_config *c, run_part part, const aqa_video_dataset *train) {
    const char *split = kv_str(c, part == RUN_PART_TEST ? "test_split" : "train_split");
    aqa_vd_config vc;
    aqa_vd_config_init(&vc);
    vc.root = kv_str(c, "data");
    parse_dataset(kv_str(c, "dataset"), &vc.dataset);
    vc.split = split;
    vc.features_dir = kv_has(c, "features") ? kv_str(c, "features") : NULL;
    vc.frames_root = kv_has(c, "videos") ? kv_str(c, "videos") : NULL;
    vc.video_height = (int)kv_int(c, "video_height");
    vc.num_frames = (int)kv_int(c, "frames");
    vc.num_clips = train ? (int)train->N : (int)kv_int(c, "clips");
    vc.clip_stride = (int)kv_int(c, "clip_stride");
    vc.clip_features_dir = kv_has(c, "clip_features") ? kv_str(c, "clip_features") : NULL;
    vc.policy = kv_bool(c, "skip_bad") ? AQA_BAD_DATA_SKIP : AQA_BAD_DATA_FAIL;
    vc.target = !strcmp(kv_str(c, "target"), "tes") ? AQA_VD_TARGET_TES
                : !strcmp(kv_str(c, "target"), "pcs") ? AQA_VD_TARGET_PCS : AQA_VD_TARGET_SCORE;
    vc.quality_texts = kv_bool(c, "quality_text");
    if (run_stage_template(c, vc.dataset, &vc)) return NULL;
    if (vc.dataset == AQA_ANN_MTL_AQA && part == RUN_PART_TRAIN) {
        vc.shift_min = -3; /* CoRe's temporal augmentation */
        vc.shift_max = 0;
    }
    if (part != RUN_PART_TEST) {
        vc.holdout_fraction = kv_double(c, "val_fraction");
        vc.holdout_seed = (uint64_t)kv_int(c, "val_seed");
        vc.holdout_take = part == RUN_PART_VAL;
    }
    if (kv_has(c, "score_range")) {
        if (sscanf(kv_str(c, "score_range"), "%lf,%lf", &vc.score_lo, &vc.score_hi) != 2 || !(vc.score_lo < vc.score_hi))
            return aqa_fail_null("--score-range must be \"lo,hi\" with lo < hi, not \"%s\"", kv_str(c, "score_range"));
    } else if (train) {
        vc.score_lo = train->score_min;
        vc.score_hi = train->score_max > train->score_min ? train->score_max : train->score_min + 1;
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

/* Opens the training part and, as `open` asks (RUN_OPEN_TEST, RUN_OPEN_VAL), the test split and
 * the validation videos (when val_fraction > 0), the texts, and builds the model.  Returns 0 or 1
 * (message in aqa_last_error()). */
MC_UNUSED static int run_open(run_ctx *r, kv_config *c, int open) {
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
    r->use_dd = !strcmp(kv_str(c, "dd"), "auto") ? r->mode == AQA_EXEMPLAR_DIFFICULTY : !strcmp(kv_str(c, "dd"), "true");
    r->frames = !kv_has(c, "features");
    if (r->frames && dk == AQA_ANN_FISV) {
        aqa_fail(AQA_EINVAL, "Fis-V trains from its .npy features: give --features");
        return 1;
    }
    if (!(r->train = run_open_split(c, RUN_PART_TRAIN, NULL))) return 1;
    print_notes(c->program, r->train);
    if ((open & RUN_OPEN_VAL) && kv_double(c, "val_fraction") > 0 &&
        !(r->val = run_open_split(c, RUN_PART_VAL, r->train)))
        return 1;
    if ((open & RUN_OPEN_TEST) && kv_has(c, "test_split") && !(r->test = run_open_split(c, RUN_PART_TEST, r->train)))
        return 1;
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
    m.map_layout = !strcmp(kv_str(c, "map_layout"), "position") ? AQA_MVLA_MAP_POSITION : AQA_MVLA_MAP_TSA;
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
    if (!strcmp(kv_str(c, "grade_texts"), "nearest")) m.grade_texts = AQA_MVLA_GRADES_NEAREST;
    else if (!strcmp(kv_str(c, "grade_texts"), "all")) m.grade_texts = AQA_MVLA_GRADES_ALL;
    else {
        aqa_fail(AQA_EINVAL, "--grade-texts must be nearest or all, not \"%s\"", kv_str(c, "grade_texts"));
        return 1;
    }
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
    /* TSA's keys and values come from the I3D maps (cached, or computed in frame mode) */
    r->maps = ops == &aqa_head_tsa && m.scheme == AQA_MVLA_FAM && (r->frames || ds->feat_map_h > 0);
    if (ops == &aqa_head_tsa && m.scheme == AQA_MVLA_FAM && !r->maps)
        fprintf(stderr, "note: the feature cache holds no I3D maps: TSA attends to its 1-D tokens (extract again for "
                        "TSA's 80 map tokens per stage)\n");
    aqa_head_config h = aqa_head_config_default();
    h.feat_dim = use_vlp ? m.dim : i3d_dim;
    h.frame_dim = m.scheme == AQA_MVLA_FAM ? i3d_dim / 16 : (use_vlp ? m.dim : i3d_dim);
    h.tsa_dim = h.frame_dim;
    h.num_stages = m.num_boundaries + 1;
    h.use_z = use_vlp && kv_bool(c, "head_z");
    h.tsa_z_bias = kv_bool(c, "tsa_z_bias");
    h.score_min = floor(ds->score_min); /* the training videos' range (or --score-range) */
    h.score_max = ceil(ds->score_max);
    if (h.score_max <= h.score_min) h.score_max = h.score_min + 1;
    h.use_difficulty = r->use_dd;
    h.tsa_heads = kv_int(c, "tsa_heads");
    h.tsa_layers = (int)kv_int(c, "tsa_layers");
    h.tsa_tokens = kv_int(c, "tsa_tokens");
    h.tsa_reg_hidden1 = kv_int(c, "tsa_reg_hidden1");
    h.tsa_reg_hidden2 = kv_int(c, "tsa_reg_hidden2");
    h.seq.len = m.scheme == AQA_MVLA_FAM ? m.num_frames : m.num_clips; /* the steps of head_input.frames */
    h.seq.tpt_queries = kv_int(c, "tpt_queries");
    h.seq.tpt_dim = h.seq.tpt_ffn = kv_int(c, "tpt_dim");
    h.seq.hgcn_groups = kv_int(c, "hgcn_groups");
    h.seq.gdlt_dim = kv_int(c, "gdlt_dim");
    h.seq.gdlt_queries = kv_int(c, "gdlt_queries");
    h.seq.mslstm_hidden = kv_int(c, "mslstm_hidden");
    h.seq.mixer_dim = kv_int(c, "mixer_dim");
    h.seq.mixer_tokens = kv_int(c, "mixer_tokens");
    /* USDL/MUSDL as nzl-thu/MUSDL per dataset; diving elsewhere (FineDiving, synthetic): MTL-AQA's
     * judges, USDL's bins over the head's score range */
    if (dk == AQA_ANN_MTL_AQA) aqa_head_config_usdl_mtl_aqa(&h);
    else if (dk == AQA_ANN_JIGSAWS) aqa_head_config_usdl_jigsaws(&h);
    else if (dk == AQA_ANN_FISV && ops == &aqa_head_musdl) {
        aqa_fail(AQA_EINVAL, "--head musdl: Fis-V has no judges' scores to learn (TES and PCS are totals); use "
                             "--head usdl");
        return 1;
    }
    if (kv_int(c, "usdl_bins") > 0) h.usdl_bins = kv_int(c, "usdl_bins");
    if (kv_double(c, "usdl_sigma") > 0) h.usdl_sigma = kv_double(c, "usdl_sigma");
    h.usdl_kl_mean = !strcmp(kv_str(c, "usdl_kl"), "mean");
    /* CoRe's score_range: 30 for completeness (score / DD: three judges of 10), else the scores' */
    h.core_theta = kv_double(c, "core_theta") > 0 ? kv_double(c, "core_theta") : r->use_dd ? 30.0 : h.score_max;
    r->hcfg = h;
    aqa_manual_seed((uint64_t)kv_int(c, "seed"));
    r->root = aqa_module_new(sizeof(aqa_module), "AQAModel", NULL, "", NULL);
    if (!r->root) return 1;
    if (!(r->mvla = aqa_mvla_new(&m, r->root, "mvla"))) return 1;
    if (!(r->head = aqa_head_new(ops, &h, r->root, "head"))) return 1;
    if (aqa_module_to(r->root, r->dev)) return 1;
    return 0;
}

/* Loads a checkpoint's model weights into the model run_open built from its settings, and what
 * was trained beside it (run_load_sidecars: I3D in frame mode, the fine-tuned CLIP text side).
 * Returns 0 or 1. */
MC_UNUSED static int run_load_weights(run_ctx *r, const char *ckpt) {
    aqa_load_report rep;
    if (aqa_module_load(r->root, ckpt, true, strip_model, NULL, &rep)) return 1;
    return run_load_sidecars(r, ckpt);
}

/* Features of a batch as MVLA's inputs: i3d [B, N, C], map [B, N, C, H, W] (r->maps) and vis
 * [B, T, D] (scope-owned). */
static int run_features(run_ctx *r, aqa_batch *b, bool train, aqa_tensor **i3d, aqa_tensor **map, aqa_tensor **vis) {
    *i3d = *map = *vis = NULL;
    if (!r->frames) {
        *i3d = to_dev(r, b->i3d_feat);
        *map = r->maps ? to_dev(r, b->i3d_map) : NULL;
        *vis = b->clip_feat ? to_dev(r, b->clip_feat) : NULL;
        return *i3d && (*map || !r->maps) ? 0 : 1;
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
    x = aqa_reshape(x, 5, (int64_t[]){B * N, 3, x->shape[3], x->shape[4], x->shape[5]});
    aqa_tensor *f = NULL, *fm = NULL;
    if (r->maps ? aqa_i3d_features_maps(r->i3d, x, &f, &fm) : !(f = aqa_i3d_forward(r->i3d, x))) return 1;
    *i3d = aqa_reshape(f, 3, (int64_t[]){B, N, f->shape[1]});
    if (fm) *map = aqa_reshape(fm, 5, (int64_t[]){B, N, fm->shape[1], fm->shape[2], fm->shape[3]});
    return *i3d && (*map || !r->maps) ? 0 : 1;
}

static aqa_tensor *cat2(aqa_tensor *a, aqa_tensor *b) {
    if (!a || !b) return NULL;
    return aqa_cat((aqa_tensor *[]){a, b}, 2, 0);
}

/* MVLA forward over the batch's queries followed (pair != NULL) by its exemplars. */
MC_UNUSED static aqa_status run_forward(run_ctx *r, aqa_batch *q, aqa_batch *ex, bool train, bool teacher,
                                        aqa_mvla_output *o) {
    aqa_tensor *qi, *qm, *qv, *ei = NULL, *em = NULL, *ev = NULL;
    if (run_features(r, q, train, &qi, &qm, &qv)) return aqa_last_status();
    if (ex && run_features(r, ex, train, &ei, &em, &ev)) return aqa_last_status();
    aqa_mvla_batch mb;
    memset(&mb, 0, sizeof mb);
    mb.i3d = ex ? cat2(qi, ei) : qi;
    mb.i3d_map = !r->maps ? NULL : ex ? cat2(qm, em) : qm;
    mb.vis = r->mcfg.use_vlp ? (ex ? cat2(qv, ev) : qv) : NULL;
    mb.stage_text = r->stage_text;
    mb.video_text = r->video_text;
    if (r->texts && aqa_mvla_text_tables_get(r->texts, &mb.stage_text, &mb.video_text)) return aqa_last_status();
    if (q->stage_text_cands) { /* graded texts: SCA picks among the candidates */
        mb.stage_text_cands = to_dev(r, ex ? cat2(q->stage_text_cands, ex->stage_text_cands) : q->stage_text_cands);
        mb.video_text_cands = to_dev(r, ex ? cat2(q->video_text_cands, ex->video_text_cands) : q->video_text_cands);
    }
    /* the sample's own texts; graded ones come from its score, so they are training targets only */
    if (train || !q->stage_text_cands) {
        mb.stage_text_ids = to_dev(r, ex ? cat2(q->stage_text_ids, ex->stage_text_ids) : q->stage_text_ids);
        mb.video_text_ids = to_dev(r, ex ? cat2(q->video_text_ids, ex->video_text_ids) : q->video_text_ids);
    }
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

/* The head input of rows [start, start + n) of o, with batch b's difficulty and judge counts
 * (rows 0..n of b).  Returns the status. */
MC_UNUSED static aqa_status run_head_input(run_ctx *r, const aqa_mvla_output *o, int64_t start, int64_t n, aqa_batch *b,
                                           aqa_head_input *in) {
    aqa_status st = aqa_mvla_head_input(o, start, n, in);
    if (st) return st;
    in->difficulty = to_dev(r, aqa_narrow(b->difficulty, 0, 0, n));
    in->judge_count = to_dev(r, aqa_narrow(b->judge_count, 0, 0, n));
    return in->difficulty && in->judge_count ? AQA_OK : aqa_last_status();
}

/* The loader settings training and evaluation share: batch size, threads, what each batch holds
 * (cached features and maps, or frames for CLIP and I3D) and the frame transforms. */
static aqa_loader_config run_loader_config(const run_ctx *r) {
    kv_config *c = r->c;
    aqa_loader_config lc;
    aqa_loader_config_init(&lc);
    lc.batch_size = (int)kv_int(c, "batch");
    lc.workers = (int)kv_int(c, "workers");
    lc.clip_feat = !r->frames && r->mcfg.use_vlp;
    lc.i3d_feat = !r->frames;
    lc.i3d_map = !r->frames && r->maps;
    lc.clip_frames = r->frames && r->clip;
    lc.i3d_clips = r->frames;
    if (r->clip) lc.clip_tf = aqa_frame_transform_clip((int)r->clip->cfg.image_resolution);
    lc.i3d_tf = aqa_frame_transform_i3d((int)kv_int(c, "i3d_short"), (int)kv_int(c, "i3d_size"));
    return lc;
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
    aqa_loader_config lc = run_loader_config(r);
    lc.seed = aqa_seed_mix((uint64_t)kv_int(c, "seed"), 0x7E57);
    lc.shuffle = false;
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
        if (run_head_input(r, &oq, 0, B, b, &qi)) goto batch_fail;
        if (r->contrastive) {
            int E = b->n_exemplars;
            if (run_forward(r, b->exemplars, NULL, false, false, &oe)) goto batch_fail;
            aqa_head_input *ei = calloc((size_t)E, sizeof *ei);
            aqa_tensor **es = calloc((size_t)E, sizeof *es);
            bool ok = ei && es;
            for (int e = 0; e < E && ok; e++) {
                aqa_mvla_head_input(&oe, (int64_t)e * B, B, &ei[e]);
                ei[e].difficulty = to_dev(r, aqa_narrow(b->exemplars->difficulty, 0, (int64_t)e * B, B));
                es[e] = to_dev(r, aqa_narrow(b->exemplars->score, 0, (int64_t)e * B, B));
            }
            pred = ok ? aqa_head_predict_exemplars(r->head, &qi, ei, es, E, b->exemplar_count) : NULL;
            free(ei);
            free(es);
        } else {
            pred = aqa_head_predict_exemplars(r->head, &qi, NULL, NULL, 0, NULL);
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

/* ---- training --------------------------------------------------------------------------------- */

/* train_mvla's training settings (evaluate reads them back from checkpoints and ignores them). */
MC_UNUSED static void run_def_train_keys(kv_config *c) {
    kv_def_int(c, "epochs", "20", 1, 1e6, "training epochs");
    kv_def_int(c, "seeds", "1", 1, 1000, "repeat the run with seeds seed .. seed + N - 1 (<out>/seed<k>), report mean and std");
    kv_def(c, "folds", "", "JIGSAWS: run the four folds of this task (Suturing, Needle_Passing, Knot_Tying) in <out>/fold<k> "
                           "(train and test splits TASK/k/train, TASK/k/test), report rho's Fisher-z average");
    kv_def_bool(c, "resume", "false", "continue from <out>/last.safetensors (an error when there is none)");
    kv_def_int(c, "eval_every", "1", 1, 1e6, "validate (and select) every k epochs, and after the last");
    kv_def_bool(c, "test_each_epoch", "true",
                "also predict the test split after each validation, to report each metric's best over epochs as TSA "
                "and CoRe do (optimistic; never used for selection)");
    kv_def_num(c, "lr_backbone", "1e-4", 0, 10, "Adam lr of visual feature extraction (temporal transformer, projections, I3D)");
    kv_def_num(c, "lr_head", "1e-3", 0, 10, "Adam lr of SCA, segmentation and the head");
    kv_def_num(c, "weight_decay", "0", 0, 10, "Adam weight decay");
    kv_def_bool(c, "augment", "true", "random crop/flip (frame mode), MTL-AQA shift");
    kv_def_int(c, "max_steps", "0", 0, 1e15, "stop after this many steps in total (0 = no limit; tests)");
}

/* What training needs besides the model: Adam with the paper's parameter groups, the training
 * exemplars and the loader of shuffled training batches. */
typedef struct run_trainer {
    dist_run *dist;          /* the process group whose gradient reduction it attached (borrowed) */
    aqa_optimizer *opt;      /* Adam: lr_backbone (visual feature extraction), lr_head (the rest) */
    aqa_exemplar_pool *pool; /* training exemplars (contrastive heads), or NULL */
    aqa_loader *ld;          /* batches of the training split */
    int batch;               /* videos per step */
    int64_t step;            /* optimizer steps taken */
} run_trainer;

/* The loss terms of one epoch, averaged over its steps. */
typedef struct run_epoch_stats {
    double sums[AQA_MVLA_NUM_LOSSES]; /* sum of each term over the steps */
    int counts[AQA_MVLA_NUM_LOSSES];  /* steps where the term was present */
    double loss_sum;                  /* sum of the total loss */
    int n_steps;                      /* steps taken this epoch */
    size_t seen;                      /* videos seen this epoch */
    double seconds;                   /* wall time of the epoch */
    bool teacher;                     /* ground-truth stage splits this epoch (TSA's schedule) */
} run_epoch_stats;

MC_UNUSED static void run_trainer_free(run_trainer *t) {
    if (t->dist) { /* the next trainer (another seed) attaches anew */
        aqa_ddp_free(t->dist->ddp);
        t->dist->ddp = NULL;
    }
    aqa_loader_free(t->ld);
    aqa_exemplar_pool_free(t->pool);
    aqa_optim_free(t->opt);
    memset(t, 0, sizeof *t);
}

/* CoRe's groups (CoRe, TPT): |score differences| of every training pair within the exemplar groups
 * (CoRe's delta list; --core-pairs caps them with an even sample). */
static int run_core_groups(run_ctx *r, aqa_exemplar_pool *pool, bool verbose) {
    double *d = NULL;
    size_t n = 0;
    if (aqa_exemplar_pool_deltas(pool, r->use_dd, (size_t)kv_int(r->c, "core_pairs"), &d, &n)) return 1;
    if (verbose) fprintf(stderr, "%s: CoRe's groups from %zu training pairs\n", r->c->program, n);
    aqa_status (*set)(aqa_head *, const double *, int64_t) =
        r->head->ops == &aqa_head_tpt ? aqa_tpt_head_set_groups : aqa_core_head_set_groups;
    int rc = n ? set(r->head, d, (int64_t)n) != AQA_OK : 0;
    free(d);
    return rc;
}

/* Appends the parameters of module m to *list (n entries, grown).  Returns 0 or 1. */
static int run_append(aqa_tensor ***list, int *n, aqa_tensor **p, int k) {
    if (k < 0) return 1;
    aqa_tensor **g = realloc(*list, sizeof *g * (size_t)(*n + k + 1));
    if (!g) {
        free(p);
        aqa_fail(AQA_ENOMEM, "out of memory");
        return 1;
    }
    if (k) memcpy(g + *n, p, sizeof *p * (size_t)k);
    *list = g;
    *n += k;
    free(p);
    return 0;
}

static int run_append_params(aqa_module *m, aqa_tensor ***list, int *n) {
    aqa_tensor **p = NULL;
    int k = aqa_module_parameters(m, &p);
    return run_append(list, n, p, k);
}

#define RUN_N_VALUES (1 + 2 * AQA_MVLA_NUM_LOSSES) /* per micro-batch: total loss, each term, whether it exists */

/* The optimizer, CoRe's groups, the exemplar pool, the loader of a run (c holds the keys of
 * run_def_train_keys) and the data-parallel attachment (r->dist, from dist_open: one rank when
 * started alone): every rank starts from rank 0's weights.  Returns 0 or 1 (message in
 * aqa_last_error()). */
MC_UNUSED static int run_trainer_new(run_ctx *r, run_trainer *t) {
    memset(t, 0, sizeof *t);
    kv_config *c = r->c;
    if (!r->dist) {
        aqa_fail(AQA_EINVAL, "run_trainer_new: no process group (dist_open first)");
        return 1;
    }
    aqa_tensor **bb = NULL, **rest = NULL;
    int nb = 0, nr = 0, rc = 1;
    if (aqa_mvla_param_groups(r->mvla, &bb, &nb, &rest, &nr)) return 1;
    if (run_append_params(&r->head->base, &rest, &nr) || (r->i3d && run_append_params(&r->i3d->base, &bb, &nb)))
        goto done;
    if (r->texts) { /* the CLIP text side (fine-tuned: its parameters; frozen: none) joins the backbone group */
        aqa_tensor **tp = NULL;
        int nt = aqa_mvla_text_tables_parameters(r->texts, &tp);
        if (run_append(&bb, &nb, tp, nt)) goto done;
    }
    aqa_adam_options ao = AQA_ADAM_DEFAULTS;
    ao.weight_decay = kv_double(c, "weight_decay");
    if (!(t->opt = aqa_adam_new(&ao))) goto done;
    if (nb && aqa_optim_add_group(t->opt, bb, nb, kv_double(c, "lr_backbone"), ao.weight_decay) < 0) goto done;
    if (nr && aqa_optim_add_group(t->opt, rest, nr, kv_double(c, "lr_head"), ao.weight_decay) < 0) goto done;
    aqa_module *models[3] = {r->root};
    int n_models = 1;
    if (r->i3d) models[n_models++] = &r->i3d->base;
    if (r->texts && r->texts->finetune) models[n_models++] = &r->clip->base;
    aqa_tensor **all = malloc(sizeof *all * (size_t)(nb + nr + 1));
    if (!all) goto done;
    if (nb) memcpy(all, bb, sizeof *bb * (size_t)nb);
    if (nr) memcpy(all + nb, rest, sizeof *rest * (size_t)nr);
    t->dist = r->dist;
    int attach = dist_attach(r->dist, models, n_models, all, nb + nr, RUN_N_VALUES);
    free(all);
    if (attach) goto done;
    t->pool = r->contrastive ? aqa_exemplar_pool_new(r->train, r->mode) : NULL;
    if (r->contrastive && !t->pool) goto done;
    /* the same groups on every rank (a resumed run loads them with the checkpoint) */
    if ((r->head->ops == &aqa_head_core || r->head->ops == &aqa_head_tpt) &&
        run_core_groups(r, t->pool, r->dist->main))
        goto done;
    aqa_loader_config lc = run_loader_config(r);
    t->batch = lc.batch_size;
    lc.seed = (uint64_t)kv_int(c, "seed");
    lc.shuffle = true;
    lc.drop_last = r->train->n_items > (size_t)lc.batch_size;
    lc.augment = kv_bool(c, "augment");
    lc.exemplars = t->pool;
    lc.n_exemplars = 1;
    dist_loader(r->dist, &lc, false);
    if (!(t->ld = aqa_loader_new(r->train, &lc))) goto done;
    rc = 0;
done:
    free(bb);
    free(rest);
    if (rc) run_trainer_free(t);
    return rc;
}

/* What one micro-batch needs besides itself. */
typedef struct run_micro_ctx {
    run_ctx *r;
    bool teacher; /* ground-truth stage splits this epoch */
} run_micro_ctx;

/* One micro-batch (data-parallel step, examples/dist_run.h): forward, the loss values into v
 * (RUN_N_VALUES), backward. */
static int run_train_micro(void *user, aqa_batch *b, double *v) {
    run_micro_ctx *t = user;
    run_ctx *r = t->r;
    aqa_scope_begin();
    int64_t B = b->B;
    aqa_mvla_output o;
    aqa_head_result hr;
    aqa_head_input qi, ei;
    bool ok = run_forward(r, b, r->contrastive ? b->exemplars : NULL, true, t->teacher, &o) == AQA_OK &&
              run_head_input(r, &o, 0, B, b, &qi) == AQA_OK &&
              (!r->contrastive || run_head_input(r, &o, B, B, b->exemplars, &ei) == AQA_OK);
    aqa_head_targets tg = {.score = to_dev(r, b->score), .judge_scores = to_dev(r, b->judges)};
    ok = ok && aqa_head_forward(r->head, &qi, r->contrastive ? &ei : NULL,
                                r->contrastive ? to_dev(r, b->exemplars->score) : NULL, &tg, &hr) == AQA_OK;
    aqa_tensor *loss = ok ? aqa_mvla_total_loss(r->mvla, &o, hr.loss) : NULL;
    for (int k = 0; loss && k < AQA_MVLA_NUM_LOSSES; k++) {
        v[1 + k] = o.losses[k] ? aqa_item(o.losses[k]) : 0;
        v[1 + AQA_MVLA_NUM_LOSSES + k] = o.losses[k] != NULL;
    }
    if (loss) v[0] = aqa_item(loss);
    int rc = !loss || aqa_backward(loss, NULL, false) != AQA_OK;
    aqa_scope_end();
    return rc;
}

/* One training epoch (0-based `epoch` of `epochs`); stops early once t->step reaches max_steps
 * (> 0), setting *stopped.  Returns 0, 1 on an error (in aqa_last_error()) or 2 when a loss term
 * turned NaN or infinite (a message naming it is printed). */
MC_UNUSED static int run_train_epoch(run_ctx *r, run_trainer *t, int epoch, int epochs, long max_steps, bool progress,
                                     run_epoch_stats *st, bool *stopped) {
    memset(st, 0, sizeof *st);
    aqa_module_train(r->root, true);
    if (aqa_loader_start_epoch(t->ld, epoch)) return 1;
    st->teacher = aqa_mvla_teacher_forcing(&r->mcfg, epoch, epochs);
    char label[64];
    snprintf(label, sizeof label, "epoch %d/%d", epoch + 1, epochs);
    aqa_progress prog;
    aqa_progress_start(&prog, label, aqa_loader_num_batches(t->ld) * (size_t)t->batch, progress);
    double t0 = aqa_now();
    for (;;) {
        aqa_batch *b = NULL;
        if (aqa_loader_next(t->ld, &b)) return 1;
        if (!b) break;
        if (max_steps && t->step >= max_steps) {
            aqa_batch_free(b);
            *stopped = true;
            break;
        }
        double v[RUN_N_VALUES];
        run_micro_ctx mc = {r, st->teacher};
        size_t rows = (size_t)b->batch_rows;
        char keys[512]; /* the batch's videos, for a message */
        size_t kl = 0;
        keys[0] = 0;
        for (int64_t i = 0; i < b->B && kl + 1 < sizeof keys; i++)
            kl += (size_t)snprintf(keys + kl, sizeof keys - kl, "%s%s", i ? ", " : "", aqa_vd_sample(r->train, b->items[i])->key);
        int rc = dist_step(r->dist, b, run_train_micro, &mc, v);
        aqa_batch_free(b);
        if (rc) return 1;
        /* every term must be finite (the values of all micro-batches, on every rank) */
        for (int k = 0; k < AQA_MVLA_NUM_LOSSES; k++) {
            if (!v[1 + AQA_MVLA_NUM_LOSSES + k]) continue;
            if (!isfinite(v[1 + k])) {
                fprintf(stderr, "\n%s: epoch %d step %lld: loss term \"%s\" is %g on the batch of videos %s (their inputs "
                                "read as finite: lower the learning rates); stopping\n",
                        r->c->program, epoch + 1, (long long)t->step, aqa_mvla_loss_name((aqa_mvla_loss)k), v[1 + k], keys);
                return 2;
            }
            st->sums[k] += v[1 + k];
            st->counts[k]++;
        }
        if (aqa_optim_step(t->opt)) return 1;
        st->loss_sum += v[0];
        st->n_steps++;
        t->step++;
        st->seen += rows;
        char extra[256];
        int nx = snprintf(extra, sizeof extra, "step %lld loss %.4f", (long long)t->step, st->loss_sum / st->n_steps);
        for (int k = 0; k < AQA_MVLA_NUM_LOSSES && nx < (int)sizeof extra - 32; k++)
            if (st->counts[k] && (k == AQA_MVLA_LOSS_BCE || k == AQA_MVLA_LOSS_HEAD))
                nx += snprintf(extra + nx, sizeof extra - (size_t)nx, " %s %.4f", aqa_mvla_loss_name((aqa_mvla_loss)k),
                               st->sums[k] / st->counts[k]);
        aqa_progress_update(&prog, st->seen, extra);
    }
    st->seconds = aqa_now() - t0;
    char extra[128];
    snprintf(extra, sizeof extra, "loss %.4f", st->n_steps ? st->loss_sum / st->n_steps : NAN);
    aqa_progress_finish(&prog, extra);
    return 0;
}

#endif /* AQA_EXAMPLES_MVLA_RUN_H */
