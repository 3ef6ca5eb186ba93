/* segmentation.c: MVLA's FAM stage decomposition, i.e. TSA's segmentation module (PSNet), its
 * boundary selection and BCE targets, and the teacher-forcing schedule.
 *
 * PSNet treats the N clip features as the channels of a 1-D signal along the feature axis
 * (C_i3d = 1024 long): double-conv blocks (Conv1d k3 pad 1, BatchNorm1d, ReLU, twice) with a
 * MaxPool1d(2) before each of the four down blocks take [B, N, 1024] to [B, T, 64] (channels
 * T/8, T/4, T/2, T, T: 12, 24, 48, 96, 96 for T = 96), i.e. T pseudo-frames of width 64; an MLP
 * 64-128-64-L with ReLU and a final sigmoid gives the boundary probabilities [B, T, L]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "models/mvla/mvla.h"
#include "nn/pool.h"
#include "ops/ops.h"

static const char *const block_names[5] = {"inc", "down1", "down2", "down3", "down4"};

aqa_mvla_segmentation *aqa_mvla_segmentation_new(aqa_module *parent, const char *name, int64_t num_clips,
                                                 int64_t i3d_dim, int64_t num_frames, int64_t hidden1,
                                                 int64_t hidden2, int64_t num_boundaries) {
    if (num_clips < 1 || num_frames < 8 || num_frames % 8 || i3d_dim < 16 || i3d_dim % 16 || num_boundaries < 1 ||
        hidden1 < 1 || hidden2 < 1)
        return aqa_fail_null("segmentation %s: need N >= 1, T a multiple of 8, C_i3d a multiple of 16 (got N %lld, "
                             "T %lld, C %lld, L %lld)",
                             name ? name : "", (long long)num_clips, (long long)num_frames, (long long)i3d_dim,
                             (long long)num_boundaries);
    aqa_mvla_segmentation *s = aqa_module_new(sizeof *s, "PSNet", parent, name, NULL);
    if (!s) return NULL;
    s->width = i3d_dim / 16;
    int64_t ch[6] = {num_clips, num_frames / 8, num_frames / 4, num_frames / 2, num_frames, num_frames};
    for (int b = 0; b < 5; b++) {
        /* inc.conv.conv.{0,1,3,4}; downK.mpconv.1.conv.{0,1,3,4} (mpconv.0 is the max pool) */
        aqa_module *blk = aqa_module_container(&s->base, block_names[b]);
        if (!blk) goto fail;
        s->blocks[b] = blk;
        aqa_module *dc;
        if (b == 0) {
            dc = aqa_module_container(blk, "conv");
        } else {
            aqa_module *mp = aqa_module_container(blk, "mpconv");
            dc = mp ? aqa_module_container(mp, "1") : NULL;
        }
        aqa_module *seq = dc ? aqa_module_container(dc, "conv") : NULL;
        if (!seq) goto fail;
        int64_t cin = ch[b], cout = ch[b + 1];
        if (!(s->conv[b][0] = aqa_conv1d_layer_new(seq, "0", cin, cout, 3, 1, 1, 1, 1, true))) goto fail;
        if (!(s->bn[b][0] = aqa_batch_norm1d_layer_new(seq, "1", cout))) goto fail;
        if (!(s->conv[b][1] = aqa_conv1d_layer_new(seq, "3", cout, cout, 3, 1, 1, 1, 1, true))) goto fail;
        if (!(s->bn[b][1] = aqa_batch_norm1d_layer_new(seq, "4", cout))) goto fail;
    }
    aqa_module *tas = aqa_module_container(&s->base, "tas");
    if (!tas) goto fail;
    if (!(s->mlp[0] = aqa_linear_layer_new(tas, "layer1", s->width, hidden1, true))) goto fail;
    if (!(s->mlp[1] = aqa_linear_layer_new(tas, "layer2", hidden1, hidden2, true))) goto fail;
    if (!(s->mlp[2] = aqa_linear_layer_new(tas, "layer3", hidden2, num_boundaries, true))) goto fail;
    return s;
fail:
    if (!parent) aqa_module_free(&s->base);
    return NULL;
}

