/* annotations.h: the four AQA datasets' official annotation files as one uniform manifest.
 *
 * A manifest is a list of samples (one dive / surgical trial / skating program each) with their
 * frame range, scores and labels, plus named splits (lists of sample indices).  Loaders read the
 * published files directly (Python pickles through io/pickle.h, Fis-V's text files):
 *
 *   MTL-AQA    (Parmar & Morris, CVPR 2019)  final_annotations_dict_with_dive_number.pkl,
 *              train_split_0.pkl, test_split_0.pkl -> 1412 samples, splits "train" (1059), "test" (353)
 *   JIGSAWS    (Gao et al. 2014; USDL/MUSDL files) label.pkl, splits.pkl -> 103 trials; for each task
 *              T and fold k = 0..3: "T/k/test" (fold k) and "T/k/train" (the other three folds)
 *   Fis-V      (Xu et al., TCSVT 2019)  train_dataset.txt, test_dataset.txt -> "train" 400, "test" 100
 *   FineDiving (Xu et al., CVPR 2022)  FineDiving_fine-grained_annotation.pkl,
 *              FineDiving_coarse_annotation.pkl, train_split.pkl, test_split.pkl -> "train", "test";
 *              also the layout written by aqa's synthetic diving generator (same pickle structure).
 *
 * Every failure names the file and, where it applies, the sample key and field at fault.  A
 * malformed record is an error; an irregularity the published releases are known to hold is
 * tolerated, repaired where the file itself says how, and reported once in the manifest's `notes`
 * (the library never prints; the programs print the notes):
 *   FineDiving: steps_transit_frames that hold -1, lie outside the frame labels, are not
 *     ascending or disagree with where frames_labels changes (7 dives of the release) are
 *     derived from frames_labels (`transit_repaired` marks them; the notes count them by fault);
 *   MTL-AQA: a final_score that differs from difficulty x the middle three judges (28 dives, e.g.
 *     failed dives) is kept as published and counted.
 * The number of frame labels is not forced to equal end_frame - start_frame + 1 (frame loaders
 * resample labels together with the frames). */
#ifndef AQA_DATASETS_ANNOTATIONS_H
#define AQA_DATASETS_ANNOTATIONS_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum aqa_ann_dataset {
    AQA_ANN_MTL_AQA,
    AQA_ANN_JIGSAWS,
    AQA_ANN_FISV,
    AQA_ANN_FINEDIVING
} aqa_ann_dataset;

#define AQA_ANN_MAX_JUDGES 7
#define AQA_ANN_MAX_SUBSCORES 6

typedef struct aqa_ann_sample {
    char *key;   /* unique id: "01_12" (MTL-AQA video_dive), "FINADivingWorldCup2021_Men3m_final_r1/8"
                  * (FineDiving video/instance), "Suturing_B001" (JIGSAWS), "17" (Fis-V) */
    char *video; /* frame folder: "01" (MTL-AQA, %02d), FineDiving video name, JIGSAWS trial (frames
                  * are in "<trial>_capture1"), Fis-V video id (features "<id>.npy") */
    int64_t instance;    /* dive within the video (MTL-AQA, FineDiving); -1 when none */
    int64_t start_frame; /* first frame number of the untrimmed video (inclusive); -1 when unknown */
    int64_t end_frame;   /* last frame number (inclusive); -1 when unknown */
    double score;        /* target: MTL-AQA final_score, FineDiving dive_score, JIGSAWS sum of the 6
                          * GRS items (6..30), Fis-V total = TES + PCS - deductions */
    double difficulty;   /* degree of difficulty (diving); 0 when none */
    int n_judges;        /* judge scores present (3, 5 or 7 for diving; 0 otherwise) */
    double judges[AQA_ANN_MAX_JUDGES];
    int n_sub_scores;    /* JIGSAWS: 6 GRS items; Fis-V: 3 = {TES, PCS, deductions}; else 0 */
    double sub_scores[AQA_ANN_MAX_SUBSCORES];
    char dive_number[8]; /* FINA dive number as in the file ("407C" MTL-AQA, "407c" FineDiving); "" */
    int64_t *frame_labels;   /* FineDiving: sub-action id of each frame from start_frame; NULL */
    size_t n_frame_labels;
    int64_t *transit_frames; /* FineDiving steps_transit_frames: index of the last frame before each
                              * change of frame label, ascending (repaired from the labels where
                              * the release's disagree with them); NULL */
    size_t n_transit;
    int transit_repaired;    /* 1 when transit_frames were derived from frame_labels */
} aqa_ann_sample;

typedef struct aqa_ann_split {
    char *name;  /* "train", "test", "Suturing/0/train", ... */
    size_t *idx; /* indices into samples, in the order of the split file */
    size_t n;
} aqa_ann_split;

typedef struct aqa_ann_manifest {
    aqa_ann_dataset dataset;
    aqa_ann_sample *samples; /* in the order of the annotation file */
    size_t n_samples;
    aqa_ann_split *splits;
    size_t n_splits;
    char **label_names; /* FineDiving: sub-action id -> name (NULL entries where unknown); NULL */
    size_t n_label_names;
    char *notes;        /* what loading tolerated or repaired, one line per kind ("" when nothing) */
    size_t n_repaired;  /* samples whose values were repaired */
} aqa_ann_manifest;

/* Loaders: `dir` holds the dataset's files under their published names.  NULL + error on failure. */
aqa_ann_manifest *aqa_ann_load_mtl_aqa(const char *dir);
aqa_ann_manifest *aqa_ann_load_jigsaws(const char *dir);
aqa_ann_manifest *aqa_ann_load_fisv(const char *dir);
aqa_ann_manifest *aqa_ann_load_finediving(const char *dir);

void aqa_ann_free(aqa_ann_manifest *m);

/* The split called `name`, or NULL (no error recorded). */
const aqa_ann_split *aqa_ann_find_split(const aqa_ann_manifest *m, const char *name);
/* Index of the sample with this key, or -1. */
long aqa_ann_find(const aqa_ann_manifest *m, const char *key);
/* "MTL-AQA", "JIGSAWS", "Fis-V", "FineDiving". */
const char *aqa_ann_dataset_name(aqa_ann_dataset d);

#ifdef __cplusplus
}
#endif

#endif /* AQA_DATASETS_ANNOTATIONS_H */
