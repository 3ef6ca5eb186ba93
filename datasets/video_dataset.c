/* video_dataset.c: opening a split of an AQA dataset as sampled videos (frames, clips, labels,
 * boundaries, texts) and decoding their frames; see video_dataset.h for the rules. */
#include "datasets/video_dataset.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "datasets/exemplar.h"
#include "datasets/feature_cache.h"
#include "datasets/fina.h"
#include "image/image.h"
#include "image/video.h"

void aqa_vd_config_init(aqa_vd_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->dataset = AQA_ANN_FINEDIVING;
    cfg->check_files = true;
}

/* ---- pure sampling rules ------------------------------------------------------------------- */

void aqa_vd_linspace_int(int64_t start, int64_t end, int64_t T, int64_t *out) {
    if (T <= 0) return;
    if (T == 1) {
        out[0] = start;
        return;
    }
    /* numpy.linspace: step = (stop - start) / (num - 1); y = arange(num) * step + start;
     * y[-1] = stop; astype(int) truncates toward zero. */
    double step = (double)(end - start) / (double)(T - 1);
    for (int64_t t = 0; t < T; t++) {
        double v = (double)t * step + (double)start;
        out[t] = (int64_t)v;
    }
    out[T - 1] = end;
}

aqa_status aqa_vd_clip_starts(int64_t T, int64_t N, int64_t clip_len, int64_t stride, int64_t *out) {
    if (T < clip_len || clip_len <= 0 || N <= 0 || N > AQA_VD_MAX_CLIPS || stride < 0)
        return aqa_fail(AQA_EINVAL, "clip starts: need 0 < clip_len (%lld) <= T (%lld), 0 < N (%lld) <= %d",
                        (long long)clip_len, (long long)T, (long long)N, AQA_VD_MAX_CLIPS);
    for (int64_t c = 0; c < N; c++) {
        int64_t s = c * stride;
        out[c] = s < T - clip_len ? s : T - clip_len;
    }
    return AQA_OK;
}

aqa_status aqa_vd_tsa_boundaries(const int64_t *labels, int64_t T, int64_t out[2]) {
    /* positions of first appearance of each distinct label (TSA: frames_catogeries sorted by
     * frames_labels.index, transitions = index of each); TSA's dataset returns transitions - 1 and
     * its runner adds 1 back (label_1_tas = data['transits'] + 1), so the boundaries it trains and
     * evaluates with are the first frames themselves */
    int64_t first_pos[2] = {-1, -1}; /* second distinct label, last distinct label */
    int64_t n_distinct = 0;
    for (int64_t t = 0; t < T; t++) {
        bool seen = false;
        for (int64_t u = 0; u < t && !seen; u++) seen = labels[u] == labels[t];
        if (seen) continue;
        n_distinct++;
        if (n_distinct == 2) first_pos[0] = t;
        first_pos[1] = t;
    }
    if (n_distinct < 3)
        return aqa_fail(AQA_EFORMAT, "sampled frame labels have %lld distinct sub-actions (need 3: take-off, "
                        "flight, entry)", (long long)n_distinct);
    out[0] = first_pos[0];
    out[1] = first_pos[1];
    return AQA_OK;
}

void aqa_vd_frame_stages(const int64_t *b, int64_t L, int64_t T, int64_t *stage) {
    for (int64_t t = 0; t < T; t++) {
        int64_t s = 0;
        while (s < L && t >= b[s]) s++;
        stage[t] = s;
    }
}

void aqa_vd_fum_boundaries(aqa_ann_dataset dataset, int64_t N, int64_t out[AQA_VD_MAX_BOUNDARIES]) {
    /* diving: take-off | flight | entry over 30% | 50% | 20% of a window ending at the entry;
     * no sub-action structure (JIGSAWS, Fis-V): thirds */
    static const double diving[AQA_VD_MAX_BOUNDARIES] = {0.3, 0.8}, thirds[AQA_VD_MAX_BOUNDARIES] = {1.0 / 3, 2.0 / 3};
    const double *f = dataset == AQA_ANN_MTL_AQA || dataset == AQA_ANN_FINEDIVING ? diving : thirds;
    const int64_t L = AQA_VD_MAX_BOUNDARIES;
    memset(out, 0, sizeof(int64_t) * AQA_VD_MAX_BOUNDARIES);
    if (N < L + 1) return;
    for (int64_t l = 0; l < L; l++) {
        int64_t b = llround(f[l] * (double)N), lo = l ? out[l - 1] + 1 : 1, hi = N - (L - l);
        out[l] = b < lo ? lo : b > hi ? hi : b;
    }
}

/* ---- helpers -------------------------------------------------------------------------------- */

static bool file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}
static bool dir_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

bool aqa_vd_find_video(const char *stem, char *buf, size_t size) {
    static const char *const exts[] = {".mp4", ".mkv", ".avi", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts",
                                       ".MP4", ".MKV", ".AVI", ".MOV"};
    for (size_t e = 0; e < sizeof exts / sizeof *exts; e++) {
        int n = snprintf(buf, size, "%s%s", stem, exts[e]);
        if (n > 0 && (size_t)n < size && file_exists(buf)) return true;
    }
    if (size) buf[0] = 0;
    return false;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool is_frame_name(const char *n) {
    size_t l = strlen(n);
    if (l < 5 || n[0] == '.') return false;
    const char *e = n + l - 4;
    return strcasecmp(e, ".jpg") == 0 || strcasecmp(e, ".png") == 0 ||
           (l >= 6 && strcasecmp(n + l - 5, ".jpeg") == 0);
}

/* Sorted full paths of the frame files in dir; *n = 0 when none (or no folder). */
static aqa_status list_frames(const char *dir, char ***out, size_t *n) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return AQA_OK;
    size_t cap = 0;
    struct dirent *e;
    aqa_status st = AQA_OK;
    while ((e = readdir(d))) {
        if (!is_frame_name(e->d_name)) continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 256;
            char **p = realloc(*out, cap * sizeof *p);
            if (!p) {
                st = aqa_fail(AQA_ENOMEM, "%s: out of memory listing frames", dir);
                break;
            }
            *out = p;
        }
        size_t len = strlen(dir) + strlen(e->d_name) + 2;
        char *s = malloc(len);
        if (!s) {
            st = aqa_fail(AQA_ENOMEM, "%s: out of memory listing frames", dir);
            break;
        }
        snprintf(s, len, "%s/%s", dir, e->d_name);
        (*out)[(*n)++] = s;
    }
    closedir(d);
    if (*n) qsort(*out, *n, sizeof **out, cmp_str);
    return st;
}

static void free_item(aqa_vd_item *it) {
    free(it->frames);
    free(it->labels);
    free(it->frame_stage);
    for (size_t k = 0; k < it->n_listing; k++) free(it->listing[k]);
    free(it->listing);
    memset(it, 0, sizeof *it);
}

