/* mvla.c: the MVLA model: configuration, construction, forward (branches, stage decomposition,
 * VLKL and SCA put together), the weighted loss and the head input.  See mvla.h. */
#include "models/mvla/mvla.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/mvla/stages.h"
#include "nn/loss.h"
#include "ops/ops.h"

static const char *const loss_names[AQA_MVLA_NUM_LOSSES] = {
    "bce", "vlkl_frame_i3d", "vlkl_stage_i3d", "vlkl_video_i3d", "vlkl_frame_vis",
    "vlkl_stage_vis", "vlkl_video_vis", "kl", "head"};

const char *aqa_mvla_loss_name(aqa_mvla_loss which) {
    return (unsigned)which < AQA_MVLA_NUM_LOSSES ? loss_names[which] : "?";
}

aqa_mvla_config aqa_mvla_config_default(void) {
    aqa_mvla_config c;
    memset(&c, 0, sizeof c);
    c.scheme = AQA_MVLA_FAM;
    c.num_clips = 9;
    c.i3d_dim = 1024;
    c.num_frames = 96;
    c.clip_feat_dim = 512;
    c.text_dim = 512;
    c.dim = 512;
    c.num_boundaries = 2;
    c.seg_mlp_hidden1 = 128;
    c.seg_mlp_hidden2 = 64;
    c.teacher_forcing_fraction = 0.25;
    c.clip_len = 16;
    c.clip_stride = 10;
    c.use_vlp = true;
    c.temporal_layers = 2;
    c.temporal_heads = 8;
    c.temporal_ffn = 4 * 512;
    c.temporal_dropout = 0.1;
    c.vlkl_frame = c.vlkl_stage = c.vlkl_video = c.vlkl_kl = true;
    c.vlkl_i3d = c.vlkl_vis = true;
    c.tau_init = 0.07;
    c.learn_tau = true;
    c.sca = true;
    c.sca_mlp_hidden = 512;
    c.fuse = AQA_MVLA_FUSE_I3D;
    for (int i = 0; i < AQA_MVLA_NUM_LOSSES; i++) c.loss_weight[i] = 1.0;
    return c;
}

aqa_mvla_config aqa_mvla_config_plain(void) {
    aqa_mvla_config c = aqa_mvla_config_default();
    c.use_vlp = false;
    c.vlkl_frame = c.vlkl_stage = c.vlkl_video = c.vlkl_kl = false;
    c.sca = false;
    return c;
}

