/* synthetic.h: aqa's synthetic datasets, written in the real datasets' file layouts so that the
 * same loaders read both (datasets/annotations.h, video_dataset.h):
 *   FineDiving  dives with frame labels (the default; the main job's set), described below;
 *   MTL-AQA     the same dives in MTL-AQA's files: no frame labels, difficulty degrees and judges;
 *   JIGSAWS     surgical trials (suturing, needle passing, knot tying) graded by six GRS items,
 *               four cross-validation folds per task;
 *   Fis-V       long figure-skating programmes scored TES and PCS, shipped as per-clip features.
 * cfg.layout picks one; each is described at its plan below.
 *
 * The diving set.  Each "video" is one dive of a small stick figure on a 10 m platform above a pool, rendered from
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

/* Which dataset's files aqa_synthetic_generate writes. */
typedef enum aqa_synthetic_layout {
    AQA_SYNTH_FINEDIVING = 0, /* dives with frame labels, FineDiving's files (the default) */
    AQA_SYNTH_MTL_AQA = 1,    /* dives in MTL-AQA's files (see aqa_synthetic_plan's notes below) */
    AQA_SYNTH_JIGSAWS = 2,    /* surgical trials in JIGSAWS' files (aqa_synthetic_trial) */
    AQA_SYNTH_FISV = 3        /* skating programmes in Fis-V's files (aqa_synthetic_programme) */
} aqa_synthetic_layout;

typedef struct aqa_synthetic_config {
    const char *out_dir;         /* dataset root, created when missing (generate only) */
    aqa_synthetic_layout layout; /* which dataset's files (default FineDiving's) */
    int n_videos;                /* number of dives / trials / programmes, >= 1 */
    uint64_t seed;               /* everything follows from it */
    int width, height;           /* frame size in pixels, 16..1024 (default 64 x 64) */
    int min_frames, max_frames;  /* frames per dive / trial / programme, uniform in [min, max]
                                  * (aqa_synthetic_config_layout's defaults: dives 40..120, shorter
                                  * than 96 exercising the loaders' repetition; MTL-AQA's dives
                                  * 70..103, within its 103-frame window; trials 160..320;
                                  * programmes 1280..2048, i.e. 40..64 clips of 32 frames) */
    aqa_synthetic_format format; /* frame files: PNG or JPEG */
    int jpeg_quality;            /* 1..100 (default 90) */
    double train_fraction;       /* share of dives in train_split.pkl, stratified by dive number
                                  * (default 0.75, FineDiving's 2251 / 3000; Fis-V 0.8, its
                                  * 400 / 500; JIGSAWS has folds instead) */
    int feature_dim;             /* Fis-V: width of the written per-clip features (default 64) */
    int dives_per_video;         /* dives (instances) per notional competition video (default 10) */
    int threads;                 /* rendering threads; 0 = the online CPUs, at most 8 */
    int progress;                /* non-zero: a progress line on stderr */
} aqa_synthetic_config;

/* The defaults above (out_dir NULL, FineDiving layout, 200 dives, seed 0). */
void aqa_synthetic_config_init(aqa_synthetic_config *cfg);
/* Sets cfg->layout and that layout's defaults of frames per video, train fraction and videos per
 * competition video (call after aqa_synthetic_config_init, before setting your own). */
void aqa_synthetic_config_layout(aqa_synthetic_config *cfg, aqa_synthetic_layout layout);
/* "finediving", "mtl-aqa", "jigsaws", "fisv" (also "mtl_aqa", "fis-v") -> layout; AQA_EINVAL
 * naming the word otherwise. */
aqa_status aqa_synthetic_layout_parse(const char *name, aqa_synthetic_layout *layout);

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

/* ---- MTL-AQA layout (cfg.layout = AQA_SYNTH_MTL_AQA) ---------------------------------------------
 * The same planned dives, in MTL-AQA's files: competition video k is the frame folder
 * <out>/<%02d k>/ holding frames <%08d number>.<png|jpg> of each of its dives, from 105 frames before
 * end_frame (the 103-frame window of CoRe's loader and its training shift of up to 3 frames; frames
 * before start_frame show the diver waiting in the dive's first pose) to end_frame;
 * final_annotations_dict_with_dive_number.pkl and final_annotations_dict.pkl map (video, dive) to
 * start_frame, end_frame, difficulty, final_score, judge_scores (numpy float64[7]), dive_number
 * ("407C", upper case as MTL-AQA writes it) and the release's position / armstand / rotation_type /
 * ss_no / tw_no / primary_view fields; train_split_0.pkl and test_split_0.pkl list the keys.  No
 * frame labels: MVLA runs its FUM scheme on it. */

/* ---- JIGSAWS layout (cfg.layout = AQA_SYNTH_JIGSAWS) ------------------------------------------------
 * Surgical training trials seen from above: a tissue pad, two instrument tips that come in from
 * the lower corners and a needle with its thread.  Suturing throws stitches across an incision,
 * needle passing threads the needle through four rings, knot tying loops the thread around a tip
 * and pulls the knot tight.  A hidden skill s in [0, 1] per trial (its surgeon's level plus the
 * trial's own variation) drives what the six GRS items grade (respect for tissue, time and motion,
 * instrument handling, suture handling, flow of operation, knowledge of the procedure): tremor of
 * the tips, pauses, failed attempts that are redone, irregular stitch / ring / knot placement, and
 * the trial's length (an expert finishes sooner).  Each item is 1..5 (round(1 + 4 s + noise)), the
 * score their sum (6..30, as JIGSAWS' GRS).
 * Files as USDL/MUSDL prepare JIGSAWS: frames <out>/<trial>_capture1/<%05d>.<png|jpg> (the left
 * camera's folder), label.pkl (trial -> six GRS items), splits.pkl (task -> four folds of trial
 * names, each surgeon's trials spread over the folds).  Trials are named "<Task>_<surgeon
 * letter><%03d trial>" ("Suturing_B001"); the tasks share the videos in JIGSAWS' proportions
 * (39 : 28 : 36), each at least four trials (one per fold). */

