/* video_dataset.h: one split of an AQA dataset as model inputs: which frames each video
 * contributes (sampled as the public baselines do), its clips, frame-wise labels and stage
 * boundaries, its texts, and the decoding of frames (or the reading of cached features) into
 * float buffers.  The batching loader is datasets/loader.h, exemplar pairing datasets/exemplar.h,
 * the per-video feature files datasets/feature_cache.h.
 *
 * Sampling (the published code of each baseline; T frames, N clips of clip_len frames):
 *   FineDiving (TSA, FineDiving_Pair.py)  T = 96 frames spread evenly over start_frame..end_frame:
 *              frame t = int(start + t * (end - start) / (T - 1)) computed as numpy's
 *              linspace(start, end, T).astype(int) (step first, then t * step + start, last = end),
 *              so frames repeat when the dive has fewer than 96; files <video>/<instance>/%05d.jpg
 *              (or .png: the synthetic set).  N = 9 clips of 16 starting at 0, 10, ..., 80.
 *   MTL-AQA    (CoRe, MTLPair.py)  T = 103 frames ending at end_frame: files end - 102 .. end of
 *              <%02d video>/%08d.jpg (CoRe indexes the sorted listing, whose first file is frame 1,
 *              at end - 103 + i); training may shift end_frame by a random integer in
 *              [shift_min, shift_max] (CoRe: [-3, 0]).  N = 10 clips at 0, 10, ..., 80, 87.
 *   JIGSAWS    T = 160 frames spread evenly (the same linspace rule) over the sorted listing of
 *              <trial>_capture1/; N = 10 clips of 16 at 0, 16, ..., 144.
 *   Fis-V      no frames: <features>/<id>.npy holds [n_clips, dim] clip features; programs differ
 *              in length, so the rows are resampled to N (num_clips, default the first file's
 *              count) with the same linspace rule.
 * Clip starts in general: c * clip_stride clamped to T - clip_len (this gives MTL-AQA's 87).
 *
 * Video files (image/video.h, when aqa is built with FFmpeg) stand in for missing frame folders:
 *   FineDiving <frames_root>/<video>.<ext>, the untrimmed competition video: frame number k is its
 *              k-th frame counting from 1 (AQA_VD_VIDEO_FIRST_NUMBER), the file number
 *              `ffmpeg -i <video>.mp4 %05d.jpg` gives it, so a video and the frames extracted from
 *              it (examples/extract_frames) give the same sampled frames;
 *   MTL-AQA    <frames_root>/<%02d video>.<ext>, numbered the same way;
 *   JIGSAWS    <frames_root>/<trial>_capture1.<ext>: listing position p is frame p (from 0).
 * <ext> is one of .mp4 .mkv .avi .mov .webm .m4v .mpg .mpeg .ts (aqa_vd_find_video).  The sampled
 * frames are decoded in one forward pass per video, seeking over long gaps, one frame in memory
 * at a time, and resized to video_height rows first when it is set (aqa_image_resize_to_height,
 * bicubic: what examples/extract_frames --height does, so that the videos and the frames extracted
 * from them give the same model input).  A frame number past the video's end is found when
 * decoding (the loader's "corrupt").
 *
 * Labels (FineDiving layout only): labels[t] = frame_labels[frame t - start_frame].  The L = 2
 * stage boundaries are TSA's: the sampled labels' distinct values in order of first appearance,
 * at positions p_0 = 0 < p_1 < ... ; boundary 0 = p_1 and boundary 1 = p_last, the first frames of
 * flight and entry (TSA's `transits + 1`: its dataset returns p - 1 and its runner adds 1 before
 * training and evaluating).  As in TSA (and models/mvla/stages.h) boundary l opens stage l + 1:
 * stage s is frames [b_{s-1}, b_s) with b_{-1} = 0, b_L = T; frame_stage[t] follows from that.  The BCE target
 * [T, L] is 1 at (b_l, l) and 0 elsewhere (TSA's label_12_pad).
 *
 * Texts: stage texts (take-off, flight, entry) and video sentences of every dive number in the
 * manifest (datasets/fina.h; one vocabulary for all splits, so ids agree between loaders), the
 * stage texts put in the prompt template stage_template (the paper's "a diving video of a
 * [category]" by default: "a diving video of an inward take-off"; the video sentences already
 * read "a diving video of ...").  For
 * datasets without dive numbers (JIGSAWS, Fis-V), and for dives with cfg.quality_texts ("+
 * Quality Text", the paper's Table 5), the texts are graded: each base text (the action name,
 * "knot tying", or a dive's stage / video text) appears in its AQA_GRADE_COUNT grades, in order
 * ("a video of a poor knot tying" ... "a video of an excellent knot tying"; "inward take-off, of
 * poor quality" ...).  The text lists depend on the base texts only, never on a score, so they
 * are the same whatever the test labels.  An item's group of candidates (stage_grade_base,
 * video_grade_base) is known without its score; its true grade (stage_text, video_text: grade of
 * its score on the dataset's score range) is a label, for training targets only.
 *
 * Score range: cfg.score_lo / score_hi, or (both 0) the range of the split's own usable videos.
 * Programs open the training split first and pass its range to the other splits, so that no
 * range is ever computed from test labels.
 *
 * Held-out videos: cfg.holdout_fraction > 0 sets aside a seeded share of the split's list
 * (round(f n), at least 1, never all): holdout_take false opens the rest (the training part),
 * true only the held-out videos (a validation split drawn from the training split).
 *
 * FUM stages (MVLA without frame labels splits the N clips at fixed, sport-specific boundaries;
 * the paper gives none, these are our choice): diving (MTL-AQA, and FineDiving's layout when run
 * without its labels), whose window ends at the entry: take-off | flight | entry over the first
 * 30% | next 50% | last 20% of the clips, the mean stage shares of the synthetic dives (take-off
 * 15-40%, entry 14-30% of a dive): N = 10 gives boundaries 3, 8.  JIGSAWS and Fis-V have no
 * sub-action structure to follow: thirds (N = 10: 3, 7).  Boundary l = round(f_l N), kept
 * strictly increasing inside [1, N - 1]; all 0 when N < 3.
 *
 * Fis-V with MVLA: clip_features_dir holds <id>.npy [n_clips, D] CLIP image features per clip
 * (the mean over each 32-frame clip's frames, the paper's FUM clip features), rows resampled to N
 * like the CBP file; the VLP branch then sees T = N steps, one per clip (clip_len 1).
 *
 * Bad data.  A video whose annotation points at no frames (end < start, missing folder, empty
 * listing), a video too short for its sampling (MTL-AQA: end_frame < 103; a shift leaving the
 * video), a FineDiving video whose frame labels do not cover the sampled frames or have fewer than
 * 3 distinct sub-actions (no two transitions), a missing frame file (checked at open) or a frame
 * that does not decode (found by the loader) is "bad".  Policy AQA_BAD_DATA_FAIL (the default):
 * opening (or the batch) fails with a message naming the file and sample.  AQA_BAD_DATA_SKIP: the
 * video is left out, a warning naming the file goes to stderr, and the summary counts it
 * (aqa_video_dataset_summary).  Nothing is ever silently replaced. */