void aqa_video_dataset_free(aqa_video_dataset *ds) {
    if (!ds) return;
    for (size_t i = 0; i < ds->n_items; i++) free_item(&ds->items[i]);
    free(ds->items);
    aqa_ann_free(ds->manifest);
    aqa_text_set_free(&ds->stage_texts);
    aqa_text_set_free(&ds->video_texts);
    aqa_text_set_free(&ds->dive_classes);
    if (ds->lock) {
        pthread_mutex_destroy((pthread_mutex_t *)ds->lock);
        free(ds->lock);
    }
    free(ds);
}

const aqa_ann_sample *aqa_vd_sample(const aqa_video_dataset *ds, size_t i) {
    return i < ds->n_items ? &ds->manifest->samples[ds->items[i].sample] : NULL;
}

/* "Knot_Tying_B001" -> "knot tying"; Fis-V -> "figure skating". */
static void action_name(const aqa_video_dataset *ds, const aqa_ann_sample *s, char *buf, size_t size) {
    if (ds->manifest->dataset == AQA_ANN_FISV) {
        snprintf(buf, size, "figure skating");
        return;
    }
    const char *u = strrchr(s->key, '_');
    size_t n = u ? (size_t)(u - s->key) : strlen(s->key);
    if (n >= size) n = size - 1;
    for (size_t k = 0; k < n; k++) buf[k] = s->key[k] == '_' ? ' ' : (char)tolower((unsigned char)s->key[k]);
    buf[n] = 0;
}