aqa_mvla *aqa_mvla_new(const aqa_mvla_config *cfg, aqa_module *parent, const char *name) {
    if (!cfg) return aqa_fail_null("aqa_mvla_new: NULL config");
    const aqa_mvla_config *c = cfg;
    if (c->num_clips < 1 || c->i3d_dim < 1 || c->num_frames < 2 || c->dim < 1 || c->num_boundaries < 1 ||
        c->num_boundaries > AQA_MVLA_MAX_BOUNDARIES)
        return aqa_fail_null("aqa_mvla_new: bad sizes (N %lld, C_i3d %lld, T %lld, D %lld, L %lld)",
                             (long long)c->num_clips, (long long)c->i3d_dim, (long long)c->num_frames,
                             (long long)c->dim, (long long)c->num_boundaries);
    if (c->scheme == AQA_MVLA_FUM && c->num_clips < c->num_boundaries + 1)
        return aqa_fail_null("aqa_mvla_new: FUM needs at least L + 1 clips");
    if (!(c->tau_init > 0)) return aqa_fail_null("aqa_mvla_new: tau_init must be > 0");
    if (c->vlkl_reduction != AQA_MVLA_VLKL_MEAN && c->vlkl_reduction != AQA_MVLA_VLKL_SUM)
        return aqa_fail_null("aqa_mvla_new: vlkl_reduction %d is neither MEAN nor SUM", (int)c->vlkl_reduction);
    if (c->scheme == AQA_MVLA_FUM && (c->clip_len < 1 || c->clip_stride < 0))
        return aqa_fail_null("aqa_mvla_new: FUM clips need clip_len >= 1 and clip_stride >= 0 (got %lld, %lld)",
                             (long long)c->clip_len, (long long)c->clip_stride);
    bool any_fum = false;
    for (int64_t l = 0; l < c->num_boundaries; l++) any_fum |= c->fum_boundaries[l] != 0;
    for (int64_t l = 0; any_fum && l < c->num_boundaries; l++) {
        int64_t prev = l ? c->fum_boundaries[l - 1] : 0;
        if (c->fum_boundaries[l] <= prev || c->fum_boundaries[l] >= c->num_clips)
            return aqa_fail_null("aqa_mvla_new: fum_boundaries[%lld] = %lld must be in (%lld, %lld): the first clip of "
                                 "stage %lld, after the previous boundary and before the last clip",
                                 (long long)l, (long long)c->fum_boundaries[l], (long long)prev,
                                 (long long)c->num_clips, (long long)(l + 1));
    }
    aqa_mvla *m = aqa_module_new(sizeof *m, "MVLA", parent, name, NULL);
    if (!m) return NULL;
    m->cfg = *c;
    aqa_tensor *lt = aqa_full(AQA_SHAPE(1), log(c->tau_init), AQA_F32);
    if (!lt) goto fail;
    m->log_tau = c->learn_tau ? aqa_module_param(&m->base, "log_tau", lt) : aqa_module_buffer(&m->base, "log_tau", lt);
    if (!m->log_tau) goto fail;
    if (c->use_vlp && c->i3d_dim != c->dim && !(m->i3d_proj = aqa_linear_layer_new(&m->base, "i3d_proj", c->i3d_dim, c->dim, true)))
        goto fail;
    if (c->scheme == AQA_MVLA_FAM) {
        if (!(m->seg = aqa_mvla_segmentation_new(&m->base, "seg", c->num_clips, c->i3d_dim, c->num_frames,
                                                 c->seg_mlp_hidden1, c->seg_mlp_hidden2, c->num_boundaries)))
            goto fail;
        if (c->use_vlp && !(m->i3d_frame_proj = aqa_linear_layer_new(&m->base, "i3d_frame_proj", m->seg->width, c->dim, true)))
            goto fail;
    }
    if (c->use_vlp) {
        if (!(m->temporal = aqa_mvla_temporal_new(&m->base, "temporal", c->num_frames, c->clip_feat_dim, c->temporal_layers,
                                                  c->temporal_heads, c->temporal_ffn, c->temporal_dropout)))
            goto fail;
        if (c->clip_feat_dim != c->dim &&
            !(m->vis_proj = aqa_linear_layer_new(&m->base, "vis_proj", c->clip_feat_dim, c->dim, true)))
            goto fail;
        if (c->text_dim != c->dim && !(m->text_proj = aqa_linear_layer_new(&m->base, "text_proj", c->text_dim, c->dim, true)))
            goto fail;
        if (c->sca) {
            if (!(m->sca_stage = aqa_mvla_sca_new(&m->base, "sca_stage", c->dim, c->sca_mlp_hidden))) goto fail;
            if (!(m->sca_video = aqa_mvla_sca_new(&m->base, "sca_video", c->dim, c->sca_mlp_hidden))) goto fail;
        }
    }
    return m;
fail:
    if (!parent) aqa_module_free(&m->base);
    return NULL;
}

/* The fixed FUM split over N clips: cfg boundaries, or an even split when they are all 0. */
static aqa_tensor *fum_boundaries(const aqa_mvla_config *c, int64_t B) {
    int64_t L = c->num_boundaries;
    bool any = false;
    for (int64_t l = 0; l < L; l++) any |= c->fum_boundaries[l] != 0;
    if (!any) return aqa_stage_even_boundaries(B, L, c->num_clips);
    int64_t *h = malloc(sizeof *h * (size_t)(B * L + 1));
    if (!h) return aqa_fail_null("MVLA: out of memory");
    for (int64_t i = 0; i < B; i++)
        for (int64_t l = 0; l < L; l++) h[i * L + l] = c->fum_boundaries[l];
    aqa_tensor *r = aqa_from_data(h, 2, (int64_t[]){B, L}, AQA_I64);
    free(h);
    return r;
}

/* [N, T]: clip c averages frames [s_c, s_c + len) with s_c = min(c stride, T - len), the CBP
 * clips' rule (TSA/CoRe loaders, datasets/video_dataset.h), clipped to T when T < len. */