#ifndef AQA_DATASETS_VIDEO_DATASET_H
#define AQA_DATASETS_VIDEO_DATASET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "datasets/annotations.h"
#include "image/resize.h"
#include "datasets/texts.h"
#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AQA_VD_MAX_BOUNDARIES 2 /* L: take-off | flight | entry */
#define AQA_VD_MAX_CLIPS 64
/* Frame number of a video's first frame in the frame-numbered layouts (FineDiving, MTL-AQA). */
#define AQA_VD_VIDEO_FIRST_NUMBER 1

typedef enum aqa_bad_data_policy {
    AQA_BAD_DATA_FAIL = 0, /* stop with an error naming the file (default) */
    AQA_BAD_DATA_SKIP = 1  /* leave the video out, warn on stderr, count it in the summary */
} aqa_bad_data_policy;

/* How a video's T frames are chosen. */
typedef enum aqa_vd_sampling {
    AQA_VD_SAMPLE_EVEN = 0,  /* linspace over the video (FineDiving, JIGSAWS) */
    AQA_VD_SAMPLE_ENDING = 1 /* the last T frames up to end_frame (MTL-AQA) */
} aqa_vd_sampling;

/* What a video's score (the regression target) is. */
typedef enum aqa_vd_target {
    AQA_VD_TARGET_SCORE = 0, /* the dataset's score (Fis-V: TES + PCS - deductions) */
    AQA_VD_TARGET_TES = 1,   /* Fis-V: the technical element score (its sub_scores[0]) */
    AQA_VD_TARGET_PCS = 2    /* Fis-V: the programme component score (sub_scores[1]) */
} aqa_vd_target;

