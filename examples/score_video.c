/* score_video.c: a trained model (train_mvla's checkpoint) judging a video file.
 *
 *     examples/score_video --checkpoint runs/mvla/best.safetensors --clip clip.safetensors
 *                          --i3d i3d.safetensors --dive 407C video.mp4
 *                          [--start S --end E] [--json FILE|-] [--report DIR] [--ensemble run1,run2,...]
 *
 * The checkpoint's settings rebuild the model exactly as evaluate does (run_checkpoint_settings,
 * run_open, run_load_weights in mvla_run.h): its dataset, texts and training split (the exemplar
 * pool of contrastive heads, never the test split) must still be where it was trained (or give
 * --data / --features).  The video (any container/codec FFmpeg reads; --start/--end in seconds
 * trim it) is sampled as the model's training videos were (FineDiving: T = 96 frames spread over
 * it, N = 9 clips of 16), resized to the height of the training frames first (found from the
 * training data, or --video-height), and fed through the same encoders: in feature mode the CLIP
 * image encoder and the I3D that extract_features used (--clip, --i3d and the I3D input size
 * default to those recorded in the feature cache; a random I3D is rebuilt from its width, seed and
 * calibration), in frame mode the checkpoint's own.
 *
 * --dive gives the dive number whose stage texts MVLA attends to (and the exemplars' dive number
 * under 'w/ DN'); its difficulty comes from --difficulty or from a training dive of that number.
 * A dive number absent from the training texts is embedded with the CLIP text encoder (needs
 * --vocab or --bpe).
 *
 * Prints "name value" lines (score, boundaries), then the predicted stage boundaries in seconds and
 * frames (FAM: the argmax of each half of the boundary probabilities, TSA's rule) and, for MVLA
 * models, the stage texts each predicted stage is closest to in MVLA's vision-language space: the
 * cosine between the stage's pooled VLP feature and each training stage text, which the
 * stage-level VLKL term trains.  --json writes the same as JSON ("-": stdout); --report DIR writes
 * DIR/report.png: key frames of each stage in a strip, the boundary probabilities over time, the
 * score, and the exemplar when the head is contrastive.  --ensemble runs several checkpoints (run
 * folders use their best.safetensors, else last) and reports the mean score with the spread
 * (min..max, standard deviation) as an interval; the boundaries come from the mean probabilities. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "datasets/feature_cache.h"
#include "datasets/fina.h"
#include "eval/plot.h"
#include "examples/mvla_run.h"
#include "image/canvas.h"
#include "image/video.h"
#include "io/atomic_file.h"
#include "models/mvla/stages.h"

#define SV_MAX_MEMBERS 32
#define SV_TOPK 3          /* stage texts listed per stage */
#define SV_STAGE_THUMBS 4  /* key frames per stage in the report */
#define SV_EX_THUMBS 6     /* key frames of the exemplar */

/* The video being scored. */
typedef struct sv_video {
    const char *path;  /* file */
    double fps;        /* frames per second */
    int64_t n_frames;  /* exact count */
    int64_t first;     /* first frame scored (0-based) */
    int64_t last;      /* last frame scored */
    int height;        /* rows frames are resized to first (0: as decoded) */
    char why_height[160]; /* where that height came from */
} sv_video;

/* What one model said. */
typedef struct sv_result {
    char checkpoint[1024];   /* the checkpoint file */
    char model[96];          /* "tsa-MVLA" */
    double score;            /* predicted score */
    int64_t T;               /* sampled frames */
    int64_t frames[512];     /* video frame index of each sampled frame */
    bool fam;                /* boundary probabilities exist */
    float *prob;             /* [T, 2] boundary probabilities (FAM), or NULL */
    int64_t b[2];            /* predicted boundaries (sampled positions) */
    int n_terms;             /* stage texts per stage found (0: not an MVLA FAM model) */
    char terms[3][SV_TOPK][AQA_TEXT_MAX];
    double term_sim[3][SV_TOPK];
    int n_ex;                /* exemplars averaged (contrastive heads) */
    char ex_key[16][128];    /* their keys (the first 16) */
    char ex_dive[16][8];     /* dive numbers */
    double ex_score[16];     /* scores */
    aqa_image *ex_frames[SV_EX_THUMBS]; /* key frames of the first exemplar (or NULL) */
    char dive[16];           /* dive number used ("" none) */
    double difficulty;       /* difficulty used (0 none) */
} sv_result;

/* Query features of feature mode, kept across ensemble members that share the encoders. */
typedef struct sv_cache {
    char key[4096];   /* encoders, sampling and video they were computed with ("" empty) */
    float *clip;      /* [T, D] */
    float *i3d;       /* [N, C] */
    float *map;       /* [N, C, MH, MW] time-averaged Mixed_5c maps (TSA's keys), or NULL */
    int64_t T, D, N, C, MH, MW;
} sv_cache;

static const char *stage_name(int s) { return s == 0 ? "take-off" : s == 1 ? "flight" : "entry"; }

static void sv_result_free(sv_result *r) {
    free(r->prob);
    for (int k = 0; k < SV_EX_THUMBS; k++) aqa_image_free(r->ex_frames[k]);
    memset(r, 0, sizeof *r);
}

/* ---- arguments ------------------------------------------------------------------------------ */

/* score_video's own settings (beside run_def_keys). */
static void sv_def_keys(kv_config *c) {
    kv_def(c, "checkpoint", "", "checkpoint written by train_mvla (or a run folder)");
    kv_def(c, "ensemble", "", "comma-separated checkpoints or run folders (e.g. the seeds of one setting)");
    kv_def(c, "video", "", "the video file (or give it as the last argument)");
    kv_def(c, "dive", "", "dive number (407C): the stage texts MVLA uses, the exemplars' dive under w/DN");
    kv_def_num(c, "difficulty", "0", 0, 100, "degree of difficulty (0 = from a training dive of the same number)");
    kv_def(c, "start", "", "score from this time (seconds; \"\" = the start)");
    kv_def(c, "end", "", "score up to this time (seconds; \"\" = the end)");
    kv_def_bool(c, "video_height_auto", "true", "resize frames to the training frames' height when --video-height is 0");
    kv_def(c, "json", "", "write the result as JSON to this file (\"-\" = stdout)");
    kv_def(c, "report", "", "write report.png (key frames, boundary probabilities, score, exemplar) in this folder");
    kv_def(c, "i3d_seed", "", "random I3D of the feature cache: its seed (default: the cache's)");
    kv_def(c, "i3d_calibrate", "", "random I3D: calibration videos (default: the cache's)");
    kv_def_bool(c, "progress", "false", "progress lines on stderr");
}