static aqa_tensor *clip_pool_matrix(const aqa_mvla_config *c, aqa_dtype dtype) {
    int64_t N = c->num_clips, T = c->num_frames;
    double *m = calloc((size_t)(N * T), sizeof *m);
    if (!m) return aqa_fail_null("MVLA: out of memory");
    for (int64_t i = 0; i < N; i++) {
        int64_t a = i * c->clip_stride;
        if (a > T - c->clip_len) a = T - c->clip_len;
        if (a < 0) a = 0;
        int64_t e = a + c->clip_len;
        if (e > T) e = T;
        for (int64_t t = a; t < e; t++) m[i * T + t] = 1.0 / (double)(e - a);
    }
    aqa_tensor *r = aqa_from_data(m, 2, (int64_t[]){N, T}, AQA_F64);
    free(m);
    if (r && dtype != AQA_F64) r = aqa_to_dtype(r, dtype);
    return r;
}

static bool shape_is(const aqa_tensor *t, int ndim, const int64_t *shape) {
    if (!t || t->ndim != ndim) return false;
    for (int i = 0; i < ndim; i++)
        if (shape[i] >= 0 && t->shape[i] != shape[i]) return false;
    return true;
}

#define REQUIRE_SHAPE(t, what, ...)                                                                            \
    do {                                                                                                       \
        if (!shape_is((t), (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                    \
                      (const int64_t[]){__VA_ARGS__})) {                                                       \
            char buf_[64];                                                                                     \
            return aqa_fail(AQA_EINVAL, "MVLA batch: %s has shape %s", what,                                   \
                            (t) ? aqa_shape_str((t), buf_, sizeof buf_) : "(missing)");                        \
        }                                                                                                      \
    } while (0)

static aqa_status check_batch(const aqa_mvla *m, const aqa_mvla_batch *b) {
    const aqa_mvla_config *c = &m->cfg;
    REQUIRE_SHAPE(b->i3d, "i3d (expected [B, N, C_i3d])", -1, c->num_clips, c->i3d_dim);
    int64_t B = b->i3d->shape[0], S = c->num_boundaries + 1;
    if (c->use_vlp) {
        REQUIRE_SHAPE(b->vis, "vis (expected [B, T, D_clip])", B, c->num_frames, c->clip_feat_dim);
        REQUIRE_SHAPE(b->stage_text, "stage_text (expected [C_sta, D_text])", -1, c->text_dim);
        REQUIRE_SHAPE(b->video_text, "video_text (expected [C_vid, D_text])", -1, c->text_dim);
        if (b->stage_text_cands || b->video_text_cands) {
            REQUIRE_SHAPE(b->stage_text_cands, "stage_text_cands (expected I64 [B, L + 1, G])", B, S, -1);
            REQUIRE_SHAPE(b->video_text_cands, "video_text_cands (expected I64 [B, G])", B, -1);
        }
        /* the sample's own texts: SCA's without candidates, else only the losses' targets */
        if (b->compute_losses || !b->stage_text_cands) {
            REQUIRE_SHAPE(b->stage_text_ids, "stage_text_ids (expected I64 [B, L + 1])", B, S);
            REQUIRE_SHAPE(b->video_text_ids, "video_text_ids (expected I64 [B])", B);
        }
    }
    if (b->boundaries) REQUIRE_SHAPE(b->boundaries, "boundaries (expected I64 [B, L])", B, c->num_boundaries);
    if (b->boundary_target)
        REQUIRE_SHAPE(b->boundary_target, "boundary_target (expected [B, T, L])", B, c->num_frames, c->num_boundaries);
    if (b->frame_stage) REQUIRE_SHAPE(b->frame_stage, "frame_stage (expected I64 [B, T])", B, c->num_frames);
    if (b->i3d_map) REQUIRE_SHAPE(b->i3d_map, "i3d_map (expected [B, N, C_i3d, H, W])", B, c->num_clips, c->i3d_dim, -1, -1);
    if (c->scheme == AQA_MVLA_FAM && (c->oracle_boundaries || b->teacher_forcing) && !b->boundaries)
        return aqa_fail(AQA_EINVAL, "MVLA batch: %s needs ground-truth boundaries",
                        c->oracle_boundaries ? "the oracle setting" : "teacher forcing");
    return AQA_OK;
}

/* PSNet on the I3D maps [B, N, C, H, W] (TSA: transits_pred_map is not used, no loss) ->
 * *maps [B, T, W, H W] in the configured layout. */
static aqa_status segment_maps(aqa_mvla *m, aqa_tensor *map, aqa_tensor **maps) {
    int64_t B = map->shape[0], N = map->shape[1], C = map->shape[2], P = map->shape[3] * map->shape[4];
    int64_t T = m->cfg.num_frames, W = m->seg->width;
    bool tsa = m->cfg.map_layout == AQA_MVLA_MAP_TSA;
    aqa_tensor *x = tsa ? aqa_reshape(map, 3, (int64_t[]){B * P, N, C})
                        : aqa_reshape(aqa_permute(aqa_view(map, 4, (int64_t[]){B, N, C, P}), (int[]){0, 3, 1, 2}), 3,
                                      (int64_t[]){B * P, N, C});
    aqa_tensor *y = NULL, *prob = NULL;
    aqa_status st = x ? aqa_mvla_segmentation_forward(m->seg, x, &y, &prob) : aqa_last_status(); /* y [B P, T, W] */
    if (st) return st;
    *maps = tsa ? aqa_reshape(y, 4, (int64_t[]){B, T, W, P})
                : aqa_permute(aqa_view(y, 4, (int64_t[]){B, P, T, W}), (int[]){0, 2, 3, 1});
    return *maps ? AQA_OK : aqa_last_status();
}

/* rows x [B, K, D] -> [B * K, D] */
static aqa_tensor *rows(aqa_tensor *x) {
    return x ? aqa_reshape(x, 2, (int64_t[]){x->shape[0] * x->shape[1], x->shape[2]}) : NULL;
}

/* t * k, or t itself when k is 1 (no extra graph node). */
static aqa_tensor *scaled(aqa_tensor *t, double k) { return k == 1.0 ? t : aqa_mul_scalar(t, k); }

aqa_status aqa_mvla_forward(aqa_mvla *m, const aqa_mvla_batch *batch, aqa_mvla_output *out) {
    if (!m || !batch || !out) return aqa_fail(AQA_EINVAL, "aqa_mvla_forward: NULL argument");
    memset(out, 0, sizeof *out);
    aqa_status st = check_batch(m, batch);
    if (st != AQA_OK) return st;
    const aqa_mvla_config *c = &m->cfg;
    const int64_t B = batch->i3d->shape[0], S = c->num_boundaries + 1, D = c->dim;
    const bool losses = batch->compute_losses;
    aqa_tensor **L = out->losses;

    aqa_scope_begin();
    aqa_tensor *fi3d = m->i3d_proj ? aqa_linear_layer_forward(m->i3d_proj, batch->i3d) : batch->i3d; /* [B, N, D] */
    aqa_tensor *i3d_fra = NULL, *i3d_sta = NULL, *i3d_vid = NULL, *vis_fra = NULL, *vis_sta = NULL, *vis_vid = NULL;
    aqa_tensor *vis_cli = NULL, *frame_stage = batch->frame_stage;

    /* ---- VLP frames ---- */
    aqa_tensor *fvis = NULL;
    if (c->use_vlp) {
        fvis = aqa_mvla_temporal_forward(m->temporal, batch->vis);
        if (m->vis_proj) fvis = aqa_linear_layer_forward(m->vis_proj, fvis);
    }

    if (c->scheme == AQA_MVLA_FAM) {
        aqa_tensor *seg_frames = NULL, *prob = NULL;
        if ((st = aqa_mvla_segmentation_forward(m->seg, batch->i3d, &seg_frames, &prob)) != AQA_OK) goto fail;
        out->frames = seg_frames;
        out->boundary_prob = prob;
        if (batch->i3d_map && (st = segment_maps(m, batch->i3d_map, &out->frame_maps)) != AQA_OK) goto fail;
        out->pred_boundaries = aqa_mvla_select_boundaries(prob);
        bool use_gt = (c->oracle_boundaries || batch->teacher_forcing) && batch->boundaries;
        if (use_gt && (st = aqa_stage_check_boundaries(batch->boundaries, c->num_frames, "MVLA ground-truth boundaries")))
            goto fail;
        out->boundaries = use_gt ? aqa_clone((aqa_tensor *)batch->boundaries) : out->pred_boundaries;
        if (losses && (batch->boundary_target || batch->boundaries)) {
            aqa_tensor *tgt = batch->boundary_target
                                  ? batch->boundary_target
                                  : aqa_stage_on_device(aqa_mvla_boundary_target(batch->boundaries, c->num_frames, prob->dtype), prob);
            L[AQA_MVLA_LOSS_BCE] = aqa_bce_loss(prob, tgt, NULL, AQA_REDUCTION_MEAN);
        }
        if (c->use_vlp) {
            i3d_fra = aqa_linear_layer_forward(m->i3d_frame_proj, seg_frames);
            i3d_sta = aqa_stage_mean(i3d_fra, out->boundaries);
            vis_fra = fvis;
            vis_sta = aqa_stage_mean(fvis, out->boundaries);
            vis_vid = aqa_mean(fvis, 1, (int[]){1}, false);
            if (!frame_stage)
                frame_stage = aqa_stage_of_steps(batch->boundaries ? batch->boundaries : out->boundaries, c->num_frames);
            frame_stage = aqa_stage_on_device(frame_stage, batch->i3d);
        } else {
            i3d_sta = aqa_stage_mean(seg_frames, out->boundaries);
        }
        i3d_vid = aqa_mean(fi3d, 1, (int[]){1}, false);
    } else {
        aqa_tensor *fb = fum_boundaries(c, B);
        if (!fb || (st = aqa_stage_check_boundaries(fb, c->num_clips, "MVLA FUM boundaries"))) goto fail;
        out->boundaries = out->pred_boundaries = fb;
        out->frames = fi3d;
        i3d_sta = aqa_stage_mean(fi3d, fb);
        i3d_vid = aqa_mean(fi3d, 1, (int[]){1}, false);
        if (c->use_vlp) {
            vis_cli = aqa_matmul(aqa_stage_on_device(clip_pool_matrix(c, fvis ? fvis->dtype : AQA_F32), fvis), fvis);
            vis_sta = aqa_stage_mean(vis_cli, fb);
            vis_vid = aqa_mean(vis_cli, 1, (int[]){1}, false);
        }
    }

    if (c->use_vlp) {
        /* ---- texts ---- */
        aqa_tensor *stage_tab = m->text_proj ? aqa_linear_layer_forward(m->text_proj, batch->stage_text) : batch->stage_text;
        aqa_tensor *video_tab = m->text_proj ? aqa_linear_layer_forward(m->text_proj, batch->video_text) : batch->video_text;
        /* the sample's own texts (absent at inference with graded texts: they are labels there) */
        aqa_tensor *sids = NULL, *s_text = NULL, *v_text = NULL;
        if (batch->stage_text_ids) {
            sids = aqa_reshape(batch->stage_text_ids, 1, (int64_t[]){B * S});
            s_text = aqa_reshape(aqa_index_select(stage_tab, 0, sids), 3, (int64_t[]){B, S, D}); /* [B, S, D] */
            v_text = aqa_index_select(video_tab, 0, batch->video_text_ids);                     /* [B, D] */
        }

        /* ---- VLKL ---- */
        if (losses) {
            bool br[2] = {c->vlkl_i3d, c->vlkl_vis};
            aqa_tensor *fra[2] = {i3d_fra, vis_fra}, *sta[2] = {i3d_sta, vis_sta}, *vid[2] = {i3d_vid, vis_vid};
            int base[2] = {AQA_MVLA_LOSS_FRAME_I3D, AQA_MVLA_LOSS_FRAME_VIS};
            aqa_tensor *fids = NULL;
            if (c->scheme == AQA_MVLA_FAM && c->vlkl_frame)
                fids = aqa_reshape(aqa_gather(batch->stage_text_ids, 1, frame_stage), 1, (int64_t[]){B * c->num_frames});
            /* rows per video of each term: SUM turns a term's mean over all rows into eq. 5's sum
             * over the rows of a video, averaged over the videos */
            const bool sum = c->vlkl_reduction == AQA_MVLA_VLKL_SUM;
            const double per_frame = sum ? (double)c->num_frames : 1.0, per_stage = sum ? (double)S : 1.0;
            for (int x = 0; x < 2; x++) {
                if (!br[x]) continue;
                if (fids) L[base[x]] = scaled(aqa_mvla_vlkl_ce(rows(fra[x]), stage_tab, fids, m->log_tau), per_frame);
                if (c->vlkl_stage)
                    L[base[x] + 1] = scaled(aqa_mvla_vlkl_ce(rows(sta[x]), stage_tab, sids, m->log_tau), per_stage);
                if (c->vlkl_video) L[base[x] + 2] = aqa_mvla_vlkl_ce(vid[x], video_tab, batch->video_text_ids, m->log_tau);
            }
            if (c->scheme == AQA_MVLA_FUM && c->vlkl_kl)
                L[AQA_MVLA_LOSS_KL] = scaled(aqa_mvla_vlkl_kl(fi3d, vis_cli, s_text, m->log_tau), per_stage);
        }

        /* ---- SCA / fusion ---- */
        if (c->sca) {
            aqa_tensor *sca_s = s_text, *sca_v = v_text ? aqa_unsqueeze(v_text, 1) : NULL; /* [B, K, D] each */
            if (batch->stage_text_cands) {
                sca_s = aqa_mvla_pick_texts(stage_tab, batch->stage_text_cands, vis_sta, c->grade_texts);
                sca_v = aqa_mvla_pick_texts(video_tab, aqa_unsqueeze(batch->video_text_cands, 1), aqa_unsqueeze(vis_vid, 1),
                                            c->grade_texts);
            }
            out->stage = aqa_mvla_sca_forward(m->sca_stage, vis_sta, sca_s, i3d_sta);
            aqa_tensor *vt = sca_v && sca_s ? aqa_cat((aqa_tensor *[]){sca_v, sca_s}, 2, 1) : NULL; /* video, then stage */
            aqa_tensor *zv = aqa_mvla_sca_forward(m->sca_video, aqa_unsqueeze(vis_vid, 1), vt, aqa_unsqueeze(i3d_vid, 1));
            out->video = aqa_squeeze(zv, 1);
        } else if (c->fuse == AQA_MVLA_FUSE_ADD) {
            out->stage = aqa_add(i3d_sta, vis_sta);
            out->video = aqa_add(i3d_vid, vis_vid);
        }
    }
    if (!out->stage) out->stage = i3d_sta;
    if (!out->video) out->video = i3d_vid;

    /* ---- weighted sum ---- */
    for (int i = 0; i < AQA_MVLA_NUM_LOSSES; i++) {
        if (!L[i]) continue;
        aqa_tensor *w = aqa_mul_scalar(L[i], c->loss_weight[i]);
        out->loss = out->loss ? aqa_add(out->loss, w) : w;
    }
    if (!out->frames || !out->boundaries || !out->stage || !out->video) {
        st = aqa_last_status() ? aqa_last_status() : AQA_EINVAL;
        goto fail;
    }
    for (int i = 0; i < AQA_MVLA_NUM_LOSSES; i++)
        if (L[i]) aqa_keep(L[i]);
    aqa_keep(out->frames);
    if (out->frame_maps) aqa_keep(out->frame_maps);
    aqa_keep(out->boundaries);
    if (out->pred_boundaries != out->boundaries) aqa_keep(out->pred_boundaries);
    if (out->boundary_prob) aqa_keep(out->boundary_prob);
    aqa_keep(out->stage);
    aqa_keep(out->video);
    if (out->loss) aqa_keep(out->loss);
    aqa_scope_end();
    return AQA_OK;
fail : {
    aqa_status s2 = st ? st : AQA_EINVAL;
    aqa_scope_end();
    memset(out, 0, sizeof *out);
    return aqa_fail(s2, "MVLA forward: %s", aqa_last_error());
}
}

aqa_tensor *aqa_mvla_total_loss(aqa_mvla *m, aqa_mvla_output *out, aqa_tensor *head_loss) {
    if (!m || !out) return aqa_fail_null("aqa_mvla_total_loss: NULL argument");
    out->losses[AQA_MVLA_LOSS_HEAD] = head_loss;
    aqa_tensor *total = NULL;
    for (int i = 0; i < AQA_MVLA_NUM_LOSSES; i++) {
        if (!out->losses[i]) continue;
        aqa_tensor *w = aqa_mul_scalar(out->losses[i], m->cfg.loss_weight[i]);
        total = total ? aqa_add(total, w) : w;
    }
    if (!total) return aqa_fail_null("aqa_mvla_total_loss: no loss term present");
    return total;
}

aqa_status aqa_mvla_head_input(const aqa_mvla_output *o, int64_t start, int64_t n, aqa_head_input *in) {
    if (!o || !in || !o->stage) return aqa_fail(AQA_EINVAL, "aqa_mvla_head_input: NULL argument");
    int64_t B = o->stage->shape[0];
    if (start < 0 || n < 0 || start + n > B)
        return aqa_fail(AQA_EINVAL, "aqa_mvla_head_input: rows [%lld, %lld) outside the batch of %lld", (long long)start,
                        (long long)(start + n), (long long)B);
    memset(in, 0, sizeof *in);
    in->frames = aqa_narrow(o->frames, 0, start, n);
    if (o->frame_maps && !(in->frame_maps = aqa_narrow(o->frame_maps, 0, start, n))) return aqa_last_status();
    in->boundaries = aqa_narrow(o->boundaries, 0, start, n);
    in->stages = aqa_narrow(o->stage, 0, start, n);
    in->video = aqa_narrow(o->video, 0, start, n);
    if (!in->frames || !in->boundaries || !in->stages || !in->video) return aqa_last_status();
    return AQA_OK;
}

/* Appends the trainable parameters of module sub (may be NULL) to list. */
static aqa_status append_params(aqa_module *sub, aqa_tensor ***list, int *n) {
    if (!sub) return AQA_OK;
    aqa_tensor **p = NULL;
    int k = aqa_module_parameters(sub, &p);
    if (k < 0) return aqa_last_status();
    aqa_tensor **grown = realloc(*list, sizeof *grown * (size_t)(*n + k + 1));
    if (!grown) {
        free(p);
        return aqa_fail(AQA_ENOMEM, "aqa_mvla_param_groups: out of memory");
    }
    *list = grown;
    memcpy(*list + *n, p, sizeof *p * (size_t)k);
    *n += k;
    free(p);
    return AQA_OK;
}

aqa_status aqa_mvla_param_groups(aqa_mvla *m, aqa_tensor ***backbone, int *n_backbone, aqa_tensor ***rest,
                                 int *n_rest) {
    if (!m || !backbone || !n_backbone || !rest || !n_rest) return aqa_fail(AQA_EINVAL, "aqa_mvla_param_groups: NULL");
    *backbone = *rest = NULL;
    *n_backbone = *n_rest = 0;
    aqa_module *bb[4] = {m->temporal ? &m->temporal->base : NULL, m->vis_proj ? &m->vis_proj->base : NULL,
                         m->i3d_proj ? &m->i3d_proj->base : NULL, m->text_proj ? &m->text_proj->base : NULL};
    aqa_module *other[5] = {m->seg ? &m->seg->base : NULL, m->i3d_frame_proj ? &m->i3d_frame_proj->base : NULL,
                            m->sca_stage ? &m->sca_stage->base : NULL, m->sca_video ? &m->sca_video->base : NULL, NULL};
    aqa_status st = AQA_OK;
    for (int i = 0; i < 4 && !st; i++) st = append_params(bb[i], backbone, n_backbone);
    for (int i = 0; i < 4 && !st; i++) st = append_params(other[i], rest, n_rest);
    if (!st && m->cfg.learn_tau) {
        aqa_tensor **g = realloc(*rest, sizeof *g * (size_t)(*n_rest + 1));
        if (!g) st = aqa_fail(AQA_ENOMEM, "aqa_mvla_param_groups: out of memory");
        else {
            *rest = g;
            (*rest)[(*n_rest)++] = m->log_tau;
        }
    }
    if (st) {
        free(*backbone);
        free(*rest);
        *backbone = *rest = NULL;
        *n_backbone = *n_rest = 0;
    }
    return st;
}