typedef struct aqa_vd_config {
    const char *root;        /* dataset folder: annotation files (and frames unless frames_root) */
    aqa_ann_dataset dataset; /* which loader reads the annotations (synthetic = FINEDIVING) */
    const char *split;       /* split name ("train", "test", "Suturing/0/train"); NULL = all */
    const char *frames_root; /* where frame folders are; NULL = root */
    const char *features_dir; /* cache folder (feature_cache.h) or, for Fis-V, the .npy folder;
                                 NULL: decode frames */
    int num_frames;          /* T; 0 = the dataset's (96, 103, 160, 0 for Fis-V) */
    int num_clips;           /* N; 0 = the dataset's (9, 10, 10) */
    int clip_len;            /* frames per clip; 0 = 16 */
    int clip_stride;         /* first frame of clip c = min(c * stride, T - clip_len); 0 = the
                                dataset's (10, 10, 16) */
    int shift_min, shift_max; /* MTL-AQA training shift of end_frame (0, 0 = none) */
    int video_height;        /* video files: resize decoded frames to this many rows first (0: as
                                decoded); the height of the frames they stand in for (FineDiving 256) */
    const char *stage_template; /* prompt template of the stage texts ("[category]" = the text);
                                 NULL = the dataset's (AQA_DIVING_TEMPLATE for the diving sets,
                                 none for JIGSAWS and Fis-V), "" = none */
    const char *clip_features_dir; /* Fis-V: folder of <id>.npy per-clip CLIP features; NULL */
    aqa_bad_data_policy policy;
    aqa_vd_target target;    /* the score regressed: the dataset's, or Fis-V's TES or PCS (the paper
                                trains the two separately); an error on other datasets */
    bool quality_texts;      /* dives: graded stage and video texts ("+ Quality Text"); JIGSAWS and
                                Fis-V always have graded texts */
    double score_lo, score_hi; /* score range (grades, heads); both 0: the split's own videos' */
    double holdout_fraction; /* share of the split's list held out (0: none), in [0, 1) */
    uint64_t holdout_seed;   /* which videos are held out */
    bool holdout_take;       /* false: the split without them; true: only them */
    bool check_files;        /* stat every sampled frame file at open (default true via init) */
    bool quiet;              /* no warnings on stderr (tests) */
} aqa_vd_config;

/* Zeroes cfg and sets check_files; the rest default as documented above. */
void aqa_vd_config_init(aqa_vd_config *cfg);

/* One usable video of the split. */
typedef struct aqa_vd_item {
    size_t sample;           /* index in the manifest */
    int64_t base_frame;      /* frame number the relative indices count from (start_frame) */
    int64_t *frames;         /* [T] frame numbers (FineDiving, MTL-AQA) or listing positions
                                (JIGSAWS) of the sampled frames */
    int64_t *labels;         /* [T] sub-action id of each sampled frame (FineDiving layout); NULL */
    int64_t boundaries[AQA_VD_MAX_BOUNDARIES]; /* TSA's L boundaries (frame layout only) */
    int has_boundaries;      /* 1 when labels gave boundaries */
    int64_t *frame_stage;    /* [T] stage of each frame (from boundaries); NULL without */
    int64_t stage_text[AQA_VD_MAX_BOUNDARIES + 1]; /* ids in the stage text set (graded texts: the
                                true grade's, a label for training targets only) */
    int64_t video_text;      /* id in the video text set (graded: likewise) */
    int64_t stage_grade_base[AQA_VD_MAX_BOUNDARIES + 1]; /* graded texts: id of grade 0 of each stage
                                text's group (candidates base .. base + n_grades - 1); -1 otherwise */
    int64_t video_grade_base; /* the same in the video text set; -1 when not graded */
    int64_t dive_class;      /* id of the dive number (or difficulty group) among the manifest's */
    char **listing;          /* JIGSAWS: the folder's sorted frame files (full paths); NULL */
    size_t n_listing;
    char frame_dir[1024];    /* folder of the frames ("" in feature mode) */
    char ext[8];             /* frame file extension found (".jpg", ".png") */
    char video[1024];        /* video file standing in for the frame folder, or "" */
    int64_t video_base;      /* frame number (or listing position) of the video's first frame */
} aqa_vd_item;

