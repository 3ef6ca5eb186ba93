/* synthetic_mtl.c: the synthetic dives in MTL-AQA's files (synthetic.h, "MTL-AQA layout"): one frame
 * folder per competition video, the annotation dicts keyed by (video, dive) and the split lists. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "datasets/fina.h"
#include "datasets/synthetic-impl.h"

/* Frames each dive's folder holds before end_frame: CoRe's 103-frame window and its training shift
 * of up to 3 frames earlier. */
#define MTL_WINDOW (103 + 3)

/* MTL-AQA's integer codes of a dive's parts (as its release writes them: position D 0, B 1, C 2 --
 * the release has no straight dive, so A is given 3 here; rotation forward 1, back 0, reverse 3,
 * inward 2). */
static int mtl_position(aqa_dive_position p) {
    return p == AQA_POS_FREE ? 0 : p == AQA_POS_PIKE ? 1 : p == AQA_POS_TUCK ? 2 : 3;
}

static int mtl_rotation(aqa_dive_direction d) {
    return d == AQA_DIVE_FORWARD ? 1 : d == AQA_DIVE_BACK ? 0 : d == AQA_DIVE_REVERSE ? 3 : 2;
}

/* Competition video of plan entry i (1-based, the frame folder's number). */
static int video_of(const aqa_synthetic_config *cfg, size_t i) { return (int)(i / (size_t)cfg->dives_per_video) + 1; }

/* The frame folder of competition video v (0-based): each of its dives' window of frames. */
static aqa_status write_video(const aqa_synthetic_config *cfg, const void *plan, size_t v, aqa_image *bg, aqa_image *im,
                              long long *frames) {
    const aqa_synthetic_dive *dv = plan;
    size_t n = (size_t)cfg->n_videos, per = (size_t)cfg->dives_per_video, first = v * per;
    size_t last = first + per < n ? first + per : n;
    char dir[4096], name[32];
    snprintf(dir, sizeof dir, "%s/%02d", cfg->out_dir, video_of(cfg, first));
    synth_frame_dir fd;
    aqa_status st = aqa__synth_frame_dir_begin(&fd, cfg, dir);
    for (size_t i = first; i < last && !st; i++) {
        const aqa_synthetic_dive *d = &dv[i];
        int64_t lo = d->end_frame - (MTL_WINDOW - 1);
        if (lo > d->start_frame) lo = d->start_frame;
        if (lo < 1) lo = 1;
        aqa__synth_dive_background(cfg, d, bg);
        for (int64_t k = lo; k <= d->end_frame && !st; k++) {
            aqa__synth_dive_frame(cfg, d, (int)(k - d->start_frame), bg, im);
            snprintf(name, sizeof name, "%08lld", (long long)k);
            st = aqa__synth_frame_dir_add(&fd, im, name);
            ++*frames;
        }
    }
    if (st) {
        aqa__synth_frame_dir_end(&fd, false);
        return st;
    }
    return aqa__synth_frame_dir_end(&fd, true);
}

static void put_key(const aqa_synthetic_config *cfg, aqa_pickle_writer *w, const aqa_synthetic_dive *dv, size_t i) {
    aqa_pkw_tuple_begin(w);
    aqa_pkw_int(w, video_of(cfg, i));
    aqa_pkw_int(w, dv[i].instance);
    aqa_pkw_tuple_end(w);
}

static void put_int(aqa_pickle_writer *w, const char *key, int64_t v) {
    aqa_pkw_str(w, key);
    aqa_pkw_int(w, v);
}

