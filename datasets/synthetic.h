/* synthetic.h: the synthetic diving dataset, aqa's default dataset, written in FineDiving's layout.
 *
 * Each "video" is one dive of a small stick figure on a 10 m platform above a pool, rendered from
 * a seeded plan:
 *   take-off  on the platform: forward/reverse dives walk up to the edge facing the water (arms
 *             swinging / held forward), back/inward dives stand at the edge with their back to it
 *             (arms at the sides / stretched forward), armstand dives hold a handstand; after a
 *             wait of variable length the arms swing up, a crouch, a jump with a lean in the
 *             rotation sense (clockwise on screen for forward/back, anticlockwise for
 *             reverse/inward);
 *   flight    the figure rotates through the dive's half somersaults along a parabola, in its
 *             position (straight: long body; pike: folded at the hips; tuck: compact ball); a
 *             twisting dive (5xxx) opens to a straight body for its twist segment, drawn as the
 *             suit turning between its front and back colours and the profile narrowing;
 *   entry     head first into the water, arms overhead: the body sinks under a water tint while
 *             a splash rises and falls, then ripples.
 * A hidden execution quality e in [0, 1] per dive drives what judges look at: jump height,
 * smoothness of the rotation (per-frame angle jitter grows with 1 - e), tightness of the position,
 * bent knees in straight phases, body tilt at entry (over/under-rotation), and splash size.
 * Seven judges score round-to-half(10 * (0.25 + 0.7 e) + noise) each, and the dive's score is
 * FineDiving's: difficulty x the sum of the middle three judges, so it lies in [0, 30 DD].
 *
 * Layout (the same as FineDiving, so one loader reads both: datasets/annotations.h):
 *   <out>/<video>/<instance>/<%05d>.png|jpg   frames start_frame .. end_frame of a notional
 *                                             untrimmed competition video <video>
 *   <out>/FineDiving_coarse_annotation.pkl, FineDiving_fine-grained_annotation.pkl,
 *   <out>/fine-grained_annotation_aqa.pkl, Sub_action_Types_Table.pkl, train_split.pkl,
 *   <out>/test_split.pkl                     pickles (protocol 2, keys (video, instance), int64
 *                                             numpy arrays), written by io/pickle_write.h
 *   <out>/synthetic_dives.csv                 the hidden factors per dive (execution, jump height,
 *                                             jitter, tilt, splash), for analysis only
 *   <out>/synthetic_config.txt                the settings that produced the set
 * Per-frame labels use FineDiving's sub-action ids (1-4 take-offs, 6 Arm.Back, 8-28/37/39/40
 * somersaults, 29-35 twists, 36 Entry); steps_transit_frames[i] is the index of the last frame
 * before the i-th label change; TSA/MVLA's two stage boundaries are its first and last entries.
 *
 * Everything is deterministic by seed: the same config gives byte-identical files on one build,
 * whatever the thread count.  Each dive's frames are written into a hidden temporary folder that
 * is renamed into place when complete (frames are cheap to regenerate, so they are not fsync'ed);
 * the annotation pickles are written last, atomically, so their presence marks a complete set. */
#ifndef AQA_DATASETS_SYNTHETIC_H
#define AQA_DATASETS_SYNTHETIC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "image/image.h"
#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_synthetic_format {
    AQA_SYNTH_PNG = 0, /* lossless frames (default) */
    AQA_SYNTH_JPEG = 1 /* FineDiving's own frame format */
} aqa_synthetic_format;

typedef struct aqa_synthetic_config {
    const char *out_dir;         /* dataset root, created when missing (generate only) */
    int n_videos;                /* number of dives (FineDiving's samples), >= 1 */
    uint64_t seed;               /* everything follows from it */
    int width, height;           /* frame size in pixels, 16..1024 (default 64 x 64) */
    int min_frames, max_frames;  /* frames per dive, uniform in [min, max] (default 40..120;
                                  * dives shorter than 96 exercise the loaders' repetition) */
    aqa_synthetic_format format; /* frame files: PNG or JPEG */
    int jpeg_quality;            /* 1..100 (default 90) */
    double train_fraction;       /* share of dives in train_split.pkl, stratified by dive number
                                  * (default 0.75, FineDiving's 2251 / 3000) */
    int dives_per_video;         /* dives (instances) per notional competition video (default 10) */
    int threads;                 /* rendering threads; 0 = the online CPUs, at most 8 */
    int progress;                /* non-zero: a progress line on stderr */
} aqa_synthetic_config;

/* The defaults above (out_dir NULL, 200 dives, seed 0). */
void aqa_synthetic_config_init(aqa_synthetic_config *cfg);

/* The catalogue of dives the generator draws from (FineDiving dive numbers, lower-case letter as
 * in its action_type), with their degree of difficulty (FINA 10 m platform values, rounded). */
typedef struct aqa_synthetic_dive_type {
    const char *number; /* "407c" */
    double difficulty;  /* 1.3 .. 3.7 */
} aqa_synthetic_dive_type;
/* The catalogue (static storage) and its length. */
const aqa_synthetic_dive_type *aqa_synthetic_catalogue(size_t *n);