/* What opening (and loading) left out, by reason. */
typedef struct aqa_vd_summary {
    size_t n_split;          /* videos in the split (after any holdout) */
    size_t n_items;          /* usable videos */
    size_t skipped_no_frames;  /* annotation points at no frames / missing folder */
    size_t skipped_short;      /* too short for the sampling */
    size_t skipped_labels;     /* frame labels unusable */
    size_t skipped_missing;    /* a sampled frame file (or feature file) is missing */
    size_t skipped_corrupt;    /* a frame (or feature file) failed to decode (loader) */
} aqa_vd_summary;

typedef struct aqa_video_dataset {
    aqa_vd_config cfg;        /* as given, with the defaults resolved */
    aqa_ann_manifest *manifest; /* owned */
    aqa_vd_item *items;       /* usable videos of the split, in split order */
    size_t n_items;
    int64_t T, N, clip_len;   /* resolved sizes */
    int64_t clip_starts[AQA_VD_MAX_CLIPS]; /* first frame of each clip */
    aqa_vd_sampling sampling;
    int64_t L;                /* boundaries per video (2 with frame labels, else 0) */
    aqa_text_set stage_texts; /* stage-level texts (ids: items' stage_text) */
    aqa_text_set video_texts; /* video-level texts */
    aqa_text_set dive_classes; /* distinct dive numbers (or "DD 3.2") in manifest order */
    int64_t n_grades;         /* G: grades per graded text (AQA_GRADE_COUNT), 0 when not graded */
    double score_min, score_max; /* score range in use: cfg's, or the split's usable videos' */
    int64_t fum_boundaries[AQA_VD_MAX_BOUNDARIES]; /* the sport's fixed clip boundaries (FUM stages,
                                                      see above); all 0 when N < 3 */
    int64_t feat_clip_dim;    /* feature mode: D of the cached "clip" features (Fis-V: of the
                                 per-clip CLIP files; 0: none) */
    int64_t feat_i3d_dim;     /* feature mode: C of the cached "i3d" features / Fis-V .npy (0: none) */
    int64_t feat_map_h, feat_map_w; /* feature mode: H, W of the cached "i3d_map" (0: none) */
    aqa_vd_summary summary;   /* counts, updated by the loader */
    void *lock;               /* guards summary updates from loader threads (pthread_mutex_t) */
} aqa_video_dataset;

/* Opens a split.  NULL with an error on failure (and, under the fail policy, on the first bad
 * video, naming it). */
aqa_video_dataset *aqa_video_dataset_open(const aqa_vd_config *cfg);
void aqa_video_dataset_free(aqa_video_dataset *ds);

/* The manifest sample of item i. */
const aqa_ann_sample *aqa_vd_sample(const aqa_video_dataset *ds, size_t i);

/* Pure sampling rules (exposed for tests and other loaders). */
/* numpy's linspace(start, end, T).astype(int) into out[T]. */
void aqa_vd_linspace_int(int64_t start, int64_t end, int64_t T, int64_t *out);
/* Clip starts: min(c * stride, T - clip_len) for c < N.  AQA_EINVAL when T < clip_len. */
/* A stage text as the dataset's texts hold it: `stage` ("inward take-off") in the prompt template
 * (cfg.stage_template, or the dataset's default) into buf. */