/* final_annotations_dict(_with_dive_number).pkl: with_numbers adds judge_scores and dive_number. */
static aqa_status write_dict(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *dv, size_t n, bool with_numbers) {
    aqa_pickle_writer *w = aqa_pkw_new();
    if (!w) return aqa_last_status();
    aqa_pkw_dict_begin(w);
    for (size_t i = 0; i < n; i++) {
        const aqa_synthetic_dive *d = &dv[i];
        aqa_dive fd;
        if (aqa_dive_parse(d->number, &fd)) { /* the catalogue's numbers all parse */
            aqa_pkw_free(w);
            return aqa_last_status();
        }
        put_key(cfg, w, dv, i);
        aqa_pkw_dict_begin(w);
        put_int(w, "primary_view", 0);
        put_int(w, "start_frame", d->start_frame);
        put_int(w, "end_frame", d->end_frame);
        put_int(w, "position", mtl_position(fd.position));
        aqa_pkw_str(w, "difficulty");
        aqa_pkw_float(w, d->difficulty);
        put_int(w, "armstand", fd.armstand);
        put_int(w, "rotation_type", mtl_rotation(fd.direction));
        put_int(w, "ss_no", fd.half_somersaults);
        put_int(w, "tw_no", fd.half_twists);
        aqa_pkw_str(w, "final_score");
        aqa_pkw_float(w, d->score);
        if (with_numbers) {
            aqa_pkw_str(w, "judge_scores");
            aqa_pkw_f64_array(w, d->judges, AQA_SYNTH_JUDGES);
            aqa_pkw_str(w, "dive_number");
            aqa_pkw_str(w, fd.number); /* upper case: "407C" */
        }
        aqa_pkw_dict_end(w);
    }
    aqa_pkw_dict_end(w);
    return aqa__synth_save_pickle(w, cfg->out_dir,
                                  with_numbers ? "final_annotations_dict_with_dive_number.pkl" : "final_annotations_dict.pkl");
}

static aqa_status write_annotations(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *dv, size_t n) {
    aqa_status st;
    if ((st = write_dict(cfg, dv, n, true)) || (st = write_dict(cfg, dv, n, false))) return st;
    for (int sp = 0; sp < 2; sp++) {
        aqa_pickle_writer *w = aqa_pkw_new();
        if (!w) return aqa_last_status();
        aqa_pkw_list_begin(w);
        for (size_t i = 0; i < n; i++)
            if (dv[i].split == sp) put_key(cfg, w, dv, i);
        aqa_pkw_list_end(w);
        if ((st = aqa__synth_save_pickle(w, cfg->out_dir, sp ? "test_split_0.pkl" : "train_split_0.pkl"))) return st;
    }
    return AQA_OK;
}

/* synthetic_dives.csv: the hidden factors, keyed as MTL-AQA's loader names the dives. */
static aqa_status write_hidden(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *dv, size_t n) {
    aqa_atomic_file *af;
    aqa_status st = aqa__synth_open_text(cfg->out_dir, "synthetic_dives.csv", &af);
    if (st) return st;
    FILE *f = aqa_atomic_stream(af);
    fprintf(f, "key,dive_number,difficulty,score,execution,split,start_frame,end_frame\n");
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02d_%lld,%s,%.1f,%.2f,%.6f,%s,%lld,%lld\n", video_of(cfg, i), (long long)dv[i].instance, dv[i].number,
                dv[i].difficulty, dv[i].score, dv[i].execution, dv[i].split ? "test" : "train", (long long)dv[i].start_frame,
                (long long)dv[i].end_frame);
    return aqa_atomic_commit(af);
}

aqa_status aqa__synth_generate_mtl_aqa(const aqa_synthetic_config *cfg) {
    aqa_synthetic_dive *dv = NULL;
    size_t n = 0;
    aqa_status st = aqa_synthetic_plan(cfg, &dv, &n);
    if (st) return st;
    size_t videos = (n + (size_t)cfg->dives_per_video - 1) / (size_t)cfg->dives_per_video;
    st = aqa__synth_run_items(cfg, dv, videos, write_video, "competition videos");
    if (!st) st = write_annotations(cfg, dv, n);
    if (!st) st = write_hidden(cfg, dv, n);
    if (!st) st = aqa__synth_write_config(cfg);
    free(dv);
    return st;
}