/* A run folder means its best.safetensors (else last.safetensors). */
static void resolve_checkpoint(const char *given, char *out, size_t size) {
    struct stat sb;
    if (stat(given, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(out, size, "%.900s/best.safetensors", given);
        if (stat(out, &sb) != 0) snprintf(out, size, "%.900s/last.safetensors", given);
    } else {
        snprintf(out, size, "%s", given);
    }
}

/* ---- the video ------------------------------------------------------------------------------ */

static int open_video(kv_config *c, sv_video *v) {
    aqa_video *vid = aqa_video_open(v->path);
    if (!vid) return 1;
    const aqa_video_info *in = aqa_video_get_info(vid);
    v->fps = in->fps;
    int rc = aqa_video_count_frames(vid, &v->n_frames) != AQA_OK;
    v->first = 0;
    v->last = v->n_frames - 1;
    if (!rc && kv_has(c, "start")) v->first = aqa_video_frame_of_time(vid, kv_double(c, "start"));
    if (!rc && kv_has(c, "end")) {
        int64_t e = aqa_video_frame_of_time(vid, kv_double(c, "end"));
        v->last = e < v->last ? e : v->last;
    }
    if (!rc && (v->first < 0 || v->first > v->last))
        rc = aqa_fail(AQA_EINVAL, "%s: --start %s / --end %s leave no frame of its %lld (%.2f s)", v->path,
                      kv_str(c, "start"), kv_str(c, "end"), (long long)v->n_frames, (double)v->n_frames / v->fps) != 0;
    aqa_video_close(vid);
    return rc;
}

/* The T frames the model's sampling takes from [first, last] (video frame indices). */
static int sample_frames(const aqa_video_dataset *ds, const sv_video *v, int64_t *out) {
    int64_t n = v->last - v->first + 1, T = ds->T;
    if (T > 512) return aqa_fail(AQA_EUNSUPPORTED, "the model samples %lld frames (at most 512 here)", (long long)T) != 0;
    if (ds->sampling == AQA_VD_SAMPLE_ENDING) {
        if (n < T)
            return aqa_fail(AQA_EINVAL, "%s: %lld frames scored, the model takes the last %lld", v->path, (long long)n,
                            (long long)T) != 0;
        for (int64_t t = 0; t < T; t++) out[t] = v->last - (T - 1) + t;
    } else {
        aqa_vd_linspace_int(v->first, v->last, T, out);
    }
    return 0;
}

/* Height of the training frames (their first item's first frame), or 0 when none is readable. */
static int training_frame_height(const aqa_video_dataset *ds) {
    if (!ds->n_items || ds->manifest->dataset == AQA_ANN_JIGSAWS || ds->manifest->dataset == AQA_ANN_FISV) return 0;
    const aqa_vd_item *it = &ds->items[0];
    if (it->video[0]) return ds->cfg.video_height;
    char p[1200], q[1300];
    if (aqa_vd_frame_path(ds, 0, 0, 0, p, sizeof p)) return 0;
    const char *exts[] = {"", ".jpg", ".png", ".jpeg"};
    for (int e = it->ext[0] ? 0 : 1; e < 4; e++) {
        snprintf(q, sizeof q, "%s%s", p, exts[e]);
        aqa_image *im = access(q, R_OK) == 0 ? aqa_image_load(q) : NULL;
        if (im) {
            int h = im->height;
            aqa_image_free(im);
            return h;
        }
        if (e == 0) break;
    }
    aqa_clear_error();
    return 0;
}

/* Frame t (sampled position) of training item i: from its frame file or its video; NULL when
 * neither is readable (the report then shows none). */
static aqa_image *item_frame(const aqa_video_dataset *ds, size_t i, int64_t t) {
    const aqa_vd_item *it = &ds->items[i];
    aqa_image *im = NULL;
    if (it->video[0]) {
        aqa_video *v = aqa_video_open(it->video);
        const aqa_image *f = NULL;
        if (v && aqa_video_seek_frame(v, it->frames[t] - it->video_base) == AQA_OK && aqa_video_next(v, &f, NULL) == AQA_OK &&
            f)
            im = aqa_image_copy(f);
        aqa_video_close(v);
    } else {
        char p[1200], q[1300];
        if (aqa_vd_frame_path(ds, i, t, 0, p, sizeof p) == AQA_OK) {
            const char *exts[] = {"", ".jpg", ".png"};
            for (int e = it->ext[0] ? 0 : 1; e < 3 && !im; e++) {
                snprintf(q, sizeof q, "%s%s", p, exts[e]);
                if (access(q, R_OK) == 0) im = aqa_image_load(q);
                if (e == 0) break;
            }
        }
    }
    aqa_clear_error();
    return im;
}

/* ---- query inputs ---------------------------------------------------------------------------- */

/* The feature cache's note of how its features were made (extract_features' "encoder"). */
typedef struct sv_encoder {
    char clip[1024];   /* CLIP weights */
    char i3d[1024];    /* I3D weights, "" = random */
    double width;      /* random I3D width */
    long seed;         /* its seed */
    long calibrate;    /* its calibration videos */
    long i3d_short, i3d_size; /* I3D input */
    long video_height; /* frames resized first */
} sv_encoder;

/* Value of "name=" in the note (up to the next " x=" or the end) into buf. */
static bool note_field(const char *note, const char *name, char *buf, size_t size) {
    char pat[32];
    snprintf(pat, sizeof pat, "%s=", name);
    const char *p = note;
    while ((p = strstr(p, pat)) && p != note && p[-1] != ' ') p++;
    if (!p) return false;
    p += strlen(pat);
    const char *e = p;
    while (*e) { /* the value ends where " <word>=" starts */
        if (*e == ' ') {
            const char *w = e + 1;
            while (*w && *w != ' ' && *w != '=') w++;
            if (*w == '=') break;
        }
        e++;
    }
    snprintf(buf, size, "%.*s", (int)(e - p), p);
    return true;
}

/* The encoders of feature mode: flags given on the command line, else the cache's note. */
static int feature_encoders(run_ctx *r, kv_config *c, kv_config *cmd, sv_encoder *e) {
    memset(e, 0, sizeof *e);
    char path[1400], v[1024];
    const char *note = NULL;
    aqa_st_file *f = NULL;
    if (aqa_feature_cache_path(kv_str(c, "features"), aqa_vd_sample(r->train, 0)->key, path, sizeof path) == AQA_OK &&
        aqa_st_open(path, &f) == AQA_OK)
        note = aqa_st_metadata(f, "encoder");
    aqa_clear_error();
    e->width = 0;
    e->seed = 0;
    e->calibrate = 8;
    e->i3d_short = 128;
    e->i3d_size = 112;
    if (note) {
        if (note_field(note, "clip", v, sizeof v)) snprintf(e->clip, sizeof e->clip, "%s", v);
        if (note_field(note, "i3d", v, sizeof v) && strcmp(v, "random")) snprintf(e->i3d, sizeof e->i3d, "%s", v);
        if (note_field(note, "width", v, sizeof v)) e->width = strtod(v, NULL);
        if (note_field(note, "seed", v, sizeof v)) e->seed = strtol(v, NULL, 10);
        if (note_field(note, "cal", v, sizeof v)) e->calibrate = strtol(v, NULL, 10);
        if (note_field(note, "vh", v, sizeof v)) e->video_height = strtol(v, NULL, 10);
        if (note_field(note, "size", v, sizeof v)) sscanf(v, "%ld/%ld", &e->i3d_short, &e->i3d_size);
    }
    aqa_st_close(f);
    if (kv_given(cmd, "clip")) snprintf(e->clip, sizeof e->clip, "%s", kv_str(c, "clip"));
    if (kv_given(cmd, "i3d")) snprintf(e->i3d, sizeof e->i3d, "%s", kv_str(c, "i3d"));
    if (kv_given(cmd, "i3d_width")) e->width = kv_double(c, "i3d_width");
    if (kv_given(cmd, "i3d_seed")) e->seed = kv_int(c, "i3d_seed");
    if (kv_given(cmd, "i3d_calibrate")) e->calibrate = kv_int(c, "i3d_calibrate");
    if (kv_given(cmd, "i3d_short")) e->i3d_short = kv_int(c, "i3d_short");
    if (kv_given(cmd, "i3d_size")) e->i3d_size = kv_int(c, "i3d_size");
    if (!e->clip[0] && r->mcfg.use_vlp)
        return aqa_fail(AQA_EINVAL, "give --clip: the CLIP weights the features were extracted with (%s records none)",
                        path) != 0;
    if (!e->i3d[0] && !(e->width > 0))
        return aqa_fail(AQA_EINVAL, "give --i3d: the I3D weights the features were extracted with (%s records none)", path) != 0;
    return 0;
}

/* Query features in feature mode: the CLIP image features [T, D] of the sampled frames and the I3D
 * features [N, C] of the clips, computed as extract_features computes them (and cached). */
static int feature_query(run_ctx *r, const sv_encoder *e, const sv_video *v, const int64_t *frames, sv_cache *cache) {
    aqa_video_dataset *ds = r->train;
    char key[4096];
    snprintf(key, sizeof key, "%s|%s|%g|%ld|%ld|%ld/%ld|%s|%d|%lld|%lld|%lld|%lld|%d", e->clip, e->i3d, e->width, e->seed,
             e->calibrate, e->i3d_short, e->i3d_size, v->path, v->height, (long long)frames[0],
             (long long)frames[ds->T - 1], (long long)ds->T, (long long)ds->N, (int)r->maps);
    if (!strcmp(key, cache->key)) return 0;
    free(cache->clip);
    free(cache->i3d);
    free(cache->map);
    memset(cache, 0, sizeof *cache);
    int rc = 1;
    aqa_clip_model *clip = NULL;
    aqa_i3d *i3d = NULL;
    aqa_video_dataset *cal = NULL;
    float *pix = NULL;
    bool prev = aqa_set_grad_enabled(false);
    const int64_t T = ds->T, N = ds->N, L = ds->clip_len;
    if (e->clip[0]) {
        if (aqa_clip_load(e->clip, &clip)) goto done;
        aqa_module_train(&clip->base, false);
        const int64_t R = clip->cfg.image_resolution, D = clip->cfg.embed_dim;
        aqa_frame_transform tf = aqa_frame_transform_clip((int)R);
        if (!(pix = malloc((size_t)(T * 3 * R * R) * sizeof *pix)) || !(cache->clip = malloc((size_t)(T * D) * sizeof(float))))
            goto done;
        if (aqa_vd_decode_video(ds, v->path, frames, &tf, false, NULL, pix)) goto done;
        for (int64_t f0 = 0; f0 < T; f0 += 96) { /* extract_features' --batch */
            int64_t n = T - f0 < 96 ? T - f0 : 96;
            aqa_scope_begin();
            aqa_tensor *x = aqa_from_data(pix + f0 * 3 * R * R, 4, (int64_t[]){n, 3, R, R}, AQA_F32);
            aqa_tensor *y = aqa_clip_encode_image(clip, x, true);
            aqa_status st = y ? aqa_copy_to_host(y, cache->clip + f0 * D, AQA_F32) : aqa_last_status();
            aqa_scope_end();
            if (st) goto done;
        }
        cache->T = T;
        cache->D = D;
        free(pix);
        pix = NULL;
    }
    aqa_frame_transform tf = aqa_frame_transform_i3d((int)e->i3d_short, (int)e->i3d_size);
    if (!e->i3d[0] && e->calibrate > 0) { /* extract_features calibrated on the training frames */
        aqa_vd_config cc = ds->cfg;
        cc.features_dir = NULL;
        cc.video_height = (int)e->video_height;
        cc.quiet = true;
        if (!(cal = aqa_video_dataset_open(&cc))) goto done;
    }
    if (!(i3d = open_feature_i3d(e->i3d, e->width, (uint64_t)e->seed, (int)e->calibrate, cal, &tf))) goto done;
    const int64_t S = e->i3d_size, C = i3d->feature_dim;
    if (!(pix = malloc((size_t)(N * 3 * L * S * S) * sizeof *pix)) || !(cache->i3d = malloc((size_t)(N * C) * sizeof(float))))
        goto done;
    if (aqa_vd_decode_video(ds, v->path, frames, &tf, true, NULL, pix)) goto done;
    aqa_scope_begin();
    aqa_tensor *x = aqa_from_data(pix, 5, (int64_t[]){N, 3, L, S, S}, AQA_F32), *y = NULL, *ym = NULL;
    /* the maps too where TSA reads them (as extract_features caches them) */
    aqa_status st = r->maps ? aqa_i3d_features_maps(i3d, x, &y, &ym) : (y = aqa_i3d_forward(i3d, x)) ? AQA_OK : aqa_last_status();
    if (!st) st = aqa_copy_to_host(y, cache->i3d, AQA_F32);
    if (!st && ym) {
        cache->MH = ym->shape[2];
        cache->MW = ym->shape[3];
        if (!(cache->map = malloc((size_t)aqa_numel(ym) * sizeof(float)))) st = aqa_fail(AQA_ENOMEM, "out of memory");
        else st = aqa_copy_to_host(ym, cache->map, AQA_F32);
    }
    aqa_scope_end();
    if (st) goto done;
    cache->N = N;
    cache->C = C;
    snprintf(cache->key, sizeof cache->key, "%s", key);
    rc = 0;
done:
    if (rc && !aqa_last_status()) aqa_fail(AQA_ENOMEM, "out of memory");
    aqa_set_grad_enabled(prev);
    free(pix);
    aqa_clip_model_free(clip);
    if (i3d) aqa_i3d_free(i3d);
    aqa_video_dataset_free(cal);
    return rc;
}

/* A caller-owned CPU tensor of the given shape filled with zeros. */
static aqa_tensor *zeros(int ndim, const int64_t *shape, aqa_dtype dt) { return aqa_zeros(ndim, shape, dt); }

/* The query as a batch of one, as the loader would build it (frame or feature inputs). */
static aqa_batch *query_batch(run_ctx *r, kv_config *c, const sv_video *v, const int64_t *frames, const sv_cache *q) {
    aqa_video_dataset *ds = r->train;
    aqa_batch *b = calloc(1, sizeof *b);
    if (!b || !(b->items = calloc(1, sizeof *b->items))) {
        free(b);
        return aqa_fail_null("out of memory");
    }
    b->B = 1;
    const int64_t T = ds->T, N = ds->N, L = ds->clip_len;
    if (r->frames) {
        if (r->clip) {
            int64_t R = r->clip->cfg.image_resolution;
            aqa_frame_transform tf = aqa_frame_transform_clip((int)R);
            b->clip_frames = zeros(5, (int64_t[]){1, T, 3, R, R}, AQA_F32);
            if (!b->clip_frames || aqa_vd_decode_video(ds, v->path, frames, &tf, false, NULL, aqa_data(b->clip_frames)))
                goto fail;
        }
        int S = (int)kv_int(c, "i3d_size");
        aqa_frame_transform tf = aqa_frame_transform_i3d((int)kv_int(c, "i3d_short"), S);
        b->i3d_clips = zeros(6, (int64_t[]){1, N, 3, L, S, S}, AQA_F32);
        if (!b->i3d_clips || aqa_vd_decode_video(ds, v->path, frames, &tf, true, NULL, aqa_data(b->i3d_clips))) goto fail;
    } else {
        if (q->clip && !(b->clip_feat = aqa_from_data(q->clip, 3, (int64_t[]){1, q->T, q->D}, AQA_F32))) goto fail;
        if (!(b->i3d_feat = aqa_from_data(q->i3d, 3, (int64_t[]){1, q->N, q->C}, AQA_F32))) goto fail;
        if (q->map && !(b->i3d_map = aqa_from_data(q->map, 5, (int64_t[]){1, q->N, q->C, q->MH, q->MW}, AQA_F32)))
            goto fail;
        if (q->C != ds->feat_i3d_dim || (b->clip_feat && q->D != ds->feat_clip_dim)) {
            aqa_fail(AQA_EFORMAT, "the encoders give features of width %lld / %lld, the model was trained on %lld / %lld "
                     "(give the --clip and --i3d the features were extracted with)", (long long)q->D, (long long)q->C,
                     (long long)ds->feat_clip_dim, (long long)ds->feat_i3d_dim);
            goto fail;
        }
    }
    b->score = zeros(1, (int64_t[]){1}, AQA_F32);
    b->difficulty = zeros(1, (int64_t[]){1}, AQA_F32);
    b->stage_text_ids = zeros(2, (int64_t[]){1, 3}, AQA_I64);
    b->video_text_ids = zeros(1, (int64_t[]){1}, AQA_I64);
    if (!b->score || !b->difficulty || !b->stage_text_ids || !b->video_text_ids) goto fail;
    return b;
fail:
    aqa_batch_free(b);
    return NULL;
}

/* Id of `text` in a text table of r (stage or video), embedding and appending it with the CLIP
 * text encoder when the training texts lack it. */
static int text_id(run_ctx *r, kv_config *c, const sv_encoder *e, bool stage, const char *text, int64_t *id) {
    aqa_text_set *set = stage ? &r->train->stage_texts : &r->train->video_texts;
    long k = aqa_text_set_find(set, text);
    if (k >= 0) {
        *id = k;
        return 0;
    }
    aqa_clip_model *clip = r->clip;
    const char *clip_path = r->frames ? kv_str(c, "clip") : e->clip;
    if (!clip && (!clip_path[0] || aqa_clip_load(clip_path, &clip)))
        return aqa_fail(AQA_EINVAL, "the text \"%s\" is not among the training texts and no CLIP (--clip) embeds it",
                        text) != 0;
    word_tok tok;
    aqa_text_set one;
    aqa_text_set_init(&one);
    int rc = 1;
    if (wt_load(&tok, kv_str(c, "vocab"), kv_str(c, "bpe"), NULL) == AQA_OK && aqa_text_set_add(&one, text) == AQA_OK) {
        bool prev = aqa_set_grad_enabled(false);
        aqa_tensor *emb = encode_texts(clip, &tok, &one, true);
        aqa_set_grad_enabled(prev);
        aqa_tensor **tab = stage ? &r->stage_text : &r->video_text;
        aqa_tensor *grown = emb ? aqa_cat((aqa_tensor *[]){*tab, to_dev(r, emb)}, 2, 0) : NULL;
        if (grown && aqa_text_set_add(set, text) == AQA_OK) {
            aqa_tensor_free(*tab);
            *tab = grown;
            *id = (int64_t)set->n - 1;
            rc = 0;
        } else {
            aqa_tensor_free(grown);
        }
        aqa_tensor_free(emb);
    } else {
        aqa_fail(aqa_last_status() ? aqa_last_status() : AQA_EINVAL,
                 "the text \"%s\" is not among the training texts; embedding it needs the CLIP's tokenizer (--vocab or --bpe): %s",
                 text, aqa_last_error());
    }
    wt_free(&tok);
    aqa_text_set_free(&one);
    if (clip != r->clip) aqa_clip_model_free(clip);
    return rc;
}

/* Texts, dive and difficulty of the query. */
static int query_labels(run_ctx *r, kv_config *c, const sv_encoder *e, aqa_batch *b, sv_result *res) {
    const aqa_ann_manifest *m = r->train->manifest;
    const char *dive = kv_str(c, "dive");
    snprintf(res->dive, sizeof res->dive, "%.8s", dive);
    res->difficulty = kv_double(c, "difficulty");
    if (dive[0] && res->difficulty <= 0) /* a training dive of this number */
        for (size_t i = 0; i < m->n_samples && res->difficulty <= 0; i++)
            if (!strcasecmp(m->samples[i].dive_number, dive)) res->difficulty = m->samples[i].difficulty;
    if (r->use_dd && !(res->difficulty > 0))
        return aqa_fail(AQA_EINVAL, "the model predicts score / difficulty (w/DD): give --difficulty (or --dive of a "
                        "training dive number)") != 0;
    ((float *)aqa_data(b->difficulty))[0] = (float)res->difficulty;
    if (!r->mcfg.use_vlp) return 0;
    if (m->dataset != AQA_ANN_FINEDIVING && m->dataset != AQA_ANN_MTL_AQA)
        return aqa_fail(AQA_EUNSUPPORTED, "MVLA models of %s use quality-grade texts, which depend on the unknown "
                        "score: scoring a new video is supported for diving models", aqa_ann_dataset_name(m->dataset)) != 0;
    if (!dive[0])
        return aqa_fail(AQA_EINVAL, "this MVLA model attends to the dive's stage texts: give --dive NUMBER (e.g. 407C)") != 0;
    aqa_dive_texts t;
    if (aqa_dive_texts_from_number(dive, &t)) return 1;
    int64_t *ids = aqa_data(b->stage_text_ids);
    for (int s = 0; s < 3; s++) {
        char txt[AQA_TEXT_MAX];
        if (aqa_vd_stage_text(r->train, aqa_dive_texts_stage(&t, s), txt, sizeof txt) ||
            text_id(r, c, e, true, txt, &ids[s]))
            return 1;
    }
    return text_id(r, c, e, false, t.video, (int64_t *)aqa_data(b->video_text_ids));
}

/* ---- scoring ------------------------------------------------------------------------------- */

/* The stage texts closest to each predicted stage in MVLA's space (module m, query vis [1, T, D]). */
static int stage_terms(run_ctx *r, aqa_tensor *vis, aqa_tensor *boundaries, sv_result *res) {
    aqa_mvla *m = r->mvla;
    aqa_tensor *f = aqa_mvla_temporal_forward(m->temporal, vis);
    if (f && m->vis_proj) f = aqa_linear_layer_forward(m->vis_proj, f);
    aqa_tensor *st = f ? aqa_stage_mean(f, boundaries) : NULL; /* [1, 3, D] */
    aqa_tensor *tab = m->text_proj ? aqa_linear_layer_forward(m->text_proj, r->stage_text) : r->stage_text;
    aqa_tensor *sim = st && tab ? aqa_matmul(aqa_select(aqa_mvla_l2_normalize(st), 0, 0),
                                             aqa_transpose(aqa_mvla_l2_normalize(tab), 0, 1))
                                : NULL; /* [3, C] */
    if (!sim) return 1;
    int64_t C = sim->shape[1];
    double *h = malloc((size_t)(3 * C) * sizeof *h);
    if (!h || aqa_copy_to_host(sim, h, AQA_F64)) {
        free(h);
        return 1;
    }
    int k_max = C < SV_TOPK ? (int)C : SV_TOPK;
    for (int s = 0; s < 3; s++) {
        bool *used = calloc((size_t)C, 1);
        for (int k = 0; k < k_max && used; k++) {
            int64_t best = -1;
            for (int64_t j = 0; j < C; j++)
                if (!used[j] && (best < 0 || h[s * C + j] > h[s * C + best])) best = j;
            used[best] = true;
            snprintf(res->terms[s][k], AQA_TEXT_MAX, "%s", aqa_text_set_get(&r->train->stage_texts, (size_t)best));
            res->term_sim[s][k] = h[s * C + best];
        }
        free(used);
    }
    res->n_terms = k_max;
    free(h);
    return 0;
}

/* The model's forward on the query (and its exemplars): score, boundaries, probabilities, terms. */
static int predict(run_ctx *r, kv_config *c, aqa_batch *q, sv_result *res) {
    int rc = 1;
    aqa_exemplar_pool *pool = NULL;
    aqa_batch *eb = NULL;
    size_t picks[64];
    int E = (int)kv_int(c, "eval_exemplars"), distinct = 0;
    if (r->contrastive) {
        if (E < 1 || E > 64) return aqa_fail(AQA_EINVAL, "--eval-exemplars must be 1..64") != 0;
        if (!(pool = aqa_exemplar_pool_new(r->train, r->mode))) return 1;
        aqa_ann_sample s;
        memset(&s, 0, sizeof s);
        s.key = (char *)"(the scored video)";
        snprintf(s.dive_number, sizeof s.dive_number, "%.7s", res->dive);
        s.difficulty = res->difficulty;
        aqa_loader_config lc = run_loader_config(r);
        uint64_t seed = aqa_seed_mix((uint64_t)kv_int(c, "seed"), 0x5C0E);
        if (aqa_exemplar_pick(pool, &s, seed, E, picks, &distinct) ||
            aqa_batch_build(r->train, &lc, picks, (size_t)E, seed, &eb))
            goto done;
        if (eb->B != E) {
            aqa_fail(AQA_EFORMAT, "an exemplar of the training split could not be read");
            goto done;
        }
        res->n_ex = E;
        for (int e = 0; e < E && e < 16; e++) {
            const aqa_ann_sample *x = aqa_vd_sample(r->train, picks[e]);
            snprintf(res->ex_key[e], sizeof res->ex_key[e], "%s", x->key);
            snprintf(res->ex_dive[e], sizeof res->ex_dive[e], "%s", x->dive_number);
            res->ex_score[e] = x->score;
        }
        for (int k = 0; k < SV_EX_THUMBS; k++)
            res->ex_frames[k] = item_frame(r->train, picks[0], (int64_t)k * (r->train->T - 1) / (SV_EX_THUMBS - 1));
    }
    bool prev = aqa_set_grad_enabled(false);
    aqa_module_train(r->root, false);
    aqa_scope_begin();
    aqa_mvla_output oq, oe;
    aqa_head_input qi;
    aqa_tensor *pred = NULL;
    if (run_forward(r, q, NULL, false, false, &oq) || aqa_mvla_head_input(&oq, 0, 1, &qi)) goto out;
    qi.difficulty = to_dev(r, q->difficulty); /* the judges' count is unknown: the head's full panel */
    if (eb) {
        if (run_forward(r, eb, NULL, false, false, &oe)) goto out;
        aqa_head_input ei[64];
        aqa_tensor *es[64];
        for (int e = 0; e < E; e++) {
            if (aqa_mvla_head_input(&oe, e, 1, &ei[e])) goto out;
            ei[e].difficulty = to_dev(r, aqa_narrow(eb->difficulty, 0, e, 1));
            es[e] = to_dev(r, aqa_narrow(eb->score, 0, e, 1));
        }
        /* a group with fewer than E training dives: the distinct ones are averaged */
        int64_t cnt = distinct, one = 1;
        pred = aqa_head_predict_exemplars(r->head, &qi, ei, es, E, aqa_from_data(&cnt, 1, &one, AQA_I64));
    } else {
        pred = aqa_head_predict_exemplars(r->head, &qi, NULL, NULL, 0, NULL);
    }
    if (!pred || aqa_copy_to_host(pred, &res->score, AQA_F64)) goto out;
    res->fam = oq.boundary_prob != NULL;
    if (res->fam) {
        int64_t T = oq.boundary_prob->shape[1];
        if (!(res->prob = malloc((size_t)(T * 2) * sizeof *res->prob)) ||
            aqa_copy_to_host(oq.boundary_prob, res->prob, AQA_F32) || aqa_copy_to_host(oq.pred_boundaries, res->b, AQA_I64))
            goto out;
        if (r->mcfg.use_vlp && r->stage_text) {
            aqa_tensor *vis = NULL;
            if (!r->frames) vis = to_dev(r, q->clip_feat);
            else if (r->clip) {
                aqa_tensor *x = aqa_select(to_dev(r, q->clip_frames), 0, 0);
                aqa_tensor *f = aqa_clip_encode_image(r->clip, x, true);
                vis = f ? aqa_unsqueeze(f, 0) : NULL;
            }
            if (!vis || stage_terms(r, vis, oq.boundaries, res)) goto out;
        }
    }
    rc = 0;
out:
    aqa_scope_end();
    aqa_set_grad_enabled(prev);
done:
    aqa_batch_free(eb);
    aqa_exemplar_pool_free(pool);
    return rc;
}

/* Scores the video with one checkpoint. */
/* `cmd`: the command line's settings (what the user gave overrides the checkpoint's). */
static int score_one(const char *ckpt, kv_config *cmd, int argc, char **argv, sv_video *v, sv_cache *cache,
                     sv_result *res) {
    kv_config c = {.program = "score_video", .positional = "video"};
    run_def_keys(&c);
    sv_def_keys(&c);
    snprintf(res->checkpoint, sizeof res->checkpoint, "%s", ckpt);
    if (run_checkpoint_settings(&c, ckpt)) return 1;
    /* run-time settings are this invocation's */
    kv_set(&c, "device", "cpu", "reset");
    kv_set(&c, "workers", "0", "reset");
    if (kv_parse_args(&c, argc, argv, "")) return aqa_fail(AQA_EINVAL, "bad settings") != 0;
    snprintf(res->model, sizeof res->model, "%.60s%s", kv_str(&c, "head"), kv_bool(&c, "mvla") ? "-MVLA" : "");
    run_ctx r;
    int rc = 1;
    aqa_batch *q = NULL;
    if (run_open(&r, &c, false)) goto done;
    if (run_load_weights(&r, ckpt)) goto done;
    if (r.texts) { /* never trained here: the tables as plain tensors, which text_id can grow */
        bool prev = aqa_set_grad_enabled(false);
        aqa_tensor *st = NULL, *vt = NULL;
        aqa_status ts = aqa_mvla_text_tables_get(r.texts, &st, &vt);
        if (ts == AQA_OK) {
            r.stage_text = aqa_clone(st);
            r.video_text = aqa_clone(vt);
        }
        aqa_set_grad_enabled(prev);
        aqa_mvla_text_tables_free(r.texts);
        r.texts = NULL;
        if (ts != AQA_OK || !r.stage_text || !r.video_text) goto done;
    }
    aqa_video_dataset *ds = r.train;
    /* frames resized first to the height of the training frames */
    int vh = (int)kv_int(&c, "video_height");
    sv_encoder enc;
    memset(&enc, 0, sizeof enc);
    if (!r.frames && feature_encoders(&r, &c, cmd, &enc)) goto done;
    if (!r.frames && enc.video_height > 0 && vh <= 0) vh = (int)enc.video_height;
    if (vh > 0) snprintf(v->why_height, sizeof v->why_height, "the model's video height");
    if (vh <= 0 && kv_bool(&c, "video_height_auto") && (vh = training_frame_height(ds)) > 0)
        snprintf(v->why_height, sizeof v->why_height, "the height of the training frames");
    if (kv_given(cmd, "video_height")) {
        vh = (int)kv_int(&c, "video_height");
        snprintf(v->why_height, sizeof v->why_height, "--video-height");
    }
    v->height = vh;
    ds->cfg.video_height = vh;
    res->T = ds->T;
    if (sample_frames(ds, v, res->frames)) goto done;
    if (!r.frames && feature_query(&r, &enc, v, res->frames, cache)) goto done;
    if (!(q = query_batch(&r, &c, v, res->frames, cache))) goto done;
    if (query_labels(&r, &c, &enc, q, res) || predict(&r, &c, q, res)) goto done;
    rc = 0;
done:
    aqa_batch_free(q);
    run_free(&r);
    return rc;
}

/* ---- output -------------------------------------------------------------------------------- */

/* The combined result: mean score, spread, boundaries of the mean probabilities. */
typedef struct sv_summary {
    int n;                  /* members */
    double score, sd, lo, hi;
    float *prob;            /* [T, 2] mean probabilities (FAM) or NULL */
    int64_t b[2];           /* boundaries (sampled positions), -1 without */
} sv_summary;

static int summarise(sv_result *res, int n, sv_summary *s) {
    memset(s, 0, sizeof *s);
    s->n = n;
    s->lo = INFINITY;
    s->hi = -INFINITY;
    for (int i = 0; i < n; i++) {
        s->score += res[i].score / n;
        s->lo = fmin(s->lo, res[i].score);
        s->hi = fmax(s->hi, res[i].score);
    }
    for (int i = 0; i < n && n > 1; i++) s->sd += (res[i].score - s->score) * (res[i].score - s->score) / (n - 1);
    s->sd = sqrt(s->sd);
    s->b[0] = s->b[1] = -1;
    if (!res[0].fam) return 0;
    int64_t T = res[0].T;
    if (!(s->prob = calloc((size_t)(2 * T), sizeof *s->prob))) return 1;
    for (int i = 0; i < n; i++)
        for (int64_t k = 0; k < 2 * T; k++) s->prob[k] += res[i].prob[k] / (float)n;
    if (n == 1) {
        s->b[0] = res[0].b[0];
        s->b[1] = res[0].b[1];
        return 0;
    }
    aqa_tensor *p = aqa_from_data(s->prob, 3, (int64_t[]){1, T, 2}, AQA_F32);
    aqa_tensor *b = p ? aqa_mvla_select_boundaries(p) : NULL; /* TSA's rule on the mean */
    int rc = !b || aqa_copy_to_host(b, s->b, AQA_I64);
    aqa_tensor_free(p);
    aqa_tensor_free(b);
    return rc;
}

/* Stage s covers sampled positions [lo, hi); its video frames and times. */
static void stage_span(const sv_result *r, const sv_summary *s, int st, int64_t *lo, int64_t *hi) {
    *lo = st == 0 ? 0 : s->b[st - 1];
    *hi = st == 2 ? r->T : s->b[st];
}

static double time_of(const sv_video *v, int64_t frame) { return (double)frame / v->fps; }

static void print_text(const sv_video *v, sv_result *res, int n, const sv_summary *s) {
    const sv_result *r = &res[0];
    printf("score %.4f\n", s->score);
    if (n > 1) printf("score_min %.4f\nscore_max %.4f\nscore_sd %.4f\n", s->lo, s->hi, s->sd);
    for (int l = 0; l < 2 && s->b[0] >= 0; l++)
        printf("boundary%d_seconds %.3f\nboundary%d_frame %lld\n", l + 1, time_of(v, r->frames[s->b[l]]), l + 1,
               (long long)r->frames[s->b[l]]);
    printf("\n%s: %.2f s at %.3g fps (%lld frames); scored %.2f-%.2f s (frames %lld-%lld)", v->path,
           (double)v->n_frames / v->fps, v->fps, (long long)v->n_frames, time_of(v, v->first), time_of(v, v->last),
           (long long)v->first, (long long)v->last);
    if (v->height > 0) printf(", resized to %d rows (%s)", v->height, v->why_height);
    printf("\n");
    printf("model %s (%s)%s%s%s", r->model, r->checkpoint, r->dive[0] ? ", dive " : "", r->dive, r->difficulty > 0 ? "" : "\n");
    if (r->difficulty > 0) printf(" (difficulty %.2g)\n", r->difficulty);
    if (n > 1) {
        printf("predicted score %.2f, interval [%.2f, %.2f] over %d runs (sd %.2f):", s->score, s->lo, s->hi, n, s->sd);
        for (int i = 0; i < n; i++) printf(" %.2f", res[i].score);
        printf("\n");
    } else {
        printf("predicted score %.2f\n", s->score);
    }
    if (s->b[0] >= 0) {
        for (int st = 0; st < 3; st++) {
            int64_t lo, hi;
            stage_span(r, s, st, &lo, &hi);
            printf("stage %d %-8s %6.2f-%6.2f s (frames %lld-%lld)", st + 1, stage_name(st), time_of(v, r->frames[lo]),
                   time_of(v, r->frames[hi - 1]), (long long)r->frames[lo], (long long)r->frames[hi - 1]);
            for (int k = 0; k < r->n_terms; k++) printf("%s \"%s\" %.2f", k ? "," : ":", r->terms[st][k], r->term_sim[st][k]);
            printf("\n");
        }
    }
    if (r->n_ex) {
        double lo = INFINITY, hi = -INFINITY;
        for (int e = 0; e < r->n_ex && e < 16; e++) lo = fmin(lo, r->ex_score[e]), hi = fmax(hi, r->ex_score[e]);
        printf("exemplars: %d from the training split (scores %.2f-%.2f), the first %s (dive %s, score %.2f)\n", r->n_ex, lo, hi,
               r->ex_key[0], r->ex_dive[0], r->ex_score[0]);
    }
}

static cJSON *json_result(const sv_video *v, sv_result *res, int n, const sv_summary *s) {
    const sv_result *r = &res[0];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "video", v->path);
    cJSON_AddNumberToObject(o, "fps", v->fps);
    cJSON_AddNumberToObject(o, "frames", (double)v->n_frames);
    cJSON *rg = cJSON_AddObjectToObject(o, "scored");
    cJSON_AddNumberToObject(rg, "first_frame", (double)v->first);
    cJSON_AddNumberToObject(rg, "last_frame", (double)v->last);
    cJSON_AddNumberToObject(rg, "start_seconds", time_of(v, v->first));
    cJSON_AddNumberToObject(rg, "end_seconds", time_of(v, v->last));
    cJSON_AddNumberToObject(rg, "frame_height", v->height);
    cJSON_AddStringToObject(o, "model", r->model);
    if (r->dive[0]) cJSON_AddStringToObject(o, "dive", r->dive);
    if (r->difficulty > 0) cJSON_AddNumberToObject(o, "difficulty", r->difficulty);
    cJSON_AddNumberToObject(o, "score", s->score);
    cJSON *mem = cJSON_AddArrayToObject(o, "runs");
    for (int i = 0; i < n; i++) {
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "checkpoint", res[i].checkpoint);
        cJSON_AddNumberToObject(m, "score", res[i].score);
        cJSON_AddItemToArray(mem, m);
    }
    if (n > 1) {
        cJSON *iv = cJSON_AddObjectToObject(o, "interval");
        cJSON_AddNumberToObject(iv, "min", s->lo);
        cJSON_AddNumberToObject(iv, "max", s->hi);
        cJSON_AddNumberToObject(iv, "sd", s->sd);
    }
    cJSON *sf = cJSON_AddArrayToObject(o, "sampled_frames");
    for (int64_t t = 0; t < r->T; t++) cJSON_AddItemToArray(sf, cJSON_CreateNumber((double)r->frames[t]));
    if (s->b[0] >= 0) {
        cJSON *bs = cJSON_AddArrayToObject(o, "boundaries");
        for (int l = 0; l < 2; l++) {
            cJSON *b = cJSON_CreateObject();
            cJSON_AddNumberToObject(b, "sampled", (double)s->b[l]);
            cJSON_AddNumberToObject(b, "frame", (double)r->frames[s->b[l]]);
            cJSON_AddNumberToObject(b, "seconds", time_of(v, r->frames[s->b[l]]));
            cJSON_AddNumberToObject(b, "probability", s->prob[s->b[l] * 2 + l]);
            cJSON_AddItemToArray(bs, b);
        }
        cJSON *sts = cJSON_AddArrayToObject(o, "stages");
        for (int st = 0; st < 3; st++) {
            int64_t lo, hi;
            stage_span(r, s, st, &lo, &hi);
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "name", stage_name(st));
            cJSON_AddNumberToObject(x, "first_frame", (double)r->frames[lo]);
            cJSON_AddNumberToObject(x, "last_frame", (double)r->frames[hi - 1]);
            cJSON_AddNumberToObject(x, "start_seconds", time_of(v, r->frames[lo]));
            cJSON_AddNumberToObject(x, "end_seconds", time_of(v, r->frames[hi - 1]));
            cJSON *terms = cJSON_AddArrayToObject(x, "closest_texts");
            for (int k = 0; k < r->n_terms; k++) {
                cJSON *t = cJSON_CreateObject();
                cJSON_AddStringToObject(t, "text", r->terms[st][k]);
                cJSON_AddNumberToObject(t, "cosine", r->term_sim[st][k]);
                cJSON_AddItemToArray(terms, t);
            }
            cJSON_AddItemToArray(sts, x);
        }
        cJSON *pr = cJSON_AddArrayToObject(o, "boundary_probability");
        for (int64_t t = 0; t < r->T; t++) {
            float p2[2] = {s->prob[2 * t], s->prob[2 * t + 1]};
            cJSON_AddItemToArray(pr, cJSON_CreateFloatArray(p2, 2));
        }
    }
    if (r->n_ex) {
        cJSON *ex = cJSON_AddArrayToObject(o, "exemplars");
        for (int e = 0; e < r->n_ex && e < 16; e++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "key", r->ex_key[e]);
            cJSON_AddStringToObject(x, "dive", r->ex_dive[e]);
            cJSON_AddNumberToObject(x, "score", r->ex_score[e]);
            cJSON_AddItemToArray(ex, x);
        }
    }
    return o;
}