aqa_status aqa_vd_stage_text(const aqa_video_dataset *ds, const char *stage, char *buf, size_t size);
aqa_status aqa_vd_clip_starts(int64_t T, int64_t N, int64_t clip_len, int64_t stride, int64_t *out);
/* TSA's boundaries of sampled labels[T]: AQA_EFORMAT when fewer than 3 distinct values. */
aqa_status aqa_vd_tsa_boundaries(const int64_t *labels, int64_t T, int64_t out[2]);
/* The FUM clip boundaries of `dataset` for N clips (see "FUM stages" above) into out[2]. */
void aqa_vd_fum_boundaries(aqa_ann_dataset dataset, int64_t N, int64_t out[AQA_VD_MAX_BOUNDARIES]);
/* Stage of each frame for boundaries b[L] (stage s = frames [b_{s-1}, b_s)). */
void aqa_vd_frame_stages(const int64_t *b, int64_t L, int64_t T, int64_t *stage);

/* Path of sampled frame t of item i (frame-number datasets and listings alike); for an item read
 * from a video file "<video>#<frame index>", a name for messages. */
aqa_status aqa_vd_frame_path(const aqa_video_dataset *ds, size_t i, int64_t t, int64_t shift, char *buf,
                             size_t size);

/* Training-time randomisation of one video: a crop origin and a flip drawn once per video (all its
 * frames and clips share them) from `seed` by aqa_frame_transform_randomize. */
typedef struct aqa_vd_augment {
    uint64_t seed;    /* per video */
    double flip_prob; /* probability of a horizontal flip (0: never) */
} aqa_vd_augment;

/* Decodes item i's T frames and writes them through transform `tf` (its output size must be
 * fixed: crop or exact resize) as [T, 3, H, W] floats when clips == false, or as I3D clips
 * [N, 3, clip_len, H, W] when clips == true.  `out` holds the whole result.  `shift` is the
 * MTL-AQA end-frame shift (0 elsewhere); aug NULL = the transform as given (centre crop).  A frame that fails to decode gives AQA_EFORMAT/AQA_EIO
 * naming the file (the caller applies the policy). */
aqa_status aqa_vd_decode(const aqa_video_dataset *ds, size_t i, const aqa_frame_transform *tf, bool clips,
                         int64_t shift, const aqa_vd_augment *aug, float *out);
/* Decodes the frames frames[0..T) (0-based frame indices of the video, non-decreasing) of a video
 * file that is not in the dataset, with the dataset's sampling sizes (T, N, clip_len, clip_starts),
 * into `out` as aqa_vd_decode does: what a program scoring a new video feeds the model. */
aqa_status aqa_vd_decode_video(const aqa_video_dataset *ds, const char *path, const int64_t *frames,
                               const aqa_frame_transform *tf, bool clips, const aqa_vd_augment *aug, float *out);
/* The video file of `stem`: the first of stem + .mp4, .mkv, ... (see above) that exists, into buf;
 * false (buf "") when there is none. */
bool aqa_vd_find_video(const char *stem, char *buf, size_t size);
/* Item i's cached features: "clip" [T, D] into clip_out, "i3d" [N, C] into i3d_out and/or
 * "i3d_map" [N, C, H, W] into map_out (any may be NULL); Fis-V reads <features_dir>/<video>.npy
 * into i3d_out and <clip_features_dir>/<video>.npy into clip_out, resampling their rows to N. */
aqa_status aqa_vd_read_features(const aqa_video_dataset *ds, size_t i, float *clip_out, float *i3d_out,
                                float *map_out);

/* Output height and width of a transform with a fixed output (crop or exact resize). */
aqa_status aqa_vd_transform_size(const aqa_frame_transform *tf, int *h, int *w);

/* Records a bad video found after opening (loader): warns unless quiet, counts it. */
void aqa_vd_note_bad(aqa_video_dataset *ds, size_t i, const char *why, bool corrupt);
/* Prints the summary ("12 of 300 videos skipped: ...") to `to` (FILE *). */
void aqa_vd_print_summary(const aqa_video_dataset *ds, void *to);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_VIDEO_DATASET_H */