#define AQA_SYNTH_GRS 6    /* GRS items per trial */
#define AQA_SYNTH_TASKS 3  /* Suturing, Needle_Passing, Knot_Tying */
#define AQA_SYNTH_THROWS 4 /* most task repetitions (stitches, rings, knots) */

typedef struct aqa_synthetic_trial {
    char name[48];         /* "Suturing_B001" */
    int task;              /* 0 Suturing, 1 Needle_Passing, 2 Knot_Tying */
    int surgeon;           /* 0..7: letters B..I */
    int fold;              /* cross-validation fold 0..3 of its task */
    double skill;          /* hidden skill s in [0, 1] */
    double grs[AQA_SYNTH_GRS]; /* GRS items, 1..5 */
    double score;          /* their sum, 6..30 */
    int n_frames;          /* frame files */
    int n_throws;          /* stitches (4), rings (4) or knots (3) */
    double target_x[AQA_SYNTH_THROWS], target_y[AQA_SYNTH_THROWS]; /* where each throw goes, in
                              frame units (0..1); their irregularity grows with 1 - s */
    int retries[AQA_SYNTH_THROWS]; /* failed attempts redone at each throw */
    double tremor;         /* amplitude of the tips' per-frame jitter, in frame heights */
    double pause;          /* share of the trial spent holding still */
    double tidiness;       /* how tight the stitches / knots end (1 = neat) */
    double cam_dx, cam_dy; /* camera offset, in frame heights */
    int pad_tint[3];       /* colour offset of the pad */
    uint64_t render_seed;  /* seed of the per-frame jitter */
} aqa_synthetic_trial;

/* Plans cfg->n_videos trials (cfg->layout is not read); *trials is malloc'd, *n its length.  The
 * same config gives the same plan; trial i's look and labels depend on the seed and i only. */
aqa_status aqa_synthetic_plan_trials(const aqa_synthetic_config *cfg, aqa_synthetic_trial **trials, size_t *n);
/* Renders frame t (0-based) of trial tr into im (cfg->width x cfg->height, RGB). */
aqa_status aqa_synthetic_render_trial_frame(const aqa_synthetic_config *cfg, const aqa_synthetic_trial *tr, int t,
                                            aqa_image *im);

/* ---- Fis-V layout (cfg.layout = AQA_SYNTH_FISV) ------------------------------------------------------
 * Ladies' short programmes: seven elements (three jumping passes, one a combination, three spins
 * and a step sequence) in a random order among stretches of connecting skating.  A hidden skill
 * per skater sets the programme components (five marks 0..10, PCS = 0.8 x their sum) and, with
 * each element's own execution, the technical score: TES = sum of base values (harder jumps for
 * better skaters) + grades of execution; a badly executed jump is a fall (a negative grade and a
 * deduction of 1).  Like Fis-V, which is used through pre-extracted clip features (Video Swin in
 * the paper, C3D in MS-LSTM's release), the set holds no frames: each programme is a feature file
 * of one row per 32-frame clip, made from fixed random directions (the "backbone"): the clip's
 * element type, the jump's rotations, the element's execution and the skater's skating quality,
 * plus a per-programme nuisance direction and noise; connecting skating shows the skating quality
 * only.  A second file per programme holds CLIP-like per-clip features (other directions: the
 * element type strongly, the execution and skating quality as coarse grades), the VLP branch's
 * input for MVLA on Fis-V.
 * Files: train_dataset.txt and test_dataset.txt ("id tes pcs ded" per line, Fis-V's), fs_dataset.csv
 * (number,total,tes,pcs,ded,skater,year,event), features/<id>.npy and clip_features/<id>.npy
 * (float32 [clips, feature_dim]); programme ids 1..n. */

#define AQA_SYNTH_ELEMENTS 7 /* elements of a short programme */

typedef struct aqa_synthetic_programme {
    int id;                /* programme number, 1.. */
    int split;             /* 0 train, 1 test */
    double skill;          /* hidden skating skill in [0, 1] */
    int n_clips;           /* feature rows: ceil(frames / 32) */
    int kind[AQA_SYNTH_ELEMENTS];   /* element type: 0 jump, 1 combination of jumps, 2 spin, 3 step sequence */
    double base[AQA_SYNTH_ELEMENTS]; /* base value */
    double goe[AQA_SYNTH_ELEMENTS];  /* grade of execution (points, may be negative) */
    double quality[AQA_SYNTH_ELEMENTS]; /* execution in [0, 1] the features show */
    int first_clip[AQA_SYNTH_ELEMENTS], n_elem_clips[AQA_SYNTH_ELEMENTS]; /* where each element is */
    int falls;             /* jumps that ended in a fall */
    double tes, pcs, ded;  /* technical, component scores and deductions (2 decimals, as Fis-V) */
    uint64_t feature_seed; /* seed of the programme's noise */
} aqa_synthetic_programme;

/* Plans cfg->n_videos programmes; *progs is malloc'd, *n its length. */
aqa_status aqa_synthetic_plan_programmes(const aqa_synthetic_config *cfg, aqa_synthetic_programme **progs, size_t *n);
/* The two feature matrices of programme p: cbp [n_clips, feature_dim] (the backbone's) and vlp
 * [n_clips, feature_dim] (the CLIP-like ones); either may be NULL. */
aqa_status aqa_synthetic_programme_features(const aqa_synthetic_config *cfg, const aqa_synthetic_programme *p, float *cbp,
                                            float *vlp);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_SYNTHETIC_H */