/* Pastes `im` scaled to w x h at (x, y). */
static void paste(aqa_image *dst, const aqa_image *im, int x, int y, int w, int h) {
    if (!im) {
        aqa_canvas_rect(dst, x, y, w, h, aqa_rgb_make(200, 200, 200));
        return;
    }
    aqa_image *t = aqa_image_resize(im, w, h, AQA_RESAMPLE_BILINEAR);
    for (int yy = 0; t && yy < h; yy++)
        for (int xx = 0; xx < w; xx++) {
            const uint8_t *p = t->data + aqa_image_offset(t, xx, yy);
            aqa_canvas_pixel(dst, x + xx, y + yy, aqa_rgb_make(p[0], p[1], p[2]));
        }
    aqa_image_free(t);
}

/* Key-frame grabbing for the report: the video frames at `want` (sorted), copied. */
typedef struct grab_ctx {
    aqa_image **out; /* one per wanted position */
} grab_ctx;

static aqa_status grab(void *user, size_t k, int64_t index, const aqa_image *im) {
    (void)index;
    grab_ctx *g = user;
    return (g->out[k] = aqa_image_copy(im)) ? AQA_OK : aqa_last_status();
}

static int write_report(const char *dir, const sv_video *v, sv_result *res, int n, const sv_summary *s) {
    const sv_result *r = &res[0];
    if (mkdir_p(dir)) return aqa_fail(AQA_EIO, "%s: cannot create the folder", dir) != 0;
    const bool stages = s->b[0] >= 0;
    const int nk = stages ? 3 * SV_STAGE_THUMBS : 12;
    int64_t want[3 * SV_STAGE_THUMBS];
    for (int k = 0; k < nk; k++) {
        int64_t lo = 0, hi = r->T;
        int st = k / SV_STAGE_THUMBS, j = k % SV_STAGE_THUMBS, m = SV_STAGE_THUMBS;
        if (stages) stage_span(r, s, st, &lo, &hi);
        else st = 0, j = k, m = nk;
        want[k] = r->frames[lo + (hi - 1 - lo) * j / (m - 1)];
    }
    aqa_image *thumb[3 * SV_STAGE_THUMBS] = {0};
    grab_ctx g = {thumb};
    aqa_video *vid = aqa_video_open(v->path);
    int rc = !vid || aqa_video_read_frames(vid, want, (size_t)nk, grab, &g);
    aqa_video_close(vid);
    aqa_image *page = NULL;
    aqa_plot *p = NULL;
    double *x = NULL, *y = NULL;
    if (rc) goto done;
    /* layout: title, the strip, the plot, the exemplar */
    const int W = 1200, M = 16, gap = 6;
    const double aspect = (double)thumb[0]->width / thumb[0]->height;
    int tw = (W - 2 * M - (nk - 1) * gap - 2 * 2 * gap) / nk, th = (int)(tw / aspect);
    if (th > 160) th = 160, tw = (int)(th * aspect);
    const int title_h = 64, strip_y = title_h + 28, terms_h = stages ? 12 * (r->n_terms + 1) : 0;
    const int plot_y = strip_y + th + terms_h + 14, plot_h = s->prob ? 300 : 0;
    const int ex_y = plot_y + plot_h + 16, ex_h = r->n_ex ? th + 40 : 0;
    page = aqa_image_new(W, ex_y + ex_h + M);
    if (!page) {
        rc = 1;
        goto done;
    }
    aqa_canvas_fill(page, AQA_RGB_WHITE);
    char line[1024];
    if (n > 1) snprintf(line, sizeof line, "score %.2f   [%.2f, %.2f] over %d runs", s->score, s->lo, s->hi, n);
    else snprintf(line, sizeof line, "score %.2f", s->score);
    aqa_canvas_text(page, M, 10, line, 3, AQA_RGB_BLACK);
    const char *base = strrchr(v->path, '/') ? strrchr(v->path, '/') + 1 : v->path;
    snprintf(line, sizeof line, "%s  %.2f-%.2f s   model %s%s%s", base, time_of(v, v->first), time_of(v, v->last), r->model,
             r->dive[0] ? "   dive " : "", r->dive);
    if (r->difficulty > 0) snprintf(line + strlen(line), sizeof line - strlen(line), " (DD %.2g)", r->difficulty);
    aqa_canvas_text(page, M, 44, line, 1, aqa_rgb_make(60, 60, 60));
    const aqa_rgb col[3] = {aqa_rgb_make(44, 160, 44), aqa_rgb_make(31, 119, 180), aqa_rgb_make(214, 39, 40)};
    int xk = M;
    for (int k = 0; k < nk; k++) {
        int st = stages ? k / SV_STAGE_THUMBS : 0;
        if (stages && k && k % SV_STAGE_THUMBS == 0) xk += 2 * gap;
        if (stages && k % SV_STAGE_THUMBS == 0) {
            int64_t lo, hi;
            stage_span(r, s, st, &lo, &hi);
            snprintf(line, sizeof line, "%s %.2f-%.2f s", stage_name(st), time_of(v, r->frames[lo]), time_of(v, r->frames[hi - 1]));
            aqa_canvas_text(page, xk, strip_y - 14, line, 1, col[st]);
            for (int t = 0; t < r->n_terms; t++) {
                snprintf(line, sizeof line, "%s %.2f", r->terms[st][t], r->term_sim[st][t]);
                aqa_canvas_text(page, xk, strip_y + th + 8 + 12 * t, line, 1, t ? aqa_rgb_make(90, 90, 90) : AQA_RGB_BLACK);
            }
        }
        paste(page, thumb[k], xk, strip_y, tw, th);
        if (stages) aqa_canvas_rect(page, xk, strip_y + th, tw, 3, col[st]);
        xk += tw + gap;
    }
    if (s->prob) {
        p = aqa_plot_new();
        x = malloc((size_t)r->T * sizeof *x);
        y = malloc((size_t)r->T * sizeof *y);
        if (!p || !x || !y) {
            rc = 1;
            goto done;
        }
        aqa_plot_title(p, n > 1 ? "boundary probabilities (mean over the runs)" : "boundary probabilities");
        aqa_plot_xlabel(p, "seconds");
        aqa_plot_ylabel(p, "probability");
        aqa_plot_xlim(p, time_of(v, r->frames[0]), time_of(v, r->frames[r->T - 1]));
        aqa_plot_legend(p, AQA_LEGEND_OUTSIDE_RIGHT);
        float top = 0;
        for (int64_t k = 0; k < 2 * r->T; k++) top = fmaxf(top, s->prob[k]);
        aqa_plot_ylim(p, 0, top > 0 ? 1.15 * top : 1);
        const char *names[2] = {"P(take-off | flight)", "P(flight | entry)"};
        const char *bn[2] = {"boundary 1", "boundary 2"};
        for (int l = 0; l < 2; l++) {
            for (int64_t t = 0; t < r->T; t++) {
                x[t] = time_of(v, r->frames[t]);
                y[t] = s->prob[2 * t + l];
            }
            aqa_plot_line(p, x, y, (int)r->T, col[l + 1], 2.0, names[l]);
            aqa_plot_vline(p, time_of(v, r->frames[s->b[l]]), col[l + 1], 1.5, 1, bn[l]);
        }
        if (aqa_plot_draw(p, page, M, plot_y, W - 2 * M, plot_h)) {
            rc = 1;
            goto done;
        }
    }
    if (r->n_ex) {
        double lo = INFINITY, hi = -INFINITY;
        for (int e = 0; e < r->n_ex && e < 16; e++) lo = fmin(lo, r->ex_score[e]), hi = fmax(hi, r->ex_score[e]);
        snprintf(line, sizeof line, "exemplar %s (dive %s, score %.2f); the score is the exemplar's plus the predicted "
                 "difference, averaged over %d exemplars (scores %.2f-%.2f)", r->ex_key[0], r->ex_dive[0], r->ex_score[0],
                 r->n_ex, lo, hi);
        aqa_canvas_text(page, M, ex_y, line, 1, AQA_RGB_BLACK);
        for (int k = 0; k < SV_EX_THUMBS; k++) paste(page, r->ex_frames[k], M + k * (tw + gap), ex_y + 16, tw, th);
    }
    char path[1200];
    snprintf(path, sizeof path, "%.1100s/report.png", dir);
    rc = aqa_image_save_png(page, path) != AQA_OK;
    if (!rc) fprintf(stderr, "score_video: wrote %s\n", path);
done:
    for (int k = 0; k < nk; k++) aqa_image_free(thumb[k]);
    aqa_image_free(page);
    aqa_plot_free(p);
    free(x);
    free(y);
    return rc;
}