aqa_status aqa_mvla_segmentation_forward(aqa_mvla_segmentation *s, aqa_tensor *i3d, aqa_tensor **frames,
                                         aqa_tensor **prob) {
    if (!s || !i3d || !frames || !prob) return aqa_fail(AQA_EINVAL, "aqa_mvla_segmentation_forward: NULL argument");
    *frames = *prob = NULL;
    if (i3d->ndim != 3 || i3d->shape[1] != s->conv[0][0]->in_channels || i3d->shape[2] != s->width * 16) {
        char buf[64];
        return aqa_fail(AQA_EINVAL, "segmentation: i3d features %s, expected [B, %lld, %lld]",
                        aqa_shape_str(i3d, buf, sizeof buf), (long long)s->conv[0][0]->in_channels,
                        (long long)(s->width * 16));
    }
    aqa_scope_begin();
    aqa_tensor *x = i3d;
    for (int b = 0; b < 5; b++) {
        if (b > 0) x = aqa_max_pool1d(x, 2, 2, 0, 1, false);
        for (int j = 0; j < 2; j++)
            x = aqa_relu(aqa_batch_norm_layer_forward(s->bn[b][j], aqa_conv_layer_forward(s->conv[b][j], x)));
    }
    aqa_tensor *h = aqa_relu(aqa_linear_layer_forward(s->mlp[0], x));
    h = aqa_relu(aqa_linear_layer_forward(s->mlp[1], h));
    aqa_tensor *p = aqa_sigmoid(aqa_linear_layer_forward(s->mlp[2], h));
    if (!x || !p) {
        aqa_scope_end();
        return aqa_fail(aqa_last_status() ? aqa_last_status() : AQA_EINVAL, "segmentation: %s", aqa_last_error());
    }
    *frames = aqa_keep(x);
    *prob = aqa_keep(p);
    aqa_scope_end();
    return AQA_OK;
}

aqa_tensor *aqa_mvla_select_boundaries(aqa_tensor *prob) {
    if (!prob || prob->ndim != 3) return aqa_fail_null("aqa_mvla_select_boundaries: prob must be [B, T, L]");
    int64_t B = prob->shape[0], T = prob->shape[1], L = prob->shape[2];
    int64_t num = (int64_t)llround((double)T / (double)L); /* TSA: round(T / L) */
    if (num < 1 || L >= T) return aqa_fail_null("aqa_mvla_select_boundaries: T %lld too small for L %lld", (long long)T,
                                               (long long)L);
    double *p = malloc(sizeof *p * (size_t)(B * T * L));
    int64_t *b = malloc(sizeof *b * (size_t)(B * L + 1));
    if (!p || !b || aqa_copy_to_host(prob, p, AQA_F64) != AQA_OK) {
        free(p);
        free(b);
        return aqa_fail_null("aqa_mvla_select_boundaries: %s", aqa_last_error());
    }
    for (int64_t i = 0; i < B; i++) {
        int64_t prev = 0;
        for (int64_t l = 0; l < L; l++) {
            int64_t lo = l * num, hi = (l + 1) * num < T ? (l + 1) * num : T, best = lo < T ? lo : T - 1;
            for (int64_t t = lo; t < hi; t++)
                if (p[(i * T + t) * L + l] > p[(i * T + best) * L + l]) best = t; /* first maximum */
            /* TSA moves a boundary at frame 0 to 1; we also keep stages non-empty in general */
            if (best <= prev) best = prev + 1;
            if (best > T - (L - l)) best = T - (L - l);
            b[i * L + l] = best;
            prev = best;
        }
    }
    free(p);
    aqa_tensor *r = aqa_from_data(b, 2, (int64_t[]){B, L}, AQA_I64);
    free(b);
    return r;
}

aqa_tensor *aqa_mvla_boundary_target(const aqa_tensor *boundaries, int64_t T, aqa_dtype dtype) {
    if (!boundaries || boundaries->ndim != 2 || boundaries->dtype != AQA_I64)
        return aqa_fail_null("aqa_mvla_boundary_target: boundaries must be I64 [B, L]");
    int64_t B = boundaries->shape[0], L = boundaries->shape[1];
    int64_t *b = malloc(sizeof *b * (size_t)(B * L + 1));
    double *m = calloc((size_t)(B * T * L + 1), sizeof *m);
    if (!b || !m || aqa_copy_to_host(boundaries, b, AQA_I64) != AQA_OK) {
        free(b);
        free(m);
        return aqa_fail_null("aqa_mvla_boundary_target: %s", aqa_last_error());
    }
    for (int64_t i = 0; i < B; i++)
        for (int64_t l = 0; l < L; l++) {
            int64_t t = b[i * L + l];
            if (t >= 0 && t < T) m[(i * T + t) * L + l] = 1.0;
        }
    free(b);
    aqa_tensor *r = aqa_from_data(m, 3, (int64_t[]){B, T, L}, AQA_F64);
    free(m);
    if (r && dtype != AQA_F64) {
        aqa_tensor *c = aqa_to_dtype(r, dtype);
        aqa_tensor_free(r);
        r = c;
    }
    return r;
}

bool aqa_mvla_teacher_forcing(const aqa_mvla_config *cfg, int epoch, int max_epoch) {
    if (!cfg || max_epoch <= 0) return false;
    return (double)epoch / (double)max_epoch <= cfg->teacher_forcing_fraction;
}