#define AQA_SYNTH_MAX_STEPS 4 /* take-off, somersaults, [twists,] entry */
#define AQA_SYNTH_JUDGES 7

/* One planned dive: its annotation and the factors its frames are rendered from. */
typedef struct aqa_synthetic_dive {
    char video[48];        /* competition video name, "SyntheticDiving_Event003" */
    int64_t instance;      /* dive number within the video, from 1 */
    char number[8];        /* dive number as FineDiving writes it ("407c") */
    int type;              /* index in the catalogue */
    double difficulty;     /* degree of difficulty (DD) */
    double execution;      /* hidden quality e in [0, 1] (what the judges see) */
    double judges[AQA_SYNTH_JUDGES]; /* 0..10 in half points */
    double score;          /* DD x sum of the middle three judges, exact to 0.01 */
    int64_t start_frame;   /* first frame number (file name) in the competition video */
    int64_t end_frame;     /* last frame number, inclusive */
    int n_frames;          /* end_frame - start_frame + 1 */
    int n_steps;           /* 3 or 4 (twisting dives) */
    int step_ids[AQA_SYNTH_MAX_STEPS];         /* FineDiving sub-action id of each step */
    int64_t transit[AQA_SYNTH_MAX_STEPS - 1];  /* index of the last frame of steps 0..n_steps-2 */
    int split;             /* 0 train, 1 test */
    /* visual factors (all derived from the plan's seed and execution) */
    double jump_height;    /* apex of the jump above take-off, in frame heights */
    double angle_jitter;   /* standard deviation of the per-frame rotation jitter, radians */
    double entry_tilt;     /* signed deviation from vertical at entry, radians */
    double splash;         /* splash size factor (larger is worse) */
    double tightness;      /* how far the position folds (1 = fully) */
    double knee_bend;      /* bend of the knees in straight phases, radians */
    double drift;          /* horizontal travel in flight, in frame widths */
    double stage_frac[2];  /* share of frames in take-off and in entry */
    int palette;           /* suit colours */
    double cam_dx, cam_dy; /* camera offset, in frame heights */
    int sky_tint[3], water_tint[3]; /* colour offsets of the scene */
    uint64_t render_seed;  /* seed of the per-frame jitter and splash droplets */
} aqa_synthetic_dive;

/* Plans cfg->n_videos dives (no files are written); *dives is malloc'd (free()), *n its length. */
aqa_status aqa_synthetic_plan(const aqa_synthetic_config *cfg, aqa_synthetic_dive **dives, size_t *n);

/* Sub-action id of frame t (0-based) of a planned dive, from its steps and transitions; 0 when t
 * is outside the dive. */
int aqa_synthetic_frame_label(const aqa_synthetic_dive *d, int t);
/* Stage of frame t: 0 take-off, 1 flight (somersaults and twists), 2 entry; -1 outside. */
int aqa_synthetic_frame_stage(const aqa_synthetic_dive *d, int t);

/* Renders frame t of dive d into im (cfg->width x cfg->height, RGB). */
aqa_status aqa_synthetic_render_frame(const aqa_synthetic_config *cfg, const aqa_synthetic_dive *d, int t,
                                      aqa_image *im);

/* Plans, renders and writes the whole dataset under cfg->out_dir (see the layout above).  An
 * existing dive folder of the same name is replaced (only frame files are removed; a folder
 * holding anything else is an error); folders of dives that are not in the new plan (from an
 * earlier, larger run) are left alone and are simply not listed in the annotations. */
aqa_status aqa_synthetic_generate(const aqa_synthetic_config *cfg);

/* The dives of the plan as video files in `dir` (created), container from `ext` ("mp4", "mkv",
 * ...) and encoder `codec` (NULL: the container's; "ffv1" in "mkv" is lossless), 25 frames per
 * second, frames rendered directly (no frame files needed):
 *   per_dive false  one untrimmed video per competition video, <dir>/<video>.<ext>: its frame
 *                   number k (from AQA_VD_VIDEO_FIRST_NUMBER = 1, datasets/video_dataset.h) shows
 *                   frame k of the layout, so a dive's frames sit at start_frame..end_frame; the
 *                   frames between dives hold the next dive's first frame (the diver waiting on
 *                   the platform); the video ends with its last dive.  What FineDiving's users
 *                   start from: videos plus annotations (examples/extract_frames).
 *   per_dive true   one video per dive, <dir>/<video>_<instance>.<ext>, holding exactly its frames:
 *                   a clip to score (examples/score_video).
 * Needs aqa built with FFmpeg (AQA_EUNSUPPORTED otherwise).  Each file is written atomically. */
aqa_status aqa_synthetic_write_videos(const aqa_synthetic_config *cfg, const char *dir, const char *ext,
                                      const char *codec, bool per_dive);

/* A PNG contact sheet of dive `dive` (index in the plan): `tiles` frames evenly spread over the
 * dive in rows of `cols`, each scaled up by an integer factor and captioned with its frame index,
 * stage and sub-action; a title names the dive, its difficulty, execution and score. */
aqa_status aqa_synthetic_contact_sheet(const aqa_synthetic_config *cfg, size_t dive, int tiles, int cols,
                                       const char *path);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_SYNTHETIC_H */