int main(int argc, char **argv) {
    kv_config c = {.program = "score_video", .positional = "video"};
    run_def_keys(&c);
    sv_def_keys(&c);
    sv_video v;
    memset(&v, 0, sizeof v);
    const char *synopsis = "--checkpoint FILE|--ensemble A,B,... [--clip W --i3d W] [--dive 407C] [--json F] [--report DIR] VIDEO";
    int pr = kv_parse_args(&c, argc, argv, synopsis);
    if (pr) return kv_exit_code(pr);
    const char *video = kv_has(&c, "video") ? kv_str(&c, "video") : NULL;
    if (!video || (!kv_has(&c, "checkpoint") && !kv_has(&c, "ensemble"))) {
        fprintf(stderr, "score_video: give a video and --checkpoint (or --ensemble)\nusage: score_video %s\n", synopsis);
        return 2;
    }
    if (!aqa_video_available()) {
        aqa_video_open(video);
        fprintf(stderr, "score_video: %s\n", aqa_last_error());
        return 1;
    }
    /* the members */
    static char ckpts[SV_MAX_MEMBERS][1024];
    int n = 0;
    char list[8192];
    snprintf(list, sizeof list, "%s", kv_has(&c, "ensemble") ? kv_str(&c, "ensemble") : kv_str(&c, "checkpoint"));
    for (char *tok = strtok(list, ","); tok && n < SV_MAX_MEMBERS; tok = strtok(NULL, ","))
        if (*tok) resolve_checkpoint(tok, ckpts[n++], sizeof ckpts[0]);
    v.path = video;
    sv_result *res = calloc((size_t)n + 1, sizeof *res);
    sv_cache cache;
    memset(&cache, 0, sizeof cache);
    sv_summary sum;
    memset(&sum, 0, sizeof sum);
    int rc = 1;
    if (!res || open_video(&c, &v)) goto done;
    for (int i = 0; i < n; i++) {
        if (n > 1 && kv_bool(&c, "progress")) fprintf(stderr, "score_video: run %d of %d: %s\n", i + 1, n, ckpts[i]);
        if (score_one(ckpts[i], &c, argc, argv, &v, &cache, &res[i])) {
            fprintf(stderr, "score_video: %s: %s\n", ckpts[i], aqa_last_error());
            goto out;
        }
        if (i && (res[i].T != res[0].T || res[i].fam != res[0].fam || memcmp(res[i].frames, res[0].frames, sizeof res[0].frames))) {
            fprintf(stderr, "score_video: %s samples the video differently from %s: an ensemble needs runs of one setting\n",
                    ckpts[i], ckpts[0]);
            goto out;
        }
    }
    if (summarise(res, n, &sum)) goto done;
    print_text(&v, res, n, &sum);
    if (kv_has(&c, "json")) {
        cJSON *o = json_result(&v, res, n, &sum);
        char *txt = o ? cJSON_Print(o) : NULL;
        cJSON_Delete(o);
        aqa_status st = AQA_OK;
        if (!txt) st = aqa_fail(AQA_ENOMEM, "out of memory");
        else if (!strcmp(kv_str(&c, "json"), "-")) printf("%s\n", txt);
        else {
            size_t len = strlen(txt);
            txt[len] = '\n';
            st = aqa_atomic_write_file(kv_str(&c, "json"), txt, len + 1);
        }
        free(txt);
        if (st) goto done;
    }
    if (kv_has(&c, "report") && write_report(kv_str(&c, "report"), &v, res, n, &sum)) goto done;
    rc = 0;
    goto out;
done:
    fprintf(stderr, "score_video: %s\n", aqa_last_error());
out:
    for (int i = 0; res && i < n; i++) sv_result_free(&res[i]);
    free(res);
    free(sum.prob);
    free(cache.clip);
    free(cache.i3d);
    free(cache.map);
    return rc;
}