/* Records a bad video at open: under FAIL returns the error, under SKIP warns and counts. */
static aqa_status bad_at_open(aqa_video_dataset *ds, size_t *counter, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static aqa_status bad_at_open(aqa_video_dataset *ds, size_t *counter, const char *fmt, ...) {
    char msg[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (ds->cfg.policy == AQA_BAD_DATA_FAIL)
        return aqa_fail(AQA_EFORMAT, "%s (bad-data policy: fail; use skip to leave such videos out)", msg);
    (*counter)++;
    if (!ds->cfg.quiet) fprintf(stderr, "warning: skipping video: %s\n", msg);
    return AQA_OK;
}

static aqa_status item_path(const aqa_video_dataset *ds, const aqa_vd_item *it, int64_t t, int64_t shift,
                            char *buf, size_t size) {
    int n;
    if (it->video[0]) {
        n = snprintf(buf, size, "%s#%lld", it->video, (long long)(it->frames[t] + shift - it->video_base));
    } else if (it->listing) {
        int64_t k = it->frames[t];
        n = snprintf(buf, size, "%s", it->listing[k]);
    } else if (ds->manifest->dataset == AQA_ANN_MTL_AQA) {
        n = snprintf(buf, size, "%s/%08lld%s", it->frame_dir, (long long)(it->frames[t] + shift), it->ext);
    } else {
        n = snprintf(buf, size, "%s/%05lld%s", it->frame_dir, (long long)it->frames[t], it->ext);
    }
    if (n < 0 || (size_t)n >= size) return aqa_fail(AQA_EINVAL, "frame path of %s too long", it->frame_dir);
    return AQA_OK;
}

aqa_status aqa_vd_frame_path(const aqa_video_dataset *ds, size_t i, int64_t t, int64_t shift, char *buf,
                             size_t size) {
    if (i >= ds->n_items || t < 0 || t >= ds->T) return aqa_fail(AQA_EINVAL, "frame path: index out of range");
    return item_path(ds, &ds->items[i], t, shift, buf, size);
}

/* Fills item `it` of sample s; returns AQA_OK with *ok false when the video is bad and skipped. */
static aqa_status build_item(aqa_video_dataset *ds, size_t sidx, aqa_vd_item *it, bool *ok) {
    const aqa_ann_sample *s = &ds->manifest->samples[sidx];
    const char *froot = ds->cfg.frames_root ? ds->cfg.frames_root : ds->cfg.root;
    aqa_vd_summary *sum = &ds->summary;
    int64_t T = ds->T;
    *ok = false;
    memset(it, 0, sizeof *it);
    it->sample = sidx;
    it->base_frame = s->start_frame;
    bool features = ds->cfg.features_dir != NULL;

    if (features) {
        char path[1200];
        aqa_status st = ds->manifest->dataset == AQA_ANN_FISV
                            ? (snprintf(path, sizeof path, "%s/%s.npy", ds->cfg.features_dir, s->video), AQA_OK)
                            : aqa_feature_cache_path(ds->cfg.features_dir, s->key, path, sizeof path);
        if (st) return st;
        if (!file_exists(path))
            return bad_at_open(ds, &sum->skipped_missing, "%s: feature file of sample %s is missing", path, s->key);
    }
    if (ds->manifest->dataset == AQA_ANN_FISV) {
        *ok = true;
        return AQA_OK;
    }

    it->frames = malloc((size_t)T * sizeof *it->frames);
    if (!it->frames) return aqa_fail(AQA_ENOMEM, "out of memory");

    switch (ds->manifest->dataset) {
    case AQA_ANN_FINEDIVING: {
        snprintf(it->frame_dir, sizeof it->frame_dir, "%s/%s/%lld", froot, s->video, (long long)s->instance);
        if (s->start_frame < 0 || s->end_frame < s->start_frame)
            return bad_at_open(ds, &sum->skipped_no_frames, "%s: sample %s: frames %lld..%lld point at no frames",
                               it->frame_dir, s->key, (long long)s->start_frame, (long long)s->end_frame);
        aqa_vd_linspace_int(s->start_frame, s->end_frame, T, it->frames);
        /* labels resampled with the frames */
        if (s->frame_labels) {
            it->labels = malloc((size_t)T * sizeof *it->labels);
            it->frame_stage = malloc((size_t)T * sizeof *it->frame_stage);
            if (!it->labels || !it->frame_stage) return aqa_fail(AQA_ENOMEM, "out of memory");
            for (int64_t t = 0; t < T; t++) {
                int64_t rel = it->frames[t] - s->start_frame;
                if (rel < 0 || (size_t)rel >= s->n_frame_labels)
                    return bad_at_open(ds, &sum->skipped_labels,
                                       "sample %s: %zu frame labels do not cover sampled frame %lld (frames %lld..%lld)",
                                       s->key, s->n_frame_labels, (long long)it->frames[t],
                                       (long long)s->start_frame, (long long)s->end_frame);
                it->labels[t] = s->frame_labels[rel];
            }
            if (aqa_vd_tsa_boundaries(it->labels, T, it->boundaries) != AQA_OK)
                return bad_at_open(ds, &sum->skipped_labels, "sample %s: %s", s->key, aqa_last_error());
            /* first appearances: 1 <= b0 < b1 <= T - 1, every stage non-empty */
            it->has_boundaries = 1;
            aqa_vd_frame_stages(it->boundaries, ds->L, T, it->frame_stage);
        }
        break;
    }
    case AQA_ANN_MTL_AQA: {
        snprintf(it->frame_dir, sizeof it->frame_dir, "%s/%s", froot, s->video);
        if (s->end_frame < 1)
            return bad_at_open(ds, &sum->skipped_no_frames, "%s: sample %s: end_frame %lld points at no frames",
                               it->frame_dir, s->key, (long long)s->end_frame);
        if (s->end_frame + ds->cfg.shift_min - (T - 1) < 1)
            return bad_at_open(ds, &sum->skipped_short,
                               "%s: sample %s: video too short: %lld frames end at %lld (shift %d) but %lld are needed",
                               it->frame_dir, s->key, (long long)T, (long long)s->end_frame, ds->cfg.shift_min,
                               (long long)T);
        for (int64_t t = 0; t < T; t++) it->frames[t] = s->end_frame - (T - 1) + t;
        it->base_frame = it->frames[0];
        break;
    }
    case AQA_ANN_JIGSAWS: {
        snprintf(it->frame_dir, sizeof it->frame_dir, "%s/%s_capture1", froot, s->video);
        if (!features) {
            aqa_status st = list_frames(it->frame_dir, &it->listing, &it->n_listing);
            if (st) return st;
            int64_t n = (int64_t)it->n_listing;
            if (n == 0 && aqa_vd_find_video(it->frame_dir, it->video, sizeof it->video)) {
                /* <trial>_capture1.<ext>: listing positions are the video's frame indices */
                aqa_video *v = aqa_video_open(it->video);
                st = v ? aqa_video_count_frames(v, &n) : aqa_last_status();
                aqa_video_close(v);
                if (st)
                    return bad_at_open(ds, &sum->skipped_no_frames, "sample %s: %s", s->key, aqa_last_error());
            }
            if (n == 0)
                return bad_at_open(ds, &sum->skipped_no_frames, "%s: sample %s: no frame files (nor a video file)",
                                   it->frame_dir, s->key);
            aqa_vd_linspace_int(0, n - 1, T, it->frames);
        } else {
            for (int64_t t = 0; t < T; t++) it->frames[t] = t;
        }
        it->base_frame = 0;
        break;
    }
    default:
        return aqa_fail(AQA_EINVAL, "video dataset: unsupported dataset");
    }

    /* a video file in place of a missing frame folder: FineDiving's untrimmed <video>.<ext>,
     * MTL-AQA's <video>.<ext> (JIGSAWS' above) */
    if (!features && !it->listing && !it->video[0] && !dir_exists(it->frame_dir)) {
        char stem[1100];
        if (ds->manifest->dataset == AQA_ANN_FINEDIVING) snprintf(stem, sizeof stem, "%s/%s", froot, s->video);
        else snprintf(stem, sizeof stem, "%s", it->frame_dir);
        if (aqa_vd_find_video(stem, it->video, sizeof it->video)) {
            it->video_base = AQA_VD_VIDEO_FIRST_NUMBER;
            if (it->frames[0] + ds->cfg.shift_min < AQA_VD_VIDEO_FIRST_NUMBER)
                return bad_at_open(ds, &sum->skipped_no_frames,
                                   "%s: sample %s: frame %lld is before the video's first frame (number %d)", it->video,
                                   s->key, (long long)(it->frames[0] + ds->cfg.shift_min), AQA_VD_VIDEO_FIRST_NUMBER);
        }
    }

    /* frame files: extension and existence */
    if (!features && !it->listing && !it->video[0]) {
        if (!dir_exists(it->frame_dir))
            return bad_at_open(ds, &sum->skipped_no_frames, "%s: frame folder of sample %s is missing", it->frame_dir,
                               s->key);
        char p[1200];
        const char *exts[] = {".jpg", ".png", ".jpeg"};
        for (int e = 0; e < 3 && !it->ext[0]; e++) {
            snprintf(it->ext, sizeof it->ext, "%s", exts[e]);
            item_path(ds, it, 0, 0, p, sizeof p);
            if (!file_exists(p)) it->ext[0] = 0;
        }
        if (!it->ext[0]) {
            snprintf(it->ext, sizeof it->ext, ".jpg");
            item_path(ds, it, 0, 0, p, sizeof p);
            return bad_at_open(ds, &sum->skipped_missing, "%s: frame file of sample %s is missing", p, s->key);
        }
        if (ds->cfg.check_files) {
            int64_t lo = ds->manifest->dataset == AQA_ANN_MTL_AQA ? ds->cfg.shift_min : 0;
            int64_t hi = ds->manifest->dataset == AQA_ANN_MTL_AQA ? ds->cfg.shift_max : 0;
            for (int64_t sh = lo; sh <= hi; sh += (hi - lo) ? (hi - lo) : 1) {
                for (int64_t t = 0; t < T; t++) {
                    if (t > 0 && it->frames[t] == it->frames[t - 1]) continue;
                    item_path(ds, it, t, sh, p, sizeof p);
                    if (!file_exists(p))
                        return bad_at_open(ds, &sum->skipped_missing, "%s: frame %lld of sample %s is missing", p,
                                           (long long)t, s->key);
                }
                if (hi == lo) break;
            }
        }
    }
    *ok = true;
    return AQA_OK;
}

/* Appends the AQA_GRADE_COUNT graded forms of `base` to the text set unless they are there;
 * *first receives the id of its grade 0 (the grades follow in order).  JIGSAWS / Fis-V action
 * names give "a video of a poor knot tying", descriptive dive texts "inward take-off, of poor
 * quality".  The set depends on the base texts only, never on a score. */
static aqa_status add_graded(aqa_text_set *set, const char *base, bool action, int64_t *first) {
    char txt[AQA_TEXT_MAX];
    for (int g = 0; g < AQA_GRADE_COUNT; g++) {
        aqa_status st = action ? aqa_quality_text(g, base, txt, sizeof txt) : aqa_quality_describe(g, base, txt, sizeof txt);
        if (st) return st;
        long at = aqa_text_set_find(set, txt);
        if (g == 0 && at >= 0) { /* grade 0 is unique to its base: the group is there */
            *first = at;
            return AQA_OK;
        }
        if ((st = aqa_text_set_add(set, txt))) return st;
        if (g == 0) *first = (int64_t)set->n - 1;
    }
    return AQA_OK;
}

aqa_status aqa_vd_stage_text(const aqa_video_dataset *ds, const char *stage, char *buf, size_t size) {
    aqa_ann_dataset k = ds->manifest->dataset;
    bool dives = k == AQA_ANN_FINEDIVING || k == AQA_ANN_MTL_AQA;
    const char *tmpl = ds->cfg.stage_template ? ds->cfg.stage_template : dives ? AQA_DIVING_TEMPLATE : "";
    if (tmpl[0]) return aqa_text_fill_template(tmpl, stage, buf, size);
    if (strlen(stage) >= size) return aqa_fail(AQA_EINVAL, "stage text \"%.40s...\" too long", stage);
    memcpy(buf, stage, strlen(stage) + 1);
    return AQA_OK;
}

/* Text ids and dive classes of every manifest sample.  For graded texts (JIGSAWS, Fis-V, and
 * dives with cfg.quality_texts) the ids are those of grade 0 of each text's group: the grade
 * comes from the score later (assign_grades), once the score range is known. */
static aqa_status build_texts(aqa_video_dataset *ds, int64_t (*stage_ids)[AQA_VD_MAX_BOUNDARIES + 1],
                              int64_t *video_ids, int64_t *classes, bool *text_ok) {
    aqa_ann_manifest *m = ds->manifest;
    bool dives = m->dataset == AQA_ANN_FINEDIVING || m->dataset == AQA_ANN_MTL_AQA;
    bool graded = ds->n_grades > 0;
    for (size_t i = 0; i < m->n_samples; i++) {
        const aqa_ann_sample *s = &m->samples[i];
        char cls[64];
        if (s->dive_number[0]) {
            size_t k = 0;
            for (; s->dive_number[k] && k < sizeof cls - 1; k++) cls[k] = (char)toupper((unsigned char)s->dive_number[k]);
            cls[k] = 0;
        } else {
            snprintf(cls, sizeof cls, "DD %.4g", s->difficulty);
        }
        size_t id;
        aqa_status st = aqa_text_set_add_unique(&ds->dive_classes, cls, &id);
        if (st) return st;
        classes[i] = (int64_t)id;
        text_ok[i] = true;
        if (dives) {
            aqa_dive_texts t;
            if (!s->dive_number[0] || aqa_dive_texts_from_number(s->dive_number, &t) != AQA_OK) {
                text_ok[i] = false;
                aqa_clear_error();
                continue;
            }
            for (int g = 0; g < 3; g++) {
                char txt[AQA_TEXT_MAX];
                if ((st = aqa_vd_stage_text(ds, aqa_dive_texts_stage(&t, g), txt, sizeof txt))) return st;
                const char *stage = txt;
                if (graded) {
                    if ((st = add_graded(&ds->stage_texts, stage, false, &stage_ids[i][g]))) return st;
                    continue;
                }
                if ((st = aqa_text_set_add_unique(&ds->stage_texts, stage, &id))) return st;
                stage_ids[i][g] = (int64_t)id;
            }
            if (graded) {
                if ((st = add_graded(&ds->video_texts, t.video, false, &video_ids[i]))) return st;
                continue;
            }
            if ((st = aqa_text_set_add_unique(&ds->video_texts, t.video, &id))) return st;
            video_ids[i] = (int64_t)id;
        } else {
            char action[128];
            action_name(ds, s, action, sizeof action);
            if ((st = add_graded(&ds->stage_texts, action, true, &stage_ids[i][0]))) return st;
            for (int k = 1; k < 3; k++) stage_ids[i][k] = stage_ids[i][0];
            if ((st = add_graded(&ds->video_texts, action, true, &video_ids[i]))) return st;
        }
    }
    return AQA_OK;
}

/* The score range of the dataset: the configured one, or that of its usable videos. */
static aqa_status resolve_score_range(aqa_video_dataset *ds) {
    if (ds->cfg.score_lo != 0 || ds->cfg.score_hi != 0) {
        if (!isfinite(ds->cfg.score_lo) || !isfinite(ds->cfg.score_hi) || !(ds->cfg.score_lo < ds->cfg.score_hi))
            return aqa_fail(AQA_EINVAL, "video dataset: score range [%g, %g] is empty or not finite", ds->cfg.score_lo,
                            ds->cfg.score_hi);
        ds->score_min = ds->cfg.score_lo;
        ds->score_max = ds->cfg.score_hi;
        return AQA_OK;
    }
    ds->score_min = INFINITY;
    ds->score_max = -INFINITY;
    for (size_t i = 0; i < ds->n_items; i++) {
        double v = aqa_vd_sample(ds, i)->score;
        if (v < ds->score_min) ds->score_min = v;
        if (v > ds->score_max) ds->score_max = v;
    }
    if (!ds->n_items) ds->score_min = ds->score_max = 0;
    return AQA_OK;
}

/* Graded texts: each item's true text is grade g of its group, g the grade of its score on the
 * dataset's score range.  These ids are labels (training targets); the group is not. */
static aqa_status assign_grades(aqa_video_dataset *ds) {
    if (!ds->n_grades) return AQA_OK;
    double lo = ds->score_min, hi = ds->score_max > ds->score_min ? ds->score_max : ds->score_min + 1;
    for (size_t i = 0; i < ds->n_items; i++) {
        aqa_vd_item *it = &ds->items[i];
        aqa_quality_grade g;
        aqa_status st = aqa_quality_grade_of(aqa_vd_sample(ds, i)->score, lo, hi, &g);
        if (st) return st;
        for (int k = 0; k < AQA_VD_MAX_BOUNDARIES + 1; k++) it->stage_text[k] = it->stage_grade_base[k] + (int64_t)g;
        it->video_text = it->video_grade_base + (int64_t)g;
    }
    return AQA_OK;
}

/* The positions (in the split's list of n) of the videos that stay: all, or all but / only the
 * held-out share (a seeded choice).  keep[] receives flags; returns the status. */
static aqa_status holdout_mask(const aqa_vd_config *cfg, size_t n, bool *keep) {
    for (size_t k = 0; k < n; k++) keep[k] = true;
    double f = cfg->holdout_fraction;
    if (f == 0) {
        if (cfg->holdout_take) return aqa_fail(AQA_EINVAL, "video dataset: the held-out part of a split without holdout");
        return AQA_OK;
    }
    if (!(f > 0 && f < 1))
        return aqa_fail(AQA_EINVAL, "video dataset: held-out fraction %g is not in [0, 1)", f);
    size_t held = (size_t)floor(f * (double)n + 0.5);
    if (held == 0) held = 1;
    if (held >= n)
        return aqa_fail(AQA_EINVAL, "video dataset: holding out %g of %zu videos leaves none to train on", f, n);
    size_t *order = malloc(n * sizeof *order);
    if (!order) return aqa_fail(AQA_ENOMEM, "out of memory");
    aqa_seeded_permutation(aqa_seed_mix(cfg->holdout_seed, 0x7A11D0u), n, order);
    for (size_t k = 0; k < n; k++) keep[order[k]] = (k < held) == cfg->holdout_take;
    free(order);
    return AQA_OK;
}

static aqa_status feature_path(const aqa_video_dataset *ds, size_t i, char *buf, size_t size) {
    const aqa_ann_sample *s = aqa_vd_sample(ds, i);
    if (ds->manifest->dataset == AQA_ANN_FISV) {
        int n = snprintf(buf, size, "%s/%s.npy", ds->cfg.features_dir, s->video);
        return n > 0 && (size_t)n < size ? AQA_OK : aqa_fail(AQA_EINVAL, "feature path too long");
    }
    return aqa_feature_cache_path(ds->cfg.features_dir, s->key, buf, size);
}

/* Fis-V: item i's per-clip CLIP feature file. */
static aqa_status clip_npy_path(const aqa_video_dataset *ds, size_t i, char *buf, size_t size) {
    int n = snprintf(buf, size, "%s/%s.npy", ds->cfg.clip_features_dir, aqa_vd_sample(ds, i)->video);
    return n > 0 && (size_t)n < size ? AQA_OK : aqa_fail(AQA_EINVAL, "feature path too long");
}

/* A Fis-V .npy [rows, width] with its rows resampled to N (the linspace rule) into out[N, width]. */
static aqa_status read_npy_rows(const char *path, int64_t N, int64_t width, float *out) {
    int64_t r, c;
    aqa_status st = aqa_feature_npy_dims(path, &r, &c);
    if (st) return st;
    if (c != width)
        return aqa_fail(AQA_EFORMAT, "%s: feature width %lld, expected %lld", path, (long long)c, (long long)width);
    float *tmp = malloc((size_t)(r * c) * sizeof *tmp);
    int64_t *rows = malloc((size_t)N * sizeof *rows);
    if (!tmp || !rows) {
        free(tmp);
        free(rows);
        return aqa_fail(AQA_ENOMEM, "out of memory");
    }
    st = aqa_feature_npy_read(path, r, c, tmp);
    if (!st) {
        aqa_vd_linspace_int(0, r - 1, N, rows);
        for (int64_t k = 0; k < N; k++) memcpy(out + k * c, tmp + rows[k] * c, (size_t)c * sizeof *tmp);
    }
    free(tmp);
    free(rows);
    return st;
}

/* Feature widths (and Fis-V's N) from the first item's file. */
static aqa_status resolve_feature_dims(aqa_video_dataset *ds) {
    char path[1200];
    aqa_status st = feature_path(ds, 0, path, sizeof path);
    if (st) return st;
    if (ds->manifest->dataset == AQA_ANN_FISV) {
        int64_t r, c;
        if ((st = aqa_feature_npy_dims(path, &r, &c))) return st;
        if (ds->N <= 0) ds->N = r;
        ds->cfg.num_clips = (int)ds->N;
        ds->feat_i3d_dim = c;
        if (ds->cfg.clip_features_dir) { /* the VLP branch: one step per clip */
            if ((st = clip_npy_path(ds, 0, path, sizeof path)) || (st = aqa_feature_npy_dims(path, &r, &c))) return st;
            ds->feat_clip_dim = c;
            ds->T = ds->N;
            ds->clip_len = 1;
            ds->cfg.num_frames = (int)ds->T;
            ds->cfg.clip_len = ds->cfg.clip_stride = 1;
        }
        return AQA_OK;
    }
    int nd;
    int64_t sh[4];
    if ((st = aqa_feature_cache_check_format(path))) return st; /* an older cache: the message says extract again */
    if (aqa_feature_cache_dims(path, "clip", &nd, sh) == AQA_OK) {
        if (nd != 2 || sh[0] != ds->T)
            return aqa_fail(AQA_EFORMAT, "%s: \"clip\" has %lld frames, the sampling gives T = %lld (extract again "
                            "with the same --frames)", path, (long long)sh[0], (long long)ds->T);
        ds->feat_clip_dim = sh[1];
    }
    if (aqa_feature_cache_dims(path, "i3d", &nd, sh) == AQA_OK) {
        if (nd != 2 || sh[0] != ds->N)
            return aqa_fail(AQA_EFORMAT, "%s: \"i3d\" has %lld clips, the sampling gives N = %lld", path,
                            (long long)sh[0], (long long)ds->N);
        ds->feat_i3d_dim = sh[1];
        if (aqa_feature_cache_dims(path, "i3d_map", &nd, sh) == AQA_OK) {
            if (nd != 4 || sh[0] != ds->N || sh[1] != ds->feat_i3d_dim)
                return aqa_fail(AQA_EFORMAT, "%s: \"i3d_map\" is not [N, C, H, W] of its \"i3d\" [%lld, %lld]", path,
                                (long long)ds->N, (long long)ds->feat_i3d_dim);
            ds->feat_map_h = sh[2];
            ds->feat_map_w = sh[3];
        }
    }
    aqa_clear_error();
    if (!ds->feat_clip_dim && !ds->feat_i3d_dim)
        return aqa_fail(AQA_EFORMAT, "%s: neither \"clip\" nor \"i3d\" features", path);
    return AQA_OK;
}

aqa_status aqa_vd_read_features(const aqa_video_dataset *ds, size_t i, float *clip_out, float *i3d_out,
                                float *map_out) {
    if (!ds || i >= ds->n_items || !ds->cfg.features_dir)
        return aqa_fail(AQA_EINVAL, "aqa_vd_read_features: no features folder or bad index");
    char path[1200];
    aqa_status st = feature_path(ds, i, path, sizeof path);
    if (st) return st;
    if (ds->manifest->dataset == AQA_ANN_FISV) {
        if (i3d_out && (st = read_npy_rows(path, ds->N, ds->feat_i3d_dim, i3d_out))) return st;
        if (clip_out) {
            if (!ds->feat_clip_dim)
                return aqa_fail(AQA_EINVAL, "Fis-V: no CLIP features (give the folder of per-clip CLIP .npy files)");
            if ((st = clip_npy_path(ds, i, path, sizeof path)) || (st = read_npy_rows(path, ds->N, ds->feat_clip_dim, clip_out)))
                return st;
        }
        return AQA_OK;
    }
    if (clip_out) {
        if (!ds->feat_clip_dim) return aqa_fail(AQA_EFORMAT, "%s: the cache holds no \"clip\" features", path);
        if ((st = aqa_feature_cache_read(path, "clip", 2, (const int64_t[]){ds->T, ds->feat_clip_dim}, clip_out)))
            return st;
    }
    if (i3d_out) {
        if (!ds->feat_i3d_dim) return aqa_fail(AQA_EFORMAT, "%s: the cache holds no \"i3d\" features", path);
        if ((st = aqa_feature_cache_read(path, "i3d", 2, (const int64_t[]){ds->N, ds->feat_i3d_dim}, i3d_out)))
            return st;
    }
    if (map_out) {
        if (!ds->feat_map_h) return aqa_fail(AQA_EFORMAT, "%s: the cache holds no \"i3d_map\"", path);
        if ((st = aqa_feature_cache_read(path, "i3d_map", 4,
                                         (const int64_t[]){ds->N, ds->feat_i3d_dim, ds->feat_map_h, ds->feat_map_w},
                                         map_out)))
            return st;
    }
    return AQA_OK;
}

/* cfg->target: Fis-V's TES or PCS replaces each sample's score (before any score range or grade is
 * computed from it). */
static aqa_status select_target(const aqa_vd_config *cfg, aqa_ann_manifest *m) {
    if (cfg->target == AQA_VD_TARGET_SCORE) return AQA_OK;
    if ((unsigned)cfg->target > AQA_VD_TARGET_PCS)
        return aqa_fail(AQA_EINVAL, "aqa_video_dataset_open: unknown target %d", (int)cfg->target);
    if (m->dataset != AQA_ANN_FISV)
        return aqa_fail(AQA_EINVAL, "aqa_video_dataset_open: target %s is Fis-V's; %s has only its score",
                        cfg->target == AQA_VD_TARGET_TES ? "TES" : "PCS", aqa_ann_dataset_name(m->dataset));
    int k = cfg->target == AQA_VD_TARGET_TES ? 0 : 1;
    for (size_t i = 0; i < m->n_samples; i++) {
        if (m->samples[i].n_sub_scores <= k) /* the loader always gives three */
            return aqa_fail(AQA_EFORMAT, "%s: sample %s has no TES/PCS", cfg->root, m->samples[i].key);
        m->samples[i].score = m->samples[i].sub_scores[k];
    }
    return AQA_OK;
}

aqa_video_dataset *aqa_video_dataset_open(const aqa_vd_config *cfg) {
    if (!cfg || !cfg->root) return aqa_fail_null("aqa_video_dataset_open: root folder not given");
    aqa_video_dataset *ds = calloc(1, sizeof *ds);
    if (!ds) return aqa_fail_null("aqa_video_dataset_open: out of memory");
    ds->cfg = *cfg;
    ds->lock = malloc(sizeof(pthread_mutex_t));
    if (!ds->lock) {
        free(ds);
        return aqa_fail_null("aqa_video_dataset_open: out of memory");
    }
    pthread_mutex_init((pthread_mutex_t *)ds->lock, NULL);
    aqa_text_set_init(&ds->stage_texts);
    aqa_text_set_init(&ds->video_texts);
    aqa_text_set_init(&ds->dive_classes);
    int64_t (*stage_ids)[AQA_VD_MAX_BOUNDARIES + 1] = NULL;
    int64_t *video_ids = NULL, *classes = NULL;
    bool *text_ok = NULL, *keep = NULL;

    switch (cfg->dataset) {
    case AQA_ANN_FINEDIVING: ds->manifest = aqa_ann_load_finediving(cfg->root); break;
    case AQA_ANN_MTL_AQA: ds->manifest = aqa_ann_load_mtl_aqa(cfg->root); break;
    case AQA_ANN_JIGSAWS: ds->manifest = aqa_ann_load_jigsaws(cfg->root); break;
    case AQA_ANN_FISV: ds->manifest = aqa_ann_load_fisv(cfg->root); break;
    default: aqa_fail(AQA_EINVAL, "aqa_video_dataset_open: unknown dataset %d", (int)cfg->dataset);
    }
    if (!ds->manifest) goto fail;
    aqa_ann_manifest *m = ds->manifest;
    if (select_target(cfg, m)) goto fail;

    /* sizes */
    int defT = 96, defN = 9, defStride = 10;
    ds->sampling = AQA_VD_SAMPLE_EVEN;
    if (m->dataset == AQA_ANN_MTL_AQA) defT = 103, defN = 10, defStride = 10, ds->sampling = AQA_VD_SAMPLE_ENDING;
    if (m->dataset == AQA_ANN_JIGSAWS) defT = 160, defN = 10, defStride = 16;
    if (m->dataset == AQA_ANN_FISV) defT = 0, defN = 0, defStride = 0;
    ds->T = cfg->num_frames > 0 ? cfg->num_frames : defT;
    ds->N = cfg->num_clips > 0 ? cfg->num_clips : defN;
    ds->clip_len = cfg->clip_len > 0 ? cfg->clip_len : 16;
    int64_t stride = cfg->clip_stride > 0 ? cfg->clip_stride : defStride;
    ds->cfg.num_frames = (int)ds->T;
    ds->cfg.num_clips = (int)ds->N;
    ds->cfg.clip_len = (int)ds->clip_len;
    ds->cfg.clip_stride = (int)stride;
    if (m->dataset != AQA_ANN_FISV && aqa_vd_clip_starts(ds->T, ds->N, ds->clip_len, stride, ds->clip_starts))
        goto fail;
    if (cfg->shift_min > cfg->shift_max) {
        aqa_fail(AQA_EINVAL, "aqa_video_dataset_open: shift_min %d > shift_max %d", cfg->shift_min, cfg->shift_max);
        goto fail;
    }
    ds->L = m->dataset == AQA_ANN_FINEDIVING ? AQA_VD_MAX_BOUNDARIES : 0;

    ds->n_grades = m->dataset == AQA_ANN_JIGSAWS || m->dataset == AQA_ANN_FISV || cfg->quality_texts ? AQA_GRADE_COUNT : 0;

    stage_ids = calloc(m->n_samples + 1, sizeof *stage_ids);
    video_ids = calloc(m->n_samples + 1, sizeof *video_ids);
    classes = calloc(m->n_samples + 1, sizeof *classes);
    text_ok = calloc(m->n_samples + 1, sizeof *text_ok);
    if (!stage_ids || !video_ids || !classes || !text_ok) {
        aqa_fail(AQA_ENOMEM, "aqa_video_dataset_open: out of memory");
        goto fail;
    }
    if (build_texts(ds, stage_ids, video_ids, classes, text_ok)) goto fail;

    /* the split */
    const size_t *idx = NULL;
    size_t n = m->n_samples;
    size_t *all = NULL;
    if (cfg->split) {
        const aqa_ann_split *sp = aqa_ann_find_split(m, cfg->split);
        if (!sp) {
            char names[512] = "";
            for (size_t k = 0; k < m->n_splits && k < 8; k++) {
                strncat(names, k ? ", " : "", sizeof names - strlen(names) - 1);
                strncat(names, m->splits[k].name, sizeof names - strlen(names) - 1);
            }
            aqa_fail(AQA_EINVAL, "%s: no split \"%s\" (splits: %s%s)", cfg->root, cfg->split, names,
                     m->n_splits > 8 ? ", ..." : "");
            goto fail;
        }
        idx = sp->idx;
        n = sp->n;
    } else {
        all = malloc((n + 1) * sizeof *all);
        if (!all) {
            aqa_fail(AQA_ENOMEM, "out of memory");
            goto fail;
        }
        for (size_t k = 0; k < n; k++) all[k] = k;
        idx = all;
    }
    ds->items = calloc(n + 1, sizeof *ds->items);
    keep = calloc(n + 1, sizeof *keep);
    if (!ds->items || !keep) {
        free(all);
        aqa_fail(AQA_ENOMEM, "out of memory");
        goto fail;
    }
    if (holdout_mask(cfg, n, keep)) {
        free(all);
        goto fail;
    }
    for (size_t k = 0; k < n; k++) ds->summary.n_split += keep[k];
    for (size_t k = 0; k < n; k++) {
        if (!keep[k]) continue;
        size_t s = idx[k];
        aqa_vd_item *it = &ds->items[ds->n_items];
        bool ok = false;
        aqa_status st;
        if (!text_ok[s]) {
            st = bad_at_open(ds, &ds->summary.skipped_labels, "sample %s: dive number \"%s\" gives no texts",
                             m->samples[s].key, m->samples[s].dive_number);
        } else {
            st = build_item(ds, s, it, &ok);
        }
        if (st || !ok) {
            free_item(it);
            if (st) {
                free(all);
                goto fail;
            }
            continue;
        }
        memcpy(it->stage_text, stage_ids[s], sizeof it->stage_text);
        it->video_text = video_ids[s];
        for (int g = 0; g < AQA_VD_MAX_BOUNDARIES + 1; g++) it->stage_grade_base[g] = ds->n_grades ? stage_ids[s][g] : -1;
        it->video_grade_base = ds->n_grades ? video_ids[s] : -1;
        it->dive_class = classes[s];
        ds->n_items++;
    }
    free(all);
    ds->summary.n_items = ds->n_items;
    if (resolve_score_range(ds) || assign_grades(ds)) goto fail;
    if (ds->n_items && cfg->features_dir && resolve_feature_dims(ds)) goto fail;
    aqa_vd_fum_boundaries(m->dataset, ds->N, ds->fum_boundaries);
    if (ds->n_items == 0) {
        aqa_fail(AQA_EFORMAT, "%s: split \"%s\" has no usable videos (%zu in the split)", cfg->root,
                 cfg->split ? cfg->split : "(all)", n);
        goto fail;
    }
    free(stage_ids);
    free(video_ids);
    free(classes);
    free(text_ok);
    free(keep);
    return ds;
fail:
    free(stage_ids);
    free(video_ids);
    free(classes);
    free(text_ok);
    free(keep);
    {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", aqa_last_error());
        aqa_status code = aqa_last_status();
        aqa_video_dataset_free(ds);
        aqa_fail(code ? code : AQA_EINVAL, "%s", msg);
    }
    return NULL;
}

/* ---- decoding -------------------------------------------------------------------------------- */

aqa_status aqa_vd_transform_size(const aqa_frame_transform *tf, int *h, int *w) {
    if (tf->crop_w > 0 && tf->crop_h > 0) {
        *w = tf->crop_w;
        *h = tf->crop_h;
        return AQA_OK;
    }
    if (tf->short_side == 0 && tf->resize_w > 0 && tf->resize_h > 0) {
        *w = tf->resize_w;
        *h = tf->resize_h;
        return AQA_OK;
    }
    return aqa_fail(AQA_EINVAL, "frame transform: the output size must be fixed (set a crop or an exact resize)");
}

/* Where the sampled frames of one video go: the transform and the output layout of aqa_vd_decode,
 * and the last frame written (a repeated frame is copied, not transformed again). */
typedef struct frame_sink {
    const aqa_video_dataset *ds; /* sizes: T, N, clip_len, clip_starts */
    aqa_frame_transform tf;      /* the transform, randomised at the first frame when aug is set */
    const aqa_vd_augment *aug;   /* NULL: tf as given */
    bool randomized;             /* tf is final */
    bool clips;                  /* I3D clip layout [N, 3, L, H, W] instead of [T, 3, H, W] */
    float *out;                  /* the caller's buffer */
    size_t hw;                   /* H * W of the output */
    const float *prev;           /* planes of the last frame written, or NULL */
    size_t prev_stride;          /* their channel stride */
    int64_t prev_key;            /* the frame number they show */
    const int64_t *keys;         /* frame number of each sampled frame [T] */
    const int64_t *times;        /* video mode: sampled frame t of each wanted position */
    const char *name;            /* the video or frame folder, for messages */
} frame_sink;

/* The output slots of sampled frame t (pointer and channel stride); returns how many. */
static int frame_slots(const frame_sink *k, int64_t t, float **slot, size_t *stride) {
    const aqa_video_dataset *ds = k->ds;
    if (!k->clips) {
        slot[0] = k->out + (size_t)t * 3 * k->hw;
        stride[0] = k->hw;
        return 1;
    }
    int ns = 0;
    const int64_t L = ds->clip_len;
    for (int64_t c = 0; c < ds->N; c++) {
        int64_t s = ds->clip_starts[c];
        if (t < s || t >= s + L) continue;
        slot[ns] = k->out + (size_t)c * 3 * (size_t)L * k->hw + (size_t)(t - s) * k->hw;
        stride[ns] = (size_t)L * k->hw;
        ns++;
    }
    return ns;
}

/* Writes sampled frame t: the image im (loaded by `load` from `where` when NULL and the frame is
 * not a repeat of the previous one) through the transform into every slot. */
static aqa_status put_frame(frame_sink *k, int64_t t, const aqa_image *im, const char *where) {
    float *slot[AQA_VD_MAX_CLIPS + 1];
    size_t stride[AQA_VD_MAX_CLIPS + 1];
    int ns = frame_slots(k, t, slot, stride);
    if (!ns) return AQA_OK;
    const int64_t key = k->keys[t];
    aqa_status st = AQA_OK;
    if (k->prev && key == k->prev_key) {
        for (int c = 0; c < 3; c++) memcpy(slot[0] + c * stride[0], k->prev + c * k->prev_stride, k->hw * sizeof(float));
    } else {
        aqa_image *loaded = NULL;
        if (!im && !(im = loaded = aqa_image_load(where))) return aqa_last_status() ? aqa_last_status() : AQA_EFORMAT;
        if (!k->randomized) {
            k->randomized = true;
            st = aqa_frame_transform_randomize(&k->tf, im->width, im->height, k->aug->seed, k->aug->flip_prob);
        }
        if (!st) st = aqa_frame_transform_apply(&k->tf, im, slot[0], stride[0]);
        aqa_image_free(loaded);
        if (st) return aqa_fail(st, "%s: %s", where, aqa_last_error());
    }
    for (int j = 1; j < ns; j++)
        for (int c = 0; c < 3; c++) memcpy(slot[j] + c * stride[j], slot[0] + c * stride[0], k->hw * sizeof(float));
    k->prev = slot[0];
    k->prev_stride = stride[0];
    k->prev_key = key;
    return AQA_OK;
}

static aqa_status sink_init(frame_sink *k, const aqa_video_dataset *ds, const aqa_frame_transform *tf, bool clips,
                            const aqa_vd_augment *aug, float *out) {
    memset(k, 0, sizeof *k);
    int H, W;
    aqa_status st = aqa_vd_transform_size(tf, &H, &W);
    if (st) return st;
    k->ds = ds;
    k->tf = *tf;
    k->aug = aug;
    k->randomized = aug == NULL;
    k->clips = clips;
    k->out = out;
    k->hw = (size_t)H * (size_t)W;
    return AQA_OK;
}

static aqa_status video_frame_cb(void *user, size_t pos, int64_t index, const aqa_image *im) {
    frame_sink *k = user;
    char where[1200];
    snprintf(where, sizeof where, "%s, frame %lld", k->name, (long long)index);
    const int vh = k->ds->cfg.video_height;
    if (vh <= 0 || im->height == vh || (k->prev && k->keys[k->times[pos]] == k->prev_key))
        return put_frame(k, k->times[pos], im, where);
    aqa_image *sized = aqa_image_resize_to_height(im, vh, AQA_RESAMPLE_BICUBIC);
    aqa_status st = sized ? put_frame(k, k->times[pos], sized, where) : aqa_last_status();
    aqa_image_free(sized);
    return st;
}

/* The sampled frames of a video file: sink keys are video frame indices. */
static aqa_status decode_video_file(frame_sink *k, const char *path, const int64_t *index) {
    const int64_t T = k->ds->T;
    int64_t *want = malloc((size_t)T * sizeof *want), *times = malloc((size_t)T * sizeof *times);
    if (!want || !times) {
        free(want);
        free(times);
        return aqa_fail(AQA_ENOMEM, "%s: out of memory", path);
    }
    size_t n = 0;
    float *slot[AQA_VD_MAX_CLIPS + 1];
    size_t stride[AQA_VD_MAX_CLIPS + 1];
    for (int64_t t = 0; t < T; t++)
        if (frame_slots(k, t, slot, stride)) {
            want[n] = index[t];
            times[n++] = t;
        }
    k->keys = index;
    k->times = times;
    k->name = path;
    aqa_video *v = aqa_video_open(path);
    aqa_status st = v ? aqa_video_read_frames(v, want, n, video_frame_cb, k) : aqa_last_status();
    aqa_video_close(v);
    free(want);
    free(times);
    return st;
}

aqa_status aqa_vd_decode_video(const aqa_video_dataset *ds, const char *path, const int64_t *frames,
                               const aqa_frame_transform *tf, bool clips, const aqa_vd_augment *aug, float *out) {
    if (!ds || !path || !frames || !tf || !out) return aqa_fail(AQA_EINVAL, "aqa_vd_decode_video: NULL argument");
    for (int64_t t = 0; t < ds->T; t++)
        if (frames[t] < 0 || (t && frames[t] < frames[t - 1]))
            return aqa_fail(AQA_EINVAL, "%s: sampled frame %lld is %lld (frames must be >= 0 and non-decreasing)", path,
                            (long long)t, (long long)frames[t]);
    frame_sink k;
    aqa_status st = sink_init(&k, ds, tf, clips, aug, out);
    return st ? st : decode_video_file(&k, path, frames);
}

aqa_status aqa_vd_decode(const aqa_video_dataset *ds, size_t i, const aqa_frame_transform *tf, bool clips,
                         int64_t shift, const aqa_vd_augment *aug, float *out) {
    if (!ds || i >= ds->n_items || !tf || !out) return aqa_fail(AQA_EINVAL, "aqa_vd_decode: bad argument");
    if (ds->manifest->dataset == AQA_ANN_FISV)
        return aqa_fail(AQA_EUNSUPPORTED, "Fis-V has no frames: give a features folder");
    frame_sink k;
    aqa_status st = sink_init(&k, ds, tf, clips, aug, out);
    if (st) return st;
    const aqa_vd_item *it = &ds->items[i];
    const int64_t T = ds->T;
    int64_t *keys = malloc((size_t)T * sizeof *keys);
    if (!keys) return aqa_fail(AQA_ENOMEM, "out of memory");
    for (int64_t t = 0; t < T; t++) keys[t] = it->frames[t] + shift - (it->video[0] ? it->video_base : 0);
    if (it->video[0]) {
        st = decode_video_file(&k, it->video, keys);
    } else {
        k.keys = keys;
        char path[1200];
        for (int64_t t = 0; t < T && !st; t++)
            if (!(st = aqa_vd_frame_path(ds, i, t, shift, path, sizeof path))) st = put_frame(&k, t, NULL, path);
    }
    free(keys);
    return st;
}

void aqa_vd_note_bad(aqa_video_dataset *ds, size_t i, const char *why, bool corrupt) {
    pthread_mutex_lock((pthread_mutex_t *)ds->lock);
    if (corrupt) ds->summary.skipped_corrupt++;
    else ds->summary.skipped_missing++;
    pthread_mutex_unlock((pthread_mutex_t *)ds->lock);
    if (!ds->cfg.quiet) {
        const aqa_ann_sample *s = aqa_vd_sample(ds, i);
        fprintf(stderr, "warning: skipping video %s: %s\n", s ? s->key : "?", why);
    }
}

void aqa_vd_print_summary(const aqa_video_dataset *ds, void *to) {
    FILE *f = to ? (FILE *)to : stderr;
    const aqa_vd_summary *s = &ds->summary;
    size_t skipped = s->skipped_no_frames + s->skipped_short + s->skipped_labels + s->skipped_missing +
                     s->skipped_corrupt;
    fprintf(f, "%s %s: %zu videos in the split, %zu usable, %zu skipped (no frames %zu, short %zu, labels %zu, "
               "missing file %zu, corrupt %zu)\n",
            aqa_ann_dataset_name(ds->manifest->dataset), ds->cfg.split ? ds->cfg.split : "(all)", s->n_split,
            ds->n_items, skipped, s->skipped_no_frames, s->skipped_short, s->skipped_labels, s->skipped_missing,
            s->skipped_corrupt);
}
